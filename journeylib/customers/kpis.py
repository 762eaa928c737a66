"""Customer-success KPIs over time: time to value, stage conversion, churn rate and customers at risk, by week or month.

Every KPI row carries its denominator ``n`` and a 95% interval, and each is
measured so that a recent period is not flattered or penalised by having
less follow-up:

* **time to value** of a sign-up cohort is a Kaplan–Meier median (customers
  who have not reached the value stage by ``as_of`` are censored, not
  counted as failures), with lifelines' confidence interval;
* **stage conversion** of a sign-up cohort is the share reaching each stage
  within ``conversion_days`` of signup, among the customers of the cohort
  whose ``conversion_days`` had passed by ``as_of`` (Wilson interval);
* **churn rate** of a calendar period is the paying customers whose churn
  outcome fell in the period over those paying at its start (converted, not
  churned), Wilson interval; the running period is left out;
* **at risk** at the end of a calendar period counts the paying customers
  (converted, not churned by then) with no activity event in the ``inactive_days``
  before it (a plain inactivity rule, named in ``definition``), with the
  Wilson interval of the share scaled to a count.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
from lifelines import KaplanMeierFitter
from lifelines.utils import median_survival_times

from journeylib.cache import ResultCache
from journeylib.config.journey import JourneyDefinition
from journeylib.customers.features import customer_outcomes_data, feature_slug
from journeylib.exceptions import DataQualityWarning, EmptyResultError
from journeylib.journey.stages import stage_milestones
from journeylib.scope import Scope
from journeylib.stats import wilson_interval
from journeylib.store import Store
from journeylib.store.categories import activity_source_names
from journeylib.store.dialect import sql_cast, sql_quote

__all__ = ["KPI_COLUMNS", "kpis_data", "value_stage_of"]

#: Columns of :func:`kpis_data`.
KPI_COLUMNS: list[str] = ["period", "freq", "kpi", "item", "value", "ci_low", "ci_high", "numerator", "n", "unit", "definition"]

_FREQ = {"week": "W-MON", "month": "MS"}


def value_stage_of(definition: JourneyDefinition, value_stage: str = "") -> str:
    """Return the stage whose entry counts as reaching value.

    The stage is, in order: *value_stage* when given; the definition's
    ``value_stage``; the one stage whose name contains "value" (any case).
    When none of these names one, the third stage of the definition (the
    last when it has fewer) is used and a
    :class:`~journeylib.exceptions.DataQualityWarning` says so, naming the
    stage and how to set it: time to value then means time to that stage.

    Parameters
    ----------
    definition : JourneyDefinition
        The journey definition.
    value_stage : str, default ""
        A stage name; empty means as above.

    Returns
    -------
    str
        The stage name.

    Raises
    ------
    ValueError
        If ``value_stage`` is not a stage of the definition.

    Warns
    -----
    DataQualityWarning
        When the stage is the positional fallback, or when several stage
        names contain "value" (the first is used).
    """
    names = definition.stage_names
    if value_stage:
        if value_stage not in names:
            msg = f"value_stage {value_stage!r} is not a stage of the definition {definition.name!r}; its stages are: {', '.join(names)}"
            raise ValueError(msg)
        return value_stage
    if definition.value_stage:
        return definition.value_stage
    named = [name for name in names if "value" in name.lower()]
    if len(named) > 1:
        warnings.warn(
            f"time to value: {len(named)} stages of {definition.name!r} have 'value' in their name ({', '.join(named)}); "
            f"the first, {named[0]!r}, counts as value. Set value_stage in the journey definition to choose.",
            DataQualityWarning, stacklevel=2,
        )
    if named:
        return named[0]
    chosen = names[min(2, len(names) - 1)]
    warnings.warn(
        f"time to value: the journey definition {definition.name!r} names no value stage (no value_stage key, no stage "
        f"named with 'value'); the stage in position {names.index(chosen) + 1} of {len(names)}, {chosen!r}, counts as "
        "value. Set value_stage in the journey definition (or the value_stage parameter) if another stage means value.",
        DataQualityWarning, stacklevel=2,
    )
    return chosen


def _periods(start: pd.Timestamp, end: pd.Timestamp, freq: str) -> pd.DatetimeIndex:
    first = start.tz_convert("UTC").normalize()
    first = first - pd.offsets.MonthBegin(1) if freq == "month" and first.day != 1 else first
    if freq == "week":
        first = first - pd.Timedelta(days=first.weekday())
    return pd.date_range(first, end, freq=_FREQ[freq], tz="UTC")


def kpis_data(
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
    freq: str = "month",
    value_stage: str = "",
    conversion_days: int = 30,
    inactive_days: int = 14,
    churn_outcome: str = "churn",
    conversion_outcome: str = "conversion",
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Return the KPIs per week or month: time to value, stage conversion, churn rate, customers at risk.

    Parameters
    ----------
    store : Store
        The canonical store.
    definition : JourneyDefinition
        Stages (time to value, conversion) and the churn outcome.
    as_of, segment, plan, signup_from, signup_to, sample_n, random_state, scope
        Which customers (:meth:`Scope.resolve`).
    cache : ResultCache, optional
        Shares the milestone frame with other analyses.
    freq : {"month", "week"}, default "month"
        Period length; weeks start on Monday (UTC).
    value_stage : str, default ""
        The stage that counts as value (:func:`value_stage_of`).
    conversion_days : int, default 30
        Stage conversion counts stages entered within this many days of signup.
    inactive_days : int, default 14
        At risk: no activity event in this many days before the period end.
    churn_outcome : str, default "churn"
        The outcome of the definition that is churn; when the definition has
        none, the customers' ``churned_at``.
    conversion_outcome : str, default "conversion"
        The outcome that makes a customer paying (churn and risk are measured among paying
        customers); when the definition has none, the customers' ``converted_at``.
    alpha : float, default 0.05
        1 − confidence level of the intervals.

    Returns
    -------
    pandas.DataFrame
        Long format, one row per period × KPI (× stage), columns:

        ``period``
            Start of the week or month (UTC): of sign-up for ``time_to_value`` and ``stage_conversion``,
            calendar for ``churn_rate`` and ``at_risk``.
        ``freq``
            ``month`` or ``week`` (a weekly churn rate is not comparable with a monthly one).
        ``kpi``
            ``time_to_value``, ``stage_conversion``, ``churn_rate``, ``at_risk``.
        ``item``
            The stage for ``stage_conversion`` and ``time_to_value``; empty otherwise.
        ``value``
            Median days (time to value), share (conversion, churn rate) or customers (at risk);
            NaN when the median is not reached yet.
        ``ci_low``, ``ci_high``
            The 1 − ``alpha`` interval (NaN bound: not reached).
        ``numerator``
            Customers who reached the stage / churned / are at risk; for time to value, those who reached value.
        ``n``
            The denominator: cohort customers (time to value), cohort customers with ``conversion_days``
            of follow-up (conversion), paying customers at the period start (churn rate), paying
            customers at the period end (at risk).
        ``unit``
            ``days``, ``share`` or ``customers``.
        ``definition``
            The KPI in words (stage, window, rule).

    Raises
    ------
    ValueError
        If ``freq`` is not week or month, a day count is not positive, or ``value_stage`` is unknown.
    EmptyResultError
        If no customer is in scope.

    Examples
    --------
    >>> kpis_data(store, definition=definition, freq="month")  # doctest: +SKIP
    """
    if freq not in _FREQ:
        msg = f"kpis_data: freq must be 'week' or 'month'; got {freq!r}"
        raise ValueError(msg)
    for name, value in (("conversion_days", conversion_days), ("inactive_days", inactive_days)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            msg = f"kpis_data: {name} must be a positive whole number of days; got {value!r}"
            raise ValueError(msg)
    vstage = value_stage_of(definition, value_stage)
    scope = Scope.resolve(
        store, scope, function="kpis_data", as_of=as_of, segment=segment, plan=plan, signup_from=signup_from,
        signup_to=signup_to, sample_n=sample_n, random_state=random_state, segment_field=definition.segment_field,
    )
    ms = stage_milestones(store, definition, scope, cache=cache)
    if ms.empty:
        msg = "kpis_data: no customer is in scope"
        raise EmptyResultError(msg)
    as_of_ts = scope.as_of
    cust = ms.drop_duplicates("customer_id")[["customer_id", "signup_at"]].set_index("customer_id")
    periods = _periods(cust["signup_at"].min(), as_of_ts, freq)
    cust["period"] = periods[periods.searchsorted(cust["signup_at"], side="right") - 1]
    rows: list[dict[str, Any]] = []
    rows += _time_to_value(ms, cust, vstage, as_of_ts, alpha)
    rows += _conversion(ms, cust, definition, conversion_days, as_of_ts, alpha)
    churn_at = _outcome_times(store, definition, scope, churn_outcome, "churned_at", cust)
    paid_at = _outcome_times(store, definition, scope, conversion_outcome, "converted_at", cust)
    rows += _churn_rate(cust, churn_at, paid_at, periods, as_of_ts, freq, alpha)
    rows += _at_risk(store, scope, cust, churn_at, paid_at, periods, as_of_ts, freq, inactive_days, alpha)
    out = pd.DataFrame(rows, columns=[c for c in KPI_COLUMNS if c != "freq"])
    out.insert(1, "freq", freq)
    return out.sort_values(["kpi", "item", "period"]).reset_index(drop=True)


def _time_to_value(ms: pd.DataFrame, cust: pd.DataFrame, vstage: str, as_of: pd.Timestamp, alpha: float) -> list[dict[str, Any]]:
    v = ms[ms["stage"].astype(str) == vstage].set_index("customer_id")["entered_at"].reindex(cust.index)
    days = (v - cust["signup_at"]).dt.total_seconds() / 86400
    follow = (as_of - cust["signup_at"]).dt.total_seconds() / 86400
    reached = v.notna().to_numpy()
    t = np.where(reached, days, follow).clip(min=0)
    rows = []
    for period, idx in cust.groupby("period").indices.items():
        kmf = KaplanMeierFitter(alpha=alpha).fit(t[idx] + 1e-9, event_observed=reached[idx])
        med = float(kmf.median_survival_time_)
        ci = median_survival_times(kmf.confidence_interval_)
        lo, hi = (float(ci.iloc[0, 0]), float(ci.iloc[0, 1])) if len(ci) else (np.nan, np.nan)
        rows.append({
            "period": period, "kpi": "time_to_value", "item": vstage, "value": med if np.isfinite(med) else np.nan,
            "ci_low": lo if np.isfinite(lo) else np.nan, "ci_high": hi if np.isfinite(hi) else np.nan,
            "numerator": int(reached[idx].sum()), "n": len(idx), "unit": "days",
            "definition": f"median days from signup to {vstage} (Kaplan–Meier; not yet reached = censored at as_of)",
        })
    return rows


def _conversion(ms: pd.DataFrame, cust: pd.DataFrame, definition: JourneyDefinition, days: int, as_of: pd.Timestamp,
                alpha: float) -> list[dict[str, Any]]:
    full = cust[cust["signup_at"] + pd.Timedelta(days=days) <= as_of]
    m = ms[ms["customer_id"].isin(full.index)].copy()
    m["within"] = m["entered_at"].notna() & (m["entered_at"] < m["signup_at"] + pd.Timedelta(days=days))
    m["period"] = full["period"].reindex(m["customer_id"]).to_numpy()
    counts = m.groupby(["period", "stage"], observed=True)["within"].agg(["sum", "size"]).reset_index()
    lo, hi = wilson_interval(counts["sum"].to_numpy(), counts["size"].to_numpy(), alpha=alpha)
    hits, sizes = counts["sum"].to_numpy(float), counts["size"].to_numpy(float)
    return [
        {"period": period, "kpi": "stage_conversion", "item": str(stage), "value": hits[i] / sizes[i] if sizes[i] else np.nan,
         "ci_low": float(lo[i]), "ci_high": float(hi[i]), "numerator": int(hits[i]), "n": int(sizes[i]), "unit": "share",
         "definition": f"share of the sign-up cohort entering {stage} within {days} days (cohort members with {days} days of follow-up)"}
        for i, (period, stage) in enumerate(zip(counts["period"], counts["stage"], strict=True))
    ]


def _outcome_times(store: Store, definition: JourneyDefinition, scope: Scope, outcome: str, field: str,
                   cust: pd.DataFrame) -> pd.Series:
    out = customer_outcomes_data(store, definition=definition, scope=scope).set_index("customer_id")
    col = f"{feature_slug(outcome)}_at" if outcome in definition.outcomes else field
    return pd.to_datetime(out[col], utc=True).reindex(cust.index)


def _period_end(start: pd.Timestamp, freq: str) -> pd.Timestamp:
    return start + (pd.DateOffset(months=1) if freq == "month" else pd.Timedelta(days=7))


def _churn_rate(cust: pd.DataFrame, churn_at: pd.Series, paid_at: pd.Series, periods: pd.DatetimeIndex, as_of: pd.Timestamp, freq: str,
                alpha: float) -> list[dict[str, Any]]:
    rows = []
    for start in periods:
        end = _period_end(start, freq)
        if end > as_of:
            continue  # the running period: its churn is not all known yet
        at_start = (paid_at < start) & (churn_at.isna() | (churn_at >= start))
        n = int(at_start.sum())
        if n == 0:
            continue
        k = int((at_start & (churn_at >= start) & (churn_at < end)).sum())
        lo, hi = wilson_interval(np.array([k]), np.array([n]), alpha=alpha)
        rows.append({"period": start, "kpi": "churn_rate", "item": "", "value": k / n, "ci_low": float(lo[0]),
                     "ci_high": float(hi[0]), "numerator": k, "n": n, "unit": "share",
                     "definition": "paying customers churning in the period / customers paying (converted, not churned) at its start"})
    return rows


def _at_risk(store: Store, scope: Scope, cust: pd.DataFrame, churn_at: pd.Series, paid_at: pd.Series, periods: pd.DatetimeIndex,
             as_of: pd.Timestamp, freq: str, inactive_days: int, alpha: float) -> list[dict[str, Any]]:
    sources = activity_source_names(store)
    where = f"e.source IN ({', '.join(sql_quote(s) for s in sources)})" if sources else "TRUE"
    # one row per customer and day with activity (UTC days): enough for a window of whole days
    last = store.query(
        f"SELECT DISTINCT e.customer_id, {sql_cast('e.timestamp', 'date')} AS day FROM ({scope.events_sql()}) e WHERE {where}"
    )
    last["timestamp"] = pd.to_datetime(last["day"]).dt.tz_localize("UTC")
    rows = []
    for start in periods:
        end = min(_period_end(start, freq), as_of)
        alive = (paid_at < end) & (churn_at.isna() | (churn_at >= end))
        n = int(alive.sum())
        if n == 0:
            continue
        recent = last[(last["timestamp"] < end) & (last["timestamp"] >= end - pd.Timedelta(days=inactive_days))]
        active_ids = set(recent["customer_id"])
        # customers younger than the inactivity window cannot be inactive for it yet
        old_enough = cust["signup_at"] <= end - pd.Timedelta(days=inactive_days)
        risk = alive & old_enough & ~cust.index.isin(active_ids)
        k = int(risk.sum())
        lo, hi = wilson_interval(np.array([k]), np.array([n]), alpha=alpha)
        rows.append({"period": start, "kpi": "at_risk", "item": "", "value": float(k), "ci_low": float(lo[0] * n),
                     "ci_high": float(hi[0] * n), "numerator": k, "n": n, "unit": "customers",
                     "definition": f"paying customers (converted, not churned) at the period end with no activity in the {inactive_days} days before it"})
    return rows
