"""Generic ingest: validation, quarantine, reconciliation, idempotence."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from journeylib.exceptions import SourceFormatError
from journeylib.store import Store
from journeylib.store.ingest import file_sha256, ingest_file, ingest_files, ingest_folder

EVENTS_HEADER = "event_id,customer_id,user_id,timestamp,event,source,properties\n"


def write(path: Path, text: str | bytes) -> Path:
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def store() -> Store:
    s = Store(":memory:")
    yield s
    s.close()


def quarantine_reasons(store: Store) -> list[str]:
    return store.query("SELECT reason FROM quarantine ORDER BY line")["reason"].tolist()


# -- hand-computed cases ---------------------------------------------------------


def test_events_csv_hand_computed(store: Store, tmp_path: Path) -> None:
    f = write(
        tmp_path / "events.csv",
        EVENTS_HEADER
        + 'e1,c1,u1,2025-03-01T10:00:00+02:00,login,product,"{""device"": ""web""}"\n'  # 08:00 UTC
        + "e2,c1,,2025-03-01 09:30:00Z,invite_sent,product,\n"
        + "e3,c2,u9,2025-03-02T00:00:00-05:00,login,product,\n",  # 05:00 UTC next day
    )
    r = ingest_file(store, "events", f)
    # 3 rows read, all valid and new.
    assert (r.read, r.loaded, r.duplicate, r.quarantined) == (3, 3, 0, 0)
    ev = store.table("events")
    assert ev["event_id"].tolist() == ["e1", "e2", "e3"]  # canonical order: customer, then UTC timestamp (08:00 < 09:30)
    ts = {k: v.isoformat() for k, v in zip(ev["event_id"], ev["timestamp"], strict=True)}
    assert ts == {
        "e1": "2025-03-01T08:00:00+00:00",
        "e2": "2025-03-01T09:30:00+00:00",
        "e3": "2025-03-02T05:00:00+00:00",
    }
    props = dict(zip(ev["event_id"], ev["properties"], strict=True))
    assert json.loads(props["e1"]) == {"device": "web"}
    assert props["e2"] is None
    log = store.table("ingest_log")
    assert log[["rows_read", "rows_loaded", "rows_duplicate", "rows_quarantined"]].iloc[0].tolist() == [3, 3, 0, 0]
    assert log["sha256"].iloc[0] == file_sha256(f)


def test_naive_timestamps_taken_as_utc_and_said_so(store: Store, tmp_path: Path) -> None:
    f = write(tmp_path / "e.csv", EVENTS_HEADER + "e1,c1,,2025-03-01 10:00:00,login,,\ne2,c1,,2025-03-01T10:00:00Z,login,,\n")
    r = ingest_file(store, "events", f)
    assert r.loaded == 2
    assert any("timestamp: naive timestamps taken as UTC (1)" in n for n in r.notes)
    assert store.table("events")["timestamp"].iloc[0].isoformat() == "2025-03-01T10:00:00+00:00"


def test_extra_columns_kept_in_properties(store: Store, tmp_path: Path) -> None:
    f = write(
        tmp_path / "c.csv",
        "customer_id,signup_at,industry,employees\nc1,2025-01-01,retail,40\n",
    )
    ingest_file(store, "customers", f)
    props = json.loads(store.table("customers")["properties"].iloc[0])
    assert props == {"employees": "40", "industry": "retail"}


def test_reingest_same_file_changes_nothing(store: Store, tmp_path: Path) -> None:
    f = write(tmp_path / "e.csv", EVENTS_HEADER + "e1,c1,,2025-03-01T10:00:00Z,login,,\nbad,c1,,notatime,login,,\n")
    first = ingest_file(store, "events", f)
    before = {t: store.count(t) for t in ("events", "quarantine", "ingest_log")}
    second = ingest_file(store, "events", f)
    assert second.status == "skipped"
    assert {t: store.count(t) for t in before} == before
    forced = ingest_file(store, "events", f, force=True)
    # forced: the valid row is now a duplicate, the bad one quarantined again
    assert (forced.loaded, forced.duplicate, forced.quarantined) == (0, 1, 1)
    assert store.count("events") == first.loaded == 1


def test_overlapping_exports_deduplicate(store: Store, tmp_path: Path) -> None:
    a = write(tmp_path / "a.csv", EVENTS_HEADER + "e1,c1,,2025-03-01T10:00:00Z,login,,\ne2,c1,,2025-03-02T10:00:00Z,login,,\n")
    b = write(tmp_path / "b.csv", EVENTS_HEADER + "e2,c1,,2025-03-02T10:00:00Z,login,,\ne3,c1,,2025-03-03T10:00:00Z,login,,\n")
    ra, rb = ingest_files(store, "events", [a, b])
    assert (ra.loaded, ra.duplicate) == (2, 0)
    assert (rb.loaded, rb.duplicate) == (1, 1)
    assert store.count("events") == 3


def test_mutable_table_takes_newer_snapshot(store: Store, tmp_path: Path) -> None:
    a = write(tmp_path / "c1.csv", "customer_id,signup_at,churned_at\nc1,2025-01-01T00:00:00Z,\n")
    b = write(tmp_path / "c2.csv", "customer_id,signup_at,churned_at\nc1,2025-01-01T00:00:00Z,2025-06-01T00:00:00Z\n")
    ingest_file(store, "customers", a)
    r = ingest_file(store, "customers", b)
    assert (r.loaded, r.updated) == (1, 1)
    assert store.count("customers") == 1
    assert store.table("customers")["churned_at"].iloc[0].isoformat() == "2025-06-01T00:00:00+00:00"


def test_event_conflicting_with_stored_row_is_quarantined(store: Store, tmp_path: Path) -> None:
    a = write(tmp_path / "a.csv", EVENTS_HEADER + "e1,c1,,2025-03-01T10:00:00Z,login,,\n")
    b = write(tmp_path / "b.csv", EVENTS_HEADER + "e1,c1,,2025-03-01T10:00:00Z,logout,,\n")
    ingest_file(store, "events", a)
    r = ingest_file(store, "events", b)
    assert (r.loaded, r.quarantined) == (0, 1)
    assert "already stored with different content" in quarantine_reasons(store)[0]
    assert store.table("events")["event"].tolist() == ["login"]


def test_parquet_and_jsonl(store: Store, tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "message_id": ["m1", "m2"],
            "customer_id": ["c1", "c1"],
            "timestamp": pd.to_datetime(["2025-01-01T00:00:00Z", "2025-01-02T00:00:00Z"], utc=True),
            "status": ["opened", "clicked"],
            "campaign": ["welcome", "welcome"],
        }
    )
    frame.to_parquet(tmp_path / "m.parquet")
    r = ingest_file(store, "messages", tmp_path / "m.parquet")
    assert (r.read, r.loaded) == (2, 2)
    j = write(
        tmp_path / "m.jsonl",
        '{"message_id": "m3", "customer_id": "c1", "timestamp": "2025-01-03T00:00:00Z", "status": "Bounced", "reason": "mailbox full"}\n'
        + "[1, 2]\n"
        + '{"message_id": "m4", "customer_id": "c1", "timestamp": "2025-01-03T00:00:00Z", "status": "read"}\n',
    )
    r = ingest_file(store, "messages", j)
    assert (r.read, r.loaded, r.quarantined) == (3, 1, 2)
    reasons = quarantine_reasons(store)
    assert reasons[0] == "expected a JSON object per line, found list"
    assert "column status: expected one of delivered, opened, clicked, bounced, unsubscribed, found 'read'" in reasons[1]
    m3 = store.table("messages", where="message_id = 'm3'")
    assert m3["status"].iloc[0] == "bounced"
    assert json.loads(m3["properties"].iloc[0]) == {"reason": "mailbox full"}


def test_ingest_folder(store: Store, tmp_path: Path) -> None:
    write(tmp_path / "customers.csv", "customer_id,signup_at\nc1,2025-01-01T00:00:00Z\n")
    (tmp_path / "events").mkdir()
    write(tmp_path / "events" / "part-0.csv", EVENTS_HEADER + "e1,c1,,2025-03-01T10:00:00Z,login,,\n")
    write(tmp_path / "events" / "part-1.csv", EVENTS_HEADER + "e2,c1,,2025-03-01T11:00:00Z,login,,\n")
    results = ingest_folder(store, tmp_path)
    assert [r.table for r in results] == ["customers", "events", "events"]
    assert store.count("events") == 2


# -- bad input: each kind, with its message ---------------------------------------

FILE_ERRORS = [
    ("empty.csv", b"", "the file is empty"),
    ("blank.csv", b"   \n\n", "only white space"),
    ("semicolon.csv", b"event_id;customer_id;timestamp;event\ne1;c1;2025-01-01;login\n", "separated by semicolons"),
    ("missing.csv", b"event_id,customer_id,event\ne1,c1,login\n", "missing required column(s) timestamp"),
    ("binary.csv", b"\x00\x01\x02PK\x03\x04", "binary content"),
    ("events.xlsx", b"whatever", "cannot tell the format"),
    ("dupcol.csv", b"event_id,event_id,customer_id,timestamp,event\n", "header repeats column(s) ['event_id']"),
    ("bad.parquet", b"PAR1 not really parquet", "not a readable Parquet file"),
    ("nofields.jsonl", b'{"a": 1}\n{"b": 2}\n', "no line has any of the required fields"),
]


@pytest.mark.parametrize(("name", "content", "message"), FILE_ERRORS, ids=[f[0] for f in FILE_ERRORS])
def test_unreadable_file_fails_whole_and_loads_nothing(store: Store, tmp_path: Path, name: str, content: bytes, message: str) -> None:
    f = write(tmp_path / name, content)
    with pytest.raises(SourceFormatError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[").replace("]", r"\]")) as info:
        ingest_file(store, "events", f)
    assert str(f) in str(info.value)
    assert store.count("events") == 0
    assert store.count("ingest_log") == 0
    assert store.count("quarantine") == 0


def test_missing_file(store: Store, tmp_path: Path) -> None:
    with pytest.raises(SourceFormatError, match="no such file"):
        ingest_file(store, "events", tmp_path / "nope.csv")


def test_unknown_table(store: Store, tmp_path: Path) -> None:
    f = write(tmp_path / "e.csv", EVENTS_HEADER)
    with pytest.raises(ValueError, match="unknown table 'sessions': the generic ingest loads one of customers, users"):
        ingest_file(store, "sessions", f)


ROW_ERRORS = [
    ("truncated", "e1,c1,,2025-03-01T10:00:00Z\n", "expected 7 fields as in the header, found 4 (truncated row"),
    ("bad timestamp", "e1,c1,,yesterday,login,,\n", "column timestamp: expected an ISO-8601 timestamp such as 2025-03-01T09:30:00Z, found 'yesterday'"),
    ("impossible date", "e1,c1,,2025-02-30T10:00:00Z,login,,\n", "column timestamp: expected an ISO-8601 timestamp"),
    ("empty id", " ,c1,,2025-03-01T10:00:00Z,login,,\n", "column event_id: required value is empty"),
    ("empty customer", "e1,,,2025-03-01T10:00:00Z,login,,\n", "column customer_id: required value is empty"),
    ("empty event", "e1,c1,,2025-03-01T10:00:00Z,,,\n", "column event: required value is empty"),
    ("properties not json", "e1,c1,,2025-03-01T10:00:00Z,login,,{oops\n", "column properties: expected a JSON object, found '{oops'"),
    ("properties a list", 'e1,c1,,2025-03-01T10:00:00Z,login,,"[1,2]"\n', "column properties: expected a JSON object, found list"),
    ("too many fields", "e1,c1,,2025-03-01T10:00:00Z,login,,,extra\n", "expected 7 fields as in the header, found 8"),
]


@pytest.mark.parametrize(("kind", "row", "message"), ROW_ERRORS, ids=[r[0] for r in ROW_ERRORS])
def test_bad_rows_are_quarantined_with_reason(store: Store, tmp_path: Path, kind: str, row: str, message: str) -> None:
    f = write(tmp_path / "e.csv", EVENTS_HEADER + "ok1,c1,,2025-03-01T10:00:00Z,login,,\n" + row)
    r = ingest_file(store, "events", f)
    assert (r.read, r.loaded, r.quarantined) == (2, 1, 1)
    q = store.table("quarantine")
    assert q["line"].tolist() == [3]
    assert message in q["reason"].iloc[0]
    assert q["file"].iloc[0] == str(f)
    assert q["raw"].iloc[0]  # raw content kept


def test_non_utf8_bytes(store: Store, tmp_path: Path) -> None:
    f = write(tmp_path / "e.csv", (EVENTS_HEADER + "e1,c1,,2025-03-01T10:00:00Z,caf\xe9,,\n").encode("latin-1"))
    r = ingest_file(store, "events", f)
    assert r.quarantined == 1
    assert "column event: bytes that are not valid UTF-8" in quarantine_reasons(store)[0]


def test_bom_is_ignored(store: Store, tmp_path: Path) -> None:
    f = write(tmp_path / "e.csv", ("\ufeff" + EVENTS_HEADER + "e1,c1,,2025-03-01T10:00:00Z,login,,\n").encode("utf-8"))
    assert ingest_file(store, "events", f).loaded == 1


def test_huge_field(store: Store, tmp_path: Path) -> None:
    big = "x" * 1_100_000
    f = write(tmp_path / "t.csv", f"ticket_id,customer_id,created_at,body\nt1,c1,2025-01-01T00:00:00Z,{big}\nt2,c1,2025-01-01T00:00:00Z,short\n")
    r = ingest_file(store, "tickets", f)
    assert (r.loaded, r.quarantined) == (1, 1)
    q = store.table("quarantine")
    assert "column body: field longer than 1,000,000 characters" in q["reason"].iloc[0]
    assert len(q["raw"].iloc[0]) < 5_000  # the raw copy is truncated, not stored whole


def test_wrong_types(store: Store, tmp_path: Path) -> None:
    f = write(tmp_path / "c.csv", "customer_id,signup_at,mrr\nc1,2025-01-01,12.5\nc2,2025-01-01,twelve\nc3,2025-01-01,inf\n")
    r = ingest_file(store, "customers", f)
    # an optional value that is not a number is stored as empty and noted; a non-finite one refuses the row
    assert (r.loaded, r.quarantined, r.notes_count) == (2, 1, 1)
    assert quarantine_reasons(store) == ["column mrr: expected a finite number, found 'inf'"]
    note = store.table("ingest_notes").iloc[0]
    assert (note["line"], note["row_key"], note["field"], note["value"]) == (3, "c2", "mrr", "twelve")
    assert note["reason"] == "expected a finite number; stored as empty"
    assert pd.isna(store.table("customers", where="customer_id = 'c2'")["mrr"].iloc[0])


def test_jsonl_nested_value_in_plain_column(store: Store, tmp_path: Path) -> None:
    f = write(tmp_path / "e.jsonl", '{"event_id": "e1", "customer_id": {"id": 1}, "timestamp": "2025-01-01T00:00:00Z", "event": "login"}\n')
    r = ingest_file(store, "events", f)
    assert r.quarantined == 1
    assert "column customer_id: expected a plain value, found a JSON dict" in quarantine_reasons(store)[0]


def test_jsonl_truncated_and_not_utf8(store: Store, tmp_path: Path) -> None:
    good = '{"event_id": "e1", "customer_id": "c1", "timestamp": "2025-01-01T00:00:00Z", "event": "login"}\n'
    f = write(tmp_path / "e.jsonl", good.encode() + b'{"event_id": "e2", "custo\n' + b'{"event_id": "\xff"}\n')
    r = ingest_file(store, "events", f)
    assert (r.read, r.loaded, r.quarantined) == (3, 1, 2)
    reasons = quarantine_reasons(store)
    assert reasons[0].startswith("not valid JSON")
    assert reasons[1].startswith("bytes that are not valid UTF-8")


def test_duplicate_ids_in_one_file(store: Store, tmp_path: Path) -> None:
    f = write(
        tmp_path / "e.csv",
        EVENTS_HEADER
        + "e1,c1,,2025-03-01T10:00:00Z,login,,\n"
        + "e1,c1,,2025-03-01T10:00:00Z,login,,\n"  # identical: a duplicate
        + "e2,c1,,2025-03-01T10:00:00Z,login,,\n"
        + "e2,c1,,2025-03-01T11:00:00Z,login,,\n",  # same id, other content: both quarantined
    )
    r = ingest_file(store, "events", f)
    assert (r.read, r.loaded, r.duplicate, r.quarantined) == (4, 1, 1, 2)
    reasons = quarantine_reasons(store)
    assert reasons == ["rows with event_id=e2 disagree (lines 4, 5); none was loaded"] * 2


def test_gzip_is_not_guessed(store: Store, tmp_path: Path) -> None:
    f = write(tmp_path / "e.csv.gz", gzip.compress(EVENTS_HEADER.encode()))
    with pytest.raises(SourceFormatError, match=r"cannot tell the format from the ending '\.gz'"):
        ingest_file(store, "events", f)


def test_multiline_quoted_field_keeps_line_numbers(store: Store, tmp_path: Path) -> None:
    f = write(
        tmp_path / "t.csv",
        'ticket_id,customer_id,created_at,body\nt1,c1,2025-01-01T00:00:00Z,"line one\nline two"\nt2,c1,bad,x\n',
    )
    ingest_file(store, "tickets", f)
    assert store.table("quarantine")["line"].tolist() == [4]
    assert store.table("tickets")["body"].iloc[0] == "line one\nline two"


# -- properties (Hypothesis) --------------------------------------------------------

row_st = st.tuples(
    st.sampled_from(["e1", "e2", "e3", "e4", "e5", "", " "]),
    st.sampled_from(["c1", "c2", ""]),
    st.sampled_from(["2025-03-01T10:00:00Z", "2025-03-01 12:00:00+02:00", "2025-03-02", "bad", ""]),
    st.sampled_from(["login", "invite_sent", ""]),
)


def _csv(rows: list[tuple[str, str, str, str]]) -> str:
    return EVENTS_HEADER + "".join(f"{a},{b},,{c},{d},,\n" for a, b, c, d in rows)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(row_st, max_size=12), data=st.data())
def test_counts_reconcile_idempotent_and_order_free(tmp_path: Path, rows: list[tuple[str, str, str, str]], data: st.DataObject) -> None:
    shuffled = data.draw(st.permutations(rows))
    results = []
    for variant in (rows, shuffled):
        with Store(":memory:") as s:
            f = write(tmp_path / "e.csv", _csv(list(variant)))
            r = ingest_file(s, "events", f)
            assert r.read == len(variant)
            assert r.read == r.loaded + r.duplicate + r.quarantined
            snapshot = s.table("events")
            again = ingest_file(s, "events", f, force=True)
            assert again.loaded == 0
            assert again.read == again.duplicate + again.quarantined
            pd.testing.assert_frame_equal(s.table("events"), snapshot)
            results.append((snapshot, r.quarantined, r.duplicate))
    (a, qa, da), (b, qb, db) = results
    pd.testing.assert_frame_equal(a, b)  # row order in the file does not matter
    assert (qa, da) == (qb, db)


def test_json_whitespace_differences_are_duplicates(store: Store, tmp_path: Path) -> None:
    a = write(tmp_path / "a.csv", EVENTS_HEADER + 'e1,c1,,2025-03-01T10:00:00Z,login,,"{""a"": 1}"\n')
    b = write(tmp_path / "b.csv", EVENTS_HEADER + 'e1,c1,,2025-03-01T10:00:00Z,login,,"{ ""a"" :1 }"\n')
    ingest_file(store, "events", a)
    r = ingest_file(store, "events", b)
    assert (r.loaded, r.duplicate, r.quarantined) == (0, 1, 0)


# -- snapshots by their own time (docs/adr/0009-snapshots-by-their-own-time.md) --------------

SNAPSHOT_HEADER = "customer_id,signup_at,churned_at,updated_at\n"


def test_older_snapshot_ingested_after_a_newer_one_is_a_duplicate(store: Store, tmp_path: Path) -> None:
    newer = write(tmp_path / "newer.csv", SNAPSHOT_HEADER + "c1,2025-01-01T00:00:00Z,2025-06-01T00:00:00Z,2025-06-02T00:00:00Z\n")
    older = write(tmp_path / "older.csv", SNAPSHOT_HEADER + "c1,2025-01-01T00:00:00Z,,2025-03-01T00:00:00Z\n")
    first = ingest_file(store, "customers", newer)
    second = ingest_file(store, "customers", older)
    assert first.reconciles
    assert second.reconciles
    # the older row is read and counted as a duplicate (a stale snapshot of a stored row): nothing is loaded
    assert (second.read, second.loaded, second.updated, second.duplicate, second.quarantined) == (1, 0, 0, 1, 0)
    row = store.table("customers").iloc[0]
    assert row["churned_at"].isoformat() == "2025-06-01T00:00:00+00:00"
    assert row["updated_at"].isoformat() == "2025-06-02T00:00:00+00:00"
    before = store.table("customers")
    assert ingest_file(store, "customers", older).status == "skipped"
    forced = ingest_file(store, "customers", older, force=True)
    assert (forced.loaded, forced.updated, forced.duplicate) == (0, 0, 1)
    pd.testing.assert_frame_equal(store.table("customers"), before)
    assert store.count("quarantine") == 0


def test_snapshots_without_updated_at_later_ingest_wins(store: Store, tmp_path: Path) -> None:
    header = "customer_id,signup_at,churned_at\n"
    a = write(tmp_path / "a.csv", header + "c1,2025-01-01T00:00:00Z,2025-06-01T00:00:00Z\n")
    b = write(tmp_path / "b.csv", header + "c1,2025-01-01T00:00:00Z,\n")
    ingest_file(store, "customers", a)
    r = ingest_file(store, "customers", b)
    assert r.reconciles
    assert (r.read, r.loaded, r.updated, r.duplicate, r.quarantined) == (1, 1, 1, 0, 0)
    assert pd.isna(store.table("customers")["churned_at"].iloc[0])
    before = store.table("customers")
    assert ingest_file(store, "customers", b, force=True).duplicate == 1
    pd.testing.assert_frame_equal(store.table("customers"), before)


# -- folders: every file accounted for; assignments ---------------------------------------------

ASSIGNMENTS_HEADER = "assignment_id,customer_id,experiment,variant,assigned_at\n"


def test_folder_names_every_file_it_does_not_ingest_with_the_reason(store: Store, tmp_path: Path) -> None:
    from journeylib.store.ingest import IngestResults

    write(tmp_path / "customers.csv", "customer_id,signup_at\nc1,2025-01-01T00:00:00Z\n")
    write(tmp_path / "assignments.csv", ASSIGNMENTS_HEADER + "c1:onb,c1,onb,control,2025-01-01T01:00:00Z\n")
    (tmp_path / "events.parquet").mkdir()  # a folder named like a file, as Spark writes it
    pd.DataFrame(
        {"event_id": ["e1"], "customer_id": ["c1"], "timestamp": ["2025-03-01T10:00:00Z"], "event": ["login"], "source": ["web"]}
    ).to_parquet(tmp_path / "events.parquet" / "part-0.parquet")
    write(tmp_path / "events.parquet" / "_SUCCESS", "")
    write(tmp_path / "events.parquet" / ".part-0.parquet.crc", "x")
    write(tmp_path / "truth.json", "{}")
    write(tmp_path / "Users.csv", "user_id,customer_id\nu1,c1\n")
    write(tmp_path / "tickets.xlsx", "not read")
    (tmp_path / "vendor" / "zendesk").mkdir(parents=True)
    write(tmp_path / "vendor" / "zendesk" / "tickets.json", "{}")
    write(tmp_path / "vendor" / "sources.yaml", "version: 1\n")
    results = ingest_folder(store, tmp_path)
    assert isinstance(results, IngestResults)
    assert [(Path(r.file).name, r.table, r.status) for r in results] == [
        ("customers.csv", "customers", "loaded"),
        ("part-0.parquet", "events", "loaded"),
        ("assignments.csv", "assignments", "loaded"),
    ]
    reasons = {Path(n.path).name: n.reason for n in results.not_ingested}
    assert set(reasons) == {".part-0.parquet.crc", "_SUCCESS", "truth.json", "Users.csv", "tickets.xlsx", "vendor"}
    assert reasons[".part-0.parquet.crc"] == "a hidden file"
    assert reasons["_SUCCESS"].startswith("a file without an extension is not read (the canonical ingest reads .csv")
    assert reasons["tickets.xlsx"].startswith("the format .xlsx is not read")
    assert reasons["Users.csv"] == "table names are lower case: rename the file to users.csv"
    assert reasons["truth.json"].startswith("the file is not named after a table the canonical ingest loads")
    assert "assignments" in reasons["truth.json"]
    assert reasons["vendor"].startswith("the folder (its 2 file(s) were not read)")
    lines = results.lines()
    assert f"{tmp_path / 'truth.json'}: not ingested: the file is not named after" in "\n".join(lines)
    total = next(line for line in lines if line.startswith("total:"))
    assert total.endswith("6 file(s) or folder(s) of the folder not ingested (listed above)")
    # the new source's kind follows the total
    assert lines[-1].startswith("source web: kind product (default: journeylib does not know the name")
    assert store.count("assignments") == 1


def test_folder_without_canonical_files_says_what_it_holds(store: Store, tmp_path: Path) -> None:
    write(tmp_path / "export.csv", "a,b\n1,2\n")
    with pytest.raises(SourceFormatError, match=r"no canonical files .* found\.\n.*export\.csv: not ingested: the file is not named after a table"):
        ingest_folder(store, tmp_path)


def test_assignments_key_on_assignment_id_and_a_second_variant_is_a_conflict(store: Store, tmp_path: Path) -> None:
    # c1 keeps one variant; c2 is given two variants of onb under one id: both rows quarantined, none merged.
    f = write(
        tmp_path / "assignments.csv",
        ASSIGNMENTS_HEADER
        + "c1:onb,c1,onb,control,2025-01-01T01:00:00Z\n"
        + "c1:onb,c1,onb,control,2025-01-01T01:00:00Z\n"
        + "c2:onb,c2,onb,variant_b,2025-01-02T01:00:00Z\n"
        + "c2:onb,c2,onb,control,2025-01-02T01:00:00Z\n"
        + "c3:onb,c3,onb,,2025-01-02T01:00:00Z\n",
    )
    r = ingest_file(store, "assignments", f)
    # read 5 = loaded 1 (c1) + duplicate 1 (c1 again) + quarantined 3 (two c2 rows, c3 without a variant)
    assert (r.read, r.loaded, r.duplicate, r.quarantined) == (5, 1, 1, 3)
    assert store.table("assignments")[["customer_id", "experiment", "variant"]].values.tolist() == [["c1", "onb", "control"]]
    reasons = quarantine_reasons(store)
    assert any("column variant: required value is empty" in x for x in reasons)
    # a later file that gives c1 another variant is a conflict with the stored row, not an update
    g = write(tmp_path / "late.csv", ASSIGNMENTS_HEADER + "c1:onb,c1,onb,variant_b,2025-01-05T00:00:00Z\n")
    r2 = ingest_file(store, "assignments", g)
    assert (r2.loaded, r2.quarantined) == (0, 1)
    assert store.table("assignments")["variant"].tolist() == ["control"]


def test_ingest_files_records_declared_and_default_source_kinds(store: Store, tmp_path: Path) -> None:
    f = write(
        tmp_path / "e.csv",
        EVENTS_HEADER + "e1,c1,,2025-03-01T10:00:00Z,login,ios,\ne2,c1,,2025-03-01T11:00:00Z,email_opened,braze,\n",
    )
    results = ingest_files(store, "events", [f], source_kinds={"braze": "email"})
    assert [(k.source, k.kind, k.origin, k.previous) for k in results.source_kinds] == [
        ("braze", "email", "declared", ""),
        ("ios", "product", "default", ""),
    ]
    assert results.lines()[-2:] == [k.summary() for k in results.source_kinds]
    with pytest.raises(ValueError, match="source 'braze': kind 'mail' is not one of product, crm, support, email"):
        ingest_files(store, "events", [f], source_kinds={"braze": "mail"})
    assert store.count("ingest_log") == 1  # the bad declaration was refused before anything was read
