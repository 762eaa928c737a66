"""Kernel-side time to a usable dashboard: from kernel start to the widget cell done, per notebook.

Run: ``.venv/bin/python benchmarks/bench_dashboard_kernel.py [--db PATH] [--repeat 2] [--notebooks 00 01 ...]
[--label before|after] [--out benchmarks/results/dashboard_kernel.json]``.

For each dashboard notebook it starts a fresh IPython kernel the way Voila does (``SERVER_SOFTWARE=voila/…`` in
its environment, the notebooks folder as working directory, the store named by ``JOURNEYLIB_DB``) and runs the
notebook's code cells in order up to and including the first ``dashboard-only`` cell, as Voila with progressive
rendering shows them. It records the kernel start, the import cell, the configuration cell (``open_journey``,
``setup_altair``), the cells between, the widget cell, the total (kernel start to widget cell done) and the kernel's
resident memory (RSS, MiB) after the widget cell. The kernels inherit ``JOURNEYLIB_RESULTS_DIR``: run once after a
report run of the same store (warm) and once with ``JOURNEYLIB_RESULTS_DIR`` naming an empty folder (cold). The browser side (page, widget JavaScript) is not included:
``tests/test_browser.py`` records that end to end in ``benchmarks/results/dashboard_ttu.json``.
With ``--kernel-memory 2GiB`` the kernels start through the dashboards' bounded kernelspec
(:mod:`journeylib.reports.kernel_launcher`, ``RLIMIT_DATA``) and DuckDB gets the dashboards' share of the bound, as
under ``journeylib dashboard``; the kernel's ``VmRSS``, ``VmHWM`` (peak resident), ``VmData`` (what the bound counts)
and ``VmSize`` are recorded after the widget cell (and, with ``--full``, after the last cell).
The JSON file keeps one entry per label, so a "before" and an "after" run can be compared in the Markdown table
written beside it. Not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import nbformat
from jupyter_client.manager import start_new_kernel

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"


def dashboard_cells(path: Path, *, rest: bool = False) -> list[str]:
    """Return the code cells of *path* up to and including its first ``dashboard-only`` cell (with *rest*: the others after it)."""
    nb = nbformat.read(path, as_version=4)
    cells: list[str] = []
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    for i, cell in enumerate(code):
        cells.append(cell.source)
        if "dashboard-only" in cell.metadata.get("tags", []):
            return [c.source for c in code[i + 1 :]] if rest else cells
    msg = f"{path}: no code cell tagged 'dashboard-only'; cannot tell where the widget is"
    raise ValueError(msg)


def kernel_rss_mib(pid: int) -> float | None:
    """Return the resident memory of process *pid* in MiB (Linux ``/proc``), or None where it cannot be read."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


MEMORY_FIELDS = ("VmRSS", "VmHWM", "VmData", "VmSize")


def kernel_memory_mib(pid: int) -> dict[str, float]:
    """Return the :data:`MEMORY_FIELDS` of process *pid* from ``/proc/<pid>/status``, in MiB (empty where unreadable)."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return {}
    fields = (line.split(":", 1) for line in lines if ":" in line)
    return {k: round(int(v.split()[0]) / 1024, 1) for k, v in fields if k in MEMORY_FIELDS}


def run_once(path: Path, db: Path, *, full: bool = False) -> dict[str, Any]:
    """Start a kernel, run the dashboard cells of *path* and return the phase times in seconds.

    With *full*, the cells after the widget run too (Voila runs them before the kernel answers the widget's
    controls) and ``rest`` is their time.
    """
    env = dict(os.environ, SERVER_SOFTWARE="voila/bench", JOURNEYLIB_DB=str(db), QUERY_STRING="")
    env.pop("REPORT_CHART_MODE", None)
    cells = dashboard_cells(path)
    t0 = time.perf_counter()
    km, kc = start_new_kernel(kernel_name="python3", cwd=str(NOTEBOOKS), env=env)
    times: dict[str, Any] = {"kernel_start": time.perf_counter() - t0}
    errors: list[str] = []
    try:
        cell_times = []
        for source in cells:
            t = time.perf_counter()
            reply = kc.execute_interactive(
                source, timeout=600, output_hook=lambda msg: errors.append(msg["content"]["ename"])
                if msg["msg_type"] == "error" else None
            )
            cell_times.append(time.perf_counter() - t)
            if reply["content"]["status"] != "ok":
                errors.append(f"cell {len(cell_times) - 1}: {reply['content'].get('ename')}")
        times["imports"] = cell_times[0]
        config = next(i for i, s in enumerate(cells) if "open_journey" in s)
        times["open_journey"] = cell_times[config]
        times["between"] = sum(cell_times[1:config]) + sum(cell_times[config + 1 : -1])
        times["widget"] = cell_times[-1]
        times["total"] = time.perf_counter() - t0
        pid = getattr(km.provisioner, "pid", None)
        times["rss_mib"] = kernel_rss_mib(pid) if pid else None
        times["memory"] = kernel_memory_mib(pid) if pid else {}
        if full:
            t = time.perf_counter()
            for source in dashboard_cells(path, rest=True):
                reply = kc.execute_interactive(source, timeout=600, output_hook=lambda msg: None)  # outputs are not measured
                if reply["content"]["status"] != "ok":
                    errors.append(f"after the widget: {reply['content'].get('ename')}")
            times["rest"] = time.perf_counter() - t
            times["memory_full"] = kernel_memory_mib(pid) if pid else {}
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    times["errors"] = errors
    return times


def main(argv: list[str] | None = None) -> int:
    """Measure every dashboard notebook and write the JSON and Markdown results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default=str(ROOT / "data" / "journeylib.duckdb"))
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--notebooks", nargs="*", default=None, help="notebook prefixes such as 00 05 (default: 00-07)")
    parser.add_argument("--label", default="after")
    parser.add_argument("--full", action="store_true", help="also run the cells after the widget and record their time")
    parser.add_argument("--note", default="", help="how this label was measured (kept with it and shown under its heading)")
    parser.add_argument("--kernel-memory", default=None, help="start the kernels under this bound, as the dashboards do (e.g. 2GiB)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "dashboard_kernel.json"))
    args = parser.parse_args(argv)
    db = Path(args.db).resolve()
    if not db.is_file():
        print(f"store {db} does not exist; build it with `journeylib demo` or pass --db", file=sys.stderr)
        return 2
    if args.kernel_memory:
        from journeylib.reports.dashboard import duckdb_memory_limit
        from journeylib.reports.kernel_launcher import parse_memory, write_kernelspec

        bound = parse_memory(args.kernel_memory)
        if bound:
            spec_folder = tempfile.mkdtemp(prefix="bench-kernels-")
            write_kernelspec(spec_folder, bound)
            os.environ["JUPYTER_PATH"] = os.pathsep.join([spec_folder, *filter(None, [os.environ.get("JUPYTER_PATH")])])
            os.environ.setdefault("JOURNEYLIB_MEMORY_LIMIT", duckdb_memory_limit(bound) or "")
    paths = sorted(NOTEBOOKS.glob("0[0-7]_*.ipynb"))
    if args.notebooks:
        paths = [p for p in paths if p.name[:2] in set(args.notebooks)]
    out = Path(args.out)
    results: dict[str, Any] = json.loads(out.read_text()) if out.is_file() else {}
    entry: dict[str, Any] = {
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "db": str(db),
        "load_average": round(os.getloadavg()[0], 2),
        "results_dir": os.environ.get("JOURNEYLIB_RESULTS_DIR", "(default ~/.cache/journeylib/results)"),
        "repeat": args.repeat,
        "note": args.note,
        "kernel_memory": args.kernel_memory or "none",
        "notebooks": {},
    }
    for path in paths:
        runs = [run_once(path, db, full=args.full) for _ in range(args.repeat)]
        phases = ["kernel_start", "imports", "open_journey", "between", "widget", "total"]
        entry["notebooks"][path.stem] = {
            **{k: round(statistics.median(r[k] for r in runs), 2) for k in phases},
            "runs": len(runs),
            "total_min": round(min(r["total"] for r in runs), 2),
            "total_max": round(max(r["total"] for r in runs), 2),
            "errors": sorted({e for r in runs for e in r["errors"]}),
            "rss_mib": max((r["rss_mib"] for r in runs if r.get("rss_mib") is not None), default=None),
            **({"rest": round(statistics.median(r["rest"] for r in runs), 2)} if args.full else {}),
            "memory": {k: max(r.get("memory", {}).get(k, 0.0) for r in runs) for k in MEMORY_FIELDS},
            **({"memory_full": {k: max(r.get("memory_full", {}).get(k, 0.0) for r in runs) for k in MEMORY_FIELDS}} if args.full else {}),
            "load_average": round(os.getloadavg()[0], 2),
        }
        print(path.stem, entry["notebooks"][path.stem], flush=True)
    entry["load_average_end"] = round(os.getloadavg()[0], 2)
    results.setdefault(args.label, {}).update({k: v for k, v in entry.items() if k != "notebooks"})
    results[args.label].setdefault("notebooks", {}).update(entry["notebooks"])
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    out.with_suffix(".md").write_text(markdown(results))
    return 0


def markdown(results: dict[str, Any]) -> str:
    """Render the measured labels as one Markdown table per label."""
    lines = [
        "# Dashboard kernel time to the widget",
        "",
        "Written by `benchmarks/bench_dashboard_kernel.py`: a fresh kernel per run with Voila's environment, the",
        "notebook's code cells up to and including its first `dashboard-only` cell; median of the runs, seconds.",
        "Browser-side time (page, widget JavaScript) is not included. *Cells after the widget* (`--full`): the",
        "report cells below it, which Voila runs before the kernel answers the widget's controls.",
        "",
    ]
    for label, entry in results.items():
        lines += [
            f"## {label}",
            "",
            f"Measured {entry.get('measured_at')}, store `{entry.get('db')}`, load average "
            f"{entry.get('load_average')} → {entry.get('load_average_end')} (last run of this label)"
            + (f", persistent results `{entry['results_dir']}`" if entry.get("results_dir") else "")
            + ".",
            *([entry["note"]] if entry.get("note") else []),
            "",
            "| notebook | runs | kernel start | import cell | configuration cell | cells between | widget cell | total (min–max) "
            "| kernel RSS after the widget (MiB) | cells after the widget | load average after | errors |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for name, r in entry.get("notebooks", {}).items():
            lines.append(
                f"| {name} | {r.get('runs', 1)} | {r['kernel_start']} | {r['imports']} | {r['open_journey']} | {r['between']} | "
                f"{r['widget']} | {r['total']} ({r['total_min']}–{r['total_max']}) | {r.get('rss_mib') or '—'} | {r.get('rest', '—')} | "
                f"{r.get('load_average', '—')} | {', '.join(r['errors']) or '—'} |"
            )
        lines.append("")
        measured = {n: r for n, r in entry.get("notebooks", {}).items() if r.get("memory")}
        if measured:
            lines += [
                f"Kernel memory, MiB (bound: {entry.get('kernel_memory', 'none')}; VmHWM is the peak resident size so far; "
                "VmData is what `RLIMIT_DATA` counts; largest over the runs):",
                "",
                "| notebook | VmRSS after the widget | VmHWM | VmData | VmSize | VmRSS after the last cell | VmHWM | VmData | VmSize |",
                "|---|---|---|---|---|---|---|---|---|",
            ]
            for name, r in measured.items():
                after, full = r["memory"], r.get("memory_full", {})
                cells = [after.get(k, "—") for k in MEMORY_FIELDS] + [full.get(k, "—") for k in MEMORY_FIELDS]
                lines.append(f"| {name} | " + " | ".join(str(c) for c in cells) + " |")
            lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
