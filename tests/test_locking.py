"""Readers never lock out writers: an ingest runs while a dashboard page, a report and an analysis have the store open.

DuckDB lets one process write a store or several read it, never both at once.
A read-only :class:`~journeylib.store.Store` holds the file only during an
operation or a session; a store refused by another process's lock waits for it
a bounded time (``lock_wait`` / ``JOURNEYLIB_LOCK_WAIT``) and then names the
holder (docs/adr/0008-readers-release-the-store.md).
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from journeylib.datasets import synthesize
from journeylib.exceptions import JourneyLibError, StoreError, StoreLockedError
from journeylib.journey.stages import TRACE_ENV
from journeylib.reports import run_report
from journeylib.reports.dashboard import (
    dashboard_url,
    find_free_port,
    start_dashboard,
    stop_dashboard,
    wait_until_ready,
)
from journeylib.store import Store
from journeylib.store.errors import lock_wait_seconds
from journeylib.store.ingest import ingest_file, ingest_folder

ROOT = Path(__file__).resolve().parents[1]
DEFINITION = ROOT / "parameters" / "journeys" / "saas.yaml"

#: Holds a store open for writing until its stdin closes: ``python -c HOLD_WRITER path``.
HOLD_WRITER = "import sys, duckdb; con = duckdb.connect(sys.argv[1]); print('ready', flush=True); sys.stdin.read()"
#: Holds a store open read-only for ``argv[2]`` seconds, then closes it.
HOLD_READER = (
    "import sys, time, duckdb; con = duckdb.connect(sys.argv[1], read_only=True); print('ready', flush=True); "
    "time.sleep(float(sys.argv[2])); con.close(); sys.stdin.read()"
)
#: An analysis in another process: opens a Journey, answers, waits for a line on stdin, answers again.
ANALYST = """
import sys
from journeylib import Journey
j = Journey.open(sys.argv[1], definition=sys.argv[2])
print(int(j.funnel_data()["eligible"].iloc[0]), j.store.count("events"), flush=True)
sys.stdin.readline()
print(int(j.funnel_data()["eligible"].iloc[0]), j.store.count("events"), flush=True)
"""


def _hold(code: str, *args: str) -> subprocess.Popen[str]:
    holder = subprocess.Popen(
        [sys.executable, "-c", code, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "ready"
    return holder


def _release(holder: subprocess.Popen[str]) -> None:
    holder.kill()
    holder.wait(timeout=30)


def _opens_for_writing(db: Path) -> bool:
    """Whether another process can open *db* for writing right now."""
    code = "import sys, duckdb; duckdb.connect(sys.argv[1]).close()"
    return subprocess.run([sys.executable, "-c", code, str(db)], capture_output=True, timeout=60).returncode == 0


@pytest.fixture
def small_store(tmp_path: Path) -> Path:
    db = tmp_path / "small.duckdb"
    with Store(db) as store:
        store.execute("INSERT INTO customers (customer_id) VALUES ('c1')")
    return db


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A 150-customer synthetic world in a store, and one more events file (3 events) not yet ingested."""
    folder = tmp_path_factory.mktemp("locking")
    synthesize(folder / "world", n_customers=150, seed=11)
    db = folder / "journeylib.duckdb"
    with Store(db) as store:
        ingest_folder(store, folder / "world")
        customer = str(store.query("SELECT min(customer_id) AS c FROM customers")["c"].iloc[0])
    extra = folder / "late_events.csv"
    extra.write_text(
        "event_id,customer_id,timestamp,event\n"
        + "".join(f"late-{i},{customer},2025-06-0{i + 1}T12:00:00Z,login\n" for i in range(3))
    )
    return db, extra


def test_a_read_only_store_holds_the_file_only_during_an_operation_or_a_session(small_store: Path) -> None:
    reader = Store(small_store, read_only=True)
    assert _opens_for_writing(small_store)  # opened and checked at construction, then let go
    assert reader.count("customers") == 1
    assert _opens_for_writing(small_store)
    with reader.session():
        assert reader.count("customers") == 1
        assert not _opens_for_writing(small_store)
        with reader.temp_tables("_jl_t"):  # sessions nest; the temporary table lives in the session's connection
            reader.create_temp_table("_jl_t", "SELECT customer_id FROM customers")
            assert reader.query("SELECT count(*) AS n FROM _jl_t")["n"].iloc[0] == 1
        assert not _opens_for_writing(small_store)
    assert _opens_for_writing(small_store)
    reader.close()
    with pytest.raises(StoreError, match="is closed"):
        reader.count("customers")


def test_a_writer_waits_for_a_reader_to_let_go(small_store: Path) -> None:
    holder = _hold(HOLD_READER, str(small_store), "1.5")
    try:
        started = time.monotonic()
        with Store(small_store, lock_wait=30) as writer:
            waited = time.monotonic() - started
            writer.execute("INSERT INTO customers (customer_id) VALUES ('c2')")
            assert writer.count("customers") == 2
    finally:
        _release(holder)
    assert 0.5 < waited < 20


def test_a_writer_blocked_by_another_writer_gives_up_after_the_wait_and_names_it(small_store: Path) -> None:
    holder = _hold(HOLD_WRITER, str(small_store))
    try:
        started = time.monotonic()
        with pytest.raises(StoreLockedError) as info:
            Store(small_store, lock_wait=1.5)
        waited = time.monotonic() - started
    finally:
        _release(holder)
    assert 1.5 <= waited < 10
    text = str(info.value)
    assert text.startswith(f"store {small_store} is locked: another process (PID {holder.pid}, ")
    assert "journeylib waited 1.5 s for it (JOURNEYLIB_LOCK_WAIT sets how long)." in text
    if Path(f"/proc/{holder.pid}").exists():  # Linux: the holder's command line
        assert "That process runs `" in text
        assert "duckdb.connect(sys.argv[1])" in text
    assert "\n" not in text


def test_the_wait_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch, small_store: Path) -> None:
    monkeypatch.setenv("JOURNEYLIB_LOCK_WAIT", "0")
    assert lock_wait_seconds() == 0.0
    assert lock_wait_seconds(2) == 2.0
    holder = _hold(HOLD_WRITER, str(small_store))
    try:
        with pytest.raises(StoreLockedError, match=r"journeylib did not wait for it \(JOURNEYLIB_LOCK_WAIT"):
            Store(small_store, read_only=True)  # a reader meets a writer's lock the same way
    finally:
        _release(holder)
    monkeypatch.setenv("JOURNEYLIB_LOCK_WAIT", "soon")
    with pytest.raises(JourneyLibError, match="JOURNEYLIB_LOCK_WAIT must be a number of seconds, 0 or more"):
        Store(small_store)
    monkeypatch.delenv("JOURNEYLIB_LOCK_WAIT")
    assert lock_wait_seconds() == 30.0


def _lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


@pytest.fixture
def dashboard(world: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Path]]:
    """Voila serving the notebooks on the world's store: (the journey map page's URL, its milestone trace)."""
    db, _ = world
    trace = tmp_path / "dashboard_trace.jsonl"
    monkeypatch.setenv(TRACE_ENV, str(trace))  # the server and its kernels inherit it
    port = find_free_port()
    server = start_dashboard(ROOT / "notebooks", port=port, db=db, log=tmp_path / "voila.log")
    try:
        wait_until_ready(port, timeout=60, process=server)
        yield dashboard_url(port, "01_journey_map"), trace
    finally:
        stop_dashboard(server)


@pytest.mark.slow
def test_an_ingest_runs_while_a_dashboard_page_a_report_and_an_analysis_are_open(
    world: tuple[Path, Path], dashboard: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db, extra = world
    url, dashboard_trace = dashboard
    with Store(db, read_only=True) as store:
        events_before = store.count("events")

    # an analysis in another process, its Journey open
    analyst = subprocess.Popen(
        [sys.executable, "-c", ANALYST, str(db), str(DEFINITION)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT,
    )
    assert analyst.stdin is not None
    assert analyst.stdout is not None
    eligible, events = map(int, analyst.stdout.readline().split())
    assert events == events_before

    # a dashboard page: one GET executes the journey map in a kernel that stays open with its Journey and widget
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=240) as response:
        assert response.status == 200
        page = response.read().decode()
    assert "Traceback" not in page
    assert "StoreLockedError" not in page
    assert _lines(dashboard_trace) > 0  # the page computed the journey map

    # a report: the journey map run by Papermill in a kernel of its own
    report_trace = tmp_path / "report_trace.jsonl"
    monkeypatch.setenv(TRACE_ENV, str(report_trace))
    outcome: dict[str, object] = {}

    def report() -> None:
        try:
            outcome["run_dir"] = run_report(
                {"name": "locking", "notebooks": ["01_journey_map"]},
                db=db, out=tmp_path / "reports", notebooks_dir=ROOT / "notebooks", parameters_dir=ROOT / "parameters",
            )
        except BaseException as exc:  # reported by the assertions below
            outcome["error"] = exc

    reporter = threading.Thread(target=report, daemon=True)
    reporter.start()
    deadline = time.monotonic() + 120
    while _lines(report_trace) == 0 and reporter.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _lines(report_trace) > 0, f"the report's kernel never computed the journey map: {outcome}"

    # the scheduled ingest, while all three have the store open
    started = time.monotonic()
    with Store(db, lock_wait=60) as writer:
        result = ingest_file(writer, "events", extra)
    ingest_seconds = time.monotonic() - started
    report_open_during_ingest = reporter.is_alive()
    assert result.status == "loaded", result.summary()
    assert result.loaded == 3, result.summary()
    assert ingest_seconds < 30, f"the ingest waited {ingest_seconds:.1f} s for the readers"

    reporter.join(timeout=240)
    assert not reporter.is_alive()
    assert "error" not in outcome, outcome.get("error")
    assert (Path(str(outcome["run_dir"])) / "manifest.json").is_file()
    assert report_open_during_ingest, "the report had finished before the ingest did: no overlap tested"

    # the analysis reads the new events on its next question; the dashboard is still serving
    analyst.stdin.write("go\n")
    analyst.stdin.flush()
    eligible_after, events_after = map(int, analyst.stdout.readline().split())
    assert analyst.wait(timeout=60) == 0
    assert (eligible_after, events_after) == (eligible, events_before + 3)
    with Store(db, read_only=True) as store:
        assert store.count("events") == events_before + 3


def _store_without_assignments(tmp_path):
    """A store file as an older journeylib made it: without the ``assignments`` table."""
    import duckdb

    from journeylib.store import Store

    path = tmp_path / "old.duckdb"
    Store(path).close()
    con = duckdb.connect(str(path))
    con.execute("DROP TABLE assignments")
    con.close()
    return path


def test_a_read_only_store_from_an_older_version_reads_its_missing_tables_as_empty_and_says_so(tmp_path):
    """A store made before a canonical table existed opens read-only with that table empty and a warning naming it."""
    from journeylib.exceptions import DataQualityWarning
    from journeylib.store import Store

    path = _store_without_assignments(tmp_path)
    with pytest.warns(DataQualityWarning, match=r"no assignments table .*read as empty"):
        store = Store(path, read_only=True)
    assert store.count("assignments") == 0
    assert store.count("events") == 0
    store.close()
    writable = Store(path)
    assert "assignments" in writable.tables()
    writable.close()


def test_a_read_only_store_looks_for_missing_tables_until_it_has_found_them_all(tmp_path):
    """The stand-ins are made on every connection while a table is missing; a complete store is looked at once."""
    from journeylib.exceptions import DataQualityWarning
    from journeylib.store import Store

    path = _store_without_assignments(tmp_path)
    with pytest.warns(DataQualityWarning):
        old = Store(path, read_only=True)
    try:
        for _ in range(3):  # each query is a connection of its own: each gets the stand-in again
            assert old.count("assignments") == 0
        assert not old._all_tables_present
    finally:
        old.close()
    Store(path).close()  # opened for writing: the table is added
    complete = Store(path, read_only=True)
    try:
        assert complete._all_tables_present
        assert complete.count("assignments") == 0
    finally:
        complete.close()
