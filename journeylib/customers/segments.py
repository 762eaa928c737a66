"""Behavioural segments: clusters of customers by what they did in their first days.

:class:`BehaviouralSegmenter` is a scikit-learn clusterer. It log-transforms
count columns (``log1p``), fills missing values with the column median,
standardises every column, fits k-means (or a Gaussian mixture) for each
number of segments in ``k_range`` and shows, for every k side by side, the
mean silhouette, the BIC of a Gaussian mixture, the gap statistic and the
bootstrap stability (adjusted Rand index of refits on resamples); among the
stable k it keeps the one that is best by a stated criterion (``selection_``).
Each segment is named from what distinguishes it: the segment
with the most activity is ``power users``, the one with the least
``strugglers``, the others ``in-between users``, each followed by its two most
distinctive behaviours ("power users: many integrations connected and tasks
created"). Notes (``notes_``, also warnings) say when the matrix has fewer than
three informative columns or most customers have zero everywhere.

The matrix comes from :func:`behaviour_matrix_data` (activity sources found by
kind, whatever they are named; :func:`early_behaviour_matrix` on a ready
feature table); outcomes per
segment from :func:`segment_outcomes_data` (which reuses
:mod:`journeylib.customers.cohorts`), and the "power users vs churners" comparison from
:func:`group_comparison_data`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score, silhouette_score
from sklearn.mixture import GaussianMixture
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted, validate_data
from threadpoolctl import threadpool_limits

from journeylib.cache import ResultCache
from journeylib.config.journey import JourneyDefinition
from journeylib.customers.cohorts import cohort_metrics_data
from journeylib.customers.drivers import EVENT_PHRASES
from journeylib.customers.features import CustomerFeatures, build_features
from journeylib.exceptions import StatisticalWarning
from journeylib.scope import Scope
from journeylib.stats import bh_qvalues, hedges_g_interval
from journeylib.store import Store
from journeylib.store.categories import activity_source_names, source_categories
from journeylib.words import event_label, percent

__all__ = [
    "MIN_INFORMATIVE_COLUMNS",
    "BehaviourMatrix",
    "BehaviouralSegmenter",
    "behaviour_matrix_data",
    "early_behaviour_matrix",
    "group_comparison_data",
    "informative_columns",
    "power_users_vs_churners_data",
    "segment_assignments_data",
    "segment_outcomes_data",
]

_SILHOUETTE_SAMPLE = 3000


#: Fewer informative columns than this and the segments describe little behaviour (a note says so).
MIN_INFORMATIVE_COLUMNS = 3


def early_behaviour_matrix(
    features: CustomerFeatures, *, redundancy: float = 0.9, frequent: float = 0.25, mix: bool = False, activity_days: bool = False
) -> pd.DataFrame:
    """Pick the early-behaviour columns that segments are built from: what customers do in their first days.

    Rules (no knowledge of the event names is needed):

    * how much: the count of every activity event in the window (the
      catalog's ``activity`` flag, set from the ``activity_sources`` of the
      feature table; :func:`behaviour_matrix_data` sets them from the
      sources' kinds), except an event whose ``log1p`` count correlates above
      ``redundancy`` with the ``log1p`` of sessions (it repeats what sessions
      per week says, e.g. the login that opens each session);
    * how intensively: events per session for the frequent in-session actions
      (events at least ``frequent`` times as common as sessions overall, not
      redundant);
    * with ``mix``: the event mix, each activity event's share of the
      customer's activity events in the window (0 without activity);
    * how often: sessions per week, and with ``activity_days`` the days with
      activity;
    * e-mail open rate and support tickets raised in the window.

    When the catalog flags no event as activity (the feature table was built
    with ``activity_sources`` that match no source), every event count of the
    catalog is used as activity instead and a :class:`StatisticalWarning`
    says so: build the table with :func:`behaviour_matrix_data`, which finds
    the activity sources by kind.

    Parameters
    ----------
    features : CustomerFeatures
        The result of :func:`journeylib.customers.features.build_features`.
    redundancy : float, default 0.9
        Correlation with sessions above which an event's count is dropped
        (its share stays).
    frequent : float, default 0.25
        Events per session (overall) from which an event gets an intensity
        column.
    mix : bool, default False
        Add the event-mix share columns (:func:`behaviour_matrix_data` does).
    activity_days : bool, default False
        Add the days with activity (:func:`behaviour_matrix_data` does).

    Returns
    -------
    pandas.DataFrame
        Index ``customer_id``; columns (``D`` = the feature window)
        ``n_<e>_<D>d`` (activity events in the window), ``per_session_<e>_<D>d``
        (events per activity session; 0 without sessions), ``share_<e>_<D>d``
        (with ``mix``: their share of the customer's activity events),
        ``days_active_<D>d`` (with ``activity_days``), ``sessions_per_week_<D>d``,
        ``email_open_rate_<D>d`` (NaN when no e-mail was delivered) and
        ``tickets_<D>d``.
        Columns with a single value are dropped.

    Warns
    -----
    StatisticalWarning
        When no event of the catalog is flagged as activity.
    """
    data = features.data.set_index("customer_id")
    w = features.window_days
    cat = features.catalog
    windowed = cat[(cat["kind"] == "count") & (cat["window_days"] == w) & (cat["source"] == "events") & (cat["event"] != "")]
    counts = windowed[windowed["activity"].astype(bool)]["feature"].tolist()
    if not counts and len(windowed):
        counts = windowed["feature"].tolist()
        warnings.warn(
            f"early_behaviour_matrix: the feature table flags none of its {len(counts)} events as activity (its "
            "activity_sources match no event source); every event count is used as activity, e-mail and support "
            "events included. Build it with journeylib.customers.segments.behaviour_matrix_data, which finds the "
            "activity sources by their kind.",
            StatisticalWarning,
            stacklevel=2,
        )
    out = pd.DataFrame(index=data.index)
    sessions = data[f"sessions_{w}d"].astype(float) if f"sessions_{w}d" in data.columns else pd.Series(0.0, index=data.index)
    log_s = np.log1p(sessions.to_numpy())
    total = data[counts].astype(float).sum(axis=1) if counts else pd.Series(0.0, index=data.index)
    total_sessions = float(sessions.sum())
    shares = {}
    for col in counts:
        v = data[col].astype(float)
        if v.nunique() < 2:
            continue
        if mix:
            shares["share_" + col.removeprefix("n_")] = np.where(total > 0, v / total.where(total > 0, 1.0), 0.0)
        if np.ptp(log_s) > 0 and float(np.corrcoef(np.log1p(v.to_numpy()), log_s)[0, 1]) > redundancy:
            continue
        out[col] = v
        if total_sessions > 0 and float(v.sum()) / total_sessions >= frequent:
            out["per_session_" + col.removeprefix("n_")] = np.where(sessions > 0, v / sessions.where(sessions > 0, 1), 0.0)
    for name, values in shares.items():
        out[name] = values
    extra = ([f"days_active_{w}d"] if activity_days else []) + [f"sessions_per_week_{w}d", f"email_open_rate_{w}d", f"tickets_{w}d"]
    for col in extra:
        if col in data.columns:
            out[col] = data[col].astype(float)
    keep = [c for c in out.columns if out[c].nunique(dropna=True) > 1]
    return out[keep]


@dataclass(frozen=True)
class BehaviourMatrix:
    """The behaviour matrix of a segmentation, the columns it holds and what to know before trusting it.

    Attributes
    ----------
    data : pandas.DataFrame
        Index ``customer_id``; the columns of :func:`early_behaviour_matrix`
        (what :class:`BehaviouralSegmenter` is fitted on).
    columns : pandas.DataFrame
        One row per column of ``data``: ``column``, ``kind`` (``count``,
        ``per_session``, ``share``, ``days_active``, ``sessions``, ``email``,
        ``tickets``), ``event``
        (the event of a count or share; empty otherwise), ``label`` (plain
        words), ``customers_nonzero`` (customers with a value above 0),
        ``informative`` (True: at least 5% of the customers differ from the
        most common value).
    notes : list of str
        Warnings, with counts: fewer than three informative columns, most
        customers without activity, no activity source. Empty when none.
    activity_sources : list of str
        The event sources counted as activity (:func:`journeylib.store.categories.activity_source_names`).
    customers : int
        Customers in the matrix (complete behaviour window).
    customers_without_activity : int
        Of them, customers with no activity event in the window.
    features : CustomerFeatures
        The feature table the matrix was built from.
    """

    data: pd.DataFrame
    columns: pd.DataFrame
    notes: list[str]
    activity_sources: list[str]
    customers: int
    customers_without_activity: int
    features: CustomerFeatures = field(repr=False)


def _column_kind(col: str) -> str:
    for prefix, kind in (("share_", "share"), ("n_", "count"), ("per_session_", "per_session"), ("days_active_", "days_active"),
                         ("sessions_", "sessions"), ("email_", "email"), ("tickets_", "tickets")):
        if col.startswith(prefix):
            return kind
    return "other"


def informative_columns(matrix: pd.DataFrame, *, min_share: float = 0.05) -> list[str]:
    """Return the columns on which at least ``min_share`` of the customers differ from the most common value.

    Parameters
    ----------
    matrix : pandas.DataFrame
        Customers × behaviour columns.
    min_share : float, default 0.05
        Share of the (non-missing) customers that must differ from the
        column's most common value.

    Returns
    -------
    list of str
        The informative columns, in matrix order.
    """
    out = []
    for col in matrix.columns:
        v = matrix[col].dropna()
        if len(v) and (1.0 - v.value_counts(normalize=True).iloc[0]) >= min_share:
            out.append(str(col))
    return out


def behaviour_matrix_data(
    store: Store,
    *,
    window_days: int = 14,
    as_of: Any = None,
    segment: str | None = None,
    plan: str | None = None,
    signup_from: Any = None,
    signup_to: Any = None,
    sample_n: int = 0,
    random_state: int = 0,
    scope: Scope | None = None,
    cache: ResultCache | None = None,
    redundancy: float = 0.9,
    mix: bool = True,
) -> BehaviourMatrix:
    """Build the behaviour matrix of the segments from what customers do in their first ``window_days`` days.

    The activity sources are found by kind (:func:`journeylib.store.categories.activity_source_names`), so
    product events count whatever their source is called; the feature table
    is :func:`journeylib.customers.features.build_features` with those
    sources, and the columns are those of :func:`early_behaviour_matrix`.

    Parameters
    ----------
    store : Store
        The canonical store.
    window_days : int, default 14
        The behaviour window (days after signup); customers whose window has
        not ended by as_of are left out (counted in ``features.exclusions``).
    as_of, segment, plan, signup_from, signup_to, sample_n, random_state, scope
        Scope, as in :func:`journeylib.customers.features.build_features`.
    cache : ResultCache, optional
        Share the feature table with other analyses.
    redundancy, mix
        As in :func:`early_behaviour_matrix`.

    Returns
    -------
    BehaviourMatrix
        The matrix, its columns, the notes and the activity sources.

    Raises
    ------
    EmptyResultError
        If no customer in scope has a complete window.

    Warns
    -----
    StatisticalWarning
        With each note (fewer than three informative columns, most customers
        without activity, no activity source).
    """
    scope = Scope.resolve(
        store, scope, function="behaviour_matrix_data", as_of=as_of, segment=segment, plan=plan, signup_from=signup_from,
        signup_to=signup_to, sample_n=sample_n, random_state=random_state,
    )
    sources = activity_source_names(store)
    notes: list[str] = []
    if not sources:
        kinds = source_categories(store)
        notes.append(
            f"No event source is an activity source: every source is e-mail, CRM or support ({kinds or 'no events'}); "
            "the matrix holds support tickets only."
        )
    features = build_features(store, window_days=window_days, scope=scope, cache=cache, activity_sources=sources or ("",))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StatisticalWarning)  # every event is activity here; the fallback cannot apply
        matrix = early_behaviour_matrix(features, redundancy=redundancy, mix=mix, activity_days=True)
    cat = features.catalog
    w = features.window_days
    act = cat[(cat["kind"] == "count") & (cat["window_days"] == w) & cat["activity"].astype(bool) & (cat["event"] != "")]
    data = features.data.set_index("customer_id")
    n = len(data)
    total = data[act["feature"].tolist()].sum(axis=1) if len(act) else pd.Series(0, index=data.index)
    idle = int((total == 0).sum())
    event_of = dict(zip(act["feature"].str.removeprefix("n_"), act["event"], strict=True))
    informative = set(informative_columns(matrix))
    rows = []
    for col in matrix.columns:
        kind = _column_kind(col)
        key = col.removeprefix("share_").removeprefix("per_session_").removeprefix("n_")
        event = event_of.get(key, "") if kind in ("count", "share", "per_session") else ""
        label = _phrase(col)
        rows.append({"column": col, "kind": kind, "event": event, "label": label,
                     "customers_nonzero": int((matrix[col].fillna(0) != 0).sum()), "informative": col in informative})
    columns = pd.DataFrame(rows, columns=["column", "kind", "event", "label", "customers_nonzero", "informative"])
    if len(informative) < MIN_INFORMATIVE_COLUMNS:
        used = ", ".join(sorted(informative)) or "none"
        notes.append(
            f"The behaviour matrix has {len(informative)} informative column(s) ({used}) of {matrix.shape[1]}; "
            f"at least {MIN_INFORMATIVE_COLUMNS} are needed for segments that describe behaviour. Activity sources: "
            f"{', '.join(sources) or 'none'}; activity events in the window: {len(act)}."
        )
    if n and idle > n / 2:
        notes.append(
            f"{idle} of {n} customers ({idle / n:.0%}) have no activity event (sources {', '.join(sources) or 'none'}) "
            f"in their first {w} days; segments mostly separate them from the rest."
        )
    for note in notes:
        warnings.warn(note, StatisticalWarning, stacklevel=2)
    return BehaviourMatrix(data=matrix, columns=columns, notes=notes, activity_sources=sources, customers=n,
                           customers_without_activity=idle, features=features)


def _phrase(col: str) -> str:
    """Short noun phrase of a matrix column, for segment names."""
    base = col
    per_session = base.startswith("per_session_")
    share = base.startswith("share_")
    base = base.removeprefix("per_session_").removeprefix("share_").removeprefix("n_")
    base = base.rsplit("_", 1)[0] if base.endswith("d") and base.rsplit("_", 1)[-1][:-1].isdigit() else base
    if base in EVENT_PHRASES:
        noun = EVENT_PHRASES[base][2]
    elif base.startswith("sessions_per_week"):
        noun = "sessions per week"
    elif base.startswith("email_open_rate"):
        noun = "email opens"
    elif base.startswith("tickets"):
        noun = "support tickets"
    elif base.startswith("days_active"):
        noun = "active days"
    elif _column_kind(col) in ("count", "share", "per_session"):
        # a count of one activity event: "n_employee_added_14d" reads "employee added events"
        noun = f"{event_label(base)} events"
    else:
        noun = event_label(base)
    if share:
        return f"{noun} as a share of activity"
    return f"{noun} per session" if per_session else noun


class BehaviouralSegmenter(ClusterMixin, BaseEstimator):
    """Cluster customers on early behaviour, choosing the number of segments by a stated criterion.

    Parameters
    ----------
    method : {"kmeans", "gmm"}, default "kmeans"
        k-means, or a Gaussian mixture (full covariance).
    n_segments : int or "auto", default "auto"
        A fixed number of segments, or "auto" to choose in ``k_range``.
    k_range : tuple of int, default (2, 6)
        Smallest and largest number of segments tried (inclusive).
    criterion : {"silhouette", "gap", "bic"}, default "silhouette"
        How k is chosen among the stable k (bootstrap stability at least
        ``min_stability``; every k when ``n_bootstrap`` is 0 or none is
        stable, with a note). ``silhouette``: the highest mean silhouette
        (computed on at most 3,000 customers); ``gap``: the smallest k whose gap statistic
        (Tibshirani, Walther & Hastie 2001; reference data uniform in the
        principal-component box of the data) is at least the next k's gap
        minus its standard error; ``bic``: the lowest BIC of a Gaussian mixture with k components. All three and
        the stability are computed for every k and shown in ``selection_``.
    n_bootstrap : int, default 20
        Bootstrap refits per k for the stability (0 to skip).
    min_stability : float, default 0.75
        Mean bootstrap ARI from which a k counts as stable.
    n_references : int, default 10
        Reference data sets of the gap statistic.
    log_counts : bool, default True
        ``log1p`` columns whose values are all non-negative whole numbers.
    random_state : int, default 0
        Seed of the fits and the resamples.

    Attributes
    ----------
    n_segments_ : int
        The number of segments chosen.
    labels_ : numpy.ndarray
        Segment of each training row (0 .. n_segments_ - 1, largest first).
    names_ : list of str
        Name of each segment.
    selection_ : pandas.DataFrame
        Every k tried, side by side: ``k``, ``criterion`` (the one that
        chose), ``score`` (its value), ``chosen``, ``silhouette`` (higher is
        better), ``bic`` (lower is better), ``gap`` and ``gap_se`` (the gap
        statistic and its standard error), ``stability`` (mean bootstrap ARI
        of the k-segment solution; NaN without bootstrap), ``stable``
        (stability ≥ ``min_stability``).
    notes_ : list of str
        Warnings, with counts: fewer than three informative columns, most
        customers with zero in every column, no stable k.
    stability_ : pandas.DataFrame
        ``bootstrap`` and ``ari``: adjusted Rand index between each bootstrap
        refit's segments of all training rows and ``labels_``.
    profiles_ : pandas.DataFrame
        One row per segment × feature: ``segment`` (index), ``name``,
        ``feature``, ``label`` (phrase), ``mean`` (original units), ``median``,
        ``z`` (segment mean of the standardised value; 0 = average customer),
        ``share`` (segment's share of customers).
    feature_names_in_ : numpy.ndarray
        Column names seen in fit (only when X was a DataFrame).
    feature_labels_ : list of str
        Column names used in profiles (``x0``, ``x1`` ... for arrays).
    n_features_in_ : int
        Number of columns.
    scaler_ : sklearn.preprocessing.StandardScaler
        Fitted scaler.
    model_ : KMeans or GaussianMixture
        The fitted model with ``n_segments_`` components.
    log_columns_ : numpy.ndarray of bool
        Which columns were log-transformed.
    medians_ : numpy.ndarray
        Fill values for missing entries.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = np.vstack([rng.normal(0, 1, (50, 2)), rng.normal(6, 1, (50, 2))])
    >>> seg = BehaviouralSegmenter(n_bootstrap=0, log_counts=False).fit(X)
    >>> seg.n_segments_
    2
    """

    def __init__(
        self,
        *,
        method: str = "kmeans",
        n_segments: int | str = "auto",
        k_range: tuple[int, int] = (2, 6),
        criterion: str = "silhouette",
        n_bootstrap: int = 20,
        min_stability: float = 0.75,
        n_references: int = 10,
        log_counts: bool = True,
        random_state: int = 0,
    ) -> None:
        self.method = method
        self.n_segments = n_segments
        self.k_range = k_range
        self.criterion = criterion
        self.n_bootstrap = n_bootstrap
        self.min_stability = min_stability
        self.n_references = n_references
        self.log_counts = log_counts
        self.random_state = random_state

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags

    # -- helpers ---------------------------------------------------------------------------
    def _check_params(self) -> None:
        if self.method not in ("kmeans", "gmm"):
            msg = f"method must be 'kmeans' or 'gmm'; got {self.method!r}"
            raise ValueError(msg)
        if self.criterion not in ("gap", "silhouette", "bic"):
            msg = f"criterion must be 'gap', 'silhouette' or 'bic'; got {self.criterion!r}"
            raise ValueError(msg)
        if self.n_segments != "auto" and (not isinstance(self.n_segments, (int, np.integer)) or self.n_segments < 1):
            msg = f"n_segments must be 'auto' or a positive whole number; got {self.n_segments!r}"
            raise ValueError(msg)
        lo, hi = self.k_range
        if not (1 <= lo <= hi):
            msg = f"k_range must be (smallest, largest) with 1 <= smallest <= largest; got {self.k_range!r}"
            raise ValueError(msg)

    def _prepare(self, X: Any, *, fit: bool) -> np.ndarray:
        if fit:
            A = validate_data(self, X, ensure_all_finite="allow-nan", dtype=float, ensure_min_samples=2)
            names = getattr(self, "feature_names_in_", None)
            self.feature_labels_ = [str(c) for c in names] if names is not None else [f"x{i}" for i in range(A.shape[1])]
            finite = np.where(np.isfinite(A), A, np.nan)
            if np.isinf(A).any():
                msg = "X contains infinity; replace it (e.g. by NaN) before segmenting"
                raise ValueError(msg)
            self.notes_ = self._data_notes(A)
            self.medians_ = np.nan_to_num(np.nanmedian(finite, axis=0), nan=0.0) if A.size else np.zeros(A.shape[1])
            filled = np.where(np.isnan(A), self.medians_, A)
            whole = np.all((filled >= 0) & (np.mod(filled, 1) == 0), axis=0)
            self.log_columns_ = whole & bool(self.log_counts)
        else:
            A = validate_data(self, X, ensure_all_finite="allow-nan", dtype=float, reset=False)
            if np.isinf(A).any():
                msg = "X contains infinity; replace it (e.g. by NaN) before segmenting"
                raise ValueError(msg)
            filled = np.where(np.isnan(A), self.medians_, A)
        return np.where(self.log_columns_, np.log1p(np.clip(filled, 0, None)), filled)

    def _model(self, k: int, seed: int, n_init: int = 10) -> KMeans | GaussianMixture:
        if self.method == "kmeans":
            return KMeans(n_clusters=k, n_init=n_init, random_state=seed)
        return GaussianMixture(n_components=k, n_init=max(1, n_init // 3), random_state=seed, covariance_type="full",
                               reg_covar=1e-4)

    def _silhouette(self, Z: np.ndarray, labels: np.ndarray) -> float:
        if len(np.unique(labels)) < 2 or len(np.unique(labels)) >= len(Z):
            return math.nan
        size = min(len(Z), _SILHOUETTE_SAMPLE)
        return float(silhouette_score(Z, labels, sample_size=size, random_state=self.random_state))

    def _bic(self, Z: np.ndarray, k: int, model: Any) -> float:
        gm = model if isinstance(model, GaussianMixture) else GaussianMixture(
            n_components=k, n_init=1, random_state=self.random_state, reg_covar=1e-4
        ).fit(Z)
        return float(gm.bic(Z))

    def _gap(self, Z: np.ndarray, ks: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """Return the gap statistic and its standard error for each k (k-means dispersion; PCA-box uniform references)."""
        def log_w(data: np.ndarray, k: int, seed: int) -> float:
            if k == 1:
                return float(np.log(max(((data - data.mean(axis=0)) ** 2).sum(), 1e-12)))
            return float(np.log(max(KMeans(n_clusters=k, n_init=3, random_state=seed).fit(data).inertia_, 1e-12)))

        rng = np.random.default_rng(self.random_state)
        centred = Z - Z.mean(axis=0)
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        rotated = centred @ vt.T
        lo, hi = rotated.min(axis=0), rotated.max(axis=0)
        refs = [rng.uniform(lo, hi, size=rotated.shape) @ vt for _ in range(max(int(self.n_references), 1))]
        gap, se = [], []
        for k in ks:
            ref = np.array([log_w(r, k, self.random_state + i) for i, r in enumerate(refs)])
            gap.append(float(ref.mean() - log_w(Z, k, self.random_state)))
            se.append(float(ref.std() * math.sqrt(1 + 1 / len(ref))))
        return np.array(gap), np.array(se)

    def _stability(self, Z: np.ndarray, k: int, labels: np.ndarray, seed_offset: int = 0) -> list[float]:
        """Return the adjusted Rand index between each bootstrap refit's segments of all rows and *labels*."""
        rng = np.random.default_rng(self.random_state + seed_offset)
        out = []
        n = len(Z)
        for b in range(int(self.n_bootstrap)):
            idx = rng.integers(0, n, n)
            if len(np.unique(Z[idx], axis=0)) < k:
                out.append(math.nan)
                continue
            model = self._model(k, self.random_state + b + 1, n_init=3).fit(Z[idx])
            out.append(float(adjusted_rand_score(labels, model.predict(Z))))
        return out

    def _choose(self, sel: pd.DataFrame) -> tuple[int, str]:
        """Return the chosen k and, when the choice needs a caveat, a note (else an empty text)."""
        ks = sel["k"].tolist()
        if len(ks) == 1:
            return int(ks[0]), ""
        note = ""
        cand = sel[sel["stable"]] if int(self.n_bootstrap) > 0 else sel
        if cand.empty:
            best_stab = sel.iloc[int(np.nanargmax(sel["stability"].to_numpy(dtype=float)))] if sel["stability"].notna().any() else sel.iloc[0]
            note = (
                f"No number of segments from {ks[0]} to {ks[-1]} is stable (mean bootstrap ARI at least "
                f"{self.min_stability:g}; the best is {float(best_stab['stability']):.2f} at k = {int(best_stab['k'])}); "
                "the segments may not be reproducible, and k was chosen among all k tried."
            )
            cand = sel
        if self.criterion == "gap":
            g = cand["gap"].to_numpy(dtype=float)
            se = cand["gap_se"].to_numpy(dtype=float)
            kk = cand["k"].to_numpy()
            for i in range(len(kk) - 1):
                if g[i] >= g[i + 1] - se[i + 1]:
                    return int(kk[i]), note
            return int(kk[-1]), note
        scores = cand[self.criterion].to_numpy(dtype=float)
        if np.isnan(scores).all():
            return int(cand["k"].iloc[0]), note
        pick = np.nanargmax(scores) if self.criterion == "silhouette" else np.nanargmin(scores)
        return int(cand["k"].to_numpy()[int(pick)]), note

    # -- API -------------------------------------------------------------------------------
    def fit(self, X: Any, y: Any = None) -> BehaviouralSegmenter:
        """Fit segments for each k, keep the best by the criterion, name them and measure stability.

        Parameters
        ----------
        X : pandas.DataFrame or array-like of shape (n_customers, n_features)
            Early-behaviour features, e.g. :func:`early_behaviour_matrix`.
        y : None
            Ignored.

        Returns
        -------
        BehaviouralSegmenter
            The fitted estimator.

        Raises
        ------
        ValueError
            On invalid parameters, fewer than 2 rows, or infinite values.
        """
        self._check_params()
        # Customer tables are small: one thread is faster than OpenMP's, whose spinning threads
        # slow k-means down 50-fold on a busy 2-core machine (measured).
        with threadpool_limits(limits=1):
            return self._fit(X)

    def _fit(self, X: Any) -> BehaviouralSegmenter:
        A = self._prepare(X, fit=True)
        n = A.shape[0]
        self.scaler_ = StandardScaler().fit(A)
        Z = self.scaler_.transform(A)
        distinct = len(np.unique(Z, axis=0))
        lo, hi = self.k_range
        if self.n_segments == "auto":
            ks = [k for k in range(lo, hi + 1) if k <= min(distinct, n - 1)] or [1]
        else:
            ks = [int(self.n_segments)]
        rows = []
        fitted: dict[int, Any] = {}
        stab: dict[int, list[float]] = {}
        gap, gap_se = self._gap(Z, ks) if len(ks) > 1 else (np.full(1, np.nan), np.full(1, np.nan))
        for i, k in enumerate(ks):
            model = self._model(k, self.random_state).fit(Z)
            labels = model.predict(Z)
            fitted[k] = model
            stab[k] = self._stability(Z, k, labels, seed_offset=1000 * k) if k > 1 else []
            finite = [a for a in stab[k] if np.isfinite(a)]
            rows.append({
                "k": k, "silhouette": self._silhouette(Z, labels) if len(ks) > 1 else math.nan,
                "bic": self._bic(Z, k, model) if len(ks) > 1 else math.nan,
                "gap": float(gap[i]), "gap_se": float(gap_se[i]),
                "stability": float(np.mean(finite)) if finite else math.nan,
            })
        sel = pd.DataFrame(rows)
        sel["stable"] = sel["stability"].ge(float(self.min_stability))
        best, note = self._choose(sel)
        if note:
            self.notes_.append(note)
        sel["criterion"] = self.criterion
        sel["score"] = sel[self.criterion]
        sel["chosen"] = sel["k"] == best
        self.selection_ = sel[["k", "criterion", "score", "chosen", "silhouette", "bic", "gap", "gap_se", "stability", "stable"]]
        self.model_ = fitted[best]
        labels_raw = self.model_.predict(Z)
        # number segments by size, largest first, so labels are stable across runs
        order = pd.Series(labels_raw).value_counts().index.tolist()
        remap = {old: new for new, old in enumerate(order)}
        self._order = np.array([order[i] for i in range(len(order))])
        self.labels_ = np.array([remap[v] for v in labels_raw], dtype=np.int64)
        self.n_segments_ = len(order)
        self._name_segments(A, Z)
        aris = [a for a in stab.get(best, []) if np.isfinite(a)] if best > 1 else []
        self.stability_ = pd.DataFrame({"bootstrap": np.arange(len(aris)), "ari": aris}, columns=["bootstrap", "ari"])
        for msg in self.notes_:
            warnings.warn(msg, StatisticalWarning, stacklevel=3)
        return self

    def _data_notes(self, raw: np.ndarray) -> list[str]:
        """Return notes on the matrix itself: too few informative columns, most rows zero in every column."""
        notes = []
        cols = list(self.feature_labels_)
        informative = informative_columns(pd.DataFrame(raw, columns=cols))
        if len(informative) < MIN_INFORMATIVE_COLUMNS:
            notes.append(
                f"The segments are built on {len(informative)} informative column(s) ({', '.join(informative) or 'none'}) "
                f"of {len(cols)}; at least {MIN_INFORMATIVE_COLUMNS} are needed for segments that describe behaviour. "
                "Check that the matrix holds the activity events (journeylib.customers.segments.behaviour_matrix_data)."
            )
        zero = int(np.all(np.nan_to_num(raw, nan=0.0) == 0, axis=1).sum())
        if zero > len(raw) / 2:
            notes.append(f"{zero} of {len(raw)} customers ({zero / len(raw):.0%}) have zero in every column (no recorded behaviour).")
        return notes

    def predict(self, X: Any) -> np.ndarray:
        """Assign customers to the fitted segments.

        Parameters
        ----------
        X : pandas.DataFrame or array-like
            The same columns as in fit.

        Returns
        -------
        numpy.ndarray of int
            Segment numbers (as in ``labels_``).
        """
        check_is_fitted(self, ["model_", "scaler_"])
        Z = self.scaler_.transform(self._prepare(X, fit=False))
        with threadpool_limits(limits=1):
            raw = self.model_.predict(Z)
        lookup = {old: new for new, old in enumerate(self._order)}
        return np.array([lookup.get(v, -1) for v in raw], dtype=np.int64)

    def summary(self) -> pd.DataFrame:
        """Return one row per segment: ``segment``, ``name``, ``customers``, ``share``.

        Returns
        -------
        pandas.DataFrame
            Sizes from the training rows (share of all of them).
        """
        check_is_fitted(self, ["labels_"])
        counts = np.bincount(self.labels_, minlength=self.n_segments_)
        return pd.DataFrame(
            {"segment": np.arange(self.n_segments_), "name": self.names_, "customers": counts,
             "share": counts / counts.sum()}
        )

    def stability_summary(self) -> dict[str, float]:
        """Return the bootstrap stability: mean ARI and its 2.5%/97.5% percentiles.

        Returns
        -------
        dict
            ``ari_mean``, ``ari_low``, ``ari_high``, ``n_bootstrap`` (NaN
            when no bootstrap was run).
        """
        check_is_fitted(self, ["stability_"])
        a = self.stability_["ari"].to_numpy(dtype=float)
        if not len(a):
            return {"ari_mean": math.nan, "ari_low": math.nan, "ari_high": math.nan, "n_bootstrap": 0}
        return {"ari_mean": float(a.mean()), "ari_low": float(np.quantile(a, 0.025)),
                "ari_high": float(np.quantile(a, 0.975)), "n_bootstrap": len(a)}

    # -- internals ---------------------------------------------------------------------------
    def _name_segments(self, A: np.ndarray, Z: np.ndarray) -> None:
        cols = list(self.feature_labels_)
        k = self.n_segments_
        labels = self.labels_
        zmean = np.vstack([Z[labels == s].mean(axis=0) for s in range(k)])
        orig = np.where(self.log_columns_, np.expm1(A), A)  # original units (missing values filled)
        back = np.vstack([orig[labels == s].mean(axis=0) for s in range(k)])
        medians = np.vstack([np.median(orig[labels == s], axis=0) for s in range(k)])
        share = np.bincount(labels, minlength=k) / len(labels)
        # activity: every column except tickets (more tickets is not more engagement)
        act = np.array([not c.startswith("tickets") for c in cols])
        score = zmean[:, act].mean(axis=1) if act.any() else zmean.mean(axis=1)
        rank = np.argsort(-score)
        kind = ["in-between users"] * k
        if k >= 2:
            kind[int(rank[0])] = "power users"
            kind[int(rank[-1])] = "strugglers"
        elif k == 1:
            kind[0] = "all customers"
        names = []
        for s in range(k):
            top = np.argsort(-np.abs(zmean[s]))[:2] if k > 1 else np.array([], dtype=np.int64)
            bits: list[str] = []
            for j in top:
                word = "many" if zmean[s, j] > 0 else "few"
                phrase = _phrase(cols[j])
                if any(x in phrase for x in ("per session", "per week", "opens")):
                    word = "high" if zmean[s, j] > 0 else "low"
                bits.append(f"{word} {phrase}")
            names.append(f"{kind[s]}: " + " and ".join(bits) if bits else kind[s])
        seen: dict[str, int] = {}
        for i, nm in enumerate(names):
            if nm in seen:
                seen[nm] += 1
                names[i] = f"{nm} ({seen[nm]})"
            else:
                seen[nm] = 1
        self.names_ = names
        self.kinds_ = kind
        rows = []
        for s in range(k):
            for j, c in enumerate(cols):
                rows.append({"segment": s, "name": names[s], "feature": c, "label": _phrase(c), "mean": float(back[s, j]),
                             "median": float(medians[s, j]), "z": float(zmean[s, j]), "share": float(share[s])})
        self.profiles_ = pd.DataFrame(rows)


def segment_assignments_data(segmenter: BehaviouralSegmenter, matrix: pd.DataFrame) -> pd.DataFrame:
    """Return each customer's segment, for cohort comparisons and artifacts.

    Parameters
    ----------
    segmenter : BehaviouralSegmenter
        Fitted on *matrix* (or on the same columns).
    matrix : pandas.DataFrame
        Index ``customer_id``, the columns of fit.

    Returns
    -------
    pandas.DataFrame
        ``customer_id``, ``segment`` (number), ``cohort`` (the segment's
        name; the ``labels`` input of :mod:`journeylib.customers.cohorts`), ``kind``
        (``power users``, ``in-between users``, ``strugglers``).
    """
    check_is_fitted(segmenter, ["labels_"])
    seg = segmenter.predict(matrix)
    names = np.asarray(segmenter.names_, dtype=object)
    kinds = np.asarray(segmenter.kinds_, dtype=object)
    return pd.DataFrame({"customer_id": matrix.index.to_numpy(), "segment": seg, "cohort": names[seg], "kind": kinds[seg]})


def segment_outcomes_data(
    store: Store,
    *,
    definition: JourneyDefinition,
    assignments: pd.DataFrame,
    min_support: int = 30,
    as_of: Any = None,
    conversion_days: float = 30,
    churn_days: float = 150,
    stage_days: float = 30,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Return each segment's size, conversion and churn, with intervals and tests.

    Parameters
    ----------
    store : Store
        The canonical store.
    definition : JourneyDefinition
        Outcomes and stages.
    assignments : pandas.DataFrame
        The result of :func:`segment_assignments_data`.
    min_support, as_of, conversion_days, churn_days, stage_days, alpha
        As in :func:`journeylib.customers.cohorts.cohort_metrics_data`.

    Returns
    -------
    pandas.DataFrame
        The rows of :func:`journeylib.customers.cohorts.cohort_metrics_data` with
        ``by="labels"`` for the metrics ``conversion_rate``, ``churn_rate``
        and ``time_to_value_days`` (``cohort`` = segment name), plus
        ``customers`` (segment size) and ``share`` (of the segmented
        customers).
    """
    out = cohort_metrics_data(
        store, definition=definition, by="labels", labels=assignments[["customer_id", "cohort"]], min_support=min_support,
        as_of=as_of, conversion_days=conversion_days, churn_days=churn_days, stage_days=stage_days,
        metrics=["conversion_rate", "churn_rate", "time_to_value_days"], alpha=alpha,
    )
    sizes = assignments["cohort"].value_counts()
    out["customers"] = out["cohort"].map(sizes).fillna(0).astype("int64")
    out["share"] = out["customers"] / len(assignments)
    return out


def group_comparison_data(
    matrix: pd.DataFrame,
    *,
    group_a: Sequence[Any],
    group_b: Sequence[Any],
    name_a: str = "A",
    name_b: str = "B",
    min_support: int = 10,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Which behaviours differ most between two groups of customers, by how much.

    Parameters
    ----------
    matrix : pandas.DataFrame
        Index ``customer_id``; numeric behaviour columns (e.g.
        :func:`early_behaviour_matrix`).
    group_a, group_b : sequence
        Customer ids of the two groups (ids missing from *matrix* are
        ignored; a customer in both groups is dropped from both).
    name_a, name_b : str
        Group names for the ``comparison`` column.
    min_support : int, default 10
        Fewest customers with a value in each group for a feature to be
        compared.
    alpha : float, default 0.05
        1 - confidence level; FDR level of ``significant``.

    Returns
    -------
    pandas.DataFrame
        One row per feature, largest absolute effect first: ``comparison``
        ("A vs B"), ``feature``, ``label`` (phrase), ``n_a``, ``n_b``
        (customers with a value), ``mean_a``, ``mean_b``, ``difference``
        (mean_a − mean_b) with ``diff_ci_low``/``diff_ci_high`` (Welch),
        ``ratio`` (mean_a / mean_b; NaN when mean_b is 0), ``hedges_g`` with
        ``g_ci_low``/``g_ci_high`` (standardised difference), ``p_value``
        (Mann–Whitney U, two-sided), ``q_value`` (Benjamini–Hochberg over the
        features), ``significant`` (q ≤ alpha), ``status`` (``ok``,
        ``below_min_support``, ``skipped_constant``), ``reason`` and
        ``statement`` (the comparison in plain words with its numbers; it
        describes a difference between the groups, not a cause).

    Warns
    -----
    StatisticalWarning
        When a group has fewer than ``min_support`` customers.
    """
    a_ids = set(group_a) & set(matrix.index)
    b_ids = set(group_b) & set(matrix.index)
    both = a_ids & b_ids
    a_ids -= both
    b_ids -= both
    A = matrix.loc[sorted(a_ids)]
    B = matrix.loc[sorted(b_ids)]
    z = float(stats.norm.ppf(1 - alpha / 2))
    rows = []
    for col in matrix.columns:
        a = A[col].dropna().to_numpy(dtype=float)
        b = B[col].dropna().to_numpy(dtype=float)
        row: dict[str, Any] = {"comparison": f"{name_a} vs {name_b}", "feature": col, "label": _phrase(col),
                               "n_a": len(a), "n_b": len(b)}
        need = max(int(min_support), 2)  # a variance needs two values
        if len(a) < need or len(b) < need:
            row.update(status="below_min_support", reason=f"{len(a)} vs {len(b)} customers; at least {need} needed")
        elif np.ptp(np.concatenate([a, b])) == 0:
            row.update(status="skipped_constant", reason=f"{_phrase(col)} are the same for every customer compared")
        else:
            va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
            se = math.sqrt(va + vb)
            dfree = (va + vb) ** 2 / ((va**2 / (len(a) - 1)) + (vb**2 / (len(b) - 1))) if se > 0 else math.inf
            tq = float(stats.t.ppf(1 - alpha / 2, dfree)) if math.isfinite(dfree) else z
            diff = float(a.mean() - b.mean())
            g, glo, ghi = hedges_g_interval(a, b, alpha=alpha)
            row.update(
                mean_a=float(a.mean()), mean_b=float(b.mean()), difference=diff, diff_ci_low=diff - tq * se,
                diff_ci_high=diff + tq * se, ratio=float(a.mean() / b.mean()) if b.mean() != 0 else math.nan,
                hedges_g=g, g_ci_low=glo, g_ci_high=ghi,
                p_value=float(stats.mannwhitneyu(a, b, alternative="two-sided").pvalue), status="ok", reason="",
            )
        rows.append(row)
    cols = ["comparison", "feature", "label", "n_a", "n_b", "mean_a", "mean_b", "difference", "diff_ci_low", "diff_ci_high",
            "ratio", "hedges_g", "g_ci_low", "g_ci_high", "p_value", "q_value", "significant", "status", "reason", "statement"]
    out = pd.DataFrame(rows).reindex(columns=cols)
    if len(A) < min_support or len(B) < min_support:
        warnings.warn(
            f"{name_a} has {len(A)} and {name_b} {len(B)} customers; at least {min_support} each are needed to compare them.",
            StatisticalWarning,
            stacklevel=2,
        )
    out["q_value"] = bh_qvalues(out["p_value"])
    out["significant"] = out["q_value"].le(alpha).fillna(False).astype(bool)
    out["statement"] = [_comparison_sentence(cast(dict[str, Any], r), name_a, name_b, alpha) for r in out.to_dict("records")]
    out = out.assign(_o=out["hedges_g"].abs().fillna(-1)).sort_values("_o", ascending=False).drop(columns="_o")
    return out.reset_index(drop=True)


def _comparison_sentence(r: dict[str, Any], name_a: str, name_b: str, alpha: float) -> str:
    """Say one row of :func:`group_comparison_data` in plain words."""
    label = str(r["label"])
    if r["status"] != "ok":
        return f"{name_a[:1].upper()}{name_a[1:]} and {name_b} were not compared on {label}: {r['reason']}."
    ma, mb = float(r["mean_a"]), float(r["mean_b"])
    share = str(r["feature"]).startswith(("share_", "email_open_rate"))
    fmt = percent if share else (lambda x: f"{x:.3g}")
    if ma == mb:
        rel = "the same"
    elif share:
        rel = f"{abs(ma - mb) * 100:.0f} percentage points {'higher' if ma > mb else 'lower'}"
    elif mb > 0 and ma > 0:
        owner = f"{name_b}'" if name_b.endswith("s") else f"{name_b}'s"
        rel = f"{ma / mb:.1f} times as high" if ma > mb else f"{owner} average {mb / ma:.1f} times as high"
    else:
        rel = "higher" if ma > mb else "lower"
    verdict = "a difference beyond chance at the false-discovery rate" if r["significant"] else "within what chance would give"
    return (
        f"{name_a[:1].upper()}{name_a[1:]} averaged {fmt(ma)} {label} vs {fmt(mb)} for {name_b} ({rel}; difference "
        f"{fmt(float(r['difference']))}, {1 - alpha:.0%} CI {fmt(float(r['diff_ci_low']))} to {fmt(float(r['diff_ci_high']))}; "
        f"Hedges' g {float(r['hedges_g']):.2f}; q = {float(r['q_value']):.3g}: {verdict} of {alpha:g})."
    )


def power_users_vs_churners_data(
    matrix: pd.DataFrame,
    assignments: pd.DataFrame,
    outcomes: pd.DataFrame,
    *,
    min_support: int = 10,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Compare the early behaviour of retained power users with that of churners.

    Parameters
    ----------
    matrix : pandas.DataFrame
        The segmentation matrix (index ``customer_id``).
    assignments : pandas.DataFrame
        The result of :func:`segment_assignments_data`.
    outcomes : pandas.DataFrame
        ``customer_id`` and ``churned_at`` (e.g.
        :func:`journeylib.customers.features.customer_outcomes_data`).
    min_support, alpha
        As in :func:`group_comparison_data`.

    Returns
    -------
    pandas.DataFrame
        :func:`group_comparison_data` with A = customers of the ``power
        users`` segment who had not churned by as_of, B = every customer who
        churned by as_of (any segment); ``comparison`` is "power users vs
        churners".
    """
    churned = set(outcomes.loc[outcomes["churned_at"].notna(), "customer_id"])
    power = set(assignments.loc[assignments["kind"] == "power users", "customer_id"]) - churned
    return group_comparison_data(
        matrix, group_a=sorted(power), group_b=sorted(churned), name_a="power users", name_b="churners",
        min_support=min_support, alpha=alpha,
    )
