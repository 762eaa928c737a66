"""The database: a :class:`Store` holds the connection to the canonical tables and its settings.

The embedded default is a single DuckDB file. Every other module asks the
:class:`Store` for frames (``store.table("events")``, ``store.query(sql)``) or
hands it frames to write; only the modules of :mod:`journeylib.store` import
``duckdb``. SQL fragments whose spelling depends on the backend come from
:mod:`journeylib.store.dialect`.

A writable store (an ingest) keeps its connection, and with it DuckDB's lock
on the file, until it is closed. A read-only store (reports, dashboards,
analysis) opens its connection for each operation, or for one
:meth:`Store.session`, and closes it after, so it holds no lock between two
computations and an ingest can always run. A store refused by another
process's lock waits for it a bounded time
(:func:`journeylib.store.errors.wait_for_lock`).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import threading
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pandas as pd

from journeylib.exceptions import (
    DataQualityWarning,
    JourneyLibError,
    OutOfMemoryError,
    SchemaError,
    StoreError,
    StoreFullError,
    StoreLockedError,
)
from journeylib.store.dialect import SQL_TYPES, sql_quote
from journeylib.store.errors import cleanup, lock_wait_seconds, translate_error, translated_errors, wait_for_lock
from journeylib.store.interrupts import track_connection
from journeylib.store.schema import ALL_TABLES, Table, get_table

if TYPE_CHECKING:
    from journeylib.config.engine import EngineConfig

__all__ = [
    "DEFAULT_DB",
    "DEFAULT_MEMORY_LIMIT",
    "DEFAULT_READ_MEMORY_LIMIT",
    "READ_MEMORY_PER_STORE_BYTE",
    "READ_MEMORY_SHARE",
    "Store",
    "cgroup_memory_limit",
    "default_db_path",
    "engine_settings",
    "first_row",
    "memory_bound",
    "memory_size_bytes",
    "open_store",
    "read_memory_limit",
    "resolve_db_path",
    "table_ddl",
]

#: Where the CLI keeps the store unless ``--db`` or ``JOURNEYLIB_DB`` says otherwise.
DEFAULT_DB = Path("data") / "journeylib.duckdb"

#: The read-only connections being closed in the background (:meth:`Store._leave`), by the file
#: they hold (resolved path): an open of that file in this process waits for them first.
_CLOSING: dict[str, list[threading.Thread]] = {}
_CLOSING_LOCK = threading.Lock()


def _wait_for_closing(key: str) -> None:
    """Wait until the connections to the file *key* that are being closed in the background are closed."""
    with _CLOSING_LOCK:
        threads = list(_CLOSING.get(key, ()))
    for thread in threads:  # another thread's open may be waiting for them too: they are forgotten once they have ended
        thread.join()
    if threads:
        with _CLOSING_LOCK:
            left = [thread for thread in _CLOSING.get(key, ()) if thread.is_alive()]
            if left:
                _CLOSING[key] = left
            else:
                _CLOSING.pop(key, None)


#: A DuckDB memory size, as a user writes it (``"600MB"``, ``"2GB"``, ``"512MiB"``) or DuckDB shows it
#: (``current_setting('memory_limit')``: ``"3.7 GiB"``, ``"572.2 MiB"``, ``"0 bytes"``).
_MEMORY_SIZE = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([KMGTP]i?B|B|bytes?)?\s*", re.IGNORECASE)
_MEMORY_UNITS = {
    "b": 1, "byte": 1, "bytes": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12, "pb": 10**15,
    "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40, "pib": 2**50,
}


def first_row(result: Any) -> tuple[Any, ...] | None:
    """Return the first row of a DuckDB result, reading the result to its end (None when it has no row).

    ``fetchone()`` leaves a result unfinished even when it has one row, and
    DuckDB 2 then refuses other work on the connection (registering a frame
    raises ``ResourceInUseException``) until it is read to its end; a
    statement of one row (a count, a setting) is read with this instead.

    Parameters
    ----------
    result : duckdb.DuckDBPyConnection
        The connection a statement was just executed on (``con.execute(sql)``).

    Returns
    -------
    tuple or None
        The first row.
    """
    rows = result.fetchall()
    return tuple(rows[0]) if rows else None


def memory_size_bytes(text: str | None) -> int | None:
    """Return a DuckDB memory size in bytes, or None for what is not one (a share such as ``"60%"``, None).

    Parameters
    ----------
    text : str or None
        As a user writes it (``"600MB"``, ``"2GB"``, ``"512MiB"``; a bare
        number is bytes) or as DuckDB shows it (``"3.7 GiB"``, ``"0 bytes"``);
        units are case-insensitive, KB/MB/GB/TB/PB powers of 1000 and
        KiB/MiB/GiB/TiB/PiB powers of 1024.

    Returns
    -------
    int or None
        The size in bytes.

    Examples
    --------
    >>> memory_size_bytes("600MB"), memory_size_bytes("3.7 GiB"), memory_size_bytes("60%")
    (600000000, 3972844748, None)
    """
    match = _MEMORY_SIZE.fullmatch(text or "")
    if match is None:
        return None
    return int(float(match[1]) * _MEMORY_UNITS[(match[2] or "B").lower()])


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
#: DuckDB ``memory_limit`` of a read-only store (reports, dashboards, analysis) whose file is up to 400 MB
#: (about 15M events of the benchmark's log), and the floor of a larger one's (:func:`read_memory_limit`), unless
#: ``memory_limit=`` or ``$JOURNEYLIB_MEMORY_LIMIT`` say otherwise. With it the journey map's operations on 10M
#: events peak under 0.8 GB of RSS (``benchmarks/results/scale.md``). A dashboard kernel with a memory bound gets its own limit, at most this
#: (:func:`journeylib.reports.dashboard.duckdb_memory_limit`, through ``$JOURNEYLIB_MEMORY_LIMIT``).
DEFAULT_READ_MEMORY_LIMIT = "600MB"
#: A read-only store's default ``memory_limit`` is this many times its file's size, when that is more than
#: :data:`DEFAULT_READ_MEMORY_LIMIT`: at 100M events (a 2.66 GB file) under 600MB the event transitions and
#: sessions spill GBs and cost 2.85x and 3.45x per event what they cost at 10M; under 4GB (1.5 times the file: spilling 0 and 61 MiB)
#: 1.65x and 1.50x (``docs/adr/0014-read-memory-limit-by-store-size.md``).
READ_MEMORY_PER_STORE_BYTE = 1.5
#: ... but at most this share of the memory the process may use (:func:`memory_bound`), leaving the rest to
#: pandas, to a second report job and to the other processes of the machine.
READ_MEMORY_SHARE = 0.25

_MB = 10**6  # DuckDB's "MB" (its "MiB" is 2**20 bytes)
#: :data:`DEFAULT_READ_MEMORY_LIMIT` in bytes.
_READ_FLOOR = 600 * _MB
#: Where the cgroup file systems are mounted, and where this process's cgroups are listed (Linux).
CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_CGROUP = Path("/proc/self/cgroup")


def _cgroup_limit_file(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except (OSError, ValueError):
        return None
    if not text.isdigit():  # "max" (cgroup v2): no limit
        return None
    value = int(text)
    return value if 0 < value < 2**60 else None  # cgroup v1 writes "no limit" as about 2**63


def cgroup_memory_limit(*, root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_CGROUP) -> int | None:
    """Return the memory limit of this process's cgroup (v2 ``memory.max``, v1 ``memory.limit_in_bytes``), if any.

    The lowest limit set on the process's cgroup or any cgroup above it
    (a container's own cgroup may be mounted as the root of *root*).

    Parameters
    ----------
    root : pathlib.Path, default ``/sys/fs/cgroup``
        Where the cgroup file systems are mounted (v1 controllers in folders, e.g. ``memory/``).
    proc_cgroup : pathlib.Path, default ``/proc/self/cgroup``
        The process's cgroup list (``hierarchy:controllers:path`` lines; ``0::path`` for v2).

    Returns
    -------
    int or None
        Bytes; None where no limit is set or the files cannot be read (not Linux).
    """
    try:
        lines = proc_cgroup.read_text().splitlines()
    except (OSError, ValueError):
        return None
    found: list[int] = []
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        controllers, where = parts[1], Path(parts[2].strip().lstrip("/"))
        if controllers == "":
            folder, name = root, "memory.max"
        elif "memory" in controllers.split(","):
            folder, name = root / "memory", "memory.limit_in_bytes"
        else:
            continue
        for part in (where, *where.parents):
            limit = _cgroup_limit_file(folder / part / name)
            if limit is not None:
                found.append(limit)
    return min(found) if found else None


def memory_bound() -> int | None:
    """Return the memory this process may use: the physical memory, or less if a cgroup or ``RLIMIT_DATA`` says so.

    Returns
    -------
    int or None
        Bytes; None where none of the three can be read.
    """
    bounds: list[int] = []
    with contextlib.suppress(AttributeError, ValueError, OSError):
        bounds.append(int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE")))
    cgroup = cgroup_memory_limit()
    if cgroup is not None:
        bounds.append(cgroup)
    with contextlib.suppress(ImportError, AttributeError, ValueError, OSError):
        import resource  # not on Windows

        soft, _ = resource.getrlimit(resource.RLIMIT_DATA)
        if soft != resource.RLIM_INFINITY and soft > 0:
            bounds.append(int(soft))
    bounds = [b for b in bounds if b > 0]
    return min(bounds) if bounds else None


def read_memory_limit(store_bytes: int, *, memory: int | None = None) -> str:
    """Return the default DuckDB ``memory_limit`` of a read-only store whose file has *store_bytes*.

    :data:`READ_MEMORY_PER_STORE_BYTE` times the file's size, rounded up to
    100 MB; at most :data:`READ_MEMORY_SHARE` of *memory*, rounded down to
    100 MB; never less than :data:`DEFAULT_READ_MEMORY_LIMIT`, which a file
    of up to 400 MB keeps. See ``docs/adr/0014-read-memory-limit-by-store-size.md``.

    Parameters
    ----------
    store_bytes : int
        The size of the store's file.
    memory : int, optional
        Bytes of memory the process may use (default: :func:`memory_bound`,
        read only when the file is above 400 MB).

    Returns
    -------
    str
        :data:`DEFAULT_READ_MEMORY_LIMIT` (``"600MB"``), or e.g. ``"4000MB"``.

    Examples
    --------
    The benchmark's 10M- and 100M-event stores (267 MB and 2.66 GB), and a larger one:

    >>> read_memory_limit(266_874_880), read_memory_limit(2_660_000_000, memory=24 * 1024**3)
    ('600MB', '4000MB')
    >>> read_memory_limit(40_000_000_000, memory=24 * 1024**3)  # a quarter of 24 GiB
    '6400MB'
    """
    step = 100 * _MB
    want = -(-int(READ_MEMORY_PER_STORE_BYTE * max(0, store_bytes)) // step) * step  # rounded up
    if want <= _READ_FLOOR:
        return DEFAULT_READ_MEMORY_LIMIT
    bound = memory if memory is not None else memory_bound()
    if bound:
        want = min(want, int(READ_MEMORY_SHARE * bound) // step * step)
    return DEFAULT_READ_MEMORY_LIMIT if want <= _READ_FLOOR else f"{want // _MB}MB"


def engine_settings(
    *,
    memory_limit: str | None = None,
    threads: int | None = None,
    temp_directory: str | Path | None = None,
    read_only: bool = False,
    path: str | Path | None = None,
) -> dict[str, str]:
    """Return the DuckDB settings a :class:`Store` applies, from arguments, environment and defaults.

    Parameters
    ----------
    memory_limit : str, optional
        E.g. ``"2GB"`` or ``"60%"``; default ``$JOURNEYLIB_MEMORY_LIMIT``, else
        for a read-only store :func:`read_memory_limit` of the size of *path*
        (:data:`DEFAULT_READ_MEMORY_LIMIT` for a file up to 400 MB, more for
        a larger one), and :data:`DEFAULT_MEMORY_LIMIT` for a writable
        one; ``"none"`` (or empty) leaves DuckDB's default.
    threads : int, optional
        Default ``$JOURNEYLIB_THREADS``, else DuckDB's.
    temp_directory : str or pathlib.Path, optional
        Default ``$JOURNEYLIB_TEMP_DIRECTORY``, else DuckDB's.
    read_only : bool, default False
        Whether the store is opened read-only (picks the default memory limit).
    path : str or pathlib.Path, optional
        The store's file, whose size sets a read-only store's default memory
        limit (none, or a file that cannot be read: :data:`DEFAULT_READ_MEMORY_LIMIT`).

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
    mem = memory_limit if memory_limit is not None else os.environ.get("JOURNEYLIB_MEMORY_LIMIT")
    if mem is None:
        mem = _read_only_default(path) if read_only else DEFAULT_MEMORY_LIMIT
    if mem.strip() and mem.strip().lower() != "none":
        out["memory_limit"] = mem.strip()
    thr = threads if threads is not None else os.environ.get("JOURNEYLIB_THREADS")
    if thr is not None and str(thr).strip():
        out["threads"] = str(int(thr))
    tmp = temp_directory if temp_directory is not None else os.environ.get("JOURNEYLIB_TEMP_DIRECTORY")
    if tmp is not None and str(tmp).strip():
        out["temp_directory"] = str(tmp)
    return out


def _read_only_default(path: str | Path | None) -> str:
    # the size of a file not there (yet), of ":memory:" or of no path at all gives no reason to leave the floor
    if path is None or str(path) == ":memory:":
        return DEFAULT_READ_MEMORY_LIMIT
    try:
        size = Path(path).stat().st_size
    except OSError:
        return DEFAULT_READ_MEMORY_LIMIT
    return read_memory_limit(size)


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
    cols = ",\n  ".join(f'"{c.name}" {SQL_TYPES[c.type]}' for c in table.columns)
    return f'CREATE TABLE IF NOT EXISTS "{table.name}" (\n  {cols}\n)'


def table_columns(name: str, columns: list[str] | None = None) -> tuple[Table, list[str]]:
    """Return a canonical table's schema and the columns to read from it, checked.

    Parameters
    ----------
    name : str
        A canonical table name.
    columns : list of str, optional
        Columns asked for (default all, in the table's order).

    Returns
    -------
    tuple of (Table, list of str)
        The table's schema and the columns.

    Raises
    ------
    SchemaError
        If *name* is not a canonical table, or a column is not one of its columns (the message lists them).
    """
    table = get_table(name)
    cols = list(columns or table.names)
    unknown = [c for c in cols if c not in table.fields]
    if unknown:
        msg = f"table {name!r} has no column(s) {unknown}; its columns are {table.names}"
        raise SchemaError(msg)
    return table, cols


class Store:
    """A canonical journey store in a DuckDB file.

    Parameters
    ----------
    path : str or pathlib.Path
        The DuckDB file; ``":memory:"`` for a throw-away store.
    read_only : bool, default False
        Open without write access (reports and dashboards do). A read-only
        store must already exist, and holds the file open only during an
        operation or a :meth:`session`.
    memory_limit : str, optional
        DuckDB's ``memory_limit`` (e.g. ``"2GB"``, ``"60%"`` of the RAM). Above
        it DuckDB spills to *temp_directory*, so a 10M-event ingest runs in
        bounded memory. Default: ``$JOURNEYLIB_MEMORY_LIMIT``, else
        :data:`DEFAULT_MEMORY_LIMIT` (writable) or, read-only,
        :func:`read_memory_limit` of the file's size (600MB for a file up to
        400 MB, 1.5 times the file above, at most a quarter of the memory).
        ``"none"`` keeps DuckDB's own default (80% of the RAM). The limit set
        is in :attr:`settings`.
    threads : int, optional
        DuckDB worker threads. Default: ``$JOURNEYLIB_THREADS``, else DuckDB's
        (the number of cores).
    temp_directory : str or pathlib.Path, optional
        Where DuckDB spills. Default: ``$JOURNEYLIB_TEMP_DIRECTORY``, else
        DuckDB's (``<store>.tmp`` next to the file).
    lock_wait : float, optional
        Seconds to wait, each time the store is opened, while another
        process holds it (a writer blocks everyone; a reader blocks a
        writer). Default: ``$JOURNEYLIB_LOCK_WAIT``, else
        :data:`journeylib.store.errors.DEFAULT_LOCK_WAIT` (30).

    Raises
    ------
    JourneyLibError
        If a read-only store does not exist, the file is not a DuckDB
        database, or a setting is not valid.
    journeylib.exceptions.StoreLockedError
        If another process still holds the store after *lock_wait* seconds
        (the message names its PID and command).

    Notes
    -----
    A writable store, and an in-memory one, hold one connection from
    construction to :meth:`close`. A read-only store on a file opens it
    (checking it) and closes it again at construction, then opens a
    connection for each operation (:meth:`query`, :meth:`table`,
    :meth:`count`, :meth:`fingerprint`, ...) and closes it after (in a
    thread of its own, which the store's next open, any other open of the
    same file in this process, and :meth:`close` wait for); a
    :meth:`session` keeps one connection across the operations of a block
    (temporary tables live in one connection: :meth:`temp_tables` is a
    session). Operations on one store from several threads take turns.

    DuckDB's failures outside the data (a lock, no memory, a full disk, an
    I/O error) reach the caller of :meth:`query`, :meth:`execute`,
    :meth:`insert`, :meth:`transaction` and :meth:`close` as the
    :class:`~journeylib.exceptions.StoreError` subclasses of
    :func:`journeylib.store.errors.translate_error`, and a statement refused
    because an earlier one aborted the transaction as that earlier error.

    Examples
    --------
    >>> store = Store(":memory:")
    >>> store.count("events")
    0
    """

    #: The engine that runs the store's SQL (``"spark"`` on :class:`journeylib.store.spark.SparkStore`).
    engine: str = "duckdb"

    def __init__(
        self,
        path: str | Path = DEFAULT_DB,
        *,
        read_only: bool = False,
        memory_limit: str | None = None,
        threads: int | None = None,
        temp_directory: str | Path | None = None,
        lock_wait: float | None = None,
    ) -> None:
        self.path = Path(path) if str(path) != ":memory:" else None
        self.read_only = read_only
        self.lock_wait = lock_wait_seconds(lock_wait)
        self._con: duckdb.DuckDBPyConnection | None = None
        self._closed = False
        self._depth = 0
        self._turn = threading.RLock()
        self._releases = read_only and self.path is not None
        self._warned_missing = False
        self._all_tables_present = False  # a connection found every canonical table: later ones need not look
        self._file = str(self.path.resolve()) if self.path is not None else None  # the key of _CLOSING
        self._close_error: BaseException | None = None  # a background close's failure, raised by the next open or close
        if self.path is not None:
            if read_only and not self.path.exists():
                msg = (
                    f"store {self.path} does not exist. Create it with "
                    f"`journeylib ingest --db {self.path} TABLE FILE...` or `journeylib demo`."
                )
                raise JourneyLibError(msg)
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self.settings = engine_settings(
            memory_limit=memory_limit, threads=threads, temp_directory=temp_directory, read_only=read_only, path=self.path
        )
        with self.session():  # opens (and checks) the file; a read-only store lets go of it again at the end
            if not read_only:
                with translated_errors(self.path, self.settings):
                    self.create_tables()

    # -- the connection ----------------------------------------------------
    def _connect(self) -> duckdb.DuckDBPyConnection:
        where = str(self.path) if self.path else ":memory:"
        self._finish_closing()
        try:
            con = wait_for_lock(lambda: duckdb.connect(where, read_only=self.read_only), path=self.path, wait=self.lock_wait)
        except duckdb.Error as exc:
            msg = f"cannot open store {where}: {exc}. Is it a DuckDB file, and not open for writing elsewhere?"
            err = translate_error(exc, path=self.path)
            if isinstance(err, (StoreLockedError, StoreFullError, OutOfMemoryError)):
                raise err from exc
            raise JourneyLibError(msg) from exc
        track_connection(con)  # so that an interrupted report run can stop its statements (journeylib.store.interrupts)
        # Instants are UTC in the store and in every frame it returns, and day boundaries (date_trunc, casts to
        # DATE) are UTC days: DuckDB would otherwise take the machine's time zone (TZ) for both.
        con.execute("SET TimeZone = 'UTC'")
        for name, value in self.settings.items():
            try:
                con.execute(f"SET {name} = {sql_quote(value)}")
            except duckdb.Error as exc:
                con.close()
                msg = f"cannot set DuckDB {name} = {value!r} on store {where}: {exc}"
                raise JourneyLibError(msg) from exc
        if self.read_only:
            self._stand_in_for_missing_tables(con)
        return con

    def _stand_in_for_missing_tables(self, con: duckdb.DuckDBPyConnection) -> None:
        """Give a read-only store made by an older version empty temporary tables for the canonical tables it lacks.

        A writable store adds them (:meth:`create_tables`); a read-only one
        cannot, so every analysis would otherwise fail on the first query
        naming, say, ``assignments``. The stand-ins are empty, and a
        :class:`~journeylib.exceptions.DataQualityWarning` names them once
        per store with the command that adds them for good. Once a
        connection has found every table, later connections do not look
        again (journeylib never drops a canonical table; the look costs
        about 9 ms per connection, and a read-only store connects per query).
        """
        if self._all_tables_present:
            return
        present = {str(r[0]) for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        missing = [table for name, table in ALL_TABLES.items() if name not in present]
        self._all_tables_present = not missing
        for table in missing:
            con.execute(table_ddl(table).replace("CREATE TABLE IF NOT EXISTS", "CREATE TEMP TABLE IF NOT EXISTS", 1))
        if missing and not self._warned_missing:
            self._warned_missing = True
            names = ", ".join(table.name for table in missing)
            warnings.warn(
                f"store {self.path} was made by an older journeylib and has no {names} table "
                f"({len(missing)} of {len(ALL_TABLES)} canonical tables); they read as empty here. "
                f"Open it once for writing to add them (e.g. `journeylib ingest --db {self.path}` with the "
                "newer data, or `journeylib demo` to rebuild the demo store).",
                DataQualityWarning,
                stacklevel=2,
            )

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        """The DuckDB connection, opened if needed (for the modules of :mod:`journeylib.store` only).

        Use it inside a :meth:`session` on a read-only store: outside one,
        the connection it opens stays open until the next operation of the
        store ends.

        Raises
        ------
        journeylib.exceptions.StoreError
            If the store was closed.
        """
        if self._con is None:
            if self._closed:
                where = self.path if self.path else ":memory:"
                msg = f"store {where} is closed; open it again (Store(path) or journeylib.Journey.open) to read it."
                raise StoreError(msg)
            self._con = self._connect()
        return self._con

    @contextlib.contextmanager
    def memory_limit_for(self, limit: str) -> Iterator[Store]:
        """Run a block with DuckDB's ``memory_limit`` at *limit*; the store's own limit is set back after.

        The store's :attr:`settings` (applied by every connection it opens: a
        read-only store opens one per operation) and the connection open now,
        if any, get *limit*; both are set back when the block ends, also on an
        error. The setting is the store's, so another thread using the store
        during the block gets *limit* too.

        Parameters
        ----------
        limit : str
            A DuckDB memory size, e.g. ``"250MB"``.

        Yields
        ------
        Store
            This store.
        """
        old = self.settings.get("memory_limit")
        self.settings["memory_limit"] = limit
        try:
            with self.session():  # the connection open now (a read-only store's new one is closed again)
                self.execute(f"SET memory_limit = {sql_quote(limit)}")
            yield self
        finally:
            if old is not None:
                self.settings["memory_limit"] = old
            else:
                self.settings.pop("memory_limit", None)
            with self.session():
                self.execute(f"SET memory_limit = {sql_quote(old)}" if old is not None else "RESET memory_limit")

    @contextlib.contextmanager
    def session(self) -> Iterator[Store]:
        """Keep one connection open for a block of operations; a read-only store closes it when the block ends.

        Sessions nest (only the outermost one opens and closes), and one
        store's sessions in several threads take turns. Between two sessions
        a read-only store holds no lock on its file, so an ingest can run.

        Yields
        ------
        Store
            This store.

        Examples
        --------
        >>> store = Store(":memory:")
        >>> with store.session():
        ...     store.count("events") + store.count("customers")
        0
        """
        with self._turn:
            self._depth += 1
            with cleanup(self._leave):
                self._open()
                yield self

    def _open(self) -> duckdb.DuckDBPyConnection:
        return self.con

    def _leave(self) -> None:
        self._depth -= 1
        if self._depth == 0 and self._releases:
            self._let_go_in_background()

    def _let_go(self) -> None:
        con, self._con = self._con, None
        if con is not None:
            with translated_errors(self.path, self.settings):
                con.close()

    def _let_go_in_background(self) -> None:
        """Close the read-only connection in a thread of its own, so that the operation's result is returned at once.

        Closing a DuckDB file after a large statement gives its memory back to
        the system (25-50 ms after a 10M-event statement, most of it in the
        kernel, without the GIL), and the caller need not wait for that. The
        file is held until the thread ends: every later open of the same
        file in this process (any :class:`Store`), and :meth:`close`, wait for
        it first; another process's open waits for the lock as it would for
        any reader (:func:`journeylib.store.errors.wait_for_lock`). The
        thread is not a daemon: the interpreter waits for it at exit. A
        failure of the close is raised by this store's next open or
        :meth:`close`.
        """
        con, self._con = self._con, None
        if con is None:
            return
        key = str(self._file)
        thread = threading.Thread(target=self._close_quietly, args=(con,), name=f"journeylib-close {self.path}")
        with _CLOSING_LOCK:
            _CLOSING.setdefault(key, []).append(thread)
            thread.start()

    def _close_quietly(self, con: duckdb.DuckDBPyConnection) -> None:
        try:
            with translated_errors(self.path, self.settings):
                con.close()
        except Exception as exc:  # kept for the store's next open or close to raise
            self._close_error = exc

    def _finish_closing(self) -> None:
        """Wait for the background closes of this store's file; raise this store's close failure, if one failed."""
        if self._file is not None:
            _wait_for_closing(self._file)
        err, self._close_error = self._close_error, None
        if err is not None:
            raise err

    # -- lifecycle -------------------------------------------------------
    def close(self) -> None:
        """Close the connection; the store cannot be used after.

        When it returns, the store no longer holds its file (also a
        read-only store's last operation's connection, closed in the
        background, is closed then).
        """
        with self._turn:
            self._closed = True
            self._let_go()
            self._finish_closing()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self.close()
            return
        with contextlib.suppress(Exception):  # the block's error is the one to report, not a failing close after it
            self.close()

    def __repr__(self) -> str:
        where = self.path if self.path else ":memory:"
        return f"Store({str(where)!r}, read_only={self.read_only})"

    def create_tables(self) -> None:
        """Create every canonical table that does not exist yet, and bring older ones up to date.

        A store created by an older version gets the columns added since, at
        the end of their tables and empty for the rows it holds
        (``ingest_log.notes_count``: no notes were recorded then;
        ``updated_at`` of the mutable tables: no update time was read).
        """
        with self.session():
            for table in ALL_TABLES.values():
                self.con.execute(table_ddl(table))
                rows = self.con.execute(
                    "SELECT column_name FROM information_schema.columns WHERE table_name = ?", [table.name]
                ).fetchall()
                present = {str(r[0]) for r in rows}
                for column in table.columns:
                    if column.name not in present:
                        self.con.execute(f'ALTER TABLE "{table.name}" ADD COLUMN "{column.name}" {SQL_TYPES[column.type]}')

    def tables(self) -> set[str]:
        """Return the names of the tables the store has (a read-only store made by an older version may lack some)."""
        rows = self.query("SELECT table_name FROM information_schema.tables")
        return {str(name) for name in rows["table_name"]}

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Store]:
        """Run a block in one transaction: all of it is written, or none.

        Yields
        ------
        Store
            This store.
        """
        with self.session(), translated_errors(self.path, self.settings):
            self.con.execute("BEGIN TRANSACTION")
            try:
                yield self
            except BaseException:
                with contextlib.suppress(duckdb.Error):  # a failing rollback must not hide why the block failed
                    self.con.execute("ROLLBACK")
                raise
            try:
                self.con.execute("COMMIT")
            except duckdb.Error:
                with contextlib.suppress(duckdb.Error):
                    self.con.execute("ROLLBACK")
                raise

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
        with self.session(), translated_errors(self.path, self.settings):
            con = self.con
            for name, frame in frames.items():
                con.register(name, frame)
            with cleanup(_unregister, con, *frames):
                return con.execute(sql, params).df() if params is not None else con.execute(sql).df()

    def execute(self, sql: str, params: list[Any] | Mapping[str, Any] | None = None) -> None:
        """Run a statement that returns nothing of interest."""
        with self.session(), translated_errors(self.path, self.settings):
            if params is None:
                self.con.execute(sql)
            else:
                self.con.execute(sql, params)

    def create_temp_table(self, name: str, sql: str) -> None:
        """Store the result of a query as a temporary table, replacing one of the same name.

        The table lives in this connection only (a read-only store can hold
        it) and is visible to the store's later queries under *name*. Create
        it inside :meth:`temp_tables`, which drops it (and on a read-only
        store keeps the connection, and so the table, until then).

        Parameters
        ----------
        name : str
            The table name (an SQL identifier; journeylib's start with ``_jl_``).
        sql : str
            The SELECT whose rows the table holds.

        Examples
        --------
        >>> store = Store(":memory:")
        >>> with store.temp_tables("_jl_x"):
        ...     store.create_temp_table("_jl_x", "SELECT 1 AS n")
        ...     int(store.query("SELECT n FROM _jl_x")["n"].iloc[0])
        1
        """
        with self.session(), translated_errors(self.path, self.settings):
            self.con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {sql}")

    @contextlib.contextmanager
    def temp_tables(self, *names: str) -> Iterator[Store]:
        """Run a block that builds temporary tables; drop them when it ends, also on error.

        Parameters
        ----------
        *names : str
            The temporary tables the block may create with
            :meth:`create_temp_table`; each is dropped if it exists.

        Yields
        ------
        Store
            This store, in one :meth:`session` for the block.
        """
        with self.session():
            try:
                yield self
            finally:
                for name in names:
                    self.con.execute(f"DROP TABLE IF EXISTS {name}")

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
        table, cols = table_columns(name, columns)
        with self.session():
            # a read-only store made by an older version may lack a column added since: it reads as empty
            present = set(self.query(
                "SELECT column_name FROM information_schema.columns WHERE table_name = $name", {"name": name}
            )["column_name"])
            select = ", ".join(
                f'"{c}"' if c in present else f'CAST(NULL AS {SQL_TYPES[table.fields[c].type]}) AS "{c}"' for c in cols
            )
            order = ", ".join(f'"{c}"' for c in table.order)
            sql = f'SELECT {select} FROM "{name}"' + (f" WHERE {where}" if where else "") + f" ORDER BY {order}"
            return self.query(sql)

    def count(self, name: str) -> int:
        """Return the number of rows of a canonical table."""
        get_table(name)
        with self.session():
            row = first_row(self.con.execute(f'SELECT count(*) FROM "{name}"'))
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
        with self.session():
            present = self.tables()  # a read-only store made by an older version may lack a newer table
            skip = ("quarantine", "ingest_log", "ingest_notes", "source_kinds")
            counts = {name: self.count(name) for name in ALL_TABLES if name in present and name not in skip}
            log = self.query("SELECT DISTINCT sha256 FROM ingest_log ORDER BY sha256")
        for name, n in counts.items():
            h.update(f"{name}:{n};".encode())
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
            f'CAST("{c.name}" AS {SQL_TYPES[c.type]})' if c.name in frame.columns else f"NULL::{SQL_TYPES[c.type]}"
            for c in table.columns
        )
        with self.session(), translated_errors(self.path, self.settings):
            self.con.register("_jl_insert", frame)
            with cleanup(_unregister, self.con, "_jl_insert"):
                self.con.execute(f'INSERT INTO "{name}" SELECT {select} FROM _jl_insert')
        return len(frame)


def _unregister(con: duckdb.DuckDBPyConnection, *names: str) -> None:
    for name in names:
        con.unregister(name)


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


def open_store(config: EngineConfig | None = None, *, read_only: bool = True, session: Any = None) -> Store:
    """Open the store an engine configuration describes: a DuckDB file, or Spark.

    Parameters
    ----------
    config : EngineConfig, optional
        ``engine: duckdb`` (the default; *db* found by :func:`resolve_db_path`)
        or ``engine: spark`` (master, settings, table sources;
        :class:`journeylib.store.spark.SparkStore`).
    read_only : bool, default True
        DuckDB only: open the file read-only (analyses, reports). A Spark
        store is always read-only.
    session : pyspark.sql.SparkSession, optional
        Spark only: an existing session (e.g. Databricks' ``spark``) to run on.

    Returns
    -------
    Store
        A :class:`Store`, or a :class:`~journeylib.store.spark.SparkStore`
        (a subclass); analyses take either.

    Raises
    ------
    JourneyLibError
        If the DuckDB store is not found, or ``engine: spark`` without pyspark installed.
    TypeError
        If *session* is given with ``engine: duckdb``.

    Examples
    --------
    >>> from journeylib.config.engine import EngineConfig
    >>> open_store(EngineConfig(db=":memory:"), read_only=False).count("events")
    0
    """
    from journeylib.config.engine import EngineConfig

    config = config if config is not None else EngineConfig()
    if config.engine == "spark":
        from journeylib.store.spark import spark_store_from_config

        return spark_store_from_config(config, session=session)
    if session is not None:
        msg = f"open_store: session (a SparkSession) applies to engine: spark only; got engine: {config.engine}"
        raise TypeError(msg)
    if config.db == ":memory:":
        return Store(":memory:", read_only=False)
    return Store(resolve_db_path(config.db), read_only=read_only)
