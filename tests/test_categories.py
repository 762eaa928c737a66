"""Source categories: the same analysis on a canonical store and on a vendor-ingested one."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from journeylib.customers.features import build_features
from journeylib.journey.suggest import suggest_milestones_data
from journeylib.store import Store
from journeylib.store.categories import events_of, source_categories, sources_of


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
