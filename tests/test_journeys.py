"""Actual paths: transitions, variants, conformance, flow, loops and sessions on hand-computed timelines."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _builders import day
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from journeylib.config.journey import JourneyDefinition
from journeylib.exceptions import ConfigError, EmptyResultError
from journeylib.journey.loops import loop_events_data
from journeylib.journey.paths import (
    CHURNED,
    DROPPED,
    END_NODES,
    STILL_ACTIVE,
    conformance_data,
    customer_paths_data,
    variants_data,
)
from journeylib.journey.scope_choices import scope_choices_data
from journeylib.journey.sessions import sessions_data
from journeylib.journey.stage_map import rule_text, stage_map_data
from journeylib.journey.stages import funnel_data
from journeylib.journey.transitions import START, event_transitions_data, flow_data, stage_transitions_data
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
AS_OF = day(60)


def make_store(customers: list[dict], events: list[tuple], tickets: list[dict] | None = None) -> Store:
    s = Store(":memory:")
    s.insert("customers", pd.DataFrame(customers))
    full = [e if len(e) == 5 else (*e, "product") for e in events]  # source defaults to product
    rows = [
        {"event_id": f"e{i:04d}", "customer_id": c, "timestamp": day(d), "event": ev, "properties": props, "source": src}
        for i, (c, d, ev, props, src) in enumerate(full)
    ]
    if rows:
        s.insert("events", pd.DataFrame(rows))
    if tickets:
        s.insert("tickets", pd.DataFrame(tickets))
    return s


# The timelines of tests/test_stages.py, with a conversion for a:
#   a: Setup met day 3, Value day 4, Routine day 7                   path Trial → Setup → Value → Routine, still active
#   b: setup outside the window; projects days 3-4 (Value met day 4)  path Trial → Value; 60 days in Trial > 30: dropped
#   c: Setup day 5; a zoom integration does not count; churns day 20   path Trial → Setup, churned
#   d: signs up day 50; Value met day 52, Setup met day 55            path Trial → Value → Setup (reordered), still active
CUSTOMERS = [
    {"customer_id": "a", "segment": "SMB", "plan": "pro", "signup_at": day(0), "converted_at": day(10)},
    {"customer_id": "b", "segment": "SMB", "plan": "starter", "signup_at": day(0)},
    {"customer_id": "c", "segment": "SMB", "plan": "pro", "signup_at": day(0), "churned_at": day(20), "converted_at": day(8)},
    {"customer_id": "d", "segment": "Ent", "plan": "pro", "signup_at": day(50)},
]
EVENTS = [
    ("a", 1, "login", None), ("a", 2, "setup", None), ("a", 3, "login", None),
    ("a", 4, "integration", '{"kind": "slack"}'),
    ("a", 5, "login", None), ("a", 6, "login", None), ("a", 7, "login", None),
    ("b", 1, "login", None), ("b", 2, "login", None), ("b", 9, "setup", None),
    ("b", 3, "project", None), ("b", 4, "project", None),
    ("c", 1, "login", None), ("c", 4, "setup", None), ("c", 5, "login", None),
    ("c", 6, "integration", '{"kind": "zoom"}'),
    ("d", 51, "project", None), ("d", 52, "project", None),
    ("d", 53, "setup", None), ("d", 54, "login", None), ("d", 55, "login", None),
    ("d", 90, "login", None),  # after as_of: never seen
]


@pytest.fixture
def store() -> Store:
    s = make_store(CUSTOMERS, EVENTS)
    yield s
    s.close()


# -- paths and transitions -------------------------------------------------------------------------
def test_customer_paths_hand_computed(store: Store) -> None:
    p = customer_paths_data(store, definition=DEF, as_of=AS_OF).set_index("customer_id")
    assert p["path"].to_dict() == {
        "a": "Trial → Setup → Value → Routine",
        "b": "Trial → Value",
        "c": "Trial → Setup",
        "d": "Trial → Value → Setup",
    }
    assert p["end_node"].to_dict() == {"a": STILL_ACTIVE, "b": DROPPED, "c": CHURNED, "d": STILL_ACTIVE}
    assert p["status"].to_dict() == {"a": "completed", "b": "dropped", "c": "churned", "d": "in_progress"}
    assert p.loc["b", "skipped"] == "Setup"  # Value met without Setup
    assert p.loc["d", "reordered"] == "Setup"  # Setup met (day 55) after Value (day 52)
    assert p["follows_happy_path"].to_dict() == {"a": True, "b": False, "c": True, "d": False}
    assert p["n_loops"].sum() == 0  # no gap of 14 days, too few customers to call an event an attempt
    assert p.loc["a", "converted"]
    assert not p.loc["b", "converted"]


def test_stage_transitions_met_hand_computed(store: Store) -> None:
    t = stage_transitions_data(store, definition=DEF, as_of=AS_OF)
    got = {(r.from_node, r.to_node): r for r in t.itertuples()}
    assert got[(START, "Trial")].customers == 4
    # Trial → Setup: a (3 days), c (5 days); Trial → Value: b (4 days), d (2 days)
    assert got[("Trial", "Setup")].customers == 2
    assert got[("Trial", "Setup")].median_days == pytest.approx(4.0)
    assert got[("Trial", "Value")].kind == "skip"
    assert got[("Trial", "Value")].probability == pytest.approx(0.5)
    # out of Setup (a, c, d): a → Value, c → churned (15 days later), d → still active
    assert got[("Setup", "Value")].probability == pytest.approx(1 / 3)
    assert got[("Setup", CHURNED)].median_days == pytest.approx(15.0)
    assert got[("Setup", STILL_ACTIVE)].customers == 1
    # out of Value (a, b, d): a → Routine (3 days), b → dropped, d → Setup (backward, 3 days)
    assert got[("Value", "Setup")].kind == "backward"
    assert got[("Value", "Setup")].median_days == pytest.approx(3.0)
    assert got[("Value", DROPPED)].kind == "end"
    assert got[("Routine", STILL_ACTIVE)].customers == 1
    lo, hi = wilson_interval([1], [3])
    assert got[("Value", "Routine")].ci_low == pytest.approx(lo[0])
    assert got[("Value", "Routine")].ci_high == pytest.approx(hi[0])
    assert t["segment"].unique().tolist() == ["all"]


def test_stage_transitions_entered_is_the_funnel(store: Store) -> None:
    t = stage_transitions_data(store, definition=DEF, as_of=AS_OF, basis="entered")
    got = {(r.from_node, r.to_node): r.customers for r in t.itertuples()}
    # entered in order: a Trial→Setup→Value→Routine, b Trial (dropped), c Trial→Setup (churned), d Trial→Setup→Value
    assert got == {
        (START, "Trial"): 4, ("Trial", "Setup"): 3, ("Trial", DROPPED): 1, ("Setup", "Value"): 2, ("Setup", CHURNED): 1,
        ("Value", "Routine"): 1, ("Value", STILL_ACTIVE): 1, ("Routine", STILL_ACTIVE): 1,
    }
    assert set(t["kind"]) == {"start", "forward", "end"}
    f = funnel_data(store, definition=DEF, as_of=AS_OF).set_index("stage")
    assert got[("Trial", "Setup")] == f.loc["Setup", "converted"]
    with pytest.raises(ValueError, match="basis must be 'met' or 'entered'"):
        stage_transitions_data(store, definition=DEF, as_of=AS_OF, basis="sideways")  # type: ignore[arg-type]


def test_event_transitions_hand_computed() -> None:
    customers = [
        {"customer_id": "x", "segment": "SMB", "signup_at": day(0)},
        {"customer_id": "y", "segment": "SMB", "signup_at": day(0), "churned_at": day(5)},
        {"customer_id": "z", "segment": "SMB", "signup_at": day(0)},  # no events at all
    ]
    events = [("x", 1, "login", None), ("x", 2, "setup", None), ("x", 2.5, "setup", None), ("x", 3, "login", None), ("y", 1, "login", None)]
    with make_store(customers, events) as s:
        t = event_transitions_data(s, as_of=day(10))
        got = {(r.from_node, r.to_node): (r.transitions, r.probability) for r in t.itertuples()}
        assert got[(START, "login")] == (2, pytest.approx(2 / 3))
        assert got[(START, STILL_ACTIVE)] == (1, pytest.approx(1 / 3))  # z
        # from login: x→setup, x→(end) still active, y→churned: 3 transitions
        assert got[("login", "setup")] == (1, pytest.approx(1 / 3))
        assert got[("login", CHURNED)] == (1, pytest.approx(1 / 3))
        assert got[("setup", "setup")] == (1, pytest.approx(0.5))
        churn = t[(t["from_node"] == "login") & (t["to_node"] == CHURNED)].iloc[0]
        assert churn["median_days"] == pytest.approx(4.0)  # login day 1, churn day 5
        assert churn["median_hours"] == pytest.approx(96.0)
        collapsed = event_transitions_data(s, as_of=day(10), collapse_repeats=True)
        assert ("setup", "setup") not in set(zip(collapsed["from_node"], collapsed["to_node"], strict=True))
        top1 = event_transitions_data(s, as_of=day(10), top_n=1)
        assert set(top1["from_node"]) == {START, "login", "other"}
        inactive = event_transitions_data(s, as_of=day(10), inactive_days=5)
        ends = inactive[inactive["to_node"].isin(END_NODES)].groupby("to_node")["transitions"].sum().to_dict()
        assert ends == {CHURNED: 1, DROPPED: 2}  # x last seen day 3 (7 days before as_of), z never
        with pytest.raises(ValueError, match="top_n must be at least 1"):
            event_transitions_data(s, top_n=0)


def test_variants_hand_computed(store: Store) -> None:
    v = variants_data(store, definition=DEF, as_of=AS_OF)
    assert v["customers"].tolist() == [1, 1, 1, 1]
    assert v["share"].sum() == pytest.approx(1.0)
    rec = v.set_index("variant")
    assert rec.loc["Trial → Setup", "follows_happy_path"]
    assert not rec.loc["Trial → Value → Setup", "follows_happy_path"]
    assert rec.loc["Trial → Setup", "churn_rate"] == 1.0  # c churned
    assert rec.loc["Trial → Setup", "conversion_rate"] == 1.0  # c converted on day 8
    assert rec.loc["Trial → Setup → Value → Routine", "median_days_to_last"] == pytest.approx(7.0)
    lo, _ = wilson_interval([1], [1])
    assert rec.loc["Trial → Setup", "churn_ci_low"] == pytest.approx(lo[0])
    two = variants_data(store, definition=DEF, as_of=AS_OF, top_n=2)
    assert two["variant"].tolist()[-1] == "(other variants)"
    assert two.iloc[-1]["variants"] == 2
    assert two["customers"].sum() == 4
    with pytest.raises(ValueError, match="top_n must be at least 1"):
        variants_data(store, definition=DEF, top_n=0)


def test_conformance_hand_computed(store: Store) -> None:
    c = conformance_data(store, definition=DEF, as_of=AS_OF)
    followed = c.iloc[0]
    assert (followed["stage"], followed["kind"], followed["customers"], followed["eligible"]) == ("(whole path)", "followed", 2, 4)
    rec = c.set_index(["stage", "kind"])
    # skipped Setup: b; possible for a, b, d (met Value or Routine)
    assert rec.loc[("Setup", "skipped"), ["customers", "eligible"]].tolist() == [1, 3]
    assert rec.loc[("Setup", "skipped"), "detail"] == "most often went on to Value (1)"
    # reordered Setup: d; possible for a and d (met Setup and a later stage)
    assert rec.loc[("Setup", "reordered"), ["customers", "eligible"]].tolist() == [1, 2]
    assert rec.loc[("Setup", "reordered"), "detail"] == "most often met after Value (1)"
    assert rec.loc[("Trial", "skipped"), "customers"] == 0
    assert rec.xs("looped", level="kind")["customers"].sum() == 0
    assert rec.loc[("Setup", "reordered"), "rate"] == pytest.approx(0.5)


def test_loops_repeated_attempts_and_returns() -> None:
    customers = [{"customer_id": c, "segment": "SMB", "signup_at": day(0)} for c in ("p", "q")]
    events = [
        # p retries step 1 (same properties), then does step 2; then 20 days of silence and a login
        ("p", 1, "step", '{"step": 1}'), ("p", 2, "step", '{"step": 1}'), ("p", 3, "step", '{"step": 2}'),
        ("p", 23, "login", None),
        # q: an email during a silence does not count as activity: the login on day 30 is a return
        ("q", 1, "login", None), ("q", 10, "email_opened", None, "email"), ("q", 30, "login", None),
    ]
    with make_store(customers, events) as s:
        loops = loop_events_data(s, as_of=day(40), attempt_events=["step"])
        got = [(r.customer_id, r.kind, r.event, r.timestamp) for r in loops.itertuples()]
        assert got == [
            ("p", "repeated attempt", "step", day(2)),
            ("p", "return after gap", "login", day(23)),
            ("q", "return after gap", "login", day(30)),
        ]
        d = JourneyDefinition.from_dict({"name": "t", "stages": [{"name": "Trial", "rule": "signup"}, {"name": "Done", "rule": {"event": "login"}}]})
        conf = conformance_data(s, definition=d, as_of=day(40), attempt_events=["step"]).set_index(["stage", "kind"])
        # p is in Trial until its login on day 23 (the return is the entry into Done, so it counts in Done)
        assert conf.loc[("Trial", "looped"), "customers"] == 1
        assert "1 repeated attempt" in conf.loc[("Trial", "looped"), "detail"]
        assert conf.loc[("(whole path)", "followed"), "customers"] == 0
        longer_gap = loop_events_data(s, as_of=day(40), attempt_events=[], gap_days=30)
        assert longer_gap.empty


def test_company_sources_are_found_by_kind_not_name() -> None:
    """A SendGrid e-mail or a Salesforce record during a silence is the company's doing: the login after it is a return."""
    customers = [{"customer_id": "q", "segment": "SMB", "signup_at": day(0)}]
    events = [("q", 1, "login", None, "mixpanel"), ("q", 10, "email_opened", None, "sendgrid"), ("q", 20, "opportunity_created", None, "salesforce"),
              ("q", 30, "login", None, "mixpanel")]  # fmt: skip
    with make_store(customers, events) as s:
        loops = loop_events_data(s, as_of=day(40), attempt_events=[])
        assert [(r.kind, r.event, r.timestamp) for r in loops.itertuples()] == [("return after gap", "login", day(30))]


def test_flow_hand_computed(store: Store) -> None:
    f = flow_data(store, definition=DEF, as_of=AS_OF, n_steps=3, padding=0.05, n_points=4)
    nodes = f[f["element"] == "node"].set_index(["step", "node"])
    # a: Trial, Setup, Value (cut); b: Trial, Value, dropped; c: Trial, Setup, churned; d: Trial, Value, Setup (cut)
    assert nodes["customers"].to_dict() == {
        (0, "Trial"): 4, (1, "Setup"): 2, (1, "Value"): 2, (2, "Setup"): 1, (2, "Value"): 1, (2, DROPPED): 1, (2, CHURNED): 1,
    }
    assert nodes.loc[(1, "Setup"), ["y", "y2"]].tolist() == [0.0, 2.0]
    assert nodes.loc[(1, "Value"), ["y", "y2"]].tolist() == pytest.approx([2.2, 4.2])  # gap = 0.05 × 4
    assert nodes.loc[(0, "Trial"), ["x", "x2"]].tolist() == pytest.approx([0.0, 0.18])
    links = f[(f["element"] == "link") & (f["point"] == 0)]
    pairs = {(r.step, r.node, r.target): r.customers for r in links.itertuples()}
    assert pairs == {
        (0, "Trial", "Setup"): 2, (0, "Trial", "Value"): 2,
        (1, "Setup", "Value"): 1, (1, "Setup", CHURNED): 1, (1, "Value", "Setup"): 1, (1, "Value", DROPPED): 1,
    }
    assert (f.loc[f["element"] == "link", "point"].max()) == 3
    # a band keeps its thickness along the curve
    band = f[f["element"] == "link"]
    assert np.allclose(band["y2"] - band["y"], band["customers"])
    from_value = flow_data(store, definition=DEF, as_of=AS_OF, from_stage="Value", n_steps=2)
    start = from_value[(from_value["element"] == "node") & (from_value["step"] == 0)]
    assert start["node"].tolist() == ["Value"]
    assert start["customers"].tolist() == [3]  # a, b, d met Value
    with pytest.raises(ValueError, match="from_stage 'Nope' is not a stage"):
        flow_data(store, definition=DEF, from_stage="Nope")
    with pytest.raises(ValueError, match="n_steps must be at least 2"):
        flow_data(store, definition=DEF, n_steps=1)
    with pytest.raises(EmptyResultError, match="met 'Routine'"):
        flow_data(store, definition=DEF, as_of=day(5), from_stage="Routine")


def test_sessions_hand_computed() -> None:
    customers = [{"customer_id": "s", "segment": "SMB", "signup_at": day(0)}]
    minutes = [0, 10, 50, 60]  # 40 minutes of silence: two sessions of 10 minutes
    events = [("s", m / 1440, "login", None) for m in minutes]
    with make_store(customers, events) as s:
        per_session = sessions_data(s, as_of=day(14), level="session")
        assert per_session["session"].tolist() == [1, 2]
        assert per_session["events"].tolist() == [2, 2]
        assert per_session["duration_minutes"].tolist() == pytest.approx([10.0, 10.0])
        per_customer = sessions_data(s, as_of=day(14)).iloc[0]
        assert per_customer["sessions"] == 2
        assert per_customer["sessions_per_week"] == pytest.approx(1.0)  # 2 sessions over 2 weeks
        assert sessions_data(s, as_of=day(14), gap_minutes=45, level="session")["events"].tolist() == [4]
        with pytest.raises(ValueError, match="level must be 'customer' or 'session'"):
            sessions_data(s, level="user")  # type: ignore[arg-type]


def test_sessions_keep_events_with_equal_timestamps_together() -> None:
    # many customers, each with groups of 3 simultaneous events 2 hours apart: every group is one whole session
    customers = [{"customer_id": f"t{i}", "segment": "SMB", "signup_at": day(0)} for i in range(200)]
    events = [(f"t{i}", (120 * (k + 1)) / 1440, f"e{j}", None) for i in range(200) for k in range(5) for j in range(3)]
    with make_store(customers, events) as s:
        per_session = sessions_data(s, as_of=day(14), level="session")
        assert len(per_session) == 200 * 5
        assert (per_session["events"] == 3).all()
        assert (per_session["duration_minutes"] == 0).all()


def test_stage_map_rule_text_and_choices(store: Store) -> None:
    m = stage_map_data(DEF)
    assert m["rule"].tolist()[:2] == ["signup", "all of (setup within 7 d of signup; ≥ 2 login)"]
    assert m["events"].tolist()[1] == "login, setup"
    assert m["on_happy_path"].all()
    assert rule_text(DEF.stages[3].rule) == "≥ 3 login within 10 d of previous stage"
    choices = scope_choices_data(store)
    assert choices[choices["field"] == "segment"]["value"].tolist() == ["Ent", "SMB"]
    period = choices[choices["field"] == "signup_period"].iloc[0]
    assert (period["value"], period["signup_from"], period["signup_to"], period["customers"]) == ("2025Q1", "2025-01-01", "2025-04-01", 4)


def test_definition_load_finds_relative_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(Path(__file__).resolve().parents[1] / "notebooks")
    assert JourneyDefinition.load("../parameters/journeys/saas.yaml").stage_names[0] == "Trial Started"
    monkeypatch.chdir(tmp_path)
    assert JourneyDefinition.load("parameters/journeys/saas.yaml").name == "B2B SaaS customer journey"  # via the package's repository
    assert JourneyDefinition.load(DEF) is DEF
    with pytest.raises(ConfigError, match="not found; looked at"):
        JourneyDefinition.load("nope/missing.yaml")


def test_empty_scope_raises(store: Store) -> None:
    with pytest.raises(EmptyResultError, match="no customers in scope"):
        stage_transitions_data(store, definition=DEF, as_of=day(-5))


# -- invariants --------------------------------------------------------------------------------------
SEQ = st.lists(
    st.tuples(st.sampled_from(["a", "b", "c", "d", "e"]), st.integers(0, 40), st.sampled_from(["login", "setup", "project", "integration"])),
    min_size=0,
    max_size=40,
)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seq=SEQ, seed=st.integers(0, 1000), churn=st.sets(st.sampled_from("abcde")))
def test_invariants_probabilities_conservation_and_row_order(seq: list[tuple[str, int, str]], seed: int, churn: set[str]) -> None:
    customers = [
        {"customer_id": c, "segment": "SMB", "signup_at": day(0), **({"churned_at": day(30)} if c in churn else {})} for c in "abcde"
    ]
    events = [(c, d, ev, '{"kind": "slack"}' if ev == "integration" else None) for c, d, ev in seq]
    rng = np.random.default_rng(seed)
    shuffled = [events[i] for i in rng.permutation(len(events))]
    results = []
    for evs in (events, shuffled):
        with make_store(customers, evs) as s:
            tr = stage_transitions_data(s, definition=DEF, as_of=day(45))
            ev = event_transitions_data(s, definition=DEF, as_of=day(45))
            fl = flow_data(s, definition=DEF, as_of=day(45), n_steps=4)
            va = variants_data(s, definition=DEF, as_of=day(45))
            results.append((tr, ev, fl, va))
            # probabilities out of every node sum to 1
            for frame in (tr, ev):
                sums = frame.groupby("from_node")["probability"].sum()
                assert np.allclose(sums.to_numpy(), 1.0)
            # customers are conserved: 5 leave start, 5 reach an end node, and every stage is left as often as entered
            assert tr.loc[tr["from_node"] == START, "customers"].sum() == 5
            assert tr.loc[tr["to_node"].isin(END_NODES), "customers"].sum() == 5
            inflow = tr.groupby("to_node")["customers"].sum()
            outflow = tr.groupby("from_node")["customers"].sum()
            for name in DEF.stage_names:
                assert inflow.get(name, 0) == outflow.get(name, 0)
            assert ev.loc[ev["from_node"] == START, "transitions"].sum() == 5
            assert ev.loc[ev["to_node"].isin(END_NODES), "transitions"].sum() == 5
            nodes = fl[fl["element"] == "node"]
            links = fl[(fl["element"] == "link") & (fl["point"] == 0)]
            assert nodes.loc[nodes["step"] == 0, "customers"].sum() == 5
            for r in nodes.itertuples():
                incoming = links[(links["step"] == r.step - 1) & (links["target"] == r.node)]["customers"].sum()
                outgoing = links[(links["step"] == r.step) & (links["node"] == r.node)]["customers"].sum()
                if r.step > 0:
                    assert incoming == r.customers
                if r.node_kind == "stage" and r.step < 3:
                    assert outgoing == r.customers
            assert va["customers"].sum() == 5
            assert va["share"].sum() == pytest.approx(1.0)
    for a, b in zip(results[0], results[1], strict=True):
        pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True))


# -- the synthetic world ---------------------------------------------------------------------------
def test_funnel_ci_contains_the_planted_setup_rate(demo_store: Path, demo_world: Path) -> None:
    """The experiment's realised rate of setup within 14 days (all arms) is inside the funnel's Wilson CI."""
    truth = json.loads((demo_world / "truth.json").read_text())["planted"]["experiment"]
    arms = truth["realised"]["arms"].values()
    n, k = sum(a["n"] for a in arms), sum(a["setup_within_14d"] for a in arms)
    d = JourneyDefinition.from_dict(
        {"name": "setup", "stages": [{"name": "Signed up", "rule": "signup"}, {"name": "Setup in 14 days", "rule": {"event": "setup_completed", "within_days": 14}}],
         "conventions": {"drop_after_days": 14}}
    )
    with Store(demo_store, read_only=True) as s:
        f = funnel_data(s, definition=d, signup_from=truth["parameters"]["enrolment_from"], signup_to=truth["parameters"]["enrolment_to"])
    row = f.iloc[1]
    assert row["eligible"] == n  # every customer who signed up in the enrolment period, none censored
    assert row["censored"] == 0
    assert row["ci_low"] <= k / n <= row["ci_high"]
    assert row["conversion_rate"] == pytest.approx(k / n)


def test_journeys_on_the_demo_world(demo_store: Path) -> None:
    definition = JourneyDefinition.load("parameters/journeys/saas.yaml")
    with Store(demo_store, read_only=True) as s:
        n = s.count("customers")
        tr = stage_transitions_data(s, definition=definition)
        assert tr.loc[tr["from_node"] == START, "customers"].sum() == n
        conf = conformance_data(s, definition=definition)
        assert 0 < conf.iloc[0]["rate"] < 1
        var = variants_data(s, definition=definition, segment="Mid-market")
        assert var["segment"].unique().tolist() == ["Mid-market"]


# -- free-order milestones: paying does not wait for set-up ------------------------------------------
#   a: setup day 2, paid day 5        b: paid day 3, never set up      c: setup day 4, never paid (trial ends day 14)
#   d: nothing (trial ends day 14)    h: paid day 3, setup day 8 (Converted before Setup)
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
FREE_CUSTOMERS = [
    {"customer_id": c, "segment": "SMB", "plan": "pro", "signup_at": day(0), "properties": json.dumps({"trial_ends_at": day(14).isoformat()})}
    for c in "abcdh"
]
FREE_EVENTS = [
    ("a", 2, "setup", None), ("a", 5, "paid", None), ("b", 3, "paid", None), ("c", 4, "setup", None),
    ("h", 3, "paid", None), ("h", 8, "setup", None),
]


@pytest.fixture
def free_store() -> Store:
    s = make_store(FREE_CUSTOMERS, FREE_EVENTS)
    yield s
    s.close()


def test_free_order_transitions_hand_computed(free_store: Store) -> None:
    tr = stage_transitions_data(free_store, definition=FREE_DEF, as_of=AS_OF, basis="entered")
    got = {(r.from_node, r.to_node): (r.customers, r.kind) for r in tr.itertuples()}
    assert got == {
        (START, "Trial"): (5, "start"),
        ("Trial", "Setup"): (2, "forward"),  # a, c
        ("Trial", "Converted"): (2, "free"),  # b and h paid without (or before) setting up
        ("Setup", "Converted"): (1, "free"),  # a
        ("Converted", "Setup"): (1, "free"),  # h
        ("Trial", DROPPED): (1, "end"),  # d: the trial ended unpaid
        ("Setup", DROPPED): (1, "end"),  # c: the trial ended unpaid
        ("Setup", STILL_ACTIVE): (1, "end"),  # h
        ("Converted", STILL_ACTIVE): (2, "end"),  # a, b
    }
    # customers are conserved: each leaves start once and reaches one end node
    ends = tr[tr["kind"] == "end"]["customers"].sum()
    assert ends == 5


def test_free_order_variants_and_conformance(free_store: Store) -> None:
    paths = customer_paths_data(free_store, definition=FREE_DEF, as_of=AS_OF).set_index("customer_id")
    # paying before or without set-up is not a skip or a reorder: Converted has no place in the order
    assert paths["skipped"].tolist() == [""] * 5
    assert paths["reordered"].tolist() == [""] * 5
    assert paths.loc["b", "path"] == "Trial → Converted"
    assert paths.loc["h", "path"] == "Trial → Converted → Setup"
    assert paths["end_node"].to_dict() == {"a": STILL_ACTIVE, "b": STILL_ACTIVE, "c": DROPPED, "d": DROPPED, "h": STILL_ACTIVE}
    v = variants_data(free_store, definition=FREE_DEF, as_of=AS_OF).set_index("variant")
    assert v["follows_happy_path"].to_dict() == {
        "Trial → Converted": True, "Trial": True, "Trial → Converted → Setup": True, "Trial → Setup": True,
        "Trial → Setup → Converted": True,
    }
    assert v.loc["Trial → Converted", "customers"] == 1
    conf = conformance_data(free_store, definition=FREE_DEF, as_of=AS_OF)
    rows = {(r.stage, r.kind): (r.customers, r.eligible) for r in conf.itertuples()}
    assert rows[("(whole path)", "followed")] == (5, 5)
    assert ("Converted", "skipped") not in rows
    assert ("Converted", "reordered") not in rows
    assert rows[("Converted", "looped")][1] == 3  # eligible: the customers who entered Converted (a, b, h)
    assert rows[("Setup", "skipped")] == (0, 0)  # no ordered stage after Setup: nothing to skip it for
    assert stage_map_data(FREE_DEF)["order"].tolist() == ["after_previous", "after_previous", "any"]


def test_free_order_was_forced_into_order_before() -> None:
    # the same timelines with the stage ordered: b never converts, h converts only when it sets up
    ordered = FREE_DEF.model_copy(update={"stages": [*FREE_DEF.stages[:2], FREE_DEF.stages[2].model_copy(update={"order": "after_previous"})]})
    with make_store(FREE_CUSTOMERS, FREE_EVENTS) as s:
        free = funnel_data(s, definition=FREE_DEF, as_of=AS_OF).set_index("stage")
        forced = funnel_data(s, definition=ordered, as_of=AS_OF).set_index("stage")
    assert free.loc["Converted", "reached"] == 3  # a, b, h: every customer who paid
    assert forced.loc["Converted", "reached"] == 2  # a, h
