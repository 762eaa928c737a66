"""The 01 journey map's peak at 10M events: DuckDB's memory between statements, and the frames friction holds.

* ``give_back_engine_memory`` makes DuckDB let go of what a read-only store file's connection keeps after
  its statements (lowering its limit for an instant), and sets the limit back.
* ``run_bounded`` runs work under a lower DuckDB limit, and again under the store's own when DuckDB runs
  out of memory under it.
* Friction times the exit rules' conditions (milestone statements over every event) under the milestone
  bound before it builds its frames, then gives the engine's memory back once; the comparison of
  definitions and the suggested milestones run their statements under their bounds.
* The milestone frame holds each segment and plan once; the context forgets the scores kept by text once
  the tickets are scored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from _builders import day, event_rows, journey_definition, memory_limits_seen, memory_store

import journeylib.journey.friction as friction_module
import journeylib.store.memory as memory_module
import journeylib.voice.sentiment as sentiment_module
from journeylib.context import Journey
from journeylib.exceptions import DataQualityWarning, OutOfMemoryError
from journeylib.journey.friction import friction_tests_data
from journeylib.journey.stages import compute_stages
from journeylib.journey.suggest import SUGGEST_MEMORY_LIMIT, compare_definitions_data, suggest_milestones_data
from journeylib.scope import Scope
from journeylib.store import Store
from journeylib.store.memory import MILESTONE_MEMORY_LIMIT, RELEASE_MEMORY_LIMIT, give_back_engine_memory, run_bounded

AS_OF = day(200)
#: A line of the milestone statement (journeylib.journey.stages.compute_stages).
MILESTONE_SQL = "SELECT c._jl_k, c.customer_id"


def _world(n: int = 40, seed: int = 0) -> tuple[list[dict[str, Any]], pd.DataFrame]:
    rng = np.random.default_rng(seed)
    customers, rows = [], []
    for i in range(n):
        cid = f"c{i:03d}"
        customers.append({"customer_id": cid, "segment": ["SMB", "Enterprise"][i % 2], "plan": ["basic", "pro"][i % 3 == 0],
                          "signup_at": day(0), "converted_at": day(30) if i % 3 else None})
        for name in ("setup", "invite", "report", "login"):
            for _ in range(int(rng.integers(0, 6))):
                rows.append((cid, float(rng.uniform(0.5, 120.0)), name))
    return customers, event_rows(rows)


def _definition() -> Any:
    return journey_definition({
        "Signed Up": "signup",
        "Set Up": {"all": [{"event": "setup"}, {"event": "invite", "within_days": 60}]},
        "Active": {"all": [{"event": "report", "of": "previous_stage"}, {"event": "login"}]},
        "Reporting": {"event": "report", "min_count": 2},
    })


# -- DuckDB's memory between statements ------------------------------------------------------------
def _store_file(path: Path, n_events: int = 300_000) -> Path:
    rng = np.random.default_rng(1)
    events = pd.DataFrame({
        "event_id": [f"e{i:07d}" for i in range(n_events)],
        "customer_id": [f"c{i:05d}" for i in rng.integers(0, 5000, n_events)],
        "timestamp": day(0) + pd.to_timedelta(rng.uniform(0, 200, n_events), unit="D"),
        "event": rng.choice(["setup", "invite", "report", "login"], n_events),
        "source": "product",
    })
    with Store(path) as store:
        store.insert("customers", pd.DataFrame({"customer_id": [f"c{i:05d}" for i in range(5000)], "signup_at": day(0)}))
        store.insert("events", events)
    return path


def _engine_bytes(store: Store) -> int:
    return int(store.query("SELECT sum(memory_usage_bytes) AS b FROM duckdb_memory()")["b"].iloc[0])


def test_the_engine_lets_go_of_what_its_statements_kept_and_its_limit_is_set_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory_module, "RELEASE_MEMORY_LIMIT", "1MB")  # below what this small file's blocks take
    store = Store(_store_file(tmp_path / "s.duckdb"), read_only=True)
    with store, store.session():
        own = store.settings.get("memory_limit")
        setting = store.query("SELECT current_setting('memory_limit') AS m")["m"].iloc[0]
        totals = store.query("SELECT count(DISTINCT customer_id) AS n, sum(epoch_us(timestamp)) AS t, count(DISTINCT event_id) AS e FROM events")
        kept = _engine_bytes(store)
        assert kept >= 2 * 2**20  # the blocks of the file the statement read
        assert give_back_engine_memory(store)
        assert _engine_bytes(store) < kept / 2
        assert store.settings.get("memory_limit") == own
        assert store.query("SELECT current_setting('memory_limit') AS m")["m"].iloc[0] == setting
        # read again: the same answer
        again = store.query("SELECT count(DISTINCT customer_id) AS n, sum(epoch_us(timestamp)) AS t, count(DISTINCT event_id) AS e FROM events")
        pd.testing.assert_frame_equal(again, totals, check_exact=True)


def test_the_engine_memory_of_a_store_in_memory_or_writable_is_left_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    limits: list[str] = []
    monkeypatch.setattr(Store, "memory_limit_for", lambda self, limit: limits.append(limit))
    with memory_store() as store:
        assert not give_back_engine_memory(store)
    with Store(tmp_path / "w.duckdb") as store:
        assert not give_back_engine_memory(store)
    assert limits == []


def test_give_back_engine_memory_lowers_the_limit_for_an_instant(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = Store(_store_file(tmp_path / "s.duckdb", n_events=1000), read_only=True)
    sets: list[str] = []
    execute = Store.execute

    def spy(self: Store, sql: str, *args: Any, **kwargs: Any) -> Any:
        if "memory_limit" in sql:
            sets.append(sql)
        return execute(self, sql, *args, **kwargs)

    monkeypatch.setattr(Store, "execute", spy)
    with store, store.session():
        own = store.settings.get("memory_limit")
        give_back_engine_memory(store)
    assert len(sets) == 2
    assert RELEASE_MEMORY_LIMIT in sets[0]
    assert str(own) in sets[1]


def _noted(seen: list[Any], item: Any, value: Any = None) -> Any:
    """Append *item* to *seen* and return *value* (a lambda's way to note what it saw)."""
    seen.append(item)
    return value


def test_run_bounded_runs_under_the_bound_then_under_the_stores_own_limit_when_out_of_memory() -> None:
    with memory_store() as store:
        own = store.settings.get("memory_limit")
        seen: list[str | None] = []

        def compute() -> int:
            seen.append(store.settings.get("memory_limit"))
            if len(seen) == 1:
                raise OutOfMemoryError("out of memory under the bound")
            return 42

        assert run_bounded(store, compute, bound="64MB") == 42
        assert seen == ["64MB", own]
        seen.clear()
        assert run_bounded(store, lambda: _noted(seen, store.settings.get("memory_limit"), 1), bound="64MB") == 1
        assert seen == ["64MB"]
        seen.clear()
        assert run_bounded(store, lambda: _noted(seen, store.settings.get("memory_limit"), 2), bound=None) == 2
        assert seen == [own]
        assert store.settings.get("memory_limit") == own


#: A temporary table DuckDB cannot build in 2MB (one aggregate string of ~30 MB: it cannot spill).
TOO_BIG = "SELECT string_agg(repeat('x', 100), ',') AS s FROM range(300000)"


def test_a_temporary_table_out_of_memory_is_the_stores_error_and_run_bounded_runs_it_again() -> None:
    with Store(":memory:", memory_limit="2MB") as small, pytest.raises(OutOfMemoryError, match="memory limit of 2MB"):
        small.create_temp_table("_jl_big", TOO_BIG)
    with memory_store() as store:
        own = store.settings.get("memory_limit")
        seen: list[str | None] = []

        def build() -> int:
            seen.append(store.settings.get("memory_limit"))
            with store.temp_tables("_jl_big"):
                store.create_temp_table("_jl_big", TOO_BIG)
                return int(store.query("SELECT length(s) AS n FROM _jl_big")["n"].iloc[0])

        assert run_bounded(store, build, bound="2MB") == 300_000 * 101 - 1
        assert seen == ["2MB", own]


def test_run_bounded_keeps_a_limit_the_user_set() -> None:
    store = Store(":memory:", memory_limit="1GB")
    with store:
        seen: list[str | None] = []
        run_bounded(store, lambda: seen.append(store.settings.get("memory_limit")), bound="64MB")
        assert seen == ["1GB"]


# -- the analyses ----------------------------------------------------------------------------------
def test_friction_times_the_conditions_under_the_bound_before_its_frames_and_gives_memory_back_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    customers, events = _world()
    with memory_store(customers=customers, events=events) as store:
        want = friction_tests_data(store, definition=_definition(), as_of=AS_OF, n_boot=50, min_customers=5)
        own = store.settings.get("memory_limit")
        seen = memory_limits_seen(monkeypatch, MILESTONE_SQL)
        released: list[int] = []
        monkeypatch.setattr(friction_module, "give_back_engine_memory", lambda s: _noted(released, len(seen), True))
        got = friction_tests_data(store, definition=_definition(), as_of=AS_OF, n_boot=50, min_customers=5)
    # the milestones (their checks first), then the conditions' frames (the signup conditions in one, the
    # previous-stage condition in one) under the bound, then the engine's memory given back
    assert seen == [own, MILESTONE_MEMORY_LIMIT, MILESTONE_MEMORY_LIMIT]
    assert released == [3]
    pd.testing.assert_frame_equal(got, want, check_exact=True)
    assert (got["step"] != "").any()


def test_comparison_computes_a_definitions_milestones_under_the_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    customers, events = _world()
    current = _definition()
    suggested = journey_definition({"Signed Up": "signup", "Reporting": {"event": "report"}})
    with memory_store(customers=customers, events=events) as store:
        scope = Scope.build(store, as_of=AS_OF)
        own = store.settings.get("memory_limit")
        seen = memory_limits_seen(monkeypatch, MILESTONE_SQL)
        got = compare_definitions_data(store, current=current, suggested=suggested, scope=scope, outcome="conversion")
        assert seen == [MILESTONE_MEMORY_LIMIT] * 2  # the milestones of each definition (no cache: the funnel counts in SQL)
        assert store.settings.get("memory_limit") == own
        monkeypatch.undo()
        for label, definition in (("current", current), ("suggested", suggested)):
            ms = compute_stages(store, definition, scope)
            assert (got.loc[got["definition"] == label, "stage"] == definition.stage_names).all()
            assert len(ms) == len(customers) * len(definition.stages)


def test_suggested_milestones_run_under_the_suggest_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    customers, events = _world()
    with memory_store(customers=customers, events=events) as store:
        seen = memory_limits_seen(monkeypatch, "row_number() OVER (PARTITION BY e.customer_id, e.event")
        suggest_milestones_data(store, as_of=AS_OF, outcome="conversion", outcome_window_days=90.0, min_support=0.0)
    assert seen
    assert set(seen) == {SUGGEST_MEMORY_LIMIT}


def test_the_milestone_frame_holds_each_segment_and_plan_once() -> None:
    customers, events = _world()
    with memory_store(customers=customers, events=events) as store:
        ms = compute_stages(store, _definition(), Scope.build(store, as_of=AS_OF))
    for col in ("segment", "plan"):
        assert ms[col].dtype == object
        assert len({id(v) for v in ms[col]}) == ms[col].nunique()
        by_customer = ms.groupby("customer_id")[col].first()
        assert by_customer.to_dict() == {c["customer_id"]: c[col] for c in customers}


def test_the_context_forgets_the_scores_kept_by_text_once_per_scoring(monkeypatch: pytest.MonkeyPatch) -> None:
    forgotten: list[int] = []
    forget = sentiment_module.forget_kept_scores
    monkeypatch.setattr(sentiment_module, "forget_kept_scores", lambda: _noted(forgotten, 1, forget()))
    customers = [{"customer_id": f"c{i:02d}", "segment": "SMB", "signup_at": day(0)} for i in range(3)]
    tickets = pd.DataFrame({"ticket_id": ["t1", "t2", "t3"], "customer_id": ["c00", "c01", "c02"], "created_at": [day(1)] * 3,
                            "subject": ["Broken again", "Thanks!", "How to invite?"], "body": ["Still broken!!", "Works great", ""]})
    with memory_store(customers=customers, tickets=tickets) as store:
        j = Journey(store, None, Scope.build(store, as_of=AS_OF))
        first = j.scored_tickets()
        assert forgotten == [1]
        j.scored_tickets()
        assert forgotten == [1]
        again = sentiment_module.score_tickets(store.table("tickets"))
    pd.testing.assert_frame_equal(first, again, check_exact=True)


def test_forget_kept_scores_empties_the_scores_kept_by_text() -> None:
    sentiment_module.score_tickets(pd.DataFrame({"ticket_id": ["t1"], "subject": ["Broken"], "body": ["It is broken and slow"]}))
    assert sentiment_module._default_vader_scores.cache_info().currsize > 0
    sentiment_module.forget_kept_scores()
    assert sentiment_module._default_vader_scores.cache_info().currsize == 0


def test_friction_checks_the_definitions_milestones_before_the_condition_frames() -> None:
    """Names absent from the store are said for the definition's stages first, as when the milestones came first."""
    customers, events = _world()
    definition = journey_definition({
        "Signed Up": "signup",
        "Set Up": {"all": [{"event": "setup"}, {"event": "no_such_event", "within_days": 60}]},
        "Active": {"event": "report"},
    })
    with memory_store(customers=customers, events=events) as store, pytest.warns(DataQualityWarning) as caught:
        friction_tests_data(store, definition=definition, as_of=AS_OF, n_boot=20, min_customers=5)
    said = [str(w.message) for w in caught if issubclass(w.category, DataQualityWarning)]
    assert "used by Set Up" in said[0]
    assert any("__step" in s for s in said[1:])  # the condition frame's, after
