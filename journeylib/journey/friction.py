"""Friction points: where in the journey friction accumulates, for whom, with the evidence.

A **unit** is a stage *k* of the journey definition together with its exit
(the transition to stage *k + 1*), for one **group**: a segment, or ``all``
customers. The last stage has no exit and is not a unit. For every unit the
evidence below is measured; each item with a p-value is a test, one-sided in
the direction of "more friction".

========================  ====================================================================
evidence                  measure and test
========================  ====================================================================
``time``                  days in stage *k* of customers who progressed, group vs peers (the
                          customers of the other segments): ratio of medians, bootstrap CI,
                          one-sided Mann–Whitney p-value; beside it, the Kaplan–Meier
                          median of every customer who entered *k* (see below)
``step``                  for an exit rule made of several conditions (``all``/``any``): days
                          from entering *k* to each condition; the condition with the smallest
                          p-value is reported (every condition is tested and counted)
``dropoff``               share of the customers whose outcome in *k* is known (progressed,
                          churned, dropped) who churned or dropped, group vs peers
``dropoff_stages``        the same share in *k* vs the group's other stages (pooled)
``tickets``               support tickets (canonical ``tickets`` table, by ``created_at``) per
                          customer-week in *k*, group vs peers
``tickets_baseline``      the same rate in *k* vs the group's own rate in its other stages
``loops``                 loop events (repeated attempts and returns after a gap, see
                          :func:`journeylib.journey.loops.loop_events_data`) per customer-week, vs peers
``negative``              share of the tickets raised in *k* that are negative (needs
                          ``ticket_sentiment``), group vs peers
========================  ====================================================================

Ratios of rates and shares are estimated as ratios of pooled rates, with
95% confidence intervals and p-values from a log-linear (modified Poisson)
model with cluster-robust standard errors, customers being the clusters: a
customer who raises many tickets does not count as many independent
customers. When one side has no events the p-value comes from the exact
conditional binomial test. Medians of days are floored at one hour before
dividing, so instant transitions do not give infinite ratios.

Time in stage: from entering *k* to entering *k + 1*, or to churn; a customer
still in *k* at ``as_of`` is in it until ``as_of``, and one who ``dropped``
(no progress within ``conventions.drop_after_days``) is counted as in it
only for those ``drop_after_days`` (exposure for tickets and loops).

The completers' median (``median_days``, ``time_value``) leaves out every
customer who has not progressed, so a stage that most customers never leave
can show a short median. Beside it, the **Kaplan–Meier median** time to
progress (``median_days_km``, ``time_km_value`` with its confidence
interval, lifelines) counts every customer who entered the stage: one still
in it (or ``dropped``) is censored at ``as_of``, one who churned in it at the
churn; it is infinite when fewer than half are estimated to progress. It is
descriptive and is not one of the tests.

**Multiple testing**: the Benjamini–Hochberg procedure is applied across all
the tests of one call (every unit, group and evidence item); ``*_q`` columns
hold the adjusted p-values.

**Score** (the ranking rule): the sum, over the evidence items whose q-value
is at most ``alpha`` and whose ratio is above 1, of ``min(log2(ratio), 3)``.
A ratio of 2 adds 1, a ratio of 4 adds 2, 8 or more adds 3. Units with a
score of 0 are not friction points. Ties are broken by the smallest q-value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

import numpy as np
import pandas as pd
from lifelines import KaplanMeierFitter
from lifelines.utils import median_survival_times

from journeylib.cache import ResultCache
from journeylib.config.journey import AllOf, AnyOf, Condition, JourneyDefinition, Stage
from journeylib.exceptions import EmptyResultError
from journeylib.journey.loops import loops_by_stage
from journeylib.journey.stages import stage_frames, stage_milestones, statement_memory_bound
from journeylib.scope import Scope
from journeylib.stats import RatioEstimate, bh_qvalues, clustered_rate_ratio, median_ratio_bootstrap
from journeylib.store import Store
from journeylib.store.dialect import sql_filtered, sql_semi_join, sql_timestamp
from journeylib.store.memory import give_back_engine_memory, give_back_freed_memory, run_bounded
from journeylib.words import event_label, percent

__all__ = ["EVIDENCE", "friction_data", "friction_tests_data"]

#: Evidence items, in the order of the columns and of the statement.
EVIDENCE: tuple[str, ...] = ("tickets", "step", "time", "dropoff", "negative", "loops", "tickets_baseline", "dropoff_stages")
#: Contribution of one evidence item to the score is capped here (log2 units).
MAX_CONTRIBUTION = 3.0
#: Medians below this many days count as this (one day), so instant transitions do not give huge ratios.
MEDIAN_FLOOR_DAYS = 1.0
#: Sentiment labels counted as negative (``label`` column); without a label, ``compound <= -0.05``.
NEGATIVE_LABELS = ("negative", "neg", "frustrated", "angry")

_CAUSAL_WORDS = ("because", "cause", "due to", "leads to", "drives", "results in")


# -- the exit rule's conditions -------------------------------------------------------------------
def _leaves(rule: Any) -> list[Condition]:
    if isinstance(rule, Condition):
        return [rule]
    if isinstance(rule, (AllOf, AnyOf)):
        members = rule.all if isinstance(rule, AllOf) else rule.any
        return [leaf for m in members for leaf in _leaves(m)]
    return []


def _leaf_label(cond: Condition) -> str:
    label = " or ".join(event_label(n) for n in cond.names)
    if cond.min_count > 1:
        label += f" ×{cond.min_count}"
    if cond.where:
        label += " (" + ", ".join(f"{k}={v}" for k, v in cond.where.items()) + ")"
    return label


def _condition_definition(definition: JourneyDefinition, stages: list[Stage]) -> JourneyDefinition:
    """*definition* with *stages* only: the frame in which friction times an exit rule's conditions.

    Only the stages' ``met_at`` and ``entered_at`` are read from it, which
    outcomes do not change, so the outcomes of ``kind: drop`` are left out
    (an ``unless_stage`` may name a stage the frame does not have), and so
    are the happy path and the value stage, which name the definition's
    stages.
    """
    outcomes = {name: o for name, o in definition.outcomes.items() if name not in definition.drop_outcomes}
    return definition.model_copy(update={"stages": stages, "happy_path": None, "value_stage": None, "outcomes": outcomes})


def _met_at(
    store: Store, definition: JourneyDefinition, scope: Any, orders: Sequence[int], cache: ResultCache | None
) -> list[pd.Series]:
    """Return ``met_at`` by ``customer_id`` of the stages *orders* of a condition frame, as its milestone frame has them.

    Only friction reads these frames, and only these columns: the cache keeps
    the columns (a few per call) rather than each frame (every stage and
    customer attribute), which would stay in memory for the whole context.
    """

    def compute() -> list[pd.Series]:
        ms = stage_milestones(store, definition, scope)
        return [ms[ms["stage_order"] == k].set_index("customer_id")["met_at"] for k in orders]

    if cache is None:
        return compute()
    return cache.get("condition_times", (id(store), definition.model_dump_json(), scope, tuple(orders)), compute)


def _signup_step_times(store: Store, definition: JourneyDefinition, scope: Any, cache: ResultCache | None) -> dict[str, pd.Series]:
    """When each condition measured from signup of every exit rule with several conditions first held (by JSON).

    Such a condition holds at the same time whatever the stages around it
    (its window starts at signup; ``met_at`` is the rule alone), so all of
    them are the stages of one milestone frame, one stage each, instead of
    a frame per condition that repeats the stages before it.
    """
    conds: dict[str, Condition] = {}
    for k in range(len(definition.stages) - 1):
        leaves = _leaves(definition.stages[k + 1].rule)
        if len(leaves) >= 2:
            conds.update((c.model_dump_json(), c) for c in leaves if c.of == "signup")
    if not conds:
        return {}
    stages = [Stage(name=f"__step_{i}__", rule=c) for i, c in enumerate(conds.values())]
    met = _met_at(store, _condition_definition(definition, stages), scope, range(len(conds)), cache)
    return dict(zip(conds, met, strict=True))


def _condition_met(
    store: Store, definition: JourneyDefinition, scope: Any, k: int, signup_steps: Mapping[str, pd.Series], cache: ResultCache | None
) -> list[tuple[Condition, pd.Series]]:
    """When each condition of stage k+1's rule first held (``met_at`` by ``customer_id``); empty for a rule of one condition.

    *signup_steps* is :func:`_signup_step_times`. A condition measured from
    the previous stage needs stage k before it: its frame is stages 0..k and
    the condition.
    """
    leaves = _leaves(definition.stages[k + 1].rule)
    if len(leaves) < 2:
        return []
    met: list[tuple[Condition, pd.Series]] = []
    for cond in leaves:  # a handful of conditions
        if cond.of == "signup":
            step = signup_steps[cond.model_dump_json()]
        else:
            sub = _condition_definition(definition, [*definition.stages[: k + 1], Stage(name="__step__", rule=cond)])
            step = _met_at(store, sub, scope, [k + 1], cache)[0]
        met.append((cond, step))
    return met


def _days_to_conditions(definition: JourneyDefinition, k: int, ms: pd.DataFrame, met: Sequence[tuple[Condition, pd.Series]]) -> dict[str, pd.Series]:
    """Days from entering stage k to each condition of stage k+1's rule (customers who met it), by label.

    *ms* is the definition's milestone frame (stage k's entry and the
    signups), *met* :func:`_condition_met` for stage k.
    """
    if not met:
        return {}
    # a free-order stage (order: any) waits for signup only, not for stage k
    since = "signup_at" if definition.stages[k + 1].free_order else "entered_at"
    prev = ms[ms["stage_order"] == k].set_index("customer_id")[since]
    out: dict[str, pd.Series] = {}
    for cond, step in met:
        days = ((step - prev.reindex(step.index)).dt.total_seconds() / 86400.0).clip(lower=0.0).dropna()
        label = _leaf_label(cond)
        out[label if label not in out else f"{label} ({len(out)})"] = days
    return out


def _step_times(
    store: Store, definition: JourneyDefinition, scope: Any, k: int, ms: pd.DataFrame, signup_steps: Mapping[str, pd.Series],
    cache: ResultCache | None,
) -> dict[str, pd.Series]:
    """Days from entering stage k to each condition of stage k+1's rule (customers who met it).

    *ms* is the definition's milestone frame (stage k's entry and the
    signups), *signup_steps* :func:`_signup_step_times`
    (:func:`_condition_met`, then :func:`_days_to_conditions`).
    """
    return _days_to_conditions(definition, k, ms, _condition_met(store, definition, scope, k, signup_steps, cache))


# -- the evidence table ---------------------------------------------------------------------------
def _exposure(iv: pd.DataFrame, definition: JourneyDefinition, as_of: pd.Timestamp) -> pd.DataFrame:
    iv = iv.copy()
    end = iv["exited_at"].fillna(as_of)
    drop_days = definition.conventions.drop_after_days
    if drop_days is not None:
        capped = iv["entered_at"] + pd.Timedelta(days=drop_days)
        end = end.where(iv["status"] != "dropped", np.minimum(end, capped))
    iv["exposure_end"] = end
    iv["weeks"] = ((end - iv["entered_at"]).dt.total_seconds() / (7 * 86400.0)).clip(lower=0.0)
    return iv


def _tickets_in_stage(store: Store, scope: Any, iv: pd.DataFrame, sentiment: pd.DataFrame | None) -> pd.DataFrame:
    """Tickets per customer × stage interval (and negative ones, if sentiment is given)."""
    intervals = iv[["customer_id", "stage_order", "entered_at", "exposure_end"]]
    neg = "0"
    join = ""
    if sentiment is not None:
        join = "LEFT JOIN _jl_sentiment s ON s.ticket_id = t.ticket_id"
        neg = "CASE WHEN s.negative THEN 1 ELSE 0 END"
    sql = f"""
        SELECT i.customer_id, i.stage_order, count(*) AS tickets, sum({neg}) AS negative,
               {sql_filtered("count", "*", "s.ticket_id IS NOT NULL" if sentiment is not None else "false")} AS scored
        FROM (SELECT t.* FROM {sql_semi_join("tickets t", f"({scope.customers_sql()}) c", "t.customer_id = c.customer_id")}
              WHERE t.created_at <= {sql_timestamp(scope.as_of)}) t
        {join}
        JOIN _jl_intervals i ON i.customer_id = t.customer_id AND t.created_at >= i.entered_at AND t.created_at < i.exposure_end
        GROUP BY i.customer_id, i.stage_order"""
    if sentiment is not None:
        return store.query(sql, _jl_intervals=intervals, _jl_sentiment=sentiment)
    return store.query(sql, _jl_intervals=intervals)


def _negative_flags(ticket_sentiment: pd.DataFrame) -> pd.DataFrame:
    """Return one row per scored ticket: ``ticket_id`` and ``negative`` (bool)."""
    label_col = "label" if "label" in ticket_sentiment.columns else "polarity" if "polarity" in ticket_sentiment.columns else None
    if "ticket_id" not in ticket_sentiment.columns or (label_col is None and "compound" not in ticket_sentiment.columns):
        msg = (
            "friction: ticket_sentiment must have a ticket_id column and a label (or polarity) or compound column "
            f"(as journeylib.voice.sentiment returns); got columns {list(ticket_sentiment.columns)}"
        )
        raise ValueError(msg)
    # the columns read, not the scored tickets' texts (a copy of every column at 10M events: about 30 MB)
    read = [c for c in ("ticket_id", label_col, "compound", "scored") if c is not None and c in ticket_sentiment.columns]
    frame = ticket_sentiment[read].drop_duplicates("ticket_id")
    if "scored" in frame.columns:  # tickets the scorer could not read are not in the denominator
        frame = frame[frame["scored"].fillna(False).astype(bool)]
    neg = pd.Series(False, index=frame.index)
    if label_col is not None:
        neg = frame[label_col].astype(str).str.lower().isin(NEGATIVE_LABELS)
    if "compound" in frame.columns:
        comp = pd.to_numeric(frame["compound"], errors="coerce")
        no_label = frame[label_col].isna() if label_col is not None else pd.Series(True, index=frame.index)
        neg = neg | (no_label & (comp <= -0.05))
    return pd.DataFrame({"ticket_id": frame["ticket_id"].astype(str).to_numpy(), "negative": neg.to_numpy(dtype=bool)})


def _km_median(days: np.ndarray, progressed: np.ndarray, alpha: float) -> tuple[float, float, float]:
    """Return the Kaplan–Meier median of *days* (events where *progressed*, else censored) and its CI; NaN without data."""
    if len(days) == 0:
        return np.nan, np.nan, np.nan
    kmf = KaplanMeierFitter(alpha=alpha).fit(np.clip(days, 0.0, None), progressed.astype(bool))
    ci = median_survival_times(kmf.confidence_interval_)
    return float(kmf.median_survival_time_), float(ci.iloc[0, 0]), float(ci.iloc[0, 1])


def _put(row: dict[str, Any], name: str, r: RatioEstimate) -> None:
    row[f"{name}_value"] = r.value
    row[f"{name}_reference"] = r.reference
    row[f"{name}_ratio"] = r.ratio
    row[f"{name}_ci_low"] = r.ci_low
    row[f"{name}_ci_high"] = r.ci_high
    row[f"{name}_p"] = r.p


def _evidence(
    store: Store,
    definition: JourneyDefinition,
    *,
    as_of: Any,
    segment: str | None,
    plan: str | None,
    signup_from: Any,
    signup_to: Any,
    sample_n: int,
    alpha: float,
    ticket_sentiment: pd.DataFrame | None,
    n_boot: int,
    random_state: int,
    min_customers: int,
    attempt_events: Sequence[str] | None,
    gap_days: float,
    identity_keys: Sequence[str] | Mapping[str, Sequence[str]] | None,
    scope: Scope | None,
    cache: ResultCache | None,
    function: str,
) -> pd.DataFrame:
    chosen_scope = Scope.resolve(store, scope, function=function, as_of=as_of, segment=segment, plan=plan,
                                 signup_from=signup_from, signup_to=signup_to, sample_n=sample_n)
    # Peers are the other segments, so the computation covers every segment; `segment` picks the groups reported.
    chosen = chosen_scope.segment
    scope = chosen_scope.replace(segment=None)
    # The engine's statements over every event first (the exit rules' condition frames, the milestones when no
    # cache has them), then DuckDB lets go of what they used, before the frames of the evidence are built.
    def condition_times() -> dict[int, list[tuple[Condition, pd.Series]]]:
        signup_steps = _signup_step_times(store, definition, scope, cache)
        return {k: _condition_met(store, definition, scope, k, signup_steps, cache) for k in range(len(definition.stages) - 1)}

    # the definition's milestones first: their checks (an empty scope, names absent from the store) come before
    # the condition frames'. A cache keeps the frame (its copy is taken again below); without one it is held here
    read = stage_milestones(store, definition, scope, cache=cache)
    held = read if cache is None else None
    del read
    give_back_freed_memory()
    condition_met = run_bounded(store, condition_times, bound=statement_memory_bound(store))
    ms, iv = stage_frames(store, definition, scope, cache=cache, milestones=held)
    del held
    steps_of = {k: _days_to_conditions(definition, k, ms, met) for k, met in condition_met.items()}
    del ms, condition_met  # the milestones' copy is not read after the days to the conditions
    give_back_engine_memory(store)
    iv = _exposure(iv, definition, scope.as_of)
    iv["segment"] = iv["segment"].astype(object).where(iv["segment"].notna(), "(none)").astype(str)
    sentiment = _negative_flags(ticket_sentiment) if ticket_sentiment is not None else None
    tk = _tickets_in_stage(store, scope, iv, sentiment)
    loop_rows = loops_by_stage(store, scope, iv.assign(exited_at=iv["exposure_end"]), attempt_events, gap_days, 0.8,
                               identity_keys=identity_keys, cache=cache)
    lp = (
        loop_rows.groupby(["customer_id", "stage_order"], as_index=False)["loops"].sum()
        if len(loop_rows)
        else pd.DataFrame(columns=["customer_id", "stage_order", "loops"])
    )
    # the columns the tests read: the intervals' times and the other customer attributes are not read from here on
    iv = iv[["customer_id", "stage_order", "segment", "status", "days_in_stage", "weeks"]]
    iv = iv.merge(tk, on=["customer_id", "stage_order"], how="left").merge(lp, on=["customer_id", "stage_order"], how="left")
    for col in ("tickets", "negative", "scored", "loops"):
        iv[col] = pd.to_numeric(iv[col], errors="coerce").fillna(0.0).astype(float)
    iv["known"] = iv["status"].isin(["progressed", "churned", "dropped"])
    # the clusters of the rate ratios: customers as integers in the order of their ids (the same groups, in the
    # same order, as the ids, which would be hashed again at each of the few hundred tests)
    iv["cluster"] = pd.factorize(iv["customer_id"], sort=True)[0]
    iv["lost"] = iv["status"].isin(["churned", "dropped"]).astype(float)
    rng = np.random.default_rng(random_state)
    names = definition.stage_names
    segments = sorted(iv["segment"].unique())
    groups = [chosen] if chosen is not None else ["all", *segments]
    rows: list[dict[str, Any]] = []
    for k in range(len(names) - 1):  # stages, not events
        here = iv[iv["stage_order"] == k]
        steps = steps_of[k]
        for group in groups:
            is_g = np.ones(len(here), dtype=bool) if group == "all" else (here["segment"] == group).to_numpy()
            row: dict[str, Any] = {
                "group": group, "stage": names[k], "next_stage": names[k + 1], "stage_order": k,
                "customers": int(is_g.sum()), "peers": int((~is_g).sum()) if group != "all" else 0,
            }
            cust_g = here[is_g]
            progressed = here["status"] == "progressed"
            row["median_days"] = float(cust_g.loc[cust_g["status"] == "progressed", "days_in_stage"].median())
            done_g = (cust_g["status"] == "progressed").to_numpy()
            km = _km_median(cust_g["days_in_stage"].to_numpy(dtype=float), done_g, alpha)
            row["median_days_km"] = km[0]
            row["time_km_value"], row["time_km_ci_low"], row["time_km_ci_high"] = km
            row["time_completers"], row["time_censored"] = int(done_g.sum()), int((~done_g).sum())
            others = iv[(iv["stage_order"] != k) & (iv["stage_order"] < len(names) - 1) & (iv["status"] == "progressed")]
            others = others if group == "all" else others[others["segment"] == group]
            row["other_stages_median_days"] = float(others["days_in_stage"].median()) if len(others) else np.nan
            row["time_vs_stages_ratio"] = (
                max(row["median_days"], MEDIAN_FLOOR_DAYS) / max(row["other_stages_median_days"], MEDIAN_FLOOR_DAYS)
                if np.isfinite(row["median_days"]) and np.isfinite(row["other_stages_median_days"]) else np.nan
            )
            enough = row["customers"] >= min_customers and (group == "all" or row["peers"] >= min_customers)
            with_peers = group != "all" and enough
            # time in stage vs peers
            a = here.loc[is_g & progressed, "days_in_stage"].to_numpy(dtype=float)
            b = here.loc[~is_g & progressed, "days_in_stage"].to_numpy(dtype=float)
            _put(row, "time", median_ratio_bootstrap(a, b, rng=rng, n_boot=n_boot, alpha=alpha, floor=MEDIAN_FLOOR_DAYS) if with_peers and min(len(a), len(b)) >= 5 else RatioEstimate())
            if with_peers:
                peers_iv = here[~is_g]
                km_ref = _km_median(peers_iv["days_in_stage"].to_numpy(dtype=float), (peers_iv["status"] == "progressed").to_numpy(), alpha)[0]
            else:
                km_ref = np.nan
            row["time_km_reference"] = km_ref
            row["time_km_ratio"] = (
                max(row["time_km_value"], MEDIAN_FLOOR_DAYS) / max(km_ref, MEDIAN_FLOOR_DAYS)
                if np.isfinite(km_ref) and not np.isnan(row["time_km_value"]) else np.nan
            )
            # the exit rule's conditions vs peers: test each, report the most extreme
            best = ("", RatioEstimate())
            step_ps: list[float] = []
            best_i = -1
            if with_peers:
                seg_of = here.set_index("customer_id")["segment"]
                for label, days in steps.items():
                    seg = seg_of.reindex(days.index)
                    da = days[seg == group].to_numpy(dtype=float)
                    db = days[(seg != group) & seg.notna()].to_numpy(dtype=float)
                    if min(len(da), len(db)) < 5:
                        continue
                    r = median_ratio_bootstrap(da, db, rng=rng, n_boot=n_boot, alpha=alpha, floor=MEDIAN_FLOOR_DAYS)
                    if not np.isfinite(best[1].p) or r.p < best[1].p:
                        best, best_i = (label, r), len(step_ps)
                    step_ps.append(r.p)
            row["step"] = best[0]
            _put(row, "step", best[1])
            row["_step_other_p"] = [p for i, p in enumerate(step_ps) if i != best_i]
            known = here["known"].to_numpy()
            cl = here["cluster"].to_numpy()
            ones = np.ones(len(here))
            # drop-off vs peers
            if with_peers:
                _put(row, "dropoff", clustered_rate_ratio(here["lost"].to_numpy()[known], ones[known], is_g[known], cl[known], alpha=alpha))
                _put(row, "tickets", clustered_rate_ratio(here["tickets"].to_numpy(), here["weeks"].to_numpy(), is_g, cl, alpha=alpha))
                _put(row, "loops", clustered_rate_ratio(here["loops"].to_numpy(), here["weeks"].to_numpy(), is_g, cl, alpha=alpha))
                if sentiment is not None:
                    _put(row, "negative", clustered_rate_ratio(here["negative"].to_numpy(), here["scored"].to_numpy(), is_g, cl, alpha=alpha))
                else:
                    _put(row, "negative", RatioEstimate())
            else:
                for name in ("dropoff", "tickets", "loops", "negative"):
                    _put(row, name, RatioEstimate())
            # vs the group's other stages (exits only: the last stage has none)
            mine = iv[iv["stage_order"] < len(names) - 1]
            mine = mine if group == "all" else mine[mine["segment"] == group]
            in_k = (mine["stage_order"] == k).to_numpy()
            if enough and in_k.any() and (~in_k).any():
                kn = mine["known"].to_numpy()
                _put(row, "dropoff_stages", clustered_rate_ratio(mine["lost"].to_numpy()[kn], np.ones(int(kn.sum())), in_k[kn], mine["cluster"].to_numpy()[kn], alpha=alpha))
                allst = iv if group == "all" else iv[iv["segment"] == group]
                in_k2 = (allst["stage_order"] == k).to_numpy()
                _put(row, "tickets_baseline", clustered_rate_ratio(allst["tickets"].to_numpy(), allst["weeks"].to_numpy(), in_k2, allst["cluster"].to_numpy(), alpha=alpha))
            else:
                _put(row, "dropoff_stages", RatioEstimate())
                _put(row, "tickets_baseline", RatioEstimate())
            row["tickets_total"] = float(cust_g["tickets"].sum())
            row["customer_weeks"] = float(cust_g["weeks"].sum())
            row["loops_total"] = float(cust_g["loops"].sum())
            row["negative_tickets"] = float(cust_g["negative"].sum()) if sentiment is not None else np.nan
            rows.append(row)
    if not rows:
        msg = "friction: the definition has a single stage; friction needs at least one transition between stages."
        raise EmptyResultError(msg)
    out = pd.DataFrame(rows)
    return _score(out, alpha)


def _score(out: pd.DataFrame, alpha: float) -> pd.DataFrame:
    """Benjamini–Hochberg across every test of the call, then the score and the rank."""
    cells: list[tuple[int, str]] = []
    ps: list[float] = []
    for i, row in out.iterrows():  # units (a few dozen), not events
        for name in EVIDENCE:
            p = row[f"{name}_p"]
            if np.isfinite(p):
                cells.append((int(i), name))  # type: ignore[call-overload]
                ps.append(float(p))
        ps.extend(float(p) for p in row["_step_other_p"] if np.isfinite(p))
        cells.extend((-1, "") for p in row["_step_other_p"] if np.isfinite(p))
    for name in EVIDENCE:
        out[f"{name}_q"] = np.nan
    if ps:
        q = bh_qvalues(ps)
        for (i, name), qv in zip(cells, q, strict=True):
            if i >= 0:
                out.loc[i, f"{name}_q"] = qv
    out["tests"] = len(ps)
    score = np.zeros(len(out))
    for name in EVIDENCE:
        ratio = out[f"{name}_ratio"].to_numpy(dtype=float)
        sig = (out[f"{name}_q"].to_numpy(dtype=float) <= alpha) & (ratio > 1)
        contrib = np.where(sig, np.minimum(np.log2(np.where(sig, ratio, 1.0)), MAX_CONTRIBUTION), 0.0)
        out[f"{name}_score"] = contrib
        score += contrib
    out["score"] = score
    qcols = [f"{n}_q" for n in EVIDENCE]
    out["min_q"] = out[qcols].min(axis=1)
    out["evidence_items"] = (out[[f"{n}_score" for n in EVIDENCE]] > 0).sum(axis=1)
    out = out.drop(columns=["_step_other_p"]).sort_values(["group", "score", "min_q"], ascending=[True, False, True], kind="mergesort")
    out["rank"] = out.groupby("group").cumcount() + 1
    out["statement"] = [_statement(cast(dict[str, Any], r)) for r in out.to_dict("records")]
    return out.reset_index(drop=True)


# -- plain English ---------------------------------------------------------------------------------
def _fmt(x: float, digits: int = 2) -> str:
    if not np.isfinite(x):
        return "n/a"
    return f"{x:.{digits}f}"


def _ci(r: dict[str, Any], name: str) -> str:
    lo, hi = r[f"{name}_ci_low"], r[f"{name}_ci_high"]
    if np.isfinite(lo) and np.isfinite(hi):
        return f"ratio {_fmt(r[f'{name}_ratio'], 1)}, 95% CI {_fmt(lo, 1)}–{_fmt(hi, 1)}, q={_q(r[f'{name}_q'])}"
    return f"ratio {_fmt(r[f'{name}_ratio'], 1)}, q={_q(r[f'{name}_q'])}"


def _q(q: float) -> str:
    return "<0.001" if q < 0.001 else f"{q:.3f}"


def _km_days(x: float) -> str:
    if np.isnan(x):
        return "n/a"
    return "not reached (fewer than half progress)" if np.isinf(x) else f"{x:.1f} days"


def _km_text(r: dict[str, Any]) -> str:
    """Say the Kaplan–Meier medians that count the customers who have not progressed."""
    n = int(r["time_censored"])
    if n == 0:
        basis = "every customer of the group progressed"
    else:
        basis = f"counting the {n} {'customer who has' if n == 1 else 'customers who have'} not progressed as censored"
    return f"Kaplan–Meier median, {basis}: {_km_days(r['time_km_value'])} vs {_km_days(r['time_km_reference'])}"


def _statement(r: dict[str, Any]) -> str:
    who = "All customers" if r["group"] == "all" else f"{r['group']} customers"
    peers = "customers of other segments"
    parts: list[tuple[float, str]] = []
    texts = {
        "tickets": lambda: f"raised {_fmt(r['tickets_value'])} support tickets per customer-week in {r['stage']} vs {_fmt(r['tickets_reference'])} for {peers} ({_ci(r, 'tickets')})",
        "step": lambda: f"took a median {_fmt(r['step_value'], 1)} days from entering {r['stage']} to {r['step']} vs {_fmt(r['step_reference'], 1)} days for {peers} ({_ci(r, 'step')})",
        "time": lambda: f"spent a median {_fmt(r['time_value'], 1)} days in {r['stage']} before {r['next_stage']} vs {_fmt(r['time_reference'], 1)} days for {peers} ({_ci(r, 'time')}; {_km_text(r)})",
        "dropoff": lambda: f"dropped out or churned in {r['stage']} {percent(r['dropoff_value'])} of the time vs {percent(r['dropoff_reference'])} for {peers} ({_ci(r, 'dropoff')})",
        "negative": lambda: f"had {percent(r['negative_value'])} of their tickets in {r['stage']} negative vs {percent(r['negative_reference'])} for {peers} ({_ci(r, 'negative')})",
        "loops": lambda: f"had {_fmt(r['loops_value'])} repeated attempts or returns per customer-week in {r['stage']} vs {_fmt(r['loops_reference'])} for {peers} ({_ci(r, 'loops')})",
        "tickets_baseline": lambda: f"raised {_fmt(r['tickets_baseline_value'])} tickets per customer-week in {r['stage']} vs {_fmt(r['tickets_baseline_reference'])} in their other stages ({_ci(r, 'tickets_baseline')})",
        "dropoff_stages": lambda: f"dropped out or churned in {r['stage']} {percent(r['dropoff_stages_value'])} of the time vs {percent(r['dropoff_stages_reference'])} in their other stages ({_ci(r, 'dropoff_stages')})",
    }
    for name in EVIDENCE:
        if r[f"{name}_score"] > 0:
            parts.append((r[f"{name}_score"], texts[name]()))
    if not parts:
        return f"{who}, {r['stage']} → {r['next_stage']}: no evidence passed the false-discovery threshold."
    parts.sort(key=lambda t: -t[0])
    body = "; ".join(p for _, p in parts)
    return f"{who}, {r['stage']} → {r['next_stage']} (score {r['score']:.1f}): {body}."


# -- public ---------------------------------------------------------------------------------------
_COMMON_DOC = """
    Parameters
    ----------
    store : Store
        The canonical store (``events``, ``customers``, ``tickets``).
    definition : JourneyDefinition
        Stages and conventions.
    as_of, plan, signup_from, signup_to, sample_n
        Scope, as in :func:`journeylib.journey.stages.milestones_data`; they apply
        to the group *and* its peers.
    scope : Scope, optional
        A ready scope instead of the filters (its segment is the one reported).
    cache : ResultCache, optional
        Share the milestone frames with the other analyses of the same scope.
    segment : str, optional
        Report this segment only (its peers are still the other segments).
        Default: ``all`` customers and every segment.
    alpha : float, default 0.05
        False-discovery rate (Benjamini–Hochberg) and 1 - confidence level.
    ticket_sentiment : pandas.DataFrame, optional
        One row per ticket: ``ticket_id`` and ``label`` or ``polarity``
        (``negative`` counts) and/or ``compound`` (≤ -0.05 counts when there
        is no label), e.g. what :func:`journeylib.voice.sentiment.score_tickets`
        returns; rows with ``scored`` False are left out. Adds the
        ``negative`` evidence: the share of the scored tickets in the stage
        that are negative.
    n_boot : int, default 500
        Bootstrap resamples of the CIs of median ratios.
    random_state : int, default 0
        Seed of the bootstrap.
    min_customers : int, default 20
        A unit is tested only with at least this many customers in the
        group (and in its peers).
    attempt_events : list of str, optional
        Events whose repetition is a repeated attempt (see
        :func:`journeylib.journey.loops.loop_events_data`).
    gap_days : float, default 14
        Inactivity after which activity counts as a return.
    identity_keys : list of str, or dict of event to list of str, optional
        Property keys that identify the object of a repeated attempt (see
        :func:`journeylib.journey.loops.loop_events_data`); default: every
        key except times, attempt ids and outcomes.
"""


def friction_tests_data(
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
    alpha: float = 0.05,
    ticket_sentiment: pd.DataFrame | None = None,
    n_boot: int = 500,
    random_state: int = 0,
    min_customers: int = 20,
    attempt_events: Sequence[str] | None = None,
    gap_days: float = 14.0,
    identity_keys: Sequence[str] | Mapping[str, Sequence[str]] | None = None,
) -> pd.DataFrame:
    """Return every tested unit (group × stage) with its evidence, q-values and score.

    See the module docstring for the evidence, the tests and the score rule.
    {common}

    Returns
    -------
    pandas.DataFrame
        One row per group × stage with an exit, ranked within the group by
        ``score`` (then ``min_q``). Identity: ``group`` (segment or ``all``),
        ``rank``, ``stage``, ``next_stage``, ``stage_order``,
        ``customers`` (customers who entered the stage, in the group),
        ``peers`` (those of other segments; 0 for ``all``). Description:
        ``median_days`` (in stage, progressed customers),
        ``median_days_km`` (Kaplan–Meier median of every customer who
        entered, the others censored; see the module docstring),
        ``other_stages_median_days`` and ``time_vs_stages_ratio`` (vs the
        group's other stages; descriptive, not tested), ``tickets_total``,
        ``customer_weeks`` (exposure), ``loops_total``, ``negative_tickets``.
        For each evidence item ``E`` in ``tickets``, ``step``, ``time``,
        ``dropoff``, ``negative``, ``loops``, ``tickets_baseline``,
        ``dropoff_stages``: ``E_value`` (the group's rate, share or median
        days), ``E_reference`` (the peers' or the other stages'),
        ``E_ratio`` = value / reference, ``E_ci_low``, ``E_ci_high``,
        ``E_p`` (one-sided), ``E_q`` (Benjamini–Hochberg), ``E_score``
        (contribution to the score); ``step`` also names the condition.
        ``tests`` (tests in the call), ``score``, ``min_q``,
        ``evidence_items`` (items contributing) and ``statement`` (plain
        English, citing the contributing numbers). Beside the ``time``
        evidence: ``time_km_value`` (= ``median_days_km``) with
        ``time_km_ci_low``/``time_km_ci_high``, ``time_km_reference`` (the
        peers' Kaplan–Meier median; NaN for ``all``), ``time_km_ratio``
        (floored at one day like the other median ratios; descriptive, not
        tested), ``time_completers`` and ``time_censored`` (the group's
        customers who progressed, and who did not and are censored).

    Raises
    ------
    ValueError
        If ``segment`` matches no customer, or ``ticket_sentiment`` lacks
        the columns.
    EmptyResultError
        If no customer is in scope or the definition has one stage.
    """
    return _evidence(
        store, definition, as_of=as_of, segment=segment, plan=plan, signup_from=signup_from, signup_to=signup_to,
        sample_n=sample_n, alpha=alpha, ticket_sentiment=ticket_sentiment, n_boot=n_boot, random_state=random_state,
        min_customers=min_customers, attempt_events=attempt_events, gap_days=gap_days, identity_keys=identity_keys,
        scope=scope, cache=cache, function="friction_tests_data",
    )


def friction_data(
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
    top_n: int = 5,
    alpha: float = 0.05,
    ticket_sentiment: pd.DataFrame | None = None,
    n_boot: int = 500,
    random_state: int = 0,
    min_customers: int = 20,
    attempt_events: Sequence[str] | None = None,
    gap_days: float = 14.0,
    identity_keys: Sequence[str] | Mapping[str, Sequence[str]] | None = None,
) -> pd.DataFrame:
    """Return the ranked friction points (up to ``top_n`` per group), each with its evidence.

    The rows of :func:`friction_tests_data` with a positive score, at most
    ``top_n`` per group, best first. Segment-specific: with ``segment`` set,
    only that segment's points are returned, each compared with the other
    segments.
    {common}
    top_n : int, default 5
        Friction points kept per group.

    Returns
    -------
    pandas.DataFrame
        The columns of :func:`friction_tests_data`, for the units with
        ``score`` > 0 and ``rank`` ≤ ``top_n`` (``rank`` is within the
        group); sorted by ``score``, highest first, so the strongest point of
        any group leads. Empty (with those columns) when nothing passes the
        false-discovery threshold.

    Raises
    ------
    ValueError
        If ``top_n`` < 1, ``segment`` matches no customer, or
        ``ticket_sentiment`` lacks the columns.
    EmptyResultError
        If no customer is in scope or the definition has one stage.

    Examples
    --------
    >>> points = friction_data(store, definition=definition, segment="Mid-market")  # doctest: +SKIP
    >>> points.loc[0, ["stage", "score", "statement"]]  # doctest: +SKIP
    """
    if top_n < 1:
        msg = f"friction_data: top_n must be at least 1; got {top_n}"
        raise ValueError(msg)
    tests = friction_tests_data(
        store, definition=definition, as_of=as_of, segment=segment, plan=plan, signup_from=signup_from,
        signup_to=signup_to, sample_n=sample_n, alpha=alpha, ticket_sentiment=ticket_sentiment, n_boot=n_boot,
        random_state=random_state, min_customers=min_customers, attempt_events=attempt_events, gap_days=gap_days,
        identity_keys=identity_keys, scope=scope, cache=cache,
    )
    out = tests[(tests["score"] > 0) & (tests["rank"] <= top_n)]
    return out.sort_values(["score", "min_q", "group"], ascending=[False, True, True], kind="mergesort").reset_index(drop=True)


friction_tests_data.__doc__ = (friction_tests_data.__doc__ or "").replace("{common}", _COMMON_DOC)
friction_data.__doc__ = (friction_data.__doc__ or "").replace("{common}", _COMMON_DOC)
