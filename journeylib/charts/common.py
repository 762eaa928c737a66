"""Helpers shared by the chart modules: scoped titles, column checks, wrapped axis labels and the placeholder chart.

Every area module (:mod:`journeylib.charts.health`, :mod:`journeylib.charts.journey`,
:mod:`journeylib.charts.customers`, :mod:`journeylib.charts.voice`) checks with
:func:`require_columns` that it was handed what its ``_data`` function returned,
and ends its titles with `` — <segment>`` through :func:`scoped_title` when the
data is filtered to one segment. Widgets show :func:`placeholder_chart` while
their data is unavailable.

Axis labels are never cut with "…": the theme sets no label limit, and a
category axis whose labels are sentences (paths, friction points, behaviours)
takes :func:`wrapped_label_axis`, which breaks each label into lines of at most
:data:`LABEL_WRAP_CHARS` characters, with :func:`label_step` giving each row
the height of its longest label.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterable, Sequence
from typing import Any

import altair as alt
import pandas as pd

from journeylib.charts import theme as _theme  # noqa: F401  (registers and enables the journeylib theme)
from journeylib.health import ALL_SEGMENTS

__all__ = [
    "LABEL_LINE_HEIGHT",
    "LABEL_WRAP_CHARS",
    "label_step",
    "label_width",
    "placeholder_chart",
    "require_columns",
    "scoped_title",
    "wrap_label",
    "wrapped_label_axis",
]

#: Longest line of a wrapped axis label, in characters (about 290 px at the theme's 11 px labels).
LABEL_WRAP_CHARS = 48
#: Height of one line of a wrapped axis label, in pixels (the theme's labels are 11 px).
LABEL_LINE_HEIGHT = 13
# Upper estimate of the width of one character of an 11 px label in the theme's sans-serif fonts (px);
# wide capitals reach ~0.72 em, the average is ~0.5 em.
_CHAR_WIDTH_EM = 0.62


def label_width(text: str, *, font_size: float = 11) -> float:
    """Estimate the width in pixels of a one-line label (an upper estimate for mixed text).

    Parameters
    ----------
    text : str
        The label.
    font_size : float, default 11
        The label's font size in pixels (the theme's axis labels).

    Returns
    -------
    float
        ``0.62 × font_size × len(text)``.

    Examples
    --------
    >>> round(label_width("Trial Started"), 1)
    88.7
    """
    return _CHAR_WIDTH_EM * font_size * len(text)


def wrap_label(text: object, *, width: int = LABEL_WRAP_CHARS) -> list[str]:
    """Break a label into lines of at most *width* characters at spaces (a longer word keeps its own line).

    Parameters
    ----------
    text : object
        The label (converted with ``str``).
    width : int, default :data:`LABEL_WRAP_CHARS`
        Longest line, in characters.

    Returns
    -------
    list of str
        The lines, at least one; joined with spaces they give the label back
        (runs of spaces collapsed).

    Examples
    --------
    >>> wrap_label("Mid-market · Trial Started → Onboarding Completed", width=30)
    ['Mid-market · Trial Started →', 'Onboarding Completed']
    """
    return textwrap.wrap(str(text), width=width, break_long_words=False, break_on_hyphens=False) or [str(text)]


def label_step(labels: Iterable[object], *, width: int = LABEL_WRAP_CHARS, minimum: int = 20) -> int:
    """Return the row height (pixels) that fits the longest wrapped label of a category axis.

    Parameters
    ----------
    labels : iterable
        The axis's categories.
    width : int, default :data:`LABEL_WRAP_CHARS`
        Longest line, in characters, as given to :func:`wrapped_label_axis`.
    minimum : int, default 20
        The row height of one-line labels (Vega-Lite's default step is 20).

    Returns
    -------
    int
        ``max(minimum, lines × LABEL_LINE_HEIGHT + 6)`` for the label with the most lines.

    Examples
    --------
    >>> label_step(["short", "a much longer label that needs a second line to be read whole"])
    32
    """
    lines = max((len(wrap_label(v, width=width)) for v in labels), default=1)
    return minimum if lines <= 1 else max(minimum, lines * LABEL_LINE_HEIGHT + 6)


def wrapped_label_axis(labels: Iterable[object], *, width: int = LABEL_WRAP_CHARS, **options: Any) -> alt.Axis:
    """Build a category axis whose labels are never cut: long ones wrap onto lines.

    Each label is broken with :func:`wrap_label`; a label that needs more
    than one line is drawn as an array of lines (``labelExpr``), padded with
    empty lines at the top so that every label is centred on its row when
    the row is :func:`label_step` high. ``labelLimit`` is 0 (no limit), so a
    word longer than *width* is shown whole too.

    Parameters
    ----------
    labels : iterable
        The axis's categories (the values of the encoded field).
    width : int, default :data:`LABEL_WRAP_CHARS`
        Longest line, in characters.
    **options
        Other :class:`altair.Axis` properties (``title``, ``labelAngle``, ...).

    Returns
    -------
    altair.Axis
        ``labelLimit=0``; with ``labelExpr``, ``labelLineHeight`` and
        ``labelOffset`` when a label has more than one line.

    Examples
    --------
    >>> axis = wrapped_label_axis(["short", "a much longer label that needs a second line to be read whole"])
    >>> axis.to_dict()["labelLimit"], axis.to_dict()["labelExpr"].count("?")
    (0, 2)
    """
    wrapped = {str(v): wrap_label(v, width=width) for v in labels}
    most = max((len(lines) for lines in wrapped.values()), default=1)
    if most <= 1:
        return alt.Axis(labelLimit=0, **options)
    # One branch per label: its lines, with (most - lines) // 2 empty lines on top; the block of `most`
    # lines is centred on the row by labelOffset (the first line sits on the row's centre).
    branches = [
        f"datum.value === {json.dumps(value, ensure_ascii=False)} ? {json.dumps([''] * ((most - len(lines)) // 2) + lines, ensure_ascii=False)}"
        for value, lines in wrapped.items()
    ]
    expr = " : ".join([*branches, "datum.label"])
    return alt.Axis(
        labelLimit=0,
        labelExpr=expr,
        labelLineHeight=LABEL_LINE_HEIGHT,
        labelOffset=-(most - 1) * LABEL_LINE_HEIGHT / 2,
        **options,
    )


def scoped_title(base: str, data: pd.DataFrame) -> str:
    """Append the segment a frame is filtered to, if any, to a chart title.

    Parameters
    ----------
    base : str
        The title without the segment.
    data : pandas.DataFrame
        A computation's result; its ``segment`` column is read if present.

    Returns
    -------
    str
        ``"<base> — <segment>"`` when ``segment`` holds exactly one value other
        than ``"all"``, else *base*.

    Examples
    --------
    >>> scoped_title("Weekly events by source", pd.DataFrame({"segment": ["SMB", "SMB"]}))
    'Weekly events by source — SMB'
    """
    if "segment" not in data.columns:
        return base
    values = data["segment"].dropna().unique()
    if len(values) == 1 and values[0] != ALL_SEGMENTS:
        return f"{base} — {values[0]}"
    return base


def require_columns(data: pd.DataFrame, needed: Sequence[str], *, chart: str, producer: str) -> pd.DataFrame:
    """Return a copy of the columns a chart encodes, or raise naming the missing ones.

    Every chart module uses this to check that it was handed what its
    ``_data`` function returned.

    Parameters
    ----------
    data : pandas.DataFrame
        What the caller passed to the chart.
    needed : sequence of str
        Columns the chart encodes.
    chart, producer : str
        The chart's and the producing computation's names, for the message.

    Returns
    -------
    pandas.DataFrame
        Those columns (each once), copied.

    Raises
    ------
    TypeError
        If *data* is not a DataFrame.
    ValueError
        If columns are missing; the message lists them and the columns found.
    """
    if not isinstance(data, pd.DataFrame):
        msg = f"{chart}: data must be the DataFrame returned by {producer}; got {type(data).__name__}"
        raise TypeError(msg)
    missing = [c for c in needed if c not in data.columns]
    if missing:
        msg = (
            f"{chart}: data lacks column(s) {missing}; pass the DataFrame returned by {producer} "
            f"(columns found: {list(data.columns)})"
        )
        raise ValueError(msg)
    return data.loc[:, list(dict.fromkeys(needed))].copy()


def placeholder_chart(*, title: str, message: str = "No data to show") -> alt.Chart:
    """Draw a text-only chart, shown by widgets while their data is unavailable.

    Parameters
    ----------
    title : str
        Chart title (keep the segment in it, as the data charts do).
    message : str, default "No data to show"
        Text in the middle of the chart.

    Returns
    -------
    altair.Chart
        A chart with one text mark.

    Examples
    --------
    >>> placeholder_chart(title="Weekly events by source — Foo").to_dict()["mark"]["type"]
    'text'
    """
    return alt.Chart(pd.DataFrame({"message": [message]})).mark_text().encode(text="message:N").properties(title=title)
