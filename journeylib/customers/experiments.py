"""Intervention experiments: randomised assignment and an honest read-out of each variant against control.

The read-out starts from the canonical ``assignments`` table (one row per
customer and experiment: ``variant``, ``assigned_at``, ``properties``) and
measures two outcomes per assignment:

* **progression**: the customer entered a named stage of the journey
  definition within ``within_days`` of ``assigned_at``
  (``[assigned_at, assigned_at + within_days)``, stage entry times from
  :func:`journeylib.journey.stages.stage_milestones`);
* **churn**: the definition's churn outcome
  (:func:`journeylib.customers.features.customer_outcomes_data`) happened
  within ``churn_within_days`` of ``assigned_at``.

Who counts (every exclusion is counted in the output, never silent):

* a customer whose window is not complete at ``as_of`` is **censored** and
  left out of that metric (not counted as a customer who did not progress);
* a customer who had already entered the stage (or churned) before
  ``assigned_at`` cannot be moved by the intervention and is left out of
  that metric;
* assignments after ``as_of``, of customers outside the scope or unknown to
  the customers table, are left out; a customer assigned twice in one
  experiment keeps the first assignment (intention to treat) with a
  :class:`~journeylib.exceptions.DataQualityWarning`.

Per experiment, variant (against the control arm) and metric the read-out
gives the difference of proportions with Newcombe's hybrid score interval,
the pooled two-proportion z-test, a sample-ratio-mismatch chi-square test
against the designed split, the minimum detectable effect at the current
sample (two-sided ``alpha``, ``power``, arcsine scale), and a CUPED estimate
(regression adjustment for the customer's event count in the
``covariate_days`` before assignment) used when it cuts the variance of the
estimate by at least ``cuped_min_reduction``. The verdicts never claim "no
effect": a non-significant result says what the test could have detected.

Effects by segment are tested per segment with Benjamini–Hochberg control of
the false discovery rate over every segment × variant × metric of the call.

:func:`assign_variants` randomises customers into arms, stratified by
segment, from a stored seed, and keeps customers already held out in a
``holdout`` arm; it returns rows ready to ingest as ``assignments``.
"""

from __future__ import annotations

import hashlib
import json
import math
import warnings
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps

from journeylib.cache import ResultCache
from journeylib.config.journey import JourneyDefinition
from journeylib.customers.features import customer_outcomes_data, feature_slug
from journeylib.exceptions import DataQualityWarning, EmptyResultError, StatisticalWarning
from journeylib.journey.stages import stage_milestones
from journeylib.scope import Scope
from journeylib.stats import bh_qvalues, newcombe_difference_interval, two_proportion_z_test
from journeylib.store import Store
from journeylib.store.dialect import sql_add_days, sql_quote
from journeylib.words import percent, plural

__all__ = [
    "ALLOCATION_KEY",
    "CONTROL_VARIANTS",
    "assign_variants",
    "experiment_effects_data",
    "experiment_outcomes_data",
    "experiment_segment_effects_data",
    "minimum_detectable_effect",
    "sample_ratio_test",
]

#: Names of the comparison arm, in order of preference: the first present in an experiment is its control.
CONTROL_VARIANTS: tuple[str, ...] = ("control", "holdout")

#: ``assignments.properties`` key holding the designed split (variant → share).
ALLOCATION_KEY = "allocation"

_METRICS = ("progression", "churn")
_STATUS_DONE = {"progression": "progressed", "churn": "churned"}
_STATUS_NOT = {"progression": "not_progressed", "churn": "not_churned"}


# -- statistics ---------------------------------------------------------------------------------
def minimum_detectable_effect(
    rate_control: float, n_control: int, n_variant: int, *, alpha: float = 0.05, power: float = 0.8
) -> float:
    """Return the smallest absolute difference of proportions a two-sided test detects with the given power.

    On the arcsine scale (Cohen's ``h = 2·asin(√p_v) − 2·asin(√p_c)``) the
    detectable ``h`` is ``(z_{1−alpha/2} + z_{power})·sqrt(1/n_control +
    1/n_variant)``; it is turned back into proportions around
    ``rate_control``, upwards and downwards, and the larger of the two
    magnitudes that are possible (inside [0, 1]) is returned, so a verdict
    built on it never promises more sensitivity than the test has.

    Parameters
    ----------
    rate_control : float
        The control arm's proportion (0..1).
    n_control, n_variant : int
        Customers per arm.
    alpha : float, default 0.05
        Two-sided significance level.
    power : float, default 0.8
        Probability of detecting a true difference of the returned size.

    Returns
    -------
    float
        The minimum detectable absolute difference (a share, e.g. 0.06 for
        6 percentage points); NaN when an arm is empty or the rate is NaN.

    Raises
    ------
    ValueError
        If *alpha* or *power* is not strictly between 0 and 1, or the rate is
        outside [0, 1].

    Examples
    --------
    Control at 50%, 400 customers per arm: h = (1.95996 + 0.84162)·sqrt(2/400) = 0.19810,
    p = sin²(asin(√0.5) + 0.09905) = 0.5989, so about 9.9 points.

    >>> round(minimum_detectable_effect(0.5, 400, 400), 4)
    0.0989
    """
    for name, value in (("alpha", alpha), ("power", power)):
        if not 0 < value < 1:
            msg = f"minimum_detectable_effect: {name} must lie strictly between 0 and 1; got {value!r}"
            raise ValueError(msg)
    if n_control <= 0 or n_variant <= 0 or rate_control is None or math.isnan(rate_control):
        return float("nan")
    if not 0 <= rate_control <= 1:
        msg = f"minimum_detectable_effect: rate_control must lie in [0, 1]; got {rate_control!r}"
        raise ValueError(msg)
    h = (sps.norm.ppf(1 - alpha / 2) + sps.norm.ppf(power)) * math.sqrt(1 / n_control + 1 / n_variant)
    base = math.asin(math.sqrt(rate_control))
    sizes = []
    if base + h / 2 <= math.pi / 2:
        sizes.append(math.sin(base + h / 2) ** 2 - rate_control)
    if base - h / 2 >= 0:
        sizes.append(rate_control - math.sin(base - h / 2) ** 2)
    return float(max(sizes)) if sizes else float("nan")


def sample_ratio_test(counts: Mapping[str, int], design: Mapping[str, float]) -> float:
    """Return the chi-square p-value of the observed arm sizes against the designed split.

    Parameters
    ----------
    counts : mapping of str to int
        Customers assigned per variant (variants of the design only).
    design : mapping of str to float
        The designed share of each variant (normalised to sum to 1).

    Returns
    -------
    float
        ``scipy.stats.chisquare`` p-value with ``len(design) - 1`` degrees
        of freedom; a small value (conventionally below 0.001) means the
        assignment did not follow the design (a sample ratio mismatch).

    Raises
    ------
    ValueError
        If the design has fewer than two variants, a share is not positive,
        a counted variant is not in the design, or nothing was assigned.

    Examples
    --------
    A 50/50 design that came out 560/440: chi² = (60² + 60²)/500 = 14.4, p = 0.00015.

    >>> round(sample_ratio_test({"control": 560, "b": 440}, {"control": 0.5, "b": 0.5}), 5)
    0.00015
    """
    if len(design) < 2 or any(not (s > 0) for s in design.values()):
        msg = f"sample_ratio_test: the design needs two or more variants with positive shares; got {dict(design)}"
        raise ValueError(msg)
    extra = sorted(set(counts) - set(design))
    if extra:
        msg = f"sample_ratio_test: variants {extra} are not in the design {sorted(design)}"
        raise ValueError(msg)
    names = sorted(design)
    observed = np.array([counts.get(v, 0) for v in names], dtype=float)
    total = observed.sum()
    if total <= 0:
        msg = "sample_ratio_test: no assignments to test"
        raise ValueError(msg)
    shares = np.array([design[v] for v in names], dtype=float)
    expected = total * shares / shares.sum()
    return float(sps.chisquare(observed, expected).pvalue)


def _cuped(y: np.ndarray, treat: np.ndarray, x: np.ndarray, alpha: float) -> dict[str, float]:
    """Regression-adjusted (CUPED) difference: OLS of y on treatment and the centred covariate, HC2 errors."""
    import statsmodels.api as sm

    nan = float("nan")
    out = {"cuped_difference": nan, "cuped_ci_low": nan, "cuped_ci_high": nan, "cuped_p_value": nan, "variance_reduction": nan}
    if np.std(x) == 0 or np.std(y) == 0:
        return out  # a constant covariate adjusts nothing; a constant outcome has no variance to reduce
    base = sm.OLS(y, sm.add_constant(treat.astype(float), has_constant="add")).fit(cov_type="HC2")
    design = np.column_stack([np.ones(len(y)), treat.astype(float), x - x.mean()])
    adj = sm.OLS(y, design).fit(cov_type="HC2")
    lo, hi = adj.conf_int(alpha=alpha)[1]
    se0, se1 = float(base.bse[1]), float(adj.bse[1])
    out.update(
        cuped_difference=float(adj.params[1]), cuped_ci_low=float(lo), cuped_ci_high=float(hi),
        cuped_p_value=float(adj.pvalues[1]), variance_reduction=1 - (se1 / se0) ** 2 if se0 > 0 else nan,
    )
    return out


def _pp(x: float, sign: bool = True) -> str:
    """Write a share difference in percentage points: ``+6 pp``."""
    if x is None or math.isnan(x):
        return "n/a"
    v = x * 100
    text = f"{abs(v):.0f}" if abs(v) >= 10 else f"{abs(v):.1f}"
    if not sign:
        return f"{text} pp"
    return f"{'+' if v >= 0 else '-'}{text} pp"


# -- per-assignment outcomes ----------------------------------------------------------------------
def _experiment_rows(store: Store, experiment: str | None, scope: Scope) -> tuple[pd.DataFrame, dict[str, int]]:
    where = "" if experiment is None else f"WHERE experiment = {sql_quote(experiment)}"
    raw = store.query(
        f"SELECT assignment_id, customer_id, experiment, variant, assigned_at, properties FROM assignments {where} "
        "ORDER BY experiment, customer_id, assigned_at, assignment_id"
    )
    if raw.empty:
        known = store.query("SELECT DISTINCT experiment FROM assignments ORDER BY experiment")["experiment"].tolist()
        what = "the assignments table is empty" if not known else f"experiments in the store: {known}"
        msg = f"experiment {experiment!r}: no assignments found ({what}). Ingest an assignments file or pick another experiment."
        raise EmptyResultError(msg)
    raw["assigned_at"] = pd.to_datetime(raw["assigned_at"], utc=True)
    notes = {"after_as_of": int((raw["assigned_at"] > scope.as_of).sum())}
    raw = raw[raw["assigned_at"] <= scope.as_of]
    first = raw.drop_duplicates(["experiment", "customer_id"], keep="first")
    repeated = raw[raw.duplicated(["experiment", "customer_id"], keep=False)]
    if len(repeated):
        switched = repeated.groupby(["experiment", "customer_id"])["variant"].nunique()
        msg = (
            f"assignments: {repeated[['experiment', 'customer_id']].drop_duplicates().shape[0]} customer(s) are assigned more "
            f"than once in one experiment ({int((switched > 1).sum())} of them to different variants); the read-out keeps "
            "each customer's first assignment (intention to treat)."
        )
        warnings.warn(msg, DataQualityWarning, stacklevel=3)
    notes["repeated"] = len(raw) - len(first)
    return first.reset_index(drop=True), notes


def _pre_activity(store: Store, rows: pd.DataFrame, covariate_days: int) -> pd.Series:
    frame = rows[["assignment_id", "customer_id", "assigned_at"]]
    lo = sql_add_days("a.assigned_at", -covariate_days)
    got = store.query(
        "SELECT a.assignment_id, count(e.customer_id) AS n FROM _jl_assign a LEFT JOIN events e "
        f"ON e.customer_id = a.customer_id AND e.timestamp >= {lo} AND e.timestamp < a.assigned_at GROUP BY a.assignment_id",
        _jl_assign=frame,
    )
    return rows["assignment_id"].map(got.set_index("assignment_id")["n"]).fillna(0).astype(float)


def experiment_outcomes_data(
    store: Store,
    *,
    definition: JourneyDefinition,
    stage: str,
    within_days: int,
    experiment: str | None = None,
    churn_within_days: int | None = None,
    churn_outcome: str = "churn",
    covariate_days: int = 14,
    as_of: Any = None,
    segment: str | None = None,
    plan: str | None = None,
    signup_from: Any = None,
    signup_to: Any = None,
    sample_n: int = 0,
    scope: Scope | None = None,
    cache: ResultCache | None = None,
) -> pd.DataFrame:
    """Return each assigned customer's progression and churn after assignment, with the pre-assignment covariate.

    Parameters
    ----------
    store : Store
        The canonical store (its ``assignments``, ``customers`` and ``events``).
    definition : JourneyDefinition
        Supplies the stage and the churn outcome.
    stage : str
        The stage whose entry within the window counts as progression.
    within_days : int
        Progression window after ``assigned_at`` (days).
    experiment : str, optional
        One experiment; default every experiment in the store.
    churn_within_days : int, optional
        Churn window after ``assigned_at``; default *within_days*.
    churn_outcome : str, default "churn"
        The definition's outcome that counts as churn.
    covariate_days : int, default 14
        Pre-period of the covariate: events in ``[assigned_at −
        covariate_days, assigned_at)``.
    as_of, segment, plan, signup_from, signup_to, sample_n, scope
        Which customers, as of when (:meth:`journeylib.scope.Scope.resolve`).
    cache : ResultCache, optional
        Reuse the milestone frame.

    Returns
    -------
    pandas.DataFrame
        One row per experiment and assigned customer in scope (first
        assignment; assignments after ``as_of`` left out): ``experiment``,
        ``variant``, ``customer_id``, ``segment``, ``assigned_at``,
        ``stage_entered_at`` (NaT if not by as_of), ``churned_at`` (the
        churn outcome's time, NaT if not by as_of), ``pre_events`` (events
        of the customer in the pre-period), ``progression`` (1.0 entered the
        stage in the window, 0.0 did not, NaN when left out),
        ``progression_status`` (``progressed``, ``not_progressed``,
        ``censored`` — window not complete at as_of — or
        ``before_assignment``), ``churn`` (1.0 / 0.0 / NaN) and
        ``churn_status`` (``churned``, ``not_churned``, ``censored``,
        ``before_assignment``).

    Raises
    ------
    ValueError
        If the stage or churn outcome is not in the definition, or a window
        is not a positive number of days.
    EmptyResultError
        If the store has no assignments for *experiment*, or none of them
        is of a customer in scope.
    """
    if stage not in definition.stage_names:
        msg = f"experiment_outcomes_data(stage=...): {stage!r} is not a stage of {definition.name!r}; stages are {definition.stage_names}"
        raise ValueError(msg)
    if churn_outcome not in definition.outcomes:
        msg = (
            f"experiment_outcomes_data(churn_outcome=...): {churn_outcome!r} is not an outcome of {definition.name!r}; "
            f"outcomes are {sorted(definition.outcomes)}"
        )
        raise ValueError(msg)
    churn_days = within_days if churn_within_days is None else churn_within_days
    for name, value in (("within_days", within_days), ("churn_within_days", churn_days), ("covariate_days", covariate_days)):
        if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
            msg = f"experiment_outcomes_data({name}=...): must be a positive number of days; got {value!r}"
            raise ValueError(msg)
    scope = Scope.resolve(
        store, scope, function="experiment_outcomes_data", segment_field=definition.segment_field, as_of=as_of,
        segment=segment, plan=plan, signup_from=signup_from, signup_to=signup_to, sample_n=sample_n,
    )
    rows, notes = _experiment_rows(store, experiment, scope)
    ms = stage_milestones(store, definition, scope, cache=cache)
    ms = ms[ms["stage"] == stage]
    entered = pd.to_datetime(ms.set_index("customer_id")["entered_at"], utc=True)
    seg = ms.set_index("customer_id")["segment"]
    in_scope = rows["customer_id"].isin(seg.index)
    unknown = int((~rows["customer_id"].isin(store.query("SELECT customer_id FROM customers")["customer_id"])).sum())
    if unknown:
        msg = (
            f"assignments: {plural(unknown, 'assignment')} name customers the customers table does not have; "
            "they are left out of the read-out. Ingest those customers or fix the ids."
        )
        warnings.warn(msg, DataQualityWarning, stacklevel=2)
    rows = rows[in_scope].reset_index(drop=True)
    if rows.empty:
        msg = f"experiment {experiment!r}: no assigned customer is in scope ({scope.describe()}); widen the filters."
        raise EmptyResultError(msg)
    outcomes = customer_outcomes_data(store, definition=definition, scope=scope)
    churn_at = pd.to_datetime(outcomes.set_index("customer_id")[f"{feature_slug(churn_outcome)}_at"], utc=True)
    out = pd.DataFrame(
        {
            "experiment": rows["experiment"].astype(str),
            "variant": rows["variant"].astype(str),
            "customer_id": rows["customer_id"],
            "segment": rows["customer_id"].map(seg),
            "assigned_at": rows["assigned_at"],
            "stage_entered_at": pd.to_datetime(rows["customer_id"].map(entered), utc=True),
            "churned_at": pd.to_datetime(rows["customer_id"].map(churn_at), utc=True),
        }
    )
    out["pre_events"] = _pre_activity(store, rows, covariate_days)
    for metric, t_col, days in (("progression", "stage_entered_at", within_days), ("churn", "churned_at", churn_days)):
        end = out["assigned_at"] + pd.Timedelta(days=days)
        t = out[t_col]
        before = t.notna() & (t < out["assigned_at"])
        hit = t.notna() & (t >= out["assigned_at"]) & (t < end)
        censored = ~before & ~hit & (end > scope.as_of)
        status = np.select([before, hit, censored], ["before_assignment", _STATUS_DONE[metric], "censored"], default=_STATUS_NOT[metric])
        out[f"{metric}_status"] = status
        out[metric] = np.where(before | censored, np.nan, hit.astype(float))
    cols = ["experiment", "variant", "customer_id", "segment", "assigned_at", "stage_entered_at", "churned_at", "pre_events",
            "progression", "progression_status", "churn", "churn_status"]
    out = out[cols].sort_values(["experiment", "variant", "customer_id"]).reset_index(drop=True)
    out.attrs["notes"] = notes
    return out


# -- the read-out ---------------------------------------------------------------------------------
def _design_of(store: Store, experiment: str, given: Mapping[str, Any] | None) -> dict[str, float] | None:
    """Return the designed split of *experiment*: given explicitly, else the ``allocation`` stored in its assignments' properties."""
    if given is not None:
        values = list(given.values())
        if values and all(isinstance(v, Mapping) for v in values):
            per = given.get(experiment)
            return None if per is None else {str(k): float(v) for k, v in per.items()}
        return {str(k): float(v) for k, v in given.items()}
    props = store.query(
        f"SELECT properties, count(*) AS n FROM assignments WHERE experiment = {sql_quote(experiment)} GROUP BY properties"
    )
    seen: dict[str, int] = {}
    for text, n in zip(props["properties"], props["n"], strict=True):
        try:
            alloc = json.loads(text).get(ALLOCATION_KEY) if isinstance(text, str) and text else None
        except (ValueError, AttributeError):
            alloc = None
        if isinstance(alloc, Mapping) and alloc:
            key = json.dumps({str(k): float(v) for k, v in alloc.items()}, sort_keys=True)
            seen[key] = seen.get(key, 0) + int(n)
    if not seen:
        return None
    if len(seen) > 1:
        msg = (
            f"experiment {experiment!r}: the assignments store {len(seen)} different designed splits in properties."
            f"{ALLOCATION_KEY}; the sample-ratio check uses the most common one. Pass design= to state it."
        )
        warnings.warn(msg, DataQualityWarning, stacklevel=3)
    best = max(seen.items(), key=lambda kv: kv[1])[0]
    return dict(json.loads(best))


def _control_of(variants: Iterable[str], experiment: str, control: str | None) -> str:
    names = sorted(set(variants))
    if control is not None:
        if control not in names:
            msg = f"experiment {experiment!r}: control {control!r} is not one of its variants {names}"
            raise ValueError(msg)
        return control
    for c in CONTROL_VARIANTS:
        if c in names:
            return c
    msg = (
        f"experiment {experiment!r}: no control arm (none of {list(CONTROL_VARIANTS)} among its variants {names}); "
        "pass control= naming the arm to compare with."
    )
    raise ValueError(msg)


def _metric_text(metric: str, stage: str, within_days: int, churn_days: int) -> str:
    if metric == "progression":
        return f"the share reaching {stage} within {plural(within_days, 'day')} of assignment"
    return f"the share churning within {plural(churn_days, 'day')} of assignment"


def _compare(c: pd.DataFrame, v: pd.DataFrame, metric: str, alpha: float, power: float) -> dict[str, Any]:
    yc = c[metric].dropna().to_numpy()
    yv = v[metric].dropna().to_numpy()
    nc, nv = len(yc), len(yv)
    kc, kv = int(yc.sum()), int(yv.sum())
    nan = float("nan")
    row: dict[str, Any] = {"n": nc + nv, "n_control": nc, "n_variant": nv, "events_control": kc, "events_variant": kv}
    rc = kc / nc if nc else nan
    rv = kv / nv if nv else nan
    row.update(rate_control=rc, rate_variant=rv, difference=rv - rc)
    if nc and nv:
        row["ci_low"], row["ci_high"] = newcombe_difference_interval(kv, nv, kc, nc, alpha=alpha)
        try:
            row["p_value"] = two_proportion_z_test(kv, nv, kc, nc)[1]
        except ValueError:  # both arms all 0 or all 1: the difference is exactly 0
            row["p_value"] = 1.0
        xs = np.concatenate([c.loc[c[metric].notna(), "pre_events"].to_numpy(), v.loc[v[metric].notna(), "pre_events"].to_numpy()])
        treat = np.concatenate([np.zeros(nc), np.ones(nv)])
        row.update(_cuped(np.concatenate([yc, yv]).astype(float), treat, xs.astype(float), alpha))
    else:
        row.update(ci_low=nan, ci_high=nan, p_value=nan, cuped_difference=nan, cuped_ci_low=nan, cuped_ci_high=nan,
                   cuped_p_value=nan, variance_reduction=nan)
    row["mde"] = minimum_detectable_effect(rc, nc, nv, alpha=alpha, power=power)
    return row


def _verdict(row: dict[str, Any], *, variant: str, control: str, metric_text: str, alpha: float, srm_alpha: float,
             min_customers: int, p_col: str = "p_value") -> str:
    level = f"{(1 - alpha) * 100:g}%"
    srm = row.get("srm_p_value", float("nan"))
    if srm is not None and not math.isnan(srm) and srm < srm_alpha:
        return (
            f"Sample ratio mismatch (p = {srm:.2g}): the arms are not the designed split, so a difference between "
            f"{variant} and {control} may come from how customers were assigned. Do not read this effect until the "
            "assignment is fixed."
        )
    if row["n_control"] < min_customers or row["n_variant"] < min_customers:
        return (
            f"Too few customers to read {metric_text}: {row['n_variant']} in {variant} and {row['n_control']} in "
            f"{control} (at least {min_customers} each needed)."
        )
    cuped = bool(row.get("cuped_used"))
    diff = row["cuped_difference"] if cuped else row["difference"]
    lo, hi = (row["cuped_ci_low"], row["cuped_ci_high"]) if cuped else (row["ci_low"], row["ci_high"])
    p = row[p_col] if not cuped or p_col != "p_value" else row["cuped_p_value"]
    how = ", adjusted for pre-assignment activity" if cuped else ""
    rates = f"{percent(row['rate_variant'])} in {variant} vs {percent(row['rate_control'])} in {control}"
    ci = f"{level} CI {_pp(lo)} to {_pp(hi)}"
    p_text = f"{'q' if p_col == 'q_value' else 'p'} = {p:.2g}"
    if not math.isnan(p) and p < alpha:
        word = "raised" if diff > 0 else "lowered"
        return f"{variant} {word} {metric_text}: {rates} ({_pp(diff)}{how}, {ci}, {p_text})."
    return (
        f"No detectable effect of {variant} on {metric_text}: {rates} ({_pp(diff)}{how}, {ci}, {p_text}); with "
        f"{row['n_variant']:,} and {row['n_control']:,} customers the test could detect a change of "
        f"{_pp(row['mde'], sign=False)} or more."
    )


def _check_levels(function: str, alpha: float, power: float, srm_alpha: float) -> None:
    for name, value in (("alpha", alpha), ("power", power), ("srm_alpha", srm_alpha)):
        if not 0 < value < 1:
            msg = f"{function}({name}=...): must lie strictly between 0 and 1; got {value!r}"
            raise ValueError(msg)


def experiment_effects_data(
    store: Store,
    *,
    definition: JourneyDefinition,
    stage: str,
    within_days: int,
    experiment: str | None = None,
    control: str | None = None,
    churn_within_days: int | None = None,
    churn_outcome: str = "churn",
    design: Mapping[str, float] | Mapping[str, Mapping[str, float]] | None = None,
    covariate_days: int = 14,
    alpha: float = 0.05,
    power: float = 0.8,
    srm_alpha: float = 0.001,
    cuped_min_reduction: float = 0.05,
    min_customers: int = 10,
    as_of: Any = None,
    segment: str | None = None,
    plan: str | None = None,
    signup_from: Any = None,
    signup_to: Any = None,
    sample_n: int = 0,
    scope: Scope | None = None,
    cache: ResultCache | None = None,
) -> pd.DataFrame:
    """Return each variant's effect on progression and churn against the control arm, with the checks that make it readable.

    Parameters
    ----------
    store : Store
        The canonical store.
    definition : JourneyDefinition
        Supplies the stage and the churn outcome.
    stage : str
        Progression is entering this stage within *within_days* of assignment.
    within_days : int
        Progression window (days).
    experiment : str, optional
        One experiment; default every experiment in the store.
    control : str, optional
        The comparison arm; default the first of :data:`CONTROL_VARIANTS`
        present (``control``, else ``holdout``). Every other variant is
        compared with it.
    churn_within_days : int, optional
        Churn window (days); default *within_days*.
    churn_outcome : str, default "churn"
        The definition's churn outcome.
    design : mapping, optional
        The designed split, variant → share (or experiment → such a
        mapping); default the ``allocation`` stored in the assignments'
        ``properties``. Without either, ``srm_p_value`` is NaN.
    covariate_days : int, default 14
        CUPED pre-period: the customer's events in the days before assignment.
    alpha : float, default 0.05
        Two-sided level of the intervals and tests.
    power : float, default 0.8
        Power of the minimum detectable effect.
    srm_alpha : float, default 0.001
        A sample-ratio p-value below this flags a mismatch.
    cuped_min_reduction : float, default 0.05
        The CUPED estimate is used (``cuped_used``) when it cuts the variance
        of the difference by at least this share.
    min_customers : int, default 10
        Below this many customers in an arm the verdict declines to read.
    as_of, segment, plan, signup_from, signup_to, sample_n, scope
        Which customers, as of when.
    cache : ResultCache, optional
        Reuse the milestone frame.

    Returns
    -------
    pandas.DataFrame
        One row per experiment, non-control variant and metric:
        ``experiment``, ``variant``, ``control`` (the arm compared with),
        ``metric`` (``progression`` or ``churn``), ``metric_definition``
        (in words), ``n`` (customers of both arms counted for the metric),
        ``n_control``, ``n_variant``, ``events_control``,
        ``events_variant`` (customers who progressed / churned),
        ``rate_control``, ``rate_variant`` (events / customers of the arm),
        ``difference`` (variant − control), ``ci_low``, ``ci_high``
        (Newcombe hybrid score interval of the difference), ``p_value``
        (pooled two-proportion z-test, two-sided; 1.0 when both arms are all
        0 or all 1), ``srm_p_value`` (chi-square of the experiment's arm
        sizes — every assigned customer in scope, before the metric's
        exclusions — against the design), ``mde`` (minimum detectable
        absolute difference at this sample, :func:`minimum_detectable_effect`
        of ``rate_control``), ``cuped_difference``, ``cuped_ci_low``,
        ``cuped_ci_high``, ``cuped_p_value`` (OLS of the outcome on the arm
        and the centred pre-period event count, HC2 errors),
        ``variance_reduction`` (1 − (adjusted SE / unadjusted SE)², NaN when
        the covariate or the outcome is constant), ``cuped_used``,
        ``excluded_censored`` (window not complete at as_of),
        ``excluded_before`` (stage entered / churned before assignment),
        ``srm_note`` (assignments outside the design, repeated or after
        as_of), ``verdict`` (one plain-English sentence).

    Raises
    ------
    ValueError
        If a level is not strictly between 0 and 1, the control is not a
        variant, or an experiment has no control arm.
    EmptyResultError
        If there is nothing to compare.

    Examples
    --------
    >>> experiment_effects_data(store, definition=definition, stage="Onboarding Completed", within_days=14)  # doctest: +SKIP
    """
    _check_levels("experiment_effects_data", alpha, power, srm_alpha)
    churn_days = within_days if churn_within_days is None else churn_within_days
    data = experiment_outcomes_data(
        store, definition=definition, stage=stage, within_days=within_days, experiment=experiment,
        churn_within_days=churn_within_days, churn_outcome=churn_outcome, covariate_days=covariate_days, as_of=as_of,
        segment=segment, plan=plan, signup_from=signup_from, signup_to=signup_to, sample_n=sample_n, scope=scope, cache=cache,
    )
    notes = data.attrs.get("notes", {})
    rows = []
    for name, exp in data.groupby("experiment", sort=True):
        ctrl = _control_of(exp["variant"], str(name), control)
        counts = {str(k): int(n) for k, n in exp["variant"].value_counts().items()}
        plan_ = _design_of(store, str(name), design)
        srm_notes = []
        srm = float("nan")
        if plan_ is None:
            srm_notes.append("no designed split stored or given: the sample-ratio check was not run")
        else:
            outside = {v: n for v, n in counts.items() if v not in plan_}
            if outside:
                srm_notes.append(
                    f"{plural(sum(outside.values()), 'assignment')} to variants outside the design ({', '.join(sorted(outside))}) "
                    "are not counted in the sample-ratio check"
                )
            inside = {v: int(n) for v, n in counts.items() if v in plan_}
            if inside:
                srm = sample_ratio_test(inside, plan_)
        if notes.get("repeated"):
            srm_notes.append(f"{plural(notes['repeated'], 'repeated assignment')} left out (first one kept)")
        if notes.get("after_as_of"):
            srm_notes.append(f"{plural(notes['after_as_of'], 'assignment')} after as_of left out")
        c = exp[exp["variant"] == ctrl]
        for variant in sorted(v for v in counts if v != ctrl):
            v = exp[exp["variant"] == variant]
            for metric in _METRICS:
                text = _metric_text(metric, stage, within_days, churn_days)
                row: dict[str, Any] = {"experiment": str(name), "variant": variant, "control": ctrl, "metric": metric,
                                       "metric_definition": text}
                row.update(_compare(c, v, metric, alpha, power))
                red = row["variance_reduction"]
                row["cuped_used"] = bool(not math.isnan(red) and red >= cuped_min_reduction)
                both = pd.concat([c, v])
                row["excluded_censored"] = int((both[f"{metric}_status"] == "censored").sum())
                row["excluded_before"] = int((both[f"{metric}_status"] == "before_assignment").sum())
                row["srm_p_value"] = srm
                row["srm_note"] = "; ".join(srm_notes)
                row["verdict"] = _verdict(row, variant=variant, control=ctrl, metric_text=text, alpha=alpha,
                                          srm_alpha=srm_alpha, min_customers=min_customers)
                rows.append(row)
    if not rows:
        msg = f"experiment {experiment!r}: every assigned customer in scope is in the control arm; there is no variant to compare."
        raise EmptyResultError(msg)
    out = pd.DataFrame(rows)
    small = out[(out["n_control"] < min_customers) | (out["n_variant"] < min_customers)]
    if len(small):
        msg = (
            f"experiment_effects_data: {plural(len(small), 'comparison')} have fewer than {min_customers} customers in an arm "
            "(their verdicts decline to read them)."
        )
        warnings.warn(msg, StatisticalWarning, stacklevel=2)
    cols = ["experiment", "variant", "control", "metric", "metric_definition", "n", "n_control", "n_variant", "events_control",
            "events_variant", "rate_control", "rate_variant", "difference", "ci_low", "ci_high", "p_value", "srm_p_value", "mde",
            "cuped_difference", "cuped_ci_low", "cuped_ci_high", "cuped_p_value", "variance_reduction", "cuped_used",
            "excluded_censored", "excluded_before", "srm_note", "verdict"]
    return out[cols]


def experiment_segment_effects_data(
    store: Store,
    *,
    definition: JourneyDefinition,
    stage: str,
    within_days: int,
    experiment: str | None = None,
    control: str | None = None,
    churn_within_days: int | None = None,
    churn_outcome: str = "churn",
    alpha: float = 0.05,
    power: float = 0.8,
    min_customers: int = 10,
    as_of: Any = None,
    plan: str | None = None,
    signup_from: Any = None,
    signup_to: Any = None,
    sample_n: int = 0,
    scope: Scope | None = None,
    cache: ResultCache | None = None,
) -> pd.DataFrame:
    """Return each variant's effect per segment, with Benjamini–Hochberg control over every test of the call.

    Parameters
    ----------
    store, definition, stage, within_days, experiment, control, churn_within_days, churn_outcome, alpha, power, min_customers
        As in :func:`experiment_effects_data`.
    as_of, plan, signup_from, signup_to, sample_n, scope
        Which customers, as of when (every segment is read).
    cache : ResultCache, optional
        Reuse the milestone frame.

    Returns
    -------
    pandas.DataFrame
        One row per experiment, segment (the definition's segment field),
        non-control variant and metric: ``experiment``, ``segment``,
        ``variant``, ``control``, ``metric``, ``n``, ``n_control``,
        ``n_variant``, ``rate_control``, ``rate_variant``, ``difference``,
        ``ci_low``, ``ci_high`` (Newcombe, per segment, not adjusted for
        multiplicity), ``p_value``, ``q_value`` (Benjamini–Hochberg over
        every row with at least *min_customers* per arm; NaN for the
        others, which are not tested), ``mde``, ``significant`` (q_value
        below *alpha*), ``verdict``.

    Raises
    ------
    ValueError
        As :func:`experiment_effects_data`.
    EmptyResultError
        If there is nothing to compare.
    """
    _check_levels("experiment_segment_effects_data", alpha, power, 0.5)
    churn_days = within_days if churn_within_days is None else churn_within_days
    data = experiment_outcomes_data(
        store, definition=definition, stage=stage, within_days=within_days, experiment=experiment,
        churn_within_days=churn_within_days, churn_outcome=churn_outcome, as_of=as_of, plan=plan, signup_from=signup_from,
        signup_to=signup_to, sample_n=sample_n, scope=scope, cache=cache,
    )
    rows = []
    for name, exp in data.groupby("experiment", sort=True):
        ctrl = _control_of(exp["variant"], str(name), control)
        for seg_value, part in exp.groupby(exp["segment"].astype(object).fillna("(no segment)"), sort=True):
            c = part[part["variant"] == ctrl]
            for variant in sorted(set(part["variant"]) - {ctrl}):
                v = part[part["variant"] == variant]
                for metric in _METRICS:
                    seg_row: dict[str, Any] = {"experiment": str(name), "segment": seg_value, "variant": variant, "control": ctrl, "metric": metric,
                           "metric_text": _metric_text(metric, stage, within_days, churn_days)}
                    seg_row.update(_compare(c, v, metric, alpha, power))
                    rows.append(seg_row)
    if not rows:
        msg = f"experiment {experiment!r}: no segment has both a control arm and a variant to compare."
        raise EmptyResultError(msg)
    out = pd.DataFrame(rows)
    tested = (out["n_control"] >= min_customers) & (out["n_variant"] >= min_customers)
    out["q_value"] = bh_qvalues(out["p_value"].where(tested))
    out["significant"] = out["q_value"] < alpha
    verdicts = []
    for rec in out.to_dict("records"):
        text = f"{rec['metric_text']} in {rec['segment']}"
        verdicts.append(_verdict({str(k): v for k, v in rec.items()} | {"cuped_used": False}, variant=str(rec["variant"]),
                                 control=str(rec["control"]), metric_text=text,
                                 alpha=alpha, srm_alpha=0.5, min_customers=min_customers, p_col="q_value"))
    out["verdict"] = verdicts
    cols = ["experiment", "segment", "variant", "control", "metric", "n", "n_control", "n_variant", "rate_control", "rate_variant",
            "difference", "ci_low", "ci_high", "p_value", "q_value", "mde", "significant", "verdict"]
    return out[cols].reset_index(drop=True)


# -- assignment ---------------------------------------------------------------------------------------
def _stratum_seed(seed: int, stratum: str) -> list[int]:
    digest = hashlib.sha256(stratum.encode("utf-8")).digest()
    return [seed, int.from_bytes(digest[:8], "little")]


def assign_variants(
    customers: pd.DataFrame,
    *,
    experiment: str,
    variants: Mapping[str, float],
    seed: int,
    assigned_at: Any,
    segment_col: str = "segment",
    holdout: Iterable[str] = (),
) -> pd.DataFrame:
    """Randomise customers into the variants of an experiment, stratified by segment, from a stored seed.

    Within each segment the customers (sorted by ``customer_id``, so the
    result does not depend on row order) are dealt into arms of exactly the
    designed sizes (largest remainder, ties drawn at random) in a random
    order drawn from ``numpy.random.default_rng([seed, hash(segment)])``:
    every segment follows the design, and the same seed and customers give
    the same assignment. Customers listed in *holdout* are not randomised:
    they get the variant ``holdout`` (they stay out of every intervention)
    and their rows carry no designed split.

    Parameters
    ----------
    customers : pandas.DataFrame
        ``customer_id`` and *segment_col* (missing segments form one stratum).
    experiment : str
        The experiment's name.
    variants : mapping of str to float
        Designed share of each variant (positive, summing to 1), e.g.
        ``{"control": 0.5, "nudge": 0.5}``.
    seed : int
        Non-negative seed, stored in every row's ``properties``.
    assigned_at : str or timestamp
        When the assignment takes effect (naive = UTC).
    segment_col : str, default "segment"
        Column to stratify by.
    holdout : iterable of str, default ()
        Customers already held out of interventions.

    Returns
    -------
    pandas.DataFrame
        The canonical ``assignments`` columns, one row per customer:
        ``assignment_id`` (``<customer_id>:<experiment>``), ``customer_id``,
        ``user_id`` (empty: accounts are assigned), ``experiment``,
        ``variant``, ``assigned_at`` (UTC) and ``properties`` (JSON:
        ``allocation`` — the design, absent for held-out customers —
        ``seed``, ``stratum``, ``method``).

    Raises
    ------
    ValueError
        If a column is missing, a customer is listed twice, the shares are
        not positive or do not sum to 1, ``holdout`` is used as a variant
        name while *holdout* lists customers, or the seed is negative.

    Examples
    --------
    >>> frame = pd.DataFrame({"customer_id": ["a", "b", "c", "d"], "segment": ["SMB", "SMB", "Ent", "Ent"]})
    >>> out = assign_variants(frame, experiment="nudge", variants={"control": 0.5, "email": 0.5}, seed=1,
    ...                       assigned_at="2025-03-01")
    >>> out.groupby("variant").size().tolist()
    [2, 2]
    """
    missing = [c for c in ("customer_id", segment_col) if c not in customers.columns]
    if missing:
        msg = f"assign_variants: customers lacks column(s) {missing}; it has {list(customers.columns)}"
        raise ValueError(msg)
    if customers["customer_id"].duplicated().any():
        dup = customers.loc[customers["customer_id"].duplicated(), "customer_id"].head(3).tolist()
        msg = f"assign_variants: customer_id must be unique; repeated: {dup}"
        raise ValueError(msg)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        msg = f"assign_variants(seed=...): must be a non-negative integer; got {seed!r}"
        raise ValueError(msg)
    shares = {str(k): float(v) for k, v in variants.items()}
    if len(shares) < 2 or any(not (s > 0) for s in shares.values()) or abs(sum(shares.values()) - 1) > 1e-9:
        msg = f"assign_variants(variants=...): need two or more variants with positive shares summing to 1; got {shares}"
        raise ValueError(msg)
    held = set(map(str, holdout))
    if held and "holdout" in shares:
        msg = "assign_variants: 'holdout' is the variant of held-out customers; name the randomised arm otherwise"
        raise ValueError(msg)
    at = pd.Timestamp(assigned_at)
    at = at.tz_localize("UTC") if at.tzinfo is None else at.tz_convert("UTC")
    frame = customers[["customer_id", segment_col]].copy()
    frame["customer_id"] = frame["customer_id"].astype(str)
    frame["stratum"] = frame[segment_col].astype(object).where(frame[segment_col].notna(), "(no segment)").astype(str)
    frame = frame.sort_values("customer_id").reset_index(drop=True)
    names = list(shares)
    weights = np.array([shares[n] for n in names])
    variant = pd.Series("holdout", index=frame.index, dtype=object)
    for stratum, idx in frame[~frame["customer_id"].isin(held)].groupby("stratum", sort=True).groups.items():
        rng = np.random.default_rng(_stratum_seed(seed, str(stratum)))
        n = len(idx)
        exact = n * weights
        sizes = np.floor(exact).astype(int)
        left = n - int(sizes.sum())
        if left:
            frac = exact - sizes
            order = np.lexsort((rng.random(len(names)), -frac))  # largest remainder first, random among ties
            sizes[order[:left]] += 1
        labels = np.repeat(np.array(names, dtype=object), sizes)
        variant.loc[idx] = labels[rng.permutation(n)]
    design = {n: shares[n] for n in names}

    def props(row_variant: str, stratum: str, is_held: bool) -> str:
        body: dict[str, Any] = {} if is_held else {ALLOCATION_KEY: design}
        body.update(seed=seed, stratum=stratum, method="held out" if is_held else "stratified random allocation")
        return json.dumps(body)

    is_held = frame["customer_id"].isin(held)
    return pd.DataFrame(
        {
            "assignment_id": frame["customer_id"] + f":{experiment}",
            "customer_id": frame["customer_id"],
            "user_id": pd.Series([None] * len(frame), dtype=object),
            "experiment": experiment,
            "variant": variant.astype(str),
            "assigned_at": pd.Series([at] * len(frame), dtype="datetime64[ns, UTC]"),
            "properties": [props(v, s, h) for v, s, h in zip(variant, frame["stratum"], is_held, strict=True)],
        }
    )
