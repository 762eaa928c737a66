"""Churn-risk models: the estimator contract, the out-of-time backtest, lead time and the planted decline."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _builders import ROOT
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.utils.estimator_checks import parametrize_with_checks

from journeylib.config import JourneyDefinition
from journeylib.customers.risk import (
    Backtest,
    ChurnClassifier,
    HealthRule,
    RuleHealthScore,
    average_precision,
    backtest_data,
    lead_time_data,
    lead_time_onset_data,
    lead_time_summary,
    model_card,
    model_card_markdown,
    roc_auc,
    threshold_tradeoff_data,
)
from journeylib.customers.snapshots import build_snapshots
from journeylib.exceptions import StatisticalWarning
from journeylib.store import Store


@parametrize_with_checks([ChurnClassifier(calibration="none"), ChurnClassifier("logistic", calibration="none"),
                          ChurnClassifier("logistic", calibration="sigmoid")])
def test_estimator_contract(estimator: object, check: object) -> None:
    check(estimator)  # type: ignore[operator]


def test_rule_score_points_are_the_documented_sum() -> None:
    X = pd.DataFrame({"activity_14d": [0, 5, 0], "tickets_30d": [3, 0, np.nan]})
    rules = [HealthRule("activity_14d", "<=", 0, 25, "idle"), HealthRule("tickets_30d", ">=", 2, 10, "tickets")]
    est = RuleHealthScore(rules=rules).fit(X, [1, 0, 1])
    assert est.risk_points(X).tolist() == [35.0, 0.0, 25.0]  # a missing value never meets a rule
    p = est.predict_proba(X)[:, 1]
    assert p[0] > p[2] > p[1]
    with pytest.raises(ValueError, match="none of the rules"):
        RuleHealthScore(rules=[HealthRule("nope", "<", 1, 5, "x")]).fit(X, [1, 0, 1])
    with pytest.raises(TypeError, match="DataFrame"):
        RuleHealthScore().fit(X.to_numpy(), [1, 0, 1])


def test_fast_metrics_equal_sklearn() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    p = np.round(rng.random(300) + 0.3 * y, 1)  # rounded: many ties
    assert roc_auc(y, p) == pytest.approx(roc_auc_score(y, p))
    assert average_precision(y, p) == pytest.approx(average_precision_score(y, p))


def _toy_backtest(pred: pd.DataFrame) -> Backtest:
    return Backtest(metrics=pd.DataFrame(), calibration=pd.DataFrame(), lift=pd.DataFrame(), predictions=pred, split={},
                    models={}, features=[], horizon_days=30, every_days=7)


def test_lead_time_hand_computed() -> None:
    t0 = pd.Timestamp("2025-01-01T00:00:00Z")
    churn = t0 + pd.Timedelta(days=100)
    as_of = [t0 + pd.Timedelta(days=d) for d in (64, 78, 85, 92, 78, 85)]
    pred = pd.DataFrame({
        "customer_id": ["x", "x", "x", "x", "y", "y"], "as_of_day": [64, 78, 85, 92, 78, 85], "as_of": as_of,
        # x: churned labels for as-of within 30 days of churn (78, 85, 92); y never churns
        "churned": [0.0, 1.0, 1.0, 1.0, 0.0, 0.0], "churn_at": [churn] * 4 + [pd.NaT] * 2,
        "days_to_churn": [36, 22, 15, 8, np.nan, np.nan], "risk_m": [0.9, 0.2, 0.6, 0.7, 0.1, 0.55],
    })
    lead = lead_time_data(_toy_backtest(pred), model="m", threshold=0.5)
    # the alert on day 64 is outside the horizon; the first in-horizon alert is day 85: 15 days ahead
    assert lead[["customer_id", "alerted", "lead_days", "max_lead_days"]].to_dict("records") == [
        {"customer_id": "x", "alerted": True, "lead_days": 15.0, "max_lead_days": 22.0}
    ]
    assert bool(lead["truncated"].iloc[0])  # 22 < 30 - 7
    s = lead_time_summary(lead, _toy_backtest(pred)).iloc[0]
    # alerted snapshots: x64, x85, x92, y85 → 2 churned of 4; 4 of 6 snapshots, weekly
    assert s["precision"] == 0.5
    assert s["alerts_per_100_per_week"] == pytest.approx(400 / 6)
    # new alerts (previous below): x64, x85, y85
    assert s["new_alerts_per_100_per_week"] == pytest.approx(300 / 6)
    with pytest.raises(ValueError, match="no model 'boosted'"):
        lead_time_data(_toy_backtest(pred))


def test_full_lookback_and_onset_hand_computed() -> None:
    """Three churners; a look-back of 45 days keeps the two whose first churned snapshot is at least 45 days ahead."""
    t0 = pd.Timestamp("2025-01-01T00:00:00Z")
    churn = {"a": t0 + pd.Timedelta(days=100), "b": t0 + pd.Timedelta(days=100), "c": t0 + pd.Timedelta(days=60)}
    rows = [  # (customer, as-of day, risk); horizon 60: a and b labelled churned from day 40, c from day 0 but seen from 28
        ("a", 43, 0.2), ("a", 50, 0.7), ("a", 57, 0.9),
        ("b", 43, 0.1), ("b", 50, 0.2), ("b", 71, 0.8),
        ("c", 28, 0.9), ("c", 35, 0.9),
    ]
    pred = pd.DataFrame({
        "customer_id": [r[0] for r in rows], "as_of_day": [r[1] for r in rows],
        "as_of": [t0 + pd.Timedelta(days=r[1]) for r in rows], "churned": 1.0,
        "churn_at": [churn[r[0]] for r in rows], "days_to_churn": np.nan, "risk_m": [r[2] for r in rows],
    })
    bt = Backtest(metrics=pd.DataFrame(), calibration=pd.DataFrame(), lift=pd.DataFrame(), predictions=pred, split={},
                  models={}, features=[], horizon_days=60, every_days=7)
    lead = lead_time_data(bt, model="m", threshold=0.5, lookback_days=45).set_index("customer_id")
    # max lead: a 100-43 = 57, b 57, c 60-28 = 32 (< 45: no full look-back)
    assert lead["max_lead_days"].tolist() == [57.0, 57.0, 32.0]
    assert lead["full_lookback"].tolist() == [True, True, False]
    assert lead["lead_days"].tolist() == [50.0, 29.0, 32.0]  # a alerted on day 50, b on 71, c on 28
    s = lead_time_summary(lead.reset_index(), bt).iloc[0]
    assert (s["full_lookback_churners"], s["full_lookback_alerted"], s["left_out_lookback"]) == (2, 2, 1)
    assert s["median_lead_days_full_lookback"] == pytest.approx(39.5)  # median of 50 and 29; c left out
    assert s["median_lead_days"] == pytest.approx(32.0)  # all three
    onset = pd.DataFrame({"customer_id": ["a", "b", "c"], "onset_days": [45.0, 30.0, 45.0]})
    by = lead_time_onset_data(lead.reset_index(), onset)
    assert by["onset_days"].iloc[:2].tolist() == [30.0, 45.0]
    assert by[["churners", "full_lookback_churners", "alerted"]].to_numpy().tolist() == [[1, 1, 1], [2, 1, 1], [3, 2, 2]]
    assert by["median_lead_minus_onset"].tolist() == [-1.0, 5.0, 2.0]  # b 29-30, a 50-45, all: median(-1, 5)
    with pytest.raises(ValueError, match="1 churner\\(s\\) have no onset_days"):
        lead_time_onset_data(lead.reset_index(), onset.iloc[:2])
    with pytest.raises(ValueError, match="lookback_days must be between 0 and the horizon"):
        lead_time_data(bt, model="m", threshold=0.5, lookback_days=90)


@pytest.fixture(scope="module")
def planted_backtest(planted_world: tuple[Path, Path]) -> tuple[object, Backtest]:
    definition = JourneyDefinition.load(ROOT / "parameters" / "journeys" / "saas.yaml")
    with Store(planted_world[1], read_only=True) as store, warnings.catch_warnings():
        warnings.simplefilter("ignore", StatisticalWarning)
        snap = build_snapshots(store, definition=definition, horizon_days=60)
    return snap, backtest_data(snap, n_boot=100)


def test_backtest_is_out_of_time_with_disjoint_customers(planted_backtest: tuple[object, Backtest]) -> None:
    snap, bt = planted_backtest
    train, test = bt.train_keys, bt.predictions
    assert not set(train["customer_id"]) & set(test["customer_id"])
    assert train["as_of_day"].max() + 1 + snap.horizon_days <= test["as_of_day"].min()  # type: ignore[attr-defined]
    m = bt.metrics.set_index("model")
    assert list(m.index) == ["boosted", "logistic", "rule_score"]
    assert (m["roc_auc_low"] <= m["roc_auc"]).all()
    assert (m["roc_auc"] <= m["roc_auc_high"]).all()
    # the planted activity decline is found: every model ranks far better than chance
    assert (m["roc_auc_low"] > 0.55).all()
    assert m.loc["boosted", "pr_auc_low"] > m.loc["boosted", "base_rate"]
    top = bt.lift[(bt.lift["model"] == "boosted") & (bt.lift["decile"] == 1)].iloc[0]
    assert top["lift_low"] > 1.5
    card = model_card(bt, snapshots=snap, lead=lead_time_data(bt))  # type: ignore[arg-type]
    text = model_card_markdown(card)
    assert "## Limits" in text
    assert "Associations, not causes" in text
    assert card["split"]["test_churned"] > 10


def test_planted_decline_gives_a_measured_lead_time(planted_backtest: tuple[object, Backtest]) -> None:
    """The demo plants a login decline 45 days before churn, steepest in the last 30: the lead time must show it."""
    _, bt = planted_backtest
    lead = lead_time_data(bt, model="boosted", alert_share=0.1)
    s = lead_time_summary(lead, bt).iloc[0]
    assert s["churners"] >= 20
    assert s["recall"] > 0.5
    assert 14 <= s["median_lead_days"] <= 50
    trade = threshold_tradeoff_data(bt)
    assert trade["threshold"].is_monotonic_decreasing
    assert trade["recall"].is_monotonic_increasing
    assert trade["alert_share"].is_monotonic_increasing
    # full look-back for the planted 45-day decline: exactly the churners whose first churned test snapshot is
    # at least 45 days before their churn, whatever the threshold
    full = lead_time_data(bt, model="boosted", alert_share=0.1, lookback_days=45)
    first = bt.predictions[bt.predictions["churned"] == 1].groupby("customer_id")["as_of"].min()
    churn_at = bt.predictions[bt.predictions["churned"] == 1].groupby("customer_id")["churn_at"].first()
    expected = set(first.index[((churn_at - first) / pd.Timedelta(days=1)) >= 45])
    assert set(full.loc[full["full_lookback"], "customer_id"]) == expected
    assert 0 < len(expected) < len(full)
    fs = lead_time_summary(full, bt).iloc[0]
    assert fs["full_lookback_churners"] + fs["left_out_lookback"] == fs["churners"]
    assert fs["median_lead_days_full_lookback"] == pytest.approx(full.loc[full["full_lookback"], "lead_days"].median())


@pytest.mark.parametrize("decimals", [1, 3, None])
def test_bootstrap_metrics_from_draw_counts_equal_the_resampled_arrays(decimals: int | None) -> None:
    """The backtest's bootstrap reads ROC-AUC and average precision from how often each row is drawn, without sorting
    each sample: the values equal roc_auc and average_precision of the resampled arrays exactly, ties included."""
    from journeylib.customers import risk

    rng = np.random.default_rng(7)
    n = 400
    y = (rng.random(n) < 0.2).astype(int)
    p = rng.random(n) if decimals is None else np.round(rng.random(n), decimals)  # coarse scores: many ties
    ranked = risk._ResampledRanks(y, p)
    checked = 0
    for _ in range(40):
        idx = rng.integers(0, n, n)
        if y[idx].min() == y[idx].max():
            continue
        auc, ap = ranked.metrics(np.bincount(idx, minlength=n))
        assert auc == risk.roc_auc(y[idx], p[idx])
        assert ap == risk.average_precision(y[idx], p[idx])
        checked += 1
    assert checked >= 30


def test_fit_does_not_modify_the_frame_it_is_given() -> None:
    """Categories are turned into text on the classifier's own copy; the caller's frame keeps its values and types."""
    rng = np.random.default_rng(0)
    n = 200
    X = pd.DataFrame({"a": rng.normal(size=n), "seg": pd.Series(rng.choice(["A", "B", None], n), dtype=object),
                      "n": rng.integers(0, 5, n)}, index=np.arange(n) * 3)
    y = (X["a"] + rng.normal(size=n) > 0).astype(int).to_numpy()
    before = X.copy()
    ChurnClassifier("boosting", max_iter=5).fit(X, y)
    pd.testing.assert_frame_equal(X, before, check_exact=True)
    assert X["seg"].isna().sum() == before["seg"].isna().sum() > 0


def _frame_with_time(n: int = 600, seed: int = 4) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Snapshot-like rows on 8 weekly days: a text column with missing values, counts and a float; a shuffled index."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({
        "seg": pd.Series(rng.choice(["A", "B", "C", None], n), dtype=object),
        "n": rng.integers(0, 6, n),
        "a": rng.normal(size=n),
    }, index=rng.permutation(n) * 2)
    y = ((X["a"] + 0.4 * X["n"] + rng.normal(size=n) > 1.2) | (X["seg"] == "C").to_numpy()).astype(int).to_numpy()
    time = np.repeat(np.arange(8) * 7, n // 8)
    return X, y, time


def _as_text(X: pd.DataFrame) -> pd.DataFrame:
    out = X.reset_index(drop=True)
    out["seg"] = out["seg"].astype(object).where(out["seg"].notna(), None).astype(str).where(out["seg"].notna(), np.nan)
    return out


@pytest.mark.parametrize("model", ["boosting", "logistic"])
def test_step_by_step_fit_equals_fitting_the_pipeline(model: str) -> None:
    """The base pipeline is fitted one step at a time (its input let go early): the same model as ``Pipeline.fit``.

    The reference refits an unfitted clone of the base pipeline with ``fit`` on
    the earlier rows and calibrates it on the latest quarter of the days, by
    hand; the probabilities must be equal bit for bit.
    """
    from sklearn.base import clone
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.frozen import FrozenEstimator

    X, y, time = _frame_with_time()
    before = X.copy()
    est = ChurnClassifier(model, max_iter=30).fit(X, y, time=time)
    pd.testing.assert_frame_equal(X, before, check_exact=True)  # the caller's frame is not modified
    days = np.unique(time)
    cut = days[int(np.floor(len(days) * 0.75))]
    early, late = time < cut, time >= cut
    Xt = _as_text(X)
    base = clone(est.base_estimator_).fit(Xt[early].reset_index(drop=True), y[early])
    ref = CalibratedClassifierCV(FrozenEstimator(base), method="sigmoid").fit(Xt[late].reset_index(drop=True), y[late])
    np.testing.assert_array_equal(est.base_estimator_.predict_proba(Xt), base.predict_proba(Xt))
    np.testing.assert_array_equal(est.predict_proba(X), ref.predict_proba(Xt))
    uncalibrated = ChurnClassifier(model, max_iter=30, calibration="none").fit(X, y)
    np.testing.assert_array_equal(uncalibrated.predict_proba(X), clone(uncalibrated.base_estimator_).fit(Xt, y).predict_proba(Xt))
    pd.testing.assert_frame_equal(X, before, check_exact=True)


def _large_frame(n: int = 16_000, seed: int = 5) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Rows enough that the boosted model stops early on a validation split (its base fold > 10,000 rows)."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({
        "seg": pd.Series(rng.choice(["A", "B", "C", None], n), dtype=object),
        "plan": pd.Series(rng.choice(["x", "y"], n), dtype=object),
        "n": rng.integers(0, 6, n),
        "a": rng.normal(size=n),
    })
    y = ((X["a"] + 0.4 * X["n"] + rng.normal(size=n) > 1.6) | ((X["seg"] == "C") & (rng.random(n) < 0.3))).astype(int).to_numpy()
    return X, y, np.repeat(np.arange(8) * 7, n // 8)


@pytest.mark.parametrize("rare_in_validation", [False, True])
def test_early_stopping_split_done_before_the_fit_gives_the_same_model(rare_in_validation: bool) -> None:
    """Above 10,000 rows the base fold is split for early stopping before the boosted model copies it: same model.

    The reference fits an unfitted clone of the base pipeline with ``Pipeline.fit`` (the model splits its own
    copy) on the earlier rows and calibrates it by hand; the probabilities must be equal bit for bit. With a
    category that occurs only among the validation rows the split is not made beforehand (the model's
    category encoding would differ), and the model is still the same.
    """
    from sklearn.base import clone
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.frozen import FrozenEstimator

    from journeylib.customers.risk import _validation_split

    X, y, time = _large_frame()
    days = np.unique(time)
    early = time < days[int(np.floor(len(days) * 0.75))]
    est = ChurnClassifier("boosting", max_iter=40, learning_rate=0.3)
    Xt = _as_text(X)
    pre = est._pipeline(["seg", "plan"], ["n", "a"])
    arr = pre[:-1].fit_transform(Xt[early].reset_index(drop=True), y[early])
    split = _validation_split(pre[-1], arr, y[early])
    assert split is not None
    if rare_in_validation:  # a plan seen only in one validation row
        val_row = int(np.flatnonzero(early)[np.flatnonzero((arr[:, None, :] == split[1][None, :, :]).all(axis=2).any(axis=1))[0]])
        X.loc[val_row, "plan"] = "z"
        Xt = _as_text(X)
        arr = pre[:-1].fit_transform(Xt[early].reset_index(drop=True), y[early])
        assert _validation_split(pre[-1], arr, y[early]) is None
    est.fit(X, y, time=time)
    assert est.base_estimator_.named_steps["model"].do_early_stopping_
    base = clone(est.base_estimator_).fit(Xt[early].reset_index(drop=True), y[early])
    ref = CalibratedClassifierCV(FrozenEstimator(base), method="sigmoid").fit(Xt[~early].reset_index(drop=True), y[~early])
    assert est.n_iter_ == base.named_steps["model"].n_iter_
    np.testing.assert_array_equal(est.base_estimator_.predict_proba(Xt), base.predict_proba(Xt))
    np.testing.assert_array_equal(est.predict_proba(X), ref.predict_proba(Xt))


def _split_data(n: int, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """A float array as the boosted pipeline's preparing step gives it: two ordinal categories (-1 missing), two numbers."""
    rng = np.random.default_rng(seed)
    X = np.column_stack([rng.integers(-1, 4, n), rng.integers(0, 3, n), rng.normal(size=n), rng.integers(0, 9, n)]).astype(float)
    y = (X[:, 2] + 0.3 * X[:, 0] + rng.normal(size=n) > 0.8).astype(int)
    return X, y


@pytest.mark.parametrize(("n", "params"), [
    (12_000, {}),  # "auto": stops early above 10,000 rows
    (3_000, {"early_stopping": True}),
    (3_000, {"early_stopping": True, "validation_fraction": 0.3, "random_state": 11}),
    (12_000, {"categorical_features": None, "random_state": np.int64(4)}),
])
def test_validation_split_is_the_one_the_boosted_model_makes(n: int, params: dict) -> None:
    """The installed scikit-learn's ``fit(X, y)`` and ``fit(X_train, y_train, X_val=, y_val=)`` on the split: same model."""
    from sklearn.base import clone
    from sklearn.ensemble import HistGradientBoostingClassifier

    from journeylib.customers.risk import _validation_split

    X, y = _split_data(n)
    model = HistGradientBoostingClassifier(**{"max_iter": 60, "learning_rate": 0.3, "categorical_features": [0, 1],
                                              "random_state": 0, **params})
    split = _validation_split(model, X, y)
    assert split is not None
    X_train, X_val, y_train, y_val = split
    assert len(X_val) == pytest.approx(n * model.validation_fraction, abs=1)
    whole = clone(model).fit(X, y)
    parts = clone(model).fit(X_train, y_train, X_val=X_val, y_val=y_val)
    assert whole.do_early_stopping_
    assert parts.do_early_stopping_
    assert whole.n_iter_ < 60  # it stopped early: the validation rows mattered
    assert parts.n_iter_ == whole.n_iter_
    np.testing.assert_array_equal(parts.validation_score_, whole.validation_score_)
    np.testing.assert_array_equal(parts.train_score_, whole.train_score_)
    np.testing.assert_array_equal(parts.predict_proba(X), whole.predict_proba(X))


@pytest.mark.parametrize(("n", "params"), [
    (11_000, {"early_stopping": "auto"}),  # "auto" on the 9,900 training rows would not stop early
    (12_000, {"early_stopping": False}),
    (12_000, {"validation_fraction": None}),
    (12_000, {"scoring": "accuracy"}),
    (12_000, {"class_weight": "balanced"}),
    (12_000, {"warm_start": True}),
    (12_000, {"random_state": None}),
    (12_000, {"random_state": np.random.RandomState(0)}),
    (12_000, {"categorical_features": [True, True, False, False]}),
])
def test_validation_split_is_left_to_the_model_when_the_model_could_differ(n: int, params: dict) -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier

    from journeylib.customers.risk import _validation_split

    X, y = _split_data(n)
    base = {"categorical_features": [0, 1], "random_state": 0, "early_stopping": True}
    assert _validation_split(HistGradientBoostingClassifier(**base), X, y) is not None
    assert _validation_split(HistGradientBoostingClassifier(**{**base, **params}), X, y) is None
    assert _validation_split(HistGradientBoostingClassifier(**base), pd.DataFrame(X), y) is None
