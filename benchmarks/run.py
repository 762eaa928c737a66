"""Benchmarks: synthetic world generation and canonical ingest.

Run with ``make bench`` (or ``python benchmarks/run.py --customers N``).
Each measurement runs in a child process so that its peak memory (max RSS)
is its own. Speed is reported as a ratio against a baseline measured in the
same run, never as an absolute pass/fail:

* ``synth``: wall time and peak RSS of ``journeylib synth``;
* ``ingest``: journeylib's validated, de-duplicated ingest of the events
  files, against DuckDB loading the same Parquet files with no validation at
  all (``CREATE TABLE AS SELECT * FROM read_parquet(...)``).

Results go to ``benchmarks/results/results.json`` (appended, one record per
run) and ``benchmarks/results/latest.md``.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


def child(code: str) -> tuple[float, float, str]:
    """Run Python code in a child; return (seconds, peak RSS in MiB, stdout)."""
    script = (
        "import resource, sys, time\n"
        "t0 = time.perf_counter()\n"
        f"{code}\n"
        "sys.stdout.write('\\n@@%f %d' % (time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    body, _, tail = out.rpartition("@@")
    secs, rss_kb = tail.split()
    return float(secs), int(rss_kb) / 1024, body.strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar over the measurements on stderr (default: only when stderr is a terminal)",
    )
    args = parser.parse_args()
    from journeylib.store.progress import progress_bar

    bar = progress_bar(total=3, desc="bench", unit="step", progress=args.progress)
    RESULTS.mkdir(parents=True, exist_ok=True)
    record: dict[str, object] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "customers": args.customers,
        "python": platform.python_version(),
        "machine": f"{platform.machine()} {resource.getpagesize()}B pages, {__import__('os').cpu_count()} cores",
    }
    with tempfile.TemporaryDirectory(prefix="jl-bench-") as tmp, bar:
        world = Path(tmp) / "world"
        bar.set_postfix_str(f"synth {args.customers:,} customers", refresh=True)
        secs, rss, _ = child(
            f"from journeylib.datasets import synthesize\nsynthesize({str(world)!r}, n_customers={args.customers}, seed={args.seed})"
        )
        truth = json.loads((world / "truth.json").read_text())
        n_events = int(truth.get("row_counts", truth.get("counts", {})).get("events", 0))
        record["synth"] = {"seconds": round(secs, 2), "peak_rss_mib": round(rss, 1), "events": n_events,
                           "events_per_second": round(n_events / secs) if secs else None}
        bar.update(1)
        bar.set_postfix_str(f"synth {secs:.1f} s; baseline ingest", refresh=True)
        events_glob = str(world / "events" / "*.parquet")
        base_s, base_rss, _ = child(
            "import duckdb\n"
            f"con = duckdb.connect({str(Path(tmp) / 'base.duckdb')!r})\n"
            f"con.execute(\"CREATE TABLE events AS SELECT * FROM read_parquet('{events_glob}')\")\n"
        )
        bar.update(1)
        bar.set_postfix_str(f"baseline {base_s:.1f} s; journeylib ingest", refresh=True)
        jl_s, jl_rss, out = child(
            "from pathlib import Path\n"
            "from journeylib.store import Store\n"
            "from journeylib.store.ingest import ingest_files\n"
            f"files = sorted(Path({str(world / 'events')!r}).glob('*.parquet'))\n"
            f"with Store({str(Path(tmp) / 'jl.duckdb')!r}) as s:\n"
            "    rs = ingest_files(s, 'events', files)\n"
            "print(sum(r.loaded for r in rs))\n"
        )
        bar.update(1)
        bar.set_postfix_str(f"journeylib ingest {jl_s:.1f} s", refresh=True)
        loaded = int(out.splitlines()[-1]) if out else 0
        record["ingest_events"] = {
            "rows": loaded,
            "journeylib_seconds": round(jl_s, 2),
            "journeylib_rows_per_second": round(loaded / jl_s) if jl_s else None,
            "journeylib_peak_rss_mib": round(jl_rss, 1),
            "baseline_duckdb_read_parquet_seconds": round(base_s, 2),
            "baseline_peak_rss_mib": round(base_rss, 1),
            "ratio_vs_baseline": round(jl_s / base_s, 1) if base_s else None,
        }
    with open(RESULTS / "results.json", "a") as fh:
        fh.write(json.dumps(record) + "\n")
    lines = [f"# Benchmark {record['when']} ({args.customers:,} customers)", "", "```json", json.dumps(record, indent=2), "```", ""]
    (RESULTS / "latest.md").write_text("\n".join(lines))
    sys.stdout.write(json.dumps(record, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
