"""Milestones, funnel, time-to-convert and progress on hand-computed timelines."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from _builders import day
from hypothesis import given, settings
from hypothesis import strategies as st

from journeylib.cache import ResultCache
from journeylib.config.journey import JourneyDefinition
from journeylib.exceptions import DataQualityWarning, EmptyResultError
from journeylib.journey.stages import (
    customer_stages_data,
    funnel_data,
    milestones_data,
    progress_data,
    stage_intervals_data,
    time_to_convert_data,
)
from journeylib.scope import Scope
from journeylib.stats import wilson_interval
from journeylib.store import Store

DEF = JourneyDefinition.from_dict(
    {
        "name": "test",
        "stages": [
            {"name": "Trial", "rule": "signup"},
            {"name": "Setup", "rule": {"all": [{"event": "setup", "within_days": 7}, {"event": "login", "min_count": 2}]}},
            {"name": "Value", "rule": {"any": [{"event": "project", "min_count": 2}, {"event": "integration", "where": {"kind": ["slack", "jira"]}}]}},
            {"name": "Routine", "rule": {"event": "login", "min_count": 3, "within_days": 10, "of": "previous_stage"}},
        ],
        "conventions": {"drop_after_days": 30},
    }
)


def make_store(customers: list[dict], events: list[tuple]) -> Store:
    s = Store(":memory:")
    s.insert("customers", pd.DataFrame(customers))
    rows = [
        {"event_id": f"e{i}", "customer_id": c, "timestamp": day(d), "event": ev, "properties": props}
        for i, (c, d, ev, props) in enumerate(events)
    ]
    s.insert("events", pd.DataFrame(rows))
    return s


@pytest.fixture
def store() -> Store:
    customers = [
        {"customer_id": "a", "segment": "SMB", "signup_at": day(0)},
        {"customer_id": "b", "segment": "SMB", "signup_at": day(0)},
        {"customer_id": "c", "segment": "SMB", "signup_at": day(0), "churned_at": day(20)},
        {"customer_id": "d", "segment": "Ent", "signup_at": day(50)},
    ]
    events = [
        # a: setup day 2 (within 7), logins day 1 and 3 -> Setup entered day 3 (2nd login);
        #    integration slack day 4 -> Value day 4; logins day 5,6,7 after Value -> Routine at day 7.
        ("a", 1, "login", None), ("a", 2, "setup", None), ("a", 3, "login", None),
        ("a", 4, "integration", '{"kind": "slack"}'),
        ("a", 5, "login", None), ("a", 6, "login", None), ("a", 7, "login", None),
        # b: setup day 9 (outside the 7-day window) -> never Setup; an out-of-order project pair.
        ("b", 1, "login", None), ("b", 2, "login", None), ("b", 9, "setup", None),
        ("b", 3, "project", None), ("b", 4, "project", None),
        # c: Setup at day 5; integration of a kind not in the filter -> no Value; churns day 20.
        ("c", 1, "login", None), ("c", 4, "setup", None), ("c", 5, "login", None),
        ("c", 6, "integration", '{"kind": "zoom"}'),
        # d: Value rule met (projects day 51, 52) BEFORE Setup (day 55) -> Value entered day 55.
        ("d", 51, "project", None), ("d", 52, "project", None),
        ("d", 53, "setup", None), ("d", 54, "login", None), ("d", 55, "login", None),
        # after as_of: never seen
        ("d", 90, "login", None),
    ]
    s = make_store(customers, events)
    yield s
    s.close()


AS_OF = day(60)


def test_milestones_hand_computed(store: Store) -> None:
    ms = milestones_data(store, definition=DEF, as_of=AS_OF)
    got = {(r.customer_id, r.stage): (r.met_at, r.entered_at) for r in ms.itertuples()}
    assert got[("a", "Trial")] == (day(0), day(0))
    assert got[("a", "Setup")] == (day(3), day(3))
    assert got[("a", "Value")] == (day(4), day(4))
    assert got[("a", "Routine")] == (day(7), day(7))  # 3rd login within 10 days after day 4
    assert pd.isna(got[("b", "Setup")][0])
    assert got[("b", "Value")][0] == day(4)
    assert pd.isna(got[("b", "Value")][1])
    assert got[("c", "Setup")] == (day(5), day(5))
    assert pd.isna(got[("c", "Value")][0])  # zoom is filtered out
    assert got[("d", "Value")] == (day(52), day(55))  # met before Setup, entered when Setup was
    assert pd.isna(got[("d", "Routine")][0])  # the day-90 login is after as_of


def test_intervals_and_status(store: Store) -> None:
    iv = stage_intervals_data(store, definition=DEF, as_of=AS_OF)
    rec = {(r.customer_id, r.stage): r for r in iv.itertuples()}
    assert rec[("a", "Routine")].status == "completed"
    assert rec[("a", "Setup")].exited_at == day(4)
    assert rec[("a", "Setup")].days_in_stage == pytest.approx(1.0)
    # b: in Trial 60 days > drop_after_days 30 -> dropped
    assert rec[("b", "Trial")].status == "dropped"
    assert rec[("b", "Trial")].days_in_stage == pytest.approx(60.0)
    # c: churned in Setup at day 20
    assert rec[("c", "Setup")].status == "churned"
    assert rec[("c", "Setup")].exited_at == day(20)
    # d: in Value since day 55, 5 days at as_of: censored, not dropped
    assert rec[("d", "Value")].status == "in_progress"
    assert pd.isna(rec[("d", "Value")].exited_at)
    cur = customer_stages_data(store, definition=DEF, as_of=AS_OF).set_index("customer_id")
    assert cur["stage"].astype(str).to_dict() == {"a": "Routine", "b": "Trial", "c": "Setup", "d": "Value"}


def test_funnel_hand_computed(store: Store) -> None:
    f = funnel_data(store, definition=DEF, as_of=AS_OF).set_index("stage")
    # Setup: eligible 4 (all in Trial); reached a, c, d = 3; dropped b (30+ days) = 1; censored 0.
    assert f.loc["Setup", ["eligible", "converted", "dropped", "censored"]].tolist() == [4, 3, 1, 0]
    assert f.loc["Setup", "conversion_rate"] == pytest.approx(0.75)
    # Value: eligible a, c, d = 3; reached a, d; c churned -> dropped; censored 0.
    assert f.loc["Value", ["eligible", "converted", "dropped", "censored"]].tolist() == [3, 2, 1, 0]
    # Routine: eligible a, d; reached a; d in progress 5 days -> censored, not a drop-off.
    assert f.loc["Routine", ["eligible", "converted", "dropped", "censored"]].tolist() == [2, 1, 0, 1]
    assert f.loc["Routine", "conversion_rate"] == pytest.approx(1.0)
    assert f.loc["Routine", "reached_share"] == pytest.approx(0.5)
    lo, hi = wilson_interval([3], [4])
    assert f.loc["Setup", "ci_low"] == pytest.approx(lo[0])
    assert f.loc["Setup", "ci_high"] == pytest.approx(hi[0])


def test_funnel_by_segment_and_errors(store: Store) -> None:
    f = funnel_data(store, definition=DEF, as_of=AS_OF, by="segment")
    assert set(f["group"]) == {"SMB", "Ent"}
    ent = f[(f["group"] == "Ent")].set_index("stage")
    assert ent.loc["Value", "converted"] == 1
    with pytest.raises(ValueError, match="by must be one of segment, plan, cohort"):
        funnel_data(store, definition=DEF, as_of=AS_OF, by="colour")
    with pytest.raises(ValueError, match="segment 'Mid' matches no customer; known values: Ent, SMB"):
        funnel_data(store, definition=DEF, as_of=AS_OF, segment="Mid")
    with pytest.raises(EmptyResultError, match="no customers in scope"):
        funnel_data(store, definition=DEF, as_of=day(-5))


def test_time_to_convert(store: Store) -> None:
    t = time_to_convert_data(store, definition=DEF, as_of=AS_OF).set_index("to_stage")
    # Trial -> Setup: a 3 days, c 5 days, d 5 days -> median 5
    assert t.loc["Setup", "n"] == 3
    assert t.loc["Setup", "median"] == pytest.approx(5.0)
    # Setup -> Value: a 1 day, d 0 days
    assert t.loc["Value", "n"] == 2
    assert t.loc["Value", "mean"] == pytest.approx(0.5)


def test_progress(store: Store) -> None:
    p = progress_data(store, definition=DEF, as_of=AS_OF, min_peers=1)
    row = p.set_index("customer_id").loc["d"]
    # d is in Value for 5 days; peers who left Value: a (3 days, Value day 4 -> Routine day 7), all segments
    assert row["peer_group"] == "all"
    assert row["peers"] == 1
    assert row["days_in_stage"] == pytest.approx(5.0)
    assert row["progress"] == "stuck"


def test_wilson_matches_statsmodels_values() -> None:
    lo, hi = wilson_interval([0, 5, 10], [10, 10, 0])
    # Wilson 95% for 5/10: 0.2366, 0.7634
    assert lo[1] == pytest.approx(0.2366, abs=1e-4)
    assert hi[1] == pytest.approx(0.7634, abs=1e-4)
    assert lo[0] == 0.0
    assert np.isnan(lo[2])


@settings(max_examples=25, deadline=None)
@given(
    seq=st.lists(
        st.tuples(st.sampled_from(["a", "b", "c", "d", "e"]), st.integers(0, 40), st.sampled_from(["login", "setup", "project", "integration"])),
        min_size=1,
        max_size=40,
    ),
    seed=st.integers(0, 1000),
)
def test_invariants_customers_conserved_and_order_free(seq: list[tuple[str, int, str]], seed: int) -> None:
    customers = [{"customer_id": c, "segment": "SMB", "signup_at": day(0)} for c in "abcde"]
    events = [(c, d, ev, '{"kind": "slack"}' if ev == "integration" else None) for c, d, ev in seq]
    rng = np.random.default_rng(seed)
    shuffled = [events[i] for i in rng.permutation(len(events))]
    results = []
    for evs in (events, shuffled):
        with make_store(customers, evs) as s:
            f = funnel_data(s, definition=DEF, as_of=day(45))
            iv = stage_intervals_data(s, definition=DEF, as_of=day(45))
        # every customer of a stage's denominator is converted, dropped or censored
        assert (f["converted"] + f["dropped"] + f["censored"] == f["eligible"]).all()
        # reached counts never increase along the funnel
        assert (np.diff(f["reached"].to_numpy()) <= 0).all()
        # each customer has exactly one current (non-progressed) interval
        assert (iv[iv["status"] != "progressed"].groupby("customer_id").size() == 1).all()
        assert iv["customer_id"].nunique() == 5
        results.append(f.drop(columns=["stage"]).reset_index(drop=True))
    pd.testing.assert_frame_equal(results[0], results[1])


# -- free-order milestones and journeys ended without churn -------------------------------------------
# Paying does not wait for set-up: "Converted" is a free-order milestone, and a trial that ends unpaid
# ends the journey (a drop outcome read from customers.properties), so no drop_after_days is needed.
FREE_DEF = JourneyDefinition.from_dict(
    {
        "name": "free-order",
        "stages": [
            {"name": "Trial", "rule": "signup"},
            {"name": "Setup", "rule": {"event": "setup"}},
            {"name": "Converted", "rule": {"event": "paid"}, "order": "any"},
        ],
        "outcomes": {"trial_expired": {"customer_property": "trial_ends_at", "kind": "drop", "unless_stage": "Converted"}},
    }
)
FREE_AS_OF = day(60)


def _trial(customer_id: str, signup: float, trial_end: float, churned: float | None = None) -> dict:
    row = {"customer_id": customer_id, "segment": "SMB", "signup_at": day(signup),
           "properties": json.dumps({"trial_ends_at": day(trial_end).isoformat()})}
    if churned is not None:
        row["churned_at"] = day(churned)
    return row


@pytest.fixture
def free_store() -> Store:
    customers = [
        _trial("a", 0, 14),  # set up day 2, paid day 5
        _trial("b", 0, 14),  # paid day 3 without setting up: converted, Setup still open (censored)
        _trial("c", 0, 14),  # set up day 4, never paid: the trial's end (day 14) drops c at Converted
        _trial("d", 0, 14),  # nothing: the trial's end drops d at Setup and at Converted
        _trial("e", 55, 69),  # signed up late; the trial has not ended by as_of: censored everywhere
        _trial("f", 0, 14, churned=10),  # churned day 10: dropped at Setup and Converted
        _trial("g", 0, 14),  # paid day 20, after the trial ended unpaid: reaches Converted, dropped at Setup
        _trial("h", 0, 14),  # paid day 3, set up day 8: Converted before Setup
    ]
    events = [
        ("a", 2, "setup", None), ("a", 5, "paid", None),
        ("b", 3, "paid", None),
        ("c", 4, "setup", None),
        ("e", 56, "login", None),
        ("f", 1, "login", None),
        ("g", 20, "paid", None),
        ("h", 3, "paid", None), ("h", 8, "setup", None),
    ]
    s = make_store(customers, events)
    yield s
    s.close()


def test_free_order_milestones_and_end_times(free_store: Store) -> None:
    ms = milestones_data(free_store, definition=FREE_DEF, as_of=FREE_AS_OF)
    got = {(r.customer_id, r.stage): r.entered_at for r in ms.itertuples()}
    # the free-order stage is entered at its own time, whatever Setup did
    assert got[("b", "Converted")] == day(3)
    assert got[("g", "Converted")] == day(20)
    assert got[("h", "Converted")] == day(3)
    assert pd.isna(got[("b", "Setup")])
    ended = ms.drop_duplicates("customer_id").set_index("customer_id")["ended_at"]
    # the trial's end ends the journey of c, d, f, g (unpaid at day 14); a, b, h had paid; e's trial runs on
    assert ended.dropna().index.tolist() == ["c", "d", "f", "g"]
    assert (ended.dropna() == day(14)).all()


def test_free_order_funnel_equals_hand_count(free_store: Store) -> None:
    f = funnel_data(free_store, definition=FREE_DEF, as_of=FREE_AS_OF).set_index("stage")
    cols = ["eligible", "reached", "dropped", "censored"]
    assert f.loc["Trial", cols].tolist() == [8, 8, 0, 0]
    # Setup: reached a, c, h; dropped d (trial ended), f (churned), g (trial ended); censored b, e
    assert f.loc["Setup", cols].tolist() == [8, 3, 3, 2]
    # Converted: every customer waits for it; reached a, b, g, h (the old forced order gave a, h only);
    # dropped c, d (trial ended unpaid), f (churned); censored e (trial still running)
    assert f.loc["Converted", cols].tolist() == [8, 4, 3, 1]
    assert f.loc["Converted", "conversion_rate"] == pytest.approx(4 / 7)
    lo, hi = wilson_interval([4], [7])
    assert (f.loc["Converted", "ci_low"], f.loc["Converted", "ci_high"]) == (pytest.approx(lo[0]), pytest.approx(hi[0]))
    # the same counts from the cached milestone frame as from the engine
    scope = Scope.build(free_store, as_of=FREE_AS_OF)
    for by in (None, "segment", "cohort"):
        pd.testing.assert_frame_equal(
            funnel_data(free_store, definition=FREE_DEF, scope=scope, cache=ResultCache(), by=by),
            funnel_data(free_store, definition=FREE_DEF, scope=scope, by=by),
        )


def test_free_order_time_to_convert(free_store: Store) -> None:
    t = time_to_convert_data(free_store, definition=FREE_DEF, as_of=FREE_AS_OF).set_index("to_stage")
    # Trial -> Setup: a 2, c 4, h 8 days
    assert t.loc["Setup", ["from_stage", "n", "median"]].tolist() == ["Trial", 3, pytest.approx(4.0)]
    # signup (Trial) -> Converted: a 5, b 3, g 20, h 3 days — every payer, with or without set-up
    assert t.loc["Converted", ["from_stage", "n", "median", "mean"]].tolist() == ["Trial", 4, pytest.approx(4.0), pytest.approx(7.75)]


def test_free_order_intervals_in_time_order_and_drop_outcome(free_store: Store) -> None:
    iv = stage_intervals_data(free_store, definition=FREE_DEF, as_of=FREE_AS_OF)
    rec = {(r.customer_id, r.stage): r for r in iv.itertuples()}
    # h paid (day 3) before setting up (day 8): Trial [0, 3), Converted [3, 8), Setup [8, ...)
    assert iv[iv["customer_id"] == "h"]["stage"].astype(str).tolist() == ["Trial", "Converted", "Setup"]
    assert rec[("h", "Converted")].exited_at == day(8)
    assert rec[("h", "Setup")].status == "completed"  # h has entered the last stage
    assert (iv["exited_at"].isna() | (iv["exited_at"] >= iv["entered_at"])).all()
    # the trial's end drops c in Setup and d in Trial on day 14: a real exit, not a guess from drop_after_days
    assert (rec[("c", "Setup")].status, rec[("c", "Setup")].exited_at) == ("dropped", day(14))
    assert (rec[("d", "Trial")].status, rec[("d", "Trial")].days_in_stage) == ("dropped", pytest.approx(14.0))
    assert rec[("e", "Trial")].status == "in_progress"  # censored: never a drop-off
    assert rec[("f", "Trial")].status == "churned"
    assert rec[("b", "Converted")].status == "completed"


def test_drop_outcome_property_that_is_not_a_date_warns(free_store: Store) -> None:
    free_store.execute("UPDATE customers SET properties = '{\"trial_ends_at\": \"soon\"}' WHERE customer_id = 'd'")
    with pytest.warns(DataQualityWarning, match=r"1 of 8 values of customers.properties key 'trial_ends_at' are not ISO 8601"):
        f = funnel_data(free_store, definition=FREE_DEF, as_of=FREE_AS_OF).set_index("stage")
    assert f.loc["Setup", ["dropped", "censored"]].tolist() == [2, 3]  # d is now censored, not guessed dropped


def test_absent_events_warn_with_the_closest_names_present() -> None:
    from _builders import event_rows, journey_definition, memory_store

    from journeylib.exceptions import DataQualityWarning
    from journeylib.journey.stages import absent_events_data, funnel_data

    store = memory_store(
        customers=[{"customer_id": "a", "segment": "SMB", "signup_at": pd.Timestamp("2025-01-01T00:00:00Z")}],
        events=event_rows([("a", 1, "employee_added"), ("a", 2, "payroll_run_completed"), ("a", 3, "Payroll_Run")]),
    )
    d = journey_definition(
        {"Trial": "signup", "Team": {"event": "employe_added"}, "Paid": {"events": ["payroll_run", "invoice_paid"]}},
        outcomes=("expansion",),
    )
    absent = absent_events_data(store, definition=d)
    assert absent["event"].tolist() == ["employe_added", "invoice_paid", "payroll_run", "plan_upgraded"]
    row = absent.set_index("event")
    assert row.loc["employe_added", "closest"] == "employee_added"
    assert row.loc["employe_added", "used_by"] == "Team"
    assert row.loc["payroll_run", "closest"].split(", ")[0] == "Payroll_Run"  # names are compared exactly; case differs
    assert row.loc["plan_upgraded", "used_by"] == "outcome:expansion"
    assert row.loc["invoice_paid", "message"] == "event 'invoice_paid' (used by Paid) is not in the store; no event name present is close to it."
    with pytest.warns(DataQualityWarning, match=r"4 event name\(s\) it uses are not in the store.*event 'employe_added' \(used by Team\) "
                      r"is not in the store; closest names present: employee_added\."):
        f = funnel_data(store, definition=d, as_of="2025-02-01")
    assert f["reached"].tolist() == [1, 0, 0]
    present = journey_definition({"Trial": "signup", "Team": {"event": "employee_added"}})
    assert absent_events_data(store, definition=present).empty


def test_milestones_come_in_customer_then_stage_order_whatever_order_the_engine_returns() -> None:
    """Many customers stored in shuffled order, on several threads: rows in customer_id order, each with its own times.

    The engine returns one row per customer in no particular order (with
    20,000 customers and several threads, not in customer order); the frame
    is put in customer order afterwards. Every customer's times are
    distinct, so a row given another customer's times, or a customer out of
    place, fails.
    """
    from _builders import journey_definition

    rng = np.random.default_rng(3)
    n = 20_000
    ids = [f"c{i:05d}" for i in range(n)]
    signup = day(0) + pd.to_timedelta(np.arange(n) * 10, unit="s")  # customer i signs up 10*i seconds after T0
    # every other customer logs in i + 1 seconds after signup; the others never do
    login = pd.Series(signup + pd.to_timedelta(np.arange(n) + 1, unit="s")).where(np.arange(n) % 2 == 0)
    logged = np.flatnonzero(login.notna())
    events = pd.DataFrame({"event_id": [f"e{i}" for i in logged], "customer_id": [ids[i] for i in logged],
                           "timestamp": login.iloc[logged].to_numpy(), "event": "login", "source": "product"})
    s = Store(":memory:", threads=4)
    try:
        s.insert("customers", pd.DataFrame({"customer_id": ids, "segment": "SMB", "signup_at": signup}).iloc[rng.permutation(n)])
        s.insert("events", events.iloc[rng.permutation(len(events))])
        d = journey_definition({"Trial": "signup", "Active": {"event": "login"}})
        ms = milestones_data(s, definition=d, as_of=day(30))
    finally:
        s.close()
    assert ms["customer_id"].tolist() == [c for c in ids for _ in range(2)]
    assert ms["stage_order"].tolist() == [0, 1] * n
    trial, active = ms[ms["stage_order"] == 0].reset_index(drop=True), ms[ms["stage_order"] == 1].reset_index(drop=True)
    expected_signup = pd.Series(signup).astype(ms["signup_at"].dtype)
    pd.testing.assert_series_equal(trial["signup_at"], expected_signup, check_names=False)
    pd.testing.assert_series_equal(trial["entered_at"], expected_signup, check_names=False)
    expected_login = login.astype(ms["met_at"].dtype)
    pd.testing.assert_series_equal(active["met_at"], expected_login, check_names=False)
    pd.testing.assert_series_equal(active["entered_at"], expected_login, check_names=False)
    assert ms["ended_at"].isna().all()
