"""Churn-risk benchmark: backtest metrics, measured lead time vs the planted decline, and time to score 100k customers.

Run: ``.venv/bin/python benchmarks/bench_risk.py [--customers 2000] [--score-customers 100000] [--horizon 60]``.
Builds the demo world (seed 42) in a temporary folder, takes weekly as-of snapshots, runs the out-of-time
backtest of the boosted model, the logistic baseline and the rule score, measures the lead time at a 10%
alert budget, and times snapshots + scoring on one as-of day for a larger synthetic world. Not a test.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import warnings
from pathlib import Path

from journeylib.config import JourneyDefinition
from journeylib.customers.risk import (
    backtest_data,
    lead_time_data,
    lead_time_summary,
    snapshot_xy,
    threshold_tradeoff_data,
)
from journeylib.customers.snapshots import build_snapshots
from journeylib.datasets import synthesize
from journeylib.exceptions import StatisticalWarning
from journeylib.store import Store
from journeylib.store.ingest import ingest_folder
from journeylib.voice.sentiment import score_tickets

ROOT = Path(__file__).resolve().parents[1]


def _world(folder: Path, n: int, seed: int) -> Path:
    synthesize(folder / "world", n_customers=n, seed=seed)
    db = folder / "world.duckdb"
    with Store(db) as store:
        ingest_folder(store, folder / "world", source="synthetic")
    return db


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--score-customers", type=int, default=100_000)
    parser.add_argument("--horizon", type=int, default=60)
    args = parser.parse_args()
    warnings.simplefilter("ignore", StatisticalWarning)
    definition = JourneyDefinition.load(ROOT / "parameters" / "journeys" / "saas.yaml")
    out: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        db = _world(Path(tmp) / "demo", args.customers, 42)
        truth = json.loads((Path(tmp) / "demo" / "world" / "truth.json").read_text())
        with Store(db, read_only=True) as store:
            t = time.perf_counter()
            scores = score_tickets(store.table("tickets"))
            snap = build_snapshots(store, definition=definition, horizon_days=args.horizon, ticket_scores=scores)
            out["snapshot_seconds"] = round(time.perf_counter() - t, 2)
        out["snapshots"] = len(snap.data)
        out["exclusions"] = snap.exclusions.to_dict(orient="records")
        t = time.perf_counter()
        bt = backtest_data(snap, n_boot=500)
        out["backtest_seconds"] = round(time.perf_counter() - t, 2)
        out["split"] = bt.split
        out["metrics"] = bt.metrics.drop(columns=["calibration_basis"]).round(4).to_dict(orient="records")
        out["lead_time"] = {
            m: lead_time_summary(lead_time_data(bt, model=m, alert_share=0.1), bt).round(3).to_dict(orient="records")[0]
            for m in ("boosted", "logistic", "rule_score")
        }
        out["planted_decline_days_before_churn"] = truth["planted"]["churn_login_decline"]["parameters"]["decline_start_days_before_churn"]
        out["tradeoff_boosted"] = threshold_tradeoff_data(bt).round(3).to_dict(orient="records")
        model = bt.models["boosted"]

        big = _world(Path(tmp) / "big", args.score_customers, 43)
        with Store(big, read_only=True) as store:
            last = store.query("SELECT max(timestamp) AS t FROM events")["t"].iloc[0]
            t = time.perf_counter()
            one = build_snapshots(store, definition=definition, horizon_days=args.horizon, as_of_dates=[last], as_of=last)
            t_snap = time.perf_counter() - t
            X, _, _ = snapshot_xy(one, labelled=False)
            for col in bt.features:
                if col not in X.columns:
                    X[col] = float("nan")  # no ticket scores at scoring time here: sentiment features missing
            t = time.perf_counter()
            model.predict_proba(X[bt.features])
            t_pred = time.perf_counter() - t
        out["score"] = {"world_customers": args.score_customers, "active_scored": len(X),
                        "snapshot_seconds": round(t_snap, 2), "predict_seconds": round(t_pred, 2)}
    print(json.dumps(out, indent=1, default=str))


if __name__ == "__main__":
    main()
