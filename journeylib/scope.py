"""Which customers and which part of the timeline an analysis looks at.

Every analysis takes the same filters: an ``as_of`` date (the censoring date:
nothing after it is seen), a segment, a plan, a signup period, an optional
seeded sample, and an optional event time window (``events_from`` /
``events_to``, e.g. an incident week) that limits the events read through
:meth:`Scope.events_sql`. Which customer column is "the segment" is the
scope's ``segment_field`` (``segment`` or ``plan``, from the journey
definition's ``segment_field``): the segment filter applies to it, and the
scoped customers' ``segment`` column holds its values, so every analysis that
groups or filters by segment uses it. :class:`Scope` is the one implementation of those filters: one
date parser (:func:`to_utc`), one sentinel for "every segment or plan"
(:data:`ALL`, with ``None`` and ``""`` meaning the same), one seeded sample
(:func:`journeylib.store.dialect.sql_seeded_order`), and one error for a
segment or plan no customer has (:class:`~journeylib.exceptions.ScopeError`).
It renders the filters as SQL over the canonical tables, so all modules
filter the same way.

Examples
--------
>>> import pandas as pd
>>> scope = Scope(as_of=pd.Timestamp("2025-06-30T23:59:59.999999Z"), segment="SMB", sample_n=100)
>>> scope.describe()
'as of 2025-06-30, segment SMB, sample of 100'
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import numbers
import re
from dataclasses import dataclass
from typing import Any

import pandas as pd

from journeylib.exceptions import EmptyResultError, ScopeError
from journeylib.store import Store
from journeylib.store.dialect import sql_quote, sql_replace_columns, sql_seeded_order, sql_semi_join, sql_timestamp

__all__ = ["ALL", "NO_CUTOFF", "SEGMENT_FIELDS", "Scope", "is_all", "latest_event", "to_utc"]

#: The one spelling of "every segment" / "every plan" (``None`` and ``""`` mean the same).
ALL = "all"

#: ``as_of`` of a scope built with ``timeline=False``: no censoring date, every customer whatever their signup.
NO_CUTOFF = pd.Timestamp.max.tz_localize("UTC")

_DATE_ONLY = re.compile(r"\d{4}-\d{2}-\d{2}")
_FILTER_DEFAULTS: dict[str, Any] = {
    "as_of": None, "segment": None, "plan": None, "signup_from": None, "signup_to": None, "sample_n": 0, "random_state": 0,
    "events_from": None, "events_to": None,
}

#: The ``customers`` columns a scope's ``segment_field`` may name (the journey definition's ``segment_field``).
SEGMENT_FIELDS: tuple[str, ...] = ("segment", "plan")


def is_all(value: Any) -> bool:
    """Return whether a segment or plan filter means "every customer" (``None``, ``""`` or ``"all"``)."""
    return value is None or (isinstance(value, str) and value.strip() in ("", ALL))


def to_utc(value: Any, *, end_of_day: bool = False, function: str = "as_of", name: str = "as_of") -> pd.Timestamp | None:
    """Parse a date/time (str, date, datetime, Timestamp) to a UTC Timestamp; empty → None.

    Naive times are taken as UTC; offsets are honoured. With ``end_of_day``, a
    bare date (``"2025-06-30"`` or a :class:`datetime.date`) means the last
    microsecond of that day, so an ``as_of`` date includes the whole day.

    Parameters
    ----------
    value : str, datetime.date, datetime.datetime, pandas.Timestamp or None
        The date; ``None`` or a blank string give ``None``.
    end_of_day : bool, default False
        Whether a bare date means the end of that day.
    function, name : str
        Named in error messages (the calling function and its parameter).

    Returns
    -------
    pandas.Timestamp or None
        The time in UTC.

    Raises
    ------
    TypeError
        If the value is not a string, date, datetime or Timestamp.
    ValueError
        If the text is not a date; the message shows it.

    Examples
    --------
    >>> to_utc("2025-06-30", end_of_day=True).isoformat()
    '2025-06-30T23:59:59.999999+00:00'
    >>> to_utc("2025-06-30T12:00:00+02:00").isoformat()
    '2025-06-30T10:00:00+00:00'
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    date_only = False
    ts: Any
    if isinstance(value, str):
        text = value.strip()
        date_only = bool(_DATE_ONLY.fullmatch(text))
        try:
            ts = pd.Timestamp(text)
        except ValueError:
            ts = pd.NaT
    elif isinstance(value, dt.datetime):  # includes pandas.Timestamp
        ts = pd.Timestamp(value)
    elif isinstance(value, dt.date):
        ts, date_only = pd.Timestamp(value), True
    else:
        msg = f"{function}: {name} must be an ISO date or timestamp string, a date, a datetime or None; got {type(value).__name__}"
        raise TypeError(msg)
    if pd.isna(ts):
        msg = (
            f"{function}: cannot read {name}={value!r} as a date or timestamp; expected a date such as 2025-06-30 "
            "or 2025-06-30T12:00:00Z, or '' for the default."
        )
        raise ValueError(msg)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    if end_of_day and date_only:
        ts = ts + pd.Timedelta(days=1) - pd.Timedelta(microseconds=1)
    return ts


def latest_event(store: Store, *, function: str = "Scope.build") -> pd.Timestamp:
    """Return the time of the latest event in the store (UTC), the default ``as_of``.

    Raises
    ------
    EmptyResultError
        If the store has no events, so there is no default as_of.
    """
    latest = store.query("SELECT max(timestamp) AS t FROM events")["t"].iloc[0]
    if pd.isna(latest):
        msg = (
            f"{function}: the store has no events, so there is no default as_of; ingest an events export first "
            "(`journeylib ingest --db PATH events FILE`, or `journeylib demo`) or pass as_of."
        )
        raise EmptyResultError(msg)
    ts = pd.Timestamp(latest)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _known_values(store: Store, column: str) -> list[str]:
    out = store.query(f"SELECT DISTINCT {column} AS v FROM customers WHERE {column} IS NOT NULL AND {column} <> '' ORDER BY 1")
    return [str(v) for v in out["v"]]


def _check_int(value: Any, name: str, function: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        msg = f"{function}: {name} must be an int; got {value!r} ({type(value).__name__})"
        raise TypeError(msg)
    return int(value)


@dataclass(frozen=True)
class Scope:
    """Filters shared by the analyses: the one currency for "which customers".

    Parameters
    ----------
    as_of : pandas.Timestamp
        Censoring date (UTC): events after it are not seen, outcomes after it
        have not happened yet. :data:`NO_CUTOFF` for customer-only scopes.
    segment : str, optional
        Keep customers of this segment (``None`` = every segment).
    plan : str, optional
        Keep customers on this plan (``None`` = every plan).
    signup_from, signup_to : pandas.Timestamp, optional
        Keep customers who signed up in ``[signup_from, signup_to)``.
    sample_n : int, default 0
        If positive, a seeded sample of this many customers.
    random_state : int, default 0
        Seed of the sample.
    segment_field : {"segment", "plan"}, default "segment"
        The ``customers`` column that is the segment: ``segment`` filters
        it, and :meth:`customers_sql` returns its values as the ``segment``
        column.
    events_from, events_to : pandas.Timestamp, optional
        Only events in ``[events_from, events_to)`` (and at or before
        ``as_of``) are read through :meth:`events_sql`; the customers are not
        filtered by it.
    """

    as_of: pd.Timestamp
    segment: str | None = None
    plan: str | None = None
    signup_from: pd.Timestamp | None = None
    signup_to: pd.Timestamp | None = None
    sample_n: int = 0
    random_state: int = 0
    segment_field: str = "segment"
    events_from: pd.Timestamp | None = None
    events_to: pd.Timestamp | None = None

    @classmethod
    def build(
        cls,
        store: Store,
        *,
        as_of: Any = None,
        segment: str | None = None,
        plan: str | None = None,
        signup_from: Any = None,
        signup_to: Any = None,
        sample_n: int = 0,
        random_state: int = 0,
        segment_field: str = "segment",
        events_from: Any = None,
        events_to: Any = None,
        function: str = "Scope.build",
        timeline: bool = True,
    ) -> Scope:
        """Make a scope from loose filter values, defaulting ``as_of`` to the latest event.

        Parameters
        ----------
        store : Store
            The canonical store (for the default as_of and the known segments and plans).
        as_of, segment, plan, signup_from, signup_to, sample_n, random_state
            The filters; dates as ISO text, dates or timestamps; ``"all"``,
            ``""`` or ``None`` for every segment or plan.
        segment_field : {"segment", "plan"}, default "segment"
            The customers column ``segment`` is a value of (the journey
            definition's ``segment_field``).
        events_from, events_to : date-like, optional
            The event time window ``[events_from, events_to)``; a bare date
            means the start of that day, so ``events_to="2025-03-17"``
            excludes that day.
        function : str, default "Scope.build"
            The caller, named in error messages.
        timeline : bool, default True
            Resolve ``as_of``. ``False`` for customer-only computations: no
            events are read and ``as_of`` is :data:`NO_CUTOFF`.

        Returns
        -------
        Scope
            The validated scope.

        Raises
        ------
        EmptyResultError
            If the store has no events (so there is no default as_of).
        ScopeError
            If a segment or plan is given that no customer has; the message
            lists the values that exist. (A subclass of both
            :class:`~journeylib.exceptions.EmptyResultError` and ``ValueError``.)
        TypeError, ValueError
            If a date cannot be read, ``sample_n``/``random_state`` are not
            whole numbers (``sample_n`` ≥ 0), ``segment_field`` is not one of
            :data:`SEGMENT_FIELDS`, or ``events_to`` is not after
            ``events_from``.
        """
        if segment_field not in SEGMENT_FIELDS:
            msg = f"{function}: segment_field must be one of {', '.join(SEGMENT_FIELDS)} (a customers column); got {segment_field!r}"
            raise ValueError(msg)
        sample = _check_int(sample_n if sample_n is not None else 0, "sample_n", function)
        seed = _check_int(random_state, "random_state", function)
        if sample < 0:
            msg = f"{function}: sample_n must be 0 (all customers) or a positive number of customers; got {sample}"
            raise ValueError(msg)
        seg = None if is_all(segment) else segment
        pl = None if is_all(plan) else plan
        for name, col, val in (("segment", segment_field, seg), ("plan", "plan", pl)):
            _check_value(store, name, col, val, function)
        window_from = to_utc(events_from, function=function, name="events_from")
        window_to = to_utc(events_to, function=function, name="events_to")
        if window_from is not None and window_to is not None and window_to <= window_from:
            msg = (
                f"{function}: the event window [events_from, events_to) is empty: events_to {window_to.isoformat()} is not "
                f"after events_from {window_from.isoformat()}; give an events_to later than events_from."
            )
            raise ValueError(msg)
        if timeline:
            ts = to_utc(as_of, end_of_day=True, function=function)
            if ts is None:
                ts = latest_event(store, function=function)
        else:
            ts = NO_CUTOFF
        return cls(
            as_of=ts,
            segment=seg,
            plan=pl,
            signup_from=to_utc(signup_from, function=function, name="signup_from"),
            signup_to=to_utc(signup_to, function=function, name="signup_to"),
            sample_n=sample,
            random_state=seed,
            segment_field=segment_field,
            events_from=window_from,
            events_to=window_to,
        )

    @classmethod
    def resolve(cls, store: Store, scope: Scope | None, *, function: str = "Scope.resolve", **filters: Any) -> Scope:
        """Return *scope*, or build one from the loose *filters* when it is None.

        The ``*_data`` functions accept either a ready :class:`Scope` (what
        :class:`journeylib.Journey` passes) or the loose filter keywords; this
        is where the two meet.

        ``segment_field`` (the journey definition's, passed by analyses that
        have one) is not a filter: a ready scope with another segment field
        is returned with this one (:meth:`with_segment_field`).

        Raises
        ------
        TypeError
            If a scope is given together with a filter that differs from its
            default (the two would disagree).
        ScopeError
            If the scope's segment is no value of the new segment field.
        """
        segment_field = filters.pop("segment_field", None)
        if scope is None:
            if segment_field is not None:
                filters["segment_field"] = segment_field
            return cls.build(store, function=function, **filters)
        if not isinstance(scope, Scope):
            msg = f"{function}: scope must be a journeylib.Scope; got {type(scope).__name__}"
            raise TypeError(msg)
        clashing = sorted(k for k, v in filters.items() if not _is_default(k, v))
        if clashing:
            msg = f"{function}: pass either scope or the filters {', '.join(clashing)}, not both"
            raise TypeError(msg)
        if segment_field is not None and segment_field != scope.segment_field:
            return scope.with_segment_field(store, segment_field, function=function)
        return scope

    def replace(self, **changes: Any) -> Scope:
        """Return a copy with some fields changed (e.g. ``segment=None`` for every segment)."""
        return dataclasses.replace(self, **changes)

    def with_segment_field(self, store: Store, segment_field: str, *, function: str = "Scope.with_segment_field") -> Scope:
        """Return this scope with another customers column as the segment, its segment checked against that column.

        Parameters
        ----------
        store : Store
            The canonical store (for the values of the column).
        segment_field : {"segment", "plan"}
            The column.
        function : str
            The caller, named in error messages.

        Returns
        -------
        Scope
            The scope (itself when the field is unchanged).

        Raises
        ------
        ValueError
            If ``segment_field`` is not one of :data:`SEGMENT_FIELDS`.
        ScopeError
            If the scope's segment is no value of that column; the message
            lists the values that exist.
        """
        if segment_field not in SEGMENT_FIELDS:
            msg = f"{function}: segment_field must be one of {', '.join(SEGMENT_FIELDS)} (a customers column); got {segment_field!r}"
            raise ValueError(msg)
        if segment_field == self.segment_field:
            return self
        _check_value(store, "segment", segment_field, self.segment, function)
        return self.replace(segment_field=segment_field)

    @property
    def filtered(self) -> bool:
        """Whether only some customers are selected (segment, plan, signup period or sample)."""
        return any(v is not None for v in (self.segment, self.plan, self.signup_from, self.signup_to)) or self.sample_n > 0

    @property
    def event_window(self) -> bool:
        """Whether the events read through :meth:`events_sql` are limited to a time window (``events_from``/``events_to``)."""
        return self.events_from is not None or self.events_to is not None

    @property
    def segment_label(self) -> str:
        """The segment, or :data:`ALL`."""
        return self.segment if self.segment is not None else ALL

    @property
    def label(self) -> str:
        """Who is in scope, for messages: ``all customers`` or ``segment 'SMB'`` (with the sample)."""
        where = "all customers" if self.segment is None else f"{self._segment_word} {self.segment!r}"
        if self.plan is not None:
            where += f", plan {self.plan!r}"
        if self.sample_n:
            where += f" (sample_n={self.sample_n}, random_state={self.random_state})"
        return where

    def customers_sql(self, *, signed_up_by_as_of: bool = True, blank_later_outcomes: bool = True) -> str:
        """Return SQL selecting the scoped customers (all canonical columns).

        Parameters
        ----------
        signed_up_by_as_of : bool, default True
            Leave out customers who signed up after ``as_of``. Data-health
            counts (every customer in the store) pass False.
        blank_later_outcomes : bool, default True
            Blank ``churned_at`` and ``converted_at`` later than ``as_of``
            (not known yet).

        Returns
        -------
        str
            A SELECT over ``customers``; the sample (if any) is taken after
            the other filters, ordered by a seeded hash of ``customer_id``.
            Its ``segment`` column holds the values of ``segment_field``.
        """
        asof = sql_timestamp(self.as_of) if self.as_of is not NO_CUTOFF else None
        where = []
        if signed_up_by_as_of and asof is not None:
            where.append(f"signup_at <= {asof}")
        if self.segment is not None:
            where.append(f"{self.segment_field} = {sql_quote(self.segment)}")
        if self.plan is not None:
            where.append(f"plan = {sql_quote(self.plan)}")
        if self.signup_from is not None:
            where.append(f"signup_at >= {sql_timestamp(self.signup_from)}")
        if self.signup_to is not None:
            where.append(f"signup_at < {sql_timestamp(self.signup_to)}")
        replaced: dict[str, str] = {}
        if self.segment_field != "segment":
            replaced["segment"] = self.segment_field
        if blank_later_outcomes and asof is not None:
            replaced["churned_at"] = f"CASE WHEN churned_at <= {asof} THEN churned_at END"
            replaced["converted_at"] = f"CASE WHEN converted_at <= {asof} THEN converted_at END"
        select = f"SELECT {sql_replace_columns(replaced)} FROM customers" if replaced else "SELECT * FROM customers"
        sql = f"{select} WHERE {' AND '.join(where)}" if where else select
        if self.sample_n > 0:
            sql = f"SELECT * FROM ({sql}) ORDER BY {sql_seeded_order('customer_id', self.random_state)} LIMIT {self.sample_n}"
        return sql

    def events_time_sql(self, alias: str = "e") -> str:
        """Return the SQL condition on ``<alias>.timestamp`` of the scope's events: up to ``as_of``, inside the event window.

        Parameters
        ----------
        alias : str, default "e"
            The alias of the events table in the caller's query.

        Returns
        -------
        str
            ``<alias>.timestamp <= as_of`` and, when set, ``>= events_from``
            and ``< events_to``.
        """
        parts = [f"{alias}.timestamp <= {sql_timestamp(self.as_of)}"]
        if self.events_from is not None:
            parts.append(f"{alias}.timestamp >= {sql_timestamp(self.events_from)}")
        if self.events_to is not None:
            parts.append(f"{alias}.timestamp < {sql_timestamp(self.events_to)}")
        return " AND ".join(parts)

    def events_sql(self) -> str:
        """Return SQL selecting the scoped customers' events up to ``as_of`` and inside the event window (if any)."""
        return (
            f"SELECT e.* FROM {sql_semi_join('events e', f'({self.customers_sql()}) c', 'e.customer_id = c.customer_id')} "
            f"WHERE {self.events_time_sql('e')}"
        )

    def describe(self) -> str:
        """Return a short human description, e.g. for chart subtitles."""
        parts = [f"as of {self.as_of:%Y-%m-%d}"] if self.as_of is not NO_CUTOFF else ["whole store"]
        if self.segment:
            parts.append(f"{self._segment_word} {self.segment}")
        if self.plan:
            parts.append(f"plan {self.plan}")
        if self.signup_from or self.signup_to:
            lo = f"{self.signup_from:%Y-%m-%d}" if self.signup_from else "…"
            hi = f"{self.signup_to:%Y-%m-%d}" if self.signup_to else "…"
            parts.append(f"signups {lo}–{hi}")
        if self.sample_n:
            parts.append(f"sample of {self.sample_n}")
        if self.event_window:
            lo = f"{self.events_from:%Y-%m-%d %H:%M}" if self.events_from else "…"
            hi = f"{self.events_to:%Y-%m-%d %H:%M}" if self.events_to else "…"
            parts.append(f"events {lo}–{hi}")
        return ", ".join(parts)

    @property
    def _segment_word(self) -> str:
        return "segment" if self.segment_field == "segment" else f"segment ({self.segment_field})"


def _check_value(store: Store, name: str, column: str, value: Any, function: str) -> None:
    """Raise unless *value* (a segment or plan filter; None = every customer) is a value of customers.*column*."""
    if value is None:
        return
    if not isinstance(value, str):
        msg = f"{function}: {name} must be a string ('{ALL}' or a customers.{column} value); got {type(value).__name__}"
        raise TypeError(msg)
    known = _known_values(store, column)
    if value not in known:
        of = "" if column == name else f" of customers.{column} (the segment_field)"
        msg = (
            f"{function}: {name} {value!r} matches no customer; known values{of}: "
            f"{', '.join(known) or '(none)'}; or use {ALL!r} for every customer."
        )
        raise ScopeError(msg)


def _is_default(name: str, value: Any) -> bool:
    if name not in _FILTER_DEFAULTS:
        msg = f"unknown scope filter {name!r}; known: {', '.join(_FILTER_DEFAULTS)}"
        raise TypeError(msg)
    if name in ("segment", "plan"):
        return is_all(value)
    if name in ("as_of", "signup_from", "signup_to", "events_from", "events_to"):
        return value is None or (isinstance(value, str) and not value.strip())
    return value in (None, _FILTER_DEFAULTS[name])
