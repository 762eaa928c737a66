"""Charts of drivers, cohorts and behavioural segments.

Each chart takes exactly the frame a computation returned and only encodes it
(STYLE §8): :func:`drivers_forest_chart` draws
:func:`journeylib.customers.driver_views.top_drivers_data`, :func:`retention_curves_chart`
draws :func:`journeylib.customers.cohorts.retention_curves_data`,
:func:`cohort_comparison_chart` draws
:func:`journeylib.customers.cohorts.cohort_metrics_data`, :func:`segment_profiles_chart`
draws ``BehaviouralSegmenter.profiles_``, :func:`segment_selection_chart` draws
``BehaviouralSegmenter.selection_`` and :func:`group_comparison_chart` draws
:func:`journeylib.customers.segments.group_comparison_data`. Fonts and colours come from
the theme (:mod:`journeylib.charts.theme`).
"""

from __future__ import annotations

from typing import Any

import altair as alt
import numpy as np
import pandas as pd

from journeylib.charts import theme as _theme  # noqa: F401  (registers and enables the journeylib theme)
from journeylib.charts.common import label_step, require_columns, wrapped_label_axis
from journeylib.charts.theme import PALETTE

__all__ = [
    "cohort_comparison_chart",
    "drivers_forest_chart",
    "group_comparison_chart",
    "retention_curves_chart",
    "segment_profiles_chart",
    "segment_selection_chart",
]


def drivers_forest_chart(data: pd.DataFrame, *, title: str | None = None) -> alt.LayerChart:
    """Draw a forest plot: the estimate the drivers are ranked by, with its interval, one row per behaviour.

    Parameters
    ----------
    data : pandas.DataFrame
        The result of :func:`journeylib.customers.driver_views.top_drivers_data`.
    title : str, optional
        Title; default ``"Behaviours and <outcome>: relative risk (95% CI)"``.

    Returns
    -------
    altair.LayerChart
        y = behaviour (``label``, in rank order), x = the estimate on a log
        scale with a rule over its interval: the hazard ratio (``hr``,
        ``hr_ci_low``, ``hr_ci_high``) when the rows were ranked and tested by
        a Cox model (``estimate == "hazard_ratio"``), else the relative risk
        (``rr``, ``rr_ci_low``, ``rr_ci_high``) with a diamond at the adjusted
        RR; filled points are significant after FDR control, hollow ones are
        not; a vertical rule at 1 (no difference).

    Raises
    ------
    ValueError
        If *data* lacks the columns of ``top_drivers_data``.

    Examples
    --------
    >>> d = pd.DataFrame({"label": ["did not complete setup within 7 days"], "rank": [1], "rr": [4.1],
    ...     "rr_ci_low": [3.2], "rr_ci_high": [5.3], "rr_adjusted": [3.8], "significant": [True], "q_value": [1e-6],
    ...     "n_exposed": [412], "n_reference": [1588], "outcome": ["churn"], "line": ["..."]})
    >>> drivers_forest_chart(d).to_dict()["title"]
    'Behaviours and churn: relative risk (95% CI)'
    """
    frame = require_columns(
        data,
        ["label", "rank", "rr", "rr_ci_low", "rr_ci_high", "rr_adjusted", "significant", "q_value", "n_exposed",
         "n_reference", "outcome"],
        chart="drivers_forest_chart",
        producer="journeylib.customers.driver_views.top_drivers_data",
    )
    outcome = str(frame["outcome"].iloc[0]) if len(frame) else "the outcome"
    hazard = _ranked_by_hazard(data)
    if hazard:
        frame[["hr", "hr_ci_low", "hr_ci_high"]] = data[["hr", "hr_ci_low", "hr_ci_high"]].to_numpy(dtype=float)
    prefix, name, short = ("hr", "Hazard ratio", "hazard ratio") if hazard else ("rr", "Relative risk", "relative risk")
    frame["estimate_value"] = frame[prefix]
    frame["estimate_low"] = frame[f"{prefix}_ci_low"]
    frame["estimate_high"] = frame[f"{prefix}_ci_high"]
    frame["significance"] = frame["significant"].map({True: "significant (FDR)", False: "not significant"})
    order = frame.sort_values("rank")["label"].tolist()
    y = alt.Y("label:N", sort=order, title=None, axis=wrapped_label_axis(order))
    x_scale = alt.Scale(type="log")
    base = alt.Chart(frame)
    tooltip = [
        alt.Tooltip("label:N", title="Customers"),
        alt.Tooltip("estimate_value:Q", title=name, format=".2f"),
        alt.Tooltip("estimate_low:Q", title="95% CI low", format=".2f"),
        alt.Tooltip("estimate_high:Q", title="95% CI high", format=".2f"),
        *([alt.Tooltip("rr:Q", title="Relative risk (share with the outcome)", format=".2f")] if hazard else
          [alt.Tooltip("rr_adjusted:Q", title="Adjusted RR", format=".2f")]),
        alt.Tooltip("q_value:Q", title="q-value", format=".2g"),
        alt.Tooltip("n_exposed:Q", title="Customers in group", format=","),
        alt.Tooltip("n_reference:Q", title="Customers compared with", format=","),
    ]
    axis_title = f"{name} of {outcome} ({'Cox model, ' if hazard else ''}log scale)"
    rule = base.mark_rule(strokeWidth=2).encode(
        y=y, x=alt.X("estimate_low:Q", scale=x_scale, title=axis_title), x2="estimate_high:Q"
    )
    point = base.mark_point(size=90, filled=True).encode(
        y=y,
        x=alt.X("estimate_value:Q", scale=x_scale),
        shape=alt.Shape("significance:N", title=None,
                        scale=alt.Scale(domain=["significant (FDR)", "not significant"], range=["circle", "square"])),
        color=alt.Color("significance:N", title=None,
                        scale=alt.Scale(domain=["significant (FDR)", "not significant"], range=[PALETTE[0], PALETTE[8]])),
        tooltip=tooltip,
    )
    layers: list[Any] = [alt.Chart(pd.DataFrame({"x": [1.0]})).mark_rule(strokeDash=[4, 4], color="#888888").encode(x="x:Q"),
                         rule, point]
    if not hazard:  # the adjusted RR is a risk ratio: not drawn on a hazard-ratio axis
        layers.append(base.mark_point(shape="diamond", size=70, color=PALETTE[1], filled=False, strokeWidth=2).encode(
            y=y, x=alt.X("rr_adjusted:Q", scale=x_scale), tooltip=tooltip
        ))
    return alt.LayerChart(layer=layers, title=title or f"Behaviours and {outcome}: {short} (95% CI)",
                          height=alt.Step(label_step(order, minimum=24)))


def _ranked_by_hazard(frame: pd.DataFrame) -> bool:
    """Tell whether the drivers were ranked and tested by a hazard ratio (``estimate``) and the rows carry one."""
    if "estimate" not in frame.columns or not {"hr", "hr_ci_low", "hr_ci_high"} <= set(frame.columns) or frame.empty:
        return False
    return bool((frame["estimate"] == "hazard_ratio").all() and np.isfinite(frame["hr"].to_numpy(dtype=float)).any())


def retention_curves_chart(data: pd.DataFrame, *, title: str | None = None) -> alt.LayerChart:
    """Draw Kaplan–Meier retention per cohort with its interval band.

    Parameters
    ----------
    data : pandas.DataFrame
        The result of :func:`journeylib.customers.cohorts.retention_curves_data`.
    title : str, optional
        Title; default ``"Retention of paying customers by <by>"``.

    Returns
    -------
    altair.LayerChart
        x = days since conversion, y = retention (step line), colour =
        cohort, shaded band = interval.

    Raises
    ------
    ValueError
        If *data* lacks the columns of ``retention_curves_data``.
    """
    frame = require_columns(
        data, ["by", "cohort", "day", "retention", "ci_low", "ci_high", "at_risk", "churned", "customers"],
        chart="retention_curves_chart", producer="journeylib.customers.cohorts.retention_curves_data",
    )
    by = str(frame["by"].iloc[0]) if len(frame) else "cohort"
    base = alt.Chart(frame).encode(
        x=alt.X("day:Q", title="Days since conversion"), color=alt.Color("cohort:N", title=by)
    )
    band = base.mark_area(opacity=0.15, interpolate="step-after").encode(y=alt.Y("ci_low:Q"), y2="ci_high:Q")
    line = base.mark_line(interpolate="step-after").encode(
        y=alt.Y("retention:Q", title="Still paying (Kaplan–Meier)", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%")),
        tooltip=[
            alt.Tooltip("cohort:N", title=by),
            alt.Tooltip("day:Q", title="Day"),
            alt.Tooltip("retention:Q", title="Retention", format=".1%"),
            alt.Tooltip("ci_low:Q", title="95% CI low", format=".1%"),
            alt.Tooltip("ci_high:Q", title="95% CI high", format=".1%"),
            alt.Tooltip("at_risk:Q", title="At risk", format=","),
            alt.Tooltip("customers:Q", title="Converted customers", format=","),
        ],
    )
    return alt.LayerChart(layer=[band, line], title=title or f"Retention of paying customers by {by}")


def cohort_comparison_chart(data: pd.DataFrame, *, title: str | None = None, columns: int = 3) -> alt.FacetChart:
    """Draw each metric per cohort as bars with interval whiskers, one panel per metric.

    Parameters
    ----------
    data : pandas.DataFrame
        The result of :func:`journeylib.customers.cohorts.cohort_metrics_data`
        (optionally with fewer metrics).
    title : str, optional
        Title; default ``"Cohorts by <by>"``.
    columns : int, default 3
        Panels per row.

    Returns
    -------
    altair.FacetChart
        One panel per ``metric`` (independent scales): bar = ``value``,
        whisker = interval; rows not estimated are absent (their ``reason``
        is in the table); the panel title carries the omnibus q-value.

    Raises
    ------
    ValueError
        If *data* lacks the columns of ``cohort_metrics_data``.
    """
    frame = require_columns(
        data, ["by", "cohort", "metric", "n", "value", "ci_low", "ci_high", "status", "test", "q_value"],
        chart="cohort_comparison_chart", producer="journeylib.customers.cohorts.cohort_metrics_data",
    )
    by = str(frame["by"].iloc[0]) if len(frame) else "cohort"
    frame["panel"] = [
        f"{m} (q={q:.2g})" if pd.notna(q) else f"{m} (not tested)" for m, q in zip(frame["metric"], frame["q_value"], strict=True)
    ]
    frame = frame[frame["status"] == "ok"]
    base = alt.Chart().encode(x=alt.X("cohort:N", title=None, axis=alt.Axis(labelAngle=-30)))
    bars = base.mark_bar().encode(
        y=alt.Y("value:Q", title=None),
        color=alt.Color("cohort:N", title=by, legend=None),
        tooltip=[
            alt.Tooltip("cohort:N", title=by),
            alt.Tooltip("metric:N", title="Metric"),
            alt.Tooltip("value:Q", title="Value", format=".3g"),
            alt.Tooltip("ci_low:Q", title="95% CI low", format=".3g"),
            alt.Tooltip("ci_high:Q", title="95% CI high", format=".3g"),
            alt.Tooltip("n:Q", title="Customers", format=","),
            alt.Tooltip("test:N", title="Test"),
            alt.Tooltip("q_value:Q", title="q-value", format=".2g"),
        ],
    )
    whiskers = base.mark_rule(color="#333333").encode(y="ci_low:Q", y2="ci_high:Q")
    return (
        alt.layer(bars, whiskers, data=frame)
        .properties(width=200, height=160)
        .facet(facet=alt.Facet("panel:N", title=None), columns=columns)
        .resolve_scale(x="independent", y="independent")
        .properties(title=title or f"Cohorts by {by}")
    )


def segment_profiles_chart(data: pd.DataFrame, *, title: str | None = None) -> alt.LayerChart:
    """Draw what distinguishes each behavioural segment: a heat map of standardised means.

    Parameters
    ----------
    data : pandas.DataFrame
        ``BehaviouralSegmenter.profiles_``.
    title : str, optional
        Title; default ``"What distinguishes each segment (standardised mean)"``.

    Returns
    -------
    altair.LayerChart
        Rows = segment ``name``, columns = behaviour ``label``, colour = ``z``
        (diverging around 0 = the average customer), text = ``mean`` in
        original units.

    Raises
    ------
    ValueError
        If *data* lacks the columns of ``profiles_``.
    """
    frame = require_columns(data, ["name", "feature", "label", "mean", "median", "z", "share"],
                            chart="segment_profiles_chart", producer="BehaviouralSegmenter.profiles_")
    base = alt.Chart(frame).encode(
        x=alt.X("label:N", title=None, axis=alt.Axis(labelAngle=-35, labelLimit=0)),
        y=alt.Y("name:N", title=None, axis=wrapped_label_axis(frame["name"].unique())),
    )
    cells = base.mark_rect().encode(
        color=alt.Color("z:Q", title="Std. mean", scale=alt.Scale(scheme="blueorange", domainMid=0)),
        tooltip=[
            alt.Tooltip("name:N", title="Segment"),
            alt.Tooltip("label:N", title="Behaviour"),
            alt.Tooltip("mean:Q", title="Mean", format=".3g"),
            alt.Tooltip("median:Q", title="Median", format=".3g"),
            alt.Tooltip("z:Q", title="Standardised mean", format=".2f"),
            alt.Tooltip("share:Q", title="Share of customers", format=".0%"),
        ],
    )
    text = base.mark_text(fontSize=10).encode(
        text=alt.Text("mean:Q", format=".2g"),
        color=alt.condition("abs(datum.z) > 0.6", alt.value("white"), alt.value("#222222")),
    )
    return alt.LayerChart(
        layer=[cells, text], title=title or "What distinguishes each segment (standardised mean)", height=alt.Step(label_step(frame["name"].unique(), minimum=36)),
        width=alt.Step(60),
    )


def segment_selection_chart(data: pd.DataFrame, *, title: str | None = None) -> alt.LayerChart:
    """Draw the criterion for each number of segments tried, the chosen one highlighted.

    Parameters
    ----------
    data : pandas.DataFrame
        ``BehaviouralSegmenter.selection_``.
    title : str, optional
        Title; default ``"Choosing the number of segments (<criterion>)"``.

    Returns
    -------
    altair.LayerChart
        x = k, y = score (line and points), the chosen k as a larger point.

    Raises
    ------
    ValueError
        If *data* lacks ``k``, ``criterion``, ``score`` or ``chosen``.
    """
    frame = require_columns(data, ["k", "criterion", "score", "chosen"], chart="segment_selection_chart",
                            producer="BehaviouralSegmenter.selection_")
    crit = str(frame["criterion"].iloc[0]) if len(frame) else "criterion"
    better = "lower is better" if crit == "bic" else "higher is better"
    base = alt.Chart(frame).encode(x=alt.X("k:O", title="Number of segments"),
                                   y=alt.Y("score:Q", title=f"{crit} ({better})", scale=alt.Scale(zero=False)))
    line = base.mark_line(point=True)
    chosen = base.transform_filter(alt.datum.chosen).mark_point(size=160, filled=True, color=PALETTE[1])
    return alt.LayerChart(layer=[line, chosen], title=title or f"Choosing the number of segments ({crit})", width=320, height=200)


def group_comparison_chart(data: pd.DataFrame, *, title: str | None = None) -> alt.LayerChart:
    """Draw standardised differences (Hedges' g, 95% CI) between two groups, per behaviour.

    Parameters
    ----------
    data : pandas.DataFrame
        The result of :func:`journeylib.customers.segments.group_comparison_data`.
    title : str, optional
        Title; default the ``comparison`` column (e.g. "power users vs churners").

    Returns
    -------
    altair.LayerChart
        y = behaviour, x = ``hedges_g`` with a rule for its interval; rows
        not compared are absent.

    Raises
    ------
    ValueError
        If *data* lacks the columns of ``group_comparison_data``.
    """
    frame = require_columns(
        data, ["comparison", "label", "hedges_g", "g_ci_low", "g_ci_high", "mean_a", "mean_b", "q_value", "significant", "status"],
        chart="group_comparison_chart", producer="journeylib.customers.segments.group_comparison_data",
    )
    name = str(frame["comparison"].iloc[0]) if len(frame) else "A vs B"
    frame = frame[frame["status"] == "ok"]
    order = frame.sort_values("hedges_g", ascending=False)["label"].tolist()
    y = alt.Y("label:N", sort=order, title=None, axis=wrapped_label_axis(order))
    base = alt.Chart(frame)
    rule = base.mark_rule(strokeWidth=2).encode(y=y, x=alt.X("g_ci_low:Q", title="Standardised difference (Hedges' g)"),
                                                x2="g_ci_high:Q")
    point = base.mark_point(filled=True, size=80).encode(
        y=y, x="hedges_g:Q",
        tooltip=[
            alt.Tooltip("label:N", title="Behaviour"),
            alt.Tooltip("mean_a:Q", title="Mean, first group", format=".3g"),
            alt.Tooltip("mean_b:Q", title="Mean, second group", format=".3g"),
            alt.Tooltip("hedges_g:Q", title="Hedges' g", format=".2f"),
            alt.Tooltip("q_value:Q", title="q-value", format=".2g"),
        ],
    )
    zero = alt.Chart(pd.DataFrame({"x": [0.0]})).mark_rule(strokeDash=[4, 4], color="#888888").encode(x="x:Q")
    return alt.LayerChart(layer=[zero, rule, point], title=title or name, height=alt.Step(label_step(order, minimum=22)))
