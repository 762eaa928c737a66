"""Benchmark: journeylib's event-level operations on Spark local mode vs DuckDB, on one synthetic log.

Run with ``python benchmarks/bench_spark.py`` (default 85,000 customers of the
synthetic world, about 10M events; ``--customers`` to change it, ``--world``
to reuse a generated world folder). The world's canonical Parquet files are
read twice: by a :class:`journeylib.store.spark.SparkStore` (``local[2]`` unless
``--master``; the files registered as the canonical views, as a data lake
would be) and loaded into a DuckDB store (benchmark-only load, no validation).
Each operation runs on both, in this process, and the two frames are compared
after sorting and normalising dtypes (``same_result``). Spark's session start
is timed apart. Results: ``benchmarks/results/spark.json`` and ``spark.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from journeylib.config.engine import TableSource
from journeylib.config.journey import JourneyDefinition
from journeylib.customers.features import build_features
from journeylib.datasets import synthesize
from journeylib.journey.sessions import sessions_data
from journeylib.journey.stages import funnel_data, milestones_data
from journeylib.journey.transitions import event_transitions_data
from journeylib.scope import Scope
from journeylib.store import Store
from journeylib.store.spark import SparkStore, comparable_frame, spark_session

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def load_duckdb(world: Path, db: Path) -> float:
    """Create the canonical tables and fill events and customers straight from the world's Parquet (benchmark only)."""
    started = time.perf_counter()
    Store(db).close()
    con = duckdb.connect(str(db))
    for table in ("customers", "events"):
        cols = [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()]
        glob = str(world) + ("/events/*.parquet" if table == "events" else f"/{table}.parquet")
        have = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM read_parquet('{glob}')").fetchall()]
        sel = ", ".join(c if c in have else f"NULL AS {c}" for c in cols)
        con.execute(f"INSERT INTO {table} SELECT {sel} FROM read_parquet('{glob}')")
    con.close()
    return time.perf_counter() - started


def same(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    try:
        pd.testing.assert_frame_equal(comparable_frame(a), comparable_frame(b), check_dtype=False, rtol=1e-9)
    except AssertionError:
        return False
    return True


def timed(op: Callable[[], pd.DataFrame]) -> tuple[float, pd.DataFrame]:
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = op()
    return time.perf_counter() - started, out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=85_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--world", type=Path, help="a world folder made by journeylib.datasets.synthesize (generated when missing)")
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--driver-memory", default="4g")
    parser.add_argument("--ops", nargs="*", default=["milestones", "funnel", "transitions", "sessions", "features"])
    parser.add_argument("--no-write", action="store_true", help="print the results, do not write benchmarks/results/spark.json")
    parser.add_argument("--append", action="store_true", help="keep the other operations of an existing spark.json (a run of some --ops)")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="journeylib-bench-spark-"))
    world = args.world or tmp / "world"
    record: dict[str, Any] = {"customers": args.customers, "master": args.master}
    if not (world / "truth.json").exists():
        started = time.perf_counter()
        synthesize(world, n_customers=args.customers, seed=args.seed)
        record["synth_seconds"] = round(time.perf_counter() - started, 1)
    truth = json.loads((world / "truth.json").read_text())
    record["events"] = int(truth["row_counts"]["events"])
    db = tmp / "store.duckdb"
    record["duckdb_load_seconds"] = round(load_duckdb(world, db), 1)

    started = time.perf_counter()
    spark = spark_session(master=args.master, app_name="journeylib-bench", conf={"spark.driver.memory": args.driver_memory})
    spark.sparkContext.setLogLevel("ERROR")
    tables = {"events": TableSource(path=str(world / "events")), "customers": TableSource(path=str(world / "customers.parquet"))}
    sstore = SparkStore(session=spark, tables=tables)
    record["spark_start_seconds"] = round(time.perf_counter() - started, 1)
    duck = Store(db, read_only=True)

    definition = JourneyDefinition.load(ROOT / "parameters" / "journeys" / "saas.yaml")
    as_of = truth["as_of"]
    ops: dict[str, Callable[[Store], pd.DataFrame]] = {
        "milestones": lambda s: milestones_data(s, definition=definition, scope=Scope.build(s, as_of=as_of, segment_field=definition.segment_field)),
        "funnel": lambda s: funnel_data(s, definition=definition, as_of=as_of),
        "transitions": lambda s: event_transitions_data(s, definition=definition, as_of=as_of),
        "sessions": lambda s: sessions_data(s, as_of=as_of),
        "features": lambda s: build_features(s, definition=definition, window_days=14, as_of=as_of).data,
    }
    rows = []
    for name in args.ops:
        d_secs, d_out = timed(lambda name=name: ops[name](duck))
        s_secs, s_out = timed(lambda name=name: ops[name](sstore))
        row = {"operation": name, "duckdb_seconds": round(d_secs, 2), "spark_seconds": round(s_secs, 2),
               "ratio": round(s_secs / d_secs, 1), "rows": len(s_out), "same_result": same(d_out, s_out)}
        print(row, flush=True)
        rows.append(row)
    record["operations"] = rows
    record["machine"] = {
        "platform": platform.platform(), "cpus": os.cpu_count(),
        "load_average_at_end": [round(x, 1) for x in os.getloadavg()],
    }
    sstore.close()
    duck.close()
    print(json.dumps(record, indent=2))
    if not args.no_write:
        path = RESULTS / "spark.json"
        if args.append and path.exists():
            kept = [o for o in json.loads(path.read_text())["operations"] if o["operation"] not in args.ops]
            record["operations"] = kept + rows
            record["runs"] = "operations from more than one run of this script on the same world (--append)"
        path.write_text(json.dumps(record, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
