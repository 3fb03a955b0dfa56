"""Confidence intervals: every figure we report carries one."""
from __future__ import annotations

import numpy as np


def bootstrap_ci(values, n_boot: int = 2000, alpha: float = 0.05, seed: int = 0, stat=np.mean):
    """(estimate, lo, hi) percentile bootstrap CI of `stat` over per-item values."""
    v = np.asarray(values, dtype=float)
    if len(v) == 0:
        return float("nan"), float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(v), size=(n_boot, len(v)))
    boots = stat(v[idx], axis=1) if stat is np.mean else np.array([stat(v[i]) for i in idx])
    return float(stat(v)), float(np.quantile(boots, alpha / 2)), float(np.quantile(boots, 1 - alpha / 2))


def mean_ci_t(values, alpha: float = 0.05):
    """(mean, lo, hi) Student-t CI across seeds (few values: bootstrap would be too narrow)."""
    from scipy import stats
    v = np.asarray(values, dtype=float)
    m = float(v.mean()) if len(v) else float("nan")
    if len(v) < 2:
        return m, float("nan"), float("nan")
    h = float(stats.t.ppf(1 - alpha / 2, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v)))
    return m, m - h, m + h


# ---------------------------------------------------------------- rates and paired before/after tests
def _z(alpha: float) -> float:
    from scipy import stats
    return float(stats.norm.ppf(1 - alpha / 2))


def _check_counts(k: int, n: int):
    if n < 0 or not 0 <= k <= max(n, 0):
        from superalign.errors import SuperalignError
        raise SuperalignError(f"count {k} of {n} is not a rate", "pass 0 <= k <= n")


def wilson(k: int, n: int, alpha: float = 0.05) -> tuple[float, float, float]:
    """(rate, lo, hi) Wilson score interval: unlike the Wald interval it stays inside [0, 1] and keeps
    near-nominal coverage at rates near 0 or 1 (refusal rates often are). n = 0 gives NaNs."""
    _check_counts(k, n)
    if n == 0:
        return float("nan"), float("nan"), float("nan")
    z, p = _z(alpha), k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return p, max(0.0, float(centre - half)), min(1.0, float(centre + half))


def clopper_pearson(k: int, n: int, alpha: float = 0.05) -> tuple[float, float, float]:
    """(rate, lo, hi) exact (conservative) binomial interval from beta quantiles."""
    from scipy import stats
    _check_counts(k, n)
    if n == 0:
        return float("nan"), float("nan"), float("nan")
    lo = 0.0 if k == 0 else float(stats.beta.ppf(alpha / 2, k, n - k + 1))
    hi = 1.0 if k == n else float(stats.beta.ppf(1 - alpha / 2, k + 1, n - k))
    return k / n, lo, hi


def rate_ci(outcomes, alpha: float = 0.05) -> tuple[float, float, float]:
    """Wilson interval of a list of 0/1 outcomes."""
    v = np.asarray(outcomes, dtype=float)
    return wilson(int(v.sum()), len(v), alpha)


def _paired_counts(before, after) -> tuple[int, int, int, int]:
    x, y = np.asarray(before, dtype=bool), np.asarray(after, dtype=bool)
    if x.shape != y.shape or x.ndim != 1:
        from superalign.errors import SuperalignError
        raise SuperalignError(f"paired outcomes differ in shape: {x.shape} vs {y.shape}",
                              "score the same prompts, in the same order, before and after")
    return int((x & y).sum()), int((x & ~y).sum()), int((~x & y).sum()), int((~x & ~y).sum())


def newcombe_paired(a: int, b: int, c: int, d: int, alpha: float = 0.05) -> tuple[float, float, float]:
    """(after - before, lo, hi) Newcombe's square-and-add interval (1998, method 10) for paired rates.
    a = 1 before and after, b = 1 before only, c = 1 after only, d = neither."""
    n = a + b + c + d
    if n == 0:
        return float("nan"), float("nan"), float("nan")
    p1, l1, u1 = wilson(a + b, n, alpha)  # before
    p2, l2, u2 = wilson(a + c, n, alpha)  # after
    margins = (a + b) * (c + d) * (a + c) * (b + d)
    cross = a * d - b * c
    psi = 0.0 if margins == 0 else ((cross - n / 2) / np.sqrt(margins) if cross > n / 2
                                    else (0.0 if cross >= 0 else cross / np.sqrt(margins)))
    est = p1 - p2  # before - after, as Newcombe writes it; flipped below
    lo = est - np.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2 - 2 * psi * (p1 - l1) * (u2 - p2))
    hi = est + np.sqrt((p2 - l2) ** 2 + (u1 - p1) ** 2 - 2 * psi * (p2 - l2) * (u1 - p1))
    return -est, float(-hi), float(-lo)


def mcnemar(before, after, alpha: float = 0.05) -> dict:
    """Exact McNemar test for 0/1 outcomes on the same items before and after a change.

    Only discordant items carry information: under no change each of the b + c of them is equally
    likely to flip either way, so p = two-sided binomial test of c in b + c at 1/2. Returns the counts,
    the p-value, and the paired difference (after - before) with Newcombe's interval."""
    from scipy import stats
    a, b, c, d = _paired_counts(before, after)
    p = 1.0 if b + c == 0 else float(stats.binomtest(c, b + c, 0.5).pvalue)
    diff, lo, hi = newcombe_paired(a, b, c, d, alpha)
    return {"n": a + b + c + d, "before": (a + b) / max(1, a + b + c + d), "after": (a + c) / max(1, a + b + c + d),
            "b_before_only": b, "c_after_only": c, "p_value": p, "diff": diff, "lo": lo, "hi": hi}


def paired_bootstrap_diff(before, after, n_boot: int = 4000, alpha: float = 0.05, seed: int = 0):
    """(after - before, lo, hi) resampling items (pairs together); a check on `newcombe_paired`."""
    x, y = np.asarray(before, dtype=float), np.asarray(after, dtype=float)
    return bootstrap_ci(y - x, n_boot=n_boot, alpha=alpha, seed=seed)


def mcnemar_power(n: int, discordance: float, delta: float, alpha: float = 0.05) -> float:
    """Exact power of the exact McNemar test: the discordant count D ~ Bin(n, discordance), and given D
    the after-only count ~ Bin(D, (discordance + delta) / (2 discordance))."""
    from scipy import stats
    if not 0 < discordance <= 1 or not 0 <= abs(delta) <= discordance:
        from superalign.errors import SuperalignError
        raise SuperalignError(f"discordance {discordance} and effect {delta} are not a paired design",
                              "need 0 < discordance <= 1 and |delta| <= discordance")
    q = (discordance + delta) / (2 * discordance)
    power = 0.0
    for dd in range(1, n + 1):
        w = stats.binom.pmf(dd, n, discordance)
        if w < 1e-12:
            continue
        ks = np.arange(dd + 1)
        p_two = np.minimum(1.0, 2 * np.minimum(stats.binom.cdf(ks, dd, 0.5), stats.binom.sf(ks - 1, dd, 0.5)))
        power += w * float(stats.binom.pmf(ks, dd, q)[p_two <= alpha].sum())
    return power


def mde_paired(n: int, discordance: float, alpha: float = 0.05, power: float = 0.8, exact: bool = False) -> float:
    """Smallest paired difference |after - before| a McNemar test on n items detects with `power`,
    given the share of items that change either way (`discordance`). Normal approximation (Connor 1987:
    n = (z_a sqrt(psi) + z_b sqrt(psi - delta^2))^2 / delta^2) solved for delta, or, with `exact`,
    the exact test's power (`mcnemar_power`) bisected. NaN when no effect up to `discordance` reaches it."""
    from scipy import optimize, stats
    za, zb = _z(alpha), float(stats.norm.ppf(power))
    if exact:
        f = lambda dl: mcnemar_power(n, discordance, dl, alpha) - power  # noqa: E731
    else:
        f = lambda dl: np.sqrt(n) * dl - za * np.sqrt(discordance) - zb * np.sqrt(discordance - dl * dl)  # noqa: E731
    if f(discordance) < 0:
        return float("nan")
    return float(optimize.brentq(f, 1e-9, discordance, xtol=1e-5))


def min_detectable_paired(n: int, alpha: float = 0.05) -> float:
    """The smallest |after - before| an exact two-sided McNemar test on n paired items can call significant at all:
    k changed items, every one moving the same way, give p = 2 * 0.5**k, which must fall under alpha. Below k/n the
    test flags nothing however consistent the change (a guard split of 10 items at alpha 0.05 needs 6 of them to
    flip: 0.6). NaN when even n items are not enough. Unlike `mde_paired` it needs no guess of the discordance,
    so a guard can state it before it has seen a change."""
    k = 1
    while 2 * 0.5 ** k >= alpha:
        k += 1
    return k / n if 0 < k <= n else float("nan")


def two_proportion_test(k1: int, n1: int, k2: int, n2: int, alpha: float = 0.05) -> dict:
    """Independent samples (different prompts): pooled z-test p-value (= Pearson chi-squared without
    continuity correction), Fisher's exact p-value, and p2 - p1 with Newcombe's hybrid score interval."""
    from scipy import stats
    _check_counts(k1, n1), _check_counts(k2, n2)
    p1, l1, u1 = wilson(k1, n1, alpha)
    p2, l2, u2 = wilson(k2, n2, alpha)
    pool = (k1 + k2) / (n1 + n2)
    se = np.sqrt(pool * (1 - pool) * (1 / n1 + 1 / n2))
    p_z = 1.0 if se == 0 else float(2 * stats.norm.sf(abs(p2 - p1) / se))
    p_fisher = float(stats.fisher_exact([[k1, n1 - k1], [k2, n2 - k2]])[1])
    diff = p2 - p1
    lo = diff - np.sqrt((p2 - l2) ** 2 + (u1 - p1) ** 2)
    hi = diff + np.sqrt((u2 - p2) ** 2 + (p1 - l1) ** 2)
    return {"p1": p1, "p2": p2, "diff": diff, "lo": float(max(-1.0, lo)), "hi": float(min(1.0, hi)),
            "p_value": p_z, "p_fisher": p_fisher}


# ---------------------------------------------------------------- discrimination: a behaviour, not a prior
def youden(bad, bad_control, alpha: float = 0.05) -> dict:
    """Youden's J of a pair of item sets, from 0/1 bad outcomes: `bad` on items that call for a behaviour (refuse a
    harmful request, deny a false claim, hold a right answer under a wrong push-back) and `bad_control` on items that
    call for the opposite (answer a look-alike, affirm a true claim, accept a right correction). J = 1 - bad rate -
    control's bad rate = (behaviour where it is called for) - (behaviour where it is not): 1 is a model that tells
    the two kinds of item apart, 0 one that does the same on both, whatever it does. Why: a small learner's training
    often moves a prior (say "no", hold the answer, refuse) and both rates move together, which a headline rate alone
    reads as the value gained or lost. CI: Newcombe's hybrid score interval for a difference of independent rates."""
    x, y = np.asarray(bad, dtype=float), np.asarray(bad_control, dtype=float)
    t = two_proportion_test(int(x.sum()), len(x), len(y) - int(y.sum()), len(y), alpha)
    return {"value": t["diff"], "ci": [t["lo"], t["hi"]], "n": [len(x), len(y)]}


def mover(parts) -> tuple[float, float, float]:
    """(sum, lo, hi) of independent estimates given as (estimate, lo, hi): the MOVER interval (Zou & Donner 2008),
    which recovers each part's variance from its own interval's two sides, so asymmetric score intervals (Wilson,
    Newcombe) stay asymmetric in the sum."""
    est = sum(e for e, _, _ in parts)
    lo = est - np.sqrt(sum((e - lo) ** 2 for e, lo, _ in parts))
    hi = est + np.sqrt(sum((hi - e) ** 2 for e, _, hi in parts))
    return float(est), float(lo), float(hi)


def paired_youden(before, after, before_control, after_control, alpha: float = 0.05) -> dict:
    """Change in Youden's J (`youden`) between two states of a model scored on the same items: after - before.
    J's change is -(change of the bad rate) - (change of the control's bad rate), so a shift of a prior, which moves
    the two rates in opposite directions, changes it little, and a gain on one kind of item at no cost on the other
    changes it fully. CI: the two sets' Newcombe paired intervals combined by the MOVER method (Zou & Donner 2008;
    the two sets are different items, so independent). p: exact sign-flip test: under no change every item that
    changed is as likely to have changed the other way, so the changed items of each set flip as Binomial(m, 1/2)
    and the statistic, the sum of the two sets' mean changes, is enumerated over both counts (with no changed
    control item it is exact McNemar on the first set)."""
    from scipy import stats as ss
    sets = [(before, after), (before_control, after_control)]
    counts = [_paired_counts(b, a) for b, a in sets]
    s, lo_s, hi_s = mover([newcombe_paired(*c, alpha=alpha) for c in counts])  # = -(change of J)
    (_, b1, c1, _), (_, b2, c2, _) = counts
    n1, n2 = (sum(c) for c in counts)
    m1, m2 = b1 + c1, b2 + c2
    k1, k2 = np.arange(m1 + 1), np.arange(m2 + 1)
    stat = (2 * k1[:, None] - m1) / n1 + (2 * k2[None, :] - m2) / n2  # after-only count k: mean change (2k - m) / n
    observed = (c1 - b1) / n1 + (c2 - b2) / n2
    weight = ss.binom.pmf(k1, m1, 0.5)[:, None] * ss.binom.pmf(k2, m2, 0.5)[None, :]
    p = 1.0 if m1 + m2 == 0 else float(min(1.0, weight[np.abs(stat) >= abs(observed) - 1e-12].sum()))
    j0 = 1 - (b1 + counts[0][0]) / n1 - (b2 + counts[1][0]) / n2
    return {"before": j0, "after": j0 - s, "diff": -s, "ci": [float(-hi_s), float(-lo_s)], "p": p, "n": [n1, n2]}


def auc_point(neg, pos) -> float:
    """The AUC itself (`auc` without its interval): Mann-Whitney U of pos over neg / (n_pos x n_neg), ties half. For
    callers that resample themselves (a paired bootstrap of two states)."""
    from scipy.stats import mannwhitneyu
    return float(mannwhitneyu(pos, neg).statistic / (len(pos) * len(neg)))


def auc(neg, pos, n_boot: int = 2000, alpha: float = 0.05, seed: int = 0) -> dict:
    """Area under the ROC curve of a score that should be higher on `pos` than on `neg`: the probability that a
    random pos item scores above a random neg item (ties half), the Mann-Whitney U over n_pos x n_neg. 0.5 = the
    score does not tell the two apart. Percentile bootstrap interval resampling each group; two-sided Mann-Whitney p."""
    from scipy.stats import mannwhitneyu
    x, y = np.asarray(pos, dtype=float), np.asarray(neg, dtype=float)
    if not len(x) or not len(y):
        return {"value": float("nan"), "ci": [float("nan"), float("nan")], "p": float("nan"), "n": [len(y), len(x)]}
    u = mannwhitneyu(x, y, alternative="two-sided")
    rng = np.random.default_rng(seed)
    boots = [auc_point(pos=rng.choice(x, len(x)), neg=rng.choice(y, len(y))) for _ in range(n_boot)]
    return {"value": auc_point(y, x),
            "ci": [float(np.quantile(boots, alpha / 2)), float(np.quantile(boots, 1 - alpha / 2))],
            "p": float(u.pvalue), "n": [len(y), len(x)]}


def youden_change(before: dict, after: dict, metric: str, control: str) -> dict | None:
    """`paired_youden` of two evaluations' item outcomes ({metric: {item id: 0/1}}), on the items both scored; None
    where either kind of item has none in common."""
    ids = {m: sorted(set(before.get(m, {})) & set(after.get(m, {}))) for m in (metric, control)}
    if not ids[metric] or not ids[control]:
        return None
    x0, x1, c0, c1 = ([o[m][i] for i in ids[m]] for m in (metric, control) for o in (before, after))
    return paired_youden(x0, x1, c0, c1)
