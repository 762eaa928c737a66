"""HubSpot CSV reader: documented exports of contacts, companies, deals; bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from journeylib.config.sources import ReaderOptions
from journeylib.exceptions import SourceFormatError
from journeylib.store import Store
from journeylib.store.sources import detect_kind, ingest_source_files, ingest_vendor_file

VENDORS = Path(__file__).parent / "data" / "vendors"
FILES = sorted((VENDORS / "hubspot").glob("*.csv"))


@pytest.fixture
def store() -> Store:
    s = Store(":memory:")
    ingest_source_files(s, "salesforce", [VENDORS / "salesforce" / "Account.csv"])
    yield s
    s.close()


def test_kinds_from_header() -> None:
    assert {p.name: detect_kind("hubspot", p) for p in FILES} == {"companies.csv": "companies", "contacts.csv": "contacts", "deals.csv": "deals"}


def test_documented_exports(store: Store) -> None:
    res = ingest_source_files(store, "hubspot", list(reversed(FILES)))
    by = {(Path(r.file).name, r.table): r for r in res.files}
    assert by[("contacts.csv", "identities")].loaded == 3
    assert by[("companies.csv", "identities")].loaded == 2
    # deal 7001: created + 3 stages entered; deal 7002: created + 1 stage
    assert by[("deals.csv", "events")].loaded == 6
    ev = store.table("events")
    stages = ev[ev["event"] == "deal_stage_changed"].sort_values("timestamp")
    assert [json.loads(p)["stage"] for p in stages["properties"]][:3] == [
        "Appointment Scheduled (Sales Pipeline)", "Contract Sent (Sales Pipeline)", "Closed Won (Sales Pipeline)",
    ]  # fmt: skip
    won = stages[stages["properties"].str.contains("Closed Won")].iloc[0]
    assert won["customer_id"] == "0015g00000ACME001"  # deal → company 9001 → Salesforce Account ID
    assert won["timestamp"].isoformat() == "2021-05-20T12:00:00+00:00"  # no offset: taken as UTC, noted
    assert any("dates without offset taken as UTC" in n for n in by[("deals.csv", "events")].notes)
    life = ev[ev["event"] == "lifecycle_stage_changed"]
    assert sorted(json.loads(p)["stage"] for p in life["properties"]) == ["customer", "customer", "lead", "lead", "lead", "lead"]  # contacts 101, 102; companies 9001, 9002
    m = store.query("SELECT source_id, method FROM identity_map WHERE source = 'hubspot'").set_index("source_id")["method"].to_dict()
    assert m == {
        "company:9001": "crm_id",  # Salesforce Account ID
        "company:9002": "domain",  # no Salesforce id; globex.io is the Globex account's website
        "contact:101": "contact_account",  # associated with company 9001
        "contact:102": "domain",  # no company association; bob@globex.io
        "contact:103": "unmatched",  # initech.example is nobody's domain
        "deal:7001": "crm_id",
        "deal:7002": "unmatched",  # no associated company
    }
    imap = store.table("identity_map").set_index("source_id")
    assert imap.loc["contact:101", "user_id"] == "jane.doe@acme.com"  # "Jane.Doe@Acme.com " normalised


def test_plus_addressing_only_when_configured(store: Store, tmp_path: Path) -> None:
    from journeylib.store.identity import IdentityOptions, resolve_identities

    contacts = tmp_path / "contacts.csv"
    contacts.write_text("Record ID,Email\n1,carla+news@acme.com\n")
    sf = tmp_path / "Contact.csv"
    sf.write_text("Id,AccountId,Email\n0035g00000CARLA01,0015g00000GLOBEX1,carla@acme.com\n")
    ingest_source_files(store, "salesforce", [sf])
    ingest_source_files(store, "hubspot", [contacts])
    imap = store.table("identity_map").set_index("source_id")
    assert imap.loc["contact:1", "method"] == "domain"  # acme.com is not Globex's; Acme Corp's website
    resolve_identities(store, IdentityOptions(plus_addressing=True))
    imap = store.table("identity_map").set_index("source_id")
    assert (imap.loc["contact:1", "method"], imap.loc["contact:1", "customer_id"]) == ("email", "0015g00000GLOBEX1")


def test_renamed_header_fails_whole(store: Store, tmp_path: Path) -> None:
    f = tmp_path / "contacts.csv"
    f.write_text("Contact ID,First Name,E-mail\n1,Ann,ann@acme.com\n")
    with pytest.raises(SourceFormatError, match=r"contacts\.csv: line 1: the HubSpot contacts export lacks column\(s\) 'Record ID', 'Email'"):
        ingest_vendor_file(store, f, reader="hubspot")
    g = tmp_path / "other.csv"
    g.write_text("foo,bar\n1,2\n")
    with pytest.raises(SourceFormatError, match="not a HubSpot CRM export"):
        ingest_vendor_file(store, g, reader="hubspot")


def test_bad_rows_bom_and_latin1(store: Store, tmp_path: Path) -> None:
    f = tmp_path / "contacts.csv"
    body = "Record ID,Email,Last Modified Date\n1,ann@acme.com,2021-01-01 10:00\n,nobody@acme.com,\n3,not-an-email,\n4,too,many,fields\n"
    f.write_bytes(b"\xef\xbb\xbf" + body.encode() + "5,jos\xe9@acme.com,\n".encode("latin-1"))
    r = {x.table: x for x in ingest_vendor_file(store, f, reader="hubspot")}
    assert (r["identities"].read, r["identities"].loaded, r["identities"].quarantined) == (5, 1, 4)
    q = store.query("SELECT line, reason FROM quarantine ORDER BY line")
    assert q["line"].tolist() == [3, 4, 5, 6]
    assert q["reason"].tolist() == [
        "column Record ID: required value is empty",
        "column Email: expected an e-mail address, found 'not-an-email'",
        "expected 3 fields as in the header, found 4",
        "column Email: bytes that are not valid UTF-8",
    ]


# -- issue 11: nothing lost, nothing silent --------------------------------------------------------
def lifecycle(store: Store) -> dict[str, str]:
    ev = store.query("SELECT json_extract_string(properties, '$.record_id') AS rid, timestamp FROM events WHERE event = 'lifecycle_stage_changed'")
    return {r: t.isoformat() for r, t in zip(ev["rid"], ev["timestamp"], strict=True)}


def test_day_first_dates_are_read_not_dropped(store: Store, tmp_path: Path) -> None:
    f = tmp_path / "contacts.csv"
    f.write_text("Record ID,Email,Became a Customer Date\n1,ann@acme.com,31/12/2025\n2,bob@acme.com,03/04/2025\n")
    ingest_vendor_file(store, f, reader="hubspot")
    # 31/12/2025 can only be day first, and settles the file's order: 03/04/2025 is 3 April
    assert lifecycle(store) == {"1": "2025-12-31T00:00:00+00:00", "2": "2025-04-03T00:00:00+00:00"}


def test_ambiguous_day_month_is_refused_not_guessed(store: Store, tmp_path: Path) -> None:
    f = tmp_path / "contacts.csv"
    f.write_text("Record ID,Email,Became a Customer Date\n1,ann@acme.com,03/04/2025\n2,bob@acme.com,2025-05-06\n")
    r = {x.table: x for x in ingest_vendor_file(store, f, reader="hubspot")}
    assert (r["identities"].read, r["identities"].loaded, r["identities"].quarantined) == (3, 2, 1)  # both contacts, one refused date
    q = store.query("SELECT line, reason FROM quarantine")
    assert q["line"].tolist() == [2]
    assert q["reason"].iloc[0] == (
        "column Became a Customer Date: a date that could be day/month or month/day, and no date of the file settles it; "
        "set options.date_order (day_first or month_first) for this source, found '03/04/2025'; no lifecycle_stage_changed event was made"
    )
    assert lifecycle(store) == {"2": "2025-05-06T00:00:00+00:00"}
    # told the order, the same file gives the event
    again = Store(":memory:")
    ingest_source_files(again, "hubspot", [f], options=ReaderOptions(date_order="month_first"))
    assert lifecycle(again)["1"] == "2025-03-04T00:00:00+00:00"
    again.close()


def test_timezone_option_and_unreadable_values_are_noted(store: Store, tmp_path: Path) -> None:
    f = tmp_path / "companies.csv"
    f.write_text("Record ID,Company name,Create Date,MRR,Churn Date\n7,Acme,2025-06-01 10:00,12 USD,someday\n")
    res = ingest_source_files(store, "hubspot", [f], options=ReaderOptions(timezone="Europe/Berlin"))
    ident = next(r for r in res.files if r.table == "identities")
    assert "dates without offset taken as Europe/Berlin (1)" in ident.notes
    assert ident.notes_count == 2
    notes = store.query("SELECT field, value, reason FROM ingest_notes ORDER BY field")
    assert notes["field"].tolist() == ["Churn Date", "MRR"]
    assert notes["value"].tolist() == ["someday", "12 USD"]
    attrs = json.loads(store.query("SELECT attributes FROM source_identities WHERE source = 'hubspot'")["attributes"].iloc[0])
    assert attrs["signup_at"] == "2025-06-01T08:00:00+00:00"  # 10:00 in Berlin (summer time)
    assert attrs.get("mrr") is None
