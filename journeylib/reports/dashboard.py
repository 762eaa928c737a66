"""Serve the notebooks as Voila dashboards.

``journeylib dashboard`` calls :func:`serve_dashboard`: Voila on
``127.0.0.1`` by default, sources stripped, every cell under an execution
timeout, and the kernels told where the store is (``JOURNEYLIB_DB``,
absolute) and that charts are live (``REPORT_CHART_MODE=dashboard``).

What keeps the server safe is set here, on the command line or in
journeylib's own configuration files, so a notebooks folder's ``voila.json``
cannot weaken it (``docs/adr/0007-dashboard-serving.md``):

- the ``Host`` header must name the loopback (``127.0.0.1``, ``::1``,
  ``localhost``), which refuses DNS-rebinding pages; cross-origin API and
  websocket requests are refused;
- a token is required whenever the server listens beyond the loopback, and
  can be asked for on the loopback; it reaches Voila through the environment,
  never its command line;
- a failing cell shows :data:`CELL_ERROR_MESSAGE`, never a traceback;
- a Content-Security-Policy lets pages load nothing but from the server;
- kernels idle for :data:`DEFAULT_IDLE_TIMEOUT` seconds are shut down;
- each kernel's private memory is bounded (``--kernel-memory``, default
  :data:`DEFAULT_KERNEL_MEMORY`): the kernels start through
  :mod:`journeylib.reports.kernel_launcher`, from a kernelspec written into a
  private folder put first on ``JUPYTER_PATH`` and removed at stop; DuckDB in
  the kernel gets a quarter of the bound (at most the read-only default);
- ``--kernel-pool`` kernels (default :data:`DEFAULT_KERNEL_POOL`) are kept
  started, with the notebooks' modules imported, so a page view does not
  wait for a kernel to start and import them;
- at most ``--max-kernels`` kernels run at once
  (:class:`journeylib.reports.kernel_manager.BoundedKernelManager`; default
  :func:`default_max_kernels`); a page asked for beyond it gets HTTP 503;
- :func:`stop_dashboard` stops Voila's whole process group and any kernel
  left behind.

Settings that are not about safety (theme, file deny-list) live in the
notebooks folder's ``voila.json``. Tests and scripts use
:func:`start_dashboard` (a background process), :func:`wait_until_ready` and
:func:`stop_dashboard`.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import IO, Any

from journeylib.exceptions import JourneyLibError
from journeylib.reports.kernel_launcher import (
    DEFAULT_KERNEL_MEMORY,
    KERNEL_NAME,
    format_bytes,
    parse_memory,
    write_kernelspec,
)
from journeylib.reports.landing import REPORTS_ENV, resolve_reports_dir
from journeylib.store import resolve_db_path
from journeylib.store.database import DEFAULT_READ_MEMORY_LIMIT

__all__ = [
    "CELL_ERROR_MESSAGE",
    "CULL_INTERVAL",
    "DEFAULT_EXECUTION_TIMEOUT",
    "DEFAULT_IDLE_TIMEOUT",
    "DEFAULT_KERNEL_MEMORY",
    "DEFAULT_KERNEL_POOL",
    "DEFAULT_PORT",
    "FILE_ALLOWLIST",
    "JUPYTER_DATA_DIR",
    "KERNEL_MANAGER_CLASS",
    "KERNEL_MEMORY_SHARE",
    "LOOPBACK",
    "READY_PATH",
    "REMOTE_SECURITY_CONFIG_DIR",
    "SECURITY_CONFIG_DIR",
    "TOKEN_ENV",
    "TOKEN_SOURCE_ENV",
    "VOILA_TEMPLATE",
    "DashboardError",
    "cull_interval",
    "dashboard_command",
    "dashboard_env",
    "dashboard_processes",
    "dashboard_url",
    "default_max_kernels",
    "duckdb_memory_limit",
    "find_free_port",
    "is_loopback",
    "kernelspec_dir",
    "resolve_token",
    "security_config_dir",
    "serve_dashboard",
    "start_dashboard",
    "stop_dashboard",
    "wait_until_ready",
]

#: Voila's usual port.
DEFAULT_PORT = 8866
#: Seconds a dashboard cell may run (Voila has no limit by default, and a stalled cell would hang the page).
DEFAULT_EXECUTION_TIMEOUT = 300
#: Seconds a kernel may go without a message to or from it (even with its page open) before it is shut down.
DEFAULT_IDLE_TIMEOUT = 600
#: Longest wait, in seconds, between two looks for idle kernels (shorter for a short idle timeout).
CULL_INTERVAL = 60
#: Files next to the notebooks Voila may serve: images only (never the store, parameters or notebooks).
FILE_ALLOWLIST = (r".*\.(png|jpe?g|gif|svg|webp)$",)
#: A static file whose answer means "Voila is up" without executing a notebook (``/`` would run one).
READY_PATH = "/voila/static/voila.js"
#: The interface the dashboards listen on unless told otherwise.
LOOPBACK = "127.0.0.1"
_HOST = LOOPBACK
#: What a page shows in place of a failing cell's output, after Voila's "There was an error when executing cell [N]."
CELL_ERROR_MESSAGE = (
    "This part of the dashboard could not be computed. If the address of the page sets parameters "
    "(such as ?segment= or ?sample_n=), check their values; the server log says what failed."
)
#: The variable the token reaches Voila through (a command line can be read by every user of the machine).
TOKEN_ENV = "JUPYTER_TOKEN"
#: A fixed token for :func:`resolve_token` to use instead of generating one.
TOKEN_SOURCE_ENV = "JOURNEYLIB_DASHBOARD_TOKEN"
#: Voila settings for a server on the loopback (``voila.json``): the Content-Security-Policy and the Host check.
SECURITY_CONFIG_DIR = Path(__file__).resolve().parents[1] / "templates" / "voila"
#: Voila settings for a server that listens beyond the loopback: the same policy, no Host check (a token instead).
REMOTE_SECURITY_CONFIG_DIR = SECURITY_CONFIG_DIR / "remote"
_WILDCARDS = frozenset({"", "0.0.0.0", "::"})  # the names of "every interface"
#: Voila's kernel manager: jupyter_server's, with a bound on the number of kernels.
KERNEL_MANAGER_CLASS = "journeylib.reports.kernel_manager.BoundedKernelManager"
#: journeylib's Jupyter data folder, put on the server's ``JUPYTER_PATH``: it holds the Voila template :data:`VOILA_TEMPLATE`.
JUPYTER_DATA_DIR = Path(__file__).resolve().parents[1] / "templates" / "jupyter"
#: The Voila page template: Voila's ``lab`` without its links to a CDN (``templates/jupyter/voila/templates/journeylib``).
VOILA_TEMPLATE = "journeylib"
#: Warm kernels kept started ahead of page views (:class:`journeylib.reports.kernel_manager.BoundedKernelManager`).
DEFAULT_KERNEL_POOL = 1
#: Share of the machine's physical memory the dashboard kernels may hold together (see :func:`default_max_kernels`).
KERNEL_MEMORY_SHARE = 0.75
#: The bounded kernelspec folder of each server started by :func:`start_dashboard`, by Voila's pid.
_KERNELSPEC_DIRS: dict[int, Path] = {}


class DashboardError(JourneyLibError):
    """The dashboard server could not be started, or did not become ready."""


def _check_port(port: int) -> int:
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        msg = f"port must be an integer between 1 and 65535, got {port!r}"
        raise ValueError(msg)
    return port


def _check_seconds(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        msg = f"{name} must be a positive number of seconds, got {value!r}"
        raise ValueError(msg)
    return value


def is_loopback(ip: str) -> bool:
    """Tell whether *ip* names only this machine's loopback interface.

    Parameters
    ----------
    ip : str
        An address (``127.0.0.1``, ``::1``, ``0.0.0.0``, ``192.168.1.5``) or
        ``localhost``. Any other host name counts as beyond the loopback.

    Returns
    -------
    bool
        True for ``localhost`` and loopback addresses; False for the
        wildcards (``0.0.0.0``, ``::``, empty) and everything else.

    Examples
    --------
    >>> is_loopback("127.0.0.1"), is_loopback("::1"), is_loopback("0.0.0.0")
    (True, True, False)
    """
    if ip == "localhost":
        return True
    try:
        return ipaddress.ip_address(ip).is_loopback
    except ValueError:
        return False


def security_config_dir(ip: str = LOOPBACK) -> Path:
    """Return the folder of journeylib's Voila settings for a server listening on *ip*.

    Both hold a ``voila.json`` with the same Content-Security-Policy. On the
    loopback (:data:`SECURITY_CONFIG_DIR`) it also keeps Voila's ``Host``
    check on (``allow_remote_access: false``), which Voila alone turns off;
    beyond it (:data:`REMOTE_SECURITY_CONFIG_DIR`) the check would refuse the
    server's own address, so it is off and a token is required instead.

    Parameters
    ----------
    ip : str, default "127.0.0.1"
        The interface the server listens on.

    Returns
    -------
    pathlib.Path
        :data:`SECURITY_CONFIG_DIR` or :data:`REMOTE_SECURITY_CONFIG_DIR`.
    """
    return SECURITY_CONFIG_DIR if is_loopback(ip) else REMOTE_SECURITY_CONFIG_DIR


def cull_interval(idle_timeout: int) -> int:
    """Return the seconds between two looks for idle kernels: half *idle_timeout*, at most :data:`CULL_INTERVAL`.

    A kernel is shut down between *idle_timeout* and *idle_timeout* plus this
    interval after its last message.

    Parameters
    ----------
    idle_timeout : int
        Seconds a kernel may stay idle.

    Returns
    -------
    int
        At least 1.

    Examples
    --------
    >>> cull_interval(600), cull_interval(4)
    (60, 2)
    """
    return min(CULL_INTERVAL, max(1, idle_timeout // 2))


def _physical_memory() -> int | None:
    """Return the machine's physical memory in bytes, or None where the platform does not say."""
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        return None


def default_max_kernels(kernel_memory: int | None, *, physical_memory: int | None = None) -> int:
    """Return how many bounded kernels fit in :data:`KERNEL_MEMORY_SHARE` of the machine's memory.

    Parameters
    ----------
    kernel_memory : int or None
        The per-kernel bound in bytes; None (no bound) gives 0.
    physical_memory : int, optional
        Bytes of memory of the machine (default: read from the system).

    Returns
    -------
    int
        ``floor(0.75 × physical memory / kernel_memory)``, at least 1; 0 (no
        bound on the number of kernels) without a per-kernel bound or where
        the machine's memory cannot be read.

    Examples
    --------
    >>> default_max_kernels(2 * 1024**3, physical_memory=24 * 1024**3)
    9
    >>> default_max_kernels(None, physical_memory=24 * 1024**3)
    0
    """
    total = physical_memory if physical_memory is not None else _physical_memory()
    if not kernel_memory or not total:
        return 0
    return max(1, int(KERNEL_MEMORY_SHARE * total // kernel_memory))


def duckdb_memory_limit(kernel_memory: int | None) -> str | None:
    """Return the DuckDB ``memory_limit`` for a kernel bounded to *kernel_memory* bytes.

    A quarter of the bound, at most the read-only store's default
    (:data:`journeylib.store.database.DEFAULT_READ_MEMORY_LIMIT`): the rest of
    the bound is for the interpreter, pandas and the charts (on the demo,
    421–860 MiB of ``VmData`` after a dashboard's widget cell, up to 1,556 MiB
    after its last cell).

    Parameters
    ----------
    kernel_memory : int or None
        The per-kernel bound in bytes; None for no bound.

    Returns
    -------
    str or None
        E.g. ``"512MiB"``; None without a bound (the store's default applies).

    Examples
    --------
    >>> duckdb_memory_limit(2 * 1024**3), duckdb_memory_limit(1024**3), duckdb_memory_limit(None)
    ('512MiB', '256MiB', None)
    """
    if not kernel_memory:
        return None
    default = parse_memory(DEFAULT_READ_MEMORY_LIMIT, name="DEFAULT_READ_MEMORY_LIMIT") or kernel_memory
    return f"{min(kernel_memory // 4, default) // 1024**2}MiB"


def _resolve_kernel_memory(kernel_memory: str | int | None) -> int | None:
    try:
        return parse_memory(kernel_memory, name="kernel_memory (--kernel-memory)")
    except ValueError as exc:
        raise DashboardError(str(exc)) from exc


def _check_max_kernels(max_kernels: int | None) -> int | None:
    if max_kernels is not None and (isinstance(max_kernels, bool) or not isinstance(max_kernels, int) or max_kernels < 0):
        msg = f"max_kernels (--max-kernels) must be a whole number >= 0 (0: no bound), got {max_kernels!r}"
        raise ValueError(msg)
    return max_kernels


def _unbounded_notebooks(target: Path) -> list[str]:
    """Return the notebooks under *target* whose kernelspec is not :data:`KERNEL_NAME` (the bound would not reach them)."""
    paths = [target] if target.is_file() else sorted(target.glob("*.ipynb"))
    found = []
    for path in paths:
        try:
            name = json.loads(path.read_text(encoding="utf-8")).get("metadata", {}).get("kernelspec", {}).get("name")
        except (OSError, ValueError, AttributeError):
            continue  # Voila reports an unreadable notebook itself
        if name not in (None, KERNEL_NAME):
            found.append(f"{path.name} (kernelspec {name!r})")
    return found


def resolve_token(ip: str = LOOPBACK, token: str | bool | None = None) -> str | None:
    """Decide the token a dashboard on *ip* requires.

    Parameters
    ----------
    ip : str, default "127.0.0.1"
        The interface the server listens on.
    token : str, bool or None
        A token to use; ``True`` to require one; ``None`` to require one only
        beyond the loopback; ``False`` or ``""`` for none (loopback only). A
        required token that is not given is taken from
        ``JOURNEYLIB_DASHBOARD_TOKEN``, else generated
        (``secrets.token_urlsafe(32)``).

    Returns
    -------
    str or None
        The token, or None when the server needs none.

    Raises
    ------
    DashboardError
        If *token* is ``False`` or empty while *ip* is beyond the loopback.

    Examples
    --------
    >>> resolve_token("127.0.0.1") is None
    True
    >>> resolve_token("0.0.0.0", "s3cret")
    's3cret'
    """
    if isinstance(token, str) and token:
        return token
    if token is True or (token is None and not is_loopback(ip)):
        return os.environ.get(TOKEN_SOURCE_ENV) or secrets.token_urlsafe(32)
    if not is_loopback(ip):
        msg = (
            f"a dashboard that listens on {ip!r} (beyond 127.0.0.1) must require a token; "
            "leave the token out to have one generated, or listen on 127.0.0.1"
        )
        raise DashboardError(msg)
    return None


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


def _reachable_host(ip: str) -> str:
    """Return the address (URL form) a client on this machine uses to reach a server listening on *ip*."""
    host = LOOPBACK if ip in _WILDCARDS else ip
    return f"[{host}]" if ":" in host else host


def dashboard_url(
    port: int = DEFAULT_PORT, notebook: str | None = None, *, ip: str = LOOPBACK, token: str | None = None
) -> str:
    """Return the address of a dashboard served by :func:`start_dashboard`.

    Parameters
    ----------
    port : int, default 8866
        The server's port.
    notebook : str, optional
        With a folder served, the notebook to open (``/voila/render/<notebook>.ipynb``).
    ip : str, default "127.0.0.1"
        The interface the server listens on; for ``0.0.0.0`` the address
        uses ``127.0.0.1``.
    token : str, optional
        Appended as ``?token=...`` (the server then sets a login cookie).

    Returns
    -------
    str
        ``http://127.0.0.1:<port>/`` or the notebook's page.
    """
    base = f"http://{_reachable_host(ip)}:{_check_port(port)}/"
    if notebook is not None:
        name = notebook if notebook.endswith(".ipynb") else f"{notebook}.ipynb"
        base = f"{base}voila/render/{name}"
    return f"{base}?token={token}" if token else base


def dashboard_command(
    notebooks_dir: str | os.PathLike[str] = "notebooks",
    *,
    port: int = DEFAULT_PORT,
    db: str | os.PathLike[str] | None = None,
    notebook: str | None = None,
    open_browser: bool = False,
    execution_timeout: int = DEFAULT_EXECUTION_TIMEOUT,
    ip: str = LOOPBACK,
    token: str | None = None,
    idle_timeout: int = DEFAULT_IDLE_TIMEOUT,
    kernel_memory: str | int | None = DEFAULT_KERNEL_MEMORY,
    max_kernels: int | None = None,
    kernel_pool: int = DEFAULT_KERNEL_POOL,
) -> list[str]:
    """Build the ``voila`` command line that serves the notebooks.

    The command runs Voila with the current interpreter on *ip*, on exactly
    *port* (no silent move to another port), with sources stripped, a
    per-cell execution timeout and only images served as static files. It
    also sets, where a notebooks folder's ``voila.json`` cannot override them:

    - ``VoilaConfiguration.show_tracebacks=False`` and
      ``VoilaExecutor.cell_error_instruction`` = :data:`CELL_ERROR_MESSAGE`:
      a failing cell shows that short message, no traceback and no server
      path (the server's log keeps the traceback);
    - ``MappingKernelManager.cull_idle_timeout=idle_timeout``,
      ``cull_interval`` (:func:`cull_interval`), ``cull_connected=True``
      (an open but idle page does not keep its kernel) and
      ``cull_busy=False`` (a computing kernel is left alone);
    - ``VoilaConfiguration.multi_kernel_manager_class`` =
      :data:`KERNEL_MANAGER_CLASS` and ``BoundedKernelManager.max_kernels``:
      at most that many kernels (page views) at once;
    - with a *token*, ``Voila.auto_token=True``: Voila then takes the token
      from ``JUPYTER_TOKEN`` (see :func:`dashboard_env`); the token itself is
      never on the command line.

    The configuration files are journeylib's (:func:`security_config_dir`:
    the Content-Security-Policy and, on the loopback, the ``Host`` check),
    which win, then ``<notebooks_dir>/voila.json``. The policy lets pages load
    nothing but from the server itself (plus inline, ``data:`` and ``blob:``):
    Voila's page template links Font Awesome from a CDN although its bundle
    already holds it, and on a network that drops outside traffic that
    render-blocking stylesheet would hold the page up until the connection
    times out. ``'unsafe-eval'`` is allowed because the live charts' Vega
    compiles its expressions with ``Function`` unless vega-embed is told
    ``ast: true``; inline scripts are needed by Voila's page.

    Parameters
    ----------
    notebooks_dir : str or os.PathLike, default "notebooks"
        The folder of notebooks. Served as a tree (one page per notebook)
        unless *notebook* is given.
    port : int, default 8866
        TCP port.
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
    ip : str, default "127.0.0.1"
        The interface to listen on. Anything beyond the loopback
        (``0.0.0.0``, a LAN address) needs a *token*.
    token : str, optional
        Require this token (see :func:`resolve_token`). Only whether there is
        one shapes the command.
    idle_timeout : int, default 600
        Seconds a kernel may stay idle before it is shut down.
    kernel_memory : str, int or None, default "3GiB"
        The bound on each kernel's private memory (see
        :func:`journeylib.reports.kernel_launcher.parse_memory`; ``"none"``,
        0 or None: no bound). It is applied by the kernelspec
        :func:`start_dashboard` writes, not by this command line; here it
        sets the default of *max_kernels* and every served notebook must ask
        for the ``python3`` kernel, which the bound reaches.
    max_kernels : int, optional
        The most kernels at once; default :func:`default_max_kernels` of
        *kernel_memory*; 0 for no bound.
    kernel_pool : int, default 1
        Warm kernels kept started ahead of page views, with the notebooks'
        modules imported (``BoundedKernelManager.pool_size``, see
        :mod:`journeylib.reports.kernel_manager`); 0 for none.

    Returns
    -------
    list of str
        The argv, starting with ``sys.executable -m journeylib.reports.voila_app``
        (Voila with journeylib's landing page at ``/``, see
        :mod:`journeylib.reports.voila_app`).

    Raises
    ------
    DashboardError
        If the folder, the notebook or an explicit *db* does not exist, *ip*
        is beyond the loopback without a *token*, *kernel_memory* is not a
        size, a served notebook asks for another kernel than ``python3``
        while memory is bounded, or memory is bounded on another system than
        Linux (where ``RLIMIT_DATA`` would not hold).
    ValueError
        If *port*, *execution_timeout*, *idle_timeout* or *max_kernels* is out of range.

    Examples
    --------
    >>> argv = dashboard_command("notebooks", port=8866)  # doctest: +SKIP
    >>> "--Voila.ip=127.0.0.1" in argv and "--no-browser" in argv  # doctest: +SKIP
    True
    """
    _check_port(port)
    _check_seconds("execution_timeout", execution_timeout)
    _check_seconds("idle_timeout", idle_timeout)
    _check_max_kernels(max_kernels)
    if isinstance(kernel_pool, bool) or not isinstance(kernel_pool, int) or kernel_pool < 0:
        msg = f"kernel_pool (--kernel-pool) must be a whole number >= 0 (0: no warm kernels), got {kernel_pool!r}"
        raise ValueError(msg)
    bound = _resolve_kernel_memory(kernel_memory)
    kernels = default_max_kernels(bound) if max_kernels is None else max_kernels
    if not token and not is_loopback(ip):
        msg = (
            f"a dashboard that listens on {ip!r} (beyond 127.0.0.1) must require a token; "
            "pass token= (journeylib dashboard generates one), or listen on 127.0.0.1"
        )
        raise DashboardError(msg)
    folder, target = _target(notebooks_dir, notebook)
    if db is not None and str(db) != "":
        store = Path(db).expanduser().resolve()
        if not store.is_file():
            msg = (
                f"store {store} does not exist. Create it with `journeylib demo` or "
                f"`journeylib ingest --db {store} TABLE FILE...`, or pass the right --db."
            )
            raise DashboardError(msg)
    if bound and not sys.platform.startswith("linux"):
        # RLIMIT_DATA counts mmap'd memory only on Linux (4.7+); elsewhere the bound would silently not hold
        msg = (
            f"--kernel-memory {kernel_memory!r}: the per-kernel memory bound needs Linux (RLIMIT_DATA), "
            f"this is {sys.platform}; serve with --kernel-memory none and bound memory outside (container, cgroup)"
        )
        raise DashboardError(msg)
    unbounded = _unbounded_notebooks(target) if bound else []
    if unbounded:
        msg = (
            f"--kernel-memory bounds only {KERNEL_NAME!r} kernels, but these notebooks in {folder} ask for another: "
            f"{', '.join(unbounded)}; set their kernelspec to {KERNEL_NAME!r}, or serve with --kernel-memory none"
        )
        raise DashboardError(msg)
    allow = "[" + ", ".join(repr(p) for p in FILE_ALLOWLIST) + "]"
    argv = [
        sys.executable,
        "-m",
        "journeylib.reports.voila_app",  # Voila plus journeylib's landing page at / (reports/voila_app.py)
        str(target),
        f"--port={port}",
        f"--Voila.ip={ip}",
        "--Voila.port_retries=0",
        "--strip_sources=True",
        "--VoilaConfiguration.show_tracebacks=False",
        # the page and its kernel come first, then each cell's output as it is computed: the widget cell
        # placed right after the configuration cell is usable before the report sections below it are done
        "--VoilaConfiguration.progressive_rendering=True",
        f"--VoilaExecutor.cell_error_instruction={CELL_ERROR_MESSAGE}",
        f"--VoilaExecutor.timeout={execution_timeout}",
        f"--VoilaConfiguration.file_allowlist={allow}",
        f"--MappingKernelManager.cull_idle_timeout={idle_timeout}",
        f"--MappingKernelManager.cull_interval={cull_interval(idle_timeout)}",
        "--MappingKernelManager.cull_connected=True",
        "--MappingKernelManager.cull_busy=False",
        f"--VoilaConfiguration.multi_kernel_manager_class={KERNEL_MANAGER_CLASS}",
        f"--VoilaConfiguration.template={VOILA_TEMPLATE}",
        f"--BoundedKernelManager.max_kernels={kernels}",
        f"--BoundedKernelManager.pool_size={kernel_pool}",
        # journeylib's security settings first (they win), then the notebooks' voila.json.
        f"--Voila.config_file_paths=[{str(security_config_dir(ip))!r}, {str(folder)!r}]",
    ]
    if token:
        argv.append("--Voila.auto_token=True")
    if not open_browser:
        argv.insert(argv.index(str(target)) + 1, "--no-browser")
    return argv


def dashboard_env(
    db: str | os.PathLike[str] | None = None,
    *,
    base: dict[str, str] | None = None,
    token: str | None = None,
    reports_dir: str | os.PathLike[str] | None = None,
    kernel_memory: str | int | None = None,
    kernelspec_folder: str | os.PathLike[str] | None = None,
) -> dict[str, str]:
    """Return the environment for the Voila server and its kernels.

    Parameters
    ----------
    db : str or os.PathLike, optional
        The store; default ``JOURNEYLIB_DB``, else ``data/journeylib.duckdb``
        found from the working directory (see
        :func:`journeylib.store.resolve_db_path`).
    base : dict, optional
        The environment to extend (default: this process's).
    token : str, optional
        The token the server requires, as ``JUPYTER_TOKEN``. Without one,
        ``JUPYTER_TOKEN`` and ``JUPYTER_TOKEN_FILE`` are removed.
    reports_dir : str or os.PathLike, optional
        The report runs the landing page and the customer 360 read (see
        :func:`journeylib.reports.landing.resolve_reports_dir`).
    kernel_memory : str, int or None
        The per-kernel memory bound; with one, and no
        ``JOURNEYLIB_MEMORY_LIMIT`` in *base*, DuckDB in the kernels gets
        :func:`duckdb_memory_limit` of it.
    kernelspec_folder : str or os.PathLike, optional
        The folder holding the bounded kernelspec, put first on ``JUPYTER_PATH``.

    Returns
    -------
    dict of str to str
        *base* plus ``JOURNEYLIB_DB`` (absolute path),
        ``REPORT_CHART_MODE=dashboard`` (live charts, whatever the shell
        says), ``JOURNEYLIB_REPORTS`` (absolute path), the token, if any,
        ``JUPYTER_PATH`` with the bounded kernelspec's folder (if any) and
        :data:`JUPYTER_DATA_DIR` (the page template) first, and with a bound
        ``JOURNEYLIB_MEMORY_LIMIT``.

    Raises
    ------
    JourneyLibError
        If no store is found; the message lists where it looked.
    DashboardError
        If *kernel_memory* is not a size.
    """
    env = dict(os.environ if base is None else base)
    env["JOURNEYLIB_DB"] = str(resolve_db_path(None if db is None else Path(db)))
    env["REPORT_CHART_MODE"] = "dashboard"
    env[REPORTS_ENV] = str(resolve_reports_dir(reports_dir))
    env.pop(TOKEN_ENV, None)
    env.pop("JUPYTER_TOKEN_FILE", None)
    if token:
        env[TOKEN_ENV] = token
    duckdb_limit = duckdb_memory_limit(_resolve_kernel_memory(kernel_memory))
    if duckdb_limit and not env.get("JOURNEYLIB_MEMORY_LIMIT"):
        env["JOURNEYLIB_MEMORY_LIMIT"] = duckdb_limit
    rest = env.get("JUPYTER_PATH")
    first = [str(Path(kernelspec_folder).resolve())] if kernelspec_folder is not None else []
    env["JUPYTER_PATH"] = os.pathsep.join([*first, str(JUPYTER_DATA_DIR), *([rest] if rest else [])])
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


def _port_in_use(port: int, ip: str = _HOST) -> bool:
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((ip if ip != "localhost" else _HOST, port))
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
    ip: str = LOOPBACK,
    token: str | None = None,
    idle_timeout: int = DEFAULT_IDLE_TIMEOUT,
    reports_dir: str | os.PathLike[str] | None = None,
    kernel_memory: str | int | None = DEFAULT_KERNEL_MEMORY,
    max_kernels: int | None = None,
    kernel_pool: int = DEFAULT_KERNEL_POOL,
) -> subprocess.Popen[bytes]:
    """Start Voila in the background and return its process (not waiting for it to be ready).

    Voila runs in a session and process group of its own, so a Ctrl-C in the
    terminal reaches only this process, which stops it with
    :func:`stop_dashboard`.

    With a *kernel_memory* bound, the bounded kernelspec
    (:func:`journeylib.reports.kernel_launcher.write_kernelspec`) is written
    into a new private folder (``journeylib-dashboard-kernels-*`` in the
    temporary directory, mode 0700) put first on Voila's ``JUPYTER_PATH``;
    :func:`kernelspec_dir` names it and :func:`stop_dashboard` removes it.

    Parameters
    ----------
    notebooks_dir, port, db, notebook, execution_timeout, open_browser, ip, token, idle_timeout, kernel_memory, max_kernels, kernel_pool
        As in :func:`dashboard_command`; *token* reaches Voila as
        ``JUPYTER_TOKEN`` (:func:`dashboard_env`).
    log : file object, str or os.PathLike, optional
        Where Voila's output goes (a path is opened for appending); default:
        this process's stdout/stderr.
    reports_dir : str or os.PathLike, optional
        The report runs whose latest summaries the landing page shows; default
        ``$JOURNEYLIB_REPORTS``, else ``reports`` next to *notebooks_dir*.

    Returns
    -------
    subprocess.Popen
        The server. Follow with :func:`wait_until_ready` and end with
        :func:`stop_dashboard`.

    Raises
    ------
    DashboardError
        If *port* is already in use on *ip*, the folder, notebook or store
        does not exist, or *ip* is beyond the loopback without a token.
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
        ip=ip,
        token=token,
        idle_timeout=idle_timeout,
        kernel_memory=kernel_memory,
        max_kernels=max_kernels,
        kernel_pool=kernel_pool,
    )
    if _port_in_use(port, ip):
        msg = (
            f"port {port} on {ip} is already in use; pass another port (e.g. --port {port + 1}) "
            "or stop the server that holds it"
        )
        raise DashboardError(msg)
    bound = _resolve_kernel_memory(kernel_memory)
    spec_folder = Path(tempfile.mkdtemp(prefix="journeylib-dashboard-kernels-")) if bound else None
    try:
        if spec_folder is not None and bound is not None:
            write_kernelspec(spec_folder, bound)
        env = dashboard_env(
            db,
            token=token,
            reports_dir=resolve_reports_dir(reports_dir, notebooks_dir=notebooks_dir),
            kernel_memory=bound,
            kernelspec_folder=spec_folder,
        )
        folder = Path(notebooks_dir).expanduser().resolve()
        out: IO[Any] | None
        if log is None or hasattr(log, "write"):
            out = log  # type: ignore[assignment]
            process = subprocess.Popen(
                argv,
                cwd=folder,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT if out else None,
                start_new_session=True,
            )
        else:
            with open(log, "ab") as handle:  # the child keeps its own copy of the descriptor
                process = subprocess.Popen(
                    argv, cwd=folder, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
                )
    except BaseException:
        if spec_folder is not None:
            shutil.rmtree(spec_folder, ignore_errors=True)
        raise
    if spec_folder is not None:
        _KERNELSPEC_DIRS[process.pid] = spec_folder
    return process


def kernelspec_dir(process: subprocess.Popen[Any]) -> Path | None:
    """Return the private ``JUPYTER_PATH`` folder of a server from :func:`start_dashboard`, while it runs.

    Parameters
    ----------
    process : subprocess.Popen
        The server.

    Returns
    -------
    pathlib.Path or None
        The folder holding ``kernels/python3/kernel.json`` (the bounded
        kernelspec); None without a memory bound or after :func:`stop_dashboard`.
    """
    return _KERNELSPEC_DIRS.get(process.pid)


def wait_until_ready(
    port: int = DEFAULT_PORT,
    timeout: float = 60.0,
    *,
    process: subprocess.Popen[Any] | None = None,
    interval: float = 0.2,
    ip: str = LOOPBACK,
) -> str:
    """Wait until a Voila server on *port* answers, without executing any notebook.

    Probes ``/voila/static/voila.js`` (a static file, served without the
    token); asking for ``/`` would start a kernel and run the notebook.

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
    ip : str, default "127.0.0.1"
        The interface the server listens on (``0.0.0.0`` is probed on 127.0.0.1).

    Returns
    -------
    str
        The server's base URL, ``http://127.0.0.1:<port>/``.

    Raises
    ------
    DashboardError
        If the process exited, or the server did not answer within *timeout*.
    """
    base = dashboard_url(port, ip=ip)
    url = base.rstrip("/") + READY_PATH
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
                    return base
                last_error = f"HTTP {response.status}"
        except urllib.error.HTTPError as exc:
            last_error = f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError) as exc:
            last_error = str(getattr(exc, "reason", exc))
        if time.monotonic() >= deadline:
            msg = (
                f"the Voila server on {ip}:{port} was not ready after {timeout:.0f} s ({url}: {last_error}); "
                "is something else on that port, or is the machine very slow? Try a longer timeout."
            )
            raise DashboardError(msg)
        time.sleep(interval)


def _proc_stat(pid: int) -> tuple[int, str, str] | None:
    """Return (parent pid, state, start time) of *pid* from ``/proc``, or None if it is gone (or there is no ``/proc``)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces: split after its last ")".
    fields = raw[raw.rindex(")") + 2 :].split()
    return int(fields[1]), fields[0], fields[19]


def dashboard_processes(pid: int) -> list[tuple[int, str]]:
    """Return the processes descended from *pid* (its kernels, their children), as (pid, start time) pairs.

    Read from ``/proc``; on a system without it the list is empty. Kernels
    run in sessions of their own, so only their parentage ties them to Voila,
    and only while Voila runs: ask before stopping it.

    Parameters
    ----------
    pid : int
        The Voila server's process id.

    Returns
    -------
    list of (int, str)
        Each descendant's pid and its start time (in clock ticks since boot,
        as ``/proc`` gives it), which tells a process from a later one that
        reuses its pid.
    """
    proc = Path("/proc")
    if not proc.is_dir():
        return []
    children: dict[int, list[tuple[int, str]]] = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        stat = _proc_stat(int(entry.name))
        if stat is not None:
            children.setdefault(stat[0], []).append((int(entry.name), stat[2]))
    found: list[tuple[int, str]] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child[0])
    return found


def _alive(process: tuple[int, str]) -> bool:
    stat = _proc_stat(process[0])
    return stat is not None and stat[2] == process[1] and stat[1] != "Z"


def _signal_group(process: subprocess.Popen[Any], sig: signal.Signals) -> None:
    """Send *sig* to *process*'s process group if it leads one (as :func:`start_dashboard` makes it), else to it alone."""
    with contextlib.suppress(ProcessLookupError):
        if os.name == "posix" and os.getpgid(process.pid) == process.pid:
            os.killpg(process.pid, sig)
        else:
            process.send_signal(sig)


def stop_dashboard(process: subprocess.Popen[Any], timeout: float = 15.0) -> int:
    """Stop a server from :func:`start_dashboard`, its process group and every kernel it started.

    Sends SIGTERM to Voila's process group (Voila then shuts its kernels
    down), SIGKILL after *timeout*, and finally SIGKILL to any process that
    descended from Voila (:func:`dashboard_processes`) and still runs. Then
    removes the server's bounded kernelspec folder (:func:`kernelspec_dir`).

    Parameters
    ----------
    process : subprocess.Popen
        The server.
    timeout : float, default 15
        Seconds to wait after SIGTERM before SIGKILL.

    Returns
    -------
    int
        Voila's exit code.
    """
    try:
        return _stop(process, timeout)
    finally:
        spec_folder = _KERNELSPEC_DIRS.pop(process.pid, None)
        if spec_folder is not None:
            shutil.rmtree(spec_folder, ignore_errors=True)


def _stop(process: subprocess.Popen[Any], timeout: float) -> int:
    if process.poll() is not None:
        return int(process.returncode)
    left = dashboard_processes(process.pid)
    _signal_group(process, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        _signal_group(process, signal.SIGKILL)
        process.wait(timeout=timeout)
    deadline = time.monotonic() + timeout
    for pid, started in left:
        while _alive((pid, started)) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _alive((pid, started)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    return int(process.returncode)


def _bounds_text(kernel_memory: str | int | None, max_kernels: int | None, idle_timeout: int) -> str:
    """Say in one line what bounds the kernels (for the operator, at start)."""
    bound = _resolve_kernel_memory(kernel_memory)
    kernels = default_max_kernels(bound) if max_kernels is None else max_kernels
    memory = f"at most {format_bytes(bound)} of private memory each" if bound else "no memory bound (--kernel-memory none)"
    count = f"at most {kernels} at once" if kernels else "no bound on their number"
    total = f", {format_bytes(kernels * bound)} in all" if bound and kernels else ""
    return f"one kernel per open page, {count}, {memory}{total}; idle kernels are shut down after {idle_timeout} s"


@contextlib.contextmanager
def _stop_signals_interrupt() -> Iterator[None]:
    """Turn SIGTERM and SIGHUP into KeyboardInterrupt while serving, so they stop Voila as Ctrl-C does."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    wanted = [signal.SIGTERM] + ([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])
    previous = {sig: signal.signal(sig, interrupt) for sig in wanted}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def serve_dashboard(
    notebooks_dir: str | os.PathLike[str] = "notebooks",
    *,
    port: int = DEFAULT_PORT,
    db: str | os.PathLike[str] | None = None,
    notebook: str | None = None,
    open_browser: bool = False,
    execution_timeout: int = DEFAULT_EXECUTION_TIMEOUT,
    ready_timeout: float = 60.0,
    ip: str = LOOPBACK,
    token: str | bool | None = None,
    idle_timeout: int = DEFAULT_IDLE_TIMEOUT,
    kernel_memory: str | int | None = DEFAULT_KERNEL_MEMORY,
    max_kernels: int | None = None,
    kernel_pool: int = DEFAULT_KERNEL_POOL,
) -> int:
    """Serve the dashboards until interrupted; what ``journeylib dashboard`` runs.

    Prints the address once the server answers (with the token when it was
    generated), then waits for it. Ctrl-C, SIGTERM or SIGHUP stop Voila and
    its kernels (:func:`stop_dashboard`).

    Parameters
    ----------
    notebooks_dir, port, db, notebook, open_browser, execution_timeout, ip, idle_timeout, kernel_memory, max_kernels, kernel_pool
        As in :func:`dashboard_command`; *db* defaults to ``JOURNEYLIB_DB``
        or ``data/journeylib.duckdb``. The bounds are printed with the address.
    ready_timeout : float, default 60
        Seconds to wait for the server to answer.
    token : str, bool or None
        As in :func:`resolve_token`: by default a token is required (and
        generated) only beyond the loopback; ``True`` requires one on the
        loopback too.

    Returns
    -------
    int
        Voila's exit code (0 after Ctrl-C, SIGTERM or SIGHUP).

    Raises
    ------
    DashboardError
        If the server cannot start (port in use, missing notebook or store,
        no token beyond the loopback) or does not become ready.
    JourneyLibError
        If no store is found.
    """
    generated = token is True or (token is None and not is_loopback(ip))
    generated = generated and not os.environ.get(TOKEN_SOURCE_ENV)
    resolved = resolve_token(ip, token)
    with _stop_signals_interrupt():
        process = start_dashboard(
            notebooks_dir,
            port=port,
            db=db,
            notebook=notebook,
            execution_timeout=execution_timeout,
            open_browser=open_browser,
            ip=ip,
            token=resolved,
            idle_timeout=idle_timeout,
            kernel_memory=kernel_memory,
            max_kernels=max_kernels,
            kernel_pool=kernel_pool,
        )
        try:
            wait_until_ready(port, ready_timeout, process=process, ip=ip)
            what = f"notebook {notebook}" if notebook else f"the notebooks of {Path(notebooks_dir).resolve()}"
            url = dashboard_url(port, ip=ip, token=resolved if generated else None)
            where = "" if is_loopback(ip) else f"; listening on {ip}:{port}, a token is required"
            hint = " (add ?token=<your token>)" if resolved and not generated else ""
            print(f"journeylib dashboard: serving {what} at {url}{hint}{where}  (Ctrl-C stops it)")  # noqa: T201 -- a server's job
            print(f"journeylib dashboard: {_bounds_text(kernel_memory, max_kernels, idle_timeout)}")  # noqa: T201
            return process.wait()
        except KeyboardInterrupt:
            stop_dashboard(process)
            return 0
        finally:
            with contextlib.suppress(Exception):
                stop_dashboard(process)
