"""The report runner on an engine configuration (``journeylib report --engine engine.yaml``).

Fast tests check the plan and the pre-flight checks without starting a kernel:
``engine`` injected with an empty ``db``, ``db`` and ``engine`` refused
together, the engine file validated (file, key and line named) before anything
is written, and the Spark data version recorded for the manifest. The test
marked ``spark`` share one run of the runner (a module fixture): each notebook
with its ``smoke`` parameter set, once on Spark local mode over the session
world's Parquet files and once on its DuckDB store, all in one suite so that
the two Spark kernels run side by side; they check ``00_data_health`` (the two
``summary.json`` equal) and ``03_churn_drivers`` (the feature table, the
drivers and the success indicators: ``summary.json`` and every artifact
table equal).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from journeylib.cli import main
from journeylib.exceptions import ConfigError
from journeylib.reports.engine import check_engine_file, engine_data_version
from journeylib.reports.plan import plan_report
from journeylib.reports.runner import run_report
from journeylib.store import Store

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
PARAMETERS = ROOT / "parameters"
#: One light notebook with its CI parameter set: data health reads every canonical table and the weekly event volumes.
SMOKE = {"notebook": "00_data_health", "parameter_set": "smoke"}


#: Spark local mode for a small world: one core and one shuffle partition (a query is a few tiny jobs), no adaptive
#: re-planning, and the JVM's quick compiler only (C1): on the loaded 2-core machine 00_data_health took 55 s so
#: against 115 s with local[2], two partitions and the default JVM (docs/spark.md, "The report suite on Spark").
SMALL_WORLD_CONF = (
    "{spark.sql.shuffle.partitions: '1', spark.sql.adaptive.enabled: 'false', "
    "spark.driver.extraJavaOptions: '-XX:+UseSerialGC -XX:TieredStopAtLevel=1'}"
)


def _spark_engine(path: Path, tables: dict[str, Path]) -> Path:
    path.write_text(
        f"engine: spark\nmaster: local[1]\nconf: {SMALL_WORLD_CONF}\ntables:\n"
        + "".join(f"  {name}: {{path: '{p}'}}\n" for name, p in tables.items()),
        encoding="utf-8",
    )
    return path


@pytest.fixture
def parquet_files(tmp_path: Path) -> dict[str, Path]:
    """Two small Parquet files standing for canonical tables (the plan only lists them)."""
    import pandas as pd

    folder = tmp_path / "lake"
    folder.mkdir()
    out = {}
    for name, rows in (("events", 3), ("customers", 2)):
        out[name] = folder / f"{name}.parquet"
        pd.DataFrame({"customer_id": [f"c{i}" for i in range(rows)]}).to_parquet(out[name])
    return out


def _plan(**kwargs: object) -> object:
    suite = kwargs.pop("suite", {"name": "one", "notebooks": [SMOKE]})
    return plan_report(suite, notebooks_dir=NOTEBOOKS, parameters_dir=PARAMETERS, **kwargs)  # type: ignore[arg-type]


# -- the plan -----------------------------------------------------------------------------------
def test_every_notebook_gets_the_engine_and_an_empty_db(tmp_path: Path, parquet_files: dict[str, Path]) -> None:
    engine = _spark_engine(tmp_path / "engine.yaml", parquet_files)
    plan = plan_report("demo", engine=engine, notebooks_dir=NOTEBOOKS, parameters_dir=PARAMETERS)
    assert len(plan.notebooks) > 1
    for item in plan.notebooks:
        assert item.parameters["engine"] == str(engine.resolve())
        assert item.parameters["db"] == ""
        assert item.sources["engine"] == "override"
        assert item.sources["db"] == "runner"
        assert item.db is None  # no DuckDB file: the kernel gets no JOURNEYLIB_DB
        assert item.engine == engine.resolve()
        assert item.engine_kind == "spark"
        assert item.data_key == engine.resolve()


def test_an_engine_from_the_suite_and_a_relative_path(
    tmp_path: Path, parquet_files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    _spark_engine(tmp_path / "engine.yaml", parquet_files)
    monkeypatch.chdir(tmp_path)  # relative to the caller's working directory, not the kernel's (notebooks/)
    plan = _plan(suite={"name": "one", "shared": {"engine": "engine.yaml"}, "notebooks": [SMOKE]})
    (item,) = plan.notebooks  # type: ignore[attr-defined]
    assert item.parameters["engine"] == str(tmp_path.resolve() / "engine.yaml")
    assert item.sources["engine"] == "shared"


def test_an_engine_yaml_naming_a_duckdb_store_reads_that_store(tmp_path: Path) -> None:
    store = tmp_path / "cs.duckdb"
    store.write_bytes(b"")  # the plan only checks that it exists
    engine = tmp_path / "engine.yaml"
    engine.write_text(f"engine: duckdb\ndb: '{store}'\n", encoding="utf-8")
    (item,) = _plan(engine=engine).notebooks  # type: ignore[attr-defined]
    assert item.db == store.resolve()  # given to the kernel as JOURNEYLIB_DB and fingerprinted as a DuckDB store
    assert item.engine_kind == "duckdb"
    assert item.parameters["db"] == ""
    assert item.parameters["engine"] == str(engine.resolve())


# -- refused before anything runs -----------------------------------------------------------------
def test_db_and_engine_together_are_refused(tmp_path: Path, parquet_files: dict[str, Path], demo_store: Path) -> None:
    engine = _spark_engine(tmp_path / "engine.yaml", parquet_files)
    out = tmp_path / "reports"
    with pytest.raises(ConfigError, match=r"db '.*' and engine '.*' are both given; give one"):
        run_report({"name": "one", "notebooks": [SMOKE]}, db=demo_store, engine=engine, out=out, notebooks_dir=NOTEBOOKS, parameters_dir=PARAMETERS)
    assert not out.exists()
    # one from the suite, one from the command line: named with where each came from
    suite = {"name": "one", "shared": {"engine": str(engine)}, "notebooks": [SMOKE]}
    with pytest.raises(ConfigError, match=r"notebooks\[0\] \(00_data_health\): db '.*' \(from override\) and engine '.*' \(from shared\)"):
        _plan(suite=suite, db=demo_store)
    assert main(["report", "--db", str(demo_store), "--engine", str(engine), "--out", str(out)]) == 1
    assert not out.exists()


def test_the_engine_file_is_checked_with_file_key_and_line(tmp_path: Path, parquet_files: dict[str, Path]) -> None:
    bad = tmp_path / "engine.yaml"
    bad.write_text(
        "engine: spark\n"
        "tables:\n"
        "  events: {path: lake/events.parquet}\n"  # relative: would mean notebooks/lake/... in the kernel
        f"  customers: {{path: '{tmp_path / 'nowhere.parquet'}'}}\n"
        f"  customer: {{path: '{parquet_files['customers']}'}}\n",
        encoding="utf-8",
    )
    out = tmp_path / "reports"
    with pytest.raises(ConfigError) as err:
        run_report({"name": "one", "notebooks": [SMOKE]}, engine=bad, out=out, notebooks_dir=NOTEBOOKS, parameters_dir=PARAMETERS)
    text = str(err.value)
    assert f"engine configuration {bad}, line 3: tables.events.path = 'lake/events.parquet' is a relative path" in text
    assert f"would name {NOTEBOOKS / 'lake' / 'events.parquet'}" in text
    assert f"line 4: tables.customers.path = '{tmp_path / 'nowhere.parquet'}': no such file or folder" in text
    assert "line 5: tables.customer: not a canonical table; allowed are " in text
    assert not out.exists()
    bad.write_text("engine: spark\nmaster: local[2]\ndb: x.duckdb\nwarehouse: y\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"engine configuration {bad}: .*warehouse"):
        _plan(engine=bad)
    with pytest.raises(ConfigError, match=r"engine '.*missing.yaml' \(from override\): no such file"):
        _plan(engine=tmp_path / "missing.yaml")


def test_an_engine_for_a_notebook_without_the_parameter_is_refused(tmp_path: Path, parquet_files: dict[str, Path]) -> None:
    import nbformat

    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    nb.cells = [nbformat.v4.new_code_cell('db: str = ""  # store', metadata={"tags": ["parameters"]})]
    (tmp_path / "nb").mkdir()
    nbformat.write(nb, tmp_path / "nb" / "old.ipynb")
    engine = _spark_engine(tmp_path / "engine.yaml", parquet_files)
    with pytest.raises(ConfigError, match=r"declares no `engine` parameter, so it would read the DuckDB store instead"):
        plan_report(
            {"name": "x", "notebooks": [{"notebook": "old", "parameter_set": None}]},
            engine=engine, notebooks_dir=tmp_path / "nb", parameters_dir=tmp_path,
        )


# -- the data version of a Spark engine -----------------------------------------------------------
def test_spark_data_version_lists_local_files_and_says_what_it_does_not_cover(
    tmp_path: Path, parquet_files: dict[str, Path]
) -> None:
    engine = _spark_engine(tmp_path / "engine.yaml", parquet_files)
    config, problems = check_engine_file(engine, notebooks_dir=NOTEBOOKS)
    assert config is not None
    assert problems == []
    first = engine_data_version(engine)
    assert first["engine"] == "spark"
    assert first["tables"]["events"]["basis"] == "files"
    assert first["tables"]["events"]["rows"] == 3  # from the Parquet footer
    assert first["tables"]["customers"]["rows"] == 2
    assert first["tables"]["tickets"] == {"source": "empty", "basis": "location"}
    assert first["note"] is None
    assert engine_data_version(engine)["fingerprint"] == first["fingerprint"]  # stable
    # the data changes: the fingerprint changes
    import pandas as pd

    time.sleep(0.01)
    pd.DataFrame({"customer_id": ["c0", "c1", "c2", "c3"]}).to_parquet(parquet_files["events"])
    second = engine_data_version(engine)
    assert second["tables"]["events"]["rows"] == 4
    assert second["fingerprint"] != first["fingerprint"]
    # a remote location and a catalog table cannot be listed without Spark: the note says so, the fingerprint is the locations
    engine.write_text(
        "engine: spark\nconf: {spark.hadoop.fs.s3a.secret.key: hush}\ntables:\n"
        "  events: {path: 's3a://lake/events', format: delta}\n  customers: {table: main.cs.customers}\n",
        encoding="utf-8",
    )
    remote = engine_data_version(engine)
    assert remote["note"] is not None
    assert "customers (table main.cs.customers), events (delta at s3a://lake/events)" in remote["note"]
    assert remote["conf_keys"] == ["spark.hadoop.fs.s3a.secret.key"]
    assert "hush" not in json.dumps(remote)  # setting values may be credentials


def test_a_share_sample_needs_the_number_of_customers(tmp_path: Path, parquet_files: dict[str, Path]) -> None:
    engine = tmp_path / "engine.yaml"
    engine.write_text("engine: spark\ntables:\n  customers: {table: main.cs.customers}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"--sample 0.1 \(a share of the customers\) needs the number of customers"):
        run_report({"name": "one", "notebooks": [SMOKE]}, engine=engine, sample=0.1, out=tmp_path / "r", notebooks_dir=NOTEBOOKS, parameters_dir=PARAMETERS)
    assert not (tmp_path / "r").exists()


# -- notebooks on Spark local mode, through the runner ---------------------------------------
#: The notebooks run on both engines, each with its ``smoke`` parameter set, and the output name prefix of each.
ON_BOTH = {"health": SMOKE, "drivers": {"notebook": "03_churn_drivers", "parameter_set": "smoke"}}


@pytest.fixture(scope="module")
def on_both_engines(demo_store: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    """Run every notebook of :data:`ON_BOTH` through the runner on Spark (the store exported as Parquet) and on DuckDB.

    One suite, so that the two Spark kernels run side by side (the runner's jobs): the Spark entries first, each
    output named ``<prefix>_spark`` or ``<prefix>_duckdb``. Returns the run folder, the engine file and the
    manifest; asserts the run succeeded.
    """
    pytest.importorskip("pyspark", reason="the spark extra is not installed (pip install -e '.[spark]')")
    from journeylib.store.spark import write_parquet_tables

    tmp_path = tmp_path_factory.mktemp("on-both-engines")
    with Store(demo_store, read_only=True) as duck:
        tables = write_parquet_tables(duck, tmp_path / "parquet")
    engine = _spark_engine(tmp_path / "engine.yaml", tables)
    suite = {
        "name": "engines",
        "notebooks": [
            *({**entry, "output_name": f"{prefix}_spark", "parameters": {"engine": str(engine)}} for prefix, entry in ON_BOTH.items()),
            *({**entry, "output_name": f"{prefix}_duckdb", "parameters": {"db": str(demo_store)}} for prefix, entry in ON_BOTH.items()),
        ],
    }
    started = time.perf_counter()
    run = run_report(suite, out=tmp_path / "reports", notebooks_dir=NOTEBOOKS, parameters_dir=PARAMETERS, execution_timeout=600)
    manifest = json.loads((run / "manifest.json").read_text(encoding="utf-8"))
    seconds = {nb["name"]: nb["seconds"] for nb in manifest["notebooks"]}
    print(f"{seconds}, run {time.perf_counter() - started:.1f} s")
    assert manifest["status"] == "succeeded"
    return run, engine, manifest


def _pair(manifest: dict, prefix: str) -> tuple[dict, dict]:
    """The manifest entries of the notebook run on Spark and on DuckDB under output name *prefix*."""
    by_name = {nb["name"]: nb for nb in manifest["notebooks"]}
    return by_name[f"{prefix}_spark"], by_name[f"{prefix}_duckdb"]


@pytest.mark.spark
@pytest.mark.slow
@pytest.mark.notebooks
def test_data_health_on_spark_gives_the_duckdb_summary(demo_store: Path, on_both_engines: tuple[Path, Path, dict]) -> None:
    run, engine, manifest = on_both_engines
    with Store(demo_store, read_only=True) as duck:
        customers = duck.count("customers")
        events = duck.count("events")
    spark_nb, duck_nb = _pair(manifest, "health")
    assert spark_nb["engine"] == str(engine.resolve())
    assert spark_nb["db"] is None
    assert spark_nb["parameters"]["db"] == ""
    assert duck_nb["db"] == str(demo_store.resolve())
    assert manifest["data"] == {"db": None, "fingerprint": spark_nb["fingerprint"], "engine": "spark", "engine_file": str(engine.resolve())}
    spark_version, duck_version = manifest["data_version"]
    assert spark_version["engine"] == "spark"
    assert spark_version["note"] is None
    assert spark_version["tables"]["events"]["rows"] == events
    assert spark_version["tables"]["customers"]["rows"] == customers
    assert duck_version["db"] == str(demo_store.resolve())
    summary_spark = json.loads((run / "health_spark" / "artifacts" / "summary.json").read_text(encoding="utf-8"))
    summary_duck = json.loads((run / "health_duckdb" / "artifacts" / "summary.json").read_text(encoding="utf-8"))
    assert summary_spark["customers"] == 50  # the smoke set's seeded sample, drawn by the same md5 order
    assert summary_spark["table_rows"]["events"] == events
    assert summary_spark == summary_duck
    page = (run / "health_spark" / "health_spark.html").read_text(encoding="utf-8")
    assert "engine.yaml (fingerprint" in page
    assert os.fspath(engine) not in page  # machine paths stay in the manifest


@pytest.mark.spark
@pytest.mark.slow
@pytest.mark.notebooks
def test_churn_drivers_on_spark_give_the_duckdb_tables(on_both_engines: tuple[Path, Path, dict]) -> None:
    import pandas as pd

    run = on_both_engines[0]
    spark_dir, duck_dir = run / "drivers_spark" / "artifacts", run / "drivers_duckdb" / "artifacts"
    summary_spark = json.loads((spark_dir / "summary.json").read_text(encoding="utf-8"))
    assert summary_spark == json.loads((duck_dir / "summary.json").read_text(encoding="utf-8"))
    assert summary_spark["population"] > 0
    assert summary_spark["candidates"] > 0  # the feature table ran (it failed on Spark before fresh column identities)
    assert summary_spark["sample"]["n"] == 150  # the smoke set's seeded sample, drawn by the same md5 order
    tables = sorted(p.name for p in spark_dir.glob("*.parquet"))
    assert tables == sorted(p.name for p in duck_dir.glob("*.parquet"))
    assert "drivers.parquet" in tables
    for name in tables:
        spark_table, duck_table = pd.read_parquet(spark_dir / name), pd.read_parquet(duck_dir / name)
        pd.testing.assert_frame_equal(spark_table, duck_table, check_exact=True, obj=name)
