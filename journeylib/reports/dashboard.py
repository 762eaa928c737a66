"""Serve the notebooks as Voila dashboards on this machine.

``journeylib dashboard`` calls :func:`serve_dashboard`: Voila on
``127.0.0.1`` only, sources stripped, every cell under an execution timeout,
and the kernels told where the store is (``JOURNEYLIB_DB``, absolute) and that
charts are live (``REPORT_CHART_MODE=dashboard``). Settings that are not
about safety (theme, tracebacks, kernel culling) live in the committed
``notebooks/voila.json``; the command line given here wins over it.

Tests and scripts use :func:`start_dashboard` (a background process),
:func:`wait_until_ready` and :func:`stop_dashboard`.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO, Any

from journeylib.exceptions import JourneyLibError
from journeylib.store import resolve_db_path

__all__ = [
    "DEFAULT_EXECUTION_TIMEOUT",
    "DEFAULT_PORT",
    "FILE_ALLOWLIST",
    "READY_PATH",
    "SECURITY_CONFIG_DIR",
    "DashboardError",
    "dashboard_command",
    "dashboard_env",
    "dashboard_url",
    "find_free_port",
    "serve_dashboard",
    "start_dashboard",
    "stop_dashboard",
    "wait_until_ready",
]

#: Voila's usual port.
DEFAULT_PORT = 8866
#: Seconds a dashboard cell may run (Voila has no limit by default, and a stalled cell would hang the page).
DEFAULT_EXECUTION_TIMEOUT = 300
#: Files next to the notebooks Voila may serve: images only (never the store, parameters or notebooks).
FILE_ALLOWLIST = (r".*\.(png|jpe?g|gif|svg|webp)$",)
#: A static file whose answer means "Voila is up" without executing a notebook (``/`` would run one).
READY_PATH = "/voila/static/voila.js"
_HOST = "127.0.0.1"
#: Voila settings journeylib always applies (``voila.json``): the Content-Security-Policy header.
SECURITY_CONFIG_DIR = Path(__file__).resolve().parents[1] / "templates" / "voila"


class DashboardError(JourneyLibError):
    """The dashboard server could not be started, or did not become ready."""


def _check_port(port: int) -> int:
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        msg = f"port must be an integer between 1 and 65535, got {port!r}"
        raise ValueError(msg)
    return port


def _target(notebooks_dir: str | os.PathLike[str], notebook: str | None) -> tuple[Path, Path]:
    """Return (absolute notebooks folder, what Voila serves: the folder or one notebook)."""
    folder = Path(notebooks_dir).expanduser().resolve()
    if not folder.is_dir():
        msg = f"notebooks folder {folder} does not exist; pass the folder that holds the .ipynb files"
        raise DashboardError(msg)
    if notebook is None:
        return folder, folder
    name = notebook if notebook.endswith(".ipynb") else f"{notebook}.ipynb"
    path = (folder / name).resolve()
    if not path.is_file():
        available = ", ".join(sorted(p.stem for p in folder.glob("*.ipynb"))) or "none"
        msg = f"notebook {notebook!r} not found at {path}; available in {folder}: {available}"
        raise DashboardError(msg)
    return folder, path


def dashboard_url(port: int = DEFAULT_PORT, notebook: str | None = None) -> str:
    """Return the address of a dashboard served by :func:`start_dashboard`.

    Parameters
    ----------
    port : int, default 8866
        The server's port.
    notebook : str, optional
        With a folder served, the notebook to open (``/voila/render/<notebook>.ipynb``).

    Returns
    -------
    str
        ``http://127.0.0.1:<port>/`` or the notebook's page.
    """
    base = f"http://{_HOST}:{_check_port(port)}/"
    if notebook is None:
        return base
    name = notebook if notebook.endswith(".ipynb") else f"{notebook}.ipynb"
    return f"{base}voila/render/{name}"


def dashboard_command(
    notebooks_dir: str | os.PathLike[str] = "notebooks",
    *,
    port: int = DEFAULT_PORT,
    db: str | os.PathLike[str] | None = None,
    notebook: str | None = None,
    open_browser: bool = False,
    execution_timeout: int = DEFAULT_EXECUTION_TIMEOUT,
) -> list[str]:
    """Build the ``voila`` command line that serves the notebooks on this machine only.

    The command runs Voila with the current interpreter on ``127.0.0.1``
    (never another interface), on exactly *port* (no silent move to another
    port), with sources stripped, a per-cell execution timeout and only images
    served as static files. Its configuration files are
    ``<notebooks_dir>/voila.json`` and then journeylib's own
    (:data:`SECURITY_CONFIG_DIR`), whose Content-Security-Policy lets pages
    load nothing but from the server itself (plus inline, ``data:`` and
    ``blob:``): Voila's page template links Font Awesome from a CDN although
    its bundle already holds it, and on a network that drops outside traffic
    that render-blocking stylesheet would hold the page up until the
    connection times out. ``'unsafe-eval'`` is needed by Vega's expression
    compiler, inline scripts by Voila's page.

    Parameters
    ----------
    notebooks_dir : str or os.PathLike, default "notebooks"
        The folder of notebooks. Served as a tree (one page per notebook)
        unless *notebook* is given.
    port : int, default 8866
        TCP port on 127.0.0.1.
    db : str or os.PathLike, optional
        The store. It is not part of the command line (the kernels read it
        from ``JOURNEYLIB_DB``, see :func:`dashboard_env`), but an explicit
        path is checked here so a typo fails before the server starts.
    notebook : str, optional
        Serve only this notebook (name with or without ``.ipynb``) at ``/``.
    open_browser : bool, default False
        Let Voila open a browser tab; otherwise ``--no-browser``.
    execution_timeout : int, default 300
        Seconds one cell may run (``--VoilaExecutor.timeout``).

    Returns
    -------
    list of str
        The argv, starting with ``sys.executable -m voila``.

    Raises
    ------
    DashboardError
        If the folder, the notebook or an explicit *db* does not exist.
    ValueError
        If *port* or *execution_timeout* is out of range.

    Examples
    --------
    >>> argv = dashboard_command("notebooks", port=8866)  # doctest: +SKIP
    >>> "--Voila.ip=127.0.0.1" in argv and "--no-browser" in argv  # doctest: +SKIP
    True
    """
    _check_port(port)
    if isinstance(execution_timeout, bool) or not isinstance(execution_timeout, int) or execution_timeout <= 0:
        msg = f"execution_timeout must be a positive number of seconds, got {execution_timeout!r}"
        raise ValueError(msg)
    folder, target = _target(notebooks_dir, notebook)
    if db is not None and str(db) != "":
        store = Path(db).expanduser().resolve()
        if not store.is_file():
            msg = (
                f"store {store} does not exist. Create it with `journeylib demo` or "
                f"`journeylib ingest --db {store} TABLE FILE...`, or pass the right --db."
            )
            raise DashboardError(msg)
    allow = "[" + ", ".join(repr(p) for p in FILE_ALLOWLIST) + "]"
    argv = [
        sys.executable,
        "-m",
        "voila",
        str(target),
        f"--port={port}",
        f"--Voila.ip={_HOST}",
        "--Voila.port_retries=0",
        "--strip_sources=True",
        f"--VoilaExecutor.timeout={execution_timeout}",
        f"--VoilaConfiguration.file_allowlist={allow}",
        # The notebooks' voila.json first (it wins), then journeylib's security settings.
        f"--Voila.config_file_paths=[{str(folder)!r}, {str(SECURITY_CONFIG_DIR)!r}]",
    ]
    if not open_browser:
        argv.insert(argv.index(str(target)) + 1, "--no-browser")
    return argv


def dashboard_env(db: str | os.PathLike[str] | None = None, *, base: dict[str, str] | None = None) -> dict[str, str]:
    """Return the environment for the Voila server and its kernels.

    Parameters
    ----------
    db : str or os.PathLike, optional
        The store; default ``JOURNEYLIB_DB``, else ``data/journeylib.duckdb``
        found from the working directory (see
        :func:`journeylib.store.resolve_db_path`).
    base : dict, optional
        The environment to extend (default: this process's).

    Returns
    -------
    dict of str to str
        *base* plus ``JOURNEYLIB_DB`` (absolute path) and
        ``REPORT_CHART_MODE=dashboard`` (live charts, whatever the shell says).

    Raises
    ------
    JourneyLibError
        If no store is found; the message lists where it looked.
    """
    env = dict(os.environ if base is None else base)
    env["JOURNEYLIB_DB"] = str(resolve_db_path(None if db is None else Path(db)))
    env["REPORT_CHART_MODE"] = "dashboard"
    return env


def find_free_port(host: str = _HOST) -> int:
    """Return a TCP port that is free on *host* right now.

    Parameters
    ----------
    host : str, default "127.0.0.1"
        The interface.

    Returns
    -------
    int
        A port number (another process may still take it before you do).
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((_HOST, port))
        except OSError:
            return True
    return False


def start_dashboard(
    notebooks_dir: str | os.PathLike[str] = "notebooks",
    *,
    port: int = DEFAULT_PORT,
    db: str | os.PathLike[str] | None = None,
    notebook: str | None = None,
    execution_timeout: int = DEFAULT_EXECUTION_TIMEOUT,
    open_browser: bool = False,
    log: IO[Any] | str | os.PathLike[str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start Voila in the background and return its process (not waiting for it to be ready).

    Parameters
    ----------
    notebooks_dir, port, db, notebook, execution_timeout, open_browser
        As in :func:`dashboard_command`.
    log : file object, str or os.PathLike, optional
        Where Voila's output goes (a path is opened for appending); default:
        this process's stdout/stderr.

    Returns
    -------
    subprocess.Popen
        The server. Follow with :func:`wait_until_ready` and end with
        :func:`stop_dashboard`.

    Raises
    ------
    DashboardError
        If *port* is already in use on 127.0.0.1, or the folder, notebook or
        store does not exist.
    JourneyLibError
        If no store is found.
    """
    argv = dashboard_command(
        notebooks_dir,
        port=port,
        db=db,
        notebook=notebook,
        open_browser=open_browser,
        execution_timeout=execution_timeout,
    )
    if _port_in_use(port):
        msg = (
            f"port {port} on {_HOST} is already in use; pass another port (e.g. --port {port + 1}) "
            "or stop the server that holds it"
        )
        raise DashboardError(msg)
    env = dashboard_env(db)
    folder = Path(notebooks_dir).expanduser().resolve()
    out: IO[Any] | None
    if log is None or hasattr(log, "write"):
        out = log  # type: ignore[assignment]
        return subprocess.Popen(argv, cwd=folder, env=env, stdout=out, stderr=subprocess.STDOUT if out else None)
    with open(log, "ab") as handle:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(argv, cwd=folder, env=env, stdout=handle, stderr=subprocess.STDOUT)


def wait_until_ready(
    port: int = DEFAULT_PORT,
    timeout: float = 60.0,
    *,
    process: subprocess.Popen[Any] | None = None,
    interval: float = 0.2,
) -> str:
    """Wait until a Voila server on 127.0.0.1:*port* answers, without executing any notebook.

    Probes ``/voila/static/voila.js``; asking for ``/`` would start a kernel
    and run the notebook.

    Parameters
    ----------
    port : int, default 8866
        The server's port.
    timeout : float, default 60
        Seconds to wait.
    process : subprocess.Popen, optional
        The server process; if it exits, waiting stops at once.
    interval : float, default 0.2
        Seconds between probes.

    Returns
    -------
    str
        The server's base URL, ``http://127.0.0.1:<port>/``.

    Raises
    ------
    DashboardError
        If the process exited, or the server did not answer within *timeout*.
    """
    url = f"http://{_HOST}:{_check_port(port)}{READY_PATH}"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy
    deadline = time.monotonic() + timeout
    last_error = "no answer yet"
    while True:
        if process is not None and process.poll() is not None:
            msg = (
                f"the Voila server exited with code {process.returncode} before it was ready on port {port}; "
                "its output above (or in the log file) says why (port taken, bad option, missing notebook)"
            )
            raise DashboardError(msg)
        try:
            with opener.open(url, timeout=max(interval, 2.0)) as response:
                if response.status == 200:
                    return f"http://{_HOST}:{port}/"
                last_error = f"HTTP {response.status}"
        except urllib.error.HTTPError as exc:
            last_error = f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError) as exc:
            last_error = str(getattr(exc, "reason", exc))
        if time.monotonic() >= deadline:
            msg = (
                f"the Voila server on {_HOST}:{port} was not ready after {timeout:.0f} s ({url}: {last_error}); "
                "is something else on that port, or is the machine very slow? Try a longer timeout."
            )
            raise DashboardError(msg)
        time.sleep(interval)


def stop_dashboard(process: subprocess.Popen[Any], timeout: float = 15.0) -> int:
    """Stop a server from :func:`start_dashboard`; Voila shuts its kernels down on SIGTERM.

    Parameters
    ----------
    process : subprocess.Popen
        The server.
    timeout : float, default 15
        Seconds to wait after SIGTERM before SIGKILL.

    Returns
    -------
    int
        The exit code.
    """
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout)
    return int(process.returncode)


def serve_dashboard(
    notebooks_dir: str | os.PathLike[str] = "notebooks",
    *,
    port: int = DEFAULT_PORT,
    db: str | os.PathLike[str] | None = None,
    notebook: str | None = None,
    open_browser: bool = False,
    execution_timeout: int = DEFAULT_EXECUTION_TIMEOUT,
    ready_timeout: float = 60.0,
) -> int:
    """Serve the dashboards on 127.0.0.1 until interrupted (Ctrl-C); what ``journeylib dashboard`` runs.

    Prints the address once the server answers, then waits for it.

    Parameters
    ----------
    notebooks_dir, port, db, notebook, open_browser, execution_timeout
        As in :func:`dashboard_command`; *db* defaults to ``JOURNEYLIB_DB``
        or ``data/journeylib.duckdb``.
    ready_timeout : float, default 60
        Seconds to wait for the server to answer.

    Returns
    -------
    int
        Voila's exit code (0 after Ctrl-C).

    Raises
    ------
    DashboardError
        If the server cannot start (port in use, missing notebook or store)
        or does not become ready.
    JourneyLibError
        If no store is found.
    """
    process = start_dashboard(
        notebooks_dir,
        port=port,
        db=db,
        notebook=notebook,
        execution_timeout=execution_timeout,
        open_browser=open_browser,
    )
    try:
        base = wait_until_ready(port, ready_timeout, process=process)
        what = f"notebook {notebook}" if notebook else f"the notebooks of {Path(notebooks_dir).resolve()}"
        print(f"journeylib dashboard: serving {what} at {base}  (Ctrl-C stops it)")  # noqa: T201 -- a server's job
        return process.wait()
    except KeyboardInterrupt:
        stop_dashboard(process)
        return 0
    finally:
        with contextlib.suppress(Exception):
            stop_dashboard(process)
