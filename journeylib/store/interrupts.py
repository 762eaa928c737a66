"""Interrupting the DuckDB statements one thread is running (an interrupted report run).

DuckDB's Python client notices Ctrl-C only when a statement ends: an 11-s
statement runs its 11 s, then raises ``RuntimeError("Query interrupted")``.
:meth:`duckdb.DuckDBPyConnection.interrupt`, called from another thread,
stops the statement within milliseconds (``duckdb.InterruptException``).
Every connection a :class:`journeylib.store.Store` opens is remembered here
with the thread that opened it (weakly: a closed and dropped connection is
forgotten), so that :func:`interrupt_queries` can stop what that thread runs;
:func:`journeylib.reports.runner.run_report` does so when it is interrupted
while it plans a run.

The opening thread is kept as its :class:`threading.Thread` object, not its
identifier: identifiers are reused once a thread ends, so a connection
opened by an ended thread could otherwise be taken for one of a new thread.
A cursor (``con.cursor()``) is a connection of its own, not tracked here:
interrupting a connection does not stop its cursors' statements.
"""

from __future__ import annotations

import contextlib
import threading
import weakref

import duckdb

__all__ = ["interrupt_queries", "track_connection"]

_OPENED: weakref.WeakKeyDictionary[duckdb.DuckDBPyConnection, threading.Thread] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def track_connection(con: duckdb.DuckDBPyConnection) -> None:
    """Remember that the calling thread opened *con*, for :func:`interrupt_queries`.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        A connection just opened.
    """
    with _LOCK:
        _OPENED[con] = threading.current_thread()


def interrupt_queries(thread: threading.Thread | None = None) -> int:
    """Interrupt the statement running on every open connection the thread *thread* opened.

    The interrupted statement raises ``duckdb.InterruptException`` in the
    thread running it; a connection running nothing is left as it is (its
    next statement runs normally), so a caller that must also stop the
    statements the thread has yet to start calls this again until the
    thread ends.

    Parameters
    ----------
    thread : threading.Thread, optional
        The opening thread; None: every thread's connections.

    Returns
    -------
    int
        How many open connections were sent the interrupt.
    """
    with _LOCK:
        connections = [con for con, opener in _OPENED.items() if thread is None or opener is thread]
    sent = 0
    for con in connections:
        with contextlib.suppress(duckdb.Error):  # closed meanwhile: nothing runs on it
            con.interrupt()
            sent += 1
    return sent
