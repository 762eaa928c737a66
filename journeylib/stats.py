"""Statistical intervals, tests and multiple-testing corrections shared by the analyses.

Every confidence interval, effect-size interval, small test and
multiple-testing correction that more than one analysis needs lives here, so
that a number printed by the funnel, the cohort comparison, the drivers, the
friction ranking and the voice-of-customer spikes comes from one
implementation:

=====================================  ===============================================================
function                               what it computes
=====================================  ===============================================================
:func:`wilson_interval`                Wilson score interval of binomial proportions (vectorised)
:func:`median_interval`                median with a distribution-free order-statistic interval
:func:`median_ratio_bootstrap`         ratio of two medians, percentile bootstrap interval, one-sided
                                       Mann–Whitney p-value
:func:`newcombe_difference_interval`   Newcombe (hybrid score) interval of a difference of proportions
:func:`two_proportion_z_test`          pooled two-proportion z-test, two-sided
:func:`two_by_two_data`                risk ratio, odds ratio and lift with intervals, Fisher or
                                       chi-square p-value, for 2×2 tables (vectorised)
:func:`risk_ratio_interval`            Katz log interval of the risk ratio (vectorised)
:func:`mantel_haenszel_risk_ratio`     stratified risk ratio, Greenland–Robins interval
:func:`mantel_haenszel_odds_ratio`     stratified odds ratio, Robins–Breslow–Greenland interval,
                                       Cochran–Mantel–Haenszel p-value
:func:`poisson_rate_test`              exact conditional one-sided test of two Poisson rates
:func:`clustered_rate_ratio`           ratio of pooled rates with a cluster-robust interval
:func:`hedges_g_interval`              Hedges' g (bias-corrected standardised difference) and interval
:func:`bh_qvalues`                     Benjamini–Hochberg q-values
=====================================  ===============================================================

All functions are pure: they take counts or values and return numbers, and
never print or warn. ``alpha`` is 1 - the confidence level; the calling
analysis checks that it lies in (0, 1). scipy and statsmodels are imported
inside the functions that need them, so importing this module is cheap.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "RatioEstimate",
    "bh_qvalues",
    "clustered_rate_ratio",
    "hedges_g_interval",
    "mantel_haenszel_odds_ratio",
    "mantel_haenszel_risk_ratio",
    "median_interval",
    "median_ratio_bootstrap",
    "newcombe_difference_interval",
    "poisson_rate_test",
    "risk_ratio_interval",
    "two_by_two_data",
    "two_proportion_z_test",
    "wilson_interval",
]


def _z(alpha: float) -> float:
    """Two-sided standard normal critical value, ``Φ⁻¹(1 - alpha/2)``."""
    from scipy import stats

    return float(stats.norm.ppf(1 - alpha / 2))


def _same_length(function: str, names: str, *arrays: np.ndarray) -> None:
    lengths = {len(x) for x in arrays}
    if len(lengths - {1}) > 1:
        got = ", ".join(str(len(x)) for x in arrays)
        msg = f"{function}: {names} must have the same length (or length 1); got lengths {got}"
        raise ValueError(msg)


def _equal_length(function: str, names: str, *arrays: np.ndarray) -> None:
    if len({len(x) for x in arrays}) > 1:
        got = ", ".join(str(len(x)) for x in arrays)
        msg = f"{function}: {names} must have the same length; got lengths {got}"
        raise ValueError(msg)


@dataclass(frozen=True)
class RatioEstimate:
    """A ratio of two group summaries with its interval and a one-sided p-value.

    Parameters
    ----------
    value : float, default NaN
        The group's summary (a rate or a median).
    reference : float, default NaN
        The comparison group's summary.
    ratio : float, default NaN
        The ratio estimate (``inf`` when the reference rate is 0 and the
        group has events).
    ci_low, ci_high : float, default NaN
        The 1 - alpha interval of the ratio (NaN when not estimable).
    p : float, default NaN
        One-sided p-value for "the group's summary is larger".

    Examples
    --------
    >>> RatioEstimate(value=1.5, reference=0.5, ratio=3.0).ratio
    3.0
    """

    value: float = np.nan
    reference: float = np.nan
    ratio: float = np.nan
    ci_low: float = np.nan
    ci_high: float = np.nan
    p: float = np.nan


# -- proportions -------------------------------------------------------------------------------
def wilson_interval(successes: Any, trials: Any, *, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for binomial proportions (vectorised).

    The formula of ``statsmodels.stats.proportion.proportion_confint`` with
    ``method="wilson"``, ``(p̂ + z²/2n ± z·sqrt(p̂(1-p̂)/n + z²/4n²)) / (1 + z²/n)``
    clipped to [0, 1], with ``z = Φ⁻¹(1 - alpha/2)`` from
    :class:`statistics.NormalDist` (equal to statsmodels' result to within
    1e-15; neither statsmodels nor scipy is imported).

    Parameters
    ----------
    successes, trials : array-like of int
        Counts, of one shape; where ``trials`` is 0 the interval is NaN.
    alpha : float, default 0.05
        1 - confidence level.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        Lower and upper bounds, of the shape of the inputs.

    Raises
    ------
    ValueError
        If ``successes`` and ``trials`` differ in shape.

    Examples
    --------
    8 successes in 10 trials: the 95% interval is about 0.490 to 0.943.

    >>> lo, hi = wilson_interval([8], [10])
    >>> round(float(lo[0]), 3), round(float(hi[0]), 3)
    (0.49, 0.943)
    """
    s = np.asarray(successes, dtype=float)
    n = np.asarray(trials, dtype=float)
    if s.shape != n.shape:
        msg = f"wilson_interval: successes and trials must have the same shape; got {s.shape} and {n.shape}"
        raise ValueError(msg)
    lo = np.full(s.shape, np.nan)
    hi = np.full(s.shape, np.nan)
    ok = n > 0
    if ok.any():
        # statsmodels' formula, with the critical value from the standard library: importing
        # statsmodels.stats.proportion pulls scipy.stats (about 0.75 s), more than a funnel takes.
        # imported here: importing statistics (and fractions) is 2-4 ms of every process importing this module
        from statistics import NormalDist

        z = NormalDist().inv_cdf(1 - alpha / 2)
        z2 = z * z
        nk, p = n[ok], s[ok] / n[ok]
        denom = 1 + z2 / nk
        center = (p + z2 / (2 * nk)) / denom
        half = z * np.sqrt(p * (1.0 - p) / nk + z2 / (4.0 * nk**2)) / denom
        # p̂ = 0 (p̂ = 1) has the lower (upper) bound 0 (1) exactly; rounding would leave ~1e-17
        lo[ok] = np.where(p == 0, 0.0, np.clip(center - half, 0, 1))
        hi[ok] = np.where(p == 1, 1.0, np.clip(center + half, 0, 1))
    return lo, hi


def newcombe_difference_interval(
    successes_a: int, trials_a: int, successes_b: int, trials_b: int, *, alpha: float = 0.05
) -> tuple[float, float]:
    """Newcombe's hybrid score interval for the difference of two proportions ``p_a - p_b``.

    Computed by ``statsmodels.stats.proportion.confint_proportions_2indep``
    with ``method="newcomb"`` and ``compare="diff"``: the Wilson intervals of
    each proportion, combined by the square-and-add rule.

    Parameters
    ----------
    successes_a, trials_a : int
        Events and size of group a.
    successes_b, trials_b : int
        Events and size of group b.
    alpha : float, default 0.05
        1 - confidence level.

    Returns
    -------
    (float, float)
        Lower and upper bound of ``p_a - p_b``.

    Raises
    ------
    ValueError
        If a group is empty.

    Examples
    --------
    8/10 against 2/10: the Wilson intervals are 0.4902–0.9433 and 0.0567–0.5098, so the
    difference 0.6 has the bounds 0.6 - sqrt(0.3098² + 0.3098²) = 0.162 and
    0.6 + sqrt(0.1433² + 0.1433²) = 0.803.

    >>> lo, hi = newcombe_difference_interval(8, 10, 2, 10)
    >>> round(lo, 3), round(hi, 3)
    (0.162, 0.803)
    """
    if trials_a <= 0 or trials_b <= 0:
        msg = f"newcombe_difference_interval: both groups need at least one trial; got trials_a={trials_a}, trials_b={trials_b}"
        raise ValueError(msg)
    from statsmodels.stats.proportion import confint_proportions_2indep

    lo, hi = confint_proportions_2indep(
        successes_a, trials_a, successes_b, trials_b, method="newcomb", compare="diff", alpha=alpha
    )
    return float(lo), float(hi)


def two_proportion_z_test(successes_a: int, trials_a: int, successes_b: int, trials_b: int) -> tuple[float, float]:
    """Pooled two-proportion z-test of ``p_a = p_b``, two-sided.

    ``z = (p_a - p_b) / sqrt(p(1 - p)(1/n_a + 1/n_b))`` with the pooled
    ``p = (k_a + k_b) / (n_a + n_b)``; ``p-value = 2·(1 - Φ(|z|))``.

    Parameters
    ----------
    successes_a, trials_a : int
        Events and size of group a.
    successes_b, trials_b : int
        Events and size of group b.

    Returns
    -------
    (float, float)
        The z statistic and the two-sided p-value.

    Raises
    ------
    ValueError
        If a group is empty, or the pooled proportion is 0 or 1 (no events,
        or only events: the statistic is undefined).

    Examples
    --------
    8/10 against 2/10: pooled p = 0.5, se = sqrt(0.25 · 0.2) = 0.2236, z = 0.6 / 0.2236 = 2.683.

    >>> z, p = two_proportion_z_test(8, 10, 2, 10)
    >>> round(z, 3), round(p, 4)
    (2.683, 0.0073)
    """
    if trials_a <= 0 or trials_b <= 0:
        msg = f"two_proportion_z_test: both groups need at least one trial; got trials_a={trials_a}, trials_b={trials_b}"
        raise ValueError(msg)
    if (successes_a + successes_b) in (0, trials_a + trials_b):
        msg = (
            "two_proportion_z_test: the pooled proportion is 0 or 1, so the test is undefined; "
            f"got {successes_a + successes_b} events in {trials_a + trials_b} trials"
        )
        raise ValueError(msg)
    from scipy import stats

    pa, pb = successes_a / trials_a, successes_b / trials_b
    pool = (successes_a + successes_b) / (trials_a + trials_b)
    zval = (pa - pb) / math.sqrt(pool * (1 - pool) * (1 / trials_a + 1 / trials_b))
    return zval, float(2 * stats.norm.sf(abs(zval)))


# -- medians ---------------------------------------------------------------------------------------
def median_interval(values: Any, *, alpha: float = 0.05) -> tuple[float, float, float]:
    """Median with a distribution-free (binomial order-statistic) interval.

    The interval is ``[x_(k), x_(n-k+1)]`` (1-based order statistics) with
    ``k = binom.ppf(alpha / 2, n, 0.5)``, so that P(median < x_(k)) ≤ alpha/2
    on each side; its coverage is at least about 1 - alpha.

    Parameters
    ----------
    values : array-like of float
        Observations, one-dimensional (NaN ignored).
    alpha : float, default 0.05
        1 - confidence level.

    Returns
    -------
    (float, float, float)
        Median, lower and upper bound (NaN without values; the sample
        extremes when n is too small for the level).

    Raises
    ------
    ValueError
        If ``values`` has more than one dimension.

    Examples
    --------
    For 1, …, 100: ``binom.ppf(0.025, 100, 0.5) = 40``, so the bounds are
    the 40th value (40) and the 61st (61) around the median 50.5.

    >>> median_interval(list(range(1, 101)))
    (50.5, 40.0, 61.0)
    """
    x = np.asarray(values, dtype=float)
    if x.ndim > 1:
        msg = f"median_interval: values must be one-dimensional; got shape {x.shape}"
        raise ValueError(msg)
    x = np.sort(x)
    x = x[np.isfinite(x)]
    n = len(x)
    if n == 0:
        return math.nan, math.nan, math.nan
    from scipy import stats

    lo_rank = int(stats.binom.ppf(alpha / 2, n, 0.5))
    hi_rank = int(n - lo_rank)
    lo = x[max(lo_rank - 1, 0)] if lo_rank >= 1 else x[0]
    hi = x[min(hi_rank, n - 1)]
    return float(np.median(x)), float(lo), float(hi)


#: Indices drawn per block of replicates by :func:`_bootstrap_medians`: bounds its memory (~30 MB).
_BOOTSTRAP_BLOCK_DRAWS = 1 << 20
#: Half-width of the band of ranks :func:`_bootstrap_medians` counts one by one around the middle, in
#: standard deviations (``sqrt(n) / 2``) of a replicate's count of draws below a rank.
_BOOTSTRAP_BAND_SD = 16.0


def _bootstrap_medians(values: np.ndarray, rng: np.random.Generator, n_boot: int, *, band_sd: float = _BOOTSTRAP_BAND_SD) -> np.ndarray:
    """Return ``np.median(values[rng.integers(0, n, (n_boot, n))], axis=1)`` bit for bit, without its n_boot × n values.

    The indices are drawn by the same call, a block of replicates at a
    time: the same numbers in the same order, and *rng* ends in the same
    state. A replicate's median is the value of one rank of *values* (a
    stable sort), or the mean of two: each replicate's draws are counted
    by rank — one bin per rank within ``band_sd`` deviations of the middle,
    one bin for the ranks below and one for those above — and the median's
    rank is where the cumulative count passes the middle. A replicate's
    count below a rank is binomial whatever the values, so with 16
    deviations its median leaves the band with a probability below 1e-55
    (Hoeffding); such a replicate is partitioned in full. Values with a
    NaN or a negative zero (np.median returns whichever zero its partition
    leaves in the middle) and dtypes other than float64 and integers are
    resampled as np.median does.
    """
    n = len(values)
    plain = values.dtype == np.float64 or values.dtype.kind in "iu"
    if plain and values.dtype.kind == "f":
        plain = not bool(np.isnan(values).any() or (np.signbit(values) & (values == 0)).any())
    if not plain:
        return np.asarray(np.median(values[rng.integers(0, n, (n_boot, n))], axis=1))
    middle = [n // 2] if n % 2 else [n // 2 - 1, n // 2]
    order = np.argsort(values, kind="stable")
    ranks = np.empty(n, dtype=np.int64)
    ranks[order] = np.arange(n)
    half = math.ceil(band_sd * math.sqrt(n) / 2) + 1
    lo, hi = max(0, middle[0] - half), min(n, middle[-1] + half + 1)
    bins = hi - lo + 2  # bin 0: the ranks below lo; bin r - lo + 1: rank r; the last bin: the ranks from hi
    code: np.ndarray[Any, np.dtype[np.integer[Any]]] = np.clip(ranks - lo + 1, 0, bins - 1).astype(np.uint16 if bins <= np.iinfo(np.uint16).max else np.int64)
    at = np.empty((n_boot, len(middle)), dtype=np.int64)  # each replicate's rank(s) of the median
    rows = max(1, _BOOTSTRAP_BLOCK_DRAWS // n)
    offsets = np.arange(rows, dtype=np.int64)[:, None] * bins
    for start in range(0, n_boot, rows):
        m = min(rows, n_boot - start)
        draws = rng.integers(0, n, (m, n))
        counts = np.bincount((code[draws] + offsets[:m]).ravel(), minlength=m * bins).reshape(m, bins)
        cumulative = np.cumsum(counts, axis=1)
        for j, k in enumerate(middle):
            first = (cumulative <= k).sum(axis=1)  # the first bin whose cumulative count passes k
            at[start : start + m, j] = lo + first - 1
            for i in np.flatnonzero((first == 0) | (first == bins - 1)):  # the median left the band
                at[start + i, j] = np.partition(ranks[draws[i]], k)[k]
    ordered = values[order].astype(np.float64)
    if n % 2:
        return ordered[at[:, 0]]
    return (ordered[at[:, 0]] + ordered[at[:, 1]]) / 2


def median_ratio_bootstrap(
    a: Any, b: Any, *, rng: np.random.Generator, n_boot: int = 500, alpha: float = 0.05, floor: float = 1.0
) -> RatioEstimate:
    """Ratio of two medians with a percentile bootstrap interval and a one-sided Mann–Whitney p-value.

    Each median is floored at ``floor`` before dividing, in the estimate and
    in every bootstrap replicate, so that near-zero medians do not give huge
    ratios. The two samples are resampled independently, ``n_boot`` times
    each (``a`` first), with ``rng.integers``.

    Parameters
    ----------
    a, b : numpy.ndarray of float
        The group's values and the reference values.
    rng : numpy.random.Generator
        Source of the resamples (advanced by the call).
    n_boot : int, default 500
        Bootstrap replicates.
    alpha : float, default 0.05
        1 - confidence level: the interval is the ``alpha/2`` and
        ``1 - alpha/2`` quantiles of the replicated ratios.
    floor : float, default 1.0
        Smallest median used in a ratio.

    Returns
    -------
    RatioEstimate
        ``value`` and ``reference`` (the raw medians), ``ratio``, ``ci_low``,
        ``ci_high``, ``p`` (Mann–Whitney U, ``a`` greater than ``b``); all
        NaN when a sample is empty.

    Raises
    ------
    ValueError
        If ``n_boot`` is below 1.

    Examples
    --------
    Medians 4 and 2: ratio 4 / 2 = 2.

    >>> r = median_ratio_bootstrap(np.array([3.0, 4, 5]), np.array([1.0, 2, 3]), rng=np.random.default_rng(0), n_boot=50)
    >>> r.ratio
    2.0
    """
    if int(n_boot) < 1:
        msg = f"median_ratio_bootstrap: n_boot must be at least 1; got {n_boot!r}"
        raise ValueError(msg)
    if len(a) == 0 or len(b) == 0:
        return RatioEstimate()
    from scipy import stats

    a, b = np.asarray(a), np.asarray(b)
    ma, mb = float(np.median(a)), float(np.median(b))
    ratio = max(ma, floor) / max(mb, floor)
    boot_a = _bootstrap_medians(a, rng, int(n_boot))
    boot_b = _bootstrap_medians(b, rng, int(n_boot))
    boots = np.maximum(boot_a, floor) / np.maximum(boot_b, floor)
    lo, hi = np.quantile(boots, [alpha / 2, 1 - alpha / 2])
    p = float(stats.mannwhitneyu(a, b, alternative="greater").pvalue)
    return RatioEstimate(value=ma, reference=mb, ratio=ratio, ci_low=float(lo), ci_high=float(hi), p=p)


# -- 2x2 tables ------------------------------------------------------------------------------------
def two_by_two_data(a: Any, b: Any, c: Any, d: Any, *, alpha: float = 0.05) -> pd.DataFrame:
    """Compute RR, OR, lift, their intervals and a p-value for 2×2 tables (vectorised).

    Parameters
    ----------
    a, b, c, d : array-like of int
        Exposed with outcome, exposed without, reference with, reference
        without.
    alpha : float, default 0.05
        1 - confidence level.

    Returns
    -------
    pandas.DataFrame
        One row per table: ``n_exposed`` (a + b), ``n_reference`` (c + d),
        ``rate_exposed`` (a / n_exposed), ``rate_reference`` (c / n_reference),
        ``rate_overall`` ((a + c) / all), ``rr`` and ``rr_ci_low``/``rr_ci_high``
        (Katz log interval), ``or`` and ``or_ci_low``/``or_ci_high`` (Woolf
        log interval), ``lift`` (rate_exposed / rate_overall) and its interval
        (from RR's, group shares fixed), ``corrected`` (True when a zero cell
        made us add 0.5 to every cell for the ratios and intervals), ``test``
        (``fisher`` when an expected count is below 5, else ``chi2``),
        ``p_value`` (two-sided). Rates and ratios are NaN when a group is empty.

    Raises
    ------
    ValueError
        If ``a``, ``b``, ``c`` and ``d`` differ in length (length 1 is
        broadcast).

    Examples
    --------
    20/100 exposed against 10/100 reference: RR = 0.2 / 0.1 = 2, OR = (20·90) / (80·10) = 2.25.

    >>> t = two_by_two_data([20], [80], [10], [90])
    >>> round(float(t["rr"][0]), 3), round(float(t["or"][0]), 3)
    (2.0, 2.25)
    """
    a_, b_, c_, d_ = (np.atleast_1d(np.asarray(x, dtype=float)) for x in (a, b, c, d))
    _same_length("two_by_two_data", "a, b, c and d", a_, b_, c_, d_)
    from scipy import stats

    n1, n0 = a_ + b_, c_ + d_
    total = n1 + n0
    m1 = a_ + c_
    with np.errstate(divide="ignore", invalid="ignore"):
        r1 = np.where(n1 > 0, a_ / n1, np.nan)
        r0 = np.where(n0 > 0, c_ / n0, np.nan)
        overall = np.where(total > 0, m1 / total, np.nan)
        zero = (a_ == 0) | (b_ == 0) | (c_ == 0) | (d_ == 0)
        h = np.where(zero, 0.5, 0.0)
        ah, bh, ch, dh = a_ + h, b_ + h, c_ + h, d_ + h
        n1h, n0h = ah + bh, ch + dh
        ok = (n1 > 0) & (n0 > 0)
        rr = np.where(ok, (ah / n1h) / (ch / n0h), np.nan)
        se_rr = np.sqrt(1 / ah - 1 / n1h + 1 / ch - 1 / n0h)
        odds = np.where(ok, ah * dh / (bh * ch), np.nan)
        se_or = np.sqrt(1 / ah + 1 / bh + 1 / ch + 1 / dh)
        z = _z(alpha)
        rr_lo, rr_hi = rr * np.exp(-z * se_rr), rr * np.exp(z * se_rr)
        or_lo, or_hi = odds * np.exp(-z * se_or), odds * np.exp(z * se_or)
        w1 = np.where(total > 0, n1 / total, np.nan)
        w0 = 1 - w1

        def lift_of(x: np.ndarray) -> np.ndarray:
            return x / (w1 * x + w0)

        lift = np.where(ok & (overall > 0), r1 / overall, np.nan)
        lift_lo = np.where(np.isfinite(lift), lift_of(rr_lo), np.nan)
        lift_hi = np.where(np.isfinite(lift), lift_of(rr_hi), np.nan)
        # expected counts decide the test
        e_min = np.minimum.reduce([n1 * m1 / total, n1 * (total - m1) / total, n0 * m1 / total, n0 * (total - m1) / total])
        chi2 = np.where(
            ok & (m1 > 0) & (m1 < total),
            total * (a_ * d_ - b_ * c_) ** 2 / (n1 * n0 * m1 * (total - m1)),
            np.nan,
        )
    p_chi = stats.chi2.sf(chi2, 1)
    use_fisher = ok & (m1 > 0) & (m1 < total) & (e_min < 5)
    p = np.where(np.isfinite(chi2), p_chi, np.nan)
    for i in np.flatnonzero(use_fisher):
        p[i] = stats.fisher_exact([[a_[i], b_[i]], [c_[i], d_[i]]]).pvalue
    test = np.where(use_fisher, "fisher", np.where(np.isfinite(chi2), "chi2", ""))
    return pd.DataFrame(
        {
            "n_exposed": n1.astype("int64"), "n_reference": n0.astype("int64"),
            "rate_exposed": r1, "rate_reference": r0, "rate_overall": overall,
            "rr": rr, "rr_ci_low": rr_lo, "rr_ci_high": rr_hi,
            "or": odds, "or_ci_low": or_lo, "or_ci_high": or_hi,
            "lift": lift, "lift_ci_low": lift_lo, "lift_ci_high": lift_hi,
            "corrected": zero & ok, "test": test, "p_value": p,
        }
    )


def risk_ratio_interval(a: Any, b: Any, c: Any, d: Any, *, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Katz log interval of the risk ratio ``(a/(a+b)) / (c/(c+d))`` (vectorised).

    ``exp(log RR ± z·sqrt(1/a - 1/n1 + 1/c - 1/n0))``. When a group has no
    event (``a == 0`` or ``c == 0``) 0.5 is added to every cell of that
    table first (so ``n1`` and ``n0`` grow by 1). Unlike
    :func:`two_by_two_data`, a zero among ``b`` or ``d`` alone does not
    trigger the correction, and the bounds are ``exp(log RR ± z·se)``.

    Parameters
    ----------
    a, b, c, d : array-like of float
        Exposed with outcome, exposed without, reference with, reference
        without.
    alpha : float, default 0.05
        1 - confidence level.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        Lower and upper bounds; NaN where a group is empty.

    Raises
    ------
    ValueError
        If ``a``, ``b``, ``c`` and ``d`` differ in length (length 1 is
        broadcast).

    Examples
    --------
    20/100 against 10/100: RR = 2, se = sqrt(1/20 - 1/100 + 1/10 - 1/100) = sqrt(0.13) = 0.3606,
    bounds 2·exp(∓1.96·0.3606) = 0.987 and 4.054.

    >>> lo, hi = risk_ratio_interval([20], [80], [10], [90])
    >>> round(float(lo[0]), 3), round(float(hi[0]), 3)
    (0.987, 4.054)
    """
    a_, b_, c_, d_ = (np.atleast_1d(np.asarray(x, dtype=float)) for x in (a, b, c, d))
    _same_length("risk_ratio_interval", "a, b, c and d", a_, b_, c_, d_)
    n1, n0 = a_ + b_, c_ + d_
    with np.errstate(divide="ignore", invalid="ignore"):
        zero = (a_ == 0) | (c_ == 0)
        aa, cc = np.where(zero, a_ + 0.5, a_), np.where(zero, c_ + 0.5, c_)
        n1c, n0c = np.where(zero, n1 + 1.0, n1), np.where(zero, n0 + 1.0, n0)
        se = np.sqrt(1 / aa - 1 / n1c + 1 / cc - 1 / n0c)
        lr = np.log((aa / n1c) / (cc / n0c))
        z = _z(alpha)
        lo, hi = np.exp(lr - z * se), np.exp(lr + z * se)
    undefined = (n1 == 0) | (n0 == 0)
    return np.where(undefined, np.nan, lo), np.where(undefined, np.nan, hi)


def mantel_haenszel_risk_ratio(
    a: Any, b: Any, c: Any, d: Any, *, alpha: float = 0.05
) -> tuple[float, float, float, bool]:
    """Mantel–Haenszel pooled risk ratio over strata, with the Greenland–Robins interval.

    Strata where either group is empty carry no information and are ignored.
    If no stratum has an event on one side, 0.5 is added to every cell of the
    informative strata (and the fourth value says so).

    Parameters
    ----------
    a, b, c, d : array-like of int
        Per stratum: exposed with outcome, exposed without, reference with,
        reference without.
    alpha : float, default 0.05
        1 - confidence level.

    Returns
    -------
    (float, float, float, bool)
        RR_MH, lower and upper bound (NaN when no stratum is informative), and
        whether the 0.5 correction was applied.

    Raises
    ------
    ValueError
        If ``a``, ``b``, ``c`` and ``d`` differ in length.

    Examples
    --------
    One stratum, 20/100 against 10/100: RR_MH = (20·100/200) / (10·100/200) = 2.

    >>> rr, lo, hi, _ = mantel_haenszel_risk_ratio([20], [80], [10], [90])
    >>> round(rr, 3)
    2.0
    """
    a_, b_, c_, d_ = (np.atleast_1d(np.asarray(x, dtype=float)) for x in (a, b, c, d))
    _equal_length("mantel_haenszel_risk_ratio", "a, b, c and d", a_, b_, c_, d_)
    keep = (a_ + b_ > 0) & (c_ + d_ > 0)
    a_, b_, c_, d_ = a_[keep], b_[keep], c_[keep], d_[keep]
    if not len(a_):
        return math.nan, math.nan, math.nan, False
    corrected = False
    n1, n0 = a_ + b_, c_ + d_
    n = n1 + n0
    r_sum, s_sum = float(np.sum(a_ * n0 / n)), float(np.sum(c_ * n1 / n))
    if r_sum == 0 or s_sum == 0:
        corrected = True
        a_, b_, c_, d_ = a_ + 0.5, b_ + 0.5, c_ + 0.5, d_ + 0.5
        n1, n0 = a_ + b_, c_ + d_
        n = n1 + n0
        r_sum, s_sum = float(np.sum(a_ * n0 / n)), float(np.sum(c_ * n1 / n))
    rr = r_sum / s_sum
    var = float(np.sum((n1 * n0 * (a_ + c_) - a_ * c_ * n) / n**2)) / (r_sum * s_sum)
    z = _z(alpha)
    se = math.sqrt(max(var, 0.0))
    return rr, rr * math.exp(-z * se), rr * math.exp(z * se), corrected


def mantel_haenszel_odds_ratio(
    a: Any, b: Any, c: Any, d: Any, *, alpha: float = 0.05, add_half: bool = False
) -> tuple[float, float, float, float]:
    """Mantel–Haenszel pooled odds ratio (Robins–Breslow–Greenland interval) and the CMH test.

    Computed by ``statsmodels.stats.contingency_tables.StratifiedTable`` over
    the informative strata (both groups non-empty). The Cochran–Mantel–Haenszel
    p-value (no continuity correction) always uses the counts as given.

    Parameters
    ----------
    a, b, c, d : array-like of int
        Per stratum: exposed with outcome, exposed without, reference with,
        reference without.
    alpha : float, default 0.05
        1 - confidence level.
    add_half : bool, default False
        Add 0.5 to every cell of the informative strata for the odds ratio
        and its interval (as :func:`mantel_haenszel_risk_ratio` does when a
        side has no event).

    Returns
    -------
    (float, float, float, float)
        OR_MH, lower and upper bound, and the two-sided CMH p-value; NaN
        when no stratum is informative or the informative strata have no
        event (or only events). statsmodels' warnings are silenced.

    Raises
    ------
    ValueError
        If ``a``, ``b``, ``c`` and ``d`` differ in length.

    Examples
    --------
    One stratum, 20/100 against 10/100: OR_MH = (20·90/200) / (80·10/200) = 2.25.

    >>> or_, lo, hi, p = mantel_haenszel_odds_ratio([20], [80], [10], [90])
    >>> round(or_, 3)
    2.25
    """
    a_, b_, c_, d_ = (np.atleast_1d(np.asarray(x, dtype=float)) for x in (a, b, c, d))
    _equal_length("mantel_haenszel_odds_ratio", "a, b, c and d", a_, b_, c_, d_)
    informative = (a_ + b_ > 0) & (c_ + d_ > 0)
    nan = math.nan
    if not informative.any() or (a_ + c_)[informative].sum() <= 0 or (b_ + d_)[informative].sum() <= 0:
        return nan, nan, nan, nan
    from statsmodels.stats.contingency_tables import StratifiedTable

    tables = np.stack([np.stack([a_[informative], b_[informative]]), np.stack([c_[informative], d_[informative]])])
    tab = tables + 0.5 if add_half else tables
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        st = StratifiedTable(tab)
        or_ = float(st.oddsratio_pooled)
        lo, hi = st.oddsratio_pooled_confint(alpha=alpha)
        p = float(StratifiedTable(tables).test_null_odds(correction=False).pvalue)
    return or_, float(lo), float(hi), p


# -- rates -----------------------------------------------------------------------------------------
def poisson_rate_test(x1: Any, e1: Any, x2: Any, e2: Any) -> np.ndarray:
    """One-sided exact conditional test that rate 1 > rate 2 (binomial given the total), vectorised.

    Given ``n = x1 + x2`` events and exposures ``e1``, ``e2``,
    ``x1 ~ Binomial(n, e1 / (e1 + e2))`` if the rates are equal; the p-value
    is ``P(X ≥ x1)``.

    Parameters
    ----------
    x1, e1 : array-like of float
        Events and exposure of group 1.
    x2, e2 : array-like of float
        Events and exposure of group 2.

    Returns
    -------
    numpy.ndarray
        One-sided p-values: 1.0 where both exposures are positive but there
        is no event, NaN where an exposure is not positive.

    Raises
    ------
    ValueError
        If the four inputs differ in length.

    Examples
    --------
    3 events in group 1 and none in group 2 with equal exposure: P(3 of 3 | p = 1/2) = 1/8.

    >>> poisson_rate_test([3.0], [1.0], [0.0], [1.0]).tolist()
    [0.125]
    """
    x1, e1, x2, e2 = (np.atleast_1d(np.asarray(v, dtype=float)) for v in (x1, e1, x2, e2))
    _equal_length("poisson_rate_test", "x1, e1, x2 and e2", x1, e1, x2, e2)
    from scipy import stats

    n = x1 + x2
    p0 = np.divide(e1, e1 + e2, out=np.full(len(e1), np.nan), where=(e1 + e2) > 0)
    out = np.full(len(x1), np.nan)
    ok = (n > 0) & np.isfinite(p0) & (e1 > 0) & (e2 > 0)
    out[ok] = stats.binom.sf(x1[ok] - 1, n[ok], p0[ok])
    out[(n == 0) & (e1 > 0) & (e2 > 0)] = 1.0
    return out


def clustered_rate_ratio(y: Any, w: Any, in_group: Any, cluster: Any, *, alpha: float = 0.05) -> RatioEstimate:
    """Ratio of pooled rates ``sum(y)/sum(w)``, group vs the rest, with a cluster-robust interval.

    The log ratio's variance is the sum over clusters of the squared
    influence ``(y - r·w) / sum(y)`` of each side (a modified Poisson model
    with cluster-robust standard errors); the p-value is one-sided (group
    rate greater). When one side has no events the p-value comes from
    :func:`poisson_rate_test` and there is no interval.

    Parameters
    ----------
    y : numpy.ndarray of float
        Events per row.
    w : numpy.ndarray of float
        Exposure per row (ones for a share).
    in_group : numpy.ndarray of bool
        True for the group's rows, False for the reference rows.
    cluster : numpy.ndarray
        Cluster label per row (e.g. ``customer_id``).
    alpha : float, default 0.05
        1 - confidence level.

    Returns
    -------
    RatioEstimate
        ``value`` (group rate), ``reference`` (rate of the rest), ``ratio``,
        ``ci_low``, ``ci_high``, ``p``; all NaN when a side has no exposure.

    Raises
    ------
    ValueError
        If the four inputs differ in length.

    Examples
    --------
    Group 2 + 4 + 0 events over 1 + 2 + 1 weeks (rate 1.5), rest 1 + 1 over 2 + 2 (rate 0.5): ratio 3.

    >>> r = clustered_rate_ratio(np.array([2.0, 4, 0, 1, 1]), np.array([1.0, 2, 1, 2, 2]),
    ...                          np.array([True, True, True, False, False]), np.arange(5))
    >>> round(r.ratio, 6)
    3.0
    """
    _equal_length("clustered_rate_ratio", "y, w, in_group and cluster", y, w, in_group, cluster)
    g = np.asarray(in_group).astype(bool)
    yg, wg, yp, wp = float(y[g].sum()), float(w[g].sum()), float(y[~g].sum()), float(w[~g].sum())
    if wg <= 0 or wp <= 0:
        return RatioEstimate()
    rg, rp = yg / wg, yp / wp
    if yg == 0 or yp == 0:
        if yg + yp == 0:
            return RatioEstimate(value=rg, reference=rp)
        k, n = round(yg), round(yg + yp)
        p = float(poisson_rate_test([k], [wg], [n - k], [wp])[0])
        return RatioEstimate(value=rg, reference=rp, ratio=rg / rp if rp > 0 else np.inf, p=p)
    from scipy import stats

    infl = np.where(g, (y - rg * w) / yg, -(y - rp * w) / yp)
    per_cluster = pd.Series(infl).groupby(pd.Series(cluster)).sum().to_numpy()
    se = float(np.sqrt(np.sum(per_cluster**2)))
    lr = float(np.log(rg / rp))
    z = _z(alpha)
    if se <= 0:
        return RatioEstimate(value=rg, reference=rp, ratio=rg / rp, ci_low=rg / rp, ci_high=rg / rp, p=0.0 if lr > 0 else 1.0)
    return RatioEstimate(
        value=rg, reference=rp, ratio=float(np.exp(lr)), ci_low=float(np.exp(lr - z * se)), ci_high=float(np.exp(lr + z * se)),
        p=float(stats.norm.sf(lr / se)),
    )


# -- effect sizes ----------------------------------------------------------------------------------
def hedges_g_interval(a: Any, b: Any, *, alpha: float = 0.05) -> tuple[float, float, float]:
    """Hedges' g (bias-corrected standardised mean difference ``a - b``) with a normal interval.

    ``d = (mean_a - mean_b) / s_pooled``, ``g = J·d`` with
    ``J = 1 - 3 / (4(n_a + n_b) - 9)``, and
    ``se = sqrt((n_a + n_b)/(n_a·n_b) + g²/(2(n_a + n_b)))``; the interval is
    ``g ± z·se``.

    Parameters
    ----------
    a, b : array-like of float
        The two samples (no NaN).
    alpha : float, default 0.05
        1 - confidence level.

    Returns
    -------
    (float, float, float)
        g, lower and upper bound; NaN when the pooled standard deviation is 0.

    Raises
    ------
    ValueError
        If a sample has fewer than two values.

    Examples
    --------
    a = 1, 2, 3 and b = 3, 4, 5: s_pooled = 1, d = -2, J = 1 - 3/15 = 0.8, g = -1.6.

    >>> g, lo, hi = hedges_g_interval([1.0, 2, 3], [3.0, 4, 5])
    >>> round(float(g), 3)
    -1.6
    """
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    na, nb = len(a), len(b)
    if na < 2 or nb < 2:
        msg = f"hedges_g_interval: each sample needs at least two values; got {na} and {nb}"
        raise ValueError(msg)
    sp = math.sqrt(((na - 1) * a.var(ddof=1) + (nb - 1) * b.var(ddof=1)) / (na + nb - 2))
    if sp == 0:
        return math.nan, math.nan, math.nan
    d = (a.mean() - b.mean()) / sp
    j = 1 - 3 / (4 * (na + nb) - 9)
    g = j * d
    se = math.sqrt((na + nb) / (na * nb) + g**2 / (2 * (na + nb)))
    z = _z(alpha)
    return g, g - z * se, g + z * se


# -- multiple testing ------------------------------------------------------------------------------
def bh_qvalues(p_values: Any) -> np.ndarray:
    """Benjamini–Hochberg q-values (NaN p-values stay NaN and are not counted).

    Computed by ``statsmodels.stats.multitest.multipletests`` with
    ``method="fdr_bh"`` over the non-NaN entries.

    Parameters
    ----------
    p_values : array-like of float
        p-values in [0, 1], or NaN for "not tested".

    Returns
    -------
    numpy.ndarray
        Adjusted p-values (q-values); the family is the non-NaN entries.

    Raises
    ------
    ValueError
        If a p-value lies outside [0, 1].

    Examples
    --------
    Sorted p 0.01, 0.03, 0.04 of m = 3: q = min over later ranks of p·m/rank =
    0.03, 0.04, 0.04 (0.03·3/2 = 0.045 is capped by 0.04·3/3).

    >>> bh_qvalues([0.01, 0.04, float("nan"), 0.03]).round(3).tolist()
    [0.03, 0.04, nan, 0.04]
    """
    p = np.asarray(p_values, dtype=float)
    q = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    if ((p[ok] < 0) | (p[ok] > 1)).any():
        bad = p[ok][(p[ok] < 0) | (p[ok] > 1)]
        msg = f"bh_qvalues: p-values must lie in [0, 1]; got {bad[:5].tolist()}"
        raise ValueError(msg)
    if ok.any():
        from statsmodels.stats.multitest import multipletests

        q[ok] = multipletests(p[ok], method="fdr_bh")[1]
    return q
