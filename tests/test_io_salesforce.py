"""Salesforce CSV reader: Account, Contact, Opportunity, OpportunityHistory, Case, CaseComment, EmailMessage; bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from journeylib.config.sources import ReaderOptions
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
        "Account.csv": "Account", "Case.csv": "Case", "CaseComment.csv": "CaseComment", "Contact.csv": "Contact",
        "EmailMessage.csv": "EmailMessage", "Opportunity.csv": "Opportunity", "OpportunityHistory.csv": "OpportunityHistory",
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
        "ticket_comment": 7, "opportunity_stage_changed": 3, "opportunity_created": 2, "ticket_created": 2, "opportunity_won": 1, "ticket_solved": 1,
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


# -- issue 11: nothing lost, nothing silent --------------------------------------------------------
def notes_of(store: Store) -> list[tuple[int, str, str, str]]:
    q = store.query("SELECT line, row_key, field, value FROM ingest_notes ORDER BY line, field")
    return list(zip(q["line"].tolist(), q["row_key"].tolist(), q["field"].tolist(), q["value"].tolist(), strict=True))


def test_unreadable_account_values_are_noted_not_lost_silently(store: Store, tmp_path: Path) -> None:
    f = tmp_path / "Account.csv"
    f.write_text(
        "Id,Name,CreatedDate,MRR__c,Renewal_Date__c\n"
        "0011,Acme,yesterday,\"1,000\",2026-31-12\n"
        "0012,Globex,2021-02-15T08:00:00.000+0000,250.5,2026-01-31\n"
    )
    res = ingest_source_files(store, "salesforce", [f])
    # the account is loaded (it is still a customer), its three unreadable values are accounted for
    c = store.table("customers").set_index("customer_id")
    assert set(c.index) == {"0011", "0012"}
    assert pd.isna(c.loc["0011", "signup_at"])
    assert pd.isna(c.loc["0011", "mrr"])
    assert pd.isna(c.loc["0011", "renewal_at"])
    assert c.loc["0012", "mrr"] == 250.5
    assert notes_of(store) == [
        (2, "account:0011", "CreatedDate", "yesterday"),
        (2, "account:0011", "MRR__c", "1,000"),
        (2, "account:0011", "Renewal_Date__c", "2026-31-12"),
    ]
    reasons = store.query("SELECT reason FROM ingest_notes ORDER BY field")["reason"].tolist()
    assert reasons == [
        "expected a date such as 2025-12-31, 2025-12-31 14:30, 2025-12-31T14:30:00+01:00 or 31/12/2025; stored empty",
        "expected a number such as 1250.50 (no thousands separator, currency or unit); stored empty",
        "expected a date such as 2025-12-31, 2025-12-31 14:30, 2025-12-31T14:30:00+01:00 or 31/12/2025; stored empty",
    ]
    # the data-health report counts them, one row per field and reason
    from journeylib.health import ingest_reconciliation_data, notes_data

    assert notes_data(store)[["source", "table_name", "field", "values"]].values.tolist() == [
        ["salesforce", "identities", "CreatedDate", 1], ["salesforce", "identities", "MRR__c", 1], ["salesforce", "identities", "Renewal_Date__c", 1],
    ]  # fmt: skip
    assert ingest_reconciliation_data(store)["notes_count"].sum() == 3
    ident = next(r for r in res.files if r.table == "identities")
    assert ident.notes_count == 3
    assert store.query("SELECT sum(notes_count) AS n FROM ingest_log")["n"].iloc[0] == 3
    assert any("3 optional value(s) could not be read" in line for line in res.lines())
    # a forced re-read adds no note (nor quarantine row) twice
    ingest_source_files(store, "salesforce", [f], force=True)
    assert len(notes_of(store)) == 3
    assert store.query("SELECT sum(notes_count) AS n FROM ingest_log")["n"].iloc[0] == 3


def test_nul_byte_or_over_long_field_refuses_the_row_not_the_file(store: Store, tmp_path: Path) -> None:
    f = tmp_path / "Contact.csv"
    f.write_bytes(
        b"Id,AccountId,Email,Title\n"
        b"0031,0011,ann@acme.com,CEO\n"
        b"0032,0011,bob@acme.com,C\x00O\n"
        b"0033,0011,cy@acme.com," + b"x" * 300 + b"\n"
    )
    r = {x.table: x for x in ingest_source_files(store, "salesforce", [f], options=ReaderOptions(max_field_bytes=200)).files}
    assert (r["identities"].read, r["identities"].loaded, r["identities"].quarantined) == (3, 1, 2)
    q = store.query("SELECT line, reason FROM quarantine ORDER BY line")
    assert q["line"].tolist() == [3, 4]
    assert q["reason"].tolist() == [
        "column Title: a NUL character (\\u0000), which text columns refuse",
        "column Title: 300 bytes, longer than the cap of 200 (options.max_field_bytes)",
    ]


def test_a_date_outside_the_nanosecond_range_does_not_take_the_file_down(store: Store, tmp_path: Path) -> None:
    # found by tests/test_fuzz.py: a CreatedDate in year 0001 raised OutOfBoundsDatetime for the whole file
    f = tmp_path / "OpportunityHistory.csv"
    f.write_text(
        "Id,OpportunityId,StageName,CreatedDate\n"
        "0081,0061,Prospecting,0001-01-01 00:00\n"
        "0082,0061,Closed Won,2025-02-26T19:00:10.000+0000\n"
        "0083,0061,Closed Won,9999-12-31T23:59:59.000+0000\n"
    )
    r = {x.table: x for x in ingest_source_files(store, "salesforce", [f]).files}
    assert (r["events"].read, r["events"].loaded, r["events"].quarantined) == (3, 3, 0)
    stored = store.query("SELECT CAST(timestamp AS VARCHAR) AS t FROM events ORDER BY timestamp")["t"].tolist()
    assert stored == ["0001-01-01 00:00:00+00", "2025-02-26 19:00:10+00", "9999-12-31 23:59:59+00"]


def test_an_error_in_one_record_quarantines_that_record_only(store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import journeylib.io.salesforce as sf

    real = sf.web_domain

    def flaky(value: object) -> str | None:
        if value == "http://boom.example":
            msg = "cannot parse this website"
            raise ValueError(msg)
        return real(value)

    monkeypatch.setattr(sf, "web_domain", flaky)
    f = tmp_path / "Account.csv"
    f.write_text("Id,Name,Website\n0011,Acme,acme.com\n0012,Boom,http://boom.example\n0013,Globex,globex.io\n")
    r = {x.table: x for x in ingest_source_files(store, "salesforce", [f]).files}
    assert (r["identities"].read, r["identities"].loaded, r["identities"].quarantined) == (3, 2, 1)
    q = store.query("SELECT line, reason FROM quarantine")
    assert q["line"].tolist() == [3]
    assert q["reason"].iloc[0] == "the record could not be read (ValueError: cannot parse this website); nothing of it was loaded"
    assert set(store.table("customers")["customer_id"]) == {"0011", "0013"}


def test_timezone_and_date_order_options(store: Store, tmp_path: Path) -> None:
    f = tmp_path / "Account.csv"
    f.write_text("Id,Name,CreatedDate,Signup_Date__c\n0011,Acme,2024-03-01,01/02/2024\n")
    ingest_source_files(store, "salesforce", [f], options=ReaderOptions(timezone="Europe/Berlin", date_order="day_first"))
    c = store.table("customers").set_index("customer_id")
    assert c.loc["0011", "signup_at"].isoformat() == "2024-01-31T23:00:00+00:00"  # 1 February, midnight in Berlin


# -- case conversation: CaseComment and EmailMessage ----------------------------------------------
def _conversation(store: Store) -> dict[str, dict[str, object]]:
    ev = store.query("SELECT event_id, customer_id, user_id, timestamp, properties FROM events WHERE event = 'ticket_comment'")
    return {
        r.event_id: {"customer_id": r.customer_id, "user_id": r.user_id, "timestamp": r.timestamp.isoformat(), **json.loads(r.properties)}
        for r in ev.itertuples()
    }


def test_case_comments_and_emails_land_on_the_case_like_zendesk_comments(store: Store) -> None:
    res = ingest_source_files(store, "salesforce", FILES)
    got = _conversation(store)
    acme, jane = "0015g00000ACME001", "jane.doe@acme.com"
    # CaseComment: the time is CreatedDate, the case its ParentId; UserType tells staff from portal customers
    c1 = got["salesforce:comment:00a5g00000CMT0001"]
    assert c1 == {
        "customer_id": acme, "user_id": None, "timestamp": "2021-06-02T08:30:00+00:00", "ticket_id": "salesforce:5005g00000CAS0001",
        "author_id": "0055g00000AGENT1", "author_role": "staff", "public": True,
        "body": "We are looking into the error 500 and will update you within the hour.",
    }  # fmt: skip
    assert (got["salesforce:comment:00a5g00000CMT0002"]["author_role"], got["salesforce:comment:00a5g00000CMT0002"]["public"]) == ("staff", False)
    portal = got["salesforce:comment:00a5g00000CMT0003"]
    assert (portal["author_role"], portal["customer_id"], portal["user_id"]) == ("customer", acme, jane)  # CreatedBy.ContactId → Jane
    assert portal["body"] == "Still failing for me after the fix.\nScreenshot attached."
    # a User without UserType: staff, and the assumption is counted
    assert got["salesforce:comment:00a5g00000CMT0004"]["author_role"] == "staff"
    comments = next(r for r in res.files if r.file.endswith("CaseComment.csv"))
    assert "case comments by Users taken as staff (no CreatedBy.UserType column tells Experience Cloud customers apart) (1)" in comments.notes
    assert "case comments by staff authors (3)" in comments.notes
    # EmailMessage (a Data Loader export: upper-case headers): Incoming tells customer from staff; MessageDate is the time
    inbound = got["salesforce:comment:02s5g00000EML0005"]
    assert inbound == {
        "customer_id": acme, "user_id": "it.desk@acme.com", "timestamp": "2021-06-02T11:00:00+00:00", "ticket_id": "salesforce:5005g00000CAS0001",
        "author_role": "customer", "public": True, "body": "Thanks, it works again.",
    }  # fmt: skip  (no author_id: the sender's address is the row's user, never copied into properties)
    reply = got["salesforce:comment:02s5g00000EML0002"]
    assert (reply["author_role"], reply["author_id"], reply["body"]) == ("staff", "0055g00000AGENT2", "Yes: 20% off for nonprofits.\nBest, Sam & the Support team")
    prospect = got["salesforce:comment:02s5g00000EML0001"]
    assert (prospect["customer_id"], prospect["user_id"], prospect["timestamp"]) == (None, "prospect@initech.example", "2021-06-03T07:59:00+00:00")
    # a draft and an e-mail on no case are skipped, counted
    assert "salesforce:comment:02s5g00000EML0003" not in got
    assert "salesforce:comment:02s5g00000EML0004" not in got
    emails = next(r for r in res.files if r.file.endswith("EmailMessage.csv") and r.table == "events")
    assert (emails.read, emails.loaded, emails.quarantined) == (3, 3, 0)
    assert "e-mail drafts skipped (Status 5: never sent) (1)" in emails.notes
    assert "e-mails on no case skipped (no ParentId: related to another record) (1)" in emails.notes
    assert "case e-mails by customer authors (2)" in emails.notes
    # the case is an alias resolving like its account; a prospect's web-to-case stays unmatched
    imap = store.table("identity_map").set_index("source_id")
    assert (imap.loc["case:5005g00000CAS0001", "customer_id"], imap.loc["case:5005g00000CAS0001", "method"]) == (acme, "crm_account")
    assert imap.loc["case:5005g00000CAS0002", "method"] == "unmatched"
    assert len(got) == 7


def test_conversation_does_not_depend_on_the_order_files_arrive(tmp_path: Path) -> None:
    def run(order: list[Path]) -> dict[str, dict[str, object]]:
        with Store(":memory:") as s:
            for f in order:  # one file per ingest, as incremental runs do
                ingest_source_files(s, "salesforce", [f])
            return _conversation(s)

    assert run(FILES) == run(list(reversed(FILES)))


@pytest.mark.parametrize(
    ("user_type", "contact", "created_by", "published", "role"),
    [
        ("Standard", None, "0055g00000AGENT1", True, "staff"),
        ("CspLitePortal", None, "0055g00000PORTAL", True, "customer"),
        ("PowerPartner", None, "0055g00000PARTNR", True, "unknown"),
        (None, "0035g00000JANE001", "0055g00000PORTAL", True, "customer"),
        (None, None, "0035g00000JANE001", True, "customer"),  # old Self-Service portal: a Contact wrote it
        (None, None, None, False, "staff"),
        (None, None, "0055g00000AGENT1", None, "staff"),
        (None, None, None, True, "unknown"),
    ],
)
def test_comment_author_role(user_type: str | None, contact: str | None, created_by: str | None, published: bool | None, role: str) -> None:
    from journeylib.io.salesforce import comment_author_role

    assert comment_author_role(created_by=created_by, user_type=user_type, contact_id=contact, published=published) == role


def test_case_conversation_bad_rows_and_headers(store: Store, tmp_path: Path) -> None:
    f = tmp_path / "CaseComment.csv"
    f.write_text(
        "Id,ParentId,IsPublished,CommentBody,CreatedById,CreatedDate\n"
        "00a1,5001,true,ok,0051,2024-01-05T10:22:00.000+0000\n"
        "00a2,,true,no case,0051,2024-01-05T10:22:00.000+0000\n"
        "00a3,5001,true,no time,0051,soon\n"
    )
    r = {x.table: x for x in ingest_vendor_file(store, f, reader="salesforce")}
    assert (r["events"].read, r["events"].loaded, r["events"].quarantined) == (3, 1, 2)
    assert store.query("SELECT reason FROM quarantine ORDER BY line")["reason"].tolist() == [
        "column(s) ParentId: required value is empty",
        "column CreatedDate: expected a date-time, found 'soon'",
    ]
    g = tmp_path / "EmailMessage.csv"
    g.write_text("Id,ParentId,TextBody,Incoming\n02s1,5001,hello,true\n")
    with pytest.raises(SourceFormatError, match=r"EmailMessage export has no time column: expected MessageDate or CreatedDate"):
        ingest_vendor_file(store, g, reader="salesforce")
    h = tmp_path / "EmailMessage2.csv"
    h.write_text("Id,ParentId,TextBody,Incoming,MessageDate\n02s1,5001,hello,maybe,2024-01-05T10:22:00.000+0000\n02s2,5001,hi,true,\n")
    r = {x.table: x for x in ingest_vendor_file(store, h, reader="salesforce")}
    assert (r["events"].read, r["events"].loaded, r["events"].quarantined) == (2, 1, 1)  # no MessageDate and no CreatedDate: quarantined
    ev = store.query("SELECT properties FROM events WHERE event_id = 'salesforce:comment:02s1'")["properties"].iloc[0]
    assert json.loads(ev)["author_role"] == "unknown"  # Incoming neither true nor false


def test_a_contact_writing_a_case_e_mail_keeps_the_contacts_role(tmp_path: Path) -> None:
    # Jane (a Salesforce contact with a title) also writes to a case by e-mail: her users row keeps the contact's role,
    # not the empty one of the e-mail sender, though the e-mail's identity method ranks first.
    files = []
    for f in FILES:
        text = f.read_text(encoding="utf-8")
        if f.name == "EmailMessage.csv":
            text = text.replace('"IT.Desk@acme.com"', '"Jane.Doe@acme.com"')
            assert 'Jane.Doe@acme.com' in text
        files.append(tmp_path / f.name)
        files[-1].write_text(text, encoding="utf-8")
    with Store(":memory:") as s:
        ingest_source_files(s, "salesforce", files)
        users = s.table("users").set_index("user_id")
        assert users.loc["jane.doe@acme.com", "role"] == "Head of Ops"
