"""Charts of the data-health computations of :mod:`journeylib.health`.

Each ``<metric>_chart(data, *, title=None)`` takes exactly the frame that
``<metric>_data`` returned and only encodes it: no aggregation happens here
(computations aggregate, so charts stay under Altair's 5,000-row limit). Fonts,
colours and sizes come from the one theme registered in :mod:`journeylib.charts.theme`.

When the data is filtered to one segment (its ``segment`` column holds a single
value other than ``"all"``), the title ends with `` — <segment>``
(:func:`journeylib.charts.common.scoped_title`); dashboards and browser tests
rely on that.
"""

from __future__ import annotations

import altair as alt
import pandas as pd

from journeylib.charts import theme as _theme  # noqa: F401  (registers and enables the journeylib theme)
from journeylib.charts.common import require_columns, scoped_title

__all__ = [
    "coverage_chart",
    "customer_mix_chart",
    "event_type_chart",
    "quarantine_reasons_chart",
    "source_volume_chart",
]

# Counts are whole numbers: no 0.5 ticks on small data.
_COUNT_AXIS = alt.Axis(tickMinStep=1, format=",d")


def source_volume_chart(data: pd.DataFrame, *, title: str | None = None) -> alt.FacetChart:
    """Draw weekly events per source as lines, one row per source.

    Parameters
    ----------
    data : pandas.DataFrame
        The result of :func:`journeylib.health.source_volume_data`.
    title : str, optional
        Title; default ``"Weekly events by source"``. The segment is appended
        when the data is filtered to one.

    Returns
    -------
    altair.FacetChart
        One row per ``source`` (own y scale), x = ``week_start``, y =
        ``events``; zero weeks are drawn, so gaps in a feed show as dips to 0.
        The tooltip flags the partial last week.

    Raises
    ------
    ValueError
        If *data* lacks the columns of ``source_volume_data``.

    Examples
    --------
    >>> data = pd.DataFrame({"source": ["product"], "week_start": [pd.Timestamp("2024-03-04")],
    ...     "iso_week": ["2024-W10"], "events": [3], "active_customers": [2], "partial_week": [False],
    ...     "segment": ["SMB"]})
    >>> source_volume_chart(data).to_dict()["title"]
    'Weekly events by source — SMB'
    """
    frame = require_columns(
        data,
        ["source", "week_start", "iso_week", "events", "active_customers", "partial_week", "segment"],
        chart="source_volume_chart",
        producer="journeylib.health.source_volume_data",
    )
    lines = (
        alt.Chart(frame)
        .mark_line(point=True)
        .encode(
            x=alt.X("week_start:T", title="Week starting (Monday, UTC)"),
            y=alt.Y("events:Q", title="Events", axis=_COUNT_AXIS),
            color=alt.Color("source:N", title="Source", legend=None),
            tooltip=[
                alt.Tooltip("source:N", title="Source"),
                alt.Tooltip("iso_week:N", title="ISO week"),
                alt.Tooltip("events:Q", title="Events", format=","),
                alt.Tooltip("active_customers:Q", title="Active customers", format=","),
                alt.Tooltip("partial_week:N", title="Partial week (cut at as_of)"),
            ],
        )
        .properties(height=90)
    )
    # One row per source with its own y scale: a small feed's gap stays visible next to a big one.
    return (
        lines.facet(row=alt.Row("source:N", title=None, header=alt.Header(labelAngle=0, labelAlign="left")))
        .resolve_scale(y="independent")
        .properties(title=scoped_title(title or "Weekly events by source", data))
    )


def customer_mix_chart(data: pd.DataFrame, *, title: str | None = None) -> alt.Chart:
    """Draw customers per segment as bars stacked by plan.

    Parameters
    ----------
    data : pandas.DataFrame
        The result of :func:`journeylib.health.customer_mix_data`.
    title : str, optional
        Title; default ``"Customers by segment and plan"``. The segment is
        appended when the data holds one segment only.

    Returns
    -------
    altair.Chart
        y = ``segment``, x = ``customers`` stacked by ``plan`` (colour); the
        tooltip shows both shares.

    Raises
    ------
    ValueError
        If *data* lacks the columns of ``customer_mix_data``.

    Examples
    --------
    >>> data = pd.DataFrame({"segment": ["SMB"], "plan": ["pro"], "customers": [4], "segment_customers": [4],
    ...     "share_of_segment": [1.0], "customers_total": [4], "share_of_total": [1.0]})
    >>> customer_mix_chart(data).to_dict()["mark"]["type"]
    'bar'
    """
    frame = require_columns(
        data,
        ["segment", "plan", "customers", "share_of_segment", "share_of_total"],
        chart="customer_mix_chart",
        producer="journeylib.health.customer_mix_data",
    )
    return (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            y=alt.Y("segment:N", title="Segment"),
            x=alt.X("customers:Q", title="Customers", stack="zero", axis=_COUNT_AXIS),
            color=alt.Color("plan:N", title="Plan"),
            order=alt.Order("plan:N"),
            tooltip=[
                alt.Tooltip("segment:N", title="Segment"),
                alt.Tooltip("plan:N", title="Plan"),
                alt.Tooltip("customers:Q", title="Customers", format=","),
                alt.Tooltip("share_of_segment:Q", title="Share of segment", format=".1%"),
                alt.Tooltip("share_of_total:Q", title="Share of all in scope", format=".1%"),
            ],
        )
        .properties(title=scoped_title(title or "Customers by segment and plan", data))
    )


def event_type_chart(data: pd.DataFrame, *, title: str | None = None) -> alt.Chart:
    """Draw event counts per event type as bars, most frequent on top.

    Parameters
    ----------
    data : pandas.DataFrame
        The result of :func:`journeylib.health.event_type_data`.
    title : str, optional
        Title; default ``"Events by type"``. The segment is appended when the
        data is filtered to one.

    Returns
    -------
    altair.Chart
        y = ``event`` (sorted by count), x = ``events``; the tooltip shows
        customers doing it and their share.

    Raises
    ------
    ValueError
        If *data* lacks the columns of ``event_type_data``.

    Examples
    --------
    >>> data = pd.DataFrame({"event": ["login"], "events": [9], "customers": [3], "customers_total": [4],
    ...     "share_of_customers": [0.75], "segment": ["all"]})
    >>> event_type_chart(data).to_dict()["title"]
    'Events by type'
    """
    frame = require_columns(
        data,
        ["event", "events", "customers", "share_of_customers", "segment"],
        chart="event_type_chart",
        producer="journeylib.health.event_type_data",
    )
    return (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            y=alt.Y("event:N", title="Event", sort="-x"),
            x=alt.X("events:Q", title="Events", axis=_COUNT_AXIS),
            tooltip=[
                alt.Tooltip("event:N", title="Event"),
                alt.Tooltip("events:Q", title="Events", format=","),
                alt.Tooltip("customers:Q", title="Customers doing it", format=","),
                alt.Tooltip("share_of_customers:Q", title="Share of customers", format=".1%"),
            ],
        )
        .properties(title=scoped_title(title or "Events by type", data))
    )


def coverage_chart(data: pd.DataFrame, *, title: str | None = None) -> alt.LayerChart:
    """Draw the time span each source covers, from its first to its last event.

    Parameters
    ----------
    data : pandas.DataFrame
        The result of :func:`journeylib.health.coverage_data`.
    title : str, optional
        Title; default ``"Timeline coverage by source"``. The segment is
        appended when the data is filtered to one.

    Returns
    -------
    altair.LayerChart
        One bar per row of *data* (including ``"(all sources)"``, in the data's
        order) from ``first_timestamp`` to ``last_timestamp``, with a tick at
        each end; the tooltip shows events and the share of customers covered.

    Raises
    ------
    ValueError
        If *data* lacks the columns of ``coverage_data``.

    Examples
    --------
    >>> data = pd.DataFrame({"source": ["product"], "first_timestamp": [pd.Timestamp("2024-01-01", tz="UTC")],
    ...     "last_timestamp": [pd.Timestamp("2024-03-01", tz="UTC")], "events": [5], "customers_covered": [2],
    ...     "share_customers_covered": [0.5], "segment": ["all"]})
    >>> coverage_chart(data).to_dict()["layer"][0]["encoding"]["x2"]["field"]
    'last_timestamp'
    """
    frame = require_columns(
        data,
        [
            "source",
            "first_timestamp",
            "last_timestamp",
            "events",
            "customers_covered",
            "share_customers_covered",
            "segment",
        ],
        chart="coverage_chart",
        producer="journeylib.health.coverage_data",
    )
    base = alt.Chart(frame).encode(
        y=alt.Y("source:N", title="Source", sort=None),
        tooltip=[
            alt.Tooltip("source:N", title="Source"),
            alt.Tooltip("first_timestamp:T", title="First event", format="%Y-%m-%d %H:%M"),
            alt.Tooltip("last_timestamp:T", title="Last event", format="%Y-%m-%d %H:%M"),
            alt.Tooltip("events:Q", title="Events", format=","),
            alt.Tooltip("customers_covered:Q", title="Customers covered", format=","),
            alt.Tooltip("share_customers_covered:Q", title="Share of customers", format=".1%"),
        ],
    )
    span = base.mark_bar(height={"band": 0.5}).encode(
        x=alt.X("first_timestamp:T", title="Time (UTC)"), x2="last_timestamp:T"
    )
    # Ticks at both ends keep a source with a single event (a zero-length bar) visible.
    first = base.mark_tick(thickness=2).encode(x="first_timestamp:T")
    last = base.mark_tick(thickness=2).encode(x="last_timestamp:T")
    return alt.LayerChart(layer=[span, first, last]).properties(
        title=scoped_title(title or "Timeline coverage by source", data)
    )


def quarantine_reasons_chart(data: pd.DataFrame, *, title: str | None = None) -> alt.Chart:
    """Draw the top quarantine reasons as bars, in rank order.

    Parameters
    ----------
    data : pandas.DataFrame
        The result of :func:`journeylib.health.quarantine_reasons_data`
        (may be empty: nothing was quarantined).
    title : str, optional
        Title; default ``"Top quarantine reasons"``.

    Returns
    -------
    altair.Chart
        y = ``reason`` (by ``rank``), x = ``rows``; the tooltip shows files and
        the share of all quarantined rows.

    Raises
    ------
    ValueError
        If *data* lacks the columns of ``quarantine_reasons_data``.

    Examples
    --------
    >>> data = pd.DataFrame({"rank": [1], "reason": ["column event: required value is empty"], "rows": [3],
    ...     "files": [1], "share_of_quarantined": [1.0]})
    >>> quarantine_reasons_chart(data).to_dict()["encoding"]["y"]["sort"]
    {'field': 'rank', 'order': 'ascending'}
    """
    frame = require_columns(
        data,
        ["rank", "reason", "rows", "files", "share_of_quarantined"],
        chart="quarantine_reasons_chart",
        producer="journeylib.health.quarantine_reasons_data",
    )
    return (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            y=alt.Y("reason:N", title="Reason", sort=alt.EncodingSortField(field="rank", order="ascending")),
            x=alt.X("rows:Q", title="Quarantined rows", axis=_COUNT_AXIS),
            tooltip=[
                alt.Tooltip("reason:N", title="Reason"),
                alt.Tooltip("rows:Q", title="Rows", format=","),
                alt.Tooltip("files:Q", title="Files", format=","),
                alt.Tooltip("share_of_quarantined:Q", title="Share of quarantined", format=".1%"),
            ],
        )
        .properties(title=title or "Top quarantine reasons")
    )
