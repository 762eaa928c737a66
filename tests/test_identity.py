"""Identity stitching: methods in order of trust, ambiguity, order independence, the report."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from journeylib.exceptions import EmptyResultError
from journeylib.io.common import norm_email
from journeylib.store import Store
from journeylib.store.identity import (
    IdentityOptions,
    customer_origin_data,
    identity_report_data,
    identity_summary_data,
    resolve_identities,
    unmatched_ids_data,
    write_identity_report,
)
from journeylib.store.sources import ingest_source_files

VENDORS = Path(__file__).parent / "data" / "vendors"
#: (reader, file) of every fixture, for order tests
ALL_FILES = [(v, p) for v in ("salesforce", "hubspot", "mixpanel", "zendesk", "intercom", "sendgrid", "mailchimp") for p in sorted((VENDORS / v).iterdir()) if p.is_file()]


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def store() -> Store:
    s = Store(":memory:")
    yield s
    s.close()


# -- hand-computed cases -------------------------------------------------------------


def test_methods_in_order_of_trust(store: Store, tmp_path: Path) -> None:
    accounts = write(tmp_path / "Account.csv", "Id,Name,Website\nA1,Acme Corp,https://acme.com\nB2,Beta LLC,beta.io\n")
    contacts = write(tmp_path / "Contact.csv", "Id,AccountId,Email\nc1,A1,ann@acme.com\nc2,B2,bo@beta.io\n")
    mp = write(
        tmp_path / "mp.jsonl",
        # u1: explicit CRM id B2 wins over its acme e-mail; u2: e-mail of a CRM contact; u3: beta.io domain;
        # u4: gmail, nothing else; u5: two explicit ids → ambiguous, never guessed
        '{"event": "e", "properties": {"time": 1, "distinct_id": "u1", "salesforce_account_id": "B2", "$email": "ann@acme.com"}}\n'
        '{"event": "e", "properties": {"time": 2, "distinct_id": "u2", "$email": " ANN@acme.com "}}\n'
        '{"event": "e", "properties": {"time": 3, "distinct_id": "u3", "$email": "new.person@beta.io"}}\n'
        '{"event": "e", "properties": {"time": 4, "distinct_id": "u4", "$email": "someone@gmail.com"}}\n'
        '{"event": "e", "properties": {"time": 5, "distinct_id": "u5", "salesforce_account_id": "A1"}}\n'
        '{"event": "e", "properties": {"time": 6, "distinct_id": "u5", "salesforce_account_id": "B2"}}\n',
    )
    ingest_source_files(store, "salesforce", [accounts, contacts])
    ingest_source_files(store, "mixpanel", [mp])
    m = store.table("identity_map").set_index(["source", "source_id"])
    got = {sid: (row.customer_id, row.method, None if pd.isna(row.confidence) else row.confidence) for (src, sid), row in m.iterrows() if src == "mixpanel"}
    assert got == {
        "distinct_id:u1": ("B2", "crm_id", 1.0),
        "distinct_id:u2": ("A1", "email", 0.95),
        "distinct_id:u3": ("B2", "domain", 0.8),
        "distinct_id:u4": (None, "unmatched", None),
        "distinct_id:u5": (None, "ambiguous", None),
    }
    assert m.loc[("salesforce", "contact:c1"), "method"] == "contact_account"
    assert m.loc[("salesforce", "account:A1"), "method"] == "crm_account"
    ev = store.table("events").set_index("timestamp")
    # rows of unresolved ids are kept, with a NULL customer
    assert ev["customer_id"].isna().sum() == 3
    assert len(ev) == 6


def test_identity_tables_on_another_engine_say_why_they_are_empty(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from journeylib.exceptions import DataQualityWarning

    accounts = write(tmp_path / "Account.csv", "Id,Name,Website\nA1,Acme Corp,https://acme.com\n")
    contacts = write(tmp_path / "Contact.csv", "Id,AccountId,Email\nc1,A1,ann@acme.com\n")
    ingest_source_files(store, "salesforce", [accounts, contacts])
    assert not identity_report_data(store).empty  # the DuckDB store the ingest wrote has the bookkeeping
    # On Spark, identity_map is exported but the ingest's bookkeeping tables are not: empty, and said so
    monkeypatch.setattr(store, "engine", "spark")
    with pytest.warns(DataQualityWarning, match=r"identity_report_data: identity_map has 2 ids.*not read on engine 'spark'"):
        assert identity_report_data(store, empty_ok=True).empty
    with pytest.warns(DataQualityWarning, match=r"unmatched_ids_data: identity_map has 2 ids"):
        assert unmatched_ids_data(store).empty


def test_free_mail_domain_is_never_an_account_domain(store: Store, tmp_path: Path) -> None:
    accounts = write(tmp_path / "Account.csv", "Id,Name,Website\nG1,Gmail fans,https://gmail.com\n")
    contacts = write(tmp_path / "contacts.csv", "Record ID,Email\n1,x@gmail.com\n")
    ingest_source_files(store, "salesforce", [accounts])
    ingest_source_files(store, "hubspot", [contacts])
    assert store.table("identity_map").set_index("source_id").loc["contact:1", "method"] == "unmatched"
    resolve_identities(store, IdentityOptions(free_mail_domains=()))
    assert store.table("identity_map").set_index("source_id").loc["contact:1", "method"] == "unmatched"


def test_account_domain_shared_by_two_accounts_is_ambiguous(store: Store, tmp_path: Path) -> None:
    accounts = write(tmp_path / "Account.csv", "Id,Name,Website\nA1,Acme EU,acme.com\nA2,Acme US,https://www.acme.com\n")
    orgs = write(tmp_path / "orgs.json", '{"organizations": [{"id": 1, "name": "Acme", "domain_names": ["acme.com"], "updated_at": "2024-01-01T00:00:00Z"}]}')
    ingest_source_files(store, "salesforce", [accounts])
    ingest_source_files(store, "zendesk", [orgs])
    row = store.query("SELECT customer_id, method FROM identity_map WHERE source = 'zendesk'").iloc[0]
    assert (row["customer_id"], row["method"]) == (None, "ambiguous")


def test_fuzzy_company_name_is_optional_and_has_a_confidence(store: Store, tmp_path: Path) -> None:
    accounts = write(tmp_path / "Account.csv", "Id,Name,Website\nA1,Initech Inc.,initech.example\nA2,Initrode GmbH,initrode.example\n")
    companies = write(tmp_path / "companies.csv", "Record ID,Company name\n7,INITECH\n8,Something Else\n")
    ingest_source_files(store, "salesforce", [accounts])
    ingest_source_files(store, "hubspot", [companies])
    m = store.table("identity_map").set_index("source_id")
    # off by default: a HubSpot company matching no Salesforce account by id or domain is a customer of its own
    assert (m.loc["company:7", "customer_id"], m.loc["company:7", "method"]) == ("hubspot:7", "own_account")
    resolve_identities(store, IdentityOptions(fuzzy_names=True, fuzzy_threshold=0.9))
    m = store.table("identity_map").set_index("source_id")
    # "initech" vs "initech" once suffixes and case are normalised: similarity 1.0
    assert (m.loc["company:7", "customer_id"], m.loc["company:7", "method"], m.loc["company:7", "confidence"]) == ("A1", "fuzzy_name", 1.0)
    assert m.loc["company:8", "method"] == "own_account"
    resolve_identities(store, IdentityOptions(fuzzy_names=True, fuzzy_threshold=0.9, own_accounts=False))
    assert store.table("identity_map").set_index("source_id").loc["company:8", "method"] == "unmatched"


@pytest.mark.parametrize(
    ("raw", "plus", "expected"),
    [
        ("  Jane.Doe@ACME.com ", False, "jane.doe@acme.com"),
        ("jane+news@acme.com", False, "jane+news@acme.com"),
        ("jane+news@acme.com", True, "jane@acme.com"),
        ("<jane@acme.com>", False, "jane@acme.com"),
        ("not an email", False, None),
        ("a@b", False, None),
        (42, False, None),
    ],
)
def test_norm_email(raw: object, plus: bool, expected: str | None) -> None:
    assert norm_email(raw, plus_addressing=plus) == expected


def test_latest_crm_snapshot_wins_whatever_the_order(tmp_path: Path) -> None:
    acc = write(tmp_path / "Account.csv", "Id,Name,Website\nA1,Acme,acme.com\nB2,Beta,beta.io\n")
    old = write(tmp_path / "old.csv", "Id,AccountId,Email,LastModifiedDate\nc1,A1,ann@acme.com,2024-01-01T00:00:00.000+0000\n")
    new = write(tmp_path / "new.csv", "Id,AccountId,Email,LastModifiedDate\nc1,B2,ann@acme.com,2024-06-01T00:00:00.000+0000\n")
    results = []
    for order in ([acc, old, new], [new, old, acc]):
        with Store(":memory:") as s:
            ingest_source_files(s, "salesforce", order)
            results.append(s.table("identity_map").set_index("source_id").loc["contact:c1", "customer_id"])
    assert results == ["B2", "B2"]  # the contact moved to Beta: the newer record wins in both orders


# -- order independence ------------------------------------------------------------------


def _snapshot(store: Store) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    imap = store.table("identity_map")
    ev = store.table("events", columns=["event_id", "customer_id", "user_id"]).sort_values("event_id").reset_index(drop=True)
    tk = store.table("tickets", columns=["ticket_id", "customer_id", "user_id"]).sort_values("ticket_id").reset_index(drop=True)
    return imap, ev, tk


def _ingest_in_order(order: list[tuple[str, Path]]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    with Store(":memory:") as s:
        for reader, path in order:
            ingest_source_files(s, reader, [path])
        return _snapshot(s)


def test_analytics_before_or_after_crm_gives_the_same_result() -> None:
    crm = [f for f in ALL_FILES if f[0] in ("salesforce", "hubspot")]
    rest = [f for f in ALL_FILES if f[0] not in ("salesforce", "hubspot")]
    a = _ingest_in_order(crm + rest)
    b = _ingest_in_order(rest + crm)
    for x, y in zip(a, b, strict=True):
        pd.testing.assert_frame_equal(x, y)
    # and events that were unmatched before the CRM arrived are matched now
    assert a[1]["customer_id"].notna().sum() > 0


DATA = Path(__file__).parent / "data"
#: the real-shaped fixtures of product user ids, e-mail user ids, anonymous devices and own accounts
NEW_EVIDENCE = [
    *[("salesforce", DATA / "identity_devices" / n) for n in ("Account.csv", "Contact.csv")],
    *[(r, DATA / "identity_devices" / f"{r}.jsonl") for r in ("mixpanel", "amplitude")],
    ("mixpanel", DATA / "identity_email_ids" / "mixpanel.jsonl"),
    ("salesforce", DATA / "identity_product_ids" / "salesforce" / "Contact.csv"),
    ("mixpanel", DATA / "identity_product_ids" / "mixpanel" / "export.jsonl"),
    *[(r, p) for r in ("hubspot", "zendesk") for p in sorted((DATA / "identity_own_accounts" / r).iterdir())],
]


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(order=st.permutations(ALL_FILES + NEW_EVIDENCE))
def test_any_ingest_order_gives_the_same_result(order: list[tuple[str, Path]]) -> None:
    expected = _reference()
    got = _ingest_in_order(list(order))
    for x, y in zip(expected, got, strict=True):
        pd.testing.assert_frame_equal(x, y)


_REF: list[tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]] = []


def _reference() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    if not _REF:
        _REF.append(_ingest_in_order(ALL_FILES + NEW_EVIDENCE))
    return _REF[0]


# -- the report ---------------------------------------------------------------------------


@pytest.fixture
def loaded() -> Store:
    s = Store(":memory:")
    by_reader: dict[str, list[Path]] = {}
    for reader, path in ALL_FILES:
        by_reader.setdefault(reader, []).append(path)
    for reader, paths in by_reader.items():
        ingest_source_files(s, reader, paths, resolve=False)
    resolve_identities(s)
    yield s
    s.close()


def test_identity_report_data(loaded: Store) -> None:
    rep = identity_report_data(loaded)
    assert list(rep.columns) == ["source", "method", "matched", "ids", "ids_share", "events", "tickets", "messages", "rows_share"]
    shares = rep.groupby("source")[["ids_share"]].sum()["ids_share"]
    assert (shares.round(9) == 1.0).all()
    mc = rep[rep["source"] == "mailchimp"].set_index("method")
    # jane (e-mail of a Salesforce contact): open + click; quiet@acme.com (domain): no rows; bounced@: unmatched
    assert mc.loc["email", ["ids", "messages", "events"]].tolist() == [1, 2, 2]
    assert mc.loc["domain", ["ids", "messages"]].tolist() == [1, 0]
    assert mc.loc["unmatched", ["ids", "messages"]].tolist() == [1, 1]
    assert mc["rows_share"].sum() == pytest.approx(1.0)
    summary = identity_summary_data(loaded).set_index("source")
    total = summary.loc["(all sources)"]
    assert total["ids"] == total["ids_matched"] + total["ids_ambiguous"] + total["ids_unmatched"]
    assert total["rows"] == total["rows_matched"] + total["rows_ambiguous"] + total["rows_unmatched"]
    assert total["rows"] == loaded.count("events") + loaded.count("tickets") + loaded.count("messages")


def test_unmatched_ids_and_artifacts(loaded: Store, tmp_path: Path) -> None:
    top = unmatched_ids_data(loaded, n=1)
    assert list(top.columns) == ["source", "source_id", "method", "email", "rows", "rank"]
    assert (top["rank"] == 1).all()
    assert top["source"].is_unique
    sg = top[top["source"] == "sendgrid"].iloc[0]
    assert (sg["source_id"], sg["rows"]) == ("email:pat.freelance@gmail.com", 6)  # 4 events + 2 messages
    paths = write_identity_report(loaded, tmp_path / "artifacts")
    assert sorted(p.name for p in paths) == [
        "identity_customers.parquet", "identity_report.json", "identity_report.parquet", "identity_summary.parquet", "identity_unmatched.parquet",
    ]  # fmt: skip
    assert set(json.loads((tmp_path / "artifacts" / "identity_report.json").read_text())) == {"identity_report", "identity_summary", "identity_unmatched", "identity_customers"}
    with pytest.raises(ValueError, match="n must be at least 1"):
        unmatched_ids_data(loaded, n=0)


def test_report_on_an_empty_store_raises(store: Store) -> None:
    with pytest.raises(EmptyResultError, match="identity_map is empty"):
        identity_report_data(store)


def test_report_on_read_only_and_canonical_only_stores(loaded: Store, tmp_path: Path) -> None:
    # a store of canonical files only has no vendor tables: the report says so, or is empty when asked
    with Store(tmp_path / "canonical.duckdb") as s:
        s.insert("events", pd.DataFrame({"event_id": ["e1"], "customer_id": ["c1"], "timestamp": [pd.Timestamp("2024-01-01", tz="UTC")], "event": ["login"]}))
    with Store(tmp_path / "canonical.duckdb", read_only=True) as ro:
        with pytest.raises(EmptyResultError):
            identity_summary_data(ro)
        summary = identity_summary_data(ro, empty_ok=True)
        assert summary["source"].tolist() == ["(all sources)"]
        assert summary["ids"].tolist() == [0]
        assert unmatched_ids_data(ro).empty


# -- real-shaped exports: product user ids, e-mail user ids, devices, own accounts ------------------


def _map(store: Store, source: str) -> dict[str, tuple[str | None, str, str | None]]:
    m = store.query("SELECT source_id, customer_id, method, user_id FROM identity_map WHERE source = ?", [source])
    return {r.source_id: (None if pd.isna(r.customer_id) else r.customer_id, r.method, None if pd.isna(r.user_id) else r.user_id) for r in m.itertuples()}


def test_product_user_id_in_a_salesforce_custom_field_is_detected_by_overlap(store: Store) -> None:
    d = DATA / "identity_product_ids"
    ingest_source_files(store, "salesforce", sorted((d / "salesforce").iterdir()))
    res = ingest_source_files(store, "mixpanel", [d / "mixpanel" / "export.jsonl"]).identity
    assert res is not None
    (f,) = res.product_user_id_fields
    # 3 of the 4 distinct values are analytics user ids (one contact's id is stale, one contact has none)
    assert (f.source, f.field, f.how, f.values, f.matches) == ("salesforce", "Product_Login__c", "detected", 4, 3)
    assert "product user ids from salesforce.Product_Login__c (detected: 3 of 4 values are analytics user ids)" in res.summary()
    got = _map(store, "mixpanel")
    assert got["distinct_id:91304156-cafc-4673-a237-623d1129c801"] == ("0015g00000AcmeAAA", "product_user_id", "ana.rivera@acme-corp.example")
    assert got["distinct_id:4f1c2a90-7d7e-4b4f-9a55-0f2f4a3be101"][:2] == ("0015g00000AcmeAAA", "product_user_id")
    assert got["distinct_id:c3d9e8f1-2b4a-4f7e-8c61-5d2e7a9b0c12"][:2] == ("0015g00000GlobAAB", "product_user_id")
    assert got["distinct_id:e7f8a9b0-c1d2-4e3f-8a4b-5c6d7e8f9a0b"][:2] == (None, "unmatched")  # in no CRM field
    ev = store.table("events")
    assert ev["customer_id"].notna().sum() == 5  # every event of a known user lands on its account
    # the minimum overlap is a stated setting: above the 3 matching values, nothing is detected
    res2 = resolve_identities(store, IdentityOptions(product_user_id_min_matches=4))
    assert res2.product_user_id_fields == ()
    assert "product_user_id" not in res2.ids


def test_product_user_id_in_a_hubspot_property_reaches_amplitude_events(store: Store) -> None:
    d = DATA / "identity_product_ids"
    ingest_source_files(store, "hubspot", sorted((d / "hubspot").iterdir()))
    res = ingest_source_files(store, "amplitude", [d / "amplitude" / "events.jsonl"]).identity
    assert res is not None
    assert [(f.field, f.how, f.values, f.matches) for f in res.product_user_id_fields] == [("Login handle", "detected", 3, 3)]
    got = _map(store, "amplitude")
    assert got["user_id:pgibbons"] == ("7012345601", "product_user_id", "peter@initech.example")
    assert got["user_id:aabernathy"][:2] == ("7012345602", "product_user_id")
    assert store.table("events").query("source == 'amplitude'")["customer_id"].notna().all()


def test_configured_product_user_id_field_below_the_detection_minimum(store: Store) -> None:
    d = DATA / "identity_product_ids"
    ingest_source_files(store, "intercom", sorted((d / "intercom").iterdir()))
    res = ingest_source_files(store, "mixpanel", [d / "mixpanel_few" / "export.jsonl"]).identity
    assert res is not None
    assert res.product_user_id_fields == ()  # two matching values: below the minimum of 3
    assert _map(store, "mixpanel")["distinct_id:usr_7Hk2"][1] == "unmatched"
    res = resolve_identities(store, IdentityOptions(product_user_id_fields={"intercom": ("external_id",)}))
    assert [(f.source, f.field, f.how, f.matches) for f in res.product_user_id_fields] == [("intercom", "external_id", "configured", 2)]
    got = _map(store, "mixpanel")
    assert got["distinct_id:usr_7Hk2"] == ("6762f0b31bb69f9f2193bb01", "product_user_id", "gavin@hooli.example")
    assert got["distinct_id:usr_9Qm4"][:2] == ("6762f0b31bb69f9f2193bb01", "product_user_id")


def test_email_shaped_user_ids_are_email_evidence(store: Store) -> None:
    d = DATA / "identity_email_ids"
    ingest_source_files(store, "salesforce", [d / "Account.csv", d / "Contact.csv"])
    ingest_source_files(store, "mixpanel", [d / "mixpanel.jsonl"])
    ingest_source_files(store, "amplitude", [d / "amplitude.jsonl"])
    mp = _map(store, "mixpanel")
    assert mp["distinct_id:  Ana.Rivera@ACME-CORP.example "] == ("0015g00000AcmeAAA", "email", "ana.rivera@acme-corp.example")
    assert mp["distinct_id:raj@acme-corp.example"] == ("0015g00000AcmeAAA", "domain", "raj@acme-corp.example")
    assert mp["distinct_id:kim.lee@gmail.com"][:2] == (None, "unmatched")  # never by a free-mail domain
    assert _map(store, "amplitude")["user_id:ANA.RIVERA@acme-corp.example"] == ("0015g00000AcmeAAA", "email", "ana.rivera@acme-corp.example")


def test_anonymous_devices_join_the_identified_user(store: Store) -> None:
    d = DATA / "identity_devices"
    ingest_source_files(store, "salesforce", [d / "Account.csv", d / "Contact.csv"])
    ingest_source_files(store, "mixpanel", [d / "mixpanel.jsonl"])
    res = ingest_source_files(store, "amplitude", [d / "amplitude.jsonl"]).identity
    assert res is not None
    assert res.device_links == 2  # the Mixpanel device and the Amplitude one (the never-identified device links to no one)
    mp = _map(store, "mixpanel")
    dev = "distinct_id:$device:18d5f0b2a3c4e5-0d1e2f3a4b5c6d-26001b51-1fa400-18d5f0b2a3c4e5"
    assert mp[dev] == ("0015g00000AcmeAAA", "device", "ana.rivera@acme-corp.example")
    assert mp["distinct_id:u_1001"] == ("0015g00000AcmeAAA", "email", "ana.rivera@acme-corp.example")
    assert mp["distinct_id:$device:18d5f9999999aa-0aaaaaaaaaaaaa-26001b51-1fa400-18d5f9999999aa"][:2] == (None, "unmatched")
    amp = _map(store, "amplitude")
    assert amp["device_id:E8B7C1F2-5A6D-4C3B-9E8F-7A6B5C4D3E2F"] == ("0015g00000AcmeAAA", "device", "ana.rivera@acme-corp.example")
    ev = store.table("events")
    # every event before sign-up now belongs to the account and to the person who signed up
    ana = ev[ev["user_id"] == "ana.rivera@acme-corp.example"]
    assert len(ana) == 7
    assert (ana["customer_id"] == "0015g00000AcmeAAA").all()
    assert ev["customer_id"].isna().sum() == 1  # the device that never identified


def test_a_device_of_users_of_two_accounts_is_ambiguous(store: Store) -> None:
    d = DATA / "identity_devices"
    ingest_source_files(store, "salesforce", [d / "Account.csv", d / "Contact.csv"])
    ingest_source_files(store, "mixpanel", [d / "mixpanel_shared.jsonl"])
    assert _map(store, "mixpanel")["distinct_id:$device:kiosk-01"][:2] == (None, "ambiguous")


def test_a_company_only_in_a_secondary_source_becomes_a_customer(store: Store) -> None:
    d = DATA / "identity_own_accounts"
    for reader in ("zendesk", "amplitude", "hubspot", "salesforce"):
        ingest_source_files(store, reader, sorted((d / reader).iterdir()))
    hs = _map(store, "hubspot")
    assert hs["company:9001"][:2] == ("0015g00000AcmeAAA", "crm_id")
    assert hs["company:9002"][:2] == ("0015g00000AcmeAAA", "domain")  # resolves to the master: no new customer
    assert hs["company:9003"][:2] == ("hubspot:9003", "own_account")
    assert hs["contact:301"][:2] == ("hubspot:9003", "contact_account")
    amp = _map(store, "amplitude")
    assert amp["user_id:tt-1"][:2] == ("hubspot:9003", "email")
    assert amp["user_id:tt-2"][:2] == ("hubspot:9003", "domain")
    # a later source's organization resolves by domain to the customer the earlier source created
    assert _map(store, "zendesk")["organization:361234567890"][:2] == ("hubspot:9003", "domain")
    customers = store.table("customers").set_index("customer_id")
    assert sorted(customers.index) == ["0015g00000AcmeAAA", "hubspot:9003"]
    assert customers.loc["hubspot:9003", "name"] == "Trialco"
    origin = customer_origin_data(store)
    assert origin[["source", "method", "customers"]].values.tolist() == [["hubspot", "own_account", 1], ["salesforce", "crm_account", 1]]
    res = resolve_identities(store)
    assert res.customers_by_source == {"hubspot": 1, "salesforce": 1}
    assert "2 customers (hubspot 1, salesforce 1)" in res.summary()
    assert store.table("events").query("source == 'amplitude'")["customer_id"].eq("hubspot:9003").all()


def test_new_evidence_is_order_independent() -> None:
    reference = _ingest_in_order(NEW_EVIDENCE)
    assert set(reference[0]["method"]) >= {"device", "product_user_id", "email", "domain", "own_account"}
    for order in (NEW_EVIDENCE[::-1], NEW_EVIDENCE[3:] + NEW_EVIDENCE[:3], sorted(NEW_EVIDENCE, key=lambda f: f[1].name)):
        for x, y in zip(reference, _ingest_in_order(order), strict=True):
            pd.testing.assert_frame_equal(x, y)
    # the combined permutation test's reference holds the new methods too
    assert set(_reference()[0]["method"]) >= {"device", "product_user_id", "own_account"}
