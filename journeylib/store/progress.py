"""Progress bars for long operations (ingest, report suites, benchmarks), drawn only where someone watches.

A bar is drawn on stderr when asked (``progress=True``, ``--progress``) or,
by default, when stderr is a terminal; captured output (tests, cron, CI)
gets none, so logs stay free of carriage-return noise.
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["progress_bar", "progress_enabled"]


def progress_enabled(progress: bool | None) -> bool:
    """Return whether to draw progress bars: as asked, else only when stderr is a terminal.

    Parameters
    ----------
    progress : bool or None
        True or False to force; None to decide from ``sys.stderr.isatty()``.

    Returns
    -------
    bool
        Whether bars are drawn.

    Examples
    --------
    >>> progress_enabled(False), progress_enabled(True)
    (False, True)
    """
    if progress is not None:
        return bool(progress)
    try:
        return bool(sys.stderr.isatty())
    except (AttributeError, ValueError):  # a replaced or closed stderr
        return False


def progress_bar(*, total: int | None, desc: str, unit: str, progress: bool | None = None) -> Any:
    """Return a tqdm bar on stderr, disabled unless :func:`progress_enabled`.

    Parameters
    ----------
    total : int or None
        Number of steps (None: unknown).
    desc : str
        Label at the left of the bar (e.g. ``"ingest events"``).
    unit : str
        What a step is (``"file"``, ``"notebook"``).
    progress : bool or None, default None
        See :func:`progress_enabled`.

    Returns
    -------
    tqdm.tqdm
        The bar; use ``update(1)``, ``set_postfix_str(...)`` and ``close()``
        (or ``with``). A disabled bar accepts the same calls and draws nothing.
    """
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, disable=not progress_enabled(progress), dynamic_ncols=True)
