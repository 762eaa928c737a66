"""Session set-up shared by the unit tests (tests/) and nbval (notebooks/).

A 200-customer synthetic world is generated at most once per session and
ingested twice: its canonical files into ``demo_store`` (the unit tests'
store), and its vendor-format exports through ``sources.yaml`` into
``vendor_store`` — the path ``make demo`` takes. It is built on first use: when
a test asks for ``demo_world``, ``demo_store`` or ``vendor_store``, or before
the first item that is not a Python test function runs (the cells nbval
collects from ``notebooks/*.ipynb``). A run that needs neither never builds it.

``JOURNEYLIB_DB`` points at the vendor store once it is built, so notebooks
executed by nbval run on what the demo runs on, whatever the developer's own
environment says; until then it is unset, so no test reads the developer's own
store by accident. Both are restored or removed when the session finishes.

Hypothesis runs under the ``journeylib`` profile: derandomized (the examples
are a function of the test alone, so every run tries the same ones), no example
database, no deadline (timings on a shared machine are noise), and the reproduction blob printed on
failure. ``pytest --hypothesis-profile=default`` runs random examples instead.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import settings

TEST_CUSTOMERS = 200
TEST_SEED = 7

settings.register_profile(
    "journeylib",
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
)
settings.load_profile("journeylib")

_state: dict[str, Path] = {}
_saved_env: dict[str, str | None] = {}
_results_dir: list[Path] = []  # the session's persistent-result folder (JOURNEYLIB_RESULTS_DIR)


def _build() -> dict[str, Path]:
    """Build the session world and its two stores unless that is done; point ``JOURNEYLIB_DB`` at the vendor store."""
    if _state:
        return _state
    from journeylib.datasets import synthesize
    from journeylib.datasets.vendor import write_vendor_exports
    from journeylib.store import Store
    from journeylib.store.ingest import ingest_folder
    from journeylib.store.sources import ingest_sources

    root = Path(tempfile.mkdtemp(prefix="journeylib-test-"))
    try:
        world = root / "world"
        synthesize(world, n_customers=TEST_CUSTOMERS, seed=TEST_SEED)
        db = root / "test.duckdb"
        with Store(db) as store:
            ingest_folder(store, world, source="synthetic")
        write_vendor_exports(world, seed=TEST_SEED)
        vendor_db = root / "vendor.duckdb"
        with Store(vendor_db) as store:
            ingest_sources(store, world / "vendor" / "sources.yaml")
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    _state.update(root=root, world=world, db=db, vendor_db=vendor_db)
    os.environ["JOURNEYLIB_DB"] = str(vendor_db)
    return _state


def pytest_sessionstart(session: pytest.Session) -> None:
    _saved_env["JOURNEYLIB_DB"] = os.environ.pop("JOURNEYLIB_DB", None)
    # Persistent results (journeylib.cache.PersistentResults) of this session, its notebook kernels and report
    # runs go to a folder of the session, never to the developer's ~/.cache/journeylib/results.
    _saved_env["JOURNEYLIB_RESULTS_DIR"] = os.environ.get("JOURNEYLIB_RESULTS_DIR")
    _results_dir.append(Path(tempfile.mkdtemp(prefix="journeylib-results-")))
    os.environ["JOURNEYLIB_RESULTS_DIR"] = str(_results_dir[0])


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    # Notebook cells (nbval) read the store from JOURNEYLIB_DB in a kernel started while the
    # first cell is set up: build before that. Python test functions ask for the fixtures.
    if not isinstance(item, pytest.Function):
        _build()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _results_dir:
        shutil.rmtree(_results_dir.pop(), ignore_errors=True)
        saved_results = _saved_env.pop("JOURNEYLIB_RESULTS_DIR", None)
        if saved_results is None:
            os.environ.pop("JOURNEYLIB_RESULTS_DIR", None)
        else:
            os.environ["JOURNEYLIB_RESULTS_DIR"] = saved_results
    root = _state.get("root")
    if root is not None:
        shutil.rmtree(root, ignore_errors=True)
    _state.clear()
    if "JOURNEYLIB_DB" in _saved_env:
        saved = _saved_env.pop("JOURNEYLIB_DB")
        if saved is None:
            os.environ.pop("JOURNEYLIB_DB", None)
        else:
            os.environ["JOURNEYLIB_DB"] = saved


@pytest.fixture(scope="session")
def demo_world() -> Path:
    """Folder of the session's synthetic world (canonical files + truth.json), built on first use."""
    return _build()["world"]


@pytest.fixture(scope="session")
def demo_store() -> Path:
    """Path of a DuckDB store with the session's 200-customer world ingested, built on first use (do not write to it)."""
    return _build()["db"]


@pytest.fixture(scope="session")
def vendor_store() -> Path:
    """Path of a DuckDB store with the session world's vendor exports ingested through ``sources.yaml`` (do not write to it)."""
    return _build()["vendor_db"]
