"""Scheduled report runs: the weekly suite, pre-flight checks, ``latest`` only on success, retention, the manifest.

Fast tests check the weekly suite against the demo suite, every pre-flight
error (nothing may be written) and :func:`prune_runs` on hand-made run
folders. The tests marked ``notebooks``/``slow`` run the fixture notebooks of
``tests/data/notebooks/`` through ``journeylib report`` three times: a good
run, a failing run (``--keep 1``: ``latest`` and the failed run both stay),
and a good run with ``--keep 1`` (only it remains).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import nbformat
import pytest

from journeylib.cli import main
from journeylib.config import SuiteConfig
from journeylib.exceptions import ConfigError
from journeylib.reports.index import latest_run, point_latest, prune_runs
from journeylib.reports.plan import plan_report
from journeylib.reports.runner import run_report
from journeylib.store import Store

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "data" / "notebooks"
FIXTURE_PARAMETERS = FIXTURES / "parameters"


def _notebooks(suite: Path) -> list[tuple[str, str]]:
    config = SuiteConfig.from_yaml(suite)
    return [(entry.notebook, entry.name) for entry in config.notebooks]


def test_weekly_suite_runs_every_notebook_of_the_demo_suite_in_order() -> None:
    weekly = _notebooks(ROOT / "parameters" / "weekly.yaml")
    demo = _notebooks(ROOT / "parameters" / "demo.yaml")
    assert weekly == demo, "parameters/weekly.yaml must list the notebooks of parameters/demo.yaml, in the same order"
    assert SuiteConfig.from_yaml(ROOT / "parameters" / "weekly.yaml").keep_runs == 12


def test_weekly_suite_passes_preflight(demo_store: Path) -> None:
    plan = plan_report(
        ROOT / "parameters" / "weekly.yaml", db=demo_store, notebooks_dir=ROOT / "notebooks", parameters_dir=ROOT / "parameters"
    )
    assert [item.notebook for item in plan.notebooks] == [n for n, _ in _notebooks(ROOT / "parameters" / "demo.yaml")]
    voice = next(item for item in plan.notebooks if item.notebook == "05_voice_of_customer")
    assert voice.parameters["attention_window_days"] == 14
    assert voice.sources["attention_window_days"] == "suite"


# -- pre-flight: every error before any notebook starts ---------------------------------------------


def _definition_notebook(folder: Path) -> Path:
    """A notebook with a journey-definition parameter (it would fail loudly if it ever ran)."""
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell(
        'db: str = ""  # store\n'
        'definition: str = "journey.yaml"  # journey definition, relative to the notebooks folder\n'
        'output_dir: str = ""  # report folder\n'
        "sample_n: int = 0  # sample of customers"
    )
    params.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell("# Definition fixture"), params, nbformat.v4.new_code_cell("raise SystemError('must not run')")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "uses_definition.ipynb"
    nbformat.write(nb, path)
    return path


@pytest.fixture
def preflight_dirs(tmp_path: Path) -> tuple[Path, Path]:
    notebooks = tmp_path / "notebooks"
    _definition_notebook(notebooks)
    definition = (ROOT / "parameters" / "journeys" / "saas.yaml").read_text(encoding="utf-8")
    (notebooks / "journey.yaml").write_text(definition, encoding="utf-8")
    parameters = tmp_path / "parameters"
    (parameters / "uses_definition").mkdir(parents=True)
    (parameters / "uses_definition" / "default.yaml").write_text("sample_n: 10\n", encoding="utf-8")
    return notebooks, parameters


@pytest.mark.parametrize(
    ("suite", "files", "match"),
    [
        pytest.param(
            {"name": "s", "notebooks": [{"notebook": "uses_definition", "parameters": {"definition": "broken.yaml"}}]},
            {"notebooks/broken.yaml": "name: x\nstagez: []\n"},
            r"notebooks\[0\] \(uses_definition\): parameter `definition` = 'broken.yaml' from suite; journey definition "
            r"file .*broken.yaml: stagez \(line 2\): unknown key 'stagez'",
            id="invalid-journey-definition",
        ),
        pytest.param(
            {"name": "s", "notebooks": [{"notebook": "uses_definition", "parameters": {"definition": "nowhere.yaml"}}]},
            {},
            r"parameter `definition` = 'nowhere.yaml' from suite \(journey definition\): journey definition 'nowhere.yaml' not found",
            id="missing-journey-definition",
        ),
        pytest.param(
            {"name": "s", "notebooks": [{"notebook": "uses_definition", "parameters": {"segmnet": "SMB"}}]},
            {},
            r"notebooks\[0\]\.parameters: 'segmnet' is not a parameter of notebook 'uses_definition'.*its parameters are: "
            r"db, definition, output_dir, sample_n",
            id="unknown-parameter",
        ),
        pytest.param(
            {"name": "s", "notebooks": [{"notebook": "uses_definition", "parameters": {"sample_n": "many"}}]},
            {},
            r"notebooks\[0\]\.parameters: parameter 'sample_n' is declared `int` but got str 'many'",
            id="wrong-type",
        ),
        pytest.param(
            {"name": "s", "notebooks": [{"notebook": "uses_definition", "parameter_set": "weekly"}]},
            {},
            r"notebooks\[0\]\.parameter_set: 'weekly' not found at .*uses_definition/weekly.yaml; available for uses_definition: default",
            id="missing-parameter-set",
        ),
        pytest.param(
            {"name": "s", "notebooks": [{"notebook": "uses_definition", "paramter_set": "default"}]},
            {},
            r"unknown key 'paramter_set'",
            id="invalid-suite",
        ),
        pytest.param(
            {"name": "s", "keep_runs": 0, "notebooks": ["uses_definition"]},
            {},
            r"keep_runs: Input should be greater than or equal to 1",
            id="invalid-keep-runs",
        ),
    ],
)
def test_preflight_errors_raise_before_any_notebook_runs(
    preflight_dirs: tuple[Path, Path], tmp_path: Path, demo_store: Path, suite: dict[str, Any], files: dict[str, str], match: str
) -> None:
    notebooks, parameters = preflight_dirs
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    out = tmp_path / "reports"
    with pytest.raises(ConfigError, match=match):
        run_report(suite, db=demo_store, out=out, notebooks_dir=notebooks, parameters_dir=parameters)
    assert not out.exists(), "a pre-flight error must not write anything"


def test_preflight_passes_the_good_definition(preflight_dirs: tuple[Path, Path], demo_store: Path) -> None:
    notebooks, parameters = preflight_dirs
    plan = plan_report({"name": "s", "notebooks": ["uses_definition"]}, db=demo_store, notebooks_dir=notebooks, parameters_dir=parameters)
    (item,) = plan.notebooks
    assert item.parameters["sample_n"] == 10  # the definition resolved from the notebooks folder, as the kernel will


def test_cli_preflight_error_exits_non_zero_and_writes_nothing(
    preflight_dirs: tuple[Path, Path], tmp_path: Path, demo_store: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)  # notebooks/ and parameters/ of the fixture
    suite = tmp_path / "parameters" / "bad.yaml"
    suite.write_text("notebooks:\n  - notebook: uses_definition\n    parameters: {definition: nowhere.yaml}\n", encoding="utf-8")
    rc = main(["report", "--suite", str(suite), "--db", str(demo_store), "--out", "reports"])
    assert rc == 1
    err = capsys.readouterr().err
    assert "journeylib report: error:" in err
    assert "bad.yaml" in err
    assert "parameter `definition` = 'nowhere.yaml'" in err
    assert not (tmp_path / "reports").exists()


# -- retention ------------------------------------------------------------------------------------------


def _fake_run(out: Path, name: str, suite: str, started: str) -> Path:
    folder = out / name
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text(json.dumps({"suite": suite, "started_at": started}), encoding="utf-8")
    return folder


def test_prune_runs_keeps_exactly_n_of_the_suite_and_never_latest_or_current(tmp_path: Path) -> None:
    runs = [_fake_run(tmp_path, f"2024010{d}-000000-weekly", "weekly", f"2024-01-0{d}T00:00:00+00:00") for d in range(1, 7)]
    other = _fake_run(tmp_path, "20240101-000000-demo", "demo", "2024-01-01T00:00:00+00:00")
    stray = tmp_path / "notes"  # not a run: no manifest
    stray.mkdir()
    point_latest(tmp_path, runs[1])  # latest on an old run (the newer ones failed)
    removed = prune_runs(tmp_path, suite="weekly", keep=3, current=runs[-1])
    # 6 runs, keep 3: latest (runs[1]) and current (runs[5]) are two of the three; runs[4] is the third.
    assert removed == [runs[0].name, runs[2].name, runs[3].name]
    left = sorted(p.name for p in tmp_path.iterdir() if (p / "manifest.json").is_file() and not p.is_symlink())
    assert left == sorted([runs[1].name, runs[4].name, runs[5].name, other.name])
    assert stray.is_dir()
    assert latest_run(tmp_path) == runs[1].name
    with pytest.raises(ValueError, match="keep must be a positive number of runs, got 0"):
        prune_runs(tmp_path, suite="weekly", keep=0, current=runs[-1])


# -- runs through the command line: latest, failure message, retention, manifest ------------------------


@pytest.fixture(scope="module")
def cli_runs(tmp_path_factory: pytest.TempPathFactory, demo_store: Path) -> dict[str, Any]:
    """Good run, failing run (--keep 1), good run (--keep 1) of the fixture notebooks through ``journeylib report``."""
    work = tmp_path_factory.mktemp("scheduled")
    (work / "notebooks").symlink_to(FIXTURES, target_is_directory=True)
    (work / "parameters").symlink_to(FIXTURE_PARAMETERS, target_is_directory=True)
    # one suite name for all three runs, so retention counts them together
    (work / "good.yaml").write_text(
        "name: nightly\nshared: {as_of: 2024-06-30}\nnotebooks:\n  - notebook: ok_report\n", encoding="utf-8"
    )
    (work / "bad.yaml").write_text(
        "name: nightly\nshared: {as_of: 2024-06-30}\nnotebooks:\n  - failing_report\n  - ok_report\n", encoding="utf-8"
    )
    common = ["--db", str(demo_store), "--out", "reports", "--timeout", "120"]
    results: dict[str, Any] = {"work": work}
    old = Path.cwd()
    os.chdir(work)
    try:
        for key, argv in (
            ("good", ["report", "--suite", "good.yaml", "--progress", *common]),
            ("bad", ["report", "--suite", "bad.yaml", "--keep", "1", *common]),
        ):
            results[key] = _run_cli(argv)
            results[f"{key}_latest"] = latest_run(work / "reports")
            results[f"{key}_runs"] = sorted(p.parent.name for p in (work / "reports").glob("*/manifest.json") if not p.parent.is_symlink())
        results["third"] = _run_cli(["report", "--suite", "good.yaml", "--keep", "1", *common])
        results["third_runs"] = sorted(p.parent.name for p in (work / "reports").glob("*/manifest.json") if not p.parent.is_symlink())
        results["third_latest"] = latest_run(work / "reports")
    finally:
        os.chdir(old)
    return results


def _run_cli(argv: list[str]) -> dict[str, Any]:
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(argv)
    return {"rc": rc, "out": out.getvalue(), "err": err.getvalue()}


@pytest.mark.notebooks
@pytest.mark.slow
def test_failed_run_keeps_latest_on_the_good_run_and_names_notebook_and_cell(cli_runs: dict[str, Any]) -> None:
    good, bad = cli_runs["good"], cli_runs["bad"]
    assert good["rc"] == 0
    (good_run,) = cli_runs["good_runs"]
    assert cli_runs["good_latest"] == good_run
    assert bad["rc"] == 1
    err = bad["err"]
    assert "journeylib report: error: 1 of 2 notebook(s) of suite 'nightly' failed" in err
    assert "failing_report" in err
    assert "cell index 3 (In [4]) `ratio = sum(counted) / 0  # deliberate failure for the runner tests`" in err
    assert "raised ZeroDivisionError: division by zero" in err
    assert f"still points at the last good run, {good_run}" in err
    assert cli_runs["bad_latest"] == good_run  # the failed run did not replace latest
    # --keep 1 with a failed run: the failed run (current) and the good run latest points at both stay
    assert len(cli_runs["bad_runs"]) == 2
    assert good_run in cli_runs["bad_runs"]


@pytest.mark.notebooks
@pytest.mark.slow
def test_retention_keeps_exactly_n_after_a_good_run(cli_runs: dict[str, Any]) -> None:
    assert cli_runs["third"]["rc"] == 0
    (only,) = cli_runs["third_runs"]
    assert cli_runs["third_latest"] == only
    manifest = json.loads((cli_runs["work"] / "reports" / only / "manifest.json").read_text())
    assert manifest["retention"]["keep_runs"] == 1
    assert sorted(manifest["retention"]["removed"]) == sorted(cli_runs["bad_runs"])


@pytest.mark.notebooks
@pytest.mark.slow
def test_progress_bar_only_when_asked(cli_runs: dict[str, Any]) -> None:
    assert "report nightly" in cli_runs["good"]["err"]  # --progress: the bar names the suite
    assert "ok_report" in cli_runs["good"]["err"]  # and the notebook with its time
    assert "report nightly:" not in cli_runs["third"]["err"]  # captured stderr, no --progress: no bar


@pytest.mark.notebooks
@pytest.mark.slow
def test_manifest_has_every_field(cli_runs: dict[str, Any], demo_store: Path) -> None:
    (run_id,) = cli_runs["third_runs"]
    m = json.loads((cli_runs["work"] / "reports" / run_id / "manifest.json").read_text())
    for key in (
        "manifest_version", "suite", "run_id", "status", "exit_status", "started_at", "finished_at", "seconds", "host",
        "data", "data_version", "sample", "retention", "timings", "latest", "versions", "platform", "execution", "notebooks",
    ):  # fmt: skip
        assert key in m, key
    assert (m["manifest_version"], m["status"], m["exit_status"], m["latest"]) == (2, "succeeded", 0, run_id)
    assert m["host"]
    assert m["started_at"] <= m["finished_at"]
    for dist in ("journeylib", "python", "duckdb", "pandas", "papermill", "nbconvert"):
        assert m["versions"][dist], dist
    (version,) = m["data_version"]
    with Store(demo_store, read_only=True) as store:
        counts = {name: store.count(name) for name in ("customers", "events", "tickets")}
        last_event = store.query("SELECT max(timestamp) AS t FROM events")["t"].iloc[0]
    for name, n in counts.items():
        assert version["tables"][name]["rows"] == n
        assert len(version["tables"][name]["content_hash"]) == 16
    assert version["tables"]["events"]["max_time"] == last_event.isoformat()
    assert version["fingerprint"] == m["data"]["fingerprint"]
    assert version["content_hash"]
    assert version["ingested_files"] > 0
    timings = m["timings"]
    assert set(timings) == {"preflight", "data_version", "notebooks", "total"}
    assert timings["total"] >= m["notebooks"][0]["seconds"] > 0
    assert timings["notebooks"] == {"ok_report": m["notebooks"][0]["seconds"]}
    (record,) = m["notebooks"]
    assert record["parameters"]["as_of"] == "2024-06-30"
    assert record["timings"]["execute"] > 0


def test_content_hash_changes_with_the_data_not_the_row_order(tmp_path: Path) -> None:
    import pandas as pd

    from journeylib.store.fingerprint import table_fingerprints

    rows = pd.DataFrame(
        {
            "customer_id": ["a", "b"],
            "signup_at": pd.to_datetime(["2024-01-01", "2024-01-02"], utc=True),
            "segment": ["SMB", "SMB"],
        }
    )
    hashes = []
    for i, frame in enumerate((rows, rows.iloc[::-1], rows.assign(segment=["SMB", "Enterprise"]))):
        with Store(tmp_path / f"s{i}.duckdb") as store:
            store.insert("customers", frame)
            fp = table_fingerprints(store)
        assert fp["tables"]["customers"]["rows"] == 2
        assert fp["tables"]["customers"]["max_time"] == "2024-01-02T00:00:00+00:00"
        hashes.append(fp["tables"]["customers"]["content_hash"])
    assert hashes[0] == hashes[1]  # order does not matter
    assert hashes[0] != hashes[2]  # one value does
