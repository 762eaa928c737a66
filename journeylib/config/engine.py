"""Engine configuration: which database runs journeylib's SQL, and where its canonical tables are.

An ``engine.yaml`` (or a dict) names the engine and its connection::

    engine: spark
    master: spark://spark-master:7077      # or local[4], yarn, k8s://...
    app_name: journeylib-cs
    conf: {spark.executor.memory: 8g}
    tables:
      events: {path: s3://lake/cs/events, format: delta}
      customers: {table: main.cs.customers}  # a catalog / warehouse table
    database: main.cs                        # other canonical tables by name

or, for the embedded default, ``engine: duckdb`` with ``db: data/journeylib.duckdb``.
:func:`journeylib.store.open_store` builds the store it describes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from journeylib.config.loader import read_yaml, validate_config

__all__ = ["EngineConfig", "TableSource"]


class TableSource(BaseModel):
    """Where one canonical table is, for a Spark store: a file path or a catalog table.

    Parameters
    ----------
    path : str, optional
        A Parquet, Delta or CSV location (local path, ``s3://``, ``abfss://``, ``dbfs:/``...).
    format : {"parquet", "delta", "csv"}, default "parquet"
        The format at *path* (Delta needs the Delta Lake package in the session).
    table : str, optional
        A catalog or warehouse table name (``db.events``, ``catalog.schema.events``).

    Exactly one of *path* and *table* is given.

    Examples
    --------
    >>> TableSource(path="lake/events", format="delta").describe()
    'delta at lake/events'
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str | None = None
    format: Literal["parquet", "delta", "csv"] = "parquet"
    table: str | None = None

    @model_validator(mode="after")
    def _one_place(self) -> TableSource:
        if (self.path is None) == (self.table is None):
            msg = f"give exactly one of path (a file location) and table (a catalog table name); got path={self.path!r}, table={self.table!r}"
            raise ValueError(msg)
        return self

    def describe(self) -> str:
        """Return where the table is, in words (for messages)."""
        return f"table {self.table}" if self.table is not None else f"{self.format} at {self.path}"


class EngineConfig(BaseModel):
    """The engine that runs journeylib's SQL, and its connection settings.

    Parameters
    ----------
    engine : {"duckdb", "spark"}, default "duckdb"
        The embedded DuckDB store, or Spark.
    db : str, optional
        ``engine: duckdb`` only: the store file (default ``JOURNEYLIB_DB`` or
        ``data/journeylib.duckdb``, :func:`journeylib.store.resolve_db_path`).
    master : str, default "local[2]"
        ``engine: spark``: the master URL.
    app_name : str, default "journeylib"
        ``engine: spark``: the application name.
    conf : dict of str to str
        ``engine: spark``: more Spark settings.
    tables : dict of str to TableSource
        ``engine: spark``: where canonical tables are (keys are canonical table names).
    database : str, optional
        ``engine: spark``: a catalog database holding canonical tables under
        their own names, for those not in *tables*.

    Examples
    --------
    >>> EngineConfig.from_dict({"engine": "spark", "tables": {"events": {"path": "lake/events.parquet"}}}).tables["events"].format
    'parquet'
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    engine: Literal["duckdb", "spark"] = "duckdb"
    db: str | None = None
    master: str = "local[2]"
    app_name: str = "journeylib"
    conf: dict[str, str] = Field(default_factory=dict)
    tables: dict[str, TableSource] = Field(default_factory=dict)
    database: str | None = None

    @model_validator(mode="after")
    def _fits_engine(self) -> EngineConfig:
        if self.engine == "duckdb":
            spark_only = [k for k in ("tables", "database", "conf") if getattr(self, k)]
            if spark_only:
                msg = f"{', '.join(spark_only)} apply to engine: spark only; with engine: duckdb give db (the store file)"
                raise ValueError(msg)
        elif self.db is not None:
            msg = "db (a DuckDB file) applies to engine: duckdb only; with engine: spark give tables and/or database"
            raise ValueError(msg)
        return self

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "<dict>") -> EngineConfig:
        """Validate an engine configuration given as a dict.

        Parameters
        ----------
        data : mapping
            The keys of the class.
        source : str, default "<dict>"
            Where it came from, for the error.

        Returns
        -------
        EngineConfig
            The validated, immutable configuration.

        Raises
        ------
        ConfigError
            Listing every problem (unknown keys with the allowed ones, wrong values).
        """
        return validate_config(cls, dict(data), source=source)

    @classmethod
    def from_yaml(cls, source: str | os.PathLike[str] | Mapping[str, Any]) -> EngineConfig:
        """Load and validate an engine configuration from a YAML file (or a dict).

        Parameters
        ----------
        source : str, os.PathLike or mapping
            The file, or the configuration as a dict.

        Returns
        -------
        EngineConfig
            The validated, immutable configuration.

        Raises
        ------
        ConfigError
            If the file does not exist or is not YAML, or listing every
            problem with its key path and line.
        """
        if isinstance(source, Mapping):
            return cls.from_dict(source)
        doc = read_yaml(Path(source), what="engine configuration")
        return validate_config(cls, doc.data, source=doc.source, lines=doc.lines)
