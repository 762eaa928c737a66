"""Journey stages: milestone detection, funnel, time-to-convert and progress.

Milestones are detected in the engine (SQL over the canonical ``events``
table, never Python loops over events) from a
:class:`~journeylib.config.journey.JourneyDefinition`. Conventions, also documented
in ``docs/journey-definition.md``:

* ``as_of`` is the censoring date. Events after it are not seen; churn or
  conversion after it has not happened yet.
* A condition holds at the time of its ``min_count``-th qualifying event
  (``occurrence: first``) or of the last qualifying event (``occurrence:
  last``); windows are ``[reference, reference + within_days)``.
* A stage of ``order: after_previous`` (the default) is entered at
  ``max(met_at[k], entered_at[k-1])`` and only if stage *k-1* was entered. A
  free-order stage (``order: any``) is entered at ``met_at[k]``, whatever the
  earlier stages: its clock starts at signup. ``met_at`` (the rule alone) is
  kept too, so out-of-order behaviour stays visible to path analysis.
* A customer is **waiting for** stage *k* from ``entered_at[k-1]`` (an
  ordered stage) or from signup (the first stage and free-order stages). A
  customer waiting for *k* who has not entered it has **dropped out** at *k*
  if they churned (by ``as_of``), if their journey ended by an outcome of
  ``kind: drop`` (``ended_at``) at or after they started waiting, or if
  ``conventions.drop_after_days`` is set and that many days passed since they
  started waiting. Otherwise they are **still in progress** (censored) and are
  never counted as a drop-off.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from journeylib.config.journey import AllOf, AnyOf, Condition, JourneyDefinition
from journeylib.exceptions import DataQualityWarning, EmptyResultError
from journeylib.scope import Scope
from journeylib.stats import wilson_interval
from journeylib.store import Store
from journeylib.store.database import memory_size_bytes
from journeylib.store.dialect import (
    sql_cast,
    sql_epoch_microseconds,
    sql_filtered,
    sql_json_text,
    sql_nth_smallest,
    sql_quote,
    sql_timestamp,
)
from journeylib.store.memory import MILESTONE_MEMORY_LIMIT, shared_strings

if TYPE_CHECKING:  # annotations only: the cache module (pydantic models) is not imported to compute stages
    from journeylib.cache import ResultCache

__all__ = [
    "INLINE_STAGES_BYTES_PER_EVENT",
    "INLINE_STAGES_MAX_EVENTS",
    "absent_events_data",
    "add_stage_exits",
    "compute_stages",
    "customer_stages_data",
    "funnel_data",
    "milestones_data",
    "progress_counts_data",
    "progress_data",
    "stage_frames",
    "stage_intervals_data",
    "stage_milestones",
    "statement_memory_bound",
    "time_to_convert_data",
]

#: Grouping columns the funnel and time tables can be broken down by.
GROUPABLE = ("segment", "plan", "cohort")


# -- SQL for rules ---------------------------------------------------------------
# A rule's conditions are aggregates over the events of a customer at or after a
# reference time (signup, or entry into the previous stage), up to as_of. The
# events any rule names are read from ``events`` once, into a narrow table of
# integers (``_jl_e``: customer number, event-name code, one flag per property
# filter, epoch microseconds); every time below is in epoch microseconds, so the
# engine joins, groups and compares integers, with no time-zone arithmetic per
# event. All the conditions that share a reference are evaluated in one grouped
# scan of that table (one FILTER-ed aggregate each; the n-th qualifying time is a
# bounded top-n aggregate, not a window numbering every event), and a rule
# combines its conditions' times as expressions: all of → the latest, if every
# one holds; any of → the earliest that holds.
def _conditions(rule: Any) -> list[Condition]:
    if isinstance(rule, Condition):
        return [rule]
    if isinstance(rule, AllOf | AnyOf):
        return [c for m in (rule.all if isinstance(rule, AllOf) else rule.any) for c in _conditions(m)]
    return []


def _window_micros(cond: Condition) -> int | None:
    """Return a condition's window in whole microseconds (``within_days`` rounded to the microsecond), or None."""
    return None if cond.within_days is None else round(cond.within_days * 86_400_000_000)


def _property_filter(cond: Condition) -> str | None:
    """Return the condition's ``where`` as SQL over ``events`` (alias ``e``), or None."""
    where = []
    for key, val in (cond.where or {}).items():
        vals = val if isinstance(val, list) else [val]
        texts = ", ".join(sql_quote(str(v).lower() if isinstance(v, bool) else v) for v in vals)
        where.append(f"{sql_json_text('e.properties', key)} IN ({texts})")
    return " AND ".join(where) if where else None


class _EventCodes:
    """The integer codes of the narrow event table: one per event name the rules use, one flag column per property filter."""

    def __init__(self, conds: list[Condition]) -> None:
        self.names = sorted({n for c in conds for n in c.names})
        self.code = {n: j for j, n in enumerate(self.names)}
        filters = sorted({f for f in (_property_filter(c) for c in conds) if f is not None})
        self.flag = {f: f"_jl_p{i}" for i, f in enumerate(filters)}

    def select_sql(self, asof_sql: str) -> str:
        """Return the SELECT of the narrow table: ``k``, ``j``, flags, ``t`` for the named events of the scoped customers, signup ≤ t ≤ as_of."""
        # the codes as a small table joined to the events (cheaper for the engine than an IN list and a CASE per event)
        codes = " UNION ALL ".join(f"SELECT {sql_quote(n)} AS event, {code} AS j" for n, code in self.code.items())
        flags = "".join(f", {f} AS {col}" for f, col in self.flag.items())
        return (
            f"SELECT c._jl_k AS k, v.j{flags}, {sql_epoch_microseconds('e.timestamp')} AS t "
            f"FROM events e JOIN ({codes}) v ON e.event = v.event JOIN {_CUSTOMERS} c ON e.customer_id = c.customer_id "
            f"WHERE e.timestamp <= {asof_sql} AND e.timestamp >= c.signup_at"
        )

    def condition_filter(self, cond: Condition) -> str:
        """Return SQL over the narrow table (alias ``e``, reference ``r``) selecting the events *cond* counts."""
        codes = ", ".join(str(self.code[n]) for n in cond.names)
        where = [f"e.j IN ({codes})"]
        prop = _property_filter(cond)
        if prop is not None:
            where.append(f"e.{self.flag[prop]}")
        micros = _window_micros(cond)
        if micros is not None:
            where.append(f"e.t < r._jl_w{micros}")
        return " AND ".join(where)


def _condition_agg(cond: Condition, occurrence: str, codes: _EventCodes) -> str:
    """Aggregate giving the time *cond* holds within its customer's group, NULL if it does not."""
    filt, n = codes.condition_filter(cond), cond.min_count
    if occurrence == "last":
        return f"CASE WHEN {sql_filtered('count', '*', filt)} >= {n} THEN {sql_filtered('max', 'e.t', filt)} END"
    return sql_nth_smallest("e.t", n, where=filt)


def _conditions_sql(conds: list[Condition], cols: list[str], ref_sql: str, occurrence: str, codes: _EventCodes) -> str:
    """One grouped scan of the narrow events: per customer ``k`` of *ref_sql* (``k``, ``ref``), the time each condition holds.

    Each window's end (``ref`` + ``within_days``) is computed once per
    customer in the reference subquery, not once per event.
    """
    used = sorted({codes.code[n] for c in conds for n in c.names})
    # events of other names are left out first; when the conditions name every event of the narrow
    # table there are none (and the engine would run the long IN list as a join)
    names = f"e.j IN ({', '.join(map(str, used))}) AND " if len(used) < len(codes.names) else ""
    aggs = ", ".join(f"{_condition_agg(c, occurrence, codes)} AS {col}" for c, col in zip(conds, cols, strict=True))
    windows = sorted({m for m in (_window_micros(c) for c in conds) if m is not None})
    ends = "".join(f", ref + {m} AS _jl_w{m}" for m in windows)
    return (
        f"SELECT e.k, {aggs} FROM {_EVENTS} e JOIN (SELECT k, ref{ends} FROM ({ref_sql}) x) r ON e.k = r.k "
        f"WHERE {names}e.t >= r.ref GROUP BY e.k"
    )


def _rule_expr(rule: Any, col_of: dict[int, str]) -> str:
    if isinstance(rule, Condition):
        return col_of[id(rule)]
    members = rule.all if isinstance(rule, AllOf) else rule.any
    parts = [_rule_expr(m, col_of) for m in members]
    if isinstance(rule, AnyOf):
        return f"least({', '.join(parts)})"  # NULLs (conditions that do not hold) are ignored
    held = " AND ".join(f"{p} IS NOT NULL" for p in parts)
    return f"CASE WHEN {held} THEN greatest({', '.join(parts)}) END"


#: Tables of one stage computation (temporary tables, or common table expressions of one
#: statement: :func:`_stage_tables`): the scoped customers (numbered ``_jl_k``, with
#: ``_jl_signup_us``), the narrow events, the times of the conditions referring to signup, and
#: one table per run of stages (:func:`_runs`).
_CUSTOMERS = "_jl_c"
#: The columns of the scoped customers the stage computations read (``properties`` too when a
#: drop outcome reads a customer property).
_CUSTOMER_COLUMNS = ("customer_id", "segment", "plan", "signup_at", "converted_at", "churned_at", "renewal_at")
_EVENTS = "_jl_e"
_SIGNUP_CONDITIONS = "_jl_sig"
#: Up to this many events in the store, a stage computation on DuckDB without drop outcomes is one
#: statement whose narrow events stay in memory (:func:`_stage_tables`). Measured under the read-only
#: store's default 600MB memory limit: at 10M events (3.7M narrow rows) one statement is faster than
#: temporary tables; at 100M (37M narrow rows) it took 1.5x as long as temporary tables (it fits only
#: with a larger limit). Sizes in between were not measured.
INLINE_STAGES_MAX_EVENTS = 20_000_000
#: Above :data:`INLINE_STAGES_MAX_EVENTS`, a stage computation is one statement all the same when
#: DuckDB's memory limit gives at least this many bytes per event of the store. Measured at 100M events
#: (37M narrow rows) under the 4000MB limit a read-only store of that size gets by default (DuckDB
#: reports it as 3.7 GiB, 39.7 bytes per event): one statement against the temporary tables in three
#: alternating pairs (load 3-4) 16.8/18.8, 9.1/13.1 and 12.8/14.5 s, the same CPU time (9.3-10.3 s), peak
#: RSS (2.6-2.7 GB) and no spill; under 600MB (6 bytes per event) the temporary tables won.
INLINE_STAGES_BYTES_PER_EVENT = 32


def statement_memory_bound(store: Store, bound: str = MILESTONE_MEMORY_LIMIT) -> str | None:
    """Return the lower DuckDB limit to run a statement over every event under while an analysis holds frames (None: the store's).

    *bound* on a DuckDB store of at most :data:`INLINE_STAGES_MAX_EVENTS`
    events, where a milestone statement is one statement whatever the limit
    (:func:`_inline_stages`) and the statements were measured under their
    bounds (10M events); None on a larger store, whose statements' form
    depends on the limit. For :func:`journeylib.store.memory.run_bounded`,
    which runs the work again under the store's limit if DuckDB runs out of
    memory under the bound.

    Parameters
    ----------
    store : Store
        The store.
    bound : str, default :data:`journeylib.store.memory.MILESTONE_MEMORY_LIMIT`
        The lower limit.

    Returns
    -------
    str or None
        *bound*, or None.
    """
    if store.engine != "duckdb":
        return None
    return bound if store.count("events") <= INLINE_STAGES_MAX_EVENTS else None


def _memory_limit_bytes(store: Store) -> int | None:
    """Return the DuckDB memory limit of the store's connection in bytes (None if it cannot be read)."""
    return memory_size_bytes(str(store.query("SELECT current_setting('memory_limit') AS m")["m"].iloc[0]))


def _inline_stages(store: Store, definition: JourneyDefinition) -> bool:
    """Whether :func:`_stage_tables` gives its tables as common table expressions of one statement (see there)."""
    if store.engine != "duckdb" or definition.drop_outcomes:
        return False
    n_events = store.count("events")
    if n_events <= INLINE_STAGES_MAX_EVENTS:
        return True
    limit = _memory_limit_bytes(store)
    return limit is not None and limit >= INLINE_STAGES_BYTES_PER_EVENT * n_events


def _runs(definition: JourneyDefinition) -> list[range]:
    """Group the stages into runs: a run starts at the first stage and at every stage with a condition ``of: previous_stage``.

    One query computes a run's stages (one table each run): only a
    previous-stage condition needs a grouped scan that waits for the previous
    stage's table.
    """
    starts = [k for k, stage in enumerate(definition.stages) if k == 0 or any(c.of == "previous_stage" for c in _conditions(stage.rule))]
    return [range(a, b) for a, b in zip(starts, [*starts[1:], len(definition.stages)], strict=True)]


def _stage_table(run: range) -> str:
    return f"_jl_s{run.start}"


def _stage_column(definition: JourneyDefinition, k: int, which: str) -> str:
    """Return SQL naming stage *k*'s ``met`` or ``entered`` time in the run tables joined by :func:`_stage_joins`."""
    run = next(r for r in _runs(definition) if k in r)
    return f"s{run.start}.{which}_{k}"


class _StageSql:
    """The stage tables of one computation, as :func:`_stage_tables` yields them.

    ``prefix`` is ``""`` when the tables were created in the engine (and the
    scope was checked), else a ``WITH`` clause defining them as common table
    expressions for the one statement that reads them: that statement selects
    :attr:`seen_sql` and hands it to :meth:`check` with its count of customers.
    """

    def __init__(self, prefix: str, codes: _EventCodes) -> None:
        self.prefix = prefix
        self.codes = codes

    @property
    def seen_sql(self) -> str:
        """SQL: how many of the event names the rules use occur among the scoped events."""
        return f"(SELECT count(DISTINCT j) FROM {_EVENTS})" if self.codes.names else "0"

    def check(self, store: Store, definition: JourneyDefinition, scope: Scope, n_customers: int, n_seen: int) -> None:
        """Raise when no customer is in scope; warn about names the definition uses that no scoped event has.

        *n_seen* is :attr:`seen_sql`'s value: every name the rules use occurs
        when it equals their number (the outcomes' names are then checked as
        in :func:`_check_scope`); otherwise some name does not, and the store is
        searched for the absent ones.
        """
        seen = set(self.codes.names) if n_seen == len(self.codes.names) else set()
        _check_scope(store, definition, scope, n_customers, seen)


def _check_scope(store: Store, definition: JourneyDefinition, scope: Scope, n_customers: int, seen: set[str]) -> None:
    """Raise :class:`EmptyResultError` for an empty scope; look up the names not *seen* among the scoped events in the whole store."""
    if n_customers == 0:
        _warn_absent_events(store, definition)
        msg = f"no customers in scope ({scope.describe()}); widen the filters."
        raise EmptyResultError(msg)
    if not set(definition.event_references()) <= seen:  # a name not seen in scope: look in the whole store
        _warn_absent_events(store, definition)


@contextmanager
def _stage_tables(store: Store, definition: JourneyDefinition, scope: Scope) -> Iterator[_StageSql]:
    """Define the stage tables; yield them as :class:`_StageSql`; drop the ones created after.

    ``_jl_c`` holds the scoped customers (:meth:`Scope.customers_sql`; the
    columns the stage computations read) with ``_jl_k`` (their number in
    ``customer_id`` order) and ``_jl_signup_us``;
    ``_jl_e`` the events the rules name, as integers (``k``, ``j``, property
    flags, ``t``); ``_jl_sig`` the time each signup-referenced condition
    holds; and ``_jl_s<a>`` one row per customer (``k``) with ``met_<i>``
    and ``entered_<i>`` of every stage *i* of the run starting at stage *a*
    (:func:`_runs`). Times are epoch microseconds.

    On DuckDB, for a definition without outcomes of ``kind: drop`` and a
    store of at most :data:`INLINE_STAGES_MAX_EVENTS` events, or of more
    under a memory limit of at least :data:`INLINE_STAGES_BYTES_PER_EVENT`
    bytes per event, they are common
    table expressions of the one statement that reads them (the engine keeps
    ``_jl_e`` in memory instead of writing a table, and nothing else reads
    them); otherwise (drop outcomes read them again; larger stores, whose
    narrow events would crowd the memory limit; Spark) temporary tables,
    created here. The names the definition uses are looked
    up in the whole store (:func:`absent_events_data`, with a warning) unless
    every one of them occurs among the scoped events, and a scope without
    customers raises :class:`EmptyResultError`: here for tables, in
    :meth:`_StageSql.check` (from the statement's result) for expressions.
    """
    _trace(definition, scope)
    asof_sql = sql_timestamp(scope.as_of)
    occurrence = definition.conventions.occurrence
    runs = _runs(definition)
    tables = [_CUSTOMERS, _EVENTS, _SIGNUP_CONDITIONS] + [_stage_table(run) for run in runs]
    rules = [s.rule for s in definition.stages]
    conds = [_conditions(rule) for rule in rules]
    codes = _EventCodes([c for cs in conds for c in cs])
    col_of = {id(c): f"_jl_c{k}_{i}" for k, cs in enumerate(conds) for i, c in enumerate(cs)}
    signup = [c for cs in conds for c in cs if c.of == "signup"]
    kept = list(_CUSTOMER_COLUMNS)
    if any(o.customer_property is not None for o in definition.drop_outcomes.values()):
        kept.append("properties")  # read by _end_times
    steps = [(
        _CUSTOMERS,
        f"SELECT {', '.join(f's.{col}' for col in kept)}, "
        f"{sql_cast('row_number() OVER (ORDER BY s.customer_id) - 1', 'int32')} AS _jl_k, "
        f"{sql_epoch_microseconds('s.signup_at')} AS _jl_signup_us FROM ({scope.customers_sql()}) s",
    )]
    if codes.names:
        steps.append((_EVENTS, codes.select_sql(asof_sql)))
    ref = f"SELECT _jl_k AS k, _jl_signup_us AS ref FROM {_CUSTOMERS}"
    sig = _conditions_sql(signup, [col_of[id(c)] for c in signup], ref, occurrence, codes) if signup else f"SELECT _jl_k AS k FROM {_CUSTOMERS} WHERE false"
    steps.append((_SIGNUP_CONDITIONS, sig))
    for run in runs:
        joins = f"LEFT JOIN {_SIGNUP_CONDITIONS} g ON g.k = c._jl_k"
        cols = [col_of[id(c)] for k in run for c in conds[k] if c.of == "signup"]
        prev_conds = [c for c in conds[run.start] if c.of == "previous_stage"]
        if run.start > 0:  # the previous stage's entry time, from the previous run's table
            before = next(r for r in runs if run.start - 1 in r)
            joins += f" LEFT JOIN {_stage_table(before)} p ON p.k = c._jl_k"
            cols.append(f"p.entered_{run.start - 1}")
        if prev_conds:
            ref = f"SELECT k, entered_{run.start - 1} AS ref FROM {_stage_table(before)} WHERE entered_{run.start - 1} IS NOT NULL"
            agg = _conditions_sql(prev_conds, [col_of[id(c)] for c in prev_conds], ref, occurrence, codes)
            joins += f" LEFT JOIN ({agg}) q ON q.k = c._jl_k"
            cols += [f"q.{col_of[id(c)]}" for c in prev_conds]
        level = f"SELECT c._jl_k AS k, c._jl_signup_us AS _jl_su{''.join(', ' + col for col in cols)} FROM {_CUSTOMERS} c {joins}"
        for k in run:  # one nesting level per stage: its met time, then its entry time
            met = "_jl_su" if rules[k] == "signup" else _rule_expr(rules[k], col_of)
            # the first stage and free-order stages wait for signup only
            prev = "_jl_su" if _waits_from_signup(definition, k) else f"entered_{k - 1}"
            level = (
                f"SELECT x{k}.*, CASE WHEN met_{k} IS NOT NULL AND {prev} IS NOT NULL THEN greatest(met_{k}, {prev}) END AS entered_{k} "
                f"FROM (SELECT y{k}.*, {met} AS met_{k} FROM ({level}) y{k}) x{k}"
            )
        times = ", ".join(f"met_{k}, entered_{k}" for k in run)
        steps.append((_stage_table(run), f"SELECT k, {times} FROM ({level}) z"))
    with store.session():  # one connection for the whole computation
        if _inline_stages(store, definition):
            yield _StageSql("WITH " + ", ".join(f"{name} AS ({sql})" for name, sql in steps) + " ", codes)
            return
        with store.temp_tables(*tables):
            store.create_temp_table(*steps[0])
            n_customers = int(store.query(f"SELECT count(*) AS n FROM {_CUSTOMERS}")["n"].iloc[0])
            if n_customers == 0:
                _check_scope(store, definition, scope, 0, set())
            seen: set[str] = set()
            if codes.names:
                store.create_temp_table(*steps[1])
                seen = {codes.names[int(j)] for j in store.query(f"SELECT DISTINCT j FROM {_EVENTS}")["j"]}
            _check_scope(store, definition, scope, n_customers, seen)
            for name, sql in steps[2 if codes.names else 1:]:
                store.create_temp_table(name, sql)
            yield _StageSql("", codes)


def _stage_joins(definition: JourneyDefinition) -> str:
    return " ".join(f"JOIN {_stage_table(run)} s{run.start} ON s{run.start}.k = c._jl_k" for run in _runs(definition))


def _waits_from_signup(definition: JourneyDefinition, k: int) -> bool:
    """Whether customers wait for stage *k* from signup (the first stage, a free-order stage) rather than from stage k-1."""
    return k == 0 or definition.stages[k].free_order


def _end_times(store: Store, definition: JourneyDefinition, scope: Scope) -> pd.DataFrame:
    """When each customer's journey ended by an outcome of ``kind: drop``, inside :func:`_stage_tables`.

    Returns one row per customer whose journey ended by ``as_of``:
    ``customer_id`` and ``ended_at`` (the earliest drop outcome that
    applies: one with ``unless_stage`` does not apply to a customer who had
    entered that stage by its time). A ``customer_property`` value that is
    not an ISO 8601 date or timestamp is left out with a
    :class:`~journeylib.exceptions.DataQualityWarning` naming the key and
    counting the values.
    """
    asof_sql = sql_timestamp(scope.as_of)
    times = []
    for name, outcome in definition.drop_outcomes.items():
        if outcome.customer_field is not None:
            t = store.query(f"SELECT customer_id, {outcome.customer_field} AS t FROM {_CUSTOMERS} c WHERE {outcome.customer_field} IS NOT NULL")
            t["t"] = pd.to_datetime(t["t"], utc=True)
        elif outcome.customer_property is not None:
            text = sql_json_text("c.properties", outcome.customer_property)
            t = store.query(f"SELECT customer_id, {text} AS raw FROM {_CUSTOMERS} c WHERE {text} IS NOT NULL AND {text} <> ''")
            t["t"] = pd.to_datetime(t["raw"], utc=True, errors="coerce", format="ISO8601")
            bad = t[t["t"].isna()]
            if len(bad):
                shown = ", ".join(repr(v) for v in bad["raw"].head(3))
                msg = (
                    f"outcome {name!r}: {len(bad)} of {len(t)} values of customers.properties key "
                    f"{outcome.customer_property!r} are not ISO 8601 dates or timestamps (e.g. {shown}); "
                    "those customers' journeys are not ended by it. Fix the export or the value format."
                )
                warnings.warn(msg, DataQualityWarning, stacklevel=3)
            t = t.drop(columns=["raw"]).dropna(subset=["t"])
        else:
            t = store.query(
                f"SELECT e.customer_id, min(e.timestamp) AS t FROM events e JOIN {_CUSTOMERS} c ON e.customer_id = c.customer_id "
                f"WHERE e.event = {sql_quote(outcome.event)} AND e.timestamp >= c.signup_at AND e.timestamp <= {asof_sql} "
                "GROUP BY e.customer_id"
            )
            t["t"] = pd.to_datetime(t["t"], utc=True)
        t = t[t["t"] <= scope.as_of]
        if outcome.unless_stage is not None:
            k = definition.stage_names.index(outcome.unless_stage)
            got = store.query(
                f"SELECT c.customer_id, {_stage_column(definition, k, 'entered')} AS entered_at FROM {_CUSTOMERS} c {_stage_joins(definition)} "
                f"WHERE {_stage_column(definition, k, 'entered')} IS NOT NULL"
            )
            reached = pd.to_datetime(got.set_index("customer_id")["entered_at"].astype("int64"), unit="us", utc=True)
            before = t["customer_id"].map(reached)
            t = t[~(before.notna() & (before <= t["t"]))]
        times.append(t[["customer_id", "t"]])
    if not times:
        return pd.DataFrame({"customer_id": pd.Series(dtype=object), "ended_at": pd.Series(dtype="datetime64[us, UTC]")})
    allt = pd.concat(times, ignore_index=True)
    return allt.groupby("customer_id")["t"].min().rename("ended_at").reset_index()


def absent_events_data(store: Store, *, definition: JourneyDefinition) -> pd.DataFrame:
    """Return the event names the journey definition uses that the store does not have, with the closest names present.

    A stage whose rule names only absent events is never reached; without
    this check the funnel would show zero reach without a word. The stage
    computations warn with the same text
    (:class:`~journeylib.exceptions.DataQualityWarning`).

    Parameters
    ----------
    store : Store
        The canonical store (its distinct ``events.event`` values, whole timeline).
    definition : JourneyDefinition
        The stages' rules and the event outcomes.

    Returns
    -------
    pandas.DataFrame
        One row per absent event name, in definition order (empty when every
        name is present): ``event`` (the name as the definition spells it),
        ``used_by`` (the stages and ``outcome:<name>`` entries that use it,
        comma-separated), ``closest`` (the closest present names by
        :func:`difflib.get_close_matches`, comma-separated; empty when none is
        close), ``message`` (one sentence saying all of it).

    Examples
    --------
    >>> absent_events_data(store, definition=definition)  # doctest: +SKIP
    """
    present = store.query("SELECT DISTINCT event FROM events WHERE event IS NOT NULL")["event"].astype(str)
    rows = [
        {"event": a.event, "used_by": ", ".join(a.used_by), "closest": ", ".join(a.closest), "message": a.message()}
        for a in definition.absent_events(present)
    ]
    return pd.DataFrame(rows, columns=["event", "used_by", "closest", "message"])


def _warn_absent_events(store: Store, definition: JourneyDefinition) -> None:
    absent = absent_events_data(store, definition=definition)
    if absent.empty:
        return
    msg = (
        f"journey definition {definition.name!r}: {len(absent)} event name(s) it uses are not in the store, so the "
        f"conditions naming them never hold: {' '.join(absent['message'])} Fix the names in the definition "
        "(event names are compared exactly) or map the vendor events to them."
    )
    warnings.warn(msg, DataQualityWarning, stacklevel=4)


#: Environment variable naming a file to which every milestone SQL pass appends one JSON line
#: (definition digest and scope): how a test counts the engine passes of a whole notebook run.
TRACE_ENV = "JOURNEYLIB_TRACE_STAGES"


def _trace(definition: JourneyDefinition, scope: Scope) -> None:
    path = os.environ.get(TRACE_ENV)
    if not path:
        return
    import hashlib  # only when tracing

    digest = hashlib.sha256(definition.model_dump_json().encode()).hexdigest()[:16]
    line = json.dumps({"definition": digest, "scope": repr(scope)})
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(line + "\n")


def compute_stages(store: Store, definition: JourneyDefinition, scope: Scope) -> pd.DataFrame:
    """Run the milestone SQL for an already-built :class:`~journeylib.scope.Scope`.

    The engine step behind :func:`milestones_data`, for modules that build
    their scope once and reuse it (journeys, friction, suggest).

    Parameters
    ----------
    store : Store
        The canonical store.
    definition : JourneyDefinition
        Stages and conventions.
    scope : Scope
        Customers and censoring date.

    Returns
    -------
    pandas.DataFrame
        The columns of :func:`milestones_data`: ``customer_id``, ``stage``,
        ``stage_order``, ``met_at``, ``entered_at``, ``segment``, ``plan``,
        ``signup_at``, ``converted_at``, ``churned_at``, ``ended_at``; one row
        per customer × stage, ordered by customer and stage.

    Raises
    ------
    EmptyResultError
        If no customer is in scope.
    """
    n_stages = len(definition.stages)
    stage_cols = ", ".join(f"{_stage_column(definition, k, 'met')} AS met_{k}, {_stage_column(definition, k, 'entered')} AS entered_{k}" for k in range(n_stages))
    with _stage_tables(store, definition, scope) as st:
        # one row per customer from the engine (the long table repeats each customer's
        # strings once per stage); it is unfolded below without copying those strings, and put
        # in customer order there by the customers' numbers (cheaper than sorting the wide rows
        # in the engine)
        seen = f", {st.seen_sql} AS _jl_seen" if st.prefix else ""
        wide = store.query(
            f"""{st.prefix}SELECT c._jl_k, c.customer_id, c.segment, c.plan, c.signup_at, c.converted_at, c.churned_at, {stage_cols}{seen}
                FROM {_CUSTOMERS} c {_stage_joins(definition)}"""
        )
        if st.prefix:
            seen_codes = wide["_jl_seen"]  # left in the frame (removing a column copies its neighbours); not unfolded
            st.check(store, definition, scope, len(wide), int(seen_codes.iloc[0]) if len(wide) else 0)
        ended = _end_times(store, definition, scope).set_index("customer_id")["ended_at"]
    # no journey ended by a drop outcome: every ended_at is NaT, of the type the lookup would give
    ended_at = wide["customer_id"].map(ended) if len(ended) else pd.Series(pd.NaT, index=wide.index, dtype=ended.dtype)
    wide["ended_at"] = pd.to_datetime(ended_at, utc=True)
    return _long_stage_frame(wide, definition.stage_names)


#: ``NaT`` as an integer: a NULL stage time read as integers becomes ``NaT`` once viewed as ``datetime64``.
_NAT_MICROS = np.iinfo(np.int64).min


def _long_stage_frame(wide: pd.DataFrame, stage_names: list[str]) -> pd.DataFrame:
    """Unfold the engine's one row per customer into rows customer × stage (customer order, then stage order).

    *wide* has ``_jl_k`` (the customer's number in ``customer_id`` order;
    its rows may come in any order), ``customer_id``, ``segment``, ``plan``, ``signup_at``,
    ``converted_at``, ``churned_at``, ``ended_at`` and, per stage *k*,
    ``met_<k>`` and ``entered_<k>`` in epoch microseconds (NULL where the
    stage was not met or entered). Every column is gathered once, by
    position, and the frame is built in one step: the customers' strings are
    not copied, and the times are read as integers (NULL as ``NaT``'s
    integer), so they are exact whatever their size.
    """
    n_stages, n = len(stage_names), len(wide)
    order = np.argsort(wide["_jl_k"].to_numpy(), kind="stable")  # the rows of wide in customer order
    per_customer = np.repeat(order, n_stages)  # row i*n_stages + k is the i-th customer, stage k
    tz = getattr(wide["signup_at"].dtype, "tz", "UTC")

    def stacked(prefix: str) -> pd.DatetimeIndex:  # customer i's stages side by side, then row by row: customer order
        micros = np.empty((n, n_stages), dtype="int64")
        for k in range(n_stages):
            micros[:, k] = wide[f"{prefix}_{k}"].to_numpy(dtype="int64", na_value=_NAT_MICROS)[order]
        return pd.DatetimeIndex(micros.ravel().view("datetime64[us]")).tz_localize("UTC").tz_convert(tz)

    codes = np.tile(np.arange(n_stages), n)
    columns: dict[str, Any] = {
        "customer_id": wide["customer_id"].to_numpy()[per_customer],
        "stage": pd.Categorical.from_codes(codes, dtype=pd.CategoricalDtype(stage_names, ordered=True)),
        "stage_order": codes.astype(np.int32),
        "met_at": stacked("met").array,
        "entered_at": stacked("entered").array,
    }
    for col in ("segment", "plan", "signup_at", "converted_at", "churned_at", "ended_at"):
        # a NumPy column as a NumPy array (pandas would scan a wrapped object array for missing values); the few
        # segments and plans as one string each, not one per customer (the frame is kept for the whole context)
        values = shared_strings(wide[col]).to_numpy() if isinstance(wide[col].dtype, np.dtype) else wide[col].array
        columns[col] = values.take(per_customer)
    return pd.DataFrame(columns, copy=False)


def stage_milestones(store: Store, definition: JourneyDefinition, scope: Scope, *, cache: ResultCache | None = None) -> pd.DataFrame:
    """Return :func:`compute_stages` output, from *cache* when one is given.

    Parameters
    ----------
    store, definition, scope
        As in :func:`compute_stages`.
    cache : ResultCache, optional
        Reuse (and keep) the frame there.

    Returns
    -------
    pandas.DataFrame
        The columns of :func:`compute_stages`.
    """
    if cache is None:
        return compute_stages(store, definition, scope)
    key = (id(store), definition.model_dump_json(), scope)
    return cache.get("milestones", key, lambda: compute_stages(store, definition, scope))


def stage_frames(
    store: Store, definition: JourneyDefinition, scope: Scope, *, cache: ResultCache | None = None, milestones: pd.DataFrame | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return the milestones (customer × stage) and the stage intervals of a scope.

    The shared building block of the path, flow and friction analyses.

    Parameters
    ----------
    store, definition, scope
        As in :func:`compute_stages`.
    cache : ResultCache, optional
        Reuse the milestone frame there.
    milestones : pandas.DataFrame, optional
        The milestone frame of *definition* and *scope* (:func:`stage_milestones`)
        when the caller has read it already: used (and changed) instead of
        reading it again.

    Returns
    -------
    (pandas.DataFrame, pandas.DataFrame)
        The :func:`compute_stages` frame with every time column as UTC
        datetimes (a column that is all NULL comes back from the engine
        without a datetime dtype), and :func:`add_stage_exits` of it.
    """
    ms = stage_milestones(store, definition, scope, cache=cache) if milestones is None else milestones
    for col in ("met_at", "entered_at", "signup_at", "converted_at", "churned_at", "ended_at"):
        ms[col] = pd.to_datetime(ms[col], utc=True)
    iv = add_stage_exits(ms, definition, scope.as_of)
    return ms, iv


def _one_connection(store: Store, cache: ResultCache | None) -> AbstractContextManager[object]:
    """Return the session a ``*_data`` call on *store* runs in (docs/adr/0008), or none when a cache may answer it.

    A call that computes (its scope, its statement and the frame built from
    its rows) does it in one connection, which a read-only store lets go of
    after the result is built, not before (its memory is given back while the
    caller goes on). With a *cache*, the result may be there already: the
    store is then opened only if the computation runs.
    """
    return store.session() if cache is None else nullcontext()


def milestones_data(
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
) -> pd.DataFrame:
    """Return when each customer met each stage's milestone, and entered each stage.

    Parameters
    ----------
    store : Store
        The canonical store.
    definition : JourneyDefinition
        Stages and conventions.
    as_of : date-like, optional
        Censoring date; default the latest event.
    segment, plan : str, optional
        Filters (``"all"`` or None = no filter).
    signup_from, signup_to : date-like, optional
        Signup period ``[from, to)``.
    sample_n : int, default 0
        Seeded sample of customers (0 = all).
    scope : Scope, optional
        A ready :class:`~journeylib.scope.Scope` instead of the filters above
        (what :class:`journeylib.Journey` passes).
    cache : ResultCache, optional
        Share the milestone frame with the other analyses of the same scope.

    Returns
    -------
    pandas.DataFrame
        One row per customer × stage: ``customer_id``; ``stage`` (ordered
        categorical); ``stage_order`` (0-based); ``met_at`` (UTC; when the
        stage's rule alone first held, NaT if never by as_of); ``entered_at``
        (UTC; when the stage was entered: after the previous stage for an
        ordered stage, at ``met_at`` for a free-order one; NaT if not);
        ``segment``, ``plan``, ``signup_at``, ``converted_at``, ``churned_at``
        (customer attributes; outcomes after as_of blanked); ``ended_at``
        (UTC; when the journey ended by an outcome of ``kind: drop``, NaT if
        it did not by as_of).

    Raises
    ------
    EmptyResultError
        If no customer is in scope.
    """
    with _one_connection(store, cache):
        scope = Scope.resolve(store, scope, function="milestones_data", segment_field=definition.segment_field, as_of=as_of, segment=segment, plan=plan,
                              signup_from=signup_from, signup_to=signup_to, sample_n=sample_n)
        return stage_milestones(store, definition, scope, cache=cache)


def add_stage_exits(ms: pd.DataFrame, definition: JourneyDefinition, as_of: pd.Timestamp) -> pd.DataFrame:
    """Add exit times and how each entered stage ended to :func:`compute_stages` output.

    A customer's entered stages are taken in the order they were entered
    (``entered_at``, ties by stage order): each lasts until the next one is
    entered, so the intervals never overlap, also when free-order stages are
    entered before earlier stages. With ordered stages only this is the stage
    order.

    Parameters
    ----------
    ms : pandas.DataFrame
        Output of :func:`compute_stages`.
    definition : JourneyDefinition
        Gives the number of stages and ``drop_after_days``.
    as_of : pandas.Timestamp
        Censoring date.

    Returns
    -------
    pandas.DataFrame
        The entered rows of *ms*, per customer in the order entered, plus
        ``exited_at``, ``days_in_stage`` and ``status`` as documented in
        :func:`stage_intervals_data`.
    """
    entered = ms[ms["entered_at"].notna()].copy()
    entered = entered.sort_values(["customer_id", "entered_at", "stage_order"], kind="mergesort")
    nxt = entered.groupby("customer_id", sort=False)["entered_at"].shift(-1)
    last = nxt.isna()
    churn = entered["churned_at"]
    ended = entered["ended_at"] if "ended_at" in entered.columns else pd.Series(pd.NaT, index=entered.index, dtype=churn.dtype)
    n_stages = len(definition.stages)
    final = (entered["stage_order"] == n_stages - 1).groupby(entered["customer_id"], sort=False).transform("any")
    ends_here = last & churn.isna() & ~final & ended.notna() & (ended >= entered["entered_at"])
    entered["exited_at"] = nxt
    entered.loc[last & churn.notna(), "exited_at"] = churn[last & churn.notna()]
    entered.loc[ends_here, "exited_at"] = ended[ends_here]
    drop_days = definition.conventions.drop_after_days
    days_in = (entered["exited_at"].fillna(as_of) - entered["entered_at"]).dt.total_seconds() / 86400.0
    status = np.where(~last, "progressed", "in_progress")
    status = np.where(last & churn.notna(), "churned", status)
    status = np.where(last & churn.isna() & final, "completed", status)
    status = np.where(ends_here, "dropped", status)
    if drop_days is not None:
        status = np.where((status == "in_progress") & (days_in > drop_days), "dropped", status)
    entered["days_in_stage"] = days_in.to_numpy()
    entered["status"] = status
    return entered


def stage_intervals_data(
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
) -> pd.DataFrame:
    """Return the time each customer spent in each stage they entered.

    Parameters
    ----------
    store, definition, as_of, segment, plan, signup_from, signup_to, sample_n, scope, cache
        As in :func:`milestones_data`.

    Returns
    -------
    pandas.DataFrame
        One row per customer × entered stage: ``customer_id``, ``stage``,
        ``stage_order``, ``entered_at`` (UTC), ``exited_at`` (UTC: entry into
        the next stage, or churn; NaT while still in the stage at as_of),
        ``days_in_stage`` (to exit, or to as_of when still in it),
        ``status`` (``progressed`` to the next stage entered, ``churned`` in
        it, ``completed`` (the customer has entered the last stage of the
        definition), ``dropped`` (the journey ended in it by an outcome of
        ``kind: drop``, or no progress within ``drop_after_days``), or
        ``in_progress``: censored at as_of), ``segment``, ``plan``,
        ``signup_at``. Rows are per customer in the order the stages were
        entered.
    """
    with _one_connection(store, cache):
        scope = Scope.resolve(store, scope, function="stage_intervals_data", segment_field=definition.segment_field, as_of=as_of, segment=segment, plan=plan,
                              signup_from=signup_from, signup_to=signup_to, sample_n=sample_n)
        ms = stage_milestones(store, definition, scope, cache=cache)
        iv = add_stage_exits(ms, definition, scope.as_of)
    cols = ["customer_id", "stage", "stage_order", "entered_at", "exited_at", "days_in_stage", "status", "segment", "plan", "signup_at"]
    return iv[cols].reset_index(drop=True)


def customer_stages_data(
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
) -> pd.DataFrame:
    """Return each customer's current stage at ``as_of``.

    Returns
    -------
    pandas.DataFrame
        One row per customer: ``customer_id``, ``stage`` (the stage entered
        last: with ordered stages only, the furthest), ``stage_order``, ``entered_at``, ``days_in_stage`` (days from
        entering it to exit or as_of), ``status`` (see
        :func:`stage_intervals_data`; never ``progressed``), ``segment``,
        ``plan``, ``signup_at``.
    """
    iv = stage_intervals_data(
        store, definition=definition, as_of=as_of, segment=segment, plan=plan,
        signup_from=signup_from, signup_to=signup_to, sample_n=sample_n, scope=scope, cache=cache,
    )
    cur = iv.sort_values(["customer_id", "entered_at", "stage_order"], kind="mergesort").groupby("customer_id", as_index=False).tail(1)
    return cur.drop(columns=["exited_at"]).reset_index(drop=True)


def _with_cohort(frame: pd.DataFrame, cohort_freq: str) -> pd.DataFrame:
    out = frame.copy()
    out["cohort"] = out["signup_at"].dt.tz_convert("UTC").dt.tz_localize(None).dt.to_period(cohort_freq).astype(str)
    return out


def _funnel_counts(store: Store, definition: JourneyDefinition, scope: Scope, by: str | None) -> pd.DataFrame:
    """Count, per group and stage, the customers waiting for it, reaching it and dropping out at it, in the engine.

    Returns one row per (``grp``, ``k``) with ``eligible`` (customers waiting
    for stage *k*: every customer for the first stage and free-order stages,
    else those who entered stage *k-1*), ``reached`` (entered *k*) and
    ``dropped`` (waiting, not reached, and churned, ended by a drop outcome at
    or after they started waiting, or more than ``drop_after_days`` since
    they started waiting). ``grp`` is the ``by`` attribute (``signup_at``
    for cohorts, ``"all"`` without ``by``).
    """
    n_stages = len(definition.stages)
    asof_sql = sql_timestamp(scope.as_of)
    grp = {None: "'all'", "segment": "c.segment", "plan": "c.plan", "cohort": "c.signup_at"}[by]
    drop_days = definition.conventions.drop_after_days
    cols = []
    for k in range(n_stages):
        from_signup = _waits_from_signup(definition, k)
        since = "c._jl_signup_us" if from_signup else _stage_column(definition, k - 1, "entered")  # epoch microseconds
        waiting = "TRUE" if from_signup else f"{since} IS NOT NULL"
        # days waited as add_stage_exits computes days: exact microseconds, then seconds, then days
        stale = (
            "FALSE"
            if drop_days is None
            else f"CAST({sql_epoch_microseconds(asof_sql)} - {since} AS DOUBLE) / 1000000 / 86400 "
            f"> CAST({float(drop_days)!r} AS DOUBLE)"
        )
        gone = f"(c.churned_at IS NOT NULL OR (x.ended_us IS NOT NULL AND {since} <= x.ended_us) OR {stale})"
        reached = f"{_stage_column(definition, k, 'entered')} IS NOT NULL"
        cols += [
            f"sum(CASE WHEN {waiting} THEN 1 ELSE 0 END) AS e{k}",
            f"sum(CASE WHEN {reached} THEN 1 ELSE 0 END) AS r{k}",
            f"sum(CASE WHEN {waiting} AND NOT ({reached}) AND {gone} THEN 1 ELSE 0 END) AS d{k}",
        ]
    with _stage_tables(store, definition, scope) as st:
        ended = _end_times(store, definition, scope)
        frames: dict[str, pd.DataFrame] = {}
        if len(ended):  # the journeys ended by a drop outcome, in epoch microseconds
            frames["_jl_end"] = pd.DataFrame({
                "customer_id": ended["customer_id"].to_numpy(),
                "ended_us": ended["ended_at"].dt.tz_convert("UTC").dt.tz_localize(None).to_numpy(dtype="datetime64[us]").astype("int64"),
            })
        source = "_jl_end" if len(ended) else f"{_CUSTOMERS} WHERE false"  # no journey ended: an empty, typed table
        # with the stage tables as expressions: the customers counted and the event codes seen, for st.check
        seen = f", count(*) AS _jl_n, max({st.seen_sql}) AS _jl_seen" if st.prefix else ""
        wide = store.query(
            f"""{st.prefix}SELECT {grp} AS grp, {", ".join(cols)}{seen}
                FROM {_CUSTOMERS} c {_stage_joins(definition)}
                LEFT JOIN (SELECT customer_id, {sql_cast("NULL" if not len(ended) else "ended_us", "integer")} AS ended_us FROM {source}) x
                  ON x.customer_id = c.customer_id
                GROUP BY 1 ORDER BY 1""",
            None,
            **frames,
        )
        if st.prefix:
            st.check(store, definition, scope, int(wide["_jl_n"].sum()), int(wide["_jl_seen"].max()) if len(wide) else 0)
    return _long_counts(wide, n_stages)


def _long_counts(wide: pd.DataFrame, n_stages: int) -> pd.DataFrame:
    """Unfold ``grp, e0, r0, d0, e1, ...`` into rows ``grp, k, eligible, reached, dropped``."""
    parts = [
        pd.DataFrame(
            {"grp": wide["grp"].to_numpy(), "k": k, "eligible": wide[f"e{k}"].to_numpy(dtype="int64"),
             "reached": wide[f"r{k}"].to_numpy(dtype="int64"), "dropped": wide[f"d{k}"].to_numpy(dtype="int64")}
        )
        for k in range(n_stages)
    ]
    return pd.concat(parts, ignore_index=True)


def _funnel_counts_of(store: Store, definition: JourneyDefinition, scope: Scope, by: str | None, cache: ResultCache) -> pd.DataFrame:
    """:func:`_funnel_counts` from the cached milestone frame instead of a new engine pass (the same rules, in pandas)."""
    ms = stage_milestones(store, definition, scope, cache=cache)
    n_stages = len(definition.stages)
    def naive(col: pd.Series) -> np.ndarray:  # UTC datetime64 values, NaT where missing
        return pd.to_datetime(col, utc=True).dt.tz_localize(None).to_numpy(dtype="datetime64[us]")

    entered = {k: naive(ms.loc[ms["stage_order"] == k, "entered_at"]) for k in range(n_stages)}
    cust = ms[ms["stage_order"] == 0]
    signup = naive(cust["signup_at"])
    churned = cust["churned_at"].notna().to_numpy()
    ended = naive(cust["ended_at"])
    as_of = pd.Timestamp(scope.as_of).tz_convert("UTC").tz_localize(None).to_datetime64().astype("datetime64[us]")
    drop_days = definition.conventions.drop_after_days
    frame = pd.DataFrame({"grp": np.full(len(cust), "all", dtype=object) if by is None else cust["signup_at" if by == "cohort" else by].to_numpy()})
    for k in range(n_stages):
        from_signup = _waits_from_signup(definition, k)
        since = signup if from_signup else entered[k - 1]
        waiting = np.ones(len(cust), dtype=bool) if from_signup else ~pd.isna(since)
        reached = ~pd.isna(entered[k])
        gone = churned | (~pd.isna(ended) & (since <= ended))
        if drop_days is not None:
            waited = (as_of - since).astype("int64") / 1e6 / 86400.0  # microseconds, as the engine counts them
            gone = gone | (~pd.isna(since) & (waited > float(drop_days)))
        frame[f"e{k}"] = waiting.astype("int64")
        frame[f"r{k}"] = reached.astype("int64")
        frame[f"d{k}"] = (waiting & ~reached & gone).astype("int64")
    wide = frame.groupby("grp", dropna=False, sort=True).sum().reset_index()
    return _long_counts(wide, n_stages)


def funnel_data(
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
    by: str | None = None,
    cohort_freq: str = "Q",
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Return stage-to-stage conversion with Wilson intervals, censoring kept apart.

    Parameters
    ----------
    store, definition, as_of, segment, plan, signup_from, signup_to, sample_n, scope, cache
        As in :func:`milestones_data`.
    by : {"segment", "plan", "cohort"}, optional
        Break the funnel down by this customer attribute (cohort = signup
        period of ``cohort_freq``).
    cohort_freq : str, default "Q"
        Pandas period alias for signup cohorts (``"M"``, ``"Q"``).
    alpha : float, default 0.05
        1 - confidence level of the intervals.

    Returns
    -------
    pandas.DataFrame
        One row per (group ×) stage: ``group`` (the ``by`` value, or
        ``"all"``); ``stage``; ``stage_order``; ``reached`` (customers who
        entered the stage; for a free-order stage, every customer whose rule
        holds); ``eligible`` (customers waiting for the stage — the
        denominator: those who entered the previous stage, or, for the first
        stage and free-order stages, all customers in scope); ``converted`` (=
        reached); ``dropped`` (eligible, did not reach it, and churned, had
        their journey ended by an outcome of ``kind: drop``, or waited more
        than drop_after_days); ``censored`` (eligible, not reached, still in
        progress at as_of — not a drop-off); ``conversion_rate``
        = converted / (converted + dropped), the rate among customers whose
        outcome is known; ``ci_low``, ``ci_high`` (Wilson interval of
        conversion_rate); ``reached_share`` = converted / eligible (a lower
        bound while customers are censored); ``share_of_start`` = reached / customers in
        the first stage.

    Raises
    ------
    ValueError
        If ``by`` is not one of segment, plan, cohort.
    EmptyResultError
        If no customer is in scope.
    """
    if by is not None and by not in GROUPABLE:
        msg = f"by must be one of {', '.join(GROUPABLE)} or None; got {by!r}"
        raise ValueError(msg)
    with _one_connection(store, cache):
        scope = Scope.resolve(store, scope, function="funnel_data", segment_field=definition.segment_field, as_of=as_of, segment=segment, plan=plan, signup_from=signup_from,
                              signup_to=signup_to, sample_n=sample_n)
        stage_names = definition.stage_names
        counts = _funnel_counts(store, definition, scope, by) if cache is None else _funnel_counts_of(store, definition, scope, by, cache)
        if by == "cohort":
            counts = _with_cohort(counts.rename(columns={"grp": "signup_at"}), cohort_freq)
            counts = counts.groupby(["cohort", "k"])[["eligible", "reached", "dropped"]].sum().reset_index().rename(columns={"cohort": "grp"})
        rows = []
        for g in sorted(counts["grp"].dropna().unique()):
            part = counts[counts["grp"] == g].set_index("k")
            start = int(part.loc[0, "reached"])
            for k, name in enumerate(stage_names):
                reached, eligible, dropped = (int(part.loc[k, col]) for col in ("reached", "eligible", "dropped"))
                rows.append(
                    {"group": str(g), "stage": name, "stage_order": k, "reached": reached, "eligible": eligible,
                     "converted": reached, "dropped": dropped, "censored": eligible - reached - dropped, "start": start}
                )
        out = pd.DataFrame(rows)
        known = out["converted"] + out["dropped"]
        out["conversion_rate"] = np.where(known > 0, out["converted"] / known.where(known > 0, 1), np.nan)
        out["ci_low"], out["ci_high"] = wilson_interval(out["converted"], known, alpha=alpha)
        out["reached_share"] = np.where(out["eligible"] > 0, out["converted"] / out["eligible"].where(out["eligible"] > 0, 1), np.nan)
        out["share_of_start"] = np.where(out["start"] > 0, out["reached"] / out["start"].where(out["start"] > 0, 1), np.nan)
        out["stage"] = pd.Categorical(out["stage"], categories=stage_names, ordered=True)
        return out.drop(columns=["start"])


def time_to_convert_data(
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
    by: str | None = None,
    cohort_freq: str = "Q",
) -> pd.DataFrame:
    """Return the distribution of days from entering one stage to entering the next.

    Only customers who made the transition contribute (a distribution among
    converters; the funnel's ``censored`` column says how many are still on
    the way). A free-order stage is timed from signup, whatever the earlier
    stages: every customer who entered it contributes.

    Returns
    -------
    pandas.DataFrame
        One row per (group ×) transition: ``group``; ``from_stage`` (the
        previous stage; for a free-order stage the first stage when its rule
        is ``signup``, else ``"signup"``); ``to_stage``; ``stage_order`` (of
        ``to_stage``); ``n`` (customers who made it); ``p25``, ``median``,
        ``p75``, ``p90``, ``mean`` (days).
    """
    if by is not None and by not in GROUPABLE:
        msg = f"by must be one of {', '.join(GROUPABLE)} or None; got {by!r}"
        raise ValueError(msg)
    scope = Scope.resolve(store, scope, function="time_to_convert_data", segment_field=definition.segment_field, as_of=as_of, segment=segment, plan=plan, signup_from=signup_from,
                          signup_to=signup_to, sample_n=sample_n)
    ms = _with_cohort(stage_milestones(store, definition, scope, cache=cache), cohort_freq)
    ms = ms.sort_values(["customer_id", "stage_order"])
    ms["prev_entered"] = ms.groupby("customer_id")["entered_at"].shift(1)
    free = [k for k in range(len(definition.stages)) if k > 0 and _waits_from_signup(definition, k)]
    from_signup = ms["stage_order"].isin(free)
    ms.loc[from_signup, "prev_entered"] = ms.loc[from_signup, "signup_at"]  # a free-order stage's clock starts at signup
    ms["days"] = (ms["entered_at"] - ms["prev_entered"]).dt.total_seconds() / 86400.0
    made = ms[ms["stage_order"].gt(0) & ms["days"].notna()]
    names = definition.stage_names
    signup_name = names[0] if definition.stages[0].rule == "signup" else "signup"
    keys = ["group", "stage_order"]
    made = made.assign(group=made[by].astype(str) if by else "all")
    agg = made.groupby(keys)["days"].agg(
        n="count",
        p25=lambda x: x.quantile(0.25),
        median="median",
        p75=lambda x: x.quantile(0.75),
        p90=lambda x: x.quantile(0.90),
        mean="mean",
    ).reset_index()
    agg["from_stage"] = [signup_name if k in free else names[k - 1] for k in agg["stage_order"]]
    agg["to_stage"] = [names[k] for k in agg["stage_order"]]
    return agg[["group", "from_stage", "to_stage", "stage_order", "n", "p25", "median", "p75", "p90", "mean"]]


def progress_data(
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
    min_peers: int = 20,
) -> pd.DataFrame:
    """Return whether each customer still in a stage is on track, behind or stuck.

    Peers are customers of the same segment who progressed out of the same
    stage; their days-in-stage give the 50th, 75th and 90th percentiles.
    ``on_track`` means days so far ≤ p75, ``behind`` ≤ p90, ``stuck`` > p90.
    With fewer than ``min_peers`` peers in the segment, all segments are used
    (``peer_group`` says which).

    Returns
    -------
    pandas.DataFrame
        One row per customer in progress at as_of: ``customer_id``,
        ``segment``, ``stage``, ``stage_order``, ``entered_at``,
        ``days_in_stage`` (so far), ``peer_group`` (segment name or ``"all"``),
        ``peers`` (customers in the peer group who progressed), ``peer_p50``,
        ``peer_p75``, ``peer_p90`` (days), ``percentile`` (share of peers who
        left the stage faster than this customer has been in it),
        ``progress`` (``on_track``, ``behind``, ``stuck``, or ``no_peers``).
    """
    scope = Scope.resolve(store, scope, function="progress_data", segment_field=definition.segment_field, as_of=as_of, segment=segment, plan=plan,
                          signup_from=signup_from, signup_to=signup_to, sample_n=sample_n)
    # peers come from every segment and every customer, whatever the segment and sample shown
    iv = stage_intervals_data(store, definition=definition, scope=scope.replace(segment=None, sample_n=0), cache=cache)
    done = iv[iv["status"] == "progressed"]
    cur = iv[iv["status"] == "in_progress"].copy()
    if scope.segment is not None:
        cur = cur[cur["segment"] == scope.segment]
    if scope.sample_n:  # the scope's own seeded sample, as in every other analysis
        sampled = store.query(f"SELECT customer_id FROM ({scope.customers_sql()})")["customer_id"]
        cur = cur[cur["customer_id"].isin(sampled)]
    rows = []
    for (stage_order, segment_value), grp in cur.groupby(["stage_order", "segment"], observed=True, dropna=False):
        peers = done[(done["stage_order"] == stage_order) & (done["segment"] == segment_value)]["days_in_stage"]
        group_name = str(segment_value)
        if len(peers) < min_peers:
            peers = done[done["stage_order"] == stage_order]["days_in_stage"]
            group_name = "all"
        vals = np.sort(peers.to_numpy())
        p50, p75, p90 = (np.quantile(vals, q) if len(vals) else np.nan for q in (0.5, 0.75, 0.9))
        pct = np.searchsorted(vals, grp["days_in_stage"].to_numpy(), side="right") / len(vals) if len(vals) else np.full(len(grp), np.nan)
        g = grp.assign(peer_group=group_name, peers=len(vals), peer_p50=p50, peer_p75=p75, peer_p90=p90, percentile=pct)
        rows.append(g)
    if not rows:
        msg = "no customer is in progress in any stage at as_of; nothing to track."
        raise EmptyResultError(msg)
    out = pd.concat(rows, ignore_index=True)
    d = out["days_in_stage"]
    out["progress"] = np.select(
        [out["peers"] < 1, d <= out["peer_p75"], d <= out["peer_p90"]],
        ["no_peers", "on_track", "behind"],
        default="stuck",
    )
    cols = ["customer_id", "segment", "stage", "stage_order", "entered_at", "days_in_stage", "peer_group", "peers",
            "peer_p50", "peer_p75", "peer_p90", "percentile", "progress"]
    return out[cols].sort_values(["stage_order", "customer_id"]).reset_index(drop=True)


def progress_counts_data(progress: pd.DataFrame) -> pd.DataFrame:
    """Count the customers of :func:`progress_data` by stage and progress.

    Parameters
    ----------
    progress : pandas.DataFrame
        What :func:`progress_data` returned.

    Returns
    -------
    pandas.DataFrame
        One row per stage in progress (index ``stage``), one column per
        ``progress`` value (``on_track``, ``behind``, ``stuck``, ``no_peers``
        — those that occur), each the number of customers; 0 where none.
    """
    return progress.value_counts(["stage", "progress"]).unstack(fill_value=0)
