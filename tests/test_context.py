"""The analysis context: one scope, one definition, each shared result computed once, same answers as the functions."""

from __future__ import annotations

import pandas as pd
import pytest
from _builders import ROOT, day, event_rows, journey_definition, memory_store
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import journeylib
from journeylib.cache import ResultCache
from journeylib.context import Journey
from journeylib.customers import cohorts, features
from journeylib.exceptions import ScopeError
from journeylib.health import customer_mix_data, source_volume_data
from journeylib.journey import friction, paths, stages, suggest, transitions
from journeylib.notebook import open_journey
from journeylib.scope import Scope
from journeylib.store import Store

DEF = journey_definition(
    {
        "Trial": "signup",
        "Setup": {"event": "setup", "within_days": 7},
        "Value": {"event": "project", "min_count": 2},
    },
    conventions={"drop_after_days": 30},
)


@pytest.fixture
def store() -> Store:
    # 6 customers: a, b, c SMB; d, e Ent; f SMB on plan "pro". a, b, d set up; a, d reach Value.
    customers = pd.DataFrame(
        {
            "customer_id": list("abcdef"),
            "segment": ["SMB", "SMB", "SMB", "Ent", "Ent", "SMB"],
            "plan": ["free", "free", "free", "free", "free", "pro"],
            "signup_at": [day(0)] * 6,
        }
    )
    events = event_rows(
        [
            ("a", 1, "setup"), ("a", 2, "project"), ("a", 3, "project"),
            ("b", 2, "setup"),
            ("c", 1, "login"),
            ("d", 1, "setup"), ("d", 4, "project"), ("d", 5, "project"),
            ("e", 9, "setup"),  # after the 7-day window: no Setup
            ("f", 40, "login"),
        ]
    )
    s = memory_store(customers=customers, events=events)
    yield s
    s.close()


def test_context_answers_like_the_functions_and_computes_the_stage_frame_once(store: Store) -> None:
    j = Journey(store, DEF, Scope.build(store))
    assert j.cache.computed["milestones"] == 0
    funnel = j.funnel_data()
    # reached Trial 6, Setup 3 (a, b, d), Value 2 (a, d)
    assert funnel["reached"].tolist() == [6, 3, 2]
    pd.testing.assert_frame_equal(funnel, stages.funnel_data(store, definition=DEF))
    pd.testing.assert_frame_equal(j.funnel_data(by="segment"), stages.funnel_data(store, definition=DEF, by="segment"))
    pd.testing.assert_frame_equal(j.stage_intervals_data(), stages.stage_intervals_data(store, definition=DEF))
    pd.testing.assert_frame_equal(j.stage_transitions_data(), transitions.stage_transitions_data(store, definition=DEF))
    pd.testing.assert_frame_equal(j.variants_data(), paths.variants_data(store, definition=DEF))
    pd.testing.assert_frame_equal(j.flow_data(n_steps=3), transitions.flow_data(store, definition=DEF, n_steps=3))
    # six analyses, one milestone pass for (store, definition, scope)
    assert j.cache.computed["milestones"] == 1


def test_cached_frames_are_copies(store: Store) -> None:
    j = Journey(store, DEF, Scope.build(store))
    first = j.milestones()
    first.loc[:, "customer_id"] = "changed"
    assert (j.milestones()["customer_id"] != "changed").all()
    assert j.cache.computed["milestones"] == 1


def test_with_scope_shares_the_cache_and_changes_only_the_scope(store: Store) -> None:
    j = Journey(store, DEF, Scope.build(store))
    smb = j.with_scope(segment="SMB")
    assert smb.scope.segment == "SMB"
    assert j.scope.segment is None
    assert smb.cache is j.cache
    pd.testing.assert_frame_equal(smb.funnel_data(), stages.funnel_data(store, definition=DEF, segment="SMB"))
    j.funnel_data()
    smb.funnel_data()
    assert j.cache.computed["milestones"] == 2  # one per scope, however often asked
    assert smb.funnel_data()["reached"].tolist() == [4, 2, 1]  # SMB: a, b, c, f; Setup a, b; Value a
    with pytest.raises(TypeError, match="unknown scope filter"):
        j.with_scope(colour="red")


def test_scope_filters_are_not_silently_dropped(store: Store) -> None:
    j = Journey(store, DEF, Scope.build(store, plan="pro"))
    # customer_mix_data filters by segment and sample only: a plan-scoped context must refuse, not widen
    with pytest.raises(TypeError, match="cannot filter by plan"):
        j.customer_mix_data()
    # functions that take loose filters get the scope's values
    every = Journey(store, None, Scope.build(store, segment="Ent"))
    pd.testing.assert_frame_equal(every.customer_mix_data(), customer_mix_data(store, segment="Ent"))
    pd.testing.assert_frame_equal(every.source_volume_data(), source_volume_data(store, segment="Ent"))
    with pytest.raises(ValueError, match="no journey definition"):
        every.funnel_data()


def test_unknown_segment_is_one_error_type(store: Store) -> None:
    with pytest.raises(ScopeError, match="segment 'Partner' matches no customer; known values: Ent, SMB"):
        Journey(store, DEF, Scope.build(store, segment="Partner"))
    for call in (
        lambda: stages.funnel_data(store, definition=DEF, segment="Partner"),
        lambda: source_volume_data(store, segment="Partner"),
        lambda: features.build_features(store, segment="Partner"),
        lambda: friction.friction_data(store, definition=DEF, segment="Partner"),
    ):
        with pytest.raises(ScopeError, match="segment 'Partner' matches no customer"):
            call()
    # a ScopeError is both an empty result and a wrong argument
    assert issubclass(ScopeError, ValueError)
    assert issubclass(ScopeError, journeylib.EmptyResultError)


def test_scope_and_loose_filters_together_are_refused(store: Store) -> None:
    scope = Scope.build(store, segment="SMB")
    with pytest.raises(TypeError, match="pass either scope or the filters segment"):
        stages.funnel_data(store, definition=DEF, scope=scope, segment="Ent")
    # the defaults ("all", "", 0) are not a clash
    pd.testing.assert_frame_equal(
        stages.funnel_data(store, definition=DEF, scope=scope, segment="all", as_of="", sample_n=0),
        stages.funnel_data(store, definition=DEF, segment="SMB"),
    )


def test_features_and_cohorts_are_cached_per_arguments(store: Store) -> None:
    j = Journey(store, DEF, Scope.build(store, as_of=day(60)))
    a = j.features(window_days=7)
    b = j.features(window_days=7)
    pd.testing.assert_frame_equal(a.data, b.data)
    assert a.data is not b.data  # copies
    j.features(window_days=14)
    assert j.cache.computed["features"] == 2
    pd.testing.assert_frame_equal(a.data, features.build_features(store, definition=DEF, window_days=7, as_of=day(60)).data)
    got = j.cohort_metrics_data(by="segment", min_support=1)
    pd.testing.assert_frame_equal(got, cohorts.cohort_metrics_data(store, definition=DEF, by="segment", min_support=1, as_of=day(60)))


def test_compare_definitions_reuses_the_current_definition_frames(store: Store) -> None:
    j = Journey(store, DEF, Scope.build(store, as_of=day(60)))
    j.funnel_data()
    shorter = journey_definition({"Trial": "signup", "Setup": {"event": "setup", "within_days": 7}})
    got = j.compare_definitions_data(suggested=shorter, outcome="retention", outcome_window_days=30.0)
    want = suggest.compare_definitions_data(store, current=DEF, suggested=shorter, outcome="retention", outcome_window_days=30.0, as_of=day(60))
    pd.testing.assert_frame_equal(got, want)
    assert j.cache.computed["milestones"] == 2  # the current definition's frame (already there) and the shorter one


def test_open_journey_reads_a_notebooks_parameters(store: Store, tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "x.duckdb"
    with Store(db) as s:
        s.insert("customers", store.table("customers"))
        s.insert("events", store.table("events"))
    namespace = {"db": str(db), "definition": str(ROOT / "parameters" / "journeys" / "saas.yaml"), "as_of": "", "segment": "SMB",
                 "sample_n": 0, "output_dir": ""}
    monkeypatch.setenv("SERVER_SOFTWARE", "voila/0.5")
    monkeypatch.setenv("QUERY_STRING", "segment=Ent&sample_n=1")
    j = open_journey(namespace, url=["segment", "sample_n"])
    assert namespace["segment"] == "Ent"
    assert namespace["sample_n"] == 1
    assert j.scope.segment == "Ent"
    assert j.scope.sample_n == 1
    assert j.scope.as_of == day(40)  # the latest event
    assert j.definition.name
    with pytest.raises(TypeError, match="cannot come from a URL"):
        open_journey(namespace, url=["db"])
    j.store.close()


def test_result_cache_counts_and_copies() -> None:
    cache = ResultCache()
    frame = pd.DataFrame({"x": [1, 2]})
    got = cache.get("t", ("k",), lambda: frame)
    got.loc[0, "x"] = 99
    assert cache.get("t", ("k",), lambda: pd.DataFrame()).loc[0, "x"] == 1
    assert cache.computed["t"] == 1
    assert len(cache) == 1
    assert cache.get("t", ("other",), lambda: 5) == 5
    assert cache.computed["t"] == 2


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    events=st.lists(
        st.tuples(st.sampled_from(list("abcdefgh")), st.floats(0, 80), st.sampled_from(["setup", "project", "login"])),
        max_size=40,
    ),
    churned=st.lists(st.one_of(st.none(), st.floats(1, 90)), min_size=8, max_size=8),
    drop_after=st.one_of(st.none(), st.sampled_from([5.0, 20.0, 45.0])),
    as_of=st.floats(10, 100),
)
def test_funnel_from_cached_frames_equals_the_engine_count(events, churned, drop_after, as_of) -> None:
    # The funnel counts either in SQL (standalone) or from the cached milestone frame (in a context):
    # whatever the timelines, churn dates, drop-out convention and as_of, the two agree exactly.
    customers = pd.DataFrame(
        {
            "customer_id": list("abcdefgh"),
            "segment": ["SMB", "SMB", "Ent", "Ent", "SMB", "Mid", "Mid", "SMB"],
            "plan": ["free", "pro"] * 4,
            "signup_at": [day(i * 3) for i in range(8)],
            "churned_at": [day(c) if c is not None else pd.NaT for c in churned],
        }
    )
    definition = journey_definition(
        {"Trial": "signup", "Setup": {"event": "setup", "within_days": 14}, "Value": {"event": "project", "min_count": 2}},
        conventions={"drop_after_days": drop_after},
    )
    events = [*events, ("a", 0.5, "login")]  # at least one event, so there is a timeline
    with memory_store(customers=customers, events=event_rows(events)) as s:
        scope = Scope.build(s, as_of=day(as_of))
        cache = ResultCache()
        for by in (None, "segment", "plan", "cohort"):
            pd.testing.assert_frame_equal(
                stages.funnel_data(s, definition=definition, scope=scope, cache=cache, by=by),
                stages.funnel_data(s, definition=definition, scope=scope, by=by),
            )
        assert cache.computed["milestones"] == 1


def test_absent_events_are_checked_on_the_whole_store_whatever_the_scope() -> None:
    store = memory_store(
        customers=[{"customer_id": f"c{i}", "segment": "SMB", "signup_at": pd.Timestamp("2025-01-01T00:00:00Z")} for i in range(5)],
        events=event_rows([("c0", 1, "login"), ("c1", 2, "setup_done")]),
    )
    definition = journey_definition({"Signed Up": "signup", "Set Up": {"event": "setup_complete"}})
    with Journey(store, definition, Scope.build(store)).with_scope(sample_n=2) as j:  # a scope the check cannot filter by
        absent = j.absent_events_data()
    assert absent["event"].tolist() == ["setup_complete"]
    assert absent.set_index("event").loc["setup_complete", "closest"] == "setup_done"
