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

from journeylib.scope import Scope
from journeylib.store import Store
from journeylib.store.categories import sources_of
from journeylib.store.dialect import sql_cast, sql_days_between, sql_json_text, sql_quote, sql_semi_join

__all__ = ["COMPANY_SOURCES", "VOLATILE_KEY_PATTERN", "attempt_keys_data", "loop_events_data", "loops_by_stage"]

#: Source categories (:mod:`journeylib.store.categories`) whose events the company sends, not the customer does
#: (they do not break inactivity gaps): the canonical ``email`` and ``crm`` sources and every
#: SendGrid, Mailchimp, Salesforce or HubSpot source.
COMPANY_SOURCES: tuple[str, ...] = ("email", "crm")

#: Property keys (lower case) that describe one attempt, not the object attempted: times, attempt ids, outcomes.
VOLATILE_KEY_PATTERN = re.compile(
    r"^(?:ts|time|timestamp|date|datetime|id|uuid|guid|nonce|status|result|outcome|success|failure|failed|reason)$"
    r"|(?:_at|_time|_ts|_date|_datetime|_timestamp|_ms|_seconds|_secs)$"
    r"|^(?:duration|elapsed|latency|attempt|retry|retries|error)"
    r"|^(?:request|session|event|trace|span|message|correlation|idempotency)_?(?:id|key|uuid)$"
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
    sample = store.query(
        f"""SELECT event, p FROM (
                SELECT event, {sql_cast('properties', 'text')} AS p,
                       row_number() OVER (PARTITION BY event ORDER BY customer_id, timestamp, event_id) AS rn
                FROM ({scope.events_sql()}) WHERE properties IS NOT NULL
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


def _loop_events_sql(
    store: Store,
    scope: Scope,
    attempt_events: Sequence[str] | None,
    gap_days: float,
    attempt_once_share: float,
    identity_keys: Sequence[str] | Mapping[str, Sequence[str]] | None = None,
) -> str:
    """Return SQL of loop events: repeated attempts and returns after a gap (customer_id, timestamp, kind, event, object)."""
    if isinstance(identity_keys, str):
        msg = f"loops: identity_keys must be a list of property keys or a dict of event to keys; got the text {identity_keys!r}"
        raise TypeError(msg)
    company = ", ".join(sql_quote(s) for s in sources_of(store, COMPANY_SOURCES))
    ident = _identity_sql(_key_roles(store, scope, identity_keys), identity_keys)
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
                   coalesce({ident}, '') AS p
            FROM ({scope.events_sql()})
        ),
        per_customer AS (SELECT customer_id, event, p, count(*) AS n FROM ev GROUP BY customer_id, event, p),
        attempt_types AS ({attempt_types}),
        numbered AS (
            SELECT ev.customer_id, ev.timestamp, ev.event, ev.p,
                   row_number() OVER (PARTITION BY ev.customer_id, ev.event, ev.p ORDER BY ev.timestamp, ev.event_id) AS rn
            FROM {sql_semi_join('ev', 'attempt_types a', 'ev.event = a.event AND ev.p = a.p')}
        ),
        activity AS (
            SELECT customer_id, timestamp, event,
                   lag(timestamp) OVER (PARTITION BY customer_id ORDER BY timestamp, source, event, event_id) AS prev_ts
            FROM ev WHERE source NOT IN ({company})
        )
        SELECT customer_id, timestamp, 'repeated attempt' AS kind, event, p AS object FROM numbered WHERE rn >= 2
        UNION ALL
        SELECT customer_id, timestamp, 'return after gap' AS kind, event, '' AS object FROM activity
        WHERE prev_ts IS NOT NULL AND {sql_days_between("prev_ts", "timestamp")} >= {float(gap_days)}
    """


def loops_by_stage(
    store: Store,
    scope: Scope,
    iv: pd.DataFrame,
    attempt_events: Sequence[str] | None,
    gap_days: float,
    attempt_once_share: float,
    *,
    identity_keys: Sequence[str] | Mapping[str, Sequence[str]] | None = None,
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
        FROM ({_loop_events_sql(store, scope, attempt_events, gap_days, attempt_once_share, identity_keys)}) l
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
    identity_keys: Sequence[str] | Mapping[str, Sequence[str]] | None = None,
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

    Returns
    -------
    pandas.DataFrame
        One row per loop event: ``customer_id``; ``timestamp`` (UTC);
        ``kind`` (``repeated attempt`` or ``return after gap``); ``event``
        (the repeated event, or the first event after the gap); ``object``
        (the identifying properties of a repeated attempt as
        ``key=value`` pairs joined by ``; ``, keys in alphabetical order; empty
        for returns and for events without identifying properties). Sorted
        by customer and time.

    Raises
    ------
    TypeError
        If ``identity_keys`` is a text instead of a list or a dict.
    """
    scope = Scope.resolve(store, scope, function="loop_events_data", as_of=as_of, segment=segment, plan=plan,
                          signup_from=signup_from, signup_to=signup_to, sample_n=sample_n)
    sql = (
        f"SELECT * FROM ({_loop_events_sql(store, scope, attempt_events, gap_days, attempt_once_share, identity_keys)}) "
        "ORDER BY customer_id, timestamp, kind, event"
    )
    return store.query(sql)
