"""The world's timeline: start, ``as_of``, the drift and experiment dates, and every customer's sign-up time.

Times are whole seconds since the epoch (UTC) throughout the simulation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from journeylib.datasets.parameters import DAY, HOUR, WorldParameters

__all__ = ["Calendar", "build_calendar", "iso_time", "signup_times"]

_SIGNUP_STREAM = 2**32 - 1  # second seed word of the generator that draws sign-up times


@dataclass(frozen=True)
class Calendar:
    """The world's dates, as epoch seconds (UTC).

    Attributes
    ----------
    start : int
        Start of the observation window.
    as_of : int
        End of the observation window; nothing at or after it is written.
    drift_from : int
        Sign-ups from here on belong to the drifted cohort.
    experiment_from, experiment_to : int
        Enrolment window of the onboarding experiment.
    """

    start: int
    as_of: int
    drift_from: int
    experiment_from: int
    experiment_to: int

    @property
    def key_base(self) -> int:
        """Return the day before ``start`` (epoch seconds)."""
        return self.start - DAY


def _epoch(ts: pd.Timestamp) -> int:
    return int(ts.value // 1_000_000_000)


def iso_time(t: int) -> str:
    """Return epoch seconds as an ISO 8601 UTC text (``2025-01-06T00:00:00Z``).

    Parameters
    ----------
    t : int
        Epoch seconds.

    Returns
    -------
    str
        The time, to the second, with a ``Z`` suffix.
    """
    return pd.Timestamp(t, unit="s", tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ")


def build_calendar(start: str | pd.Timestamp, months: int, p: WorldParameters) -> Calendar:
    """Return the world's dates from its start, length and parameters.

    Parameters
    ----------
    start : str or pandas.Timestamp
        Start of the observation window (naive = UTC).
    months : int
        Length of the window; ``as_of`` is ``start + months``.
    p : WorldParameters
        Supplies ``drift_months`` and the experiment's offsets.

    Returns
    -------
    Calendar
        The dates, as epoch seconds.
    """
    ts = pd.Timestamp(start)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    as_of = ts + pd.DateOffset(months=months)
    drift_from = max(ts, as_of - pd.DateOffset(months=p.drift_months))
    exp_from = ts + pd.DateOffset(months=p.experiment_from_months_after_start)
    exp_to = as_of - pd.DateOffset(months=p.experiment_until_months_before_as_of)
    return Calendar(
        start=_epoch(ts),
        as_of=_epoch(as_of),
        drift_from=_epoch(drift_from),
        experiment_from=_epoch(exp_from),
        experiment_to=max(_epoch(exp_from), _epoch(exp_to)),
    )


def signup_times(seed: int, n: int, cal: Calendar, p: WorldParameters) -> np.ndarray:
    """Sign-up times of all customers, sorted (customer ids follow sign-up order).

    Parameters
    ----------
    seed : int
        The world's seed; the times come from their own generator
        ``numpy.random.default_rng([seed, 2**32 - 1])``.
    n : int
        Number of customers.
    cal : Calendar
        The world's dates: sign-ups fall in ``[start, as_of)``.
    p : WorldParameters
        Supplies ``signup_growth``.

    Returns
    -------
    numpy.ndarray of int64
        Epoch seconds, sorted ascending.
    """
    rng = np.random.default_rng([seed, _SIGNUP_STREAM])
    n_days = max(1, math.ceil((cal.as_of - cal.start) / DAY))
    day = np.arange(n_days)
    dow = (cal.start // DAY + day + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
    weight = (1.0 + p.signup_growth * day / n_days) * np.where(dow >= 5, 0.35, 1.0)
    picked = rng.choice(n_days, size=n, p=weight / weight.sum())
    hour = np.clip(rng.normal(15.0, 3.5, n), 0.0, 23.99)
    t = cal.start + picked * DAY + (hour * HOUR).astype(np.int64)
    return np.sort(np.minimum(t, cal.as_of - HOUR))

