"""Journey charts: each encodes what its computation returned; assertions on ``chart.to_dict()`` fragments."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from journeylib.charts import journey as cj
from journeylib.config import JourneyDefinition
from journeylib.journey.friction import friction_data
from journeylib.journey.paths import conformance_data, variants_data
from journeylib.journey.stages import funnel_data, time_to_convert_data
from journeylib.journey.suggest import compare_definitions_data, suggest_milestones_data, suggested_definition
from journeylib.journey.transitions import event_transitions_data, flow_data, stage_transitions_data
from journeylib.store import Store


@pytest.fixture(scope="module")
def frames(demo_store: Path) -> dict[str, pd.DataFrame]:
    definition = JourneyDefinition.load("parameters/journeys/saas.yaml")
    with Store(demo_store, read_only=True) as s:
        candidates = suggest_milestones_data(s, definition=definition)
        return {
            "funnel": funnel_data(s, definition=definition, segment="SMB"),
            "funnel_by": funnel_data(s, definition=definition, by="segment"),
            "time": time_to_convert_data(s, definition=definition, by="segment"),
            "stage_tr": stage_transitions_data(s, definition=definition),
            "event_tr": event_transitions_data(s, definition=definition, top_n=5, segment="Mid-market"),
            "flow": flow_data(s, definition=definition, segment="Enterprise"),
            "variants": variants_data(s, definition=definition),
            "conformance": conformance_data(s, definition=definition),
            "friction": friction_data(s, definition=definition, segment="Mid-market", n_boot=100),
            "friction_all": friction_data(s, definition=definition, n_boot=100),
            "candidates": candidates,
            "comparison": compare_definitions_data(s, current=definition, suggested=suggested_definition(candidates, base=definition)),
        }


def _marks(spec: dict) -> list[str]:
    """Mark types of a (possibly layered or concatenated) spec."""
    out = []
    for key in ("layer", "hconcat", "vconcat"):
        for part in spec.get(key, []):
            out += _marks(part)
    if "spec" in spec:
        out += _marks(spec["spec"])
    if "mark" in spec:
        mark = spec["mark"]
        out.append(mark if isinstance(mark, str) else mark["type"])
    return out


def _rows(spec: dict) -> int:
    return sum(len(v) for v in spec.get("datasets", {}).values())


def test_funnel_chart(frames: dict[str, pd.DataFrame]) -> None:
    spec = cj.funnel_chart(frames["funnel"], segment="SMB").to_dict()
    assert spec["title"] == "Journey funnel — SMB"
    assert _marks(spec) == ["rule", "point", "bar"]
    rate = spec["hconcat"][0]["layer"][0]["encoding"]
    assert (rate["x"]["field"], rate["x2"]["field"]) == ("ci_low", "ci_high")
    assert rate["y"]["sort"] == ["Trial Started", "Onboarding Completed", "First Value Achieved", "Routine Usage Established", "Expansion Opportunity", "Renewal"]
    fold = spec["hconcat"][1]["transform"][0]
    assert fold["fold"] == ["converted", "dropped", "censored"]  # the censored are drawn apart from the drop-offs
    by = cj.funnel_chart(frames["funnel_by"]).to_dict()
    assert by["title"] == "Journey funnel"
    assert by["hconcat"][0]["layer"][0]["encoding"]["yOffset"]["field"] == "group"
    with pytest.raises(ValueError, match=r"funnel_chart: data lacks column\(s\) \['conversion_rate'"):
        cj.funnel_chart(frames["funnel"].drop(columns=["conversion_rate"]))
    with pytest.raises(TypeError, match=r"must be the DataFrame returned by journeylib\.journey\.stages\.funnel_data"):
        cj.funnel_chart([1, 2])  # type: ignore[arg-type]


def test_time_to_convert_chart(frames: dict[str, pd.DataFrame]) -> None:
    spec = cj.time_to_convert_chart(frames["time"], segment="Mid-market").to_dict()
    assert spec["title"] == "Days to reach each stage from the previous one — Mid-market"
    assert _marks(spec) == ["rule", "bar", "tick"]
    whisker, box, median = (layer["encoding"] for layer in spec["layer"])
    assert (whisker["x"]["field"], whisker["x2"]["field"]) == ("p25", "p90")
    assert (box["x"]["field"], box["x2"]["field"]) == ("p25", "p75")
    assert median["x"]["field"] == "median"
    assert _rows(spec) == len(frames["time"])


def test_transitions_chart(frames: dict[str, pd.DataFrame]) -> None:
    spec = cj.transitions_chart(frames["stage_tr"]).to_dict()
    assert spec["title"] == "Where customers go next"
    assert _marks(spec) == ["rect", "text"]
    enc = spec["layer"][0]["encoding"]
    assert enc["color"]["field"] == "probability"
    assert enc["y"]["sort"][0] == "start"
    assert enc["x"]["sort"][-3:] == ["still active", "dropped", "churned"]
    ev = cj.transitions_chart(frames["event_tr"]).to_dict()
    assert ev["title"] == "Where customers go next — Mid-market"
    tooltip_fields = [t["field"] for t in ev["layer"][0]["encoding"]["tooltip"]]
    assert "transitions" in tooltip_fields


def test_flow_chart_only_encodes_the_coordinates(frames: dict[str, pd.DataFrame]) -> None:
    flow = frames["flow"]
    spec = cj.flow_chart(flow).to_dict()
    assert spec["title"] == "Customer flow through the milestones — Enterprise"
    assert _marks(spec) == ["area", "rect", "text"]
    band, rect, _ = (layer["encoding"] for layer in spec["layer"])
    assert (band["x"]["field"], band["y"]["field"], band["y2"]["field"], band["detail"]["field"]) == ("x", "y", "y2", "link_id")
    assert (rect["x"]["field"], rect["x2"]["field"], rect["y"]["field"], rect["y2"]["field"]) == ("x", "x2", "y", "y2")
    assert band["y"]["scale"]["reverse"] is True
    assert _rows(spec) == len(flow)  # nothing aggregated in the chart
    assert _rows(spec) < 5000


def test_variants_conformance_and_friction_charts(frames: dict[str, pd.DataFrame]) -> None:
    spec = cj.variants_chart(frames["variants"]).to_dict()
    assert spec["title"] == "Most common paths"
    assert _marks(spec) == ["bar", "rule", "point"]
    assert spec["hconcat"][0]["encoding"]["y"]["sort"][0] == frames["variants"].iloc[0]["variant"]
    conf = cj.conformance_chart(frames["conformance"]).to_dict()
    assert conf["title"]["subtitle"].endswith("follow the happy path so far")
    assert conf["layer"][0]["encoding"]["yOffset"]["field"] == "kind"
    fr = cj.friction_chart(frames["friction"]).to_dict()
    assert fr["title"] == "Friction points — Mid-market"
    assert fr["transform"][0]["fold"][0] == "tickets_score"
    assert fr["encoding"]["y"]["sort"][0] == "Mid-market · Trial Started → Onboarding Completed"
    everyone = cj.friction_chart(frames["friction_all"]).to_dict()
    assert everyone["title"] == "Friction points"
    assert everyone["encoding"]["y"]["sort"][0] == "Mid-market · Trial Started → Onboarding Completed"  # the highest score


def test_suggestion_and_comparison_charts(frames: dict[str, pd.DataFrame]) -> None:
    spec = cj.suggestions_chart(frames["candidates"]).to_dict()
    assert _marks(spec) == ["circle", "text"]
    assert spec["layer"][1]["transform"] == [{"filter": "datum.selected"}]
    cmp = cj.definition_comparison_chart(frames["comparison"], segment="SMB").to_dict()
    assert cmp["title"] == "Current vs suggested stages"  # the comparison frame has a segment column ("all")
    assert cmp["hconcat"][0]["facet"]["row"]["field"] == "definition"
    assert cmp["hconcat"][1]["spec"]["layer"][0]["encoding"]["x"]["scale"]["type"] == "log"


def test_charts_render_to_svg(frames: dict[str, pd.DataFrame]) -> None:
    import vl_convert as vlc

    for chart in (cj.flow_chart(frames["flow"]), cj.friction_chart(frames["friction"]), cj.funnel_chart(frames["funnel_by"])):
        svg = vlc.vegalite_to_svg(chart.to_json())
        assert svg.startswith("<svg")
