"""Tests of journeylib.health: hand-computed cases on a tiny store, errors, properties."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pytest
from _builders import memory_store
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from journeylib import health
from journeylib.exceptions import EmptyResultError, ScopeError
from journeylib.store import Store

UTC = "UTC"

# The tiny world. Weeks (ISO, Monday start): W10 = 2024-03-04, W11 = 03-11, W12 = 03-18.
#   c1 SMB/pro         events e1, e2 (W10), e5 (W12)         product
#   c2 SMB/free        event  e3 (W10)                       product
#   c3 Mid-market/pro  events e4 (W10, support), e8 (W12 Sunday, product)
#   c4 Enterprise/enterprise  event e6 (W12)                 email
#   c5 SMB/pro         no events
#   c9 is not a customer: e7 (W12, product) is an orphan event.
# Latest event e8 at 2024-03-24T23:30Z is the default as_of. Nothing happens in W11.
CUSTOMERS = pd.DataFrame(
    {
        "customer_id": ["c1", "c2", "c3", "c4", "c5"],
        "segment": ["SMB", "SMB", "Mid-market", "Enterprise", "SMB"],
        "plan": ["pro", "free", "pro", "enterprise", "pro"],
        "signup_at": ["2024-01-01T00:00:00Z"] * 5,
    }
)
EVENTS = pd.DataFrame(
    {
        "event_id": ["e1", "e2", "e3", "e4", "e5", "e6", "e7", "e8"],
        "customer_id": ["c1", "c1", "c2", "c3", "c1", "c4", "c9", "c3"],
        "timestamp": [
            "2024-03-04T09:00:00Z",
            "2024-03-06T09:00:00Z",
            "2024-03-07T12:00:00Z",
            "2024-03-05T08:00:00Z",
            "2024-03-20T10:00:00Z",
            "2024-03-21T15:00:00Z",
            "2024-03-19T00:00:00Z",
            "2024-03-24T23:30:00Z",
        ],
        "event": ["login", "login", "invite_sent", "ticket_created", "login", "email_opened", "login", "login"],
        "source": ["product", "product", "product", "support", "product", "email", "product", "product"],
    }
)
TIMESTAMP_REASON = "column timestamp: expected an ISO-8601 timestamp such as 2025-03-01T09:30:00Z"
QUARANTINE = pd.DataFrame(
    {
        "run": ["r1"] * 4,
        "source": ["product", "product", "product", "crm"],
        "table_name": ["events", "events", "events", "customers"],
        "file": ["events.csv", "events.csv", "events.csv", "customers.csv"],
        "line": [3, 7, 9, 2],
        "raw": ["...", "...", "...", "..."],
        "reason": [
            TIMESTAMP_REASON + ", found 'yesterday'",
            TIMESTAMP_REASON + ", found 'soon'",
            "column event: required value is empty",
            "column signup_at: required value is empty",
        ],
        "ingested_at": ["2024-03-25T00:00:00Z"] * 4,
    }
)
# events.csv: 11 = 8 + 0 + 3 reconciles; customers.csv: 6 = 5 + 0 + 1 reconciles;
# events2.csv: 5 != 2 + 1 + 1 = 4, one row unaccounted.
INGEST_LOG = pd.DataFrame(
    {
        "run": ["r1", "r1", "r2"],
        "source": ["product", "crm", "product"],
        "table_name": ["events", "customers", "events"],
        "file": ["events.csv", "customers.csv", "events2.csv"],
        "sha256": ["a", "b", "c"],
        "rows_read": [11, 6, 5],
        "rows_loaded": [8, 5, 2],
        "rows_duplicate": [0, 0, 1],
        "rows_quarantined": [3, 1, 1],
        "ingested_at": ["2024-03-25T00:00:00Z", "2024-03-25T00:00:01Z", "2024-03-26T00:00:00Z"],
    }
)


@pytest.fixture
def tiny() -> Store:
    store = memory_store(customers=CUSTOMERS, events=EVENTS, quarantine=QUARANTINE, ingest_log=INGEST_LOG)
    yield store
    store.close()


@pytest.fixture
def empty() -> Store:
    store = Store(":memory:")
    yield store
    store.close()


def _ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz=UTC)


# -- table counts and reconciliation ------------------------------------------------


def test_table_counts_data_hand_computed(tiny: Store) -> None:
    out = health.table_counts_data(tiny).set_index("table_name")
    assert list(out.index) == [
        "customers",
        "users",
        "events",
        "tickets",
        "messages",
        "assignments",
        "identity_map",
        "source_kinds",
        "quarantine",
        "ingest_log",
        "ingest_notes",
    ]
    assert out.loc["customers", "rows"] == 5
    assert out.loc["events", "rows"] == 8
    assert out.loc["quarantine", "rows"] == 4
    assert out.loc["ingest_log", "rows"] == 3
    # events: two files; read 11 + 5 = 16, loaded 8 + 2 = 10, duplicate 0 + 1, quarantined 3 + 1
    assert out.loc["events", ["files", "rows_read", "rows_loaded", "rows_duplicate", "rows_quarantined"]].tolist() == [
        2,
        16,
        10,
        1,
        4,
    ]
    assert not out.loc["events", "reconciles"]  # events2.csv does not
    assert out.loc["customers", "reconciles"]
    assert pd.isna(out.loc["users", "reconciles"])  # no file: unknown, not True
    assert out.loc["users", "files"] == 0


def test_ingest_reconciliation_data_flags_the_file_that_does_not_add_up(tiny: Store) -> None:
    out = health.ingest_reconciliation_data(tiny)
    assert out["file"].tolist() == ["events.csv", "customers.csv", "events2.csv"]  # by ingested_at
    assert out["unaccounted"].tolist() == [0, 0, 1]  # 5 - 2 - 1 - 1 = 1
    assert out["reconciles"].tolist() == [True, True, False]
    assert str(out["ingested_at"].dt.tz) == UTC


def test_store_level_functions_on_an_empty_store(empty: Store) -> None:
    counts = health.table_counts_data(empty)
    assert counts["rows"].sum() == 0
    assert health.ingest_reconciliation_data(empty).empty
    assert health.quarantine_data(empty).empty  # nothing quarantined is good news, not an error
    assert health.quarantine_reasons_data(empty).empty


# -- quarantine ----------------------------------------------------------------------


def test_quarantine_data_groups_masked_reasons(tiny: Store) -> None:
    out = health.quarantine_data(tiny)
    # 4 rows: 2 timestamp rows (values 'yesterday' and 'soon' masked) + 1 + 1
    assert out[["source", "file", "reason", "rows"]].values.tolist() == [
        ["product", "events.csv", TIMESTAMP_REASON, 2],
        ["crm", "customers.csv", "column signup_at: required value is empty", 1],
        ["product", "events.csv", "column event: required value is empty", 1],
    ]
    assert out["share_of_quarantined"].tolist() == pytest.approx([2 / 4, 1 / 4, 1 / 4])
    assert out["first_line"].tolist() == [3, 2, 9]
    assert out.loc[0, "example_reason"].startswith(TIMESTAMP_REASON + ", found '")


def test_quarantine_reasons_data_folds_the_rest(tiny: Store) -> None:
    out = health.quarantine_reasons_data(tiny, top_n=2)
    # ties (1 row each) are ranked by reason text: "column event" < "column signup_at"
    assert out[["rank", "reason", "rows", "files"]].values.tolist() == [
        [1, TIMESTAMP_REASON, 2, 1],
        [2, "column event: required value is empty", 1, 1],
        [3, health.OTHER_REASONS, 1, 1],
    ]
    assert out["share_of_quarantined"].sum() == pytest.approx(1.0)


@pytest.mark.parametrize("top_n", [0, -1, 2.5, True])
def test_quarantine_reasons_data_rejects_bad_top_n(tiny: Store, top_n: object) -> None:
    with pytest.raises(ValueError, match="top_n must be a positive int"):
        health.quarantine_reasons_data(tiny, top_n=top_n)  # type: ignore[arg-type]


# -- customer mix ------------------------------------------------------------------------


def test_customer_mix_data_hand_computed(tiny: Store) -> None:
    out = health.customer_mix_data(tiny)
    # 5 customers: Enterprise/enterprise 1, Mid-market/pro 1, SMB/free 1, SMB/pro 2 (c1, c5)
    assert out[["segment", "plan", "customers", "segment_customers", "customers_total"]].values.tolist() == [
        ["Enterprise", "enterprise", 1, 1, 5],
        ["Mid-market", "pro", 1, 1, 5],
        ["SMB", "free", 1, 3, 5],
        ["SMB", "pro", 2, 3, 5],
    ]
    assert out["share_of_total"].tolist() == pytest.approx([1 / 5, 1 / 5, 1 / 5, 2 / 5])
    assert out["share_of_segment"].tolist() == pytest.approx([1, 1, 1 / 3, 2 / 3])


def test_customer_mix_data_for_one_segment(tiny: Store) -> None:
    out = health.customer_mix_data(tiny, segment="SMB")
    # the denominator is the segment: 3 SMB customers
    assert out["customers_total"].unique().tolist() == [3]
    assert out["share_of_total"].tolist() == pytest.approx([1 / 3, 2 / 3])


def test_customer_mix_data_labels_missing_segment_and_plan() -> None:
    store = memory_store(customers=pd.DataFrame({"customer_id": ["a"], "signup_at": ["2024-01-01T00:00:00Z"]}))
    out = health.customer_mix_data(store)
    assert out[["segment", "plan", "customers"]].values.tolist() == [[health.MISSING_LABEL, health.MISSING_LABEL, 1]]


def test_customer_mix_data_fails_without_customers(empty: Store) -> None:
    with pytest.raises(EmptyResultError, match="the store has no customers"):
        health.customer_mix_data(empty)


# -- weekly volume ------------------------------------------------------------------------


def test_source_volume_data_zero_fills_weeks(tiny: Store) -> None:
    out = health.source_volume_data(tiny)
    assert out["iso_week"].unique().tolist() == ["2024-W10", "2024-W11", "2024-W12"]
    assert out["week_start"].unique().tolist() == [
        pd.Timestamp("2024-03-04"),
        pd.Timestamp("2024-03-11"),
        pd.Timestamp("2024-03-18"),
    ]
    got = {(r.source, r.iso_week): (r.events, r.active_customers) for r in out.itertuples()}
    assert got == {
        ("email", "2024-W10"): (0, 0),
        ("email", "2024-W11"): (0, 0),
        ("email", "2024-W12"): (1, 1),  # e6 (c4)
        ("product", "2024-W10"): (3, 2),  # e1, e2 (c1), e3 (c2)
        ("product", "2024-W11"): (0, 0),  # the gap
        ("product", "2024-W12"): (3, 2),  # e5 (c1), e8 (c3), e7 (orphan c9: an event, not a customer)
        ("support", "2024-W10"): (1, 1),  # e4 (c3)
        ("support", "2024-W11"): (0, 0),
        ("support", "2024-W12"): (0, 0),
    }
    assert out["events"].sum() == len(EVENTS)
    assert out["segment"].unique().tolist() == ["all"]


def test_source_volume_data_flags_the_partial_last_week(tiny: Store) -> None:
    # default as_of = the last event, Sunday 2024-03-24 23:30: W12 is cut 30 minutes short
    out = health.source_volume_data(tiny)
    assert out.groupby("iso_week")["partial_week"].all().to_dict() == {
        "2024-W10": False,
        "2024-W11": False,
        "2024-W12": True,
    }
    # a date means the end of that day: Sunday night closes W12
    assert not health.source_volume_data(tiny, as_of="2024-03-24")["partial_week"].any()


def test_source_volume_data_for_a_segment(tiny: Store) -> None:
    out = health.source_volume_data(tiny, segment="SMB")
    # SMB = c1, c2, c5: e1, e2, e3 in W10, e5 in W12; only the product source
    assert out[["source", "iso_week", "events", "active_customers"]].values.tolist() == [
        ["product", "2024-W10", 3, 2],
        ["product", "2024-W11", 0, 0],
        ["product", "2024-W12", 1, 1],
    ]
    assert out["segment"].unique().tolist() == ["SMB"]


@pytest.mark.parametrize(
    "as_of",
    ["2024-03-06", dt.date(2024, 3, 6), "2024-03-06T23:59:59Z", dt.datetime(2024, 3, 6, 23, 59, tzinfo=dt.UTC)],
)
def test_source_volume_data_as_of_cuts_the_timeline(tiny: Store, as_of: object) -> None:
    # a date means the end of that day: e1 (03-04), e4 (03-05) and e2 (03-06) remain, all in W10
    out = health.source_volume_data(tiny, as_of=as_of)  # type: ignore[arg-type]
    assert out[["source", "iso_week", "events"]].values.tolist() == [
        ["product", "2024-W10", 2],
        ["support", "2024-W10", 1],
    ]


def test_source_volume_data_weeks_run_to_as_of(tiny: Store) -> None:
    # as_of two weeks after the last event: W13 and W14 are zero weeks
    out = health.source_volume_data(tiny, as_of="2024-04-01")
    assert out["iso_week"].unique().tolist()[-2:] == ["2024-W13", "2024-W14"]
    assert out[out["iso_week"] >= "2024-W13"]["events"].sum() == 0


def test_source_volume_data_errors(tiny: Store, empty: Store) -> None:
    with pytest.raises(
        ScopeError,
        match=r"source_volume_data: segment 'Foo' matches no customer; known values: Enterprise, Mid-market, SMB; or use 'all'",
    ):
        health.source_volume_data(tiny, segment="Foo")
    with pytest.raises(
        EmptyResultError, match=r"no events for all customers .* first event in the store is at 2024-03-04T09:00:00"
    ):
        health.source_volume_data(tiny, as_of="2024-01-01")
    with pytest.raises(ValueError, match="cannot read as_of='next week'"):
        health.source_volume_data(tiny, as_of="next week")
    with pytest.raises(TypeError, match="as_of must be"):
        health.source_volume_data(tiny, as_of=20240301)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="sample_n must be 0"):
        health.source_volume_data(tiny, sample_n=-1)
    with pytest.raises(TypeError, match="sample_n must be an int"):
        health.source_volume_data(tiny, sample_n="5")  # type: ignore[arg-type]
    with pytest.raises(EmptyResultError, match="the store has no events"):
        health.source_volume_data(empty)


def test_segment_with_customers_but_no_events() -> None:
    store = memory_store(
        customers=pd.DataFrame(
            {"customer_id": ["a", "b"], "segment": ["SMB", "Partner"], "signup_at": ["2024-01-01T00:00:00Z"] * 2}
        ),
        events=pd.DataFrame(
            {"event_id": ["e"], "customer_id": ["a"], "timestamp": ["2024-03-04T00:00:00Z"], "event": ["login"]}
        ),
    )
    with pytest.raises(EmptyResultError, match=r"no events for segment 'Partner' \(1 customer\)"):
        health.source_volume_data(store, segment="Partner")
    with pytest.raises(EmptyResultError, match="no events for segment 'Partner'"):
        health.event_type_data(store, segment="Partner")
    # coverage still describes the segment: one customer, no events
    cov = health.coverage_data(store, segment="Partner")
    assert cov[["source", "events", "customers_total", "customers_without_events"]].values.tolist() == [
        [health.ALL_SOURCES, 0, 1, 1]
    ]


def test_missing_source_is_labelled_unknown() -> None:
    store = memory_store(
        events=pd.DataFrame(
            {"event_id": ["e"], "customer_id": ["a"], "timestamp": ["2024-03-04T00:00:00Z"], "event": ["x"]}
        )
    )
    assert health.source_volume_data(store)["source"].tolist() == [health.UNKNOWN_SOURCE]


# -- event types ------------------------------------------------------------------------------


def test_event_type_data_hand_computed(tiny: Store) -> None:
    out = health.event_type_data(tiny)
    # login: e1 e2 e5 e7 e8 = 5 events; customers c1, c3 (c9 is an orphan) = 2 of 5 customers
    assert out[["event", "events", "customers", "customers_total"]].values.tolist() == [
        ["login", 5, 2, 5],
        ["email_opened", 1, 1, 5],
        ["invite_sent", 1, 1, 5],
        ["ticket_created", 1, 1, 5],
    ]
    assert out["share_of_customers"].tolist() == pytest.approx([2 / 5, 1 / 5, 1 / 5, 1 / 5])
    assert out.loc[0, "first_timestamp"] == _ts("2024-03-04T09:00:00")
    assert out.loc[0, "last_timestamp"] == _ts("2024-03-24T23:30:00")


def test_event_type_data_for_a_segment_and_as_of(tiny: Store) -> None:
    out = health.event_type_data(tiny, segment="SMB", as_of="2024-03-10")
    # SMB up to 03-10: e1, e2 (login, c1), e3 (invite_sent, c2); 3 SMB customers
    assert out[["event", "events", "customers"]].values.tolist() == [["login", 2, 1], ["invite_sent", 1, 1]]
    assert out["share_of_customers"].tolist() == pytest.approx([1 / 3, 1 / 3])


# -- coverage ---------------------------------------------------------------------------------


def test_coverage_data_hand_computed(tiny: Store) -> None:
    out = health.coverage_data(tiny).set_index("source")
    assert list(out.index) == ["email", "product", "support", health.ALL_SOURCES]
    cols = ["events", "customers_covered", "customers_total", "customers_without_events", "orphan_events"]
    assert out.loc["email", cols].tolist() == [1, 1, 5, 4, 0]
    # product: e1 e2 e3 e5 e7 e8 = 6; covered c1 (3 events), c2 (1), c3 (1); e7 is an orphan
    assert out.loc["product", cols].tolist() == [6, 3, 5, 2, 1]
    assert out.loc["product", "median_events_per_customer"] == 1.0  # median of 3, 1, 1
    assert out.loc["support", cols].tolist() == [1, 1, 5, 4, 0]
    # all sources: 8 events; c1 3, c2 1, c3 2, c4 1 -> 4 covered, c5 without events, median of 1 1 2 3 = 1.5
    assert out.loc[health.ALL_SOURCES, cols].tolist() == [8, 4, 5, 1, 1]
    assert out.loc[health.ALL_SOURCES, "median_events_per_customer"] == 1.5
    assert out.loc[health.ALL_SOURCES, "share_customers_covered"] == pytest.approx(4 / 5)
    assert out.loc["product", "first_timestamp"] == _ts("2024-03-04T09:00:00")
    assert out.loc["product", "last_timestamp"] == _ts("2024-03-24T23:30:00")
    assert out.loc["email", "first_timestamp"] == out.loc["email", "last_timestamp"] == _ts("2024-03-21T15:00:00")


def test_coverage_data_with_a_segment_has_no_orphans(tiny: Store) -> None:
    out = health.coverage_data(tiny, segment="SMB").set_index("source")
    # SMB: c1 (e1 e2 e5), c2 (e3), c5 (none)
    assert out.loc[
        health.ALL_SOURCES, ["events", "customers_covered", "customers_without_events", "orphan_events"]
    ].tolist() == [
        4,
        2,
        1,
        0,
    ]
    assert out.loc[health.ALL_SOURCES, "median_events_per_customer"] == 2.0  # median of 3 and 1


def test_coverage_data_without_customers_has_nan_shares() -> None:
    store = memory_store(events=EVENTS)
    out = health.coverage_data(store)
    assert (out["customers_total"] == 0).all()
    assert out["share_customers_covered"].isna().all()
    assert out["orphan_events"].sum() == 2 * len(EVENTS)  # every event, counted per source and in the total row


# -- sampling ---------------------------------------------------------------------------------


def test_sample_n_is_deterministic_and_sized(tiny: Store) -> None:
    first = health.customer_mix_data(tiny, sample_n=2)
    again = health.customer_mix_data(tiny, sample_n=2)
    pd.testing.assert_frame_equal(first, again)
    assert first["customers"].sum() == 2
    assert first["customers_total"].unique().tolist() == [2]
    assert health.customer_mix_data(tiny, sample_n=50)["customers"].sum() == 5  # more than there are: everyone
    smb = health.customer_mix_data(tiny, segment="SMB", sample_n=2)
    assert smb["segment"].unique().tolist() == ["SMB"]
    assert smb["customers"].sum() == 2


def test_sample_n_limits_events_to_the_sampled_customers(tiny: Store) -> None:
    sampled = health.coverage_data(tiny, sample_n=3)
    overall = sampled[sampled["source"] == health.ALL_SOURCES].iloc[0]
    assert overall["customers_total"] == 3
    assert overall["orphan_events"] == 0
    assert overall["events"] < len(EVENTS)  # the orphan e7 is out, at least


def test_random_state_changes_the_sample() -> None:
    ids = [f"c{i:03d}" for i in range(40)]
    store = memory_store(
        customers=pd.DataFrame({"customer_id": ids, "plan": ids, "signup_at": ["2024-01-01T00:00:00Z"] * 40})
    )
    picks = {tuple(health.customer_mix_data(store, sample_n=5, random_state=seed)["plan"]) for seed in range(3)}
    assert len(picks) > 1


# -- summary ----------------------------------------------------------------------------------


def test_data_health_summary_hand_computed(tiny: Store) -> None:
    out = health.data_health_summary(tiny)
    assert out == {
        "as_of": "2024-03-24T23:30:00+00:00",
        "segment": "all",
        "sample_n": 0,
        "random_state": 0,
        "customers": 5,
        "customers_with_events": 4,
        "customers_without_events": 1,
        "share_customers_with_events": pytest.approx(0.8),
        "events": 8,
        "orphan_events": 1,
        "sources": ["email", "product", "support"],
        "source_kinds": {"email": "email", "product": "product", "support": "support"},  # the canonical labels name their kinds
        "sources_kind_by_default": [],
        "event_types": 4,
        "first_event": "2024-03-04T09:00:00+00:00",
        "last_event": "2024-03-24T23:30:00+00:00",
        "weeks": 3,
        "quarantined_rows": 4,
        "top_quarantine_reason": TIMESTAMP_REASON,
        "ingested_files": 3,
        "files_not_reconciling": 1,
        "table_rows": {
            "customers": 5,
            "users": 0,
            "events": 8,
            "tickets": 0,
            "messages": 0,
            "assignments": 0,
            "identity_map": 0,
            "source_kinds": 0,  # rows inserted directly: no ingest recorded a kind, they are derived when asked
            "quarantine": 4,
            "ingest_log": 3,
            "ingest_notes": 0,
        },
        "ingest_notes": 0,
    }
    json.dumps(out, allow_nan=False)  # JSON-ready as it is


def test_data_health_summary_errors(tiny: Store, empty: Store) -> None:
    with pytest.raises(ScopeError, match="segment 'smb' matches no customer"):
        health.data_health_summary(tiny, segment="smb")  # segments are case-sensitive
    with pytest.raises(EmptyResultError, match="the store has no events"):
        health.data_health_summary(empty)


def test_available_segments(tiny: Store, empty: Store) -> None:
    assert health.available_segments(tiny) == ["Enterprise", "Mid-market", "SMB"]
    assert health.available_segments(empty) == []


def test_inputs_are_not_mutated_and_tables_unchanged(tiny: Store) -> None:
    before = health.table_counts_data(tiny)
    health.data_health_summary(tiny, segment="SMB", sample_n=2)
    pd.testing.assert_frame_equal(before, health.table_counts_data(tiny))


# -- properties ---------------------------------------------------------------------------------

SEGMENTS = st.sampled_from(["SMB", "Mid-market", "Enterprise", None])
PLANS = st.sampled_from(["free", "pro", "enterprise", None])
BASE = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


@settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(st.tuples(SEGMENTS, PLANS), min_size=1, max_size=30), perm=st.randoms(use_true_random=False))
def test_customer_mix_shares_sum_to_one_and_ignore_row_order(rows: list, perm) -> None:
    frame = pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(len(rows))],
            "segment": [s for s, _ in rows],
            "plan": [p for _, p in rows],
            "signup_at": ["2024-01-01T00:00:00Z"] * len(rows),
        }
    )
    shuffled = frame.sample(frac=1, random_state=perm.randint(0, 10_000))
    with memory_store(customers=frame) as a, memory_store(customers=shuffled) as b:
        out = health.customer_mix_data(a)
        pd.testing.assert_frame_equal(out, health.customer_mix_data(b))
        # the same sample, whatever the order the rows were loaded in
        pd.testing.assert_frame_equal(health.customer_mix_data(a, sample_n=3), health.customer_mix_data(b, sample_n=3))
    assert out["customers"].sum() == len(rows)
    assert out["share_of_total"].sum() == pytest.approx(1.0)
    assert out.groupby("segment")["share_of_segment"].sum().tolist() == pytest.approx([1.0] * out["segment"].nunique())


EVENT_ROWS = st.lists(
    st.tuples(
        st.sampled_from(["c1", "c2", "c3", "x9"]),  # x9 is no customer
        st.integers(min_value=0, max_value=60 * 24 * 60),  # minutes after 2024-01-01
        st.sampled_from(["product", "support", "email"]),
        st.sampled_from(["login", "ticket_created"]),
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(rows=EVENT_ROWS)
def test_source_volume_matches_a_naive_oracle_and_ignores_row_order(rows: list) -> None:
    stamps = [BASE + dt.timedelta(minutes=m) for _, m, _, _ in rows]
    events = pd.DataFrame(
        {
            "event_id": [f"e{i}" for i in range(len(rows))],
            "customer_id": [c for c, _, _, _ in rows],
            "timestamp": [t.isoformat() for t in stamps],
            "source": [s for _, _, s, _ in rows],
            "event": [e for _, _, _, e in rows],
        }
    )
    customers = pd.DataFrame({"customer_id": ["c1", "c2", "c3"], "signup_at": ["2024-01-01T00:00:00Z"] * 3})
    with memory_store(customers=customers, events=events) as a, memory_store(customers=customers, events=events.iloc[::-1]) as b:
        out = health.source_volume_data(a)
        pd.testing.assert_frame_equal(out, health.source_volume_data(b))
        types = health.event_type_data(a)
    # oracle: pandas groupby on the Monday of each event's week
    frame = events.assign(ts=pd.to_datetime(events["timestamp"], utc=True))
    frame["week_start"] = (
        frame["ts"].dt.tz_localize(None).dt.normalize() - pd.to_timedelta(frame["ts"].dt.weekday, unit="D")
    ).astype("datetime64[us]")
    expected = frame.groupby(["source", "week_start"]).size()
    got = out[out["events"] > 0].set_index(["source", "week_start"])["events"]
    assert got.to_dict() == expected.to_dict()
    # zero-filled: every source has the same consecutive weeks, first to last
    weeks = out.groupby("source")["week_start"].apply(list)
    n_weeks = (max(expected.index.get_level_values(1)) - min(expected.index.get_level_values(1))).days // 7 + 1
    assert all(len(w) == n_weeks for w in weeks)
    assert all((pd.Series(w).diff().dropna() == pd.Timedelta(days=7)).all() for w in weeks)
    # event types: counts add up; shares are customers over the 3 customers
    assert types["events"].sum() == len(rows)
    assert (types["share_of_customers"] == types["customers"] / 3).all()


def test_a_store_made_before_the_notes_reads_them_as_none(tmp_path) -> None:
    # an older store: no ingest_notes table, no ingest_log.notes_count, no tickets.updated_at
    db = tmp_path / "old.duckdb"
    with Store(db) as s:
        s.execute("DROP TABLE ingest_notes")
        s.execute('ALTER TABLE ingest_log DROP COLUMN "notes_count"')
        s.execute('ALTER TABLE tickets DROP COLUMN "updated_at"')
    with Store(db, read_only=True) as old:
        assert health.notes_data(old).empty
        assert int(health.table_counts_data(old).set_index("table_name").loc["ingest_notes", "rows"]) == 0
        assert health.ingest_reconciliation_data(old).empty
        assert "updated_at" in old.table("tickets").columns
    with Store(db) as upgraded:  # opened for writing, it gains what it lacks
        assert {"ingest_notes", "ingest_log", "tickets"} <= upgraded.tables()
        assert "notes_count" in upgraded.query("SELECT * FROM ingest_log").columns


# -- source kinds ---------------------------------------------------------------------------------


def test_source_kinds_data_hand_computed(tiny: Store) -> None:
    out = health.source_kinds_data(tiny)
    assert list(out.columns) == ["source", "kind", "origin", "recorded", "events", "share_of_events"]
    # 8 events: product 6 (e1 e2 e3 e5 e7 e8), support 1, email 1; nothing recorded (inserted directly)
    assert out.to_dict("list") == {
        "source": ["email", "product", "support"],
        "kind": ["email", "product", "support"],
        "origin": ["name", "name", "name"],
        "recorded": [False, False, False],
        "events": [1, 6, 1],
        "share_of_events": [1 / 8, 6 / 8, 1 / 8],
    }


def test_source_kinds_data_shows_defaults_and_declarations(tmp_path: Path) -> None:
    from journeylib.store.ingest import ingest_files

    f = tmp_path / "events.csv"
    f.write_text(
        "event_id,customer_id,timestamp,event,source\n"
        "e1,c1,2024-03-04T10:00:00Z,login,web\n"
        "e2,c1,2024-03-04T11:00:00Z,login,web\n"
        "e3,c1,2024-03-05T10:00:00Z,email_opened,braze\n"
        "e4,c1,2024-03-05T11:00:00Z,deal_won,crm\n",
        encoding="utf-8",
    )
    with Store(":memory:") as store:
        ingest_files(store, "events", [f], source_kinds={"braze": "email"})
        out = health.source_kinds_data(store).set_index("source")
        assert out["kind"].to_dict() == {"braze": "email", "crm": "crm", "web": "product"}
        assert out["origin"].to_dict() == {"braze": "declared", "crm": "name", "web": "default"}
        assert out["recorded"].all()
        assert out.loc["web", "share_of_events"] == pytest.approx(2 / 4)
        summary = health.data_health_summary(store)
        assert summary["source_kinds"] == {"braze": "email", "crm": "crm", "web": "product"}
        assert summary["sources_kind_by_default"] == ["web"]
