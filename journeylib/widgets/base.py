"""Shared parts of the widgets: the live chart area and the red error area.

Why the JupyterChart built with the page is replaced before its first update
----------------------------------------------------------------------------
Each ``altair.JupyterChart`` model carries its own copy of the offline
Vega bundle (about 900 KB of JavaScript), which anywidget imports once per
model. anywidget (0.11) gives a model 2 s to initialise; past that, the
model's ``ready`` promise is rejected for good and every later message from
the kernel to that model is dropped, while its view still draws the first
chart. When a dashboard page opens, all its JupyterChart models load at
once (01_journey_map had 14 of them while displayed charts were JupyterCharts
too; now only widget charts are, see :func:`journeylib.charts.theme.setup_altair`),
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
from typing import Any, cast

import altair as alt
import ipywidgets as widgets

from journeylib.charts import theme

__all__ = ["ERROR_STYLE", "LiveChart", "error_html"]

#: Inline style of the red error area (Voila pages load no extra CSS).
ERROR_STYLE = "color:#a40000;background:#fff1f0;border:1px solid #f3b7b2;padding:6px 10px;border-radius:4px"


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
    (:func:`journeylib.charts.theme.live_chart`), which replaces the one built with
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
        self.widget = theme.live_chart(chart)
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
        self.widget = theme.live_chart(chart)
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
