"""The data version of a store: per canonical table, its row count, a content hash and its latest times.

A report run records this in its manifest (:mod:`journeylib.reports.index`)
so that two runs can be told apart by the data they read, not only by the
files that were ingested: a table's content hash changes when any value of
any row changes, whatever the order of the rows.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from journeylib.store.schema import ALL_TABLES

if TYPE_CHECKING:
    from journeylib.store.database import Store

__all__ = ["FINGERPRINT_TABLES", "TIME_COLUMNS", "table_fingerprints"]

#: The canonical tables whose content identifies the data a report reads (bookkeeping tables left out).
FINGERPRINT_TABLES: tuple[str, ...] = ("customers", "users", "events", "tickets", "messages", "assignments", "identity_map")

#: The time column whose maximum is recorded per table: when the newest row happened.
TIME_COLUMNS: dict[str, str] = {
    "customers": "signup_at",
    "users": "created_at",
    "events": "timestamp",
    "tickets": "created_at",
    "messages": "timestamp",
    "assignments": "assigned_at",
}


def _iso(value: Any) -> str | None:
    if value is None or value != value:  # NULL / NaT
        return None
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def table_fingerprints(store: Store) -> dict[str, Any]:
    """Describe the data version of *store*: rows, content hash and latest times of each canonical table.

    The content hash of a table is the XOR of DuckDB's ``hash()`` of every
    whole row, so it does not depend on row order and costs one scan (about
    0.6 s per 10 million rows on two cores). Tables the store lacks (a store
    written by an older version) are left out.

    Parameters
    ----------
    store : Store
        An open store (read-only is enough).

    Returns
    -------
    dict
        ``tables``: table name -> ``{rows, content_hash, max_time_column,
        max_time}`` (``content_hash`` 16 hex digits, ``"0"*16`` for an empty
        table; ``max_time`` the ISO text of the latest value of
        ``max_time_column``, e.g. the latest event's ``timestamp``, None for
        an empty table or a table without one); ``last_ingested_at``: the
        latest ``ingest_log.ingested_at`` (ISO text, None if nothing was
        ingested through the log); ``ingested_files``: rows of
        ``ingest_log``; ``content_hash``: one 16-hex-digit hash of all the
        tables' hashes and counts.

    Examples
    --------
    >>> from journeylib.store import Store
    >>> with Store("data/journeylib.duckdb", read_only=True) as store:  # doctest: +SKIP
    ...     table_fingerprints(store)["tables"]["events"]["rows"]
    1234567
    """
    out: dict[str, Any] = {"tables": {}, "last_ingested_at": None, "ingested_files": 0, "content_hash": None}
    combined = hashlib.sha256()
    with store.session():
        present = store.tables()
        for name in FINGERPRINT_TABLES:
            if name not in present or name not in ALL_TABLES:
                continue
            time_col = TIME_COLUMNS.get(name)
            max_time = f', max("{time_col}") AS max_time' if time_col else ", NULL AS max_time"
            row = store.query(f'SELECT count(*) AS n, bit_xor(hash(t)) AS h{max_time} FROM "{name}" AS t').iloc[0]
            rows = int(row["n"])
            digest = f"{int(row['h']) & 0xFFFFFFFFFFFFFFFF:016x}" if rows else "0" * 16
            out["tables"][name] = {
                "rows": rows,
                "content_hash": digest,
                "max_time_column": time_col,
                "max_time": _iso(row["max_time"]) if rows else None,
            }
            combined.update(f"{name}:{rows}:{digest};".encode())
        if "ingest_log" in present:
            log = store.query("SELECT count(*) AS n, max(ingested_at) AS last FROM ingest_log").iloc[0]
            out["ingested_files"] = int(log["n"])
            out["last_ingested_at"] = _iso(log["last"]) if int(log["n"]) else None
    out["content_hash"] = combined.hexdigest()[:16]
    return out
