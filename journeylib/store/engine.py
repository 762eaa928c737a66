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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from journeylib.exceptions import JourneyLibError, SchemaError
from journeylib.store.schema import ALL_TABLES, Table, get_table

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


#: DuckDB ``memory_limit`` of a writable store (ingest) unless ``memory_limit=`` or ``$JOURNEYLIB_MEMORY_LIMIT`` say otherwise.
DEFAULT_MEMORY_LIMIT = "2GB"
#: DuckDB ``memory_limit`` of a read-only store (reports, dashboards, analysis; one per dashboard kernel)
#: unless ``memory_limit=`` or ``$JOURNEYLIB_MEMORY_LIMIT`` say otherwise. With it the journey map's
#: operations on 12.4M events peak under 1 GB of RSS (``benchmarks/results/journey.md``).
DEFAULT_READ_MEMORY_LIMIT = "600MB"


def engine_settings(
    *,
    memory_limit: str | None = None,
    threads: int | None = None,
    temp_directory: str | Path | None = None,
    read_only: bool = False,
) -> dict[str, str]:
    """Return the DuckDB settings a :class:`Store` applies, from arguments, environment and defaults.

    Parameters
    ----------
    memory_limit : str, optional
        E.g. ``"2GB"`` or ``"60%"``; default ``$JOURNEYLIB_MEMORY_LIMIT``, else
        :data:`DEFAULT_READ_MEMORY_LIMIT` for a read-only store and
        :data:`DEFAULT_MEMORY_LIMIT` for a writable one; ``"none"`` (or
        empty) leaves DuckDB's default.
    threads : int, optional
        Default ``$JOURNEYLIB_THREADS``, else DuckDB's.
    temp_directory : str or pathlib.Path, optional
        Default ``$JOURNEYLIB_TEMP_DIRECTORY``, else DuckDB's.
    read_only : bool, default False
        Whether the store is opened read-only (picks the default memory limit).

    Returns
    -------
    dict of str to str
        Setting name → value, only those to set.

    Examples
    --------
    >>> engine_settings(memory_limit="1GB", threads=2)
    {'memory_limit': '1GB', 'threads': '2'}
    """
    out: dict[str, str] = {}
    default = DEFAULT_READ_MEMORY_LIMIT if read_only else DEFAULT_MEMORY_LIMIT
    mem = memory_limit if memory_limit is not None else os.environ.get("JOURNEYLIB_MEMORY_LIMIT", default)
    if mem.strip() and mem.strip().lower() != "none":
        out["memory_limit"] = mem.strip()
    thr = threads if threads is not None else os.environ.get("JOURNEYLIB_THREADS")
    if thr is not None and str(thr).strip():
        out["threads"] = str(int(thr))
    tmp = temp_directory if temp_directory is not None else os.environ.get("JOURNEYLIB_TEMP_DIRECTORY")
    if tmp is not None and str(tmp).strip():
        out["temp_directory"] = str(tmp)
    return out


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
    memory_limit : str, optional
        DuckDB's ``memory_limit`` (e.g. ``"2GB"``, ``"60%"`` of the RAM). Above
        it DuckDB spills to *temp_directory*, so a 10M-event ingest runs in
        bounded memory. Default: ``$JOURNEYLIB_MEMORY_LIMIT``, else
        :data:`DEFAULT_MEMORY_LIMIT`. ``"none"`` keeps DuckDB's own default
        (80% of the RAM).
    threads : int, optional
        DuckDB worker threads. Default: ``$JOURNEYLIB_THREADS``, else DuckDB's
        (the number of cores).
    temp_directory : str or pathlib.Path, optional
        Where DuckDB spills. Default: ``$JOURNEYLIB_TEMP_DIRECTORY``, else
        DuckDB's (``<store>.tmp`` next to the file).

    Raises
    ------
    JourneyLibError
        If a read-only store does not exist, the file is not a DuckDB
        database, or a setting is not valid.

    Examples
    --------
    >>> store = Store(":memory:")
    >>> store.count("events")
    0
    """

    def __init__(
        self,
        path: str | Path = DEFAULT_DB,
        *,
        read_only: bool = False,
        memory_limit: str | None = None,
        threads: int | None = None,
        temp_directory: str | Path | None = None,
    ) -> None:
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
        self.settings = engine_settings(memory_limit=memory_limit, threads=threads, temp_directory=temp_directory, read_only=read_only)
        for name, value in self.settings.items():
            try:
                self.con.execute(f"SET {name} = {sql_quote(value)}")
            except duckdb.Error as exc:
                self.con.close()
                msg = f"cannot set DuckDB {name} = {value!r} on store {path}: {exc}"
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
        (f'json("{c.name}") AS "{c.name}"' if c.type == "json" else f'CAST("{c.name}" AS {_SQL_TYPES[c.type]}) AS "{c.name}"')
        if c.name in frame.columns
        else f'NULL::{_SQL_TYPES[c.type]} AS "{c.name}"'
        for c in table.columns
    )
    # json() minifies, so exports that differ only in JSON white space are duplicates, not conflicts.
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


def sql_nth_smallest(expr: str, n: int, *, where: str | None = None) -> str:
    """Return an aggregate SQL expression for the *n*-th smallest value of *expr* in a group (1-based).

    Only rows satisfying the SQL condition *where* count, when given. NULL when
    fewer than *n* values qualify. A bounded top-*n* aggregate, much cheaper
    than numbering every row with a window function.
    """
    filt = f" FILTER (WHERE {where})" if where else ""
    if n == 1:
        return f"min({expr}){filt}"
    return f"(min({expr}, {int(n)}){filt})[{int(n)}]"


def sql_json_text(column: str, key: str) -> str:
    """Return SQL extracting property *key* of a JSON column as text."""
    safe = key.replace("'", "''").replace('"', '\\"')
    return f"json_extract_string({column}, '$.\"{safe}\"')"


def sql_quote(value: object) -> str:
    """Return a SQL string literal for *value* (as text)."""
    return "'" + str(value).replace("'", "''") + "'"


# -- vendor ingest and identity (issue 3) -----------------------------------
#
# Vendor readers (journeylib.io.<vendor>) never import duckdb: the SQL they
# need lives below. Two bookkeeping tables sit next to the canonical ones:
#
# ``source_identities``
#     every version of every record that identifies a person or an account in
#     a source (a CRM contact, a Zendesk organization, a Mixpanel distinct_id
#     with the e-mail and CRM id its events carried), keyed by
#     (source, source_id, record_hash). Identity resolution reads it.
# ``source_refs``
#     for every vendor row loaded into events, tickets or messages, the source
#     person and account it refers to. Resolution writes customer_id/user_id
#     of those rows from identity_map through it, so a row loaded before its
#     CRM record arrives gets its customer later.

#: DDL of the vendor bookkeeping tables.
VENDOR_DDL: tuple[str, ...] = (
    """CREATE TABLE IF NOT EXISTS source_identities (
  source VARCHAR, reader VARCHAR, source_id VARCHAR, kind VARCHAR,
  email VARCHAR, name VARCHAR, domain VARCHAR, account_ref VARCHAR,
  link_id VARCHAR, link_source VARCHAR, updated_at TIMESTAMPTZ, attributes JSON,
  record_hash VARCHAR, file VARCHAR, line BIGINT)""",
    """CREATE TABLE IF NOT EXISTS source_refs (
  table_name VARCHAR, row_id VARCHAR, source VARCHAR, person_ref VARCHAR, account_ref VARCHAR)""",
)

#: Columns of an identity observation (a row of ``source_identities`` before bookkeeping).
IDENTITY_COLUMNS: tuple[tuple[str, str], ...] = (
    ("source_id", "VARCHAR"),
    ("kind", "VARCHAR"),
    ("email", "VARCHAR"),
    ("name", "VARCHAR"),
    ("domain", "VARCHAR"),
    ("account_ref", "VARCHAR"),
    ("link_id", "VARCHAR"),
    ("link_source", "VARCHAR"),
    ("updated_at", "TIMESTAMPTZ"),
    ("attributes", "JSON"),
)

#: Columns resolution derives; they are left out of the content comparison of vendor rows.
DERIVED_COLUMNS: tuple[str, ...] = ("customer_id", "user_id")


@contextlib.contextmanager
def unordered_inserts(store: Store) -> Iterator[None]:
    """Let DuckDB write rows in any order inside the block (``preserve_insertion_order=false``).

    A vendor load never relies on the physical row order (every choice is by
    key, file and line), and without the order DuckDB parses and writes on
    all its threads and keeps less in memory. The previous setting is
    restored afterwards.
    """
    row = store.con.execute("SELECT current_setting('preserve_insertion_order')").fetchone()
    before = bool(row[0]) if row else True
    store.con.execute("SET preserve_insertion_order = false")
    try:
        yield
    finally:
        store.con.execute(f"SET preserve_insertion_order = {'true' if before else 'false'}")


def ensure_vendor_tables(store: Store) -> None:
    """Create the vendor bookkeeping tables (``source_identities``, ``source_refs``) if missing.

    Parameters
    ----------
    store : Store
        A writable store.
    """
    if store.read_only:  # reports and dashboards: nothing to create; readers check vendor_tables_exist
        return
    for ddl in VENDOR_DDL:
        store.con.execute(ddl)


def vendor_tables_exist(store: Store) -> bool:
    """Whether the store has the vendor bookkeeping tables (any vendor export was ever ingested)."""
    n = _count(store.con, "SELECT count(*) FROM duckdb_tables() WHERE table_name IN ('source_identities', 'source_refs') AND NOT temporary")
    return n == 2


def _stage_name(table: str) -> str:
    return f"_jlv_{table}"


def vendor_stage_table(table: str) -> str:
    """Return the name of the vendor staging table of *table* (``events``, ``tickets``, ...) of the file being read."""
    return _stage_name(table)


def _reject_sql_cols() -> str:
    return "CAST(line AS BIGINT) AS line, CAST(raw AS VARCHAR) AS raw, CAST(reason AS VARCHAR) AS reason, CAST(file AS VARCHAR) AS file"


def reset_vendor_stage(store: Store) -> None:
    """Drop every vendor staging table of the connection (start of a file)."""
    con = store.con
    for name in list(_ARROW_STAGES.get(id(con), {})):
        _drop(con, name)
    _PENDING_LINES.pop(id(con), None)
    for name in ("events", "tickets", "messages", "identities", "rejects", "jsonl"):
        con.execute(f"DROP TABLE IF EXISTS {_stage_name(name)}")
    _STAGES[id(con)] = set()


def _row_hash_sql(table: Table, alias: str = "") -> str:
    """Return the SQL hash of a vendor row's content: its columns except the derived ones, plus its references."""
    a = f"{alias}." if alias else ""
    cols = [f'{a}"{c}"' for c in table.names if c not in DERIVED_COLUMNS]
    return "hash(" + ", ".join([*cols, f"{a}_person_ref", f"{a}_account_ref"]) + ")"


def stage_vendor_rows(store: Store, table: Table, frame: pd.DataFrame) -> None:
    """Append reader rows to the vendor staging table of *table*.

    Parameters
    ----------
    store : Store
        The store, inside the file's transaction.
    table : Table
        events, tickets or messages.
    frame : pandas.DataFrame
        The table's columns (missing ones are NULL) plus ``_person_ref``,
        ``_account_ref`` (source ids the row refers to), ``_line``, ``_raw``
        and ``_file``.
    """
    if frame.empty:
        return
    cast = ", ".join(
        f'CAST("{c.name}" AS {_SQL_TYPES[c.type]}) AS "{c.name}"' if c.name in frame.columns else f'NULL::{_SQL_TYPES[c.type]} AS "{c.name}"'
        for c in table.columns
    )
    extra = ", ".join(
        f'CAST("{c}" AS {t}) AS "{c}"' if c in frame.columns else f'NULL::{t} AS "{c}"'
        for c, t in (("_person_ref", "VARCHAR"), ("_account_ref", "VARCHAR"), ("_line", "BIGINT"), ("_raw", "VARCHAR"), ("_file", "VARCHAR"))
    )
    _append(store, _stage_name(table.name), f"SELECT {cast}, {extra} FROM _jl_chunk", frame)


def stage_vendor_identities(store: Store, frame: pd.DataFrame) -> None:
    """Append identity observations to the vendor staging table.

    Parameters
    ----------
    store : Store
        The store, inside the file's transaction.
    frame : pandas.DataFrame
        Columns of :data:`IDENTITY_COLUMNS` (missing ones are NULL) plus
        ``_line``, ``_raw`` and ``_file``.
    """
    if frame.empty:
        return
    cast = ", ".join(f'CAST("{c}" AS {t}) AS "{c}"' if c in frame.columns else f'NULL::{t} AS "{c}"' for c, t in IDENTITY_COLUMNS)
    extra = ", ".join(
        f'CAST("{c}" AS {t}) AS "{c}"' if c in frame.columns else f'NULL::{t} AS "{c}"'
        for c, t in (("_line", "BIGINT"), ("_raw", "VARCHAR"), ("_file", "VARCHAR"))
    )
    _append(store, _stage_name("identities"), f"SELECT {cast}, {extra} FROM _jl_chunk", frame)


def stage_vendor_rejects(store: Store, frame: pd.DataFrame) -> None:
    """Append rejected input rows (``line``, ``raw``, ``reason``, ``file``) to the staging table."""
    if frame.empty:
        return
    _append(store, _stage_name("rejects"), f"SELECT {_reject_sql_cols()} FROM _jl_chunk", frame)


def _append(store: Store, stage: str, select: str, frame: Any) -> None:
    con = store.con
    con.register("_jl_chunk", frame)
    try:
        if _temp_exists(con, stage):
            con.execute(f"INSERT INTO {stage} {select}")
        else:
            con.execute(f"CREATE OR REPLACE TEMP TABLE {stage} AS {select}")
            _STAGES.setdefault(id(con), set()).add(stage)
    finally:
        con.unregister("_jl_chunk")


def staged_count(store: Store, name: str) -> int:
    """Return the number of rows in the vendor staging table *name* (0 if absent).

    For ``jsonl``: the parsed JSON Lines waiting for :func:`close_json_lines`.
    """
    con = store.con
    if name == "jsonl":
        return sum(t.num_rows for t in _PENDING_LINES.get(id(con), ()))
    stage = _stage_name(name)
    arrow = _ARROW_STAGES.get(id(con), {}).get(stage)
    if arrow is not None:
        return int(arrow.num_rows)
    if not _temp_exists(con, stage):
        return 0
    return _count(store.con, f"SELECT count(*) FROM {stage}")


@dataclass(frozen=True)
class JsonLinesSpec:
    """How a vendor's JSON Lines events become event rows, decided in SQL.

    The reader (which knows the vendor format) fills this in; the engine turns
    it into one SQL statement per block of lines, so no Python code runs per
    event.

    Parameters
    ----------
    fields : dict of str to tuple of str
        Named values: JSON paths (DuckDB syntax, e.g. ``$.properties.time``)
        tried in order; the first non-null wins.
    required : tuple of str
        Field names whose absence quarantines the line.
    event_field, time_field : str
        Fields holding the event name and its time.
    time_kind : {"epoch", "text"}
        ``epoch``: seconds since 1970 (milliseconds if above 1e11);
        ``text``: ISO-like text, UTC unless it carries an offset.
    id_prefix : str
        Prefix of ``event_id`` (the source name and a colon).
    id_fields : tuple of str
        The vendor's de-duplication key, first non-null wins; when all are
        null the id is the md5 of event, time, person and properties.
    person_refs : tuple of (str, str)
        ``(prefix, field)`` pairs; the first non-null gives ``source_refs.person_ref``.
    properties_path : str, optional
        Path of a JSON object kept as ``properties``.
    extras : tuple of (str, str)
        ``(key, field)`` pairs merged into ``properties``.
    identity : dict of str to str
        Observation column (``email``, ``link_id``, ``name``) → field name.
    timezone : str, optional
        IANA zone in which epoch values are local wall-clock times.
    """

    fields: dict[str, tuple[str, ...]]
    required: tuple[str, ...]
    event_field: str
    time_field: str
    time_kind: str
    id_prefix: str
    id_fields: tuple[str, ...]
    person_refs: tuple[tuple[str, str], ...]
    properties_path: str | None = None
    extras: tuple[tuple[str, str], ...] = ()
    identity: dict[str, str] = field(default_factory=dict)
    timezone: str | None = None


#: Rows per Arrow record batch handed to the engine (one batch would be scanned by one thread).
_SCAN_BATCH_ROWS = 32_768


def _sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _json_lines_sql(spec: JsonLinesSpec, source: str, *, lean: bool = False, guarded: bool = True) -> str:
    """Return the SQL that parses ``_jl_lines`` (``line``, ``raw``) into event rows.

    The full form says why each bad line is bad (``_reason``) and keeps its text
    (``s``). *lean* leaves that out: ``_reason`` is only a marker (any non-NULL
    value: the line is bad) and ``s`` is not returned, which is most of the
    cost of a block of good lines; the caller runs the full form on the marked
    lines. Unless *guarded*, a line that is not JSON fails the statement
    instead of giving NULL (``try()`` costs about 10% of the parse even when
    nothing fails): for a first attempt, retried guarded on error.
    """
    names = list(spec.fields)
    paths: list[str] = []
    index: dict[str, list[int]] = {}
    for name in names:
        index[name] = []
        for p in spec.fields[name]:
            paths.append(p)
            index[name].append(len(paths))
    path_list = "[" + ", ".join(_sql_str(p) for p in paths) + "]"

    def val(name: str) -> str:
        parts = [f"v[{i}]" for i in index[name]]
        return parts[0] if len(parts) == 1 else f"coalesce({', '.join(parts)})"

    t = val(spec.time_field)
    if spec.time_kind == "epoch":
        num = f"TRY_CAST({t} AS DOUBLE)"
        secs = f"CASE WHEN abs({num}) > 1e11 THEN {num} / 1000.0 ELSE {num} END"
        ts = f"CASE WHEN abs({num}) < 1e13 THEN to_timestamp({secs}) END"
        if spec.timezone:
            ts = f"timezone({_sql_str(spec.timezone)}, CAST({ts} AT TIME ZONE 'UTC' AS TIMESTAMP))"
        expect = "epoch seconds"
    else:
        # the regular expression runs only when the last 6 characters could hold an offset or a Z
        # (a naive '2025-03-01 09:30:00.000000' never can): same result, a fraction of the work
        tt = f"trim({t})"
        ts = (
            f"CASE WHEN (right({tt}, 1) IN ('z', 'Z') OR contains(right({tt}, 6), '+') OR contains(right({tt}, 6), '-')) "
            f"AND regexp_matches({tt}, '([zZ]|[+-]\\d\\d(:?\\d\\d)?)$') THEN TRY_CAST({tt} AS TIMESTAMPTZ) "
            f"ELSE timezone('UTC', TRY_CAST({tt} AS TIMESTAMP)) END"
        )
        expect = "a timestamp such as 2025-03-01 09:30:00"
    person = " ".join(f"WHEN {val(f)} IS NOT NULL AND {val(f)} <> '' THEN {_sql_str(pref)} || {val(f)}" for pref, f in spec.person_refs)
    person_sql = f"CASE {person} END" if person else "NULL"
    # the properties object and the extras' typed JSON values (json_extract, not _string): one parse for all
    typed = [spec.properties_path or "$.__journeylib_none__", *(spec.fields[f][0] for _, f in spec.extras)]
    props = "_jv[1]" if spec.properties_path else "NULL::JSON"
    extras_sql = "json_extract(s, [" + ", ".join(_sql_str(x) for x in typed) + "])" if spec.extras or spec.properties_path else "NULL::JSON[]"
    merged = "_p0"
    if spec.extras:
        obj = ", ".join(f"{_sql_str(k)}, _jv[{i}]" for i, (k, _) in enumerate(spec.extras, start=2))
        merged = f"CASE WHEN v IS NOT NULL THEN json_merge_patch(coalesce(_p0, '{{}}'::JSON), json_object({obj})) END"
    ids = [f"nullif({val(f)}, '')" for f in spec.id_fields]
    fallback = f"md5(concat_ws(chr(31), {val(spec.event_field)}, {t}, {person_sql}, CAST(_props AS VARCHAR)))"
    given = f"coalesce({', '.join(ids)})" if len(ids) > 1 else ids[0]
    event_id = f"{_sql_str(spec.id_prefix)} || CASE WHEN {given} IS NOT NULL THEN {given} ELSE {fallback} END"
    missing = " ".join(
        f"WHEN {val(f)} IS NULL OR trim({val(f)}) = '' THEN {_sql_str('missing required field ' + spec.fields[f][0].removeprefix('$.') + ' (expected by the reader)')}"
        for f in spec.required
    )
    ident = {k: val(f) for k, f in spec.identity.items()}
    ident_cols = ", ".join(f"{ident.get(c, 'NULL')} AS _id_{c}" for c in ("email", "link_id", "name"))
    # Blank lines are dropped on their bytes (a filter on the decoded text would decode each line
    # again per reference). One JSON parse per line for the fields (try(): a line that is not JSON
    # gives NULL instead of an error) and one for the properties object. json_type() runs only on lines missing a required
    # field, to say whether they were objects at all (a non-object never has a field).
    not_object = " OR ".join(f"{val(f)} IS NULL OR trim({val(f)}) = ''" for f in spec.required) or "false"
    extract = f"json_extract_string(s, {path_list})"
    extract = f"try({extract})" if guarded else extract
    if lean:  # the same rows; a line is bad exactly when the full form gives it a reason
        jt = "'OBJECT'"
        head = "SELECT line,"
        reason = f"CASE WHEN v IS NULL OR {not_object} OR _ts IS NULL THEN 'bad' END AS _reason"
    else:
        jt = f"CASE WHEN v IS NOT NULL AND ({not_object}) THEN try(json_type(s)) ELSE 'OBJECT' END"
        head = "SELECT line, coalesce(s, CAST(raw AS VARCHAR)) AS s,"
        reason = f"""CASE WHEN s IS NULL THEN 'bytes that are not valid UTF-8'
                WHEN v IS NULL THEN 'not valid JSON'
                WHEN jt <> 'OBJECT' THEN 'expected a JSON object per line, found ' || lower(jt)
                {missing}
                WHEN _ts IS NULL THEN {_sql_str(spec.fields[spec.time_field][0].removeprefix('$.') + ': expected ' + expect + ', found ')} || coalesce({t}, 'nothing')
           END AS _reason"""
    return f"""
    WITH d AS (SELECT line, try(decode(raw)) AS s, raw FROM _jl_lines
               WHERE octet_length(raw) > 8 OR coalesce(trim(try(decode(raw)), ' ' || chr(9) || chr(10) || chr(13)) <> '', true)),
    p AS (SELECT line, s, raw, {extract} AS v FROM d),
    q0 AS (SELECT *, CASE WHEN v IS NOT NULL THEN {extras_sql} END AS _jv FROM p),
    q AS (SELECT *, {props} AS _p0 FROM q0),
    r AS (SELECT *, {ts} AS _ts, {merged} AS _props, {jt} AS jt FROM q)
    {head}
           {reason},
           CASE WHEN v IS NOT NULL THEN {event_id} END AS event_id,
           NULL::VARCHAR AS customer_id, NULL::VARCHAR AS user_id, _ts AS "timestamp",
           {val(spec.event_field)} AS event, {_sql_str(source)} AS source, _props AS properties,
           {person_sql} AS _person_ref, NULL::VARCHAR AS _account_ref, {ident_cols}
    FROM r"""


def stage_json_lines(store: Store, raw: Any, first_line: int, *, spec: JsonLinesSpec, source: str, file: str) -> int:
    """Parse a block of JSON Lines in SQL into the vendor staging tables.

    Good lines go to the events stage; bad ones (not UTF-8, not JSON, not an
    object, missing a required field, unreadable time) to the rejects stage
    with their line number and reason; the identities each line carries to a
    per-block aggregate.

    Parameters
    ----------
    store : Store
        The store, inside the file's transaction.
    raw : pyarrow.Array
        Binary array, one element per physical line (a trailing newline is
        ignored).
    first_line : int
        1-based line number of the first element.
    spec : JsonLinesSpec
        What to extract.
    source : str
        Source label written into ``events.source``.
    file : str
        File label for quarantine rows.

    Returns
    -------
    int
        Non-blank lines read.
    """
    import numpy as np
    import pyarrow as pa

    n = len(raw)
    lines = pa.table({"line": pa.array(np.arange(first_line, first_line + n, dtype=np.int64)), "raw": raw})
    if n > _SCAN_BATCH_ROWS:  # several record batches: the engine scans them on all its threads
        lines = pa.Table.from_batches(lines.to_batches(max_chunksize=_SCAN_BATCH_ROWS))
    con = store.con
    ev = get_table("events")
    ev_cols = ", ".join(f'"{c}"' for c in ev.names)
    fl = _sql_str(file)

    def select(*, lean: bool, guarded: bool) -> str:
        raw_sql = "NULL::VARCHAR" if lean else "CASE WHEN _reason IS NOT NULL THEN left(rtrim(s, chr(10) || chr(13)), 4000) END"
        return f"""SELECT {ev_cols}, _person_ref, _account_ref, line AS _line, {raw_sql} AS _raw, {fl} AS _file,
                 _reason, _id_email, _id_link_id, _id_name
                 FROM ({_json_lines_sql(spec, source, lean=lean, guarded=guarded)})"""

    # The parse reads nothing of the store: it runs on its own connection to the database, outside
    # the file's transaction, so a statement that fails leaves that transaction intact.
    cur = con.cursor()
    try:
        # lossless: ``properties`` stays JSON through Arrow (as text it would be re-validated on insert)
        cur.execute("SET arrow_lossless_conversion = true")
        # Good lines need none of the work that explains a bad one: parse the block in the lean
        # form first (and unguarded: a line that is not JSON fails the statement, which is then
        # run guarded), then run the full form on just the lines it marked bad, if any.
        _hold("_jl_lines", lines)
        try:
            parsed = cur.sql(select(lean=True, guarded=False)).to_arrow_table()
        except (duckdb.InvalidInputException, duckdb.ConversionException):
            parsed = cur.sql(select(lean=True, guarded=True)).to_arrow_table()
        if parsed.column("_reason").null_count < parsed.num_rows:
            import pyarrow.compute as pc

            bad = pc.is_valid(parsed.column("_reason"))
            _hold("_jl_lines", lines.filter(pc.is_in(lines.column("line"), value_set=parsed.column("_line").filter(bad))))
            explained = cur.sql(select(lean=False, guarded=True)).to_arrow_table()
            parsed = pa.concat_tables([parsed.filter(pc.invert(bad)), explained.cast(parsed.schema)])
    finally:
        cur.execute("RESET arrow_lossless_conversion")
        cur.close()
        _release("_jl_lines")
    _PENDING_LINES.setdefault(id(con), []).append(parsed)
    return int(parsed.num_rows)


def close_json_lines(store: Store, *, materialize: bool = False) -> None:
    """Split the parsed JSON Lines into the events, rejects and identities stages.

    Call after the :func:`stage_json_lines` calls of a flush: bad lines go to
    the rejects stage, the distinct (person, e-mail, CRM id, company) of the
    good ones to the identities stage, and the good lines become the events
    stage.

    The parsed lines are Arrow tables owned by Python, not tables of the
    engine: a table created and dropped inside the file's transaction keeps
    its memory until the commit, so a 10M-line file would hold every flush
    at once. The events stage stays an Arrow table readable by name from
    the engine (read by :func:`merge_vendor_stage`, freed when it drops it)
    unless *materialize* asks for an engine table (needed to ``UPDATE`` it,
    e.g. by :func:`journeylib.store.eventmap.apply_event_map`) or reader rows were
    staged for events too.

    Parameters
    ----------
    store : Store
        The store, inside the file's transaction.
    materialize : bool, default False
        Make the events stage a temporary table of the engine.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    con = store.con
    parts = [t for t in _PENDING_LINES.pop(id(con), []) if t.num_rows]
    if not parts:
        return
    lines = pa.concat_tables(parts)
    del parts
    stage = _stage_name("jsonl")
    _register_stage(con, stage, lines)
    try:
        n_bad = lines.num_rows - lines.column("_reason").null_count
        if n_bad:
            _append_sql(
                store, _stage_name("rejects"), f"SELECT _line AS line, _raw AS raw, _reason AS reason, _file AS file FROM {stage} WHERE _reason IS NOT NULL"
            )
        _append_sql(
            store,
            _stage_name("identities"),
            # distinct raw values first (a plain hash aggregate), normalised on the few that remain
            f"""WITH g AS (SELECT _person_ref, _id_email, _id_name, _id_link_id, min(_line) AS _line, min(_file) AS _file
                           FROM {stage} WHERE _reason IS NULL AND _person_ref IS NOT NULL GROUP BY ALL)
                SELECT _person_ref AS source_id, 'person' AS kind, lower(trim(any_value(_id_email))) AS email, _id_name AS name,
                       NULL::VARCHAR AS domain, NULL::VARCHAR AS account_ref, nullif(trim(_id_link_id), '') AS link_id,
                       NULL::VARCHAR AS link_source, NULL::TIMESTAMPTZ AS updated_at, NULL::JSON AS attributes,
                       min(_line) AS _line, NULL::VARCHAR AS _raw, min(_file) AS _file
                FROM g GROUP BY _person_ref, lower(trim(_id_email)), _id_name, nullif(trim(_id_link_id), '')""",
        )
    finally:
        _drop(con, stage)
    good = lines.filter(pc.is_null(lines.column("_reason"))) if n_bad else lines
    del lines
    if not good.num_rows:
        return
    events = _stage_name("events")
    if materialize or _temp_exists(con, events):
        if events in _ARROW_STAGES.get(id(con), {}):  # an earlier block of this flush is held as Arrow: make it a table
            held = _ARROW_STAGES[id(con)][events]
            _drop(con, events)
            _materialize(store, events, held)
        _materialize(store, events, good)
    else:
        _register_stage(con, events, good)


def _materialize(store: Store, stage: str, table: Any) -> None:
    """Append the rows of the Arrow *table* (events stage columns and more) to the engine table *stage*."""
    cols = ", ".join(f'"{c}"' for c in get_table("events").names)
    _hold("_jl_held", table)
    try:
        _append_sql(store, stage, f"SELECT {cols}, _person_ref, _account_ref, _line, _raw, _file FROM _jl_held")
    finally:
        _release("_jl_held")


def _append_sql(store: Store, stage: str, select: str) -> None:
    con = store.con
    if _temp_exists(con, stage):
        con.execute(f"INSERT INTO {stage} {select}")
    else:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {stage} AS {select}")
        _STAGES.setdefault(id(con), set()).add(stage)


def merge_vendor_stage(store: Store, table: Table, *, run: str, source: str) -> MergeCounts:
    """Merge the vendor staging table of *table* into the store, de-duplicating by key.

    The rules are those of :func:`merge_stage` (conflicting rows in one file
    are all quarantined; identical repeats are duplicates; a stored key with
    other content is replaced in a mutable table and quarantined otherwise),
    with two differences: the content compared is the row without the columns
    resolution derives (``customer_id``, ``user_id``) but with the source ids
    it refers to, and every loaded row's references are written to
    ``source_refs``.

    The work is set-based and proportional to what needs it: one aggregate of
    the staged keys finds the repeated ones, one semi join finds the ones
    already stored, and row contents are hashed only for those keys. When no
    key repeats and none is stored (the usual case) the stage is inserted as
    it is.

    Parameters
    ----------
    store : Store
        The store, inside the file's transaction.
    table : Table
        events, tickets or messages.
    run, source : str
        Written into quarantine rows.

    Returns
    -------
    MergeCounts
        ``loaded``, ``updated``, ``duplicate``, ``quarantined``.
    """
    stage = _stage_name(table.name)
    total = staged_count(store, table.name)
    if not total:
        _drop(store.con, stage)
        return MergeCounts(loaded=0, updated=0, duplicate=0, quarantined=0)
    (key,) = table.key
    con = store.con
    raw = "coalesce(s._raw, left(CAST(to_json(struct_pack(" + ", ".join(f'"{c}" := s."{c}"' for c in table.names) + ")) AS VARCHAR), 4000))"
    h_stage = _row_hash_sql(table, "s")
    h_stored = _row_hash_sql(table, "t").replace("t._person_ref", "r.person_ref").replace("t._account_ref", "r.account_ref")
    # keys staged more than once, with how many different contents they carry
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _jlv_rep AS
        SELECT s."{key}" AS k, count(*) AS n, count(DISTINCT {h_stage}) AS nh
        FROM {stage} s SEMI JOIN (SELECT "{key}" AS k FROM {stage} GROUP BY ALL HAVING count(*) > 1) d ON s."{key}" = d.k
        GROUP BY ALL"""
    )
    # staged keys already stored: a scan of the stored keys only; whole rows are read and hashed
    # only for the keys found (none when a file brings only new events)
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _jlv_hit AS SELECT t."{key}" AS k FROM "{table.name}" t SEMI JOIN {stage} s ON s."{key}" = t."{key}" """)
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _jlv_old AS
        WITH o AS (SELECT t.*, {h_stored} AS sh FROM "{table.name}" t
                   SEMI JOIN _jlv_hit x ON x.k = t."{key}"
                   LEFT JOIN source_refs r ON r.table_name = '{table.name}' AND r.row_id = t."{key}")
        SELECT o."{key}" AS k, any_value(o.sh) AS sh, min({h_stage}) AS h, count(*) AS n
        FROM o JOIN {stage} s ON s."{key}" = o."{key}"
        WHERE o."{key}" NOT IN (SELECT k FROM _jlv_rep WHERE nh > 1 AND k IS NOT NULL)
        GROUP BY ALL"""
        if _count(con, "SELECT count(*) FROM _jlv_hit")
        else "CREATE OR REPLACE TEMP TABLE _jlv_old (k VARCHAR, sh UBIGINT, h UBIGINT, n BIGINT)"
    )
    n_conflict = _count(con, "SELECT coalesce(sum(n), 0) FROM _jlv_rep WHERE nh > 1")
    n_old = _count(con, "SELECT count(*) FROM _jlv_old")
    n_changed = _count(con, "SELECT count(*) FROM _jlv_old WHERE sh <> h")
    n_keys = total if not _count(con, "SELECT count(*) FROM _jlv_rep") else _count(con, f'SELECT count(*) FROM (SELECT DISTINCT "{key}" FROM {stage})')
    n_conflict_keys = _count(con, "SELECT count(*) FROM _jlv_rep WHERE nh > 1")
    n_new = n_keys - n_conflict_keys - n_old
    q = "INSERT INTO quarantine (run, source, table_name, file, line, raw, reason, ingested_at) "
    if n_conflict:
        con.execute(
            q + f"""SELECT ?, ?, ?, s._file, s._line, {raw},
                   'rows with {key}=' || s."{key}" || ' disagree (lines ' ||
                   (SELECT string_agg(CAST(x._line AS VARCHAR), ', ' ORDER BY x._line) FROM {stage} x WHERE x."{key}" = s."{key}")
                   || '); none was loaded', now()
            FROM {stage} s SEMI JOIN (SELECT k FROM _jlv_rep WHERE nh > 1) c ON s."{key}" = c.k""",
            [run, source, table.name],
        )

    def write(chosen: str) -> None:
        # the first staged row (by file, line) of every key *chosen* selects
        sel = f"""SELECT * EXCLUDE (rn) FROM (
                SELECT s.*, row_number() OVER (PARTITION BY s."{key}" ORDER BY s._file, s._line) AS rn
                FROM {stage} s SEMI JOIN ({chosen}) c ON s."{key}" = c.k
            ) WHERE rn = 1"""
        _write_rows(con, table, sel, source)

    quarantined = n_conflict
    updated = 0
    if n_changed:
        changed = "SELECT k FROM _jlv_old WHERE sh <> h"
        if table.mutable:
            con.execute(f'DELETE FROM "{table.name}" WHERE "{key}" IN ({changed})')
            con.execute(f"DELETE FROM source_refs WHERE table_name = '{table.name}' AND row_id IN ({changed})")
            write(changed)
            updated = n_changed
        else:
            con.execute(
                q + f"""SELECT ?, ?, ?, s._file, s._line, {raw},
                       '{key}=' || s."{key}" || ' is already stored with different content; {table.name} rows are never overwritten', now()
                FROM {stage} s SEMI JOIN ({changed}) c ON s."{key}" = c.k""",
                [run, source, table.name],
            )
            quarantined += _count(con, "SELECT coalesce(sum(n), 0) FROM _jlv_old WHERE sh <> h")
    if n_new and n_new == total:  # every staged row is new and unique: straight from the stage
        _write_rows(con, table, f"SELECT * FROM {stage}", source)
    elif n_new:
        # new keys staged once come straight from the stage; repeated ones through a window over just them
        skip = "SELECT k FROM _jlv_rep UNION ALL SELECT k FROM _jlv_old"
        _write_rows(con, table, f'SELECT s.* FROM {stage} s ANTI JOIN ({skip}) x ON s."{key}" = x.k', source)
        if _count(con, "SELECT count(*) FROM _jlv_rep WHERE nh = 1"):
            write("SELECT k FROM _jlv_rep r WHERE nh = 1 AND k NOT IN (SELECT k FROM _jlv_old)")
    loaded = n_new + updated
    duplicate = total - quarantined - loaded
    for tmp in (stage, "_jlv_rep", "_jlv_hit", "_jlv_old"):
        _drop(con, tmp)
    return MergeCounts(loaded=loaded, updated=updated, duplicate=duplicate, quarantined=quarantined)


#: DuckDB compression of the string columns written by a vendor load (see :func:`_write_rows`).
VENDOR_STRING_COMPRESSION = "zstd"


def _write_rows(con: duckdb.DuckDBPyConnection, table: Table, select: str, source: str) -> None:
    """Insert the rows *select* returns (staged columns) into *table* and their references into ``source_refs``.

    The rows are written with :data:`VENDOR_STRING_COMPRESSION` (DuckDB's
    ``force_compression``) instead of DuckDB's own choice: for vendor rows,
    whose ``properties`` JSON and ids are mostly distinct strings, the
    automatic choice (DICT_FSST) made writing the rows about half the CPU of
    a Mixpanel load (1M events: 1.4 CPU-s for ``events``, ZSTD 0.65) and
    stored them in more space (ZSTD: about 40% less). Columns that are not
    strings keep their usual compression.
    """
    (key,) = table.key
    cols = ", ".join(f'"{c}"' for c in table.names)
    row = con.execute("SELECT current_setting('force_compression')").fetchone()
    before = str(row[0]) if row and row[0] else "auto"
    con.execute(f"SET force_compression = {sql_quote(VENDOR_STRING_COMPRESSION)}")
    try:
        con.execute(f'INSERT INTO "{table.name}" ({cols}) SELECT {cols} FROM ({select})')
        con.execute(f"""INSERT INTO source_refs SELECT '{table.name}', "{key}", ?, _person_ref, _account_ref FROM ({select})""", [source])
    finally:
        con.execute(f"SET force_compression = {sql_quote(before)}")


def merge_vendor_identities(store: Store, *, source: str, reader: str) -> MergeCounts:
    """Store the staged identity observations that are new (by content), de-duplicated.

    Parameters
    ----------
    store : Store
        The store, inside the file's transaction.
    source, reader : str
        The source label and the reader that produced the observations.

    Returns
    -------
    MergeCounts
        ``loaded`` (new versions), ``duplicate`` (versions already stored or
        repeated), ``updated`` and ``quarantined`` (always 0).
    """
    stage = _stage_name("identities")
    if not staged_count(store, "identities"):
        return MergeCounts(loaded=0, updated=0, duplicate=0, quarantined=0)
    con = store.con
    obs = [c for c, _ in IDENTITY_COLUMNS]
    hash_cols = ", ".join(f'CAST("{c}" AS VARCHAR)' for c in obs)
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _jlv_ids AS
        SELECT * FROM (SELECT s.*, md5(concat_ws(chr(31), {hash_cols}, '')) AS record_hash FROM {stage} s)
        QUALIFY row_number() OVER (PARTITION BY source_id, record_hash ORDER BY _file, _line) = 1"""
    )
    total = _count(con, f"SELECT count(*) FROM {stage}")
    con.execute(
        """CREATE OR REPLACE TEMP TABLE _jlv_ids_new AS
        SELECT i.* FROM _jlv_ids i ANTI JOIN source_identities t
        ON t.source = ? AND t.source_id = i.source_id AND t.record_hash = i.record_hash""",
        [source],
    )
    loaded = _count(con, "SELECT count(*) FROM _jlv_ids_new")
    sel = ", ".join(f'"{c}"' for c in obs)
    con.execute(
        f"""INSERT INTO source_identities (source, reader, {sel}, record_hash, file, line)
        SELECT ?, ?, {sel}, record_hash, _file, _line FROM _jlv_ids_new""",
        [source, reader],
    )
    for tmp in (stage, "_jlv_ids", "_jlv_ids_new"):
        _drop(con, tmp)
    return MergeCounts(loaded=loaded, updated=0, duplicate=total - loaded, quarantined=0)


def quarantine_vendor_rejects(store: Store, *, run: str, source: str, table_name: str) -> dict[str, int]:
    """Move the staged rejects into ``quarantine``; return their count per file."""
    stage = _stage_name("rejects")
    if not staged_count(store, "rejects"):
        return {}
    store.con.execute(
        f"""INSERT INTO quarantine (run, source, table_name, file, line, raw, reason, ingested_at)
        SELECT ?, ?, ?, file, line, raw, reason, now() FROM {stage}""",
        [run, source, table_name],
    )
    counts = store.con.execute(f"SELECT file, count(*) FROM {stage} GROUP BY file").fetchall()
    _drop(store.con, stage)
    return {str(f): int(n) for f, n in counts}


def identity_observations(store: Store) -> pd.DataFrame:
    """Return the identity evidence resolution works from, one row per source id.

    Records of tools that keep a snapshot (CRM, support: ``updated_at`` set)
    contribute their latest version (ties broken by content hash, so the
    order files were ingested in never matters); ids observed on events
    (``updated_at`` empty) contribute every distinct value they carried.

    Parameters
    ----------
    store : Store
        The store.

    Returns
    -------
    pandas.DataFrame
        Columns ``source``, ``reader``, ``source_id``, ``kind``, ``email``,
        ``name``, ``domain``, ``account_ref``, ``link_id``, ``link_source``,
        ``attributes``, ``first_seen`` (earliest ``updated_at``).
    """
    ensure_vendor_tables(store)
    return store.query(
        """WITH latest AS (
            SELECT * FROM source_identities WHERE updated_at IS NOT NULL
            QUALIFY row_number() OVER (PARTITION BY source, source_id ORDER BY updated_at DESC, record_hash DESC) = 1
        ), seen AS (
            SELECT source, source_id, min(updated_at) AS first_seen FROM source_identities GROUP BY ALL
        ), obs AS (
            SELECT source, reader, source_id, kind, email, name, domain, account_ref, link_id, link_source,
                   CAST(attributes AS VARCHAR) AS attributes FROM latest
            UNION
            SELECT DISTINCT o.source, o.reader, o.source_id, o.kind, o.email, o.name, o.domain, o.account_ref, o.link_id,
                   o.link_source, CAST(o.attributes AS VARCHAR)
            FROM source_identities o ANTI JOIN latest l ON l.source = o.source AND l.source_id = o.source_id
            WHERE o.updated_at IS NULL
        )
        SELECT obs.*, seen.first_seen FROM obs JOIN seen USING (source, source_id)
        ORDER BY source, source_id, email NULLS FIRST, link_id NULLS FIRST, name NULLS FIRST, account_ref NULLS FIRST"""
    )


def replace_identity_map(store: Store, frame: pd.DataFrame) -> None:
    """Replace ``identity_map`` with *frame* (its six columns)."""
    store.con.execute("DELETE FROM identity_map")
    store.insert("identity_map", frame)


def apply_identity_map(store: Store) -> dict[str, int]:
    """Write ``customer_id`` and ``user_id`` of vendor rows from ``identity_map``.

    A row's account reference wins when it resolves to a customer; otherwise
    its person reference decides. Rows whose references do not resolve get
    NULL. Only rows whose values change are written.

    Parameters
    ----------
    store : Store
        A writable store.

    Returns
    -------
    dict of str to int
        Rows changed per table.
    """
    ensure_vendor_tables(store)
    changed: dict[str, int] = {}
    for name, key in (("events", "event_id"), ("tickets", "ticket_id"), ("messages", "message_id")):
        store.con.execute(
            f"""CREATE OR REPLACE TEMP TABLE _jlv_res AS
            SELECT r.row_id, coalesce(a.customer_id, p.customer_id) AS customer_id, p.user_id AS user_id
            FROM source_refs r
            LEFT JOIN identity_map p ON p.source = r.source AND p.source_id = r.person_ref
            LEFT JOIN identity_map a ON a.source = r.source AND a.source_id = r.account_ref
            WHERE r.table_name = '{name}'"""
        )
        store.con.execute(
            f"""CREATE OR REPLACE TEMP TABLE _jlv_upd AS
            SELECT x.* FROM _jlv_res x JOIN "{name}" t ON t."{key}" = x.row_id
            WHERE t.customer_id IS DISTINCT FROM x.customer_id OR t.user_id IS DISTINCT FROM x.user_id"""
        )
        n = _count(store.con, "SELECT count(*) FROM _jlv_upd")
        if n:
            store.con.execute(
                f"""UPDATE "{name}" SET customer_id = u.customer_id, user_id = u.user_id
                FROM _jlv_upd u WHERE "{name}"."{key}" = u.row_id"""
            )
        changed[name] = n
        store.con.execute("DROP TABLE IF EXISTS _jlv_res")
        store.con.execute("DROP TABLE IF EXISTS _jlv_upd")
    return changed


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
    store.con.execute(f"""DELETE FROM "{name}" WHERE json_extract_string(properties, '$.derived_by') = ?""", [marker])
    if frame.empty:
        return 0
    store.con.register("_jl_derived", frame)
    try:
        store.con.execute(f'DELETE FROM "{name}" WHERE "{key}" IN (SELECT "{key}" FROM _jl_derived)')
    finally:
        store.con.unregister("_jl_derived")
    return store.insert(name, frame)


def _count(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> int:
    """Run a one-value query to completion and return the value as int (0 for NULL)."""
    rows = con.execute(sql, params).fetchall() if params is not None else con.execute(sql).fetchall()
    return int(rows[0][0]) if rows and rows[0][0] is not None else 0


#: Vendor staging tables created on each connection (avoids a catalog query per check).
_STAGES: dict[int, set[str]] = {}
#: Staging tables held as Arrow tables readable by name (see :func:`close_json_lines`).
_ARROW_STAGES: dict[int, dict[str, Any]] = {}
#: Parsed JSON Lines blocks not yet split by :func:`close_json_lines`, per connection.
_PENDING_LINES: dict[int, list[Any]] = {}


def _hold(name: str, table: Any) -> None:
    """Make the Arrow *table* readable as *name* by SQL run from this module.

    DuckDB's Python replacement scan finds it among this module's globals
    (the frame that runs the query). ``connection.register`` would do the
    same, but DuckDB keeps every object registered inside a transaction
    alive until the transaction ends: a 10M-line file would hold all its
    blocks, raw and parsed, until its COMMIT.
    """
    globals()[name] = table


def _release(name: str) -> None:
    globals().pop(name, None)


def _register_stage(con: duckdb.DuckDBPyConnection, name: str, table: Any) -> None:
    """Hold a staging table as an Arrow table readable as *name* (freed as soon as it is dropped)."""
    _hold(name, table)
    _ARROW_STAGES.setdefault(id(con), {})[name] = table
    _STAGES.setdefault(id(con), set()).add(name)


def _drop(con: duckdb.DuckDBPyConnection, name: str) -> None:
    if _ARROW_STAGES.get(id(con), {}).pop(name, None) is not None:
        _release(name)
    else:
        con.execute(f"DROP TABLE IF EXISTS {name}")
    _STAGES.get(id(con), set()).discard(name)


def _temp_exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    return name in _STAGES.get(id(con), set())
