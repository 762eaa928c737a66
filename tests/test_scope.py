"""Scope: as_of conventions, filters and samples shared by the analyses."""

from __future__ import annotations

import pandas as pd
import pytest

from journeylib.exceptions import EmptyResultError, ScopeError
from journeylib.scope import ALL, NO_CUTOFF, Scope, is_all, to_utc
from journeylib.store import Store


def test_to_utc_conventions() -> None:
    assert to_utc("") is None
    assert to_utc("2025-06-30").isoformat() == "2025-06-30T00:00:00+00:00"
    assert to_utc("2025-06-30", end_of_day=True).isoformat() == "2025-06-30T23:59:59.999999+00:00"
    assert to_utc("2025-06-30T12:00:00+02:00").isoformat() == "2025-06-30T10:00:00+00:00"
    with pytest.raises(ValueError, match="expected a date such as 2025-06-30"):
        to_utc("yesterday")


@pytest.fixture
def store() -> Store:
    s = Store(":memory:")
    s.insert(
        "customers",
        pd.DataFrame(
            {
                "customer_id": [f"c{i}" for i in range(10)],
                "segment": ["SMB"] * 6 + ["Ent"] * 4,
                "signup_at": pd.to_datetime(["2025-01-01T00:00:00Z"] * 9 + ["2025-03-01T00:00:00Z"], utc=True),
                "churned_at": pd.to_datetime([None] * 8 + ["2025-02-01T00:00:00Z", None], utc=True),
            }
        ),
    )
    s.insert(
        "events",
        pd.DataFrame(
            {
                "event_id": ["e1", "e2"],
                "customer_id": ["c0", "c9"],
                "timestamp": pd.to_datetime(["2025-01-05T00:00:00Z", "2025-03-02T00:00:00Z"], utc=True),
                "event": ["login", "login"],
            }
        ),
    )
    yield s
    s.close()


def test_default_as_of_is_latest_event(store: Store) -> None:
    assert Scope.build(store).as_of.isoformat() == "2025-03-02T00:00:00+00:00"


def test_customers_after_as_of_and_outcomes_after_as_of_are_hidden(store: Store) -> None:
    sc = Scope.build(store, as_of="2025-01-31")
    cust = store.query(sc.customers_sql())
    assert len(cust) == 9  # c9 signed up in March
    assert cust["churned_at"].isna().all()  # c8 churns on Feb 1, after as_of
    sc2 = Scope.build(store, as_of="2025-02-01")
    assert store.query(sc2.customers_sql())["churned_at"].notna().sum() == 1
    assert len(store.query(sc.events_sql())) == 1


def test_segment_and_sample(store: Store) -> None:
    sc = Scope.build(store, segment="Ent")
    assert sorted(store.query(sc.customers_sql())["customer_id"]) == ["c6", "c7", "c8", "c9"]
    a = store.query(Scope.build(store, sample_n=3).customers_sql())["customer_id"].tolist()
    b = store.query(Scope.build(store, sample_n=3).customers_sql())["customer_id"].tolist()
    assert a == b
    assert len(a) == 3
    with pytest.raises(ValueError, match="segment 'Mid' matches no customer; known values: Ent, SMB"):
        Scope.build(store, segment="Mid")


def test_empty_store_has_no_default_as_of() -> None:
    with Store(":memory:") as s, pytest.raises(EmptyResultError, match="no events"):
        Scope.build(s)


def test_one_date_parser_for_every_input_type() -> None:
    import datetime as dt

    # a bare date means the whole day, whether text or a date object; a datetime is taken as it is
    assert to_utc(dt.date(2025, 6, 30), end_of_day=True) == to_utc("2025-06-30", end_of_day=True)
    assert to_utc(dt.datetime(2025, 6, 30, 12), end_of_day=True).isoformat() == "2025-06-30T12:00:00+00:00"
    assert to_utc(pd.Timestamp("2025-06-30T12:00:00+02:00")).isoformat() == "2025-06-30T10:00:00+00:00"
    with pytest.raises(TypeError, match="f: as_of must be an ISO date or timestamp string"):
        to_utc(20250630, function="f")
    with pytest.raises(ValueError, match="f: cannot read signup_from='soon' as a date"):
        to_utc("soon", function="f", name="signup_from")


def test_all_has_one_meaning(store: Store) -> None:
    assert all(is_all(v) for v in (None, "", " ", "all", ALL))
    assert not is_all("SMB")
    scopes = [Scope.build(store, segment=v, plan=v) for v in (None, "", "all")]
    assert all(s.segment is None and s.plan is None and not s.filtered for s in scopes)
    assert scopes[0].segment_label == ALL


def test_unknown_segment_or_plan_is_a_scope_error(store: Store) -> None:
    with pytest.raises(ScopeError, match="plan 'gold' matches no customer; known values: \\(none\\)"):
        Scope.build(store, plan="gold")
    with pytest.raises(TypeError, match="segment must be a string"):
        Scope.build(store, segment=3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="sample_n must be an int"):
        Scope.build(store, sample_n="5")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="sample_n must be 0"):
        Scope.build(store, sample_n=-1)


def test_resolve_takes_a_scope_or_filters_not_both(store: Store) -> None:
    scope = Scope.build(store, segment="Ent")
    assert Scope.resolve(store, scope, segment="all", sample_n=0, as_of="") is scope
    assert Scope.resolve(store, None, segment="Ent") == scope
    with pytest.raises(TypeError, match="f: pass either scope or the filters as_of, sample_n, not both"):
        Scope.resolve(store, scope, function="f", as_of="2025-01-31", sample_n=2)
    with pytest.raises(TypeError, match=r"scope must be a journeylib\.Scope"):
        Scope.resolve(store, "Ent")  # type: ignore[arg-type]


def test_customer_only_scope_sees_every_customer(store: Store) -> None:
    # without a timeline there is no censoring date: the March signup counts, no events are read
    sc = Scope.build(store, as_of="2025-01-31", timeline=False)
    assert sc.as_of is NO_CUTOFF
    assert len(store.query(sc.customers_sql())) == 10
    assert sc.describe() == "whole store"
    with Store(":memory:") as empty:
        empty.insert("customers", pd.DataFrame({"customer_id": ["a"], "signup_at": ["2025-01-01T00:00:00Z"]}))
        assert Scope.build(empty, timeline=False).as_of is NO_CUTOFF  # no events needed


def test_one_seeded_sample_for_every_analysis(store: Store) -> None:
    # the data-health counts (every customer) and the journey analyses (signed up by as_of) draw the
    # same seeded order: among the customers both can see, the sample is the same
    sc = Scope.build(store, sample_n=4, random_state=3)
    journey_sample = set(store.query(sc.customers_sql())["customer_id"])
    health_sample = set(store.query(sc.customers_sql(signed_up_by_as_of=False, blank_later_outcomes=False))["customer_id"])
    assert journey_sample == health_sample  # as_of is the latest event: every customer has signed up
    other_seed = set(store.query(sc.replace(random_state=4).customers_sql())["customer_id"])
    assert len(other_seed) == 4
    shuffled = Store(":memory:")
    shuffled.insert("customers", store.table("customers").sample(frac=1, random_state=1))
    shuffled.insert("events", store.table("events"))
    assert set(shuffled.query(Scope.build(shuffled, sample_n=4, random_state=3).customers_sql())["customer_id"]) == journey_sample
    shuffled.close()


# -- segment_field and the event window ---------------------------------------------------------
@pytest.fixture
def plan_store() -> Store:
    """Four customers whose plan cuts across their segment; c0 and c1 have events on days 1, 5 and 9."""
    s = Store(":memory:")
    s.insert(
        "customers",
        pd.DataFrame(
            {
                "customer_id": ["c0", "c1", "c2", "c3"],
                "segment": ["SMB", "SMB", "Ent", "Ent"],
                "plan": ["pro", "basic", "pro", "basic"],
                "signup_at": pd.to_datetime(["2025-01-01T00:00:00Z"] * 4, utc=True),
            }
        ),
    )
    days = [1, 5, 9]
    s.insert(
        "events",
        pd.DataFrame(
            {
                "event_id": [f"e{c}{d}" for c in (0, 1) for d in days],
                "customer_id": [f"c{c}" for c in (0, 1) for _ in days],
                "timestamp": [pd.Timestamp("2025-01-01T00:00:00Z") + pd.Timedelta(days=d) for _ in (0, 1) for d in days],
                "event": ["login"] * 6,
            }
        ),
    )
    yield s
    s.close()


def test_segment_field_plan_filters_and_relabels_segment(plan_store: Store) -> None:
    sc = Scope.build(plan_store, segment="pro", segment_field="plan")
    cust = plan_store.query(sc.customers_sql()).sort_values("customer_id")
    assert cust["customer_id"].tolist() == ["c0", "c2"]  # plan pro, across segments SMB and Ent
    assert cust["segment"].tolist() == ["pro", "pro"]  # the segment column holds the segment_field's values
    every = plan_store.query(Scope.build(plan_store, segment_field="plan").customers_sql()).sort_values("customer_id")
    assert every["segment"].tolist() == ["pro", "basic", "pro", "basic"]
    assert "segment (plan) pro" in sc.describe()


def test_segment_field_errors_name_the_column_and_its_values(plan_store: Store) -> None:
    with pytest.raises(ScopeError, match=r"segment 'SMB' matches no customer; known values of customers.plan \(the segment_field\): basic, pro"):
        Scope.build(plan_store, segment="SMB", segment_field="plan")
    with pytest.raises(ValueError, match="segment_field must be one of segment, plan"):
        Scope.build(plan_store, segment_field="region")
    sc = Scope.build(plan_store, segment="SMB")
    with pytest.raises(ScopeError, match=r"segment 'SMB' matches no customer; known values of customers.plan"):
        sc.with_segment_field(plan_store, "plan")
    # resolve moves a ready scope without a segment to the definition's segment_field
    moved = Scope.resolve(plan_store, Scope.build(plan_store), segment_field="plan")
    assert moved.segment_field == "plan"


def test_event_window_limits_events_sql_not_customers(plan_store: Store) -> None:
    sc = Scope.build(plan_store, events_from="2025-01-04", events_to="2025-01-08")
    ev = plan_store.query(sc.events_sql())
    # days 1, 5, 9 after 2025-01-01: only day 5 (2025-01-06) is in [01-04, 01-08)
    assert sorted(ev["timestamp"].dt.day.unique().tolist()) == [6]
    assert len(ev) == 2
    assert len(plan_store.query(sc.customers_sql())) == 4  # customers are not filtered by the window
    assert sc.event_window
    assert "events 2025-01-04 00:00–2025-01-08 00:00" in sc.describe()
    # events_to is exclusive: a bare date is the start of that day
    edge = Scope.build(plan_store, events_from="2025-01-06", events_to="2025-01-06T00:00:01Z")
    assert len(plan_store.query(edge.events_sql())) == 2
    assert not Scope.build(plan_store).event_window
    with pytest.raises(ValueError, match=r"the event window \[events_from, events_to\) is empty"):
        Scope.build(plan_store, events_from="2025-01-08", events_to="2025-01-04")
    with pytest.raises(TypeError, match="pass either scope or the filters events_from, not both"):
        Scope.resolve(plan_store, sc, events_from="2025-01-01")


def test_journey_takes_the_segment_field_and_window_to_its_analyses(plan_store: Store) -> None:
    from journeylib.config.journey import JourneyDefinition
    from journeylib.context import Journey

    d = JourneyDefinition.from_dict({"name": "t", "stages": [{"name": "Trial", "rule": "signup"}], "segment_field": "plan"})
    j = Journey(plan_store, d, Scope.build(plan_store, as_of="2025-02-01"))
    assert j.scope.segment_field == "plan"
    funnel = j.funnel_data(by="segment")
    assert dict(zip(funnel["group"], funnel["reached"], strict=True)) == {"basic": 2, "pro": 2}
    pro = j.with_scope(segment="pro", events_from="2025-01-04")
    assert pro.scope.segment_field == "plan"
    assert pro.scope.events_from == pd.Timestamp("2025-01-04T00:00:00Z")
    assert pro.funnel_data()["eligible"].iloc[0] == 2
