"""The store: the only module that talks to the database.

The embedded default is a single DuckDB file. Every other module asks the
:class:`Store` for frames (``store.table("events")``, ``store.query(sql)``) or
hands it frames to write; no other module imports ``duckdb``. Backend-specific
SQL lives here so that the same event-level work can later run through Ibis on
another engine.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from .exceptions import JourneyLibError, SchemaError
from .schema import ALL_TABLES, Table, get_table

#: Where the CLI keeps the store unless ``--db`` or ``JOURNEYLIB_DB`` says otherwise.
DEFAULT_DB = Path("data") / "journeylib.duckdb"

_SQL_TYPES = {
    "id": "VARCHAR",
    "text": "VARCHAR",
    "enum": "VARCHAR",
    "timestamp": "TIMESTAMPTZ",
    "number": "DOUBLE",
    "integer": "BIGINT",
    "json": "JSON",
}


def default_db_path() -> Path:
    """Return the store path from ``JOURNEYLIB_DB`` or the default ``data/journeylib.duckdb``.

    Returns
    -------
    pathlib.Path
        The path (not necessarily existing).
    """
    env = os.environ.get("JOURNEYLIB_DB")
    return Path(env) if env else DEFAULT_DB


def table_ddl(table: Table) -> str:
    """Return the ``CREATE TABLE IF NOT EXISTS`` statement of a canonical table.

    Parameters
    ----------
    table : Table
        A canonical table schema.

    Returns
    -------
    str
        DuckDB DDL.
    """
    cols = ",\n  ".join(f'"{c.name}" {_SQL_TYPES[c.type]}' for c in table.columns)
    return f'CREATE TABLE IF NOT EXISTS "{table.name}" (\n  {cols}\n)'


class Store:
    """A canonical journey store in a DuckDB file.

    Parameters
    ----------
    path : str or pathlib.Path
        The DuckDB file; ``":memory:"`` for a throw-away store.
    read_only : bool, default False
        Open without write access (reports and dashboards do). A read-only
        store must already exist.

    Raises
    ------
    JourneyLibError
        If a read-only store does not exist, or the file is not a DuckDB
        database.

    Examples
    --------
    >>> store = Store(":memory:")
    >>> store.count("events")
    0
    """

    def __init__(self, path: str | Path = DEFAULT_DB, *, read_only: bool = False) -> None:
        self.path = Path(path) if str(path) != ":memory:" else None
        self.read_only = read_only
        if self.path is not None:
            if read_only and not self.path.exists():
                msg = (
                    f"store {self.path} does not exist. Create it with "
                    f"`journeylib ingest --db {self.path} TABLE FILE...` or `journeylib demo`."
                )
                raise JourneyLibError(msg)
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.con = duckdb.connect(str(self.path) if self.path else ":memory:", read_only=read_only)
        except duckdb.Error as exc:
            msg = f"cannot open store {path}: {exc}. Is it a DuckDB file, and not open for writing elsewhere?"
            raise JourneyLibError(msg) from exc
        if not read_only:
            self.create_tables()

    # -- lifecycle -------------------------------------------------------
    def close(self) -> None:
        """Close the connection."""
        self.con.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        where = self.path if self.path else ":memory:"
        return f"Store({str(where)!r}, read_only={self.read_only})"

    def create_tables(self) -> None:
        """Create every canonical table that does not exist yet."""
        for table in ALL_TABLES.values():
            self.con.execute(table_ddl(table))

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Store]:
        """Run a block in one transaction: all of it is written, or none.

        Yields
        ------
        Store
            This store.
        """
        self.con.execute("BEGIN TRANSACTION")
        try:
            yield self
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        self.con.execute("COMMIT")

    # -- reading ----------------------------------------------------------
    def query(self, sql: str, params: list[Any] | Mapping[str, Any] | None = None, **frames: pd.DataFrame) -> pd.DataFrame:
        """Run SQL and return the result as a DataFrame.

        Parameters
        ----------
        sql : str
            DuckDB SQL.
        params : list or dict, optional
            Prepared-statement parameters (``?`` or ``$name``).
        **frames : pandas.DataFrame
            Frames made visible to the query under their keyword names.

        Returns
        -------
        pandas.DataFrame
            The result; timestamps are timezone-aware UTC.
        """
        con = self.con
        for name, frame in frames.items():
            con.register(name, frame)
        try:
            return con.execute(sql, params).df() if params is not None else con.execute(sql).df()
        finally:
            for name in frames:
                con.unregister(name)

    def execute(self, sql: str, params: list[Any] | Mapping[str, Any] | None = None) -> None:
        """Run a statement that returns nothing of interest."""
        if params is None:
            self.con.execute(sql)
        else:
            self.con.execute(sql, params)

    def table(self, name: str, *, columns: list[str] | None = None, where: str | None = None) -> pd.DataFrame:
        """Return a canonical table as a DataFrame in its deterministic order.

        Parameters
        ----------
        name : str
            A canonical table name.
        columns : list of str, optional
            Columns to return (default all).
        where : str, optional
            A SQL filter.

        Returns
        -------
        pandas.DataFrame
            The table's rows, ordered by its canonical order.
        """
        table = get_table(name)
        cols = columns or table.names
        unknown = [c for c in cols if c not in table.fields]
        if unknown:
            msg = f"table {name!r} has no column(s) {unknown}; its columns are {table.names}"
            raise SchemaError(msg)
        select = ", ".join(f'"{c}"' for c in cols)
        order = ", ".join(f'"{c}"' for c in table.order)
        sql = f'SELECT {select} FROM "{name}"' + (f" WHERE {where}" if where else "") + f" ORDER BY {order}"
        return self.query(sql)

    def count(self, name: str) -> int:
        """Return the number of rows of a canonical table."""
        get_table(name)
        row = self.con.execute(f'SELECT count(*) FROM "{name}"').fetchone()
        return int(row[0]) if row else 0

    def fingerprint(self) -> str:
        """Return a short hash of the loaded data (files and row counts).

        Two stores with the same ingested files and counts have the same
        fingerprint; reports record it in their manifest.

        Returns
        -------
        str
            16 hex digits.
        """
        h = hashlib.sha256()
        for name in ALL_TABLES:
            if name in ("quarantine", "ingest_log"):
                continue
            h.update(f"{name}:{self.count(name)};".encode())
        log = self.query("SELECT DISTINCT sha256 FROM ingest_log ORDER BY sha256")
        for sha in log["sha256"]:
            h.update(str(sha).encode())
        return h.hexdigest()[:16]

    # -- writing ---------------------------------------------------------
    def insert(self, name: str, frame: pd.DataFrame) -> int:
        """Append rows to a canonical table.

        Parameters
        ----------
        name : str
            A canonical table name.
        frame : pandas.DataFrame
            Rows with (a subset of) the table's columns; missing columns are
            written as NULL.

        Returns
        -------
        int
            Number of rows written.
        """
        table = get_table(name)
        if frame.empty:
            return 0
        unknown = [c for c in frame.columns if c not in table.fields]
        if unknown:
            msg = f"cannot insert into {name!r}: unknown column(s) {unknown}; allowed are {table.names}"
            raise SchemaError(msg)
        select = ", ".join(
            f'CAST("{c.name}" AS {_SQL_TYPES[c.type]})' if c.name in frame.columns else f"NULL::{_SQL_TYPES[c.type]}"
            for c in table.columns
        )
        self.con.register("_jl_insert", frame)
        try:
            self.con.execute(f'INSERT INTO "{name}" SELECT {select} FROM _jl_insert')
        finally:
            self.con.unregister("_jl_insert")
        return len(frame)


def resolve_db_path(db: str | Path | None = None) -> Path:
    """Find the store a notebook, report or dashboard should open.

    Order: the explicit *db* argument; the ``JOURNEYLIB_DB`` environment
    variable; ``data/journeylib.duckdb`` in the working directory or the
    nearest parent that has one (notebooks run with ``notebooks/`` as cwd).

    Parameters
    ----------
    db : str or pathlib.Path, optional
        An explicit path; empty string or None means "find it".

    Returns
    -------
    pathlib.Path
        An absolute path.

    Raises
    ------
    JourneyLibError
        If no store is found; the message lists the places looked at.
    """
    if db:
        return Path(db).expanduser().resolve()
    env = os.environ.get("JOURNEYLIB_DB")
    if env:
        return Path(env).expanduser().resolve()
    here = Path.cwd().resolve()
    looked = []
    for folder in (here, *here.parents):
        candidate = folder / DEFAULT_DB
        looked.append(str(candidate))
        if candidate.exists():
            return candidate
    msg = (
        "no journeylib store found: no --db/db parameter, JOURNEYLIB_DB is unset, and none of "
        f"{', '.join(looked[:3])}{' ...' if len(looked) > 3 else ''} exists. Run `make demo` "
        "or `journeylib ingest --db PATH TABLE FILE...` first, or pass db=PATH."
    )
    raise JourneyLibError(msg)


def _hash_sql(table: Table, alias: str) -> str:
    """Return SQL for the md5 of a row's canonical columns, comparable across stage and store."""
    parts = " || '\x1f' || ".join(f"coalesce(CAST({alias}.\"{c}\" AS VARCHAR), '\x00')" for c in table.names)
    return f"md5({parts})"


class MergeCounts(dict[str, int]):
    """Counts of one staged merge: loaded, updated, duplicate, quarantined."""


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
    first : bool
        Whether this is the file's first chunk (the stage is created anew).
    """
    cast = ", ".join(
        f'CAST("{c.name}" AS {_SQL_TYPES[c.type]}) AS "{c.name}"'
        if c.name in frame.columns
        else f'NULL::{_SQL_TYPES[c.type]} AS "{c.name}"'
        for c in table.columns
    )
    select = f"SELECT {cast}, CAST(_line AS BIGINT) AS _line, CAST(_raw AS VARCHAR) AS _raw FROM _jl_chunk"
    store.con.register("_jl_chunk", frame)
    try:
        if first:
            store.con.execute(f"CREATE OR REPLACE TEMP TABLE _jl_stage AS {select}")
        else:
            store.con.execute(f"INSERT INTO _jl_stage {select}")
    finally:
        store.con.unregister("_jl_chunk")


def merge_stage(store: Store, table: Table, *, run: str, source: str, file: str) -> MergeCounts:
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
      in an immutable one (events, messages);
    * every other row is inserted.

    Parameters
    ----------
    store : Store
        The store, inside the file's transaction, with ``_jl_stage`` filled.
    table : Table
        Target canonical table.
    run, source, file : str
        Written into quarantine rows.

    Returns
    -------
    MergeCounts
        ``loaded`` (inserted or updated), ``updated``, ``duplicate``, ``quarantined``.
    """
    (key,) = table.key
    con = store.con
    cols = ", ".join(f'"{c}"' for c in table.names)
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _jl_staged AS
        SELECT s.*, {_hash_sql(table, "s")} AS _hash FROM _jl_stage s"""
    )
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _jl_conflict AS
        SELECT "{key}" AS k, string_agg(CAST(_line AS VARCHAR), ', ' ORDER BY _line) AS lines
        FROM _jl_staged GROUP BY "{key}" HAVING count(DISTINCT _hash) > 1"""
    )
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _jl_first AS
        SELECT * EXCLUDE (rn) FROM (
            SELECT s.*, row_number() OVER (PARTITION BY "{key}" ORDER BY _line) AS rn
            FROM _jl_staged s ANTI JOIN _jl_conflict c ON s."{key}" = c.k
        ) WHERE rn = 1"""
    )
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _jl_cmp AS
        SELECT f.*, CASE WHEN t."{key}" IS NULL THEN NULL ELSE {_hash_sql(table, "t")} END AS _stored_hash
        FROM _jl_first f LEFT JOIN "{table.name}" t ON t."{key}" = f."{key}" """
    )
    total = _scalar(con, "SELECT count(*) FROM _jl_staged")
    n_conflict = _scalar(con, "SELECT count(*) FROM _jl_staged s SEMI JOIN _jl_conflict c ON s.\"" + key + "\" = c.k")
    n_first = _scalar(con, "SELECT count(*) FROM _jl_first")
    n_same = _scalar(con, "SELECT count(*) FROM _jl_cmp WHERE _stored_hash = _hash")
    n_new = _scalar(con, "SELECT count(*) FROM _jl_cmp WHERE _stored_hash IS NULL")
    n_changed = n_first - n_same - n_new
    quarantined = n_conflict
    con.execute(
        f"""INSERT INTO quarantine (run, source, table_name, file, line, raw, reason, ingested_at)
        SELECT ?, ?, ?, ?, s._line, s._raw,
               'rows with {key}=' || s."{key}" || ' disagree (lines ' || c.lines || '); none was loaded',
               now()
        FROM _jl_staged s JOIN _jl_conflict c ON s."{key}" = c.k""",
        [run, source, table.name, file],
    )
    updated = 0
    if n_changed:
        if table.mutable:
            con.execute(
                f"""DELETE FROM "{table.name}" WHERE "{key}" IN
                (SELECT "{key}" FROM _jl_cmp WHERE _stored_hash IS NOT NULL AND _stored_hash <> _hash)"""
            )
            con.execute(
                f"""INSERT INTO "{table.name}" ({cols}) SELECT {cols} FROM _jl_cmp
                WHERE _stored_hash IS NOT NULL AND _stored_hash <> _hash"""
            )
            updated = n_changed
        else:
            con.execute(
                f"""INSERT INTO quarantine (run, source, table_name, file, line, raw, reason, ingested_at)
                SELECT ?, ?, ?, ?, _line, _raw,
                       '{key}=' || "{key}" || ' is already stored with different content; {table.name} rows are never overwritten',
                       now()
                FROM _jl_cmp WHERE _stored_hash IS NOT NULL AND _stored_hash <> _hash""",
                [run, source, table.name, file],
            )
            quarantined += n_changed
    con.execute(f'INSERT INTO "{table.name}" ({cols}) SELECT {cols} FROM _jl_cmp WHERE _stored_hash IS NULL')
    loaded = n_new + updated
    duplicate = total - n_conflict - loaded - (0 if table.mutable else n_changed)
    for tmp in ("_jl_stage", "_jl_staged", "_jl_conflict", "_jl_first", "_jl_cmp"):
        con.execute(f"DROP TABLE IF EXISTS {tmp}")
    return MergeCounts(loaded=loaded, updated=updated, duplicate=duplicate, quarantined=quarantined)


def _scalar(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    row = con.execute(sql).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


# -- dialect helpers: the backend-specific SQL fragments other modules may use ---------
def sql_add_days(expr: str, days: float) -> str:
    """Return SQL adding *days* (may be fractional) to a timestamp expression."""
    micros = round(days * 86_400_000_000)
    return f"({expr} + to_microseconds({micros}))"


def sql_days_between(start: str, end: str) -> str:
    """Return SQL for the (fractional) days from *start* to *end*."""
    return f"(epoch({end}) - epoch({start})) / 86400.0"


def sql_json_text(column: str, key: str) -> str:
    """Return SQL extracting property *key* of a JSON column as text."""
    safe = key.replace("'", "''").replace('"', '\\"')
    return f"json_extract_string({column}, '$.\"{safe}\"')"


def sql_quote(value: object) -> str:
    """Return a SQL string literal for *value* (as text)."""
    return "'" + str(value).replace("'", "''") + "'"
