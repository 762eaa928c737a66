"""Voice of the customer over time: weekly ticket volume, sentiment and emotions, and ticket spikes.

The spike rule
--------------
For every segment × stage, :func:`ticket_spikes_data` tests whether the rate
of (by default negative) tickets is higher than expected, three ways:

``other_stages``
    the stage against all other stages of the same segment;
``other_segments``
    the segment against the other segments in the same stage;
``own_baseline``
    each week against the same stage and segment's previous
    ``baseline_weeks`` weeks.

The first two use the exact conditional test of two Poisson rates: given
``n = x1 + x2`` tickets and exposures ``e1``, ``e2``, ``x1 ~ Binomial(n, e1 /
(e1 + e2))`` if the rates are equal; the one-sided p-value is ``P(X >= x1)``.
The weekly test compares the week's count with a Poisson mean ``rate_baseline
* exposure_week`` (the baseline rate counts half a ticket more than were seen,
so an empty baseline does not make one ticket a certain spike), or a negative binomial with the same mean when the
baseline weeks are over-dispersed (dispersion ``phi`` = mean squared Pearson
residual; variance ``phi * mean``). P-values are adjusted for multiple testing
with Benjamini–Hochberg within each comparison; a spike is ``q <= alpha``
(default 0.05) with at least ``min_tickets`` tickets.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from journeylib.exceptions import EmptyResultError
from journeylib.scope import ALL
from journeylib.stats import bh_qvalues, poisson_rate_test
from journeylib.voice.stages import DAYS_PER_MONTH, exposure_end, intervals_with_segments, stage_exposure
from journeylib.voice.tickets import (
    NO_STAGE,
    assign_stages,
    checked_intervals,
    emotion_shares,
    filter_by_period,
    filter_by_value,
    iso_week_start,
    require_columns,
    utc_series,
)

__all__ = ["COMPARISONS", "SPIKE_KINDS", "ticket_spikes_data", "voc_by_week_data"]

#: Comparisons of :func:`ticket_spikes_data`.
COMPARISONS: tuple[str, ...] = ("other_stages", "other_segments", "own_baseline")
#: Kinds of tickets :func:`ticket_spikes_data` can count.
SPIKE_KINDS: tuple[str, ...] = ("all", "negative", "frustration", "confusion")


def _check_choice(name: str, value: str, allowed: Sequence[str], *, function: str) -> None:
    if value not in allowed:
        msg = f"{function}: {name}={value!r} is not allowed; use one of {', '.join(map(repr, allowed))}"
        raise ValueError(msg)


def voc_by_week_data(
    voice: pd.DataFrame, *, segment: str = ALL, stage: str = ALL, topic: str = ALL, period: str = ALL, as_of: Any = None
) -> pd.DataFrame:
    """Weekly ticket volume, sentiment and emotions for one selection.

    Parameters
    ----------
    voice : pandas.DataFrame
        :func:`journeylib.voice.tickets.ticket_voice_data` (stages and topics needed only to filter by them).
    segment, stage, topic, period, as_of
        As in :func:`journeylib.voice.stages.emotion_by_stage_data`.

    Returns
    -------
    pandas.DataFrame
        One row per ISO week from the first to the last week with a ticket
        (weeks without tickets included, with 0): ``week_start`` (Monday,
        naive UTC), ``iso_week`` (``2025-W07``), ``tickets``,
        ``tickets_scored``, ``mean_compound``, ``negative_tickets``,
        ``share_negative`` (of scored), ``share_frustration``,
        ``share_confusion``, ``share_satisfaction``, ``share_neutral`` (of
        labelled tickets), ``segment``, ``stage``, ``topic``, ``period``.

    Raises
    ------
    EmptyResultError
        If the selection holds no ticket.
    """
    function = "voc_by_week_data"
    require_columns(
        voice,
        ["ticket_id", "created_at", "compound", "polarity", "emotion"],
        function=function,
        producer="ticket_voice_data",
    )
    v = voice.assign(created_at=utc_series(voice["created_at"]))
    v = filter_by_value(v, "segment", segment, function=function)
    v = filter_by_value(v, "stage", stage, function=function)
    v = filter_by_value(v, "topic_label", topic, function=function)
    v = filter_by_period(v, period, as_of, function=function)
    if v.empty:
        msg = f"{function}: no ticket for segment={segment!r}, stage={stage!r}, topic={topic!r}, period={period!r}"
        raise EmptyResultError(msg)
    v = v.assign(week_start=iso_week_start(v["created_at"]), _neg=(v["polarity"] == "negative").astype(int))
    agg = v.groupby("week_start").agg(
        tickets=("ticket_id", "size"), tickets_scored=("compound", "count"), mean_compound=("compound", "mean"),
        negative_tickets=("_neg", "sum"),
    )  # fmt: skip
    weeks = pd.date_range(agg.index.min(), agg.index.max(), freq="7D")
    agg = agg.reindex(weeks)
    agg.index.name = "week_start"
    agg[["tickets", "tickets_scored", "negative_tickets"]] = (
        agg[["tickets", "tickets_scored", "negative_tickets"]].fillna(0).astype(int)
    )
    out = agg.reset_index()
    out["share_negative"] = out["negative_tickets"] / out["tickets_scored"].where(out["tickets_scored"] > 0)
    shares = emotion_shares(v, ["week_start"]).drop(columns=["emotion_labelled", "dominant_emotion"])
    out = out.merge(shares, on="week_start", how="left")
    iso = out["week_start"].dt.isocalendar()
    out.insert(1, "iso_week", iso["year"].astype(str) + "-W" + iso["week"].astype(str).str.zfill(2))
    out["segment"], out["stage"], out["topic"], out["period"] = (
        segment or ALL,
        stage or ALL,
        topic or ALL,
        period or ALL,
    )
    return out


# -- 4. spikes ---------------------------------------------------------------------------------
def _kind_mask(v: pd.DataFrame, kind: str) -> pd.Series:
    if kind == "all":
        return pd.Series(True, index=v.index)
    if kind == "negative":
        return v["polarity"] == "negative"
    return v["emotion"] == kind


def _weekly_exposure(iv: pd.DataFrame, start: pd.Timestamp, as_of: pd.Timestamp) -> pd.DataFrame:
    """Customer-days in each stage × segment × week, from interval overlaps with week bins."""
    week0 = iso_week_start(pd.Series([start]))[0].tz_localize("UTC")
    a = iv["entered_at"].where(lambda t: t >= week0, week0)
    b = iv["exited_at"].fillna(as_of).where(lambda t: t <= as_of, as_of)
    keep = b > a
    a, b, sub = a[keep], b[keep], iv[keep]
    if sub.empty:
        return pd.DataFrame(columns=["segment", "stage", "stage_order", "week_start", "customer_days"])
    day = 86_400.0
    a_s = (a - week0).dt.total_seconds().to_numpy() / day
    b_s = (b - week0).dt.total_seconds().to_numpy() / day
    w_first = np.floor(a_s / 7).astype(np.int64)
    w_last = np.floor((b_s - 1e-9) / 7).astype(np.int64)
    counts = w_last - w_first + 1
    rep = np.repeat(np.arange(len(a_s)), counts)
    offs = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    w = w_first[rep] + offs
    lo = np.maximum(a_s[rep], w * 7.0)
    hi = np.minimum(b_s[rep], (w + 1) * 7.0)
    frame = pd.DataFrame(
        {
            "segment": sub["segment"].to_numpy()[rep],
            "stage": sub["stage"].to_numpy()[rep],
            "stage_order": sub["stage_order"].to_numpy()[rep],
            "week_start": week0.tz_localize(None) + pd.to_timedelta(w * 7, unit="D"),
            "customer_days": np.clip(hi - lo, 0, None),
        }
    )
    return (
        frame.groupby(["segment", "stage", "stage_order", "week_start"], observed=True)["customer_days"]
        .sum()
        .reset_index()
    )


def ticket_spikes_data(
    voice: pd.DataFrame,
    *,
    stage_intervals: pd.DataFrame,
    as_of: Any = None,
    kind: str = "negative",
    comparison: str = "all",
    alpha: float = 0.05,
    min_tickets: int = 5,
    baseline_weeks: int = 8,
    segments: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Detect stages (and weeks) with more tickets of a kind than expected.

    The statistical rule is in the module docstring: exact conditional
    Poisson-rate tests against other stages and other segments, a Poisson or
    negative-binomial tail against the stage's own previous weeks, and
    Benjamini–Hochberg control of the false discovery rate within each
    comparison.

    Parameters
    ----------
    voice : pandas.DataFrame
        :func:`journeylib.voice.tickets.ticket_voice_data` (stages are assigned here if missing).
    stage_intervals : pandas.DataFrame
        ``journeylib.journey.stages.stage_intervals_data``.
    as_of : str, date or None
        End of exposure; default the latest ticket or interval date.
    kind : {"negative", "all", "frustration", "confusion"}, default "negative"
        Which tickets are counted: negative polarity, every ticket, or an
        emotion.
    comparison : {"all", "other_stages", "other_segments", "own_baseline"}, default "all"
        Which tests to run.
    alpha : float, default 0.05
        False discovery rate.
    min_tickets : int, default 5
        A spike needs at least this many tickets (tiny counts can be
        significant against a near-zero baseline but say little).
    baseline_weeks : int, default 8
        Previous weeks forming a week's baseline (``own_baseline``); weeks
        with fewer than 4 baseline weeks of exposure are not tested.
    segments : pandas.DataFrame, optional
        ``customer_id``, ``segment`` when the intervals have no segment.

    Returns
    -------
    pandas.DataFrame
        One row per test, spikes first then by q-value: ``comparison``,
        ``segment``, ``stage``, ``stage_order``, ``week_start`` (NaT except
        for ``own_baseline``), ``kind``, ``tickets`` (of the kind),
        ``customer_months`` (exposure), ``rate`` (tickets per customer-month),
        ``baseline_tickets``, ``baseline_customer_months``,
        ``baseline_rate`` (of the comparison group), ``rate_ratio``
        (``rate / baseline_rate``), ``expected`` (``baseline_rate *
        customer_months``), ``p_value`` (one-sided), ``q_value`` (BH within
        the comparison), ``spike`` (``q <= alpha`` and ``tickets >=
        min_tickets``), ``method``.

    Raises
    ------
    ValueError
        If *kind* or *comparison* is unknown, or columns are missing.
    EmptyResultError
        If there is nothing to test.
    """
    function = "ticket_spikes_data"
    _check_choice("kind", kind, SPIKE_KINDS, function=function)
    _check_choice("comparison", comparison, (ALL, *COMPARISONS), function=function)
    if not 0 < alpha < 1:
        msg = f"{function}: alpha must be in (0, 1); got {alpha!r}"
        raise ValueError(msg)
    require_columns(
        voice,
        ["ticket_id", "customer_id", "created_at", "polarity", "emotion", "segment"],
        function=function,
        producer="ticket_voice_data",
    )
    iv = checked_intervals(stage_intervals, function=function)
    v = voice if "stage" in voice.columns else assign_stages(voice, iv)
    iv = intervals_with_segments(iv, v, segments, function=function)
    ref = exposure_end(v, iv, as_of)
    v = v[(v["stage"] != NO_STAGE) & _kind_mask(v, kind)].assign(segment=lambda f: f["segment"].astype(str))
    keys = ["segment", "stage", "stage_order"]
    expo = stage_exposure(iv, ref, keys).drop(columns="customers_in_stage")
    counts = v.groupby(keys, observed=True).size().reset_index(name="tickets")
    cell = expo.merge(counts, on=keys, how="left").fillna({"tickets": 0})
    cell["tickets"] = cell["tickets"].astype(int)
    cell["customer_months"] = cell.pop("customer_days") / DAYS_PER_MONTH
    frames: list[pd.DataFrame] = []
    wanted = COMPARISONS if comparison == ALL else (comparison,)
    for comp in wanted:
        if comp in ("other_stages", "other_segments"):
            group = "segment" if comp == "other_stages" else "stage"
            tot = cell.groupby(group)[["tickets", "customer_months"]].transform("sum")
            res = cell.copy()
            res["baseline_tickets"] = (tot["tickets"] - cell["tickets"]).astype(int)
            res["baseline_customer_months"] = tot["customer_months"] - cell["customer_months"]
            res["p_value"] = poisson_rate_test(
                res["tickets"].to_numpy(float), res["customer_months"].to_numpy(float),
                res["baseline_tickets"].to_numpy(float), res["baseline_customer_months"].to_numpy(float),
            )  # fmt: skip
            res["method"] = "exact conditional test of two Poisson rates (binomial), one-sided"
            res["week_start"] = pd.NaT
            frames.append(res.assign(comparison=comp))
        else:
            frames.append(_own_baseline(v, iv, ref, keys, baseline_weeks=baseline_weeks).assign(comparison=comp))
    out = (
        pd.concat([f for f in frames if not f.empty], ignore_index=True)
        if any(not f.empty for f in frames)
        else pd.DataFrame()
    )
    if out.empty:
        msg = f"{function}: nothing to test (no exposure in any stage for kind={kind!r})"
        raise EmptyResultError(msg)
    out["kind"] = kind
    out["rate"] = out["tickets"] / out["customer_months"].where(out["customer_months"] > 0)
    out["baseline_rate"] = out["baseline_tickets"] / out["baseline_customer_months"].where(
        out["baseline_customer_months"] > 0
    )
    out["rate_ratio"] = out["rate"] / out["baseline_rate"].where(out["baseline_rate"] > 0)
    out["expected"] = out["baseline_rate"] * out["customer_months"]
    out["q_value"] = np.nan
    for comp in out["comparison"].unique():
        sel = (out["comparison"] == comp) & out["p_value"].notna()
        if sel.any():
            out.loc[sel, "q_value"] = bh_qvalues(out.loc[sel, "p_value"].to_numpy())
    out["spike"] = (out["q_value"] <= alpha) & (out["tickets"] >= int(min_tickets))
    cols = [
        "comparison", "segment", "stage", "stage_order", "week_start", "kind", "tickets", "customer_months", "rate",
        "baseline_tickets", "baseline_customer_months", "baseline_rate", "rate_ratio", "expected", "p_value",
        "q_value", "spike", "method",
    ]  # fmt: skip
    out["week_start"] = pd.to_datetime(out["week_start"])
    out = out.sort_values(
        ["spike", "q_value", "comparison", "segment", "stage_order"], ascending=[False, True, True, True, True]
    )
    return out[cols].reset_index(drop=True)


def _own_baseline(
    v: pd.DataFrame, iv: pd.DataFrame, as_of: pd.Timestamp, keys: list[str], *, baseline_weeks: int
) -> pd.DataFrame:
    start = min(iv["entered_at"].min(), v["created_at"].min()) if len(v) else iv["entered_at"].min()
    expo = _weekly_exposure(iv, start, as_of)
    if expo.empty:
        return pd.DataFrame()
    weekly = v.assign(week_start=iso_week_start(utc_series(v["created_at"])))
    counts = weekly.groupby([*keys, "week_start"], observed=True).size().reset_index(name="tickets")
    frame = expo.merge(counts, on=[*keys, "week_start"], how="left").fillna({"tickets": 0})
    frame["tickets"] = frame["tickets"].astype(int)
    frame["customer_months"] = frame.pop("customer_days") / DAYS_PER_MONTH
    frame = frame.sort_values([*keys, "week_start"]).reset_index(drop=True)
    rows = []
    for _, grp in frame.groupby(keys, observed=True, sort=False):
        x = grp["tickets"].to_numpy(float)
        e = grp["customer_months"].to_numpy(float)
        for i in range(len(grp)):
            lo = max(0, i - baseline_weeks)
            bx, be = x[lo:i], e[lo:i]
            valid = be > 0
            if valid.sum() < 4 or e[i] <= 0 or be.sum() <= 0 or e[i] < 0.05 * be.sum() / max(valid.sum(), 1):
                continue
            # Half a ticket is added to the baseline (a Jeffreys-style pseudo-count) so that a
            # stage with no ticket in its baseline weeks does not make any single ticket "impossible".
            rate = (bx.sum() + 0.5) / be.sum()
            mu = rate * e[i]
            mu_b = rate * be[valid]
            phi = (
                float(np.mean((bx[valid] - mu_b) ** 2 / np.where(mu_b > 0, mu_b, np.nan))) if (mu_b > 0).any() else 1.0
            )
            phi = phi if np.isfinite(phi) else 1.0
            if phi > 1.0:
                size = mu / (phi - 1.0)
                p = float(stats.nbinom.sf(x[i] - 1, size, size / (size + mu)))
                method = f"negative binomial tail (phi={phi:.2f})"
            else:
                p = float(stats.poisson.sf(x[i] - 1, mu))
                method = "Poisson tail"
            rows.append(
                {
                    **{k: grp.iloc[i][k] for k in keys},
                    "week_start": grp.iloc[i]["week_start"],
                    "tickets": int(x[i]),
                    "customer_months": e[i],
                    "baseline_tickets": int(bx.sum()),
                    "baseline_customer_months": float(be.sum()),
                    "p_value": p,
                    "method": method,
                }
            )
    return pd.DataFrame(rows)

