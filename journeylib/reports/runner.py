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

import contextlib
import contextvars
import copy
import dataclasses
import functools
import json
import logging
import os
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any, TypeVar

from journeylib.config.suite import SuiteConfig
from journeylib.exceptions import ConfigError, JourneyLibError
from journeylib.reports.engine import engine_data_version
from journeylib.reports.execute import NotebookFailure, execute_notebook, kill_report_kernels
from journeylib.reports.html import report_header, write_report_html
from journeylib.reports.index import (
    data_version,
    iso_seconds,
    latest_run,
    list_artifacts,
    new_manifest,
    new_run_dir,
    point_latest,
    prune_runs,
    utc_now,
    write_json,
    write_run_index,
    write_runs_index,
)
from journeylib.reports.plan import PlannedNotebook, ReportPlan, apply_sample, plan_report, resolve_sample
from journeylib.store import Store
from journeylib.store.interrupts import interrupt_queries
from journeylib.store.progress import progress_bar

__all__ = ["ReportError", "default_jobs", "run_report"]

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
    latest : str, optional
        The run ``latest`` still points at (a failed run never replaces it);
        None when no run has succeeded in that reports folder yet.
    """

    def __init__(
        self, failures: Sequence[NotebookFailure], *, suite: str, run_dir: Path, total: int, latest: str | None = None
    ) -> None:
        self.failures = list(failures)
        self.suite = suite
        self.run_dir = Path(run_dir)
        self.run_id = self.run_dir.name
        self.latest = latest
        lines = "\n".join(f"  - {f.describe()}" for f in self.failures)
        kept = (
            f"{self.run_dir.parent / 'latest'} still points at the last good run, {latest}"
            if latest
            else f"{self.run_dir.parent / 'latest'} was not created (no run has succeeded yet)"
        )
        msg = (
            f"{len(self.failures)} of {total} notebook(s) of suite {suite!r} failed (run {self.run_id}):\n"
            f"{lines}\n"
            f"{kept}. Open the executed notebook(s) for the full traceback; {self.run_dir / 'index.html'} and "
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
    publish: Callable[[int, dict[str, Any]], None],
) -> tuple[NotebookFailure | None, dict[str, Any]]:
    """Run notebook *index* of the run, write its HTML and list its artifacts; return its manifest record.

    The record is a copy of the manifest's, which other threads may be writing
    out: *publish* puts it back into the manifest (and writes the manifest)
    once it says the notebook is running; the caller publishes the final one.
    """
    record = copy.deepcopy(manifest["notebooks"][index])
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
    publish(index, record)
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
    return failure, record


def _customers(item: PlannedNotebook) -> int | None:
    """How many customers the notebook's data has; None when that needs Spark (not listed locally)."""
    if item.db is not None:
        with Store(item.db, read_only=True) as store:
            return store.count("customers")
    rows = engine_data_version(item.data_key)["tables"]["customers"].get("rows")
    return int(rows) if rows is not None else None


def _sample_plan(plan: ReportPlan, sample: float | int) -> tuple[ReportPlan, dict[str, Any]]:
    """Apply ``--sample`` to a plan whose notebooks read one store or engine."""
    customers = _customers(plan.notebooks[0])
    if customers is not None:
        return apply_sample(plan, sample, customers=customers)
    source = engine_data_version(plan.notebooks[0].data_key)["tables"]["customers"]["source"]
    if isinstance(sample, float):
        msg = (
            f"--sample {sample} (a share of the customers) needs the number of customers before the run, which is "
            f"known only when customers is read from Parquet files on this machine; here it is read from {source}. "
            "Give a number of customers instead (e.g. --sample 5000)"
        )
        raise ConfigError([msg], str(plan.notebooks[0].data_key))
    sampled, record = apply_sample(plan, sample, customers=int(sample))
    record["of_customers"] = None
    record["note"] = (
        f"a sample of {int(sample):,} customers was asked for; the number of customers (read from {source}) is not "
        "known before the run, so every customer is analysed if there are fewer"
    )
    return sampled, record


#: Most notebooks run side by side by default (each kernel holds a few hundred MiB).
MAX_DEFAULT_JOBS = 4


def default_jobs() -> int:
    """Return how many notebooks a report run executes side by side by default.

    Returns
    -------
    int
        The CPUs this process may use (``os.sched_getaffinity``, else
        ``os.cpu_count()``), at most :data:`MAX_DEFAULT_JOBS`, at least 1.
    """
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(MAX_DEFAULT_JOBS, cpus))


def _start_order(plan: ReportPlan, out_dir: Path) -> tuple[list[int], str]:
    """Return the order notebooks start in: longest first, by their seconds in the suite's last good run.

    With several jobs, starting the longest notebooks first makes the run end
    sooner (the short ones fill in at the end). Notebooks the last run did not
    have start first, in suite order; without a last run of this suite, the
    suite order is kept. Returns the indexes and where the order came from.
    """
    order = list(range(len(plan.notebooks)))
    last = out_dir / "latest" / "manifest.json"
    try:
        previous = json.loads(last.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return order, "the suite's order (no earlier run in this reports folder)"
    if previous.get("suite") != plan.suite.name:
        return order, f"the suite's order (the last good run in {out_dir} is of suite {previous.get('suite')!r})"
    seconds = {
        r.get("name"): r.get("seconds") for r in previous.get("notebooks", []) if isinstance(r.get("seconds"), (int, float))
    }
    order.sort(key=lambda i: -seconds.get(plan.notebooks[i].name, float("inf")))
    return order, f"longest first, by the seconds of run {previous.get('run_id')}"


#: Seconds an interrupted planning step is given to end once its DuckDB statements are interrupted.
PLANNING_STOP_WAIT = 10.0

_T = TypeVar("_T")


def _interruptible(step: Callable[[], _T]) -> _T:
    """Run the planning *step* in a helper thread while this one waits, so that Ctrl-C or SIGTERM ends it at once.

    DuckDB's Python client notices Ctrl-C only when a statement ends (an 11-s
    statement runs its 11 s, then raises ``RuntimeError("Query
    interrupted")``), while a thread that waits gets Python's
    ``KeyboardInterrupt`` at once. On one, the DuckDB statements of the
    helper thread are interrupted (:func:`journeylib.store.interrupts.interrupt_queries`,
    again every 0.1 s, so that a statement it starts meanwhile stops too),
    it is given :data:`PLANNING_STOP_WAIT` seconds to end, and the
    ``KeyboardInterrupt`` goes on (whatever the step raised meanwhile); a
    step that does not end by then (one waiting on Spark, say) is left to
    finish alone in a daemon thread: planning only reads, and its result is
    dropped. Whatever *step* returns or raises otherwise is returned or
    raised here. The step runs in a copy of this thread's context
    (:mod:`contextvars`).

    The end of the step is told by an event, not by joining the thread: on
    Python 3.11 a ``KeyboardInterrupt`` that lands in ``Thread.join`` marks
    the thread as ended while it still runs.
    """
    outcome: dict[str, Any] = {}
    ended = threading.Event()
    context = contextvars.copy_context()

    def target() -> None:
        try:
            outcome["value"] = context.run(step)
        except BaseException as exc:  # handed to the waiting thread, which raises it
            outcome["error"] = exc
        finally:
            ended.set()

    thread = threading.Thread(target=target, name="journeylib-report-plan", daemon=True)
    thread.start()
    try:
        while not ended.wait(0.5):  # a wait with a timeout: Python runs the signal handlers between two (also on Windows)
            pass
    except BaseException:
        deadline = time.monotonic() + PLANNING_STOP_WAIT
        while True:
            interrupt_queries(thread)
            if ended.wait(0.1) or time.monotonic() >= deadline:
                break
        raise
    if "error" in outcome:
        error: BaseException = outcome.pop("error")
        raise error
    value: _T = outcome["value"]
    return value


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """Turn SIGTERM into ``KeyboardInterrupt`` while a report runs, so that it stops the run as Ctrl-C does.

    Only in the main thread, and only while SIGTERM has its default action
    (ending the process at once, leaving the manifest ``running`` and the
    kernels orphaned); a handler installed by the application is left alone.
    """
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def run_report(
    suite: str | os.PathLike[str] | SuiteConfig | Mapping[str, Any],
    *,
    db: str | os.PathLike[str] | None = None,
    engine: str | os.PathLike[str] | None = None,
    out: str | os.PathLike[str] = "reports",
    run_id: str | None = None,
    notebooks_dir: str | os.PathLike[str] = "notebooks",
    parameters_dir: str | os.PathLike[str] = "parameters",
    overrides: Mapping[str, Any] | None = None,
    execution_timeout: int = 300,
    keep_runs: int | None = None,
    sample: float | int | None = None,
    progress: bool | None = None,
    jobs: int | None = None,
) -> Path:
    """Run a report suite: execute its notebooks with Papermill and write the report folder.

    Everything that can be checked is checked before any notebook starts
    (nothing is written then): the suite, every parameter against its
    notebook's ``parameters`` cell (names and declared types), the
    parameter-set files, the journey definitions and alert-rule files the
    notebooks will load (see :func:`plan_report`), the ``--sample`` request
    and the store. Each notebook then runs in a fresh ``python3`` kernel of
    this interpreter, with the notebooks folder as working directory and the
    environment variables ``REPORT_CHART_MODE=static`` (charts as inline
    SVG) and ``JOURNEYLIB_DB`` (the absolute DuckDB store path, when there
    is one). With *engine* every notebook gets ``engine`` (the engine
    configuration's absolute path) and an empty ``db``, and opens the store
    that file describes (Spark, or a DuckDB file); the manifest records the
    engine and its data version (:func:`journeylib.reports.engine.engine_data_version`). Notebooks that
    declare ``output_dir`` get their own report folder there, to save
    artifacts with :func:`journeylib.reports.artifacts.write_artifacts`. A
    failing notebook does not stop the others: every failure is reported at
    the end.

    ``<out>/latest`` is switched to the run (atomically) only when every
    notebook succeeded; a failed or interrupted run leaves it on the last
    good run. With *keep_runs* (or the suite's ``keep_runs``), the oldest
    runs of the suite beyond that number are deleted when the run ends
    (never the run ``latest`` points at, nor this one).

    Ctrl-C (``KeyboardInterrupt``) stops a run at any time, and so does
    SIGTERM when ``run_report`` runs in the main thread and SIGTERM has its
    default action; the ``KeyboardInterrupt`` goes on to the caller. While
    the run is planned (the data versions of a large store take seconds) its
    DuckDB statements are interrupted and nothing is written; once the
    notebooks run, their kernels are killed and the manifest says
    ``interrupted``.

    Parameters
    ----------
    suite : str, os.PathLike, SuiteConfig or mapping
        A suite name (``"demo"`` -> ``<parameters_dir>/demo.yaml``), a path to
        a suite file, a :class:`SuiteConfig` or a dict.
    db : str or os.PathLike, optional
        The store (highest precedence); default: the suite's ``db``, else
        ``JOURNEYLIB_DB``, else ``data/journeylib.duckdb`` found from the
        working directory. Refused together with *engine*.
    engine : str or os.PathLike, optional
        An engine configuration (``engine.yaml``: ``engine: spark`` with its
        tables, or ``engine: duckdb`` with its ``db``) every notebook opens
        its store from; highest precedence (a suite or parameter set may also
        give ``engine``). Validated before any notebook starts; its local
        paths must be absolute (the kernels run in *notebooks_dir*).
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
    keep_runs : int, optional
        How many runs of the suite to keep; wins over the suite's
        ``keep_runs``. None: the suite's, else every run is kept.
    sample : float or int, optional
        Run every notebook on one seeded random sample of customers: a share
        (``0 < sample < 1``) or a number of customers (``>= 1``), injected as
        ``sample_n`` (see :func:`journeylib.reports.plan.apply_sample`).
        Every notebook of the suite must declare ``sample_n``.
    progress : bool, optional
        Draw a progress bar over the notebooks on stderr; None (default):
        only when stderr is a terminal.
    jobs : int, optional
        How many notebooks run side by side, each in its own kernel; default
        :func:`default_jobs` (the CPUs, at most 4). Notebooks share nothing
        but the store (read-only) and the persistent result store, whose
        entries are written atomically. With more than one job the longest
        notebooks (by the suite's last good run in *out*) start first; the
        manifest and index list them in suite order either way.

    Returns
    -------
    pathlib.Path
        The run folder ``<out>/<run-id>``.

    Raises
    ------
    ConfigError
        If the suite, a parameter set, a parameter, a journey definition,
        an alert-rule file or the engine configuration is invalid, *db* and
        *engine* are both given, or *sample* cannot apply (nothing runs,
        nothing is written).
    JourneyLibError
        If the store cannot be opened (nothing runs), or the run folder exists.
    ReportError
        If any notebook failed, after all of them ran; it lists each failure
        (notebook, cell number and first line, exception type and message)
        and the run folder. ``manifest.json`` and ``index.html`` are written;
        ``latest`` still points at the previous good run.

    Examples
    --------
    >>> run_dir = run_report("demo", db="data/journeylib.duckdb", sample=0.1, keep_runs=8)  # doctest: +SKIP
    >>> (run_dir / "manifest.json").exists()  # doctest: +SKIP
    True
    """
    t_start = time.perf_counter()
    if not isinstance(execution_timeout, int) or isinstance(execution_timeout, bool) or execution_timeout <= 0:
        msg = f"execution_timeout must be a positive number of seconds, got {execution_timeout!r}"
        raise ValueError(msg)
    if keep_runs is not None and (not isinstance(keep_runs, int) or isinstance(keep_runs, bool) or keep_runs < 1):
        msg = f"keep_runs must be a positive number of runs, got {keep_runs!r}"
        raise ValueError(msg)
    if jobs is None:
        jobs = default_jobs()
    if not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1:
        msg = f"jobs must be a positive number of notebooks to run side by side, got {jobs!r}"
        raise ValueError(msg)
    if sample is not None:
        resolve_sample(sample, 1)  # the request's form, before anything is read
    with _terminate_as_interrupt():
        prepared = _interruptible(
            functools.partial(
                _prepare,
                suite,
                db=db,
                engine=engine,
                notebooks_dir=notebooks_dir,
                parameters_dir=parameters_dir,
                overrides=overrides,
                sample=sample,
                out=out,
                jobs=jobs,
                keep_runs=keep_runs,
                t_start=t_start,
            )
        )
        return _run(prepared, run_id=run_id, execution_timeout=execution_timeout, progress=progress, t_start=t_start)


@dataclasses.dataclass(frozen=True)
class _Prepared:
    """What a run needs before its folder is made: the plan, its data versions, where it goes and in which order."""

    plan: ReportPlan
    sample: dict[str, Any] | None
    versions: dict[Path, dict[str, Any]]
    timings: dict[str, float]
    out_dir: Path
    keep: int | None
    jobs: int
    order: list[int]
    order_note: str


def _prepare(
    suite: str | os.PathLike[str] | SuiteConfig | Mapping[str, Any],
    *,
    db: str | os.PathLike[str] | None,
    engine: str | os.PathLike[str] | None,
    notebooks_dir: str | os.PathLike[str],
    parameters_dir: str | os.PathLike[str],
    overrides: Mapping[str, Any] | None,
    sample: float | int | None,
    out: str | os.PathLike[str],
    jobs: int,
    keep_runs: int | None,
    t_start: float,
) -> _Prepared:
    """Plan the run: validate the suite, apply ``--sample``, read the data versions and the start order; write nothing."""
    plan = plan_report(
        suite, db=db, engine=engine, notebooks_dir=notebooks_dir, parameters_dir=parameters_dir, overrides=overrides
    )
    stores = list(dict.fromkeys(item.data_key for item in plan.notebooks))
    sample_record: dict[str, Any] | None = None
    if sample is not None:
        if len(stores) > 1:
            msg = f"--sample needs one store for the whole suite; the notebooks of suite {plan.suite.name!r} read {len(stores)}: {', '.join(map(str, stores))}"
            raise ConfigError([msg], str(plan.suite_file) if plan.suite_file else None)
        plan, sample_record = _sample_plan(plan, sample)
        if sample_record["note"]:
            logger.warning("report: %s", sample_record["note"])
    t_preflight = time.perf_counter()
    versions: dict[Path, dict[str, Any]] = {}
    for item in plan.notebooks:
        if item.data_key not in versions:
            versions[item.data_key] = data_version(item.data_key) if item.engine is None else engine_data_version(item.data_key)
            if versions[item.data_key].get("note"):
                logger.warning("report: engine %s: %s", item.data_key, versions[item.data_key]["note"])
    t_data = time.perf_counter()
    out_dir = Path(out).expanduser().resolve()
    total = len(plan.notebooks)
    jobs = min(jobs, total) if total else 1
    order, order_note = _start_order(plan, out_dir) if jobs > 1 else (list(range(total)), "the suite's order")
    return _Prepared(
        plan=plan,
        sample=sample_record,
        versions=versions,
        timings={"preflight": round(t_preflight - t_start, 3), "data_version": round(t_data - t_preflight, 3)},
        out_dir=out_dir,
        keep=keep_runs if keep_runs is not None else plan.suite.keep_runs,
        jobs=jobs,
        order=order,
        order_note=order_note,
    )


def _run(
    prepared: _Prepared, *, run_id: str | None, execution_timeout: int, progress: bool | None, t_start: float
) -> Path:
    """Make the run's folder and manifest, run the notebooks, and finish the manifest, the index pages and ``latest``."""
    plan, out_dir, keep, jobs, order = prepared.plan, prepared.out_dir, prepared.keep, prepared.jobs, prepared.order
    fingerprints = {store: str(v["fingerprint"]) for store, v in prepared.versions.items()}
    run_dir = new_run_dir(out_dir, run_id, plan.suite.name)
    started = utc_now()
    try:
        manifest = new_manifest(
            plan,
            run_dir=run_dir,
            started=started,
            fingerprints=fingerprints,
            execution_timeout=execution_timeout,
            data_versions=prepared.versions,
            sample=prepared.sample,
            keep_runs=keep,
        )
        manifest["timings"] = {**prepared.timings, "notebooks": {}, "total": None}
        manifest["execution"]["jobs"] = jobs
        manifest["execution"]["start_order"] = {"notebooks": [plan.notebooks[i].name for i in order], "by": prepared.order_note}
    except BaseException:  # interrupted (or failing) before anything of the run was written: leave no empty folder
        shutil.rmtree(run_dir, ignore_errors=True)
        raise
    manifest_path = run_dir / "manifest.json"

    failures: list[NotebookFailure | None] = [None] * len(plan.notebooks)
    total = len(plan.notebooks)
    lock = threading.Lock()

    def publish(index: int, record: dict[str, Any]) -> None:
        with lock:
            manifest["notebooks"][index] = copy.deepcopy(record)
            write_json(manifest_path, manifest)
            write_run_index(run_dir, manifest)

    def run(index: int) -> tuple[NotebookFailure | None, dict[str, Any]]:
        item = plan.notebooks[index]
        logger.info("report %s: running %s (%d/%d)", run_dir.name, item.name, index + 1, total)
        return _run_one(
            item,
            index=index,
            run_dir=run_dir,
            manifest=manifest,
            notebooks_dir=plan.notebooks_dir,
            execution_timeout=execution_timeout,
            publish=publish,
        )

    bar = progress_bar(total=total, desc=f"report {plan.suite.name}", unit="notebook", progress=progress)
    pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="journeylib-report")
    futures: dict[Future[tuple[NotebookFailure | None, dict[str, Any]]], int] = {}
    try:
        write_json(manifest_path, manifest)
        write_run_index(run_dir, manifest)
        futures.update((pool.submit(run, i), i) for i in order)
        pending = set(futures)
        while pending:
            # a timeout, so that an interrupt (Ctrl-C) is handled within a fraction of a second
            done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
            for future in done:
                i = futures[future]
                failure, record = future.result()
                publish(i, record)
                with lock:
                    manifest["timings"]["notebooks"][record["name"]] = record["seconds"]
                bar.set_postfix_str(f"{record['name']} {record['status']} in {record['seconds']:.1f} s", refresh=False)
                bar.update(1)
                if failure is not None:
                    failures[i] = failure
                    logger.warning("report %s: %s", run_dir.name, failure.describe())
        manifest["timings"]["notebooks"] = {
            item.name: manifest["timings"]["notebooks"][item.name]
            for item in plan.notebooks
            if item.name in manifest["timings"]["notebooks"]
        }
        failed = [f for f in failures if f is not None]
        manifest["status"] = "failed" if failed else "succeeded"
        manifest["exit_status"] = 1 if failed else 0
    except BaseException:
        manifest["status"] = "interrupted"
        manifest["exit_status"] = 130
        pool.shutdown(wait=False, cancel_futures=True)
        # The running notebooks fail at once instead of running to their end; a kernel still starting is killed
        # on the next round, so no notebook outlives the run.
        killed = 0
        running = [f for f in futures if not f.done()]
        while running:
            killed += kill_report_kernels()
            running = list(wait(running, timeout=0.2).not_done)
        if killed:
            logger.warning("report %s: interrupted; stopped %d running notebook kernel(s)", run_dir.name, killed)
        raise
    finally:
        pool.shutdown(wait=True)
        bar.close()
        finished = utc_now()
        manifest["finished_at"] = iso_seconds(finished)
        manifest["seconds"] = round((finished - started).total_seconds(), 3)
        if manifest["status"] == "succeeded":
            point_latest(out_dir, run_dir)  # a failed or interrupted run never replaces latest
        manifest["latest"] = latest_run(out_dir)
        if keep is not None:
            try:
                manifest["retention"]["removed"] = prune_runs(out_dir, suite=plan.suite.name, keep=keep, current=run_dir)
            except OSError as exc:  # a run that could not be deleted must not hide this run's result
                manifest["retention"]["error"] = f"{type(exc).__name__}: {exc}"
                logger.warning("report %s: could not delete old runs (keep_runs=%d): %s", run_dir.name, keep, exc)
        manifest["timings"]["total"] = round(time.perf_counter() - t_start, 3)
        write_json(manifest_path, manifest)
        write_run_index(run_dir, manifest)
        write_runs_index(out_dir)
    logger.info("report %s: %s in %.1f s -> %s", run_dir.name, manifest["status"], manifest["seconds"], run_dir)
    failed = [f for f in failures if f is not None]
    if failed:
        raise ReportError(failed, suite=plan.suite.name, run_dir=run_dir, total=total, latest=manifest["latest"])
    return run_dir
