"""median_ratio_bootstrap counts its replicates' medians by rank: the same numbers as resampling them in full.

The reference below is the implementation it replaced (an n_boot × n matrix of
resampled values, one np.median per row). Every field of the estimate must be
the same float, bit for bit, and the generator must end in the same state
(friction draws its next bootstrap from it).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from journeylib.stats import RatioEstimate, _bootstrap_medians, median_ratio_bootstrap


def reference(a: np.ndarray, b: np.ndarray, *, rng: np.random.Generator, n_boot: int, alpha: float, floor: float) -> RatioEstimate:
    """The replaced implementation, verbatim."""
    if len(a) == 0 or len(b) == 0:
        return RatioEstimate()
    ma, mb = float(np.median(a)), float(np.median(b))
    ratio = max(ma, floor) / max(mb, floor)
    boot_a = np.median(a[rng.integers(0, len(a), (n_boot, len(a)))], axis=1)
    boot_b = np.median(b[rng.integers(0, len(b), (n_boot, len(b)))], axis=1)
    boots = np.maximum(boot_a, floor) / np.maximum(boot_b, floor)
    lo, hi = np.quantile(boots, [alpha / 2, 1 - alpha / 2])
    p = float(stats.mannwhitneyu(a, b, alternative="greater").pvalue)
    return RatioEstimate(value=ma, reference=mb, ratio=ratio, ci_low=float(lo), ci_high=float(hi), p=p)


def bits(r: RatioEstimate) -> list[bytes]:
    return [np.float64(x).tobytes() for x in (r.value, r.reference, r.ratio, r.ci_low, r.ci_high, r.p)]


def same_as_reference(a: np.ndarray, b: np.ndarray, *, seed: int, n_boot: int, alpha: float = 0.05, floor: float = 1.0) -> None:
    new_rng, old_rng = np.random.default_rng(seed), np.random.default_rng(seed)
    new = median_ratio_bootstrap(a, b, rng=new_rng, n_boot=n_boot, alpha=alpha, floor=floor)
    old = reference(a, b, rng=old_rng, n_boot=n_boot, alpha=alpha, floor=floor)
    assert bits(new) == bits(old), (new, old)
    assert new_rng.bit_generator.state == old_rng.bit_generator.state
    assert new_rng.integers(0, 2**62) == old_rng.integers(0, 2**62)  # and the next draw agrees


def medians_reference(values: np.ndarray, rng: np.random.Generator, n_boot: int) -> np.ndarray:
    return np.median(values[rng.integers(0, len(values), (n_boot, len(values)))], axis=1)


def same_medians(values: np.ndarray, *, seed: int, n_boot: int, band_sd: float = 16.0) -> None:
    new_rng, old_rng = np.random.default_rng(seed), np.random.default_rng(seed)
    new = _bootstrap_medians(values, new_rng, n_boot, band_sd=band_sd)
    old = medians_reference(values, old_rng, n_boot)
    assert new.dtype == old.dtype
    assert new.tobytes() == old.tobytes()
    assert new_rng.bit_generator.state == old_rng.bit_generator.state


# Values with many ties (a few distinct days), or spread out; sizes from 1, odd and even.
tied = st.lists(st.sampled_from([0.0, 0.5, 1.0, 1.0, 2.0, 3.25, 7.0]), min_size=1, max_size=80)
spread = st.lists(st.floats(min_value=0.0, max_value=400.0, allow_nan=False, allow_infinity=False), min_size=1, max_size=80)
samples = st.one_of(tied, spread)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    a=samples, b=samples, seed=st.integers(0, 2**32 - 1), n_boot=st.integers(1, 60),
    alpha=st.sampled_from([0.05, 0.1, 0.5]), floor=st.sampled_from([1.0, 0.25, 5.0, 1e-9]),
)
def test_same_estimate_and_generator_state_as_full_resampling(
    a: list[float], b: list[float], seed: int, n_boot: int, alpha: float, floor: float
) -> None:
    same_as_reference(np.array(a), np.array(b), seed=seed, n_boot=n_boot, alpha=alpha, floor=floor)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(values=samples, seed=st.integers(0, 2**32 - 1), n_boot=st.integers(1, 40), band_sd=st.sampled_from([0.0, 0.3, 1.0]))
def test_medians_outside_a_narrow_band_are_found_by_partition(values: list[float], seed: int, n_boot: int, band_sd: float) -> None:
    # a band of (almost) no ranks sends most replicates to the full partition
    same_medians(np.array(values), seed=seed, n_boot=n_boot, band_sd=band_sd)


@pytest.mark.parametrize("n", [1, 2, 3, 4, 999, 1000, 4097, 20_001, 20_002])
def test_large_samples_with_and_without_ties(n: int) -> None:
    rng = np.random.default_rng(n)
    days = rng.gamma(2.0, 10.0, n)
    same_medians(days, seed=3, n_boot=200)
    same_medians(np.round(days), seed=4, n_boot=200)  # few distinct values
    same_medians(np.round(days), seed=5, n_boot=200, band_sd=0.5)  # many replicates outside the band


def test_more_replicates_than_one_block_holds() -> None:
    # 2**20 draws per block: 3,000 replicates of 1,001 values are four blocks
    days = np.random.default_rng(9).exponential(30.0, 1001)
    same_medians(days, seed=11, n_boot=3000)


def test_sequential_calls_share_one_generator() -> None:
    # friction draws every bootstrap of a call from one generator: each call must leave it where the old one did
    a, b = np.random.default_rng(1).gamma(2, 5, 300), np.random.default_rng(2).gamma(2, 7, 301)
    new_rng, old_rng = np.random.default_rng(0), np.random.default_rng(0)
    for _ in range(3):
        new = median_ratio_bootstrap(a, b, rng=new_rng, n_boot=100, floor=1.0)
        old = reference(a, b, rng=old_rng, n_boot=100, alpha=0.05, floor=1.0)
        assert bits(new) == bits(old)


@pytest.mark.parametrize(
    "values",
    [
        np.array([1.0, np.nan, 3.0, 4.0]),  # NaN: np.median's own route
        np.array([-0.0, 0.0, 0.0, -0.0, 2.0]),  # signed zeros: likewise
        np.array([3, 1, 4, 1, 5, 9, 2, 6]),  # integers: the fast route, float64 medians
        np.array([3, 1, 4, 1, 5, 9, 2], dtype=np.uint8),
        np.array([1.5, 2.5, 0.5], dtype=np.float32),  # float32 medians stay float32: np.median's route
        np.array([np.inf, 1.0, -np.inf, 2.0]),
        np.array([1.7e308, 1.6e308, 1.5e308, 1.75e308]),  # the two middle values' sum overflows: inf, as np.median's mean
        np.array([5e-324, 0.0, 1e-323, 5e-324, 1.5e-323, 2e-323]),  # subnormals: halving the sum rounds, halving each does not
    ],
)
def test_special_values_and_dtypes(values: np.ndarray) -> None:
    same_medians(values, seed=1, n_boot=50)
    same_medians(values, seed=2, n_boot=50, band_sd=0.0)


def test_one_value_draws_nothing() -> None:
    rng = np.random.default_rng(0)
    state = rng.bit_generator.state
    out = _bootstrap_medians(np.array([4.0]), rng, 7)
    assert out.tolist() == [4.0] * 7
    assert rng.bit_generator.state == state
