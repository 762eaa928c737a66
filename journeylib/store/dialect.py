"""SQL dialect: the DuckDB-specific fragments journeylib's queries are built from.

Analysis modules (``journeylib.journey``, ``journeylib.customers``,
``journeylib.scope``, ...) and the store's own modules take every piece of SQL
whose spelling depends on the database from here: casts, date and time
arithmetic, week calendars, filtered and top-n aggregates, semi joins,
star-select modifiers, regular expressions, inline value lists, JSON
property access, literals, seeded ordering and the column types of the
canonical tables. Outside :mod:`journeylib.store` the SQL is otherwise plain
ANSI with window functions (``tests/test_architecture.py`` checks it). A port
of journeylib to another backend rewrites this module; the statements of the
store's modules (``database``, ``merge``, ``staging``) go with it.

Every function returns SQL text and runs nothing, so this module does not
import ``duckdb``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from journeylib.exceptions import JourneyLibError

__all__ = [
    "CAST_TYPES",
    "SPARK_CATALOG_VIEWS",
    "SPARK_STRFTIME",
    "SPARK_TYPES",
    "SPARK_UNSUPPORTED",
    "SQL_TYPES",
    "SparkTranslationError",
    "sql_add_days",
    "sql_add_microseconds",
    "sql_anti_join",
    "sql_cast",
    "sql_date_range",
    "sql_days_between",
    "sql_epoch_microseconds",
    "sql_filtered",
    "sql_interval_microseconds",
    "sql_iso_week",
    "sql_json_text",
    "sql_nth_smallest",
    "sql_quantiles",
    "sql_quote",
    "sql_rank_columns",
    "sql_ranked_quantile",
    "sql_ranked_quantile_bounds",
    "sql_regexp_replace_all",
    "sql_replace_columns",
    "sql_seconds_between",
    "sql_seeded_order",
    "sql_semi_join",
    "sql_timestamp",
    "sql_utc_clock",
    "sql_values",
    "sql_week_start",
    "sql_weeks_between",
    "to_spark_sql",
]

#: Column type of each kind of the schema (``journeylib.store.schema``) in DuckDB.
SQL_TYPES: dict[str, str] = {
    "id": "VARCHAR",
    "text": "VARCHAR",
    "enum": "VARCHAR",
    "timestamp": "TIMESTAMPTZ",
    "number": "DOUBLE",
    "integer": "BIGINT",
    "json": "JSON",
}

#: Types :func:`sql_cast` converts to: the column kinds of :data:`SQL_TYPES` plus the
#: kinds of computed values (``naive_timestamp`` is a wall-clock time without time zone).
CAST_TYPES: dict[str, str] = {
    **SQL_TYPES,
    "int32": "INTEGER",
    "date": "DATE",
    "naive_timestamp": "TIMESTAMP",
    "boolean": "BOOLEAN",
}


def sql_cast(expr: str, kind: str) -> str:
    """Return SQL converting *expr* to the type of *kind*.

    Parameters
    ----------
    expr : str
        SQL expression.
    kind : str
        A key of :data:`CAST_TYPES` (``"timestamp"`` is a time-zone-aware
        timestamp, ``"number"`` a double, ``"integer"`` a 64-bit integer, ...).

    Returns
    -------
    str
        The SQL expression.

    Raises
    ------
    ValueError
        If *kind* is not a key of :data:`CAST_TYPES`.

    Examples
    --------
    >>> sql_cast("$as_of", "timestamp")
    'CAST($as_of AS TIMESTAMPTZ)'
    >>> sql_cast("rn", "int32")
    'CAST(rn AS INTEGER)'
    """
    if kind not in CAST_TYPES:
        msg = f"sql_cast: kind must be one of {', '.join(CAST_TYPES)}; got {kind!r}"
        raise ValueError(msg)
    return f"CAST({expr} AS {CAST_TYPES[kind]})"


def sql_add_days(expr: str, days: float) -> str:
    """Return SQL adding *days* (may be fractional) to a timestamp expression.

    Parameters
    ----------
    expr : str
        SQL expression of a timestamp.
    days : float
        Days to add, rounded to the microsecond.

    Returns
    -------
    str
        The SQL expression.

    Examples
    --------
    >>> sql_add_days("signup_at", 1.5)
    '(signup_at + to_microseconds(129600000000))'
    """
    return sql_add_microseconds(expr, round(days * 86_400_000_000))


def sql_add_microseconds(expr: str, micros: int) -> str:
    """Return SQL adding a whole number of microseconds to a timestamp expression.

    Parameters
    ----------
    expr : str
        SQL expression of a timestamp (with or without time zone).
    micros : int
        Microseconds to add (negative to subtract).

    Returns
    -------
    str
        The SQL expression.

    Examples
    --------
    >>> sql_add_microseconds("week_start", 7 * 86_400_000_000 - 1)
    '(week_start + to_microseconds(604799999999))'
    """
    return f"({expr} + {sql_interval_microseconds(micros)})"


def sql_interval_microseconds(micros: int) -> str:
    """Return SQL for a duration of a whole number of microseconds.

    It can be added to a timestamp or compared with the difference of two.

    Parameters
    ----------
    micros : int
        The duration in microseconds.

    Returns
    -------
    str
        The SQL expression (an interval).

    Examples
    --------
    >>> sql_interval_microseconds(1_800_000_000)
    'to_microseconds(1800000000)'
    """
    return f"to_microseconds({int(micros)})"


def sql_epoch_microseconds(expr: str) -> str:
    """Return SQL for the microseconds since 1970-01-01 UTC of a timestamp (a BIGINT).

    Parameters
    ----------
    expr : str
        SQL expression of a time-zone-aware timestamp.

    Returns
    -------
    str
        The SQL expression.

    Examples
    --------
    >>> sql_epoch_microseconds("last_in")
    'epoch_us(last_in)'
    """
    return f"epoch_us({expr})"


def sql_utc_clock(expr: str) -> str:
    """Return SQL for the UTC wall-clock time of a time-zone-aware timestamp (a timestamp without time zone).

    Parameters
    ----------
    expr : str
        SQL expression of a time-zone-aware timestamp.

    Returns
    -------
    str
        The SQL expression.

    Examples
    --------
    >>> sql_utc_clock("timestamp")
    "timezone('UTC', timestamp)"
    """
    return f"timezone('UTC', {expr})"


def sql_week_start(expr: str) -> str:
    """Return SQL for the start of the ISO week (Monday 00:00, UTC) of a time-zone-aware timestamp.

    Parameters
    ----------
    expr : str
        SQL expression of a time-zone-aware timestamp.

    Returns
    -------
    str
        The SQL expression, a timestamp without time zone (UTC wall clock);
        cast it with ``sql_cast(..., "date")`` for the date.

    Examples
    --------
    >>> sql_week_start("timestamp")
    "date_trunc('week', timezone('UTC', timestamp))"
    """
    return f"date_trunc('week', {sql_utc_clock(expr)})"


def sql_weeks_between(start: str, end: str) -> str:
    """Return SQL for the whole weeks from *start* to *end* (both week starts from :func:`sql_week_start`).

    Parameters
    ----------
    start, end : str
        SQL expressions of timestamps without time zone.

    Returns
    -------
    str
        The SQL expression (an integer; negative when *end* is before *start*).

    Examples
    --------
    >>> sql_weeks_between("lo", "hi")
    "date_diff('week', lo, hi)"
    """
    return f"date_diff('week', {start}, {end})"


def sql_date_range(start: str, stop: str, *, step_days: int) -> str:
    """Return a set-returning SQL expression: one row per date from *start* to *stop* (inclusive) every *step_days*.

    It goes in a SELECT list, e.g. ``SELECT CAST(<it> AS DATE) AS week_start FROM (...)``.

    Parameters
    ----------
    start, stop : str
        SQL expressions of dates or timestamps without time zone.
    step_days : int
        Days between consecutive values.

    Returns
    -------
    str
        The SQL expression (timestamps without time zone).

    Examples
    --------
    >>> sql_date_range("lo", "hi", step_days=7)
    'unnest(generate_series(lo, hi, INTERVAL 7 DAY))'
    """
    return f"unnest(generate_series({start}, {stop}, INTERVAL {int(step_days)} DAY))"


def sql_iso_week(expr: str) -> str:
    """Return SQL for the ISO year and week of a date as text, e.g. ``2024-W09``.

    Parameters
    ----------
    expr : str
        SQL expression of a date.

    Returns
    -------
    str
        The SQL expression.

    Examples
    --------
    >>> sql_iso_week("week_start")
    "strftime(week_start, '%G-W%V')"
    """
    return f"strftime({expr}, '%G-W%V')"


def sql_filtered(func: str, expr: str, where: str, *, distinct: bool = False) -> str:
    """Return an aggregate over the rows of a group that satisfy *where* only.

    Parameters
    ----------
    func : str
        The aggregate function (``count``, ``sum``, ``min``, ``max``, ``avg``, ...).
    expr : str
        Its argument (``*`` for ``count``).
    where : str
        SQL condition on the rows that count.
    distinct : bool, default False
        Aggregate the distinct values of *expr*.

    Returns
    -------
    str
        The aggregate SQL expression; NULL (0 for ``count``) when no row qualifies.

    Examples
    --------
    >>> sql_filtered("count", "*", "NOT known")
    'count(*) FILTER (WHERE NOT known)'
    >>> sql_filtered("count", "customer_id", "known", distinct=True)
    'count(DISTINCT customer_id) FILTER (WHERE known)'
    """
    arg = f"DISTINCT {expr}" if distinct else expr
    return f"{func}({arg}) FILTER (WHERE {where})"


def sql_semi_join(left: str, right: str, on: str) -> str:
    """Return a FROM clause keeping the rows of *left* that have a match in *right*, each once.

    Only *left*'s columns can be selected.

    Parameters
    ----------
    left : str
        A table or aliased subquery (e.g. ``events e``).
    right : str
        A table or aliased subquery (e.g. ``(SELECT ...) c``).
    on : str
        The join condition.

    Returns
    -------
    str
        The FROM clause (without ``FROM``).

    Examples
    --------
    >>> sql_semi_join("events e", "customers c", "e.customer_id = c.customer_id")
    'events e SEMI JOIN customers c ON e.customer_id = c.customer_id'
    """
    return f"{left} SEMI JOIN {right} ON {on}"


def sql_anti_join(left: str, right: str, on: str) -> str:
    """Return a FROM clause keeping the rows of *left* that have no match in *right*.

    Parameters
    ----------
    left, right, on : str
        As in :func:`sql_semi_join`.

    Returns
    -------
    str
        The FROM clause (without ``FROM``).

    Examples
    --------
    >>> sql_anti_join("events e", "customers c", "e.customer_id = c.customer_id")
    'events e ANTI JOIN customers c ON e.customer_id = c.customer_id'
    """
    return f"{left} ANTI JOIN {right} ON {on}"


def sql_replace_columns(replacements: dict[str, str]) -> str:
    """Return a SELECT list of every column of the source, with some columns computed anew.

    The columns keep their names and places.

    Parameters
    ----------
    replacements : dict of str to str
        Column name → SQL expression of its new value.

    Returns
    -------
    str
        The SELECT list (``SELECT <it> FROM ...``).

    Examples
    --------
    >>> sql_replace_columns({"churned_at": "CASE WHEN churned_at <= t THEN churned_at END"})
    '* REPLACE (CASE WHEN churned_at <= t THEN churned_at END AS churned_at)'
    """
    return "* REPLACE (" + ", ".join(f"{expr} AS {col}" for col, expr in replacements.items()) + ")"


def sql_regexp_replace_all(expr: str, pattern: str, replacement: str) -> str:
    r"""Return SQL replacing every match of a regular expression in a text.

    Parameters
    ----------
    expr : str
        SQL expression of a text.
    pattern : str
        The regular expression (RE2 syntax), as plain text: it is quoted here.
    replacement : str
        The replacement, as plain text; ```` refers to the first group.

    Returns
    -------
    str
        The SQL expression.

    Examples
    --------
    >>> print(sql_regexp_replace_all("reason", "=[^ ;]+", "=…"))
    regexp_replace(reason, '=[^ ;]+', '=…', 'g')
    """
    return f"regexp_replace({expr}, {sql_quote(pattern)}, {sql_quote(replacement)}, 'g')"


def sql_values(values: list[str], column: str) -> str:
    """Return a SELECT giving one row per value, in one column.

    Parameters
    ----------
    values : list of str
        SQL literals (e.g. ``["3", "7", "14"]``).
    column : str
        The column name.

    Returns
    -------
    str
        The SELECT statement.

    Examples
    --------
    >>> sql_values(["3", "7"], "d")
    'SELECT unnest([3, 7]) AS d'
    """
    return f"SELECT unnest([{', '.join(values)}]) AS {column}"


def sql_days_between(start: str, end: str) -> str:
    """Return SQL for the (fractional) days from *start* to *end*.

    Parameters
    ----------
    start, end : str
        SQL expressions of timestamps.

    Returns
    -------
    str
        The SQL expression (a DOUBLE; negative when *end* is before *start*).

    Examples
    --------
    >>> sql_days_between("a", "b")
    '(epoch(b) - epoch(a)) / 86400.0'
    """
    return f"{sql_seconds_between(start, end)} / 86400.0"


def sql_seconds_between(start: str, end: str) -> str:
    """Return SQL for the (fractional) seconds from *start* to *end*.

    Parameters
    ----------
    start, end : str
        SQL expressions of timestamps.

    Returns
    -------
    str
        The SQL expression (a DOUBLE; negative when *end* is before *start*).

    Examples
    --------
    >>> sql_seconds_between("min(timestamp)", "max(timestamp)")
    '(epoch(max(timestamp)) - epoch(min(timestamp)))'
    """
    return f"(epoch({end}) - epoch({start}))"


def sql_quantiles(expr: str, probabilities: list[float]) -> str:
    """Return an aggregate SQL expression for interpolated quantiles of *expr* in a group, as one list.

    Parameters
    ----------
    expr : str
        SQL expression aggregated; NULLs are ignored.
    probabilities : list of float
        The quantiles wanted, each in [0, 1].

    Returns
    -------
    str
        The aggregate SQL expression: a list with one value per probability,
        in their order (linear interpolation between the closest values);
        NULL when the group has no non-NULL value.

    Examples
    --------
    >>> sql_quantiles("days", [0.25, 0.5, 0.75])
    'quantile_cont(days, [0.25, 0.5, 0.75])'
    """
    return f"quantile_cont({expr}, [{', '.join(repr(float(q)) for q in probabilities)}])"


def sql_rank_columns(expr: str, *, partition_by: str, name: str) -> str:
    """Return window columns that rank *expr* within each partition, for exact quantiles from a sort.

    An exact quantile aggregate (``quantile_cont``, ``median``) keeps every value of
    a group in its state, and DuckDB does not spill aggregate states; a window
    sort does spill. These two columns, selected beside the rows, let
    :func:`sql_ranked_quantile_bounds` pick the values a quantile interpolates
    between in an ordinary ``GROUP BY`` over the same partition.

    Parameters
    ----------
    expr : str
        SQL expression ranked (NULLs rank last and are not counted).
    partition_by : str
        SQL of the ``PARTITION BY`` list (the groups of the later ``GROUP BY``).
    name : str
        Prefix of the two column names.

    Returns
    -------
    str
        Two select-list items: ``{name}_i``, the 0-based position of the row
        in its partition ordered by *expr* (NULLs last; equal values in any
        order), and ``{name}_n``, the number of non-NULL values of *expr* in
        the partition.

    Examples
    --------
    >>> sql_rank_columns("days", partition_by="f, t", name="d")
    'row_number() OVER (PARTITION BY f, t ORDER BY days NULLS LAST) - 1 AS d_i, count(days) OVER (PARTITION BY f, t) AS d_n'
    """
    return (
        f"row_number() OVER (PARTITION BY {partition_by} ORDER BY {expr} NULLS LAST) - 1 AS {name}_i, "
        f"count({expr}) OVER (PARTITION BY {partition_by}) AS {name}_n"
    )


def sql_ranked_quantile_bounds(expr: str, *, name: str, probability: float) -> tuple[str, str, str]:
    """Return aggregate SQL for the two values a quantile interpolates between, and the weight.

    Over rows carrying the columns of :func:`sql_rank_columns` (same *expr* and
    *name*), grouped by its partition. With ``n`` non-NULL values and
    ``r = (n - 1) × probability`` (a DOUBLE), ``lo`` is the value at position
    ``floor(r)``, ``hi`` the value at ``ceil(r)`` and ``frac = r - floor(r)``:
    the positions and weight of DuckDB's ``quantile_cont``.

    Parameters
    ----------
    expr : str
        The ranked SQL expression (a column of the ranked rows).
    name : str
        Prefix given to :func:`sql_rank_columns`.
    probability : float
        The quantile wanted, in [0, 1].

    Returns
    -------
    tuple of str
        Aggregate SQL expressions ``(lo, hi, frac)``, DOUBLE; ``lo`` and ``hi``
        are NULL when the group has no non-NULL value.

    Raises
    ------
    ValueError
        If *probability* is outside [0, 1].
    """
    q = float(probability)
    if not 0.0 <= q <= 1.0:
        msg = f"sql_ranked_quantile_bounds: probability must be in [0, 1]; got {probability!r}"
        raise ValueError(msg)
    row_rank = f"(CAST({name}_n - 1 AS DOUBLE) * CAST({q!r} AS DOUBLE))"
    group_rank = f"(CAST(max({name}_n) - 1 AS DOUBLE) * CAST({q!r} AS DOUBLE))"
    lo = f"max(CASE WHEN {name}_i = floor({row_rank}) THEN CAST({expr} AS DOUBLE) END)"
    hi = f"max(CASE WHEN {name}_i = ceil({row_rank}) THEN CAST({expr} AS DOUBLE) END)"
    return lo, hi, f"({group_rank} - floor({group_rank}))"


def sql_ranked_quantile(expr: str, *, name: str, probability: float) -> str:
    """Return an aggregate SQL expression for an interpolated quantile from ranked rows.

    The value is ``lo`` when ``frac`` is 0, else ``lo × (1 - frac) + hi × frac``
    (``lo``, ``hi``, ``frac`` of :func:`sql_ranked_quantile_bounds`). That is
    bit for bit DuckDB's ``quantile_cont`` (and ``median``) whenever ``frac`` is
    0 or 0.5, which covers every median: both products are then exact, so the
    sum is rounded once, as DuckDB's fused multiply-add rounds it. For other
    fractions DuckDB's fused multiply-add can differ from this SQL in the
    last bit; compute those from the bounds.

    Parameters
    ----------
    expr : str
        The ranked SQL expression (a column of the ranked rows).
    name : str
        Prefix given to :func:`sql_rank_columns`.
    probability : float
        The quantile wanted, in [0, 1].

    Returns
    -------
    str
        The aggregate SQL expression (DOUBLE; NULL when the group has no
        non-NULL value).

    Examples
    --------
    >>> sql_ranked_quantile("x", name="x", probability=0.5).startswith("CASE WHEN")
    True
    """
    lo, hi, frac = sql_ranked_quantile_bounds(expr, name=name, probability=probability)
    return f"CASE WHEN {frac} = 0 THEN {lo} ELSE {lo} * (1.0 - {frac}) + {hi} * {frac} END"


def sql_nth_smallest(expr: str, n: int, *, where: str | None = None) -> str:
    """Return an aggregate SQL expression for the *n*-th smallest value of *expr* in a group (1-based).

    Only rows satisfying the SQL condition *where* count, when given. NULL when
    fewer than *n* values qualify. A bounded top-*n* aggregate, much cheaper
    than numbering every row with a window function.

    Parameters
    ----------
    expr : str
        SQL expression aggregated.
    n : int
        Which value, 1 for the smallest.
    where : str, optional
        SQL condition on the rows that count.

    Returns
    -------
    str
        The aggregate SQL expression.

    Examples
    --------
    >>> sql_nth_smallest("timestamp", 2, where="event = 'login'")
    "(min(timestamp, 2) FILTER (WHERE event = 'login'))[2]"
    """
    filt = f" FILTER (WHERE {where})" if where else ""
    if n == 1:
        return f"min({expr}){filt}"
    return f"(min({expr}, {int(n)}){filt})[{int(n)}]"


def sql_json_text(column: str, key: str) -> str:
    """Return SQL extracting property *key* of a JSON column as text.

    Parameters
    ----------
    column : str
        SQL expression of a JSON value (e.g. ``properties``).
    key : str
        The property name, taken literally (quotes and dots are no syntax).

    Returns
    -------
    str
        The SQL expression; NULL where the property is missing.

    Examples
    --------
    >>> print(sql_json_text("properties", "plan"))
    json_extract_string(properties, '$."plan"')
    """
    safe = key.replace("'", "''").replace('"', '\\"')
    return f"json_extract_string({column}, '$.\"{safe}\"')"


def sql_quote(value: object) -> str:
    """Return a SQL string literal for *value* (as text).

    Parameters
    ----------
    value : object
        Any value; its ``str`` is quoted, single quotes doubled.

    Returns
    -------
    str
        The literal.

    Examples
    --------
    >>> sql_quote("O'Brien")
    "'O''Brien'"
    """
    return "'" + str(value).replace("'", "''") + "'"


def sql_timestamp(ts: Any) -> str:
    """Return a SQL literal of a time-zone-aware timestamp (``TIMESTAMPTZ '…'``).

    Parameters
    ----------
    ts : pandas.Timestamp or datetime.datetime
        The time; its ISO text is quoted.

    Returns
    -------
    str
        The literal.

    Examples
    --------
    >>> import pandas as pd
    >>> sql_timestamp(pd.Timestamp("2025-06-30T23:59:59Z"))
    "TIMESTAMPTZ '2025-06-30T23:59:59+00:00'"
    """
    return f"TIMESTAMPTZ {sql_quote(ts.isoformat())}"


def sql_seeded_order(id_col: str, random_state: int) -> str:
    """Return an ORDER BY list that shuffles rows by a seeded hash of *id_col*.

    The one implementation of journeylib's seeded samples: ``ORDER BY`` this,
    then ``LIMIT n``. It depends on the ids and the seed only, never on row
    order, so the same seed gives the same customers on every run.

    Parameters
    ----------
    id_col : str
        SQL expression of the id (e.g. ``customer_id``).
    random_state : int
        The seed.

    Returns
    -------
    str
        ``md5(<id> || ':' || '<seed>'), <id>`` (the id breaks hash ties).

    Examples
    --------
    >>> sql_seeded_order("customer_id", 3)
    "md5(customer_id || ':' || '3'), customer_id"
    """
    return f"md5({id_col} || ':' || {sql_quote(int(random_state))}), {id_col}"


# -- Spark SQL ----------------------------------------------------------------
#
# journeylib's queries are written in DuckDB SQL. On Spark (journeylib.store.spark)
# each statement is parsed by sqlglot as DuckDB and written back as Spark SQL; sqlglot
# translates the ANSI parts, the NULL ordering of ORDER BY and the JSON paths, and the
# rewrites below give the Spark spelling of the helpers of this module whose DuckDB
# spelling sqlglot does not translate with the same meaning. sqlglot is imported only
# here, and only when a Spark store runs a query (it comes with the ``spark`` extra).

#: Column type of each kind of the schema in Spark SQL (JSON is text on Spark).
SPARK_TYPES: dict[str, str] = {
    "id": "STRING",
    "text": "STRING",
    "enum": "STRING",
    "timestamp": "TIMESTAMP",
    "number": "DOUBLE",
    "integer": "BIGINT",
    "json": "STRING",
}

#: DuckDB constructs that have no Spark spelling (yet): the name sqlglot gives them → what they are.
#: A series is translated only as :func:`sql_date_range` writes it, ``unnest(generate_series(...))``
#: in a SELECT list (optionally cast); a series used as a table (``FROM generate_series(...)``) is not.
SPARK_UNSUPPORTED: dict[str, str] = {
    "GenerateSeries": "series outside unnest(generate_series(...)) in a SELECT list (sql_date_range)",
    "ExplodingGenerateSeries": "series outside unnest(generate_series(...)) in a SELECT list (sql_date_range)",
}

#: DuckDB's catalog views a statement may read (``information_schema.<key>``) → the temporary view a
#: Spark store registers in their place, from the session's temporary views (journeylib's tables):
#: ``columns`` (``table_name``, ``column_name``, ``ordinal_position``, ``data_type``) and ``tables``
#: (``table_name``, ``table_type``).
SPARK_CATALOG_VIEWS: dict[str, str] = {
    "columns": "_jl_information_schema_columns",
    "tables": "_jl_information_schema_tables",
}

#: strftime directives :func:`to_spark_sql` translates: directive → (Spark function, its field argument or
#: None, zero-padded width). ``%G`` / ``%V`` are the ISO 8601 week-numbering year and week (Spark's datetime
#: patterns have no week-based year, so the label is built from ``date_part`` and ``weekofyear``); ``%u``
#: is the ISO day of the week (Monday 1).
SPARK_STRFTIME: dict[str, tuple[str, str | None, int]] = {
    "Y": ("year", None, 0),
    "G": ("date_part", "YEAROFWEEK", 0),
    "m": ("month", None, 2),
    "d": ("day", None, 2),
    "V": ("weekofyear", None, 2),
    "u": ("date_part", "DAYOFWEEK_ISO", 0),
    "j": ("dayofyear", None, 3),
    "H": ("hour", None, 2),
    "M": ("minute", None, 2),
    "S": ("second", None, 2),
}


class SparkTranslationError(JourneyLibError, NotImplementedError):
    """A statement journeylib would run on DuckDB has a construct that has no Spark SQL spelling yet."""


def to_spark_sql(
    sql: str,
    *,
    columns_of: Callable[[str], list[str] | None],
    params: Sequence[Any] | Mapping[str, Any] | None = None,
) -> str:
    """Return the Spark SQL of a statement journeylib writes in DuckDB SQL.

    sqlglot (``read="duckdb"``, ``write="spark"``) translates the statement;
    before that, the spellings of this module's helpers whose DuckDB form
    sqlglot does not translate with the same meaning are rewritten:

    * :func:`sql_nth_smallest` (``min(x, n)[n]``) →
      ``try_element_at(sort_array(collect_list(x) FILTER (...)), n)``;
    * :func:`sql_interval_microseconds` (``to_microseconds(n)``) → an exact
      day-time interval, ``make_dt_interval(days, 0, 0, seconds)``;
    * :func:`sql_seconds_between` / :func:`sql_days_between` (``epoch``) and
      :func:`sql_epoch_microseconds` (``epoch_us``) → ``unix_micros`` (Spark's
      ``unix_timestamp`` drops the fraction of a second);
    * :func:`sql_quantiles` (``quantile_cont(x, [...])``) → ``percentile(x, array(...))``
      (the same linear interpolation);
    * :func:`sql_replace_columns` (``* REPLACE``) → the source table's columns
      listed, from *columns_of*;
    * :func:`sql_utc_clock` (``timezone('UTC', x)``) → ``CAST(x AS TIMESTAMP_NTZ)``
      (the session's time zone is UTC on a Spark store);
    * :func:`sql_week_start` (``date_trunc('week', <naive timestamp>)``) → Spark's
      ``date_trunc('WEEK', ...)`` (Monday, as DuckDB's) cast back to ``TIMESTAMP_NTZ``
      (Spark's returns a time-zone-aware ``TIMESTAMP``);
    * :func:`sql_date_range` (``unnest(generate_series(a, b, step))``, optionally
      cast) → ``explode(CASE WHEN a <= b THEN sequence(a, b, step) END)``, a series
      of days over ``TIMESTAMP_NTZ`` bounds and the cast applied inside
      ``transform(...)`` (Spark refuses a generator nested in a cast, and a
      sequence running away from its end, where DuckDB gives no rows);
    * :func:`sql_iso_week` (``strftime(x, '%G-W%V')``) and other ``strftime``
      formats made of the directives of :data:`SPARK_STRFTIME` → ``concat`` of
      ``date_part('YEAROFWEEK', x)``, ``weekofyear(x)``, ... (zero-padded as
      strftime pads; Spark's datetime patterns have no ISO week-based year);
    * ``information_schema.columns`` / ``.tables`` → the stand-in views of
      :data:`SPARK_CATALOG_VIEWS`, which a Spark store registers when a statement reads them;
    * ``hash(t)`` of a table alias (a hash of the whole row: the store's data
      fingerprints) → ``xxhash64(struct(t.*))``: a content hash too, with other
      values than DuckDB's (a fingerprint of a Spark store differs from the same
      data's on DuckDB);
    * casts to ``JSON`` → ``STRING``; literals with a fraction (``86400.0``) →
      ``DOUBLE``, as DuckDB computes them (Spark would keep a DECIMAL);
    * prepared-statement parameters (``?``, ``$1``, ``$name``) → the literals
      of *params* (text, numbers, booleans, NULL, time-zone-aware timestamps).

    Parameters
    ----------
    sql : str
        One statement, as journeylib writes it for DuckDB.
    columns_of : callable
        Table or view name → its column names (``None`` when unknown), for
        expanding ``* REPLACE``.
    params : sequence or mapping, optional
        The values of the statement's parameters, as :meth:`Store.query` takes them.

    Returns
    -------
    str
        The Spark SQL statement (identifiers quoted with backticks).

    Raises
    ------
    SparkTranslationError
        If sqlglot cannot parse the statement, or it uses a construct listed
        in :data:`SPARK_UNSUPPORTED`, a ``strftime`` directive not in
        :data:`SPARK_STRFTIME`, a ``* REPLACE`` over a source whose columns
        are unknown, or a parameter has no value in *params*.

    Examples
    --------
    >>> to_spark_sql("SELECT (min(t, 2) FILTER (WHERE e = 'x'))[2] AS t2 FROM ev", columns_of=lambda name: None)
    "SELECT TRY_ELEMENT_AT(SORT_ARRAY(COLLECT_LIST(`t`) FILTER(WHERE `e` = 'x')), 2) AS `t2` FROM `ev`"
    """
    import sqlglot
    from sqlglot import exp

    try:
        tree = sqlglot.parse_one(sql, read="duckdb")
    except sqlglot.errors.ParseError as exc:
        msg = f"to_spark_sql: sqlglot cannot parse this DuckDB statement ({exc}); statement starts {sql.strip()[:200]!r}"
        raise SparkTranslationError(msg) from exc
    def anonymous(name: str, *args: exp.Expression) -> exp.Expression:
        return exp.Anonymous(this=name, expressions=list(args))

    def micros_to_interval(arg: exp.Expression) -> exp.Expression:
        negated = isinstance(arg, exp.Neg) and isinstance(arg.this, exp.Literal) and not arg.this.is_string
        if negated or (isinstance(arg, exp.Literal) and not arg.is_string):
            value = -int(arg.this.this) if negated else int(arg.this)
            days, micros = divmod(value, 86_400_000_000)
            seconds = f"{micros // 1_000_000}.{micros % 1_000_000:06d}"
            secs = exp.cast(exp.Literal.number(seconds), exp.DataType.build("DECIMAL(18,6)"))
        else:
            days = 0
            secs = exp.cast(exp.Div(this=arg.copy(), expression=exp.Literal.number(1_000_000)), exp.DataType.build("DECIMAL(18,6)"))
        return anonymous("make_dt_interval", exp.Literal.number(days), exp.Literal.number(0), exp.Literal.number(0), secs)

    def unix_micros(arg: exp.Expression) -> exp.Expression:
        return anonymous("unix_micros", arg.copy())

    def top_n(node: exp.Bracket) -> exp.Expression | None:
        inner = node.this.unnest() if isinstance(node.this, exp.Paren) else node.this
        where = None
        if isinstance(inner, exp.Filter):
            where, inner = inner.expression, inner.this
        if not isinstance(inner, exp.Min):
            return None
        # ``min(x, n)``: sqlglot < 30.18 keeps n in ``expressions``, later versions in ``count``.
        n = inner.args.get("count") or (inner.expressions[0] if inner.expressions else None)
        if n is None:
            return None
        collected: exp.Expression = anonymous("collect_list", inner.this.copy().transform(rewrite))
        if where is not None:
            collected = exp.Filter(this=collected, expression=where.copy().transform(rewrite))
        return anonymous("try_element_at", anonymous("sort_array", collected), n.copy())

    def expand_replace(star: exp.Star) -> list[exp.Expression] | None:
        replace = star.args.get("replace")
        if not replace:
            return None
        select = star.parent
        source = (select.args.get("from_") or select.args.get("from")) if isinstance(select, exp.Select) else None
        table = source.this if source is not None else None
        if not isinstance(table, exp.Table) or select is None or select.args.get("joins"):
            msg = f"to_spark_sql: SELECT * REPLACE (...) is translated over one table only; statement starts {sql.strip()[:200]!r}"
            raise SparkTranslationError(msg)
        cols = columns_of(table.name)
        if cols is None:
            msg = (
                f"to_spark_sql: SELECT * REPLACE (...) FROM {table.name}: the columns of {table.name!r} are not known "
                "to the Spark store (register it as a table or view first)"
            )
            raise SparkTranslationError(msg)
        by_name = {str(r.alias_or_name).lower(): r for r in replace}
        out: list[exp.Expression] = []
        for col in cols:
            repl = by_name.get(col.lower())
            out.append(repl.copy() if repl is not None else exp.column(col))
        return out

    positional = iter(params) if isinstance(params, Sequence) and not isinstance(params, str) else iter(())

    def literal(value: Any) -> exp.Expression:
        if value is None:
            return exp.Null()
        if isinstance(value, bool):
            return exp.Boolean(this=value)
        if isinstance(value, int | float):
            return exp.Literal.number(value)
        if hasattr(value, "isoformat") and hasattr(value, "tzinfo"):
            return exp.cast(exp.Literal.string(value.isoformat()), exp.DataType.build("TIMESTAMP"))
        return exp.Literal.string(str(value))

    def parameter(node: exp.Placeholder) -> exp.Expression:
        key = node.this
        try:
            if key is None:
                return literal(next(positional))
            if isinstance(params, Mapping):
                return literal(params[str(key)])
            if isinstance(params, Sequence) and str(key).isdigit():
                return literal(params[int(str(key)) - 1])
        except (KeyError, IndexError, StopIteration):
            pass
        msg = f"to_spark_sql: parameter {node.sql(dialect='duckdb')} has no value in params={params!r}; statement starts {sql.strip()[:200]!r}"
        raise SparkTranslationError(msg)

    ntz = exp.DataType.build("TIMESTAMP_NTZ", dialect="spark")

    def is_naive(arg: exp.Expression) -> bool:
        """Whether *arg* is a timestamp without time zone: the UTC wall clock or a cast to DuckDB's TIMESTAMP."""
        if isinstance(arg, exp.Anonymous):
            return str(arg.this).lower() == "timezone" and len(arg.expressions) == 2 and arg.expressions[0].name.upper() == "UTC"
        return isinstance(arg, exp.Cast) and (arg.to.this == exp.DataType.Type.TIMESTAMP or arg.to.sql(dialect="spark") == "TIMESTAMP_NTZ")

    def negative(step: exp.Expression) -> bool:
        value = step.this if isinstance(step, exp.Interval) else step
        return isinstance(value, exp.Neg) or (isinstance(value, exp.Literal) and str(value.this).strip().startswith("-"))

    def series(node: exp.GenerateSeries, to: exp.DataType | None) -> exp.Expression:
        # unnest(generate_series(a, b, step)) → explode(sequence(...)); Spark refuses a sequence that runs
        # away from its end (DuckDB gives no rows), and a generator nested in a cast, so the guard is a CASE
        # and the cast moves into transform(...). A series of days gives DuckDB's naive timestamps.
        if node.args.get("is_end_exclusive"):
            msg = (
                "to_spark_sql: an end-exclusive series (range(...)) has no Spark SQL spelling in journeylib; "
                f"sql_date_range writes generate_series. Run this analysis with engine: duckdb. Statement starts {sql.strip()[:200]!r}"
            )
            raise SparkTranslationError(msg)
        start, end = node.args["start"].copy(), node.args["end"].copy()
        step = node.args.get("step")
        by_interval = isinstance(step, exp.Interval)
        if by_interval:
            start, end = exp.cast(start, ntz), exp.cast(end, ntz)
        args = [start, end] + ([step.copy()] if step is not None else [])
        backwards = step is not None and negative(step)
        runs = exp.GTE(this=start.copy(), expression=end.copy()) if backwards else exp.LTE(this=start.copy(), expression=end.copy())
        values: exp.Expression = exp.Case(ifs=[exp.If(this=runs, true=anonymous("sequence", *args))])
        if to is not None:
            var = exp.to_identifier("_jl_v")
            values = anonymous("transform", values, exp.Lambda(this=exp.cast(exp.column(var), to.copy()), expressions=[var.copy()]))
        return exp.Explode(this=values)

    def strftime(node: exp.TimeToStr) -> exp.Expression:
        fmt = node.args.get("format")
        if not (isinstance(fmt, exp.Literal) and fmt.is_string):
            msg = f"to_spark_sql: strftime with a format that is not a text literal has no Spark spelling; statement starts {sql.strip()[:200]!r}"
            raise SparkTranslationError(msg)
        text, i = str(fmt.this), 0
        parts: list[exp.Expression] = []
        plain = ""
        while i < len(text):
            if text[i] != "%" or i + 1 >= len(text):
                plain += text[i]
                i += 1
                continue
            directive = text[i + 1]
            i += 2
            if directive == "%":
                plain += "%"
                continue
            if directive not in SPARK_STRFTIME:
                msg = (
                    f"to_spark_sql: strftime directive %{directive} (format {text!r}) has no Spark spelling in journeylib; "
                    f"translated are %{', %'.join(SPARK_STRFTIME)} and %%; run this analysis with engine: duckdb. "
                    f"Statement starts {sql.strip()[:200]!r}"
                )
                raise SparkTranslationError(msg)
            if plain:
                parts.append(exp.Literal.string(plain))
                plain = ""
            func, field, width = SPARK_STRFTIME[directive]
            value = anonymous(func, *([exp.Literal.string(field)] if field else []), node.this.copy())
            piece: exp.Expression = exp.cast(value, exp.DataType.build("STRING"))
            if width:
                piece = anonymous("lpad", piece, exp.Literal.number(width), exp.Literal.string("0"))
            parts.append(piece)
        if plain:
            parts.append(exp.Literal.string(plain))
        if not parts:
            return exp.Literal.string("")
        return parts[0] if len(parts) == 1 else anonymous("concat", *parts)

    def row_hash(node: exp.Anonymous) -> exp.Expression | None:
        # DuckDB's hash(t) of a table alias hashes the whole row (the store's data fingerprints);
        # Spark's xxhash64 of the row as a struct is the same kind of order-free content hash, not the same value
        arg = node.expressions[0] if len(node.expressions) == 1 else None
        select = node.find_ancestor(exp.Select)
        if not isinstance(arg, exp.Column) or arg.table or select is None:
            return None
        for table in select.find_all(exp.Table):
            if table.alias_or_name == arg.name and arg.name.lower() not in [c.lower() for c in (columns_of(table.name) or [])]:
                row = exp.Column(this=exp.Star(), table=exp.to_identifier(arg.name))
                return anonymous("xxhash64", anonymous("struct", row))
        return None

    def rewrite(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Placeholder):
            return parameter(node)
        if isinstance(node, exp.Anonymous) and str(node.this).lower() == "hash":
            hashed = row_hash(node)
            if hashed is not None:
                return hashed
        if isinstance(node, exp.Cast) and isinstance(node.this, exp.Explode) and isinstance(node.this.this, exp.GenerateSeries):
            return series(node.this.this, node.to)
        if isinstance(node, exp.Explode) and isinstance(node.this, exp.GenerateSeries):
            return series(node.this, None)
        if isinstance(node, exp.TimeToStr):
            return strftime(node)
        if isinstance(node, exp.Table) and node.db.lower() == "information_schema" and node.name.lower() in SPARK_CATALOG_VIEWS:
            alias = node.args.get("alias")
            view = exp.Table(this=exp.to_identifier(SPARK_CATALOG_VIEWS[node.name.lower()]))
            if alias is not None:
                view.set("alias", alias.copy())
            return view
        if isinstance(node, exp.TimestampTrunc | exp.DateTrunc) and is_naive(node.this):
            # Spark's date_trunc gives a TIMESTAMP (with the session's zone); DuckDB's keeps a naive input naive
            wrapped = isinstance(node.parent, exp.Cast) and node.parent.to.sql(dialect="spark") == "TIMESTAMP_NTZ"
            if not wrapped:
                return exp.cast(node.copy(), ntz)
        if isinstance(node, exp.Bracket):
            replaced = top_n(node)
            if replaced is not None:
                return replaced
        if isinstance(node, exp.Anonymous):
            fname = str(node.this).lower()
            if fname == "to_microseconds" and len(node.expressions) == 1:
                return micros_to_interval(node.expressions[0])
            if fname == "epoch_us" and len(node.expressions) == 1:
                return unix_micros(node.expressions[0])
            if fname == "timezone" and len(node.expressions) == 2 and node.expressions[0].name.upper() == "UTC":
                return exp.cast(node.expressions[1].copy().transform(rewrite), exp.DataType.build("TIMESTAMP_NTZ", dialect="spark"))
        if isinstance(node, exp.TimeToUnix):
            return exp.Div(
                this=exp.cast(unix_micros(node.this), exp.DataType.build("DOUBLE")),
                expression=exp.Literal.number(1_000_000),
            )
        if isinstance(node, exp.PercentileCont) and isinstance(node.expression, exp.Array):
            return anonymous("percentile", node.this.copy(), node.expression.copy())
        if isinstance(node, exp.Cast) and node.to.is_type("json"):
            return exp.cast(node.this.copy(), exp.DataType.build("STRING"))
        fraction = isinstance(node, exp.Literal) and not node.is_string and any(ch in str(node.this) for ch in ".eE")
        if fraction and not isinstance(node.parent, exp.Cast | exp.DataTypeParam):
            return exp.cast(node.copy(), exp.DataType.build("DOUBLE"))
        return node

    for star in list(tree.find_all(exp.Star)):
        expanded = expand_replace(star)
        if expanded is not None and isinstance(star.parent, exp.Select):
            select = star.parent
            items: list[exp.Expression] = []
            for item in select.expressions:
                items.extend(expanded if item is star else [item])
            select.set("expressions", items)
    # a rewrite copies its arguments as they were: repeat until nothing changes, so rewrites
    # nested in rewritten nodes (an interval inside epoch_us(...)) are made too
    for _ in range(8):
        before = tree.sql(dialect="duckdb")
        tree = tree.transform(rewrite)
        if tree.sql(dialect="duckdb") == before:
            break
    for node in tree.walk():
        name = type(node).__name__
        if name in SPARK_UNSUPPORTED:
            msg = (
                f"to_spark_sql: {SPARK_UNSUPPORTED[name]} ({name}) has no Spark SQL spelling in journeylib; "
                f"run this analysis with engine: duckdb. Statement starts {sql.strip()[:200]!r}"
            )
            raise SparkTranslationError(msg)
    return tree.sql(dialect="spark", identify=True)
