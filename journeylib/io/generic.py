"""Generic reader for canonical CSV, Parquet and JSON Lines files.

Any source that is not a supported vendor export (a warehouse extract, a
home-grown tool) can be loaded by writing the canonical tables of
docs/data-contract.md by column name. This module reads such files in chunks and
validates every row against :mod:`journeylib.store.schema`:

* required columns must be present (a file without them is rejected whole,
  with a :class:`~journeylib.exceptions.SourceFormatError` naming the file and
  the fix);
* ids must be non-empty and free of invisible characters; timestamps are
  parsed to UTC (offsets honoured; naive timestamps taken as UTC and counted
  in the notes; any year from 1 to 9999; the dates of
  :data:`NONE_SENTINEL_DATES` mean "none"); numbers must be finite;
  ``properties`` must be a JSON object; enum columns must hold allowed values;
* columns that are not canonical are kept inside ``properties``.

Every value is accounted for. A required value that cannot be read refuses its
row; an optional one (a ``renewal_at`` that is not a timestamp, an ``mrr``
that is not a number) is stored as empty and returned as a *value note*
(line, row id, field, raw value, reason) for the ``ingest_notes`` table.
Some content refuses a row wherever it is: NUL characters, non-finite numbers
(NaN, Infinity), lone surrogate escapes, Parquet bytes that are not UTF-8
text, fields longer than :data:`MAX_FIELD_CHARS`, JSON nested deeper than
:data:`MAX_JSON_DEPTH`, and a ``properties`` value that is not a JSON object. Any error while reading one
record refuses that record only; a file is refused whole only when it cannot
be read at all.

Refused rows are returned as rejects with their line number, raw content and
the reason, never dropped silently. Line numbers are 1-based physical lines for
CSV (the row's first line) and JSON Lines, and 1-based row numbers for Parquet.
A CSV row whose quoted field does not close (an unbalanced quote) is refused
on its own line; reading goes on with the next line, so the quote does not
swallow the rows after it.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd

from journeylib.exceptions import SourceFormatError
from journeylib.store.notes import NOTE_COLUMNS, empty_notes
from journeylib.store.schema import MESSAGE_STATUSES, SEND_ID, Table

#: File endings the generic reader accepts, by format.
SUPPORTED_SUFFIXES: dict[str, str] = {
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
}

#: A field longer than this (characters) refuses its row (CSV, JSON Lines and Parquet).
MAX_FIELD_CHARS = 1_000_000
#: A JSON Lines line longer than this (bytes) is refused without being parsed.
MAX_LINE_BYTES = 64 * MAX_FIELD_CHARS
#: JSON objects and arrays nested deeper than this refuse their row.
MAX_JSON_DEPTH = 64
#: Raw content kept in the quarantine table for one row, in characters.
MAX_RAW_CHARS = 4_000
CHUNK_ROWS = 200_000
#: Dates that mean "none" in a timestamp column (whatever the time of day):
#: an optional value is stored as empty (and noted), a required one refuses the row.
NONE_SENTINEL_DATES: tuple[str, ...] = ("9999-12-31", "0001-01-01")
#: Unicode categories refused in ids: control (Cc), format (Cf: zero-width
#: spaces and joiners, direction marks, the byte-order mark, soft hyphen) and
#: line/paragraph separators (Zl, Zp).
INVISIBLE_CATEGORIES: frozenset[str] = frozenset({"Cc", "Cf", "Zl", "Zp"})

_OFFSET_RE = re.compile(r"\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(?:[zZ]|[+-]\d{2}(?::?\d{2})?)$")
_TS_RE = re.compile(r"^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?\s*(?:[zZ]|[+-]\d{2}(?::?\d{2})?)?$")
_SPACED_OFFSET_RE = re.compile(r"\s+([zZ]|[+-]\d{2}(?::?\d{2})?)$")
_SURROGATE_RE = re.compile("[\ud800-\udfff]")
_NON_FINITE_WORDS = frozenset({"nan", "+nan", "-nan", "inf", "+inf", "-inf", "infinity", "+infinity", "-infinity"})
_BOOKKEEPING = ("_line", "_raw", "_problem")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)

#: A record refused while reading: (line, raw content, reason).
PreReject = tuple[int, str, str]

#: Distinct unknown values of one enum column named one by one in a file's notes; the rest share one note.
MAX_UNKNOWN_VALUES_NOTED = 10
#: Whole-number satisfaction scales recognised in a file (name: lowest, highest score); see :func:`score_scale`.
SCORE_SCALES: dict[str, tuple[int, int]] = {"1-5": (1, 5), "0-10": (0, 10)}


@dataclass(frozen=True)
class ScaleChoice:
    """How the scores of one file (e.g. ``tickets.satisfaction``) are read onto the contract's 0..1.

    Attributes
    ----------
    kind : str
        ``unit`` (every value already in 0..1: kept), ``rescale`` (whole
        numbers of a scale of :data:`SCORE_SCALES`: ``(r - low) / (high - low)``),
        ``outliers`` (a 0..1 file, told by values strictly between 0 and 1 that
        are not whole, with values outside 0..1: those are stored as empty) or
        ``unknown`` (the scale cannot be told: every value is stored as empty).
    low, high : float
        The scale's lowest and highest score (0 and 1 unless ``rescale``).
    reason : str
        In words: the scale recognised, or why none was.
    """

    kind: str
    low: float = 0.0
    high: float = 1.0
    reason: str = ""

    def to_unit(self, values: np.ndarray) -> np.ndarray:
        """Return *values* on 0..1 (``rescale``), or unchanged."""
        return (values - self.low) / (self.high - self.low)


def score_scale(values: Any) -> ScaleChoice:
    """Tell the scale of one file's scores from the values present.

    The rule, in order: every value in 0..1 → ``unit``; whole numbers in 1..5
    → the 1–5 scale; whole numbers in 0..10 with some above 5 and a 0 or a 10
    present → the 0–10 scale (whole numbers 1..9 alone could as well be 1–7 or
    1–10); values that are not whole strictly between 0 and 1 → a 0..1 file
    whose values outside 0..1 are ``outliers``; anything else → ``unknown``.

    Parameters
    ----------
    values : array-like of float
        The file's scores; missing and non-finite values are ignored.

    Returns
    -------
    ScaleChoice
        The decision and its reason.
    """
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if not len(v) or ((v >= 0) & (v <= 1)).all():
        return ScaleChoice("unit", reason="every value in 0..1")
    whole = bool((v == np.round(v)).all())
    lo, hi = float(v.min()), float(v.max())
    low5, high5 = SCORE_SCALES["1-5"]
    low10, high10 = SCORE_SCALES["0-10"]
    if whole and lo >= low5 and hi <= high5:
        return ScaleChoice("rescale", float(low5), float(high5), f"whole numbers {lo:g}..{hi:g}: a {low5}-{high5} scale")
    if whole and lo >= low10 and hi <= high10 and hi > high5 and (lo == low10 or hi == high10):
        return ScaleChoice("rescale", float(low10), float(high10), f"whole numbers {lo:g}..{hi:g}: a {low10}-{high10} scale")
    fractional = (v > 0) & (v < 1)
    if fractional.any():
        return ScaleChoice("outliers", reason=f"outside 0..1 in a file whose other scores are on the 0..1 scale ({int(fractional.sum())} between 0 and 1)")
    shape = "whole numbers" if whole else "numbers"
    return ScaleChoice(
        "unknown",
        reason=(
            f"the scale cannot be told from this file's values ({shape} {lo:g}..{hi:g}); recognised are 0..1, "
            f"whole numbers 1..5, and whole numbers 0..10 with some above 5 and a 0 or a 10"
        ),
    )


#: Statuses each ``messages`` status implies for the same e-mail.
IMPLIED_STATUSES: dict[str, tuple[str, ...]] = {"opened": ("delivered",), "clicked": ("opened", "delivered")}
#: Notes counting e-mails whose statuses are implied, by implied status, and rows without a send id.
IMPLIED_NOTES: dict[str, str] = {
    "delivered": "status: e-mails opened or clicked without a delivered row in this file (delivered implied; counted by the analytics, not stored)",
    "opened": "status: e-mails clicked without an opened row in this file (opened implied; counted by the analytics, not stored)",
    "loose": (
        f"status: opened or clicked rows without properties.{SEND_ID} (the statuses they imply cannot be told apart "
        "from rows of their own; each counts as its own status only)"
    ),
}


def count_implied_statuses(rows: list[tuple[str | None, str]], notes: Counter[str]) -> None:
    """Count, in a file's notes, the e-mails whose delivered or opened status is implied by a later one.

    Parameters
    ----------
    rows : list of (send id or None, status)
        The file's ``messages`` rows.
    notes : collections.Counter
        The file's notes; receives :data:`IMPLIED_NOTES` counts.
    """
    sends: dict[str, set[str]] = {}
    for send, status in rows:
        if send is None:
            if status in IMPLIED_STATUSES:
                notes[IMPLIED_NOTES["loose"]] += 1
            continue
        sends.setdefault(send, set()).add(status)
    for statuses in sends.values():
        for implied in ("delivered", "opened"):
            if implied not in statuses and any(implied in IMPLIED_STATUSES.get(s, ()) for s in statuses):
                notes[IMPLIED_NOTES[implied]] += 1


def value_rules_markdown() -> list[str]:
    """Return the Markdown lines of the data contract's section on values that do not fit it.

    Returns
    -------
    list of str
        The section ``Values that do not fit the contract`` of
        ``docs/data-contract.md``.
    """
    (low5, high5), (low10, high10) = SCORE_SCALES["1-5"], SCORE_SCALES["0-10"]
    return [
        "## Values that do not fit the contract",
        "",
        "Caught when a file is ingested, each with a counted note in the ingest summary",
        "(`ingest_log.notes`) or, for values stored as empty, a row of `ingest_notes`.",
        "",
        "* **Satisfaction on another scale.** `tickets.satisfaction` is on 0..1. The scale is told per",
        "  file from every value present (the rows the file loads): all values in 0..1 are kept;",
        f"  whole numbers in {low5}..{high5} are a {low5}–{high5} scale, rescaled as (r − {low5}) / {high5 - low5};",
        f"  whole numbers in {low10}..{high10} with some above {high5} and a {low10} or a {high10} present are a",
        f"  {low10}–{high10} scale, rescaled as r / {high10 - low10} (whole numbers 1..9 alone could as well be",
        "  1–7 or 1–10, so they are not taken as 0–10). Each rescaled file's note counts its values. A file",
        "  with values strictly between 0 and 1 that are not whole is on 0..1: its values outside 0..1",
        "  are stored as empty and listed in `ingest_notes`. Any other file (say whole numbers 0..5 with",
        "  a 0, or numbers above 10) has a scale that cannot be told: every value of it is stored as",
        "  empty and listed in `ingest_notes` with the reason; the ticket rows are loaded. The rule runs",
        "  on the file's staged rows (`journeylib/store/values.py`), so the engine and the exact reader",
        "  decide alike. Vendor readers know their scale: Zendesk `satisfaction_rating.score` good/bad",
        "  is 1/0 (offered and unoffered carry no rating; any other value is noted and stored as empty),",
        "  Intercom `conversation_rating.rating` 1–5 is (r − 1) / 4; both are counted in the notes.",
        "* **Implied e-mail statuses.** A `messages` row carries one status. The rows of one e-mail share",
        f"  `properties.{SEND_ID}`; for them `opened` implies `delivered` and `clicked` implies `opened` and",
        "  `delivered`, so a source that sends only the furthest status (Mailchimp's e-mail activity has no",
        "  delivery rows; SendGrid webhooks may carry only engagement events) is read like one that sends",
        "  every status. Implied statuses are not stored (a later file carrying the real `delivered` row",
        "  would otherwise count twice): the analytics read the implication, counting each e-mail once per",
        "  status (`emails_delivered_<D>d`, the open and click rates of the feature table). Each file's notes",
        "  count the e-mails whose `delivered` or `opened` is implied. A row without a send id counts as its",
        "  own status only, since it cannot be told whether another row of its e-mail exists; the notes",
        "  count the opened and clicked rows without one.",
        "* **Unknown enum values.** A value outside an enum column's allowed values (`messages.status`:",
        f"  {', '.join(MESSAGE_STATUSES)}) quarantines its row when the column is required and is",
        "  stored as empty (and listed in `ingest_notes`) otherwise; the file's notes count each distinct",
        f"  unknown value (the first {MAX_UNKNOWN_VALUES_NOTED} by name, the rest together). No synonym is guessed:",
        "  write `opened`, not `open`. Vendor readers refuse event types they do not know the same way,",
        "  with the type in the quarantine reason.",
        "",
    ]


def count_unknown_values(notes: Counter[str], column: str, values: list[str], *, required: bool) -> None:
    """Count values outside an enum in a file's notes, one note per distinct value.

    The first :data:`MAX_UNKNOWN_VALUES_NOTED` distinct values of a column (in
    reading order) get a note each; later ones share one note.

    Parameters
    ----------
    notes : collections.Counter
        The file's notes.
    column : str
        The enum column.
    values : list of str
        The unknown values met (lower-cased, trimmed), one per row.
    required : bool
        Whether the column is required (the rows are then quarantined; an
        optional value is stored as empty).
    """
    fate = "row quarantined" if required else "stored as empty"
    prefix = f"{column}: unknown value "
    for value in values:
        shown = value if len(value) <= 40 else value[:37] + "..."
        key = f"{prefix}{shown!r}, {fate}"
        if key not in notes and sum(1 for k in notes if k.startswith(prefix)) >= MAX_UNKNOWN_VALUES_NOTED:
            key = f"{column}: other unknown values, {fate}"
        notes[key] += 1


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
    notes : pandas.DataFrame
        Optional values of accepted rows stored as empty, one row per value,
        with the columns of :data:`journeylib.store.notes.NOTE_COLUMNS`.
    """

    rows: pd.DataFrame
    rejects: pd.DataFrame
    read: int
    notes: pd.DataFrame = field(default_factory=empty_notes)


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
            yield validated_chunk(frame, pre_rejects, self.table, notes=self.notes, file=self.path)

    # -- CSV -------------------------------------------------------------
    def check_header(self, header: list[str]) -> list[str]:
        """Return the stripped column names of a header, refusing repeats and missing required columns.

        Raises
        ------
        SourceFormatError
            If a name repeats or a required column of the table is missing.
        """
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

    def _csv_frames(self) -> Iterator[tuple[pd.DataFrame, list[PreReject]]]:
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
            feed = _LineFeed(fh)
            reader = csv.reader(feed, strict=False)
            try:
                header = next(reader)
            except (StopIteration, csv.Error) as exc:
                msg = f"{self.path}: cannot read a CSV header ({exc}). The first line must name the columns."
                raise SourceFormatError(msg) from exc
            if any(_has_surrogate(h) for h in header):
                msg = f"{self.path}: the header is not valid UTF-8. Save the file as UTF-8."
                raise SourceFormatError(msg)
            names = self.check_header(header)
            feed.take()
            records: list[list[str]] = []
            lines: list[int] = []
            raws: list[str] = []
            pre: list[PreReject] = []
            while True:
                try:
                    fields = next(reader)
                except StopIteration:
                    break
                except csv.Error as exc:
                    taken = feed.take()
                    if not taken:
                        break
                    feed.push_back(taken[1:])  # only the first line is refused; read on from the next one
                    pre.append((taken[0][0], _line_raw(taken[0][1]), f"unreadable CSV row: {exc}"))
                    continue
                taken = feed.take()
                if not fields or (len(fields) == 1 and not fields[0].strip()):
                    continue  # blank line: not a row
                start = taken[0][0]
                try:
                    reason = self._csv_problem(fields, names, taken)
                except Exception as exc:  # one record never takes the file down
                    reason = f"the row could not be read ({type(exc).__name__}: {exc})"
                if reason and len(taken) > 1 and reason.startswith(_UNBALANCED):
                    feed.push_back(taken[1:])
                    pre.append((start, _line_raw(taken[0][1]), reason))
                elif reason:
                    pre.append((start, csv_raw_text(fields), reason))
                else:
                    records.append(fields)
                    lines.append(start)
                    raws.append(csv_raw_text(fields))
                if len(records) + len(pre) >= self.chunk_rows:
                    yield _frame(records, names, lines, raws), pre
                    records, lines, raws, pre = [], [], [], []
            yield _frame(records, names, lines, raws), pre

    def _csv_problem(self, fields: list[str], names: list[str], taken: list[tuple[int, str]]) -> str | None:
        """Return why a CSV record is refused as a whole, or None."""
        width = len(names)
        if len(taken) > 1 and (len(fields) != width or _swallowed_row(taken[1:], names, self.table)):
            last = taken[-1][0]
            return (
                f"{_UNBALANCED} (a quoted field opened on this line runs to line {last}, "
                f"giving {len(fields)} field(s) where the header has {width}); this line is refused and "
                "reading goes on with the next line"
            )
        return csv_field_problem(fields, names)

    # -- JSON Lines ------------------------------------------------------
    def _jsonl_frames(self) -> Iterator[tuple[pd.DataFrame, list[PreReject]]]:
        required = self.table.required
        seen_required: set[str] = set()
        any_object = False
        with open(self.path, "rb") as fb:
            objs: list[dict[str, Any]] = []
            lines: list[int] = []
            raws: list[str] = []
            pre: list[PreReject] = []
            for lineno, raw_bytes, length in _long_lines(fb):
                try:
                    obj, text, reason = _jsonl_record(lineno, raw_bytes, length)
                except Exception as exc:  # one record never takes the file down
                    obj, text = None, raw_bytes.decode("utf-8", "replace")
                    reason = f"the line could not be read ({type(exc).__name__}: {exc})"
                if reason is not None:
                    pre.append((lineno, text[:MAX_RAW_CHARS], reason))
                elif obj is None:
                    continue  # blank line
                else:
                    any_object = True
                    seen_required.update(k for k in required if k in obj)
                    objs.append(obj)
                    lines.append(lineno)
                    raws.append(text)
                if len(objs) + len(pre) >= self.chunk_rows:
                    yield self._json_frame(objs, lines, raws), pre
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
            yield self._json_frame(objs, lines, raws), pre

    def _json_frame(self, objs: list[dict[str, Any]], lines: list[int], raws: list[str]) -> pd.DataFrame:
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
    def _parquet_frames(self) -> Iterator[tuple[pd.DataFrame, list[PreReject]]]:
        import pyarrow.parquet as pq

        try:
            pf = pq.ParquetFile(self.path)
        except Exception as exc:
            msg = f"{self.path}: not a readable Parquet file ({exc}). Check that the export finished; nothing was loaded."
            raise SourceFormatError(msg) from exc
        self.check_header(list(pf.schema_arrow.names))
        offset = 0
        batches = pf.iter_batches(batch_size=self.chunk_rows)
        while True:
            try:
                batch = next(batches)
                problems = arrow_problems(batch)
                frame = batch.to_pandas()
            except StopIteration:
                break
            except Exception as exc:
                msg = (
                    f"{self.path}: rows after row {offset:,} cannot be read ({type(exc).__name__}: {exc}). "
                    "The Parquet file is damaged; export it again. Nothing of it was loaded."
                )
                raise SourceFormatError(msg) from exc
            n = len(frame)
            frame.columns = [str(c).strip() for c in frame.columns]
            frame["_line"] = np.arange(offset + 1, offset + n + 1)
            frame["_raw"] = None  # built only for rows that are refused (see validate_frame)
            frame["_problem"] = problems
            offset += n
            yield frame, []


def validated_chunk(
    frame: pd.DataFrame, pre_rejects: list[PreReject], table: Table, *, notes: Counter[str], file: Path | str
) -> Chunk:
    """Validate raw rows (see :func:`validate_frame`) into a :class:`Chunk`, with the records refused while reading.

    Parameters
    ----------
    frame : pandas.DataFrame
        Raw rows with ``_line`` and ``_raw`` (and optionally ``_problem``).
    pre_rejects : list of (line, raw, reason)
        Records refused while reading; they come first among the chunk's rejects.
    table : Table
        Target table.
    notes : collections.Counter
        Receives counts of assumptions made.
    file : str or pathlib.Path
        For messages only.

    Returns
    -------
    Chunk
        Accepted rows, rejects, rows read and value notes.
    """
    value_notes: list[tuple[int, str | None, str, str | None, str]] = []
    rows, rejects = validate_frame(frame, table, notes=notes, file=file, value_notes=value_notes)
    if pre_rejects:
        rejects = pd.concat([pd.DataFrame(pre_rejects, columns=["line", "raw", "reason"]), rejects], ignore_index=True)
    value_frame = pd.DataFrame(value_notes, columns=list(NOTE_COLUMNS)) if value_notes else empty_notes()
    return Chunk(rows=rows, rejects=rejects, read=len(frame) + len(pre_rejects), notes=value_frame)


def csv_field_problem(fields: list[str], names: list[str]) -> str | None:
    """Return why a one-line CSV record is refused as a whole (field count, bad bytes, NUL, length), or None.

    Parameters
    ----------
    fields : list of str
        The record's fields as :mod:`csv` read them.
    names : list of str
        The header's column names.

    Returns
    -------
    str or None
        The reason in words, or None when the record can be validated.
    """
    width = len(names)
    if len(fields) != width:
        reason = f"expected {width} fields as in the header, found {len(fields)}"
        if len(fields) < width:
            reason += " (truncated row, or a different delimiter?)"
        return reason
    for i, f in enumerate(fields):
        if _has_surrogate(f):
            return f"column {names[i]}: bytes that are not valid UTF-8"
        if "\x00" in f:
            return f"column {names[i]}: a NUL character; NUL is refused anywhere in a row"
        if len(f) > MAX_FIELD_CHARS:
            return f"column {names[i]}: field longer than {MAX_FIELD_CHARS:,} characters"
    return None


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


# -- reading helpers ---------------------------------------------------------
_UNBALANCED = "unbalanced quote"


class _LineFeed:
    """Physical lines of a text file for :mod:`csv`, with their numbers and a push-back."""

    def __init__(self, fh: IO[str]) -> None:
        self._fh = fh
        self._back: list[tuple[int, str]] = []
        self._next = 1
        self._taken: list[tuple[int, str]] = []

    def __iter__(self) -> _LineFeed:
        return self

    def __next__(self) -> str:
        if self._back:
            item = self._back.pop()
        else:
            item = (self._next, next(self._fh))
            self._next += 1
        self._taken.append(item)
        return item[1]

    def take(self) -> list[tuple[int, str]]:
        """Return the (number, text) of the lines read since the last call."""
        taken, self._taken = self._taken, []
        return taken

    def push_back(self, items: list[tuple[int, str]]) -> None:
        """Read these lines again, in order, before the rest of the file."""
        self._back.extend(reversed(items))


def _swallowed_row(rest: list[tuple[int, str]], names: list[str], table: Table) -> bool:
    """Whether a continuation line of a multi-line CSV field reads as a row of its own.

    A line that splits into exactly as many fields as the header, with every
    required column non-empty, is a row swallowed by an unbalanced quote rather
    than text inside a quoted field.
    """
    required = [i for i, n in enumerate(names) if n in table.required]
    for _, line in rest:
        try:
            parts = next(csv.reader([line.rstrip("\r\n")], strict=False), [])
        except csv.Error:
            continue
        if len(parts) == len(names) and all(parts[i].strip() for i in required):
            return True
    return False


def _long_lines(fb: IO[bytes]) -> Iterator[tuple[int, bytes, int]]:
    """Yield (line number, bytes, length) per line; lines longer than :data:`MAX_LINE_BYTES` are cut there."""
    lineno = 0
    while True:
        line = fb.readline(MAX_LINE_BYTES + 1)
        if not line:
            return
        lineno += 1
        length = len(line)
        if length > MAX_LINE_BYTES and not line.endswith(b"\n"):
            while True:  # skip the rest of the line without holding it
                more = fb.readline(1 << 20)
                length += len(more)
                if not more or more.endswith(b"\n"):
                    break
        if lineno == 1 and line.startswith(b"\xef\xbb\xbf"):
            line = line[3:]
        yield lineno, line, length


def _jsonl_record(lineno: int, raw_bytes: bytes, length: int) -> tuple[dict[str, Any] | None, str, str | None]:
    """Read one JSON Lines line: (object or None for a blank line, text, reason it is refused or None)."""
    if length > MAX_LINE_BYTES:
        text = raw_bytes[:MAX_RAW_CHARS].decode("utf-8", "replace")
        return None, text, f"line longer than {MAX_LINE_BYTES:,} bytes ({length:,}); not parsed"
    if not raw_bytes.strip():
        return None, "", None
    try:
        text = raw_bytes.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError as exc:
        return None, raw_bytes.decode("utf-8", "replace"), f"bytes that are not valid UTF-8 at position {exc.start}"
    try:
        obj = _json_loads(text)
    except json.JSONDecodeError as exc:
        return None, text, f"not valid JSON: {exc.msg} at column {exc.colno}"
    except (ValueError, RecursionError) as exc:
        return None, text, _json_error(exc)
    if not isinstance(obj, dict):
        return None, text, f"expected a JSON object per line, found {type(obj).__name__}"
    problem = _json_problem(obj)
    if problem:
        return None, text, problem
    if len(text) > MAX_FIELD_CHARS:
        for k, v in obj.items():
            size = len(v) if isinstance(v, str) else len(json.dumps(v)) if isinstance(v, (dict, list)) else 0
            if size > MAX_FIELD_CHARS:
                return None, text, f"field {k}: longer than {MAX_FIELD_CHARS:,} characters"
    return obj, text, None


class _NonFiniteError(ValueError):
    """A JSON number that is not finite (NaN, Infinity, or too large for a float)."""


def _reject_constant(name: str) -> Any:
    raise _NonFiniteError(name)


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _NonFiniteError(text)
    return value


def _json_loads(text: str) -> Any:
    """``json.loads`` that refuses NaN, Infinity and numbers too large for a float."""
    return json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)


def _json_error(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return f"JSON nested too deep to read (more than {MAX_JSON_DEPTH} levels are refused)"
    if isinstance(exc, _NonFiniteError):
        return f"a non-finite number ({str(exc)[:40]}) in JSON; NaN and Infinity are refused anywhere in a row"
    return f"not valid JSON ({exc})"


def _string_problem(text: str) -> str | None:
    if text.isascii():
        return "a NUL character; NUL is refused anywhere in a row" if "\x00" in text else None
    if "\x00" in text:
        return "a NUL character; NUL is refused anywhere in a row"
    bad = _SURROGATE_RE.search(text)
    if bad:
        return f"a lone surrogate escape (\\u{ord(bad.group()):04x}) that is not a character"
    return None


def _json_problem(obj: Any) -> str | None:
    """Return why a parsed JSON value is refused (depth, NUL, surrogate, non-finite number), or None."""
    stack: list[tuple[Any, int]] = [(obj, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            if depth > MAX_JSON_DEPTH:
                return f"JSON nested deeper than {MAX_JSON_DEPTH} levels"
            for k, v in value.items():
                problem = _string_problem(k) if isinstance(k, str) else None
                if problem:
                    return f"key {k[:40]!r}: {problem}"
                stack.append((v, depth + 1))
        elif isinstance(value, list):
            if depth > MAX_JSON_DEPTH:
                return f"JSON nested deeper than {MAX_JSON_DEPTH} levels"
            stack.extend((v, depth + 1) for v in value)
        elif isinstance(value, str):
            problem = _string_problem(value)
            if problem:
                return problem
        elif isinstance(value, float) and not math.isfinite(value):
            return f"a non-finite number ({value}); NaN and Infinity are refused anywhere in a row"
    return None


def arrow_problems(batch: Any) -> list[str | None]:
    """Per row of an Arrow batch: why the row is refused (NUL, non-finite number, over-long text), or None."""
    import pyarrow as pa
    import pyarrow.compute as pc

    out: list[str | None] = [None] * batch.num_rows
    for name, col in zip(batch.schema.names, batch.columns, strict=True):
        checks: list[tuple[Any, str]] = []
        if pa.types.is_floating(col.type):
            checks.append((pc.is_nan(col), "NaN; non-finite numbers are refused anywhere in a row"))
            checks.append((pc.is_inf(col), "an infinite number; non-finite numbers are refused anywhere in a row"))
        elif pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
            checks.append((pc.match_substring(col, "\x00"), "a NUL character; NUL is refused anywhere in a row"))
            checks.append((pc.greater(pc.utf8_length(col), MAX_FIELD_CHARS), f"field longer than {MAX_FIELD_CHARS:,} characters"))
        elif pa.types.is_binary(col.type) or pa.types.is_large_binary(col.type) or pa.types.is_fixed_size_binary(col.type):
            values = col.to_pylist()
            checks.append((pa.array([v is not None and not _is_utf8(v) for v in values]), "bytes that are not UTF-8 text"))
            checks.append((pa.array([v is not None and b"\x00" in v for v in values]), "a NUL character; NUL is refused anywhere in a row"))
        for mask, reason in checks:
            hits = np.flatnonzero(np.asarray(mask.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool))
            for i in hits:
                if out[i] is None:
                    out[i] = f"column {str(name).strip()}: {reason}"
    return out


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


# -- validation -----------------------------------------------------------
def validate_frame(
    frame: pd.DataFrame,
    table: Table,
    *,
    notes: Counter[str],
    file: Path | str = "",
    value_notes: list[tuple[int, str | None, str, str | None, str]] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Validate raw rows against a canonical table.

    A value that cannot be read refuses its row when the column is required;
    in an optional column it is stored as empty and reported in
    *value_notes*. NUL characters, non-finite numbers, over-long fields, lone
    surrogates, too deep JSON and ``properties`` that are not a JSON object
    refuse the row wherever they are.

    Parameters
    ----------
    frame : pandas.DataFrame
        Raw rows: input columns (strings, or typed values from Parquet) plus
        ``_line`` and ``_raw`` and optionally ``_problem`` (a reason the
        reader found to refuse the row, or None).
    table : Table
        Target table.
    notes : collections.Counter
        Receives counts of assumptions made (naive timestamps, extra columns).
    file : str or pathlib.Path
        For messages only.
    value_notes : list, optional
        Receives one ``(line, row id, field, raw value, reason)`` tuple per
        optional value of an accepted row that was stored as empty.

    Returns
    -------
    rows : pandas.DataFrame
        Accepted rows with the table's columns (typed) plus ``_line``, ``_raw``.
    rejects : pandas.DataFrame
        ``line``, ``raw``, ``reason`` for every refused row.
    """
    n = len(frame)
    reasons: list[list[str]] = [[] for _ in range(n)]
    pending: list[tuple[int, str, str | None, str]] = []
    naive_masks: dict[str, pd.Series] = {}
    out: dict[str, Any] = {}
    index = frame.index
    if "_problem" in frame.columns:
        for i, problem in enumerate(frame["_problem"].tolist()):
            if problem:
                reasons[i].append(problem)

    for col in table.columns:
        if col.name == table.extra_column:
            continue
        if col.name not in frame.columns:
            out[col.name] = pd.Series([None] * n, index=index, dtype=object)
            continue
        values = frame[col.name]

        def flag(
            mask: Any,
            expected: str,
            found: str,
            *,
            col_name: str = col.name,
            required: bool = col.required,
            raw: pd.Series = values,
            orig: pd.Series = values,
        ) -> None:
            """Refuse the rows (required column) or note the values and store them as empty (optional column)."""
            if required:
                _add(reasons, mask, raw, f"column {col_name}: {expected}, found {found}")
                return
            for i in np.flatnonzero(np.asarray(mask, dtype=bool)):
                pending.append((int(i), col_name, _note_value(orig.iloc[i]), f"{expected}; stored as empty"))

        nested = values.map(lambda v: isinstance(v, (dict, list)))
        if nested.any():
            flag(nested, "expected a plain value", "a JSON {v}", raw=values.map(lambda v: type(v).__name__ if isinstance(v, (dict, list)) else v))
            values = values.mask(nested, None)
        if col.type == "timestamp":
            parsed, bad, naive, sentinel = _parse_timestamps(values)
            naive_masks[col.name] = naive & ~sentinel
            flag(bad, "expected an ISO-8601 timestamp such as 2025-03-01T09:30:00Z", "{v!r}")
            if col.required:
                _add(reasons, sentinel, _as_text(values), f"column {col.name}: {{v!r}} is a date that means 'none', but a value is required")
            else:
                for pos in np.flatnonzero(sentinel.to_numpy()):
                    v = values.iloc[pos]
                    pending.append((int(pos), col.name, _note_value(v), "a date that means 'none'; stored as empty"))
            out[col.name] = parsed.mask(bad | sentinel)
            missing = parsed.isna() & ~bad & ~sentinel & ~nested
        elif col.type == "number":
            text = _as_text(values)
            num = pd.to_numeric(text.where(text != "", None), errors="coerce")
            words = text.str.strip().str.lower().isin(_NON_FINITE_WORDS)
            non_finite = words | (num.notna() & ~np.isfinite(num.fillna(0.0)))
            _add(reasons, non_finite, values, f"column {col.name}: expected a finite number, found {{v!r}}")
            bad = (text != "") & num.isna() & ~non_finite
            flag(bad, "expected a finite number", "{v!r}")
            out[col.name] = num.where(~(bad | non_finite), np.nan).astype(float)
            missing = num.isna() & ~bad & ~non_finite & ~nested
        else:
            text = _as_text(values)
            if col.type == "id" or col.name in ("email", "domain"):
                text = text.str.strip()
            if col.name in ("email", "domain"):
                text = text.str.lower()
            bad = pd.Series(False, index=index)
            if col.type == "id" or col.name.endswith("_id"):
                for i, problem in _invisible(text):
                    bad.iloc[i] = True
                    if col.required:
                        reasons[i].append(f"column {col.name}: {problem}")
                    else:
                        v = values.iloc[i]
                        pending.append((i, col.name, _note_value(v), f"{problem}; stored as empty"))
            if col.type == "enum":
                text = text.str.strip().str.lower()
                not_allowed = (text != "") & ~text.isin(col.allowed) & ~bad
                flag(not_allowed, f"expected one of {', '.join(col.allowed)}", "{v!r}")
                count_unknown_values(notes, col.name, text[not_allowed].tolist(), required=col.required)
                bad |= not_allowed
            out[col.name] = text.where((text != "") & ~bad, None)
            missing = (text == "") & ~nested
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
        rebuilt = _records_json(bad_frame.loc[missing_raw].drop(columns=[c for c in _BOOKKEEPING if c in bad_frame.columns]))
        raw_col = raw_col.copy()
        raw_col.loc[bad_frame.index[missing_raw]] = rebuilt
    for name, naive in naive_masks.items():
        k = int((naive.to_numpy() & ~bad_mask).sum())
        if k:
            notes[f"{name}: naive timestamps taken as UTC"] += k
    extra = [c for c in frame.columns if c not in table.fields and c not in _BOOKKEEPING]
    if extra and n_ok:
        notes[f"columns kept in properties: {', '.join(extra[:8])}{' ...' if len(extra) > 8 else ''}"] += n_ok
    if value_notes is not None and pending:
        key = out[table.key[0]] if table.key and table.key[0] in out else pd.Series([None] * n, index=index)
        lines = frame["_line"].to_numpy()
        for i, name, value, reason in sorted(pending, key=lambda p: (p[0], p[1])):
            if not bad_mask[i]:
                row_key = key.iloc[i]
                value_notes.append((int(lines[i]), None if row_key is None else str(row_key), name, value, reason))
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
        reasons[i].append(template.format(v=_shown(values.iloc[i])))


def _shown(v: Any) -> Any:
    return v if not isinstance(v, str) or len(v) <= 60 else v[:57] + "..."


def _note_value(v: Any) -> str | None:
    """Return the raw text of a value for ``ingest_notes.value``."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    if isinstance(v, (dict, list)):
        return json.dumps(v, default=str)[:200]
    if isinstance(v, pd.Timestamp):
        return v.isoformat()
    return str(v)[:200]


def _invisible(text: pd.Series) -> list[tuple[int, str]]:
    """Positions of ids holding an invisible character, with what was found."""
    out: list[tuple[int, str]] = []
    suspect = np.flatnonzero(text.str.contains(r"[^\x20-\x7e]", regex=True).to_numpy(dtype=bool))
    for i in suspect:
        value = text.iloc[i]
        for ch in value:
            if unicodedata.category(ch) in INVISIBLE_CATEGORIES:
                label = unicodedata.name(ch, "control character")
                out.append((int(i), f"invisible character U+{ord(ch):04X} ({label}) in the id; ids may not hold invisible characters"))
                break
    return out


def _as_text(values: pd.Series) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(values):
        return values.map(lambda v: "" if pd.isna(v) else v.isoformat())
    present = values.notna()
    text = values.astype(object).where(present, "")
    try:
        return text.astype(str)
    except UnicodeDecodeError:  # Parquet bytes that are not UTF-8 (their rows are refused: see arrow_problems)
        return text.map(lambda v: v.decode("utf-8", "replace") if isinstance(v, bytes) else v).astype(str)


def _parse_timestamps(values: pd.Series) -> tuple[pd.Series, pd.Series, pd.Series, pd.Series]:
    """Parse to UTC. Returns (parsed, bad mask, naive mask, none-sentinel mask)."""
    if pd.api.types.is_datetime64_any_dtype(values):
        if getattr(values.dt, "tz", None) is None:
            naive_mask = values.notna()
            parsed = values.dt.tz_localize("UTC")
        else:
            naive_mask = pd.Series(False, index=values.index)
            parsed = values.dt.tz_convert("UTC")
        sentinel = parsed.notna() & pd.Series(
            [f"{y:04d}-{m:02d}-{d:02d}" in NONE_SENTINEL_DATES for y, m, d in _sentinel_candidates(parsed)],
            index=values.index,
            dtype=bool,
        )
        return parsed, pd.Series(False, index=values.index), naive_mask, sentinel
    text = _as_text(values).str.strip()
    present = text != ""
    shaped = present & text.str.match(_TS_RE)
    parsed = pd.to_datetime(text.where(shaped, None), utc=True, format="ISO8601", errors="coerce")
    sentinel = shaped & text.str[:10].isin(NONE_SENTINEL_DATES)
    far = shaped & parsed.isna() & ~sentinel
    if far.any():  # outside the nanosecond range of pandas: years 1-1677 and 2262-9999
        found = {i: ts for i, ts in ((i, _parse_far(text.loc[i])) for i in text.index[far]) if ts is not None}
        if found:
            parsed = parsed.astype("datetime64[us, UTC]")
            micros = np.array(list(found.values()), dtype="datetime64[us]")
            parsed.loc[list(found)] = pd.DatetimeIndex(micros).tz_localize("UTC")
    bad = present & parsed.isna() & ~sentinel
    naive_mask = present & ~bad & ~text.str.contains(_OFFSET_RE, regex=True)
    return parsed, bad, naive_mask, sentinel


def _sentinel_candidates(parsed: pd.Series) -> list[tuple[int, int, int]]:
    """(year, month, day) per value, (0, 0, 0) where the year cannot be a sentinel's."""
    years = parsed.dt.year.fillna(0).astype(int).to_numpy()
    months = parsed.dt.month.fillna(0).astype(int).to_numpy()
    days = parsed.dt.day.fillna(0).astype(int).to_numpy()
    return [(y, m, d) if y in (1, 9999) else (0, 0, 0) for y, m, d in zip(years, months, days, strict=True)]


def _parse_far(text: str) -> int | None:
    """Parse an ISO-8601 text outside pandas' nanosecond range to microseconds since 1970 UTC; None if invalid."""
    text = _SPACED_OFFSET_RE.sub(r"\1", text)
    if text.endswith("z"):
        text = text[:-1] + "Z"
    try:
        value = dt.datetime.fromisoformat(text)
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return (value.astimezone(dt.UTC) - _EPOCH) // dt.timedelta(microseconds=1)
    except (ValueError, OverflowError):
        return None


def _properties(frame: pd.DataFrame, table: Table) -> tuple[pd.Series, list[str]]:
    """Merge the ``properties`` column with non-canonical columns into JSON text.

    Returns the JSON text per row (None when empty) and a problem per row ("" when fine).
    """
    extra = [c for c in frame.columns if c not in table.fields and c not in _BOOKKEEPING]
    col = table.extra_column or "properties"
    base = frame[col].tolist() if col in frame.columns else [None] * len(frame)
    out: list[str | None] = []
    bad: list[str] = []
    extra_vals = [frame[c].tolist() for c in extra]
    for i, v in enumerate(base):
        try:
            text, problem = _properties_row(v, col, {name: vals[i] for name, vals in zip(extra, extra_vals, strict=True)})
        except Exception as exc:  # one record never takes the file down
            text, problem = None, f"column {col}: could not be read ({type(exc).__name__}: {exc})"
        out.append(text)
        bad.append(problem)
    return pd.Series(out, index=frame.index, dtype=object), bad


def _properties_row(v: Any, col: str, extras: dict[str, Any]) -> tuple[str | None, str]:
    problem = ""
    obj: dict[str, Any] | None = None
    text: str | None = None
    if isinstance(v, dict):
        obj = v
    elif v is None or (isinstance(v, float) and math.isnan(v)) or (isinstance(v, str) and not v.strip()):
        pass
    elif isinstance(v, str):
        try:
            parsed = _json_loads(v)
        except json.JSONDecodeError:
            problem = f"column {col}: expected a JSON object, found {v[:60]!r}"
        except (ValueError, RecursionError) as exc:
            problem = f"column {col}: {_json_error(exc)}"
        else:
            if isinstance(parsed, dict):
                inner = _json_problem(parsed)
                if inner:
                    problem = f"column {col}: {inner}"
                else:
                    obj, text = parsed, v.strip()
            else:
                problem = f"column {col}: expected a JSON object, found {type(parsed).__name__}"
    else:
        problem = f"column {col}: expected a JSON object, found {type(v).__name__}"
    if extras and not problem:
        adds = {name: _plain(x) for name, x in extras.items()}
        adds = {k: x for k, x in adds.items() if x not in (None, "")}
        if adds:
            obj, text = {**adds, **(obj or {})}, None
    if text is None and obj:
        text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return (text if obj else None), problem


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


def _cut(raw: str) -> str:
    return raw if len(raw) <= MAX_RAW_CHARS else raw[:MAX_RAW_CHARS] + f"... [{len(raw):,} characters]"


def _line_raw(line: str) -> str:
    """Return a physical CSV line as quarantine text (bytes that are not UTF-8 shown as U+FFFD)."""
    line = line.rstrip("\r\n")
    if not line.isascii():
        line = line.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return _cut(line)


def csv_raw_text(fields: list[str]) -> str:
    """Return a CSV record as quarantine text: the fields written back as one CSV line, cut to :data:`MAX_RAW_CHARS`."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="").writerow(
        [f.encode("utf-8", "surrogateescape").decode("utf-8", "replace") if not f.isascii() else f for f in fields]
    )
    return _cut(buf.getvalue())


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
