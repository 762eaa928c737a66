"""Widgets: each wraps one journeylib computation and recomputes when its inputs change.

A widget's data parameters equal the signature of the ``_data`` function it
wraps; it shows its chart in a :class:`~journeylib.widgets._live.LiveChart` area
(a new ``altair.JupyterChart`` for each new chart) and its errors in a visible
HTML area. Build widgets only in dashboard mode
(``journeylib.theme.setup_altair() == "dashboard"``).
"""

from __future__ import annotations

from .cohorts import CohortsWidget
from .data_health import DataHealthWidget
from .drivers import DriversWidget
from .journey_map import JourneyMapWidget
from .voice_of_customer import VoiceOfCustomerWidget

__all__ = ["CohortsWidget", "DataHealthWidget", "DriversWidget", "JourneyMapWidget", "VoiceOfCustomerWidget"]
