"""Source categories: the same analysis on a canonical store and on a vendor-ingested one."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from journeylib.customers.features import build_features
from journeylib.journey.suggest import suggest_milestones_data
from journeylib.store import Store
from journeylib.store.categories import (
    activity_source_names,
    events_of,
    parse_source_kind,
    record_source_kinds,
    source_categories,
    source_kinds_table,
    sources_of,
)


def test_categories_of_canonical_and_vendor_sources(demo_store: Path, vendor_store: Path) -> None:
    with Store(demo_store, read_only=True) as s:
        assert source_categories(s) == {"crm": "crm", "email": "email", "product": "product", "support": "support"}
        assert sources_of(s, ["product"]) == ["product"]
    with Store(vendor_store, read_only=True) as s:
        cats = source_categories(s)
        assert cats == {
            "amplitude": "product", "hubspot": "crm", "intercom": "support", "mailchimp": "email",
            "mixpanel": "product", "salesforce": "crm", "sendgrid": "email", "zendesk": "support",
        }  # fmt: skip
        assert sources_of(s, ["product"]) == ["amplitude", "mixpanel", "product"]
        assert sources_of(s, ["crm", "zendesk"]) == ["crm", "hubspot", "salesforce", "zendesk"]  # a source name selects itself


def test_source_named_freely_takes_its_readers_category(tmp_path: Path) -> None:
    from journeylib.store.sources import ingest_sources

    vendors = Path(__file__).parent / "data" / "vendors"
    cfg = {"sources": {"web_app": {"reader": "mixpanel", "files": [str(vendors / "mixpanel" / "*.jsonl")]}}}
    with Store(tmp_path / "s.duckdb") as s:
        ingest_sources(s, cfg)
        assert source_categories(s) == {"web_app": "product"}


def test_features_exclude_crm_records_and_count_product_activity(vendor_store: Path) -> None:
    with Store(vendor_store, read_only=True) as s:
        feats = build_features(s, window_days=14)
        events = set(feats.catalog.loc[feats.catalog["source"] == "events", "event"])
        crm_events = set(s.query("SELECT DISTINCT event FROM events WHERE source IN ('salesforce', 'hubspot')")["event"])
        assert {"opportunity_created", "lifecycle_stage_changed", "trial_started"} <= crm_events
        assert not events & (crm_events - {"ticket_created", "ticket_solved"})  # commercial records are not behaviour
        assert {"login", "setup_completed", "integration_connected"} <= events
        assert feats.data["days_active_14d"].gt(0).mean() > 0.5  # activity from the Mixpanel and Amplitude sources
        # naming an excluded event includes it
        named = build_features(s, window_days=14, event_types=["opportunity_created"])
        assert "n_opportunity_created_14d" in named.data.columns


def test_suggested_milestones_never_use_crm_records(vendor_store: Path) -> None:
    with Store(vendor_store, read_only=True) as s:
        cands = suggest_milestones_data(s, outcome="conversion", outcome_window_days=30)
        crm_events = set(s.query("SELECT DISTINCT event FROM events WHERE source IN ('salesforce', 'hubspot')")["event"])
    assert isinstance(cands, pd.DataFrame)
    assert len(cands)
    assert not set(cands["event"]) & crm_events


def test_events_of_customer_action_sources(demo_store: Path, vendor_store: Path) -> None:
    with Store(vendor_store, read_only=True) as s:
        names = set(events_of(s, ["product", "support"]))
    assert {"login", "setup_completed", "ticket_created"} <= names
    assert not names & {"opportunity_created", "lifecycle_stage_changed", "subscription_started", "email_opened"}
    with Store(demo_store, read_only=True) as s:
        # The same actions, whichever way the world was loaded, but for the comments of Zendesk's per-ticket
        # comment files, which only the vendor exports carry.
        assert set(events_of(s, ["product", "support"])) == names - {"ticket_comment"}


# -- kinds of sources named freely -------------------------------------------------------------

EVENTS = pd.DataFrame(
    {
        "event_id": ["e1", "e2", "e3", "e4", "e5"],
        "customer_id": ["c1"] * 5,
        "timestamp": pd.to_datetime(
            ["2025-01-01T10:00Z", "2025-01-02T10:00Z", "2025-01-03T10:00Z", "2025-01-03T11:00Z", "2025-01-04T10:00Z"], utc=True
        ),
        "event": ["login", "screen_viewed", "email_opened", "deal_won", "ticket_created"],
        "source": ["web", "ios", "braze", "salesforce", "support"],
    }
)


def _store() -> Store:
    s = Store(":memory:")
    s.insert("customers", pd.DataFrame({"customer_id": ["c1"], "signup_at": [pd.Timestamp("2025-01-01", tz="UTC")]}))
    s.insert("events", EVENTS)
    return s


def test_unknown_names_default_to_product_and_known_names_keep_their_kind() -> None:
    with _store() as s:
        # web, ios, braze: unknown names → product; salesforce: a reader's name → crm; support: a kind
        assert source_categories(s) == {"braze": "product", "ios": "product", "salesforce": "crm", "support": "support", "web": "product"}
        table = source_kinds_table(s).set_index("source")
        assert table["origin"].to_dict() == {"braze": "default", "ios": "default", "salesforce": "name", "support": "name", "web": "default"}
        assert not table["recorded"].any()
        assert activity_source_names(s) == ["braze", "ios", "web"]


def test_declared_kinds_are_recorded_and_change_what_analyses_select() -> None:
    with _store() as s:
        first = record_source_kinds(s, {"braze": "email"}, run="r1")
        assert [(c.source, c.kind, c.origin) for c in first] == [
            ("braze", "email", "declared"), ("ios", "product", "default"), ("salesforce", "crm", "name"),
            ("support", "support", "name"), ("web", "product", "default"),
        ]  # fmt: skip
        assert record_source_kinds(s, {"braze": "email"}) == []  # nothing new, nothing changed
        assert activity_source_names(s) == ["ios", "web"]
        assert sources_of(s, ["email"]) == ["braze", "email"]
        changed = record_source_kinds(s, {"ios": "support", "marketo": "email"})
        assert [(c.source, c.kind, c.previous, c.events) for c in changed] == [("ios", "support", "product (default)", 1), ("marketo", "email", "", 0)]
        assert changed[0].summary() == "source ios: kind support (declared; was product (default))"
        assert changed[1].summary() == "source marketo: kind email (declared; no events from this source in the store yet)"
        assert activity_source_names(s) == ["web"]
        # a declared source's first events take the declared kind
        s.insert("events", pd.DataFrame({"event_id": ["e9"], "customer_id": ["c1"], "timestamp": [pd.Timestamp("2025-01-05", tz="UTC")],
                                         "event": ["email_sent"], "source": ["marketo"]}))  # fmt: skip
        assert record_source_kinds(s) == []
        assert source_categories(s)["marketo"] == "email"


def test_default_summary_says_how_to_declare() -> None:
    with _store() as s:
        web = next(c for c in record_source_kinds(s) if c.source == "web")
    assert web.summary() == (
        "source web: kind product (default: journeylib does not know the name, so its events count as customer "
        "activity; if they are not, declare it with --source-kind web=KIND or source_kinds in sources.yaml "
        "(KIND one of product, crm, support, email))"
    )


def test_build_features_counts_activity_of_every_product_kind_source() -> None:
    with _store() as s:
        # 14-day window from 2025-01-01: activity on 01-01 (web) and 01-02 (ios); braze, salesforce and support are not
        # activity once braze is declared e-mail (before: braze's 01-03 counted, 3 days)
        before = build_features(s, window_days=14, as_of="2025-03-01")
        assert before.data["days_active_14d"].tolist() == [3]
        record_source_kinds(s, {"braze": "email"})
        after = build_features(s, window_days=14, as_of="2025-03-01")
        assert after.data["days_active_14d"].tolist() == [2]


def test_parse_source_kind_and_its_errors() -> None:
    assert parse_source_kind(" web = Product ") == ("web", "product")
    with pytest.raises(ValueError, match="--source-kind expects NAME=KIND"):
        parse_source_kind("web")
    with pytest.raises(ValueError, match="kind 'activity' is not one of product, crm, support, email"):
        parse_source_kind("web=activity")
    with pytest.raises(ValueError, match="an empty source name"):
        parse_source_kind("=email")


def test_source_kinds_in_sources_yaml_apply_to_vendor_sources(tmp_path: Path) -> None:
    from journeylib.exceptions import ConfigError
    from journeylib.store.sources import ingest_sources

    vendors = Path(__file__).parent / "data" / "vendors"
    cfg = {
        "sources": {"web_app": {"reader": "mixpanel", "files": [str(vendors / "mixpanel" / "*.jsonl")]}},
        "source_kinds": {"web_app": "support", "braze": "email"},
    }
    with Store(tmp_path / "s.duckdb") as s:
        result = ingest_sources(s, cfg)
        assert [(k.source, k.kind, k.origin) for k in result.source_kinds] == [("braze", "email", "declared"), ("web_app", "support", "declared")]
        assert "source web_app: kind support (declared)" in result.lines()
        assert source_categories(s) == {"web_app": "support"}
        again = ingest_sources(s, {**cfg, "source_kinds": {}}, source_kinds={"web_app": "product"})  # the argument wins
        assert [(k.source, k.kind, k.previous) for k in again.source_kinds] == [("web_app", "product", "support (declared)")]
    with pytest.raises(ConfigError, match=r"source_kinds\.web_app"):
        ingest_sources(Store(":memory:"), {**cfg, "source_kinds": {"web_app": "activity"}})


def test_vendor_source_without_declaration_takes_its_readers_kind(tmp_path: Path) -> None:
    from journeylib.store.sources import ingest_sources

    vendors = Path(__file__).parent / "data" / "vendors"
    cfg = {"sources": {"web_app": {"reader": "mixpanel", "files": [str(vendors / "mixpanel" / "*.jsonl")]}}}
    with Store(tmp_path / "s.duckdb") as s:
        result = ingest_sources(s, cfg)
    assert [(k.source, k.kind, k.origin) for k in result.source_kinds] == [("web_app", "product", "reader mixpanel")]
    assert result.source_kinds[0].summary() == "source web_app: kind product (from its reader mixpanel)"
