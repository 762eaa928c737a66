"""Zendesk reader: documented examples of tickets, users, organizations, ticket events; bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from journeylib.exceptions import SourceFormatError
from journeylib.store import Store
from journeylib.store.sources import detect_kind, ingest_source_files, ingest_vendor_file

VENDORS = Path(__file__).parent / "data" / "vendors"
FILES = sorted((VENDORS / "zendesk").glob("*.json"))


@pytest.fixture
def store() -> Store:
    s = Store(":memory:")
    ingest_source_files(s, "salesforce", sorted((VENDORS / "salesforce").glob("*.csv")))
    yield s
    s.close()


def test_kinds_are_recognised_from_content() -> None:
    assert {p.name: detect_kind("zendesk", p) for p in FILES} == {
        "organizations.json": "organizations",
        "ticket_events.json": "ticket_events",
        "tickets.json": "tickets",
        "users.json": "users",
    }


def test_documented_examples(store: Store) -> None:
    res = ingest_source_files(store, "zendesk", list(reversed(FILES)))  # any order
    by = {(Path(r.file).name, r.table): r for r in res.files}
    t = by[("tickets.json", "tickets")]
    assert (t.read, t.loaded, t.quarantined) == (3, 3, 0)
    # ticket_created ×3, ticket_solved for 35437 (metric_set) and 35438 (closed: updated_at, noted)
    assert by[("tickets.json", "events")].loaded == 5
    assert "solved_at taken from updated_at (no metric_set) (1)" in t.notes
    # the agent is support staff, not a customer person
    assert by[("users.json", "identities")].read == 3
    assert any("agents and admins skipped" in n for n in by[("users.json", "identities")].notes)
    tickets = store.table("tickets", where="ticket_id LIKE 'zendesk:%'").set_index("ticket_id")
    fire = tickets.loc["zendesk:35436"]
    assert (fire["subject"], fire["body"], fire["status"], fire["priority"], fire["channel"]) == (
        "Help, my printer is on fire!", "The fire is very colorful.", "open", "high", "web",
    )  # fmt: skip
    assert json.loads(fire["properties"])["tags"] == ["enterprise", "other_tag"]
    invite = tickets.loc["zendesk:35437"]
    assert invite["created_at"].isoformat() == "2011-05-01T07:00:00+00:00"  # +02:00 offset
    assert invite["solved_at"].isoformat() == "2011-05-01T15:30:00+00:00"  # metric_set.solved_at
    assert invite["satisfaction"] == 1.0
    assert tickets.loc["zendesk:35438", "satisfaction"] == 0.0
    assert pd_isna(fire["satisfaction"])  # "offered" is no rating
    # identity: the organization's external_id is the Salesforce account; Jane is in it;
    # Bob's domain is Globex's; Pat uses gmail and is unmatched
    assert fire["customer_id"] == "0015g00000ACME001"
    assert invite["customer_id"] == "0015g00000GLOBEX1"
    assert pd_isna(tickets.loc["zendesk:35438", "customer_id"])
    m = store.query("SELECT source_id, method FROM identity_map WHERE source = 'zendesk'").set_index("source_id")["method"].to_dict()
    assert m == {
        "organization:509974": "crm_id",
        "user:20978392": "email",
        "user:20978393": "domain",
        "user:20978394": "unmatched",
        "ticket:35436": "crm_id",
        "ticket:35437": "domain",
        "ticket:35438": "unmatched",
    }
    # comment events of the incremental export follow their ticket
    ev = store.table("events", where="event = 'ticket_comment'")
    assert ev["customer_id"].tolist() == ["0015g00000ACME001"]
    assert json.loads(ev["properties"].iloc[0])["body"] == "It is still burning."


def pd_isna(v: object) -> bool:
    import pandas as pd

    return bool(pd.isna(v))


def test_snapshot_update_replaces_ticket(store: Store, tmp_path: Path) -> None:
    a = tmp_path / "a.json"
    a.write_text(json.dumps({"tickets": [{"id": 1, "created_at": "2024-01-01T00:00:00Z", "updated_at": "2024-01-01T00:00:00Z", "status": "open", "requester_id": 5}]}))
    b = tmp_path / "b.json"
    b.write_text(json.dumps({"tickets": [{"id": 1, "created_at": "2024-01-01T00:00:00Z", "updated_at": "2024-01-02T00:00:00Z", "status": "solved",
                                          "requester_id": 5, "metric_set": {"solved_at": "2024-01-02T00:00:00Z"}}]}))  # fmt: skip
    ingest_vendor_file(store, a, reader="zendesk")
    r = {x.table: x for x in ingest_vendor_file(store, b, reader="zendesk")}
    assert (r["tickets"].loaded, r["tickets"].updated) == (1, 1)
    assert (r["events"].loaded, r["events"].duplicate) == (1, 1)  # ticket_solved new, ticket_created seen
    assert store.table("tickets", where="ticket_id = 'zendesk:1'")["status"].tolist() == ["solved"]


BAD = [
    ("not an object", '{"tickets": [42]}', 2, "expected a JSON object per ticket, found int"),
    ("missing id", '{"tickets": [{"created_at": "2024-01-01T00:00:00Z", "subject": "x", "status": "open"}]}', 2, "missing required field(s) id"),
    ("bad time", '{"tickets": [{"id": 9, "created_at": "last week", "subject": "x", "status": "open"}]}', 2, "created_at: expected an ISO-8601 time, found 'last week'"),
]


@pytest.mark.parametrize(("kind", "text", "line", "reason"), BAD, ids=[b[0] for b in BAD])
def test_bad_record_is_quarantined(store: Store, tmp_path: Path, kind: str, text: str, line: int, reason: str) -> None:
    f = tmp_path / "tickets.json"
    f.write_text(text.replace('{"tickets": [', '{"tickets": [\n'))  # the record starts on line 2
    r = {x.table: x for x in ingest_vendor_file(store, f, reader="zendesk")}
    assert (r["tickets"].read, r["tickets"].quarantined) == (1, 1)
    q = store.query("SELECT line, reason FROM quarantine")
    assert q["line"].tolist() == [line]
    assert reason in q["reason"].iloc[0]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"tickets": [{"id": 1,', "not JSON at line 1, column"),
        (b'{"widgets": []}', "not a Zendesk export the reader knows"),
        ('{"tickets": [{"id": 1, "subject": "caf\xe9"}]}'.encode("latin-1"), "line 1: bytes that are not valid UTF-8"),
        (b"", "the file is empty"),
    ],
    ids=["truncated", "unknown shape", "not utf-8", "empty"],
)
def test_unreadable_file_fails_whole(store: Store, tmp_path: Path, content: bytes, message: str) -> None:
    f = tmp_path / "x.json"
    f.write_bytes(content)
    before = store.count("ingest_log")
    with pytest.raises(SourceFormatError, match=message) as info:
        ingest_vendor_file(store, f, reader="zendesk")
    assert str(f) in str(info.value)
    assert store.count("ingest_log") == before


def test_bom_and_json_lines(store: Store, tmp_path: Path) -> None:
    f = tmp_path / "tickets.jsonl"
    rec = {"id": 7, "created_at": "2024-01-01T00:00:00Z", "subject": "s", "status": "new", "requester_id": 20978392}
    f.write_bytes(b"\xef\xbb\xbf" + json.dumps(rec).encode() + b"\nnot json\n")
    r = {x.table: x for x in ingest_vendor_file(store, f, reader="zendesk")}
    assert (r["tickets"].read, r["tickets"].loaded, r["tickets"].quarantined) == (2, 1, 1)
    assert store.query("SELECT line, reason FROM quarantine")["reason"].tolist() == ["not valid JSON"]


# -- issue 11: one record never takes a file down; nothing unread is silent ------------------------
def _ticket(i: int, **extra: object) -> str:
    return json.dumps({"id": i, "created_at": "2024-01-01T00:00:00Z", "subject": f"ticket {i}", "status": "open", **extra})


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ('"subject": "broken \\ud800 text"', "subject: a lone UTF-16 surrogate \\ud800, which is not a character"),
        ('"subject": "nul \\u0000 inside"', "subject: a NUL character (\\u0000), which text columns refuse"),
        ('"custom": {"score": NaN}', "custom.score: NaN is not a finite number; such numbers are refused"),
        ('"custom": {"score": -Infinity}', "custom.score: -Infinity is not a finite number; such numbers are refused"),
        ('"custom": ' + "[" * 100_000 + "]" * 100_000, "JSON nested deeper than 64 levels (options.max_json_depth); the record was not read"),
        ('"custom": ' + "[" * 70 + "]" * 70, "JSON nested deeper than 64 levels (options.max_json_depth); the record was not read"),
    ],
    ids=["lone-surrogate", "nul", "nan", "infinity", "deep-100000", "deep-70"],
)
def test_one_unstorable_ticket_is_quarantined_and_the_file_goes_on(store: Store, tmp_path: Path, bad: str, reason: str) -> None:
    f = tmp_path / "tickets.json"
    broken = '{"id": 2, "created_at": "2024-01-01T00:00:00Z", "status": "open", ' + bad + "}"
    f.write_text('{"tickets": [\n' + _ticket(1) + ",\n" + broken + ",\n" + _ticket(3) + "\n]}")
    r = {x.table: x for x in ingest_vendor_file(store, f, reader="zendesk")}
    assert (r["tickets"].read, r["tickets"].loaded, r["tickets"].quarantined) == (3, 2, 1)
    q = store.query("SELECT line, reason FROM quarantine")
    assert (q["line"].tolist(), q["reason"].tolist()) == ([3], [reason])
    assert sorted(store.table("tickets", where="ticket_id LIKE 'zendesk:%'")["ticket_id"]) == ["zendesk:1", "zendesk:3"]


def test_deep_json_lines_record_is_quarantined_alone(store: Store, tmp_path: Path) -> None:
    f = tmp_path / "tickets.jsonl"
    deep = '{"id": 2, "created_at": "2024-01-01T00:00:00Z", "x": ' + "[" * 50_000 + "]" * 50_000 + "}"
    f.write_text(_ticket(1) + "\n" + deep + "\n" + _ticket(3) + "\n")
    r = {x.table: x for x in ingest_vendor_file(store, f, reader="zendesk")}
    assert (r["tickets"].loaded, r["tickets"].quarantined) == (2, 1)
    assert store.query("SELECT reason FROM quarantine")["reason"].tolist() == [
        "JSON nested deeper than 64 levels (options.max_json_depth); the record was not read"
    ]


def test_unreadable_optional_times_are_noted(store: Store, tmp_path: Path) -> None:
    f = tmp_path / "tickets.json"
    f.write_text(json.dumps({"tickets": [{"id": 9, "created_at": "2024-01-01T00:00:00Z", "updated_at": "soon", "status": "solved", "metric_set": {"solved_at": "later"}}]}))
    r = {x.table: x for x in ingest_vendor_file(store, f, reader="zendesk")}
    assert r["tickets"].loaded == 1
    assert r["tickets"].notes_count == 2
    notes = store.query("SELECT line, table_name, row_key, field, value FROM ingest_notes ORDER BY field")
    assert notes.to_dict("list") == {
        "line": [1, 1], "table_name": ["tickets", "tickets"], "row_key": ["zendesk:9", "zendesk:9"],
        "field": ["metric_set.solved_at", "updated_at"], "value": ["later", "soon"],
    }  # fmt: skip
