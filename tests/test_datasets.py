"""Tests of the seeded synthetic world (journeylib.datasets).

Three groups:

* contract: determinism, canonical columns and types, keys, enums, JSON
  properties, referential integrity, time bounds, CSV and Parquet;
* consistency: CRM/e-mail/support events mirror the customers, messages and
  tickets tables; censoring at ``as_of`` is honest;
* planted truths: each truth is recomputed from the written files alone, at
  n=2000, and checked against a range around its planted value. The same
  checks are run on a world whose planting is switched off, to show they can
  fail.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from journeylib.datasets import (
    FILE_FORMATS,
    SynthResult,
    load_archetypes,
    load_ticket_labels,
    load_truth,
    load_world,
    parameters,
    simulation,
    synthesize,
    world,
)
from journeylib.datasets import text as dtext
from journeylib.exceptions import JourneyLibError
from journeylib.store.schema import ENTITY_TABLES, MESSAGE_STATUSES

SMALL = {"n_customers": 200, "seed": 7, "chunk_customers": 80}
TABLES = list(ENTITY_TABLES)
DAY = pd.Timedelta(days=1)
WEEK = pd.Timedelta(weeks=1)


def _hashes(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> tuple[SynthResult, dict[str, pd.DataFrame], dict[str, Any]]:
    out = tmp_path_factory.mktemp("small")
    started = time.perf_counter()
    result = synthesize(out, **SMALL)
    elapsed = time.perf_counter() - started
    assert elapsed < 5.0, f"200 customers took {elapsed:.1f}s"
    return result, load_world(out), load_truth(out)


@pytest.fixture(scope="module")
def small_csv(tmp_path_factory: pytest.TempPathFactory) -> SynthResult:
    return synthesize(tmp_path_factory.mktemp("small_csv"), file_format="csv", **SMALL)


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, pd.DataFrame], dict[str, Any]]:
    out = tmp_path_factory.mktemp("big")
    synthesize(out, n_customers=2000, seed=11)
    return out, load_world(out), load_truth(out)


# -- determinism --------------------------------------------------------------------
def test_same_seed_gives_byte_identical_files(small: Any, tmp_path: Path) -> None:
    result, _, _ = small
    again = synthesize(tmp_path / "again", **SMALL)
    first, second = _hashes(result.out_dir), _hashes(again.out_dir)
    assert len(first) == 11  # 5 tables with 3 event parts, assignments, truth.json, 2 truth tables
    assert first == second


def test_different_seed_gives_different_world(small: Any, tmp_path: Path) -> None:
    result, _, _ = small
    other = synthesize(tmp_path / "other", **{**SMALL, "seed": 8})
    first, second = _hashes(result.out_dir), _hashes(other.out_dir)
    for name in ("customers.parquet", "users.parquet", "tickets.parquet", "messages.parquet", "events/part-00000.parquet"):
        assert first[name] != second[name], name


def test_csv_is_deterministic_too(small_csv: SynthResult, tmp_path: Path) -> None:
    again = synthesize(tmp_path / "again", file_format="csv", **SMALL)
    assert _hashes(small_csv.out_dir) == _hashes(again.out_dir)


# -- the result object and truth.json ----------------------------------------------------
def test_result_lists_the_files_and_counts(small: Any) -> None:
    result, frames, truth = small
    assert set(result.files) == set(TABLES)
    assert [p.name for p in result.files["events"]] == ["part-00000.parquet", "part-00001.parquet", "part-00002.parquet"]
    for name in TABLES:
        assert all(p.exists() for p in result.files[name])
        assert result.counts[name] == len(frames[name]) == truth["row_counts"][name]
    assert result.truth_path == result.out_dir / "truth.json"
    assert result.as_of == pd.Timestamp("2026-01-06", tz="UTC")
    assert set(result.truth_files) == {"archetypes", "ticket_labels"}
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.as_of = pd.Timestamp("2020-01-01")  # type: ignore[misc]


def test_truth_records_the_run(small: Any) -> None:
    _, _, truth = small
    assert truth["seed"] == 7
    assert truth["n_customers"] == 200
    assert truth["start"] == "2025-01-06"
    assert truth["as_of"] == "2026-01-06T00:00:00Z"
    assert truth["generator_version"] == parameters.GENERATOR_VERSION
    assert set(truth["planted"]) == {
        "setup_churn",
        "integrations_conversion",
        "churn_login_decline",
        "friction_point",
        "archetypes",
        "experiment",
        "drift",
    }
    for entry in truth["planted"].values():
        assert {"description", "parameters", "realised"} <= set(entry)
    assert truth["planted"]["setup_churn"]["parameters"]["risk_ratio"] == 4.0
    assert truth["planted"]["integrations_conversion"]["parameters"]["risk_ratio"] == 3.0
    assert truth["planted"]["friction_point"]["parameters"]["segment"] == "Mid-market"
    assert truth["planted"]["experiment"]["parameters"]["uplift_absolute"]["email_variant_b"] == 0.12


# -- schema conformance --------------------------------------------------------------------
@pytest.mark.parametrize("name", TABLES)
def test_columns_match_the_canonical_schema(small: Any, name: str) -> None:
    result, frames, _ = small
    schema = ENTITY_TABLES[name]
    assert list(frames[name].columns) == schema.names
    for path in result.files[name]:
        arrow = pq.read_schema(path)
        assert arrow.names == schema.names
        for col in schema.columns:
            if col.type == "timestamp":
                assert arrow.field(col.name).type == pa.timestamp("us", tz="UTC")
            elif col.type == "number":
                assert arrow.field(col.name).type == pa.float64()
            else:
                assert arrow.field(col.name).type == pa.string()


@pytest.mark.parametrize("name", TABLES)
def test_ids_keys_timestamps_and_properties(small: Any, name: str) -> None:
    _, frames, _ = small
    frame = frames[name]
    schema = ENTITY_TABLES[name]
    assert len(frame) > 0
    for col in schema.columns:
        if col.type == "timestamp":
            assert str(frame[col.name].dtype) == "datetime64[ns, UTC]"
        if col.type == "id":
            values = frame[col.name]
            assert values.notna().all(), col.name
            assert (values.str.strip() != "").all(), col.name
        if col.required:
            assert frame[col.name].notna().all(), col.name
    (key,) = schema.key
    assert frame[key].is_unique
    parsed = frame["properties"].map(json.loads)
    assert parsed.map(lambda v: isinstance(v, dict)).all()


def test_rows_are_in_the_canonical_order(small: Any) -> None:
    _, frames, _ = small
    for name in TABLES:
        order = list(ENTITY_TABLES[name].order)
        frame = frames[name]
        assert frame.equals(frame.sort_values(order, kind="stable").reset_index(drop=True)), name


def test_enum_and_vocabulary_values(small: Any) -> None:
    _, f, _ = small
    assert set(f["messages"]["status"]) <= set(MESSAGE_STATUSES)
    assert set(f["messages"]["status"]) >= {"delivered", "opened", "clicked"}
    events = f["events"]
    assert set(events["event"]) == set(parameters.EVENT_NAMES)
    assert set(events["source"]) == {"product", "crm", "support", "email"}
    assert (events["event"].map(parameters.EVENT_SOURCE) == events["source"]).all()
    c = f["customers"]
    assert set(c["segment"]) == {"SMB", "Mid-market", "Enterprise"}
    assert set(c["plan"]) <= {"trial", "starter", "pro", "business"}
    assert (c["domain"] == c["domain"].str.lower()).all()
    assert c["domain"].is_unique
    channels = c["properties"].map(lambda s: json.loads(s)["acquisition_channel"])
    assert set(channels) <= {"organic", "paid_search", "partner", "outbound"}
    t = f["tickets"]
    assert set(t["status"]) <= {"new", "open", "pending", "solved", "closed"}
    assert set(t["priority"]) <= {"low", "normal", "high", "urgent"}
    assert set(t["channel"]) <= {"email", "web", "chat", "phone"}
    sat = t["satisfaction"].dropna()
    assert len(sat) > 0
    assert sat.between(0, 1).all()
    u = f["users"]
    assert (u["email"] == u["email"].str.lower()).all()
    assert u["email"].is_unique
    assert set(u["role"]) <= {"admin", "member", "viewer"}
    props = events["properties"].map(json.loads)
    by_event = dict(zip(events["event"], props, strict=True))
    assert set(by_event["login"]) == {"device"}
    features = {p["feature"] for e, p in zip(events["event"], props, strict=True) if e == "feature_used"}
    assert features == set(parameters.FEATURES)
    integrations = {p["integration"] for e, p in zip(events["event"], props, strict=True) if e == "integration_connected"}
    assert integrations <= set(parameters.INTEGRATIONS)
    steps = {p["step"] for e, p in zip(events["event"], props, strict=True) if e == "setup_step_completed"}
    assert steps == {1, 2, 3, 4}
    up = [p for e, p in zip(events["event"], props, strict=True) if e == "plan_upgraded"]
    assert all(set(p) == {"old_plan", "new_plan"} for p in up)


def test_references_and_time_bounds(small: Any) -> None:
    result, f, _ = small
    as_of = result.as_of
    c = f["customers"].set_index("customer_id")
    users = f["users"].set_index("user_id")
    assert f["users"]["customer_id"].isin(c.index).all()
    for name, ts in (("events", "timestamp"), ("tickets", "created_at"), ("messages", "timestamp")):
        frame = f[name]
        assert frame["customer_id"].isin(c.index).all(), name
        known = frame["user_id"].dropna()
        assert known.isin(users.index).all(), name
        # a user belongs to the account of the row
        rows = frame.dropna(subset=["user_id"])
        assert (users.loc[rows["user_id"], "customer_id"].to_numpy() == rows["customer_id"].to_numpy()).all(), name
        # nothing after as_of; nothing before the account signed up or before the user existed
        assert (frame[ts] < as_of).all(), name
        assert (frame[ts] >= c.loc[frame["customer_id"], "signup_at"].to_numpy()).all(), name
        assert (rows[ts] >= users.loc[rows["user_id"], "created_at"].to_numpy()).all(), name
    for col in ("signup_at", "converted_at", "churned_at", "users.created_at", "tickets.solved_at"):
        if col == "users.created_at":
            values = f["users"]["created_at"]
        elif col == "tickets.solved_at":
            values = f["tickets"]["solved_at"].dropna()
        else:
            values = c[col].dropna()
        assert (values < as_of).all(), col
    first_event = f["events"].groupby("customer_id")["timestamp"].min()
    assert (first_event == c.loc[first_event.index, "signup_at"]).all()  # trial_started at sign-up


def test_customer_lifecycle_is_consistent(small: Any) -> None:
    _, f, truth = small
    c = f["customers"].set_index("customer_id")
    e = f["events"]
    trial_days = truth["world"]["trial_days"]
    paid = c["converted_at"].notna()
    assert (c.loc[paid, "converted_at"] >= c.loc[paid, "signup_at"] + trial_days * DAY).all()
    assert (c.loc[~paid, "plan"] == "trial").all()
    assert (c.loc[paid, "plan"] != "trial").all()
    churned = c["churned_at"].notna()
    assert not (churned & ~paid).any()
    assert (c.loc[churned, "churned_at"] > c.loc[churned, "converted_at"]).all()
    assert (c.loc[~paid | churned, "mrr"] == 0).all()
    assert (c.loc[paid & ~churned, "mrr"] > 0).all()
    started = e[e["event"] == "subscription_started"].set_index("customer_id")["timestamp"]
    assert started.sort_index().equals(c.loc[paid, "converted_at"].sort_index().rename("timestamp"))
    cancelled = e[e["event"] == "subscription_cancelled"].set_index("customer_id")["timestamp"]
    assert cancelled.sort_index().equals(c.loc[churned, "churned_at"].sort_index().rename("timestamp"))
    assert (e[e["event"] == "trial_started"]["customer_id"].value_counts() == 1).all()
    assert e[e["event"] == "trial_started"]["customer_id"].nunique() == len(c)
    # product events stop at churn
    product = e[e["source"] == "product"]
    end = c["churned_at"].reindex(product["customer_id"]).to_numpy()
    assert not (pd.notna(end) & (product["timestamp"].to_numpy() > end)).any()


def test_support_and_email_events_mirror_their_tables(small: Any) -> None:
    _, f, _ = small
    e, t, m = f["events"], f["tickets"], f["messages"]
    created = e[e["event"] == "ticket_created"]
    assert sorted(created["properties"].map(lambda s: json.loads(s)["ticket_id"])) == sorted(t["ticket_id"])
    solved = e[e["event"] == "ticket_solved"]
    assert len(solved) == t["solved_at"].notna().sum()
    assert (t.loc[t["solved_at"].notna(), "status"].isin(["solved", "closed"])).all()
    assert (t.loc[t["solved_at"].isna(), "status"].isin(["new", "open", "pending"])).all()
    assert t["body"].str.contains("\n").any()
    for status in ("delivered", "opened", "clicked"):
        ev = e[e["event"] == f"email_{status}"]
        ids = ev["properties"].map(lambda s: json.loads(s)["message_id"])
        assert sorted(ids) == sorted(m.loc[m["status"] == status, "message_id"]), status


def test_experiment_arms_and_campaigns(small: Any) -> None:
    _, f, _ = small
    e, m = f["events"], f["messages"]
    assigned = e[e["event"] == "experiment_assigned"]
    props = assigned["properties"].map(json.loads)
    assert (props.map(lambda p: p["experiment"]) == "onboarding_nudge").all()
    arms = pd.Series(props.map(lambda p: p["arm"]).to_numpy(), index=assigned["customer_id"])
    assert set(arms) == set(parameters.ARMS)
    nudged = m[m["campaign"].str.startswith("onboarding_nudge")].drop_duplicates("customer_id")
    expected = {"email_variant_a": "onboarding_nudge_a", "email_variant_b": "onboarding_nudge_b"}
    for cust, campaign in zip(nudged["customer_id"], nudged["campaign"], strict=True):
        assert expected[arms[cust]] == campaign
    assert not m["customer_id"].isin(arms[arms == "control"].index).pipe(lambda s: s & m["campaign"].str.startswith("onboarding_nudge")).any()


def test_censoring_is_honest(big: Any) -> None:
    _, f, truth = big
    as_of = pd.Timestamp(truth["as_of"])
    c = f["customers"]
    recent = c["signup_at"] > as_of - truth["world"]["churn_day_min"] * DAY
    assert c.loc[recent, "churned_at"].isna().all()
    in_trial = c["signup_at"] > as_of - truth["world"]["trial_days"] * DAY
    assert c.loc[in_trial, "converted_at"].isna().all()
    status = c["properties"].map(lambda s: json.loads(s)["status"])
    assert (status[in_trial] == "trial").all()
    assert c["churned_at"].notna().sum() == truth["customers_by_status"]["churned"]


# -- CSV and Parquet ---------------------------------------------------------------------
def test_csv_and_parquet_hold_the_same_world(small: Any, small_csv: SynthResult) -> None:
    result, frames, _ = small
    csv_frames = load_world(small_csv.out_dir)
    for name in TABLES:
        pd.testing.assert_frame_equal(frames[name], csv_frames[name], obj=name)
    assert load_truth(small_csv.out_dir)["row_counts"] == load_truth(result.out_dir)["row_counts"]
    pd.testing.assert_frame_equal(load_archetypes(result.out_dir), load_archetypes(small_csv.out_dir))


def test_csv_files_read_with_plain_pandas(small_csv: SynthResult) -> None:
    tickets = pd.read_csv(small_csv.files["tickets"][0])
    assert list(tickets.columns) == ENTITY_TABLES["tickets"].names
    assert tickets["body"].str.contains("\n").any()
    assert tickets["created_at"].str.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$").all()
    parsed = pd.to_datetime(tickets["created_at"], utc=True)
    assert str(parsed.dtype).endswith("UTC]")
    events = pd.concat(pd.read_csv(p) for p in small_csv.files["events"])
    assert len(events) == small_csv.counts["events"]
    assert events["properties"].map(lambda s: isinstance(json.loads(s), dict)).all()


def test_parquet_files_read_with_plain_pandas(small: Any) -> None:
    result, _, _ = small
    customers = pd.read_parquet(result.files["customers"][0])
    assert str(customers["signup_at"].dtype).endswith("UTC]")
    events = pd.read_parquet(result.out_dir / "events")
    assert len(events) == result.counts["events"]


def test_rerun_in_the_same_folder_removes_stale_parts(tmp_path: Path) -> None:
    synthesize(tmp_path, n_customers=60, seed=1, chunk_customers=20)
    result = synthesize(tmp_path, n_customers=60, seed=1, chunk_customers=60)
    assert sorted(p.name for p in (tmp_path / "events").iterdir()) == ["part-00000.parquet"]
    assert len(load_world(tmp_path, tables=["events"])["events"]) == result.counts["events"]


# -- errors --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"file_format": "xlsx"}, r"file_format.*\['parquet', 'csv'\].*'xlsx'"),
        ({"n_customers": 0}, r"n_customers.*positive integer"),
        ({"seed": -1}, r"seed.*non-negative"),
        ({"months": 0}, r"months.*positive"),
        ({"chunk_customers": 0}, r"chunk_customers.*positive"),
    ],
)
def test_synthesize_rejects_bad_arguments(tmp_path: Path, kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        synthesize(tmp_path, **kwargs)


def test_loaders_fail_clearly_outside_a_world(tmp_path: Path) -> None:
    with pytest.raises(JourneyLibError, match=r"no truth.json in .*synthesize"):
        load_truth(tmp_path)
    with pytest.raises(JourneyLibError, match="not a synthetic world"):
        load_world(tmp_path)


def test_load_world_rejects_unknown_tables(small: Any) -> None:
    result, _, _ = small
    with pytest.raises(ValueError, match=r"unknown table\(s\) \['sessions'\]"):
        load_world(result.out_dir, tables=["sessions"])


def test_file_formats_constant() -> None:
    assert FILE_FORMATS == ("parquet", "csv")


# -- helpers: hand-computed cases ------------------------------------------------------------
def test_add_months_clips_to_month_end() -> None:
    t = np.array([pd.Timestamp("2025-01-31 10:00", tz="UTC").value // 10**9] * 3 + [pd.Timestamp("2024-01-31", tz="UTC").value // 10**9])
    out = simulation._add_months(t, np.array([1, 13, 2, 1]))
    got = [str(pd.Timestamp(x, unit="s")) for x in out]
    # Jan 31 + 1 month = Feb 28 (2025 is not a leap year); + 13 = Feb 28 2026; + 2 = Mar 31; 2024 is a leap year
    assert got == ["2025-02-28 10:00:00", "2026-02-28 10:00:00", "2025-03-31 10:00:00", "2024-02-29 00:00:00"]


def test_fill_templates_fills_each_row_from_its_template() -> None:
    slots = {"x": pa.array(["1", "2", "3"]), "y": pa.array(["p", "q", "r"])}
    out = dtext.fill_templates(["a{x}b", "{y}!"], np.array([1, 0, 1]), slots)
    assert out.to_pylist() == ["p!", "a2b", "r!"]


def test_ticket_texts_are_varied_and_filled(small: Any) -> None:
    _, f, _ = small
    t = f["tickets"]
    assert not t["subject"].str.contains(r"[{}]").any()
    assert not t["body"].str.contains(r"\{[a-z0-9]+\}").any()
    assert t["body"].nunique() > 0.9 * len(t)
    assert t["subject"].nunique() > 30
    assert t["body"].str.contains(r"\nOn \w{3}, \d\d \w{3} \d{4} at \d\d:\d\d, .*wrote:\n> ").any()


# -- planted truths, recomputed from the files ---------------------------------------------------
def _stats(out: Path, f: dict[str, pd.DataFrame], truth: dict[str, Any]) -> dict[str, float]:
    """Every planted effect, estimated naively from the written files."""
    as_of = pd.Timestamp(truth["as_of"])
    params = truth["world"]
    c = f["customers"].set_index("customer_id")
    e = f["events"]
    first = e.groupby(["customer_id", "event"])["timestamp"].min().unstack()
    stats: dict[str, float] = {}

    # 1. setup within 7 days -> churn within the horizon (paying accounts, complete window)
    horizon = params["churn_horizon_days"] * DAY
    pop = c[c["converted_at"].notna() & (c["signup_at"] <= as_of - horizon)]
    setup_days = first["setup_completed"].reindex(pop.index) - pop["signup_at"]
    no_setup = ~(setup_days <= params["setup_window_days"] * DAY)
    churn = (pop["churned_at"] - pop["signup_at"]) <= horizon
    stats["setup_churn_rr"] = churn[no_setup].mean() / churn[~no_setup].mean()

    # 2. >= 2 integrations in the trial -> conversion
    ints = e[e["event"] == "integration_connected"]
    ints = ints[ints["timestamp"] < ints["customer_id"].map(c["signup_at"]) + params["trial_days"] * DAY]
    n_int = ints.groupby("customer_id")["properties"].nunique()
    pop = c[c["signup_at"] <= as_of - (params["trial_days"] + 2) * DAY]
    many = n_int.reindex(pop.index).fillna(0) >= 2
    conv = pop["converted_at"].notna()
    stats["integrations_rr"] = conv[many].mean() / conv[~many].mean()

    # 3. churners' sessions per week, by week before churn (weeks fully after sign-up)
    ch = c[c["churned_at"].notna()]
    logins = e[(e["event"] == "login") & e["customer_id"].isin(ch.index)]
    churned_at = logins["customer_id"].map(ch["churned_at"])
    week = (churned_at - logins["timestamp"]) // WEEK + 1
    full = churned_at - week * WEEK >= logins["customer_id"].map(ch["signup_at"])
    per_week = pd.Series(week[full]).value_counts()
    means = {w: per_week.get(w, 0) / int((ch["churned_at"] - w * WEEK >= ch["signup_at"]).sum()) for w in range(1, 13)}
    stats["decline_last6_max"] = max(means[w] for w in range(1, 7))
    stats["decline_weeks8_12_min"] = min(means[w] for w in range(8, 13))

    # 4. friction: Mid-market setup stage (first login -> setup_completed) and its tickets
    stage = (first["setup_completed"] - first["login"]).dropna() / DAY
    seg = c.loc[stage.index, "segment"]
    stats["friction_median_ratio"] = stage[seg == "Mid-market"].median() / stage[seg != "Mid-market"].median()
    t = f["tickets"].merge(load_ticket_labels(out), on="ticket_id")
    done = t["customer_id"].map(first["setup_completed"])
    in_stage = (t["created_at"] < t["customer_id"].map(c["signup_at"]) + 30 * DAY) & ~(t["created_at"] >= done)
    t = t[in_stage]
    t_seg = c.loc[t["customer_id"], "segment"].to_numpy()
    seg_counts = c["segment"].value_counts()
    mm = (t_seg == "Mid-market").sum() / seg_counts["Mid-market"]
    other = (t_seg != "Mid-market").sum() / (len(c) - seg_counts["Mid-market"])
    stats["friction_ticket_ratio"] = mm / other
    stats["friction_frustrated_share"] = (t.loc[t_seg == "Mid-market", "tone"] == "frustrated").mean()
    stats["other_frustrated_share"] = (t.loc[t_seg != "Mid-market", "tone"] == "frustrated").mean()

    # 5. archetypes: shares, and that they drive behaviour
    arch = load_archetypes(out).set_index("customer_id")["archetype"]
    shares = arch.value_counts(normalize=True)
    stats["power_share"] = shares["power_user"]
    stats["struggler_share"] = shares["struggler"]
    logins_per_customer = e[e["event"] == "login"].groupby("customer_id").size().reindex(c.index, fill_value=0)
    trial_logins = e[(e["event"] == "login") & (e["timestamp"] < e["customer_id"].map(c["signup_at"]) + 14 * DAY)]
    trial_rate = trial_logins.groupby("customer_id").size().reindex(c.index, fill_value=0).groupby(arch).mean()
    stats["power_vs_struggler_trial_logins"] = trial_rate["power_user"] / trial_rate["struggler"]
    stats["power_vs_struggler_logins"] = logins_per_customer.groupby(arch).mean().pipe(lambda s: s["power_user"] / s["struggler"])

    # 6. experiment: setup within 14 days by arm
    assigned = e[e["event"] == "experiment_assigned"]
    arms = pd.Series(assigned["properties"].map(lambda s: json.loads(s)["arm"]).to_numpy(), index=assigned["customer_id"])
    setup14 = (first["setup_completed"].reindex(arms.index) - c.loc[arms.index, "signup_at"]) <= 14 * DAY
    rate = setup14.groupby(arms).mean()
    stats["uplift_b"] = rate["email_variant_b"] - rate["control"]
    stats["uplift_a"] = rate["email_variant_a"] - rate["control"]

    # 7. drift: device and feature mix of the recent cohort
    boundary = pd.Timestamp(truth["planted"]["drift"]["parameters"]["cohort_boundary"])
    recent = c["signup_at"] >= boundary
    lg = e[e["event"] == "login"]
    mobile = lg["properties"].map(lambda s: json.loads(s)["device"]) == "mobile"
    is_recent = recent.reindex(lg["customer_id"]).to_numpy()
    stats["mobile_shift"] = mobile[is_recent].mean() - mobile[~is_recent].mean()
    fu = e[e["event"] == "feature_used"]
    gantt = fu["properties"].map(lambda s: json.loads(s)["feature"]) == "gantt"
    is_recent = recent.reindex(fu["customer_id"]).to_numpy()
    stats["gantt_shift"] = gantt[is_recent].mean() - gantt[~is_recent].mean()
    return stats


def _planted_ok(s: dict[str, float]) -> dict[str, bool]:
    return {
        "setup_churn": 2.5 <= s["setup_churn_rr"] <= 6.5,
        "integrations": 2.2 <= s["integrations_rr"] <= 4.5,
        "decline": s["decline_last6_max"] < 2.0 < s["decline_weeks8_12_min"],
        "friction": s["friction_median_ratio"] > 1.6
        and s["friction_ticket_ratio"] > 2.0
        and s["friction_frustrated_share"] > 0.5 > s["other_frustrated_share"],
        "archetypes": abs(s["power_share"] - 0.30) < 0.03
        and abs(s["struggler_share"] - 0.45) < 0.03
        and s["power_vs_struggler_trial_logins"] > 1.5
        and s["power_vs_struggler_logins"] > 2.0,
        "experiment": s["uplift_b"] > 0.05 and abs(s["uplift_a"]) < 0.06,
        "drift": s["mobile_shift"] > 0.15 and s["gantt_shift"] < -0.05,
    }


@pytest.fixture(scope="module")
def big_stats(big: Any) -> dict[str, float]:
    out, frames, truth = big
    return _stats(out, frames, truth)


@pytest.mark.parametrize("truth_name", ["setup_churn", "integrations", "decline", "friction", "archetypes", "experiment", "drift"])
def test_planted_truth_is_recoverable_from_the_files(big_stats: dict[str, float], truth_name: str) -> None:
    ok = _planted_ok(big_stats)
    assert ok[truth_name], {k: round(v, 3) for k, v in big_stats.items()}


def test_truth_json_reports_what_the_files_show(big: Any, big_stats: dict[str, float]) -> None:
    _, frames, truth = big
    planted = truth["planted"]
    assert planted["setup_churn"]["realised"]["crude_risk_ratio"] == pytest.approx(big_stats["setup_churn_rr"], abs=1e-3)
    assert planted["integrations_conversion"]["realised"]["crude_risk_ratio"] == pytest.approx(big_stats["integrations_rr"], abs=1e-3)
    arms = planted["experiment"]["realised"]["uplift_vs_control"]
    assert arms["email_variant_b"] == pytest.approx(big_stats["uplift_b"], abs=1e-3)
    assert arms["email_variant_a"] == pytest.approx(big_stats["uplift_a"], abs=1e-3)
    assert planted["archetypes"]["realised"]["shares"]["power_user"] == pytest.approx(big_stats["power_share"], abs=1e-3)
    means = planted["churn_login_decline"]["realised"]["mean_sessions_by_week_before_churn"]
    assert max(means[str(w)] for w in range(1, 7)) == pytest.approx(big_stats["decline_last6_max"], abs=1e-3)
    assert planted["churn_login_decline"]["realised"]["weeks_before_churn_below_threshold"] == 6
    assert truth["row_counts"] == {name: len(frames[name]) for name in TABLES}
    adjusted = planted["setup_churn"]["realised"]["adjusted_risk_ratio_mantel_haenszel"]
    assert 2.5 <= adjusted <= 6.5


def test_checks_fail_when_nothing_is_planted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same checks on a world with the effects switched off: they must not pass."""
    flat = dataclasses.replace(
        parameters.PARAMS,
        churn_no_setup_ratio=1.0,
        conversion_integrations_ratio=1.0,
        experiment_uplift=0.0,
        setup_segment_multiplier=(1.0, 1.0, 1.0),
        friction_ticket_multiplier=1.0,
        friction_ticket_tone=parameters.PARAMS.setup_ticket_tone_by_archetype[1],
        drift_device_shares=parameters.PARAMS.device_shares,
        drift_gantt_multiplier=1.0,
        decline_sessions_per_week=(50.0, 50.0, 50.0),
        archetype_shares=(0.45, 0.25, 0.30),
    )
    monkeypatch.setattr(world, "PARAMS", flat)
    synthesize(tmp_path, n_customers=2000, seed=11)
    ok = _planted_ok(_stats(tmp_path, load_world(tmp_path), load_truth(tmp_path)))
    assert not any(ok.values()), ok
