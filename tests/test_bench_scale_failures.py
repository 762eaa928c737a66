"""The scale benchmark harness records spill and failures (benchmarks/bench_scale.py, no store needed)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from test_bench_scale import load_harness  # the harness is a script: one loader for both test files


def test_a_childs_spill_is_measured_in_its_own_temp_directory() -> None:
    harness = load_harness()
    code = (
        "import os, time\n"
        "d = os.environ['JOURNEYLIB_TEMP_DIRECTORY']\n"
        "open(os.path.join(d, 'spill.tmp'), 'wb').write(b'0' * 5 * 2**20)\n"
        "time.sleep(1.5)  # sampled every 0.1 s: long enough on a loaded machine\n"
        "os.remove(os.path.join(d, 'spill.tmp'))\n"
        "print(d)\n"
    )
    r = harness.measure([sys.executable, "-c", code])
    assert r["spill_mib"] == 5.0  # the peak, although the file was gone when the child ended
    assert not Path(r["stdout"].strip()).exists()  # the private directory is removed afterwards
    quiet = harness.measure([sys.executable, "-c", "pass"])
    assert quiet["spill_mib"] == 0.0


def test_a_failed_child_becomes_a_recorded_failure() -> None:
    harness = load_harness()
    r = harness.attempt(1, lambda: harness.python_child(sys.executable, "raise MemoryError('no room at 100M')"))
    assert r["seconds"] is None
    assert r["error"].startswith("failed after ")
    assert "MemoryError: no room at 100M" in r["error"]
    assert r["rss_mib"] > 0
    ok = harness.attempt(1, lambda: harness.python_child(sys.executable, "out, dig = [1], [1]"))
    assert ok["error"] is None
    assert ok["seconds"] > 0


def test_failed_rows_have_no_linearity_and_no_sum_of_baselines() -> None:
    harness = load_harness()
    rows = [
        {"operation": "funnel", "size": s, "events": e, "journeylib_ns_per_event": ns}
        for s, e, ns in (("1M", 10**6, 800.0), ("10M", 10**7, 400.0), ("100M", 10**8, None))
    ]
    assert harness.linearity(rows) == [{"operation": "funnel", "from": "1M", "to": "10M", "ns_per_event_ratio": 0.5}]
    total = {"seconds": 1.0, "spread": 0.1, "rss_mib": 100.0, "spill_mib": 0.0}
    both = harness.add_baseline(total, {"seconds": 2.0, "spread": 0.2, "rss_mib": 300.0, "spill_mib": 5.0})
    assert both == {"seconds": 3.0, "spread": pytest.approx(0.3), "rss_mib": 300.0, "spill_mib": 5.0}
    failed = harness.add_baseline(total, {"seconds": None, "spread": None, "rss_mib": 900.0, "spill_mib": 50.0})
    assert failed["seconds"] is None
