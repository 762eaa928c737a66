"""CohortsWidget: one cohort metric compared across cohorts, recomputed from pickers."""

from __future__ import annotations

import inspect
from typing import Any, ClassVar

import altair as alt
import ipywidgets as widgets
import pandas as pd
import traitlets

from journeylib import health
from journeylib.charts import customers as charts_drivers
from journeylib.charts.common import placeholder_chart
from journeylib.config.journey import JourneyDefinition
from journeylib.context import Journey
from journeylib.customers import cohorts
from journeylib.store import Store
from journeylib.widgets.base import (
    LABEL_STYLE,
    SUPPORT_CHOICES,
    WINDOW_CHOICES,
    LiveComputationWidget,
    picker_options,
)

__all__ = ["CohortsWidget"]

#: Dimension picker choices.
BY_CHOICES: tuple[str, ...] = ("segment", "plan", "signup_period", "channel")


class CohortsWidget(LiveComputationWidget):
    """Cohorts compared on one outcome, with bars and intervals, recomputed from pickers.

    Wraps :func:`journeylib.customers.cohorts.cohort_metrics_data`; its data parameters
    are the function's parameters after ``store``. ``by``, ``metric``
    (chosen with the Outcome picker: conversion, churn, stage conversion,
    time to value, days active), ``window_days`` (sets both
    ``conversion_days`` and ``stage_days``), ``segment``, ``min_support``,
    ``as_of`` and ``sample_n`` are traits; the other parameters are fixed at
    construction. Each change recomputes the table and shows the new chart in
    ``live``; failures go to the red ``errors`` area.

    In a notebook, build it with :meth:`from_journey`
    (``CohortsWidget.from_journey(journey, by="segment", outcome="conversion")``):
    store, definition and scope come from the context, and the cohort frames
    the notebook built for ``journey.cohort_metrics_data(...)`` are reused.

    Parameters
    ----------
    store : Store
        The journey store.
    definition : JourneyDefinition
        Stages and outcomes.
    by : str, default "segment"
        Cohort dimension.
    outcome : str, default "conversion"
        A key of :data:`journeylib.customers.cohorts.OUTCOME_METRICS`.
    window_days : int, default 30
        Days after signup for conversion and stage metrics.
    segment : str, default "all"
        ``"all"`` or a segment.
    min_support : int, default 30
        Fewest customers per cohort.
    as_of : str, default ""
        Censoring date; empty for the latest event.
    sample_n : int, default 0
        Seeded sample size.
    journey : Journey, optional
        The analysis context to compute on (set by :meth:`from_journey`;
        not a parameter of ``cohort_metrics_data``).
    **kwargs
        Other parameters of ``cohort_metrics_data`` and display options.

    Attributes
    ----------
    by_picker, outcome_picker, window_picker, segment_picker, support_picker : ipywidgets.Dropdown
        The pickers.
    errors : ipywidgets.HTML
        Visible error area.
    notes : ipywidgets.HTML
        Statistical caveats of the last computation (thin cohorts, untested metrics).
    live : LiveChart
        The chart; ``live.chart`` is replaced on change.
    data : pandas.DataFrame or None
        The last result of ``cohort_metrics_data``.
    journey : Journey or None
        The analysis context the widget computes on.
    """

    compute = staticmethod(cohorts.cohort_metrics_data)
    DATA_PARAMETERS: ClassVar[tuple[str, ...]] = tuple(inspect.signature(cohorts.cohort_metrics_data).parameters)[1:]

    by = traitlets.Unicode("segment", help="Cohort dimension.")
    outcome = traitlets.Unicode("conversion", help="conversion, churn or expansion (a key of OUTCOME_METRICS).")
    window_days = traitlets.Int(30, help="Days after signup for conversion and stage metrics.")
    segment = traitlets.Unicode(health.ALL_SEGMENTS, help="'all' or a customers.segment value.")
    min_support = traitlets.Int(30, help="Fewest customers per cohort.")
    as_of = traitlets.Unicode("", help="Censoring date (ISO); empty for the latest event.")
    sample_n = traitlets.Int(0, help="0 for every customer; >0 for a seeded sample.")

    def __init__(
        self,
        store: Store,
        *,
        definition: JourneyDefinition,
        by: str = "segment",
        outcome: str = "conversion",
        window_days: int = 30,
        segment: str | None = health.ALL_SEGMENTS,
        min_support: int = 30,
        as_of: str | None = "",
        sample_n: int = 0,
        journey: Journey | None = None,
        **kwargs: Any,
    ) -> None:
        fixed = {k: kwargs.pop(k) for k in list(kwargs) if k in self.DATA_PARAMETERS}
        fixed["definition"] = definition
        super().__init__(**kwargs)
        self.live = None
        with self.hold_trait_notifications():
            self.by = by
            self.outcome = outcome
            self.window_days = int(window_days)
            self.segment = segment or health.ALL_SEGMENTS
            self.min_support = int(min_support)
            self.as_of = "" if as_of is None else str(as_of)
            self.sample_n = int(sample_n)
        self.by_picker = widgets.Dropdown(options=picker_options(BY_CHOICES, self.by), value=self.by, description="Compare by:", style=LABEL_STYLE)
        self.outcome_picker = widgets.Dropdown(options=list(cohorts.OUTCOME_METRICS), value=None, description="Outcome:", style=LABEL_STYLE)
        self.window_picker = widgets.Dropdown(options=picker_options(WINDOW_CHOICES, self.window_days), value=self.window_days,
                                              description="Window (days):", style=LABEL_STYLE)
        self.segment_picker = widgets.Dropdown(options=[health.ALL_SEGMENTS, *health.available_segments(store)], value=None,
                                               description="Segment:", style=LABEL_STYLE)
        self.support_picker = widgets.Dropdown(options=picker_options(SUPPORT_CHOICES, self.min_support), value=self.min_support,
                                               description="Min. support:", style=LABEL_STYLE)
        self._sync_pickers()
        self.by_picker.observe(lambda c: setattr(self, "by", c["new"]), names="value")
        self.outcome_picker.observe(lambda c: setattr(self, "outcome", c["new"]), names="value")
        self.window_picker.observe(lambda c: setattr(self, "window_days", int(c["new"])), names="value")
        self.segment_picker.observe(lambda c: setattr(self, "segment", c["new"]), names="value")
        self.support_picker.observe(lambda c: setattr(self, "min_support", int(c["new"])), names="value")
        self._setup(store, fixed, [self.by_picker, self.outcome_picker, self.window_picker, self.segment_picker,
                                   self.support_picker], [], journey=journey)

    def data_parameters(self) -> dict[str, Any]:
        """Return the keyword arguments passed to ``cohort_metrics_data``.

        Returns
        -------
        dict
            As :meth:`journeylib.widgets.base.LiveComputationWidget.data_parameters`, with
            ``metrics`` from the Outcome picker and ``conversion_days`` =
            ``stage_days`` = ``window_days``.
        """
        out = super().data_parameters()
        out["metrics"] = list(cohorts.OUTCOME_METRICS.get(self.outcome, (self.outcome,)))
        out["conversion_days"] = out["stage_days"] = float(self.window_days)
        return out

    def _sync_pickers(self) -> None:
        for picker, value in ((self.outcome_picker, self.outcome), (self.segment_picker, self.segment),
                              (self.by_picker, self.by)):
            if value in picker.options and picker.value != value:
                picker.value = value

    def _title(self) -> str:
        where = "" if self.segment in ("", health.ALL_SEGMENTS) else f" — {self.segment}"
        return f"{self.outcome.capitalize()} by {self.by}{where}"

    def _draw(self, data: pd.DataFrame) -> alt.TopLevelSpec:
        if not (data["status"] == "ok").any():
            return placeholder_chart(
                title=self._title(), message=f"No cohort has {self.min_support}+ customers for this metric; see the table."
            )
        return charts_drivers.cohort_comparison_chart(data, title=self._title())

    @traitlets.observe("by", "outcome", "window_days", "segment", "min_support", "as_of", "sample_n")
    def _recompute(self, change: dict[str, Any]) -> None:
        if self.live is None:
            return
        self._sync_pickers()
        self._refresh()
