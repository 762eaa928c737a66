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
