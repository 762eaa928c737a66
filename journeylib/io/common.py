"""Shared machinery of the vendor readers.

Every vendor reader turns one export file into a stream of *parts*:

* :class:`Part` — canonical rows for ``events``, ``tickets`` or ``messages``
  (with the source ids each row refers to in ``_person_ref`` and
  ``_account_ref``), identity observations for ``identities`` (the records
  that say who a source id is: an e-mail, a CRM account id, a company name),
  or rejected input rows for ``rejects`` (``line``, ``raw``, ``reason``);
* :class:`LinesBlock` — a block of raw JSON Lines plus a
  :class:`~journeylib.store.staging.JsonLinesSpec`, parsed by the store's SQL engine
  (Mixpanel, Amplitude: millions of events, never a Python loop per line).

Readers never touch the store; :mod:`journeylib.store.sources` stages the parts,
merges them and resolves identities.

Source ids
----------
A source id is ``<kind>:<vendor id>`` within a source, e.g. ``user:123`` and
``organization:45`` in Zendesk, ``distinct_id:abc`` in Mixpanel,
``email:jane@acme.com`` in SendGrid. ``identity_map`` resolves each
``(source, source_id)`` to a ``customer_id`` and a ``user_id``.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections import Counter
from collections.abc import Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
import pandas as pd

from journeylib.exceptions import SourceFormatError
from journeylib.store.staging import JsonLinesSpec

#: Raw content kept for one quarantined row, in characters.
MAX_RAW_CHARS = 4_000
#: Bytes of JSON Lines handed to the engine at once (bounds memory).
BLOCK_BYTES = 64 << 20

#: Free-mail domains: an address there never identifies an account by its domain.
FREE_MAIL_DOMAINS: frozenset[str] = frozenset(
    {
        "gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "hotmail.co.uk", "live.com", "msn.com",
        "yahoo.com", "yahoo.co.uk", "yahoo.fr", "ymail.com", "aol.com", "icloud.com", "me.com", "mac.com",
        "proton.me", "protonmail.com", "gmx.com", "gmx.de", "gmx.net", "web.de", "mail.com", "zoho.com",
        "yandex.com", "yandex.ru", "mail.ru", "qq.com", "163.com", "126.com", "fastmail.com", "hey.com",
        "tutanota.com", "orange.fr", "free.fr", "laposte.net", "t-online.de", "libero.it", "btinternet.com",
    }
)  # fmt: skip


@dataclass
class Part:
    """Rows a reader produced for one staging table.

    Attributes
    ----------
    table : str
        ``events``, ``tickets``, ``messages``, ``identities`` or ``rejects``.
    rows : pandas.DataFrame
        For a canonical table: its columns plus ``_person_ref``,
        ``_account_ref``, ``_line``, ``_raw``, ``_file``. For ``identities``:
        the columns of :data:`journeylib.store.staging.IDENTITY_COLUMNS` plus
        ``_line``, ``_raw``, ``_file``. For ``rejects``: ``line``, ``raw``,
        ``reason``, ``file``.
    """

    table: str
    rows: pd.DataFrame


@dataclass
class LinesBlock:
    """A block of JSON Lines for the engine to parse in SQL.

    Attributes
    ----------
    raw : pyarrow.BinaryArray
        One element per physical line, newline excluded.
    first_line : int
        1-based line number of the first element.
    spec : journeylib.store.staging.JsonLinesSpec
        What to extract.
    file : str
        File label for quarantine rows (``archive.zip!member`` inside archives).
    """

    raw: Any
    first_line: int
    spec: JsonLinesSpec
    file: str


@dataclass
class ReadContext:
    """What a reader needs besides the file.

    Attributes
    ----------
    source : str
        Source label (``events.source``, ``identity_map.source``).
    options : mapping
        Reader options from ``sources.yaml``.
    notes : collections.Counter
        Assumptions made while reading, with counts.
    """

    source: str
    options: Mapping[str, Any] = field(default_factory=dict)
    notes: Counter[str] = field(default_factory=Counter)


# -- files ---------------------------------------------------------------------
def read_bytes(path: Path) -> bytes:
    """Return a file's bytes, refusing missing, directory and empty files with a message."""
    if not path.exists():
        msg = f"{path}: no such file. Check the path (globs are expanded by your shell or by sources.yaml)."
        raise SourceFormatError(msg)
    if path.is_dir():
        msg = f"{path} is a directory; pass the export files inside it."
        raise SourceFormatError(msg)
    data = path.read_bytes()
    if not data.strip():
        msg = f"{path}: the file is empty. Export it again; nothing was loaded."
        raise SourceFormatError(msg)
    return data


def decode_text(path: Path | str, data: bytes) -> str:
    """Decode UTF-8 (a byte-order mark is dropped) or fail naming the line of the first bad byte."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        msg = (
            f"{path}: line {line}: bytes that are not valid UTF-8 (byte {exc.start}). "
            "The reader expects UTF-8 JSON as the vendor's API returns it; re-export or convert the file "
            "(e.g. `iconv -f latin1 -t utf-8`); nothing was loaded."
        )
        raise SourceFormatError(msg) from exc


def iter_line_blocks(stream: Iterable[bytes] | io.BufferedIOBase, *, block_bytes: int | None = None) -> Iterator[tuple[int, Any]]:
    r"""Split a byte stream into blocks of lines without a Python loop per line.

    The block's bytes are handed to Arrow without a copy: each element is one
    physical line *including* its trailing ``\n`` (JSON white space, like a
    ``\r`` before it), which the SQL parser ignores. Each block is read into
    a fresh buffer after the unfinished last line of the previous one, so the
    bytes are copied once, from the stream.

    Parameters
    ----------
    stream : binary file object
        Read with ``.readinto()`` (or ``.read(block_bytes)``).
    block_bytes : int, optional
        Approximate bytes per block (default :data:`BLOCK_BYTES`).

    Yields
    ------
    (int, pyarrow.LargeBinaryArray)
        1-based line number of the block's first line, and its lines.
    """
    import pyarrow as pa

    full = block_bytes or BLOCK_BYTES
    # the first block is smaller: the engine starts parsing sooner, while the next one is read
    size = max(full // 8, 1)
    readinto = getattr(stream, "readinto", None)
    rest = b""
    line = 1
    first = True
    while True:
        buf = bytearray(len(rest) + size)
        size = full
        buf[: len(rest)] = rest
        view = memoryview(buf)
        got, filled = 1, len(rest)
        while filled < len(buf) and got:  # a stream may return less than asked before its end
            if readinto is not None:
                got = readinto(view[filled:]) or 0
            else:
                chunk = stream.read(len(buf) - filled)  # type: ignore[union-attr]
                got = len(chunk)
                view[filled : filled + got] = chunk
            filled += got
        at_end = filled < len(buf)
        if first and (filled >= 3 or at_end):
            if bytes(view[:3]) == b"\xef\xbb\xbf":
                view[:3] = b"   "  # keep offsets; white space is ignored by JSON
            first = False
        if at_end:
            if not filled:
                return
            if view[filled - 1] != 10:  # the last line lacks its newline: there is room for one
                view[filled] = 10
                filled += 1
        data = view[:filled]
        arr_bytes = np.frombuffer(data, dtype=np.uint8)
        nl = np.flatnonzero(arr_bytes == 10)
        if not len(nl):
            rest = bytes(data)
            continue
        cut = int(nl[-1])
        rest = bytes(data[cut + 1 :])
        offsets = np.empty(len(nl) + 1, dtype=np.int64)
        offsets[0] = 0
        offsets[1:] = nl + 1
        body = pa.py_buffer(data[: cut + 1])
        first = False  # the byte-order mark can only open the first line
        yield line, pa.LargeBinaryArray.from_buffers(pa.large_binary(), len(nl), [None, pa.py_buffer(offsets), body])
        line += len(nl)
        if at_end:
            return


def prefetch(blocks: Iterator[Any], depth: int = 1) -> Generator[Any, None, None]:
    """Run *blocks* in a background thread, *depth* items ahead of the consumer.

    Reading and decompressing the next block of a file (which release the
    GIL) then overlap with the engine's parsing of the current one. An
    exception of the producer is raised in the consumer; a consumer that
    stops early stops the producer.

    Parameters
    ----------
    blocks : iterator
        The producer.
    depth : int, default 1
        Items read ahead.

    Yields
    ------
    object
        The items of *blocks*, in order.
    """
    import queue
    import threading

    q: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def run() -> None:
        try:
            for item in blocks:
                while not stop.is_set():
                    try:
                        q.put(("item", item), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(("end", None))
        except BaseException as exc:  # handed to the consumer
            q.put(("error", exc))

    worker = threading.Thread(target=run, name="journeylib-read-ahead", daemon=True)
    worker.start()
    try:
        while True:
            kind, item = q.get()
            if kind == "end":
                return
            if kind == "error":
                raise item
            yield item
    finally:
        stop.set()
        while worker.is_alive():  # unblock a producer waiting on a full queue
            try:
                q.get_nowait()
            except queue.Empty:
                worker.join(0.05)


class BackgroundDigest:
    """The sha256 of a file, computed in a thread while the file is being read.

    ``hashlib`` releases the GIL on large updates, so hashing a big export
    overlaps with reading and parsing it instead of delaying the start.

    Parameters
    ----------
    path : pathlib.Path
        The file.
    """

    def __init__(self, path: Path) -> None:
        import threading

        self._digest: str | None = None
        self._error: BaseException | None = None

        def run() -> None:
            from journeylib.store.ingest import file_sha256

            try:
                self._digest = file_sha256(path)
            except BaseException as exc:  # handed to the caller of result()
                self._error = exc

        self._thread = threading.Thread(target=run, name="journeylib-sha256", daemon=True)
        self._thread.start()

    def done(self) -> bool:
        """Whether the digest is ready (or failed)."""
        return not self._thread.is_alive()

    def result(self) -> str:
        """Wait for the digest and return it as hex; raise what the hashing raised."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._digest is not None
        return self._digest


# -- JSON documents ------------------------------------------------------------
def _line_at(text: str, idx: int, cache: list[int]) -> int:
    """1-based line of character *idx*, counting incrementally from the last call."""
    pos, line = cache
    if idx >= pos:
        line += text.count("\n", pos, idx)
    else:
        line = text.count("\n", 0, idx) + 1
    cache[0], cache[1] = idx, line
    return line


_WS = re.compile(r"[ \t\n\r]*")


def json_records(path: Path, text: str, keys: tuple[str, ...] = ()) -> tuple[dict[str, Any] | list[Any], str | None, list[tuple[int, Any, str]]]:
    """Read a JSON export: a document (object or array) or JSON Lines.

    Parameters
    ----------
    path : pathlib.Path
        For messages.
    text : str
        The decoded file.
    keys : tuple of str
        Top-level keys whose array holds the records (``tickets``,
        ``users``, ...). The first one present is used.

    Returns
    -------
    top : dict or list
        The top-level object (without the records array) or ``[]``.
    key : str or None
        The key the records came from (``None`` for a top-level array or JSON Lines).
    records : list of (int, object, str)
        ``(line, value, raw)`` per record; *value* is ``None`` when the line
        is not valid JSON (JSON Lines only), with *raw* the line.

    Raises
    ------
    SourceFormatError
        If the file is neither a JSON document nor JSON Lines; the message
        names the line and column.
    """
    dec = json.JSONDecoder()
    cache = [0, 1]
    stripped = text.lstrip()
    offset = len(text) - len(stripped)
    if not stripped:
        msg = f"{path}: the file holds only white space; nothing was loaded."
        raise SourceFormatError(msg)
    try:
        first, end = dec.raw_decode(text, offset)
        whole = not text[end:].strip()
    except json.JSONDecodeError as exc:
        first, whole = None, False
        doc_error = exc
    if whole and isinstance(first, dict):
        key = next((k for k in keys if isinstance(first.get(k), list)), None)
        if key is None:
            return first, None, [(1, first, text[offset:][:MAX_RAW_CHARS])]
        return _records_in_object(path, text, key, dec, cache)
    if whole and isinstance(first, list):
        return [], None, _array_elements(text, offset, dec, cache)
    # JSON Lines: one value per line
    records: list[tuple[int, Any, str]] = []
    n_ok = 0
    for lineno, line in enumerate(text.split("\n"), start=1):
        s = line.strip()
        if not s:
            continue
        try:
            records.append((lineno, json.loads(s), s[:MAX_RAW_CHARS]))
            n_ok += 1
        except json.JSONDecodeError:
            records.append((lineno, None, s[:MAX_RAW_CHARS]))
    if n_ok == 0:
        err = doc_error if first is None else None
        where = f" at line {err.lineno}, column {err.colno} ({err.msg})" if err else ""
        msg = (
            f"{path}: not JSON{where}. The reader expects the vendor's JSON export (a document or one JSON object "
            "per line); check that the download finished; nothing was loaded."
        )
        raise SourceFormatError(msg)
    return [], None, records


def _array_elements(text: str, start: int, dec: json.JSONDecoder, cache: list[int]) -> list[tuple[int, Any, str]]:
    """Decode the elements of the array starting at *start* (a ``[``), with their lines."""
    out: list[tuple[int, Any, str]] = []
    i = _WS.match(text, start + 1).end()  # type: ignore[union-attr]
    if text[i] == "]":
        return out
    while True:
        value, end = dec.raw_decode(text, i)
        out.append((_line_at(text, i, cache), value, text[i:end][:MAX_RAW_CHARS]))
        i = _WS.match(text, end).end()  # type: ignore[union-attr]
        if text[i] == "]":
            return out
        i = _WS.match(text, i + 1).end()  # type: ignore[union-attr]  # skip the comma


def _records_in_object(path: Path, text: str, key: str, dec: json.JSONDecoder, cache: list[int]) -> tuple[dict[str, Any], str, list[tuple[int, Any, str]]]:
    """Walk the top-level object to find ``key``'s array and decode its elements with line numbers."""
    top: dict[str, Any] = {}
    i = _WS.match(text, text.index("{") + 1).end()  # type: ignore[union-attr]
    records: list[tuple[int, Any, str]] = []
    while text[i] != "}":
        k, i = dec.raw_decode(text, i)
        i = _WS.match(text, i).end()  # type: ignore[union-attr]
        i = _WS.match(text, i + 1).end()  # type: ignore[union-attr]  # the colon
        if k == key and text[i] == "[":
            records = _array_elements(text, i, dec, cache)
            _, i = dec.raw_decode(text, i)  # skip the array
        else:
            top[k], i = dec.raw_decode(text, i)
        i = _WS.match(text, i).end()  # type: ignore[union-attr]
        if text[i] == ",":
            i = _WS.match(text, i + 1).end()  # type: ignore[union-attr]
    return top, key, records


# -- CSV -------------------------------------------------------------------------
def read_csv_records(path: Path, data: bytes) -> tuple[list[str], list[tuple[int, list[str], str]], list[tuple[int, str, str]]]:
    """Read a CRM CSV export with physical line numbers.

    A UTF-8 byte-order mark is dropped (Salesforce and Excel write one). A
    header that is not UTF-8 fails the whole file; a row with bytes that are
    not UTF-8, or with the wrong number of fields, is rejected.

    Parameters
    ----------
    path : pathlib.Path
        For messages.
    data : bytes
        The file's content.

    Returns
    -------
    header : list of str
        Column names, stripped.
    rows : list of (int, list of str, str)
        ``(line, fields, raw)`` per good row.
    rejects : list of (int, str, str)
        ``(line, raw, reason)`` per refused row.
    """
    if b"\x00" in data[:8192]:
        msg = f"{path}: binary content (NUL bytes) — not a CSV export. Export the object as UTF-8 CSV; nothing was loaded."
        raise SourceFormatError(msg)
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    text = data.decode("utf-8", errors="surrogateescape")
    csv.field_size_limit(max(csv.field_size_limit(), 64_000_000))
    reader = csv.reader(io.StringIO(text, newline=""), strict=False)
    try:
        header = [h.strip() for h in next(reader)]
    except (StopIteration, csv.Error) as exc:
        msg = f"{path}: cannot read a CSV header ({exc}). The first line must name the columns; nothing was loaded."
        raise SourceFormatError(msg) from exc
    if any(_has_surrogate(h) for h in header):
        msg = f"{path}: line 1: the header is not valid UTF-8. Export the file as UTF-8 CSV; nothing was loaded."
        raise SourceFormatError(msg)
    rows: list[tuple[int, list[str], str]] = []
    rejects: list[tuple[int, str, str]] = []
    prev = reader.line_num
    width = len(header)
    while True:
        start = prev + 1
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            prev = reader.line_num
            rejects.append((start, "", f"unreadable CSV row: {exc}"))
            continue
        prev = reader.line_num
        if not fields or (len(fields) == 1 and not fields[0].strip()):
            continue
        raw = _csv_raw(fields)
        if len(fields) != width:
            rejects.append((start, raw, f"expected {width} fields as in the header, found {len(fields)}"))
        elif any(_has_surrogate(f) for f in fields):
            bad = next(header[i] for i, f in enumerate(fields) if _has_surrogate(f))
            rejects.append((start, raw, f"column {bad}: bytes that are not valid UTF-8"))
        else:
            rows.append((start, fields, raw))
    return header, rows, rejects


def _has_surrogate(text: str) -> bool:
    return not text.isascii() and any("\udc80" <= ch <= "\udcff" for ch in text)


def _csv_raw(fields: list[str]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="").writerow([f.encode("utf-8", "surrogateescape").decode("utf-8", "replace") for f in fields])
    return buf.getvalue()[:MAX_RAW_CHARS]


def require_columns(path: Path, header: list[str], kind: str, required: tuple[str, ...], hint: str = "") -> None:
    """Fail the file if *header* lacks a required column, naming expected and found columns."""
    missing = [c for c in required if c not in header]
    if missing:
        found = ", ".join(repr(h) for h in header[:12]) + (" ..." if len(header) > 12 else "")
        msg = (
            f"{path}: line 1: the {kind} export lacks column(s) {', '.join(repr(m) for m in missing)}. "
            f"Expected at least {', '.join(required)}; found {found}. {hint or 'Export the object again with its default column names'}; "
            "nothing was loaded."
        )
        raise SourceFormatError(msg)


# -- values ------------------------------------------------------------------------
def clean(value: Any) -> Any:
    """Return *value* with empty strings, NaN and NaT turned into ``None``."""
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, str):
        s = value.strip()
        return s or None
    return value


def text_id(value: Any) -> str | None:
    """Return an id as text (``12.0`` → ``"12"``), or ``None`` when empty."""
    value = clean(value)
    if value is None or isinstance(value, (dict, list)):
        return None
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def norm_email(value: Any, *, plus_addressing: bool = False) -> str | None:
    """Normalise an e-mail address: trimmed, lower case; ``a+tag@x`` → ``a@x`` only if asked.

    Parameters
    ----------
    value : object
        The address (anything else gives ``None``).
    plus_addressing : bool, default False
        Drop a ``+tag`` from the local part.

    Returns
    -------
    str or None
        The normalised address, or ``None`` when *value* is not an address.
    """
    if not isinstance(value, str):
        return None
    s = value.strip().strip("<>").strip().lower()
    if s.count("@") != 1 or " " in s:
        return None
    local, domain = s.split("@")
    if not local or "." not in domain:
        return None
    if plus_addressing and "+" in local:
        local = local.split("+", 1)[0]
    return f"{local}@{domain}"


def email_domain(email: str | None) -> str | None:
    """Return the domain of a normalised address, or ``None``."""
    return email.split("@", 1)[1] if email and "@" in email else None


def web_domain(value: Any) -> str | None:
    """Return the bare domain of a website or domain text (``https://www.Acme.io/x`` → ``acme.io``)."""
    value = clean(value)
    if not isinstance(value, str):
        return None
    s = value.lower()
    if "@" in s:
        return email_domain(norm_email(s))
    host = urlparse(s if "//" in s else "//" + s).hostname or ""
    host = host.removeprefix("www.")
    return host if "." in host else None


def json_text(obj: Mapping[str, Any] | None) -> str | None:
    """Serialise a properties object deterministically (sorted keys, compact); empty gives ``None``."""
    if not obj:
        return None
    return json.dumps({k: v for k, v in obj.items() if v is not None}, sort_keys=True, separators=(",", ":"), default=str) or None


def first(obj: Mapping[str, Any], *names: str) -> Any:
    """Return the first non-empty value of *obj* among *names* (dotted names walk nested objects)."""
    for name in names:
        cur: Any = obj
        for part in name.split("."):
            cur = cur.get(part) if isinstance(cur, Mapping) else None
        if clean(cur) is not None:
            return cur
    return None


def rejects_frame(rows: Sequence[tuple[int | None, str, str]], file: str) -> pd.DataFrame:
    """Build a ``rejects`` part frame from ``(line, raw, reason)`` tuples."""
    return pd.DataFrame(
        {
            "line": pd.array([r[0] for r in rows], dtype="Int64"),
            "raw": [r[1][:MAX_RAW_CHARS] if r[1] else "" for r in rows],
            "reason": [r[2] for r in rows],
            "file": [file] * len(rows),
        }
    )


def as_dict(obj: Any) -> dict[str, Any]:
    """Return *obj* if it is a dict, else an empty dict (for optional nested objects)."""
    return obj if isinstance(obj, dict) else {}


# -- record-by-record readers (CRM, support, e-mail: thousands of rows, not millions) --
_EPOCH_RE = re.compile(r"^\s*-?\d{9,13}(\.\d+)?\s*$")


def parse_ts(value: Any) -> tuple[datetime | None, bool]:
    """Parse one timestamp to an aware UTC datetime.

    Accepts epoch seconds or milliseconds (numbers or digit strings) and
    ISO-8601 text; an offset is honoured and a naive time is taken as UTC.

    Parameters
    ----------
    value : object
        The raw value.

    Returns
    -------
    (datetime or None, bool)
        The time (None when missing or bad) and whether a present value was
        not a timestamp.
    """
    value = clean(value)
    if value is None:
        return None, False
    if isinstance(value, bool):
        return None, True
    if isinstance(value, (int, float)) or (isinstance(value, str) and _EPOCH_RE.match(value)):
        try:
            num = float(value)
            if abs(num) > 1e11:
                num /= 1000.0
            return datetime.fromtimestamp(num, tz=UTC), False
        except (ValueError, OverflowError, OSError):
            return None, True
    if not isinstance(value, str):
        return None, True
    s = value.strip().replace(" UTC", "Z")
    if re.search(r"[+-]\d{4}$", s):  # Salesforce: 2024-01-05T10:22:00.000+0000
        s = s[:-2] + ":" + s[-2:]
    try:
        dt = datetime.fromisoformat(s)
    except ValueError:
        return None, True
    if dt.tzinfo is None:
        return dt.replace(tzinfo=UTC), False
    return dt.astimezone(UTC), False


class RecordSink:
    """Collects the rows of a record-by-record reader, then hands them over as parts.

    Parameters
    ----------
    file : str
        File label for every row.
    """

    def __init__(self, file: str) -> None:
        self.file = file
        self.tables: dict[str, list[dict[str, Any]]] = {}
        self.rejects: list[tuple[int | None, str, str]] = []

    def add(self, table: str, line: int | None, raw: str, **cols: Any) -> None:
        """Add one row to *table* (``events``, ``tickets``, ``messages`` or ``identities``)."""
        cols["_line"] = line
        cols["_raw"] = raw[:MAX_RAW_CHARS]
        self.tables.setdefault(table, []).append(cols)

    def reject(self, line: int | None, raw: str, reason: str) -> None:
        """Refuse one input record with its reason."""
        self.rejects.append((line, raw, reason))

    def parts(self) -> Iterator[Part]:
        """Yield one part per table that received rows, and the rejects."""
        for table, rows in self.tables.items():
            frame = pd.DataFrame(rows)
            frame["_file"] = self.file
            for col in frame.columns:
                if col in ("timestamp", "created_at", "solved_at", "updated_at") and len(frame):
                    frame[col] = pd.to_datetime(frame[col], utc=True)
            yield Part(table, frame)
        if self.rejects:
            yield Part("rejects", rejects_frame(self.rejects, self.file))


def raw_json(obj: Any) -> str:
    """Compact JSON of a record, for the quarantine's ``raw`` column."""
    return json.dumps(obj, separators=(",", ":"), default=str, ensure_ascii=False)[:MAX_RAW_CHARS]


def missing_fields(obj: Mapping[str, Any], *names: str) -> str | None:
    """Return a reason naming the first missing required field of *obj*, or ``None``."""
    miss = [n for n in names if first(obj, n) is None]
    return f"missing required field(s) {', '.join(miss)}" if miss else None


def epoch_key(dt: datetime | None) -> str:
    """Return whole epoch seconds of *dt* as text (for ids that include a time)."""
    return str(int(dt.timestamp())) if dt else ""


#: Default property names (analytics user/event properties) that hold an explicit CRM account id.
ACCOUNT_ID_PROPERTIES: tuple[str, ...] = ("salesforce_account_id", "sfdc_account_id", "crm_account_id", "hubspot_company_id")


def json_path_key(key: str) -> str:
    """Return *key* quoted for use as one step of a JSON path (``$.properties."<key>"``)."""
    return '"' + key.replace('"', '\\"') + '"'
