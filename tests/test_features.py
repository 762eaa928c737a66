"""The customer feature table on a hand-computed timeline: windows, sessions, e-mail, tickets, size, no leakage."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from _builders import T0, day, event_rows, journey_definition, memory_store

from journeylib.customers.features import build_features, customer_outcomes_data, feature_slug
from journeylib.exceptions import EmptyResultError, StatisticalWarning
from journeylib.store import Store

AS_OF = T0 + pd.Timedelta(days=100)

DEF = journey_definition(
    {"Trial": "signup", "Setup Done": {"event": "setup_completed", "within_days": 30}}, outcomes=("churn", "expansion")
)


# customer a: the hand-computed timeline; b: nothing at all; c: signed up 3 days before as_of
EVENTS = [
    ("a", -1.0, "login", "product"),  # before signup: never counted
    ("a", 0.50, "login", "product"),
    ("a", 0.52, "login", "product"),  # 28.8 minutes later: same session
    ("a", 0.53, "feature_used", "product"),  # 14.4 minutes later: same session
    ("a", 3.0, "login", "product"),
    ("a", 5.0, "setup_completed", "product"),
    ("a", 5.5, "email_opened", "email"),  # not an activity source: no session, no active day
    ("a", 8.0, "login", "product"),
    ("a", 10.0, "integration_connected", "product"),
    ("a", 20.0, "login", "product"),  # after the 14-day window
    ("a", 40.0, "plan_upgraded", "crm"),
    ("c", 98.0, "login", "product"),
]
CUSTOMERS = [
    {"customer_id": "a", "segment": "SMB", "plan": "pro", "signup_at": day(0), "converted_at": day(15),
     "churned_at": day(150), "properties": '{"acquisition_channel": "partner"}'},
    {"customer_id": "b", "segment": "Enterprise", "plan": "trial", "signup_at": day(0)},
    {"customer_id": "c", "segment": "SMB", "plan": "trial", "signup_at": AS_OF - pd.Timedelta(days=3)},
]
MESSAGES = pd.DataFrame(
    {
        "message_id": ["m1", "m2", "m3", "m4", "m5"],
        "customer_id": ["a"] * 5,
        "timestamp": [day(1), day(1.1), day(10), day(10.2), day(16)],
        "status": ["delivered", "opened", "delivered", "clicked", "unsubscribed"],
    }
)
TICKETS = pd.DataFrame(
    {
        "ticket_id": ["t1", "t2", "t3"],
        "customer_id": ["a"] * 3,
        "created_at": [day(2), day(6), day(15)],
        "solved_at": [day(3), day(20), day(16)],
        "priority": ["high", "normal", "urgent"],
        "satisfaction": [1.0, 0.0, 0.0],
    }
)
USERS = pd.DataFrame(
    {"user_id": ["u1", "u2", "u3"], "customer_id": ["a"] * 3, "created_at": [day(0), day(9), day(30)]}
)


def make_store(events: list[tuple] = EVENTS) -> Store:
    return memory_store(customers=CUSTOMERS, events=event_rows(events, id_width=2), messages=MESSAGES, tickets=TICKETS, users=USERS)


@pytest.fixture
def feats():
    with pytest.warns(StatisticalWarning, match="1 of 3 customers in scope signed up less than 14 days before as_of"):
        return build_features(make_store(), definition=DEF, window_days=14, as_of=AS_OF, property_keys=("acquisition_channel",))


def test_hand_computed_event_features(feats) -> None:
    a = feats.data.set_index("customer_id").loc["a"]
    assert feats.windows == (7, 14)  # 30 > 14 is dropped
    assert (a["n_login_7d"], a["n_login_14d"]) == (3, 4)  # day -1 and day 20 are outside
    assert a["first_login_days"] == pytest.approx(0.5)
    assert (a["n_setup_completed_7d"], a["first_setup_completed_days"]) == (1, 5.0)
    assert (a["n_integration_connected_7d"], a["n_integration_connected_14d"]) == (0, 1)
    assert "n_plan_upgraded_14d" not in feats.data.columns  # only events seen inside windows get columns


def test_days_active_and_sessions(feats) -> None:
    a = feats.data.set_index("customer_id").loc["a"]
    assert a["days_active_14d"] == 5  # product events on days 0, 3, 5, 8, 10; the e-mail adds no day
    # sessions start at 0.50 (0.52 and 0.53 join it), 3, 5, 8, 10 -> 5 sessions in 2 weeks
    assert a["sessions_14d"] == 5
    assert a["sessions_per_week_14d"] == pytest.approx(2.5)
    # first half (days 0-7): 3 sessions; second half: 2; per week of half (1 week): 2 - 3 = -1
    assert a["sessions_trend_14d"] == pytest.approx(-1.0)


def test_email_ticket_and_size_features(feats) -> None:
    a = feats.data.set_index("customer_id").loc["a"]
    assert (a["emails_delivered_14d"], a["emails_opened_14d"], a["emails_clicked_14d"]) == (2, 1, 1)
    assert a["emails_unsubscribed_14d"] == 0  # day 16 is after the window
    assert a["email_open_rate_14d"] == pytest.approx(0.5)
    assert a["email_click_rate_14d"] == pytest.approx(0.5)
    assert (a["tickets_14d"], a["tickets_high_priority_14d"]) == (2, 1)  # t3 is created on day 15
    assert a["ticket_satisfaction_14d"] == pytest.approx(1.0)  # t2 is solved (rated) after the window
    assert a["users_14d"] == 2  # u3 joins on day 30
    assert a["prop_acquisition_channel"] == "partner"


def test_customer_without_activity_has_zeros_and_missing_rates(feats) -> None:
    b = feats.data.set_index("customer_id").loc["b"]
    assert b["n_login_14d"] == 0
    assert b["sessions_14d"] == 0
    assert b["sessions_trend_14d"] == 0
    assert math.isnan(b["first_login_days"])
    assert math.isnan(b["email_open_rate_14d"])
    assert b["users_14d"] == 0
    assert b["prop_acquisition_channel"] is None


def test_incomplete_windows_are_excluded_and_counted(feats) -> None:
    assert sorted(feats.data["customer_id"]) == ["a", "b"]
    assert feats.exclusions.to_dict("records") == [{"reason": "window_incomplete", "customers": 1}]
    assert feats.n_excluded == 1


def test_stage_features(feats) -> None:
    data = feats.data.set_index("customer_id")
    assert data.loc["a", "stage_setup_done_by_14d"]
    assert not data.loc["b", "stage_setup_done_by_14d"]
    assert list(data["stages_reached_14d"]) == [2, 1]
    early = build_features(make_store(), definition=DEF, window_days=3, as_of=AS_OF)  # c's 3 days are complete
    assert not early.data.set_index("customer_id").loc["a", "stage_setup_done_by_3d"]  # setup on day 5


def test_catalog_describes_every_feature(feats) -> None:
    cat = feats.catalog
    assert set(cat["feature"]) <= set(feats.data.columns)
    assert set(cat["kind"]) <= {"count", "first_days", "numeric", "rate", "binary", "category"}
    row = cat.set_index("feature").loc["n_login_7d"]
    assert (row["kind"], row["event"], row["window_days"], bool(row["activity"])) == ("count", "login", 7, True)
    assert not cat.set_index("feature").loc["n_email_opened_14d", "activity"]
    assert feats.columns_of("binary") == ["stage_trial_by_14d", "stage_setup_done_by_14d"]


def test_ticket_scores_are_aggregated_over_window_tickets() -> None:
    scores = pd.DataFrame({"ticket_id": ["t1", "t2", "t3"], "tone": ["frustrated", "satisfied", "frustrated"],
                           "score": [-0.5, 0.5, -1.0]})
    with pytest.warns(StatisticalWarning):
        f = build_features(make_store(), window_days=14, as_of=AS_OF, ticket_scores=scores)
    a = f.data.set_index("customer_id").loc["a"]
    assert (a["tickets_tone_frustrated_14d"], a["tickets_tone_satisfied_14d"]) == (1, 1)  # t3 is outside
    assert a["ticket_score_mean_14d"] == pytest.approx(0.0)
    assert set(f.columns_of(source="voc")) == {"tickets_tone_frustrated_14d", "tickets_tone_satisfied_14d", "ticket_score_mean_14d"}


def test_result_does_not_depend_on_row_order() -> None:
    with pytest.warns(StatisticalWarning):
        one = build_features(make_store(), window_days=14, as_of=AS_OF).data
    with pytest.warns(StatisticalWarning):
        two = build_features(make_store(list(reversed(EVENTS))), window_days=14, as_of=AS_OF).data
    pd.testing.assert_frame_equal(one, two)


def test_build_drops_its_temporary_tables_and_columns_share_no_memory() -> None:
    store = make_store()
    before = set(store.query("SELECT table_name FROM information_schema.tables")["table_name"])
    with pytest.warns(StatisticalWarning):
        feats = build_features(store, window_days=14, windows=(7, 14), as_of=AS_OF)
    after = set(store.query("SELECT table_name FROM information_schema.tables")["table_name"])
    assert after == before  # the per-customer parts and the window/event tables are gone
    data = feats.data
    event_cols = [c for c in data.columns if c.startswith(("n_", "first_"))]
    assert len(event_cols) > 4
    arrays = {c: data[c].to_numpy() for c in event_cols}
    for i, c in enumerate(event_cols):  # each event column is its own memory: writing one changes no other
        assert not any(np.shares_memory(arrays[c], arrays[o]) for o in event_cols[i + 1:]), c
    expected = data.copy()
    data.loc[data.index[0], "n_login_7d"] = 99
    changed = [c for c in data.columns if not data[c].equals(expected[c])]
    assert changed == ["n_login_7d"]


def test_errors() -> None:
    store = make_store()
    with pytest.raises(ValueError, match="window_days must be a positive whole number"):
        build_features(store, window_days=0)
    with pytest.raises(ValueError, match="windows must be positive whole numbers"):
        build_features(store, window_days=7, windows=(7, -1))
    with pytest.raises(ValueError, match="ticket_scores must have a ticket_id column"):
        build_features(store, window_days=7, ticket_scores=pd.DataFrame({"x": [1]}))
    with pytest.raises(EmptyResultError, match="has a complete 14-day window"):
        build_features(store, window_days=14, as_of=day(13))


def test_customer_outcomes_are_censored_at_as_of() -> None:
    out = customer_outcomes_data(make_store(), definition=DEF, as_of=AS_OF, property_keys=("acquisition_channel",))
    a = out.set_index("customer_id").loc["a"]
    assert pd.isna(a["churn_at"])  # churned on day 150, after as_of
    assert a["expansion_at"] == day(40)  # first plan_upgraded event
    assert a["prop_acquisition_channel"] == "partner"
    late = customer_outcomes_data(make_store(), definition=DEF, as_of=day(30))
    assert pd.isna(late.set_index("customer_id").loc["a", "expansion_at"])
    assert "c" not in set(late["customer_id"])  # signed up after that as_of


def test_feature_slug() -> None:
    assert feature_slug("First Value Achieved") == "first_value_achieved"
    assert feature_slug("a.b-c") == "a_b_c"
    assert np.array_equal(np.array([feature_slug("")]), np.array(["x"]))


def oracle_features(customers: pd.DataFrame, events: pd.DataFrame, *, window_days: int, subs: tuple[int, ...]) -> pd.DataFrame:
    """Per customer, event by event in pandas: sub-window counts, first days, active days and sessions.

    Days since signup are ``(epoch_s(t) - epoch_s(signup)) / 86400`` from the epoch microseconds, as
    the engine computes them; a session starts at an activity event more than 30 minutes after the
    previous one.
    """
    us = events["timestamp"].astype("int64") // 1000  # ns -> µs
    signup = customers.set_index("customer_id")["signup_at"]
    s_us = events["customer_id"].map(signup).astype("int64") // 1000
    ev = events.assign(us=us, t=(us / 1e6 - s_us / 1e6) / 86400.0)
    ev = ev[(ev["us"] >= s_us) & (ev["us"] < s_us + window_days * 86_400_000_000)]
    rows = []
    for cid in sorted(customers["customer_id"]):
        e = ev[ev["customer_id"] == cid]
        act = e[e["source"] == "product"].sort_values("us")
        gaps = (act["us"] / 1e6 - act["us"].shift() / 1e6) / 86400.0
        new = gaps.isna() | (gaps > 30 * 60 / 86400.0)
        row: dict[str, float] = {
            "customer_id": cid, f"days_active_{window_days}d": act["t"].apply(math.floor).nunique(),
            f"sessions_{window_days}d": int(new.sum()),
            "s2_minus_s1": int((new & (act["t"] >= window_days / 2)).sum() - (new & (act["t"] < window_days / 2)).sum()),
        }
        for name, g in e.groupby("event"):
            for d in subs:
                row[f"n_{name}_{d}d"] = int((g["t"] < d).sum())
            row[f"first_{name}_days"] = float(g["t"].min())
        rows.append(row)
    return pd.DataFrame(rows)


def test_counts_days_and_sessions_match_a_per_event_oracle() -> None:
    # Seeded timelines at microsecond precision built to hit the edges of the engine's shortcuts:
    # gaps of exactly 30 minutes (same session), 30 minutes and 1 µs (a new one), ties, bursts,
    # events just before and after each day boundary since signup, and the window's last microsecond.
    rng = np.random.default_rng(7)
    minute = 60_000_000
    day_us = 86_400_000_000
    t0 = int(T0.value // 1000)
    customers, events = [], []
    for c in range(40):
        cid = f"c{c:02d}"
        s_us = t0 + int(rng.integers(0, 20 * day_us))
        customers.append({"customer_id": cid, "segment": "SMB", "plan": "trial", "signup_at": pd.Timestamp(s_us * 1000, tz="UTC")})
        t = s_us - int(rng.integers(0, 2 * day_us))  # some events before signup
        for _ in range(int(rng.integers(0, 120))):
            kind = rng.integers(0, 8)
            step = [30 * minute, 30 * minute + 1, 0, int(rng.integers(1, 5 * minute)), int(rng.integers(1, 3 * day_us)),
                    30 * minute - 1, int(rng.integers(1, 40 * minute)), int(rng.integers(1, 90 * minute))][kind]
            t += step
            if rng.random() < 0.1:  # just around a day boundary since signup
                t = s_us + ((t - s_us) // day_us + 1) * day_us + int(rng.integers(-2, 2))
            source = "product" if rng.random() < 0.8 else "email"
            events.append({"customer_id": cid, "us": t, "event": ["login", "report_viewed", "invite_sent"][int(rng.integers(0, 3))],
                           "source": source})
        events.append({"customer_id": cid, "us": s_us + 14 * day_us - 1, "event": "login", "source": "product"})  # last µs
    ev = pd.DataFrame(events)
    ev = ev.assign(event_id=[f"e{i:05d}" for i in range(len(ev))], timestamp=pd.to_datetime(ev["us"] * 1000, utc=True)).drop(columns="us")
    cust = pd.DataFrame(customers)
    store = memory_store(customers=cust, events=ev)
    as_of = T0 + pd.Timedelta(days=60)
    got = build_features(store, window_days=14, windows=(3, 7), as_of=as_of).data.set_index("customer_id")
    want = oracle_features(cust, ev, window_days=14, subs=(3, 7, 14)).set_index("customer_id")
    assert len(got) == len(want) == 40
    assert (want["sessions_14d"] > 1).sum() > 20  # the timelines have sessions to split
    for col in want.columns:
        if col == "s2_minus_s1":
            np.testing.assert_array_equal(got["sessions_trend_14d"] * 1.0, want[col] / 1.0)  # per week of half (7 days) = per half
        elif col.startswith("first_"):
            np.testing.assert_array_equal(got[col].to_numpy(), want[col].to_numpy(dtype="float64"), err_msg=col)
        else:
            np.testing.assert_array_equal(got[col].to_numpy(), want[col].fillna(0).to_numpy(dtype="int64"), err_msg=col)
