"""``spark_session``'s temporary warehouse: made only for a session it builds, removed at exit.

The builder is a fake (no JVM): what is checked is which settings reach it and what is
registered for removal, for a session built fresh and for an active one that
``getOrCreate`` reuses (whose static warehouse setting cannot change).
"""

from __future__ import annotations

import atexit
import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import journeylib.store.spark as spark


class _Builder:
    def __init__(self, active: object | None) -> None:
        self.settings: dict[str, str] = {}
        self.active = active

    def master(self, _: str) -> _Builder:
        return self

    def appName(self, _: str) -> _Builder:
        return self

    def config(self, key: str, value: str) -> _Builder:
        self.settings[key] = value
        return self

    def getOrCreate(self) -> object:
        return self.active or SimpleNamespace(settings=dict(self.settings))


def _fake_pyspark(monkeypatch: pytest.MonkeyPatch, active: object | None) -> tuple[_Builder, list[tuple[Any, ...]]]:
    builder = _Builder(active)
    session = SimpleNamespace(builder=builder, getActiveSession=lambda: active)
    monkeypatch.setattr(spark, "_require_pyspark", lambda: SimpleNamespace(SparkSession=session))
    registered: list[tuple[Any, ...]] = []
    monkeypatch.setattr(atexit, "register", lambda func, *args, **kwargs: registered.append((func, args, kwargs)))
    return builder, registered


def test_a_new_session_gets_a_temporary_warehouse_removed_at_exit(monkeypatch: pytest.MonkeyPatch) -> None:
    builder, registered = _fake_pyspark(monkeypatch, active=None)
    spark.spark_session(master="local[1]")
    warehouse = Path(builder.settings["spark.sql.warehouse.dir"])
    assert warehouse.is_dir()
    assert warehouse.name.startswith("journeylib-spark-warehouse-")
    assert registered == [(shutil.rmtree, (str(warehouse),), {"ignore_errors": True})]
    func, args, kwargs = registered[0]
    func(*args, **kwargs)
    assert not warehouse.exists()


def test_a_reused_session_gets_no_warehouse(monkeypatch: pytest.MonkeyPatch) -> None:
    active = object()
    builder, registered = _fake_pyspark(monkeypatch, active=active)
    before = set(Path(spark.tempfile.gettempdir()).glob("journeylib-spark-warehouse-*"))
    assert spark.spark_session(master="local[1]") is active
    assert "spark.sql.warehouse.dir" not in builder.settings
    assert registered == []
    assert set(Path(spark.tempfile.gettempdir()).glob("journeylib-spark-warehouse-*")) == before


def test_a_warehouse_the_caller_names_is_kept(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    builder, registered = _fake_pyspark(monkeypatch, active=None)
    spark.spark_session(master="local[1]", conf={"spark.sql.warehouse.dir": str(tmp_path)})
    assert builder.settings["spark.sql.warehouse.dir"] == str(tmp_path)
    assert registered == []
    assert builder.settings["spark.sql.session.timeZone"] == "UTC"


def _ended_pid() -> int:
    """The id of a process that has ended (and was reaped)."""
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_the_warehouse_name_carries_the_process_id(monkeypatch: pytest.MonkeyPatch) -> None:
    builder, _ = _fake_pyspark(monkeypatch, active=None)
    spark.spark_session(master="local[1]")
    warehouse = Path(builder.settings["spark.sql.warehouse.dir"])
    assert warehouse.name.startswith(f"{spark.WAREHOUSE_PREFIX}{spark.os.getpid()}-")
    shutil.rmtree(warehouse)


def test_warehouses_of_ended_processes_are_removed_and_no_other(tmp_path: Path) -> None:
    ended = tmp_path / f"{spark.WAREHOUSE_PREFIX}{_ended_pid()}-abc_12"
    (ended / "default.db").mkdir(parents=True)  # a managed table's folder inside it goes too
    running = tmp_path / f"{spark.WAREHOUSE_PREFIX}{spark.os.getpid()}-def_34"
    running.mkdir()
    unnamed = tmp_path / f"{spark.WAREHOUSE_PREFIX}161zg0n4"  # made before the id was in the name
    unnamed.mkdir()
    not_a_pid = tmp_path / f"{spark.WAREHOUSE_PREFIX}x12-ghi"
    not_a_pid.mkdir()
    a_file = tmp_path / f"{spark.WAREHOUSE_PREFIX}{_ended_pid()}-jkl"
    a_file.write_text("not a warehouse")
    other = tmp_path / "spark-warehouse"
    other.mkdir()
    assert spark.remove_ended_warehouses(tmp_path) == [ended]
    assert not ended.exists()
    assert [path.exists() for path in (running, unnamed, not_a_pid, a_file, other)] == [True] * 5
    assert spark.remove_ended_warehouses(tmp_path) == []


def test_building_a_session_removes_the_warehouses_of_ended_processes(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(spark.tempfile, "tempdir", str(tmp_path))
    ended = tmp_path / f"{spark.WAREHOUSE_PREFIX}{_ended_pid()}-abc"
    ended.mkdir()
    builder, _ = _fake_pyspark(monkeypatch, active=None)
    spark.spark_session(master="local[1]")
    assert not ended.exists()
    assert Path(builder.settings["spark.sql.warehouse.dir"]).parent == tmp_path


def test_a_kernel_stopped_after_building_a_session_leaves_no_warehouse_for_long(tmp_path: Path) -> None:
    """The folder of a process that never ran its exit handlers goes with the next session built."""
    import subprocess
    import sys

    code = (
        "import os, tempfile\n"
        f"tempfile.tempdir = {str(tmp_path)!r}\n"
        "import journeylib.store.spark as s\n"
        "print(tempfile.mkdtemp(prefix=f'{s.WAREHOUSE_PREFIX}{os.getpid()}-'), flush=True)\n"
        "os._exit(0)\n"  # no exit handlers, as a kernel killed during Spark's shutdown
    )
    made = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert Path(made).is_dir()
    assert spark.remove_ended_warehouses(tmp_path) == [Path(made)]
