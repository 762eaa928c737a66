"""Store options: DuckDB memory limit, threads and spill directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from journeylib.exceptions import JourneyLibError
from journeylib.store import Store
from journeylib.store.database import DEFAULT_MEMORY_LIMIT, DEFAULT_READ_MEMORY_LIMIT, engine_settings


def setting(store: Store, name: str) -> str:
    row = store.con.execute(f"SELECT current_setting('{name}')").fetchone()
    assert row is not None
    return str(row[0])


def test_default_memory_limit_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JOURNEYLIB_MEMORY_LIMIT", raising=False)
    monkeypatch.delenv("JOURNEYLIB_THREADS", raising=False)
    monkeypatch.delenv("JOURNEYLIB_TEMP_DIRECTORY", raising=False)
    assert engine_settings() == {"memory_limit": DEFAULT_MEMORY_LIMIT}
    with Store(":memory:") as s:
        assert s.settings == {"memory_limit": DEFAULT_MEMORY_LIMIT}
        assert setting(s, "memory_limit").endswith("GiB")


def test_read_only_stores_default_to_the_analysis_limit(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("JOURNEYLIB_MEMORY_LIMIT", raising=False)
    with Store(tmp_path / "a.duckdb"):
        pass
    with Store(tmp_path / "a.duckdb", read_only=True) as s:
        assert s.settings["memory_limit"] == DEFAULT_READ_MEMORY_LIMIT == "600MB"
        assert setting(s, "memory_limit").startswith("572")  # 600 MB in MiB
    monkeypatch.setenv("JOURNEYLIB_MEMORY_LIMIT", "3GB")  # the environment wins
    with Store(tmp_path / "a.duckdb", read_only=True) as s:
        assert s.settings["memory_limit"] == "3GB"


def test_options_and_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("JOURNEYLIB_MEMORY_LIMIT", "512MB")
    monkeypatch.setenv("JOURNEYLIB_THREADS", "1")
    monkeypatch.setenv("JOURNEYLIB_TEMP_DIRECTORY", str(tmp_path / "spill"))
    with Store(tmp_path / "a.duckdb") as s:
        assert s.settings == {"memory_limit": "512MB", "threads": "1", "temp_directory": str(tmp_path / "spill")}
        assert setting(s, "threads") == "1"
        assert setting(s, "temp_directory") == str(tmp_path / "spill")
    # arguments win over the environment; "none" keeps DuckDB's own default
    with Store(tmp_path / "b.duckdb", memory_limit="none", threads=2) as s:
        assert "memory_limit" not in s.settings
        assert setting(s, "threads") == "2"
    # read-only stores take the settings too (positional and keyword use unchanged)
    with Store(tmp_path / "a.duckdb", read_only=True, memory_limit="1GB") as s:
        assert s.settings["memory_limit"] == "1GB"


def test_bad_setting_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JOURNEYLIB_THREADS", raising=False)
    with pytest.raises(JourneyLibError, match="memory_limit = 'lots'"):
        Store(":memory:", memory_limit="lots")


def test_vendor_ingest_restores_insertion_order(tmp_path: Path) -> None:
    from journeylib.store.sources import ingest_vendor_file

    f = tmp_path / "export.jsonl"
    f.write_text('{"event": "a", "properties": {"time": 1, "distinct_id": "u", "$insert_id": "i1"}}\n')
    with Store(":memory:") as s:
        ingest_vendor_file(s, f, reader="mixpanel")
        assert setting(s, "preserve_insertion_order") == "True"


def test_instants_and_days_are_utc_whatever_the_machine_time_zone() -> None:
    import json
    import os
    import subprocess
    import sys

    code = (
        "import json\n"
        "from journeylib.store import Store\n"
        "s = Store(':memory:')\n"
        "r = s.query(\"SELECT TIMESTAMPTZ '2024-03-31 23:30:00+00' AS t, "
        "CAST(TIMESTAMPTZ '2024-03-31 23:30:00+00' AS DATE) AS d, date_trunc('day', TIMESTAMPTZ '2024-03-31 23:30:00+00') AS day\")\n"
        "print(json.dumps({'tz': str(r['t'].dt.tz), 't': str(r['t'][0]), 'd': str(r['d'][0].date()), 'day': str(r['day'][0])}))\n"
    )
    env = {**os.environ, "TZ": "Europe/Berlin"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True, timeout=120)
    got = json.loads(out.stdout.strip().splitlines()[-1])
    # Berlin is two hours ahead on that night: its day would already be 1 April
    assert got == {"tz": "UTC", "t": "2024-03-31 23:30:00+00:00", "d": "2024-03-31", "day": "2024-03-31 00:00:00+00:00"}
