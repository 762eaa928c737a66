"""Charts of drivers, cohorts and segments: they encode what the computations returned."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pandas as pd
import pytest
import vl_convert

import journeylib.charts
from journeylib.charts.common import (
    LABEL_LINE_HEIGHT,
    LABEL_WRAP_CHARS,
    label_step,
    label_width,
    wrap_label,
    wrapped_label_axis,
)
from journeylib.charts.customers import (
    cohort_comparison_chart,
    drivers_forest_chart,
    group_comparison_chart,
    retention_curves_chart,
    segment_profiles_chart,
    segment_selection_chart,
)

TOP = pd.DataFrame(
    {
        "label": ["did not complete setup within 7 days", "had fewer than 3 logins within 7 days"],
        "rank": [1, 2], "rr": [4.1, 1.6], "rr_ci_low": [3.2, 0.9], "rr_ci_high": [5.3, 2.8], "rr_adjusted": [3.8, 1.5],
        "significant": [True, False], "q_value": [1e-8, 0.2], "n_exposed": [412, 300], "n_reference": [1588, 1700],
        "outcome": ["churn", "churn"], "line": ["x", ""],
    }
)


def _layers(spec: dict) -> list[dict]:
    return spec.get("layer", [])


def test_forest_plot_encodes_rr_and_its_interval_on_a_log_scale() -> None:
    spec = drivers_forest_chart(TOP).to_dict()
    assert spec["title"] == "Behaviours and churn: relative risk (95% CI)"
    one, rule, point, adjusted = _layers(spec)
    assert one["encoding"]["x"]["field"] == "x"  # the no-difference line at 1
    assert rule["encoding"]["x"]["field"] == "estimate_low"
    assert rule["encoding"]["x2"]["field"] == "estimate_high"
    assert rule["encoding"]["x"]["title"] == "Relative risk of churn (log scale)"
    assert rule["encoding"]["x"]["scale"]["type"] == "log"
    assert point["encoding"]["x"]["field"] == "estimate_value"
    assert point["encoding"]["y"]["sort"] == TOP["label"].tolist()
    assert adjusted["encoding"]["x"]["field"] == "rr_adjusted"
    assert adjusted["mark"]["shape"] == "diamond"
    (data,) = spec["datasets"].values() if len(spec["datasets"]) == 1 else [v for v in spec["datasets"].values() if len(v) == 2]
    assert {r["significance"] for r in data} == {"significant (FDR)", "not significant"}
    assert [(r["estimate_value"], r["estimate_low"], r["estimate_high"]) for r in data] == [(4.1, 3.2, 5.3), (1.6, 0.9, 2.8)]
    assert drivers_forest_chart(TOP, title="Churn — SMB").to_dict()["title"] == "Churn — SMB"


def test_forest_plot_draws_the_hazard_ratio_when_the_drivers_are_ranked_by_it() -> None:
    cox = TOP.assign(estimate="hazard_ratio", hr=[3.0, 1.2], hr_ci_low=[2.1, 0.8], hr_ci_high=[4.4, 1.9])
    spec = drivers_forest_chart(cox).to_dict()
    assert spec["title"] == "Behaviours and churn: hazard ratio (95% CI)"
    layers = _layers(spec)
    assert len(layers) == 3  # no adjusted-RR diamond on a hazard-ratio axis
    rule = layers[1]
    assert rule["encoding"]["x"]["title"] == "Hazard ratio of churn (Cox model, log scale)"
    (data,) = [v for v in spec["datasets"].values() if len(v) == 2]
    assert [(r["estimate_value"], r["estimate_low"], r["estimate_high"]) for r in data] == [(3.0, 2.1, 4.4), (1.2, 0.8, 1.9)]
    # a risk-ratio table (or one without hazard ratios) keeps the relative risk
    assert "relative risk" in drivers_forest_chart(cox.assign(estimate="risk_ratio")).to_dict()["title"]
    assert "relative risk" in drivers_forest_chart(cox.assign(hr=float("nan"))).to_dict()["title"]


def test_forest_plot_rejects_other_frames() -> None:
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['rr_adjusted'"):
        drivers_forest_chart(TOP.drop(columns=["rr_adjusted"]))
    with pytest.raises(TypeError, match=r"must be the DataFrame returned by journeylib\.customers\.driver_views\.top_drivers_data"):
        drivers_forest_chart([1, 2])  # type: ignore[arg-type]


def test_retention_curves_are_steps_with_a_band() -> None:
    data = pd.DataFrame({"by": "segment", "cohort": ["SMB", "SMB"], "day": [0.0, 7.0], "retention": [1.0, 0.9],
                         "ci_low": [1.0, 0.8], "ci_high": [1.0, 0.95], "at_risk": [10, 9], "churned": [0, 1], "customers": 10})
    spec = retention_curves_chart(data).to_dict()
    band, line = _layers(spec)
    assert band["mark"]["type"] == "area"
    assert band["mark"]["interpolate"] == "step-after"
    assert band["encoding"]["y"]["field"] == "ci_low"
    assert band["encoding"]["y2"]["field"] == "ci_high"
    assert line["mark"]["interpolate"] == "step-after"
    assert line["encoding"]["y"]["field"] == "retention"
    assert spec["title"] == "Retention of paying customers by segment"


def test_cohort_comparison_facets_metrics_and_drops_rows_without_estimates() -> None:
    data = pd.DataFrame({
        "by": "segment", "cohort": ["SMB", "Enterprise", "SMB"], "metric": ["conversion_rate"] * 2 + ["churn_rate"],
        "n": [100, 5, 80], "value": [0.3, float("nan"), 0.2], "ci_low": [0.2, float("nan"), 0.1],
        "ci_high": [0.4, float("nan"), 0.3], "status": ["ok", "below_min_support", "ok"], "test": ["", "", "logrank"],
        "q_value": [float("nan"), float("nan"), 0.01],
    })
    spec = cohort_comparison_chart(data).to_dict()
    assert spec["facet"]["field"] == "panel"
    assert spec["resolve"]["scale"]["y"] == "independent"
    (rows,) = spec["datasets"].values()
    assert [r["cohort"] for r in rows] == ["SMB", "SMB"]
    assert {r["panel"] for r in rows} == {"conversion_rate (not tested)", "churn_rate (q=0.01)"}
    assert spec["title"] == "Cohorts by segment"


def test_segment_charts() -> None:
    prof = pd.DataFrame({"segment": [0, 1], "name": ["power users: many tasks created", "strugglers: few tasks created"],
                         "feature": ["n_task_created_14d"] * 2, "label": ["tasks created"] * 2, "mean": [12.0, 1.0],
                         "median": [11.0, 1.0], "z": [1.2, -0.8], "share": [0.4, 0.6]})
    spec = segment_profiles_chart(prof).to_dict()
    cells, text = _layers(spec)
    assert cells["encoding"]["color"]["field"] == "z"
    assert cells["encoding"]["color"]["scale"]["domainMid"] == 0
    assert text["encoding"]["text"]["field"] == "mean"
    sel = pd.DataFrame({"k": [2, 3], "criterion": "silhouette", "score": [0.3, 0.2], "chosen": [True, False]})
    spec = segment_selection_chart(sel).to_dict()
    assert spec["title"] == "Choosing the number of segments (silhouette)"
    assert spec["layer"][0]["encoding"]["y"]["title"] == "silhouette (higher is better)"
    cmp_ = pd.DataFrame({"comparison": "power users vs churners", "label": ["tasks created", "logins"],
                         "hedges_g": [0.9, float("nan")], "g_ci_low": [0.7, float("nan")], "g_ci_high": [1.1, float("nan")],
                         "mean_a": [10.0, 1.0], "mean_b": [3.0, 1.0], "q_value": [0.001, float("nan")],
                         "significant": [True, False], "status": ["ok", "skipped_constant"]})
    spec = group_comparison_chart(cmp_).to_dict()
    assert spec["title"] == "power users vs churners"
    data = next(v for v in spec["datasets"].values() if v and "label" in v[0])
    assert [r["label"] for r in data] == ["tasks created"]


# -- long labels are never cut --------------------------------------------------------------------------------
LONG = ("Mid-market customers who opened more than three support tickets about billing in their first 14 days "
        "and never invited a second user")


def _svg_texts(spec: dict) -> str:
    svg = vl_convert.vegalite_to_svg(spec)
    return " ".join(re.sub(r"<[^>]+>", " ", t) for t in re.findall(r"<text[^>]*>.*?</text>", svg))


def test_forest_plot_wraps_a_long_label_onto_lines_and_cuts_nothing() -> None:
    top = TOP.assign(label=[LONG, TOP["label"].iloc[1]])
    spec = drivers_forest_chart(top).to_dict()
    axis = _layers(spec)[1]["encoding"]["y"]["axis"]
    assert axis["labelLimit"] == 0  # no limit: nothing is replaced by "…"
    lines = wrap_label(LONG)
    assert len(lines) == 3
    assert " ".join(lines) == LONG
    assert all(len(line) <= LABEL_WRAP_CHARS for line in lines)
    assert json.dumps(lines, ensure_ascii=False) in axis["labelExpr"]
    # the short label is padded to sit in the middle of the 3-line block; rows fit 3 lines
    assert json.dumps(["", TOP["label"].iloc[1]]) in axis["labelExpr"]
    assert spec["height"] == {"step": 3 * LABEL_LINE_HEIGHT + 6}
    assert axis["labelOffset"] == -LABEL_LINE_HEIGHT
    # drawn by Vega (vl-convert, as the reports are): every line whole, no ellipsis anywhere
    texts = _svg_texts(spec)
    assert "…" not in texts
    for line in lines:
        assert html.escape(line, quote=False) in texts


def test_theme_and_every_category_axis_set_no_label_limit() -> None:
    from journeylib.charts.theme import journeylib_theme

    config = journeylib_theme()["config"]
    assert config["axis"]["labelLimit"] == 0
    assert config["legend"]["labelLimit"] == 0
    # no chart module sets a label limit of its own (other than 0)
    for path in Path(journeylib.charts.__file__).parent.glob("*.py"):
        limits = re.findall(r"labelLimit\s*=\s*(\d+)|\"labelLimit\":\s*(\d+)", path.read_text(encoding="utf-8"))
        assert all(int(a or b) == 0 for a, b in limits), (path.name, limits)


def test_short_labels_keep_one_line_and_the_default_row_height() -> None:
    axis = wrapped_label_axis(["Trial", "Paid"]).to_dict()
    assert axis == {"labelLimit": 0}
    assert label_step(["Trial", "Paid"]) == 20
    assert label_step([LONG], minimum=60) == 60
    assert wrap_label("x" * 70) == ["x" * 70]  # a word longer than a line is kept whole (labelLimit 0 shows it)
    assert label_width("x" * 10) > label_width("x" * 9)
