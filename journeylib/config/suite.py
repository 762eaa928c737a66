"""Report suites: which notebooks a report runs, with which parameters.

A suite file ``parameters/<suite>.yaml`` names the notebooks to run, the
parameter set of each (``parameters/<notebook>/<set>.yaml``) and parameters
shared by all of them. :class:`SuiteConfig` validates it;
:func:`journeylib.reports.plan.plan_report` then checks every parameter
against the notebooks themselves.
"""

from __future__ import annotations

import datetime as dt
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from journeylib.config.loader import read_yaml, validate_config
from journeylib.exceptions import ConfigError

__all__ = ["NAME_PATTERN", "SuiteConfig", "SuiteNotebook", "clean_parameter_value"]

#: Names of suites, notebooks, parameter sets, output folders and run ids.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"

_SUITE_HINT = "e.g. `notebooks: [{notebook: 00_data_health, parameter_set: default}]`"
#: What is allowed, by pydantic error type, in suite messages.
_HINTS = {
    "string_pattern_mismatch": "not a valid name; use letters, digits, '_', '-' or '.', starting with a letter or digit",
    "too_short": f"the list is empty; name at least one notebook ({_SUITE_HINT})",
}


def clean_parameter_value(value: Any, where: str, problems: list[str]) -> Any:
    """Return *value* as a parameter Papermill can inject, or record a problem.

    Dates and times become ISO strings (as Papermill's YAML loader leaves
    them); lists and mappings are cleaned item by item.

    Parameters
    ----------
    value : object
        A parameter value (from a suite, a parameter set or the command line).
    where : str
        Its place, for messages (e.g. ``"overrides.as_of"``).
    problems : list of str
        Problems found are appended here (a non-finite float, a non-string
        mapping key, a value of another type).

    Returns
    -------
    object
        The cleaned value (the value itself when it has a problem).

    Examples
    --------
    >>> problems = []
    >>> clean_parameter_value({"as_of": dt.date(2024, 6, 30)}, "shared", problems), problems
    ({'as_of': '2024-06-30'}, [])
    """
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            problems.append(f"{where}: {value!r} is not allowed (use null or a finite number)")
        return value
    if isinstance(value, (dt.date, dt.datetime, dt.time)):
        return value.isoformat()  # papermill's YAML loader keeps dates as strings; so do we
    if isinstance(value, (list, tuple)):
        return [clean_parameter_value(v, f"{where}[{i}]", problems) for i, v in enumerate(value)]
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                problems.append(f"{where}: key {key!r} must be a string")
                continue
            out[key] = clean_parameter_value(item, f"{where}.{key}", problems)
        return out
    problems.append(
        f"{where}: a {type(value).__name__} cannot be a notebook parameter; "
        "use a string, number, boolean, null, list or mapping"
    )
    return value


def _clean_parameters(value: Any) -> dict[str, Any]:
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
        cleaned[key] = clean_parameter_value(item, key, problems)
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

    notebook: str = Field(pattern=NAME_PATTERN, description="notebook file name without .ipynb")
    parameter_set: str | None = Field(default="default", pattern=NAME_PATTERN)
    parameters: dict[str, Any] = Field(default_factory=dict)
    output_name: str | None = Field(default=None, pattern=NAME_PATTERN)

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
        return _clean_parameters(value)

    @property
    def name(self) -> str:
        """The entry's output folder name: ``output_name`` or the notebook name."""
        return self.output_name or self.notebook


class SuiteConfig(BaseModel):
    """A report suite: which notebooks run, with which parameters.

    Built with :meth:`from_yaml` from ``parameters/<suite>.yaml``::

        name: weekly                # optional; default: the file name
        description: Weekly CS review.
        keep_runs: 12               # optional; default: keep every run
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
    keep_runs : int, optional
        How many runs of this suite to keep in the reports folder (the
        newest, counting the run that just ended); older ones are deleted
        when a run ends. The run ``latest`` points at is never deleted.
        None (the default) keeps every run; ``journeylib report --keep N``
        wins over it.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=NAME_PATTERN)
    description: str = ""
    shared: dict[str, Any] = Field(default_factory=dict)
    notebooks: tuple[SuiteNotebook, ...] = Field(min_length=1)
    keep_runs: int | None = Field(default=None, ge=1, strict=True)

    @field_validator("shared", mode="before")
    @classmethod
    def _shared(cls, value: Any) -> dict[str, Any]:
        return _clean_parameters(value)

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

        The file is read with Papermill's YAML rules
        (:class:`journeylib.config.loader.NoDatesSafeLoader`), so unquoted
        dates (``as_of: 2024-06-30``) stay strings, exactly as ``papermill -f``
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
            Listing every problem at once: unknown keys (with their place, line
            and the allowed keys), missing keys, wrong types, a file that is
            not YAML or does not exist.

        Examples
        --------
        >>> SuiteConfig.from_yaml({"name": "demo", "notebooks": ["00_data_health"]}).notebooks[0].parameter_set
        'default'
        """
        if isinstance(source, Mapping):
            return validate_config(cls, dict(source), source="<dict>", hints=_HINTS)
        path = Path(source)
        doc = read_yaml(path, what="suite file")
        data = doc.data
        if data is None:
            raise ConfigError([f"the suite file is empty; it needs at least `notebooks:` ({_SUITE_HINT})"], doc.source)
        if not isinstance(data, dict):
            raise ConfigError([f"the suite must be a mapping of keys to values, got {type(data).__name__}"], doc.source)
        data.setdefault("name", path.stem)
        return validate_config(cls, data, source=doc.source, lines=doc.lines, hints=_HINTS)

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
