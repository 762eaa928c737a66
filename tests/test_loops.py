"""Repeated attempts compare the event and the properties that identify the object, not the whole properties JSON."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from _builders import day, memory_store

from journeylib.cache import ResultCache
from journeylib.journey.loops import (
    COMPANY_SOURCES,
    KEY_SAMPLE_ROWS,
    VOLATILE_KEY_PATTERN,
    attempt_keys_data,
    loop_events_data,
    loops_by_stage,
)
from journeylib.scope import Scope
from journeylib.store import Store
from journeylib.store.categories import sources_of

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
                                 "duration_ms", "status", "error_message", "id", "$insert_id", "insert_id", "$browser",
                                 "$email", "mp_lib", "device_id", "distinct_id", "user_id", "amplitude_id", "email"])
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


# -- returns after a gap, the key sample and the shared computation -----------------------------------
def _event_frame(rows: list[tuple[str, float, str, str, str, dict | None]]) -> list[dict]:
    """Events from ``(customer_id, day, event, source, event_id, properties)`` tuples."""
    return [
        {"event_id": eid, "customer_id": c, "timestamp": day(d), "event": ev, "source": src,
         "properties": json.dumps(p) if p is not None else None}
        for c, d, ev, src, eid, p in rows
    ]


def test_a_return_is_the_first_event_of_the_first_moment_after_the_gap() -> None:
    rows = [
        ("c0", 0.0, "login", "web", "e1", None),
        # day 0.5: an e-mail (the company's) does not end the gap
        ("c0", 0.5, "email_opened", "email", "e2", None),
        # day 3 (3 days later, gap 3): two events at the same moment; the first in (source, event, event_id) order
        # is the return ("app" < "web"), the other follows no gap
        ("c0", 3.0, "zz_feature", "app", "e9", None),
        ("c0", 3.0, "login", "web", "e3", None),
        # day 5.9: 2.9 days later, below the gap
        ("c0", 5.9, "login", "web", "e4", None),
        # c1: two events 3 days apart at the same moment pair, ids order the tie
        ("c1", 1.0, "login", "web", "e5", None),
        ("c1", 4.0, "report", "web", "e7", None),
        ("c1", 4.0, "report", "web", "e6", None),
    ]
    cust = [{"customer_id": c, "segment": "SMB", "signup_at": day(0)} for c in ("c0", "c1")]
    with memory_store(customers=cust, events=_event_frame(rows)) as s:
        loops = loop_events_data(s, as_of=AS_OF, attempt_events=[], gap_days=3)
        assert loops[["customer_id", "timestamp", "event"]].values.tolist() == [["c0", day(3.0), "zz_feature"], ["c1", day(4.0), "report"]]
        assert set(loops["kind"]) == {"return after gap"}
        assert loop_events_data(s, as_of=AS_OF, attempt_events=[], gap_days=3.01).empty


def _oracle(events: pd.DataFrame, company: set[str], gap_days: float, attempt_events: list[str], key: str) -> pd.DataFrame:
    """The loop events by their definition, row by row in pandas (naive oracle)."""
    ev = events.assign(source=events["source"].fillna(""))
    act = ev[~ev["source"].isin(company)].sort_values(["customer_id", "timestamp", "source", "event", "event_id"], kind="mergesort")
    prev = act.groupby("customer_id")["timestamp"].shift()
    gap = (act["timestamp"] - prev).dt.total_seconds() / 86400.0
    returns = act[prev.notna() & (gap >= gap_days)].assign(kind="return after gap", object="")
    att = ev[ev["event"].isin(attempt_events)].copy()
    att["object"] = [f"{key}=" + (json.loads(p).get(key, "") if p else "") for p in att["properties"]]
    att = att.sort_values(["customer_id", "event", "object", "timestamp", "event_id"], kind="mergesort")
    repeated = att[att.groupby(["customer_id", "event", "object"]).cumcount() >= 1].assign(kind="repeated attempt")
    cols = ["customer_id", "timestamp", "kind", "event", "object"]
    out = pd.concat([repeated[cols], returns[cols]], ignore_index=True)
    return out.sort_values(cols, kind="mergesort").reset_index(drop=True)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_loop_events_match_a_naive_oracle(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 400
    customers = [f"c{i}" for i in range(8)]
    ids = rng.permutation(n)  # event ids in no relation to time
    rows = [
        (str(rng.choice(customers)), float(rng.choice(np.arange(0, 40, 0.5))), str(rng.choice(["a", "b", "c"])),
         str(rng.choice(["web", "app", "email"])), f"e{ids[i]:04d}",
         {"k": str(rng.choice(["x", "y"])), "n": int(i)} if rng.random() < 0.8 else None)
        for i in range(n)
    ]
    events = pd.DataFrame(_event_frame(rows))
    cust = [{"customer_id": c, "segment": "SMB", "signup_at": day(0)} for c in customers]
    with memory_store(customers=cust, events=events) as s:
        company = set(sources_of(s, COMPANY_SOURCES))
        assert "email" in company
        got = loop_events_data(s, as_of=AS_OF, attempt_events=["a", "b"], gap_days=2.5, identity_keys=["k"])
        want = _oracle(events[events["timestamp"] <= AS_OF], company, 2.5, ["a", "b"], "k")
        assert (got["kind"] == "return after gap").sum() > 5
        assert (got["kind"] == "repeated attempt").sum() > 5
        pd.testing.assert_frame_equal(got.astype({"timestamp": want["timestamp"].dtype}), want, check_exact=True)


def test_the_key_sample_is_the_first_rows_in_customer_and_time_order() -> None:
    # 110 customers ("c000" ... "c109"), two "x" events each (days 1 and 2), c000 a third one (day 3): 221 rows.
    # The first 200 rows in (customer_id, timestamp, event_id) order end with c099's first event.
    cust = [{"customer_id": f"c{i:03d}", "segment": "SMB", "signup_at": day(0)} for i in range(110)]
    rows = []
    for i in range(110):
        for d in (1.0, 2.0) + ((3.0,) if i == 0 else ()):
            props = {"form": "f"}
            if i == 99 and d == 2.0:
                props["straddle"] = "s"  # row 201: not sampled
            if i >= 100:
                props["late"] = "l"  # rows 202-221: not sampled
            rows.append((f"c{i:03d}", d, "x", "web", f"e{i:03d}-{d}", props))
    with memory_store(customers=cust, events=_event_frame(rows)) as s:
        keys = attempt_keys_data(s, as_of=AS_OF)
        assert keys["key"].tolist() == ["form"]
        assert keys["rows_sampled"].tolist() == [KEY_SAMPLE_ROWS] == [200]


def test_the_loop_events_are_computed_once_per_cache() -> None:
    rows = [(f"c{i}", d, "login", "web", f"e{i}-{d}", None) for i in range(6) for d in (1.0, 20.0)]
    cust = [{"customer_id": f"c{i}", "segment": "SMB", "signup_at": day(0)} for i in range(6)]
    with memory_store(customers=cust, events=_event_frame(rows)) as s:
        scope = Scope.resolve(s, None, function="test", as_of=AS_OF)
        iv = pd.DataFrame({"customer_id": [f"c{i}" for i in range(6)], "stage_order": 0, "entered_at": day(0), "exited_at": pd.NaT})
        iv["exited_at"] = pd.to_datetime(iv["exited_at"], utc=True)  # NaT: still in the stage at as_of
        cache = ResultCache()
        first = loops_by_stage(s, scope, iv, None, 14.0, 0.8, cache=cache)
        second = loops_by_stage(s, scope, iv.assign(exited_at=day(10)), None, 14.0, 0.8, cache=cache)
        assert cache.computed["loop_events"] == 1
        assert first.sort_values("customer_id")["loops"].tolist() == [1] * 6  # each returns on day 20 after 19 days
        assert second.empty  # the returns fall after the intervals end
        pd.testing.assert_frame_equal(
            first.sort_values("customer_id").reset_index(drop=True),
            loops_by_stage(s, scope, iv, None, 14.0, 0.8).sort_values("customer_id").reset_index(drop=True),
        )


def test_gap_days_and_attempt_events_are_checked() -> None:
    with _store([("c0", 1.0, "x", {"a": 1})]) as s:
        with pytest.raises(ValueError, match="gap_days must be a positive number of days"):
            loop_events_data(s, as_of=AS_OF, gap_days=0)
        with pytest.raises(TypeError, match="attempt_events must be a list of event names"):
            loop_events_data(s, as_of=AS_OF, attempt_events="x")


def test_analytics_sdk_and_person_keys_do_not_hide_repeated_attempts() -> None:
    """Mixpanel-shaped events: a unique ``$insert_id`` per event and a per-person ``distinct_id`` on every event.

    Were either identifying, no two events would be the same action (``$insert_id``) and no action
    would be shared by five customers (``distinct_id``), so c0's second set-up of the bank step
    would not be found.
    """
    n = iter(range(1000))

    def props(step: str, customer: str) -> dict:
        return {"step": step, "$insert_id": f"ins-{next(n)}", "distinct_id": f"user-{customer}", "mp_lib": "web"}

    rows = [("c0", 1.0, "setup_step", props("bank", "c0")), ("c0", 1.5, "setup_step", props("bank", "c0"))]
    rows += [(f"c{i}", 1.0, "setup_step", props("bank", f"c{i}")) for i in range(1, 6)]
    with _store(rows) as s:
        rep = loop_events_data(s, as_of=AS_OF)
        rep = rep[rep["kind"] == "repeated attempt"]
        assert [(r.customer_id, r.object) for r in rep.itertuples()] == [("c0", "step=bank")]
        keys = attempt_keys_data(s, as_of=AS_OF).set_index("key")
        assert keys["identifies"].to_dict() == {"$insert_id": False, "distinct_id": False, "mp_lib": False, "step": True}
