"""Planning a report run: resolve the suite, inspect each notebook's parameters, validate and layer them.

:func:`plan_report` reads a suite (:class:`journeylib.config.suite.SuiteConfig`),
finds its notebooks and parameter sets, reads each notebook's declared
parameters (``papermill.inspect_notebook``, completed by Python's own parser)
and resolves what each notebook gets, without running anything.

Parameter precedence, lowest to highest: the notebook's own defaults <
``shared`` < the parameter set < the suite entry's ``parameters`` < the
command-line ``overrides`` (``db=`` and ``engine=`` included). The runner
itself sets ``output_dir`` (the notebook's folder) and ``db`` (the absolute
store path) for the notebooks that declare them; with an ``engine`` (an
``engine.yaml``, :mod:`journeylib.reports.engine`) it sets ``engine`` (the
absolute file path) and an empty ``db`` instead.
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import io
import os
import tokenize
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from journeylib.config.loader import read_yaml
from journeylib.config.suite import SuiteConfig, SuiteNotebook, clean_parameter_value
from journeylib.exceptions import ConfigError
from journeylib.reports.engine import check_engine_file
from journeylib.store import resolve_db_path

__all__ = [
    "RUNNER_PARAMETERS",
    "NotebookParameterWarning",
    "PlannedNotebook",
    "ReportPlan",
    "apply_sample",
    "papermill_path",
    "plan_report",
    "resolve_sample",
]

#: Parameters the runner sets itself in every notebook that declares them.
RUNNER_PARAMETERS = ("db", "engine", "output_dir")


class NotebookParameterWarning(UserWarning):
    """A notebook's ``parameters`` cell has a line Papermill cannot parse."""


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
    db : pathlib.Path or None
        Absolute path of the DuckDB store the notebook reads (also given to
        the kernel as ``JOURNEYLIB_DB``): the ``db`` parameter's, or the
        ``db`` of an ``engine: duckdb`` configuration; None when it reads
        through ``engine: spark``.
    engine : pathlib.Path or None
        Absolute path of the engine configuration (``engine.yaml``) the
        notebook opens its store from; None when it reads *db* directly.
    engine_kind : str or None
        That configuration's ``engine``: ``"duckdb"`` or ``"spark"``.
    """

    name: str
    notebook: str
    path: Path
    parameter_set: str | None
    parameter_set_file: Path | None
    parameters: dict[str, Any]
    sources: dict[str, str]
    declared: dict[str, dict[str, Any]]
    db: Path | None
    engine: Path | None = None
    engine_kind: str | None = None

    @property
    def writes_artifacts(self) -> bool:
        """Whether the notebook declares ``output_dir`` (so it can save artifacts)."""
        return "output_dir" in self.declared

    @property
    def data_key(self) -> Path:
        """The file that names the notebook's data: its engine configuration, else its DuckDB store."""
        if self.engine is not None:
            return self.engine
        if self.db is None:  # plan_report gives every notebook one or the other
            msg = f"planned notebook {self.name!r} has neither a store (db) nor an engine configuration"
            raise ValueError(msg)
        return self.db


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


def papermill_path(path: Path) -> str:
    """Return *path* for Papermill, which formats paths with the parameters (``{name}``): escape braces.

    Parameters
    ----------
    path : pathlib.Path
        A notebook path.

    Returns
    -------
    str
        The path with ``{`` and ``}`` doubled.

    Examples
    --------
    >>> papermill_path(Path("a{b}.ipynb"))
    'a{{b}}.ipynb'
    """
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
        found = inspect_notebook(papermill_path(path))
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


def _value(item: PlannedNotebook, name: str, missing: Any = None) -> Any:
    """Return the value *name* will have in the notebook: injected, else its declared default, else *missing*."""
    if name in item.parameters:
        return item.parameters[name]
    info = item.declared.get(name)
    if info is None:
        return missing
    try:
        return ast.literal_eval(str(info.get("default") or ""))
    except (ValueError, SyntaxError):
        return missing


#: Parameters naming a configuration file the notebook loads, checked before any notebook starts:
#: parameter -> (what it is, the ``module:Class`` whose ``load`` reads it).
CONFIG_FILE_PARAMETERS: dict[str, tuple[str, str]] = {
    "definition": ("journey definition", "journeylib.config.journey:JourneyDefinition"),
    "rules": ("alert rules", "journeylib.config.alerts:AlertRules"),
}


def _check_config_files(index: int, item: PlannedNotebook, nb_dir: Path, seen: dict[tuple[str, str], int | None]) -> list[str]:
    """Load the configuration files the notebook will load (journey definition, alert rules), as its kernel would.

    *seen* maps (parameter, value) to the index of the first notebook whose
    file failed (None: it loaded), so a file shared by several notebooks is
    read and reported once.
    """
    import importlib

    problems: list[str] = []
    for name, (what, target) in CONFIG_FILE_PARAMETERS.items():
        if name not in item.declared:
            continue
        value = _value(item, name)
        if not isinstance(value, str) or not value:
            continue
        source = item.sources.get(name)
        origin = f"{source} ({item.parameter_set_file})" if source and source.startswith("set:") else source or "the notebook's default"
        where = f"notebooks[{index}] ({item.notebook}): parameter `{name}` = {value!r} from {origin}"
        key = (name, value)
        if key in seen:
            if seen[key] is not None:
                problems.append(f"{where}: the same {what} problems as notebooks[{seen[key]}] above")
            continue
        seen[key] = None
        module_name, class_name = target.split(":")
        loader = getattr(importlib.import_module(module_name), class_name)
        try:
            with contextlib.chdir(nb_dir):  # the kernel's working directory: relative paths resolve as they will there
                loader.load(value)
        except ConfigError as exc:
            seen[key] = index
            file = f"; {what} file {exc.source}" if exc.source and exc.source != value else f" ({what})"
            problems.extend(f"{where}{file}: {p}" for p in exc.problems)
    return problems


def _declared_list(declared: Mapping[str, Any]) -> str:
    return ", ".join(declared) if declared else "none (the notebook has no cell tagged `parameters`)"


def plan_report(
    suite: str | os.PathLike[str] | SuiteConfig | Mapping[str, Any],
    *,
    db: str | os.PathLike[str] | None = None,
    engine: str | os.PathLike[str] | None = None,
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
    engine : str or os.PathLike, optional
        An engine configuration (``engine.yaml``,
        :class:`journeylib.config.engine.EngineConfig`) the notebooks open
        their store from, e.g. ``engine: spark``; highest precedence (like a
        command-line ``--engine``); a suite or parameter set may also give
        ``engine``. A notebook with an engine gets ``engine`` (the absolute
        path; relative to the working directory) and an empty ``db``; each
        must declare ``engine``. The file is validated here
        (:func:`journeylib.reports.engine.check_engine_file`). ``db`` and
        ``engine`` together are refused.
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
        notebook's declared parameters), a value of the wrong type, both
        ``db`` and ``engine``, an invalid engine configuration (naming the
        file, key and line), or an engine for a notebook that does not
        declare ``engine``.
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
            clean_overrides[key] = clean_parameter_value(value, f"overrides.{key}", override_problems)
        problems.extend(override_problems)
    if db is not None and str(db) != "":
        clean_overrides["db"] = os.fspath(db)
    if engine is not None and str(engine) != "":
        if "db" in clean_overrides:
            msg = (
                f"db {os.fspath(clean_overrides['db'])!r} and engine {os.fspath(engine)!r} are both given; give one: a DuckDB "
                "store file (--db) or an engine.yaml (--engine; an engine.yaml with engine: duckdb names its store in its own db key)"
            )
            raise ConfigError([msg], where)
        clean_overrides["engine"] = os.fspath(engine)

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
                    raw = read_yaml(set_file, what="parameter set").data
                except ConfigError as exc:
                    problems.extend(f"{set_file}: {p}" for p in exc.problems)
                    raw = {}
                if raw is not None and not isinstance(raw, dict):
                    problems.append(f"{set_file}: must be a mapping of parameter name to value")
                    raw = {}
                set_problems: list[str] = []
                for key, value in (raw or {}).items():
                    set_values[str(key)] = clean_parameter_value(value, f"{set_file}: {key}", set_problems)
                problems.extend(set_problems)
        inspected.append((entry, nb_path, declared, set_file, set_values))

    # Suite-wide keys (shared, overrides) must belong to at least one notebook.
    all_declared: set[str] = set()
    for _, _, declared, _, _ in inspected:
        all_declared.update(declared or {})
    if all(d is not None for _, _, d, _, _ in inspected):
        for scope, values in (("shared", config.shared), ("overrides", clean_overrides)):
            for key in values:
                if key not in all_declared and key not in ("db", "engine"):  # the runner's store: checked per notebook below
                    problems.append(
                        f"{scope}.{key}: not a parameter of any notebook of the suite; declared are: "
                        f"{', '.join(sorted(all_declared)) or 'none'}"
                    )

    planned: list[tuple[PlannedNotebook, tuple[str, str] | None, tuple[str, str] | None]] = []
    for i, (entry, nb_path, declared, set_file, set_values) in enumerate(inspected):
        if declared is None:
            continue
        params: dict[str, Any] = {}
        sources: dict[str, str] = {}
        db_choice: tuple[str, str] | None = None  # the highest-precedence non-empty `db`, and where it came from
        engine_choice: tuple[str, str] | None = None  # the same for `engine`
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
                if key == "engine" and value not in ("", None):
                    if isinstance(value, str):
                        engine_choice = (source, value)
                    else:
                        problems.append(f"{label}: engine must be the path of an engine.yaml (a string), got {value!r}")
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
            db=None,  # resolved below, once the configuration is known to be valid
        )
        where_nb = f"notebooks[{i}] ({entry.notebook})"
        if db_choice and engine_choice:
            problems.append(
                f"{where_nb}: db {db_choice[1]!r} (from {db_choice[0]}) and engine {engine_choice[1]!r} (from "
                f"{engine_choice[0]}) are both given; give one: a DuckDB store file (db, --db) or an engine.yaml "
                "(engine, --engine; an engine.yaml with engine: duckdb names its store in its own db key)"
            )
        if engine_choice and "engine" not in declared:
            problems.append(
                f"{where_nb}: engine {engine_choice[1]!r} (from {engine_choice[0]}) is given but notebook "
                f"{nb_path} declares no `engine` parameter, so it would read the DuckDB store instead; add "
                '`engine: str = ""  # engine.yaml (DuckDB file or Spark); empty means db` to its parameters cell '
                "or leave it out of the suite"
            )
        planned.append((item, db_choice, engine_choice))
    if problems:
        raise ConfigError(problems, where)

    # Journey definitions and alert rules are loaded now, so a broken one stops the run before any kernel starts.
    seen: dict[tuple[str, str], int | None] = {}
    for i, (item, _, _) in enumerate(planned):
        problems.extend(_check_config_files(i, item, nb_dir, seen))
    # Engine configurations are validated now too, each once, as the kernels will read them.
    engines: dict[Path, Any] = {}
    for _, _, engine_choice in planned:
        if engine_choice is None:
            continue
        engine_path = Path(engine_choice[1]).expanduser().resolve()
        if engine_path in engines:
            continue
        if not engine_path.is_file():
            problems.append(
                f"engine {engine_choice[1]!r} (from {engine_choice[0]}): no such file {engine_path}; give an "
                "engine.yaml (engine: duckdb | spark, see docs/spark.md)"
            )
            engines[engine_path] = None
            continue
        engines[engine_path], engine_problems = check_engine_file(engine_path, notebooks_dir=nb_dir)
        problems.extend(engine_problems)
    if problems:
        raise ConfigError(problems, where)

    resolved: list[PlannedNotebook] = []
    for item, db_choice, engine_choice in planned:
        params = dict(item.parameters)
        sources = dict(item.sources)
        if engine_choice is not None:
            # Relative paths are relative to the working directory of the caller, not of the kernel.
            engine_path = Path(engine_choice[1]).expanduser().resolve()
            engine_config = engines[engine_path]
            store = resolve_db_path(engine_config.db) if engine_config.engine == "duckdb" else None
            params["engine"] = str(engine_path)
            sources["engine"] = engine_choice[0]
            if "db" in item.declared:
                params["db"] = ""
                sources["db"] = "runner"
            resolved.append(
                dataclasses.replace(
                    item, db=store, engine=engine_path, engine_kind=engine_config.engine, parameters=params, sources=sources
                )
            )
            continue
        store = resolve_db_path(db_choice[1] if db_choice else None)
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


def resolve_sample(sample: float | int, customers: int) -> int:
    """Return how many customers a ``--sample`` request means for a store of *customers* customers.

    Parameters
    ----------
    sample : float or int
        A share of the customers, a float ``0 < sample < 1`` (``0.1``: a
        tenth), or a number of customers, an int ``>= 1`` (``5000``). A
        float of 1 or more is refused: ``1.0`` could mean either.
    customers : int
        How many customers the store has.

    Returns
    -------
    int
        The sample size: ``round(sample * customers)`` (at least 1) for a
        share, ``min(sample, customers)`` for a number.

    Raises
    ------
    ValueError
        If *sample* is neither a share in ``(0, 1)`` nor a whole number
        ``>= 1``.

    Examples
    --------
    >>> resolve_sample(0.1, 2000), resolve_sample(500, 2000), resolve_sample(5000, 2000)
    (200, 500, 2000)
    """
    if isinstance(sample, bool) or not isinstance(sample, (int, float)):
        msg = f"sample must be a share of the customers (0 < x < 1) or a number of customers (>= 1), got {sample!r}"
        raise TypeError(msg)
    if isinstance(sample, float) and 0 < sample < 1:
        return max(1, round(sample * customers))
    if isinstance(sample, int) and sample >= 1:
        return min(sample, customers)
    msg = (
        f"sample must be a share of the customers strictly between 0 and 1 (e.g. 0.1) or a whole number of "
        f"customers of at least 1 (e.g. 5000, an int), got {sample!r}"
    )
    raise ValueError(msg)


def apply_sample(plan: ReportPlan, sample: float | int, *, customers: int) -> tuple[ReportPlan, dict[str, Any]]:
    """Give every notebook of *plan* the same seeded customer sample (``journeylib report --sample``).

    The sample is injected as the notebooks' ``sample_n`` parameter, over
    every other source (its ``parameter_sources`` entry is ``sample``); the
    notebooks draw it with :class:`journeylib.scope.Scope` (customers ordered
    by a seeded hash of ``customer_id``, seed ``random_state``, 0 unless the
    notebook declares and sets it), so every notebook of the run analyses the
    same customers when their other filters agree.

    Parameters
    ----------
    plan : ReportPlan
        A validated plan.
    sample : float or int
        A share (``0 < x < 1``) or a number of customers (see :func:`resolve_sample`).
    customers : int
        How many customers the store has.

    Returns
    -------
    plan : ReportPlan
        The plan with ``sample_n`` set in every notebook.
    record : dict
        For the manifest: ``requested`` (*sample*), ``n`` (customers
        sampled), ``of_customers`` (*customers*), ``random_state`` (0) and
        ``note`` (a sentence when a number larger than the store was asked
        for, else None).

    Raises
    ------
    ConfigError
        If a notebook of the plan does not declare ``sample_n`` (it could
        not be sampled), or ``sample_n`` was also given as an override.
    """
    problems = [
        f"notebooks[{i}] ({item.notebook}, {item.path}): declares no `sample_n` parameter, so --sample cannot "
        f"apply to it; its parameters are: {_declared_list(item.declared)}. Add `sample_n: int = 0` to its "
        "parameters cell or leave it out of the suite"
        for i, item in enumerate(plan.notebooks)
        if "sample_n" not in item.declared
    ]
    if "sample_n" in plan.overrides:
        problems.append(
            f"overrides.sample_n: given together with --sample ({plan.overrides['sample_n']!r} and {sample!r}); give one"
        )
    if problems:
        raise ConfigError(problems, str(plan.suite_file) if plan.suite_file else f"suite {plan.suite.name!r}")
    n = resolve_sample(sample, customers)
    note = None
    if not isinstance(sample, float) and int(sample) > customers:
        note = f"a sample of {int(sample):,} customers was asked for but the store has {customers:,}: every customer is analysed"
    items = tuple(
        dataclasses.replace(
            item,
            parameters={**item.parameters, "sample_n": n},
            sources={**item.sources, "sample_n": "sample"},
        )
        for item in plan.notebooks
    )
    seeds = sorted({_value(item, "random_state", 0) for item in items}, key=repr)
    record = {
        "requested": sample,
        "n": n,
        "of_customers": customers,
        "random_state": seeds[0] if len(seeds) == 1 else seeds,
        "note": note,
    }
    return dataclasses.replace(plan, notebooks=items), record
