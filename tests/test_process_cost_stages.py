"""What a stage call costs a process around its statement: opens of the store, and imports.

``benchmarks/bench_scale.py`` times whole processes. A milestone, interval or
funnel call on a bare read-only store runs in one connection (its scope, its
statement and the frame built from it), and the store lets go of the file only
after the result is built (docs/adr/0008): closing DuckDB after a 10M-event
statement gives its memory back, and building the frame beside that close took
longer. A call a cache can answer does not open the store.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from _builders import day

import journeylib.store.database as database
from journeylib.cache import ResultCache
from journeylib.config.journey import JourneyDefinition
from journeylib.journey import stages
from journeylib.store import Store

ROOT = Path(__file__).resolve().parents[1]
DEFINITION = ROOT / "parameters" / "journeys" / "saas.yaml"

DEF = JourneyDefinition.from_dict(
    {
        "name": "test",
        "stages": [
            {"name": "Trial", "rule": "signup"},
            {"name": "Setup", "rule": {"all": [{"event": "setup", "within_days": 7}, {"event": "login", "min_count": 2}]}},
            {"name": "Value", "rule": {"any": [{"event": "project", "min_count": 2}, {"event": "integration"}]}},
            {"name": "Routine", "rule": {"event": "login", "min_count": 3, "within_days": 10, "of": "previous_stage"}},
        ],
        "conventions": {"drop_after_days": 30},
    }
)
AS_OF = day(60)

CUSTOMERS = [
    {"customer_id": "a", "segment": "SMB", "plan": "pro", "signup_at": day(0), "converted_at": day(3)},
    {"customer_id": "b", "segment": None, "plan": None, "signup_at": day(0)},  # NULL text
    {"customer_id": "c", "segment": "SMB", "plan": "free", "signup_at": day(0.5), "churned_at": day(20)},
    {"customer_id": "d", "segment": "Ent", "plan": "pro", "signup_at": day(50), "churned_at": day(70)},  # churn after as_of
    {"customer_id": "e", "segment": "Ent", "plan": "free", "signup_at": day(80)},  # signs up after as_of
]
EVENTS = [
    ("a", 1, "login"), ("a", 2, "setup"), ("a", 3.25, "login"), ("a", 4, "integration"),
    ("a", 5, "login"), ("a", 6, "login"), ("a", 7.000001, "login"),
    ("b", 1, "login"), ("b", 2, "login"), ("b", 9, "setup"), ("b", 3, "project"), ("b", 4, "project"),
    ("c", 1, "login"), ("c", 4, "setup"), ("c", 5, "login"),
    ("d", 51, "project"), ("d", 52, "project"), ("d", 53, "setup"), ("d", 54, "login"), ("d", 55, "login"), ("d", 90, "login"),
]


def _fill(store: Store) -> None:
    store.insert("customers", pd.DataFrame(CUSTOMERS))
    rows = [{"event_id": f"e{i}", "customer_id": c, "timestamp": day(d), "event": ev} for i, (c, d, ev) in enumerate(EVENTS)]
    store.insert("events", pd.DataFrame(rows))


@pytest.fixture
def store_file(tmp_path: Path) -> Path:
    db = tmp_path / "stages.duckdb"
    with Store(db) as store:
        _fill(store)
    return db


@pytest.fixture
def reader(store_file: Path) -> Iterator[Store]:
    store = Store(store_file, read_only=True)
    yield store
    store.close()


CALLS: dict[str, Any] = {"milestones": stages.milestones_data, "funnel": stages.funnel_data, "intervals": stages.stage_intervals_data}


def _count_opens(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the store's connections from now on: one item per open."""
    opens: list[int] = []
    connect = database.Store._connect

    def counted(store: Store) -> object:
        opens.append(1)
        return connect(store)

    monkeypatch.setattr(database.Store, "_connect", counted)
    return opens


@pytest.mark.parametrize("compute", ["milestones", "funnel", "intervals"])
def test_a_call_on_a_read_only_store_opens_the_file_once_and_lets_go_after(
    store_file: Path, reader: Store, monkeypatch: pytest.MonkeyPatch, compute: str
) -> None:
    opens = _count_opens(monkeypatch)
    call = CALLS[compute]
    # as_of=None: the scope reads the latest event, in the call's one connection
    out = call(reader, definition=DEF, as_of=None)
    assert len(out) > 0
    assert len(opens) == 1, f"{compute} opened the store {len(opens)} times"
    with Store(store_file, lock_wait=5) as writer:  # the reader let go of the file: a writer opens it
        assert writer.count("customers") == len(CUSTOMERS)


@pytest.mark.parametrize("compute", ["milestones", "funnel", "intervals"])
def test_a_call_a_cache_answers_does_not_open_the_store(reader: Store, monkeypatch: pytest.MonkeyPatch, compute: str) -> None:
    call = CALLS[compute]
    cache = ResultCache()
    first = call(reader, definition=DEF, as_of=AS_OF, cache=cache)
    opens = _count_opens(monkeypatch)
    again = call(reader, definition=DEF, as_of=AS_OF, cache=cache)
    pd.testing.assert_frame_equal(again, first)
    assert opens == [], f"{compute} opened the store for a result the cache held"


def _modules_after(statement: str) -> set[str]:
    code = f"import sys, json\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120, check=True)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_reading_a_definition_does_not_import_difflib_until_a_name_is_absent() -> None:
    loaded = _modules_after(
        "import journeylib.journey.stages\nfrom journeylib.config.journey import JourneyDefinition\n"
        f"JourneyDefinition.from_yaml({str(DEFINITION)!r})"
    )
    assert "journeylib.config.journey" in loaded
    assert "difflib" not in loaded
    absent = JourneyDefinition.from_yaml(DEFINITION).absent_events(["setup_complete", "login"])
    assert "setup_complete" in next(a.closest for a in absent if a.event == "setup_completed")
