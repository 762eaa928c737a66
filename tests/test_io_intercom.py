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
    assert by[("conversations.json", "events")].loaded == 4  # 2 created + 1 solved (the closed one) + the admin's reply
    t = store.table("tickets").set_index("ticket_id")
    c = t.loc["intercom:1295"]
    # body: the customer's words, HTML removed; the admin's reply is a ticket_comment event, not the customer's voice
    assert c["body"] == "Hi, I can't export my report."
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


# -- issue 12: conversation parts land as the Zendesk reader's comments do --------------------------
def test_conversation_parts_are_comments_with_their_author(store: Store, tmp_path: Path) -> None:
    """Shapes of the Conversation Part model (developers.intercom.com, conversation-part-model)."""
    parts = [
        {"type": "conversation_part", "id": "4412", "part_type": "comment", "body": "<p>Hi Jane, it's all great thanks!</p>", "created_at": 1400857494,
         "updated_at": 1400857494, "notified_at": 1400857587, "assigned_to": None, "author": {"type": "user", "id": "5ba682d23d7cf92bef87bfd4"}, "attachments": []},
        {"type": "conversation_part", "id": "4413", "part_type": "note", "body": "<p>VIP, be quick</p>", "created_at": 1400857500, "author": {"type": "admin", "id": "274"}},
        {"type": "conversation_part", "id": "4414", "part_type": "assignment", "body": "<p>Handing you to billing</p>", "created_at": 1400857600, "author": {"type": "bot", "id": "9"}},
        {"type": "conversation_part", "id": "4415", "part_type": "close", "body": None, "created_at": 1400857700, "author": {"type": "admin", "id": "274"}},
        {"type": "conversation_part", "id": "4416", "part_type": "comment", "body": "late", "created_at": "soon", "author": {"type": "user", "id": "5ba682d23d7cf92bef87bfd4"}},
    ]  # fmt: skip
    conv = {"type": "conversation", "id": "77", "created_at": 1400857000, "state": "open",
            "source": {"type": "conversation", "delivered_as": "customer_initiated", "body": "<p>Can you help?</p>", "author": {"type": "user", "id": "5ba682d23d7cf92bef87bfd4"}},
            "contacts": {"type": "contact.list", "contacts": [{"type": "contact", "id": "5ba682d23d7cf92bef87bfd4"}]},
            "conversation_parts": {"type": "conversation_part.list", "conversation_parts": parts, "total_count": len(parts)}}  # fmt: skip
    f = tmp_path / "conversations.json"
    f.write_text(json.dumps({"type": "conversation.list", "conversations": [conv]}))
    ingest_source_files(store, "intercom", [f, VENDORS / "intercom" / "contacts.json", VENDORS / "intercom" / "companies.json"])
    ev = store.query("SELECT event_id, timestamp, customer_id, user_id, properties FROM events WHERE event = 'ticket_comment' ORDER BY event_id")
    got = {r.event_id: (json.loads(r.properties).get("author_role"), json.loads(r.properties).get("public"), r.user_id, r.customer_id) for r in ev.itertuples()}
    assert got == {
        "intercom:comment:4412": ("customer", True, "bob@globex.io", "0015g00000GLOBEX1"),
        "intercom:comment:4413": ("staff", False, None, "0015g00000GLOBEX1"),
        "intercom:comment:4414": ("staff", True, None, "0015g00000GLOBEX1"),
    }
    assert json.loads(ev["properties"].iloc[0]) == {"ticket_id": "intercom:77", "author_id": "5ba682d23d7cf92bef87bfd4", "author_role": "customer", "public": True,
                                                    "body": "Hi Jane, it's all great thanks!"}  # fmt: skip
    assert ev["timestamp"].iloc[0].isoformat() == "2014-05-23T15:04:54+00:00"
    # the unreadable part time is noted, not guessed
    assert store.query("SELECT field, value FROM ingest_notes").values.tolist() == [["conversation_parts[4].created_at", "soon"]]
    assert store.table("tickets", where="ticket_id = 'intercom:77'")["body"].tolist() == ["Can you help?\n\nHi Jane, it's all great thanks!\n\nlate"]  # its text is still the customer's


def test_outbound_message_is_not_the_customers_words(store: Store, tmp_path: Path) -> None:
    conv = {"type": "conversation", "id": "78", "created_at": 1400857000, "state": "open",
            "source": {"type": "email", "delivered_as": "admin_initiated", "body": "<p>Your trial ends soon</p>", "author": {"type": "admin", "id": "274"}},
            "contacts": {"type": "contact.list", "contacts": [{"type": "contact", "id": "c1"}]},
            "conversation_parts": {"type": "conversation_part.list", "conversation_parts": [
                {"type": "conversation_part", "id": "1", "part_type": "comment", "body": "Please extend it", "created_at": 1400857100, "author": {"type": "lead", "id": "c1"}}]}}  # fmt: skip
    f = tmp_path / "conversations.json"
    f.write_text(json.dumps({"type": "conversation.list", "conversations": [conv]}))
    ingest_vendor_file(store, f, reader="intercom")
    assert store.table("tickets", where="ticket_id = 'intercom:78'")["body"].tolist() == ["Please extend it"]
