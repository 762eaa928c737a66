"""The store: canonical tables in DuckDB, ingest, identity stitching and source kinds.

This package is the only part of journeylib that talks to the database:
:mod:`~journeylib.store.database` (the :class:`Store` and its settings),
:mod:`~journeylib.store.dialect` (backend-specific SQL fragments),
:mod:`~journeylib.store.merge` (merging canonical files) and
:mod:`~journeylib.store.staging` (staging vendor exports and the identity
bookkeeping).
"""

from journeylib.store.database import Store, default_db_path, resolve_db_path

__all__ = ["Store", "default_db_path", "resolve_db_path"]
