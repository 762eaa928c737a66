"""SQL dialect: the DuckDB-specific fragments journeylib's queries are built from.

Analysis modules (``journeylib.journey``, ``journeylib.customers``,
``journeylib.scope``, ...) and the store's own modules take every piece of SQL
whose spelling depends on the database from here: date arithmetic, the
n-th smallest value of a group, JSON property access, literals, seeded
ordering and the column types of the canonical tables. A port of journeylib
to another backend rewrites this module; the statements of the store's
modules (``database``, ``merge``, ``staging``) go with it.

Every function returns SQL text and runs nothing, so this module does not
import ``duckdb``.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "SQL_TYPES",
    "sql_add_days",
    "sql_days_between",
    "sql_json_text",
    "sql_nth_smallest",
    "sql_quote",
    "sql_seeded_order",
    "sql_timestamp",
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
    micros = round(days * 86_400_000_000)
    return f"({expr} + to_microseconds({micros}))"


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
    return f"(epoch({end}) - epoch({start})) / 86400.0"


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
    """
    return f"md5({id_col} || ':' || {sql_quote(int(random_state))}), {id_col}"
