"""Exception and warning hierarchy of journeylib.

Everything journeylib raises on purpose roots in :class:`JourneyLibError`, so a
caller (the CLI, a notebook, a scheduler) can catch the library's own failures
apart from programming errors. Plain argument misuse raises ``ValueError`` or
``TypeError`` as usual.
"""

from __future__ import annotations


class JourneyLibError(Exception):
    """Base class of every error journeylib raises on purpose."""


class SchemaError(JourneyLibError):
    """A table or frame does not have the canonical columns or types."""


class ConfigError(JourneyLibError):
    """A configuration file (journey definition, suite, parameters) is invalid.

    Parameters
    ----------
    problems : list of str
        Every problem found, each naming the key and what is allowed.
    source : str, optional
        The file (or ``"<dict>"``) the configuration came from.
    """

    def __init__(self, problems: list[str], source: str | None = None) -> None:
        self.problems = list(problems)
        self.source = source
        where = f" in {source}" if source else ""
        lines = "\n".join(f"  - {p}" for p in self.problems)
        msg = f"{len(self.problems)} problem(s){where}:\n{lines}"
        super().__init__(msg)


class SourceFormatError(JourneyLibError):
    """An input file cannot be read at all (wrong format, missing columns, empty).

    Row-level problems never raise this: such rows are quarantined with a
    reason. This error means nothing of the file was loaded.
    """


class EmptyResultError(JourneyLibError):
    """A computation produced no rows where rows were required."""


class ScopeError(EmptyResultError, ValueError):
    """A scope filter selects no customer: a segment or plan that no customer has.

    Both an :class:`EmptyResultError` (the analysis would be empty) and a
    ``ValueError`` (the argument is wrong); the message lists the values that
    exist.
    """


class StoreError(JourneyLibError):
    """The database engine of the store failed for a reason outside the data.

    Raised (by :mod:`journeylib.store`) in place of the engine's own error,
    which stays attached as ``__cause__``; the message names the store or
    file concerned and what to do. The subclasses say which failure it was.
    """


class StoreLockedError(StoreError):
    """Another process holds the store's file lock (an ingest, a notebook, a dashboard)."""


class StoreFullError(StoreError):
    """A write failed because the disk (of the store or of its temporary directory) is full."""


class StoreIOError(StoreError):
    """The engine could not read or write a file (permissions, a missing folder, a failing disk)."""


class OutOfMemoryError(StoreError):
    """The engine needed more memory than its memory limit allows."""


class StatisticalWarning(UserWarning):
    """A statistical caveat: a tiny cohort, a near-constant feature, a wide interval."""


class DataQualityWarning(UserWarning):
    """Input data was accepted with an assumption the user should know about."""
