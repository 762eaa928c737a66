"""Run ``score_customers`` on a store while a thread samples the RSS; print the peak of each step of scoring.

Run: ``JOURNEYLIB_RESULTS_DIR=off .venv/bin/python benchmarks/score_memory.py STORE [SECONDS]`` (with
``PYTHONPATH=<tree>`` to run another copy of the code). Every SECONDS (default 0.25) the thread reads the process's
RSS (psutil) and the main thread's stack; samples are grouped by the line of ``_score_customers`` being run (the
step), and each group's duration and largest RSS are printed with the journeylib / scikit-learn frames under it.
The sampled peaks can miss a short spike between two samples; on Linux the exact peak of each of scoring's five
steps (ticket sentiment, snapshots, model, risk reasons, next stage) is printed too: the kernel's high-water mark
of the RSS (``VmHWM``), read and reset (``/proc/self/clear_refs``) where scoring's progress bar moves to the next
step. The last lines are the process's wall and CPU time, ``ru_maxrss`` (of the last step, once reset) and the
load average. Used for ``benchmarks/results/scale_score.md``.
"""

from __future__ import annotations

import contextlib
import os
import resource
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil

MiB = 2**20


def _hwm() -> int | None:
    """The process's peak RSS since the last reset (``VmHWM``), in bytes; None where it cannot be read."""
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))
    except (OSError, StopIteration, ValueError):
        return None


def _reset_hwm() -> bool:
    """Reset the peak RSS to the current RSS (Linux 4.0+); False where it cannot be done."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return True


class _StepPeaks:
    """Wraps scoring's step bar: at each step change the exact peak RSS of the step that ended is recorded."""

    def __init__(self, bar: Any, peaks: list[tuple[str, int]]) -> None:
        self.bar, self.peaks, self.step = bar, peaks, "(start)"

    def __getattr__(self, name: str) -> Any:
        return getattr(self.bar, name)

    def set_postfix_str(self, text: str, *args: Any, **kwargs: Any) -> Any:
        self.close_step()
        self.step = text
        return self.bar.set_postfix_str(text, *args, **kwargs)

    def close_step(self) -> None:
        peak = _hwm()
        if peak is not None and _reset_hwm():
            self.peaks.append((self.step, peak))


def main(store_path: str, every: float = 0.25, definition: str = "parameters/journeys/saas.yaml") -> None:
    """Score *store_path* with defaults and write the per-step RSS peaks to stdout."""
    from journeylib.config.journey import JourneyDefinition
    from journeylib.customers import scoring
    from journeylib.customers.scoring import score_customers
    from journeylib.store import Store

    peaks: list[tuple[str, int]] = []
    bars: list[_StepPeaks] = []
    real_bar = scoring.progress_bar

    @contextlib.contextmanager
    def step_bar(*args: Any, **kwargs: Any) -> Iterator[Any]:
        with real_bar(*args, **kwargs) as bar:
            if kwargs.get("desc") != "score":
                yield bar
                return
            bars.append(_StepPeaks(bar, peaks))
            yield bars[-1]
            bars[-1].close_step()

    scoring.progress_bar = step_bar

    proc = psutil.Process()
    main_id = threading.main_thread().ident
    samples: list[tuple[float, int, list[str]]] = []
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            rss = proc.memory_info().rss
            frame = sys._current_frames().get(main_id) if main_id is not None else None
            chain = []
            while frame is not None:
                code = frame.f_code
                if "journeylib" in code.co_filename or "sklearn" in code.co_filename:
                    chain.append(f"{Path(code.co_filename).name}:{code.co_name}:{frame.f_lineno}")
                frame = frame.f_back
            samples.append((time.perf_counter(), rss, chain))
            done.wait(every)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    t0 = time.perf_counter()
    with Store(store_path, read_only=True) as store:
        res = score_customers(store, definition=JourneyDefinition.load(definition), progress=False)
    wall = time.perf_counter() - t0
    done.set()
    thread.join()
    steps: dict[str, list] = {}
    for ts, rss, chain in samples:
        step = next((c for c in reversed(chain) if "_score_customers" in c), "(before the steps)")
        s = steps.setdefault(step, [ts, ts, 0, ""])
        s[1] = ts
        if rss > s[2]:
            s[2], s[3] = rss, " <- ".join(chain[:6])
    for step, (first, last, peak, where) in steps.items():
        sys.stdout.write(f"{step:40s} {last - first:7.1f} s  max {peak / 2**20:6.0f} MiB  at {where}\n")
    if peaks:
        sys.stdout.write("exact step peaks (VmHWM): " + ", ".join(f"{name} {peak / MiB:.0f}" for name, peak in peaks) + " MiB\n")
    ru = resource.getrusage(resource.RUSAGE_SELF)
    sys.stdout.write(
        f"{len(res.scores):,} customers scored: wall {wall:.1f} s, CPU {ru.ru_utime + ru.ru_stime:.1f} s, "
        f"ru_maxrss {ru.ru_maxrss / 1024:.0f} MiB, load average {os.getloadavg()}\n"
    )


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.stderr.write("usage: score_memory.py STORE [SECONDS]\n")
        sys.exit(2)
    main(sys.argv[1], float(sys.argv[2]) if len(sys.argv) == 3 else 0.25)
