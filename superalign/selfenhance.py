"""Paired before/after tests on the same items, and the self-enhancement verdict built on them.

When a model is its own critic (`loop.critic: self`) the question is whether a round made it better on the
same items, not whether two accuracies with overlapping intervals differ. The test is on the discordant
pairs: McNemar's exact test with Newcombe's interval of the accuracy difference — `superalign.stats.mcnemar`, the
one implementation the guard and the evaluation's paired changes use too. Sandwiching uses the same test for
assisted vs judge alone.
"""
from __future__ import annotations

import numpy as np

from superalign.errors import SuperalignError
from superalign.stats import mcnemar

VERDICTS = ("improves", "stalls", "collapses")


def _binary(name: str, values) -> np.ndarray:
    v = np.asarray(values, dtype=float)
    if v.ndim != 1 or not np.all(np.isin(v, (0.0, 1.0))):
        raise SuperalignError(f"{name} must be a flat list of per-item 0/1 correctness values",
                              "pass one 0 or 1 per item, in the same item order for before and after")
    return v


def paired_test(before, after, alpha: float = 0.05) -> dict:
    """Paired comparison of per-item correctness on the same items (`stats.mcnemar`).

    Returns n, before/after accuracy, diff = after - before with its Newcombe interval (lo, hi),
    `better` (wrong before, right after), `worse` (right before, wrong after), and the two-sided
    McNemar exact p-value (1.0 when no item changed)."""
    b, a = _binary("before", before), _binary("after", after)
    if len(b) != len(a):
        raise SuperalignError(f"before has {len(b)} items and after {len(a)}: a paired test needs the same items",
                              "evaluate both on the same item list")
    if len(b) == 0:
        raise SuperalignError("no items to compare", "evaluate on at least one item")
    t = mcnemar(b, a, alpha)
    return {"n": t["n"], "before": t["before"], "after": t["after"], "diff": t["diff"], "lo": t["lo"], "hi": t["hi"],
            "better": t["c_after_only"], "worse": t["b_before_only"], "p": t["p_value"]}


def verdict(before, after, alpha: float = 0.05) -> dict:
    """`paired_test` plus "verdict": "improves" only when the change is positive and significant
    (p < alpha), "collapses" when negative and significant, else "stalls" (no detectable change)."""
    t = paired_test(before, after, alpha=alpha)
    if t["p"] < alpha and t["diff"] > 0:
        t["verdict"] = "improves"
    elif t["p"] < alpha and t["diff"] < 0:
        t["verdict"] = "collapses"
    else:
        t["verdict"] = "stalls"
    t["alpha"] = alpha
    return t
