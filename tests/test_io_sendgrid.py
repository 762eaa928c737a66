"""SendGrid Event Webhook reader: the documented example payload; bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from journeylib.exceptions import SourceFormatError
from journeylib.store import Store
from journeylib.store.sources import ingest_source_files, ingest_vendor_file

VENDORS = Path(__file__).parent / "data" / "vendors"
FIXTURE = VENDORS / "sendgrid" / "events.json"


@pytest.fixture
def store() -> Store:
    s = Store(":memory:")
    ingest_source_files(s, "salesforce", [VENDORS / "salesforce" / "Account.csv", VENDORS / "salesforce" / "Contact.csv"])
    yield s
    s.close()


def test_documented_example(store: Store) -> None:
    res = ingest_source_files(store, "sendgrid", [FIXTURE])
    by = {r.table: r for r in res.files}
    # 11 events; delivered, open, click, bounce, unsubscribe, group_unsubscribe are messages (6)
    assert (by["events"].read, by["events"].loaded) == (11, 11)
    assert (by["messages"].read, by["messages"].loaded) == (6, 6)
    m = store.table("messages").sort_values("status")
    assert m["status"].tolist() == ["bounced", "clicked", "delivered", "opened", "unsubscribed", "unsubscribed"]
    opened = m[m["status"] == "opened"].iloc[0]
    assert opened["campaign"] == "cat facts"  # first category
    assert json.loads(opened["properties"])["categories"] == ["cat facts", "onboarding"]
    assert opened["timestamp"].isoformat() == "2017-12-15T00:59:29+00:00"
    assert opened["message_id"] == "sendgrid:FOTFFO0ecsBE-zxFXfs6WA=="
    # Jane (mixed case in the payload) is a Salesforce contact; Bob by domain; Pat uses gmail
    ids = store.query("SELECT source_id, method FROM identity_map WHERE source = 'sendgrid'").set_index("source_id")["method"].to_dict()
    assert ids == {"email:jane.doe@acme.com": "email", "email:bob@globex.io": "domain", "email:pat.freelance@gmail.com": "unmatched"}
    ev = store.table("events")
    assert set(ev["event"]) == {
        "email_processed", "email_deferred", "email_delivered", "email_opened", "email_clicked", "email_bounced",
        "email_dropped", "email_spamreport", "email_unsubscribed", "email_resubscribed",
    }  # fmt: skip


def test_batches_per_line_and_bad_events(store: Store, tmp_path: Path) -> None:
    batch = json.loads(FIXTURE.read_text())
    f = tmp_path / "webhook.jsonl"
    f.write_text(
        json.dumps(batch[:3]) + "\n"  # one POST per line
        + json.dumps([{"email": "a@acme.com", "timestamp": 1513299569, "event": "teleported", "sg_event_id": "x1"},
                      {"email": "a@acme.com", "event": "open", "sg_event_id": "x2"},
                      {"email": "not-an-address", "timestamp": 1, "event": "open", "sg_event_id": "x3"}]) + "\n"
        + "42\n"
    )  # fmt: skip
    r = {x.table: x for x in ingest_vendor_file(store, f, reader="sendgrid")}
    assert (r["messages"].read, r["messages"].loaded, r["messages"].quarantined) == (5, 1, 4)
    q = store.query("SELECT line, reason FROM quarantine ORDER BY line, reason")
    assert q["line"].tolist() == [2, 2, 2, 3]
    assert q["reason"].tolist() == [
        "email: expected an e-mail address, found 'not-an-address'",
        "missing required field(s) timestamp",
        "unknown SendGrid event 'teleported'; expected one of processed, deferred, dropped, delivered, bounce, blocked, open, click, spamreport, unsubscribe, group_unsubscribe, group_resubscribe",
        "expected a JSON object per event, found int",
    ]


def test_reingest_is_idempotent(store: Store) -> None:
    ingest_source_files(store, "sendgrid", [FIXTURE])
    before = (store.count("events"), store.count("messages"))
    again = ingest_source_files(store, "sendgrid", [FIXTURE], force=True)
    assert all(r.loaded == 0 for r in again.files)
    assert (store.count("events"), store.count("messages")) == before


def test_not_a_webhook_payload(store: Store, tmp_path: Path) -> None:
    f = tmp_path / "x.json"
    f.write_text('[{"foo": 1}]')
    with pytest.raises(SourceFormatError, match="not a SendGrid Event Webhook payload"):
        ingest_vendor_file(store, f, reader="sendgrid")


def test_lone_surrogate_in_a_campaign_quarantines_that_event_only(store: Store, tmp_path: Path) -> None:
    events = [
        {"email": f"u{i}@acme.com", "timestamp": 1700000000 + i, "event": "delivered", "sg_event_id": f"e{i}", "campaign": c}
        for i, c in ((1, "spring"), (2, "X"), (3, "summer"))
    ]
    f = tmp_path / "post.json"
    f.write_text(json.dumps(events).replace('"X"', '"sale \\ud800"') + "\n")  # one POST on one line
    r = {x.table: x for x in ingest_vendor_file(store, f, reader="sendgrid")}
    assert (r["messages"].read, r["messages"].loaded, r["messages"].quarantined) == (3, 2, 1)
    assert store.query("SELECT reason FROM quarantine")["reason"].tolist() == ["campaign: a lone UTF-16 surrogate \\ud800, which is not a character"]
    assert sorted(store.table("messages")["campaign"]) == ["spring", "summer"]


def test_engagement_only_webhook_implies_delivered_without_adding_rows(store: Store, tmp_path: Path) -> None:
    events = [e for e in json.loads(FIXTURE.read_text()) if e["email"].lower() == "jane.doe@acme.com" and e["event"] == "click"]
    path = tmp_path / "clicks.json"
    path.write_text(json.dumps(events))
    res = ingest_source_files(store, "sendgrid", [path])
    by = {r.table: r for r in res.files}
    assert by["messages"].loaded == 1  # the implied delivered and opened statuses are not stored
    props = json.loads(store.table("messages")["properties"].iloc[0])
    assert props["send_id"] == "14c5d75ce93.dfd.64b469:jane.doe@acme.com"
    notes = " ".join(by["messages"].notes)
    assert "delivered implied" in notes
    assert "opened implied" in notes
