"""Friction points: the statistics, the score rule, hand-made data with a known answer, and the planted point."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _builders import day, journey_definition, memory_store

from journeylib.config.journey import JourneyDefinition
from journeylib.datasets import load_ticket_labels
from journeylib.journey.friction import EVIDENCE, MAX_CONTRIBUTION, friction_data, friction_tests_data
from journeylib.scope import Scope
from journeylib.stats import clustered_rate_ratio
from journeylib.store import Store

CAUSAL = re.compile(r"\b(because|causes?|caused|due to|leads? to|drives?|results? in)\b", re.IGNORECASE)

DEF = journey_definition({"Trial": "signup", "Setup": {"event": "setup"}, "Value": {"event": "project"}}, name="two steps")


def _world() -> tuple[list[dict], list[dict], list[dict]]:
    """Segment A: slow setup (10 days) and 3 tickets each in Trial; segment B: setup in 2 days, a ticket for every third."""
    customers, events, tickets = [], [], []
    for seg, setup_day, tickets_each in (("A", 10.0, 3), ("B", 2.0, None)):
        for i in range(30):
            cid = f"{seg}{i:02d}"
            customers.append({"customer_id": cid, "segment": seg, "signup_at": day(0)})
            jitter = 0.1 * i
            events.append({"event_id": f"{cid}-s", "customer_id": cid, "timestamp": day(setup_day + jitter), "event": "setup"})
            events.append({"event_id": f"{cid}-p", "customer_id": cid, "timestamp": day(setup_day + jitter + 3), "event": "project"})
            n_t = tickets_each if tickets_each is not None else int(i % 3 == 0)
            for k in range(n_t):
                tickets.append({"ticket_id": f"{cid}-t{k}", "customer_id": cid, "created_at": day(1 + k)})
    return customers, events, tickets


@pytest.fixture(scope="module")
def store() -> Iterator[Store]:
    customers, events, tickets = _world()
    s = memory_store(customers=customers, events=events, tickets=tickets)
    yield s
    s.close()


AS_OF = day(60)


def test_rate_ratio_matches_the_closed_form() -> None:
    # group: 3 customers, 2 + 4 + 0 tickets over 1 + 2 + 1 weeks; rest: 2 customers, 1 + 1 over 2 + 2 weeks
    y = np.array([2, 4, 0, 1, 1], dtype=float)
    w = np.array([1, 2, 1, 2, 2], dtype=float)
    g = np.array([1, 1, 1, 0, 0], dtype=bool)
    r = clustered_rate_ratio(y, w, g, np.arange(5), alpha=0.05)
    rg, rp = 6 / 4, 2 / 4
    assert r.value == pytest.approx(rg)
    assert r.reference == pytest.approx(rp)
    assert r.ratio == pytest.approx(3.0)
    # cluster-robust variance of log(rg/rp): sum of squared influences
    var = np.sum((y[g] - rg * w[g]) ** 2) / 6**2 + np.sum((y[~g] - rp * w[~g]) ** 2) / 2**2
    z = 1.959963984540054
    assert r.ci_low == pytest.approx(3.0 * np.exp(-z * np.sqrt(var)))
    assert r.ci_high == pytest.approx(3.0 * np.exp(z * np.sqrt(var)))
    # with no events on one side, the exact conditional test is used
    zero = clustered_rate_ratio(np.array([3.0, 0.0]), np.array([1.0, 1.0]), np.array([True, False]), np.arange(2), alpha=0.05)
    assert zero.p == pytest.approx(0.125)  # P(3 of 3 in the group | p = 1/2)
    assert np.isinf(zero.ratio)


def test_known_answer_on_hand_made_data(store: Store) -> None:
    tests = friction_tests_data(store, definition=DEF, as_of=AS_OF, n_boot=200)
    a = tests[(tests["group"] == "A") & (tests["stage"] == "Trial")].iloc[0]
    assert a["rank"] == 1
    assert a["next_stage"] == "Setup"
    # time in Trial: A 10 + 0.1 i days, B 2 + 0.1 i: medians 11.45 and 3.45
    assert a["time_value"] == pytest.approx(11.45)
    assert a["time_reference"] == pytest.approx(3.45)
    assert a["time_ratio"] == pytest.approx(11.45 / 3.45)
    assert a["time_ci_low"] <= a["time_ratio"] <= a["time_ci_high"]
    # tickets per customer-week in Trial: A 90 over sum(10 + 0.1 i)/7 weeks; B 10 over sum(2 + 0.1 i)/7
    weeks_a = sum(10 + 0.1 * i for i in range(30)) / 7
    weeks_b = sum(2 + 0.1 * i for i in range(30)) / 7
    assert a["tickets_value"] == pytest.approx(90 / weeks_a)
    assert a["tickets_reference"] == pytest.approx(10 / weeks_b)
    assert a["tickets_total"] == 90
    assert a["customer_weeks"] == pytest.approx(weeks_a)
    assert a["time_q"] < 0.05
    assert a["score"] > 0
    assert "Trial → Setup" in a["statement"]
    b = tests[tests["group"] == "B"]
    # B is faster and raises fewer tickets than its peers (A): nothing vs peers ...
    assert (b[["time_score", "tickets_score", "dropoff_score", "step_score"]] == 0).all().all()
    # ... but all of its tickets are raised in Trial, none in its other stages: that is friction vs its own baseline
    b_trial = b[b["stage"] == "Trial"].iloc[0]
    assert b_trial["tickets_baseline_score"] == MAX_CONTRIBUTION
    assert b_trial["score"] < a["score"]
    points = friction_data(store, definition=DEF, as_of=AS_OF, segment="A", n_boot=200)
    assert points["group"].unique().tolist() == ["A"]
    assert points.iloc[0]["stage"] == "Trial"
    assert friction_data(store, definition=DEF, as_of=AS_OF, segment="B", n_boot=200)["stage"].tolist() == ["Trial"]


def test_score_rule_and_benjamini_hochberg(store: Store) -> None:
    tests = friction_tests_data(store, definition=DEF, as_of=AS_OF, n_boot=200)
    expected = np.zeros(len(tests))
    for name in EVIDENCE:
        ratio = tests[f"{name}_ratio"].to_numpy(dtype=float)
        q = tests[f"{name}_q"].to_numpy(dtype=float)
        ok = (q <= 0.05) & (ratio > 1)
        expected += np.where(ok, np.minimum(np.log2(np.where(ok, ratio, 1.0)), MAX_CONTRIBUTION), 0.0)
        p = tests[f"{name}_p"].to_numpy(dtype=float)
        tested = np.isfinite(p)
        assert (q[tested] >= p[tested] - 1e-12).all()  # adjusted p-values are never smaller
        assert np.isnan(q[~tested]).all()
    assert tests["score"].to_numpy() == pytest.approx(expected)
    assert (tests["tests"] == tests["tests"].iloc[0]).all()
    ranks = tests.sort_values(["group", "rank"]).groupby("group")["score"].apply(lambda s: s.is_monotonic_decreasing)
    assert ranks.all()


def test_sentiment_evidence(store: Store) -> None:
    tickets = store.query("SELECT ticket_id, customer_id FROM tickets")
    sentiment = pd.DataFrame(
        {"ticket_id": tickets["ticket_id"], "label": np.where(tickets["customer_id"].str.startswith("A"), "negative", "positive")}
    )
    tests = friction_tests_data(store, definition=DEF, as_of=AS_OF, ticket_sentiment=sentiment, n_boot=200)
    a = tests[(tests["group"] == "A") & (tests["stage"] == "Trial")].iloc[0]
    assert a["negative_value"] == pytest.approx(1.0)
    assert a["negative_reference"] == pytest.approx(0.0)
    assert a["negative_tickets"] == 90
    # compound only: <= -0.05 is negative
    by_score = sentiment.assign(compound=np.where(sentiment["label"] == "negative", -0.6, 0.4)).drop(columns="label")
    b = friction_tests_data(store, definition=DEF, as_of=AS_OF, ticket_sentiment=by_score, n_boot=200)
    assert b.loc[(b["group"] == "A") & (b["stage"] == "Trial"), "negative_value"].iloc[0] == pytest.approx(1.0)
    # journeylib.voice.sentiment.score_tickets' columns: polarity, and scored=False rows left out of the denominator
    polar = sentiment.rename(columns={"label": "polarity"}).assign(scored=~tickets["ticket_id"].eq("A00-t0"))
    c = friction_tests_data(store, definition=DEF, as_of=AS_OF, ticket_sentiment=polar, n_boot=200)
    assert c.loc[(c["group"] == "A") & (c["stage"] == "Trial"), "negative_tickets"].iloc[0] == 89
    with pytest.raises(ValueError, match="ticket_sentiment must have a ticket_id column"):
        friction_tests_data(store, definition=DEF, as_of=AS_OF, ticket_sentiment=pd.DataFrame({"id": [1]}))


def test_errors(store: Store) -> None:
    with pytest.raises(ValueError, match="segment 'C' matches no customer; known values: A, B"):
        friction_data(store, definition=DEF, segment="C")
    with pytest.raises(ValueError, match="top_n must be at least 1"):
        friction_data(store, definition=DEF, top_n=0)


def test_planted_friction_point_is_first_for_mid_market(demo_store: Path, demo_world: Path) -> None:
    """truth.json: Mid-market customers take ~3x longer to set up and raise ~3x more setup tickets."""
    truth = json.loads((demo_world / "truth.json").read_text())["planted"]["friction_point"]
    definition = JourneyDefinition.load("parameters/journeys/saas.yaml")
    labels = load_ticket_labels(demo_world)
    sentiment = pd.DataFrame({"ticket_id": labels["ticket_id"], "label": np.where(labels["tone"] == "frustrated", "negative", "neutral")})
    with Store(demo_store, read_only=True) as s:
        points = friction_data(s, definition=definition, segment=truth["parameters"]["segment"])
        with_sentiment = friction_data(s, definition=definition, segment="Mid-market", ticket_sentiment=sentiment)
        everyone = friction_tests_data(s, definition=definition)
    first = points.iloc[0]
    assert (first["group"], first["rank"], first["stage"], first["next_stage"]) == ("Mid-market", 1, "Trial Started", "Onboarding Completed")
    assert first["tickets_ratio"] > 2  # planted: 3x the setup tickets of the other segments
    assert first["tickets_q"] <= 0.05
    assert with_sentiment.iloc[0]["stage"] == "Trial Started"
    assert with_sentiment.iloc[0]["negative_score"] > 0  # planted: mostly frustrated
    assert with_sentiment.iloc[0]["score"] > first["score"]
    # the point is Mid-market's: the other segments' Trial Started raise no more tickets than their peers
    others = everyone[(everyone["stage"] == "Trial Started") & everyone["group"].isin(["SMB", "Enterprise"])]
    assert (others["tickets_score"] == 0).all()
    with Store(demo_store, read_only=True) as s:
        ranked = friction_data(s, definition=definition)
    assert (ranked.iloc[0]["group"], ranked.iloc[0]["stage"]) == ("Mid-market", "Trial Started")  # first of the whole list
    for statement in everyone["statement"]:
        assert not CAUSAL.search(statement), statement
    assert re.search(r"Mid-market customers, Trial Started → Onboarding Completed \(score \d+\.\d\): ", first["statement"])


def test_time_in_stage_kaplan_meier_counts_those_who_never_progressed() -> None:
    """Segment C: 10 customers set up in 2 days, 20 never do (still in Trial at as_of); segment D: all 30 in 4 days.

    The completers' median says C is faster (2 vs 4 days); counting the 20 who never progressed as censored,
    C's Kaplan–Meier median is not reached, so more than half of C are estimated to take longer than D's 4 days.
    """
    from lifelines import KaplanMeierFitter

    customers, events = [], []
    for seg, n_done, setup_day in (("C", 10, 2.0), ("D", 30, 4.0)):
        for i in range(30):
            cid = f"{seg}{i:02d}"
            customers.append({"customer_id": cid, "segment": seg, "signup_at": day(0)})
            events.append({"event_id": f"{cid}-l", "customer_id": cid, "timestamp": day(0.5), "event": "login"})
            if i < n_done:
                events.append({"event_id": f"{cid}-s", "customer_id": cid, "timestamp": day(setup_day + 0.01 * i), "event": "setup"})
    with memory_store(customers=customers, events=events) as s:
        tests = friction_tests_data(s, definition=DEF, as_of=AS_OF, n_boot=100, min_customers=5)
    trial = tests[tests["stage"] == "Trial"].set_index("group")
    c = trial.loc["C"]
    assert c["time_value"] == pytest.approx(2.0 + 0.01 * 4.5)  # completers only
    assert (c["time_completers"], c["time_censored"]) == (10, 20)
    assert np.isinf(c["time_km_value"])
    assert np.isinf(c["median_days_km"])
    assert c["time_km_reference"] == pytest.approx(4.0 + 0.01 * 14)  # D: everyone progressed; KM median = 15th time
    assert c["time_km_ratio"] == np.inf
    # the whole population: KM median by lifelines with the 20 censored at as_of (60 days)
    days = np.array([2.0 + 0.01 * i for i in range(10)] + [60.0] * 20 + [4.0 + 0.01 * i for i in range(30)])
    done = np.array([True] * 10 + [False] * 20 + [True] * 30)
    kmf = KaplanMeierFitter().fit(days, done)
    everyone = trial.loc["all"]
    assert everyone["time_km_value"] == pytest.approx(kmf.median_survival_time_)
    assert everyone["time_km_ci_low"] <= everyone["time_km_value"] <= everyone["time_km_ci_high"]
    assert (everyone["time_completers"], everyone["time_censored"]) == (40, 20)
    assert np.isnan(everyone["time_km_reference"])


# -- the exit rules' conditions: one frame for the conditions of signup ---------------------------
def _mixed_definition() -> JourneyDefinition:
    """saas.yaml with every kind of exit rule friction times condition by condition.

    First Value Achieved is free-order, its any-of repeats a condition of Onboarding Completed (window
    of signup), twice; Routine Usage Established mixes a condition of the previous stage with one of
    signup; a drop outcome spares customers who reached the last stage (a stage the conditions' frames
    do not have).
    """
    import yaml

    spec = yaml.safe_load((Path(__file__).resolve().parents[1] / "parameters" / "journeys" / "saas.yaml").read_text())
    stages = spec["stages"]
    stages[2]["order"] = "any"
    stages[2]["rule"] = {"any": [{"event": "project_created", "min_count": 2}, {"event": "setup_completed", "within_days": 30},
                                 {"event": "integration_connected"}, {"event": "setup_completed", "within_days": 30}]}
    stages[3]["rule"] = {"all": [{"event": "login", "min_count": 10, "within_days": 30, "of": "previous_stage"},
                                 {"event": "feature_used", "min_count": 3, "where": {"feature": "gantt"}}]}
    spec["outcomes"]["cancelled"] = {"event": "subscription_cancelled", "kind": "drop", "unless_stage": "Renewal"}
    return JourneyDefinition.from_dict(spec)


def _one_frame_per_condition(store: Store, definition: JourneyDefinition, scope: Scope, k: int) -> dict[str, pd.Series]:
    """Days from entering stage k to each condition of stage k+1, each condition after stages 0..k in a frame of its own."""
    from journeylib.config.journey import Stage
    from journeylib.journey.friction import _leaf_label, _leaves
    from journeylib.journey.stages import stage_milestones

    leaves = _leaves(definition.stages[k + 1].rule)
    out: dict[str, pd.Series] = {}
    for cond in leaves if len(leaves) >= 2 else []:
        stages = [*definition.stages[: k + 1], Stage(name="__step__", rule=cond)]
        ms = stage_milestones(store, definition.model_copy(update={"stages": stages, "happy_path": None, "value_stage": None, "outcomes": {}}), scope)
        since = "signup_at" if definition.stages[k + 1].free_order else "entered_at"
        prev = ms[ms["stage_order"] == k].set_index("customer_id")[since]
        step = ms[ms["stage_order"] == k + 1].set_index("customer_id")["met_at"]
        days = ((step - prev.reindex(step.index)).dt.total_seconds() / 86400.0).clip(lower=0.0).dropna()
        label = _leaf_label(cond)
        out[label if label not in out else f"{label} ({len(out)})"] = days
    return out


def test_step_times_equal_one_frame_per_condition(demo_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The conditions of signup of every exit rule are timed in one milestone frame: the same days, to the bit, as a frame each."""
    from journeylib.journey.friction import _signup_step_times, _step_times
    from journeylib.journey.stages import TRACE_ENV, stage_frames

    definition = _mixed_definition()
    with Store(demo_store, read_only=True) as s:
        scope = Scope.build(s, function="test_friction")
        ms, _ = stage_frames(s, definition, scope)
        trace = tmp_path / "passes.jsonl"
        monkeypatch.setenv(TRACE_ENV, str(trace))
        signup_steps = _signup_step_times(s, definition, scope, None)
        got = {k: _step_times(s, definition, scope, k, ms, signup_steps, None) for k in range(len(definition.stages) - 1)}
        monkeypatch.delenv(TRACE_ENV)
        # one pass for the 7 distinct conditions of signup, one per condition of the previous stage (2)
        assert len(trace.read_text().splitlines()) == 3
        for k, steps in got.items():
            expected = _one_frame_per_condition(s, definition, scope, k)
            assert list(steps) == list(expected), k
            for label, days in expected.items():
                pd.testing.assert_series_equal(steps[label], days, check_exact=True)
    assert [len(got[k]) for k in sorted(got)] == [3, 4, 2, 2, 0]
    assert list(got[1]) == ["project created ×2", "setup completed", "integration connected", "setup completed (3)"]
    assert all(len(days) > 0 for steps in got.values() for days in steps.values())


def test_friction_with_a_drop_outcome_spared_by_a_later_stage(demo_store: Path) -> None:
    """A drop outcome's unless_stage names a stage after the exit rules: the conditions are still timed (they used to raise)."""
    with Store(demo_store, read_only=True) as s:
        tests = friction_tests_data(s, definition=_mixed_definition(), n_boot=50, min_customers=5)
    steps = tests[tests["step"] != ""]
    assert set(steps["stage"]) >= {"Trial Started", "First Value Achieved"}
    assert np.isfinite(steps["step_p"]).all()
