"""Shared parts of the widgets: the live-recompute base class, the live chart area, the error area and picker helpers.

:class:`LiveComputationWidget` is the base of the widgets that wrap one
computation: pickers set traits, a change recomputes the data, the new chart
is shown in a :class:`LiveChart`, a failure in the red error area
(:func:`error_html`) with a placeholder chart, and the statistical caveats in
a notes area. Widget modules import what they share from here only.

Why the JupyterChart built with the page is replaced before its first update
----------------------------------------------------------------------------
Each ``altair.JupyterChart`` model carries its own copy of the offline
Vega bundle (about 900 KB of JavaScript), which anywidget imports once per
model. anywidget (0.11) gives a model 2 s to initialise; past that, the
model's ``ready`` promise is rejected for good and every later message from
the kernel to that model is dropped, while its view still draws the first
chart. When a dashboard page opens, all its JupyterChart models load at
once (01_journey_map had 14 of them while displayed charts were JupyterCharts
too; now only widget charts are, see :func:`journeylib.notebook.setup_altair`),
so on a busy machine the last ones could miss the 2 s, and assigning
``chart`` to such a widget changed the kernel's spec but never the browser's
picture.

:class:`LiveChart` therefore shows its first new chart in a *new*
JupyterChart (and closes the one built with the page): a model's first state
arrives with its creation, never through the message path that a late
initialisation breaks. That new model loads alone, long after the page, so
later charts update it in place. (Replacing the JupyterChart for every chart
would work too, but each model keeps its own ~6 MB copy of Vega in the
page: about 13 MB more per pick for the two charts of the journey map.)
"""

from __future__ import annotations

import html
import inspect
import warnings
from typing import Any, ClassVar, cast

import altair as alt
import ipywidgets as widgets
import pandas as pd
import traitlets

from journeylib.charts.common import placeholder_chart
from journeylib.exceptions import StatisticalWarning
from journeylib.store import Store

__all__ = [
    "EMBED_OPTIONS",
    "ERROR_STYLE",
    "LABEL_STYLE",
    "NOTES_STYLE",
    "SUPPORT_CHOICES",
    "WINDOW_CHOICES",
    "LiveChart",
    "LiveComputationWidget",
    "error_html",
    "live_chart",
    "picker_options",
]

#: Inline style of the red error area (Voila pages load no extra CSS).
ERROR_STYLE = "color:#a40000;background:#fff1f0;border:1px solid #f3b7b2;padding:6px 10px;border-radius:4px"
#: Inline style of the notes area listing a computation's statistical caveats.
NOTES_STYLE = "color:#5c4400;background:#fffbe6;border:1px solid #f0dc9a;padding:4px 10px;border-radius:4px;font-size:90%"
#: Dropdown ``style``: labels at their natural width (the default cuts "Window (days):").
LABEL_STYLE: dict[str, str] = {"description_width": "initial"}
#: Choices of the window pickers (days after signup).
WINDOW_CHOICES: tuple[int, ...] = (7, 14, 30)
#: Choices of the minimum-support pickers (customers per side or per cohort).
SUPPORT_CHOICES: tuple[int, ...] = (10, 20, 30, 50, 100)
#: vega-embed options of live charts: SVG (so text can be asserted on) and no action menu.
EMBED_OPTIONS: dict[str, Any] = {"renderer": "svg", "actions": False}


def live_chart(chart: alt.TopLevelSpec) -> alt.JupyterChart:
    """Wrap *chart* in a ``JupyterChart`` widget that can be updated in place.

    Assign ``live.chart = new_chart`` to update it; never re-display into an
    ``Output`` widget (that stalls headless execution).

    Parameters
    ----------
    chart : altair.Chart
        The first chart to show.

    Returns
    -------
    altair.JupyterChart
        The widget, drawing SVG without the action menu.

    Examples
    --------
    >>> live = live_chart(alt.Chart().mark_point().properties(title="t"))
    >>> live.spec["title"]
    't'
    """
    return alt.JupyterChart(chart, embed_options=EMBED_OPTIONS)


def picker_options(values: tuple[Any, ...], current: Any) -> list[Any]:
    """Return the options of a picker: its fixed choices plus the current value, sorted.

    Parameters
    ----------
    values : tuple
        The picker's usual choices.
    current : object
        The value the widget was given, kept among the options even when it
        is not one of *values*.

    Returns
    -------
    list
        The distinct values, sorted by type name, then value.

    Examples
    --------
    >>> picker_options(WINDOW_CHOICES, 21)
    [7, 14, 21, 30]
    """
    return sorted({*values, current}, key=lambda v: (str(type(v)), v))


def error_html(message: str) -> str:
    """Return the HTML of the visible error area for *message* (escaped), or ``""``.

    Parameters
    ----------
    message : str
        The failure, e.g. ``"EmptyResultError: segment 'X' matches no customer"``;
        empty for no failure.

    Returns
    -------
    str
        A ``<div class="journeylib-error">`` with the escaped message, or
        ``""`` when *message* is empty.

    Examples
    --------
    >>> "ValueError: a &lt; b</div>" in error_html("ValueError: a < b")
    True
    >>> error_html("")
    ''
    """
    if not message:
        return ""
    return f'<div class="journeylib-error" style="{ERROR_STYLE}">{html.escape(message)}</div>'


class LiveChart(widgets.Box):
    """A chart area: a ``JupyterChart``, replaced once by a new one, then updated in place.

    The first chart assigned to :attr:`chart` gets a new ``JupyterChart``
    (:func:`live_chart`), which replaces the one built with
    the page (that one is closed); later charts update the new one in place.
    A chart equal to the current one changes nothing. The area itself stays
    the same widget, so it keeps its place in the layout. See the module
    docstring for why.

    Parameters
    ----------
    chart : altair.TopLevelSpec
        The first chart.
    **kwargs
        Display options passed to :class:`ipywidgets.Box`.

    Attributes
    ----------
    widget : altair.JupyterChart
        The JupyterChart currently shown.
    replaced : bool
        Whether :attr:`widget` is the JupyterChart built after the page,
        which is updated in place.

    Examples
    --------
    >>> area = LiveChart(alt.Chart().mark_point().properties(title="a"))
    >>> first = area.widget
    >>> area.chart = alt.Chart().mark_point().properties(title="b")
    >>> area.spec["title"], area.widget is first
    ('b', False)
    >>> second = area.widget
    >>> area.chart = alt.Chart().mark_point().properties(title="c")
    >>> area.spec["title"], area.widget is second
    ('c', True)
    """

    def __init__(self, chart: alt.TopLevelSpec, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.add_class("journeylib-live")  # the browser tests look for chart texts inside live charts only
        self.widget = live_chart(chart)
        self.replaced = False
        self.children = [self.widget]

    @property
    def chart(self) -> alt.TopLevelSpec:
        """The chart shown; assign a chart to show it."""
        return cast("alt.TopLevelSpec", self.widget.chart)  # never None: every JupyterChart here gets a chart

    @chart.setter
    def chart(self, chart: alt.TopLevelSpec) -> None:
        if chart.to_dict() == self.widget.spec:  # same picture: nothing to send
            return
        if self.replaced:
            self.widget.chart = chart
            return
        old = self.widget
        self.widget = live_chart(chart)
        self.replaced = True
        self.children = [self.widget]
        old.close()

    @property
    def spec(self) -> dict[str, Any] | None:
        """The Vega-Lite spec of the chart shown (``JupyterChart.spec``)."""
        spec: dict[str, Any] | None = self.widget.spec
        return spec

    def close(self) -> None:
        """Close the area and its JupyterChart."""
        self.widget.close()
        super().close()


class LiveComputationWidget(widgets.VBox):
    """Base of the widgets that wrap one computation and show its chart live.

    Subclasses set :attr:`compute` (the ``_data`` function), declare its
    picker-driven parameters as traits, and implement :meth:`_draw` and
    :meth:`_title`. Parameters of the computation that have no trait are kept
    in :attr:`fixed`. On any observed trait change the data are recomputed
    and the new chart is shown in ``live``
    (:class:`LiveChart`); a failure shows in
    :attr:`errors` (and :attr:`error`) with a placeholder chart, never raised; the
    statistical caveats of the computation
    (:class:`~journeylib.exceptions.StatisticalWarning`) are listed in
    :attr:`notes` instead of the cell's output.
    """

    compute: ClassVar[Any]
    DATA_PARAMETERS: ClassVar[tuple[str, ...]] = ()
    error = traitlets.Unicode("", help="Message of the last failure; empty when the chart is current.")

    def _setup(self, store: Store, fixed: dict[str, Any], controls: list[widgets.Widget], extra: list[widgets.Widget]) -> None:
        self.store = store
        self.fixed = fixed
        self.data: pd.DataFrame | None = None
        self.errors = widgets.HTML("")
        self.notes = widgets.HTML("")
        self.live: LiveChart | None = None
        self.live = LiveChart(self._chart())
        self.children = [widgets.HBox(controls), self.errors, self.notes, self.live, *extra]

    def data_parameters(self) -> dict[str, Any]:
        """Return the keyword arguments passed to the wrapped computation.

        Returns
        -------
        dict
            ``{name: value}`` for every name in :attr:`DATA_PARAMETERS`:
            traits where the widget has one (``""`` passed as None), the
            constructor's values otherwise.
        """
        out: dict[str, Any] = {}
        for name in self.DATA_PARAMETERS:
            if self.has_trait(name):
                value = getattr(self, name)
                out[name] = None if value == "" else value
            else:
                out[name] = self.fixed.get(name, inspect.signature(self.compute).parameters[name].default)
        return out

    def _draw(self, data: pd.DataFrame) -> alt.TopLevelSpec:
        raise NotImplementedError

    def _title(self) -> str:
        raise NotImplementedError

    def _after(self, data: pd.DataFrame) -> None:
        """Update widgets other than the chart after a successful computation."""

    def _chart(self) -> alt.TopLevelSpec:
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", StatisticalWarning)
                data = self.compute(self.store, **self.data_parameters())
                chart = self._draw(data)
            self._show_notes(caught)
        except Exception as exc:  # a widget callback must show its failure, not raise it
            self.notes.value = ""
            self.error = f"{type(exc).__name__}: {exc}"
            self.errors.value = error_html(self.error)
            return placeholder_chart(title=self._title(), message="No result for this selection; see the message above.")
        self.data = data
        self.error = ""
        self.errors.value = ""
        self._after(data)
        return chart

    def _show_notes(self, caught: list[warnings.WarningMessage]) -> None:
        notes = []
        for w in caught:
            if issubclass(w.category, StatisticalWarning):
                notes.append(str(w.message))
            else:  # not ours to summarise: pass it on
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        items = "".join(f"<li>{html.escape(n)}</li>" for n in dict.fromkeys(notes))
        self.notes.value = f'<ul class="journeylib-notes" style="{NOTES_STYLE}">{items}</ul>' if items else ""

    def _refresh(self) -> None:
        if self.live is None:  # still being constructed
            return
        self.live.chart = self._chart()
