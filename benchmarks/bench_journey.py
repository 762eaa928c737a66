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
    :func:`journeylib.journey.stages.milestones_data` (customer × stage met/entered
    times) vs the same rules written by hand as one SQL query.
``funnel``
    :func:`journeylib.journey.stages.funnel_data` vs SQL computing reached, dropped
    and censored per stage from the hand-written milestones.
``transitions``
    :func:`journeylib.journey.transitions.event_transitions_data` (top 10 events,
    ``start`` and end nodes) vs a ``lead()`` query counting the same pairs.
``sessions``
    :func:`journeylib.journey.sessions.sessions_data` (30-minute gap, one row per
    customer) vs a ``lag()``/running-sum query.

Memory: window functions over 10M rows use what DuckDB is given. Every
operation is therefore run under each ``--memory-limits`` setting (default:
``default``, the ``memory_limit`` a journeylib store sets by default, and
``600MB``), set alike on journeylib's store connection and the baseline's, so
the RSS goal can be checked with a bounded engine.

Fairness: the baselines are hand-written with the same DuckDB features
journeylib uses (a bounded top-n aggregate for "the n-th event", one grouped
pass per reference time); every run checks that both produce the same result
(``same_result``: a digest of met/entered times per stage, the funnel counts,
the transition pairs, the session totals).

Loading: ``--load ingest`` uses :func:`journeylib.store.ingest.ingest_folder`
(validated, de-duplicated); ``--load parquet`` creates the canonical tables
with :class:`journeylib.store.Store` and fills them straight from the
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
    reported is from ``T0`` to the end, or to ``T1`` if the code sets it (work after ``T1``,
    such as a digest of the result, is not timed; its memory counts towards the peak).
    """
    script = "import resource, sys, time\nT0 = time.perf_counter()\n" + textwrap.dedent(code) + (
        "\nsys.stdout.write('\\n@@%f %d' % (globals().get('T1', time.perf_counter()) - T0,"
        " resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        msg = f"benchmark child failed:\n{script}\n--- stderr ---\n{proc.stderr[-4000:]}"
        raise RuntimeError(msg)
    body, _, tail = proc.stdout.rpartition("@@")
    secs, rss_kb = tail.split()
    return float(secs), int(rss_kb) / 1024, body.strip()


# -- hand-written SQL baselines (the demo definition's rules, written out) ---------------------------
# Written as a DuckDB user would by hand, with the same engine features journeylib may use:
# one grouped pass per reference time, the n-th event as a bounded top-n aggregate
# (``min(ts, n)[n]``) rather than a row_number() window over every event. Each run checks
# that the baseline's result digest equals journeylib's (``same_result``).
MILESTONES_SQL = """
WITH c AS (SELECT customer_id, signup_at, churned_at FROM customers WHERE signup_at <= $asof),
e AS (SELECT customer_id, timestamp AS ts, event FROM events
      WHERE timestamp <= $asof AND event IN ('setup_completed', 'invite_sent', 'login', 'project_created',
                                              'integration_connected', 'plan_upgraded', 'renewal')),
win AS (  -- first times within 30 days of signup (the 5th login)
    SELECT e.customer_id,
           min(e.ts) FILTER (WHERE e.event = 'setup_completed') AS setup,
           min(e.ts) FILTER (WHERE e.event = 'invite_sent') AS invite,
           (min(e.ts, 5) FILTER (WHERE e.event = 'login'))[5] AS login5
    FROM e JOIN c USING (customer_id)
    WHERE e.ts >= c.signup_at AND e.ts < c.signup_at + INTERVAL 30 DAY AND e.event IN ('setup_completed', 'invite_sent', 'login')
    GROUP BY e.customer_id),
ever AS (  -- first times after signup (the 2nd project)
    SELECT e.customer_id,
           (min(e.ts, 2) FILTER (WHERE e.event = 'project_created'))[2] AS project2,
           min(e.ts) FILTER (WHERE e.event = 'integration_connected') AS integration,
           min(e.ts) FILTER (WHERE e.event = 'plan_upgraded') AS upgraded,
           min(e.ts) FILTER (WHERE e.event = 'renewal') AS renewed
    FROM e JOIN c USING (customer_id)
    WHERE e.ts >= c.signup_at AND e.event IN ('project_created', 'integration_connected', 'plan_upgraded', 'renewal')
    GROUP BY e.customer_id),
s1 AS (  -- all three onboarding conditions: the latest of their times; any value condition: the earliest
    SELECT c.customer_id, c.signup_at, c.churned_at,
           CASE WHEN w.setup IS NOT NULL AND w.invite IS NOT NULL AND w.login5 IS NOT NULL THEN greatest(w.setup, w.invite, w.login5) END AS onb_met,
           least(v.project2, v.integration) AS val_met, v.upgraded, v.renewed
    FROM c LEFT JOIN win w USING (customer_id) LEFT JOIN ever v USING (customer_id)),
s2 AS (SELECT *, CASE WHEN onb_met IS NOT NULL THEN greatest(onb_met, signup_at) END AS onb_in FROM s1),
s3 AS (SELECT *, CASE WHEN val_met IS NOT NULL AND onb_in IS NOT NULL THEN greatest(val_met, onb_in) END AS val_in FROM s2),
rou AS (  -- the 10th login within 30 days of entering First Value
    SELECT e.customer_id, min(e.ts, 10)[10] AS met FROM e JOIN s3 USING (customer_id)
    WHERE e.event = 'login' AND s3.val_in IS NOT NULL AND e.ts >= s3.val_in AND e.ts < s3.val_in + INTERVAL 30 DAY
    GROUP BY e.customer_id),
s4 AS (SELECT s3.*, r.met AS rou_met, CASE WHEN r.met IS NOT NULL AND s3.val_in IS NOT NULL THEN greatest(r.met, s3.val_in) END AS rou_in
       FROM s3 LEFT JOIN rou r USING (customer_id)),
inv AS (  -- the 3rd invite after entering Routine Usage
    SELECT e.customer_id, min(e.ts, 3)[3] AS met FROM e JOIN s4 USING (customer_id)
    WHERE e.event = 'invite_sent' AND s4.rou_in IS NOT NULL AND e.ts >= s4.rou_in
    GROUP BY e.customer_id),
s5 AS (SELECT s4.*, least(s4.upgraded, i.met) AS exp_met FROM s4 LEFT JOIN inv i USING (customer_id)),
s6 AS (SELECT *, CASE WHEN exp_met IS NOT NULL AND rou_in IS NOT NULL THEN greatest(exp_met, rou_in) END AS exp_in FROM s5)
SELECT customer_id, signup_at, churned_at, onb_met, onb_in, val_met, val_in, rou_met, rou_in, exp_met, exp_in,
       renewed AS ren_met, CASE WHEN renewed IS NOT NULL AND exp_in IS NOT NULL THEN greatest(renewed, exp_in) END AS ren_in
FROM s6
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
top AS (SELECT event FROM ev GROUP BY event ORDER BY count(*) DESC, event LIMIT 10),
seq AS (SELECT ev.customer_id, ev.timestamp AS ts,
               CASE WHEN t.event IS NULL THEN 'other' ELSE ev.event END AS node
        FROM ev LEFT JOIN top t USING (event)),
pairs AS (SELECT customer_id, node, ts, lead(node) OVER w AS nxt, lead(ts) OVER w AS nxt_ts, row_number() OVER w AS rn
          FROM seq WINDOW w AS (PARTITION BY customer_id ORDER BY ts, node)),  -- ties in a fixed order
last AS (SELECT customer_id, max(ts) AS last_ts FROM pairs GROUP BY customer_id),
endn AS (SELECT c.customer_id, c.churned_at,
                CASE WHEN c.churned_at IS NOT NULL AND c.churned_at <= $asof THEN 'churned'
                     WHEN l.last_ts IS NULL OR l.last_ts < $asof - INTERVAL 90 DAY THEN 'dropped' ELSE 'still active' END AS node
         FROM c LEFT JOIN last l USING (customer_id)),
allp AS (
    SELECT customer_id, 'start' AS a, node AS b, NULL::DOUBLE AS days FROM pairs WHERE rn = 1
    UNION ALL SELECT customer_id, node, nxt, (epoch(nxt_ts) - epoch(ts)) / 86400 FROM pairs WHERE nxt IS NOT NULL
    UNION ALL SELECT p.customer_id, p.node, e.node, CASE WHEN e.node = 'churned' THEN (epoch(e.churned_at) - epoch(p.ts)) / 86400 END
              FROM pairs p JOIN endn e USING (customer_id) WHERE p.nxt IS NULL
    UNION ALL SELECT customer_id, 'start', node, NULL FROM endn ANTI JOIN last USING (customer_id))
SELECT a, b, count(*) AS n, count(DISTINCT customer_id) AS customers, quantile_cont(days, [0.25, 0.5, 0.75]) AS q_days
FROM allp GROUP BY a, b
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
SELECT customer_id, count(*) AS sessions, sum(k) AS events, median((epoch(b) - epoch(a)) / 60) AS median_minutes,
       median(k) AS median_events, min(a) AS first_at, max(b) AS last_at,
       count(*) / greatest((epoch($asof) - epoch(min(a))) / 86400 / 7, 1) AS per_week
FROM per GROUP BY customer_id ORDER BY customer_id
"""

BASELINES = {
    name: sql.replace("$asof", "CAST($asof AS TIMESTAMPTZ)")
    for name, sql in {"milestones": MILESTONES_SQL, "funnel": FUNNEL_SQL, "transitions": TRANSITIONS_SQL, "sessions": SESSIONS_SQL}.items()
}

JOURNEYLIB = {
    "milestones": "stages.milestones_data(store, definition=d, as_of=AS_OF)",
    "funnel": "stages.funnel_data(store, definition=d, as_of=AS_OF)",
    "transitions": "transitions.event_transitions_data(store, definition=d, as_of=AS_OF, top_n=10)",
    "sessions": "sessions.sessions_data(store, as_of=AS_OF)",
}

# Result digests, computed after the timed part, to check that journeylib and the baseline agree:
# per stage, how many customers met / entered it and a checksum of those times; the funnel counts;
# the transition pairs and their counts; session totals.
_TIMES = """
def times(x):
    v = x.dropna().dt.tz_convert("UTC").dt.as_unit("us").astype("int64").to_numpy()
    return [int(len(v)), int(v.view("uint64").sum())]
"""
_DAYS = """
def days(q):
    try:
        q = [float(v) for v in q]
    except TypeError:  # NULL: no durations
        q = [float("nan")] * 3
    return [None if v != v else round(v, 6) for v in q]
"""
DIGEST_JOURNEYLIB = {
    "milestones": _TIMES + "dig = [times(out.loc[out.stage_order == k, c]) for k in range(1, 6) for c in ('met_at', 'entered_at')]",
    "funnel": "dig = out.sort_values('stage_order')[['reached', 'eligible', 'dropped']].astype(int).to_numpy().tolist()",
    "transitions": _DAYS + "dig = sorted(map(list, zip(out.from_node, out.to_node, out.transitions.astype(int), out.customers.astype(int),"
    " [days(q) for q in zip(out.p25_days, out.median_days, out.p75_days)])))",
    "sessions": "dig = [len(out), int(out.sessions.sum()), int(out.events.sum()), round(float(out.median_session_minutes.sum()), 3)]",
}
DIGEST_BASELINE = {
    "milestones": _TIMES + "dig = [times(out[f'{p}_{c}']) for p in ('onb', 'val', 'rou', 'exp', 'ren') for c in ('met', 'in')]",
    "funnel": "dig = out.sort_values('stage_order')[['reached', 'eligible', 'dropped']].astype(int).to_numpy().tolist()",
    "transitions": _DAYS + "dig = sorted(map(list, zip(out.a, out.b, out.n.astype(int), out.customers.astype(int),"
    " [days(q) for q in out.q_days])))",
    "sessions": "dig = [len(out), int(out.sessions.sum()), int(out.events.sum()), round(float(out.median_minutes.sum()), 3)]",
}


def _result(body: str) -> tuple[int, object]:
    """Rows and digest printed by an operation's child."""
    lines = body.splitlines()
    return int(lines[-2]), json.loads(lines[-1])


def load_world(world: Path, db: Path, how: str) -> dict[str, float]:
    """Load a synthetic world into a new store; return the load time and peak RSS."""
    if how == "ingest":
        code = f"""
            from journeylib.store import Store
            from journeylib.store.ingest import ingest_folder
            with Store({str(db)!r}) as s:
                ingest_folder(s, {str(world)!r}, source="synthetic")
        """
    else:
        # Benchmark only: the canonical tables from Store, filled straight from Parquet (no validation).
        code = f"""
            import duckdb
            from journeylib.store import Store
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


def default_memory_limit() -> str:
    """DuckDB ``memory_limit`` a read-only journeylib store sets by default (DuckDB's own if it sets none)."""
    sys.path.insert(0, str(ROOT))
    from journeylib.store.database import engine_settings

    return engine_settings(read_only=True).get("memory_limit", "80%")  # the operations read a read-only store


def run_operations(db: Path, as_of: str, limit: str, customers: int, n_events: int, repeat: int = 2) -> dict[str, object]:
    """Run the four operations, journeylib and baseline, with one DuckDB memory setting for both.

    ``default`` is what a :class:`journeylib.store.Store` sets by default
    (:func:`journeylib.store.database.engine_settings`), applied to the baseline's connection too.
    """
    setting = f"SET memory_limit = '{default_memory_limit() if limit == 'default' else limit}'"
    ops: dict[str, object] = {}
    for name in ("milestones", "funnel", "transitions", "sessions"):
        jl_code = f"""
            from journeylib.journey import sessions, stages, transitions
            from journeylib.config.journey import JourneyDefinition
            from journeylib.store import Store
            store = Store({str(db)!r}, read_only=True)
            store.execute("SET enable_progress_bar = false")
            if {setting!r}:
                store.execute({setting!r})
            d = JourneyDefinition.from_yaml({str(DEFINITION)!r})
            AS_OF = {as_of!r}
            T0 = time.perf_counter()
            out = {JOURNEYLIB[name]}
            T1 = time.perf_counter()
            import json
            {{DIGEST}}
            print(len(out))
            print(json.dumps(dig))
        """
        base_code = f"""
            import duckdb
            con = duckdb.connect({str(db)!r}, read_only=True)
            con.execute("SET enable_progress_bar = false")
            if {setting!r}:
                con.execute({setting!r})
            T0 = time.perf_counter()
            out = con.execute({BASELINES[name]!r}, {{"asof": {as_of!r}}}).df()
            T1 = time.perf_counter()
            import json
            {{DIGEST}}
            print(len(out))
            print(json.dumps(dig))
        """
        jl_code = textwrap.dedent(jl_code).replace("{DIGEST}", DIGEST_JOURNEYLIB[name])
        base_code = textwrap.dedent(base_code).replace("{DIGEST}", DIGEST_BASELINE[name])
        jl_s, jl_rss, jl_out = best_of(jl_code, repeat)
        base_s, base_rss, base_out = best_of(base_code, repeat)
        (jl_rows, jl_digest), (base_rows, base_digest) = _result(jl_out), _result(base_out)
        ops[name] = {
            "journeylib_seconds": round(jl_s, 3),
            "baseline_seconds": round(base_s, 3),
            "ratio_vs_baseline": round(jl_s / base_s, 2) if base_s else None,
            "journeylib_peak_rss_mib": round(jl_rss, 1),
            "baseline_peak_rss_mib": round(base_rss, 1),
            "rss_ratio_vs_baseline": round(jl_rss / base_rss, 2) if base_rss else None,
            "journeylib_rows": jl_rows,
            "baseline_rows": base_rows,
            "same_result": jl_digest == base_digest,
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
        "default_memory_limit": default_memory_limit(),
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
