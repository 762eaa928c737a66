"""Ingest: load files into the canonical store, with quarantine and reconciliation.

One transaction per file: a file is loaded whole or not at all. Every row read
is accounted for in ``ingest_log``: ``rows_read = rows_loaded + rows_duplicate +
rows_quarantined``. A file whose exact content (sha256) was already ingested
into the same table is skipped, so re-running an ingest changes nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from journeylib.exceptions import SourceFormatError
from journeylib.io.generic import read_canonical
from journeylib.store.database import Store
from journeylib.store.errors import loading_file
from journeylib.store.merge import merge_stage, stage_rows
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
        ``loaded`` or ``skipped`` (same content ingested before).
    read, loaded, updated, duplicate, quarantined : int
        Row counts; ``read == loaded + duplicate + quarantined``. ``updated``
        is the part of ``loaded`` that replaced stored rows.
    notes : tuple of str
        Assumptions made while reading.
    sha256 : str
        Content hash of the file.
    run : str
        The run id.
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

    @property
    def reconciles(self) -> bool:
        """Whether read = loaded + duplicate + quarantined."""
        return self.read == self.loaded + self.duplicate + self.quarantined

    def summary(self) -> str:
        """One line for humans, e.g. for the CLI."""
        if self.status == "skipped":
            return f"{self.file} → {self.table}: skipped, identical content already ingested (sha256 {self.sha256[:12]})"
        line = (
            f"{self.file} → {self.table}: read {self.read:,} = loaded {self.loaded:,} + duplicate "
            f"{self.duplicate:,} + quarantined {self.quarantined:,}"
        )
        if self.updated:
            line += f" ({self.updated:,} of the loaded rows updated stored rows)"
        if self.notes:
            line += "; " + "; ".join(self.notes)
        return line


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
    now = datetime.now(UTC)
    read = pre_quarantined = 0
    with loading_file(path), store.transaction():
        first = True
        for chunk in reader:
            read += chunk.read
            stage_rows(store, tbl, chunk.rows, first=first)
            first = False
            if len(chunk.rejects):
                rej = chunk.rejects.assign(run=run, source=source, table_name=tbl.name, file=str(path), ingested_at=now)
                store.insert("quarantine", rej)
                pre_quarantined += len(rej)
        if first:  # no chunk at all
            msg = f"{path}: nothing could be read from the file."
            raise SourceFormatError(msg)
        counts = merge_stage(store, tbl, run=run, source=source, file=str(path))
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
    """
    run = new_run_id()
    return [ingest_file(store, table, p, source=source, run=run, force=force) for p in paths]


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
    """
    files = canonical_folder_files(folder)
    if not files:
        msg = f"{folder}: no canonical files (customers.csv, events/*.parquet, ...) found."
        raise SourceFormatError(msg)
    run = new_run_id()
    results: list[FileResult] = []
    for name, paths in files.items():
        results += [ingest_file(store, name, p, source=source, run=run, force=force) for p in paths]
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
    tot = {k: sum(getattr(r, k) for r in results) for k in ("read", "loaded", "duplicate", "quarantined")}
    lines.append(
        f"total: read {tot['read']:,} = loaded {tot['loaded']:,} + duplicate {tot['duplicate']:,} + "
        f"quarantined {tot['quarantined']:,} over {len(results)} file(s)"
    )
    return lines
