r"""Shared machinery of the vendor readers.

Every vendor reader turns one export file into a stream of *parts*:

* :class:`Part` — canonical rows for ``events``, ``tickets`` or ``messages``
  (with the source ids each row refers to in ``_person_ref`` and
  ``_account_ref``), identity observations for ``identities`` (the records
  that say who a source id is: an e-mail, a CRM account id, a company name),
  rejected input rows for ``rejects`` (``line``, ``raw``, ``reason``), or
  ``notes``: optional values that could not be read and were stored empty
  (``line``, ``table_name``, ``row_key``, ``field``, ``value``, ``reason``);
* :class:`LinesBlock` — a block of raw JSON Lines plus a
  :class:`~journeylib.store.staging.JsonLinesSpec`, parsed by the store's SQL engine
  (Mixpanel, Amplitude: millions of events, never a Python loop per line).

Readers never touch the store; :mod:`journeylib.store.sources` stages the parts,
merges them and resolves identities.

Nothing unread is silent
------------------------
A record that cannot be read is quarantined with its reason: a required
field missing or unreadable; a value holding a NUL character, a lone UTF-16
surrogate (``"\ud800"``) or a number that is not finite (``NaN``,
``Infinity``, ``1e999``); a field longer than :attr:`Caps.max_field_bytes`;
JSON nested deeper than :attr:`Caps.max_json_depth`; or any error while
reading it (:meth:`RecordSink.record`). An optional value that cannot be read
(a date that is not a date, an MRR that is not a number) is stored empty and
noted with its file, line, field and value (:meth:`RecordSink.note`). A file
is refused as a whole only when it cannot be read at all: not the vendor's
format, or a compressed stream that inflates beyond
:attr:`Caps.max_decompressed_bytes` or :attr:`Caps.max_compression_ratio`
(:func:`open_inflating`).

Source ids
----------
A source id is ``<kind>:<vendor id>`` within a source, e.g. ``user:123`` and
``organization:45`` in Zendesk, ``distinct_id:abc`` in Mixpanel,
``email:jane@acme.com`` in SendGrid. ``identity_map`` resolves each
``(source, source_id)`` to a ``customer_id`` and a ``user_id``.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import io
import json
import math
import re
from collections import Counter
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from journeylib.exceptions import SourceFormatError
from journeylib.store.staging import JsonLinesSpec

#: Raw content kept for one quarantined row, in characters.
MAX_RAW_CHARS = 4_000
#: Bytes of JSON Lines handed to the engine at once (bounds memory).
BLOCK_BYTES = 64 << 20

#: Bytes asked of the stream per read while a block is filled. An inflating stream (gzip) returns
#: each read as a new bytes object, then copied into the block: asked for the rest of a 64 MiB
#: block at once, it allocated outputs of megabytes whose pages were faulted in afresh every time
#: (reading a 3M-line Amplitude export, 8 gzip members: 2.9-3.0 CPU-s and 680k page faults
#: before, 2.3-2.4 and 420k with these reads and the reused block buffers). Which bytes a block
#: holds does not depend on it.
READ_BYTES = 1 << 20

#: Default of :attr:`Caps.max_field_bytes`: 1 MiB.
MAX_FIELD_BYTES = 1 << 20
#: Default of :attr:`Caps.max_json_depth`.
MAX_JSON_DEPTH = 64
#: Default of :attr:`Caps.max_decompressed_bytes`: 2 GiB (per gzip stream or zip member).
MAX_DECOMPRESSED_BYTES = 2 << 30
#: Default of :attr:`Caps.max_compression_ratio`.
MAX_COMPRESSION_RATIO = 200
#: Inflated bytes of a stream below which its ratio is not checked (small files compress well too).
RATIO_CHECK_FROM_BYTES = 1 << 20

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
        ``events``, ``tickets``, ``messages``, ``identities``, ``rejects`` or ``notes``.
    rows : pandas.DataFrame
        For a canonical table: its columns plus ``_person_ref``,
        ``_account_ref``, ``_line``, ``_raw``, ``_file``. For ``identities``:
        the columns of :data:`journeylib.store.staging.IDENTITY_COLUMNS` plus
        ``_line``, ``_raw``, ``_file``. For ``rejects``: ``line``, ``raw``,
        ``reason``, ``file``. For ``notes``: ``line``, ``table_name``,
        ``row_key``, ``field``, ``value``, ``reason``, ``file``.
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


@dataclass(frozen=True)
class Caps:
    """Limits that keep one record or one file from taking a load down.

    Each is a reader option of ``sources.yaml`` with the same name
    (``options: {max_field_bytes: 4194304}``); a record beyond a field or
    depth cap is quarantined with the reason, a file beyond an inflation cap
    is refused (nothing of it is loaded) and the ingest goes on with the
    next file.

    Parameters
    ----------
    max_field_bytes : int, default 1 MiB
        Longest field in UTF-8 bytes: a CSV field, a JSON string (or key),
        and a whole line of JSON Lines read by the engine (Mixpanel,
        Amplitude), whose one line is one event.
    max_json_depth : int, default 64
        Deepest nesting of JSON objects and arrays in one record (the
        record itself is level 1).
    max_decompressed_bytes : int, default 2 GiB
        Most bytes one gzip stream or zip member inflates to (an Amplitude
        archive is checked member by member).
    max_compression_ratio : float, default 200
        Highest ratio of inflated to compressed bytes of a gzip stream or
        zip member, checked once it has inflated to 1 MiB (JSON exports
        compress about 5-30:1; zip and gzip bombs 1000:1).
    """

    max_field_bytes: int = MAX_FIELD_BYTES
    max_json_depth: int = MAX_JSON_DEPTH
    max_decompressed_bytes: int = MAX_DECOMPRESSED_BYTES
    max_compression_ratio: float = MAX_COMPRESSION_RATIO

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> Caps:
        """Return the caps set in reader *options* (``sources.yaml``), the defaults for the others."""
        return cls(**{f.name: options[f.name] for f in fields(cls) if options.get(f.name) is not None})


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

    @property
    def caps(self) -> Caps:
        """The caps of :attr:`options` (:meth:`Caps.from_options`)."""
        return Caps.from_options(self.options)


# -- files ---------------------------------------------------------------------
def read_bytes(path: Path) -> bytes:
    """Return a file's bytes, refusing missing, directory, unreadable and empty files with a message."""
    if not path.exists():
        msg = f"{path}: no such file. Check the path (globs are expanded by your shell or by sources.yaml)."
        raise SourceFormatError(msg)
    if path.is_dir():
        msg = f"{path} is a directory; pass the export files inside it."
        raise SourceFormatError(msg)
    try:
        data = path.read_bytes()
    except OSError as exc:
        msg = f"{path}: cannot read the file ({exc.strerror or exc}). Check that it exists and that you may read it; nothing was loaded."
        raise SourceFormatError(msg) from exc
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


class _BlockBuffers:
    """Buffers for the blocks of one :func:`iter_line_blocks`, each reused once nothing refers to its bytes.

    A block's lines are handed to Arrow without a copy, so its buffer stays
    in use until the last Arrow array over it is gone (the engine has parsed
    the block). A fresh 64 MiB buffer per block cost its zeroing and a page
    fault per 4 KiB on first touch (0.86 against 0.45 CPU-s to read a 3M-line,
    850 MB Mixpanel export); a buffer of an earlier block is taken again
    instead once no view of it is left (a ``bytearray`` with a live view
    cannot be resized: that is the test), so no byte a block holds is ever
    overwritten. At most :attr:`KEEP` buffers are kept; a block needing more
    room than a kept buffer has gets a new one. The stream's last block lets
    them go (:meth:`release`), so none is held while its rows are merged.
    """

    #: Buffers kept for reuse (the block being parsed, the one read ahead, the one being read).
    KEEP = 3

    def __init__(self, *, slack: int) -> None:
        self._kept: list[bytearray] = []
        self._slack = slack

    def get(self, size: int) -> memoryview:
        """Return a writable view of *size* bytes that nothing else refers to (contents undefined)."""
        for i, buf in enumerate(self._kept):
            if len(buf) >= size and _unreferenced(buf):
                self._kept.append(self._kept.pop(i))  # most recently used last
                return memoryview(buf)[:size]
        buf = bytearray(size + self._slack)  # room for a longer unfinished line next time
        self._kept.append(buf)
        if len(self._kept) > self.KEEP:
            del self._kept[0]  # freed by whoever still refers to it
        return memoryview(buf)[:size]

    def release(self) -> None:
        """Keep no buffer any more (each is freed once the blocks over it are gone)."""
        self._kept.clear()


def _unreferenced(buf: bytearray) -> bool:
    """Whether no view (memoryview, numpy or Arrow buffer) of *buf* is alive: only then can it be resized."""
    try:
        buf.append(0)
    except BufferError:
        return False
    del buf[-1]
    return True


def iter_line_blocks(
    stream: Iterable[bytes] | io.BufferedIOBase, *, block_bytes: int | None = None, max_line_bytes: int | None = None
) -> Iterator[tuple[int, Any]]:
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
    max_line_bytes : int, optional
        A line longer than this is cut to its first ``max_line_bytes + 1``
        bytes and the rest of it is skipped as it is read, so one endless
        line never has to fit in memory (the parser refuses the cut line as
        too long).

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
    skipping = False  # the unfinished line in `rest` was cut: drop what follows up to its newline
    line = 1
    first = True
    newline = np.empty(0, dtype=bool)
    buffers = _BlockBuffers(slack=full // 16)  # a block's buffer is taken again once the block is gone
    while True:
        view = buffers.get(len(rest) + size)
        size = full
        view[: len(rest)] = rest
        got, filled = 1, len(rest)
        while filled < len(view) and got:  # a stream may return less than asked before its end
            if readinto is not None:
                got = readinto(view[filled : filled + READ_BYTES]) or 0
            else:
                chunk = stream.read(len(view) - filled)  # type: ignore[union-attr]
                got = len(chunk)
                view[filled : filled + got] = chunk
            filled += got
        at_end = filled < len(view)
        if skipping:
            arr_new = np.frombuffer(view[len(rest) : filled], dtype=np.uint8)
            nl_new = np.flatnonzero(arr_new == 10)
            if not len(nl_new) and not at_end:
                continue  # the cut line goes on: read past it
            cut_at = len(rest) + (int(nl_new[0]) if len(nl_new) else filled - len(rest))
            kept = bytes(view[: len(rest)]) + bytes(view[cut_at:filled])
            if at_end and kept and not kept.endswith(b"\n"):
                kept += b"\n"
            buf = bytearray(kept)
            view = memoryview(buf)
            filled = len(kept)
            skipping = False
        if first and (filled >= 3 or at_end):
            if bytes(view[:3]) == b"\xef\xbb\xbf":
                view[:3] = b"   "  # keep offsets; white space is ignored by JSON
            first = False
        if at_end:
            buffers.release()  # the last block: nothing is read into a buffer again
            if not filled:
                return
            if view[filled - 1] != 10:  # the last line lacks its newline: there is room for one
                view[filled] = 10
                filled += 1
        data = view[:filled]
        arr_bytes = np.frombuffer(data, dtype=np.uint8)
        if len(newline) < filled:  # one mask for every block: a fresh one would fault in its pages each time
            newline = np.empty(filled, dtype=bool)
        nl = np.flatnonzero(np.equal(arr_bytes, 10, out=newline[:filled]))
        if not len(nl):
            if max_line_bytes is not None and filled > max_line_bytes + 1:
                rest = bytes(data[: max_line_bytes + 1])
                skipping = True
            else:
                rest = bytes(data)
            continue
        cut = int(nl[-1])
        rest = bytes(data[cut + 1 :])
        if max_line_bytes is not None and len(rest) > max_line_bytes + 1:
            rest = rest[: max_line_bytes + 1]
            skipping = True
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


# -- compressed exports ----------------------------------------------------------
class _CountingReader(io.RawIOBase):
    """A binary stream that counts the bytes read from it (the compressed side of a gzip stream)."""

    def __init__(self, raw: Any) -> None:
        super().__init__()
        self._raw = raw
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        data = self._raw.read(len(b))
        b[: len(data)] = data
        self.count += len(data)
        return len(data)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._raw.close()
        super().close()


class _CappedStream(io.RawIOBase):
    """An inflating stream that stops past the size or ratio cap (see :func:`open_inflating`)."""

    def __init__(self, inner: Any, *, label: str, caps: Caps, compressed: Callable[[], int]) -> None:
        super().__init__()
        self._inner = inner
        self._label = label
        self._caps = caps
        self._compressed = compressed
        self.out = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        n = self._inner.readinto(b) or 0
        self.out += n
        cap, ratio = self._caps.max_decompressed_bytes, self._caps.max_compression_ratio
        if self.out > cap:
            msg = (
                f"{self._label}: inflates to more than {cap:,} bytes (options.max_decompressed_bytes of sources.yaml); "
                "reading stopped there and nothing of the file was loaded. If the export is genuine, raise the cap "
                "for this source; otherwise it is a zip or gzip bomb."
            )
            raise SourceFormatError(msg)
        if self.out > RATIO_CHECK_FROM_BYTES and self.out > ratio * max(self._compressed(), 1):
            msg = (
                f"{self._label}: inflates at more than {ratio:g}:1 ({self.out:,} bytes from {self._compressed():,} compressed "
                "so far; options.max_compression_ratio of sources.yaml), the signature of a zip or gzip bomb; reading stopped "
                "there and nothing of the file was loaded. If the export is genuine, raise the ratio for this source."
            )
            raise SourceFormatError(msg)
        return n

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._inner.close()
        super().close()


def open_inflating(source: Path | Any, *, label: str, caps: Caps, compressed_size: int | None = None) -> Any:
    """Open a file or a zip member for reading, inflating gzip, within the caps.

    Parameters
    ----------
    source : pathlib.Path or binary stream
        A file, or an open zip member (``ZipFile.open``; anything with
        ``peek`` and ``readinto``).
    label : str
        Name for messages (``archive.zip!member`` inside archives).
    caps : Caps
        Every inflating layer (a zip member, a gzip stream) is checked
        against :attr:`Caps.max_decompressed_bytes` and
        :attr:`Caps.max_compression_ratio` (a zip member against its
        compressed size, a gzip stream against the compressed bytes it
        consumed) as it is read.
    compressed_size : int, optional
        For a zip member: its compressed size (the member is then a layer).

    Returns
    -------
    binary stream
        The inflated bytes (the file itself when it is neither gzip nor a
        zip member). Reading raises
        :class:`~journeylib.exceptions.SourceFormatError` as soon as a cap
        is passed, long before a bomb is inflated.
    """
    stream: Any = open(source, "rb") if isinstance(source, Path) else source  # noqa: SIM115 (closed with what is returned)
    if compressed_size is not None:
        stream = io.BufferedReader(_CappedStream(stream, label=label, caps=caps, compressed=lambda: compressed_size))
    if bytes(stream.peek(2)[:2]) != b"\x1f\x8b":
        return stream
    counted = _CountingReader(stream)
    inflated = gzip.GzipFile(fileobj=counted, mode="rb")
    return io.BufferedReader(_CappedStream(inflated, label=label, caps=caps, compressed=lambda: counted.count))


# -- values that cannot be stored ------------------------------------------------
@dataclass(frozen=True)
class BadRecord:
    """A record that was parsed but cannot be loaded, in place of its value (see :func:`json_records`).

    Attributes
    ----------
    reason : str
        Why, in words (for the quarantine row).
    """

    reason: str


class _NonFinite:
    """What ``NaN``, ``Infinity`` and ``-Infinity`` decode to while reading JSON (then refused)."""

    __slots__ = ("token",)

    def __init__(self, token: str) -> None:
        self.token = token


def safe_text(text: str) -> str:
    r"""Return *text* storable in any text column: NUL as ``\u0000`` and lone surrogates as ``\udXXX`` escapes."""
    if text.isascii() and "\x00" not in text:
        return text
    return text.replace("\x00", "\\u0000").encode("utf-8", "backslashreplace").decode("utf-8")


def text_problem(text: str, max_bytes: int = MAX_FIELD_BYTES) -> str | None:
    r"""Return why *text* cannot be stored (NUL, lone surrogate, longer than *max_bytes*), or ``None``.

    Parameters
    ----------
    text : str
        A decoded value.
    max_bytes : int
        The field cap (:attr:`Caps.max_field_bytes`), in UTF-8 bytes.

    Returns
    -------
    str or None
        The reason, e.g. ``"a lone UTF-16 surrogate \ud800, which is not a character"``.
    """
    if "\x00" in text:
        return "a NUL character (\\u0000), which text columns refuse"
    if text.isascii():
        size = len(text)
    elif len(text) * 4 <= max_bytes and not any("\ud800" <= ch <= "\udfff" for ch in text):
        return None
    else:
        try:
            size = len(text.encode("utf-8"))
        except UnicodeEncodeError as exc:
            return f"a lone UTF-16 surrogate \\u{ord(text[exc.start]):04x}, which is not a character"
    if size > max_bytes:
        return f"{size:,} bytes, longer than the cap of {max_bytes:,} (options.max_field_bytes)"
    return None


def _depth_reason(caps: Caps) -> str:
    return f"JSON nested deeper than {caps.max_json_depth} levels (options.max_json_depth); the record was not read"


def value_problem(value: Any, caps: Caps | None = None) -> str | None:
    """Return why a parsed JSON record cannot be loaded, or ``None``.

    Walks the record without recursion: every string and key is checked with
    :func:`text_problem`, every number for being finite, and the nesting
    against :attr:`Caps.max_json_depth`.

    Parameters
    ----------
    value : object
        The record as decoded by :func:`json_records`.
    caps : Caps, optional
        The caps (defaults otherwise).

    Returns
    -------
    str or None
        The reason, naming the field (``subject: a lone UTF-16 surrogate ...``).
    """
    caps = caps or Caps()
    stack: list[tuple[Any, str, int]] = [(value, "", 1)]
    while stack:
        v, path, depth = stack.pop()
        if isinstance(v, str):
            reason = text_problem(v, caps.max_field_bytes)
            if reason:
                return safe_text(f"{path or 'value'}: {reason}")
        elif isinstance(v, dict):
            if depth > caps.max_json_depth:
                return _depth_reason(caps)
            for k, x in v.items():
                key = f"{path}.{k}" if path else str(k)
                if isinstance(k, str) and (reason := text_problem(k, caps.max_field_bytes)):
                    return safe_text(f"key {key}: {reason}")
                stack.append((x, key, depth + 1))
        elif isinstance(v, list):
            if depth > caps.max_json_depth:
                return _depth_reason(caps)
            stack.extend((x, f"{path}[{i}]", depth + 1) for i, x in enumerate(v))
        elif isinstance(v, _NonFinite):
            return safe_text(f"{path or 'value'}: {v.token} is not a finite number; such numbers are refused")
        elif isinstance(v, float) and not math.isfinite(v):
            return safe_text(f"{path or 'value'}: a number too large to represent (read as {v})")
    return None


def unreadable(rec: Any, what: str) -> str | None:
    """Return why a record of :func:`json_records` cannot be read as one JSON object (a *what*), or ``None``.

    Parameters
    ----------
    rec : object
        The value: ``None`` (not JSON), a :class:`BadRecord`, or the decoded record.
    what : str
        What one record is (``ticket``, ``event``), for the message.

    Returns
    -------
    str or None
        ``"not valid JSON"``, the :class:`BadRecord` reason, or
        ``"expected a JSON object per <what>, found <type>"``.
    """
    if rec is None:
        return "not valid JSON"
    if isinstance(rec, BadRecord):
        return rec.reason
    if not isinstance(rec, dict):
        return f"expected a JSON object per {what}, found {type(rec).__name__}"
    return None


def json_line_problem(raw: bytes, caps: Caps) -> str | None:
    r"""Return why one line of JSON Lines cannot be loaded (see :func:`value_problem`), or ``None``.

    The exact check the engine hands the lines it finds suspect
    (:attr:`journeylib.store.staging.JsonLinesSpec.check_line`): the text
    ``NaN`` or ``\u0000`` may sit inside a string, and many brackets need
    not be deep nesting.

    Parameters
    ----------
    raw : bytes
        The line.
    caps : Caps
        The caps.

    Returns
    -------
    str or None
        The reason, or ``None`` for a line that is fine.
    """
    text = bytes(raw).decode("utf-8", "replace").strip()
    try:
        value = json.JSONDecoder(parse_constant=_NonFinite).decode(text)
    except RecursionError:
        return _depth_reason(caps)
    except json.JSONDecodeError:
        return "not valid JSON"
    return value_problem(value, caps)


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
#: One token of a non-recursive scan: a string, a bracket, or a run of anything else.
_SCAN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]|[^"\[\]{}]+', re.S)


def _skip_value(text: str, i: int) -> int:
    """Return the index just past the JSON container starting at *i*, scanning without recursion; -1 if it never closes."""
    depth = 0
    pos = i
    while pos < len(text):
        m = _SCAN.match(text, pos)
        if m is None:  # an unterminated string
            return -1
        pos = m.end()
        c = text[m.start()]
        if c in "[{":
            depth += 1
        elif c in "]}":
            depth -= 1
            if depth == 0:
                return pos
    return -1


def _checked(value: Any, caps: Caps) -> Any:
    """Return *value*, a :class:`BadRecord` in its place, or (a list) the list with its bad elements replaced."""
    if isinstance(value, list):
        return [_checked(v, caps) if isinstance(v, (dict, list)) else (BadRecord(p) if (p := value_problem(v, caps)) else v) for v in value]
    problem = value_problem(value, caps)
    return BadRecord(problem) if problem else value


def json_records(
    path: Path, text: str, keys: tuple[str, ...] = (), caps: Caps | None = None
) -> tuple[dict[str, Any] | list[Any], str | None, list[tuple[int, Any, str]]]:
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
    caps : Caps, optional
        Field and depth caps (defaults otherwise).

    Returns
    -------
    top : dict or list
        The top-level object (without the records array) or ``[]``.
    key : str or None
        The key the records came from (``None`` for a top-level array or JSON Lines).
    records : list of (int, object, str)
        ``(line, value, raw)`` per record; *value* is ``None`` when the line
        is not valid JSON (JSON Lines only), with *raw* the line, and a
        :class:`BadRecord` when the record holds something that cannot be
        stored (:func:`value_problem`: a NUL, a lone surrogate, a number
        that is not finite, a field over the cap, nesting over the cap). A
        JSON Lines line holding an array keeps it, with such elements
        replaced by a :class:`BadRecord`.

    Raises
    ------
    SourceFormatError
        If the file is neither a JSON document nor JSON Lines; the message
        names the line and column.
    """
    caps = caps or Caps()
    dec = json.JSONDecoder(parse_constant=_NonFinite)
    cache = [0, 1]
    stripped = text.lstrip()
    offset = len(text) - len(stripped)
    if not stripped:
        msg = f"{path}: the file holds only white space; nothing was loaded."
        raise SourceFormatError(msg)
    doc_error: json.JSONDecodeError | None = None
    deep = False
    first: Any = None
    try:
        first, end = dec.raw_decode(text, offset)
    except json.JSONDecodeError as exc:
        end, doc_error = -1, exc
    except RecursionError:  # nested beyond what the decoder can: find where it ends without decoding it
        deep, end = True, (_skip_value(text, offset) if text[offset] in "[{" else -1)
    whole = end >= 0 and not text[end:].strip()
    if whole and (isinstance(first, dict) or (deep and text[offset] == "{")):
        try:
            top, key, records = _records_in_object(text, offset, keys, dec, cache, caps)
        except (json.JSONDecodeError, IndexError) as exc:
            msg = f"{path}: not a JSON document the reader can walk ({exc}); nothing was loaded."
            raise SourceFormatError(msg) from exc
        if key is None:
            value = BadRecord(_depth_reason(caps)) if deep else _checked(first, caps)
            return (top if deep else first), None, [(1, value, safe_text(text[offset:][:MAX_RAW_CHARS]))]
        return top, key, records
    if whole and (isinstance(first, list) or deep):
        try:
            records, _ = _array_elements(text, offset, dec, cache, caps)
        except (json.JSONDecodeError, IndexError) as exc:
            msg = f"{path}: not a JSON document the reader can walk ({exc}); nothing was loaded."
            raise SourceFormatError(msg) from exc
        return [], None, records
    # JSON Lines: one value per line
    records = []
    n_ok = 0
    for lineno, line in enumerate(text.split("\n"), start=1):
        s = line.strip()
        if not s:
            continue
        raw = safe_text(s[:MAX_RAW_CHARS])
        try:
            value = _checked(dec.decode(s), caps)
        except json.JSONDecodeError:
            records.append((lineno, None, raw))
            continue
        except RecursionError:
            value = BadRecord(_depth_reason(caps))
        records.append((lineno, value, raw))
        n_ok += 1
    if n_ok == 0:
        err = doc_error if first is None and not deep else None
        where = f" at line {err.lineno}, column {err.colno} ({err.msg})" if err else ""
        msg = (
            f"{path}: not JSON{where}. The reader expects the vendor's JSON export (a document or one JSON object "
            "per line); check that the download finished; nothing was loaded."
        )
        raise SourceFormatError(msg)
    return [], None, records


def _decode_one(text: str, i: int, dec: json.JSONDecoder, caps: Caps) -> tuple[Any, int]:
    """Decode the value at *i* and check it; a value nested too deep to decode becomes a :class:`BadRecord`."""
    try:
        value, end = dec.raw_decode(text, i)
    except RecursionError:
        end = _skip_value(text, i)
        if end < 0:
            msg = "unterminated value"
            raise json.JSONDecodeError(msg, text, i) from None
        return BadRecord(_depth_reason(caps)), end
    return _checked(value, caps), end


def _array_elements(text: str, start: int, dec: json.JSONDecoder, cache: list[int], caps: Caps) -> tuple[list[tuple[int, Any, str]], int]:
    """Decode the elements of the array starting at *start* (a ``[``), with their lines; also return the index after it."""
    out: list[tuple[int, Any, str]] = []
    i = _WS.match(text, start + 1).end()  # type: ignore[union-attr]
    if text[i] == "]":
        return out, i + 1
    while True:
        value, end = _decode_one(text, i, dec, caps)
        out.append((_line_at(text, i, cache), value, safe_text(text[i:end][:MAX_RAW_CHARS])))
        i = _WS.match(text, end).end()  # type: ignore[union-attr]
        if text[i] == "]":
            return out, i + 1
        if text[i] != ",":
            msg = "expected ',' or ']'"
            raise json.JSONDecodeError(msg, text, i)
        i = _WS.match(text, i + 1).end()  # type: ignore[union-attr]  # skip the comma


def _records_in_object(
    text: str, start: int, keys: tuple[str, ...], dec: json.JSONDecoder, cache: list[int], caps: Caps
) -> tuple[dict[str, Any], str | None, list[tuple[int, Any, str]]]:
    """Walk the top-level object at *start*; decode the elements of the first of *keys* holding an array, with line numbers."""
    top: dict[str, Any] = {}
    arrays: dict[str, list[tuple[int, Any, str]]] = {}
    i = _WS.match(text, start + 1).end()  # type: ignore[union-attr]
    while text[i] != "}":
        k, i = dec.raw_decode(text, i)
        i = _WS.match(text, i).end()  # type: ignore[union-attr]
        i = _WS.match(text, i + 1).end()  # type: ignore[union-attr]  # the colon
        if k in keys and text[i] == "[" and k not in arrays:
            arrays[k], i = _array_elements(text, i, dec, cache, caps)
        else:
            value, i = _decode_one(text, i, dec, caps)
            top[k] = None if isinstance(value, BadRecord) else value
        i = _WS.match(text, i).end()  # type: ignore[union-attr]
        if text[i] == ",":
            i = _WS.match(text, i + 1).end()  # type: ignore[union-attr]
    key = next((k for k in keys if k in arrays), None)
    return top, key, arrays.get(key, []) if key else []


# -- CSV -------------------------------------------------------------------------
def read_csv_records(
    path: Path, data: bytes, caps: Caps | None = None
) -> tuple[list[str], list[tuple[int, list[str], str]], list[tuple[int, str, str]]]:
    """Read a CRM CSV export with physical line numbers.

    A UTF-8 byte-order mark is dropped (Salesforce and Excel write one). A
    header that is not UTF-8 or holds NUL bytes fails the whole file; a row
    with bytes that are not UTF-8, a NUL character, a field longer than
    :attr:`Caps.max_field_bytes`, or the wrong number of fields is rejected.

    Parameters
    ----------
    path : pathlib.Path
        For messages.
    data : bytes
        The file's content.
    caps : Caps, optional
        The field cap (default 1 MiB).

    Returns
    -------
    header : list of str
        Column names, stripped.
    rows : list of (int, list of str, str)
        ``(line, fields, raw)`` per good row.
    rejects : list of (int, str, str)
        ``(line, raw, reason)`` per refused row.
    """
    caps = caps or Caps()
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    if b"\x00" in data[: data.find(b"\n") if b"\n" in data[:8192] else 8192]:
        msg = f"{path}: binary content (NUL bytes) — not a CSV export. Export the object as UTF-8 CSV; nothing was loaded."
        raise SourceFormatError(msg)
    text = data.decode("utf-8", errors="surrogateescape")
    csv.field_size_limit(max(csv.field_size_limit(), 64_000_000, caps.max_field_bytes + 1))
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
    limit = caps.max_field_bytes
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
        elif any("\x00" in f or len(f) * 4 > limit for f in fields) and (
            problem := next(((h, p) for h, f in zip(header, fields, strict=True) if (p := text_problem(f, limit))), None)
        ):
            rejects.append((start, raw, safe_text(f"column {problem[0]}: {problem[1]}")))
        else:
            rows.append((start, fields, raw))
    return header, rows, rejects


def _has_surrogate(text: str) -> bool:
    return not text.isascii() and any("\udc80" <= ch <= "\udcff" for ch in text)


def _csv_raw(fields: list[str]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="").writerow([f[:MAX_RAW_CHARS].encode("utf-8", "surrogateescape").decode("utf-8", "replace") for f in fields])
    return safe_text(buf.getvalue()[:MAX_RAW_CHARS])


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
            "raw": [safe_text(r[1][:MAX_RAW_CHARS]) if r[1] else "" for r in rows],
            "reason": [safe_text(r[2]) for r in rows],
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


def time_problem(value: Any, expected: str = "a date-time such as 2025-12-31T14:30:00Z") -> str | None:
    """Return the reason a present *value* is not a time (for :func:`parse_ts`), or ``None`` when it is one or is empty.

    The reason does not repeat the value (a note or a quarantine row holds it):
    ``"expected <expected>"``.
    """
    dt, bad = parse_ts(value)
    if dt is None and bad:
        return f"expected {expected}"
    return None


_DMY = re.compile(r"^(\d{1,2})([/.-])(\d{1,2})\2(\d{4})(?:[ T,]+(\d{1,2}):(\d{2})(?::(\d{2}))?\s*([AaPp][Mm])?)?$")
_HAS_OFFSET = re.compile(r"(Z|[+-]\d\d:?\d\d)$")
_EXPECTED_DATE = "a date such as 2025-12-31, 2025-12-31 14:30, 2025-12-31T14:30:00+01:00 or 31/12/2025"


class DateReader:
    """Reads the dates and times of one CSV export, in its zone and day/month order.

    Accepts epoch seconds or milliseconds, ISO-8601 (``2025-12-31``,
    ``2025-12-31 14:30``, ``2025-12-31T14:30:00.000+0000``) and
    day/month/year or month/day/year (``31/12/2025``, ``12/31/2025 2:30 PM``;
    ``/``, ``.`` or ``-`` between the parts). A time without an offset is a
    wall-clock time of *timezone* (default UTC).

    Which of the two numbers of ``03/04/2025`` is the day is never guessed
    per value: it is *date_order* when set, else what the file's own dates
    settle (a first number above 12, as in ``31/12/2025``, makes the file
    day first). A date neither settles is refused, and so is every such
    date of a file holding both orders.

    Parameters
    ----------
    timezone : str, optional
        IANA zone of times without an offset.
    date_order : {"day_first", "month_first"}, optional
        The order of day/month/year dates.
    day_first_seen, month_first_seen : str, optional
        A date of the file that settles the order each way (set by
        :meth:`for_file`).
    """

    def __init__(self, *, timezone: str | None = None, date_order: str | None = None, day_first_seen: str | None = None, month_first_seen: str | None = None) -> None:
        self.zone = ZoneInfo(timezone) if timezone else UTC
        self.zone_name = timezone or "UTC"
        self.date_order = date_order
        self.day_first_seen = day_first_seen
        self.month_first_seen = month_first_seen

    @classmethod
    def for_file(cls, values: Iterable[Any], *, timezone: str | None = None, date_order: str | None = None) -> DateReader:
        """Return the reader of a file whose values are *values*, its day/month order settled by them unless given.

        Parameters
        ----------
        values : iterable
            Every value of the file (those that are not day/month/year dates are ignored).
        timezone, date_order : str, optional
            The source's ``timezone`` and ``date_order`` options.

        Returns
        -------
        DateReader
            The reader.
        """
        dmy = mdy = None
        if date_order is None:
            for v in values:
                if not isinstance(v, str) or len(v) > 40 or not (m := _DMY.match(v.strip())):
                    continue
                a, b = int(m.group(1)), int(m.group(3))
                if a > 12 >= b and dmy is None:
                    dmy = v.strip()
                elif b > 12 >= a and mdy is None:
                    mdy = v.strip()
        return cls(timezone=timezone, date_order=date_order, day_first_seen=dmy, month_first_seen=mdy)

    def parse(self, value: Any, expected: str = _EXPECTED_DATE) -> tuple[datetime | None, str | None, bool]:
        """Read one value.

        Parameters
        ----------
        value : object
            The raw value.
        expected : str, optional
            What a value should look like, for the reason of one that is not a date.

        Returns
        -------
        (datetime or None, str or None, bool)
            The time in UTC (None when empty or unreadable), the reason when
            a present value could not be read (without the value: the note
            or quarantine row holds it), and whether it had no offset (read
            in :attr:`zone_name`).
        """
        value = clean(value)
        if value is None:
            return None, None, False
        if isinstance(value, str) and (m := _DMY.match(value.strip())):
            return self._day_month(value.strip(), m)
        dt, bad = parse_ts(value)
        if dt is None:
            return None, (f"expected {expected}" if bad else None), False
        naive = isinstance(value, str) and not _EPOCH_RE.match(value) and not _HAS_OFFSET.search(value.strip().replace(" UTC", "Z"))
        if naive and self.zone is not UTC:
            dt = dt.replace(tzinfo=None).replace(tzinfo=self.zone).astimezone(UTC)
        return dt, None, naive

    def _day_month(self, text: str, m: re.Match[str]) -> tuple[datetime | None, str | None, bool]:
        a, b = int(m.group(1)), int(m.group(3))
        order = self.date_order
        if order is None and a != b and a <= 12 and b <= 12:
            if self.day_first_seen and self.month_first_seen:
                return None, (
                    f"a day/month date in a file holding both day-first ({self.day_first_seen!r}) and month-first "
                    f"({self.month_first_seen!r}) dates, so which number is the day is unknown; "
                    "set options.date_order (day_first or month_first) for this source"
                ), False
            if not self.day_first_seen and not self.month_first_seen:
                return None, (
                    "a date that could be day/month or month/day, and no date of the file settles it; "
                    "set options.date_order (day_first or month_first) for this source"
                ), False
            order = "day_first" if self.day_first_seen else "month_first"
        if order is None:
            order = "day_first" if a > 12 else "month_first"
        day, month = (a, b) if order == "day_first" else (b, a)
        hour, minute, second = int(m.group(5) or 0), int(m.group(6) or 0), int(m.group(7) or 0)
        ampm = (m.group(8) or "").lower()
        if ampm:
            if not 1 <= hour <= 12:
                return None, f"expected an hour from 1 to 12 before {ampm.upper()}", False
            hour = hour % 12 + (12 if ampm == "pm" else 0)
        try:
            local = datetime(int(m.group(4)), month, day, hour, minute, second)  # a wall-clock time of self.zone
        except ValueError as exc:
            return None, f"not a date in {order.replace('_', ' ')} order ({exc})", False
        return local.replace(tzinfo=self.zone).astimezone(UTC), None, True


_NUMBER = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$")


def parse_number(value: Any) -> tuple[float | None, str | None]:
    """Read one number: digits with an optional ``.`` decimal part and exponent; refuse what is not finite.

    Parameters
    ----------
    value : object
        The raw value.

    Returns
    -------
    (float or None, str or None)
        The number (None when empty or unreadable) and, for a present value
        that is not a finite number, the reason (without the value).
    """
    value = clean(value)
    if value is None:
        return None, None
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None, "expected a number"
    if isinstance(value, str) and not _NUMBER.match(value.strip()):
        return None, "expected a number such as 1250.50 (no thousands separator, currency or unit)"
    num = float(value)
    if not math.isfinite(num):
        return None, "not a finite number"
    return num, None


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
        self.notes: list[dict[str, Any]] = []

    def add(self, table: str, line: int | None, raw: str, **cols: Any) -> None:
        """Add one row to *table* (``events``, ``tickets``, ``messages`` or ``identities``)."""
        cols["_line"] = line
        cols["_raw"] = safe_text(raw[:MAX_RAW_CHARS])
        self.tables.setdefault(table, []).append(cols)

    def reject(self, line: int | None, raw: str, reason: str) -> None:
        """Refuse one input record with its reason."""
        self.rejects.append((line, raw, reason))

    def note(self, line: int | None, table: str, row_key: str | None, column: str, value: Any, reason: str) -> None:
        """Record an optional value that could not be read and is stored empty.

        Parameters
        ----------
        line : int or None
            The record's line.
        table : str
            The table its row goes to (``identities`` for a CRM or support record).
        row_key : str or None
            The row's id (``account:001...``, ``zendesk:123``).
        column : str
            The vendor's field name.
        value : object
            The raw value.
        reason : str
            Why it could not be read.
        """
        self.notes.append(
            {"line": line, "table_name": table, "row_key": row_key, "field": column, "value": safe_text(str(value)), "reason": safe_text(f"{reason}; stored empty")}
        )

    @contextlib.contextmanager
    def record(self, line: int | None, raw: str) -> Iterator[None]:
        """Read one record inside the block: if anything raises, what it added is dropped and the record is quarantined.

        Parameters
        ----------
        line : int or None
            The record's line.
        raw : str
            Its raw text, for the quarantine row.
        """
        marks = {t: len(rows) for t, rows in self.tables.items()}
        n_rejects, n_notes = len(self.rejects), len(self.notes)
        try:
            yield
        except Exception as exc:  # one record never takes the file down: it is quarantined with the reason
            for t, rows in self.tables.items():
                del rows[marks.get(t, 0) :]
            del self.rejects[n_rejects:]
            del self.notes[n_notes:]
            what = str(exc).strip().splitlines()[0] if str(exc).strip() else "no message"
            self.reject(line, raw, f"the record could not be read ({type(exc).__name__}: {what[:200]}); nothing of it was loaded")

    def parts(self) -> Iterator[Part]:
        """Yield one part per table that received rows, the rejects and the notes."""
        for table, rows in self.tables.items():
            if not rows:
                continue
            frame = pd.DataFrame(rows)
            frame["_file"] = self.file
            for col in frame.columns:
                if col in ("timestamp", "created_at", "solved_at", "updated_at") and len(frame):
                    frame[col] = _utc_times(frame[col])
            yield Part(table, frame)
        if self.rejects:
            yield Part("rejects", rejects_frame(self.rejects, self.file))
        if self.notes:
            notes = pd.DataFrame(self.notes)
            notes["line"] = notes["line"].astype("Int64")
            notes["file"] = self.file
            yield Part("notes", notes)


def _utc_times(values: pd.Series) -> pd.Series:
    """Return the times of a column as UTC, in microseconds when one is outside the nanosecond range (before 1677, after 2262)."""
    try:
        return pd.to_datetime(values, utc=True)
    except pd.errors.OutOfBoundsDatetime:  # a year such as 0001 or 9999 that the reader read as a date
        return pd.Series(values.tolist(), index=values.index, dtype="datetime64[us, UTC]")


def optional_time(sink: RecordSink, dates: DateReader, line: int | None, table: str, row_key: str | None, rec: Mapping[str, Any], column: str) -> tuple[datetime | None, bool]:
    """Read the optional time *column* of a record; one that is present but unreadable is noted and read as empty.

    Parameters
    ----------
    sink : RecordSink
        Receives the note.
    dates : DateReader
        The file's date reader.
    line : int or None
        The record's line.
    table, row_key : str
        The table and id of the row the value belongs to (for the note).
    rec : mapping
        The record.
    column : str
        The field.

    Returns
    -------
    (datetime or None, bool)
        The time in UTC, and whether it had no offset.
    """
    dt, reason, naive = dates.parse(rec.get(column))
    if reason:
        sink.note(line, table, row_key, column, rec.get(column), reason)
    return dt, naive


def optional_number(sink: RecordSink, line: int | None, table: str, row_key: str | None, rec: Mapping[str, Any], column: str) -> Any:
    """Return the optional number *column* of a record as given, or ``None`` (noted) when it is not a finite number.

    See :func:`optional_time` for the parameters; the value is returned as
    the export wrote it (text), for the store to cast.
    """
    value = clean(rec.get(column))
    _, reason = parse_number(value)
    if reason:
        sink.note(line, table, row_key, column, value, reason)
        return None
    return value


def raw_json(obj: Any) -> str:
    """Compact JSON of a record, for the quarantine's ``raw`` column."""
    return safe_text(json.dumps(obj, separators=(",", ":"), default=str, ensure_ascii=False)[:MAX_RAW_CHARS])


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
