"""The customer 360 chart: one customer's activity per week and source kind."""

from __future__ import annotations

import altair as alt
import pandas as pd

from journeylib.charts.common import require_columns

__all__ = ["customer_activity_chart"]


def customer_activity_chart(data: pd.DataFrame, *, title: str | None = None) -> alt.TopLevelSpec:
    """Draw one customer's timeline counted per week and source kind.

    Parameters
    ----------
    data : pandas.DataFrame
        The result of :func:`journeylib.customers.timeline.customer_activity_data`.
    title : str, optional
        Default ``"Activity per week by source kind"``.

    Returns
    -------
    altair.Chart
        Stacked bars: x ``period_start`` (week), y ``count`` (events and
        tickets), colour ``kind``; the tooltip gives the week, kind, count
        and the most frequent events.

    Raises
    ------
    ValueError
        If *data* lacks the columns of ``customer_activity_data``.
    """
    frame = require_columns(data, ["period_start", "kind", "count", "events"], chart="customer_activity_chart",
                            producer="journeylib.customers.timeline.customer_activity_data")
    frame["period_start"] = pd.to_datetime(frame["period_start"], utc=True).dt.tz_localize(None)
    return (
        alt.Chart(frame)
        .mark_bar(width={"band": 0.9})
        .encode(
            x=alt.X("yearweek(period_start):T", title="Week starting"),
            y=alt.Y("count:Q", title="Events and tickets in the week", stack="zero"),
            color=alt.Color("kind:N", title="Source kind"),
            tooltip=[
                alt.Tooltip("period_start:T", title="Week starting", format="%Y-%m-%d"),
                alt.Tooltip("kind:N", title="Source kind"),
                alt.Tooltip("count:Q", title="Events and tickets", format=","),
                alt.Tooltip("events:N", title="Most frequent"),
            ],
        )
        .properties(title=title or "Activity per week by source kind", width=640, height=180)
    )
