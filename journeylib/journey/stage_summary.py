"""The executive stage map: per stage, what customers actually do there, how long they stay, how many move on, how their tickets feel.

One row per stage of the definition (:func:`stage_summary_data`), built from
the stage intervals (:func:`journeylib.journey.stages.stage_intervals_data`),
the funnel (:func:`journeylib.journey.stages.funnel_data`), the events of the
store and, when given, the tickets' emotions
(:func:`journeylib.voice.stages.stage_emotion_data`).

**Characteristic events** (:func:`stage_events_data`) are the events done in
a stage more often than in the other stages, by customer: for every event
and stage, the share of the stage's customer-intervals in which the customer
did the event at least once, against the same share over the intervals of
the other stages; the lift is their ratio, with the Katz interval of a risk
ratio (:func:`journeylib.stats.risk_ratio_interval`). The events the stage's
own rule names are left out (the rule is already known; the point is what
else customers do there), and so is every event of fewer than
``min_customers`` customers in the stage.

**Time in stage** is the median ``days_in_stage`` of the customers who moved
on to the next stage (an order-statistic interval), said as such: customers
who dropped out or are still in the stage are counted beside it, not in it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from journeylib.config.journey import JourneyDefinition
from journeylib.exceptions import EmptyResultError
from journeylib.scope import Scope
from journeylib.stats import median_interval, risk_ratio_interval
from journeylib.store import Store
from journeylib.store.categories import sources_of
from journeylib.store.dialect import sql_quote
from journeylib.words import event_label, percent

__all__ = ["STAGE_EVENT_COLUMNS", "STAGE_SUMMARY_COLUMNS", "stage_events_data", "stage_summary_data"]

#: Columns of :func:`stage_events_data`.
STAGE_EVENT_COLUMNS: list[str] = [
    "stage", "stage_order", "event", "customers", "stage_customers", "share", "share_other", "lift", "lift_ci_low",
    "lift_ci_high",
]
#: Columns of :func:`stage_summary_data`.
STAGE_SUMMARY_COLUMNS: list[str] = [
    "stage", "stage_order", "customers", "characteristic_events", "median_days", "median_days_ci_low", "median_days_ci_high",
    "moved_on", "still_in_stage", "next_stage", "conversion_rate", "conversion_ci_low", "conversion_ci_high", "eligible", "censored",
    "tickets", "dominant_emotion", "emotion_share", "sentence",
]


def stage_events_data(
    store: Store,
    *,
    definition: JourneyDefinition,
    intervals: pd.DataFrame,
    scope: Scope,
    min_customers: int = 10,
    top_n: int = 3,
    alpha: float = 0.05,
    kinds: tuple[str, ...] = ("product", "support"),
) -> pd.DataFrame:
    """Return the events most characteristic of each stage (by lift against the other stages), excluding the stage's rule.

    Parameters
    ----------
    store : Store
        The canonical store.
    definition : JourneyDefinition
        The stages (their rules' events are left out of their own rows).
    intervals : pandas.DataFrame
        :func:`journeylib.journey.stages.stage_intervals_data` for *scope*.
    scope : Scope
        Whose events (``Scope.events_sql``), up to ``as_of``.
    min_customers : int, default 10
        Fewest customers of a stage doing an event for it to be listed.
    top_n : int, default 3
        Events kept per stage, by the lower bound of the lift interval.
    alpha : float, default 0.05
        1 − level of the lift intervals.
    kinds : tuple of str, default ("product", "support")
        Source kinds (:mod:`journeylib.store.categories`) whose events count as what customers do.

    Returns
    -------
    pandas.DataFrame
        Up to ``top_n`` rows per stage with a lift interval above 1: ``stage``, ``stage_order``, ``event``,
        ``customers`` (customers who did it while in the stage), ``stage_customers`` (customers who entered the
        stage), ``share`` (customers / stage_customers), ``share_other`` (the same share over the intervals of the
        other stages), ``lift`` (share / share_other; infinite when no other stage has it), ``lift_ci_low``,
        ``lift_ci_high``.

    Raises
    ------
    ValueError
        If ``min_customers`` or ``top_n`` is below 1.
    """
    if min_customers < 1 or top_n < 1:
        msg = f"stage_events_data: min_customers and top_n must be at least 1; got {min_customers} and {top_n}"
        raise ValueError(msg)
    # what customers do: product activity and the tickets they raise, not CRM records or e-mails sent to them
    sources = sources_of(store, list(kinds))
    iv = intervals[["customer_id", "stage", "stage_order", "entered_at", "exited_at"]].copy()
    iv["stage"] = iv["stage"].astype(str)
    iv["until"] = iv["exited_at"].fillna(scope.as_of)
    iv = iv[iv["entered_at"].notna()]
    counts = store.query(
        f"""
        SELECT i.stage, i.stage_order, e.event, count(DISTINCT i.customer_id) AS customers
        FROM ({scope.events_sql()}) e
        JOIN jl_stage_iv i ON e.customer_id = i.customer_id AND e.timestamp >= i.entered_at AND e.timestamp < i.until
        WHERE e.source IN ({", ".join(sql_quote(x) for x in sources)})
        GROUP BY 1, 2, 3
        """,
        jl_stage_iv=iv[["customer_id", "stage", "stage_order", "entered_at", "until"]],
    )
    sizes = iv.groupby("stage").size()
    total_intervals = int(sizes.sum())
    by_event = counts.groupby("event")["customers"].sum()
    counts["stage_customers"] = counts["stage"].map(sizes).astype(int)
    counts["other_with"] = counts["event"].map(by_event).astype(int) - counts["customers"]
    counts["other_n"] = total_intervals - counts["stage_customers"]
    counts = counts[(counts["customers"] >= min_customers) & (counts["other_n"] > 0)]
    rule_events = {s.name: set(s.events()) for s in definition.stages}
    counts = counts[[e not in rule_events.get(s, set()) for s, e in zip(counts["stage"], counts["event"], strict=True)]].copy()
    counts["share"] = counts["customers"] / counts["stage_customers"]
    counts["share_other"] = counts["other_with"] / counts["other_n"]
    a, b = counts["customers"].to_numpy(float), (counts["stage_customers"] - counts["customers"]).to_numpy(float)
    c, d = counts["other_with"].to_numpy(float), (counts["other_n"] - counts["other_with"]).to_numpy(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        counts["lift"] = counts["share"] / counts["share_other"]
        lo, hi = risk_ratio_interval(a, b, c, d, alpha=alpha)
    counts["lift_ci_low"], counts["lift_ci_high"] = lo, hi
    counts = counts[counts["lift_ci_low"] > 1]
    counts = counts.sort_values(["stage_order", "lift_ci_low"], ascending=[True, False])
    out = counts.groupby("stage_order", sort=True).head(top_n)
    return out[STAGE_EVENT_COLUMNS].reset_index(drop=True)


def _time_in_stage(iv: pd.DataFrame, alpha: float) -> tuple[float, float, float, int, int]:
    """Median days to move on among the customers who progressed (order-statistic interval), how many did, how many are still there."""
    moved = iv.loc[iv["status"] == "progressed", "days_in_stage"].to_numpy(float)
    still = int((iv["status"] == "in_progress").sum())
    med, lo, hi = median_interval(moved, alpha=alpha) if len(moved) else (np.nan, np.nan, np.nan)
    return med, lo, hi, len(moved), still


def stage_summary_data(
    store: Store,
    *,
    definition: JourneyDefinition,
    intervals: pd.DataFrame,
    funnel: pd.DataFrame,
    scope: Scope,
    emotions: pd.DataFrame | None = None,
    min_customers: int = 10,
    top_events: int = 3,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Return the stage-by-stage map: characteristic events, time in stage, conversion with CI, ticket emotions, a sentence.

    Parameters
    ----------
    store : Store
        The canonical store.
    definition : JourneyDefinition
        The stages, in order.
    intervals : pandas.DataFrame
        :func:`journeylib.journey.stages.stage_intervals_data`.
    funnel : pandas.DataFrame
        :func:`journeylib.journey.stages.funnel_data` (its ``all`` group is used).
    scope : Scope
        The scope of *intervals* (events up to ``as_of``).
    emotions : pandas.DataFrame, optional
        :func:`journeylib.voice.stages.stage_emotion_data` (its ``all`` rows); without it the emotion columns are empty.
    min_customers, top_events, alpha
        As in :func:`stage_events_data`.

    Returns
    -------
    pandas.DataFrame
        One row per stage, in order:

        ``stage``, ``stage_order``, ``customers`` (entered the stage);
        ``characteristic_events`` (the top events in words with their lift, "invite sent (2.3×)");
        ``median_days``, ``median_days_ci_low``, ``median_days_ci_high`` (median days in the stage of the
        ``moved_on`` customers who progressed to the next stage, order-statistic interval; NaN when none did);
        ``still_in_stage`` (in the stage at ``as_of``);
        ``next_stage``; ``conversion_rate``, ``conversion_ci_low``, ``conversion_ci_high`` (Wilson; of the
        ``eligible`` customers who entered this stage, the share entering the next, ``censored`` still on
        their way and not counted); ``tickets``, ``dominant_emotion``, ``emotion_share``;
        ``sentence`` (the row in plain words).

    Raises
    ------
    EmptyResultError
        If *intervals* is empty.
    """
    if intervals.empty:
        msg = "stage_summary_data: no stage interval in scope (no customer entered a stage)"
        raise EmptyResultError(msg)
    names = definition.stage_names
    events = stage_events_data(store, definition=definition, intervals=intervals, scope=scope,
                               min_customers=min_customers, top_n=top_events, alpha=alpha)
    fun = funnel[funnel["group"].astype(str) == "all"] if "group" in funnel.columns else funnel
    fun_rows: dict[str, dict[Any, Any]] = {str(r["stage"]): r for r in fun.to_dict("records")}
    emo_rows: dict[str, dict[Any, Any]] = {}
    if emotions is not None and len(emotions):
        emo = emotions[emotions["segment"].astype(str) == "all"] if "segment" in emotions.columns else emotions
        emo_rows = {str(r["stage"]): r for r in emo.to_dict("records")}
    iv = intervals.assign(stage=intervals["stage"].astype(str))
    rows: list[dict[str, Any]] = []
    for k, stage in enumerate(names):
        part = iv[iv["stage"] == stage]
        med, lo, hi, moved, still = _time_in_stage(part, alpha) if len(part) else (np.nan, np.nan, np.nan, 0, 0)
        ev = events[events["stage"] == stage]
        ev_text = ", ".join(
            f"{event_label(e)} ({f'{lift:.1f}×' if np.isfinite(lift) else 'only in this stage'})"
            for e, lift in zip(ev["event"], ev["lift"], strict=True)
        )
        nxt = names[k + 1] if k + 1 < len(names) else ""
        conv = fun_rows.get(nxt) if nxt else None
        e_row = emo_rows.get(stage)
        row = {
            "stage": stage, "stage_order": k, "customers": len(part), "characteristic_events": ev_text,
            "median_days": med, "median_days_ci_low": lo, "median_days_ci_high": hi, "moved_on": moved, "still_in_stage": still,
            "next_stage": nxt,
            "conversion_rate": float(conv["conversion_rate"]) if conv is not None else np.nan,
            "conversion_ci_low": float(conv["ci_low"]) if conv is not None else np.nan,
            "conversion_ci_high": float(conv["ci_high"]) if conv is not None else np.nan,
            "eligible": int(conv["eligible"]) if conv is not None else 0,
            "censored": int(conv["censored"]) if conv is not None else 0,
            "tickets": int(e_row["tickets"]) if e_row is not None else 0,
            "dominant_emotion": str(e_row["dominant_emotion"]) if e_row is not None else "",
            "emotion_share": float(e_row["dominant_share"]) if e_row is not None else np.nan,
        }
        row["sentence"] = _stage_sentence(row, list(ev["event"]))
        rows.append(row)
    return pd.DataFrame(rows, columns=STAGE_SUMMARY_COLUMNS)


def _stage_sentence(r: dict[str, Any], events: list[str]) -> str:
    """Say one row of the stage map in plain words."""
    parts = [f"{r['stage']}: {r['customers']:,} customers entered it."]
    if events:
        parts.append(f"Beyond its rule, what set it apart: {r['characteristic_events']} "
                     "(share of customers doing it in this stage against the other stages).")
    if np.isfinite(r["median_days"]):
        days = "in under a day" if r["median_days"] < 1 else f"within {r['median_days']:.1f} days"
        ci = (f" (95% CI {r['median_days_ci_low']:.1f}–{r['median_days_ci_high']:.1f})"
              if np.isfinite(r["median_days_ci_low"]) and np.isfinite(r["median_days_ci_high"]) and r["median_days"] >= 1 else "")
        parts.append(f"Of the {r['moved_on']:,} who moved on, half did so {days}{ci}; {r['still_in_stage']:,} are still in it.")
    if r["next_stage"] and np.isfinite(r["conversion_rate"]):
        parts.append(f"{percent(r['conversion_rate'])} of {r['eligible']:,} went on to {r['next_stage']} "
                     f"(95% CI {percent(r['conversion_ci_low'])}–{percent(r['conversion_ci_high'])}; "
                     f"{r['censored']:,} still on their way, not counted).")
    if r["tickets"]:
        parts.append(f"Its {r['tickets']:,} tickets were mostly {r['dominant_emotion']} ({percent(r['emotion_share'])}).")
    return " ".join(parts)
