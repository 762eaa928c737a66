"""Survival: Cox against lifelines' Rossi results, Kaplan–Meier by hand, log-rank, churn durations."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from _builders import ROOT
from lifelines.datasets import load_rossi
from lifelines.statistics import logrank_test

from journeylib.config import JourneyDefinition
from journeylib.customers.survival import churn_durations_data, cox_data, kaplan_meier_data, logrank_data
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
