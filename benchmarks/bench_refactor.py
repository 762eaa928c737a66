"""Before/after benchmark of a refactoring: report wall time per notebook and Voila time to usable.

Measures two source trees of journeylib on the same store, each with the same
interpreter (this venv's Python) and ``PYTHONPATH=<tree>``, so that the tree's
own ``journeylib`` package shadows the editable install; the report process,
the Voila server and every kernel they start inherit that ``PYTHONPATH`` (the
harness checks the import in the tree, and reads the environment of every
kernel it sees, failing when one would import another tree's code).

(a) Report: the tree's ``python -m journeylib.cli report --db DB --out TMP``
    (cwd = the tree, so its ``notebooks/`` and ``parameters/demo.yaml`` are
    used); per notebook, ``seconds`` (execute + HTML) and ``timings.execute``
    from the run's ``manifest.json``.
(b) Dashboard: for each notebook, a fresh ``python -m journeylib.cli dashboard
    --db DB --port P --notebook NB`` (cwd = the tree), and Debian's Chromium
    (``/usr/bin/chromium`` through Playwright, loopback only, a new browser
    context without cache per measurement) navigating to it. *Time to usable*
    is the time from the start of the navigation until the page shows every
    picker of the widget (``.widget-dropdown select`` with options, at least
    :attr:`Page.pickers`) and every live chart of its first view (the titles
    :attr:`Page.titles` drawn inside ``.journeylib-live``, as the browser tests
    detect it). Voila executes the whole notebook before its page script
    connects the widgets, so rendered pickers mean a live kernel: a pick is
    served at once. *Pick* is then the time from one pick (:attr:`Page.pick`)
    until every live chart is redrawn with another title.

Every measurement is repeated (``--repeat``) and, with two trees, the trees
alternate within each repeat (before, after, before, after...) so that a load
change on a shared machine hits both; the fastest figure is the one compared
(other load only slows a run down), every figure is kept in the JSON.

Usage::

    python benchmarks/bench_refactor.py --before-tree /tmp/wt_before --after-tree . --repeat 3
    python benchmarks/bench_refactor.py --tree . --label after          # one tree, merged by label

``--snapshot`` measures a copy of each tree (the files git lists, tracked and
untracked) taken at the start, so that edits made in a tree during the run do
not change the code measured halfway. The store must be readable by both
trees: when the newer code needs tables the store lacks, build one with it
(``journeylib demo --db /tmp/x.duckdb``) and pass it as ``--db`` for both.

``--before-tree`` defaults to a ``git worktree`` of ``--before-commit``
(d858905, the code before the refactoring) at ``/tmp/wt_before``, created when
missing. Results: ``benchmarks/results/refactor.json`` (runs merged by tree
label) and ``refactor.md`` (before, after and after/before ratio, once both
labels are there).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import psutil

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results" / "refactor.json"
PYTHON = sys.executable
BEFORE_COMMIT = "d858905"
BEFORE_TREE = Path("/tmp/wt_before")
CHROMIUM = Path("/usr/bin/chromium")
# The loopback-only Chromium arguments of tests/_browser.py: no background traffic, and no host
# but 127.0.0.1 resolves.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]
#: Milliseconds a page that shows an error is still given to become usable.
ERROR_GRACE_MS = 20_000
ERROR_LINE = re.compile(r"^\w+(?:Error|Exception)\b.*$", re.MULTILINE)
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
#: A static file whose answer means "Voila is up" without executing a notebook (both trees use it).
READY_PATH = "/voila/static/voila.js"


@dataclass(frozen=True)
class Page:
    """What "usable" means for one notebook's Voila page."""

    notebook: str
    titles: tuple[str, ...]  # the live charts' titles in the first view (default parameters)
    pickers: int  # dropdowns of the widget
    pick: tuple[int, str | None]  # (dropdown index, option label; None = the first option not selected)


PAGES = (
    Page("00_data_health", ("Weekly events by source",), 1, (0, None)),
    Page("01_journey_map", ("Journey funnel", "Customer flow through the milestones"), 4, (0, None)),
    Page("02_cohorts_and_segments", ("Conversion by segment",), 5, (1, "churn")),
    Page("03_churn_drivers", ("Churn: behaviours in the first 7 days",), 4, (0, "conversion")),
    Page("05_voice_of_customer", ("Emotion by journey stage",), 4, (0, None)),
)
NOTEBOOKS = tuple(p.notebook for p in PAGES)

# 'ready' when the pickers and the live charts of the first view are drawn; with `strict` false also 'error'
# when the widget shows an error or a cell printed a traceback; else false (Playwright polls it).
READY_JS = """([titles, pickers, strict]) => {
  const widgetError = document.querySelector('.journeylib-error') !== null;
  const traceback = [...document.querySelectorAll('[data-mime-type="application/vnd.jupyter.stderr"]')]
    .some(e => /Traceback|\\w+Error\\b/.test(e.textContent));
  const selects = [...document.querySelectorAll('.widget-dropdown select')].filter(s => !s.disabled && s.options.length > 0);
  const drawn = new Set([...document.querySelectorAll('.journeylib-live svg text')].map(t => t.textContent.trim()));
  if (!widgetError && titles.every(t => drawn.has(t)) && selects.length >= pickers) return 'ready';
  return (widgetError || traceback) && !strict ? 'error' : false;
}"""
# True when every live chart draws an SVG again and none of the old titles is drawn.
REDRAWN_JS = """(old) => {
  const areas = [...document.querySelectorAll('.journeylib-live')];
  if (!areas.length || !areas.every(a => a.querySelector('svg text'))) return false;
  const drawn = new Set([...document.querySelectorAll('.journeylib-live svg text')].map(t => t.textContent.trim()));
  return old.every(t => !drawn.has(t));
}"""
PAGE_TEXT_JS = """() => ({
  live: [...document.querySelectorAll('.journeylib-live svg text')].map(t => t.textContent.trim()).filter(Boolean).slice(0, 20),
  errors: [...document.querySelectorAll('.journeylib-error')].map(e => e.textContent.trim().slice(0, 500)),
  stderr: [...document.querySelectorAll('[data-mime-type="application/vnd.jupyter.stderr"]')]
            .map(e => e.textContent.trim().slice(-800)).slice(-3),
})"""


class BenchError(RuntimeError):
    """A tree could not be measured (wrong import, failed report, server that never came up, page not usable).

    ``summary`` is the one line that goes into the results; the message has the details (log tails).
    """

    def __init__(self, message: str, summary: str | None = None) -> None:
        super().__init__(message)
        self.summary = summary or message.splitlines()[0][:300]


# -- trees -------------------------------------------------------------------------------------------------
@dataclass
class Tree:
    """A source tree measured under a label."""

    label: str
    path: Path
    source: Path | None = None  # the tree *path* is a snapshot of (``--snapshot``)
    commit: str = ""
    dirty: bool = False
    journeylib_file: str = ""
    dashboard_module: str = ""

    def env(self, **extra: str) -> dict[str, str]:
        """Return this process's environment with ``PYTHONPATH=<tree>`` and nothing that picks a store or chart mode."""
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "JOURNEYLIB_DB", "REPORT_CHART_MODE")}
        env["PYTHONPATH"] = str(self.path)
        env["PYTHONDONTWRITEBYTECODE"] = "1"  # leave no __pycache__ in the trees
        env.update(extra)
        return env

    def check(self) -> None:
        """Fill in the commit and check that ``import journeylib`` in this tree imports this tree's package."""
        git = ["git", "-C", str(self.source or self.path)]
        self.commit = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
        status = subprocess.run([*git, "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True, check=True)
        self.dirty = bool(status.stdout.strip())
        code = (
            "import importlib, journeylib\n"
            "print(journeylib.__file__)\n"
            "for name in ('journeylib.reports.dashboard', 'journeylib.dashboard'):\n"
            "    try:\n"
            "        importlib.import_module(name)\n"
            "    except ImportError:\n"
            "        continue\n"
            "    print(name)\n"
            "    break\n"
        )
        done = subprocess.run([PYTHON, "-c", code], cwd=self.path, env=self.env(), capture_output=True, text=True)
        if done.returncode != 0:
            msg = f"{self.label} tree {self.path}: `python -c 'import journeylib'` failed:\n{done.stderr[-2000:]}"
            raise BenchError(msg)
        self.journeylib_file, self.dashboard_module = done.stdout.split()[:2]
        if not Path(self.journeylib_file).resolve().is_relative_to(self.path):
            msg = (
                f"{self.label} tree {self.path}: with PYTHONPATH={self.path} journeylib is imported from "
                f"{self.journeylib_file}, not from the tree; the editable install must not shadow PYTHONPATH"
            )
            raise BenchError(msg)

    def meta(self) -> dict[str, Any]:
        """Return the tree's fields for the results file."""
        return {
            "tree": str(self.source or self.path),
            "snapshot": None if self.source is None else str(self.path),
            "commit": self.commit,
            "dirty": self.dirty,
            "journeylib_file": self.journeylib_file,
            "dashboard_module": self.dashboard_module,
        }


def ensure_worktree(path: Path, commit: str) -> None:
    """Create a detached ``git worktree`` of *commit* at *path* unless it exists."""
    if path.exists():
        return
    print(f"creating git worktree {path} at {commit}", flush=True)
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(path), commit], check=True)


def snapshot(tree: Path, work: Path, label: str) -> Path:
    """Copy the files git knows in *tree* (tracked and untracked, not ignored) to a folder of *work*; return it."""
    listed = subprocess.run(
        ["git", "-C", str(tree), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        check=True,
    ).stdout.decode()
    target = work / f"snapshot-{label}"
    for name in filter(None, listed.split("\0")):
        source = tree / name
        if source.is_file():  # a tracked file deleted in the work tree is left out
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


class KernelWatch:
    """Polls the descendants of a process for Jupyter kernels and records the PYTHONPATH each one got."""

    def __init__(self, pid: int, interval: float = 0.5) -> None:
        self.pid = pid
        self.interval = interval
        self.kernels: dict[int, str | None] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def poll(self) -> None:
        """Record the kernels among the process's descendants now."""
        with contextlib.suppress(psutil.Error):
            for child in psutil.Process(self.pid).children(recursive=True):
                if child.pid in self.kernels:
                    continue
                with contextlib.suppress(psutil.Error):
                    if any("ipykernel" in part for part in child.cmdline()):
                        self.kernels[child.pid] = child.environ().get("PYTHONPATH")

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.poll()

    def __enter__(self) -> KernelWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def check(self, tree: Tree, what: str) -> int:
        """Raise unless every kernel seen had ``PYTHONPATH=<tree>``; return how many were seen."""
        wrong = {pid: p for pid, p in self.kernels.items() if p != str(tree.path)}
        if wrong:
            msg = f"{what}: kernels {sorted(wrong)} ran with PYTHONPATH {sorted(set(map(str, wrong.values())))}, not {tree.path}"
            raise BenchError(msg)
        return len(self.kernels)


# -- (a) the report run ------------------------------------------------------------------------------------
def run_report(tree: Tree, db: Path, work: Path, timeout: float) -> dict[str, Any]:
    """Run the tree's report suite; return the run's total and per-notebook seconds from its manifest.

    A run in which some notebooks failed still gives the figures of the others
    (``failed`` lists the rest); a run without a manifest raises :class:`BenchError`.
    """
    out = Path(tempfile.mkdtemp(prefix=f"report-{tree.label}-", dir=work))
    log = out / "report.log"
    argv = [PYTHON, "-m", "journeylib.cli", "report", "--db", str(db), "--out", str(out)]
    load = os.getloadavg()[0]
    start = time.perf_counter()
    with open(log, "wb") as handle:
        process = subprocess.Popen(argv, cwd=tree.path, env=tree.env(), stdout=handle, stderr=subprocess.STDOUT)
        with KernelWatch(process.pid) as watch:
            try:
                code = process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                code = -1
    wall = time.perf_counter() - start
    manifests = sorted(p for p in out.glob("*/manifest.json") if not p.parent.is_symlink())
    if not manifests:
        msg = f"{tree.label}: `{' '.join(argv)}` (cwd {tree.path}) exited {code}; log {log}:\n{log.read_text(errors='replace')[-3000:]}"
        raise BenchError(msg)
    kernels = watch.check(tree, f"{tree.label} report")
    manifest = json.loads(manifests[-1].read_text(encoding="utf-8"))
    notebooks = {
        nb["name"]: {"seconds": nb.get("seconds"), "execute": nb.get("timings", {}).get("execute"), "status": nb.get("status")}
        if nb.get("status") == "succeeded"
        else {"seconds": None, "execute": None, "status": nb.get("status"), "error": error_text(nb.get("error"))}
        for nb in manifest["notebooks"]
    }
    return {
        "exit_code": code,
        "failed": sorted(name for name, nb in notebooks.items() if nb["status"] != "succeeded"),
        "run_seconds": manifest.get("seconds"),
        "process_seconds": round(wall, 2),
        "status": manifest.get("status"),
        "git_commit": manifest.get("git_commit"),
        "data_fingerprint": manifest.get("data", {}).get("fingerprint"),
        "kernels_checked": kernels,
        "load_average": round(load, 2),
        "notebooks": notebooks,
    }


def error_text(error: Any) -> str:
    """Return a manifest record's error (a dict with ``message``, or text) as at most 600 characters."""
    return str(error.get("message", error) if isinstance(error, dict) else error or "")[:600]


# -- (b) the Voila dashboard -------------------------------------------------------------------------------
def free_port() -> int:
    """Return a TCP port free on 127.0.0.1 now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    """A dashboard server started for one notebook (``journeylib dashboard --notebook NB``) and its log."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path
    watch: KernelWatch = field(init=False)

    def __post_init__(self) -> None:
        self.watch = KernelWatch(self.process.pid)

    @property
    def url(self) -> str:
        """The notebook's page (Voila serves the one notebook at ``/``)."""
        return f"http://127.0.0.1:{self.port}/"

    def tail(self, n: int = 3000) -> str:
        """Return the end of the server's log."""
        return ANSI.sub("", self.log.read_text(errors="replace"))[-n:] if self.log.exists() else "(no log)"


@contextlib.contextmanager
def dashboard(tree: Tree, db: Path, notebook: str, work: Path, timeout: float = 120.0) -> Iterator[Server]:
    """Start the tree's dashboard for *notebook*, wait until it answers, and stop it (and its kernels) on exit."""
    port = free_port()
    log = work / f"voila-{tree.label}-{notebook}-{port}.log"
    argv = [PYTHON, "-m", "journeylib.cli", "dashboard", "--db", str(db), "--port", str(port), "--notebook", notebook]
    with open(log, "wb") as handle:
        process = subprocess.Popen(
            argv, cwd=tree.path, env=tree.env(), stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = Server(process, port, log)
    try:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                msg = f"{tree.label}: the dashboard server for {notebook} exited with {process.returncode}:\n{server.tail()}"
                raise BenchError(msg)
            with (
                contextlib.suppress(urllib.error.URLError, OSError),
                opener.open(f"http://127.0.0.1:{port}{READY_PATH}", timeout=2) as response,
            ):
                if response.status == 200:
                    break
            if time.monotonic() > deadline:
                msg = f"{tree.label}: the dashboard server for {notebook} did not answer within {timeout:.0f} s:\n{server.tail()}"
                raise BenchError(msg)
            time.sleep(0.2)
        yield server
    finally:
        server.watch.poll()
        stop(process, list(server.watch.kernels))


def stop(process: subprocess.Popen[bytes], kernels: list[int]) -> None:
    """Stop a server started in its own session (SIGTERM to its group, then SIGKILL), then any kernel left of it."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=20)
    for pid in kernels:  # Voila shuts its kernels down on SIGTERM; these pids are only the ones it started
        with contextlib.suppress(psutil.Error):
            kernel = psutil.Process(pid)
            kernel.terminate()
            kernel.wait(timeout=10)


def guard(route: Any) -> None:
    """Let through only 127.0.0.1, ``data:`` and ``blob:`` requests."""
    url = route.request.url
    if url.startswith(("data:", "blob:")) or urlparse(url).hostname == "127.0.0.1":
        route.continue_()
    else:
        route.abort()


def measure_page(browser: Any, tree: Tree, db: Path, page_spec: Page, work: Path, *, timeout_s: float) -> dict[str, Any]:
    """Serve one notebook from *tree*, open it in a fresh browser context; return time to usable and pick time."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

    record: dict[str, Any] = {"load_average": round(os.getloadavg()[0], 2)}
    with dashboard(tree, db, page_spec.notebook, work) as server:
        context = browser.new_context(viewport={"width": 1300, "height": 1200})
        try:
            page = context.new_page()
            page.route("**/*", guard)
            ready = [list(page_spec.titles), page_spec.pickers]
            state = "timeout"
            start = time.perf_counter()
            with contextlib.suppress(PlaywrightTimeoutError):
                page.goto(server.url, timeout=timeout_s * 1000)
                state = page.wait_for_function(READY_JS, arg=[*ready, False], timeout=timeout_s * 1000).json_value()
                if state == "error":  # a traceback or widget error seen; the widget may still come right
                    state = page.wait_for_function(READY_JS, arg=[*ready, True], timeout=ERROR_GRACE_MS).json_value()
            seconds = time.perf_counter() - start
            if state == "ready":
                tracebacks = page.evaluate(PAGE_TEXT_JS)["stderr"]
                if any(re.search(r"Traceback|\w+Error\b", t) for t in tracebacks):
                    record["page_errors"] = tracebacks
            server.watch.poll()
            record["kernels_checked"] = server.watch.check(tree, f"{tree.label} dashboard {page_spec.notebook}")
            if state != "ready":
                shot = work / f"failed-{tree.label}-{page_spec.notebook}.png"
                page.screenshot(path=str(shot), full_page=True)
                seen = page.evaluate(PAGE_TEXT_JS)
                errors = [m.group(0) for t in seen["stderr"] for m in ERROR_LINE.finditer(t)] + seen["errors"]
                summary = f"dashboard {page_spec.notebook}: not usable ({state}) after {seconds:.0f} s" + (
                    f": {errors[-1][:200]}" if errors else ""
                )
                msg = f"{tree.label} {summary}; page: {seen}; screenshot {shot}; Voila log tail:\n{server.tail()}"
                raise BenchError(msg, summary)
            record["time_to_usable"] = round(seconds, 2)

            index, label = page_spec.pick
            select = page.locator(".widget-dropdown select").nth(index)
            if label is None:
                label = select.evaluate("s => [...s.options].find(o => !o.selected).label")
            start = time.perf_counter()
            select.select_option(label=label)
            try:
                page.wait_for_function(REDRAWN_JS, arg=list(page_spec.titles), timeout=120_000)
                record["pick_seconds"] = round(time.perf_counter() - start, 2)
            except PlaywrightTimeoutError:
                record["pick_seconds"] = None
                record["pick_error"] = f"no redraw within 120 s of picking {label!r}: {page.evaluate(PAGE_TEXT_JS)}"
            record["pick"] = label
        finally:
            context.close()
    return record


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    """Launch Debian's Chromium headless through Playwright (never a browser of Playwright's own)."""
    if not CHROMIUM.exists():
        msg = f"{CHROMIUM} is missing: apt-get install -y chromium (never `playwright install`)"
        raise BenchError(msg)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


# -- summary and files -------------------------------------------------------------------------------------
def fastest(values: list[Any]) -> float | None:
    """Return the smallest number of *values* (None when there is none)."""
    numbers = [v for v in values if isinstance(v, int | float)]
    return min(numbers) if numbers else None


def summarise(run: dict[str, Any]) -> dict[str, Any]:
    """Per notebook, the fastest of the repeats: report seconds and execute, time to usable, pick seconds."""
    summary: dict[str, Any] = {}
    for nb in run["notebooks"]:
        reports = [r["notebooks"].get(nb, {}) for r in run.get("report", [])]
        pages = run.get("dashboard", {}).get(nb, [])
        summary[nb] = {
            "report_seconds": fastest([r.get("seconds") for r in reports]),
            "report_execute": fastest([r.get("execute") for r in reports]),
            "time_to_usable": fastest([p.get("time_to_usable") for p in pages]),
            "pick_seconds": fastest([p.get("pick_seconds") for p in pages]),
        }
    summary["(report run)"] = {"report_seconds": fastest([r.get("run_seconds") for r in run.get("report", [])])}
    return summary


def ratio(before: float | None, after: float | None) -> str:
    """Return ``after / before`` as text, or an em dash."""
    return f"{after / before:.2f}" if before and after is not None else "—"


def num(value: float | None) -> str:
    """Return seconds as text, or an em dash."""
    return "—" if value is None else f"{value:.1f}"


def write_markdown(data: dict[str, Any], path: Path) -> None:
    """Write the before/after tables (fastest of the repeats, seconds; ratio = after / before)."""
    runs = data["runs"]
    before, after = runs.get("before"), runs.get("after")
    lines = ["# Refactoring: before vs after", ""]
    if before is None or after is None:
        lines += [f"Only {', '.join(sorted(runs)) or 'no'} run(s) recorded so far; run both trees for the table.", ""]
        path.write_text("\n".join(lines), encoding="utf-8")
        return
    b, a = before["summary"], after["summary"]
    lines += [
        f"Before: `{before['commit'][:10]}` ({before['tree']}); after: `{after['commit'][:10]}`"
        f"{' + uncommitted changes' if after.get('dirty') else ''} ({after['tree']}).",
        f"Store: `{data['db']}`. Fastest of {before['repeat']} / {after['repeat']} repeat(s); seconds; ratio = after / before "
        "(below 1 = faster after).",
        f"Recorded {before['recorded_at']} / {after['recorded_at']}; 1-min load average at the start of each "
        f"measurement: {before['load_average_range']} / {after['load_average_range']} (2 cores).",
        "",
        "## (a) Report run (`journeylib report`), per notebook",
        "",
        "| notebook | seconds before | after | ratio | execute before | after | ratio |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for nb in [*before["notebooks"], "(report run)"]:
        bs, as_ = b.get(nb, {}), a.get(nb, {})
        row = [nb, num(bs.get("report_seconds")), num(as_.get("report_seconds")), ratio(bs.get("report_seconds"), as_.get("report_seconds"))]
        if nb == "(report run)":
            row += ["", "", ""]
        else:
            row += [num(bs.get("report_execute")), num(as_.get("report_execute")), ratio(bs.get("report_execute"), as_.get("report_execute"))]
        lines.append("| " + " | ".join(row) + " |")
    lines += [
        "",
        "## (b) Voila dashboard: time to usable, and one pick",
        "",
        "Time to usable: navigation until the widget's pickers and its live chart(s) of the first view are drawn "
        "(kernel start, notebook execution and rendering). Pick: one picker changed until every live chart is redrawn.",
        "",
        "| notebook | usable when | TTU before | after | ratio | pick before | after | ratio |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for spec in PAGES:
        if spec.notebook not in before["notebooks"]:
            continue
        bs, as_ = b.get(spec.notebook, {}), a.get(spec.notebook, {})
        when = f"{spec.pickers} picker(s); " + ", ".join(f"“{t}”" for t in spec.titles)
        lines.append(
            "| "
            + " | ".join(
                [
                    spec.notebook,
                    when,
                    num(bs.get("time_to_usable")),
                    num(as_.get("time_to_usable")),
                    ratio(bs.get("time_to_usable"), as_.get("time_to_usable")),
                    num(bs.get("pick_seconds")),
                    num(as_.get("pick_seconds")),
                    ratio(bs.get("pick_seconds"), as_.get("pick_seconds")),
                ]
            )
            + " |"
        )
    failures = [f"- {label}: {f}" for label, run in sorted(runs.items()) for f in run.get("failures", [])]
    if failures:
        lines += ["", "## Failures", "", *failures]
    lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")


def merge(results: Path, db: Path, runs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Merge *runs* (by tree label) into *results* and write it and its Markdown table; return the data."""
    data: dict[str, Any] = {}
    if results.is_file():
        with contextlib.suppress(json.JSONDecodeError):
            data = json.loads(results.read_text(encoding="utf-8"))
    if data.get("db") not in (None, str(db)):
        data = {}  # another store: older runs are not comparable
    data.update(
        {
            "benchmark": "refactor",
            "db": str(db),
            "machine": {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count()},
        }
    )
    data.setdefault("runs", {}).update(runs)
    data["runs"] = dict(sorted(data["runs"].items(), key=lambda kv: (kv[0] != "before", kv[0])))
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    write_markdown(data, results.with_suffix(".md"))
    return data


# -- main --------------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tree", type=Path, help="one source tree to measure (its runs are merged under --label)")
    parser.add_argument("--label", help="label of --tree (default: 'after' for this repository, else 'before')")
    parser.add_argument("--before-tree", type=Path, help=f"the tree before the refactoring (default {BEFORE_TREE}, created as a git worktree of --before-commit)")
    parser.add_argument("--after-tree", type=Path, help=f"the tree after the refactoring (default {ROOT})")
    parser.add_argument("--before-commit", default=BEFORE_COMMIT, help="commit of the default --before-tree (default %(default)s)")
    parser.add_argument("--db", type=Path, default=ROOT / "data" / "journeylib.duckdb", help="the store (default: data/journeylib.duckdb of this repository)")
    parser.add_argument("--repeat", type=int, default=3, help="measurements per tree and notebook; the fastest is compared (default %(default)s)")
    parser.add_argument("--notebooks", nargs="+", choices=NOTEBOOKS, default=list(NOTEBOOKS), help="notebooks measured (default: all five)")
    parser.add_argument("--skip-report", action="store_true", help="skip (a), the report run")
    parser.add_argument("--skip-dashboard", action="store_true", help="skip (b), the Voila pages")
    parser.add_argument("--page-timeout", type=float, default=300.0, help="seconds a page may take to be usable (default %(default)s)")
    parser.add_argument("--report-timeout", type=float, default=1800.0, help="seconds a report run may take (default %(default)s)")
    parser.add_argument("--results", type=Path, default=RESULTS, help="results file (default benchmarks/results/refactor.json; the .md goes beside it)")
    parser.add_argument(
        "--snapshot", action="store_true", help="measure a copy of each tree taken at the start (a tree others edit meanwhile stays put)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the work folder (report runs, Voila logs) even when everything succeeded")
    args = parser.parse_args(argv)

    if args.repeat < 1:
        parser.error(f"--repeat must be at least 1, got {args.repeat}")
    db = args.db.expanduser().resolve()
    if not db.is_file():
        parser.error(f"store {db} does not exist; create it with `make demo` or pass --db")
    if args.tree is not None:
        if args.before_tree or args.after_tree:
            parser.error("--tree measures one tree; use it without --before-tree/--after-tree")
        path = args.tree.resolve()
        trees = [Tree(args.label or ("after" if path == ROOT else "before"), path)]
    else:
        before = (args.before_tree or BEFORE_TREE).resolve()
        if args.before_tree is None:
            ensure_worktree(before, args.before_commit)
        trees = [Tree("before", before), Tree("after", (args.after_tree or ROOT).resolve())]
    if len({t.label for t in trees}) != len(trees):
        parser.error("two trees with one label")
    work = Path(tempfile.mkdtemp(prefix="bench_refactor_"))
    for tree in trees:
        if args.snapshot:
            tree.source, tree.path = tree.path, snapshot(tree.path, work, tree.label)
        tree.check()
        print(f"{tree.label}: {tree.source or tree.path} at {tree.commit[:10]}{' (dirty)' if tree.dirty else ''}"
              f"{f', snapshot {tree.path}' if tree.source else ''}; "
              f"journeylib from {tree.journeylib_file}; dashboard module {tree.dashboard_module}", flush=True)

    runs: dict[str, dict[str, Any]] = {
        t.label: {
            **t.meta(),
            "recorded_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "repeat": args.repeat,
            "notebooks": list(args.notebooks),
            "report": [],
            "dashboard": {nb: [] for nb in args.notebooks},
            "failures": [],
        }
        for t in trees
    }
    loads: dict[str, list[float]] = {t.label: [] for t in trees}

    def failed(tree: Tree, exc: BenchError) -> None:
        print(f"FAILED {exc}", flush=True)
        runs[tree.label]["failures"].append(exc.summary.removeprefix(f"{tree.label}: ").removeprefix(f"{tree.label} "))

    if not args.skip_report:
        for r in range(args.repeat):
            for tree in trees:
                print(f"[report {r + 1}/{args.repeat}] {tree.label} ...", flush=True)
                try:
                    record = run_report(tree, db, work, args.report_timeout)
                except BenchError as exc:
                    failed(tree, exc)
                    continue
                runs[tree.label]["report"].append(record)
                loads[tree.label].append(record["load_average"])
                for name in record["failed"]:
                    nb = record["notebooks"][name]
                    runs[tree.label]["failures"].append(f"report {name}: {nb['status']}: {nb['error'][:300]}")
                per_nb = ", ".join(f"{nb} {v['seconds']}" for nb, v in record["notebooks"].items())
                print(f"    {record['run_seconds']} s ({per_nb})", flush=True)
    if not args.skip_dashboard:
        with chromium() as browser:
            for r in range(args.repeat):
                for spec in (p for p in PAGES if p.notebook in args.notebooks):
                    for tree in trees:
                        print(f"[dashboard {r + 1}/{args.repeat}] {tree.label} {spec.notebook} ...", flush=True)
                        try:
                            record = measure_page(browser, tree, db, spec, work, timeout_s=args.page_timeout)
                        except BenchError as exc:
                            failed(tree, exc)
                            continue
                        runs[tree.label]["dashboard"][spec.notebook].append(record)
                        loads[tree.label].append(record["load_average"])
                        print(f"    usable after {record['time_to_usable']} s; pick {record.get('pick')!r} redrawn after "
                              f"{record.get('pick_seconds')} s", flush=True)
    for tree in trees:
        run = runs[tree.label]
        seen = loads[tree.label]
        run["load_average_range"] = f"{min(seen):.1f}–{max(seen):.1f}" if seen else "—"
        run["summary"] = summarise(run)
    merge(args.results, db, runs)
    print(f"results: {args.results} and {args.results.with_suffix('.md')}")
    failures = sum(len(run["failures"]) for run in runs.values())
    if failures or args.keep:
        print(f"work folder kept: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
