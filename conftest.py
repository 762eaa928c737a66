"""Session set-up shared by the unit tests (tests/) and nbval (notebooks/).

A 200-customer synthetic world is generated and ingested once per session into
a temporary store; ``JOURNEYLIB_DB`` points at it so that notebooks executed by
nbval or papermill find it, whatever the developer's own environment says.
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
    from journeylib.engine import Store
    from journeylib.ingest import ingest_folder

    root = Path(tempfile.mkdtemp(prefix="journeylib-test-"))
    world = root / "world"
    synthesize(world, n_customers=TEST_CUSTOMERS, seed=TEST_SEED)
    db = root / "test.duckdb"
    with Store(db) as store:
        ingest_folder(store, world, source="synthetic")
    _state.update(root=root, world=world, db=db)
    os.environ["JOURNEYLIB_DB"] = str(db)


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
