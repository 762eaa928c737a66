"""The cheaper mechanisms of the 01 journey map at scale give the results of the plain ones.

* Loop events: the attempt types and each customer's repeated actions come from one count per
  customer and action; the second statement reads properties again only for those customers'
  events of those names (``journeylib.journey.loops``).
* Emotion cues: an ASCII text is searched in lower case by the cue patterns without
  ``re.IGNORECASE`` (``journeylib.voice.sentiment``), with the same matches.
* Friction keeps the times of its exit rules' conditions in the cache, not the milestone frames
  they come from (``journeylib.journey.friction``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from _builders import day, memory_store

from journeylib.cache import ResultCache
from journeylib.config.journey import JourneyDefinition
from journeylib.journey.friction import friction_tests_data
from journeylib.journey.loops import COMPANY_SOURCES, loop_events_data
from journeylib.store import Store
from journeylib.store.categories import sources_of
from journeylib.voice import sentiment

AS_OF = day(40)


# -- loop events: attempt types found from the data -------------------------------------------------
def _world(seed: int) -> tuple[list[dict[str, Any]], pd.DataFrame]:
    """Customers and events where some actions are done once by most customers (attempt types) and some are not."""
    rng = np.random.default_rng(seed)
    customers = [f"c{i:02d}" for i in range(30)]
    rows: list[tuple[str, float, str, dict[str, Any] | None]] = []
    n = 0
    for c in customers:
        # "setup" per step: done once by most customers, twice or three times by a few (attempt types)
        for step in ("bank", "users", "sso"):
            for _ in range(int(rng.choice([1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 3]))):
                rows.append((c, float(rng.choice(np.arange(0, 40, 0.5))), "setup", {"k": step, "try": int(n)}))
                n += 1
        # "report": repeated by most customers (not an attempt type); "invite" without properties, once or twice
        for _ in range(int(rng.integers(2, 5))):
            rows.append((c, float(rng.choice(np.arange(0, 40, 0.5))), "report", {"k": "weekly"}))
        for _ in range(int(rng.choice([1, 1, 1, 1, 1, 1, 2]))):
            rows.append((c, float(rng.choice(np.arange(0, 40, 0.5))), "invite", None))
    ids = rng.permutation(len(rows))  # event ids in no relation to time
    events = pd.DataFrame(
        [{"event_id": f"e{ids[i]:04d}", "customer_id": c, "timestamp": day(d), "event": ev, "source": "web",
          "properties": json.dumps(p) if p is not None else None} for i, (c, d, ev, p) in enumerate(rows)]
    )
    cust = [{"customer_id": c, "segment": "SMB", "signup_at": day(0)} for c in customers]
    return cust, events


def _repeated_oracle(events: pd.DataFrame, key: str, once_share: float = 0.8) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The repeated attempts by their definition in pandas, and the (customer, event, object) groups done twice or more."""
    ev = events.copy()
    ev["object"] = [f"{key}=" + str(json.loads(p).get(key, "")) if p else f"{key}=" for p in ev["properties"]]
    n = ev.groupby(["customer_id", "event", "object"]).size().rename("n").reset_index()
    per_action = n.groupby(["event", "object"])["n"].agg(once=lambda s: (s == 1).mean(), customers="size").reset_index()
    types = per_action[(per_action["once"] >= once_share) & (per_action["customers"] >= 5)][["event", "object"]]
    groups = n[n["n"] >= 2].merge(types, on=["event", "object"])[["customer_id", "event", "object"]]
    att = ev.merge(types, on=["event", "object"]).sort_values(["customer_id", "event", "object", "timestamp", "event_id"], kind="mergesort")
    repeated = att[att.groupby(["customer_id", "event", "object"]).cumcount() >= 1].assign(kind="repeated attempt")
    cols = ["customer_id", "timestamp", "kind", "event", "object"]
    return repeated[cols].sort_values(cols, kind="mergesort").reset_index(drop=True), groups


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_repeated_attempts_of_the_attempt_types_found_match_a_naive_oracle(seed: int) -> None:
    cust, events = _world(seed)
    with memory_store(customers=cust, events=events) as s:
        got = loop_events_data(s, as_of=AS_OF, identity_keys=["k"])
        got = got[got["kind"] == "repeated attempt"].reset_index(drop=True)
        want, _ = _repeated_oracle(events, "k")
        assert len(want) >= 3
        assert set(want["event"]) <= {"setup", "invite"}  # "report" is repeated by most customers: not an attempt type
        pd.testing.assert_frame_equal(got.astype({"timestamp": want["timestamp"].dtype}), want, check_exact=True)


def test_the_second_statement_reads_only_the_repeated_actions(monkeypatch: pytest.MonkeyPatch) -> None:
    cust, events = _world(0)
    frames: list[dict[str, pd.DataFrame]] = []
    query = Store.query

    def spy(self: Store, sql: str, params: Any = None, **named: pd.DataFrame) -> pd.DataFrame:
        frames.append(dict(named))
        return query(self, sql, params, **named)

    with memory_store(customers=cust, events=events) as s:
        monkeypatch.setattr(Store, "query", spy)
        loop_events_data(s, as_of=AS_OF, identity_keys=["k"])
    _, groups = _repeated_oracle(events, "k")
    given = [f["_jl_repeated"] for f in frames if "_jl_repeated" in f]
    assert len(given) == 1  # the loop statement gets the repeated actions, not every action of the attempt types
    got = given[0].rename(columns={"p": "object"}).sort_values(["customer_id", "event", "object"]).reset_index(drop=True)
    want = groups.sort_values(["customer_id", "event", "object"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(got, want, check_dtype=False)


def test_named_attempt_events_and_returns_are_unchanged() -> None:
    cust, events = _world(1)
    with memory_store(customers=cust, events=events) as s:
        company = set(sources_of(s, COMPANY_SOURCES))
        assert "web" not in company
        got = loop_events_data(s, as_of=AS_OF, attempt_events=["report"], identity_keys=["k"])
        rep = got[got["kind"] == "repeated attempt"]
        per = events[events["event"] == "report"].groupby("customer_id").size()
        assert len(rep) == int((per - 1).sum())  # every report after a customer's first is a repeat


# -- emotion cues: ASCII texts searched in lower case -----------------------------------------------
TEXTS = [
    "Still broken after 3 days. Unacceptable.",
    "STILL BROKEN AFTER 3 DAYS. UNACCEPTABLE!!",
    "sTiLl WaItInG for an answer, Nobody Has Replied",
    "Great, ANOTHER outage. Thanks for nothing.",
    "I am NOT HAPPY with this. Not Great either.",
    "How Do I add a guest? Not Sure where to look.",
    "Thanks! Love how it Works Great now, much Better.",
    "not great, never Smooth, isn't Painless",
    "Works great \u212a",  # the Kelvin sign: a case variant of k outside ASCII (the text is not ASCII)
    "\u017ftill broken",  # the long s matches "s" case-insensitively
    "STILL BROKEN \U0001f620",
    "Ich bin NICHT zufrieden: caf\u00e9 broken AGAIN",
    "Just What We Needed... yeah RIGHT. 'Fixed' they said.",
    "JUST SIGNED UP, any pointers? Is there a way to do this?",
    "",
]


def _plain_cue_scores(text: str) -> tuple[dict[str, float], list[str]]:
    """The cue sums and names with the case-insensitive patterns only (the reference)."""
    sums = dict.fromkeys(sentiment.EMOTIONS[:3], 0.0)
    fired = []
    for emotion, groups in sentiment.EMOTION_CUES.items():
        for name, weight, pattern in groups:
            if sentiment._matches(pattern, text, negatable=emotion == "satisfaction"):
                sums[emotion] += weight
                fired.append(f"{emotion}: {name}")
    return sums, fired


@pytest.mark.parametrize("text", TEXTS)
def test_cue_scores_equal_the_case_insensitive_patterns(text: str) -> None:
    sums, fired, _ = sentiment._cue_scores(text)
    assert (sums, fired) == _plain_cue_scores(text)


def test_cue_scores_equal_on_random_mixed_case_texts() -> None:
    rng = np.random.default_rng(0)
    base = [t for t in TEXTS if t] + ["thank you, appreciate it, KUDOS", "We keep on failing, it keeps crashing", "escalate or CANCEL"]
    for _ in range(300):
        text = str(rng.choice(base))
        flips = rng.random(len(text)) < 0.4
        mixed = "".join(ch.swapcase() if f else ch for ch, f in zip(text, flips, strict=True))
        sums, fired, _ = sentiment._cue_scores(mixed)
        assert (sums, fired) == _plain_cue_scores(mixed), mixed


def test_ascii_texts_are_searched_in_lower_case(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str | None] = []
    matches = sentiment._matches

    def spy(pattern: re.Pattern[str], text: str, *, negatable: bool, searched: str | None = None) -> bool:
        seen.append(searched)
        return matches(pattern, text, negatable=negatable, searched=searched)

    monkeypatch.setattr(sentiment, "_matches", spy)
    n_cues = sum(len(groups) for groups in sentiment.EMOTION_CUES.values())
    assert len(sentiment._ASCII_CUES) == n_cues  # every cue pattern has its lower-case copy
    sentiment._cue_scores("STILL Broken")
    assert seen == ["still broken"] * n_cues
    seen.clear()
    sentiment._cue_scores("\u017ftill broken")  # not ASCII: the case-insensitive patterns
    assert seen == [None] * n_cues


@pytest.mark.parametrize(
    ("source", "fast"),
    [
        (r"\bstill\b", True),
        (r"\bnot\B\s+\w", True),
        (r"\bI am\b", False),  # an upper-case letter never matches a lower-cased text
        (r"\\A", False),  # an escaped backslash, then an upper-case letter
        (r"(?-i:abc)", False),  # a case-sensitive group
        (r"\u212a", False),  # an escape naming the Kelvin sign
        (r"\x4b", False),
        (r"\N{KELVIN SIGN}", False),
        (r"(a)\1", False),  # a back reference
        ("\u017f", False),  # a cased non-ASCII character
        ("[\U0001f620\U0001f621]", True),  # emoji have no case
    ],
)
def test_a_pattern_gets_a_lower_case_copy_only_when_it_matches_the_same(source: str, fast: bool) -> None:
    got = sentiment._ascii_lower_case_pattern(re.compile(source, re.IGNORECASE))
    assert (got is not None) is fast
    if got is not None:
        assert not got.flags & re.IGNORECASE
    assert sentiment._ascii_lower_case_pattern(re.compile(r"\bstill\b")) is None  # not case-insensitive: nothing to do


# -- friction: the conditions' times, not their frames, in the cache ------------------------------------
def test_friction_keeps_the_condition_times_not_the_condition_frames(demo_store: Path) -> None:
    definition = JourneyDefinition.load(Path(__file__).resolve().parents[1] / "parameters" / "journeys" / "saas.yaml")
    options: dict[str, Any] = {"definition": definition, "n_boot": 50, "min_customers": 5}
    with Store(demo_store, read_only=True) as s:
        cache = ResultCache()
        first = friction_tests_data(s, cache=cache, **options)
        assert cache.computed["milestones"] == 1  # the definition's frame only: no frame of a condition is kept
        n_times = cache.computed["condition_times"]
        assert n_times >= 2  # the conditions of signup (one frame) and at least one of a previous stage
        kept = [v for (kind, _), v in cache._results.items() if kind == "condition_times"]
        assert all(isinstance(t, pd.Series) and t.name == "met_at" for times in kept for t in times)
        segment = str(first.loc[first["group"] != "all", "group"].iloc[0])
        friction_tests_data(s, cache=cache, segment=segment, **options)  # another group: nothing computed again
        assert (cache.computed["milestones"], cache.computed["condition_times"]) == (1, n_times)
        pd.testing.assert_frame_equal(first, friction_tests_data(s, **options), check_exact=True)  # without a cache
