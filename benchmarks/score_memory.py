"""Run ``score_customers`` on a store while a thread samples the RSS; print the peak of each step of scoring.

Run: ``JOURNEYLIB_RESULTS_DIR=off .venv/bin/python benchmarks/score_memory.py STORE [SECONDS]`` (with
``PYTHONPATH=<tree>`` to run another copy of the code). Every SECONDS (default 0.25) the thread reads the process's
RSS (psutil) and the main thread's stack; samples are grouped by the line of ``_score_customers`` being run (the
step), and each group's duration and largest RSS are printed with the journeylib / scikit-learn frames under it.
The last lines are the process's wall and CPU time, ``ru_maxrss`` and the load average. Used for
``benchmarks/results/scale_score.md``.
"""

from __future__ import annotations

import os
import resource
import sys
import threading
import time
from pathlib import Path

import psutil


def main(store_path: str, every: float = 0.25, definition: str = "parameters/journeys/saas.yaml") -> None:
    """Score *store_path* with defaults and write the per-step RSS peaks to stdout."""
    from journeylib.config.journey import JourneyDefinition
    from journeylib.customers.scoring import score_customers
    from journeylib.store import Store

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
