"""Sessions against a plain pandas oracle, and the medians from a window sort against DuckDB's median.

The oracle spells out :func:`journeylib.journey.sessions.sessions_data` customer by customer:
each scoped customer's events up to ``as_of`` (optionally of some sources only), ordered by
timestamp, a new session wherever more than ``gap_minutes`` pass without an event. The store is
built by hand with the cases the engine has to get right: ties at one timestamp, a gap of exactly
``gap_minutes`` (the same session), customers with one event or one session, an even number of
sessions, events after ``as_of``, a customer signed up after it and customers without events.
Timestamps carry random microseconds, so durations are arbitrary doubles.

Above :data:`journeylib.journey.sessions.SORTED_MEDIANS_FROM_EVENTS` the per-customer medians
come from window sorts (which DuckDB spills) rather than ``median`` aggregates (which it does
not); the two forms must give the same bits, on DuckDB and on Spark.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest
from _builders import memory_store

from journeylib.journey import sessions as sessions_module
from journeylib.journey.sessions import sessions_data
from journeylib.store import Store

T0 = pd.Timestamp("2025-01-01", tz="UTC")
AS_OF = T0 + pd.Timedelta(days=40)


def _world(seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Customers and bursts of events with ties, exact gaps, late rows and empty timelines (fixed seed)."""
    rng = np.random.default_rng(seed)
    customers, events = [], []
    for i in range(60):
        cid = f"c{i:02d}"
        signup = T0 + pd.Timedelta(days=int(rng.integers(0, 10)))
        if i == 59:
            signup = AS_OF + pd.Timedelta(days=1)  # signs up after as_of: out of scope
        customers.append({"customer_id": cid, "segment": "SMB", "plan": "pro", "signup_at": signup, "churned_at": pd.NaT})
        if i % 11 == 5:
            continue  # no events
        n_bursts = 1 if i % 9 == 0 else int(rng.integers(1, 9))
        for _ in range(n_bursts):
            start = signup + pd.to_timedelta(int(rng.integers(0, 35 * 86_400_000_000)), unit="us")
            n = 1 if i % 13 == 0 else int(rng.integers(1, 8))
            steps = rng.integers(0, 20 * 60_000_000, size=n)  # up to 20 minutes apart
            times = start + pd.to_timedelta(np.cumsum(steps), unit="us")
            for t in times:
                events.append((cid, t, "login", "product" if rng.random() < 0.7 else "crm"))
            events.append((cid, times[-1], "export", "product"))  # a tie
            if i % 5 == 0:
                events.append((cid, times[-1] + pd.Timedelta(minutes=30), "report", "product"))  # exactly the gap
    ev = pd.DataFrame(events, columns=["customer_id", "timestamp", "event", "source"])
    ev.insert(0, "event_id", [f"e{i:05d}" for i in range(len(ev))])
    return pd.DataFrame(customers), ev


def _oracle(customers: pd.DataFrame, events: pd.DataFrame, *, as_of: pd.Timestamp, gap_minutes: float,
            sources: list[str] | None) -> pd.DataFrame:
    """Per-customer session summaries, customer by customer in plain pandas."""
    scoped = customers.loc[customers["signup_at"] <= as_of, "customer_id"]
    ev = events[events["customer_id"].isin(scoped) & (events["timestamp"] <= as_of)]
    if sources is not None:
        ev = ev[ev["source"].isin(sources)]
    gap_us = round(gap_minutes * 60_000_000)
    rows = []
    for cid, mine in ev.groupby("customer_id"):
        us = np.sort(mine["timestamp"].to_numpy(dtype="datetime64[us]").astype(np.int64))
        starts = np.r_[True, np.diff(us) > gap_us]
        session = np.cumsum(starts)
        per = pd.DataFrame({"s": session, "us": us}).groupby("s")["us"].agg(["min", "max", "size"])
        minutes = (per["max"] / 1e6 - per["min"] / 1e6) / 60.0
        first = pd.Timestamp(int(per["min"].min()), unit="us", tz="UTC")
        weeks = max((as_of - first).total_seconds() / 86400 / 7.0, 1.0)
        rows.append({"customer_id": cid, "sessions": len(per), "events": int(per["size"].sum()),
                     "median_session_minutes": float(np.median(minutes)), "median_events_per_session": float(np.median(per["size"])),
                     "sessions_per_week": len(per) / weeks})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def world() -> tuple[pd.DataFrame, pd.DataFrame]:
    return _world(5)


@pytest.fixture(scope="module")
def store(world: tuple[pd.DataFrame, pd.DataFrame]) -> Iterator[Store]:
    customers, events = world
    s = memory_store(customers=customers, events=events)
    yield s
    s.close()


CASES: list[dict[str, Any]] = [
    {"gap_minutes": 30.0, "sources": None},
    {"gap_minutes": 30.0, "sources": ["product"]},
    {"gap_minutes": 7.5, "sources": None},
    {"gap_minutes": 240.0, "sources": ["crm"]},
]


@pytest.mark.parametrize("sorted_medians", [False, True], ids=["aggregate", "sorted"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()))
def test_sessions_match_the_oracle(store: Store, world: tuple[pd.DataFrame, pd.DataFrame], case: dict[str, Any],
                                   sorted_medians: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sessions_module, "SORTED_MEDIANS_FROM_EVENTS", 0 if sorted_medians else 10**12)
    customers, events = world
    want = _oracle(customers, events, as_of=AS_OF, **case)
    got = sessions_data(store, as_of=AS_OF, **case)
    assert got["customer_id"].tolist() == want["customer_id"].tolist()
    assert got["sessions"].tolist() == want["sessions"].tolist()
    assert got["events"].tolist() == want["events"].tolist()
    for col in ("median_session_minutes", "median_events_per_session", "sessions_per_week"):
        np.testing.assert_allclose(got[col].to_numpy(dtype=float), want[col].to_numpy(dtype=float), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sorted_session_medians_are_the_median_bits(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    customers, events = _world(seed)
    seen = []
    with Store(":memory:") as s:
        s.insert("customers", customers)
        s.insert("events", events)
        for case in CASES:
            monkeypatch.setattr(sessions_module, "SORTED_MEDIANS_FROM_EVENTS", 10**12)
            aggregate = sessions_data(s, as_of=AS_OF, **case)
            monkeypatch.setattr(sessions_module, "SORTED_MEDIANS_FROM_EVENTS", 0)
            ranked = sessions_data(s, as_of=AS_OF, **case)
            pd.testing.assert_frame_equal(ranked, aggregate, check_exact=True)
            seen.append(aggregate)
    both = pd.concat(seen)
    # customers with one session, with an even number of sessions (medians interpolated) and with ties occur
    assert (both["sessions"] == 1).any()
    assert (both["sessions"] % 2 == 0).any()
    assert (both["median_session_minutes"] % 1 != 0).any()
    assert (both["median_events_per_session"] % 1 == 0.5).any()


# -- Spark: the sort forms of the session medians and the transition quartiles -------------------------
@pytest.mark.spark
def test_sorted_session_medians_and_transition_quartiles_on_spark(store: Store, tmp_path_factory: pytest.TempPathFactory,
                                                                  monkeypatch: pytest.MonkeyPatch, spark_local: Any) -> None:
    from journeylib.config.engine import TableSource
    from journeylib.journey import transitions as transitions_module
    from journeylib.journey.transitions import event_transitions_data
    from journeylib.store.spark import SparkStore, comparable_frame, write_parquet_tables

    monkeypatch.setattr(sessions_module, "SORTED_MEDIANS_FROM_EVENTS", 0)
    monkeypatch.setattr(transitions_module, "SORTED_QUANTILES_FROM_EVENTS", 0)
    parquet = write_parquet_tables(store, tmp_path_factory.mktemp("sessions_parquet"))
    sstore = SparkStore(session=spark_local, tables={name: TableSource(path=str(p)) for name, p in parquet.items()})
    try:
        ops = [
            (lambda s: sessions_data(s, as_of=AS_OF, gap_minutes=7.5), ["median_session_minutes", "median_events_per_session"]),
            (lambda s: event_transitions_data(s, as_of=AS_OF, top_n=2, inactive_days=10.0), ["p25_days", "median_days", "p75_days"]),
        ]
        for op, quantiles in ops:
            expected, got = comparable_frame(op(store)), comparable_frame(op(sstore))
            assert len(got) == len(expected) > 0
            # the other columns (e.g. sessions per week) differ between the engines in the last bits
            pd.testing.assert_frame_equal(got, expected, check_dtype=False, rtol=1e-9)
            pd.testing.assert_frame_equal(got[quantiles], expected[quantiles], check_dtype=False, check_exact=True)
    finally:
        sstore.close()
