"""``open_journey`` opens the store an ``engine`` parameter (an engine.yaml) describes; DuckDB here, Spark in test_spark_parity."""

from __future__ import annotations

from pathlib import Path

import pytest

from journeylib.exceptions import ConfigError
from journeylib.notebook import open_journey
from journeylib.store import Store

DEFINITION = str(Path(__file__).resolve().parents[1] / "parameters" / "journeys" / "saas.yaml")


def test_an_engine_yaml_names_the_store(demo_store: Path, tmp_path: Path) -> None:
    engine = tmp_path / "engine.yaml"
    engine.write_text(f"engine: duckdb\ndb: '{demo_store}'\n")
    journey = open_journey({"engine": str(engine), "db": "", "definition": DEFINITION, "sample_n": 50})
    assert journey.store.engine == "duckdb"
    assert Path(str(journey.store.path)) == demo_store
    assert journey.store.read_only
    assert int(journey.funnel_data()["eligible"].iloc[0]) == 50
    # an empty engine parameter is today's path: the db parameter
    plain = open_journey({"engine": "", "db": str(demo_store), "definition": DEFINITION})
    assert isinstance(plain.store, Store)
    assert Path(str(plain.store.path)) == demo_store


def test_engine_parameter_errors(demo_store: Path, tmp_path: Path) -> None:
    engine = tmp_path / "engine.yaml"
    engine.write_text(f"engine: duckdb\ndb: '{demo_store}'\n")
    with pytest.raises(TypeError, match=r"give db .* or engine .*, not both"):
        open_journey({"engine": str(engine), "db": str(demo_store), "definition": DEFINITION})
    with pytest.raises(TypeError, match="engine cannot come from a URL"):
        open_journey({"engine": str(engine), "definition": DEFINITION}, url=["engine"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("engine: spark\nhost: x\n")
    with pytest.raises(ConfigError, match="unknown key 'host'"):
        open_journey({"engine": str(bad), "definition": DEFINITION})
