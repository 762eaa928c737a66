"""Writing and reading the synthetic world's files (Parquet or CSV).

Tables are written chunk by chunk through Arrow writers so that a world of
100,000 customers never has to sit in memory at once. Column names and order
come from :mod:`journeylib.store.schema`; timestamps are UTC (``timestamp[us, UTC]``
in Parquet, ISO-8601 text ending in ``Z`` in CSV) and ``properties`` is JSON
object text. The columns the simulation does not produce
(:data:`UNSIMULATED_COLUMNS`) are written empty, and read as empty from a
world written without them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from journeylib.exceptions import JourneyLibError
from journeylib.store.schema import ENTITY_TABLES, SNAPSHOT_TIME, Table

__all__ = ["FILE_FORMATS", "load_archetypes", "load_ticket_labels", "load_truth", "load_world"]

#: File formats :func:`journeylib.datasets.synthesize` can write.
FILE_FORMATS: tuple[str, ...] = ("parquet", "csv")

#: Name of the truth file inside a world's folder.
TRUTH_FILE = "truth.json"

_ARROW_TYPES: dict[str, pa.DataType] = {
    "id": pa.string(),
    "text": pa.string(),
    "enum": pa.string(),
    "json": pa.string(),
    "number": pa.float64(),
    "integer": pa.int64(),
    "timestamp": pa.timestamp("us", tz="UTC"),
}

#: Optional canonical columns the simulation leaves empty: a synthetic snapshot has no update time of its own.
UNSIMULATED_COLUMNS: frozenset[str] = frozenset({SNAPSHOT_TIME})

#: Latent truth tables written next to the canonical ones (not canonical themselves).
TRUTH_TABLES: dict[str, tuple[tuple[str, str], ...]] = {
    "archetypes": (("customer_id", "id"), ("archetype", "text")),
    "ticket_labels": (("ticket_id", "id"), ("topic", "text"), ("tone", "text"), ("stage", "text")),
}


def arrow_schema(table: Table) -> pa.Schema:
    """Return the Arrow schema of a canonical table (its columns in canonical order).

    Parameters
    ----------
    table : journeylib.store.schema.Table
        A canonical table.

    Returns
    -------
    pyarrow.Schema
        ``string`` for id/text/enum/json, ``float64`` for numbers and
        ``timestamp[us, tz=UTC]`` for timestamps.
    """
    return pa.schema([pa.field(c.name, _ARROW_TYPES[c.type]) for c in table.columns])


def truth_schema(name: str) -> pa.Schema:
    """Return the Arrow schema of a latent truth table (``archetypes`` or ``ticket_labels``)."""
    return pa.schema([pa.field(col, _ARROW_TYPES[kind]) for col, kind in TRUTH_TABLES[name]])


def _csv_ready(table: pa.Table) -> pa.Table:
    """Turn timestamp columns into ISO-8601 text (``2025-01-06T09:30:00Z``) for CSV."""
    cols = []
    for field in table.schema:
        col = table.column(field.name)
        if pa.types.is_timestamp(field.type):
            secs = pc.divide(pc.cast(col, pa.int64()), 1_000_000)
            text = pc.cast(pc.cast(secs, pa.timestamp("s")), pa.string())
            col = pc.binary_join_element_wise(pc.replace_substring(text, " ", "T", max_replacements=1), "Z", "")
        cols.append(col)
    names = table.schema.names
    return pa.table(dict(zip(names, cols, strict=True)))


def _csv_schema(schema: pa.Schema) -> pa.Schema:
    return pa.schema([pa.field(f.name, pa.string() if pa.types.is_timestamp(f.type) else f.type) for f in schema])


class TableSink:
    """Append Arrow tables of one schema to a single Parquet or CSV file.

    Parameters
    ----------
    path : pathlib.Path
        The file to (over)write.
    schema : pyarrow.Schema
        The file's columns.
    file_format : {"parquet", "csv"}
        How to write it.
    """

    def __init__(self, path: Path, schema: pa.Schema, file_format: str) -> None:
        self.path = path
        self.schema = schema
        self.file_format = file_format
        self.rows = 0
        self._writer: Any
        if file_format == "parquet":
            self._writer = pq.ParquetWriter(str(path), schema)
        else:
            self._writer = pacsv.CSVWriter(str(path), _csv_schema(schema))

    def write(self, table: pa.Table) -> None:
        """Append *table* (cast to the sink's schema; absent :data:`UNSIMULATED_COLUMNS` written empty)."""
        for f in self.schema:
            if f.name in UNSIMULATED_COLUMNS and f.name not in table.column_names:
                table = table.append_column(f.name, pa.nulls(table.num_rows, f.type))
        table = table.select(self.schema.names).cast(self.schema)
        if self.file_format == "csv":
            table = _csv_ready(table)
        self._writer.write_table(table)
        self.rows += table.num_rows

    def close(self) -> None:
        """Flush and close the file."""
        self._writer.close()


def write_table(path: Path, table: pa.Table, schema: pa.Schema, file_format: str) -> int:
    """Write one whole table to *path*; return its number of rows."""
    sink = TableSink(path, schema, file_format)
    try:
        sink.write(table)
    finally:
        sink.close()
    return sink.rows


# -- reading ---------------------------------------------------------------
def load_truth(out_dir: str | Path) -> dict[str, Any]:
    """Read the planted truths of a synthetic world.

    Parameters
    ----------
    out_dir : str or pathlib.Path
        The folder :func:`journeylib.datasets.synthesize` wrote.

    Returns
    -------
    dict
        The parsed ``truth.json``: ``generator``, ``generator_version``,
        ``seed``, ``n_customers``, ``start``, ``months``, ``as_of``,
        ``chunk_customers``, ``file_format``, ``files``, ``truth_files``,
        ``row_counts``, ``world`` (the simulation's parameters) and
        ``planted`` (one entry per planted truth, each with its
        ``parameters``, its ``definition`` and the ``realised`` values).

    Raises
    ------
    JourneyLibError
        If the folder holds no ``truth.json``.
    """
    path = Path(out_dir) / TRUTH_FILE
    if not path.exists():
        msg = (
            f"no {TRUTH_FILE} in {Path(out_dir)}: the folder is not a synthetic world. "
            "Create one with `journeylib synth --out DIR` or journeylib.datasets.synthesize(DIR)."
        )
        raise JourneyLibError(msg)
    with path.open(encoding="utf-8") as fh:
        return dict(json.load(fh))


def _read_file(path: Path, columns: Sequence[tuple[str, str]], file_format: str) -> pd.DataFrame:
    names = [c for c, _ in columns]
    if file_format == "parquet":
        present = set(pq.read_schema(path).names)
        frame = pd.read_parquet(path, columns=[c for c in names if c in present or c not in UNSIMULATED_COLUMNS])
    else:
        dtypes: dict[str, Any] = {c: ("float64" if kind == "number" else object) for c, kind in columns}
        frame = pd.read_csv(path, dtype=dtypes, keep_default_na=False, na_values=[""])
    for c in names:  # a world written before the column existed
        if c in UNSIMULATED_COLUMNS and c not in frame.columns:
            frame[c] = None
    frame = frame[names]
    for col, kind in columns:
        if kind == "timestamp":
            frame[col] = pd.to_datetime(frame[col], utc=True, format="ISO8601").astype("datetime64[ns, UTC]")
        elif kind != "number":
            values = frame[col].astype(object)
            frame[col] = values.where(values.notna(), None)
    return frame


def _world_files(out_dir: Path) -> tuple[dict[str, Any], str]:
    truth = load_truth(out_dir)
    return truth, str(truth["file_format"])


def load_world(out_dir: str | Path, *, tables: list[str] | None = None) -> dict[str, pd.DataFrame]:
    """Read a synthetic world's canonical tables back into pandas (small worlds).

    Parameters
    ----------
    out_dir : str or pathlib.Path
        The folder :func:`journeylib.datasets.synthesize` wrote.
    tables : list of str, optional
        Which tables to read (default all five).

    Returns
    -------
    dict of str to pandas.DataFrame
        One frame per table, with exactly the columns of
        :mod:`journeylib.store.schema`, the same whether the world was written as
        Parquet or CSV. Timestamps are ``datetime64[ns, UTC]``, text is
        ``object`` with ``None`` for missing, numbers are ``float64``.

        ``customers``
            ``customer_id``, ``name``, ``domain`` (lower case), ``segment``
            (SMB, Mid-market, Enterprise), ``plan`` (trial, starter, pro,
            business), ``signup_at`` (trial start), ``converted_at`` (first
            payment, empty if never), ``churned_at`` (cancellation, empty if
            still a customer or never paid), ``renewal_at`` (next renewal, or
            the last one for churned accounts), ``mrr`` (current monthly
            revenue; 0 for trials and churned accounts), ``properties``
            (``acquisition_channel``, ``region``, ``industry``, ``seats``
            (licensed seats; ``mrr`` is the plan's price per seat times
            seats), ``status`` (trial, trial_expired, active, churned),
            ``last_mrr``).
        ``users``
            ``user_id``, ``customer_id``, ``email``, ``role`` (admin, member,
            viewer), ``created_at``, ``properties`` (``job_title``).
        ``events``
            ``event_id``, ``customer_id``, ``user_id`` (empty for CRM and
            solved-ticket events), ``timestamp``, ``event``, ``source``
            (product, crm, support, email), ``properties``.
        ``tickets``
            ``ticket_id``, ``customer_id``, ``user_id`` (requester),
            ``created_at``, ``solved_at`` (empty while open), ``channel``,
            ``subject``, ``body``, ``status``, ``priority``, ``satisfaction``
            (0..1, empty if not rated), ``properties`` (``tags``).
        ``messages``
            ``message_id``, ``customer_id``, ``user_id``, ``timestamp``,
            ``campaign``, ``status`` (delivered, opened, clicked, bounced,
            unsubscribed), ``properties`` (``send_id``).

    Raises
    ------
    JourneyLibError
        If the folder is not a synthetic world.
    ValueError
        If *tables* names a table that is not canonical.
    """
    root = Path(out_dir)
    truth, file_format = _world_files(root)
    wanted = list(ENTITY_TABLES) if tables is None else list(tables)
    unknown = [t for t in wanted if t not in ENTITY_TABLES]
    if unknown:
        msg = f"load_world(tables=...) got unknown table(s) {unknown}; allowed are {list(ENTITY_TABLES)}"
        raise ValueError(msg)
    out: dict[str, pd.DataFrame] = {}
    for name in wanted:
        schema = ENTITY_TABLES[name]
        columns = [(c.name, c.type) for c in schema.columns]
        paths = [root / p for p in truth["files"][name]]
        frames = [_read_file(p, columns, file_format) for p in paths]
        frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
        out[name] = frame.reset_index(drop=True)
    return out


def _load_truth_table(out_dir: str | Path, name: str) -> pd.DataFrame:
    root = Path(out_dir)
    truth, file_format = _world_files(root)
    return _read_file(root / truth["truth_files"][name], list(TRUTH_TABLES[name]), file_format)


def load_archetypes(out_dir: str | Path) -> pd.DataFrame:
    """Read each customer's latent behavioural archetype.

    Parameters
    ----------
    out_dir : str or pathlib.Path
        The folder :func:`journeylib.datasets.synthesize` wrote.

    Returns
    -------
    pandas.DataFrame
        One row per customer: ``customer_id`` and ``archetype``
        (``power_user``, ``in_between`` or ``struggler``), the labels a
        behavioural segmentation should recover.
    """
    return _load_truth_table(out_dir, "archetypes")


def load_ticket_labels(out_dir: str | Path) -> pd.DataFrame:
    """Read each support ticket's latent topic and tone.

    Parameters
    ----------
    out_dir : str or pathlib.Path
        The folder :func:`journeylib.datasets.synthesize` wrote.

    Returns
    -------
    pandas.DataFrame
        One row per ticket: ``ticket_id``; ``topic`` (setup_onboarding,
        integrations, billing, permissions, performance, feature_request,
        bug); ``tone`` (confused, frustrated, satisfied), the label a
        sentiment model should recover; ``stage`` (``setup`` for tickets
        raised before setup was completed, ``decline`` for tickets raised in
        a churner's last 45 days, ``regular`` otherwise).
    """
    return _load_truth_table(out_dir, "ticket_labels")
