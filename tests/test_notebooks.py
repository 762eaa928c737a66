"""Tests of the notebooks: thin and clean as committed, parameters in step, runnable with smoke.yaml.

Every notebook in ``notebooks/`` is checked; its parameter sets live in
``parameters/<notebook>/``. The smoke runs use the session's ``demo_store``
(tests/conftest or the root conftest) when there is one, else a small store
built here from inline frames.
"""

from __future__ import annotations

import ast
import io
import json
import re
import tokenize
from pathlib import Path
from typing import Any

import nbformat
import papermill as pm
import pytest
from IPython.core.inputtransformer2 import TransformerManager
from papermill.iorw import read_yaml_file

from journeylib.journey.stages import TRACE_ENV

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS_DIR = ROOT / "notebooks"
PARAMETERS_DIR = ROOT / "parameters"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))
IDS = [nb.stem for nb in NOTEBOOKS]

# Statements a thin notebook must not contain: definitions and loops (comprehensions included).
FORBIDDEN_NODES = (
    ast.FunctionDef,
    ast.AsyncFunctionDef,
    ast.ClassDef,
    ast.Lambda,
    ast.For,
    ast.AsyncFor,
    ast.While,
    ast.ListComp,
    ast.SetComp,
    ast.DictComp,
    ast.GeneratorExp,
)
SQL = re.compile(
    r"\bselect\b[\s\S]+?\bfrom\b|\binsert\s+into\b|\bcreate\s+(?:or\s+replace\s+)?(?:temp\s+)?(?:table|view)\b"
    r"|\bimport\s+duckdb\b|\bduckdb\.|\.query\(|\.execute\(",
    re.IGNORECASE,
)
CELL_TIMEOUT_S = 120


def _without_comments(source: str) -> str:
    """Return Python *source* with its comments removed (help comments may say "duckdb")."""
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    return tokenize.untokenize((t.type, t.string) for t in tokens if t.type != tokenize.COMMENT)


def _code_cells(nb: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [c for c in nb.cells if c.cell_type == "code"]


def _declared(path: Path) -> dict[str, dict]:
    return pm.inspect_notebook(str(path))


def _parameter_sets(nb: Path) -> list[Path]:
    return sorted((PARAMETERS_DIR / nb.stem).glob("*.yaml"))


def test_there_are_notebooks() -> None:
    assert NOTEBOOKS, f"no notebooks in {NOTEBOOKS_DIR}"


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=IDS)
def test_committed_notebook_is_clean(nb_path: Path) -> None:
    nb = nbformat.read(nb_path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.kernelspec.name == "python3"
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "exactly one cell must be tagged `parameters`"
    assert nb.cells[0].cell_type == "markdown", "the first cell is the title"
    for i, cell in enumerate(_code_cells(nb)):
        where = f"{nb_path.name}, code cell {i}"
        assert cell.outputs == [], f"{where} has outputs; clear them before committing"
        assert cell.execution_count is None, f"{where} has an execution count; clear outputs"
        source = TransformerManager().transform_cell(cell.source)  # IPython magics into Python
        for node in ast.walk(ast.parse(source)):
            assert not isinstance(node, FORBIDDEN_NODES), (
                f"{where}: {type(node).__name__} in a notebook; move it to journeylib (notebooks are thin)"
            )
        assert not SQL.search(_without_comments(source)), (
            f"{where}: SQL in a notebook; computations belong in journeylib"
        )


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=IDS)
def test_parameters_are_annotated_and_match_every_parameter_set(nb_path: Path) -> None:
    declared = _declared(nb_path)
    assert declared, f"{nb_path.name} declares no parameters"
    nb = nbformat.read(nb_path, as_version=4)
    (cell,) = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    lines = [ln for ln in cell.source.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    # papermill skips (with a mere warning) a line holding two "=", e.g. in its help comment
    assert len(declared) == len(lines), (
        f"papermill understood {sorted(declared)} from {len(lines)} lines; write one "
        "`name: type = default  # help` per line, with no '=' in the help text"
    )
    untyped = [name for name, p in declared.items() if p["inferred_type_name"] in ("None", "")]
    assert not untyped, f"parameters without a type annotation: {untyped}"
    undocumented = [name for name, p in declared.items() if not p["help"]]
    assert not undocumented, f"parameters without a `# help` comment: {undocumented}"
    sets = _parameter_sets(nb_path)
    assert PARAMETERS_DIR / nb_path.stem / "smoke.yaml" in sets, f"parameters/{nb_path.stem}/smoke.yaml is missing"
    for path in sets:
        keys = set(read_yaml_file(str(path)) or {})
        assert keys == set(declared), (
            f"{path.relative_to(ROOT)}: keys {sorted(keys)} differ from the parameters cell {sorted(declared)}"
        )


# -- smoke runs ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def notebook_db(demo_store: Path) -> Path:
    """The session's synthetic store (root conftest.py)."""
    return Path(demo_store)


@pytest.fixture(scope="module")
def smoke_runs(notebook_db: Path, tmp_path_factory: pytest.TempPathFactory):
    """Run a notebook once with its smoke.yaml (cached per module); return (output notebook, output_dir)."""
    cache: dict[Path, tuple[nbformat.NotebookNode, Path]] = {}
    mp = pytest.MonkeyPatch()
    # Charts as vl-convert SVG, whatever the developer's shell says: no JavaScript, deterministic output.
    mp.setenv("REPORT_CHART_MODE", "static")
    mp.delenv("SERVER_SOFTWARE", raising=False)

    def run(nb_path: Path) -> tuple[nbformat.NotebookNode, Path]:
        if nb_path not in cache:
            folder = tmp_path_factory.mktemp(nb_path.stem)
            declared = _declared(nb_path)
            params = dict(read_yaml_file(str(PARAMETERS_DIR / nb_path.stem / "smoke.yaml")) or {})
            if "db" in declared:
                params["db"] = str(notebook_db)
            if "output_dir" in declared:
                params["output_dir"] = str(folder / "out")
            # every milestone SQL pass of the run appends a line here (journeylib.journey.stages.TRACE_ENV)
            mp.setenv(TRACE_ENV, str(folder / "stage-passes.jsonl"))
            out = pm.execute_notebook(
                str(nb_path),
                str(folder / nb_path.name),
                parameters=params,
                kernel_name="python3",
                cwd=str(NOTEBOOKS_DIR),
                execution_timeout=CELL_TIMEOUT_S,  # never unbounded: headless runs can stall on Output-widget messages
                progress_bar=False,
            )
            cache[nb_path] = (out, folder / "out")
        return cache[nb_path]

    yield run
    mp.undo()


@pytest.mark.notebooks
@pytest.mark.slow
@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=IDS)
def test_notebook_runs_with_smoke_parameters(nb_path: Path, smoke_runs) -> None:
    out, _ = smoke_runs(nb_path)
    errors = [o for c in _code_cells(out) for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    text = json.dumps(out)
    assert "cdn.jsdelivr.net" not in text, "a chart was rendered with the CDN renderer, not as static SVG"


@pytest.mark.notebooks
@pytest.mark.slow
def test_data_health_smoke_run_writes_its_artifacts(smoke_runs, notebook_db: Path) -> None:
    from journeylib.reports.artifacts import read_artifacts
    from journeylib.store import Store

    nb_path = NOTEBOOKS_DIR / "00_data_health.ipynb"
    out, output_dir = smoke_runs(nb_path)
    smoke = read_yaml_file(str(PARAMETERS_DIR / "00_data_health" / "smoke.yaml"))
    art = read_artifacts(output_dir)
    assert {"table_counts", "source_volume", "customer_mix", "coverage", "quarantine_reasons"} <= set(art.tables)
    with Store(notebook_db, read_only=True) as store:
        total = store.count("customers")
    assert art.summary["sample_n"] == smoke["sample_n"]
    assert art.summary["customers"] == min(smoke["sample_n"], total)
    assert art.tables["customer_mix"]["customers"].sum() == art.summary["customers"]
    svgs = [o for c in _code_cells(out) for o in c.get("outputs", []) if "image/svg+xml" in o.get("data", {})]
    assert len(svgs) >= 4  # volume, mix, event types, coverage, quarantine reasons
    # the dashboard-only widget cell is skipped in static mode: no widget output
    assert "application/vnd.jupyter.widget-view+json" not in json.dumps(out)


@pytest.mark.notebooks
@pytest.mark.slow
def test_journey_map_computes_each_stage_frame_once(smoke_runs) -> None:
    # One 01 run asks for the funnel (twice), time to convert, progress, transitions, flow,
    # variants, conformance, friction, suggestions and the definition comparison: through the
    # notebook's Journey context the milestone SQL runs once per (definition, scope) —
    # the journey's own, the suggested one, and friction's step definitions (one for the
    # conditions measured from signup, one per condition measured from the stage before).
    nb_path = NOTEBOOKS_DIR / "01_journey_map.ipynb"
    _, output_dir = smoke_runs(nb_path)
    passes = [json.loads(line) for line in (output_dir.parent / "stage-passes.jsonl").read_text().splitlines()]
    keys = [(p["definition"], p["scope"]) for p in passes]
    repeated = sorted({k for k in keys if keys.count(k) > 1})
    assert not repeated, f"stage frames computed more than once in one 01 run: {repeated}"
    definitions = {d for d, _ in keys}
    assert 2 <= len(definitions) <= len(keys)  # the current and the suggested definition at least
    assert len(keys) <= 12


# -- a store on which some sections cannot be computed ----------------------------------------------

# What each notebook must say on a store without conversions, churn, expansion events, renewals or tickets:
# (section title, status) pairs its summary.json lists under section_notes.
NO_CONVERSION_NOTES = {
    "01_journey_map": {("Events the definition names but the store lacks", "note")},
    "02_cohorts_and_segments": {("Retention of paying customers", "skipped")},
    "03_churn_drivers": {
        ("Events the definition names but the store lacks", "note"),
        ("Churn, conversion or expansion drivers", "skipped"),
    },
    # no paying customer: no snapshot, nothing to score, no churn duration; what needs the snapshots says so too
    "04_churn_risk": {
        ("Snapshots", "skipped"),
        ("Out-of-time backtest", "skipped"),
        ("Lead time", "skipped"),
        ("Threshold trade-off", "skipped"),
        ("Riskiest customers", "skipped"),
        ("Survival", "skipped"),
        ("Cox model", "skipped"),
        ("Model card", "skipped"),
    },
}


@pytest.fixture(scope="module")
def no_conversion_db(notebook_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the session store in which nobody converted: no paying customer, so no churn, no renewal, no ticket."""
    import shutil

    from journeylib.store import Store

    db = tmp_path_factory.mktemp("no-conversion") / "no_conversion.duckdb"
    shutil.copy(notebook_db, db)
    with Store(db) as store:
        store.execute("UPDATE customers SET converted_at = NULL, churned_at = NULL, renewal_at = NULL")
        store.execute(
            "DELETE FROM events WHERE event IN ('subscription_started', 'subscription_cancelled', 'plan_upgraded', "
            "'renewal', 'ticket_created', 'ticket_solved')"
        )
        store.execute("DELETE FROM tickets")
        assert store.query("SELECT count(converted_at) AS n FROM customers")["n"].iloc[0] == 0
    return db


def _run_smoke_on(name: str, db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Any]:
    """Run notebook *name* with its smoke parameters on *db* (static charts, no Voila); return it and its artifacts."""
    from journeylib.reports.artifacts import read_artifacts

    monkeypatch.setenv("REPORT_CHART_MODE", "static")
    monkeypatch.delenv("SERVER_SOFTWARE", raising=False)
    nb_path = NOTEBOOKS_DIR / f"{name}.ipynb"
    params = dict(read_yaml_file(str(PARAMETERS_DIR / name / "smoke.yaml")) or {})
    params.update(db=str(db), output_dir=str(tmp_path / "out"))
    out = pm.execute_notebook(
        str(nb_path), str(tmp_path / nb_path.name), parameters=params, kernel_name="python3", cwd=str(NOTEBOOKS_DIR),
        execution_timeout=CELL_TIMEOUT_S, progress_bar=False,
    )
    errors = [o for c in _code_cells(out) for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, f"{name}: {[(e.get('ename'), e.get('evalue')) for e in errors]}"
    return out, read_artifacts(tmp_path / "out")


@pytest.mark.notebooks
@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(NO_CONVERSION_NOTES))
def test_notebook_without_conversions_runs_and_lists_what_it_could_not_compute(
    name: str, no_conversion_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out, art = _run_smoke_on(name, no_conversion_db, tmp_path, monkeypatch)
    summary = art.summary
    got = {(n["section"], n["status"]) for n in summary["section_notes"]}
    assert got == NO_CONVERSION_NOTES[name]
    shown = json.dumps(out)
    for note in summary["section_notes"]:
        assert note["message"]
        assert note["message"][0].isupper()
        assert note["message"].endswith(".")
        assert f"**{note['section']}.**" in shown, f"the note of {note['section']!r} is not shown in the notebook"
    if name in ("01_journey_map", "03_churn_drivers"):
        assert sorted(a["event"] for a in summary["absent_events"]) == ["plan_upgraded", "renewal"]


@pytest.mark.notebooks
@pytest.mark.slow
@pytest.mark.parametrize("name", ["01_journey_map", "02_cohorts_and_segments", "03_churn_drivers"])
def test_smoke_run_lists_no_section_note(name: str, smoke_runs) -> None:
    from journeylib.reports.artifacts import read_artifacts

    _, output_dir = smoke_runs(NOTEBOOKS_DIR / f"{name}.ipynb")
    summary = read_artifacts(output_dir).summary
    assert summary["section_notes"] == []  # on the demo store every section computes and every named event exists
    if "absent_events" in summary:
        assert summary["absent_events"] == []


# -- notebook 04 when churners are too few for the backtest ----------------------------------------

#: Every table notebook 04 writes when each section computes.
RISK_ARTIFACTS = {
    "backtest_metrics", "calibration", "lift", "lead_time", "threshold_tradeoff", "risk_scores", "reasons", "next_stage",
    "kaplan_meier", "next_stage_kaplan_meier", "cox", "model_card",
}
#: The sections that need the out-of-time backtest.
RISK_BACKTEST_SECTIONS = {"Out-of-time backtest", "Lead time", "Threshold trade-off", "Model card"}
#: Churners kept in the few-churners store: enough to score (>= 10 churned labelled snapshots at horizon 60),
#: too few for 10 churned snapshots in each of the backtest's training and test parts.
FEW_CHURNERS = 5


@pytest.fixture(scope="module")
def few_churners_db(notebook_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the session store in which only the FEW_CHURNERS earliest churners churned."""
    import shutil

    from journeylib.store import Store

    db = tmp_path_factory.mktemp("few-churners") / "few_churners.duckdb"
    shutil.copy(notebook_db, db)
    with Store(db) as store:
        store.execute(
            "UPDATE customers SET churned_at = NULL WHERE customer_id NOT IN (SELECT customer_id FROM customers "
            f"WHERE churned_at IS NOT NULL ORDER BY churned_at, customer_id LIMIT {FEW_CHURNERS})"
        )
        assert store.query("SELECT count(churned_at) AS n FROM customers")["n"].iloc[0] == FEW_CHURNERS
    return db


@pytest.mark.notebooks
@pytest.mark.slow
def test_notebook_04_with_too_few_churners_skips_the_backtest_and_still_scores(
    few_churners_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out, art = _run_smoke_on("04_churn_risk", few_churners_db, tmp_path, monkeypatch)
    notes = {n["section"]: n for n in art.summary["section_notes"]}
    assert set(notes) == RISK_BACKTEST_SECTIONS
    assert {n["status"] for n in notes.values()} == {"skipped"}
    assert "churned" in notes["Out-of-time backtest"]["message"]  # backtest_data's own reason, not a generic one
    assert "Out-of-time backtest" in notes["Lead time"]["message"]  # the dependent sections name what they need
    shown = json.dumps(out)
    for title in notes:
        assert f"**{title}.**" in shown, f"the note of {title!r} is not shown in the notebook"
    # scoring does not need the backtest: the riskiest customers, survival and Cox are still there
    assert set(art.tables) == RISK_ARTIFACTS - {"backtest_metrics", "calibration", "lift", "lead_time", "threshold_tradeoff", "model_card"}
    assert len(art.tables["risk_scores"]) == art.summary["scored_customers"] > 0
    assert art.summary["split"] is None
    assert art.summary["lead_time"] is None
    assert art.summary["model_card"] is None
    assert "out-of-time backtest could not be computed" in shown  # the headline card says what is missing


@pytest.mark.notebooks
@pytest.mark.slow
def test_notebook_04_smoke_run_writes_every_artifact_and_no_section_note(smoke_runs) -> None:
    from journeylib.reports.artifacts import read_artifacts

    _, output_dir = smoke_runs(NOTEBOOKS_DIR / "04_churn_risk.ipynb")
    art = read_artifacts(output_dir)
    assert art.summary["section_notes"] == []
    assert set(art.tables) >= RISK_ARTIFACTS
    assert set(art.tables["backtest_metrics"]["model"]) == {"boosted", "logistic", "rule_score"}
    assert art.summary["split"]["test_churned"] >= 10
    assert art.summary["lead_time"] is not None


def test_require_skips_a_section_whose_input_section_was_not_computed() -> None:
    from journeylib.exceptions import EmptyResultError
    from journeylib.notebook import clear_notes, notes, require, section

    clear_notes()
    with section("Snapshots") as first:
        raise EmptyResultError("no snapshots.")
    with section("Backtest") as second:
        require(first)
    assert not second.computed
    assert second.note == "Needs the results of \u201cSnapshots\u201d, which could not be computed on this data (see the note there)."
    assert [n["section"] for n in notes()] == ["Snapshots", "Backtest"]
    with section("Survival") as third:
        require(section("Computed"))
    assert third.computed
    with pytest.raises(TypeError, match="every argument must be a Section"):
        require(True)  # type: ignore[arg-type]
    clear_notes()
