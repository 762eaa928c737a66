"""Bulk canonical ingest in the engine: validation as SQL over the file.

The exact reader (:mod:`journeylib.io.generic`) reads a canonical file record
by record in Python and validates it with pandas, which costs about 50–80k
rows a second. This module reads CSV and Parquet files with DuckDB instead
and validates them in SQL, so memory is bounded by the store's
``memory_limit`` (DuckDB spills to disk) whatever the file size.

It never decides differently from the exact reader. SQL computes, per row, a
conservative *clean* test: every value has a plain shape whose reading both
paths agree on (ids of printable ASCII, timestamps in a strict ISO-8601 form
between the years 1679 and 2260, integers of at most 15 digits, ``properties``
a JSON object without escapes, exponents, non-finite words, trailing commas or
control characters, no extra column holding a value). Clean rows are typed in
SQL and staged directly. Every other row (*flagged*) is handed, in chunks, to
the exact reader's validation (:func:`journeylib.io.generic.validated_chunk`),
which quarantines it, notes its unreadable optional values or accepts it with
exactly the reasons and values the exact reader gives. A test ingests the same
files through both paths and compares every table.

A file goes to the exact reader as a whole when the engine cannot parse it
as the exact reader would (see :func:`bulk_refusal`): JSON Lines; a CSV file
with NUL bytes, bare carriage returns, blank lines, a multi-line header, bytes
that are not UTF-8, a line longer than DuckDB's line limit or a record of the
wrong width (structural damage, where the exact reader's line-by-line recovery
is needed); a Parquet file whose columns have types the two paths could read
differently (binary, 32-bit floats, decimals, non-text ids). The reason is
recorded in the file's notes (``read by the exact reader: ...``).
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from journeylib.io.generic import (
    MAX_FIELD_CHARS,
    MAX_JSON_DEPTH,
    MAX_RAW_CHARS,
    Chunk,
    FileReader,
    csv_field_problem,
    csv_raw_text,
    validated_chunk,
)
from journeylib.store.database import Store, first_row
from journeylib.store.dialect import SQL_TYPES, sql_quote
from journeylib.store.merge import staged_select

__all__ = ["BULK_FORMATS", "BulkFile", "bulk_refusal", "drop_bulk", "open_bulk"]

log = logging.getLogger(__name__)

#: Formats the engine reads; JSON Lines always goes to the exact reader.
BULK_FORMATS = ("csv", "parquet")
#: Longest CSV line DuckDB reads (bytes); a longer one sends the file to the exact reader.
MAX_LINE_BYTES = 4 * MAX_FIELD_CHARS + 1024
#: The raw file as DuckDB read it, with ``_line`` and ``_ok``.
RAW = "_jl_bulk_raw"
#: The file as DuckDB parsed it, before the clean test.
READ = "_jl_bulk_read"
#: The flagged rows of a CSV file, in line order.
FLAGGED = "_jl_bulk_flagged"
#: The staging table :func:`journeylib.store.merge.merge_stage` reads.
STAGE = "_jl_stage"

_PRINTABLE = r"^[\x20-\x7e]*$"
_TS = r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])([T ]([01]\d|2[0-3]):[0-5]\d(:[0-5]\d(\.\d{1,6})?)?(Z|[+-](0\d|1[0-4])(:?[0-5]\d)?)?)?$"
_OFFSET = r"\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d(:?\d\d)?)$"
_INTEGER = r"^(0|-?[1-9]\d{0,14})$"
_JSON_SUSPECT = r"\\u|[\x00-\x1f]|NaN|Infinity|[0-9.][eE]|,[ \t]*[}\]]"
_TIMESTAMP_TYPES = ("TIMESTAMP", "TIMESTAMP WITH TIME ZONE", "TIMESTAMP_NS", "TIMESTAMP_MS", "TIMESTAMP_S")
_NUMBER_TYPES = ("DOUBLE", "BIGINT", "INTEGER", "SMALLINT", "TINYINT", "UBIGINT", "UINTEGER", "USMALLINT", "UTINYINT")
_SCAN_BLOCK = 1 << 24


def quote_ident(name: str) -> str:
    """Return *name* as a quoted SQL identifier (double quotes doubled)."""
    return '"' + name.replace('"', '""') + '"'


@dataclass
class BulkFile:
    """A canonical file loaded into the engine and split into clean and flagged rows.

    Create it with :func:`open_bulk` before the file's transaction; inside it,
    :meth:`stage` writes the clean rows to the staging table and iterating
    yields the flagged rows as validated :class:`~journeylib.io.generic.Chunk`
    objects, as the exact reader would.

    Attributes
    ----------
    clean : int
        Rows typed in SQL and staged directly.
    flagged : int
        Rows validated by the exact reader's code.
    """

    store: Store
    reader: FileReader
    names: list[str]
    types: dict[str, str]
    clean: int = 0
    flagged: int = 0
    _exprs: dict[str, str] = field(default_factory=dict)

    @property
    def read(self) -> int:
        """Rows in the file."""
        return self.clean + self.flagged

    def stage(self) -> None:
        """Create the staging table with the clean rows (typed as :func:`~journeylib.store.merge.stage_rows` types them)."""
        table = self.reader.table
        cols = []
        for c in table.columns:
            cast = f"json({self._exprs[c.name]})" if c.type == "json" else f"CAST({self._exprs[c.name]} AS {SQL_TYPES[c.type]})"
            cols.append(f"{cast} AS {quote_ident(c.name)}")
        rows = f"SELECT {', '.join(cols)}, _line, NULL::VARCHAR AS _raw FROM {RAW} WHERE _ok"
        self.store.con.execute(f"CREATE OR REPLACE TEMP TABLE {STAGE} AS {staged_select(self.reader.table, rows)}")

    def fill_raw(self) -> None:
        """Give the staged clean CSV rows the merge may quarantine their raw text (as the exact reader keeps it).

        Only rows whose key repeats in the file or is already stored can be
        quarantined by the merge; Parquet rows keep no raw text on either path.
        """
        if self.reader.format != "csv":
            return
        table = self.reader.table
        (key,) = table.key
        k = quote_ident(key)
        fields = []
        for n in self.names:
            v = f"coalesce({quote_ident(n)}, '')"
            fields.append(f"""CASE WHEN regexp_matches({v}, '[,"]') THEN '"' || replace({v}, '"', '""') || '"' ELSE {v} END""")
        text = " || ',' || ".join(fields)
        raw = f"CASE WHEN length({text}) > {MAX_RAW_CHARS} THEN left({text}, {MAX_RAW_CHARS}) || '...' ELSE {text} END"
        self.store.con.execute(
            f"""UPDATE {STAGE} AS s SET _raw = r.raw
            FROM (SELECT _line, {raw} AS raw FROM {RAW} WHERE _ok) r
            WHERE s._line = r._line AND s._raw IS NULL
              AND (s.{k} IN (SELECT {k} FROM {STAGE} GROUP BY {k} HAVING count(*) > 1)
                   OR s.{k} IN (SELECT {k} FROM {quote_ident(table.name)}))"""
        )

    def count_notes(self) -> None:
        """Add the clean rows' share of the reader's notes (naive timestamps, extra columns)."""
        table = self.reader.table
        con = self.store.con
        for c in table.columns:
            if c.type != "timestamp" or c.name not in self.types:
                continue
            t = self.types[c.name]
            v = quote_ident(c.name)
            if t == "VARCHAR":
                cond = f"coalesce({v}, '') <> '' AND NOT regexp_matches({v}, {sql_quote(_OFFSET)})"
            elif t == "TIMESTAMP WITH TIME ZONE":
                continue
            else:
                cond = f"{v} IS NOT NULL"
            row = first_row(con.execute(f"SELECT count(*) FROM {RAW} WHERE _ok AND {cond}"))
            k = int(row[0]) if row else 0
            if k:
                self.reader.notes[f"{c.name}: naive timestamps taken as UTC"] += k
        extra = [n for n in self.names if n not in table.fields]
        if extra and self.clean:
            self.reader.notes[f"columns kept in properties: {', '.join(extra[:8])}{' ...' if len(extra) > 8 else ''}"] += self.clean

    def __iter__(self) -> Iterator[Chunk]:
        if not self.flagged:
            return
        if self.reader.format == "csv":
            yield from self._csv_chunks()
        else:
            yield from self._parquet_chunks()

    def _csv_chunks(self) -> Iterator[Chunk]:
        cols = ", ".join(quote_ident(n) for n in self.names)
        con = self.store.con
        # Pages by number, not one open result: the ingest runs statements between chunks.
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {FLAGGED} AS "
            f"SELECT {cols}, _line, row_number() OVER (ORDER BY _line) - 1 AS _seq FROM {RAW} WHERE NOT _ok"
        )
        size = self.reader.chunk_rows
        for start in range(0, self.flagged, size):
            batch = con.execute(
                f"SELECT {cols}, _line FROM {FLAGGED} WHERE _seq >= {start} AND _seq < {start + size} ORDER BY _seq"
            ).fetchall()
            records: list[list[str]] = []
            lines: list[int] = []
            raws: list[str] = []
            pre: list[tuple[int, str, str]] = []
            for row in batch:
                fields = ["" if v is None else str(v) for v in row[:-1]]
                line = int(row[-1])
                reason = csv_field_problem(fields, self.names)
                if reason:
                    pre.append((line, csv_raw_text(fields), reason))
                else:
                    records.append(fields)
                    lines.append(line)
                    raws.append(csv_raw_text(fields))
            frame = pd.DataFrame(records, columns=self.names, dtype=object) if records else pd.DataFrame({n: pd.Series(dtype=object) for n in self.names})
            frame["_line"] = np.asarray(lines, dtype=np.int64)
            frame["_raw"] = [r if len(r) <= MAX_RAW_CHARS else r[:MAX_RAW_CHARS] + "..." for r in raws]
            yield validated_chunk(frame, pre, self.reader.table, notes=self.reader.notes, file=self.reader.path)

    def _parquet_chunks(self) -> Iterator[Chunk]:
        import pyarrow as pa
        import pyarrow.parquet as pq

        from journeylib.io.generic import arrow_problems

        flagged = np.array([int(r[0]) for r in self.store.con.execute(f"SELECT _line FROM {RAW} WHERE NOT _ok ORDER BY _line").fetchall()], dtype=np.int64)
        pf = pq.ParquetFile(self.reader.path)
        offset = 0
        pending: list[Any] = []
        pending_lines: list[np.ndarray] = []
        size = self.reader.chunk_rows

        def flush() -> Chunk:
            batch = pa.Table.from_batches(pending).combine_chunks().to_batches()[0] if len(pending) > 1 else pending[0]
            problems = arrow_problems(batch)
            frame = batch.to_pandas()
            frame.columns = [str(c).strip() for c in frame.columns]
            frame["_line"] = np.concatenate(pending_lines)
            frame["_raw"] = None
            frame["_problem"] = problems
            return validated_chunk(frame, [], self.reader.table, notes=self.reader.notes, file=self.reader.path)

        for batch in pf.iter_batches(batch_size=size):
            n = batch.num_rows
            lo, hi = np.searchsorted(flagged, [offset + 1, offset + n + 1])
            if hi > lo:
                lines = flagged[lo:hi]
                pending.append(batch.take(pa.array(lines - offset - 1)))
                pending_lines.append(lines)
                if sum(len(x) for x in pending_lines) >= size:
                    yield flush()
                    pending, pending_lines = [], []
            offset += n
        if pending:
            yield flush()


def bulk_refusal(reader: FileReader) -> str | None:
    """Return why a file cannot be read by the engine (it then goes to the exact reader), or None.

    Parameters
    ----------
    reader : FileReader
        The exact reader opened on the file (its checks of path, format and
        size have run).

    Returns
    -------
    str or None
        The reason in words, or None when the CSV/Parquet bytes allow the
        engine path (the engine may still refuse while parsing).
    """
    return _scan(reader)[0]


def _scan(reader: FileReader) -> tuple[str | None, int, bool]:
    """(refusal or None, line breaks in the file, whether it ends with one), reading a CSV file's bytes once."""
    if reader.format not in BULK_FORMATS:
        return "JSON Lines files are read record by record", 0, False
    if reader.format == "parquet":
        return None, 0, False
    newlines = returns = pairs = 0
    tail = b""
    with open(reader.path, "rb") as fb:
        while True:
            block = fb.read(_SCAN_BLOCK)
            if not block:
                break
            if b"\x00" in block:
                return "NUL bytes in the file", 0, False
            data = tail + block
            if b"\n\n" in data or b"\n\r\n" in data:
                return "blank lines", 0, False
            newlines += block.count(b"\n")
            returns += block.count(b"\r")
            pairs += (tail[-1:] + block).count(b"\r\n")
            tail = data[-2:]
    if returns - pairs - (1 if tail.endswith(b"\r") else 0):
        return "carriage returns that do not end a line", 0, False
    return None, newlines, tail.endswith(b"\n")


def _scalar(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    row = first_row(con.execute(sql))
    return int(row[0]) if row and row[0] is not None else 0


def _parquet_types(store: Store, path: Path) -> dict[str, str]:
    rows = store.con.execute(f"DESCRIBE SELECT * FROM read_parquet({sql_quote(str(path))})").fetchall()
    return {str(r[0]): str(r[1]) for r in rows}


def _csv_header(reader: FileReader) -> list[str] | None:
    with open(reader.path, encoding="utf-8-sig", errors="surrogateescape", newline="") as fh:
        first = fh.readline()
    if not first.endswith("\n"):
        return None
    try:
        header = next(csv.reader([first.rstrip("\r\n")], strict=False))
    except (csv.Error, StopIteration):
        return None
    if any("\udc80" <= ch <= "\udcff" for h in header for ch in h) or first.count('"') % 2:
        return None
    return reader.check_header(header)


def _value_sql(name: str, kind: str, col_type: str, *, required: bool, is_id_like: bool, email_like: bool) -> tuple[str, str]:
    """(typed SQL expression, SQL condition that the value is clean) for one canonical column read as *col_type*."""
    v = quote_ident(name)
    if kind == "timestamp":
        if col_type == "VARCHAR":
            e = f"coalesce({v}, '')"
            offset = f"regexp_matches({e}, {sql_quote(_OFFSET)})"
            parsed = f"CASE WHEN {offset} THEN TRY_CAST({v} AS TIMESTAMPTZ) ELSE timezone('UTC', TRY_CAST({v} AS TIMESTAMP)) END"
            shaped = (
                f"(regexp_matches({e}, {sql_quote(_TS)}) AND TRY_CAST(substr({e}, 1, 4) AS INTEGER) BETWEEN 1679 AND 2260 AND {parsed} IS NOT NULL)"
            )
            ok = shaped if required else f"({e} = '' OR {shaped})"
            return f"CASE WHEN {e} = '' THEN NULL ELSE {parsed} END", ok
        if col_type == "TIMESTAMP WITH TIME ZONE":
            typed = v
            shaped = f"{v} BETWEEN TIMESTAMPTZ '1679-01-02 00:00:00+00' AND TIMESTAMPTZ '2260-12-30 00:00:00+00'"
        else:
            typed = f"timezone('UTC', CAST({v} AS TIMESTAMP))"
            shaped = f"CAST({v} AS TIMESTAMP) BETWEEN TIMESTAMP '1679-01-02' AND TIMESTAMP '2260-12-30'"
        return typed, (f"({v} IS NOT NULL AND {shaped})" if required else f"({v} IS NULL OR {shaped})")
    if kind == "number":
        if col_type == "VARCHAR":
            e = f"coalesce({v}, '')"
            ok = f"regexp_matches({e}, {sql_quote(_INTEGER)})"
            return f"TRY_CAST(NULLIF({e}, '') AS DOUBLE)", (ok if required else f"({e} = '' OR {ok})")
        finite = f"isfinite(CAST({v} AS DOUBLE))"
        return f"CAST({v} AS DOUBLE)", (f"({v} IS NOT NULL AND {finite})" if required else f"({v} IS NULL OR {finite})")
    e = f"coalesce({v}, '')"
    if kind == "json":
        depth = f"(length({e}) - length(replace(replace({e}, '{{', ''), '[', '')))"
        obj = (
            f"(CASE WHEN json_valid({e}) THEN json_type({e}) = 'OBJECT' ELSE false END AND NOT regexp_matches({e}, {sql_quote(_JSON_SUSPECT)}) "
            f"AND {depth} <= {MAX_JSON_DEPTH} AND length({e}) <= {MAX_FIELD_CHARS})"
        )
        return f"CASE WHEN trim({e}) = '' THEN NULL ELSE {e} END", f"(trim({e}) = '' OR {obj})"
    printable = f"regexp_matches({e}, {sql_quote(_PRINTABLE)})"
    fits = f"length({e}) <= {MAX_FIELD_CHARS} AND NOT contains({e}, chr(0))"
    if kind == "enum":
        typed = f"NULLIF(lower(trim({e})), '')"
        return typed, f"({printable} AND {fits})"
    if kind == "id" or email_like:
        typed = f"NULLIF(trim({e}), '')"
        if email_like:
            typed = f"NULLIF(lower(trim({e})), '')"
        ok = f"({printable} AND {fits})"
        return typed, (f"({ok} AND trim({e}) <> '')" if required else ok)
    ok = f"({printable} AND {fits})" if is_id_like else f"({fits})"
    return f"NULLIF({e}, '')", (f"({ok} AND {e} <> '')" if required else ok)


def open_bulk(store: Store, reader: FileReader) -> BulkFile | str:
    """Load a canonical CSV or Parquet file into the engine and mark its clean rows.

    Runs outside the file's transaction (a parse error must not abort it):
    the file goes to the temporary table :data:`RAW` with ``_line`` (the
    exact reader's line or row number) and ``_ok`` (the clean test).

    Parameters
    ----------
    store : Store
        A writable store.
    reader : FileReader
        The exact reader opened on the file.

    Returns
    -------
    BulkFile or str
        The loaded file, or the reason the file goes to the exact reader.

    Raises
    ------
    SourceFormatError
        If the header lacks a required column or repeats one (as the exact
        reader would).
    """
    refusal, newlines, ends_with_newline = _scan(reader)
    if refusal:
        return refusal
    table = reader.table
    con = store.con
    path = sql_quote(str(reader.path))
    try:
        if reader.format == "csv":
            names = _csv_header(reader)
            if names is None:
                return "a header the engine does not read as the exact reader does"
            columns = "{" + ", ".join(f"{sql_quote(n)}: 'VARCHAR'" for n in names) + "}"
            source = (
                f"read_csv({path}, auto_detect = false, header = true, delim = ',', quote = '\"', escape = '\"', "
                f"columns = {columns}, strict_mode = true, max_line_size = {MAX_LINE_BYTES}, null_padding = false)"
            )
            types = dict.fromkeys(names, "VARCHAR")
            con.execute(f"CREATE OR REPLACE TEMP TABLE {READ} AS SELECT * FROM {source}")
            rows = _scalar(con, f"SELECT count(*) FROM {READ}")
            first = _scalar(con, f"SELECT coalesce(min(rowid), 0) FROM {READ}")  # rowids count from here in insertion order
            if newlines == rows + (1 if ends_with_newline else 0):
                line = f"CAST(rowid - {first} + 2 AS BIGINT)"
            else:  # quoted fields hold line breaks: a row starts after the breaks of the rows before it
                nl = " + ".join(
                    f"(length(coalesce({quote_ident(n)}, '')) - length(replace(coalesce({quote_ident(n)}, ''), chr(10), '')))" for n in names
                )
                line = f"CAST(rowid - {first} + 2 + coalesce(sum({nl}) OVER (ORDER BY rowid ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS BIGINT)"
            scan = f"(SELECT *, {line} AS _line FROM {READ})"
        else:
            import pyarrow.parquet as pq

            try:
                header = list(pq.ParquetFile(reader.path).schema_arrow.names)
            except Exception:  # the exact reader words the refusal
                return "a Parquet file pyarrow cannot open"
            reader.check_header(header)
            types = _parquet_types(store, reader.path)
            names = list(types)
            if "file_row_number" in names or any(n != n.strip() for n in names):
                return "column names the engine does not read as the exact reader does"
            for n, t in types.items():
                c = table.fields.get(n)
                kind = c.type if c else "extra"
                if t == "BLOB" or t.startswith("DECIMAL") or t == "FLOAT":
                    return f"column {n} of type {t}"
                if kind == "timestamp" and t not in ("VARCHAR", *_TIMESTAMP_TYPES):
                    return f"column {n} of type {t}"
                if kind == "number" and t not in ("VARCHAR", *_NUMBER_TYPES):
                    return f"column {n} of type {t}"
                if kind in ("id", "text", "enum", "json") and t != "VARCHAR":
                    return f"column {n} of type {t}"
            scan = f"(SELECT * EXCLUDE (file_row_number), CAST(file_row_number + 1 AS BIGINT) AS _line FROM read_parquet({path}, file_row_number = true))"
    except duckdb.Error as exc:
        drop_bulk(store)
        return f"the engine could not parse it ({str(exc).splitlines()[0][:200]})"
    bulk = BulkFile(store=store, reader=reader, names=names, types=types)
    checks: list[str] = []
    for c in table.columns:
        if c.name not in types:
            bulk._exprs[c.name] = "NULL"
            continue
        typed, ok = _value_sql(
            c.name,
            c.type,
            types[c.name],
            required=c.required,
            is_id_like=c.name.endswith("_id"),
            email_like=c.name in ("email", "domain"),
        )
        if c.type == "enum":
            allowed = ", ".join(sql_quote(a) for a in c.allowed)
            e = f"lower(trim(coalesce({quote_ident(c.name)}, '')))"
            empty_ok = "" if c.required else f" OR {e} = ''"
            ok = f"({ok} AND ({e} IN ({allowed}){empty_ok}))"
        bulk._exprs[c.name] = typed
        checks.append(ok)
    for n, t in types.items():
        if n in table.fields:
            continue
        v = quote_ident(n)
        checks.append(f"({v} IS NULL OR CAST({v} AS VARCHAR) = '')" if t == "VARCHAR" else f"({v} IS NULL)")
    for n, t in types.items():
        if t == "DOUBLE" and n not in table.fields:
            continue  # extra columns must be empty anyway
        if t == "VARCHAR" and n not in table.fields:
            checks.append(f"length(coalesce({quote_ident(n)}, '')) <= {MAX_FIELD_CHARS}")
    clean = " AND ".join(checks) or "true"
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {RAW} AS SELECT *, coalesce({clean}, false) AS _ok FROM {scan}")
    except duckdb.Error as exc:
        drop_bulk(store)
        return f"the engine could not parse it ({str(exc).splitlines()[0][:200]})"
    finally:
        con.execute(f"DROP TABLE IF EXISTS {READ}")
    bulk.clean = _scalar(con, f"SELECT count(*) FROM {RAW} WHERE _ok")
    bulk.flagged = _scalar(con, f"SELECT count(*) FROM {RAW} WHERE NOT _ok")
    log.debug("%s: %d clean rows, %d flagged", reader.path, bulk.clean, bulk.flagged)
    return bulk


def drop_bulk(store: Store) -> None:
    """Drop the engine's copy of the file."""
    for name in (RAW, READ, FLAGGED):
        store.con.execute(f"DROP TABLE IF EXISTS {name}")
