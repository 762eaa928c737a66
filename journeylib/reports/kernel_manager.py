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
"""

from __future__ import annotations

from typing import Any

from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager
from tornado import web
from traitlets import Integer

__all__ = ["FULL_MESSAGE", "BoundedKernelManager"]

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

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.starting = 0  # kernels whose start was admitted and has not finished yet

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
