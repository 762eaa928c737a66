"""Loops: repeated attempts and returns after a gap, per customer and per stage.

A *repeated attempt* is an event repeated with identical properties by a
customer, for events most customers do exactly once (``attempt_events``
overrides the choice), e.g. the same ``setup_step_completed`` step twice. A
*return after a gap* is an activity event that follows ``gap_days`` or more
without activity (events of e-mail and CRM sources — canonical
``email``/``crm``, or SendGrid, Mailchimp, Salesforce, HubSpot — are the
company's, not the customer's, and neither break nor end a gap). A loop
belongs to the stage the customer was in at that moment (by ``entered_at``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from journeylib.scope import Scope
from journeylib.store import Store
from journeylib.store.categories import sources_of
from journeylib.store.dialect import sql_cast, sql_days_between, sql_quote, sql_semi_join

__all__ = ["loop_events_data", "loops_by_stage"]

#: Source categories (:mod:`journeylib.store.categories`) whose events the company sends, not the customer does
#: (they do not break inactivity gaps): the canonical ``email`` and ``crm`` sources and every
#: SendGrid, Mailchimp, Salesforce or HubSpot source.
COMPANY_SOURCES: tuple[str, ...] = ("email", "crm")


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
                   coalesce({sql_cast('properties', 'text')}, '') AS p
            FROM ({scope.events_sql()})
        ),
        per_customer AS (SELECT customer_id, event, p, count(*) AS n FROM ev GROUP BY customer_id, event, p),
        attempt_types AS ({attempt_types}),
        numbered AS (
            SELECT ev.customer_id, ev.timestamp, ev.event,
                   row_number() OVER (PARTITION BY ev.customer_id, ev.event, ev.p ORDER BY ev.timestamp, ev.event_id) AS rn
            FROM {sql_semi_join('ev', 'attempt_types a', 'ev.event = a.event AND ev.p = a.p')}
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
        GROUP BY i.customer_id, i.stage_order, l.kind"""
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
