"""Fixtures shared by the unit tests: the planted 2,000-customer world and the real-browser start-up.

Plain builders for hand-made worlds (``day``, ``event_rows``, ``memory_store``)
are in ``_builders.py``, the browser helpers in ``_browser.py``; the session's
200-customer world (``demo_world``, ``demo_store``, ``vendor_store``) is in the
repository's root ``conftest.py``.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _browser import TimeToUsable, chromium

PLANTED_CUSTOMERS = 2000
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


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium under Playwright, one per test module (skipped without it, a failure under ``CI``)."""
    with chromium() as b:
        yield b


@pytest.fixture
def time_to_usable(request: pytest.FixtureRequest) -> TimeToUsable:
    """Times a page from navigation until usable and records it under this test's id (see ``_browser.py``)."""
    return TimeToUsable(request.node.nodeid)
