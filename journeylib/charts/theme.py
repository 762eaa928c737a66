"""The one Altair theme of journeylib.

Importing this module registers and enables the ``"journeylib"`` Altair theme
(fonts, palette, sizes). Charts never set fonts or colours themselves. How
charts render (kernel SVG or live widgets) is chosen by
:func:`journeylib.notebook.setup_altair`.
"""

from __future__ import annotations

import altair as alt

__all__ = ["FONT", "PALETTE", "THEME_NAME", "journeylib_theme"]

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
                "labelLimit": 0,  # never cut a label with "…"; long category labels wrap (charts.common.wrapped_label_axis)
                "gridColor": "#e6e6e6",
                "domainColor": "#888888",
                "tickColor": "#888888",
            },
            "legend": {"labelFontSize": 11, "titleFontSize": 12, "titleFontWeight": "normal", "labelLimit": 0},
            "header": {"labelFontSize": 12, "titleFontSize": 12},
            "range": {"category": list(PALETTE)},
            "mark": {"color": PALETTE[0]},
            "bar": {"color": PALETTE[0]},
            "line": {"strokeWidth": 2},
            "point": {"size": 30},
            "text": {"fontSize": 13, "color": "#555555"},
        }
    }
