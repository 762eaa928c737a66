"""Actual journeys: each customer's milestone path, its variants and its conformance to the happy path.

Stages say where a customer *should* go; this module shows where customers
actually went. Everything event-level runs in the engine (SQL with window
functions), and everything after that is customer-level pandas. Transitions
and the flow built on these paths are in :mod:`journeylib.journey.transitions`,
loops in :mod:`journeylib.journey.loops`.

Conventions (also in ``docs/journey-definition.md``):

* A customer's **milestone path** is the list of stages whose rule held
  (``met_at`` of :func:`journeylib.journey.stages.milestones_data`), ordered by
  ``met_at`` and, on ties, by stage order. Because ``met_at`` ignores the
  stage order, skipped and reordered milestones stay visible here, whereas
  ``entered_at`` (stages entered in order) never skips.
* Every path ends in an **end node**: ``churned`` (churned by ``as_of``),
  ``dropped`` (the journey ended by an outcome of ``kind: drop``, or no
  progress to the next stage within the definition's
  ``conventions.drop_after_days``) or ``still active`` (everyone else:
  progressing, censored at ``as_of``, or done). These are the statuses of
  the stage each customer entered last
  (:func:`journeylib.journey.stages.stage_intervals_data`); with ordered
  stages only they agree with the funnel's ``dropped``/``censored`` counts.
  (With free-order stages a customer can be dropped at one stage and reach
  another, so the funnel counts per stage.)
* **Free-order stages** (``order: any``) have no place in the order of the
  happy path: they are never ``skipped`` or ``reordered``, meeting one does
  not make an earlier stage skipped, and a variant follows the happy path
  when its ordered stages do.
* **Loops** (see :mod:`journeylib.journey.loops`) are repeated attempts and
  returns after a gap; a loop belongs to the stage the customer was in at
  that moment (by ``entered_at``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from journeylib.cache import ResultCache
from journeylib.config.journey import JourneyDefinition, Outcome
from journeylib.journey.loops import loops_by_stage
from journeylib.journey.stages import stage_frames
from journeylib.scope import Scope
from journeylib.stats import wilson_interval
from journeylib.store import Store
from journeylib.store.dialect import sql_json_text, sql_quote
from journeylib.words import plural

__all__ = [
    "CHURNED",
    "DROPPED",
    "END_NODES",
    "STILL_ACTIVE",
    "conformance_data",
    "customer_paths_data",
    "customer_status_frame",
    "milestones_in_order",
    "segment_label",
    "variants_data",
]

#: End node: churned by as_of.
CHURNED = "churned"
#: End node: no progress within ``conventions.drop_after_days`` (stage level) or no activity for that long (event level).
DROPPED = "dropped"
#: End node: everyone else (progressing, censored at as_of, or done).
STILL_ACTIVE = "still active"
#: End nodes in display order.
END_NODES: tuple[str, ...] = (STILL_ACTIVE, DROPPED, CHURNED)
#: Separator of stage names in a path string.
ARROW = " → "

_STATUS_END = {"churned": CHURNED, "dropped": DROPPED, "in_progress": STILL_ACTIVE, "completed": STILL_ACTIVE, "progressed": STILL_ACTIVE}


# -- shared building blocks ------------------------------------------------------------------------
def _joined_per_customer(customer_ids: pd.Series, values: pd.Series, sep: str) -> pd.Series:
    """Return the texts *values* joined by *sep* per customer, in row order within each customer.

    The result of ``groupby(customer_ids)[values].agg(sep.join)`` (indexed by
    the sorted customer ids; rows without a customer are left out) without a
    Python call per group.
    """
    codes, uniques = pd.factorize(customer_ids, sort=True)
    keep = codes >= 0
    codes, texts = codes[keep], values.to_numpy(dtype=object)[keep]
    order = np.argsort(codes, kind="stable")
    codes, texts = codes[order], texts[order]
    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]]) if len(codes) else np.array([], dtype=int)
    ends = np.r_[starts[1:], len(codes)]
    joined = [sep.join(texts[a:b].tolist()) for a, b in zip(starts.tolist(), ends.tolist(), strict=True)]
    index = pd.Index(uniques.take(codes[starts]) if len(codes) else uniques[:0], name=customer_ids.name)
    return pd.Series(joined, index=index, name=values.name, dtype=object)


def customer_status_frame(ms: pd.DataFrame, iv: pd.DataFrame, definition: JourneyDefinition, as_of: pd.Timestamp) -> pd.DataFrame:
    """One row per customer: attributes, furthest stage, status and end node.

    Parameters
    ----------
    ms : pandas.DataFrame
        Milestones (``customer_id``, ``segment``, ``plan``, ``signup_at``,
        ``converted_at``, ``churned_at``, ...) of
        :func:`journeylib.journey.stages.stage_frames`.
    iv : pandas.DataFrame
        Stage intervals (``customer_id``, ``stage``, ``stage_order``,
        ``status``) of the same call.
    definition : JourneyDefinition
        Supplies ``conventions.drop_after_days`` for customers who entered no
        stage.
    as_of : pandas.Timestamp
        The censoring date.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``customer_id``: ``segment``, ``plan``, ``signup_at``,
        ``converted_at``, ``churned_at``, ``current_stage``,
        ``current_stage_order`` (furthest stage entered in order; NaN if
        none), ``status`` (of that stage) and ``end_node`` (:data:`END_NODES`).
        ``current_stage`` is the stage entered last (with ordered stages
        only, the furthest).
    """
    cust = ms.drop_duplicates("customer_id").set_index("customer_id")[["segment", "plan", "signup_at", "converted_at", "churned_at"]]
    last = iv.sort_values(["customer_id", "entered_at", "stage_order"], kind="mergesort").groupby("customer_id").tail(1).set_index("customer_id")
    out = cust.copy()
    out["current_stage"] = last["stage"].astype(str).reindex(out.index)
    out["current_stage_order"] = last["stage_order"].reindex(out.index)
    status = last["status"].reindex(out.index)
    # customers who entered no stage at all (the first stage's rule never held)
    none = status.isna()
    if none.any():
        drop_days = definition.conventions.drop_after_days
        days = (as_of - out.loc[none, "signup_at"]).dt.total_seconds() / 86400.0
        fallback = np.where(out.loc[none, "churned_at"].notna(), "churned", "in_progress")
        if "ended_at" in ms.columns:  # the journey ended by an outcome of kind: drop
            ended = ms.drop_duplicates("customer_id").set_index("customer_id")["ended_at"].reindex(out.index[none])
            fallback = np.where((fallback == "in_progress") & ended.notna().to_numpy(), "dropped", fallback)
        if drop_days is not None:
            fallback = np.where((fallback == "in_progress") & (days > drop_days), "dropped", fallback)
        status.loc[none] = fallback
    out["status"] = status.astype(str)
    out["end_node"] = out["status"].map(_STATUS_END).fillna(STILL_ACTIVE)
    return out


def milestones_in_order(ms: pd.DataFrame) -> pd.DataFrame:
    """Milestones met, in path order per customer, with the position in the path.

    Parameters
    ----------
    ms : pandas.DataFrame
        Milestones (``customer_id``, ``stage``, ``stage_order``, ``met_at``)
        of :func:`journeylib.journey.stages.stage_frames`.

    Returns
    -------
    pandas.DataFrame
        One row per milestone met: ``customer_id``, ``stage`` (str),
        ``stage_order``, ``met_at``, ``position`` (0-based in the customer's
        path); sorted by customer, ``met_at`` and, on ties, stage order.
    """
    met = ms.loc[ms["met_at"].notna(), ["customer_id", "stage", "stage_order", "met_at"]].copy()
    met["stage"] = met["stage"].astype(str)
    met = met.sort_values(["customer_id", "met_at", "stage_order"], kind="mergesort")
    met["position"] = met.groupby("customer_id").cumcount()
    return met.reset_index(drop=True)


def _outcome_times(store: Store, scope: Scope, outcome: Outcome | None, fallback_field: str, cust: pd.DataFrame) -> pd.Series:
    """Time of an outcome per customer (NaT if it has not happened by as_of)."""
    if outcome is not None and outcome.customer_property is not None:
        text = sql_json_text("c.properties", outcome.customer_property)
        raw = store.query(f"SELECT customer_id, {text} AS t FROM ({scope.customers_sql()}) c").set_index("customer_id")["t"]
        got = pd.to_datetime(raw, utc=True, errors="coerce", format="ISO8601")
        return got.where(got <= scope.as_of).reindex(cust.index)
    if outcome is None or outcome.customer_field is not None:
        field = fallback_field if outcome is None or outcome.customer_field is None else outcome.customer_field
        if field in cust.columns:
            return cust[field]
        got = store.query(f"SELECT customer_id, {field} AS t FROM ({scope.customers_sql()}) c").set_index("customer_id")["t"]
        got = got.where(got <= scope.as_of)
        return got.reindex(cust.index)
    got = store.query(
        f"SELECT customer_id, min(timestamp) AS t FROM ({scope.events_sql()}) e WHERE event = {sql_quote(outcome.event)} GROUP BY customer_id"
    ).set_index("customer_id")["t"]
    return got.reindex(cust.index)


def _rate_columns(frame: pd.DataFrame, count: str, total: str, prefix: str, alpha: float) -> pd.DataFrame:
    n = frame[total].to_numpy(dtype=float)
    k = frame[count].to_numpy(dtype=float)
    frame[f"{prefix}_rate"] = np.where(n > 0, k / np.where(n > 0, n, 1), np.nan)
    frame[f"{prefix}_ci_low"], frame[f"{prefix}_ci_high"] = wilson_interval(k, n, alpha=alpha)
    return frame


# Loop kinds (journeylib.journey.loops) whose plural is not the noun plus "s".
_LOOP_PLURALS: dict[str, str] = {"return after gap": "returns after a gap"}


def segment_label(scope: Scope) -> str:
    """Return the ``segment`` column value of a result: the scope's segment, or ``"all"``.

    Parameters
    ----------
    scope : Scope
        The scope of the result.

    Returns
    -------
    str
        ``scope.segment``, or ``"all"`` when the scope spans every segment.
    """
    return scope.segment if scope.segment is not None else "all"


# -- customer paths -------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Paths:
    """Intermediate results shared by paths, variants and conformance."""

    customers: pd.DataFrame  # one row per customer, indexed by customer_id
    met: pd.DataFrame  # milestones met, long, in path order
    loops: pd.DataFrame  # loop events per customer × stage × kind
    skipped: pd.DataFrame  # customer × happy-path stage flags
    reordered: pd.DataFrame  # customer × happy-path stage flags
    met_wide: pd.DataFrame  # customer × happy-path stage: met_at
    intervals: pd.DataFrame  # stage intervals of the entered stages (stage_frames)


def _paths(
    store: Store,
    definition: JourneyDefinition,
    scope: Scope,
    *,
    loops: bool,
    attempt_events: Sequence[str] | None = None,
    gap_days: float = 14.0,
    attempt_once_share: float = 0.8,
    cache: ResultCache | None = None,
) -> _Paths:
    """Compute the customer table with paths and deviations, the long met table, and loops by stage."""
    ms, iv = stage_frames(store, definition, scope, cache=cache)
    cust = customer_status_frame(ms, iv, definition, scope.as_of)
    met = milestones_in_order(ms)
    path = _joined_per_customer(met["customer_id"], met["stage"], ARROW)
    cust["path"] = path.reindex(cust.index).fillna("")
    cust["n_milestones"] = met.groupby("customer_id").size().reindex(cust.index).fillna(0).astype(int)
    cust["first_met_at"] = met.groupby("customer_id")["met_at"].min().reindex(cust.index)
    cust["last_met_at"] = met.groupby("customer_id")["met_at"].max().reindex(cust.index)
    cust["last_milestone"] = met.groupby("customer_id")["stage"].last().reindex(cust.index).fillna("")

    # deviations from the happy path, on the wide customer × stage table of met_at;
    # free-order stages are neither skipped nor reordered, and meeting one skips nothing
    happy = definition.path
    free = definition.free_stages
    wide = ms.assign(stage=ms["stage"].astype(str)).set_index(["customer_id", "stage"])["met_at"].unstack()
    wide = wide.reindex(index=cust.index, columns=happy)
    for stage_name in happy:  # a stage nobody met comes back as float NaN
        wide[stage_name] = pd.to_datetime(wide[stage_name], utc=True)
    skipped = pd.DataFrame(False, index=cust.index, columns=happy)
    reordered = pd.DataFrame(False, index=cust.index, columns=happy)
    later_met = pd.Series(False, index=cust.index)
    earliest_later = pd.Series(pd.NaT, index=cust.index, dtype="datetime64[us, UTC]")
    for name in reversed(happy):  # a loop over (at most a dozen) stages, not events
        col = wide[name]
        if name in free:
            continue
        skipped[name] = col.isna() & later_met
        reordered[name] = col.notna() & earliest_later.notna() & (earliest_later < col)
        later_met = later_met | col.notna()
        earliest_later = earliest_later.where(earliest_later.notna() & (col.isna() | (earliest_later <= col)), col)
    stage_loops = pd.DataFrame(columns=["customer_id", "stage_order", "kind", "loops"])
    if loops:
        stage_loops = loops_by_stage(store, scope, iv, attempt_events, gap_days, attempt_once_share, cache=cache)
    n_loops = stage_loops.groupby("customer_id")["loops"].sum() if len(stage_loops) else pd.Series(dtype=float)
    names = definition.stage_names
    looped = (
        stage_loops.assign(stage=[names[int(k)] for k in stage_loops["stage_order"]])
        .drop_duplicates(["customer_id", "stage_order"])
        .sort_values(["customer_id", "stage_order"])
    )
    looped_stages = _joined_per_customer(looped["customer_id"], looped["stage"], "; ") if len(stage_loops) else pd.Series(dtype=str)

    def joined(flags: pd.DataFrame) -> pd.Series:
        # melt keeps the happy-path order of the columns within each customer
        frame = flags.rename_axis(index="customer_id", columns="stage").reset_index().melt(id_vars="customer_id", value_name="flag")
        frame = frame[frame["flag"].astype(bool)]
        if frame.empty:
            return pd.Series("", index=cust.index)
        return _joined_per_customer(frame["customer_id"], frame["stage"], "; ").reindex(cust.index).fillna("")

    cust["skipped"] = joined(skipped)
    cust["reordered"] = joined(reordered)
    cust["n_loops"] = n_loops.reindex(cust.index).fillna(0).astype(int)
    cust["looped"] = looped_stages.reindex(cust.index).fillna("").astype(str)
    cust["follows_happy_path"] = (cust["skipped"] == "") & (cust["reordered"] == "") & (cust["n_loops"] == 0)
    return _Paths(customers=cust, met=met, loops=stage_loops, skipped=skipped, reordered=reordered, met_wide=wide, intervals=iv)


def customer_paths_data(
    store: Store,
    *,
    definition: JourneyDefinition,
    as_of: Any = None,
    segment: str | None = None,
    plan: str | None = None,
    signup_from: Any = None,
    signup_to: Any = None,
    sample_n: int = 0,
    scope: Scope | None = None,
    cache: ResultCache | None = None,
    attempt_events: Sequence[str] | None = None,
    gap_days: float = 14.0,
) -> pd.DataFrame:
    """Return each customer's milestone path, end node and deviations from the happy path.

    Parameters
    ----------
    store : Store
        The canonical store.
    definition : JourneyDefinition
        Stages, happy path and conventions.
    as_of, segment, plan, signup_from, signup_to, sample_n, scope, cache
        Scope, as in :func:`journeylib.journey.stages.milestones_data`.
    attempt_events : list of str, optional
        Events that count as attempts (see :func:`journeylib.journey.loops.loop_events_data`).
    gap_days : float, default 14
        Inactivity after which activity counts as a return (a loop).

    Returns
    -------
    pandas.DataFrame
        One row per customer in scope, sorted by ``customer_id``:
        ``customer_id``, ``segment``, ``plan``, ``signup_at``;
        ``path`` (stages whose milestone was met, in the order met, joined
        by " → "; empty if none); ``n_milestones``; ``first_met_at``,
        ``last_met_at``, ``last_milestone``; ``current_stage`` and
        ``current_stage_order`` (furthest stage entered in order; empty if
        none); ``status`` (of that stage: ``in_progress``, ``completed``,
        ``churned``, ``dropped``); ``end_node`` (``still active``,
        ``dropped``, ``churned``); ``skipped`` (happy-path stages not met
        although a later one was, "; "-joined); ``reordered`` (happy-path
        stages met after a later one); ``looped`` (stages in which the
        customer had loop events); ``n_loops``; ``follows_happy_path``
        (nothing skipped, reordered or looped: an unfinished path that so far
        follows the happy path counts); ``converted``, ``churned`` (bool, by
        as_of).

    Raises
    ------
    EmptyResultError
        If no customer is in scope.
    """
    scope = Scope.resolve(store, scope, function="customer_paths_data", as_of=as_of, segment=segment, plan=plan,
                          signup_from=signup_from, signup_to=signup_to, sample_n=sample_n)
    cust = _paths(store, definition, scope, loops=True, attempt_events=attempt_events, gap_days=gap_days, cache=cache).customers
    cust["converted"] = cust["converted_at"].notna()
    cust["churned"] = cust["churned_at"].notna()
    cols = [
        "segment", "plan", "signup_at", "path", "n_milestones", "first_met_at", "last_met_at", "last_milestone",
        "current_stage", "current_stage_order", "status", "end_node", "skipped", "reordered", "looped", "n_loops",
        "follows_happy_path", "converted", "churned",
    ]
    return cust[cols].reset_index().sort_values("customer_id").reset_index(drop=True)


# -- variants -------------------------------------------------------------------------------------
def variants_data(
    store: Store,
    *,
    definition: JourneyDefinition,
    as_of: Any = None,
    segment: str | None = None,
    plan: str | None = None,
    signup_from: Any = None,
    signup_to: Any = None,
    sample_n: int = 0,
    scope: Scope | None = None,
    cache: ResultCache | None = None,
    top_n: int = 10,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Return the most common milestone paths (variants), their shares and outcomes.

    Parameters
    ----------
    store : Store
        The canonical store.
    definition : JourneyDefinition
        Stages, outcomes (``churn`` and ``conversion``, default the customer
        fields ``churned_at`` and ``converted_at``) and happy path.
    as_of, segment, plan, signup_from, signup_to, sample_n, scope, cache
        Scope, as in :func:`journeylib.journey.stages.milestones_data`.
    top_n : int, default 10
        Variants listed on their own; the rest are one ``(other variants)`` row.
    alpha : float, default 0.05
        1 - confidence level of the Wilson intervals.

    Returns
    -------
    pandas.DataFrame
        One row per variant, most common first: ``rank``; ``variant`` (the
        path, stages joined by " → ", ``(no milestone)`` if none, or
        ``(other variants)``); ``variants`` (distinct paths in the row: 1, or
        how many were lumped); ``n_milestones``; ``customers``; ``share`` =
        customers / customers in scope (sums to 1); ``follows_happy_path``
        (the path is a prefix of the happy path, without skips or
        reorders; free-order stages may stand anywhere in it); ``churned``, ``churn_rate`` = churned / customers (share
        churned by as_of: recent signups had less time to churn),
        ``churn_ci_low``, ``churn_ci_high``; ``converted``,
        ``conversion_rate`` = converted / customers, ``conversion_ci_low``,
        ``conversion_ci_high`` (Wilson); ``median_days_to_last`` (from the
        first to the last milestone of the path); ``segment``.

    Raises
    ------
    ValueError
        If ``top_n`` < 1.
    EmptyResultError
        If no customer is in scope.
    """
    if top_n < 1:
        msg = f"variants_data: top_n must be at least 1; got {top_n}"
        raise ValueError(msg)
    scope = Scope.resolve(store, scope, function="variants_data", as_of=as_of, segment=segment, plan=plan,
                          signup_from=signup_from, signup_to=signup_to, sample_n=sample_n)
    cust = _paths(store, definition, scope, loops=False, cache=cache).customers
    churn_t = _outcome_times(store, scope, definition.outcomes.get("churn"), "churned_at", cust)
    conv_t = _outcome_times(store, scope, definition.outcomes.get("conversion"), "converted_at", cust)
    happy = definition.path
    cust = cust.assign(
        variant=cust["path"].where(cust["path"] != "", "(no milestone)"),
        churned=churn_t.notna().to_numpy(),
        converted=conv_t.notna().to_numpy(),
        days=(cust["last_met_at"] - cust["first_met_at"]).dt.total_seconds() / 86400.0,
    )
    free = definition.free_stages
    ordered_happy = [name for name in happy if name not in free]
    prefixes = {ARROW.join(ordered_happy[:i]) for i in range(0, len(ordered_happy) + 1)}
    agg = (
        cust.groupby("variant")
        .agg(customers=("variant", "size"), n_milestones=("n_milestones", "first"), churned=("churned", "sum"),
             converted=("converted", "sum"), median_days_to_last=("days", "median"))
        .reset_index()
        .sort_values(["customers", "variant"], ascending=[False, True], kind="mergesort")
        .reset_index(drop=True)
    )
    agg["variants"] = 1
    ordered_part = agg["variant"].map(lambda v: ARROW.join(n for n in v.split(ARROW) if n not in free) if v != "(no milestone)" else None)
    agg["follows_happy_path"] = ordered_part.isin(prefixes) & (ordered_part != "")
    if len(agg) > top_n:
        rest = agg.iloc[top_n:]
        other_days = cust.loc[cust["variant"].isin(rest["variant"]), "days"].median()
        other = pd.DataFrame(
            [{"variant": "(other variants)", "customers": rest["customers"].sum(), "n_milestones": np.nan,
              "churned": rest["churned"].sum(), "converted": rest["converted"].sum(), "median_days_to_last": other_days,
              "variants": len(rest), "follows_happy_path": False}]
        )
        agg = pd.concat([agg.iloc[:top_n], other], ignore_index=True)
    total = len(cust)
    agg["share"] = agg["customers"] / total
    agg["total"] = total
    agg = _rate_columns(agg, "churned", "customers", "churn", alpha)
    agg = _rate_columns(agg, "converted", "customers", "conversion", alpha)
    agg["rank"] = np.arange(1, len(agg) + 1)
    agg["segment"] = segment_label(scope)
    cols = ["rank", "variant", "variants", "n_milestones", "customers", "share", "follows_happy_path", "churned", "churn_rate",
            "churn_ci_low", "churn_ci_high", "converted", "conversion_rate", "conversion_ci_low", "conversion_ci_high",
            "median_days_to_last", "segment"]
    agg["churned"] = agg["churned"].astype(int)
    agg["converted"] = agg["converted"].astype(int)
    agg["customers"] = agg["customers"].astype(int)
    return agg[cols]


# -- conformance ----------------------------------------------------------------------------------
def conformance_data(
    store: Store,
    *,
    definition: JourneyDefinition,
    as_of: Any = None,
    segment: str | None = None,
    plan: str | None = None,
    signup_from: Any = None,
    signup_to: Any = None,
    sample_n: int = 0,
    scope: Scope | None = None,
    cache: ResultCache | None = None,
    attempt_events: Sequence[str] | None = None,
    gap_days: float = 14.0,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Return conformance to the happy path: who follows it, and where and how others deviate.

    Deviation kinds, per happy-path stage S:

    * ``skipped``: S's milestone was never met, although a later happy-path
      stage's was (eligible: customers who met a later happy-path stage);
    * ``reordered``: S was met after a later happy-path stage (eligible:
      customers who met S and a later happy-path stage);
    * ``looped``: loop events (repeated attempts, returns after a gap; see
      :func:`journeylib.journey.loops.loop_events_data`) while in S (eligible: customers who entered S).

    A free-order stage (``order: any``) has no place in the order: it gets
    only a ``looped`` row, and it is not a "later" stage for the others.

    Parameters
    ----------
    store : Store
        The canonical store.
    definition : JourneyDefinition
        Stages and happy path (default: all stages in order).
    as_of, segment, plan, signup_from, signup_to, sample_n, scope, cache
        Scope, as in :func:`journeylib.journey.stages.milestones_data`.
    attempt_events : list of str, optional
        Events that count as attempts (see :func:`journeylib.journey.loops.loop_events_data`).
    gap_days : float, default 14
        Inactivity after which activity counts as a return.
    alpha : float, default 0.05
        1 - confidence level of the Wilson intervals.

    Returns
    -------
    pandas.DataFrame
        First a row ``stage="(whole path)"``, ``kind="followed"`` (customers
        who follow the happy path so far), then one row per happy-path stage
        × kind (``skipped``, ``reordered``, ``looped``; ``looped`` only for
        a free-order stage): ``stage``,
        ``stage_order`` (-1 for the whole path); ``kind``; ``customers``
        (customers with that deviation there); ``eligible`` (customers for
        whom it was possible: the denominator of ``rate``); ``rate`` =
        customers / eligible, with Wilson ``ci_low``, ``ci_high``; ``share``
        = customers / customers in scope; ``detail`` (skipped: the stage most
        often met instead; reordered: the stage most often met before it;
        looped: repeated attempts and returns counted); ``segment``.

    Raises
    ------
    EmptyResultError
        If no customer is in scope.
    """
    scope = Scope.resolve(store, scope, function="conformance_data", as_of=as_of, segment=segment, plan=plan,
                          signup_from=signup_from, signup_to=signup_to, sample_n=sample_n)
    paths = _paths(store, definition, scope, loops=True, attempt_events=attempt_events, gap_days=gap_days, cache=cache)
    cust, met, loops, skipped, reordered = paths.customers, paths.met, paths.loops, paths.skipped, paths.reordered
    happy = definition.path
    order = {name: k for k, name in enumerate(definition.stage_names)}
    total = len(cust)
    met_stage = paths.met_wide
    free = definition.free_stages
    entered_orders = paths.intervals.groupby("stage_order")["customer_id"].nunique()
    rows: list[dict[str, Any]] = [
        {"stage": "(whole path)", "stage_order": -1, "kind": "followed", "customers": int(cust["follows_happy_path"].sum()),
         "eligible": total, "detail": f"happy path: {ARROW.join(happy)}"}
    ]
    for i, name in enumerate(happy):
        later = [n for n in happy[i + 1 :] if n not in free]
        if name in free:  # no place in the order: only loops are deviations there
            later = []
        later_met = met_stage[later].notna().any(axis=1) if later else pd.Series(False, index=cust.index)
        sk = skipped[name]
        detail_skip = ""
        if sk.any() and later:
            nxt = met[met["customer_id"].isin(cust.index[sk]) & met["stage"].isin(later)]
            if len(nxt):
                first_after = nxt.sort_values(["customer_id", "position"]).groupby("customer_id")["stage"].first().value_counts()
                detail_skip = f"most often went on to {first_after.index[0]} ({int(first_after.iloc[0])})"
        if name not in free:
            rows.append({"stage": name, "stage_order": order[name], "kind": "skipped", "customers": int(sk.sum()),
                         "eligible": int(later_met.sum()), "detail": detail_skip})
        ro = reordered[name]
        detail_re = ""
        if ro.any() and later:
            before = met_stage.loc[ro, later].lt(met_stage.loc[ro, name], axis=0).sum().sort_values(ascending=False)
            detail_re = f"most often met after {before.index[0]} ({int(before.iloc[0])})"
        if name not in free:
            rows.append({"stage": name, "stage_order": order[name], "kind": "reordered", "customers": int(ro.sum()),
                         "eligible": int((met_stage[name].notna() & later_met).sum()), "detail": detail_re})
        here = loops[loops["stage_order"] == order[name]] if len(loops) else loops
        by_kind = here.groupby("kind")["loops"].sum() if len(here) else pd.Series(dtype=float)
        detail_loop = ", ".join(plural(int(v), str(k), _LOOP_PLURALS.get(str(k))) for k, v in by_kind.items())
        rows.append({"stage": name, "stage_order": order[name], "kind": "looped",
                     "customers": int(here["customer_id"].nunique()) if len(here) else 0,
                     "eligible": int(entered_orders.get(order[name], 0)), "detail": detail_loop})
    out = pd.DataFrame(rows)
    out = _rate_columns(out, "customers", "eligible", "r", alpha).rename(columns={"r_rate": "rate", "r_ci_low": "ci_low", "r_ci_high": "ci_high"})
    out["share"] = out["customers"] / total
    out["segment"] = segment_label(scope)
    cols = ["stage", "stage_order", "kind", "customers", "eligible", "rate", "ci_low", "ci_high", "share", "detail", "segment"]
    return out[cols]
