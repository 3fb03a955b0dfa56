"""Accuracy, PGR and their uncertainty.

PGR is computed once per task from seed-mean accuracies, PGR = (w2s - weak) / (ceiling - weak), not as a mean of
per-seed ratios (a seed with a near-zero gap makes its ratio explode). Its 95% interval comes from a two-level
bootstrap: resample seeds, then test items within each seed, paired across methods (one resample scores every
method on the same items). PGR is withheld, with the reason, when the gap's interval includes 0 or the weak
model's accuracy interval reaches chance: there is then no gap to recover, and a ratio would only be noise.
With a data-matched control (the weak architecture on the ceiling's gold rows) the gap gets a kind: `capacity`
when ceiling - control excludes 0, else `data` (the weak model is weaker for lack of labels, not of capacity; a
few-label supervisor); PGR is then reported with that kind, never read as a capacity result.
"""
from __future__ import annotations

from typing import Any

import numpy as np


def pgr(weak: float, w2s: float, ceiling: float) -> float:
    """Performance gap recovered; NaN when there is no gap (ceiling <= weak)."""
    gap = ceiling - weak
    return float("nan") if gap < 1e-9 else (w2s - weak) / gap


def accuracy(probs: np.ndarray, y: np.ndarray) -> float:
    return float((probs.argmax(-1) == y).mean())


def auroc(probs: np.ndarray, y: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score
    if len(set(y.tolist())) < 2:
        return float("nan")
    if probs.shape[1] == 2:
        return float(roc_auc_score(y, probs[:, 1]))
    try:
        return float(roc_auc_score(y, probs / probs.sum(1, keepdims=True), multi_class="ovr",
                                   labels=list(range(probs.shape[1]))))
    except ValueError:  # a class absent from this test split
        return float("nan")


def bootstrap_accuracies(correct: dict[str, list[np.ndarray]], samples: int = 2000, seed: int = 0) -> dict:
    """`correct[method][s]`: 0/1 per test item of seed s (same items for every method of a seed).
    Returns {method: (samples,) seed-mean accuracies} under seeds x items resampling, paired across methods."""
    rng = np.random.default_rng(seed)
    methods = list(correct)
    n_seeds = len(correct[methods[0]])
    per_seed = {m: np.zeros((n_seeds, samples)) for m in methods}
    for s in range(n_seeds):
        n = len(correct[methods[0]][s])
        idx = rng.integers(0, n, size=(samples, n))
        for m in methods:
            per_seed[m][s] = np.asarray(correct[m][s], dtype=np.float64)[idx].mean(1)
    pick = rng.integers(0, n_seeds, size=(samples, n_seeds))
    cols = np.arange(samples)[:, None]
    return {m: per_seed[m][pick, cols].mean(1) for m in methods}


def _ci(x: np.ndarray) -> list[float]:
    x = x[np.isfinite(x)]
    return [float(np.quantile(x, 0.025)), float(np.quantile(x, 0.975))] if len(x) else [float("nan")] * 2


def summarise(correct: dict[str, list[np.ndarray]], chance: float, w2s_methods: list[str],
              samples: int = 2000, seed: int = 0) -> dict:
    """Accuracies (seed mean + CI), gap = ceiling - weak and, with a `control`, the capacity gap
    ceiling - control (CIs) and the gap's kind, and PGR per w2s method with its CI, or the reason it is withheld."""
    boot = bootstrap_accuracies(correct, samples, seed)
    mean = {m: float(np.mean([np.mean(c) for c in cs])) for m, cs in correct.items()}
    out: dict[str, Any] = {"accuracy": {m: mean[m] for m in correct}, "accuracy_ci": {m: _ci(boot[m]) for m in correct},
           "chance": chance, "seeds": len(correct["weak"])}
    gap_b = boot["ceiling"] - boot["weak"]
    out["gap"], out["gap_ci"] = mean["ceiling"] - mean["weak"], _ci(gap_b)
    if "control" in correct:
        out["capacity_gap"] = mean["ceiling"] - mean["control"]
        out["capacity_gap_ci"] = _ci(boot["ceiling"] - boot["control"])
        out["gap_kind"] = ("none" if out["gap_ci"][0] <= 0 else "capacity" if out["capacity_gap_ci"][0] > 0
                           else "data")
    reason = None
    if out["gap_ci"][0] <= 0:
        reason = f"gap CI [{out['gap_ci'][0]:+.3f}, {out['gap_ci'][1]:+.3f}] includes 0"
    elif out["accuracy_ci"]["weak"][0] <= chance:
        reason = f"weak accuracy CI reaches chance ({chance:.3f})"
    out["pgr_withheld"] = reason
    out["pgr"], out["pgr_ci"] = {}, {}
    for m in w2s_methods:
        if m not in correct:
            continue
        if reason is None:
            with np.errstate(divide="ignore", invalid="ignore"):
                b = np.where(gap_b > 1e-9, (boot[m] - boot["weak"]) / gap_b, np.nan)
            out["pgr"][m] = pgr(mean["weak"], mean[m], mean["ceiling"])
            out["pgr_ci"][m] = _ci(b)
        else:
            out["pgr"][m], out["pgr_ci"][m] = None, None
    return out
