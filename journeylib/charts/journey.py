"""Charts of the journey map: funnel, time to convert, transitions, flow, variants, friction, suggestions.

Each ``<metric>_chart(data, *, title=None, segment=None)`` takes exactly the
frame its ``_data`` function returned (in :mod:`journeylib.journey.stages`,
:mod:`journeylib.journey.paths`, :mod:`journeylib.journey.transitions`,
:mod:`journeylib.journey.friction`, :mod:`journeylib.journey.suggest`) and only encodes it; positions (the flow's node
and band coordinates) and statistics come computed. Fonts and colours come
from the theme of :mod:`journeylib.charts.theme`.

Titles end with `` — <segment>`` when the data is filtered to one segment:
read from the frame's ``segment`` column when it has one, else from the
``segment`` argument (the funnel and time tables of :mod:`journeylib.journey.stages`
carry no segment column, so callers pass the segment they filtered on).
"""

from __future__ import annotations

from typing import Any

import altair as alt
import pandas as pd

from journeylib.charts import theme as _theme  # noqa: F401  (registers and enables the journeylib theme)
from journeylib.charts.common import label_step, require_columns, scoped_title, wrapped_label_axis
from journeylib.charts.theme import PALETTE

__all__ = [
    "conformance_chart",
    "definition_comparison_chart",
    "flow_chart",
    "friction_chart",
    "funnel_chart",
    "suggestions_chart",
    "time_to_convert_chart",
    "transitions_chart",
    "variants_chart",
]

_OUTCOME_COLORS = {"converted": PALETTE[2], "censored": "#bbbbbb", "dropped": PALETTE[5]}
#: Stage colours of the flow: the palette without the orange kept for "dropped".
_STAGE_COLORS = [c for i, c in enumerate(PALETTE) if i != 5]
_END_COLORS = {"still active": "#9ecae1", "dropped": PALETTE[5], "churned": "#7f2704"}


def _title(base: str, data: pd.DataFrame, segment: str | None) -> str:
    if "segment" in data.columns:
        return scoped_title(base, data)
    if segment not in (None, "", "all"):
        return f"{base} — {segment}"
    return base


def _stage_order(data: pd.DataFrame, name: str = "stage", order: str = "stage_order") -> list[str]:
    frame = data[[name, order]].drop_duplicates().sort_values(order)
    return [str(v) for v in frame[name]]


# -- funnel ---------------------------------------------------------------------------------------
def funnel_chart(data: pd.DataFrame, *, title: str | None = None, segment: str | None = None) -> alt.TopLevelSpec:
    """Draw stage-to-stage conversion with Wilson intervals, next to who converted, dropped or is still on the way.

    Parameters
    ----------
    data : pandas.DataFrame
        The result of :func:`journeylib.journey.stages.funnel_data` (optionally with ``by``).
    title : str, optional
        Default ``"Journey funnel"``; the segment is appended when filtered.
    segment : str, optional
        The segment *data* was filtered on (for the title).

    Returns
    -------
    altair.HConcatChart
        Left: ``conversion_rate`` per stage (stage order) as a point with its
        ``ci_low``–``ci_high`` bar, coloured by ``group``. Right: the
        ``eligible`` customers of each stage split into ``converted``,
        ``dropped`` and ``censored`` (still in progress: not counted as
        drop-offs), stacked.

    Raises
    ------
    ValueError
        If *data* lacks the columns of ``funnel_data``.
    """
    frame = require_columns(data, ["group", "stage", "stage_order", "eligible", "converted", "dropped", "censored", "conversion_rate",
                                    "ci_low", "ci_high", "reached_share", "share_of_start"], chart="funnel_chart", producer="journeylib.journey.stages.funnel_data")
    frame["stage"] = frame["stage"].astype(str)
    order = _stage_order(frame)
    several = frame["group"].nunique() > 1
    color = alt.Color("group:N", title="Group") if several else alt.value(PALETTE[0])
    y = alt.Y("stage:N", sort=order, title=None)
    offset: dict[str, Any] = {"yOffset": alt.YOffset("group:N")} if several else {}
    tooltip = [
        alt.Tooltip("group:N", title="Group"), alt.Tooltip("stage:N", title="Stage"),
        alt.Tooltip("conversion_rate:Q", title="Conversion (known outcomes)", format=".1%"),
        alt.Tooltip("ci_low:Q", title="95% CI low", format=".1%"), alt.Tooltip("ci_high:Q", title="95% CI high", format=".1%"),
        alt.Tooltip("eligible:Q", title="Eligible", format=","), alt.Tooltip("converted:Q", title="Converted", format=","),
        alt.Tooltip("dropped:Q", title="Dropped", format=","), alt.Tooltip("censored:Q", title="Still in progress", format=","),
        alt.Tooltip("share_of_start:Q", title="Share of start", format=".1%"),
    ]
    base = alt.Chart(frame).encode(y=y, tooltip=tooltip, **offset)
    rate = base.mark_rule(strokeWidth=2).encode(
        x=alt.X("ci_low:Q", title="Conversion rate (95% CI)", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%")),
        x2="ci_high:Q", color=color,
    ) + base.mark_point(filled=True, size=70).encode(x="conversion_rate:Q", color=color)
    counts = (
        alt.Chart(frame)
        .transform_fold(["converted", "dropped", "censored"], as_=["outcome", "customers"])
        .mark_bar()
        .encode(
            y=y,
            x=alt.X("customers:Q", title="Eligible customers", stack="zero"),
            color=alt.Color("outcome:N", title="Outcome", sort=list(_OUTCOME_COLORS),
                            scale=alt.Scale(domain=list(_OUTCOME_COLORS), range=list(_OUTCOME_COLORS.values()))),
            order=alt.Order("outcome_order:Q"),
            tooltip=[alt.Tooltip("group:N", title="Group"), alt.Tooltip("stage:N", title="Stage"),
                     alt.Tooltip("outcome:N", title="Outcome"), alt.Tooltip("customers:Q", title="Customers", format=",")],
            **offset,
        )
        .transform_calculate(outcome_order="indexof(['converted', 'dropped', 'censored'], datum.outcome)")
    )
    return (
        alt.hconcat(rate.properties(width=320), counts.properties(width=300))
        .resolve_scale(color="independent")
        .properties(title=title or _title("Journey funnel", data, segment))
    )


# -- time to convert ------------------------------------------------------------------------------
def time_to_convert_chart(data: pd.DataFrame, *, title: str | None = None, segment: str | None = None) -> alt.TopLevelSpec:
    """Draw the distribution of days between consecutive stages as box-like ranges.

    Parameters
    ----------
    data : pandas.DataFrame
        The result of :func:`journeylib.journey.stages.time_to_convert_data`.
    title : str, optional
        Default ``"Days to reach each stage from the previous one"``.
    segment : str, optional
        The segment *data* was filtered on (for the title).

    Returns
    -------
    altair.LayerChart
        Per transition (``to_stage``, in stage order): a thin rule from
        ``p25`` to ``p90``, a box from ``p25`` to ``p75`` and a tick at the
        ``median``; coloured by ``group``; x on a symlog scale of days.
    """
    frame = require_columns(data, ["group", "from_stage", "to_stage", "stage_order", "n", "p25", "median", "p75", "p90", "mean"],
                            chart="time_to_convert_chart", producer="journeylib.journey.stages.time_to_convert_data")
    frame["transition"] = frame["from_stage"].astype(str) + " → " + frame["to_stage"].astype(str)
    order = _stage_order(frame, "transition")
    several = frame["group"].nunique() > 1
    color = alt.Color("group:N", title="Group") if several else alt.value(PALETTE[0])
    offset: dict[str, Any] = {"yOffset": alt.YOffset("group:N")} if several else {}
    x = alt.X("p25:Q", title="Days (p25–p75 box, median tick, whisker to p90)", scale=alt.Scale(type="symlog"),
              axis=alt.Axis(values=[0, 1, 2, 5, 10, 20, 50, 100, 200, 365]))
    base = alt.Chart(frame).encode(
        y=alt.Y("transition:N", sort=order, title=None),
        tooltip=[alt.Tooltip("group:N", title="Group"), alt.Tooltip("transition:N", title="Transition"),
                 alt.Tooltip("n:Q", title="Customers who made it", format=","),
                 *[alt.Tooltip(f"{c}:Q", title=c, format=".1f") for c in ("p25", "median", "p75", "p90", "mean")]],
        **offset,
    )
    whisker = base.mark_rule().encode(x=x, x2="p90:Q", color=color)
    box = base.mark_bar(height={"band": 0.6} if not several else 8, opacity=0.55).encode(x="p25:Q", x2="p75:Q", color=color)
    med = base.mark_tick(thickness=3, size=18, color="#222222").encode(x="median:Q")
    return alt.layer(whisker, box, med).properties(title=title or _title("Days to reach each stage from the previous one", data, segment))


# -- transitions ----------------------------------------------------------------------------------
def transitions_chart(data: pd.DataFrame, *, title: str | None = None, segment: str | None = None) -> alt.TopLevelSpec:
    """Draw a transition matrix as a heatmap of probabilities.

    Parameters
    ----------
    data : pandas.DataFrame
        The result of :func:`journeylib.journey.transitions.stage_transitions_data` or
        :func:`journeylib.journey.transitions.event_transitions_data`.
    title : str, optional
        Default ``"Where customers go next"``; the segment is appended.
    segment : str, optional
        Used only when *data* has no ``segment`` column.

    Returns
    -------
    altair.LayerChart
        Rows ``from_node``, columns ``to_node`` (stage order, or the data's
        order for events), colour = ``probability`` (out of each row),
        labels with the probability; the tooltip adds counts and median days.
    """
    frame = require_columns(data, ["from_node", "to_node", "kind", "customers", "from_total", "probability", "ci_low", "ci_high", "median_days"],
                            chart="transitions_chart", producer="journeylib.journey.transitions.stage_transitions_data or event_transitions_data")
    if "from_order" in data.columns and "to_order" in data.columns:
        rows = list(dict.fromkeys(data.sort_values("from_order")["from_node"].astype(str)))
        cols = list(dict.fromkeys(data.sort_values("to_order")["to_node"].astype(str)))
    else:
        rows = list(dict.fromkeys(frame["from_node"].astype(str)))
        cols = [c for c in rows if c != "start"] + [c for c in dict.fromkeys(frame["to_node"].astype(str)) if c not in rows]
    count = "transitions" if "transitions" in data.columns else "customers"
    if count not in frame.columns:
        frame[count] = data[count]
    base = alt.Chart(frame).encode(
        x=alt.X("to_node:N", sort=cols, title="To", axis=alt.Axis(labelAngle=-40)),
        y=alt.Y("from_node:N", sort=rows, title="From"),
        tooltip=[alt.Tooltip("from_node:N", title="From"), alt.Tooltip("to_node:N", title="To"),
                 alt.Tooltip("probability:Q", title="Probability", format=".1%"),
                 alt.Tooltip("ci_low:Q", title="95% CI low", format=".1%"), alt.Tooltip("ci_high:Q", title="95% CI high", format=".1%"),
                 alt.Tooltip(f"{count}:Q", title=count.capitalize(), format=","), alt.Tooltip("from_total:Q", title="Out of", format=","),
                 alt.Tooltip("median_days:Q", title="Median days", format=".2f")],
    )
    heat = base.mark_rect().encode(color=alt.Color("probability:Q", title="Probability", scale=alt.Scale(scheme="blues", domain=[0, 1])))
    text = base.mark_text(fontSize=10).encode(
        text=alt.Text("probability:Q", format=".0%"),
        color=alt.condition("datum.probability > 0.5", alt.value("white"), alt.value("#222222")),
    )
    return alt.layer(heat, text).properties(title=title or _title("Where customers go next", data, segment))


# -- flow -----------------------------------------------------------------------------------------
def flow_chart(data: pd.DataFrame, *, title: str | None = None, segment: str | None = None) -> alt.TopLevelSpec:
    """Draw the Sankey-style flow laid out by :func:`journeylib.journey.transitions.flow_data`.

    Parameters
    ----------
    data : pandas.DataFrame
        The result of ``flow_data``.
    title : str, optional
        Default ``"Customer flow through the milestones"``.
    segment : str, optional
        Used only when *data* has no ``segment`` column.

    Returns
    -------
    altair.LayerChart
        Link bands as areas (``x``, ``y``–``y2`` per point, one band per
        ``link_id``, coloured by target node), node rectangles (``x``–``x2``,
        ``y``–``y2``, coloured by node) and node labels; y runs down from 0.
    """
    frame = require_columns(data, ["element", "step", "node", "node_kind", "node_order", "target", "link_id", "point", "customers", "share", "x", "x2", "y", "y2", "label"],
                            chart="flow_chart", producer="journeylib.journey.transitions.flow_data")
    nodes = frame[frame["element"] == "node"]
    links = frame[frame["element"] == "link"]
    # colours keyed on node_order, so a stage keeps its colour whichever other stages a selection has
    keyed = nodes[["node", "node_kind", "node_order"]].drop_duplicates("node").sort_values("node_order")
    domain = [str(n) for n in keyed["node"]]
    rng = [
        _END_COLORS.get(str(n), "#888888") if kind == "end" else _STAGE_COLORS[int(order) % len(_STAGE_COLORS)]
        for n, kind, order in zip(keyed["node"], keyed["node_kind"], keyed["node_order"], strict=True)
    ]
    scale = alt.Scale(domain=domain, range=rng)
    y_scale = alt.Scale(reverse=True, zero=True, nice=False)
    xs = alt.Scale(domain=[-0.05, float(frame["x"].max()) + 0.6], nice=False)
    band = alt.Chart(links).mark_area(opacity=0.35, interpolate="linear").encode(
        x=alt.X("x:Q", scale=xs, title="Step (milestones in the order met)", axis=alt.Axis(tickMinStep=1, format="d")),
        y=alt.Y("y:Q", scale=y_scale, axis=None),
        y2="y2:Q",
        detail="link_id:N",
        color=alt.Color("target:N", scale=scale, legend=None),
        tooltip=[alt.Tooltip("node:N", title="From"), alt.Tooltip("target:N", title="To"),
                 alt.Tooltip("customers:Q", title="Customers", format=","), alt.Tooltip("share:Q", title="Share of start", format=".1%")],
    )
    rect = alt.Chart(nodes).mark_rect(stroke="white").encode(
        x="x:Q", x2="x2:Q", y=alt.Y("y:Q", scale=y_scale, axis=None), y2="y2:Q",
        color=alt.Color("node:N", scale=scale, title="Milestone / end"),
        tooltip=[alt.Tooltip("step:Q", title="Step"), alt.Tooltip("node:N", title="Node"),
                 alt.Tooltip("customers:Q", title="Customers", format=","), alt.Tooltip("share:Q", title="Share of start", format=".1%")],
    )
    label = alt.Chart(nodes).mark_text(align="left", dx=3, fontSize=10, color="#222222").encode(
        x="x2:Q", y=alt.Y("ymid:Q", scale=y_scale, axis=None), text="label:N"
    ).transform_calculate(ymid="(datum.y + datum.y2) / 2")
    return alt.layer(band, rect, label).properties(
        width=760, height=380, title=title or _title("Customer flow through the milestones", data, segment)
    )


# -- variants -------------------------------------------------------------------------------------
def variants_chart(data: pd.DataFrame, *, title: str | None = None, segment: str | None = None) -> alt.TopLevelSpec:
    """Draw the most common paths: their share, and their churn and conversion rates with intervals.

    Parameters
    ----------
    data : pandas.DataFrame
        The result of :func:`journeylib.journey.paths.variants_data`.
    title : str, optional
        Default ``"Most common paths"``.
    segment : str, optional
        Used only when *data* has no ``segment`` column.

    Returns
    -------
    altair.HConcatChart
        Left: ``share`` per ``variant`` (in ``rank`` order), coloured by
        ``follows_happy_path``. Right: ``churn_rate`` and
        ``conversion_rate`` points with their Wilson intervals.
    """
    frame = require_columns(data, ["rank", "variant", "customers", "share", "follows_happy_path", "churn_rate", "churn_ci_low", "churn_ci_high",
                                    "conversion_rate", "conversion_ci_low", "conversion_ci_high"], chart="variants_chart", producer="journeylib.journey.paths.variants_data")
    order = list(frame.sort_values("rank")["variant"].astype(str))
    y = alt.Y("variant:N", sort=order, title=None, axis=wrapped_label_axis(order))
    share = alt.Chart(frame).mark_bar().encode(
        y=y, x=alt.X("share:Q", title="Share of customers", axis=alt.Axis(format="%")),
        color=alt.Color("follows_happy_path:N", title="Follows the happy path", scale=alt.Scale(domain=[True, False], range=[PALETTE[2], PALETTE[8]])),
        tooltip=[alt.Tooltip("variant:N", title="Path"), alt.Tooltip("customers:Q", title="Customers", format=","),
                 alt.Tooltip("share:Q", title="Share", format=".1%")],
    )
    long_cols = {"churn": ("churn_rate", "churn_ci_low", "churn_ci_high"), "conversion": ("conversion_rate", "conversion_ci_low", "conversion_ci_high")}
    parts = []
    for name, (r, lo, hi) in long_cols.items():
        part = frame[["variant", "rank", r, lo, hi]].rename(columns={r: "rate", lo: "low", hi: "high"})
        part["outcome"] = name
        parts.append(part)
    rates = pd.concat(parts, ignore_index=True)
    y_bare = alt.Y("variant:N", sort=order, title=None, axis=alt.Axis(labels=False, ticks=False))
    base = alt.Chart(rates).encode(
        y=y_bare, yOffset=alt.YOffset("outcome:N"),
        color=alt.Color("outcome:N", title="Outcome", scale=alt.Scale(domain=["conversion", "churn"], range=[PALETTE[0], PALETTE[5]])),
        tooltip=[alt.Tooltip("variant:N", title="Path"), alt.Tooltip("outcome:N", title="Outcome"),
                 alt.Tooltip("rate:Q", title="Rate", format=".1%"), alt.Tooltip("low:Q", title="95% CI low", format=".1%"),
                 alt.Tooltip("high:Q", title="95% CI high", format=".1%")],
    )
    rate = base.mark_rule(strokeWidth=2).encode(
        x=alt.X("low:Q", title="Share converted or churned by the report date (95% CI)", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%")), x2="high:Q"
    ) + base.mark_point(filled=True).encode(x="rate:Q")
    height = label_step(order, minimum=26) * len(order)
    return (
        alt.hconcat(share.properties(width=220, height=height), alt.layer(rate).properties(width=240, height=height), spacing=8)
        .resolve_scale(color="independent")
        .properties(title=title or _title("Most common paths", data, segment))
    )


# -- conformance ----------------------------------------------------------------------------------
def conformance_chart(data: pd.DataFrame, *, title: str | None = None, segment: str | None = None) -> alt.TopLevelSpec:
    """Draw where and how customers deviate from the happy path.

    Parameters
    ----------
    data : pandas.DataFrame
        The result of :func:`journeylib.journey.paths.conformance_data`.
    title : str, optional
        Default ``"Deviations from the happy path"``.
    segment : str, optional
        Used only when *data* has no ``segment`` column.

    Returns
    -------
    altair.LayerChart
        One bar per stage × ``kind`` (skipped, reordered, looped) at
        ``rate`` with its Wilson interval; the followed share is in the
        subtitle.
    """
    frame = require_columns(data, ["stage", "stage_order", "kind", "customers", "eligible", "rate", "ci_low", "ci_high", "share", "detail"],
                            chart="conformance_chart", producer="journeylib.journey.paths.conformance_data")
    followed = frame[frame["kind"] == "followed"]
    dev = frame[frame["kind"] != "followed"]
    order = _stage_order(dev)
    base = alt.Chart(dev).encode(
        y=alt.Y("stage:N", sort=order, title=None), yOffset=alt.YOffset("kind:N"),
        color=alt.Color("kind:N", title="Deviation", scale=alt.Scale(domain=["skipped", "reordered", "looped"], range=[PALETTE[5], PALETTE[1], PALETTE[3]])),
        tooltip=[alt.Tooltip("stage:N", title="Stage"), alt.Tooltip("kind:N", title="Deviation"),
                 alt.Tooltip("customers:Q", title="Customers", format=","), alt.Tooltip("eligible:Q", title="Out of", format=","),
                 alt.Tooltip("rate:Q", title="Rate", format=".1%"), alt.Tooltip("detail:N", title="Detail")],
    )
    bars = base.mark_bar().encode(x=alt.X("rate:Q", title="Rate among customers for whom it was possible (95% CI)", axis=alt.Axis(format="%")))
    err = base.mark_rule(color="#222222").encode(x="ci_low:Q", x2="ci_high:Q")
    sub = f"{float(followed['rate'].iloc[0]):.0%} follow the happy path so far" if len(followed) else ""
    return alt.layer(bars, err).properties(
        title=alt.TitleParams(title or _title("Deviations from the happy path", data, segment), subtitle=sub)
    )


# -- friction -------------------------------------------------------------------------------------
def friction_chart(data: pd.DataFrame, *, title: str | None = None, segment: str | None = None) -> alt.TopLevelSpec:
    """Draw the ranked friction points, each bar split into the evidence that makes its score.

    Parameters
    ----------
    data : pandas.DataFrame
        The result of :func:`journeylib.journey.friction.friction_data`.
    title : str, optional
        Default ``"Friction points"``; the segment is appended when *data*
        holds one group other than ``all``.
    segment : str, optional
        Overrides the group read from *data* for the title.

    Returns
    -------
    altair.Chart
        One horizontal bar per point (``group · stage → next_stage``, in
        the data's order: highest score first), stacked by the evidence items' ``*_score``
        contributions; the tooltip shows the statement.
    """
    from journeylib.journey.friction import EVIDENCE

    frame = require_columns(data, ["group", "rank", "stage", "next_stage", "score", "statement", *[f"{e}_score" for e in EVIDENCE]],
                            chart="friction_chart", producer="journeylib.journey.friction.friction_data")
    frame["point"] = frame["group"].astype(str) + " · " + frame["stage"].astype(str) + " → " + frame["next_stage"].astype(str)
    order = list(frame["point"])  # friction_data's order: highest score first
    groups = frame["group"].dropna().unique()
    seg = segment if segment is not None else (groups[0] if len(groups) == 1 and groups[0] != "all" else None)
    labels = {f"{e}_score": e.replace("_", " ") for e in EVIDENCE}
    return (
        alt.Chart(frame)
        .transform_fold([f"{e}_score" for e in EVIDENCE], as_=["evidence_key", "contribution"])
        .transform_filter("datum.contribution > 0")
        .transform_calculate(evidence="replace(replace(datum.evidence_key, '_score', ''), '_', ' ')")
        .mark_bar()
        .encode(
            y=alt.Y("point:N", sort=order, title=None, axis=wrapped_label_axis(order)),
            x=alt.X("contribution:Q", title="Score (sum of log2 ratios of the evidence passing the FDR threshold)", stack="zero"),
            color=alt.Color("evidence:N", title="Evidence", sort=list(labels.values())),
            tooltip=[alt.Tooltip("point:N", title="Friction point"), alt.Tooltip("evidence:N", title="Evidence"),
                     alt.Tooltip("contribution:Q", title="Contribution", format=".2f"), alt.Tooltip("score:Q", title="Score", format=".2f"),
                     alt.Tooltip("statement:N", title="Statement")],
        )
        .properties(title=title or (f"Friction points — {seg}" if seg else "Friction points"), height=alt.Step(label_step(order)))
    )


# -- suggestions and the comparison ---------------------------------------------------------------
def suggestions_chart(data: pd.DataFrame, *, title: str | None = None, segment: str | None = None) -> alt.TopLevelSpec:
    """Draw candidate milestones: support against information gain, the picked ones labelled.

    Parameters
    ----------
    data : pandas.DataFrame
        The result of :func:`journeylib.journey.suggest.suggest_milestones_data`.
    title : str, optional
        Default ``"Candidate milestones"``.
    segment : str, optional
        The segment *data* was filtered on (for the title).

    Returns
    -------
    altair.LayerChart
        One point per candidate (x = ``support``, y = ``information_gain``,
        size = ``lift``), picked candidates coloured and labelled with their
        ``order`` and ``label``.
    """
    frame = require_columns(data, ["label", "event", "support", "information_gain", "lift", "lift_ci_low", "lift_ci_high", "median_days", "q_value", "selected", "order"],
                            chart="suggestions_chart", producer="journeylib.journey.suggest.suggest_milestones_data")
    frame["tag"] = frame["order"].astype(str) + ". " + frame["label"]
    base = alt.Chart(frame).encode(
        x=alt.X("support:Q", title="Support (share of customers who reach it)", axis=alt.Axis(format="%")),
        y=alt.Y("information_gain:Q", title="Information gain about the outcome (bits)"),
        tooltip=[alt.Tooltip("label:N", title="Candidate"), alt.Tooltip("support:Q", title="Support", format=".1%"),
                 alt.Tooltip("median_days:Q", title="Median day reached", format=".1f"),
                 alt.Tooltip("lift:Q", title="Lift", format=".2f"), alt.Tooltip("lift_ci_low:Q", title="Lift 95% CI low", format=".2f"),
                 alt.Tooltip("lift_ci_high:Q", title="Lift 95% CI high", format=".2f"), alt.Tooltip("q_value:Q", title="q", format=".2g")],
    )
    points = base.mark_circle(opacity=0.7).encode(
        color=alt.Color("selected:N", title="Picked", scale=alt.Scale(domain=[True, False], range=[PALETTE[5], "#bbbbbb"])),
        size=alt.Size("lift:Q", title="Lift", scale=alt.Scale(range=[20, 300])),
    )
    text = base.transform_filter("datum.selected").mark_text(align="left", dx=8, fontSize=11).encode(text="tag:N")
    return alt.layer(points, text).properties(title=title or _title("Candidate milestones", data, segment))


def definition_comparison_chart(data: pd.DataFrame, *, title: str | None = None, segment: str | None = None) -> alt.TopLevelSpec:
    """Draw the current and the suggested funnels side by side, with each stage's lift.

    Parameters
    ----------
    data : pandas.DataFrame
        The result of :func:`journeylib.journey.suggest.compare_definitions_data`.
    title : str, optional
        Default ``"Current vs suggested stages"``.
    segment : str, optional
        Used only when *data* has no ``segment`` column.

    Returns
    -------
    altair.HConcatChart
        Per definition (column), bars of ``share_of_start`` per stage, and
        points of ``lift`` with their interval (log scale).
    """
    frame = require_columns(data, ["definition", "stage", "stage_order", "rule", "reached", "share_of_start", "conversion_rate", "lift", "lift_ci_low", "lift_ci_high"],
                            chart="definition_comparison_chart", producer="journeylib.journey.suggest.compare_definitions_data")
    frame["stage_label"] = frame["stage_order"].astype(str) + ". " + frame["stage"].astype(str)
    tooltip = [alt.Tooltip("definition:N", title="Definition"), alt.Tooltip("stage:N", title="Stage"), alt.Tooltip("rule:N", title="Rule"),
               alt.Tooltip("reached:Q", title="Reached", format=","), alt.Tooltip("share_of_start:Q", title="Share of start", format=".1%"),
               alt.Tooltip("lift:Q", title="Lift", format=".2f")]
    stage_labels = frame["stage_label"].unique()
    y = alt.Y("stage_label:N", title=None, sort=alt.EncodingSortField("stage_order"), axis=wrapped_label_axis(stage_labels))
    color = alt.Color("definition:N", title="Definition")
    row = alt.Row("definition:N", title=None)
    share = (
        alt.Chart(frame)
        .mark_bar()
        .encode(y=y, x=alt.X("share_of_start:Q", title="Share of start who reached it", axis=alt.Axis(format="%")), color=color, tooltip=tooltip)
        .properties(width=260, height=alt.Step(label_step(stage_labels)))
        .facet(row=row)
        .resolve_scale(y="independent")
    )
    base = alt.Chart().encode(y=y, color=color, tooltip=tooltip)
    lift = (
        alt.layer(
            base.mark_rule().encode(x=alt.X("lift_ci_low:Q", title="Lift of the outcome (95% CI, log scale)", scale=alt.Scale(type="log")), x2="lift_ci_high:Q"),
            base.mark_point(filled=True).encode(x="lift:Q"),
            data=frame[frame["lift"].notna()],
        )
        .properties(width=260, height=alt.Step(label_step(stage_labels)))
        .facet(row=row)
        .resolve_scale(y="independent")
    )
    return alt.hconcat(share, lift).properties(title=title or _title("Current vs suggested stages", data, segment))
