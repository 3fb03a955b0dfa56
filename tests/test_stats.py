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
