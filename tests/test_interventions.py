"""Recommended intervention points: hand-computed stalls, and on the demo world rows that cite numbers recomputed from their sources."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _builders import day, journey_definition

from journeylib.actions.interventions import ALL_SEGMENTS, INTERVENTION_COLUMNS, intervention_points_data
from journeylib.config.journey import JourneyDefinition
from journeylib.context import Journey
from journeylib.customers.experiments import experiment_effects_data, experiment_outcomes_data
from journeylib.customers.risk import backtest_data, lead_time_data
from journeylib.customers.snapshots import build_snapshots
from journeylib.exceptions import EmptyResultError, StatisticalWarning
from journeylib.journey.stages import stage_intervals_data
from journeylib.stats import bh_qvalues, median_interval, two_proportion_z_test, wilson_interval

SAAS = Path(__file__).resolve().parents[1] / "parameters" / "journeys" / "saas.yaml"
THREE = journey_definition({"A": "signup", "B": {"event": "b"}, "C": {"event": "c"}}, segment_field="segment")
CAUSAL = re.compile(r"\b(because|caused?|causes|due to|leads? to|drives|results? in|raised|cut)\b", re.IGNORECASE)


def _iv(rows: list[tuple[str, int, float, str]]) -> pd.DataFrame:
    """Intervals from ``(customer_id, stage_order, days_in_stage, status)``, segment S, signup day 0, stage entered on day 2·order."""
    names = THREE.stage_names
    return pd.DataFrame([
        {"customer_id": c, "stage": names[k], "stage_order": k, "entered_at": day(2 * k), "exited_at": pd.NaT, "days_in_stage": d,
         "status": s, "segment": "S", "plan": "p", "signup_at": day(0)}
        for c, k, d, s in rows
    ])


def _hand_world() -> pd.DataFrame:
    # stage A (order 0): 20 progressed after 1..20 days, 20 dropped after 30 days, 5 still in it (censored)
    # stage B (order 1): 20 progressed after 1..20 days, 4 dropped, 3 still in it
    rows = [(f"a{i}", 0, float(i), "progressed") for i in range(1, 21)]
    rows += [(f"d{i}", 0, 30.0, "dropped") for i in range(20)]
    rows += [(f"w{i}", 0, 3.0, "in_progress") for i in range(5)]
    rows += [(f"a{i}", 1, float(i), "progressed") for i in range(1, 21)]
    rows += [(f"a{i}", 1, 30.0, "dropped") for i in range(21, 25)]
    rows += [(f"x{i}", 1, 3.0, "in_progress") for i in range(3)]
    return _iv(rows)


def test_hand_computed_stall_point() -> None:
    out = intervention_points_data(_hand_world(), definition=THREE, min_customers=20)
    stall = out[(out["source"] == "stall") & (out["segment"] == "S")].iloc[0]
    # A: 20 stalls of 40 known (the 5 in progress are censored, not stalls); B: 4 of 24
    assert (stall["stage"], stall["numerator"], stall["denominator"]) == ("A", 20, 40)
    assert (stall["reference_numerator"], stall["reference_denominator"]) == (4, 24)
    assert stall["value"] == pytest.approx(0.5)
    assert stall["reference"] == pytest.approx(4 / 24)
    # two tests in segment S and the same two in "all"; the two-sided test is symmetric, so four equal p-values and q = p
    p = two_proportion_z_test(20, 40, 4, 24)[1]
    assert stall["p_value"] == pytest.approx(p)
    assert stall["q_value"] == pytest.approx(float(bh_qvalues([p, two_proportion_z_test(4, 24, 20, 40)[1]] * 2)[0]))
    lo, hi = wilson_interval(np.array([20]), np.array([40]))
    assert (stall["ci_low"], stall["ci_high"]) == pytest.approx((lo[0], hi[0]))
    # day: 75th percentile of 1..20 (numpy linear) = 15.25; after it, known outcomes in A: 16..20 progressed (5) + 20 dropped
    assert stall["day_in_stage"] == pytest.approx(15.25)
    assert stall["day_since_signup"] == pytest.approx(15.25)  # stage A entered on the signup day
    assert (stall["stage_customers"], stall["stage_base"]) == (20, 25)
    assert "5 customers still in the stage (censored" in stall["note"]
    assert "20 of 40" in stall["text"]
    assert "4 of 24" in stall["text"]
    assert not stall["causal"]
    assert list(out.columns) == list(INTERVENTION_COLUMNS)
    assert "risk: no lead-time table given; no risk points" in out.attrs["notes"]


def test_no_stall_without_a_significant_rise_raises_with_the_reason() -> None:
    # both stages stall at the same share: nothing is a stall point, and no other source was given
    rows = [(f"a{i}", 0, float(i), "progressed" if i % 2 else "dropped") for i in range(1, 41)]
    rows += [(f"a{i}", 1, float(i), "progressed" if i % 2 else "dropped") for i in range(1, 41)]
    with pytest.raises(EmptyResultError, match="no stage's stall share is above"):
        intervention_points_data(_iv(rows), definition=THREE, min_customers=20)


def test_argument_errors() -> None:
    iv = _hand_world()
    with pytest.raises(ValueError, match=r"alpha must be strictly between 0 and 1; got 1\.5"):
        intervention_points_data(iv, definition=THREE, alpha=1.5)
    with pytest.raises(ValueError, match="lead was given without snapshots"):
        intervention_points_data(iv, definition=THREE, lead=pd.DataFrame())
    with pytest.raises(ValueError, match=r"lacks columns \['status'\]"):
        intervention_points_data(iv.drop(columns="status"), definition=THREE)


# -- the demo world -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def demo_points(demo_store: Path) -> dict[str, object]:
    with Journey.open(demo_store, definition=SAAS) as j, warnings.catch_warnings():
        warnings.simplefilter("ignore", StatisticalWarning)
        iv = j.run(stage_intervals_data)
        snaps = j.run(build_snapshots, horizon_days=60, every_days=7)
        lead = lead_time_data(backtest_data(snaps, n_boot=20), alert_share=0.1)
        points = intervention_points_data(iv, definition=j.definition, lead=lead, snapshots=snaps.data)
    return {"iv": iv, "snaps": snaps, "lead": lead, "points": points, "names": j.definition.stage_names}


def test_demo_stall_rows_cite_the_stage_intervals(demo_points: dict) -> None:
    iv, points, names = demo_points["iv"], demo_points["points"], demo_points["names"]
    stall = points[points["source"] == "stall"]
    assert len(stall) >= 2
    assert ALL_SEGMENTS in set(stall["segment"])
    iv = iv[iv["stage_order"] < len(names) - 1]
    for r in stall.to_dict("records"):
        g = iv if r["segment"] == ALL_SEGMENTS else iv[iv["segment"] == r["segment"]]
        known = g[g["status"].isin(["progressed", "dropped", "churned"])]
        here = known[known["stage_order"] == r["stage_order"]]
        other = known[known["stage_order"] != r["stage_order"]]
        stalled = int(here["status"].isin(["dropped", "churned"]).sum())
        other_stalled = int(other["status"].isin(["dropped", "churned"]).sum())
        assert (r["numerator"], r["denominator"]) == (stalled, len(here))
        assert (r["reference_numerator"], r["reference_denominator"]) == (other_stalled, len(other))
        assert r["p_value"] == pytest.approx(two_proportion_z_test(stalled, len(here), other_stalled, len(other))[1])
        assert r["value"] > r["reference"]
        assert r["q_value"] <= 0.05
        done = g[(g["stage_order"] == r["stage_order"]) & (g["status"] == "progressed")]["days_in_stage"]
        if len(done) >= 20:
            assert r["day_in_stage"] == pytest.approx(float(np.quantile(done, 0.75)))
        assert f"{stalled} of {len(here)}" in r["text"]
        assert r["stage"] in r["text"]
        assert not r["causal"]
        assert not CAUSAL.search(r["text"])


def test_demo_risk_rows_cite_the_lead_time_analysis(demo_points: dict) -> None:
    lead, snaps, points = demo_points["lead"], demo_points["snaps"].data, demo_points["points"]
    risk = points[points["source"] == "risk"]
    assert ALL_SEGMENTS in set(risk["segment"])
    first = snaps.sort_values("as_of").drop_duplicates("customer_id").set_index("customer_id")["segment"].astype(str)
    at_alert = lead[lead["alerted"]].merge(
        snaps[["customer_id", "as_of", "stage", "days_in_stage"]].rename(columns={"as_of": "alert_as_of"}), on=["customer_id", "alert_as_of"]
    )
    for r in risk.to_dict("records"):
        everyone = r["segment"] == ALL_SEGMENTS
        churners = lead if everyone else lead[lead["customer_id"].map(first) == r["segment"]]
        alerted = at_alert if everyone else at_alert[at_alert["customer_id"].map(first) == r["segment"]]
        here = alerted[alerted["stage"].astype(str) == r["stage"]]
        assert (r["reference_numerator"], r["reference_denominator"]) == (len(alerted), len(churners))
        assert (r["numerator"], r["denominator"]) == (len(here), len(alerted))
        assert len(here) == alerted["stage"].astype(str).value_counts().max()  # the most common stage at the first alert
        assert r["day_in_stage"] == pytest.approx(median_interval(here["days_in_stage"])[0])
        assert (r["lead_days"], r["lead_ci_low"], r["lead_ci_high"]) == pytest.approx(median_interval(here["lead_days"]))
        assert f"{len(here)} of {len(alerted)} alerted churners" in r["text"]
        assert not r["causal"]
        assert not CAUSAL.search(r["text"])


def test_demo_experiment_row_cites_the_read_out(demo_world: Path, demo_store: Path) -> None:
    # the planted nudge acts on setup; at 200 customers its uplift has p ≈ 0.26, so the row is read at alpha = 0.3
    definition = journey_definition({"Trial": "signup", "Set up": {"event": "setup_completed"}}, outcomes=["churn"], segment_field="segment")
    with Journey.open(demo_store, definition=definition) as j:
        iv = j.run(stage_intervals_data)
        effects = j.run(experiment_effects_data, stage="Set up", within_days=14)
        outcomes = j.run(experiment_outcomes_data, stage="Set up", within_days=14)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StatisticalWarning)
        points = intervention_points_data(iv, definition=definition, experiment_effects=effects, experiment_outcomes=outcomes, alpha=0.3)
    exp = points[points["source"] == "experiment"]
    shown = effects[(effects["p_value"] < 0.3) & np.where(effects["metric"] == "churn", effects["difference"] < 0, effects["difference"] > 0)]
    assert len(exp) == len(shown) >= 1
    for r in exp.to_dict("records"):
        e = shown[(shown["variant"] == r["variant"]) & (shown["metric"] == r["measure"].split()[0])].iloc[0]
        assert (r["numerator"], r["denominator"]) == (e["events_variant"], e["n_variant"])
        assert (r["reference_numerator"], r["reference_denominator"]) == (e["events_control"], e["n_control"])
        assert (r["difference"], r["difference_ci_low"], r["difference_ci_high"]) == pytest.approx((e["difference"], e["ci_low"], e["ci_high"]))
        assert r["causal"]
        assert r["segment"] == ALL_SEGMENTS
        # assigned at signup: the stage at assignment is the first one, on day 0
        assert r["stage"] == "Trial"
        assert r["day_since_signup"] == pytest.approx(0, abs=1)
        assert f"{e['events_variant']} of {e['n_variant']}" in r["text"]
    assert set(exp["variant"]) == set(shown["variant"])


def test_rows_do_not_depend_on_row_order(demo_points: dict) -> None:
    iv = demo_points["iv"]
    shuffled = iv.sample(frac=1.0, random_state=3).reset_index(drop=True)
    definition = JourneyDefinition.load(SAAS)
    a = intervention_points_data(iv, definition=definition)
    b = intervention_points_data(shuffled, definition=definition)
    pd.testing.assert_frame_equal(a, b)


# -- charts ---------------------------------------------------------------------------------------------------
def test_intervention_points_chart_encodes_the_rows(demo_points: dict) -> None:
    from journeylib.charts.actions import intervention_points_chart

    spec = intervention_points_chart(demo_points["points"]).to_dict()
    assert spec["encoding"]["x"]["field"] == "day_since_signup"
    assert spec["encoding"]["color"]["field"] == "source"
    assert len(next(iter(spec["datasets"].values()))) == len(demo_points["points"])
    with pytest.raises(ValueError, match="day_since_signup"):
        intervention_points_chart(demo_points["points"].drop(columns="day_since_signup"))


def test_experiment_and_backtest_charts_encode_intervals() -> None:
    from journeylib.charts.actions import experiment_effects_chart, rule_backtest_chart

    e = pd.DataFrame({"experiment": ["x"], "variant": ["b"], "metric": ["progression"], "n_control": [40], "n_variant": [38],
                      "rate_control": [0.6], "rate_variant": [0.7], "difference": [0.1], "ci_low": [-0.1], "ci_high": [0.3],
                      "p_value": [0.3], "srm_p_value": [0.9], "mde": [0.3], "verdict": ["No detectable effect."]})
    layers = experiment_effects_chart(e).to_dict()["layer"]
    assert (layers[0]["encoding"]["x"]["field"], layers[0]["encoding"]["x2"]["field"]) == ("ci_low", "ci_high")
    with pytest.raises(ValueError, match="verdict"):
        experiment_effects_chart(e.drop(columns="verdict"))
    s = pd.DataFrame({"rule": ["quiet"], "alerts": [40], "labelled_alerts": [36], "true_alerts": [12], "precision": [1 / 3],
                      "precision_ci_low": [0.2], "precision_ci_high": [0.5], "base_rate": [0.05], "lift": [6.7], "churners": [30],
                      "churners_caught": [12], "recall": [0.4], "lead_days_median": [21.0]})
    layers = rule_backtest_chart(s).to_dict()["layer"]
    assert [layer["mark"]["type"] for layer in layers] == ["rule", "point", "tick"]
