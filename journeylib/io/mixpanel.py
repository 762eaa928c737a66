r"""Mixpanel raw event export reader.

Reads the output of Mixpanel's raw event export API, ``GET /api/2.0/export``
(https://developer.mixpanel.com/reference/raw-event-export): JSON Lines, one
event per line, each ``{"event": NAME, "properties": {...}}`` where
``properties.time`` is the time in seconds since the epoch (milliseconds are
recognised), ``properties.distinct_id`` identifies the person and
``properties.$insert_id`` is the de-duplication key Mixpanel documents for
its import API (https://developer.mixpanel.com/reference/import-events).
Gzip-compressed exports (``.gz``) are read as they are.

Mapping
-------
* one ``events`` row per line: ``event_id`` = ``<source>:`` + ``$insert_id``
  (or, without one, the md5 of event, time, distinct_id and properties, so
  overlapping exports still de-duplicate), ``timestamp`` from
  ``properties.time``, ``event`` = the event name as sent, ``source`` = the
  source label, ``properties`` = Mixpanel's properties object as exported;
* the row refers to the person ``distinct_id:<distinct_id>``; every distinct
  (distinct_id, e-mail, CRM account id, company) seen becomes an identity
  observation. The e-mail comes from ``$email``/``email``, the explicit CRM
  account id from the ``account_id_properties`` option, the company name from
  ``company``/``$company``. A ``distinct_id`` that is itself an e-mail
  address is e-mail evidence too (:mod:`journeylib.store.identity`).
* anonymous events before sign-up (`simplified ID merge
  <https://docs.mixpanel.com/docs/tracking-methods/id-management/identifying-users-simplified>`_:
  ``distinct_id`` ``$device:<id>`` with ``$device_id``) join the identified
  person as soon as one event carries both ``$device_id`` and the user's
  ``distinct_id``/``$user_id`` (:data:`DEVICE_LINKS`; the original ID
  merge's ``$identify`` events with ``$anon_distinct_id`` likewise).

Parsing happens in the store's SQL engine in 64 MiB blocks
(:func:`journeylib.store.staging.stage_json_lines`). Lines that are not UTF-8, not
JSON, not an object, lack ``event``/``properties.time``, or carry a time that
is not a number are quarantined with their line number; so are lines longer
than ``max_field_bytes`` and lines holding a NUL character (``\u0000``), a
number that is not finite (``NaN``, ``Infinity``) or nesting deeper than
``max_json_depth`` (:class:`journeylib.io.common.Caps`). A gzip export that
inflates beyond ``max_decompressed_bytes`` or ``max_compression_ratio`` is
refused whole.

Options (``sources.yaml``)
--------------------------
``timezone``
    IANA zone in which ``time`` is local wall-clock time (projects whose
    export is not in UTC); default UTC.
``account_id_properties``
    Property names holding an explicit CRM account id.
``max_field_bytes``, ``max_json_depth``, ``max_decompressed_bytes``, ``max_compression_ratio``
    The caps of :class:`journeylib.io.common.Caps`.
"""

from __future__ import annotations

import functools
import gzip
import json
import zlib
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

from journeylib.exceptions import SourceFormatError
from journeylib.io.common import (
    ACCOUNT_ID_PROPERTIES,
    Caps,
    LinesBlock,
    Part,
    ReadContext,
    iter_line_blocks,
    json_line_problem,
    json_path_key,
    open_inflating,
    prefetch,
)
from journeylib.io.registry import VendorReader
from journeylib.store.staging import JsonLinesSpec

NAME = "mixpanel"
#: File kinds this reader recognises.
KINDS: tuple[str, ...] = ("events",)
#: Canonical table each kind mainly feeds (its refused rows count there).
KIND_TABLES: dict[str, str] = {"events": "events"}
#: Source-id prefixes of people: a ``distinct_id`` (its value is the product's user id once identified).
USER_ID_PREFIXES: tuple[str, ...] = ("distinct_id:",)
#: Source-id prefixes of anonymous devices (simplified ID merge: ``distinct_id`` ``$device:<device id>``).
ANONYMOUS_ID_PREFIXES: tuple[str, ...] = ("distinct_id:$device:",)
#: How one event joins an anonymous id to the person it names: (JSON path in ``properties`` of the
#: anonymous id, source-id templates of that anonymous person). Simplified ID merge: an event with
#: ``$device_id`` *D* and the identified ``distinct_id`` (= ``$user_id``) joins ``$device:D`` (and a
#: plain ``D`` of older SDKs); original ID merge: ``$identify`` carries ``$anon_distinct_id``.
DEVICE_LINKS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ('$."$device_id"', ("distinct_id:$device:{}", "distinct_id:{}")),
    ('$."$anon_distinct_id"', ("distinct_id:{}",)),
)


def spec(source: str, options: dict[str, Any] | None = None) -> JsonLinesSpec:
    """Return the SQL extraction spec of a Mixpanel export for *source*.

    Parameters
    ----------
    source : str
        Source label (the ``event_id`` prefix).
    options : dict, optional
        ``timezone``, ``account_id_properties`` and the caps (:class:`journeylib.io.common.Caps`).

    Returns
    -------
    journeylib.store.staging.JsonLinesSpec
        The spec.
    """
    options = options or {}
    caps = Caps.from_options(options)
    accounts = tuple(options.get("account_id_properties") or ACCOUNT_ID_PROPERTIES)
    return JsonLinesSpec(
        fields={
            "event": ("$.event",),
            "time": ("$.properties.time",),
            "distinct_id": ("$.properties.distinct_id",),
            "insert_id": ('$.properties."$insert_id"',),
            "email": ('$.properties."$email"', "$.properties.email"),
            "link_id": tuple(f"$.properties.{json_path_key(p)}" for p in accounts),
            "company": ("$.properties.company", '$.properties."$company"'),
        },
        required=("event", "time"),
        event_field="event",
        time_field="time",
        time_kind="epoch",
        id_prefix=f"{source}:",
        id_fields=("insert_id",),
        person_refs=(("distinct_id:", "distinct_id"),),
        properties_path="$.properties",
        identity={"email": "email", "link_id": "link_id", "name": "company"},
        timezone=options.get("timezone"),
        max_line_bytes=caps.max_field_bytes,
        max_depth=caps.max_json_depth,
        check_line=functools.partial(json_line_problem, caps=caps),
    )


def _open(path: Path) -> Any:
    with open(path, "rb") as fh:
        magic = fh.read(2)
    return gzip.open(path, "rb") if magic == b"\x1f\x8b" else open(path, "rb")


def detect_kind(path: Path) -> str:
    """Tell whether *path* is a Mixpanel raw export.

    Parameters
    ----------
    path : pathlib.Path
        The file.

    Returns
    -------
    str
        ``"events"``.

    Raises
    ------
    SourceFormatError
        If none of the first lines is a Mixpanel event (``event`` and ``properties``).
    """
    try:
        with _open(path) as fh:
            head = fh.read(65_536)
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        msg = f"{path}: the gzip stream is truncated or corrupt ({exc}). Download the Mixpanel export again; nothing was loaded."
        raise SourceFormatError(msg) from exc
    except OSError as exc:
        msg = f"{path}: cannot read the file ({exc}). The Mixpanel reader expects its export as JSON Lines, optionally gzipped."
        raise SourceFormatError(msg) from exc
    head = head[3:] if head.startswith(b"\xef\xbb\xbf") else head
    for raw in head.split(b"\n")[:50]:
        try:
            obj = json.loads(raw)
        except ValueError:
            continue
        if isinstance(obj, dict) and "event" in obj and isinstance(obj.get("properties"), dict):
            return "events"
    msg = (
        f"{path}: line 1: not a Mixpanel raw event export. Expected one JSON object per line with "
        '"event" and "properties" (time, distinct_id, $insert_id), as returned by /api/2.0/export.'
    )
    raise SourceFormatError(msg)


def read_mixpanel(path: str | Path, ctx: ReadContext) -> Iterator[Part | LinesBlock]:
    """Read a Mixpanel raw event export in blocks for the engine to parse.

    Parameters
    ----------
    path : str or pathlib.Path
        A ``.json``/``.jsonl``/``.ndjson`` file, optionally gzip-compressed.
    ctx : ReadContext
        Source label and options (``timezone``, ``account_id_properties``).

    Yields
    ------
    LinesBlock
        Blocks of lines with the extraction spec.

    Raises
    ------
    SourceFormatError
        If the file is not a Mixpanel export, or a gzip stream is truncated.
    """
    p = Path(path)
    detect_kind(p)
    s = spec(ctx.source, dict(ctx.options))
    caps = ctx.caps
    try:
        with (
            open_inflating(p, label=str(p), caps=caps) as fh,
            closing(prefetch(iter_line_blocks(fh, max_line_bytes=caps.max_field_bytes))) as blocks,  # read ahead while the engine parses
        ):
            for first_line, raw in blocks:
                yield LinesBlock(raw=raw, first_line=first_line, spec=s, file=str(p))
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        msg = f"{p}: the gzip stream is truncated or corrupt ({exc}). Download the export again; nothing was loaded."
        raise SourceFormatError(msg) from exc


#: This reader as :mod:`journeylib.io.registry` lists it.
READER = VendorReader(
    name=NAME,
    category="product",
    detect_kind=detect_kind,
    read=read_mixpanel,
    kind_tables=KIND_TABLES,
    order=10,
    options=("timezone", "account_id_properties"),
)
