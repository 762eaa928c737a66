"""Widgets: each wraps one journeylib computation and recomputes when its inputs change.

A widget's data parameters equal the signature of the ``_data`` function it
wraps; it shows its chart in a :class:`~journeylib.widgets.base.LiveChart` area
(a new ``altair.JupyterChart`` for each new chart) and its errors in a visible
HTML area. Build widgets only in dashboard mode
(``journeylib.notebook.setup_altair() == "dashboard"``).

In a notebook, build each from the analysis context with
``<Name>Widget.from_journey(journey, **options)``: store, definition and scope
come from the context, and the computations share its cache, so the first
view reuses what the notebook computed (see :mod:`journeylib.widgets.base`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from journeylib.lazy import export_names, load_export

if TYPE_CHECKING:
    from journeylib.widgets.accounts import AccountList
    from journeylib.widgets.cohorts import CohortsWidget
    from journeylib.widgets.customer360 import Customer360Widget
    from journeylib.widgets.data_health import DataHealthWidget
    from journeylib.widgets.drivers import DriversWidget
    from journeylib.widgets.journey_map import JourneyMapWidget
    from journeylib.widgets.risk import RiskWidget
    from journeylib.widgets.voice_of_customer import VoiceOfCustomerWidget
    from journeylib.widgets.worklist import WorklistWidget

# Each name is imported from its module on first use (``__getattr__``), so importing one module of the
# package (``import journeylib.widgets.<module>``) does not import its siblings and their dependencies.
_EXPORTS: dict[str, str] = {
    "AccountList": "journeylib.widgets.accounts",
    "CohortsWidget": "journeylib.widgets.cohorts",
    "Customer360Widget": "journeylib.widgets.customer360",
    "DataHealthWidget": "journeylib.widgets.data_health",
    "DriversWidget": "journeylib.widgets.drivers",
    "JourneyMapWidget": "journeylib.widgets.journey_map",
    "RiskWidget": "journeylib.widgets.risk",
    "VoiceOfCustomerWidget": "journeylib.widgets.voice_of_customer",
    "WorklistWidget": "journeylib.widgets.worklist",
}

__all__ = ["AccountList", "CohortsWidget", "Customer360Widget", "DataHealthWidget", "DriversWidget", "JourneyMapWidget", "RiskWidget", "VoiceOfCustomerWidget", "WorklistWidget"]


def __getattr__(name: str) -> Any:
    return load_export(__name__, _EXPORTS, globals(), name)


def __dir__() -> list[str]:
    return export_names(globals(), _EXPORTS)
