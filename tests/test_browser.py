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

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from _browser import (
    ROOT,
    SHOWN,
    USABLE,
    NetworkGuard,
    TimeToUsable,
    console_errors,
    kernel_rss_mb,
    new_page,
    record_time_to_usable,
)

from journeylib.reports.dashboard import (
    dashboard_processes,
    find_free_port,
    start_dashboard,
    stop_dashboard,
    wait_until_ready,
)
from journeylib.reports.runner import run_report

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(600)]  # the demo suite's run is slow on a busy machine

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
def report_run(store_db: Path, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Path:
    if TARGET.suite == "demo":  # the session's demo-suite run, shared with the report scan (tests/conftest.py)
        return Path(request.getfixturevalue("demo_suite_run"))
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
    # journeylib's page template links nothing beyond the server: the Content-Security-Policy has nothing to refuse
    # (a refusal would be a dependency on the network), and the console has no error
    refused = [text for kind, text in console if "Content Security Policy" in text]
    assert refused == []
    assert console_errors(console) == []


# -- the dashboards served together: landing page, every page widget-first, customer 360 --------------------
DASHBOARDS = sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb")) if TARGET.suite == "demo" else []


def _has_widget(name: str) -> bool:
    cells = json.loads((ROOT / "notebooks" / f"{name}.ipynb").read_text(encoding="utf-8"))["cells"]
    return any("dashboard-only" in c.get("metadata", {}).get("tags", []) for c in cells)


@dataclass(frozen=True)
class Suite:
    """One Voila server on the notebooks folder, its landing page reading the report run of this module."""

    url: str
    log: Path
    pid: int
    shots: Path


@pytest.fixture(scope="module")
def suite_server(store_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Suite]:
    if not DASHBOARDS:
        pytest.skip("the dashboards of notebooks/ are not in this checkout")
    folder = tmp_path_factory.mktemp("suite")
    # a quick report run (data health, smoke set) gives the landing page its headline numbers
    run = run_report({"name": "landing", "notebooks": [{"notebook": "00_data_health", "parameter_set": "smoke"}]}, db=store_db,
                     out=folder / "reports", notebooks_dir=TARGET.notebooks_dir, parameters_dir=TARGET.parameters_dir, execution_timeout=120)
    port = find_free_port()
    process = start_dashboard(
        TARGET.notebooks_dir, port=port, db=store_db, execution_timeout=120, log=folder / "voila.log", reports_dir=run.parent,
        max_kernels=0,  # the pages are visited one after another; the kernel count bound is tested in test_dashboard.py
        kernel_pool=1,  # as journeylib dashboard serves them: a page takes the warm kernel when it is ready
    )
    try:
        url = wait_until_ready(port, 60, process=process)
        shots = ROOT / "test-artifacts" / "dashboards"  # gitignored; pytest's tmp folders are rotated by every session
        shots.mkdir(parents=True, exist_ok=True)
        yield Suite(url, folder / "voila.log", process.pid, shots)
    finally:
        stop_dashboard(process)


def _guarded(browser: Any) -> tuple[Any, NetworkGuard, list[tuple[str, str]]]:
    guard = NetworkGuard(allow_loopback=True)
    console: list[tuple[str, str]] = []
    return new_page(browser, guard, console), guard, console


def _wait_usable(page: Any, suite: Suite, name: str, timeout_ms: int = 240_000) -> None:
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

    try:
        page.wait_for_function(USABLE if _has_widget(name) else SHOWN, timeout=timeout_ms)
    except PlaywrightTimeoutError:
        page.screenshot(path=str(suite.shots / f"{name}-failed.png"), full_page=True)
        tail = suite.log.read_text(errors="replace")[-3000:]
        pytest.fail(f"{name}: controls and charts not shown after {timeout_ms / 1000:.0f} s; Voila log tail:\n{tail}")


def _kernels_rss(suite: Suite) -> list[float]:
    return [round(kernel_rss_mb(pid), 1) for pid, _ in dashboard_processes(suite.pid) if kernel_rss_mb(pid) > 0]


def test_landing_page_lists_every_dashboard_with_headlines(browser: Any, suite_server: Suite, time_to_usable: TimeToUsable) -> None:
    page, guard, console = _guarded(browser)
    time_to_usable.open(page, suite_server.url, lambda: page.wait_for_selector(".journeylib-dashboard-card"), timeout_ms=30_000, notebook="landing")
    page.screenshot(path=str(suite_server.shots / "landing.png"), full_page=True)
    links = page.eval_on_selector_all(".journeylib-dashboard-link", "els => els.map(e => e.getAttribute('href'))")
    assert links == [f"/voila/render/{name}.ipynb" for name in DASHBOARDS]
    headlines = page.eval_on_selector_all(".journeylib-headlines li", "els => els.map(e => e.textContent)")
    assert headlines, "no headline number on the landing page"
    assert guard.blocked == []
    assert console_errors(console) == []
    assert len(_kernels_rss(suite_server)) <= 1, "the landing page started a kernel (beyond the one warm kernel)"
    page.close()


@pytest.mark.parametrize("name", DASHBOARDS)
def test_every_dashboard_shows_its_controls_first_with_no_error_or_outside_request(
    browser: Any, suite_server: Suite, name: str, time_to_usable: TimeToUsable
) -> None:
    page, guard, console = _guarded(browser)
    seconds = time_to_usable.open(page, f"{suite_server.url}voila/render/{name}.ipynb", lambda: _wait_usable(page, suite_server, name),
                                  timeout_ms=240_000, notebook=name)
    rss = _kernels_rss(suite_server)
    # merge the kernel's memory right after the page became usable into the same record
    record_time_to_usable(time_to_usable.test_id, seconds, notebook=name, kernel_rss_mb=max(rss, default=0.0), viewers=1)
    page.screenshot(path=str(suite_server.shots / f"{name}.png"))
    assert guard.blocked == [], f"{name} tried to leave 127.0.0.1: {guard.blocked}"
    assert all(urlparse(u).hostname == "127.0.0.1" or u.startswith(("data:", "blob:")) for u in guard.requests)
    assert console_errors(console) == [], console_errors(console)
    assert "Traceback" not in page.content()
    page.close()


def test_a_journey_map_pick_updates_every_chart_and_lists_its_customers(browser: Any, suite_server: Suite) -> None:
    page, guard, console = _guarded(browser)
    page.goto(f"{suite_server.url}voila/render/01_journey_map.ipynb", timeout=90_000)
    _wait_usable(page, suite_server, "01_journey_map")
    select = page.locator(".journeylib-journey-map .widget-dropdown select").first
    labels = [t.strip() for t in select.locator("option").all_inner_texts()]
    segment = next(label for label in labels if label != "all")
    select.select_option(label=segment)
    for area in (".journeylib-funnel", ".journeylib-flow"):
        page.wait_for_function(
            "([sel, seg]) => [...document.querySelectorAll(sel + ' svg text')].some(t => t.textContent.includes('— ' + seg))",
            arg=[area, segment], timeout=240_000,
        )
    page.locator(".journeylib-account-lists .journeylib-list-button").click()
    # the kernel may still be running the report sections below the widget: the click waits for the running cell
    page.wait_for_selector(".journeylib-accounts h4", timeout=240_000)
    heading = page.locator(".journeylib-accounts h4").inner_text()
    assert f"segment {segment}" in heading
    assert not heading.endswith(": 0"), heading  # the list starts on the stage that loses the most customers
    href = page.locator(".journeylib-accounts a.journeylib-csv").get_attribute("href")
    assert href is not None
    assert href.startswith("data:text/csv")
    page.locator(".journeylib-account-lists").scroll_into_view_if_needed()
    page.screenshot(path=str(suite_server.shots / "01_journey_map-segment-and-list.png"))
    assert guard.blocked == []
    assert console_errors(console) == []
    page.close()


def test_customer_360_shows_the_chosen_customer(browser: Any, suite_server: Suite, store_db: Path) -> None:
    from journeylib.store import Store

    people = Store(store_db, read_only=True).query("SELECT customer_id, name FROM customers WHERE name IS NOT NULL ORDER BY customer_id")
    first, second = people.iloc[3], people.iloc[17]
    page, guard, console = _guarded(browser)
    page.goto(f"{suite_server.url}voila/render/07_customer_360.ipynb?customer_id={first.customer_id}", timeout=90_000)
    _wait_usable(page, suite_server, "07_customer_360")
    page.wait_for_function("(n) => document.querySelector('.journeylib-customer-name')?.textContent === n", arg=str(first["name"]), timeout=60_000)
    search = page.locator(".journeylib-customer-search input")
    search.fill(f"{second['name']} · ")
    option = page.evaluate("() => [...document.querySelectorAll('datalist option')].map(o => o.value)")
    wanted = next(o for o in option if o.endswith(str(second.customer_id)))
    search.fill(wanted)
    search.press("Enter")
    page.wait_for_function("(n) => document.querySelector('.journeylib-customer-name')?.textContent === n", arg=str(second["name"]), timeout=240_000)
    page.wait_for_function(
        "(n) => [...document.querySelectorAll('.journeylib-customer-activity svg text')].some(t => t.textContent.includes(n))",
        arg=str(second["name"]), timeout=60_000,
    )
    page.screenshot(path=str(suite_server.shots / "07_customer_360-second.png"))
    assert guard.blocked == []
    assert console_errors(console) == []
    page.close()
