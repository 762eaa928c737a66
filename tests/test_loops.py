"""Repeated attempts compare the event and the properties that identify the object, not the whole properties JSON."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from _builders import day, memory_store

from journeylib.journey.loops import VOLATILE_KEY_PATTERN, attempt_keys_data, loop_events_data
from journeylib.store import Store

AS_OF = day(40)


def _store(rows: list[tuple[str, float, str, dict | None]], *, customers: int = 6) -> Store:
    cust = [{"customer_id": f"c{i}", "segment": "SMB", "signup_at": day(0)} for i in range(customers)]
    events = [
        {"event_id": f"e{i:04d}", "customer_id": c, "timestamp": day(d), "event": ev, "source": "web",
         "properties": json.dumps(p) if p is not None else None}
        for i, (c, d, ev, p) in enumerate(rows)
    ]
    return memory_store(customers=cust, events=events)


def _attempt(step: str, n: int, hour: float) -> dict:
    """One try of a set-up step: the step identifies it; the attempt id, its time, duration and error are incidental."""
    return {"step": step, "attempt_id": f"a{n}-{hour}", "client_ts": f"2024-01-01T{int(hour):02d}:00:00Z",
            "duration_ms": 1000 + 37 * n, "error": f"E{n}"}


def test_three_attempts_with_different_incidental_properties_are_a_loop() -> None:
    rows = []
    # c0 tries the "bank" step three times, each try with its own id, time, duration and error
    rows += [("c0", 1 + 0.01 * n, "setup_step", _attempt("bank", n, 9 + n)) for n in range(3)]
    # c1 .. c5 do each step once (so setup_step is an action most customers do once per step)
    rows += [(f"c{i}", 1.0, "setup_step", _attempt("bank", 10 + i, 10)) for i in range(1, 6)]
    rows += [(f"c{i}", 2.0, "setup_step", _attempt("users", 20 + i, 11)) for i in range(6)]
    with _store(rows) as s:
        loops = loop_events_data(s, as_of=AS_OF)
        rep = loops[loops["kind"] == "repeated attempt"]
        assert rep["customer_id"].tolist() == ["c0", "c0"]  # the 2nd and 3rd try
        assert rep["object"].unique().tolist() == ["step=bank"]
        keys = attempt_keys_data(s, as_of=AS_OF).set_index("key")
        assert keys.loc["step", "identifies"]
        assert not keys.loc[["attempt_id", "client_ts", "duration_ms", "error"], "identifies"].any()
        # the whole-JSON comparison (every key identifying) sees no repeat at all
        whole = loop_events_data(s, as_of=AS_OF, identity_keys=["step", "attempt_id", "client_ts", "duration_ms", "error"])
        assert whole[whole["kind"] == "repeated attempt"].empty
        # configured keys: only "step" named, for this event
        per_event = loop_events_data(s, as_of=AS_OF, identity_keys={"setup_step": ["step"]})
        assert per_event[per_event["kind"] == "repeated attempt"]["customer_id"].tolist() == ["c0", "c0"]


def test_different_objects_are_not_a_loop_and_timestamp_values_are_volatile() -> None:
    rows = []
    # each customer creates two different projects: the project id identifies the object, so no loop
    for i in range(6):
        rows += [(f"c{i}", 1.0, "project_created", {"project_id": f"p{i}a", "sent": f"2024-01-0{1 + i}T10:00:00Z"}),
                 (f"c{i}", 2.0, "project_created", {"project_id": f"p{i}b", "sent": f"2024-01-0{1 + i}T11:00:00Z"})]
    # c0 submits the same form twice; "sent" is a timestamp by its values (its name says nothing)
    rows += [("c0", 3.0, "form_submitted", {"form": "billing", "sent": "2024-01-03T10:00:00Z"}),
             ("c0", 3.1, "form_submitted", {"form": "billing", "sent": "2024-01-03T12:30:00Z"})]
    rows += [(f"c{i}", 3.0, "form_submitted", {"form": "billing", "sent": "2024-01-03T10:00:00Z"}) for i in range(1, 6)]
    with _store(rows) as s:
        keys = attempt_keys_data(s, as_of=AS_OF)
        sent = keys[keys["key"] == "sent"]
        assert not sent["identifies"].any()
        assert set(sent["reason"]) == {"values look like timestamps"}
        assert keys.set_index(["event", "key"]).loc[("project_created", "project_id"), "identifies"]
        loops = loop_events_data(s, as_of=AS_OF, attempt_events=["project_created", "form_submitted"])
        rep = loops[loops["kind"] == "repeated attempt"]
        assert [(r.customer_id, r.event, r.object) for r in rep.itertuples()] == [("c0", "form_submitted", "form=billing")]


@pytest.mark.parametrize("key", ["ts", "created_at", "attempt_id", "attempt", "retry_count", "request_id", "session_id",
                                 "duration_ms", "status", "error_message", "id"])
def test_volatile_key_names(key: str) -> None:
    assert VOLATILE_KEY_PATTERN.search(key)


@pytest.mark.parametrize("key", ["step", "step_id", "project_id", "integration", "form", "plan", "report_name"])
def test_identifying_key_names(key: str) -> None:
    assert not VOLATILE_KEY_PATTERN.search(key)


def test_identity_keys_must_be_a_list_not_a_text() -> None:
    with _store([("c0", 1.0, "x", {"a": 1})]) as s, pytest.raises(TypeError, match="identity_keys must be a list"):
        loop_events_data(s, as_of=AS_OF, identity_keys="step")


def test_events_without_properties_are_compared_by_name() -> None:
    rows = [("c0", 1.0, "import", None), ("c0", 1.5, "import", None)] + [(f"c{i}", 1.0, "import", None) for i in range(1, 6)]
    with _store(rows) as s:
        loops = loop_events_data(s, as_of=AS_OF)
        rep = loops[loops["kind"] == "repeated attempt"]
        assert rep[["customer_id", "event", "object"]].values.tolist() == [["c0", "import", ""]]
        assert isinstance(attempt_keys_data(s, as_of=AS_OF), pd.DataFrame)
        assert attempt_keys_data(s, as_of=AS_OF).empty
