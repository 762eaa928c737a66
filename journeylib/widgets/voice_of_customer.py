"""VoiceOfCustomerWidget: emotion shares per journey stage, for a stage, segment, topic and period."""

from __future__ import annotations

import inspect
from typing import Any

import altair as alt
import ipywidgets as widgets
import pandas as pd
import traitlets

from journeylib.charts import voice as charts_voc
from journeylib.charts.common import placeholder_chart
from journeylib.voice import analysis as voc
from journeylib.widgets.base import LiveChart, error_html

__all__ = ["VoiceOfCustomerWidget"]


def _options(voice: pd.DataFrame, column: str, *, order_by: str | None = None) -> list[str]:
    if column not in voice.columns:
        return [voc.ALL]
    frame = (
        voice[[column, order_by]].drop_duplicates()
        if order_by and order_by in voice.columns
        else voice[[column]].drop_duplicates()
    )
    if order_by and order_by in frame.columns:
        frame = frame.sort_values(order_by)
    values = [str(v) for v in frame[column].dropna().tolist() if str(v) not in (voc.NO_STAGE,)]
    if not order_by:
        values = sorted(set(values))
    return [voc.ALL, *dict.fromkeys(values)]


class VoiceOfCustomerWidget(widgets.VBox):
    """Emotion shares per journey stage with stage, segment, topic and period pickers.

    Wraps :func:`journeylib.voice.analysis.emotion_by_stage_data`: its data parameters
    (``segment``, ``stage``, ``topic``, ``period``, ``as_of``) are traits with
    the same names and meaning. A change (from a dropdown or in code)
    recomputes the data and shows the new chart in the ``live`` area. A failure (e.g. a selection without tickets) is shown in the red
    ``errors`` area with a placeholder chart, never raised.

    Parameters
    ----------
    voice : pandas.DataFrame
        Scored tickets with stages (``assign_stages(ticket_voice_data(...))``)
        and, for the topic picker, topics (:func:`journeylib.voice.analysis.add_topics`).
    segment, stage, topic, period : str, default "all"
        The initial selection.
    as_of : str, default ""
        End of the period; empty for the latest ticket.
    **kwargs
        Display options passed to :class:`ipywidgets.VBox`.

    Attributes
    ----------
    segment_picker, stage_picker, topic_picker, period_picker : ipywidgets.Dropdown
        The pickers (``"all"`` first).
    errors : ipywidgets.HTML
        The visible error area; empty when the last computation succeeded.
    live : LiveChart
        The chart widget.
    data : pandas.DataFrame or None
        The last successful result.

    Examples
    --------
    >>> v = pd.DataFrame({"ticket_id": ["a", "b"], "stage": ["Trial", "Paid"], "stage_order": [0, 1],
    ...     "emotion": ["frustration", "satisfaction"], "compound": [-0.6, 0.5], "segment": ["SMB", "SMB"],
    ...     "created_at": pd.to_datetime(["2025-01-02", "2025-02-03"], utc=True)})
    >>> w = VoiceOfCustomerWidget(v)
    >>> w.segment = "SMB"
    >>> w.live.spec["title"]
    'Emotion by journey stage — SMB'
    """

    compute = staticmethod(voc.emotion_by_stage_data)
    draw = staticmethod(charts_voc.emotion_by_stage_chart)
    #: Names of the wrapped computation's parameters after ``voice``.
    DATA_PARAMETERS: tuple[str, ...] = tuple(inspect.signature(voc.emotion_by_stage_data).parameters)[1:]

    segment = traitlets.Unicode(voc.ALL, help="'all' or a segment.")
    stage = traitlets.Unicode(voc.ALL, help="'all' or a stage name.")
    topic = traitlets.Unicode(voc.ALL, help="'all' or a topic label.")
    period = traitlets.Unicode(voc.ALL, help="'all', 'last_<N>w', 'YYYY-MM' or 'YYYY-Qn'.")
    as_of = traitlets.Unicode("", help="End of the period (ISO date); empty for the latest ticket.")
    error = traitlets.Unicode("", help="Message of the last failure; empty when the chart is current.")

    def __init__(
        self,
        voice: pd.DataFrame,
        *,
        segment: str = voc.ALL,
        stage: str = voc.ALL,
        topic: str = voc.ALL,
        period: str = voc.ALL,
        as_of: str | None = "",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.voice = voice
        self.data: pd.DataFrame | None = None
        self.live: LiveChart | None = None
        self.segment_picker = widgets.Dropdown(options=_options(voice, "segment"), description="Segment:")
        self.stage_picker = widgets.Dropdown(
            options=_options(voice, "stage", order_by="stage_order"), description="Stage:"
        )
        self.topic_picker = widgets.Dropdown(options=_options(voice, "topic_label"), description="Topic:")
        self.period_picker = widgets.Dropdown(options=voc.period_options(voice), description="Period:")
        self._pickers = {
            "segment": self.segment_picker,
            "stage": self.stage_picker,
            "topic": self.topic_picker,
            "period": self.period_picker,
        }
        self.errors = widgets.HTML("")
        with self.hold_trait_notifications():
            self.segment, self.stage, self.topic, self.period = (
                segment or voc.ALL,
                stage or voc.ALL,
                topic or voc.ALL,
                period or voc.ALL,
            )
            self.as_of = as_of or ""
        self._sync_pickers()
        for name, picker in self._pickers.items():
            picker.observe(self._on_pick(name), names="value")
        self.live = LiveChart(self._chart())
        self.children = [
            widgets.HBox([self.segment_picker, self.stage_picker]),
            widgets.HBox([self.topic_picker, self.period_picker]),
            self.errors,
            self.live,
        ]

    def data_parameters(self) -> dict[str, Any]:
        """Return the keyword arguments passed to the wrapped computation.

        Returns
        -------
        dict
            ``{name: value}`` for every name in :attr:`DATA_PARAMETERS`
            (``as_of=""`` is passed as ``None``).
        """
        values = {name: getattr(self, name) for name in self.DATA_PARAMETERS}
        values["as_of"] = values["as_of"] or None
        return values

    # -- internals ----------------------------------------------------------------
    def _sync_pickers(self) -> None:
        # A value the data does not have (e.g. from a URL) stays out of the
        # dropdown; the computation reports it in the error area.
        for name, picker in self._pickers.items():
            value = getattr(self, name)
            if value in picker.options and picker.value != value:
                picker.value = value

    def _on_pick(self, name: str) -> Any:
        def handler(change: dict[str, Any]) -> None:
            setattr(self, name, change["new"])

        return handler

    def _chart(self) -> alt.TopLevelSpec:
        try:
            data = self.compute(self.voice, **self.data_parameters())
            chart = self.draw(data)
        except Exception as exc:  # a widget callback must show its failure, not raise it
            self.error = f"{type(exc).__name__}: {exc}"
            self.errors.value = error_html(self.error)
            title = "Emotion by journey stage" + ("" if self.segment == voc.ALL else f" — {self.segment}")
            return placeholder_chart(
                title=title, message="No tickets for this selection; see the message above."
            )
        self.data = data
        self.error = ""
        self.errors.value = ""
        return chart

    @traitlets.observe("segment", "stage", "topic", "period", "as_of")
    def _recompute(self, change: dict[str, Any]) -> None:
        if self.live is None:  # still being constructed
            return
        self._sync_pickers()
        self.live.chart = self._chart()
