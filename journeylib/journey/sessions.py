"""Sessions: events split where ``gap_minutes`` pass without an event, computed in the engine."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import pandas as pd

from journeylib.cache import ResultCache
from journeylib.journey.scoped_events import scoped_event_count
from journeylib.scope import Scope
from journeylib.store import Store
from journeylib.store.dialect import (
    sql_days_between,
    sql_epoch_microseconds,
    sql_quote,
    sql_rank_columns,
    sql_ranked_quantile,
    sql_timestamp,
)

__all__ = ["SORTED_MEDIANS_FROM_EVENTS", "sessions_data"]

#: Events in scope (after the ``sources`` filter) from which :func:`sessions_data` takes the per-customer
#: medians from window sorts rather than exact ``median`` aggregates; both give the same bits. The
#: aggregate keeps every session of a customer in memory and DuckDB does not spill it: at 100M events
#: (43M sessions) it failed under the 600MB read-only limit. The sorts spill, but at 10M events (where
#: the aggregates complete under 600MB) they took 8.6 s against 7.1 s. Set for the default 600MB
#: limit: a lower ``JOURNEYLIB_MEMORY_LIMIT`` may need a lower threshold.
SORTED_MEDIANS_FROM_EVENTS = 20_000_000


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
    cache: ResultCache | None = None,
    gap_minutes: float = 30.0,
    sources: Sequence[str] | None = None,
    level: Literal["customer", "session"] = "customer",
) -> pd.DataFrame:
    """Sessionise events in the engine: a new session starts after ``gap_minutes`` without events.

    From :data:`SORTED_MEDIANS_FROM_EVENTS` events in scope the per-customer
    medians are taken from window sorts, which DuckDB spills, instead of exact
    ``median`` aggregates, which it does not; both give the same bits.

    Parameters
    ----------
    store : Store
        The canonical store.
    as_of, segment, plan, signup_from, signup_to, sample_n, scope
        Scope, as in :func:`journeylib.journey.stages.milestones_data`.
    cache : ResultCache, optional
        Shares the count of the scope's events with the other analyses of a
        context (:func:`journeylib.journey.scoped_events.scoped_event_counts`).
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
    keep = f" AND e.source IN ({', '.join(sql_quote(s) for s in sources)})" if sources else ""
    gap_us = round(gap_minutes * 60_000_000)
    us = sql_epoch_microseconds
    # One window sort over (customer number, epoch microseconds) marks each event that starts a session
    # (no previous event, or more than gap_us since it) or ends one (no next event, or more than gap_us
    # until it); a second window over the marked rows only (about two per session) pairs each start
    # with the end that follows it. Ordering by timestamp alone is enough: events with equal timestamps
    # are never split by a gap (the gap between them is 0), so whatever order the sort puts peers in,
    # only the first of them can start a session and only the last can end one, and the session's
    # first and last timestamps and its number of events (a difference of row numbers) are the same.
    # Customers are numbered and timestamps are integer epoch microseconds, so the sort compares
    # integers (faster and smaller than customer ids and time-zone-aware timestamps at 10M events).
    # The end test is spelt `us - lead(us) OVER w >= -gap`: Spark's parser reads `OVER w - us` as a window name.
    sessions = f"""
        WITH cust AS (
            SELECT customer_id, CAST(row_number() OVER (ORDER BY customer_id) AS INTEGER) AS k FROM ({scope.customers_sql()}) c0
        ),
        ev AS (
            SELECT c.k, e.timestamp, {us("e.timestamp")} AS us
            FROM events e JOIN cust c ON e.customer_id = c.customer_id
            WHERE {scope.events_time_sql("e")}{keep}
        ),
        marked AS (
            SELECT k, timestamp, us, row_number() OVER w AS rn,
                   CASE WHEN us - lag(us) OVER w <= {gap_us} THEN 0 ELSE 1 END AS starts,
                   CASE WHEN us - lead(us) OVER w >= {-gap_us} THEN 0 ELSE 1 END AS ends
            FROM ev WINDOW w AS (PARTITION BY k ORDER BY us)
        ),
        bounds AS (
            SELECT k, timestamp, us, rn, starts, ends,
                   lead(timestamp) OVER w AS next_timestamp, lead(us) OVER w AS next_us, lead(rn) OVER w AS next_rn,
                   sum(starts) OVER (PARTITION BY k ORDER BY rn ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS session
            FROM marked WHERE starts = 1 OR ends = 1 WINDOW w AS (PARTITION BY k ORDER BY rn)
        ),
        spans AS (
            SELECT k, session, timestamp AS started_at, us AS start_us,
                   CASE WHEN ends = 1 THEN timestamp ELSE next_timestamp END AS ended_at,
                   CASE WHEN ends = 1 THEN us ELSE next_us END AS end_us,
                   CASE WHEN ends = 1 THEN rn ELSE next_rn END - rn + 1 AS events
            FROM bounds WHERE starts = 1
        )
        SELECT c.customer_id, CAST(s.session AS BIGINT) AS session, s.started_at, s.ended_at, CAST(s.events AS BIGINT) AS events,
               (s.end_us / 1000000.0 - s.start_us / 1000000.0) / 60.0 AS duration_minutes
        FROM spans s JOIN cust c ON c.k = s.k
    """
    if level == "session":
        return store.query(f"SELECT customer_id, session, started_at, ended_at, events, duration_minutes FROM ({sessions}) ORDER BY customer_id, session")
    asof = sql_timestamp(scope.as_of)
    # At SORTED_MEDIANS_FROM_EVENTS events and above the medians come from two window sorts per customer
    # (positions and counts) and a plain GROUP BY, which spill; the result is bit for bit DuckDB's median
    # (see sql_ranked_quantile). Below it the median aggregates are faster and fit in memory.
    n_events = scoped_event_count(store, scope, sources=sources, cache=cache)
    if n_events >= SORTED_MEDIANS_FROM_EVENTS:
        ranked = (
            f"SELECT *, {sql_rank_columns('duration_minutes', partition_by='customer_id', name='dm')}, "
            f"{sql_rank_columns('events', partition_by='customer_id', name='ev')} FROM ({sessions}) s"
        )
        medians = (sql_ranked_quantile("duration_minutes", name="dm", probability=0.5),
                   sql_ranked_quantile("events", name="ev", probability=0.5))
    else:
        ranked, medians = sessions, ("median(duration_minutes)", "median(events)")
    return store.query(
        f"""SELECT customer_id, count(*) AS sessions, CAST(sum(events) AS BIGINT) AS events,
                   {medians[0]} AS median_session_minutes, {medians[1]} AS median_events_per_session,
                   min(started_at) AS first_session_at, max(ended_at) AS last_session_at,
                   count(*) / greatest({sql_days_between("min(started_at)", asof)} / 7.0, 1.0) AS sessions_per_week
            FROM ({ranked}) GROUP BY customer_id ORDER BY customer_id"""
    )
