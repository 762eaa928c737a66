"""Process memory of the heavy steps: a bounded DuckDB limit for their statements, and freed heap pages given back.

Mechanisms shared by churn-risk scoring (:func:`journeylib.customers.scoring.score_customers`)
and the journey map's heaviest statements (the suggested milestones, the loop events, the
milestone frames friction and the comparison of definitions compute), so that a whole report or
scoring process at 10M events stays under its memory target:

* :func:`bounded_memory_limit` / :func:`bounded_memory`: a statement that numbers or orders every
  event of the scope takes whatever DuckDB's limit allows (most of a read-only store's 600 MB
  default at 10M events). Under a lower limit DuckDB spills to disk and gives the same results.
  The lower limit applies only when the store runs on DuckDB under its *default* limit; a limit
  the user set (``Store(memory_limit=)``, ``$JOURNEYLIB_MEMORY_LIMIT``) is kept.
  :func:`run_bounded` runs work under such a limit, and again under the store's own when DuckDB
  runs out of memory under it (some operators cannot spill).
* :func:`shared_strings`: a text column read from DuckDB holds a new string object per row, even
  for a few distinct values; holding each distinct string once keeps the values and the dtype.
* :func:`give_back_freed_memory`: frames freed between steps leave free pages in the C heap that
  count in the process's memory until the allocator reuses them; glibc's ``malloc_trim(0)``
  returns them.
* :func:`give_back_engine_memory`: within a session, DuckDB keeps what a large statement used (the
  blocks of the file it read, its freed buffers: about 200 MB after a 10M-event milestone
  statement) until the connection closes or its limit forces it out; a step that goes on with
  other work after such a statement lowers the limit for an instant so that DuckDB lets go of it.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import duckdb
import numpy as np
import pandas as pd

from journeylib.exceptions import OutOfMemoryError, StoreError
from journeylib.store.database import engine_settings, memory_size_bytes

if TYPE_CHECKING:
    from journeylib.store.database import Store

__all__ = [
    "BOUNDED_MEMORY_LIMIT",
    "MILESTONE_MEMORY_LIMIT",
    "RELEASE_MEMORY_LIMIT",
    "bounded_memory",
    "bounded_memory_limit",
    "give_back_engine_memory",
    "give_back_freed_memory",
    "run_bounded",
    "shared_strings",
]

#: DuckDB ``memory_limit`` of the heavy statements on a store whose own limit is its default, when lower than
#: that default. Above it DuckDB spills to disk: the results are the same. Measured at 10M events: see
#: ``benchmarks/results/scale_score.md`` and ``benchmarks/results/scale.md``.
BOUNDED_MEMORY_LIMIT = "250MB"
#: DuckDB ``memory_limit`` of the milestone statements an analysis runs while it holds frames of its own (friction's
#: exit-rule condition frames, the suggested definition's frame of the comparison), when lower than the store's
#: default: at 10M events such a statement takes about 280 MB of the default limit, 150 MB under this one, for
#: the same frame (DuckDB spills what does not fit; about 0.1-0.4 s more CPU).
MILESTONE_MEMORY_LIMIT = "100MB"
#: DuckDB ``memory_limit`` set for an instant by :func:`give_back_engine_memory`: DuckDB evicts what it keeps
#: above it (cached blocks of the file, freed buffers) and frees it.
RELEASE_MEMORY_LIMIT = "32MB"


def bounded_memory_limit(store: Store, memory_limit: str | None = None, *, bound: str = BOUNDED_MEMORY_LIMIT) -> str | None:
    """Return the DuckDB ``memory_limit`` a heavy step runs its statements under (None: the store's own).

    Parameters
    ----------
    store : Store
        The store the statements run on.
    memory_limit : str, optional
        The caller's choice (e.g. ``"1GB"``): returned as it is.
    bound : str, default :data:`BOUNDED_MEMORY_LIMIT`
        The lower limit applied when the store is on its default one.

    Returns
    -------
    str or None
        *memory_limit* when given. Otherwise *bound* when the store runs on
        DuckDB under its default limit (no ``memory_limit=`` given to
        :class:`~journeylib.store.Store`, ``$JOURNEYLIB_MEMORY_LIMIT`` not
        set: see :func:`journeylib.store.database.engine_settings`) and that
        default is larger; None (the store's limit applies) for a limit set
        by the user, a smaller default, or another engine. A limit given to
        the store that equals its default cannot be told from the default.

    Examples
    --------
    >>> from journeylib.store import Store
    >>> bounded_memory_limit(Store(":memory:"))  # a store without a file: 2GB by default
    '250MB'
    >>> bounded_memory_limit(Store(":memory:", memory_limit="1GB")) is None
    True
    """
    if memory_limit is not None:
        return memory_limit
    settings = getattr(store, "settings", None)
    if store.engine != "duckdb" or not isinstance(settings, dict) or os.environ.get("JOURNEYLIB_MEMORY_LIMIT") is not None:
        return None
    own = settings.get("memory_limit")
    default = engine_settings(read_only=store.read_only, path=store.path).get("memory_limit")
    if own != default:
        return None  # the user's own limit
    own_bytes, want = memory_size_bytes(own), memory_size_bytes(bound)
    if own is not None and (own_bytes is None or want is None or own_bytes <= want):
        return None
    return bound


def bounded_memory(store: Store, *, bound: str = BOUNDED_MEMORY_LIMIT) -> contextlib.AbstractContextManager[object]:
    """Return a block that runs under :func:`bounded_memory_limit`'s limit when one applies.

    For the statements that number or order every event of the scope (the
    k-th events of :func:`journeylib.journey.suggest.suggest_milestones_data`,
    the gaps before returns of :func:`journeylib.journey.loops.loop_events_data`).
    The limit is set for the block by :meth:`journeylib.store.Store.memory_limit_for`
    and set back after.

    Parameters
    ----------
    store : Store
        The store the block's statements run on.
    bound : str, default :data:`BOUNDED_MEMORY_LIMIT`
        As in :func:`bounded_memory_limit`.

    Returns
    -------
    contextlib.AbstractContextManager
        The block's context (nothing is changed when no limit applies).
    """
    limit = bounded_memory_limit(store, bound=bound)
    return store.memory_limit_for(limit) if limit is not None else contextlib.nullcontext()


T = TypeVar("T")


def run_bounded(store: Store, compute: Callable[[], T], *, bound: str | None) -> T:
    """Return ``compute()`` run under a lower DuckDB limit when one applies; under the store's own if it runs out of memory.

    For statements that DuckDB can usually spill under *bound* but not
    always (a statement's operators that cannot spill, a larger store): when
    DuckDB runs out of memory under *bound*, ``compute()`` runs again under
    the store's limit, as it would have without a bound. ``compute`` must
    only read (it may run twice).

    Parameters
    ----------
    store : Store
        The store its statements run on.
    compute : callable
        The work; its statements run under the lower limit.
    bound : str or None
        The lower limit (:func:`bounded_memory_limit` decides whether it
        applies); None: ``compute()`` as it is.

    Returns
    -------
    object
        What ``compute()`` returns.
    """
    limit = None if bound is None else bounded_memory_limit(store, bound=bound)
    if limit is None:
        return compute()
    try:
        with store.memory_limit_for(limit):
            return compute()
    except OutOfMemoryError:  # the store's statements give DuckDB's as this (store.errors.translate_error)
        pass  # run again below, under the store's own limit (out of the except: its traceback is not this one's)
    return compute()


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    """Return glibc's ``malloc_trim`` (None on another C library or platform)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018 - glibc only (musl has no malloc_trim)
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


def give_back_freed_memory() -> bool:
    """Return the C heap's free pages to the system (glibc's ``malloc_trim(0)``); False where it cannot be done.

    Frames freed between the steps of scoring (or after scoring tickets) leave
    free pages in the heap that count in the process's memory until the
    allocator reuses them.

    Returns
    -------
    bool
        True when the pages were given back (Linux with glibc), False
        elsewhere (nothing is done).
    """
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True


def give_back_engine_memory(store: Store) -> bool:
    """Make DuckDB let go of the memory it keeps after its statements, and give it back to the system.

    Within a :meth:`~journeylib.store.Store.session`, DuckDB keeps the blocks of
    the file a statement read and the buffers it freed, up to its
    ``memory_limit``, until the connection closes: after a statement over every
    event of the scope (a milestone frame at 10M events) that is about 200 MB
    that the work after it, in the same session, would hold on top of its own.
    Setting the limit to :data:`RELEASE_MEMORY_LIMIT` for an instant (then back:
    :meth:`~journeylib.store.Store.memory_limit_for`) makes DuckDB evict and
    free them; :func:`give_back_freed_memory` then returns the freed pages.
    Results do not change: a later statement reads the blocks it needs again.
    Only a read-only store file is concerned: what DuckDB keeps of it are
    copies of the file's blocks, while the data of an in-memory or writable
    store would be written to temporary files instead.

    Parameters
    ----------
    store : Store
        The store whose open connection keeps the memory (call it inside a
        session: outside one a read-only store keeps no connection open).

    Returns
    -------
    bool
        True when the limit was lowered and set back (a read-only DuckDB store
        file), False for another store or engine, or when DuckDB could not
        lower it (nothing is freed; the store's limit is as before).
    """
    if store.engine != "duckdb" or not store.read_only or store.path is None:
        return False
    try:
        with store.memory_limit_for(RELEASE_MEMORY_LIMIT):
            pass
    except (StoreError, duckdb.Error):  # memory DuckDB cannot evict: it keeps it, and the analysis goes on
        return False
    give_back_freed_memory()
    return True


def shared_strings(col: pd.Series) -> pd.Series:
    """Return *col* with one object per distinct string: the same values, each repeated string held once.

    A column of text read from the store holds a string object per row, even
    in a column of a few distinct values (a snapshot's customer id, segment
    and plan; a ticket's channel, status or emotion); a column whose equal
    strings are one object holds a pointer per row instead. Columns of
    another dtype than object, or holding anything but strings and missing
    values, are returned unchanged; missing values keep their object (None
    or NaN).

    Parameters
    ----------
    col : pandas.Series
        The column.

    Returns
    -------
    pandas.Series
        A column equal to *col* element by element, same index, name and
        dtype (or *col* itself when it is not a column of strings).

    Examples
    --------
    >>> out = shared_strings(pd.Series(["".join(["o", "pen"]), "closed", "".join(["op", "en"]), None]))
    >>> out.tolist(), out[0] is out[2]
    (['open', 'closed', 'open', None], True)
    """
    if col.dtype != object:
        return col
    values = col.to_numpy()
    if pd.api.types.infer_dtype(values, skipna=True) != "string":
        return col
    codes, uniques = pd.factorize(values)
    shared = np.asarray(uniques, dtype=object)[codes]
    missing = codes < 0
    shared[missing] = values[missing]
    return pd.Series(shared, index=col.index, name=col.name, dtype=object)
