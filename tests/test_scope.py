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
