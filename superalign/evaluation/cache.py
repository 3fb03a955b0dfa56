"""A disk cache of whole evaluations, keyed by everything that decides their outcome.

Every run of a seed starts by evaluating the same untrained learner on the same test and validation items with
the same judge: on a 2-core CPU that was a third of a run's evaluation time. Greedy decoding is deterministic, so
an evaluation is a function of (model, its adapter weights, dtype, the items, the judge, the answer length, the
evaluation code) and can be read back instead of recomputed. The key holds each of these: a different model,
adapter state, seed, set size, judge or code version is a different entry (tests/test_speed.py checks each).
"""
from __future__ import annotations

import hashlib
import json
import os
from functools import lru_cache
from pathlib import Path

from superalign import assets


@lru_cache(maxsize=1)
def code_version() -> str:
    """A hash of the package's source and its versioned data files (the value axes' items and judge labels): an
    evaluation cached by other code or data is never read back."""
    h = hashlib.sha1()
    root = Path(__file__).resolve().parents[1]
    for p in sorted([*root.rglob("*.py"), *(root / "data" / "files").glob("*.jsonl")]):
        h.update(str(p.relative_to(root)).encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


def weights_hash(model) -> str:
    """A hash of a model's trainable state (its LoRA adapter, or nothing for a frozen model) plus its identity."""
    import torch
    h = hashlib.sha1(str(getattr(model, "name_or_path", "")).encode())
    for name, p in sorted(model.named_parameters()):
        if p.requires_grad or "lora_" in name:
            h.update(name.encode())
            h.update(p.detach().to(torch.float32).cpu().numpy().tobytes())
    h.update(str(getattr(model, "dtype", "")).encode())
    return h.hexdigest()[:16]


def key(**parts) -> str:
    parts["code"] = code_version()
    return hashlib.sha1(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def _path(k: str) -> Path:
    """Under the asset cache, or `SUPERALIGN_EVAL_CACHE` (the test suite points it at a fresh folder per session)."""
    from superalign.assets import cache_dir
    root = os.environ.get("SUPERALIGN_EVAL_CACHE")
    return (Path(root) if root else cache_dir() / "evals") / f"{k}.json"


def load(k: str) -> dict | None:
    """The cached evaluation, or None (missing, unreadable or corrupt: it is simply recomputed)."""
    p = _path(k)
    try:
        return json.loads(p.read_text())
    except (OSError, ValueError):
        return None


def save(k: str, result: dict) -> None:
    """Best effort (a read-only or full cache directory only costs the reuse), written atomically."""
    p = _path(k)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = assets.tmp_sibling(p)
        tmp.write_text(json.dumps(result))
        tmp.replace(p)
    except OSError:
        pass
