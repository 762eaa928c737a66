"""Machine-readable report artifacts: result tables as Parquet, a JSON summary.

A notebook run as a report receives an ``output_dir`` parameter (the report
runner sets it to the notebook's folder under ``reports/<run-id>/``) and calls
:func:`write_artifacts` once, or a few times, with the tables it computed and a
small summary. Everything lands in ``<output_dir>/artifacts/``::

    <output_dir>/artifacts/
        <table>.parquet      one file per result table
        summary.json         headline numbers, JSON-safe

Run interactively (``output_dir=""``) the call does nothing, so the same
notebook works in JupyterLab, Voila and Papermill. :func:`read_artifacts`
loads them back, for tests, other notebooks, or a downstream job.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import enum
import html
import json
import math
import os
import re
import sys
import uuid
from collections.abc import Mapping
from pathlib import Path, PurePath
from typing import Any

import numpy as np
import pandas as pd

from journeylib.exceptions import JourneyLibError

__all__ = [
    "ARTIFACTS_DIR",
    "SUMMARY_FILE",
    "Artifacts",
    "SavedArtifacts",
    "artifacts_path",
    "atomic_write",
    "read_artifacts",
    "to_jsonable",
    "write_artifacts",
]

#: Sub-folder of ``output_dir`` that holds the artifacts.
ARTIFACTS_DIR = "artifacts"
#: File name of the JSON summary inside :data:`ARTIFACTS_DIR`.
SUMMARY_FILE = "summary.json"

_TABLE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$")


@dataclasses.dataclass(frozen=True)
class Artifacts:
    """Artifacts read back from a report folder.

    Attributes
    ----------
    path : pathlib.Path
        The ``artifacts`` folder they were read from.
    tables : dict of str to pandas.DataFrame
        One frame per ``<name>.parquet`` file, keyed by name, in name order.
    summary : dict
        The contents of ``summary.json`` (empty if there is none).
    """

    path: Path
    tables: dict[str, pd.DataFrame]
    summary: dict[str, Any]


class SavedArtifacts(list[Path]):
    """The files :func:`write_artifacts` wrote: a plain list of paths that displays as one line.

    In a notebook the call is usually the last line of its cell; this keeps the
    report (and the dashboard, where nothing is written) free of a list of
    ``PosixPath(...)`` reprs.
    """

    def _ipython_display_(self) -> None:
        if not self:
            return  # not run as a report: show nothing
        from IPython.display import display

        tables = [p for p in self if p.suffix == ".parquet"]
        folder = self[0].parent
        # The folder by its name, beside the report page: a machine path means nothing to a reader of the report.
        text = f"Saved {len(tables)} table(s) and {SUMMARY_FILE} to {folder.name}/ beside this report"
        html_text = (
            f"Saved {len(tables)} table(s) and <code>{SUMMARY_FILE}</code> to <code>{html.escape(folder.name)}/</code>"
            " beside this report"
        )
        display({"text/plain": text, "text/html": f"<p>{html_text}</p>"}, raw=True)


def _is_empty(output_dir: str | os.PathLike[str] | None) -> bool:
    return output_dir is None or (isinstance(output_dir, str) and output_dir.strip() == "")


def artifacts_path(output_dir: str | os.PathLike[str]) -> Path:
    """Return the folder that holds the artifacts of *output_dir*.

    Parameters
    ----------
    output_dir : str or os.PathLike
        A notebook's output folder (the ``output_dir`` parameter).

    Returns
    -------
    pathlib.Path
        ``<output_dir>/artifacts``.
    """
    return Path(output_dir).expanduser() / ARTIFACTS_DIR


def to_jsonable(value: Any, *, where: str = "value") -> Any:
    """Convert *value* into plain JSON types (dict, list, str, int, float, bool, None).

    Handles what notebooks typically put in a summary: numpy and pandas
    scalars, timestamps and dates (ISO 8601 strings), timedeltas (ISO 8601
    durations), ``NaN``/``NaT``/``pd.NA``/infinities (``None``, i.e. JSON
    ``null``), ``Decimal``, ``Path``, enums, sets (sorted lists), numpy
    arrays, pandas Series (dict keyed by index), dataclasses and pydantic
    models.

    Parameters
    ----------
    value : object
        The value to convert; containers are converted recursively.
    where : str, default "value"
        How to name *value* in an error message (e.g. ``"summary"``).

    Returns
    -------
    object
        A value ``json.dumps(..., allow_nan=False)`` accepts.

    Raises
    ------
    TypeError
        If something cannot be represented in JSON (e.g. a DataFrame, or an
        arbitrary object); the message names its place, like
        ``summary['top'][2]``.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> to_jsonable({"n": np.int64(3), "share": float("nan"), "at": pd.Timestamp("2024-03-01", tz="UTC")})
    {'n': 3, 'share': None, 'at': '2024-03-01T00:00:00+00:00'}
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (pd.DataFrame, pd.Index)):
        msg = (
            f"{where}: cannot store a {type(value).__name__} in a JSON summary. "
            "Pass result tables in `tables=` (they are written as Parquet) and keep "
            "the summary to headline numbers."
        )
        raise TypeError(msg)
    if isinstance(value, pd.Series):
        return {str(to_jsonable(k, where=where)): to_jsonable(v, where=f"{where}[{k!r}]") for k, v in value.items()}
    if value is pd.NaT or value is pd.NA:
        return None
    if isinstance(value, np.datetime64):
        stamp = pd.Timestamp(value)
        return None if pd.isna(stamp) else stamp.isoformat()
    if isinstance(value, np.timedelta64):
        delta = pd.Timedelta(value)
        return None if pd.isna(delta) else delta.isoformat()
    if isinstance(value, np.generic):
        return to_jsonable(value.item(), where=where)
    if isinstance(value, (pd.Timestamp, dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, (pd.Timedelta, dt.timedelta)):
        return pd.Timedelta(value).isoformat()
    if isinstance(value, decimal.Decimal):
        return to_jsonable(float(value), where=where)
    if isinstance(value, enum.Enum):
        return to_jsonable(value.value, where=where)
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, np.ndarray):
        return [to_jsonable(v, where=f"{where}[{i}]") for i, v in enumerate(value.tolist())]
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            json_key = to_jsonable(key, where=f"{where} key {key!r}")
            out[json_key if isinstance(json_key, str) else json.dumps(json_key)] = to_jsonable(
                item, where=f"{where}[{key!r}]"
            )
        return out
    if isinstance(value, (set, frozenset)):
        items = [to_jsonable(v, where=where) for v in value]
        try:
            return sorted(items)
        except TypeError:
            return sorted(items, key=repr)
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v, where=f"{where}[{i}]") for i, v in enumerate(value)]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_jsonable(dataclasses.asdict(value), where=where)
    model_dump = getattr(value, "model_dump", None)
    if callable(model_dump):
        return to_jsonable(model_dump(mode="json"), where=where)
    msg = (
        f"{where}: cannot store an object of type {type(value).__name__} in JSON. "
        "Allowed are numbers, strings, booleans, None, dates/timestamps, lists and dicts of "
        "those; convert it first (e.g. str(obj) or float(obj))."
    )
    raise TypeError(msg)


def atomic_write(path: str | os.PathLike[str], data: str | bytes) -> Path:
    """Write *data* to *path* all at once: a reader sees the old file or the new one, never a part.

    The data go to a temporary file beside *path*, named for this writer
    alone (process id and a random part: two threads of one process, e.g.
    two notebook jobs of a report run writing the run's glossary, do not
    share it), which then replaces *path*. The temporary file is removed if
    the write fails.

    Parameters
    ----------
    path : str or os.PathLike
        The file to write.
    data : str or bytes
        The content; text is written as UTF-8.

    Returns
    -------
    pathlib.Path
        *path*.
    """
    out = Path(path)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    try:
        tmp.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return out


def _check_tables(tables: Mapping[str, Any]) -> None:
    problems = []
    for name, frame in tables.items():
        if not isinstance(name, str) or not _TABLE_NAME.match(name):
            problems.append(
                f"table name {name!r} is not a valid file name: use letters, digits, '_', '-' "
                "or '.', not starting with '.' or '-' (at most 100 characters)"
            )
            continue
        if not isinstance(frame, pd.DataFrame):
            problems.append(f"table {name!r} is a {type(frame).__name__}, not a pandas DataFrame")
            continue
        bad_cols = [c for c in frame.columns if not isinstance(c, str)]
        if bad_cols:
            problems.append(
                f"table {name!r} has non-string column names {bad_cols[:5]}; Parquet needs strings "
                "(rename them, e.g. frame.columns = frame.columns.map(str))"
            )
        if frame.columns.has_duplicates:
            dupes = sorted(set(frame.columns[frame.columns.duplicated()].map(str)))
            problems.append(f"table {name!r} has duplicate column names {dupes}")
    if problems:
        msg = "write_artifacts: cannot write the tables: " + "; ".join(problems) + "."
        raise ValueError(msg)


def write_artifacts(
    output_dir: str | os.PathLike[str] | None,
    *,
    tables: Mapping[str, pd.DataFrame],
    summary: Mapping[str, Any],
) -> SavedArtifacts:
    """Write a notebook's result tables and summary into ``<output_dir>/artifacts/``.

    Each table becomes ``<name>.parquet``; *summary* becomes ``summary.json``
    after :func:`to_jsonable` (numpy/pandas scalars become plain numbers,
    timestamps ISO strings, ``NaN`` ``null``). Files are written atomically
    (a temporary file renamed into place). Calling it again for the same
    folder adds or replaces tables and updates the summary's top-level keys,
    so a notebook may save its results in a few steps.

    Parameters
    ----------
    output_dir : str, os.PathLike or None
        The notebook's ``output_dir`` parameter. Empty (``""``) or None means
        "not run as a report": nothing is written.
    tables : mapping of str to pandas.DataFrame
        Result tables by name. Names are file names: letters, digits, ``_``,
        ``-`` and ``.``. Column names must be strings.
    summary : mapping
        Headline numbers and facts (counts, shares, dates, short lists).
        When the notebook's analysis context is a sample
        (:func:`journeylib.notebook.open_journey` with ``sample_n`` > 0) and
        the summary has no ``sample`` key, ``sample`` is added:
        :func:`journeylib.notebook.sample_info` (``n``, ``of_customers``,
        ``random_state``, ``sample_n``, ``note``).

    Returns
    -------
    SavedArtifacts
        A list of the files written (:class:`pathlib.Path`): the Parquet
        files in *tables* order, then ``summary.json``. Empty when
        *output_dir* is empty. In a notebook it displays as one line
        (nothing when empty).

    Raises
    ------
    ValueError
        If a table name is not a valid file name, or a frame has non-string
        or duplicate column names. Nothing is written then.
    TypeError
        If a table is not a DataFrame, or the summary holds something that
        has no JSON form (the message names the key). Nothing is written then.
    JourneyLibError
        If a table cannot be converted to Parquet (e.g. a column mixing
        numbers and strings); the message names the table.

    Examples
    --------
    >>> import pandas as pd, tempfile
    >>> out = tempfile.mkdtemp()
    >>> paths = write_artifacts(out, tables={"by_segment": pd.DataFrame({"segment": ["SMB"], "customers": [3]})},
    ...                         summary={"customers": 3})
    >>> [p.name for p in paths]
    ['by_segment.parquet', 'summary.json']
    >>> write_artifacts("", tables={}, summary={})
    []
    """
    if output_dir is None or _is_empty(output_dir):
        return SavedArtifacts()
    if not isinstance(tables, Mapping):
        msg = f"write_artifacts: tables must be a dict of name -> DataFrame, got {type(tables).__name__}"
        raise TypeError(msg)
    if not isinstance(summary, Mapping):
        msg = f"write_artifacts: summary must be a dict, got {type(summary).__name__}"
        raise TypeError(msg)
    non_df = [n for n, f in tables.items() if not isinstance(f, pd.DataFrame)]
    if non_df:
        kinds = ", ".join(f"{n!r} ({type(tables[n]).__name__})" for n in non_df)
        msg = f"write_artifacts: every table must be a pandas DataFrame; these are not: {kinds}"
        raise TypeError(msg)
    _check_tables(tables)
    summary = dict(summary)
    notebook = sys.modules.get("journeylib.notebook")  # loaded by open_journey; not imported here for a plain script
    sample = notebook.sample_info() if notebook is not None and hasattr(notebook, "sample_info") else None
    if sample is not None and "sample" not in summary:
        summary["sample"] = sample  # the customer sample the notebook's results were computed on
    json_summary = to_jsonable(summary, where="summary")

    folder = artifacts_path(output_dir)
    folder.mkdir(parents=True, exist_ok=True)
    written = SavedArtifacts()
    for name, frame in tables.items():
        path = folder / f"{name}.parquet"
        tmp = folder / f".{name}.{os.getpid()}.parquet.tmp"
        try:
            frame.to_parquet(tmp)
        except Exception as exc:  # pyarrow raises several unrelated types for one cause
            tmp.unlink(missing_ok=True)
            msg = (
                f"write_artifacts: cannot write table {name!r} as Parquet to {path}: {exc}. "
                "Columns must hold one type each; cast mixed columns (e.g. .astype(str))."
            )
            raise JourneyLibError(msg) from exc
        os.replace(tmp, path)
        written.append(path)

    summary_path = folder / SUMMARY_FILE
    merged: dict[str, Any] = {}
    if summary_path.exists():
        try:
            previous = json.loads(summary_path.read_text(encoding="utf-8"))
        except ValueError:
            previous = {}
        if isinstance(previous, dict):
            merged.update(previous)
    merged.update(json_summary)
    text = json.dumps(merged, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    atomic_write(summary_path, text)
    written.append(summary_path)
    return written


def read_artifacts(output_dir: str | os.PathLike[str], *, tables: list[str] | None = None) -> Artifacts:
    """Read back the artifacts :func:`write_artifacts` wrote.

    Parameters
    ----------
    output_dir : str or os.PathLike
        The notebook's output folder (e.g. ``reports/latest/00_data_health``);
        its ``artifacts`` sub-folder is read.
    tables : list of str, optional
        Read only these tables (default: all ``*.parquet`` files).

    Returns
    -------
    Artifacts
        ``path``, ``tables`` (name -> DataFrame) and ``summary`` (dict).

    Raises
    ------
    JourneyLibError
        If the folder has no ``artifacts`` sub-folder, or a requested table
        does not exist (the message lists the tables that do).

    Examples
    --------
    >>> import pandas as pd, tempfile
    >>> out = tempfile.mkdtemp()
    >>> _ = write_artifacts(out, tables={"t": pd.DataFrame({"x": [1, 2]})}, summary={"n": 2})
    >>> art = read_artifacts(out)
    >>> art.summary, len(art.tables["t"])
    ({'n': 2}, 2)
    """
    if _is_empty(output_dir):
        msg = "read_artifacts: output_dir is empty; pass the folder a report notebook wrote to"
        raise ValueError(msg)
    folder = artifacts_path(output_dir)
    if not folder.is_dir():
        msg = (
            f"read_artifacts: no artifacts folder at {folder}. Pass the notebook's output folder "
            "(e.g. reports/latest/<notebook>), the one given to the notebook as output_dir."
        )
        raise JourneyLibError(msg)
    available = {p.name[: -len(".parquet")]: p for p in sorted(folder.glob("*.parquet"))}
    wanted = list(available) if tables is None else list(tables)
    missing = [t for t in wanted if t not in available]
    if missing:
        msg = f"read_artifacts: no table(s) {missing} in {folder}; available: {sorted(available) or 'none'}"
        raise JourneyLibError(msg)
    frames = {name: pd.read_parquet(available[name]) for name in wanted}
    summary_path = folder / SUMMARY_FILE
    summary = json.loads(summary_path.read_text(encoding="utf-8")) if summary_path.exists() else {}
    return Artifacts(path=folder, tables=frames, summary=summary)
