"""What a milestone computation costs a process beyond its statement: the imports, and the one-statement rule.

``benchmarks/bench_scale.py`` times whole processes, so a module imported
on the way and not used is paid by every run (``benchmarks/results/scale.md``,
Findings). And above :data:`~journeylib.journey.stages.INLINE_STAGES_MAX_EVENTS`
events, the stage tables are one statement when DuckDB's memory limit gives
:data:`~journeylib.journey.stages.INLINE_STAGES_BYTES_PER_EVENT` bytes per
event (measured at 100M events under 4000MB).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from journeylib.config.journey import JourneyDefinition
from journeylib.journey import stages
from journeylib.stats import wilson_interval
from journeylib.store import Store
from journeylib.store.database import memory_size_bytes

ROOT = Path(__file__).resolve().parents[1]
DEFINITION = ROOT / "parameters" / "journeys" / "saas.yaml"


def _modules_after(statement: str) -> set[str]:
    code = f"import sys, json\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120, check=True)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_the_stage_module_does_not_import_statistics_or_the_cache() -> None:
    loaded = _modules_after("import journeylib.journey.stages")
    assert "journeylib.stats" in loaded  # the funnel's intervals: the module, not its critical value's import
    assert "statistics" not in loaded
    assert "journeylib.cache" not in loaded


def test_the_critical_value_is_imported_when_an_interval_is_computed() -> None:
    loaded = _modules_after("from journeylib.stats import wilson_interval; wilson_interval([8], [10])")
    assert "statistics" in loaded
    lo, hi = wilson_interval([8, 0], [10, 0])
    assert round(float(lo[0]), 3) == 0.49
    assert round(float(hi[0]), 3) == 0.943


@pytest.mark.parametrize(
    ("text", "expected"),
    [("3.7 GiB", int(3.7 * 2**30)), ("572.2 MiB", int(572.2 * 2**20)), ("97.6 KiB", int(97.6 * 2**10)),
     ("2.0 GB", 2 * 10**9), ("0 bytes", 0), ("1 byte", 1), ("600MB", 600 * 10**6), ("512mib", 512 * 2**20),
     ("1.5 PiB", int(1.5 * 2**50)), ("4096", 4096), ("60%", None), ("none", None), ("", None), ("2 GB extra", None)],
)
def test_duckdbs_spelling_of_a_memory_size_is_read(text: str, expected: int | None) -> None:
    assert memory_size_bytes(text) == expected


def _store_with_events(n_events: int, memory_limit: str) -> Store:
    store = Store(":memory:")  # one connection: the limit set after the inserts holds for what follows
    store.execute("INSERT INTO customers (customer_id, signup_at) VALUES ('c1', TIMESTAMPTZ '2025-01-01 00:00:00+00')")
    store.execute(
        "INSERT INTO events (event_id, customer_id, timestamp, event) "
        f"SELECT 'e' || i, 'c1', TIMESTAMPTZ '2025-01-02 00:00:00+00' + i * INTERVAL 1 SECOND, 'login' FROM range({n_events}) t(i)"
    )
    store.execute(f"SET memory_limit = '{memory_limit}'")
    return store


def test_the_memory_limit_is_read_from_the_connection() -> None:
    store = _store_with_events(0, "4000MB")
    limit = stages._memory_limit_bytes(store)
    assert limit is not None
    assert abs(limit - 4_000_000_000) / 4_000_000_000 < 0.01  # "3.7 GiB"
    store.close()


@pytest.mark.parametrize(("n_events", "inline"), [(100_000, True), (400_000, False)])
def test_above_the_event_threshold_the_memory_limit_per_event_decides(monkeypatch: pytest.MonkeyPatch, n_events: int, inline: bool) -> None:
    definition = JourneyDefinition.from_yaml(DEFINITION)
    monkeypatch.setattr(stages, "INLINE_STAGES_MAX_EVENTS", 0)  # every store is "large" here
    store = _store_with_events(n_events, "10MB")  # "9.5 MiB": 9,961,472 bytes, room for 311,296 events at 32 bytes
    assert (store.count("events") * stages.INLINE_STAGES_BYTES_PER_EVENT <= 9_961_472) is inline
    assert stages._inline_stages(store, definition) is inline
    monkeypatch.setattr(stages, "INLINE_STAGES_MAX_EVENTS", 20_000_000)  # at most this many: one statement whatever the limit
    assert stages._inline_stages(store, definition)
    store.close()

