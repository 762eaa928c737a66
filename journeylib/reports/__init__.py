"""Reports and dashboards: run suites of notebooks with Papermill, write artifacts, serve Voila.

The jobs of a report run live in their own modules: :mod:`~journeylib.reports.plan`
(suite resolution, parameter inspection and validation),
:mod:`~journeylib.reports.execute` (running one notebook in a kernel, finding
the failing cell), :mod:`~journeylib.reports.html` (the offline HTML page),
:mod:`~journeylib.reports.index` (manifest, run and runs index pages,
``latest``) and :mod:`~journeylib.reports.runner` (:func:`run_report`, which
ties them). :mod:`~journeylib.reports.artifacts` saves and reads the result
tables of a notebook; :mod:`~journeylib.reports.dashboard` serves notebooks
with Voila.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from journeylib.lazy import export_names, load_export

if TYPE_CHECKING:
    from journeylib.reports.artifacts import (
        ARTIFACTS_DIR,
        SUMMARY_FILE,
        Artifacts,
        SavedArtifacts,
        artifacts_path,
        read_artifacts,
        to_jsonable,
        write_artifacts,
    )
    from journeylib.reports.dashboard import (
        DashboardError,
        dashboard_command,
        dashboard_env,
        dashboard_url,
        find_free_port,
        serve_dashboard,
        start_dashboard,
        stop_dashboard,
        wait_until_ready,
    )
    from journeylib.reports.execute import CHART_MODE, KERNEL_NAME, NotebookFailure
    from journeylib.reports.html import HTML_REMOVE_TAGS, write_report_html
    from journeylib.reports.plan import (
        RUNNER_PARAMETERS,
        NotebookParameterWarning,
        PlannedNotebook,
        ReportPlan,
        plan_report,
    )
    from journeylib.reports.runner import ReportError, run_report

# Each name is imported from its module on first use (``__getattr__``), so importing one module of the
# package (``import journeylib.reports.<module>``) does not import its siblings and their dependencies.
_EXPORTS: dict[str, str] = {
    "ARTIFACTS_DIR": "journeylib.reports.artifacts",
    "SUMMARY_FILE": "journeylib.reports.artifacts",
    "Artifacts": "journeylib.reports.artifacts",
    "SavedArtifacts": "journeylib.reports.artifacts",
    "artifacts_path": "journeylib.reports.artifacts",
    "read_artifacts": "journeylib.reports.artifacts",
    "to_jsonable": "journeylib.reports.artifacts",
    "write_artifacts": "journeylib.reports.artifacts",
    "DashboardError": "journeylib.reports.dashboard",
    "dashboard_command": "journeylib.reports.dashboard",
    "dashboard_env": "journeylib.reports.dashboard",
    "dashboard_url": "journeylib.reports.dashboard",
    "find_free_port": "journeylib.reports.dashboard",
    "serve_dashboard": "journeylib.reports.dashboard",
    "start_dashboard": "journeylib.reports.dashboard",
    "stop_dashboard": "journeylib.reports.dashboard",
    "wait_until_ready": "journeylib.reports.dashboard",
    "CHART_MODE": "journeylib.reports.execute",
    "KERNEL_NAME": "journeylib.reports.execute",
    "NotebookFailure": "journeylib.reports.execute",
    "HTML_REMOVE_TAGS": "journeylib.reports.html",
    "write_report_html": "journeylib.reports.html",
    "RUNNER_PARAMETERS": "journeylib.reports.plan",
    "NotebookParameterWarning": "journeylib.reports.plan",
    "PlannedNotebook": "journeylib.reports.plan",
    "ReportPlan": "journeylib.reports.plan",
    "plan_report": "journeylib.reports.plan",
    "ReportError": "journeylib.reports.runner",
    "run_report": "journeylib.reports.runner",
}

__all__ = [
    "ARTIFACTS_DIR",
    "CHART_MODE",
    "HTML_REMOVE_TAGS",
    "KERNEL_NAME",
    "RUNNER_PARAMETERS",
    "SUMMARY_FILE",
    "Artifacts",
    "DashboardError",
    "NotebookFailure",
    "NotebookParameterWarning",
    "PlannedNotebook",
    "ReportError",
    "ReportPlan",
    "SavedArtifacts",
    "artifacts_path",
    "dashboard_command",
    "dashboard_env",
    "dashboard_url",
    "find_free_port",
    "plan_report",
    "read_artifacts",
    "run_report",
    "serve_dashboard",
    "start_dashboard",
    "stop_dashboard",
    "to_jsonable",
    "wait_until_ready",
    "write_artifacts",
    "write_report_html",
]


def __getattr__(name: str) -> Any:
    return load_export(__name__, _EXPORTS, globals(), name)


def __dir__() -> list[str]:
    return export_names(globals(), _EXPORTS)
