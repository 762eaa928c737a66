"""A one-row statement is read to its end: DuckDB 2 refuses other work on a connection with an unfinished result.

``Store.count`` read its count with ``fetchone()``, which leaves the result
unfinished; the next ``Store.query`` handing a frame to the engine in the same
session then failed with ``ResourceInUseException`` (seen under a user-set
memory limit, where the session keeps one connection).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from journeylib.store import Store
from journeylib.store.database import first_row


@pytest.fixture
def store_file(tmp_path: Path) -> Path:
    path = tmp_path / "store.duckdb"
    store = Store(path)
    store.create_tables()
    store.close()
    return path


@pytest.mark.parametrize("memory_limit", [None, "300MB"])
def test_a_count_then_a_query_with_a_frame_in_one_session(store_file: Path, memory_limit: str | None) -> None:
    store = Store(store_file, read_only=True, memory_limit=memory_limit)
    frame = pd.DataFrame({"a": [1, 2, 3]})
    with store.session():
        assert store.count("events") == 0
        out = store.query("SELECT count(*) AS n FROM f", f=frame)
    assert int(out["n"].iloc[0]) == 3
    store.close()


def test_first_row_reads_the_result_to_its_end(store_file: Path) -> None:
    store = Store(store_file)
    with store.session():
        assert first_row(store.con.execute("SELECT 1, 'x' UNION ALL SELECT 2, 'y' ORDER BY 1")) == (1, "x")
        assert first_row(store.con.execute("SELECT 1 WHERE false")) is None
        store.con.register("f", pd.DataFrame({"a": [1]}))  # refused if the result above were unfinished
        store.con.unregister("f")
    store.close()
