"""The Spark engine: a :class:`SparkStore` runs journeylib's event-level SQL on a SparkSession.

An analysis receives a :class:`~journeylib.store.Store`; a :class:`SparkStore`
is one whose :meth:`~SparkStore.query`, :meth:`~SparkStore.create_temp_table`
and :meth:`~SparkStore.temp_tables` run on Spark instead of DuckDB. The
statements stay the ones journeylib writes for DuckDB: each is translated to
Spark SQL by :func:`journeylib.store.dialect.to_spark_sql` (sqlglot plus the
Spark spelling of the dialect's helpers), so the analysis modules do not
change. Results come back as pandas frames with DuckDB's types (timestamps
time-zone-aware UTC with microseconds, nullable integers and booleans as
``Int64`` / ``boolean``), and per-customer statistics stay in pandas.

The canonical tables are temporary views of the session, each read from a
Parquet or Delta path, or from a catalog (warehouse) table; a canonical table
not given reads ``<database>.<name>`` when a *database* is named and holds
it, and is otherwise an empty view with the canonical columns. A Spark store
is read-only: ingest writes a DuckDB store (or the tables are written by the
data platform), and :func:`write_parquet_tables` exports a DuckDB store's
tables as Parquet for Spark.

``pyspark`` and ``sqlglot`` come with the ``spark`` extra
(``pip install -e '.[spark]'``); this module imports them when a store is
built, so importing it costs nothing without them.
"""

from __future__ import annotations

import atexit
import contextlib
import inspect
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from journeylib.exceptions import JourneyLibError, SchemaError, StoreError
from journeylib.store.database import Store, table_columns
from journeylib.store.dialect import SPARK_CATALOG_VIEWS, SPARK_TYPES, SparkTranslationError, sql_quote, to_spark_sql
from journeylib.store.schema import ALL_TABLES, get_table

if TYPE_CHECKING:
    import duckdb

    from journeylib.config.engine import EngineConfig, TableSource

__all__ = [
    "WAREHOUSE_PREFIX",
    "SparkQueryError",
    "SparkStore",
    "SparkTranslationError",
    "comparable_frame",
    "remove_ended_warehouses",
    "spark_session",
    "write_parquet_tables",
]

#: Spark settings a session built by journeylib starts with (the caller's ``conf`` wins).
#: Local mode stays on the loopback interface, without the web UI, with few shuffle partitions.
LOCAL_DEFAULTS: dict[str, str] = {
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.shuffle.partitions": "4",
}
#: Settings every session journeylib uses needs, built by it or not: UTC session time (journeylib's
#: timestamps are instants; the SQL's UTC wall clock assumes it) and Arrow transfers.
REQUIRED_CONF: dict[str, str] = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
}


class SparkQueryError(JourneyLibError):
    """Spark refused or failed a statement journeylib translated for it."""


def _require_pyspark() -> Any:
    try:
        import pyspark.sql
    except ImportError as exc:
        msg = (
            "engine: spark needs pyspark (and sqlglot), which are not installed. "
            "Install them with `pip install -e '.[spark]'` (or `pip install 'journeylib[spark]'`), or use engine: duckdb."
        )
        raise JourneyLibError(msg) from exc
    return pyspark.sql


#: Name prefix of the temporary warehouse folders :func:`spark_session` makes; the
#: process id follows it (``journeylib-spark-warehouse-<pid>-<random>``).
WAREHOUSE_PREFIX = "journeylib-spark-warehouse-"


def _process_is_running(pid: int) -> bool:
    """Whether a process with this id exists (one of another user counts as running)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_ended_warehouses(folder: str | Path | None = None) -> list[Path]:
    """Remove the temporary warehouse folders of journeylib processes that have ended.

    A process removes its own folder at exit, but a notebook kernel stopped
    while Spark shuts down never runs its exit handlers. A folder is removed
    only when it is this user's, carries a process id (folders named before
    the id was part of the name are left alone) and no process with that id
    is running.

    Parameters
    ----------
    folder : str or Path, optional
        Where to look; the system's temporary folder by default.

    Returns
    -------
    list of Path
        The folders removed.
    """
    removed: list[Path] = []
    base = Path(folder) if folder is not None else Path(tempfile.gettempdir())
    for path in base.glob(f"{WAREHOUSE_PREFIX}*-*"):
        pid = path.name[len(WAREHOUSE_PREFIX):].split("-", 1)[0]
        try:
            owner = path.stat().st_uid
        except OSError:
            continue
        if not pid.isdigit() or owner != os.getuid() or not path.is_dir() or _process_is_running(int(pid)):
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def spark_session(
    *, master: str = "local[2]", app_name: str = "journeylib", conf: Mapping[str, str] | None = None
) -> Any:
    """Build (or reuse) a SparkSession with the settings journeylib needs.

    For a ``local`` master it binds to the loopback interface
    (``SPARK_LOCAL_IP=127.0.0.1`` unless set, :data:`LOCAL_DEFAULTS`); every
    session gets :data:`REQUIRED_CONF` and a fresh temporary
    ``spark.sql.warehouse.dir`` unless *conf* names one (a second run in the
    same folder would otherwise fail with ``LOCATION_ALREADY_EXISTS``). That
    folder is removed when the process exits; the folders of processes that
    ended without their exit handlers (a notebook kernel killed at shutdown)
    are removed by the next session built (:func:`remove_ended_warehouses`).

    Parameters
    ----------
    master : str, default "local[2]"
        The Spark master URL (``local[N]``, ``spark://host:7077``, ``yarn``, ``k8s://...``).
    app_name : str, default "journeylib"
        The application name.
    conf : mapping of str to str, optional
        More Spark settings; they override journeylib's defaults except :data:`REQUIRED_CONF`.

    Returns
    -------
    pyspark.sql.SparkSession
        The active session (``getOrCreate``: an existing session is reused,
        and its static settings stay as they were).

    Raises
    ------
    JourneyLibError
        If pyspark is not installed.
    """
    sql = _require_pyspark()
    local = master.startswith("local")
    if local:
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    settings: dict[str, str] = dict(LOCAL_DEFAULTS) if local else {}
    settings.update({str(k): str(v) for k, v in (conf or {}).items()})
    if "spark.sql.warehouse.dir" not in settings and sql.SparkSession.getActiveSession() is None:
        # a static setting: an active session reused by getOrCreate keeps its own, so none is made for it
        remove_ended_warehouses()
        warehouse = tempfile.mkdtemp(prefix=f"{WAREHOUSE_PREFIX}{os.getpid()}-")
        atexit.register(shutil.rmtree, warehouse, ignore_errors=True)
        settings["spark.sql.warehouse.dir"] = warehouse
    settings.update(REQUIRED_CONF)
    builder = sql.SparkSession.builder.master(master).appName(app_name)
    for key, value in settings.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def _spark_type(dtype: Any) -> str:
    """Spark SQL type of a pandas column handed to a query."""
    if isinstance(dtype, pd.CategoricalDtype):
        return _spark_type(dtype.categories.dtype)
    if pd.api.types.is_bool_dtype(dtype):
        return "BOOLEAN"
    if pd.api.types.is_integer_dtype(dtype):
        return "BIGINT"
    if pd.api.types.is_float_dtype(dtype):
        return "DOUBLE"
    if isinstance(dtype, pd.DatetimeTZDtype):
        return "TIMESTAMP"
    if pd.api.types.is_datetime64_dtype(dtype):
        return "TIMESTAMP_NTZ"
    return "STRING"


def _caller() -> str:
    """Name the first function outside :mod:`journeylib.store` on the stack: the operation a failing query belongs to."""
    here = Path(__file__).resolve().parent
    for frame in inspect.stack()[2:]:
        path = Path(frame.filename).resolve()
        if here not in path.parents and "contextlib" not in path.name:
            module = inspect.getmodulename(frame.filename) or path.stem
            return f"{module}.{frame.function}"
    return "<unknown>"


class SparkStore(Store):
    """A read-only journeylib store whose SQL runs on Spark.

    Parameters
    ----------
    session : pyspark.sql.SparkSession, optional
        A session to use (e.g. Databricks' ``spark``); it is left running by
        :meth:`close`. Default: the active session if there is one (left
        running too), else one built by :func:`spark_session` from *master*,
        *app_name* and *conf*, stopped by :meth:`close`.
    master, app_name, conf
        As in :func:`spark_session`, when no *session* is given.
    tables : mapping of str to TableSource, optional
        Where each canonical table is (:class:`journeylib.config.engine.TableSource`:
        a Parquet/Delta/CSV path with its format, or a catalog table name).
    database : str, optional
        A catalog database (e.g. ``main.cs_analytics``) holding canonical
        tables under their own names, for those not in *tables*.

    Raises
    ------
    JourneyLibError
        If pyspark is missing, *tables* names a table that is not canonical,
        or a source cannot be read.
    SchemaError
        If a source lacks a required column of its canonical table (the
        optional columns it lacks read as NULL).

    Notes
    -----
    Each canonical table becomes a temporary view with exactly the canonical
    columns, cast to the canonical types (JSON as text). Temporary tables of
    an analysis (:meth:`create_temp_table`) are computed when created and
    kept by Spark (``localCheckpoint``) until :meth:`temp_tables` drops them.
    """

    engine = "spark"

    def __init__(
        self,
        *,
        session: Any = None,
        master: str = "local[2]",
        app_name: str = "journeylib",
        conf: Mapping[str, str] | None = None,
        tables: Mapping[str, TableSource] | None = None,
        database: str | None = None,
    ) -> None:
        self.path = None
        self.read_only = True
        self.lock_wait = 0.0
        self.settings = {}
        self._con = None
        self._closed = False
        self._depth = 0
        self._releases = False
        self._turn = threading.RLock()
        unknown = sorted(set(tables or {}) - set(ALL_TABLES))
        if unknown:
            msg = f"SparkStore: tables names {unknown}, which are not canonical tables; allowed are {sorted(ALL_TABLES)}"
            raise JourneyLibError(msg)
        # a session this store starts is stopped by close(); one that was running already (a notebook's,
        # another store's) is reused by getOrCreate and left running
        self._owns = session is None and _require_pyspark().SparkSession.getActiveSession() is None
        self.spark = session if session is not None else spark_session(master=master, app_name=app_name, conf=conf)
        for key, value in REQUIRED_CONF.items():
            self.spark.conf.set(key, value)
        self._temps: dict[str, Any] = {}
        self.sources: dict[str, str] = {}
        for name in ALL_TABLES:
            self._register(name, (tables or {}).get(name), database)

    # -- the canonical tables as views ------------------------------------------------------
    def _register(self, name: str, source: TableSource | None, database: str | None) -> None:
        from pyspark.sql import functions as F

        table = get_table(name)
        if source is not None:
            where = source.describe()
            try:
                if source.table is not None:
                    df = self.spark.table(source.table)
                else:
                    reader = self.spark.read.format(source.format)
                    if source.format == "csv":
                        reader = reader.option("header", "true")
                    df = reader.load(str(source.path))
            except Exception as exc:  # pyspark raises several unrelated classes here
                msg = f"SparkStore: cannot read canonical table {name!r} from {where}: {str(exc).splitlines()[0]}"
                raise JourneyLibError(msg) from exc
        elif database and self.spark.catalog.tableExists(f"{database}.{name}"):
            where = f"table {database}.{name}"
            df = self.spark.table(f"{database}.{name}")
        else:
            schema = ", ".join(f"`{c.name}` {SPARK_TYPES[c.type]}" for c in table.columns)
            self.spark.createDataFrame([], schema).createOrReplaceTempView(name)
            self.sources[name] = "empty"
            return
        present = {c.lower(): c for c in df.columns}
        missing = [c.name for c in table.columns if c.name.lower() not in present and c.required]
        if missing:
            msg = (
                f"SparkStore: canonical table {name!r} read from {where} lacks required column(s) {missing}; "
                f"its columns are {df.columns}; the canonical columns are {table.names}"
            )
            raise SchemaError(msg)
        cols = [
            F.col(f"`{present[c.name.lower()]}`").cast(SPARK_TYPES[c.type]).alias(c.name)
            if c.name.lower() in present
            else F.lit(None).cast(SPARK_TYPES[c.type]).alias(c.name)
            for c in table.columns
        ]
        df.select(*cols).createOrReplaceTempView(name)
        self.sources[name] = where

    def _columns_of(self, name: str) -> list[str] | None:
        try:
            return list(self.spark.table(f"`{name}`").columns)
        except Exception:  # an unknown name: to_spark_sql reports it
            return None

    # -- the connection (there is none) ------------------------------------------------------
    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        """Not available: a Spark store has no DuckDB connection.

        Raises
        ------
        journeylib.exceptions.StoreError
            Always; store modules that need a DuckDB connection (ingest,
            identity, merge) run on a DuckDB store only.
        """
        msg = (
            "this operation needs a DuckDB connection (store.con), which a Spark store does not have; "
            "run it on a DuckDB store (engine: duckdb) — ingest and identity stitching write DuckDB."
        )
        raise StoreError(msg)

    @contextlib.contextmanager
    def session(self) -> Iterator[Store]:
        """Run a block of operations; one store's blocks in several threads take turns.

        Yields
        ------
        Store
            This store.
        """
        if self._closed:
            msg = "Spark store is closed; build a new SparkStore (or open_store(config)) to read it."
            raise StoreError(msg)
        with self._turn:
            yield self

    def close(self) -> None:
        """Drop the store's temporary tables; stop the SparkSession if this store built it."""
        with self._turn:
            if self._closed:
                return
            self._closed = True
            for name in list(self._temps):
                self._drop(name)
            for view in SPARK_CATALOG_VIEWS.values():
                self.spark.catalog.dropTempView(view)
            if self._owns:
                self.spark.stop()

    def __repr__(self) -> str:
        return f"SparkStore(master={self.spark.sparkContext.master!r}, events={self.sources.get('events')!r})"

    def create_tables(self) -> None:
        """Do nothing: the canonical tables of a Spark store are views registered when it is built."""

    def tables(self) -> set[str]:
        """Return the canonical tables read from a source (not the empty views of those not given)."""
        return {name for name, where in self.sources.items() if where != "empty"}

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Store]:
        """Not available: a Spark store is read-only.

        Raises
        ------
        journeylib.exceptions.StoreError
            Always.
        """
        msg = "a Spark store is read-only: transactions (ingest, merge) run on a DuckDB store."
        raise StoreError(msg)
        yield self  # pragma: no cover

    # -- reading ---------------------------------------------------------------------------
    def _register_catalog_views(self) -> None:
        """Register the stand-ins of DuckDB's ``information_schema.columns`` / ``.tables``: the session's temporary views."""
        catalog = SPARK_CATALOG_VIEWS.values()
        tables: list[tuple[str, str]] = []
        columns: list[tuple[str, str, int, str]] = []
        for table in self.spark.catalog.listTables():
            if not table.isTemporary or table.name in catalog:
                continue
            tables.append((table.name, "LOCAL TEMPORARY"))
            fields = self.spark.table(f"`{table.name}`").schema.fields
            columns.extend((table.name, f.name, i, f.dataType.simpleString().upper()) for i, f in enumerate(fields, start=1))
        schema_tables = "table_name STRING, table_type STRING"
        schema_columns = "table_name STRING, column_name STRING, ordinal_position BIGINT, data_type STRING"
        self.spark.createDataFrame(tables, schema_tables).createOrReplaceTempView(SPARK_CATALOG_VIEWS["tables"])
        self.spark.createDataFrame(columns, schema_columns).createOrReplaceTempView(SPARK_CATALOG_VIEWS["columns"])

    def _run(self, sql: str, params: Any = None) -> tuple[Any, str]:
        spark_sql = to_spark_sql(sql, columns_of=self._columns_of, params=params)
        if any(view in spark_sql for view in SPARK_CATALOG_VIEWS.values()):
            self._register_catalog_views()
        try:
            return self.spark.sql(spark_sql), spark_sql
        except Exception as exc:
            raise self._failure(exc, spark_sql) from exc

    def _failure(self, exc: Exception, spark_sql: str) -> SparkQueryError:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        msg = (
            f"Spark could not run a statement of {_caller()} (engine: spark): {first}. "
            f"Spark SQL starts {spark_sql[:300]!r}. If a DuckDB construct is not translated, it is listed in "
            "docs/spark.md; run the analysis with engine: duckdb."
        )
        return SparkQueryError(msg)

    def _frame(self, df: Any, spark_sql: str) -> pd.DataFrame:
        import pyarrow as pa

        try:
            table = df.toArrow()
        except Exception as exc:
            raise self._failure(exc, spark_sql) from exc
        out = {}
        for i, field in enumerate(table.schema):
            col = table.column(i)
            if pa.types.is_timestamp(field.type):
                # TIMESTAMP arrives with the session's zone (UTC), TIMESTAMP_NTZ without one: DuckDB's
                # TIMESTAMPTZ and TIMESTAMP
                s = pd.Series(col.to_pandas())
                if field.type.tz is not None:
                    s = s.dt.tz_convert("UTC").astype("datetime64[us, UTC]")
                else:
                    s = s.astype("datetime64[us]")
            elif pa.types.is_date(field.type):
                s = pd.Series(col.cast(pa.timestamp("us")).to_pandas()).astype("datetime64[us]")  # as DuckDB gives a DATE
            elif pa.types.is_integer(field.type) and col.null_count:
                s = pd.Series(col.to_pandas(types_mapper={field.type: pd.Int64Dtype()}.get)).astype("Int64")
            elif pa.types.is_boolean(field.type) and col.null_count:
                s = pd.Series(col.to_pandas(types_mapper={field.type: pd.BooleanDtype()}.get)).astype("boolean")
            elif pa.types.is_decimal(field.type):
                s = pd.Series(col.to_pandas()).astype("float64")
            else:
                s = pd.Series(col.to_pandas())
            out[field.name] = s.reset_index(drop=True)
        return pd.DataFrame(out, columns=list(table.schema.names))

    def query(self, sql: str, params: Any = None, **frames: pd.DataFrame) -> pd.DataFrame:
        """Run journeylib's (DuckDB) SQL on Spark and return the result as a DataFrame.

        Parameters
        ----------
        sql : str
            DuckDB SQL as journeylib writes it; translated by
            :func:`journeylib.store.dialect.to_spark_sql`.
        params : list or dict, optional
            Prepared-statement parameters (``?``, ``$1`` or ``$name``), written
            into the statement as literals.
        **frames : pandas.DataFrame
            Frames made visible to the query under their keyword names (as
            temporary views, dropped after).

        Returns
        -------
        pandas.DataFrame
            The result, with DuckDB's pandas types: timestamps UTC with
            microseconds, dates as ``datetime64[us]`` (midnight), integers
            and booleans with NULLs as ``Int64`` / ``boolean``, decimals as
            ``float64``.

        Raises
        ------
        SparkTranslationError
            If the statement has a construct with no Spark spelling yet.
        SparkQueryError
            If Spark refuses or fails the translated statement (the message
            names the journeylib operation).
        """
        with self.session():
            for name, frame in frames.items():
                self._register_frame(name, frame)
            try:
                df, spark_sql = self._run(sql, params)
                return self._frame(df, spark_sql)
            finally:
                for name in frames:
                    self.spark.catalog.dropTempView(name)

    def _register_frame(self, name: str, frame: pd.DataFrame) -> None:
        plain = frame.copy()
        for col in plain.columns:
            if isinstance(plain[col].dtype, pd.CategoricalDtype):
                plain[col] = plain[col].astype(plain[col].cat.categories.dtype).astype(object).where(plain[col].notna(), None)
            elif pd.api.types.is_extension_array_dtype(plain[col].dtype) and not isinstance(plain[col].dtype, pd.DatetimeTZDtype):
                plain[col] = plain[col].astype(object).where(plain[col].notna(), None)
        schema = ", ".join(f"`{c}` {_spark_type(frame[c].dtype)}" for c in frame.columns)
        self.spark.createDataFrame(plain, schema=schema).createOrReplaceTempView(name)

    def execute(self, sql: str, params: Any = None) -> None:
        """Run a statement on Spark (its result, if any, is discarded)."""
        with self.session():
            df, spark_sql = self._run(sql, params)
            try:
                df.collect()
            except Exception as exc:
                raise self._failure(exc, spark_sql) from exc

    def create_temp_table(self, name: str, sql: str) -> None:
        """Compute a query once and keep its rows as a temporary view, replacing one of the same name.

        Parameters
        ----------
        name : str
            The view name (journeylib's start with ``_jl_``).
        sql : str
            The SELECT (DuckDB SQL) whose rows the table holds.
        """
        with self.session():
            df, spark_sql = self._run(sql)
            try:
                kept = df.localCheckpoint(eager=True)  # computed now; later plans start from its rows, not its lineage
            except Exception as exc:
                raise self._failure(exc, spark_sql) from exc
            # fresh column identities: a checkpoint keeps those of the tables it was computed from, and a later join of
            # this table with one of them (the event codes with the events) could not tell the two `event` columns apart
            kept = kept.toDF(*kept.columns)
            self._drop(name)
            kept.createOrReplaceTempView(name)
            self._temps[name] = kept

    def _drop(self, name: str) -> None:
        kept = self._temps.pop(name, None)
        self.spark.catalog.dropTempView(name)
        if kept is not None:
            kept.unpersist()

    @contextlib.contextmanager
    def temp_tables(self, *names: str) -> Iterator[Store]:
        """Run a block that builds temporary tables; drop them when it ends, also on error.

        Parameters
        ----------
        *names : str
            The temporary tables the block may create.

        Yields
        ------
        Store
            This store.
        """
        with self.session():
            try:
                yield self
            finally:
                for name in names:
                    self._drop(name)

    def table(self, name: str, *, columns: list[str] | None = None, where: str | None = None) -> pd.DataFrame:
        """Return a canonical table as a DataFrame in its deterministic order.

        Parameters
        ----------
        name : str
            A canonical table name.
        columns : list of str, optional
            Columns to return (default all).
        where : str, optional
            A SQL filter (DuckDB SQL).

        Returns
        -------
        pandas.DataFrame
            The table's rows, ordered by its canonical order.
        """
        table, cols = table_columns(name, columns)
        select = ", ".join(f'"{c}"' for c in cols)
        order = ", ".join(f'"{c}"' for c in table.order)
        return self.query(f'SELECT {select} FROM "{name}"' + (f" WHERE {where}" if where else "") + f" ORDER BY {order}")

    def count(self, name: str) -> int:
        """Return the number of rows of a canonical table."""
        get_table(name)
        return int(self.query(f'SELECT count(*) AS n FROM "{name}"')["n"].iloc[0])

    # -- writing ---------------------------------------------------------------------------
    def insert(self, name: str, frame: pd.DataFrame) -> int:
        """Not available: a Spark store is read-only.

        Raises
        ------
        journeylib.exceptions.StoreError
            Always.
        """
        msg = f"cannot insert into {name!r}: a Spark store is read-only; ingest into a DuckDB store, or write the table on the data platform."
        raise StoreError(msg)


def write_parquet_tables(store: Store, folder: str | Path, *, tables: list[str] | None = None) -> dict[str, Path]:
    """Write canonical tables of a DuckDB store as Parquet files, for a Spark store to read.

    Parameters
    ----------
    store : Store
        A DuckDB store.
    folder : str or pathlib.Path
        Where to write ``<table>.parquet`` (created if needed).
    tables : list of str, optional
        The tables (default every canonical table the store has).

    Returns
    -------
    dict of str to pathlib.Path
        Table name → the file written.

    Examples
    --------
    >>> paths = write_parquet_tables(store, "exports/parquet")  # doctest: +SKIP
    >>> SparkStore(tables={n: TableSource(path=str(p)) for n, p in paths.items()})  # doctest: +SKIP
    """
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    names = tables if tables is not None else [n for n in ALL_TABLES if n in store.tables()]
    written = {}
    for name in names:
        get_table(name)
        path = out / f"{name}.parquet"
        store.execute(f'COPY "{name}" TO {sql_quote(str(path))} (FORMAT parquet)')
        written[name] = path
    return written


def spark_store_from_config(config: EngineConfig, *, session: Any = None) -> SparkStore:
    """Build the :class:`SparkStore` an :class:`~journeylib.config.engine.EngineConfig` with ``engine: spark`` describes.

    Parameters
    ----------
    config : EngineConfig
        Master URL, application name, Spark settings, table sources, database.
    session : pyspark.sql.SparkSession, optional
        An existing session to use instead of building one.

    Returns
    -------
    SparkStore
        The store.
    """
    return SparkStore(
        session=session, master=config.master, app_name=config.app_name, conf=config.conf,
        tables=config.tables, database=config.database,
    )


def comparable_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Return *frame* in a form in which a DuckDB result and a Spark result of the same query compare equal.

    The engines agree on values but not on how they hand them over: Spark
    returns categories as text, other integer widths and zone names ("UTC"
    against "Etc/UTC"), and neither guarantees a row order without ORDER BY.

    Parameters
    ----------
    frame : pandas.DataFrame
        A result of either engine.

    Returns
    -------
    pandas.DataFrame
        The same columns: categories as text, time-zone-aware times in UTC
        at microsecond resolution, numbers (not booleans) as float64; rows
        sorted by every column (compared as text), index reset.

    Examples
    --------
    >>> a = pd.DataFrame({"n": [2, 1], "c": pd.Categorical(["y", "x"])})
    >>> comparable_frame(a).equals(pd.DataFrame({"n": [1.0, 2.0], "c": ["x", "y"]}))
    True
    """
    out = frame.copy()
    for col in out.columns:
        dtype = out[col].dtype
        if isinstance(dtype, pd.CategoricalDtype):
            out[col] = out[col].astype(str)
        elif isinstance(dtype, pd.DatetimeTZDtype):
            out[col] = out[col].dt.tz_convert("UTC").astype("datetime64[us, UTC]")
        elif pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype):
            out[col] = out[col].astype("float64")
    return out.sort_values(list(out.columns), key=lambda s: s.astype(str)).reset_index(drop=True)
