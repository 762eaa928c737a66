"""DuckDB's failures in journeylib's words: a locked store, no memory, a full disk, an aborted transaction."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from journeylib.exceptions import (
    JourneyLibError,
    OutOfMemoryError,
    StoreError,
    StoreFullError,
    StoreIOError,
    StoreLockedError,
)
from journeylib.store import Store
from journeylib.store.errors import cleanup, first_cause, translate_error

# The texts DuckDB (2.0) gives for these failures, as captured from real runs: a store opened by another
# process, a query above memory_limit, a full temporary directory, a full disk under the store, its WAL
# (an asynchronous write) and its spill files.
LOCKED = (
    'IO Error: Could not set lock on file "/data/s.duckdb": Conflicting lock is held in '
    "/usr/bin/python3.11 (PID 4242). See also https://duckdb.org/docs/current/connect/concurrency"
)
TUNING = (
    "\n\nPossible solutions:\n* Reducing the number of threads (SET threads=X)\n"
    "* Disabling insertion-order preservation (SET preserve_insertion_order=false)\n"
    "* Increasing the memory limit (SET memory_limit='...GB')\n\n"
    "See also https://duckdb.org/docs/current/guides/performance/how_to_tune_workloads"
)
OUT_OF_MEMORY = "Out of Memory Error: failed to allocate data of size 8.0 MiB (8.0 MiB/9.5 MiB used)" + TUNING
TEMP_FULL = (
    "Out of Memory Error: failed to offload data block of size 256.0 KiB (736.0 KiB/921.5 KiB used).\n"
    "This limit was set by the 'max_temp_directory_size' setting.\n"
    "By default, this setting utilizes the available disk space on the drive where the 'temp_directory' is located.\n"
    "You can adjust this setting, by using (for example) PRAGMA max_temp_directory_size='10GiB'" + TUNING
)
DISK_FULL = 'IO Error: Could not write file "/data/s.duckdb": No space left on device'
WAL_FULL = (
    'IO Error: Async write failed for range [offset=0, size=1]: {"exception_type":"IO","exception_message":'
    '"Could not write file \\"/data/s.duckdb.wal\\": No space left on device","errno":"28"}'
)
SPILL_FULL = 'IO Error: Could not write file "/data/s.duckdb.tmp/duckdb_temp_storage_DEFAULT-1.tmp": No space left on device'
ABORTED = "TransactionContext Error: Current transaction is aborted (please ROLLBACK)"


def test_lock_names_the_store_and_the_holder() -> None:
    err = translate_error(duckdb.IOException(LOCKED), path="/data/s.duckdb")
    assert isinstance(err, StoreLockedError)
    text = str(err)
    assert text.startswith("store /data/s.duckdb is locked: another process (PID 4242, /usr/bin/python3.11) has it open.")
    assert "Wait for process 4242 to finish or stop it" in text
    assert "\n" not in text


def test_out_of_memory_names_the_limit_and_the_setting_that_raises_it() -> None:
    err = translate_error(duckdb.OutOfMemoryException(OUT_OF_MEMORY), path="/data/s.duckdb", settings={"memory_limit": "600MB"})
    assert isinstance(err, OutOfMemoryError)
    text = str(err)
    assert "memory limit of 600MB (8.0 MiB/9.5 MiB used)" in text
    assert "store /data/s.duckdb" in text
    assert "JOURNEYLIB_MEMORY_LIMIT" in text
    assert "JOURNEYLIB_THREADS" in text
    assert "\n" not in text


def test_out_of_memory_without_settings_describes_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOURNEYLIB_MEMORY_LIMIT", "300MB")
    err = translate_error(duckdb.OutOfMemoryException(OUT_OF_MEMORY))
    assert isinstance(err, OutOfMemoryError)
    assert "memory limit of 300MB (JOURNEYLIB_MEMORY_LIMIT)" in str(err)
    assert "the in-memory store" in str(err)


@pytest.mark.parametrize(
    ("message", "path", "setting"),
    [
        (DISK_FULL, "could not write store /data/s.duckdb:", "JOURNEYLIB_DB"),
        (WAL_FULL, "could not write /data/s.duckdb.wal (store /data/s.duckdb)", "JOURNEYLIB_DB"),
        (SPILL_FULL, "could not write /data/s.duckdb.tmp/duckdb_temp_storage_DEFAULT-1.tmp", "JOURNEYLIB_TEMP_DIRECTORY"),
        (TEMP_FULL, "temporary directory /data/s.duckdb.tmp (736.0 KiB/921.5 KiB used)", "JOURNEYLIB_TEMP_DIRECTORY"),
    ],
    ids=["store", "wal", "spill-file", "temp-directory"],
)
def test_disk_full_says_disk_full_and_where(message: str, path: str, setting: str) -> None:
    exc = duckdb.OutOfMemoryException(message) if message.startswith("Out of Memory") else duckdb.IOException(message)
    err = translate_error(exc, path=Path("/data/s.duckdb"), settings={"memory_limit": "2GB"})
    assert isinstance(err, StoreFullError)
    text = str(err)
    assert text.startswith("disk full: ")
    assert path in text
    assert setting in text
    assert "\n" not in text


def test_other_io_errors_name_the_store_and_what_to_check() -> None:
    err = translate_error(duckdb.IOException('IO Error: Cannot open file "/data/x.parquet": Permission denied'), path="/data/s.duckdb")
    assert isinstance(err, StoreIOError)
    assert str(err).startswith('I/O error while working on store /data/s.duckdb: Cannot open file "/data/x.parquet": Permission denied.')


def test_errors_in_the_sql_or_the_data_are_not_translated() -> None:
    assert translate_error(duckdb.ConstraintException('Constraint Error: Duplicate key "a: 1"')) is None
    assert translate_error(duckdb.BinderException('Binder Error: Referenced column "x" not found')) is None
    assert translate_error(ValueError("not an engine error")) is None


def _follow_up_of(first: BaseException) -> duckdb.Error:
    """A "transaction aborted" error raised while handling *first*, as a clean-up after it raises it."""
    try:
        try:
            raise first
        except BaseException:
            raise duckdb.TransactionException(ABORTED)  # noqa: B904 (exactly how a `finally` chains it)
    except duckdb.TransactionException as follow_up:
        return follow_up


def test_a_transaction_aborted_follow_up_is_described_by_its_first_cause() -> None:
    disk = duckdb.IOException(DISK_FULL)
    follow_up = _follow_up_of(disk)
    assert first_cause(follow_up) is disk
    err = translate_error(follow_up, path="/data/s.duckdb")
    assert isinstance(err, StoreFullError)
    assert "aborted" not in str(err)
    lone = translate_error(duckdb.TransactionException(ABORTED), path="/data/s.duckdb")
    assert type(lone) is StoreError
    assert "a statement failed earlier in this transaction" in str(lone)


def test_cleanup_never_replaces_the_error_of_its_block() -> None:
    def aborted() -> None:
        raise duckdb.TransactionException(ABORTED)

    def broken() -> None:
        raise RuntimeError("cleanup bug")

    with pytest.raises(KeyError) as info, cleanup(aborted):
        raise KeyError("first")
    assert not getattr(info.value, "__notes__", None)  # the expected follow-up is no news
    with pytest.raises(KeyError) as info, cleanup(broken):
        raise KeyError("first")
    assert "cleanup bug" in info.value.__notes__[0]
    with pytest.raises(RuntimeError, match="cleanup bug"), cleanup(broken):  # a block that succeeded: the clean-up's error shows
        pass
    done: list[str] = []
    with cleanup(done.append, "ran"):
        pass
    assert done == ["ran"]


def test_the_first_cause_of_a_failed_transaction_reaches_the_caller(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.duckdb")
    store.execute("CREATE TABLE t (a INTEGER PRIMARY KEY)")

    def insert_twice() -> None:
        with store.transaction():
            store.execute("INSERT INTO t VALUES (1)")
            # the failed insert aborts the transaction, so un-registering the frame afterwards fails too
            store.query("INSERT INTO t SELECT a FROM f", f=pd.DataFrame({"a": [1]}))

    with pytest.raises(duckdb.ConstraintException, match="PRIMARY KEY") as info:
        insert_twice()
    assert "aborted" not in str(info.value)
    assert store.count("events") == 0  # the connection is usable again: the transaction was rolled back
    assert store.query("SELECT count(*) AS n FROM t")["n"].iloc[0] == 0
    store.close()


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (a device that is always full)")
def test_a_real_disk_full_inside_a_transaction_says_disk_full(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.duckdb")
    with pytest.raises(StoreFullError) as info, store.transaction():
        store.query("COPY (SELECT * FROM f) TO '/dev/full' (FORMAT csv)", f=pd.DataFrame({"a": range(1000)}))
    assert str(info.value).startswith("disk full: DuckDB could not write /dev/full")
    assert isinstance(info.value.__cause__, duckdb.IOException)
    store.close()


def test_a_real_out_of_memory_is_translated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOURNEYLIB_MEMORY_LIMIT", "10MB")
    with Store(tmp_path / "s.duckdb", temp_directory=tmp_path / "spill") as store, pytest.raises(OutOfMemoryError) as info:
        store.query("SELECT list(range) AS l FROM range(10000000)")  # one list value: cannot spill
    text = str(info.value)
    assert "memory limit of 10MB" in text
    assert "JOURNEYLIB_MEMORY_LIMIT" in text
    assert str(tmp_path / "s.duckdb") in text
    assert isinstance(info.value, JourneyLibError)


@pytest.fixture
def held_store(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    """A store another process holds open for writing: (path, that process's PID)."""
    db = tmp_path / "held.duckdb"
    code = f"import sys, duckdb; con = duckdb.connect({str(db)!r}); print('ready', flush=True); sys.stdin.read()"
    holder = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "ready"
        yield db, holder.pid
    finally:
        holder.kill()
        holder.wait(timeout=30)


def test_a_store_held_by_another_process_names_it(held_store: tuple[Path, int], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOURNEYLIB_LOCK_WAIT", "0")  # no waiting: the holder never lets go
    db, pid = held_store
    with pytest.raises(StoreLockedError) as info:
        Store(db)
    assert str(info.value).startswith(f"store {db} is locked: another process (PID {pid}, ")
    with pytest.raises(StoreLockedError):
        Store(db, read_only=True)
