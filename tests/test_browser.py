"""Real-browser tests: Debian Chromium driven by Playwright, with no way out to the network.

(a) A report's offline HTML, opened from disk with every request other than
``file:`` aborted, must make no external request and show its SVG charts.
(b) A Voila dashboard on a free 127.0.0.1 port must show its chart, recompute
it when the segment dropdown changes, and never reach beyond the loopback.

Both use ``notebooks/00_data_health.ipynb`` and the ``demo`` suite when they
exist, else the fixture notebook of ``tests/data/notebooks/``. Screenshots go
to each test's pytest tmp folder. The browser start-up (Debian's Chromium, the
network guard, skip or fail under ``CI``) is in ``_browser.py``; the dashboard
test records its time to usable in ``benchmarks/results/dashboard_ttu.json``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from _browser import ROOT, NetworkGuard, TimeToUsable, new_page

from journeylib.reports.dashboard import find_free_port, start_dashboard, stop_dashboard, wait_until_ready
from journeylib.reports.runner import run_report

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(300)]

REAL_NOTEBOOK = ROOT / "notebooks" / "00_data_health.ipynb"
FIXTURES = ROOT / "tests" / "data" / "notebooks"
SVG_TEXTS = "() => [...document.querySelectorAll('svg text')].map(t => t.textContent.trim()).filter(Boolean)"


@dataclass(frozen=True)
class Target:
    """What the browser tests look at: the real notebook when it exists, else the fixture."""

    notebooks_dir: Path
    parameters_dir: Path
    suite: str
    notebook: str
    static_title: str  # a chart title in the report HTML
    live_title: Callable[[str], str]  # the live chart's title for a segment
    source_marker: str  # a line of code that must not reach the browser


def _target() -> Target:
    if REAL_NOTEBOOK.is_file() and (ROOT / "parameters" / "demo.yaml").is_file():
        return Target(
            notebooks_dir=ROOT / "notebooks",
            parameters_dir=ROOT / "parameters",
            suite="demo",
            notebook="00_data_health",
            static_title="Weekly events by source",
            live_title=lambda seg: "Weekly events by source" if seg == "all" else f"Weekly events by source — {seg}",
            source_marker="journeylib.notebook.open_journey(",
        )
    return Target(
        notebooks_dir=FIXTURES,
        parameters_dir=FIXTURES / "parameters",
        suite="fixture",
        notebook="ok_report",
        static_title="Customers by segment: all",
        live_title=lambda seg: f"Customers by segment: {seg}",
        source_marker="resolve_db_path(db)",
    )


TARGET = _target()


@pytest.fixture(scope="module")
def store_db(demo_store: Path) -> Path:
    """The session's synthetic store (root conftest.py)."""
    return Path(demo_store)


@pytest.fixture(scope="module")
def report_run(store_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return run_report(
        TARGET.suite,
        db=store_db,
        out=tmp_path_factory.mktemp("reports"),
        notebooks_dir=TARGET.notebooks_dir,
        parameters_dir=TARGET.parameters_dir,
        execution_timeout=120,
    )


def test_offline_report_html_renders_with_the_network_cut(browser: Any, report_run: Path, tmp_path: Path) -> None:
    html = report_run / TARGET.notebook / f"{TARGET.notebook}.html"
    guard = NetworkGuard(allow_loopback=False)
    console: list[tuple[str, str]] = []
    page = new_page(browser, guard, console)
    page.goto(html.as_uri(), wait_until="load")
    page.screenshot(path=str(tmp_path / "report.png"), full_page=True)

    assert guard.blocked == [], f"the report asked the network for {guard.blocked}"
    assert all(url.startswith("file:") for url in guard.requests), guard.requests
    charts = page.evaluate(
        """() => [...document.querySelectorAll('svg')]
             .filter(s => s.getBoundingClientRect().width > 50)
             .map(s => [...s.querySelectorAll('text')].map(t => t.textContent.trim()).filter(Boolean).length)"""
    )
    assert charts, "no SVG chart on the page"
    assert all(n > 0 for n in charts), f"SVG charts without text: {charts}"
    assert html.read_text(encoding="utf-8").count("<svg") == len(charts)
    assert any(text.startswith(TARGET.static_title) for text in page.evaluate(SVG_TEXTS))
    assert TARGET.source_marker not in page.content()
    errors = [text for kind, text in console if kind in ("error", "pageerror")]
    assert errors == [], errors

    # The run's index page is offline too, and its links lead to files that exist.
    page.goto((report_run / "index.html").as_uri(), wait_until="load")
    hrefs = page.evaluate("() => [...document.querySelectorAll('a[href]')].map(a => a.href)")
    page.screenshot(path=str(tmp_path / "index.png"), full_page=True)
    assert guard.blocked == []
    local = [urlparse(h) for h in hrefs if h.startswith("file:")]
    assert local
    assert all(Path(u.path).exists() for u in local)


@pytest.fixture
def dashboard(store_db: Path, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    port = find_free_port()
    log = tmp_path / "voila.log"
    process = start_dashboard(
        TARGET.notebooks_dir, port=port, db=store_db, notebook=TARGET.notebook, execution_timeout=120, log=log
    )
    try:
        yield wait_until_ready(port, 60, process=process), log
    finally:
        stop_dashboard(process)


def _wait_for_text(page: Any, text: str, timeout_ms: int, *, what: str, log: Path, shot: Path) -> None:
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

    try:
        page.wait_for_function(
            "(want) => [...document.querySelectorAll('.journeylib-live svg text')].some(t => t.textContent.trim() === want)",
            arg=text,
            timeout=timeout_ms,
        )
    except PlaywrightTimeoutError:
        page.screenshot(path=str(shot), full_page=True)
        tail = log.read_text(errors="replace")[-3000:] if log.exists() else "(no log)"
        pytest.fail(
            f"{what}: no chart titled {text!r} after {timeout_ms / 1000:.0f} s; chart texts seen: "
            f"{page.evaluate(SVG_TEXTS)[:20]}; screenshot {shot}; Voila log tail:\n{tail}"
        )


def test_voila_dashboard_recomputes_on_dropdown_and_stays_on_loopback(
    browser: Any, dashboard: tuple[str, Path], tmp_path: Path, time_to_usable: TimeToUsable
) -> None:
    url, log = dashboard
    guard = NetworkGuard(allow_loopback=True)
    console: list[tuple[str, str]] = []
    page = new_page(browser, guard, console)
    first = TARGET.live_title("all")
    time_to_usable.open(
        page,
        url,
        lambda: _wait_for_text(page, first, 90_000, what="initial page", log=log, shot=tmp_path / "voila-failed.png"),
        timeout_ms=90_000,
        notebook=TARGET.notebook,
    )
    select = page.locator(".widget-dropdown select").first
    select.scroll_into_view_if_needed()  # Voila scrolls inside its own container: full_page is not enough
    page.screenshot(path=str(tmp_path / "voila-initial.png"))

    labels = [label.strip() for label in select.locator("option").all_inner_texts()]
    segment = next((label for label in labels if label != "all"), None)
    assert segment is not None, f"the segment dropdown offers only {labels}"
    select.select_option(label=segment)
    _wait_for_text(
        page,
        TARGET.live_title(segment),
        30_000,
        what=f"after picking {segment}",
        log=log,
        shot=tmp_path / "voila-failed.png",
    )
    select.scroll_into_view_if_needed()
    page.screenshot(path=str(tmp_path / "voila-changed.png"))

    assert guard.blocked == [], f"the dashboard tried to leave 127.0.0.1: {guard.blocked}"
    assert all(urlparse(u).hostname == "127.0.0.1" or u.startswith(("data:", "blob:")) for u in guard.requests)
    assert TARGET.source_marker not in page.content(), "notebook source reached the browser"
    # The Content-Security-Policy keeps Voila's page from even trying its Font Awesome CDN links;
    # anything else it refused would be a dependency on the network.
    refused = [text for kind, text in console if "Content Security Policy" in text]
    assert all("fontawesome" in text for text in refused), refused
