"""sources.yaml: validation, config ingest (incremental, idempotent), the synthetic vendor world, CLI."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from journeylib.cli import main
from journeylib.config import SourcesConfig
from journeylib.datasets import synthesize
from journeylib.datasets.vendor import load_vendor_truth, write_vendor_exports
from journeylib.exceptions import ConfigError, SourceFormatError
from journeylib.store import Store
from journeylib.store.identity import customer_origin_data, identity_report_data, identity_summary_data
from journeylib.store.sources import ingest_sources

VENDORS = Path(__file__).parent / "data" / "vendors"
COLS = ["ids", "ids_matched", "ids_ambiguous", "ids_unmatched", "rows", "rows_matched", "rows_ambiguous", "rows_unmatched"]


# -- configuration ------------------------------------------------------------------------


def test_from_yaml_accepts_path_text_and_dict(tmp_path: Path) -> None:
    text = "version: 1\nsources:\n  crm:\n    reader: salesforce\n    files: ['*.csv']\n  mixpanel:\n    files: [a.jsonl]\n    options: {timezone: Europe/Berlin}\n"
    f = tmp_path / "sources.yaml"
    f.write_text(text)
    for src in (f, str(f), text, {"version": 1, "sources": {"crm": {"reader": "salesforce", "files": ["*.csv"]}, "mixpanel": {"files": ["a.jsonl"]}}}):
        cfg = SourcesConfig.from_yaml(src)
        assert cfg.reader_of("crm") == "salesforce"
        assert cfg.reader_of("mixpanel") == "mixpanel"
    assert SourcesConfig.from_yaml(f).base_dir == tmp_path.resolve()  # globs are relative to the file
    with pytest.raises(Exception, match="frozen"):
        cfg.version = 2  # type: ignore[misc]


def test_every_problem_is_reported_with_its_key(tmp_path: Path) -> None:
    bad = {
        "version": 2,
        "sources": {"crm": {"reader": "pipedrive", "fils": ["x"]}, "zendesk": {"files": ["t.json"], "options": {"timezone": "UTC"}}},
        "identity": {"fuzzy_threshold": 2, "plus": True},
        "extra": 1,
    }
    with pytest.raises(ConfigError) as info:
        SourcesConfig.from_yaml(bad)
    msg = str(info.value)
    for fragment in (
        "version: must be 1; found 2",
        "sources.crm.reader: must be 'mixpanel', 'amplitude', 'zendesk', 'intercom', 'hubspot', 'salesforce', 'sendgrid' or 'mailchimp'; found 'pipedrive'",
        "sources.crm.fils: unknown key 'fils'; allowed keys here: reader, files, options, events",
        "sources.crm.files: required key is missing",
        "identity.fuzzy_threshold: Input should be less than or equal to 1; found 2",
        "identity.plus: unknown key 'plus'; allowed keys here: account_sources, plus_addressing, free_mail_domains, fuzzy_names, fuzzy_threshold, "
        "own_accounts, product_user_id_fields, detect_product_user_ids, product_user_id_min_matches, product_user_id_min_share",
        "extra: unknown key 'extra'; allowed keys here: version, sources, identity",
    ):
        assert fragment in msg, fragment
    assert info.value.problems
    assert len(info.value.problems) >= 7


def test_cross_field_rules() -> None:
    with pytest.raises(ConfigError, match=r"sources\.crm\.reader: required because 'crm' is not a reader name"):
        SourcesConfig.from_yaml({"sources": {"crm": {"files": ["a.csv"]}}})
    with pytest.raises(ConfigError, match=r"sources\.zendesk\.options\.timezone: only the mixpanel, hubspot and salesforce readers take timezone \(this source uses zendesk\)"):
        SourcesConfig.from_yaml({"sources": {"zendesk": {"files": ["a.json"], "options": {"timezone": "UTC"}}}})
    with pytest.raises(ConfigError, match=r"identity\.account_sources: unknown source\(s\) \['hubspot'\]"):
        SourcesConfig.from_yaml({"sources": {"salesforce": {"files": ["a.csv"]}}, "identity": {"account_sources": ["hubspot"]}})
    with pytest.raises(ConfigError, match=r"sources: Dictionary should have at least 1 item"):
        SourcesConfig.from_yaml({"sources": {}})
    with pytest.raises(ConfigError, match="not valid YAML"):
        SourcesConfig.from_yaml("sources: [unclosed\n  x: 1\n")


def test_product_user_id_fields_name_sources_of_people() -> None:
    cfg = SourcesConfig.from_yaml(
        {"sources": {"crm": {"reader": "salesforce", "files": ["a.csv"]}, "mixpanel": {"files": ["e.jsonl"]}},
         "identity": {"product_user_id_fields": {"crm": ["App_User_ID__c"]}, "product_user_id_min_matches": 5}}
    )  # fmt: skip
    assert cfg.identity.product_user_id_fields == {"crm": ("App_User_ID__c",)}
    assert cfg.identity.product_user_id_min_matches == 5
    with pytest.raises(ConfigError) as info:
        SourcesConfig.from_yaml(
            {"sources": {"crm": {"reader": "salesforce", "files": ["a.csv"]}, "mixpanel": {"files": ["e.jsonl"]}},
             "identity": {"product_user_id_fields": {"hubspot": ["x"], "mixpanel": ["y"]}, "product_user_id_min_share": 0}}
        )  # fmt: skip
    msg = str(info.value)
    assert "identity.product_user_id_fields.hubspot: unknown source 'hubspot'; the sources are crm, mixpanel" in msg
    assert "identity.product_user_id_fields.mixpanel: source 'mixpanel' (reader mixpanel) is a product-analytics source" in msg
    assert "identity.product_user_id_min_share: Input should be greater than 0" in msg


def test_time_zones_are_checked_up_front() -> None:
    with pytest.raises(ConfigError, match=r"sources\.mixpanel\.options\.timezone: unknown time zone 'Europe/Berln'; did you mean Europe/Berlin, "):
        SourcesConfig.from_yaml({"sources": {"mixpanel": {"files": ["a.jsonl"], "options": {"timezone": "Europe/Berln"}}}})
    with pytest.raises(ConfigError, match=r"unknown time zone '\.\./etc/passwd'"):
        SourcesConfig.from_yaml({"sources": {"hubspot": {"files": ["a.csv"], "options": {"timezone": "../etc/passwd"}}}})
    cfg = SourcesConfig.from_yaml({"sources": {"hubspot": {"files": ["a.csv"], "options": {"timezone": "America/New_York", "date_order": "month_first"}}}})
    assert cfg.sources["hubspot"].options.timezone == "America/New_York"


def test_problems_across_keys_are_all_reported_with_the_others(tmp_path: Path) -> None:
    f = tmp_path / "sources.yaml"
    f.write_text(
        "version: 1\n"
        "sources:\n"
        "  Bad-Name:\n"
        "    reader: zendesk\n"
        "    files: ['']\n"
        "  mixpanel:\n"
        "    files: [a.jsonl]\n"
        "    options: {timezone: Mars/Olympus, date_order: sideways, max_json_depth: 0}\n"
        "  crm:\n"
        "    reader: salesforc\n"
        "    files: [a.csv]\n"
        "identity:\n"
        "  account_sources: [mixpanel, mixpanel, nope]\n"
    )
    with pytest.raises(ConfigError) as info:
        SourcesConfig.from_yaml(f)
    problems = info.value.problems
    for expected in (
        "sources.Bad-Name (line 3): source name 'Bad-Name' must be lower case letters, digits and _ (starting with a letter)",
        "sources.Bad-Name.files[0] (line 5): an empty path; give a file path or glob, relative to sources.yaml",
        "sources.mixpanel.options.timezone (line 8): unknown time zone 'Mars/Olympus'; use an IANA name such as Europe/Berlin, America/New_York or UTC",
        "sources.mixpanel.options.date_order (line 8): only the hubspot and salesforce readers take date_order (this source uses mixpanel)",
        "sources.mixpanel.options.date_order (line 8): must be 'day_first' or 'month_first'; found 'sideways'",
        "sources.mixpanel.options.max_json_depth (line 8): Input should be greater than 0; found 0",
        "sources.crm.reader (line 10): must be 'mixpanel', 'amplitude', 'zendesk', 'intercom', 'hubspot', 'salesforce', 'sendgrid' or 'mailchimp'; found 'salesforc'",
        "identity.account_sources (line 13): unknown source(s) ['nope']; the sources are Bad-Name, mixpanel, crm",
        "identity.account_sources[0] (line 13): source 'mixpanel' (reader mixpanel) holds no accounts; account sources use the readers salesforce, hubspot, intercom, zendesk",
        "identity.account_sources[1] (line 13): source 'mixpanel' is listed twice",
    ):
        assert expected in problems, (expected, problems)
    assert len(problems) == 10, problems


def test_glob_matching_nothing_fails_before_loading(tmp_path: Path) -> None:
    (tmp_path / "sources.yaml").write_text(
        f"sources:\n  salesforce:\n    files: ['{VENDORS / 'salesforce'}/*.csv']\n  mixpanel:\n    files: [missing/*.jsonl]\n"
    )
    with Store(":memory:") as s, pytest.raises(SourceFormatError, match=r"sources\.mixpanel\.files\[0\] = 'missing/\*\.jsonl' matches no file"):
        ingest_sources(s, tmp_path / "sources.yaml")
    with Store(":memory:") as s:
        with pytest.raises(SourceFormatError):
            ingest_sources(s, tmp_path / "sources.yaml")
        assert s.count("ingest_log") == 0  # nothing was loaded


# -- config ingest ---------------------------------------------------------------------------


def fixture_config(tmp_path: Path) -> Path:
    lines = ["version: 1", "sources:"]
    for reader in ("salesforce", "hubspot", "mixpanel", "zendesk", "intercom", "sendgrid", "mailchimp"):
        lines += [f"  {reader}:", f"    files: ['{VENDORS / reader}/*']"]
    lines += ["identity:", "  account_sources: [salesforce]"]
    f = tmp_path / "sources.yaml"
    f.write_text("\n".join(lines) + "\n")
    return f


def test_config_ingest_is_incremental_and_idempotent(tmp_path: Path) -> None:
    cfg = fixture_config(tmp_path)
    with Store(tmp_path / "s.duckdb") as s:
        first = ingest_sources(s, cfg)
        assert all(r.reconciles for r in first.files)
        counts = {t: s.count(t) for t in ("events", "tickets", "messages", "customers", "users", "identity_map", "quarantine")}
        imap = s.table("identity_map")
        again = ingest_sources(s, cfg)
        assert {r.status for r in again.files} == {"skipped"}  # same content: skipped by sha256
        assert {t: s.count(t) for t in counts} == counts
        pd.testing.assert_frame_equal(s.table("identity_map"), imap)
        # a late export with an old event and an overlapping one
        late = tmp_path / "late.jsonl"
        late.write_text(
            (VENDORS / "mixpanel" / "export.jsonl").read_text().splitlines()[0] + "\n"
            '{"event": "Signup", "properties": {"time": 1500000000, "distinct_id": "old", "$insert_id": "late-1"}}\n'
        )
        from journeylib.store.sources import ingest_source_files

        r = ingest_source_files(s, "mixpanel", [late]).files[0]
        assert (r.loaded, r.duplicate) == (1, 1)
        assert s.count("events") == counts["events"] + 1


def test_a_file_that_cannot_be_read_is_refused_and_the_others_load(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "zendesk"
    broken.mkdir()
    (broken / "a-tickets.json").write_text('{"tickets": [{"id": 1, "created_at": "2024-01-01T00:00:00Z", ')  # cut off
    (broken / "b-users.json").write_text('{"users": [{"id": 7, "email": "jane.doe@acme.com", "role": "end-user"}]}')
    cfg = tmp_path / "sources.yaml"
    cfg.write_text(
        f"sources:\n  zendesk:\n    files: ['{broken}/*.json']\n  salesforce:\n    files: ['{VENDORS / 'salesforce'}/*.csv']\n"
    )
    from journeylib.store.sources import SourcesIncompleteError

    with Store(tmp_path / "s.duckdb") as s:
        with pytest.raises(SourcesIncompleteError) as info:
            ingest_sources(s, cfg)
        result = info.value.result
        assert [Path(r.file).name for r in result.refused] == ["a-tickets.json"]
        assert "a-tickets.json" in result.refused[0].error
        assert "not JSON" in result.refused[0].error
        assert {Path(r.file).name for r in result.files if r.status == "loaded"} >= {"b-users.json", "Account.csv", "Contact.csv"}
        assert result.identity is not None  # identities resolved for what was loaded
        assert s.query("SELECT customer_id FROM identity_map WHERE source_id = 'user:7'")["customer_id"].tolist() == ["0015g00000ACME001"]
        assert "1 of 9 file(s) could not be read and were refused" in str(info.value)  # 2 Zendesk files, 7 Salesforce fixtures
    # the command line goes on too, says which file, and exits non-zero at the end
    assert main(["ingest", "--db", str(tmp_path / "c.duckdb"), "--config", str(cfg)]) == 1
    err = capsys.readouterr().err
    assert "a-tickets.json → tickets: refused, nothing loaded" in err
    assert "b-users.json → identities: read 1 = loaded 1" in err
    assert "identity: master salesforce" in err


def test_forced_reingest_adds_no_quarantine_row_twice(tmp_path: Path) -> None:
    f = tmp_path / "export.jsonl"
    f.write_text('{"event": "e", "properties": {"time": 1700000000, "distinct_id": "a", "$insert_id": "1"}}\nnot json\n[1]\n')
    from journeylib.store.sources import ingest_source_files

    with Store(":memory:") as s:
        ingest_source_files(s, "mixpanel", [f])
        conflict = tmp_path / "conflict.jsonl"
        conflict.write_text('{"event": "other", "properties": {"time": 1700000000, "distinct_id": "a", "$insert_id": "1"}}\n')
        ingest_source_files(s, "mixpanel", [conflict])
        assert s.count("quarantine") == 3
        for _ in range(2):
            ingest_source_files(s, "mixpanel", [f, conflict], force=True)
        assert s.count("quarantine") == 3
        keys = s.query("SELECT count(*) AS n FROM (SELECT DISTINCT file, line, reason FROM quarantine)")["n"].iloc[0]
        assert keys == 3


def test_only_one_source_of_the_config(tmp_path: Path) -> None:
    cfg = fixture_config(tmp_path)
    with Store(":memory:") as s:
        res = ingest_sources(s, cfg, only=["sendgrid"])
        assert {Path(r.file).parent.name for r in res.files} == {"sendgrid"}
        with pytest.raises(ConfigError, match="--source amplitude: not a source of this configuration"):
            ingest_sources(s, cfg, only=["amplitude"])


# -- the synthetic world in vendor formats ------------------------------------------------


@pytest.fixture(scope="module")
def vendor_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("vendor-world") / "world"
    synthesize(out, n_customers=60, seed=11)
    write_vendor_exports(out)
    return out


def test_identity_report_equals_what_the_world_planted(vendor_world: Path) -> None:
    truth = load_vendor_truth(vendor_world)
    with Store(":memory:") as s:
        res = ingest_sources(s, vendor_world / "vendor" / "sources.yaml")
        assert all(r.reconciles for r in res.files)
        got = identity_summary_data(s).set_index("source")[COLS]
        expected = pd.DataFrame(truth["expected"]).T[COLS].astype("int64")
        pd.testing.assert_frame_equal(got.sort_index(), expected.sort_index(), check_names=False)
        # the planted mess is visible where it should be
        assert got.loc["zendesk", "ids_ambiguous"] >= 1  # the shared support inbox
        assert got.loc["(all sources)", "ids_unmatched"] >= 1  # free-mail users missing from the CRM
        q = s.query("SELECT source, count(*) AS n FROM quarantine GROUP BY ALL").set_index("source")["n"].to_dict()
        assert q == truth["quarantined"]  # the malformed lines, and nothing else
        dup = sum(r.duplicate for r in res.files if r.table == "events" and "mixpanel" in r.file)
        assert dup > 0  # overlapping monthly exports
        # the world's accounts, plus the trial that exists only in HubSpot, counted by the source that created them
        assert s.count("customers") == truth["n_customers"] + truth["planted"]["hubspot_only_accounts"]
        origin = customer_origin_data(s).set_index("source")["customers"].to_dict()
        assert origin == truth["expected_customers"]
        assert res.identity is not None
        assert res.identity.customers_by_source == truth["expected_customers"]
        # per source and method, ids and rows equal what was planted, the new methods included
        rep = identity_report_data(s)
        got_methods = {
            src: {r.method: {"ids": int(r.ids), "rows": int(r.events + r.tickets + r.messages)} for r in g.itertuples()} for src, g in rep.groupby("source")
        }
        assert got_methods == truth["expected_methods"]
        used = set(rep["method"])
        assert {"product_user_id", "device", "own_account", "email", "crm_id", "domain", "contact_account", "crm_account"} <= used
        # the product user ids were found by value overlap, under names that say nothing
        fields = {(f.source, f.field) for f in res.identity.product_user_id_fields}
        assert fields == {(src, name) for src, name in truth["planted"]["product_id_fields"].items()}
        assert all(f.how == "detected" for f in res.identity.product_user_id_fields)
        # every product event of a user the world knows lands on its account (only free-mail users missing from every CRM stay unresolved)
        product = s.query(
            "SELECT count(*) FILTER (WHERE customer_id IS NULL) AS unresolved, count(*) AS n FROM events WHERE source IN ('mixpanel', 'amplitude')"
        ).iloc[0]
        assert product["unresolved"] == truth["expected"]["mixpanel"]["rows_unmatched"] + truth["expected"]["amplitude"]["rows_unmatched"]
        # every source kind reached the timeline
        assert set(s.table("events")["source"]) == {"salesforce", "hubspot", "mixpanel", "amplitude", "zendesk", "intercom", "sendgrid", "mailchimp"}


def test_boundary_values_equal_what_the_world_planted(vendor_world: Path) -> None:
    """Ratings on another scale and e-mails with only their furthest status: the notes and stored values equal the truth."""
    truth = load_vendor_truth(vendor_world)
    values = truth["expected_values"]
    assert truth["planted"]["sendgrid_click_only_emails"] > 0
    assert any(f.startswith("intercom/") for f in values["notes"])  # Intercom's native 1-5 ratings
    with Store(":memory:") as s:
        res = ingest_sources(s, vendor_world / "vendor" / "sources.yaml")
        # per file, the counted notes of the boundary rules (ratings rescaled or read as 1/0, implied statuses)
        got: dict[str, dict[str, int]] = {}
        for r in res.files:
            for n in r.notes:
                text, _, count = n.rpartition(" (")
                if text.startswith(("satisfaction", "status:")):
                    rel = Path(r.file).relative_to(vendor_world / "vendor").as_posix()
                    got.setdefault(rel, {})[text] = int(count.rstrip(")").replace(",", ""))
        assert got == values["notes"]
        # every rated ticket holds its rating on 0..1; no other ticket has one
        stored = s.query("SELECT ticket_id, satisfaction FROM tickets WHERE satisfaction IS NOT NULL")
        assert dict(zip(stored["ticket_id"], stored["satisfaction"], strict=True)) == pytest.approx(values["satisfaction"])
        assert stored["satisfaction"].between(0, 1).all()
        # implied statuses are counted, never stored: the click-only e-mails keep one messages row each
        click_only = s.query(
            "SELECT count(*) AS n FROM (SELECT json_extract_string(properties, '$.send_id') AS send FROM messages WHERE message_id LIKE 'sendgrid:%' "
            "GROUP BY 1 HAVING bool_or(status = 'clicked') AND NOT bool_or(status IN ('delivered', 'opened')))"
        )["n"].iloc[0]
        assert click_only == truth["planted"]["sendgrid_click_only_emails"]
        assert set(values["notes"]["sendgrid/events.json"].values()) == {click_only}
        mc = s.query("SELECT count(*) AS n FROM messages WHERE message_id LIKE 'mailchimp:%' AND status = 'delivered'")["n"].iloc[0]
        assert mc == 0  # Mailchimp's activity has no delivery rows, and none is made up


def test_vendor_exports_are_deterministic(vendor_world: Path, tmp_path: Path) -> None:
    other = tmp_path / "world"
    synthesize(other, n_customers=60, seed=11)
    write_vendor_exports(other)
    for f in sorted((vendor_world / "vendor").rglob("*")):
        if f.is_file() and f.name != "vendor_truth.json":
            assert (other / "vendor" / f.relative_to(vendor_world / "vendor")).read_bytes() == f.read_bytes(), f.name
    assert load_vendor_truth(other)["expected"] == load_vendor_truth(vendor_world)["expected"]
    with pytest.raises(ValueError, match=r"missing_from_crm_share must be within \[0, 1\], got 2"):
        write_vendor_exports(other, missing_from_crm_share=2)
    # the boundary values draw from a stream of their own: without click-only e-mails every other file is byte for byte the same
    write_vendor_exports(other, click_only_share=0.0)
    for f in sorted((vendor_world / "vendor").rglob("*")):
        if f.is_file() and f.name not in ("vendor_truth.json", "events.json"):
            assert (other / "vendor" / f.relative_to(vendor_world / "vendor")).read_bytes() == f.read_bytes(), f.name
    plain = load_vendor_truth(other)
    assert plain["planted"]["sendgrid_click_only_emails"] == 0
    assert "sendgrid/events.json" not in plain["expected_values"]["notes"]
    # the click-only e-mails lose their delivered and open events, nothing else
    lost = plain["expected"]["sendgrid"]["rows"] - load_vendor_truth(vendor_world)["expected"]["sendgrid"]["rows"]
    assert lost == 2 * 2 * load_vendor_truth(vendor_world)["planted"]["sendgrid_click_only_emails"]  # (event + message row) x (delivered, open)


# -- command line --------------------------------------------------------------------------


def test_cli_config_and_source(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "s.duckdb"
    assert main(["ingest", "--db", str(db), "--source", "hubspot", *map(str, sorted((VENDORS / "hubspot").glob("*.csv")))]) == 0
    out = capsys.readouterr().out
    assert "contacts.csv → identities: read 3 = loaded 3" in out
    assert "identity: master hubspot" in out
    assert main(["ingest", "--db", str(db), "--config", str(fixture_config(tmp_path))]) == 0
    out = capsys.readouterr().out
    assert "skipped, identical content already ingested" in out  # the hubspot files again
    assert "identity: master salesforce" in out
    # errors: a file of another vendor, files with --config, unknown table
    assert main(["ingest", "--db", str(db), "--source", "zendesk", str(VENDORS / "hubspot" / "deals.csv")]) == 1
    assert "deals.csv: not JSON at line 1" in capsys.readouterr().err
    assert main(["ingest", "--db", str(db), "--config", str(tmp_path / "sources.yaml"), "x.csv"]) == 1
    assert "do not also give files" in capsys.readouterr().err
    assert main(["ingest", "--db", str(db), "--source", "mixpanel"]) == 1
    assert "give the mixpanel export files" in capsys.readouterr().err


def test_cli_synth_vendor_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "w"
    assert main(["synth", "--customers", "25", "--seed", "2", "--out", str(out), "--format", "vendor"]) == 0
    text = capsys.readouterr().out
    assert f"journeylib ingest --config {out / 'vendor' / 'sources.yaml'}" in text
    assert (out / "vendor" / "vendor_truth.json").exists()
    assert main(["ingest", "--db", str(tmp_path / "v.duckdb"), "--config", str(out / "vendor" / "sources.yaml")]) == 0
    assert "identity: master salesforce" in capsys.readouterr().out
