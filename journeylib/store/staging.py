"""Vendor staging: how the rows of a vendor export reach the store, and the identity bookkeeping.

Vendor readers (``journeylib.io.<vendor>``) never import duckdb: the SQL they
need lives here. A vendor file is read inside one transaction; its rows,
identity observations and rejects are appended to temporary staging tables
(:func:`stage_vendor_rows`, :func:`stage_vendor_identities`,
:func:`stage_vendor_rejects`; JSON Lines are parsed in SQL by
:func:`stage_json_lines` and split by :func:`close_json_lines`), then merged
(:func:`merge_vendor_stage`, :func:`merge_vendor_identities`,
:func:`quarantine_vendor_rejects`).

Two bookkeeping tables sit next to the canonical ones:

``source_identities``
    every version of every record that identifies a person or an account in
    a source (a CRM contact, a Zendesk organization, a Mixpanel distinct_id
    with the e-mail and CRM id its events carried), keyed by
    (source, source_id, record_hash). Identity resolution reads it
    (:func:`identity_observations`).
``source_refs``
    for every vendor row loaded into events, tickets or messages, the source
    person and account it refers to. Resolution writes customer_id/user_id
    of those rows from identity_map through it (:func:`apply_identity_map`),
    so a row loaded before its CRM record arrives gets its customer later.

Staging tables held as Arrow tables are made readable by name from the
globals of this module (see :func:`close_json_lines`), so every statement
that reads them runs here.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import duckdb
import pandas as pd

from journeylib.store.database import Store, first_row
from journeylib.store.dialect import SQL_TYPES, sql_quote
from journeylib.store.errors import cleanup
from journeylib.store.merge import MergeCounts, ensure_snapshot_columns, stale_sql
from journeylib.store.schema import SNAPSHOT_TIME, Table, get_table

__all__ = [
    "DERIVED_COLUMNS",
    "IDENTITY_COLUMNS",
    "VENDOR_DDL",
    "VENDOR_STRING_COMPRESSION",
    "JsonLinesSpec",
    "apply_identity_map",
    "close_json_lines",
    "ensure_vendor_tables",
    "forget_vendor_keys",
    "identity_observations",
    "merge_vendor_identities",
    "merge_vendor_stage",
    "quarantine_vendor_rejects",
    "replace_identity_map",
    "reset_vendor_stage",
    "stage_json_lines",
    "stage_vendor_identities",
    "stage_vendor_rejects",
    "stage_vendor_rows",
    "staged_count",
    "unordered_inserts",
    "vendor_stage_table",
    "vendor_tables_exist",
]

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
    row = first_row(store.con.execute("SELECT current_setting('preserve_insertion_order')"))
    before = bool(row[0]) if row else True
    store.con.execute("SET preserve_insertion_order = false")
    with cleanup(store.con.execute, f"SET preserve_insertion_order = {'true' if before else 'false'}"):
        yield


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
    if store.engine != "duckdb":  # vendor bookkeeping lives in the DuckDB store an ingest writes
        return False
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
    """Drop every vendor staging table of the connection (start of a file, inside its transaction).

    It also starts the file's bookkeeping of merged keys (see
    :func:`_stored_hits`), valid in the connection's open transaction only;
    :func:`forget_vendor_keys` ends it.

    Parameters
    ----------
    store : Store
        The store, inside the file's transaction.
    """
    con = store.con
    for name in list(_ARROW_STAGES.get(id(con), {})):
        _drop(con, name)
    _PENDING_LINES.pop(id(con), None)
    for name in ("events", "tickets", "messages", "identities", "rejects", "jsonl"):
        con.execute(f"DROP TABLE IF EXISTS {_stage_name(name)}")
    _STAGES[id(con)] = set()
    _FILE_KEYS[id(con)] = (_transaction_id(con), {})  # no key merged yet for this file (see _stored_hits)


def forget_vendor_keys(store: Store) -> None:
    """Drop the file's bookkeeping of merged keys, which :func:`reset_vendor_stage` started.

    Called when the file ends, loaded or not: the hashes it holds (8 bytes a
    key) are freed, and no later transaction of the connection can use them.

    Parameters
    ----------
    store : Store
        The store the file was read into.
    """
    _FILE_KEYS.pop(id(store.con), None)


def _transaction_id(con: duckdb.DuckDBPyConnection) -> int:
    return _count(con, "SELECT txid_current()")


def _file_keys(con: duckdb.DuckDBPyConnection) -> dict[str, list[Any]] | None:
    """Return the file's merged-key hashes per table, or None outside the transaction :func:`reset_vendor_stage` ran in."""
    held = _FILE_KEYS.get(id(con))
    if held is None or held[0] != _transaction_id(con):
        return None
    return held[1]


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
        f'CAST("{c.name}" AS {SQL_TYPES[c.type]}) AS "{c.name}"' if c.name in frame.columns else f'NULL::{SQL_TYPES[c.type]} AS "{c.name}"'
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
    with cleanup(con.unregister, "_jl_chunk"):
        if _temp_exists(con, stage):
            con.execute(f"INSERT INTO {stage} {select}")
        else:
            con.execute(f"CREATE OR REPLACE TEMP TABLE {stage} AS {select}")
            _STAGES.setdefault(id(con), set()).add(stage)


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
    r"""How a vendor's JSON Lines events become event rows, decided in SQL.

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
    time_format : str, optional
        For ``time_kind="text"``: the vendor's documented ``strptime``
        format (no offset), tried first; a time it does not read whole goes
        through the general reading. Where the format reads a text, the
        general reading gives the same instant, so the result does not
        depend on it; it only spares that work on most lines.
    max_line_bytes : int, optional
        A longer line is quarantined (the reader's field cap: one line is
        one event).
    max_depth : int, optional
        A line with more opening brackets than this may be nested deeper:
        it is handed to *check_line*.
    check_line : callable, optional
        ``check_line(raw_bytes) -> reason or None``: the reader's exact
        check of a line the engine finds suspect (more opening brackets than
        *max_depth*, or the text ``NaN``, ``Infinity`` or ``\u0000``
        anywhere in it); a reason quarantines the line. Without it such
        lines are loaded.
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
    time_format: str | None = None
    max_line_bytes: int | None = None
    max_depth: int | None = None
    check_line: Callable[[bytes], str | None] | None = None


#: Rows per Arrow record batch handed to the engine (one batch would be scanned by one thread).
_SCAN_BATCH_ROWS = 32_768
#: The engine's mark of a line for :attr:`JsonLinesSpec.check_line` (never a stored reason).
SUSPECT_LINE = "(to be checked by the reader)"


#: Extras keys the text form of :func:`_merged_properties_sql` may append (written by the JSON writer as they are).
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_$]+")


def _merged_properties_sql(extras: tuple[tuple[str, str], ...], *, as_text: bool) -> tuple[str, str]:
    """Return the SQL of ``properties``: ``_p0`` (the properties object) merged with the extras ``_jv[2..]``.

    The result is ``json_merge_patch(coalesce(_p0, '{}'), json_object(key, value, ...))``
    (RFC 7396: an extra that is NULL removes its key, one that is an object is merged
    into the property of that name), as text. With *as_text*, on the lines where that
    merge only appends -- ``_p0`` missing or an object whose text ``_pt`` holds none of
    the keys as a quoted string anywhere (the writer writes a plain key as it is, so a
    key of the object always shows; a key nested deeper or inside a value only sends
    the line to the merge, which gives the same result), and no extra value holds a
    ``{`` -- the same text is built by string concatenation from the JSON texts the
    engine's writer produced (``_p0`` and the values are both its output, so the text
    is what the merge writes: the object's members in order, then the non-null extras
    in order); the other lines are merged. Without *as_text* every line is merged. The
    caller labels the text JSON without parsing it again (:func:`_json_properties`).

    Returns the helper columns (``_pt``, ``_body``: a select-list fragment computed
    where ``_p0`` and ``_jv`` are) and the expression that uses them.
    """
    obj = ", ".join(f"{sql_quote(k)}, _jv[{i}]" for i, (k, _) in enumerate(extras, start=2))
    merge = f"CAST(json_merge_patch(coalesce(_p0, '{{}}'::JSON), json_object({obj})) AS VARCHAR)"
    if not as_text:
        return "NULL AS _pt, NULL AS _body", f"CASE WHEN v IS NOT NULL THEN {merge} END"
    # ``_body``: the members to append, each with its leading comma. Where every extra has a value
    # (the usual line) one concat() writes them; otherwise a JSON null removes its key: no member
    # (',"key":' || NULL is NULL, which concat() leaves out)
    values = [f"CAST(_jv[{i}] AS VARCHAR)" for i in range(2, len(extras) + 2)]
    every = " AND ".join(f"{v} <> 'null'" for v in values)  # NULL (a missing extra) is not true either
    whole = ", ".join(f"{sql_quote(',' + chr(34) + k + chr(34) + ':')}, {v}" for (k, _), v in zip(extras, values, strict=True))
    some = ", ".join(f"{sql_quote(',' + chr(34) + k + chr(34) + ':')} || nullif({v}, 'null')" for (k, _), v in zip(extras, values, strict=True))
    cols = f"CAST(_jv[1] AS VARCHAR) AS _pt, CASE WHEN {every} THEN concat({whole}) ELSE concat({some}) END AS _body"
    absent = " OR ".join(f"contains(_pt, {sql_quote(chr(34) + k + chr(34))})" for k, _ in extras)
    appends = f"(_pt IS NULL OR (prefix(_pt, '{{') AND NOT ({absent}))) AND NOT contains(_body, '{{')"
    text = (
        "CASE WHEN _body = '' THEN coalesce(_pt, '{}') WHEN _pt IS NULL OR _pt = '{}' THEN concat('{', substr(_body, 2), '}') "
        "ELSE concat(substr(_pt, 1, strlen(_pt) - 1), _body, '}') END"
    )
    return cols, f"CASE WHEN v IS NULL THEN NULL WHEN {appends} THEN {text} ELSE {merge} END"


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
    # the fields read as text (a field named only by an extra is read as its typed JSON value alone)
    as_text = {spec.event_field, spec.time_field, *spec.required, *spec.id_fields, *(f for _, f in spec.person_refs), *spec.identity.values()}
    names = [name for name in spec.fields if name in as_text]
    paths: list[str] = []
    index: dict[str, list[int]] = {}
    for name in names:
        index[name] = []
        for p in spec.fields[name]:
            paths.append(p)
            index[name].append(len(paths))
    path_list = "[" + ", ".join(sql_quote(p) for p in paths) + "]"

    def val(name: str) -> str:
        parts = [f"v[{i}]" for i in index[name]]
        return parts[0] if len(parts) == 1 else f"coalesce({', '.join(parts)})"

    t = val(spec.time_field)
    if spec.time_kind == "epoch":
        num = f"TRY_CAST({t} AS DOUBLE)"
        secs = f"CASE WHEN abs({num}) > 1e11 THEN {num} / 1000.0 ELSE {num} END"
        ts = f"CASE WHEN abs({num}) < 1e13 THEN to_timestamp({secs}) END"
        if spec.timezone:
            ts = f"timezone({sql_quote(spec.timezone)}, CAST({ts} AT TIME ZONE 'UTC' AS TIMESTAMP))"
        expect = "epoch seconds"
    else:
        # the regular expression runs only when the last 6 characters could hold an offset or a Z
        # (a naive '2025-03-01 09:30:00.000000' never can): same result, a fraction of the work.
        # A date alone ('2024-03-01', 10 characters at most) ends in '-01' but has no offset: it is
        # midnight UTC like any zoneless time, not midnight in the session's (the machine's) zone.
        # The time is a TIMESTAMP holding the UTC wall-clock time, which is the instant's own value:
        # the caller labels the Arrow column UTC (_arrow_rows) instead of converting every line
        # with timezone('UTC', ...) (ICU: a few % of the Amplitude parse); only a text with an offset is converted
        tt = f"trim({t})"
        ts = (
            f"CASE WHEN (right({tt}, 1) IN ('z', 'Z') OR (length({tt}) > 10 AND (contains(right({tt}, 6), '+') OR contains(right({tt}, 6), '-')))) "
            f"AND regexp_matches({tt}, '([zZ]|[+-]\\d\\d(:?\\d\\d)?)$') THEN timezone('UTC', TRY_CAST({tt} AS TIMESTAMPTZ)) "
            f"ELSE TRY_CAST({tt} AS TIMESTAMP) END"
        )
        if spec.time_format:  # coalesce() evaluates the general reading only on the lines the format leaves NULL
            ts = f"coalesce(try_strptime({t}, {sql_quote(spec.time_format)}), {ts})"
        expect = "a timestamp such as 2025-03-01 09:30:00"
    person = " ".join(f"WHEN {val(f)} IS NOT NULL AND {val(f)} <> '' THEN {sql_quote(pref)} || {val(f)}" for pref, f in spec.person_refs)
    person_sql = f"CASE {person} END" if person else "NULL"
    # the properties object and the extras' typed JSON values (json_extract, not _string): one parse for all
    typed = [spec.properties_path or "$.__journeylib_none__", *(spec.fields[f][0] for _, f in spec.extras)]
    # the merge is built as text where it only appends (the keys are looked for in the object's text)
    text_merge = bool(spec.properties_path and spec.extras and all(_PLAIN_KEY.fullmatch(k) for k, _ in spec.extras))
    props = "_jv[1]" if spec.properties_path else "NULL::JSON"
    extras_sql = "json_extract(s, [" + ", ".join(sql_quote(x) for x in typed) + "])" if spec.extras or spec.properties_path else "NULL::JSON[]"
    merged, merge_cols = "_p0", ""
    if spec.extras:
        cols, merged = _merged_properties_sql(spec.extras, as_text=text_merge)
        merge_cols = f", {cols}"
    ids = [f"nullif({val(f)}, '')" for f in spec.id_fields]
    fallback = f"md5(concat_ws(chr(31), {val(spec.event_field)}, {t}, {person_sql}, CAST(_props AS VARCHAR)))"
    given = f"coalesce({', '.join(ids)})" if len(ids) > 1 else ids[0]
    # coalesce(): the vendor's key is evaluated once, the md5 only on the lines without one
    event_id = f"{sql_quote(spec.id_prefix)} || coalesce({given}, {fallback})"
    missing = " ".join(
        f"WHEN {val(f)} IS NULL OR trim({val(f)}) = '' THEN {sql_quote('missing required field ' + spec.fields[f][0].removeprefix('$.') + ' (expected by the reader)')}"
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
    # a line longer than the cap is refused; one that may hold what no column can store (a NUL, NaN or
    # Infinity, nesting deeper than the cap) is marked for the reader's exact check (check_line)
    too_long = f"octet_length(raw) > {int(spec.max_line_bytes)}" if spec.max_line_bytes else "false"
    suspect = []
    if spec.check_line is not None:
        suspect = ["contains(s, 'NaN')", "contains(s, 'Infinity')", "contains(s, '\\u0000')"]
        if spec.max_depth:
            suspect.append(f"strlen(s) - strlen(replace(replace(s, '{{', ''), '[', '')) > {int(spec.max_depth)}")
    suspect_sql = " OR ".join(suspect) or "false"
    if lean:  # the same rows; a line is bad exactly when the full form gives it a reason
        jt = "'OBJECT'"
        head = "SELECT line,"
        reason = f"CASE WHEN v IS NULL OR {not_object} OR _ts IS NULL OR {too_long} OR {suspect_sql} THEN 'bad' END AS _reason"
    else:
        jt = f"CASE WHEN v IS NOT NULL AND ({not_object}) THEN try(json_type(s)) ELSE 'OBJECT' END"
        head = "SELECT line, coalesce(s, CAST(raw AS VARCHAR)) AS s,"
        cap = f"{int(spec.max_line_bytes):,}" if spec.max_line_bytes else ""
        reason = f"""CASE WHEN {too_long} THEN {sql_quote(f"a line longer than the cap of {cap} bytes (options.max_field_bytes); not read")}
                WHEN s IS NULL THEN 'bytes that are not valid UTF-8'
                WHEN v IS NULL THEN 'not valid JSON'
                WHEN jt <> 'OBJECT' THEN 'expected a JSON object per line, found ' || lower(jt)
                {missing}
                WHEN _ts IS NULL THEN {sql_quote(spec.fields[spec.time_field][0].removeprefix('$.') + ': expected ' + expect + ', found ')} || coalesce({t}, 'nothing')
                WHEN {suspect_sql} THEN {sql_quote(SUSPECT_LINE)}
           END AS _reason"""
    return f"""
    WITH d AS (SELECT line, try(decode(raw)) AS s, raw FROM _jl_lines
               WHERE octet_length(raw) > 8 OR coalesce(trim(try(decode(raw)), ' ' || chr(9) || chr(10) || chr(13)) <> '', true)),
    p AS (SELECT line, s, raw, {extract} AS v FROM d),
    q0 AS (SELECT *, CASE WHEN v IS NOT NULL THEN {extras_sql} END AS _jv FROM p),
    q AS (SELECT *, {props} AS _p0{merge_cols} FROM q0),
    r AS (SELECT *, {ts} AS _ts, {merged} AS _props, {jt} AS jt FROM q)
    {head}
           {reason},
           CASE WHEN v IS NOT NULL THEN {event_id} END AS event_id,
           NULL::VARCHAR AS customer_id, NULL::VARCHAR AS user_id, _ts AS "timestamp",
           {val(spec.event_field)} AS event, {sql_quote(source)} AS source, _props AS properties,
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
    fl = sql_quote(file)

    def select(*, lean: bool, guarded: bool) -> str:
        raw_sql = "NULL::VARCHAR" if lean else "CASE WHEN _reason IS NOT NULL THEN left(rtrim(s, chr(10) || chr(13)), 4000) END"
        return f"""SELECT {ev_cols}, _person_ref, _account_ref, line AS _line, {raw_sql} AS _raw, {fl} AS _file,
                 _reason, _id_email, _id_link_id, _id_name
                 FROM ({_json_lines_sql(spec, source, lean=lean, guarded=guarded)})"""

    # The parse reads nothing of the store: it runs on its own connection to the database, outside
    # the file's transaction, so a statement that fails leaves that transaction intact.
    cur = con.cursor()
    # on exit, in this order (also after an error): reset the setting, close the cursor, release the lines
    with cleanup(_release, "_jl_lines"), cleanup(cur.close), cleanup(cur.execute, "RESET arrow_lossless_conversion"):
        # lossless: ``properties`` stays JSON through Arrow (as text it would be re-validated on insert)
        cur.execute("SET arrow_lossless_conversion = true")
        parsed = _parse_lines(cur, lines, select, spec)
    _PENDING_LINES.setdefault(id(con), []).append(parsed)
    return int(parsed.num_rows)


def _parse_lines(cur: duckdb.DuckDBPyConnection, lines: Any, select: Callable[..., str], spec: JsonLinesSpec) -> Any:
    """Parse *lines* (``line``, ``raw``) into staged rows, one line never failing the others.

    Good lines need none of the work that explains a bad one: the block is
    parsed in the lean form first (unguarded: a line that is not JSON fails
    the statement, which is then run guarded), then the full form runs on
    just the lines it marked bad, and the reader's exact check on the lines
    the engine found suspect. Should a guarded statement still fail, the
    block is halved until the line that fails it is alone; that line is
    refused with the engine's message.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        _hold("_jl_lines", lines)
        try:
            parsed = _arrow_rows(cur, select(lean=True, guarded=False))
        except (duckdb.InvalidInputException, duckdb.ConversionException):
            parsed = _arrow_rows(cur, select(lean=True, guarded=True))
        if parsed.column("_reason").null_count == parsed.num_rows:
            return parsed
        bad = pc.is_valid(parsed.column("_reason"))
        _hold("_jl_lines", lines.filter(pc.is_in(lines.column("line"), value_set=parsed.column("_line").filter(bad))))
        explained = _arrow_rows(cur, select(lean=False, guarded=True)).cast(parsed.schema)
    except duckdb.Error as exc:
        if lines.num_rows <= 1:
            return _refused_lines(cur, lines, select, parsed_error=exc)
        half = lines.num_rows // 2
        head, tail = _parse_lines(cur, lines.slice(0, half), select, spec), _parse_lines(cur, lines.slice(half), select, spec)
        return pa.concat_tables([head, tail.cast(head.schema)])
    explained = _checked_lines(explained, lines, spec)
    return pa.concat_tables([parsed.filter(pc.invert(bad)), explained.cast(parsed.schema)])


def _arrow_rows(cur: duckdb.DuckDBPyConnection, sql: str) -> Any:
    """Run the parse statement *sql* on *cur* and return its rows as Arrow, labelled (:func:`_json_properties`, :func:`_utc_times`)."""
    return _utc_times(cur, _json_properties(cur.sql(sql).to_arrow_table()))


def _utc_times(cur: duckdb.DuckDBPyConnection, parsed: Any) -> Any:
    """Label the ``timestamp`` column of *parsed* UTC when the parse wrote it as a TIMESTAMP (the UTC wall-clock time).

    A TIMESTAMP's value in UTC wall-clock time is the value of the instant
    (microseconds since 1970 UTC), so the label alone makes it the
    TIMESTAMPTZ the engine's ``timezone('UTC', ...)`` would have computed line
    by line; the zone written is the connection's, as for a TIMESTAMPTZ.
    """
    import pyarrow as pa

    i = parsed.schema.get_field_index("timestamp")
    if i < 0 or parsed.schema.field(i).type.tz is not None:
        return parsed
    rows = cur.execute("SELECT current_setting('TimeZone')").fetchall()
    kind = pa.timestamp(parsed.schema.field(i).type.unit, tz=str(rows[0][0]) if rows and rows[0][0] else "UTC")
    return parsed.set_column(i, pa.field("timestamp", kind), parsed.column(i).cast(kind))


def _json_properties(parsed: Any) -> Any:
    """Label the ``properties`` column of *parsed* JSON when the parse wrote it as text.

    The text is JSON by construction (:func:`_merged_properties_sql`); the label
    spares parsing it again when the stage is read.
    """
    import pyarrow as pa

    i = parsed.schema.get_field_index("properties")
    col = parsed.column(i)
    if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
        return parsed
    kind = pa.json_(col.type)
    labelled = pa.chunked_array([pa.ExtensionArray.from_storage(kind, chunk) for chunk in col.chunks], type=kind)
    return parsed.set_column(i, pa.field("properties", kind), labelled)


def _checked_lines(explained: Any, lines: Any, spec: JsonLinesSpec) -> Any:
    """Settle the lines the engine marked suspect with the reader's exact check: refused with its reason, or good."""
    import pyarrow as pa
    import pyarrow.compute as pc

    marked = pc.equal(explained.column("_reason"), SUSPECT_LINE)
    if not pc.any(marked).as_py() or spec.check_line is None:
        return explained
    which = explained.column("_line").filter(marked)
    texts = dict(zip(*(lines.filter(pc.is_in(lines.column("line"), value_set=which)).column(c).to_pylist() for c in ("line", "raw")), strict=True))
    reasons = explained.column("_reason").to_pylist()
    raws = explained.column("_raw").to_pylist()
    for i, (line, is_marked) in enumerate(zip(explained.column("_line").to_pylist(), marked.to_pylist(), strict=True)):
        if is_marked:
            reasons[i] = spec.check_line(texts[line])
            raws[i] = raws[i] if reasons[i] else None
    schema = explained.schema
    explained = explained.set_column(schema.get_field_index("_reason"), "_reason", pa.array(reasons, schema.field("_reason").type))
    return explained.set_column(schema.get_field_index("_raw"), "_raw", pa.array(raws, schema.field("_raw").type))


def _refused_lines(cur: duckdb.DuckDBPyConnection, lines: Any, select: Callable[..., str], *, parsed_error: Exception) -> Any:
    """Return the staged row refusing the one line whose parse fails the engine, with the engine's message."""
    import pyarrow as pa

    text = bytes(lines.column("raw")[0].as_py() or b"").decode("utf-8", "replace").rstrip("\r\n")
    _hold("_jl_lines", pa.table({"line": lines.column("line"), "raw": pa.array([b"0"], lines.schema.field("raw").type)}))
    row = _arrow_rows(cur, select(lean=False, guarded=True))  # a placeholder line: "expected a JSON object"
    first = str(parsed_error).strip().splitlines()[0] if str(parsed_error).strip() else type(parsed_error).__name__
    reason = f"the engine could not read the line ({first[:300]}); nothing of it was loaded"
    schema = row.schema
    row = row.set_column(schema.get_field_index("_reason"), "_reason", pa.array([reason], schema.field("_reason").type))
    return row.set_column(schema.get_field_index("_raw"), "_raw", pa.array([text[:4000]], schema.field("_raw").type))


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
    with cleanup(_drop, con, stage):
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
    other content is replaced in a mutable table, unless the stored row is
    later by ``updated_at`` (the staged rows are then stale duplicates), and
    quarantined otherwise), with two differences: the content compared is the row without the columns
    resolution derives (``customer_id``, ``user_id``) but with the source ids
    it refers to, and every loaded row's references are written to
    ``source_refs``.

    The work is set-based and proportional to what needs it: the sorted
    hashes of the staged keys find the repeated ones, the keys stored before
    the file and those its earlier flushes wrote are found apart
    (:func:`_stored_hits`: a flush does not read the keys the file wrote
    unless its hashes say it repeats one), and row contents are hashed only
    for those keys. When no key repeats and none is stored (the usual case)
    the stage is inserted as it is.

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
        ``loaded``, ``updated``, ``duplicate``, ``quarantined``, ``stale``
        (a part of ``duplicate``).
    """
    stage = _stage_name(table.name)
    total = staged_count(store, table.name)
    if not total:
        _drop(store.con, stage)
        return MergeCounts(loaded=0, updated=0, duplicate=0, quarantined=0, stale=0)
    (key,) = table.key
    con = store.con
    if table.mutable:
        ensure_snapshot_columns(store)
    timed = SNAPSHOT_TIME in table.fields
    stale = stale_sql(table, "u", "su")
    raw = "coalesce(s._raw, left(CAST(to_json(struct_pack(" + ", ".join(f'"{c}" := s."{c}"' for c in table.names) + ")) AS VARCHAR), 4000))"
    h_stage = _row_hash_sql(table, "s")
    h_stored = _row_hash_sql(table, "t").replace("t._person_ref", "r.person_ref").replace("t._account_ref", "r.account_ref")
    # the staged keys' hashes, sorted: repeated keys and keys merged by earlier flushes of the file are
    # looked for among them first (a hash shared by two keys only costs the exact check of those keys)
    hashes = _key_hashes(con, stage, key)
    # keys staged more than once, with how many different contents they carry
    repeated = _repeated(hashes)
    if repeated.size:
        _hold("_jlv_hk", _hash_table(repeated))
        with cleanup(_release, "_jlv_hk"):
            con.execute(
                f"""CREATE OR REPLACE TEMP TABLE _jlv_rep AS
                SELECT s."{key}" AS k, count(*) AS n, count(DISTINCT {h_stage}) AS nh
                FROM {stage} s SEMI JOIN (SELECT "{key}" AS k FROM {stage} SEMI JOIN _jlv_hk c ON {_key_hash_sql(key)} = c.h
                                          GROUP BY ALL HAVING count(*) > 1) d ON s."{key}" = d.k
                GROUP BY ALL"""
            )
    else:
        con.execute(f"CREATE OR REPLACE TEMP TABLE _jlv_rep (k {_key_type(table)}, n BIGINT, nh BIGINT)")
    # staged keys already stored (whole rows are read and hashed only for the keys found: none when
    # a file brings only new events)
    _stored_hits(con, table, stage, hashes)
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _jlv_old AS
        WITH o AS (SELECT t.*, {h_stored} AS sh FROM "{table.name}" t
                   SEMI JOIN _jlv_hit x ON x.k = t."{key}"
                   LEFT JOIN source_refs r ON r.table_name = '{table.name}' AND r.row_id = t."{key}")
        SELECT o."{key}" AS k, any_value(o.sh) AS sh, min({h_stage}) AS h, count(*) AS n,
               {f'any_value(o."{SNAPSHOT_TIME}")' if timed else "NULL::TIMESTAMPTZ"} AS su,
               {f'max(s."{SNAPSHOT_TIME}")' if timed else "NULL::TIMESTAMPTZ"} AS u
        FROM o JOIN {stage} s ON s."{key}" = o."{key}"
        WHERE o."{key}" NOT IN (SELECT k FROM _jlv_rep WHERE nh > 1 AND k IS NOT NULL)
        GROUP BY ALL"""
        if _count(con, "SELECT count(*) FROM _jlv_hit")
        else "CREATE OR REPLACE TEMP TABLE _jlv_old (k VARCHAR, sh UBIGINT, h UBIGINT, n BIGINT, su TIMESTAMPTZ, u TIMESTAMPTZ)"
    )
    n_conflict = _count(con, "SELECT coalesce(sum(n), 0) FROM _jlv_rep WHERE nh > 1")
    n_old = _count(con, "SELECT count(*) FROM _jlv_old")
    # a staged row older than the stored one by updated_at is stale: a duplicate, the stored row kept
    n_stale_keys = _count(con, f"SELECT count(*) FROM _jlv_old WHERE sh <> h AND {stale}")
    n_stale = _count(con, f"SELECT coalesce(sum(n), 0) FROM _jlv_old WHERE sh <> h AND {stale}") if n_stale_keys else 0
    n_changed = _count(con, f"SELECT count(*) FROM _jlv_old WHERE sh <> h AND NOT {stale}")
    n_keys = total if not _count(con, "SELECT count(*) FROM _jlv_rep") else _count(con, f'SELECT count(*) FROM (SELECT DISTINCT "{key}" FROM {stage})')
    n_conflict_keys = _count(con, "SELECT count(*) FROM _jlv_rep WHERE nh > 1")
    n_new = n_keys - n_conflict_keys - n_old
    if n_conflict:
        con.execute(
            _quarantine_new(f"""SELECT ?, ?, ?, s._file, s._line, {raw},
                   'rows with {key}=' || s."{key}" || ' disagree (lines ' ||
                   (SELECT string_agg(CAST(x._line AS VARCHAR), ', ' ORDER BY x._line) FROM {stage} x WHERE x."{key}" = s."{key}")
                   || '); none was loaded', now()
            FROM {stage} s SEMI JOIN (SELECT k FROM _jlv_rep WHERE nh > 1) c ON s."{key}" = c.k"""),
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
        changed = f"SELECT k FROM _jlv_old WHERE sh <> h AND NOT {stale}"
        if table.mutable:
            con.execute(f'DELETE FROM "{table.name}" WHERE "{key}" IN ({changed})')
            con.execute(f"DELETE FROM source_refs WHERE table_name = '{table.name}' AND row_id IN ({changed})")
            write(changed)
            updated = n_changed
        else:
            con.execute(
                _quarantine_new(f"""SELECT ?, ?, ?, s._file, s._line, {raw},
                       '{key}=' || s."{key}" || ' is already stored with different content; {table.name} rows are never overwritten', now()
                FROM {stage} s SEMI JOIN ({changed}) c ON s."{key}" = c.k"""),
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
    file_keys = _file_keys(con)
    if file_keys is not None:  # later flushes of the file find these keys without reading the store
        _remember(file_keys.setdefault(table.name, []), hashes)
    return MergeCounts(loaded=loaded, updated=updated, duplicate=duplicate, quarantined=quarantined, stale=n_stale)


def _key_type(table: Table) -> str:
    (key,) = table.key
    return SQL_TYPES[next(c.type for c in table.columns if c.name == key)]


def _key_hash_sql(key: str) -> str:
    """Return the SQL hash of the key column *key* (``UBIGINT``): the one value both the NumPy and the SQL side compare."""
    return f'hash("{key}")'


def _key_hashes(con: duckdb.DuckDBPyConnection, stage: str, key: str) -> Any:
    """Return the engine's ``hash()`` of every staged key, sorted (a NumPy ``uint64`` array)."""
    import numpy as np

    hashes = np.asarray(con.execute(f"SELECT {_key_hash_sql(key)} AS h FROM {stage}").fetchnumpy()["h"], dtype=np.uint64)
    hashes.sort()
    return hashes


def _repeated(hashes: Any) -> Any:
    """Return the distinct values found more than once in the sorted array *hashes*."""
    import numpy as np

    return np.unique(hashes[1:][hashes[1:] == hashes[:-1]])


def _hash_table(hashes: Any) -> Any:
    """Return *hashes* as an Arrow table with one ``UBIGINT`` column ``h``."""
    import pyarrow as pa

    return pa.table({"h": pa.array(hashes, type=pa.uint64())})


def _remember(runs: list[Any], hashes: Any) -> None:
    """Add the sorted *hashes* to *runs*, sorted arrays kept in sizes that at least double from last to first.

    Two neighbours are merged while the later is at least half the size of the
    earlier one, so a file of *n* keys is held in at most log2(n) arrays and
    every key is copied at most log2(n) times: the look-ups of
    :func:`_seen` stay cheap however many flushes the file has.
    """
    import numpy as np

    if not hashes.size:
        return
    runs.append(hashes)
    while len(runs) > 1 and 2 * runs[-1].size >= runs[-2].size:
        last, before = runs.pop(), runs.pop()
        both = np.concatenate([before, last])
        both.sort(kind="stable")  # two sorted runs: merged in one pass
        runs.append(both)


def _seen(runs: list[Any], hashes: Any) -> Any:
    """Return the distinct values of the sorted array *hashes* that are in one of the sorted arrays *runs*."""
    import numpy as np

    found = np.zeros(hashes.size, dtype=bool)
    for run in runs:
        at = np.minimum(np.searchsorted(run, hashes), run.size - 1)
        found |= run[at] == hashes
    return np.unique(hashes[found])


def _stored_hits(con: duckdb.DuckDBPyConnection, table: Table, stage: str, hashes: Any) -> None:
    """Create ``_jlv_hit`` (``k``): the staged keys of *stage* that may be stored in *table*.

    It holds every staged key that is stored, and may hold a few that are
    not: the merge reads it only to pick the stored rows (a semi join with
    *table*, which is the exact check) and for whether it is empty.

    Without the file's bookkeeping (:func:`reset_vendor_stage` not called in
    the connection's open transaction) it is the staged keys found among
    every stored key. With it, the stored keys are those committed before the
    file's transaction and those the file's earlier merges wrote (the only
    writes of that transaction to the table):

    * the committed ones are read on a connection of their own (outside the
      transaction, so it sees only them): the keys the file wrote are never
      read;
    * the file's own ones are the staged keys whose hash is among the hashes
      of the keys its earlier merges staged (:func:`_remember`); a hash
      shared by two keys only adds a key the semi join does not find.

    Reading the whole table each flush instead made a file's cost grow with
    the square of its length (flush *k* of 1M lines read the *k* - 1 million
    keys the file had written).
    """
    (key,) = table.key
    file_keys = _file_keys(con)
    if file_keys is None:
        con.execute(f"""CREATE OR REPLACE TEMP TABLE _jlv_hit AS SELECT t."{key}" AS k FROM "{table.name}" t SEMI JOIN {stage} s ON s."{key}" = t."{key}" """)
        return
    with cleanup(_release, "_jlv_hc"), cleanup(_release, "_jlv_hk"):
        parts = []
        committed = _committed_hits(con, table, stage)
        if committed is not None:
            _hold("_jlv_hc", committed)
            parts.append("SELECT k FROM _jlv_hc")
        again = _seen(file_keys.get(table.name, []), hashes)
        if again.size:
            _hold("_jlv_hk", _hash_table(again))
            parts.append(f'SELECT "{key}" AS k FROM {stage} SEMI JOIN _jlv_hk c ON {_key_hash_sql(key)} = c.h')
        if parts:
            con.execute(f"CREATE OR REPLACE TEMP TABLE _jlv_hit AS {' UNION '.join(parts)}")
        else:
            con.execute(f"CREATE OR REPLACE TEMP TABLE _jlv_hit (k {_key_type(table)})")


def _committed_hits(con: duckdb.DuckDBPyConnection, table: Table, stage: str) -> Any:
    """Return the staged keys of *stage* that *table* held when the file's transaction began (Arrow), or None if none.

    Read on a cursor: a connection of its own, which sees the committed
    store, not the rows the open transaction added.
    """
    (key,) = table.key
    cur = con.cursor()
    with cleanup(cur.close), cleanup(_release, "_jlv_keys"):
        try:
            if not _count(cur, f'SELECT count(*) FROM (SELECT 1 FROM "{table.name}" LIMIT 1)'):
                return None
        except duckdb.CatalogException:  # the table was created by the open transaction: nothing committed
            return None
        if stage in _ARROW_STAGES.get(id(con), {}):
            keys = stage  # held by name: readable from the cursor too
        else:  # an engine table of this connection: its keys handed over
            _hold("_jlv_keys", con.sql(f'SELECT DISTINCT "{key}" AS k FROM {stage}').to_arrow_table())
            keys = f'(SELECT k AS "{key}" FROM _jlv_keys)'
        hits = cur.sql(f"""SELECT DISTINCT t."{key}" AS k FROM "{table.name}" t SEMI JOIN {keys} s ON s."{key}" = t."{key}" """).to_arrow_table()
    return hits if hits.num_rows else None


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
    row = first_row(con.execute("SELECT current_setting('force_compression')"))
    before = str(row[0]) if row and row[0] else "auto"
    con.execute(f"SET force_compression = {sql_quote(VENDOR_STRING_COMPRESSION)}")
    with cleanup(con.execute, f"SET force_compression = {sql_quote(before)}"):
        con.execute(f'INSERT INTO "{table.name}" ({cols}) SELECT {cols} FROM ({select})')
        con.execute(f"""INSERT INTO source_refs SELECT '{table.name}', "{key}", ?, _person_ref, _account_ref FROM ({select})""", [source])


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


def _quarantine_new(select: str) -> str:
    """Return the INSERT into ``quarantine`` of the rows *select* gives that are not stored yet.

    *select* yields run, source, table_name, file, line, raw, reason and
    ingested_at, in that order. A refusal is already stored when a row has
    the same table, file, line, raw content and reason: a file read again
    (``force=True``) adds no quarantine row twice.
    """
    cols = "run, source, table_name, file, line, raw, reason, ingested_at"
    return f"""INSERT INTO quarantine ({cols})
        SELECT DISTINCT * FROM ({select}) s ({cols})
        WHERE NOT EXISTS (SELECT 1 FROM quarantine q WHERE q.table_name = s.table_name AND q.file = s.file
            AND q.line IS NOT DISTINCT FROM s.line AND q.raw IS NOT DISTINCT FROM s.raw AND q.reason = s.reason)"""


def quarantine_vendor_rejects(store: Store, *, run: str, source: str, table_name: str) -> dict[str, int]:
    """Move the staged rejects into ``quarantine`` (those not stored yet); return their count per file."""
    stage = _stage_name("rejects")
    if not staged_count(store, "rejects"):
        return {}
    store.con.execute(_quarantine_new(f"SELECT ?, ?, ?, file, line, raw, reason, now() FROM {stage}"), [run, source, table_name])
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


def _count(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> int:
    """Run a one-value query to completion and return the value as int (0 for NULL)."""
    rows = con.execute(sql, params).fetchall() if params is not None else con.execute(sql).fetchall()
    return int(rows[0][0]) if rows and rows[0][0] is not None else 0


#: Vendor staging tables created on each connection (avoids a catalog query per check).
_STAGES: dict[int, set[str]] = {}
#: Staging tables held as Arrow tables readable by name (see :func:`close_json_lines`).
_ARROW_STAGES: dict[int, dict[str, Any]] = {}
#: Per connection (from :func:`reset_vendor_stage`) and table: sorted hashes of the keys merged for the file (see :func:`_stored_hits`).
_FILE_KEYS: dict[int, tuple[int, dict[str, list[Any]]]] = {}
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
