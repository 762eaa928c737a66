"""VoiceOfCustomerWidget: emotion shares per journey stage, for a stage, segment, topic and period."""

from __future__ import annotations

import inspect
from typing import Any, Self

import altair as alt
import ipywidgets as widgets
import pandas as pd
import traitlets

from journeylib.charts import voice as charts_voc
from journeylib.charts.common import placeholder_chart
from journeylib.context import Journey
from journeylib.scope import ALL
from journeylib.voice import stages as voice_stages
from journeylib.voice import tickets
from journeylib.widgets.base import LiveChart, error_html, journey_options

__all__ = ["VoiceOfCustomerWidget"]


def _options(voice: pd.DataFrame, column: str, *, order_by: str | None = None) -> list[str]:
    if column not in voice.columns:
        return [ALL]
    frame = (
        voice[[column, order_by]].drop_duplicates()
        if order_by and order_by in voice.columns
        else voice[[column]].drop_duplicates()
    )
    if order_by and order_by in frame.columns:
        frame = frame.sort_values(order_by)
    values = [str(v) for v in frame[column].dropna().tolist() if str(v) not in (tickets.NO_STAGE,)]
    if not order_by:
        values = sorted(set(values))
    return [ALL, *dict.fromkeys(values)]


class VoiceOfCustomerWidget(widgets.VBox):
    """Emotion shares per journey stage with stage, segment, topic and period pickers.

    Wraps :func:`journeylib.voice.stages.emotion_by_stage_data`: its data parameters
    (``segment``, ``stage``, ``topic``, ``period``, ``as_of``) are traits with
    the same names and meaning. A change (from a dropdown or in code)
    recomputes the data and shows the new chart in the ``live`` area. A failure (e.g. a selection without tickets) is shown in the red
    ``errors`` area with a placeholder chart, never raised.

    In a notebook, build it with :meth:`from_journey` on the scored tickets
    the notebook prepared (``from_journey(journey, voice=voice, ...)``).

    Parameters
    ----------
    voice : pandas.DataFrame
        Scored tickets with stages (``assign_stages(ticket_voice_data(...))``)
        and, for the topic picker, topics (:func:`journeylib.voice.tickets.add_topics`).
    segment, stage, topic, period : str, default "all"
        The initial selection.
    as_of : str, default ""
        End of the period; empty for the latest ticket.
    journey : Journey, optional
        The analysis context the tickets come from (set by
        :meth:`from_journey`; not a parameter of ``emotion_by_stage_data``).
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
    journey : Journey or None
        The analysis context the tickets come from.

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

    compute = staticmethod(voice_stages.emotion_by_stage_data)
    draw = staticmethod(charts_voc.emotion_by_stage_chart)
    #: Names of the wrapped computation's parameters after ``voice``.
    DATA_PARAMETERS: tuple[str, ...] = tuple(inspect.signature(voice_stages.emotion_by_stage_data).parameters)[1:]

    segment = traitlets.Unicode(ALL, help="'all' or a segment.")
    stage = traitlets.Unicode(ALL, help="'all' or a stage name.")
    topic = traitlets.Unicode(ALL, help="'all' or a topic label.")
    period = traitlets.Unicode(ALL, help="'all', 'last_<N>w', 'YYYY-MM' or 'YYYY-Qn'.")
    as_of = traitlets.Unicode("", help="End of the period (ISO date); empty for the latest ticket.")
    error = traitlets.Unicode("", help="Message of the last failure; empty when the chart is current.")

    def __init__(
        self,
        voice: pd.DataFrame,
        *,
        segment: str = ALL,
        stage: str = ALL,
        topic: str = ALL,
        period: str = ALL,
        as_of: str | None = "",
        journey: Journey | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.voice = voice
        self.journey = journey
        self.data: pd.DataFrame | None = None
        self.live: LiveChart | None = None
        self.segment_picker = widgets.Dropdown(options=_options(voice, "segment"), description="Segment:")
        self.stage_picker = widgets.Dropdown(
            options=_options(voice, "stage", order_by="stage_order"), description="Stage:"
        )
        self.topic_picker = widgets.Dropdown(options=_options(voice, "topic_label"), description="Topic:")
        self.period_picker = widgets.Dropdown(options=tickets.period_options(voice), description="Period:")
        self._pickers = {
            "segment": self.segment_picker,
            "stage": self.stage_picker,
            "topic": self.topic_picker,
            "period": self.period_picker,
        }
        self.errors = widgets.HTML("")
        with self.hold_trait_notifications():
            self.segment, self.stage, self.topic, self.period = (
                segment or ALL,
                stage or ALL,
                topic or ALL,
                period or ALL,
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

    @classmethod
    def from_journey(cls, journey: Journey, *, voice: pd.DataFrame | None = None, **options: Any) -> Self:
        """Build the widget on the tickets of an analysis context.

        ``emotion_by_stage_data`` reads a frame of scored tickets, not the
        store: the context's scope (customers, ``as_of``) is the one that
        frame was made with. Its own ``segment``, ``stage``, ``topic``,
        ``period`` and ``as_of`` (the end of the period, default the latest
        ticket) are options, as in the constructor.

        Parameters
        ----------
        journey : Journey
            The analysis context (``journeylib.notebook.open_journey``).
        voice : pandas.DataFrame, optional
            The scored tickets with stages (and topics, for the topic
            picker) that the notebook prepared. Default:
            ``journey.ticket_voice_data()`` with stages from the context's
            cached milestones (``assign_stages(..., journey.stage_intervals_data())``),
            without topics.
        **options
            ``segment``, ``stage``, ``topic``, ``period``, ``as_of`` and
            display options passed to :class:`ipywidgets.VBox`.

        Returns
        -------
        VoiceOfCustomerWidget
            The widget.

        Raises
        ------
        TypeError
            If *journey* is not a Journey.
        """
        given = journey_options(f"{cls.__name__}.from_journey", journey, options, forbidden=("journey",))
        if voice is None:
            voice = tickets.assign_stages(journey.ticket_voice_data(), journey.stage_intervals_data())
        return cls(voice, journey=journey, **given)

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
            title = "Emotion by journey stage" + ("" if self.segment == ALL else f" — {self.segment}")
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
