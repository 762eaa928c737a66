"""Scope: as_of conventions, filters and samples shared by the analyses."""

from __future__ import annotations

import pandas as pd
import pytest

from journeylib.exceptions import EmptyResultError
from journeylib.scope import Scope, to_utc
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
