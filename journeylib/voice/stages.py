"""Voice of the customer per journey stage: ticket rates, sentiment, emotions and topics.

Rates use exposure: a stage that customers stay in for months gets more
tickets than one they pass through in a day, so tickets are counted per
*customer-month in the stage* (30.44 days), from the stage intervals.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from journeylib.exceptions import EmptyResultError
from journeylib.scope import ALL, to_utc
from journeylib.voice import sentiment
from journeylib.voice.tickets import (
    NO_STAGE,
    assign_stages,
    checked_intervals,
    emotion_shares,
    filter_by_period,
    filter_by_value,
    require_columns,
    utc_series,
)

__all__ = [
    "DAYS_PER_MONTH",
    "emotion_by_stage_data",
    "exposure_end",
    "intervals_with_segments",
    "stage_emotion_data",
    "stage_exposure",
    "voc_by_stage_data",
]

#: Days in the customer-month that ticket rates are counted per.
DAYS_PER_MONTH = 30.44


def stage_exposure(iv: pd.DataFrame, as_of: pd.Timestamp, keys: list[str]) -> pd.DataFrame:
    """Return the customers and customer-days spent in each group of stage intervals, up to *as_of*.

    Parameters
    ----------
    iv : pandas.DataFrame
        Checked stage intervals (:func:`journeylib.voice.tickets.checked_intervals`),
        with the *keys* columns.
    as_of : pandas.Timestamp
        End of exposure for intervals still open or ending later.
    keys : list of str
        Group columns (e.g. ``segment``, ``stage``, ``stage_order``).

    Returns
    -------
    pandas.DataFrame
        *keys*, ``customers_in_stage`` and ``customer_days``.
    """
    end = iv["exited_at"].fillna(as_of).where(lambda t: t <= as_of, as_of)
    days = ((end - iv["entered_at"]).dt.total_seconds() / 86_400).clip(lower=0)
    frame = iv.assign(_days=days)
    return (
        frame.groupby(keys, observed=True)
        .agg(customers_in_stage=("customer_id", "nunique"), customer_days=("_days", "sum"))
        .reset_index()
    )


def intervals_with_segments(
    iv: pd.DataFrame, voice: pd.DataFrame, segments: pd.DataFrame | None, *, function: str
) -> pd.DataFrame:
    """Return the intervals with a text ``segment`` column, from the intervals or from *segments*.

    Parameters
    ----------
    iv : pandas.DataFrame
        Checked stage intervals.
    voice : pandas.DataFrame
        The voice frame (not read).
    segments : pandas.DataFrame or None
        ``customer_id``, ``segment``, when the intervals carry no segment.
    function : str
        The calling function (for messages).

    Returns
    -------
    pandas.DataFrame
        The intervals with ``segment`` (``(none)`` for customers without one).

    Raises
    ------
    ValueError
        If neither the intervals nor *segments* give the segment.
    """
    if "segment" in iv.columns:
        return iv.assign(segment=iv["segment"].astype(str))
    if segments is not None:
        require_columns(segments, ["customer_id", "segment"], function=function, producer="the customers table")
        return iv.merge(
            segments[["customer_id", "segment"]].drop_duplicates("customer_id"), on="customer_id", how="left"
        ).assign(segment=lambda f: f["segment"].fillna("(none)").astype(str))
    msg = (
        f"{function}: stage_intervals has no 'segment' column and no segments frame was given, so the "
        "customer-months per segment are unknown; pass segments=customers[['customer_id', 'segment']] "
        "or intervals from journeylib.journey.stages.stage_intervals_data (which carry segment)"
    )
    raise ValueError(msg)


def exposure_end(voice: pd.DataFrame, iv: pd.DataFrame, as_of: Any) -> pd.Timestamp:
    """Return the end of exposure: *as_of*, or else the latest ticket, entry or exit.

    Parameters
    ----------
    voice : pandas.DataFrame
        Tickets with ``created_at``.
    iv : pandas.DataFrame
        Checked stage intervals.
    as_of : str, date or None
        The end asked for.

    Returns
    -------
    pandas.Timestamp
        UTC.
    """
    ts = to_utc(as_of)
    if ts is not None:
        return ts
    candidates = [pd.Timestamp(voice["created_at"].max()), pd.Timestamp(iv["entered_at"].max())]
    if iv["exited_at"].notna().any():
        candidates.append(pd.Timestamp(iv["exited_at"].max()))
    return max(c for c in candidates if pd.notna(c))


def voc_by_stage_data(
    voice: pd.DataFrame,
    *,
    stage_intervals: pd.DataFrame,
    as_of: Any = None,
    segments: pd.DataFrame | None = None,
    by_segment: bool = True,
) -> pd.DataFrame:
    """Ticket volume, sentiment, emotions and topics per journey stage (and segment).

    Parameters
    ----------
    voice : pandas.DataFrame
        :func:`journeylib.voice.tickets.ticket_voice_data`, with stages from :func:`journeylib.voice.tickets.assign_stages`
        (added here if missing) and optionally topics from :func:`journeylib.voice.tickets.add_topics`.
    stage_intervals : pandas.DataFrame
        ``journeylib.journey.stages.stage_intervals_data`` (exposure comes from it).
    as_of : str, date or None
        End of exposure for customers still in a stage; default: the latest
        ticket or interval date.
    segments : pandas.DataFrame, optional
        ``customer_id``, ``segment``; needed only when the intervals carry no
        ``segment`` column.
    by_segment : bool, default True
        One row per stage × segment; else one row per stage (all segments).

    Returns
    -------
    pandas.DataFrame
        One row per stage (× segment), in journey order: ``segment``
        (``"all"`` when not by segment), ``stage``, ``stage_order``,
        ``customers_in_stage`` (customers with an interval in it),
        ``customer_months`` (time spent in it, 30.44-day months),
        ``tickets`` (opened while in it), ``tickets_per_customer_month``,
        ``tickets_scored``, ``mean_compound`` (of scored tickets),
        ``negative_tickets``, ``share_negative`` (of scored tickets),
        ``negative_per_customer_month``, ``share_frustration``,
        ``share_confusion``, ``share_satisfaction``, ``share_neutral`` (of
        tickets with an emotion label), ``dominant_emotion``, and
        ``top_topic`` (most frequent ``topic_label``; only with topics).
        Stages without tickets have 0 tickets and NaN means.

    Raises
    ------
    ValueError
        If columns are missing.
    EmptyResultError
        If the intervals are empty.
    """
    function = "voc_by_stage_data"
    require_columns(
        voice,
        ["ticket_id", "customer_id", "created_at", "compound", "polarity", "emotion", "segment"],
        function=function,
        producer="ticket_voice_data",
    )
    iv = checked_intervals(stage_intervals, function=function)
    if iv.empty:
        msg = f"{function}: stage_intervals is empty; no stage to describe"
        raise EmptyResultError(msg)
    v = voice if "stage" in voice.columns else assign_stages(voice, iv)
    iv = intervals_with_segments(iv, v, segments, function=function) if by_segment else iv.assign(segment=ALL)
    ref = exposure_end(v, iv, as_of)
    v = v.assign(segment=v["segment"].astype(str) if by_segment else ALL)
    keys = ["segment", "stage", "stage_order"]
    expo = stage_exposure(iv, ref, keys)
    v = v[v["stage"] != NO_STAGE]
    agg = (
        v.assign(_neg=(v["polarity"] == "negative").astype(int))
        .groupby(keys, observed=True)
        .agg(
            tickets=("ticket_id", "size"),
            tickets_scored=("compound", "count"),
            mean_compound=("compound", "mean"),
            negative_tickets=("_neg", "sum"),
        )
        .reset_index()
    )
    out = expo.merge(agg, on=keys, how="left")
    out = out.merge(emotion_shares(v, keys), on=keys, how="left")
    for c in ("tickets", "tickets_scored", "negative_tickets"):
        out[c] = out[c].fillna(0).astype(int)
    out["customer_months"] = out.pop("customer_days") / DAYS_PER_MONTH
    out["tickets_per_customer_month"] = out["tickets"] / out["customer_months"].where(out["customer_months"] > 0)
    out["share_negative"] = out["negative_tickets"] / out["tickets_scored"].where(out["tickets_scored"] > 0)
    out["negative_per_customer_month"] = out["negative_tickets"] / out["customer_months"].where(
        out["customer_months"] > 0
    )
    cols = [
        "segment", "stage", "stage_order", "customers_in_stage", "customer_months", "tickets",
        "tickets_per_customer_month", "tickets_scored", "mean_compound", "negative_tickets", "share_negative",
        "negative_per_customer_month", *[f"share_{e}" for e in sentiment.EMOTIONS], "dominant_emotion",
    ]  # fmt: skip
    if "topic_label" in v.columns:
        top = (
            v.groupby([*keys, "topic_label"], observed=True).size().reset_index(name="n")
            .sort_values([*keys, "n", "topic_label"], ascending=[True, True, True, False, True])
            .drop_duplicates(keys).rename(columns={"topic_label": "top_topic"})
        )  # fmt: skip
        out = out.merge(top[[*keys, "top_topic"]], on=keys, how="left")
        cols.append("top_topic")
    return out[cols].sort_values(["segment", "stage_order"]).reset_index(drop=True)


def emotion_by_stage_data(
    voice: pd.DataFrame,
    *,
    segment: str = ALL,
    stage: str = ALL,
    topic: str = ALL,
    period: str = ALL,
    as_of: Any = None,
) -> pd.DataFrame:
    """Emotion shares per journey stage for one selection of tickets (the dashboard's view).

    Parameters
    ----------
    voice : pandas.DataFrame
        :func:`journeylib.voice.tickets.ticket_voice_data` after :func:`journeylib.voice.tickets.assign_stages` (and
        :func:`journeylib.voice.tickets.add_topics` to filter by topic).
    segment : str, default "all"
        A segment, or ``"all"``.
    stage : str, default "all"
        A stage name, or ``"all"``.
    topic : str, default "all"
        A ``topic_label``, or ``"all"``.
    period : str, default "all"
        ``"all"``, ``"last_<N>w"``, ``"YYYY-MM"`` or ``"YYYY-Qn"`` (see
        :func:`journeylib.voice.tickets.period_options`), relative to *as_of*.
    as_of : str, date or None
        End of the period; default the latest ticket.

    Returns
    -------
    pandas.DataFrame
        One row per stage × emotion (all four emotions, zeros included), in
        journey order: ``stage``, ``stage_order``, ``emotion``, ``tickets``
        (with that emotion), ``stage_tickets`` (with any emotion label),
        ``share`` (of ``stage_tickets``), ``mean_compound`` (of the stage's
        scored tickets), ``segment``, ``topic``, ``period`` (the selection,
        repeated).

    Raises
    ------
    EmptyResultError
        If the selection holds no ticket with an emotion label (the message
        says which filter emptied it).
    ValueError
        If stages are missing or a period is malformed.

    Examples
    --------
    >>> v = pd.DataFrame({"ticket_id": ["a", "b"], "stage": ["Trial", "Trial"], "stage_order": [0, 0],
    ...     "emotion": ["frustration", "neutral"], "compound": [-0.6, 0.0], "segment": ["SMB", "SMB"],
    ...     "created_at": pd.to_datetime(["2025-01-02", "2025-01-03"], utc=True)})
    >>> emotion_by_stage_data(v).query("tickets > 0")[["emotion", "share"]].values.tolist()
    [['frustration', 0.5], ['neutral', 0.5]]
    """
    function = "emotion_by_stage_data"
    require_columns(
        voice,
        ["ticket_id", "stage", "stage_order", "emotion", "compound", "created_at"],
        function=function,
        producer="assign_stages(ticket_voice_data(...), ...)",
    )
    v = voice.assign(created_at=utc_series(voice["created_at"]))
    v = filter_by_value(v, "segment", segment, function=function)
    v = filter_by_value(v, "stage", stage, function=function)
    v = filter_by_value(v, "topic_label", topic, function=function)
    v = filter_by_period(v, period, as_of, function=function)
    v = v[(v["emotion"] != sentiment.UNSCORED) & (v["stage"] != NO_STAGE)]
    if v.empty:
        msg = f"{function}: no ticket with an emotion label for segment={segment!r}, stage={stage!r}, topic={topic!r}, period={period!r}"
        raise EmptyResultError(msg)
    stages = v[["stage", "stage_order"]].drop_duplicates().sort_values("stage_order")
    grid = stages.merge(pd.DataFrame({"emotion": list(sentiment.EMOTIONS)}), how="cross")
    counts = v.groupby(["stage", "emotion"], observed=True).size().reset_index(name="tickets")
    out = grid.merge(counts, on=["stage", "emotion"], how="left")
    out["tickets"] = out["tickets"].fillna(0).astype(int)
    out["stage_tickets"] = out.groupby("stage")["tickets"].transform("sum")
    out["share"] = out["tickets"] / out["stage_tickets"]
    means = v.groupby("stage")["compound"].mean()
    out["mean_compound"] = out["stage"].map(means)
    out["segment"] = segment or ALL
    out["topic"] = topic or ALL
    out["period"] = period or ALL
    out["_e"] = out["emotion"].map({e: i for i, e in enumerate(sentiment.EMOTIONS)})
    return out.sort_values(["stage_order", "_e"]).drop(columns="_e").reset_index(drop=True)


def stage_emotion_data(voice: pd.DataFrame, *, by_segment: bool = True) -> pd.DataFrame:
    """Return the "emotion at each stage" row of the journey map: one dominant emotion per stage.

    Parameters
    ----------
    voice : pandas.DataFrame
        :func:`journeylib.voice.tickets.ticket_voice_data` after :func:`journeylib.voice.tickets.assign_stages`.
    by_segment : bool, default True
        One row per stage × segment, plus the ``"all"`` rows; else only the
        ``"all"`` rows.

    Returns
    -------
    pandas.DataFrame
        ``segment`` (``"all"`` = every segment), ``stage``, ``stage_order``,
        ``tickets`` (with an emotion label), ``dominant_emotion`` (most
        frequent label other than neutral when any non-neutral label holds
        at least 25% of the stage's tickets, else ``neutral``),
        ``dominant_share``, ``share_frustration``, ``share_confusion``,
        ``share_satisfaction``, ``share_neutral``, ``mean_compound``,
        ``share_negative`` (of scored tickets) and ``emotion_label``, a short
        text for the map (``"frustration 64%"``).

    Raises
    ------
    EmptyResultError
        If no ticket is in a stage.
    """
    function = "stage_emotion_data"
    require_columns(
        voice,
        ["stage", "stage_order", "emotion", "compound", "polarity"],
        function=function,
        producer="assign_stages(ticket_voice_data(...), ...)",
    )
    v = voice[voice["stage"] != NO_STAGE]
    if v.empty:
        msg = f"{function}: no ticket falls in a journey stage"
        raise EmptyResultError(msg)
    frames = [v.assign(segment=ALL)]
    if by_segment and "segment" in v.columns:
        frames.append(v.assign(segment=v["segment"].astype(str)))
    both = pd.concat(frames, ignore_index=True)
    keys = ["segment", "stage", "stage_order"]
    shares = emotion_shares(both, keys)
    extra = (
        both.assign(_neg=(both["polarity"] == "negative").astype(float).where(both["compound"].notna()))
        .groupby(keys, observed=True)
        .agg(mean_compound=("compound", "mean"), share_negative=("_neg", "mean"))
        .reset_index()
    )
    out = shares.merge(extra, on=keys, how="left").rename(columns={"emotion_labelled": "tickets"})
    non_neutral = out[[f"share_{e}" for e in sentiment.EMOTIONS[:3]]]
    best = non_neutral.idxmax(axis=1).astype(str).map(lambda c: c.removeprefix("share_"))
    best_share = non_neutral.max(axis=1)
    # A stage is "frustrated" only if frustration is common there, not merely the top of small shares.
    out["dominant_emotion"] = np.where(best_share >= 0.25, best, "neutral")
    out["dominant_share"] = np.where(best_share >= 0.25, best_share, out["share_neutral"])
    out["emotion_label"] = [
        f"{e} {s:.0%}" if s == s else e for e, s in zip(out["dominant_emotion"], out["dominant_share"], strict=True)
    ]
    out["_all"] = out["segment"] != ALL
    out = out.sort_values(["_all", "segment", "stage_order"]).drop(columns="_all")
    cols = [
        "segment", "stage", "stage_order", "tickets", "dominant_emotion", "dominant_share",
        *[f"share_{e}" for e in sentiment.EMOTIONS], "mean_compound", "share_negative", "emotion_label",
    ]  # fmt: skip
    return out[cols].reset_index(drop=True)


