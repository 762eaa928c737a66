"""Cohort comparison: rates with intervals, the right test, multiple-testing control.

Customers are grouped into cohorts by signup period (``cohort_freq``: week,
month, quarter or year), any ``customers`` column (``segment`` — the journey
definition's ``segment_field`` —, ``plan``, ...), any ``customers.properties``
key, any event property (``property:<key>``: the value on the customer's first
event that has it), acquisition channel, or labels supplied by the caller
(e.g. behavioural segments from :mod:`journeylib.customers.segments`). A name
that is none of these raises, naming what exists. For each cohort:

* **conversion rate** — converted within ``conversion_days`` of signup, among
  customers with that much follow-up (Wilson interval); compared with the
  chi-square test (k × 2; Fisher's exact test for a sparse 2 × 2) and pairwise
  two-proportion z-tests (Fisher when an expected count is below 5) with a
  Newcombe interval for the difference;
* **stage conversion** — entered each stage within ``stage_days`` of signup,
  same statistics;
* **churn rate** — 1 − Kaplan–Meier retention ``churn_days`` after
  conversion, among converted customers, censored at ``as_of`` (lifelines;
  log-log interval); compared with the log-rank test;
* **time to value** — median days from signup to the value stage among
  customers who reached it within ``stage_days`` (the share who did is the
  stage metric), with a distribution-free interval; Kruskal–Wallis, pairwise
  Mann–Whitney U;
* **days active** in the first ``activity_days`` — the same statistics.

Omnibus p-values are Benjamini–Hochberg adjusted across the metrics of a call,
pairwise p-values across all pairs of all metrics. A cohort below
``min_support`` customers gets a row whose ``status`` and ``reason`` say so (and
a :class:`~journeylib.exceptions.StatisticalWarning`), and is left out of the
tests; a metric with fewer than two supported cohorts is not tested.
"""

from __future__ import annotations

import itertools
import json
import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from lifelines import KaplanMeierFitter
from lifelines.statistics import logrank_test, multivariate_logrank_test
from scipy import stats

from journeylib.cache import ResultCache
from journeylib.config.journey import JourneyDefinition
from journeylib.customers.features import (
    attribute_column,
    build_features,
    customer_attributes_data,
    customer_outcomes_data,
    feature_slug,
)
from journeylib.customers.kpis import value_stage_of
from journeylib.exceptions import EmptyResultError, StatisticalWarning
from journeylib.journey.stages import milestones_data
from journeylib.scope import Scope
from journeylib.stats import (
    bh_qvalues,
    median_interval,
    newcombe_difference_interval,
    two_proportion_z_test,
    wilson_interval,
)
from journeylib.store import Store
from journeylib.store.dialect import sql_cast, sql_json_text
from journeylib.store.schema import CUSTOMERS
from journeylib.words import event_label, join_words, plural

__all__ = [
    "COHORT_DIMENSIONS",
    "COHORT_FREQUENCIES",
    "METRIC_COLUMNS",
    "OUTCOME_METRICS",
    "PAIRWISE_COLUMNS",
    "cohort_customers_data",
    "cohort_metrics_data",
    "cohort_pairwise_data",
    "retention_curves_data",
    "select_metrics",
]

#: Named cohort dimensions (plus any ``customers`` column or properties key, and ``property:<key>``).
COHORT_DIMENSIONS: tuple[str, ...] = ("signup_period", "segment", "plan", "channel", "labels")
_CHANNEL_KEYS = ("channel", "acquisition_channel")
_MISSING = "(none)"
#: Signup-period lengths of ``cohort_freq``, by name, with the pandas period alias each means.
COHORT_FREQUENCIES: dict[str, str] = {"week": "W", "month": "M", "quarter": "Q", "year": "Y"}
_FREQ_ALIASES = {alias: alias for alias in COHORT_FREQUENCIES.values()} | {"W-SUN": "W", "A": "Y"}
#: Event rows read per event name to list the event property keys in an error message.
_KEY_SAMPLE_ROWS = 50

#: The metrics that describe each outcome (``stage`` = every stage metric).
OUTCOME_METRICS: dict[str, tuple[str, ...]] = {
    "conversion": ("conversion_rate", "stage", "time_to_value_days"),
    "churn": ("churn_rate", "days_active"),
    "expansion": ("stage",),
}

#: Columns of :func:`cohort_metrics_data`.
METRIC_COLUMNS: tuple[str, ...] = (
    "by", "cohort", "metric", "kind", "n", "events", "value", "ci_low", "ci_high", "status", "reason",
    "test", "statistic", "p_value", "q_value", "significant", "cohorts_tested", "alpha", "min_support",
)
#: Columns of :func:`cohort_pairwise_data`.
PAIRWISE_COLUMNS: tuple[str, ...] = (
    "by", "metric", "cohort_a", "cohort_b", "n_a", "n_b", "value_a", "value_b", "difference", "diff_ci_low",
    "diff_ci_high", "effect", "effect_name", "test", "statistic", "p_value", "q_value", "significant", "alpha",
)


def _resolve_by(by: str) -> str:
    if not isinstance(by, str) or not by.strip() or by.strip() == "property:":
        msg = (
            f"by must be one of {', '.join(COHORT_DIMENSIONS)}, a customers column, a customers.properties key or "
            f"property:<key>; got {by!r}"
        )
        raise ValueError(msg)
    return by.strip()


def _resolve_freq(cohort_freq: str) -> str:
    """Return the pandas period alias of a ``cohort_freq`` (``week``/``month``/``quarter``/``year`` or W/M/Q/Y)."""
    text = str(cohort_freq).strip()
    alias = COHORT_FREQUENCIES.get(text.lower()) or _FREQ_ALIASES.get(text.upper())
    if alias is None:
        names = ", ".join(f"{k} ({v})" for k, v in COHORT_FREQUENCIES.items())
        msg = f"cohort_freq must be one of {names}; got {cohort_freq!r}"
        raise ValueError(msg)
    return alias


def _customer_property_exists(store: Store, key: str) -> bool:
    text = sql_json_text("properties", key)
    got = store.query(f"SELECT count(*) AS n FROM customers WHERE {text} IS NOT NULL AND {text} <> ''")
    return int(got["n"].iloc[0]) > 0


def _event_property_exists(store: Store, key: str) -> bool:
    text = sql_json_text("properties", key)
    got = store.query(f"SELECT count(*) AS n FROM (SELECT 1 AS one FROM events WHERE {text} IS NOT NULL AND {text} <> '' LIMIT 1)")
    return int(got["n"].iloc[0]) > 0


def _json_keys(texts: Any) -> list[str]:
    keys: set[str] = set()
    for text in texts:
        try:
            obj = json.loads(text) if isinstance(text, str) else None
        except ValueError:
            continue
        if isinstance(obj, dict):
            keys.update(str(k) for k in obj)
    return sorted(keys)


def _unknown_dimension(store: Store, by: str, reason: str = "") -> ValueError:
    """Build the error for a ``by`` that is no dimension, column or property, naming what exists."""
    columns = [c for c in CUSTOMERS.names if c != "properties"]
    cust_keys = _json_keys(store.query(f"SELECT {sql_cast('properties', 'text')} AS p FROM customers WHERE properties IS NOT NULL")["p"])
    sample = store.query(
        f"""SELECT p FROM (SELECT {sql_cast('properties', 'text')} AS p,
                   row_number() OVER (PARTITION BY event ORDER BY timestamp, event_id) AS rn
                   FROM events WHERE properties IS NOT NULL) WHERE rn <= {_KEY_SAMPLE_ROWS}"""
    )
    event_keys = _json_keys(sample["p"])
    msg = (
        f"{reason or f'by={by!r} is no cohort dimension, customers column, customers.properties key or event property key of this store.'} "
        f"Dimensions: {', '.join(d for d in COHORT_DIMENSIONS if d != 'channel')}; customers columns: {', '.join(columns)}; "
        f"customers.properties keys: {', '.join(cust_keys) or '(none)'}; event property keys (seen in up to "
        f"{_KEY_SAMPLE_ROWS} events per event name; use property:<key>): {', '.join(event_keys) or '(none)'}."
    )
    return ValueError(msg)


def _event_property_values(store: Store, scope: Scope, key: str) -> pd.Series:
    """Per customer in scope, the value of event property *key* on their first event (in the scope's events) that has it."""
    text = sql_json_text("e.properties", key)
    got = store.query(
        f"""SELECT customer_id, v FROM (
                SELECT e.customer_id, {text} AS v,
                       row_number() OVER (PARTITION BY e.customer_id ORDER BY e.timestamp, e.event_id) AS rn
                FROM ({scope.events_sql()}) e WHERE {text} IS NOT NULL AND {text} <> ''
            ) WHERE rn = 1"""
    )
    return got.set_index("customer_id")["v"].astype(str)


def cohort_customers_data(
    store: Store,
    *,
    definition: JourneyDefinition,
    by: str = "segment",
    as_of: Any = None,
    segment: str | None = None,
    plan: str | None = None,
    signup_from: Any = None,
    signup_to: Any = None,
    sample_n: int = 0,
    random_state: int = 0,
    scope: Scope | None = None,
    cache: ResultCache | None = None,
    cohort_freq: str = "Q",
    labels: pd.DataFrame | None = None,
    value_stage: str | None = None,
    activity_days: int = 14,
) -> pd.DataFrame:
    """Return one row per customer in scope with their cohort and the times cohorts are compared on.

    Parameters
    ----------
    store : Store
        The canonical store.
    definition : JourneyDefinition
        Stages and outcomes (``conversion``/``churn`` are found by their
        customer fields ``converted_at``/``churned_at``).
    by : str, default "segment"
        Resolved in this order: ``signup_period`` (period of
        ``cohort_freq``) or ``labels``; a ``customers`` column (``segment``
        is the values of the definition's ``segment_field``; ``plan`` is the
        exported plan: ``trial`` until conversion); ``channel``: the
        acquisition channel (customers property ``channel`` or
        ``acquisition_channel``); a ``customers.properties`` key that some
        customer has; ``property:<key>``: a ``customers.properties`` key when
        some customer has it, else an event property (each customer's value
        on their first event in scope — inside the scope's event window, if
        any — that has it).
    as_of, segment, plan, signup_from, signup_to, sample_n, random_state, scope, cache
        Scope and shared results, as in :func:`journeylib.customers.features.build_features`.
    cohort_freq : str, default "Q"
        Length of signup periods: ``week``, ``month``, ``quarter``, ``year``
        (or the pandas aliases ``W``, ``M``, ``Q``, ``Y``).
    labels : pandas.DataFrame, optional
        With ``by="labels"``: ``customer_id`` and ``cohort`` (e.g. segment
        names); customers without a label are left out.
    value_stage : str, optional
        Stage that marks "value" for time to value; default the first stage
        whose name contains "value", else the third stage (or the last).
    activity_days : int, default 14
        Window of ``days_active``.

    Returns
    -------
    pandas.DataFrame
        ``customer_id``, ``cohort`` (text; ``(none)`` when missing),
        ``signup_at``, ``converted_at``, ``churned_at`` (NaT unless by as_of),
        ``followup_days`` (signup to as_of), ``entered_<stage>_days`` (days
        from signup to entering each stage, NaN if not by as_of),
        ``value_stage`` (its name), ``days_active`` (days with activity in
        the first ``activity_days``; NaN if that window is not complete), and
        ``as_of``.

    Raises
    ------
    ValueError
        If ``by`` names nothing in the store (the message lists the
        dimensions, customers columns, customers.properties keys and event
        property keys that exist), ``cohort_freq`` is unknown, ``labels`` is
        missing or malformed, or the value stage is not a stage.
    EmptyResultError
        If no customer is in scope.
    """
    by = _resolve_by(by)
    cohort_freq = _resolve_freq(cohort_freq)
    scope = Scope.resolve(store, scope, function="cohort_customers_data", as_of=as_of, segment=segment, plan=plan,
                          signup_from=signup_from, signup_to=signup_to, sample_n=sample_n, random_state=random_state,
                          segment_field=definition.segment_field)

    def build() -> pd.DataFrame:
        return _cohort_customers(store, definition, by, scope, cache, cohort_freq=cohort_freq, labels=labels,
                                 value_stage=value_stage, activity_days=activity_days)

    if cache is None:
        return build()
    key = (id(store), definition.model_dump_json(), by, scope, cohort_freq, id(labels) if labels is not None else None,
           value_stage, activity_days)
    return cache.get("cohort_customers", key, build)


def _cohort_customers(
    store: Store,
    definition: JourneyDefinition,
    by: str,
    scope: Scope,
    cache: ResultCache | None,
    *,
    cohort_freq: str,
    labels: pd.DataFrame | None,
    value_stage: str | None,
    activity_days: int,
) -> pd.DataFrame:
    columns = set(CUSTOMERS.names) - {"properties"}
    outs = customer_outcomes_data(store, definition=definition, scope=scope)
    if by == "signup_period":
        cohort = outs["signup_at"].dt.tz_convert("UTC").dt.tz_localize(None).dt.to_period(cohort_freq).astype(str)
    elif by == "labels":
        if labels is None or not {"customer_id", "cohort"} <= set(labels.columns):
            msg = "by='labels' needs labels=DataFrame with customer_id and cohort columns (e.g. segment names)"
            raise ValueError(msg)
        cohort = outs["customer_id"].map(labels.drop_duplicates("customer_id").set_index("customer_id")["cohort"])
    elif by in ("segment", "plan"):  # the scoped customers' segment is the definition's segment_field
        cohort = outs[by]
    else:
        key = by.split(":", 1)[1] if by.startswith("property:") else by
        if by in columns:
            name = by
        elif by == "channel":
            name = next((k for k in _CHANNEL_KEYS if _customer_property_exists(store, k)), "")
            if not name:
                reason = (
                    f"by='channel' needs a customer property {' or '.join(_CHANNEL_KEYS)} (the acquisition channel); "
                    "no customer has one in this store."
                )
                raise _unknown_dimension(store, by, reason)
        elif _customer_property_exists(store, key):
            name = key
        elif by.startswith("property:") and _event_property_exists(store, key):
            name = ""
        else:
            raise _unknown_dimension(store, by)
        if name:
            attrs = customer_attributes_data(store, names=[name], scope=scope)
            cohort = outs["customer_id"].map(attrs.set_index("customer_id")[attribute_column(name)])
        else:
            cohort = outs["customer_id"].map(_event_property_values(store, scope, key))
    frame = pd.DataFrame(
        {
            "customer_id": outs["customer_id"],
            "cohort": cohort.astype(object).where(cohort.notna(), _MISSING).astype(str),
            "signup_at": outs["signup_at"],
            "converted_at": outs["converted_at"],
            "churned_at": outs["churned_at"],
        }
    )
    if by == "labels":
        frame = frame[cohort.notna().to_numpy()].reset_index(drop=True)
    frame["followup_days"] = (scope.as_of - frame["signup_at"]).dt.total_seconds() / 86400.0
    everyone = scope.replace(sample_n=0, random_state=0)  # the sample is already in the outcome rows
    ms = milestones_data(store, definition=definition, scope=everyone, cache=cache)
    ms = ms[ms["customer_id"].isin(frame["customer_id"])]
    days = (ms["entered_at"] - ms["signup_at"]).dt.total_seconds() / 86400.0
    wide = pd.DataFrame({"customer_id": ms["customer_id"], "stage": ms["stage"].astype(str), "days": days}).pivot_table(
        index="customer_id", columns="stage", values="days", aggfunc="min"
    )
    for name in definition.stage_names:
        col = f"entered_{feature_slug(name)}_days"
        frame[col] = frame["customer_id"].map(wide[name]) if name in wide.columns else np.nan
    vs = value_stage_of(definition, value_stage or "")
    frame["value_stage"] = vs
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StatisticalWarning)
        try:
            feats = build_features(store, window_days=activity_days, scope=everyone, event_types=[], cache=cache)
            act = feats.data.set_index("customer_id")[f"days_active_{activity_days}d"]
            frame["days_active"] = frame["customer_id"].map(act).astype(float)
        except EmptyResultError:
            frame["days_active"] = np.nan
    frame["as_of"] = scope.as_of
    return frame.reset_index(drop=True)


# -- per-metric samples ---------------------------------------------------------------------------
def _proportion_samples(frame: pd.DataFrame, metric: str, conversion_days: float, stage_days: float,
                        definition: JourneyDefinition) -> dict[str, tuple[pd.Series, np.ndarray]]:
    """Per metric: (cohort labels, 0/1 outcomes) of eligible customers."""
    out: dict[str, tuple[pd.Series, np.ndarray]] = {}
    elig = frame["followup_days"] >= conversion_days
    conv_days = (frame["converted_at"] - frame["signup_at"]).dt.total_seconds() / 86400.0
    out["conversion_rate"] = (frame.loc[elig, "cohort"], (conv_days[elig] <= conversion_days).to_numpy(dtype=float))
    elig = frame["followup_days"] >= stage_days
    for name in definition.stage_names[1:]:
        d = frame[f"entered_{feature_slug(name)}_days"]
        out[f"stage:{name}"] = (frame.loc[elig, "cohort"], (d[elig] <= stage_days).to_numpy(dtype=float))
    return out


def _churn_sample(frame: pd.DataFrame) -> pd.DataFrame:
    conv = frame[frame["converted_at"].notna()]
    end = conv["churned_at"].fillna(conv["as_of"])
    return pd.DataFrame(
        {
            "cohort": conv["cohort"],
            "duration": ((end - conv["converted_at"]).dt.total_seconds() / 86400.0).clip(lower=0).to_numpy(),
            "event": conv["churned_at"].notna().to_numpy(),
        }
    )


def _median_samples(frame: pd.DataFrame, stage_days: float) -> dict[str, pd.DataFrame]:
    """Per median metric: cohort and value of the customers it is measured on."""
    vs = str(frame["value_stage"].iloc[0])
    d = frame[f"entered_{feature_slug(vs)}_days"]
    reached = (frame["followup_days"] >= stage_days) & (d <= stage_days)
    act = frame["days_active"].notna()
    return {
        "time_to_value_days": pd.DataFrame({"cohort": frame.loc[reached, "cohort"], "value": d[reached]}),
        "days_active": pd.DataFrame({"cohort": frame.loc[act, "cohort"], "value": frame.loc[act, "days_active"]}),
    }


def _check_common(min_support: Any, alpha: float) -> None:
    if isinstance(min_support, bool) or not isinstance(min_support, (int, np.integer)) or min_support < 1:
        msg = f"min_support must be a positive whole number of customers; got {min_support!r}"
        raise ValueError(msg)
    if not 0 < alpha < 1:
        msg = f"alpha must be between 0 and 1; got {alpha!r}"
        raise ValueError(msg)


def _frame(store: Store, definition: JourneyDefinition, by: str, kw: dict[str, Any]) -> pd.DataFrame:
    return cohort_customers_data(store, definition=definition, by=by, **kw)


def _km_at(duration: np.ndarray, event: np.ndarray, t: float, alpha: float) -> tuple[float, float, float]:
    """Kaplan-Meier S(t) with its interval; NaN when nobody is followed up to t."""
    if len(duration) == 0 or np.nanmax(duration) < t:
        return math.nan, math.nan, math.nan
    kmf = KaplanMeierFitter(alpha=alpha).fit(duration, event)
    s = float(kmf.survival_function_at_times(t).iloc[0])
    ci = kmf.confidence_interval_survival_function_
    row = ci.loc[ci.index <= t].iloc[-1]
    return s, float(row.iloc[0]), float(row.iloc[1])


def cohort_metrics_data(
    store: Store,
    *,
    definition: JourneyDefinition,
    by: str = "segment",
    min_support: int = 30,
    as_of: Any = None,
    segment: str | None = None,
    plan: str | None = None,
    signup_from: Any = None,
    signup_to: Any = None,
    sample_n: int = 0,
    random_state: int = 0,
    scope: Scope | None = None,
    cache: ResultCache | None = None,
    cohort_freq: str = "Q",
    labels: pd.DataFrame | None = None,
    value_stage: str | None = None,
    conversion_days: float = 30,
    stage_days: float = 30,
    churn_days: float = 150,
    activity_days: int = 14,
    metrics: Sequence[str] | None = None,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Compare cohorts on conversion, stage conversion, churn, time to value and activity.

    Parameters
    ----------
    store : Store
        The canonical store.
    definition : JourneyDefinition
        Stages and outcomes.
    by : str, default "segment"
        Cohort dimension (see :func:`cohort_customers_data`).
    min_support : int, default 30
        Fewest customers (the metric's denominator) for a cohort to be
        estimated and tested.
    as_of, segment, plan, signup_from, signup_to, sample_n, random_state, cohort_freq, labels, value_stage, activity_days
        As in :func:`cohort_customers_data`.
    conversion_days : float, default 30
        Conversion counts within this many days of signup; customers with
        less follow-up are left out of that metric.
    stage_days : float, default 30
        Stage conversion: entered within this many days of signup.
    churn_days : float, default 150
        Churn rate = 1 − Kaplan–Meier retention this many days after
        conversion.
    metrics : sequence of str, optional
        Keep only these metrics (names as in the ``metric`` column, or
        ``stage`` for every stage metric).
    alpha : float, default 0.05
        1 - confidence level; FDR level of ``significant``.

    Returns
    -------
    pandas.DataFrame
        One row per metric × cohort (:data:`METRIC_COLUMNS`):

        ``by``, ``cohort``
            The dimension and the cohort label.
        ``metric``, ``kind``
            ``conversion_rate``, ``stage:<name>`` (``proportion``),
            ``churn_rate`` (``survival``), ``time_to_value_days`` and
            ``days_active`` (``median``).
        ``n``
            The denominator: customers with enough follow-up (proportions),
            converted customers (churn), customers who reached the value
            stage within ``stage_days`` (time to value), customers with a
            complete activity window (days active).
        ``events``
            Numerator (proportions) or observed events (survival); NaN for
            medians.
        ``value``, ``ci_low``, ``ci_high``
            The estimate and its 1-alpha interval (Wilson; Kaplan–Meier
            log-log; order-statistic interval of the median).
            NaN when not estimable — see ``reason``.
        ``status``, ``reason``
            ``ok``, ``below_min_support``, ``not_estimable``.
        ``test``, ``statistic``, ``p_value``
            The omnibus test of the metric across supported cohorts
            (``chi2``, ``fisher``, ``logrank``, ``kruskal``), repeated on each
            row of the metric; empty/NaN when fewer than two cohorts qualify.
        ``q_value``, ``significant``
            Benjamini–Hochberg over the metrics of the call; q ≤ alpha.
        ``cohorts_tested``, ``alpha``, ``min_support``
            Cohorts in the test; the settings.

    Raises
    ------
    ValueError
        On an unknown ``by``/metric or out-of-range settings.
    EmptyResultError
        If no customer is in scope.

    Warns
    -----
    StatisticalWarning
        When a cohort is below ``min_support`` or a metric cannot be tested.
    """
    _check_common(min_support, alpha)
    kw = dict(scope=scope, cache=cache, as_of=as_of, segment=segment, plan=plan, signup_from=signup_from, signup_to=signup_to, sample_n=sample_n,
              random_state=random_state, cohort_freq=cohort_freq, labels=labels, value_stage=value_stage,
              activity_days=activity_days)
    frame = _frame(store, definition, by, kw)
    cohorts = sorted(frame["cohort"].unique())
    rows: list[dict[str, Any]] = []
    tests: dict[str, tuple[str, float, float, int]] = {}
    low: set[str] = set()

    def support(n: int) -> tuple[str, str]:
        if n < min_support:
            return "below_min_support", f"{n} customers; at least {min_support} needed"
        return "ok", ""

    for metric, (lab, y) in _proportion_samples(frame, "", conversion_days, stage_days, definition).items():
        ok_cohorts = []
        for c in cohorts:
            yy = y[(lab == c).to_numpy()]
            n, k = len(yy), int(yy.sum())
            st, reason = support(n)
            w_lo, w_hi = wilson_interval([k], [n], alpha=alpha)
            val, p_lo, p_hi = (k / n if n else math.nan), float(w_lo[0]), float(w_hi[0])
            if st != "ok":
                low.add(c)
                val, p_lo, p_hi = math.nan, math.nan, math.nan
            else:
                ok_cohorts.append(c)
            rows.append({"cohort": c, "metric": metric, "kind": "proportion", "n": n, "events": k, "value": val,
                         "ci_low": p_lo, "ci_high": p_hi, "status": st, "reason": reason})
        if len(ok_cohorts) >= 2:
            tbl = np.array([[int(y[(lab == c).to_numpy()].sum()), int((1 - y[(lab == c).to_numpy()]).sum())] for c in ok_cohorts])
            if tbl[:, 0].sum() == 0 or tbl[:, 1].sum() == 0:
                pass  # no events (or only events): nothing to test
            elif tbl.shape[0] == 2 and stats.contingency.expected_freq(tbl).min() < 5:
                tests[metric] = ("fisher", math.nan, float(stats.fisher_exact(tbl).pvalue), 2)
            else:
                chi = stats.chi2_contingency(tbl, correction=False)
                tests[metric] = ("chi2", float(chi.statistic), float(chi.pvalue), len(ok_cohorts))
    churn = _churn_sample(frame)
    ok_cohorts = []
    for c in cohorts:
        s = churn[churn["cohort"] == c]
        n = len(s)
        st, reason = support(n)
        sv, lo, hi = _km_at(s["duration"].to_numpy(), s["event"].to_numpy(), churn_days, alpha) if st == "ok" else (math.nan,) * 3
        if st == "ok" and not math.isfinite(sv):
            st, reason = "not_estimable", f"no converted customer followed for {churn_days:g} days"
        if st == "below_min_support":
            low.add(c)
        else:
            ok_cohorts.append(c)
        rows.append({"cohort": c, "metric": "churn_rate", "kind": "survival", "n": n, "events": int(s["event"].sum()),
                     "value": 1 - sv, "ci_low": 1 - hi, "ci_high": 1 - lo, "status": st, "reason": reason})
    sub = churn[churn["cohort"].isin(ok_cohorts)]
    if len(ok_cohorts) >= 2 and sub["event"].any():
        res = multivariate_logrank_test(sub["duration"], sub["cohort"], sub["event"])
        tests["churn_rate"] = ("logrank", float(res.test_statistic), float(res.p_value), len(ok_cohorts))
    for metric, sample in _median_samples(frame, stage_days).items():
        groups = []
        for c in cohorts:
            v = sample.loc[sample["cohort"] == c, "value"].to_numpy(dtype=float)
            st, reason = support(len(v))
            med, lo, hi = median_interval(v, alpha=alpha) if st == "ok" else (math.nan,) * 3
            if st == "ok":
                groups.append(v)
            else:
                low.add(c)
            rows.append({"cohort": c, "metric": metric, "kind": "median", "n": len(v), "events": math.nan,
                         "value": med, "ci_low": lo, "ci_high": hi, "status": st, "reason": reason})
        if len(groups) >= 2 and len(np.unique(np.concatenate(groups))) > 1:
            kr = stats.kruskal(*groups)
            tests[metric] = ("kruskal", float(kr.statistic), float(kr.pvalue), len(groups))
    out = pd.DataFrame(rows)
    if metrics is not None:
        wanted = set(metrics)
        known = set(out["metric"]) | {"stage"}
        unknown = wanted - known
        if unknown:
            msg = f"unknown metric(s) {sorted(unknown)}; available: {sorted(known)}"
            raise ValueError(msg)
        keep = out["metric"].isin(wanted) | (out["metric"].str.startswith("stage:") & ("stage" in wanted))
        out = out[keep].reset_index(drop=True)
    if low:
        warnings.warn(
            f"{plural(len(low), 'cohort')} ({join_words(sorted(low))}) {'has' if len(low) == 1 else 'have'} fewer than "
            f"{min_support} customers for some metrics; those rows are not estimated or tested.",
            StatisticalWarning,
            stacklevel=2,
        )
    untested = sorted(set(out["metric"]) - set(tests))
    if untested:
        warnings.warn(
            f"{plural(len(untested), 'metric')} ({join_words(event_label(m) for m in untested)}) "
            f"{'is' if len(untested) == 1 else 'are'} not tested: fewer than two cohorts have {min_support} or more "
            "customers, or there are no events.",
            StatisticalWarning,
            stacklevel=2,
        )
    present = [m for m in out["metric"].unique() if m in tests]
    q = dict(zip(present, bh_qvalues([tests[m][2] for m in present]), strict=True))
    out["test"] = out["metric"].map(lambda m: tests.get(m, ("",))[0])
    out["statistic"] = out["metric"].map(lambda m: tests[m][1] if m in tests else math.nan)
    out["p_value"] = out["metric"].map(lambda m: tests[m][2] if m in tests else math.nan)
    out["q_value"] = out["metric"].map(lambda m: q.get(m, math.nan))
    out["significant"] = out["q_value"].le(alpha).fillna(False).astype(bool)
    out["cohorts_tested"] = out["metric"].map(lambda m: tests[m][3] if m in tests else 0).astype("int64")
    out["by"] = by
    out["alpha"] = alpha
    out["min_support"] = int(min_support)
    out["n"] = out["n"].astype("int64")
    out["events"] = out["events"].astype(float)
    return out.loc[:, list(METRIC_COLUMNS)]


def select_metrics(metrics: pd.DataFrame, *, outcome: str) -> pd.DataFrame:
    """Keep the rows of a cohort metrics table that describe one outcome.

    Parameters
    ----------
    metrics : pandas.DataFrame
        The result of :func:`cohort_metrics_data`.
    outcome : str
        A key of :data:`OUTCOME_METRICS` (``conversion``, ``churn``,
        ``expansion``); any other value keeps every row.

    Returns
    -------
    pandas.DataFrame
        The matching rows, same columns.
    """
    wanted = OUTCOME_METRICS.get(outcome)
    if wanted is None:
        return metrics.copy()
    keep = metrics["metric"].isin(wanted) | (metrics["metric"].str.startswith("stage:") & ("stage" in wanted))
    return metrics[keep].reset_index(drop=True)


def cohort_pairwise_data(
    store: Store,
    *,
    definition: JourneyDefinition,
    by: str = "segment",
    min_support: int = 30,
    as_of: Any = None,
    segment: str | None = None,
    plan: str | None = None,
    signup_from: Any = None,
    signup_to: Any = None,
    sample_n: int = 0,
    random_state: int = 0,
    scope: Scope | None = None,
    cache: ResultCache | None = None,
    cohort_freq: str = "Q",
    labels: pd.DataFrame | None = None,
    value_stage: str | None = None,
    conversion_days: float = 30,
    stage_days: float = 30,
    activity_days: int = 14,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Compare every pair of supported cohorts on each metric, with FDR control.

    Parameters
    ----------
    store, definition, by, min_support, as_of, segment, plan, signup_from, signup_to, sample_n, random_state, cohort_freq, labels, value_stage, conversion_days, stage_days, activity_days, alpha
        As in :func:`cohort_metrics_data`.

    Returns
    -------
    pandas.DataFrame
        One row per metric × pair of cohorts that both have ``min_support``
        customers (:data:`PAIRWISE_COLUMNS`): ``cohort_a``/``cohort_b``;
        ``n_a``/``n_b`` (denominators); ``value_a``/``value_b`` (rates, or
        median days active; for survival metrics the share with the event);
        ``difference`` (a − b) with ``diff_ci_low``/``diff_ci_high``
        (Newcombe interval for proportions; NaN otherwise); ``effect`` and
        ``effect_name`` (``risk_ratio`` for proportions, ``rank_biserial`` for
        medians, empty for churn); ``test`` (``two_proportion_z``,
        ``fisher``, ``logrank``, ``mann_whitney``); ``statistic``;
        ``p_value``; ``q_value`` (Benjamini–Hochberg over every row);
        ``significant`` (q ≤ alpha); ``by``; ``alpha``.

    Raises
    ------
    ValueError
        On an unknown ``by`` or out-of-range settings.
    """
    _check_common(min_support, alpha)
    kw = dict(scope=scope, cache=cache, as_of=as_of, segment=segment, plan=plan, signup_from=signup_from, signup_to=signup_to, sample_n=sample_n,
              random_state=random_state, cohort_freq=cohort_freq, labels=labels, value_stage=value_stage,
              activity_days=activity_days)
    frame = _frame(store, definition, by, kw)
    rows: list[dict[str, Any]] = []
    for metric, (lab, y) in _proportion_samples(frame, "", conversion_days, stage_days, definition).items():
        sizes = lab.value_counts()
        ok = sorted(str(c) for c, n in sizes.items() if n >= min_support)
        for ca, cb in itertools.combinations(ok, 2):
            ya, yb = y[(lab == ca).to_numpy()], y[(lab == cb).to_numpy()]
            ka, kb, na, nb = int(ya.sum()), int(yb.sum()), len(ya), len(yb)
            pa, pb = ka / na, kb / nb
            tbl = np.array([[ka, na - ka], [kb, nb - kb]])
            if (ka + kb) in (0, na + nb):
                test, stat, p = "", math.nan, math.nan
            elif stats.contingency.expected_freq(tbl).min() < 5:
                test, stat, p = "fisher", math.nan, float(stats.fisher_exact(tbl).pvalue)
            else:
                zval, p = two_proportion_z_test(ka, na, kb, nb)
                test, stat = "two_proportion_z", zval
            lo, hi = newcombe_difference_interval(ka, na, kb, nb, alpha=alpha)
            rr = pa / pb if pb > 0 else math.nan
            rows.append({"metric": metric, "cohort_a": ca, "cohort_b": cb, "n_a": na, "n_b": nb, "value_a": pa,
                         "value_b": pb, "difference": pa - pb, "diff_ci_low": float(lo), "diff_ci_high": float(hi),
                         "effect": rr, "effect_name": "risk_ratio", "test": test, "statistic": stat, "p_value": p})
    sample = _churn_sample(frame)
    sizes = sample["cohort"].value_counts()
    ok = sorted(str(c) for c, n in sizes.items() if n >= min_support)
    for ca, cb in itertools.combinations(ok, 2):
        sa, sb = sample[sample["cohort"] == ca], sample[sample["cohort"] == cb]
        if not (sa["event"].any() or sb["event"].any()):
            continue
        res = logrank_test(sa["duration"], sb["duration"], sa["event"], sb["event"])
        rows.append({"metric": "churn_rate", "cohort_a": ca, "cohort_b": cb, "n_a": len(sa), "n_b": len(sb),
                     "value_a": float(sa["event"].mean()), "value_b": float(sb["event"].mean()),
                     "difference": float(sa["event"].mean() - sb["event"].mean()), "diff_ci_low": math.nan,
                     "diff_ci_high": math.nan, "effect": math.nan, "effect_name": "", "test": "logrank",
                     "statistic": float(res.test_statistic), "p_value": float(res.p_value)})
    for metric, msample in _median_samples(frame, stage_days).items():
        sizes = msample["cohort"].value_counts()
        ok = sorted(str(c) for c, n in sizes.items() if n >= min_support)
        for ca, cb in itertools.combinations(ok, 2):
            va = msample.loc[msample["cohort"] == ca, "value"].to_numpy(dtype=float)
            vb = msample.loc[msample["cohort"] == cb, "value"].to_numpy(dtype=float)
            if len(np.unique(np.concatenate([va, vb]))) < 2:
                continue
            mw = stats.mannwhitneyu(va, vb, alternative="two-sided")
            rb = 2 * float(mw.statistic) / (len(va) * len(vb)) - 1
            rows.append({"metric": metric, "cohort_a": ca, "cohort_b": cb, "n_a": len(va), "n_b": len(vb),
                         "value_a": float(np.median(va)), "value_b": float(np.median(vb)),
                         "difference": float(np.median(va) - np.median(vb)), "diff_ci_low": math.nan,
                         "diff_ci_high": math.nan, "effect": rb, "effect_name": "rank_biserial", "test": "mann_whitney",
                         "statistic": float(mw.statistic), "p_value": float(mw.pvalue)})
    out = pd.DataFrame(rows, columns=[c for c in PAIRWISE_COLUMNS if c not in ("by", "q_value", "significant", "alpha")])
    if out.empty:
        warnings.warn(
            f"No pair of cohorts has {min_support} or more customers on any metric, so nothing was compared.",
            StatisticalWarning,
            stacklevel=2,
        )
    out["q_value"] = bh_qvalues(out["p_value"])
    out["significant"] = out["q_value"].le(alpha).fillna(False).astype(bool)
    out["by"] = by
    out["alpha"] = alpha
    return out.loc[:, list(PAIRWISE_COLUMNS)]


def retention_curves_data(
    store: Store,
    *,
    definition: JourneyDefinition,
    by: str = "segment",
    min_support: int = 30,
    as_of: Any = None,
    segment: str | None = None,
    plan: str | None = None,
    signup_from: Any = None,
    signup_to: Any = None,
    sample_n: int = 0,
    random_state: int = 0,
    scope: Scope | None = None,
    cache: ResultCache | None = None,
    cohort_freq: str = "Q",
    labels: pd.DataFrame | None = None,
    step_days: int = 7,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Kaplan–Meier retention of paying customers per cohort, censored at as_of.

    Time starts at conversion; a customer who has not churned by ``as_of`` is
    censored there (their follow-up is ``as_of - converted_at``), never
    counted as retained beyond it.

    Parameters
    ----------
    store, definition, by, min_support, as_of, segment, plan, signup_from, signup_to, sample_n, random_state, cohort_freq, labels, alpha
        As in :func:`cohort_metrics_data`. Cohorts with fewer than
        ``min_support`` converted customers get no curve (warned).
    step_days : int, default 7
        Spacing of the returned grid of days.

    Returns
    -------
    pandas.DataFrame
        One row per cohort × day on the grid, up to the cohort's longest
        follow-up: ``by``, ``cohort``, ``day`` (days since conversion),
        ``retention`` (KM S(day)), ``ci_low``/``ci_high`` (log-log
        interval), ``at_risk`` (converted customers still followed and not
        churned at that day), ``churned`` (churns observed by that day),
        ``customers`` (converted customers in the cohort).

    Raises
    ------
    EmptyResultError
        If no cohort has ``min_support`` converted customers.
    """
    _check_common(min_support, alpha)
    kw = dict(scope=scope, cache=cache, as_of=as_of, segment=segment, plan=plan, signup_from=signup_from, signup_to=signup_to, sample_n=sample_n,
              random_state=random_state, cohort_freq=cohort_freq, labels=labels, value_stage=None, activity_days=14)
    frame = _frame(store, definition, by, kw)
    sample = _churn_sample(frame)
    parts = []
    small = []
    for c, s in sample.groupby("cohort", sort=True):
        if len(s) < min_support:
            small.append(str(c))
            continue
        kmf = KaplanMeierFitter(alpha=alpha).fit(s["duration"], s["event"])
        grid = np.arange(0, float(s["duration"].max()) + 1e-9, step_days)
        surv = kmf.survival_function_at_times(grid).to_numpy()
        ci = kmf.confidence_interval_survival_function_
        idx = np.searchsorted(ci.index.to_numpy(), grid, side="right") - 1
        lo = ci.iloc[np.maximum(idx, 0), 0].to_numpy()
        hi = ci.iloc[np.maximum(idx, 0), 1].to_numpy()
        dur = s["duration"].to_numpy()
        ev = s["event"].to_numpy()
        at_risk = (dur[None, :] >= grid[:, None]).sum(axis=1)
        churned = ((dur[None, :] <= grid[:, None]) & ev[None, :]).sum(axis=1)
        parts.append(pd.DataFrame({"cohort": str(c), "day": grid, "retention": surv, "ci_low": lo, "ci_high": hi,
                                   "at_risk": at_risk, "churned": churned, "customers": len(s)}))
    if small:
        warnings.warn(
            f"No retention curve is drawn for {plural(len(small), 'cohort')} ({join_words(small)}): "
            f"{'it has' if len(small) == 1 else 'each has'} fewer than {min_support} converted customers.",
            StatisticalWarning,
            stacklevel=2,
        )
    if not parts:
        msg = f"no cohort by {by} has {min_support} or more converted customers; lower min_support or widen the scope."
        raise EmptyResultError(msg)
    out = pd.concat(parts, ignore_index=True)
    out.insert(0, "by", by)
    return out
