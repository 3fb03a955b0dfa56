"""Fitting the classifier critic's heads: on the seed-fixed train part of a human-labelled set (plus any labels the
run's humans gave), measured on the held-out part. Fitting lives here, with the training code; the `classifier`
backend (models/classifier.py) only judges with heads it is handed.
"""
from __future__ import annotations

import hashlib

import numpy as np

from superalign import data
from superalign.assets import cache_dir, tmp_sibling
from superalign.models.classifier import ClassifierJudge, Head
from superalign.models.config import Classifier


def fit_classifier(cfg: Classifier, seed: int = 0) -> ClassifierJudge:
    """A classifier backend with one fitted head per label set in `cfg.heads`."""
    judge = ClassifierJudge(cfg.embedder, holdout=cfg.holdout, seed=seed)
    for name in cfg.heads or ["refusal_labels"]:
        refit(judge, name)
    return judge


def refit(judge: ClassifierJudge, dataset: str, extra: list[dict] | None = None) -> Head:
    """Fit `judge`'s head for `dataset` on its train part (+ `extra` labelled rows); score the held-out part."""
    from sklearn.metrics import roc_auc_score
    rows = data.load(dataset, "all", seed=judge.seed)
    cut = int(len(rows) * (1 - judge.holdout))
    train, test = rows[:cut] + list(extra or []), rows[cut:]
    head = Head(dataset, seed=judge.seed)
    xall = label_set_features(judge, head, dataset, rows)
    xtr, xte = xall[:cut], xall[cut:]
    if extra:
        xtr = np.vstack([xtr, head.features(judge.emb, [r["prompt"] for r in extra], [r["response"] for r in extra])])
    ytr = np.array([float(r["label"]) >= 0.5 for r in train], dtype=int)
    head.fit(xtr, ytr)
    yte = np.array([float(r["label"]) >= 0.5 for r in test], dtype=int)
    p = head.proba(xte)
    head.holdout = {"n": len(test), "accuracy": float(((p >= 0.5) == yte).mean()),
                    "auroc": float(roc_auc_score(yte, p)) if len(set(yte)) > 1 else float("nan"),
                    "majority": float(max(yte.mean(), 1 - yte.mean()))}
    head.test_ids = [r["id"] for r in test]
    judge.heads[dataset] = head
    return head


def label_set_features(judge: ClassifierJudge, head: Head, dataset: str, rows: list[dict]) -> np.ndarray:
    """Features of a shipped label set, cached on disk: embedding ~1,500 texts costs a minute
    on 2 CPU cores, and every run's critic needs the same ones."""
    key = hashlib.sha256(("\n".join(r["id"] for r in rows) + judge.emb.name).encode()).hexdigest()[:16]
    path = cache_dir() / "judge" / f"{dataset.replace('/', '_')}-{key}.npy"
    if path.exists():
        try:
            x = np.load(path)
            if x.shape[0] == len(rows):
                return x
        except (OSError, ValueError):
            pass  # a corrupt cache file is recomputed below
    x = head.features(judge.emb, [r["prompt"] for r in rows], [r["response"] for r in rows])
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_sibling(path)
    np.save(tmp, x)
    tmp.replace(path)
    return x
