"""Event mapping (``events`` rules of a source): validation, SQL semantics, ingest, and the demo's vendor path."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from journeylib.config import EventRule, SourcesConfig
from journeylib.datasets.vendor import CRM_EVENT_RULES
from journeylib.exceptions import ConfigError
from journeylib.store import Store
from journeylib.store.eventmap import apply_event_map
from journeylib.store.sources import ingest_sources

VENDORS = Path(__file__).parent / "data" / "vendors"
ROOT = Path(__file__).resolve().parents[1]
COMMERCIAL = ("trial_started", "subscription_started", "plan_upgraded", "renewal", "subscription_cancelled")


def _events(store: Store, rows: list[tuple[str, str, dict | None]]) -> None:
    frame = pd.DataFrame(
        {"event_id": [r[0] for r in rows], "event": [r[1] for r in rows], "properties": [None if r[2] is None else json.dumps(r[2]) for r in rows]}
    )
    store.execute("CREATE TEMP TABLE t (event_id VARCHAR, event VARCHAR, properties JSON)")
    store.con.register("f", frame)
    store.execute("INSERT INTO t SELECT event_id, event, properties FROM f")
    store.con.unregister("f")


def test_rules_rename_in_order_with_filters_and_keep_the_vendor_name() -> None:
    rules = [
        EventRule(match="won", where={"type": "Renewal"}, to="renewal"),
        EventRule(match="won", where={"type": ["New Business", "New"], "trial": True}, to="subscription_started"),
        EventRule(match="won", to="won_other"),  # catch-all after the specific ones
        EventRule(match="won", where={"type": "Renewal"}, to="never"),  # shadowed: the first rule wins
        EventRule(match="seats", where={"n": 3}, to="three_seats"),
    ]
    with Store(":memory:") as s:
        _events(
            s,
            [
                ("1", "won", {"type": "Renewal"}),
                ("2", "won", {"type": "New", "trial": True}),
                ("3", "won", {"type": "New", "trial": False}),
                ("4", "won", None),
                ("5", "lost", {"type": "Renewal"}),
                ("6", "seats", {"n": 3}),
                ("7", "seats", {"n": 4}),
            ],
        )
        notes = apply_event_map(s, "t", rules)
        got = s.query("SELECT event_id, event, properties::VARCHAR AS p FROM t ORDER BY event_id")
    assert got["event"].tolist() == ["renewal", "subscription_started", "won_other", "won_other", "lost", "three_seats", "seats"]
    props = [json.loads(p) for p in got["p"]]
    assert props[0] == {"type": "Renewal", "vendor_event": "won"}  # properties kept, the reader's name recorded
    assert props[3] == {"vendor_event": "won"}  # NULL properties become an object
    assert props[4] == {"type": "Renewal"}  # untouched
    assert dict(notes) == {
        "events renamed won → renewal": 1,
        "events renamed won → subscription_started": 1,
        "events renamed won → won_other": 2,
        "events renamed seats → three_seats": 1,
    }
    with Store(":memory:") as s:
        _events(s, [("1", "won", {"type": "Renewal"})])
        assert apply_event_map(s, "t", []) == {}
        assert s.query("SELECT event FROM t")["event"].tolist() == ["won"]


def test_rule_errors_name_the_key() -> None:
    bad = {
        "sources": {
            "salesforce": {
                "files": ["*.csv"],
                "events": [
                    {"match": "opportunity_won", "to": "renewal", "form": "x"},
                    {"match": "opportunity_won"},
                    {"match": " opportunity_won", "to": "renewal"},
                    {"match": "opportunity_won", "where": {"opportunity_type": []}, "to": "renewal"},
                ],
            }
        }
    }
    with pytest.raises(ConfigError) as info:
        SourcesConfig.from_yaml(bad)
    msg = str(info.value)
    for fragment in (
        "sources.salesforce.events[0].form: unknown key 'form'; allowed keys here: match, where, to",
        "sources.salesforce.events[1].to: required key is missing",
        "sources.salesforce.events[2].match: an event name without leading or trailing white space is expected, found ' opportunity_won'",
        "sources.salesforce.events[3].where: property 'opportunity_type': an empty list matches nothing",
    ):
        assert fragment in msg, fragment


def test_ingest_applies_the_rules_and_counts_them(tmp_path: Path) -> None:
    cfg = {
        "sources": {
            "salesforce": {
                "files": [str(VENDORS / "salesforce" / "*.csv")],
                "events": [{"match": "opportunity_won", "where": {"opportunity_type": "New Business"}, "to": "subscription_started"}],
            }
        }
    }
    with Store(tmp_path / "s.duckdb") as s:
        res = ingest_sources(s, cfg)
        assert all(r.reconciles for r in res.files)
        opp = next(r for r in res.files if r.file.endswith("Opportunity.csv") and r.table == "events")
        assert "events renamed opportunity_won → subscription_started (1)" in opp.notes
        ev = s.query("SELECT event, properties::VARCHAR AS p FROM events WHERE event_id LIKE '%OPP0001%' ORDER BY event")
        assert ev["event"].tolist() == ["opportunity_created", "subscription_started"]
        assert json.loads(ev["p"].iloc[1])["vendor_event"] == "opportunity_won"
        n = s.count("events")
        again = ingest_sources(s, cfg)
        assert {r.status for r in again.files} == {"skipped"}
        assert s.count("events") == n


def test_demo_sources_yaml_carries_the_worlds_rules() -> None:
    demo = yaml.safe_load((ROOT / "parameters" / "sources" / "demo.yaml").read_text())
    got = {name: src["events"] for name, src in demo["sources"].items() if "events" in src}
    assert got == CRM_EVENT_RULES
    SourcesConfig.from_yaml(ROOT / "parameters" / "sources" / "demo.yaml")  # valid


def test_vendor_path_gives_the_canonical_commercial_events(demo_store: Path, vendor_store: Path) -> None:
    """The demo's vendor exports, mapped and stitched, reproduce the world's CRM events per account and day."""

    def commercial(path: Path) -> pd.DataFrame:
        with Store(path, read_only=True) as s:
            names = ", ".join(f"'{e}'" for e in COMMERCIAL)
            return s.query(
                f"""SELECT c.name, e.event, CAST(e.timestamp AS DATE) AS day, count(*) AS n
                    FROM events e JOIN customers c USING (customer_id) WHERE e.event IN ({names}) GROUP BY ALL ORDER BY ALL"""
            )

    canonical, vendor = commercial(demo_store), commercial(vendor_store)
    assert set(canonical["event"]) == set(COMMERCIAL)
    pd.testing.assert_frame_equal(vendor, canonical)
    with Store(vendor_store, read_only=True) as s:
        assert s.query("SELECT count(*) AS n FROM events WHERE customer_id IS NULL")["n"].iloc[0] > 0  # unresolved rows are kept
        assert s.count("customers") == 200 + 1  # the world's accounts and the trial that exists only in HubSpot (identity: own_account)
