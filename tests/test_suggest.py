"""Suggested stage definitions: scoring by hand, no leakage, a valid YAML, and the planted effects inside the CIs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _builders import day, event_rows, memory_store

from journeylib.config.journey import JourneyDefinition
from journeylib.exceptions import EmptyResultError
from journeylib.journey.suggest import (
    compare_definitions_data,
    definition_yaml,
    suggest_milestones_data,
    suggested_definition,
    write_suggested_definition,
)
from journeylib.stats import wilson_interval
from journeylib.store import Store


def _world() -> Store:
    """40 customers: g00-g19 do `good` 3 times on days 1-3, 18 of them convert on day 14; n00-n19 do it once, 2 convert.

    Converters also have a `subscription_started` (crm) at conversion and a `paid_feature` on day 15: both
    would separate perfectly, and neither may be a candidate (one is commercial, the other after the outcome).
    """
    customers, events = [], []
    for prefix, good, converts in (("g", 3, 18), ("n", 1, 2)):
        for i in range(20):
            cid = f"{prefix}{i:02d}"
            conv = day(14) if i < converts else None
            customers.append({"customer_id": cid, "segment": "SMB", "signup_at": day(0), "converted_at": conv})
            for k in range(good):
                events.append((cid, 1 + k, "good", "product"))
            events.append((cid, 0.5, "noise", "product"))
            if conv is not None:
                events.append((cid, 14, "subscription_started", "crm"))
                events.append((cid, 15, "paid_feature", "product"))
    return memory_store(customers=customers, events=event_rows(events))


@pytest.fixture(scope="module")
def store() -> Store:
    s = _world()
    yield s
    s.close()


AS_OF = day(100)


def test_candidates_hand_computed(store: Store) -> None:
    c = suggest_milestones_data(store, as_of=AS_OF, outcome="conversion", outcome_window_days=30, min_counts=(1, 2), windows_days=(7, 30))
    assert set(c["event"]) == {"good", "noise"}  # no crm event, nothing after the outcome
    assert (c["population"] == 40).all()
    row = c[(c["event"] == "good") & (c["min_count"] == 2) & (c["within_days"] == 7)].iloc[0]
    # reached by the 20 g-customers, 18 of whom converted; 2 of the 20 others converted
    assert row["reached"] == 20
    assert row["support"] == pytest.approx(0.5)
    assert row["median_days"] == pytest.approx(2.0)  # the 2nd `good` is on day 2
    assert row["success_rate_reached"] == pytest.approx(0.9)
    assert row["success_rate_not_reached"] == pytest.approx(0.1)
    assert row["lift"] == pytest.approx(9.0)
    se = np.sqrt(1 / 18 - 1 / 20 + 1 / 2 - 1 / 20)  # Katz
    assert row["lift_ci_low"] == pytest.approx(9.0 * np.exp(-1.959963984540054 * se))
    lo, hi = wilson_interval([18], [20])
    assert (row["reached_ci_low"], row["reached_ci_high"]) == pytest.approx((lo[0], hi[0]))
    h = -(0.9 * np.log2(0.9) + 0.1 * np.log2(0.1))
    assert row["information_gain"] == pytest.approx(1.0 - h)  # H(Y) = 1 bit, H(Y | reached) = H(0.9)
    assert row["q_value"] < 0.001
    # `good` once is done by everyone: no separation
    once = c[(c["event"] == "good") & (c["min_count"] == 1)].iloc[0]
    assert once["support"] == 1.0
    assert once["information_gain"] == pytest.approx(0.0)
    picked = c[c["selected"]]
    assert picked["event"].tolist() == ["good"]
    assert picked["order"].tolist() == [1]
    assert c["base_success_rate"].iloc[0] == pytest.approx(0.5)


def test_no_leakage_after_the_outcome(store: Store) -> None:
    # without the cut at the conversion, paid_feature (day 15, converters only) would be a perfect candidate
    c = suggest_milestones_data(store, as_of=AS_OF, outcome="conversion", outcome_window_days=30, exclude_sources=())
    assert "paid_feature" not in set(c["event"])
    assert "subscription_started" not in set(c["event"])  # at the conversion itself, not before it
    # a window that is not complete for anyone: no population
    with pytest.raises(EmptyResultError, match="signed up at least 200 days before as_of"):
        suggest_milestones_data(store, as_of=AS_OF, outcome_window_days=200, windows_days=(7,))


def test_errors(store: Store) -> None:
    with pytest.raises(ValueError, match="outcome must be one of retention, churn, conversion"):
        suggest_milestones_data(store, outcome="upsell")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no window in \\[60\\] is within outcome_window_days=30"):
        suggest_milestones_data(store, as_of=AS_OF, outcome_window_days=30, windows_days=(60,))
    with pytest.raises(ValueError, match="population must be 'all' or 'converted'"):
        suggest_milestones_data(store, population="paying")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="candidates lacks column"):
        suggested_definition(pd.DataFrame({"event": ["x"]}))


def test_written_definition_is_valid_and_compares(store: Store, tmp_path: Path) -> None:
    base = JourneyDefinition.from_dict(
        {"name": "current", "stages": [{"name": "Trial", "rule": "signup"}, {"name": "Noise", "rule": {"event": "noise"}}],
         "outcomes": {"conversion": {"customer_field": "converted_at"}}, "conventions": {"drop_after_days": 30}}
    )
    c = suggest_milestones_data(store, definition=base, as_of=AS_OF, outcome="conversion", outcome_window_days=30)
    path = write_suggested_definition(c, tmp_path / "out" / "suggested.yaml", base=base)
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# Suggested journey definition")
    loaded = JourneyDefinition.from_yaml(path)
    assert loaded.stage_names == ["Signed Up", "≥ 2 good in 3 days"]
    assert loaded.stages[1].rule.model_dump(exclude_defaults=True) == {"event": "good", "min_count": 2, "within_days": 3.0}
    assert loaded.outcomes == base.outcomes
    assert loaded.conventions == base.conventions
    assert loaded.path == loaded.stage_names
    assert JourneyDefinition.from_dict(__import__("yaml").safe_load(definition_yaml(loaded))) == loaded
    cmp = compare_definitions_data(store, current=base, suggested=loaded, as_of=AS_OF, outcome="conversion", outcome_window_days=30)
    assert cmp["definition"].tolist() == ["current", "current", "suggested", "suggested"]
    new = cmp[(cmp["definition"] == "suggested") & (cmp["stage_order"] == 1)].iloc[0]
    assert new["reached"] == 20
    assert new["lift"] == pytest.approx(9.0)
    assert new["rule"] == "≥ 2 good within 3 d of signup"
    old = cmp[(cmp["definition"] == "current") & (cmp["stage_order"] == 1)].iloc[0]
    assert old["reached"] == 40
    assert np.isnan(old["lift"])  # everyone reached it: nothing to compare with


def test_planted_effects_are_inside_the_reported_intervals(demo_store: Path, demo_world: Path) -> None:
    """truth.json's realised rates of the two planted milestone effects fall inside the reported Wilson CIs."""
    planted = json.loads((demo_world / "truth.json").read_text())["planted"]
    definition = JourneyDefinition.load("parameters/journeys/saas.yaml")
    with Store(demo_store, read_only=True) as s:
        # >= 2 integrations in the 14-day trial -> conversion (population: signed up 16+ days before as_of)
        conv = suggest_milestones_data(s, definition=definition, outcome="conversion", outcome_window_days=16, windows_days=(14,), min_counts=(2,))
        # setup_completed within 7 days -> churn within 150 days, among paying customers
        churn = suggest_milestones_data(s, definition=definition, outcome="churn", outcome_window_days=150, windows_days=(7,), min_counts=(1,))
    real = planted["integrations_conversion"]["realised"]
    row = conv[conv["event"] == "integration_connected"].iloc[0]
    assert row["reached"] == real["n_exposed"]
    assert row["reached_ci_low"] <= real["rate_exposed"] <= row["reached_ci_high"]
    assert row["not_reached_ci_low"] <= real["rate_unexposed"] <= row["not_reached_ci_high"]
    assert row["lift_ci_low"] <= real["crude_risk_ratio"] <= row["lift_ci_high"]
    real = planted["setup_churn"]["realised"]
    row = churn[churn["event"] == "setup_completed"].iloc[0]
    # success = not churned; reached = set up within 7 days = the unexposed group of truth.json
    assert row["reached"] == real["n_unexposed"]
    assert row["reached_ci_low"] <= 1 - real["rate_unexposed"] <= row["reached_ci_high"]
    assert row["not_reached_ci_low"] <= 1 - real["rate_exposed"] <= row["not_reached_ci_high"]


def _no_picks() -> pd.DataFrame:
    cols = ["event", "min_count", "within_days", "label", "selected", "order", "support", "lift", "lift_ci_low", "lift_ci_high", "median_days", "outcome", "outcome_window_days"]
    return pd.DataFrame(columns=cols).astype({"selected": bool})


def _base(order: str) -> JourneyDefinition:
    return JourneyDefinition.from_dict(
        {
            "name": "Trials",
            "stages": [
                {"name": "Signed Up", "rule": "signup"},
                {"name": "Set Up", "rule": {"event": "setup_done"}},
                {"name": "Paying", "rule": {"event": "plan_purchased"}, "order": order},
            ],
            "outcomes": {
                "churn": {"customer_field": "churned_at"},
                "trial_expired": {"customer_property": "trial_ends_at", "kind": "drop", "unless_stage": "Paying"},
            },
        }
    )


def test_suggested_definition_carries_a_free_order_stage_an_outcome_names() -> None:
    suggested = suggested_definition(_no_picks(), base=_base("any"))
    assert suggested.stage_names == ["Signed Up", "Paying"]
    assert suggested.outcomes["trial_expired"].unless_stage == "Paying"


def test_suggested_definition_drops_an_ordered_stage_reference_loudly() -> None:
    from journeylib.exceptions import DataQualityWarning

    with pytest.warns(DataQualityWarning, match="'Paying' was entered, but that ordered stage"):
        suggested = suggested_definition(_no_picks(), base=_base("after_previous"))
    assert suggested.stage_names == ["Signed Up"]
    assert suggested.outcomes["trial_expired"].unless_stage is None
