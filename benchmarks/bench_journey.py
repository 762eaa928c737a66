"""Benchmark of the journey map: milestones, funnel, transitions and sessions at 1M and 10M events.

Run with ``python benchmarks/bench_journey.py`` (default: 10,000 and 100,000
customers of the synthetic world, about 1.2M and 12M events). For each size
the world is generated and loaded into a store once; then every operation
runs in a child process of its own, twice: journeylib's function, and a
hand-written DuckDB SQL baseline computing the same result on the same file.
Each child reports its wall time and its peak memory (max RSS), so the two
are comparable; each measurement is repeated (``--repeat``, default 2) and
the fastest run kept, as other load on a shared machine only slows runs down. Speed is reported as a ratio to the baseline, never as an
absolute pass/fail; the goal of issue 4 is a ratio within 1.5 and a peak
RSS of at most 1 GB at 10M events.

Operations (demo journey definition ``parameters/journeys/saas.yaml``):

``milestones``
    :func:`journeylib.stages.milestones_data` (customer × stage met/entered
    times) vs the same rules written by hand as one SQL query.
``funnel``
    :func:`journeylib.stages.funnel_data` vs SQL computing reached, dropped
    and censored per stage from the hand-written milestones.
``transitions``
    :func:`journeylib.journeys.event_transitions_data` (top 10 events,
    ``start`` and end nodes) vs a ``lead()`` query counting the same pairs.
``sessions``
    :func:`journeylib.journeys.sessions_data` (30-minute gap, one row per
    customer) vs a ``lag()``/running-sum query.

Memory: DuckDB's default ``memory_limit`` is 80% of the machine's RAM, and
window functions over 10M rows use what they are given. Every operation is
therefore run under each ``--memory-limits`` setting (default: DuckDB's
default, and ``600MB``), set alike on journeylib's store connection and the
baseline's, so the RSS goal can be checked with a bounded engine.

Loading: ``--load ingest`` uses :func:`journeylib.ingest.ingest_folder`
(validated, de-duplicated); ``--load parquet`` creates the canonical tables
with :class:`journeylib.engine.Store` and fills them straight from the
world's Parquet files with DuckDB (benchmark only, no validation), which is
much faster at 10M events; ``auto`` (default) ingests up to 2M events and
loads Parquet above. Results: ``benchmarks/results/journey.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import textwrap
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
DEFINITION = ROOT / "parameters" / "journeys" / "saas.yaml"


def child(code: str) -> tuple[float, float, str]:
    """Run Python code in a child process; return (seconds of the timed part, peak RSS in MiB, stdout).

    The code may set ``T0`` (``time.perf_counter()``) after its imports and set-up; the time
    reported is from ``T0`` to the end.
    """
    script = "import resource, sys, time\nT0 = time.perf_counter()\n" + textwrap.dedent(code) + (
        "\nsys.stdout.write('\\n@@%f %d' % (time.perf_counter() - T0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        msg = f"benchmark child failed:\n{script}\n--- stderr ---\n{proc.stderr[-4000:]}"
        raise RuntimeError(msg)
    body, _, tail = proc.stdout.rpartition("@@")
    secs, rss_kb = tail.split()
    return float(secs), int(rss_kb) / 1024, body.strip()


# -- hand-written SQL baselines (the demo definition's rules, written out) ---------------------------
MILESTONES_SQL = """
WITH c AS (SELECT customer_id, signup_at, churned_at FROM customers WHERE signup_at <= $asof),
e AS (SELECT customer_id, timestamp AS ts, event, event_id FROM events
      WHERE timestamp <= $asof AND event IN ('setup_completed', 'invite_sent', 'login', 'project_created',
                                              'integration_connected', 'plan_upgraded', 'renewal')),
win AS (  -- events within 30 days of signup, numbered per customer and event
    SELECT e.customer_id, e.event, e.ts,
           row_number() OVER (PARTITION BY e.customer_id, e.event ORDER BY e.ts, e.event_id) AS rn
    FROM e JOIN c USING (customer_id)
    WHERE e.ts >= c.signup_at AND e.ts < c.signup_at + INTERVAL 30 DAY
      AND e.event IN ('setup_completed', 'invite_sent', 'login')),
ever AS (  -- events after signup, numbered
    SELECT e.customer_id, e.event, e.ts,
           row_number() OVER (PARTITION BY e.customer_id, e.event ORDER BY e.ts, e.event_id) AS rn
    FROM e JOIN c USING (customer_id)
    WHERE e.ts >= c.signup_at AND e.event IN ('project_created', 'integration_connected', 'plan_upgraded', 'renewal')),
onb AS (
    SELECT customer_id, CASE WHEN count(*) FILTER (WHERE (event = 'login' AND rn = 5) OR (event <> 'login' AND rn = 1)) = 3
                             THEN max(ts) FILTER (WHERE (event = 'login' AND rn = 5) OR (event <> 'login' AND rn = 1)) END AS met
    FROM win GROUP BY customer_id),  -- all three conditions: the latest of their times (greatest() would skip NULLs)
val AS (
    SELECT customer_id,
           least(min(ts) FILTER (WHERE event = 'project_created' AND rn = 2),
                 min(ts) FILTER (WHERE event = 'integration_connected' AND rn = 1)) AS met,
           min(ts) FILTER (WHERE event = 'plan_upgraded' AND rn = 1) AS upgraded,
           min(ts) FILTER (WHERE event = 'renewal' AND rn = 1) AS renewed
    FROM ever GROUP BY customer_id),
s1 AS (
    SELECT c.customer_id, c.signup_at, c.churned_at, o.met AS onb_met,
           CASE WHEN o.met IS NOT NULL THEN greatest(o.met, c.signup_at) END AS onb_in,
           v.met AS val_met, v.upgraded, v.renewed
    FROM c LEFT JOIN onb o USING (customer_id) LEFT JOIN val v USING (customer_id)),
s2 AS (SELECT *, CASE WHEN val_met IS NOT NULL AND onb_in IS NOT NULL THEN greatest(val_met, onb_in) END AS val_in FROM s1),
rou AS (
    SELECT customer_id, ts AS met FROM (
        SELECT e.customer_id, e.ts, row_number() OVER (PARTITION BY e.customer_id ORDER BY e.ts, e.event_id) AS rn
        FROM e JOIN s2 USING (customer_id)
        WHERE e.event = 'login' AND s2.val_in IS NOT NULL AND e.ts >= s2.val_in AND e.ts < s2.val_in + INTERVAL 30 DAY)
    WHERE rn = 10),
s3 AS (SELECT s2.*, r.met AS rou_met, CASE WHEN r.met IS NOT NULL AND s2.val_in IS NOT NULL THEN greatest(r.met, s2.val_in) END AS rou_in
       FROM s2 LEFT JOIN rou r USING (customer_id)),
inv AS (
    SELECT customer_id, ts AS met FROM (
        SELECT e.customer_id, e.ts, row_number() OVER (PARTITION BY e.customer_id ORDER BY e.ts, e.event_id) AS rn
        FROM e JOIN s3 USING (customer_id)
        WHERE e.event = 'invite_sent' AND s3.rou_in IS NOT NULL AND e.ts >= s3.rou_in)
    WHERE rn = 3),
s4 AS (SELECT s3.*, least(s3.upgraded, i.met) AS exp_met FROM s3 LEFT JOIN inv i USING (customer_id)),
s5 AS (SELECT *, CASE WHEN exp_met IS NOT NULL AND rou_in IS NOT NULL THEN greatest(exp_met, rou_in) END AS exp_in FROM s4)
SELECT customer_id, signup_at, churned_at, onb_met, onb_in, val_met, val_in, rou_met, rou_in, exp_met, exp_in,
       renewed AS ren_met, CASE WHEN renewed IS NOT NULL AND exp_in IS NOT NULL THEN greatest(renewed, exp_in) END AS ren_in
FROM s5
"""

FUNNEL_SQL = f"""
WITH m AS ({MILESTONES_SQL}),
last AS (
    SELECT customer_id, churned_at,
           CASE WHEN ren_in IS NOT NULL THEN 5 WHEN exp_in IS NOT NULL THEN 4 WHEN rou_in IS NOT NULL THEN 3
                WHEN val_in IS NOT NULL THEN 2 WHEN onb_in IS NOT NULL THEN 1 ELSE 0 END AS k,
           coalesce(ren_in, exp_in, rou_in, val_in, onb_in, signup_at) AS last_in
    FROM m),
st AS (SELECT *, CASE WHEN churned_at IS NOT NULL AND churned_at <= $asof THEN 'churned'
                      WHEN k = 5 THEN 'completed'
                      WHEN epoch($asof) - epoch(last_in) > 90 * 86400 THEN 'dropped' ELSE 'in_progress' END AS status FROM last),
stages AS (SELECT unnest(range(6)) AS stage_order)
SELECT s.stage_order,
       count(*) FILTER (WHERE st.k >= s.stage_order) AS reached,
       count(*) FILTER (WHERE st.k >= s.stage_order - 1) AS eligible,
       count(*) FILTER (WHERE st.k = s.stage_order - 1 AND st.status IN ('churned', 'dropped')) AS dropped
FROM stages s, st GROUP BY s.stage_order ORDER BY s.stage_order
"""

TRANSITIONS_SQL = """
WITH c AS (SELECT customer_id, churned_at FROM customers WHERE signup_at <= $asof),
ev AS (SELECT e.customer_id, e.timestamp, e.source, e.event, e.event_id FROM events e SEMI JOIN c USING (customer_id)
       WHERE e.timestamp <= $asof),
top AS (SELECT event FROM ev GROUP BY event ORDER BY count(*) DESC LIMIT 10),
seq AS (SELECT ev.customer_id, ev.timestamp AS ts,
               CASE WHEN t.event IS NULL THEN 'other' ELSE ev.event END AS node
        FROM ev LEFT JOIN top t USING (event)),
pairs AS (SELECT customer_id, node, ts, lead(node) OVER w AS nxt, lead(ts) OVER w AS nxt_ts, row_number() OVER w AS rn
          FROM seq WINDOW w AS (PARTITION BY customer_id ORDER BY ts)),
last AS (SELECT customer_id, max(ts) AS last_ts FROM pairs GROUP BY customer_id),
endn AS (SELECT c.customer_id, c.churned_at,
                CASE WHEN c.churned_at IS NOT NULL AND c.churned_at <= $asof THEN 'churned'
                     WHEN l.last_ts IS NULL OR l.last_ts < $asof - INTERVAL 90 DAY THEN 'dropped' ELSE 'still active' END AS node
         FROM c LEFT JOIN last l USING (customer_id)),
allp AS (
    SELECT customer_id, 'start' AS a, node AS b, NULL::DOUBLE AS days FROM pairs WHERE rn = 1
    UNION ALL SELECT customer_id, node, nxt, (epoch(nxt_ts) - epoch(ts)) / 86400 FROM pairs WHERE nxt IS NOT NULL
    UNION ALL SELECT p.customer_id, p.node, e.node, NULL FROM pairs p JOIN endn e USING (customer_id) WHERE p.nxt IS NULL
    UNION ALL SELECT customer_id, 'start', node, NULL FROM endn ANTI JOIN last USING (customer_id))
SELECT a, b, count(*) AS n, count(DISTINCT customer_id) AS customers, median(days) AS median_days FROM allp GROUP BY a, b
"""

SESSIONS_SQL = """
WITH ev AS (SELECT e.customer_id, e.timestamp FROM events e
            SEMI JOIN (SELECT customer_id FROM customers WHERE signup_at <= $asof) c USING (customer_id)
            WHERE e.timestamp <= $asof),
m AS (SELECT customer_id, timestamp,
             CASE WHEN timestamp - lag(timestamp) OVER w <= INTERVAL 30 MINUTE THEN 0 ELSE 1 END AS new_s
      FROM ev WINDOW w AS (PARTITION BY customer_id ORDER BY timestamp)),
n AS (SELECT *, sum(new_s) OVER (PARTITION BY customer_id ORDER BY timestamp ROWS UNBOUNDED PRECEDING) AS s FROM m),
per AS (SELECT customer_id, s, min(timestamp) AS a, max(timestamp) AS b, count(*) AS k FROM n GROUP BY customer_id, s)
SELECT customer_id, count(*) AS sessions, sum(k) AS events, median((epoch(b) - epoch(a)) / 60) AS median_minutes
FROM per GROUP BY customer_id
"""

BASELINES = {
    name: sql.replace("$asof", "CAST($asof AS TIMESTAMPTZ)")
    for name, sql in {"milestones": MILESTONES_SQL, "funnel": FUNNEL_SQL, "transitions": TRANSITIONS_SQL, "sessions": SESSIONS_SQL}.items()
}

JOURNEYLIB = {
    "milestones": "stages.milestones_data(store, definition=d, as_of=AS_OF)",
    "funnel": "stages.funnel_data(store, definition=d, as_of=AS_OF)",
    "transitions": "journeys.event_transitions_data(store, definition=d, as_of=AS_OF, top_n=10)",
    "sessions": "journeys.sessions_data(store, as_of=AS_OF)",
}


def load_world(world: Path, db: Path, how: str) -> dict[str, float]:
    """Load a synthetic world into a new store; return the load time and peak RSS."""
    if how == "ingest":
        code = f"""
            from journeylib.engine import Store
            from journeylib.ingest import ingest_folder
            with Store({str(db)!r}) as s:
                ingest_folder(s, {str(world)!r}, source="synthetic")
        """
    else:
        # Benchmark only: the canonical tables from Store, filled straight from Parquet (no validation).
        code = f"""
            import duckdb
            from journeylib.engine import Store
            Store({str(db)!r}).close()
            con = duckdb.connect({str(db)!r})
            for table in ("customers", "events", "tickets", "users", "messages"):
                cols = [r[0] for r in con.execute(f"DESCRIBE {{table}}").fetchall()]
                glob = {str(world)!r} + ("/events/*.parquet" if table == "events" else f"/{{table}}.parquet")
                have = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM read_parquet('{{glob}}')").fetchall()]
                sel = ", ".join(c if c in have else f"NULL AS {{c}}" for c in cols)
                con.execute(f"INSERT INTO {{table}} SELECT {{sel}} FROM read_parquet('{{glob}}')")
            con.close()
        """
    secs, rss, _ = child(code)
    return {"seconds": round(secs, 2), "peak_rss_mib": round(rss, 1), "method": how}


def run_size(customers: int, seed: int, load: str, tmp: Path, memory_limits: list[str], repeat: int) -> dict[str, object]:
    world, db = tmp / f"world{customers}", tmp / f"store{customers}.duckdb"
    secs, _, _ = child(f"from journeylib.datasets import synthesize\nsynthesize({str(world)!r}, n_customers={customers}, seed={seed})")
    truth = json.loads((world / "truth.json").read_text())
    n_events = int(truth["row_counts"]["events"])
    how = load if load != "auto" else ("ingest" if n_events <= 2_000_000 else "parquet")
    record: dict[str, object] = {"customers": customers, "events": n_events, "synth_seconds": round(secs, 2), "load": load_world(world, db, how)}
    as_of = truth["as_of"]
    configs: dict[str, object] = {}
    for limit in memory_limits:
        configs[limit] = run_operations(db, as_of, limit, customers, n_events, repeat)
    record["duckdb_memory_limit"] = configs
    return record


def best_of(code: str, repeat: int) -> tuple[float, float, str]:
    """Run a child *repeat* times: the fastest time (the least disturbed by other load) and the largest peak RSS."""
    runs = [child(code) for _ in range(max(1, repeat))]
    return min(r[0] for r in runs), max(r[1] for r in runs), runs[-1][2]


def run_operations(db: Path, as_of: str, limit: str, customers: int, n_events: int, repeat: int = 2) -> dict[str, object]:
    """Run the four operations, journeylib and baseline, with one DuckDB memory setting for both."""
    setting = "" if limit == "default" else f"SET memory_limit = '{limit}'"
    ops: dict[str, object] = {}
    for name in ("milestones", "funnel", "transitions", "sessions"):
        jl_code = f"""
            from journeylib import journeys, stages
            from journeylib.config import JourneyDefinition
            from journeylib.engine import Store
            store = Store({str(db)!r}, read_only=True)
            store.execute("SET enable_progress_bar = false")
            if {setting!r}:
                store.execute({setting!r})
            d = JourneyDefinition.from_yaml({str(DEFINITION)!r})
            AS_OF = {as_of!r}
            T0 = time.perf_counter()
            out = {JOURNEYLIB[name]}
            print(len(out))
        """
        base_code = f"""
            import duckdb
            con = duckdb.connect({str(db)!r}, read_only=True)
            con.execute("SET enable_progress_bar = false")
            if {setting!r}:
                con.execute({setting!r})
            T0 = time.perf_counter()
            out = con.execute({BASELINES[name]!r}, {{"asof": {as_of!r}}}).df()
            print(len(out))
        """
        jl_s, jl_rss, jl_out = best_of(jl_code, repeat)
        base_s, base_rss, base_out = best_of(base_code, repeat)
        ops[name] = {
            "journeylib_seconds": round(jl_s, 3),
            "baseline_seconds": round(base_s, 3),
            "ratio_vs_baseline": round(jl_s / base_s, 2) if base_s else None,
            "journeylib_peak_rss_mib": round(jl_rss, 1),
            "baseline_peak_rss_mib": round(base_rss, 1),
            "rss_ratio_vs_baseline": round(jl_rss / base_rss, 2) if base_rss else None,
            "journeylib_rows": int(jl_out.split()[-1]),
            "baseline_rows": int(base_out.split()[-1]),
        }
        sys.stdout.write(f"{customers:>7} customers {n_events:>10,} events  memory_limit={limit:<8} {name:<12} {json.dumps(ops[name])}\n")
        sys.stdout.flush()
    return ops


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, nargs="+", default=[10_000, 100_000], help="world sizes (about 120 events each)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--load", choices=["auto", "ingest", "parquet"], default="auto")
    parser.add_argument("--tmp", type=Path, default=None, help="work folder (default: a temporary one, removed)")
    parser.add_argument("--repeat", type=int, default=2, help="runs per measurement; the fastest time is kept (shared machines)")
    parser.add_argument(
        "--memory-limits", nargs="+", default=["default", "600MB"],
        help="DuckDB memory_limit settings to run every operation under, set alike for journeylib and the baseline",
    )
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    record: dict[str, object] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {resource.getpagesize()}B pages",
        "definition": str(DEFINITION.relative_to(ROOT)),
        "goal": "ratio_vs_baseline <= 1.5; peak RSS <= 1024 MiB at 10M events",
        "repeat": args.repeat,
        "load_average_at_start": os.getloadavg()[0],
        "sizes": [],
    }
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="jl-bench-journey-", dir=args.tmp) as tmp:
        for n in args.customers:
            record["sizes"].append(run_size(n, args.seed, args.load, Path(tmp), args.memory_limits, args.repeat))  # type: ignore[union-attr]
    record["total_seconds"] = round(time.perf_counter() - started, 1)
    (RESULTS / "journey.json").write_text(json.dumps(record, indent=2) + "\n")
    sys.stdout.write(f"written {RESULTS / 'journey.json'}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
