"""Event transitions against a plain pandas oracle, and the source kinds read once per read-only session.

The oracle spells out :func:`journeylib.journey.transitions.event_transitions_data` row by row:
each scoped customer's events up to ``as_of`` (optionally only some event names), the ``top_n``
most frequent kept and the rest lumped into ``other``, ordered by timestamp then node name,
consecutive repeats merged on request, then ``start → e1 → … → end node``. The store is built by
hand with the cases the engine has to get right: ties at one timestamp (same and different
events), events after ``as_of``, a customer signed up after it, a churn after it (not known yet),
customers without events, an event literally named ``other``.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd
import pytest
from _builders import memory_store

from journeylib.journey import transitions as transitions_module
from journeylib.journey.paths import CHURNED, DROPPED, STILL_ACTIVE
from journeylib.journey.transitions import OTHER, START, event_transitions_data
from journeylib.store import Store
from journeylib.store.categories import (
    CATEGORIES,
    activity_source_names,
    source_categories,
    source_kinds_table,
    sources_of,
)

T0 = pd.Timestamp("2025-01-01", tz="UTC")
AS_OF = T0 + pd.Timedelta(days=60)
NAMES = ["login", "setup", "project", "invite", "export", OTHER, "report"]


def _world(seed: int = 7) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Customers and events with ties, late rows and empty timelines (fixed seed)."""
    rng = np.random.default_rng(seed)
    customers = []
    events = []
    for i in range(40):
        cid = f"c{i:02d}"
        signup = T0 + pd.Timedelta(days=int(rng.integers(0, 20)))
        churned = signup + pd.Timedelta(days=float(rng.uniform(5, 80))) if i % 4 == 0 else pd.NaT  # some after as_of
        if i == 39:
            signup = AS_OF + pd.Timedelta(days=1)  # signs up after as_of: out of scope
        customers.append({"customer_id": cid, "segment": "SMB" if i % 3 else "Ent", "plan": "pro", "signup_at": signup,
                          "churned_at": churned})
        if i % 7 == 3:
            continue  # no events at all
        n = int(rng.integers(1, 25))
        hours = np.sort(rng.integers(0, 24 * 70, size=n))  # some after as_of
        names = rng.choice(NAMES, size=n, p=[0.35, 0.15, 0.15, 0.1, 0.1, 0.05, 0.1])
        for h, name in zip(hours, names, strict=True):
            events.append((cid, signup + pd.Timedelta(hours=int(h)), str(name)))
        if n > 2:  # ties: the same timestamp with another event and with the same event
            events.append((cid, signup + pd.Timedelta(hours=int(hours[1])), "setup"))
            events.append((cid, signup + pd.Timedelta(hours=int(hours[1])), str(names[1])))
    ev = pd.DataFrame(events, columns=["customer_id", "timestamp", "event"])
    ev.insert(0, "event_id", [f"e{i:05d}" for i in range(len(ev))])
    ev["source"] = "product"
    return pd.DataFrame(customers), ev


def _oracle(customers: pd.DataFrame, events: pd.DataFrame, *, as_of: pd.Timestamp, top_n: int, keep: list[str] | None,
            collapse: bool, inactive_days: float | None, segment: str | None = None) -> pd.DataFrame:
    """The transition counts and day quantiles, customer by customer in plain pandas."""
    cust = customers[customers["signup_at"] <= as_of]
    if segment is not None:
        cust = cust[cust["segment"] == segment]
    churned = cust.set_index("customer_id")["churned_at"].where(lambda s: s <= as_of)
    ev = events[events["customer_id"].isin(cust["customer_id"]) & (events["timestamp"] <= as_of)]
    if keep is not None:
        ev = ev[ev["event"].isin(keep)]
    counts = ev.groupby("event").size().reset_index(name="n").sort_values(["n", "event"], ascending=[False, True])
    top = set(counts["event"].head(top_n))
    ev = ev.assign(node=np.where(ev["event"].isin(top), ev["event"], OTHER))
    rows = []
    for cid in cust["customer_id"]:
        mine = ev[ev["customer_id"] == cid].sort_values(["timestamp", "node"])
        seq = list(zip(mine["timestamp"], mine["node"], strict=True))
        if collapse:
            seq = [s for j, s in enumerate(seq) if j == 0 or s[1] != seq[j - 1][1]]
        prev_t, prev_n = None, START
        for t, node in seq:
            rows.append((cid, prev_n, node, np.nan if prev_t is None else (t - prev_t).total_seconds() / 86400))
            prev_t, prev_n = t, node
        ch = churned.get(cid)
        if pd.notna(ch):
            end, days = CHURNED, np.nan if prev_t is None else (ch - prev_t).total_seconds() / 86400
        elif inactive_days is not None and (prev_t is None or prev_t < as_of - pd.Timedelta(days=inactive_days)):
            end, days = DROPPED, np.nan
        else:
            end, days = STILL_ACTIVE, np.nan
        rows.append((cid, prev_n, end, days))
    pairs = pd.DataFrame(rows, columns=["customer_id", "from_node", "to_node", "days"])
    out = pairs.groupby(["from_node", "to_node"]).agg(
        transitions=("days", "size"), customers=("customer_id", "nunique"),
        p25_days=("days", lambda x: x.quantile(0.25)), median_days=("days", "median"), p75_days=("days", lambda x: x.quantile(0.75)),
    )
    return out.reset_index().sort_values(["from_node", "to_node"]).reset_index(drop=True)


@pytest.fixture(scope="module")
def world() -> tuple[pd.DataFrame, pd.DataFrame]:
    return _world()


@pytest.fixture(scope="module")
def store(world: tuple[pd.DataFrame, pd.DataFrame]) -> Iterator[Store]:
    customers, events = world
    s = memory_store(customers=customers, events=events)
    yield s
    s.close()


CASES = [
    {"top_n": 10, "keep": None, "collapse": False, "inactive_days": None},
    {"top_n": 10, "keep": None, "collapse": True, "inactive_days": 20.0},
    {"top_n": 1, "keep": None, "collapse": False, "inactive_days": 20.0},
    {"top_n": 3, "keep": None, "collapse": True, "inactive_days": None},
    {"top_n": 2, "keep": ["setup", "project", "report", "absent"], "collapse": False, "inactive_days": 5.5},
    {"top_n": 5, "keep": ["login", OTHER], "collapse": True, "inactive_days": 20.0},
    {"top_n": 4, "keep": None, "collapse": False, "inactive_days": 20.0, "segment": "Ent"},
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()))
def test_event_transitions_match_the_oracle(store: Store, world: tuple[pd.DataFrame, pd.DataFrame], case: dict) -> None:
    customers, events = world
    want = _oracle(customers, events, as_of=AS_OF, **case)
    got = event_transitions_data(store, as_of=AS_OF, top_n=case["top_n"], events=case["keep"], collapse_repeats=case["collapse"],
                                 inactive_days=case["inactive_days"], segment=case.get("segment"))
    got = got.sort_values(["from_node", "to_node"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(got[["from_node", "to_node"]], want[["from_node", "to_node"]])
    assert got["transitions"].tolist() == want["transitions"].tolist()
    assert got["customers"].tolist() == want["customers"].tolist()
    for col in ("p25_days", "median_days", "p75_days"):
        np.testing.assert_allclose(got[col].to_numpy(dtype=float), want[col].to_numpy(dtype=float), rtol=1e-9, atol=1e-9)
    # every scoped customer leaves start once and reaches one end node once
    n_scope = int((customers["signup_at"] <= AS_OF).sum()) if "segment" not in case else int(
        ((customers["signup_at"] <= AS_OF) & (customers["segment"] == case["segment"])).sum())
    assert got.loc[got["from_node"] == START, "transitions"].sum() == n_scope
    assert got.loc[got["to_node"].isin([CHURNED, DROPPED, STILL_ACTIVE]), "transitions"].sum() == n_scope
    np.testing.assert_allclose(got.groupby("from_node")["probability"].sum().to_numpy(), 1.0)


def test_event_transitions_do_not_depend_on_row_order(world: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    customers, events = world
    results = []
    for seed in (0, 1):
        with Store(":memory:") as s:
            s.insert("customers", customers.sample(frac=1.0, random_state=seed))
            s.insert("events", events.sample(frac=1.0, random_state=seed))
            results.append(event_transitions_data(s, as_of=AS_OF, top_n=4, collapse_repeats=True, inactive_days=20.0))
    pd.testing.assert_frame_equal(results[0], results[1], check_exact=True)


# -- source kinds: one scan of events per read-only session ------------------------------------------
@pytest.fixture
def store_file(tmp_path: Path, world: tuple[pd.DataFrame, pd.DataFrame]) -> Path:
    customers, events = world
    path = tmp_path / "kinds.duckdb"
    with Store(path) as s:
        s.insert("customers", customers)
        s.insert("events", events.assign(source=np.where(np.arange(len(events)) % 5 == 0, "crm", "product")))
    return path


def _count_event_scans(store: Store, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    seen: list[str] = []
    query = store.query

    def counting(sql: str, *args: Any, **kwargs: Any) -> pd.DataFrame:
        if "FROM events" in sql:
            seen.append(sql)
        return query(sql, *args, **kwargs)

    monkeypatch.setattr(store, "query", counting)
    return seen


def test_source_kinds_scan_events_once_per_read_only_session(store_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = Store(store_file, read_only=True)
    scans = _count_event_scans(store, monkeypatch)
    with store.session():
        assert activity_source_names(store) == ["product"]
        assert sources_of(store, ["product"]) == ["product"]
        assert sources_of(store, ["crm"]) == ["crm"]
        table = source_kinds_table(store)
        table.loc[0, "kind"] = "changed"  # a copy: the next caller does not see it
        assert source_categories(store) == {"crm": "crm", "product": "product"}
    assert len(scans) == 1
    source_categories(store)  # a new session (a new connection) reads again
    assert len(scans) == 2


def test_source_kinds_of_a_writable_store_follow_its_changes(store_file: Path, world: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    _, events = world
    with Store(store_file) as s, s.session():
        assert source_categories(s) == {"crm": "crm", "product": "product"}
        s.insert("events", events.head(1).assign(event_id="late", source="zendesk"))
        assert source_categories(s) == {"crm": "crm", "product": "product", "zendesk": "support"}  # zendesk: a reader's name


def test_categories_import_no_vendor_reader() -> None:
    code = (
        "import sys\nimport journeylib.store.categories, journeylib.journey.transitions\n"
        "print(sorted(m for m in sys.modules if m == 'journeylib.io' or m.startswith('journeylib.io.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def test_categories_are_the_reader_categories() -> None:
    from journeylib.io.registry import CATEGORIES as READER_CATEGORIES

    assert CATEGORIES == READER_CATEGORIES


# -- quartiles from a window sort: the same bits as the quantile aggregate ----------------------------
def _microsecond_world(seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The oracle's world with every timestamp moved by a random number of microseconds (ties kept).

    Days between events are then arbitrary doubles, so interpolated quartiles exercise the last
    bit of DuckDB's arithmetic (its interpolation is one fused multiply-add).
    """
    customers, events = _world(seed)
    rng = np.random.default_rng(seed + 100)
    keys = events[["customer_id", "timestamp"]].drop_duplicates()
    shift = pd.to_timedelta(rng.integers(0, 3_600_000_000, size=len(keys)), unit="us")
    keys = keys.assign(moved=keys["timestamp"] + shift)
    events = events.merge(keys, on=["customer_id", "timestamp"]).drop(columns="timestamp").rename(columns={"moved": "timestamp"})
    churn = pd.to_timedelta(rng.integers(0, 86_400_000_000, size=len(customers)), unit="us")
    return customers.assign(churned_at=customers["churned_at"] + churn), events


@pytest.mark.parametrize("seed", [3, 8, 21])
def test_sorted_quartiles_are_the_aggregate_bits(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    customers, events = _microsecond_world(seed)
    seen = []
    with Store(":memory:") as s:
        s.insert("customers", customers)
        s.insert("events", events)
        for case_ in CASES:
            case = cast("dict[str, Any]", case_)
            kwargs = {"as_of": AS_OF, "top_n": case["top_n"], "events": case["keep"], "collapse_repeats": case["collapse"],
                      "inactive_days": case["inactive_days"], "segment": case.get("segment")}
            monkeypatch.setattr(transitions_module, "SORTED_QUANTILES_FROM_EVENTS", 10**12)
            aggregate = event_transitions_data(s, **kwargs)
            monkeypatch.setattr(transitions_module, "SORTED_QUANTILES_FROM_EVENTS", 0)
            ranked = event_transitions_data(s, **kwargs)
            pd.testing.assert_frame_equal(ranked, aggregate, check_exact=True)
            seen.append(aggregate)
        # the cases cover pairs with only NULL days (end nodes), with one transition and with an even number
        both = pd.concat(seen)
        assert both["median_days"].isna().any()
        assert (both["transitions"] == 1).any()
        assert (both["transitions"] % 2 == 0).any()
        assert (both["median_days"] != both["p25_days"]).any()  # interpolated values, not only ties
        # the sort form against the oracle too
        want = _oracle(customers, events, as_of=AS_OF, top_n=4, keep=None, collapse=True, inactive_days=20.0)
        got = event_transitions_data(s, as_of=AS_OF, top_n=4, collapse_repeats=True, inactive_days=20.0)
        got = got.sort_values(["from_node", "to_node"]).reset_index(drop=True)
        assert got["transitions"].tolist() == want["transitions"].tolist()
        for col in ("p25_days", "median_days", "p75_days"):
            np.testing.assert_allclose(got[col].to_numpy(dtype=float), want[col].to_numpy(dtype=float), rtol=1e-9, atol=1e-9)
