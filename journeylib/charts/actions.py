"""Charts of the action step: the rule backtest, the experiment read-out and the recommended intervention points.

Each chart takes exactly the frame a computation returned and only encodes it
(STYLE §8): :func:`rule_backtest_chart` draws ``RuleBacktest.summary``
(:func:`journeylib.actions.backtest.rule_backtest_data`),
:func:`experiment_effects_chart` draws
:func:`journeylib.customers.experiments.experiment_effects_data` and
:func:`intervention_points_chart` draws
:func:`journeylib.actions.interventions.intervention_points_data`.
Fonts and colours come from the theme (:mod:`journeylib.charts.theme`).
"""

from __future__ import annotations

import altair as alt
import pandas as pd

from journeylib.charts import theme as _theme  # noqa: F401  (registers and enables the journeylib theme)
from journeylib.charts.common import require_columns

__all__ = ["experiment_effects_chart", "intervention_points_chart", "rule_backtest_chart"]


def rule_backtest_chart(data: pd.DataFrame, *, title: str | None = None) -> alt.LayerChart:
    """Draw each rule's precision for churn with its interval, against the base rate.

    Parameters
    ----------
    data : pandas.DataFrame
        ``RuleBacktest.summary`` of :func:`journeylib.actions.backtest.rule_backtest_data`.
    title : str, optional
        Default ``"Rule backtest: churn within the horizon after an alert (95% Wilson intervals)"``.

    Returns
    -------
    altair.LayerChart
        y = ``rule`` (in the table's order); a rule from ``precision_ci_low``
        to ``precision_ci_high``, a point at ``precision`` and a tick at
        ``base_rate``; tooltips with the alerts, churners caught and the
        median lead time.

    Raises
    ------
    ValueError
        If *data* lacks the columns.

    Examples
    --------
    >>> s = pd.DataFrame({"rule": ["quiet"], "alerts": [40], "labelled_alerts": [36], "true_alerts": [12],
    ...     "precision": [1 / 3], "precision_ci_low": [0.2], "precision_ci_high": [0.5], "base_rate": [0.05],
    ...     "lift": [6.7], "churners": [30], "churners_caught": [12], "recall": [0.4], "lead_days_median": [21.0]})
    >>> rule_backtest_chart(s).to_dict()["title"][:13]
    'Rule backtest'
    """
    cols = ["rule", "alerts", "labelled_alerts", "true_alerts", "precision", "precision_ci_low", "precision_ci_high", "base_rate",
            "lift", "churners", "churners_caught", "recall", "lead_days_median"]
    frame = require_columns(data, cols, chart="rule_backtest_chart", producer="journeylib.actions.backtest.rule_backtest_data (.summary)")
    y = alt.Y("rule:N", sort=frame["rule"].tolist(), title=None)
    base = alt.Chart(frame)
    tips = [alt.Tooltip("rule:N", title="Rule"), alt.Tooltip("alerts:Q", title="Alerts", format=","),
            alt.Tooltip("true_alerts:Q", title="Followed by churn", format=","),
            alt.Tooltip("labelled_alerts:Q", title="Alerts with a known outcome", format=","),
            alt.Tooltip("precision:Q", title="Precision", format=".1%"), alt.Tooltip("precision_ci_low:Q", title="95% CI low", format=".1%"),
            alt.Tooltip("precision_ci_high:Q", title="95% CI high", format=".1%"),
            alt.Tooltip("base_rate:Q", title="Base rate", format=".1%"), alt.Tooltip("lift:Q", title="Lift", format=".1f"),
            alt.Tooltip("churners_caught:Q", title="Churners caught", format=","), alt.Tooltip("churners:Q", title="Churners", format=","),
            alt.Tooltip("lead_days_median:Q", title="Median lead (days)", format=".0f")]
    rule = base.mark_rule(strokeWidth=2).encode(
        y=y, x=alt.X("precision_ci_low:Q", title="Share of alerts followed by churn", axis=alt.Axis(format="%")), x2="precision_ci_high:Q"
    )
    point = base.mark_point(filled=True, size=80).encode(y=y, x="precision:Q", tooltip=tips)
    tick = base.mark_tick(color="grey", thickness=2).encode(y=y, x="base_rate:Q", tooltip=tips)
    return alt.LayerChart(layer=[rule, point, tick], title=title or "Rule backtest: churn within the horizon after an alert (95% Wilson intervals)")


def experiment_effects_chart(data: pd.DataFrame, *, title: str | None = None) -> alt.LayerChart:
    """Draw each variant's difference against control with its interval, per metric.

    Parameters
    ----------
    data : pandas.DataFrame
        What :func:`journeylib.customers.experiments.experiment_effects_data` returned.
    title : str, optional
        Default ``"Experiment read-out: variant − control (95% Newcombe intervals)"``.

    Returns
    -------
    altair.LayerChart
        y = ``experiment: variant``, colour = ``metric``; a rule from
        ``ci_low`` to ``ci_high`` and a point at ``difference`` (percentage
        points), a zero line; tooltips with the rates, arms, p-value, SRM
        p-value, MDE and the verdict.

    Raises
    ------
    ValueError
        If *data* lacks the columns.

    Examples
    --------
    >>> e = pd.DataFrame({"experiment": ["nudge"], "variant": ["b"], "metric": ["progression"], "n_control": [40],
    ...     "n_variant": [38], "rate_control": [0.6], "rate_variant": [0.7], "difference": [0.1], "ci_low": [-0.1],
    ...     "ci_high": [0.3], "p_value": [0.3], "srm_p_value": [0.9], "mde": [0.3], "verdict": ["No detectable effect."]})
    >>> experiment_effects_chart(e).to_dict()["title"][:10]
    'Experiment'
    """
    cols = ["experiment", "variant", "metric", "n_control", "n_variant", "rate_control", "rate_variant", "difference", "ci_low",
            "ci_high", "p_value", "srm_p_value", "mde", "verdict"]
    frame = require_columns(data, cols, chart="experiment_effects_chart", producer="journeylib.customers.experiments.experiment_effects_data")
    frame["arm"] = frame["experiment"].astype(str) + ": " + frame["variant"].astype(str)
    y = alt.Y("arm:N", title=None)
    tips = [alt.Tooltip("arm:N", title="Variant"), alt.Tooltip("metric:N", title="Metric"),
            alt.Tooltip("rate_control:Q", title="Control rate", format=".1%"), alt.Tooltip("n_control:Q", title="Control customers"),
            alt.Tooltip("rate_variant:Q", title="Variant rate", format=".1%"), alt.Tooltip("n_variant:Q", title="Variant customers"),
            alt.Tooltip("difference:Q", title="Difference", format="+.1%"), alt.Tooltip("ci_low:Q", title="95% CI low", format="+.1%"),
            alt.Tooltip("ci_high:Q", title="95% CI high", format="+.1%"), alt.Tooltip("p_value:Q", title="p-value", format=".3g"),
            alt.Tooltip("srm_p_value:Q", title="Sample-ratio p", format=".3g"), alt.Tooltip("mde:Q", title="Detectable effect", format=".1%"),
            alt.Tooltip("verdict:N", title="Verdict")]
    base = alt.Chart(frame)
    rule = base.mark_rule(strokeWidth=2).encode(
        y=y, x=alt.X("ci_low:Q", title="Variant − control (percentage points)", axis=alt.Axis(format="+%")), x2="ci_high:Q",
        color=alt.Color("metric:N", title="Metric"),
    )
    point = base.mark_point(filled=True, size=80).encode(y=y, x="difference:Q", color="metric:N", tooltip=tips)
    zero = alt.Chart(pd.DataFrame({"zero": [0.0]})).mark_rule(color="grey", strokeDash=[4, 4]).encode(x="zero:Q")
    return alt.LayerChart(layer=[rule, point, zero], title=title or "Experiment read-out: variant − control (95% Newcombe intervals)")


def intervention_points_chart(data: pd.DataFrame, *, title: str | None = None) -> alt.Chart:
    """Draw, per segment, when each source recommends reaching out (days since signup).

    Parameters
    ----------
    data : pandas.DataFrame
        What :func:`journeylib.actions.interventions.intervention_points_data` returned.
    title : str, optional
        Default ``"Recommended intervention points (day since signup)"``.

    Returns
    -------
    altair.Chart
        A point per row: x = ``day_since_signup``, y = ``segment``, shape and
        colour = ``source``; tooltips with the stage, the day in it, the
        headline number with its denominator and interval, and the text.

    Raises
    ------
    ValueError
        If *data* lacks the columns.

    Examples
    --------
    >>> p = pd.DataFrame({"segment": ["SMB"], "source": ["stall"], "stage": ["Trial"], "day_in_stage": [9.0],
    ...     "day_since_signup": [9.0], "measure": ["stall share"], "value": [0.6], "numerator": [60], "denominator": [100],
    ...     "ci_low": [0.5], "ci_high": [0.69], "causal": [False], "text": ["In SMB, stalls begin in Trial."]})
    >>> intervention_points_chart(p).to_dict()["mark"]["type"]
    'point'
    """
    cols = ["segment", "source", "stage", "day_in_stage", "day_since_signup", "measure", "value", "numerator", "denominator", "ci_low",
            "ci_high", "causal", "text"]
    frame = require_columns(data, cols, chart="intervention_points_chart", producer="journeylib.actions.interventions.intervention_points_data")
    return alt.Chart(frame).mark_point(filled=True, size=140).encode(
        x=alt.X("day_since_signup:Q", title="Day since signup"),
        y=alt.Y("segment:N", sort=list(dict.fromkeys(frame["segment"])), title=None),
        color=alt.Color("source:N", title="Evidence"),
        shape=alt.Shape("source:N", title="Evidence"),
        tooltip=[alt.Tooltip("segment:N", title="Segment"), alt.Tooltip("source:N", title="Evidence"),
                 alt.Tooltip("stage:N", title="Stage"), alt.Tooltip("day_in_stage:Q", title="Day in stage", format=".0f"),
                 alt.Tooltip("day_since_signup:Q", title="Day since signup", format=".0f"),
                 alt.Tooltip("measure:N", title="Measure"), alt.Tooltip("value:Q", title="Value", format=".1%"),
                 alt.Tooltip("numerator:Q", title="Count"), alt.Tooltip("denominator:Q", title="Of"),
                 alt.Tooltip("ci_low:Q", title="95% CI low", format=".1%"), alt.Tooltip("ci_high:Q", title="95% CI high", format=".1%"),
                 alt.Tooltip("causal:N", title="Randomised (causal)"), alt.Tooltip("text:N", title="Reading")],
    ).properties(title=title or "Recommended intervention points (day since signup)")
