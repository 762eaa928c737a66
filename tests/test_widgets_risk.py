"""RiskWidget: built headless; each control changes the shown numbers to what the library computes for that choice."""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from _builders import ROOT

from journeylib.context import Journey
from journeylib.customers.risk import Backtest, backtest_data, lead_time_data, threshold_tradeoff_data
from journeylib.customers.scoring import score_customers
from journeylib.customers.snapshots import Snapshots, build_snapshots
from journeylib.exceptions import StatisticalWarning
from journeylib.widgets import RiskWidget
from journeylib.widgets.risk import RISKIEST_COLUMNS

N_BOOT = 20


@pytest.fixture(scope="module")
def journey(demo_store: Path) -> Iterator[Journey]:
    j = Journey.open(demo_store, definition=ROOT / "parameters" / "journeys" / "saas.yaml")
    yield j
    j.close()


@pytest.fixture(scope="module")
def reference(journey: Journey) -> dict[int, tuple[Snapshots, Backtest]]:
    """The library's snapshots and backtest at 30 and 60 days, computed apart from the widget."""
    out = {}
    for h in (30, 60):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", StatisticalWarning)  # the censored snapshots: checked in test_snapshots
            snap = journey.run(build_snapshots, horizon_days=h, every_days=7, ticket_scores=None)
        out[h] = (snap, backtest_data(snap, n_boot=N_BOOT))
    return out


def _segment_backtest(snap: Snapshots, bt: Backtest, segment: str) -> Backtest:
    keys = ["customer_id", "as_of_day"]
    seg = bt.predictions[keys].merge(snap.data[[*keys, "segment"]], on=keys, how="left")["segment"].to_numpy()
    return dataclasses.replace(bt, predictions=bt.predictions[seg == segment].reset_index(drop=True))


def _point(bt: Backtest, full: Backtest, *, share: float | None = None, probability: float | None = None) -> pd.DataFrame:
    thr = probability if probability is not None else float(lead_time_data(full, alert_share=share)["threshold"].iloc[0])
    return threshold_tradeoff_data(bt, thresholds=[thr])


@pytest.fixture(scope="module")
def widget(journey: Journey) -> RiskWidget:
    return RiskWidget.from_journey(journey, horizon_days=30, threshold=0.1, n_boot=N_BOOT)


def test_first_view_is_the_library_trade_off(widget: RiskWidget, reference: dict[int, tuple[Snapshots, Backtest]]) -> None:
    bt = reference[30][1]
    assert widget.error == "", widget.error
    assert widget.children[3] is widget.live
    pd.testing.assert_frame_equal(widget.data, threshold_tradeoff_data(bt))
    pd.testing.assert_frame_equal(widget.operating_point, _point(bt, bt, share=0.1))
    assert widget.live.spec["title"] == "Alert threshold trade-off — churn within 30 days, all segments"
    assert "censored" in widget.notes.value  # the snapshots' caveat is shown, not printed
    row = widget.operating_point.iloc[0]
    assert f"{row['precision']:.3f}" in widget.point.value
    assert f"{row['alerts_per_100_per_week']:.1f}" in widget.point.value


def test_threshold_controls_move_the_operating_point(widget: RiskWidget, reference: dict[int, tuple[Snapshots, Backtest]]) -> None:
    _, bt = reference[30]
    widget.threshold_kind_picker.value = "share"
    widget.threshold_slider.value = 0.1
    before = widget.operating_point.copy()
    widget.threshold_slider.value = 0.3  # what a user does in the browser
    assert widget.threshold == 0.3
    pd.testing.assert_frame_equal(widget.operating_point, _point(bt, bt, share=0.3))
    assert widget.operating_point["alert_share"].iloc[0] > before["alert_share"].iloc[0]
    widget.threshold_kind_picker.value = "probability"
    widget.threshold_slider.value = 0.15
    assert widget.threshold_by == "probability"
    pd.testing.assert_frame_equal(widget.operating_point, _point(bt, bt, probability=0.15))
    assert widget.operating_point["threshold"].iloc[0] == 0.15
    pd.testing.assert_frame_equal(widget.data, threshold_tradeoff_data(bt))  # the rows do not move with the threshold
    widget.threshold_kind_picker.value = "share"
    widget.threshold_slider.value = 0.1


def test_segment_filters_rows_table_and_point(widget: RiskWidget, reference: dict[int, tuple[Snapshots, Backtest]]) -> None:
    snap, bt = reference[30]
    counts = snap.labelled.merge(bt.predictions[["customer_id", "as_of_day"]])
    segment = counts.loc[counts["churned"] == 1, "segment"].value_counts().index[0]  # a segment with churners in the test
    widget.segment_picker.value = segment
    assert widget.segment == segment
    assert widget.error == "", widget.error
    seg_bt = _segment_backtest(snap, bt, segment)
    assert 0 < len(seg_bt.predictions) < len(bt.predictions)
    grid = threshold_tradeoff_data(bt)["threshold"].tolist()
    pd.testing.assert_frame_equal(widget.data, threshold_tradeoff_data(seg_bt, thresholds=grid))
    pd.testing.assert_frame_equal(widget.operating_point, _point(seg_bt, bt, share=0.1))
    scores = widget.fits[30].scores.scores
    expected = scores[scores["segment"] == segment].head(widget.top_n)[list(RISKIEST_COLUMNS)].reset_index(drop=True)
    pd.testing.assert_frame_equal(widget.riskiest_table, expected)
    assert set(widget.riskiest_table["segment"]) == {segment}
    assert widget.live.spec["title"].endswith(segment)
    widget.segment = "No such segment"  # e.g. from a URL: shown in the error area, not raised
    assert "No such segment" in widget.errors.value
    assert "no churned one" in widget.error
    assert widget.operating_point is None
    widget.segment_picker.value = "all"
    assert widget.error == ""
    assert len(widget.riskiest_table) == min(widget.top_n, len(scores))


def test_horizon_refits_once_per_horizon(widget: RiskWidget, reference: dict[int, tuple[Snapshots, Backtest]]) -> None:
    first = widget.fits[30]
    widget.horizon_picker.value = 60
    assert widget.horizon_days == 60
    bt = reference[60][1]
    assert widget.fits[60].backtest.horizon_days == 60
    pd.testing.assert_frame_equal(widget.fits[60].backtest.predictions, bt.predictions)
    assert widget.error == "", widget.error
    pd.testing.assert_frame_equal(widget.data, threshold_tradeoff_data(bt))
    assert widget.fits[60].scores.horizon_days == 60
    widget.horizon_picker.value = 30
    assert widget.fits[30] is first  # kept: not rebuilt
    pd.testing.assert_frame_equal(widget.operating_point, _point(reference[30][1], reference[30][1], share=0.1))


def test_notebook_results_seed_the_first_horizon(journey: Journey, reference: dict[int, tuple[Snapshots, Backtest]]) -> None:
    snap, bt = reference[30]
    scores = journey.run(score_customers, horizon_days=30, ticket_scores=None)
    w = RiskWidget.from_journey(journey, horizon_days=30, snapshots=snap, backtest=bt, scores=scores, n_boot=N_BOOT)
    assert w.fits[30].backtest is bt
    assert w.fits[30].scores is scores
    with pytest.raises(ValueError, match="horizon_days=30; the widget's horizon_days is 60"):
        RiskWidget.from_journey(journey, horizon_days=60, snapshots=snap, backtest=bt)
    with pytest.raises(TypeError, match="segment cannot be given"):
        RiskWidget.from_journey(journey, segment="SMB")
