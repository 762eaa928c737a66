"""The engine a report run reads through: checking its ``engine.yaml`` before any notebook starts, and its data version.

``journeylib report --engine engine.yaml`` (:func:`journeylib.reports.runner.run_report`
with ``engine=``) gives every notebook the ``engine`` parameter and an empty
``db``; each notebook then opens the store the file describes
(:func:`journeylib.notebook.open_journey`). Before any kernel starts,
:func:`check_engine_file` validates the file as the kernels will read it, and
the run's manifest records :func:`engine_data_version`: for ``engine: duckdb``
the store file's own data version, for ``engine: spark`` what can be known of
the tables' sources without starting Spark (see its Notes).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.util
import json
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from journeylib.config.engine import EngineConfig, TableSource
from journeylib.config.loader import read_yaml, validate_config
from journeylib.exceptions import ConfigError
from journeylib.store import resolve_db_path
from journeylib.store.schema import ALL_TABLES

__all__ = ["check_engine_file", "engine_data_version", "local_path"]


def local_path(location: str) -> Path | None:
    """Return *location* as a path of this machine's file system, or None for a remote URL.

    Parameters
    ----------
    location : str
        A ``TableSource.path`` or a ``db``: a plain path, a ``file:`` URL, or a
        URL of another file system (``s3a://``, ``abfss://``, ``dbfs:/``, ``hdfs://``).

    Returns
    -------
    pathlib.Path or None
        The path (possibly relative) for a plain path or a ``file:`` URL; None otherwise.

    Examples
    --------
    >>> local_path("file:///lake/events").as_posix(), local_path("s3a://lake/events")
    ('/lake/events', None)
    """
    parsed = urlparse(location)
    if parsed.scheme == "file":
        return Path(parsed.path)
    if parsed.scheme and len(parsed.scheme) > 1:  # one letter is a Windows drive, not a scheme
        return None
    return Path(location).expanduser()


def _sources(config: EngineConfig) -> list[tuple[tuple[str, ...], str]]:
    """(key path, location) of every file location the configuration names."""
    found: list[tuple[tuple[str, ...], str]] = []
    if config.engine == "duckdb" and config.db:
        found.append((("db",), config.db))
    for name, source in config.tables.items():
        if source.path is not None:
            found.append((("tables", name, "path"), source.path))
    return found


def check_engine_file(path: Path, *, notebooks_dir: Path) -> tuple[EngineConfig | None, list[str]]:
    """Validate an engine configuration for a report run, as the notebooks' kernels will read it.

    Besides :meth:`EngineConfig.from_yaml`'s checks (unknown keys, values), a
    report run needs: every local location absolute (the kernels run with
    *notebooks_dir* as their working directory, so a relative path would
    name another file there than here), every local location present, and
    pyspark installed for ``engine: spark``. Remote locations (``s3a://``,
    catalog tables) are left to the notebooks: checking them needs Spark.

    Parameters
    ----------
    path : pathlib.Path
        The ``engine.yaml`` (absolute).
    notebooks_dir : pathlib.Path
        The kernels' working directory, for the message about relative paths.

    Returns
    -------
    config : EngineConfig or None
        The configuration, None when the file is not a valid one.
    problems : list of str
        Each problem, naming the file, the key and its line; empty when the
        file can be used.
    """
    try:
        doc = read_yaml(path, what="engine configuration")
        config = validate_config(EngineConfig, doc.data, source=doc.source, lines=doc.lines)
    except ConfigError as exc:
        return None, [f"engine configuration {path}: {p}" for p in exc.problems]
    problems: list[str] = []
    for name in sorted(set(config.tables) - set(ALL_TABLES)):
        line = doc.lines.get(("tables", name))
        problems.append(
            f"engine configuration {path}{f', line {line}' if line else ''}: tables.{name}: not a canonical table; "
            f"allowed are {', '.join(sorted(ALL_TABLES))}"
        )
    for key, location in _sources(config):
        line = doc.lines.get(key)
        where = f"engine configuration {path}{f', line {line}' if line else ''}: {'.'.join(key)} = {location!r}"
        local = local_path(location)
        if local is None:
            continue
        if not local.is_absolute():
            problems.append(
                f"{where} is a relative path. The report's notebooks run with {notebooks_dir} as their working "
                f"directory, where it would name {notebooks_dir / local}; write an absolute path (or a URL such as "
                "s3a://... or file:///...)"
            )
        elif not local.exists():
            problems.append(f"{where}: no such file or folder; give the location of the table's files")
    if config.engine == "spark" and importlib.util.find_spec("pyspark") is None:
        problems.append(
            f"engine configuration {path}: engine: spark needs pyspark, which is not installed for {sys.executable}; "
            "install the spark extra (pip install -e '.[spark]', Java 17) or use engine: duckdb"
        )
    return config, problems


def _iso(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).isoformat(timespec="seconds")


def _data_files(root: Path) -> list[Path]:
    """List the files Spark reads under *root*: hidden and ``_``-prefixed entries (``_SUCCESS``, ``_delta_log``) left out."""
    if root.is_file():
        return [root]
    return sorted(
        p
        for p in root.rglob("*")
        if p.is_file() and not any(part.startswith((".", "_")) for part in p.relative_to(root).parts)
    )


def _listing(source: TableSource, root: Path) -> dict[str, Any]:
    """Describe a local table source from the file system: files, bytes, latest change, rows, Delta version."""
    files = _data_files(root)
    digest = hashlib.sha256()
    total = 0
    latest = 0.0
    for f in files:
        st = f.stat()
        total += st.st_size
        latest = max(latest, st.st_mtime)
        rel = f.name if root.is_file() else f.relative_to(root).as_posix()
        digest.update(f"{rel}:{st.st_size}:{st.st_mtime_ns};".encode())
    out: dict[str, Any] = {
        "files": len(files),
        "bytes": total,
        "modified": _iso(latest) if files else None,
        "rows": None,
        "delta_version": None,
    }
    if source.format == "delta":
        log = root / "_delta_log"
        versions = [int(p.stem) for p in log.glob("*.json") if p.stem.isdigit()] if log.is_dir() else []
        out["delta_version"] = max(versions) if versions else None
        digest.update(f"delta:{out['delta_version']};".encode())
    elif source.format == "parquet" and files:
        import pyarrow.parquet as pq

        try:  # the footers hold the row counts: no data is read
            out["rows"] = sum(pq.read_metadata(f).num_rows for f in files)
        except Exception:  # a file pyarrow cannot read: Spark will say why; the count is just unknown
            out["rows"] = None
    out["listing_sha256"] = digest.hexdigest()[:16]
    return out


def engine_data_version(path: Path) -> dict[str, Any]:
    """Return what identifies the data a report run reads through the engine configuration at *path*.

    Parameters
    ----------
    path : pathlib.Path
        A valid ``engine.yaml`` (:func:`check_engine_file`).

    Returns
    -------
    dict
        ``engine`` (``duckdb`` or ``spark``), ``engine_file`` (the path),
        ``engine_file_sha256`` (16 hex digits of the file's bytes), ``fingerprint``
        (16 hex digits), ``fingerprint_basis`` and ``note`` (a sentence naming the
        sources whose data the fingerprint does not cover, else None). With
        ``engine: duckdb`` also every key of
        :func:`journeylib.reports.index.data_version` of its store (``db``,
        ``tables``, ...), and ``fingerprint`` is that store's. With
        ``engine: spark`` also ``master``, ``app_name``, ``conf_keys`` (the
        names of the Spark settings; their values may be credentials, so they
        are not recorded), ``database`` and ``tables``: per canonical table
        ``source`` (where it is read from, in words, or ``empty``), ``basis``
        (``files`` when listed, ``location`` when only named) and, for a local
        path, ``files``, ``bytes``, ``modified`` (latest file change, ISO UTC),
        ``rows`` (from the Parquet footers; None for Delta and CSV),
        ``delta_version`` (the latest ``_delta_log`` commit; None for other
        formats) and ``listing_sha256``.

    Notes
    -----
    A Spark run's fingerprint hashes, per canonical table, its location and,
    for files on this machine, their names, sizes and modification times
    (and a Delta table's latest log version): it changes when a file is
    added, removed or rewritten, costs no Spark session and reads no data.
    Remote files (``s3a://``...) and catalog tables are not listed without a
    Spark session, so for them the fingerprint covers the location only and
    ``note`` says so. It is not the whole-row hash the notebooks' kept
    results use (:func:`journeylib.store.fingerprint.table_fingerprints`),
    which on Spark costs a job per table.
    """
    from journeylib.reports.index import data_version

    config = EngineConfig.from_yaml(path)
    head: dict[str, Any] = {
        "engine": config.engine,
        "engine_file": str(path),
        "engine_file_sha256": hashlib.sha256(path.read_bytes()).hexdigest()[:16],
    }
    if config.engine == "duckdb":
        version = data_version(resolve_db_path(config.db))
        return {**head, **version, "fingerprint_basis": "store", "note": None}
    tables: dict[str, dict[str, Any]] = {}
    unlisted: list[str] = []
    for name in ALL_TABLES:
        source = config.tables.get(name)
        if source is None:
            if config.database:
                tables[name] = {"source": f"table {config.database}.{name} if it exists, else empty", "basis": "location"}
                unlisted.append(f"{name} ({config.database}.{name})")
            else:
                tables[name] = {"source": "empty", "basis": "location"}
            continue
        record: dict[str, Any] = {"source": source.describe()}
        local = local_path(source.path) if source.path is not None else None
        if local is not None and local.exists():
            record.update(basis="files", **_listing(source, local))
        else:
            record["basis"] = "location"
            unlisted.append(f"{name} ({source.describe()})")
        tables[name] = record
    hashed = {
        "engine": "spark",
        "database": config.database,
        "tables": {name: {k: v for k, v in t.items() if k != "modified"} for name, t in tables.items()},
    }
    fingerprint = hashlib.sha256(json.dumps(hashed, sort_keys=True).encode()).hexdigest()[:16]
    note = None
    if unlisted:
        note = (
            f"the data fingerprint covers only the location of {', '.join(unlisted)}: remote files and catalog "
            "tables are not listed without a Spark session, so a change of their data does not change it"
        )
    return {
        **head,
        "master": config.master,
        "app_name": config.app_name,
        "conf_keys": sorted(config.conf),
        "database": config.database,
        "tables": tables,
        "fingerprint": fingerprint,
        "fingerprint_basis": "locations and local file listings",
        "note": note,
    }
