"""The report runner: parameterized notebooks in, an offline report folder out.

A *suite* file ``parameters/<suite>.yaml`` names the notebooks to run, the
parameter set of each (``parameters/<notebook>/<set>.yaml``) and parameters
shared by all of them. :func:`run_report` validates the whole suite first
(every injected parameter must be a real parameter of its notebook, found with
``papermill.inspect_notebook``), then executes each notebook with Papermill in
a fresh kernel of the current environment and writes::

    reports/
        index.html                      every run, newest first
        latest -> <run-id>              symlink to the newest run
        <run-id>/                       UTC YYYYmmdd-HHMMSS-<suite>
            index.html                  links, status and timings (offline)
            manifest.json               parameters, data fingerprint, versions, timings
            <notebook>/
                <notebook>.ipynb        the executed notebook (tracebacks included)
                <notebook>.html         self-contained offline HTML, code hidden
                artifacts/*.parquet     result tables (journeylib.reports.artifacts.write_artifacts)
                artifacts/summary.json

The jobs are split by module: :mod:`journeylib.reports.plan` validates the
suite and resolves the parameters (and their precedence),
:mod:`journeylib.reports.execute` runs one notebook,
:mod:`journeylib.reports.html` writes its offline HTML and
:mod:`journeylib.reports.index` keeps the manifest, the index pages and
``latest``; this module ties them together.

Nothing is started at import time; Papermill and nbconvert are imported when
a report runs.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from journeylib.config.suite import SuiteConfig
from journeylib.exceptions import JourneyLibError
from journeylib.reports.execute import NotebookFailure, execute_notebook
from journeylib.reports.html import report_header, write_report_html
from journeylib.reports.index import (
    data_fingerprint,
    iso_seconds,
    list_artifacts,
    new_manifest,
    new_run_dir,
    point_latest,
    utc_now,
    write_json,
    write_run_index,
    write_runs_index,
)
from journeylib.reports.plan import PlannedNotebook, plan_report

__all__ = ["ReportError", "run_report"]

logger = logging.getLogger(__name__)


class ReportError(JourneyLibError):
    """One or more notebooks of a report run failed.

    Raised by :func:`run_report` after every notebook has run; the run folder,
    its manifest and index still exist and list the failures.

    Parameters
    ----------
    failures : list of NotebookFailure
        Every failed notebook.
    suite : str
        The suite name.
    run_dir : pathlib.Path
        The run's folder.
    total : int
        How many notebooks the run had.
    """

    def __init__(self, failures: Sequence[NotebookFailure], *, suite: str, run_dir: Path, total: int) -> None:
        self.failures = list(failures)
        self.suite = suite
        self.run_dir = Path(run_dir)
        self.run_id = self.run_dir.name
        lines = "\n".join(f"  - {f.describe()}" for f in self.failures)
        msg = (
            f"{len(self.failures)} of {total} notebook(s) of suite {suite!r} failed (run {self.run_id}):\n"
            f"{lines}\n"
            f"Open the executed notebook(s) for the full traceback; {self.run_dir / 'index.html'} and "
            f"manifest.json list every notebook's status. Fix the cell (or the parameter that "
            f"triggers it) and run the report again."
        )
        super().__init__(msg)


def _run_one(
    item: PlannedNotebook,
    *,
    index: int,
    run_dir: Path,
    manifest: dict[str, Any],
    notebooks_dir: Path,
    execution_timeout: int,
) -> NotebookFailure | None:
    """Run notebook *index* of the run, write its HTML and list its artifacts in its manifest record."""
    record = manifest["notebooks"][index]
    folder = run_dir / item.name
    folder.mkdir(parents=True, exist_ok=True)
    out_nb = folder / f"{item.name}.ipynb"
    out_html = folder / f"{item.name}.html"
    params = dict(item.parameters)
    if item.writes_artifacts:
        params["output_dir"] = str(folder.resolve())
        record["parameter_sources"]["output_dir"] = "runner"
    record["parameters"] = params
    record["status"] = "running"
    started = utc_now()
    record["started_at"] = iso_seconds(started)
    failure, execute_seconds = execute_notebook(
        item, out_nb, parameters=params, notebooks_dir=notebooks_dir, execution_timeout=execution_timeout
    )
    record["timings"] = {"execute": round(execute_seconds, 3)}
    record["files"]["notebook"] = out_nb.relative_to(run_dir).as_posix() if out_nb.is_file() else None
    if failure is not None:
        record["status"] = "failed"
        record["error"] = failure.to_dict()

    t1 = time.perf_counter()
    if out_nb.is_file():
        if failure is None:
            record["status"] = "succeeded"
        try:
            write_report_html(
                out_nb, out_html, title=f"{item.name} — {manifest['suite']}", header=report_header(manifest, record)
            )
            record["files"]["html"] = out_html.relative_to(run_dir).as_posix()
        except Exception as exc:  # nbconvert/template problems must not hide the run's other results
            html_failure = NotebookFailure(
                name=item.name,
                source=item.path,
                stage="html",
                ename=type(exc).__name__,
                evalue=str(exc)[:500],
                executed_notebook=out_nb,
            )
            if failure is None:
                failure = html_failure
                record["status"] = "failed"
                record["error"] = failure.to_dict()
    record["timings"]["html"] = round(time.perf_counter() - t1, 3)
    tables, summary, summary_rel = list_artifacts(folder, run_dir)
    record["files"]["artifacts"] = tables
    record["files"]["summary"] = summary_rel
    record["summary"] = summary
    finished = utc_now()
    record["finished_at"] = iso_seconds(finished)
    record["seconds"] = round((finished - started).total_seconds(), 3)
    return failure


def run_report(
    suite: str | os.PathLike[str] | SuiteConfig | Mapping[str, Any],
    *,
    db: str | os.PathLike[str] | None = None,
    out: str | os.PathLike[str] = "reports",
    run_id: str | None = None,
    notebooks_dir: str | os.PathLike[str] = "notebooks",
    parameters_dir: str | os.PathLike[str] = "parameters",
    overrides: Mapping[str, Any] | None = None,
    execution_timeout: int = 300,
) -> Path:
    """Run a report suite: execute its notebooks with Papermill and write the report folder.

    The suite is validated completely before anything runs (see
    :func:`plan_report`). Each notebook then runs in a fresh ``python3``
    kernel of this interpreter, with the notebooks folder as working
    directory and the environment variables ``REPORT_CHART_MODE=static``
    (charts as inline SVG) and ``JOURNEYLIB_DB`` (the absolute store path).
    Notebooks that declare ``output_dir`` get their own report folder there,
    to save artifacts with :func:`journeylib.reports.artifacts.write_artifacts`. A
    failing notebook does not stop the others: every failure is reported at
    the end.

    Parameters
    ----------
    suite : str, os.PathLike, SuiteConfig or mapping
        A suite name (``"demo"`` -> ``<parameters_dir>/demo.yaml``), a path to
        a suite file, a :class:`SuiteConfig` or a dict.
    db : str or os.PathLike, optional
        The store (highest precedence); default: the suite's ``db``, else
        ``JOURNEYLIB_DB``, else ``data/journeylib.duckdb`` found from the
        working directory.
    out : str or os.PathLike, default "reports"
        Folder that receives ``<run-id>/``, ``latest`` and ``index.html``.
    run_id : str, optional
        The run folder name; default UTC ``YYYYmmdd-HHMMSS-<suite>``. An
        existing folder is never overwritten.
    notebooks_dir : str or os.PathLike, default "notebooks"
        Where the notebooks are; also the kernels' working directory.
    parameters_dir : str or os.PathLike, default "parameters"
        Where suites and parameter sets are.
    overrides : mapping, optional
        Command-line parameters; they win over the suite (see
        :func:`plan_report`).
    execution_timeout : int, default 300
        Seconds one cell may run before the notebook is failed.

    Returns
    -------
    pathlib.Path
        The run folder ``<out>/<run-id>``.

    Raises
    ------
    ConfigError
        If the suite, a parameter set or a parameter is invalid (nothing runs).
    JourneyLibError
        If the store cannot be opened (nothing runs), or the run folder exists.
    ReportError
        If any notebook failed, after all of them ran; it lists each failure
        (notebook, cell, error) and the run folder. ``manifest.json`` and
        ``index.html`` are written and ``latest`` points at the run.

    Examples
    --------
    >>> run_dir = run_report("demo", db="data/journeylib.duckdb")  # doctest: +SKIP
    >>> (run_dir / "manifest.json").exists()  # doctest: +SKIP
    True
    """
    if not isinstance(execution_timeout, int) or isinstance(execution_timeout, bool) or execution_timeout <= 0:
        msg = f"execution_timeout must be a positive number of seconds, got {execution_timeout!r}"
        raise ValueError(msg)
    plan = plan_report(suite, db=db, notebooks_dir=notebooks_dir, parameters_dir=parameters_dir, overrides=overrides)
    fingerprints = {store: data_fingerprint(store) for store in dict.fromkeys(item.db for item in plan.notebooks)}

    out_dir = Path(out).expanduser().resolve()
    run_dir = new_run_dir(out_dir, run_id, plan.suite.name)
    started = utc_now()
    manifest = new_manifest(
        plan, run_dir=run_dir, started=started, fingerprints=fingerprints, execution_timeout=execution_timeout
    )
    manifest_path = run_dir / "manifest.json"
    write_json(manifest_path, manifest)
    write_run_index(run_dir, manifest)

    failures: list[NotebookFailure] = []
    total = len(plan.notebooks)
    try:
        for i, item in enumerate(plan.notebooks):
            logger.info("report %s: running %s (%d/%d)", run_dir.name, item.name, i + 1, total)
            failure = _run_one(
                item,
                index=i,
                run_dir=run_dir,
                manifest=manifest,
                notebooks_dir=plan.notebooks_dir,
                execution_timeout=execution_timeout,
            )
            if failure is not None:
                failures.append(failure)
                logger.warning("report %s: %s", run_dir.name, failure.describe())
            write_json(manifest_path, manifest)
            write_run_index(run_dir, manifest)
        manifest["status"] = "failed" if failures else "succeeded"
    except BaseException:
        manifest["status"] = "interrupted"
        raise
    finally:
        finished = utc_now()
        manifest["finished_at"] = iso_seconds(finished)
        manifest["seconds"] = round((finished - started).total_seconds(), 3)
        write_json(manifest_path, manifest)
        write_run_index(run_dir, manifest)
        point_latest(out_dir, run_dir)
        write_runs_index(out_dir)
    logger.info("report %s: %s in %.1f s -> %s", run_dir.name, manifest["status"], manifest["seconds"], run_dir)
    if failures:
        raise ReportError(failures, suite=plan.suite.name, run_dir=run_dir, total=total)
    return run_dir
