"""Typed, validated configuration: one model per file kind, read and reported the same way.

* journey definitions — :class:`JourneyDefinition` (:mod:`journeylib.config.journey`)
* ``sources.yaml`` — :class:`SourcesConfig` (:mod:`journeylib.config.sources`), with
  the event rules of its sources, :class:`EventRule` (:mod:`journeylib.config.eventmap`)
* report suites — :class:`SuiteConfig` (:mod:`journeylib.config.suite`)

Every file is read by :mod:`journeylib.config.loader` (dates stay text, keys keep
their line) and every problem is reported at once in one
:class:`~journeylib.exceptions.ConfigError` naming the key path, the line, what
is allowed and what was found.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from journeylib.config.journey import AllOf, AnyOf, Condition, Conventions, JourneyDefinition, Outcome, Stage

if TYPE_CHECKING:
    from journeylib.config.eventmap import EventRule
    from journeylib.config.sources import ReaderOptions, SourceConfig, SourcesConfig
    from journeylib.config.suite import SuiteConfig, SuiteNotebook

# Imported on first use: sources.yaml's models pull in every vendor reader (and pyarrow), which an
# analysis that only reads a journey definition does not need (about 0.3 s of every process).
_LAZY = {
    "EventRule": "journeylib.config.eventmap",
    "ReaderOptions": "journeylib.config.sources",
    "SourceConfig": "journeylib.config.sources",
    "SourcesConfig": "journeylib.config.sources",
    "SuiteConfig": "journeylib.config.suite",
    "SuiteNotebook": "journeylib.config.suite",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    msg = f"module 'journeylib.config' has no attribute {name!r}"
    raise AttributeError(msg)

__all__ = [
    "AllOf",
    "AnyOf",
    "Condition",
    "Conventions",
    "EventRule",
    "JourneyDefinition",
    "Outcome",
    "ReaderOptions",
    "SourceConfig",
    "SourcesConfig",
    "Stage",
    "SuiteConfig",
    "SuiteNotebook",
]
