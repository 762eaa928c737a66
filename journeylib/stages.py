"""Journey stages: milestone detection, funnel, time-to-convert and progress.

Milestones are detected in the engine (SQL over the canonical ``events``
table, never Python loops over events) from a
:class:`~journeylib.config.JourneyDefinition`. Conventions, also documented
in ``docs/journey-definition.md``:

* ``as_of`` is the censoring date. Events after it are not seen; churn or
  conversion after it has not happened yet.
* A condition holds at the time of its ``min_count``-th qualifying event
  (``occurrence: first``) or of the last qualifying event (``occurrence:
  last``); windows are ``[reference, reference + within_days)``.
* Stages are ordered: stage *k* is entered at ``max(met_at[k], entered_at[k-1])``
  and only if stage *k-1* was entered. ``met_at`` (the rule alone) is kept
  too, so out-of-order behaviour stays visible to path analysis.
* A customer who entered stage *k-1* but not *k* has **dropped out** at *k*
  if they churned (by ``as_of``), or if ``conventions.drop_after_days`` is set
  and that many days passed since entering *k-1*. Otherwise they are **still
  in progress** (censored) and are never counted as a drop-off.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from statsmodels.stats.proportion import proportion_confint

from .config import AllOf, AnyOf, Condition, JourneyDefinition
from .engine import Store, sql_add_days, sql_json_text, sql_quote
from .exceptions import EmptyResultError
from .scope import Scope

__all__ = [
    "add_stage_exits",
    "compute_stages",
    "customer_stages_data",
    "funnel_data",
    "milestones_data",
    "progress_data",
    "stage_intervals_data",
    "time_to_convert_data",
    "wilson_interval",
]

#: Grouping columns the funnel and time tables can be broken down by.
GROUPABLE = ("segment", "plan", "cohort")


def _scope(store: Store, as_of: Any, segment: str | None, plan: str | None, signup_from: Any, signup_to: Any, sample_n: int) -> Scope:
    return Scope.build(store, as_of=as_of, segment=segment, plan=plan, signup_from=signup_from, signup_to=signup_to, sample_n=sample_n)


# -- SQL for rules ---------------------------------------------------------------
def _condition_sql(cond: Condition, ref_table: str, occurrence: str) -> str:
    names = ", ".join(sql_quote(n) for n in cond.names)
    where = [f"e.event IN ({names})", "e.timestamp >= r.ref"]
    if cond.within_days is not None:
        where.append(f"e.timestamp < {sql_add_days('r.ref', cond.within_days)}")
    for key, val in (cond.where or {}).items():
        vals = val if isinstance(val, list) else [val]
        texts = ", ".join(sql_quote(str(v).lower() if isinstance(v, bool) else v) for v in vals)
        where.append(f"{sql_json_text('e.properties', key)} IN ({texts})")
    base = f"SELECT e.customer_id, e.timestamp AS ts, e.event_id FROM _jl_e e JOIN {ref_table} r ON e.customer_id = r.customer_id WHERE {' AND '.join(where)}"
    if occurrence == "last":
        return f"SELECT customer_id, max(ts) AS t FROM ({base}) GROUP BY customer_id HAVING count(*) >= {cond.min_count}"
    return (
        "SELECT customer_id, ts AS t FROM (SELECT customer_id, ts, row_number() OVER "
        f"(PARTITION BY customer_id ORDER BY ts, event_id) AS rn FROM ({base})) WHERE rn = {cond.min_count}"
    )


def _rule_sql(rule: Any, refs: dict[str, str], occurrence: str) -> str:
    if isinstance(rule, Condition):
        return _condition_sql(rule, refs[rule.of], occurrence)
    members = rule.all if isinstance(rule, AllOf) else rule.any
    parts = [_rule_sql(m, refs, occurrence) for m in members]
    if isinstance(rule, AnyOf):
        union = " UNION ALL ".join(f"({p})" for p in parts)
        return f"SELECT customer_id, min(t) AS t FROM ({union}) GROUP BY customer_id"
    sql = f"SELECT m0.customer_id, greatest({', '.join(f'm{i}.t' for i in range(len(parts)))}) AS t FROM ({parts[0]}) m0"
    for i, p in enumerate(parts[1:], start=1):
        sql += f" JOIN ({p}) m{i} ON m{i}.customer_id = m0.customer_id"
    return sql


def _uses_where(definition: JourneyDefinition) -> bool:
    def walk(rule: Any) -> bool:
        if isinstance(rule, Condition):
            return bool(rule.where)
        if isinstance(rule, AllOf):
            return any(walk(r) for r in rule.all)
        if isinstance(rule, AnyOf):
            return any(walk(r) for r in rule.any)
        return False

    return any(walk(s.rule) for s in definition.stages)


def compute_stages(store: Store, definition: JourneyDefinition, scope: Scope) -> pd.DataFrame:
    """Run the milestone SQL for an already-built :class:`~journeylib.scope.Scope`.

    The engine step behind :func:`milestones_data`, for modules that build
    their scope once and reuse it (journeys, friction, suggest).

    Parameters
    ----------
    store : Store
        The canonical store.
    definition : JourneyDefinition
        Stages and conventions.
    scope : Scope
        Customers and censoring date.

    Returns
    -------
    pandas.DataFrame
        The columns of :func:`milestones_data`.

    Raises
    ------
    EmptyResultError
        If no customer is in scope.
    """
    con = store.con
    names = sorted(set().union(*(s.events() for s in definition.stages)))
    con.execute(f"CREATE OR REPLACE TEMP TABLE _jl_c AS {scope.customers_sql()}")
    # Only the columns the rules read: properties (wide JSON) only when a rule filters on them.
    cols = "customer_id, timestamp, event_id, event" + (", properties" if _uses_where(definition) else "")
    in_list = ", ".join(sql_quote(n) for n in names) if names else "NULL"
    con.execute(f"CREATE OR REPLACE TEMP TABLE _jl_e AS SELECT {cols} FROM ({scope.events_sql()}) WHERE event IN ({in_list})")
    con.execute("CREATE OR REPLACE TEMP TABLE _jl_ref_signup AS SELECT customer_id, signup_at AS ref FROM _jl_c")
    occurrence = definition.conventions.occurrence
    for k, stage in enumerate(definition.stages):
        if k > 0:
            con.execute(
                f"CREATE OR REPLACE TEMP TABLE _jl_ref_prev AS SELECT customer_id, entered_at AS ref FROM _jl_st WHERE stage_order = {k - 1} AND entered_at IS NOT NULL"
            )
        refs = {"signup": "_jl_ref_signup", "previous_stage": "_jl_ref_prev"}
        met = "SELECT customer_id, signup_at AS t FROM _jl_c" if stage.rule == "signup" else _rule_sql(stage.rule, refs, occurrence)
        prev = (
            "SELECT customer_id, signup_at AS entered_at FROM _jl_c"
            if k == 0
            else f"SELECT customer_id, entered_at FROM _jl_st WHERE stage_order = {k - 1}"
        )
        sql = f"""
            SELECT c.customer_id, {sql_quote(stage.name)} AS stage, {k} AS stage_order, m.t AS met_at,
                   CASE WHEN m.t IS NOT NULL AND p.entered_at IS NOT NULL THEN greatest(m.t, p.entered_at) END AS entered_at
            FROM _jl_c c LEFT JOIN ({met}) m ON m.customer_id = c.customer_id
                         LEFT JOIN ({prev}) p ON p.customer_id = c.customer_id"""
        if k == 0:
            con.execute(f"CREATE OR REPLACE TEMP TABLE _jl_st AS {sql}")
        else:
            con.execute(f"INSERT INTO _jl_st {sql}")
    out = store.query(
        """SELECT s.customer_id, s.stage, s.stage_order, s.met_at, s.entered_at,
                  c.segment, c.plan, c.signup_at, c.converted_at, c.churned_at
           FROM _jl_st s JOIN _jl_c c USING (customer_id) ORDER BY s.customer_id, s.stage_order"""
    )
    for tmp in ("_jl_c", "_jl_e", "_jl_ref_signup", "_jl_ref_prev", "_jl_st"):
        con.execute(f"DROP TABLE IF EXISTS {tmp}")
    if out.empty:
        msg = f"no customers in scope ({scope.describe()}); widen the filters."
        raise EmptyResultError(msg)
    out["stage"] = pd.Categorical(out["stage"], categories=definition.stage_names, ordered=True)
    return out


def milestones_data(
    store: Store,
    *,
    definition: JourneyDefinition,
    as_of: Any = None,
    segment: str | None = None,
    plan: str | None = None,
    signup_from: Any = None,
    signup_to: Any = None,
    sample_n: int = 0,
) -> pd.DataFrame:
    """Return when each customer met each stage's milestone, and entered each stage.

    Parameters
    ----------
    store : Store
        The canonical store.
    definition : JourneyDefinition
        Stages and conventions.
    as_of : date-like, optional
        Censoring date; default the latest event.
    segment, plan : str, optional
        Filters (``"all"`` or None = no filter).
    signup_from, signup_to : date-like, optional
        Signup period ``[from, to)``.
    sample_n : int, default 0
        Seeded sample of customers (0 = all).

    Returns
    -------
    pandas.DataFrame
        One row per customer × stage: ``customer_id``; ``stage`` (ordered
        categorical); ``stage_order`` (0-based); ``met_at`` (UTC; when the
        stage's rule alone first held, NaT if never by as_of); ``entered_at``
        (UTC; when the stage was entered in order, NaT if not);
        ``segment``, ``plan``, ``signup_at``, ``converted_at``, ``churned_at``
        (customer attributes; outcomes after as_of blanked).

    Raises
    ------
    EmptyResultError
        If no customer is in scope.
    """
    scope = _scope(store, as_of, segment, plan, signup_from, signup_to, sample_n)
    return compute_stages(store, definition, scope)


def add_stage_exits(ms: pd.DataFrame, definition: JourneyDefinition, as_of: pd.Timestamp) -> pd.DataFrame:
    """Add exit times and how each entered stage ended to :func:`compute_stages` output.

    Parameters
    ----------
    ms : pandas.DataFrame
        Output of :func:`compute_stages`.
    definition : JourneyDefinition
        Gives the number of stages and ``drop_after_days``.
    as_of : pandas.Timestamp
        Censoring date.

    Returns
    -------
    pandas.DataFrame
        The entered rows of *ms* plus ``exited_at``, ``days_in_stage`` and
        ``status`` as documented in :func:`stage_intervals_data`.
    """
    entered = ms[ms["entered_at"].notna()].copy()
    entered = entered.sort_values(["customer_id", "stage_order"])
    nxt = entered.groupby("customer_id")["entered_at"].shift(-1)
    last = nxt.isna()
    churn = entered["churned_at"]
    entered["exited_at"] = nxt
    entered.loc[last & churn.notna(), "exited_at"] = churn[last & churn.notna()]
    drop_days = definition.conventions.drop_after_days
    days_in = (entered["exited_at"].fillna(as_of) - entered["entered_at"]).dt.total_seconds() / 86400.0
    n_stages = len(definition.stages)
    status = np.where(~last, "progressed", "in_progress")
    status = np.where(last & churn.notna(), "churned", status)
    status = np.where(last & churn.isna() & (entered["stage_order"] == n_stages - 1), "completed", status)
    if drop_days is not None:
        status = np.where((status == "in_progress") & (days_in > drop_days), "dropped", status)
    entered["days_in_stage"] = days_in.to_numpy()
    entered["status"] = status
    return entered


def stage_intervals_data(
    store: Store,
    *,
    definition: JourneyDefinition,
    as_of: Any = None,
    segment: str | None = None,
    plan: str | None = None,
    signup_from: Any = None,
    signup_to: Any = None,
    sample_n: int = 0,
) -> pd.DataFrame:
    """Return the time each customer spent in each stage they entered.

    Parameters
    ----------
    store, definition, as_of, segment, plan, signup_from, signup_to, sample_n
        As in :func:`milestones_data`.

    Returns
    -------
    pandas.DataFrame
        One row per customer × entered stage: ``customer_id``, ``stage``,
        ``stage_order``, ``entered_at`` (UTC), ``exited_at`` (UTC: entry into
        the next stage, or churn; NaT while still in the stage at as_of),
        ``days_in_stage`` (to exit, or to as_of when still in it),
        ``status`` (``progressed`` to the next stage, ``churned`` in it,
        ``dropped`` (no progress within ``drop_after_days``), ``completed``
        (last stage), or ``in_progress``: censored at as_of), ``segment``,
        ``plan``, ``signup_at``.
    """
    scope = _scope(store, as_of, segment, plan, signup_from, signup_to, sample_n)
    ms = compute_stages(store, definition, scope)
    iv = add_stage_exits(ms, definition, scope.as_of)
    cols = ["customer_id", "stage", "stage_order", "entered_at", "exited_at", "days_in_stage", "status", "segment", "plan", "signup_at"]
    return iv[cols].reset_index(drop=True)


def customer_stages_data(
    store: Store,
    *,
    definition: JourneyDefinition,
    as_of: Any = None,
    segment: str | None = None,
    plan: str | None = None,
    signup_from: Any = None,
    signup_to: Any = None,
    sample_n: int = 0,
) -> pd.DataFrame:
    """Return each customer's current stage at ``as_of``.

    Returns
    -------
    pandas.DataFrame
        One row per customer: ``customer_id``, ``stage`` (furthest stage
        entered), ``stage_order``, ``entered_at``, ``days_in_stage`` (days from
        entering it to exit or as_of), ``status`` (see
        :func:`stage_intervals_data`; never ``progressed``), ``segment``,
        ``plan``, ``signup_at``.
    """
    iv = stage_intervals_data(
        store, definition=definition, as_of=as_of, segment=segment, plan=plan,
        signup_from=signup_from, signup_to=signup_to, sample_n=sample_n,
    )
    cur = iv.sort_values(["customer_id", "stage_order"]).groupby("customer_id", as_index=False).tail(1)
    return cur.drop(columns=["exited_at"]).reset_index(drop=True)


def wilson_interval(successes: Any, trials: Any, *, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for binomial proportions (vectorised).

    Parameters
    ----------
    successes, trials : array-like of int
        Counts; where ``trials`` is 0 the interval is NaN.
    alpha : float, default 0.05
        1 - confidence level.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        Lower and upper bounds.
    """
    s = np.asarray(successes, dtype=float)
    n = np.asarray(trials, dtype=float)
    lo = np.full(s.shape, np.nan)
    hi = np.full(s.shape, np.nan)
    ok = n > 0
    if ok.any():
        lo_ok, hi_ok = proportion_confint(s[ok], n[ok], alpha=alpha, method="wilson")
        lo[ok], hi[ok] = lo_ok, hi_ok
    return lo, hi


def _with_cohort(frame: pd.DataFrame, cohort_freq: str) -> pd.DataFrame:
    out = frame.copy()
    out["cohort"] = out["signup_at"].dt.tz_convert("UTC").dt.tz_localize(None).dt.to_period(cohort_freq).astype(str)
    return out


def funnel_data(
    store: Store,
    *,
    definition: JourneyDefinition,
    as_of: Any = None,
    segment: str | None = None,
    plan: str | None = None,
    signup_from: Any = None,
    signup_to: Any = None,
    sample_n: int = 0,
    by: str | None = None,
    cohort_freq: str = "Q",
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Return stage-to-stage conversion with Wilson intervals, censoring kept apart.

    Parameters
    ----------
    store, definition, as_of, segment, plan, signup_from, signup_to, sample_n
        As in :func:`milestones_data`.
    by : {"segment", "plan", "cohort"}, optional
        Break the funnel down by this customer attribute (cohort = signup
        period of ``cohort_freq``).
    cohort_freq : str, default "Q"
        Pandas period alias for signup cohorts (``"M"``, ``"Q"``).
    alpha : float, default 0.05
        1 - confidence level of the intervals.

    Returns
    -------
    pandas.DataFrame
        One row per (group ×) stage: ``group`` (the ``by`` value, or
        ``"all"``); ``stage``; ``stage_order``; ``reached`` (customers who
        entered the stage); ``eligible`` (customers who entered the previous
        stage — the denominator; for the first stage, all customers in scope);
        ``converted`` (= reached); ``dropped`` (eligible, did not reach it and
        churned or passed drop_after_days); ``censored`` (eligible, not
        reached, still in progress at as_of — not a drop-off); ``conversion_rate``
        = converted / (converted + dropped), the rate among customers whose
        outcome is known; ``ci_low``, ``ci_high`` (Wilson interval of
        conversion_rate); ``reached_share`` = converted / eligible (a lower
        bound while customers are censored); ``share_of_start`` = reached / customers in
        the first stage.

    Raises
    ------
    ValueError
        If ``by`` is not one of segment, plan, cohort.
    """
    if by is not None and by not in GROUPABLE:
        msg = f"by must be one of {', '.join(GROUPABLE)} or None; got {by!r}"
        raise ValueError(msg)
    scope = _scope(store, as_of, segment, plan, signup_from, signup_to, sample_n)
    ms = compute_stages(store, definition, scope)
    iv = add_stage_exits(ms, definition, scope.as_of)
    ms = _with_cohort(ms, cohort_freq)
    group_of = ms.drop_duplicates("customer_id").set_index("customer_id")[by] if by else None
    rows = []
    stage_names = definition.stage_names
    last_status = iv.sort_values("stage_order").groupby("customer_id")[["stage_order", "status"]].last()
    groups = sorted(group_of.dropna().unique()) if group_of is not None else ["all"]
    for g in groups:
        cust = group_of.index[group_of == g] if group_of is not None else ms["customer_id"].unique()
        ls = last_status.reindex(cust)
        total = len(cust)
        start = int((ls["stage_order"] >= 0).sum())
        for k, name in enumerate(stage_names):
            reached = int((ls["stage_order"] >= k).sum())
            eligible = total if k == 0 else int((ls["stage_order"] >= k - 1).sum())
            at_prev = ls[ls["stage_order"] == k - 1] if k > 0 else ls.iloc[0:0]
            dropped = int(at_prev["status"].isin(["churned", "dropped"]).sum()) if k > 0 else total - reached
            censored = eligible - reached - dropped
            rows.append(
                {"group": str(g), "stage": name, "stage_order": k, "reached": reached, "eligible": eligible,
                 "converted": reached, "dropped": dropped, "censored": censored, "start": start}
            )
    out = pd.DataFrame(rows)
    known = out["converted"] + out["dropped"]
    out["conversion_rate"] = np.where(known > 0, out["converted"] / known.where(known > 0, 1), np.nan)
    out["ci_low"], out["ci_high"] = wilson_interval(out["converted"], known, alpha=alpha)
    out["reached_share"] = np.where(out["eligible"] > 0, out["converted"] / out["eligible"].where(out["eligible"] > 0, 1), np.nan)
    out["share_of_start"] = np.where(out["start"] > 0, out["reached"] / out["start"].where(out["start"] > 0, 1), np.nan)
    out["stage"] = pd.Categorical(out["stage"], categories=stage_names, ordered=True)
    return out.drop(columns=["start"])


def time_to_convert_data(
    store: Store,
    *,
    definition: JourneyDefinition,
    as_of: Any = None,
    segment: str | None = None,
    plan: str | None = None,
    signup_from: Any = None,
    signup_to: Any = None,
    sample_n: int = 0,
    by: str | None = None,
    cohort_freq: str = "Q",
) -> pd.DataFrame:
    """Return the distribution of days from entering one stage to entering the next.

    Only customers who made the transition contribute (a distribution among
    converters; the funnel's ``censored`` column says how many are still on
    the way).

    Returns
    -------
    pandas.DataFrame
        One row per (group ×) transition: ``group``; ``from_stage``;
        ``to_stage``; ``stage_order`` (of ``to_stage``); ``n`` (customers who
        made it); ``p25``, ``median``, ``p75``, ``p90``, ``mean`` (days).
    """
    if by is not None and by not in GROUPABLE:
        msg = f"by must be one of {', '.join(GROUPABLE)} or None; got {by!r}"
        raise ValueError(msg)
    scope = _scope(store, as_of, segment, plan, signup_from, signup_to, sample_n)
    ms = _with_cohort(compute_stages(store, definition, scope), cohort_freq)
    ms = ms.sort_values(["customer_id", "stage_order"])
    ms["prev_entered"] = ms.groupby("customer_id")["entered_at"].shift(1)
    ms["days"] = (ms["entered_at"] - ms["prev_entered"]).dt.total_seconds() / 86400.0
    made = ms[ms["stage_order"].gt(0) & ms["days"].notna()]
    names = definition.stage_names
    keys = ["group", "stage_order"]
    made = made.assign(group=made[by].astype(str) if by else "all")
    agg = made.groupby(keys)["days"].agg(
        n="count",
        p25=lambda x: x.quantile(0.25),
        median="median",
        p75=lambda x: x.quantile(0.75),
        p90=lambda x: x.quantile(0.90),
        mean="mean",
    ).reset_index()
    agg["from_stage"] = [names[k - 1] for k in agg["stage_order"]]
    agg["to_stage"] = [names[k] for k in agg["stage_order"]]
    return agg[["group", "from_stage", "to_stage", "stage_order", "n", "p25", "median", "p75", "p90", "mean"]]


def progress_data(
    store: Store,
    *,
    definition: JourneyDefinition,
    as_of: Any = None,
    segment: str | None = None,
    plan: str | None = None,
    signup_from: Any = None,
    signup_to: Any = None,
    sample_n: int = 0,
    min_peers: int = 20,
) -> pd.DataFrame:
    """Return whether each customer still in a stage is on track, behind or stuck.

    Peers are customers of the same segment who progressed out of the same
    stage; their days-in-stage give the 50th, 75th and 90th percentiles.
    ``on_track`` means days so far ≤ p75, ``behind`` ≤ p90, ``stuck`` > p90.
    With fewer than ``min_peers`` peers in the segment, all segments are used
    (``peer_group`` says which).

    Returns
    -------
    pandas.DataFrame
        One row per customer in progress at as_of: ``customer_id``,
        ``segment``, ``stage``, ``stage_order``, ``entered_at``,
        ``days_in_stage`` (so far), ``peer_group`` (segment name or ``"all"``),
        ``peers`` (customers in the peer group who progressed), ``peer_p50``,
        ``peer_p75``, ``peer_p90`` (days), ``percentile`` (share of peers who
        left the stage faster than this customer has been in it),
        ``progress`` (``on_track``, ``behind``, ``stuck``, or ``no_peers``).
    """
    iv = stage_intervals_data(
        store, definition=definition, as_of=as_of, segment=None, plan=plan,
        signup_from=signup_from, signup_to=signup_to, sample_n=0,
    )
    done = iv[iv["status"] == "progressed"]
    cur = iv[iv["status"] == "in_progress"].copy()
    seg = None if segment in (None, "", "all") else segment
    if seg is not None:
        cur = cur[cur["segment"] == seg]
    if sample_n:
        cur = cur.sample(n=min(sample_n, len(cur)), random_state=0) if len(cur) else cur
    rows = []
    for (stage_order, segment_value), grp in cur.groupby(["stage_order", "segment"], observed=True, dropna=False):
        peers = done[(done["stage_order"] == stage_order) & (done["segment"] == segment_value)]["days_in_stage"]
        group_name = str(segment_value)
        if len(peers) < min_peers:
            peers = done[done["stage_order"] == stage_order]["days_in_stage"]
            group_name = "all"
        vals = np.sort(peers.to_numpy())
        p50, p75, p90 = (np.quantile(vals, q) if len(vals) else np.nan for q in (0.5, 0.75, 0.9))
        pct = np.searchsorted(vals, grp["days_in_stage"].to_numpy(), side="right") / len(vals) if len(vals) else np.full(len(grp), np.nan)
        g = grp.assign(peer_group=group_name, peers=len(vals), peer_p50=p50, peer_p75=p75, peer_p90=p90, percentile=pct)
        rows.append(g)
    if not rows:
        msg = "no customer is in progress in any stage at as_of; nothing to track."
        raise EmptyResultError(msg)
    out = pd.concat(rows, ignore_index=True)
    d = out["days_in_stage"]
    out["progress"] = np.select(
        [out["peers"] < 1, d <= out["peer_p75"], d <= out["peer_p90"]],
        ["no_peers", "on_track", "behind"],
        default="stuck",
    )
    cols = ["customer_id", "segment", "stage", "stage_order", "entered_at", "days_in_stage", "peer_group", "peers",
            "peer_p50", "peer_p75", "peer_p90", "percentile", "progress"]
    return out[cols].sort_values(["stage_order", "customer_id"]).reset_index(drop=True)
