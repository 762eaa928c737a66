"""Executing one report notebook: the kernel it runs in, Papermill, and what failed where.

:func:`execute_notebook` runs a :class:`~journeylib.reports.plan.PlannedNotebook`
in a fresh ``python3`` kernel of this interpreter and, when it fails, finds
the failing cell in the saved executed notebook (:class:`NotebookFailure`).
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from journeylib.reports.plan import PlannedNotebook, papermill_path

__all__ = ["CHART_MODE", "KERNEL_NAME", "NotebookFailure", "execute_notebook", "kill_report_kernels"]

#: Kernel every report notebook runs in: ``python3`` of the running interpreter.
KERNEL_NAME = "python3"
#: ``REPORT_CHART_MODE`` given to report kernels: charts as inline SVG (journeylib.notebook.setup_altair).
CHART_MODE = "static"

_PAPERMILL_ERROR_TAG = "papermill-error-cell-tag"
_SKIPPED_TAGS = {"injected-parameters", _PAPERMILL_ERROR_TAG}


@dataclasses.dataclass(frozen=True)
class NotebookFailure:
    """Why one notebook of a report run failed.

    Attributes
    ----------
    name : str
        The notebook's entry name in the suite (its output folder).
    source : pathlib.Path
        The notebook file that was run.
    stage : {"execute", "html"}
        Whether running the notebook or converting it to HTML failed.
    ename, evalue : str
        Exception class name and message.
    cell_index : int or None
        0-based index of the failing cell in *source* (the injected
        parameters cell not counted); None if no cell is to blame.
    execution_count : int or None
        The failing cell's ``In [n]`` number in the executed notebook.
    first_line : str
        First non-blank line of the failing cell's source.
    executed_notebook : pathlib.Path or None
        The saved executed notebook holding the traceback.
    """

    name: str
    source: Path
    stage: Literal["execute", "html"]
    ename: str
    evalue: str
    cell_index: int | None = None
    execution_count: int | None = None
    first_line: str = ""
    executed_notebook: Path | None = None

    def describe(self) -> str:
        """Return a one-line account of the failure: notebook, cell, error, where the traceback is.

        Returns
        -------
        str
            E.g. ``"ok_report (notebooks/ok_report.ipynb): cell 5 (In [4]) `x = 1 / 0` raised
            ZeroDivisionError: division by zero; traceback in .../ok_report.ipynb"``.
        """
        where = f"{self.name} ({self.source})"
        if self.stage == "html":
            what = f"converting the executed notebook to HTML failed with {self.ename}: {self.evalue}"
        elif self.cell_index is not None:
            count = f" (In [{self.execution_count}])" if self.execution_count is not None else ""
            what = f"cell index {self.cell_index}{count} `{self.first_line}` raised {self.ename}: {self.evalue}"
        else:
            what = f"execution failed with {self.ename}: {self.evalue}"
        tail = f"; traceback in {self.executed_notebook}" if self.executed_notebook else ""
        return f"{where}: {what}{tail}"

    def to_dict(self) -> dict[str, Any]:
        """Return the failure as JSON-ready fields (for the manifest).

        Returns
        -------
        dict
            ``stage``, ``ename``, ``evalue``, ``cell_index``, ``execution_count``,
            ``first_line`` and ``message`` (:meth:`describe`).
        """
        return {
            "stage": self.stage,
            "ename": self.ename,
            "evalue": self.evalue,
            "cell_index": self.cell_index,
            "execution_count": self.execution_count,
            "first_line": self.first_line,
            "message": self.describe(),
        }


#: The report kernels running now (their kernel managers), so that an interrupted run can stop them.
_RUNNING: set[Any] = set()
_RUNNING_LOCK = threading.Lock()


def kill_report_kernels() -> int:
    """Kill the kernel of every notebook this process is running now (an interrupted report run).

    A notebook whose kernel is killed fails at once with a dead-kernel error,
    so the threads running them end instead of running their notebooks to
    the end.

    Returns
    -------
    int
        How many kernel processes were sent the kill signal.
    """
    with _RUNNING_LOCK:
        managers = list(_RUNNING)
    killed = 0
    for km in managers:
        process = getattr(getattr(km, "provisioner", None), "process", None)
        if process is not None and process.poll() is None:
            process.kill()
            killed += 1
        if process is not None:
            with _RUNNING_LOCK:  # a dead kernel's manager is not cleaned up by nbclient: forget it here
                _RUNNING.discard(km)
    return killed


def _kernel_manager_class(extra_env: Mapping[str, str], cwd: Path) -> type:
    """Return a kernel manager class starting ``python3`` of *this* interpreter in *cwd* with extra environment.

    The working directory is the kernel's own (not the process's: Papermill's
    ``cwd`` changes the whole process's directory, which notebooks running
    side by side in threads cannot share).
    """
    from ipykernel.kernelspec import RESOURCES, get_kernel_dict
    from jupyter_client.kernelspec import KernelSpec
    from jupyter_client.manager import AsyncKernelManager

    env_update = dict(extra_env)

    class ReportKernelManager(AsyncKernelManager):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            # The interpreter running the report, whatever kernelspec called python3 is installed.
            self._kernel_spec = KernelSpec(resource_dir=RESOURCES, **get_kernel_dict())

        async def _async_pre_start_kernel(self, **kw: Any) -> Any:
            env = dict(kw.get("env") or os.environ)
            for name in ("SERVER_SOFTWARE", "QUERY_STRING"):  # a batch run is never "under Voila"
                env.pop(name, None)
            env.update(env_update)
            kw["env"] = env
            kw["cwd"] = str(cwd)
            return await super()._async_pre_start_kernel(**kw)

        async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: Any) -> Any:
            with _RUNNING_LOCK:
                _RUNNING.add(self)
            return await super()._async_launch_kernel(kernel_cmd, **kw)

        async def _async_cleanup_resources(self, restart: bool = False) -> None:
            with _RUNNING_LOCK:
                _RUNNING.discard(self)
            await super()._async_cleanup_resources(restart=restart)

    return ReportKernelManager


def _first_line(source: str) -> str:
    for line in source.splitlines():
        if line.strip():
            return line.strip()[:120]
    return ""


def _failure_from_notebook(
    nb_path: Path, *, name: str, source: Path, ename: str = "", evalue: str = "", keep_error: bool = False
) -> NotebookFailure:
    """Find the failing cell in a saved executed notebook.

    With *keep_error*, *ename*/*evalue* describe the failure (a timeout)
    rather than the cell's own error output (the interrupt it caused).
    """
    import nbformat

    nb = nbformat.read(str(nb_path), as_version=4)
    index = -1
    running: tuple[int, Any] | None = None
    for cell in nb.cells:
        tags = set(cell.get("metadata", {}).get("tags", []))
        if tags & _SKIPPED_TAGS:
            continue
        index += 1
        if cell.cell_type != "code":
            continue
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error" and not (
                output.get("ename") == "SystemExit" and output.get("evalue") in ("", "0")
            ):
                return NotebookFailure(
                    name=name,
                    source=source,
                    stage="execute",
                    ename=ename if keep_error else output.get("ename", ename),
                    evalue=evalue if keep_error else output.get("evalue", evalue),
                    cell_index=index,
                    execution_count=cell.get("execution_count"),
                    first_line=_first_line(cell.source),
                    executed_notebook=nb_path,
                )
        meta = cell.get("metadata", {}).get("papermill", {})
        started_only = meta.get("status") in ("running", "pending") and meta.get("start_time")
        if running is None and (meta.get("exception") or started_only):
            running = (index, cell)
    if running is not None:
        index, cell = running
        return NotebookFailure(
            name=name,
            source=source,
            stage="execute",
            ename=ename,
            evalue=evalue,
            cell_index=index,
            execution_count=cell.get("execution_count"),
            first_line=_first_line(cell.source),
            executed_notebook=nb_path,
        )
    return NotebookFailure(
        name=name, source=source, stage="execute", ename=ename, evalue=evalue, executed_notebook=nb_path
    )


def execute_notebook(
    item: PlannedNotebook,
    executed: Path,
    *,
    parameters: dict[str, Any],
    notebooks_dir: Path,
    execution_timeout: int,
) -> tuple[NotebookFailure | None, float]:
    """Run one planned notebook with Papermill in a fresh kernel and save the executed copy.

    The kernel is ``python3`` of this interpreter, started in *notebooks_dir*
    with ``REPORT_CHART_MODE`` = :data:`CHART_MODE` and ``JOURNEYLIB_DB`` =
    the notebook's store (``SERVER_SOFTWARE`` and ``QUERY_STRING`` removed:
    a batch run is never under Voila). A failure is returned, not raised.

    Parameters
    ----------
    item : PlannedNotebook
        The notebook to run.
    executed : pathlib.Path
        Where Papermill saves the executed notebook (tracebacks included).
    parameters : dict
        The parameters to inject.
    notebooks_dir : pathlib.Path
        The kernel's working directory.
    execution_timeout : int
        Seconds one cell may run.

    Returns
    -------
    failure : NotebookFailure or None
        Why the notebook failed (the failing cell found in *executed* when
        it was saved), or None if it ran through.
    seconds : float
        Time spent executing, from starting the kernel to the failure's
        extraction.
    """
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    env = {"REPORT_CHART_MODE": CHART_MODE}
    if item.db is not None:  # None: the notebook reads through engine: spark
        env["JOURNEYLIB_DB"] = str(item.db)

    failure: NotebookFailure | None = None
    t0 = time.perf_counter()
    try:
        pm.execute_notebook(
            papermill_path(item.path.resolve()),
            papermill_path(executed.resolve()),
            parameters=parameters,
            kernel_name=KERNEL_NAME,
            execution_timeout=execution_timeout,
            start_timeout=120,
            progress_bar=False,
            log_output=False,
            kernel_manager_class=_kernel_manager_class(env, notebooks_dir.resolve()),
        )
    except PapermillExecutionError as exc:
        failure = _failure_from_notebook(executed, name=item.name, source=item.path, ename=exc.ename, evalue=exc.evalue)
    except Exception as exc:  # timeouts, a dead kernel, a kernel that does not start
        ename, evalue = type(exc).__name__, " ".join(str(exc).split())[:500]
        if isinstance(exc, TimeoutError) and "timed out" in str(exc):
            evalue = (
                f"the cell ran longer than execution_timeout={execution_timeout} s and was interrupted; "
                "make it faster (e.g. a smaller sample_n) or raise execution_timeout"
            )
        if executed.is_file():
            failure = _failure_from_notebook(
                executed, name=item.name, source=item.path, ename=ename, evalue=evalue, keep_error=True
            )
        else:
            failure = NotebookFailure(name=item.name, source=item.path, stage="execute", ename=ename, evalue=evalue)
    return failure, time.perf_counter() - t0
