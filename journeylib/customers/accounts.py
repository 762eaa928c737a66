"""Account lists: the customers behind a count of the journey map, the friction table or a driver's split.

Every count a dashboard shows — a funnel bar's reached / dropped / censored
customers, a friction row's customers, a driver's "161 vs 230 customers" —
can be turned into the list of those customers, with their name, segment,
plan and current stage, by the function of this module that recomputes it
with the same rules as the count:

- :func:`funnel_accounts_data` follows :func:`journeylib.journey.stages.funnel_data`
  (``eligible``, ``reached``, ``dropped``, ``censored`` per stage and group);
- :func:`friction_accounts_data` lists the customers of a friction row
  (:func:`journeylib.journey.friction.friction_data`: the group's customers
  who entered the stage), with how their time in the stage ended;
- :func:`driver_accounts_data` rebuilds the split of a row of
  :func:`journeylib.customers.drivers.drivers_data` (the exposed and the
  reference group of the analysed population, with their outcome) and
  checks that its group sizes equal the row's ``n_exposed`` and
  ``n_reference``.

:func:`accounts_csv` writes a list as CSV text a spreadsheet opens.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from journeylib.cache import ResultCache
from journeylib.config.journey import JourneyDefinition
from journeylib.customers.drivers import split_keys
from journeylib.customers.features import build_features
from journeylib.customers.outcomes import outcome_population_data, window_grid
from journeylib.exceptions import EmptyResultError, StatisticalWarning
from journeylib.journey.stages import add_stage_exits, stage_milestones
from journeylib.scope import ALL, Scope
from journeylib.store import Store

__all__ = [
    "ACCOUNT_COLUMNS",
    "DRIVER_SIDES",
    "FUNNEL_STATUSES",
    "accounts_csv",
    "driver_accounts_data",
    "friction_accounts_data",
    "funnel_accounts_data",
]

#: The columns every account list starts with.
ACCOUNT_COLUMNS = ("customer_id", "name", "segment", "plan", "signup_at", "current_stage")
#: The funnel counts a list can be asked for (the columns of ``funnel_data`` with the same names).
FUNNEL_STATUSES = ("eligible", "reached", "dropped", "censored")
#: The sides of a driver's split.
DRIVER_SIDES = ("exposed", "reference", "both")
#: Driver kinds whose split is a threshold on a feature-table or customers column.
_THRESHOLD_KINDS = ("did_within", "count_at_least", "value_at_least", "stage_reached", "attribute_at_least")
_LEVEL_KINDS = ("property_value", "property_vs_reference")


def _scope(store: Store, scope: Scope | None, definition: JourneyDefinition, function: str, filters: Mapping[str, Any]) -> Scope:
    return Scope.resolve(store, scope, function=function, segment_field=definition.segment_field, **filters)


def _customer_details(store: Store, scope: Scope, definition: JourneyDefinition, cache: ResultCache | None) -> pd.DataFrame:
    """Name, segment, plan, signup and current stage of every customer in *scope* (one row each)."""
    people = store.query(f"SELECT customer_id, name, segment, plan, signup_at FROM ({scope.customers_sql()}) c")
    ms = stage_milestones(store, definition, scope, cache=cache)
    entered = ms[ms["entered_at"].notna()].sort_values(["customer_id", "entered_at", "stage_order"], kind="mergesort")
    current = entered.groupby("customer_id", sort=False)["stage"].last().astype(str)
    people["current_stage"] = people["customer_id"].map(current).fillna("(no stage entered)")
    people["signup_at"] = pd.to_datetime(people["signup_at"], utc=True)
    return people[list(ACCOUNT_COLUMNS)]


def funnel_accounts_data(
    store: Store,
    *,
    definition: JourneyDefinition,
    stage: str,
    status: str = "reached",
    group: str = ALL,
    by: str | None = None,
    as_of: Any = None,
    segment: str | None = None,
    plan: str | None = None,
    signup_from: Any = None,
    signup_to: Any = None,
    sample_n: int = 0,
    scope: Scope | None = None,
    cache: ResultCache | None = None,
) -> pd.DataFrame:
    """Return the customers behind one count of the funnel.

    The rules are those of :func:`journeylib.journey.stages.funnel_data`:
    ``eligible`` customers wait for the stage (every customer for the first
    stage and free-order stages, else those who entered the previous stage);
    ``reached`` entered it; ``dropped`` are eligible, did not reach it and
    churned, had their journey ended by a drop outcome after they started
    waiting, or waited longer than ``drop_after_days``; ``censored`` are
    eligible, not reached and none of those (still on their way at
    ``as_of``: not drop-offs). The list's length equals the funnel's count
    for the same stage, group and scope.

    Parameters
    ----------
    store : Store
        The canonical store.
    definition : JourneyDefinition
        Stages and conventions.
    stage : str
        A stage name of the definition.
    status : {"eligible", "reached", "dropped", "censored"}, default "reached"
        Which count.
    group : str, default "all"
        With *by*, the value of the group (a segment, a plan); ``"all"`` for
        every customer in scope.
    by : {"segment", "plan"}, optional
        The attribute *group* is a value of (as ``funnel_data(by=...)``).
    as_of, segment, plan, signup_from, signup_to, sample_n, scope
        Which customers, as of when (as in ``funnel_data``).
    cache : ResultCache, optional
        Share the milestone frame with the context's other analyses.

    Returns
    -------
    pandas.DataFrame
        One row per customer, ordered by name: ``customer_id``, ``name``,
        ``segment``, ``plan``, ``signup_at`` (UTC), ``current_stage`` (the
        stage entered last, or ``"(no stage entered)"``), ``stage`` (the
        asked stage), ``status`` (the asked status), ``waiting_since`` (UTC:
        when the customer started waiting for the stage), ``entered_at``
        (UTC, NaT unless reached). Empty (with these columns) when the count
        is 0.

    Raises
    ------
    ValueError
        If *stage*, *status* or *by* is not one the definition / funnel has.
    EmptyResultError
        If no customer is in scope.
    """
    if stage not in definition.stage_names:
        msg = f"funnel_accounts_data: stage must be one of {list(definition.stage_names)}; got {stage!r}"
        raise ValueError(msg)
    if status not in FUNNEL_STATUSES:
        msg = f"funnel_accounts_data: status must be one of {', '.join(FUNNEL_STATUSES)}; got {status!r}"
        raise ValueError(msg)
    if by not in (None, "segment", "plan"):
        msg = f"funnel_accounts_data: by must be None, 'segment' or 'plan'; got {by!r}"
        raise ValueError(msg)
    scope = _scope(store, scope, definition, "funnel_accounts_data", {
        "as_of": as_of, "segment": segment, "plan": plan, "signup_from": signup_from, "signup_to": signup_to,
        "sample_n": sample_n,
    })
    ms = stage_milestones(store, definition, scope, cache=cache)
    k = definition.stage_names.index(stage)
    cust = ms[ms["stage_order"] == 0].set_index("customer_id")
    here = pd.to_datetime(ms.loc[ms["stage_order"] == k].set_index("customer_id")["entered_at"], utc=True)
    signup = pd.to_datetime(cust["signup_at"], utc=True)
    if k == 0 or definition.stages[k].free_order:
        since = signup
    else:
        since = pd.to_datetime(ms.loc[ms["stage_order"] == k - 1].set_index("customer_id")["entered_at"], utc=True)
    since = since.reindex(cust.index)
    here = here.reindex(cust.index)
    ended = pd.to_datetime(cust["ended_at"], utc=True)
    waiting = since.notna()
    reached = here.notna()
    gone = cust["churned_at"].notna() | (ended.notna() & since.notna() & (since <= ended))
    drop_days = definition.conventions.drop_after_days
    if drop_days is not None:
        waited = (pd.Timestamp(scope.as_of) - since).dt.total_seconds() / 86400.0
        gone = gone | (since.notna() & (waited > float(drop_days)))
    masks = {
        "eligible": waiting,
        "reached": reached,
        "dropped": waiting & ~reached & gone,
        "censored": waiting & ~reached & ~gone,
    }
    chosen = masks[status]
    if by is not None and group not in ("", ALL, None):
        chosen = chosen & (cust[by].astype(str) == str(group)).to_numpy()
    ids = cust.index[chosen.to_numpy()]
    details = _customer_details(store, scope, definition, cache)
    out = details[details["customer_id"].isin(ids)].copy()
    out["stage"] = stage
    out["status"] = status
    out["waiting_since"] = out["customer_id"].map(since)
    out["entered_at"] = out["customer_id"].map(here)
    return out.sort_values(["name", "customer_id"], kind="mergesort").reset_index(drop=True)


def friction_accounts_data(
    store: Store,
    *,
    definition: JourneyDefinition,
    stage: str,
    group: str = ALL,
    as_of: Any = None,
    segment: str | None = None,
    plan: str | None = None,
    signup_from: Any = None,
    signup_to: Any = None,
    sample_n: int = 0,
    scope: Scope | None = None,
    cache: ResultCache | None = None,
) -> pd.DataFrame:
    """Return the customers behind a friction row: the group's customers who entered the stage.

    The row's ``customers`` count of :func:`journeylib.journey.friction.friction_data`
    is the length of this list for the same stage, group and scope.

    Parameters
    ----------
    store : Store
        The canonical store.
    definition : JourneyDefinition
        Stages and conventions.
    stage : str
        The row's ``stage``.
    group : str, default "all"
        The row's ``group``: a segment, or ``"all"``.
    as_of, segment, plan, signup_from, signup_to, sample_n, scope, cache
        As in :func:`funnel_accounts_data`.

    Returns
    -------
    pandas.DataFrame
        One row per customer, those still stuck in the stage first, then by
        days in the stage (longest first): the :data:`ACCOUNT_COLUMNS`, then
        ``stage``, ``entered_at`` (UTC), ``exited_at`` (UTC, NaT while in the
        stage), ``days_in_stage`` (to exit, or to as_of), ``stage_status``
        (``progressed``, ``churned``, ``dropped``, ``completed`` or
        ``in_progress``: censored at as_of, as in
        :func:`journeylib.journey.stages.stage_intervals_data`).

    Raises
    ------
    ValueError
        If *stage* is not a stage of the definition.
    EmptyResultError
        If no customer is in scope.
    """
    if stage not in definition.stage_names:
        msg = f"friction_accounts_data: stage must be one of {list(definition.stage_names)}; got {stage!r}"
        raise ValueError(msg)
    scope = _scope(store, scope, definition, "friction_accounts_data", {
        "as_of": as_of, "segment": segment, "plan": plan, "signup_from": signup_from, "signup_to": signup_to,
        "sample_n": sample_n,
    })
    ms = stage_milestones(store, definition, scope, cache=cache)
    for col in ("entered_at", "churned_at", "ended_at"):
        ms[col] = pd.to_datetime(ms[col], utc=True)
    iv = add_stage_exits(ms, definition, scope.as_of)
    rows = iv[iv["stage"].astype(str) == stage]
    if group not in ("", ALL, None):
        rows = rows[rows["segment"].astype(str) == str(group)]
    details = _customer_details(store, scope, definition, cache)
    out = details.merge(
        rows[["customer_id", "entered_at", "exited_at", "days_in_stage", "status"]].rename(columns={"status": "stage_status"}),
        on="customer_id",
        how="inner",
    )
    out.insert(len(ACCOUNT_COLUMNS), "stage", stage)
    order = (out["stage_status"] != "in_progress").astype(int)
    out = out.assign(_order=order).sort_values(["_order", "days_in_stage", "customer_id"], ascending=[True, False, True], kind="mergesort")
    return out.drop(columns="_order").reset_index(drop=True)


def _threshold(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        msg = f"driver_accounts_data: the driver's threshold {value!r} is not a number"
        raise ValueError(msg) from None


def driver_accounts_data(
    store: Store,
    *,
    definition: JourneyDefinition,
    driver: Mapping[str, Any],
    side: str = "both",
    outcome: str = "churn",
    window_days: int | str | None = "auto",
    windows: Sequence[int] | None = None,
    population: str = "auto",
    property_keys: Sequence[str] | str = (),
    ticket_scores: pd.DataFrame | None = None,
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
    """Return the customers on each side of a driver's split, with their outcome.

    *driver* is one row of :func:`journeylib.customers.drivers.drivers_data`
    (a ``Series`` or mapping with its ``feature``, ``kind``, ``threshold``,
    ``orientation``, ``horizon_days``, ``timing``, ``n_exposed`` and
    ``n_reference``). The analysed population is rebuilt with
    :func:`journeylib.customers.outcomes.outcome_population_data` and the
    feature table with :func:`journeylib.customers.features.build_features`
    from the same arguments that ``drivers_data`` was given, and the split
    applied (flipped when the row's ``orientation`` is ``complement``).

    Parameters
    ----------
    store : Store
        The canonical store.
    definition : JourneyDefinition
        Source of the outcome and the stages.
    driver : mapping or pandas.Series
        The drivers-table row.
    side : {"both", "exposed", "reference"}, default "both"
        Which group to list.
    outcome, window_days, windows, population, property_keys, ticket_scores
        The arguments ``drivers_data`` was called with (``window_days``
        ``"auto"``, 0 or None chooses it as ``drivers_data`` does).
    as_of, segment, plan, signup_from, signup_to, sample_n, random_state, scope, cache
        Which customers, as of when (as given to ``drivers_data``).

    Returns
    -------
    pandas.DataFrame
        One row per listed customer, the exposed group first, each by name:
        the :data:`ACCOUNT_COLUMNS`, then ``side`` (``exposed`` or
        ``reference``), ``group`` (the row's ``exposure`` or ``reference`` in
        words), ``feature_value`` (the customer's value of the split's
        feature), ``outcome`` (True when the outcome happened within the
        horizon), ``outcome_at`` (UTC, NaT if none by as_of).

    Raises
    ------
    ValueError
        If *side* is unknown, the row is not an estimated split of a
        since-signup analysis, its kind is not one this function can rebuild,
        or the rebuilt group sizes differ from the row's ``n_exposed`` /
        ``n_reference`` (the list would not be the customers the count
        describes; the message gives both).
    EmptyResultError
        If no customer is in scope or left after the exclusions.
    """
    if side not in DRIVER_SIDES:
        msg = f"driver_accounts_data: side must be one of {', '.join(DRIVER_SIDES)}; got {side!r}"
        raise ValueError(msg)
    row = dict(driver)
    kind = str(row.get("kind", ""))
    if str(row.get("timing", "since_signup")) != "since_signup":
        msg = (f"driver_accounts_data: the driver {row.get('candidate')!r} comes from a {row.get('timing')} analysis; "
               "only since-signup splits (timing 'since_signup') can be listed")
        raise ValueError(msg)
    if kind not in (*_THRESHOLD_KINDS, *_LEVEL_KINDS):
        msg = (f"driver_accounts_data: cannot list the customers of a driver of kind {kind!r} "
               f"(candidate {row.get('candidate')!r}); allowed kinds: {', '.join((*_THRESHOLD_KINDS, *_LEVEL_KINDS))}")
        raise ValueError(msg)
    n_exposed, n_reference = row.get("n_exposed"), row.get("n_reference")
    if n_exposed is None or n_reference is None or any(isinstance(v, float) and math.isnan(v) for v in (n_exposed, n_reference)):
        msg = f"driver_accounts_data: the driver {row.get('candidate')!r} has no group sizes (not estimated: {row.get('status', 'unknown')})"
        raise ValueError(msg)
    scope = Scope.resolve(store, scope, function="driver_accounts_data", as_of=as_of, segment=segment, plan=plan,
                          signup_from=signup_from, signup_to=signup_to, sample_n=sample_n, random_state=random_state)
    wd_arg: int | str = "auto" if window_days in (0, None, "auto") else int(window_days)
    horizon = float(row["horizon_days"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StatisticalWarning)  # drivers_data has reported the exclusions
        pop = outcome_population_data(store, definition=definition, outcome=outcome, window_days=wd_arg,
                                      horizon_days=horizon, population=population, scope=scope)
        included = pop[pop["status"] == "included"]
        if included.empty:
            msg = f"driver_accounts_data: no customer is left for the {outcome} analysis in {scope.describe()}"
            raise EmptyResultError(msg)
        wd = int(pop["window_days"].iloc[0])
        feats = build_features(store, definition=definition, window_days=wd, windows=window_grid(wd, windows), scope=scope,
                               cache=cache, property_keys=split_keys(property_keys), ticket_scores=ticket_scores)
    feature = str(row["feature"])
    data = included[["customer_id", "outcome", "outcome_at"]].merge(feats.data, on="customer_id", how="left")
    if feature not in data.columns:
        attrs = store.query(f"SELECT * FROM ({scope.customers_sql()}) c")
        if feature not in attrs.columns:
            msg = (f"driver_accounts_data: the driver's feature {feature!r} is neither a feature-table column nor a "
                   "customers column; pass the property_keys and windows drivers_data was given")
            raise ValueError(msg)
        data = data.merge(attrs[["customer_id", feature]], on="customer_id", how="left")
    values = data[feature]
    if kind in _THRESHOLD_KINDS:
        v = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
        split = np.where(np.isfinite(v), (v >= _threshold(row.get("threshold"))).astype(float), np.nan)
    else:
        text = values.astype(object).where(values.notna(), None).map(lambda x: None if x is None else str(x).lower() if isinstance(x, bool) else str(x))
        level = str(row.get("threshold"))
        if kind == "property_value":
            split = np.where(text.isna(), np.nan, (text == level).astype(float))
        else:
            counts = text.value_counts()
            reference = min(counts.index, key=lambda lv: (-int(counts[lv]), lv))
            split = np.where(text == level, 1.0, np.where(text == reference, 0.0, np.nan))
    if str(row.get("orientation", "as_defined")) == "complement":
        split = np.where(np.isnan(split), np.nan, 1.0 - split)
    data["side"] = np.select([split == 1.0, split == 0.0], ["exposed", "reference"], default="")
    got = (int((data["side"] == "exposed").sum()), int((data["side"] == "reference").sum()))
    if got != (int(n_exposed), int(n_reference)):
        msg = (f"driver_accounts_data: rebuilt {got[0]:,} vs {got[1]:,} customers for {row.get('candidate')!r}, but the "
               f"drivers table counts {int(n_exposed):,} vs {int(n_reference):,}; pass the same outcome, window_days, "
               "windows, population, property_keys, ticket_scores and scope as drivers_data was given")
        raise ValueError(msg)
    data = data[data["side"] != ""]
    if side != "both":
        data = data[data["side"] == side]
    details = _customer_details(store, scope, definition, cache)
    out = details.merge(data[["customer_id", "side", feature, "outcome", "outcome_at"]], on="customer_id", how="inner")
    out = out.rename(columns={feature: "feature_value"})
    out.insert(len(ACCOUNT_COLUMNS) + 1, "group", np.where(out["side"] == "exposed", str(row.get("exposure", "")), str(row.get("reference", ""))))
    out["outcome"] = out["outcome"] == 1.0
    out["outcome_at"] = pd.to_datetime(out["outcome_at"], utc=True)
    out = out.assign(_order=(out["side"] != "exposed").astype(int))
    out = out.sort_values(["_order", "name", "customer_id"], kind="mergesort").drop(columns="_order")
    return out.reset_index(drop=True)


def accounts_csv(accounts: pd.DataFrame) -> str:
    """Return an account list as CSV text (UTF-8, comma-separated, one header row, ISO 8601 times).

    Parameters
    ----------
    accounts : pandas.DataFrame
        What a ``*_accounts_data`` function returned.

    Returns
    -------
    str
        The CSV text, without the index.

    Raises
    ------
    EmptyResultError
        If *accounts* has no columns (not an account list).
    """
    if accounts.shape[1] == 0:
        msg = "accounts_csv: the frame has no columns; pass what a *_accounts_data function returned"
        raise EmptyResultError(msg)
    out = accounts.copy()
    for col in out.columns:
        if isinstance(out[col].dtype, pd.DatetimeTZDtype):
            out[col] = out[col].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    return out.to_csv(index=False)
