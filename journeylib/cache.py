"""Results shared by the analyses of one context: computed on first use, then reused.

Every journey analysis starts from the same milestone frame (one row per
customer × stage); the customer analyses start from the same feature tables;
friction and the voice of the customer read the same scored tickets. A
:class:`ResultCache` passed to the ``*_data`` functions (as
:class:`journeylib.Journey` does) makes them share those results: each is
computed once per key — for the milestone frame, once per (store, journey
definition, scope) — however many analyses a notebook or a widget asks for.

Results are handed out as copies, so no analysis can change another's input.

:class:`PersistentResults` keeps heavy results on disk for other processes:
a dashboard kernel reads the snapshots, scores or topic model that a report
run of the same data, definition, scope, arguments and code computed
(:meth:`journeylib.Journey.persisted`). Its folder is ``JOURNEYLIB_RESULTS_DIR``
(default ``~/.cache/journeylib/results``; ``off`` disables it).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import os
import time
import uuid
import warnings
from collections import Counter
from collections.abc import Callable, Hashable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar, cast

import pandas as pd
from pydantic import BaseModel

__all__ = [
    "DEFAULT_RESULTS_DIR",
    "DEFAULT_RESULTS_MAX_BYTES",
    "RESULTS_DIR_ENV",
    "RESULTS_MAX_BYTES_ENV",
    "PersistentResults",
    "ResultCache",
    "ResultStoreWarning",
    "code_version",
    "function_name",
    "key_value",
    "results_dir_from_env",
]

T = TypeVar("T")


class ResultCache:
    """A memo of intermediate results by kind and key.

    Attributes
    ----------
    computed : collections.Counter
        How many results of each kind were computed (``computed["milestones"]``
        counts the milestone SQL passes); what tests read.
    data_version : str or None
        The store's data version the results were computed on, when known
        (set by :meth:`journeylib.Journey.persisted`, which empties the memo
        with :meth:`clear` when the store's data changed).

    Examples
    --------
    >>> cache = ResultCache()
    >>> cache.get("answer", 1, lambda: 42), cache.get("answer", 1, lambda: 0)
    (42, 42)
    >>> cache.computed["answer"]
    1
    """

    def __init__(self) -> None:
        self._results: dict[tuple[str, Hashable], Any] = {}
        self.computed: Counter[str] = Counter()
        self.data_version: str | None = None

    def __repr__(self) -> str:
        kinds = ", ".join(f"{k} {n}×" for k, n in sorted(self.computed.items())) or "empty"
        return f"ResultCache({kinds})"

    def __len__(self) -> int:
        return len(self._results)

    def clear(self) -> None:
        """Forget every result (the counts in :attr:`computed` stay)."""
        self._results.clear()

    def note_data_version(self, version: str) -> None:
        """Record the store's data version; forget every result if it differs from the one recorded.

        Parameters
        ----------
        version : str
            :meth:`journeylib.Journey.data_version` now.
        """
        if self.data_version is not None and self.data_version != version:
            self.clear()
        self.data_version = version

    def get(self, kind: str, key: Hashable, compute: Callable[[], T]) -> T:
        """Return the result of *kind* for *key*, computing it with *compute* the first time.

        Parameters
        ----------
        kind : str
            What the result is (``"milestones"``, ``"features"``, ...).
        key : hashable
            Everything the result depends on.
        compute : callable
            Makes the result; called at most once per (kind, key).

        Returns
        -------
        object
            A copy of the result (DataFrames and objects with a ``copy``
            method are copied; other values are returned as they are).
        """
        full = (kind, key)
        if full not in self._results:
            self._results[full] = compute()
            self.computed[kind] += 1
        return _copy(self._results[full])


def _copy(value: Any) -> Any:
    if isinstance(value, pd.DataFrame):
        return value.copy()
    copy = getattr(value, "copy", None)
    return copy() if callable(copy) else value


# -- results kept on disk across processes ---------------------------------------------------------

#: Environment variable naming the folder of the persistent result store; ``off`` disables it.
RESULTS_DIR_ENV = "JOURNEYLIB_RESULTS_DIR"
#: Environment variable overriding the size cap of the persistent result store, in bytes.
RESULTS_MAX_BYTES_ENV = "JOURNEYLIB_RESULTS_MAX_BYTES"
#: Default size cap of the persistent result store: 2 GiB.
DEFAULT_RESULTS_MAX_BYTES = 2 * 1024**3
#: Where the persistent result store lives when ``JOURNEYLIB_RESULTS_DIR`` is not set.
DEFAULT_RESULTS_DIR = Path("~/.cache/journeylib/results")

_ENTRY_SUFFIX = ".joblib"
_TIMINGS_DIR = "timings"
_ENTRY_FORMAT = 1  # an entry is {"format", "value", "warnings" (category, message, file, line), "seconds"}


class ResultStoreWarning(UserWarning):
    """A persistent result could not be read or written; it was recomputed (or not kept) instead."""


@functools.cache
def code_version() -> str:
    """Return a hash of the journeylib package's files, computed once per process.

    Every file of the installed package (source, bundled data; not
    ``__pycache__``) goes in, with its path: any change of the code
    invalidates every persistent result made by the old code.

    Returns
    -------
    str
        64 hex digits (SHA-256).
    """
    root = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


def function_name(func: Callable[..., Any]) -> str:
    """Return ``module.qualified_name`` of *func* (of the underlying function for a bound method).

    Examples
    --------
    >>> function_name(ResultCache.get)
    'journeylib.cache.ResultCache.get'
    """
    target = getattr(func, "__func__", func)
    return f"{getattr(target, '__module__', '?')}.{getattr(target, '__qualname__', repr(target))}"


def key_value(value: Any) -> Any:
    """Return what stands for *value* in a persistent key: its content, never its identity.

    A :class:`ResultCache` is left out (``None``: it holds intermediate
    results, not inputs); a pydantic model (a journey definition, alert
    rules) is its class and its JSON dump; a ``str`` or ``Path`` naming an
    existing file is the SHA-256 of the file's content (so an edited YAML
    file misses the cache, wherever it is read from); a DataFrame or Series
    is its labels, dtypes, length, ``attrs`` and a SHA-256 of pandas' row
    hashes (:func:`pandas.util.hash_pandas_object`, index included;
    vectorised, so much faster than pickling object columns); a dataclass
    instance is its class and its fields, each converted; containers are
    converted item by item; anything else is kept for :func:`joblib.hash`
    (arrays, estimators, scalars).

    Parameters
    ----------
    value : object
        An argument of a persisted computation.

    Returns
    -------
    object
        A picklable stand-in whose :func:`joblib.hash` changes exactly when
        the content does.
    """
    if isinstance(value, ResultCache):
        return None
    if isinstance(value, pd.DataFrame | pd.Series):
        return _frame_key(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: key_value(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return ("dataclass", function_name(type(value)), fields)
    if isinstance(value, BaseModel):
        return ("pydantic", function_name(type(value)), value.model_dump_json())
    if isinstance(value, str | os.PathLike) and _is_file(value):
        return ("file", hashlib.sha256(Path(value).read_bytes()).hexdigest())
    if isinstance(value, dict):
        return {k: key_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(key_value(v) for v in value)
    return value


def _frame_key(frame: pd.DataFrame | pd.Series) -> Any:
    """Return a frame's type, labels, dtypes and a SHA-256 of its rows (pandas' vectorised row hashes, index included)."""
    try:
        rows = pd.util.hash_pandas_object(frame, index=True).to_numpy().tobytes()
    except TypeError:  # unhashable cells (lists, dicts): joblib.hash pickles the frame instead
        return frame
    labels = list(frame.columns) if isinstance(frame, pd.DataFrame) else [frame.name]
    dtypes = [str(t) for t in frame.dtypes] if isinstance(frame, pd.DataFrame) else [str(frame.dtype)]
    return (type(frame).__name__, labels, dtypes, list(frame.index.names), str(frame.index.dtype), len(frame),
            dict(frame.attrs), hashlib.sha256(rows).hexdigest())


def _is_file(value: str | os.PathLike[str]) -> bool:
    try:
        return len(str(value)) < 4096 and Path(value).is_file()
    except (OSError, ValueError):
        return False


def results_dir_from_env(environ: Mapping[str, str] | None = None) -> Path | None:
    """Return the folder of the persistent result store named by the environment, or None when it is off.

    Parameters
    ----------
    environ : mapping, optional
        The environment (default ``os.environ``).

    Returns
    -------
    pathlib.Path or None
        ``JOURNEYLIB_RESULTS_DIR`` (``~`` expanded), else
        ``~/.cache/journeylib/results``; None when the variable is ``off``.
    """
    env = os.environ if environ is None else environ
    raw = env.get(RESULTS_DIR_ENV, "").strip()
    if raw.lower() == "off":
        return None
    return Path(raw or DEFAULT_RESULTS_DIR).expanduser()


def _max_bytes_from_env(environ: Mapping[str, str]) -> int:
    raw = environ.get(RESULTS_MAX_BYTES_ENV, "").strip()
    if not raw:
        return DEFAULT_RESULTS_MAX_BYTES
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < 0:
        msg = f"{RESULTS_MAX_BYTES_ENV} must be a whole number of bytes (0 or more, e.g. 2147483648); got {raw!r}"
        raise ValueError(msg)
    return value


class PersistentResults:
    """Results of heavy computations pickled on disk, shared by every process that asks with the same key.

    A report run and the dashboard kernels that follow it compute the same
    snapshots, backtests, scored tickets and topic models; this store lets
    the later ones read what the first one computed. The warnings a
    computation raised are kept with its result and raised again whenever
    the entry is read, so a report reads the same from a warm store as from
    a cold one. The caller builds the
    key (:meth:`key`) from everything the result depends on — for
    :meth:`journeylib.Journey.persisted`: the function, the store's data
    version, the journey definition, the scope and the arguments; the code
    version (:func:`code_version`) is always added, so a change of
    journeylib invalidates every entry.

    Entries are ``<folder>/<key[:2]>/<key>.joblib``, written to a temporary
    file first and moved into place (``os.replace``), so a reader never sees
    half a file. Reading an entry touches its modification time; when the
    folder holds more than *max_bytes*, the entries used longest ago are
    deleted first. An entry that cannot be read is recomputed and replaced,
    with a :class:`ResultStoreWarning`; an entry that cannot be written is
    returned unkept, with the same warning. A computation that raises keeps
    nothing.

    Parameters
    ----------
    directory : str, Path or None
        The folder (created on first write); None disables the store: every
        :meth:`get` computes.
    max_bytes : int, default 2 GiB
        The size cap of the folder's entries.

    Attributes
    ----------
    hits, misses : collections.Counter
        Entries read from disk / computed, by label (what tests read).
    seconds : dict of str to float
        Seconds spent computing the misses of this object, by label.

    Examples
    --------
    >>> import tempfile
    >>> results = PersistentResults(tempfile.mkdtemp())
    >>> key = results.key({"function": "answer", "n": 1})
    >>> results.get(key, lambda: 42, label="answer"), results.get(key, lambda: 0, label="answer")
    (42, 42)
    >>> results.hits["answer"], results.misses["answer"]
    (1, 1)
    """

    def __init__(self, directory: str | os.PathLike[str] | None, *, max_bytes: int = DEFAULT_RESULTS_MAX_BYTES) -> None:
        self.directory = None if directory is None else Path(directory).expanduser()
        self.max_bytes = int(max_bytes)
        self.hits: Counter[str] = Counter()
        self.misses: Counter[str] = Counter()
        self.seconds: dict[str, float] = {}
        self._listeners: list[Callable[[str], None]] = []

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> PersistentResults:
        """Return the store configured by ``JOURNEYLIB_RESULTS_DIR`` and ``JOURNEYLIB_RESULTS_MAX_BYTES``.

        Parameters
        ----------
        environ : mapping, optional
            The environment (default ``os.environ``).

        Returns
        -------
        PersistentResults
            Disabled when ``JOURNEYLIB_RESULTS_DIR=off``.

        Raises
        ------
        ValueError
            If ``JOURNEYLIB_RESULTS_MAX_BYTES`` is not a whole number ≥ 0.
        """
        env = os.environ if environ is None else environ
        return cls(results_dir_from_env(env), max_bytes=_max_bytes_from_env(env))

    def __repr__(self) -> str:
        where = str(self.directory) if self.directory is not None else "off"
        return f"PersistentResults({where}, {sum(self.hits.values())} hits, {sum(self.misses.values())} misses)"

    @property
    def enabled(self) -> bool:
        """Whether results are kept on disk."""
        return self.directory is not None

    def key(self, parts: Mapping[str, Any]) -> str:
        """Return the key of a result that depends on *parts* (and on the code version).

        Parameters
        ----------
        parts : mapping
            Everything the result depends on, by name; values go through
            :func:`key_value`, then :func:`joblib.hash`.

        Returns
        -------
        str
            32 hex digits.
        """
        import joblib  # imported here: about 0.15 s that only contexts which persist pay

        content = {name: key_value(value) for name, value in parts.items()}
        content["code_version"] = code_version()
        return str(joblib.hash(content, hash_name="md5"))

    def path(self, key: str) -> Path:
        """Return the file of the entry *key*.

        Raises
        ------
        ValueError
            If the store is disabled.
        """
        if self.directory is None:
            msg = f"PersistentResults.path: the result store is off ({RESULTS_DIR_ENV}=off); no entry has a file"
            raise ValueError(msg)
        return self.directory / key[:2] / f"{key}{_ENTRY_SUFFIX}"

    def contains(self, key: str) -> bool:
        """Return whether an entry for *key* is on disk (it may still turn out unreadable)."""
        return self.directory is not None and self.path(key).is_file()

    def get(self, key: str, compute: Callable[[], T], *, label: str) -> T:
        """Return the entry *key*, computing and keeping it with *compute* when there is none.

        Parameters
        ----------
        key : str
            From :meth:`key`.
        compute : callable
            Makes the result (called only on a miss).
        label : str
            What the result is (the function's name): counted in
            :attr:`hits` and :attr:`misses`, timed, and passed to the
            listeners of :meth:`listen` before a computation starts.

        Returns
        -------
        object
            The result.
        """
        if self.directory is None:
            return compute()
        path = self.path(key)
        import joblib  # see key()

        if path.is_file():
            try:
                entry = joblib.load(path)
                if not isinstance(entry, dict) or entry.get("format") != _ENTRY_FORMAT:
                    msg = f"not a journeylib result entry (format {_ENTRY_FORMAT})"
                    raise TypeError(msg)  # handled below like any unreadable file
            except Exception as exc:  # a torn, truncated or foreign file is recomputed, never fatal
                msg = (
                    f"persistent result {path} ({label}) could not be read ({type(exc).__name__}: {exc}); "
                    "computing it again and replacing the file"
                )
                warnings.warn(msg, ResultStoreWarning, stacklevel=2)
            else:
                with contextlib.suppress(OSError):
                    os.utime(path)  # last used: the size cap deletes the entries used longest ago first
                self.hits[label] += 1
                _replay(entry["warnings"])
                return cast("T", entry["value"])
        for listener in list(self._listeners):
            listener(label)
        start = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            value = compute()
        seconds = time.perf_counter() - start
        raised = [(w.category, str(w.message), w.filename, w.lineno) for w in caught]
        self.misses[label] += 1
        self.seconds[label] = self.seconds.get(label, 0.0) + seconds
        self._write(path, {"format": _ENTRY_FORMAT, "value": value, "warnings": raised, "seconds": seconds}, label)
        self._write_timing(label, seconds)
        self.prune()
        _replay(raised)
        return value

    @contextlib.contextmanager
    def listen(self, callback: Callable[[str], None]) -> Iterator[None]:
        """Call *callback* with the label of every miss, before it is computed, while the block runs.

        Parameters
        ----------
        callback : callable
            Takes the label; a dashboard shows a "computing" notice with it.
        """
        self._listeners.append(callback)
        try:
            yield
        finally:
            self._listeners.remove(callback)

    def last_seconds(self, label: str) -> float | None:
        """Return how long the last computation of *label* took (any key, any process), or None if unknown.

        Parameters
        ----------
        label : str
            The label given to :meth:`get`.

        Returns
        -------
        float or None
            Seconds.
        """
        if self.directory is None:
            return None
        try:
            return float((self.directory / _TIMINGS_DIR / f"{_safe_name(label)}.txt").read_text())
        except (OSError, ValueError):
            return None

    def size_bytes(self) -> int:
        """Return the bytes of the entries on disk."""
        return sum(size for _, _, size in self._entries())

    def prune(self) -> int:
        """Delete the entries used longest ago until the folder is within :attr:`max_bytes`.

        Returns
        -------
        int
            How many entries were deleted.
        """
        entries = sorted(self._entries())  # oldest use first
        total = sum(size for _, _, size in entries)
        deleted = 0
        for _, path, size in entries:
            if total <= self.max_bytes:
                break
            with contextlib.suppress(FileNotFoundError):  # another process pruned it first
                path.unlink()
                deleted += 1
            total -= size
        return deleted

    def _entries(self) -> list[tuple[float, Path, int]]:
        if self.directory is None or not self.directory.is_dir():
            return []
        out = []
        for path in self.directory.glob(f"*/*{_ENTRY_SUFFIX}"):
            with contextlib.suppress(FileNotFoundError):
                stat = path.stat()
                out.append((stat.st_mtime, path, stat.st_size))
        return out

    def _write(self, path: Path, value: Any, label: str) -> None:
        import joblib  # see key()

        tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            joblib.dump(value, tmp)
            os.replace(tmp, path)  # atomic: readers see the old file or the whole new one
        except Exception as exc:  # a full disk or an unpicklable result must not fail the analysis
            with contextlib.suppress(OSError):
                tmp.unlink()
            msg = f"persistent result {path} ({label}) could not be written ({type(exc).__name__}: {exc}); it is not kept"
            warnings.warn(msg, ResultStoreWarning, stacklevel=3)

    def record_seconds(self, label: str, seconds: float) -> None:
        """Record how long *label* took, for :meth:`last_seconds` (nothing when the store is off).

        Parameters
        ----------
        label : str
            What took that long.
        seconds : float
            How long.
        """
        if self.directory is not None:
            self._write_timing(label, seconds)

    def _write_timing(self, label: str, seconds: float) -> None:
        assert self.directory is not None  # only called when enabled
        folder = self.directory / _TIMINGS_DIR
        path = folder / f"{_safe_name(label)}.txt"
        tmp = folder / f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            tmp.write_text(f"{seconds:.3f}")
            os.replace(tmp, path)
        except OSError:
            with contextlib.suppress(OSError):
                tmp.unlink()


def _replay(raised: list[tuple[type[Warning], str, str, int]]) -> None:
    """Warn again what a computation warned (a read entry says what its computation said), through the current filters."""
    for category, message, filename, lineno in raised:
        warnings.warn_explicit(message, category, filename, lineno)


def _safe_name(label: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in label)[:200]
