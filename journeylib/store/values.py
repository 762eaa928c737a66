"""Values that need the whole file to be read: scores' scale and implied e-mail statuses.

Most values are checked row by row by the reader
(:func:`journeylib.io.generic.validate_frame`). Two rules of the data contract
depend on every row of a file, so they run once per canonical file on its
staged rows (the table ``_jl_stage`` that both the exact and the engine path
fill with the same accepted rows), before the merge:

* ``tickets.satisfaction`` is on 0..1. The scale of the file's values is
  told by :func:`journeylib.io.generic.score_scale`: whole numbers of a 1–5
  or 0–10 scale are rescaled (counted in the file's notes); values outside
  0..1 in a 0..1 file, and every value of a file whose scale cannot be told,
  are stored as empty and listed in ``ingest_notes``.
* ``messages``: an ``opened`` row implies ``delivered`` and a ``clicked`` row
  implies ``opened`` and ``delivered`` for the same e-mail (its
  ``properties.send_id``). Implied statuses are not stored; the analytics
  read the implication (:mod:`journeylib.customers.features`). The file's
  notes count the e-mails whose statuses are implied, and the opened or
  clicked rows without a ``send_id``, whose implication cannot be read.
"""

from __future__ import annotations

from collections import Counter

import pandas as pd

from journeylib.io.generic import IMPLIED_NOTES, SEND_ID, score_scale
from journeylib.store.database import Store, first_row
from journeylib.store.dialect import sql_json_text
from journeylib.store.merge import staged_select
from journeylib.store.notes import NOTE_COLUMNS, empty_notes
from journeylib.store.schema import Table

__all__ = ["STAGE", "check_staged_values"]

#: The staged rows of the file being ingested.
STAGE = "_jl_stage"


def check_staged_values(store: Store, table: Table, notes: Counter[str]) -> pd.DataFrame:
    """Apply the whole-file value rules to the staged rows of one canonical file.

    Call it inside the file's transaction, after every row is staged and
    before the merge.

    Parameters
    ----------
    store : Store
        A writable store holding the staging table :data:`STAGE`.
    table : Table
        The canonical table of the file.
    notes : collections.Counter
        The file's notes; receives the counted assumptions (rescaled scores,
        implied statuses).

    Returns
    -------
    pandas.DataFrame
        Value notes for ``ingest_notes``, one row per value stored as empty,
        with the columns of :data:`journeylib.store.notes.NOTE_COLUMNS`
        (``line``, ``row_key``, ``field``, ``value``, ``reason``); no rows
        when none.
    """
    if table.name == "tickets" and "satisfaction" in table.fields:
        return _satisfaction(store, table, notes)
    if table.name == "messages" and "status" in table.fields:
        _implied_statuses(store, notes)
    return empty_notes()


def _satisfaction(store: Store, table: Table, notes: Counter[str]) -> pd.DataFrame:
    con = store.con
    (key,) = table.key
    values = con.execute(f"SELECT satisfaction FROM {STAGE} WHERE satisfaction IS NOT NULL").fetchnumpy()["satisfaction"]
    choice = score_scale(values)
    if choice.kind == "unit":
        return empty_notes()
    if choice.kind == "rescale":
        _restage(store, table, f"(satisfaction - {choice.low!r}) / {choice.high - choice.low!r}")
        scale = f"{choice.low:g}-{choice.high:g}"
        notes[f"satisfaction: whole numbers of a {scale} scale rescaled to 0..1 as (r - {choice.low:g}) / {choice.high - choice.low:g}"] += len(values)
        return empty_notes()
    outside = "satisfaction < 0 OR satisfaction > 1" if choice.kind == "outliers" else "true"
    refused = con.execute(
        f'SELECT _line, CAST("{key}" AS VARCHAR) AS row_key, satisfaction FROM {STAGE} '
        f"WHERE satisfaction IS NOT NULL AND ({outside}) ORDER BY _line"
    ).df()
    _restage(store, table, f"CASE WHEN {outside} THEN NULL ELSE satisfaction END")
    if choice.kind == "outliers":
        notes["satisfaction: values outside 0..1 stored as empty (listed in ingest_notes)"] += len(refused)
    else:
        notes["satisfaction: scale not recognised, every value stored as empty (listed in ingest_notes)"] += len(refused)
    frame = pd.DataFrame(
        {
            "line": refused["_line"].astype("int64"),
            "row_key": refused["row_key"].astype(object),
            "field": "satisfaction",
            "value": [_number_text(v) for v in refused["satisfaction"]],
            "reason": f"{choice.reason}; stored as empty",
        },
        columns=list(NOTE_COLUMNS),
    )
    return frame


def _restage(store: Store, table: Table, satisfaction_sql: str) -> None:
    """Rewrite the staged satisfaction with *satisfaction_sql*, with the row hash the merge compares (:func:`staged_select`)."""
    cols = ", ".join(f"{satisfaction_sql} AS satisfaction" if c.name == "satisfaction" else f'"{c.name}"' for c in table.columns)
    con = store.con
    con.execute(f"CREATE OR REPLACE TEMP TABLE {STAGE}_values AS {staged_select(table, f'SELECT {cols}, _line, _raw FROM {STAGE}')}")
    con.execute(f"DROP TABLE {STAGE}")
    con.execute(f"ALTER TABLE {STAGE}_values RENAME TO {STAGE}")


def _number_text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _implied_statuses(store: Store, notes: Counter[str]) -> None:
    sid = sql_json_text("properties", SEND_ID)
    row = first_row(store.con.execute(
        f"""SELECT count(*) FILTER (WHERE (o OR c) AND NOT d), count(*) FILTER (WHERE c AND NOT o)
        FROM (SELECT bool_or(status = 'delivered') AS d, bool_or(status = 'opened') AS o, bool_or(status = 'clicked') AS c
              FROM (SELECT {sid} AS sid, status FROM {STAGE}) WHERE sid IS NOT NULL GROUP BY sid)"""
    ))
    loose = first_row(store.con.execute(f"SELECT count(*) FROM {STAGE} WHERE {sid} IS NULL AND status IN ('opened', 'clicked')"))
    no_delivered, no_opened = (int(row[0] or 0), int(row[1] or 0)) if row else (0, 0)
    if no_delivered:
        notes[IMPLIED_NOTES["delivered"]] += no_delivered
    if no_opened:
        notes[IMPLIED_NOTES["opened"]] += no_opened
    if loose and loose[0]:
        notes[IMPLIED_NOTES["loose"]] += int(loose[0])
