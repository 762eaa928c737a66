"""Ingest notes: optional values that could not be read, each accounted for.

A required value that cannot be read quarantines its row; an optional one
(a ``renewal_at`` that is not a date, an ``mrr`` that is not a number) is
stored as empty and recorded here, one row per value, with the file, line,
the row's id, the field, the raw value and the reason. Readers return such
notes as a frame with :data:`NOTE_COLUMNS`; :func:`record_notes` writes them,
inside the transaction of the file they come from, into the ``ingest_notes``
table, and the caller writes the count it returns into
``ingest_log.notes_count``. Recording the same notes again (a forced
re-ingest of the same file) adds nothing, so
``sum(ingest_log.notes_count) == count(ingest_notes)``.
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd

from journeylib.store.database import Store, table_ddl
from journeylib.store.errors import cleanup
from journeylib.store.schema import INGEST_NOTES

__all__ = ["MAX_NOTE_VALUE_CHARS", "NOTE_COLUMNS", "empty_notes", "ensure_notes_schema", "record_notes"]

#: Columns of a notes frame as readers return it; :func:`record_notes` adds run, source, file, table and time.
NOTE_COLUMNS: tuple[str, ...] = ("line", "row_key", "field", "value", "reason")

#: Characters of a raw value kept in ``ingest_notes.value``.
MAX_NOTE_VALUE_CHARS = 200


def empty_notes() -> pd.DataFrame:
    """Return a notes frame with no rows and the columns of :data:`NOTE_COLUMNS`.

    Returns
    -------
    pandas.DataFrame
        ``line`` (int64), ``row_key``, ``field``, ``value``, ``reason`` (object).
    """
    return pd.DataFrame({c: pd.Series(dtype="int64" if c == "line" else object) for c in NOTE_COLUMNS})


def ensure_notes_schema(store: Store) -> None:
    """Give a store created before ``ingest_notes`` existed the table and ``ingest_log.notes_count``.

    Parameters
    ----------
    store : Store
        A writable store. Stores created by this version already have both;
        the statements then change nothing.
    """
    store.execute(table_ddl(INGEST_NOTES))
    store.execute('ALTER TABLE "ingest_log" ADD COLUMN IF NOT EXISTS "notes_count" BIGINT')


def record_notes(
    store: Store,
    frame: pd.DataFrame,
    *,
    run: str,
    source: str,
    file: str,
    table_name: str,
    ingested_at: datetime,
) -> int:
    """Write the notes of one file into ``ingest_notes``, skipping notes already recorded.

    Call it inside the file's transaction, so the notes are written with the
    rows or not at all.

    Parameters
    ----------
    store : Store
        A writable store.
    frame : pandas.DataFrame
        The notes: the columns of :data:`NOTE_COLUMNS` (``line`` may be
        missing or empty; ``value`` is cut to :data:`MAX_NOTE_VALUE_CHARS`
        characters).
    run, source, file, table_name : str
        Where the notes come from: run id, source label, input file path and
        the canonical table the rows went to.
    ingested_at : datetime.datetime
        Time of the file's ingest (the same as its ``ingest_log`` row).

    Returns
    -------
    int
        Notes written: those of *frame* not already stored for the same
        table, file, line, row id, field, value and reason. Write it into the
        file's ``ingest_log.notes_count``.

    Raises
    ------
    ValueError
        If *frame* lacks ``field`` or ``reason``.
    """
    if frame.empty:
        return 0
    missing = [c for c in ("field", "reason") if c not in frame.columns]
    if missing:
        msg = f"record_notes: the notes frame lacks column(s) {missing}; expected {list(NOTE_COLUMNS)}"
        raise ValueError(msg)
    notes = pd.DataFrame(
        {
            "run": run,
            "source": source,
            "file": file,
            "line": pd.Series(
                [None if pd.isna(x) else int(x) for x in (frame["line"] if "line" in frame.columns else [None] * len(frame))],
                dtype="Int64",
            ),
            "table_name": table_name,
            "row_key": _text(frame, "row_key"),
            "field": _text(frame, "field"),
            "value": [None if v is None else v[:MAX_NOTE_VALUE_CHARS] for v in _text(frame, "value")],
            "reason": _text(frame, "reason"),
            "ingested_at": pd.Timestamp(ingested_at),
        }
    ).drop_duplicates(subset=["line", "row_key", "field", "value", "reason"])
    same = " AND ".join(f'n."{c}" IS NOT DISTINCT FROM s."{c}"' for c in ("table_name", "file", "line", "row_key", "field", "value", "reason"))
    before = _stored(store)
    store.con.register("_jl_notes", notes)
    with cleanup(store.con.unregister, "_jl_notes"):
        cols = ", ".join(f'"{c}"' for c in INGEST_NOTES.names)
        store.execute(
            f"""INSERT INTO ingest_notes ({cols})
            SELECT run, source, file, CAST(line AS BIGINT), table_name, row_key, field, value, reason,
                   CAST(ingested_at AS TIMESTAMPTZ)
            FROM _jl_notes s WHERE NOT EXISTS (SELECT 1 FROM ingest_notes n WHERE {same})"""
        )
    return _stored(store) - before


def _stored(store: Store) -> int:
    return int(store.query("SELECT count(*) AS n FROM ingest_notes")["n"].iloc[0])


def _text(frame: pd.DataFrame, name: str) -> list[str | None]:
    if name not in frame.columns:
        return [None] * len(frame)
    return [None if v is None or (isinstance(v, float) and v != v) else str(v) for v in frame[name].tolist()]

