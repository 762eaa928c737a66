"""The canonical reader: nothing lost, nothing silent, one record never takes a file down.

One test per failure of issue 11 for canonical CSV, JSON Lines and Parquet
files; each failed before the reader accounted for every value.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from journeylib import health
from journeylib.store import Store
from journeylib.store.ingest import ingest_file, ingest_folder

EVENTS_HEADER = "event_id,customer_id,user_id,timestamp,event,source,properties\n"
GOOD_EVENT = '{"event_id": "ok", "customer_id": "c1", "timestamp": "2025-03-01T10:00:00Z", "event": "login"}\n'


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


def quarantine(store: Store) -> pd.DataFrame:
    return store.query("SELECT line, reason FROM quarantine ORDER BY line, reason")


def notes(store: Store) -> pd.DataFrame:
    return store.query("SELECT line, row_key, field, value, reason FROM ingest_notes ORDER BY file, line, field")


# -- silent loss --------------------------------------------------------------------


def test_unbalanced_quote_does_not_swallow_the_next_rows(store: Store, tmp_path: Path) -> None:
    f = write(
        tmp_path / "c.csv",
        "customer_id,name,signup_at\n"
        'c1,"Acme,2025-01-01T00:00:00Z\n'  # the quote never closes
        "c2,Beta,2025-01-02T00:00:00Z\n"
        "c3,Gamma,2025-01-03T00:00:00Z\n",
    )
    r = ingest_file(store, "customers", f)
    assert (r.read, r.loaded, r.quarantined) == (3, 2, 1)
    assert store.table("customers")["customer_id"].tolist() == ["c2", "c3"]
    q = quarantine(store)
    assert q["line"].tolist() == [2]
    assert q["reason"].iloc[0].startswith("unbalanced quote")


def test_unbalanced_quote_with_the_right_field_count_is_caught(store: Store, tmp_path: Path) -> None:
    # the open quote swallows t2 and still yields four fields: t2 reads as a row of its own, so t1 is refused
    f = write(
        tmp_path / "t.csv",
        "ticket_id,customer_id,created_at,body\n"
        't1,c1,2025-01-01T00:00:00Z,"unclosed\n'
        "t2,c1,2025-01-02T00:00:00Z,fine\n"
        't3,c1,2025-01-03T00:00:00Z,"a ""quoted""\nmulti-line body"\n',
    )
    r = ingest_file(store, "tickets", f)
    assert (r.read, r.loaded, r.quarantined) == (3, 2, 1)
    tickets = store.table("tickets")
    assert tickets["ticket_id"].tolist() == ["t2", "t3"]
    assert tickets["body"].tolist() == ["fine", 'a "quoted"\nmulti-line body']  # real multi-line fields still read
    assert quarantine(store)["line"].tolist() == [2]


def test_optional_value_that_cannot_be_read_is_noted_not_silent(store: Store, tmp_path: Path) -> None:
    f = write(
        tmp_path / "c.csv",
        "customer_id,signup_at,converted_at,mrr\n"
        "c1,2025-01-01,soon,12.5\n"  # optional timestamp unreadable: row kept, value noted
        "c2,yesterday,2025-02-01,10\n",  # required timestamp unreadable: row quarantined
    )
    r = ingest_file(store, "customers", f)
    assert (r.read, r.loaded, r.quarantined, r.notes_count) == (2, 1, 1, 1)
    c1 = store.table("customers").iloc[0]
    assert pd.isna(c1["converted_at"])
    assert c1["mrr"] == 12.5
    assert notes(store).to_dict("records") == [
        {
            "line": 2,
            "row_key": "c1",
            "field": "converted_at",
            "value": "soon",
            "reason": "expected an ISO-8601 timestamp such as 2025-03-01T09:30:00Z; stored as empty",
        }
    ]
    assert "column signup_at: expected an ISO-8601 timestamp" in quarantine(store)["reason"].iloc[0]
    log = store.table("ingest_log").iloc[0]
    assert log["notes_count"] == 1
    assert "1 unreadable optional value(s) stored as empty" in r.summary()


def test_nul_byte_after_the_first_8_kb_is_refused(store: Store, tmp_path: Path) -> None:
    long_body = "x" * 10_000
    f = write(
        tmp_path / "t.csv",
        "ticket_id,customer_id,created_at,body\n"
        f"t1,c1,2025-01-01T00:00:00Z,{long_body}\n"
        "t2,c1,2025-01-02T00:00:00Z,bad\x00byte\n",
    )
    r = ingest_file(store, "tickets", f)
    assert (r.loaded, r.quarantined) == (1, 1)
    assert quarantine(store)["reason"].tolist() == ["column body: a NUL character; NUL is refused anywhere in a row"]
    assert store.query("SELECT count(*) AS n FROM tickets WHERE contains(body, chr(0))")["n"].iloc[0] == 0


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("nan.jsonl", '{"event_id": "e2", "customer_id": "c1", "timestamp": "2025-03-01T10:00:00Z", "event": "login", "properties": {"x": NaN}}\n'),
        ("inf.jsonl", '{"event_id": "e2", "customer_id": "c1", "timestamp": "2025-03-01T10:00:00Z", "event": "login", "properties": {"x": -Infinity}}\n'),
        ("huge.jsonl", '{"event_id": "e2", "customer_id": "c1", "timestamp": "2025-03-01T10:00:00Z", "event": "login", "properties": {"x": 1e999}}\n'),
        ("nan.csv", EVENTS_HEADER + 'e2,c1,,2025-03-01T10:00:00Z,login,,"{""x"": NaN}"\n'),
        ("nul.jsonl", '{"event_id": "e2", "customer_id": "c1", "timestamp": "2025-03-01T10:00:00Z", "event": "login", "properties": {"x": "a\\u0000b"}}\n'),
    ],
)
def test_non_finite_numbers_and_nul_in_properties_are_refused(store: Store, tmp_path: Path, name: str, content: str) -> None:
    good = GOOD_EVENT if name.endswith(".jsonl") else EVENTS_HEADER + "ok,c1,,2025-03-01T10:00:00Z,login,,\n"
    body = good + content if name.endswith(".jsonl") else good + content.removeprefix(EVENTS_HEADER)
    f = write(tmp_path / name, body)
    r = ingest_file(store, "events", f)
    assert (r.read, r.loaded, r.quarantined) == (2, 1, 1)
    assert "refused anywhere in a row" in quarantine(store)["reason"].iloc[0]
    for text in store.query("SELECT CAST(properties AS VARCHAR) AS p FROM events WHERE properties IS NOT NULL")["p"]:
        json.loads(text, parse_constant=lambda c: pytest.fail(f"stored JSON holds {c}"))


def test_non_finite_floats_in_parquet_are_refused_not_dropped(store: Store, tmp_path: Path) -> None:
    table = pa.table(
        {
            "event_id": ["e1", "e2", "e3"],
            "customer_id": ["c1", "c1", "c1"],
            "timestamp": pa.array(pd.to_datetime(["2025-03-01", "2025-03-02", "2025-03-03"], utc=True)),
            "event": ["login", "login", "login"],
            "score": pa.array([1.5, float("nan"), float("inf")], pa.float64()),
        }
    )
    pq.write_table(table, tmp_path / "e.parquet")
    r = ingest_file(store, "events", tmp_path / "e.parquet")
    assert (r.read, r.loaded, r.quarantined) == (3, 1, 2)
    assert quarantine(store)["reason"].tolist() == [
        "column score: NaN; non-finite numbers are refused anywhere in a row",
        "column score: an infinite number; non-finite numbers are refused anywhere in a row",
    ]
    assert json.loads(store.table("events")["properties"].iloc[0]) == {"score": 1.5}


def test_parquet_bytes_that_are_not_utf8_refuse_the_row_not_the_file(store: Store, tmp_path: Path) -> None:
    # found by tests/test_fuzz.py: a binary id of bytes that are not UTF-8 raised UnicodeDecodeError out of the ingest
    table = pa.table(
        {
            "event_id": pa.array([b"e1", b"\xff\xfe", b"e\x003"], pa.binary()),
            "customer_id": ["c1", "c1", "c1"],
            "timestamp": pa.array(pd.to_datetime(["2025-03-01", "2025-03-02", "2025-03-03"], utc=True)),
            "event": ["login", "login", "login"],
        }
    )
    pq.write_table(table, tmp_path / "e.parquet")
    r = ingest_file(store, "events", tmp_path / "e.parquet")
    assert (r.read, r.loaded, r.quarantined) == (3, 1, 2)
    assert [reason.split(";")[0] for reason in quarantine(store)["reason"]] == [
        "column event_id: bytes that are not UTF-8 text",
        "column event_id: a NUL character",
    ]
    assert store.table("events")["event_id"].tolist() == ["e1"]  # bytes that are UTF-8 read as text, as before


def test_zero_width_space_in_an_id_is_refused(store: Store, tmp_path: Path) -> None:
    f = write(
        tmp_path / "c.csv",
        "customer_id,signup_at\nc1,2025-01-01\nc1\u200b,2025-01-01\n\ufeffc2,2025-01-01\n",
    )
    r = ingest_file(store, "customers", f)
    assert (r.read, r.loaded, r.quarantined) == (3, 1, 2)
    assert store.table("customers")["customer_id"].tolist() == ["c1"]
    reasons = quarantine(store)["reason"].tolist()
    assert reasons[0] == (
        "column customer_id: invisible character U+200B (ZERO WIDTH SPACE) in the id; ids may not hold invisible characters"
    )
    assert "U+FEFF" in reasons[1]


def test_invisible_character_in_an_optional_id_is_noted(store: Store, tmp_path: Path) -> None:
    f = write(tmp_path / "e.csv", EVENTS_HEADER + "e1,c1,u1\u200d,2025-03-01T10:00:00Z,login,,\n")
    r = ingest_file(store, "events", f)
    assert (r.loaded, r.notes_count) == (1, 1)
    assert store.table("events")["user_id"].isna().all()
    note = notes(store).iloc[0]
    assert (note["field"], note["value"]) == ("user_id", "u1\u200d")
    assert "U+200D (ZERO WIDTH JOINER)" in note["reason"]


# -- far dates ------------------------------------------------------------------------

FAR = [
    {"customer_id": "c1", "signup_at": "2025-01-01T00:00:00Z", "renewal_at": "9999-12-31T00:00:00Z"},  # sentinel: none
    {"customer_id": "c2", "signup_at": "2025-01-01T00:00:00Z", "renewal_at": "2300-06-01T00:00:00Z"},  # far future
    {"customer_id": "c3", "signup_at": "1600-01-01T00:00:00Z", "renewal_at": ""},  # far past
    {"customer_id": "c4", "signup_at": "9999-12-31T00:00:00Z", "renewal_at": ""},  # sentinel where a value is required
]


def _far_file(tmp_path: Path, fmt: str) -> Path:
    if fmt == "csv":
        lines = ["customer_id,signup_at,renewal_at"] + [f"{r['customer_id']},{r['signup_at']},{r['renewal_at']}" for r in FAR]
        return write(tmp_path / "c.csv", "\n".join(lines) + "\n")
    if fmt == "jsonl":
        rows = [{k: v for k, v in r.items() if v} for r in FAR]
        return write(tmp_path / "c.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    def ts(text: str) -> pd.Timestamp | None:
        return pd.Timestamp(text).as_unit("us") if text else None

    table = pa.table(
        {
            "customer_id": [r["customer_id"] for r in FAR],
            "signup_at": pa.array([ts(r["signup_at"]) for r in FAR], pa.timestamp("us", tz="UTC")),
            "renewal_at": pa.array([ts(r["renewal_at"]) for r in FAR], pa.timestamp("us", tz="UTC")),
        }
    )
    pq.write_table(table, tmp_path / "c.parquet")
    return tmp_path / "c.parquet"


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_far_dates_read_alike_in_every_format(store: Store, tmp_path: Path, fmt: str) -> None:
    r = ingest_file(store, "customers", _far_file(tmp_path, fmt))
    assert (r.read, r.loaded, r.quarantined, r.notes_count) == (4, 3, 1, 1)
    c = store.table("customers").set_index("customer_id")
    assert pd.isna(c.loc["c1", "renewal_at"])  # 9999-12-31 means "none"
    assert c.loc["c2", "renewal_at"].isoformat() == "2300-06-01T00:00:00+00:00"
    assert c.loc["c3", "signup_at"].isoformat() == "1600-01-01T00:00:00+00:00"
    note = notes(store).iloc[0]
    assert (note["row_key"], note["field"], note["reason"]) == ("c1", "renewal_at", "a date that means 'none'; stored as empty")
    assert note["value"].startswith("9999-12-31")
    assert "column signup_at: '9999-12-31" in quarantine(store)["reason"].iloc[0]


# -- one record never takes a file down ---------------------------------------------------


def test_lone_surrogate_escape_refuses_the_row_not_the_file(store: Store, tmp_path: Path) -> None:
    bad = '{"event_id": "e2", "customer_id": "c1", "timestamp": "2025-03-01T10:00:00Z", "event": "login", "properties": {"x": "\\ud800"}}\n'
    f = write(tmp_path / "e.jsonl", GOOD_EVENT + bad)
    r = ingest_file(store, "events", f)
    assert (r.read, r.loaded, r.quarantined) == (2, 1, 1)
    assert quarantine(store)["reason"].iloc[0] == "a lone surrogate escape (\\ud800) that is not a character"
    c = write(tmp_path / "e.csv", EVENTS_HEADER + 'e3,c1,,2025-03-01T10:00:00Z,login,,"{""x"": ""\\udc00""}"\n')
    r = ingest_file(store, "events", c)
    assert (r.read, r.loaded, r.quarantined) == (1, 0, 1)
    assert "column properties: a lone surrogate escape (\\udc00)" in quarantine(store)["reason"].iloc[-1]


@pytest.mark.parametrize("depth", [65, 100_000])
def test_deep_json_refuses_the_row_not_the_file(store: Store, tmp_path: Path, depth: int) -> None:
    deep = "[" * depth + "]" * depth
    bad = '{"event_id": "e2", "customer_id": "c1", "timestamp": "2025-03-01T10:00:00Z", "event": "login", "properties": {"x": ' + deep + "}}\n"
    f = write(tmp_path / "e.jsonl", GOOD_EVENT + bad)
    r = ingest_file(store, "events", f)
    assert (r.read, r.loaded, r.quarantined) == (2, 1, 1)
    assert "JSON nested" in quarantine(store)["reason"].iloc[0]
    c = write(tmp_path / "e.csv", EVENTS_HEADER + f'e3,c1,,2025-03-01T10:00:00Z,login,,"{{""x"": {deep}}}"\n')
    r = ingest_file(store, "events", c)
    assert (r.read, r.loaded, r.quarantined) == (1, 0, 1)


def test_jsonl_field_longer_than_the_cap_is_refused(store: Store, tmp_path: Path) -> None:
    big = "x" * 1_100_000
    line = json.dumps({"ticket_id": "t2", "customer_id": "c1", "created_at": "2025-01-01T00:00:00Z", "body": big}) + "\n"
    ok = json.dumps({"ticket_id": "t1", "customer_id": "c1", "created_at": "2025-01-01T00:00:00Z", "body": "short"}) + "\n"
    r = ingest_file(store, "tickets", write(tmp_path / "t.jsonl", ok + line))
    assert (r.loaded, r.quarantined) == (1, 1)
    assert quarantine(store)["reason"].iloc[0] == "field body: longer than 1,000,000 characters"


def test_forced_reread_adds_no_quarantine_row_or_note_twice(store: Store, tmp_path: Path) -> None:
    f = write(
        tmp_path / "e.csv",
        EVENTS_HEADER
        + "e1,c1,u\u200b,2025-03-01T10:00:00Z,login,,\n"  # noted
        + "bad,c1,,notatime,login,,\n"  # quarantined while reading
        + "e2,c1,,2025-03-01T10:00:00Z,login,,\n"
        + "e2,c1,,2025-03-01T11:00:00Z,login,,\n",  # quarantined by the merge (key disagrees)
    )
    first = ingest_file(store, "events", f)
    assert (first.quarantined, first.notes_count) == (3, 1)
    again = ingest_file(store, "events", f, force=True)
    assert (again.read, again.duplicate, again.quarantined, again.notes_count) == (4, 1, 3, 0)
    assert store.count("quarantine") == 3
    assert store.count("ingest_notes") == 1
    assert store.table("ingest_log")["notes_count"].tolist() == [1, 0]
    keys = store.query("SELECT count(*) AS n, count(DISTINCT (table_name, file, line, raw, reason)) AS k FROM quarantine")
    assert keys["n"].iloc[0] == keys["k"].iloc[0]


def test_notes_are_written_with_the_file_or_not_at_all(store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import journeylib.store.ingest as ingest_module

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("merge failed")

    monkeypatch.setattr(ingest_module, "merge_stage", broken)
    f = write(tmp_path / "c.csv", "customer_id,signup_at,mrr\nc1,2025-01-01,twelve\n")
    with pytest.raises(RuntimeError, match="merge failed"):
        ingest_file(store, "customers", f)
    assert store.count("ingest_notes") == 0
    assert store.count("customers") == 0


def test_folder_goes_on_after_a_refused_file_and_fails_at_the_end(store: Store, tmp_path: Path) -> None:
    from journeylib.store.ingest import IngestIncompleteError

    write(tmp_path / "customers.csv", "customer_id,signup_at\nc1,2025-01-01T00:00:00Z\n")
    (tmp_path / "events").mkdir()
    write(tmp_path / "events" / "part-0.csv", "event_id,customer_id,event\ne1,c1,login\n")  # no timestamp column
    write(tmp_path / "events" / "part-1.csv", EVENTS_HEADER + "e2,c1,,2025-03-01T11:00:00Z,login,,\n")
    with pytest.raises(IngestIncompleteError) as info:
        ingest_folder(store, tmp_path)
    assert [r.status for r in info.value.results] == ["loaded", "refused", "loaded"]
    assert store.table("events")["event_id"].tolist() == ["e2"]
    message = str(info.value)
    assert message.startswith("1 of 3 file(s) could not be read and were refused")
    assert "part-0.csv → events: refused, nothing loaded:" in message
    assert "missing required column(s) timestamp" in message
    assert "total: read 2 = loaded 2 + duplicate 0 + quarantined 0 over 3 file(s); 1 file(s) refused" in message


def test_cli_exits_non_zero_after_loading_the_readable_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from journeylib.cli import main

    good = write(tmp_path / "a.csv", EVENTS_HEADER + "e1,c1,,2025-03-01T10:00:00Z,login,,\n")
    bad = write(tmp_path / "b.csv", "")
    db = tmp_path / "s.duckdb"
    assert main(["ingest", "--db", str(db), "events", str(bad), str(good)]) == 1
    err = capsys.readouterr().err
    assert "b.csv → events: refused" in err
    assert "a.csv → events: read 1 = loaded 1" in err
    with Store(db, read_only=True) as s:
        assert s.count("events") == 1


def test_store_without_the_notes_table_is_upgraded(tmp_path: Path) -> None:
    with Store(":memory:") as s:
        s.execute("DROP TABLE ingest_notes")
        s.execute("ALTER TABLE ingest_log DROP COLUMN notes_count")
        f = write(tmp_path / "c.csv", "customer_id,signup_at,mrr\nc1,2025-01-01,twelve\n")
        assert ingest_file(s, "customers", f).notes_count == 1
        assert s.count("ingest_notes") == 1


# -- the data-health report shows the counts ----------------------------------------------


def test_health_shows_the_notes(store: Store, tmp_path: Path) -> None:
    f = write(
        tmp_path / "c.csv",
        "customer_id,signup_at,mrr,renewal_at\nc1,2025-01-01,twelve,9999-12-31\nc2,2025-01-01,n/a,\nc3,2025-01-01,3,\n",
    )
    ingest_file(store, "customers", f)
    write(tmp_path / "e.csv", EVENTS_HEADER + "e1,c1,,2025-03-01T10:00:00Z,login,,\n")
    ingest_file(store, "events", tmp_path / "e.csv")
    rec = health.ingest_reconciliation_data(store)
    assert rec["notes_count"].tolist() == [3, 0]
    out = health.notes_data(store)
    assert out[["table_name", "field", "reason", "values", "files"]].to_dict("records") == [
        {"table_name": "customers", "field": "mrr", "reason": "expected a finite number; stored as empty", "values": 2, "files": 1},
        {"table_name": "customers", "field": "renewal_at", "reason": "a date that means 'none'; stored as empty", "values": 1, "files": 1},
    ]
    assert out[["example_value", "example_line"]].iloc[0].tolist() == ["twelve", 2]
    summary = health.data_health_summary(store)
    assert summary["ingest_notes"] == 3
    assert summary["table_rows"]["ingest_notes"] == 3
