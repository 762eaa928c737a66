"""Data health: what data the store holds, and how complete and consistent it is.

The computations behind the ``00_data_health`` notebook. Each ``<metric>_data``
function takes a :class:`~journeylib.store.Store` and keyword-only options and
returns a tidy :class:`pandas.DataFrame`; the event-level aggregation runs as
SQL inside the store, never as Python loops over events.

Scope options shared by the customer-level functions
----------------------------------------------------
``as_of``
    The end of the timeline: events after it are excluded. ``None`` or ``""``
    means the latest event timestamp in the store (the same for every
    segment). A date without a time (``"2024-03-01"``) means the end of that
    day, UTC; naive times are taken as UTC.
``segment``
    ``"all"`` (or ``None``) for every customer, or one value of
    ``customers.segment``. A value no customer has raises
    :class:`~journeylib.exceptions.EmptyResultError` naming the values that
    exist.
``sample_n``, ``random_state``
    ``sample_n=0`` keeps every customer of the segment; ``sample_n > 0`` keeps a
    deterministic pseudo-random sample of that many customers (ranked by the
    md5 of ``customer_id`` and ``random_state``, so it does not depend on row
    order) and only their events. Used for quick smoke runs.

With ``segment="all"`` and ``sample_n=0`` the timeline is every event in the
store, including *orphan* events whose ``customer_id`` is not in
``customers``; with a segment or a sample it is the events of the selected
customers only, so orphan counts are 0 by construction.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd

from journeylib.exceptions import EmptyResultError
from journeylib.scope import ALL, NO_CUTOFF, Scope
from journeylib.store import Store
from journeylib.store.categories import source_kinds_table
from journeylib.store.dialect import (
    sql_add_microseconds,
    sql_cast,
    sql_date_range,
    sql_filtered,
    sql_iso_week,
    sql_regexp_replace_all,
    sql_utc_clock,
    sql_week_start,
    sql_weeks_between,
)
from journeylib.store.schema import ALL_TABLES
from journeylib.voice.pii import mask_email_values
from journeylib.words import plural

__all__ = [
    "ALL_SEGMENTS",
    "ALL_SOURCES",
    "MISSING_LABEL",
    "OTHER_REASONS",
    "UNKNOWN_SOURCE",
    "available_segments",
    "coverage_data",
    "customer_mix_data",
    "data_health_summary",
    "event_type_data",
    "ingest_reconciliation_data",
    "notes_data",
    "quarantine_data",
    "quarantine_reasons_data",
    "source_kinds_data",
    "source_volume_data",
    "table_counts_data",
]

#: The ``segment`` value that selects every customer.
ALL_SEGMENTS = ALL
#: Label of missing ``segment`` or ``plan`` values.
MISSING_LABEL = "(none)"
#: Label of events with no ``source``.
UNKNOWN_SOURCE = "(unknown)"
#: ``source`` of the row of :func:`coverage_data` that spans every source.
ALL_SOURCES = "(all sources)"
#: ``reason`` of the row of :func:`quarantine_reasons_data` that folds the rest.
OTHER_REASONS = "(other reasons)"

# Quarantine reasons carry row-specific values (the offending value, an id, line
# numbers). Masking them groups rows that failed for the same reason; the full
# text stays in the quarantine table and in ``example_reason``. Applied in this order.
_REASON_MASKS = (
    (", found [^;]*", ""),
    ("'[^']*'", "'…'"),
    ("=[^ ;,)]+", "=…"),
    (r"\(lines [^)]*\)", "(lines …)"),
    ("at (position|column) [0-9]+", r"at \1 …"),
)


def _masked(expr: str) -> str:
    """Return SQL applying every mask of :data:`_REASON_MASKS` to a text, in order."""
    for pattern, replacement in _REASON_MASKS:
        expr = sql_regexp_replace_all(expr, pattern, replacement)
    return expr


_REASON_KIND_SQL = _masked("coalesce(reason, '(no reason given)')")

#: ``as_of`` as the queries of this module take it: the prepared-statement parameter ``$as_of``.
_AS_OF_SQL = sql_cast("$as_of", "timestamp")


# -- scope ----------------------------------------------------------------------
# Data health counts every customer in the store (not only those who signed up
# by as_of), so it renders the shared Scope with those two options off.


def _timeline(scope: Scope) -> bool:
    return scope.as_of is not NO_CUTOFF


def _as_of_text(scope: Scope) -> str:
    """``as_of`` as an ISO timestamp, or ``""`` without a timeline."""
    return scope.as_of.isoformat() if _timeline(scope) else ""


def _ctes(scope: Scope) -> str:
    """Return the SQL defining ``scope_customers`` and ``scope_events`` (without ``WITH``)."""
    customers = scope.customers_sql(signed_up_by_as_of=False, blank_later_outcomes=False)
    as_of_where = f"e.timestamp <= {_AS_OF_SQL}" if _timeline(scope) else "TRUE"
    if scope.filtered:
        events_where = "AND e.customer_id IN (SELECT customer_id FROM scope_customers)"
        known = "TRUE"
    else:
        events_where = ""
        known = "e.customer_id IN (SELECT customer_id FROM customers)"
    return f"""
        scope_customers AS (
            SELECT customer_id,
                   coalesce(segment, '{MISSING_LABEL}') AS segment,
                   coalesce(plan, '{MISSING_LABEL}') AS plan
            FROM ({customers}) c
        ),
        scope_events AS (
            SELECT e.customer_id, e.timestamp, e.event,
                   coalesce(e.source, '{UNKNOWN_SOURCE}') AS source,
                   {known} AS known
            FROM events e
            WHERE {as_of_where} {events_where}
        )"""


def _params(scope: Scope) -> dict[str, Any]:
    """Return the prepared-statement parameters :func:`_ctes` uses."""
    return {"as_of": _as_of_text(scope)} if _timeline(scope) else {}


def available_segments(store: Store) -> list[str]:
    """Return the distinct non-empty ``customers.segment`` values, sorted.

    Parameters
    ----------
    store : Store
        The journey store.

    Returns
    -------
    list of str
        Segment values (without ``"all"``); empty when no customer has one.

    Examples
    --------
    >>> store = Store(":memory:")
    >>> _ = store.insert("customers", pd.DataFrame({"customer_id": ["c1"], "segment": ["SMB"],
    ...                                               "signup_at": ["2024-01-01T00:00:00Z"]}))
    >>> available_segments(store)
    ['SMB']
    """
    out = store.query(
        "SELECT DISTINCT segment FROM customers WHERE segment IS NOT NULL AND segment <> '' ORDER BY segment"
    )
    return [str(s) for s in out["segment"]]


def _no_events(store: Store, scope: Scope, *, function: str) -> EmptyResultError:
    """Build the error for a scope without events, saying who is in it and where the timeline starts."""
    facts = store.query(
        f"WITH {_ctes(scope)} SELECT (SELECT count(*) FROM scope_customers) AS customers, "
        "(SELECT min(timestamp) FROM events) AS first",
        _params(scope),
    ).iloc[0]
    first = facts["first"]
    start = (
        "the store has no events"
        if pd.isna(first)
        else f"the first event in the store is at {pd.Timestamp(first).isoformat()}"
    )
    msg = (
        f"{function}: no events for {scope.label} ({plural(int(facts['customers']), 'customer')}) up to "
        f"as_of={_as_of_text(scope)}; {start}. Pick a later as_of, another segment, or a larger sample_n."
    )
    return EmptyResultError(msg)


def _utc(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Return *frame* with *columns* as timezone-aware UTC timestamps."""
    out = frame.copy()
    for col in columns:
        values = pd.to_datetime(out[col])
        out[col] = values.dt.tz_localize("UTC") if values.dt.tz is None else values.dt.tz_convert("UTC")
    return out


# -- store-level computations ---------------------------------------------------


def table_counts_data(store: Store) -> pd.DataFrame:
    """Count the rows of every canonical table, reconciled with the ingest log.

    Parameters
    ----------
    store : Store
        The journey store.

    Returns
    -------
    pandas.DataFrame
        One row per canonical table, in schema order:

        ``table_name``
            Canonical table.
        ``rows``
            Rows stored in it now.
        ``files``
            Ingest-log entries (files ingested, per run) that targeted it.
        ``rows_read``, ``rows_loaded``, ``rows_duplicate``, ``rows_quarantined``
            Sums over those entries. ``rows_loaded`` may differ from ``rows``
            (updated rows replace stored ones; direct inserts are not logged).
        ``reconciles``
            Whether every entry satisfies read = loaded + duplicate +
            quarantined; ``<NA>`` when the table has no entries.

    Examples
    --------
    >>> table_counts_data(Store(":memory:"))[["table_name", "rows"]].head(2)
      table_name  rows
    0  customers     0
    1      users     0
    """
    present = store.tables()  # a store made by an older version may lack a bookkeeping table: 0 rows
    counts = " UNION ALL ".join(
        f"SELECT '{name}' AS table_name, {i} AS ord, count(*) AS rows FROM \"{name}\""
        if name in present
        else f"SELECT '{name}' AS table_name, {i} AS ord, CAST(0 AS BIGINT) AS rows"
        for i, name in enumerate(ALL_TABLES)
    )
    sql = f"""
    WITH counts AS ({counts}),
    log AS (
        SELECT table_name, count(*) AS files,
               sum(rows_read) AS rows_read, sum(rows_loaded) AS rows_loaded,
               sum(rows_duplicate) AS rows_duplicate, sum(rows_quarantined) AS rows_quarantined,
               bool_and(rows_read = rows_loaded + rows_duplicate + rows_quarantined) AS reconciles
        FROM ingest_log GROUP BY table_name
    )
    SELECT c.table_name, c.rows,
           coalesce(l.files, 0) AS files,
           CAST(coalesce(l.rows_read, 0) AS BIGINT) AS rows_read,
           CAST(coalesce(l.rows_loaded, 0) AS BIGINT) AS rows_loaded,
           CAST(coalesce(l.rows_duplicate, 0) AS BIGINT) AS rows_duplicate,
           CAST(coalesce(l.rows_quarantined, 0) AS BIGINT) AS rows_quarantined,
           l.reconciles
    FROM counts c LEFT JOIN log l USING (table_name)
    ORDER BY c.ord
    """
    out = store.query(sql)
    out["reconciles"] = out["reconciles"].astype("boolean")
    return out.astype({"rows": "int64", "files": "int64"})


def ingest_reconciliation_data(store: Store) -> pd.DataFrame:
    """Check every ingest-log entry: rows read = loaded + duplicate + quarantined.

    Parameters
    ----------
    store : Store
        The journey store.

    Returns
    -------
    pandas.DataFrame
        One row per ingest-log entry (a file in a run), oldest first; empty if
        nothing was ingested through the log:

        ``run``, ``source``, ``table_name``, ``file``, ``ingested_at``
            Which file, loaded where and when (UTC).
        ``rows_read``, ``rows_loaded``, ``rows_duplicate``, ``rows_quarantined``
            The logged counts.
        ``unaccounted``
            ``rows_read - rows_loaded - rows_duplicate - rows_quarantined``;
            0 when the file reconciles.
        ``reconciles``
            ``unaccounted == 0``.
        ``notes_count``
            Optional values of the file stored as empty because they could
            not be read (rows it added to ``ingest_notes``; see
            :func:`notes_data`); 0 when none.

    Examples
    --------
    >>> ingest_reconciliation_data(Store(":memory:")).empty
    True
    """
    sql = """
    SELECT run, source, table_name, file, ingested_at,
           CAST(rows_read AS BIGINT) AS rows_read, CAST(rows_loaded AS BIGINT) AS rows_loaded,
           CAST(rows_duplicate AS BIGINT) AS rows_duplicate, CAST(rows_quarantined AS BIGINT) AS rows_quarantined,
           CAST(rows_read - rows_loaded - rows_duplicate - rows_quarantined AS BIGINT) AS unaccounted,
           rows_read = rows_loaded + rows_duplicate + rows_quarantined AS reconciles,
           CAST({notes} AS BIGINT) AS notes_count
    FROM ingest_log ORDER BY ingested_at, file, run
    """
    has_notes = not store.query(
        "SELECT 1 FROM information_schema.columns WHERE table_name = 'ingest_log' AND column_name = 'notes_count'"
    ).empty
    sql = sql.replace("{notes}", "coalesce(notes_count, 0)" if has_notes else "0")
    out = _utc(store.query(sql), ["ingested_at"])
    out["reconciles"] = out["reconciles"].astype(bool)
    return out


def source_kinds_data(store: Store) -> pd.DataFrame:
    """List the kind of every event source: which sources are customer activity, company-sent, CRM or support.

    Analyses select sources by kind (:mod:`journeylib.store.categories`), so a
    source whose kind is wrong skews days active, sessions, loops and
    behaviour candidates; a kind chosen by ``default`` (a name journeylib does
    not know counts as product activity) is the one to check.

    Parameters
    ----------
    store : Store
        The journey store.

    Returns
    -------
    pandas.DataFrame
        One row per source with events or a recorded kind, sorted by source:

        ``source``
            The ``events.source`` value.
        ``kind``
            ``product`` (customer activity), ``crm``, ``support`` or ``email``.
        ``origin``
            How the kind was chosen: ``declared`` (``source_kinds`` in
            ``sources.yaml`` or ``--source-kind``), ``reader <name>``,
            ``name`` (a kind label or a reader's name) or ``default``.
        ``recorded``
            Whether the ingest stored the kind (False: derived now by the
            same rule, for a store written before kinds were recorded).
        ``events``
            Events of the source in the store (whole store, not scoped).
        ``share_of_events``
            ``events`` over every event in the store (including events
            without a source); NaN when the store has no events.

    Examples
    --------
    >>> store = Store(":memory:")
    >>> _ = store.insert("events", pd.DataFrame({"event_id": ["e1"], "customer_id": ["c1"],
    ...     "timestamp": ["2024-03-04T10:00:00Z"], "event": ["login"], "source": ["web"]}))
    >>> source_kinds_data(store)[["source", "kind", "origin"]].to_dict("records")
    [{'source': 'web', 'kind': 'product', 'origin': 'default'}]
    """
    out = source_kinds_table(store)
    total = store.count("events")
    out["share_of_events"] = out["events"] / total if total else float("nan")
    return out.astype({"share_of_events": "float64"})


def notes_data(store: Store, *, mask_pii: bool = True) -> pd.DataFrame:
    """Count the optional values stored as empty because they could not be read.

    Each such value is a row of ``ingest_notes`` (file, line, row id, field,
    raw value, reason); this groups them for the data-health report.

    Parameters
    ----------
    store : Store
        The journey store.
    mask_pii : bool, default True
        Mask e-mail addresses in ``example_value``
        (:func:`journeylib.voice.pii.mask_email_values`); the stored notes keep them.

    Returns
    -------
    pandas.DataFrame
        One row per source, table, field and reason, most values first; empty
        when every value could be read:

        ``source``, ``table_name``, ``field``, ``reason``
            Where the values were, and why they were stored as empty.
        ``values``
            How many values.
        ``files``
            In how many files.
        ``example_value``, ``example_file``, ``example_line``
            One of them (the first by file and line), to look it up.

    Examples
    --------
    >>> notes_data(Store(":memory:")).empty
    True
    """
    sql = """
    WITH grouped AS (
        SELECT source, table_name, field, reason, count(*) AS n_values, count(DISTINCT file) AS n_files
        FROM ingest_notes GROUP BY source, table_name, field, reason
    ),
    ranked AS (
        SELECT source, table_name, field, reason, file, line, value,
               row_number() OVER (PARTITION BY source, table_name, field, reason ORDER BY file, line, value) AS rn
        FROM ingest_notes
    )
    SELECT g.source, g.table_name, g.field, g.reason,
           CAST(g.n_values AS BIGINT) AS "values", CAST(g.n_files AS BIGINT) AS files,
           r.value AS example_value, r.file AS example_file, CAST(r.line AS BIGINT) AS example_line
    FROM grouped g JOIN ranked r
      ON r.rn = 1 AND r.source = g.source AND r.table_name = g.table_name AND r.field = g.field AND r.reason = g.reason
    ORDER BY "values" DESC, g.source, g.table_name, g.field, g.reason
    """
    if "ingest_notes" not in store.tables():  # a store made before notes existed recorded none
        columns = ["source", "table_name", "field", "reason", "values", "files", "example_value", "example_file", "example_line"]
        return pd.DataFrame({c: pd.Series(dtype="object") for c in columns}).astype(
            {"values": "int64", "files": "int64", "example_line": "Int64"}
        )
    out = store.query(sql).astype({"values": "int64", "files": "int64", "example_line": "Int64"})
    return mask_email_values(out, columns=["example_value"]) if mask_pii else out


def quarantine_data(store: Store, *, mask_pii: bool = True) -> pd.DataFrame:
    """Count quarantined rows per source, file and reason.

    Parameters
    ----------
    store : Store
        The journey store.
    mask_pii : bool, default True
        Mask e-mail addresses in ``reason`` and ``example_reason``
        (:func:`journeylib.voice.pii.mask_email_values`); the quarantine table keeps them.

    Returns
    -------
    pandas.DataFrame
        One row per (source, file, reason), most rows first; empty when no row
        was ever quarantined (that is good news, not an error):

        ``source``, ``file``
            Where the rejected rows came from.
        ``reason``
            The reason with row-specific values masked (``found …`` values,
            quoted values, ids after ``=``, line lists and positions), so rows
            rejected for the same reason are counted together.
        ``rows``
            Quarantined rows.
        ``share_of_quarantined``
            ``rows`` / all quarantined rows in the store.
        ``first_line``
            Smallest input line among them.
        ``example_reason``
            One full, unmasked reason text.

    Examples
    --------
    >>> list(quarantine_data(Store(":memory:")).columns)[:4]
    ['source', 'file', 'reason', 'rows']
    """
    sql = f"""
    SELECT source, file, {_REASON_KIND_SQL} AS reason, count(*) AS rows,
           count(*) / sum(count(*)) OVER () AS share_of_quarantined,
           CAST(min(line) AS BIGINT) AS first_line, min(reason) AS example_reason
    FROM quarantine GROUP BY 1, 2, 3
    ORDER BY rows DESC, source, file, reason
    """
    out = store.query(sql).astype({"rows": "int64", "share_of_quarantined": "float64"})
    return mask_email_values(out, columns=["reason", "example_reason"]) if mask_pii else out


def quarantine_reasons_data(store: Store, *, top_n: int = 10, mask_pii: bool = True) -> pd.DataFrame:
    """Rank the reasons rows were quarantined for, across every source and file.

    Parameters
    ----------
    store : Store
        The journey store.
    top_n : int, default 10
        Reasons to keep; the rest are folded into one ``"(other reasons)"`` row.
    mask_pii : bool, default True
        Mask e-mail addresses in ``reason`` (:func:`journeylib.voice.pii.mask_email_values`).

    Returns
    -------
    pandas.DataFrame
        Up to ``top_n + 1`` rows, most frequent first; empty when nothing was
        quarantined:

        ``rank``
            1 for the most frequent reason; ``top_n + 1`` for the folded row.
        ``reason``
            Masked reason, as in :func:`quarantine_data`.
        ``rows``
            Quarantined rows with that reason.
        ``files``
            Distinct files with at least one such row.
        ``share_of_quarantined``
            ``rows`` / all quarantined rows in the store (sums to 1).

    Raises
    ------
    ValueError
        If *top_n* is not a positive int.

    Examples
    --------
    >>> quarantine_reasons_data(Store(":memory:")).empty
    True
    """
    if isinstance(top_n, bool) or not isinstance(top_n, int) or top_n < 1:
        msg = f"quarantine_reasons_data: top_n must be a positive int; got {top_n!r}"
        raise ValueError(msg)
    sql = f"""
    WITH kinds AS (SELECT {_REASON_KIND_SQL} AS reason, file FROM quarantine),
    ranked AS (
        SELECT reason, count(*) AS rows, count(DISTINCT file) AS files,
               row_number() OVER (ORDER BY count(*) DESC, reason) AS rank
        FROM kinds GROUP BY reason
    ),
    folded AS (
        SELECT k.file, CASE WHEN r.rank <= $top_n THEN r.rank ELSE $top_n + 1 END AS rank,
               CASE WHEN r.rank <= $top_n THEN r.reason ELSE '{OTHER_REASONS}' END AS reason
        FROM kinds k JOIN ranked r USING (reason)
    )
    SELECT rank, reason, count(*) AS rows, count(DISTINCT file) AS files,
           count(*) / sum(count(*)) OVER () AS share_of_quarantined
    FROM folded GROUP BY rank, reason ORDER BY rank
    """
    out = store.query(sql, {"top_n": top_n})
    out = out.astype({"rank": "int64", "rows": "int64", "files": "int64", "share_of_quarantined": "float64"})
    return mask_email_values(out, columns=["reason"]) if mask_pii else out


# -- customer-level computations --------------------------------------------------


def customer_mix_data(
    store: Store,
    *,
    segment: str | None = ALL_SEGMENTS,
    sample_n: int = 0,
    random_state: int = 0,
) -> pd.DataFrame:
    """Count customers per segment and plan, with shares and their denominators.

    ``as_of`` does not apply: the customer base is the ``customers`` table as
    loaded (it limits events only).

    Parameters
    ----------
    store : Store
        The journey store.
    segment : str, default "all"
        ``"all"`` or one ``customers.segment`` value.
    sample_n : int, default 0
        0 for every customer; otherwise a seeded sample of that many customers.
    random_state : int, default 0
        Seed of the sample.

    Returns
    -------
    pandas.DataFrame
        One row per (segment, plan) that has customers, ordered by segment and
        plan; a missing segment or plan is ``"(none)"``:

        ``segment``, ``plan``
            The group.
        ``customers``
            Customers in it.
        ``segment_customers``
            Customers in the segment (denominator of ``share_of_segment``).
        ``share_of_segment``
            ``customers / segment_customers``; sums to 1 within a segment.
        ``customers_total``
            Customers in scope: all customers, the selected segment, or the
            sample (denominator of ``share_of_total``).
        ``share_of_total``
            ``customers / customers_total``; sums to 1.

    Raises
    ------
    EmptyResultError
        If the store has no customers, or *segment* has none (the message
        lists the segments that exist).
    ValueError
        If *sample_n* is negative.

    Examples
    --------
    >>> store = Store(":memory:")
    >>> _ = store.insert("customers", pd.DataFrame({"customer_id": ["c1", "c2"], "segment": ["SMB", "SMB"],
    ...     "plan": ["pro", "free"], "signup_at": ["2024-01-01T00:00:00Z"] * 2}))
    >>> customer_mix_data(store)[["plan", "customers", "share_of_total"]]
       plan  customers  share_of_total
    0  free          1             0.5
    1   pro          1             0.5
    """
    function = "customer_mix_data"
    scope = Scope.build(store, segment=segment, sample_n=sample_n, random_state=random_state, function=function, timeline=False)
    sql = f"""
    WITH {_ctes(scope)},
    groups AS (SELECT segment, plan, count(*) AS customers FROM scope_customers GROUP BY segment, plan)
    SELECT segment, plan, customers,
           sum(customers) OVER (PARTITION BY segment) AS segment_customers,
           customers / sum(customers) OVER (PARTITION BY segment) AS share_of_segment,
           sum(customers) OVER () AS customers_total,
           customers / sum(customers) OVER () AS share_of_total
    FROM groups ORDER BY segment, plan
    """
    out = store.query(sql, _params(scope))
    if out.empty:
        msg = (
            f"{function}: the store has no customers{'' if scope.segment is None else ' in ' + scope.label}. "
            "Ingest a customers export first (`journeylib ingest --db PATH customers FILE`) or run `journeylib demo`."
        )
        raise EmptyResultError(msg)
    return out.astype({"customers": "int64", "segment_customers": "int64", "customers_total": "int64"})


def source_volume_data(
    store: Store,
    *,
    as_of: str | dt.date | None = None,
    segment: str | None = ALL_SEGMENTS,
    sample_n: int = 0,
    random_state: int = 0,
) -> pd.DataFrame:
    """Count events per source per ISO week, with empty weeks filled with zeros.

    Weeks run from the week of the first event in scope to the week of
    ``as_of``, so a gap in a feed shows as zeros rather than a missing point.

    Parameters
    ----------
    store : Store
        The journey store.
    as_of : str, datetime.date or None, default None
        End of the timeline (inclusive); ``None`` or ``""`` for the latest
        event in the store.
    segment : str, default "all"
        ``"all"`` or one ``customers.segment`` value.
    sample_n : int, default 0
        0 for every customer; otherwise a seeded sample of that many customers.
    random_state : int, default 0
        Seed of the sample.

    Returns
    -------
    pandas.DataFrame
        One row per (source, week) for every source with events in scope and
        every week of the range, ordered by source and week:

        ``source``
            Event source (``"(unknown)"`` if empty).
        ``week_start``
            Monday of the ISO week (UTC date, as a naive timestamp).
        ``iso_week``
            The ISO week label, e.g. ``"2024-W09"``.
        ``events``
            Events of that source in that week (0 for a gap).
        ``active_customers``
            Distinct customers (rows of ``customers``) with at least one such
            event; orphan events count in ``events`` only.
        ``partial_week``
            True for the week of ``as_of`` when ``as_of`` falls before its
            end (Sunday 23:59:59.999999 UTC): its counts cover part of it.
        ``segment``
            The segment filter (``"all"`` or its value).

    Raises
    ------
    EmptyResultError
        If there are no events in scope up to ``as_of`` (the message says when
        the timeline starts), or *segment* has no customers.
    ValueError
        If *as_of* cannot be read or *sample_n* is negative.

    Examples
    --------
    >>> store = Store(":memory:")
    >>> _ = store.insert("events", pd.DataFrame({"event_id": ["e1", "e2"], "customer_id": ["c1", "c1"],
    ...     "timestamp": ["2024-03-04T10:00:00Z", "2024-03-18T10:00:00Z"], "event": ["login"] * 2,
    ...     "source": ["product"] * 2}))
    >>> source_volume_data(store)[["iso_week", "events"]]
       iso_week  events
    0  2024-W10       1
    1  2024-W11       0
    2  2024-W12       1
    """
    function = "source_volume_data"
    scope = Scope.build(store, as_of=as_of, segment=segment, sample_n=sample_n, random_state=random_state, function=function)
    week_start_clock = sql_cast("w.week_start", "naive_timestamp")
    sql = f"""
    WITH {_ctes(scope)},
    ev AS (
        SELECT source, customer_id, known,
               {sql_cast(sql_week_start("timestamp"), "date")} AS week_start
        FROM scope_events
    ),
    weeks AS (
        SELECT {sql_cast(sql_date_range("lo", "hi", step_days=7), "date")} AS week_start
        FROM (
            SELECT min(week_start) AS lo,
                   {sql_cast(sql_week_start(_AS_OF_SQL), "date")} AS hi
            FROM ev
        )
    ),
    sources AS (SELECT DISTINCT source FROM ev),
    counts AS (
        SELECT source, week_start, count(*) AS events,
               {sql_filtered("count", "customer_id", "known", distinct=True)} AS active_customers
        FROM ev GROUP BY source, week_start
    )
    SELECT s.source, {week_start_clock} AS week_start, {sql_iso_week("w.week_start")} AS iso_week,
           coalesce(c.events, 0) AS events, coalesce(c.active_customers, 0) AS active_customers,
           {sql_utc_clock(_AS_OF_SQL)} < {sql_add_microseconds(week_start_clock, 7 * 86_400_000_000 - 1)} AS partial_week
    FROM sources s CROSS JOIN weeks w LEFT JOIN counts c USING (source, week_start)
    ORDER BY s.source, w.week_start
    """
    out = store.query(sql, _params(scope))
    if out.empty:
        raise _no_events(store, scope, function=function)
    out["week_start"] = pd.to_datetime(out["week_start"])
    out["partial_week"] = out["partial_week"].astype(bool)
    out["segment"] = scope.segment_label
    return out.astype({"events": "int64", "active_customers": "int64"})


def event_type_data(
    store: Store,
    *,
    as_of: str | dt.date | None = None,
    segment: str | None = ALL_SEGMENTS,
    sample_n: int = 0,
    random_state: int = 0,
) -> pd.DataFrame:
    """Count each event type, and how many customers did it at least once.

    Parameters
    ----------
    store : Store
        The journey store.
    as_of : str, datetime.date or None, default None
        End of the timeline (inclusive); ``None`` or ``""`` for the latest
        event in the store.
    segment : str, default "all"
        ``"all"`` or one ``customers.segment`` value.
    sample_n : int, default 0
        0 for every customer; otherwise a seeded sample of that many customers.
    random_state : int, default 0
        Seed of the sample.

    Returns
    -------
    pandas.DataFrame
        One row per event name, most frequent first (ties by name):

        ``event``
            Event name.
        ``events``
            Events with that name up to ``as_of`` (orphans included when
            unfiltered).
        ``customers``
            Distinct customers (rows of ``customers`` in scope) with at least
            one such event.
        ``customers_total``
            Customers in scope (denominator of ``share_of_customers``).
        ``share_of_customers``
            ``customers / customers_total``; NaN if there are no customers.
        ``first_timestamp``, ``last_timestamp``
            First and last such event (UTC).
        ``segment``
            The segment filter (``"all"`` or its value).

    Raises
    ------
    EmptyResultError
        If there are no events in scope up to ``as_of``, or *segment* has no
        customers.
    ValueError
        If *as_of* cannot be read or *sample_n* is negative.

    Examples
    --------
    >>> store = Store(":memory:")
    >>> _ = store.insert("events", pd.DataFrame({"event_id": ["e1", "e2"], "customer_id": ["c1", "c1"],
    ...     "timestamp": ["2024-03-04T10:00:00Z"] * 2, "event": ["login", "invite_sent"]}))
    >>> event_type_data(store)[["event", "events"]]
             event  events
    0  invite_sent       1
    1        login       1
    """
    function = "event_type_data"
    scope = Scope.build(store, as_of=as_of, segment=segment, sample_n=sample_n, random_state=random_state, function=function)
    sql = f"""
    WITH {_ctes(scope)},
    n AS (SELECT count(*) AS customers_total FROM scope_customers)
    SELECT e.event, count(*) AS events,
           {sql_filtered("count", "e.customer_id", "e.known", distinct=True)} AS customers,
           any_value(n.customers_total) AS customers_total,
           {sql_filtered("count", "e.customer_id", "e.known", distinct=True)} / NULLIF(any_value(n.customers_total), 0)
               AS share_of_customers,
           min(e.timestamp) AS first_timestamp, max(e.timestamp) AS last_timestamp
    FROM scope_events e CROSS JOIN n
    GROUP BY e.event ORDER BY events DESC, e.event
    """
    out = store.query(sql, _params(scope))
    if out.empty:
        raise _no_events(store, scope, function=function)
    out = _utc(out, ["first_timestamp", "last_timestamp"])
    out["segment"] = scope.segment_label
    return out.astype(
        {"events": "int64", "customers": "int64", "customers_total": "int64", "share_of_customers": "float64"}
    )


def coverage_data(
    store: Store,
    *,
    as_of: str | dt.date | None = None,
    segment: str | None = ALL_SEGMENTS,
    sample_n: int = 0,
    random_state: int = 0,
) -> pd.DataFrame:
    """Describe how much of the timeline and of the customer base each source covers.

    Parameters
    ----------
    store : Store
        The journey store.
    as_of : str, datetime.date or None, default None
        End of the timeline (inclusive); ``None`` or ``""`` for the latest
        event in the store.
    segment : str, default "all"
        ``"all"`` or one ``customers.segment`` value.
    sample_n : int, default 0
        0 for every customer; otherwise a seeded sample of that many customers.
    random_state : int, default 0
        Seed of the sample.

    Returns
    -------
    pandas.DataFrame
        One row per source with events in scope (by name), then one row with
        ``source == "(all sources)"`` that spans every source. A scope with
        customers but no events gives only that last row, with ``events == 0``.

        ``source``
            Event source, or ``"(all sources)"``.
        ``events``
            Events up to ``as_of``.
        ``first_timestamp``, ``last_timestamp``
            First and last of them (UTC); NaT if none.
        ``customers_covered``
            Distinct customers in scope with at least one of them.
        ``customers_total``
            Customers in scope (denominator of ``share_customers_covered``).
        ``share_customers_covered``
            ``customers_covered / customers_total``; NaN without customers.
        ``customers_without_events``
            ``customers_total - customers_covered``; on the ``"(all sources)"``
            row, the customers with no event at all.
        ``median_events_per_customer``
            Median events per covered customer (NaN if none is covered).
        ``orphan_events``
            Events whose ``customer_id`` is not in ``customers`` (always 0 with
            a segment or a sample, which only select known customers).
        ``segment``
            The segment filter (``"all"`` or its value).

    Raises
    ------
    EmptyResultError
        If the store has no events at all (with ``as_of=None``), or *segment*
        has no customers.
    ValueError
        If *as_of* cannot be read or *sample_n* is negative.

    Examples
    --------
    >>> store = Store(":memory:")
    >>> _ = store.insert("events", pd.DataFrame({"event_id": ["e1"], "customer_id": ["c9"],
    ...     "timestamp": ["2024-03-04T10:00:00Z"], "event": ["login"], "source": ["product"]}))
    >>> coverage_data(store)[["source", "events", "orphan_events"]]
              source  events  orphan_events
    0        product       1              1
    1  (all sources)       1              1
    """
    function = "coverage_data"
    scope = Scope.build(store, as_of=as_of, segment=segment, sample_n=sample_n, random_state=random_state, function=function)
    sql = f"""
    WITH {_ctes(scope)},
    n AS (SELECT count(*) AS customers_total FROM scope_customers),
    per_cs AS (SELECT source, customer_id, count(*) AS k FROM scope_events WHERE known GROUP BY source, customer_id),
    per_c AS (SELECT customer_id, sum(k) AS k FROM per_cs GROUP BY customer_id),
    by_source AS (
        SELECT source, count(*) AS events, {sql_filtered("count", "*", "NOT known")} AS orphan_events,
               min(timestamp) AS first_timestamp, max(timestamp) AS last_timestamp
        FROM scope_events GROUP BY source
    ),
    cov AS (SELECT source, count(*) AS customers_covered, median(k) AS median_events_per_customer FROM per_cs GROUP BY source),
    rows AS (
        SELECT b.source, 0 AS ord, b.events, b.first_timestamp, b.last_timestamp,
               coalesce(c.customers_covered, 0) AS customers_covered, c.median_events_per_customer, b.orphan_events
        FROM by_source b LEFT JOIN cov c USING (source)
        UNION ALL
        SELECT '{ALL_SOURCES}', 1, count(*), min(timestamp), max(timestamp),
               (SELECT count(*) FROM per_c), (SELECT median(k) FROM per_c), {sql_filtered("count", "*", "NOT known")}
        FROM scope_events
    )
    SELECT r.source, r.events, r.first_timestamp, r.last_timestamp, r.customers_covered, n.customers_total,
           r.customers_covered / NULLIF(n.customers_total, 0) AS share_customers_covered,
           n.customers_total - r.customers_covered AS customers_without_events,
           r.median_events_per_customer, r.orphan_events
    FROM rows r CROSS JOIN n ORDER BY r.ord, r.source
    """
    out = _utc(store.query(sql, _params(scope)), ["first_timestamp", "last_timestamp"])
    out["segment"] = scope.segment_label
    return out.astype(
        {
            "events": "int64",
            "customers_covered": "int64",
            "customers_total": "int64",
            "customers_without_events": "int64",
            "orphan_events": "int64",
            "share_customers_covered": "float64",
            "median_events_per_customer": "float64",
        }
    )


# -- headline -------------------------------------------------------------------------


def _json_number(value: Any) -> float | None:
    return None if pd.isna(value) else float(value)


def _json_time(value: Any) -> str | None:
    return None if pd.isna(value) else pd.Timestamp(value).isoformat()


def data_health_summary(
    store: Store,
    *,
    as_of: str | dt.date | None = None,
    segment: str | None = ALL_SEGMENTS,
    sample_n: int = 0,
    random_state: int = 0,
) -> dict[str, Any]:
    """Return the headline numbers of the data-health report, JSON-ready.

    Customer and event numbers follow the scope options; quarantine, ingest and
    table numbers describe the whole store.

    Parameters
    ----------
    store : Store
        The journey store.
    as_of : str, datetime.date or None, default None
        End of the timeline (inclusive); ``None`` or ``""`` for the latest
        event in the store.
    segment : str, default "all"
        ``"all"`` or one ``customers.segment`` value.
    sample_n : int, default 0
        0 for every customer; otherwise a seeded sample of that many customers.
    random_state : int, default 0
        Seed of the sample.

    Returns
    -------
    dict
        Plain ``str``/``int``/``float``/``None``/``list``/``dict`` values:
        ``as_of`` (ISO timestamp used), ``segment``, ``sample_n``,
        ``random_state``; ``customers`` (in scope), ``customers_with_events``,
        ``customers_without_events``, ``share_customers_with_events``
        (denominator ``customers``); ``events``, ``orphan_events``,
        ``sources`` (list of names), ``source_kinds`` (every source of the
        store → its kind, see :func:`source_kinds_data`),
        ``sources_kind_by_default`` (the sources counted as product activity
        only because their name is unknown), ``event_types`` (distinct names),
        ``first_event``, ``last_event`` (ISO or None), ``weeks`` (ISO weeks
        from the first event to ``as_of``); ``quarantined_rows``,
        ``top_quarantine_reason`` (masked reason or None),
        ``ingested_files``, ``files_not_reconciling``; ``table_rows``
        (table name to row count); ``ingest_notes`` (optional values stored
        as empty because they could not be read, see :func:`notes_data`).

    Raises
    ------
    EmptyResultError
        If the store has no events (with ``as_of=None``) or *segment* has no
        customers.

    Examples
    --------
    >>> store = Store(":memory:")
    >>> _ = store.insert("events", pd.DataFrame({"event_id": ["e1"], "customer_id": ["c9"],
    ...     "timestamp": ["2024-03-04T10:00:00Z"], "event": ["login"], "source": ["product"]}))
    >>> data_health_summary(store)["orphan_events"]
    1
    """
    function = "data_health_summary"
    scope = Scope.build(store, as_of=as_of, segment=segment, sample_n=sample_n, random_state=random_state, function=function)
    kwargs: dict[str, Any] = {
        "as_of": scope.as_of if _timeline(scope) else None,
        "segment": scope.segment_label,
        "sample_n": sample_n,
        "random_state": random_state,
    }
    coverage = coverage_data(store, **kwargs)
    overall = coverage[coverage["source"] == ALL_SOURCES].iloc[0]
    sources = coverage.loc[coverage["source"] != ALL_SOURCES, "source"].tolist()
    extra = store.query(
        f"""WITH {_ctes(scope)}
        SELECT count(DISTINCT event) AS event_types,
               CAST({sql_weeks_between(sql_week_start("min(timestamp)"), sql_week_start(_AS_OF_SQL))} + 1 AS BIGINT) AS weeks
        FROM scope_events""",
        _params(scope),
    ).iloc[0]
    tables = table_counts_data(store)
    reconciliation = ingest_reconciliation_data(store)
    reasons = quarantine_reasons_data(store, top_n=1)
    kinds = source_kinds_data(store)
    return {
        "as_of": _as_of_text(scope),
        "segment": scope.segment_label,
        "sample_n": int(sample_n),
        "random_state": int(random_state),
        "customers": int(overall["customers_total"]),
        "customers_with_events": int(overall["customers_covered"]),
        "customers_without_events": int(overall["customers_without_events"]),
        "share_customers_with_events": _json_number(overall["share_customers_covered"]),
        "events": int(overall["events"]),
        "orphan_events": int(overall["orphan_events"]),
        "sources": [str(s) for s in sources],
        "source_kinds": {str(s): str(k) for s, k in zip(kinds["source"], kinds["kind"], strict=True)},
        "sources_kind_by_default": [str(s) for s in kinds.loc[kinds["origin"] == "default", "source"]],
        "event_types": int(extra["event_types"]),
        "first_event": _json_time(overall["first_timestamp"]),
        "last_event": _json_time(overall["last_timestamp"]),
        "weeks": 0 if pd.isna(extra["weeks"]) else int(extra["weeks"]),
        "quarantined_rows": int(tables.loc[tables["table_name"] == "quarantine", "rows"].iloc[0]),
        "top_quarantine_reason": None if reasons.empty else str(reasons["reason"].iloc[0]),
        "ingested_files": len(reconciliation),
        "files_not_reconciling": int((~reconciliation["reconciles"]).sum()),
        "table_rows": {str(t): int(r) for t, r in zip(tables["table_name"], tables["rows"], strict=True)},
        "ingest_notes": int(tables.loc[tables["table_name"] == "ingest_notes", "rows"].iloc[0]),
    }
