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
