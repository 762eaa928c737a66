"""The persistent result store: keys, hits and misses, corruption, the size cap, and the dashboards that read it.

A report run and the dashboard kernels after it share heavy results through
``journeylib.cache.PersistentResults`` (``Journey.persisted`` /
``Journey.persisted_call``). What must hold: the same question in another
process is a hit; any change of the store's data, the definition, the scope,
an argument or the code misses; a torn file is recomputed with a warning; the
folder stays under its cap, the entries used longest ago going first.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import joblib
import nbformat
import numpy as np
import pandas as pd
import pytest
import yaml
from _builders import ROOT, day, event_rows, journey_definition, memory_store

import journeylib.cache
from journeylib.cache import (
    DEFAULT_RESULTS_MAX_BYTES,
    RESULTS_DIR_ENV,
    PersistentResults,
    ResultStoreWarning,
    key_value,
    results_dir_from_env,
)
from journeylib.context import Journey
from journeylib.exceptions import StatisticalWarning
from journeylib.journey import stages
from journeylib.scope import Scope
from journeylib.store import Store

DEF = journey_definition(
    {"Trial": "signup", "Setup": {"event": "setup", "within_days": 7}, "Value": {"event": "project", "min_count": 2}},
    conventions={"drop_after_days": 30},
)
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _tables() -> dict[str, pd.DataFrame]:
    # 4 customers, a and b SMB, c and d Ent; a, b, c set up; a reaches Value.
    customers = pd.DataFrame(
        {"customer_id": list("abcd"), "segment": ["SMB", "SMB", "Ent", "Ent"], "plan": ["free"] * 4, "signup_at": [day(0)] * 4}
    )
    events = event_rows(
        [("a", 1, "setup"), ("a", 2, "project"), ("a", 3, "project"), ("b", 2, "setup"), ("c", 3, "setup"), ("d", 2, "login")]
    )
    return {"customers": customers, "events": events}


@pytest.fixture
def results_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "results"
    monkeypatch.setenv(RESULTS_DIR_ENV, str(folder))
    return folder


@pytest.fixture
def store() -> Store:
    s = memory_store(**_tables())
    yield s
    s.close()


def _entries(folder: Path) -> list[Path]:
    return sorted(folder.glob("*/*.joblib"))


# -- the store on its own -----------------------------------------------------------------------


def test_miss_then_hit_reads_the_same_value_from_one_file(tmp_path: Path) -> None:
    results = PersistentResults(tmp_path)
    key = results.key({"function": "f", "n": 1})
    calls: list[int] = []
    frame = pd.DataFrame({"x": [1, 2, 3]})
    first = results.get(key, lambda: calls.append(1) or frame, label="f")
    again = PersistentResults(tmp_path).get(key, lambda: calls.append(1) or frame.iloc[:0], label="f")  # another "process"
    assert calls == [1]
    pd.testing.assert_frame_equal(first, frame)
    pd.testing.assert_frame_equal(again, frame)
    (entry,) = _entries(tmp_path)
    assert entry == tmp_path / key[:2] / f"{key}.joblib"
    assert results.misses["f"] == 1
    assert not list(tmp_path.rglob("*.tmp")), "no temporary file is left behind"


def test_the_key_changes_with_every_part_and_with_the_code_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    results = PersistentResults(tmp_path)
    base = {"function": "f", "frame": pd.DataFrame({"x": [1, 2]}), "n": 1}
    key = results.key(base)
    assert results.key(dict(base)) == key  # a function of the content
    assert results.key({**base, "frame": pd.DataFrame({"x": [1, 3]})}) != key
    assert results.key({**base, "n": 2}) != key
    assert results.key({**base, "function": "g"}) != key
    monkeypatch.setattr(journeylib.cache, "code_version", lambda: "another build of journeylib")
    assert results.key(base) != key


def test_a_file_argument_is_keyed_by_its_content(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("a: 1\n")
    first = joblib.hash(key_value(str(rules)))
    assert joblib.hash(key_value(rules)) == first  # str or Path: the same file
    rules.write_text("a: 2\n")
    assert joblib.hash(key_value(str(rules))) != first
    assert key_value("vader") == "vader"  # not a file: the text itself


def test_an_unreadable_entry_is_recomputed_replaced_and_warned_about(tmp_path: Path) -> None:
    results = PersistentResults(tmp_path)
    key = results.key({"function": "f"})
    results.get(key, lambda: 1, label="f")
    (entry,) = _entries(tmp_path)
    entry.write_bytes(entry.read_bytes()[:10])  # torn
    with pytest.warns(ResultStoreWarning, match=r"could not be read .*computing it again and replacing the file"):
        assert results.get(key, lambda: 2, label="f") == 2
    assert results.get(key, lambda: 3, label="f") == 2  # the replacement is read back
    joblib.dump([1, 2], entry)  # a readable file that is not an entry
    with pytest.warns(ResultStoreWarning, match="not a journeylib result entry"):
        assert results.get(key, lambda: 4, label="f") == 4


def test_a_result_that_cannot_be_written_is_returned_unkept(tmp_path: Path) -> None:
    results = PersistentResults(tmp_path)
    key = results.key({"function": "f"})
    with pytest.warns(ResultStoreWarning, match="could not be written"):
        value = results.get(key, lambda: (lambda: 1), label="f")  # a lambda does not pickle
    assert value() == 1
    assert _entries(tmp_path) == []
    assert not list(tmp_path.rglob("*.tmp"))


def test_a_failing_computation_keeps_nothing(tmp_path: Path) -> None:
    results = PersistentResults(tmp_path)
    key = results.key({"function": "f"})
    with pytest.raises(ZeroDivisionError):
        results.get(key, lambda: 1 / 0, label="f")
    assert _entries(tmp_path) == []


def test_warnings_of_the_computation_are_raised_again_on_a_hit(tmp_path: Path) -> None:
    def compute() -> int:
        warnings.warn("only 3 customers in the segment", StatisticalWarning, stacklevel=1)
        return 7

    key = PersistentResults(tmp_path).key({"function": "f"})
    with pytest.warns(StatisticalWarning, match="only 3 customers"):
        assert PersistentResults(tmp_path).get(key, compute, label="f") == 7
    with pytest.warns(StatisticalWarning, match="only 3 customers"):  # read from disk: the same caveat
        assert PersistentResults(tmp_path).get(key, lambda: 0, label="f") == 7


def test_the_size_cap_deletes_the_entries_used_longest_ago(tmp_path: Path) -> None:
    results = PersistentResults(tmp_path, max_bytes=10**9)
    keys = [results.key({"function": "f", "i": i}) for i in range(3)]
    for i, key in enumerate(keys):
        results.get(key, lambda: np.zeros(20_000), label="f")  # about 160 kB each
        os.utime(results.path(key), (1_000_000 + i, 1_000_000 + i))  # written in the order 0, 1, 2
    results.get(keys[0], lambda: None, label="f")  # a hit: 0 is now the most recently used
    one = results.path(keys[0]).stat().st_size
    results.max_bytes = 2 * one + one // 2  # room for two
    assert results.prune() == 1
    assert not results.path(keys[1]).exists()  # used longest ago
    assert results.path(keys[0]).exists()
    assert results.path(keys[2]).exists()
    assert results.size_bytes() <= results.max_bytes


def test_the_environment_sets_the_folder_the_cap_or_turns_it_off(tmp_path: Path) -> None:
    assert results_dir_from_env({}) == Path("~/.cache/journeylib/results").expanduser()
    assert results_dir_from_env({RESULTS_DIR_ENV: str(tmp_path)}) == tmp_path
    off = PersistentResults.from_env({RESULTS_DIR_ENV: "off"})
    assert not off.enabled
    calls: list[int] = []
    off.get("k", lambda: calls.append(1), label="f")
    off.get("k", lambda: calls.append(1), label="f")
    assert calls == [1, 1]
    assert PersistentResults.from_env({RESULTS_DIR_ENV: str(tmp_path)}).max_bytes == DEFAULT_RESULTS_MAX_BYTES == 2 * 1024**3
    assert PersistentResults.from_env({RESULTS_DIR_ENV: str(tmp_path), "JOURNEYLIB_RESULTS_MAX_BYTES": "1000"}).max_bytes == 1000
    with pytest.raises(ValueError, match=r"JOURNEYLIB_RESULTS_MAX_BYTES must be a whole number .*got '2GB'"):
        PersistentResults.from_env({RESULTS_DIR_ENV: str(tmp_path), "JOURNEYLIB_RESULTS_MAX_BYTES": "2GB"})


def test_listeners_hear_misses_only(tmp_path: Path) -> None:
    results = PersistentResults(tmp_path)
    heard: list[str] = []
    key = results.key({"function": "f"})
    with results.listen(heard.append):
        results.get(key, lambda: 1, label="f")
        results.get(key, lambda: 1, label="f")
    results.get(results.key({"function": "g"}), lambda: 1, label="g")  # after the block: not heard
    assert heard == ["f"]
    assert results.last_seconds("f") is not None


# -- through the analysis context ---------------------------------------------------------------


def test_persisted_answers_like_run_and_a_new_context_reads_it(store: Store, results_dir: Path) -> None:
    j = Journey(store, DEF, Scope.build(store))
    funnel = j.persisted(stages.funnel_data)
    pd.testing.assert_frame_equal(funnel, j.run(stages.funnel_data))
    assert funnel["reached"].tolist() == [4, 3, 1]  # Trial a-d, Setup a b c, Value a
    other = Journey(store, DEF, Scope.build(store))  # a new context: its own ResultCache, the same folder
    pd.testing.assert_frame_equal(other.persisted(stages.funnel_data), funnel)
    assert other.results.hits["journeylib.journey.stages.funnel_data"] == 1
    assert other.cache.computed["milestones"] == 0  # nothing computed


def test_a_change_of_argument_scope_definition_or_data_misses(store: Store, results_dir: Path) -> None:
    def misses(j: Journey, **kwargs: object) -> int:
        j.persisted(stages.funnel_data, **kwargs)
        return j.results.misses["journeylib.journey.stages.funnel_data"]

    assert misses(Journey(store, DEF, Scope.build(store))) == 1
    assert misses(Journey(store, DEF, Scope.build(store))) == 0  # the same question: a hit
    assert misses(Journey(store, DEF, Scope.build(store)), by="segment") == 1  # an argument
    assert misses(Journey(store, DEF, Scope.build(store, segment="SMB"))) == 1  # the scope
    longer = journey_definition({"Trial": "signup", "Setup": {"event": "setup", "within_days": 8},
                                 "Value": {"event": "project", "min_count": 2}}, conventions={"drop_after_days": 30})
    assert misses(Journey(store, longer, Scope.build(store))) == 1  # the definition
    store.insert("events", event_rows([("d", 4, "setup")]).assign(event_id="late-1"))
    changed = Journey(store, DEF, Scope.build(store))
    assert misses(changed) == 1  # the data
    assert changed.persisted(stages.funnel_data)["reached"].tolist() == [4, 4, 1]  # and the answer is the new one


def test_persisted_call_binds_defaults_and_chains_on_read_results(store: Store, results_dir: Path) -> None:
    j = Journey(store, DEF, Scope.build(store))
    funnel = j.persisted(stages.funnel_data)
    j.persisted_call(_share_reached, funnel)
    k = Journey(store, DEF, Scope.build(store))
    read = k.persisted(stages.funnel_data)  # from disk
    k.persisted_call(_share_reached, read, digits=2)  # the default spelled out, on the frame read back
    assert k.results.hits[f"{__name__}._share_reached"] == 1
    assert k.results.misses[f"{__name__}._share_reached"] == 0


def _share_reached(funnel: pd.DataFrame, *, digits: int = 2) -> pd.Series:
    return (funnel["reached"] / funnel["reached"].iloc[0]).round(digits)


def test_another_process_with_another_hash_seed_reads_the_entry(tmp_path: Path) -> None:
    db = tmp_path / "store.duckdb"
    with Store(db) as s:
        for name, frame in _tables().items():
            s.insert(name, frame)
    definition = tmp_path / "journey.yaml"
    definition.write_text(yaml.safe_dump(json.loads(DEF.model_dump_json(exclude_none=True))))
    script = (
        "import json, sys\n"
        "from journeylib.context import Journey\n"
        "from journeylib.journey import stages\n"
        "j = Journey.open(sys.argv[1], definition=sys.argv[2])\n"
        "j.persisted(stages.funnel_data, by='segment')\n"
        "print(json.dumps({'hits': sum(j.results.hits.values()), 'misses': sum(j.results.misses.values())}))\n"
    )
    counts = []
    for seed in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=seed, JOURNEYLIB_RESULTS_DIR=str(tmp_path / "results"))
        done = subprocess.run([sys.executable, "-c", script, str(db), str(definition)], env=env, capture_output=True, text=True,
                              check=True, timeout=120)
        counts.append(json.loads(done.stdout.strip().splitlines()[-1]))
    assert counts == [{"hits": 0, "misses": 1}, {"hits": 1, "misses": 0}]


def test_scored_tickets_persist_only_when_asked(store: Store, results_dir: Path) -> None:
    tickets = pd.DataFrame({
        "ticket_id": ["t1", "t2"], "customer_id": ["a", "b"], "user_id": [None, None], "created_at": [day(2), day(3)],
        "solved_at": [None, None], "channel": ["email", "email"], "subject": ["Thanks", "Broken"],
        "body": ["Great product, love it", "This is broken and I am angry"], "status": ["solved", "open"],
        "priority": ["normal", "high"], "satisfaction": [None, None],
    })  # fmt: skip
    store.insert("tickets", tickets)
    j = Journey(store, DEF, Scope.build(store))
    j.scored_tickets()
    assert _entries(results_dir) == []
    scored = j.with_scope(segment="SMB").scored_tickets(persist=True)
    assert len(_entries(results_dir)) == 1
    again = Journey(store, DEF, Scope.build(store)).scored_tickets(persist=True)
    pd.testing.assert_frame_equal(again, scored)


def test_first_view_notice_shows_only_when_something_computes(
    store: Store, results_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import journeylib.widgets.base as base

    shown: list[str] = []

    class Handle:
        def update(self, obj: object) -> None:
            shown.append(f"update:{obj.data}")  # type: ignore[attr-defined]

    def display(obj: object, display_id: bool = False) -> Handle:
        shown.append(obj.data)  # type: ignore[attr-defined]
        return Handle()

    monkeypatch.setattr(base, "display", display)
    j = Journey(store, DEF, Scope.build(store))
    with base.first_view_notice(j, "the test page"):
        j.persisted(stages.funnel_data)
        j.persisted(stages.funnel_data, by="segment")  # a second miss: still one notice
    assert len(shown) == 2
    assert "Computing the test page" in shown[0]
    assert "not been measured on this machine" in shown[0]
    assert shown[1] == "update:"  # removed when the view is ready
    assert j.results.last_seconds("first view: the test page") is not None
    shown.clear()
    k = Journey(store, DEF, Scope.build(store))
    with base.first_view_notice(k, "the test page"):
        k.persisted(stages.funnel_data)  # read from disk
    assert shown == []
    with base.first_view_notice(k, "the test page"):
        k.persisted(stages.funnel_data, by="plan")  # computes: the estimate is the last first view's
    assert "Last time this took about" in shown[0]


def test_the_worklist_widget_and_notebook_06_share_one_dry_run(demo_store: Path, results_dir: Path) -> None:
    from journeylib.actions import raise_alerts
    from journeylib.widgets import WorklistWidget

    rules = ROOT / "parameters" / "alerts" / "saas.yaml"
    definition = ROOT / "parameters" / "journeys" / "saas.yaml"
    with Journey.open(demo_store, definition=definition) as j:
        widget = WorklistWidget.from_journey(j, rules=str(rules))
    with Journey.open(demo_store, definition=definition) as k:  # the report's cell, in another kernel
        as_of = k.scope.as_of
        run = k.persisted_call(raise_alerts, k.store, str(rules), raised_at=as_of, as_of=as_of, dry_run=True, definition=k.definition)
        assert k.results.hits["journeylib.actions.alerts.raise_alerts"] == 1
    assert len(widget.details) == len(run.alerts)


# -- the dashboard notebooks ---------------------------------------------------------------------


def _dashboard_notebooks() -> list[Path]:
    return [p for p in NOTEBOOKS if any("dashboard-only" in c.metadata.get("tags", []) for c in nbformat.read(p, as_version=4).cells)]


@pytest.mark.parametrize("nb_path", _dashboard_notebooks(), ids=lambda p: p.stem)
def test_the_widget_cell_comes_right_after_the_configuration_cell(nb_path: Path) -> None:
    cells = nbformat.read(nb_path, as_version=4).cells
    config = next(i for i, c in enumerate(cells) if c.cell_type == "code" and "open_journey(" in c.source)
    following = cells[config + 1 :]
    dashboard = [c for c in following if "dashboard-only" in c.metadata.get("tags", [])]
    first_code = next(c for c in following if c.cell_type == "code")
    assert "dashboard-only" in first_code.metadata.get("tags", []), (
        f"{nb_path.name}: the first code cell after the configuration cell is not the dashboard-only widget cell; "
        "move the widget (and its markdown) up so the dashboard shows controls first"
    )
    leading = [c for c in following[: following.index(first_code) + 1]]
    assert all(c in dashboard for c in leading), f"{nb_path.name}: a report cell sits between the configuration and the widget"


@pytest.mark.parametrize("nb_path", _dashboard_notebooks(), ids=lambda p: p.stem)
def test_dashboards_run_with_the_demo_suites_parameter_values(nb_path: Path) -> None:
    # The dashboard runs a notebook with its defaults; the demo report (parameters/demo.yaml) with its parameter set.
    # Equal values give equal persistent keys, so the report run warms the dashboards.
    import papermill

    suite = yaml.safe_load((ROOT / "parameters" / "demo.yaml").read_text())
    (entry,) = [e for e in suite["notebooks"] if e["notebook"] == nb_path.stem] or [None]
    if entry is None:
        pytest.skip(f"{nb_path.stem} is not in the demo suite")
    values = {**(suite.get("shared") or {}), **yaml.safe_load((ROOT / "parameters" / nb_path.stem / f"{entry['parameter_set']}.yaml").read_text()),
              **(entry.get("parameters") or {})}  # fmt: skip
    declared = papermill.inspect_notebook(str(nb_path))
    defaults = {name: ast.literal_eval(p["default"]) for name, p in declared.items()}
    differ = {name: (defaults[name], value) for name, value in values.items() if name not in ("db", "output_dir") and defaults[name] != value}
    assert not differ, f"{nb_path.name}: defaults differ from the demo suite's parameter set (default, suite): {differ}"


def test_frames_and_dataclasses_are_keyed_by_content(tmp_path: Path) -> None:
    import dataclasses

    @dataclasses.dataclass(frozen=True)
    class Pair:
        frame: pd.DataFrame
        n: int

    results = PersistentResults(tmp_path)
    frame = pd.DataFrame({"name": ["a", "b"], "x": [1.0, 2.0]})
    key = results.key({"pair": Pair(frame, 1)})
    assert results.key({"pair": Pair(frame.copy(), 1)}) == key
    assert results.key({"pair": Pair(frame.assign(name=["a", "c"]), 1)}) != key  # one text cell
    assert results.key({"pair": Pair(frame.set_axis([5, 6]), 1)}) != key  # the index
    assert results.key({"pair": Pair(frame.astype({"x": "float32"}), 1)}) != key  # a dtype
    assert results.key({"pair": Pair(frame, 2)}) != key
    with_lists = pd.DataFrame({"reasons": [["a"], ["b", "c"]]})
    assert results.key({"f": with_lists}) == results.key({"f": with_lists.copy()})
    assert results.key({"f": with_lists.assign(reasons=[["a"], ["b", "d"]])}) != results.key({"f": with_lists})
    # long arrays in cells print abbreviated ("[   0    1 ... 4998 4999]"); pandas cannot hash them, and the
    # frame is then keyed by joblib (its pickle), never by that text
    import numpy as np

    first, second = np.arange(5000), np.arange(5000)
    second[2500] = -1
    assert str(first) == str(second)
    assert results.key({"f": pd.DataFrame({"v": [first]})}) != results.key({"f": pd.DataFrame({"v": [second]})})
    assert results.key({"f": pd.Series([first])}) != results.key({"f": pd.Series([second])})


def test_a_store_file_written_while_a_context_is_open_gets_a_new_data_version(tmp_path: Path, results_dir: Path) -> None:
    db = tmp_path / "store.duckdb"
    with Store(db) as s:
        for name, frame in _tables().items():
            s.insert(name, frame)
    definition = tmp_path / "journey.yaml"
    definition.write_text(yaml.safe_dump(json.loads(DEF.model_dump_json(exclude_none=True))))
    with Journey.open(db, definition=definition) as j:
        before = j.data_version()
        assert j.data_version() == before  # read once per state of the file
        assert j.persisted(stages.funnel_data)["reached"].tolist() == [4, 3, 1]
        with Store(db) as writer:  # the read-only context holds no lock between analyses
            writer.insert("events", event_rows([("d", 1, "setup")]).assign(event_id="late-1"))  # before the scope's as_of
        assert j.data_version() != before
        assert j.persisted(stages.funnel_data)["reached"].tolist() == [4, 4, 1]


def test_a_result_without_data_is_shared_by_every_store(store: Store, results_dir: Path) -> None:
    other = Store(":memory:")
    try:
        for name, frame in _tables().items():
            other.insert(name, frame.head(2))  # other data: another data version
        j, k = Journey(store, DEF, Scope.build(store)), Journey(other, DEF, Scope.build(other))
        assert j.data_version() != k.data_version()
        first = j.persisted_without_data(_share_reached, pd.DataFrame({"reached": [4, 2, 1]}))
        again = k.persisted_without_data(_share_reached, pd.DataFrame({"reached": [4, 2, 1]}), digits=2)
        pd.testing.assert_series_equal(first, again)
        assert k.results.hits[f"{__name__}._share_reached"] == 1  # read from disk, though the store differs
        assert k.results.misses[f"{__name__}._share_reached"] == 0
        k.persisted_without_data(_share_reached, pd.DataFrame({"reached": [4, 2, 2]}))  # other arguments: computed
        assert k.results.misses[f"{__name__}._share_reached"] == 1
        with pytest.raises(TypeError, match="depends on the store's data; use persisted_call"):
            k.persisted_without_data(_count_customers, other)
    finally:
        other.close()


def _count_customers(store: Store) -> int:
    return store.count("customers")
