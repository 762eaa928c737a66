"""Loops: repeated attempts and returns after a gap, per customer and per stage.

A *repeated attempt* is a customer doing the same action on the same object
again, for actions most customers do exactly once (``attempt_events``
overrides the choice), e.g. the same ``setup_step_completed`` step twice.
"The same action on the same object" compares the event name and the
properties that **identify the object** (:func:`attempt_keys_data`), not the
whole properties JSON: three tries of a step that carry different attempt
ids, timestamps, durations or error messages are one action repeated three
times. Which keys identify the object is configurable (``identity_keys``);
by default every property key identifies it except the volatile ones:

* keys named like a time (``ts``, ``time``, ``timestamp``, ``date``,
  ``datetime``, ``*_at``, ``*_time``, ``*_ts``, ``*_date``, ``*_ms``,
  ``duration*``, ``elapsed*``, ``latency*``),
* keys named like the id of an attempt rather than of the object (``id``,
  ``uuid``, ``guid``, ``nonce``, ``attempt*``, ``retry*``, and ``request``,
  ``session``, ``event``, ``trace``, ``span``, ``message``, ``correlation``
  or ``idempotency`` followed by ``_id``, ``_key`` or ``_uuid``),
* keys naming how the attempt went (``status``, ``result``, ``outcome``,
  ``error*``, ``success``, ``failure``, ``failed``, ``reason``),
* keys whose values look like timestamps (ISO date-times, or numbers of
  10 or more digits, i.e. epoch seconds or milliseconds) in a sample of up
  to 200 of the event's rows.

A *return after a gap* is an activity event that follows ``gap_days`` or more
without activity (events of e-mail and CRM sources — canonical
``email``/``crm``, or SendGrid, Mailchimp, Salesforce, HubSpot — are the
company's, not the customer's, and neither break nor end a gap). A loop
belongs to the stage the customer was in at that moment (by ``entered_at``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from journeylib.cache import ResultCache
from journeylib.scope import Scope
from journeylib.store import Store
from journeylib.store.categories import sources_of
from journeylib.store.dialect import (
    sql_cast,
    sql_days_between,
    sql_epoch_microseconds,
    sql_json_text,
    sql_nth_smallest,
    sql_quote,
    sql_semi_join,
)
from journeylib.store.memory import bounded_memory

__all__ = ["COMPANY_SOURCES", "VOLATILE_KEY_PATTERN", "attempt_keys_data", "loop_events_data", "loop_events_frame", "loops_by_stage"]

#: Source categories (:mod:`journeylib.store.categories`) whose events the company sends, not the customer does
#: (they do not break inactivity gaps): the canonical ``email`` and ``crm`` sources and every
#: SendGrid, Mailchimp, Salesforce or HubSpot source.
COMPANY_SOURCES: tuple[str, ...] = ("email", "crm")

#: Property keys (lower case) that describe one attempt, not the object attempted: times, attempt ids, outcomes,
#: and what analytics SDKs add to every event: Mixpanel's reserved and default properties (``$insert_id``, unique
#: per event, ``$browser``, ``$os``, ``$email``, ...: a leading ``$``) and library properties (``mp_lib``, ...),
#: de-duplication and device ids (``insert_id``, ``device_id``); and who did it rather than what was attempted:
#: person and account ids (``distinct_id``, ``user_id``, ``amplitude_id``, ``email``, ...), whose values differ
#: between customers, so that no action would be shared by enough customers to count as an attempt type.
VOLATILE_KEY_PATTERN = re.compile(
    r"^(?:ts|time|timestamp|date|datetime|id|uuid|guid|nonce|status|result|outcome|success|failure|failed|reason)$"
    r"|(?:_at|_time|_ts|_date|_datetime|_timestamp|_ms|_seconds|_secs)$"
    r"|^(?:duration|elapsed|latency|attempt|retry|retries|error)"
    r"|^(?:request|session|event|trace|span|message|correlation|idempotency|insert|device)_?(?:id|key|uuid)$"
    r"|^\$|^mp_"
    r"|^(?:distinct|user|amplitude|person|contact|visitor|anonymous|customer|account)_?id$|^(?:email|e_mail|user|username)$"
)
#: Rows per event read to find its property keys and recognise timestamp-like values.
KEY_SAMPLE_ROWS = 200
_ISO_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")
_EPOCH = re.compile(r"^-?\d{10,}(?:\.\d+)?$")
_SEP = "; "


def _timestamp_like(values: list[Any]) -> bool:
    """Tell whether most of the (non-null, scalar) values look like a date-time or an epoch number."""
    texts = [str(v) for v in values if v is not None and not isinstance(v, (dict, list, bool))]
    if not texts:
        return False
    hits = sum(bool(_ISO_TIME.match(t) or _EPOCH.match(t)) for t in texts)
    return hits > len(texts) / 2


def _key_roles(store: Store, scope: Scope, identity_keys: Sequence[str] | Mapping[str, Sequence[str]] | None) -> pd.DataFrame:
    """Return ``event``, ``key``, ``identifies``, ``reason``, ``rows_sampled`` for every property key seen."""
    cols = ["event", "key", "identifies", "reason", "rows_sampled"]
    # The sample is each event's first rows in (customer_id, timestamp, event_id) order. A bounded top-n
    # aggregate finds the customer of its last row; numbering only the rows up to that customer avoids
    # sorting every event of the scope. (The rows are read twice rather than kept: keeping every event's
    # properties costs more than reading them again.)
    with_props = f"SELECT event, customer_id, timestamp, event_id, properties FROM ({scope.events_sql()}) e WHERE properties IS NOT NULL"
    sample = store.query(
        f"""SELECT event, p FROM (
                SELECT w.event, {sql_cast('w.properties', 'text')} AS p,
                       row_number() OVER (PARTITION BY w.event ORDER BY w.customer_id, w.timestamp, w.event_id) AS rn
                FROM ({with_props}) w
                JOIN (SELECT event, {sql_nth_smallest('customer_id', KEY_SAMPLE_ROWS)} AS last_customer
                      FROM ({with_props}) f GROUP BY event) b ON w.event = b.event
                WHERE b.last_customer IS NULL OR w.customer_id <= b.last_customer
            ) WHERE rn <= {KEY_SAMPLE_ROWS} ORDER BY event, rn"""
    )
    values: dict[tuple[str, str], list[Any]] = {}
    rows_per_event: dict[str, int] = {}
    for event, text in zip(sample["event"].astype(str), sample["p"], strict=True):  # at most KEY_SAMPLE_ROWS per event
        rows_per_event[event] = rows_per_event.get(event, 0) + 1
        try:
            obj = json.loads(text) if isinstance(text, str) else None
        except ValueError:
            continue
        if not isinstance(obj, dict):
            continue
        for key, value in obj.items():
            values.setdefault((event, str(key)), []).append(value)
    rows = []
    for (event, key), vals in sorted(values.items()):
        if identity_keys is not None:
            chosen = identity_keys.get(event, ()) if isinstance(identity_keys, Mapping) else identity_keys
            identifies = key in set(chosen)
            reason = "named in identity_keys" if identifies else "not named in identity_keys"
        elif VOLATILE_KEY_PATTERN.search(key.lower()):
            identifies, reason = False, "name of a time, an attempt id or an attempt's outcome"
        elif _timestamp_like(vals):
            identifies, reason = False, "values look like timestamps"
        else:
            identifies, reason = True, "identifies the object (default rule)"
        rows.append({"event": event, "key": key, "identifies": identifies, "reason": reason, "rows_sampled": rows_per_event[event]})
    return pd.DataFrame(rows, columns=cols)


def _object_sql(keys: Sequence[str]) -> str:
    """Return SQL of the values of *keys* in ``properties`` as ``key=value`` pairs joined by ``; `` (missing values empty)."""
    if not keys:
        return "''"
    return f" || {sql_quote(_SEP)} || ".join(f"{sql_quote(k + '=')} || coalesce({sql_json_text('properties', k)}, '')" for k in sorted(set(keys)))


def _identity_sql(roles: pd.DataFrame, identity_keys: Sequence[str] | Mapping[str, Sequence[str]] | None) -> str:
    """Return SQL of the object an event is about: its identifying properties' values as one text (empty without any)."""
    if identity_keys is not None and not isinstance(identity_keys, Mapping):
        return _object_sql(list(identity_keys))  # the same keys for every event
    if isinstance(identity_keys, Mapping):
        per_event = {str(e): list(ks) for e, ks in identity_keys.items()}
    else:
        per_event = {}
        for r in roles[roles["identifies"]].itertuples():
            per_event.setdefault(str(r.event), []).append(str(r.key))
    whens = [f"WHEN {sql_quote(e)} THEN {_object_sql(ks)}" for e, ks in sorted(per_event.items()) if ks]
    return f"CASE event {' '.join(whens)} ELSE '' END" if whens else "''"


def attempt_keys_data(
    store: Store,
    *,
    as_of: Any = None,
    segment: str | None = None,
    plan: str | None = None,
    signup_from: Any = None,
    signup_to: Any = None,
    sample_n: int = 0,
    scope: Scope | None = None,
    identity_keys: Sequence[str] | Mapping[str, Sequence[str]] | None = None,
) -> pd.DataFrame:
    """Return which property keys of each event identify the object of a repeated attempt.

    Parameters
    ----------
    store : Store
        The canonical store.
    as_of, segment, plan, signup_from, signup_to, sample_n, scope
        Scope, as in :func:`journeylib.journey.stages.milestones_data`.
    identity_keys : list of str, or dict of event to list of str, optional
        The keys that identify the object (for every event, or per event);
        every other key is ignored. Default: the rule of the module
        docstring (every key except the volatile ones).

    Returns
    -------
    pandas.DataFrame
        One row per event × property key seen in a sample of up to 200 rows
        of the event: ``event``, ``key``, ``identifies`` (bool: compared
        when telling whether two events are the same attempt), ``reason``
        (why), ``rows_sampled`` (rows of the event read). Empty (with these
        columns) when no event has properties.
    """
    scope = Scope.resolve(store, scope, function="attempt_keys_data", as_of=as_of, segment=segment, plan=plan,
                          signup_from=signup_from, signup_to=signup_to, sample_n=sample_n)
    return _key_roles(store, scope, identity_keys)


def _identity_keys_key(identity_keys: Sequence[str] | Mapping[str, Sequence[str]] | None) -> Any:
    """Return a hashable stand-in for *identity_keys* (a cache key)."""
    if identity_keys is None:
        return None
    if isinstance(identity_keys, Mapping):
        return ("per event", tuple(sorted((str(e), tuple(str(k) for k in ks)) for e, ks in identity_keys.items())))
    return ("every event", tuple(str(k) for k in identity_keys))


def _repeated_actions(store: Store, scope: Scope, ident: str, attempt_once_share: float) -> pd.DataFrame:
    """Return the customers' actions done twice or more (``customer_id``, ``event``, ``p``) among the attempt types.

    An attempt type is an action (``event``, ``p``: identifying properties) that most customers doing it
    do exactly once (and at least 5 do). The types and the repeated actions come from one count per
    customer and action, so the properties of every event are read once.
    """
    return store.query(
        f"""WITH ev AS (SELECT customer_id, event, coalesce({ident}, '') AS p FROM ({scope.events_sql()})),
            per_customer AS (SELECT customer_id, event, p, count(*) AS n FROM ev GROUP BY customer_id, event, p),
            types AS (
                SELECT event, p FROM per_customer GROUP BY event, p
                HAVING avg(CASE WHEN n = 1 THEN 1.0 ELSE 0.0 END) >= {float(attempt_once_share)} AND count(*) >= 5
            )
            SELECT pc.customer_id, pc.event, pc.p
            FROM {sql_semi_join("per_customer pc", "types t", "pc.event = t.event AND pc.p = t.p")} WHERE pc.n >= 2"""
    )


def _compute_loop_events(
    store: Store,
    scope: Scope,
    attempt_events: Sequence[str] | None,
    gap_days: float,
    attempt_once_share: float,
    identity_keys: Sequence[str] | Mapping[str, Sequence[str]] | None,
) -> pd.DataFrame:
    """Return the loop events (``customer_id``, ``timestamp``, ``kind``, ``event``, ``object``), unsorted.

    Two statements: the customers' actions done twice or more among those
    counted as attempts (skipped when ``attempt_events`` names them), then
    the repeated attempts (identifying properties extracted again only from
    those customers' events of those names) and the returns after a gap. A
    return is the first activity event (in the order ``timestamp``,
    ``source``, ``event``, ``event_id``) at a moment of activity that follows
    the customer's previous moment of activity by ``gap_days`` or more;
    events at the same moment as an earlier one follow no gap.
    """
    company = ", ".join(sql_quote(s) for s in sources_of(store, COMPANY_SOURCES))
    ident = _identity_sql(_key_roles(store, scope, identity_keys), identity_keys)
    repeated_actions: pd.DataFrame | None = None
    if attempt_events is not None:
        names = sorted({str(n) for n in attempt_events})  # every action of these events is an attempt
    else:
        # only the customers' actions done twice or more are read again (most are done once)
        repeated_actions = _repeated_actions(store, scope, ident, attempt_once_share)
        names = sorted(set(repeated_actions["event"].astype(str)))
    parts: list[str] = []
    ctes: list[str] = []
    if names:
        if repeated_actions is None:
            attempts = f"""SELECT customer_id, timestamp, event, event_id, coalesce({ident}, '') AS p
                           FROM ({scope.events_sql()}) e WHERE event IN ({", ".join(sql_quote(n) for n in names)})"""
            repeated = f"SELECT customer_id, event, p FROM ({attempts}) t GROUP BY customer_id, event, p HAVING count(*) >= 2"
        else:  # the properties of a customer's events of the repeated actions' names only
            pairs = "SELECT DISTINCT customer_id, event FROM _jl_repeated"
            attempts = f"""SELECT customer_id, timestamp, event, event_id, coalesce({ident}, '') AS p
                           FROM {sql_semi_join(f"({scope.events_sql()}) e", f"({pairs}) r", "e.customer_id = r.customer_id AND e.event = r.event")}"""
            repeated = "SELECT customer_id, event, p FROM _jl_repeated"
        # only the actions a customer did twice or more are numbered
        twice = sql_semi_join(f"({attempts}) t", f"({repeated}) r", "t.customer_id = r.customer_id AND t.event = r.event AND t.p = r.p")
        ctes.append(
            f"""numbered AS (
                SELECT t.customer_id, t.timestamp, t.event, t.p,
                       row_number() OVER (PARTITION BY t.customer_id, t.event, t.p ORDER BY t.timestamp, t.event_id) AS rn
                FROM {twice}
            )"""
        )
        parts.append("SELECT customer_id, timestamp, 'repeated attempt' AS kind, event, p AS object FROM numbered WHERE rn >= 2")
    activity = f"""SELECT customer_id, timestamp, event, event_id, coalesce(source, '') AS source
                   FROM ({scope.events_sql()}) e WHERE coalesce(source, '') NOT IN ({company})"""
    # Ordered by time alone, exactly one event of each moment (customer, timestamp) can follow the gap: the
    # first of the moment's events in the arbitrary order of the ties; the others follow it by 0 days. The
    # sort compares integers (customer numbers, epoch microseconds), not customer ids and time-zone-aware
    # timestamps; the gap itself is measured on the timestamps.
    ctes.append(
        f"""cust AS (
            SELECT customer_id, CAST(row_number() OVER (ORDER BY customer_id) AS INTEGER) AS k FROM ({scope.customers_sql()}) c0
        ),
        gaps AS (
            SELECT c.k, a.timestamp, lag(a.timestamp) OVER (PARTITION BY c.k ORDER BY {sql_epoch_microseconds("a.timestamp")}) AS prev_ts
            FROM ({activity}) a JOIN cust c ON a.customer_id = c.customer_id
        ),
        returns AS (
            SELECT c.customer_id, g.timestamp FROM gaps g JOIN cust c ON g.k = c.k
            WHERE g.prev_ts IS NOT NULL AND {sql_days_between("g.prev_ts", "g.timestamp")} >= {float(gap_days)}
        ),
        first_after AS (
            SELECT a.customer_id, a.timestamp, a.event,
                   row_number() OVER (PARTITION BY a.customer_id, a.timestamp ORDER BY a.source, a.event, a.event_id) AS k
            FROM ({activity}) a JOIN returns r ON a.customer_id = r.customer_id AND a.timestamp = r.timestamp
        )"""
    )
    parts.append("SELECT customer_id, timestamp, 'return after gap' AS kind, event, '' AS object FROM first_after WHERE k = 1")
    sql = f"WITH {', '.join(ctes)} {' UNION ALL '.join(parts)}"
    return store.query(sql) if repeated_actions is None or not names else store.query(sql, _jl_repeated=repeated_actions)


def loop_events_frame(
    store: Store,
    scope: Scope,
    *,
    attempt_events: Sequence[str] | None = None,
    gap_days: float = 14.0,
    attempt_once_share: float = 0.8,
    identity_keys: Sequence[str] | Mapping[str, Sequence[str]] | None = None,
    cache: ResultCache | None = None,
) -> pd.DataFrame:
    """Return the loop events of a scope (see :func:`loop_events_data`), unsorted, computed once per cache.

    Parameters
    ----------
    store : Store
        The canonical store.
    scope : Scope
        Customers and censoring date.
    attempt_events, gap_days, attempt_once_share, identity_keys
        As in :func:`loop_events_data`.
    cache : ResultCache, optional
        Shares the result between the analyses of one context (paths,
        conformance and friction read the same loop events).

    Returns
    -------
    pandas.DataFrame
        One row per loop event, in no particular order: ``customer_id``,
        ``timestamp`` (UTC), ``kind`` (``repeated attempt`` or ``return after
        gap``), ``event``, ``object``.

    Raises
    ------
    TypeError
        If ``identity_keys`` is a text instead of a list or a dict, or
        ``attempt_events`` a text instead of a list.
    ValueError
        If ``gap_days`` is not a positive number of days.
    """
    if isinstance(identity_keys, str):
        msg = f"loops: identity_keys must be a list of property keys or a dict of event to keys; got the text {identity_keys!r}"
        raise TypeError(msg)
    if not float(gap_days) > 0:
        msg = f"loops: gap_days must be a positive number of days (the inactivity before a return); got {gap_days!r}"
        raise ValueError(msg)
    if isinstance(attempt_events, str):
        msg = f"loops: attempt_events must be a list of event names; got the text {attempt_events!r}"
        raise TypeError(msg)

    def compute() -> pd.DataFrame:
        with bounded_memory(store):
            return _compute_loop_events(store, scope, attempt_events, gap_days, attempt_once_share, identity_keys)

    if cache is None:
        return compute()
    key = (
        id(store), scope, None if attempt_events is None else tuple(sorted({str(n) for n in attempt_events})),
        float(gap_days), float(attempt_once_share), _identity_keys_key(identity_keys),
    )
    return cache.get("loop_events", key, compute)


def loops_by_stage(
    store: Store,
    scope: Scope,
    iv: pd.DataFrame,
    attempt_events: Sequence[str] | None,
    gap_days: float,
    attempt_once_share: float,
    *,
    identity_keys: Sequence[str] | Mapping[str, Sequence[str]] | None = None,
    cache: ResultCache | None = None,
) -> pd.DataFrame:
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
    attempt_events, gap_days, attempt_once_share, identity_keys
        As in :func:`loop_events_data`.
    cache : ResultCache, optional
        Computes the loop events once per context (:func:`loop_events_frame`).

    Returns
    -------
    pandas.DataFrame
        ``customer_id``, ``stage_order``, ``kind`` (``repeated attempt`` or
        ``return after gap``), ``loops`` (events of that kind while in the
        stage), in no particular order.
    """
    loops = loop_events_frame(store, scope, attempt_events=attempt_events, gap_days=gap_days,
                              attempt_once_share=attempt_once_share, identity_keys=identity_keys, cache=cache)
    intervals = iv[["customer_id", "stage_order", "entered_at", "exited_at"]].copy()
    if loops.empty or intervals.empty:
        return pd.DataFrame({"customer_id": pd.Series(dtype=object), "stage_order": pd.Series(dtype=intervals["stage_order"].dtype),
                             "kind": pd.Series(dtype=object), "loops": pd.Series(dtype="int64")})
    intervals["exited_at"] = intervals["exited_at"].fillna(scope.as_of + pd.Timedelta(seconds=1))
    sql = """
        SELECT i.customer_id, i.stage_order, l.kind, count(*) AS loops
        FROM _jl_loops l
        JOIN _jl_intervals i ON l.customer_id = i.customer_id AND l.timestamp >= i.entered_at AND l.timestamp < i.exited_at
        GROUP BY i.customer_id, i.stage_order, l.kind"""
    return store.query(sql, _jl_loops=loops[["customer_id", "timestamp", "kind"]], _jl_intervals=intervals)


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
    identity_keys: Sequence[str] | Mapping[str, Sequence[str]] | None = None,
    cache: ResultCache | None = None,
) -> pd.DataFrame:
    """Return every loop event: repeated attempts and returns after a gap.

    Parameters
    ----------
    store : Store
        The canonical store.
    as_of, segment, plan, signup_from, signup_to, sample_n, scope
        Scope, as in :func:`journeylib.journey.stages.milestones_data`.
    attempt_events : list of str, optional
        Events whose repetition (same object) is a repeated attempt.
        Default: every action (event name + identifying properties) that at
        least ``attempt_once_share`` of the customers doing it do exactly
        once (and at least 5 customers do).
    gap_days : float, default 14
        Inactivity (days without events from sources other than ``email``
        and ``crm``) after which the next activity is a return.
    attempt_once_share : float, default 0.8
        See ``attempt_events``.
    identity_keys : list of str, or dict of event to list of str, optional
        Property keys that identify the object of an action (for every
        event, or per event); other keys are ignored when comparing two
        events. Default: every key except the volatile ones (times, attempt
        ids, outcomes; see the module docstring and
        :func:`attempt_keys_data`).
    cache : ResultCache, optional
        Shares the loop events with the other analyses of a context.

    Returns
    -------
    pandas.DataFrame
        One row per loop event: ``customer_id``; ``timestamp`` (UTC);
        ``kind`` (``repeated attempt`` or ``return after gap``); ``event``
        (the repeated event, or the first event after the gap); ``object``
        (the identifying properties of a repeated attempt as
        ``key=value`` pairs joined by ``; ``, keys in alphabetical order; empty
        for returns and for events without identifying properties). Sorted
        by customer, time, kind, event and object.

    Raises
    ------
    TypeError
        If ``identity_keys`` is a text instead of a list or a dict, or
        ``attempt_events`` a text instead of a list.
    ValueError
        If ``gap_days`` is not a positive number of days.
    """
    scope = Scope.resolve(store, scope, function="loop_events_data", as_of=as_of, segment=segment, plan=plan,
                          signup_from=signup_from, signup_to=signup_to, sample_n=sample_n)
    loops = loop_events_frame(store, scope, attempt_events=attempt_events, gap_days=gap_days,
                              attempt_once_share=attempt_once_share, identity_keys=identity_keys, cache=cache)
    return loops.sort_values(["customer_id", "timestamp", "kind", "event", "object"], kind="mergesort").reset_index(drop=True)
