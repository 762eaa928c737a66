"""The second synthetic world (journeylib.datasets.second_world) at a small size.

It must differ from the demo world in what analyses could silently assume,
hold its truths consistently, censor honestly at ``as_of``, and load through
the canonical ingest with nothing quarantined and the truth's counts.
The full-size check against the analyses is benchmarks/second_world_check.py.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from journeylib.config import JourneyDefinition
from journeylib.context import Journey
from journeylib.customers.features import DEFAULT_WINDOWS
from journeylib.datasets import SecondWorldResult, synthesize_second_world
from journeylib.datasets.parameters import EVENT_NAMES as DEMO_EVENTS
from journeylib.datasets.parameters import PARAMS as DEMO_PARAMS
from journeylib.datasets.parameters import SOURCES as DEMO_SOURCES
from journeylib.scope import Scope
from journeylib.store import Store
from journeylib.store.ingest import ingest_folder

N = 600
SEED = 11
PRODUCT_SOURCES = ("web", "mobile")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> SecondWorldResult:
    return synthesize_second_world(tmp_path_factory.mktemp("second_world"), n_customers=N, seed=SEED)


@pytest.fixture(scope="module")
def tables(world: SecondWorldResult) -> dict[str, pd.DataFrame]:
    return {name: pd.concat([pd.read_parquet(p) for p in paths], ignore_index=True) for name, paths in world.files.items()}


@pytest.fixture(scope="module")
def ingested(world: SecondWorldResult) -> Iterator[tuple[Store, list]]:
    store = Store(":memory:")
    results = ingest_folder(store, world.out_dir, source_kinds=world.source_kinds)
    yield store, results
    store.close()


def _hashes(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*")) if p.is_file()
    }


def _definition(world: SecondWorldResult) -> JourneyDefinition:
    return JourneyDefinition.load(world.definition_path)  # free-order stage and a drop outcome: must load


# -- seeded and deterministic -----------------------------------------------------------------------
def test_same_seed_same_files_other_seed_other_files(tmp_path: Path) -> None:
    a = synthesize_second_world(tmp_path / "a", n_customers=150, seed=4)
    b = synthesize_second_world(tmp_path / "b", n_customers=150, seed=4)
    c = synthesize_second_world(tmp_path / "c", n_customers=150, seed=5)
    assert _hashes(a.out_dir) == _hashes(b.out_dir)
    ha, hc = _hashes(a.out_dir), _hashes(c.out_dir)
    assert ha["events/part-00000.parquet"] != hc["events/part-00000.parquet"]
    assert ha["truth.json"] != hc["truth.json"]


def test_bad_arguments_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="n_customers"):
        synthesize_second_world(tmp_path, n_customers=0)
    with pytest.raises(ValueError, match="file_format"):
        synthesize_second_world(tmp_path, n_customers=5, file_format="xlsx")


def test_csv_world_holds_the_same_rows(tmp_path: Path, world: SecondWorldResult) -> None:
    csv = synthesize_second_world(tmp_path, n_customers=N, seed=SEED, file_format="csv")
    assert csv.counts == world.counts
    assert csv.truth["outcomes"] == world.truth["outcomes"]


# -- not the demo world --------------------------------------------------------------------------------
def test_differs_from_the_demo_in_its_assumptions(world: SecondWorldResult, tables: dict[str, pd.DataFrame]) -> None:
    t = world.truth
    assert t["trial_days"] != DEMO_PARAMS.trial_days
    sources = set(tables["events"]["source"])
    assert sources == {"web", "mobile", "backend", "customerio", "helpdesk"}
    assert not sources & set(DEMO_SOURCES), "no source may carry a demo source name (product, crm, support, email)"
    stage_events = {ev for s in _raw_definition(world)["stages"] if isinstance(s["rule"], dict) for ev in [s["rule"]["event"]]}
    assert not stage_events & set(DEMO_EVENTS), "the stages are built on events the demo does not have"
    windows = {p["window_days"] for p in t["planted"] if "window_days" in p}
    assert windows
    assert not windows & {*DEFAULT_WINDOWS, DEMO_PARAMS.setup_window_days, DEMO_PARAMS.trial_days}
    assert any(s["order"] == "any" for s in t["funnel"])
    assert set(tables["customers"]["plan"]) <= {"essentials", "plus", "premium"}  # never "trial"
    # churn spreads far past a constant 150-day horizon after signup
    assert t["outcomes"]["churned_more_than_150_days_after_signup"] > 0.3 * t["outcomes"]["churned"] > 0


def _raw_definition(world: SecondWorldResult) -> dict:
    import yaml

    return yaml.safe_load(world.definition_path.read_text(encoding="utf-8"))


# -- truth consistent with itself and with the files ----------------------------------------------------
def test_truth_is_internally_consistent(world: SecondWorldResult) -> None:
    t = world.truth
    o = t["outcomes"]
    assert o["converted"] + o["trial_expired"] + o["trial_running"] == N
    assert o["churned"] + o["paying_active"] == o["converted"]
    assert sum(t["persona_counts"].values()) == N == len(t["personas"])
    assert set(t["personas"].values()) == set(t["persona_counts"])
    funnel = {s["stage"]: s for s in t["funnel"]}
    assert funnel["Trial Started"]["reached"] == N
    ordered = [s["reached"] for s in t["funnel"] if s["order"] != "any"]
    assert ordered == sorted(ordered, reverse=True)
    for s in t["funnel"]:
        assert s["reached"] + s["dropped"] + s["censored"] == s["eligible"], s["stage"]
        assert s["reached"] <= s["rule_holds"]
    paying = funnel["Paying"]
    assert paying["order"] == "any"
    assert paying["reached"] == paying["rule_holds"] == o["converted"]
    assert paying["dropped"] == o["trial_expired"]
    assert paying["censored"] == o["trial_running"]
    assert paying["reached_if_ordered"] < paying["reached"], "paying must happen without the set-up stages for some"
    conv = next(p for p in t["planted"] if p["outcome"] == "conversion")
    r = conv["realised"]
    assert r["n_exposed"] + r["n_reference"] == o["converted"] + o["trial_expired"]
    assert r["events_exposed"] + r["events_reference"] == o["converted"]
    assert r["risk_ratio"] > 1.5
    assert conv["true_risk_ratio"] == pytest.approx(2.5)
    churn = [p for p in t["planted"] if p["outcome"] == "churn"]
    assert {p["name"] for p in churn} == {"churn_no_early_payroll", "churn_monthly_contract"}
    for p in churn:
        assert p["realised"]["n_exposed"] + p["realised"]["n_reference"] == o["converted_with_full_12_month_follow_up"]
    assert {a["attribute"] for a in t["null_attributes"]} == {"plan", "segment", "payment_method", "country"}
    assert json.loads(world.truth_path.read_text(encoding="utf-8")) == t


def test_truth_counts_match_the_files(world: SecondWorldResult, tables: dict[str, pd.DataFrame]) -> None:
    t, cust, ev = world.truth, tables["customers"], tables["events"]
    assert {k: len(v) for k, v in tables.items()} == t["row_counts"] == world.counts
    as_of = world.as_of
    trial_end = pd.to_datetime(cust["properties"].map(lambda s: json.loads(s)["trial_ends_at"]), utc=True)
    converted = cust["converted_at"].notna()
    assert int(converted.sum()) == t["outcomes"]["converted"]
    assert int(cust["churned_at"].notna().sum()) == t["outcomes"]["churned"]
    assert int((~converted & (trial_end <= as_of)).sum()) == t["outcomes"]["trial_expired"]
    assert ev["source"].value_counts().sort_index().to_dict() == t["events_by_source"]
    # the planted conversion behaviour, recounted from the events file
    signup = cust.set_index("customer_id")["signup_at"]
    added = ev[ev["event"] == "employee_added"]
    inside = added[added["timestamp"] < added["customer_id"].map(signup) + pd.Timedelta(days=5)]
    flag = inside.groupby("customer_id").size().reindex(cust["customer_id"], fill_value=0).to_numpy() >= 3
    decided = (converted | (trial_end <= as_of)).to_numpy()
    conv = next(p for p in t["planted"] if p["outcome"] == "conversion")["realised"]
    assert int((flag & decided).sum()) == conv["n_exposed"]
    assert int((flag & decided & converted.to_numpy()).sum()) == conv["events_exposed"]
    # every paying customer has its plan_purchased event at converted_at
    bought = ev[ev["event"] == "plan_purchased"].set_index("customer_id")["timestamp"]
    paid = cust[converted].set_index("customer_id")["converted_at"]
    assert bought.sort_index().equals(paid.sort_index().rename("timestamp"))


def test_censored_at_as_of_and_at_the_end_of_access(world: SecondWorldResult, tables: dict[str, pd.DataFrame]) -> None:
    as_of = world.as_of
    for name, col in (("events", "timestamp"), ("messages", "timestamp"), ("tickets", "created_at"), ("users", "created_at")):
        assert (tables[name][col] < as_of).all(), name
    for col in ("converted_at", "churned_at", "signup_at"):
        assert (tables["customers"][col].dropna() < as_of).all(), col
    cust = tables["customers"].set_index("customer_id")
    ev = tables["events"]
    assert (ev["timestamp"] >= ev["customer_id"].map(cust["signup_at"])).all()
    product = ev[ev["source"].isin(PRODUCT_SOURCES)]
    churned_at = product["customer_id"].map(cust["churned_at"])
    assert not (churned_at.notna() & (product["timestamp"] >= churned_at)).any(), "product use after churn"
    trial_end = product["customer_id"].map(
        cust["properties"].map(lambda s: pd.Timestamp(json.loads(s)["trial_ends_at"]))
    )
    unpaid = product["customer_id"].map(cust["converted_at"]).isna()
    assert not (unpaid & (product["timestamp"] >= trial_end)).any(), "product use after an unpaid trial ended"
    assert world.truth["outcomes"]["trial_running"] > 0, "some trials are still running at as_of (censored)"
    assert world.truth["outcomes"]["churn_after_as_of_censored"] >= 0


# -- ingest -----------------------------------------------------------------------------------------------
def test_ingest_quarantines_nothing_and_store_counts_equal_truth(world: SecondWorldResult, ingested: tuple[Store, list]) -> None:
    store, results = ingested
    assert {r.status for r in results} == {"loaded"}
    assert sum(r.quarantined for r in results) == 0
    assert sum(r.notes_count for r in results) == 0
    assert int(store.query("SELECT count(*) AS n FROM quarantine")["n"].iloc[0]) == 0
    t = world.truth
    for table, n in t["row_counts"].items():
        assert int(store.query(f"SELECT count(*) AS n FROM {table}")["n"].iloc[0]) == n, table
    row = store.query(
        "SELECT count(converted_at) AS converted, count(churned_at) AS churned FROM customers"
    ).iloc[0]
    assert int(row["converted"]) == t["outcomes"]["converted"]
    assert int(row["churned"]) == t["outcomes"]["churned"]
    by_source = store.query("SELECT source, count(*) AS n FROM events GROUP BY source ORDER BY source")
    assert dict(zip(by_source["source"], by_source["n"].astype(int), strict=True)) == t["events_by_source"]


def test_funnel_reach_equals_truth(world: SecondWorldResult, ingested: tuple[Store, list]) -> None:
    definition = _definition(world)
    store, _ = ingested
    journey = Journey(store, definition, Scope.build(store, function="test_second_world"))
    funnel = journey.funnel_data().set_index("stage")
    truth = {s["stage"]: s for s in world.truth["funnel"]}
    assert list(funnel.index) == list(truth)
    measured = funnel["reached"].astype(int).to_dict()
    assert measured == {k: v["reached"] for k, v in truth.items()}
    assert int(funnel.loc["Paying", "eligible"]) == truth["Paying"]["eligible"] == N
    assert np.isclose(float(funnel.loc["Paying", "share_of_start"]), world.truth["outcomes"]["converted"] / N)
