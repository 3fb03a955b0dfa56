"""Paired before/after tests on the same items, and the self-enhancement verdict built on them.

When a model is its own critic (`loop.critic: self`) the question is whether a round made it better on the
same items, not whether two accuracies with overlapping intervals differ. The test is on the discordant
pairs: McNemar's exact test (a binomial test of "fixed" against "broken" items at p = 1/2), with a paired
bootstrap interval of the accuracy difference. Sandwiching uses the same test for assisted vs judge alone.
"""
from __future__ import annotations

import numpy as np

from superalign.errors import SuperalignError

VERDICTS = ("improves", "stalls", "collapses")


def _binary(name: str, values) -> np.ndarray:
    v = np.asarray(values, dtype=float)
    if v.ndim != 1 or not np.all(np.isin(v, (0.0, 1.0))):
        raise SuperalignError(f"{name} must be a flat list of per-item 0/1 correctness values",
                              "pass one 0 or 1 per item, in the same item order for before and after")
    return v


def paired_test(before, after, n_boot: int = 2000, alpha: float = 0.05, seed: int = 0) -> dict:
    """Paired comparison of per-item correctness on the same items.

    Returns n, before/after accuracy, diff = after - before with its paired bootstrap CI (lo, hi),
    `better` (wrong before, right after), `worse` (right before, wrong after), and the two-sided
    McNemar exact p-value (1.0 when no item changed)."""
    from scipy.stats import binomtest
    b, a = _binary("before", before), _binary("after", after)
    if len(b) != len(a):
        raise SuperalignError(f"before has {len(b)} items and after {len(a)}: a paired test needs the same items",
                              "evaluate both on the same item list")
    if len(b) == 0:
        raise SuperalignError("no items to compare", "evaluate on at least one item")
    better, worse = int(np.sum((b == 0) & (a == 1))), int(np.sum((b == 1) & (a == 0)))
    p = float(binomtest(better, better + worse, 0.5).pvalue) if better + worse else 1.0
    d = a - b
    idx = np.random.default_rng(seed).integers(0, len(d), size=(n_boot, len(d)))
    boots = d[idx].mean(axis=1)
    return {"n": len(d), "before": float(b.mean()), "after": float(a.mean()), "diff": float(d.mean()),
            "lo": float(np.quantile(boots, alpha / 2)), "hi": float(np.quantile(boots, 1 - alpha / 2)),
            "better": better, "worse": worse, "p": p}


def verdict(before, after, alpha: float = 0.05, seed: int = 0) -> dict:
    """`paired_test` plus "verdict": "improves" only when the change is positive and significant
    (p < alpha), "collapses" when negative and significant, else "stalls" (no detectable change)."""
    t = paired_test(before, after, alpha=alpha, seed=seed)
    if t["p"] < alpha and t["diff"] > 0:
        t["verdict"] = "improves"
    elif t["p"] < alpha and t["diff"] < 0:
        t["verdict"] = "collapses"
    else:
        t["verdict"] = "stalls"
    t["alpha"] = alpha
    return t
