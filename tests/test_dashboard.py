"""Tests of how ``journeylib dashboard`` serves Voila: Host and Origin checks, token, errors, CSP, culling, stopping.

Fast tests check the command line, the environment and journeylib's Voila
settings without starting anything. The tests marked ``slow`` start Voila on a
free 127.0.0.1 port (and never another interface) with two small notebooks
written to a temporary folder: one that prints, and one whose configuration
cell is ``open_journey(globals(), url=["sample_n"])``, which raises on
``?sample_n=abc`` before it opens the store (so the store is an empty file).
Requests go to 127.0.0.1 through urllib, with the ``Host`` and ``Origin``
headers a DNS-rebinding page or a cross-site page would send.
"""

from __future__ import annotations

import ast
import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest
from _builders import process_alive

from journeylib.reports.dashboard import (
    CELL_ERROR_MESSAGE,
    DEFAULT_KERNEL_MEMORY,
    JUPYTER_DATA_DIR,
    KERNEL_MANAGER_CLASS,
    REMOTE_SECURITY_CONFIG_DIR,
    SECURITY_CONFIG_DIR,
    TOKEN_ENV,
    TOKEN_SOURCE_ENV,
    VOILA_TEMPLATE,
    DashboardError,
    cull_interval,
    dashboard_command,
    dashboard_env,
    dashboard_processes,
    dashboard_url,
    default_max_kernels,
    duckdb_memory_limit,
    find_free_port,
    is_loopback,
    kernelspec_dir,
    resolve_token,
    security_config_dir,
    start_dashboard,
    stop_dashboard,
    wait_until_ready,
)
from journeylib.reports.kernel_launcher import parse_memory
from journeylib.reports.kernel_manager import handover_code, warmup_code, warmup_modules

ROOT = Path(__file__).resolve().parents[1]
KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}


# -- helpers ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Served:
    """A running dashboard: its process, port, log and folder."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path
    folder: Path


@dataclass(frozen=True)
class Answer:
    """An HTTP answer: status, headers (lower-case names) and body."""

    status: int
    headers: dict[str, str]
    body: str


def _notebooks(folder: Path) -> Path:
    """Write ``ok.ipynb`` and ``url_error.ipynb`` into *folder* and an empty store next to them; return the store."""
    ok = nbformat.v4.new_notebook(metadata={"kernelspec": KERNELSPEC})
    ok.cells = [nbformat.v4.new_code_cell("print('hello from the dashboard')")]
    nbformat.write(ok, folder / "ok.ipynb")
    failing = nbformat.v4.new_notebook(metadata={"kernelspec": KERNELSPEC})
    failing.cells = [
        nbformat.v4.new_code_cell("sample_n = 0\ndb = ''", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(
            "import journeylib.notebook\njourney = journeylib.notebook.open_journey(globals(), url=['sample_n'])"
        ),
        nbformat.v4.new_code_cell("print('not reached')"),
    ]
    nbformat.write(failing, folder / "url_error.ipynb")
    store = folder / "store.duckdb"
    store.touch()
    return store


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Return a redirect as it is (the login page is not the page asked for)."""

    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


#: 127.0.0.1 only, never via a proxy, redirects not followed.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())


def _get(port: int, path: str, *, host: str | None = None, origin: str | None = None, auth: str | None = None) -> Answer:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    if host is not None:
        request.add_header("Host", host)
    if origin is not None:
        request.add_header("Origin", origin)
    if auth is not None:
        request.add_header("Authorization", f"token {auth}")
    try:
        with OPENER.open(request, timeout=60) as response:
            headers = {k.lower(): v for k, v in response.headers.items()}
            return Answer(response.status, headers, response.read().decode("utf-8", errors="replace"))
    except urllib.error.HTTPError as exc:
        headers = {k.lower(): v for k, v in exc.headers.items()}
        return Answer(exc.code, headers, exc.read().decode("utf-8", errors="replace"))


def _render(port: int, path: str, *, host: str | None = None, auth: str | None = None) -> Answer:
    """Open a page as a browser does with progressive rendering: the page, then its cells run over ``/voila/execution``.

    Returns the page's answer with the JSON of every executed cell's outputs appended to its body.
    """
    from tornado.httpclient import HTTPRequest
    from tornado.websocket import websocket_connect

    page = _get(port, path, host=host, auth=auth)
    found = re.search(r'"kernelId": "([^"]+)"', page.body)
    if page.status != 200 or found is None:
        return page
    headers = {k: v for k, v in (("Host", host), ("Authorization", f"token {auth}" if auth else None)) if v}

    async def run() -> list[str]:
        request = HTTPRequest(f"ws://127.0.0.1:{port}/voila/execution/{found.group(1)}", headers=headers)
        ws = await websocket_connect(request)
        outputs: list[str] = []
        try:
            await asyncio.wait_for(ws.read_message(), 60)  # {"action": "initialized"}
            await ws.write_message(json.dumps({"action": "execute", "payload": {"kernel_id": found.group(1)}}))
            while True:
                raw = await asyncio.wait_for(ws.read_message(), 60)
                if raw is None:
                    break
                message = json.loads(raw)
                if message.get("action") != "execution_result":
                    outputs.append(json.dumps(message))
                    break
                outputs.append(json.dumps(message["payload"]["output_cell"].get("outputs", [])))
                if message["payload"]["cell_index"] >= message["payload"]["total_cell"] - 1:
                    break
        finally:
            ws.close()
        return outputs

    return Answer(page.status, page.headers, page.body + "\n".join(asyncio.run(run())))


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    _notebooks(notebooks)
    return notebooks


def _start(folder: Path, **options: object) -> Served:
    # the default bound on the number of kernels follows the machine's memory; tests of other features open
    # several pages and must not depend on it (the bound has tests of its own)
    options.setdefault("max_kernels", 0)
    options.setdefault("kernel_pool", 0)  # warm kernels have tests of their own; others count the kernels pages start
    port = find_free_port()
    log = folder.parent / f"voila-{port}.log"
    process = start_dashboard(folder, port=port, db=folder / "store.duckdb", log=log, **options)  # type: ignore[arg-type]
    try:
        wait_until_ready(port, 60, process=process)
    except BaseException:
        stop_dashboard(process)
        raise
    return Served(process, port, log, folder)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """One loopback dashboard (no token) serving the two notebooks, for the request tests."""
    notebooks = tmp_path_factory.mktemp("dashboard") / "notebooks"
    notebooks.mkdir()
    _notebooks(notebooks)
    # a report run next to the notebooks: the landing page shows its summary of `ok`
    artifacts = notebooks.parent / "reports" / "run-1" / "ok" / "artifacts"
    artifacts.mkdir(parents=True)
    (artifacts / "summary.json").write_text(json.dumps({"customers": 1234, "outcome_rate": 0.25064, "top_line": "Customers <who> did X churned 2× as often"}))
    (notebooks.parent / "reports" / "latest").symlink_to("run-1")
    server = _start(notebooks)
    yield server
    stop_dashboard(server.process)


def _csp(config_dir: Path) -> str:
    settings = json.loads((config_dir / "voila.json").read_text())["Voila"]["tornado_settings"]
    return str(settings["headers"]["Content-Security-Policy"])


# -- command line, environment and settings (no server) --------------------------------------------


def test_command_sets_the_safety_settings_where_a_folder_cannot_undo_them(folder: Path) -> None:
    argv = dashboard_command(folder, port=9123, idle_timeout=600)
    for flag in (
        "--Voila.ip=127.0.0.1",
        "--VoilaConfiguration.show_tracebacks=False",
        f"--VoilaExecutor.cell_error_instruction={CELL_ERROR_MESSAGE}",
        "--MappingKernelManager.cull_idle_timeout=600",
        "--MappingKernelManager.cull_interval=60",
        "--MappingKernelManager.cull_connected=True",
        "--MappingKernelManager.cull_busy=False",
    ):
        assert flag in argv
    assert "--Voila.auto_token=True" not in argv  # no token on the loopback unless asked for
    paths = next(a for a in argv if a.startswith("--Voila.config_file_paths="))
    # journeylib's settings come first: Voila gives the first folder the highest priority.
    assert ast.literal_eval(paths.partition("=")[2]) == [str(SECURITY_CONFIG_DIR), str(folder)]
    assert not any("show_tracebacks=True" in a or a == "--debug" for a in argv)


def test_loopback_settings_check_the_host_and_the_origin() -> None:
    settings = json.loads((SECURITY_CONFIG_DIR / "voila.json").read_text())["Voila"]["tornado_settings"]
    assert settings["allow_remote_access"] is False  # Voila alone sets True: every Host accepted
    assert settings["local_hostnames"] == ["localhost"]
    assert settings["allow_origin"] == ""
    remote = json.loads((REMOTE_SECURITY_CONFIG_DIR / "voila.json").read_text())["Voila"]["tornado_settings"]
    assert remote["allow_remote_access"] is True
    assert remote["allow_origin"] == ""
    assert _csp(REMOTE_SECURITY_CONFIG_DIR) == _csp(SECURITY_CONFIG_DIR)


def test_beyond_the_loopback_a_token_is_required_and_stays_off_the_command_line(folder: Path) -> None:
    for ip in ("0.0.0.0", "192.168.1.5", "::", "dashboards.example"):
        assert not is_loopback(ip)
        with pytest.raises(DashboardError, match=rf"listens on '{ip}' \(beyond 127\.0\.0\.1\) must require a token"):
            dashboard_command(folder, ip=ip)
        with pytest.raises(DashboardError, match="must require a token"):
            resolve_token(ip, False)
    argv = dashboard_command(folder, ip="0.0.0.0", token="s3cret-token")
    assert "--Voila.ip=0.0.0.0" in argv
    assert "--Voila.auto_token=True" in argv
    assert not any("s3cret-token" in a for a in argv)  # /proc/<pid>/cmdline is readable by every user
    paths = next(a for a in argv if a.startswith("--Voila.config_file_paths="))
    assert ast.literal_eval(paths.partition("=")[2])[0] == str(REMOTE_SECURITY_CONFIG_DIR)
    assert security_config_dir("0.0.0.0") == REMOTE_SECURITY_CONFIG_DIR

    env = dashboard_env(folder / "store.duckdb", base={"PATH": "/bin", TOKEN_ENV: "stale"}, token="s3cret-token")
    assert env[TOKEN_ENV] == "s3cret-token"
    assert TOKEN_ENV not in dashboard_env(folder / "store.duckdb", base={"PATH": "/bin", TOKEN_ENV: "stale"})


def test_tokens_are_generated_beyond_the_loopback_and_on_request(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TOKEN_SOURCE_ENV, raising=False)
    for ip in ("127.0.0.1", "::1", "localhost"):
        assert is_loopback(ip)
        assert resolve_token(ip) is None
        assert resolve_token(ip, False) is None
    generated = resolve_token("0.0.0.0")
    assert generated is not None
    assert len(generated) >= 32
    assert resolve_token("0.0.0.0") != generated
    assert resolve_token("127.0.0.1", True) is not None
    assert resolve_token("127.0.0.1", "mine") == "mine"
    monkeypatch.setenv(TOKEN_SOURCE_ENV, "from-the-environment")
    assert resolve_token("0.0.0.0") == "from-the-environment"
    assert dashboard_url(8866, "ok", ip="0.0.0.0", token="t") == "http://127.0.0.1:8866/voila/render/ok.ipynb?token=t"
    assert dashboard_url(8866, ip="::1") == "http://[::1]:8866/"


def test_kernels_idle_for_minutes_are_culled() -> None:
    assert cull_interval(600) == 60
    assert cull_interval(4) == 2
    assert cull_interval(1) == 1
    with pytest.raises(ValueError, match="idle_timeout must be a positive number of seconds"):
        dashboard_command(ROOT / "tests" / "data" / "notebooks", idle_timeout=0)


def test_csp_allows_eval_only_while_live_charts_compile_vega_expressions() -> None:
    """``'unsafe-eval'`` stays exactly as long as the live charts need it (docs/adr/0007-dashboard-serving.md).

    Vega compiles its expressions with ``Function`` unless vega-embed gets
    ``ast: true``; measured in Chromium, a live chart does not render under a
    policy without ``'unsafe-eval'`` unless the option is set.
    """
    from journeylib.widgets.base import EMBED_OPTIONS

    csp = _csp(SECURITY_CONFIG_DIR)
    directives = dict(part.strip().split(" ", 1) for part in csp.split(";") if part.strip())
    assert ("'unsafe-eval'" in directives["script-src"]) == (not EMBED_OPTIONS.get("ast"))
    assert "http" not in csp.replace("'self'", "")  # no other host may serve anything
    assert directives["frame-ancestors"] == "'self'"
    assert directives["default-src"] == "'self' data: blob:"


# -- a running server ------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_rebinding_host_is_refused_and_the_loopback_is_served(served: Served) -> None:
    port = served.port
    for host in ("evil.example", f"evil.example:{port}", f"192.168.1.5:{port}"):
        assert _get(port, "/voila/render/ok.ipynb", host=host).status == 403, host
        assert _get(port, "/voila/api/contents", host=host).status == 403, host
        assert _get(port, "/", host=host).status == 403, host
    for host in (f"127.0.0.1:{port}", f"localhost:{port}"):
        answer = _render(port, "/voila/render/ok.ipynb", host=host)
        assert answer.status == 200, host
        assert "hello from the dashboard" in answer.body
    assert "Blocking request with non-local 'Host' evil.example" in served.log.read_text(errors="replace")


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_cross_origin_api_request_is_refused(served: Served) -> None:
    port = served.port
    assert _get(port, "/voila/api/contents", origin="http://evil.example").status == 404
    assert _get(port, "/voila/api/contents", origin=f"http://127.0.0.1:{port}").status == 200


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_failing_cell_shows_a_short_message_without_traceback_or_server_path(served: Served) -> None:
    answer = _render(served.port, "/voila/render/url_error.ipynb?sample_n=abc")
    assert answer.status == 200
    assert json.dumps(CELL_ERROR_MESSAGE)[1:-1] in answer.body
    for leak in ("Traceback", "ValueError", "is not a whole number", "site-packages", "journeylib/notebook.py"):
        assert leak not in answer.body, leak
    for path in (str(served.folder), str(ROOT), sys.prefix, os.path.expanduser("~") + "/"):
        assert path not in answer.body, path
    # With progressive rendering (docs/adr/0011-dashboard-landing.md) Voila runs the cells after a failing one;
    # in the notebooks those fail in turn (their context is missing) and show the same short message.
    # The server's log keeps what failed, for whoever runs it.
    assert "URL parameter sample_n='abc' is not a whole number" in served.log.read_text(errors="replace")


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_pages_link_nothing_beyond_the_server(served: Served) -> None:
    # Voila's lab template links Font Awesome from jsdelivr; journeylib's template drops the links (the bundle has the icons)
    assert f"--VoilaConfiguration.template={VOILA_TEMPLATE}" in dashboard_command(served.folder)
    page = _get(served.port, "/voila/render/ok.ipynb")
    assert page.status == 200
    assert "fontawesome" not in page.body
    assert re.findall(r'(?:href|src)="(https?://[^"]+)"', page.body) == []


def test_pages_carry_the_content_security_policy(served: Served) -> None:
    answer = _get(served.port, "/voila/render/ok.ipynb")
    assert answer.headers["content-security-policy"] == _csp(SECURITY_CONFIG_DIR)


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_token_is_required_when_asked_for_on_the_loopback(folder: Path) -> None:
    server = _start(folder, token="t0ken-for-the-test")
    try:
        for auth in (None, "wrong"):
            refused = _get(server.port, "/voila/render/ok.ipynb", auth=auth)
            assert refused.status == 302  # to the login page, never the notebook
            assert refused.headers["location"].startswith("/login")
            assert "hello from the dashboard" not in refused.body
        assert _get(server.port, "/voila/api/contents").status == 403
        assert dashboard_url(server.port, "ok", token="t0ken-for-the-test").endswith("/voila/render/ok.ipynb?token=t0ken-for-the-test")
        answer = _render(server.port, "/voila/render/ok.ipynb", auth="t0ken-for-the-test")
        assert answer.status == 200
        assert "hello from the dashboard" in answer.body
        assert _get(server.port, "/voila/render/ok.ipynb?token=t0ken-for-the-test").status == 200
        assert _get(server.port, "/voila/render/ok.ipynb", auth="t0ken-for-the-test").status == 200
        assert "t0ken-for-the-test" not in server.log.read_text(errors="replace")
    finally:
        stop_dashboard(server.process)


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_an_idle_kernel_is_shut_down(folder: Path) -> None:
    server = _start(folder, idle_timeout=4)
    try:
        assert _get(server.port, "/voila/render/ok.ipynb").status == 200  # starts a kernel, then leaves it idle
        kernels = dashboard_processes(server.process.pid)
        assert kernels, "the page started no kernel"
        deadline = time.monotonic() + 30
        while any(process_alive(pid) for pid, _ in kernels) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not any(process_alive(pid) for pid, _ in kernels), "the idle kernel was not culled within 30 s"
        assert "Culling 'idle' kernel" in server.log.read_text(errors="replace")
        assert server.process.poll() is None  # the server itself keeps running
    finally:
        stop_dashboard(server.process)


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_stopping_leaves_no_voila_or_kernel_process(folder: Path) -> None:
    server = _start(folder)
    assert os.getpgid(server.process.pid) == server.process.pid  # a process group of its own
    assert _get(server.port, "/voila/render/ok.ipynb").status == 200
    assert _get(server.port, "/voila/render/url_error.ipynb").status == 200
    started = dashboard_processes(server.process.pid)
    assert len(started) >= 2, started
    stop_dashboard(server.process)
    assert server.process.poll() is not None
    assert not process_alive(server.process.pid)
    assert [pid for pid, _ in started if process_alive(pid)] == []


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_stopping_journeylib_dashboard_stops_voila(folder: Path) -> None:
    port = find_free_port()
    log = folder.parent / "cli.log"
    code = "import sys; from journeylib.cli import main; sys.exit(main())"
    argv = [sys.executable, "-c", code, "dashboard", "--notebooks", str(folder), "--port", str(port)]
    argv += ["--db", str(folder / "store.duckdb")]
    with open(log, "wb") as out:
        cli = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=folder)
    try:
        wait_until_ready(port, 60, process=cli)
        assert _get(port, "/voila/render/ok.ipynb").status == 200
        started = dashboard_processes(cli.pid)  # Voila and its kernel
        assert len(started) >= 2, started
        cli.send_signal(signal.SIGTERM)
        assert cli.wait(timeout=60) == 0
        assert [pid for pid, _ in started if process_alive(pid)] == []
        assert f"serving the notebooks of {folder} at http://127.0.0.1:{port}/" in log.read_text(errors="replace")
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait(timeout=30)


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_the_root_is_the_landing_page_with_the_latest_headlines(served: Served) -> None:
    answer = _get(served.port, "/")
    assert answer.status == 200
    assert answer.headers["content-security-policy"] == _csp(SECURITY_CONFIG_DIR)
    links = re.findall(r'class="journeylib-dashboard-link" href="([^"]+)"', answer.body)
    assert links == ["/voila/render/ok.ipynb", "/voila/render/url_error.ipynb"]
    assert "Customers: 1,234" in answer.body
    assert "Outcome rate: 25.1%" in answer.body
    assert "Customers &lt;who&gt; did X churned 2× as often" in answer.body  # escaped
    assert "From report run run-1" in answer.body
    assert "<script" not in answer.body  # nothing to load, nothing to run
    assert _get(served.port, "/voila/tree").status == 200  # Voila's file list is still there


# -- kernel memory and the number of kernels (issue 16, part 6; docs/adr/0007-dashboard-serving.md) ----------


def _write(folder: Path, name: str, *sources: str, kernel: str = "python3") -> None:
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {**KERNELSPEC, "name": kernel}})
    nb.cells = [nbformat.v4.new_code_cell(source) for source in sources]
    nbformat.write(nb, folder / f"{name}.ipynb")


def test_command_bounds_the_number_of_kernels(folder: Path) -> None:
    argv = dashboard_command(folder, max_kernels=3)
    assert f"--VoilaConfiguration.multi_kernel_manager_class={KERNEL_MANAGER_CLASS}" in argv
    assert "--BoundedKernelManager.max_kernels=3" in argv
    # by default: as many kernels at the bound as fit in 75% of the machine's memory
    expected = default_max_kernels(parse_memory(DEFAULT_KERNEL_MEMORY))
    assert expected >= 1
    assert f"--BoundedKernelManager.max_kernels={expected}" in dashboard_command(folder)
    assert "--BoundedKernelManager.max_kernels=0" in dashboard_command(folder, kernel_memory="none")
    # 24 GiB: 18 GiB for kernels of 2 GiB -> 9; of 5 GiB -> 3; a machine smaller than one bound still gets 1
    assert default_max_kernels(2 * 1024**3, physical_memory=24 * 1024**3) == 9
    assert default_max_kernels(5 * 1024**3, physical_memory=24 * 1024**3) == 3
    assert default_max_kernels(8 * 1024**3, physical_memory=4 * 1024**3) == 1
    with pytest.raises(ValueError, match=r"max_kernels \(--max-kernels\) must be a whole number >= 0 \(0: no bound\), got -1"):
        dashboard_command(folder, max_kernels=-1)
    with pytest.raises(DashboardError, match=r"kernel_memory \(--kernel-memory\) must be a size such as 2GiB.*got 'lots'"):
        dashboard_command(folder, kernel_memory="lots")


def test_a_notebook_the_memory_bound_cannot_reach_is_refused(folder: Path) -> None:
    _write(folder, "r_notebook", "x <- 1", kernel="ir")
    with pytest.raises(DashboardError, match=r"--kernel-memory bounds only 'python3' kernels.*r_notebook.ipynb \(kernelspec 'ir'\)"):
        dashboard_command(folder)
    assert dashboard_command(folder, notebook="ok")  # one python3 notebook served alone is fine
    assert dashboard_command(folder, kernel_memory="none")  # and so is no bound


def test_the_kernels_environment_caps_duckdb_and_finds_the_bounded_kernelspec_first(tmp_path: Path) -> None:
    store = tmp_path / "store.duckdb"
    store.touch()
    env = dashboard_env(store, base={"JUPYTER_PATH": "/elsewhere"}, kernel_memory="2GiB", kernelspec_folder=tmp_path / "k")
    assert env["JOURNEYLIB_MEMORY_LIMIT"] == "512MiB"  # a quarter of 2 GiB, below the read-only default of 600MB
    assert env["JUPYTER_PATH"].split(os.pathsep) == [str((tmp_path / "k").resolve()), str(JUPYTER_DATA_DIR), "/elsewhere"]
    kept = dashboard_env(store, base={"JOURNEYLIB_MEMORY_LIMIT": "300MB"}, kernel_memory="2GiB")
    assert kept["JOURNEYLIB_MEMORY_LIMIT"] == "300MB"  # the operator's own setting wins
    assert "JOURNEYLIB_MEMORY_LIMIT" not in dashboard_env(store, base={}, kernel_memory="none")
    assert duckdb_memory_limit(1024**3) == "256MiB"
    assert duckdb_memory_limit(8 * 1024**3) == "572MiB"  # capped at the read-only default, 600 MB


def test_journeylib_dashboard_passes_the_kernel_bounds(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import journeylib.reports.dashboard as dashboard
    from journeylib.cli import build_parser, main

    seen: dict[str, object] = {}
    monkeypatch.setattr(dashboard, "serve_dashboard", lambda *args, **kwargs: seen.update(kwargs) or 0)
    store = str(folder / "store.duckdb")
    assert main(["dashboard", "--notebooks", str(folder), "--db", store, "--kernel-memory", "1GiB", "--max-kernels", "3"]) == 0
    assert (seen["kernel_memory"], seen["max_kernels"]) == ("1GiB", 3)
    assert main(["dashboard", "--notebooks", str(folder), "--db", store]) == 0
    assert (seen["kernel_memory"], seen["max_kernels"]) == (DEFAULT_KERNEL_MEMORY, None)
    assert build_parser().parse_args(["dashboard"]).kernel_memory == DEFAULT_KERNEL_MEMORY


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_kernels_start_from_the_bounded_kernelspec_which_is_removed_at_stop(folder: Path) -> None:
    server = _start(folder, kernel_memory="512MiB")
    try:
        spec = kernelspec_dir(server.process)
        assert spec is not None
        assert spec.name.startswith("journeylib-dashboard-kernels-")
        assert oct(spec.stat().st_mode & 0o777) == "0o700"  # private to the user who runs the server
        kernel_json = json.loads((spec / "kernels" / "python3" / "kernel.json").read_text())
        assert kernel_json["argv"][1:5] == ["-m", "journeylib.reports.kernel_launcher", "--max-bytes", str(512 * 1024**2)]
        assert _get(server.port, "/voila/render/ok.ipynb").status == 200
        kernels = [pid for pid, _ in dashboard_processes(server.process.pid)]
        assert kernels, "the page started no kernel"
        limits = [Path(f"/proc/{pid}/limits").read_text() for pid in kernels]
        assert any(f"Max data size             {512 * 1024**2}" in text for text in limits), limits
    finally:
        stop_dashboard(server.process)
    assert not spec.exists()
    assert kernelspec_dir(server.process) is None


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_a_page_beyond_the_most_kernels_is_refused_with_a_message(folder: Path) -> None:
    server = _start(folder, max_kernels=1)
    try:
        assert _get(server.port, "/voila/render/ok.ipynb").status == 200  # its kernel stays until the page idles out
        refused = _get(server.port, "/voila/render/ok.ipynb")
        assert refused.status == 503
        assert "Too many dashboard pages are open: the server runs at most 1 at once" in refused.body
        assert "Traceback" not in refused.body
        assert len(dashboard_processes(server.process.pid)) == 1  # no second kernel was started
        assert server.process.poll() is None
        assert "refused to start a kernel" in server.log.read_text(errors="replace")
    finally:
        stop_dashboard(server.process)


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_a_cell_beyond_the_memory_bound_fails_on_its_page_and_the_server_serves_on(folder: Path) -> None:
    _write(folder, "hog", "print('before')", f"hog = bytearray({2 * 1024**3})", "print('after the failed cell')")
    server = _start(folder, kernel_memory="512MiB")
    try:
        answer = _render(server.port, "/voila/render/hog.ipynb")
        assert answer.status == 200
        assert "There was an error when executing cell" in answer.body
        assert json.dumps(CELL_ERROR_MESSAGE)[1:-1] in answer.body
        assert "MemoryError" in server.log.read_text(errors="replace")  # the server's log says what failed
        assert server.process.poll() is None
        assert "hello from the dashboard" in _render(server.port, "/voila/render/ok.ipynb").body
    finally:
        stop_dashboard(server.process)


# -- warm kernels ------------------------------------------------------------------------------------


def test_warm_kernels_import_what_the_notebooks_import_and_bind_no_name(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write(folder, "imports", "import colorsys\nfrom xml.dom import minidom\nimport os.path as p", "%matplotlib inline\nimport wave")
    _write(folder, "relative", "from . import nothing\nimport colorsys")
    # notebooks in name order (imports, ok, relative, url_error); a cell with a magic and a relative import are skipped
    assert warmup_modules(folder) == ["colorsys", "xml.dom", "os.path", "journeylib.notebook"]
    namespace: dict[str, object] = {}
    exec(warmup_code(["colorsys", "no.such.module"]), namespace)  # a failing import is left to the notebook's own cell
    assert [k for k in namespace if not k.startswith("__")] == []
    monkeypatch.setenv("QUERY_STRING", "")  # the working folder and environment come back after the test
    monkeypatch.chdir(ROOT)
    namespace = {}
    exec(handover_code({"QUERY_STRING": "segment=SMB"}, str(folder)), namespace)
    assert os.environ["QUERY_STRING"] == "segment=SMB"
    assert Path.cwd() == folder.resolve()
    assert [k for k in namespace if not k.startswith("__")] == []


def test_the_command_keeps_warm_kernels(folder: Path) -> None:
    assert "--BoundedKernelManager.pool_size=1" in dashboard_command(folder)
    assert "--BoundedKernelManager.pool_size=0" in dashboard_command(folder, kernel_pool=0)
    with pytest.raises(ValueError, match=r"kernel_pool \(--kernel-pool\) must be a whole number >= 0 \(0: no warm kernels\), got -1"):
        dashboard_command(folder, kernel_pool=-1)


def _warm_kernels_ready(server: Served, count: int, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while server.log.read_text(errors="replace").count("warm kernel ") < count:
        assert time.monotonic() < deadline, f"fewer than {count} warm kernels in {timeout} s:\n{server.log.read_text(errors='replace')[-2000:]}"
        time.sleep(0.3)


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_a_warm_kernel_serves_the_next_page_with_its_url_and_folder_and_is_never_culled_while_it_waits(folder: Path) -> None:
    _write(
        folder, "warm",
        "import os, sys\nprint('preloaded', 'colorsys' in sys.modules, 'colorsys' in dir(), '_journeylib_warmup' in dir())",
        "import colorsys\nprint('query', os.environ.get('QUERY_STRING'), 'cwd', os.getcwd(), 'pid', os.getpid())",
    )
    server = _start(folder, kernel_pool=1, idle_timeout=4)
    try:
        _warm_kernels_ready(server, 1)
        [(warm_pid, _)] = dashboard_processes(server.process.pid)
        time.sleep(8)  # two looks of the idle culler (every 2 s at a 4 s timeout): a waiting warm kernel stays
        assert process_alive(warm_pid)
        answer = _render(server.port, "/voila/render/warm.ipynb?segment=SMB&sample_n=50")
        assert answer.status == 200
        assert "preloaded True False False" in answer.body  # imported ahead of the page, and no name left behind
        assert f"query segment=SMB&sample_n=50 cwd {folder} pid {warm_pid}" in answer.body
        _warm_kernels_ready(server, 2)  # the next one is started in the background
        assert len(dashboard_processes(server.process.pid)) >= 2
        again = _render(server.port, "/voila/render/warm.ipynb?segment=Enterprise")
        assert "query segment=Enterprise" in again.body
        assert f"pid {warm_pid}" not in again.body  # a warm kernel serves one page only
    finally:
        stop_dashboard(server.process)
    assert [pid for pid, _ in dashboard_processes(server.process.pid) if process_alive(pid)] == []


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_a_warm_kernel_counts_towards_the_most_kernels(folder: Path) -> None:
    server = _start(folder, kernel_pool=1, max_kernels=1)
    try:
        _warm_kernels_ready(server, 1)
        assert _get(server.port, "/voila/render/ok.ipynb").status == 200  # takes the warm kernel
        time.sleep(3)
        assert len(dashboard_processes(server.process.pid)) == 1  # no warm kernel is started past the bound
        assert _get(server.port, "/voila/render/ok.ipynb").status == 503
    finally:
        stop_dashboard(server.process)
