"""The one Altair theme of journeylib, and how charts are rendered where.

Importing this module registers and enables the ``"journeylib"`` Altair theme
(fonts, palette, sizes). Charts never set fonts or colours themselves.

Charts render in one of two modes (see ``RECIPES.md`` §4–§5):

``"static"``
    SVG rendered in the kernel by vl-convert: deterministic, no JavaScript,
    right for Papermill reports and offline HTML.
``"dashboard"``
    Under Voila. Charts a notebook simply displays are the same kernel-rendered
    SVG; the charts of widgets (:func:`live_chart`) are Altair's anywidget
    ``JupyterChart`` with its JavaScript inlined (offline), drawing SVG, so
    widgets update them in place. Only widget charts load JavaScript: each
    ``JupyterChart`` imports its own ~900 KB Vega bundle, and anywidget drops
    every later update of a chart whose bundle took more than 2 s to load —
    with a dozen of them loading at page open on a busy 2-core machine, some
    did (see ``journeylib.widgets.base``).

:func:`setup_altair` picks the mode; :func:`query_parameters` reads URL
overrides of notebook parameters under Voila.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import parse_qs

import altair as alt

__all__ = [
    "EMBED_OPTIONS",
    "FONT",
    "PALETTE",
    "THEME_NAME",
    "in_voila",
    "journeylib_theme",
    "live_chart",
    "query_parameters",
    "setup_altair",
]

#: Name the theme is registered under.
THEME_NAME = "journeylib"
#: Font stack; Liberation Sans and DejaVu Sans ship with Debian, so vl-convert finds them offline.
FONT = "Liberation Sans, DejaVu Sans, Helvetica, Arial, sans-serif"
#: Categorical palette (Okabe-Ito, colour-blind safe), most distinct colours first.
PALETTE: tuple[str, ...] = (
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#CC79A7",
    "#56B4E9",
    "#D55E00",
    "#F0E442",
    "#000000",
    "#999999",
)
#: vega-embed options of live charts: SVG (so text can be asserted on) and no action menu.
EMBED_OPTIONS: dict[str, Any] = {"renderer": "svg", "actions": False}

_MODES = ("static", "dashboard")


@alt.theme.register(THEME_NAME, enable=True)
def journeylib_theme() -> alt.theme.ThemeConfig:
    """Return the journeylib Altair theme configuration.

    Registered and enabled when :mod:`journeylib.charts.theme` is imported.

    Returns
    -------
    altair.theme.ThemeConfig
        Fonts, palette, default sizes and axis/legend/title styling.

    Examples
    --------
    >>> journeylib_theme()["config"]["font"].split(",")[0]
    'Liberation Sans'
    """
    return {
        "config": {
            "font": FONT,
            "background": "white",
            "view": {"continuousWidth": 640, "continuousHeight": 300, "stroke": None},
            "title": {"fontSize": 15, "fontWeight": "bold", "anchor": "start", "offset": 12, "color": "#222222"},
            "axis": {
                "labelFontSize": 11,
                "titleFontSize": 12,
                "titleFontWeight": "normal",
                "labelLimit": 260,
                "gridColor": "#e6e6e6",
                "domainColor": "#888888",
                "tickColor": "#888888",
            },
            "legend": {"labelFontSize": 11, "titleFontSize": 12, "titleFontWeight": "normal", "labelLimit": 220},
            "header": {"labelFontSize": 12, "titleFontSize": 12},
            "range": {"category": list(PALETTE)},
            "mark": {"color": PALETTE[0]},
            "bar": {"color": PALETTE[0]},
            "line": {"strokeWidth": 2},
            "point": {"size": 30},
            "text": {"fontSize": 13, "color": "#555555"},
        }
    }


def in_voila() -> bool:
    """Tell whether the code runs in a kernel started by Voila.

    Voila passes ``SERVER_SOFTWARE=voila/<version>`` to its kernels; Papermill,
    nbval and JupyterLab do not.

    Returns
    -------
    bool
        True under Voila.

    Examples
    --------
    >>> isinstance(in_voila(), bool)
    True
    """
    return os.environ.get("SERVER_SOFTWARE", "").startswith("voila/")


def setup_altair(mode: str | None = None) -> str:
    """Enable the journeylib theme and the chart renderer for *mode*.

    Parameters
    ----------
    mode : {"static", "dashboard"}, optional
        ``"static"``: SVG rendered by vl-convert in the kernel (Papermill,
        offline HTML). ``"dashboard"`` (Voila): displayed charts as the same
        SVG, and :func:`live_chart` widgets as offline ``JupyterChart`` drawing
        SVG. Default: the ``REPORT_CHART_MODE`` environment variable, else
        ``"dashboard"`` under Voila, else ``"static"``.

    Returns
    -------
    str
        The mode enabled; notebooks keep it as ``MODE`` and build widgets
        only when it is ``"dashboard"``.

    Raises
    ------
    ValueError
        If the mode (argument or environment) is not one of the two.

    Examples
    --------
    >>> setup_altair("static")
    'static'
    """
    chosen = mode or os.environ.get("REPORT_CHART_MODE") or ("dashboard" if in_voila() else "static")
    if chosen not in _MODES:
        where = "mode" if mode else "REPORT_CHART_MODE"
        msg = f"setup_altair: {where}={chosen!r} is not a chart mode; allowed: {', '.join(_MODES)}"
        raise ValueError(msg)
    alt.theme.enable(THEME_NAME)
    alt.renderers.enable("svg")
    if chosen == "dashboard":
        # Widget charts (live_chart) are JupyterCharts: inline their JavaScript before any is built,
        # or they would load it from a CDN (RECIPES §4).
        alt.JupyterChart.enable_offline(offline=True)
    return chosen


def live_chart(chart: alt.TopLevelSpec) -> alt.JupyterChart:
    """Wrap *chart* in a ``JupyterChart`` widget that can be updated in place.

    Assign ``live.chart = new_chart`` to update it; never re-display into an
    ``Output`` widget (the headless-execution stall of RECIPES §9).

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


def _coerce(name: str, text: str, default: Any) -> Any:
    """Convert the URL value *text* to the type of *default*."""
    if isinstance(default, bool):
        lowered = text.strip().lower()
        if lowered in {"1", "true", "yes", "on"}:
            return True
        if lowered in {"0", "false", "no", "off"}:
            return False
        msg = f"URL parameter {name}={text!r} is not a boolean; use true or false"
        raise ValueError(msg)
    if isinstance(default, int):
        try:
            return int(text)
        except ValueError:
            msg = f"URL parameter {name}={text!r} is not a whole number"
            raise ValueError(msg) from None
    if isinstance(default, float):
        try:
            return float(text)
        except ValueError:
            msg = f"URL parameter {name}={text!r} is not a number"
            raise ValueError(msg) from None
    return text


def query_parameters(defaults: dict[str, Any], *, query_string: str | None = None) -> dict[str, Any]:
    """Override notebook parameters from the Voila URL query string.

    Under Voila the page's query (``?segment=SMB&sample_n=50``) reaches the
    kernel as ``QUERY_STRING``. Only the names in *defaults* are read, each
    converted to the type of its default; other names are ignored. Outside
    Voila (Papermill, JupyterLab) *defaults* come back unchanged, so injected
    parameters win in batch runs.

    The values come from whoever holds the URL: never pass names that choose
    files (``db``, ``output_dir``), and validate the values afterwards (the
    journeylib computations check ``segment``, ``as_of`` and ``sample_n``).

    Parameters
    ----------
    defaults : dict
        Parameter names mapped to their current values (``str``, ``int``,
        ``float`` or ``bool``).
    query_string : str, optional
        The query to read instead of ``QUERY_STRING``; when given, it is read
        even outside Voila (for tests).

    Returns
    -------
    dict
        A new dict with the same keys; values taken from the query where
        present (the last one wins if repeated).

    Raises
    ------
    ValueError
        If a value cannot be converted to its parameter's type.

    Examples
    --------
    >>> query_parameters({"segment": "all", "sample_n": 0}, query_string="segment=SMB&sample_n=50&db=x")
    {'segment': 'SMB', 'sample_n': 50}
    """
    if query_string is None:
        if not in_voila():
            return dict(defaults)
        query_string = os.environ.get("QUERY_STRING", "")
    given = parse_qs(query_string, keep_blank_values=True)
    out = dict(defaults)
    for name, default in defaults.items():
        if name in given:
            out[name] = _coerce(name, given[name][-1], default)
    return out
