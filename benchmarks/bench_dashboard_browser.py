"""Dashboard time to usable and time to a control's answer, in a real browser (Debian Chromium, loopback only).

Run with ``python benchmarks/bench_dashboard_browser.py --db STORE`` after a
report run of the same store (so the pages read the persistent results the
report run wrote: run both with the same ``JOURNEYLIB_RESULTS_DIR``). It
starts ``journeylib dashboard`` on a free port (``--kernel-pool``), and for
each page (``--pages``, default every notebook):

* ``usable_s``: from navigation until the controls and the live charts show
  (the browser tests' definition: a visible dropdown, text box or button, and
  SVG text in every live chart area; for a page without a widget, its first
  output);
* ``answer_s``: after that, from choosing another value in the page's first
  dropdown until the widget around it shows something new (its text or its
  charts' text changed) -- the wait a viewer has for the first answer while
  the report sections below the widget still compute;
* ``headline_s``: from navigation until the headline slot at the top of the
  page holds the page's headline cards (pages with a slot);
* ``answered_at_s``: ``usable_s`` plus ``answer_s``, i.e. seconds from
  navigation to the first answer.

With ``--kernel-pool`` above 0, each page is opened once the server has a
warm kernel ready for it (``warm_kernel``; a viewer arriving sooner gets a
kernel of its own, as without a pool); between two pages it also waits
``--settle`` seconds.
Results: ``benchmarks/results/dashboard_browser.json`` (by ``--label``) and
``.md``. Not a test: nothing is asserted; the figures depend on the machine's
load, recorded with each page.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from _browser import SHOWN, USABLE, NetworkGuard, chromium, new_page  # noqa: E402

from journeylib.reports.dashboard import find_free_port, start_dashboard, stop_dashboard, wait_until_ready  # noqa: E402

#: The outermost widget box around the first dropdown, and what it shows (text and SVG text).
WIDGET_TEXT = """() => {
  const select = [...document.querySelectorAll('.widget-dropdown select')].find(e => e.getBoundingClientRect().width > 0);
  if (!select) return null;
  let root = select, node = select;
  while (node) { if (node.classList && node.classList.contains('widget-box')) root = node; node = node.parentElement; }
  return root.innerText + [...root.querySelectorAll('svg text')].map(t => t.textContent).join('|');
}"""
PICK_OTHER = """() => {
  const select = [...document.querySelectorAll('.widget-dropdown select')].find(e => e.getBoundingClientRect().width > 0);
  const next = [...select.options].find(o => !o.selected);
  if (!next) return null;
  select.value = next.value;
  select.dispatchEvent(new Event('change', {bubbles: true}));
  return next.textContent;
}"""
HEADLINE = "() => document.querySelectorAll('.journeylib-headline-slot .jl-card').length > 0"


def has_widget(notebook: Path) -> bool:
    """Whether *notebook* has a ``dashboard-only`` cell (a widget)."""
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    return any("dashboard-only" in c.get("metadata", {}).get("tags", []) for c in cells)


def has_slot(notebook: Path) -> bool:
    """Whether *notebook* shows a headline slot."""
    return "headline_slot()" in notebook.read_text(encoding="utf-8")


def measure_page(browser: Any, url: str, notebook: Path, timeout_ms: int) -> dict[str, Any]:
    """Open one page and return its figures (seconds; None where not applicable)."""
    guard = NetworkGuard(allow_loopback=True, allow_files=False)
    console: list[tuple[str, str]] = []
    page = new_page(browser, guard, console)
    row: dict[str, Any] = {"load_average": round(os.getloadavg()[0], 2)}
    try:
        start = time.perf_counter()
        page.goto(url, timeout=timeout_ms)
        widget = has_widget(notebook)
        page.wait_for_function(USABLE if widget else SHOWN, timeout=timeout_ms)
        row["usable_s"] = round(time.perf_counter() - start, 2)
        row["answer_s"] = None
        if widget and page.evaluate(WIDGET_TEXT) is not None:
            before = page.evaluate(WIDGET_TEXT)
            picked = page.evaluate(PICK_OTHER)
            if picked is not None:
                t = time.perf_counter()
                page.wait_for_function(f"() => ({WIDGET_TEXT})() !== {json.dumps(before)}", timeout=timeout_ms)
                row["answer_s"] = round(time.perf_counter() - t, 2)
                row["answered_at_s"] = round(time.perf_counter() - start, 2)
                row["picked"] = picked.strip()
        if has_slot(notebook):
            page.wait_for_function(HEADLINE, timeout=timeout_ms)
            row["headline_s"] = round(time.perf_counter() - start, 2)
        row["outside_requests"] = len(guard.blocked)
        errors = [text for kind, text in console if kind in ("error", "pageerror")]
        row["console_errors"] = len(errors)
        if errors:
            row["console_error_texts"] = errors[:3]
    finally:
        page.close(run_before_unload=True)  # as a viewer leaving the page: Voila shuts its kernel down
    return row


def wait_for_warm_kernels(log: Path, count: int, *, timeout: float) -> bool:
    """Wait until the server's log says *count* warm kernels have been ready; return whether it did in *timeout* s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.is_file() and log.read_text(errors="replace").count("warm kernel ") >= count:
            return True
        time.sleep(0.25)
    return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", required=True, help="the store the dashboards read")
    parser.add_argument("--notebooks", default=str(ROOT / "notebooks"))
    parser.add_argument("--reports", default=None, help="report runs for the landing page (default: reports next to the notebooks)")
    parser.add_argument("--pages", nargs="*", default=None, help="notebook names (default: every notebook of the folder)")
    parser.add_argument("--kernel-pool", type=int, default=1)
    parser.add_argument("--max-kernels", type=int, default=0, help="as journeylib dashboard --max-kernels (0: no bound)")
    parser.add_argument("--settle", type=float, default=10.0, help="seconds between pages (a warm kernel gets ready)")
    parser.add_argument("--label", default="after")
    parser.add_argument("--note", default="")
    parser.add_argument("--timeout", type=float, default=240.0, help="seconds a page may take")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "dashboard_browser.json"))
    args = parser.parse_args(argv)
    folder = Path(args.notebooks).resolve()
    pages = args.pages or sorted(p.stem for p in folder.glob("*.ipynb"))
    port = find_free_port()
    log = Path(tempfile.mkdtemp(prefix="bench-dashboard-")) / "voila.log"
    process = start_dashboard(folder, port=port, db=args.db, log=log, reports_dir=args.reports, kernel_pool=args.kernel_pool,
                              max_kernels=args.max_kernels)
    rows: dict[str, Any] = {}
    try:
        wait_until_ready(port, 120, process=process)
        time.sleep(args.settle)
        with chromium() as browser:
            for i, name in enumerate(pages):
                # with a pool: the (i+1)-th warm kernel is ready (the server logs each), as for a viewer who is not the
                # second one within seconds; without one, the page starts its own kernel
                warm = args.kernel_pool > 0 and wait_for_warm_kernels(log, i + 1, timeout=120)
                url = f"http://127.0.0.1:{port}/voila/render/{name}.ipynb"
                rows[name] = measure_page(browser, url, folder / f"{name}.ipynb", int(args.timeout * 1000))
                rows[name]["warm_kernel"] = warm
                sys.stdout.write(f"{name}: {rows[name]}\n")
                sys.stdout.flush()
                time.sleep(args.settle)
    finally:
        stop_dashboard(process)
    out = Path(args.out)
    record = json.loads(out.read_text()) if out.is_file() else {}
    record[args.label] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "db": str(Path(args.db).resolve()),
        "kernel_pool": args.kernel_pool,
        "results_dir": os.environ.get("JOURNEYLIB_RESULTS_DIR", "(default)"),
        "note": args.note,
        "pages": rows,
    }
    out.write_text(json.dumps(record, indent=2) + "\n")
    out.with_suffix(".md").write_text(markdown(record))
    sys.stdout.write(f"written {out} and {out.with_suffix('.md')}\n")
    return 0


def markdown(record: dict[str, Any]) -> str:
    """Render the results as Markdown tables, one per label."""
    intro = "\n\n".join((__doc__ or "").split("\n\n")[1:4])  # how to run it, what each figure is, the pool
    lines = ["# Dashboards in a browser: time to usable and to the first answer", "", intro, ""]
    columns = ["usable_s", "answer_s", "answered_at_s", "headline_s", "warm_kernel", "load_average", "outside_requests",
               "console_errors"]
    for label, run in record.items():
        lines += [f"## {label}", "", f"Measured {run['when']}, store `{run['db']}`, kernel pool {run['kernel_pool']}, "
                  f"persistent results `{run['results_dir']}`. {run['note']}".rstrip(), ""]
        lines += ["| page | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
        for name, row in run["pages"].items():
            lines.append(f"| {name} | " + " | ".join("—" if row.get(c) is None else str(row[c]) for c in columns) + " |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
