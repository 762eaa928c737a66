"""Churn-risk models on as-of snapshots, an out-of-time backtest, and the measured lead time.

Three comparators share the scikit-learn estimator contract (``fit``,
``predict_proba``, ``get_params``):

* :class:`ChurnClassifier` with ``model="boosting"``: scikit-learn's
  ``HistGradientBoostingClassifier`` (native missing values and categories);
* :class:`ChurnClassifier` with ``model="logistic"``: an L2-regularised
  logistic regression in a pipeline (median imputation with missing-value
  indicators, scaling, one-hot categories) — the baseline;
* :class:`RuleHealthScore`: the transparent points-per-condition health
  score customer-success platforms use (:data:`DEFAULT_RULES`), mapped to a
  probability by a one-variable logistic fit.

Probabilities are calibrated on a *time-later fold*: the base model is fitted
on the earlier as-of days of the training data and a sigmoid (or isotonic)
map on the latest ``calibration_fraction`` of them.

:func:`backtest_data` trains on earlier as-of days and tests on later ones,
with disjoint customers, and reports ROC-AUC, PR-AUC, Brier score,
calibration and decile lift with customer-cluster bootstrap intervals.
:func:`lead_time_data` measures, for every churner of the test period, the
first as-of day its risk crossed the alert threshold; :func:`threshold_tradeoff_data`
shows lead time, precision and alert volume across thresholds. Associations
only: a feature that predicts churn is not shown to cause it.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import rankdata
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.frozen import FrozenEstimator
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import check_is_fitted, validate_data
from threadpoolctl import threadpool_limits

from journeylib.customers.snapshots import Snapshots, expand_columns, holdout_start_day
from journeylib.exceptions import EmptyResultError, StatisticalWarning
from journeylib.stats import median_interval
from journeylib.store.memory import give_back_freed_memory

__all__ = [
    "DEFAULT_RULES",
    "MODEL_VERSION",
    "Backtest",
    "ChurnClassifier",
    "HealthRule",
    "RuleHealthScore",
    "average_precision",
    "backtest_data",
    "default_models",
    "lead_time_data",
    "lead_time_onset_data",
    "lead_time_summary",
    "model_card",
    "model_card_markdown",
    "roc_auc",
    "snapshot_xy",
    "threshold_tradeoff_data",
]

#: Version written on model cards and scores.
MODEL_VERSION = "churn-risk-1"


def snapshot_xy(snapshots: Snapshots, *, labelled: bool = True) -> tuple[pd.DataFrame, pd.Series, pd.Series]:
    """Return the feature frame, the labels and the as-of days of snapshots.

    Parameters
    ----------
    snapshots : Snapshots
        From :func:`journeylib.customers.snapshots.build_snapshots`.
    labelled : bool, default True
        Only the labelled (not censored) snapshots.

    Returns
    -------
    (pandas.DataFrame, pandas.Series, pandas.Series)
        ``X`` (the catalog's feature columns; category columns as text),
        ``y`` (``churned``, NaN when censored) and ``as_of_day``.
    """
    data = snapshots.labelled if labelled else snapshots.data
    X = data[snapshots.feature_columns].copy()
    return X, data["churned"], data["as_of_day"]


# -- estimators --------------------------------------------------------------------------------
def _categorical(X: Any) -> list[str]:
    if not isinstance(X, pd.DataFrame):
        return []
    return [c for c in X.columns if not (pd.api.types.is_numeric_dtype(X[c]) or pd.api.types.is_bool_dtype(X[c]))]


class ChurnClassifier(ClassifierMixin, BaseEstimator):
    """Calibrated churn-risk classifier: gradient boosting or a regularised logistic baseline.

    Parameters
    ----------
    model : {"boosting", "logistic"}, default "boosting"
        ``HistGradientBoostingClassifier`` or ``LogisticRegression`` (L2, in a
        pipeline with median imputation plus missing indicators and scaling).
    calibration : {"sigmoid", "isotonic", "none"}, default "sigmoid"
        How probabilities are calibrated. Sigmoid by default: a calibration
        fold holds few churners, and isotonic regression overfits them.
    calibration_fraction : float, default 0.25
        Share of the latest training times (``fit(..., time=...)``) held out
        to calibrate; without times, 3-fold ``CalibratedClassifierCV``.
    C : float, default 0.1
        Inverse L2 strength of the logistic model.
    learning_rate, max_iter, max_leaf_nodes, min_samples_leaf, l2_regularization
        Of the boosted model.
    random_state : int, default 0
        Seed of the boosted model.
    n_threads : int or None, default 1
        OpenMP threads while fitting and predicting (None: the machine's
        default). One thread by default: snapshot tables are small, and
        on a busy machine OpenMP threads waiting for cores cost far more
        than they save (measured: 40 s instead of 1 s for 700 rows).

    Attributes
    ----------
    classes_ : numpy.ndarray
        ``[0, 1]`` (or the two labels given).
    estimator_ : estimator
        What ``predict_proba`` uses (the calibrated model).
    base_estimator_ : estimator
        The uncalibrated pipeline.
    calibration_basis_ : str
        How it was calibrated, in words.
    categorical_features_ : list of str
        Text columns treated as categories.
    n_iter_ : int
        Iterations of the base model (boosting rounds, or solver iterations).
    """

    def __init__(
        self,
        model: str = "boosting",
        *,
        calibration: str = "sigmoid",
        calibration_fraction: float = 0.25,
        C: float = 0.1,
        learning_rate: float = 0.05,
        max_iter: int = 200,
        max_leaf_nodes: int = 15,
        min_samples_leaf: int = 40,
        l2_regularization: float = 1.0,
        random_state: int = 0,
        n_threads: int | None = 1,
    ) -> None:
        self.model = model
        self.calibration = calibration
        self.calibration_fraction = calibration_fraction
        self.C = C
        self.learning_rate = learning_rate
        self.max_iter = max_iter
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.l2_regularization = l2_regularization
        self.random_state = random_state
        self.n_threads = n_threads

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        tags.input_tags.allow_nan = True
        return tags

    def _pipeline(self, cats: list[str], nums: list[Any]) -> Pipeline:
        if self.model == "boosting":
            pre = ColumnTransformer(
                [
                    ("cat", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1, encoded_missing_value=-1), cats),
                    ("num", "passthrough", nums),
                ]
            )
            clf = HistGradientBoostingClassifier(
                learning_rate=self.learning_rate, max_iter=self.max_iter, max_leaf_nodes=self.max_leaf_nodes,
                min_samples_leaf=self.min_samples_leaf, l2_regularization=self.l2_regularization,
                categorical_features=list(range(len(cats))) or None, random_state=self.random_state,
            )
            return Pipeline([("prepare", pre), ("model", clf)])
        num = make_pipeline(SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True), StandardScaler())
        cat = make_pipeline(SimpleImputer(strategy="constant", fill_value="(missing)"), OneHotEncoder(handle_unknown="ignore"))
        pre = ColumnTransformer([("cat", cat, cats), ("num", num, nums)])
        return Pipeline([("prepare", pre), ("model", LogisticRegression(C=self.C, max_iter=2000))])

    def fit(self, X: Any, y: Any, *, time: Any = None, coded: Sequence[str] = ()) -> ChurnClassifier:
        """Fit the base model and its calibration.

        Parameters
        ----------
        X : pandas.DataFrame or array-like
            Features (text columns of a frame are categories).
        y : array-like
            Binary labels.
        time : array-like, optional
            Each row's as-of time (numbers); the latest
            ``calibration_fraction`` of the distinct times calibrate.
        coded : sequence of str, default ()
            Columns of the frame *X* held as codes of their numeric values
            (:func:`journeylib.customers.snapshots.compact_columns`): they
            are read as those numbers (not as categories), the rows of each
            fold or block expanded when they are copied, so the model is the
            one fitted on the expanded frame while the numbers of all the
            rows are never held at once.

        Returns
        -------
        ChurnClassifier
            self.
        """
        with threadpool_limits(limits=self.n_threads, user_api="openmp"):
            self._fit(X, y, time=time, coded=coded)
        self.n_iter_ = np.asarray(self.base_estimator_.named_steps["model"].n_iter_).max()
        return self

    def _fit(self, X: Any, y: Any, *, time: Any = None, coded: Sequence[str] = ()) -> ChurnClassifier:
        """Fit the base model and its calibration (the work of :meth:`fit`, inside its thread limit)."""
        if self.model not in ("boosting", "logistic"):
            msg = f"ChurnClassifier: model must be 'boosting' or 'logistic'; got {self.model!r}"
            raise ValueError(msg)
        if self.calibration not in ("sigmoid", "isotonic", "none"):
            msg = f"ChurnClassifier: calibration must be 'sigmoid', 'isotonic' or 'none'; got {self.calibration!r}"
            raise ValueError(msg)
        frame = isinstance(X, pd.DataFrame)
        if frame:
            Xv = X  # not modified: rows are copied (_text_rows) before their text columns are converted
            self.feature_names_in_ = np.asarray(Xv.columns, dtype=object)
            self.n_features_in_ = Xv.shape[1]
            y_arr = np.asarray(y)
            if len(y_arr) != len(Xv):
                msg = f"ChurnClassifier.fit: X has {len(Xv)} rows and y {len(y_arr)}"
                raise ValueError(msg)
        else:
            Xv, y_arr = validate_data(self, X, y, ensure_all_finite="allow-nan", reset=True)
        y_type = type_of_target(y_arr, input_name="y", raise_unknown=True)
        if y_type != "binary":
            msg = f"Only binary classification is supported. The type of the target is {y_type}."
            raise ValueError(msg)
        self.classes_ = np.unique(y_arr)
        coded = [c for c in coded if c in Xv.columns] if frame else []
        cats = [c for c in _categorical(Xv) if c not in coded]
        nums = [c for c in (Xv.columns if frame else range(Xv.shape[1])) if c not in cats]
        self.categorical_features_ = cats
        base = self._pipeline(cats, nums)
        if self.calibration == "none":
            self.base_estimator_ = _fit_steps(base, Xv, None, cats, y_arr, coded)
            self.estimator_ = self.base_estimator_
            self.calibration_basis_ = "not calibrated"
            return self
        t = None if time is None else np.asarray(time, dtype=float)
        if t is not None:
            times = np.unique(t)
            cut = times[int(np.floor(len(times) * (1 - self.calibration_fraction)))] if len(times) > 1 else np.inf
            early, late = t < cut, t >= cut
            y_late, y_early = y_arr[late], y_arr[early]
            if len(np.unique(y_late)) == 2 and len(np.unique(y_early)) == 2:
                fitted = _fit_steps(base, Xv, early, cats, y_early, coded)
                cal = CalibratedClassifierCV(FrozenEstimator(fitted), method=self.calibration)
                self.estimator_ = cal.fit(_text_rows(Xv, late, cats, coded), y_late)
                self.base_estimator_ = fitted
                self.calibration_basis_ = (
                    f"{self.calibration} map fitted on the latest {int(late.sum())} training rows "
                    f"({int(y_late.sum())} churned); base model on the {int(early.sum())} earlier rows"
                )
                return self
        cal = CalibratedClassifierCV(base, method=self.calibration, cv=3)
        self.estimator_ = cal.fit(_text_rows(Xv, None, cats, coded), y_arr)
        self.base_estimator_ = self.estimator_.calibrated_classifiers_[0].estimator
        self.calibration_basis_ = f"{self.calibration} map by 3-fold cross-validation (no times given or one class in a fold)"
        return self

    def _prepare(self, X: Any) -> Any:
        check_is_fitted(self, "estimator_")
        if isinstance(X, pd.DataFrame):
            missing = [c for c in self.feature_names_in_ if c not in X.columns]
            if missing:
                msg = f"ChurnClassifier: X lacks the fitted feature columns {missing[:5]}"
                raise ValueError(msg)
            Xv = X[list(self.feature_names_in_)].reset_index(drop=True).copy()
            for c in self.categorical_features_:
                Xv[c] = _as_text(Xv[c])
            return Xv
        return validate_data(self, X, ensure_all_finite="allow-nan", reset=False)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Return the calibrated probabilities of each class (column 1: churn).

        Parameters
        ----------
        X : pandas.DataFrame or array-like
            Features, as in :meth:`fit`.

        Returns
        -------
        numpy.ndarray
            Shape (n, 2).
        """
        Xv = self._prepare(X)
        with threadpool_limits(limits=self.n_threads, user_api="openmp"):
            return np.asarray(self.estimator_.predict_proba(Xv))

    def predict(self, X: Any) -> np.ndarray:
        """Return the more probable class of each row."""
        proba = self.predict_proba(X)
        return np.asarray(self.classes_[np.argmax(proba, axis=1)])


def _as_text(col: pd.Series) -> pd.Series:
    """Return a category column as the model reads it: each value's text (``str``), missing values NaN."""
    return col.astype(object).where(col.notna(), None).astype(str).where(col.notna(), np.nan)


def _text_rows(X: Any, mask: np.ndarray | None, cats: Sequence[Any], coded: Sequence[str] = ()) -> Any:
    """Return rows *mask* of *X* (all when None) as the model reads them: a new frame, index 0..n-1, *cats* as text.

    The rows are copied once (``X.take``, or ``X.copy()``), the new frame is given a fresh
    index in place, its columns *coded* are expanded to their numbers
    (:func:`journeylib.customers.snapshots.expand_columns`) and its category
    columns are converted; *X* is not modified.
    """
    if not isinstance(X, pd.DataFrame):
        return X if mask is None else X[mask]
    out = X.copy() if mask is None else X.take(np.flatnonzero(mask))
    out.index = pd.RangeIndex(len(out))
    if coded:
        out = expand_columns(out, coded)
    for c in cats:
        out[c] = _as_text(out[c])
    return out


#: Rows the boosted model's preparing step transforms at a time when it is fitted (:func:`_prepare_in_blocks`).
PREPARE_BLOCK_ROWS = 50_000


def _fit_steps(
    pipeline: Pipeline, X: Any, mask: np.ndarray | None, cats: Sequence[Any], y: np.ndarray, coded: Sequence[str] = ()
) -> Pipeline:
    """Fit *pipeline* on rows *mask* of *X* (all when None; :func:`_text_rows`) step by step; return it.

    ``pipeline[:-1]`` (the preparing steps, sharing their estimators with
    *pipeline*) is fitted and transforms the rows, then the last step is
    fitted on the transformed array — what ``pipeline.fit`` does, except
    that the training frame is let go before the last step is
    fitted (``pipeline.fit`` holds its input until it returns; on 10M-event
    stores the training frame is a few hundred MB), that the boosted model's
    preparing step transforms the rows in blocks (:func:`_prepare_in_blocks`),
    and that a boosted model that stops early is given its training and
    validation rows already split (:func:`_validation_indices`): the
    preparing step then writes the two parts directly, so the transformed
    array of all the rows is never made (when a category of the validation
    part is missing from the training part, the array is put back together
    from the parts and the model splits it itself, as ``pipeline.fit`` does).
    """
    y_arr = np.asarray(y)
    planned = _validation_indices(pipeline[-1], y_arr)
    if planned is not None:
        parts = _prepare_in_blocks(pipeline[:-1], X, mask, cats, y, coded, parts=planned)
        if parts is not None:
            (X_train, X_val), (train, val) = parts, planned
            del parts
            if _validation_covered(pipeline[-1], X_train, X_val):
                give_back_freed_memory()  # the blocks' frames, freed: the boosted model's copies are allocated next
                pipeline[-1].fit(X_train, y_arr[train], X_val=X_val, y_val=y_arr[val])
                return pipeline
            Xt = np.empty((len(train) + len(val), X_train.shape[1]), dtype=X_train.dtype)
            Xt[train], Xt[val] = X_train, X_val
            del X_train, X_val
            pipeline[-1].fit(Xt, y)
            return pipeline
    Xt = _prepare_in_blocks(pipeline[:-1], X, mask, cats, y, coded)
    if Xt is None:
        Xt = pipeline[:-1].fit_transform(_text_rows(X, mask, cats, coded), y)
    split = _validation_split(pipeline[-1], Xt, y) if planned is not None else None
    if split is None:
        pipeline[-1].fit(Xt, y)
        return pipeline
    del Xt  # its two parts are copies, and the boosted model copies them again
    X_train, X_val, y_train, y_val = split
    del split
    give_back_freed_memory()  # the blocks' frames, freed: the boosted model's copies are allocated next
    pipeline[-1].fit(X_train, y_train, X_val=X_val, y_val=y_val)
    return pipeline


def _prepare_in_blocks(
    prepare: Pipeline, X: Any, mask: np.ndarray | None, cats: Sequence[Any], y: np.ndarray, coded: Sequence[str] = (),
    *, parts: Sequence[np.ndarray] | None = None,
) -> Any:
    """Fit the boosted model's preparing step and return its transform of rows *mask* of *X*, block by block; or None.

    ``prepare`` (``pipeline[:-1]`` of the boosted model: one
    ``ColumnTransformer`` of an ``OrdinalEncoder`` of the category columns
    and the other columns passed through) is fitted on the rows holding the
    first occurrence of each distinct value of each category column (a
    missing value included), in their order: what it learns from its rows is
    the encoder's categories (each column's distinct values, sorted), and
    the columns' names and number, all the same as from every row. The rows
    are then transformed ``PREPARE_BLOCK_ROWS`` at a time into one array:
    the encoder maps each value on its own and the other columns are copied,
    so the array is the one ``fit_transform`` returns, element for element
    (a test compares both, and the fitted steps, pickled). ``fit_transform``
    of all the rows holds the training frame, its numeric columns as a frame,
    that frame as an array and the stacked result at once (at 10M events
    about 350 MB above the table); in blocks, the result and one block.

    With *parts* (arrays of positions among the rows *mask*, e.g. the
    training and validation rows of :func:`_validation_indices`), a list of
    one array per part is returned instead: the transformed rows of each
    part, in its order (the rows of the whole array at those positions).

    Returns None (fit as usual) for any other preparing step, a frame
    that is not a ``pandas.DataFrame``, no category column, or no more rows
    than one block.
    """
    if not isinstance(X, pd.DataFrame) or len(prepare) != 1:
        return None
    ct = prepare[0]
    if not isinstance(ct, ColumnTransformer) or ct.remainder != "drop" or len(ct.transformers) != 2:
        return None
    (_, enc, enc_cols), (_, num, _) = ct.transformers
    if not isinstance(enc, OrdinalEncoder) or not isinstance(num, str) or num != "passthrough":
        return None
    if enc.categories != "auto" or enc.min_frequency is not None or enc.max_categories is not None:
        return None
    if not len(cats) or list(enc_cols) != list(cats):
        return None  # no category column: nothing learnt from the rows, and none to pick them by
    rows = np.arange(len(X)) if mask is None else np.flatnonzero(mask)
    if len(rows) <= PREPARE_BLOCK_ROWS:
        return None
    y_arr = np.asarray(y)
    picks: set[int] = set()
    for c in cats:
        values = _as_text(X[c].take(rows)).to_numpy(dtype=object)
        codes = pd.factorize(values, use_na_sentinel=False)[0]
        picks.update(np.unique(codes, return_index=True)[1].tolist())
    first = np.asarray(sorted(picks), dtype=np.int64)
    ct.fit(_text_rows(X.take(rows[first]), None, cats, coded), y_arr[first] if y_arr.ndim else y_arr)
    outs: list[np.ndarray] = []
    for order in [np.arange(len(rows))] if parts is None else parts:
        chosen = rows[np.asarray(order, dtype=np.int64)]
        if not len(chosen):
            return None
        out: np.ndarray | None = None
        for start in range(0, len(chosen), PREPARE_BLOCK_ROWS):
            part = np.asarray(ct.transform(_text_rows(X.take(chosen[start:start + PREPARE_BLOCK_ROWS]), None, cats, coded)))
            if out is None:
                out = np.empty((len(chosen), part.shape[1]), dtype=part.dtype)
            out[start:start + len(part)] = part
            del part
        assert out is not None
        outs.append(out)
    return outs[0] if parts is None else outs


def _validation_split(model: Any, X: Any, y: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """Return the early-stopping split ``HistGradientBoostingClassifier.fit(X, y)`` would make, or None.

    With early stopping the boosted model copies its input (``X``, 80 MB for
    200,000 rows of 49 features) and splits the copy into a training and a
    validation part (a second copy) while the caller still holds ``X``:
    three copies alive while the trees grow. Splitting ``X`` here the same
    way (:func:`_validation_indices`) and fitting the model on the training
    part with the validation part as ``X_val``, ``y_val`` lets ``X`` go: two
    copies. The model is the same, bit for bit (a test checks it), when the
    model would encode the same categories and labels from the training part
    as from all the rows and would stop early in both fits.

    So this returns None (fit as usual) unless :func:`_validation_indices`
    gives the split, *X* is a 2-D numeric array of one row per label, and
    the training part holds every category value of the validation part
    (:func:`_validation_covered`).

    Parameters
    ----------
    model : estimator
        The last step of the pipeline, unfitted.
    X : array-like
        The transformed training rows.
    y : array-like
        Their labels.

    Returns
    -------
    tuple of numpy.ndarray or None
        ``X_train``, ``X_val``, ``y_train``, ``y_val``; None when the model
        must split the rows itself.
    """
    if not isinstance(X, np.ndarray) or X.ndim != 2 or X.dtype.kind not in "biuf":
        return None
    y_arr = np.asarray(y)
    if y_arr.ndim != 1 or len(y_arr) != len(X):
        return None
    planned = _validation_indices(model, y_arr)
    if planned is None:
        return None
    train, val = planned
    X_train, X_val = X[train], X[val]
    if not _validation_covered(model, X_train, X_val):
        return None
    return X_train, X_val, y_arr[train], y_arr[val]


def _validation_indices(model: Any, y: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """Return the positions of the training and validation rows ``HistGradientBoostingClassifier.fit`` would split, or None.

    The split ``fit`` makes when it stops early: ``train_test_split``
    stratified by the labels, ``test_size`` the model's
    ``validation_fraction``, ``random_state`` the first number the model
    draws from ``check_random_state(random_state)`` (so in scikit-learn
    1.9.1's source; tests check it against the installed version). It
    depends only on the labels and their number, so it is made on the rows'
    positions. None (the model must split the rows itself) unless *model*
    is a ``HistGradientBoostingClassifier`` whose ``fit`` takes ``X_val``,
    with an integer ``random_state``, no ``class_weight`` (its weights would
    be computed from the training part's labels only), no ``warm_start``, a
    ``validation_fraction``, early stopping on the loss (``early_stopping``
    True, or "auto" with more than 10,000 rows and training rows) and
    categorical features given by position; *y* one label per row; the
    training part holding every label.
    """
    if not isinstance(model, HistGradientBoostingClassifier):
        return None
    if "X_val" not in inspect.signature(model.fit).parameters:
        return None  # scikit-learn before 1.7
    seed = model.random_state
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        return None
    if model.warm_start or model.class_weight is not None or model.validation_fraction is None:
        return None
    if model.scoring != "loss" or model.early_stopping is False:
        return None
    if _categorical_positions(model) is None:
        return None
    y_arr = np.asarray(y)
    if y_arr.ndim != 1:
        return None
    try:
        # HistGradientBoostingClassifier.fit: the first draw of check_random_state(random_state) seeds its split
        split_seed = check_random_state(seed).randint(np.iinfo(np.uint32).max, dtype="u8")
        train, val = train_test_split(
            np.arange(len(y_arr)), test_size=model.validation_fraction, stratify=y_arr, random_state=split_seed
        )
    except ValueError:
        return None  # e.g. too few rows of a class: the model's own fit raises the error
    if model.early_stopping == "auto" and not (len(y_arr) > 10_000 and len(train) > 10_000):
        return None  # "auto" stops early above 10,000 rows (of X; of X_train when the validation rows are given)
    if not np.array_equal(np.unique(y_arr[train]), np.unique(y_arr)):
        return None
    return np.asarray(train), np.asarray(val)


def _categorical_positions(model: Any) -> list[int] | None:
    """Return the positions of *model*'s categorical features (empty: none), or None when they are not given by position."""
    cats = model.categorical_features
    if cats is None:
        return []
    if isinstance(cats, (list, tuple)) and all(isinstance(c, (int, np.integer)) and not isinstance(c, bool) for c in cats):
        return [int(c) for c in cats]
    return None


def _validation_covered(model: Any, X_train: Any, X_val: Any) -> bool:
    """Whether the training part holds every value of the validation part in each of *model*'s categorical features.

    A category seen only in the validation rows (or a missing one) would be
    encoded otherwise by the model fitted on the training part alone. The
    parts must be 2-D numeric arrays.
    """
    arrays = all(isinstance(a, np.ndarray) and a.ndim == 2 and a.dtype.kind in "biuf" for a in (X_train, X_val))
    positions = _categorical_positions(model) if arrays else None
    if positions is None:
        return False
    return all(np.isin(np.unique(X_val[:, j]), np.unique(X_train[:, j])).all() for j in positions)


@dataclass(frozen=True)
class HealthRule:
    """One condition of the rule-based health score.

    Attributes
    ----------
    feature : str
        A snapshot feature column.
    op : {"<", "<=", ">", ">="}
        Comparison with ``threshold``; a missing value never meets it.
    threshold : float
        The value compared with.
    points : float
        Risk points added when the condition holds.
    text : str
        The condition in journey words.
    """

    feature: str
    op: str
    threshold: float
    points: float
    text: str


#: The default health rules (100 points in all; more points = less healthy). Hand-weighted, as CS platforms do.
DEFAULT_RULES: tuple[HealthRule, ...] = (
    HealthRule("activity_14d", "<=", 0, 25, "no activity in the last 14 days"),
    HealthRule("activity_ratio_30d", "<", 0.5, 25, "activity in the last 30 days below half of the customer's usual"),
    HealthRule("tickets_30d", ">=", 2, 10, "2 or more support tickets in the last 30 days"),
    HealthRule("negative_tickets_30d", ">=", 1, 10, "a negative ticket in the last 30 days"),
    HealthRule("email_open_rate_60d", "<=", 0, 10, "no e-mail opened in the last 60 days"),
    HealthRule("unsubscribed", ">=", 1, 5, "unsubscribed from e-mails"),
    HealthRule("days_in_stage_vs_peers", ">=", 2, 15, "in the current stage at least twice as long as peers"),
)

_OPS = {"<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal}


class RuleHealthScore(ClassifierMixin, BaseEstimator):
    """A transparent health score: points per condition met, mapped to a churn probability.

    ``risk_points`` is the sum of the points of the rules that hold (0–100
    with :data:`DEFAULT_RULES`; the health score is ``100 - risk_points``).
    ``fit`` learns only the map from points to probability (a one-variable
    logistic regression), so the ranking is the rules' own.

    Parameters
    ----------
    rules : sequence of HealthRule, optional
        Default :data:`DEFAULT_RULES`. A rule whose feature is not in the
        data is skipped (listed in ``skipped_rules_``, with a warning).

    Attributes
    ----------
    rules_ : list of HealthRule
        The rules applied.
    skipped_rules_ : list of HealthRule
        Rules whose feature was missing at fit.
    calibrator_ : LogisticRegression
        Points → probability.
    classes_ : numpy.ndarray
        The two labels.
    """

    def __init__(self, rules: Sequence[HealthRule] | None = None) -> None:
        self.rules = rules

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        tags.input_tags.allow_nan = True
        return tags

    def risk_points(self, X: pd.DataFrame, *, rules: Sequence[HealthRule] | None = None) -> np.ndarray:
        """Return the risk points of each row (the sum of the points of the rules that hold).

        Parameters
        ----------
        X : pandas.DataFrame
            Snapshot features.
        rules : sequence of HealthRule, optional
            Default: the fitted rules.

        Returns
        -------
        numpy.ndarray
            Points per row.
        """
        use = rules if rules is not None else (check_is_fitted(self, "rules_") or self.rules_)
        pts = np.zeros(len(X))
        for r in use:
            v = pd.to_numeric(X[r.feature], errors="coerce").to_numpy(dtype=float)
            with np.errstate(invalid="ignore"):
                hit = _OPS[r.op](v, r.threshold) & np.isfinite(v)
            pts += np.where(hit, r.points, 0.0)
        return pts

    def fit(self, X: pd.DataFrame, y: Any, **fit_params: Any) -> RuleHealthScore:
        """Check the rules against the columns and fit the points → probability map.

        Parameters
        ----------
        X : pandas.DataFrame
            Snapshot features.
        y : array-like
            Binary labels.
        **fit_params
            Ignored (``time``, accepted like :meth:`ChurnClassifier.fit`).

        Returns
        -------
        RuleHealthScore
            self.

        Raises
        ------
        TypeError
            If X is not a DataFrame.
        ValueError
            If an operator is unknown, y is not binary, or no rule's feature is in X.
        """
        if not isinstance(X, pd.DataFrame):
            msg = f"RuleHealthScore.fit: X must be a DataFrame of snapshot features (rules name columns); got {type(X).__name__}"
            raise TypeError(msg)
        rules = list(self.rules) if self.rules is not None else list(DEFAULT_RULES)
        bad = [r.op for r in rules if r.op not in _OPS]
        if bad:
            msg = f"RuleHealthScore: rule operators must be one of {', '.join(_OPS)}; got {bad}"
            raise ValueError(msg)
        self.rules_ = [r for r in rules if r.feature in X.columns]
        self.skipped_rules_ = [r for r in rules if r.feature not in X.columns]
        if not self.rules_:
            msg = f"RuleHealthScore: none of the rules' features ({[r.feature for r in rules]}) is a column of X"
            raise ValueError(msg)
        if self.skipped_rules_:
            msg = f"RuleHealthScore: rules skipped, their feature is not in the data: {[r.feature for r in self.skipped_rules_]}"
            warnings.warn(msg, StatisticalWarning, stacklevel=2)
        y_arr = np.asarray(y)
        if type_of_target(y_arr) != "binary":
            msg = f"RuleHealthScore.fit: y must be binary; got target type {type_of_target(y_arr)!r}"
            raise ValueError(msg)
        self.classes_ = np.unique(y_arr)
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.n_features_in_ = X.shape[1]
        pts = self.risk_points(X, rules=self.rules_)
        self.calibrator_ = LogisticRegression(C=1e6, max_iter=1000).fit(pts.reshape(-1, 1) / 100.0, y_arr)
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Return the probabilities of each class from the risk points."""
        check_is_fitted(self, "calibrator_")
        return np.asarray(self.calibrator_.predict_proba(self.risk_points(X).reshape(-1, 1) / 100.0))

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Return the more probable class of each row."""
        return np.asarray(self.classes_[np.argmax(self.predict_proba(X), axis=1)])


# -- the out-of-time backtest ------------------------------------------------------------------
@dataclass(frozen=True)
class Backtest:
    """An out-of-time backtest of churn-risk models.

    Attributes
    ----------
    metrics : pandas.DataFrame
        One row per model: ``model``, ``roc_auc``, ``roc_auc_low``,
        ``roc_auc_high``, ``pr_auc`` (average precision), ``pr_auc_low``,
        ``pr_auc_high``, ``brier``, ``brier_low``, ``brier_high``,
        ``calibration_error`` (expected calibration error over 10 risk
        bins), ``calibration_error_low``, ``calibration_error_high``,
        ``n_snapshots``, ``n_customers``, ``n_churned`` (positive
        snapshots), ``base_rate`` (positive share: the PR-AUC of a random
        ranking), ``calibration_basis``. Intervals: percentile bootstrap
        over test customers (all snapshots of a drawn customer together).
    calibration : pandas.DataFrame
        ``model``, ``bin`` (1 = lowest risk), ``n``, ``mean_predicted``,
        ``observed`` (churned share), ``observed_low``, ``observed_high``.
    lift : pandas.DataFrame
        ``model``, ``decile`` (1 = riskiest tenth), ``n``, ``churned``,
        ``rate``, ``lift`` (rate / overall rate), ``lift_low``, ``lift_high``.
    predictions : pandas.DataFrame
        The test snapshots: ``customer_id``, ``as_of_day``, ``as_of``,
        ``churned``, ``churn_at``, ``days_to_churn`` and one risk column per
        model (``risk_<model>``).
    split : dict
        The train and test windows, their sizes, and the snapshots left out.
    models : dict
        The fitted models by name.
    features : list of str
        Feature columns used.
    train_keys : pandas.DataFrame
        ``customer_id`` and ``as_of_day`` of the training snapshots.
    horizon_days, every_days : int
        Of the snapshots (``every_days``: the training grid).
    alpha : float
        1 - confidence level.
    test_every_days : int
        Spacing of the finer test grid the test snapshots are on, 0 when
        they are on the training grid (:attr:`test_step_days` is the one in use).
    """

    metrics: pd.DataFrame
    calibration: pd.DataFrame
    lift: pd.DataFrame
    predictions: pd.DataFrame
    split: dict[str, Any]
    models: dict[str, Any] = field(repr=False)
    features: list[str] = field(repr=False)
    train_keys: pd.DataFrame = field(repr=False, default_factory=pd.DataFrame)
    horizon_days: int = 60
    every_days: int = 7
    alpha: float = 0.05
    test_every_days: int = 0

    @property
    def test_step_days(self) -> int:
        """Spacing (days) of the as-of grid of the test snapshots: ``test_every_days``, else ``every_days``."""
        return int(self.test_every_days or self.every_days)


def default_models(random_state: int = 0) -> dict[str, Any]:
    """Return the three comparators: the boosted model, the logistic baseline and the rule score."""
    return {
        "boosted": ChurnClassifier("boosting", random_state=random_state),
        "logistic": ChurnClassifier("logistic"),
        "rule_score": RuleHealthScore(),
    }


def _cluster_samples(customers: np.ndarray, n_boot: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Row indices of *n_boot* bootstrap samples drawing whole customers with replacement."""
    codes, uniq = pd.factorize(customers)
    order = np.argsort(codes, kind="stable")
    counts = np.bincount(codes, minlength=len(uniq))
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    out = []
    for _ in range(n_boot):
        pick = rng.integers(0, len(uniq), len(uniq))
        lens = counts[pick]
        offs = np.repeat(starts[pick] - np.concatenate([[0], np.cumsum(lens)[:-1]]), lens)
        out.append(order[np.arange(lens.sum()) + offs])
    return out


def _ece(y: np.ndarray, p: np.ndarray, bins: np.ndarray) -> float:
    """Return the expected calibration error: the count-weighted mean |observed - predicted| over the risk bins."""
    obs = np.bincount(bins, weights=y, minlength=11)
    pre = np.bincount(bins, weights=p, minlength=11)
    return float(np.abs(obs - pre).sum() / len(y))


def roc_auc(y: np.ndarray, p: np.ndarray) -> float:
    """Return the ROC-AUC as the Mann-Whitney statistic (ties count one half).

    The same value as ``sklearn.metrics.roc_auc_score`` without its input
    checks, for the many bootstrap samples.

    Parameters
    ----------
    y : numpy.ndarray
        0/1 labels (both present).
    p : numpy.ndarray
        Scores.

    Returns
    -------
    float
        The area under the ROC curve.
    """
    ranks = rankdata(p)
    n1 = y.sum()
    n0 = len(y) - n1
    return float((ranks[y == 1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def average_precision(y: np.ndarray, p: np.ndarray) -> float:
    """Return the average precision as ``sklearn.metrics.average_precision_score`` defines it.

    Step-wise, one point per distinct score; without sklearn's input checks,
    for the many bootstrap samples.

    Parameters
    ----------
    y : numpy.ndarray
        0/1 labels (at least one 1).
    p : numpy.ndarray
        Scores.

    Returns
    -------
    float
        The area under the precision-recall curve.
    """
    order = np.argsort(-p, kind="stable")
    ys, ps = y[order], p[order]
    last = np.r_[np.flatnonzero(np.diff(ps)), len(ps) - 1]  # the last row of each distinct score
    tps = np.cumsum(ys)[last]
    precision = tps / (last + 1)
    recall = tps / tps[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


class _ResampledRanks:
    """Scores sorted once, for the ROC-AUC and average precision of many resamples of the same rows.

    A resample is given by how many times it draws each row (a bootstrap
    draws whole customers, so rows repeat). Both metrics depend only on
    those counts within each distinct score, so each resample costs a
    gather and two sums instead of a sort. The values equal
    :func:`roc_auc` and :func:`average_precision` of the resampled arrays
    exactly: the Mann-Whitney rank sum is a sum of half-integers (exact in
    floating point) and the precision-recall steps are built from the same
    integer counts.
    """

    def __init__(self, y: np.ndarray, p: np.ndarray) -> None:
        self.order = np.argsort(p, kind="stable")
        ps = p[self.order]
        self.starts = np.flatnonzero(np.r_[True, ps[1:] != ps[:-1]])  # first sorted row of each distinct score
        self.y_sorted = np.asarray(y, dtype=np.int64)[self.order]

    def metrics(self, counts: np.ndarray) -> tuple[float, float]:
        """Return (ROC-AUC, average precision) of the resample drawing row ``i`` ``counts[i]`` times."""
        w = np.asarray(counts, dtype=np.int64)[self.order]
        n_v = np.add.reduceat(w, self.starts)  # rows of each distinct score, ascending
        pos_v = np.add.reduceat(w * self.y_sorted, self.starts)
        less = np.cumsum(n_v) - n_v
        n1 = pos_v.sum()
        n0 = n_v.sum() - n1
        rank_sum = (pos_v * (2 * less + n_v + 1)).sum() / 2  # average ranks of ties, as scipy's rankdata
        auc = float((rank_sum - n1 * (n1 + 1) / 2) / (n1 * n0))
        keep = n_v[::-1] > 0  # distinct scores of the resample, highest first
        tps = np.cumsum(pos_v[::-1])[keep]
        seen = np.cumsum(n_v[::-1])[keep]
        precision = tps / seen
        recall = tps / tps[-1]
        return auc, float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def _interval(values: Sequence[float], alpha: float) -> tuple[float, float]:
    v = np.asarray([x for x in values if np.isfinite(x)], dtype=float)
    if not len(v):
        return float("nan"), float("nan")
    return float(np.quantile(v, alpha / 2)), float(np.quantile(v, 1 - alpha / 2))


def backtest_data(
    snapshots: Snapshots,
    *,
    models: Mapping[str, Any] | None = None,
    test_fraction: float = 0.3,
    test_customer_fraction: float = 0.5,
    n_boot: int = 200,
    alpha: float = 0.05,
    random_state: int = 0,
) -> Backtest:
    """Train on earlier as-of days and test on later ones, with disjoint customers.

    The labelled as-of days are split in time: the last ``test_fraction`` of
    them form the test period. Training snapshots are those whose whole
    horizon ended before the test period began (``as_of + horizon_days <=``
    the first test day), so no training label reads the test period.
    Customers are split at random (seeded): a share ``test_customer_fraction``
    is only ever tested, the others only ever trained on.

    Snapshots built with a finer test grid (``build_snapshots(...,
    test_every_days=1)``) are split on their training grid alone (the same
    days, customers and training rows as without the finer grid); the test
    period then holds every test-customer snapshot of both grids from its
    start. Customers seen only on the finer grid (their paying life falls
    between two training-grid days) are tested, never trained on
    (``split["test_grid_only_customers"]``).

    Parameters
    ----------
    snapshots : Snapshots
        From :func:`journeylib.customers.snapshots.build_snapshots`.
    models : mapping of str to estimator, optional
        Default: ``boosted``, ``logistic``, ``rule_score`` (:func:`default_models`).
    test_fraction : float, default 0.3
        Share of the labelled as-of days in the test period.
    test_customer_fraction : float, default 0.5
        Share of customers held out for testing.
    n_boot : int, default 200
        Bootstrap samples for the intervals.
    alpha : float, default 0.05
        1 - confidence level.
    random_state : int, default 0
        Seed of the customer split and the bootstrap.

    Returns
    -------
    Backtest
        Metrics, calibration and lift tables with intervals, the test
        predictions, the split and the fitted models.

    Raises
    ------
    ValueError
        If a fraction is not strictly between 0 and 1, or the test period
        starts before the snapshots' finer test grid (a larger
        ``test_fraction`` than the snapshots were built with).
    EmptyResultError
        If training or testing has fewer than 10 churned snapshots or
        only one class.
    """
    for name, v in (("test_fraction", test_fraction), ("test_customer_fraction", test_customer_fraction)):
        if not 0 < v < 1:
            msg = f"backtest_data: {name} must be strictly between 0 and 1; got {v!r}"
            raise ValueError(msg)
    lab = snapshots.labelled
    feats = snapshots.feature_columns
    on_grid = snapshots.on_grid(lab["as_of_day"])  # the training grid (all rows without a finer test grid)
    days = np.sort(lab.loc[on_grid, "as_of_day"].unique())
    if len(days) < 2:
        msg = f"backtest_data: the labelled snapshots cover {len(days)} as-of day(s); an out-of-time test needs at least 2"
        raise EmptyResultError(msg)
    test_start = holdout_start_day(days, test_fraction=test_fraction)
    if snapshots.test_every_days and snapshots.test_from_day is not None and test_start < snapshots.test_from_day:
        msg = (
            f"backtest_data: test_fraction={test_fraction} starts the test period on {_day_text(test_start)}, before the "
            f"snapshots' {snapshots.test_every_days}-day test grid (from {_day_text(snapshots.test_from_day)}); build the "
            "snapshots with the same test_fraction (or give backtest_data a smaller one)"
        )
        raise ValueError(msg)
    h = snapshots.horizon_days
    rng = np.random.default_rng(random_state)
    customers = np.sort(lab.loc[on_grid, "customer_id"].unique())
    test_customers = set(rng.choice(customers, size=max(1, round(len(customers) * test_customer_fraction)), replace=False))
    grid_only = set(lab["customer_id"].unique()) - set(customers)  # seen only on the finer test grid: never trainable
    is_test_c = lab["customer_id"].isin(test_customers | grid_only).to_numpy()
    train_m = (~is_test_c) & on_grid & (lab["as_of_day"].to_numpy() + 1 + h <= test_start)
    test_m = is_test_c & (lab["as_of_day"].to_numpy() >= test_start)
    train, test = lab[train_m].reset_index(drop=True), lab[test_m].reset_index(drop=True)
    for name, part in (("training", train), ("test", test)):
        npos = int(part["churned"].sum())
        if npos < 10 or npos == len(part):
            msg = (
                f"backtest_data: the {name} snapshots hold {npos} churned of {len(part)}; at least 10 of each class are "
                "needed. Use more as-of days (every_days), a longer data span, or a larger test_fraction."
            )
            raise EmptyResultError(msg)
    split = {
        "train_from": _day_text(int(train["as_of_day"].min())), "train_to": _day_text(int(train["as_of_day"].max())),
        "test_from": _day_text(int(test["as_of_day"].min())), "test_to": _day_text(int(test["as_of_day"].max())),
        "train_snapshots": len(train), "train_customers": int(train["customer_id"].nunique()),
        "train_churned": int(train["churned"].sum()), "test_snapshots": len(test),
        "test_customers": int(test["customer_id"].nunique()), "test_churned": int(test["churned"].sum()),
        "left_out_gap": int(((~is_test_c) & ~train_m & on_grid).sum()), "left_out_before_test": int((is_test_c & ~test_m).sum()),
        "censored": snapshots.n_excluded("censored"), "every_days": snapshots.every_days or 7,
        "test_every_days": snapshots.test_every_days or snapshots.every_days or 7,
        "left_out_test_grid_training_customers": int(((~is_test_c) & ~on_grid).sum()),
        "test_grid_only_customers": int(test[test["customer_id"].isin(grid_only)]["customer_id"].nunique()),
    }
    use = dict(models) if models is not None else default_models(random_state)
    fitted: dict[str, Any] = {}
    pred = test[["customer_id", "as_of_day", "as_of", "churned", "churn_at", "days_to_churn"]].copy()
    y_tr = train["churned"].to_numpy(dtype=int)
    for name, est in use.items():
        model = clone(est)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", StatisticalWarning)
            model.fit(train[feats], y_tr, time=train["as_of_day"].to_numpy())
        fitted[name] = model
        pred[f"risk_{name}"] = model.predict_proba(test[feats])[:, 1]
    metrics, calib, lift = _evaluate(pred, list(use), fitted, n_boot=n_boot, alpha=alpha, random_state=random_state)
    return Backtest(
        metrics=metrics, calibration=calib, lift=lift, predictions=pred, split=split, models=fitted, features=feats,
        train_keys=train[["customer_id", "as_of_day"]].copy(), horizon_days=h, every_days=snapshots.every_days or 7, alpha=alpha,
        test_every_days=snapshots.test_every_days,
    )


def _day_text(day: int) -> str:
    return f"{pd.Timestamp('1970-01-01') + pd.Timedelta(days=day):%Y-%m-%d}"


def _evaluate(
    pred: pd.DataFrame, names: list[str], fitted: dict[str, Any], *, n_boot: int, alpha: float, random_state: int
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    y = pred["churned"].to_numpy(dtype=int)
    rng = np.random.default_rng(random_state + 1)
    samples = _cluster_samples(pred["customer_id"].to_numpy(), n_boot, rng)
    rows, cal_rows, lift_rows = [], [], []
    for name in names:
        p = pred[f"risk_{name}"].to_numpy(dtype=float)
        cal_bin = pd.qcut(pd.Series(p).rank(method="first"), 10, labels=False).to_numpy() + 1
        dec = 11 - cal_bin  # decile 1 = riskiest tenth
        point = {
            "roc_auc": roc_auc_score(y, p), "pr_auc": average_precision_score(y, p), "brier": brier_score_loss(y, p),
            "calibration_error": _ece(y, p, cal_bin),
        }
        boot: dict[str, list[float]] = {k: [] for k in point}
        obs_boot = np.full((n_boot, 10), np.nan)
        lift_boot = np.full((n_boot, 10), np.nan)
        ranked = _ResampledRanks(y, p) if np.isfinite(p).all() else None
        for b, idx in enumerate(samples):
            yb, pb = y[idx], p[idx]
            if yb.min() == yb.max():
                continue
            if ranked is not None:
                auc_b, ap_b = ranked.metrics(np.bincount(idx, minlength=len(y)))
            else:
                auc_b, ap_b = roc_auc(yb, pb), average_precision(yb, pb)
            boot["roc_auc"].append(auc_b)
            boot["pr_auc"].append(ap_b)
            boot["brier"].append(float(np.mean((pb - yb) ** 2)))
            boot["calibration_error"].append(_ece(yb, pb, cal_bin[idx]))
            cnt = np.bincount(cal_bin[idx], minlength=11)[1:]
            pos = np.bincount(cal_bin[idx], weights=yb, minlength=11)[1:]
            with np.errstate(invalid="ignore", divide="ignore"):
                obs_boot[b] = pos / cnt
                dcnt = np.bincount(dec[idx], minlength=11)[1:]
                dpos = np.bincount(dec[idx], weights=yb, minlength=11)[1:]
                lift_boot[b] = (dpos / dcnt) / yb.mean()
        row: dict[str, Any] = {"model": name}
        for metric, v in point.items():
            lo, hi = _interval(boot[metric], alpha)
            row.update({metric: float(v), f"{metric}_low": lo, f"{metric}_high": hi})
        row.update(
            n_snapshots=len(y), n_customers=int(pred["customer_id"].nunique()), n_churned=int(y.sum()),
            base_rate=float(y.mean()), calibration_basis=getattr(fitted[name], "calibration_basis_", "points → logistic map"),
        )
        rows.append(row)
        for k in range(1, 11):
            m = cal_bin == k
            lo, hi = _interval(obs_boot[:, k - 1].tolist(), alpha)
            cal_rows.append({"model": name, "bin": k, "n": int(m.sum()), "mean_predicted": float(p[m].mean()),
                             "observed": float(y[m].mean()), "observed_low": lo, "observed_high": hi})
            md = dec == k
            lo, hi = _interval(lift_boot[:, k - 1].tolist(), alpha)
            lift_rows.append({"model": name, "decile": k, "n": int(md.sum()), "churned": int(y[md].sum()),
                              "rate": float(y[md].mean()), "lift": float(y[md].mean() / y.mean()), "lift_low": lo, "lift_high": hi})
    return pd.DataFrame(rows), pd.DataFrame(cal_rows), pd.DataFrame(lift_rows)


# -- lead time and the threshold trade-off -----------------------------------------------------
def _threshold(pred: pd.DataFrame, model: str, threshold: float | None, alert_share: float) -> float:
    col = f"risk_{model}"
    if col not in pred.columns:
        known = [c.removeprefix("risk_") for c in pred.columns if c.startswith("risk_")]
        msg = f"lead time: no model {model!r} in the backtest; known: {known}"
        raise ValueError(msg)
    if threshold is not None:
        return float(threshold)
    if not 0 < alert_share < 1:
        msg = f"alert_share must be strictly between 0 and 1; got {alert_share!r}"
        raise ValueError(msg)
    return float(np.quantile(pred[col].to_numpy(dtype=float), 1 - alert_share))


def lead_time_data(
    backtest: Backtest, *, model: str = "boosted", threshold: float | None = None, alert_share: float = 0.1,
    lookback_days: float | None = None,
) -> pd.DataFrame:
    """Return, for every churner of the test period, when its risk first crossed the alert threshold.

    A churner is a test customer with at least one snapshot labelled churned
    (churn within the horizon after it). Its alert is the earliest of those
    snapshots whose risk is at or above the threshold; its lead time is the
    days from that snapshot's as-of to the churn. Alerts earlier than the
    horizon before churn are not counted (the model's claim is churn within
    the horizon).

    Parameters
    ----------
    backtest : Backtest
        From :func:`backtest_data`.
    model : str, default "boosted"
        Which model's risk.
    threshold : float, optional
        The alert threshold (a probability). Default: the risk above which
        ``alert_share`` of the test snapshots fall (an alert budget; no
        labels are used to choose it).
    alert_share : float, default 0.1
        Share of snapshots alerted when no threshold is given.
    lookback_days : float, optional
        The lead time a churner must be able to show to count as having a
        full look-back (e.g. a planted decline's length). Default: the
        horizon minus one step of the test snapshots' grid
        (:attr:`Backtest.test_step_days`).

    Returns
    -------
    pandas.DataFrame
        One row per churner: ``customer_id``, ``churn_at``,
        ``first_snapshot_as_of`` (its first labelled-churned test snapshot),
        ``max_lead_days`` (churn minus that snapshot: the largest lead time
        the test period can show), ``truncated`` (the test period began less
        than the horizon minus one step of the test grid before the churn, so the lead
        time is capped), ``full_lookback`` (``max_lead_days`` is at least
        ``lookback_days``: the test period could show that lead), ``alerted``, ``alert_as_of`` (NaT if never),
        ``lead_days`` (NaN if never alerted), ``threshold``, ``model``.
    """
    pred = backtest.predictions
    thr = _threshold(pred, model, threshold, alert_share)
    step = backtest.test_step_days
    lookback = float(backtest.horizon_days - step) if lookback_days is None else float(lookback_days)
    if not 0 <= lookback <= backtest.horizon_days:
        msg = f"lead_time_data: lookback_days must be between 0 and the horizon ({backtest.horizon_days}); got {lookback_days!r}"
        raise ValueError(msg)
    pos = pred[pred["churned"] == 1].sort_values(["customer_id", "as_of_day"])
    rows = []
    for cid, g in pos.groupby("customer_id", sort=True):
        churn_at = g["churn_at"].iloc[0]
        first = g["as_of"].iloc[0]
        hit = g[g[f"risk_{model}"] >= thr]
        max_lead = (churn_at - first) / pd.Timedelta(days=1)
        alert = hit["as_of"].iloc[0] if len(hit) else pd.NaT
        rows.append({
            "customer_id": cid, "churn_at": churn_at, "first_snapshot_as_of": first, "max_lead_days": float(max_lead),
            "truncated": bool(max_lead < backtest.horizon_days - step),
            "full_lookback": bool(max_lead >= lookback), "alerted": bool(len(hit)),
            "alert_as_of": alert, "lead_days": float((churn_at - alert) / pd.Timedelta(days=1)) if len(hit) else np.nan,
            "threshold": thr, "model": model,
        })
    return pd.DataFrame(rows, columns=["customer_id", "churn_at", "first_snapshot_as_of", "max_lead_days", "truncated",
                                       "full_lookback", "alerted", "alert_as_of", "lead_days", "threshold", "model"])


def _alert_volume(pred: pd.DataFrame, col: str, thr: float, step_days: int) -> tuple[float, float, float, int]:
    """Precision, alerts and new alerts per 100 customers per week, and alerted snapshots.

    Volumes count customer-periods, not snapshots: the grid is cut into
    periods of ``max(7, step_days)`` days counted back from the latest as-of
    day, a customer is alerted in a period when any of its snapshots in it
    is, and newly alerted when its previous period with a snapshot was not
    (or it has none). On a weekly grid each period holds one snapshot, so
    this is alerted snapshots per snapshot; on a daily grid a customer
    alerted on all 7 days of a week is one alert, not 7. Coarser grids are
    scaled by ``7 / step_days``.
    """
    alert = pred[col].to_numpy(dtype=float) >= thr
    precision = float(pred["churned"].to_numpy()[alert].mean()) if alert.any() else float("nan")
    span = max(7, int(step_days))
    day = pred["as_of_day"].to_numpy(dtype="int64")
    periods = pd.DataFrame({"customer_id": pred["customer_id"].to_numpy(), "period": (day.max() - day) // span, "alert": alert})
    per = periods.groupby(["customer_id", "period"], sort=False)["alert"].any().reset_index()
    per = per.sort_values(["customer_id", "period"], ascending=[True, False], kind="mergesort")  # each customer's periods in time order
    prev = per.groupby("customer_id", sort=False)["alert"].shift(1).astype("boolean").fillna(False).to_numpy(dtype=bool)
    on = per["alert"].to_numpy(dtype=bool)
    n = len(per)
    per_week = 7.0 / span
    return precision, 100.0 * on.sum() / n * per_week, 100.0 * (on & ~prev).sum() / n * per_week, int(alert.sum())


def lead_time_summary(lead: pd.DataFrame, backtest: Backtest, *, alpha: float = 0.05) -> pd.DataFrame:
    """Summarise :func:`lead_time_data`: recall, median lead time with its interval, precision and alert volume.

    Parameters
    ----------
    lead : pandas.DataFrame
        From :func:`lead_time_data`.
    backtest : Backtest
        The same backtest.
    alpha : float, default 0.05
        1 - confidence level of the median's interval (order statistics).

    Returns
    -------
    pandas.DataFrame
        One row: ``model``, ``threshold``, ``churners``, ``alerted``,
        ``recall`` (alerted / churners), ``median_lead_days``,
        ``median_lead_low``, ``median_lead_high``,
        ``median_lead_days_untruncated`` (churners whose whole horizon lies
        in the test period), ``untruncated_churners``,
        ``median_lead_days_full_lookback`` with ``median_lead_full_lookback_low``
        and ``_high`` (over alerted churners with ``full_lookback``),
        ``full_lookback_churners``, ``full_lookback_alerted``,
        ``left_out_lookback`` (churners without a full look-back), ``precision`` (churned
        share of alerted snapshots), ``alerts_per_100_per_week`` (customers
        alerted at least once in a week, per 100 customers with a test
        snapshot that week — the size of a weekly review list; on a weekly
        grid, alerted snapshots per 100 snapshots; on a daily grid a
        customer alerted all week counts once; grids coarser than a week are
        scaled by ``7 / step``), ``new_alerts_per_100_per_week`` (of those,
        customers not alerted in their previous week with a snapshot),
        ``alerted_snapshots`` (snapshots at or above the threshold).
    """
    model, thr = str(lead["model"].iloc[0]), float(lead["threshold"].iloc[0])
    lt = lead["lead_days"].dropna().to_numpy()
    med, lo, hi = median_interval(lt, alpha=alpha) if len(lt) else (np.nan, np.nan, np.nan)
    full = lead[~lead["truncated"]]["lead_days"].dropna()
    fl = lead[lead["full_lookback"]] if "full_lookback" in lead.columns else lead.iloc[:0]
    fl_lt = fl["lead_days"].dropna().to_numpy()
    fmed, flo, fhi = median_interval(fl_lt, alpha=alpha) if len(fl_lt) else (np.nan, np.nan, np.nan)
    precision, per100, new100, n_alert = _alert_volume(backtest.predictions, f"risk_{model}", thr, backtest.test_step_days)
    return pd.DataFrame([{
        "model": model, "threshold": thr, "churners": len(lead), "alerted": int(lead["alerted"].sum()),
        "recall": float(lead["alerted"].mean()) if len(lead) else np.nan, "median_lead_days": med,
        "median_lead_low": lo, "median_lead_high": hi,
        "median_lead_days_untruncated": float(full.median()) if len(full) else np.nan,
        "untruncated_churners": int((~lead["truncated"]).sum()),
        "median_lead_days_full_lookback": fmed, "median_lead_full_lookback_low": flo, "median_lead_full_lookback_high": fhi,
        "full_lookback_churners": len(fl), "full_lookback_alerted": int(fl["alerted"].sum()) if len(fl) else 0,
        "left_out_lookback": len(lead) - len(fl), "precision": precision,
        "alerts_per_100_per_week": per100, "new_alerts_per_100_per_week": new100, "alerted_snapshots": n_alert,
    }])


def lead_time_onset_data(lead: pd.DataFrame, onset: pd.DataFrame, *, alpha: float = 0.05) -> pd.DataFrame:
    """Compare measured lead times with when each churner's decline became observable.

    *onset* gives, per churner, the days before its churn at which its
    decline could first be seen (for a synthetic world: from its truth, e.g.
    the first planted cap below the customer's own rate). Lead times are
    summarised over churners with a full look-back (``full_lookback`` of
    :func:`lead_time_data`), per onset value and over all of them.

    Parameters
    ----------
    lead : pandas.DataFrame
        From :func:`lead_time_data`.
    onset : pandas.DataFrame
        ``customer_id`` and ``onset_days`` (days before churn; 0 when no
        decline precedes the churn). Every churner of *lead* needs a row.
    alpha : float, default 0.05
        1 - confidence level of the medians' intervals (order statistics).

    Returns
    -------
    pandas.DataFrame
        One row per onset value, then ``onset_days`` NaN for all together:
        ``onset_days``, ``churners``, ``full_lookback_churners``,
        ``alerted`` (of those), ``recall``, ``median_lead_days``,
        ``median_lead_low``, ``median_lead_high``,
        ``median_lead_minus_onset`` (median of lead minus onset over the
        alerted; negative: the alert came after the decline was observable).

    Raises
    ------
    ValueError
        If *onset* lacks its columns or a churner of *lead*.
    """
    missing_cols = [c for c in ("customer_id", "onset_days") if c not in onset.columns]
    if missing_cols:
        msg = f"lead_time_onset_data: onset lacks the columns {missing_cols}; give customer_id and onset_days"
        raise ValueError(msg)
    m = lead.merge(onset[["customer_id", "onset_days"]], on="customer_id", how="left")
    lacking = m.loc[m["onset_days"].isna(), "customer_id"].astype(str).tolist()
    if lacking:
        msg = f"lead_time_onset_data: {len(lacking)} churner(s) have no onset_days, e.g. {lacking[:5]}"
        raise ValueError(msg)
    rows = []
    groups = [(float(v), m[m["onset_days"] == v]) for v in sorted(m["onset_days"].unique())] + [(np.nan, m)]
    for value, g in groups:
        fl = g[g["full_lookback"]]
        lt = fl["lead_days"].dropna().to_numpy()
        med, lo, hi = median_interval(lt, alpha=alpha) if len(lt) else (np.nan, np.nan, np.nan)
        diff = (fl["lead_days"] - fl["onset_days"]).dropna()
        rows.append({
            "onset_days": value, "churners": len(g), "full_lookback_churners": len(fl), "alerted": int(fl["alerted"].sum()),
            "recall": float(fl["alerted"].mean()) if len(fl) else np.nan, "median_lead_days": med,
            "median_lead_low": lo, "median_lead_high": hi,
            "median_lead_minus_onset": float(diff.median()) if len(diff) else np.nan,
        })
    return pd.DataFrame(rows)


def threshold_tradeoff_data(
    backtest: Backtest, *, model: str = "boosted", thresholds: Sequence[float] | None = None
) -> pd.DataFrame:
    """Return lead time, recall, precision and alert volume across alert thresholds.

    Parameters
    ----------
    backtest : Backtest
        From :func:`backtest_data`.
    model : str, default "boosted"
        Which model's risk.
    thresholds : sequence of float, optional
        Default: the risks above which 2%, 5%, 10%, 15%, 20%, 30% and 50% of
        the test snapshots fall.

    Returns
    -------
    pandas.DataFrame
        One row per threshold: ``threshold``, ``alert_share`` (share of test
        snapshots alerted) and the columns of :func:`lead_time_summary`.
    """
    pred = backtest.predictions
    col = f"risk_{model}"
    _threshold(pred, model, 0.5, 0.1)
    if thresholds is None:
        thresholds = [float(np.quantile(pred[col], 1 - s)) for s in (0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5)]
    rows = []
    for thr in thresholds:
        lead = lead_time_data(backtest, model=model, threshold=float(thr))
        s = lead_time_summary(lead, backtest).iloc[0].to_dict()
        s["alert_share"] = float((pred[col] >= thr).mean())
        rows.append(s)
    out = pd.DataFrame(rows)
    return out[["threshold", "alert_share", *[c for c in out.columns if c not in ("threshold", "alert_share")]]]


# -- the model card ----------------------------------------------------------------------------
def model_card(backtest: Backtest, *, snapshots: Snapshots, lead: pd.DataFrame | None = None, model: str = "boosted") -> dict[str, Any]:
    """Return the model card: window, features, metrics, limits and intended use.

    Parameters
    ----------
    backtest : Backtest
        From :func:`backtest_data`.
    snapshots : Snapshots
        The snapshots it ran on.
    lead : pandas.DataFrame, optional
        :func:`lead_time_data` output for *model*.
    model : str, default "boosted"
        The model the card describes (the others are its comparators).

    Returns
    -------
    dict
        ``model``, ``version``, ``horizon_days``, ``population``, ``data_end``,
        ``split`` (train/test windows and sizes), ``features`` (name →
        description), ``metrics`` (records of ``backtest.metrics``),
        ``lead_time`` (the :func:`lead_time_summary` record, or None),
        ``calibration``, ``limits`` (list of str), ``intended_use`` (str).
    """
    cat = snapshots.catalog.set_index("feature")["description"].to_dict()
    summary = lead_time_summary(lead, backtest).iloc[0].to_dict() if lead is not None and len(lead) else None
    limits = [
        f"Out-of-time test on {backtest.split['test_customers']} customers ({backtest.split['test_churned']} churned snapshots): "
        "intervals are wide when churners are few.",
        f"{snapshots.n_excluded('censored')} snapshots whose {snapshots.horizon_days}-day horizon runs past the data's end "
        "are left out (censored), so the latest weeks are never evaluated.",
        "Segment and plan are the exported snapshot, not the value at each as-of day; ticket sentiment reads the ticket "
        "text as exported, which can include replies written after the as-of day.",
        "Associations, not causes: a risk factor is a warning sign, and acting on it is not shown to prevent churn.",
        "Lead time counts alerts within the horizon before churn only; churners near the start of the test period "
        "have capped lead times (truncated).",
    ]
    return {
        "model": model, "version": MODEL_VERSION, "horizon_days": snapshots.horizon_days,
        "population": snapshots.population, "data_end": f"{snapshots.data_end:%Y-%m-%d}", "split": dict(backtest.split),
        "features": {f: cat.get(f, "") for f in backtest.features},
        "metrics": backtest.metrics.to_dict(orient="records"), "lead_time": summary,
        "calibration": str(backtest.metrics.set_index("model").loc[model, "calibration_basis"]),
        "limits": limits,
        "intended_use": (
            f"Rank active paying customers by the probability of churning within {snapshots.horizon_days} days, so a "
            "customer-success team can review the riskiest first. Not for automated decisions about individual customers."
        ),
    }


def _grid_words(split: Mapping[str, Any]) -> str:
    """``; as-of every N days (training every M)`` when the test grid is finer than the training grid, else empty."""
    test_step, step = split.get("test_every_days"), split.get("every_days")
    if test_step is None or step is None or test_step == step:
        return ""
    return f"; as-of every {test_step} day{'s' if test_step != 1 else ''} (training every {step})"


def model_card_markdown(card: Mapping[str, Any]) -> str:
    """Render a :func:`model_card` as Markdown.

    Parameters
    ----------
    card : mapping
        From :func:`model_card`.

    Returns
    -------
    str
        The card.
    """
    s = card["split"]
    lines = [
        f"# Churn risk model card — {card['model']} ({card['version']})", "",
        f"**Predicts:** churn within {card['horizon_days']} days of an as-of day, for the {card['population']} population.", "",
        f"**Data end:** {card['data_end']}. **Train:** {s['train_from']} – {s['train_to']} ({s['train_snapshots']} snapshots, "
        f"{s['train_customers']} customers, {s['train_churned']} churned). **Test:** {s['test_from']} – {s['test_to']} "
        f"({s['test_snapshots']} snapshots, {s['test_customers']} other customers, {s['test_churned']} churned"
        f"{_grid_words(s)}).", "",
        f"**Calibration:** {card['calibration']}.", "", "## Metrics (test period, 95% customer-bootstrap intervals)", "",
        "| model | ROC-AUC | PR-AUC | Brier | calibration error |", "|---|---|---|---|---|",
    ]
    for m in card["metrics"]:
        lines.append(
            f"| {m['model']} | {m['roc_auc']:.3f} ({m['roc_auc_low']:.3f}–{m['roc_auc_high']:.3f}) | "
            f"{m['pr_auc']:.3f} ({m['pr_auc_low']:.3f}–{m['pr_auc_high']:.3f}) | "
            f"{m['brier']:.4f} ({m['brier_low']:.4f}–{m['brier_high']:.4f}) | "
            f"{m['calibration_error']:.4f} ({m['calibration_error_low']:.4f}–{m['calibration_error_high']:.4f}) |"
        )
    lt = card.get("lead_time")
    if lt:
        lines += [
            "", "## Lead time", "",
            f"At threshold {lt['threshold']:.3f}: {lt['alerted']} of {lt['churners']} churners alerted "
            f"(recall {lt['recall']:.0%}); median lead {lt['median_lead_days']:.1f} days "
            f"({lt['median_lead_low']:.1f}–{lt['median_lead_high']:.1f}); precision {lt['precision']:.0%}; "
            f"{lt['alerts_per_100_per_week']:.1f} alerts per 100 customers per week "
            f"({lt['new_alerts_per_100_per_week']:.1f} new).",
        ]
    lines += ["", "## Features", ""] + [f"- `{k}`: {v}" for k, v in card["features"].items()]
    lines += ["", "## Limits", ""] + [f"- {x}" for x in card["limits"]]
    lines += ["", "## Intended use", "", card["intended_use"], ""]
    return "\n".join(lines)
