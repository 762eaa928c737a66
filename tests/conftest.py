"""Fixtures shared by the unit tests: the planted 2,000-customer world and the real-browser start-up.

Plain builders for hand-made worlds (``day``, ``event_rows``, ``memory_store``)
are in ``_builders.py``, the browser helpers in ``_browser.py``; the session's
200-customer world (``demo_world``, ``demo_store``, ``vendor_store``) is in the
repository's root ``conftest.py``.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _browser import TimeToUsable, chromium

PLANTED_CUSTOMERS = 2000


@pytest.fixture(scope="session")
def demo_suite_run(demo_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One run of the demo report suite (``parameters/demo.yaml``) on the session's store, shared by the tests that read it.

    Do not write into the run folder: several test modules read it.
    """
    from journeylib.reports.runner import run_report

    root = Path(__file__).resolve().parents[1]
    return run_report(
        "demo",
        db=demo_store,
        out=tmp_path_factory.mktemp("demo-suite"),
        notebooks_dir=root / "notebooks",
        parameters_dir=root / "parameters",
        execution_timeout=300,
    )


@pytest.fixture(autouse=True)
def _fresh_notebook_state() -> Iterator[None]:
    """Forget the notes, warnings and sample a test recorded in ``journeylib.notebook`` (a kernel's state, not a test's)."""
    yield
    notebook = sys.modules.get("journeylib.notebook")
    if notebook is not None:
        notebook.clear_notes()

PLANTED_SEED = 42


@pytest.fixture(scope="session")
def planted_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """(world folder, store path) of the planted world shared by the statistical recovery tests.

    It is the demo world (``journeylib demo``: 2,000 customers, seed 42), so the
    tests check what the demo notebooks show. Built on first use (synthesize +
    ingest, about 10 s) and removed at the end of the session. Do not write to it.
    """
    from journeylib.datasets import synthesize
    from journeylib.store import Store
    from journeylib.store.ingest import ingest_folder

    root = tmp_path_factory.mktemp("planted")
    world = root / "world"
    synthesize(world, n_customers=PLANTED_CUSTOMERS, seed=PLANTED_SEED)
    db = root / "planted.duckdb"
    with Store(db) as store:
        ingest_folder(store, world, source="synthetic")
    yield world, db
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def spark_local() -> Iterator[Any]:
    """One Spark local-mode session (``local[2]``, two shuffle partitions, loopback, temporary warehouse) for the whole run.

    Shared by every test module that queries Spark in this process (a JVM start costs seconds); stopped at the end
    of the session. Skipped without the spark extra. Tests may register and replace temporary views and cached
    tables on it, but must not stop it or change its settings.
    """
    pytest.importorskip("pyspark", reason="the spark extra is not installed (pip install -e '.[spark]')")
    from journeylib.store.spark import spark_session

    session = spark_session(master="local[2]", app_name="journeylib-tests", conf={"spark.sql.shuffle.partitions": "2"})
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium under Playwright, one per test module (skipped without it, a failure under ``CI``)."""
    with chromium() as b:
        yield b


@pytest.fixture
def time_to_usable(request: pytest.FixtureRequest) -> TimeToUsable:
    """Times a page from navigation until usable and records it under this test's id (see ``_browser.py``)."""
    return TimeToUsable(request.node.nodeid)
