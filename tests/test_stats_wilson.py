"""journeylib.stats.wilson_interval equals statsmodels' Wilson interval without importing statsmodels or scipy."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from statsmodels.stats.proportion import proportion_confint

from journeylib.stats import wilson_interval


@pytest.mark.parametrize("alpha", [0.2, 0.1, 0.05, 0.01, 0.001])
def test_wilson_equals_statsmodels_to_rounding(alpha: float) -> None:
    rng = np.random.default_rng(7)
    trials = np.concatenate([rng.integers(1, 50_000, 2000), [1, 1, 2, 10]])
    successes = np.concatenate([rng.integers(0, trials[:-4] + 1), [0, 1, 2, 10]])  # includes 0 and n
    lo, hi = wilson_interval(successes, trials, alpha=alpha)
    lo_ref, hi_ref = proportion_confint(successes, trials, alpha=alpha, method="wilson")
    np.testing.assert_allclose(lo, lo_ref, rtol=0, atol=1e-14)
    np.testing.assert_allclose(hi, hi_ref, rtol=0, atol=1e-14)
    assert (lo >= 0).all()
    assert (hi <= 1).all()


def test_wilson_keeps_nan_for_no_trials_and_the_input_shape() -> None:
    lo, hi = wilson_interval([[0, 3], [2, 0]], [[0, 4], [2, 0]])
    assert lo.shape == (2, 2)
    assert np.isnan(lo[0, 0])
    assert np.isnan(hi[1, 1])
    assert hi[1, 0] == pytest.approx(1.0)


def test_wilson_does_not_import_scipy_or_statsmodels() -> None:
    code = (
        "import sys\nfrom journeylib.stats import wilson_interval\nwilson_interval([1, 2], [3, 4])\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'scipy', 'statsmodels'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"
