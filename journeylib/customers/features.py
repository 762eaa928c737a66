"""The customer feature table: early behaviour per account, with no look-ahead.

Every customer-level analysis of behaviour (behavioural segments, drivers of
churn and conversion, cohort comparisons) starts from the same table, built
here in the engine (a few SQL statements over the canonical tables, never Python
loops over events).

Conventions
-----------
* **The behaviour window** of a customer is ``[signup_at, signup_at +
  window_days)``. Every feature is computed from rows timestamped inside it
  (tickets by ``created_at``, users by ``created_at``), so nothing after the
  window can leak into a feature. Sub-window features (``7d``, ``14d`` ...)
  use ``[signup_at, signup_at + d)`` for every ``d`` in ``windows`` that is
  at most ``window_days``.
* **Complete windows only.** A customer whose window has not ended by
  ``as_of`` (``signup_at + window_days > as_of``) is left out of the table and
  counted in :attr:`CustomerFeatures.exclusions`; a
  :class:`~journeylib.exceptions.StatisticalWarning` says how many.
* **Account level.** One row per ``customer_id`` (the paying account); events
  of all its users are pooled.
* **Snapshot attributes.** ``segment``, ``plan`` and customer properties come
  from the customers table as exported (a snapshot at export time, not
  time-travelled to the window end): ``plan`` in particular is ``trial``
  until a customer converts, so it must not be used to explain conversion
  (:mod:`journeylib.customers.drivers` leaves it out then).
"""

from __future__ import annotations

import dataclasses
import json
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from journeylib.cache import ResultCache
from journeylib.config.journey import JourneyDefinition
from journeylib.exceptions import EmptyResultError, SchemaError, StatisticalWarning
from journeylib.journey.stages import milestones_data
from journeylib.scope import Scope
from journeylib.store import Store
from journeylib.store.categories import activity_source_names, sources_of
from journeylib.store.dialect import (
    sql_add_days,
    sql_cast,
    sql_days_between,
    sql_epoch_microseconds,
    sql_filtered,
    sql_json_text,
    sql_quote,
    sql_timestamp,
)
from journeylib.store.schema import CUSTOMERS, SEND_ID

__all__ = [
    "AUTO_ATTRIBUTE_MAX_LEVELS",
    "AUTO_ATTRIBUTE_MIN_COVERAGE",
    "DEFAULT_WINDOWS",
    "SESSION_GAP_MINUTES",
    "CustomerFeatures",
    "attribute_candidates_data",
    "attribute_column",
    "build_features",
    "customer_attributes_data",
    "customer_outcomes_data",
    "feature_slug",
]

#: Sub-windows (days after signup) of the count and "did X" features.
DEFAULT_WINDOWS: tuple[int, ...] = (7, 14, 30)
#: Inactivity gap that starts a new session.
SESSION_GAP_MINUTES = 30
_SLUG = re.compile(r"[^a-z0-9]+")
#: Most distinct values a properties key may have to be chosen as an attribute automatically.
AUTO_ATTRIBUTE_MAX_LEVELS = 12
#: Smallest share of the customers in scope a properties key must cover to be chosen automatically.
AUTO_ATTRIBUTE_MIN_COVERAGE = 0.5
_ID_NAME = re.compile(r"(^|[_\s-])(id|uuid|guid|key|email|e-mail|name|url|phone)$", re.IGNORECASE)
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")
#: Median length above which a key's values are free text, not levels.
_FREE_TEXT_CHARS = 40


def feature_slug(name: str) -> str:
    """Turn an event, stage or property name into a column-name fragment.

    Parameters
    ----------
    name : str
        Any name, e.g. ``"First Value Achieved"``.

    Returns
    -------
    str
        Lower case, runs of other characters replaced by ``_``.

    Examples
    --------
    >>> feature_slug("First Value Achieved")
    'first_value_achieved'
    """
    return _SLUG.sub("_", str(name).lower()).strip("_") or "x"


@dataclass(frozen=True)
class CustomerFeatures:
    """The customer feature table and how it was made.

    Attributes
    ----------
    data : pandas.DataFrame
        One row per customer with a complete behaviour window; columns are
        described in :attr:`catalog` (see :func:`build_features`).
    catalog : pandas.DataFrame
        One row per feature column: ``feature`` (column name), ``kind``
        (``count``, ``first_days``, ``numeric``, ``rate``, ``binary``,
        ``category``), ``source`` (events, sessions, messages, tickets, voc,
        stages, users, customers), ``event`` (event, stage or property name,
        or empty), ``window_days`` (window the feature covers; 0 for
        attributes), ``activity`` (True for events of an activity source),
        ``description`` (plain English).
    exclusions : pandas.DataFrame
        ``reason`` and ``customers``: customers in scope left out, and why.
    window_days : int
        The behaviour window.
    windows : tuple of int
        The sub-windows computed (each at most ``window_days``).
    as_of : pandas.Timestamp
        The censoring date.
    scope : Scope
        The filters used.
    """

    data: pd.DataFrame
    catalog: pd.DataFrame
    exclusions: pd.DataFrame
    window_days: int
    windows: tuple[int, ...]
    as_of: pd.Timestamp
    scope: Scope = field(repr=False)

    def copy(self) -> CustomerFeatures:
        """Return a copy whose tables can be changed without changing this one."""
        return dataclasses.replace(self, data=self.data.copy(), catalog=self.catalog.copy(), exclusions=self.exclusions.copy())

    @property
    def n_excluded(self) -> int:
        """Customers in scope left out (window not complete at as_of)."""
        return int(self.exclusions["customers"].sum()) if len(self.exclusions) else 0

    def columns_of(self, *kinds: str, source: str | None = None) -> list[str]:
        """Return the feature columns of the given kinds (and source), in table order.

        Parameters
        ----------
        *kinds : str
            Kinds as in :attr:`catalog`; none means every kind.
        source : str, optional
            Keep only features of this source.

        Returns
        -------
        list of str
            Column names.
        """
        cat = self.catalog
        mask = cat["kind"].isin(kinds) if kinds else pd.Series(True, index=cat.index)
        if source is not None:
            mask &= cat["source"] == source
        return cat.loc[mask, "feature"].tolist()


def _check_window(window_days: Any, windows: Sequence[int]) -> tuple[int, tuple[int, ...]]:
    if isinstance(window_days, bool) or not isinstance(window_days, (int, np.integer)) or window_days < 1:
        msg = f"window_days must be a positive whole number of days, e.g. 7 or 14; got {window_days!r}"
        raise ValueError(msg)
    bad = [w for w in windows if isinstance(w, bool) or not isinstance(w, (int, np.integer)) or w < 1]
    if bad:
        msg = f"windows must be positive whole numbers of days; got {list(windows)!r}"
        raise ValueError(msg)
    subs = tuple(sorted({int(w) for w in windows if w <= window_days} | {int(window_days)}))
    return int(window_days), subs


def build_features(
    store: Store,
    *,
    definition: JourneyDefinition | None = None,
    window_days: int = 14,
    windows: Sequence[int] = DEFAULT_WINDOWS,
    as_of: Any = None,
    segment: str | None = None,
    plan: str | None = None,
    signup_from: Any = None,
    signup_to: Any = None,
    sample_n: int = 0,
    random_state: int = 0,
    scope: Scope | None = None,
    cache: ResultCache | None = None,
    event_types: Sequence[str] | None = None,
    activity_sources: Sequence[str] | None = None,
    exclude_sources: Sequence[str] = ("crm",),
    property_keys: Sequence[str] = (),
    ticket_scores: pd.DataFrame | None = None,
) -> CustomerFeatures:
    """Build the customer feature table for the first ``window_days`` after signup.

    Parameters
    ----------
    store : Store
        The canonical store.
    definition : JourneyDefinition, optional
        When given, ``stage_<name>_by_<D>d`` features say which stages were
        entered within the window.
    window_days : int, default 14
        The behaviour window D: features use ``[signup_at, signup_at + D)``.
    windows : sequence of int, default (7, 14, 30)
        Sub-windows of the count features; those longer than D are dropped
        and D itself is always included.
    as_of : date-like, optional
        Censoring date; default the latest event. Customers whose window
        ends after it are excluded (and counted).
    segment, plan : str, optional
        Filters (``None`` or ``"all"`` = no filter).
    signup_from, signup_to : date-like, optional
        Signup period ``[from, to)``.
    sample_n : int, default 0
        Seeded sample of that many customers in scope (0 = all), taken before
        the complete-window filter.
    random_state : int, default 0
        Seed of the sample.
    event_types : sequence of str, optional
        Event names to build features for (default: every event name the
        scoped customers have inside their windows, except those only seen
        from ``exclude_sources``).
    activity_sources : sequence of str, optional
        Source categories (see :mod:`journeylib.store.categories`) or source names
        whose events count as activity for ``days_active`` and sessions. Default:
        the store's activity sources, every source of kind ``product`` whatever
        its name (``web``, ``ios``, a Mixpanel or Amplitude source, an unknown name).
    exclude_sources : sequence of str, default ("crm",)
        Source categories or names whose events are not behaviour features
        by default: CRM records (``subscription_started``, won opportunities,
        lifecycle-stage changes) are commercial facts that encode the
        outcomes. Name an event in ``event_types`` to include it anyway.
    property_keys : sequence of str, default ()
        ``customers.properties`` keys to add as ``prop_<key>`` text columns,
        e.g. ``("acquisition_channel", "region")``. Choose keys fixed at
        signup; snapshot keys such as a status or current MRR encode the
        outcome.
    ticket_scores : pandas.DataFrame, optional
        Per-ticket scores from a sentiment/topic model: ``ticket_id`` plus
        numeric columns (averaged over the customer's tickets created in the
        window → ``ticket_<col>_mean_<D>d``) and text columns (tickets per
        value → ``tickets_<col>_<value>_<D>d``).

    Returns
    -------
    CustomerFeatures
        ``data`` has one row per customer with a complete window and these
        columns (``<e>`` is an event slug, ``<d>`` a sub-window):

        ``customer_id``, ``segment``, ``plan``, ``signup_at``, ``window_end``
            Identity, snapshot attributes, and ``signup_at + D``.
        ``n_<e>_<d>d``
            Events of that type in ``[signup, signup + d)``.
        ``first_<e>_days``
            Days from signup to the first such event in the window (NaN if
            none in the window).
        ``days_active_<D>d``
            Distinct days since signup (day 0, 1, ...) with an activity event.
        ``sessions_<D>d``, ``sessions_per_week_<D>d``
            Activity sessions (a new one after a gap of more than 30 minutes)
            in the window, and per 7 days of window.
        ``sessions_trend_<D>d``
            Sessions per week in the second half of the window minus the
            first half (negative = declining).
        ``emails_delivered_<D>d``, ``emails_opened_<D>d``, ``emails_clicked_<D>d``, ``emails_unsubscribed_<D>d``
            E-mails with that status in the window. The rows of one e-mail
            share ``properties.send_id``: a clicked row also counts the
            e-mail as opened and delivered, an opened row as delivered
            (each e-mail once); a row without ``send_id`` counts as its own
            status only.
        ``email_open_rate_<D>d``, ``email_click_rate_<D>d``
            Opened (clicked) / delivered in the window; NaN when nothing was
            delivered.
        ``tickets_<D>d``, ``tickets_high_priority_<D>d``
            Tickets created in the window; of them, priority high or urgent.
        ``ticket_satisfaction_<D>d``
            Mean satisfaction (0..1) of tickets created *and* solved in the
            window (NaN if none rated).
        ``users_<D>d``
            Size: users of the account created before the window end (users
            without ``created_at`` count).
        ``stage_<s>_by_<D>d``, ``stages_reached_<D>d``
            With a definition: whether each stage was entered before the
            window end; number of stages entered by then.
        ``prop_<key>``
            The requested customer properties (text).
        ``ticket_<col>_mean_<D>d``, ``tickets_<col>_<value>_<D>d``
            From ``ticket_scores``.

    Raises
    ------
    ValueError
        If ``window_days`` or ``windows`` are not positive whole numbers, or
        ``ticket_scores`` has no ``ticket_id`` column.
    EmptyResultError
        If no customer in scope has a complete window.

    Warns
    -----
    StatisticalWarning
        When customers are excluded because their window is not complete.

    Examples
    --------
    >>> import pandas as pd
    >>> store = Store(":memory:")
    >>> _ = store.insert("customers", pd.DataFrame({"customer_id": ["a"], "signup_at": ["2024-01-01T00:00:00Z"]}))
    >>> _ = store.insert("events", pd.DataFrame({"event_id": ["e1"], "customer_id": ["a"],
    ...     "timestamp": ["2024-01-02T09:00:00Z"], "event": ["login"], "source": ["product"]}))
    >>> feats = build_features(store, window_days=7, as_of="2024-02-01")
    >>> int(feats.data.loc[0, "n_login_7d"]), float(feats.data.loc[0, "first_login_days"])
    (1, 1.375)
    """
    window_days, subs = _check_window(window_days, windows)
    # one connection for the whole build (a read-only store otherwise opens one per statement)
    with store.session():
        scope = Scope.resolve(
            store, scope, function="build_features", as_of=as_of, segment=segment, plan=plan, signup_from=signup_from,
            signup_to=signup_to, sample_n=sample_n, random_state=random_state,
        )
        if ticket_scores is not None and "ticket_id" not in ticket_scores.columns:
            msg = f"ticket_scores must have a ticket_id column; it has {list(ticket_scores.columns)}"
            raise ValueError(msg)
        if activity_sources is None:  # every source of kind product, whatever it is named
            activity_sources = activity_source_names(store)

        def build() -> CustomerFeatures:
            # The complete-window customers go into a temporary table with an integer row number ``k``
            # (customer_id order), which the statements over the events group, sort and join on instead of
            # the text ``customer_id``; the session above keeps one warm connection for every statement.
            with store.temp_tables(_WINDOWS, _EVENT_CODES, *_PARTS.values()):
                return _build_features(
                    store, definition=definition, window_days=window_days, subs=subs, scope=scope, cache=cache,
                    event_types=event_types, activity_sources=activity_sources, exclude_sources=exclude_sources,
                    property_keys=property_keys, ticket_scores=ticket_scores,
                )

        if cache is None:
            return build()
        key = (
            id(store), definition.model_dump_json() if definition is not None else None, scope, window_days, subs,
            tuple(event_types) if event_types is not None else None, tuple(activity_sources), tuple(exclude_sources),
            tuple(property_keys), id(ticket_scores) if ticket_scores is not None else None,
        )
        return cache.get("features", key, build)


#: Temporary tables of :func:`build_features`: the complete-window customers with their row number
#: in ``customer_id`` order, and the event names with theirs (both dropped when the build ends).
_WINDOWS = "_jl_fw"
_EVENT_CODES = "_jl_fe"
#: Temporary tables of :func:`build_features` holding one per-customer aggregate each (sessions, e-mails,
#: tickets, users), computed one statement at a time before the wide statement joins them. As CTEs of
#: one statement they would run at once: at 100M events (806,452 customers) the e-mail aggregate's hash
#: table (about 400 MiB, 3.1M e-mails keyed by text) and the session window's buffered rows then need
#: more than the 600MB read-only limit together, while one at a time each fits (spilling).
_PARTS = {"ss": "_jl_fs", "ms": "_jl_fm", "tk": "_jl_ft", "us": "_jl_fu"}


def _days_since(us: str, start_us: str) -> str:
    """Return SQL for the days from *start_us* to *us* (epoch microseconds), as :func:`sql_days_between` computes them.

    ``sql_days_between(a, b)`` is ``(epoch(b) - epoch(a)) / 86400.0`` and ``epoch(t)`` is
    ``epoch_us(t) / 1e6`` exactly (on DuckDB and as :func:`~journeylib.store.dialect.to_spark_sql`
    spells it for Spark), so this gives the same doubles from integers computed once per row
    instead of time-zone-aware timestamp arithmetic.
    """
    return f"({us} / 1000000.0 - {start_us} / 1000000.0) / 86400.0"


def _build_features(
    store: Store,
    *,
    definition: JourneyDefinition | None,
    window_days: int,
    subs: tuple[int, ...],
    scope: Scope,
    cache: ResultCache | None,
    event_types: Sequence[str] | None,
    activity_sources: Sequence[str],
    exclude_sources: Sequence[str],
    property_keys: Sequence[str],
    ticket_scores: pd.DataFrame | None,
) -> CustomerFeatures:
    asof = sql_timestamp(scope.as_of)
    d_end = sql_add_days("signup_at", window_days)
    base = f"SELECT customer_id, signup_at, {d_end} AS window_end FROM ({scope.customers_sql()})"
    counts = store.query(f"SELECT count(*) AS n, {sql_filtered('count', '*', f'window_end <= {asof}')} AS complete FROM ({base})")
    n_scope, n_complete = int(counts["n"].iloc[0]), int(counts["complete"].iloc[0])
    exclusions = pd.DataFrame(
        {"reason": ["window_incomplete"], "customers": [n_scope - n_complete]}
    )
    exclusions = exclusions[exclusions["customers"] > 0].reset_index(drop=True)
    if n_complete == 0:
        msg = (
            f"no customer in scope ({scope.describe()}) has a complete {window_days}-day window before as_of "
            f"({n_scope} in scope signed up less than {window_days} days before it); use an earlier window or a later as_of."
        )
        raise EmptyResultError(msg)
    if n_scope > n_complete:
        warnings.warn(
            f"{n_scope - n_complete} of {n_scope} customers in scope signed up less than {window_days} days before "
            f"as_of ({scope.as_of:%Y-%m-%d}); their window is not complete, so they are left out.",
            StatisticalWarning,
            stacklevel=3,
        )

    cw = f"SELECT c.* FROM ({base}) c WHERE c.window_end <= {asof}"
    store.create_temp_table(
        _WINDOWS,
        f"SELECT customer_id, signup_at, window_end, {sql_epoch_microseconds('signup_at')} AS signup_us, "
        f"row_number() OVER (ORDER BY customer_id) - 1 AS k FROM ({cw})",
    )
    store.create_temp_table(
        _EVENT_CODES, "SELECT event, row_number() OVER (ORDER BY event) - 1 AS j FROM (SELECT DISTINCT event FROM events) x"
    )
    us = sql_epoch_microseconds("e.timestamp")
    # The events of the complete windows (timestamps compared as stored: a plain integer comparison).
    in_window = (
        f"FROM events e JOIN {_WINDOWS} w ON e.customer_id = w.customer_id "
        "WHERE e.timestamp >= w.signup_at AND e.timestamp < w.window_end"
    )
    srcs = ", ".join(sql_quote(s) for s in sources_of(store, activity_sources)) or "NULL"
    excl = ", ".join(sql_quote(s) for s in sources_of(store, exclude_sources)) if exclude_sources else ""
    behaviour = f"bool_or(coalesce(e.source NOT IN ({excl}), true))" if excl else "true"
    # One pass over the window's events, grouped by customer and event (both integer codes): the
    # count and first-time features (a few filtered counts and a min per group, pivoted in numpy
    # rather than ~4 filtered aggregates per event name over every event row) and which events are
    # activity and behaviour.
    # (k, j and the counts as 4-byte integers: about 40% less memory for this frame, the largest one the
    # build fetches; a count beyond the INTEGER range would make DuckDB raise, not wrap)
    long = store.query(
        "SELECT CAST(e.k AS INTEGER) AS k, CAST(n.j AS INTEGER) AS j, "
        + "".join(f'CAST({sql_filtered("count", "*", f"e.t_days < {d}")} AS INTEGER) AS n{i}, ' for i, d in enumerate(subs))
        + f"min(e.t_days) AS first_days, bool_or(coalesce(e.source IN ({srcs}), false)) AS activity, {behaviour} AS behaviour "
        f"FROM (SELECT w.k, e.event, e.source, {_days_since(us, 'w.signup_us')} AS t_days {in_window}) e "
        f"JOIN {_EVENT_CODES} n ON n.event = e.event GROUP BY e.k, n.j"
    )
    codes = store.query(f"SELECT event, j FROM {_EVENT_CODES}")
    event_of = np.empty(len(codes), dtype=object)
    event_of[codes["j"].to_numpy(dtype="int64")] = codes["event"].astype(str).to_numpy()
    seen = (
        pd.DataFrame({"j": long["j"].to_numpy(dtype="int64"), "activity": long["activity"].astype(bool),
                      "behaviour": long["behaviour"].astype(bool)})
        .groupby("j")[["activity", "behaviour"]].any()
    )
    seen_names = event_of[seen.index.to_numpy()]
    activity = dict(zip(seen_names, seen["activity"].to_numpy(dtype=bool), strict=True))
    default_names = sorted(str(n) for n, b in zip(seen_names, seen["behaviour"].to_numpy(dtype=bool), strict=True) if b)
    names = default_names if event_types is None else [str(e) for e in event_types]
    catalog: list[dict[str, Any]] = []

    def add(feature: str, kind: str, source: str, event: str, wdays: int, description: str, is_activity: bool = False) -> None:
        catalog.append(
            {"feature": feature, "kind": kind, "source": source, "event": event, "window_days": wdays,
             "activity": is_activity, "description": description}
        )

    for name in names:
        slug = feature_slug(name)
        for d in subs:
            col = f"n_{slug}_{d}d"
            add(col, "count", "events", name, d, f"{name} events in the first {d} days", activity.get(name, False))
        col = f"first_{slug}_days"
        add(col, "first_days", "events", name, window_days, f"days from signup to the first {name} (in the first {window_days} days)",
            activity.get(name, False))
    w = window_days
    add(f"days_active_{w}d", "count", "events", "", w, f"days with activity in the first {w} days")

    half = w / 2.0
    gap = SESSION_GAP_MINUTES * 60
    # Activity events in time order per customer (the integer k, by integer epoch microseconds): a
    # session starts after a gap of more than SESSION_GAP_MINUTES, an active day where the whole day
    # since signup (floor of t_days, which never decreases along the order) changes, so days_active
    # counts the distinct days without a DISTINCT aggregate. The window carries only (k, us) and the
    # previous us; t_days of both are computed after it from the customer's signup_us (a narrower
    # sort: about 1.6x faster at 10M events). Events with equal timestamps have the same t_days and
    # a zero gap, so how ties are ordered changes no count.
    t_days = _days_since("a.us", "w.signup_us")
    sess_sql = f"""
        SELECT k, {sql_filtered("count", "*", "new_day")} AS days_active,
               {sql_filtered("count", "*", "new_session")} AS sessions,
               {sql_filtered("count", "*", f"new_session AND t_days < {half}")} AS s1,
               {sql_filtered("count", "*", f"new_session AND t_days >= {half}")} AS s2
        FROM (
            SELECT a.k, {t_days} AS t_days,
                   (a.prev_us IS NULL OR (a.us / 1000000.0 - a.prev_us / 1000000.0) / 86400.0 > {gap / 86400.0}) AS new_session,
                   (a.prev_us IS NULL OR floor({t_days}) > floor({_days_since("a.prev_us", "w.signup_us")})) AS new_day
            FROM (SELECT w.k, {us} AS us, lag({us}) OVER (PARTITION BY w.k ORDER BY {us}) AS prev_us
                  {in_window} AND e.source IN ({srcs})) a
            JOIN {_WINDOWS} w ON w.k = a.k
        ) s GROUP BY k"""
    weeks = w / 7.0
    half_weeks = half / 7.0
    add(f"sessions_{w}d", "count", "sessions", "", w, f"activity sessions in the first {w} days")
    add(f"sessions_per_week_{w}d", "numeric", "sessions", "", w, f"activity sessions per week in the first {w} days")
    add(f"sessions_trend_{w}d", "numeric", "sessions", "", w,
        f"sessions per week in days {half:g}–{w} minus days 0–{half:g} (negative = declining)")

    m_days = sql_days_between("cw.signup_at", "m.timestamp")
    # Per e-mail (properties.send_id): clicked implies opened and delivered, opened implies delivered, from the
    # rows inside the window; a row without a send_id counts as its own status only (store/values.py notes them).
    send = sql_json_text("m.properties", SEND_ID)
    msg_sql = f"""
        SELECT k,
               {sql_filtered("count", "*", "delivered")} AS delivered,
               {sql_filtered("count", "*", "opened")} AS opened,
               {sql_filtered("count", "*", "clicked")} AS clicked,
               {sql_filtered("count", "*", "unsubscribed")} AS unsubscribed
        FROM (
            SELECT cw.k,
                   CASE WHEN {send} IS NULL THEN 'row:' || m.message_id ELSE 'send:' || {send} END AS email_key,
                   bool_or(m.status = 'delivered' OR ({send} IS NOT NULL AND m.status IN ('opened', 'clicked'))) AS delivered,
                   bool_or(m.status = 'opened' OR ({send} IS NOT NULL AND m.status = 'clicked')) AS opened,
                   bool_or(m.status = 'clicked') AS clicked,
                   bool_or(m.status = 'unsubscribed') AS unsubscribed
            FROM {_WINDOWS} cw JOIN messages m ON m.customer_id = cw.customer_id
            WHERE m.timestamp >= cw.signup_at AND m.timestamp < cw.window_end AND {m_days} >= 0
            GROUP BY 1, 2
        ) x GROUP BY k"""
    for status in ("delivered", "opened", "clicked", "unsubscribed"):
        add(f"emails_{status}_{w}d", "count", "messages", status, w, f"emails {status} in the first {w} days")
    add(f"email_open_rate_{w}d", "rate", "messages", "opened", w, f"emails opened / delivered in the first {w} days")
    add(f"email_click_rate_{w}d", "rate", "messages", "clicked", w, f"emails clicked / delivered in the first {w} days")

    tk_sql = f"""
        SELECT cw.k,
               count(*) AS tickets,
               {sql_filtered("count", "*", "lower(t.priority) IN ('high', 'urgent')")} AS high_priority,
               {sql_filtered("avg", "t.satisfaction", "t.solved_at < cw.window_end")} AS satisfaction
        FROM {_WINDOWS} cw JOIN tickets t ON t.customer_id = cw.customer_id
        WHERE t.created_at >= cw.signup_at AND t.created_at < cw.window_end
        GROUP BY cw.k"""
    add(f"tickets_{w}d", "count", "tickets", "", w, f"support tickets created in the first {w} days")
    add(f"tickets_high_priority_{w}d", "count", "tickets", "", w, f"high or urgent tickets created in the first {w} days")
    add(f"ticket_satisfaction_{w}d", "rate", "tickets", "", w,
        f"mean satisfaction (0–1) of tickets created and solved in the first {w} days")

    users_sql = f"""
        SELECT cw.k, count(*) AS users
        FROM {_WINDOWS} cw JOIN users u ON u.customer_id = cw.customer_id
        WHERE u.created_at IS NULL OR u.created_at < cw.window_end
        GROUP BY cw.k"""
    add(f"users_{w}d", "count", "users", "", w, f"users of the account created before day {w} (account size)")

    prop_cols = []
    for key in property_keys:
        col = f"prop_{feature_slug(key)}"
        prop_cols.append(f'{sql_json_text("c.properties", key)} AS "{col}"')
        add(col, "category", "customers", key, 0, f"customer property {key} (as exported)")
    props_sql = ", " + ", ".join(prop_cols) if prop_cols else ""

    # each per-customer aggregate is its own statement (see _PARTS), then one join in customer order
    for part, part_sql in (("ss", sess_sql), ("ms", msg_sql), ("tk", tk_sql), ("us", users_sql)):
        store.create_temp_table(_PARTS[part], part_sql)
    sql = f"""
        SELECT cw.k AS _k, cw.customer_id, c.segment, c.plan, cw.signup_at, cw.window_end,
               coalesce(ss.days_active, 0) AS "days_active_{w}d",
               coalesce(ss.sessions, 0) AS "sessions_{w}d",
               coalesce(ss.sessions, 0) / {weeks} AS "sessions_per_week_{w}d",
               (coalesce(ss.s2, 0) - coalesce(ss.s1, 0)) / {half_weeks} AS "sessions_trend_{w}d",
               coalesce(ms.delivered, 0) AS "emails_delivered_{w}d",
               coalesce(ms.opened, 0) AS "emails_opened_{w}d",
               coalesce(ms.clicked, 0) AS "emails_clicked_{w}d",
               coalesce(ms.unsubscribed, 0) AS "emails_unsubscribed_{w}d",
               CASE WHEN ms.delivered > 0 THEN ms.opened / ms.delivered END AS "email_open_rate_{w}d",
               CASE WHEN ms.delivered > 0 THEN ms.clicked / ms.delivered END AS "email_click_rate_{w}d",
               coalesce(tk.tickets, 0) AS "tickets_{w}d",
               coalesce(tk.high_priority, 0) AS "tickets_high_priority_{w}d",
               tk.satisfaction AS "ticket_satisfaction_{w}d",
               coalesce(us.users, 0) AS "users_{w}d"
               {props_sql}
        FROM {_WINDOWS} cw JOIN customers c ON c.customer_id = cw.customer_id
        LEFT JOIN {_PARTS["ss"]} ss ON ss.k = cw.k
        LEFT JOIN {_PARTS["ms"]} ms ON ms.k = cw.k
        LEFT JOIN {_PARTS["tk"]} tk ON tk.k = cw.k
        LEFT JOIN {_PARTS["us"]} us ON us.k = cw.k
        ORDER BY cw.k"""
    data = store.query(sql)
    if not np.array_equal(data["_k"].to_numpy(dtype="int64"), np.arange(len(data))):
        msg = (
            f"build_features: the customers with a complete window are not one row each in customer_id order "
            f"({len(data)} rows for {n_complete} customers); customers.customer_id must be unique."
        )
        raise SchemaError(msg)
    data = data.drop(columns="_k")
    # the SQL columns get their final dtypes while the frame is narrow; the event block is built typed
    fixed: dict[str, pd.Series] = {}
    for c in catalog:
        col = c["feature"]
        if col not in data.columns:
            continue
        if c["kind"] == "count" and data[col].dtype != "int64":
            fixed[col] = data[col].fillna(0).astype("int64")
    for col in ("email_open_rate", "email_click_rate", "ticket_satisfaction", "sessions_per_week", "sessions_trend"):
        name = f"{col}_{w}d"
        if data[name].dtype != "float64":
            fixed[name] = data[name].astype("float64")
    for key in property_keys:
        col = f"prop_{feature_slug(key)}"
        fixed[col] = data[col].astype(object).where(data[col].notna(), None)
    if fixed:
        data = data.assign(**fixed)
    data = _with_event_features(data, long, event_of, names, subs)

    if definition is not None:
        data = _add_stage_features(store, data, definition, scope, w, add, cache)
    if ticket_scores is not None:
        data = _add_ticket_scores(store, data, ticket_scores, cw, w, add)

    cat = pd.DataFrame(catalog, columns=["feature", "kind", "source", "event", "window_days", "activity", "description"])
    if not data.index.equals(pd.RangeIndex(len(data))):  # (a copy of the whole table otherwise)
        data = data.reset_index(drop=True)
    return CustomerFeatures(
        data=data, catalog=cat, exclusions=exclusions, window_days=w, windows=subs,
        as_of=scope.as_of, scope=scope,
    )


def _with_event_features(
    data: pd.DataFrame, long: pd.DataFrame, event_of: np.ndarray, names: Sequence[str], subs: tuple[int, ...]
) -> pd.DataFrame:
    """Insert ``n_<e>_<d>d`` and ``first_<e>_days`` (per name, in order) after ``window_end``, pivoted from *long*.

    *long* has one row per customer and event: ``k`` (the customer's row in *data*), ``j`` (the
    event's code; ``event_of[j]`` is its name), ``n<i>`` (events in the first ``subs[i]`` days)
    and ``first_days``; a customer without such an event gets 0 and NaN.
    """
    n_rows, n_names, n_subs = len(data), len(names), len(subs)
    # event-major: every feature column is one contiguous row of these arrays
    counts = np.zeros((n_names, n_subs, n_rows), dtype="int64")
    first = np.full((n_names, n_rows), np.nan)
    if len(long) and n_names:
        row = long["k"].to_numpy(dtype="int64")
        col = pd.Index(list(names)).get_indexer(pd.Index(event_of))[long["j"].to_numpy(dtype="int64")]
        ok = (row >= 0) & (row < n_rows) & (col >= 0)
        row, col = row[ok], col[ok]
        for i in range(n_subs):
            counts[col, i, row] = long[f"n{i}"].to_numpy(dtype="int64")[ok]
        first[col, row] = long["first_days"].to_numpy(dtype="float64")[ok]
    # one frame built from the columns in their final order, without copying them (``copy=False``):
    # the event columns stay views of the two arrays above (copying and stacking them into one block
    # per dtype would hold three copies at once: 2.7 GiB peak RSS at 728,767 customers x 19 events).
    at = list(data.columns).index("window_end") + 1
    columns: dict[str, Any] = {c: data[c] for c in data.columns[:at]}
    for j, name in enumerate(names):
        slug = feature_slug(name)
        for i, d in enumerate(subs):
            columns[f"n_{slug}_{d}d"] = counts[j, i]
        columns[f"first_{slug}_days"] = first[j]
    columns.update({c: data[c] for c in data.columns[at:]})
    return pd.DataFrame(columns, index=data.index, copy=False)


def _add_stage_features(
    store: Store, data: pd.DataFrame, definition: JourneyDefinition, scope: Scope, w: int, add: Any, cache: ResultCache | None
) -> pd.DataFrame:
    """Add ``stage_<s>_by_<w>d`` (entered before the window end) and ``stages_reached_<w>d``."""
    # every customer of the scope before sampling: the sample is taken from the feature rows
    ms = milestones_data(store, definition=definition, scope=scope.replace(sample_n=0, random_state=0), cache=cache)
    ms = ms[ms["customer_id"].isin(data["customer_id"])]
    end = data.set_index("customer_id")["window_end"]
    reached = ms["entered_at"].notna() & (ms["entered_at"] < ms["customer_id"].map(end))
    wide = (
        pd.DataFrame({"customer_id": ms["customer_id"], "stage": ms["stage"].astype(str), "reached": reached})
        .pivot_table(index="customer_id", columns="stage", values="reached", aggfunc="max")
        .reindex(columns=definition.stage_names)
    )
    # the new columns are built apart and joined once (adding them one by one to the wide
    # feature frame copies all of it at every insert)
    columns: dict[str, pd.Series] = {}
    total = pd.Series(0, index=data.index, dtype="int64")
    for name in definition.stage_names:
        col = f"stage_{feature_slug(name)}_by_{w}d"
        vals = data["customer_id"].map(wide[name]) if name in wide.columns else pd.Series(False, index=data.index)
        columns[col] = vals.fillna(False).astype(bool)
        total += columns[col].astype("int64")
        add(col, "binary", "stages", name, w, f"entered stage {name} within {w} days of signup")
    columns[f"stages_reached_{w}d"] = total
    add(f"stages_reached_{w}d", "count", "stages", "", w, f"journey stages entered within {w} days of signup")
    return pd.concat([data.drop(columns=[c for c in columns if c in data.columns]), pd.DataFrame(columns, index=data.index)], axis=1)


def _add_ticket_scores(store: Store, data: pd.DataFrame, scores: pd.DataFrame, cw: str, w: int, add: Any) -> pd.DataFrame:
    """Aggregate per-ticket scores over each customer's tickets created in the window."""
    tickets = store.query(
        f"""SELECT t.ticket_id, t.customer_id FROM ({cw}) cw JOIN tickets t ON t.customer_id = cw.customer_id
            WHERE t.created_at >= cw.signup_at AND t.created_at < cw.window_end"""
    )
    cols = [c for c in scores.columns if c not in ("ticket_id", "customer_id", "created_at")]
    joined = tickets.merge(scores[["ticket_id", *cols]].drop_duplicates("ticket_id"), on="ticket_id", how="inner")
    out = data.copy()
    for col in cols:
        slug = feature_slug(col)
        values = joined[col]
        if pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(values):
            levels = sorted(values.dropna().astype(str).unique())
            counts = (
                joined.assign(_v=values.astype(str)).groupby(["customer_id", "_v"]).size().unstack(fill_value=0)
                if levels else pd.DataFrame()
            )
            for level in levels:
                name = f"tickets_{slug}_{feature_slug(level)}_{w}d"
                out[name] = out["customer_id"].map(counts[level]).fillna(0).astype("int64")
                add(name, "count", "voc", f"{col}={level}", w, f"tickets with {col} = {level} in the first {w} days")
        else:
            name = f"ticket_{slug}_mean_{w}d"
            out[name] = out["customer_id"].map(joined.groupby("customer_id")[col].mean()).astype("float64")
            add(name, "numeric", "voc", col, w, f"mean ticket {col} over tickets created in the first {w} days")
    return out


def customer_outcomes_data(
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
    property_keys: Sequence[str] = (),
) -> pd.DataFrame:
    """Return when each customer in scope met each outcome of the journey definition.

    Parameters
    ----------
    store : Store
        The canonical store.
    definition : JourneyDefinition
        Its ``outcomes`` (customer fields or first events) are evaluated.
    as_of, segment, plan, signup_from, signup_to, sample_n, random_state
        Scope, as in :func:`build_features`.
    property_keys : sequence of str, default ()
        ``customers.properties`` keys to add as ``prop_<key>`` columns.

    Returns
    -------
    pandas.DataFrame
        One row per customer in scope: ``customer_id``, ``segment``,
        ``plan``, ``signup_at``, ``converted_at``, ``churned_at`` (NaT when
        not by as_of); ``<outcome>_at`` for every outcome of the definition
        (UTC; NaT if it has not happened by as_of): for ``customer_field``
        outcomes the field, for ``customer_property`` outcomes the
        property's ISO 8601 date (NaT if it is not one), for ``event``
        outcomes the first such event at or after signup, for
        ``inactive_days`` outcomes the lapse
        (:func:`journeylib.customers.outcomes.inactivity_lapse_data`: last
        activity + inactive_days, NaT while censored); ``prop_<key>``
        columns.

    Raises
    ------
    EmptyResultError
        If no customer is in scope.
    """
    scope = Scope.resolve(
        store, scope, function="customer_outcomes_data", as_of=as_of, segment=segment, plan=plan, signup_from=signup_from,
        signup_to=signup_to, sample_n=sample_n, random_state=random_state, segment_field=definition.segment_field,
    )
    asof = sql_timestamp(scope.as_of)
    selects = []
    joins = []
    for i, (name, outcome) in enumerate(definition.outcomes.items()):
        col = f'"{feature_slug(name)}_at"'
        if outcome.customer_field is not None:
            field_sql = f"c.{outcome.customer_field}"
            selects.append(f"CASE WHEN {field_sql} <= {asof} THEN {field_sql} END AS {col}")
        elif outcome.customer_property is not None:  # ISO 8601 text in customers.properties, parsed below
            selects.append(f"{sql_json_text('c.properties', outcome.customer_property)} AS {col}")
        elif outcome.inactive_days is not None:  # a lapse, dated below
            selects.append(f"{sql_cast('NULL', 'timestamp')} AS {col}")
        else:
            alias = f"o{i}"
            joins.append(
                f"LEFT JOIN (SELECT e.customer_id, min(e.timestamp) AS t FROM events e JOIN ({scope.customers_sql()}) c2 "
                f"ON e.customer_id = c2.customer_id WHERE e.event = {sql_quote(outcome.event)} AND e.timestamp >= c2.signup_at "
                f"AND e.timestamp <= {asof} GROUP BY e.customer_id) {alias} ON {alias}.customer_id = c.customer_id"
            )
            selects.append(f"{alias}.t AS {col}")
    props = [f'{sql_json_text("c.properties", k)} AS "prop_{feature_slug(k)}"' for k in property_keys]
    cols = ", ".join(["c.customer_id", "c.segment", "c.plan", "c.signup_at", "c.converted_at", "c.churned_at", *selects, *props])
    sql = f"SELECT {cols} FROM ({scope.customers_sql()}) c {' '.join(joins)} ORDER BY c.customer_id"
    out = store.query(sql)
    if out.empty:
        msg = f"no customers in scope ({scope.describe()}); widen the filters."
        raise EmptyResultError(msg)
    out = out.loc[:, ~out.columns.duplicated()]
    for name, outcome in definition.outcomes.items():
        if outcome.customer_property is not None:
            col = f"{feature_slug(name)}_at"
            parsed = pd.to_datetime(out[col], utc=True, errors="coerce", format="ISO8601")
            out[col] = parsed.where(parsed <= scope.as_of)
        elif outcome.inactive_days is not None:
            # imported here: journeylib.customers.outcomes builds on this module
            from journeylib.customers.outcomes import inactivity_lapse_data

            lapse = inactivity_lapse_data(store, inactive_days=outcome.inactive_days, scope=scope)
            out[f"{feature_slug(name)}_at"] = out["customer_id"].map(lapse.set_index("customer_id")["lapsed_at"])
    return out.reset_index(drop=True)


def attribute_column(name: str) -> str:
    """Return the column :func:`customer_attributes_data` gives attribute *name*.

    Parameters
    ----------
    name : str
        A ``customers`` column or ``customers.properties`` key.

    Returns
    -------
    str
        ``attr_<slug>``.

    Examples
    --------
    >>> attribute_column("Payment Method")
    'attr_payment_method'
    """
    return f"attr_{feature_slug(name)}"


def customer_attributes_data(
    store: Store,
    *,
    names: Sequence[str],
    as_of: Any = None,
    segment: str | None = None,
    plan: str | None = None,
    signup_from: Any = None,
    signup_to: Any = None,
    sample_n: int = 0,
    random_state: int = 0,
    scope: Scope | None = None,
) -> pd.DataFrame:
    """Return customer attributes by name: a ``customers`` column where one has the name, else a properties key.

    ``plan``, ``segment`` or ``mrr`` are read from their columns, so asking for
    them never reads an absent ``properties`` key; any other name is looked up
    in ``customers.properties`` (as text). Values are the exported snapshot.

    Parameters
    ----------
    store : Store
        The canonical store.
    names : sequence of str
        Attribute names.
    as_of, segment, plan, signup_from, signup_to, sample_n, random_state, scope
        Scope, as in :func:`build_features`.

    Returns
    -------
    pandas.DataFrame
        One row per customer in scope: ``customer_id`` and, per name,
        ``attr_<slug>`` (:func:`attribute_column`): the column's values
        (numbers stay numbers, timestamps stay timestamps) or the property's
        text; None where missing. ``DataFrame.attrs["sources"]`` maps each
        name to ``"column"`` or ``"property"``.

    Raises
    ------
    ValueError
        If a name is empty or two names give the same column.
    EmptyResultError
        If no customer is in scope.
    """
    scope = Scope.resolve(
        store, scope, function="customer_attributes_data", as_of=as_of, segment=segment, plan=plan,
        signup_from=signup_from, signup_to=signup_to, sample_n=sample_n, random_state=random_state,
    )
    names = [str(n).strip() for n in names]
    cols = [attribute_column(n) for n in names]
    if any(not n for n in names) or len(set(cols)) != len(cols):
        msg = f"customer_attributes_data: names must be non-empty and give distinct columns (attr_<slug>); got {names!r}"
        raise ValueError(msg)
    own = set(CUSTOMERS.names) - {"properties"}
    sources: dict[str, str] = {}
    selects = ["c.customer_id"]
    for name, col in zip(names, cols, strict=True):
        if name in own:
            sources[name] = "column"
            selects.append(f'c."{name}" AS "{col}"')
        else:
            sources[name] = "property"
            selects.append(f'{sql_json_text("c.properties", name)} AS "{col}"')
    out = store.query(f"SELECT {', '.join(selects)} FROM ({scope.customers_sql()}) c ORDER BY c.customer_id")
    if out.empty:
        msg = f"no customers in scope ({scope.describe()}); widen the filters."
        raise EmptyResultError(msg)
    for col in cols:
        out[col] = out[col].astype(object).where(out[col].notna(), None) if out[col].dtype == object else out[col]
    out.attrs["sources"] = sources
    return out.reset_index(drop=True)


def attribute_candidates_data(
    store: Store,
    *,
    exclude: Sequence[str] = (),
    max_levels: int = AUTO_ATTRIBUTE_MAX_LEVELS,
    min_coverage: float = AUTO_ATTRIBUTE_MIN_COVERAGE,
    as_of: Any = None,
    segment: str | None = None,
    plan: str | None = None,
    signup_from: Any = None,
    signup_to: Any = None,
    sample_n: int = 0,
    random_state: int = 0,
    scope: Scope | None = None,
) -> pd.DataFrame:
    """Say which customer attributes are categories worth testing: the ``attributes="auto"`` choice of the drivers.

    ``segment`` and ``plan`` (``customers`` columns) are always listed as
    used. Every ``customers.properties`` key found in scope is used when it
    has 2 to ``max_levels`` distinct values that cover at least
    ``min_coverage`` of the customers, and is none of: an id, e-mail, name,
    URL or phone (by its name), dates (values starting ``YYYY-MM-DD``),
    nested objects or lists, free text (median value longer than 40
    characters), or a name in ``exclude``.

    Parameters
    ----------
    store : Store
        The canonical store.
    exclude : sequence of str, default ()
        Keys never used (the outcome field, keys tested otherwise).
    max_levels : int, default :data:`AUTO_ATTRIBUTE_MAX_LEVELS`
        Most distinct values of a used key.
    min_coverage : float, default :data:`AUTO_ATTRIBUTE_MIN_COVERAGE`
        Smallest share of customers in scope with a value.
    as_of, segment, plan, signup_from, signup_to, sample_n, random_state, scope
        Scope, as in :func:`build_features`.

    Returns
    -------
    pandas.DataFrame
        One row per attribute: ``name``, ``source`` (``column`` or
        ``property``), ``levels`` (distinct non-empty values),
        ``coverage`` (share of the customers in scope with a value),
        ``used`` (bool) and ``reason`` (why it is used or not, in words).
        Used rows first, then by name.

    Raises
    ------
    EmptyResultError
        If no customer is in scope.
    """
    scope = Scope.resolve(
        store, scope, function="attribute_candidates_data", as_of=as_of, segment=segment, plan=plan,
        signup_from=signup_from, signup_to=signup_to, sample_n=sample_n, random_state=random_state,
    )
    frame = store.query(f"SELECT c.customer_id, c.segment, c.plan, c.properties FROM ({scope.customers_sql()}) c")
    if frame.empty:
        msg = f"attribute_candidates_data: no customers in scope ({scope.describe()}); widen the filters."
        raise EmptyResultError(msg)
    n = len(frame)
    rows: list[dict[str, Any]] = []
    for col in ("segment", "plan"):
        known = frame[col].dropna().astype(str)
        rows.append({"name": col, "source": "column", "levels": int(known.nunique()), "coverage": len(known) / n,
                     "used": True, "reason": "customers column"})
    values: dict[str, list[Any]] = {}
    for text in frame["properties"].dropna():
        try:
            props = json.loads(text) if isinstance(text, str) else text
        except ValueError:
            continue
        if isinstance(props, dict):
            for k, v in props.items():
                if v is not None and v != "":
                    values.setdefault(str(k), []).append(v)
    skip = {str(e) for e in exclude}
    for key in sorted(values):
        vals = values[key]
        nested = any(isinstance(v, (dict, list)) for v in vals)
        text_vals = pd.Series([json.dumps(v) if isinstance(v, (dict, list)) else str(v) for v in vals])
        levels = int(text_vals.nunique())
        coverage = len(vals) / n
        if key in skip:
            reason = "excluded (the outcome, or tested otherwise)"
        elif key in CUSTOMERS.names:
            reason = "shadowed by the customers column of the same name"
        elif _ID_NAME.search(key):
            reason = "an identifier or contact detail (by its name)"
        elif nested:
            reason = "nested objects or lists"
        elif text_vals.str.match(_ISO_DATE).mean() >= 0.5:
            reason = "dates"
        elif levels > max_levels:
            reason = f"{levels} distinct values (more than {max_levels})"
        elif levels < 2:
            reason = "a single value"
        elif float(text_vals.str.len().median()) > _FREE_TEXT_CHARS:
            reason = "free text"
        elif coverage < min_coverage:
            reason = f"present for {coverage:.0%} of customers (less than {min_coverage:.0%})"
        else:
            rows.append({"name": key, "source": "property", "levels": levels, "coverage": coverage, "used": True,
                         "reason": f"{levels} levels covering {coverage:.0%} of customers"})
            continue
        rows.append({"name": key, "source": "property", "levels": levels, "coverage": coverage, "used": False,
                     "reason": reason})
    out = pd.DataFrame(rows, columns=["name", "source", "levels", "coverage", "used", "reason"])
    out = out.assign(_u=~out["used"].astype(bool)).sort_values(["_u", "name"], kind="stable").drop(columns="_u")
    return out.reset_index(drop=True)
