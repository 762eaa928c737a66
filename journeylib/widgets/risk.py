"""RiskWidget: the churn-risk dashboard, with horizon, segment and alert-threshold controls."""

from __future__ import annotations

import dataclasses
import html
import warnings
from dataclasses import dataclass
from typing import Any, ClassVar

import altair as alt
import ipywidgets as widgets
import pandas as pd
import traitlets

from journeylib import health
from journeylib.charts.common import placeholder_chart
from journeylib.charts.risk import threshold_tradeoff_chart
from journeylib.config.journey import JourneyDefinition
from journeylib.context import Journey
from journeylib.customers.risk import Backtest, backtest_data, lead_time_data, threshold_tradeoff_data
from journeylib.customers.scoring import RiskScores, score_customers
from journeylib.customers.snapshots import Snapshots, build_snapshots
from journeylib.exceptions import EmptyResultError, StatisticalWarning
from journeylib.store import Store
from journeylib.widgets.base import LABEL_STYLE, NOTES_STYLE, LiveComputationWidget, error_html, picker_options

__all__ = ["HORIZON_CHOICES", "RISKIEST_COLUMNS", "THRESHOLD_KINDS", "RiskFit", "RiskWidget"]

#: Choices of the horizon picker (days after an as-of day).
HORIZON_CHOICES: tuple[int, ...] = (30, 60, 90)
#: How the alert threshold is given: as the share of test snapshots alerted, or as a probability.
THRESHOLD_KINDS: tuple[str, ...] = ("share", "probability")
#: Columns of the riskiest-customers table (from :func:`journeylib.customers.scoring.score_customers`).
RISKIEST_COLUMNS: tuple[str, ...] = (
    "name", "segment", "stage", "risk", "risk_band", "risk_change_7d", "reasons", "next_stage", "next_stage_probability",
)
#: The operating-point figures shown, with their labels (columns of ``threshold_tradeoff_data``).
POINT_FIGURES: tuple[tuple[str, str], ...] = (
    ("threshold", "Threshold (probability)"),
    ("alert_share", "Share of test snapshots alerted"),
    ("precision", "Precision (churned share of alerted snapshots)"),
    ("recall", "Recall (churners alerted)"),
    ("alerts_per_100_per_week", "Alerts per 100 customers per week"),
    ("new_alerts_per_100_per_week", "New alerts per 100 customers per week"),
    ("median_lead_days", "Median lead time (days)"),
    ("median_lead_low", "Median lead time, low end of interval"),
    ("median_lead_high", "Median lead time, high end of interval"),
    ("churners", "Churners in the test period"),
    ("alerted", "Churners alerted"),
)


@dataclass(frozen=True)
class RiskFit:
    """What the widget computed for one horizon: snapshots, backtest, scores and the test snapshots' segments.

    Attributes
    ----------
    snapshots : Snapshots
        :func:`journeylib.customers.snapshots.build_snapshots` at the horizon.
    backtest : Backtest
        :func:`journeylib.customers.risk.backtest_data` of those snapshots.
    scores : RiskScores
        :func:`journeylib.customers.scoring.score_customers` at the horizon.
    test_segments : pandas.Series
        The ``segment`` of each row of ``backtest.predictions`` (same index),
        read from the snapshots (the predictions carry no segment).
    grid : list of float
        The thresholds of the trade-off rows: the default thresholds of
        :func:`journeylib.customers.risk.threshold_tradeoff_data` on every
        test snapshot, kept for every segment so the rows compare.
    """

    snapshots: Snapshots
    backtest: Backtest
    scores: RiskScores
    test_segments: pd.Series
    grid: list[float]


class RiskWidget(LiveComputationWidget):
    """The churn-risk dashboard: the alert-threshold trade-off, the operating point and the riskiest customers.

    For the horizon picked (30, 60 or 90 days) the widget builds the
    snapshots (:func:`~journeylib.customers.snapshots.build_snapshots`),
    runs the out-of-time backtest
    (:func:`~journeylib.customers.risk.backtest_data`) and scores the active
    customers (:func:`~journeylib.customers.scoring.score_customers`); each
    horizon is computed once and kept. The segment picker filters the
    riskiest-customers table and the backtest's test snapshots (their segment
    is joined from the snapshots) behind the trade-off rows and the operating
    point; the models are the ones fitted on every segment. The alert
    threshold is a share of all test snapshots alerted (the threshold is the
    one :func:`~journeylib.customers.risk.lead_time_data` derives for that
    budget on every segment) or a probability; the operating point
    (precision, recall, alerts per 100 customers per week, median lead time
    with its interval) is the row of
    :func:`~journeylib.customers.risk.threshold_tradeoff_data` at that
    threshold on the segment's test snapshots, and the trade-off rows use the
    thresholds of every segment's default grid.

    Build it with :meth:`from_journey` in a notebook
    (``RiskWidget.from_journey(journey, horizon_days=60, backtest=backtest, scores=scores, ticket_scores=tickets)``):
    the computations run on the context (its scope and cache) through its
    persistent result store (:meth:`journeylib.context.Journey.persisted`,
    :meth:`~journeylib.context.Journey.persisted_call`), so the snapshots,
    backtest and scores of a horizon that a report run of the same data and
    parameters computed (``build_snapshots`` with the same arguments,
    ``backtest_data(snapshots, n_boot=n_boot)``, ``score_customers``) are
    read from disk, and each horizon picked is computed once for every
    kernel. A given backtest and scores fill the first horizon's entry.

    Parameters
    ----------
    store : Store
        The journey store.
    definition : JourneyDefinition
        Its churn and conversion outcomes and stages.
    horizon_days : int, default 60
        Risk of churn within this many days.
    segment : str, default "all"
        ``"all"`` or a segment: filters the shown rows, not the models.
    threshold_by : {"share", "probability"}, default "share"
        How :attr:`threshold` reads.
    threshold : float, default 0.1
        Share of the test snapshots alerted, or the alert probability;
        strictly between 0 and 1.
    every_days : int, default 7
        Spacing of the snapshots.
    test_every_days : int, optional
        Spacing of the as-of days scored in the backtest's test period
        (``build_snapshots``'s ``test_every_days``; 1 = daily); None for
        ``every_days``.
    ticket_scores : pandas.DataFrame, optional
        Ticket sentiment (``journey.scored_tickets()``) for the snapshot
        features; None for none.
    model : str, default "boosted"
        The model of the backtest whose risk is thresholded.
    n_boot : int, default 200
        Bootstrap samples of the backtest's metric intervals.
    top_n : int, default 20
        Riskiest customers listed.
    journey : Journey, optional
        The analysis context to compute on (set by :meth:`from_journey`).
    snapshots, backtest : optional
        The notebook's snapshots and backtest at ``horizon_days`` (both or
        neither), used instead of computing them again.
    scores : RiskScores, optional
        The notebook's scores at ``horizon_days``.
    **kwargs
        Display options of ``ipywidgets.VBox``.

    Attributes
    ----------
    horizon_picker, segment_picker, threshold_kind_picker : ipywidgets.Dropdown
        The pickers.
    threshold_slider : ipywidgets.FloatSlider
        The alert threshold.
    errors : ipywidgets.HTML
        Visible error area.
    notes : ipywidgets.HTML
        Statistical caveats (censored snapshots, thin segments).
    live : LiveChart
        The threshold trade-off chart of the segment.
    point : ipywidgets.HTML
        The operating point at the threshold.
    riskiest : ipywidgets.HTML
        The riskiest customers of the segment, with reasons.
    data : pandas.DataFrame or None
        The trade-off rows shown (:func:`threshold_tradeoff_data`).
    operating_point : pandas.DataFrame or None
        The one :func:`threshold_tradeoff_data` row at the threshold.
    riskiest_table : pandas.DataFrame or None
        The rows of the riskiest-customers table (columns :data:`RISKIEST_COLUMNS`).
    fits : dict of int to RiskFit
        What was computed, by horizon.
    """

    compute = staticmethod(build_snapshots)
    DATA_PARAMETERS: ClassVar[tuple[str, ...]] = ("definition", "horizon_days", "every_days", "test_every_days", "ticket_scores")
    PERSIST: ClassVar[bool] = True

    horizon_days = traitlets.Int(60, help="Risk of churn within this many days after an as-of day.")
    segment = traitlets.Unicode(health.ALL_SEGMENTS, help="'all' or a customers.segment value; filters the rows shown.")
    threshold_by = traitlets.Unicode("share", help="'share' (of test snapshots alerted) or 'probability'.")
    threshold = traitlets.Float(0.1, help="The alert threshold, strictly between 0 and 1.")

    def __init__(
        self,
        store: Store,
        *,
        definition: JourneyDefinition,
        horizon_days: int = 60,
        segment: str | None = health.ALL_SEGMENTS,
        threshold_by: str = "share",
        threshold: float = 0.1,
        every_days: int = 7,
        test_every_days: int | None = None,
        ticket_scores: pd.DataFrame | None = None,
        model: str = "boosted",
        n_boot: int = 200,
        top_n: int = 20,
        journey: Journey | None = None,
        snapshots: Snapshots | None = None,
        backtest: Backtest | None = None,
        scores: RiskScores | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.live = None
        self.model = model
        self.n_boot = int(n_boot)
        self.top_n = int(top_n)
        self.fits: dict[int, RiskFit] = {}
        self.operating_point: pd.DataFrame | None = None
        self.riskiest_table: pd.DataFrame | None = None
        with self.hold_trait_notifications():
            self.horizon_days = int(horizon_days)
            self.segment = segment or health.ALL_SEGMENTS
            self.threshold_by = threshold_by
            self.threshold = float(threshold)
        self.horizon_picker = widgets.Dropdown(options=picker_options(HORIZON_CHOICES, self.horizon_days), value=self.horizon_days,
                                               description="Horizon (days):", style=LABEL_STYLE)
        self.segment_picker = widgets.Dropdown(options=[health.ALL_SEGMENTS, *health.available_segments(store)], value=None,
                                               description="Segment:", style=LABEL_STYLE)
        self.threshold_kind_picker = widgets.Dropdown(options=[("Share alerted", "share"), ("Probability", "probability")],
                                                      value=None, description="Threshold as:", style=LABEL_STYLE)
        self.threshold_slider = widgets.FloatSlider(value=self.threshold, min=0.01, max=0.99, step=0.01, readout_format=".2f",
                                                    description="Threshold:", style=LABEL_STYLE, continuous_update=False)
        self._sync_pickers()
        self.horizon_picker.observe(lambda c: setattr(self, "horizon_days", int(c["new"])), names="value")
        self.segment_picker.observe(lambda c: setattr(self, "segment", c["new"]), names="value")
        self.threshold_kind_picker.observe(lambda c: setattr(self, "threshold_by", c["new"]), names="value")
        self.threshold_slider.observe(lambda c: setattr(self, "threshold", float(c["new"])), names="value")
        self.point = widgets.HTML("")
        self.riskiest = widgets.HTML("")
        fixed = {"definition": definition, "every_days": int(every_days), "test_every_days": test_every_days,
                 "ticket_scores": ticket_scores}
        self._seed(snapshots, backtest, scores)
        self._setup(store, fixed, [self.horizon_picker, self.segment_picker, self.threshold_kind_picker, self.threshold_slider],
                    [self.point, self.riskiest], journey=journey)

    def _seed(self, snapshots: Snapshots | None, backtest: Backtest | None, scores: RiskScores | None) -> None:
        """Keep the notebook's results as the first horizon's entry (checked against the horizon)."""
        if (snapshots is None) != (backtest is None):
            msg = "RiskWidget: give snapshots and backtest together (the backtest's test snapshots get their segment from them)"
            raise ValueError(msg)
        for name, given in (("snapshots", snapshots), ("backtest", backtest), ("scores", scores)):
            if given is not None and given.horizon_days != self.horizon_days:
                msg = f"RiskWidget: {name} has horizon_days={given.horizon_days}; the widget's horizon_days is {self.horizon_days}"
                raise ValueError(msg)
        self._given: dict[int, dict[str, Any]] = {self.horizon_days: {"snapshots": snapshots, "backtest": backtest, "scores": scores}}

    def _sync_pickers(self) -> None:
        # A value the pickers do not offer (e.g. from a URL) stays out of them; the view reports it.
        pairs = ((self.horizon_picker, self.horizon_days), (self.segment_picker, self.segment),
                 (self.threshold_kind_picker, self.threshold_by))
        for picker, value in pairs:
            offered = [o[1] if isinstance(o, tuple) else o for o in picker.options]
            if value in offered and picker.value != value:
                picker.value = value
        slider = self.threshold_slider
        if slider.min <= self.threshold <= slider.max and slider.value != self.threshold:
            slider.value = self.threshold

    # -- computations: library calls only -----------------------------------------------------
    def fit(self, horizon_days: int) -> RiskFit:
        """Return the snapshots, backtest and scores at *horizon_days*, computing them on first use.

        Parameters
        ----------
        horizon_days : int
            The horizon.

        Returns
        -------
        RiskFit
            Kept in :attr:`fits`; later calls return the same object.
        """
        if horizon_days in self.fits:
            return self.fits[horizon_days]
        if self.live is not None:  # a picked horizon: say that it computes (on a cold store, tens of seconds)
            self.point.value = (f'<div class="journeylib-computing">Computing the {horizon_days}-day horizon: snapshots, '
                                "backtest and scores (read from the saved results when a run computed them)…</div>")
        params = {**self.data_parameters(), "horizon_days": horizon_days}
        given = self._given.pop(horizon_days, {})
        snapshots = given.get("snapshots")
        if snapshots is None:
            snapshots = self._runner.run(build_snapshots, params)
        backtest = given.get("backtest")
        if backtest is None and self.journey is not None:
            backtest = self.journey.persisted_call(backtest_data, snapshots, n_boot=self.n_boot)
        elif backtest is None:
            backtest = backtest_data(snapshots, n_boot=self.n_boot)
        scores = given.get("scores")
        if scores is None:
            scores = self._runner.run(score_customers, {k: params[k] for k in ("definition", "horizon_days", "ticket_scores")})
        keys = ["customer_id", "as_of_day"]
        joined = backtest.predictions[keys].merge(snapshots.data[[*keys, "segment"]], on=keys, how="left", validate="one_to_one")
        test_segments = pd.Series(joined["segment"].to_numpy(), index=backtest.predictions.index, name="segment")
        grid = threshold_tradeoff_data(backtest, model=self.model)["threshold"].tolist()
        self.fits[horizon_days] = RiskFit(snapshots=snapshots, backtest=backtest, scores=scores, test_segments=test_segments, grid=grid)
        return self.fits[horizon_days]

    def alert_threshold(self, fit: RiskFit) -> float:
        """Return the alert probability: :attr:`threshold` itself, or the one an alert share gives on every segment.

        Parameters
        ----------
        fit : RiskFit
            The horizon's results.

        Returns
        -------
        float
            The probability at or above which a snapshot is alerted.

        Raises
        ------
        ValueError
            If :attr:`threshold_by` is not one of :data:`THRESHOLD_KINDS`, or
            :attr:`threshold` is not strictly between 0 and 1.
        """
        if self.threshold_by not in THRESHOLD_KINDS:
            msg = f"RiskWidget: threshold_by must be one of {list(THRESHOLD_KINDS)}; got {self.threshold_by!r}"
            raise ValueError(msg)
        if not 0 < self.threshold < 1:
            msg = f"RiskWidget: threshold ({self.threshold_by}) must be strictly between 0 and 1; got {self.threshold!r}"
            raise ValueError(msg)
        if self.threshold_by == "probability":
            return float(self.threshold)
        lead = lead_time_data(fit.backtest, model=self.model, alert_share=self.threshold)
        return float(lead["threshold"].iloc[0])  # backtest_data guarantees churners in the test period

    def segment_backtest(self, fit: RiskFit) -> Backtest:
        """Return the backtest restricted to the test snapshots of :attr:`segment` (itself for ``"all"``).

        Parameters
        ----------
        fit : RiskFit
            The horizon's results.

        Returns
        -------
        Backtest
            The same backtest with ``predictions`` filtered.

        Raises
        ------
        EmptyResultError
            If the segment has no test snapshot or no churner among them
            (recall and lead time cannot be measured).
        """
        backtest = fit.backtest
        if self.segment == health.ALL_SEGMENTS:
            return backtest
        pred = backtest.predictions[fit.test_segments == self.segment]
        churned = int(pred["churned"].sum())
        if churned == 0:
            known = sorted(fit.test_segments.dropna().unique().tolist())
            msg = (
                f"RiskWidget: segment {self.segment!r} has {len(pred)} test snapshots ({pred['customer_id'].nunique()} customers) "
                f"and no churned one at the {fit.backtest.horizon_days}-day horizon, so recall and lead time cannot be measured; "
                f"segments with test snapshots: {known}"
            )
            raise EmptyResultError(msg)
        return dataclasses.replace(backtest, predictions=pred.reset_index(drop=True))

    # -- display ---------------------------------------------------------------------------------
    def _title(self) -> str:
        where = "all segments" if self.segment == health.ALL_SEGMENTS else self.segment
        return f"Alert threshold trade-off — churn within {self.horizon_days} days, {where}"

    def _chart(self) -> alt.TopLevelSpec:
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", StatisticalWarning)
                fit = self.fit(self.horizon_days)
                self._show_riskiest(fit)
                backtest = self.segment_backtest(fit)
                threshold = self.alert_threshold(fit)
                tradeoff = threshold_tradeoff_data(backtest, model=self.model, thresholds=fit.grid)
                point = threshold_tradeoff_data(backtest, model=self.model, thresholds=[threshold])
                chart = threshold_tradeoff_chart(tradeoff, title=self._title())
            self._show_notes(caught)
        except Exception as exc:  # a widget callback must show its failure, not raise it
            self.notes.value = ""
            self.error = f"{type(exc).__name__}: {exc}"
            self.errors.value = error_html(self.error)
            self.data = None
            self.operating_point = None
            self.point.value = ""
            return placeholder_chart(title=self._title(), message="No result for this selection; see the message above.")
        self.data = tradeoff
        self.operating_point = point
        self.error = ""
        self.errors.value = ""
        self._show_point(point, backtest)
        return chart

    def _show_riskiest(self, fit: RiskFit) -> None:
        scores = fit.scores.scores
        if self.segment != health.ALL_SEGMENTS:
            scores = scores[scores["segment"] == self.segment]
        table = scores.head(self.top_n)[list(RISKIEST_COLUMNS)].reset_index(drop=True)
        self.riskiest_table = table
        caption = (f"Riskiest customers on {fit.scores.as_of:%Y-%m-%d} (churn within {fit.scores.horizon_days} days): "
                   f"{len(table)} of {len(scores)} scored")
        body = table.to_html(index=False, float_format=lambda x: f"{x:.2f}", na_rep="—", classes="journeylib-riskiest")
        self.riskiest.value = f"<h4>{html.escape(caption)}</h4>{body}"

    def _show_point(self, point: pd.DataFrame, backtest: Backtest) -> None:
        row = point.iloc[0]
        cells = "".join(
            f"<tr><th style='text-align:left'>{html.escape(label)}</th><td>{_figure(row[col])}</td></tr>"
            for col, label in POINT_FIGURES
        )
        kind = "share of test snapshots" if self.threshold_by == "share" else "probability"
        caption = (f"Operating point at threshold {self.threshold:.2f} ({kind}), model {self.model}, "
                   f"{len(backtest.predictions)} test snapshots of {backtest.predictions['customer_id'].nunique()} customers")
        warn = ""
        if self.threshold_by == "share" and round(float(row["alert_share"]), 2) != round(self.threshold, 2):
            warn = (f"Asked to alert {self.threshold:.0%} of all test snapshots; {float(row['alert_share']):.0%} of these "
                    f"{len(backtest.predictions)} are at or above the threshold {float(row['threshold']):.3f} "
                    "(tied risks, or a segment riskier or safer than the whole).")
            warn = f'<div class="journeylib-notes" style="{NOTES_STYLE}">{html.escape(warn)}</div>'
        self.point.value = f"<h4>{html.escape(caption)}</h4>{warn}<table class='journeylib-operating-point'>{cells}</table>"

    @traitlets.observe("horizon_days", "segment", "threshold_by", "threshold")
    def _recompute(self, change: dict[str, Any]) -> None:
        if self.live is None:
            return
        self._sync_pickers()
        self._refresh()


def _figure(value: Any) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "—"
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 1 else f"{value:.1f}"
    return html.escape(str(value))
