"""Tests of journeylib.customers.drift: PSI, the permutation test, the periods, and drift on three synthetic worlds."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from journeylib.context import Journey
from journeylib.customers.drift import (
    DRIFT_COLUMNS,
    DRIFT_DETAIL_COLUMNS,
    drift_data,
    drift_periods,
    js_distance_permutation_test,
    population_stability_index,
)
from journeylib.store import Store
from journeylib.store.ingest import ingest_folder

ROOT = Path(__file__).resolve().parents[1]
SAAS = ROOT / "parameters" / "journeys" / "saas.yaml"
SECOND = ROOT / "journeylib" / "datasets" / "second_world.yaml"


# -- PSI ----------------------------------------------------------------------------------------
def test_psi_hand_computed() -> None:
    # reference 0,1 half each (one edge at 0.5 → bins {0}, {1}); current 1/4 zeros, 3/4 ones.
    # counts + 0.5: ref (50.5, 50.5) → (0.5, 0.5); cur (25.5, 75.5) → (25.5/101, 75.5/101)
    # PSI = (c0-0.5)·ln(c0/0.5) + (c1-0.5)·ln(c1/0.5) ≈ 0.2687
    ref = [0] * 50 + [1] * 50
    cur = [0] * 25 + [1] * 75
    psi, p, k = population_stability_index(ref, cur)
    c0, c1 = 25.5 / 101, 75.5 / 101
    expected = (c0 - 0.5) * np.log(c0 / 0.5) + (c1 - 0.5) * np.log(c1 / 0.5)
    assert k == 2
    assert psi == pytest.approx(expected, rel=1e-9)
    assert 0 < p < 0.01


def test_psi_same_distribution_is_zero_and_row_order_free() -> None:
    rng = np.random.default_rng(0)
    ref = rng.normal(size=500)
    psi, p, k = population_stability_index(ref, ref[::-1])
    assert psi == pytest.approx(0.0, abs=1e-12)
    assert p == pytest.approx(1.0)
    assert k == 10


def test_psi_errors() -> None:
    with pytest.raises(ValueError, match="both cohorts need values; got 0 reference"):
        population_stability_index([np.nan], [1.0])
    with pytest.raises(ValueError, match="bins must be at least 2; got 1"):
        population_stability_index([1.0], [1.0], bins=1)


# -- permutation test ---------------------------------------------------------------------------
def test_js_permutation_separates_and_does_not() -> None:
    rng = np.random.default_rng(1)
    same = rng.poisson(3, size=(200, 3))
    flag = np.arange(200) < 60
    _, p_same = js_distance_permutation_test(same, flag, n_permutations=199)
    shifted = same.copy()
    shifted[flag, 1] += 6
    d, p_shift = js_distance_permutation_test(shifted, flag, n_permutations=199)
    assert p_same > 0.05
    assert p_shift == pytest.approx(1 / 200)
    assert 0 < d <= 1


def test_js_permutation_errors() -> None:
    with pytest.raises(ValueError, match="one flag per customer"):
        js_distance_permutation_test(np.ones((3, 2)), np.array([True, False]))
    with pytest.raises(ValueError, match="each cohort needs at least one count"):
        js_distance_permutation_test(np.zeros((2, 2)), np.array([True, False]))


# -- periods ------------------------------------------------------------------------------------
def test_drift_periods() -> None:
    p = drift_periods(pd.Timestamp("2024-06-15", tz="UTC"), period_months=2, reference_periods=2)
    assert p["period"].tolist() == ["reference", "current"]
    assert p["signup_from"].dt.strftime("%Y-%m-%d").tolist() == ["2023-12-15", "2024-04-15"]  # 2 periods of 2 months before the current one
    assert p["signup_to"].dt.strftime("%Y-%m-%d").tolist() == ["2024-04-15", "2024-06-15"]
    with pytest.raises(ValueError, match="period_months must be a positive whole number; got 0"):
        drift_periods(pd.Timestamp("2024-06-15", tz="UTC"), period_months=0)


def test_drift_data_on_the_small_test_world(demo_store: Path) -> None:
    # 200 customers: too few per month to test anything; every item says so instead of flagging noise
    with Journey.open(demo_store, definition=SAAS) as j:
        d = j.run(drift_data, min_count=30)
    assert list(d.table.columns) == DRIFT_DETAIL_COLUMNS
    assert not d.table["flagged"].any()
    assert any("left out because their 14-day window" in n for n in d.notes)
    untested = d.table[d.table["value"].isna()]
    assert len(untested)
    assert untested["detail"].str.startswith("not tested").all()
    assert (d.periods["signups"] == d.periods["in_experiment"] + d.periods["compared"] + d.periods["left_out"]).all()


def test_drift_data_argument_errors(demo_store: Path) -> None:
    with Journey.open(demo_store, definition=SAAS) as j:
        with pytest.raises(ValueError, match=r"alpha must be in \(0, 1\); got 2"):
            j.run(drift_data, alpha=2)
        with pytest.raises(ValueError, match="min_count must be a positive whole number; got 0"):
            j.run(drift_data, min_count=0)


# -- the worlds ---------------------------------------------------------------------------------
def _world(root: Path, name: str, *, drift: bool = True, second: bool = False) -> Path:
    import journeylib.datasets.world as world_module
    from journeylib.datasets.parameters import PARAMS
    from journeylib.datasets.second_world import synthesize_second_world

    out = root / name
    if second:
        synthesize_second_world(out, n_customers=2000, seed=0)
    elif drift:
        world_module.synthesize(out, n_customers=2000, seed=0)
    else:
        neutral = dataclasses.replace(
            PARAMS, drift_device_shares=PARAMS.device_shares, drift_gantt_multiplier=1.0, drift_sessions_multiplier=1.0
        )
        saved = world_module.PARAMS
        world_module.PARAMS = neutral
        try:
            world_module.synthesize(out, n_customers=2000, seed=0)
        finally:
            world_module.PARAMS = saved
    db = root / f"{name}.duckdb"
    with Store(db) as store:
        ingest_folder(store, out, source="synthetic")
    return db


@pytest.fixture(scope="module")
def worlds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("drift-worlds")
    return {
        "demo": _world(root, "demo"),
        "no_drift": _world(root, "no_drift", drift=False),
        "second": _world(root, "second", second=True),
    }


@pytest.mark.slow
def test_planted_drift_is_flagged_and_nothing_else(worlds: dict[str, Path]) -> None:
    with Journey.open(worlds["demo"], definition=SAAS) as j:
        d = j.run(drift_data)
    flagged = d.flagged
    # the planted drift: more mobile logins, fewer Gantt uses, fewer sessions from the drift boundary on
    assert "login: device" in flagged["item"].tolist()
    device = flagged[flagged["item"] == "login: device"].iloc[0]
    assert device["q_value"] < 0.05
    assert device["value"] >= device["threshold"]
    assert "mobile" in device["detail"]
    # nothing that the planted drift does not touch: no stage mix, segment, staleness or e-mail shift
    assert set(flagged["kind"]) <= {"event_property", "feature"}
    props = flagged[flagged["kind"] == "event_property"]["item"].tolist()
    assert set(props) <= {"login: device", "feature used: feature"}
    # experiment customers set aside (the planted experiment ended between the periods)
    assert d.periods["in_experiment"].sum() > 0
    assert d.table[list(DRIFT_COLUMNS)].notna()[["kind", "item", "periods", "statistic", "flagged"]].all().all()


@pytest.mark.slow
def test_no_drift_world_flags_nothing(worlds: dict[str, Path]) -> None:
    with Journey.open(worlds["no_drift"], definition=SAAS) as j:
        d = j.run(drift_data)
    assert not d.table["flagged"].any(), d.flagged[["kind", "item", "value", "q_value"]].to_string()
    # the same customers were compared as in the drifted world (only behaviour differs)
    assert d.periods["compared"].min() >= 30


@pytest.mark.slow
def test_second_world_flags_nothing(worlds: dict[str, Path]) -> None:
    with Journey.open(worlds["second"], definition=SECOND) as j:
        d = j.run(drift_data)
    assert len(d.table) > 10
    assert not d.table["flagged"].any(), d.flagged[["kind", "item", "value", "q_value"]].to_string()
    assert any("no assignments table" in n or "experiment" in n or "left out" in n for n in d.notes)


def test_calibration_rows_from_a_risk_table(demo_store: Path) -> None:
    with Journey.open(demo_store, definition=SAAS) as j:
        cust = j.store.table("customers", columns=["customer_id", "signup_at"])
        rng = np.random.default_rng(0)
        # predictions of 0.2, observed 0/1 drawn at 0.2: calibrated, so a small gap that is not flagged
        risk = cust.assign(probability=0.2, outcome=(rng.random(len(cust)) < 0.2).astype(int))
        d = j.run(drift_data, risk=risk, min_count=5)
        with pytest.raises(ValueError, match=r"risk must have the columns signup_at, probability and outcome; missing \['outcome'\]"):
            j.run(drift_data, risk=risk.drop(columns="outcome"), min_count=5)
    cal = d.table[d.table["kind"] == "calibration"]
    assert len(cal) == 2
    assert not cal["flagged"].any()
    assert not any("No risk table" in n for n in d.notes)
