"""Benchmark: canonical ingest of CSV and Parquet event files at 1M and 10M rows.

Run with ``make bench`` (or ``python benchmarks/bench_ingest_canonical.py
--rows 1000000,10000000``). Each measurement runs in a child process, so its
peak memory (max RSS) is its own; the clock starts after the imports. For every size and format it measures:

* ``journeylib``: ``ingest_file(store, "events", path)`` into a new store
  (the engine path of :mod:`journeylib.store.bulk`: validation in SQL, the
  exact reader only for rows it cannot prove clean), with the store's default
  memory limit;
* ``baseline``: DuckDB loading the same file with no validation at all
  (``CREATE TABLE AS SELECT * FROM read_csv(...)`` / ``read_parquet(...)``),
  in the same run, so that the speed is a ratio against it;
* ``exact`` (at the smallest size only): the same ingest with
  ``engine="exact"``, the record-by-record reader, for comparison.

The files are written by DuckDB from a seeded formula: ids, a customer and a
user per row, timestamps over one year (ISO-8601 text with ``Z`` in CSV,
``TIMESTAMP WITH TIME ZONE`` in Parquet), five event names, a source and a
small JSON ``properties`` object. Results go to
``benchmarks/results/canonical_ingest.json`` (appended) and
``benchmarks/results/canonical_ingest.md``.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"

_ROWS_SQL = """
SELECT 'e' || i AS event_id,
       'c' || (i * 7919 % {customers}) AS customer_id,
       'u' || (i * 104729 % {users}) AS user_id,
       {timestamp} AS "timestamp",
       ['login', 'invite_sent', 'report_viewed', 'setup_done', 'export'][1 + (i * 31 % 5)] AS event,
       'web' AS source,
       '{{"plan":"pro","n":' || (i % 100) || '}}' AS properties
FROM range({rows}) t(i)
"""


def write_events(path: Path, rows: int) -> None:
    """Write *rows* canonical events to *path* (CSV or Parquet, by its ending) with DuckDB."""
    import duckdb

    csv = path.suffix == ".csv"
    ts = "TIMESTAMPTZ '2024-01-01 00:00:00+00' + to_seconds(i * 2654435761 % 31536000)"
    timestamp = f"strftime(({ts}) AT TIME ZONE 'UTC', '%Y-%m-%dT%H:%M:%SZ')" if csv else ts
    select = _ROWS_SQL.format(customers=max(rows // 100, 10), users=max(rows // 30, 10), timestamp=timestamp, rows=rows)
    fmt = "(HEADER, DELIMITER ',')" if csv else "(FORMAT parquet, ROW_GROUP_SIZE 122880)"
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"COPY ({select}) TO '{path}' {fmt}")
    con.close()


def child(code: str, setup: str = "") -> tuple[float, float, str]:
    """Run Python code in a child after *setup* (imports, not timed); return (seconds, peak RSS in MiB, stdout)."""
    script = (
        "import resource, sys, time\n"
        f"{setup}\n"
        "t0 = time.perf_counter()\n"
        f"{code}\n"
        "sys.stdout.write('\\n@@%f %d' % (time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    body, _, tail = out.rpartition("@@")
    secs, rss_kb = tail.split()
    return float(secs), int(rss_kb) / 1024, body.strip()


def _ingest(path: Path, db: Path, engine: str) -> dict[str, object]:
    secs, rss, out = child(
        f"with Store({str(db)!r}) as s:\n"
        f"    r = ingest_file(s, 'events', {str(path)!r}, engine={engine!r})\n"
        "print(r.read, r.loaded, r.quarantined, r.engine)\n",
        setup="from journeylib.store import Store\nfrom journeylib.store.ingest import ingest_file",
    )
    read, loaded, quarantined, used = out.splitlines()[-1].split(" ", 3)
    db.unlink(missing_ok=True)
    return {
        "seconds": round(secs, 2),
        "rows_per_second": round(int(read) / secs) if secs else None,
        "peak_rss_mib": round(rss, 1),
        "read": int(read),
        "loaded": int(loaded),
        "quarantined": int(quarantined),
        "engine": used,
    }


def _baseline(path: Path, db: Path) -> dict[str, object]:
    scan = f"read_csv('{path}', header = true)" if path.suffix == ".csv" else f"read_parquet('{path}')"
    secs, rss, _ = child(f"con = duckdb.connect({str(db)!r})\ncon.execute(\"CREATE TABLE events AS SELECT * FROM {scan}\")\ncon.close()\n", setup="import duckdb")
    db.unlink(missing_ok=True)
    return {"seconds": round(secs, 2), "peak_rss_mib": round(rss, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", default="1000000,10000000", help="comma-separated file sizes in rows")
    args = parser.parse_args()
    sizes = [int(x) for x in args.rows.split(",") if x.strip()]
    RESULTS.mkdir(parents=True, exist_ok=True)
    record: dict[str, object] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {__import__('os').cpu_count()} cores",
        "runs": [],
    }
    runs: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="jl-bench-canonical-") as tmp:
        for rows in sizes:
            for fmt in ("csv", "parquet"):
                path = Path(tmp) / f"events_{rows}.{fmt}"
                write_events(path, rows)
                db = Path(tmp) / "store.duckdb"
                run: dict[str, object] = {"rows": rows, "format": fmt, "file_mib": round(path.stat().st_size / 2**20, 1)}
                run["baseline"] = _baseline(path, db)
                run["journeylib"] = _ingest(path, db, "auto")
                if rows == min(sizes):
                    run["exact"] = _ingest(path, db, "exact")
                base = float(run["baseline"]["seconds"])  # type: ignore[index]
                run["ratio_vs_baseline"] = round(float(run["journeylib"]["seconds"]) / base, 2) if base else None  # type: ignore[index]
                runs.append(run)
                path.unlink()
                sys.stdout.write(json.dumps(run) + "\n")
    record["runs"] = runs
    with open(RESULTS / "canonical_ingest.json", "a") as fh:
        fh.write(json.dumps(record) + "\n")
    lines = [
        f"# Canonical ingest {record['when']}",
        "",
        f"{record['machine']}, Python {record['python']}. Each figure is one child process; RSS is its peak.",
        "",
        "| rows | format | file MiB | journeylib rows/s | peak RSS MiB | seconds | baseline seconds (no validation) | ratio | exact reader rows/s |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in runs:
        jl, base = r["journeylib"], r["baseline"]
        exact = r.get("exact")
        lines.append(
            f"| {r['rows']:,} | {r['format']} | {r['file_mib']} | {jl['rows_per_second']:,} | {jl['peak_rss_mib']:,} | {jl['seconds']} | "  # type: ignore[index]
            f"{base['seconds']} | {r['ratio_vs_baseline']} | {exact['rows_per_second'] if exact else ''} |"  # type: ignore[index]
        )
    (RESULTS / "canonical_ingest.md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
