"""A read-only store's operation returns its result without waiting for its connection to close.

Closing a DuckDB file after a large statement gives its memory back (25-50 ms
after a 10M-event statement); :meth:`Store._leave` does it in a thread of its
own. The file stays held until that thread ends, so every later open of the
file in this process, and :meth:`Store.close`, wait for it, and a failure of
that close is raised by the store's next open or close
(``benchmarks/results/scale.md``, Findings).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import journeylib.store.database as database
from journeylib.exceptions import StoreError
from journeylib.store import Store

#: Longest a test waits for a blocked close (a synchronous close would hold the caller this long).
BLOCK_SECONDS = 3.0


@pytest.fixture
def small_store(tmp_path: Path) -> Path:
    db = tmp_path / "small.duckdb"
    with Store(db) as store:
        store.execute("INSERT INTO customers (customer_id) VALUES ('c1'), ('c2')")
    return db


class _HeldCloses:
    """Make every background close wait for :attr:`go`, and record when closes and opens happen."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.go = threading.Event()
        self.log: list[str] = []
        original = database.Store._close_quietly

        def held(store: Store, con: object) -> None:
            self.go.wait(BLOCK_SECONDS)
            original(store, con)  # type: ignore[arg-type]
            self.log.append("closed")

        monkeypatch.setattr(database.Store, "_close_quietly", held)

    @staticmethod
    def closing() -> list[threading.Thread]:
        return [t for t in threading.enumerate() if t.name.startswith("journeylib-close") and t.is_alive()]


def test_an_operation_returns_while_its_connection_is_still_being_closed(small_store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = Store(small_store, read_only=True)
    held = _HeldCloses(monkeypatch)
    assert store.count("customers") == 2
    assert held.closing(), "the operation waited for its connection to close"
    assert held.log == []
    held.go.set()
    store.close()  # waits for the background close
    assert held.log == ["closed"]
    assert not held.closing()


def test_a_later_open_of_the_file_waits_for_the_background_close(small_store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reader = Store(small_store, read_only=True)
    held = _HeldCloses(monkeypatch)
    assert reader.count("customers") == 2
    timer = threading.Timer(0.3, held.go.set)
    timer.start()
    try:
        other = Store(small_store, read_only=True)  # another store of the same file: its check connection waits
        held.log.append("opened")
        assert held.log[:2] == ["closed", "opened"]
        held.log.clear()
        held.go.clear()
        assert reader.count("customers") == 2  # the store's own next operation waits for its last close too
        timer2 = threading.Timer(0.3, held.go.set)
        timer2.start()
        assert other.count("customers") == 2
        held.log.append("opened")
        assert held.log.index("closed") < held.log.index("opened")
        timer2.join()
    finally:
        held.go.set()
        timer.join()
    reader.close()
    other.close()


def test_a_writer_in_the_same_process_opens_after_a_readers_operation(small_store: Path) -> None:
    reader = Store(small_store, read_only=True)
    for n in range(3):
        assert reader.count("customers") == 2 + n
        with Store(small_store) as writer:  # the reader's connection is closed (waited for) before the writer opens
            writer.execute(f"INSERT INTO customers (customer_id) VALUES ('w{n}')")
    assert reader.count("customers") == 5
    reader.close()


def test_a_failed_background_close_is_raised_by_the_next_open(small_store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    original = database.translated_errors

    @contextlib.contextmanager
    def failing_close(path: object = None, settings: object = None) -> Iterator[None]:
        with original(path, settings):  # type: ignore[arg-type]
            yield
        if threading.current_thread().name.startswith("journeylib-close"):
            raise StoreError("the disk went away while closing")

    store = Store(small_store, read_only=True)
    store.close()  # nothing pending: closing raises nothing
    store = Store(small_store, read_only=True)
    monkeypatch.setattr(database, "translated_errors", failing_close)
    assert store.count("customers") == 2  # its close fails in the background
    with pytest.raises(StoreError, match="went away while closing"):
        store.count("customers")
    monkeypatch.setattr(database, "translated_errors", original)
    assert store.count("customers") == 2  # raised once
    store.close()
