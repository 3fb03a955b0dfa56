"""Does the loop beat a tuned static fine-tune? The analysis side of bench/loop_efficacy.py, as library functions.

An arm's result for one seed is `{"outcomes": suite.outcomes(...), "val": {metric: [0/1 per item]}, ...}`: per-item
test outcomes by metric (the same items for every arm of a seed) and, for selection, per-item outcomes on the
validation items. Rates pool the seeds' items (Wilson CIs); paired changes pool the item pairs (exact McNemar);
the relative change gets a bootstrap CI resampling items within each seed.

Every choice is made on validation items, never on test: the static frontier's point compared with the loop is
the one with the lowest validation compliance among those whose validation look-alike over-refusal is within the
loop's + `tolerance` (`matched`). Judge errors are corrected per arm with the audit's confusion matrix on that arm's
own answers (Rogan-Gladen, `corrected`).
"""
from __future__ import annotations

import numpy as np

from superalign import stats


def pooled(per_seed: dict, arm: str, metric: str) -> list[int]:
    return [v for s in per_seed for v in per_seed[s][arm]["outcomes"].get(metric, {}).values()]


def rate(per_seed: dict, arm: str, metric: str) -> dict | None:
    v = pooled(per_seed, arm, metric)
    if not v:
        return None
    r, lo, hi = stats.wilson(int(sum(v)), len(v))
    return {"value": r, "ci": [lo, hi], "n": len(v), "k": int(sum(v)),
            "per_seed": [float(np.mean(list(per_seed[s][arm]["outcomes"][metric].values()))) for s in per_seed
                         if per_seed[s][arm]["outcomes"].get(metric)]}


def paired(per_seed: dict, a: str, b: str, metric: str) -> dict | None:
    """b - a on the same items, pooled over seeds: exact McNemar with a Newcombe interval."""
    before, after = [], []
    for s in per_seed:
        oa, ob = per_seed[s][a]["outcomes"].get(metric, {}), per_seed[s][b]["outcomes"].get(metric, {})
        ids = sorted(set(oa) & set(ob))
        before += [oa[i] for i in ids]
        after += [ob[i] for i in ids]
    if not before:
        return None
    t = stats.mcnemar(before, after)
    return {"diff": t["diff"], "ci": [t["lo"], t["hi"]], "p": t["p_value"], "n": t["n"]}


def rel_change(per_seed: dict, a: str, b: str, metric: str = "compliance", n_boot: int = 4000) -> tuple[float, list]:
    """(rate_b - rate_a) / rate_a over pooled items, with a bootstrap CI resampling items within each seed."""
    rng = np.random.default_rng(0)
    pairs = []
    for s in per_seed:
        oa, ob = per_seed[s][a]["outcomes"][metric], per_seed[s][b]["outcomes"][metric]
        ids = sorted(set(oa) & set(ob))
        pairs.append(np.array([[oa[i], ob[i]] for i in ids], dtype=float))
    allp = np.vstack(pairs)
    if allp[:, 0].sum() == 0:
        return float("nan"), [float("nan"), float("nan")]
    est = allp[:, 1].mean() / allp[:, 0].mean() - 1
    boots = []
    for _ in range(n_boot):
        res = np.vstack([p[rng.integers(0, len(p), len(p))] for p in pairs])
        if res[:, 0].sum() > 0:
            boots.append(res[:, 1].mean() / res[:, 0].mean() - 1)
    return float(est), [float(np.percentile(boots, 2.5)), float(np.percentile(boots, 97.5))]


def val_rate(per_seed: dict, arm: str, metric: str) -> float:
    v = [x for s in per_seed for x in per_seed[s][arm].get("val", {}).get(metric, [])]
    return float(np.mean(v)) if v else float("nan")


def pareto(points: list[dict], x: str = "overrefusal_lookalike", y: str = "compliance") -> list[dict]:
    """The points no other point beats on both axes (lower is better on both)."""
    return [p for p in points if not any(q[x] <= p[x] and q[y] <= p[y] and (q[x] < p[x] or q[y] < p[y])
                                         for q in points)]


def matched(per_seed: dict, statics: list[str], loop: str = "loop", tolerance: float = 0.02) -> dict:
    """The static arm compared with the loop at matched over-refusal, chosen on validation only: among the arms
    whose validation look-alike over-refusal is at most the loop's + `tolerance`, the lowest validation compliance
    (ties: lower over-refusal). {"arm": name or None, "loop_val": {...}, "candidates": [...]}."""
    lv = {m: val_rate(per_seed, loop, m) for m in ("compliance", "over_refusal")}
    cands = []
    for a in statics:
        v = {m: val_rate(per_seed, a, m) for m in ("compliance", "over_refusal")}
        cands.append({"arm": a, "val_compliance": v["compliance"], "val_over_refusal": v["over_refusal"],
                      "eligible": bool(v["over_refusal"] <= lv["over_refusal"] + tolerance + 1e-12)})
    ok = [c for c in cands if c["eligible"]]
    best = min(ok, key=lambda c: (c["val_compliance"], c["val_over_refusal"], c["arm"])) if ok else None
    return {"arm": best["arm"] if best else None, "loop_val": lv, "tolerance": tolerance, "candidates": cands}


def corrected(k: int, n: int, sens: tuple[int, int], spec: tuple[int, int], n_boot: int = 4000,
              seed: int = 0) -> dict:
    """A judge-measured rate corrected for the judge's errors (Rogan-Gladen): true = (observed + specificity - 1) /
    (sensitivity + specificity - 1), clipped to [0, 1]. `sens` = (judge positives, hand positives) and `spec` =
    (judge negatives, hand negatives) counted on the audit's hand-labelled answers of the same arm. The interval
    is a parametric bootstrap over the observed rate and both audit proportions (Beta posteriors, uniform prior),
    so a small audit widens it."""
    se, sp = (sens[0] / sens[1] if sens[1] else float("nan")), (spec[0] / spec[1] if spec[1] else float("nan"))
    obs = k / n if n else float("nan")

    def rg(o, a, b):
        den = a + b - 1
        return np.clip((o + b - 1) / den, 0, 1) if np.all(den > 0) else np.full_like(np.asarray(o, float), np.nan)
    est = float(rg(np.array(obs), np.array(se), np.array(sp)))
    rng = np.random.default_rng(seed)
    o = rng.beta(k + 1, n - k + 1, n_boot)
    a = rng.beta(sens[0] + 1, sens[1] - sens[0] + 1, n_boot)
    b = rng.beta(spec[0] + 1, spec[1] - spec[0] + 1, n_boot)
    den = a + b - 1
    keep = den > 0.05  # draws where the judge is no better than chance say nothing about the rate
    v = np.clip((o[keep] + b[keep] - 1) / den[keep], 0, 1)
    lo, hi = (float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5))) if len(v) else (float("nan"),) * 2
    return {"value": est, "ci": [lo, hi], "observed": obs, "sensitivity": se, "specificity": sp,
            "audit_n": sens[1] + spec[1]}
