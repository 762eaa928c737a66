"""Intervention experiments: the read-out against the planted experiment, SRM, MDE, CUPED, segments and assignment."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from _builders import day, journey_definition, memory_store
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import proportion_effectsize

from journeylib.customers.experiments import (
    assign_variants,
    experiment_effects_data,
    experiment_outcomes_data,
    experiment_segment_effects_data,
    minimum_detectable_effect,
    sample_ratio_test,
)
from journeylib.datasets import load_truth
from journeylib.exceptions import EmptyResultError
from journeylib.stats import bh_qvalues, newcombe_difference_interval, two_proportion_z_test
from journeylib.store import Store

DEFINITION = journey_definition({"Trial": "signup", "Set up": {"event": "setup_completed"}}, outcomes=["churn"], segment_field="segment")
ALLOC = json.dumps({"allocation": {"control": 0.5, "nudge": 0.5}})


def _world(arms: list[tuple[str, str, float | None, float | None, str]], *, pre: dict[str, int] | None = None) -> Store:
    """A store from ``(customer_id, variant, setup_day, churn_day, segment)``: signup day 0, assignment day 1, as_of day 60."""
    customers = [
        {"customer_id": c, "segment": seg, "signup_at": day(0), "churned_at": None if ch is None else day(ch)}
        for c, _, _, ch, seg in arms
    ]
    events = [{"event_id": f"s{c}", "customer_id": c, "timestamp": day(s), "event": "setup_completed", "source": "product"}
              for c, _, s, _, _ in arms if s is not None]
    for c, k in (pre or {}).items():  # activity in the pre-period (before day 1)
        events += [{"event_id": f"p{c}-{i}", "customer_id": c, "timestamp": day(0.5), "event": "login", "source": "product"}
                   for i in range(k)]
    events += [{"event_id": "last", "customer_id": arms[0][0], "timestamp": day(60), "event": "login", "source": "product"}]
    assignments = [
        {"assignment_id": f"{c}:exp", "customer_id": c, "experiment": "exp", "variant": v, "assigned_at": day(1), "properties": ALLOC}
        for c, v, _, _, _ in arms
    ]
    return memory_store(customers=customers, events=events, assignments=assignments)


# -- a hand-computed read-out -------------------------------------------------------------------------------------
def test_hand_computed_read_out_with_exclusions() -> None:
    # control: c0..c9, setup on day 3 for c0..c3 (4/10); c9 set up before assignment (day 0.5) -> left out => 4/9
    # nudge: n0..n9, setup on day 3 for n0..n6 (7/10); n9 sets up on day 20: outside the 7-day window, not progressed
    arms = [(f"c{i}", "control", 3.0 if i < 4 else (0.5 if i == 9 else None), None, "A") for i in range(10)]
    arms += [(f"n{i}", "nudge", 3.0 if i < 7 else (20.0 if i == 9 else None), None, "A") for i in range(10)]
    with _world(arms) as store:
        out = experiment_effects_data(store, definition=DEFINITION, stage="Set up", within_days=7, as_of=day(60), min_customers=5)
        per = experiment_outcomes_data(store, definition=DEFINITION, stage="Set up", within_days=7, as_of=day(60))
    row = out.set_index("metric").loc["progression"]
    assert (row["n_control"], row["events_control"], row["n_variant"], row["events_variant"]) == (9, 4, 10, 7)
    assert row["rate_control"] == pytest.approx(4 / 9)
    assert row["difference"] == pytest.approx(0.7 - 4 / 9)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx(newcombe_difference_interval(7, 10, 4, 9))
    assert row["p_value"] == pytest.approx(two_proportion_z_test(7, 10, 4, 9)[1])
    assert row["excluded_before"] == 1
    assert row["excluded_censored"] == 0
    assert row["srm_p_value"] == pytest.approx(1.0)  # 10 / 10 against 50/50
    assert row["verdict"].startswith("No detectable effect of nudge on the share reaching Set up within 7 days")
    assert per.set_index("customer_id").loc["c9", "progression_status"] == "before_assignment"
    assert per.set_index("customer_id").loc["n9", "progression_status"] == "not_progressed"


def test_censored_customers_are_not_failures() -> None:
    # as_of day 5: a 7-day window from day 1 is not complete, so nobody is counted as not progressed
    arms = [(f"c{i}", "control", None, None, "A") for i in range(3)] + [(f"n{i}", "nudge", 2.0 if i == 0 else None, None, "A") for i in range(3)]
    with _world(arms) as store:
        per = experiment_outcomes_data(store, definition=DEFINITION, stage="Set up", within_days=7, as_of=day(5))
    status = per.set_index("customer_id")["progression_status"]
    assert status["n0"] == "progressed"  # observed inside the window already
    assert set(status.drop("n0")) == {"censored"}
    assert per["progression"].isna().sum() == 5


def test_errors_name_what_is_allowed() -> None:
    arms = [(f"c{i}", "control", None, None, "A") for i in range(3)] + [(f"n{i}", "nudge", None, None, "A") for i in range(3)]
    with _world(arms) as store:
        with pytest.raises(ValueError, match=r"'Onboarded' is not a stage of 'test'; stages are \['Trial', 'Set up'\]"):
            experiment_effects_data(store, definition=DEFINITION, stage="Onboarded", within_days=7, as_of=day(60))
        with pytest.raises(EmptyResultError, match=r"experiment 'other': no assignments found \(experiments in the store: \['exp'\]\)"):
            experiment_effects_data(store, definition=DEFINITION, stage="Set up", within_days=7, experiment="other", as_of=day(60))
        with pytest.raises(ValueError, match="control 'treated' is not one of its variants"):
            experiment_effects_data(store, definition=DEFINITION, stage="Set up", within_days=7, control="treated", as_of=day(60))
        with pytest.raises(ValueError, match=r"within_days=\.\.\.\): must be a positive number of days; got 0"):
            experiment_effects_data(store, definition=DEFINITION, stage="Set up", within_days=0, as_of=day(60))


# -- the planted experiment of the demo world -------------------------------------------------------------------
def test_demo_world_recovers_the_planted_uplift_and_claims_nothing_for_the_null_arm(demo_world: Path, demo_store: Path) -> None:
    truth = load_truth(demo_world)
    planted = truth["planted"]["experiment"]
    window = int(truth["world"]["trial_days"])
    with Store(demo_store, read_only=True) as store:
        out = experiment_effects_data(store, definition=DEFINITION, stage="Set up", within_days=window,
                                      experiment=planted["parameters"]["experiment"])
    prog = out[out["metric"] == "progression"].set_index("variant")
    # the read-out counts exactly the customers and setups the world wrote
    for arm, counts in planted["assignments"]["arms"].items():
        if arm == "control":
            assert prog["n_control"].iloc[0] == counts["n"]
            assert prog["events_control"].iloc[0] == counts["setup_within_window"]
        else:
            assert (prog.loc[arm, "n_variant"], prog.loc[arm, "events_variant"]) == (counts["n"], counts["setup_within_window"])
    uplift = planted["parameters"]["uplift_absolute"]
    effect_arm = max(uplift, key=uplift.get)
    null_arms = [a for a, u in uplift.items() if u == 0 and a != "control"]
    assert prog.loc[effect_arm, "ci_low"] <= uplift[effect_arm] <= prog.loc[effect_arm, "ci_high"]
    for arm in null_arms:
        assert prog.loc[arm, "p_value"] >= 0.05
        assert prog.loc[arm, "verdict"].startswith(f"No detectable effect of {arm}")
        assert "could detect a change of" in prog.loc[arm, "verdict"]
    assert (out["srm_p_value"] > 0.001).all()  # the designed split held
    assert not out["verdict"].str.contains("mismatch").any()


# -- sample ratio mismatch --------------------------------------------------------------------------------------
def test_srm_is_detected_on_an_unbalanced_assignment() -> None:
    # 70 control / 30 nudge against a 50/50 design: chi² = (20² + 20²) / 50 = 16, p = 6.3e-5
    arms = [(f"c{i:02d}", "control", 3.0 if i % 2 else None, None, "A") for i in range(70)]
    arms += [(f"n{i:02d}", "nudge", 3.0 if i % 2 else None, None, "A") for i in range(30)]
    with _world(arms) as store:
        out = experiment_effects_data(store, definition=DEFINITION, stage="Set up", within_days=7, as_of=day(60))
    assert out["srm_p_value"].iloc[0] == pytest.approx(6.334e-5, rel=1e-3)
    assert out["verdict"].str.startswith("Sample ratio mismatch").all()
    assert sample_ratio_test({"control": 50, "nudge": 50}, {"control": 0.5, "nudge": 0.5}) == pytest.approx(1.0)
    with pytest.raises(ValueError, match=r"variants \['other'\] are not in the design"):
        sample_ratio_test({"other": 3}, {"control": 0.5, "nudge": 0.5})


# -- minimum detectable effect ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("rate", "n_control", "n_variant"), [(0.5, 400, 400), (0.2, 1000, 500), (0.03, 5000, 5000), (0.9, 120, 80)])
def test_mde_has_the_stated_power_by_statsmodels(rate: float, n_control: int, n_variant: int) -> None:
    mde = minimum_detectable_effect(rate, n_control, n_variant, alpha=0.05, power=0.8)
    analysis = NormalIndPower()
    powers = []
    for other in (rate + mde, rate - mde):
        if 0 <= other <= 1:
            h = proportion_effectsize(other, rate)
            powers.append(analysis.power(effect_size=abs(h), nobs1=n_variant, alpha=0.05, ratio=n_control / n_variant))
    # the reported size is the larger of the two directions: that one has exactly 80% power, the other at least 80%
    assert min(powers) == pytest.approx(0.8, abs=2e-3)
    assert max(powers) >= 0.8 - 2e-3
    with pytest.raises(ValueError, match=r"power must lie strictly between 0 and 1; got 1\.2"):
        minimum_detectable_effect(0.5, 10, 10, power=1.2)


# -- CUPED --------------------------------------------------------------------------------------------------------
def test_cuped_reduces_variance_with_a_correlated_covariate() -> None:
    rng = np.random.default_rng(3)
    n = 300
    pre = rng.poisson(2, n)  # pre-period activity
    arm = np.array(["control", "nudge"] * (n // 2))
    p = np.clip(0.05 + 0.2 * pre + np.where(arm == "nudge", 0.08, 0.0), 0, 1)
    setup = rng.random(n) < p
    arms = [(f"u{i:03d}", arm[i], 3.0 if setup[i] else None, None, "A") for i in range(n)]
    with _world(arms, pre={f"u{i:03d}": int(pre[i]) for i in range(n)}) as store:
        out = experiment_effects_data(store, definition=DEFINITION, stage="Set up", within_days=7, as_of=day(60))
    row = out.set_index("metric").loc["progression"]
    # CUPED theory: the variance falls by the squared within-arm correlation of outcome and covariate
    y = setup.astype(float)
    resid_y = y - pd.Series(y).groupby(arm).transform("mean").to_numpy()
    resid_x = pre - pd.Series(pre).groupby(arm).transform("mean").to_numpy()
    rho2 = np.corrcoef(resid_y, resid_x)[0, 1] ** 2
    assert row["variance_reduction"] > 0.15
    assert row["variance_reduction"] == pytest.approx(rho2, abs=0.03)
    assert row["cuped_used"]
    assert row["cuped_ci_high"] - row["cuped_ci_low"] < row["ci_high"] - row["ci_low"]
    assert "adjusted for pre-assignment activity" in row["verdict"]


# -- segments ---------------------------------------------------------------------------------------------------
def test_segment_effects_use_benjamini_hochberg() -> None:
    arms = []
    for seg, (kc, kv) in {"A": (3, 15), "B": (8, 9), "C": (1, 2)}.items():
        arms += [(f"{seg}c{i:02d}", "control", 3.0 if i < kc else None, None, seg) for i in range(20)]
        arms += [(f"{seg}n{i:02d}", "nudge", 3.0 if i < kv else None, None, seg) for i in range(20)]
    with _world(arms) as store:
        out = experiment_segment_effects_data(store, definition=DEFINITION, stage="Set up", within_days=7, as_of=day(60))
    assert list(out["segment"].unique()) == ["A", "B", "C"]
    assert out["q_value"].to_numpy() == pytest.approx(bh_qvalues(out["p_value"]), nan_ok=True)
    a = out[(out["segment"] == "A") & (out["metric"] == "progression")].iloc[0]
    assert a["significant"]
    assert a["verdict"].startswith("nudge raised the share reaching Set up")
    b = out[(out["segment"] == "B") & (out["metric"] == "progression")].iloc[0]
    assert not b["significant"]
    assert b["verdict"].startswith("No detectable effect")


# -- assignment ---------------------------------------------------------------------------------------------------
def _customers() -> pd.DataFrame:
    return pd.DataFrame({"customer_id": [f"c{i:03d}" for i in range(103)], "segment": ["SMB"] * 61 + ["Ent"] * 31 + [None] * 11})


def test_assign_variants_is_stratified_seeded_and_ready_to_ingest(tmp_path: Path) -> None:
    design = {"control": 0.5, "email": 0.3, "call": 0.2}
    out = assign_variants(_customers(), experiment="x", variants=design, seed=11, assigned_at="2025-03-01", holdout=["c000", "c070"])
    assert out["variant"].value_counts()["holdout"] == 2
    props = out["properties"].map(json.loads)
    assert props[out["variant"] == "holdout"].map(lambda d: "allocation" not in d).all()
    # SMB has 60 randomised customers: 30 / 18 / 12 exactly; the 30 Ent ones: 15 / 9 / 6
    strata = props.map(lambda d: d["stratum"])
    smb = out[(strata == "SMB") & (out["variant"] != "holdout")]["variant"].value_counts().to_dict()
    assert smb == {"control": 30, "email": 18, "call": 12}
    ent = out[(strata == "Ent") & (out["variant"] != "holdout")]["variant"].value_counts().to_dict()
    assert ent == {"control": 15, "email": 9, "call": 6}
    assert (strata == "(no segment)").sum() == 11
    # same seed, shuffled rows: the same assignment; another seed: another one
    again = assign_variants(_customers().sample(frac=1, random_state=5), experiment="x", variants=design, seed=11,
                            assigned_at="2025-03-01", holdout=["c070", "c000"])
    pd.testing.assert_frame_equal(out, again)
    other = assign_variants(_customers(), experiment="x", variants=design, seed=12, assigned_at="2025-03-01")
    assert (other["variant"] != out["variant"]).any()
    # ready to ingest as the canonical assignments table
    from journeylib.store.ingest import ingest_file

    path = tmp_path / "assignments.csv"
    out.assign(assigned_at=out["assigned_at"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")).to_csv(path, index=False)
    with Store(":memory:") as store:
        ingest_file(store, "assignments", path)
        assert store.count("assignments") == 103


def test_assign_variants_errors() -> None:
    with pytest.raises(ValueError, match=r"positive shares summing to 1; got \{'control': 0.5, 'b': 0.4\}"):
        assign_variants(_customers(), experiment="x", variants={"control": 0.5, "b": 0.4}, seed=1, assigned_at="2025-03-01")
    with pytest.raises(ValueError, match=r"customers lacks column\(s\) \['plan'\]"):
        assign_variants(_customers(), experiment="x", variants={"control": 0.5, "b": 0.5}, seed=1, assigned_at="2025-03-01",
                        segment_col="plan")
    with pytest.raises(ValueError, match="'holdout' is the variant of held-out customers"):
        assign_variants(_customers(), experiment="x", variants={"holdout": 0.5, "b": 0.5}, seed=1, assigned_at="2025-03-01",
                        holdout=["c001"])


def test_assignments_round_trip_through_the_read_out() -> None:
    customers = pd.DataFrame({"customer_id": [f"c{i:02d}" for i in range(40)], "segment": ["A"] * 20 + ["B"] * 20})
    rows: Any = assign_variants(customers, experiment="exp", variants={"control": 0.5, "nudge": 0.5}, seed=4, assigned_at=day(1))
    with memory_store(customers=customers.assign(signup_at=day(0)), assignments=rows,
                      events=[{"event_id": "e", "customer_id": "c00", "timestamp": day(60), "event": "login", "source": "product"}]) as store:
        out = experiment_effects_data(store, definition=DEFINITION, stage="Set up", within_days=7, as_of=day(60))
    assert out["srm_p_value"].iloc[0] == pytest.approx(1.0)  # exactly the design, stored in properties
    assert set(out["n"]) == {40}
