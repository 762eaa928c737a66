"""Amplitude export reader.

Reads the archive returned by Amplitude's Export API, ``GET /api/2/export``
(https://amplitude.com/docs/apis/analytics/export): a zip of gzipped JSON
Lines files named ``<project>/<project>_<date>_<hour>#<n>.json.gz``, one
event per line with ``event_type``, ``event_time`` (UTC,
``2015-08-10 12:00:00.000000``), ``user_id``, ``device_id``,
``amplitude_id``, ``$insert_id`` (``insert_id`` in the HTTP API),
``uuid``, ``event_properties``, ``user_properties`` and device fields. A
single ``.json.gz`` member or an unzipped ``.json`` file is read as well.

Mapping
-------
* one ``events`` row per line: ``event_id`` = ``<source>:`` + the insert id
  (else ``uuid``; else the md5 of the content), ``timestamp`` from
  ``event_time``, ``event`` = ``event_type``, ``properties`` =
  ``event_properties`` plus ``amplitude_id``, ``device_id``, ``platform``,
  ``session_id`` and ``country``;
* the person is ``user_id:<user_id>`` (or ``device_id:<device_id>`` for
  anonymous events); the identity observation carries
  ``user_properties.email`` and the explicit CRM account id of the
  ``account_id_properties`` option found in ``user_properties``. A
  ``user_id`` that is an e-mail address is e-mail evidence too;
* anonymous events (``device_id`` only) join the user once one event
  carries both ``user_id`` and that ``device_id`` (Amplitude's device-to-user
  mapping, https://amplitude.com/docs/data/sources/instrument-track-unique-users;
  :data:`DEVICE_LINKS`), so a trial's first sessions belong to its account.

A zip member that is not a ``.json.gz``/``.json`` export file (a
``__MACOSX`` entry, a README) is quarantined as one row with the reason; a
truncated gzip member, or a damaged one (a bad header, a CRC that does not
match), fails the whole archive with a message naming it, and
so does a member that inflates beyond the caps (``max_decompressed_bytes``
and ``max_compression_ratio``, checked on each zip and gzip layer of each
member: :class:`journeylib.io.common.Caps`), which is read no further. Lines
are checked as Mixpanel's are (:mod:`journeylib.io.mixpanel`): too long,
holding a NUL, a number that is not finite or nesting deeper than
``max_json_depth``, they are quarantined.
"""

from __future__ import annotations

import functools
import gzip
import json
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import closing, contextmanager
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
    rejects_frame,
)
from journeylib.io.registry import VendorReader
from journeylib.store.staging import JsonLinesSpec

NAME = "amplitude"
#: File kinds this reader recognises.
KINDS: tuple[str, ...] = ("events",)
#: Canonical table each kind mainly feeds (its refused rows count there).
KIND_TABLES: dict[str, str] = {"events": "events"}
#: Source-id prefixes of identified people (their value is the product's ``user_id``).
USER_ID_PREFIXES: tuple[str, ...] = ("user_id:",)
#: Source-id prefixes of anonymous devices (events without ``user_id``).
ANONYMOUS_ID_PREFIXES: tuple[str, ...] = ("device_id:",)
#: The format of ``event_time`` in the Export API (``2015-08-10 12:00:00.000000``, UTC).
TIME_FORMAT = "%Y-%m-%d %H:%M:%S.%f"
#: How one event joins an anonymous device to its user: an event with both ``user_id`` and
#: ``device_id`` (kept in ``properties.device_id``) maps ``device_id:<device_id>`` to the user,
#: as Amplitude's own device-to-user mapping does.
DEVICE_LINKS: tuple[tuple[str, tuple[str, ...]], ...] = (("$.device_id", ("device_id:{}",)),)


def spec(source: str, options: dict[str, Any] | None = None) -> JsonLinesSpec:
    """Return the SQL extraction spec of an Amplitude export for *source*.

    Parameters
    ----------
    source : str
        Source label (the ``event_id`` prefix).
    options : dict, optional
        ``account_id_properties`` and the caps (:class:`journeylib.io.common.Caps`).

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
            "event_type": ("$.event_type",),
            "event_time": ("$.event_time",),
            "user_id": ("$.user_id",),
            "device_id": ("$.device_id",),
            "insert_id": ('$."$insert_id"', "$.insert_id"),
            "uuid": ("$.uuid",),
            "amplitude_id": ("$.amplitude_id",),
            "platform": ("$.platform",),
            "session_id": ("$.session_id",),
            "country": ("$.country",),
            "email": ("$.user_properties.email", '$.user_properties."$email"', "$.user_properties.Email"),
            "link_id": tuple(f"$.user_properties.{json_path_key(p)}" for p in accounts),
            "company": ("$.user_properties.company", "$.user_properties.company_name"),
        },
        required=("event_type", "event_time"),
        event_field="event_type",
        time_field="event_time",
        time_kind="text",
        time_format=TIME_FORMAT,
        id_prefix=f"{source}:",
        id_fields=("insert_id", "uuid"),
        person_refs=(("user_id:", "user_id"), ("device_id:", "device_id")),
        properties_path="$.event_properties",
        extras=(("amplitude_id", "amplitude_id"), ("device_id", "device_id"), ("platform", "platform"), ("session_id", "session_id"), ("country", "country")),
        identity={"email": "email", "link_id": "link_id", "name": "company"},
        max_line_bytes=caps.max_field_bytes,
        max_depth=caps.max_json_depth,
        check_line=functools.partial(json_line_problem, caps=caps),
    )


def _is_event_lines(head: bytes) -> bool:
    for raw in head.split(b"\n")[:50]:
        try:
            obj = json.loads(raw)
        except ValueError:
            continue
        if isinstance(obj, dict) and "event_type" in obj:
            return True
    return False


def detect_kind(path: Path) -> str:
    """Tell whether *path* is an Amplitude export (zip, gzipped or plain JSON Lines).

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
        If the file is none of these.
    """
    if zipfile.is_zipfile(path):
        return "events"
    try:
        with open(path, "rb") as fh:
            magic = fh.read(2)
        opener = gzip.open if magic == b"\x1f\x8b" else open
        with opener(path, "rb") as fh:
            head = fh.read(65_536)
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        msg = f"{path}: the gzip stream is truncated or corrupt ({exc}). Download the Amplitude export again; nothing was loaded."
        raise SourceFormatError(msg) from exc
    except OSError as exc:
        msg = f"{path}: cannot read the file ({exc}). The Amplitude reader expects its export as JSON Lines, optionally gzipped."
        raise SourceFormatError(msg) from exc
    if _is_event_lines(head[3:] if head.startswith(b"\xef\xbb\xbf") else head):
        return "events"
    msg = (
        f"{path}: line 1: not an Amplitude export. Expected the Export API zip of <project>_<date>#<n>.json.gz files, "
        'or JSON Lines with "event_type" and "event_time" per line.'
    )
    raise SourceFormatError(msg)


def _blocks(fh: Any, label: str, s: JsonLinesSpec) -> Iterator[LinesBlock]:
    try:
        with closing(prefetch(iter_line_blocks(fh, max_line_bytes=s.max_line_bytes))) as blocks:  # read and decompress ahead while the engine parses
            for first_line, raw in blocks:
                yield LinesBlock(raw=raw, first_line=first_line, spec=s, file=label)
    except (EOFError, zlib.error, gzip.BadGzipFile, zipfile.BadZipFile) as exc:
        msg = (
            f"{label}: the gzip stream is truncated or corrupt ({exc}). Download the Amplitude export again; "
            "nothing of this archive was loaded."
        )
        raise SourceFormatError(msg) from exc


#: What opening a damaged zip member raises (a bad local header, a CRC that does not match, an offset
#: outside the file, an unsupported compression method, an encrypted member).
_MEMBER_ERRORS = (zipfile.BadZipFile, OSError, EOFError, zlib.error, NotImplementedError, RuntimeError)


@contextmanager
def _open_member(archive: zipfile.ZipFile, name: str, label: str, caps: Caps) -> Iterator[Any]:
    """Open a zip member inflated within the caps; a member that cannot be opened refuses the archive, naming it."""

    def refuse(exc: BaseException) -> SourceFormatError:
        msg = f"{label}: the zip member cannot be read ({type(exc).__name__}: {exc}). Download the Amplitude export again; nothing of this archive was loaded."
        return SourceFormatError(msg)

    try:
        raw_fh = archive.open(name)
    except _MEMBER_ERRORS as exc:
        raise refuse(exc) from exc
    with raw_fh:
        try:  # opening reads ahead (a small member whole, and its CRC checked)
            fh = open_inflating(raw_fh, label=label, caps=caps, compressed_size=archive.getinfo(name).compress_size)
        except _MEMBER_ERRORS as exc:
            raise refuse(exc) from exc
        with fh:
            yield fh


def read_amplitude(path: str | Path, ctx: ReadContext) -> Iterator[Part | LinesBlock]:
    """Read an Amplitude export archive in blocks for the engine to parse.

    Parameters
    ----------
    path : str or pathlib.Path
        The Export API zip, a ``.json.gz`` member, or a plain JSON Lines file.
    ctx : ReadContext
        Source label and options (``account_id_properties``).

    Yields
    ------
    LinesBlock or Part
        Blocks of lines per member; a ``rejects`` part for foreign members.

    Raises
    ------
    SourceFormatError
        If the file is not an Amplitude export, or a member is truncated.
    """
    p = Path(path)
    detect_kind(p)
    s = spec(ctx.source, dict(ctx.options))
    caps = ctx.caps
    if not zipfile.is_zipfile(p):
        with open_inflating(p, label=str(p), caps=caps) as fh:
            yield from _blocks(fh, str(p), s)
        return
    try:
        archive = zipfile.ZipFile(p)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        msg = f"{p}: not a readable zip ({exc}). Download the Amplitude export again; nothing was loaded."
        raise SourceFormatError(msg) from exc
    with archive:
        members = sorted(i.filename for i in archive.infolist() if not i.is_dir())
        if not members:
            msg = f"{p}: the zip holds no file. Download the Amplitude export again; nothing was loaded."
            raise SourceFormatError(msg)
        foreign: list[tuple[int | None, str, str]] = []
        for name in members:
            label = f"{p}!{name}"
            base = name.rsplit("/", 1)[-1]
            if name.startswith("__MACOSX/") or base.startswith(".") or not (base.endswith(".json.gz") or base.endswith(".json")):
                foreign.append((None, name, f"zip member {name!r} is not an Amplitude export file (expected <project>_<date>_<hour>#<n>.json.gz); skipped"))
                continue
            with _open_member(archive, name, label, caps) as fh:
                yield from _blocks(fh, label, s)
        if foreign:
            yield Part("rejects", rejects_frame(foreign, str(p)))


#: This reader as :mod:`journeylib.io.registry` lists it.
READER = VendorReader(
    name=NAME,
    category="product",
    detect_kind=detect_kind,
    read=read_amplitude,
    kind_tables=KIND_TABLES,
    order=20,
    options=("account_id_properties",),
)
