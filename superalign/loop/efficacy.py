"""Does the loop beat a tuned static fine-tune? The analysis side of bench/loop_efficacy.py, as library functions.

An arm's result for one seed is `{"outcomes": suite.outcomes(...), "val": {metric: [0/1 per item]}, ...}`: per-item
test outcomes by metric (the same items for every arm of a seed) and, for selection, per-item outcomes on the
validation items. Rates pool the seeds' items (Wilson CIs); paired changes pool the item pairs (exact McNemar);
the relative change gets a bootstrap CI resampling items within each seed.

Every choice is made on validation items, never on test: the static frontier's point compared with the loop is
the one with the lowest validation compliance among those whose validation look-alike over-refusal is within the
loop's + `tolerance` (`matched`). Judge errors are corrected per arm with the audit's confusion matrix on that arm's
own answers (`corrected`).
"""
from __future__ import annotations

import numpy as np

from superalign import stats

# The seeds design experiments never read: the efficacy and value-axes benches' headline seeds, and the efficacy
# bench's confirmatory seeds (docs/preregistration.md). One tuple that every design bench refuses.
HEADLINE_SEEDS = (10, 11, 12)
CONFIRM_SEEDS = (16, 17, 18)
RESERVED_SEEDS = HEADLINE_SEEDS + CONFIRM_SEEDS
DEV_SEEDS = (0, 1, 2)  # the seeds the design was developed on: reported apart


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


def youden(per_seed: dict, arm: str, metric: str, control: str) -> dict | None:
    """An arm's discrimination on an axis (`stats.youden`: 1 - metric - control), items pooled over seeds."""
    bad, ctl = pooled(per_seed, arm, metric), pooled(per_seed, arm, control)
    return stats.youden(bad, ctl) if bad and ctl else None


def paired_youden(per_seed: dict, a: str, b: str, metric: str, control: str) -> dict | None:
    """b's discrimination - a's on the same items, pooled over seeds (`stats.youden_change`)."""
    before, after = (pool_seeds({s: per_seed[s][x]["outcomes"] for s in per_seed}) for x in (a, b))
    return stats.youden_change(before, after, metric, control)


def pool_seeds(per_seed: dict) -> dict:
    """Several seeds' item outcomes (or per-item scores) as one evaluation: {metric: {"seed:item id": value}}, so a
    paired test counts every seed's items once and never pairs items across seeds."""
    out: dict = {}
    for s, oc in per_seed.items():
        for name, items in oc.items():
            if isinstance(items, dict):
                out.setdefault(name, {}).update({f"{s}:{i}": v for i, v in items.items()})
    return out


def of_slice(ps: dict, slices: dict, part: str, value: str) -> dict:
    """`ps` ({seed: {arm: record}}) with each arm's compliance outcomes cut to one slice (`part` form, category or
    source equal to `value`, read from the base arm's slices), so `rate` and `paired` measure that slice alone."""
    return {s: {arm: {"outcomes": {"compliance": {i: v for i, v in x["outcomes"]["compliance"].items()
                                                  if slices[s].get(i, {}).get(part) == value}}}
                for arm, x in ps[s].items()} for s in ps}


def mean(per_seed: dict, arm: str, metric: str) -> dict | None:
    """A continuous per-item metric (helpfulness: log-likelihood per token) pooled over seeds, bootstrap CI."""
    v = [x for s in per_seed for x in per_seed[s][arm]["outcomes"].get(metric, {}).values()]
    if not v:
        return None
    m, lo, hi = stats.bootstrap_ci(v)
    return {"value": m, "ci": [lo, hi], "n": len(v)}


def paired_mean(per_seed: dict, a: str, b: str, metric: str) -> dict | None:
    """b - a of a continuous metric on the same items, pooled: mean difference, bootstrap CI, Wilcoxon p."""
    from scipy.stats import wilcoxon
    d = []
    for s in per_seed:
        oa, ob = per_seed[s][a]["outcomes"].get(metric, {}), per_seed[s][b]["outcomes"].get(metric, {})
        d += [ob[i] - oa[i] for i in sorted(set(oa) & set(ob))]
    if not d:
        return None
    m, lo, hi = stats.bootstrap_ci(d)
    p = float(wilcoxon(d).pvalue) if any(x != 0 for x in d) else 1.0
    return {"diff": m, "ci": [lo, hi], "p": p, "n": len(d)}


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


def corrected(k: int, n: int, ppv: tuple[int, int], npv: tuple[int, int], n_boot: int = 4000, seed: int = 0) -> dict:
    """A judge-measured rate corrected with the judge's confusion on the same arm's hand-labelled answers.

    The audit samples answers stratified by the judge's verdict, so what it estimates directly, per stratum, is how
    often the judge is right: `ppv` = (answers the judge counts positive that are positive by hand, answers the
    judge counts positive), `npv` likewise for its negatives. The arm's true rate is then
    observed x PPV + (1 - observed) x (1 - NPV) (the confusion-matrix estimator; with sensitivity and specificity
    instead it is Rogan-Gladen). The interval is a parametric bootstrap over the observed rate and both audit
    proportions (Beta posteriors, uniform prior), so a small audit widens it. Also returned: the judge's accuracy
    and false-negative / false-positive rates on this arm's answer population (the sample reweighted to it)."""
    obs = k / n if n else float("nan")
    pp = ppv[0] / ppv[1] if ppv[1] else float("nan")
    nn = npv[0] / npv[1] if npv[1] else float("nan")

    def part(share: float, rate: float) -> float:
        # a verdict the judge never gave on this arm (share 0) adds nothing, though its stratum has no sample
        return 0.0 if share == 0 else share * rate
    est = part(obs, pp) + part(1 - obs, 1 - nn)
    rng = np.random.default_rng(seed)
    o = rng.beta(k + 1, n - k + 1, n_boot)
    a = rng.beta(ppv[0] + 1, ppv[1] - ppv[0] + 1, n_boot)
    b = rng.beta(npv[0] + 1, npv[1] - npv[0] + 1, n_boot)
    v = o * a + (1 - o) * (1 - b)
    true_pos = part(obs, pp)
    missed = part(1 - obs, 1 - nn)  # true positives the judge called negative
    false_pos, true_neg = part(obs, 1 - pp), part(1 - obs, nn)
    return {"value": float(est), "ci": [float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5))],
            "observed": obs, "ppv": pp, "npv": nn, "audit_n": ppv[1] + npv[1],
            "accuracy": float(true_pos + true_neg),
            "false_negative_rate": float(missed / (true_pos + missed)) if true_pos + missed > 0 else float("nan"),
            "false_positive_rate": float(false_pos / (false_pos + true_neg)) if false_pos + true_neg > 0
            else float("nan")}


def phase_decisions(run_dir, upto: int | None = None) -> list[dict]:
    """What the guard did with each of a loop run's learner phases, read from its checkpoint records: kept or
    rolled back and why, the value mix it trained on, its optimizer steps, its guard split's compliance and
    look-alike over-refusal before -> after, and every guarded metric's paired test there (`guard`: before, after,
    p, n; n says what the guard could have flagged at all, `stats.min_detectable_paired`). Both benches print
    this because a phase rolled back in one arm and kept in another decides more of a seed's result than the
    arm's design does. `phase` is the checkpoint id ("r1:conformity"), unique within a run."""
    from superalign.store.summary import RunSummary
    out = []
    for c in RunSummary.of(run_dir).checkpoints:
        if (upto is not None and (c.round or 0) > upto) or c.role not in (None, "learner"):
            continue
        b, f = c.meta.get("val_before") or {}, c.meta.get("val_after") or {}
        out.append({"phase": c.id, "round": c.round, "kept": bool(c.accepted), "mix": c.meta.get("mix"),
                    "regressions": c.meta.get("regressions") or [],
                    "why": c.meta.get("why"),  # undone for another reason: every candidate regressed on
                    # val_select, or none scored above the phase's start (loop.start_competes)
                    "steps": (c.meta.get("train") or {}).get("steps"),  # None: no candidate was kept
                    "guard": {t["name"].removesuffix("_change"): {"before": t["meta"].get("before"),
                                                                   "after": t["meta"].get("after"),
                                                                   "p": t["meta"].get("p_value"), "n": t["n"]}
                              for t in c.meta.get("guard_tests") or []},
                    **{f"{m}_{w}": v.get(m) for m in ("compliance", "over_refusal")
                       for w, v in (("before", b), ("after", f))}})
    return out
