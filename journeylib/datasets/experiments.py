"""The synthetic world's experiment assignments, written as the canonical ``assignments`` table.

The simulation (:meth:`journeylib.datasets.simulation.Chunk.customers`)
randomises the trial customers who sign up inside the enrolment window into
three equal arms of the onboarding experiment (:data:`ARMS`), and the nudge of
``email_variant_b`` raises every customer's probability of completing setup
within the trial by ``experiment_uplift`` (an effect planted by
construction, not by choosing who goes where). The product already logs an
``experiment_assigned`` event per enrolled customer; this module writes the
same assignments as rows of the canonical ``assignments`` table
(``assignments.<fmt>``), so the experiment read-out
(:func:`journeylib.customers.experiments.experiment_effects_data`) can be
checked against the planted uplift.

Nothing here draws a random number: the arms are the ones the simulation
drew, so writing this table leaves every other file of the world unchanged.

Each row carries the designed split in ``properties`` (``{"allocation":
{"control": 0.3333, ...}, "unit": "account"}``), which is where the read-out's
sample-ratio-mismatch check looks for it.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pyarrow as pa

from journeylib.datasets.parameters import ARMS, DAY, EXPERIMENT

__all__ = ["ASSIGNED_AFTER_SIGNUP_SECONDS", "ExperimentTally", "assignment_table"]

#: Seconds between sign-up and assignment (the ``experiment_assigned`` event's time too).
ASSIGNED_AFTER_SIGNUP_SECONDS = 120

#: The designed split, stored in every row's ``properties``.
_PROPERTIES = json.dumps({"allocation": {a: round(1 / len(ARMS), 6) for a in ARMS}, "unit": "account"})


class ExperimentTally:
    """Per-arm counts on the assignment clock, accumulated over the chunks (the ``realised`` part of ``truth.json``).

    Attributes
    ----------
    assigned : numpy.ndarray
        Rows written per arm (every assignment before ``as_of``).
    complete : numpy.ndarray
        Customers per arm assigned at least ``trial_days`` before ``as_of``
        (the read-out's denominator for the trial-long window).
    setup_in_window : numpy.ndarray
        Of those, customers whose ``setup_completed`` falls within
        ``trial_days`` of ``assigned_at``.
    setup_before_assignment : numpy.ndarray
        Of those, customers whose ``setup_completed`` falls before ``assigned_at``.
    """

    def __init__(self) -> None:
        self.assigned = np.zeros(len(ARMS), dtype=np.int64)
        self.complete = np.zeros(len(ARMS), dtype=np.int64)
        self.setup_in_window = np.zeros(len(ARMS), dtype=np.int64)
        self.setup_before_assignment = np.zeros(len(ARMS), dtype=np.int64)

    def realised(self) -> dict[str, Any]:
        """Return the per-arm counts and rates, and each arm's difference from control.

        Returns
        -------
        dict
            ``assignments`` (rows per arm), ``arms`` (per arm: ``n`` customers
            with a complete window, ``setup_within_window``, ``rate``,
            ``setup_before_assignment``) and ``uplift_vs_control`` (rate
            difference per non-control arm; None without a denominator).
        """
        arms: dict[str, dict[str, Any]] = {}
        for i, a in enumerate(ARMS):
            n = int(self.complete[i])
            k = int(self.setup_in_window[i])
            arms[a] = {
                "n": n,
                "setup_within_window": k,
                "rate": None if n == 0 else round(k / n, 4),
                "setup_before_assignment": int(self.setup_before_assignment[i]),
            }
        ctrl = arms[ARMS[0]]["rate"]
        uplift = {
            a: None if arms[a]["rate"] is None or ctrl is None else round(arms[a]["rate"] - ctrl, 4) for a in ARMS[1:]
        }
        return {"assignments": {a: int(self.assigned[i]) for i, a in enumerate(ARMS)}, "arms": arms, "uplift_vs_control": uplift}


def assignment_table(
    *,
    customer_ids: pa.Array,
    arm: np.ndarray,
    signup: np.ndarray,
    setup: np.ndarray,
    as_of: int,
    window_days: int,
    tally: ExperimentTally,
) -> pa.Table:
    """Return the canonical ``assignments`` rows of one chunk and add its counts to *tally*.

    Parameters
    ----------
    customer_ids : pyarrow.Array
        The chunk's customer ids.
    arm : numpy.ndarray of int
        Each customer's arm (index into :data:`ARMS`), -1 when not enrolled.
    signup : numpy.ndarray of int64
        Sign-up times (epoch seconds).
    setup : numpy.ndarray of int64
        ``setup_completed`` times as written (epoch seconds; a far-future
        value when never).
    as_of : int
        End of the observation window (epoch seconds); assignments at or
        after it are not written.
    window_days : int
        The window of the planted outcome (the trial length).
    tally : ExperimentTally
        Accumulates the per-arm counts.

    Returns
    -------
    pyarrow.Table
        ``assignment_id`` (``<customer_id>:<experiment>``), ``customer_id``,
        ``user_id`` (empty: the experiment assigns accounts), ``experiment``,
        ``variant``, ``assigned_at`` (sign-up + 120 s, UTC) and
        ``properties`` (the designed split).
    """
    at = signup + ASSIGNED_AFTER_SIGNUP_SECONDS
    idx = np.flatnonzero((arm >= 0) & (at < as_of))
    a = arm[idx]
    tally.assigned += np.bincount(a, minlength=len(ARMS))
    full = at[idx] + window_days * DAY <= as_of
    done = setup[idx] <= at[idx] + window_days * DAY
    before = setup[idx] < at[idx]
    tally.complete += np.bincount(a[full], minlength=len(ARMS))
    tally.setup_in_window += np.bincount(a[full & done & ~before], minlength=len(ARMS))
    tally.setup_before_assignment += np.bincount(a[full & before], minlength=len(ARMS))
    ids = customer_ids.take(pa.array(idx)).to_pylist()
    n = len(idx)
    return pa.table(
        {
            "assignment_id": pa.array([f"{c}:{EXPERIMENT}" for c in ids], pa.string()),
            "customer_id": pa.array(ids, pa.string()),
            "user_id": pa.nulls(n, pa.string()),
            "experiment": pa.array([EXPERIMENT] * n, pa.string()),
            "variant": pa.array([ARMS[i] for i in a], pa.string()),
            "assigned_at": pa.array(at[idx] * 1_000_000, pa.timestamp("us", tz="UTC")),
            "properties": pa.array([_PROPERTIES] * n, pa.string()),
        }
    )
