"""Headline figures agree everywhere they are shown: executed notebook, HTML, summary.json and the dashboard.

One report run of ``01_journey_map`` and ``03_churn_drivers`` (their smoke
parameter sets) on the session's world; then, for each figure, the same value
is looked up in the four places:

* the churn drivers' top line ("... churned 4.2× as often ... (161 vs 230
  customers) ...") — ``summary.json`` ``top_line``, the executed notebook's
  outputs, the HTML, the landing page of the dashboards, the drivers
  dashboard's plain-English lines, and its "list these customers" choice,
  whose list has those group sizes;
* the customers in scope and the first stage's funnel counts — the
  ``customers`` of ``summary.json``, the ``funnel`` artifact, the journey-map
  dashboard's funnel (built with the notebook's parameters) and its list of
  the customers who reached the first stage.
"""

from __future__ import annotations

import html
import json
import warnings
from pathlib import Path
from typing import Any

import nbformat
import pytest
from papermill.iorw import read_yaml_file

from journeylib.context import Journey
from journeylib.reports.artifacts import read_artifacts
from journeylib.reports.landing import dashboard_pages_data, landing_html
from journeylib.reports.runner import run_report
from journeylib.widgets import DriversWidget, JourneyMapWidget

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
PARAMETERS = ROOT / "parameters"
SUITE = {
    "name": "agreement",
    "notebooks": [
        {"notebook": "01_journey_map", "parameter_set": "smoke"},
        {"notebook": "03_churn_drivers", "parameter_set": "smoke"},
    ],
}


@pytest.fixture(scope="module")
def run(demo_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return run_report(SUITE, db=demo_store, out=tmp_path_factory.mktemp("reports"), notebooks_dir=NOTEBOOKS,
                      parameters_dir=PARAMETERS, execution_timeout=300)


def _params(name: str) -> dict[str, Any]:
    return dict(read_yaml_file(str(PARAMETERS / name / "smoke.yaml")) or {})


def _context(demo_store: Path, params: dict[str, Any]) -> Journey:
    return Journey.open(demo_store, definition=NOTEBOOKS / params["definition"], segment=params["segment"], sample_n=params["sample_n"])


def _notebook_text(run: Path, name: str) -> str:
    nb = nbformat.read(run / name / f"{name}.ipynb", as_version=4)
    return json.dumps([c.get("outputs", []) for c in nb.cells if c.cell_type == "code"], ensure_ascii=False)


def test_the_top_driver_line_agrees_in_notebook_html_summary_and_dashboard(run: Path, demo_store: Path) -> None:
    name = "03_churn_drivers"
    summary = read_artifacts(run / name, tables=[]).summary
    line = summary.get("top_line")
    if not line:
        pytest.skip(f"the smoke run found no significant driver: {summary.get('significant')!r}")
    assert line in _notebook_text(run, name)
    assert html.escape(line, quote=False) in (run / name / f"{name}.html").read_text(encoding="utf-8")
    landing = landing_html(dashboard_pages_data(NOTEBOOKS, run.parent))
    assert html.escape(line) in landing
    params = _params(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        widget = DriversWidget.from_journey(
            _context(demo_store, params), outcome=params["outcome"], window_days=params["window_days"],
            min_support=params["min_support"], property_keys=params["properties"], attributes=params["attributes"],
            outcome_field=params["outcome_field"],
        )
        assert widget.error == "", widget.error
        assert html.escape(line) in widget.lines.value
        label, _ = widget.driver_picker.options[0]
        sizes = label.rsplit("(", 1)[1].split(" customers")[0]  # "161 vs 230"
        assert f"{sizes} customers" in line
        widget.accounts.button.click()
    listed = widget.accounts.accounts
    assert listed is not None, widget.accounts.errors.value
    assert f"{(listed['side'] == 'exposed').sum():,} vs {(listed['side'] == 'reference').sum():,}" == sizes


def test_customers_and_first_stage_counts_agree_in_summary_artifact_and_dashboard(run: Path, demo_store: Path) -> None:
    name = "01_journey_map"
    art = read_artifacts(run / name, tables=["funnel"])
    funnel = art.tables["funnel"]
    customers = int(art.summary["customers"])
    first = funnel.sort_values("stage_order").iloc[0]
    assert int(first["eligible"]) == customers
    assert f"{customers:,}" in _notebook_text(run, name) or str(customers) in _notebook_text(run, name)
    assert f"Customers: {customers:,}" in landing_html(dashboard_pages_data(NOTEBOOKS, run.parent))
    widget = JourneyMapWidget.from_journey(_context(demo_store, _params(name)))
    assert widget.error == ""
    mine = widget.funnel.sort_values("stage_order").reset_index(drop=True)
    theirs = funnel.sort_values("stage_order").reset_index(drop=True)
    for col in ("eligible", "reached", "dropped", "censored"):
        assert mine[col].astype(int).tolist() == theirs[col].astype(int).tolist(), col
    assert mine["conversion_rate"].round(12).tolist() == theirs["conversion_rate"].round(12).tolist()
    second = str(theirs["stage"].iloc[1])
    widget.list_stage_picker.value = second
    widget.list_what_picker.value = "reached"
    widget.accounts.button.click()
    assert len(widget.accounts.accounts) == int(theirs["reached"].iloc[1])
