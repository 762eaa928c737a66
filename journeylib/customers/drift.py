"""Drift and freshness: whether customer behaviour has moved away from what the journey map was built on.

Recent sign-up cohorts are compared with the cohorts before them (by default
the latest month of sign-ups against the three months before it). Every
comparison is made on what customers did in the **same window after signup**
(``window_days``), and only customers whose window is complete at ``as_of``
take part: a recent cohort with less follow-up would otherwise look as if it
did less, reached fewer stages and churned less, whatever its behaviour. The
customers left out for an incomplete window are counted in the notes.

What is compared (``kind`` of a row of :func:`drift_data`):

``journey_mix``
    The furthest stage reached within the window (a customer's stage path by
    then: the stages are ordered, so the furthest stage names the path).
    Chi-square test of homogeneity on customers, Jensen–Shannon distance as
    the size of the shift.
``feature``
    Each early-behaviour column the behavioural segments are built from
    (:func:`journeylib.customers.segments.early_behaviour_matrix`): the
    population stability index (PSI) over the reference cohort's deciles, with
    a chi-square test on the same bins for the noise. Standard reading of the
    PSI: below 0.1 no meaningful shift, 0.1–0.25 a moderate shift worth a look,
    above 0.25 a major shift (``severity`` in ``detail``).
``event_property``
    For each event whose JSON ``properties`` carry a key with 2–12 values (a
    device, a feature, a plan tier: found from the data, not named here), the
    mix of those values in the window. Jensen–Shannon distance between the
    cohorts' pooled mixes; its p-value comes from permuting customers (not
    events) between the cohorts, because events of one customer are not
    independent.
``segments``
    The behavioural segments are fitted on the reference cohort
    (:class:`journeylib.customers.segments.BehaviouralSegmenter`) and the
    current cohort is assigned to them: the segment mix is tested like the
    journey mix (a vanished or grown segment), and the share of current
    customers farther from every reference segment centre than 95% of the
    reference customers are from theirs is tested against 5% (a new cluster).
    The segments are also re-fitted on the current cohort alone and the number
    chosen is reported beside the reference's (information, never flagged: the
    choice of k is itself noisy on small cohorts).
``staleness``
    Event names first seen in the current period that the definition does not
    use; the share of the current cohort's events (in the window) whose name
    no stage or outcome uses, as a PSI over customers; the share of customers
    matching no stage within the window (two-proportion test).
``calibration``
    With a risk table (predicted probability and observed outcome per customer
    and signup time), the calibration gap (mean observed − mean predicted) per
    period, tested with a two-proportion test of observed rates against the
    predictions.

A row is ``flagged`` when its shift is both **large** (``value`` at or
beyond ``threshold``) and **not noise**: the Benjamini–Hochberg q-value over
every p-value of the table is below ``alpha``. Items with fewer than
``min_count`` customers in either cohort are reported with a note and never
flagged.
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps
from scipy.spatial.distance import jensenshannon

from journeylib.cache import ResultCache
from journeylib.config.journey import JourneyDefinition
from journeylib.customers.features import CustomerFeatures, build_features, feature_slug
from journeylib.customers.segments import (
    BehaviouralSegmenter,
    behaviour_matrix_data,
    early_behaviour_matrix,
    informative_columns,
)
from journeylib.exceptions import EmptyResultError, StatisticalWarning
from journeylib.scope import Scope
from journeylib.stats import bh_qvalues, two_proportion_z_test
from journeylib.store import Store
from journeylib.store.dialect import sql_add_days, sql_cast, sql_json_text, sql_quote, sql_timestamp
from journeylib.words import event_label

__all__ = [
    "DRIFT_COLUMNS",
    "DRIFT_DETAIL_COLUMNS",
    "Drift",
    "drift_data",
    "drift_periods",
    "js_distance_permutation_test",
    "population_stability_index",
]

#: The columns of the ``drift`` artifact, in order.
DRIFT_COLUMNS: list[str] = ["kind", "item", "periods", "statistic", "value", "threshold", "flagged"]
#: Every column of :attr:`Drift.table`.
DRIFT_DETAIL_COLUMNS: list[str] = [*DRIFT_COLUMNS, "p_value", "q_value", "n_current", "n_reference", "detail"]

_MAX_PROPERTY_LEVELS = 12
_PROPERTY_MIN_COVERAGE = 0.5
_KEY_SAMPLE_ROWS = 2000


@dataclass(frozen=True)
class Drift:
    """The drift table and how it was made.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per compared item; columns :data:`DRIFT_DETAIL_COLUMNS` (see :func:`drift_data`).
    periods : pandas.DataFrame
        ``period`` (``reference`` or ``current``), ``signup_from``, ``signup_to`` (``[from, to)``),
        ``signups`` (customers in scope who signed up then), ``in_experiment`` (of them, enrolled in an
        experiment by ``as_of``: left out), ``compared`` (with a complete behaviour window, not in an
        experiment), ``left_out`` (window not complete at ``as_of``).
    notes : list of str
        Plain sentences with counts: customers left out, items not tested and why.
    window_days : int
        The behaviour window every comparison uses.
    """

    table: pd.DataFrame
    periods: pd.DataFrame
    notes: list[str]
    window_days: int

    @property
    def flagged(self) -> pd.DataFrame:
        """The flagged rows of :attr:`table`."""
        return self.table[self.table["flagged"]].reset_index(drop=True)


def population_stability_index(reference: Any, current: Any, *, bins: int = 10) -> tuple[float, float, int]:
    """Compute the population stability index of *current* against *reference*, with a chi-square test on the same bins.

    The bins are the reference's quantiles (ties merged, so a count that is
    mostly 0 gets few bins); each bin's share gets 0.5 added to its count
    before the shares are taken, so an empty bin does not make the index
    infinite. PSI = Σ (c − r) · ln(c / r) over bins of the shares.

    Parameters
    ----------
    reference, current : array-like of float
        The values of the two cohorts (NaN dropped).
    bins : int, default 10
        Quantile bins of the reference (fewer when values tie).

    Returns
    -------
    tuple of (float, float, int)
        The PSI, the chi-square p-value of homogeneity of the binned counts
        (1.0 when only one bin remains) and the number of bins.

    Raises
    ------
    ValueError
        If either cohort has no value, or ``bins`` is below 2.

    Examples
    --------
    >>> psi, p, k = population_stability_index([0, 1, 2, 3] * 25, [0, 1, 2, 3] * 25)
    >>> round(psi, 6), k
    (0.0, 4)
    """
    if bins < 2:
        msg = f"population_stability_index: bins must be at least 2; got {bins}"
        raise ValueError(msg)
    ref = np.asarray(reference, dtype=float)
    cur = np.asarray(current, dtype=float)
    ref, cur = ref[np.isfinite(ref)], cur[np.isfinite(cur)]
    if not len(ref) or not len(cur):
        msg = f"population_stability_index: both cohorts need values; got {len(ref)} reference and {len(cur)} current"
        raise ValueError(msg)
    edges = np.unique(np.quantile(ref, np.linspace(0, 1, bins + 1)[1:-1]))
    # right=True: a bin holds values <= its upper edge, so a spike at 0 is one bin
    r_counts = np.bincount(np.searchsorted(edges, ref, side="left"), minlength=len(edges) + 1)
    c_counts = np.bincount(np.searchsorted(edges, cur, side="left"), minlength=len(edges) + 1)
    keep = (r_counts + c_counts) > 0
    r_counts, c_counts = r_counts[keep], c_counts[keep]
    r_share = (r_counts + 0.5) / (r_counts + 0.5).sum()
    c_share = (c_counts + 0.5) / (c_counts + 0.5).sum()
    psi = float(np.sum((c_share - r_share) * np.log(c_share / r_share)))
    if len(r_counts) < 2:
        return psi, 1.0, len(r_counts)
    p = float(sps.chi2_contingency(np.vstack([r_counts, c_counts]))[1])
    return psi, p, len(r_counts)


def js_distance_permutation_test(
    counts: np.ndarray, in_current: np.ndarray, *, n_permutations: int = 999, random_state: int = 0
) -> tuple[float, float]:
    """Jensen–Shannon distance between two cohorts' pooled category mixes, with a customer-level permutation p-value.

    Parameters
    ----------
    counts : numpy.ndarray
        Customers × categories counts (e.g. a customer's logins per device).
    in_current : numpy.ndarray of bool
        One flag per customer: True for the current cohort.
    n_permutations : int, default 999
        Random relabellings of the customers.
    random_state : int, default 0
        Seed.

    Returns
    -------
    tuple of (float, float)
        The distance (base 2, in [0, 1]) and the permutation p-value
        ``(1 + #{permuted ≥ observed}) / (1 + n_permutations)``.

    Raises
    ------
    ValueError
        If the shapes disagree or a cohort has no counts.

    Examples
    --------
    >>> c = np.array([[5, 0], [4, 1], [0, 5], [1, 4]])
    >>> d, p = js_distance_permutation_test(c, np.array([False, False, True, True]), n_permutations=99)
    >>> round(d, 3)
    0.627
    """
    counts = np.asarray(counts, dtype=float)
    flag = np.asarray(in_current, dtype=bool)
    if counts.ndim != 2 or counts.shape[0] != len(flag):
        msg = f"js_distance_permutation_test: counts must be customers × categories with one flag per customer; got {counts.shape} and {flag.shape}"
        raise ValueError(msg)
    if counts[flag].sum() == 0 or counts[~flag].sum() == 0:
        msg = "js_distance_permutation_test: each cohort needs at least one count"
        raise ValueError(msg)

    def distances(labels: np.ndarray) -> np.ndarray:
        cur = labels.astype(float) @ counts
        ref = (~labels).astype(float) @ counts
        cur = cur / np.clip(cur.sum(axis=-1, keepdims=True), 1e-12, None)
        ref = ref / np.clip(ref.sum(axis=-1, keepdims=True), 1e-12, None)
        return np.asarray(jensenshannon(cur, ref, base=2, axis=-1), dtype=float)

    observed = float(distances(flag[None, :])[0])
    rng = np.random.default_rng(random_state)
    perms = np.array([rng.permutation(flag) for _ in range(n_permutations)])
    null = distances(perms)
    p = float((1 + np.sum(null >= observed - 1e-12)) / (1 + n_permutations))
    return observed, p


def drift_periods(as_of: pd.Timestamp, *, period_months: int = 1, reference_periods: int = 3) -> pd.DataFrame:
    """Return the sign-up periods compared: the latest ``period_months`` before *as_of* and the ones before.

    Parameters
    ----------
    as_of : pandas.Timestamp
        End of the current period (exclusive).
    period_months : int, default 1
        Length of the current period in months.
    reference_periods : int, default 3
        How many periods of the same length before it form the reference.

    Returns
    -------
    pandas.DataFrame
        Two rows (``reference``, ``current``): ``period``, ``signup_from``, ``signup_to`` (``[from, to)``).

    Raises
    ------
    ValueError
        If a length is not a positive whole number.

    Examples
    --------
    >>> drift_periods(pd.Timestamp("2024-06-01", tz="UTC"))["signup_from"].dt.strftime("%Y-%m-%d").tolist()
    ['2024-02-01', '2024-05-01']
    """
    for name, value in (("period_months", period_months), ("reference_periods", reference_periods)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            msg = f"drift_periods: {name} must be a positive whole number; got {value!r}"
            raise ValueError(msg)
    cur_from = as_of - pd.DateOffset(months=int(period_months))
    ref_from = cur_from - pd.DateOffset(months=int(period_months * reference_periods))
    return pd.DataFrame(
        {"period": ["reference", "current"], "signup_from": [ref_from, cur_from], "signup_to": [cur_from, as_of]}
    )


def _row(kind: str, item: str, periods: str, statistic: str, value: float, threshold: float, *, p: float = np.nan,
         n_cur: int = 0, n_ref: int = 0, detail: str = "") -> dict[str, Any]:
    return {"kind": kind, "item": item, "periods": periods, "statistic": statistic, "value": float(value),
            "threshold": float(threshold), "flagged": False, "p_value": float(p), "q_value": np.nan,
            "n_current": int(n_cur), "n_reference": int(n_ref), "detail": detail}


def _share_text(labels: list[str], cur: np.ndarray, ref: np.ndarray) -> str:
    cs, rs = cur / max(cur.sum(), 1), ref / max(ref.sum(), 1)
    order = np.argsort(-np.abs(cs - rs))[:3]
    return "; ".join(f"{labels[i]}: {rs[i]:.0%} → {cs[i]:.0%}" for i in order)


def _mix_row(kind: str, item: str, periods: str, table: pd.DataFrame, js_threshold: float, min_count: int) -> dict[str, Any]:
    """Chi-square + JS distance of a cohort × category table of customers (columns reference, current)."""
    ref, cur = table["reference"].to_numpy(float), table["current"].to_numpy(float)
    n_ref, n_cur = int(ref.sum()), int(cur.sum())
    labels = [str(x) for x in table.index]
    if min(n_ref, n_cur) < min_count:
        return _row(kind, item, periods, "js_distance", np.nan, js_threshold, n_cur=n_cur, n_ref=n_ref,
                    detail=f"not tested: fewer than {min_count} customers in a cohort")
    js = float(jensenshannon(cur / n_cur, ref / n_ref, base=2))
    keep = (ref + cur) > 0
    p = float(sps.chi2_contingency(np.vstack([ref[keep], cur[keep]]))[1]) if keep.sum() > 1 else 1.0
    return _row(kind, item, periods, "js_distance", js, js_threshold, p=p, n_cur=n_cur, n_ref=n_ref,
                detail=_share_text(labels, cur, ref))


def drift_data(
    store: Store,
    *,
    definition: JourneyDefinition,
    as_of: Any = None,
    segment: str | None = None,
    plan: str | None = None,
    sample_n: int = 0,
    random_state: int = 0,
    scope: Scope | None = None,
    cache: ResultCache | None = None,
    period_months: int = 1,
    reference_periods: int = 3,
    window_days: int = 14,
    min_count: int = 30,
    alpha: float = 0.05,
    psi_threshold: float = 0.1,
    js_threshold: float = 0.1,
    n_permutations: int = 999,
    risk: pd.DataFrame | None = None,
) -> Drift:
    """Compare the latest sign-up cohort with the cohorts before it: journey mix, features, event properties, segments, staleness.

    Parameters
    ----------
    store : Store
        The canonical store.
    definition : JourneyDefinition
        The journey definition (stages for the journey mix and staleness).
    as_of, segment, plan, sample_n, random_state, scope
        Which customers (:meth:`Scope.resolve`); the sign-up window is set here.
    cache : ResultCache, optional
        Shared results (the feature table).
    period_months : int, default 1
        Length of the current period (months of sign-ups before ``as_of``).
    reference_periods : int, default 3
        Periods of that length before it that form the reference cohort.
    window_days : int, default 14
        Behaviour window after signup; only customers with a complete window are compared.
    min_count : int, default 30
        Fewest customers a cohort needs for an item to be tested.
    alpha : float, default 0.05
        False-discovery rate (Benjamini–Hochberg) over every p-value of the table.
    psi_threshold : float, default 0.1
        PSI at or above which a feature shift is large (0.1 moderate, 0.25 major).
    js_threshold : float, default 0.1
        Jensen–Shannon distance (base 2, 0 = same mix, 1 = disjoint) at or above which a mix shift is large.
    n_permutations : int, default 999
        Permutations of the event-property tests.
    risk : pandas.DataFrame, optional
        Scored customers with ``signup_at``, ``probability`` (predicted) and ``outcome`` (0/1
        observed): adds the calibration rows. Without it there are none (a note says so).

    Returns
    -------
    Drift
        ``table`` has one row per compared item, flagged rows first, and columns:

        ``kind``
            ``journey_mix``, ``feature``, ``event_property``, ``segments``, ``staleness``, ``calibration``.
        ``item``
            What was compared, in words (a feature column, ``login.device``, ...).
        ``periods``
            ``current [from, to) vs reference [from, to)`` as dates.
        ``statistic``
            ``psi``, ``js_distance``, ``share_difference``, ``share_far``, ``new_names``,
            ``calibration_gap`` or ``k_chosen``.
        ``value``
            The statistic (NaN when not tested).
        ``threshold``
            The size at or beyond which a shift is large (NaN for information rows).
        ``flagged``
            ``value >= threshold`` and ``q_value < alpha`` (new event names: any name with at least
            ``min_count`` customers).
        ``p_value``, ``q_value``
            The test's p-value (chi-square, permutation, two-proportion or binomial) and the
            Benjamini–Hochberg q-value over every p-value of the table (NaN when not tested).
        ``n_current``, ``n_reference``
            Customers compared in each cohort.
        ``detail``
            The largest share moves, the PSI severity, or why the item was not tested.

    Raises
    ------
    EmptyResultError
        If no customer of either cohort has a complete behaviour window.
    ValueError
        If a period length, ``window_days``, ``min_count`` or a threshold is out of range.
    """
    if not 0 < alpha < 1:
        msg = f"drift_data: alpha must be in (0, 1); got {alpha!r}"
        raise ValueError(msg)
    if isinstance(min_count, bool) or not isinstance(min_count, (int, np.integer)) or min_count < 1:
        msg = f"drift_data: min_count must be a positive whole number; got {min_count!r}"
        raise ValueError(msg)
    base = Scope.resolve(
        store, scope, function="drift_data", as_of=as_of, segment=segment, plan=plan, sample_n=sample_n,
        random_state=random_state, segment_field=definition.segment_field,
    )
    periods = drift_periods(base.as_of, period_months=period_months, reference_periods=reference_periods)
    ref_from, cur_from = periods["signup_from"]
    label = (
        f"current {cur_from:%Y-%m-%d}–{base.as_of:%Y-%m-%d} vs reference {ref_from:%Y-%m-%d}–{cur_from:%Y-%m-%d}"
    )
    scope2 = base.replace(signup_from=ref_from, signup_to=base.as_of)
    signups = store.query(f"SELECT customer_id, signup_at FROM ({scope2.customers_sql()}) c")
    signups["signup_at"] = pd.to_datetime(signups["signup_at"], utc=True)
    signups["current"] = signups["signup_at"] >= cur_from
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StatisticalWarning)  # the exclusions are counted in the notes below
        try:
            feats = build_features(store, definition=definition, window_days=window_days, scope=scope2, cache=cache)
        except EmptyResultError as err:
            msg = (
                f"drift_data: no customer who signed up {label} has a complete {window_days}-day behaviour window "
                f"at {base.as_of:%Y-%m-%d}; shorten window_days or period_months ({err})"
            )
            raise EmptyResultError(msg) from err
    treated = _experiment_customers(store, base.as_of)
    feats = _without_customers(feats, treated)
    data = feats.data.copy()
    data["signup_at"] = pd.to_datetime(data["signup_at"], utc=True)
    is_cur = (data["signup_at"] >= cur_from).to_numpy()
    in_experiment = signups["customer_id"].astype(str).isin(treated or set())
    n_signups = signups.groupby("current").size().reindex([False, True], fill_value=0).to_numpy()
    n_treated = signups[in_experiment].groupby("current").size().reindex([False, True], fill_value=0).to_numpy()
    compared = np.array([int((~is_cur).sum()), int(is_cur.sum())])
    periods["signups"] = n_signups
    periods["in_experiment"] = n_treated
    periods["compared"] = compared
    periods["left_out"] = n_signups - n_treated - compared
    notes = [
        f"Compared on the first {window_days} days after signup: {compared[1]} of {n_signups[1]} customers who signed up "
        f"{cur_from:%Y-%m-%d}–{base.as_of:%Y-%m-%d} and {compared[0]} of {n_signups[0]} who signed up "
        f"{ref_from:%Y-%m-%d}–{cur_from:%Y-%m-%d}; {periods['left_out'].iloc[1]} and {periods['left_out'].iloc[0]} were left out "
        f"because their {window_days}-day window had not ended by {base.as_of:%Y-%m-%d}."
    ]
    if treated is None:
        notes.append(
            "The store has no assignments table, so customers enrolled in an experiment could not be set aside: an "
            "experiment that started or ended between the periods shows up here as drift."
        )
    elif n_treated.sum():
        notes.append(
            f"{n_treated[1]} current and {n_treated[0]} reference customer(s) were enrolled in an experiment (assignments "
            "table) and were left out: they received a designed treatment, so their behaviour is not the baseline."
        )
    if compared.min() == 0:
        msg = f"drift_data: a cohort has no customer with a complete {window_days}-day window ({label}); shorten window_days"
        raise EmptyResultError(msg)
    rows: list[dict[str, Any]] = []
    rows.append(_journey_mix(data, is_cur, definition, feats.window_days, label, js_threshold, min_count))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StatisticalWarning)  # the matrix's caveats concern segments, not this comparison
        bm = behaviour_matrix_data(store, window_days=window_days, scope=scope2, cache=cache, mix=True)
    labels = dict(zip(bm.columns["column"], bm.columns["label"], strict=True))
    matrix = bm.data.reindex(data["customer_id"].to_numpy())
    rows += _feature_rows(matrix, labels, feats.window_days, is_cur, label, psi_threshold, min_count, notes)
    rows += _property_rows(store, data, is_cur, window_days, label, js_threshold, min_count, n_permutations, random_state, notes)
    rows += _segment_rows(feats, bm.features, is_cur, label, js_threshold, min_count, random_state, notes)
    rows += _staleness_rows(store, data, is_cur, definition, scope2, cur_from, window_days, label, psi_threshold, min_count)
    if risk is not None:
        rows += _calibration_rows(risk, cur_from, ref_from, base.as_of, label, min_count)
    else:
        notes.append("No risk table was given, so the churn model's calibration was not compared between periods.")
    table = pd.DataFrame(rows, columns=DRIFT_DETAIL_COLUMNS)
    table["q_value"] = bh_qvalues(table["p_value"].to_numpy(float))
    tested = table["q_value"].notna() & table["threshold"].notna() & table["value"].notna()
    table["flagged"] = (tested & (table["q_value"] < alpha) & (table["value"] >= table["threshold"])) | table["flagged"]
    untested = int(table["value"].isna().sum())
    if untested:
        notes.append(f"{untested} item(s) were not tested (fewer than {min_count} customers in a cohort); see detail.")
    table = table.sort_values(["flagged", "kind", "q_value"], ascending=[False, True, True], na_position="last").reset_index(drop=True)
    return Drift(table=table, periods=periods, notes=notes, window_days=feats.window_days)


def _experiment_customers(store: Store, as_of: pd.Timestamp) -> set[str] | None:
    """Return the customers assigned to an experiment by *as_of*; None when the store has no assignments table."""
    if "assignments" not in store.tables():
        return None
    found = store.query(
        f"SELECT DISTINCT customer_id FROM assignments WHERE assigned_at <= {sql_timestamp(as_of)} AND customer_id IS NOT NULL"
    )
    return set(found["customer_id"].astype(str))


def _without_customers(feats: CustomerFeatures, customers: set[str] | None) -> CustomerFeatures:
    if not customers:
        return feats
    keep = ~feats.data["customer_id"].astype(str).isin(customers)
    return dataclasses.replace(feats, data=feats.data[keep].reset_index(drop=True))


def _journey_mix(data: pd.DataFrame, is_cur: np.ndarray, definition: JourneyDefinition, w: int, label: str,
                 js_threshold: float, min_count: int) -> dict[str, Any]:
    names = definition.stage_names
    cols = [f"stage_{feature_slug(s)}_by_{w}d" for s in names]
    present = [c for c in cols if c in data.columns]
    reached = data[present].fillna(0).astype(bool).to_numpy() if present else np.zeros((len(data), 0), bool)
    # the furthest stage entered within the window (stages are ordered); "(none)" when none was
    furthest = np.full(len(data), "(no stage)", dtype=object)
    for k, col in enumerate(cols):
        if col in present:
            furthest[reached[:, present.index(col)]] = names[k]
    table = pd.crosstab(pd.Series(furthest, name="stage"), pd.Series(np.where(is_cur, "current", "reference"), name="cohort"))
    table = table.reindex(columns=["reference", "current"], fill_value=0)
    return _mix_row("journey_mix", f"furthest stage reached within {w} days", label, table, js_threshold, min_count)


def _feature_rows(matrix: pd.DataFrame, labels: dict[str, str], w: int, is_cur: np.ndarray, label: str, psi_threshold: float,
                  min_count: int, notes: list[str]) -> list[dict[str, Any]]:
    cols = informative_columns(matrix)
    dropped = len(matrix.columns) - len(cols)
    if dropped:
        notes.append(f"{dropped} early-behaviour column(s) were left out of the feature comparison: nearly every customer has the same value.")
    rows = []
    n_cur, n_ref = int(is_cur.sum()), int((~is_cur).sum())
    for col in cols:
        values = matrix[col].to_numpy(float)
        item = f"{labels.get(col, col)}, first {w} days ({col})"
        if min(n_cur, n_ref) < min_count:
            rows.append(_row("feature", item, label, "psi", np.nan, psi_threshold, n_cur=n_cur, n_ref=n_ref,
                             detail=f"not tested: fewer than {min_count} customers in a cohort"))
            continue
        psi, p, k = population_stability_index(values[~is_cur], values[is_cur])
        severity = "major (≥ 0.25)" if psi >= 0.25 else "moderate (0.1–0.25)" if psi >= 0.1 else "small (< 0.1)"
        ref_med, cur_med = np.nanmedian(values[~is_cur]), np.nanmedian(values[is_cur])
        rows.append(_row("feature", item, label, "psi", psi, psi_threshold, p=p, n_cur=n_cur, n_ref=n_ref,
                         detail=f"{severity}; median {ref_med:.3g} → {cur_med:.3g}; {k} bins"))
    return rows


def _property_rows(store: Store, data: pd.DataFrame, is_cur: np.ndarray, w: int, label: str, js_threshold: float,
                   min_count: int, n_permutations: int, random_state: int, notes: list[str]) -> list[dict[str, Any]]:
    custs = pd.DataFrame({"customer_id": data["customer_id"].to_numpy(), "signup_at": data["signup_at"].to_numpy()})
    window = f"e.timestamp >= c.signup_at AND e.timestamp < {sql_add_days('c.signup_at', w)}"
    sample = store.query(
        f"""
        SELECT event, props FROM (
            SELECT e.event, {sql_cast('e.properties', 'text')} AS props,
                   row_number() OVER (PARTITION BY e.event ORDER BY e.event_id) AS rn
            FROM events e JOIN jl_drift_custs c ON e.customer_id = c.customer_id
            WHERE {window} AND e.properties IS NOT NULL
        ) s WHERE rn <= {_KEY_SAMPLE_ROWS}
        """,
        jl_drift_custs=custs,
    )
    candidates: list[tuple[str, str]] = []
    for event, group in sample.groupby("event"):
        values: dict[str, set[str]] = {}
        covered: dict[str, int] = {}
        for text in group["props"]:
            try:
                obj = json.loads(text) if isinstance(text, str) else None
            except ValueError:
                continue
            if not isinstance(obj, dict):
                continue
            for key, value in obj.items():
                if isinstance(value, (str, bool, int)) and not isinstance(value, float):
                    values.setdefault(key, set()).add(str(value))
                    covered[key] = covered.get(key, 0) + 1
        for key, vals in sorted(values.items()):
            if 2 <= len(vals) <= _MAX_PROPERTY_LEVELS and covered[key] >= _PROPERTY_MIN_COVERAGE * len(group):
                candidates.append((str(event), key))
    rows = []
    for event, key in candidates:
        counts = store.query(
            f"""
            SELECT e.customer_id, {sql_json_text('e.properties', key)} AS value, count(*) AS n
            FROM events e JOIN jl_drift_custs c ON e.customer_id = c.customer_id
            WHERE {window} AND e.event = {sql_quote(event)}
            GROUP BY 1, 2
            """,
            jl_drift_custs=custs,
        )
        counts = counts[counts["value"].notna()]
        wide = counts.pivot_table(index="customer_id", columns="value", values="n", aggfunc="sum", fill_value=0)
        wide = wide.reindex(custs["customer_id"], fill_value=0)
        has = wide.sum(axis=1).to_numpy() > 0
        n_cur, n_ref = int((has & is_cur).sum()), int((has & ~is_cur).sum())
        item = f"{event_label(event)}: {key}"
        if min(n_cur, n_ref) < min_count:
            rows.append(_row("event_property", item, label, "js_distance", np.nan, js_threshold, n_cur=n_cur, n_ref=n_ref,
                             detail=f"not tested: fewer than {min_count} customers with this event in a cohort"))
            continue
        mat = wide.to_numpy(float)[has]
        flag = is_cur[has]
        js, p = js_distance_permutation_test(mat, flag, n_permutations=n_permutations, random_state=random_state)
        detail = _share_text([str(c) for c in wide.columns], mat[flag].sum(axis=0), mat[~flag].sum(axis=0))
        rows.append(_row("event_property", item, label, "js_distance", js, js_threshold, p=p, n_cur=n_cur, n_ref=n_ref,
                         detail=f"share of events: {detail}"))
    if not candidates:
        notes.append("No event property with 2–12 values was found, so no event-property mix was compared.")
    return rows


def _segment_rows(feats: Any, bm_features: CustomerFeatures, is_cur: np.ndarray, label: str, js_threshold: float, min_count: int, random_state: int,
                  notes: list[str]) -> list[dict[str, Any]]:
    n_cur, n_ref = int(is_cur.sum()), int((~is_cur).sum())
    if min(n_cur, n_ref) < min_count:
        notes.append(f"Segments were not compared: fewer than {min_count} customers in a cohort.")
        return []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StatisticalWarning)
        matrix = early_behaviour_matrix(bm_features, mix=False, activity_days=True).reindex(feats.data["customer_id"].to_numpy())
        ref_x, cur_x = matrix[~is_cur], matrix[is_cur]
        seg = BehaviouralSegmenter(n_bootstrap=0, random_state=random_state).fit(ref_x)
        refit = BehaviouralSegmenter(n_bootstrap=0, random_state=random_state).fit(cur_x)
    ref_lab, cur_lab = seg.labels_, seg.predict(cur_x)
    names = [str(n) for n in seg.names_]
    table = pd.DataFrame({
        "reference": np.bincount(ref_lab, minlength=seg.n_segments_),
        "current": np.bincount(cur_lab[cur_lab >= 0], minlength=seg.n_segments_),
    }, index=names)
    rows = [_mix_row("segments", f"mix of the {seg.n_segments_} reference segments", label, table, js_threshold, min_count)]
    # distance of each customer to the nearest reference centre, in the segmenter's own scaled space
    def scaled(x: pd.DataFrame) -> np.ndarray:
        a = np.where(np.isnan(x.to_numpy(float)), seg.medians_, x.to_numpy(float))
        a = np.where(seg.log_columns_, np.log1p(np.clip(a, 0, None)), a)
        return np.asarray(seg.scaler_.transform(a))

    centres = getattr(seg.model_, "cluster_centers_", None)
    if centres is None:
        centres = seg.model_.means_
    d_ref = np.min(np.linalg.norm(scaled(ref_x)[:, None, :] - centres[None], axis=2), axis=1)
    d_cur = np.min(np.linalg.norm(scaled(cur_x)[:, None, :] - centres[None], axis=2), axis=1)
    cutoff = float(np.quantile(d_ref, 0.95))
    far = int((d_cur > cutoff).sum())
    share_far = far / n_cur
    p = float(sps.binomtest(far, n_cur, 0.05, alternative="greater").pvalue)
    rows.append(_row("segments", "current customers far from every reference segment (a new cluster)", label, "share_far",
                     share_far, 0.10, p=p, n_cur=n_cur, n_ref=n_ref,
                     detail=f"{far} of {n_cur} beyond the reference's 95th-percentile distance (5% expected)"))
    rows.append(_row("segments", "segments chosen when re-fitted on each cohort", label, "k_chosen", refit.n_segments_, np.nan,
                     n_cur=n_cur, n_ref=n_ref, detail=f"reference {seg.n_segments_}, current {refit.n_segments_} (information)"))
    return rows


def _staleness_rows(store: Store, data: pd.DataFrame, is_cur: np.ndarray, definition: JourneyDefinition, scope: Scope,
                    cur_from: pd.Timestamp, w: int, label: str, psi_threshold: float, min_count: int) -> list[dict[str, Any]]:
    used = set(definition.event_references())
    rows = []
    # new event names: first seen (anyone's events) in the current period, used by no stage or outcome
    first = store.query(
        f"""
        SELECT e.event, min(e.timestamp) AS first_seen, count(DISTINCT e.customer_id) AS customers
        FROM ({scope.replace(signup_from=None, signup_to=None).events_sql()}) e GROUP BY 1
        """
    )
    first["first_seen"] = pd.to_datetime(first["first_seen"], utc=True)
    new = first[(first["first_seen"] >= cur_from) & ~first["event"].isin(used)]
    big = new[new["customers"] >= min_count]
    row = _row("staleness", "new event names the definition does not use", label, "new_names", len(big), 1,
               n_cur=int(is_cur.sum()), n_ref=int((~is_cur).sum()),
               detail=(", ".join(f"{n} ({c} customers)" for n, c in zip(new["event"], new["customers"], strict=True)) or "none"))
    row["flagged"] = len(big) > 0
    rows.append(row)
    # share of each customer's window events whose name no stage or outcome uses
    custs = pd.DataFrame({"customer_id": data["customer_id"].to_numpy(), "signup_at": data["signup_at"].to_numpy()})
    names = sorted(used)
    unused_sql = f"NOT (e.event IN ({', '.join(sql_quote(n) for n in names)}))" if names else "TRUE"
    shares = store.query(
        f"""
        SELECT c.customer_id, avg(CASE WHEN {unused_sql} THEN 1.0 ELSE 0.0 END) AS share
        FROM events e JOIN jl_drift_custs c ON e.customer_id = c.customer_id
        WHERE e.timestamp >= c.signup_at AND e.timestamp < {sql_add_days('c.signup_at', w)}
        GROUP BY 1
        """,
        jl_drift_custs=custs,
    ).set_index("customer_id")["share"].reindex(custs["customer_id"]).to_numpy(float)
    ok = np.isfinite(shares)
    n_cur, n_ref = int((ok & is_cur).sum()), int((ok & ~is_cur).sum())
    item = "share of window events no stage or outcome uses"
    if min(n_cur, n_ref) < min_count:
        rows.append(_row("staleness", item, label, "psi", np.nan, psi_threshold, n_cur=n_cur, n_ref=n_ref,
                         detail=f"not tested: fewer than {min_count} customers in a cohort"))
    else:
        psi, p, _ = population_stability_index(shares[ok & ~is_cur], shares[ok & is_cur])
        rows.append(_row("staleness", item, label, "psi", psi, psi_threshold, p=p, n_cur=n_cur, n_ref=n_ref,
                         detail=f"mean {np.mean(shares[ok & ~is_cur]):.0%} → {np.mean(shares[ok & is_cur]):.0%}"))
    # customers matching no stage within the window
    cols = [c for c in (f"stage_{feature_slug(s)}_by_{w}d" for s in definition.stage_names) if c in data.columns]
    none = ~(data[cols].fillna(0).astype(bool).any(axis=1).to_numpy()) if cols else np.ones(len(data), bool)
    a, b = int(none[is_cur].sum()), int(none[~is_cur].sum())
    n1, n0 = int(is_cur.sum()), int((~is_cur).sum())
    _, p = two_proportion_z_test(a, n1, b, n0) if (a + b) > 0 else (0.0, 1.0)
    rows.append(_row("staleness", "customers matching no stage", label, "share_difference", a / n1 - b / n0, 0.05,
                     p=p, n_cur=n1, n_ref=n0, detail=f"{b / n0:.0%} → {a / n1:.0%}"))
    return rows


def _calibration_rows(risk: pd.DataFrame, cur_from: pd.Timestamp, ref_from: pd.Timestamp, as_of: pd.Timestamp, label: str,
                      min_count: int) -> list[dict[str, Any]]:
    missing = {"signup_at", "probability", "outcome"} - set(risk.columns)
    if missing:
        msg = f"drift_data: risk must have the columns signup_at, probability and outcome; missing {sorted(missing)}"
        raise ValueError(msg)
    r = risk.dropna(subset=["probability", "outcome"]).copy()
    r["signup_at"] = pd.to_datetime(r["signup_at"], utc=True)
    rows = []
    for period, lo, hi in (("reference", ref_from, cur_from), ("current", cur_from, as_of)):
        part = r[(r["signup_at"] >= lo) & (r["signup_at"] < hi)]
        n = len(part)
        item = f"churn-model calibration, {period} cohort"
        if n < min_count:
            rows.append(_row("calibration", item, label, "calibration_gap", np.nan, 0.05, detail=f"not tested: {n} scored customers"))
            continue
        observed = int(part["outcome"].sum())
        expected = float(part["probability"].sum())
        gap = observed / n - expected / n
        # observed count against the predicted probabilities (normal approximation to the Poisson-binomial)
        var = float((part["probability"] * (1 - part["probability"])).sum())
        z = (observed - expected) / np.sqrt(var) if var > 0 else 0.0
        p = float(2 * sps.norm.sf(abs(z)))
        row = _row("calibration", item, label, "calibration_gap", abs(gap), 0.05, p=p, n_cur=n if period == "current" else 0,
                   n_ref=n if period == "reference" else 0, detail=f"observed {observed / n:.1%}, predicted {expected / n:.1%}")
        rows.append(row)
    return rows
