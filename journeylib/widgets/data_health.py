"""DataHealthWidget: weekly event volume per source, recomputed per segment."""

from __future__ import annotations

import datetime as dt
import inspect
from typing import Any, Self

import altair as alt
import ipywidgets as widgets
import pandas as pd
import traitlets

from journeylib import health
from journeylib.charts import health as charts
from journeylib.charts.common import placeholder_chart
from journeylib.context import Journey
from journeylib.store import Store
from journeylib.widgets.base import SCOPE_FILTERS, ContextRunner, LiveChart, error_html, journey_options, scope_filters

__all__ = ["DataHealthWidget"]


class DataHealthWidget(widgets.VBox):
    """Weekly events per source for a segment, as a live chart with a segment picker.

    Wraps :func:`journeylib.health.source_volume_data`: its data parameters
    (``as_of``, ``segment``, ``sample_n``, ``random_state``) are traits of the
    widget with the same names and meaning. Changing any of them (the
    ``Segment`` dropdown changes ``segment``) recomputes the data and shows the
    new chart in the ``live`` area. A failure (e.g. a segment
    without events) is shown in the red ``errors`` area above the chart,
    with a placeholder chart, and never raised.

    In a notebook, build it with :meth:`from_journey`: the store and the
    scope's filters come from the context, and the segment picker computes
    on ``journey.with_scope(segment=...)``.

    Parameters
    ----------
    store : Store
        The journey store to read.
    as_of : str, datetime.date or None, default None
        End of the timeline; ``None`` or ``""`` for the latest event.
    segment : str, default "all"
        ``"all"`` or a ``customers.segment`` value.
    sample_n : int, default 0
        0 for every customer; otherwise a seeded sample of that many customers.
    random_state : int, default 0
        Seed of the sample.
    journey : Journey, optional
        The analysis context to compute on (set by :meth:`from_journey`;
        not a parameter of ``source_volume_data``).
    **kwargs
        Display options passed to :class:`ipywidgets.VBox` (``layout``, ...).

    Attributes
    ----------
    segment_picker : ipywidgets.Dropdown
        ``"all"`` followed by the store's segments.
    errors : ipywidgets.HTML
        The visible error area; empty when the last computation succeeded.
    live : LiveChart
        The chart widget; ``live.chart`` is the current chart.
    data : pandas.DataFrame or None
        The last successful result of ``source_volume_data``.
    journey : Journey or None
        The analysis context the widget computes on.

    Examples
    --------
    >>> store = Store(":memory:")
    >>> _ = store.insert("customers", pd.DataFrame({"customer_id": ["c1"], "segment": ["SMB"],
    ...     "signup_at": ["2024-01-01T00:00:00Z"]}))
    >>> _ = store.insert("events", pd.DataFrame({"event_id": ["e1"], "customer_id": ["c1"],
    ...     "timestamp": ["2024-03-04T10:00:00Z"], "event": ["login"], "source": ["product"]}))
    >>> w = DataHealthWidget(store)
    >>> w.segment = "SMB"
    >>> w.live.spec["title"]
    'Weekly events by source — SMB'
    """

    #: The computation the widget wraps, and the chart that draws its result.
    compute = staticmethod(health.source_volume_data)
    draw = staticmethod(charts.source_volume_chart)
    #: Names of the wrapped computation's parameters after ``store``.
    DATA_PARAMETERS: tuple[str, ...] = tuple(inspect.signature(health.source_volume_data).parameters)[1:]

    as_of = traitlets.Unicode("", help="End of the timeline (ISO date/time); empty for the latest event.")
    segment = traitlets.Unicode(health.ALL_SEGMENTS, help="'all' or a customers.segment value.")
    sample_n = traitlets.Int(0, help="0 for every customer; >0 for a seeded sample of that many.")
    random_state = traitlets.Int(0, help="Seed of the sample.")
    error = traitlets.Unicode("", help="Message of the last failure; empty when the chart is current.")

    def __init__(
        self,
        store: Store,
        *,
        as_of: str | dt.date | None = None,
        segment: str | None = health.ALL_SEGMENTS,
        sample_n: int = 0,
        random_state: int = 0,
        journey: Journey | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.store = store
        self.journey = journey
        self.data: pd.DataFrame | None = None
        options = [health.ALL_SEGMENTS, *health.available_segments(store)]
        self.segment_picker = widgets.Dropdown(options=options, value=health.ALL_SEGMENTS, description="Segment:")
        self.errors = widgets.HTML("")
        self.live: LiveChart | None = None
        with self.hold_trait_notifications():
            self.as_of = "" if as_of is None else str(as_of.isoformat() if isinstance(as_of, dt.date) else as_of)
            self.segment = health.ALL_SEGMENTS if segment is None else segment
            self.sample_n = sample_n
            self.random_state = random_state
        self._sync_picker()
        self.segment_picker.observe(self._on_pick, names="value")
        self._runner = ContextRunner(store, journey, self.data_parameters() if journey is not None else None)
        self.live = LiveChart(self._chart())
        self.children = [widgets.HBox([self.segment_picker]), self.errors, self.live]

    @classmethod
    def from_journey(cls, journey: Journey, **options: Any) -> Self:
        """Build the widget on an analysis context: its store and its scope.

        The scope's ``as_of``, ``segment``, ``sample_n`` and ``random_state``
        become the widget's traits; the computation runs on the context
        (:meth:`journeylib.context.Journey.run`), and a picked segment on
        ``journey.with_scope(segment=...)``. A scope with a plan or signup
        period, which ``source_volume_data`` cannot filter, is reported in
        the error area.

        Parameters
        ----------
        journey : Journey
            The analysis context (``journeylib.notebook.open_journey``); it
            needs no journey definition.
        **options
            Display options passed to :class:`ipywidgets.VBox`.

        Returns
        -------
        DataHealthWidget
            The widget.

        Raises
        ------
        TypeError
            If *journey* is not a Journey or an option is a scope filter
            (pass ``journey.with_scope(...)`` instead).
        """
        given = journey_options(f"{cls.__name__}.from_journey", journey, options, forbidden=(*SCOPE_FILTERS, "journey"))
        return cls(journey.store, journey=journey, **scope_filters(journey.scope, cls.DATA_PARAMETERS), **given)

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
    def _sync_picker(self) -> None:
        # A segment the store does not have (e.g. from a URL) stays out of the
        # dropdown; the computation then reports it in the error area.
        if self.segment in self.segment_picker.options and self.segment_picker.value != self.segment:
            self.segment_picker.value = self.segment

    def _on_pick(self, change: dict[str, Any]) -> None:
        self.segment = change["new"]

    def _chart(self) -> alt.TopLevelSpec:
        """Recompute the data and return its chart, or a placeholder and the error shown."""
        try:
            data = self._runner.run(self.compute, self.data_parameters())
            chart = self.draw(data)
        except Exception as exc:  # a widget callback must show its failure, not raise it
            self.error = f"{type(exc).__name__}: {exc}"
            self.errors.value = error_html(self.error)
            title = "Weekly events by source" + ("" if self.segment == health.ALL_SEGMENTS else f" — {self.segment}")
            return placeholder_chart(title=title, message="No data for this selection; see the message above.")
        self.data = data
        self.error = ""
        self.errors.value = ""
        return chart

    @traitlets.observe("as_of", "segment", "sample_n", "random_state")
    def _recompute(self, change: dict[str, Any]) -> None:
        if self.live is None:  # still being constructed
            return
        self._sync_picker()
        self.live.chart = self._chart()
