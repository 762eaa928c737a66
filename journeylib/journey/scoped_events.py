"""The scope's events counted by name: one scan, shared by the analyses of a context.

:func:`journeylib.journey.sessions.sessions_data` and
:func:`journeylib.journey.transitions.event_transitions_data` both count the
scope's events before their main statement, to choose between exact quantile
aggregates and window sorts that spill (their ``SORTED_*_FROM_EVENTS``
thresholds), and event transitions keep the ``top_n`` most frequent events as
nodes. One ``GROUP BY event`` over the scope's events answers all three; with a
:class:`~journeylib.cache.ResultCache` (as :class:`journeylib.Journey` passes
it) it runs once per store and scope instead of once per question (a scan of
the events each: about 0.1–0.3 s at 10M events).
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from journeylib.cache import ResultCache
from journeylib.scope import Scope
from journeylib.store import Store
from journeylib.store.dialect import sql_quote

__all__ = ["scoped_event_count", "scoped_event_counts", "top_events"]


def scoped_event_counts(store: Store, scope: Scope, *, cache: ResultCache | None = None) -> pd.DataFrame:
    """Return the number of the scope's events (up to ``as_of``, inside the event window) per event name.

    Parameters
    ----------
    store : Store
        The canonical store.
    scope : Scope
        Which customers and events.
    cache : ResultCache, optional
        Reuse (and keep) the counts there, under ``"scoped_event_counts"``
        keyed by the store and the scope.

    Returns
    -------
    pandas.DataFrame
        ``event``, ``events`` (int); one row per event name the scope has,
        most frequent first, ties by name (the order of
        ``ORDER BY count(*) DESC, event``). Empty when the scope has no
        events.
    """

    def count() -> pd.DataFrame:
        return store.query(
            f"SELECT event, count(*) AS events FROM ({scope.events_sql()}) x GROUP BY event ORDER BY count(*) DESC, event"
        ).reset_index(drop=True)

    if cache is None:
        return count()
    return cache.get("scoped_event_counts", (id(store), scope), count)


def scoped_event_count(
    store: Store,
    scope: Scope,
    *,
    events: Sequence[str] | None = None,
    sources: Sequence[str] | None = None,
    cache: ResultCache | None = None,
) -> int:
    """Return the number of the scope's events, optionally of some event names or sources only.

    Parameters
    ----------
    store : Store
        The canonical store.
    scope : Scope
        Which customers and events.
    events : sequence of str, optional
        Count only these event names; empty or missing: every event.
    sources : sequence of str, optional
        Count only events of these sources; empty or missing: every source.
    cache : ResultCache, optional
        Where the counts are shared. With a cache, the count without a
        source filter is summed from :func:`scoped_event_counts` (one scan
        for every event filter and for :func:`top_events`), and a count by
        sources is a ``count(*)`` kept under ``"scoped_events"``. Without
        one, the count is a single ``count(*)`` (cheaper than counting by
        name when nothing else reads the counts).

    Returns
    -------
    int
        The number of events.

    Raises
    ------
    ValueError
        If both *events* and *sources* are given.
    """
    if events and sources:
        msg = f"scoped_event_count: filter by events or by sources, not both; got events={list(events)!r}, sources={list(sources)!r}"
        raise ValueError(msg)
    if sources or cache is None:  # a plain count(*) is cheaper than the counts by name when nothing shares them
        column, values = ("source", sources) if sources else ("event", events)
        where = f" WHERE {column} IN ({', '.join(sql_quote(v) for v in values)})" if values else ""

        def count() -> int:
            return int(store.query(f"SELECT count(*) AS n FROM ({scope.events_sql()}) x{where}")["n"].iloc[0])

        return count() if cache is None else cache.get("scoped_events", (id(store), scope, where), count)
    counts = scoped_event_counts(store, scope, cache=cache)
    if events:
        counts = counts[counts["event"].isin(list(events))]
    return int(counts["events"].sum())


def top_events(store: Store, scope: Scope, *, n: int, events: Sequence[str] | None = None, cache: ResultCache | None = None) -> list[str]:
    """Return the *n* most frequent event names of the scope (ties by name), optionally among some names only.

    Parameters
    ----------
    store : Store
        The canonical store.
    scope : Scope
        Which customers and events.
    n : int
        How many names (fewer when the scope has fewer).
    events : sequence of str, optional
        Choose among these names only; empty or missing: among all.
    cache : ResultCache, optional
        Where the counts are shared (:func:`scoped_event_counts`).

    Returns
    -------
    list of str
        The names, most frequent first.
    """
    counts = scoped_event_counts(store, scope, cache=cache)
    if events:
        counts = counts[counts["event"].isin(list(events))]
    return [str(e) for e in counts["event"].head(n)]
