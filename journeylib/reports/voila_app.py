"""Voila with journeylib's landing page at ``/``: what ``journeylib dashboard`` runs (``python -m journeylib.reports.voila_app``).

It is Voila (:class:`voila.app.Voila`, every option and configuration file
as usual) with one more handler: serving a folder, ``/`` answers the landing
page of :mod:`journeylib.reports.landing` (the dashboards with the headline
numbers of the latest report run) instead of Voila's file list, which stays
at ``/voila/tree``. The page is built in the server process from the report
artifacts on disk: opening it starts no kernel. Its handler is a
jupyter_server handler, so the ``Host`` check, the token and the
Content-Security-Policy of ``docs/adr/0007-dashboard-serving.md`` apply to it
as to every Voila page. The reports folder is ``$JOURNEYLIB_REPORTS`` (set by
``journeylib dashboard``), else ``reports`` next to the notebooks folder.

With progressive rendering Voila runs a page's cells over a websocket of its
own; :class:`PageExecutionHandler` serves it so that a page whose viewer
leaves before its last cell has run has its kernel shut down at once, and a
page whose cells run longer than the websocket keep-alive (90 s) still gets
all their outputs (``docs/adr/0015-dashboard-pages-left-early.md``).
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from jupyter_core.utils import ensure_async
from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.utils import url_path_join
from tornado import web
from tornado.websocket import WebSocketClosedError
from voila.app import Voila
from voila.tornado.execution_request_handler import ExecutionRequestHandler

from journeylib.reports.landing import dashboard_pages_data, landing_html

__all__ = ["JourneylibVoila", "LandingHandler", "PageExecutionHandler", "main"]


class LandingHandler(JupyterHandler):
    """Answer ``GET /`` with the landing page of the served notebooks folder."""

    def initialize(self, notebooks_dir: str) -> None:
        """Keep the served folder (tornado calls this with the handler's arguments)."""
        self.notebooks_dir = notebooks_dir

    @web.authenticated
    def get(self) -> None:
        """Write the landing page (``text/html``), built from the latest report run's summaries."""
        pages = dashboard_pages_data(self.notebooks_dir)
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.set_header("Cache-Control", "no-store")
        self.finish(landing_html(pages, base_url=self.base_url))


class PageExecutionHandler(ExecutionRequestHandler):
    """Voila's progressive-rendering socket (``/voila/execution/<kernel id>``), ending the kernel of a page left early.

    Voila's page opens this socket once its widget manager is ready, asks
    for the notebook's execution, receives each cell's outputs as the cell
    finishes, and closes the socket after the last one; it never reconnects.
    Two things change from Voila 0.5.13's handler:

    * **The socket is read while the cells run.** Voila runs the whole
      notebook inside ``on_message``, and tornado reads no frame of a
      socket until its ``on_message`` returns: the viewer's pongs were not
      read, so jupyter_server's keep-alive closed the socket of a page whose
      cells ran longer than its ping timeout (90 s: the cells finishing after
      that never reached the page), and a viewer who left was noticed only
      when a write to the closed connection failed: after the running cell
      and, as the first write still succeeds, the next one. The cells now
      run in a task of their own.
    * **A page left before its last cell ran has its kernel shut down.** When
      the socket closes before the last cell's outputs were sent (the tab was
      closed, the viewer went to another page, the browser or the connection
      dropped), Voila stopped sending cells once it noticed, and kept the
      kernel, idle, until the idle culler ended it. The
      page's ``beforeunload`` beacon (``/voila/api/shutdown/<kernel id>``)
      shuts the kernel down only when a browser sends it: not on a tab closed
      without that event, nor before the page's widget manager is ready.
      The running cell is now abandoned and the kernel shut down, as the
      beacon would: its remaining cells could not reach any page. A page
      whose cells have all run keeps its kernel (its widgets use it).

    A warm kernel (:mod:`journeylib.reports.kernel_manager`) is not concerned
    while it waits: it has no page and so no such socket; once handed to a
    page it is that page's kernel.
    """

    #: Shutdowns under way (a reference keeps each task alive until it is done).
    shutdowns: ClassVar[set[asyncio.Future[None]]] = set()

    async def open(self, kernel_id: str) -> None:
        """Note the page's kernel, and that its cells have not run yet, then open as Voila does."""
        self.page_kernel_id = kernel_id
        self.page_done = False
        self.execution: asyncio.Future[None] | None = None
        await super().open(kernel_id)

    async def on_message(self, message_str: str | bytes) -> None:
        """Start running the page's cells as Voila does, in a task: the socket goes on being read meanwhile."""
        if self.execution is not None and not self.execution.done():
            await self.write_message({"action": "execution_error", "payload": {"error": "The page is already being executed"}})
            return
        self.execution = asyncio.ensure_future(self._run_page_cells(message_str))

    async def _run_page_cells(self, message_str: str | bytes) -> None:
        try:
            await super().on_message(message_str)
        except (WebSocketClosedError, asyncio.CancelledError):
            self.log.debug("kernel %s: the page left before its outputs were sent", self.page_kernel_id)
            return
        except Exception:
            self.log.exception("kernel %s: running the page's cells failed", self.page_kernel_id)
            return
        # every cell has run (a notebook without cells sends no result); a refused request changes nothing
        self.page_done = self.page_done or getattr(self, "_executor", None) is not None

    def write_message(self, message: Any, binary: bool = False) -> Any:
        """Send *message* as Voila does; the last cell's outputs mark the page done before they leave."""
        if isinstance(message, dict) and message.get("action") == "execution_result":
            payload = message.get("payload") or {}
            if payload.get("cell_index", -1) >= payload.get("total_cell", 0) - 1:
                self.page_done = True
        return super().write_message(message, binary)

    def on_close(self) -> None:
        """Stop Voila's kernel client and, if the page's cells have not all run, abandon them and shut its kernel down."""
        kernel_id: str | None = getattr(self, "page_kernel_id", None)
        left_early = kernel_id is not None and not getattr(self, "page_done", True)
        execution = getattr(self, "execution", None)
        if left_early and execution is not None:
            execution.cancel()
        if getattr(self, "_executor", None) is not None:  # Voila's on_close fails when no execution was asked for
            super().on_close()
        if kernel_id is None or not left_early or kernel_id not in self.kernel_manager:
            return
        ExecutionRequestHandler._execution_data.pop(kernel_id, None)  # a page that never asked for its cells
        # Voila then logs the cell that was running as failed (DeadKernelError): that is this shutdown
        self.log.info("the page of kernel %s was left before its last cell ran: shutting the kernel down", kernel_id)
        task = asyncio.ensure_future(self._shut_down_page_kernel(kernel_id))
        self.shutdowns.add(task)
        task.add_done_callback(self.shutdowns.discard)

    async def _shut_down_page_kernel(self, kernel_id: str) -> None:
        try:
            if kernel_id in self.kernel_manager:  # the page's beacon may have shut it down meanwhile
                await ensure_async(self.kernel_manager.shutdown_kernel(kernel_id))
        except Exception:  # the beacon's shutdown and this one may cross: the kernel is gone either way
            if kernel_id in self.kernel_manager:
                self.log.exception("could not shut down kernel %s of a page that was left", kernel_id)


class JourneylibVoila(Voila):
    """Voila whose root page, when a folder is served, is journeylib's landing page."""

    name = "journeylib-voila"

    def init_handlers(self) -> list[Any]:
        """Return Voila's handlers, with the landing page first for ``/`` when a folder is served.

        Voila's progressive-rendering socket is served by :class:`PageExecutionHandler`.
        """
        handlers = [
            (handler[0], PageExecutionHandler, *handler[2:])
            if isinstance(handler, tuple) and handler[1:2] == (ExecutionRequestHandler,)
            else handler
            for handler in super().init_handlers()
        ]
        if self.notebook_path:
            return handlers
        landing = (url_path_join(self.server_url, r"/?"), LandingHandler, {"notebooks_dir": str(self.root_dir)})
        return [landing, *handlers]


main = JourneylibVoila.launch_instance

if __name__ == "__main__":
    main()
