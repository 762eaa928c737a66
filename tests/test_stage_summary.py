"""Tests of journeylib.journey.stage_summary: characteristic events by lift, time to move on, the stage sentences."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from journeylib.context import Journey
from journeylib.exceptions import EmptyResultError
from journeylib.journey.stage_summary import (
    STAGE_EVENT_COLUMNS,
    STAGE_SUMMARY_COLUMNS,
    stage_events_data,
    stage_summary_data,
)

ROOT = Path(__file__).resolve().parents[1]
SAAS = ROOT / "parameters" / "journeys" / "saas.yaml"


@pytest.fixture(scope="module")
def journey(demo_store: Path) -> Journey:
    return Journey.open(demo_store, definition=SAAS)


def test_stage_events_lift_and_rule_events_left_out(journey: Journey) -> None:
    iv = journey.intervals()
    ev = journey.run(stage_events_data, intervals=iv, min_customers=5, top_n=3)
    assert list(ev.columns) == STAGE_EVENT_COLUMNS
    assert len(ev)
    assert (ev.groupby("stage").size() <= 3).all()
    assert (ev["lift_ci_low"] > 1).all()
    finite = np.isfinite(ev["lift"])
    assert np.allclose(ev.loc[finite, "lift"], ev.loc[finite, "share"] / ev.loc[finite, "share_other"])
    # no stage lists an event its own rule names
    rules = {s.name: s.events() for s in journey.definition.stages}
    assert not any(e in rules[s] for s, e in zip(ev["stage"], ev["event"], strict=True))
    # only what customers do (product and support), never CRM records or e-mails sent to them
    assert not ev["event"].isin(["trial_started", "subscription_started", "email_delivered", "renewal"]).any()
    # stage_customers is the number of intervals of that stage
    sizes = iv.assign(stage=iv["stage"].astype(str)).groupby("stage").size()
    assert (ev["stage_customers"].to_numpy() == sizes.reindex(ev["stage"]).to_numpy()).all()


def test_stage_summary_rows_and_sentences(journey: Journey) -> None:
    iv = journey.intervals()
    funnel = journey.funnel_data()
    sm = journey.run(stage_summary_data, intervals=iv, funnel=funnel)
    assert list(sm.columns) == STAGE_SUMMARY_COLUMNS
    assert sm["stage"].tolist() == journey.definition.stage_names
    entered = iv.assign(stage=iv["stage"].astype(str)).groupby("stage").size()
    assert (sm["customers"].to_numpy() == entered.reindex(sm["stage"]).fillna(0).to_numpy()).all()
    # time in stage: the median of the customers who progressed
    first = journey.definition.stage_names[0]
    moved = iv[(iv["stage"].astype(str) == first) & (iv["status"] == "progressed")]["days_in_stage"]
    assert sm.loc[0, "moved_on"] == len(moved)
    assert sm.loc[0, "median_days"] == pytest.approx(float(np.median(moved)))
    # conversion to the next stage is the funnel's, with its interval
    nxt = funnel[(funnel["group"] == "all") & (funnel["stage"].astype(str) == sm.loc[0, "next_stage"])].iloc[0]
    assert sm.loc[0, "conversion_rate"] == pytest.approx(nxt["conversion_rate"])
    assert sm.loc[0, "eligible"] == nxt["eligible"]
    assert sm["sentence"].str.startswith(tuple(sm["stage"])).all()
    assert "still on their way, not counted" in sm.loc[0, "sentence"]
    assert sm["tickets"].eq(0).all()  # no emotions given


def test_stage_summary_errors(journey: Journey) -> None:
    with pytest.raises(EmptyResultError, match="no stage interval in scope"):
        journey.run(stage_summary_data, intervals=journey.intervals().iloc[0:0], funnel=pd.DataFrame())
    with pytest.raises(ValueError, match="min_customers and top_n must be at least 1; got 0 and 3"):
        journey.run(stage_events_data, intervals=journey.intervals(), min_customers=0)
