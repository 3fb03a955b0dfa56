"""The statistics instruments against scipy and published worked examples."""
import numpy as np
import pytest
from scipy import stats as ss

from superalign.errors import SuperalignError
from superalign import stats as S

CASES = [(0, 10), (1, 10), (7, 34), (50, 100), (199, 200), (200, 200), (3, 1000)]


@pytest.mark.parametrize("k,n", CASES)
def test_wilson_and_clopper_pearson_match_scipy(k, n):
    ref = ss.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    p, lo, hi = S.wilson(k, n)
    assert p == k / n and lo == pytest.approx(ref.low, abs=1e-9) and hi == pytest.approx(ref.high, abs=1e-9)
    ref = ss.binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")
    _, lo, hi = S.clopper_pearson(k, n)
    assert lo == pytest.approx(ref.low, abs=1e-7) and hi == pytest.approx(ref.high, abs=1e-7)
    ref90 = ss.binomtest(k, n).proportion_ci(confidence_level=0.90, method="wilson")
    assert S.wilson(k, n, alpha=0.10)[1] == pytest.approx(ref90.low, abs=1e-9)


def test_rates_reject_impossible_counts():
    with pytest.raises(SuperalignError, match="not a rate"):
        S.wilson(11, 10)
    assert np.isnan(S.wilson(0, 0)[0])


def _pairs(a, b, c, d):
    before = [1] * a + [1] * b + [0] * c + [0] * d
    after = [1] * a + [0] * b + [1] * c + [0] * d
    return before, after


def test_mcnemar_is_the_exact_binomial_test_on_discordant_pairs():
    before, after = _pairs(30, 3, 12, 55)
    r = S.mcnemar(before, after)
    assert r["b_before_only"] == 3 and r["c_after_only"] == 12 and r["n"] == 100
    assert r["p_value"] == pytest.approx(ss.binomtest(12, 15, 0.5).pvalue)
    assert r["diff"] == pytest.approx(0.09) and r["lo"] < 0.09 < r["hi"]
    flipped = S.mcnemar(after, before)  # swapping before/after flips the sign, same p
    assert flipped["diff"] == pytest.approx(-0.09) and flipped["p_value"] == pytest.approx(r["p_value"])
    assert flipped["lo"] == pytest.approx(-r["hi"]) and flipped["hi"] == pytest.approx(-r["lo"])
    assert S.mcnemar([1, 0, 1], [1, 0, 1])["p_value"] == 1.0
    with pytest.raises(SuperalignError, match="same prompts"):
        S.mcnemar([1, 0], [1, 0, 1])


def test_newcombe_paired_matches_published_example():
    # Fagerland, Lydersen & Laake, "Statistical analysis of contingency tables", ch. 8 (Cavo et al. 2012):
    # table [[59, 6], [16, 80]], Newcombe square-and-add: -0.0621 (95% CI -0.1186 to -0.0046) as before - after.
    diff, lo, hi = S.newcombe_paired(59, 6, 16, 80)
    assert diff == pytest.approx(0.0621, abs=1e-4)
    assert lo == pytest.approx(0.0046, abs=1e-4) and hi == pytest.approx(0.1186, abs=1e-4)


def test_newcombe_paired_coverage_is_near_nominal():
    rng = np.random.default_rng(0)
    n, covered = 120, 0
    probs = np.array([0.5, 0.1, 0.2, 0.2])  # a, b, c, d: true diff = c - b = 0.1
    for _ in range(600):
        a, b, c, d = rng.multinomial(n, probs)
        _, lo, hi = S.newcombe_paired(a, b, c, d)
        covered += lo <= 0.1 <= hi
    assert 0.92 <= covered / 600 <= 0.985


def test_paired_bootstrap_agrees_with_newcombe():
    before, after = _pairs(40, 10, 25, 125)
    _, lo, hi = S.mcnemar(before, after)["diff"], S.mcnemar(before, after)["lo"], S.mcnemar(before, after)["hi"]
    d, blo, bhi = S.paired_bootstrap_diff(before, after)
    assert d == pytest.approx(0.075) and abs(blo - lo) < 0.02 and abs(bhi - hi) < 0.02


def test_two_proportion_test_matches_scipy_and_published_interval():
    r = S.two_proportion_test(1, 34, 7, 34)
    chi2 = ss.chi2_contingency([[1, 33], [7, 27]], correction=False)
    assert r["p_value"] == pytest.approx(chi2.pvalue)
    assert r["p_fisher"] == pytest.approx(ss.fisher_exact([[1, 33], [7, 27]])[1])
    # Perondi et al. (2004), Fagerland et al. ch. 4: Newcombe hybrid score 0.1765 (0.0189 to 0.3404)
    assert r["diff"] == pytest.approx(0.1765, abs=1e-4)
    assert r["lo"] == pytest.approx(0.0189, abs=1e-4) and r["hi"] == pytest.approx(0.3404, abs=1e-4)


def test_minimum_detectable_effect():
    n, psi = 200, 0.2
    mde = S.mde_paired(n, psi)
    za, zb = ss.norm.ppf(0.975), ss.norm.ppf(0.8)
    # Connor's sample size at this effect gives back n
    assert (za * np.sqrt(psi) + zb * np.sqrt(psi - mde ** 2)) ** 2 / mde ** 2 == pytest.approx(n, rel=1e-3)
    exact = S.mde_paired(n, psi, exact=True)
    assert S.mcnemar_power(n, psi, exact) == pytest.approx(0.8, abs=0.01)
    assert abs(exact - mde) < 0.02  # the approximation is close at this size
    assert S.mde_paired(800, psi) < mde / 1.8  # ~1/sqrt(n)
    assert S.mcnemar_power(n, psi, 0.0) <= 0.05  # the exact test keeps its size under no effect
    assert np.isnan(S.mde_paired(10, 0.05))  # too few items: no detectable effect at all


def test_smallest_change_an_exact_paired_test_can_flag():
    # k items all flipping one way give p = 2 * 0.5**k: 5 give 0.0625, 6 give 0.031 (alpha 0.05)
    assert S.mcnemar([0] * 10, [1] * 6 + [0] * 4)["p_value"] < 0.05 <= S.mcnemar([0] * 10, [1] * 5 + [0] * 5)["p_value"]
    assert S.min_detectable_paired(10) == pytest.approx(0.6) and S.min_detectable_paired(24) == pytest.approx(0.25)
    assert S.min_detectable_paired(24, alpha=0.01) == pytest.approx(8 / 24)  # 2 * 0.5**8 = 0.0078
    assert np.isnan(S.min_detectable_paired(5))  # five items cannot reach p < 0.05 at all


# ---------------------------------------------------------------- discrimination (Youden's J)
def test_youden_is_one_minus_both_bad_rates_with_newcombe_interval():
    j = S.youden([1] * 3 + [0] * 7, [1] * 2 + [0] * 18)  # bad 0.3 on 10 target items, 0.1 on 20 controls
    ref = S.two_proportion_test(3, 10, 18, 20)  # (1 - 0.1) - 0.3, independent item sets
    assert j["value"] == pytest.approx(0.6) and j["ci"] == [ref["lo"], ref["hi"]] and j["n"] == [10, 20]


def _flips(before, after, before_c, after_c):
    """The sign-flip p by brute force: every way the changed items could have changed, equally likely."""
    import itertools
    d = [(a - b) / len(before) for b, a in zip(before, after) if a != b]
    d += [(a - b) / len(before_c) for b, a in zip(before_c, after_c) if a != b]
    obs = abs(sum(d))
    hits = sum(abs(sum(s * abs(x) for s, x in zip(signs, d))) >= obs - 1e-12
               for signs in itertools.product((1, -1), repeat=len(d)))
    return hits / 2 ** len(d)


def test_paired_youden_reads_a_prior_shift_as_no_change_and_a_one_sided_gain_as_one():
    """A learner that refuses 5 more of 20 harmful requests and 5 more of 20 look-alikes moved a prior: its
    compliance fell by 0.25, its J did not move. Fewer compliances at no over-refusal is a gain in J, tested
    exactly as McNemar tests the one set."""
    before, after = _pairs(5, 5, 0, 10)           # bad 10/20 -> 5/20 on the target items
    shift_b, shift_a = _pairs(0, 0, 5, 15)         # control bad 0/20 -> 5/20
    shift = S.paired_youden(before, after, shift_b, shift_a)
    assert shift["diff"] == pytest.approx(0.0) and shift["p"] == pytest.approx(1.0)
    assert shift["before"] == pytest.approx(0.5) and shift["after"] == pytest.approx(0.5)
    still = [0] * 20
    gain = S.paired_youden(before, after, still, still)
    mc = S.mcnemar(before, after)
    assert gain["diff"] == pytest.approx(0.25) and gain["p"] == pytest.approx(mc["p_value"])
    assert gain["ci"][0] < 0.25 < gain["ci"][1] and gain["n"] == [20, 20]
    back = S.paired_youden(after, before, still, still)  # the other way round: the sign flips, p and width stay
    assert back["diff"] == pytest.approx(-0.25) and back["p"] == pytest.approx(gain["p"])
    assert back["ci"] == pytest.approx([-gain["ci"][1], -gain["ci"][0]])


@pytest.mark.parametrize("cells", [((3, 4, 1, 12), (2, 1, 3, 9)), ((0, 6, 0, 4), (1, 0, 2, 7)),
                                   ((5, 2, 2, 11), (4, 3, 1, 2))])
def test_paired_youden_p_is_the_exact_sign_flip_test(cells):
    sides = [*_pairs(*cells[0]), *_pairs(*cells[1])]
    assert S.paired_youden(*sides)["p"] == pytest.approx(_flips(*sides))


def test_mover_of_one_part_is_its_interval_and_of_two_adds_the_sides_in_quadrature():
    assert S.mover([(0.1, -0.05, 0.3)]) == pytest.approx((0.1, -0.05, 0.3))
    assert S.mover([(0.1, 0.0, 0.4), (0.2, 0.1, 0.6)]) == pytest.approx((0.3, 0.3 - np.sqrt(0.02), 0.3 + 0.5))


def test_auc_is_the_share_of_pairs_ranked_right_with_ties_half():
    r = S.auc([0.1, 0.2, 0.3], [0.25, 0.3, 0.9])  # pairs pos > neg: 0.25>0.1,0.2; 0.3>0.1,0.2, =0.3; 0.9>all
    assert r["value"] == pytest.approx((2 + 2.5 + 3) / 9) and r["n"] == [3, 3]
    assert r["ci"][0] <= r["value"] <= r["ci"][1]
    assert S.auc_point([0.1, 0.2, 0.3], [0.25, 0.3, 0.9]) == pytest.approx((2 + 2.5 + 3) / 9)  # (neg, pos)
    same = S.auc([0.5] * 20, [0.5] * 20)
    assert same["value"] == 0.5 and same["p"] == pytest.approx(1.0)
    apart = S.auc(list(np.linspace(0, 0.4, 30)), list(np.linspace(0.6, 1, 30)))
    assert apart["value"] == 1.0 and apart["p"] < 1e-6
