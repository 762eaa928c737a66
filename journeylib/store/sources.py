"""Vendor sources: the ingest of vendor exports.

``sources.yaml`` (:class:`journeylib.config.sources.SourcesConfig`) says which
vendor exports to load and how to stitch identities (see ``docs/sources.md``)::

    version: 1
    sources:
      product:                 # source name: events.source, identity_map.source
        reader: mixpanel       # default: the name, when it is a reader
        files: [exports/mixpanel/*.jsonl]   # globs, relative to this file
        options: {timezone: Europe/Berlin}
      salesforce:
        files: [exports/salesforce/*.csv]
    identity:
      account_sources: [salesforce]
      plus_addressing: false

:func:`ingest_sources` loads every file of every source, each file in one
transaction, skipping files whose content (sha256) was already loaded for
that source, then resolves identities once
(:func:`journeylib.store.identity.resolve_identities`). :func:`ingest_source_files`
does the same for an ad-hoc list of files of one reader; each file's kind
(HubSpot contacts, companies or deals; Zendesk tickets, users, ...) is
recognised from its header or content.

Counting
--------
A vendor file writes one ``ingest_log`` row per table it feeds (a Zendesk
tickets export feeds ``tickets`` and ``events``; every file feeds
``identities``, the observations of who its ids are). On each row
``rows_read = rows_loaded + rows_duplicate + rows_quarantined``; rows refused
while reading (bad JSON, missing field, foreign zip member) count in the
file's main table and are in ``quarantine`` with file, line and reason.
Optional values that could not be read (a date that is not a date, an MRR
that is not a number) are stored empty and listed in ``ingest_notes``,
written in the file's transaction and counted in ``ingest_log.notes_count``
of the table their row went to; re-reading a file (``force=True``) adds no
quarantine row or note twice.

Several files
-------------
A file that cannot be read at all (not the vendor's format, a truncated
archive, an export that inflates beyond its caps) is refused and nothing of
it is loaded; :func:`ingest_sources` and :func:`ingest_source_files` go on
with the next file, resolve identities for what was loaded, and then raise
:class:`SourcesIncompleteError` with the summary of every file (the command
line exits non-zero).
"""

from __future__ import annotations

import importlib
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

import pandas as pd

from journeylib.config.eventmap import EventRule
from journeylib.config.sources import ReaderOptions, SourcesConfig
from journeylib.exceptions import ConfigError, SourceFormatError
from journeylib.io.common import BackgroundDigest, LinesBlock, Part, ReadContext
from journeylib.io.registry import get_vendor_reader, reader_names
from journeylib.store.categories import SourceKindChoice, check_source_kinds, record_source_kinds
from journeylib.store.database import Store
from journeylib.store.errors import cleanup, loading_file
from journeylib.store.eventmap import apply_event_map
from journeylib.store.identity import IdentityOptions, ResolutionSummary, resolve_identities
from journeylib.store.ingest import FileResult, IngestIncompleteError, new_run_id
from journeylib.store.notes import ensure_notes_schema, record_notes
from journeylib.store.progress import progress_bar
from journeylib.store.schema import get_table
from journeylib.store.staging import (
    close_json_lines,
    ensure_vendor_tables,
    forget_vendor_keys,
    merge_vendor_identities,
    merge_vendor_stage,
    quarantine_vendor_rejects,
    reset_vendor_stage,
    stage_json_lines,
    stage_vendor_identities,
    stage_vendor_rejects,
    stage_vendor_rows,
    staged_count,
    unordered_inserts,
    vendor_stage_table,
)

__all__ = [
    "READERS",
    "SourcesIncompleteError",
    "SourcesResult",
    "detect_kind",
    "get_reader",
    "ingest_source_files",
    "ingest_sources",
    "ingest_vendor_file",
]

T = TypeVar("T")

#: JSON Lines staged before a merge inside one file's transaction (bounds memory).
FLUSH_ROWS = 1_000_000

#: Reader names, each a module ``journeylib.io.<name>`` (from :mod:`journeylib.io.registry`).
READERS: tuple[str, ...] = reader_names()


# -- readers ------------------------------------------------------------------------
def get_reader(name: str) -> ModuleType:
    """Return the reader module ``journeylib.io.<name>``.

    Raises
    ------
    ValueError
        If *name* is not one of :data:`READERS`.
    """
    get_vendor_reader(name)
    return importlib.import_module(f"journeylib.io.{name}")


def detect_kind(reader: str, path: str | Path) -> str:
    """Recognise what an export file of *reader* holds (e.g. ``contacts`` vs ``deals``).

    Parameters
    ----------
    reader : str
        One of :data:`READERS`.
    path : str or pathlib.Path
        The file.

    Returns
    -------
    str
        One of the reader's ``KINDS``.

    Raises
    ------
    SourceFormatError
        If the file is none of the reader's kinds; the message names the file,
        the line and what was expected.
    """
    vendor = get_vendor_reader(reader)
    p = Path(path)
    if not p.exists():
        msg = f"{p}: no such file. Check the path."
        raise SourceFormatError(msg)
    if p.is_dir():
        msg = f"{p} is a directory; pass the export files inside it."
        raise SourceFormatError(msg)
    if p.stat().st_size == 0:
        msg = f"{p}: the file is empty (0 bytes). Export it again; nothing was loaded."
        raise SourceFormatError(msg)
    return str(vendor.detect_kind(p))


# -- ingest ---------------------------------------------------------------------------
class _AlreadyLoaded(Exception):
    """Raised inside a file's transaction when its content turns out to be loaded already."""


def ingest_vendor_file(
    store: Store,
    path: str | Path,
    *,
    reader: str,
    source: str | None = None,
    options: ReaderOptions | None = None,
    run: str | None = None,
    force: bool = False,
    events: Sequence[EventRule] = (),
) -> list[FileResult]:
    """Load one vendor export file in one transaction (identities are not resolved here).

    Parameters
    ----------
    store : Store
        A writable store.
    path : str or pathlib.Path
        The export file.
    reader : str
        One of :data:`READERS`.
    source : str, optional
        Source label; defaults to *reader*.
    options : ReaderOptions, optional
        Reader options.
    run : str, optional
        Run id.
    force : bool, default False
        Re-read a file whose content was already loaded for this source.
    events : sequence of journeylib.config.eventmap.EventRule, optional
        Rules renaming the file's events before they are stored; the counts
        of renamed events are in the main table's notes.

    Returns
    -------
    list of FileResult
        One per table the file fed (``FileResult.table`` may be
        ``identities``); each reconciles. A skipped file gives one result
        with status ``skipped``.

    Raises
    ------
    SourceFormatError
        If the file cannot be read at all; nothing of it is loaded.
    """
    vendor = get_vendor_reader(reader)
    source = source or reader
    p = Path(path)
    kind = _reading(reader, p, lambda: detect_kind(reader, p))
    main_table = str(vendor.kind_tables[kind])
    run = run or new_run_id()
    digest = BackgroundDigest(p)  # hashed while the first blocks are read and parsed
    ensure_vendor_tables(store)
    ensure_notes_schema(store)
    checked = force

    def loaded_before() -> bool:
        # whether this content was already loaded for the source (waits for the digest)
        nonlocal checked
        checked = True
        seen = store.query("SELECT run FROM ingest_log WHERE sha256 = ? AND source = ? AND status = 'loaded' LIMIT 1", [digest.result(), source])
        return bool(len(seen))

    def skipped() -> list[FileResult]:
        return [FileResult(str(p), main_table, "skipped", 0, 0, 0, 0, 0, (), digest.result(), run)]

    ctx = ReadContext(source=source, options=(options or ReaderOptions()).model_dump(exclude_none=True))
    now = datetime.now(UTC)
    read_fn = vendor.read
    tables = ("tickets", "messages", "events", "identities")
    read: Counter[str] = Counter()
    acc: dict[str, Counter[str]] = {t: Counter() for t in tables}
    n_rejected = 0
    value_notes: list[pd.DataFrame] = []

    def flush() -> None:
        # merge what is staged; JSON Lines are flushed every FLUSH_ROWS lines so memory stays bounded
        nonlocal n_rejected
        close_json_lines(store, materialize=bool(events))  # event rules UPDATE the events stage
        for t in tables:
            read[t] += staged_count(store, t)
        n_rejected += sum(quarantine_vendor_rejects(store, run=run, source=source, table_name=main_table).values())
        if events and staged_count(store, "events"):
            ctx.notes.update(apply_event_map(store, vendor_stage_table("events"), events))
        for t in tables:
            if t == "identities":
                acc[t].update(merge_vendor_identities(store, source=source, reader=reader))
            else:
                acc[t].update(merge_vendor_stage(store, get_table(t), run=run, source=source))

    try:
        # the merged-key bookkeeping reset_vendor_stage starts ends with the file, loaded or not
        with loading_file(p), unordered_inserts(store), store.transaction(), cleanup(forget_vendor_keys, store):
            reset_vendor_stage(store)
            # a file already loaded is given up as soon as its digest is known, and always before
            # anything is written (only staging happens before the first flush)
            parts = read_fn(p, ctx)
            while (part := _reading(reader, p, lambda: next(parts, None))) is not None:
                if not checked and digest.done() and loaded_before():
                    raise _AlreadyLoaded
                if isinstance(part, Part) and part.table == "notes":
                    value_notes.append(part.rows)
                    continue
                _stage(store, part, source)
                if isinstance(part, LinesBlock) and staged_count(store, "jsonl") >= FLUSH_ROWS:
                    if not checked and loaded_before():
                        raise _AlreadyLoaded
                    flush()
            if not checked and loaded_before():
                raise _AlreadyLoaded
            flush()
            sha = digest.result()
            if not any(read.values()) and not n_rejected:
                msg = f"{p}: the {reader} {kind} export holds no record. Export it again; nothing was loaded."
                raise SourceFormatError(msg)
            results: list[FileResult] = []
            notes = tuple(f"{k} ({v:,})" for k, v in sorted(ctx.notes.items()))
            noted: Counter[str] = Counter()
            if value_notes:
                frame = pd.concat(value_notes, ignore_index=True)
                for table_name, group in frame.groupby("table_name", sort=True):
                    noted[str(table_name)] += record_notes(store, group, run=run, source=source, file=str(p), table_name=str(table_name), ingested_at=now)
            for table in tables:
                extra = n_rejected if table == main_table else 0
                if not read[table] and not extra and table != main_table and not noted[table]:
                    continue
                counts = acc[table]
                res = FileResult(
                    file=str(p),
                    table=table,
                    status="loaded",
                    read=read[table] + extra,
                    loaded=counts["loaded"],
                    updated=counts["updated"],
                    duplicate=counts["duplicate"],
                    quarantined=counts["quarantined"] + extra,
                    notes=notes if table == main_table else (),
                    sha256=sha,
                    run=run,
                    notes_count=noted[table],
                )
                if not res.reconciles:  # a bug, never bad input
                    msg = f"internal error: counts for {p} ({table}) do not reconcile: {res}"
                    raise AssertionError(msg)
                results.append(res)
            store.insert(
                "ingest_log",
                pd.DataFrame(
                    [
                        {
                            "run": run, "source": source, "table_name": r.table, "file": str(p), "sha256": sha,
                            "rows_read": r.read, "rows_loaded": r.loaded, "rows_duplicate": r.duplicate,
                            "rows_quarantined": r.quarantined, "rows_updated": r.updated, "status": "loaded",
                            "notes": "; ".join((f"{reader} {kind} export", *r.notes)), "ingested_at": now,
                            "notes_count": r.notes_count,
                        }
                        for r in results
                    ]
                ),
            )  # fmt: skip
    except _AlreadyLoaded:
        return skipped()
    except SourceFormatError as exc:
        try:
            seen = not checked and loaded_before()
        except Exception as later:  # the file cannot be hashed or looked up: its format error is the one to report
            exc.add_note(f"checking whether the file was loaded before failed too: {type(later).__name__}: {later}")
            raise exc  # noqa: B904 (the format error, not the failed check, is the one to report)
        if seen:  # the content was loaded before: skipped, as it always was
            return skipped()
        raise
    return results


def _reading(reader: str, path: Path, step: Callable[[], T]) -> T:
    """Run one step of reading *path*; anything it raises other than a format error becomes one, naming the file."""
    try:
        return step()
    except SourceFormatError:
        raise
    except Exception as exc:  # a reader failure refuses this file, with the reason, not the whole ingest
        what = str(exc).strip().splitlines()[0] if str(exc).strip() else "no message"
        msg = f"{path}: the {reader} reader could not read the file ({type(exc).__name__}: {what[:300]}); nothing of it was loaded."
        raise SourceFormatError(msg) from exc


def _stage(store: Store, part: Part | LinesBlock, source: str) -> None:
    if isinstance(part, LinesBlock):
        stage_json_lines(store, part.raw, part.first_line, spec=part.spec, source=source, file=part.file)
    elif part.table == "rejects":
        stage_vendor_rejects(store, part.rows)
    elif part.table == "identities":
        stage_vendor_identities(store, part.rows)
    else:
        rows = part.rows
        if "source" not in rows.columns or rows["source"].isna().all():
            rows = rows.assign(source=source)
        stage_vendor_rows(store, get_table(part.table), rows)


@dataclass
class SourcesResult:
    """What an ingest of vendor sources did.

    Attributes
    ----------
    files : list of FileResult
        One per (file, table), in load order.
    identity : ResolutionSummary or None
        The resolution that followed (None if nothing was loaded).
    source_kinds : list of journeylib.store.categories.SourceKindChoice
        The kind chosen for each event source seen for the first time, and
        each declared kind that changed.
    """

    files: list[FileResult] = field(default_factory=list)
    identity: ResolutionSummary | None = None
    source_kinds: list[SourceKindChoice] = field(default_factory=list)

    @property
    def refused(self) -> list[FileResult]:
        """The files that could not be read at all (nothing of them was loaded)."""
        return [r for r in self.files if r.status == "refused"]

    def lines(self) -> list[str]:
        """Human summary lines: per file and table, a total, and the identity line."""
        out = [r.summary() for r in self.files]
        loaded = [r for r in self.files if r.status == "loaded" and r.table != "identities"]
        tot = Counter()  # type: Counter[str]
        for r in loaded:
            for k in ("read", "loaded", "duplicate", "quarantined"):
                tot[k] += getattr(r, k)
        n_files = len({r.file for r in self.files})
        out.append(
            f"total (rows of events, tickets, messages): read {tot['read']:,} = loaded {tot['loaded']:,} + duplicate "
            f"{tot['duplicate']:,} + quarantined {tot['quarantined']:,} over {n_files} file(s)"
        )
        n_notes = sum(r.notes_count for r in self.files)
        if n_notes:
            out.append(f"{n_notes:,} optional value(s) could not be read and were stored empty; they are listed in ingest_notes")
        if self.refused:
            out.append(f"{len(self.refused)} file(s) refused, nothing of them loaded: {', '.join(r.file for r in self.refused)}")
        if self.identity is not None:
            out.append(self.identity.summary())
        out += [k.summary() for k in self.source_kinds]
        return out


class SourcesIncompleteError(IngestIncompleteError):
    """Some vendor export files could not be read at all; the others were loaded and identities resolved.

    Attributes
    ----------
    result : SourcesResult
        Everything the ingest did: per-file results (the refused ones have
        ``status == "refused"`` and their reason in ``error``) and the
        resolution summary.
    results : list of FileResult
        ``result.files``.
    """

    def __init__(self, result: SourcesResult) -> None:
        self.result = result
        self.results = result.files
        n_files = len({r.file for r in result.files})
        msg = (
            f"{len(result.refused)} of {n_files} file(s) could not be read and were refused; "
            "the other files were loaded.\n" + "\n".join(result.lines())
        )
        Exception.__init__(self, msg)


def _ingest_one(store: Store, path: str | Path, **kwargs: Any) -> list[FileResult]:
    """Ingest one vendor file of several; a file that cannot be read at all becomes one ``refused`` result."""
    try:
        return ingest_vendor_file(store, path, **kwargs)
    except SourceFormatError as exc:
        reader = get_vendor_reader(kwargs["reader"])
        try:
            table = str(reader.kind_tables[detect_kind(reader.name, path)])
        except Exception:  # the kind cannot be told either: the reader's first table
            table = str(next(iter(reader.kind_tables.values())))
        return [FileResult(str(path), table, "refused", 0, 0, 0, 0, 0, run=kwargs.get("run") or "", error=str(exc))]


def ingest_source_files(
    store: Store,
    reader: str,
    paths: Sequence[str | Path],
    *,
    source: str | None = None,
    options: ReaderOptions | None = None,
    identity: IdentityOptions | None = None,
    force: bool = False,
    resolve: bool = True,
    source_kinds: Mapping[str, str] | None = None,
    progress: bool | None = None,
) -> SourcesResult:
    """Load any mix of one vendor's export files, then resolve identities.

    Parameters
    ----------
    store : Store
        A writable store.
    reader : str
        One of :data:`READERS`.
    paths : sequence of str or pathlib.Path
        Export files in any order; each file's kind is recognised from its
        content.
    source : str, optional
        Source label (default: the reader name).
    options : ReaderOptions, optional
        Reader options.
    identity : IdentityOptions, optional
        Resolution settings.
    force : bool, default False
        Re-read files already loaded.
    resolve : bool, default True
        Resolve identities afterwards.
    source_kinds : mapping of str to str, optional
        Declared kinds of event sources (``{"web_app": "product"}``); a new
        source not declared takes its reader's category.
    progress : bool, optional
        Draw a progress bar over the files on stderr; None (default): only
        when stderr is a terminal (:func:`journeylib.store.progress.progress_enabled`).

    Returns
    -------
    SourcesResult
        Per-file results and the resolution summary.

    Raises
    ------
    SourcesIncompleteError
        If some files could not be read at all: the others were loaded (each
        file is its own transaction) and identities resolved; the error
        holds the whole result.
    """
    get_vendor_reader(reader)
    declared = check_source_kinds(source_kinds or {})
    run = new_run_id()
    result = SourcesResult()
    with progress_bar(total=len(paths), desc=f"ingest {source or reader}", unit="file", progress=progress) as bar:
        for p in paths:
            result.files += _ingest_one(store, p, reader=reader, source=source, options=options, run=run, force=force)
            bar.set_postfix_str(Path(p).name, refresh=False)
            bar.update(1)
    if resolve:
        result.identity = resolve_identities(store, identity)
    result.source_kinds = record_source_kinds(store, declared, run=run)
    if result.refused:
        raise SourcesIncompleteError(result)
    return result


def ingest_sources(
    store: Store,
    config: SourcesConfig | str | Path | Mapping[str, Any],
    *,
    only: Sequence[str] | None = None,
    force: bool = False,
    source_kinds: Mapping[str, str] | None = None,
    progress: bool | None = None,
) -> SourcesResult:
    """Load every file of every source of a ``sources.yaml``, then resolve identities once.

    Incremental: a file whose content was already loaded for its source is
    skipped; late events for old dates are simply new rows; vendor
    de-duplication keys (``$insert_id``, ``insert_id``, ticket ids, ...)
    make overlapping exports load each record once.

    Parameters
    ----------
    store : Store
        A writable store.
    config : SourcesConfig, str, pathlib.Path or dict
        The configuration or what :meth:`SourcesConfig.from_yaml` accepts.
    only : sequence of str, optional
        Load only these sources (resolution still uses everything stored).
    force : bool, default False
        Re-read files already loaded.
    source_kinds : mapping of str to str, optional
        Declared kinds of event sources, over the configuration's own
        ``source_kinds``; the kinds are recorded after the resolution.
    progress : bool, optional
        Draw a progress bar over the files of every source on stderr (named
        with the source and file); None (default): only when stderr is a
        terminal.

    Returns
    -------
    SourcesResult
        Per-file results, the resolution summary and the kinds chosen for new sources.

    Raises
    ------
    ConfigError
        If the configuration is invalid or *only* names an unknown source.
    SourceFormatError
        If a glob matches nothing (checked before loading).
    SourcesIncompleteError
        If some files could not be read at all: every other file was loaded
        and identities resolved; the error holds the whole result.
    """
    cfg = config if isinstance(config, SourcesConfig) else SourcesConfig.from_yaml(config)
    names = list(only) if only else list(cfg.sources)
    unknown = [n for n in names if n not in cfg.sources]
    if unknown:
        raise ConfigError([f"--source {n}: not a source of this configuration; its sources are {', '.join(cfg.sources)}" for n in unknown])
    declared = check_source_kinds({**cfg.source_kinds, **(source_kinds or {})})
    plan = [(n, cfg.files_of(n)) for n in names]  # every glob checked before anything is loaded
    run = new_run_id()
    result = SourcesResult()
    with progress_bar(total=sum(len(files) for _, files in plan), desc="ingest sources", unit="file", progress=progress) as bar:
        for name, files in plan:
            src = cfg.sources[name]
            for p in files:
                bar.set_postfix_str(f"{name}: {Path(p).name}", refresh=False)
                result.files += _ingest_one(store, p, reader=cfg.reader_of(name), source=name, options=src.options, run=run, force=force, events=src.events)
                bar.update(1)
    result.identity = resolve_identities(store, cfg.identity)
    result.source_kinds = record_source_kinds(store, declared, run=run)
    if result.refused:
        raise SourcesIncompleteError(result)
    return result

