"""A Voila kernel manager that starts at most ``max_kernels`` kernels at a time.

Neither jupyter_server nor Voila 0.5 bounds the number of kernels a server
runs (voila-dashboards/voila#617 asks for it; idle culling is the advice
there). Voila takes its kernel manager class from
``VoilaConfiguration.multi_kernel_manager_class``; ``journeylib dashboard``
names :class:`BoundedKernelManager` there and sets
``--BoundedKernelManager.max_kernels``. Every page view starts one kernel, so
with a per-kernel memory bound (:mod:`journeylib.reports.kernel_launcher`)
the kernels together hold at most ``max_kernels`` × that bound of private
memory. A page asked for while all are in use gets HTTP 503 whose page says
:data:`FULL_MESSAGE` (no kernel is started; the server log names the bound
and ``--max-kernels``); it works
again as soon as a kernel is shut down (the viewer closes the page, or the
idle culler ends it). Restarting a kernel does not count as a new one.

Warm kernels (``pool_size``)
----------------------------
A page's first second or three is its kernel starting and importing pandas,
Altair, ipywidgets and the journeylib modules its first cell names. With
``--BoundedKernelManager.pool_size=N`` the manager keeps *N* kernels started
ahead of the viewers, each of which has already imported every module the
served notebooks import (:func:`warmup_modules`: the ``import`` statements of
their code cells, read with :mod:`ast`; nothing else runs, no name is left in
the kernel's namespace). A page view takes a warm kernel when one is ready
for its kernelspec and folder, and the manager starts the next one in the
background; a warm kernel serves one page and is never reused. Voila gives a
kernel the page's request (``QUERY_STRING``, ``VOILA_*``) in its
environment at start; a warm kernel gets the same variables, and the working
folder, from a silent execution before the page's first cell (the same way
Voila itself sets ``VOILA_KERNEL_ID``). Warm kernels count towards
``max_kernels``: a page asked for at the bound still gets a warm kernel that
is ready, and none is started past the bound. The idle culler leaves them
alone until they are handed out. Voila's own ``preheat_kernel`` cannot be
used: it refuses progressive rendering, and runs the whole notebook before
the request (``docs/adr/0012-dashboard-landing.md``).
"""

from __future__ import annotations

import ast
import asyncio
import json
import os
from pathlib import Path
from typing import Any, cast

import nbformat
from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager
from tornado import ioloop, web
from traitlets import Integer, Unicode

__all__ = ["FULL_MESSAGE", "BoundedKernelManager", "warmup_code", "warmup_modules"]

#: Seconds a warm kernel may take to start and import the served notebooks' modules before it is given up.
WARMUP_TIMEOUT = 120


def warmup_modules(folder: str | os.PathLike[str]) -> list[str]:
    """Return the modules the notebooks of *folder* import, in the order first seen.

    Every top-level ``import a.b`` and ``from a.b import c`` of every code
    cell of every ``*.ipynb`` directly in *folder* (``a.b`` in both cases;
    relative imports and cells that do not parse, such as cells with IPython
    magics, are skipped).

    Parameters
    ----------
    folder : str or os.PathLike
        The served notebooks folder.

    Returns
    -------
    list of str
        Module names, without duplicates.
    """
    found: dict[str, None] = {}
    for path in sorted(Path(folder).glob("*.ipynb")):
        try:
            nb = nbformat.read(path, as_version=4)
        except (OSError, ValueError):
            continue  # Voila reports an unreadable notebook when it is asked for
        for cell in nb.cells:
            if cell.cell_type != "code":
                continue
            try:
                tree = ast.parse(cell.source)
            except SyntaxError:
                continue
            for node in tree.body:
                if isinstance(node, ast.Import):
                    found.update((alias.name, None) for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    found[node.module] = None
    return list(found)


def warmup_code(modules: list[str]) -> str:
    """Return the code a warm kernel runs: import *modules*, binding no name in the kernel's namespace.

    A module that fails to import is skipped (the notebook's own import cell
    then shows the error to its viewer).

    Parameters
    ----------
    modules : list of str
        As :func:`warmup_modules` returns.

    Returns
    -------
    str
        Python source.

    Examples
    --------
    >>> ns = {}
    >>> exec(warmup_code(["json", "no_such_module_here"]), ns)
    >>> sorted(k for k in ns if not k.startswith("__"))
    []
    """
    return (
        f"def _journeylib_warmup(names={modules!r}):\n"
        "    import importlib\n"
        "    for name in names:\n"
        "        try:\n"
        "            importlib.import_module(name)\n"
        "        except Exception:\n"
        "            pass\n"
        "_journeylib_warmup()\n"
        "del _journeylib_warmup\n"
    )


def handover_code(env: dict[str, str], cwd: str) -> str:
    """Return the code that gives a warm kernel a page's environment and working folder.

    Parameters
    ----------
    env : dict of str to str
        The variables to set (those Voila would have started the kernel with
        that differ from the warm kernel's).
    cwd : str
        The page's working folder.

    Returns
    -------
    str
        Python source binding no name in the kernel's namespace.
    """
    return f"__import__('os').environ.update({json.dumps(env)})\n__import__('os').chdir({cwd!r})\n"

#: What a viewer reads when every kernel is in use (``{n}`` is the bound).
FULL_MESSAGE = (
    "Too many dashboard pages are open: the server runs at most {n} at once. Close a dashboard page you no "
    "longer need, or try again in a few minutes (idle pages are closed automatically)"
)


class BoundedKernelManager(AsyncMappingKernelManager):
    """jupyter_server's kernel manager, refusing a new kernel while ``max_kernels`` run or start.

    Parameters
    ----------
    **kwargs
        As for :class:`jupyter_server.services.kernels.kernelmanager.AsyncMappingKernelManager`;
        ``max_kernels`` is a configurable trait (``--BoundedKernelManager.max_kernels=N``).

    Attributes
    ----------
    max_kernels : int
        The most kernels running or starting at once; 0 for no bound.
    """

    max_kernels = Integer(
        0,
        config=True,
        help="The most kernels running or starting at once (0: no bound). A page asked for beyond it gets HTTP 503.",
    )
    pool_size = Integer(
        0,
        config=True,
        help="Kernels kept started ahead of page views, with the served notebooks' modules imported (0: none).",
    )
    pool_kernel_name = Unicode(
        "python3",
        config=True,
        help="The kernelspec of the warm kernels (the one the served notebooks name).",
    )

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.starting = 0  # kernels whose start was admitted and has not finished yet
        self.pool: list[tuple[str, str, str]] = []  # ready warm kernels: (kernel id, kernelspec, working folder)
        self.warming = 0  # warm kernels being started
        self.pool_env: dict[str, str] = {}  # the environment the warm kernels were started with
        self.closing = False  # set by shutdown_all: no warm kernel is started any more
        if self.pool_size > 0:
            ioloop.IOLoop.current().add_callback(self.refill_pool)

    def refill_pool(self) -> None:
        """Start warm kernels in the background until :attr:`pool_size` are ready or starting (within :attr:`max_kernels`)."""
        while not self.closing and self.pool_size > len(self.pool) + self.warming and (
            self.max_kernels <= 0 or self.kernels_in_use() + self.warming < self.max_kernels
        ):
            self.warming += 1
            task = asyncio.ensure_future(self._start_warm_kernel())
            task.add_done_callback(lambda t: t.cancelled() or t.exception())  # errors are logged in the coroutine

    async def _start_warm_kernel(self) -> None:
        kernel_id = None
        try:
            env = {**os.environ}
            kernel_id = str(await super().start_kernel(kernel_name=self.pool_kernel_name, path=cast(Any, ""), env=env))
            client = cast(Any, self.get_kernel(kernel_id).client())  # an AsyncKernelClient: its methods are coroutines
            client.start_channels()
            try:
                await asyncio.wait_for(client.wait_for_ready(), WARMUP_TIMEOUT)
                code = warmup_code(warmup_modules(self.root_dir))
                await client.execute(code, silent=True, store_history=False, reply=True, timeout=WARMUP_TIMEOUT)
            finally:
                client.stop_channels()
            self.pool_env = env
            self.pool.append((kernel_id, self.pool_kernel_name, str(self.cwd_for_path(""))))
            self.log.info("warm kernel %s ready (%d in the pool)", kernel_id, len(self.pool))
        except Exception:
            self.log.exception("could not start a warm kernel; pages start their own kernels")
            if kernel_id is not None and kernel_id in self:
                await super().shutdown_kernel(kernel_id, now=True)
        finally:
            self.warming -= 1

    async def _take_warm_kernel(self, kernel_name: str | None, path: str | None, env: dict[str, str]) -> str | None:
        """Hand out a ready warm kernel for *kernel_name* and *path* with the page's *env*, or None."""
        cwd = str(self.cwd_for_path(path or "", env=env))
        for i, (kernel_id, name, folder) in enumerate(self.pool):
            if name == (kernel_name or self.default_kernel_name) and folder == cwd and kernel_id in self:
                del self.pool[i]
                break
        else:
            return None
        delta = {k: v for k, v in env.items() if self.pool_env.get(k) != v}
        client = cast(Any, self.get_kernel(kernel_id).client())
        client.start_channels()
        try:
            await client.execute(handover_code(delta, cwd), silent=True, store_history=False, reply=True, timeout=30)
        finally:
            client.stop_channels()
        self.refill_pool()
        return kernel_id

    async def shutdown_kernel(self, kernel_id: str, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        """Shut *kernel_id* down as jupyter_server does (a warm kernel leaves the pool), then refill the pool."""
        self.pool = [warm for warm in self.pool if warm[0] != kernel_id]
        await super().shutdown_kernel(kernel_id, *args, **kwargs)
        self.refill_pool()

    async def shutdown_all(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        """Shut every kernel down, warm ones included, and start no warm kernel any more."""
        self.closing = True
        self.pool = []
        await super().shutdown_all(*args, **kwargs)

    async def cull_kernel_if_idle(self, kernel_id: str) -> None:
        """Cull *kernel_id* as jupyter_server does, unless it is a warm kernel waiting for a page."""
        if any(kernel_id == warm[0] for warm in self.pool):
            return
        await super().cull_kernel_if_idle(kernel_id)

    def kernels_in_use(self) -> int:
        """Return the number of kernels running plus those being started.

        Returns
        -------
        int
            What :attr:`max_kernels` is compared with.
        """
        return len(self.list_kernel_ids()) + self.starting

    async def start_kernel(self, *args: Any, **kwargs: Any) -> str:  # type: ignore[override]  # jupyter_client types it sync
        """Start a kernel as jupyter_server does, unless :attr:`max_kernels` are running or starting.

        Parameters
        ----------
        *args, **kwargs
            As for jupyter_server's ``start_kernel``: ``kernel_id`` (an
            existing kernel's id is returned as is, never refused), ``path``
            (whose folder is the kernel's working directory), ``kernel_name``,
            ``env``...

        Returns
        -------
        str
            The kernel's id.

        Raises
        ------
        tornado.web.HTTPError
            503 with :data:`FULL_MESSAGE` when the bound is reached.
        """
        kernel_id = kwargs.get("kernel_id")
        if kernel_id is not None and kernel_id in self:
            return str(await super().start_kernel(*args, **kwargs))
        if self.pool and not args and kernel_id is None:
            warm = await self._take_warm_kernel(kwargs.get("kernel_name"), kwargs.get("path"), dict(kwargs.get("env") or {}))
            if warm is not None:
                return warm
        if self.max_kernels > 0 and self.kernels_in_use() >= self.max_kernels:
            self.log.warning(
                "refused to start a kernel for %s: %d kernels running or starting, the maximum is %d "
                "(journeylib dashboard --max-kernels)",
                kwargs.get("path"),
                self.kernels_in_use(),
                self.max_kernels,
            )
            # Voila's error page shows the reason (its status line), so the reason is the whole sentence
            message = FULL_MESSAGE.format(n=self.max_kernels)
            raise web.HTTPError(503, message, reason=message)
        self.starting += 1
        try:
            return str(await super().start_kernel(*args, **kwargs))
        finally:
            self.starting -= 1
