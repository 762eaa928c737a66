"""Generic reader for canonical CSV, Parquet and JSON Lines files.

Any source that is not a supported vendor export (a warehouse extract, a
home-grown tool) can be loaded by writing the canonical tables of
docs/data-contract.md by column name. This module reads such files in chunks and
validates every row against :mod:`journeylib.store.schema`:

* required columns must be present (a file without them is rejected whole,
  with a :class:`~journeylib.exceptions.SourceFormatError` naming the file and
  the fix);
* ids must be non-empty; timestamps are parsed to UTC (offsets honoured; naive
  timestamps taken as UTC and counted in the notes); numbers must be finite;
  ``properties`` must be a JSON object; enum columns must hold allowed values;
* columns that are not canonical are kept inside ``properties``.

Rows that fail are returned as rejects with their line number, raw content and
the reason, never dropped silently. Line numbers are 1-based physical lines for
CSV (the row's first line) and JSON Lines, and 1-based row numbers for Parquet.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from journeylib.exceptions import SourceFormatError
from journeylib.store.schema import Table

#: File endings the generic reader accepts, by format.
SUPPORTED_SUFFIXES: dict[str, str] = {
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
}

#: A field longer than this (characters) is quarantined rather than loaded.
MAX_FIELD_CHARS = 1_000_000
#: Raw content kept in the quarantine table for one row, in characters.
MAX_RAW_CHARS = 4_000
CHUNK_ROWS = 200_000

_OFFSET_RE = re.compile(r"\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(?:[zZ]|[+-]\d{2}(?::?\d{2})?)$")
_TS_RE = re.compile(r"^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?\s*(?:[zZ]|[+-]\d{2}(?::?\d{2})?)?$")


@dataclass
class Chunk:
    """A chunk of one file after validation.

    Attributes
    ----------
    rows : pandas.DataFrame
        Accepted rows: the table's canonical columns (typed: ids/text as str,
        timestamps tz-aware UTC, numbers float, properties JSON text) plus
        ``_line`` and ``_raw``.
    rejects : pandas.DataFrame
        Columns ``line``, ``raw``, ``reason``.
    read : int
        Rows read in this chunk (accepted + rejected).
    """

    rows: pd.DataFrame
    rejects: pd.DataFrame
    read: int


@dataclass
class FileReader:
    """Reads one canonical file in validated chunks.

    Parameters
    ----------
    path : pathlib.Path
        The file.
    table : Table
        The canonical table it holds.
    chunk_rows : int
        Rows per chunk.

    Attributes
    ----------
    notes : collections.Counter
        Assumptions made while reading (e.g. ``naive timestamps taken as UTC``)
        with their counts; filled while iterating.
    """

    path: Path
    table: Table
    chunk_rows: int = CHUNK_ROWS
    notes: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        if not self.path.exists():
            msg = f"{self.path}: no such file. Check the path (globs are expanded by your shell)."
            raise SourceFormatError(msg)
        if self.path.is_dir():
            msg = f"{self.path} is a directory; pass the files inside it."
            raise SourceFormatError(msg)
        suffix = self.path.suffix.lower()
        if suffix not in SUPPORTED_SUFFIXES:
            allowed = ", ".join(sorted(SUPPORTED_SUFFIXES))
            msg = (
                f"{self.path}: cannot tell the format from the ending {suffix or '(none)'!r}. "
                f"The generic reader takes {allowed}. Rename the file or convert it."
            )
            raise SourceFormatError(msg)
        self.format = SUPPORTED_SUFFIXES[suffix]
        if self.path.stat().st_size == 0:
            msg = f"{self.path}: the file is empty (0 bytes). Export it again; nothing was loaded."
            raise SourceFormatError(msg)

    def __iter__(self) -> Iterator[Chunk]:
        reader = {"csv": self._csv_frames, "parquet": self._parquet_frames, "jsonl": self._jsonl_frames}[self.format]
        for frame, pre_rejects in reader():
            rows, rejects = validate_frame(frame, self.table, notes=self.notes, file=self.path)
            if pre_rejects:
                rejects = pd.concat([pd.DataFrame(pre_rejects, columns=["line", "raw", "reason"]), rejects], ignore_index=True)
            yield Chunk(rows=rows, rejects=rejects, read=len(frame) + len(pre_rejects))

    # -- CSV -------------------------------------------------------------
    def _check_header(self, header: list[str]) -> list[str]:
        names = [h.strip() for h in header]
        dupes = sorted({n for n in names if names.count(n) > 1 and n})
        if dupes:
            msg = f"{self.path}: header repeats column(s) {dupes}. Each column name must appear once."
            raise SourceFormatError(msg)
        missing = [c for c in self.table.required if c not in names]
        if missing:
            hint = ""
            if len(names) == 1:
                for delim, label in ((";", "semicolons"), ("\t", "tabs"), ("|", "pipes")):
                    if delim in names[0]:
                        hint = f" The header looks separated by {label}; journeylib expects comma-separated CSV."
                        break
            expected = ", ".join(self.table.required)
            found = ", ".join(repr(n) for n in names[:12]) + (" ..." if len(names) > 12 else "")
            msg = (
                f"{self.path}: missing required column(s) {', '.join(missing)} for table "
                f"{self.table.name!r}. Expected at least: {expected}; found: {found}.{hint} "
                "Rename the columns to the canonical names (see docs/data-contract.md); nothing was loaded."
            )
            raise SourceFormatError(msg)
        return names

    def _csv_frames(self) -> Iterator[tuple[pd.DataFrame, list[tuple[int, str, str]]]]:
        with open(self.path, "rb") as fb:
            head = fb.read(8192)
        if b"\x00" in head:
            msg = f"{self.path}: binary content (NUL bytes) — this is not a CSV text file. Export it as UTF-8 CSV."
            raise SourceFormatError(msg)
        if not head.strip():
            msg = f"{self.path}: the file holds only white space. Export it again; nothing was loaded."
            raise SourceFormatError(msg)
        csv.field_size_limit(max(csv.field_size_limit(), 64 * MAX_FIELD_CHARS))
        with open(self.path, encoding="utf-8-sig", errors="surrogateescape", newline="") as fh:
            reader = csv.reader(fh, strict=False)
            try:
                header = next(reader)
            except (StopIteration, csv.Error) as exc:
                msg = f"{self.path}: cannot read a CSV header ({exc}). The first line must name the columns."
                raise SourceFormatError(msg) from exc
            if any(_has_surrogate(h) for h in header):
                msg = f"{self.path}: the header is not valid UTF-8. Save the file as UTF-8."
                raise SourceFormatError(msg)
            names = self._check_header(header)
            width = len(names)
            records: list[list[str]] = []
            lines: list[int] = []
            raws: list[str] = []
            pre: list[tuple[int, str, str]] = []
            prev_end = reader.line_num
            while True:
                start = prev_end + 1
                try:
                    fields = next(reader)
                except StopIteration:
                    break
                except csv.Error as exc:
                    prev_end = reader.line_num
                    pre.append((start, "", f"unreadable CSV row: {exc}"))
                    continue
                prev_end = reader.line_num
                if not fields or (len(fields) == 1 and not fields[0].strip()):
                    continue  # blank line: not a row
                raw = _csv_raw(fields)
                reason = None
                if len(fields) != width:
                    reason = f"expected {width} fields as in the header, found {len(fields)}"
                    if len(fields) < width:
                        reason += " (truncated row, or a different delimiter?)"
                elif any(_has_surrogate(f) for f in fields):
                    bad = next(names[i] for i, f in enumerate(fields) if _has_surrogate(f))
                    reason = f"column {bad}: bytes that are not valid UTF-8"
                else:
                    long = [names[i] for i, f in enumerate(fields) if len(f) > MAX_FIELD_CHARS]
                    if long:
                        reason = f"column {long[0]}: field longer than {MAX_FIELD_CHARS:,} characters"
                if reason:
                    pre.append((start, raw, reason))
                else:
                    records.append(fields)
                    lines.append(start)
                    raws.append(raw)
                if len(records) + len(pre) >= self.chunk_rows:
                    yield _frame(records, names, lines, raws), pre
                    records, lines, raws, pre = [], [], [], []
            yield _frame(records, names, lines, raws), pre

    # -- JSON Lines ------------------------------------------------------
    def _jsonl_frames(self) -> Iterator[tuple[pd.DataFrame, list[tuple[int, str, str]]]]:
        required = self.table.required
        seen_required: set[str] = set()
        any_object = False
        with open(self.path, "rb") as fb:
            objs: list[dict[str, Any]] = []
            lines: list[int] = []
            raws: list[str] = []
            pre: list[tuple[int, str, str]] = []
            for lineno, raw_bytes in enumerate(fb, start=1):
                if lineno == 1 and raw_bytes.startswith(b"\xef\xbb\xbf"):
                    raw_bytes = raw_bytes[3:]
                if not raw_bytes.strip():
                    continue
                try:
                    text = raw_bytes.decode("utf-8").rstrip("\r\n")
                except UnicodeDecodeError as exc:
                    pre.append((lineno, raw_bytes.decode("utf-8", "replace")[:MAX_RAW_CHARS], f"bytes that are not valid UTF-8 at position {exc.start}"))
                    continue
                try:
                    obj = json.loads(text)
                except json.JSONDecodeError as exc:
                    pre.append((lineno, text[:MAX_RAW_CHARS], f"not valid JSON: {exc.msg} at column {exc.colno}"))
                    continue
                if not isinstance(obj, dict):
                    pre.append((lineno, text[:MAX_RAW_CHARS], f"expected a JSON object per line, found {type(obj).__name__}"))
                    continue
                any_object = True
                seen_required.update(k for k in required if k in obj)
                objs.append(obj)
                lines.append(lineno)
                raws.append(text)
                if len(objs) + len(pre) >= self.chunk_rows:
                    yield self._json_frame(objs, lines, raws, pre), pre
                    objs, lines, raws, pre = [], [], [], []
            if not any_object and not objs and not pre:
                msg = f"{self.path}: no JSON objects in the file. Export it again; nothing was loaded."
                raise SourceFormatError(msg)
            if any_object and not seen_required and required:
                msg = (
                    f"{self.path}: no line has any of the required fields {', '.join(required)} for table "
                    f"{self.table.name!r}. Rename the fields to the canonical names; nothing was loaded."
                )
                raise SourceFormatError(msg)
            yield self._json_frame(objs, lines, raws, pre), pre

    def _json_frame(self, objs: list[dict[str, Any]], lines: list[int], raws: list[str], pre: list[tuple[int, str, str]]) -> pd.DataFrame:
        names: list[str] = []
        for obj in objs:
            for k in obj:
                if k not in names:
                    names.append(k)
        for name in self.table.names:
            if name not in names:
                names.append(name)
        records = []
        for obj in objs:
            records.append([_json_cell(obj.get(n)) for n in names])
        return _frame(records, names, lines, raws)

    # -- Parquet ---------------------------------------------------------
    def _parquet_frames(self) -> Iterator[tuple[pd.DataFrame, list[tuple[int, str, str]]]]:
        import pyarrow.parquet as pq

        try:
            pf = pq.ParquetFile(self.path)
        except Exception as exc:
            msg = f"{self.path}: not a readable Parquet file ({exc}). Check that the export finished; nothing was loaded."
            raise SourceFormatError(msg) from exc
        self._check_header(list(pf.schema_arrow.names))
        offset = 0
        for batch in pf.iter_batches(batch_size=self.chunk_rows):
            frame = batch.to_pandas()
            n = len(frame)
            frame.columns = [str(c).strip() for c in frame.columns]
            frame["_line"] = np.arange(offset + 1, offset + n + 1)
            frame["_raw"] = None  # built only for rows that are refused (see validate_frame)
            offset += n
            yield frame, []


def read_canonical(path: str | Path, table: Table, *, chunk_rows: int = CHUNK_ROWS) -> FileReader:
    """Open a canonical CSV, Parquet or JSON Lines file for validated reading.

    Parameters
    ----------
    path : str or pathlib.Path
        The file.
    table : Table
        The canonical table it holds (from :mod:`journeylib.store.schema`).
    chunk_rows : int, default 200,000
        Rows per chunk, which bounds memory.

    Returns
    -------
    FileReader
        Iterate it for :class:`Chunk` objects; read ``notes`` afterwards.

    Raises
    ------
    SourceFormatError
        If the file is missing, empty, of an unknown format, or (on iteration)
        lacks a required column or is not readable at all.
    """
    return FileReader(Path(path), table, chunk_rows=chunk_rows)


# -- validation -----------------------------------------------------------
def validate_frame(frame: pd.DataFrame, table: Table, *, notes: Counter[str], file: Path | str = "") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Validate raw rows against a canonical table.

    Parameters
    ----------
    frame : pandas.DataFrame
        Raw rows: input columns (strings, or typed values from Parquet) plus
        ``_line`` and ``_raw``.
    table : Table
        Target table.
    notes : collections.Counter
        Receives counts of assumptions made (naive timestamps, extra columns).
    file : str or pathlib.Path
        For messages only.

    Returns
    -------
    rows : pandas.DataFrame
        Accepted rows with the table's columns (typed) plus ``_line``, ``_raw``.
    rejects : pandas.DataFrame
        ``line``, ``raw``, ``reason`` for every refused row.
    """
    n = len(frame)
    reasons: list[list[str]] = [[] for _ in range(n)]
    naive_masks: dict[str, pd.Series] = {}
    out: dict[str, Any] = {}
    index = frame.index
    for col in table.columns:
        if col.name == table.extra_column:
            continue
        if col.name not in frame.columns:
            out[col.name] = pd.Series([None] * n, index=index, dtype=object)
            continue
        values = frame[col.name]
        nested = values.map(lambda v: isinstance(v, (dict, list)))
        if nested.any():
            _add(reasons, nested, values.map(lambda v: type(v).__name__ if isinstance(v, (dict, list)) else v),
                 f"column {col.name}: expected a plain value, found a JSON {{v}}")
            values = values.mask(nested, None)
        if col.type == "timestamp":
            parsed, bad, naive = _parse_timestamps(values)
            out[col.name] = parsed
            naive_masks[col.name] = naive
            _add(reasons, bad, values, f"column {col.name}: expected an ISO-8601 timestamp such as 2025-03-01T09:30:00Z, found {{v!r}}")
            missing = parsed.isna() & ~bad
        elif col.type == "number":
            text = _as_text(values)
            num = pd.to_numeric(text.where(text != "", None), errors="coerce")
            bad = (text != "") & (num.isna() | ~np.isfinite(num.fillna(0.0)))
            _add(reasons, bad, values, f"column {col.name}: expected a finite number, found {{v!r}}")
            out[col.name] = num.where(~bad, np.nan).astype(float)
            missing = num.isna()
        else:
            text = _as_text(values)
            if col.type == "id" or col.name in ("email", "domain"):
                text = text.str.strip()
            if col.name in ("email", "domain"):
                text = text.str.lower()
            if col.type == "enum":
                text = text.str.strip().str.lower()
                bad = (text != "") & ~text.isin(col.allowed)
                _add(reasons, bad, values, f"column {col.name}: expected one of {', '.join(col.allowed)}, found {{v!r}}")
            out[col.name] = text.where(text != "", None)
            missing = text == ""
        if col.required:
            _add(reasons, missing, values, f"column {col.name}: required value is empty")
    if table.extra_column:
        props, bad_props = _properties(frame, table)
        for i, problem in enumerate(bad_props):
            if problem:
                reasons[i].append(problem)
        out[table.extra_column] = props
    rows = pd.DataFrame(out, index=index)
    rows["_line"] = frame["_line"].to_numpy()
    rows["_raw"] = frame["_raw"].to_numpy()
    bad_mask = np.array([bool(r) for r in reasons], dtype=bool)
    n_ok = int((~bad_mask).sum())
    raw_col = frame["_raw"]
    if bad_mask.any() and raw_col.isna().any():
        bad_frame = frame.loc[bad_mask]
        missing_raw = bad_frame["_raw"].isna().to_numpy()
        rebuilt = _records_json(bad_frame.loc[missing_raw].drop(columns=["_line", "_raw"]))
        raw_col = raw_col.copy()
        raw_col.loc[bad_frame.index[missing_raw]] = rebuilt
    for name, naive in naive_masks.items():
        k = int((naive.to_numpy() & ~bad_mask).sum())
        if k:
            notes[f"{name}: naive timestamps taken as UTC"] += k
    extra = [c for c in frame.columns if c not in table.fields and c not in ("_line", "_raw")]
    if extra and n_ok:
        notes[f"columns kept in properties: {', '.join(extra[:8])}{' ...' if len(extra) > 8 else ''}"] += n_ok
    rejects = pd.DataFrame(
        {
            "line": frame["_line"].to_numpy()[bad_mask],
            "raw": raw_col.to_numpy()[bad_mask],
            "reason": ["; ".join(r) for r, b in zip(reasons, bad_mask, strict=True) if b],
        }
    )
    return rows.loc[~bad_mask].reset_index(drop=True), rejects


def _add(reasons: list[list[str]], mask: pd.Series, values: pd.Series, template: str) -> None:
    for i in np.flatnonzero(np.asarray(mask, dtype=bool)):
        v = values.iloc[i]
        shown = v if not isinstance(v, str) or len(v) <= 60 else v[:57] + "..."
        reasons[i].append(template.format(v=shown))


def _as_text(values: pd.Series) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(values):
        return values.map(lambda v: "" if pd.isna(v) else v.isoformat())
    present = values.notna()
    return values.astype(object).where(present, "").astype(str)


def _parse_timestamps(values: pd.Series) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Parse to UTC. Returns (parsed, bad mask, naive mask)."""
    if pd.api.types.is_datetime64_any_dtype(values):
        if getattr(values.dt, "tz", None) is None:
            naive_mask = values.notna()
            parsed = values.dt.tz_localize("UTC")
        else:
            naive_mask = pd.Series(False, index=values.index)
            parsed = values.dt.tz_convert("UTC")
        return parsed, pd.Series(False, index=values.index), naive_mask
    text = _as_text(values).str.strip()
    present = text != ""
    shaped = text.str.match(_TS_RE)
    parsed = pd.to_datetime(text.where(present & shaped, None), utc=True, format="ISO8601", errors="coerce")
    bad = present & parsed.isna()
    naive_mask = present & ~bad & ~text.str.contains(_OFFSET_RE, regex=True)
    return parsed, bad, naive_mask


def _properties(frame: pd.DataFrame, table: Table) -> tuple[pd.Series, list[str]]:
    """Merge the ``properties`` column with non-canonical columns into JSON text.

    Returns the JSON text per row (None when empty) and a problem per row ("" when fine).
    """
    extra = [c for c in frame.columns if c not in table.fields and c not in ("_line", "_raw")]
    col = table.extra_column or "properties"
    base = frame[col].tolist() if col in frame.columns else [None] * len(frame)
    out: list[str | None] = []
    bad: list[str] = []
    extra_vals = [frame[c].tolist() for c in extra]
    for i, v in enumerate(base):
        problem = ""
        obj: dict[str, Any] | None = None
        text: str | None = None
        if isinstance(v, dict):
            obj = v
        elif v is None or (isinstance(v, float) and math.isnan(v)) or (isinstance(v, str) and not v.strip()):
            pass
        elif isinstance(v, str):
            try:
                parsed = json.loads(v)
            except json.JSONDecodeError:
                problem = f"column {col}: expected a JSON object, found {v[:60]!r}"
            else:
                if isinstance(parsed, dict):
                    obj, text = parsed, v.strip()
                else:
                    problem = f"column {col}: expected a JSON object, found {type(parsed).__name__}"
        else:
            problem = f"column {col}: expected a JSON object, found {type(v).__name__}"
        if extra and not problem:
            adds = {name: _plain(vals[i]) for name, vals in zip(extra, extra_vals, strict=True)}
            adds = {k: x for k, x in adds.items() if x not in (None, "")}
            if adds:
                obj, text = {**adds, **(obj or {})}, None
        if text is None and obj:
            text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
        out.append(text if obj else None)
        bad.append(problem)
    return pd.Series(out, index=frame.index, dtype=object), bad


def _plain(v: Any) -> Any:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, pd.Timestamp):
        return v.isoformat()
    return v


def _has_surrogate(text: str) -> bool:
    return any("\udc80" <= ch <= "\udcff" for ch in text) if not text.isascii() else False


def _csv_raw(fields: list[str]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="").writerow(
        [f.encode("utf-8", "surrogateescape").decode("utf-8", "replace") if not f.isascii() else f for f in fields]
    )
    raw = buf.getvalue()
    return raw if len(raw) <= MAX_RAW_CHARS else raw[:MAX_RAW_CHARS] + f"... [{len(raw):,} characters]"


def _frame(records: list[list[Any]], names: list[str], lines: list[int], raws: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame(records, columns=names, dtype=object) if records else pd.DataFrame({n: pd.Series(dtype=object) for n in names})
    frame["_line"] = np.asarray(lines, dtype=np.int64)
    frame["_raw"] = [r if len(r) <= MAX_RAW_CHARS else r[:MAX_RAW_CHARS] + "..." for r in raws]
    return frame


def _json_cell(v: Any) -> Any:
    if isinstance(v, (dict, list)):
        return v
    if v is None:
        return None
    if isinstance(v, bool):
        return str(v).lower()
    return str(v)


def _records_json(frame: pd.DataFrame) -> list[str]:
    recs = frame.to_dict(orient="records")
    out = []
    for r in recs:
        s = json.dumps({k: _plain(v) for k, v in r.items()}, default=str)
        out.append(s if len(s) <= MAX_RAW_CHARS else s[:MAX_RAW_CHARS] + "...")
    return out

