"""Session set-up shared by the unit tests (tests/) and nbval (notebooks/).

A 200-customer synthetic world is generated once per session and ingested
twice: its canonical files into ``demo_store`` (the unit tests' store), and
its vendor-format exports through ``sources.yaml`` into ``vendor_store`` —
the path ``make demo`` takes. ``JOURNEYLIB_DB`` points at the vendor store, so
notebooks executed by nbval run on what the demo runs on, whatever the
developer's own environment says.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

TEST_CUSTOMERS = 200
TEST_SEED = 7

_state: dict[str, Path] = {}


def _build() -> None:
    from journeylib.datasets import synthesize
    from journeylib.datasets.vendor import write_vendor_exports
    from journeylib.store.engine import Store
    from journeylib.store.ingest import ingest_folder
    from journeylib.store.sources import ingest_sources

    root = Path(tempfile.mkdtemp(prefix="journeylib-test-"))
    world = root / "world"
    synthesize(world, n_customers=TEST_CUSTOMERS, seed=TEST_SEED)
    db = root / "test.duckdb"
    with Store(db) as store:
        ingest_folder(store, world, source="synthetic")
    write_vendor_exports(world, seed=TEST_SEED)
    vendor_db = root / "vendor.duckdb"
    with Store(vendor_db) as store:
        ingest_sources(store, world / "vendor" / "sources.yaml")
    _state.update(root=root, world=world, db=db, vendor_db=vendor_db)
    os.environ["JOURNEYLIB_DB"] = str(vendor_db)


def pytest_sessionstart(session: pytest.Session) -> None:
    _build()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    root = _state.get("root")
    if root is not None:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def demo_world() -> Path:
    """Folder of the session's synthetic world (canonical files + truth.json)."""
    return _state["world"]


@pytest.fixture(scope="session")
def demo_store() -> Path:
    """Path of a DuckDB store with the session's 200-customer world ingested (do not write to it)."""
    return _state["db"]


@pytest.fixture(scope="session")
def vendor_store() -> Path:
    """Path of a DuckDB store with the session world's vendor exports ingested through ``sources.yaml`` (do not write to it)."""
    return _state["vendor_db"]
