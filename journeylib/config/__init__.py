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

from journeylib.config.eventmap import EventRule
from journeylib.config.journey import AllOf, AnyOf, Condition, Conventions, JourneyDefinition, Outcome, Stage
from journeylib.config.sources import ReaderOptions, SourceConfig, SourcesConfig
from journeylib.config.suite import SuiteConfig, SuiteNotebook

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
