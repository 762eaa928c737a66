"""Snapshots by their own time: a mutable row's ``updated_at`` decides which snapshot is kept.

Canonical files carry an optional ``updated_at`` column; vendor readers fill it
from the record's own update time (Salesforce ``LastModifiedDate`` /
``SystemModstamp``, Zendesk and Intercom ``updated_at``; HubSpot's ``Last
Modified Date`` / ``lastmodifieddate`` / ``hs_lastmodifieddate`` date the
identity records customers and users are derived from). An older snapshot
ingested after a newer one is a duplicate; ties and missing times fall back to
ingest order (docs/adr/0009-snapshots-by-their-own-time.md).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from journeylib.store import Store
from journeylib.store.ingest import FileResult, ingest_file
from journeylib.store.schema import ENTITY_TABLES, contract_markdown
from journeylib.store.sources import ingest_source_files, ingest_vendor_file

CUSTOMERS_HEADER = "customer_id,signup_at,plan,updated_at\n"


@pytest.fixture
def store() -> Store:
    s = Store(":memory:")
    yield s
    s.close()


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def counts(r: FileResult) -> tuple[int, int, int, int, int]:
    assert r.reconciles, r
    return (r.read, r.loaded, r.updated, r.duplicate, r.quarantined)


def by_table(results: list[FileResult]) -> dict[str, FileResult]:
    return {r.table: r for r in results}


# -- the schema -----------------------------------------------------------------


@pytest.mark.parametrize("name", ["customers", "users", "tickets"])
def test_mutable_tables_have_an_optional_updated_at_last(name: str) -> None:
    table = ENTITY_TABLES[name]
    assert table.mutable
    col = table.columns[-1]
    assert (col.name, col.type, col.required) == ("updated_at", "timestamp", False)


@pytest.mark.parametrize("name", ["events", "messages"])
def test_immutable_tables_have_no_updated_at(name: str) -> None:
    assert "updated_at" not in ENTITY_TABLES[name].fields


def test_contract_documents_the_rule() -> None:
    text = contract_markdown()
    assert "**Snapshots by their own time.**" in text
    assert "fall back to ingest order" in text
    assert (Path(__file__).parents[1] / "docs" / "data-contract.md").read_text(encoding="utf-8") == text


# -- canonical files ----------------------------------------------------------------


def test_ties_fall_back_to_ingest_order(store: Store, tmp_path: Path) -> None:
    a = write(tmp_path / "a.csv", CUSTOMERS_HEADER + "c1,2025-01-01,pro,2025-06-01T00:00:00Z\n")
    b = write(tmp_path / "b.csv", CUSTOMERS_HEADER + "c1,2025-01-01,starter,2025-06-01T00:00:00Z\n")
    ingest_file(store, "customers", a)
    assert counts(ingest_file(store, "customers", b)) == (1, 1, 1, 0, 0)
    assert store.table("customers")["plan"].tolist() == ["starter"]


@pytest.mark.parametrize("stored_has_time", [True, False], ids=["only stored dated", "only new dated"])
def test_one_side_without_time_falls_back_to_ingest_order(store: Store, tmp_path: Path, stored_has_time: bool) -> None:
    dated, undated = "2025-06-01T00:00:00Z", ""
    a = write(tmp_path / "a.csv", CUSTOMERS_HEADER + f"c1,2025-01-01,pro,{dated if stored_has_time else undated}\n")
    b = write(tmp_path / "b.csv", CUSTOMERS_HEADER + f"c1,2025-01-01,starter,{undated if stored_has_time else dated}\n")
    ingest_file(store, "customers", a)
    assert counts(ingest_file(store, "customers", b)) == (1, 1, 1, 0, 0)
    assert store.table("customers")["plan"].tolist() == ["starter"]


def test_newer_snapshot_with_same_content_but_time_replaces(store: Store, tmp_path: Path) -> None:
    a = write(tmp_path / "a.csv", CUSTOMERS_HEADER + "c1,2025-01-01,pro,2025-01-01T00:00:00Z\n")
    b = write(tmp_path / "b.csv", CUSTOMERS_HEADER + "c1,2025-01-01,pro,2025-02-01T00:00:00Z\n")
    ingest_file(store, "customers", a)
    assert counts(ingest_file(store, "customers", b)) == (1, 1, 1, 0, 0)
    assert store.table("customers")["updated_at"].iloc[0].isoformat() == "2025-02-01T00:00:00+00:00"


def test_mixed_file_some_rows_stale_some_newer(store: Store, tmp_path: Path) -> None:
    a = write(tmp_path / "a.csv", CUSTOMERS_HEADER + "c1,2025-01-01,pro,2025-06-01T00:00:00Z\nc2,2025-01-01,pro,2025-01-01T00:00:00Z\n")
    b = write(
        tmp_path / "b.csv",
        CUSTOMERS_HEADER
        + "c1,2025-01-01,starter,2025-03-01T00:00:00Z\n"  # older than stored: stale, a duplicate
        + "c2,2025-01-01,starter,2025-03-01T00:00:00Z\n"  # newer: replaces
        + "c3,2025-01-01,starter,2025-03-01T00:00:00Z\n",  # new
    )
    ingest_file(store, "customers", a)
    assert counts(ingest_file(store, "customers", b)) == (3, 2, 1, 1, 0)
    got = store.table("customers").set_index("customer_id")["plan"].to_dict()
    assert got == {"c1": "pro", "c2": "starter", "c3": "starter"}
    log = store.query("SELECT rows_read, rows_loaded, rows_updated, rows_duplicate, rows_quarantined FROM ingest_log WHERE file = ?", [str(b)])
    assert log.iloc[0].tolist() == [3, 2, 1, 1, 0]


@pytest.mark.parametrize(("table", "header", "row", "where"), [
    ("users", "user_id,customer_id,role,updated_at\n", "u1,c1,{v},{t}\n", "role"),
    ("tickets", "ticket_id,customer_id,created_at,status,updated_at\n", "t1,c1,2025-01-01,{v},{t}\n", "status"),
])  # fmt: skip
def test_users_and_tickets_keep_the_newer_snapshot(store: Store, tmp_path: Path, table: str, header: str, row: str, where: str) -> None:
    newer = write(tmp_path / "newer.csv", header + row.format(v="closed", t="2025-06-01T00:00:00Z"))
    older = write(tmp_path / "older.csv", header + row.format(v="open", t="2025-01-01T00:00:00+02:00"))
    ingest_file(store, table, newer)
    assert counts(ingest_file(store, table, older)) == (1, 0, 0, 1, 0)
    assert store.table(table)[where].tolist() == ["closed"]


def test_unreadable_updated_at_is_noted_and_falls_back_to_ingest_order(store: Store, tmp_path: Path) -> None:
    a = write(tmp_path / "a.csv", CUSTOMERS_HEADER + "c1,2025-01-01,pro,2025-06-01T00:00:00Z\n")
    b = write(tmp_path / "b.csv", CUSTOMERS_HEADER + "c1,2025-01-01,starter,last tuesday\n")
    ingest_file(store, "customers", a)
    r = ingest_file(store, "customers", b)
    assert counts(r) == (1, 1, 1, 0, 0)
    assert r.notes_count == 1
    notes = store.query("SELECT field, value, reason FROM ingest_notes")
    assert notes[["field", "value"]].iloc[0].tolist() == ["updated_at", "last tuesday"]
    assert "stored as empty" in notes["reason"].iloc[0]
    row = store.table("customers").iloc[0]
    assert row["plan"] == "starter"
    assert pd.isna(row["updated_at"])


def test_order_of_ingest_does_not_matter_when_times_differ(tmp_path: Path) -> None:
    files = [
        write(tmp_path / "1.csv", CUSTOMERS_HEADER + "c1,2025-01-01,trial,2025-01-01T00:00:00Z\nc2,2025-01-01,pro,2025-05-01T00:00:00Z\n"),
        write(tmp_path / "2.csv", CUSTOMERS_HEADER + "c1,2025-01-01,pro,2025-03-01T00:00:00Z\nc2,2025-01-01,trial,2025-01-01T00:00:00Z\n"),
        write(tmp_path / "3.csv", CUSTOMERS_HEADER + "c1,2025-01-01,business,2025-02-01T00:00:00Z\n"),
    ]
    results = []
    for order in ([0, 1, 2], [2, 1, 0], [1, 2, 0]):
        with Store(":memory:") as s:
            for i in order:
                assert ingest_file(s, "customers", files[i]).reconciles
            results.append(s.table("customers")[["customer_id", "plan"]].to_dict("records"))
    assert results[0] == results[1] == results[2] == [{"customer_id": "c1", "plan": "pro"}, {"customer_id": "c2", "plan": "pro"}]


def test_store_made_before_updated_at_gets_the_column(tmp_path: Path) -> None:
    db = tmp_path / "old.duckdb"
    with Store(db) as s:  # a store as an older version made it: no updated_at in the mutable tables
        for name in ("customers", "users", "tickets"):
            s.execute(f'ALTER TABLE "{name}" DROP COLUMN "updated_at"')
    f = write(tmp_path / "a.csv", CUSTOMERS_HEADER + "c1,2025-01-01,pro,2025-06-01T00:00:00Z\n")
    with Store(db) as s:
        assert counts(ingest_file(s, "customers", f)) == (1, 1, 0, 0, 0)
        assert s.table("customers")["updated_at"].iloc[0].isoformat() == "2025-06-01T00:00:00+00:00"


# -- vendor exports -------------------------------------------------------------------

ACCOUNT_HEADER = "Id,Name,Website,CreatedDate,LastModifiedDate,Segment__c,Plan__c,MRR__c\n"
CASE_HEADER = "Id,CaseNumber,AccountId,Subject,Status,Origin,CreatedDate,ClosedDate,LastModifiedDate\n"


def test_salesforce_account_pair_keeps_the_newer(store: Store, tmp_path: Path) -> None:
    new = tmp_path / "new"
    old = tmp_path / "old"
    new.mkdir()
    old.mkdir()
    newer = write(new / "Account.csv", ACCOUNT_HEADER + "001A,Acme,acme.com,2024-01-01T00:00:00.000+0000,2024-06-01T00:00:00.000+0000,SMB,business,900\n")
    older = write(old / "Account.csv", ACCOUNT_HEADER + "001A,Acme,acme.com,2024-01-01T00:00:00.000+0000,2024-02-01T00:00:00.000+0000,SMB,starter,100\n")
    first = ingest_source_files(store, "salesforce", [newer])
    second = ingest_source_files(store, "salesforce", [older])
    for res in (first, second):
        assert all(r.reconciles for r in res.files)
    c = store.table("customers").set_index("customer_id")
    assert (c.loc["001A", "plan"], c.loc["001A", "mrr"]) == ("business", 900.0)
    again = ingest_source_files(store, "salesforce", [older, newer])
    assert {r.status for r in again.files} == {"skipped"}
    assert store.table("customers").set_index("customer_id").loc["001A", "plan"] == "business"


def test_salesforce_case_pair_keeps_the_newer(store: Store, tmp_path: Path) -> None:
    newer = write(tmp_path / "new.csv", CASE_HEADER + "500A,0001,001A,Login,Closed,Web,2024-03-01T08:00:00.000+0000,2024-03-02T08:00:00.000+0000,2024-03-02T08:00:00.000+0000\n")
    older = write(tmp_path / "old.csv", CASE_HEADER + "500A,0001,001A,Login,New,Web,2024-03-01T08:00:00.000+0000,,2024-03-01T08:00:00.000+0000\n")
    ingest_vendor_file(store, newer, reader="salesforce")
    r = by_table(ingest_vendor_file(store, older, reader="salesforce"))
    assert counts(r["tickets"]) == (1, 0, 0, 1, 0)
    assert r["events"].reconciles
    t = store.table("tickets").set_index("ticket_id")
    assert t.loc["salesforce:500A", "status"] == "closed"
    assert t.loc["salesforce:500A", "updated_at"].isoformat() == "2024-03-02T08:00:00+00:00"
    before = store.table("tickets")
    again = by_table(ingest_vendor_file(store, older, reader="salesforce", force=True))
    assert counts(again["tickets"]) == (1, 0, 0, 1, 0)
    pd.testing.assert_frame_equal(store.table("tickets"), before)


def test_salesforce_system_modstamp_when_no_last_modified_date(store: Store, tmp_path: Path) -> None:
    f = write(tmp_path / "Case.csv", "Id,CaseNumber,Subject,Status,CreatedDate,SystemModstamp\n500B,0002,Hi,New,2024-03-01T08:00:00.000+0000,2024-03-05T08:00:00.000+0000\n")
    ingest_vendor_file(store, f, reader="salesforce")
    assert store.table("tickets")["updated_at"].iloc[0].isoformat() == "2024-03-05T08:00:00+00:00"


def _zendesk(path: Path, status: str, updated: str) -> Path:
    return write(path, json.dumps({"tickets": [{"id": 7, "created_at": "2024-01-01T00:00:00Z", "updated_at": updated, "status": status, "requester_id": 5}]}))


def test_zendesk_older_ticket_export_ingested_last_is_a_duplicate(store: Store, tmp_path: Path) -> None:
    newer = _zendesk(tmp_path / "new.json", "solved", "2024-01-05T00:00:00Z")
    older = _zendesk(tmp_path / "old.json", "open", "2024-01-02T00:00:00Z")
    ingest_vendor_file(store, newer, reader="zendesk")
    r = by_table(ingest_vendor_file(store, older, reader="zendesk"))
    assert counts(r["tickets"]) == (1, 0, 0, 1, 0)
    t = store.table("tickets").iloc[0]
    assert (t["status"], t["updated_at"].isoformat()) == ("solved", "2024-01-05T00:00:00+00:00")


def _intercom(path: Path, state: str, updated: int) -> Path:
    conv = {"type": "conversation", "id": "42", "created_at": 1700000000, "updated_at": updated, "state": state,
            "source": {"type": "conversation", "body": "<p>help</p>", "author": {"type": "user", "id": "u1"}}}  # fmt: skip
    return write(path, json.dumps({"type": "conversation.list", "conversations": [conv]}))


def test_intercom_older_conversation_export_ingested_last_is_a_duplicate(store: Store, tmp_path: Path) -> None:
    newer = _intercom(tmp_path / "new.json", "closed", 1700100000)
    older = _intercom(tmp_path / "old.json", "open", 1700050000)
    ingest_vendor_file(store, newer, reader="intercom")
    r = by_table(ingest_vendor_file(store, older, reader="intercom"))
    assert counts(r["tickets"]) == (1, 0, 0, 1, 0)
    t = store.table("tickets").iloc[0]
    assert t["status"] == "closed"
    assert t["updated_at"] == pd.Timestamp(1700100000, unit="s", tz="UTC")


def test_intercom_updated_at_is_read_for_open_conversations(store: Store, tmp_path: Path) -> None:
    ingest_vendor_file(store, _intercom(tmp_path / "c.json", "open", 1700050000), reader="intercom")
    t = store.table("tickets").iloc[0]
    assert pd.isna(t["solved_at"])
    assert t["updated_at"] == pd.Timestamp(1700050000, unit="s", tz="UTC")


@pytest.mark.parametrize("column", ["Last Modified Date", "lastmodifieddate", "hs_lastmodifieddate"])
def test_hubspot_update_time_dates_the_company_record(store: Store, tmp_path: Path, column: str) -> None:
    f = write(tmp_path / "companies.csv", f"Record ID,Company name,Create Date,{column}\n11,Acme,2024-01-01,2024-04-01 10:00\n")
    ingest_vendor_file(store, f, reader="hubspot")
    got = store.query("SELECT updated_at FROM source_identities WHERE source_id = 'company:11'")["updated_at"].iloc[0]
    assert got.isoformat() == "2024-04-01T10:00:00+00:00"
