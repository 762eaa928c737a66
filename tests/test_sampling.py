"""``journeylib report --sample``: one seeded customer sample for every notebook, stated in each report.

Fast tests check how a request becomes a sample size and what cannot be
sampled; the test marked ``notebooks``/``slow`` runs a small notebook that
opens its analysis context with :func:`journeylib.notebook.open_journey` and
checks the sample in the manifest, the injected parameters, ``summary.json``
and the note at the top of the HTML.
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from journeylib.cli import build_parser
from journeylib.exceptions import ConfigError
from journeylib.reports.artifacts import read_artifacts
from journeylib.reports.plan import apply_sample, plan_report, resolve_sample
from journeylib.reports.runner import run_report
from journeylib.scope import Scope
from journeylib.store import Store

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "data" / "notebooks"
FIXTURE_PARAMETERS = FIXTURES / "parameters"


@pytest.mark.parametrize(
    ("sample", "customers", "expected"),
    [
        (0.1, 200, 20),  # a share: round(0.1 * 200)
        (0.001, 200, 1),  # never an empty sample
        (50, 200, 50),  # a number of customers
        (500, 200, 200),  # more than the store holds: every customer
        (1, 200, 1),
    ],
)
def test_resolve_sample(sample: float, customers: int, expected: int) -> None:
    assert resolve_sample(sample, customers) == expected


@pytest.mark.parametrize("sample", [0, 0.0, 1.0, 1.5, -3, float("nan")])
def test_resolve_sample_rejects_what_is_neither_share_nor_count(sample: float) -> None:
    with pytest.raises(ValueError, match=r"strictly between 0 and 1 .* whole number of customers of at least 1"):
        resolve_sample(sample, 100)


def test_resolve_sample_rejects_non_numbers() -> None:
    with pytest.raises(TypeError, match="got True"):
        resolve_sample(True, 100)


def test_cli_sample_argument_is_checked_by_the_parser(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    assert parser.parse_args(["report", "--sample", "0.1"]).sample == 0.1
    assert parser.parse_args(["report", "--sample", "5000"]).sample == 5000
    with pytest.raises(SystemExit):
        parser.parse_args(["report", "--sample", "2.5"])
    assert "expected a share of the customers between 0 and 1" in capsys.readouterr().err


def test_sample_needs_sample_n_in_every_notebook(demo_store: Path) -> None:
    plan = plan_report(FIXTURE_PARAMETERS / "failing.yaml", db=demo_store, notebooks_dir=FIXTURES, parameters_dir=FIXTURE_PARAMETERS)
    with pytest.raises(ConfigError, match=r"notebooks\[0\] \(failing_report, .*\): declares no `sample_n` parameter"):
        apply_sample(plan, 0.5, customers=200)


def test_sample_and_a_sample_n_override_conflict(demo_store: Path) -> None:
    plan = plan_report(
        "fixture", db=demo_store, notebooks_dir=FIXTURES, parameters_dir=FIXTURE_PARAMETERS, overrides={"sample_n": "30"}
    )
    with pytest.raises(ConfigError, match=r"overrides.sample_n: given together with --sample"):
        apply_sample(plan, 0.5, customers=200)


def test_sample_overrides_every_parameter_set(demo_store: Path) -> None:
    plan = plan_report("fixture", db=demo_store, notebooks_dir=FIXTURES, parameters_dir=FIXTURE_PARAMETERS)
    sampled, record = apply_sample(plan, 0.25, customers=200)
    (item,) = sampled.notebooks
    assert (item.parameters["sample_n"], item.sources["sample_n"]) == (50, "sample")
    assert record == {"requested": 0.25, "n": 50, "of_customers": 200, "random_state": 0, "note": None}
    _, big = apply_sample(plan, 900, customers=200)
    assert big["n"] == 200
    assert "900 customers was asked for but the store has 200" in big["note"]


def _sampled_notebook(folder: Path) -> None:
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell(
        'db: str = ""  # store\nas_of: str = ""  # as of\nsample_n: int = 0  # sample of customers\noutput_dir: str = ""  # report folder'
    )
    params.metadata["tags"] = ["parameters"]
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Sampled fixture"),
        nbformat.v4.new_code_cell("import journeylib.notebook\nfrom journeylib.reports.artifacts import write_artifacts"),
        params,
        nbformat.v4.new_code_cell("journey = journeylib.notebook.open_journey(globals(), scope=['as_of', 'sample_n'])"),
        nbformat.v4.new_code_cell(
            "customers = journey.store.query(f'SELECT count(*) AS n FROM ({journey.scope.customers_sql()}) AS c')['n'].iloc[0]\n"
            "write_artifacts(output_dir, tables={}, summary={'customers': int(customers), "
            "'section_notes': journeylib.notebook.notes()})"
        ),
    ]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, folder / "sampled.ipynb")


@pytest.mark.notebooks
@pytest.mark.slow
def test_sample_runs_and_is_stated_in_each_report(tmp_path: Path, demo_store: Path) -> None:
    notebooks = tmp_path / "notebooks"
    _sampled_notebook(notebooks)
    with Store(demo_store, read_only=True) as store:
        total = store.count("customers")
        in_scope = int(store.query(f"SELECT count(*) AS n FROM ({Scope.build(store).customers_sql()}) AS c")["n"].iloc[0])
    expected_n = round(0.1 * total)
    run_dir = run_report(
        {"name": "sampled", "notebooks": [{"notebook": "sampled", "parameter_set": None}]},
        db=demo_store,
        out=tmp_path / "reports",
        notebooks_dir=notebooks,
        parameters_dir=tmp_path,
        sample=0.1,
        execution_timeout=120,
    )
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["sample"] == {"requested": 0.1, "n": expected_n, "of_customers": total, "random_state": 0, "note": None}
    (record,) = manifest["notebooks"]
    assert (record["parameters"]["sample_n"], record["parameter_sources"]["sample_n"]) == (expected_n, "sample")

    summary = read_artifacts(run_dir / "sampled").summary
    assert summary["customers"] == expected_n  # the notebook analysed the sample
    sentence = f"Computed on a random sample of {expected_n:,} of {in_scope:,} customers (seed 0)."
    assert summary["sample"] == {"n": expected_n, "of_customers": in_scope, "random_state": 0, "sample_n": expected_n, "note": sentence}
    assert summary["section_notes"] == []  # a sample is stated, not a section that could not compute
    html = (run_dir / "sampled" / "sampled.html").read_text(encoding="utf-8")
    assert sentence in html
    # the note comes before anything else the notebook shows
    nb = nbformat.read(run_dir / "sampled" / "sampled.ipynb", as_version=4)
    first_output = next(c for c in nb.cells if c.cell_type == "code" and c.get("outputs"))
    assert sentence in json.dumps(first_output.outputs)
