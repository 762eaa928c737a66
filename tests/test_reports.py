"""Tests of the report runner (journeylib.reports: plan, execute, html, index, runner), artifacts and the dashboard command line.

Fast tests check the suite configuration, parameter validation and
precedence, artifacts and the Voila argv without starting a kernel. The tests
marked ``notebooks``/``slow`` run the fixture suites of
``tests/data/notebooks/`` with Papermill: one that succeeds and one whose
first notebook fails.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest

from journeylib.config import SuiteConfig
from journeylib.exceptions import ConfigError, JourneyLibError
from journeylib.reports.artifacts import read_artifacts, to_jsonable, write_artifacts
from journeylib.reports.dashboard import SECURITY_CONFIG_DIR, DashboardError, dashboard_command, wait_until_ready
from journeylib.reports.html import write_report_html
from journeylib.reports.index import point_latest
from journeylib.reports.plan import NotebookParameterWarning, ReportPlan, plan_report
from journeylib.reports.runner import ReportError, run_report
from journeylib.store import Store

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "data" / "notebooks"
FIXTURE_PARAMETERS = FIXTURES / "parameters"
EXECUTION_TIMEOUT = 120


# -- a small store ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def store_db(demo_store: Path) -> Path:
    """The session's synthetic store (root conftest.py)."""
    return Path(demo_store)


def _plan(suite: object, store_db: Path, **kwargs: object) -> ReportPlan:
    return plan_report(
        suite,  # type: ignore[arg-type]
        db=store_db,
        notebooks_dir=FIXTURES,
        parameters_dir=kwargs.pop("parameters_dir", FIXTURE_PARAMETERS),  # type: ignore[arg-type]
        **kwargs,  # type: ignore[arg-type]
    )


# -- artifacts ----------------------------------------------------------------------------------


def test_write_artifacts_round_trip(tmp_path: Path) -> None:
    frame = pd.DataFrame({"segment": ["SMB", "Enterprise"], "customers": [3, 1]})
    summary = {
        "customers": np.int64(4),  # numpy scalar -> 4
        "share": np.float64("nan"),  # NaN -> null
        "as_of": pd.Timestamp("2024-06-30", tz="UTC"),  # -> ISO string
        "first": dt.date(2024, 1, 1),
        "missing": pd.NaT,
        "segments": {"SMB", "Enterprise"},  # set -> sorted list
    }
    paths = write_artifacts(tmp_path, tables={"by_segment": frame}, summary=summary)
    assert [p.name for p in paths] == ["by_segment.parquet", "summary.json"]
    raw = json.loads((tmp_path / "artifacts" / "summary.json").read_text())
    assert raw == {
        "customers": 4,
        "share": None,
        "as_of": "2024-06-30T00:00:00+00:00",
        "first": "2024-01-01",
        "missing": None,
        "segments": ["Enterprise", "SMB"],
    }
    art = read_artifacts(tmp_path)
    pd.testing.assert_frame_equal(art.tables["by_segment"], frame)
    assert art.summary == raw


def test_write_artifacts_is_a_no_op_without_output_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert write_artifacts("", tables={"t": pd.DataFrame({"x": [1]})}, summary={"n": 1}) == []
    assert write_artifacts(None, tables={}, summary={}) == []
    assert list(tmp_path.iterdir()) == []


def test_write_artifacts_adds_tables_and_updates_summary(tmp_path: Path) -> None:
    write_artifacts(tmp_path, tables={"a": pd.DataFrame({"x": [1]})}, summary={"n": 1, "kept": True})
    write_artifacts(tmp_path, tables={"b": pd.DataFrame({"y": [2]})}, summary={"n": 2})
    art = read_artifacts(tmp_path)
    assert sorted(art.tables) == ["a", "b"]
    assert art.summary == {"n": 2, "kept": True}


@pytest.mark.parametrize(
    ("tables", "summary", "error", "match"),
    [
        ({"../evil": pd.DataFrame({"x": [1]})}, {}, ValueError, r"'\.\./evil' is not a valid file name"),
        ({"t": [1, 2]}, {}, TypeError, r"'t' \(list\)"),
        ({"t": pd.DataFrame({0: [1]})}, {}, ValueError, "non-string column names"),
        ({}, {"frame": pd.DataFrame({"x": [1]})}, TypeError, r"summary\['frame'\].*tables="),
        ({}, {"nested": {"obj": object()}}, TypeError, r"summary\['nested'\]\['obj'\]: cannot store"),
    ],
)
def test_write_artifacts_rejects_bad_input_and_writes_nothing(
    tmp_path: Path, tables: dict, summary: dict, error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        write_artifacts(tmp_path, tables=tables, summary=summary)
    assert not (tmp_path / "artifacts").exists()


def test_write_artifacts_names_the_table_parquet_cannot_hold(tmp_path: Path) -> None:
    mixed = pd.DataFrame({"x": [1, "one"]})  # object column of int and str
    with pytest.raises(JourneyLibError, match=r"table 'mixed' as Parquet.*astype\(str\)"):
        write_artifacts(tmp_path, tables={"mixed": mixed}, summary={})


def test_read_artifacts_explains_a_wrong_folder(tmp_path: Path) -> None:
    with pytest.raises(JourneyLibError, match=r"no artifacts folder at .*output_dir"):
        read_artifacts(tmp_path)
    write_artifacts(tmp_path, tables={"a": pd.DataFrame({"x": [1]})}, summary={})
    with pytest.raises(JourneyLibError, match=r"no table\(s\) \['b'\].*available: \['a'\]"):
        read_artifacts(tmp_path, tables=["b"])


def test_to_jsonable_handles_infinities_and_numpy_arrays() -> None:
    assert to_jsonable({"a": np.array([1.5, np.inf]), "b": float("-inf")}) == {"a": [1.5, None], "b": None}


# -- suite configuration ------------------------------------------------------------------------


def test_suite_from_yaml_keeps_dates_as_strings_and_names_suite_after_file(tmp_path: Path) -> None:
    path = tmp_path / "weekly.yaml"
    path.write_text("shared:\n  as_of: 2024-06-30\nnotebooks:\n  - ok_report\n")
    suite = SuiteConfig.from_yaml(path)
    assert suite.name == "weekly"
    assert suite.shared == {"as_of": "2024-06-30"}
    assert suite.notebooks[0].notebook == "ok_report"
    assert suite.notebooks[0].parameter_set == "default"


def test_suite_from_dict_turns_dates_into_iso_strings() -> None:
    suite = SuiteConfig.from_yaml({"name": "s", "shared": {"as_of": dt.date(2024, 6, 30)}, "notebooks": ["x"]})
    assert suite.shared["as_of"] == "2024-06-30"


def test_unknown_suite_key_names_key_place_and_allowed_keys(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("name: bad\nnotebook: ok_report\nnotebooks:\n  - notebook: ok_report\n    paramter_set: smb\n")
    with pytest.raises(ConfigError) as info:
        SuiteConfig.from_yaml(path)
    err = info.value
    assert err.source == str(path)
    # Both problems come together, each with its place and the allowed keys.
    assert len(err.problems) == 2
    assert "notebook (line 2): unknown key 'notebook'; allowed keys here: name, description, shared, notebooks" in str(
        err
    )
    assert (
        "notebooks[0].paramter_set (line 5): unknown key 'paramter_set'; allowed keys here: notebook, parameter_set, "
        "parameters, output_name" in str(err)
    )


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({"name": "s", "notebooks": []}, "notebooks: the list is empty"),
        ({"name": "s"}, "notebooks: required key is missing"),
        (
            {"name": "bad name", "notebooks": ["x"]},
            r"name: not a valid name; use letters, digits, '_', '-' or '\.'.*; found 'bad name'",
        ),
        ({"name": "s", "notebooks": ["x", "x"]}, "give one of them a distinct `output_name`"),
        ({"name": "s", "shared": {"as_of": float("nan")}, "notebooks": ["x"]}, r"shared: as_of: nan is not allowed"),
    ],
)
def test_invalid_suites_raise_config_error(data: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        SuiteConfig.from_yaml(data)


def test_missing_suite_lists_available_suites(tmp_path: Path, store_db: Path) -> None:
    with pytest.raises(ConfigError, match=r"suite 'nope' not found.*available in .*: failing, fixture"):
        _plan("nope", store_db)


def test_unknown_notebook_parameter_is_a_config_error(store_db: Path) -> None:
    suite = {"name": "s", "notebooks": [{"notebook": "ok_report", "parameters": {"segmnet": "SMB"}}]}
    with pytest.raises(ConfigError) as info:
        _plan(suite, store_db)
    msg = str(info.value)
    assert "notebooks[0].parameters: 'segmnet' is not a parameter of notebook 'ok_report'" in msg
    assert "its parameters are: db, as_of, segment, output_dir, sample_n" in msg


def test_unknown_parameter_in_a_parameter_set_names_the_file(tmp_path: Path, store_db: Path) -> None:
    (tmp_path / "ok_report").mkdir()
    bad_set = tmp_path / "ok_report" / "default.yaml"
    bad_set.write_text("segment: SMB\nsample: 5\n")
    suite = {"name": "s", "shared": {"colour": "red"}, "notebooks": ["ok_report", "missing_nb"]}
    with pytest.raises(ConfigError) as info:
        _plan(suite, store_db, parameters_dir=tmp_path)
    problems = info.value.problems
    assert any(f"{bad_set}: 'sample' is not a parameter of notebook 'ok_report'" in p for p in problems)
    assert any("notebook 'missing_nb' not found" in p and "available in" in p and "ok_report" in p for p in problems)
    assert any("notebooks[1].parameter_set: 'default' not found" in p for p in problems)


def test_shared_and_override_keys_must_belong_to_some_notebook(store_db: Path) -> None:
    suite = {"name": "s", "shared": {"colour": "red"}, "notebooks": ["ok_report"]}
    with pytest.raises(ConfigError) as info:
        _plan(suite, store_db, overrides={"size": 3})
    assert any(p.startswith("shared.colour: not a parameter of any notebook") for p in info.value.problems)
    assert any(p.startswith("overrides.size: not a parameter of any notebook") for p in info.value.problems)


def test_shared_parameters_go_only_to_notebooks_that_declare_them(store_db: Path) -> None:
    suite = {
        "name": "s",
        "shared": {"as_of": "2024-01-31", "threshold": 2},
        "notebooks": ["ok_report", "failing_report"],
    }
    ok, failing = _plan(suite, store_db).notebooks
    assert ok.parameters["as_of"] == "2024-01-31"
    assert "threshold" not in ok.parameters
    assert failing.parameters["threshold"] == 5  # its default parameter set wins over shared
    assert "as_of" not in failing.parameters


@pytest.mark.parametrize(
    ("layers", "expected", "source"),
    [
        ({}, None, None),  # the notebook's own default stays: nothing injected
        ({"shared"}, "shared", "shared"),
        ({"shared", "set"}, "set", "set:custom"),
        ({"shared", "set", "entry"}, "entry", "suite"),
        ({"shared", "set", "entry", "override"}, "override", "override"),
        ({"shared", "override"}, "override", "override"),
    ],
)
def test_parameter_precedence(
    tmp_path: Path, store_db: Path, layers: set[str], expected: str | None, source: str | None
) -> None:
    # notebook default < shared < parameter set < suite entry < command-line override
    (tmp_path / "ok_report").mkdir()
    (tmp_path / "ok_report" / "custom.yaml").write_text("segment: set\n" if "set" in layers else "{}\n")
    entry: dict = {"notebook": "ok_report", "parameter_set": "custom"}
    if "entry" in layers:
        entry["parameters"] = {"segment": "entry"}
    suite = {"name": "s", "shared": {"segment": "shared"} if "shared" in layers else {}, "notebooks": [entry]}
    overrides = {"segment": "override"} if "override" in layers else None
    (item,) = _plan(suite, store_db, parameters_dir=tmp_path, overrides=overrides).notebooks
    assert item.parameters.get("segment") == expected
    assert item.sources.get("segment") == source
    assert item.declared["segment"]["default"] == '"all"'


def test_overrides_are_converted_to_the_declared_type(store_db: Path) -> None:
    (item,) = _plan("fixture", store_db, overrides={"sample_n": "50"}).notebooks
    assert item.parameters["sample_n"] == 50
    with pytest.raises(ConfigError, match=r"'sample_n' is declared `int` but got str 'many'"):
        _plan("fixture", store_db, overrides={"sample_n": "many"})


def test_parameter_set_values_are_type_checked(tmp_path: Path, store_db: Path) -> None:
    (tmp_path / "ok_report").mkdir()
    (tmp_path / "ok_report" / "default.yaml").write_text("sample_n: lots\nsegment: 3\n")
    with pytest.raises(ConfigError) as info:
        _plan({"name": "s", "notebooks": ["ok_report"]}, store_db, parameters_dir=tmp_path)
    assert len(info.value.problems) == 2
    assert "'segment' is declared `str` but got int 3" in str(info.value)


def test_db_and_output_dir_are_the_runners(tmp_path: Path, store_db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(store_db.parent)
    (item,) = plan_report(
        "fixture", db=store_db.name, notebooks_dir=FIXTURES, parameters_dir=FIXTURE_PARAMETERS
    ).notebooks
    assert item.db == store_db.resolve()  # relative to the caller's folder, injected absolute
    assert item.parameters["db"] == str(store_db.resolve())
    assert item.sources["db"] == "override"
    assert item.writes_artifacts
    assert "output_dir" not in item.parameters

    monkeypatch.delenv("JOURNEYLIB_DB", raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(JourneyLibError, match="no journeylib store found"):
        plan_report("fixture", notebooks_dir=FIXTURES, parameters_dir=FIXTURE_PARAMETERS)
    monkeypatch.setenv("JOURNEYLIB_DB", str(store_db))
    (item,) = plan_report("fixture", notebooks_dir=FIXTURES, parameters_dir=FIXTURE_PARAMETERS).notebooks
    assert item.sources["db"] == "runner"


def test_parameter_line_papermill_cannot_parse_is_still_a_parameter(tmp_path: Path, store_db: Path) -> None:
    cell = nbformat.v4.new_code_cell('db: str = ""  # empty = JOURNEYLIB_DB\nn: int = 3  # how many')
    cell.metadata["tags"] = ["parameters"]
    nbformat.write(nbformat.v4.new_notebook(cells=[cell]), tmp_path / "eq.ipynb")
    with pytest.warns(NotebookParameterWarning, match=r"line 1 .*parameter 'db'.*remove the extra '='"):
        plan = plan_report(
            {"name": "s", "notebooks": [{"notebook": "eq", "parameter_set": None}]},
            db=store_db,
            notebooks_dir=tmp_path,
            parameters_dir=tmp_path,
        )
    assert plan.notebooks[0].declared["db"]["inferred_type_name"] == "str"
    assert plan.notebooks[0].parameters["db"] == str(store_db)


def test_run_report_rejects_bad_run_ids_and_existing_folders(tmp_path: Path, store_db: Path) -> None:
    kwargs = {"db": store_db, "out": tmp_path, "notebooks_dir": FIXTURES, "parameters_dir": FIXTURE_PARAMETERS}
    with pytest.raises(ValueError, match=r"run_id '\.\./x' is not a valid folder name"):
        run_report("fixture", run_id="../x", **kwargs)
    (tmp_path / "taken").mkdir()
    with pytest.raises(JourneyLibError, match="taken already exists"):
        run_report("fixture", run_id="taken", **kwargs)
    with pytest.raises(ValueError, match="execution_timeout must be a positive"):
        run_report("fixture", execution_timeout=0, **kwargs)


def test_latest_falls_back_to_a_redirect_page_and_back_to_a_link(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = tmp_path / "20240101-000000-a", tmp_path / "20240102-000000-a"
    first.mkdir()
    second.mkdir()

    def no_symlinks(*args: object, **kwargs: object) -> None:
        raise OSError("symlinks not supported here")

    with monkeypatch.context() as m:
        m.setattr(os, "symlink", no_symlinks)
        latest = point_latest(tmp_path, first)
    assert latest is not None
    assert latest.is_dir()
    assert not latest.is_symlink()
    assert 'url=../20240101-000000-a/index.html"' in (latest / "index.html").read_text()
    latest = point_latest(tmp_path, second)
    assert latest is not None
    assert latest.is_symlink()
    assert latest.resolve() == second.resolve()


def test_write_report_html_inlines_svg_with_distinct_ids(tmp_path: Path) -> None:
    svg = '<svg xmlns="http://www.w3.org/2000/svg"><defs><clipPath id="clip1"></clipPath></defs><g clip-path="url(#clip1)"><text>T{}</text></g></svg>'
    cells = [
        nbformat.v4.new_code_cell(
            "a", outputs=[nbformat.v4.new_output("display_data", {"image/svg+xml": svg.format(1)})]
        ),
        nbformat.v4.new_code_cell(
            "b", outputs=[nbformat.v4.new_output("display_data", {"image/svg+xml": svg.format(2)})]
        ),
        nbformat.v4.new_code_cell("no output"),
        nbformat.v4.new_code_cell(
            "live", metadata={"tags": ["dashboard-only"]}, outputs=[nbformat.v4.new_output("stream", text="LIVE")]
        ),
    ]
    nb_path = tmp_path / "two.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=cells), nb_path)
    html = write_report_html(
        nb_path, header={"title": "Two", "facts": {"Run": "r1"}, "parameters": {"n": "1"}}
    ).read_text()
    assert html.count("<svg") == 2
    assert "<img" not in html
    assert 'id="jl1-clip1"' in html
    assert 'id="jl2-clip1"' in html
    assert "url(#jl2-clip1)" in html
    assert "LIVE" not in html
    assert "no output" not in html
    assert "<script src" not in html
    assert "r1" in html


# -- dashboard command ---------------------------------------------------------------------------


def test_dashboard_command_serves_loopback_only_without_sources(store_db: Path) -> None:
    argv = dashboard_command(FIXTURES, port=9123, db=store_db, notebook="ok_report", execution_timeout=60)
    assert argv[0] == sys.executable
    voila = argv.index("-m")
    assert argv[voila + 1] == "journeylib.reports.voila_app"  # Voila with journeylib's landing page (ADR 0012)
    assert argv[voila + 2] == str(FIXTURES / "ok_report.ipynb")
    for flag in (
        "--no-browser",
        "--port=9123",
        "--Voila.ip=127.0.0.1",
        "--Voila.port_retries=0",
        "--strip_sources=True",
        "--VoilaExecutor.timeout=60",
        "--VoilaConfiguration.show_tracebacks=False",
        # journeylib's security settings first: Voila gives the first folder the highest priority.
        f"--Voila.config_file_paths=[{str(SECURITY_CONFIG_DIR)!r}, {str(FIXTURES)!r}]",
    ):
        assert flag in argv
    allow = next(a for a in argv if a.startswith("--VoilaConfiguration.file_allowlist="))
    assert "png" in allow
    assert "duckdb" not in allow
    security = json.loads((SECURITY_CONFIG_DIR / "voila.json").read_text())
    csp = security["Voila"]["tornado_settings"]["headers"]["Content-Security-Policy"]
    assert "default-src 'self' data: blob:;" in csp
    assert "http" not in csp.replace("'self'", "")  # no other host may serve anything
    assert "--no-browser" not in dashboard_command(FIXTURES, open_browser=True)
    assert str(FIXTURES) in dashboard_command(FIXTURES)  # the folder: one page per notebook


def test_dashboard_command_explains_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(DashboardError, match=r"notebook 'nope' not found.*available in .*ok_report"):
        dashboard_command(FIXTURES, notebook="nope")
    with pytest.raises(DashboardError, match=r"store .*missing\.duckdb does not exist"):
        dashboard_command(FIXTURES, db=tmp_path / "missing.duckdb")
    with pytest.raises(ValueError, match="port must be an integer between 1 and 65535"):
        dashboard_command(FIXTURES, port=70000)


def test_wait_until_ready_stops_when_the_server_exits() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    proc.wait(timeout=30)
    with pytest.raises(DashboardError, match="exited with code 3"):
        wait_until_ready(1, 5, process=proc)


# -- running suites (kernels) ---------------------------------------------------------------------


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.external: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("href", "src") and value:
                if tag == "a" and name == "href" and not re.match(r"^[a-z]+:", value) and not value.startswith("#"):
                    self.hrefs.append(value)
                if tag in ("script", "link", "img", "iframe") and re.match(r"^(https?:)?//", value):
                    self.external.append(value)


def _links(path: Path) -> _Links:
    parser = _Links()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


@pytest.fixture(scope="module")
def reports_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("reports")


@pytest.fixture(scope="module")
def fixture_run(reports_out: Path, store_db: Path) -> Path:
    return run_report(
        "fixture",
        db=store_db,
        out=reports_out,
        notebooks_dir=FIXTURES,
        parameters_dir=FIXTURE_PARAMETERS,
        execution_timeout=EXECUTION_TIMEOUT,
    )


@pytest.fixture(scope="module")
def failing_run(fixture_run: Path, reports_out: Path, store_db: Path) -> ReportError:
    with pytest.raises(ReportError) as info:
        run_report(
            FIXTURE_PARAMETERS / "failing.yaml",
            db=store_db,
            out=reports_out,
            notebooks_dir=FIXTURES,
            parameters_dir=FIXTURE_PARAMETERS,
            execution_timeout=EXECUTION_TIMEOUT,
        )
    return info.value


@pytest.mark.notebooks
@pytest.mark.slow
def test_fixture_run_writes_every_file(fixture_run: Path, reports_out: Path, store_db: Path) -> None:
    run_dir = fixture_run
    assert run_dir.parent == reports_out.resolve()
    assert re.fullmatch(r"\d{8}-\d{6}-fixture", run_dir.name)
    nb_dir = run_dir / "ok_report"
    executed = nb_dir / "ok_report.ipynb"
    html_path = nb_dir / "ok_report.html"
    for path in (executed, html_path, run_dir / "manifest.json", run_dir / "index.html", reports_out / "index.html"):
        assert path.is_file(), path

    # The executed notebook got the injected parameters (an unquoted YAML date stays a string).
    nb = nbformat.read(executed, as_version=4)
    injected = next(c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", []))
    assert 'as_of = "2024-06-30"' in injected.source
    assert f'output_dir = "{nb_dir}"' in injected.source

    # Offline HTML: inline SVG chart with text, no code, no CDN.
    html = html_path.read_text(encoding="utf-8")
    assert "<svg" in html
    assert "Customers by segment: all</text>" in html
    assert _links(html_path).external == []
    assert "cdn.jsdelivr" not in html
    assert "unpkg.com" not in html
    assert "cdnjs" not in html
    assert "resolve_db_path(db)" not in html  # inputs hidden
    assert "2024-06-30" in html  # the run header lists the parameters
    assert "Saved 1 table(s) and <code>summary.json</code>" in html  # write_artifacts displays one line

    # Artifacts written by the notebook into its report folder.
    art = read_artifacts(nb_dir)
    with Store(store_db, read_only=True) as store:
        customers = store.table("customers")
        fingerprint = store.fingerprint()
    expected = customers.groupby("segment").size()
    assert art.tables["by_segment"].set_index("segment")["customers"].to_dict() == expected.to_dict()
    assert art.summary["customers"] == len(customers)
    assert art.summary["as_of"] == "2024-06-30"
    assert art.summary["segment"] == "all"

    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["suite"] == "fixture"
    assert manifest["run_id"] == run_dir.name
    assert manifest["status"] == "succeeded"
    assert manifest["data"] == {"db": str(store_db.resolve()), "fingerprint": fingerprint}
    assert {"journeylib", "pandas", "duckdb", "altair", "papermill", "python"} <= set(manifest["versions"])
    assert manifest["started_at"] <= manifest["finished_at"]
    assert manifest["seconds"] > 0
    (record,) = manifest["notebooks"]
    assert record["status"] == "succeeded"
    assert record["error"] is None
    assert record["parameters"] == {
        "as_of": "2024-06-30",
        "segment": "all",
        "sample_n": 0,
        "db": str(store_db.resolve()),
        "output_dir": str(nb_dir),
    }
    assert record["parameter_sources"] == {
        "as_of": "shared",
        "segment": "set:default",
        "sample_n": "set:default",
        "db": "override",
        "output_dir": "runner",
    }
    assert record["fingerprint"] == fingerprint
    assert record["seconds"] > 0
    assert record["timings"]["execute"] > 0
    assert record["timings"]["html"] > 0
    assert record["files"]["html"] == "ok_report/ok_report.html"
    assert [a["name"] for a in record["files"]["artifacts"]] == ["by_segment"]
    assert record["summary"]["customers"] == len(customers)

    # index.html links every file, all of which exist; nothing external.
    index = _links(run_dir / "index.html")
    assert index.external == []
    for target in (
        "ok_report/ok_report.html",
        "ok_report/ok_report.ipynb",
        "ok_report/artifacts/by_segment.parquet",
        "ok_report/artifacts/summary.json",
        "manifest.json",
    ):
        assert target in index.hrefs
    assert all((run_dir / href).exists() for href in index.hrefs)


@pytest.mark.notebooks
@pytest.mark.slow
def test_failing_cell_raises_report_error_naming_notebook_cell_and_error(failing_run: ReportError) -> None:
    err = failing_run
    msg = str(err)
    assert "1 of 2 notebook(s) of suite 'failing' failed" in msg
    assert "failing_report" in msg
    assert "cell index 3 (In [4]) `ratio = sum(counted) / 0" in msg
    assert "ZeroDivisionError: division by zero" in msg
    (failure,) = err.failures
    assert (failure.name, failure.cell_index, failure.ename) == ("failing_report", 3, "ZeroDivisionError")
    assert failure.executed_notebook is not None
    assert failure.executed_notebook.is_file()
    traceback = failure.executed_notebook.read_text()
    assert "ZeroDivisionError" in traceback


@pytest.mark.notebooks
@pytest.mark.slow
def test_failing_run_still_writes_manifest_index_and_other_notebooks(
    failing_run: ReportError, reports_out: Path
) -> None:
    run_dir = failing_run.run_dir
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "failed"
    failed, ok = manifest["notebooks"]
    assert failed["status"] == "failed"
    assert failed["error"]["cell_index"] == 3
    assert failed["error"]["first_line"].startswith("ratio = sum(counted) / 0")
    assert failed["files"]["notebook"] == "failing_report/failing_report.ipynb"
    assert failed["files"]["html"] == "failing_report/failing_report.html"  # the traceback, readable offline
    assert ok["status"] == "succeeded"
    assert ok["parameters"]["segment"] == "SMB"
    assert read_artifacts(run_dir / "ok_report").summary["segment"] == "SMB"
    index = (run_dir / "index.html").read_text()
    assert "status-failed" in index
    assert "ZeroDivisionError" in index

    # A failed run never replaces latest: it still points at the good fixture run; the runs index lists both.
    latest = reports_out / "latest"
    assert latest.is_symlink()
    assert latest.resolve() != run_dir.resolve()
    assert json.loads((latest / "manifest.json").read_text())["status"] == "succeeded"
    assert manifest["latest"] == latest.resolve().name
    assert f"still points at the last good run, {latest.resolve().name}" in str(failing_run)
    runs = (reports_out / "index.html").read_text()
    assert run_dir.name in runs
    assert "fixture" in runs


# -- notebooks side by side ------------------------------------------------------------------------


def _sleepy_suite(name: str, *seconds: float) -> dict[str, object]:
    """A suite of sleepy_report entries (one per waiting time), named n0, n1, ..."""
    return {
        "name": name,
        "notebooks": [
            {"notebook": "sleepy_report", "output_name": f"n{i}", "parameters": {"seconds": s}} for i, s in enumerate(seconds)
        ],
    }


def _timings(run_dir: Path, n: int) -> list[dict[str, object]]:
    return [json.loads((run_dir / f"n{i}" / "timing.json").read_text()) for i in range(n)]


@pytest.mark.notebooks
@pytest.mark.slow
@pytest.mark.parametrize("jobs", [1, 2])
def test_jobs_run_notebooks_side_by_side_or_in_turn(tmp_path: Path, store_db: Path, jobs: int) -> None:
    cwd = os.getcwd()
    run_dir = run_report(
        _sleepy_suite("sleepy", 2.0, 2.0),
        db=store_db,
        out=tmp_path,
        notebooks_dir=FIXTURES,
        parameters_dir=FIXTURE_PARAMETERS,
        execution_timeout=EXECUTION_TIMEOUT,
        jobs=jobs,
    )
    a, b = _timings(run_dir, 2)
    overlap = a["started"] < b["ended"] and b["started"] < a["ended"]  # type: ignore[operator]
    assert overlap is (jobs == 2)
    assert a["pid"] != b["pid"]  # a kernel each
    assert a["cwd"] == b["cwd"] == str(FIXTURES)  # the kernel's folder, not the process's
    assert os.getcwd() == cwd
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["execution"]["jobs"] == jobs
    assert [r["name"] for r in manifest["notebooks"]] == ["n0", "n1"]  # suite order, whatever ran first
    assert [r["status"] for r in manifest["notebooks"]] == ["succeeded", "succeeded"]
    assert list(manifest["timings"]["notebooks"]) == ["n0", "n1"]


@pytest.mark.notebooks
@pytest.mark.slow
def test_longest_notebooks_of_the_last_run_start_first(tmp_path: Path, store_db: Path) -> None:
    kwargs = {
        "db": store_db,
        "out": tmp_path,
        "notebooks_dir": FIXTURES,
        "parameters_dir": FIXTURE_PARAMETERS,
        "execution_timeout": EXECUTION_TIMEOUT,
        "jobs": 2,
    }
    # n2 is longer than the others by more than a kernel's start-up varies on a loaded machine, and n0 and n1
    # last long enough that the third notebook cannot start before n2's kernel has
    first = run_report(_sleepy_suite("order", 3.0, 3.0, 7.0), **kwargs)  # type: ignore[arg-type]
    order = json.loads((first / "manifest.json").read_text())["execution"]["start_order"]
    assert order["notebooks"] == ["n0", "n1", "n2"]
    assert "no earlier run" in order["by"]
    second = run_report(_sleepy_suite("order", 3.0, 3.0, 7.0), **kwargs)  # type: ignore[arg-type]
    order = json.loads((second / "manifest.json").read_text())["execution"]["start_order"]
    assert order["notebooks"][0] == "n2"
    assert first.name in order["by"]
    n0, n1, n2 = _timings(second, 3)
    # Two kernels: n2 starts with the first of the others, and the third waits for a free one. In suite order n2
    # would have been the one to wait, starting after both others.
    assert n2["started"] < max(n0["started"], n1["started"])  # type: ignore[type-var]


@pytest.mark.notebooks
@pytest.mark.slow
def test_an_interrupted_run_stops_its_kernels(tmp_path: Path, store_db: Path) -> None:
    import _thread
    import threading
    import time

    import psutil

    def kernels() -> list[psutil.Process]:
        found = []
        for p in psutil.Process().children(recursive=True):
            try:  # a child may exit (or be a zombie) between the listing and the look at its command line
                if "ipykernel" in " ".join(p.cmdline()):
                    found.append(p)
            except psutil.Error:
                continue
        return found

    started = threading.Event()
    stop = threading.Event()

    def interrupt_once_running() -> None:  # the interrupt comes while the notebooks run, not while the run is planned
        deadline = time.perf_counter() + 30.0  # kernels not seen by then: interrupt anyway (the test then says why)
        while not stop.is_set():
            if time.perf_counter() > deadline or len(kernels()) >= 2:
                time.sleep(1.0)
                started.set()
                _thread.interrupt_main()
                return
            time.sleep(0.1)

    # Ctrl-C as Python handles it by default, whatever an earlier test of the session left installed
    previous_handler = signal.signal(signal.SIGINT, signal.default_int_handler)

    timer = threading.Thread(target=interrupt_once_running, daemon=True)
    t0 = time.perf_counter()
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            run_report(
                _sleepy_suite("stopped", 120.0, 120.0, 120.0),
                db=store_db,
                out=tmp_path,
                notebooks_dir=FIXTURES,
                parameters_dir=FIXTURE_PARAMETERS,
                execution_timeout=EXECUTION_TIMEOUT,
                jobs=2,
            )
    finally:
        stop.set()
        signal.signal(signal.SIGINT, previous_handler)
    assert started.is_set()
    assert time.perf_counter() - t0 < 60  # not the 120 s the notebooks wait
    assert kernels() == []
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "interrupted"
    assert not (tmp_path / "latest").exists()
    assert not any((run_dir / f"n{i}" / "timing.json").exists() for i in range(3))
