"""A read-only store's default DuckDB memory limit grows with its file (docs/adr/0014-read-memory-limit-by-store-size.md)."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import duckdb
import pytest

import journeylib.store.database as database
from journeylib.reports.dashboard import dashboard_env
from journeylib.store import Store
from journeylib.store.database import (
    DEFAULT_MEMORY_LIMIT,
    DEFAULT_READ_MEMORY_LIMIT,
    READ_MEMORY_PER_STORE_BYTE,
    cgroup_memory_limit,
    engine_settings,
    memory_bound,
    memory_size_bytes,
    read_memory_limit,
)
from journeylib.store.errors import translate_error

GIB = 1024**3


@pytest.fixture(autouse=True)
def _no_limit_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JOURNEYLIB_MEMORY_LIMIT", raising=False)


def store_of_size(path: Path, size: int) -> Path:
    """An empty journeylib store whose file is *size* bytes long (sparse: the tail is a hole DuckDB never reads)."""
    Store(path).close()
    os.truncate(path, size)
    return path


def duckdb_limit(store: Store) -> str:
    with store.session():
        row = store.con.execute("SELECT current_setting('memory_limit')").fetchone()
    assert row is not None
    return str(row[0])


def test_the_rule() -> None:
    assert READ_MEMORY_PER_STORE_BYTE == 1.5
    # up to 400 MB of file (about 15M events) the floor, 600MB: the 1M and 10M benchmark stores are 27 and 267 MB
    for size in (0, 27_275_264, 266_874_880, 400_000_000):
        assert read_memory_limit(size, memory=24 * GIB) == DEFAULT_READ_MEMORY_LIMIT == "600MB"
    # above it 1.5 times the file, rounded up to 100 MB: the 100M store (2.66 GB) gets the 4GB measured on it
    assert read_memory_limit(400_000_001, memory=24 * GIB) == "700MB"
    assert read_memory_limit(500_000_000, memory=24 * GIB) == "800MB"
    assert read_memory_limit(2_660_000_000, memory=24 * GIB) == "4000MB"
    assert read_memory_limit(2_700_000_000, memory=24 * GIB) == "4100MB"
    # at most a quarter of the memory the process may use, rounded down to 100 MB
    assert read_memory_limit(2_700_000_000, memory=8 * GIB) == "2100MB"
    assert read_memory_limit(50_000_000_000, memory=24 * GIB) == "6400MB"
    # never below the floor, however little memory there is
    assert read_memory_limit(2_700_000_000, memory=GIB) == "600MB"


def test_the_memory_is_read_only_for_a_large_store(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []

    def bound() -> int:
        calls.append(1)
        return 8 * GIB

    monkeypatch.setattr(database, "memory_bound", bound)
    assert read_memory_limit(266_874_880) == "600MB"
    assert not calls
    assert read_memory_limit(2_700_000_000) == "2100MB"
    assert calls == [1]


def test_a_small_store_keeps_600mb_and_a_large_one_gets_more(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    small = store_of_size(tmp_path / "small.duckdb", 266_874_880)
    with Store(small, read_only=True) as s:
        assert s.settings["memory_limit"] == "600MB"
        assert duckdb_limit(s).startswith("572")  # 600 MB in MiB
    large = store_of_size(tmp_path / "large.duckdb", 2_660_000_000)
    monkeypatch.setattr(database, "memory_bound", lambda: 24 * GIB)
    with Store(large, read_only=True) as s:
        assert s.settings["memory_limit"] == "4000MB"
        assert duckdb_limit(s) == "3.7 GiB"  # what DuckDB applied
        assert s.count("events") == 0  # the sparse tail is not read
    monkeypatch.setattr(database, "memory_bound", lambda: 8 * GIB)  # capped by the memory there is
    with Store(large, read_only=True) as s:
        assert s.settings["memory_limit"] == "2100MB"


def test_an_argument_or_the_environment_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    large = store_of_size(tmp_path / "large.duckdb", 2_700_000_000)
    with Store(large, read_only=True, memory_limit="1GB") as s:
        assert s.settings["memory_limit"] == "1GB"
    monkeypatch.setenv("JOURNEYLIB_MEMORY_LIMIT", "700MB")
    with Store(large, read_only=True) as s:
        assert s.settings["memory_limit"] == "700MB"
    with Store(large, read_only=True, memory_limit="900MB") as s:  # the argument before the environment
        assert s.settings["memory_limit"] == "900MB"
    monkeypatch.setenv("JOURNEYLIB_MEMORY_LIMIT", "none")  # DuckDB's own default
    assert "memory_limit" not in engine_settings(read_only=True, path=large)


def test_writable_stores_and_stores_without_a_file_are_unchanged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    large = store_of_size(tmp_path / "large.duckdb", 2_700_000_000)
    assert engine_settings(path=large) == {"memory_limit": DEFAULT_MEMORY_LIMIT}
    with Store(large) as s:
        assert s.settings["memory_limit"] == DEFAULT_MEMORY_LIMIT == "2GB"
    assert engine_settings(read_only=True) == {"memory_limit": "600MB"}
    assert engine_settings(read_only=True, path=":memory:") == {"memory_limit": "600MB"}
    assert engine_settings(read_only=True, path=tmp_path / "missing.duckdb") == {"memory_limit": "600MB"}
    monkeypatch.chdir(tmp_path)  # ":memory:" is DuckDB's in-memory database, whatever file has that name
    store_of_size(tmp_path / "real.duckdb", 2_700_000_000).rename(tmp_path / ":memory:")
    assert engine_settings(read_only=True, path=":memory:") == {"memory_limit": "600MB"}


def test_a_bounded_dashboard_kernel_keeps_its_own_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    large = store_of_size(tmp_path / "large.duckdb", 2_700_000_000)
    env = dashboard_env(large, base={}, kernel_memory="2GiB")
    assert env["JOURNEYLIB_MEMORY_LIMIT"] == "512MiB"
    monkeypatch.setenv("JOURNEYLIB_MEMORY_LIMIT", env["JOURNEYLIB_MEMORY_LIMIT"])  # as in the kernel
    with Store(env["JOURNEYLIB_DB"], read_only=True) as s:
        assert s.settings["memory_limit"] == "512MiB"


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_cgroup_v2_limit_is_the_lowest_on_the_way_up(tmp_path: Path) -> None:
    root, proc = tmp_path / "cg", tmp_path / "cgroup"
    write(proc, "0::/box/job\n")
    write(root / "box" / "job" / "memory.max", "max\n")
    assert cgroup_memory_limit(root=root, proc_cgroup=proc) is None
    write(root / "box" / "memory.max", f"{6 * GIB}\n")
    assert cgroup_memory_limit(root=root, proc_cgroup=proc) == 6 * GIB
    write(root / "box" / "job" / "memory.max", f"{3 * GIB}\n")
    assert cgroup_memory_limit(root=root, proc_cgroup=proc) == 3 * GIB


def test_cgroup_v1_limit_and_its_no_limit_value(tmp_path: Path) -> None:
    root, proc = tmp_path / "cg", tmp_path / "cgroup"
    write(proc, "9:name=systemd:/\n4:memory:/process_api/abc\n1:cpu,cpuacct:/\n0::/\n")
    write(root / "memory" / "memory.limit_in_bytes", "9223372036854771712\n")  # v1's "no limit"
    write(root / "memory" / "process_api" / "abc" / "memory.limit_in_bytes", "9223372036854771712\n")
    assert cgroup_memory_limit(root=root, proc_cgroup=proc) is None
    write(root / "memory" / "process_api" / "memory.limit_in_bytes", f"{4 * GIB}\n")
    assert cgroup_memory_limit(root=root, proc_cgroup=proc) == 4 * GIB
    assert cgroup_memory_limit(root=root, proc_cgroup=tmp_path / "no-such-file") is None


def test_the_memory_bound_takes_a_cgroup_below_the_ram(monkeypatch: pytest.MonkeyPatch) -> None:
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_DATA)
    ram = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    cap = ram if soft == resource.RLIM_INFINITY else min(ram, soft)
    monkeypatch.setattr(database, "cgroup_memory_limit", lambda: None)
    assert memory_bound() == cap
    monkeypatch.setattr(database, "cgroup_memory_limit", lambda: 2 * GIB)
    assert memory_bound() == min(cap, 2 * GIB)


def test_a_container_whose_own_cgroup_is_the_mounted_root(tmp_path: Path) -> None:
    root, proc = tmp_path / "cg", tmp_path / "cgroup"
    write(proc, "0::/docker/abc\n")  # the host's path; inside, the container's cgroup is mounted at the root
    write(root / "memory.max", f"{5 * GIB}\n")
    assert cgroup_memory_limit(root=root, proc_cgroup=proc) == 5 * GIB
    write(proc, "0::/\n")  # with a cgroup namespace
    assert cgroup_memory_limit(root=root, proc_cgroup=proc) == 5 * GIB
    write(root / "memory.max", "garbage\n")
    assert cgroup_memory_limit(root=root, proc_cgroup=proc) is None


def test_out_of_memory_without_settings_states_the_rule() -> None:
    err = translate_error(duckdb.OutOfMemoryException("Out of Memory Error: failed to allocate data of size 8.0 MiB"))
    assert "600MB, or 1.5 times the store file's size when that is more, at most 25% of the memory" in str(err)


def test_the_scale_benchmark_states_the_limit_each_store_got(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = importlib.util.spec_from_file_location("bench_scale", Path(__file__).resolve().parent.parent / "benchmarks" / "bench_scale.py")
    assert spec is not None
    assert spec.loader is not None
    harness = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "bench_scale", harness)
    spec.loader.exec_module(harness)
    monkeypatch.setattr(database, "memory_bound", lambda: 24 * GIB)
    assert harness.store_default_memory_limit(store_of_size(tmp_path / "10M.duckdb", 266_874_880)) == "600MB"
    assert harness.store_default_memory_limit(store_of_size(tmp_path / "100M.duckdb", 2_660_000_000)) == "4000MB"
    record = {"memory_limit_given": None, "memory_limit_by_size": {"10M": "600MB", "100M": "4000MB"}}
    assert harness.journeylib_limits(record) == "default, resolved per store (10M: 600MB, 100M: 4000MB)"
    assert harness.journeylib_limits({**record, "memory_limit_given": "2GB"}) == "2GB"


@pytest.mark.parametrize("read_only", [False, True])
def test_memory_limit_for_a_block_is_set_back_after_it_also_on_an_error(tmp_path: Path, read_only: bool) -> None:
    db = tmp_path / "s.duckdb"
    Store(db).close()

    def applied(store: Store) -> str:
        return str(store.query("SELECT current_setting('memory_limit') AS m")["m"].iloc[0])

    with Store(db, read_only=read_only, memory_limit="700MB") as store:
        before = applied(store)
        with store.memory_limit_for("250MB"):
            assert store.settings["memory_limit"] == "250MB"
            assert applied(store) != before
            assert memory_size_bytes(applied(store)) == pytest.approx(250 * 10**6, rel=0.05)
        assert store.settings["memory_limit"] == "700MB"
        assert applied(store) == before
        with pytest.raises(RuntimeError, match="inside"), store.memory_limit_for("300MB"):
            raise RuntimeError("inside")
        assert store.settings["memory_limit"] == "700MB"
        assert applied(store) == before
