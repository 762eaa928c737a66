"""The scope's event counts: one scan shared by event transitions and sessions in a context, same answers as the functions."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from _builders import day, event_rows, journey_definition, memory_store

from journeylib.cache import ResultCache
from journeylib.context import Journey
from journeylib.journey.scoped_events import scoped_event_count, scoped_event_counts, top_events
from journeylib.journey.sessions import sessions_data
from journeylib.journey.transitions import event_transitions_data
from journeylib.scope import Scope
from journeylib.store import Store

DEF = journey_definition({"Trial": "signup", "Setup": {"event": "setup", "within_days": 7}}, conventions={"drop_after_days": 30})
AS_OF = day(60)


@pytest.fixture
def store() -> Iterator[Store]:
    customers = pd.DataFrame(
        {
            "customer_id": list("abcd"),
            "segment": ["SMB", "SMB", "Ent", "Ent"],
            "plan": ["free"] * 4,
            "signup_at": [day(0)] * 3 + [day(70)],  # d signs up after as_of: out of scope
        }
    )
    # "login" 3, "setup" 3, "export" 2 in scope: login and setup tie (setup's 4th event is after as_of)
    events = event_rows(
        [
            ("a", 1, "setup"), ("a", 1.01, "login"), ("a", 1.02, "export"), ("a", 5, "login"),
            ("b", 2, "setup"), ("b", 2, "login"), ("b", 30, "export"), ("b", 61, "setup"),
            ("c", 3, "setup"),
            ("d", 71, "login"),
        ]
    )
    s = memory_store(customers=customers, events=events)
    yield s
    s.close()


def _recording(store: Store, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record the SQL of every ``store.query``."""
    seen: list[str] = []
    query = store.query

    def recorded(sql: str, *args: Any, **kwargs: Any) -> pd.DataFrame:
        seen.append(sql)
        return query(sql, *args, **kwargs)

    monkeypatch.setattr(store, "query", recorded)
    return seen


def test_counts_by_name_most_frequent_first_ties_by_name(store: Store) -> None:
    scope = Scope.build(store, as_of=AS_OF)
    counts = scoped_event_counts(store, scope)
    assert counts.to_dict("records") == [
        {"event": "login", "events": 3}, {"event": "setup", "events": 3}, {"event": "export", "events": 2},
    ]
    assert top_events(store, scope, n=1) == ["login"]  # a tie at the cut: by name, as ORDER BY count(*) DESC, event
    assert top_events(store, scope, n=5, events=["export", "setup"]) == ["setup", "export"]
    assert scoped_event_count(store, scope) == 8
    assert scoped_event_count(store, scope, events=["export"]) == 2
    assert scoped_event_count(store, scope, sources=["nowhere"]) == 0
    with pytest.raises(ValueError, match="not both"):
        scoped_event_count(store, scope, events=["login"], sources=["product"])


def test_transitions_and_sessions_share_one_count_in_a_context(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    plain_transitions = event_transitions_data(store, definition=DEF, as_of=AS_OF, top_n=2)
    plain_sessions = sessions_data(store, as_of=AS_OF)
    j = Journey(store, DEF, Scope.build(store, as_of=AS_OF))
    seen = _recording(store, monkeypatch)
    transitions = j.event_transitions_data(top_n=2)
    sessions = j.sessions_data()
    again = j.event_transitions_data(top_n=1)
    # one scan of the scope's events answers the three counts and both top-n lists
    assert j.cache.computed["scoped_event_counts"] == 1
    assert sum("GROUP BY event" in sql for sql in seen) == 1
    assert not any("count(*) AS n FROM" in sql for sql in seen)
    pd.testing.assert_frame_equal(transitions, plain_transitions, check_exact=True)
    pd.testing.assert_frame_equal(sessions, plain_sessions, check_exact=True)
    pd.testing.assert_frame_equal(again, event_transitions_data(store, definition=DEF, as_of=AS_OF, top_n=1), check_exact=True)
    # 2 nodes kept: login and setup (tied at 3; export lumped into other)
    assert set(transitions["from_node"]) == {"start", "login", "setup", "other"}


def test_a_source_filter_is_counted_once_and_apart(store: Store) -> None:
    cache = ResultCache()
    scope = Scope.build(store, as_of=AS_OF)
    first = sessions_data(store, scope=scope, sources=["product"], cache=cache)
    second = sessions_data(store, scope=scope, sources=["product"], cache=cache)
    pd.testing.assert_frame_equal(first, second, check_exact=True)
    assert first["customer_id"].tolist() == ["a", "b", "c"]
    assert cache.computed["scoped_events"] == 1
    assert cache.computed["scoped_event_counts"] == 0


def test_other_scopes_are_counted_apart(store: Store) -> None:
    j = Journey(store, DEF, Scope.build(store, as_of=AS_OF))
    smb = j.with_scope(segment="SMB")
    pd.testing.assert_frame_equal(
        smb.event_transitions_data(top_n=1),
        event_transitions_data(store, definition=DEF, as_of=AS_OF, segment="SMB", top_n=1), check_exact=True,
    )
    pd.testing.assert_frame_equal(j.sessions_data(), sessions_data(store, as_of=AS_OF), check_exact=True)
    assert j.cache.computed["scoped_event_counts"] == 2


def test_the_demo_world_through_a_context_equals_the_functions(demo_store: Path) -> None:
    store = Store(demo_store, read_only=True)
    j = Journey(store, None, Scope.build(store))
    pd.testing.assert_frame_equal(j.event_transitions_data(top_n=10), event_transitions_data(store, top_n=10), check_exact=True)
    pd.testing.assert_frame_equal(j.sessions_data(), sessions_data(store), check_exact=True)
    pd.testing.assert_frame_equal(j.sessions_data(level="session"), sessions_data(store, level="session"), check_exact=True)
    assert j.cache.computed["scoped_event_counts"] == 1
