"""Who enters an outcome analysis: the outcome, its behaviour window, its follow-up horizon and the analysed population.

Timing rules: behaviours come from the window ``[signup, signup +
window_days)``; the outcome counts only if it happens after the window end and
within ``horizon_days`` of signup; customers whose window or follow-up is not
complete at ``as_of``, or whose outcome came first, are excluded and counted.
The unit is the account (``customer_id``).

Neither the window nor the horizon has to be known in advance. With
``window_days="auto"`` the window is the longest of :data:`WINDOW_GRID` (at
most :data:`MAX_AUTO_WINDOW_DAYS`) that ends before all but
:data:`MAX_SHARE_IN_WINDOW` of the observed outcomes; with
``horizon_days="auto"`` the horizon is the :data:`HORIZON_QUANTILE` quantile
of the observed times from signup to the outcome (among outcomes after the
window), rounded up to a whole day. Customers whose follow-up is shorter than
the horizon are left out of the crude 2×2 tables and counted; the
Kaplan–Meier columns (``km_duration``, ``km_event``) keep them, censored.

An outcome of the journey definition may be a lapse (``churn: {inactive_days:
60}``) for stores without a churn date: :func:`inactivity_lapse_data` dates it
at the last activity plus ``inactive_days``, known only when that is at or
before ``as_of`` (a customer active more recently is censored, not churned).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from journeylib.config.journey import JourneyDefinition
from journeylib.customers.features import customer_outcomes_data, feature_slug
from journeylib.exceptions import EmptyResultError
from journeylib.scope import Scope
from journeylib.store import Store
from journeylib.store.categories import activity_source_names, source_categories
from journeylib.store.dialect import sql_quote, sql_timestamp

__all__ = [
    "DEFAULT_HORIZON_DAYS",
    "HORIZON_QUANTILE",
    "MAX_AUTO_WINDOW_DAYS",
    "MAX_SHARE_IN_WINDOW",
    "PLAN_ENCODED_OUTCOMES",
    "WINDOW_GRID",
    "choose_horizon_days",
    "choose_window_days",
    "inactivity_lapse_data",
    "outcome_horizon",
    "outcome_population_data",
    "outcome_spec",
    "window_grid",
]

#: Follow-up after signup within which an outcome counts, per outcome name (days).
DEFAULT_HORIZON_DAYS: dict[str, int] = {"churn": 150, "conversion": 30, "expansion": 180, "renewal": 400}
_FALLBACK_HORIZON = 90
#: Windows (days after signup) searched for "did X within d days" and "had k or more X within d days".
WINDOW_GRID: tuple[int, ...] = (1, 2, 3, 5, 7, 10, 14, 21, 30, 45, 60, 90)
#: Longest behaviour window chosen automatically (days).
MAX_AUTO_WINDOW_DAYS = 30
#: Largest share of the observed outcomes an automatic window may contain (they are left out).
MAX_SHARE_IN_WINDOW = 0.05
#: Quantile of the observed time to the outcome used as the automatic horizon.
HORIZON_QUANTILE = 0.9
#: Behaviour window used when no outcome is observed to choose one from (days).
FALLBACK_WINDOW_DAYS = 7

#: Outcomes the exported plan encodes (it changes when they happen): plan is not adjusted for.
PLAN_ENCODED_OUTCOMES: frozenset[str] = frozenset({"conversion", "expansion"})


# -- churn from inactivity -------------------------------------------------------------------
def inactivity_lapse_data(
    store: Store,
    *,
    inactive_days: float,
    as_of: Any = None,
    segment: str | None = None,
    plan: str | None = None,
    signup_from: Any = None,
    signup_to: Any = None,
    sample_n: int = 0,
    random_state: int = 0,
    scope: Scope | None = None,
) -> pd.DataFrame:
    """Date a lapse per customer: no activity for ``inactive_days``, for stores without a churn date.

    Activity is every event of a source of kind product
    (:func:`journeylib.store.categories.activity_source_names`), at or after signup and at or before ``as_of`` (the scope's
    event window does not apply: a lapse needs the whole timeline). A customer
    lapsed at ``last activity + inactive_days`` (signup + ``inactive_days``
    without any activity) when that time is at or before ``as_of``; a customer
    whose last activity is less than ``inactive_days`` before ``as_of`` is
    censored: they may still come back, so they have not churned.

    Parameters
    ----------
    store : Store
        The canonical store.
    inactive_days : float
        Days without activity that make a lapse (> 0).
    as_of, segment, plan, signup_from, signup_to, sample_n, random_state, scope
        Scope, as in :func:`journeylib.customers.features.build_features`.

    Returns
    -------
    pandas.DataFrame
        One row per customer in scope: ``customer_id``; ``last_active_at``
        (UTC, their last activity by as_of; NaT when none); ``lapsed_at``
        (UTC, ``coalesce(last_active_at, signup_at) + inactive_days`` when at
        or before as_of, else NaT); ``status`` (``lapsed``, or ``censored``:
        active less than ``inactive_days`` before as_of); ``inactive_days``.
        ``DataFrame.attrs["activity_sources"]`` lists the sources counted as
        activity.

    Raises
    ------
    ValueError
        If ``inactive_days`` is not a positive number.
    EmptyResultError
        If no customer is in scope, or the store has no activity source (every
        source is e-mail, CRM or support), so a lapse cannot be dated.
    """
    if isinstance(inactive_days, bool) or not isinstance(inactive_days, (int, float, np.integer, np.floating)) or not inactive_days > 0:
        msg = f"inactivity_lapse_data: inactive_days must be a positive number of days; got {inactive_days!r}"
        raise ValueError(msg)
    scope = Scope.resolve(store, scope, function="inactivity_lapse_data", as_of=as_of, segment=segment, plan=plan,
                          signup_from=signup_from, signup_to=signup_to, sample_n=sample_n, random_state=random_state)
    sources = activity_source_names(store)
    if not sources:
        shown = ", ".join(f"{src} ({kind})" for src, kind in sorted(source_categories(store).items())) or "(no events)"
        msg = (
            f"inactivity_lapse_data: no event source is customer activity (sources: {shown}; e-mail, CRM and support "
            "sources do not count), so a lapse after inactivity cannot be dated; ingest product events or use a churn date."
        )
        raise EmptyResultError(msg)
    srcs = ", ".join(sql_quote(s) for s in sources)
    asof = sql_timestamp(scope.as_of)
    out = store.query(
        f"""SELECT c.customer_id, c.signup_at, a.last_active_at FROM ({scope.customers_sql()}) c
            LEFT JOIN (SELECT e.customer_id, max(e.timestamp) AS last_active_at FROM events e
                       JOIN ({scope.customers_sql()}) c2 ON e.customer_id = c2.customer_id
                       WHERE e.source IN ({srcs}) AND e.timestamp >= c2.signup_at AND e.timestamp <= {asof}
                       GROUP BY e.customer_id) a ON a.customer_id = c.customer_id
            ORDER BY c.customer_id"""
    )
    if out.empty:
        msg = f"inactivity_lapse_data: no customers in scope ({scope.describe()}); widen the filters."
        raise EmptyResultError(msg)
    last = pd.to_datetime(out["last_active_at"], utc=True)
    since = last.fillna(pd.to_datetime(out["signup_at"], utc=True))
    lapse = since + pd.Timedelta(days=float(inactive_days))
    lapsed = lapse <= scope.as_of
    frame = pd.DataFrame(
        {
            "customer_id": out["customer_id"],
            "last_active_at": last,
            "lapsed_at": lapse.where(lapsed),
            "status": np.where(lapsed, "lapsed", "censored"),
            "inactive_days": float(inactive_days),
        }
    )
    frame.attrs["activity_sources"] = sources
    return frame


# -- the analysed population -----------------------------------------------------------------
def outcome_spec(definition: JourneyDefinition, outcome: str) -> tuple[str, bool]:
    """Return the outcome column name and whether it is the conversion outcome.

    Parameters
    ----------
    definition : JourneyDefinition
        The journey definition whose ``outcomes`` name the outcome.
    outcome : str
        An outcome name of the definition.

    Returns
    -------
    tuple of (str, bool)
        The column of :func:`journeylib.customers.features.customer_outcomes_data`
        holding the outcome's time (``<slug>_at``), and whether the outcome is
        read from the customer field ``converted_at``.

    Raises
    ------
    ValueError
        If the outcome is not in the definition (the message lists those that are).
    """
    if outcome not in definition.outcomes:
        allowed = ", ".join(definition.outcomes) or "(none defined)"
        msg = f"outcome {outcome!r} is not in the journey definition {definition.name!r}; allowed: {allowed}"
        raise ValueError(msg)
    spec = definition.outcomes[outcome]
    return f"{feature_slug(outcome)}_at", spec.customer_field == "converted_at"


def _conversion_column(definition: JourneyDefinition) -> str | None:
    for name, spec in definition.outcomes.items():
        if spec.customer_field == "converted_at":
            return f"{feature_slug(name)}_at"
    return None


def window_grid(window_days: int, windows: Sequence[int] | None = None) -> tuple[int, ...]:
    """Return the sub-windows searched for a behaviour window: the grid up to it, and the window itself.

    Parameters
    ----------
    window_days : int
        The behaviour window (the longest sub-window).
    windows : sequence of int, optional
        The grid (default :data:`WINDOW_GRID`).

    Returns
    -------
    tuple of int
        Sorted whole days, each at most ``window_days``.

    Examples
    --------
    >>> window_grid(12)
    (1, 2, 3, 5, 7, 10, 12)
    """
    grid = WINDOW_GRID if windows is None else windows
    return tuple(sorted({int(w) for w in grid if 0 < int(w) <= window_days} | {int(window_days)}))


def choose_window_days(
    times_days: Any, *, grid: Sequence[int] = WINDOW_GRID, max_days: int = MAX_AUTO_WINDOW_DAYS,
    max_share: float = MAX_SHARE_IN_WINDOW,
) -> tuple[int, str]:
    """Choose a behaviour window that ends before (almost) every observed outcome.

    Parameters
    ----------
    times_days : array-like of float
        Days from signup to the outcome of the customers at risk who had it
        (NaN = no outcome; ignored).
    grid : sequence of int, default :data:`WINDOW_GRID`
        Candidate windows.
    max_days : int, default :data:`MAX_AUTO_WINDOW_DAYS`
        Longest window chosen.
    max_share : float, default :data:`MAX_SHARE_IN_WINDOW`
        Largest share of the observed outcomes at or before the window end.

    Returns
    -------
    tuple of (int, str)
        The window in days, and how it was chosen, in words.

    Examples
    --------
    >>> choose_window_days([14.5, 15, 15, 16, 40])
    (14, 'the longest window (at most 30 days) that ends before all but 5% of the 5 observed outcomes')
    """
    t = np.asarray(times_days, dtype=float)
    t = t[np.isfinite(t)]
    if not len(t):
        return FALLBACK_WINDOW_DAYS, f"{FALLBACK_WINDOW_DAYS} days: no outcome observed to choose a window from"
    best = 0
    for w in sorted(int(g) for g in grid if 0 < int(g) <= max_days):
        if np.mean(t <= w) <= max_share:
            best = w
    if best == 0:
        best = min(int(g) for g in grid if int(g) > 0)
        return best, (
            f"{best} day(s): {np.mean(t <= best):.0%} of the {len(t)} observed outcomes happen within it, "
            "more than any window should hold"
        )
    return best, (
        f"the longest window (at most {max_days} days) that ends before all but {max_share:.0%} of the "
        f"{len(t)} observed outcomes"
    )


def choose_horizon_days(
    times_days: Any, *, window_days: float, quantile: float = HORIZON_QUANTILE, outcome: str = "the outcome",
) -> tuple[float | None, str]:
    """Choose a follow-up horizon long enough to hold most outcomes: a quantile of the observed times.

    Parameters
    ----------
    times_days : array-like of float
        Days from signup to the outcome of the customers at risk (NaN = no
        outcome; ignored, as are outcomes at or before the window end).
    window_days : float
        The behaviour window.
    quantile : float, default :data:`HORIZON_QUANTILE`
        Quantile of the observed times.
    outcome : str
        Outcome name, for the description.

    Returns
    -------
    tuple of (float or None, str)
        The horizon in whole days (None when no outcome after the window is
        observed), and how it was chosen, in words.

    Examples
    --------
    >>> choose_horizon_days([20, 30, 40, 50, 100], window_days=7, outcome="churn")
    (80.0, 'the 90th percentile of the days from signup to churn (5 observed)')
    """
    t = np.asarray(times_days, dtype=float)
    t = t[np.isfinite(t) & (t > window_days)]
    if not len(t):
        return None, f"no {outcome} after the {window_days:g}-day window observed"
    h = float(math.ceil(float(np.quantile(t, quantile)) - 1e-9))
    h = max(h, float(math.floor(window_days)) + 1.0)
    return h, f"the {quantile * 100:.0f}th percentile of the days from signup to {outcome} ({len(t)} observed)"


def outcome_horizon(outcome: str, horizon_days: float | None) -> float:
    """Return the follow-up after signup within which the outcome counts (days).

    Parameters
    ----------
    outcome : str
        Outcome name (``churn``, ``conversion``, ...).
    horizon_days : float or None
        The horizon asked for; None or 0 for the outcome's default
        (:data:`DEFAULT_HORIZON_DAYS`, else 90 days).

    Returns
    -------
    float
        The horizon in days.

    Raises
    ------
    ValueError
        If ``horizon_days`` is negative.
    """
    if horizon_days is None or horizon_days == 0:
        return float(DEFAULT_HORIZON_DAYS.get(outcome, _FALLBACK_HORIZON))
    if horizon_days < 0:
        msg = f"horizon_days must be positive (days after signup), or 0/None for the outcome's default; got {horizon_days!r}"
        raise ValueError(msg)
    return float(horizon_days)


def outcome_population_data(
    store: Store,
    *,
    definition: JourneyDefinition,
    outcome: str = "churn",
    window_days: int | str = 7,
    horizon_days: float | str | None = None,
    population: str = "auto",
    as_of: Any = None,
    segment: str | None = None,
    plan: str | None = None,
    signup_from: Any = None,
    signup_to: Any = None,
    sample_n: int = 0,
    random_state: int = 0,
    scope: Scope | None = None,
) -> pd.DataFrame:
    """Say, per customer in scope, whether and why they enter an outcome analysis.

    Parameters
    ----------
    store : Store
        The canonical store.
    definition : JourneyDefinition
        Source of the outcome.
    outcome : str, default "churn"
        An outcome name of the definition (``churn``, ``conversion``,
        ``expansion`` ...).
    window_days : int or "auto", default 7
        Behaviour window: ``[signup, signup + window_days)``. ``"auto"`` (or
        0): :func:`choose_window_days` on the observed outcomes.
    horizon_days : float or "auto", optional
        The outcome counts when it happens after the window end and at most
        this many days after signup. None or 0: :data:`DEFAULT_HORIZON_DAYS`
        (churn 150, conversion 30, expansion 180); ``"auto"``:
        :func:`choose_horizon_days` (the 90th percentile of the observed
        times to the outcome).
    population : {"auto", "all", "converted"}, default "auto"
        ``converted``: only customers who converted by as_of (only paying
        accounts can churn or expand); ``auto`` = ``all`` for the conversion
        outcome and ``converted`` for the others when the definition has a
        conversion outcome.
    as_of, segment, plan, signup_from, signup_to, sample_n, random_state, scope
        Scope, as in :func:`journeylib.customers.features.build_features`.

    Returns
    -------
    pandas.DataFrame
        One row per customer in scope: ``customer_id``, ``segment``, ``plan``,
        ``signup_at``, ``window_end`` (signup + window_days),
        ``outcome_at`` (UTC, NaT if not by as_of), ``status`` — the first
        that applies of ``window_incomplete`` (window ends after as_of),
        ``followup_incomplete`` (signup + horizon after as_of),
        ``not_at_risk`` (population ``converted`` and not converted),
        ``outcome_before_window_end`` (outcome at or before the window end),
        ``included`` — ``outcome`` (1.0 if the outcome happened within
        the horizon, 0.0 if not, NaN unless included), ``time_days`` (days
        from signup to the outcome, NaN if none by as_of), ``followup_days``
        (days from signup to as_of), ``km_eligible`` (window complete, at
        risk, no outcome by the window end: the Kaplan–Meier population,
        which keeps ``followup_incomplete`` customers), ``km_duration``
        (days from signup to the outcome, as_of or the horizon, whichever
        comes first), ``km_event`` (1.0 if the outcome came within the
        horizon and by as_of), ``window_days`` and ``horizon_days`` (the
        values used). ``DataFrame.attrs`` holds ``window_basis`` and
        ``horizon_basis`` (how each was chosen, in words).

    Raises
    ------
    ValueError
        If the outcome is not in the definition, ``population`` is unknown,
        or ``window_days`` / ``horizon_days`` are out of range.
    EmptyResultError
        If no customer is in scope.
    """
    col, is_conversion = outcome_spec(definition, outcome)
    if population not in ("auto", "all", "converted"):
        msg = f"population must be 'auto', 'all' or 'converted'; got {population!r}"
        raise ValueError(msg)
    auto_window = window_days in ("auto", 0, None)
    if not auto_window and (isinstance(window_days, (bool, str)) or not isinstance(window_days, (int, np.integer)) or window_days < 1):
        msg = f"outcome_population_data: window_days must be a positive whole number of days or 'auto'; got {window_days!r}"
        raise ValueError(msg)
    auto_horizon = isinstance(horizon_days, str)
    if auto_horizon and horizon_days != "auto":
        msg = f"outcome_population_data: horizon_days must be a number of days, 0/None (default) or 'auto'; got {horizon_days!r}"
        raise ValueError(msg)
    scope = Scope.resolve(store, scope, function="outcome_population_data", segment_field=definition.segment_field, as_of=as_of, segment=segment, plan=plan,
                          signup_from=signup_from, signup_to=signup_to, sample_n=sample_n, random_state=random_state)
    outs = customer_outcomes_data(store, definition=definition, scope=scope)
    asof = scope.as_of
    conv_col = _conversion_column(definition)
    pop = population
    if pop == "auto":
        pop = "all" if (is_conversion or conv_col is None) else "converted"
    if pop == "converted" and conv_col is None:
        msg = "population='converted' needs an outcome with customer_field converted_at in the journey definition"
        raise ValueError(msg)
    signup = outs["signup_at"]
    out_at = outs[col]
    time_days = ((out_at - signup).dt.total_seconds() / 86400.0).astype(float)
    followup = ((asof - signup).dt.total_seconds() / 86400.0).astype(float)
    at_risk = outs[conv_col].notna() if pop == "converted" and conv_col else pd.Series(True, index=outs.index)
    if auto_window:
        wd, window_basis = choose_window_days(time_days[at_risk])
    else:
        wd, window_basis = int(window_days), "given"
    if auto_horizon:
        h, horizon_basis = choose_horizon_days(time_days[at_risk], window_days=wd, outcome=outcome)
        if h is None:
            h = outcome_horizon(outcome, None)
            horizon_basis = f"the default for {outcome} ({horizon_basis})"
        horizon = h
    else:
        horizon = outcome_horizon(outcome, horizon_days)  # type: ignore[arg-type]
        horizon_basis = "given" if horizon_days not in (None, 0) else f"the default for {outcome}"
    window_end = signup + pd.Timedelta(days=wd)
    in_window = out_at.notna() & (out_at <= window_end)
    status = np.select(
        [
            window_end > asof,
            signup + pd.Timedelta(days=horizon) > asof,
            ~at_risk,
            in_window,
        ],
        ["window_incomplete", "followup_incomplete", "not_at_risk", "outcome_before_window_end"],
        default="included",
    )
    within = out_at.notna() & (time_days <= horizon)
    y = np.where(status == "included", within.astype(float), np.nan)
    km_eligible = (window_end <= asof) & at_risk & ~in_window
    km_duration = np.minimum(np.minimum(time_days.fillna(np.inf), followup), horizon)
    out = pd.DataFrame(
        {
            "customer_id": outs["customer_id"], "segment": outs["segment"], "plan": outs["plan"],
            "signup_at": signup, "window_end": window_end, "outcome_at": out_at, "status": status, "outcome": y,
            "time_days": time_days, "followup_days": followup, "km_eligible": km_eligible.to_numpy(dtype=bool),
            "km_duration": km_duration.to_numpy(dtype=float), "km_event": within.to_numpy(dtype=float),
            "window_days": int(wd), "horizon_days": float(horizon),
        }
    )
    out.attrs["window_basis"] = window_basis
    out.attrs["horizon_basis"] = horizon_basis
    return out
