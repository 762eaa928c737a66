"""Salesforce CSV reader: Account, Contact, Opportunity, OpportunityHistory, Case; bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from journeylib.exceptions import SourceFormatError
from journeylib.store import Store
from journeylib.store.sources import detect_kind, ingest_source_files, ingest_vendor_file

FILES = sorted((Path(__file__).parent / "data" / "vendors" / "salesforce").glob("*.csv"))


@pytest.fixture
def store() -> Store:
    s = Store(":memory:")
    yield s
    s.close()


def test_objects_recognised_from_header() -> None:
    assert {p.name: detect_kind("salesforce", p) for p in FILES} == {
        "Account.csv": "Account", "Case.csv": "Case", "Contact.csv": "Contact",
        "Opportunity.csv": "Opportunity", "OpportunityHistory.csv": "OpportunityHistory",
    }  # fmt: skip


def test_documented_exports(store: Store) -> None:
    res = ingest_source_files(store, "salesforce", list(reversed(FILES)))
    assert res.identity is not None
    assert res.identity.master == "salesforce"
    # the accounts become the customers table (Account.csv starts with a byte-order mark)
    c = store.table("customers").set_index("customer_id")
    acme = c.loc["0015g00000ACME001"]
    assert (acme["name"], acme["domain"], acme["segment"], acme["plan"], acme["mrr"]) == ("Acme Corp", "acme.com", "Enterprise", "business", 1000.0)
    assert acme["signup_at"].isoformat() == "2021-02-15T08:00:00+00:00"  # CreatedDate, +0000 offset
    assert acme["converted_at"].isoformat() == "2021-05-20T00:00:00+00:00"
    assert json.loads(acme["properties"])["Industry"] == "Manufacturing"
    assert c.loc["0015g00000GLOBEX1", "domain"] == "globex.io"  # http://globex.io/
    # contacts become users of their account
    u = store.table("users").set_index("user_id")
    assert u.loc["jane.doe@acme.com", "customer_id"] == "0015g00000ACME001"
    assert u.loc["jane.doe@acme.com", "role"] == "Head of Ops"
    # opportunities and their stage history are timeline events of the account
    ev = store.table("events")
    assert ev["event"].value_counts().to_dict() == {
        "opportunity_stage_changed": 3, "opportunity_created": 2, "ticket_created": 2, "opportunity_won": 1, "ticket_solved": 1,
    }  # fmt: skip
    hist = ev[ev["event"] == "opportunity_stage_changed"]
    assert (hist["customer_id"] == "0015g00000ACME001").all()  # OpportunityHistory → Opportunity → Account
    # cases are tickets, text kept (multi-line description)
    t = store.table("tickets").set_index("ticket_id")
    case = t.loc["salesforce:5005g00000CAS0001"]
    assert case["body"] == "Login fails with error 500.\nTried twice."
    assert (case["status"], case["priority"], case["channel"], case["customer_id"]) == ("closed", "high", "web", "0015g00000ACME001")
    assert pd.isna(t.loc["salesforce:5005g00000CAS0002", "customer_id"])  # a prospect's web-to-case: unmatched, kept
    assert t.loc["salesforce:5005g00000CAS0002", "user_id"] == "prospect@initech.example"


def test_shared_inbox_contact_of_two_accounts_is_never_guessed(store: Store, tmp_path: Path) -> None:
    ingest_source_files(store, "salesforce", FILES)
    users = tmp_path / "users.json"
    users.write_text('{"users": [{"id": 1, "email": "Support@Helpdesk-Partners.net", "role": "end-user", "updated_at": "2024-01-01T00:00:00Z"}]}')
    ingest_source_files(store, "zendesk", [users])
    imap = store.table("identity_map").set_index("source_id")
    # the two Salesforce contacts each belong to their own account...
    assert imap.loc["contact:0035g00000SHRD001", "customer_id"] == "0015g00000ACME001"
    assert imap.loc["contact:0035g00000SHRD002", "customer_id"] == "0015g00000GLOBEX1"
    # ...but the Zendesk requester with that e-mail could be either: ambiguous, no customer
    zd = store.query("SELECT customer_id, method FROM identity_map WHERE source = 'zendesk'")
    assert zd["method"].tolist() == ["ambiguous"]
    assert zd["customer_id"].isna().all()


def test_renamed_header_and_bad_rows(store: Store, tmp_path: Path) -> None:
    f = tmp_path / "Contact.csv"
    f.write_text("Id,Account_Id,EmailAddress,LastName\n1,2,a@b.com,X\n")
    with pytest.raises(SourceFormatError, match=r"line 1: the Salesforce Contact export lacks column\(s\) 'AccountId', 'Email'"):
        ingest_vendor_file(store, f, reader="salesforce")
    g = tmp_path / "Opportunity.csv"
    g.write_text(
        "Id,AccountId,StageName,CreatedDate,CloseDate,IsClosed,IsWon\n"
        "0061,0011,Closed Won,2021-01-01T00:00:00.000+0000,2021-02-01,true,true\n"
        "0062,,Prospecting,2021-01-01T00:00:00.000+0000,,false,false\n"
        "0063,0011,Closed Lost,someday,2021-02-01,true,false\n"
        "0064,0011,Closed Won,2021-01-01T00:00:00.000+0000,,true,true\n"
    )
    r = {x.table: x for x in ingest_vendor_file(store, g, reader="salesforce")}
    assert (r["events"].read, r["events"].loaded, r["events"].quarantined) == (6, 3, 3)
    q = store.query("SELECT line, reason FROM quarantine ORDER BY line")
    assert q["line"].tolist() == [3, 4, 5]
    assert q["reason"].tolist() == [
        "column(s) AccountId: required value is empty",
        "column CreatedDate: expected a date-time, found 'someday'",
        "column CloseDate: a closed opportunity needs a close date, found None",
    ]


def test_binary_file_is_rejected(store: Store, tmp_path: Path) -> None:
    f = tmp_path / "Account.csv"
    f.write_bytes(b"PK\x03\x04\x00\x00binary")
    with pytest.raises(SourceFormatError, match=r"Account\.csv: binary content \(NUL bytes\)"):
        ingest_vendor_file(store, f, reader="salesforce")
