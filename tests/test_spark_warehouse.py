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
