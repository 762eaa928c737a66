"""DuckDB's failures in journeylib's words: a locked store, no memory, a full disk, an I/O error.

DuckDB reports a lock held by another process, an exhausted memory limit or
a full disk as ``IOException`` / ``OutOfMemoryException`` texts written for
DuckDB users (``SET memory_limit``, ``PRAGMA max_temp_directory_size``).
:func:`translate_error` turns them into :class:`~journeylib.exceptions.StoreError`
subclasses whose message names the store or file and the journeylib setting
that helps (``JOURNEYLIB_MEMORY_LIMIT``, ``JOURNEYLIB_THREADS``,
``JOURNEYLIB_TEMP_DIRECTORY``, ``--db`` / ``JOURNEYLIB_DB``).
:func:`translated_errors` applies it at the boundary of the :class:`Store`.

A store held open by another process is waited for, a bounded time
(:func:`wait_for_lock`, ``JOURNEYLIB_LOCK_WAIT`` seconds, default
:data:`DEFAULT_LOCK_WAIT`), before the lock error is raised.

Once a statement fails inside a transaction, DuckDB answers every later one
with "Current transaction is aborted"; :func:`first_cause` finds the error
that started it, and :func:`cleanup` runs clean-up code that must not replace
the error of the block it cleans up after.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TypeVar

import duckdb

from journeylib.exceptions import (
    JourneyLibError,
    OutOfMemoryError,
    StoreError,
    StoreFullError,
    StoreIOError,
    StoreLockedError,
)

__all__ = [
    "DEFAULT_LOCK_WAIT",
    "LOCK_RETRY_FIRST",
    "LOCK_RETRY_MAX",
    "cleanup",
    "first_cause",
    "is_engine_error",
    "is_follow_up",
    "loading_file",
    "lock_wait_seconds",
    "translate_error",
    "translated_errors",
    "wait_for_lock",
]

T = TypeVar("T")

#: Seconds a store waits for a lock held by another process before raising
#: :class:`~journeylib.exceptions.StoreLockedError`, unless ``lock_wait=`` or ``$JOURNEYLIB_LOCK_WAIT`` say otherwise.
DEFAULT_LOCK_WAIT = 30.0
#: First pause between two attempts to open a locked store (seconds); it doubles up to :data:`LOCK_RETRY_MAX`.
LOCK_RETRY_FIRST = 0.05
#: Longest pause between two attempts to open a locked store (seconds).
LOCK_RETRY_MAX = 1.0

#: Texts of a failure that only follows an earlier one (the transaction or the database is already unusable).
FOLLOW_UP_TEXTS = ("Current transaction is aborted", "database has been invalidated")
#: ``errno`` values of a full disk or an exhausted quota.
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
#: ``strerror`` texts of a full disk or an exhausted quota.
DISK_FULL_TEXTS = ("No space left on device", "Disk quota exceeded", "not enough space on the disk", "There is not enough space")

_LOCK = re.compile(r'Could not set lock on file "(?P<file>[^"]+)"')
_HOLDER = re.compile(r"Conflicting lock is held in (?P<program>.+?) \(PID (?P<pid>\d+)\)")
_FILE = re.compile(r'file \\?"(?P<file>[^"\\]+)\\?"')  # also inside the JSON of an async write error: file \"x\"
_ERRNO = re.compile(r'"errno"\s*:\s*"?(?P<errno>\d+)')
_USAGE = re.compile(r"\((?P<usage>[^()]*used)\)")


def is_engine_error(exc: BaseException) -> bool:
    """Whether *exc* was raised by the database engine (a ``duckdb.Error``).

    Parameters
    ----------
    exc : BaseException
        Any exception.

    Returns
    -------
    bool
        True for DuckDB's own errors, untranslated.
    """
    return isinstance(exc, duckdb.Error)


def is_follow_up(exc: BaseException) -> bool:
    """Whether *exc* only reports that an earlier failure left the transaction or database unusable.

    Parameters
    ----------
    exc : BaseException
        Any exception.

    Returns
    -------
    bool
        True for DuckDB's "Current transaction is aborted" and "database has
        been invalidated" errors.

    Examples
    --------
    >>> import duckdb
    >>> is_follow_up(duckdb.TransactionException("TransactionContext Error: Current transaction is aborted (please ROLLBACK)"))
    True
    """
    return isinstance(exc, duckdb.Error) and any(text in str(exc) for text in FOLLOW_UP_TEXTS)


def first_cause(exc: BaseException) -> BaseException:
    """Return the error that started a chain of follow-up failures, or *exc* itself.

    A clean-up statement run after a failure inside a transaction fails with
    "Current transaction is aborted"; Python keeps the real failure as that
    error's ``__context__`` (or ``__cause__``). This walks the chain back
    past every follow-up.

    Parameters
    ----------
    exc : BaseException
        The error that reached the caller.

    Returns
    -------
    BaseException
        The earliest error in the chain that is not a follow-up; *exc* when
        it is not a follow-up or nothing earlier is known.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen and is_follow_up(current):
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return current if current is not None and id(current) not in seen else exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0].strip() if text else type(exc).__name__


def _temp_directory(path: Path | None, settings: Mapping[str, str] | None) -> str:
    tmp = (settings or {}).get("temp_directory") or os.environ.get("JOURNEYLIB_TEMP_DIRECTORY", "").strip()
    if tmp:
        return tmp
    return f"{path}.tmp" if path is not None else ".tmp in the working directory"


def _memory_limit(settings: Mapping[str, str] | None) -> str:
    if settings is not None:
        limit = settings.get("memory_limit")
        return limit if limit else "DuckDB's default (80% of the RAM)"
    # imported here: journeylib.store.database imports this module
    from journeylib.store.database import (
        DEFAULT_MEMORY_LIMIT,
        DEFAULT_READ_MEMORY_LIMIT,
        READ_MEMORY_PER_STORE_BYTE,
        READ_MEMORY_SHARE,
    )

    env = os.environ.get("JOURNEYLIB_MEMORY_LIMIT", "").strip()
    if env:
        return f"{env} (JOURNEYLIB_MEMORY_LIMIT)"
    return (
        f"journeylib's default ({DEFAULT_MEMORY_LIMIT} for an ingest; for reports and dashboards {DEFAULT_READ_MEMORY_LIMIT}, "
        f"or {READ_MEMORY_PER_STORE_BYTE:g} times the store file's size when that is more, at most {READ_MEMORY_SHARE:.0%} of the memory)"
    )


def _is_temp_file(file: str, temp_directory: str) -> bool:
    p = Path(file)
    return p.name.startswith("duckdb_temp") or p.parent.name.endswith(".tmp") or file.startswith(temp_directory)


def _translate_lock(exc: BaseException) -> StoreLockedError | None:
    match = _LOCK.search(str(exc))
    if match is None:
        return None
    holder = _HOLDER.search(str(exc))
    by = f" (PID {holder['pid']}, {holder['program']})" if holder else ""
    which = f"process {holder['pid']}" if holder else "that process"
    msg = (
        f"store {match['file']} is locked: another process{by} has it open. DuckDB lets one process write a store, "
        f"or several processes read it, never both at once. Wait for {which} to finish or stop it (a running "
        "`journeylib ingest` or `journeylib report`, a notebook kernel or a `journeylib dashboard` using this store), "
        "then run again."
    )
    return StoreLockedError(msg)


def lock_wait_seconds(wait: float | None = None) -> float:
    """Return how long a store waits for a lock held by another process.

    Parameters
    ----------
    wait : float, optional
        Seconds; default ``$JOURNEYLIB_LOCK_WAIT``, else :data:`DEFAULT_LOCK_WAIT`.
        ``0`` gives up at the first refusal.

    Returns
    -------
    float
        Seconds, zero or more.

    Raises
    ------
    JourneyLibError
        If the value is not a number of seconds, zero or more.

    Examples
    --------
    >>> lock_wait_seconds(5)
    5.0
    """
    given = wait if wait is not None else os.environ.get("JOURNEYLIB_LOCK_WAIT", "").strip() or DEFAULT_LOCK_WAIT
    try:
        seconds = float(given)
    except ValueError:
        seconds = -1.0
    if not seconds >= 0:  # also NaN
        where = "lock_wait" if wait is not None else "JOURNEYLIB_LOCK_WAIT"
        msg = f"{where} must be a number of seconds, 0 or more (how long to wait for a store another process holds); got {given!r}"
        raise JourneyLibError(msg)
    return seconds


def _holder_command(exc: BaseException) -> str | None:
    holder = _HOLDER.search(str(exc))
    if holder is None:
        return None
    try:  # Linux: the holder's command line; elsewhere (or once it has exited) DuckDB's program name has to do
        raw = Path(f"/proc/{holder['pid']}/cmdline").read_bytes()
    except OSError:
        return None
    command = " ".join(part.decode(errors="replace") for part in raw.split(b"\0") if part)
    command = " ".join(command.split())
    return command[:197] + "..." if len(command) > 200 else command or None


def wait_for_lock(open_store: Callable[[], T], *, path: str | Path | None = None, wait: float | None = None) -> T:
    """Call *open_store* until it is not refused by another process's lock on the store, for at most *wait* seconds.

    DuckDB lets one process write a store or several read it; a process
    that meets the other kind of lock retries, pausing
    :data:`LOCK_RETRY_FIRST` seconds and twice as long each time (at most
    :data:`LOCK_RETRY_MAX`), until *wait* seconds have passed.

    Parameters
    ----------
    open_store : callable
        Opens the store, e.g. ``lambda: duckdb.connect(path)``.
    path : str or pathlib.Path, optional
        The store's file, named in the message.
    wait : float, optional
        Seconds to wait (:func:`lock_wait_seconds`).

    Returns
    -------
    object
        What *open_store* returned.

    Raises
    ------
    journeylib.exceptions.StoreLockedError
        If the store is still locked after *wait* seconds; the message names
        the holder's PID, its program and (on Linux) its command line, and
        how long was waited.
    """
    seconds = lock_wait_seconds(wait)
    deadline = time.monotonic() + seconds
    pause = LOCK_RETRY_FIRST
    while True:
        try:
            return open_store()
        except duckdb.Error as exc:
            err = translate_error(exc, path=path)
            if not isinstance(err, StoreLockedError):
                raise
            left = deadline - time.monotonic()
            if left <= 0:
                command = _holder_command(exc)
                runs = f" That process runs `{command}`." if command else ""
                waited = f"waited {seconds:g} s for it" if seconds else "did not wait for it"
                msg = f"{err}{runs} journeylib {waited} (JOURNEYLIB_LOCK_WAIT sets how long)."
                raise StoreLockedError(msg) from exc
            time.sleep(min(pause, left))
            pause = min(pause * 2, LOCK_RETRY_MAX)


def _translate_memory(exc: BaseException, where: str, path: Path | None, settings: Mapping[str, str] | None) -> StoreError:
    text = str(exc)
    usage = _USAGE.search(text)
    used = f" ({usage['usage']})" if usage else ""
    tmp = _temp_directory(path, settings)
    limit = _memory_limit(settings)
    if "max_temp_directory_size" in text or "failed to offload" in text:
        msg = (
            f"disk full: DuckDB could not spill to its temporary directory {tmp}{used} while working on {where}: "
            "the disk holding it has no room left (or DuckDB's max_temp_directory_size is reached). Free space there, "
            "or set JOURNEYLIB_TEMP_DIRECTORY to a folder on a disk with more room; a higher memory limit "
            f"(JOURNEYLIB_MEMORY_LIMIT, now {limit}) spills less."
        )
        return StoreFullError(msg)
    msg = (
        f"out of memory: DuckDB needed more than its memory limit of {limit}{used} while working on {where}. "
        "Raise the limit with the environment variable JOURNEYLIB_MEMORY_LIMIT (e.g. JOURNEYLIB_MEMORY_LIMIT=4GB, "
        "or Store(memory_limit='4GB') in Python), or run with fewer threads (JOURNEYLIB_THREADS=2); "
        f"DuckDB spills what does not fit to {tmp}."
    )
    return OutOfMemoryError(msg)


def _translate_io(exc: BaseException, where: str, path: Path | None, settings: Mapping[str, str] | None) -> StoreError:
    text = str(exc)
    match = _FILE.search(text)
    file = match["file"] if match else (str(path) if path is not None else "a file")
    code = _ERRNO.search(text)
    if any(t.lower() in text.lower() for t in DISK_FULL_TEXTS) or (code is not None and int(code["errno"]) in DISK_FULL_ERRNOS):
        tmp = _temp_directory(path, settings)
        if _is_temp_file(file, tmp):
            fix = "Free space on that disk, or set JOURNEYLIB_TEMP_DIRECTORY to a folder on a disk with more room"
            what = f"the temporary directory of {where}"
        else:
            fix = "Free space on that disk, or keep the store on a disk with more room (--db PATH or JOURNEYLIB_DB)"
            what = where
        target = f"store {file}" if path is not None and Path(file) == path else f"{file} ({what})"
        msg = (
            f"disk full: DuckDB could not write {target}: no space left on the device. {fix}; "
            "the statement that failed was not applied."
        )
        return StoreFullError(msg)
    detail = _first_line(exc).removeprefix("IO Error: ")
    msg = (
        f"I/O error while working on {where}: {detail}. Check that the file and its folder exist and that you may "
        "read and write them (not a read-only or full file system), then run again."
    )
    return StoreIOError(msg)


def translate_error(
    exc: BaseException,
    *,
    path: str | Path | None = None,
    settings: Mapping[str, str] | None = None,
) -> StoreError | None:
    """Return the journeylib error for a DuckDB failure outside the data, or None.

    Translated: a lock held by another process (the message names the file
    and the holder's PID when DuckDB gives it), running out of memory (the
    memory limit and the ``JOURNEYLIB_MEMORY_LIMIT`` setting), a full disk
    or temporary directory (the path), any other I/O error, and a follow-up
    "transaction aborted" or "database invalidated" error (the first cause
    when the chain holds it). Any other error (SQL, constraint, conversion)
    gives None.

    Parameters
    ----------
    exc : BaseException
        The error, usually a ``duckdb.Error``.
    path : str or pathlib.Path, optional
        The store's file (None or ``":memory:"`` for an in-memory store).
    settings : mapping of str to str, optional
        The store's DuckDB settings (:func:`~journeylib.store.database.engine_settings`);
        None when unknown (then the environment is described).

    Returns
    -------
    journeylib.exceptions.StoreError or None
        A :class:`~journeylib.exceptions.StoreLockedError`,
        :class:`~journeylib.exceptions.OutOfMemoryError`,
        :class:`~journeylib.exceptions.StoreFullError`,
        :class:`~journeylib.exceptions.StoreIOError` or
        :class:`~journeylib.exceptions.StoreError`, not raised.

    Examples
    --------
    >>> import duckdb
    >>> err = translate_error(duckdb.IOException('IO Error: Could not write file "/d/s.duckdb": No space left on device'), path="/d/s.duckdb")
    >>> type(err).__name__, str(err).split(":")[0]
    ('StoreFullError', 'disk full')
    """
    store = Path(path) if path is not None and str(path) != ":memory:" else None
    where = f"store {store}" if store is not None else "the in-memory store"
    root = first_cause(exc)
    if root is not exc:
        return translate_error(root, path=path, settings=settings) if isinstance(root, duckdb.Error) else None
    if is_follow_up(exc):
        msg = (
            f"{where}: a statement failed earlier in this transaction, so DuckDB refuses every later one "
            f"({_first_line(exc)}). The earlier error is the one to fix; leave the transaction (it rolls back) "
            "and run again, or open the store again if DuckDB says the database was invalidated."
        )
        return StoreError(msg)
    if isinstance(exc, duckdb.OutOfMemoryException) or str(exc).startswith("Out of Memory Error"):
        return _translate_memory(exc, where, store, settings)
    if isinstance(exc, duckdb.IOException) or str(exc).startswith("IO Error"):
        return _translate_lock(exc) or _translate_io(exc, where, store, settings)
    return None


@contextlib.contextmanager
def translated_errors(path: str | Path | None = None, settings: Mapping[str, str] | None = None) -> Iterator[None]:
    """Run a block; raise a DuckDB failure outside the data as the journeylib error :func:`translate_error` gives.

    The DuckDB error stays attached as ``__cause__``. A follow-up "transaction
    aborted" error whose first cause is in its chain is replaced by that
    first cause (translated when it can be). Every other error passes
    unchanged.

    Parameters
    ----------
    path : str or pathlib.Path, optional
        The store's file, named in the messages.
    settings : mapping of str to str, optional
        The store's DuckDB settings, named in the out-of-memory message.

    Yields
    ------
    None
    """
    try:
        yield
    except duckdb.Error as exc:
        root = first_cause(exc)
        err = translate_error(root, path=path, settings=settings)
        if err is not None:
            raise err from root
        if root is not exc:
            raise root from None
        raise


@contextlib.contextmanager
def cleanup(action: Callable[..., object], *args: object) -> Iterator[None]:
    """Run ``action(*args)`` when the block ends, without letting it replace the block's own error.

    If the block raised, a failure of the clean-up (typically "Current
    transaction is aborted", which DuckDB raises for every statement after a
    failed one) is dropped and the block's error propagates; if the
    clean-up's error is not such a follow-up it is added to the block's
    error as a note. If the block succeeded, a failing clean-up raises as
    usual.

    Parameters
    ----------
    action : callable
        The clean-up, e.g. ``con.unregister``.
    *args : object
        Its arguments.

    Yields
    ------
    None

    Examples
    --------
    >>> with cleanup(print, "cleaned up"):
    ...     pass
    cleaned up
    """
    try:
        yield
    except BaseException as exc:
        try:
            action(*args)
        except Exception as later:  # the block's error is the one to report
            if not is_follow_up(later):
                exc.add_note(f"while cleaning up after this error, another one occurred: {type(later).__name__}: {later}")
        raise
    action(*args)


@contextlib.contextmanager
def loading_file(path: str | Path) -> Iterator[None]:
    """Run the transaction that loads one file; a :class:`~journeylib.exceptions.StoreError` in it names the file.

    The error is raised again as the same class, its message followed by
    which file was being loaded and that nothing of it was (the file's
    transaction rolled back); the original stays attached as ``__cause__``.
    Place it outside the :meth:`~journeylib.store.database.Store.transaction`
    block, so the rollback has happened when it runs.

    Parameters
    ----------
    path : str or pathlib.Path
        The file being loaded.

    Yields
    ------
    None
    """
    try:
        yield
    except StoreError as exc:
        msg = f"{exc} Nothing of {path} was loaded (its transaction was rolled back)."
        raise type(exc)(msg) from exc
