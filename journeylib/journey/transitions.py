"""Transitions between stages and between events, and the Sankey-style flow of the milestone paths.

Every path starts at ``start`` and ends in an end node (``churned``,
``dropped`` or ``still active``; see :mod:`journeylib.journey.paths`). Stage
transitions and the flow are built from the milestone paths; event transitions
run in the engine, one window over integer-coded events.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from typing import Any, Literal

import numpy as np
import pandas as pd

from journeylib.cache import ResultCache
from journeylib.config.journey import JourneyDefinition
from journeylib.exceptions import EmptyResultError
from journeylib.journey.paths import (
    CHURNED,
    DROPPED,
    END_NODES,
    STILL_ACTIVE,
    customer_status_frame,
    milestones_in_order,
    segment_label,
)
from journeylib.journey.scoped_events import scoped_event_count, top_events
from journeylib.journey.stages import stage_frames
from journeylib.scope import Scope
from journeylib.stats import wilson_interval
from journeylib.store import Store
from journeylib.store.dialect import (
    sql_epoch_microseconds,
    sql_quantiles,
    sql_quote,
    sql_rank_columns,
    sql_ranked_quantile_bounds,
    sql_semi_join,
    sql_timestamp,
)

__all__ = ["OTHER", "SORTED_QUANTILES_FROM_EVENTS", "START", "event_transitions_data", "flow_data", "stage_transitions_data"]

#: Start node of transition matrices and flows.
START = "start"
#: Event-level node that lumps every event outside the top N.
OTHER = "other"


# -- stage transitions ----------------------------------------------------------------------------
def stage_transitions_data(
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
    basis: Literal["met", "entered"] = "met",
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Return the stage-level transition matrix, with ``start`` and end nodes.

    Each customer's path (stages in the order their milestones were met, or,
    with ``basis="entered"``, the stages entered in order) becomes
    transitions ``start → first stage → … → last stage → end node``. The end
    node is ``churned``, ``dropped`` or ``still active`` (see
    :mod:`journeylib.journey.paths`). Every customer leaves ``start`` once and reaches one end
    node once, so customers are conserved. With ``basis="entered"`` a
    free-order stage (``order: any``) appears when its rule holds, whatever
    the earlier stages, and the stages follow each other in the order
    entered.

    Parameters
    ----------
    store : Store
        The canonical store.
    definition : JourneyDefinition
        Stages and conventions.
    as_of, segment, plan, signup_from, signup_to, sample_n, scope, cache
        Scope, as in :func:`journeylib.journey.stages.milestones_data`.
    basis : {"met", "entered"}, default "met"
        ``"met"``: milestones in the order they were met (skips and
        reorders visible); ``"entered"``: stages entered in order (a funnel).
    alpha : float, default 0.05
        1 - confidence level of the Wilson intervals.

    Returns
    -------
    pandas.DataFrame
        One row per observed (from, to) pair: ``from_node``, ``to_node``
        (stage names, ``start``, or an end node); ``from_order``,
        ``to_order`` (stage order; -1 for ``start``; end nodes after the last
        stage); ``kind`` (``start``, ``forward`` to the next stage, ``skip``
        ahead, ``backward``, ``free`` (into a free-order stage, or out of one
        into a stage other than the next: no order is implied), or ``end``); ``customers`` (customers making it;
        each makes a pair at most once); ``from_total`` (customers leaving
        ``from_node``: the denominator); ``probability`` = customers /
        from_total (sums to 1 per ``from_node``); ``ci_low``, ``ci_high``
        (Wilson); ``median_days``, ``p25_days``, ``p75_days`` (between the
        two milestones; to churn for ``churned``; NaN for ``start`` and the
        other end nodes, whose time is censored); ``segment``.

    Raises
    ------
    ValueError
        If ``basis`` is not "met" or "entered".
    EmptyResultError
        If no customer is in scope.
    """
    if basis not in ("met", "entered"):
        msg = f"stage_transitions_data: basis must be 'met' or 'entered'; got {basis!r}"
        raise ValueError(msg)
    scope = Scope.resolve(store, scope, function="stage_transitions_data", as_of=as_of, segment=segment, plan=plan,
                          signup_from=signup_from, signup_to=signup_to, sample_n=sample_n)
    ms, iv = stage_frames(store, definition, scope, cache=cache)
    cust = customer_status_frame(ms, iv, definition, scope.as_of)
    if basis == "met":
        steps = milestones_in_order(ms).rename(columns={"met_at": "at"})
    else:
        steps = iv[["customer_id", "stage", "stage_order", "entered_at"]].rename(columns={"entered_at": "at"}).copy()
        steps["stage"] = steps["stage"].astype(str)
        steps = steps.sort_values(["customer_id", "stage_order"])
    n_stages = len(definition.stages)
    end_order = {name: n_stages + i for i, name in enumerate(END_NODES)}
    # start rows and end rows, as extra steps of each path
    start = pd.DataFrame({"customer_id": cust.index, "stage": START, "stage_order": -1})
    start["at"] = pd.Series(pd.NaT, index=start.index, dtype=steps["at"].dtype)
    churn_at = cust["churned_at"].where(cust["end_node"] == CHURNED)
    end = pd.DataFrame(
        {"customer_id": cust.index, "stage": cust["end_node"].to_numpy(), "stage_order": cust["end_node"].map(end_order).to_numpy(), "at": churn_at.to_numpy()}
    )
    seq = pd.concat([start, steps[["customer_id", "stage", "stage_order", "at"]], end], ignore_index=True)
    seq["at"] = pd.to_datetime(seq["at"], utc=True)
    seq["_rank"] = np.select([seq["stage"] == START, seq["stage_order"] >= n_stages], [0, 2], 1)
    seq = seq.sort_values(["customer_id", "_rank", "at", "stage_order"], kind="mergesort", na_position="first")
    seq["to_node"] = seq.groupby("customer_id")["stage"].shift(-1)
    seq["to_order"] = seq.groupby("customer_id")["stage_order"].shift(-1)
    seq["to_at"] = seq.groupby("customer_id")["at"].shift(-1)
    tr = seq[seq["to_node"].notna()].copy()
    tr["days"] = (tr["to_at"] - tr["at"]).dt.total_seconds() / 86400.0
    tr = tr.rename(columns={"stage": "from_node", "stage_order": "from_order"})
    grouped = tr.groupby(["from_node", "to_node", "from_order", "to_order"], sort=False)
    out = grouped.agg(
        customers=("customer_id", "nunique"),
        median_days=("days", "median"),
        p25_days=("days", lambda x: x.quantile(0.25)),
        p75_days=("days", lambda x: x.quantile(0.75)),
    ).reset_index()
    out["from_order"] = out["from_order"].astype(int)
    out["to_order"] = out["to_order"].astype(int)
    out["from_total"] = out.groupby("from_node")["customers"].transform("sum")
    out["probability"] = out["customers"] / out["from_total"]
    out["ci_low"], out["ci_high"] = wilson_interval(out["customers"], out["from_total"], alpha=alpha)
    free = definition.free_stages
    to_free = out["to_node"].isin(free)
    from_free = out["from_node"].isin(free)
    forward = out["to_order"] == out["from_order"] + 1
    out["kind"] = np.select(
        [out["from_node"] == START, out["to_order"] >= n_stages, to_free | (from_free & ~forward), forward, out["to_order"] > out["from_order"]],
        ["start", "end", "free", "forward", "skip"],
        default="backward",
    )
    out["segment"] = segment_label(scope)
    cols = ["from_node", "to_node", "from_order", "to_order", "kind", "customers", "from_total", "probability",
            "ci_low", "ci_high", "median_days", "p25_days", "p75_days", "segment"]
    return out[cols].sort_values(["from_order", "to_order"]).reset_index(drop=True)


# -- event transitions ----------------------------------------------------------------------------
def event_transitions_data(
    store: Store,
    *,
    definition: JourneyDefinition | None = None,
    as_of: Any = None,
    segment: str | None = None,
    plan: str | None = None,
    signup_from: Any = None,
    signup_to: Any = None,
    sample_n: int = 0,
    scope: Scope | None = None,
    cache: ResultCache | None = None,
    top_n: int = 10,
    events: Sequence[str] | None = None,
    collapse_repeats: bool = False,
    inactive_days: float | None = None,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Return the event-level transition matrix, computed in the engine.

    Each customer's events, ordered by timestamp (ties by node name: events
    with the same timestamp and node are interchangeable, so the sequence
    does not depend on row order), become transitions ``start → e1 → e2 →
    … → end node``. Events outside the ``top_n`` most frequent become
    ``other``. The window runs in the engine (``lag`` over customer numbers,
    epoch microseconds and node codes, with one end row per customer); only
    the per-pair statistics come back. From :data:`SORTED_QUANTILES_FROM_EVENTS`
    events in scope the day quartiles are taken from a window sort, which
    DuckDB spills, instead of an exact quantile aggregate, which it does not;
    both give the same bits.

    Parameters
    ----------
    store : Store
        The canonical store.
    definition : JourneyDefinition, optional
        Supplies the default ``inactive_days`` (``conventions.drop_after_days``).
    as_of, segment, plan, signup_from, signup_to, sample_n, scope
        Scope, as in :func:`journeylib.journey.stages.milestones_data`.
    cache : ResultCache, optional
        Shares the scope's event counts (the number of events and the
        ``top_n`` names) with the other analyses of a context
        (:func:`journeylib.journey.scoped_events.scoped_event_counts`).
    top_n : int, default 10
        Events kept as their own node (by number of events in scope; ties
        by name).
    events : list of str, optional
        Keep only these events (the others are removed from the sequence,
        not lumped into ``other``).
    collapse_repeats : bool, default False
        Merge consecutive identical nodes (``login → login``) into one.
    inactive_days : float, optional
        A customer not churned whose last event is more than this many days
        before as_of ends in ``dropped``; default the definition's
        ``drop_after_days`` (None: no ``dropped`` node).
    alpha : float, default 0.05
        1 - confidence level of the Wilson intervals.

    Returns
    -------
    pandas.DataFrame
        One row per observed (from, to) pair: ``from_node``, ``to_node``
        (event names, ``other``, ``start``, ``still active``, ``dropped``,
        ``churned``); ``kind`` (``start``, ``event``, ``end``);
        ``transitions`` (number of times the pair occurs); ``customers``
        (distinct customers making it); ``from_total`` (transitions leaving
        ``from_node``: the denominator); ``probability`` = transitions /
        from_total (sums to 1 per ``from_node``); ``ci_low``, ``ci_high``
        (Wilson, treating transitions as independent); ``median_days``,
        ``p25_days``, ``p75_days`` (time between the two events; to churn
        for ``churned``; NaN otherwise); ``median_hours`` (= median_days ×
        24); ``segment``.

    Raises
    ------
    ValueError
        If ``top_n`` < 1.
    EmptyResultError
        If no customer is in scope.
    """
    if top_n < 1:
        msg = f"event_transitions_data: top_n must be at least 1; got {top_n}"
        raise ValueError(msg)
    scope = Scope.resolve(store, scope, function="event_transitions_data", as_of=as_of, segment=segment, plan=plan,
                          signup_from=signup_from, signup_to=signup_to, sample_n=sample_n)
    if inactive_days is None and definition is not None:
        inactive_days = definition.conventions.drop_after_days
    n_events = scoped_event_count(store, scope, events=events, cache=cache)
    sorted_quantiles = n_events >= SORTED_QUANTILES_FROM_EVENTS
    # With a cache the top events come from the scope's shared counts by name; without one the
    # statement ranks them itself (one scan fewer than counting by name first).
    top = top_events(store, scope, n=top_n, events=events, cache=cache) if cache is not None else None
    out = store.query(_event_transitions_sql(scope, top_n=top_n, top=top, events=events, collapse_repeats=collapse_repeats,
                                             inactive_days=inactive_days, sorted_quantiles=sorted_quantiles))
    if out.empty:
        msg = f"no customers in scope ({scope.describe()}); widen the filters."
        raise EmptyResultError(msg)
    if sorted_quantiles:
        for name, col in (("p25", "p25_days"), ("p50", "median_days"), ("p75", "p75_days")):
            out[col] = _interpolate_like_duckdb(out.pop(f"{name}_lo"), out.pop(f"{name}_hi"), out.pop(f"{name}_frac"))
    else:
        q = [v if isinstance(v, (list, np.ndarray)) and len(v) == 3 else [np.nan] * 3 for v in out.pop("q")]
        out["p25_days"], out["median_days"], out["p75_days"] = (np.asarray([r[i] for r in q], dtype=float) for i in range(3))
    out["from_total"] = out.groupby("from_node")["transitions"].transform("sum")
    out["probability"] = out["transitions"] / out["from_total"]
    out["ci_low"], out["ci_high"] = wilson_interval(out["transitions"], out["from_total"], alpha=alpha)
    out["kind"] = np.select([out["from_node"] == START, out["to_node"].isin(END_NODES)], ["start", "end"], default="event")
    out["median_hours"] = out["median_days"] * 24.0
    out["segment"] = segment_label(scope)
    # order: start first, then nodes by traffic, end nodes last
    traffic = out.groupby("from_node")["transitions"].sum()
    rank = {START: -1.0, **{k: float(-v) for k, v in traffic.items() if k != START}}
    out["_r"] = out["from_node"].map(rank)
    out["_t"] = out["to_node"].map(lambda n: (len(rank) + END_NODES.index(n)) if n in END_NODES else rank.get(n, 0.0))
    out = out.sort_values(["_r", "from_node", "_t", "to_node"]).drop(columns=["_r", "_t"])
    cols = ["from_node", "to_node", "kind", "transitions", "customers", "from_total", "probability", "ci_low", "ci_high",
            "median_days", "p25_days", "p75_days", "median_hours", "segment"]
    return out[cols].reset_index(drop=True)


#: Events in scope (after the ``events`` filter) from which :func:`event_transitions_data` takes its day
#: quartiles from a window sort rather than an exact quantile aggregate; both give the same bits. The
#: aggregate keeps every value of a (from, to) pair in memory and DuckDB does not spill it: at 100M events
#: it failed under the 600MB read-only limit and under 2GB. The sort spills, but at 10M events (where the
#: aggregate completes under 600MB) it took 4.7 s against 2.7 s. Set for the default 600MB limit: a
#: lower ``JOURNEYLIB_MEMORY_LIMIT`` may need a lower threshold.
SORTED_QUANTILES_FROM_EVENTS = 20_000_000

#: The quantiles of the days between the two events of a pair, and the columns the statement returns for them.
_QUARTILES = (0.25, 0.5, 0.75)
_QUANTILE_BOUND_COLUMNS = tuple(f"{n}_{part}" for n in ("p25", "p50", "p75") for part in ("lo", "hi", "frac"))


def _interpolate_like_duckdb(lo: pd.Series, hi: pd.Series, frac: pd.Series) -> np.ndarray:
    """Return ``lo × (1 - frac) + hi × frac`` rounded as DuckDB's ``quantile_cont`` rounds it.

    DuckDB interpolates two DOUBLE values as ``lo * (1.0 - d) + hi * d`` and the
    compiled library evaluates it as one fused multiply-add,
    ``fma(lo, 1 - d, round(hi * d))``: a single rounding of the exact sum. This
    function computes that sum exactly (``fractions.Fraction``) and rounds it once,
    so the quantiles taken from a sort (:func:`~journeylib.store.dialect.sql_ranked_quantile_bounds`)
    are bit for bit the aggregate's. ``frac`` = 0 gives ``lo`` itself; NULL ``lo``
    gives NaN.

    Parameters
    ----------
    lo, hi : pandas.Series
        The values at positions ``floor(r)`` and ``ceil(r)`` (float; NaN or None where the group has no value).
    frac : pandas.Series
        ``r - floor(r)``, in [0, 1).

    Returns
    -------
    numpy.ndarray
        The interpolated quantiles (float64).
    """
    lo_a = pd.to_numeric(lo, errors="raise").to_numpy(dtype=float, na_value=np.nan)
    hi_a = pd.to_numeric(hi, errors="raise").to_numpy(dtype=float, na_value=np.nan)
    fr_a = pd.to_numeric(frac, errors="raise").to_numpy(dtype=float, na_value=np.nan)
    out = lo_a.copy()
    for i in np.flatnonzero((fr_a > 0) & np.isfinite(lo_a) & np.isfinite(hi_a)):
        a, b, d = float(lo_a[i]), float(hi_a[i]), float(fr_a[i])
        out[i] = float(Fraction(a) * Fraction(1.0 - d) + Fraction(b * d))
    return out


def _days(from_us: str, to_us: str) -> str:
    """Return SQL for the days between two epoch-microsecond integers, the same doubles as :func:`sql_days_between`.

    ``sql_days_between(a, b)`` is ``(epoch(b) - epoch(a)) / 86400.0`` and ``epoch(t)`` is
    ``epoch_us(t) / 1e6`` exactly (on DuckDB and as :func:`~journeylib.store.dialect.to_spark_sql`
    spells it for Spark).
    """
    return f"({to_us} / 1000000.0 - {from_us} / 1000000.0) / 86400.0"


def _event_transitions_sql(
    scope: Scope, *, top_n: int, top: Sequence[str] | None, events: Sequence[str] | None, collapse_repeats: bool,
    inactive_days: float | None, sorted_quantiles: bool,
) -> str:
    """Return the statement of :func:`event_transitions_data`: one row per (from_node, to_node) with its counts and quantiles.

    Customers are numbered (``k``, in ``customer_id`` order), timestamps are epoch microseconds and
    nodes are integer codes numbered in node-name order (``start``, the end nodes, ``other`` and the
    top events share one numbering, so equal names are one node and ordering by code orders by
    name), so the window sorts three integers per event. *top* are the ``top_n`` event names kept
    as nodes (:func:`~journeylib.journey.scoped_events.top_events`); None ranks them in the statement
    (``ORDER BY count(*) DESC, event``, the order ``top_events`` returns). Each customer's sequence gets one extra
    row after its last event (code 0): ``lag`` over it gives every transition, ``start`` into the
    first node (no previous row) and the last node into the end node, in one window and one pass.
    """
    asof = sql_timestamp(scope.as_of)
    us = sql_epoch_microseconds
    keep = f" AND e.event IN ({', '.join(sql_quote(e) for e in events)})" if events else ""
    special = " UNION ".join(f"SELECT {sql_quote(n)}" for n in (OTHER, START, *END_NODES))
    nc = ", ".join(
        f"max(CASE WHEN node = {sql_quote(n)} THEN code END) AS c_{i}" for i, n in enumerate((OTHER, START, CHURNED, DROPPED, STILL_ACTIVE))
    )
    if collapse_repeats:
        nodes = (
            "SELECT k, us, code FROM (SELECT k, us, code, lag(code) OVER (PARTITION BY k ORDER BY us, code) AS prev FROM nodes0) x "
            "WHERE prev IS NULL OR prev <> code"
        )
    else:
        nodes = "SELECT k, us, code FROM nodes0"
    dropped = (
        f"WHEN s.pus IS NULL OR s.pus < {us(asof)} - {round(inactive_days * 86_400_000_000)} THEN nc.c_3 "
        if inactive_days is not None
        else ""
    )
    if sorted_quantiles:
        quantiles = ", ".join(f"agg.{c}" for c in _QUANTILE_BOUND_COLUMNS)
        ranked = f"SELECT f, t, k, days, {sql_rank_columns('days', partition_by='f, t', name='d')} FROM pairs"
    else:
        quantiles = "agg.q"
        ranked = "SELECT f, t, k, days FROM pairs"
    bounds = ", ".join(
        f"{sql} AS {col}"
        for q, name in zip(_QUARTILES, ("p25", "p50", "p75"), strict=True)
        for sql, col in zip(sql_ranked_quantile_bounds("days", name="d", probability=q),
                            (f"{name}_lo", f"{name}_hi", f"{name}_frac"), strict=True)
    ) if sorted_quantiles else f"{sql_quantiles('days', list(_QUARTILES))} AS q"
    # Memory matters at 10M events: the window sorts (k, us, code) integers only; the event names
    # are replaced by codes before it and come back only on the aggregated pairs. ``top`` is the
    # list of names counted beforehand or reads events on its own rather than from ``ev``, so that
    # ``ev`` is used once and not materialised.
    if top is not None:
        top_sql = " UNION ALL ".join(f"SELECT {sql_quote(e)} AS event" for e in top) or "SELECT event FROM events WHERE 1 = 0"
    else:
        top_sql = (
            f"SELECT e.event FROM {sql_semi_join('events e', 'cust c', 'e.customer_id = c.customer_id')} "
            f"WHERE {scope.events_time_sql('e')}{keep} GROUP BY e.event ORDER BY count(*) DESC, e.event LIMIT {int(top_n)}"
        )
    return f"""
        WITH cust AS (
            SELECT customer_id, CAST(row_number() OVER (ORDER BY customer_id) AS INTEGER) AS k, {us('churned_at')} AS churned_us
            FROM ({scope.customers_sql()}) c0
        ),
        ev AS (
            SELECT c.k, {us('e.timestamp')} AS us, e.event
            FROM events e JOIN cust c ON e.customer_id = c.customer_id
            WHERE {scope.events_time_sql('e')}{keep}
        ),
        top AS ({top_sql}),
        names AS (
            SELECT node, CAST(row_number() OVER (ORDER BY node) AS INTEGER) AS code
            FROM (SELECT event AS node FROM top UNION {special}) x
        ),
        nc AS (SELECT {nc} FROM names),
        codes AS (SELECT t.event, n.code FROM top t JOIN names n ON n.node = t.event),
        nodes0 AS (SELECT ev.k, ev.us, coalesce(cd.code, nc.c_0) AS code FROM ev LEFT JOIN codes cd ON cd.event = ev.event CROSS JOIN nc),
        nodes AS ({nodes}),
        seq AS (
            SELECT k, code, us, lag(code) OVER w AS pc, lag(us) OVER w AS pus
            FROM (SELECT k, us, code FROM nodes UNION ALL SELECT k, {us(asof)} + 1, 0 FROM cust) r
            WINDOW w AS (PARTITION BY k ORDER BY us, code)
        ),
        pairs AS (
            SELECT s.k, coalesce(s.pc, nc.c_1) AS f,
                   CASE WHEN s.code > 0 THEN s.code WHEN c.churned_us IS NOT NULL THEN nc.c_2 {dropped}ELSE nc.c_4 END AS t,
                   CASE WHEN s.code > 0 THEN {_days('s.pus', 's.us')} WHEN c.churned_us IS NOT NULL THEN {_days('s.pus', 'c.churned_us')} END AS days
            FROM seq s JOIN cust c ON c.k = s.k CROSS JOIN nc
        ),
        ranked AS ({ranked}),
        agg AS (
            SELECT f, t, count(*) AS transitions, count(DISTINCT k) AS customers, {bounds}
            FROM ranked GROUP BY f, t
        )
        SELECT a.node AS from_node, b.node AS to_node, agg.transitions, agg.customers, {quantiles}
        FROM agg JOIN names a ON a.code = agg.f JOIN names b ON b.code = agg.t
    """


# -- flow (Sankey) --------------------------------------------------------------------------------
def _smoothstep(t: np.ndarray) -> np.ndarray:
    return t * t * (3.0 - 2.0 * t)


def flow_data(
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
    n_steps: int = 5,
    from_stage: str | None = None,
    node_width: float = 0.18,
    padding: float = 0.05,
    n_points: int = 24,
) -> pd.DataFrame:
    """Return a Sankey-style flow of the first ``n_steps`` steps of the milestone paths, laid out.

    Step 0 is each customer's first milestone (or ``from_stage``), step *i*
    the *i*-th milestone met after it; a path that ends before the last step
    flows into its end node (``still active``, ``dropped``, ``churned``),
    where it stops. Node and link coordinates are computed here, so a chart
    only draws rectangles and bands.

    Layout: x is the step (a node spans ``[step, step + node_width]``); y is
    in customers from the top (0) down, nodes of a step stacked in stage
    order then end nodes, separated by ``padding`` × customers at step 0.
    A link is a band of constant thickness (its customers) from the right
    edge of its source node to the left edge of its target node, drawn as
    ``n_points`` points on a smooth-step curve; bands are stacked at both
    ends in the order of the node at the other end, so they do not cross
    inside a node.

    Parameters
    ----------
    store : Store
        The canonical store.
    definition : JourneyDefinition
        Stages and conventions.
    as_of, segment, plan, signup_from, signup_to, sample_n, scope, cache
        Scope, as in :func:`journeylib.journey.stages.milestones_data`.
    n_steps : int, default 5
        Steps shown (≥ 2).
    from_stage : str, optional
        Start the flow at this stage: only customers who met it, from it on.
    node_width : float, default 0.18
        Node width in steps.
    padding : float, default 0.05
        Gap between nodes, as a share of the customers at step 0.
    n_points : int, default 24
        Points per link band.

    Returns
    -------
    pandas.DataFrame
        Rows of two kinds, told apart by ``element``. ``node`` rows (one per
        step × node): ``step``; ``node``; ``node_kind`` (``stage`` or
        ``end``); ``node_order`` (the stage's order; end nodes after the last
        stage: a stable key for colours); ``customers`` (customers at that node and step);
        ``share`` = customers / customers at step 0; ``x``, ``x2`` (left
        and right edge), ``y``, ``y2`` (top and bottom edge); ``label``
        (``"<node> (<customers>)"``). ``link`` rows (``n_points`` per link):
        ``link_id``; ``step`` (of the source); ``node`` (source) and
        ``target``; ``node_order`` (of the target); ``customers`` (customers flowing; the same on every
        point), ``share``; ``point`` (0 … n_points-1); ``x``; ``y``,
        ``y2`` (band edges at x). Customers are conserved: a node's
        customers equal the sum of its incoming links (step > 0) and, unless
        it is an end node or on the last step, of its outgoing links. Also
        ``segment``.

    Raises
    ------
    ValueError
        If ``n_steps`` < 2 or ``from_stage`` is not a stage.
    EmptyResultError
        If no customer is in scope, or none met ``from_stage``.
    """
    if n_steps < 2:
        msg = f"flow_data: n_steps must be at least 2; got {n_steps}"
        raise ValueError(msg)
    if from_stage is not None and from_stage not in definition.stage_names:
        msg = f"flow_data: from_stage {from_stage!r} is not a stage; stages are {definition.stage_names}"
        raise ValueError(msg)
    scope = Scope.resolve(store, scope, function="flow_data", as_of=as_of, segment=segment, plan=plan,
                          signup_from=signup_from, signup_to=signup_to, sample_n=sample_n)
    ms, iv = stage_frames(store, definition, scope, cache=cache)
    cust = customer_status_frame(ms, iv, definition, scope.as_of)
    met = milestones_in_order(ms)
    if from_stage is not None:
        start_pos = met.loc[met["stage"] == from_stage].set_index("customer_id")["position"]
        met = met[met["customer_id"].isin(start_pos.index)].copy()
        met["position"] = met["position"] - met["customer_id"].map(start_pos)
        met = met[met["position"] >= 0]
        cust = cust.loc[cust.index.isin(start_pos.index)]
        if cust.empty:
            msg = f"flow_data: no customer in scope ({scope.describe()}) met {from_stage!r}."
            raise EmptyResultError(msg)
    n_stages = len(definition.stages)
    # one row per customer × step: milestones, then the end node right after the last one
    steps = met[["customer_id", "stage", "stage_order", "position"]].rename(columns={"stage": "node", "position": "step"})
    n_met = steps.groupby("customer_id").size().reindex(cust.index).fillna(0).astype(int)
    ends = pd.DataFrame({"customer_id": cust.index, "node": cust["end_node"].to_numpy(), "step": n_met.to_numpy()})
    ends["stage_order"] = ends["node"].map({n: n_stages + i for i, n in enumerate(END_NODES)})
    steps = pd.concat([steps, ends], ignore_index=True)
    steps = steps[steps["step"] < n_steps]
    steps["node_kind"] = np.where(steps["node"].isin(END_NODES) & (steps["stage_order"] >= n_stages), "end", "stage")
    nodes = steps.groupby(["step", "node", "stage_order", "node_kind"]).size().rename("customers").reset_index()
    nodes = nodes.sort_values(["step", "stage_order"]).reset_index(drop=True)
    base = int(nodes.loc[nodes["step"] == 0, "customers"].sum())
    gap = padding * base
    nodes["y"] = nodes.groupby("step")["customers"].cumsum() - nodes["customers"] + nodes.groupby("step").cumcount() * gap
    nodes["y2"] = nodes["y"] + nodes["customers"]
    nodes["x"] = nodes["step"].astype(float)
    nodes["x2"] = nodes["x"] + node_width
    # links: consecutive steps of a customer
    steps = steps.sort_values(["customer_id", "step"])
    steps["target"] = steps.groupby("customer_id")["node"].shift(-1)
    steps["target_order"] = steps.groupby("customer_id")["stage_order"].shift(-1)
    links = steps[steps["target"].notna()].groupby(["step", "node", "target", "target_order"]).size().rename("customers").reset_index()
    ys = nodes[["step", "node", "y"]]
    links = links.merge(ys.rename(columns={"y": "src_y"}), on=["step", "node"], how="left")
    links = links.merge(
        ys.assign(step=ys["step"] - 1).rename(columns={"node": "target", "y": "tgt_y"}), on=["step", "target"], how="left"
    )
    links = links.sort_values(["step", "node", "tgt_y"])
    links["sy0"] = links["src_y"] + links.groupby(["step", "node"])["customers"].cumsum() - links["customers"]
    links = links.sort_values(["step", "target", "src_y"])
    links["ty0"] = links["tgt_y"] + links.groupby(["step", "target"])["customers"].cumsum() - links["customers"]
    links = links.sort_values(["step", "src_y", "tgt_y"]).reset_index(drop=True)
    links["link_id"] = np.arange(len(links))
    t = np.linspace(0.0, 1.0, n_points)
    s = _smoothstep(t)
    rep = links.loc[links.index.repeat(n_points)].reset_index(drop=True)
    tt = np.tile(t, len(links))
    ss = np.tile(s, len(links))
    x0 = rep["step"].to_numpy(dtype=float) + node_width
    x1 = rep["step"].to_numpy(dtype=float) + 1.0
    rep["point"] = np.tile(np.arange(n_points), len(links))
    rep["x"] = x0 + tt * (x1 - x0)
    rep["y"] = rep["sy0"] + ss * (rep["ty0"] - rep["sy0"])
    rep["y2"] = rep["y"] + rep["customers"]
    rep["element"] = "link"
    rep["node_order"] = rep["target_order"]
    rep["node_kind"] = ""
    rep["x2"] = np.nan
    rep["label"] = ""
    nodes["element"] = "node"
    nodes["node_order"] = nodes["stage_order"]
    nodes["target"] = ""
    nodes["link_id"] = -1
    nodes["point"] = 0
    nodes["label"] = nodes["node"] + " (" + nodes["customers"].astype(str) + ")"
    cols = ["element", "step", "node", "node_kind", "node_order", "target", "link_id", "point", "customers", "share", "x", "x2", "y", "y2",
            "label", "segment"]
    out = pd.concat([nodes, rep], ignore_index=True)
    out["share"] = out["customers"] / base if base else np.nan
    out["segment"] = segment_label(scope)
    out["customers"] = out["customers"].astype(int)
    out["step"] = out["step"].astype(int)
    out["link_id"] = out["link_id"].astype(int)
    out["point"] = out["point"].astype(int)
    out["node_order"] = out["node_order"].astype(int)
    return out[cols]
