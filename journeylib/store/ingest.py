"""Ingest: load files into the canonical store, with quarantine and reconciliation.

One transaction per file: a file is loaded whole or not at all. Every row read
is accounted for in ``ingest_log``: ``rows_read = rows_loaded + rows_duplicate +
rows_quarantined``, and every optional value stored as empty because it could
not be read is a row of ``ingest_notes``, counted in ``ingest_log.notes_count``
(written in the same transaction). A file whose exact content (sha256) was
already ingested into the same table is skipped, so re-running an ingest
changes nothing; a forced re-read adds no quarantine row or note twice.

Several files (:func:`ingest_files`, :func:`ingest_folder`): a file that
cannot be read at all is refused and the others are still loaded; the call
then raises :class:`IngestIncompleteError` with the summary of every file.
Both return :class:`IngestResults`: the per-file results, every file of the
folder that was not ingested with the reason (:func:`scan_folder`), and the
kind chosen for each new event source
(:func:`journeylib.store.categories.record_source_kinds`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from journeylib.exceptions import SourceFormatError
from journeylib.io.generic import Chunk, FileReader, read_canonical
from journeylib.store.bulk import BulkFile, drop_bulk, open_bulk
from journeylib.store.categories import SourceKindChoice, check_source_kinds, record_source_kinds
from journeylib.store.database import Store
from journeylib.store.errors import loading_file
from journeylib.store.merge import insert_quarantine, merge_stage, stage_rows
from journeylib.store.notes import ensure_notes_schema, record_notes
from journeylib.store.progress import progress_bar
from journeylib.store.schema import LOADABLE_TABLES, Table
from journeylib.store.values import check_staged_values


@dataclass(frozen=True)
class FileResult:
    """What happened to one ingested file.

    Attributes
    ----------
    file : str
        The file path as given.
    table : str
        Canonical table loaded into.
    status : str
        ``loaded``, ``skipped`` (same content ingested before) or ``refused``
        (the file cannot be read at all; nothing of it was loaded).
    read, loaded, updated, duplicate, quarantined : int
        Row counts; ``read == loaded + duplicate + quarantined``. ``updated``
        is the part of ``loaded`` that replaced stored rows.
    notes : tuple of str
        Assumptions made while reading.
    sha256 : str
        Content hash of the file.
    run : str
        The run id.
    notes_count : int
        Optional values stored as empty and recorded in ``ingest_notes``.
    error : str
        Why a ``refused`` file could not be read; empty otherwise.
    engine : str
        How the file was read: ``bulk`` (validated in SQL by the engine,
        :mod:`journeylib.store.bulk`) or ``exact: <why>`` (record by record
        in Python, :mod:`journeylib.io.generic`); empty when not read.
    """

    file: str
    table: str
    status: str
    read: int
    loaded: int
    updated: int
    duplicate: int
    quarantined: int
    notes: tuple[str, ...] = field(default_factory=tuple)
    sha256: str = ""
    run: str = ""
    notes_count: int = 0
    error: str = ""
    engine: str = ""

    @property
    def reconciles(self) -> bool:
        """Whether read = loaded + duplicate + quarantined."""
        return self.read == self.loaded + self.duplicate + self.quarantined

    def summary(self) -> str:
        """One line for humans, e.g. for the CLI."""
        if self.status == "refused":
            return f"{self.file} → {self.table}: refused, nothing loaded: {self.error}"
        if self.status == "skipped":
            return f"{self.file} → {self.table}: skipped, identical content already ingested (sha256 {self.sha256[:12]})"
        line = (
            f"{self.file} → {self.table}: read {self.read:,} = loaded {self.loaded:,} + duplicate "
            f"{self.duplicate:,} + quarantined {self.quarantined:,}"
        )
        if self.updated:
            line += f" ({self.updated:,} of the loaded rows updated stored rows)"
        if self.notes_count:
            line += f"; {self.notes_count:,} unreadable optional value(s) stored as empty, listed in ingest_notes"
        if self.notes:
            line += "; " + "; ".join(self.notes)
        return line


@dataclass(frozen=True)
class NotIngested:
    """A file (or folder) of a ``--folder`` that the canonical ingest did not read, and why.

    Attributes
    ----------
    path : str
        The file or folder.
    reason : str
        Why it was not read, and what would be.
    """

    path: str
    reason: str

    def summary(self) -> str:
        """One line for humans."""
        return f"{self.path}: not ingested: {self.reason}"


class IngestResults(list[FileResult]):
    """The results of a multi-file canonical ingest: one :class:`FileResult` per file, in order.

    A list, with two more attributes for the summary.

    Attributes
    ----------
    not_ingested : list of NotIngested
        Files and folders of the folder that were not read, with the reason
        (empty for :func:`ingest_files`).
    source_kinds : list of journeylib.store.categories.SourceKindChoice
        The kind chosen for each event source seen for the first time, and
        each declared kind that changed.
    """

    def __init__(
        self,
        results: Iterable[FileResult] = (),
        *,
        not_ingested: Iterable[NotIngested] = (),
        source_kinds: Iterable[SourceKindChoice] = (),
    ) -> None:
        super().__init__(results)
        self.not_ingested = list(not_ingested)
        self.source_kinds = list(source_kinds)

    def lines(self) -> list[str]:
        """Human summary lines: per file, not-ingested files, total, and source kinds (:func:`iter_results_lines`)."""
        return iter_results_lines(self)


class IngestIncompleteError(SourceFormatError):
    """Some files of a multi-file ingest could not be read at all; the others were loaded.

    The message holds the summary line of every file and the totals.

    Attributes
    ----------
    results : list of FileResult
        One per file, in order; the refused ones have ``status == "refused"``
        (an :class:`IngestResults` for :func:`ingest_files` and :func:`ingest_folder`).
    """

    def __init__(self, results: list[FileResult]) -> None:
        self.results = results
        refused = [r for r in results if r.status == "refused"]
        lines = iter_results_lines(results)
        msg = (
            f"{len(refused)} of {len(results)} file(s) could not be read and were refused; "
            "the other files were loaded.\n" + "\n".join(lines)
        )
        super().__init__(msg)


def new_run_id() -> str:
    """Return a run id from the current UTC time, e.g. ``20261128-134501-123456``."""
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S-%f")


def file_sha256(path: Path) -> str:
    """Return the sha256 hex digest of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def ingest_file(
    store: Store,
    table: str | Table,
    path: str | Path,
    *,
    source: str = "canonical",
    run: str | None = None,
    force: bool = False,
    chunk_rows: int = 200_000,
    engine: str = "auto",
) -> FileResult:
    """Load one canonical file into the store, in one transaction.

    Parameters
    ----------
    store : Store
        A writable store.
    table : str or Table
        One of customers, users, events, tickets, messages.
    path : str or pathlib.Path
        A CSV, Parquet or JSON Lines file with canonical column names.
    source : str, default "canonical"
        Label recorded in the ingest log and quarantine.
    run : str, optional
        Run id; a new one by default.
    force : bool, default False
        Re-read a file whose content was already ingested (rows then count as
        duplicates) instead of skipping it.
    chunk_rows : int
        Rows per validation chunk (bounds memory).
    engine : {"auto", "exact"}, default "auto"
        ``auto`` validates CSV and Parquet files in SQL (:mod:`journeylib.store.bulk`),
        handing every row it cannot prove clean to the exact reader, and reads a file
        the engine cannot parse as the exact reader would with the exact reader;
        ``exact`` reads every file record by record. Both give the same tables,
        quarantine, notes and counts.

    Returns
    -------
    FileResult
        The counts, which always reconcile.

    Raises
    ------
    SourceFormatError
        If the file cannot be read at all; nothing of it is loaded.
    ValueError
        If *table* is not a loadable canonical table.

    Notes
    -----
    Rows refused while reading, and rows whose key disagrees, go to
    ``quarantine``; optional values stored as empty go to ``ingest_notes``
    (only for rows that were not quarantined), both in the file's
    transaction.
    """
    tbl = _entity_table(table)
    p = Path(path)
    run = run or new_run_id()
    reader = read_canonical(p, tbl, chunk_rows=chunk_rows)
    sha = file_sha256(p)
    if not force:
        seen = store.query(
            "SELECT run FROM ingest_log WHERE sha256 = ? AND table_name = ? AND status = 'loaded' LIMIT 1",
            [sha, tbl.name],
        )
        if len(seen):
            return FileResult(str(path), tbl.name, "skipped", 0, 0, 0, 0, 0, (), sha, run)
    if engine not in ("auto", "exact"):
        msg = f"engine must be 'auto' or 'exact', got {engine!r}"
        raise ValueError(msg)
    now = datetime.now(UTC)
    ensure_notes_schema(store)
    bulk = open_bulk(store, reader) if engine == "auto" else "asked for"
    try:
        return _load(store, tbl, path, reader, bulk, source=source, run=run, sha=sha, now=now)
    finally:
        drop_bulk(store)


def _load(
    store: Store, tbl: Table, path: str | Path, reader: FileReader, bulk: BulkFile | str, *, source: str, run: str, sha: str, now: datetime
) -> FileResult:
    """Stage, quarantine, merge and log one file in its transaction (see :func:`ingest_file`)."""
    read = pre_quarantined = 0
    with loading_file(path), store.transaction():
        first = True
        value_notes: list[pd.DataFrame] = []
        chunks: Iterable[Chunk] = reader
        if isinstance(bulk, BulkFile):
            bulk.stage()
            bulk.count_notes()
            read, first, chunks = bulk.clean, False, bulk
        for chunk in chunks:
            read += chunk.read
            stage_rows(store, tbl, chunk.rows, first=first)
            first = False
            if len(chunk.rejects):
                rej = chunk.rejects.assign(run=run, source=source, table_name=tbl.name, file=str(path), ingested_at=now)
                insert_quarantine(store, rej)
                pre_quarantined += len(rej)
            if len(chunk.notes):
                value_notes.append(chunk.notes)
        if first:  # no chunk at all
            msg = f"{path}: nothing could be read from the file."
            raise SourceFormatError(msg)
        whole_file = check_staged_values(store, tbl, reader.notes)  # scores' scale, implied statuses (store/values.py)
        if len(whole_file):
            value_notes.append(whole_file)
        if isinstance(bulk, BulkFile):
            bulk.fill_raw()
            drop_bulk(store)  # the engine's copy of the file is not needed by the merge
        merge_quarantined: list[int] = []
        counts = merge_stage(store, tbl, run=run, source=source, file=str(path), quarantined_lines=merge_quarantined)
        notes_count = 0
        if value_notes:
            kept = pd.concat(value_notes, ignore_index=True)
            kept = kept[~kept["line"].isin(merge_quarantined)]
            notes_count = record_notes(store, kept, run=run, source=source, file=str(path), table_name=tbl.name, ingested_at=now)
        notes = tuple(f"{k} ({v:,})" for k, v in sorted(reader.notes.items()))
        result = FileResult(
            file=str(path),
            table=tbl.name,
            status="loaded",
            read=read,
            loaded=counts["loaded"],
            updated=counts["updated"],
            duplicate=counts["duplicate"],
            quarantined=counts["quarantined"] + pre_quarantined,
            notes=notes,
            sha256=sha,
            run=run,
            notes_count=notes_count,
            engine="bulk" if isinstance(bulk, BulkFile) else f"exact: {bulk}",
        )
        if not result.reconciles:  # a bug, never bad input: refuse to commit
            msg = f"internal error: counts for {path} do not reconcile: {result}"
            raise AssertionError(msg)
        store.insert(
            "ingest_log",
            pd.DataFrame(
                [
                    {
                        "run": run,
                        "source": source,
                        "table_name": tbl.name,
                        "file": str(path),
                        "sha256": sha,
                        "rows_read": result.read,
                        "rows_loaded": result.loaded,
                        "rows_duplicate": result.duplicate,
                        "rows_quarantined": result.quarantined,
                        "rows_updated": result.updated,
                        "status": "loaded",
                        "notes": "; ".join(notes) or None,
                        "ingested_at": now,
                        "notes_count": notes_count,
                    }
                ]
            ),
        )
    return result


def ingest_files(
    store: Store,
    table: str | Table,
    paths: Sequence[str | Path],
    *,
    source: str = "canonical",
    force: bool = False,
    source_kinds: Mapping[str, str] | None = None,
    progress: bool | None = None,
) -> IngestResults:
    """Load several files of one table; each file is its own transaction.

    Parameters
    ----------
    store : Store
        A writable store.
    table : str or Table
        Canonical table name.
    paths : sequence of str or pathlib.Path
        Files to load, in order.
    source : str, default "canonical"
        Label for the ingest log.
    force : bool, default False
        See :func:`ingest_file`.
    source_kinds : mapping of str to str, optional
        Declared kinds of event sources (``{"braze": "email"}``); every other
        new source gets the kind of :mod:`journeylib.store.categories`
        (an unknown name is product activity).
    progress : bool, optional
        Draw a progress bar over the files on stderr (one step per file,
        named with its rows loaded); None (default): only when stderr is a
        terminal (:func:`journeylib.store.progress.progress_enabled`).

    Returns
    -------
    IngestResults
        One result per file, in order, and the kinds chosen for new sources.

    Raises
    ------
    IngestIncompleteError
        After every file was tried, if one or more could not be read at all;
        the error's ``results`` hold every file's result.
    ValueError
        If a declared kind is not one of product, crm, support, email
        (checked before anything is loaded).
    """
    declared = check_source_kinds(source_kinds or {})
    run = new_run_id()
    tbl = _entity_table(table)
    with progress_bar(total=len(paths), desc=f"ingest {tbl.name}", unit="file", progress=progress) as bar:
        results = [_ingested(bar, _ingest_or_refuse(store, tbl, p, source=source, run=run, force=force)) for p in paths]
    kinds = record_source_kinds(store, declared, run=run)
    return _checked(IngestResults(results, source_kinds=kinds))


#: Load order of a canonical folder (entities first, so counts read naturally).
FOLDER_ORDER: tuple[str, ...] = ("customers", "users", "tickets", "messages", "events", "assignments")


@dataclass(frozen=True)
class FolderScan:
    """What a canonical folder holds: the files the ingest loads and those it does not.

    Attributes
    ----------
    files : dict of str to list of pathlib.Path
        Table name → its files, sorted, in :data:`FOLDER_ORDER` (tables with
        no file are left out).
    not_ingested : list of NotIngested
        Every other file and folder, with the reason.
    """

    files: dict[str, list[Path]]
    not_ingested: list[NotIngested]


def _count_files(folder: Path) -> int:
    return sum(1 for p in folder.rglob("*") if p.is_file())


def scan_folder(folder: str | Path) -> FolderScan:
    """Sort the entries of a folder into the canonical files the ingest loads and the rest, with reasons.

    A table's files are ``<table>.<ext>``, ``<table>.<anything>.<ext>`` and
    the files of a folder ``<table>/`` (or ``<table>.<ext>/``, as Spark
    writes), with ``<table>`` one of :data:`FOLDER_ORDER` and ``<ext>`` one
    of the generic reader's formats (``.csv``, ``.parquet``, ``.jsonl``,
    ...). Every other entry is named with the reason it is not read: a name
    that is no table (or a table name in other case), a format the reader
    does not take, a hidden file, a folder inside a table folder, a folder
    that is no table (with the count of files in it).

    Parameters
    ----------
    folder : str or pathlib.Path
        The folder.

    Returns
    -------
    FolderScan
        The files per table and the entries not ingested.
    """
    from journeylib.io.generic import SUPPORTED_SUFFIXES

    root = Path(folder)
    formats = ", ".join(sorted(SUPPORTED_SUFFIXES))
    tables = ", ".join(FOLDER_ORDER)
    found: dict[str, list[Path]] = {}
    skipped: list[NotIngested] = []

    def no_table(entry: Path, what: str) -> NotIngested:
        stem = entry.name.split(".", 1)[0]
        if stem.lower() in FOLDER_ORDER:
            return NotIngested(str(entry), f"table names are lower case: rename the {what} to {stem.lower()}{entry.name[len(stem):]}")
        hint = f"<table>.csv, <table>.parquet or <table>/*.parquet with <table> one of {tables}"
        return NotIngested(str(entry), f"the {what} is not named after a table the canonical ingest loads ({hint})")

    def table_file(table: str, entry: Path) -> None:
        if entry.name.startswith("."):
            skipped.append(NotIngested(str(entry), "a hidden file"))
        elif entry.suffix.lower() in SUPPORTED_SUFFIXES:
            found.setdefault(table, []).append(entry)
        else:
            fmt = f"the format {entry.suffix}" if entry.suffix else "a file without an extension"
            skipped.append(NotIngested(str(entry), f"{fmt} is not read (the canonical ingest reads {formats})"))

    for entry in sorted(root.iterdir()):
        stem = entry.name.split(".", 1)[0]
        if entry.is_dir():
            if stem not in FOLDER_ORDER:
                n = _count_files(entry)
                skipped.append(no_table(entry, f"folder (its {n:,} file(s) were not read)"))
                continue
            for inner in sorted(entry.iterdir()):
                if inner.is_dir():
                    n = _count_files(inner)
                    skipped.append(NotIngested(str(inner), f"a folder inside the table folder {entry.name} is not read (its {n:,} file(s))"))
                else:
                    table_file(stem, inner)
        elif entry.name.startswith("."):
            skipped.append(NotIngested(str(entry), "a hidden file"))
        elif stem in FOLDER_ORDER:
            table_file(stem, entry)
        else:
            skipped.append(no_table(entry, "file"))
    files = {name: sorted(found[name]) for name in FOLDER_ORDER if name in found}
    return FolderScan(files=files, not_ingested=skipped)


def canonical_folder_files(folder: str | Path) -> dict[str, list[Path]]:
    """Find the canonical files of a folder, as written by ``journeylib synth`` (see :func:`scan_folder`).

    Parameters
    ----------
    folder : str or pathlib.Path
        The folder.

    Returns
    -------
    dict
        Table name → sorted list of files (tables with no file are left out).
    """
    return scan_folder(folder).files


def ingest_folder(
    store: Store,
    folder: str | Path,
    *,
    source: str = "canonical",
    force: bool = False,
    source_kinds: Mapping[str, str] | None = None,
    progress: bool | None = None,
) -> IngestResults:
    """Load every canonical file of a folder (see :func:`scan_folder`).

    Parameters
    ----------
    store : Store
        A writable store.
    folder : str or pathlib.Path
        Folder holding ``customers.csv``, ``events/part-0.parquet``,
        ``assignments.csv``, ...
    source : str, default "canonical"
        Label for the ingest log.
    force : bool, default False
        See :func:`ingest_file`.
    source_kinds : mapping of str to str, optional
        Declared kinds of event sources, as in :func:`ingest_files`.
    progress : bool, optional
        Draw a progress bar over the files, as in :func:`ingest_files`.

    Returns
    -------
    IngestResults
        One result per file, the entries of the folder not ingested (with
        the reason) and the kinds chosen for new sources.

    Raises
    ------
    SourceFormatError
        If the folder holds no canonical file (the message names what it
        holds instead).
    IngestIncompleteError
        After every file was tried, if one or more could not be read at all.
    ValueError
        If a declared kind is not one of product, crm, support, email.
    """
    declared = check_source_kinds(source_kinds or {})
    scan = scan_folder(folder)
    if not scan.files:
        seen = "".join(f"\n{n.summary()}" for n in scan.not_ingested[:20])
        more = f"\n... and {len(scan.not_ingested) - 20} more" if len(scan.not_ingested) > 20 else ""
        msg = f"{folder}: no canonical files (customers.csv, events/*.parquet, ...) found." + seen + more
        raise SourceFormatError(msg)
    run = new_run_id()
    results: list[FileResult] = []
    n_files = sum(len(paths) for paths in scan.files.values())
    with progress_bar(total=n_files, desc="ingest", unit="file", progress=progress) as bar:
        for name, paths in scan.files.items():
            results += [
                _ingested(bar, _ingest_or_refuse(store, LOADABLE_TABLES[name], p, source=source, run=run, force=force))
                for p in paths
            ]
    kinds = record_source_kinds(store, declared, run=run)
    return _checked(IngestResults(results, not_ingested=scan.not_ingested, source_kinds=kinds))


def _ingested(bar: Any, result: FileResult) -> FileResult:
    """Advance the ingest progress bar by one file, naming it and its rows."""
    bar.set_postfix_str(f"{Path(result.file).name}: {result.status}, {result.loaded:,} rows", refresh=False)
    bar.update(1)
    return result


def _ingest_or_refuse(store: Store, table: Table, path: str | Path, *, source: str, run: str, force: bool) -> FileResult:
    """Ingest one file of several; a file that cannot be read at all becomes a ``refused`` result."""
    try:
        return ingest_file(store, table, path, source=source, run=run, force=force)
    except SourceFormatError as exc:
        return FileResult(str(path), table.name, "refused", 0, 0, 0, 0, 0, run=run, error=str(exc))


def _checked(results: IngestResults) -> IngestResults:
    if any(r.status == "refused" for r in results):
        raise IngestIncompleteError(results)
    return results


def _entity_table(table: str | Table) -> Table:
    if isinstance(table, Table):
        return table
    try:
        return LOADABLE_TABLES[table]
    except KeyError:
        allowed = ", ".join(LOADABLE_TABLES)
        msg = f"unknown table {table!r}: the generic ingest loads one of {allowed}."
        raise ValueError(msg) from None


def iter_results_lines(results: Iterable[FileResult]) -> list[str]:
    """Return the human summary lines of several results plus a total line.

    For an :class:`IngestResults`, the files not ingested come after the
    files (one line each, with the reason) and the kinds chosen for new
    event sources after the total.
    """
    results = list(results) if not isinstance(results, IngestResults) else results
    lines = [r.summary() for r in results]
    not_ingested = results.not_ingested if isinstance(results, IngestResults) else []
    lines += [n.summary() for n in not_ingested]
    tot = {k: sum(getattr(r, k) for r in results) for k in ("read", "loaded", "duplicate", "quarantined", "notes_count")}
    total = (
        f"total: read {tot['read']:,} = loaded {tot['loaded']:,} + duplicate {tot['duplicate']:,} + "
        f"quarantined {tot['quarantined']:,} over {len(results)} file(s)"
    )
    if tot["notes_count"]:
        total += f"; {tot['notes_count']:,} unreadable optional value(s) stored as empty (ingest_notes)"
    refused = sum(r.status == "refused" for r in results)
    if refused:
        total += f"; {refused} file(s) refused"
    if not_ingested:
        total += f"; {len(not_ingested)} file(s) or folder(s) of the folder not ingested (listed above)"
    lines.append(total)
    if isinstance(results, IngestResults):
        lines += [k.summary() for k in results.source_kinds]
    return lines
