"""The SQL fragments of journeylib.store.dialect mean on DuckDB what their docstrings say; the Store's temp-table API."""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
import pytest

from journeylib.store import Store
from journeylib.store.dialect import (
    CAST_TYPES,
    sql_add_days,
    sql_add_microseconds,
    sql_anti_join,
    sql_cast,
    sql_date_range,
    sql_days_between,
    sql_epoch_microseconds,
    sql_filtered,
    sql_interval_microseconds,
    sql_iso_week,
    sql_json_text,
    sql_nth_smallest,
    sql_quantiles,
    sql_quote,
    sql_regexp_replace_all,
    sql_replace_columns,
    sql_seconds_between,
    sql_seeded_order,
    sql_semi_join,
    sql_timestamp,
    sql_utc_clock,
    sql_values,
    sql_week_start,
    sql_weeks_between,
)


@pytest.fixture
def store() -> Iterator[Store]:
    s = Store(":memory:")
    yield s
    s.close()


def _one(store: Store, expr: str, frm: str = "") -> object:
    return store.query(f"SELECT {expr} AS v {frm}")["v"].iloc[0]


T0 = sql_timestamp(pd.Timestamp("2024-03-06T12:00:00Z"))  # a Wednesday


def test_cast_to_each_kind(store: Store) -> None:
    assert _one(store, sql_cast("'7'", "integer")) == 7
    assert _one(store, sql_cast("'2.5'", "number")) == 2.5
    assert str(_one(store, sql_cast("'2024-03-06'", "date")))[:10] == "2024-03-06"
    assert _one(store, sql_cast(sql_cast("'2024-03-06T12:00:00Z'", "timestamp"), "text")).startswith("2024-03-06 12:00:00")
    assert set(CAST_TYPES) >= {"timestamp", "naive_timestamp", "date", "integer", "int32", "number", "text"}


def test_cast_rejects_an_unknown_kind() -> None:
    with pytest.raises(ValueError, match=r"sql_cast: kind must be one of .*got 'float'"):
        sql_cast("x", "float")


def test_time_arithmetic(store: Store) -> None:
    # 1.5 days after Wednesday noon is Friday 00:00; 36 hours = 1.5 days
    later = sql_add_days(T0, 1.5)
    assert pd.Timestamp(_one(store, later)) == pd.Timestamp("2024-03-08T00:00:00Z")
    assert _one(store, sql_days_between(T0, later)) == 1.5
    assert pd.Timestamp(_one(store, sql_add_microseconds(T0, -1))) == pd.Timestamp("2024-03-06T11:59:59.999999Z")
    # 90 s apart; a 30-minute interval is 1,800,000,000 µs
    assert _one(store, sql_seconds_between(T0, sql_add_microseconds(T0, 90_000_000))) == 90.0
    assert _one(store, f"{sql_add_microseconds(T0, 1_800_000_000)} - {T0} <= {sql_interval_microseconds(1_800_000_000)}")
    # 2024-03-06T12:00Z is 1709726400 s after the epoch
    assert _one(store, sql_epoch_microseconds(T0)) == 1_709_726_400_000_000


def test_week_calendar(store: Store) -> None:
    # the week of Wednesday 2024-03-06 starts on Monday 2024-03-04 (ISO week 10)
    start = sql_week_start(T0)
    assert pd.Timestamp(_one(store, start)) == pd.Timestamp("2024-03-04")
    assert _one(store, sql_iso_week(sql_cast(start, "date"))) == "2024-W10"
    later = sql_week_start(sql_add_days(T0, 14))
    assert _one(store, sql_weeks_between(start, later)) == 2
    assert pd.Timestamp(_one(store, sql_utc_clock(T0))) == pd.Timestamp("2024-03-06T12:00:00")
    weeks = store.query(
        f"SELECT {sql_cast(sql_date_range('lo', 'hi', step_days=7), 'date')} AS d "
        "FROM (SELECT DATE '2024-03-04' AS lo, DATE '2024-03-18' AS hi)"
    )
    assert [str(d)[:10] for d in weeks["d"]] == ["2024-03-04", "2024-03-11", "2024-03-18"]


def test_filtered_and_nth_smallest_aggregates(store: Store) -> None:
    rows = "FROM (SELECT unnest([1, 2, 2, 5, 9]) AS x)"
    assert _one(store, sql_filtered("count", "*", "x >= 2"), rows) == 4
    assert _one(store, sql_filtered("count", "x", "x >= 2", distinct=True), rows) == 3
    assert pd.isna(_one(store, sql_filtered("sum", "x", "x > 100"), rows))  # no row qualifies
    assert _one(store, sql_nth_smallest("x", 2, where="x > 1"), rows) == 2
    assert _one(store, sql_nth_smallest("x", 3, where="x > 1"), rows) == 5
    assert pd.isna(_one(store, sql_nth_smallest("x", 9), rows))
    # quantiles of 1, 2, 2, 5, 9 (interpolated): p25 = 2, p50 = 2, p75 = 5, p100 = 9
    assert list(_one(store, sql_quantiles("x", [0.25, 0.5, 0.75, 1.0]), rows)) == [2.0, 2.0, 5.0, 9.0]


def test_semi_and_anti_join(store: Store) -> None:
    left = "(SELECT unnest(['a', 'b', 'c']) AS k) l"
    right = "(SELECT unnest(['a', 'a', 'c']) AS k) r"
    semi = store.query(f"SELECT l.k FROM {sql_semi_join(left, right, 'l.k = r.k')} ORDER BY l.k")
    anti = store.query(f"SELECT l.k FROM {sql_anti_join(left, right, 'l.k = r.k')} ORDER BY l.k")
    assert semi["k"].tolist() == ["a", "c"]  # each left row once, although 'a' matches twice
    assert anti["k"].tolist() == ["b"]


def test_replace_columns_keeps_names_and_places(store: Store) -> None:
    out = store.query(f"SELECT {sql_replace_columns({'b': 'b * 10'})} FROM (SELECT 1 AS a, 2 AS b, 3 AS c)")
    assert out.columns.tolist() == ["a", "b", "c"]
    assert out.iloc[0].tolist() == [1, 20, 3]


def test_regexp_replace_all_replaces_every_match(store: Store) -> None:
    expr = sql_regexp_replace_all(sql_quote("id=1, id=22 at column 7"), "=[0-9]+", "=…")
    assert _one(store, expr) == "id=…, id=… at column 7"
    group = sql_regexp_replace_all(sql_quote("at column 7"), "at (position|column) [0-9]+", r"at \1 …")
    assert _one(store, group) == "at column …"
    quoted = sql_regexp_replace_all(sql_quote("bad 'x' and 'y'"), "'[^']*'", "'…'")
    assert _one(store, quoted) == "bad '…' and '…'"


def test_values_gives_one_row_per_value(store: Store) -> None:
    assert store.query(sql_values(["3", "7.5"], "d"))["d"].astype(float).tolist() == [3.0, 7.5]


def test_json_text_quote_timestamp_and_seeded_order(store: Store) -> None:
    props = sql_cast(sql_quote('{"plan": "Pro", "a.b": 1, "it\'s": "x"}'), "json")
    assert _one(store, sql_json_text(props, "plan")) == "Pro"
    assert _one(store, sql_json_text(props, "a.b")) == "1"
    assert _one(store, sql_json_text(props, "it's")) == "x"
    assert pd.isna(_one(store, sql_json_text(props, "missing")))
    assert pd.Timestamp(_one(store, T0)) == pd.Timestamp("2024-03-06T12:00:00Z")
    ids = "(SELECT unnest(['c1', 'c2', 'c3', 'c4']) AS customer_id)"
    first = store.query(f"SELECT customer_id FROM {ids} ORDER BY {sql_seeded_order('customer_id', 1)}")["customer_id"].tolist()
    again = store.query(f"SELECT customer_id FROM {ids} ORDER BY {sql_seeded_order('customer_id', 1)}")["customer_id"].tolist()
    assert first == again
    assert sorted(first) == ["c1", "c2", "c3", "c4"]


def test_temp_tables_are_dropped_after_the_block_also_on_error(store: Store) -> None:
    with store.temp_tables("_jl_t1", "_jl_t2"):
        store.create_temp_table("_jl_t1", "SELECT 1 AS n")
        store.create_temp_table("_jl_t1", "SELECT 2 AS n")  # replaces
        assert store.query("SELECT n FROM _jl_t1")["n"].tolist() == [2]

    def fail() -> None:
        with store.temp_tables("_jl_t1"):
            store.create_temp_table("_jl_t1", "SELECT 1 AS n")
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        fail()
    left = store.query("SELECT table_name FROM information_schema.tables WHERE table_name LIKE '_jl_t%'")
    assert left.empty


# -- the Spark spelling of the week calendar (translation only; tests/test_spark_parity.py runs it on Spark) ----
def test_week_calendar_translates_to_spark() -> None:
    pytest.importorskip("sqlglot", reason="the spark extra is not installed")
    from journeylib.store.dialect import SparkTranslationError, to_spark_sql

    def spark(sql: str) -> str:
        return to_spark_sql(sql, columns_of=lambda name: None)

    assert spark(f"SELECT {sql_week_start('ts')} AS w FROM t") == (
        "SELECT CAST(DATE_TRUNC('WEEK', CAST(`ts` AS TIMESTAMP_NTZ)) AS TIMESTAMP_NTZ) AS `w` FROM `t`"  # stays naive
    )
    assert spark(f"SELECT {sql_iso_week('d')} AS k FROM t") == (
        "SELECT CONCAT(CAST(DATE_PART('YEAROFWEEK', `d`) AS STRING), '-W', LPAD(CAST(WEEKOFYEAR(`d`) AS STRING), 2, '0')) AS `k` FROM `t`"
    )
    assert spark(f"SELECT {sql_cast(sql_date_range('lo', 'hi', step_days=7), 'date')} AS w FROM b") == (
        "SELECT EXPLODE(TRANSFORM(CASE WHEN CAST(`lo` AS TIMESTAMP_NTZ) <= CAST(`hi` AS TIMESTAMP_NTZ) "
        "THEN SEQUENCE(CAST(`lo` AS TIMESTAMP_NTZ), CAST(`hi` AS TIMESTAMP_NTZ), INTERVAL '7' DAY) END, "
        "`_jl_v` -> CAST(`_jl_v` AS DATE))) AS `w` FROM `b`"
    )
    # without a cast the series stays DuckDB's naive timestamps: no transform
    assert spark(f"SELECT {sql_date_range('lo', 'hi', step_days=1)} AS d FROM b").startswith(
        "SELECT EXPLODE(CASE WHEN CAST(`lo` AS TIMESTAMP_NTZ) <= CAST(`hi` AS TIMESTAMP_NTZ) THEN SEQUENCE("
    )
    assert spark(f"SELECT {sql_weeks_between('lo', 'hi')} AS n FROM b") == "SELECT DATEDIFF(WEEK, `lo`, `hi`) AS `n` FROM `b`"
    assert spark("SELECT strftime(d, '%Y-%m-%d %H:%M:%S 100%%') AS s FROM t") == (
        "SELECT CONCAT(CAST(YEAR(`d`) AS STRING), '-', LPAD(CAST(MONTH(`d`) AS STRING), 2, '0'), '-', "
        "LPAD(CAST(DAY(`d`) AS STRING), 2, '0'), ' ', LPAD(CAST(HOUR(`d`) AS STRING), 2, '0'), ':', "
        "LPAD(CAST(MINUTE(`d`) AS STRING), 2, '0'), ':', LPAD(CAST(SECOND(`d`) AS STRING), 2, '0'), ' 100%') AS `s` FROM `t`"
    )
    assert spark("SELECT column_name FROM information_schema.columns c WHERE table_name = 'x'") == (
        "SELECT `column_name` FROM `_jl_information_schema_columns` AS `c` WHERE `table_name` = 'x'"
    )
    # a whole-row hash of a table alias (the store's fingerprints); a column's hash stays as it is
    row_hash = "SELECT bit_xor(hash(t)) AS h FROM customers AS t"
    assert to_spark_sql(row_hash, columns_of={"customers": ["customer_id", "name"]}.get) == (
        "SELECT BIT_XOR(XXHASH64(STRUCT(`t`.*))) AS `h` FROM `customers` AS `t`"
    )
    assert to_spark_sql("SELECT hash(t) AS h FROM ev", columns_of={"ev": ["t"]}.get) == "SELECT HASH(`t`) AS `h` FROM `ev`"
    with pytest.raises(SparkTranslationError, match=r"strftime directive %A \(format '%A'\).*engine: duckdb"):
        spark("SELECT strftime(d, '%A') AS s FROM t")
    with pytest.raises(SparkTranslationError, match=r"series outside unnest\(generate_series.*sql_date_range.*engine: duckdb"):
        spark("SELECT * FROM generate_series(1, 3)")
    with pytest.raises(SparkTranslationError, match=r"end-exclusive series \(range\(\.\.\.\)\).*engine: duckdb"):
        spark("SELECT unnest(range(1, 5)) AS i")
