"""As-of snapshots: hand-computed features and labels, censoring, and the leakage guard."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _builders import ROOT, day, event_rows, journey_definition, memory_store

from journeylib.config import JourneyDefinition
from journeylib.customers.snapshots import asof_days, build_snapshots, day_end, day_number
from journeylib.exceptions import StatisticalWarning
from journeylib.store import Store
from journeylib.store.dialect import sql_timestamp
from journeylib.voice.sentiment import score_tickets

DEFINITION = journey_definition(
    {"Trial": "signup", "Active": {"event": "login", "min_count": 5}}, outcomes=("churn", "conversion")
)


def _world() -> Store:
    """a: converted day 1, churns day 50, logins days 0..9 and 30, 31; b: converted, logins daily to day 99; c: trial only."""
    ev = [("a", d + 0.5, "login") for d in range(10)] + [("a", 30.5, "login"), ("a", 31.5, "login")]
    ev += [("b", d + 0.5, "login") for d in range(100)] + [("c", 0.5, "login"), ("b", 119.5, "renewal", "crm")]
    return memory_store(
        customers=[
            {"customer_id": "a", "segment": "SMB", "plan": "pro", "signup_at": day(0), "converted_at": day(1), "churned_at": day(50)},
            {"customer_id": "b", "segment": "SMB", "plan": "pro", "signup_at": day(0), "converted_at": day(1)},
            {"customer_id": "c", "segment": "SMB", "plan": "trial", "signup_at": day(0)},
        ],
        events=event_rows(ev),
        tickets=[{"ticket_id": "t1", "customer_id": "a", "created_at": day(31.2), "solved_at": day(33.2), "priority": "high",
                  "satisfaction": 0.0, "subject": "broken", "body": "it is broken"}],
        messages=[
            {"message_id": "m1", "customer_id": "a", "timestamp": day(29.1), "status": "delivered"},
            {"message_id": "m2", "customer_id": "a", "timestamp": day(30.1), "status": "opened"},
        ],
        users=[{"user_id": "u1", "customer_id": "a", "created_at": day(0)}, {"user_id": "u2", "customer_id": "a", "created_at": day(40)}],
    )


def _build(store: Store, days: list[float], **kw: object) -> object:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StatisticalWarning)
        return build_snapshots(store, definition=DEFINITION, as_of_dates=[day(d) for d in days], as_of=day(120.99),
                               horizon_days=30, **kw)


def test_hand_computed_features_and_labels() -> None:
    store = _world()
    snap = _build(store, [34, 55, 70, 95])
    d = snap.data.set_index(["customer_id", "as_of_day"])
    d34 = day_number(day(34))
    a = d.loc[("a", d34)]
    # days 28..34: logins on days 30 and 31
    assert (a["activity_7d"], a["active_days_7d"], a["activity_30d"]) == (2, 2, 2 + 5)  # days 5..34: logins 5..9, 30, 31
    assert a["days_since_product"] == 3  # 34 - 31
    assert (a["tickets_7d"], a["tickets_high_priority_30d"], a["open_tickets"]) == (1, 1, 0)  # solved on day 33
    assert a["satisfaction_90d"] == 0.0
    assert (a["emails_delivered_30d"], a["emails_opened_30d"], a["days_since_email_open"]) == (1, 1, 4)
    assert a["users"] == 1  # u2 is created on day 40
    assert a["stage"] == "Active"
    assert a["stages_reached"] == 2
    assert a["days_in_stage"] == pytest.approx(35 - 4.5)  # 5th login at day 4.5; as-of ends at day 35
    assert np.isnan(a["activity_ratio_30d"])  # baseline days 0..4: shorter than 14 days
    # churn on day 50 = 15 days after the end of day 34, within 30
    assert a["churned"] == 1.0
    assert a["days_to_churn"] == pytest.approx(15)
    b70 = d.loc[("b", day_number(day(70)))]
    # baseline days 0..40: 41 logins in 41 days; last 30 days: 30 logins → ratio 1
    assert b70["baseline_days"] == 41
    assert b70["activity_ratio_30d"] == pytest.approx(1.0)
    assert b70["churned"] == 0.0
    assert "days_since_crm" not in snap.data.columns  # CRM records are excluded by default
    # a has churned by days 55, 70 and 95: no snapshots; c never converted (4 pairs); b on day 95: 96 + 30 > 120.99
    assert ("a", day_number(day(55))) not in d.index
    assert snap.n_excluded("already_churned") == 3
    assert snap.n_excluded("not_converted") == 4
    b95 = d.loc[("b", day_number(day(95)))]
    assert bool(b95["censored"])
    assert np.isnan(b95["churned"])
    assert snap.n_excluded("censored") == 1
    assert len(snap.labelled) == len(snap.data) - 1
    store.close()


def test_censoring_warns_and_errors_are_explicit() -> None:
    store = _world()
    with pytest.warns(StatisticalWarning, match="censored"):
        build_snapshots(store, definition=DEFINITION, as_of_dates=[day(95)], as_of=day(120.99), horizon_days=30)
    with pytest.raises(ValueError, match="horizon_days must be a positive whole number"):
        build_snapshots(store, definition=DEFINITION, horizon_days=0)
    with pytest.raises(ValueError, match=r"on or before the day of the data.s end"):
        build_snapshots(store, definition=DEFINITION, as_of_dates=[day(200)], as_of=day(120.99))
    last = JourneyDefinition.from_dict({**DEFINITION.model_dump(exclude_none=True), "conventions": {"occurrence": "last"}})
    with pytest.raises(ValueError, match="occurrence"):
        build_snapshots(store, definition=last)
    store.close()


def test_asof_grid_is_anchored_on_the_last_day() -> None:
    assert asof_days("2025-01-01", "2025-01-15", every_days=7) == [20089, 20096, 20103]
    assert day_end(day_number("2025-01-02T05:00:00Z")) == pd.Timestamp("2025-01-03T00:00:00Z")
    with pytest.raises(ValueError, match="every_days"):
        asof_days("2025-01-01", "2025-01-15", every_days=0)


def test_one_query_per_family_not_per_date(demo_store: Path) -> None:
    """Many as-of days cost the same number of engine statements as one."""
    definition = JourneyDefinition.load(ROOT / "parameters" / "journeys" / "saas.yaml")
    calls: list[str] = []
    with Store(demo_store, read_only=True) as store:
        original = store.query

        def counting(sql: str, *args: object, **kw: object) -> pd.DataFrame:
            calls.append(sql)
            return original(sql, *args, **kw)

        store.query = counting  # type: ignore[method-assign]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", StatisticalWarning)
            build_snapshots(store, definition=definition, every_days=28)
            n_few = len(calls)
            calls.clear()
            snap = build_snapshots(store, definition=definition, every_days=7)
    assert len(calls) == n_few
    assert snap.data["as_of_day"].nunique() > 20


def _perturb_after(db: Path, cut: pd.Timestamp) -> None:
    """Delete every event, ticket, message and user after *cut* and add unrelated rows after it."""
    rng = np.random.default_rng(3)
    with Store(db) as store:
        ts = sql_timestamp(cut)
        store.execute(f"DELETE FROM events WHERE timestamp >= {ts}")
        store.execute(f"DELETE FROM tickets WHERE created_at >= {ts}")
        store.execute(f"DELETE FROM messages WHERE timestamp >= {ts}")
        store.execute(f"DELETE FROM users WHERE created_at >= {ts}")
        ids = store.query("SELECT customer_id FROM customers ORDER BY customer_id")["customer_id"].tolist()
        later = [cut + pd.Timedelta(hours=float(h)) for h in rng.uniform(0, 24 * 60, len(ids))]
        store.insert("events", pd.DataFrame({
            "event_id": [f"x{i}" for i in range(len(ids))], "customer_id": ids, "timestamp": later,
            "event": "login", "source": "product",
        }))
        store.insert("tickets", pd.DataFrame({
            "ticket_id": [f"xt{i}" for i in range(len(ids))], "customer_id": ids, "created_at": later,
            "subject": "terrible", "body": "awful, cancel now", "priority": "urgent",
        }))
        store.insert("messages", pd.DataFrame({
            "message_id": [f"xm{i}" for i in range(len(ids))], "customer_id": ids, "timestamp": later, "status": "opened",
        }))
        store.insert("users", pd.DataFrame({"user_id": [f"xu{i}" for i in range(len(ids))], "customer_id": ids, "created_at": later}))


def test_leakage_guard_nothing_after_the_as_of_day_changes_a_feature(demo_store: Path, tmp_path: Path) -> None:
    definition = JourneyDefinition.load(ROOT / "parameters" / "journeys" / "saas.yaml")
    with Store(demo_store, read_only=True) as store:
        end = pd.Timestamp(store.query("SELECT max(timestamp) AS t FROM events")["t"].iloc[0])
        first = pd.Timestamp(store.query("SELECT min(signup_at) AS t FROM customers")["t"].iloc[0])
    cut_day = day_number(first + (end - first) * 0.6)
    copy = tmp_path / "perturbed.duckdb"
    shutil.copy(demo_store, copy)
    _perturb_after(copy, day_end(cut_day))

    def features(db: Path) -> pd.DataFrame:
        with Store(db, read_only=True) as store, warnings.catch_warnings():
            warnings.simplefilter("ignore", StatisticalWarning)
            scores = score_tickets(store.table("tickets"))
            snap = build_snapshots(store, definition=definition, as_of_dates=[day_end(cut_day) - pd.Timedelta(hours=1)],
                                   as_of=end, ticket_scores=scores)
        return snap.data[["customer_id", "as_of_day", *snap.feature_columns]].reset_index(drop=True)

    before, after = features(demo_store), features(copy)
    assert len(before) > 20
    pd.testing.assert_frame_equal(before, after)


def test_leakage_guard_daily_test_grid_reads_nothing_after_each_as_of_day(demo_store: Path, tmp_path: Path) -> None:
    """With a daily test grid, every snapshot up to a cut day (daily ones included) is unchanged by the data after it."""
    definition = JourneyDefinition.load(ROOT / "parameters" / "journeys" / "saas.yaml")
    with Store(demo_store, read_only=True) as store:
        end = pd.Timestamp(store.query("SELECT max(timestamp) AS t FROM events")["t"].iloc[0])

    def build(db: Path) -> object:
        with Store(db, read_only=True) as store, warnings.catch_warnings():
            warnings.simplefilter("ignore", StatisticalWarning)
            scores = score_tickets(store.table("tickets"))
            return build_snapshots(store, definition=definition, as_of=end, horizon_days=60, test_every_days=1,
                                   ticket_scores=scores)

    before = build(demo_store)
    data = before.data  # type: ignore[attr-defined]
    daily_days = sorted(set(data.loc[~before.on_grid(data["as_of_day"]), "as_of_day"]))  # type: ignore[attr-defined]
    cut_day = int(daily_days[len(daily_days) // 2])  # a day of the daily grid only, inside the test period
    assert cut_day not in before.grid_days  # type: ignore[attr-defined]
    copy = tmp_path / "perturbed.duckdb"
    shutil.copy(demo_store, copy)
    _perturb_after(copy, day_end(cut_day))
    after = build(copy)

    def known(snap: object) -> pd.DataFrame:
        d = snap.data  # type: ignore[attr-defined]
        return d.loc[d["as_of_day"] <= cut_day, ["customer_id", "as_of_day", *snap.feature_columns]].reset_index(drop=True)  # type: ignore[attr-defined]

    b, a = known(before), known(after)
    assert after.test_from_day == before.test_from_day  # type: ignore[attr-defined]
    daily_rows = b[~before.on_grid(b["as_of_day"])]  # type: ignore[attr-defined]
    assert daily_rows["as_of_day"].nunique() >= 5
    assert len(daily_rows) > 50
    pd.testing.assert_frame_equal(b, a)
