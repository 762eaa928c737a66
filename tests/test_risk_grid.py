"""A finer as-of grid for the test period: alert volumes per week, lead time on the test grid, the split kept."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _builders import ROOT

from journeylib.config import JourneyDefinition
from journeylib.customers.risk import (
    Backtest,
    backtest_data,
    lead_time_data,
    lead_time_summary,
    model_card,
    model_card_markdown,
    threshold_tradeoff_data,
)
from journeylib.customers.snapshots import Snapshots, build_snapshots, holdout_start_day
from journeylib.exceptions import StatisticalWarning
from journeylib.store import Store

T0 = pd.Timestamp("2025-01-01T00:00:00Z")


def _backtest(pred: pd.DataFrame, *, test_every_days: int, horizon_days: int = 30) -> Backtest:
    return Backtest(metrics=pd.DataFrame(), calibration=pd.DataFrame(), lift=pd.DataFrame(), predictions=pred, split={},
                    models={}, features=[], horizon_days=horizon_days, every_days=7, test_every_days=test_every_days)


def _rows(risks: dict[str, list[float]], days: list[int]) -> pd.DataFrame:
    rows = [(c, d, r) for c, rs in risks.items() for d, r in zip(days, rs, strict=True)]
    return pd.DataFrame({
        "customer_id": [r[0] for r in rows], "as_of_day": [r[1] for r in rows],
        "as_of": [T0 + pd.Timedelta(days=r[1] + 1) for r in rows],
        "churned": [1.0 if r[0] == "x" else 0.0 for r in rows], "churn_at": pd.NaT, "days_to_churn": np.nan,
        "risk_m": [r[2] for r in rows],
    })


def test_alert_volume_counts_customers_per_week_not_daily_snapshots() -> None:
    """Two weeks scored daily and weekly: the same customers on each week's list give the same volumes.

    Days 0..13; weeks counted back from day 13: days 7..13 and 0..6. Threshold 0.5.
    x: alerted all of week 1, not in week 2; y: alerted on days 9 and 11 only; z: alerted every day.
    Customer-weeks: 6; alerted: x w1, y w2, z w1, z w2 = 4 -> 66.7 per 100 per week.
    New (not alerted in the customer's previous week): x w1, y w2, z w1 = 3 -> 50 per 100 per week.
    Counting daily snapshots instead would give 23 alerted of 42 x 7 days = 383 per 100 per week.
    """
    lo, hi = 0.1, 0.9
    daily = _rows({
        "x": [hi] * 7 + [lo] * 7,
        "y": [lo] * 9 + [hi, lo, hi, lo, lo],
        "z": [hi] * 14,
    }, list(range(14)))
    # the weekly grid (days 6 and 13) holding each week's highest daily risk: the same weekly lists
    weekly = _rows({"x": [hi, lo], "y": [lo, hi], "z": [hi, hi]}, [6, 13])
    d = lead_time_summary(lead_time_data(_backtest(daily, test_every_days=1), model="m", threshold=0.5),
                          _backtest(daily, test_every_days=1)).iloc[0]
    w = lead_time_summary(lead_time_data(_backtest(weekly, test_every_days=0), model="m", threshold=0.5),
                          _backtest(weekly, test_every_days=0)).iloc[0]
    assert d["alerts_per_100_per_week"] == pytest.approx(400 / 6)
    assert d["new_alerts_per_100_per_week"] == pytest.approx(300 / 6)
    assert (w["alerts_per_100_per_week"], w["new_alerts_per_100_per_week"]) == pytest.approx(
        (d["alerts_per_100_per_week"], d["new_alerts_per_100_per_week"]))
    assert d["alerted_snapshots"] == 7 + 2 + 14
    assert d["precision"] == pytest.approx(7 / 23)  # churned share of alerted snapshots (x's 7 of 23)
    # a customer flickering within a week is one alert and one new alert that week
    flicker = _rows({"x": [hi, lo, hi, lo, hi, lo, hi]}, list(range(7)))
    f = lead_time_summary(lead_time_data(_backtest(flicker, test_every_days=1), model="m", threshold=0.5),
                          _backtest(flicker, test_every_days=1)).iloc[0]
    assert (f["alerts_per_100_per_week"], f["new_alerts_per_100_per_week"]) == (100.0, 100.0)


def test_lead_time_truncation_and_lookback_use_the_test_grid() -> None:
    """One churner seen daily from day 14 to 35, churn at the end of day 39 (t0 + 40 days), horizon 30.

    Its first churned snapshot (day 14, as-of t0 + 15) is 25 days before the churn. On a daily test grid the
    lead could reach 30 - 1 = 29 days, so 25 is truncated and below the default look-back (29); had the same
    rows come from a weekly grid the cap would be 30 - 7 = 23: not truncated, full look-back.
    """
    days = list(range(14, 36))
    pred = pd.DataFrame({
        "customer_id": "w", "as_of_day": days, "as_of": [T0 + pd.Timedelta(days=d + 1) for d in days], "churned": 1.0,
        "churn_at": T0 + pd.Timedelta(days=40), "days_to_churn": [39.0 - d for d in days],
        "risk_m": [0.2 if d < 20 else 0.8 for d in days],
    })
    daily = lead_time_data(_backtest(pred, test_every_days=1), model="m", threshold=0.5).iloc[0]
    weekly = lead_time_data(_backtest(pred, test_every_days=0), model="m", threshold=0.5).iloc[0]
    assert daily["max_lead_days"] == weekly["max_lead_days"] == 25.0
    assert daily["lead_days"] == 19.0  # alert on day 20, as-of t0 + 21
    assert (bool(daily["truncated"]), bool(daily["full_lookback"])) == (True, False)
    assert (bool(weekly["truncated"]), bool(weekly["full_lookback"])) == (False, True)
    assert _backtest(pred, test_every_days=1).test_step_days == 1
    assert _backtest(pred, test_every_days=0).test_step_days == 7


def _build(store: Store, definition: JourneyDefinition, **kw: object) -> Snapshots:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StatisticalWarning)
        return build_snapshots(store, definition=definition, horizon_days=60, **kw)


def test_test_grid_adds_daily_days_of_the_test_period_only(demo_store: Path) -> None:
    definition = JourneyDefinition.load(ROOT / "parameters" / "journeys" / "saas.yaml")
    with Store(demo_store, read_only=True) as store:
        weekly = _build(store, definition)
        daily = _build(store, definition, test_every_days=1)
        same = _build(store, definition, test_every_days=7)
        with pytest.raises(ValueError, match="test_every_days must divide every_days"):
            _build(store, definition, test_every_days=3)
        with pytest.raises(ValueError, match="cannot refine given as_of_dates"):
            _build(store, definition, test_every_days=1, as_of_dates=["2025-06-01"])
    # the weekly rows are exactly the weekly build (features, labels, peers' medians)
    on = daily.on_grid(daily.data["as_of_day"])
    pd.testing.assert_frame_equal(daily.data[on].reset_index(drop=True), weekly.data)
    assert daily.grid_days == weekly.grid_days
    assert (daily.every_days, daily.test_every_days, same.test_every_days) == (7, 1, 0)
    pd.testing.assert_frame_equal(same.data, weekly.data)
    # the added days: every day from the test period's start to the last labelled weekly day, all labelled
    lab_weekly = weekly.labelled["as_of_day"]
    start = holdout_start_day(lab_weekly, test_fraction=0.3)
    assert daily.test_from_day == start
    want = set(range(start, int(lab_weekly.max()) + 1)) - set(weekly.grid_days)
    assert set(daily.data.loc[~on, "as_of_day"]) == want
    assert daily.data.loc[~on, "churned"].notna().all()
    assert len(daily.data) - len(weekly.data) == int((~on).sum()) > 6 * len(want)  # several customers a day


@pytest.fixture(scope="module")
def grids(planted_world: tuple[Path, Path]) -> tuple[Backtest, Backtest, Snapshots]:
    definition = JourneyDefinition.load(ROOT / "parameters" / "journeys" / "saas.yaml")
    with Store(planted_world[1], read_only=True) as store:
        weekly = _build(store, definition)
        daily = _build(store, definition, test_every_days=1)
    return backtest_data(weekly, n_boot=50), backtest_data(daily, n_boot=50), daily


def test_daily_test_grid_keeps_the_split_and_only_adds_test_days(grids: tuple[Backtest, Backtest, Snapshots]) -> None:
    weekly, daily, snap = grids
    keys = ["customer_id", "as_of_day"]
    # the same training rows, so the same fitted models: the weekly test rows get identical risks
    pd.testing.assert_frame_equal(weekly.train_keys.sort_values(keys).reset_index(drop=True),
                                  daily.train_keys.sort_values(keys).reset_index(drop=True))
    both = weekly.predictions.merge(daily.predictions, on=keys, suffixes=("_w", "_d"))
    assert len(both) == len(weekly.predictions)
    np.testing.assert_allclose(both["risk_boosted_w"], both["risk_boosted_d"])
    # out of time, customers never in both, and the test period starts where the weekly one does
    assert not set(daily.train_keys["customer_id"]) & set(daily.predictions["customer_id"])
    assert daily.predictions["as_of_day"].min() == weekly.predictions["as_of_day"].min()
    assert daily.train_keys["as_of_day"].max() + 1 + 60 <= daily.predictions["as_of_day"].min()
    assert daily.predictions["as_of_day"].nunique() == daily.predictions["as_of_day"].max() - daily.predictions["as_of_day"].min() + 1
    assert (daily.test_step_days, daily.split["test_every_days"], weekly.split["test_every_days"]) == (1, 1, 7)
    with pytest.raises(ValueError, match="before the snapshots' 1-day test grid"):
        backtest_data(snap, test_fraction=0.45, n_boot=10)
    card = model_card_markdown(model_card(daily, snapshots=snap, lead=lead_time_data(daily)))
    assert f"{daily.split['test_snapshots']} snapshots" in card
    assert "as-of every 1 day (training every 7)" in card
    assert "as-of every" not in model_card_markdown(model_card(weekly, snapshots=snap, lead=lead_time_data(weekly)))


def test_daily_alerts_come_no_later_than_weekly_at_a_threshold(grids: tuple[Backtest, Backtest, Snapshots]) -> None:
    """The weekly days are among the daily ones with the same risks, so a daily first crossing is never later."""
    weekly, daily, _ = grids
    thr = float(lead_time_data(weekly, alert_share=0.1)["threshold"].iloc[0])
    w = lead_time_data(weekly, threshold=thr).set_index("customer_id")
    d = lead_time_data(daily, threshold=thr).set_index("customer_id")
    assert set(w.index) <= set(d.index)
    d = d.loc[w.index]
    assert (d["alerted"] | ~w["alerted"]).all()
    hit = w["alerted"]
    assert (d.loc[hit, "lead_days"] >= w.loc[hit, "lead_days"]).all()
    assert (d["max_lead_days"] >= w["max_lead_days"]).all()
    assert (d.loc[hit, "lead_days"] > w.loc[hit, "lead_days"]).any()  # the daily grid does find some sooner
    # the alert budget picks a comparable threshold on both grids (a share of test snapshots either way)
    td = threshold_tradeoff_data(daily)
    tw = threshold_tradeoff_data(weekly)
    assert np.abs(td["threshold"].to_numpy() - tw["threshold"].to_numpy()).max() < 0.05
    # per week, a daily score puts at least as many customers on the list as the weekly one (more chances)
    sd, sw = lead_time_summary(d.reset_index(), daily).iloc[0], lead_time_summary(w.reset_index(), weekly).iloc[0]
    assert sw["alerts_per_100_per_week"] <= sd["alerts_per_100_per_week"] < 7 * sw["alerts_per_100_per_week"]
