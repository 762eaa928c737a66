"""Time to churn: Kaplan–Meier curves by group with at-risk counts, the log-rank test, and Cox models (lifelines).

The clock of churn starts at conversion (only paying accounts can churn): a
customer's duration is the days from ``converted_at`` to churn, or to the
data's end when they have not churned (censored, never counted as churned).
Cox hazard ratios are associations adjusted for the other covariates, not
causal effects.

Time to the next stage: the clock starts when a customer enters an ordered
stage and stops when they enter the next ordered stage (the event), or when
their journey ends by a drop outcome or the data ends (censored, never counted
as reaching it nor as a failure).
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from lifelines import CoxPHFitter, KaplanMeierFitter
from lifelines.statistics import multivariate_logrank_test, proportional_hazard_test

from journeylib.cache import ResultCache
from journeylib.config.journey import JourneyDefinition
from journeylib.customers.features import customer_outcomes_data, feature_slug
from journeylib.customers.outcomes import outcome_spec
from journeylib.exceptions import EmptyResultError, StatisticalWarning
from journeylib.journey.stages import stage_milestones
from journeylib.scope import Scope
from journeylib.store import Store

__all__ = [
    "CoxResult",
    "churn_durations_data",
    "cox_data",
    "kaplan_meier_data",
    "logrank_data",
    "next_stage_durations_data",
    "next_stage_kaplan_meier_data",
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


def next_stage_durations_data(
    store: Store,
    *,
    definition: JourneyDefinition,
    as_of: Any = None,
    segment: str | None = None,
    plan: str | None = None,
    signup_from: Any = None,
    signup_to: Any = None,
    sample_n: int = 0,
    random_state: int = 0,
    scope: Scope | None = None,
    cache: ResultCache | None = None,
) -> pd.DataFrame:
    """Return, for each customer and each ordered stage they entered, the time until they entered the next one.

    The next stage of a stage is the next stage of the definition's order that
    is not a free-order milestone; the last ordered stage has none and gives no
    row. The clock starts at the stage's entry. It stops at the next stage's
    entry (``reached`` = 1), or is censored (``reached`` = 0) at the journey's
    end by a drop outcome of the definition (``ended_by`` = ``journey_ended``)
    or at ``as_of`` (``still_waiting``). A censored customer is never counted
    as having failed to reach the stage: Kaplan–Meier treats them as followed
    up to their censoring time only. A journey ended by a drop outcome is a
    competing event: treating it as censoring estimates the time to the next
    stage of customers whose journey does not end, not the share that
    reaches it (which is lower).

    Parameters
    ----------
    store : Store
        The canonical store.
    definition : JourneyDefinition
        Stages, their order and the drop outcomes.
    as_of, segment, plan, signup_from, signup_to, sample_n, random_state, scope
        The scope; ``as_of`` is the data's end.
    cache : ResultCache, optional
        Shares the milestone frame with other analyses.

    Returns
    -------
    pandas.DataFrame
        One row per customer × entered ordered stage that has a next stage:
        ``customer_id``, ``segment``, ``plan``, ``stage``, ``stage_order``,
        ``next_stage``, ``entered_at``, ``next_entered_at`` (NaT when not
        reached by the censoring time), ``duration_days`` (entry to the next
        entry or to the censoring time), ``reached`` (1 = next stage entered,
        0 = censored), ``ended_by`` (``next_stage``, ``journey_ended``,
        ``still_waiting``).

    Raises
    ------
    ValueError
        If the definition has fewer than two ordered stages.
    EmptyResultError
        If no customer in scope entered an ordered stage with a next stage.
    """
    free = set(definition.free_stages)
    names = definition.stage_names
    ordered = [k for k, n in enumerate(names) if n not in free]
    if len(ordered) < 2:
        msg = (f"next_stage_durations_data: the definition {definition.name!r} has {len(ordered)} ordered stage(s) "
               f"({[names[k] for k in ordered]}); time to the next stage needs at least 2")
        raise ValueError(msg)
    scope = Scope.resolve(
        store, scope, function="next_stage_durations_data", as_of=as_of, segment=segment, plan=plan,
        signup_from=signup_from, signup_to=signup_to, sample_n=sample_n, random_state=random_state,
    )
    ms = stage_milestones(store, definition, scope, cache=cache)
    ms = ms[ms["stage_order"].isin(ordered)]
    entered = pd.to_datetime(ms["entered_at"], utc=True)
    wide = pd.DataFrame({"customer_id": ms["customer_id"].astype(str).to_numpy(),
                         "stage_order": ms["stage_order"].astype("int64").to_numpy(), "entered_at": entered.to_numpy()})
    wide = wide.pivot(index="customer_id", columns="stage_order", values="entered_at")
    info = ms.drop_duplicates("customer_id").set_index(ms.drop_duplicates("customer_id")["customer_id"].astype(str))
    ended = pd.to_datetime(info["ended_at"], utc=True)
    data_end = pd.Timestamp(scope.as_of)
    data_end = data_end.tz_localize("UTC") if data_end.tzinfo is None else data_end.tz_convert("UTC")
    parts = []
    for cur, nxt in itertools.pairwise(ordered):
        if cur not in wide.columns:
            continue
        start = pd.to_datetime(wide[cur], utc=True)
        start = start[start.notna()]
        if start.empty:
            continue
        stop_next = pd.to_datetime(wide[nxt], utc=True).reindex(start.index) if nxt in wide else pd.Series(pd.NaT, index=start.index, dtype="datetime64[ns, UTC]")
        end_j = ended.reindex(start.index)
        reached = stop_next.notna() & ~(end_j.notna() & (end_j < stop_next))
        journey_ended = ~reached & end_j.notna() & (end_j < data_end)
        stop = stop_next.where(reached, end_j.where(journey_ended, data_end))
        parts.append(pd.DataFrame({
            "customer_id": start.index, "segment": info["segment"].reindex(start.index).to_numpy(),
            "plan": info["plan"].reindex(start.index).to_numpy(), "stage": names[cur], "stage_order": cur,
            "next_stage": names[nxt], "entered_at": start.to_numpy(), "next_entered_at": stop_next.where(reached).to_numpy(),
            "duration_days": ((stop - start) / pd.Timedelta(days=1)).to_numpy(dtype=float),
            "reached": reached.astype(int).to_numpy(),
            "ended_by": np.where(reached, "next_stage", np.where(journey_ended, "journey_ended", "still_waiting")),
        }))
    if not parts:
        msg = f"next_stage_durations_data: no customer in scope ({scope.describe()}) entered an ordered stage with a next stage"
        raise EmptyResultError(msg)
    out = pd.concat(parts, ignore_index=True)
    negative = out["duration_days"] < 0
    if negative.any():
        msg = (f"next_stage_durations_data: {int(negative.sum())} of {len(out)} rows have the next stage (or the journey's "
               "end) before the stage's entry; they are left out")
        warnings.warn(msg, StatisticalWarning, stacklevel=2)
        out = out[~negative].reset_index(drop=True)
    return out.sort_values(["stage_order", "customer_id"], kind="mergesort").reset_index(drop=True)


def next_stage_kaplan_meier_data(
    durations: pd.DataFrame,
    *,
    times: Sequence[float] = (0, 7, 14, 30, 60, 90, 180),
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Return Kaplan–Meier curves of the time to the next stage, one per stage, with at-risk counts.

    Parameters
    ----------
    durations : pandas.DataFrame
        :func:`next_stage_durations_data`.
    times : sequence of float
        Days since the stage's entry at which the curves are read.
    alpha : float, default 0.05
        1 - confidence level (lifelines' exponential Greenwood interval).

    Returns
    -------
    pandas.DataFrame
        One row per stage (in the definition's order) × time: ``stage``,
        ``next_stage``, ``time_days``, ``not_reached`` (Kaplan–Meier share
        still waiting), ``reached_share`` (1 - ``not_reached``), ``ci_low``,
        ``ci_high`` (interval of ``reached_share``), ``at_risk`` (customers
        still followed and waiting just before the time), ``reached_by``
        (next-stage entries up to the time), ``censored_by`` (censored up to
        the time: journey ended or data ended), ``n`` (customers who entered
        the stage).

    Raises
    ------
    ValueError
        If a column is missing.
    """
    _check(durations, ["stage", "stage_order", "next_stage", "duration_days", "reached"], "next_stage_kaplan_meier_data")
    km = kaplan_meier_data(durations, by="stage", duration_col="duration_days", event_col="reached", times=times, alpha=alpha)
    km = km.rename(columns={"group": "stage", "survival": "not_reached", "churned_by": "reached_by"})
    pairs = durations.drop_duplicates("stage").set_index("stage")
    km["next_stage"] = km["stage"].map(pairs["next_stage"])
    km["reached_share"] = 1.0 - km["not_reached"]
    km["ci_low"], km["ci_high"] = 1.0 - km["ci_high"], 1.0 - km["ci_low"]
    km["_o"] = km["stage"].map(pairs["stage_order"])
    km = km.sort_values(["_o", "time_days"], kind="mergesort").drop(columns="_o").reset_index(drop=True)
    return km[["stage", "next_stage", "time_days", "not_reached", "reached_share", "ci_low", "ci_high",
               "at_risk", "reached_by", "censored_by", "n"]]
