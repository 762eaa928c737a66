"""Churn-risk benchmark: backtest metrics, measured lead time vs the planted decline, and time to score 100k customers.

Run: ``.venv/bin/python benchmarks/bench_risk.py [--world demo|second] [--customers N] [--score-customers 100000]
[--score-only] [--score-db PATH] [--n-background 30] [--horizon 60] [--test-every-days 7] [--out FILE.json]``.
Builds the world (demo: seed 42, 2,000 customers by default; second: the HR and payroll SaaS of
:func:`journeylib.datasets.synthesize_second_world`, seed 0, 5,000 customers by default, ingested with its
``source_kinds`` and scored with its own ``journey.yaml``) in a temporary folder, takes weekly as-of snapshots,
runs the out-of-time backtest of the boosted model, the logistic baseline and the rule score, and measures the
lead time at a 10% alert budget against what the world plants before churn. For the demo world the lead time is
also read against each churner's *observable* onset: the first planted session cap below the churner's own rate
(estimated from its logins before the decline; a customer already below a cap shows no drop there), over churners
whose test period allows the planted lead (full look-back). When ``lightgbm`` is importable a LightGBM model with the
same hyper-parameters and time-later calibration joins the backtest (same split), with fit times; otherwise a line
says it was skipped. For the demo world it also times snapshots, scoring and the per-customer reasons on one as-of
day of a larger world (``--score-customers 0`` skips it; ``--score-only`` runs only that, with the model trained on
the demo world). With ``--test-every-days N`` (N dividing 7, e.g. 1) the test period is scored on an N-day as-of grid
(``build_snapshots(..., test_every_days=N)``) while training stays weekly; the weekly backtest of the same world runs
too (``weekly_reference``: its metrics and lead times, and whether its training rows are the same), and the per-churner
detection delay (observable onset minus lead, demo world) is given for both grids. The load average is recorded.
Not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.frozen import FrozenEstimator

from journeylib.config import JourneyDefinition
from journeylib.customers.risk import (
    ChurnClassifier,
    backtest_data,
    default_models,
    lead_time_data,
    lead_time_onset_data,
    lead_time_summary,
    snapshot_xy,
    threshold_tradeoff_data,
)
from journeylib.customers.scoring import risk_reasons_data
from journeylib.customers.snapshots import build_snapshots
from journeylib.datasets import WorldParameters, synthesize, synthesize_second_world
from journeylib.exceptions import StatisticalWarning
from journeylib.store import Store
from journeylib.store.ingest import ingest_folder
from journeylib.voice.sentiment import score_tickets

ROOT = Path(__file__).resolve().parents[1]


def world_store(folder: Path, n: int, seed: int) -> Path:
    """Synthesize the demo world in *folder* and ingest it; return the store's path."""
    synthesize(folder / "world", n_customers=n, seed=seed)
    db = folder / "world.duckdb"
    with Store(db) as store:
        ingest_folder(store, folder / "world", source="synthetic")
    return db


def second_world_store(folder: Path, n: int, seed: int) -> tuple[Path, Path, dict[str, object]]:
    """Synthesize the second world in *folder* and ingest it; return the store, its journey definition and its truth."""
    world = synthesize_second_world(folder / "world", n_customers=n, seed=seed)
    db = folder / "world.duckdb"
    with Store(db) as store:
        ingest_folder(store, world.out_dir, source_kinds=world.source_kinds)
    return db, world.definition_path, world.truth


def world_inputs(world: str, folder: Path, n: int, seed: int) -> tuple[Path, dict[str, object], JourneyDefinition]:
    """Build the store of *world* (``demo`` or ``second``) in *folder*; return it with the world's truth and journey definition."""
    if world == "demo":
        db = world_store(folder / "demo", n, seed)
        truth = json.loads((folder / "demo" / "world" / "truth.json").read_text())
        return db, truth, JourneyDefinition.load(ROOT / "parameters" / "journeys" / "saas.yaml")
    db, definition_path, truth = second_world_store(folder / "second", n, seed)
    return db, truth, JourneyDefinition.load(definition_path)


def _planted_decline(truth: dict[str, object]) -> object:
    """The days before churn at which the world plants an activity decline, or a sentence saying it plants none."""
    planted = truth.get("planted", {})
    decline = planted.get("churn_login_decline") if isinstance(planted, dict) else None
    if isinstance(decline, dict):
        return decline["parameters"]["decline_start_days_before_churn"]
    entries = planted if isinstance(planted, list) else []
    names = sorted(planted) if isinstance(planted, dict) else [str(e.get("name")) for e in entries if isinstance(e, dict)]
    return ("none planted: activity keeps its persona rate until the churn day and stops then "
            f"(planted effects: {', '.join(names) or '-'})")


class LightGBMChurn(ClassifierMixin, BaseEstimator):
    """LightGBM with :class:`ChurnClassifier`'s boosted hyper-parameters and its time-later sigmoid calibration.

    Text columns become pandas categories (LightGBM's native categorical
    splits), with the categories seen in ``fit``. The base model is fitted
    on the earlier 75% of the training times and a sigmoid map on the rest.
    """

    def __init__(self, calibration_fraction: float = 0.25, random_state: int = 0) -> None:
        self.calibration_fraction = calibration_fraction
        self.random_state = random_state

    def _frame(self, X: pd.DataFrame) -> pd.DataFrame:
        Xv = X.reset_index(drop=True).copy()
        for c, cats in self.categories_.items():
            Xv[c] = pd.Categorical(Xv[c].astype(object).where(Xv[c].notna(), None), categories=cats)
        return Xv

    def fit(self, X: pd.DataFrame, y: np.ndarray, *, time: np.ndarray) -> LightGBMChurn:
        import lightgbm

        ref = ChurnClassifier("boosting")
        self.categories_ = {c: sorted(X[c].dropna().astype(str).unique()) for c in X.columns
                            if not pd.api.types.is_numeric_dtype(X[c])}
        Xv = self._frame(X)
        base = lightgbm.LGBMClassifier(
            learning_rate=ref.learning_rate, n_estimators=ref.max_iter, num_leaves=ref.max_leaf_nodes,
            min_child_samples=ref.min_samples_leaf, reg_lambda=ref.l2_regularization, random_state=self.random_state,
            n_jobs=1, verbose=-1,
        )
        t = np.asarray(time, dtype=float)
        times = np.unique(t)
        late = t >= times[int(np.floor(len(times) * (1 - self.calibration_fraction)))]
        fitted = base.fit(Xv[~late].reset_index(drop=True), np.asarray(y)[~late])
        self.estimator_ = CalibratedClassifierCV(FrozenEstimator(fitted), method="sigmoid").fit(
            Xv[late].reset_index(drop=True), np.asarray(y)[late])
        self.classes_ = self.estimator_.classes_
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Return the calibrated probabilities (column 1: churn)."""
        return np.asarray(self.estimator_.predict_proba(self._frame(X)))


def _models_with_lightgbm(out: dict[str, object]) -> dict[str, object]:
    models = default_models(0)
    try:
        import lightgbm  # noqa: F401
    except ImportError:
        print("lightgbm is not importable: the LightGBM comparator is skipped", file=sys.stderr)
        out["lightgbm"] = "skipped: not importable"
        return models
    models["lightgbm"] = LightGBMChurn()
    return models


def _fit_seconds(bt: object, snap: object, names: tuple[str, ...]) -> dict[str, float]:
    """Time a refit of each model on the backtest's own training snapshots (median of 3)."""
    keys = bt.train_keys  # type: ignore[attr-defined]
    train = snap.labelled.merge(keys, on=["customer_id", "as_of_day"])  # type: ignore[attr-defined]
    feats = bt.features  # type: ignore[attr-defined]
    res = {}
    for name in names:
        est = bt.models.get(name)  # type: ignore[attr-defined]
        if est is None:
            continue
        runs = []
        for _ in range(3):
            model = clone(est)
            t = time.perf_counter()
            model.fit(train[feats], train["churned"].to_numpy(dtype=int), time=train["as_of_day"].to_numpy())
            runs.append(time.perf_counter() - t)
        res[name] = round(float(np.median(runs)), 2)
    return res


def observable_onset(store: Store, truth: dict[str, object]) -> pd.DataFrame:
    """Per churner of the demo world: its session rate before the planted decline and when the decline is observable.

    The rate is estimated from its logins from signup to the decline's start (trial weeks weighted by the world's
    trial usage boost; the first login at signup left out). The onset is the first planted cap below that rate
    (days before churn); 0 when even the last cap is above it (no drop before the churn itself).
    """
    planted = truth["planted"]["churn_login_decline"]["parameters"]  # type: ignore[index]
    start, caps, piece = planted["decline_start_days_before_churn"], planted["decline_sessions_per_week_caps"], planted["decline_piece_days"]
    p = WorldParameters()
    trial_end = f"c.signup_at + INTERVAL {int(p.trial_days)} DAY"
    decline = f"c.churned_at - INTERVAL {int(start)} DAY"
    ch = store.query(f"""
        SELECT c.customer_id,
          count(e.timestamp) FILTER (WHERE e.timestamp < least({trial_end}, {decline})) AS n_trial,
          count(e.timestamp) FILTER (WHERE e.timestamp >= {trial_end} AND e.timestamp < {decline}) AS n_post,
          greatest(0, epoch(least({trial_end}, {decline})) - epoch(c.signup_at)) / 604800.0 AS w_trial,
          greatest(0, epoch({decline}) - epoch({trial_end})) / 604800.0 AS w_post
        FROM customers c LEFT JOIN events e ON e.customer_id = c.customer_id AND e.event = 'login'
        WHERE c.churned_at IS NOT NULL GROUP BY ALL""")
    exposure = ch["w_trial"] * p.trial_usage_boost + ch["w_post"]
    ch["rate_per_week"] = np.where(exposure > 0, np.maximum(ch["n_trial"] - 1, 0) + ch["n_post"], np.nan) / exposure
    onset = np.zeros(len(ch))
    for k in range(len(caps) - 1, -1, -1):
        onset = np.where(ch["rate_per_week"].to_numpy() > caps[k], start - piece * k, onset)
    ch["onset_days"] = onset
    return ch[["customer_id", "rate_per_week", "onset_days"]]


def _score_big(out: dict[str, object], model: object, features: list[str], definition: JourneyDefinition, tmp: Path,
               n: int, horizon: int, n_background: int, db: Path | None = None) -> None:
    big = world_store(tmp / "big", n, 43) if db is None else db
    with Store(big, read_only=True) as store:
        last = store.query("SELECT max(timestamp) AS t FROM events")["t"].iloc[0]
        t = time.perf_counter()
        one = build_snapshots(store, definition=definition, horizon_days=horizon, as_of_dates=[last], as_of=last)
        t_snap = time.perf_counter() - t
    X, _, _ = snapshot_xy(one, labelled=False)
    for col in features:
        if col not in X.columns:
            X[col] = float("nan")  # no ticket scores at scoring time here: sentiment features missing
    t = time.perf_counter()
    model.predict_proba(X[features])  # type: ignore[attr-defined]
    t_pred = time.perf_counter() - t
    rows = one.data.reset_index(drop=True).copy()
    for col in features:
        if col not in rows.columns:
            rows[col] = float("nan")
    t = time.perf_counter()
    reasons = risk_reasons_data(model, rows, features=features, reference=rows, catalog=one.catalog, n_background=n_background)
    t_reasons = time.perf_counter() - t
    out["score"] = {"world_customers": n, "active_scored": len(X), "snapshot_seconds": round(t_snap, 2),
                    "predict_seconds": round(t_pred, 2), "reasons_seconds": round(t_reasons, 2),
                    "reasons_n_background": n_background, "reason_rows": len(reasons),
                    "reason_factors": int(reasons["factor"].nunique())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--world", choices=("demo", "second"), default="demo")
    parser.add_argument("--customers", type=int, default=None, help="default: 2,000 (demo) or 5,000 (second)")
    parser.add_argument("--seed", type=int, default=None, help="default: 42 (demo) or 0 (second)")
    parser.add_argument("--out", type=Path, default=None, help="also write the results as JSON to this file")
    parser.add_argument("--score-customers", type=int, default=100_000)
    parser.add_argument("--score-only", action="store_true", help="only the scoring of --score-customers (demo world)")
    parser.add_argument("--n-background", type=int, default=30, help="reference customers of the reasons")
    parser.add_argument("--score-db", type=Path, default=None,
                        help="an existing store of the --score-customers world (synthesize seed 43) instead of building it")
    parser.add_argument("--horizon", type=int, default=60)
    parser.add_argument("--test-every-days", type=int, default=7,
                        help="as-of grid of the test period (training stays weekly); e.g. 1 for daily")
    args = parser.parse_args()
    warnings.simplefilter("ignore", StatisticalWarning)
    n = args.customers or (2000 if args.world == "demo" else 5000)
    seed = (42 if args.world == "demo" else 0) if args.seed is None else args.seed
    out: dict[str, object] = {"world": args.world, "customers": n, "seed": seed, "horizon_days": args.horizon,
                              "every_days": 7, "test_every_days": args.test_every_days,
                              "load_average_start": [round(x, 2) for x in os.getloadavg()]}
    dense = args.test_every_days != 7
    with tempfile.TemporaryDirectory() as tmp:
        db, truth, definition = world_inputs(args.world, Path(tmp), n, seed)
        with Store(db, read_only=True) as store:
            t = time.perf_counter()
            scores = score_tickets(store.table("tickets"))
            out["vader_seconds"] = round(time.perf_counter() - t, 2)
            t = time.perf_counter()
            snap = build_snapshots(store, definition=definition, horizon_days=args.horizon, ticket_scores=scores,
                                   test_every_days=args.test_every_days)
            out["snapshot_seconds"] = round(time.perf_counter() - t + out["vader_seconds"], 2)  # type: ignore[operator]
            out["snapshot_build_seconds"] = round(time.perf_counter() - t, 2)
            if dense and not args.score_only:
                t = time.perf_counter()
                weekly = build_snapshots(store, definition=definition, horizon_days=args.horizon, ticket_scores=scores)
                out["weekly_snapshot_build_seconds"] = round(time.perf_counter() - t, 2)
        out["snapshots"] = len(snap.data)
        out["snapshots_on_test_grid_only"] = int((~snap.on_grid(snap.data["as_of_day"])).sum())
        out["exclusions"] = snap.exclusions.to_dict(orient="records")
        if args.score_only:
            model = ChurnClassifier("boosting")
            lab = snap.labelled
            model.fit(lab[snap.feature_columns], lab["churned"].to_numpy(dtype=int), time=lab["as_of_day"].to_numpy())
            _score_big(out, model, snap.feature_columns, definition, Path(tmp), args.score_customers, args.horizon,
                       args.n_background, args.score_db)
            _emit(out, args.out)
            return
        t = time.perf_counter()
        bt = backtest_data(snap, models=_models_with_lightgbm(out), n_boot=500)
        out["backtest_seconds"] = round(time.perf_counter() - t, 2)
        out["fit_seconds"] = _fit_seconds(bt, snap, ("boosted", "lightgbm"))
        out["split"] = bt.split
        out["metrics"] = bt.metrics.drop(columns=["calibration_basis"]).round(4).to_dict(orient="records")
        planted = _planted_decline(truth)
        lookback = float(planted) if isinstance(planted, (int, float)) else None
        leads = {m: lead_time_data(bt, model=m, alert_share=0.1, lookback_days=lookback) for m in bt.models}
        out["lead_time"] = {m: lead_time_summary(lead, bt).round(3).to_dict(orient="records")[0] for m, lead in leads.items()}
        out["planted_decline_days_before_churn"] = planted
        onset = None
        if args.world == "demo":
            with Store(db, read_only=True) as store:
                onset = observable_onset(store, truth)
            out["observable_onset_all_churners"] = onset["onset_days"].value_counts().sort_index().to_dict()
            out["lead_time_vs_onset"] = {
                m: lead_time_onset_data(lead, onset).round(3).to_dict(orient="records") for m, lead in leads.items()
            }
            test_onset = leads["boosted"].merge(onset, on="customer_id")
            out["test_churner_rate_per_week"] = test_onset["rate_per_week"].describe().round(3).to_dict()
            out["detection_delay_boosted"] = detection_delay(leads["boosted"], onset)
        out["tradeoff_boosted"] = threshold_tradeoff_data(bt).round(3).to_dict(orient="records")
        if dense:
            out["weekly_reference"] = _weekly_reference(weekly, bt, lookback, onset)
            out["at_weekly_list_size"] = _at_list_size(
                bt, out["weekly_reference"]["lead_time"]["boosted"]["alerts_per_100_per_week"], lookback, onset)  # type: ignore[index]
        if args.world != "demo" or not args.score_customers:
            _emit(out, args.out)
            return
        _score_big(out, bt.models["boosted"], bt.features, definition, Path(tmp), args.score_customers, args.horizon,
                   args.n_background, args.score_db)
    _emit(out, args.out)


def detection_delay(lead: pd.DataFrame, onset: pd.DataFrame) -> dict[str, object]:
    """Observable onset minus lead time (days the alert came after the decline could be seen), per churner.

    Over the full-look-back churners alerted by the model, by onset value: count, quartiles and the share
    alerted within 7 / 14 days of the onset.
    """
    m = lead[lead["full_lookback"] & lead["alerted"]].merge(onset, on="customer_id")
    m["delay"] = m["onset_days"] - m["lead_days"]
    res: dict[str, object] = {}
    for value, g in m.groupby("onset_days"):
        d = g["delay"]
        res[f"onset_{int(value)}"] = {
            "alerted": len(d), "q25": round(float(d.quantile(0.25)), 1), "median": round(float(d.median()), 1),
            "q75": round(float(d.quantile(0.75)), 1), "min": round(float(d.min()), 1), "max": round(float(d.max()), 1),
            "within_7_days": round(float((d <= 7).mean()), 3), "within_14_days": round(float((d <= 14).mean()), 3),
        }
    return res


def _weekly_reference(weekly: object, dense_bt: object, lookback: float | None, onset: pd.DataFrame | None) -> dict[str, object]:
    """The weekly-grid backtest of the same world, for comparison with the finer test grid."""
    t = time.perf_counter()
    bt = backtest_data(weekly, models=dict(dense_bt.models), n_boot=500)  # type: ignore[arg-type, attr-defined]
    res: dict[str, object] = {"backtest_seconds": round(time.perf_counter() - t, 2), "split": bt.split,
                              "snapshots": len(weekly.data)}  # type: ignore[attr-defined]
    keys = ["customer_id", "as_of_day"]
    res["same_training_rows"] = bool(bt.train_keys.sort_values(keys).reset_index(drop=True).equals(
        dense_bt.train_keys.sort_values(keys).reset_index(drop=True)))  # type: ignore[attr-defined]
    res["same_test_customers"] = set(bt.predictions["customer_id"]) <= set(dense_bt.predictions["customer_id"])  # type: ignore[attr-defined]
    both = bt.predictions.merge(dense_bt.predictions, on=keys, suffixes=("", "_dense"))  # type: ignore[attr-defined]
    res["weekly_test_rows_in_dense_test"] = f"{len(both)} of {len(bt.predictions)}"
    res["max_risk_difference_on_weekly_rows"] = float(max(
        (both[f"risk_{m}"] - both[f"risk_{m}_dense"]).abs().max() for m in bt.models))
    res["metrics"] = bt.metrics.drop(columns=["calibration_basis"]).round(4).to_dict(orient="records")
    leads = {m: lead_time_data(bt, model=m, alert_share=0.1, lookback_days=lookback) for m in bt.models}
    res["lead_time"] = {m: lead_time_summary(lead, bt).round(3).to_dict(orient="records")[0] for m, lead in leads.items()}
    if onset is not None:
        res["lead_time_vs_onset"] = {
            m: lead_time_onset_data(lead, onset).round(3).to_dict(orient="records") for m, lead in leads.items()
        }
        res["detection_delay_boosted"] = detection_delay(leads["boosted"], onset)
    return res


def _at_list_size(bt: object, target: float, lookback: float | None, onset: pd.DataFrame | None) -> dict[str, object]:
    """The boosted model's operating point on the finer grid whose weekly list is closest to *target* without exceeding it.

    Thresholds: the risks above which 2.0%, 2.25%, ... 10% of the test snapshots fall.
    """
    col = bt.predictions["risk_boosted"]  # type: ignore[attr-defined]
    grid = [float(np.quantile(col, 1 - s)) for s in np.arange(0.02, 0.1001, 0.0025)]
    trade = threshold_tradeoff_data(bt, thresholds=grid)  # type: ignore[arg-type]
    fit = trade[trade["alerts_per_100_per_week"] <= target + 1e-9]
    row = fit.iloc[-1] if len(fit) else trade.iloc[0]
    lead = lead_time_data(bt, threshold=float(row["threshold"]), lookback_days=lookback)  # type: ignore[arg-type]
    res: dict[str, object] = {"target_alerts_per_100_per_week": target,
                              **lead_time_summary(lead, bt).round(3).to_dict(orient="records")[0],  # type: ignore[arg-type]
                              "alert_share": round(float(row["alert_share"]), 4)}
    if onset is not None:
        res["detection_delay"] = detection_delay(lead, onset)
    return res


def _emit(out: dict[str, object], path: Path | None) -> None:
    out["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    text = json.dumps(out, indent=1, default=str)
    print(text)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
