"""Who enters an outcome analysis: the outcome, its follow-up horizon and the analysed population.

Timing rules: behaviours come from the window ``[signup, signup +
window_days)``; the outcome counts only if it happens after the window end and
within ``horizon_days`` of signup; customers whose window or follow-up is not
complete at ``as_of``, or whose outcome came first, are excluded and counted.
The unit is the account (``customer_id``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from journeylib.config.journey import JourneyDefinition
from journeylib.customers.features import customer_outcomes_data, feature_slug
from journeylib.scope import Scope
from journeylib.store import Store

__all__ = ["DEFAULT_HORIZON_DAYS", "PLAN_ENCODED_OUTCOMES", "outcome_horizon", "outcome_population_data", "outcome_spec"]

#: Follow-up after signup within which an outcome counts, per outcome name (days).
DEFAULT_HORIZON_DAYS: dict[str, int] = {"churn": 150, "conversion": 30, "expansion": 180, "renewal": 400}
_FALLBACK_HORIZON = 90

#: Outcomes the exported plan encodes (it changes when they happen): plan is not adjusted for.
PLAN_ENCODED_OUTCOMES: frozenset[str] = frozenset({"conversion", "expansion"})


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
    window_days: int = 7,
    horizon_days: float | None = None,
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
    window_days : int, default 7
        Behaviour window: ``[signup, signup + window_days)``.
    horizon_days : float, optional
        The outcome counts when it happens after the window end and at most
        this many days after signup. Default (None or 0):
        :data:`DEFAULT_HORIZON_DAYS` (churn 150, conversion 30, expansion
        180).
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
        ``included`` — and ``outcome`` (1.0 if the outcome happened within
        the horizon, 0.0 if not, NaN unless included).

    Raises
    ------
    ValueError
        If the outcome is not in the definition, or ``population`` is unknown.
    EmptyResultError
        If no customer is in scope.
    """
    col, is_conversion = outcome_spec(definition, outcome)
    if population not in ("auto", "all", "converted"):
        msg = f"population must be 'auto', 'all' or 'converted'; got {population!r}"
        raise ValueError(msg)
    horizon = outcome_horizon(outcome, horizon_days)
    scope = Scope.resolve(store, scope, function="outcome_population_data", as_of=as_of, segment=segment, plan=plan,
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
    window_end = signup + pd.Timedelta(days=window_days)
    out_at = outs[col]
    status = np.select(
        [
            window_end > asof,
            signup + pd.Timedelta(days=horizon) > asof,
            (outs[conv_col].isna() if pop == "converted" and conv_col else pd.Series(False, index=outs.index)),
            out_at.notna() & (out_at <= window_end),
        ],
        ["window_incomplete", "followup_incomplete", "not_at_risk", "outcome_before_window_end"],
        default="included",
    )
    within = out_at.notna() & ((out_at - signup).dt.total_seconds() / 86400.0 <= horizon)
    y = np.where(status == "included", within.astype(float), np.nan)
    return pd.DataFrame(
        {
            "customer_id": outs["customer_id"], "segment": outs["segment"], "plan": outs["plan"],
            "signup_at": signup, "window_end": window_end, "outcome_at": out_at, "status": status, "outcome": y,
        }
    )
