"""Start-up shared by the real-browser tests: Debian Chromium under Playwright, cut off from the network.

Chromium is ``/usr/bin/chromium`` (apt); never ``playwright install``. Without it
(or without the playwright package) a browser test is skipped, except under
``CI`` where that is a failure. Every page gets a :class:`NetworkGuard` that lets
through only local URLs, and :class:`TimeToUsable` measures how long a Voila
page takes from navigation until the test's readiness condition holds, merging
the figure into ``benchmarks/results/dashboard_ttu.json`` under the test's id.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlparse

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
# No background traffic (updates, sync, QUIC probes), and no host but 127.0.0.1 can even be
# resolved: a page that depends on the network fails in the test instead of quietly fetching.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]
#: Where the Voila browser tests write their time-to-usable figures, one entry per test id.
TTU_RESULTS = ROOT / "benchmarks" / "results" / "dashboard_ttu.json"


def in_ci() -> bool:
    """Return True when the ``CI`` environment variable is set to something other than empty/0/false/no."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def missing(what: str) -> NoReturn:
    """Skip the test because *what* is missing, or fail it under ``CI``, where the browser tests must run."""
    if in_ci():
        pytest.fail(f"{what}; CI is set, so the browser tests must run: install it (apt-get install -y chromium)")
    pytest.skip(f"{what}; install Debian's chromium (apt-get install -y chromium) to run the browser tests")


@contextmanager
def chromium() -> Iterator[Any]:
    """Launch Debian's Chromium headless through Playwright with :data:`CHROMIUM_ARGS`; close it on exit.

    Skips (or fails under ``CI``) when ``/usr/bin/chromium`` or the playwright
    package is missing.
    """
    if not CHROMIUM.exists():
        missing(f"{CHROMIUM} is missing")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover - playwright is a test dependency
        missing("the playwright package is missing")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class NetworkGuard:
    """Route handler: lets through data:/blob: (file: if allowed, 127.0.0.1 if allowed), aborts and records the rest."""

    allow_loopback: bool
    allow_files: bool = True
    requests: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)

    def __call__(self, route: Any) -> None:
        url = route.request.url
        self.requests.append(url)
        local = url.startswith(("data:", "blob:")) or (self.allow_files and url.startswith("file:"))
        if local or (self.allow_loopback and urlparse(url).hostname == "127.0.0.1"):
            route.continue_()
        else:
            self.blocked.append(url)
            route.abort()


def new_page(
    browser: Any,
    guard: NetworkGuard,
    console: list[tuple[str, str]] | None = None,
    *,
    width: int = 1200,
    height: int = 1000,
) -> Any:
    """Open a page of *width* x *height* whose every request passes *guard*; console messages go to *console*."""
    page = browser.new_page(viewport={"width": width, "height": height})
    page.route("**/*", guard)
    if console is not None:
        page.on("console", lambda msg: console.append((msg.type, msg.text)))
        page.on("pageerror", lambda exc: console.append(("pageerror", str(exc))))
    return page


@dataclass(frozen=True)
class TimeToUsable:
    """Times a page from navigation until it is usable, and records the figure under a test id.

    "Usable" is whatever the test's readiness callable waits for (for a Voila
    dashboard: the widget's live chart showing its first title).
    """

    test_id: str
    results: Path = TTU_RESULTS

    def open(self, page: Any, url: str, ready: Callable[[], object], *, timeout_ms: int, **details: object) -> float:
        """Navigate *page* to *url*, call *ready* (which waits, or fails the test), record and return the seconds taken.

        Parameters
        ----------
        page : playwright Page
            A page from :func:`new_page`.
        url : str
            The dashboard's address.
        ready : callable
            Waits until the page is usable; raises (or fails the test) when it is not.
        timeout_ms : int
            Navigation timeout.
        **details
            Extra fields of the record (e.g. ``notebook``).

        Returns
        -------
        float
            Seconds from the start of the navigation until *ready* returned.
        """
        start = time.perf_counter()
        page.goto(url, timeout=timeout_ms)
        ready()
        seconds = time.perf_counter() - start
        record_time_to_usable(self.test_id, seconds, results=self.results, **details)
        return seconds


def record_time_to_usable(test_id: str, seconds: float, *, results: Path = TTU_RESULTS, **details: object) -> None:
    """Merge ``{test_id: {"seconds": ..., "recorded_at": ..., "load_average": ..., **details}}`` into *results*.

    Other tests' entries are kept; the file is replaced atomically.
    """
    data: dict[str, Any] = {}
    if results.is_file():
        try:
            data = json.loads(results.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            data = {}
    data[test_id] = {
        "seconds": round(seconds, 2),
        "recorded_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "load_average": round(os.getloadavg()[0], 2),
        **details,
    }
    results.parent.mkdir(parents=True, exist_ok=True)
    tmp = results.with_name(f".{results.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(dict(sorted(data.items())), indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, results)


#: True when a dashboard's controls are on screen and every live chart area already draws text ("usable").
USABLE = """() => {
  const controls = [...document.querySelectorAll('.widget-dropdown select, .widget-text input, .widget-button')]
    .filter(e => e.getBoundingClientRect().width > 0);
  const areas = [...document.querySelectorAll('.journeylib-live')];
  return controls.length > 0 && areas.every(a => a.querySelectorAll('svg text').length > 0);
}"""
#: True when a notebook without a dashboard widget shows its first cell output.
SHOWN = "() => document.querySelectorAll('.jp-OutputArea-output').length > 0"


def console_errors(console: list[tuple[str, str]]) -> list[str]:
    """Return the console errors and page errors of *console* (every one: the pages link nothing beyond the server)."""
    return [text for kind, text in console if kind in ("error", "pageerror")]


def kernel_rss_mb(pid: int) -> float:
    """Return the resident memory (MiB) of process *pid* from ``/proc`` (0 when it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return 0.0
    return 0.0
