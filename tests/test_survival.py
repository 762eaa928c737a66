"""Survival: Cox against lifelines' Rossi results, Kaplan–Meier by hand, log-rank, churn durations."""

from __future__ import annotations

import itertools
from pathlib import Path

import pandas as pd
import pytest
from _builders import ROOT
from lifelines import KaplanMeierFitter
from lifelines.datasets import load_rossi
from lifelines.statistics import logrank_test

from journeylib.config import JourneyDefinition
from journeylib.customers.survival import (
    churn_durations_data,
    cox_data,
    kaplan_meier_data,
    logrank_data,
    next_stage_durations_data,
    next_stage_kaplan_meier_data,
)
from journeylib.journey.stages import milestones_data
from journeylib.store import Store

ROSSI_COVARIATES = ["fin", "age", "race", "wexp", "mar", "paro", "prio"]


def test_cox_matches_lifelines_rossi() -> None:
    res = cox_data(load_rossi(), duration_col="week", event_col="arrest", covariates=ROSSI_COVARIATES)
    s = res.summary.set_index("covariate")
    assert s.loc["fin", "coef"] == pytest.approx(-0.379, abs=1e-3)
    assert s.loc["prio", "coef"] == pytest.approx(0.091, abs=1e-3)
    assert s.loc["fin", "hr_low"] < s.loc["fin", "hazard_ratio"] < s.loc["fin", "hr_high"] < 1.0
    assert set(res.ph_test["covariate"]) == set(ROSSI_COVARIATES)
    assert res.events == 114
    assert res.n == 432
    # lifelines' documented check: age and wexp violate proportional hazards on Rossi (rank transform)
    assert set(res.ph_test.loc[res.ph_test["ph_violated"], "covariate"]) >= {"age"}
    with pytest.raises(ValueError, match="lacks columns"):
        cox_data(load_rossi(), duration_col="week", event_col="arrest", covariates=["nope"])


def test_kaplan_meier_hand_computed() -> None:
    d = pd.DataFrame({"duration_days": [1, 2, 3, 4], "churned": [1, 0, 1, 0], "segment": "A"})
    km = kaplan_meier_data(d, times=(0, 1, 3)).set_index("time_days")
    # S(1) = 3/4; at day 3, 2 at risk and 1 churn: S(3) = 3/4 * 1/2
    assert km.loc[1, "survival"] == pytest.approx(0.75)
    assert km.loc[3, "survival"] == pytest.approx(0.375)
    assert km.loc[3, "at_risk"] == 2
    assert km.loc[3, "churned_by"] == 2
    assert km.loc[3, "censored_by"] == 1


def test_logrank_equals_lifelines() -> None:
    r = load_rossi()
    ours = logrank_data(r, by="fin", duration_col="week", event_col="arrest").iloc[0]
    ref = logrank_test(r.loc[r.fin == 0, "week"], r.loc[r.fin == 1, "week"], r.loc[r.fin == 0, "arrest"], r.loc[r.fin == 1, "arrest"])
    assert ours["p_value"] == pytest.approx(ref.p_value)
    with pytest.raises(ValueError, match="at least 2"):
        logrank_data(r.assign(one="x"), by="one", duration_col="week", event_col="arrest")


def test_churn_durations_count_censored_customers_apart(demo_store: Path) -> None:
    definition = JourneyDefinition.load(ROOT / "parameters" / "journeys" / "saas.yaml")
    with Store(demo_store, read_only=True) as store:
        d = churn_durations_data(store, definition=definition)
        n_conv = int(store.query("SELECT count(*) AS n FROM customers WHERE converted_at IS NOT NULL")["n"].iloc[0])
        n_churn = int(store.query("SELECT count(*) AS n FROM customers WHERE converted_at IS NOT NULL AND churned_at IS NOT NULL")["n"].iloc[0])
    assert len(d) == n_conv
    assert int(d["churned"].sum()) == n_churn
    assert (d["duration_days"] >= 0).all()
    km = kaplan_meier_data(d, by="segment")
    assert set(km["group"]) == set(d["segment"])


def test_next_stage_kaplan_meier_matches_lifelines_hand_built() -> None:
    # stage A: 6 customers, 3 reach B (days 2, 5, 5), 3 censored (days 3, 6, 10); stage B: 3 customers, 1 reaches C
    d = pd.DataFrame({
        "stage": ["A"] * 6 + ["B"] * 3, "stage_order": [0] * 6 + [1] * 3, "next_stage": ["B"] * 6 + ["C"] * 3,
        "duration_days": [2.0, 3.0, 5.0, 5.0, 6.0, 10.0, 1.0, 4.0, 8.0],
        "reached": [1, 0, 1, 1, 0, 0, 0, 1, 0],
    })
    km = next_stage_kaplan_meier_data(d, times=(0, 2, 4, 5, 7, 10))
    assert list(km["stage"].drop_duplicates()) == ["A", "B"]
    a = km[km["stage"] == "A"].set_index("time_days")
    ref = KaplanMeierFitter().fit(d.loc[:5, "duration_days"], d.loc[:5, "reached"])
    for t in (0, 2, 4, 5, 7, 10):
        assert a.loc[t, "not_reached"] == pytest.approx(float(ref.survival_function_at_times(t).iloc[0]))
    # by hand: S(2) = 5/6; at day 5, 4 at risk (day 3 censored), 2 reach: S(5) = 5/6 * 2/4
    assert a.loc[5, "reached_share"] == pytest.approx(1 - 5 / 6 * 2 / 4)
    assert a.loc[5, "at_risk"] == 4
    assert a.loc[5, "reached_by"] == 3
    assert a.loc[5, "censored_by"] == 1  # the censored customer is not counted as reached nor as failed
    assert a.loc[10, "reached_by"] == 3
    assert a.loc[10, "censored_by"] == 3
    assert (a["ci_low"] <= a["reached_share"] + 1e-12).all()
    assert (a["reached_share"] <= a["ci_high"] + 1e-12).all()
    b = km[km["stage"] == "B"].set_index("time_days")
    assert b.loc[4, "reached_share"] == pytest.approx(1 - 1 / 2)  # day 1 censored, 2 at risk at day 4, 1 reaches
    assert set(km["next_stage"]) == {"B", "C"}
    with pytest.raises(ValueError, match="lacks columns"):
        next_stage_kaplan_meier_data(d.drop(columns="reached"))


def test_next_stage_durations_on_the_demo_store(demo_store: Path) -> None:
    definition = JourneyDefinition.load(ROOT / "parameters" / "journeys" / "saas.yaml")
    with Store(demo_store, read_only=True) as store:
        d = next_stage_durations_data(store, definition=definition)
        ms = milestones_data(store, definition=definition)
    ordered = [n for n in definition.stage_names if n not in definition.free_stages]
    assert set(d["stage"]) <= set(ordered[:-1])
    assert (d["duration_days"] >= 0).all()
    assert set(d["ended_by"]) <= {"next_stage", "journey_ended", "still_waiting"}
    assert ((d["reached"] == 1) == (d["ended_by"] == "next_stage")).all()
    assert d.loc[d["reached"] == 0, "next_entered_at"].isna().all()
    entered = ms[ms["entered_at"].notna()]
    for cur, nxt in itertools.pairwise(ordered):
        rows = d[d["stage"] == cur]
        assert len(rows) == int((entered["stage"] == cur).sum())
        assert (rows["next_stage"] == nxt).all()
        # every customer who entered the next stage after the current one counts as reached, none more
        assert int(rows["reached"].sum()) <= int((entered["stage"] == nxt).sum())
    km = next_stage_kaplan_meier_data(d)
    first = km[(km["stage"] == ordered[0]) & (km["time_days"] == 0)].iloc[0]
    assert first["n"] == int((d["stage"] == ordered[0]).sum())
