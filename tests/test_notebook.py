"""Tests of journeylib.notebook: render modes, Voila detection, URL parameters."""

from __future__ import annotations

import altair as alt
import pytest

from journeylib import notebook


@pytest.fixture
def restore_renderer(monkeypatch: pytest.MonkeyPatch):
    for name in ("REPORT_CHART_MODE", "SERVER_SOFTWARE", "QUERY_STRING"):
        monkeypatch.delenv(name, raising=False)
    active, options = alt.renderers.active, dict(alt.renderers.options)
    yield
    alt.renderers.enable(active, **options)


def test_setup_altair_static_by_default(restore_renderer) -> None:
    assert notebook.setup_altair() == "static"
    assert alt.renderers.active == "svg"


def test_setup_altair_dashboard_under_voila(restore_renderer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SERVER_SOFTWARE", "voila/0.5.13")
    assert notebook.in_voila()
    assert notebook.setup_altair() == "dashboard"
    # displayed charts stay kernel-rendered SVG: only widget charts load JavaScript, inlined (offline)
    assert alt.renderers.active == "svg"
    bundle = alt.JupyterChart._esm
    assert isinstance(bundle, str)
    assert "https://" not in bundle[:2000]
    assert len(bundle) > 100_000


def test_setup_altair_env_and_argument_win(restore_renderer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SERVER_SOFTWARE", "voila/0.5.13")
    monkeypatch.setenv("REPORT_CHART_MODE", "static")
    assert notebook.setup_altair() == "static"
    assert notebook.setup_altair("dashboard") == "dashboard"


def test_setup_altair_rejects_unknown_modes(restore_renderer, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="mode='interactive' is not a chart mode; allowed: static, dashboard"):
        notebook.setup_altair("interactive")
    monkeypatch.setenv("REPORT_CHART_MODE", "png")
    with pytest.raises(ValueError, match="REPORT_CHART_MODE='png'"):
        notebook.setup_altair()


def test_query_parameters(monkeypatch: pytest.MonkeyPatch) -> None:
    defaults = {"segment": "all", "sample_n": 0, "ratio": 0.5, "flag": False, "as_of": ""}
    got = notebook.query_parameters(defaults, query_string="segment=SMB&sample_n=50&ratio=0.25&flag=true&db=/etc/passwd")
    assert got == {
        "segment": "SMB",
        "sample_n": 50,
        "ratio": 0.25,
        "flag": True,
        "as_of": "",
    }  # db is not a key: ignored
    assert defaults["segment"] == "all"  # not mutated
    with pytest.raises(ValueError, match="URL parameter sample_n='lots' is not a whole number"):
        notebook.query_parameters(defaults, query_string="sample_n=lots")
    # outside Voila the environment's query is ignored: papermill-injected values win
    monkeypatch.delenv("SERVER_SOFTWARE", raising=False)
    monkeypatch.setenv("QUERY_STRING", "segment=SMB")
    assert notebook.query_parameters(defaults) == defaults
    monkeypatch.setenv("SERVER_SOFTWARE", "voila/0.5.13")
    assert notebook.query_parameters(defaults)["segment"] == "SMB"


# -- sections that cannot compute, and their notes ------------------------------------------------


@pytest.fixture
def fresh_notes():
    notebook.clear_notes()
    yield
    notebook.clear_notes()


def test_section_turns_an_empty_result_into_a_recorded_note(fresh_notes, capsys: pytest.CaptureFixture[str]) -> None:
    from journeylib.exceptions import EmptyResultError

    with notebook.section("Retention of paying customers") as part:
        raise EmptyResultError("no cohort by segment has 30+ converted customers; lower min_support")
    assert part.computed is False
    assert part.note == "No cohort by segment has 30+ converted customers; lower min_support."
    assert notebook.notes() == [
        {
            "section": "Retention of paying customers",
            "status": "skipped",
            "error": "EmptyResultError",
            "message": "No cohort by segment has 30+ converted customers; lower min_support.",
        }
    ]
    shown = capsys.readouterr().out  # outside a kernel IPython's display prints the Markdown's text form
    assert "Retention of paying customers" in shown
    assert "Not computed: No cohort by segment has 30+ converted customers" in shown


def test_a_section_note_drops_the_code_name_that_starts_the_message(fresh_notes) -> None:
    from journeylib.exceptions import EmptyResultError

    with notebook.section("Out-of-time backtest") as part:
        raise EmptyResultError("backtest_data: only 3 churners in the test period;\n at least 10 are needed")
    assert part.note == "Only 3 churners in the test period; at least 10 are needed."
    with notebook.section("Voice") as plain:
        raise EmptyResultError("Note: no tickets in this period")
    assert plain.note == "Note: no tickets in this period."


def test_section_catches_a_scope_error_but_nothing_else(fresh_notes) -> None:
    from journeylib.exceptions import ConfigError, ScopeError

    with notebook.section("Segment") as part:
        raise ScopeError("segment 'Gold' does not exist; known: SMB, Enterprise")
    assert not part.computed
    assert [n["error"] for n in notebook.notes()] == ["ScopeError"]
    # a wrong configuration, a programming error or any other failure still stops the notebook, unrecorded
    with pytest.raises(ConfigError), notebook.section("Config"):
        raise ConfigError(["stages[0].rule: unknown key 'evnt'"])
    with pytest.raises(KeyError), notebook.section("Bug"):
        raise KeyError("conversion_rate")
    with pytest.raises(ValueError, match="plain"), notebook.section("Value"):
        raise ValueError("plain")
    assert [n["section"] for n in notebook.notes()] == ["Segment"]


def test_a_section_that_computes_records_nothing_and_a_rerun_replaces_its_note(fresh_notes) -> None:
    from journeylib.exceptions import EmptyResultError

    with notebook.section("Flow") as part:
        value = 3
    assert part.computed
    assert value == 3
    assert notebook.notes() == []
    with notebook.section("Flow"):
        raise EmptyResultError("nobody met the stage")
    assert len(notebook.notes()) == 1
    with notebook.section("Flow") as again:  # the cell re-run on other data now computes
        pass
    assert again.computed
    assert notebook.notes() == []
    # a later block of a skipped-then-entered section fails again: one note, the latest message
    with notebook.section("Drivers") as drivers:
        raise EmptyResultError("first")
    with drivers:
        raise EmptyResultError("second")
    assert [(n["section"], n["message"]) for n in notebook.notes()] == [("Drivers", "Second.")]
    with pytest.raises(ValueError, match="title must be a non-empty string"):
        notebook.section("  ")


def test_notes_are_json_ready_copies(fresh_notes) -> None:
    import json

    from journeylib.reports.artifacts import to_jsonable

    notebook.show_note("Heads-up", "Two stages are free-order.")
    got = notebook.notes()
    got[0]["message"] = "changed"
    assert notebook.notes()[0]["message"] == "Two stages are free-order."
    assert json.loads(json.dumps(to_jsonable(notebook.notes()))) == notebook.notes()


def test_show_absent_events_notes_only_when_names_are_missing(fresh_notes) -> None:
    import pandas as pd

    columns = ["event", "used_by", "closest", "message"]
    notebook.show_absent_events(pd.DataFrame(columns=columns))
    assert notebook.notes() == []
    absent = pd.DataFrame(
        [
            ["employe_added", "Set Up", "employee_added", "event 'employe_added' (used by Set Up) is not in the store"],
            ["renewal", "outcome:renewal", "", "event 'renewal' (used by outcome:renewal) is not in the store."],
        ],
        columns=columns,
    )
    notebook.show_absent_events(absent)
    (note,) = notebook.notes()
    assert note["section"] == notebook.ABSENT_EVENTS_TITLE
    assert note["status"] == "note"
    assert note["message"].startswith("The journey definition uses 2 event names the store does not have")
    assert "Event 'employe_added' (used by Set Up) is not in the store. Event 'renewal'" in note["message"]
    with pytest.raises(ValueError, match="no 'message' column"):
        notebook.show_absent_events(pd.DataFrame({"event": ["x"]}))


# -- warnings raised in report cells become notes ------------------------------------------------


def test_captured_warnings_are_recorded_in_words_once_with_a_count(
    fresh_notes, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import warnings

    from journeylib.exceptions import DataQualityWarning, EmptyResultError, StatisticalWarning

    monkeypatch.setattr(warnings, "showwarning", warnings.showwarning)  # restored after the test
    notebook.capture_warnings()
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("1 cohort has fewer than 30 customers", StatisticalWarning, stacklevel=1)
        warnings.warn("1 cohort has fewer than 30 customers", StatisticalWarning, stacklevel=1)
        with notebook.section("Retention") as part:
            warnings.warn("4 rows have no timestamp", DataQualityWarning, stacklevel=1)
            raise EmptyResultError("no cohort has 30+ converted customers")
        warnings.warn("a library said so", FutureWarning, stacklevel=1)
    assert part.computed is False
    assert notebook.warning_notes() == [
        {"section": "Statistical caveat", "status": "warning", "error": "StatisticalWarning",
         "message": "1 cohort has fewer than 30 customers.", "count": 2},
        {"section": "Retention", "status": "warning", "error": "DataQualityWarning",
         "message": "4 rows have no timestamp.", "count": 1},
        {"section": "Caveat", "status": "warning", "error": "FutureWarning", "message": "A library said so.", "count": 1},
    ]  # fmt: skip
    # the section notes keep their own contract: only sections not computed and remarks
    assert [n["section"] for n in notebook.notes()] == ["Retention"]
    printed = capsys.readouterr()
    assert "Warning:" not in printed.err + printed.out  # nothing printed with a file path and line
    assert ".py:" not in printed.err
    notebook.clear_notes()
    assert notebook.warning_notes() == []
