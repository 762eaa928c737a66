"""The report runner: parameterized notebooks in, an offline report folder out.

A *suite* file ``parameters/<suite>.yaml`` names the notebooks to run, the
parameter set of each (``parameters/<notebook>/<set>.yaml``) and parameters
shared by all of them. :func:`run_report` validates the whole suite first
(every injected parameter must be a real parameter of its notebook, found with
``papermill.inspect_notebook``), then executes each notebook with Papermill in
a fresh kernel of the current environment and writes::

    reports/
        index.html                      every run, newest first
        latest -> <run-id>              symlink to the newest run
        <run-id>/                       UTC YYYYmmdd-HHMMSS-<suite>
            index.html                  links, status and timings (offline)
            manifest.json               parameters, data fingerprint, versions, timings
            <notebook>/
                <notebook>.ipynb        the executed notebook (tracebacks included)
                <notebook>.html         self-contained offline HTML, code hidden
                artifacts/*.parquet     result tables (journeylib.reports.artifacts.write_artifacts)
                artifacts/summary.json

Parameter precedence, lowest to highest: the notebook's own defaults <
``shared`` < the parameter set < the suite entry's ``parameters`` < the
command-line ``overrides`` (``db=`` included). The runner itself sets
``output_dir`` (the notebook's folder) and ``db`` (the absolute store path)
for the notebooks that declare them.

Nothing is started at import time; Papermill and nbconvert are imported when
a report runs.
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import datetime as dt
import importlib.metadata
import io
import itertools
import json
import logging
import math
import os
import platform
import re
import shutil
import subprocess
import sys
import time
import tokenize
import typing
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import jinja2
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from journeylib.exceptions import ConfigError, JourneyLibError
from journeylib.reports.artifacts import ARTIFACTS_DIR, SUMMARY_FILE
from journeylib.store.engine import Store, resolve_db_path

__all__ = [
    "CHART_MODE",
    "HTML_REMOVE_TAGS",
    "KERNEL_NAME",
    "RUNNER_PARAMETERS",
    "NotebookFailure",
    "NotebookParameterWarning",
    "PlannedNotebook",
    "ReportError",
    "ReportPlan",
    "SuiteConfig",
    "SuiteNotebook",
    "plan_report",
    "run_report",
    "write_report_html",
]

logger = logging.getLogger(__name__)

#: Kernel every report notebook runs in: ``python3`` of the running interpreter.
KERNEL_NAME = "python3"
#: ``REPORT_CHART_MODE`` given to report kernels: charts as inline SVG (journeylib.charts.theme).
CHART_MODE = "static"
#: Parameters the runner sets itself in every notebook that declares them.
RUNNER_PARAMETERS = ("db", "output_dir")
#: Cells with these tags are left out of the HTML report (live widgets, helper cells).
HTML_REMOVE_TAGS = ("dashboard-only", "remove-cell", "parameters", "injected-parameters")

_TEMPLATES = Path(__file__).resolve().parents[1] / "templates"
_NBCONVERT_TEMPLATES = _TEMPLATES / "nbconvert"
_NBCONVERT_TEMPLATE = "journeylib_report"
_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
_NAME_RE = re.compile(_NAME)
_VERSIONED = (
    "journeylib",
    "pandas",
    "numpy",
    "duckdb",
    "pyarrow",
    "altair",
    "vl-convert-python",
    "papermill",
    "nbconvert",
    "nbclient",
    "ipykernel",
    "ipywidgets",
)
_PAPERMILL_ERROR_TAG = "papermill-error-cell-tag"
_SKIPPED_TAGS = {"injected-parameters", _PAPERMILL_ERROR_TAG}


# -- errors ---------------------------------------------------------------------------------


class NotebookParameterWarning(UserWarning):
    """A notebook's ``parameters`` cell has a line Papermill cannot parse."""


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


class ReportError(JourneyLibError):
    """One or more notebooks of a report run failed.

    Raised by :func:`run_report` after every notebook has run; the run folder,
    its manifest and index still exist and list the failures.

    Parameters
    ----------
    failures : list of NotebookFailure
        Every failed notebook.
    suite : str
        The suite name.
    run_dir : pathlib.Path
        The run's folder.
    """

    def __init__(self, failures: Sequence[NotebookFailure], *, suite: str, run_dir: Path, total: int) -> None:
        self.failures = list(failures)
        self.suite = suite
        self.run_dir = Path(run_dir)
        self.run_id = self.run_dir.name
        lines = "\n".join(f"  - {f.describe()}" for f in self.failures)
        msg = (
            f"{len(self.failures)} of {total} notebook(s) of suite {suite!r} failed (run {self.run_id}):\n"
            f"{lines}\n"
            f"Open the executed notebook(s) for the full traceback; {self.run_dir / 'index.html'} and "
            f"manifest.json list every notebook's status. Fix the cell (or the parameter that "
            f"triggers it) and run the report again."
        )
        super().__init__(msg)


# -- the suite file -------------------------------------------------------------------------


def _clean_value(value: Any, where: str, problems: list[str]) -> Any:
    """Return *value* as a parameter Papermill can inject, or record a problem."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            problems.append(f"{where}: {value!r} is not allowed (use null or a finite number)")
        return value
    if isinstance(value, (dt.date, dt.datetime, dt.time)):
        return value.isoformat()  # papermill's YAML loader keeps dates as strings; so do we
    if isinstance(value, (list, tuple)):
        return [_clean_value(v, f"{where}[{i}]", problems) for i, v in enumerate(value)]
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                problems.append(f"{where}: key {key!r} must be a string")
                continue
            out[key] = _clean_value(item, f"{where}.{key}", problems)
        return out
    problems.append(
        f"{where}: a {type(value).__name__} cannot be a notebook parameter; "
        "use a string, number, boolean, null, list or mapping"
    )
    return value


def _clean_parameters(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        msg = f"must be a mapping of parameter name to value, got {type(value).__name__}"
        raise ValueError(msg)  # pydantic turns a ValueError into a located error
    problems: list[str] = []
    cleaned = {}
    for key, item in value.items():
        if not isinstance(key, str) or not key.isidentifier():
            problems.append(f"{key!r} is not a valid parameter name")
            continue
        cleaned[key] = _clean_value(item, key, problems)
    if problems:
        raise ValueError("; ".join(problems))
    return cleaned


class SuiteNotebook(BaseModel):
    """One notebook of a suite (an item of ``notebooks:``).

    Attributes
    ----------
    notebook : str
        The notebook's file name in the notebooks folder, without
        ``.ipynb`` (e.g. ``00_data_health``).
    parameter_set : str or None, default "default"
        The parameter set ``parameters/<notebook>/<parameter_set>.yaml``;
        null for none.
    parameters : dict
        Parameters for this notebook only; they win over the parameter set.
    output_name : str, optional
        The folder name under the run (default: the notebook name). Needed
        when a suite runs the same notebook twice.

    Notes
    -----
    A bare string item, ``- 00_data_health``, means ``{notebook: 00_data_health}``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    notebook: str = Field(pattern=_NAME, description="notebook file name without .ipynb")
    parameter_set: str | None = Field(default="default", pattern=_NAME)
    parameters: dict[str, Any] = Field(default_factory=dict)
    output_name: str | None = Field(default=None, pattern=_NAME)

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"notebook": data}
        return data

    @field_validator("notebook", mode="before")
    @classmethod
    def _strip_suffix(cls, value: Any) -> Any:
        if isinstance(value, str) and value.endswith(".ipynb"):
            return value[: -len(".ipynb")]
        return value

    @field_validator("parameters", mode="before")
    @classmethod
    def _parameters(cls, value: Any) -> dict[str, Any]:
        return _clean_parameters(value, "parameters")

    @property
    def name(self) -> str:
        """The entry's output folder name: ``output_name`` or the notebook name."""
        return self.output_name or self.notebook


class SuiteConfig(BaseModel):
    """A report suite: which notebooks run, with which parameters.

    Built with :meth:`from_yaml` from ``parameters/<suite>.yaml``::

        name: weekly                # optional; default: the file name
        description: Weekly CS review.
        shared:                     # given to every notebook that declares them
          as_of: 2024-06-30
        notebooks:
          - notebook: 00_data_health
            parameter_set: default  # parameters/00_data_health/default.yaml
          - notebook: 10_funnel
            parameter_set: smb
            parameters: {sample_n: 500}

    Attributes
    ----------
    name : str
        Suite name (letters, digits, ``_``, ``-``, ``.``); part of the run id.
    description : str
        One line shown in the report index.
    shared : dict
        Parameters given to every notebook of the suite that declares them.
    notebooks : tuple of SuiteNotebook
        The notebooks to run, in order (at least one).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=_NAME)
    description: str = ""
    shared: dict[str, Any] = Field(default_factory=dict)
    notebooks: tuple[SuiteNotebook, ...] = Field(min_length=1)

    @field_validator("shared", mode="before")
    @classmethod
    def _shared(cls, value: Any) -> dict[str, Any]:
        return _clean_parameters(value, "shared")

    @model_validator(mode="after")
    def _distinct_folders(self) -> SuiteConfig:
        seen: dict[str, int] = {}
        for i, entry in enumerate(self.notebooks):
            if entry.name in seen:
                msg = (
                    f"notebooks[{i}] writes to the same folder {entry.name!r} as notebooks[{seen[entry.name]}]; "
                    "give one of them a distinct `output_name`"
                )
                raise ValueError(msg)
            seen[entry.name] = i
        return self

    @classmethod
    def from_yaml(cls, source: str | os.PathLike[str] | Mapping[str, Any]) -> SuiteConfig:
        """Load and validate a suite from a YAML file or a dict.

        The file is read with Papermill's YAML loader, so unquoted dates
        (``as_of: 2024-06-30``) stay strings, exactly as ``papermill -f``
        would pass them.

        Parameters
        ----------
        source : str, os.PathLike or mapping
            A path to ``parameters/<suite>.yaml``, or the suite as a dict.
            For a file without a ``name`` key the file name (without
            ``.yaml``) is the suite name.

        Returns
        -------
        SuiteConfig
            The validated, immutable suite.

        Raises
        ------
        ConfigError
            Listing every problem at once: unknown keys (with their place and
            the allowed keys), missing keys, wrong types, a file that is not
            YAML or does not exist.

        Examples
        --------
        >>> SuiteConfig.from_yaml({"name": "demo", "notebooks": ["00_data_health"]}).notebooks[0].parameter_set
        'default'
        """
        if isinstance(source, Mapping):
            return cls._validate(dict(source), "<dict>")
        path = Path(source)
        where = str(path)
        data = _read_yaml(path, what="suite file")
        if data is None:
            raise ConfigError([f"the suite file is empty; it needs at least `notebooks:` ({_suite_hint()})"], where)
        if not isinstance(data, dict):
            raise ConfigError([f"the suite must be a mapping of keys to values, got {type(data).__name__}"], where)
        data.setdefault("name", path.stem)
        return cls._validate(data, where)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SuiteConfig:
        """Validate a suite given as a dict; see :meth:`from_yaml`.

        Parameters
        ----------
        data : mapping
            The suite's keys (``name`` required).

        Returns
        -------
        SuiteConfig
            The validated suite.
        """
        return cls.from_yaml(data)

    @classmethod
    def _validate(cls, data: dict[str, Any], where: str) -> SuiteConfig:
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise ConfigError(_format_validation_errors(exc, cls), where) from None


def _suite_hint() -> str:
    return "e.g. `notebooks: [{notebook: 00_data_health, parameter_set: default}]`"


def _read_yaml(path: Path, *, what: str) -> Any:
    import yaml
    from papermill.iorw import read_yaml_file

    if not path.is_file():
        raise ConfigError([f"{what} {path} does not exist"], str(path))
    try:
        return read_yaml_file(str(path))
    except yaml.YAMLError as exc:
        raise ConfigError([f"not valid YAML: {exc}"], str(path)) from None


def _find_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _find_model(arg)
        if found is not None:
            return found
    return None


def _model_at(root: type[BaseModel], loc: Sequence[int | str]) -> type[BaseModel] | None:
    model: type[BaseModel] | None = root
    for part in loc:
        if isinstance(part, int) or model is None:
            continue
        field = model.model_fields.get(part)
        if field is None:
            return None
        model = _find_model(field.annotation)
    return model


def _format_loc(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _format_validation_errors(exc: ValidationError, root: type[BaseModel]) -> list[str]:
    problems = []
    for err in exc.errors():
        loc = list(err["loc"])
        kind = err["type"]
        if kind == "extra_forbidden":
            parent = loc[:-1]
            model = _model_at(root, parent)
            allowed = ", ".join(model.model_fields) if model else "?"
            problems.append(f"{_format_loc(parent)}: unknown key {loc[-1]!r}; allowed keys here are: {allowed}")
        elif kind == "missing":
            problems.append(f"{_format_loc(loc)}: required key is missing")
        elif kind == "string_pattern_mismatch":
            problems.append(
                f"{_format_loc(loc)}: {err['input']!r} is not a valid name; use letters, digits, "
                "'_', '-' or '.', starting with a letter or digit"
            )
        elif kind == "too_short" and loc and loc[-1] == "notebooks":
            if not err.get("input"):  # otherwise the items' own errors say what is wrong
                problems.append(f"notebooks: the list is empty; name at least one notebook ({_suite_hint()})")
        elif kind == "value_error":
            problems.append(f"{_format_loc(loc)}: {err['ctx']['error']}")
        else:
            problems.append(f"{_format_loc(loc)}: {err['msg']} (got {err.get('input')!r})")
    return problems


# -- planning -------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class PlannedNotebook:
    """One notebook of a report run, with everything resolved.

    Attributes
    ----------
    name : str
        Output folder name under the run.
    notebook : str
        Notebook name (file stem).
    path : pathlib.Path
        Absolute path of the notebook file.
    parameter_set : str or None
        Name of the parameter set used.
    parameter_set_file : pathlib.Path or None
        Absolute path of the parameter-set file.
    parameters : dict
        The parameters injected (``output_dir`` is added at run time).
    sources : dict
        Where each injected parameter came from: ``shared``,
        ``set:<name>``, ``suite``, ``override`` or ``runner``.
    declared : dict
        Every parameter the notebook declares: name -> Papermill's
        ``{name, inferred_type_name, default, help}``.
    db : pathlib.Path
        Absolute path of the store the notebook reads (also given to the
        kernel as ``JOURNEYLIB_DB``).
    """

    name: str
    notebook: str
    path: Path
    parameter_set: str | None
    parameter_set_file: Path | None
    parameters: dict[str, Any]
    sources: dict[str, str]
    declared: dict[str, dict[str, Any]]
    db: Path

    @property
    def writes_artifacts(self) -> bool:
        """Whether the notebook declares ``output_dir`` (so it can save artifacts)."""
        return "output_dir" in self.declared


@dataclasses.dataclass(frozen=True)
class ReportPlan:
    """A validated report run, ready to execute.

    Attributes
    ----------
    suite : SuiteConfig
        The suite.
    suite_file : pathlib.Path or None
        The suite's YAML file (None for a dict).
    notebooks_dir, parameters_dir : pathlib.Path
        Absolute folders.
    overrides : dict
        The command-line overrides, cleaned.
    notebooks : tuple of PlannedNotebook
        What will run, in order.
    """

    suite: SuiteConfig
    suite_file: Path | None
    notebooks_dir: Path
    parameters_dir: Path
    overrides: dict[str, Any]
    notebooks: tuple[PlannedNotebook, ...]


def _available(folder: Path, pattern: str) -> str:
    names = sorted(p.stem for p in folder.glob(pattern)) if folder.is_dir() else []
    return ", ".join(names) if names else "none"


def _resolve_suite(
    suite: str | os.PathLike[str] | SuiteConfig | Mapping[str, Any], parameters_dir: Path
) -> tuple[SuiteConfig, Path | None]:
    if isinstance(suite, SuiteConfig):
        return suite, None
    if isinstance(suite, Mapping):
        return SuiteConfig.from_yaml(suite), None
    text = os.fspath(suite)
    path = Path(text).expanduser()
    looks_like_path = path.suffix in (".yaml", ".yml") or os.sep in text or "/" in text or path.is_file()
    if not looks_like_path:
        path = parameters_dir / f"{text}.yaml"
    if not path.is_file():
        msg = (
            f"suite {text!r} not found: {path} does not exist. Suites are YAML files "
            f"parameters/<suite>.yaml; available in {parameters_dir}: {_available(parameters_dir, '*.y*ml')}"
        )
        raise ConfigError([msg], str(path))
    return SuiteConfig.from_yaml(path), path.resolve()


_SIMPLE_TYPES: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "int": (int,),
    "float": (int, float),
    "bool": (bool,),
    "list": (list,),
    "dict": (dict,),
}


def _type_problem(name: str, value: Any, declared: Mapping[str, Any]) -> str | None:
    type_name = str(declared.get("inferred_type_name") or "")
    expected = _SIMPLE_TYPES.get(type_name)
    if expected is None:
        return None  # no annotation, or one we do not check (Optional[...], unions)
    is_bool_for_number = isinstance(value, bool) and bool not in expected
    if isinstance(value, expected) and not is_bool_for_number:
        return None
    return f"parameter {name!r} is declared `{type_name}` but got {type(value).__name__} {value!r}"


def _coerce_override(value: Any, declared: Mapping[str, Any] | None) -> Any:
    """Convert a command-line string to the parameter's declared type when it parses cleanly."""
    if not isinstance(value, str) or declared is None:
        return value
    type_name = declared.get("inferred_type_name")
    text = value.strip()
    with contextlib.suppress(ValueError):
        if type_name == "int":
            return int(text)
        if type_name == "float":
            return float(text)
        if type_name == "bool" and text.lower() in ("true", "false", "1", "0", "yes", "no"):
            return text.lower() in ("true", "1", "yes")
    return value


def _pm_path(path: Path) -> str:
    """Return *path* for Papermill, which formats paths with the parameters (``{name}``): escape braces."""
    return str(path).replace("{", "{{").replace("}", "}}")


def _parameters_cell_names(path: Path) -> dict[str, dict[str, Any]]:
    """Names assigned in the notebook's ``parameters`` cell, read with Python's own parser."""
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    cell = next(
        (c for c in nb.cells if c.cell_type == "code" and "parameters" in c.get("metadata", {}).get("tags", [])),
        None,
    )
    if cell is None:
        return {}
    try:
        tree = ast.parse(cell.source)
    except SyntaxError:
        return {}
    comments: dict[int, str] = {}
    with contextlib.suppress(tokenize.TokenError, IndentationError):
        for tok in tokenize.generate_tokens(io.StringIO(cell.source).readline):
            if tok.type == tokenize.COMMENT:
                comments[tok.start[0]] = tok.string.lstrip("#").strip()
    found: dict[str, dict[str, Any]] = {}
    for node in tree.body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            targets, annotation = [node.target.id], ast.unparse(node.annotation)
        elif isinstance(node, ast.Assign):
            targets, annotation = [t.id for t in node.targets if isinstance(t, ast.Name)], "None"
        else:
            continue
        default = ast.unparse(node.value) if node.value is not None else ""
        for name in targets:
            found[name] = {
                "name": name,
                "inferred_type_name": annotation,
                "default": default,
                "help": comments.get(node.end_lineno or node.lineno, ""),
                "line": node.lineno,
            }
    return found


def _inspect(path: Path) -> dict[str, dict[str, Any]]:
    """Return the notebook's parameters: ``papermill.inspect_notebook``, completed by Python's parser.

    Papermill skips a parameter line holding more than one ``=`` (e.g. ``=``
    in its help comment); such a name is still a parameter (injection works),
    so it is added here, with a warning saying how to make ``papermill
    --help-notebook`` see it.
    """
    import nbformat
    from papermill import inspect_notebook
    from papermill.translators import PythonTranslator

    try:
        found = inspect_notebook(_pm_path(path))
    except ValueError:
        # No kernelspec in the notebook's metadata: read the cell as Python, the kernel reports run with.
        nb = nbformat.read(str(path), as_version=4)
        cell = next((c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])), None)
        found = {p.name: p._asdict() for p in PythonTranslator.inspect(cell)} if cell is not None else {}
    declared = {name: dict(info) for name, info in found.items()}
    for name, info in _parameters_cell_names(path).items():
        if name in declared:
            continue
        line = info.pop("line")
        declared[name] = info
        msg = (
            f"{path}: papermill cannot parse line {line} of the parameters cell (parameter {name!r}), "
            "usually because the line holds more than one '=' (an '=' in the help comment). The report "
            "runner still treats it as a parameter, but `papermill --help-notebook` will not list it: "
            "remove the extra '='."
        )
        warnings.warn(msg, NotebookParameterWarning, stacklevel=3)
    return declared


def _declared_list(declared: Mapping[str, Any]) -> str:
    return ", ".join(declared) if declared else "none (the notebook has no cell tagged `parameters`)"


def plan_report(
    suite: str | os.PathLike[str] | SuiteConfig | Mapping[str, Any],
    *,
    db: str | os.PathLike[str] | None = None,
    notebooks_dir: str | os.PathLike[str] = "notebooks",
    parameters_dir: str | os.PathLike[str] = "parameters",
    overrides: Mapping[str, Any] | None = None,
) -> ReportPlan:
    """Validate a suite against its notebooks and resolve every parameter, without running anything.

    :func:`run_report` calls this first; call it yourself to check a suite
    (``journeylib report --check``) or to see what would be injected.

    Parameters
    ----------
    suite : str, os.PathLike, SuiteConfig or mapping
        A suite name (``"demo"`` -> ``<parameters_dir>/demo.yaml``), a path
        to a suite file, a :class:`SuiteConfig` or a dict.
    db : str or os.PathLike, optional
        The store; highest precedence (like a command-line ``--db``).
        Default: a ``db`` parameter of the suite, else ``JOURNEYLIB_DB``,
        else ``data/journeylib.duckdb`` in the working directory or a parent.
        Relative paths are relative to the working directory.
    notebooks_dir : str or os.PathLike, default "notebooks"
        Where ``<notebook>.ipynb`` files are.
    parameters_dir : str or os.PathLike, default "parameters"
        Where suites and ``<notebook>/<set>.yaml`` parameter sets are.
    overrides : mapping, optional
        Command-line parameters; they win over everything in the suite. A
        string is converted to the parameter's declared type (``"50"`` for
        ``sample_n: int``). Each must be a parameter of at least one
        notebook of the suite; it is given to the notebooks that declare it.

    Returns
    -------
    ReportPlan
        The suite and one :class:`PlannedNotebook` per notebook.

    Raises
    ------
    ConfigError
        Listing every problem at once: a missing suite, notebook or parameter
        set (with what is available), an unknown parameter (with the
        notebook's declared parameters), a value of the wrong type.
    JourneyLibError
        If no store can be found.
    """
    nb_dir = Path(notebooks_dir).expanduser().resolve()
    par_dir = Path(parameters_dir).expanduser().resolve()
    config, suite_file = _resolve_suite(suite, par_dir)
    where = str(suite_file) if suite_file else f"suite {config.name!r}"

    problems: list[str] = []
    clean_overrides: dict[str, Any] = {}
    if overrides:
        override_problems: list[str] = []
        for key, value in overrides.items():
            if not isinstance(key, str) or not key.isidentifier():
                override_problems.append(f"overrides: {key!r} is not a valid parameter name")
                continue
            clean_overrides[key] = _clean_value(value, f"overrides.{key}", override_problems)
        problems.extend(override_problems)
    if db is not None and str(db) != "":
        clean_overrides["db"] = os.fspath(db)

    # Read every notebook's declared parameters and every parameter set first.
    inspected: list[tuple[SuiteNotebook, Path, dict[str, dict[str, Any]] | None, Path | None, dict[str, Any]]] = []
    for i, entry in enumerate(config.notebooks):
        nb_path = nb_dir / f"{entry.notebook}.ipynb"
        declared: dict[str, dict[str, Any]] | None = None
        if not nb_path.is_file():
            problems.append(
                f"notebooks[{i}]: notebook {entry.notebook!r} not found at {nb_path}; "
                f"available in {nb_dir}: {_available(nb_dir, '*.ipynb')}"
            )
        else:
            try:
                declared = _inspect(nb_path)
            except Exception as exc:  # a corrupt notebook: report it with the others
                problems.append(f"notebooks[{i}]: cannot read {nb_path}: {exc}")
        set_file: Path | None = None
        set_values: dict[str, Any] = {}
        if entry.parameter_set is not None:
            set_file = par_dir / entry.notebook / f"{entry.parameter_set}.yaml"
            if not set_file.is_file():
                problems.append(
                    f"notebooks[{i}].parameter_set: {entry.parameter_set!r} not found at {set_file}; "
                    f"available for {entry.notebook}: {_available(set_file.parent, '*.y*ml')} "
                    "(or `parameter_set: null` for none)"
                )
                set_file = None
            else:
                try:
                    raw = _read_yaml(set_file, what="parameter set")
                except ConfigError as exc:
                    problems.extend(f"{set_file}: {p}" for p in exc.problems)
                    raw = {}
                if raw is not None and not isinstance(raw, dict):
                    problems.append(f"{set_file}: must be a mapping of parameter name to value")
                    raw = {}
                set_problems: list[str] = []
                for key, value in (raw or {}).items():
                    set_values[str(key)] = _clean_value(value, f"{set_file}: {key}", set_problems)
                problems.extend(set_problems)
        inspected.append((entry, nb_path, declared, set_file, set_values))

    # Suite-wide keys (shared, overrides) must belong to at least one notebook.
    all_declared: set[str] = set()
    for _, _, declared, _, _ in inspected:
        all_declared.update(declared or {})
    if all(d is not None for _, _, d, _, _ in inspected):
        for scope, values in (("shared", config.shared), ("overrides", clean_overrides)):
            for key in values:
                if key not in all_declared and key != "db":  # db is also the runner's store
                    problems.append(
                        f"{scope}.{key}: not a parameter of any notebook of the suite; declared are: "
                        f"{', '.join(sorted(all_declared)) or 'none'}"
                    )

    planned: list[tuple[PlannedNotebook, tuple[str, str] | None]] = []
    for i, (entry, nb_path, declared, set_file, set_values) in enumerate(inspected):
        if declared is None:
            continue
        params: dict[str, Any] = {}
        sources: dict[str, str] = {}
        db_choice: tuple[str, str] | None = None  # the highest-precedence non-empty `db`, and where it came from
        layers: list[tuple[str, str, Mapping[str, Any], bool]] = [
            ("shared", "shared", config.shared, False),
            (f"set:{entry.parameter_set}", str(set_file), set_values, True),
            ("suite", f"notebooks[{i}].parameters", entry.parameters, True),
            ("override", "overrides", clean_overrides, False),
        ]
        for source, label, layer_values, strict in layers:
            for key, value in layer_values.items():
                if key == "db" and value not in ("", None):
                    if isinstance(value, str):
                        db_choice = (source, value)
                    else:
                        problems.append(f"{label}: db must be a path (a string), got {value!r}")
                if key not in declared:
                    if strict:
                        problems.append(
                            f"{label}: {key!r} is not a parameter of notebook {entry.notebook!r} "
                            f"({nb_path}); its parameters are: {_declared_list(declared)}"
                        )
                    continue
                if source == "override":
                    value = _coerce_override(value, declared[key])
                type_problem = _type_problem(key, value, declared[key])
                if type_problem:
                    problems.append(f"{label}: {type_problem} in notebook {entry.notebook!r}")
                params[key] = value
                sources[key] = source
        item = PlannedNotebook(
            name=entry.name,
            notebook=entry.notebook,
            path=nb_path.resolve(),
            parameter_set=entry.parameter_set,
            parameter_set_file=set_file.resolve() if set_file else None,
            parameters=params,
            sources=sources,
            declared=declared,
            db=Path(),  # resolved below, once the configuration is known to be valid
        )
        planned.append((item, db_choice))
    if problems:
        raise ConfigError(problems, where)

    resolved: list[PlannedNotebook] = []
    for item, db_choice in planned:
        # Relative store paths are relative to the working directory of the caller, not of the kernel.
        store = resolve_db_path(db_choice[1] if db_choice else None)
        params = dict(item.parameters)
        sources = dict(item.sources)
        if "db" in item.declared:
            params["db"] = str(store)
            sources["db"] = db_choice[0] if db_choice else "runner"
        resolved.append(dataclasses.replace(item, db=store, parameters=params, sources=sources))
    return ReportPlan(
        suite=config,
        suite_file=suite_file,
        notebooks_dir=nb_dir,
        parameters_dir=par_dir,
        overrides=clean_overrides,
        notebooks=tuple(resolved),
    )


# -- execution -------------------------------------------------------------------------------


def _kernel_manager_class(extra_env: Mapping[str, str]) -> type:
    """Return a kernel manager class starting ``python3`` of *this* interpreter with extra environment."""
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
            return await super()._async_pre_start_kernel(**kw)

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


_XML_PROLOG = re.compile(r"^\s*(<\?xml[^>]*\?>\s*)?(<!DOCTYPE[^>]*>\s*)?", re.IGNORECASE)
_SCRIPT = re.compile(r"<script\b.*?</script\s*>", re.IGNORECASE | re.DOTALL)
_SVG_ID = re.compile(r'\bid="([^"]+)"')


def _inline_svg_filter() -> Any:
    """Return a Jinja filter inlining an SVG output, ids prefixed so charts do not share clip paths."""
    counter = itertools.count(1)

    def inline_svg(svg: Any) -> str:
        text = _SCRIPT.sub("", _XML_PROLOG.sub("", str(svg)))
        ids = set(_SVG_ID.findall(text))
        if not ids:
            return text
        prefix = f"jl{next(counter)}-"
        names = "|".join(re.escape(i) for i in sorted(ids, key=len, reverse=True))
        refs = re.compile(rf"""(\bid="|url\(#|url\(['"]#|href="#)({names})(?=["')])""")
        return refs.sub(lambda m: m.group(1) + prefix + m.group(2), text)

    return inline_svg


def write_report_html(
    notebook: str | os.PathLike[str],
    html_path: str | os.PathLike[str] | None = None,
    *,
    title: str | None = None,
    header: Mapping[str, Any] | None = None,
) -> Path:
    """Convert an executed notebook into a self-contained offline HTML report.

    Code is hidden, as are cells tagged ``dashboard-only``, ``remove-cell``,
    ``parameters`` and ``injected-parameters``, and code cells without
    output. The page loads nothing from the network: the nbconvert template
    ``journeylib_report`` (in ``journeylib/templates/nbconvert``) drops the
    lab template's CDN scripts (require.js, MathJax, Mermaid, widget
    manager), so charts must be rendered in the kernel as SVG
    (``journeylib.charts.theme.setup_altair("static")``, what the runner sets).

    Parameters
    ----------
    notebook : str or os.PathLike
        The executed ``.ipynb``.
    html_path : str or os.PathLike, optional
        Where to write; default: next to *notebook* with ``.html``.
    title : str, optional
        The page title; default: the notebook's file stem.
    header : mapping, optional
        A run header shown at the top: ``title``, ``status``, ``facts``
        (dict of label -> text) and ``parameters`` (dict).

    Returns
    -------
    pathlib.Path
        The HTML file.
    """
    import nbformat
    from nbconvert import HTMLExporter
    from traitlets.config import Config

    src = Path(notebook)
    out = Path(html_path) if html_path is not None else src.with_suffix(".html")
    nb = nbformat.read(str(src), as_version=4)
    nb.cells = [c for c in nb.cells if not (c.cell_type == "code" and not c.get("outputs"))]

    c = Config()
    c.TemplateExporter.extra_template_basedirs = [str(_NBCONVERT_TEMPLATES)]
    c.TemplateExporter.exclude_input = True
    c.TemplateExporter.exclude_input_prompt = True
    c.TemplateExporter.exclude_output_prompt = True
    c.TagRemovePreprocessor.enabled = True
    c.TagRemovePreprocessor.remove_cell_tags = set(HTML_REMOVE_TAGS)
    exporter = HTMLExporter(config=c, template_name=_NBCONVERT_TEMPLATE)
    exporter.register_filter("jl_inline_svg", _inline_svg_filter())
    resources: dict[str, Any] = {"metadata": {"name": title or src.stem}}
    if header:
        resources["journeylib"] = dict(header)
    body, _ = exporter.from_notebook_node(nb, resources=resources)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    tmp.write_text(body, encoding="utf-8")
    os.replace(tmp, out)
    return out


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _iso(moment: dt.datetime | None) -> str | None:
    return moment.isoformat(timespec="seconds") if moment else None


def _versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for dist in _VERSIONED:
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = None
    out["python"] = platform.python_version()
    return out


def _git_commit(folder: Path) -> str | None:
    try:
        done = subprocess.run(  # fixed argv, read-only git command
            ["git", "rev-parse", "HEAD"],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None


def _fingerprint(db: Path) -> str:
    with Store(db, read_only=True) as store:
        return store.fingerprint()


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _list_artifacts(folder: Path, run_dir: Path) -> tuple[list[dict[str, Any]], dict[str, Any] | None, str | None]:
    art_dir = folder / ARTIFACTS_DIR
    tables: list[dict[str, Any]] = []
    summary: dict[str, Any] | None = None
    summary_rel: str | None = None
    if not art_dir.is_dir():
        return tables, summary, summary_rel
    import pyarrow.parquet as pq

    for path in sorted(art_dir.glob("*.parquet")):
        try:
            meta = pq.read_metadata(path)
            rows, columns = meta.num_rows, meta.num_columns
        except Exception:  # a broken file is listed, not fatal
            rows = columns = None
        tables.append(
            {
                "name": path.stem,
                "path": path.relative_to(run_dir).as_posix(),
                "rows": rows,
                "columns": columns,
                "bytes": path.stat().st_size,
            }
        )
    summary_path = art_dir / SUMMARY_FILE
    if summary_path.is_file():
        summary_rel = summary_path.relative_to(run_dir).as_posix()
        try:
            loaded = json.loads(summary_path.read_text(encoding="utf-8"))
            summary = loaded if isinstance(loaded, dict) else {"value": loaded}
        except ValueError:
            summary = None
    return tables, summary, summary_rel


def _new_run_dir(out: Path, run_id: str | None, suite: str) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    if run_id is not None:
        if not _NAME_RE.match(run_id) or run_id in ("latest", "index.html"):
            msg = (
                f"run_id {run_id!r} is not a valid folder name: use letters, digits, '_', '-' or '.', "
                "starting with a letter or digit, and not 'latest'"
            )
            raise ValueError(msg)
        run_dir = out / run_id
        try:
            run_dir.mkdir()
        except FileExistsError:
            msg = f"report folder {run_dir} already exists; choose another run_id or delete that folder"
            raise JourneyLibError(msg) from None
        return run_dir
    base = f"{_now():%Y%m%d-%H%M%S}-{suite}"
    for n in range(1, 100):
        run_dir = out / (base if n == 1 else f"{base}-{n}")
        try:
            run_dir.mkdir()
        except FileExistsError:
            continue
        return run_dir
    msg = f"cannot create a new run folder {base} under {out}: 99 runs in the same second already exist"
    raise JourneyLibError(msg)


def _point_latest(out: Path, run_dir: Path) -> Path | None:
    """Make ``<out>/latest`` point at *run_dir*: an atomic symlink swap, else a redirect page."""
    link = out / "latest"
    tmp = out / f".latest.{os.getpid()}.tmp"
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    try:
        os.symlink(run_dir.name, tmp, target_is_directory=True)
        if link.is_dir() and not link.is_symlink():
            _remove_latest_fallback(link)
        os.replace(tmp, link)
        return link
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        logger.info("cannot make %s a symlink (%s); writing a redirect page instead", link, exc)
    try:
        if link.is_symlink() or link.is_file():
            link.unlink()
        link.mkdir(exist_ok=True)
        target = f"../{run_dir.name}/index.html"
        page = (
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="refresh" content="0; url={target}"><title>Latest report</title></head>'
            f'<body><p>Latest report: <a href="{target}">{run_dir.name}</a></p></body></html>\n'
        )
        (link / "index.html").write_text(page, encoding="utf-8")
        (link / "RUN_ID").write_text(run_dir.name + "\n", encoding="utf-8")
        return link
    except OSError as exc:
        logger.warning("could not update %s to point at %s: %s", link, run_dir, exc)
        return None


def _remove_latest_fallback(link: Path) -> None:
    names = {p.name for p in link.iterdir()}
    if names <= {"index.html", "RUN_ID"}:
        shutil.rmtree(link)
    else:
        msg = f"{link} is a folder with other files than a redirect page; move it away so `latest` can be a link"
        raise OSError(msg)


def _jinja() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(_TEMPLATES)),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.ChainableUndefined,
    )
    env.filters["tojson_compact"] = lambda v: json.dumps(v, ensure_ascii=False)
    return env


def _write_run_index(run_dir: Path, manifest: Mapping[str, Any]) -> Path:
    page = _jinja().get_template("report_index.html.j2").render(m=manifest)
    path = run_dir / "index.html"
    tmp = path.with_name(f".index.html.{os.getpid()}.tmp")
    tmp.write_text(page, encoding="utf-8")
    os.replace(tmp, path)
    return path


def _write_runs_index(out: Path) -> Path:
    runs = []
    for manifest_path in sorted(out.glob("*/manifest.json"), reverse=True):
        if manifest_path.parent.is_symlink():
            continue
        try:
            m = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        runs.append(m)
    runs.sort(key=lambda m: str(m.get("started_at") or ""), reverse=True)
    page = _jinja().get_template("reports_index.html.j2").render(runs=runs)
    path = out / "index.html"
    tmp = path.with_name(f".index.html.{os.getpid()}.tmp")
    tmp.write_text(page, encoding="utf-8")
    os.replace(tmp, path)
    return path


def _html_header(manifest: Mapping[str, Any], record: Mapping[str, Any]) -> dict[str, Any]:
    facts = {
        "Suite": manifest["suite"],
        "Run": manifest["run_id"],
        "Notebook": f"{record['notebook']}.ipynb"
        + (f" (parameter set {record['parameter_set']})" if record["parameter_set"] else ""),
        "Data": f"{record['db']} (fingerprint {record['fingerprint']})",
        "Executed": f"{record['started_at']} UTC, {record['timings'].get('execute', 0):.1f} s",
        "journeylib": str(manifest["versions"].get("journeylib")),
    }
    if record.get("error"):
        facts["Error"] = record["error"]["message"]
    return {
        "title": f"{record['name']} — {manifest['suite']} {manifest['run_id']}",
        "status": record["status"],
        "facts": facts,
        "parameters": {k: json.dumps(v, ensure_ascii=False) for k, v in record["parameters"].items()},
    }


def _run_one(
    item: PlannedNotebook,
    *,
    index: int,
    run_dir: Path,
    manifest: dict[str, Any],
    notebooks_dir: Path,
    execution_timeout: int,
) -> NotebookFailure | None:
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    record = manifest["notebooks"][index]
    folder = run_dir / item.name
    folder.mkdir(parents=True, exist_ok=True)
    out_nb = folder / f"{item.name}.ipynb"
    out_html = folder / f"{item.name}.html"
    params = dict(item.parameters)
    if item.writes_artifacts:
        params["output_dir"] = str(folder.resolve())
        record["parameter_sources"]["output_dir"] = "runner"
    record["parameters"] = params
    record["status"] = "running"
    started = _now()
    record["started_at"] = _iso(started)
    env = {"REPORT_CHART_MODE": CHART_MODE, "JOURNEYLIB_DB": str(item.db)}

    failure: NotebookFailure | None = None
    t0 = time.perf_counter()
    try:
        pm.execute_notebook(
            _pm_path(item.path),
            _pm_path(out_nb),
            parameters=params,
            kernel_name=KERNEL_NAME,
            cwd=str(notebooks_dir),
            execution_timeout=execution_timeout,
            start_timeout=120,
            progress_bar=False,
            log_output=False,
            kernel_manager_class=_kernel_manager_class(env),
        )
    except PapermillExecutionError as exc:
        failure = _failure_from_notebook(out_nb, name=item.name, source=item.path, ename=exc.ename, evalue=exc.evalue)
    except Exception as exc:  # timeouts, a dead kernel, a kernel that does not start
        ename, evalue = type(exc).__name__, " ".join(str(exc).split())[:500]
        if isinstance(exc, TimeoutError) and "timed out" in str(exc):
            evalue = (
                f"the cell ran longer than execution_timeout={execution_timeout} s and was interrupted; "
                "make it faster (e.g. a smaller sample_n) or raise execution_timeout"
            )
        if out_nb.is_file():
            failure = _failure_from_notebook(
                out_nb, name=item.name, source=item.path, ename=ename, evalue=evalue, keep_error=True
            )
        else:
            failure = NotebookFailure(name=item.name, source=item.path, stage="execute", ename=ename, evalue=evalue)
    execute_seconds = time.perf_counter() - t0
    record["timings"] = {"execute": round(execute_seconds, 3)}
    record["files"]["notebook"] = out_nb.relative_to(run_dir).as_posix() if out_nb.is_file() else None
    if failure is not None:
        record["status"] = "failed"
        record["error"] = failure.to_dict()

    t1 = time.perf_counter()
    if out_nb.is_file():
        if failure is None:
            record["status"] = "succeeded"
        try:
            write_report_html(
                out_nb, out_html, title=f"{item.name} — {manifest['suite']}", header=_html_header(manifest, record)
            )
            record["files"]["html"] = out_html.relative_to(run_dir).as_posix()
        except Exception as exc:  # nbconvert/template problems must not hide the run's other results
            html_failure = NotebookFailure(
                name=item.name,
                source=item.path,
                stage="html",
                ename=type(exc).__name__,
                evalue=str(exc)[:500],
                executed_notebook=out_nb,
            )
            if failure is None:
                failure = html_failure
                record["status"] = "failed"
                record["error"] = failure.to_dict()
    record["timings"]["html"] = round(time.perf_counter() - t1, 3)
    tables, summary, summary_rel = _list_artifacts(folder, run_dir)
    record["files"]["artifacts"] = tables
    record["files"]["summary"] = summary_rel
    record["summary"] = summary
    finished = _now()
    record["finished_at"] = _iso(finished)
    record["seconds"] = round((finished - started).total_seconds(), 3)
    return failure


def run_report(
    suite: str | os.PathLike[str] | SuiteConfig | Mapping[str, Any],
    *,
    db: str | os.PathLike[str] | None = None,
    out: str | os.PathLike[str] = "reports",
    run_id: str | None = None,
    notebooks_dir: str | os.PathLike[str] = "notebooks",
    parameters_dir: str | os.PathLike[str] = "parameters",
    overrides: Mapping[str, Any] | None = None,
    execution_timeout: int = 300,
) -> Path:
    """Run a report suite: execute its notebooks with Papermill and write the report folder.

    The suite is validated completely before anything runs (see
    :func:`plan_report`). Each notebook then runs in a fresh ``python3``
    kernel of this interpreter, with the notebooks folder as working
    directory and the environment variables ``REPORT_CHART_MODE=static``
    (charts as inline SVG) and ``JOURNEYLIB_DB`` (the absolute store path).
    Notebooks that declare ``output_dir`` get their own report folder there,
    to save artifacts with :func:`journeylib.reports.artifacts.write_artifacts`. A
    failing notebook does not stop the others: every failure is reported at
    the end.

    Parameters
    ----------
    suite : str, os.PathLike, SuiteConfig or mapping
        A suite name (``"demo"`` -> ``<parameters_dir>/demo.yaml``), a path to
        a suite file, a :class:`SuiteConfig` or a dict.
    db : str or os.PathLike, optional
        The store (highest precedence); default: the suite's ``db``, else
        ``JOURNEYLIB_DB``, else ``data/journeylib.duckdb`` found from the
        working directory.
    out : str or os.PathLike, default "reports"
        Folder that receives ``<run-id>/``, ``latest`` and ``index.html``.
    run_id : str, optional
        The run folder name; default UTC ``YYYYmmdd-HHMMSS-<suite>``. An
        existing folder is never overwritten.
    notebooks_dir : str or os.PathLike, default "notebooks"
        Where the notebooks are; also the kernels' working directory.
    parameters_dir : str or os.PathLike, default "parameters"
        Where suites and parameter sets are.
    overrides : mapping, optional
        Command-line parameters; they win over the suite (see
        :func:`plan_report`).
    execution_timeout : int, default 300
        Seconds one cell may run before the notebook is failed.

    Returns
    -------
    pathlib.Path
        The run folder ``<out>/<run-id>``.

    Raises
    ------
    ConfigError
        If the suite, a parameter set or a parameter is invalid (nothing runs).
    JourneyLibError
        If the store cannot be opened (nothing runs), or the run folder exists.
    ReportError
        If any notebook failed, after all of them ran; it lists each failure
        (notebook, cell, error) and the run folder. ``manifest.json`` and
        ``index.html`` are written and ``latest`` points at the run.

    Examples
    --------
    >>> run_dir = run_report("demo", db="data/journeylib.duckdb")  # doctest: +SKIP
    >>> (run_dir / "manifest.json").exists()  # doctest: +SKIP
    True
    """
    if not isinstance(execution_timeout, int) or isinstance(execution_timeout, bool) or execution_timeout <= 0:
        msg = f"execution_timeout must be a positive number of seconds, got {execution_timeout!r}"
        raise ValueError(msg)
    plan = plan_report(suite, db=db, notebooks_dir=notebooks_dir, parameters_dir=parameters_dir, overrides=overrides)
    fingerprints = {store: _fingerprint(store) for store in dict.fromkeys(item.db for item in plan.notebooks)}

    out_dir = Path(out).expanduser().resolve()
    run_dir = _new_run_dir(out_dir, run_id, plan.suite.name)
    started = _now()
    first_db = plan.notebooks[0].db
    manifest: dict[str, Any] = {
        "manifest_version": 1,
        "suite": plan.suite.name,
        "description": plan.suite.description,
        "suite_file": str(plan.suite_file) if plan.suite_file else None,
        "run_id": run_dir.name,
        "status": "running",
        "started_at": _iso(started),
        "finished_at": None,
        "seconds": None,
        "data": {"db": str(first_db), "fingerprint": fingerprints[first_db]},
        "versions": _versions(),
        "git_commit": _git_commit(plan.notebooks_dir),
        "platform": platform.platform(),
        "execution": {
            "kernel": KERNEL_NAME,
            "python": sys.executable,
            "chart_mode": CHART_MODE,
            "execution_timeout": execution_timeout,
            "notebooks_dir": str(plan.notebooks_dir),
            "parameters_dir": str(plan.parameters_dir),
            "overrides": plan.overrides,
            "shared": plan.suite.shared,
        },
        "notebooks": [
            {
                "name": item.name,
                "notebook": item.notebook,
                "source": str(item.path),
                "parameter_set": item.parameter_set,
                "parameter_set_file": str(item.parameter_set_file) if item.parameter_set_file else None,
                "parameters": dict(item.parameters),
                "parameter_sources": dict(item.sources),
                "defaults": {
                    name: info.get("default")
                    for name, info in item.declared.items()
                    if name not in item.parameters and not (name == "output_dir" and item.writes_artifacts)
                },
                "db": str(item.db),
                "fingerprint": fingerprints[item.db],
                "status": "pending",
                "started_at": None,
                "finished_at": None,
                "seconds": None,
                "timings": {},
                "files": {"notebook": None, "html": None, "artifacts": [], "summary": None},
                "summary": None,
                "error": None,
            }
            for item in plan.notebooks
        ],
    }
    manifest_path = run_dir / "manifest.json"
    _write_json(manifest_path, manifest)
    _write_run_index(run_dir, manifest)

    failures: list[NotebookFailure] = []
    total = len(plan.notebooks)
    try:
        for i, item in enumerate(plan.notebooks):
            logger.info("report %s: running %s (%d/%d)", run_dir.name, item.name, i + 1, total)
            failure = _run_one(
                item,
                index=i,
                run_dir=run_dir,
                manifest=manifest,
                notebooks_dir=plan.notebooks_dir,
                execution_timeout=execution_timeout,
            )
            if failure is not None:
                failures.append(failure)
                logger.warning("report %s: %s", run_dir.name, failure.describe())
            _write_json(manifest_path, manifest)
            _write_run_index(run_dir, manifest)
        manifest["status"] = "failed" if failures else "succeeded"
    except BaseException:
        manifest["status"] = "interrupted"
        raise
    finally:
        finished = _now()
        manifest["finished_at"] = _iso(finished)
        manifest["seconds"] = round((finished - started).total_seconds(), 3)
        _write_json(manifest_path, manifest)
        _write_run_index(run_dir, manifest)
        _point_latest(out_dir, run_dir)
        _write_runs_index(out_dir)
    logger.info("report %s: %s in %.1f s -> %s", run_dir.name, manifest["status"], manifest["seconds"], run_dir)
    if failures:
        raise ReportError(failures, suite=plan.suite.name, run_dir=run_dir, total=total)
    return run_dir
