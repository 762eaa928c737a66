"""Tests of stopping DuckDB statements and report planning (journeylib.store.interrupts, journeylib.reports.runner).

DuckDB's Python client notices Ctrl-C only when a statement ends, so a
report run that is reading the data versions of a large store could not be
stopped. The tests run a statement that would take minutes (a counted cross
join) and check that it is stopped within a few seconds: the bounds are
generous (a loaded 2-core machine), the statement is far longer.
"""

from __future__ import annotations

import _thread
import contextlib
import contextvars
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from journeylib.exceptions import ConfigError
from journeylib.reports import runner
from journeylib.reports.runner import _interruptible, _terminate_as_interrupt, run_report
from journeylib.store import Store
from journeylib.store.interrupts import interrupt_queries

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "data" / "notebooks"

#: A statement of about 10^11 rows: minutes, even on a fast machine.
LONG_SQL = "SELECT count(*) AS n FROM range(100000) a(i), range(1000000) b(j) WHERE hash(i + j) % 7 = 3"
#: Seconds an interrupted statement may take to stop (it stops in milliseconds; the machine may be loaded).
STOP_BOUND = 5.0


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    path = tmp_path / "store.duckdb"
    Store(path).close()
    return path


@pytest.fixture
def default_sigint() -> Iterator[None]:
    """Ctrl-C as Python handles it by default, whatever else the session installed."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@pytest.fixture(autouse=True)
def _no_statement_left_running() -> Iterator[None]:
    """Should a test fail with its statement still running, stop it so that it does not hold a core for minutes."""
    yield
    interrupt_queries()


class _SlowStep:
    """A planning step that runs :data:`LONG_SQL` on a read-only store, in whichever thread calls it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.started = threading.Event()
        self.ended = threading.Event()
        self.error: BaseException | None = None

    def __call__(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        try:
            with Store(self.path, read_only=True) as store:
                self.started.set()
                store.query(LONG_SQL)
        except BaseException as exc:
            self.error = exc
            raise
        finally:
            self.ended.set()
        return {"fingerprint": "never"}


def _after(event: threading.Event, action: Callable[[], None], delay: float = 0.3) -> threading.Thread:
    """Do *action* (in a thread of its own) *delay* seconds after *event* is set."""

    def run() -> None:
        if event.wait(60.0):
            time.sleep(delay)
            action()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _quietly(step: _SlowStep) -> None:
    """Run *step*, which keeps what it raised."""
    with contextlib.suppress(Exception):
        step()


# -- interrupt_queries ----------------------------------------------------------------------------------------------


def test_interrupt_queries_stops_the_statement_of_another_thread(store_path: Path) -> None:
    step = _SlowStep(store_path)
    worker = threading.Thread(target=_quietly, args=(step,), daemon=True)
    worker.start()
    assert step.started.wait(30.0)
    time.sleep(0.3)  # the statement runs
    other = threading.Thread(target=lambda: None)
    other.start()
    other.join()
    assert interrupt_queries(other) == 0  # not the thread that opened the connection: nothing is sent
    assert worker.is_alive()
    t0 = time.monotonic()
    assert interrupt_queries(worker) == 1
    assert step.ended.wait(STOP_BOUND), "the statement was not interrupted"
    assert time.monotonic() - t0 < STOP_BOUND
    assert step.error is not None
    assert "interrupt" in str(step.error).lower()


def test_an_idle_connection_runs_its_next_statement(store_path: Path) -> None:
    with Store(store_path, read_only=True) as store, store.session():
        assert interrupt_queries(threading.current_thread()) >= 1
        assert store.query("SELECT 42 AS x")["x"].tolist() == [42]


# -- _interruptible ---------------------------------------------------------------------------------------------------


def test_interruptible_returns_and_raises_what_the_step_does() -> None:
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")
    var.set("caller's")
    caller = threading.current_thread()

    def step() -> tuple[str, bool]:
        return var.get(), threading.current_thread() is caller

    assert _interruptible(step) == ("caller's", False)  # in another thread, with the caller's context

    error = ConfigError(["bad suite"], "suite.yaml")

    def failing() -> None:
        raise error

    with pytest.raises(ConfigError) as caught:
        _interruptible(failing)
    assert caught.value is error


@pytest.mark.usefixtures("default_sigint")
def test_ctrl_c_interrupts_the_planning_step_and_its_statement(store_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner, "PLANNING_STOP_WAIT", 20.0)  # the step must end because its statement is stopped
    step = _SlowStep(store_path)
    timer = _after(step.started, _thread.interrupt_main)
    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        _interruptible(step)
    timer.join()
    assert step.ended.is_set(), "the step's statement still runs"
    assert step.error is not None
    assert not isinstance(step.error, KeyboardInterrupt)
    assert time.monotonic() - t0 < 30.0 + STOP_BOUND


@pytest.mark.skipif(sys.platform == "win32", reason="SIGTERM cannot be sent to oneself on Windows")
def test_sigterm_interrupts_the_planning_step(store_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        pytest.skip("the session has its own SIGTERM handler, which run_report leaves alone")
    monkeypatch.setattr(runner, "PLANNING_STOP_WAIT", 20.0)
    step = _SlowStep(store_path)
    sent = threading.Event()

    def terminate() -> None:
        # Only while the run's handler is installed: without it, SIGTERM would end the test session.
        if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
            sent.set()
            os.kill(os.getpid(), signal.SIGTERM)
        else:
            interrupt_queries()

    timer = _after(step.started, terminate)
    with pytest.raises(KeyboardInterrupt), _terminate_as_interrupt():
        _interruptible(step)
    timer.join()
    assert sent.is_set(), "SIGTERM had no handler while the run was planned"
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    assert step.ended.is_set(), "the step's statement still runs"


def test_outside_the_main_thread_planning_runs_and_sigterm_is_left_alone() -> None:
    seen: dict[str, Any] = {}

    def run() -> None:
        try:
            with _terminate_as_interrupt():
                seen["handler"] = signal.getsignal(signal.SIGTERM)
                seen["value"] = _interruptible(lambda: 7)
        except BaseException as exc:
            seen["error"] = exc

    before = signal.getsignal(signal.SIGTERM)
    thread = threading.Thread(target=run)
    thread.start()
    thread.join(30.0)
    assert seen == {"handler": before, "value": 7}


# -- run_report -------------------------------------------------------------------------------------------------------


@pytest.mark.usefixtures("default_sigint")
def test_an_interrupted_planning_writes_no_run_folder(
    tmp_path: Path, store_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    step = _SlowStep(store_path)
    monkeypatch.setattr(runner, "data_version", step)  # reading the data versions of a large store
    out = tmp_path / "reports"
    suite = {"name": "stopped", "notebooks": [{"notebook": "sleepy_report", "parameters": {"seconds": 0.0}}]}
    timer = _after(step.started, _thread.interrupt_main)
    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        run_report(
            suite, db=store_path, out=out, notebooks_dir=FIXTURES, parameters_dir=FIXTURES / "parameters", jobs=1
        )
    timer.join()
    assert step.ended.is_set(), "the data version's statement still runs"
    assert time.monotonic() - t0 < 30.0 + STOP_BOUND
    assert not out.exists() or list(out.iterdir()) == []
