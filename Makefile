# Both targets build .venv on first use (torch CPU wheel, package, pinned assets), then run.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
PRESET  ?= default
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: demo test setup assets bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	# torch==2.13.0 is a CPU wheel on our machines; where it is not available, keep the user's torch.
	$(BIN)/pip install -q torch==2.13.0 || echo "torch==2.13.0 not available here; using the torch pip resolves"
	$(BIN)/pip install -q -e '.[dev,hf]'
	touch $@

$(VENV)/.assets: $(VENV)/.installed superalign/assets/__init__.py
	$(BIN)/superalign assets prepare
	touch $@

setup: $(VENV)/.assets

demo: setup
	$(BIN)/superalign run --preset $(PRESET)

test: setup
	$(BIN)/python -m pytest -q tests

bench: setup
	$(BIN)/python bench/generation.py

clean:
	rm -rf $(VENV) runs .pytest_cache
