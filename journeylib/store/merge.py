"""Merging canonical files into the store: staging, de-duplication by key, derived rows.

The generic ingest (:mod:`journeylib.store.ingest`) validates each chunk of a
canonical file and appends it to a temporary staging table
(:func:`stage_rows`); :func:`merge_stage` then decides in SQL, for the whole
file, which rows are new, duplicates, updates or conflicts, comparing rows by
a hash of their canonical columns. :func:`replace_derived_rows` replaces the
``customers``/``users`` rows identity resolution derives.

Snapshots by their own time
---------------------------
A row of a mutable table whose key is stored with other content replaces the
stored row, unless both carry their own update time (``updated_at``,
:data:`journeylib.store.schema.SNAPSHOT_TIME`) and the stored one is later:
the incoming row is then *stale* and counts as a duplicate (``stale`` in
:class:`MergeCounts`, a part of ``duplicate``). Equal times, or a missing time
on either side, fall back to ingest order: the incoming row replaces the
stored one. :func:`stale_sql` spells the rule for the vendor merge
(:func:`journeylib.store.staging.merge_vendor_stage`) too.
"""

from __future__ import annotations

import duckdb
import pandas as pd

from journeylib.store.database import Store, first_row
from journeylib.store.dialect import SQL_TYPES
from journeylib.store.errors import cleanup
from journeylib.store.schema import ENTITY_TABLES, SNAPSHOT_TIME, Table, get_table

__all__ = [
    "MergeCounts",
    "ensure_snapshot_columns",
    "insert_quarantine",
    "merge_stage",
    "replace_derived_rows",
    "stage_rows",
    "staged_select",
    "stale_sql",
]

#: SQL condition, over the quarantine row ``s`` about to be written, that the same refusal is already stored.
_QUARANTINED = """EXISTS (SELECT 1 FROM quarantine q WHERE q.table_name = s.table_name AND q.file = s.file
    AND q.line IS NOT DISTINCT FROM s.line AND q.raw IS NOT DISTINCT FROM s.raw AND q.reason = s.reason)"""


def _hash_sql(table: Table, alias: str) -> str:
    """Return SQL for a 64-bit hash of a row's typed canonical columns, comparable across stage and store.

    Only rows of one key are ever compared, so two different rows would have to
    share a key and collide (about 1 in 10^19) to be taken as the same.
    """
    parts = ", ".join(f'{alias}."{c}"' for c in table.names)
    return f"hash({parts})"


class MergeCounts(dict[str, int]):
    """Counts of one staged merge: loaded, updated, duplicate, quarantined, and stale.

    ``stale`` rows (older snapshots of stored rows of a mutable table) are a
    part of ``duplicate``: ``read = loaded + duplicate + quarantined`` holds
    without them.
    """


def stale_sql(table: Table, incoming: str, stored: str) -> str:
    """Return the SQL condition that an incoming row of *table* is older than the stored row of its key.

    True only for a mutable table with a snapshot time when both times are
    known and the stored one is later; ties and missing times are never
    stale (the later ingest wins).

    Parameters
    ----------
    table : Table
        The canonical table.
    incoming, stored : str
        SQL expressions of the incoming and the stored row's ``updated_at``.

    Returns
    -------
    str
        A boolean SQL expression (``false`` for a table without snapshot times).
    """
    if not (table.mutable and SNAPSHOT_TIME in table.fields):
        return "false"
    return f"coalesce({incoming} < {stored}, false)"


def ensure_snapshot_columns(store: Store) -> None:
    """Give the mutable tables of a store made before ``updated_at`` existed the column.

    The rows already stored get an empty ``updated_at`` (their snapshots are
    then replaced by ingest order). Stores created by this version already
    have it; nothing is written then.

    Parameters
    ----------
    store : Store
        A writable store (inside or outside a transaction).
    """
    tables = [t.name for t in ENTITY_TABLES.values() if t.mutable and SNAPSHOT_TIME in t.fields]
    names = ", ".join(f"'{n}'" for n in tables)
    rows = store.con.execute(
        f"""SELECT table_name FROM duckdb_columns() WHERE database_name = current_database() AND table_name IN ({names}) AND column_name = ?""",
        [SNAPSHOT_TIME],
    ).fetchall()
    have = {str(r[0]) for r in rows}
    for name in tables:
        if name not in have:
            store.con.execute(f'ALTER TABLE "{name}" ADD COLUMN IF NOT EXISTS "{SNAPSHOT_TIME}" {SQL_TYPES["timestamp"]}')


def staged_select(table: Table, rows_sql: str) -> str:
    """Return the SELECT that stages typed rows with the hash :func:`merge_stage` compares them by.

    Parameters
    ----------
    table : Table
        The target canonical table.
    rows_sql : str
        A query giving the table's columns (typed) plus ``_line`` and ``_raw``.

    Returns
    -------
    str
        ``SELECT *, <hash> AS _hash FROM (rows_sql)``.
    """
    return f"SELECT s.*, {_hash_sql(table, 's')} AS _hash FROM ({rows_sql}) s"


def stage_rows(store: Store, table: Table, frame: pd.DataFrame, *, first: bool) -> None:
    """Append validated rows to the temporary staging table of an ingest.

    Parameters
    ----------
    store : Store
        The store (inside the file's transaction).
    table : Table
        The target canonical table.
    frame : pandas.DataFrame
        Validated rows: the table's columns plus ``_line`` (int) and ``_raw`` (str).
        The stage adds ``_hash`` (:func:`staged_select`).
    first : bool
        Whether this is the file's first chunk (the stage is created anew).
    """
    cast = ", ".join(
        (f'json("{c.name}") AS "{c.name}"' if c.type == "json" else f'CAST("{c.name}" AS {SQL_TYPES[c.type]}) AS "{c.name}"')
        if c.name in frame.columns
        else f'NULL::{SQL_TYPES[c.type]} AS "{c.name}"'
        for c in table.columns
    )
    # json() minifies, so exports that differ only in JSON white space are duplicates, not conflicts.
    select = staged_select(table, f"SELECT {cast}, CAST(_line AS BIGINT) AS _line, CAST(_raw AS VARCHAR) AS _raw FROM _jl_chunk")
    store.con.register("_jl_chunk", frame)
    with cleanup(store.con.unregister, "_jl_chunk"):
        if first:
            store.con.execute(f"CREATE OR REPLACE TEMP TABLE _jl_stage AS {select}")
        else:
            store.con.execute(f"INSERT INTO _jl_stage {select}")


def insert_quarantine(store: Store, frame: pd.DataFrame) -> int:
    """Append refused rows to ``quarantine``, skipping refusals already stored.

    A refusal is the same when its table, file, line, raw content and reason
    are; re-reading a file (``force=True``) therefore adds no quarantine row
    twice, so quarantine rows are unique on their key.

    Parameters
    ----------
    store : Store
        A writable store.
    frame : pandas.DataFrame
        The quarantine columns (``run``, ``source``, ``table_name``, ``file``,
        ``line``, ``raw``, ``reason``, ``ingested_at``).

    Returns
    -------
    int
        Rows written.
    """
    if frame.empty:
        return 0
    table = get_table("quarantine")
    cols = ", ".join(f'"{c}"' for c in table.names)
    select = ", ".join(
        f'CAST("{c.name}" AS {SQL_TYPES[c.type]}) AS "{c.name}"' if c.name in frame.columns else f'NULL::{SQL_TYPES[c.type]} AS "{c.name}"'
        for c in table.columns
    )
    before = _scalar(store.con, "SELECT count(*) FROM quarantine")
    store.con.register("_jl_refused", frame)
    with cleanup(store.con.unregister, "_jl_refused"):
        store.con.execute(
            f"""INSERT INTO quarantine ({cols})
            SELECT DISTINCT * FROM (SELECT {select} FROM _jl_refused) s WHERE NOT {_QUARANTINED}"""
        )
    return _scalar(store.con, "SELECT count(*) FROM quarantine") - before


def merge_stage(
    store: Store, table: Table, *, run: str, source: str, file: str, quarantined_lines: list[int] | None = None
) -> MergeCounts:
    """Merge the staging table into a canonical table, de-duplicating by key.

    Rules, all decided in SQL:

    * rows of the file that share a key with *different* content are all
      quarantined (which one is right cannot be known, and keeping the first
      would make the result depend on row order);
    * rows that repeat a key with identical content count once; the repeats
      are duplicates;
    * a row whose key is already stored with identical content is a duplicate;
    * a row whose key is stored with different content replaces the stored
      row in a mutable table (customers, users, tickets) and is quarantined
      in an immutable one (events, messages); in a mutable table a row older
      than the stored one by ``updated_at`` (both known) is *stale* instead:
      a duplicate, the stored row kept (ties and missing times: replaced);
    * every other row is inserted.

    Parameters
    ----------
    store : Store
        The store, inside the file's transaction, with ``_jl_stage`` filled
        (rows with ``_line``, ``_raw`` and ``_hash``: :func:`staged_select`).
    table : Table
        Target canonical table.
    run, source, file : str
        Written into quarantine rows.
    quarantined_lines : list of int, optional
        Receives the lines of the staged rows this merge quarantined.

    Returns
    -------
    MergeCounts
        ``loaded`` (inserted or updated), ``updated``, ``duplicate``,
        ``quarantined``, ``stale`` (a part of ``duplicate``).
    """
    (key,) = table.key
    con = store.con
    if table.mutable:
        ensure_snapshot_columns(store)
    cols = ", ".join(f'"{c}"' for c in table.names)
    stale = stale_sql(table, f'_cmp."{SNAPSHOT_TIME}"', "_stored_time")
    stored_time = f't."{SNAPSHOT_TIME}"' if SNAPSHOT_TIME in table.fields else "NULL"
    # One pass over the keys: a key whose rows hash differently is a conflict; the rest keep their first line.
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _jl_keys AS
        SELECT "{key}" AS k, min(_hash) <> max(_hash) AS conflict, count(*) AS n, min(_line) AS first_line
        FROM _jl_stage GROUP BY "{key}" """
    )
    stats = first_row(con.execute("SELECT count(*) FILTER (WHERE conflict), coalesce(max(n), 0) FROM _jl_keys"))
    any_conflict, max_rows = (int(stats[0]), int(stats[1])) if stats else (0, 0)
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _jl_conflict AS
        SELECT s."{key}" AS k, string_agg(CAST(s._line AS VARCHAR), ', ' ORDER BY s._line) AS lines
        FROM _jl_stage s SEMI JOIN (SELECT k FROM _jl_keys WHERE conflict) c ON s."{key}" = c.k
        GROUP BY s."{key}" """
        if any_conflict
        else 'CREATE OR REPLACE TEMP TABLE _jl_conflict AS SELECT NULL::VARCHAR AS k, NULL::VARCHAR AS lines WHERE false'
    )
    first = "_jl_stage"
    if max_rows > 1:  # repeated keys: the first line of each agreeing key
        first = "_jl_first"
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE _jl_first AS
            SELECT s.* FROM _jl_stage s JOIN _jl_keys k ON s."{key}" = k.k AND s._line = k.first_line
            WHERE NOT k.conflict"""
        )
    # Only rows whose key is stored need comparing; the rest are new.
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _jl_cmp AS
        SELECT f.*, {_hash_sql(table, "t")} AS _stored_hash, {stored_time} AS _stored_time
        FROM {first} f JOIN "{table.name}" t ON t."{key}" = f."{key}" """
    )
    total = _scalar(con, "SELECT count(*) FROM _jl_stage")
    n_conflict = _scalar(con, "SELECT count(*) FROM _jl_stage s SEMI JOIN _jl_conflict c ON s.\"" + key + "\" = c.k")
    n_first = _scalar(con, f"SELECT count(*) FROM {first}")
    n_same = _scalar(con, "SELECT count(*) FROM _jl_cmp WHERE _stored_hash = _hash")
    n_matched = _scalar(con, "SELECT count(*) FROM _jl_cmp")
    n_new = n_first - n_matched
    n_stale = _scalar(con, f"SELECT count(*) FROM _jl_cmp _cmp WHERE _stored_hash <> _hash AND {stale}")
    n_changed = n_first - n_same - n_new - n_stale
    replace = f"_stored_hash IS NOT NULL AND _stored_hash <> _hash AND NOT {stale}"
    quarantined = n_conflict
    con.execute(
        f"""INSERT INTO quarantine (run, source, table_name, file, line, raw, reason, ingested_at)
        SELECT * FROM (
            SELECT ? AS run, ? AS source, ? AS table_name, ? AS file, s._line AS line, s._raw AS raw,
                   'rows with {key}=' || s."{key}" || ' disagree (lines ' || c.lines || '); none was loaded' AS reason,
                   now() AS ingested_at
            FROM _jl_stage s JOIN _jl_conflict c ON s."{key}" = c.k
        ) s WHERE NOT {_QUARANTINED}""",
        [run, source, table.name, file],
    )
    updated = 0
    if n_changed:
        if table.mutable:
            con.execute(f"""DELETE FROM "{table.name}" WHERE "{key}" IN (SELECT "{key}" FROM _jl_cmp _cmp WHERE {replace})""")
            con.execute(f"""INSERT INTO "{table.name}" ({cols}) SELECT {cols} FROM _jl_cmp _cmp WHERE {replace}""")
            updated = n_changed
        else:
            con.execute(
                f"""INSERT INTO quarantine (run, source, table_name, file, line, raw, reason, ingested_at)
                SELECT * FROM (
                    SELECT ? AS run, ? AS source, ? AS table_name, ? AS file, _line AS line, _raw AS raw,
                           '{key}=' || "{key}" || ' is already stored with different content; {table.name} rows are never overwritten'
                               AS reason,
                           now() AS ingested_at
                    FROM _jl_cmp WHERE _stored_hash IS NOT NULL AND _stored_hash <> _hash
                ) s WHERE NOT {_QUARANTINED}""",
                [run, source, table.name, file],
            )
            quarantined += n_changed
    unmatched = f'ANTI JOIN _jl_cmp c ON f."{key}" = c."{key}"' if n_matched else ""
    con.execute(f'INSERT INTO "{table.name}" ({cols}) SELECT {cols} FROM {first} f {unmatched}')
    loaded = n_new + updated
    duplicate = total - n_conflict - loaded - (0 if table.mutable else n_changed)
    if quarantined_lines is not None:
        changed = "" if table.mutable else " UNION ALL SELECT _line FROM _jl_cmp WHERE _stored_hash IS NOT NULL AND _stored_hash <> _hash"
        found = con.execute(
            f'SELECT s._line FROM _jl_stage s SEMI JOIN _jl_conflict c ON s."{key}" = c.k{changed}'
        ).fetchall()
        quarantined_lines.extend(int(row[0]) for row in found)
    for tmp in ("_jl_stage", "_jl_keys", "_jl_conflict", "_jl_first", "_jl_cmp"):
        con.execute(f"DROP TABLE IF EXISTS {tmp}")
    return MergeCounts(loaded=loaded, updated=updated, duplicate=duplicate, quarantined=quarantined, stale=n_stale)


def _scalar(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    rows = con.execute(sql).fetchall()
    return int(rows[0][0]) if rows and rows[0][0] is not None else 0


def replace_derived_rows(store: Store, name: str, frame: pd.DataFrame, *, marker: str) -> int:
    """Replace the rows of *name* that identity resolution derived earlier with *frame*.

    Derived rows carry ``properties.derived_by == marker``; rows loaded by the
    generic ingest are never touched, except that a derived row replaces a
    row with the same key.

    Parameters
    ----------
    store : Store
        A writable store.
    name : str
        ``customers`` or ``users``.
    frame : pandas.DataFrame
        The new derived rows (canonical columns; ``properties`` JSON text
        holding the marker).
    marker : str
        Value of ``properties.derived_by``.

    Returns
    -------
    int
        Rows written.
    """
    table = get_table(name)
    (key,) = table.key
    ensure_snapshot_columns(store)
    store.con.execute(f"""DELETE FROM "{name}" WHERE json_extract_string(properties, '$.derived_by') = ?""", [marker])
    if frame.empty:
        return 0
    store.con.register("_jl_derived", frame)
    with cleanup(store.con.unregister, "_jl_derived"):
        store.con.execute(f'DELETE FROM "{name}" WHERE "{key}" IN (SELECT "{key}" FROM _jl_derived)')
    return store.insert(name, frame)
