"""Time to churn: Kaplan–Meier curves by group with at-risk counts, the log-rank test, and Cox models (lifelines).

The clock of churn starts at conversion (only paying accounts can churn): a
customer's duration is the days from ``converted_at`` to churn, or to the
data's end when they have not churned (censored, never counted as churned).
Cox hazard ratios are associations adjusted for the other covariates, not
causal effects.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from lifelines import CoxPHFitter, KaplanMeierFitter
from lifelines.statistics import multivariate_logrank_test, proportional_hazard_test

from journeylib.config.journey import JourneyDefinition
from journeylib.customers.features import customer_outcomes_data, feature_slug
from journeylib.customers.outcomes import outcome_spec
from journeylib.exceptions import EmptyResultError, StatisticalWarning
from journeylib.scope import Scope
from journeylib.store import Store

__all__ = [
    "CoxResult",
    "churn_durations_data",
    "cox_data",
    "kaplan_meier_data",
    "logrank_data",
]


def churn_durations_data(
    store: Store,
    *,
    definition: JourneyDefinition,
    outcome: str = "churn",
    cohort_freq: str = "Q",
    as_of: Any = None,
    segment: str | None = None,
    plan: str | None = None,
    signup_from: Any = None,
    signup_to: Any = None,
    sample_n: int = 0,
    random_state: int = 0,
    scope: Scope | None = None,
) -> pd.DataFrame:
    """Return each converted customer's time from conversion to churn, or to the data's end (censored).

    Parameters
    ----------
    store : Store
        The canonical store.
    definition : JourneyDefinition
        Its churn outcome and its conversion outcome (``customer_field: converted_at``).
    outcome : str, default "churn"
        The outcome whose time is measured.
    cohort_freq : str, default "Q"
        Pandas period alias of the conversion cohort.
    as_of, segment, plan, signup_from, signup_to, sample_n, random_state, scope
        The scope; ``as_of`` is the data's end.

    Returns
    -------
    pandas.DataFrame
        One row per customer converted by ``as_of``: ``customer_id``,
        ``segment``, ``plan``, ``cohort`` (conversion period), ``converted_at``,
        ``churn_at`` (NaT if not by as_of), ``duration_days`` (conversion to
        churn or as_of), ``churned`` (1 = churn observed, 0 = censored).

    Raises
    ------
    ValueError
        If the definition has no conversion outcome or not the outcome.
    EmptyResultError
        If no customer in scope converted.
    """
    col, _ = outcome_spec(definition, outcome)
    conv = next((f"{feature_slug(n)}_at" for n, o in definition.outcomes.items() if o.customer_field == "converted_at"), None)
    if conv is None:
        msg = "churn_durations_data: the journey definition needs an outcome with customer_field converted_at (the clock's start)"
        raise ValueError(msg)
    scope = Scope.resolve(
        store, scope, function="churn_durations_data", as_of=as_of, segment=segment, plan=plan,
        signup_from=signup_from, signup_to=signup_to, sample_n=sample_n, random_state=random_state,
    )
    outs = customer_outcomes_data(store, definition=definition, scope=scope)
    outs = outs[outs[conv].notna()].reset_index(drop=True)
    if outs.empty:
        msg = f"churn_durations_data: no customer converted in scope ({scope.describe()})"
        raise EmptyResultError(msg)
    start = pd.to_datetime(outs[conv], utc=True)
    end = pd.to_datetime(outs[col], utc=True)
    churned = end.notna() & (end >= start)
    stop = end.where(churned, scope.as_of)
    return pd.DataFrame(
        {
            "customer_id": outs["customer_id"], "segment": outs["segment"], "plan": outs["plan"],
            "cohort": start.dt.tz_localize(None).dt.to_period(cohort_freq).astype(str), "converted_at": start,
            "churn_at": end.where(churned), "duration_days": ((stop - start) / pd.Timedelta(days=1)).astype(float),
            "churned": churned.astype(int),
        }
    )


def _check(frame: pd.DataFrame, cols: Sequence[str], function: str) -> None:
    missing = [c for c in cols if c not in frame.columns]
    if missing:
        msg = f"{function}: the frame lacks columns {missing}; it has {list(frame.columns)}"
        raise ValueError(msg)


def kaplan_meier_data(
    durations: pd.DataFrame,
    *,
    by: str | None = "segment",
    duration_col: str = "duration_days",
    event_col: str = "churned",
    times: Sequence[float] = (0, 30, 60, 90, 180, 270, 365),
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Return Kaplan–Meier survival (not churned) by group at given times, with intervals and at-risk counts.

    Parameters
    ----------
    durations : pandas.DataFrame
        E.g. :func:`churn_durations_data`.
    by : str or None, default "segment"
        Grouping column (``segment``, ``cohort``, ``plan``); None for everyone.
    duration_col, event_col : str
        Duration and event (1 = observed, 0 = censored) columns.
    times : sequence of float
        Days at which the curve is read.
    alpha : float, default 0.05
        1 - confidence level (lifelines' exponential Greenwood interval).

    Returns
    -------
    pandas.DataFrame
        One row per group × time: ``group``, ``time_days``, ``survival``,
        ``ci_low``, ``ci_high``, ``at_risk`` (customers still followed and not
        churned just before the time), ``churned_by`` (churns observed up to
        the time), ``censored_by`` (censored up to the time), ``n`` (group size).

    Raises
    ------
    ValueError
        If a column is missing.
    """
    _check(durations, [duration_col, event_col] + ([by] if by else []), "kaplan_meier_data")
    groups = durations.groupby(by, dropna=False, sort=True) if by else [("all", durations)]
    rows = []
    for name, g in groups:
        kmf = KaplanMeierFitter(alpha=alpha).fit(g[duration_col], g[event_col])
        t = np.asarray(times, dtype=float)
        surv = kmf.survival_function_at_times(t).to_numpy()
        ci = kmf.confidence_interval_survival_function_
        d = g[duration_col].to_numpy(dtype=float)
        e = g[event_col].to_numpy(dtype=int)
        for ti, si in zip(t, surv, strict=True):
            idx = ci.index.searchsorted(ti, side="right") - 1
            lo, hi = (ci.iloc[max(idx, 0), 0], ci.iloc[max(idx, 0), 1])
            rows.append({
                "group": str(name), "time_days": ti, "survival": float(si), "ci_low": float(lo), "ci_high": float(hi),
                "at_risk": int((d >= ti).sum()), "churned_by": int(((d <= ti) & (e == 1)).sum()),
                "censored_by": int(((d <= ti) & (e == 0)).sum()), "n": len(g),
            })
    return pd.DataFrame(rows)


def logrank_data(
    durations: pd.DataFrame, *, by: str = "segment", duration_col: str = "duration_days", event_col: str = "churned"
) -> pd.DataFrame:
    """Return the log-rank test of equal survival across the groups of *by*.

    Parameters
    ----------
    durations : pandas.DataFrame
        E.g. :func:`churn_durations_data`.
    by : str, default "segment"
        Grouping column.
    duration_col, event_col : str
        Duration and event columns.

    Returns
    -------
    pandas.DataFrame
        One row: ``by``, ``groups``, ``test_statistic`` (chi-square),
        ``degrees_of_freedom``, ``p_value``, ``n``, ``events``.

    Raises
    ------
    ValueError
        If a column is missing or there are fewer than 2 groups.
    """
    _check(durations, [duration_col, event_col, by], "logrank_data")
    k = durations[by].nunique(dropna=False)
    if k < 2:
        msg = f"logrank_data: {by!r} has {k} group(s); the log-rank test compares at least 2"
        raise ValueError(msg)
    res = multivariate_logrank_test(durations[duration_col], durations[by].astype(str), durations[event_col])
    return pd.DataFrame([{
        "by": by, "groups": int(k), "test_statistic": float(res.test_statistic),
        "degrees_of_freedom": int(res.degrees_of_freedom), "p_value": float(res.p_value), "n": len(durations),
        "events": int(durations[event_col].sum()),
    }])


@dataclass(frozen=True)
class CoxResult:
    """A fitted Cox proportional-hazards model, as tables.

    Attributes
    ----------
    summary : pandas.DataFrame
        One row per covariate: ``covariate``, ``coef`` (log hazard ratio),
        ``se``, ``hazard_ratio``, ``hr_low``, ``hr_high`` (confidence
        interval), ``p_value``.
    ph_test : pandas.DataFrame
        Schoenfeld-residual test of proportional hazards per covariate:
        ``covariate``, ``test_statistic``, ``p_value``, ``ph_violated``
        (p below ``alpha``).
    concordance : float
        Harrell's C on the fitted data.
    n, events : int
        Rows and observed events.
    model : CoxPHFitter
        The lifelines model.
    """

    summary: pd.DataFrame
    ph_test: pd.DataFrame
    concordance: float
    n: int
    events: int
    model: CoxPHFitter


def cox_data(
    frame: pd.DataFrame,
    *,
    duration_col: str,
    event_col: str,
    covariates: Sequence[str],
    penalizer: float = 0.0,
    alpha: float = 0.05,
) -> CoxResult:
    """Fit a Cox model; return hazard ratios with intervals and the proportional-hazards check.

    Rows with a missing covariate are dropped (counted in a warning). Text
    covariates are one-hot encoded, the first level as reference.

    Parameters
    ----------
    frame : pandas.DataFrame
        One row per subject.
    duration_col, event_col : str
        Duration and event (1 observed, 0 censored).
    covariates : sequence of str
        Covariate columns.
    penalizer : float, default 0.0
        lifelines' L2 penalty (0 = the plain partial likelihood).
    alpha : float, default 0.05
        1 - confidence level; also the level of the PH test.

    Returns
    -------
    CoxResult
        Hazard ratios, the PH test, concordance and the fitted model.

    Raises
    ------
    ValueError
        If a column is missing or no covariate is given.
    EmptyResultError
        If no events remain.

    Examples
    --------
    >>> from lifelines.datasets import load_rossi
    >>> res = cox_data(load_rossi(), duration_col="week", event_col="arrest",
    ...                covariates=["fin", "age", "race", "wexp", "mar", "paro", "prio"])
    >>> round(float(res.summary.set_index("covariate").loc["fin", "coef"]), 3)
    -0.379
    """
    if not covariates:
        msg = "cox_data: give at least one covariate"
        raise ValueError(msg)
    _check(frame, [duration_col, event_col, *covariates], "cox_data")
    data = frame[[duration_col, event_col, *covariates]]
    complete = data.dropna()
    if len(complete) < len(data):
        msg = f"cox_data: {len(data) - len(complete)} of {len(data)} rows have a missing value and are left out"
        warnings.warn(msg, StatisticalWarning, stacklevel=2)
    X = pd.get_dummies(complete, columns=[c for c in covariates if not pd.api.types.is_numeric_dtype(complete[c])],
                       drop_first=True, dtype=float)
    events = int(X[event_col].sum())
    if events == 0:
        msg = "cox_data: no events (every row censored); hazard ratios cannot be estimated"
        raise EmptyResultError(msg)
    cph = CoxPHFitter(penalizer=penalizer, alpha=alpha).fit(X, duration_col=duration_col, event_col=event_col)
    s = cph.summary
    lo_col = next(c for c in s.columns if c.startswith("exp(coef) lower"))
    hi_col = next(c for c in s.columns if c.startswith("exp(coef) upper"))
    summary = pd.DataFrame({
        "covariate": s.index.astype(str), "coef": s["coef"].to_numpy(), "se": s["se(coef)"].to_numpy(),
        "hazard_ratio": s["exp(coef)"].to_numpy(), "hr_low": s[lo_col].to_numpy(), "hr_high": s[hi_col].to_numpy(),
        "p_value": s["p"].to_numpy(),
    })
    ph = proportional_hazard_test(cph, X, time_transform="rank").summary
    ph_test = pd.DataFrame({
        "covariate": ph.index.astype(str), "test_statistic": ph["test_statistic"].to_numpy(),
        "p_value": ph["p"].to_numpy(), "ph_violated": (ph["p"] < alpha).to_numpy(),
    })
    return CoxResult(summary=summary, ph_test=ph_test, concordance=float(cph.concordance_index_), n=len(X), events=events, model=cph)
