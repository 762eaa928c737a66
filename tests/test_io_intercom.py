"""Intercom reader: documented examples of conversations, contacts, companies; bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from journeylib.exceptions import SourceFormatError
from journeylib.store import Store
from journeylib.store.sources import detect_kind, ingest_source_files, ingest_vendor_file

VENDORS = Path(__file__).parent / "data" / "vendors"
FILES = sorted((VENDORS / "intercom").glob("*.json"))


@pytest.fixture
def store() -> Store:
    s = Store(":memory:")
    ingest_source_files(s, "salesforce", [VENDORS / "salesforce" / "Account.csv"])
    yield s
    s.close()


def test_kinds() -> None:
    assert {p.name: detect_kind("intercom", p) for p in FILES} == {
        "companies.json": "companies", "contacts.json": "contacts", "conversations.json": "conversations",
    }  # fmt: skip


def test_documented_examples(store: Store) -> None:
    res = ingest_source_files(store, "intercom", FILES)
    by = {(Path(r.file).name, r.table): r for r in res.files}
    assert by[("conversations.json", "tickets")].loaded == 2
    assert by[("conversations.json", "events")].loaded == 3  # 2 created + 1 solved (the closed one)
    t = store.table("tickets").set_index("ticket_id")
    c = t.loc["intercom:1295"]
    # body: the opening message and the comment part, HTML removed; the close part has no text
    assert c["body"] == "Hi, I can't export my report.\n\nThanks, we're on it."
    assert (c["status"], c["priority"], c["channel"], c["satisfaction"]) == ("closed", "high", "chat", 1.0)  # rating 5 → 1
    assert c["created_at"].isoformat() == "2022-09-19T14:20:23+00:00"
    assert c["solved_at"].isoformat() == "2022-09-19T14:21:00+00:00"  # statistics.last_close_at
    assert json.loads(c["properties"])["tags"] == ["billing"]
    assert t.loc["intercom:1296", "status"] == "pending"  # snoozed
    # Bob's contact belongs to the Globex company, whose company_id is the Salesforce account
    assert c["customer_id"] == "0015g00000GLOBEX1"
    assert c["user_id"] == "bob@globex.io"
    assert pd.isna(t.loc["intercom:1296", "customer_id"])  # a hotmail lead: unmatched, kept
    m = store.query("SELECT source_id, method FROM identity_map WHERE source = 'intercom'").set_index("source_id")["method"].to_dict()
    assert m == {
        "company:5f4d3c1c-7b1b-4d7d-a97e-6095715c6632": "crm_id",
        "contact:5ba682d23d7cf92bef87bfd4": "contact_account",
        "contact:6a0000000000000000000001": "unmatched",
    }


def test_conversations_as_json_lines_with_bad_lines(store: Store, tmp_path: Path) -> None:
    conv = json.loads(FILES[2].read_text())["conversations"][0]
    f = tmp_path / "conversations.jsonl"
    f.write_text("\n".join([json.dumps(conv), '{"type": "conversation", "created_at": 1}', "[]", json.dumps({**conv, "id": "9", "created_at": "x"})]) + "\n")
    r = {x.table: x for x in ingest_vendor_file(store, f, reader="intercom")}
    assert (r["tickets"].read, r["tickets"].loaded, r["tickets"].quarantined) == (4, 1, 3)
    q = store.query("SELECT line, reason FROM quarantine ORDER BY line")
    assert q["line"].tolist() == [2, 3, 4]
    assert q["reason"].tolist() == [
        "missing required field id of an Intercom conversation",
        "expected a JSON object per conversation, found list",
        "created_at: expected epoch seconds, found 'x'",
    ]


def test_unknown_shape_is_rejected(store: Store, tmp_path: Path) -> None:
    f = tmp_path / "x.json"
    f.write_text('{"type": "list", "data": [{"type": "ticket_type", "id": "1"}]}')
    with pytest.raises(SourceFormatError, match=r"x\.json: line 1: not an Intercom export the reader knows"):
        ingest_vendor_file(store, f, reader="intercom")


def test_lone_surrogate_in_a_title_quarantines_that_conversation_only(store: Store, tmp_path: Path) -> None:
    f = tmp_path / "conversations.json"
    convs = [{"type": "conversation", "id": str(i), "created_at": 1700000000, "title": t, "state": "open"} for i, t in ((1, "fine"), (2, "X"), (3, "also fine"))]
    f.write_text(json.dumps({"type": "conversation.list", "conversations": convs}, indent=1).replace('"X"', '"bad \\ud800 title"'))
    r = {x.table: x for x in ingest_vendor_file(store, f, reader="intercom")}
    assert (r["tickets"].read, r["tickets"].loaded, r["tickets"].quarantined) == (3, 2, 1)
    assert store.query("SELECT reason FROM quarantine")["reason"].tolist() == ["title: a lone UTF-16 surrogate \\ud800, which is not a character"]


def test_unreadable_rating_is_noted(store: Store, tmp_path: Path) -> None:
    f = tmp_path / "conversations.json"
    conv = {"type": "conversation", "id": "5", "created_at": 1700000000, "state": "open", "conversation_rating": {"rating": "great"}}
    f.write_text(json.dumps({"type": "conversation.list", "conversations": [conv]}))
    r = {x.table: x for x in ingest_vendor_file(store, f, reader="intercom")}
    assert r["tickets"].notes_count == 1
    assert store.query("SELECT field, value FROM ingest_notes").values.tolist() == [["conversation_rating.rating", "great"]]
