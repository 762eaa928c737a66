"""Suggested stage definitions ("AI-assisted"): milestones proposed from the data alone.

Candidates are windowed counts, "at least *k* of event *X* within *d* days of
signup", for a grid of *k* and *d*, counted in the engine. Each is scored by

* **support**: the share of the population that reaches it;
* **typical order**: the median day (since signup) it is reached;
* **separation** of customers with a good outcome from the others: the
  information gain (mutual information, bits) between "reached it" and the
  outcome, a G-test p-value (Benjamini–Hochberg across all candidates), and
  the **lift**: the success rate of customers who reached it divided by that
  of customers who did not, with a 95% confidence interval (log scale).

No leakage: the population is the customers whose outcome window is
complete (signed up at least ``outcome_window_days`` before ``as_of``), and a
customer's behaviour is counted only before the window of the candidate
ends *and* before the outcome event itself (conversion for ``conversion``,
churn for ``churn`` and ``retention``). Events of CRM sources (commercial
events such as ``subscription_started``; the canonical ``crm`` source and
any Salesforce or HubSpot source) and the events that define an outcome are
not candidates.

A small ordered set is picked greedily: significant candidates with lift
above 1 and support within bounds, the best (by information gain) per event,
skipping a candidate whose customers overlap a picked one by more than
``max_overlap`` (Jaccard), until ``n_stages``; they are ordered by their
median day. :func:`suggested_definition` turns the pick into a
:class:`~journeylib.config.journey.JourneyDefinition`, :func:`write_suggested_definition`
writes it as YAML the user can adopt, and :func:`compare_definitions_data`
puts the current and the suggested funnels side by side.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np
import pandas as pd
import yaml
from scipy import stats

from journeylib.cache import ResultCache
from journeylib.config.journey import Condition, JourneyDefinition, Stage
from journeylib.exceptions import DataQualityWarning, EmptyResultError
from journeylib.journey.stage_map import rule_text
from journeylib.journey.stages import funnel_data, stage_milestones, statement_memory_bound
from journeylib.scope import Scope
from journeylib.stats import bh_qvalues, risk_ratio_interval, wilson_interval
from journeylib.store import Store
from journeylib.store.categories import sources_of
from journeylib.store.dialect import sql_add_days, sql_days_between, sql_quote, sql_values
from journeylib.store.memory import BOUNDED_MEMORY_LIMIT, give_back_engine_memory, give_back_freed_memory, run_bounded
from journeylib.words import event_label, percent, plural, ratio, with_article

__all__ = [
    "SUCCESS_WORDS",
    "SUGGEST_MEMORY_LIMIT",
    "compare_definitions_data",
    "definition_yaml",
    "milestone_sentence",
    "rule_text",
    "selected_milestones_data",
    "suggest_milestones_data",
    "suggested_definition",
    "write_suggested_definition",
]

Outcome = Literal["retention", "churn", "conversion"]
#: DuckDB ``memory_limit`` of the statements that number every event of the scope by customer and name (the
#: candidates, the customers of the shortlist) on a store of at most
#: :data:`journeylib.journey.stages.INLINE_STAGES_MAX_EVENTS` events (above it:
#: :data:`journeylib.store.memory.BOUNDED_MEMORY_LIMIT`), when lower than the store's default. At 10M events
#: each statement peaks about 85 MB lower than under 250MB, for the same CPU time; when DuckDB runs out of
#: memory under it, the statement runs again under the store's limit (:func:`journeylib.store.memory.run_bounded`).
SUGGEST_MEMORY_LIMIT = "150MB"
#: What counts as success for each outcome of :func:`suggest_milestones_data`, in words.
SUCCESS_WORDS: dict[str, str] = {
    "conversion": "converting",
    "churn": "staying (no churn)",
    "retention": "converting without churning",
}
_OUTCOMES = ("retention", "churn", "conversion")


# -- population and outcome -----------------------------------------------------------------------
def _outcome_time(store: Store, scope: Scope, definition: JourneyDefinition | None, key: str, field: str) -> pd.Series:
    out = definition.outcomes.get(key) if definition is not None else None
    if out is not None and out.event is not None:
        got = store.query(
            f"SELECT customer_id, min(timestamp) AS t FROM ({scope.events_sql()}) e WHERE event = {sql_quote(out.event)} GROUP BY customer_id"
        )
        return got.set_index("customer_id")["t"]
    col = out.customer_field if out is not None and out.customer_field is not None else field
    got = store.query(f"SELECT customer_id, {col} AS t FROM ({scope.customers_sql()}) c")
    t = got.set_index("customer_id")["t"]
    return t.where(t <= scope.as_of)


def _population(
    store: Store,
    scope: Scope,
    definition: JourneyDefinition | None,
    outcome: str,
    window_days: float,
    population: str,
) -> pd.DataFrame:
    """Return the customers with a complete outcome window: success flag and the time features are cut at."""
    cust = store.query(f"SELECT customer_id, signup_at FROM ({scope.customers_sql()}) c").set_index("customer_id")
    horizon = cust["signup_at"] + pd.Timedelta(days=window_days)
    cust = cust[horizon <= scope.as_of]
    horizon = horizon.reindex(cust.index)
    conv = _outcome_time(store, scope, definition, "conversion", "converted_at").reindex(cust.index)
    churn = _outcome_time(store, scope, definition, "churn", "churned_at").reindex(cust.index)
    conv_in = conv.notna() & (conv <= horizon)
    churn_in = churn.notna() & (churn <= horizon)
    if population == "converted":
        keep = conv_in.to_numpy(dtype=bool)
        cust, horizon, conv, churn = cust.loc[keep], horizon.loc[keep], conv.loc[keep], churn.loc[keep]
        conv_in, churn_in = conv_in.loc[keep], churn_in.loc[keep]
    if outcome == "conversion":
        success, cut = conv_in, conv.where(conv_in)
    elif outcome == "churn":
        success, cut = ~churn_in, churn.where(churn_in)
    else:
        success, cut = conv_in & ~churn_in, churn.where(churn_in)
    return pd.DataFrame(
        {"customer_id": cust.index, "signup_at": cust["signup_at"].to_numpy(), "success": success.astype(int).to_numpy(),
         # tz-aware even when no customer has a cutoff (an all-NaT column would reach the engine tz-naive)
         "cutoff_at": pd.to_datetime(cut, utc=True).reset_index(drop=True)}
    )


def _entropy(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-300, 1.0)
    q = np.clip(1.0 - p, 1e-300, 1.0)
    return -(np.where(p > 0, p * np.log2(p), 0.0) + np.where(q > 0, q * np.log2(q), 0.0))


def _separation(reached: np.ndarray, reached_success: np.ndarray, n: int, s: int, alpha: float) -> pd.DataFrame:
    """Lift (risk ratio) with CI, information gain and G-test p-value for 2×2 tables."""
    a = reached_success.astype(float)  # reached, success
    b = reached.astype(float) - a  # reached, failure
    c = s - a  # not reached, success
    d = (n - s) - b  # not reached, failure
    nr, nn = a + b, c + d
    with np.errstate(divide="ignore", invalid="ignore"):
        r1 = np.where(nr > 0, a / nr, np.nan)
        r0 = np.where(nn > 0, c / nn, np.nan)
        lift = r1 / r0
        lo, hi = risk_ratio_interval(a, b, c, d, alpha=alpha)
        base = s / n if n else np.nan
        h_y = float(_entropy(np.array([base]))[0]) if n else np.nan
        h_cond = (nr / n) * _entropy(r1) + (nn / n) * _entropy(r0)
        mi = np.clip(h_y - np.nan_to_num(h_cond, nan=h_y), 0.0, None)
    g = 2.0 * n * mi * np.log(2.0)
    p = stats.chi2.sf(g, 1)
    r1_lo, r1_hi = wilson_interval(a, nr, alpha=alpha)
    r0_lo, r0_hi = wilson_interval(c, nn, alpha=alpha)
    return pd.DataFrame(
        {"success_rate_reached": r1, "reached_ci_low": r1_lo, "reached_ci_high": r1_hi,
         "success_rate_not_reached": r0, "not_reached_ci_low": r0_lo, "not_reached_ci_high": r0_hi, "lift": lift, "lift_ci_low": lo, "lift_ci_high": hi,
         "information_gain": mi, "p_value": p}
    )


def milestone_sentence(row: Mapping[Any, Any]) -> str:
    """Say one suggested milestone (a row of :func:`suggest_milestones_data`) as a sentence.

    Parameters
    ----------
    row : dict
        A row with ``event``, ``min_count``, ``within_days``, ``support``, ``median_days``,
        ``outcome``, ``outcome_window_days``, ``lift``, ``lift_ci_low`` and ``lift_ci_high``.

    Returns
    -------
    str
        For example "2 or more employee added events within 14 days: reached by 40% of
        customers, typically on day 3.0; among them, staying (no churn) within 150 days is 1.50×
        as frequent as among the others (95% CI 1.20–1.90)." The success of each outcome is
        the one :func:`suggest_milestones_data` scores: conversion for ``conversion``, no churn
        for ``churn``, conversion without churn for ``retention``.
    """
    k = int(row["min_count"])
    events = plural(k, f"{event_label(row['event'])} event") if k > 1 else with_article(f"{event_label(row['event'])} event")
    did = f"{k} or more {events.split(' ', 1)[1]}" if k > 1 else events
    return (
        f"{did[:1].upper()}{did[1:]} within {float(row['within_days']):g} days: reached by {percent(row['support'])} "
        f"of customers, typically on day {float(row['median_days']):.1f}; among them, "
        f"{SUCCESS_WORDS.get(str(row['outcome']), str(row['outcome']))} within {float(row['outcome_window_days']):g} "
        f"days is {ratio(row['lift'], 2)} as frequent "
        f"as among the others (95% CI {float(row['lift_ci_low']):.2f}–{float(row['lift_ci_high']):.2f})."
    )


def _label(event: str, k: int, d: float) -> str:
    name = event_label(event)
    return f"≥ {k} {name} in {d:g} days" if k > 1 else f"{name} in {d:g} days"


# -- candidates -----------------------------------------------------------------------------------
def suggest_milestones_data(
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
    outcome: Outcome = "retention",
    outcome_window_days: float = 90.0,
    population: Literal["all", "converted"] | None = None,
    min_counts: Sequence[int] = (1, 2, 3, 5, 10),
    windows_days: Sequence[float] = (3, 7, 14, 30),
    events: Sequence[str] | None = None,
    exclude_sources: Sequence[str] = ("crm",),
    min_support: float = 0.05,
    max_support: float = 0.95,
    n_stages: int = 4,
    max_overlap: float = 0.6,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Return candidate milestones "≥ k of event X within d days of signup", scored, with the pick marked.

    Parameters
    ----------
    store : Store
        The canonical store.
    definition : JourneyDefinition, optional
        Supplies the outcomes (``conversion``, ``churn``; default the
        customer fields ``converted_at``, ``churned_at``); its outcome
        events are not candidates.
    as_of, segment, plan, signup_from, signup_to, sample_n, scope
        Scope, as in :func:`journeylib.journey.stages.milestones_data`.
    outcome : {"retention", "churn", "conversion"}, default "retention"
        Success is: ``retention``, converted and not churned within the
        outcome window; ``churn``, not churned within it; ``conversion``,
        converted within it.
    outcome_window_days : float, default 90
        The outcome window after signup. Only customers who signed up at
        least this long before as_of are used; windows ``d`` longer than it
        are dropped.
    population : {"all", "converted"}, optional
        ``converted``: only customers who converted within the window (the
        paying customers who can churn). Default ``converted`` for
        ``outcome="churn"``, else ``all``.
    min_counts : list of int, default (1, 2, 3, 5, 10)
        The grid of *k*.
    windows_days : list of float, default (3, 7, 14, 30)
        The grid of *d*.
    events : list of str, optional
        Candidate events; default every event of the scope outside
        ``exclude_sources`` and the definition's outcome events.
    exclude_sources : list of str, default ("crm",)
        Source categories (:mod:`journeylib.store.categories`) or source names
        whose events are never candidates: by default the canonical ``crm``
        source and every Salesforce or HubSpot source.
    min_support, max_support : float, default 0.05, 0.95
        Support bounds of a pick.
    n_stages : int, default 4
        Milestones picked at most.
    max_overlap : float, default 0.6
        A candidate whose reached customers overlap a picked one's by more
        than this (Jaccard) is not picked.
    alpha : float, default 0.05
        False-discovery rate and 1 - confidence level.

    Returns
    -------
    pandas.DataFrame
        One row per candidate (event × k × d) reached by at least one
        customer, best first (by ``information_gain``): ``event``,
        ``min_count`` (*k*), ``within_days`` (*d*), ``label`` (e.g. "≥ 2
        integration_connected in 14 days"); ``population`` (customers with
        a complete outcome window: the denominator), ``reached``,
        ``support`` = reached / population; ``median_days`` (day since
        signup at which reached customers reached it: the typical order);
        ``success_rate_reached``, ``success_rate_not_reached`` (share
        successful among those who did / did not reach it), each with its
        Wilson interval (``reached_ci_low``, ``reached_ci_high``,
        ``not_reached_ci_low``, ``not_reached_ci_high``); ``lift`` =
        their ratio, ``lift_ci_low``, ``lift_ci_high`` (95%, Katz);
        ``information_gain`` (bits; mutual information of reached and
        success); ``p_value`` (G-test), ``q_value`` (Benjamini–Hochberg over
        all candidates); ``selected`` (picked); ``order`` (1-based position
        in the suggested journey, 0 if not picked); ``outcome``,
        ``outcome_window_days``, ``base_success_rate`` (share successful in
        the population).

    Raises
    ------
    ValueError
        If ``outcome`` or ``population`` is unknown, or no window ``d`` is
        within the outcome window.
    EmptyResultError
        If no customer has a complete outcome window, or no candidate is
        reached.
    """
    if outcome not in _OUTCOMES:
        msg = f"suggest_milestones_data: outcome must be one of {', '.join(_OUTCOMES)}; got {outcome!r}"
        raise ValueError(msg)
    pop_kind = population or ("converted" if outcome == "churn" else "all")
    if pop_kind not in ("all", "converted"):
        msg = f"suggest_milestones_data: population must be 'all' or 'converted'; got {population!r}"
        raise ValueError(msg)
    windows = sorted({float(d) for d in windows_days if 0 < float(d) <= outcome_window_days})
    if not windows:
        msg = f"suggest_milestones_data: no window in {list(windows_days)} is within outcome_window_days={outcome_window_days}"
        raise ValueError(msg)
    counts = sorted({int(k) for k in min_counts if int(k) >= 1})
    scope = Scope.resolve(store, scope, function="suggest_milestones_data", as_of=as_of, segment=segment, plan=plan,
                          signup_from=signup_from, signup_to=signup_to, sample_n=sample_n)
    pop = _population(store, scope, definition, outcome, outcome_window_days, pop_kind)
    if pop.empty:
        msg = (
            f"no customer in scope ({scope.describe()}) signed up at least {outcome_window_days:g} days before as_of; "
            "shorten outcome_window_days or move as_of."
        )
        raise EmptyResultError(msg)
    n, s = len(pop), int(pop["success"].sum())
    excluded = {o.event for o in (definition.outcomes.values() if definition is not None else []) if o.event}
    where = [f"e.timestamp < {sql_add_days('p.signup_at', max(windows))}", "e.timestamp >= p.signup_at",
             "(p.cutoff_at IS NULL OR e.timestamp < p.cutoff_at)"]
    if exclude_sources:
        where.append(f"coalesce(e.source, '') NOT IN ({', '.join(sql_quote(x) for x in sources_of(store, exclude_sources))})")
    if excluded:
        where.append(f"e.event NOT IN ({', '.join(sql_quote(x) for x in sorted(excluded))})")
    if events is not None:
        where.append(f"e.event IN ({', '.join(sql_quote(x) for x in events) or 'NULL'})")
    # The k-th event of a customer and name in time order: its day is the same whichever of the events at
    # one instant is numbered first, so the order is the time alone (a tie-break would be one more column for
    # the engine to sort and hold). Each row carries its customer's outcome, so counting successes needs no
    # second join with the population.
    kth_sql = f"""
        SELECT customer_id, event, CAST(rn AS INTEGER) AS k, days, success FROM (
            SELECT e.customer_id, e.event, {sql_days_between("p.signup_at", "e.timestamp")} AS days, p.success,
                   row_number() OVER (PARTITION BY e.customer_id, e.event ORDER BY e.timestamp) AS rn
            FROM ({scope.events_sql()}) e JOIN _jl_pop p ON p.customer_id = e.customer_id
            WHERE {" AND ".join(where)}
        ) WHERE rn IN ({", ".join(str(k) for k in counts)})"""
    grid = sql_values([repr(d) for d in windows], "d")
    sql = f"""
        WITH kth AS ({kth_sql}),
        grid AS ({grid})
        SELECT h.event, h.k AS min_count, g.d AS within_days, count(*) AS reached, sum(h.success) AS reached_success,
               median(h.days) AS median_days
        FROM kth h JOIN grid g ON h.days < g.d
        GROUP BY h.event, h.k, g.d"""
    bound = statement_memory_bound(store, SUGGEST_MEMORY_LIMIT) or BOUNDED_MEMORY_LIMIT
    cand = run_bounded(store, lambda: store.query(sql, _jl_pop=pop), bound=bound)
    if cand.empty:
        msg = f"no candidate milestone is reached by any of the {n} customers with a complete outcome window; widen the scope."
        raise EmptyResultError(msg)
    cand["population"] = n
    cand["support"] = cand["reached"] / n
    sep = _separation(cand["reached"].to_numpy(), cand["reached_success"].to_numpy(), n, s, alpha)
    cand = pd.concat([cand.reset_index(drop=True), sep], axis=1)
    cand["q_value"] = bh_qvalues(cand["p_value"].to_numpy())
    cand["label"] = [_label(e, int(k), float(d)) for e, k, d in zip(cand["event"], cand["min_count"], cand["within_days"], strict=True)]
    cand = cand.sort_values(["information_gain", "support", "event", "min_count", "within_days"], ascending=[False, False, True, True, True])
    cand = cand.reset_index(drop=True)
    cand["selected"] = False
    cand["order"] = 0
    ok = (cand["q_value"] <= alpha) & (cand["lift"] > 1) & cand["support"].between(min_support, max_support)
    shortlist = cand[ok].drop_duplicates("event").head(max(4 * n_stages, 12))
    if len(shortlist):
        reached_sets = run_bounded(store, lambda: _reached_sets(store, scope, pop, shortlist, kth_sql), bound=bound)
        picked: list[int] = []
        for i, row in shortlist.iterrows():  # a dozen candidates, not events
            mine = reached_sets[(row["event"], int(row["min_count"]), float(row["within_days"]))]
            if any(_jaccard(mine, reached_sets[_key(cand.iloc[j])]) > max_overlap for j in picked):
                continue
            picked.append(int(i))  # type: ignore[call-overload]
            if len(picked) >= n_stages:
                break
        order = cand.loc[picked].sort_values(["median_days", "support"], ascending=[True, False]).index
        cand.loc[order, "selected"] = True
        cand.loc[order, "order"] = np.arange(1, len(order) + 1)
    cand["outcome"] = outcome
    cand["outcome_window_days"] = float(outcome_window_days)
    cand["base_success_rate"] = s / n
    cols = ["event", "min_count", "within_days", "label", "population", "reached", "support", "median_days",
            "success_rate_reached", "reached_ci_low", "reached_ci_high", "success_rate_not_reached", "not_reached_ci_low",
            "not_reached_ci_high", "lift", "lift_ci_low", "lift_ci_high", "information_gain", "p_value", "q_value", "selected", "order", "outcome", "outcome_window_days", "base_success_rate"]
    cand["min_count"] = cand["min_count"].astype(int)
    cand["reached"] = cand["reached"].astype(int)
    return cand[cols]


def _key(row: pd.Series) -> tuple[str, int, float]:
    return (str(row["event"]), int(row["min_count"]), float(row["within_days"]))


def _jaccard(a: set[str], b: set[str]) -> float:
    union = len(a | b)
    return len(a & b) / union if union else 0.0


def _reached_sets(store: Store, scope: Scope, pop: pd.DataFrame, shortlist: pd.DataFrame, kth_sql: str) -> dict[tuple[str, int, float], set[str]]:
    """Return the customers who reached each shortlisted candidate (customer-level rows only)."""
    keys = shortlist[["event", "min_count", "within_days"]].rename(columns={"min_count": "k", "within_days": "d"})
    rows = store.query(
        f"SELECT s.event, s.k, s.d, k.customer_id FROM ({kth_sql}) k JOIN _jl_short s ON s.event = k.event AND s.k = k.k AND k.days < s.d",
        _jl_pop=pop,
        _jl_short=keys,
    )
    out: dict[tuple[str, int, float], set[str]] = {_key(r): set() for _, r in shortlist.iterrows()}
    for key, grp in rows.groupby(["event", "k", "d"]):
        event, k, d = cast(tuple[Any, Any, Any], key)
        out[(str(event), int(k), float(d))] = set(grp["customer_id"])
    return out


# -- definitions ----------------------------------------------------------------------------------
def suggested_definition(candidates: pd.DataFrame, *, base: JourneyDefinition | None = None, first_stage: str = "Signed Up") -> JourneyDefinition:
    """Build a journey definition from the picked candidates of :func:`suggest_milestones_data`.

    Parameters
    ----------
    candidates : pandas.DataFrame
        The result of :func:`suggest_milestones_data` (rows with ``selected``).
    base : JourneyDefinition, optional
        The current definition: its outcomes, segment field and conventions
        are kept; the name says "suggested from" it. A free-order stage an
        outcome names in ``unless_stage`` is carried over (its meaning does
        not depend on the other stages); an ordered one cannot be, and the
        outcome loses its ``unless_stage`` with a
        :class:`~journeylib.exceptions.DataQualityWarning`.
    first_stage : str, default "Signed Up"
        Name of the first stage (``rule: signup``).

    Returns
    -------
    JourneyDefinition
        ``first_stage`` then one stage per pick, in ``order``; each rule is
        ``{event, min_count, within_days}`` (of signup) and each description
        cites support and lift; the happy path is every stage in order.

    Raises
    ------
    ValueError
        If *candidates* lacks the columns of ``suggest_milestones_data``.
    """
    need = {"event", "min_count", "within_days", "label", "selected", "order", "support", "lift", "lift_ci_low", "lift_ci_high", "median_days", "outcome", "outcome_window_days"}
    missing = sorted(need - set(candidates.columns))
    if missing:
        msg = f"suggested_definition: candidates lacks column(s) {missing}; pass what suggest_milestones_data returned"
        raise ValueError(msg)
    picks = candidates[candidates["selected"]].sort_values("order")
    stages = [Stage(name=first_stage, description="Signed up.", rule="signup")]
    for row in picks.to_dict("records"):
        desc = milestone_sentence(row)
        cond = Condition(event=str(row["event"]), min_count=int(row["min_count"]), within_days=float(row["within_days"]))
        stages.append(Stage(name=str(row["label"]), description=desc, rule=cond))
    data: dict[str, Any] = {
        "name": f"Suggested from {base.name}" if base is not None else "Suggested journey",
        "description": "Milestones proposed by journeylib.journey.suggest from windowed event counts; review before adopting.",
        "stages": [s.model_dump(exclude_defaults=True) for s in stages],
        "happy_path": [s.name for s in stages],
    }
    if base is not None:
        data["outcomes"] = {k: v.model_dump(exclude_none=True) for k, v in base.outcomes.items()}
        names = {s.name for s in stages}
        for outcome_name, outcome in data["outcomes"].items():
            kept = outcome.get("unless_stage")
            if kept is None or kept in names:
                continue
            base_stage = next(s for s in base.stages if s.name == kept)
            if base_stage.order == "any":  # a free-order milestone keeps its meaning anywhere: carry it over
                data["stages"].append(base_stage.model_dump(exclude_defaults=True))
                names.add(kept)
            else:
                del outcome["unless_stage"]
                warnings.warn(
                    f"suggested definition: outcome {outcome_name!r} of {base.name!r} ends the journey unless stage {kept!r} "
                    "was entered, but that ordered stage is not among the suggested milestones; the outcome now ends "
                    "every journey it reaches. Add the stage back before adopting the suggestion.",
                    DataQualityWarning,
                    stacklevel=2,
                )
        data["segment_field"] = base.segment_field
        data["conventions"] = base.conventions.model_dump(exclude_none=True)
    return JourneyDefinition.from_dict(data)


def definition_yaml(definition: JourneyDefinition) -> str:
    """Return a journey definition as YAML that :meth:`JourneyDefinition.from_yaml` reads back.

    Parameters
    ----------
    definition : JourneyDefinition
        Any valid definition.

    Returns
    -------
    str
        YAML text (keys in schema order, defaults left out, Unicode kept).
    """
    data = definition.model_dump(mode="json", exclude_defaults=True)
    data.setdefault("name", definition.name)
    data["stages"] = [s.model_dump(mode="json", exclude_defaults=True) for s in definition.stages]
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)


def write_suggested_definition(
    candidates: pd.DataFrame, path: str | Path, *, base: JourneyDefinition | None = None, first_stage: str = "Signed Up"
) -> Path:
    """Write the suggested journey definition as YAML, validated by reading it back.

    Parameters
    ----------
    candidates : pandas.DataFrame
        The result of :func:`suggest_milestones_data`.
    path : str or pathlib.Path
        The YAML file to write (folders are created).
    base : JourneyDefinition, optional
        The current definition (outcomes, segment field, conventions kept).
    first_stage : str, default "Signed Up"
        Name of the first stage.

    Returns
    -------
    pathlib.Path
        The file written; ``JourneyDefinition.from_yaml(path)`` accepts it.
    """
    definition = suggested_definition(candidates, base=base, first_stage=first_stage)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = (
        "# Suggested journey definition, written by journeylib.journey.suggest.write_suggested_definition.\n"
        "# Review the stages, then adopt it as parameters/journeys/<name>.yaml (schema: docs/journey-definition.md).\n"
    )
    path.write_text(header + definition_yaml(definition), encoding="utf-8")
    JourneyDefinition.from_yaml(path)
    return path


# -- comparison ------------------------------------------------------------------------------------
def compare_definitions_data(
    store: Store,
    *,
    current: JourneyDefinition,
    suggested: JourneyDefinition,
    as_of: Any = None,
    segment: str | None = None,
    plan: str | None = None,
    signup_from: Any = None,
    signup_to: Any = None,
    sample_n: int = 0,
    scope: Scope | None = None,
    cache: ResultCache | None = None,
    outcome: Outcome = "retention",
    outcome_window_days: float = 90.0,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Return the current and the suggested funnels side by side, with how well each stage separates outcomes.

    Parameters
    ----------
    store : Store
        The canonical store.
    current, suggested : JourneyDefinition
        The two definitions (the current one supplies the outcomes).
    as_of, segment, plan, signup_from, signup_to, sample_n, scope, cache
        Scope, as in :func:`journeylib.journey.stages.milestones_data`.
    outcome, outcome_window_days
        As in :func:`suggest_milestones_data`.
    alpha : float, default 0.05
        1 - confidence level.

    Returns
    -------
    pandas.DataFrame
        One row per definition × stage: ``definition`` (``current`` or
        ``suggested``), ``stage``, ``stage_order``, ``rule`` (plain English);
        from :func:`journeylib.journey.stages.funnel_data`: ``reached``,
        ``eligible``, ``dropped``, ``censored``, ``conversion_rate``,
        ``ci_low``, ``ci_high``, ``share_of_start``; and, among the
        customers with a complete outcome window (``population``): ``reached_in_window``
        (entered the stage within the window and before the outcome),
        ``success_rate_reached``, ``success_rate_not_reached``, ``lift``,
        ``lift_ci_low``, ``lift_ci_high``, ``information_gain`` (as in
        :func:`suggest_milestones_data`); ``segment``.
    """
    scope = Scope.resolve(store, scope, function="compare_definitions_data", as_of=as_of, segment=segment, plan=plan,
                          signup_from=signup_from, signup_to=signup_to, sample_n=sample_n)
    pop = _population(store, scope, current, outcome, outcome_window_days, "converted" if outcome == "churn" else "all").set_index("customer_id")
    n, s = len(pop), int(pop["success"].sum())
    frames = []
    for label, definition in (("current", current), ("suggested", suggested)):
        # a definition's milestones not computed yet (the suggested one's) take the engine's statement over every
        # event: under a bounded limit, and DuckDB lets go of its memory after, before the frames below are built
        def funnel_and_milestones(d: JourneyDefinition = definition) -> tuple[pd.DataFrame, pd.DataFrame]:
            return funnel_data(store, definition=d, scope=scope, cache=cache, alpha=alpha), stage_milestones(store, d, scope, cache=cache)

        give_back_freed_memory()
        f, ms = run_bounded(store, funnel_and_milestones, bound=statement_memory_bound(store))
        give_back_engine_memory(store)
        f = f[["stage", "stage_order", "reached", "eligible", "dropped", "censored", "conversion_rate", "ci_low", "ci_high", "share_of_start"]].copy()
        f["stage"] = f["stage"].astype(str)
        f.insert(0, "definition", label)
        f["rule"] = [rule_text(st.rule) for st in definition.stages]
        ms = ms[ms["customer_id"].isin(pop.index)]
        limit = ms["signup_at"] + pd.Timedelta(days=outcome_window_days)
        cut = pd.to_datetime(ms["customer_id"].map(pop["cutoff_at"]), utc=True)  # all-NaT maps come back tz-naive
        ok = ms["entered_at"].notna() & (ms["entered_at"] < limit) & (cut.isna() | (ms["entered_at"] < cut))
        ms = ms.assign(hit=ok, success=ms["customer_id"].map(pop["success"]))
        ms["hit_success"] = ms["hit"] & (ms["success"] == 1)
        agg = ms.groupby("stage_order").agg(reached_in_window=("hit", "sum"), reached_success=("hit_success", "sum"))
        sep = _separation(agg["reached_in_window"].to_numpy(), agg["reached_success"].to_numpy(), n, s, alpha) if n else pd.DataFrame(index=range(len(agg)))
        sep.index = agg.index
        f = f.merge(agg[["reached_in_window"]].join(sep.drop(columns=["p_value"], errors="ignore")), left_on="stage_order", right_index=True, how="left")
        f["population"] = n
        frames.append(f)
    out = pd.concat(frames, ignore_index=True)
    out["segment"] = scope.segment if scope.segment is not None else "all"
    out["reached_in_window"] = out["reached_in_window"].fillna(0).astype(int)
    cols = ["definition", "stage", "stage_order", "rule", "reached", "eligible", "dropped", "censored", "conversion_rate", "ci_low",
            "ci_high", "share_of_start", "population", "reached_in_window", "success_rate_reached", "success_rate_not_reached",
            "lift", "lift_ci_low", "lift_ci_high", "information_gain", "segment"]
    return out[cols]


def selected_milestones_data(candidates: pd.DataFrame) -> pd.DataFrame:
    """Return the candidates :func:`suggest_milestones_data` selected, in their suggested order.

    Parameters
    ----------
    candidates : pandas.DataFrame
        What :func:`suggest_milestones_data` returned.

    Returns
    -------
    pandas.DataFrame
        The rows with ``selected`` True, sorted by ``order``; the same columns.
    """
    return candidates[candidates["selected"]].sort_values("order")
