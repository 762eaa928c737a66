"""VoiceOfCustomerWidget: emotion shares per journey stage, for a stage, segment, topic and period."""

from __future__ import annotations

import html
import inspect
from typing import Any, Self

import altair as alt
import ipywidgets as widgets
import pandas as pd
import traitlets

from journeylib.charts import voice as charts_voc
from journeylib.charts.common import placeholder_chart
from journeylib.context import Journey
from journeylib.exceptions import EmptyResultError
from journeylib.scope import ALL
from journeylib.voice import stages as voice_stages
from journeylib.voice import tickets
from journeylib.voice.sentiment import UNSCORED
from journeylib.voice.topics import TopicModel
from journeylib.widgets.base import NOTES_STYLE, LiveChart, error_html, journey_options

__all__ = ["NO_TICKETS", "VoiceOfCustomerWidget"]

#: The sentence shown (with the selection) when a selection of existing values has no ticket.
NO_TICKETS = "No tickets for this choice."

# The pickers: widget trait -> (column filtered by value, or "" for the period; label in the scope sentence).
_PICKED = {"segment": ("segment", "segment"), "stage": ("stage", "stage"), "topic": ("topic_label", "topic"),
           "period": ("", "period")}


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
    recomputes the data and shows the new chart in the ``live`` area.

    Each picker offers ``"all"`` and only the values that have tickets with
    an emotion label and a stage under the other pickers' current values
    (the tickets ``emotion_by_stage_data`` counts), so no choice in a
    dropdown comes out empty. A selection of existing values with no ticket
    (set in code or from a URL) shows :data:`NO_TICKETS` and the selection in
    the ``notice`` area with a placeholder chart; any other failure (a value
    the tickets do not have at all, a malformed period) is shown in the red
    ``errors`` area. Neither is raised.

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
    notice : ipywidgets.HTML
        ":data:`NO_TICKETS` — segment …, stage …, topic …, period …" when
        the selection has no ticket; empty otherwise.
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
    empty = traitlets.Unicode("", help="The no-ticket sentence with the selection; empty when the selection has tickets.")

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
        # every value the tickets have, per picker; narrowed to the current selection's by _sync_pickers
        self._all_options = {name: tuple(picker.options) for name, picker in self._pickers.items()}
        self._has_tickets: dict[tuple[str, ...], bool] = {}
        self._utc_voice = voice.assign(created_at=tickets.utc_series(voice["created_at"])) if "created_at" in voice else voice
        self._syncing = False
        self.errors = widgets.HTML("")
        self.notice = widgets.HTML("")
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
            self.notice,
            self.live,
        ]

    @classmethod
    def from_journey(
        cls,
        journey: Journey,
        *,
        voice: pd.DataFrame | None = None,
        scorer: str = "vader",
        mask_pii: bool = True,
        n_topics: int | None = None,
        topic_stop_words: str | tuple[str, ...] = (),
        **options: Any,
    ) -> Self:
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
            picker) that the notebook prepared. Default: the context's
            tickets scored by ``ticket_voice_data(scorer=scorer,
            mask_pii=mask_pii)`` through its persistent result store
            (:meth:`journeylib.context.Journey.persisted`), with stages from
            the context's cached milestones (``assign_stages(...,
            journey.stage_intervals_data())``), and topics when *n_topics*
            is given.
        scorer : str, default "vader"
            The sentiment scorer of the default tickets.
        mask_pii : bool, default True
            Mask e-mails, phone numbers and names in the default tickets' text.
        n_topics : int, optional
            Give the default tickets topics: a
            :class:`~journeylib.voice.topics.TopicModel` with this many
            topics (0 means chosen automatically) fitted to their text
            through :meth:`~journeylib.context.Journey.persisted_call`, as
            notebook 05 fits it, so a model a report run fitted on the same
            data is read from disk. None (default): no topics.
        topic_stop_words : str or tuple of str, default ()
            Extra stop words of that topic model.
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
            scored = journey.persisted(tickets.ticket_voice_data, scorer=scorer, mask_pii=mask_pii)
            voice = tickets.assign_stages(scored, journey.stage_intervals_data())
            if n_topics is not None:
                model = TopicModel(n_topics=n_topics or "auto", extra_stop_words=topic_stop_words)
                voice = tickets.add_topics(voice, journey.persisted_call(model.fit, voice["text"]))
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
    def _selection_has_tickets(self, selection: dict[str, str]) -> bool:
        # The filters of emotion_by_stage_data, in its order, without its aggregation (a picker's
        # options are checked value by value); tests/test_widgets.py checks that the two agree.
        # Memoised: the voice frame does not change.
        key = (*(selection[name] for name in self._pickers), self.as_of)
        if key not in self._has_tickets:
            function = "VoiceOfCustomerWidget"
            try:
                v = self._utc_voice
                for name in ("segment", "stage", "topic"):
                    v = tickets.filter_by_value(v, _PICKED[name][0], selection[name], function=function)
                v = tickets.filter_by_period(v, selection["period"], self.as_of or None, function=function)
            except (EmptyResultError, ValueError):  # ValueError: a malformed period, reported by _chart
                self._has_tickets[key] = False
            else:  # without these columns the computation fails and _chart reports why
                counted = {"emotion", "stage"} <= set(v.columns) and ((v["emotion"] != UNSCORED) & (v["stage"] != tickets.NO_STAGE)).any()
                self._has_tickets[key] = bool(counted)
        return self._has_tickets[key]

    def available_options(self, name: str) -> list[str]:
        """Return the values the *name* picker offers under the other pickers' current values.

        Parameters
        ----------
        name : {"segment", "stage", "topic", "period"}
            A picker.

        Returns
        -------
        list of str
            ``"all"``, then each value of the tickets (in the picker's order)
            whose selection, with the other pickers as they are, has tickets;
            plus the current value when it has none, so the dropdown shows
            what is selected.

        Raises
        ------
        ValueError
            If *name* is not a picker.
        """
        if name not in self._pickers:
            msg = f"available_options: name={name!r} is not a picker; allowed: {', '.join(self._pickers)}"
            raise ValueError(msg)
        current = {n: getattr(self, n) for n in self._pickers}
        kept = [
            v for v in self._all_options[name] if v == ALL or self._selection_has_tickets({**current, name: v})
        ]
        if current[name] in self._all_options[name] and current[name] not in kept:
            kept.append(current[name])
        return kept

    def _sync_pickers(self) -> None:
        # Offer only values with tickets; a value the tickets do not have at all (e.g. from a URL)
        # stays out of the dropdown and the computation reports it in the error area.
        self._syncing = True
        try:
            for name, picker in self._pickers.items():
                value = getattr(self, name)
                options = tuple(self.available_options(name))
                if tuple(picker.options) != options:
                    picker.options = options  # resets picker.value; _syncing keeps that off the traits
                if value in options and picker.value != value:
                    picker.value = value
        finally:
            self._syncing = False

    def _on_pick(self, name: str) -> Any:
        def handler(change: dict[str, Any]) -> None:
            if not self._syncing and change["new"] is not None:
                setattr(self, name, change["new"])

        return handler

    def _scope_text(self) -> str:
        parts = [f"{label} {getattr(self, name)}" for name, (_, label) in _PICKED.items()]
        as_of = f", as of {self.as_of}" if self.as_of else ""
        return ", ".join(parts) + as_of

    def _values_exist(self) -> bool:
        # Whether every chosen value is one the tickets have (so an empty result is the combination's).
        return all(getattr(self, name) in self._all_options[name] for name in self._pickers)

    def _chart(self) -> alt.TopLevelSpec:
        title = "Emotion by journey stage" + ("" if self.segment == ALL else f" — {self.segment}")
        try:
            data = self.compute(self.voice, **self.data_parameters())
            chart = self.draw(data)
        except EmptyResultError as exc:
            if not self._values_exist():
                return self._failed(exc, title)
            self.error = ""
            self.errors.value = ""
            self.empty = f"{NO_TICKETS} ({self._scope_text()})"
            self.notice.value = f'<div class="journeylib-empty" style="{NOTES_STYLE}">{html.escape(self.empty)}</div>'
            return placeholder_chart(title=title, message=NO_TICKETS)
        except Exception as exc:  # a widget callback must show its failure, not raise it
            return self._failed(exc, title)
        self.data = data
        self.error = ""
        self.errors.value = ""
        self.empty = ""
        self.notice.value = ""
        return chart

    def _failed(self, exc: Exception, title: str) -> alt.TopLevelSpec:
        self.error = f"{type(exc).__name__}: {exc}"
        self.errors.value = error_html(self.error)
        self.empty = ""
        self.notice.value = ""
        return placeholder_chart(title=title, message="No chart for this selection; see the message above.")

    @traitlets.observe("segment", "stage", "topic", "period", "as_of")
    def _recompute(self, change: dict[str, Any]) -> None:
        if self.live is None:  # still being constructed
            return
        self._sync_pickers()
        self.live.chart = self._chart()
