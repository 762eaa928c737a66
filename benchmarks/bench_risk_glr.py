"""Experiment: does a GLR scan for a fall in the daily active-day rate bring churn alerts sooner? Not shipped.

Run: ``.venv/bin/python benchmarks/bench_risk_glr.py [--world demo|second] [--out FILE.json]``.
Builds the world as ``bench_risk.py`` does, takes weekly snapshots with a daily test grid
(``test_every_days=1``), and adds two features computed from each customer's daily activity:

* ``activity_drop_glr``: the generalized likelihood ratio (CUSUM-type) statistic for "the daily chance of
  activity fell below the customer's own baseline at some day of the last 28": the largest, over the last
  k = 1..28 days with a share of active days a/k below the baseline's p0, of
  ``a log((a/k)/p0) + (k-a) log((1-a/k)/(1-p0))`` (nats). The post-change rate is estimated, not assumed, so
  nothing is set to a world's planted size of drop. ``p0 = (baseline active days + 0.5) / (baseline days + 1)``
  (the baseline of the snapshots, days d-119..d-30; the half-day keeps p0 inside (0, 1)). NaN when the baseline
  is shorter than 14 days, like the other drop features.
* ``activity_drop_glr_days``: the k of that maximum (days since the estimated change).

It runs the out-of-time backtest with and without them (same split) and reports AUCs, the lead time at a 10%
alert budget and, on the demo world, the delay from the observable onset to the alert. Not a test.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from bench_risk import detection_delay, observable_onset, world_inputs

from journeylib.customers.risk import backtest_data, lead_time_data, lead_time_summary
from journeylib.customers.snapshots import Snapshots, build_snapshots
from journeylib.exceptions import StatisticalWarning
from journeylib.store import Store
from journeylib.store.categories import sources_of
from journeylib.store.dialect import sql_quote
from journeylib.voice.sentiment import score_tickets

LONGEST = 28
SUMMARY = ("threshold", "alerted", "churners", "median_lead_days", "median_lead_low", "median_lead_high",
           "median_lead_days_full_lookback", "median_lead_full_lookback_low", "median_lead_full_lookback_high",
           "full_lookback_alerted", "full_lookback_churners", "precision", "alerts_per_100_per_week")


def glr_features(snap: Snapshots, store: Store) -> tuple[np.ndarray, np.ndarray]:
    """The GLR statistic and its window for every snapshot (see the module docstring)."""
    act = sources_of(store, ("product",))
    days = store.query(f"""SELECT customer_id, CAST(floor(epoch(timestamp) / 86400) AS BIGINT) AS day FROM events
                           WHERE source IN ({", ".join(sql_quote(s) for s in act)}) GROUP BY ALL""")
    d = snap.data
    lo = int(min(days["day"].min(), d["as_of_day"].min())) - LONGEST - 2
    hi = int(max(days["day"].max(), d["as_of_day"].max())) + 1
    ids = pd.Index(sorted(d["customer_id"].unique()))
    days = days[days["customer_id"].isin(ids)]
    active = np.zeros((len(ids), hi - lo + 1), dtype=np.int32)
    active[ids.get_indexer(days["customer_id"]), (days["day"] - lo).to_numpy()] = 1
    before = np.concatenate([np.zeros((len(ids), 1), np.int32), np.cumsum(active, axis=1)], axis=1)  # active days before column j
    row, col = ids.get_indexer(d["customer_id"]), d["as_of_day"].to_numpy() - lo + 1  # up to and including the as-of day
    bd = d["baseline_days"].to_numpy(float)
    p0 = (d["baseline_active_share"].to_numpy(float) * bd + 0.5) / (bd + 1.0)
    best, best_k = np.zeros(len(d)), np.zeros(len(d))
    for k in range(1, LONGEST + 1):
        a = (before[row, col] - before[row, col - k]).astype(float)
        share = a / k
        with np.errstate(divide="ignore", invalid="ignore"):
            llr = np.where(a > 0, a * np.log(share / p0), 0.0) + np.where(k > a, (k - a) * np.log((1 - share) / (1 - p0)), 0.0)
        llr = np.where(share < p0, llr, 0.0)
        best_k = np.where(llr > best, k, best_k)
        best = np.maximum(best, llr)
    ok = bd >= 14
    return np.where(ok, best, np.nan), np.where(ok, best_k, np.nan)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--world", choices=("demo", "second"), default="demo")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    warnings.simplefilter("ignore", StatisticalWarning)
    n, seed = (2000, 42) if args.world == "demo" else (5000, 0)
    out: dict[str, object] = {"world": args.world, "customers": n, "seed": seed, "horizon_days": 60, "test_every_days": 1}
    with tempfile.TemporaryDirectory() as tmp:
        db, truth, definition = world_inputs(args.world, Path(tmp), n, seed)
        with Store(db, read_only=True) as store:
            snap = build_snapshots(store, definition=definition, horizon_days=60, ticket_scores=score_tickets(store.table("tickets")),
                                   test_every_days=1)
            t = time.perf_counter()
            glr, glr_days = glr_features(snap, store)
            out["glr_seconds"] = round(time.perf_counter() - t, 2)
            onset = observable_onset(store, truth) if args.world == "demo" else None
    data = snap.data.copy()
    data["activity_drop_glr"], data["activity_drop_glr_days"] = glr, glr_days
    extra = pd.DataFrame([
        {"feature": "activity_drop_glr", "family": "activity", "kind": "numeric", "description": "GLR drop statistic (nats)"},
        {"feature": "activity_drop_glr_days", "family": "activity", "kind": "numeric", "description": "days since the estimated drop"},
    ])
    with_glr = dataclasses.replace(snap, data=data, catalog=pd.concat([snap.catalog, extra], ignore_index=True))
    lookback = 45.0 if args.world == "demo" else None
    for name, s in (("without", snap), ("with_glr", with_glr)):
        bt = backtest_data(s, n_boot=200)
        res: dict[str, object] = {"metrics": bt.metrics[["model", "roc_auc", "roc_auc_low", "roc_auc_high", "pr_auc", "brier",
                                                         "calibration_error"]].round(3).to_dict("records")}
        for model in ("boosted", "logistic"):
            lead = lead_time_data(bt, model=model, alert_share=0.1, lookback_days=lookback)
            row = lead_time_summary(lead, bt).iloc[0]
            summary: dict[str, object] = {k: round(float(row[k]), 3) for k in SUMMARY}
            if onset is not None:
                summary["detection_delay"] = detection_delay(lead, onset)
            res[model] = summary
        out[name] = res
    text = json.dumps(out, indent=1, default=str)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
