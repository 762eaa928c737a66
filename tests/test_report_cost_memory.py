"""The 01 journey map's memory savings at scale give the results of the plain mechanisms.

* The analysis context gives the C heap's freed pages back after scoring the tickets (once per
  scoring), and its scored tickets are those of ``score_tickets``.
* ``score_tickets`` holds each distinct string of an object column once: the same values.
* The suggested milestones number a customer's events of one name by time alone (no tie-break
  column): the k-th event's day, and who reached it, are those of a naive count; and their
  statements, like the loop events', run under the store's bounded DuckDB memory limit (journeylib.store.memory) on a store
  that is on its default limit, a limit the user set being kept.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from _builders import day, event_rows, memory_limits_seen, memory_store

import journeylib.context as context_module
from journeylib.context import Journey
from journeylib.journey.loops import loop_events_data
from journeylib.journey.suggest import SUGGEST_MEMORY_LIMIT, suggest_milestones_data
from journeylib.scope import Scope
from journeylib.store import Store
from journeylib.store.memory import BOUNDED_MEMORY_LIMIT
from journeylib.voice.sentiment import score_tickets

AS_OF = day(200)
SUBJECTS = ["Export broken", "Re: Invoice wrong", "How do I invite?", "Love the new board", "Still waiting"]
BODIES = [
    "Hi,\n\nStill broken after 3 days!!\n\nThanks,\nMaya",
    "Hello team,\n\nThe invoice lists 350 seats, we have 8.\n\nBest regards,\nLi",
    "How do I add a guest? Not sure where to look.",
    "Thanks! Works great now, much better.",
    "",
]


# -- scored tickets ------------------------------------------------------------------------------
def _tickets(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(60):
        cid = f"c{int(rng.integers(0, 12)):02d}"
        rows.append({
            "ticket_id": f"t{int(rng.permutation(1000)[i]):04d}", "customer_id": cid, "created_at": day(float(rng.integers(0, 90))),
            "channel": str(rng.choice(["email", "chat", "phone"])), "subject": str(rng.choice(SUBJECTS)),
            "body": str(rng.choice(BODIES)), "status": str(rng.choice(["open", "solved"])),
            "priority": None if i % 9 == 0 else str(rng.choice(["low", "high"])),
        })
    return pd.DataFrame(rows)


def test_the_context_gives_back_what_scoring_freed_once_per_scoring(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []

    def give_back() -> bool:
        calls.append(1)
        return True

    monkeypatch.setattr(context_module, "give_back_freed_memory", give_back)
    customers = [{"customer_id": f"c{i:02d}", "segment": "SMB", "signup_at": day(0)} for i in range(12)]
    with memory_store(customers=customers, tickets=_tickets(0)) as store:
        j = Journey(store, None, Scope.build(store, as_of=AS_OF))
        first = j.scored_tickets()
        assert calls == [1]
        second = j.scored_tickets()  # from the cache: nothing scored, nothing given back
        assert calls == [1]
        pd.testing.assert_frame_equal(first, score_tickets(store.table("tickets")), check_exact=True)
    pd.testing.assert_frame_equal(second, first, check_exact=True)


def test_scored_tickets_hold_each_distinct_string_once_with_the_same_values() -> None:
    tickets = _tickets(0)
    # strings read from a store are an object per row: make the equal ones distinct objects here too
    tickets = tickets.assign(channel=["".join(list(str(c))) for c in tickets["channel"]])
    assert len({id(c) for c in tickets["channel"]}) == len(tickets)
    got = score_tickets(tickets)
    for col in ("ticket_id", "channel", "subject", "body", "status", "priority"):
        assert got[col].tolist() == tickets[col].tolist()
        assert got[col].dtype == object
    for col in ("channel", "subject", "status", "polarity", "emotion"):
        values = [v for v in got[col] if isinstance(v, str)]
        assert len({id(v) for v in values}) == len(set(values)), col
    assert [v is None for v in got["priority"]] == [v is None for v in tickets["priority"]]
    assert len({id(c) for c in tickets["channel"]}) == len(tickets)  # the caller's frame is not changed


# -- suggested milestones: the k-th event by time alone ----------------------------------------------
def _tied_world() -> tuple[list[dict[str, Any]], pd.DataFrame]:
    """30 customers whose events of one name often share an instant; event ids in no relation to time; 20 convert."""
    rng = np.random.default_rng(3)
    customers, rows = [], []
    for i in range(30):
        cid = f"c{i:02d}"
        customers.append({"customer_id": cid, "segment": "SMB", "signup_at": day(0),
                          "converted_at": day(20) if i % 3 else None})
        for name in ("setup", "invite", "report"):
            for _ in range(int(rng.integers(0, 12))):
                rows.append((cid, float(rng.choice([0.5, 1.0, 1.0, 2.5, 6.0, 6.0, 13.0, 29.0, 40.0])), name))
        if i % 3:  # the converters connect twice at one instant: a candidate that separates them
            rows.extend([(cid, 2.0, "connect"), (cid, 2.0, "connect")])
    events = event_rows(rows)
    events["event_id"] = [f"e{j:04d}" for j in rng.permutation(len(events))]
    return customers, events


def _naive_candidates(customers: list[dict[str, Any]], events: pd.DataFrame) -> pd.DataFrame:
    """reached, reached_success and median_days per (event, k, d) from each customer's sorted event days.

    A converted customer's events from the conversion on are not counted (the outcome is conversion).
    """
    success = {c["customer_id"]: int(c["converted_at"] is not None) for c in customers}
    cutoff = {c["customer_id"]: c["converted_at"] for c in customers}
    rows = []
    for (cid, name), grp in events.groupby(["customer_id", "event"]):
        kept = grp["timestamp"] if cutoff[cid] is None else grp["timestamp"][grp["timestamp"] < cutoff[cid]]
        days = np.sort(((kept - day(0)).dt.total_seconds() / 86400.0).to_numpy())
        for k in (1, 2, 3, 5, 10):
            for d in (3.0, 7.0, 14.0, 30.0):
                if len(days) >= k and days[k - 1] < d:
                    rows.append({"event": name, "min_count": k, "within_days": d, "customer": cid, "days": days[k - 1],
                                 "success": success[cid]})
    hits = pd.DataFrame(rows)
    return (
        hits.groupby(["event", "min_count", "within_days"])
        .agg(reached=("customer", "size"), reached_success=("success", "sum"), median_days=("days", "median"))
        .reset_index()
    )


def test_suggested_candidates_count_the_kth_event_in_time_order_whatever_the_ties() -> None:
    customers, events = _tied_world()
    with memory_store(customers=customers, events=events) as store:
        got = suggest_milestones_data(store, as_of=AS_OF, outcome="conversion", outcome_window_days=90.0)
    want = _naive_candidates(customers, events)
    keys = ["event", "min_count", "within_days"]
    merged = got.merge(want, on=keys, how="outer", suffixes=("", "_naive"), indicator=True)
    assert (merged["_merge"] == "both").all()  # the same candidates
    assert merged["reached"].tolist() == merged["reached_naive"].tolist()
    np.testing.assert_allclose(merged["median_days"], merged["median_days_naive"], rtol=1e-12)
    np.testing.assert_allclose(merged["success_rate_reached"], merged["reached_success"] / merged["reached_naive"], rtol=1e-12)


# -- the bounded memory limit of the heavy statements ------------------------------------------------
@pytest.mark.parametrize("given", [None, "1GB"])
def test_suggestion_statements_run_under_the_bounded_limit_unless_the_user_set_one(
    monkeypatch: pytest.MonkeyPatch, given: str | None
) -> None:
    customers, events = _tied_world()
    store = Store(":memory:", memory_limit=given)
    store.insert("customers", pd.DataFrame(customers))
    store.insert("events", events)
    with store:
        own = store.settings.get("memory_limit")
        seen = memory_limits_seen(monkeypatch, "row_number() OVER (PARTITION BY e.customer_id, e.event")
        suggest_milestones_data(store, as_of=AS_OF, outcome="conversion", outcome_window_days=90.0)
        assert len(seen) == 2  # the candidates and the customers of the shortlist
        assert seen == [SUGGEST_MEMORY_LIMIT if given is None else "1GB"] * 2
        assert store.settings.get("memory_limit") == own  # set back after


def test_loop_events_run_under_the_bounded_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    customers, events = _tied_world()
    with memory_store(customers=customers, events=events) as store:
        own = store.settings.get("memory_limit")
        seen = memory_limits_seen(monkeypatch, "first_after")
        loop_events_data(store, as_of=AS_OF)
        assert seen == [BOUNDED_MEMORY_LIMIT]
        assert store.settings.get("memory_limit") == own
