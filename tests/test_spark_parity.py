"""The event-level operations on Spark (local mode) give DuckDB's results, frame for frame.

One SparkSession for the module (``local[2]``, loopback, temporary warehouse);
the session's 200-customer world is exported from its DuckDB store as Parquet
and read by a :class:`~journeylib.store.spark.SparkStore`. Each operation runs
on both stores and the frames are compared after sorting rows and normalising
dtypes. Run them alone with ``pytest -m spark``.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from journeylib.cache import ResultCache
from journeylib.config.engine import EngineConfig, TableSource
from journeylib.config.journey import JourneyDefinition
from journeylib.customers.features import build_features
from journeylib.exceptions import ConfigError, JourneyLibError, SchemaError, StoreError
from journeylib.journey.sessions import sessions_data
from journeylib.journey.stages import funnel_data, milestones_data, time_to_convert_data
from journeylib.journey.transitions import event_transitions_data, stage_transitions_data
from journeylib.scope import Scope
from journeylib.store import Store
from journeylib.store.database import open_store
from journeylib.store.dialect import SparkTranslationError, to_spark_sql
from journeylib.store.staging import vendor_tables_exist

pytest.importorskip("pyspark", reason="the spark extra is not installed (pip install -e '.[spark]')")

from journeylib.store.spark import SparkStore, spark_session, write_parquet_tables

pytestmark = pytest.mark.spark

DEFINITION = JourneyDefinition.load(Path(__file__).resolve().parents[1] / "parameters" / "journeys" / "saas.yaml")


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    session = spark_session(master="local[2]", app_name="journeylib-parity", conf={"spark.sql.shuffle.partitions": "2"})
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def stores(demo_store: Path, spark: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, SparkStore]]:
    duck = Store(demo_store, read_only=True)
    paths = write_parquet_tables(duck, tmp_path_factory.mktemp("parquet"))
    sstore = SparkStore(session=spark, tables={name: TableSource(path=str(p)) for name, p in paths.items()})
    for name in ("events", "customers"):  # the world is small: keep what every query reads in memory
        spark.catalog.cacheTable(name)
    yield duck, sstore
    sstore.close()
    duck.close()


def normalised(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows sorted by every column, categories as text, times as UTC microseconds, numbers as float."""
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


def same(duck: Store, sstore: SparkStore, op: Callable[[Store], pd.DataFrame]) -> pd.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # each engine warns the same (tested elsewhere)
        expected = op(duck)
        started = time.perf_counter()
        got = op(sstore)
    assert list(got.columns) == list(expected.columns)
    assert len(got) == len(expected) > 0
    pd.testing.assert_frame_equal(normalised(got), normalised(expected), check_dtype=False, rtol=1e-9)
    print(f"spark {time.perf_counter() - started:.1f}s for {len(got)} rows")
    return got


def test_milestones_and_stage_transitions(stores: tuple[Store, SparkStore]) -> None:
    duck, sstore = stores
    scope = Scope.build(duck, segment_field=DEFINITION.segment_field)
    caches: dict[int, ResultCache] = {}

    def cache_of(store: Store) -> ResultCache:
        return caches.setdefault(id(store), ResultCache())

    got = same(duck, sstore, lambda s: milestones_data(s, definition=DEFINITION, scope=scope, cache=cache_of(s)))
    assert got["entered_at"].notna().sum() > len(got) // len(DEFINITION.stages)  # beyond signup: conditions held
    # from the cached milestone frame of each engine
    same(duck, sstore, lambda s: stage_transitions_data(s, definition=DEFINITION, scope=scope, cache=cache_of(s)))
    same(duck, sstore, lambda s: time_to_convert_data(s, definition=DEFINITION, scope=scope, cache=cache_of(s)))


def test_funnel_in_the_engine_with_a_sampled_segment(stores: tuple[Store, SparkStore]) -> None:
    duck, sstore = stores
    segment = str(duck.query("SELECT segment FROM customers GROUP BY segment ORDER BY count(*) DESC LIMIT 1")["segment"].iloc[0])
    # no cache: the funnel's own SQL counts, and the seeded sample (md5 order) must pick the same customers
    scope = Scope.build(duck, segment=segment, sample_n=60, random_state=3, segment_field=DEFINITION.segment_field)
    got = same(duck, sstore, lambda s: funnel_data(s, definition=DEFINITION, scope=scope))
    assert int(got["eligible"].iloc[0]) == 60


def test_event_transitions(stores: tuple[Store, SparkStore]) -> None:
    duck, sstore = stores
    got = same(duck, sstore, lambda s: event_transitions_data(s, definition=DEFINITION, top_n=8, collapse_repeats=True, inactive_days=30))
    assert got["transitions"].sum() > 0


@pytest.mark.parametrize("level", ["customer", "session"])
def test_sessions(stores: tuple[Store, SparkStore], level: str) -> None:
    duck, sstore = stores
    same(duck, sstore, lambda s: sessions_data(s, level=level, gap_minutes=45, sources=["product"]))  # type: ignore[arg-type]


def test_windowed_features(stores: tuple[Store, SparkStore]) -> None:
    duck, sstore = stores
    # a seeded sample keeps the ~25 statements of the feature table quick on Spark
    scope = Scope.build(duck, sample_n=80, random_state=5, segment_field=DEFINITION.segment_field)
    got = same(duck, sstore, lambda s: build_features(s, definition=DEFINITION, window_days=14, scope=scope).data)
    assert got.shape[1] > 10


def test_unsupported_construct_names_the_engine(stores: tuple[Store, SparkStore]) -> None:
    _, sstore = stores
    with pytest.raises(SparkTranslationError, match=r"week series \(sql_date_range\).*engine: duckdb"):
        sstore.query("SELECT CAST(unnest(generate_series(DATE '2024-01-01', DATE '2024-02-01', INTERVAL 7 DAY)) AS DATE) AS w")


def test_spark_store_is_read_only(stores: tuple[Store, SparkStore]) -> None:
    _, sstore = stores
    with pytest.raises(StoreError, match="read-only"):
        sstore.insert("events", pd.DataFrame({"event_id": ["x"]}))
    with pytest.raises(StoreError, match="DuckDB connection"):
        _ = sstore.con
    assert sstore.engine == "spark"
    assert not vendor_tables_exist(sstore)  # source kinds are derived without the DuckDB-only bookkeeping


def test_query_frames_and_parameters(stores: tuple[Store, SparkStore]) -> None:
    duck, sstore = stores
    frame = pd.DataFrame({"customer_id": ["c1", "c2", None], "n": [1, 2, 3]})
    sql = "SELECT customer_id, n * 2 AS n2, n / 2 AS half FROM _jl_t WHERE n >= $lo ORDER BY customer_id"
    same(duck, sstore, lambda s: s.query(sql, {"lo": 2}, _jl_t=frame))
    got = sstore.query(sql, {"lo": 2}, _jl_t=frame)
    assert got["customer_id"].isna().iloc[-1]  # NULLs last, as DuckDB orders them


# -- translation and configuration, without Spark ------------------------------------------------
def test_translation_of_the_dialect_helpers() -> None:
    sql = (
        "SELECT (min(t, 3) FILTER (WHERE e = 'x'))[3] AS t3, epoch_us(t) AS us, (epoch(b) - epoch(a)) / 86400.0 AS d, "
        "t + to_microseconds(129600000001) AS later, quantile_cont(d, [0.25, 0.5]) AS q FROM ev"
    )
    out = to_spark_sql(sql, columns_of=lambda name: None)
    assert "TRY_ELEMENT_AT(SORT_ARRAY(COLLECT_LIST(`t`) FILTER(WHERE `e` = 'x')), 3)" in out
    assert "UNIX_MICROS(`t`)" in out
    assert "MAKE_DT_INTERVAL(1, 0, 0, CAST(43200.000001 AS DECIMAL(18, 6)))" in out  # 1.5 days and 1 µs, exactly
    assert "PERCENTILE(`d`, ARRAY(CAST(0.25 AS DOUBLE), CAST(0.5 AS DOUBLE)))" in out
    assert "UNIX_TIMESTAMP" not in out  # it would drop the fraction of a second
    nested = to_spark_sql("SELECT epoch_us(t + to_microseconds(-86400000000)) AS u FROM ev", columns_of=lambda name: None)
    assert nested == "SELECT UNIX_MICROS(`t` + MAKE_DT_INTERVAL(-1, 0, 0, CAST(0.000000 AS DECIMAL(18, 6)))) AS `u` FROM `ev`"
    replaced = to_spark_sql("SELECT * REPLACE (upper(b) AS b) FROM t WHERE a > 1", columns_of={"t": ["a", "b", "c"]}.get)
    assert replaced == "SELECT `a`, UPPER(`b`) AS `b`, `c` FROM `t` WHERE `a` > 1"
    with pytest.raises(SparkTranslationError, match="columns of 'u' are not known"):
        to_spark_sql("SELECT * REPLACE (1 AS b) FROM u", columns_of=lambda name: None)
    with pytest.raises(SparkTranslationError, match=r"parameter \$lo has no value"):
        to_spark_sql("SELECT a FROM t WHERE a > $lo", columns_of=lambda name: None, params={"hi": 1})


def test_engine_config() -> None:
    config = EngineConfig.from_dict(
        {"engine": "spark", "master": "local[4]", "tables": {"events": {"path": "lake/events", "format": "delta"}}, "database": "cs"}
    )
    assert config.tables["events"].describe() == "delta at lake/events"
    with pytest.raises(ConfigError, match="exactly one of path"):
        EngineConfig.from_dict({"engine": "spark", "tables": {"events": {"path": "a", "table": "b"}}})
    with pytest.raises(ConfigError, match="engine: spark only"):
        EngineConfig.from_dict({"engine": "duckdb", "database": "cs"})
    with pytest.raises(ConfigError, match="unknown key 'host'"):
        EngineConfig.from_dict({"engine": "spark", "host": "x"})
    assert open_store(EngineConfig(db=":memory:"), read_only=False).count("events") == 0
    with pytest.raises(TypeError, match="engine: spark only"):
        open_store(EngineConfig(db=":memory:"), session=object())


def test_table_sources_are_checked(spark: Any, tmp_path: Path) -> None:
    with pytest.raises(JourneyLibError, match=r"tables names \['event'\], which are not canonical"):
        SparkStore(session=spark, tables={"event": TableSource(path=str(tmp_path))})
    partial = tmp_path / "events.parquet"
    pd.DataFrame({"event": ["login"], "extra": [1]}).to_parquet(partial)
    with pytest.raises(SchemaError, match=r"canonical table 'events' read from parquet at .* lacks required column\(s\) \['event_id', 'customer_id'"):
        SparkStore(session=spark, tables={"events": TableSource(path=str(partial))})
