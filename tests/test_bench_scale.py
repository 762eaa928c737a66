"""The scale benchmark harness (benchmarks/bench_scale.py) at a tiny size: baselines agree, results are complete.

No timing is asserted: the harness is run once at about 20k events with one
run per measurement, and the test checks that every hand-written DuckDB
baseline computes the same result as journeylib (its ``same_result``), that
every row of ``scale.json`` and every line of ``scale.md`` carries every
column, and that the measured figures are plausible (positive times and peak
RSS, whole-process times).
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
OPERATIONS = ("milestones", "funnel", "transitions", "sessions", "features", "five_together")


def load_harness() -> ModuleType:
    """Import benchmarks/bench_scale.py (a script, not a package module)."""
    path = ROOT / "benchmarks" / "bench_scale.py"
    spec = importlib.util.spec_from_file_location("bench_scale", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_scale"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> tuple[ModuleType, dict, str]:
    harness = load_harness()
    work = tmp_path_factory.mktemp("bench-scale")
    out = work / "scale"
    code = harness.main(
        ["--sizes", "20k", "--runs", "1", "--operations", ",".join(OPERATIONS), "--cache", str(work / "cache"), "--out", str(out)]
    )
    assert code == 0
    return harness, json.loads(out.with_suffix(".json").read_text()), out.with_suffix(".md").read_text()


def test_parse_size_accepts_suffixes_and_rejects_words() -> None:
    harness = load_harness()
    assert [harness.parse_size(s) for s in ("20k", "1M", "10m", "5000", "0.5M")] == [20_000, 1_000_000, 10_000_000, 5000, 500_000]
    with pytest.raises(SystemExit, match="not a number of events"):
        harness.parse_size("lots")


def test_every_baseline_computes_journeylibs_result(results: tuple[ModuleType, dict, str]) -> None:
    _, record, _ = results
    rows = {r["operation"]: r for r in record["rows"]}
    assert set(rows) == set(OPERATIONS)
    for name in ("milestones", "funnel", "transitions", "sessions", "features"):
        assert rows[name]["same_result"] is True, name
        assert rows[name]["baseline_s"] > 0
        assert rows[name]["ratio_vs_baseline"] == pytest.approx(rows[name]["journeylib_s"] / rows[name]["baseline_s"], rel=0.02)
    # the five together are compared with the sum of the five baselines
    five = sum(rows[n]["baseline_s"] for n in ("milestones", "funnel", "transitions", "sessions", "features"))
    assert rows["five_together"]["baseline_s"] == pytest.approx(five, abs=0.01)
    assert rows["five_together"]["same_result"] is True  # each of the five results against its baseline


def test_results_carry_every_column_and_the_machine(results: tuple[ModuleType, dict, str]) -> None:
    harness, record, markdown = results
    assert record["columns"] == list(harness.RESULT_COLUMNS)
    for row in record["rows"]:
        assert set(row) == set(harness.RESULT_COLUMNS)
        assert row["size"] == "20k"
        assert 10_000 < row["events"] < 40_000  # about the size asked for
        assert row["journeylib_s"] > 0.1  # a whole process: interpreter start-up and imports count
        assert row["journeylib_rss_mib"] > 20
        assert row["load_average"] is not None
        if row["operation"] in OPERATIONS[:5]:  # the imports end before the work starts, inside the whole process
            assert 0 < row["journeylib_after_imports_s"] < row["journeylib_s"]
        else:
            assert row["journeylib_after_imports_s"] is None
    machine = record["machine"]
    assert machine["cores"] >= 1
    assert machine["ram_mib"] > 0
    assert len(machine["load_average"]) == 3
    header = "| " + " | ".join(harness.RESULT_COLUMNS) + " |"
    assert header in markdown
    table = [line for line in markdown.splitlines() if line.startswith("| 20k |")]
    assert len(table) == len(OPERATIONS)
    assert all(line.count("|") == len(harness.RESULT_COLUMNS) + 1 for line in table)


def test_a_different_result_is_reported_not_hidden() -> None:
    harness = load_harness()
    assert harness.digest_of("printed before\n3\n[1, 2]") == (3, [1, 2])
    assert harness.same_result("funnel", "6\n[[1, 2]]", "6\n[[1, 2]]")
    assert not harness.same_result("funnel", "6\n[[1, 2]]", "6\n[[1, 3]]")
    assert not harness.same_result("sessions", "6\n[1]", "5\n[1]")  # the same digest, fewer rows
    assert harness.same_result("milestones", "30\n[[5, 7]]", "6\n[[5, 7]]")  # long against wide: digests only
    # the five together: each operation's [rows, digest] against its own baseline's output
    five = {n: [6, [[1, 2]]] for n in harness.FIVE}
    bases = {n: "6\n[[1, 2]]" for n in harness.FIVE}
    assert harness.five_same_result(f"1\n{json.dumps(five)}", bases) is True
    assert harness.five_same_result(f"1\n{json.dumps({**five, 'sessions': [6, [[1, 3]]]})}", bases) is False
    assert harness.five_same_result(f"1\n{json.dumps(five)}", {n: bases[n] for n in harness.FIVE[:4]}) is None


def test_the_memory_targets_name_the_largest_process_and_keep_the_event_level_ones_apart() -> None:
    harness = load_harness()

    def row(op: str, rss: float, size: str = "10M", events: int = 10_000_000) -> dict:
        return {"operation": op, "size": size, "events": events, "journeylib_rss_mib": rss, "ratio_vs_baseline": None,
                "retentioneering_s": None, "journeylib_s": 1.0}

    rows = [row("milestones", 500.0), row("five_together", 790.0), row("report_01", 1233.0), row("score", 1172.0),
            row("sessions", 9000.0, "100M", 100_000_000)]  # above 12M events: not read by the 10M targets
    memory = {t["target"]: (t["value"], t["met"]) for t in harness.targets(rows) if t["target"].startswith("peak RSS")}
    assert memory == {
        "peak RSS <= 800 MiB (the event-level operations and the five together; largest: five_together)": (790.0, True),
        "peak RSS <= 800 MiB (every operation; largest: report_01)": (1233.0, False),
    }
    only_reports = {t["target"] for t in harness.targets([row("score", 700.0)]) if t["target"].startswith("peak RSS")}
    assert only_reports == {"peak RSS <= 800 MiB (every operation; largest: score)"}


def test_the_time_after_imports_runs_from_ready_to_done() -> None:
    harness = load_harness()
    r = harness.python_child(sys.executable, "import json\nREADY = time.time()\ntime.sleep(0.3)\nDONE = time.time()\nout = []\ndig = []")
    assert 0.3 <= r["after_imports"] < r["seconds"]
    assert "@@READY" not in r["stdout"]
    plain = harness.python_child(sys.executable, "DONE = time.time()\nout = []\ndig = []")
    assert plain["after_imports"] is None
    runs = iter([{**r, "after_imports": 0.5}, {**r, "after_imports": 0.7}, {**r, "after_imports": 0.9}])
    assert harness.repeat(3, lambda: next(runs))["after_imports"] == 0.7  # the median
    mixed = iter([{**r, "after_imports": 0.5}, {**plain}])
    assert harness.repeat(2, lambda: next(mixed))["after_imports"] is None  # not a median of some runs


def test_the_store_file_is_read_whole_before_measuring(tmp_path: Path) -> None:
    harness = load_harness()
    path = tmp_path / "store.duckdb"
    path.write_bytes(b"x" * (3 * 2**20 + 5))
    read: list[int] = []
    real_open = Path.open

    def counting_open(self: Path, *args: object, **kwargs: object) -> object:
        f = real_open(self, *args, **kwargs)  # type: ignore[call-overload]
        real_read = f.read

        def read_counted(n: int = -1) -> bytes:
            data = real_read(n)
            read.append(len(data))
            return data

        f.read = read_counted
        return f

    with pytest.MonkeyPatch.context() as m:
        m.setattr(Path, "open", counting_open)
        assert harness.warm_page_cache(path, chunk=2**20) >= 0
    assert sum(read) == path.stat().st_size


def test_journeylib_and_its_baseline_run_interleaved_and_a_failure_stops_only_its_side() -> None:
    harness = load_harness()
    calls: list[str] = []

    def run(side: str, seconds: list[float]) -> object:
        it = iter(seconds)

        def fn() -> dict[str, object]:
            calls.append(side)
            return {"seconds": next(it), "rss_mib": 10.0, "spill_mib": 0.0, "stdout": side, "load": 1.0}

        return fn

    a, b = harness.attempt_pair(4, run("jl", [1.0, 3.0, 2.0, 9.0]), run("base", [5.0, 4.0, 6.0, 7.0]))
    assert calls == ["jl", "base", "base", "jl", "jl", "base", "base", "jl"]  # each round both, the first alternating
    assert (a["seconds"], a["spread"], a["error"]) == (2.5, 8.0, None)  # medians of each side's own runs
    assert (b["seconds"], b["spread"], b["stdout"]) == (5.5, 3.0, "base")

    calls.clear()

    def broken() -> dict[str, object]:
        calls.append("jl")
        raise harness.ChildFailed("x", error="MemoryError", seconds=1.5, rss_mib=99.0, spill_mib=0.0)

    a, b = harness.attempt_pair(3, broken, run("base", [5.0, 4.0, 6.0]))
    assert calls == ["jl", "base", "base", "base"]  # the failed side is not run again
    assert (a["seconds"], a["rss_mib"]) == (None, 99.0)
    assert "MemoryError" in a["error"]
    assert (b["seconds"], b["error"]) == (5.0, None)
