"""Benchmark: ingest rate of Mixpanel JSON Lines and Amplitude Export API archives.

Run with ``python benchmarks/bench_ingest_vendor.py --events 1000000`` (repeat
``--events`` for several sizes, e.g. ``--events 1000000 --events 10000000``).
Not a test: it measures, it does not pass or fail.

For each size it writes a synthetic export of that many events (with
``$insert_id``, e-mails and CRM ids, as the readers expect), then measures in
child processes, so that each peak memory (max RSS) is its own:

* ``baseline``: DuckDB loading the same file with no validation at all
  (``CREATE TABLE AS SELECT * FROM read_json(...)``; for Amplitude the
  gzipped members, read by DuckDB directly);
* ``journeylib``: :func:`journeylib.store.sources.ingest_vendor_file` into a fresh
  store with the store's default settings (``memory_limit`` =
  ``$JOURNEYLIB_MEMORY_LIMIT`` or :data:`journeylib.store.database.DEFAULT_MEMORY_LIMIT`):
  parsing in SQL, quarantine, de-duplication by insert id, the
  ``source_refs`` and identity observations, one transaction;
* ``journeylib_memory_limited``: the same with ``Store(memory_limit=...)``
  (``--memory-limit``, default 1GB), to show memory stays bounded (DuckDB
  spills to disk).

Speed is events per second of wall time of the load itself (the child's
imports are timed apart, in ``seconds_with_imports``); the ratio to the baseline measured
in the same run is what to compare across machines. Results are appended to
``benchmarks/results/vendor_ingest.json`` and written at the top of
``benchmarks/results/vendor_ingest.md`` (earlier runs and their notes stay below),
with the load average (the machine may be shared).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import zipfile
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


def child(code: str) -> tuple[float, float, str, float]:
    """Run Python code in a child; return (seconds, peak RSS in MiB, stdout, CPU seconds of the whole child)."""
    script = (
        "import resource, sys, time\n"
        "t0 = time.perf_counter()\n"
        f"{code}\n"
        "ru = resource.getrusage(resource.RUSAGE_SELF)\n"
        "sys.stdout.write('\\n@@%f %d %f' % (time.perf_counter() - t0, ru.ru_maxrss, ru.ru_utime + ru.ru_stime))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    body, _, tail = out.rpartition("@@")
    secs, rss_kb, cpu = tail.split()
    return float(secs), int(rss_kb) / 1024, body.strip(), float(cpu)


def write_mixpanel(path: Path, n: int) -> None:
    """Write *n* Mixpanel raw-export events (JSON Lines) with DuckDB's JSON writer."""
    import duckdb

    con = duckdb.connect()
    con.execute(
        f"""COPY (
            SELECT ['login', 'feature_used', 'task_created', 'project_created', 'invite_sent'][1 + i % 5] AS event,
                   struct_pack(
                       time := 1700000000 + i // 10,
                       distinct_id := 'usr_' || lpad(CAST(i % 50000 AS VARCHAR), 6, '0'),
                       "$insert_id" := 'ins' || lpad(CAST(i AS VARCHAR), 11, '0'),
                       "$email" := 'user' || CAST(i % 50000 AS VARCHAR) || '@acme' || CAST(i % 5000 AS VARCHAR) || '.com',
                       salesforce_account_id := '001' || lpad(CAST(i % 5000 AS VARCHAR), 12, '0') || 'AAA',
                       mp_lib := 'web', "$browser" := 'Chrome', "$os" := 'Mac OS X', feature := 'boards', device := 'desktop'
                   ) AS properties
            FROM range({n}) t(i)
        ) TO '{path}' (FORMAT json)"""
    )
    con.close()


def write_amplitude(path: Path, n: int, members: int = 8) -> Path:
    """Write an Export API zip of *n* events in *members* gzipped JSON Lines files; return the member folder."""
    import duckdb

    folder = path.parent / "amplitude_members"
    folder.mkdir(exist_ok=True)
    con = duckdb.connect()
    per = -(-n // members)
    for k in range(members):
        lo, hi = k * per, min(n, (k + 1) * per)
        con.execute(
            f"""COPY (
                SELECT 'ins' || lpad(CAST(i AS VARCHAR), 11, '0') AS "$insert_id", 'uuid-' || CAST(i AS VARCHAR) AS uuid,
                       ['login', 'feature_used', 'task_created', 'project_created', 'invite_sent'][1 + i % 5] AS event_type,
                       strftime(TIMESTAMP '2024-01-01' + to_seconds(i // 10), '%Y-%m-%d %H:%M:%S.%f') AS event_time,
                       'usr_' || lpad(CAST(i % 50000 AS VARCHAR), 6, '0') AS user_id, 'dev-' || CAST(i % 50000 AS VARCHAR) AS device_id,
                       i % 50000 AS amplitude_id, 'Web' AS platform, 'United States' AS country, i // 100 AS session_id,
                       struct_pack(feature := 'boards', device := 'desktop') AS event_properties,
                       struct_pack(email := 'user' || CAST(i % 50000 AS VARCHAR) || '@acme' || CAST(i % 5000 AS VARCHAR) || '.com',
                                   salesforce_account_id := '001' || lpad(CAST(i % 5000 AS VARCHAR), 12, '0') || 'AAA') AS user_properties
                FROM range({lo}, {hi}) t(i)
            ) TO '{folder / f"187520_20240101_{k}#0.json.gz"}' (FORMAT json, COMPRESSION gzip)"""
        )
    con.close()
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as z:
        for f in sorted(folder.iterdir()):
            z.write(f, f"187520/{f.name}")
    return folder


def measure(kind: str, n: int, tmp: Path, memory_limit: str) -> dict[str, object]:
    src = tmp / ("mixpanel.jsonl" if kind == "mixpanel" else "amplitude.zip")
    t0 = time.perf_counter()
    if kind == "mixpanel":
        write_mixpanel(src, n)
        base_glob = str(src)
    else:
        base_glob = str(write_amplitude(src, n) / "*.json.gz")
    gen = time.perf_counter() - t0
    base_s, base_rss, _, base_cpu = child(
        "import duckdb\n"
        f"con = duckdb.connect({str(tmp / f'base-{kind}.duckdb')!r})\n"
        f"con.execute(\"CREATE TABLE t AS SELECT * FROM read_json('{base_glob}', format='newline_delimited')\")\n"
        "con.close()\n"
    )
    out: dict[str, object] = {
        "events": n,
        "file_mib": round(src.stat().st_size / 2**20, 1),
        "generate_seconds": round(gen, 1),
        "baseline": {"seconds": round(base_s, 2), "cpu_seconds": round(base_cpu, 2), "events_per_second": round(n / base_s), "peak_rss_mib": round(base_rss)},
    }
    from journeylib.store.database import DEFAULT_MEMORY_LIMIT

    default_limit = os.environ.get("JOURNEYLIB_MEMORY_LIMIT", DEFAULT_MEMORY_LIMIT)
    for label, limit in (("journeylib", default_limit), ("journeylib_memory_limited", memory_limit)):
        db = tmp / f"jl-{kind}-{label}.duckdb"
        secs, rss, text, cpu = child(
            "import json\n"
            "from journeylib.store import Store\n"
            "from journeylib.store.sources import ingest_vendor_file\n"
            "t1 = time.perf_counter()\n"
            f"with Store({str(db)!r}, memory_limit={limit!r}) as s:\n"
            f"    res = ingest_vendor_file(s, {str(src)!r}, reader={kind!r})\n"
            "print(json.dumps([time.perf_counter() - t1, [[r.table, r.read, r.loaded, r.duplicate, r.quarantined] for r in res]]))\n"
        )
        ingest_s, counts = json.loads(text.splitlines()[-1])
        tables = {t: {"read": r, "loaded": lo, "duplicate": d, "quarantined": q} for t, r, lo, d, q in counts}
        out[label] = {
            "seconds": round(ingest_s, 2),
            "seconds_with_imports": round(secs, 2),
            "cpu_seconds_with_imports": round(cpu, 2),
            "events_per_second": round(n / ingest_s),
            "peak_rss_mib": round(rss),
            "memory_limit": limit,
            "vs_baseline": round(base_s / ingest_s, 2),
            "counts": tables,
        }
        for f in tmp.glob(f"jl-{kind}-{label}.duckdb*"):
            f.unlink() if f.is_file() else None
    for f in tmp.glob(f"base-{kind}.duckdb*"):
        f.unlink() if f.is_file() else None
    src.unlink()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, action="append", help="events per export (repeatable; default 1,000,000)")
    parser.add_argument("--kind", choices=["mixpanel", "amplitude"], action="append", help="which readers (default both)")
    parser.add_argument("--memory-limit", default="1GB", help="DuckDB memory_limit of the bounded run (default %(default)s)")
    parser.add_argument("--tmp", type=Path, default=None, help="scratch folder (default: a temporary folder)")
    parser.add_argument(
        "--out", type=Path, default=RESULTS, help="folder of vendor_ingest.json / .md (default benchmarks/results; pass a scratch folder for trial runs)"
    )
    args = parser.parse_args()
    out_dir: Path = args.out
    sizes = args.events or [1_000_000]
    kinds = args.kind or ["mixpanel", "amplitude"]
    out_dir.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()
    record: dict[str, object] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "runs": [],
    }
    runs: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="jl-bench-vendor-", dir=args.tmp) as tmp_s:
        tmp = Path(tmp_s)
        for n in sizes:
            for kind in kinds:
                r = {"reader": kind, **measure(kind, n, tmp, args.memory_limit)}
                runs.append(r)
                sys.stdout.write(json.dumps(r) + "\n")
                sys.stdout.flush()
    record["runs"] = runs
    record["load_average"] = {"start": [round(x, 2) for x in load_before], "end": [round(x, 2) for x in os.getloadavg()]}
    log = out_dir / "vendor_ingest.json"
    history = json.loads(log.read_text()) if log.exists() else []
    history.append(record)
    log.write_text(json.dumps(history, indent=2) + "\n")
    load = os.getloadavg()
    lines = [
        "# Vendor ingest benchmark (latest run first)",
        "",
        f"## Run of {record['when']}",
        "",
        f"{record['when']}, Python {record['python']}, {record['machine']}, load average {load_before[0]:.2f} / {load_before[1]:.2f} / "
        f"{load_before[2]:.2f} at the start, {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} at the end (1 / 5 / 15 min). "
        "Written by `benchmarks/bench_ingest_vendor.py`.",
        "",
        "| reader | events | file MiB | baseline ev/s (RSS MiB) | journeylib ev/s (RSS MiB) | vs baseline | memory-limited ev/s (RSS MiB) "
        "| CPU-s baseline / journeylib / memory-limited |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in runs:
        b, j, m = r["baseline"], r["journeylib"], r["journeylib_memory_limited"]
        assert isinstance(b, dict)
        assert isinstance(j, dict)
        assert isinstance(m, dict)
        lines.append(
            f"| {r['reader']} | {r['events']:,} | {r['file_mib']} | {b['events_per_second']:,} ({b['peak_rss_mib']}) | "
            f"{j['events_per_second']:,} ({j['peak_rss_mib']}, limit {j['memory_limit']}) | {j['vs_baseline']} | "
            f"{m['events_per_second']:,} ({m['peak_rss_mib']}, limit {m['memory_limit']}) | "
            f"{b['cpu_seconds']} / {j['cpu_seconds_with_imports']} / {m['cpu_seconds_with_imports']} |"
        )
    lines += [
        "",
        "baseline: DuckDB `read_json` of the same file into a table, no validation. journeylib: "
        "`ingest_vendor_file` (SQL parsing, quarantine, de-duplication, source refs, identity observations, one transaction). "
        "CPU-s: user + system seconds of each child process, all threads, imports included (on a shared machine they move "
        "less than the wall-clock speeds).",
    ]
    md = out_dir / "vendor_ingest.md"
    earlier = md.read_text().split("\n", 1)[1].lstrip("\n") if md.exists() else ""  # earlier runs and their notes stay below
    md.write_text("\n".join(lines) + "\n" + ("\n" + earlier if earlier else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
