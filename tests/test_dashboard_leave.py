"""A dashboard page left before its cells have all run ends its kernel; a page whose cells run long gets them all.

With progressive rendering Voila runs a page's cells over a websocket of its
own (``/voila/execution/<kernel id>``); ``journeylib.reports.voila_app.PageExecutionHandler``
serves it. The tests start ``journeylib dashboard``'s server on a free
127.0.0.1 port with small notebooks written to a temporary folder and speak
that socket's protocol as Voila's page does (open, ``execute``, one
``execution_result`` per cell, the page closes the socket after the last one):

* a viewer who leaves while a cell computes (the socket closed cleanly, as a
  closed tab does, or the connection dropped without a close frame) must not
  leave the kernel computing: it is shut down, within a generous deadline far
  shorter than the cell;
* a page whose cells run longer than the server's websocket keep-alive timeout
  must still get every cell's outputs and keep its kernel (the keep-alive is
  shortened to seconds for the test: ``Voila.tornado_settings`` in a
  ``voila.json`` read before journeylib's).

One test (marked ``browser``) does the same with Voila's own page in Chromium,
closing the tab as ``tests/test_browser.py`` does (no ``beforeunload``, so no
shutdown beacon from the page).
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import pytest
from _builders import process_alive

from journeylib.reports.dashboard import (
    SECURITY_CONFIG_DIR,
    dashboard_command,
    dashboard_env,
    dashboard_processes,
    find_free_port,
    start_dashboard,
    stop_dashboard,
    wait_until_ready,
)

pytestmark = [pytest.mark.slow]

KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}
#: A cell that computes far longer than any deadline of these tests (it is never meant to finish).
ENDLESS = "import time\nstart = time.monotonic()\nwhile time.monotonic() - start < 900:\n    pass\nprint('computed')"
#: Seconds the kernel of a left page may take to be gone (shutdown waits up to 5 s before it kills the kernel).
DEADLINE = 60


@dataclass(frozen=True)
class Served:
    """A running dashboard server: its process, port and log."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path


def _write(folder: Path, name: str, *sources: str) -> None:
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": KERNELSPEC})
    nb.cells = [nbformat.v4.new_code_cell(source) for source in sources]
    nbformat.write(nb, folder / f"{name}.ipynb")


def _notebooks(folder: Path) -> Path:
    folder.mkdir(parents=True)
    _write(folder, "endless", "print('first cell')", ENDLESS, "print('after the endless cell')")
    _write(folder, "slow", "print('first cell')", "import time\ntime.sleep(10)\nprint('slept')", "print('last cell')")
    _write(folder, "quick", "print('hello')", "print('goodbye')")
    store = folder / "store.duckdb"  # the notebooks do not open it
    store.touch()
    return store


def _serve(process: subprocess.Popen[bytes], port: int, log: Path) -> Served:
    try:
        wait_until_ready(port, 60, process=process)
    except BaseException:
        stop_dashboard(process)
        raise
    return Served(process, port, log)


def _server_files(factory: pytest.TempPathFactory, name: str) -> tuple[Path, Path, int, Path]:
    """A served folder of the tests' notebooks: the folder, its store, a free port and the server's log."""
    folder = factory.mktemp(name) / "notebooks"
    return folder, _notebooks(folder), find_free_port(), folder.parent / "voila.log"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """``journeylib dashboard``'s server as it is started for users (no warm kernel: the tests count the pages' own)."""
    folder, store, port, log = _server_files(tmp_path_factory, "leave")
    server = _serve(start_dashboard(folder, port=port, db=store, log=log, max_kernels=0, kernel_pool=0), port, log)
    yield server
    stop_dashboard(server.process)


@pytest.fixture(scope="module")
def short_keepalive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The same server with jupyter_server's websocket keep-alive shortened: a ping a second, closed after 3 s without a pong."""
    folder, store, port, log = _server_files(tmp_path_factory, "keepalive")
    # journeylib's voila.json with the keep-alive added, in a folder put before it (the first folder wins)
    config = json.loads((SECURITY_CONFIG_DIR / "voila.json").read_text())
    config["Voila"]["tornado_settings"].update(ws_ping_interval=1000, ws_ping_timeout=3000)  # milliseconds
    first = folder.parent / "config"
    first.mkdir()
    (first / "voila.json").write_text(json.dumps(config))
    argv = [
        f"--Voila.config_file_paths=[{str(first)!r}, {str(SECURITY_CONFIG_DIR)!r}, {str(folder)!r}]"
        if arg.startswith("--Voila.config_file_paths=") else arg
        for arg in dashboard_command(folder, port=port, db=store, max_kernels=0, kernel_pool=0, kernel_memory="none")
    ]
    with open(log, "ab") as out:
        process = subprocess.Popen(argv, cwd=folder, env=dashboard_env(store, reports_dir=folder.parent / "reports"),
                                   stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    server = _serve(process, port, log)
    yield server
    stop_dashboard(server.process)


def _open(server: Served, name: str) -> tuple[str, int]:
    """Ask for the page *name* as a browser does; return its kernel's id and process id."""
    with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(
        f"http://127.0.0.1:{server.port}/voila/render/{name}.ipynb", timeout=60
    ) as response:
        body = response.read().decode("utf-8")
    found = re.search(r'"kernelId": "([^"]+)"', body)
    assert found is not None, body[-2000:]
    kernel_id = found.group(1)
    for pid, _ in dashboard_processes(server.process.pid):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if f"kernel-{kernel_id}.json" in argv:
            return kernel_id, pid
    raise AssertionError(f"no kernel process for {kernel_id} among {dashboard_processes(server.process.pid)}")


def _execution(server: Served, kernel_id: str, *, results: int | None, leave: str = "close", ask: bool = True) -> list[dict]:
    """Run the page's cells over its execution socket as Voila's page does; return the results received.

    Reads *results* results (None: until the last cell's, or until the server closes the socket), then leaves:
    ``leave="close"`` closes the socket with a close frame (a closed tab), ``"drop"`` drops the connection
    without one (a crashed browser, a lost network). ``ask=False`` leaves without asking for the cells.
    """
    from tornado.websocket import websocket_connect

    async def run() -> list[dict]:
        ws = await websocket_connect(f"ws://127.0.0.1:{server.port}/voila/execution/{kernel_id}")
        got: list[dict] = []
        try:
            initialized = await asyncio.wait_for(asyncio.ensure_future(ws.read_message()), 60)
            assert initialized is not None
            assert json.loads(initialized)["action"] == "initialized"
            if not ask:
                return got
            await ws.write_message(json.dumps({"action": "execute", "payload": {"kernel_id": kernel_id}}))
            while results is None or len(got) < results:
                raw = await asyncio.wait_for(asyncio.ensure_future(ws.read_message()), 120)
                if raw is None:  # the server closed the socket
                    break
                message = json.loads(raw)
                assert message["action"] == "execution_result", message
                got.append(message["payload"])
                if message["payload"]["cell_index"] >= message["payload"]["total_cell"] - 1:
                    break
        finally:
            if leave == "drop":
                assert ws.protocol is not None
                assert ws.protocol.stream is not None
                ws.protocol.stream.close()  # no close frame
            else:
                ws.close()
        return got

    return asyncio.run(run())


def _outputs(result: dict) -> str:
    return "".join(output.get("text", "") for output in result["output_cell"].get("outputs", []))


def _gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while process_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.25)
    return not process_alive(pid)


@pytest.mark.timeout(240)
@pytest.mark.parametrize("leave", ["close", "drop"])
def test_a_page_left_while_a_cell_computes_has_its_kernel_shut_down(served: Served, leave: str) -> None:
    kernel_id, pid = _open(served, "endless")
    [first] = _execution(served, kernel_id, results=1, leave=leave)
    assert _outputs(first) == "first cell\n"
    assert _gone_within(pid, DEADLINE), f"the kernel of the left page still runs {DEADLINE} s after the viewer left"
    log = served.log.read_text(errors="replace")
    assert f"the page of kernel {kernel_id} was left before its last cell ran: shutting the kernel down" in log
    # the server serves on: a new page runs all its cells and keeps its kernel
    kernel_id, pid = _open(served, "quick")
    assert [_outputs(r) for r in _execution(served, kernel_id, results=None)] == ["hello\n", "goodbye\n"]
    assert process_alive(pid)
    assert served.process.poll() is None


@pytest.mark.timeout(240)
def test_a_page_left_before_asking_for_its_cells_has_its_kernel_shut_down(served: Served) -> None:
    kernel_id, pid = _open(served, "quick")
    assert _execution(served, kernel_id, results=None, ask=False) == []
    assert _gone_within(pid, DEADLINE)
    assert f"the page of kernel {kernel_id} was left before its last cell ran" in served.log.read_text(errors="replace")


@pytest.mark.timeout(240)
def test_a_page_whose_cells_all_ran_keeps_its_kernel_after_closing_its_socket(served: Served) -> None:
    kernel_id, pid = _open(served, "quick")
    assert len(_execution(served, kernel_id, results=None)) == 2
    # the page's widgets talk to this kernel: it stays until the page's beacon or the idle culler ends it
    time.sleep(3)  # a shutdown would have begun by now (see the tests above)
    assert process_alive(pid)
    assert f"the page of kernel {kernel_id} was left" not in served.log.read_text(errors="replace")


@pytest.mark.timeout(240)
def test_a_page_whose_cells_run_longer_than_the_keepalive_gets_every_output(short_keepalive: Served) -> None:
    kernel_id, pid = _open(short_keepalive, "slow")
    results = _execution(short_keepalive, kernel_id, results=None)  # the 10 s cell outlasts the 3 s keep-alive timeout
    assert [_outputs(r) for r in results] == ["first cell\n", "slept\n", "last cell\n"]
    assert process_alive(pid)
    log = short_keepalive.log.read_text(errors="replace")
    assert "WebSocket ping timeout" not in log
    assert f"the page of kernel {kernel_id} was left" not in log


@pytest.mark.browser
@pytest.mark.timeout(240)
def test_a_browser_tab_closed_while_a_cell_computes_ends_its_kernel(served: Served, browser: Any) -> None:
    """Voila's own page in Chromium: the tab is closed without ``beforeunload`` (no beacon), as the browser tests do."""
    page = browser.new_page()
    page.goto(f"http://127.0.0.1:{served.port}/voila/render/endless.ipynb", timeout=90_000)
    page.wait_for_function("() => document.body.innerText.includes('first cell')", timeout=90_000)
    kernel_id = page.evaluate("() => JSON.parse(document.getElementById('jupyter-config-data').textContent).kernelId")
    pids = [pid for pid, _ in dashboard_processes(served.process.pid)
            if f"kernel-{kernel_id}.json" in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")]
    assert len(pids) == 1, pids
    page.close()  # run_before_unload=False: the page sends no shutdown beacon
    assert _gone_within(pids[0], DEADLINE), f"the kernel of the closed tab still runs {DEADLINE} s after it was closed"
    assert f"the page of kernel {kernel_id} was left before its last cell ran" in served.log.read_text(errors="replace")
