"""Helpers shared by the chart modules: scoped titles, column checks and the placeholder chart.

Every area module (:mod:`journeylib.charts.health`, :mod:`journeylib.charts.journey`,
:mod:`journeylib.charts.customers`, :mod:`journeylib.charts.voice`) checks with
:func:`require_columns` that it was handed what its ``_data`` function returned,
and ends its titles with `` — <segment>`` through :func:`scoped_title` when the
data is filtered to one segment. Widgets show :func:`placeholder_chart` while
their data is unavailable.
"""

from __future__ import annotations

from collections.abc import Sequence

import altair as alt
import pandas as pd

from journeylib.charts import theme as _theme  # noqa: F401  (registers and enables the journeylib theme)
from journeylib.health import ALL_SEGMENTS

__all__ = ["placeholder_chart", "require_columns", "scoped_title"]


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
