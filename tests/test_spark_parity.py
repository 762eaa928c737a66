"""The event-level operations on Spark (local mode) give DuckDB's results, frame for frame.

One SparkSession for the run (``local[2]``, loopback, temporary warehouse; tests/conftest.py);
the session's 200-customer world is exported from its DuckDB store as Parquet
and read by a :class:`~journeylib.store.spark.SparkStore`. Each operation runs
on both stores and the frames are compared after sorting rows and normalising
dtypes; analyses of the whole world share one result cache per engine (the
milestone frame is computed once on each). The week calendar is also checked
against Python's ISO calendar at week 53 and the turn of the year. Run them
alone with ``pytest -m spark``.
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
from journeylib.context import Journey
from journeylib.customers.cohorts import cohort_metrics_data
from journeylib.customers.features import build_features
from journeylib.customers.snapshots import build_snapshots
from journeylib.exceptions import ConfigError, JourneyLibError, SchemaError, StoreError
from journeylib.health import ingest_reconciliation_data, source_volume_data
from journeylib.journey.friction import friction_data
from journeylib.journey.loops import loop_events_data
from journeylib.journey.paths import conformance_data, customer_paths_data, variants_data
from journeylib.journey.sessions import sessions_data
from journeylib.journey.stages import funnel_data, milestones_data, time_to_convert_data
from journeylib.journey.transitions import event_transitions_data, stage_transitions_data
from journeylib.notebook import open_journey
from journeylib.scope import Scope
from journeylib.store import Store
from journeylib.store.database import open_store
from journeylib.store.dialect import (
    SparkTranslationError,
    sql_cast,
    sql_date_range,
    sql_iso_week,
    sql_utc_clock,
    sql_week_start,
    sql_weeks_between,
    to_spark_sql,
)
from journeylib.store.fingerprint import table_fingerprints
from journeylib.store.staging import vendor_tables_exist
from journeylib.voice.tickets import ticket_voice_data
from journeylib.voice.trends import voc_by_week_data

pytest.importorskip("pyspark", reason="the spark extra is not installed (pip install -e '.[spark]')")

from journeylib.store.spark import SparkStore, comparable_frame, write_parquet_tables

pytestmark = pytest.mark.spark

DEFINITION = JourneyDefinition.load(Path(__file__).resolve().parents[1] / "parameters" / "journeys" / "saas.yaml")


@pytest.fixture(scope="module")
def spark(spark_local: Any) -> Any:
    """The run's shared Spark local-mode session (tests/conftest.py): ``local[2]``, two shuffle partitions."""
    return spark_local


@pytest.fixture(scope="module")
def parquet(demo_store: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The session world's canonical tables as Parquet files: table name → file."""
    with Store(demo_store, read_only=True) as duck:
        return write_parquet_tables(duck, tmp_path_factory.mktemp("parquet"))


def cache_in_memory(spark: Any) -> None:
    for name in ("events", "customers"):  # the world is small: keep what every query reads in memory
        spark.catalog.cacheTable(name)


@pytest.fixture(scope="module")
def stores(demo_store: Path, spark: Any, parquet: dict[str, Path]) -> Iterator[tuple[Store, SparkStore]]:
    duck = Store(demo_store, read_only=True)
    sstore = SparkStore(session=spark, tables={name: TableSource(path=str(p)) for name, p in parquet.items()})
    cache_in_memory(spark)
    yield duck, sstore
    spark.catalog.clearCache()  # the session outlives the module: leave no cached world behind
    sstore.close()
    duck.close()


@pytest.fixture(scope="module")
def whole(stores: tuple[Store, SparkStore]) -> tuple[Scope, Callable[[Store], ResultCache]]:
    """The whole world's scope, and one result cache per engine shared by the module's tests.

    The milestone frame of each engine is computed once (by the first test that needs it) and
    reused by transitions, paths, friction, cohorts and snapshots, as a Journey does.
    """
    duck, _ = stores
    caches: dict[int, ResultCache] = {}
    return Scope.build(duck, segment_field=DEFINITION.segment_field), lambda store: caches.setdefault(id(store), ResultCache())


def same(duck: Store, sstore: SparkStore, op: Callable[[Store], pd.DataFrame]) -> pd.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # each engine warns the same (tested elsewhere)
        expected = op(duck)
        started = time.perf_counter()
        got = op(sstore)
    assert list(got.columns) == list(expected.columns)
    assert len(got) == len(expected) > 0
    pd.testing.assert_frame_equal(comparable_frame(got), comparable_frame(expected), check_dtype=False, rtol=1e-9)
    print(f"spark {time.perf_counter() - started:.1f}s for {len(got)} rows")
    return got


def test_milestones_and_stage_transitions(stores: tuple[Store, SparkStore], whole: tuple[Scope, Callable[[Store], ResultCache]]) -> None:
    duck, sstore = stores
    scope, cache_of = whole
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


def test_windowed_features_of_every_customer(stores: tuple[Store, SparkStore]) -> None:
    # without a sample the event-code table joins the events it was computed from (notebooks 02, 03, 10 on Spark):
    # a temporary table must not carry its source's column identities into that join
    duck, sstore = stores
    got = same(duck, sstore, lambda s: build_features(s, definition=DEFINITION, window_days=14).data)
    assert len(got) > 80


def test_unsupported_construct_names_the_engine(stores: tuple[Store, SparkStore]) -> None:
    _, sstore = stores
    # a series as a table (not journeylib's sql_date_range spelling) and a strftime directive without a Spark spelling
    with pytest.raises(SparkTranslationError, match=r"series outside unnest\(generate_series.*\(sql_date_range\).*engine: duckdb"):
        sstore.query("SELECT * FROM generate_series(DATE '2024-01-01', DATE '2024-02-01', INTERVAL 7 DAY)")
    with pytest.raises(SparkTranslationError, match=r"strftime directive %b .*engine: duckdb"):
        sstore.query("SELECT strftime(DATE '2024-01-01', '%d %b') AS label")


# -- the week calendar ----------------------------------------------------------------------------
#: Instants around ISO week 53 and the turn of the year, UTC; their ISO week by Python's calendar.
WEEK_EDGES = {
    "2020-12-31T12:00:00Z": "2020-W53",  # a Thursday in week 53
    "2021-01-03T23:59:59.999999Z": "2020-W53",  # the last microsecond of that week (a Sunday)
    "2021-01-04T00:00:00Z": "2021-W01",  # the Monday after: calendar and ISO year agree again
    "2024-12-30T05:00:00Z": "2025-W01",  # ISO year ahead of the calendar year
    "2016-01-01T00:00:00Z": "2015-W53",
    "2027-01-01T00:00:00Z": "2026-W53",
}


def test_week_calendar_matches_duckdb(stores: tuple[Store, SparkStore]) -> None:
    duck, sstore = stores
    assert sstore.spark.conf.get("spark.sql.session.timeZone") == "UTC"
    instants = pd.Series(pd.to_datetime(list(WEEK_EDGES), utc=True, format="ISO8601")).astype("datetime64[us, UTC]")
    frame = pd.DataFrame({"t": instants})
    expected = [f"{d.isocalendar().year}-W{d.isocalendar().week:02d}" for d in instants]
    assert expected == list(WEEK_EDGES.values())  # the oracle agrees with the table above
    week = sql_week_start("t")
    sql = f"""
        SELECT t, {week} AS week_start, {sql_cast(week, "date")} AS week_date,
               {sql_iso_week(sql_cast(sql_utc_clock("t"), "date"))} AS iso_week,
               {sql_iso_week(sql_cast(week, "date"))} AS iso_week_of_start,
               {sql_weeks_between(sql_week_start("min(t) OVER ()"), week)} AS weeks_since_first
        FROM _jl_t"""
    got = same(duck, sstore, lambda s: s.query(sql, _jl_t=frame))
    assert got.sort_values("t")["iso_week"].tolist() == sorted(WEEK_EDGES.values(), key=lambda w: (w[:4], w))
    assert (got["iso_week"] == got["iso_week_of_start"]).all()
    assert got["week_start"].dt.tz is None
    assert (got["week_start"].dt.dayofweek == 0).all()
    series = f"""
        SELECT {sql_cast(sql_date_range("lo", "hi", step_days=7), "date")} AS week_start
        FROM (SELECT {sql_cast("min(" + week + ")", "date")} AS lo, {sql_cast("max(" + week + ")", "date")} AS hi FROM _jl_t
              WHERE t >= TIMESTAMPTZ '2020-12-01 00:00:00+00:00' AND t < TIMESTAMPTZ '2021-02-01 00:00:00+00:00')"""
    weeks = same(duck, sstore, lambda s: s.query(series, _jl_t=frame))
    assert [str(d)[:10] for d in weeks["week_start"]] == ["2020-12-28", "2021-01-04"]
    naive = f"SELECT {sql_date_range('lo', 'hi', step_days=1)} AS day FROM (SELECT DATE '2021-01-02' AS lo, DATE '2021-01-04' AS hi)"
    days = same(duck, sstore, lambda s: s.query(naive))
    assert len(days) == 3
    assert days["day"].dt.tz is None
    empty = f"SELECT {sql_cast(sql_date_range('lo', 'hi', step_days=7), 'date')} AS w FROM (SELECT DATE '2021-01-11' AS lo, DATE '2021-01-04' AS hi)"
    assert duck.query(empty).empty
    assert sstore.query(empty).empty


def test_data_health_weekly_volumes_and_reconciliation(stores: tuple[Store, SparkStore]) -> None:
    duck, sstore = stores
    got = same(duck, sstore, lambda s: source_volume_data(s))
    assert got["iso_week"].str.fullmatch(r"\d{4}-W\d{2}").all()
    assert got["events"].sum() > 0
    # reads information_schema.columns (whether the ingest log has notes_count): the Spark store's stand-in view
    recon = same(duck, sstore, lambda s: ingest_reconciliation_data(s))
    assert recon["reconciles"].all()


# -- analyses on the milestone frame, and the other event-level analyses ---------------------------
def test_paths_variants_and_conformance(stores: tuple[Store, SparkStore], whole: tuple[Scope, Callable[[Store], ResultCache]]) -> None:
    duck, sstore = stores
    scope, cache_of = whole
    paths = same(duck, sstore, lambda s: customer_paths_data(s, definition=DEFINITION, scope=scope, cache=cache_of(s)))
    assert paths["customer_id"].is_unique  # one path per customer
    same(duck, sstore, lambda s: variants_data(s, definition=DEFINITION, scope=scope, cache=cache_of(s)))
    same(duck, sstore, lambda s: conformance_data(s, definition=DEFINITION, scope=scope, cache=cache_of(s)))


def test_loops_and_friction(stores: tuple[Store, SparkStore], whole: tuple[Scope, Callable[[Store], ResultCache]]) -> None:
    duck, sstore = stores
    scope, cache_of = whole
    loops = same(duck, sstore, lambda s: loop_events_data(s, scope=scope))
    assert loops["customer_id"].nunique() > 1
    # the bootstrap is seeded and runs in pandas on the engine's frames: equal frames give equal intervals
    same(duck, sstore, lambda s: friction_data(s, definition=DEFINITION, scope=scope, cache=cache_of(s), n_boot=100))


def test_cohort_metrics(stores: tuple[Store, SparkStore], whole: tuple[Scope, Callable[[Store], ResultCache]]) -> None:
    duck, sstore = stores
    scope, cache_of = whole
    got = same(duck, sstore, lambda s: cohort_metrics_data(s, definition=DEFINITION, scope=scope, cache=cache_of(s)))
    assert got["cohort"].nunique() > 1


def test_as_of_snapshots(stores: tuple[Store, SparkStore], whole: tuple[Scope, Callable[[Store], ResultCache]]) -> None:
    duck, sstore = stores
    scope, cache_of = whole
    horizon = 30
    # three as-of days, two weeks apart, whose labels the data can still see (as_of + horizon <= data end)
    days = [(scope.as_of - pd.Timedelta(days=horizon + 14 * k)).date() for k in range(3)]
    built: dict[int, Any] = {}

    def snapshots(store: Store) -> Any:
        if id(store) not in built:
            built[id(store)] = build_snapshots(
                store, definition=DEFINITION, horizon_days=horizon, as_of_dates=days, scope=scope, cache=cache_of(store)
            )
        return built[id(store)]

    data = same(duck, sstore, lambda s: snapshots(s).data)
    assert data["as_of"].nunique() == len(days)
    same(duck, sstore, lambda s: snapshots(s).catalog)
    pd.testing.assert_frame_equal(comparable_frame(snapshots(sstore).exclusions), comparable_frame(snapshots(duck).exclusions), check_dtype=False)


def test_voice_weekly_trends(stores: tuple[Store, SparkStore], whole: tuple[Scope, Callable[[Store], ResultCache]]) -> None:
    duck, sstore = stores
    scope, _ = whole
    voices: dict[int, pd.DataFrame] = {}

    def voice(store: Store) -> pd.DataFrame:
        return voices.setdefault(id(store), ticket_voice_data(store, scope=scope))

    same(duck, sstore, voice)  # the tickets read by SQL, scored in pandas
    weekly = same(duck, sstore, lambda s: voc_by_week_data(voice(s)))
    assert weekly["iso_week"].str.fullmatch(r"\d{4}-W\d{2}").all()


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


# -- a report notebook's context on Spark ----------------------------------------------------------
def test_open_journey_with_an_engine_config(
    stores: tuple[Store, SparkStore], spark: Any, parquet: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    duck, _ = stores
    monkeypatch.setenv("JOURNEYLIB_RESULTS_DIR", str(tmp_path / "results"))
    engine = tmp_path / "engine.yaml"
    engine.write_text(
        "engine: spark\nmaster: local[2]\ntables:\n" + "".join(f"  {name}: {{path: '{path}'}}\n" for name, path in parquet.items())
    )
    definition = str(Path(__file__).resolve().parents[1] / "parameters" / "journeys" / "saas.yaml")
    spark.conf.set("spark.sql.session.timeZone", "America/New_York")  # a session left in another zone is put back to UTC
    try:
        journey = open_journey({"engine": str(engine), "db": "", "definition": definition, "sample_n": 60})
        assert isinstance(journey.store, SparkStore)
        assert journey.store.spark is spark
        assert spark.conf.get("spark.sql.session.timeZone") == "UTC"
        local = Journey(duck, DEFINITION, Scope.build(duck, sample_n=60, segment_field=DEFINITION.segment_field))
        got, expected = journey.funnel_data(), local.funnel_data()
        assert int(got["eligible"].iloc[0]) == 60
        pd.testing.assert_frame_equal(comparable_frame(got), comparable_frame(expected), check_dtype=False, rtol=1e-9)
        # results kept on disk are keyed by the data's fingerprint: whole-row hashes, translated for Spark
        fingerprints = table_fingerprints(journey.store)
        duck_fingerprints = table_fingerprints(duck)
        for name, table in duck_fingerprints["tables"].items():
            assert fingerprints["tables"][name]["rows"] == table["rows"]
            assert fingerprints["tables"][name]["max_time"] == table["max_time"]
        assert table_fingerprints(journey.store)["content_hash"] == fingerprints["content_hash"]  # stable
        voice = journey.persisted(ticket_voice_data)
        assert any((tmp_path / "results").rglob("*")), "the result was not kept on disk"
        pd.testing.assert_frame_equal(journey.persisted(ticket_voice_data), voice)  # read back under the same key
        pd.testing.assert_frame_equal(comparable_frame(voice), comparable_frame(local.run(ticket_voice_data)), check_dtype=False)
        journey.store.close()
        assert not spark.sparkContext._jsc.sc().isStopped()  # a store on a session it did not start leaves it running
    finally:
        cache_in_memory(spark)  # the views were registered anew from the same files
    with pytest.raises(TypeError, match=r"give db .* or engine .*, not both"):
        open_journey({"engine": str(engine), "db": str(tmp_path / "x.duckdb"), "definition": definition})
    with pytest.raises(TypeError, match="engine cannot come from a URL"):
        open_journey({"engine": str(engine), "definition": definition}, url=["engine"])


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
