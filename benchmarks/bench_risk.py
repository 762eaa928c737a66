"""Churn-risk benchmark: backtest metrics, measured lead time vs the planted decline, and time to score 100k customers.

Run: ``.venv/bin/python benchmarks/bench_risk.py [--world demo|second] [--customers N] [--score-customers 100000]
[--horizon 60] [--out FILE.json]``.
Builds the world (demo: seed 42, 2,000 customers by default; second: the HR and payroll SaaS of
:func:`journeylib.datasets.synthesize_second_world`, seed 0, 5,000 customers by default, ingested with its
``source_kinds`` and scored with its own ``journey.yaml``) in a temporary folder, takes weekly as-of snapshots,
runs the out-of-time backtest of the boosted model, the logistic baseline and the rule score, and measures the
lead time at a 10% alert budget against what the world plants before churn. For the demo world it also times
snapshots + scoring on one as-of day of a larger world (``--score-customers 0`` skips it). Not a test.
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
from journeylib.datasets import synthesize, synthesize_second_world
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


def _second_world(folder: Path, n: int, seed: int) -> tuple[Path, Path, dict[str, object]]:
    world = synthesize_second_world(folder / "world", n_customers=n, seed=seed)
    db = folder / "world.duckdb"
    with Store(db) as store:
        ingest_folder(store, world.out_dir, source_kinds=world.source_kinds)
    return db, world.definition_path, world.truth


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--world", choices=("demo", "second"), default="demo")
    parser.add_argument("--customers", type=int, default=None, help="default: 2,000 (demo) or 5,000 (second)")
    parser.add_argument("--seed", type=int, default=None, help="default: 42 (demo) or 0 (second)")
    parser.add_argument("--out", type=Path, default=None, help="also write the results as JSON to this file")
    parser.add_argument("--score-customers", type=int, default=100_000)
    parser.add_argument("--horizon", type=int, default=60)
    args = parser.parse_args()
    warnings.simplefilter("ignore", StatisticalWarning)
    n = args.customers or (2000 if args.world == "demo" else 5000)
    seed = (42 if args.world == "demo" else 0) if args.seed is None else args.seed
    out: dict[str, object] = {"world": args.world, "customers": n, "seed": seed, "horizon_days": args.horizon}
    with tempfile.TemporaryDirectory() as tmp:
        if args.world == "demo":
            db = _world(Path(tmp) / "demo", n, seed)
            truth = json.loads((Path(tmp) / "demo" / "world" / "truth.json").read_text())
            definition = JourneyDefinition.load(ROOT / "parameters" / "journeys" / "saas.yaml")
        else:
            db, definition_path, truth = _second_world(Path(tmp) / "second", n, seed)
            definition = JourneyDefinition.load(definition_path)
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
        out["planted_decline_days_before_churn"] = _planted_decline(truth)
        out["tradeoff_boosted"] = threshold_tradeoff_data(bt).round(3).to_dict(orient="records")
        model = bt.models["boosted"]
        if args.world != "demo" or not args.score_customers:
            _emit(out, args.out)
            return

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
    _emit(out, args.out)


def _emit(out: dict[str, object], path: Path | None) -> None:
    text = json.dumps(out, indent=1, default=str)
    print(text)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
