"""Which customers and which part of the timeline an analysis looks at.

Every customer-level analysis takes the same filters: an ``as_of`` date (the
censoring date: nothing after it is seen), a segment, a plan, a signup period
and an optional seeded sample. :class:`Scope` turns them into SQL over the
canonical tables, so all modules filter the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from journeylib.exceptions import EmptyResultError
from journeylib.store.engine import Store, sql_quote


def to_utc(value: Any, *, end_of_day: bool = False) -> pd.Timestamp | None:
    """Parse a date/time (str, datetime, Timestamp) to a UTC Timestamp; empty → None.

    With ``end_of_day``, a bare date (``"2025-06-30"``) means the last
    microsecond of that day, so an ``as_of`` date includes the whole day (the
    convention of :mod:`journeylib.health` too).

    Raises
    ------
    ValueError
        If the value is not a date; the message shows it.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        msg = f"expected a date such as 2025-06-30 or 2025-06-30T12:00:00Z, got {value!r}"
        raise ValueError(msg) from exc
    if pd.isna(ts):
        msg = f"expected a date such as 2025-06-30 or 2025-06-30T12:00:00Z, got {value!r}"
        raise ValueError(msg)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    if end_of_day and isinstance(value, str) and len(value.strip()) == 10:
        ts = ts + pd.Timedelta(days=1) - pd.Timedelta(microseconds=1)
    return ts


@dataclass(frozen=True)
class Scope:
    """Filters shared by the customer-level analyses.

    Parameters
    ----------
    as_of : pandas.Timestamp
        Censoring date (UTC): events after it are not seen, outcomes after it
        have not happened yet.
    segment : str, optional
        Keep customers of this segment (``None`` or ``"all"`` = every segment).
    plan : str, optional
        Keep customers on this plan.
    signup_from, signup_to : pandas.Timestamp, optional
        Keep customers who signed up in ``[signup_from, signup_to)``.
    sample_n : int, default 0
        If positive, a seeded sample of this many customers.
    random_state : int, default 0
        Seed of the sample.
    """

    as_of: pd.Timestamp
    segment: str | None = None
    plan: str | None = None
    signup_from: pd.Timestamp | None = None
    signup_to: pd.Timestamp | None = None
    sample_n: int = 0
    random_state: int = 0

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
    ) -> Scope:
        """Make a scope, defaulting ``as_of`` to the latest event in the store.

        Raises
        ------
        EmptyResultError
            If the store has no events (so there is no default as_of).
        ValueError
            If a segment or plan is given that no customer has; the message
            lists the values that exist.
        """
        ts = to_utc(as_of, end_of_day=True)
        if ts is None:
            row = store.query("SELECT max(timestamp) AS t FROM events")
            latest = row["t"].iloc[0]
            if pd.isna(latest):
                msg = "the store has no events, so there is no default as_of; ingest events or pass as_of."
                raise EmptyResultError(msg)
            ts = pd.Timestamp(latest).tz_convert("UTC")
        seg = None if segment in (None, "", "all") else segment
        pl = None if plan in (None, "", "all") else plan
        for col, val in (("segment", seg), ("plan", pl)):
            if val is not None:
                known = store.query(f"SELECT DISTINCT {col} AS v FROM customers WHERE {col} IS NOT NULL ORDER BY 1")["v"].tolist()
                if val not in known:
                    msg = f"{col} {val!r} matches no customer; known values: {', '.join(map(str, known)) or '(none)'}"
                    raise ValueError(msg)
        return cls(
            as_of=ts,
            segment=seg,
            plan=pl,
            signup_from=to_utc(signup_from),
            signup_to=to_utc(signup_to),
            sample_n=int(sample_n or 0),
            random_state=int(random_state),
        )

    def customers_sql(self) -> str:
        """Return SQL selecting the scoped customers (all canonical columns).

        Customers who signed up after ``as_of`` are left out; ``churned_at`` and
        ``converted_at`` later than ``as_of`` are blanked (not known yet).
        """
        asof = f"TIMESTAMPTZ {sql_quote(self.as_of.isoformat())}"
        where = [f"signup_at <= {asof}"]
        if self.segment is not None:
            where.append(f"segment = {sql_quote(self.segment)}")
        if self.plan is not None:
            where.append(f"plan = {sql_quote(self.plan)}")
        if self.signup_from is not None:
            where.append(f"signup_at >= TIMESTAMPTZ {sql_quote(self.signup_from.isoformat())}")
        if self.signup_to is not None:
            where.append(f"signup_at < TIMESTAMPTZ {sql_quote(self.signup_to.isoformat())}")
        sql = (
            "SELECT * REPLACE ("
            f"CASE WHEN churned_at <= {asof} THEN churned_at END AS churned_at, "
            f"CASE WHEN converted_at <= {asof} THEN converted_at END AS converted_at) "
            f"FROM customers WHERE {' AND '.join(where)}"
        )
        if self.sample_n > 0:
            # the same seeded sample as journeylib.health: md5 of the id and the seed, not row order
            sql = (
                f"SELECT * FROM ({sql}) ORDER BY md5(customer_id || ':' || '{self.random_state}'), customer_id "
                f"LIMIT {self.sample_n}"
            )
        return sql

    def events_sql(self) -> str:
        """Return SQL selecting the scoped customers' events up to ``as_of``."""
        asof = f"TIMESTAMPTZ {sql_quote(self.as_of.isoformat())}"
        return (
            f"SELECT e.* FROM events e SEMI JOIN ({self.customers_sql()}) c ON e.customer_id = c.customer_id "
            f"WHERE e.timestamp <= {asof}"
        )

    def describe(self) -> str:
        """Return a short human description, e.g. for chart subtitles."""
        parts = [f"as of {self.as_of:%Y-%m-%d}"]
        if self.segment:
            parts.append(f"segment {self.segment}")
        if self.plan:
            parts.append(f"plan {self.plan}")
        if self.signup_from or self.signup_to:
            lo = f"{self.signup_from:%Y-%m-%d}" if self.signup_from else "…"
            hi = f"{self.signup_to:%Y-%m-%d}" if self.signup_to else "…"
            parts.append(f"signups {lo}–{hi}")
        if self.sample_n:
            parts.append(f"sample of {self.sample_n}")
        return ", ".join(parts)
