"""The record of report runs: each run's folder, manifest and index page, the runs index and ``latest``.

:func:`new_manifest` describes a starting run; the runner updates it as each
notebook ends and writes it with :func:`write_json`, together with the run's
``index.html`` (:func:`write_run_index`). When the run ends,
:func:`point_latest` points ``<out>/latest`` at it (only a run that
succeeded), :func:`prune_runs` deletes the suite's runs beyond its
``keep_runs`` and :func:`write_runs_index` lists every run in
``<out>/index.html``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib.metadata
import json
import logging
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from journeylib.config.suite import NAME_PATTERN
from journeylib.exceptions import JourneyLibError
from journeylib.reports.artifacts import ARTIFACTS_DIR, SUMMARY_FILE, atomic_write
from journeylib.reports.execute import CHART_MODE, KERNEL_NAME
from journeylib.reports.html import jinja_environment
from journeylib.reports.plan import ReportPlan
from journeylib.store import Store
from journeylib.store.fingerprint import table_fingerprints

__all__ = [
    "data_fingerprint",
    "data_version",
    "iso_seconds",
    "latest_run",
    "list_artifacts",
    "new_manifest",
    "new_run_dir",
    "point_latest",
    "prune_runs",
    "utc_now",
    "write_json",
    "write_run_index",
    "write_runs_index",
]

logger = logging.getLogger(__name__)

_NAME_RE = re.compile(NAME_PATTERN)
_VERSIONED = (
    "journeylib",
    "pandas",
    "numpy",
    "duckdb",
    "pyarrow",
    "altair",
    "vl-convert-python",
    "papermill",
    "nbconvert",
    "nbclient",
    "ipykernel",
    "ipywidgets",
)


def utc_now() -> dt.datetime:
    """Return the current time, timezone-aware in UTC.

    Returns
    -------
    datetime.datetime
        Now, in UTC.
    """
    return dt.datetime.now(dt.UTC)


def iso_seconds(moment: dt.datetime | None) -> str | None:
    """Return *moment* as ISO 8601 text to the second, or None.

    Parameters
    ----------
    moment : datetime.datetime or None
        A time.

    Returns
    -------
    str or None
        E.g. ``"2024-03-04T09:00:00+00:00"``; None for None.

    Examples
    --------
    >>> iso_seconds(dt.datetime(2024, 3, 4, 9, 0, 0, 500, tzinfo=dt.UTC))
    '2024-03-04T09:00:00+00:00'
    """
    return moment.isoformat(timespec="seconds") if moment else None


def _versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for dist in _VERSIONED:
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = None
    out["python"] = platform.python_version()
    return out


def _git_commit(folder: Path) -> str | None:
    try:
        done = subprocess.run(  # fixed argv, read-only git command
            ["git", "rev-parse", "HEAD"],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None


def data_fingerprint(db: Path) -> str:
    """Return the fingerprint of the store at *db*, opened read-only.

    Parameters
    ----------
    db : pathlib.Path
        The store file.

    Returns
    -------
    str
        :meth:`journeylib.store.Store.fingerprint` of that store.
    """
    with Store(db, read_only=True) as store:
        return store.fingerprint()


def data_version(db: Path) -> dict[str, Any]:
    """Return what identifies the version of the data in the store at *db*, opened read-only.

    Parameters
    ----------
    db : pathlib.Path
        The store file.

    Returns
    -------
    dict
        ``db`` (the path), ``fingerprint`` (:meth:`journeylib.store.Store.fingerprint`:
        ingested files and row counts) and the keys of
        :func:`journeylib.store.fingerprint.table_fingerprints`: ``tables``
        (per canonical table ``rows``, ``content_hash``, ``max_time_column``,
        ``max_time``), ``last_ingested_at``, ``ingested_files`` and
        ``content_hash`` (all tables together).
    """
    with Store(db, read_only=True) as store:
        return {"db": str(db), "fingerprint": store.fingerprint(), **table_fingerprints(store)}


def new_manifest(
    plan: ReportPlan,
    *,
    run_dir: Path,
    started: dt.datetime,
    fingerprints: Mapping[Path, str],
    execution_timeout: int,
    data_versions: Mapping[Path, Mapping[str, Any]] | None = None,
    sample: Mapping[str, Any] | None = None,
    keep_runs: int | None = None,
) -> dict[str, Any]:
    """Return the manifest of a run that is starting: what will run, with what, on which data.

    Parameters
    ----------
    plan : ReportPlan
        The validated run.
    run_dir : pathlib.Path
        The run's folder (its name is the run id).
    started : datetime.datetime
        When the run started (UTC).
    fingerprints : mapping
        Store path -> :func:`data_fingerprint`, for every store of *plan*.
    execution_timeout : int
        Seconds one cell may run.
    data_versions : mapping, optional
        Store path -> :func:`data_version`, for every store of *plan*.
    sample : mapping, optional
        The customer sample of the run (``journeylib report --sample``):
        ``requested``, ``n``, ``of_customers``, ``random_state``; None for
        none.
    keep_runs : int, optional
        How many runs of the suite are kept (None: all).

    Returns
    -------
    dict
        ``manifest_version`` 2, the suite, ``status="running"``,
        ``exit_status`` (None until the run ends: 0 succeeded, 1 failed,
        130 interrupted), times, ``host``, the data and its fingerprint,
        ``data_version`` (per store, :func:`data_version`), ``sample``,
        ``retention`` (``keep_runs``, the ``removed`` run ids and, when deleting failed, ``error``), package
        versions, the git commit of the notebooks folder, the execution
        settings, ``timings`` (``preflight``, ``data_version``, ``notebooks``
        and ``total`` seconds, filled as the run goes), ``latest`` (the run
        ``latest`` points at when the run ends) and one ``"pending"`` record
        per notebook (parameters, their sources, the defaults left, store,
        ``timings``, ``files``, ``summary`` and ``error``).
    """
    first = plan.notebooks[0]
    versions = data_versions or {}
    return {
        "manifest_version": 2,
        "suite": plan.suite.name,
        "description": plan.suite.description,
        "suite_file": str(plan.suite_file) if plan.suite_file else None,
        "run_id": run_dir.name,
        "status": "running",
        "exit_status": None,
        "started_at": iso_seconds(started),
        "finished_at": None,
        "seconds": None,
        "host": socket.gethostname(),
        "data": {
            "db": str(first.db) if first.db is not None else None,
            "fingerprint": fingerprints[first.data_key],
            **({"engine": first.engine_kind, "engine_file": str(first.engine)} if first.engine is not None else {}),
        },
        "data_version": [dict(versions[key]) for key in dict.fromkeys(item.data_key for item in plan.notebooks) if key in versions],
        "sample": dict(sample) if sample else None,
        "retention": {"keep_runs": keep_runs, "removed": []},
        "timings": {},
        "latest": None,
        "versions": _versions(),
        "git_commit": _git_commit(plan.notebooks_dir),
        "platform": platform.platform(),
        "execution": {
            "kernel": KERNEL_NAME,
            "python": sys.executable,
            "chart_mode": CHART_MODE,
            "execution_timeout": execution_timeout,
            "notebooks_dir": str(plan.notebooks_dir),
            "parameters_dir": str(plan.parameters_dir),
            "overrides": plan.overrides,
            "shared": plan.suite.shared,
        },
        "notebooks": [
            {
                "name": item.name,
                "notebook": item.notebook,
                "source": str(item.path),
                "parameter_set": item.parameter_set,
                "parameter_set_file": str(item.parameter_set_file) if item.parameter_set_file else None,
                "parameters": dict(item.parameters),
                "parameter_sources": dict(item.sources),
                "defaults": {
                    name: info.get("default")
                    for name, info in item.declared.items()
                    if name not in item.parameters and not (name == "output_dir" and item.writes_artifacts)
                },
                "db": str(item.db) if item.db is not None else None,
                **({"engine": str(item.engine)} if item.engine is not None else {}),
                "fingerprint": fingerprints[item.data_key],
                "status": "pending",
                "started_at": None,
                "finished_at": None,
                "seconds": None,
                "timings": {},
                "files": {"notebook": None, "html": None, "artifacts": [], "summary": None},
                "summary": None,
                "error": None,
            }
            for item in plan.notebooks
        ],
    }


def write_json(path: Path, data: Any) -> None:
    """Write *data* as indented UTF-8 JSON to *path*, atomically (temporary file, then rename).

    Parameters
    ----------
    path : pathlib.Path
        The file to write (the manifest).
    data : object
        JSON-serialisable data.
    """
    atomic_write(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def list_artifacts(folder: Path, run_dir: Path) -> tuple[list[dict[str, Any]], dict[str, Any] | None, str | None]:
    """List the artifacts a notebook saved in its folder, for the manifest.

    Parameters
    ----------
    folder : pathlib.Path
        The notebook's folder in the run.
    run_dir : pathlib.Path
        The run's folder; paths are given relative to it.

    Returns
    -------
    tables : list of dict
        One per ``artifacts/*.parquet``, by name: ``name``, ``path``, ``rows``,
        ``columns`` (None when the file cannot be read) and ``bytes``.
    summary : dict or None
        The content of ``artifacts/summary.json`` (a non-mapping is wrapped as
        ``{"value": ...}``); None if absent or not JSON.
    summary_path : str or None
        The summary's path relative to *run_dir*, if the file exists.
    """
    art_dir = folder / ARTIFACTS_DIR
    tables: list[dict[str, Any]] = []
    summary: dict[str, Any] | None = None
    summary_rel: str | None = None
    if not art_dir.is_dir():
        return tables, summary, summary_rel
    import pyarrow.parquet as pq

    for path in sorted(art_dir.glob("*.parquet")):
        try:
            meta = pq.read_metadata(path)
            rows, columns = meta.num_rows, meta.num_columns
        except Exception:  # a broken file is listed, not fatal
            rows = columns = None
        tables.append(
            {
                "name": path.stem,
                "path": path.relative_to(run_dir).as_posix(),
                "rows": rows,
                "columns": columns,
                "bytes": path.stat().st_size,
            }
        )
    summary_path = art_dir / SUMMARY_FILE
    if summary_path.is_file():
        summary_rel = summary_path.relative_to(run_dir).as_posix()
        try:
            loaded = json.loads(summary_path.read_text(encoding="utf-8"))
            summary = loaded if isinstance(loaded, dict) else {"value": loaded}
        except ValueError:
            summary = None
    return tables, summary, summary_rel


def new_run_dir(out: Path, run_id: str | None, suite: str) -> Path:
    """Create the folder of a new run under *out*.

    Parameters
    ----------
    out : pathlib.Path
        The reports folder (created if missing).
    run_id : str or None
        The folder name; None for UTC ``YYYYmmdd-HHMMSS-<suite>`` (with
        ``-2``, ``-3`` ... when that exists).
    suite : str
        The suite name.

    Returns
    -------
    pathlib.Path
        The new, empty folder.

    Raises
    ------
    ValueError
        If *run_id* is not a valid folder name, or is ``latest``.
    JourneyLibError
        If the *run_id* folder exists, or 99 runs started in the same second.
    """
    out.mkdir(parents=True, exist_ok=True)
    if run_id is not None:
        if not _NAME_RE.match(run_id) or run_id in ("latest", "index.html"):
            msg = (
                f"run_id {run_id!r} is not a valid folder name: use letters, digits, '_', '-' or '.', "
                "starting with a letter or digit, and not 'latest'"
            )
            raise ValueError(msg)
        run_dir = out / run_id
        try:
            run_dir.mkdir()
        except FileExistsError:
            msg = f"report folder {run_dir} already exists; choose another run_id or delete that folder"
            raise JourneyLibError(msg) from None
        return run_dir
    base = f"{utc_now():%Y%m%d-%H%M%S}-{suite}"
    for n in range(1, 100):
        run_dir = out / (base if n == 1 else f"{base}-{n}")
        try:
            run_dir.mkdir()
        except FileExistsError:
            continue
        return run_dir
    msg = f"cannot create a new run folder {base} under {out}: 99 runs in the same second already exist"
    raise JourneyLibError(msg)


def point_latest(out: Path, run_dir: Path) -> Path | None:
    """Make ``<out>/latest`` point at *run_dir*: an atomic symlink swap, else a redirect page.

    Parameters
    ----------
    out : pathlib.Path
        The reports folder.
    run_dir : pathlib.Path
        The run folder under *out*.

    Returns
    -------
    pathlib.Path or None
        ``<out>/latest`` (a symlink, or a folder holding a redirecting
        ``index.html`` and ``RUN_ID`` where symlinks fail); None if neither
        could be written (logged as a warning).
    """
    link = out / "latest"
    tmp = out / f".latest.{os.getpid()}.tmp"
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    try:
        os.symlink(run_dir.name, tmp, target_is_directory=True)
        if link.is_dir() and not link.is_symlink():
            _remove_latest_fallback(link)
        os.replace(tmp, link)
        return link
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        logger.info("cannot make %s a symlink (%s); writing a redirect page instead", link, exc)
    try:
        if link.is_symlink() or link.is_file():
            link.unlink()
        link.mkdir(exist_ok=True)
        target = f"../{run_dir.name}/index.html"
        page = (
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="refresh" content="0; url={target}"><title>Latest report</title></head>'
            f'<body><p>Latest report: <a href="{target}">{run_dir.name}</a></p></body></html>\n'
        )
        (link / "index.html").write_text(page, encoding="utf-8")
        (link / "RUN_ID").write_text(run_dir.name + "\n", encoding="utf-8")
        return link
    except OSError as exc:
        logger.warning("could not update %s to point at %s: %s", link, run_dir, exc)
        return None


def latest_run(out: Path) -> str | None:
    """Return the run id ``<out>/latest`` points at, or None.

    Parameters
    ----------
    out : pathlib.Path
        The reports folder.

    Returns
    -------
    str or None
        The folder name the ``latest`` symlink points at, or the ``RUN_ID``
        of the redirect-page fallback; None when there is no ``latest``.
    """
    link = out / "latest"
    if link.is_symlink():
        return Path(os.readlink(link)).name
    run_id_file = link / "RUN_ID"
    if run_id_file.is_file():
        return run_id_file.read_text(encoding="utf-8").strip() or None
    return None


def prune_runs(out: Path, *, suite: str, keep: int, current: Path) -> list[str]:
    """Delete the oldest runs of *suite* under *out* so that *keep* of them remain.

    Runs are the folders of *out* holding a ``manifest.json`` whose
    ``suite`` is *suite*, ordered by ``started_at`` then name. The run
    ``latest`` points at and *current* are never deleted: when one of them
    is among the oldest, it is kept and counted, so more than *keep* runs
    can remain only if *keep* is 1 and the current run failed (the current
    run and the good run ``latest`` still shows). Folders of other suites,
    and folders without a readable manifest, are left alone.

    Parameters
    ----------
    out : pathlib.Path
        The reports folder.
    suite : str
        The suite whose runs are pruned.
    keep : int
        How many runs to keep (at least 1).
    current : pathlib.Path
        The run that just ended.

    Returns
    -------
    list of str
        The run ids deleted, oldest first.

    Raises
    ------
    ValueError
        If *keep* is not a positive integer.
    """
    if not isinstance(keep, int) or isinstance(keep, bool) or keep < 1:
        msg = f"prune_runs: keep must be a positive number of runs, got {keep!r}"
        raise ValueError(msg)
    runs: list[tuple[str, str, Path]] = []
    for manifest_path in out.glob("*/manifest.json"):
        folder = manifest_path.parent
        if folder.is_symlink() or folder.name == "latest":
            continue
        try:
            m = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(m, dict) and m.get("suite") == suite:
            runs.append((str(m.get("started_at") or ""), folder.name, folder))
    runs.sort()
    protected = {current.name, latest_run(out)}
    kept = [r for r in runs if r[1] in protected]
    candidates = [r for r in runs if r[1] not in protected]
    n_delete = max(0, len(runs) - max(keep, len(kept)))
    removed: list[str] = []
    for _, name, folder in candidates[:n_delete]:
        shutil.rmtree(folder)
        removed.append(name)
        logger.info("removed old run %s (keep_runs=%d)", name, keep)
    return removed


def _remove_latest_fallback(link: Path) -> None:
    names = {p.name for p in link.iterdir()}
    if names <= {"index.html", "RUN_ID"}:
        shutil.rmtree(link)
    else:
        msg = f"{link} is a folder with other files than a redirect page; move it away so `latest` can be a link"
        raise OSError(msg)


def write_run_index(run_dir: Path, manifest: Mapping[str, Any]) -> Path:
    """Write the run's ``index.html``: links, status and timings of each notebook.

    Parameters
    ----------
    run_dir : pathlib.Path
        The run's folder.
    manifest : mapping
        The run's manifest.

    Returns
    -------
    pathlib.Path
        ``<run_dir>/index.html``.
    """
    page = jinja_environment().get_template("report_index.html.j2").render(m=manifest)
    path = run_dir / "index.html"
    return atomic_write(path, page)


def write_runs_index(out: Path) -> Path:
    """Write ``<out>/index.html`` listing every run under *out*, newest first.

    Runs are read from ``<out>/*/manifest.json`` (``latest`` and unreadable
    manifests are skipped).

    Parameters
    ----------
    out : pathlib.Path
        The reports folder.

    Returns
    -------
    pathlib.Path
        ``<out>/index.html``.
    """
    runs = []
    for manifest_path in sorted(out.glob("*/manifest.json"), reverse=True):
        if manifest_path.parent.is_symlink():
            continue
        try:
            m = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        runs.append(m)
    runs.sort(key=lambda m: str(m.get("started_at") or ""), reverse=True)
    page = jinja_environment().get_template("reports_index.html.j2").render(runs=runs)
    path = out / "index.html"
    return atomic_write(path, page)
