"""Mailchimp e-mail activity reader: the documented report; bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from journeylib.exceptions import SourceFormatError
from journeylib.store import Store
from journeylib.store.sources import ingest_source_files, ingest_vendor_file

VENDORS = Path(__file__).parent / "data" / "vendors"
FIXTURE = VENDORS / "mailchimp" / "email-activity.json"


@pytest.fixture
def store() -> Store:
    s = Store(":memory:")
    ingest_source_files(s, "salesforce", [VENDORS / "salesforce" / "Account.csv", VENDORS / "salesforce" / "Contact.csv"])
    yield s
    s.close()


def test_documented_example(store: Store) -> None:
    res = ingest_source_files(store, "mailchimp", [FIXTURE])
    by = {r.table: r for r in res.files}
    # Jane: open + click; bounced@: bounce; quiet@: no activity → 3 messages, 3 events
    assert (by["messages"].loaded, by["events"].loaded) == (3, 3)
    m = store.table("messages").set_index("status")
    assert m.loc["opened", "campaign"] == "42694e9e57"
    assert m.loc["opened", "timestamp"].isoformat() == "2017-07-31T15:15:49+00:00"
    assert json.loads(m.loc["clicked", "properties"])["url"] == "https://example.com/pricing"
    assert json.loads(m.loc["bounced", "properties"])["type"] == "hard"
    assert m.loc["opened", "customer_id"] == "0015g00000ACME001"  # Jane.Doe@Acme.com → Salesforce contact
    ids = store.query("SELECT source_id, method FROM identity_map WHERE source = 'mailchimp'").set_index("source_id")["method"].to_dict()
    assert ids == {"email:jane.doe@acme.com": "email", "email:quiet@acme.com": "domain", "email:bounced@nowhere.example": "unmatched"}


def test_overlapping_pages_deduplicate(store: Store, tmp_path: Path) -> None:
    doc = json.loads(FIXTURE.read_text())
    a, b = tmp_path / "p1.json", tmp_path / "p2.json"
    a.write_text(json.dumps({**doc, "emails": doc["emails"][:2]}))
    b.write_text(json.dumps({**doc, "emails": doc["emails"][1:]}))
    ingest_vendor_file(store, a, reader="mailchimp")
    r = {x.table: x for x in ingest_vendor_file(store, b, reader="mailchimp")}
    assert (r["messages"].loaded, r["messages"].duplicate) == (0, 1)
    assert store.count("messages") == 3


def test_bad_recipients_and_actions(store: Store, tmp_path: Path) -> None:
    f = tmp_path / "r.json"
    f.write_text(
        '{"emails": [\n'
        '{"email_address": "a@acme.com", "activity": [{"action": "open", "timestamp": "2017-07-31T15:15:49+00:00"}, {"action": "forward", "timestamp": "2017-07-31T15:15:49+00:00"}]},\n'
        '{"activity": []},\n'
        '{"email_address": "b@acme.com", "activity": "none"},\n'
        '{"email_address": "c@acme.com", "activity": [{"action": "click", "timestamp": "soon"}]}\n'
        '], "campaign_id": "c1"}'
    )
    r = {x.table: x for x in ingest_vendor_file(store, f, reader="mailchimp")}
    assert (r["messages"].loaded, r["messages"].quarantined) == (1, 4)
    q = store.query("SELECT line, reason FROM quarantine ORDER BY line")
    assert q["line"].tolist() == [2, 3, 4, 5]
    assert q["reason"].tolist() == [
        "activity item: unknown action 'forward'; expected one of open, click, bounce",
        "missing required field email_address (or not an e-mail address)",
        "activity: expected a list of actions, found str",
        "activity item: timestamp: expected an ISO-8601 time, found 'soon'",
    ]


def test_not_a_report(store: Store, tmp_path: Path) -> None:
    f = tmp_path / "x.json"
    f.write_text('{"campaigns": []}')
    with pytest.raises(SourceFormatError, match="not a Mailchimp e-mail activity report"):
        ingest_vendor_file(store, f, reader="mailchimp")


def test_opens_and_clicks_imply_delivery_once_per_email(store: Store) -> None:
    res = ingest_source_files(store, "mailchimp", [FIXTURE])
    by = {r.table: r for r in res.files}
    sends = {json.loads(p)["send_id"] for p in store.table("messages")["properties"]}
    assert sends == {"42694e9e57:62eeb292278cc15f5817cb78f7790b08", "42694e9e57:a8d3f0b5e1c2d4f6a8b0c2d4e6f8a0b2"}
    notes = dict(n.rsplit(" (", 1) for n in by["messages"].notes)
    # Jane's one e-mail: opened and clicked, no delivery row (the report has none); the bounce implies nothing
    assert notes["status: e-mails opened or clicked without a delivered row in this file (delivered implied; counted by the analytics, not stored)"] == "1)"
