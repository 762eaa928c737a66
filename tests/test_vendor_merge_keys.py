"""Vendor merge: keys already stored are found without reading the whole store at every flush.

A vendor file is merged every ``FLUSH_ROWS`` lines. The check for staged keys
that are already stored finds the keys committed before the file on a
connection of its own, and the keys the file's earlier flushes wrote among
the hashes of those flushes (:func:`journeylib.store.staging._stored_hits`).
These tests compare it with the check it replaced (a semi join of every
stored key at every flush, which the merge still uses without the file's
bookkeeping) on files whose keys repeat across flushes and repeat keys
stored before them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import journeylib.store.sources as sources
from journeylib.config.eventmap import EventRule
from journeylib.store import Store, staging
from journeylib.store.sources import ingest_vendor_file

ZENDESK = Path(__file__).parent / "data" / "vendors" / "zendesk" / "tickets.json"
TABLES = ("events", "source_refs", "source_identities", "quarantine", "ingest_log", "tickets")


@pytest.fixture
def small_flushes(monkeypatch: pytest.MonkeyPatch) -> None:
    import journeylib.io.common as vendor

    monkeypatch.setattr(vendor, "BLOCK_BYTES", 700)  # a few lines per block
    monkeypatch.setattr(sources, "FLUSH_ROWS", 5)  # a merge every block or two


def line(name: str, ins: str, t: int, who: str = "u1") -> str:
    return json.dumps({"event": name, "properties": {"time": 1618716477 + t, "distinct_id": who, "$insert_id": ins, "$email": f"{who}@x.com"}})


def first_file(tmp_path: Path) -> Path:
    f = tmp_path / "first.jsonl"
    f.write_text("\n".join(line("a", f"s{i}", i) for i in range(6)) + "\n")
    return f


def second_file(tmp_path: Path) -> Path:
    """Keys repeated across the file's flushes and keys stored by the first file, each the same or changed."""
    rows = []
    for i in range(40):
        rows.append(line("e", f"n{i}", i, who=f"u{i % 4}"))  # new
        if i % 5 == 0:
            rows.append(line("e", f"n{i // 2}", i // 2, who=f"u{(i // 2) % 4}"))  # an earlier key of this file, same content: duplicate
        if i % 7 == 3:
            rows.append(line("x", f"n{i // 3}", i, who="u9"))  # an earlier key of this file, other content: quarantined
        if i % 9 == 4:
            rows.append(line("a", f"s{i % 6}", i % 6))  # stored by the first file, same content: duplicate
        if i % 11 == 6:
            rows.append(line("y", f"s{i % 6}", i))  # stored by the first file, other content: quarantined
    rows.append("not json")
    f = tmp_path / "second.jsonl"
    f.write_text("\n".join(rows) + "\n")
    return f


def snapshot(store: Store) -> dict[str, pd.DataFrame]:
    out = {}
    for t in TABLES:
        frame = store.query(f'SELECT * FROM "{t}"')
        frame = frame.drop(columns=[c for c in ("run", "ingested_at") if c in frame.columns])
        out[t] = frame.sort_values(list(frame.columns), kind="stable", key=lambda c: c.astype(str)).reset_index(drop=True)
    return out


def load_both(tmp_path: Path, events: tuple[EventRule, ...] = ()) -> tuple[dict[str, pd.DataFrame], list[Any]]:
    store = Store(":memory:")
    try:
        counts = []
        for f, force in ((first_file(tmp_path), False), (second_file(tmp_path), False), (second_file(tmp_path), False), (second_file(tmp_path), True)):
            res = ingest_vendor_file(store, f, reader="mixpanel", run="r", force=force, events=events)
            counts.append([(r.table, r.status, r.read, r.loaded, r.updated, r.duplicate, r.quarantined) for r in res])
        return snapshot(store), counts
    finally:
        store.close()


def assert_same(a: dict[str, pd.DataFrame], b: dict[str, pd.DataFrame]) -> None:
    for t in TABLES:
        pd.testing.assert_frame_equal(a[t], b[t], check_exact=True)


@pytest.mark.usefixtures("small_flushes")
@pytest.mark.parametrize("events", [(), (EventRule(match="e", to="renamed"),)], ids=["arrow-stage", "engine-stage"])
@pytest.mark.parametrize("collide", [False, True], ids=["hash", "colliding-hash"])
def test_keys_across_flushes_and_stored_keys_as_the_whole_store_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, events: tuple[EventRule, ...], collide: bool
) -> None:
    # event rules make the events stage a table of the engine, which the committed-key check cannot read by name
    if collide:  # three hash values for all keys: a shared hash must only cost the exact check of the keys
        monkeypatch.setattr(staging, "_key_hash_sql", lambda key: f'hash("{key}") % 3')
    new, new_counts = load_both(tmp_path, events)
    with monkeypatch.context() as m:
        m.setattr(staging, "_file_keys", lambda con: None)
        old, old_counts = load_both(tmp_path, events)
    assert new_counts == old_counts
    assert_same(new, old)
    # the scenario: the second file repeats its own keys across flushes and keys of the first file
    # (one of its 40 keys is repeated with other content within one flush: none of its rows loads)
    (ev, _) = new_counts[1]
    assert ev == ("events", "loaded", 63, 39, 0, 12, 12)
    assert new_counts[2] == [("events", "skipped", 0, 0, 0, 0, 0)]  # the same file again: skipped
    (forced, _) = new_counts[3]
    assert forced == ("events", "loaded", 63, 0, 0, 51, 12)  # read again (force): nothing new
    assert len(new["events"]) == 45


@pytest.mark.usefixtures("small_flushes")
def test_a_key_written_by_an_earlier_flush_is_never_written_twice(tmp_path: Path) -> None:
    f = tmp_path / "repeat.jsonl"
    rows = [line("e", f"k{i}", i) for i in range(30)] + [line("e", "k0", 0), line("z", "k1", 99)]
    f.write_text("\n".join(rows) + "\n")
    with Store(":memory:") as store:
        (r, _) = ingest_vendor_file(store, f, reader="mixpanel")
        assert (r.read, r.loaded, r.duplicate, r.quarantined) == (32, 30, 1, 1)
        assert store.query("SELECT count(*) AS n, count(DISTINCT event_id) AS d FROM events").iloc[0].tolist() == [30, 30]
        assert store.query("SELECT count(*) AS n FROM source_refs")["n"].iloc[0] == 30


@pytest.mark.usefixtures("small_flushes")
def test_keys_committed_before_the_file_are_found_in_every_flush(tmp_path: Path) -> None:
    with Store(":memory:") as store:
        ingest_vendor_file(store, first_file(tmp_path), reader="mixpanel")
        f = tmp_path / "late.jsonl"
        rows = [line("e", f"k{i}", i) for i in range(30)] + [line("a", "s2", 2), line("y", "s3", 3)]  # in the file's last flush
        f.write_text("\n".join(rows) + "\n")
        (r, _) = ingest_vendor_file(store, f, reader="mixpanel")
        assert (r.read, r.loaded, r.duplicate, r.quarantined) == (32, 30, 1, 1)
        assert store.count("events") == 36


def test_ticket_stage_matches_the_whole_store_check(monkeypatch: pytest.MonkeyPatch) -> None:
    # tickets are staged as tables of the engine; read twice (force), every ticket is stored already
    def load() -> tuple[dict[str, pd.DataFrame], list[Any]]:
        with Store(":memory:") as store:
            counts = []
            for force in (False, True):
                res = ingest_vendor_file(store, ZENDESK, reader="zendesk", run="r", force=force)
                counts.append([(r.table, r.read, r.loaded, r.updated, r.duplicate, r.quarantined) for r in res])
            return snapshot(store), counts

    new, new_counts = load()
    with monkeypatch.context() as m:
        m.setattr(staging, "_file_keys", lambda con: None)
        old, old_counts = load()
    assert new_counts == old_counts
    assert_same(new, old)
    tickets = [c for c in new_counts[1] if c[0] == "tickets"]
    assert len(tickets) == 1
    (_, read, loaded, _, duplicate, _) = tickets[0]
    assert loaded == 0
    assert duplicate == read > 0  # read again: every ticket a duplicate


def test_remembered_hashes_are_found_exactly() -> None:
    rng = np.random.default_rng(7)
    runs: list[Any] = []
    seen: list[Any] = []
    for size in (1000, 10, 500, 500, 3, 2000, 1, 64):
        batch = np.sort(rng.integers(0, 5000, size=size, dtype=np.uint64))
        query = np.sort(rng.integers(0, 5000, size=300, dtype=np.uint64))
        expect = np.unique(query[np.isin(query, np.concatenate(seen))]) if seen else np.array([], dtype=np.uint64)
        np.testing.assert_array_equal(staging._seen(runs, query), expect)
        staging._remember(runs, batch)
        seen.append(batch)
        assert all(np.all(r[:-1] <= r[1:]) for r in runs)  # every run sorted
        assert all(runs[i].size > 2 * runs[i + 1].size for i in range(len(runs) - 1))  # sizes at least double
        assert sum(r.size for r in runs) == sum(s.size for s in seen)


def test_repeated_hashes() -> None:
    h = np.array([1, 2, 2, 3, 5, 5, 5, 9], dtype=np.uint64)
    np.testing.assert_array_equal(staging._repeated(h), np.array([2, 5], dtype=np.uint64))
    assert staging._repeated(np.array([], dtype=np.uint64)).size == 0


@pytest.mark.usefixtures("small_flushes")
def test_the_bookkeeping_is_used_in_every_merge_of_a_file_and_ends_with_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    used: list[bool] = []
    stored_hits = staging._stored_hits

    def spy(con: Any, *args: Any) -> None:
        used.append(staging._file_keys(con) is not None)
        stored_hits(con, *args)

    monkeypatch.setattr(staging, "_stored_hits", spy)
    with Store(":memory:") as store:
        ingest_vendor_file(store, second_file(tmp_path), reader="mixpanel")
        assert len(used) > 5  # one merge per flush (events, tickets and messages are merged only when staged)
        assert all(used)
        assert id(store.con) not in staging._FILE_KEYS
        with store.transaction():
            staging.reset_vendor_stage(store)
            assert staging._file_keys(store.con) == {}
        assert staging._file_keys(store.con) is None  # kept past its transaction (not forgotten), it is not used
        staging.forget_vendor_keys(store)


@pytest.mark.usefixtures("small_flushes")
def test_a_failed_file_rolls_back_and_leaves_no_bookkeeping(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    merges = 0
    merge = sources.merge_vendor_stage

    def failing(*args: Any, **kwargs: Any) -> Any:
        nonlocal merges
        merges += 1
        if merges == 7:  # a later flush of the file: earlier ones are merged and remembered
            raise RuntimeError("disk full")
        return merge(*args, **kwargs)

    with Store(":memory:") as store:
        ingest_vendor_file(store, first_file(tmp_path), reader="mixpanel")
        with monkeypatch.context() as m:
            m.setattr(sources, "merge_vendor_stage", failing)
            with pytest.raises(RuntimeError, match="disk full"):
                ingest_vendor_file(store, second_file(tmp_path), reader="mixpanel")
        assert merges == 7
        assert id(store.con) not in staging._FILE_KEYS
        assert store.count("events") == 6  # the first file only
        (r, _) = ingest_vendor_file(store, second_file(tmp_path), reader="mixpanel")
        assert (r.read, r.loaded, r.duplicate, r.quarantined) == (63, 39, 12, 12)  # as if the failed read never happened
        assert store.count("events") == 45


@pytest.mark.usefixtures("small_flushes")
def test_two_stores_in_one_process_keep_their_own_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def load() -> tuple[list[Any], dict[str, pd.DataFrame], dict[str, pd.DataFrame]]:
        with Store(":memory:") as a, Store(":memory:") as b:
            counts = []
            for store, f in ((a, first_file(tmp_path)), (b, second_file(tmp_path)), (a, second_file(tmp_path)), (b, first_file(tmp_path))):
                counts.append([(r.table, r.read, r.loaded, r.updated, r.duplicate, r.quarantined) for r in ingest_vendor_file(store, f, reader="mixpanel", run="r")])
            return counts, snapshot(a), snapshot(b)

    new_counts, new_a, new_b = load()
    with monkeypatch.context() as m:
        m.setattr(staging, "_file_keys", lambda con: None)
        old_counts, old_a, old_b = load()
    assert new_counts == old_counts
    assert_same(new_a, old_a)
    assert_same(new_b, old_b)
    assert new_counts[2][0] == ("events", 63, 39, 0, 12, 12)  # a: as in the two-file scenario
    assert new_counts[1][0][2] > 39  # b: the first file's keys were not stored there
