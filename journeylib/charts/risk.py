"""Charts of churn risk: backtest metrics, calibration, lead time, the threshold trade-off and survival curves.

Each chart takes exactly the frame a computation returned and only encodes it
(STYLE §8): :func:`backtest_metrics_chart` draws ``Backtest.metrics`` and
:func:`calibration_chart` ``Backtest.calibration``
(:func:`journeylib.customers.risk.backtest_data`), :func:`lead_time_chart`
draws :func:`journeylib.customers.risk.lead_time_data`,
:func:`threshold_tradeoff_chart` draws
:func:`journeylib.customers.risk.threshold_tradeoff_data` and
:func:`survival_chart` draws :func:`journeylib.customers.survival.kaplan_meier_data`.
Fonts and colours come from the theme (:mod:`journeylib.charts.theme`).
"""

from __future__ import annotations

import altair as alt
import pandas as pd

from journeylib.charts import theme as _theme  # noqa: F401  (registers and enables the journeylib theme)
from journeylib.charts.common import require_columns

__all__ = [
    "backtest_metrics_chart",
    "calibration_chart",
    "lead_time_chart",
    "survival_chart",
    "threshold_tradeoff_chart",
]

_METRICS = (("roc_auc", "ROC-AUC (higher is better)"), ("pr_auc", "PR-AUC (higher is better)"), ("brier", "Brier score (lower is better)"))


def backtest_metrics_chart(data: pd.DataFrame, *, title: str | None = None) -> alt.HConcatChart:
    """Draw each model's ROC-AUC, PR-AUC and Brier score with their bootstrap intervals.

    Parameters
    ----------
    data : pandas.DataFrame
        ``Backtest.metrics`` of :func:`journeylib.customers.risk.backtest_data`.
    title : str, optional
        Default ``"Out-of-time backtest (95% customer-bootstrap intervals)"``.

    Returns
    -------
    altair.HConcatChart
        One panel per metric: y = ``model``, a point at the estimate and a
        rule from ``<metric>_low`` to ``<metric>_high``; the PR-AUC panel
        marks ``base_rate`` (a random ranking's PR-AUC) with a tick.

    Raises
    ------
    ValueError
        If *data* lacks the metric columns.

    Examples
    --------
    >>> m = pd.DataFrame({"model": ["boosted"], "roc_auc": [0.75], "roc_auc_low": [0.7], "roc_auc_high": [0.8],
    ...     "pr_auc": [0.35], "pr_auc_low": [0.25], "pr_auc_high": [0.45], "brier": [0.08], "brier_low": [0.07],
    ...     "brier_high": [0.09], "base_rate": [0.09], "n_snapshots": [2500], "n_churned": [230]})
    >>> backtest_metrics_chart(m).to_dict()["title"]["text"]
    'Out-of-time backtest (95% customer-bootstrap intervals)'
    """
    cols = ["model", "base_rate", "n_snapshots", "n_churned"] + [f"{m}{s}" for m, _ in _METRICS for s in ("", "_low", "_high")]
    frame = require_columns(data, cols, chart="backtest_metrics_chart", producer="journeylib.customers.risk.backtest_data (.metrics)")
    order = frame["model"].tolist()
    panels = []
    for metric, label in _METRICS:
        y = alt.Y("model:N", sort=order, title=None)
        base = alt.Chart(frame)
        rule = base.mark_rule(strokeWidth=2).encode(y=y, x=alt.X(f"{metric}_low:Q", title=label, scale=alt.Scale(zero=False)),
                                                    x2=f"{metric}_high:Q")
        point = base.mark_point(filled=True, size=80).encode(
            y=y, x=alt.X(f"{metric}:Q"),
            tooltip=[alt.Tooltip("model:N", title="Model"), alt.Tooltip(f"{metric}:Q", title=label, format=".3f"),
                     alt.Tooltip(f"{metric}_low:Q", title="95% CI low", format=".3f"),
                     alt.Tooltip(f"{metric}_high:Q", title="95% CI high", format=".3f"),
                     alt.Tooltip("n_snapshots:Q", title="Test snapshots", format=","),
                     alt.Tooltip("n_churned:Q", title="Churned snapshots", format=",")],
        )
        layers = [rule, point]
        if metric == "pr_auc":
            layers.append(base.mark_tick(color="#888888", thickness=2).encode(
                y=y, x="base_rate:Q", tooltip=[alt.Tooltip("base_rate:Q", title="Base rate (random ranking)", format=".3f")]))
        panels.append(alt.layer(*layers).properties(width=200, height=alt.Step(28)))
    return alt.hconcat(*panels, title=title or "Out-of-time backtest (95% customer-bootstrap intervals)")


def calibration_chart(data: pd.DataFrame, *, title: str | None = None) -> alt.LayerChart:
    """Draw the calibration curve: observed churn share against mean predicted risk per risk bin, per model.

    Parameters
    ----------
    data : pandas.DataFrame
        ``Backtest.calibration`` of :func:`journeylib.customers.risk.backtest_data`.
    title : str, optional
        Default ``"Calibration on the test period"``.

    Returns
    -------
    altair.LayerChart
        x = ``mean_predicted``, y = ``observed`` with error bars from
        ``observed_low`` to ``observed_high``, colour = ``model``; the
        diagonal is perfect calibration.

    Raises
    ------
    ValueError
        If *data* lacks the calibration columns.
    """
    frame = require_columns(data, ["model", "bin", "n", "mean_predicted", "observed", "observed_low", "observed_high"],
                            chart="calibration_chart", producer="journeylib.customers.risk.backtest_data (.calibration)")
    axis = alt.Axis(format="%")
    color = alt.Color("model:N", title="Model")
    base = alt.Chart(frame)
    diagonal = alt.Chart(pd.DataFrame({"x": [0.0, 1.0], "y": [0.0, 1.0]})).mark_line(strokeDash=[4, 4], color="#888888").encode(
        x="x:Q", y="y:Q")
    bars = base.mark_rule().encode(x="mean_predicted:Q", y="observed_low:Q", y2="observed_high:Q", color=color)
    line = base.mark_line(point=True).encode(
        x=alt.X("mean_predicted:Q", title="Mean predicted risk (bin)", axis=axis, scale=alt.Scale(domain=[0, 1])),
        y=alt.Y("observed:Q", title="Observed churn share", axis=axis, scale=alt.Scale(domain=[0, 1])),
        color=color,
        tooltip=[alt.Tooltip("model:N", title="Model"), alt.Tooltip("bin:Q", title="Risk bin"),
                 alt.Tooltip("n:Q", title="Snapshots", format=","),
                 alt.Tooltip("mean_predicted:Q", title="Predicted", format=".1%"),
                 alt.Tooltip("observed:Q", title="Observed", format=".1%"),
                 alt.Tooltip("observed_low:Q", title="95% CI low", format=".1%"),
                 alt.Tooltip("observed_high:Q", title="95% CI high", format=".1%")],
    )
    return alt.LayerChart(layer=[diagonal, bars, line], title=title or "Calibration on the test period", width=360, height=320)


def lead_time_chart(data: pd.DataFrame, *, title: str | None = None) -> alt.Chart:
    """Draw the distribution of lead times (days from the first alert to churn) of the alerted churners.

    Parameters
    ----------
    data : pandas.DataFrame
        :func:`journeylib.customers.risk.lead_time_data` (one row per
        churner; rows not alerted have no ``lead_days`` and are not drawn).
    title : str, optional
        Default ``"Lead time: days from the first alert to churn"``.

    Returns
    -------
    altair.Chart
        A histogram of ``lead_days`` in 7-day bins, coloured by
        ``truncated`` (the test period capped the lead time).

    Raises
    ------
    ValueError
        If *data* lacks ``lead_days``, ``truncated`` or ``alerted``.
    """
    frame = require_columns(data, ["customer_id", "lead_days", "truncated", "alerted"], chart="lead_time_chart",
                            producer="journeylib.customers.risk.lead_time_data")
    frame = frame[frame["alerted"]]
    frame["capped"] = frame["truncated"].map({True: "capped by the test period", False: "whole horizon observed"})
    return alt.Chart(frame, title=title or "Lead time: days from the first alert to churn").mark_bar().encode(
        x=alt.X("lead_days:Q", bin=alt.Bin(step=7), title="Days from the first alert to churn"),
        y=alt.Y("count():Q", title="Churners"),
        color=alt.Color("capped:N", title=None),
        tooltip=[alt.Tooltip("count():Q", title="Churners")],
    ).properties(width=420, height=220)


def threshold_tradeoff_chart(data: pd.DataFrame, *, title: str | None = None) -> alt.HConcatChart:
    """Draw the alert-threshold trade-off: recall, precision and median lead time against the share of customers alerted.

    Parameters
    ----------
    data : pandas.DataFrame
        :func:`journeylib.customers.risk.threshold_tradeoff_data`.
    title : str, optional
        Default ``"Alert threshold trade-off"``.

    Returns
    -------
    altair.HConcatChart
        Left: ``recall`` and ``precision`` against ``alert_share``; right:
        ``median_lead_days`` with its interval against ``alert_share``;
        tooltips give the threshold and ``alerts_per_100_per_week``.

    Raises
    ------
    ValueError
        If *data* lacks the trade-off columns.
    """
    frame = require_columns(
        data, ["threshold", "alert_share", "recall", "precision", "median_lead_days", "median_lead_low", "median_lead_high",
               "alerts_per_100_per_week"],
        chart="threshold_tradeoff_chart", producer="journeylib.customers.risk.threshold_tradeoff_data",
    )
    x = alt.X("alert_share:Q", title="Share of snapshots alerted", axis=alt.Axis(format="%"))
    tooltip = [alt.Tooltip("threshold:Q", title="Threshold", format=".3f"),
               alt.Tooltip("alert_share:Q", title="Alerted", format=".0%"),
               alt.Tooltip("recall:Q", title="Recall", format=".0%"), alt.Tooltip("precision:Q", title="Precision", format=".0%"),
               alt.Tooltip("median_lead_days:Q", title="Median lead (days)", format=".1f"),
               alt.Tooltip("alerts_per_100_per_week:Q", title="Alerts per 100 customers per week", format=".1f")]
    rates = alt.Chart(frame).transform_fold(["recall", "precision"], as_=["measure", "value"]).mark_line(point=True).encode(
        x=x, y=alt.Y("value:Q", title="Share", axis=alt.Axis(format="%"), scale=alt.Scale(domain=[0, 1])),
        color=alt.Color("measure:N", title=None), tooltip=tooltip,
    ).properties(width=300, height=220)
    base = alt.Chart(frame)
    lead = alt.layer(
        base.mark_area(opacity=0.2).encode(x=x, y=alt.Y("median_lead_low:Q", title="Median lead time (days)"), y2="median_lead_high:Q"),
        base.mark_line(point=True).encode(x=x, y="median_lead_days:Q", tooltip=tooltip),
    ).properties(width=300, height=220)
    return alt.hconcat(rates, lead, title=title or "Alert threshold trade-off")


def survival_chart(data: pd.DataFrame, *, title: str | None = None) -> alt.LayerChart:
    """Draw Kaplan–Meier curves (share not churned) per group with their intervals.

    Parameters
    ----------
    data : pandas.DataFrame
        :func:`journeylib.customers.survival.kaplan_meier_data`.
    title : str, optional
        Default ``"Still paying after conversion (Kaplan–Meier, 95% CI)"``.

    Returns
    -------
    altair.LayerChart
        x = ``time_days``, y = ``survival`` (step line) with a band from
        ``ci_low`` to ``ci_high``, colour = ``group``; tooltips give the
        at-risk, churned and censored counts.

    Raises
    ------
    ValueError
        If *data* lacks the Kaplan–Meier columns.
    """
    frame = require_columns(data, ["group", "time_days", "survival", "ci_low", "ci_high", "at_risk", "churned_by", "censored_by", "n"],
                            chart="survival_chart", producer="journeylib.customers.survival.kaplan_meier_data")
    base = alt.Chart(frame).encode(x=alt.X("time_days:Q", title="Days since conversion"), color=alt.Color("group:N", title=None))
    band = base.mark_area(opacity=0.15, interpolate="step-after").encode(y=alt.Y("ci_low:Q"), y2="ci_high:Q")
    line = base.mark_line(interpolate="step-after", point=True).encode(
        y=alt.Y("survival:Q", title="Not churned (Kaplan–Meier)", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%")),
        tooltip=[alt.Tooltip("group:N", title="Group"), alt.Tooltip("time_days:Q", title="Day"),
                 alt.Tooltip("survival:Q", title="Not churned", format=".1%"),
                 alt.Tooltip("ci_low:Q", title="95% CI low", format=".1%"), alt.Tooltip("ci_high:Q", title="95% CI high", format=".1%"),
                 alt.Tooltip("at_risk:Q", title="At risk", format=","), alt.Tooltip("churned_by:Q", title="Churned by", format=","),
                 alt.Tooltip("censored_by:Q", title="Censored by", format=",")],
    )
    return alt.LayerChart(layer=[band, line], title=title or "Still paying after conversion (Kaplan–Meier, 95% CI)", width=420, height=260)
