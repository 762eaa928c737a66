"""Actual journeys: transitions, path variants, conformance, flow and sessions.

Stages say where a customer *should* go; this module shows where customers
actually went. Everything event-level runs in the engine (SQL with window
functions), and everything after that is customer-level pandas.

Conventions (also in ``docs/journey-definition.md``):

* A customer's **milestone path** is the list of stages whose rule held
  (``met_at`` of :func:`journeylib.journey.stages.milestones_data`), ordered by
  ``met_at`` and, on ties, by stage order. Because ``met_at`` ignores the
  stage order, skipped and reordered milestones stay visible here, whereas
  ``entered_at`` (stages entered in order) never skips.
* Every path ends in an **end node**: ``churned`` (churned by ``as_of``),
  ``dropped`` (no progress to the next stage within the definition's
  ``conventions.drop_after_days``; only when that is set) or ``still
  active`` (everyone else: progressing, censored at ``as_of``, or done).
  These are the stage statuses of :func:`journeylib.journey.stages.stage_intervals_data`,
  so the end nodes agree with the funnel's ``dropped``/``censored`` counts.
* **Loops** are of two kinds. A *repeated attempt* is an event repeated with
  identical properties by a customer, for events most customers do exactly
  once (``attempt_events`` overrides the choice), e.g. the same
  ``setup_step_completed`` step twice. A *return after a gap* is an activity
  event that follows ``gap_days`` or more without activity (events of e-mail
  and CRM sources — canonical ``email``/``crm``, or SendGrid, Mailchimp,
  Salesforce, HubSpot — are the company's, not the customer's, and neither
  break nor end a gap). A loop belongs to the stage the customer was
  in at that moment (by ``entered_at``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from journeylib.cache import ResultCache
from journeylib.config.journey import AllOf, AnyOf, Condition, JourneyDefinition, Outcome
from journeylib.exceptions import EmptyResultError
from journeylib.journey.stages import stage_frames
from journeylib.scope import Scope
from journeylib.stats import wilson_interval
from journeylib.store import Store
from journeylib.store.categories import sources_of
from journeylib.store.dialect import sql_days_between, sql_quote

__all__ = [
    "CHURNED",
    "DROPPED",
    "END_NODES",
    "OTHER",
    "START",
    "STILL_ACTIVE",
    "conformance_data",
    "customer_paths_data",
    "event_transitions_data",
    "flow_data",
    "loop_events_data",
    "rule_text",
    "scope_choices_data",
    "sessions_data",
    "stage_map_data",
    "stage_transitions_data",
    "variants_data",
]

#: Start node of transition matrices and flows.
START = "start"
#: End node: churned by as_of.
CHURNED = "churned"
#: End node: no progress within ``conventions.drop_after_days`` (stage level) or no activity for that long (event level).
DROPPED = "dropped"
#: End node: everyone else (progressing, censored at as_of, or done).
STILL_ACTIVE = "still active"
#: End nodes in display order.
END_NODES: tuple[str, ...] = (STILL_ACTIVE, DROPPED, CHURNED)
#: Event-level node that lumps every event outside the top N.
OTHER = "other"
#: Source categories (:mod:`journeylib.store.categories`) whose events the company sends, not the customer does
#: (they do not break inactivity gaps): the canonical ``email`` and ``crm`` sources and every
#: SendGrid, Mailchimp, Salesforce or HubSpot source.
COMPANY_SOURCES: tuple[str, ...] = ("email", "crm")
#: Separator of stage names in a path string.
ARROW = " → "

_STATUS_END = {"churned": CHURNED, "dropped": DROPPED, "in_progress": STILL_ACTIVE, "completed": STILL_ACTIVE, "progressed": STILL_ACTIVE}


# -- definitions --------------------------------------------------------------------------------
def rule_text(rule: Any) -> str:
    """Return a short plain-English rendering of a stage rule.

    Parameters
    ----------
    rule : "signup", Condition, AllOf or AnyOf
        A stage's rule.

    Returns
    -------
    str
        E.g. ``"setup_completed within 30 d"``, ``"all of (…; …)"``.

    Examples
    --------
    >>> rule_text(Condition(event="login", min_count=5, within_days=14))
    '≥ 5 login within 14 d of signup'
    """
    if rule == "signup":
        return "signup"
    if isinstance(rule, Condition):
        text = ("≥ " + str(rule.min_count) + " " if rule.min_count > 1 else "") + " or ".join(rule.names)
        if rule.where:
            text += " (" + ", ".join(f"{k}={v}" for k, v in rule.where.items()) + ")"
        if rule.within_days is not None:
            text += f" within {rule.within_days:g} d of {'signup' if rule.of == 'signup' else 'previous stage'}"
        elif rule.of == "previous_stage":
            text += " after previous stage"
        return text
    if isinstance(rule, AllOf):
        return "all of (" + "; ".join(rule_text(m) for m in rule.all) + ")"
    if isinstance(rule, AnyOf):
        return "any of (" + "; ".join(rule_text(m) for m in rule.any) + ")"
    return str(rule)


def stage_map_data(definition: JourneyDefinition) -> pd.DataFrame:
    """Return the journey definition as a table: one row per stage, in order.

    Parameters
    ----------
    definition : JourneyDefinition
        The journey definition.

    Returns
    -------
    pandas.DataFrame
        ``stage_order`` (0-based), ``stage``, ``description``, ``rule``
        (plain English, see :func:`rule_text`), ``events`` (event names the
        rule refers to, comma-separated), ``on_happy_path`` (bool),
        ``happy_path_position`` (1-based; 0 if not on it).

    Examples
    --------
    >>> stage_map_data(JourneyDefinition.load("parameters/journeys/saas.yaml"))["stage"].tolist()[:2]
    ['Trial Started', 'Onboarding Completed']
    """
    path = definition.path
    return pd.DataFrame(
        {
            "stage_order": range(len(definition.stages)),
            "stage": definition.stage_names,
            "description": [s.description for s in definition.stages],
            "rule": [rule_text(s.rule) for s in definition.stages],
            "events": [", ".join(sorted(s.events())) for s in definition.stages],
            "on_happy_path": [s.name in path for s in definition.stages],
            "happy_path_position": [path.index(s.name) + 1 if s.name in path else 0 for s in definition.stages],
        }
    )


# -- shared building blocks ------------------------------------------------------------------------
def _customer_frame(ms: pd.DataFrame, iv: pd.DataFrame, definition: JourneyDefinition, as_of: pd.Timestamp) -> pd.DataFrame:
    """One row per customer: attributes, furthest stage, status and end node."""
    cust = ms.drop_duplicates("customer_id").set_index("customer_id")[["segment", "plan", "signup_at", "converted_at", "churned_at"]]
    last = iv.sort_values(["customer_id", "stage_order"]).groupby("customer_id").tail(1).set_index("customer_id")
    out = cust.copy()
    out["current_stage"] = last["stage"].astype(str).reindex(out.index)
    out["current_stage_order"] = last["stage_order"].reindex(out.index)
    status = last["status"].reindex(out.index)
    # customers who entered no stage at all (the first stage's rule never held)
    none = status.isna()
    if none.any():
        drop_days = definition.conventions.drop_after_days
        days = (as_of - out.loc[none, "signup_at"]).dt.total_seconds() / 86400.0
        fallback = np.where(out.loc[none, "churned_at"].notna(), "churned", "in_progress")
        if drop_days is not None:
            fallback = np.where((fallback == "in_progress") & (days > drop_days), "dropped", fallback)
        status.loc[none] = fallback
    out["status"] = status.astype(str)
    out["end_node"] = out["status"].map(_STATUS_END).fillna(STILL_ACTIVE)
    return out


def _met_long(ms: pd.DataFrame) -> pd.DataFrame:
    """Milestones met, in path order per customer, with the position in the path."""
    met = ms.loc[ms["met_at"].notna(), ["customer_id", "stage", "stage_order", "met_at"]].copy()
    met["stage"] = met["stage"].astype(str)
    met = met.sort_values(["customer_id", "met_at", "stage_order"], kind="mergesort")
    met["position"] = met.groupby("customer_id").cumcount()
    return met.reset_index(drop=True)


def _outcome_times(store: Store, scope: Scope, outcome: Outcome | None, fallback_field: str, cust: pd.DataFrame) -> pd.Series:
    """Time of an outcome per customer (NaT if it has not happened by as_of)."""
    if outcome is None or outcome.customer_field is not None:
        field = fallback_field if outcome is None or outcome.customer_field is None else outcome.customer_field
        if field in cust.columns:
            return cust[field]
        got = store.query(f"SELECT customer_id, {field} AS t FROM ({scope.customers_sql()}) c").set_index("customer_id")["t"]
        got = got.where(got <= scope.as_of)
        return got.reindex(cust.index)
    got = store.query(
        f"SELECT customer_id, min(timestamp) AS t FROM ({scope.events_sql()}) e WHERE event = {sql_quote(outcome.event)} GROUP BY customer_id"
    ).set_index("customer_id")["t"]
    return got.reindex(cust.index)


def _rate_columns(frame: pd.DataFrame, count: str, total: str, prefix: str, alpha: float) -> pd.DataFrame:
    n = frame[total].to_numpy(dtype=float)
    k = frame[count].to_numpy(dtype=float)
    frame[f"{prefix}_rate"] = np.where(n > 0, k / np.where(n > 0, n, 1), np.nan)
    frame[f"{prefix}_ci_low"], frame[f"{prefix}_ci_high"] = wilson_interval(k, n, alpha=alpha)
    return frame


def _segment_label(scope: Scope) -> str:
    return scope.segment if scope.segment is not None else "all"


# -- loops ----------------------------------------------------------------------------------------
def _loop_events_sql(store: Store, scope: Scope, attempt_events: Sequence[str] | None, gap_days: float, attempt_once_share: float) -> str:
    """Return SQL of loop events: repeated attempts and returns after a gap (customer_id, timestamp, kind, event)."""
    company = ", ".join(sql_quote(s) for s in sources_of(store, COMPANY_SOURCES))
    if attempt_events is not None:
        names = ", ".join(sql_quote(n) for n in attempt_events) or "NULL"
        attempt_types = f"SELECT DISTINCT event, p FROM per_customer WHERE event IN ({names})"
    else:
        attempt_types = (
            "SELECT event, p FROM per_customer GROUP BY event, p "
            f"HAVING avg(CASE WHEN n = 1 THEN 1.0 ELSE 0.0 END) >= {float(attempt_once_share)} AND count(*) >= 5"
        )
    return f"""
        WITH ev AS (
            SELECT customer_id, timestamp, event, event_id, coalesce(source, '') AS source,
                   coalesce(CAST(properties AS VARCHAR), '') AS p
            FROM ({scope.events_sql()})
        ),
        per_customer AS (SELECT customer_id, event, p, count(*) AS n FROM ev GROUP BY customer_id, event, p),
        attempt_types AS ({attempt_types}),
        numbered AS (
            SELECT ev.customer_id, ev.timestamp, ev.event,
                   row_number() OVER (PARTITION BY ev.customer_id, ev.event, ev.p ORDER BY ev.timestamp, ev.event_id) AS rn
            FROM ev SEMI JOIN attempt_types a ON ev.event = a.event AND ev.p = a.p
        ),
        activity AS (
            SELECT customer_id, timestamp, event,
                   lag(timestamp) OVER (PARTITION BY customer_id ORDER BY timestamp, source, event, event_id) AS prev_ts
            FROM ev WHERE source NOT IN ({company})
        )
        SELECT customer_id, timestamp, 'repeated attempt' AS kind, event FROM numbered WHERE rn >= 2
        UNION ALL
        SELECT customer_id, timestamp, 'return after gap' AS kind, event FROM activity
        WHERE prev_ts IS NOT NULL AND {sql_days_between("prev_ts", "timestamp")} >= {float(gap_days)}
    """


def loops_by_stage(store: Store, scope: Scope, iv: pd.DataFrame, attempt_events: Sequence[str] | None, gap_days: float, attempt_once_share: float) -> pd.DataFrame:
    """Count loop events (see :func:`loop_events_data`) per customer, stage interval and kind.

    Parameters
    ----------
    store : Store
        The canonical store.
    scope : Scope
        Customers and censoring date.
    iv : pandas.DataFrame
        Stage intervals (``customer_id``, ``stage_order``, ``entered_at``,
        ``exited_at``; NaT exit = still in the stage at as_of).
    attempt_events, gap_days, attempt_once_share
        As in :func:`loop_events_data`.

    Returns
    -------
    pandas.DataFrame
        ``customer_id``, ``stage_order``, ``kind`` (``repeated attempt`` or
        ``return after gap``), ``loops`` (events of that kind while in the
        stage).
    """
    intervals = iv[["customer_id", "stage_order", "entered_at", "exited_at"]].copy()
    intervals["exited_at"] = intervals["exited_at"].fillna(scope.as_of + pd.Timedelta(seconds=1))
    sql = f"""
        SELECT i.customer_id, i.stage_order, l.kind, count(*) AS loops
        FROM ({_loop_events_sql(store, scope, attempt_events, gap_days, attempt_once_share)}) l
        JOIN _jl_intervals i ON l.customer_id = i.customer_id AND l.timestamp >= i.entered_at AND l.timestamp < i.exited_at
        GROUP BY ALL"""
    return store.query(sql, _jl_intervals=intervals)


def loop_events_data(
    store: Store,
    *,
    as_of: Any = None,
    segment: str | None = None,
    plan: str | None = None,
    signup_from: Any = None,
    signup_to: Any = None,
    sample_n: int = 0,
    scope: Scope | None = None,
    attempt_events: Sequence[str] | None = None,
    gap_days: float = 14.0,
    attempt_once_share: float = 0.8,
) -> pd.DataFrame:
    """Return every loop event: repeated attempts and returns after a gap.

    Parameters
    ----------
    store : Store
        The canonical store.
    as_of, segment, plan, signup_from, signup_to, sample_n, scope
        Scope, as in :func:`journeylib.journey.stages.milestones_data`.
    attempt_events : list of str, optional
        Events whose repetition (same properties) is a repeated attempt.
        Default: every event type (name + properties) that at least
        ``attempt_once_share`` of the customers doing it do exactly once
        (and at least 5 customers do).
    gap_days : float, default 14
        Inactivity (days without events from sources other than ``email``
        and ``crm``) after which the next activity is a return.
    attempt_once_share : float, default 0.8
        See ``attempt_events``.

    Returns
    -------
    pandas.DataFrame
        One row per loop event: ``customer_id``; ``timestamp`` (UTC);
        ``kind`` (``repeated attempt`` or ``return after gap``); ``event``
        (the repeated event, or the first event after the gap). Sorted by
        customer and time.
    """
    scope = Scope.resolve(store, scope, function="loop_events_data", as_of=as_of, segment=segment, plan=plan,
                          signup_from=signup_from, signup_to=signup_to, sample_n=sample_n)
    sql = f"SELECT * FROM ({_loop_events_sql(store, scope, attempt_events, gap_days, attempt_once_share)}) ORDER BY customer_id, timestamp, kind, event"
    return store.query(sql)


# -- customer paths -------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Paths:
    """Intermediate results shared by paths, variants and conformance."""

    customers: pd.DataFrame  # one row per customer, indexed by customer_id
    met: pd.DataFrame  # milestones met, long, in path order
    loops: pd.DataFrame  # loop events per customer × stage × kind
    skipped: pd.DataFrame  # customer × happy-path stage flags
    reordered: pd.DataFrame  # customer × happy-path stage flags
    met_wide: pd.DataFrame  # customer × happy-path stage: met_at


def _paths(
    store: Store,
    definition: JourneyDefinition,
    scope: Scope,
    *,
    loops: bool,
    attempt_events: Sequence[str] | None = None,
    gap_days: float = 14.0,
    attempt_once_share: float = 0.8,
    cache: ResultCache | None = None,
) -> _Paths:
    """Compute the customer table with paths and deviations, the long met table, and loops by stage."""
    ms, iv = stage_frames(store, definition, scope, cache=cache)
    cust = _customer_frame(ms, iv, definition, scope.as_of)
    met = _met_long(ms)
    path = met.groupby("customer_id")["stage"].agg(ARROW.join)
    cust["path"] = path.reindex(cust.index).fillna("")
    cust["n_milestones"] = met.groupby("customer_id").size().reindex(cust.index).fillna(0).astype(int)
    cust["first_met_at"] = met.groupby("customer_id")["met_at"].min().reindex(cust.index)
    cust["last_met_at"] = met.groupby("customer_id")["met_at"].max().reindex(cust.index)
    cust["last_milestone"] = met.groupby("customer_id")["stage"].last().reindex(cust.index).fillna("")

    # deviations from the happy path, on the wide customer × stage table of met_at
    happy = definition.path
    wide = ms.assign(stage=ms["stage"].astype(str)).set_index(["customer_id", "stage"])["met_at"].unstack()
    wide = wide.reindex(index=cust.index, columns=happy)
    for stage_name in happy:  # a stage nobody met comes back as float NaN
        wide[stage_name] = pd.to_datetime(wide[stage_name], utc=True)
    skipped = pd.DataFrame(False, index=cust.index, columns=happy)
    reordered = pd.DataFrame(False, index=cust.index, columns=happy)
    later_met = pd.Series(False, index=cust.index)
    earliest_later = pd.Series(pd.NaT, index=cust.index, dtype="datetime64[us, UTC]")
    for name in reversed(happy):  # a loop over (at most a dozen) stages, not events
        col = wide[name]
        skipped[name] = col.isna() & later_met
        reordered[name] = col.notna() & earliest_later.notna() & (earliest_later < col)
        later_met = later_met | col.notna()
        earliest_later = earliest_later.where(earliest_later.notna() & (col.isna() | (earliest_later <= col)), col)
    stage_loops = pd.DataFrame(columns=["customer_id", "stage_order", "kind", "loops"])
    if loops:
        stage_loops = loops_by_stage(store, scope, iv, attempt_events, gap_days, attempt_once_share)
    n_loops = stage_loops.groupby("customer_id")["loops"].sum() if len(stage_loops) else pd.Series(dtype=float)
    names = definition.stage_names
    looped_stages = (
        stage_loops.assign(stage=[names[int(k)] for k in stage_loops["stage_order"]])
        .drop_duplicates(["customer_id", "stage_order"])
        .sort_values(["customer_id", "stage_order"])
        .groupby("customer_id")["stage"]
        .agg("; ".join)
        if len(stage_loops)
        else pd.Series(dtype=str)
    )

    def joined(flags: pd.DataFrame) -> pd.Series:
        # melt keeps the happy-path order of the columns within each customer
        frame = flags.rename_axis(index="customer_id", columns="stage").reset_index().melt(id_vars="customer_id", value_name="flag")
        frame = frame[frame["flag"].astype(bool)]
        if frame.empty:
            return pd.Series("", index=cust.index)
        return frame.groupby("customer_id", sort=False)["stage"].agg("; ".join).reindex(cust.index).fillna("")

    cust["skipped"] = joined(skipped)
    cust["reordered"] = joined(reordered)
    cust["n_loops"] = n_loops.reindex(cust.index).fillna(0).astype(int)
    cust["looped"] = looped_stages.reindex(cust.index).fillna("").astype(str)
    cust["follows_happy_path"] = (cust["skipped"] == "") & (cust["reordered"] == "") & (cust["n_loops"] == 0)
    return _Paths(customers=cust, met=met, loops=stage_loops, skipped=skipped, reordered=reordered, met_wide=wide)


def customer_paths_data(
    store: Store,
    *,
    definition: JourneyDefinition,
    as_of: Any = None,
    segment: str | None = None,
    plan: str | None = None,
    signup_from: Any = None,
    signup_to: Any = None,
    sample_n: int = 0,
    scope: Scope | None = None,
    cache: ResultCache | None = None,
    attempt_events: Sequence[str] | None = None,
    gap_days: float = 14.0,
) -> pd.DataFrame:
    """Return each customer's milestone path, end node and deviations from the happy path.

    Parameters
    ----------
    store : Store
        The canonical store.
    definition : JourneyDefinition
        Stages, happy path and conventions.
    as_of, segment, plan, signup_from, signup_to, sample_n, scope, cache
        Scope, as in :func:`journeylib.journey.stages.milestones_data`.
    attempt_events : list of str, optional
        Events that count as attempts (see :func:`loop_events_data`).
    gap_days : float, default 14
        Inactivity after which activity counts as a return (a loop).

    Returns
    -------
    pandas.DataFrame
        One row per customer in scope, sorted by ``customer_id``:
        ``customer_id``, ``segment``, ``plan``, ``signup_at``;
        ``path`` (stages whose milestone was met, in the order met, joined
        by " → "; empty if none); ``n_milestones``; ``first_met_at``,
        ``last_met_at``, ``last_milestone``; ``current_stage`` and
        ``current_stage_order`` (furthest stage entered in order; empty if
        none); ``status`` (of that stage: ``in_progress``, ``completed``,
        ``churned``, ``dropped``); ``end_node`` (``still active``,
        ``dropped``, ``churned``); ``skipped`` (happy-path stages not met
        although a later one was, "; "-joined); ``reordered`` (happy-path
        stages met after a later one); ``looped`` (stages in which the
        customer had loop events); ``n_loops``; ``follows_happy_path``
        (nothing skipped, reordered or looped: an unfinished path that so far
        follows the happy path counts); ``converted``, ``churned`` (bool, by
        as_of).

    Raises
    ------
    EmptyResultError
        If no customer is in scope.
    """
    scope = Scope.resolve(store, scope, function="customer_paths_data", as_of=as_of, segment=segment, plan=plan,
                          signup_from=signup_from, signup_to=signup_to, sample_n=sample_n)
    cust = _paths(store, definition, scope, loops=True, attempt_events=attempt_events, gap_days=gap_days, cache=cache).customers
    cust["converted"] = cust["converted_at"].notna()
    cust["churned"] = cust["churned_at"].notna()
    cols = [
        "segment", "plan", "signup_at", "path", "n_milestones", "first_met_at", "last_met_at", "last_milestone",
        "current_stage", "current_stage_order", "status", "end_node", "skipped", "reordered", "looped", "n_loops",
        "follows_happy_path", "converted", "churned",
    ]
    return cust[cols].reset_index().sort_values("customer_id").reset_index(drop=True)


# -- stage transitions ----------------------------------------------------------------------------
def stage_transitions_data(
    store: Store,
    *,
    definition: JourneyDefinition,
    as_of: Any = None,
    segment: str | None = None,
    plan: str | None = None,
    signup_from: Any = None,
    signup_to: Any = None,
    sample_n: int = 0,
    scope: Scope | None = None,
    cache: ResultCache | None = None,
    basis: Literal["met", "entered"] = "met",
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Return the stage-level transition matrix, with ``start`` and end nodes.

    Each customer's path (stages in the order their milestones were met, or,
    with ``basis="entered"``, the stages entered in order) becomes
    transitions ``start → first stage → … → last stage → end node``. The end
    node is ``churned``, ``dropped`` or ``still active`` (see the module
    docstring). Every customer leaves ``start`` once and reaches one end
    node once, so customers are conserved.

    Parameters
    ----------
    store : Store
        The canonical store.
    definition : JourneyDefinition
        Stages and conventions.
    as_of, segment, plan, signup_from, signup_to, sample_n, scope, cache
        Scope, as in :func:`journeylib.journey.stages.milestones_data`.
    basis : {"met", "entered"}, default "met"
        ``"met"``: milestones in the order they were met (skips and
        reorders visible); ``"entered"``: stages entered in order (a funnel).
    alpha : float, default 0.05
        1 - confidence level of the Wilson intervals.

    Returns
    -------
    pandas.DataFrame
        One row per observed (from, to) pair: ``from_node``, ``to_node``
        (stage names, ``start``, or an end node); ``from_order``,
        ``to_order`` (stage order; -1 for ``start``; end nodes after the last
        stage); ``kind`` (``start``, ``forward`` to the next stage, ``skip``
        ahead, ``backward``, or ``end``); ``customers`` (customers making it;
        each makes a pair at most once); ``from_total`` (customers leaving
        ``from_node``: the denominator); ``probability`` = customers /
        from_total (sums to 1 per ``from_node``); ``ci_low``, ``ci_high``
        (Wilson); ``median_days``, ``p25_days``, ``p75_days`` (between the
        two milestones; to churn for ``churned``; NaN for ``start`` and the
        other end nodes, whose time is censored); ``segment``.

    Raises
    ------
    ValueError
        If ``basis`` is not "met" or "entered".
    EmptyResultError
        If no customer is in scope.
    """
    if basis not in ("met", "entered"):
        msg = f"stage_transitions_data: basis must be 'met' or 'entered'; got {basis!r}"
        raise ValueError(msg)
    scope = Scope.resolve(store, scope, function="stage_transitions_data", as_of=as_of, segment=segment, plan=plan,
                          signup_from=signup_from, signup_to=signup_to, sample_n=sample_n)
    ms, iv = stage_frames(store, definition, scope, cache=cache)
    cust = _customer_frame(ms, iv, definition, scope.as_of)
    if basis == "met":
        steps = _met_long(ms).rename(columns={"met_at": "at"})
    else:
        steps = iv[["customer_id", "stage", "stage_order", "entered_at"]].rename(columns={"entered_at": "at"}).copy()
        steps["stage"] = steps["stage"].astype(str)
        steps = steps.sort_values(["customer_id", "stage_order"])
    n_stages = len(definition.stages)
    end_order = {name: n_stages + i for i, name in enumerate(END_NODES)}
    # start rows and end rows, as extra steps of each path
    start = pd.DataFrame({"customer_id": cust.index, "stage": START, "stage_order": -1})
    start["at"] = pd.Series(pd.NaT, index=start.index, dtype=steps["at"].dtype)
    churn_at = cust["churned_at"].where(cust["end_node"] == CHURNED)
    end = pd.DataFrame(
        {"customer_id": cust.index, "stage": cust["end_node"].to_numpy(), "stage_order": cust["end_node"].map(end_order).to_numpy(), "at": churn_at.to_numpy()}
    )
    seq = pd.concat([start, steps[["customer_id", "stage", "stage_order", "at"]], end], ignore_index=True)
    seq["at"] = pd.to_datetime(seq["at"], utc=True)
    seq["_rank"] = np.select([seq["stage"] == START, seq["stage_order"] >= n_stages], [0, 2], 1)
    seq = seq.sort_values(["customer_id", "_rank", "at", "stage_order"], kind="mergesort", na_position="first")
    seq["to_node"] = seq.groupby("customer_id")["stage"].shift(-1)
    seq["to_order"] = seq.groupby("customer_id")["stage_order"].shift(-1)
    seq["to_at"] = seq.groupby("customer_id")["at"].shift(-1)
    tr = seq[seq["to_node"].notna()].copy()
    tr["days"] = (tr["to_at"] - tr["at"]).dt.total_seconds() / 86400.0
    tr = tr.rename(columns={"stage": "from_node", "stage_order": "from_order"})
    grouped = tr.groupby(["from_node", "to_node", "from_order", "to_order"], sort=False)
    out = grouped.agg(
        customers=("customer_id", "nunique"),
        median_days=("days", "median"),
        p25_days=("days", lambda x: x.quantile(0.25)),
        p75_days=("days", lambda x: x.quantile(0.75)),
    ).reset_index()
    out["from_order"] = out["from_order"].astype(int)
    out["to_order"] = out["to_order"].astype(int)
    out["from_total"] = out.groupby("from_node")["customers"].transform("sum")
    out["probability"] = out["customers"] / out["from_total"]
    out["ci_low"], out["ci_high"] = wilson_interval(out["customers"], out["from_total"], alpha=alpha)
    out["kind"] = np.select(
        [out["from_node"] == START, out["to_order"] >= n_stages, out["to_order"] == out["from_order"] + 1, out["to_order"] > out["from_order"]],
        ["start", "end", "forward", "skip"],
        default="backward",
    )
    out["segment"] = _segment_label(scope)
    cols = ["from_node", "to_node", "from_order", "to_order", "kind", "customers", "from_total", "probability",
            "ci_low", "ci_high", "median_days", "p25_days", "p75_days", "segment"]
    return out[cols].sort_values(["from_order", "to_order"]).reset_index(drop=True)


# -- event transitions ----------------------------------------------------------------------------
def event_transitions_data(
    store: Store,
    *,
    definition: JourneyDefinition | None = None,
    as_of: Any = None,
    segment: str | None = None,
    plan: str | None = None,
    signup_from: Any = None,
    signup_to: Any = None,
    sample_n: int = 0,
    scope: Scope | None = None,
    top_n: int = 10,
    events: Sequence[str] | None = None,
    collapse_repeats: bool = False,
    inactive_days: float | None = None,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Return the event-level transition matrix, computed in the engine with ``lead``.

    Each customer's events, ordered by timestamp (ties by node name: events
    with the same timestamp and node are interchangeable, so the sequence
    does not depend on row order), become transitions ``start → e1 → e2 →
    … → end node``. Events outside the ``top_n`` most frequent become
    ``other``. The window runs in the engine (``lead``); only the per-pair
    statistics come back.

    Parameters
    ----------
    store : Store
        The canonical store.
    definition : JourneyDefinition, optional
        Supplies the default ``inactive_days`` (``conventions.drop_after_days``).
    as_of, segment, plan, signup_from, signup_to, sample_n, scope
        Scope, as in :func:`journeylib.journey.stages.milestones_data`.
    top_n : int, default 10
        Events kept as their own node (by number of events in scope).
    events : list of str, optional
        Keep only these events (the others are removed from the sequence,
        not lumped into ``other``).
    collapse_repeats : bool, default False
        Merge consecutive identical nodes (``login → login``) into one.
    inactive_days : float, optional
        A customer not churned whose last event is more than this many days
        before as_of ends in ``dropped``; default the definition's
        ``drop_after_days`` (None: no ``dropped`` node).
    alpha : float, default 0.05
        1 - confidence level of the Wilson intervals.

    Returns
    -------
    pandas.DataFrame
        One row per observed (from, to) pair: ``from_node``, ``to_node``
        (event names, ``other``, ``start``, ``still active``, ``dropped``,
        ``churned``); ``kind`` (``start``, ``event``, ``end``);
        ``transitions`` (number of times the pair occurs); ``customers``
        (distinct customers making it); ``from_total`` (transitions leaving
        ``from_node``: the denominator); ``probability`` = transitions /
        from_total (sums to 1 per ``from_node``); ``ci_low``, ``ci_high``
        (Wilson, treating transitions as independent); ``median_days``,
        ``p25_days``, ``p75_days`` (time between the two events; to churn
        for ``churned``; NaN otherwise); ``median_hours`` (= median_days ×
        24); ``segment``.

    Raises
    ------
    ValueError
        If ``top_n`` < 1.
    EmptyResultError
        If no customer is in scope.
    """
    if top_n < 1:
        msg = f"event_transitions_data: top_n must be at least 1; got {top_n}"
        raise ValueError(msg)
    scope = Scope.resolve(store, scope, function="event_transitions_data", as_of=as_of, segment=segment, plan=plan,
                          signup_from=signup_from, signup_to=signup_to, sample_n=sample_n)
    if inactive_days is None and definition is not None:
        inactive_days = definition.conventions.drop_after_days
    asof = f"TIMESTAMPTZ {sql_quote(scope.as_of.isoformat())}"
    keep = f"WHERE event IN ({', '.join(sql_quote(e) for e in events)})" if events else ""
    collapse = (
        "nodes2 AS (SELECT * EXCLUDE (prev) FROM (SELECT *, lag(node) OVER (PARTITION BY customer_id ORDER BY timestamp, node) AS prev FROM nodes) "
        "WHERE prev IS NULL OR prev <> node)"
        if collapse_repeats
        else "nodes2 AS (SELECT * FROM nodes)"
    )
    dropped = (
        f"WHEN s.last_ts IS NULL OR s.last_ts < {asof} - to_microseconds({round(inactive_days * 86_400_000_000)}) THEN {sql_quote(DROPPED)} "
        if inactive_days is not None
        else ""
    )
    days = sql_days_between("ts", "nxt_ts")
    # Memory matters at 10M events: the window sorts on (timestamp, node) only and carries the
    # node, not the event's other columns; the three quantiles share one aggregate state.
    sql = f"""
        WITH cust AS (SELECT customer_id, churned_at FROM ({scope.customers_sql()})),
        ev AS (SELECT customer_id, timestamp, event FROM ({scope.events_sql()}) {keep}),
        top AS (SELECT event FROM ev GROUP BY event ORDER BY count(*) DESC, event LIMIT {int(top_n)}),
        nodes AS (
            SELECT ev.customer_id, ev.timestamp,
                   CASE WHEN t.event IS NULL THEN {sql_quote(OTHER)} ELSE ev.event END AS node
            FROM ev LEFT JOIN top t ON ev.event = t.event
        ),
        {collapse},
        seq AS (
            SELECT customer_id, node, timestamp AS ts,
                   lead(node) OVER w AS nxt, lead(timestamp) OVER w AS nxt_ts, row_number() OVER w AS rn
            FROM nodes2 WINDOW w AS (PARTITION BY customer_id ORDER BY timestamp, node)
        ),
        stats AS (SELECT customer_id, max(ts) AS last_ts FROM seq GROUP BY customer_id),
        ends AS (
            SELECT c.customer_id, c.churned_at,
                   CASE WHEN c.churned_at IS NOT NULL THEN {sql_quote(CHURNED)} {dropped}ELSE {sql_quote(STILL_ACTIVE)} END AS end_node
            FROM cust c LEFT JOIN stats s ON s.customer_id = c.customer_id
        ),
        pairs AS (
            SELECT customer_id, {sql_quote(START)} AS from_node, node AS to_node, NULL::DOUBLE AS days FROM seq WHERE rn = 1
            UNION ALL
            SELECT customer_id, node, nxt, {days} FROM seq WHERE nxt IS NOT NULL
            UNION ALL
            SELECT s.customer_id, s.node, e.end_node,
                   CASE WHEN e.end_node = {sql_quote(CHURNED)} THEN {sql_days_between("s.ts", "e.churned_at")} END
            FROM seq s JOIN ends e ON e.customer_id = s.customer_id WHERE s.nxt IS NULL
            UNION ALL
            SELECT e.customer_id, {sql_quote(START)}, e.end_node, NULL FROM ends e ANTI JOIN stats s ON s.customer_id = e.customer_id
        )
        SELECT from_node, to_node, count(*) AS transitions, count(DISTINCT customer_id) AS customers,
               quantile_cont(days, [0.25, 0.5, 0.75]) AS q
        FROM pairs GROUP BY from_node, to_node
    """
    out = store.query(sql)
    if out.empty:
        msg = f"no customers in scope ({scope.describe()}); widen the filters."
        raise EmptyResultError(msg)
    q = [v if isinstance(v, (list, np.ndarray)) and len(v) == 3 else [np.nan] * 3 for v in out.pop("q")]
    out["p25_days"], out["median_days"], out["p75_days"] = (np.asarray([r[i] for r in q], dtype=float) for i in range(3))
    out["from_total"] = out.groupby("from_node")["transitions"].transform("sum")
    out["probability"] = out["transitions"] / out["from_total"]
    out["ci_low"], out["ci_high"] = wilson_interval(out["transitions"], out["from_total"], alpha=alpha)
    out["kind"] = np.select([out["from_node"] == START, out["to_node"].isin(END_NODES)], ["start", "end"], default="event")
    out["median_hours"] = out["median_days"] * 24.0
    out["segment"] = _segment_label(scope)
    # order: start first, then nodes by traffic, end nodes last
    traffic = out.groupby("from_node")["transitions"].sum()
    rank = {START: -1.0, **{k: float(-v) for k, v in traffic.items() if k != START}}
    out["_r"] = out["from_node"].map(rank)
    out["_t"] = out["to_node"].map(lambda n: (len(rank) + END_NODES.index(n)) if n in END_NODES else rank.get(n, 0.0))
    out = out.sort_values(["_r", "from_node", "_t", "to_node"]).drop(columns=["_r", "_t"])
    cols = ["from_node", "to_node", "kind", "transitions", "customers", "from_total", "probability", "ci_low", "ci_high",
            "median_days", "p25_days", "p75_days", "median_hours", "segment"]
    return out[cols].reset_index(drop=True)


# -- variants -------------------------------------------------------------------------------------
def variants_data(
    store: Store,
    *,
    definition: JourneyDefinition,
    as_of: Any = None,
    segment: str | None = None,
    plan: str | None = None,
    signup_from: Any = None,
    signup_to: Any = None,
    sample_n: int = 0,
    scope: Scope | None = None,
    cache: ResultCache | None = None,
    top_n: int = 10,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Return the most common milestone paths (variants), their shares and outcomes.

    Parameters
    ----------
    store : Store
        The canonical store.
    definition : JourneyDefinition
        Stages, outcomes (``churn`` and ``conversion``, default the customer
        fields ``churned_at`` and ``converted_at``) and happy path.
    as_of, segment, plan, signup_from, signup_to, sample_n, scope, cache
        Scope, as in :func:`journeylib.journey.stages.milestones_data`.
    top_n : int, default 10
        Variants listed on their own; the rest are one ``(other variants)`` row.
    alpha : float, default 0.05
        1 - confidence level of the Wilson intervals.

    Returns
    -------
    pandas.DataFrame
        One row per variant, most common first: ``rank``; ``variant`` (the
        path, stages joined by " → ", ``(no milestone)`` if none, or
        ``(other variants)``); ``variants`` (distinct paths in the row: 1, or
        how many were lumped); ``n_milestones``; ``customers``; ``share`` =
        customers / customers in scope (sums to 1); ``follows_happy_path``
        (the path is a prefix of the happy path, without skips or
        reorders); ``churned``, ``churn_rate`` = churned / customers (share
        churned by as_of: recent signups had less time to churn),
        ``churn_ci_low``, ``churn_ci_high``; ``converted``,
        ``conversion_rate`` = converted / customers, ``conversion_ci_low``,
        ``conversion_ci_high`` (Wilson); ``median_days_to_last`` (from the
        first to the last milestone of the path); ``segment``.

    Raises
    ------
    ValueError
        If ``top_n`` < 1.
    EmptyResultError
        If no customer is in scope.
    """
    if top_n < 1:
        msg = f"variants_data: top_n must be at least 1; got {top_n}"
        raise ValueError(msg)
    scope = Scope.resolve(store, scope, function="variants_data", as_of=as_of, segment=segment, plan=plan,
                          signup_from=signup_from, signup_to=signup_to, sample_n=sample_n)
    cust = _paths(store, definition, scope, loops=False, cache=cache).customers
    churn_t = _outcome_times(store, scope, definition.outcomes.get("churn"), "churned_at", cust)
    conv_t = _outcome_times(store, scope, definition.outcomes.get("conversion"), "converted_at", cust)
    happy = definition.path
    cust = cust.assign(
        variant=cust["path"].where(cust["path"] != "", "(no milestone)"),
        churned=churn_t.notna().to_numpy(),
        converted=conv_t.notna().to_numpy(),
        days=(cust["last_met_at"] - cust["first_met_at"]).dt.total_seconds() / 86400.0,
    )
    prefixes = {ARROW.join(happy[:i]) for i in range(1, len(happy) + 1)}
    agg = (
        cust.groupby("variant")
        .agg(customers=("variant", "size"), n_milestones=("n_milestones", "first"), churned=("churned", "sum"),
             converted=("converted", "sum"), median_days_to_last=("days", "median"))
        .reset_index()
        .sort_values(["customers", "variant"], ascending=[False, True], kind="mergesort")
        .reset_index(drop=True)
    )
    agg["variants"] = 1
    agg["follows_happy_path"] = agg["variant"].isin(prefixes)
    if len(agg) > top_n:
        rest = agg.iloc[top_n:]
        other_days = cust.loc[cust["variant"].isin(rest["variant"]), "days"].median()
        other = pd.DataFrame(
            [{"variant": "(other variants)", "customers": rest["customers"].sum(), "n_milestones": np.nan,
              "churned": rest["churned"].sum(), "converted": rest["converted"].sum(), "median_days_to_last": other_days,
              "variants": len(rest), "follows_happy_path": False}]
        )
        agg = pd.concat([agg.iloc[:top_n], other], ignore_index=True)
    total = len(cust)
    agg["share"] = agg["customers"] / total
    agg["total"] = total
    agg = _rate_columns(agg, "churned", "customers", "churn", alpha)
    agg = _rate_columns(agg, "converted", "customers", "conversion", alpha)
    agg["rank"] = np.arange(1, len(agg) + 1)
    agg["segment"] = _segment_label(scope)
    cols = ["rank", "variant", "variants", "n_milestones", "customers", "share", "follows_happy_path", "churned", "churn_rate",
            "churn_ci_low", "churn_ci_high", "converted", "conversion_rate", "conversion_ci_low", "conversion_ci_high",
            "median_days_to_last", "segment"]
    agg["churned"] = agg["churned"].astype(int)
    agg["converted"] = agg["converted"].astype(int)
    agg["customers"] = agg["customers"].astype(int)
    return agg[cols]


# -- conformance ----------------------------------------------------------------------------------
def conformance_data(
    store: Store,
    *,
    definition: JourneyDefinition,
    as_of: Any = None,
    segment: str | None = None,
    plan: str | None = None,
    signup_from: Any = None,
    signup_to: Any = None,
    sample_n: int = 0,
    scope: Scope | None = None,
    cache: ResultCache | None = None,
    attempt_events: Sequence[str] | None = None,
    gap_days: float = 14.0,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Return conformance to the happy path: who follows it, and where and how others deviate.

    Deviation kinds, per happy-path stage S:

    * ``skipped``: S's milestone was never met, although a later happy-path
      stage's was (eligible: customers who met a later happy-path stage);
    * ``reordered``: S was met after a later happy-path stage (eligible:
      customers who met S and a later happy-path stage);
    * ``looped``: loop events (repeated attempts, returns after a gap; see
      :func:`loop_events_data`) while in S (eligible: customers who entered S).

    Parameters
    ----------
    store : Store
        The canonical store.
    definition : JourneyDefinition
        Stages and happy path (default: all stages in order).
    as_of, segment, plan, signup_from, signup_to, sample_n, scope, cache
        Scope, as in :func:`journeylib.journey.stages.milestones_data`.
    attempt_events : list of str, optional
        Events that count as attempts (see :func:`loop_events_data`).
    gap_days : float, default 14
        Inactivity after which activity counts as a return.
    alpha : float, default 0.05
        1 - confidence level of the Wilson intervals.

    Returns
    -------
    pandas.DataFrame
        First a row ``stage="(whole path)"``, ``kind="followed"`` (customers
        who follow the happy path so far), then one row per happy-path stage
        × kind (``skipped``, ``reordered``, ``looped``): ``stage``,
        ``stage_order`` (-1 for the whole path); ``kind``; ``customers``
        (customers with that deviation there); ``eligible`` (customers for
        whom it was possible: the denominator of ``rate``); ``rate`` =
        customers / eligible, with Wilson ``ci_low``, ``ci_high``; ``share``
        = customers / customers in scope; ``detail`` (skipped: the stage most
        often met instead; reordered: the stage most often met before it;
        looped: repeated attempts and returns counted); ``segment``.

    Raises
    ------
    EmptyResultError
        If no customer is in scope.
    """
    scope = Scope.resolve(store, scope, function="conformance_data", as_of=as_of, segment=segment, plan=plan,
                          signup_from=signup_from, signup_to=signup_to, sample_n=sample_n)
    paths = _paths(store, definition, scope, loops=True, attempt_events=attempt_events, gap_days=gap_days, cache=cache)
    cust, met, loops, skipped, reordered = paths.customers, paths.met, paths.loops, paths.skipped, paths.reordered
    happy = definition.path
    order = {name: k for k, name in enumerate(definition.stage_names)}
    total = len(cust)
    met_stage = paths.met_wide
    entered = cust["current_stage_order"]
    rows: list[dict[str, Any]] = [
        {"stage": "(whole path)", "stage_order": -1, "kind": "followed", "customers": int(cust["follows_happy_path"].sum()),
         "eligible": total, "detail": f"happy path: {ARROW.join(happy)}"}
    ]
    for i, name in enumerate(happy):
        later = happy[i + 1 :]
        later_met = met_stage[later].notna().any(axis=1) if later else pd.Series(False, index=cust.index)
        sk = skipped[name]
        detail_skip = ""
        if sk.any() and later:
            nxt = met[met["customer_id"].isin(cust.index[sk]) & met["stage"].isin(later)]
            if len(nxt):
                first_after = nxt.sort_values(["customer_id", "position"]).groupby("customer_id")["stage"].first().value_counts()
                detail_skip = f"most often went on to {first_after.index[0]} ({int(first_after.iloc[0])})"
        rows.append({"stage": name, "stage_order": order[name], "kind": "skipped", "customers": int(sk.sum()),
                     "eligible": int(later_met.sum()), "detail": detail_skip})
        ro = reordered[name]
        detail_re = ""
        if ro.any() and later:
            before = met_stage.loc[ro, later].lt(met_stage.loc[ro, name], axis=0).sum().sort_values(ascending=False)
            detail_re = f"most often met after {before.index[0]} ({int(before.iloc[0])})"
        rows.append({"stage": name, "stage_order": order[name], "kind": "reordered", "customers": int(ro.sum()),
                     "eligible": int((met_stage[name].notna() & later_met).sum()), "detail": detail_re})
        here = loops[loops["stage_order"] == order[name]] if len(loops) else loops
        by_kind = here.groupby("kind")["loops"].sum() if len(here) else pd.Series(dtype=float)
        detail_loop = ", ".join(f"{int(v)} {k}{'s' if v != 1 else ''}" for k, v in by_kind.items())
        rows.append({"stage": name, "stage_order": order[name], "kind": "looped",
                     "customers": int(here["customer_id"].nunique()) if len(here) else 0,
                     "eligible": int((entered >= order[name]).sum()), "detail": detail_loop})
    out = pd.DataFrame(rows)
    out = _rate_columns(out, "customers", "eligible", "r", alpha).rename(columns={"r_rate": "rate", "r_ci_low": "ci_low", "r_ci_high": "ci_high"})
    out["share"] = out["customers"] / total
    out["segment"] = _segment_label(scope)
    cols = ["stage", "stage_order", "kind", "customers", "eligible", "rate", "ci_low", "ci_high", "share", "detail", "segment"]
    return out[cols]


# -- flow (Sankey) --------------------------------------------------------------------------------
def _smoothstep(t: np.ndarray) -> np.ndarray:
    return t * t * (3.0 - 2.0 * t)


def flow_data(
    store: Store,
    *,
    definition: JourneyDefinition,
    as_of: Any = None,
    segment: str | None = None,
    plan: str | None = None,
    signup_from: Any = None,
    signup_to: Any = None,
    sample_n: int = 0,
    scope: Scope | None = None,
    cache: ResultCache | None = None,
    n_steps: int = 5,
    from_stage: str | None = None,
    node_width: float = 0.18,
    padding: float = 0.05,
    n_points: int = 24,
) -> pd.DataFrame:
    """Return a Sankey-style flow of the first ``n_steps`` steps of the milestone paths, laid out.

    Step 0 is each customer's first milestone (or ``from_stage``), step *i*
    the *i*-th milestone met after it; a path that ends before the last step
    flows into its end node (``still active``, ``dropped``, ``churned``),
    where it stops. Node and link coordinates are computed here, so a chart
    only draws rectangles and bands.

    Layout: x is the step (a node spans ``[step, step + node_width]``); y is
    in customers from the top (0) down, nodes of a step stacked in stage
    order then end nodes, separated by ``padding`` × customers at step 0.
    A link is a band of constant thickness (its customers) from the right
    edge of its source node to the left edge of its target node, drawn as
    ``n_points`` points on a smooth-step curve; bands are stacked at both
    ends in the order of the node at the other end, so they do not cross
    inside a node.

    Parameters
    ----------
    store : Store
        The canonical store.
    definition : JourneyDefinition
        Stages and conventions.
    as_of, segment, plan, signup_from, signup_to, sample_n, scope, cache
        Scope, as in :func:`journeylib.journey.stages.milestones_data`.
    n_steps : int, default 5
        Steps shown (≥ 2).
    from_stage : str, optional
        Start the flow at this stage: only customers who met it, from it on.
    node_width : float, default 0.18
        Node width in steps.
    padding : float, default 0.05
        Gap between nodes, as a share of the customers at step 0.
    n_points : int, default 24
        Points per link band.

    Returns
    -------
    pandas.DataFrame
        Rows of two kinds, told apart by ``element``. ``node`` rows (one per
        step × node): ``step``; ``node``; ``node_kind`` (``stage`` or
        ``end``); ``node_order`` (the stage's order; end nodes after the last
        stage: a stable key for colours); ``customers`` (customers at that node and step);
        ``share`` = customers / customers at step 0; ``x``, ``x2`` (left
        and right edge), ``y``, ``y2`` (top and bottom edge); ``label``
        (``"<node> (<customers>)"``). ``link`` rows (``n_points`` per link):
        ``link_id``; ``step`` (of the source); ``node`` (source) and
        ``target``; ``node_order`` (of the target); ``customers`` (customers flowing; the same on every
        point), ``share``; ``point`` (0 … n_points-1); ``x``; ``y``,
        ``y2`` (band edges at x). Customers are conserved: a node's
        customers equal the sum of its incoming links (step > 0) and, unless
        it is an end node or on the last step, of its outgoing links. Also
        ``segment``.

    Raises
    ------
    ValueError
        If ``n_steps`` < 2 or ``from_stage`` is not a stage.
    EmptyResultError
        If no customer is in scope, or none met ``from_stage``.
    """
    if n_steps < 2:
        msg = f"flow_data: n_steps must be at least 2; got {n_steps}"
        raise ValueError(msg)
    if from_stage is not None and from_stage not in definition.stage_names:
        msg = f"flow_data: from_stage {from_stage!r} is not a stage; stages are {definition.stage_names}"
        raise ValueError(msg)
    scope = Scope.resolve(store, scope, function="flow_data", as_of=as_of, segment=segment, plan=plan,
                          signup_from=signup_from, signup_to=signup_to, sample_n=sample_n)
    ms, iv = stage_frames(store, definition, scope, cache=cache)
    cust = _customer_frame(ms, iv, definition, scope.as_of)
    met = _met_long(ms)
    if from_stage is not None:
        start_pos = met.loc[met["stage"] == from_stage].set_index("customer_id")["position"]
        met = met[met["customer_id"].isin(start_pos.index)].copy()
        met["position"] = met["position"] - met["customer_id"].map(start_pos)
        met = met[met["position"] >= 0]
        cust = cust.loc[cust.index.isin(start_pos.index)]
        if cust.empty:
            msg = f"flow_data: no customer in scope ({scope.describe()}) met {from_stage!r}."
            raise EmptyResultError(msg)
    n_stages = len(definition.stages)
    # one row per customer × step: milestones, then the end node right after the last one
    steps = met[["customer_id", "stage", "stage_order", "position"]].rename(columns={"stage": "node", "position": "step"})
    n_met = steps.groupby("customer_id").size().reindex(cust.index).fillna(0).astype(int)
    ends = pd.DataFrame({"customer_id": cust.index, "node": cust["end_node"].to_numpy(), "step": n_met.to_numpy()})
    ends["stage_order"] = ends["node"].map({n: n_stages + i for i, n in enumerate(END_NODES)})
    steps = pd.concat([steps, ends], ignore_index=True)
    steps = steps[steps["step"] < n_steps]
    steps["node_kind"] = np.where(steps["node"].isin(END_NODES) & (steps["stage_order"] >= n_stages), "end", "stage")
    nodes = steps.groupby(["step", "node", "stage_order", "node_kind"]).size().rename("customers").reset_index()
    nodes = nodes.sort_values(["step", "stage_order"]).reset_index(drop=True)
    base = int(nodes.loc[nodes["step"] == 0, "customers"].sum())
    gap = padding * base
    nodes["y"] = nodes.groupby("step")["customers"].cumsum() - nodes["customers"] + nodes.groupby("step").cumcount() * gap
    nodes["y2"] = nodes["y"] + nodes["customers"]
    nodes["x"] = nodes["step"].astype(float)
    nodes["x2"] = nodes["x"] + node_width
    # links: consecutive steps of a customer
    steps = steps.sort_values(["customer_id", "step"])
    steps["target"] = steps.groupby("customer_id")["node"].shift(-1)
    steps["target_order"] = steps.groupby("customer_id")["stage_order"].shift(-1)
    links = steps[steps["target"].notna()].groupby(["step", "node", "target", "target_order"]).size().rename("customers").reset_index()
    ys = nodes[["step", "node", "y"]]
    links = links.merge(ys.rename(columns={"y": "src_y"}), on=["step", "node"], how="left")
    links = links.merge(
        ys.assign(step=ys["step"] - 1).rename(columns={"node": "target", "y": "tgt_y"}), on=["step", "target"], how="left"
    )
    links = links.sort_values(["step", "node", "tgt_y"])
    links["sy0"] = links["src_y"] + links.groupby(["step", "node"])["customers"].cumsum() - links["customers"]
    links = links.sort_values(["step", "target", "src_y"])
    links["ty0"] = links["tgt_y"] + links.groupby(["step", "target"])["customers"].cumsum() - links["customers"]
    links = links.sort_values(["step", "src_y", "tgt_y"]).reset_index(drop=True)
    links["link_id"] = np.arange(len(links))
    t = np.linspace(0.0, 1.0, n_points)
    s = _smoothstep(t)
    rep = links.loc[links.index.repeat(n_points)].reset_index(drop=True)
    tt = np.tile(t, len(links))
    ss = np.tile(s, len(links))
    x0 = rep["step"].to_numpy(dtype=float) + node_width
    x1 = rep["step"].to_numpy(dtype=float) + 1.0
    rep["point"] = np.tile(np.arange(n_points), len(links))
    rep["x"] = x0 + tt * (x1 - x0)
    rep["y"] = rep["sy0"] + ss * (rep["ty0"] - rep["sy0"])
    rep["y2"] = rep["y"] + rep["customers"]
    rep["element"] = "link"
    rep["node_order"] = rep["target_order"]
    rep["node_kind"] = ""
    rep["x2"] = np.nan
    rep["label"] = ""
    nodes["element"] = "node"
    nodes["node_order"] = nodes["stage_order"]
    nodes["target"] = ""
    nodes["link_id"] = -1
    nodes["point"] = 0
    nodes["label"] = nodes["node"] + " (" + nodes["customers"].astype(str) + ")"
    cols = ["element", "step", "node", "node_kind", "node_order", "target", "link_id", "point", "customers", "share", "x", "x2", "y", "y2",
            "label", "segment"]
    out = pd.concat([nodes, rep], ignore_index=True)
    out["share"] = out["customers"] / base if base else np.nan
    out["segment"] = _segment_label(scope)
    out["customers"] = out["customers"].astype(int)
    out["step"] = out["step"].astype(int)
    out["link_id"] = out["link_id"].astype(int)
    out["point"] = out["point"].astype(int)
    out["node_order"] = out["node_order"].astype(int)
    return out[cols]


# -- sessions -------------------------------------------------------------------------------------
def sessions_data(
    store: Store,
    *,
    as_of: Any = None,
    segment: str | None = None,
    plan: str | None = None,
    signup_from: Any = None,
    signup_to: Any = None,
    sample_n: int = 0,
    scope: Scope | None = None,
    gap_minutes: float = 30.0,
    sources: Sequence[str] | None = None,
    level: Literal["customer", "session"] = "customer",
) -> pd.DataFrame:
    """Sessionise events in the engine: a new session starts after ``gap_minutes`` without events.

    Parameters
    ----------
    store : Store
        The canonical store.
    as_of, segment, plan, signup_from, signup_to, sample_n, scope
        Scope, as in :func:`journeylib.journey.stages.milestones_data`.
    gap_minutes : float, default 30
        Inactivity that ends a session.
    sources : list of str, optional
        Only events of these sources (e.g. ``["product"]``); default all.
    level : {"customer", "session"}, default "customer"
        One row per customer (a summary) or one row per session.

    Returns
    -------
    pandas.DataFrame
        ``level="session"``: ``customer_id``, ``session`` (1-based per
        customer), ``started_at``,
        ``ended_at`` (first and last event, UTC), ``events``,
        ``duration_minutes`` (last − first event). ``level="customer"``:
        ``customer_id``, ``sessions``, ``events``, ``median_session_minutes``,
        ``median_events_per_session``, ``first_session_at``,
        ``last_session_at``, ``sessions_per_week`` = sessions / weeks from
        the first session to as_of (at least one week). Sorted by customer
        (and session).

    Raises
    ------
    ValueError
        If ``level`` is unknown or ``gap_minutes`` ≤ 0.
    """
    if level not in ("customer", "session"):
        msg = f"sessions_data: level must be 'customer' or 'session'; got {level!r}"
        raise ValueError(msg)
    if gap_minutes <= 0:
        msg = f"sessions_data: gap_minutes must be positive; got {gap_minutes}"
        raise ValueError(msg)
    scope = Scope.resolve(store, scope, function="sessions_data", as_of=as_of, segment=segment, plan=plan,
                          signup_from=signup_from, signup_to=signup_to, sample_n=sample_n)
    keep = f"WHERE source IN ({', '.join(sql_quote(s) for s in sources)})" if sources else ""
    gap_us = round(gap_minutes * 60_000_000)
    # Ordering by timestamp alone is enough: events with equal timestamps are never split by a gap,
    # so sessions do not depend on how ties are ordered (and the sort stays narrow).
    sessions = f"""
        WITH ev AS (SELECT customer_id, timestamp FROM ({scope.events_sql()}) {keep}),
        marked AS (
            SELECT customer_id, timestamp,
                   CASE WHEN timestamp - lag(timestamp) OVER w <= to_microseconds({gap_us}) THEN 0 ELSE 1 END AS new_session
            FROM ev WINDOW w AS (PARTITION BY customer_id ORDER BY timestamp)
        ),
        numbered AS (
            SELECT customer_id, timestamp,
                   sum(new_session) OVER (PARTITION BY customer_id ORDER BY timestamp ROWS UNBOUNDED PRECEDING) AS session
            FROM marked
        )
        SELECT customer_id, CAST(session AS BIGINT) AS session, min(timestamp) AS started_at, max(timestamp) AS ended_at,
               count(*) AS events, (epoch(max(timestamp)) - epoch(min(timestamp))) / 60.0 AS duration_minutes
        FROM numbered GROUP BY customer_id, session
    """
    if level == "session":
        return store.query(f"SELECT customer_id, session, started_at, ended_at, events, duration_minutes FROM ({sessions}) ORDER BY customer_id, session")
    asof = f"TIMESTAMPTZ {sql_quote(scope.as_of.isoformat())}"
    return store.query(
        f"""SELECT customer_id, count(*) AS sessions, CAST(sum(events) AS BIGINT) AS events,
                   median(duration_minutes) AS median_session_minutes, median(events) AS median_events_per_session,
                   min(started_at) AS first_session_at, max(ended_at) AS last_session_at,
                   count(*) / greatest({sql_days_between("min(started_at)", asof)} / 7.0, 1.0) AS sessions_per_week
            FROM ({sessions}) GROUP BY customer_id ORDER BY customer_id"""
    )


# -- choices for pickers --------------------------------------------------------------------------
def scope_choices_data(store: Store, *, cohort_freq: str = "Q") -> pd.DataFrame:
    """Return the values the scope filters can take in this store, for dashboard pickers.

    Parameters
    ----------
    store : Store
        The canonical store.
    cohort_freq : str, default "Q"
        Pandas period alias of the signup periods (``"M"``, ``"Q"``, ``"Y"``).

    Returns
    -------
    pandas.DataFrame
        One row per choice: ``field`` (``segment``, ``plan`` or
        ``signup_period``), ``value`` (the segment, the plan, or the period
        such as ``2025Q1``), ``customers`` (customers with that value: the
        count shown next to it), ``signup_from`` and ``signup_to`` (the
        period's bounds as ISO dates, ``[from, to)``; empty for segments and
        plans). Sorted by field, then value (periods in time order).
    """
    cust = store.query("SELECT segment, plan, signup_at FROM customers")
    rows = []
    for field in ("segment", "plan"):
        counts = cust[field].dropna().astype(str).value_counts().sort_index()
        rows += [{"field": field, "value": v, "customers": int(n), "signup_from": "", "signup_to": ""} for v, n in counts.items()]
    if len(cust):
        periods = cust["signup_at"].dt.tz_convert("UTC").dt.tz_localize(None).dt.to_period(cohort_freq)
        for period, n in periods.value_counts().sort_index().items():
            rows.append({"field": "signup_period", "value": str(period), "customers": int(n),
                         "signup_from": period.start_time.date().isoformat(), "signup_to": (period + 1).start_time.date().isoformat()})
    return pd.DataFrame(rows, columns=["field", "value", "customers", "signup_from", "signup_to"])
