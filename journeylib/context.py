"""The analysis context: one store, one journey definition, one scope, results computed once.

A notebook, a widget or an analyst asks many questions of the same customers:
the funnel, the transitions, the flow, the friction points, the drivers. Each
``*_data`` function of journeylib can answer one of them on its own (they are
the documented, testable API), but on its own each would recompute what they
share — above all the stage frames (milestones and intervals per customer),
the engine's most expensive step, and the scope's event counts by name that
event transitions and sessions branch on
(:mod:`journeylib.journey.scoped_events`). :class:`Journey` is the front
door that shares them::

    j = journeylib.Journey.open("data/journeylib.duckdb", definition="parameters/journeys/saas.yaml", segment="SMB")
    j.funnel_data()
    j.friction_data(ticket_sentiment=j.scored_tickets())

It is immutable: its store, definition and :class:`~journeylib.scope.Scope`
never change (:meth:`Journey.with_scope` returns a new context that shares the
caches, which are keyed by scope). Every analysis method calls the module
function of the same name with this context's store, definition, scope and
caches; keyword arguments are passed on unchanged. Each analysis runs in one
:meth:`~journeylib.store.Store.session` of the store: its queries read the same
data, and a read-only store holds no lock between two analyses.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from journeylib.cache import PersistentResults, ResultCache, function_name
from journeylib.config.journey import JourneyDefinition
from journeylib.scope import Scope
from journeylib.store import Store, resolve_db_path
from journeylib.store.memory import give_back_freed_memory

__all__ = ["Journey"]

_SCOPE_FIELDS = ("as_of", "segment", "plan", "signup_from", "signup_to", "sample_n", "random_state", "events_from", "events_to")


def _analysis(module: str, name: str) -> Callable[..., Any]:
    """Make a context method that runs ``module.name`` (imported on first use, so opening a context stays cheap)."""

    def method(self: Journey, **kwargs: Any) -> Any:
        return self.run(getattr(importlib.import_module(module), name), **kwargs)

    method.__name__ = name
    method.__qualname__ = f"Journey.{name}"
    method.__doc__ = (
        f"Run :func:`{module}.{name}` on this context's store, definition, scope and caches.\n\n"
        "Keyword arguments are passed on; see that function for them and for the columns returned.\n"
    )
    return method


class Journey:
    """An immutable analysis context: a store, a journey definition and a scope, with shared caches.

    Parameters
    ----------
    store : Store
        The canonical store (opened read-only by :meth:`open`).
    definition : JourneyDefinition or None
        Stages, outcomes and conventions; None for a context that only runs
        analyses without stages (data health).
    scope : Scope
        Which customers, as of when.

    Attributes
    ----------
    cache : ResultCache
        The results computed so far: milestone frames by definition and
        scope, feature tables, scored tickets; ``cache.computed`` counts them
        by kind.
    results : PersistentResults
        The results kept on disk across processes (:meth:`persisted`,
        :meth:`persisted_call`), configured by ``JOURNEYLIB_RESULTS_DIR``
        (default ``~/.cache/journeylib/results``; ``off`` disables it).

    Examples
    --------
    >>> with Journey.open(db, definition="parameters/journeys/saas.yaml", segment="SMB") as j:  # doctest: +SKIP
    ...     funnel = j.funnel_data()
    ...     enterprise = j.with_scope(segment="Enterprise").funnel_data()  # shares j's caches
    """

    __slots__ = ("_definition", "_scope", "_store", "cache", "results")

    def __init__(
        self, store: Store, definition: JourneyDefinition | None, scope: Scope, *, _caches: Journey | None = None
    ) -> None:
        if not isinstance(scope, Scope):
            msg = f"Journey: scope must be a journeylib.Scope (Scope.build(store, ...)); got {type(scope).__name__}"
            raise TypeError(msg)
        if definition is not None and not isinstance(definition, JourneyDefinition):
            msg = f"Journey: definition must be a JourneyDefinition (JourneyDefinition.load(path)); got {type(definition).__name__}"
            raise TypeError(msg)
        if definition is not None:  # the definition's segment_field is the segment of every analysis
            scope = scope.with_segment_field(store, definition.segment_field, function="Journey")
        self._store = store
        self._definition = definition
        self._scope = scope
        self.cache: ResultCache = _caches.cache if _caches is not None else ResultCache()
        self.results: PersistentResults = _caches.results if _caches is not None else PersistentResults.from_env()

    # -- construction ----------------------------------------------------------------------------
    @classmethod
    def open(
        cls,
        db: str | Path | None = None,
        *,
        definition: JourneyDefinition | str | Path | dict[str, Any],
        as_of: Any = None,
        segment: str | None = None,
        plan: str | None = None,
        signup_from: Any = None,
        signup_to: Any = None,
        sample_n: int = 0,
        random_state: int = 0,
        events_from: Any = None,
        events_to: Any = None,
    ) -> Journey:
        """Open a store read-only and build the context for a definition and a scope.

        Parameters
        ----------
        db : str or Path, optional
            The store; default ``JOURNEYLIB_DB`` or ``data/journeylib.duckdb``
            (:func:`journeylib.store.resolve_db_path`).
        definition : JourneyDefinition, dict, str or Path
            A definition or where to read it (:meth:`JourneyDefinition.load`).
        as_of, segment, plan, signup_from, signup_to, sample_n, random_state, events_from, events_to
            The scope (:meth:`Scope.build`); ``segment`` is a value of the
            definition's ``segment_field``.

        Returns
        -------
        Journey
            The context.

        Raises
        ------
        ConfigError
            If the definition cannot be read or is invalid.
        ScopeError
            If the segment or plan matches no customer.
        """
        store = Store(resolve_db_path(db), read_only=True)
        loaded = JourneyDefinition.load(definition)
        scope = Scope.build(
            store, as_of=as_of, segment=segment, plan=plan, signup_from=signup_from, signup_to=signup_to,
            sample_n=sample_n, random_state=random_state, events_from=events_from, events_to=events_to,
            segment_field=loaded.segment_field, function="Journey.open",
        )
        return cls(store, loaded, scope)

    def with_scope(self, **changes: Any) -> Journey:
        """Return a context for another scope of the same store and definition, sharing the caches.

        Parameters
        ----------
        **changes
            Scope filters to change (``segment="SMB"``, ``as_of="2025-06-30"``,
            ``sample_n=0``, …); the others are kept.

        Returns
        -------
        Journey
            The new context.
        """
        unknown = sorted(set(changes) - set(_SCOPE_FIELDS))
        if unknown:
            msg = f"Journey.with_scope: unknown scope filter(s) {', '.join(unknown)}; known: {', '.join(_SCOPE_FIELDS)}"
            raise TypeError(msg)
        filters = {f: getattr(self._scope, f) for f in _SCOPE_FIELDS} | changes
        scope = Scope.build(self._store, function="Journey.with_scope", segment_field=self._scope.segment_field, **filters)
        return Journey(self._store, self._definition, scope, _caches=self)

    def with_definition(self, definition: JourneyDefinition | str | Path | dict[str, Any]) -> Journey:
        """Return a context for another journey definition of the same store and scope, sharing the caches."""
        return Journey(self._store, JourneyDefinition.load(definition), self._scope, _caches=self)

    # -- what it holds ---------------------------------------------------------------------------
    @property
    def store(self) -> Store:
        """The canonical store."""
        return self._store

    @property
    def definition(self) -> JourneyDefinition:
        """The journey definition.

        Raises
        ------
        ValueError
            If the context was built without one.
        """
        if self._definition is None:
            msg = "this Journey has no journey definition; open it with definition=... to run stage analyses"
            raise ValueError(msg)
        return self._definition

    @property
    def scope(self) -> Scope:
        """Which customers, as of when."""
        return self._scope

    def close(self) -> None:
        """Close the store (a context from :meth:`open` owns its read-only connection)."""
        self._store.close()

    def __enter__(self) -> Journey:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        name = self._definition.name if self._definition is not None else None
        return f"Journey({name!r}, {self._scope.describe()}, {self.cache!r})"

    def milestones(self) -> pd.DataFrame:
        """Return the milestone frame (:func:`journeylib.journey.stages.compute_stages`), computed once."""
        stage_milestones = _function("journeylib.journey.stages", "stage_milestones")
        with self._store.session():
            return stage_milestones(self._store, self.definition, self._scope, cache=self.cache)

    def intervals(self) -> pd.DataFrame:
        """Return the stage intervals (:func:`journeylib.journey.stages.stage_intervals_data`) from the cached milestones."""
        return self.stage_intervals_data()

    def features(self, **kwargs: Any) -> Any:
        """Return the customer feature table (:func:`journeylib.customers.features.build_features`), built once per arguments.

        Parameters
        ----------
        **kwargs
            Arguments of ``build_features`` besides the store, definition and
            scope (``window_days``, ``windows``, ``property_keys``, ...).

        Returns
        -------
        CustomerFeatures
            As ``build_features`` returns it.
        """
        return self.run(_function("journeylib.customers.features", "build_features"), **kwargs)

    def scored_tickets(self, *, scorer: Any = "vader", persist: bool = False) -> pd.DataFrame:
        """Return every ticket of the store scored for sentiment (:func:`journeylib.voice.sentiment.score_tickets`), once per scorer.

        Parameters
        ----------
        scorer : str or object, default "vader"
            As ``score_tickets`` takes it.
        persist : bool, default False
            Keep the result in the persistent result store (:attr:`results`),
            keyed by the store's data version, the scorer and the code
            version, so that other processes (a dashboard after a report run)
            read it instead of scoring again.

        Returns
        -------
        pandas.DataFrame
            As ``score_tickets`` returns it (one row per ticket).
        """
        score_tickets = _function("journeylib.voice.sentiment", "score_tickets")
        forget_kept_scores = _function("journeylib.voice.sentiment", "forget_kept_scores")
        options = {} if isinstance(scorer, str) and scorer == "vader" else {"scorer": scorer}
        key = (id(self._store), scorer if isinstance(scorer, str) else id(scorer))

        def compute() -> pd.DataFrame:
            scored = score_tickets(self._store.table("tickets"), **options)
            # the scores kept by text (about 20 MB at 10M events; the scored tickets are kept here instead) are
            # forgotten, and the texts and scores scoring made on the way, freed, leave pages in the C heap (about
            # 50 MB): the analyses after it would otherwise hold both on top of their own
            forget_kept_scores()
            give_back_freed_memory()
            return scored

        if not persist:
            return self.cache.get("scored_tickets", key, compute)
        parts = {"function": function_name(score_tickets), "data_version": self._checked_data_version(), "scorer": scorer}
        stored = self.results.key(parts)
        return self.cache.get(
            "scored_tickets", (*key, stored), lambda: self.results.get(stored, compute, label=function_name(score_tickets))
        )

    def data_version(self) -> str:
        """Return a hash of the store's data version (:func:`journeylib.store.fingerprint.table_fingerprints`).

        The fingerprints cost one scan of every table (about 0.1 s on
        250,000 events). For a store file they are read again whenever the
        file or its write-ahead log changed (modification time in
        nanoseconds and size of ``<db>`` and ``<db>.wal``: every DuckDB commit
        appends to the log, every checkpoint rewrites the file and empties
        the log), so a store ingested into while this context is open gets a
        new version; an in-memory store is read at each call.

        Returns
        -------
        str
            64 hex digits (SHA-256 of the fingerprints' JSON).
        """
        stamp = _file_stamp(self._store.path) if self._store.path is not None else None
        if stamp is not None and stamp in _DATA_VERSIONS:
            return _DATA_VERSIONS[stamp]
        table_fingerprints = _function("journeylib.store.fingerprint", "table_fingerprints")
        with self._store.session():
            fingerprints = table_fingerprints(self._store)
        text = json.dumps(fingerprints, sort_keys=True, default=str)
        version = hashlib.sha256(text.encode()).hexdigest()
        if stamp is not None and stamp == _file_stamp(self._store.path):  # unchanged while it was read
            _DATA_VERSIONS[stamp] = version
        return version

    # -- running analyses ------------------------------------------------------------------------
    def run(self, func: Callable[..., Any], /, **kwargs: Any) -> Any:
        """Run any journeylib analysis on this context.

        The store goes first; ``definition``, ``scope`` and ``cache`` are
        filled in where *func* takes them and they were not given. A function
        that takes loose filters (``as_of``, ``segment``, ...) instead of a
        ``scope`` gets this scope's values for them. *func* runs in one
        :meth:`~journeylib.store.Store.session` of the store.

        Raises
        ------
        TypeError
            If the scope filters something that *func* cannot filter (e.g. a
            plan for a function without ``plan``): its result would silently
            cover other customers.
        """
        call = self._call_arguments(func, kwargs)
        with self._store.session():
            return func(self._store, **call)

    def persisted(self, func: Callable[..., Any], /, **kwargs: Any) -> Any:
        """Run an analysis as :meth:`run` does, keeping its result on disk for every process that asks the same.

        For analyses that are pure functions of the store's data, the
        definition, the scope and their arguments (snapshots, backtests,
        scores, scored tickets): the result is read from the persistent
        result store (:attr:`results`) when an entry with the same key
        exists, else computed and kept. The key is made of *func*'s module
        and qualified name, the code version of journeylib, the store's data
        version (:meth:`data_version`), and the arguments *func* is called
        with — the definition and the scope (or its filters) as :meth:`run`
        fills them in, and *kwargs* (DataFrames and objects by their content;
        the ``cache`` is left out). Within this process the result is also
        kept in :attr:`cache`, so the next call does not read the file again.

        Parameters
        ----------
        func : callable
            A journeylib analysis taking the store first.
        **kwargs
            Its other arguments, as for :meth:`run`.

        Returns
        -------
        object
            What ``self.run(func, **kwargs)`` returns.

        Raises
        ------
        TypeError
            As :meth:`run`.

        Examples
        --------
        >>> snapshots = j.persisted(journeylib.customers.snapshots.build_snapshots, horizon_days=60)  # doctest: +SKIP
        """
        call = self._call_arguments(func, kwargs)
        data_version = self._checked_data_version()
        # Keyed by the arguments with the defaults filled in, so that a call spelling a default out and one
        # leaving it out (a report cell and a widget) share an entry; the store stands for the data version.
        bound = inspect.signature(func).bind(self._store, **call)
        bound.apply_defaults()
        arguments = {name: value for name, value in list(bound.arguments.items())[1:] if not isinstance(value, ResultCache)}
        parts = {"function": function_name(func), "data_version": data_version, "arguments": arguments}
        key = self.results.key(parts)

        def compute() -> Any:
            with self._store.session():
                return func(self._store, **call)

        return self.cache.get("persisted", key, lambda: self.results.get(key, compute, label=function_name(func)))

    def persisted_call(self, func: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """Return ``func(*args, **kwargs)``, kept on disk under the store's data version and the arguments.

        For computations that do not take the context but whose inputs come
        from it (a backtest of persisted snapshots, a topic model fitted to
        scored tickets, a dry run of alert rules on this store). The key is
        made of *func*'s module and qualified name (and, for a bound method,
        the content of its object: ``TopicModel(n_topics=5).fit``), the code
        version, this context's data version, and the arguments bound to
        *func*'s signature with their defaults filled in — so a call that
        spells a default out and one that leaves it out share an entry.
        :class:`~journeylib.store.Store` arguments stand for the data
        version, files named by a path for their content.

        Parameters
        ----------
        func : callable
            A pure function of its arguments and the store's data.
        *args, **kwargs
            Its arguments.

        Returns
        -------
        object
            What *func* returns.

        Raises
        ------
        TypeError
            If the arguments do not fit *func*'s signature.
        """
        bound = inspect.signature(func).bind(*args, **kwargs)
        bound.apply_defaults()
        data_version = self._checked_data_version()
        arguments = {name: data_version if isinstance(value, Store) else value for name, value in bound.arguments.items()}
        # no session held: a function that reads the store opens its own
        return self._kept_call(func, args, kwargs, data_version=data_version, arguments=arguments)

    def _kept_call(
        self, func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], *, data_version: str | None,
        arguments: dict[str, Any],
    ) -> Any:
        """``func(*args, **kwargs)`` through the persistent result store, keyed by *data_version* and *arguments*."""
        parts: dict[str, Any] = {"function": function_name(func), "data_version": data_version, "arguments": arguments}
        owner = getattr(func, "__self__", None)
        if owner is not None:
            parts["bound_to"] = owner
        key = self.results.key(parts)
        return self.cache.get(
            "persisted", key, lambda: self.results.get(key, lambda: func(*args, **kwargs), label=function_name(func))
        )

    def persisted_without_data(self, func: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """Return ``func(*args, **kwargs)``, kept on disk under the code version and the arguments only.

        For computations that read nothing of the store, such as the sentiment
        scorers validated on fixed human-rated corpora
        (:func:`journeylib.voice.evaluation.scorer_validation_data`): their
        result is the same for every store and every report, so it is computed
        once per version of journeylib and read back by every later run,
        whatever data it analyses. The key is made as in
        :meth:`persisted_call`, without the data version.

        Parameters
        ----------
        func : callable
            A pure function of its arguments that does not read the store.
        *args, **kwargs
            Its arguments.

        Returns
        -------
        object
            What *func* returns.

        Raises
        ------
        TypeError
            If an argument is a :class:`~journeylib.store.Store` or this
            context (the result would depend on the data: use
            :meth:`persisted_call`), or the arguments do not fit *func*'s
            signature.
        """
        bound = inspect.signature(func).bind(*args, **kwargs)
        bound.apply_defaults()
        for name, value in bound.arguments.items():
            if isinstance(value, (Store, Journey)):
                msg = (
                    f"persisted_without_data({function_name(func)}): argument {name!r} is a {type(value).__name__}, so "
                    "the result depends on the store's data; use persisted_call, which keys it by the data version"
                )
                raise TypeError(msg)
        return self._kept_call(func, args, kwargs, data_version=None, arguments=dict(bound.arguments))

    def _checked_data_version(self) -> str:
        """Return :meth:`data_version`; empty the in-process cache first if the store's data changed since it was filled.

        A result kept on disk under the new data version must not be made
        from milestone frames or feature tables of the old data.
        """
        version = self.data_version()
        self.cache.note_data_version(version)
        return version

    def _call_arguments(self, func: Callable[..., Any], kwargs: dict[str, Any]) -> dict[str, Any]:
        """Return the keyword arguments :meth:`run` passes to *func* after the store."""
        params = inspect.signature(func).parameters
        call: dict[str, Any] = {}
        if "definition" in params and "definition" not in kwargs and (self._definition is not None or _required(params["definition"])):
            call["definition"] = self.definition
        if "cache" in params and "cache" not in kwargs:
            call["cache"] = self.cache
        if "scope" in params:
            if not any(f in kwargs for f in (*_SCOPE_FIELDS, "scope")):
                call["scope"] = self._scope
        else:
            call.update(self._loose_filters(func, params, kwargs))
        return {**call, **kwargs}

    def _loose_filters(self, func: Callable[..., Any], params: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
        scope = self._scope
        values = {
            "as_of": scope.as_of, "segment": scope.segment, "plan": scope.plan, "signup_from": scope.signup_from,
            "signup_to": scope.signup_to, "sample_n": scope.sample_n, "random_state": scope.random_state,
            "events_from": scope.events_from, "events_to": scope.events_to,
        }
        defaults = {"as_of": None, "segment": None, "plan": None, "signup_from": None, "signup_to": None, "sample_n": 0, "random_state": 0,
                    "events_from": None, "events_to": None}
        out: dict[str, Any] = {}
        for name, value in values.items():
            if name in kwargs:
                continue
            if name in params:
                if name == "random_state" and not scope.sample_n:
                    continue  # a function's own random_state (e.g. a bootstrap seed) is not the sample's
                out[name] = value
            elif name != "as_of" and value != defaults[name]:  # without as_of, a function reads the whole timeline
                msg = (
                    f"Journey.run: {func.__module__}.{func.__name__} cannot filter by {name}, but this context's scope "
                    f"does ({name}={value!r}); use a context without it (Journey.with_scope({name}=...)) for this analysis."
                )
                raise TypeError(msg)
        return out

    # -- the journey map -------------------------------------------------------------------------
    milestones_data = _analysis("journeylib.journey.stages", "milestones_data")
    stage_intervals_data = _analysis("journeylib.journey.stages", "stage_intervals_data")
    customer_stages_data = _analysis("journeylib.journey.stages", "customer_stages_data")
    funnel_data = _analysis("journeylib.journey.stages", "funnel_data")
    time_to_convert_data = _analysis("journeylib.journey.stages", "time_to_convert_data")
    progress_data = _analysis("journeylib.journey.stages", "progress_data")
    stage_transitions_data = _analysis("journeylib.journey.transitions", "stage_transitions_data")
    event_transitions_data = _analysis("journeylib.journey.transitions", "event_transitions_data")
    customer_paths_data = _analysis("journeylib.journey.paths", "customer_paths_data")
    variants_data = _analysis("journeylib.journey.paths", "variants_data")
    conformance_data = _analysis("journeylib.journey.paths", "conformance_data")
    flow_data = _analysis("journeylib.journey.transitions", "flow_data")
    loop_events_data = _analysis("journeylib.journey.loops", "loop_events_data")
    sessions_data = _analysis("journeylib.journey.sessions", "sessions_data")
    friction_data = _analysis("journeylib.journey.friction", "friction_data")
    friction_tests_data = _analysis("journeylib.journey.friction", "friction_tests_data")
    suggest_milestones_data = _analysis("journeylib.journey.suggest", "suggest_milestones_data")

    def absent_events_data(self) -> pd.DataFrame:
        """Return the definition's events the store lacks (:func:`journeylib.journey.stages.absent_events_data`).

        The whole store is checked whatever the scope: a name absent from the
        store is absent from every sample, segment and period.
        """
        with self.store.session():
            return _function("journeylib.journey.stages", "absent_events_data")(self.store, definition=self.definition)

    def stage_map_data(self) -> pd.DataFrame:
        """Return the stages of the definition as a table (:func:`journeylib.journey.stage_map.stage_map_data`)."""
        return _function("journeylib.journey.stage_map", "stage_map_data")(self.definition)

    def compare_definitions_data(self, *, suggested: JourneyDefinition, **kwargs: Any) -> pd.DataFrame:
        """Compare this definition with *suggested* (:func:`journeylib.journey.suggest.compare_definitions_data`)."""
        func = _function("journeylib.journey.suggest", "compare_definitions_data")
        with self._store.session():
            return func(self._store, current=self.definition, suggested=suggested, scope=self._scope, cache=self.cache, **kwargs)

    # -- customers -------------------------------------------------------------------------------
    cohort_metrics_data = _analysis("journeylib.customers.cohorts", "cohort_metrics_data")
    cohort_pairwise_data = _analysis("journeylib.customers.cohorts", "cohort_pairwise_data")
    retention_curves_data = _analysis("journeylib.customers.cohorts", "retention_curves_data")
    customer_outcomes_data = _analysis("journeylib.customers.features", "customer_outcomes_data")
    drivers_data = _analysis("journeylib.customers.drivers", "drivers_data")

    # -- data health -----------------------------------------------------------------------------
    data_health_summary = _analysis("journeylib.health", "data_health_summary")
    source_volume_data = _analysis("journeylib.health", "source_volume_data")
    customer_mix_data = _analysis("journeylib.health", "customer_mix_data")
    event_type_data = _analysis("journeylib.health", "event_type_data")
    coverage_data = _analysis("journeylib.health", "coverage_data")

    # -- voice of the customer -------------------------------------------------------------------
    ticket_voice_data = _analysis("journeylib.voice.tickets", "ticket_voice_data")


#: Data versions of store files by their stamp (:func:`_file_stamp`), read once per process and state of the file.
_DATA_VERSIONS: dict[tuple[Any, ...], str] = {}


def _file_stamp(path: Path | None) -> tuple[Any, ...] | None:
    """Return (path, mtime_ns, size) of a store file and of its write-ahead log, or None if the file cannot be read."""
    if path is None:
        return None
    out: list[Any] = [str(path.resolve())]
    for candidate in (path, path.with_name(path.name + ".wal")):
        try:
            stat = candidate.stat()
        except FileNotFoundError:
            if candidate == path:
                return None
            out.append(None)
        else:
            out.append((stat.st_mtime_ns, stat.st_size))
    return tuple(out)


def _required(param: inspect.Parameter) -> bool:
    return param.default is inspect.Parameter.empty


def _function(module: str, name: str) -> Callable[..., Any]:
    return getattr(importlib.import_module(module), name)
