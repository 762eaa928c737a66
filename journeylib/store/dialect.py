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

from typing import Any

__all__ = [
    "CAST_TYPES",
    "SQL_TYPES",
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
