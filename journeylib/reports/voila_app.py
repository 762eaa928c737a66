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
"""

from __future__ import annotations

from typing import Any

from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.utils import url_path_join
from tornado import web
from voila.app import Voila

from journeylib.reports.landing import dashboard_pages_data, landing_html

__all__ = ["JourneylibVoila", "LandingHandler", "main"]


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


class JourneylibVoila(Voila):
    """Voila whose root page, when a folder is served, is journeylib's landing page."""

    name = "journeylib-voila"

    def init_handlers(self) -> list[Any]:
        """Return Voila's handlers, with the landing page first for ``/`` when a folder is served."""
        handlers: list[Any] = super().init_handlers()
        if self.notebook_path:
            return handlers
        landing = (url_path_join(self.server_url, r"/?"), LandingHandler, {"notebooks_dir": str(self.root_dir)})
        return [landing, *handlers]


main = JourneylibVoila.launch_instance

if __name__ == "__main__":
    main()
