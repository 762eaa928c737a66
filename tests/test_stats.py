"""Hand-computed cases and error cases for journeylib.stats."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from journeylib.stats import (
    RatioEstimate,
    bh_qvalues,
    clustered_rate_ratio,
    hedges_g_interval,
    mantel_haenszel_odds_ratio,
    mantel_haenszel_risk_ratio,
    median_interval,
    median_ratio_bootstrap,
    newcombe_difference_interval,
    poisson_rate_test,
    risk_ratio_interval,
    two_by_two_data,
    two_proportion_z_test,
    wilson_interval,
)

Z95 = 1.959963984540054  # Φ⁻¹(0.975)


# -- Wilson ----------------------------------------------------------------------------------------
def test_wilson_interval_by_hand() -> None:
    # 8 of 10: p = 0.8, z² = 3.8415; centre = (0.8 + 3.8415/20) / (1 + 3.8415/10) = 0.99207 / 1.38415 = 0.71674
    # half-width = z·sqrt(0.8·0.2/10 + 3.8415/400) / 1.38415 = 1.96·sqrt(0.0256036) / 1.38415 = 0.22658
    lo, hi = wilson_interval([8, 0], [10, 0])
    p, n, z2 = 0.8, 10, Z95**2
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = Z95 * math.sqrt(p * (1 - p) / n + z2 / (4 * n**2)) / (1 + z2 / n)
    assert lo[0] == pytest.approx(centre - half)
    assert lo[0] == pytest.approx(0.49016, abs=1e-5)
    assert hi[0] == pytest.approx(centre + half)
    assert hi[0] == pytest.approx(0.94332, abs=1e-5)
    assert np.isnan(lo[1])  # no trials: no interval
    assert np.isnan(hi[1])


def test_wilson_interval_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match=r"wilson_interval: successes and trials must have the same shape; got \(2,\) and \(3,\)"):
        wilson_interval([1, 2], [3, 4, 5])


# -- two proportions ---------------------------------------------------------------------------------
def test_newcombe_difference_interval_by_hand() -> None:
    # Wilson 8/10 = [0.49016, 0.94332], 2/10 = [0.05668, 0.50984]; difference 0.6
    # low = 0.6 - sqrt((0.8 - 0.49016)² + (0.50984 - 0.2)²), high = 0.6 + sqrt((0.94332 - 0.8)² + (0.2 - 0.05668)²)
    (l8, l2), (h8, h2) = wilson_interval([8, 2], [10, 10])
    lo, hi = newcombe_difference_interval(8, 10, 2, 10)
    assert lo == pytest.approx(0.6 - math.hypot(0.8 - l8, h2 - 0.2))
    assert lo == pytest.approx(0.1618, abs=1e-4)
    assert hi == pytest.approx(0.6 + math.hypot(h8 - 0.8, 0.2 - l2))
    assert hi == pytest.approx(0.8027, abs=1e-4)


def test_newcombe_difference_interval_rejects_an_empty_group() -> None:
    with pytest.raises(ValueError, match="both groups need at least one trial; got trials_a=0, trials_b=10"):
        newcombe_difference_interval(0, 0, 2, 10)


def test_two_proportion_z_test_by_hand() -> None:
    # 8/10 vs 2/10: pooled p = 0.5, se = sqrt(0.5·0.5·(1/10 + 1/10)) = 0.22361, z = 0.6 / 0.22361 = 2.6833
    # z² = 7.2 = Pearson's chi-square of [[8, 2], [2, 8]]: 20·(64 - 4)² / 10⁴ = 7.2
    z, p = two_proportion_z_test(8, 10, 2, 10)
    assert z == pytest.approx(0.6 / math.sqrt(0.05))
    assert z**2 == pytest.approx(7.2)
    assert p == pytest.approx(stats.chi2.sf(7.2, 1))
    assert p == pytest.approx(0.00729, abs=1e-5)


def test_two_proportion_z_test_rejects_a_degenerate_pool() -> None:
    with pytest.raises(ValueError, match=r"pooled proportion is 0 or 1.*got 0 events in 20 trials"):
        two_proportion_z_test(0, 10, 0, 10)


# -- medians -----------------------------------------------------------------------------------------
def test_median_interval_by_hand() -> None:
    # n = 20: binom.ppf(0.025, 20, 0.5) = 6, so the bounds are x_(6) and x_(20 - 6 + 1) = x_(15)
    values = [5, 1, 4, 2, 3, 9, 8, 7, 6, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, float("nan")]
    assert stats.binom.ppf(0.025, 20, 0.5) == 6
    assert median_interval(values) == (10.5, 6.0, 15.0)
    assert all(math.isnan(v) for v in median_interval([]))


def test_median_interval_rejects_two_dimensional_values() -> None:
    with pytest.raises(ValueError, match=r"median_interval: values must be one-dimensional; got shape \(2, 2\)"):
        median_interval([[1, 2], [3, 4]])


def test_median_ratio_bootstrap_by_hand() -> None:
    # medians 4 and 2: ratio 2; every replicate is a ratio of sample values, so the interval lies in [1/1, 5/1]
    r = median_ratio_bootstrap(np.array([3.0, 4, 5]), np.array([1.0, 2, 3]), rng=np.random.default_rng(0), n_boot=200)
    assert (r.value, r.reference, r.ratio) == (4.0, 2.0, 2.0)
    assert 1.0 <= r.ci_low <= 2.0 <= r.ci_high <= 5.0
    # one-sided Mann–Whitney: U = 8.5 (8 of the 9 pairs have a > b, the tie 3 = 3 counts a half)
    assert r.p == pytest.approx(stats.mannwhitneyu([3.0, 4, 5], [1.0, 2, 3], alternative="greater").pvalue)
    # medians 0.3 and 0.1 are both floored at 1: ratio 1 / 1
    floored = median_ratio_bootstrap(np.array([0.2, 0.3, 0.4]), np.array([0.1] * 3), rng=np.random.default_rng(0), n_boot=20)
    assert floored.ratio == 1.0
    assert median_ratio_bootstrap(np.array([]), np.array([1.0]), rng=np.random.default_rng(0)) == RatioEstimate()


def test_median_ratio_bootstrap_rejects_no_replicates() -> None:
    with pytest.raises(ValueError, match="median_ratio_bootstrap: n_boot must be at least 1; got 0"):
        median_ratio_bootstrap(np.array([1.0]), np.array([1.0]), rng=np.random.default_rng(0), n_boot=0)


# -- 2x2 tables --------------------------------------------------------------------------------------
def test_two_by_two_data_by_hand() -> None:
    # a, b, c, d = 20, 80, 10, 90: RR = 0.2 / 0.1 = 2, OR = 20·90 / (80·10) = 2.25, lift = 0.2 / 0.15 = 1.333
    # Katz se = sqrt(1/20 - 1/100 + 1/10 - 1/100) = sqrt(0.13); Woolf se = sqrt(1/20 + 1/80 + 1/10 + 1/90)
    # chi² = 200·(20·90 - 80·10)² / (100·100·30·170) = 3.9216; smallest expected count 100·30/200 = 15 ≥ 5
    t = two_by_two_data([20], [80], [10], [90]).iloc[0]
    assert (t["rr"], t["or"], t["lift"]) == pytest.approx((2.0, 2.25, 0.2 / 0.15))
    assert t["rr_ci_low"] == pytest.approx(2 * math.exp(-Z95 * math.sqrt(0.13)))
    assert t["or_ci_high"] == pytest.approx(2.25 * math.exp(Z95 * math.sqrt(1 / 20 + 1 / 80 + 1 / 10 + 1 / 90)))
    assert t["test"] == "chi2"
    assert t["p_value"] == pytest.approx(stats.chi2.sf(200 * 1000**2 / (100 * 100 * 30 * 170), 1))
    assert not t["corrected"]


def test_two_by_two_data_rejects_mismatched_lengths() -> None:
    with pytest.raises(ValueError, match=r"a, b, c and d must have the same length.*got lengths 2, 2, 3, 3"):
        two_by_two_data([1, 2], [3, 4], [5, 6, 7], [8, 9, 10])


def test_risk_ratio_interval_by_hand() -> None:
    # 20/100 vs 10/100: se = sqrt(0.13) = 0.3606, bounds 2·exp(∓1.96·0.3606) = 0.9866, 4.0545
    # 0/10 vs 5/10: no event on one side, 0.5 added to every cell: RR = (0.5/11) / (5.5/11) = 1/11,
    #   se = sqrt(1/0.5 - 1/11 + 1/5.5 - 1/11) = sqrt(2), low = exp(log(1/11) - 1.96·sqrt(2)) = 0.005686
    lo, hi = risk_ratio_interval([20, 0, 3], [80, 10, 7], [10, 5, 0], [90, 5, 0])
    assert lo[0] == pytest.approx(2 * math.exp(-Z95 * math.sqrt(0.13)))
    assert hi[0] == pytest.approx(2 * math.exp(Z95 * math.sqrt(0.13)))
    assert lo[1] == pytest.approx(math.exp(math.log(1 / 11) - Z95 * math.sqrt(2)))
    assert lo[1] == pytest.approx(0.005686, abs=1e-6)
    assert np.isnan(lo[2])  # empty reference group
    assert np.isnan(hi[2])


def test_risk_ratio_interval_rejects_mismatched_lengths() -> None:
    with pytest.raises(ValueError, match="risk_ratio_interval: a, b, c and d must have the same length"):
        risk_ratio_interval([1, 2], [3, 4, 5], [1], [1])


# -- Mantel–Haenszel ---------------------------------------------------------------------------------
def test_mantel_haenszel_risk_ratio_by_hand() -> None:
    # strata (a, b, c, d) = (10, 90, 5, 95) and (30, 20, 20, 30), n = 200 and 100
    # R = Σ a·n0/n = 10·100/200 + 30·50/100 = 20; S = Σ c·n1/n = 5·100/200 + 20·50/100 = 12.5; RR = 1.6
    rr, lo, hi, corrected = mantel_haenszel_risk_ratio([10, 30], [90, 20], [5, 20], [95, 30])
    assert rr == pytest.approx(1.6)
    assert lo < rr < hi
    assert not corrected


def test_mantel_haenszel_risk_ratio_rejects_mismatched_lengths() -> None:
    with pytest.raises(ValueError, match="mantel_haenszel_risk_ratio: a, b, c and d must have the same length; got lengths 2, 2, 1, 2"):
        mantel_haenszel_risk_ratio([1, 2], [3, 4], [5], [6, 7])


def test_mantel_haenszel_odds_ratio_by_hand() -> None:
    # same strata: R = Σ a·d/n = 10·95/200 + 30·30/100 = 13.75; S = Σ b·c/n = 90·5/200 + 20·20/100 = 6.25; OR = 2.2
    # CMH: E[a] = 100·15/200 = 7.5 and 50·50/100 = 25; var = 100·100·15·185/(200²·199) = 3.48618 and
    #   50⁴/(100²·99) = 6.31313; (2.5 + 5)² / 9.79931 = 5.7402
    or_, lo, hi, p = mantel_haenszel_odds_ratio([10, 30], [90, 20], [5, 20], [95, 30])
    assert or_ == pytest.approx(2.2)
    assert lo < or_ < hi
    cmh = 7.5**2 / (100 * 100 * 15 * 185 / (200**2 * 199) + 50**4 / (100**2 * 99))
    assert p == pytest.approx(stats.chi2.sf(cmh, 1))
    assert p == pytest.approx(0.01658, abs=1e-5)
    # no stratum with both groups: nothing to estimate
    assert all(math.isnan(v) for v in mantel_haenszel_odds_ratio([1], [0], [0], [0]))


def test_mantel_haenszel_odds_ratio_rejects_mismatched_lengths() -> None:
    with pytest.raises(ValueError, match="mantel_haenszel_odds_ratio: a, b, c and d must have the same length"):
        mantel_haenszel_odds_ratio([1], [3, 4], [5], [6])


# -- rates -------------------------------------------------------------------------------------------
def test_poisson_rate_test_by_hand() -> None:
    # 3 events vs 0 with equal exposure: P(X ≥ 3 | X ~ Binomial(3, 1/2)) = 1/8
    # 2 vs 2 with exposure 1 vs 3: P(X ≥ 2 | Binomial(4, 1/4)) = 1 - (3/4)⁴ - 4·(1/4)·(3/4)³ = 67/256
    # no events: 1.0; no exposure in group 1: NaN
    p = poisson_rate_test([3, 2, 0, 1], [1, 1, 1, 0], [0, 2, 0, 1], [1, 3, 1, 1])
    assert p[:3] == pytest.approx([0.125, 67 / 256, 1.0])
    assert np.isnan(p[3])


def test_poisson_rate_test_rejects_mismatched_lengths() -> None:
    with pytest.raises(ValueError, match="poisson_rate_test: x1, e1, x2 and e2 must have the same length; got lengths 2, 1, 1, 1"):
        poisson_rate_test([1, 2], [1], [1], [1])


def test_clustered_rate_ratio_by_hand() -> None:
    # group: 2 + 4 + 0 events over 1 + 2 + 1 (rate 1.5); rest: 1 + 1 over 2 + 2 (rate 0.5); ratio 3
    # influences (y - r·w)/Σy: group (0.5, 1, -1.5)/6, rest -(0, 0)/2; each row its own cluster
    y, w = np.array([2.0, 4, 0, 1, 1]), np.array([1.0, 2, 1, 2, 2])
    g = np.array([True, True, True, False, False])
    r = clustered_rate_ratio(y, w, g, np.arange(5))
    se = math.sqrt((0.5**2 + 1**2 + 1.5**2) / 36)
    assert (r.value, r.reference, r.ratio) == pytest.approx((1.5, 0.5, 3.0))
    assert r.ci_low == pytest.approx(3 * math.exp(-Z95 * se))
    assert r.p == pytest.approx(stats.norm.sf(math.log(3) / se))
    # rows 0 and 1 in one cluster: their influences add before squaring
    pooled = clustered_rate_ratio(y, w, g, np.array([0, 0, 1, 2, 3]))
    assert pooled.ci_high == pytest.approx(3 * math.exp(Z95 * math.sqrt((1.5**2 + 1.5**2) / 36)))
    # no exposure on one side: nothing to estimate
    assert clustered_rate_ratio(y, w * 0, g, np.arange(5)) == RatioEstimate()


def test_clustered_rate_ratio_rejects_mismatched_lengths() -> None:
    with pytest.raises(ValueError, match="clustered_rate_ratio: y, w, in_group and cluster must have the same length"):
        clustered_rate_ratio(np.ones(3), np.ones(3), np.ones(2, dtype=bool), np.arange(3))


# -- effect sizes ------------------------------------------------------------------------------------
def test_hedges_g_interval_by_hand() -> None:
    # a = 1, 2, 3; b = 3, 4, 5: both variances 1, pooled sd 1, d = -2, J = 1 - 3/(4·6 - 9) = 0.8, g = -1.6
    # se = sqrt(6/9 + 1.6²/12) = sqrt(0.88)
    g, lo, hi = hedges_g_interval([1.0, 2, 3], [3.0, 4, 5])
    assert g == pytest.approx(-1.6)
    assert (lo, hi) == pytest.approx((-1.6 - Z95 * math.sqrt(0.88), -1.6 + Z95 * math.sqrt(0.88)))
    assert all(math.isnan(v) for v in hedges_g_interval([2.0, 2], [2.0, 2]))  # no spread


def test_hedges_g_interval_rejects_a_single_value() -> None:
    with pytest.raises(ValueError, match="hedges_g_interval: each sample needs at least two values; got 1 and 3"):
        hedges_g_interval([1.0], [1.0, 2, 3])


# -- multiple testing --------------------------------------------------------------------------------
def test_bh_qvalues_by_hand() -> None:
    # non-NaN p sorted: 0.01, 0.03, 0.04 (m = 3); p·m/rank = 0.03, 0.045, 0.04; running min from the top
    q = bh_qvalues([0.01, 0.04, float("nan"), 0.03])
    assert q[[0, 1, 3]] == pytest.approx([0.03, 0.04, 0.04])
    assert np.isnan(q[2])


def test_bh_qvalues_rejects_impossible_p_values() -> None:
    with pytest.raises(ValueError, match=r"bh_qvalues: p-values must lie in \[0, 1\]; got \[1.5\]"):
        bh_qvalues([0.2, 1.5])


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=1, max_size=30))
def test_bh_qvalues_match_the_step_up_oracle(p: list[float]) -> None:
    # q_(i) = min over j ≥ i of min(1, p_(j)·m/j), in the original order
    m = len(p)
    order = sorted(range(m), key=lambda i: p[i])
    oracle = [0.0] * m
    running = 1.0
    for rank in range(m, 0, -1):
        i = order[rank - 1]
        running = min(running, p[i] * m / rank)
        oracle[i] = running
    assert bh_qvalues(p) == pytest.approx(oracle)


def test_ratio_estimate_defaults_to_nan() -> None:
    r = RatioEstimate()
    assert all(math.isnan(v) for v in (r.value, r.reference, r.ratio, r.ci_low, r.ci_high, r.p))
