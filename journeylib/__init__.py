"""journeylib: customer journey mapping for Customer Success teams.

The curated public API is re-exported here and imported lazily, so that
``import journeylib`` stays fast and a notebook pays only for what it uses::

    import journeylib as jl
    store = jl.Store("data/journeylib.duckdb", read_only=True)
    definition = jl.JourneyDefinition.from_yaml("parameters/journeys/saas.yaml")
"""

from __future__ import annotations

import sys
from typing import Any

from journeylib.lazy import export_names, load_export

# jsonschema, imported by altair, imports rfc3987_syntax when it is installed (jupyter-events' extra
# ``jsonschema[format-nongpl]`` installs it), only to check the "iri" and "iri-reference" string formats;
# building that package's grammar takes 0.8-1.5 s of every kernel that draws a chart (more than altair itself),
# and no journeylib process checks those formats. A module set to None makes its import fail, so jsonschema
# goes without those two checkers in a process that imports journeylib first; one that imported it before is
# left alone.
sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    # store and ingest
    "Store": "journeylib.store",
    "resolve_db_path": "journeylib.store",
    "ingest_file": "journeylib.store.ingest",
    "ingest_files": "journeylib.store.ingest",
    "ingest_folder": "journeylib.store.ingest",
    # configuration and scope
    "JourneyDefinition": "journeylib.config.journey",
    "Scope": "journeylib.scope",
    "Journey": "journeylib.context",
    # synthetic world
    "synthesize": "journeylib.datasets",
    "load_truth": "journeylib.datasets",
    "load_world": "journeylib.datasets",
    # reports
    "run_report": "journeylib.reports.runner",
    "write_artifacts": "journeylib.reports.artifacts",
    "read_artifacts": "journeylib.reports.artifacts",
    # errors
    "JourneyLibError": "journeylib.exceptions",
    "SchemaError": "journeylib.exceptions",
    "ConfigError": "journeylib.exceptions",
    "SourceFormatError": "journeylib.exceptions",
    "EmptyResultError": "journeylib.exceptions",
    "ScopeError": "journeylib.exceptions",
    "StatisticalWarning": "journeylib.exceptions",
    "DataQualityWarning": "journeylib.exceptions",
}

__all__ = ["__version__", *sorted(_EXPORTS)]


def __getattr__(name: str) -> Any:
    return load_export(__name__, _EXPORTS, globals(), name)


def __dir__() -> list[str]:
    return export_names(globals(), _EXPORTS)
