"""The planted synthetic world shared by the statistical recovery tests, built once per test session.

It is the demo world (``journeylib demo``: 2,000 customers, seed 42), so the tests
check what the demo notebooks show. Building it (synthesize + ingest) takes about
10 s; ``functools.lru_cache`` keeps one copy per session, removed at exit.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

PLANTED_CUSTOMERS = 2000
PLANTED_SEED = 42


@functools.lru_cache(maxsize=1)
def planted_world() -> tuple[Path, Path]:
    """Return (world folder, store path) of the planted world, building it on first use."""
    from journeylib.datasets import synthesize
    from journeylib.store.engine import Store
    from journeylib.store.ingest import ingest_folder

    root = Path(tempfile.mkdtemp(prefix="journeylib-planted-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    world = root / "world"
    synthesize(world, n_customers=PLANTED_CUSTOMERS, seed=PLANTED_SEED)
    db = root / "planted.duckdb"
    with Store(db) as store:
        ingest_folder(store, world, source="synthetic")
    return world, db
