"""Model and data-set names: `org/name` is a hub id (loaded from the HF cache offline), a path is a path."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from superalign.errors import SuperalignError

ROOT = Path(__file__).resolve().parents[1]
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _hub_cache(home: Path) -> None:
    """A hub-layout cache (what `hf download` leaves) holding tiny-random as a model repo and a
    two-split JSONL data set repo, so hub ids resolve with HF_HUB_OFFLINE=1."""
    from superalign.models import embedded
    hub = home / "hub"
    snap = hub / "models--superalign-test--tiny-random" / "snapshots" / COMMIT
    tok = embedded.tiny_tokenizer()
    embedded.tiny_model(tok, seed=3).save_pretrained(snap)
    tok.save_pretrained(snap)
    ds = hub / "datasets--superalign-test--qa" / "snapshots" / COMMIT / "data"
    ds.mkdir(parents=True)
    (ds / "train.jsonl").write_text(json.dumps({"question": "q", "answer": "a"}) + "\n")
    (ds / "test.jsonl").write_text("".join(json.dumps({"question": f"What is {i}+{i}?", "answer": str(2 * i)}) + "\n"
                                           for i in range(3)))
    for repo in ("models--superalign-test--tiny-random", "datasets--superalign-test--qa"):
        (hub / repo / "refs").mkdir(parents=True, exist_ok=True)
        (hub / repo / "refs" / "main").write_text(COMMIT)


CHILD = """
import json, torch
from superalign import data
from superalign.models import GenParams, embedded
from superalign.models.local import LocalLM
lm = LocalLM("superalign-test/tiny-random", device="cpu")
ref = embedded.tiny_model(embedded.tiny_tokenizer(), seed=3)
same = all(torch.equal(a, b.to(a.dtype)) for a, b in zip(lm.model.state_dict().values(), ref.state_dict().values()))  # dtype auto: bf16 on CPUs with bf16
rows = data.load_all("hf:superalign-test/qa?split=test&prompt=question&label=answer")
print(json.dumps({"same_weights": same, "n_gen": len(lm.generate(["hi"], GenParams(max_new_tokens=3, temperature=0))),
                  "rows": [[r["prompt"], r["label"]] for r in rows]}))
"""


def test_hub_names_load_from_the_offline_cache(tmp_path):
    _hub_cache(tmp_path / "hf")
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    env.pop("HF_HUB_CACHE", None)
    out = subprocess.run([sys.executable, "-c", CHILD], env=env, cwd=tmp_path, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["same_weights"] and res["n_gen"] == 1
    assert res["rows"] == [[f"What is {i}+{i}?", str(2 * i)] for i in range(3)]


def test_uncached_hub_name_is_a_clear_error_not_a_missing_path():
    from superalign.models.local import LocalLM
    with pytest.raises(SuperalignError) as e:
        LocalLM("superalign-test/never-downloaded", device="cpu")
    assert "does not exist" not in e.value.problem and "cannot load model" in e.value.problem
    assert "HF_HUB_OFFLINE" in e.value.fix


def test_what_counts_as_a_path(tmp_path, monkeypatch):
    from superalign.models.embedded import looks_like_path
    monkeypatch.chdir(tmp_path)
    assert not looks_like_path("Qwen/Qwen2.5-0.5B-Instruct")
    assert all(looks_like_path(p) for p in ("/abs/x", "./rel", "../up", "~/m"))
    (tmp_path / "org" / "local").mkdir(parents=True)
    assert looks_like_path("org/local")  # an existing directory wins over a hub id
    from superalign.models.local import LocalLM
    with pytest.raises(SuperalignError, match="does not exist"):
        LocalLM("~/no-such-superalign-model", device="cpu")


def test_hf_spec_options_and_local_directory(tmp_path):
    from superalign import data
    d = tmp_path / "qa"
    d.mkdir()
    (d / "validation.jsonl").write_text(json.dumps({"q": "Why?", "y": 1, "k": "c1"}) + "\n")
    rows = data.load_all(f"hf:{d}?split=validation&prompt=q&label=y&category=k")
    assert [(r["prompt"], r["label"], r["category"]) for r in rows] == [("Why?", 1, "c1")]
    with pytest.raises(SuperalignError, match="no split 'test'"):
        data.load_all(f"hf:{d}?split=test")
    with pytest.raises(SuperalignError, match="no column"):
        data.load_all(f"hf:{d}?split=validation&prompt=nope")
    with pytest.raises(SuperalignError, match="unknown option"):
        data.parse_hf("hf:org/x?colum=a")
    assert data.parse_hf("hf:org/x:cfg?split=test") == ("org/x", "cfg", {"split": "test"})
    with pytest.raises(SuperalignError, match="data file .* does not exist"):
        data.load_all("./no-such-file.jsonl")
