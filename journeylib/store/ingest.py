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
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from journeylib.exceptions import SourceFormatError
from journeylib.io.generic import Chunk, FileReader, read_canonical
from journeylib.store.bulk import BulkFile, drop_bulk, open_bulk
from journeylib.store.database import Store
from journeylib.store.errors import loading_file
from journeylib.store.merge import insert_quarantine, merge_stage, stage_rows
from journeylib.store.notes import ensure_notes_schema, record_notes
from journeylib.store.schema import ENTITY_TABLES, Table


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


class IngestIncompleteError(SourceFormatError):
    """Some files of a multi-file ingest could not be read at all; the others were loaded.

    The message holds the summary line of every file and the totals.

    Attributes
    ----------
    results : list of FileResult
        One per file, in order; the refused ones have ``status == "refused"``.
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
) -> list[FileResult]:
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

    Returns
    -------
    list of FileResult
        One per file, in order.

    Raises
    ------
    IngestIncompleteError
        After every file was tried, if one or more could not be read at all;
        the error's ``results`` hold every file's result.
    """
    run = new_run_id()
    tbl = _entity_table(table)
    return _checked([_ingest_or_refuse(store, tbl, p, source=source, run=run, force=force) for p in paths])


#: Load order of a canonical folder (entities first, so counts read naturally).
FOLDER_ORDER: tuple[str, ...] = ("customers", "users", "tickets", "messages", "events")


def canonical_folder_files(folder: str | Path) -> dict[str, list[Path]]:
    """Find the canonical files of a folder, as written by ``journeylib synth``.

    A table's files are ``<table>.<ext>`` and ``<table>/*.<ext>``.

    Parameters
    ----------
    folder : str or pathlib.Path
        The folder.

    Returns
    -------
    dict
        Table name → sorted list of files (tables with no file are left out).
    """
    from journeylib.io.generic import SUPPORTED_SUFFIXES

    root = Path(folder)
    found: dict[str, list[Path]] = {}
    for name in FOLDER_ORDER:
        files = [p for p in root.glob(f"{name}.*") if p.suffix.lower() in SUPPORTED_SUFFIXES]
        sub = root / name
        if sub.is_dir():
            files += [p for p in sub.iterdir() if p.suffix.lower() in SUPPORTED_SUFFIXES]
        if files:
            found[name] = sorted(files)
    return found


def ingest_folder(store: Store, folder: str | Path, *, source: str = "canonical", force: bool = False) -> list[FileResult]:
    """Load every canonical file of a folder (see :func:`canonical_folder_files`).

    Parameters
    ----------
    store : Store
        A writable store.
    folder : str or pathlib.Path
        Folder holding ``customers.csv``, ``events/part-0.parquet``, ...
    source : str, default "canonical"
        Label for the ingest log.
    force : bool, default False
        See :func:`ingest_file`.

    Returns
    -------
    list of FileResult
        One per file.

    Raises
    ------
    SourceFormatError
        If the folder holds no canonical file.
    IngestIncompleteError
        After every file was tried, if one or more could not be read at all.
    """
    files = canonical_folder_files(folder)
    if not files:
        msg = f"{folder}: no canonical files (customers.csv, events/*.parquet, ...) found."
        raise SourceFormatError(msg)
    run = new_run_id()
    results: list[FileResult] = []
    for name, paths in files.items():
        results += [_ingest_or_refuse(store, ENTITY_TABLES[name], p, source=source, run=run, force=force) for p in paths]
    return _checked(results)


def _ingest_or_refuse(store: Store, table: Table, path: str | Path, *, source: str, run: str, force: bool) -> FileResult:
    """Ingest one file of several; a file that cannot be read at all becomes a ``refused`` result."""
    try:
        return ingest_file(store, table, path, source=source, run=run, force=force)
    except SourceFormatError as exc:
        return FileResult(str(path), table.name, "refused", 0, 0, 0, 0, 0, run=run, error=str(exc))


def _checked(results: list[FileResult]) -> list[FileResult]:
    if any(r.status == "refused" for r in results):
        raise IngestIncompleteError(results)
    return results


def _entity_table(table: str | Table) -> Table:
    if isinstance(table, Table):
        return table
    try:
        return ENTITY_TABLES[table]
    except KeyError:
        allowed = ", ".join(ENTITY_TABLES)
        msg = f"unknown table {table!r}: the generic ingest loads one of {allowed}."
        raise ValueError(msg) from None


def iter_results_lines(results: Iterable[FileResult]) -> list[str]:
    """Return the human summary lines of several results plus a total line."""
    results = list(results)
    lines = [r.summary() for r in results]
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
    lines.append(total)
    return lines
