"""Helpers the notebooks call: where they run, how charts render there, and URL parameters.

Charts render in one of two modes:

``"static"``
    SVG rendered in the kernel by vl-convert: deterministic, no JavaScript,
    right for Papermill reports and offline HTML.
``"dashboard"``
    Under Voila. Charts a notebook simply displays are the same kernel-rendered
    SVG; the charts of widgets (:func:`journeylib.widgets.base.live_chart`) are
    Altair's anywidget ``JupyterChart`` with its JavaScript inlined (offline),
    drawing SVG, so widgets update them in place. Only widget charts load
    JavaScript: each ``JupyterChart`` imports its own ~900 KB Vega bundle, and
    anywidget drops every later update of a chart whose bundle took more than
    2 s to load — with a dozen of them loading at page open on a busy 2-core
    machine, some did (see :mod:`journeylib.widgets.base`).

:func:`setup_altair` picks the mode; :func:`in_voila` tells whether the kernel
was started by Voila; :func:`query_parameters` reads URL overrides of notebook
parameters under Voila.

A notebook section that cannot be computed on the data at hand (no converted
customer, no churn, a segment with too few customers, no tickets) runs inside
``with section("Title") as part:``: journeylib's own "nothing to compute" errors
(:class:`~journeylib.exceptions.EmptyResultError`, which includes
:class:`~journeylib.exceptions.ScopeError`) are caught, a short note is shown
in its place and recorded, and ``part.computed`` is False, so the later cells
of that section (guarded by ``if part.computed:``) are skipped while the rest
of the notebook runs. :func:`show_note` shows and records a note that is not
an error (e.g. events the definition names but the store lacks); :func:`notes`
lists every note recorded, for the ``summary.json`` the notebook writes.

:func:`open_journey` also installs :func:`capture_warnings`: a Python warning
raised in a later cell (a :class:`~journeylib.exceptions.StatisticalWarning`,
a :class:`~journeylib.exceptions.DataQualityWarning`, a library's warning) is
not printed with its file path and line; it is recorded, once per message with
a count, for :func:`warning_notes`, which the report's "Notes on the data"
section lists (:func:`journeylib.reports.display.notes_section`).
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import MutableMapping, Sequence
from importlib import metadata
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import altair as alt

from journeylib.charts.theme import THEME_NAME
from journeylib.exceptions import DataQualityWarning, EmptyResultError, StatisticalWarning
from journeylib.words import plural, reader_message, sentence

if TYPE_CHECKING:
    import pandas as pd

    from journeylib.context import Journey

__all__ = [
    "ABSENT_EVENTS_TITLE",
    "CHART_MODES",
    "SCOPE_PARAMETERS",
    "SKIPPABLE_ERRORS",
    "Section",
    "capture_warnings",
    "chart_bundle_cache_dir",
    "clear_notes",
    "in_voila",
    "notes",
    "open_journey",
    "query_parameters",
    "require",
    "section",
    "setup_altair",
    "show_absent_events",
    "show_note",
    "warning_notes",
]

#: Notebook parameters that make a scope (:class:`journeylib.scope.Scope`), in the order :func:`open_journey` reads them.
SCOPE_PARAMETERS: tuple[str, ...] = ("as_of", "segment", "plan", "signup_from", "signup_to", "sample_n", "events_from", "events_to")

#: The chart modes :func:`setup_altair` accepts.
CHART_MODES: tuple[str, ...] = ("static", "dashboard")

#: The errors a :class:`Section` turns into a note: journeylib's own "nothing to compute on this data"
#: (:class:`~journeylib.exceptions.EmptyResultError` and its subclass :class:`~journeylib.exceptions.ScopeError`).
#: Anything else (a wrong configuration, a programming error, a store failure) still stops the notebook.
SKIPPABLE_ERRORS: tuple[type[BaseException], ...] = (EmptyResultError,)

#: The title of the note :func:`show_absent_events` shows.
ABSENT_EVENTS_TITLE = "Events the definition names but the store lacks"

# The notes of this kernel, by section title (a re-run cell replaces its section's note).
_NOTES: dict[str, dict[str, str]] = {}
# The warnings raised in this kernel since the last clear_notes(), by message; and the section running.
_WARNINGS: dict[str, dict[str, Any]] = {}
_CURRENT_SECTION: list[str] = []
# What a warning is about, in words, when it is raised outside a section.
_WARNING_TOPICS: tuple[tuple[type[Warning], str], ...] = (
    (StatisticalWarning, "Statistical caveat"),
    (DataQualityWarning, "Data caveat"),
    (Warning, "Caveat"),
)


def in_voila() -> bool:
    """Tell whether the code runs in a kernel started by Voila.

    Voila passes ``SERVER_SOFTWARE=voila/<version>`` to its kernels; Papermill,
    nbval and JupyterLab do not.

    Returns
    -------
    bool
        True under Voila.

    Examples
    --------
    >>> isinstance(in_voila(), bool)
    True
    """
    return os.environ.get("SERVER_SOFTWARE", "").startswith("voila/")


def setup_altair(mode: str | None = None) -> str:
    """Enable the journeylib theme and the chart renderer for *mode*.

    Parameters
    ----------
    mode : {"static", "dashboard"}, optional
        ``"static"``: SVG rendered by vl-convert in the kernel (Papermill,
        offline HTML). ``"dashboard"`` (Voila): displayed charts as the same
        SVG, and widget charts (:func:`journeylib.widgets.base.live_chart`) as
        offline ``JupyterChart`` drawing SVG. Default: the
        ``REPORT_CHART_MODE`` environment variable, else ``"dashboard"`` under
        Voila, else ``"static"``.

    Returns
    -------
    str
        The mode enabled; notebooks keep it as ``MODE`` and build widgets
        only when it is ``"dashboard"``.

    Raises
    ------
    ValueError
        If the mode (argument or environment) is not one of the two.

    Examples
    --------
    >>> setup_altair("static")
    'static'
    """
    chosen = mode or os.environ.get("REPORT_CHART_MODE") or ("dashboard" if in_voila() else "static")
    if chosen not in CHART_MODES:
        where = "mode" if mode else "REPORT_CHART_MODE"
        msg = f"setup_altair: {where}={chosen!r} is not a chart mode; allowed: {', '.join(CHART_MODES)}"
        raise ValueError(msg)
    alt.theme.enable(THEME_NAME)
    alt.renderers.enable("svg")
    if chosen == "dashboard":
        # Widget charts (live_chart) are JupyterCharts: inline their JavaScript before any is built,
        # or they would load it from a CDN.
        _enable_offline_jupyter_chart()
    return chosen


def chart_bundle_cache_dir() -> Path:
    """Return the folder where the inlined JavaScript of widget charts is kept between kernels.

    ``JOURNEYLIB_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/journeylib`` (default ``~/.cache/journeylib``).

    Returns
    -------
    pathlib.Path
        The folder (not created here).

    Examples
    --------
    >>> isinstance(chart_bundle_cache_dir(), Path)
    True
    """
    if os.environ.get("JOURNEYLIB_CACHE_DIR"):
        return Path(os.environ["JOURNEYLIB_CACHE_DIR"]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "journeylib"


def _enable_offline_jupyter_chart() -> None:
    # alt.JupyterChart.enable_offline bundles Vega's JavaScript with vl-convert on every call: ~1.3 s of
    # each dashboard kernel's start, for the same ~900 KB each time (the bundle depends only on the
    # altair and vl-convert versions and altair's widget source). Keep it in a file named after those
    # and reuse it; any mismatch (another altair that no longer has these attributes, an unreadable
    # file) falls back to altair's own call.
    from altair.jupyter import jupyter_chart

    cls = alt.JupyterChart
    if getattr(cls, "_is_offline", False):
        return
    try:
        versions = f"{alt.__version__}|{metadata.version('vl-convert-python')}"
        source = jupyter_chart.load_js_src()
        key = hashlib.sha256(f"{versions}|{source}".encode()).hexdigest()[:16]
        path = chart_bundle_cache_dir() / f"jupyterchart-{key}.js"
        bundle = path.read_text(encoding="utf-8") if path.is_file() else ""
    except (metadata.PackageNotFoundError, AttributeError, OSError, UnicodeDecodeError):
        cls.enable_offline(offline=True)
        return
    if bundle and hasattr(cls, "_esm"):
        cls._esm = bundle
        cls._is_offline = True
        return
    cls.enable_offline(offline=True)
    bundle = getattr(cls, "_esm", "")
    if not isinstance(bundle, str) or not bundle:
        return
    try:  # written whole then renamed, so a kernel starting meanwhile never reads half a file
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        partial.write_text(bundle, encoding="utf-8")
        os.replace(partial, path)
    except OSError:
        pass  # a read-only home only costs the next kernel the bundling time


def _coerce(name: str, text: str, default: Any) -> Any:
    """Convert the URL value *text* to the type of *default*."""
    if isinstance(default, bool):
        lowered = text.strip().lower()
        if lowered in {"1", "true", "yes", "on"}:
            return True
        if lowered in {"0", "false", "no", "off"}:
            return False
        msg = f"URL parameter {name}={text!r} is not a boolean; use true or false"
        raise ValueError(msg)
    if isinstance(default, int):
        try:
            return int(text)
        except ValueError:
            msg = f"URL parameter {name}={text!r} is not a whole number"
            raise ValueError(msg) from None
    if isinstance(default, float):
        try:
            return float(text)
        except ValueError:
            msg = f"URL parameter {name}={text!r} is not a number"
            raise ValueError(msg) from None
    return text


def query_parameters(defaults: dict[str, Any], *, query_string: str | None = None) -> dict[str, Any]:
    """Override notebook parameters from the Voila URL query string.

    Under Voila the page's query (``?segment=SMB&sample_n=50``) reaches the
    kernel as ``QUERY_STRING``. Only the names in *defaults* are read, each
    converted to the type of its default; other names are ignored. Outside
    Voila (Papermill, JupyterLab) *defaults* come back unchanged, so injected
    parameters win in batch runs.

    The values come from whoever holds the URL: never pass names that choose
    files (``db``, ``output_dir``), and validate the values afterwards (the
    journeylib computations check ``segment``, ``as_of`` and ``sample_n``).

    Parameters
    ----------
    defaults : dict
        Parameter names mapped to their current values (``str``, ``int``,
        ``float`` or ``bool``).
    query_string : str, optional
        The query to read instead of ``QUERY_STRING``; when given, it is read
        even outside Voila (for tests).

    Returns
    -------
    dict
        A new dict with the same keys; values taken from the query where
        present (the last one wins if repeated).

    Raises
    ------
    ValueError
        If a value cannot be converted to its parameter's type.

    Examples
    --------
    >>> query_parameters({"segment": "all", "sample_n": 0}, query_string="segment=SMB&sample_n=50&db=x")
    {'segment': 'SMB', 'sample_n': 50}
    """
    if query_string is None:
        if not in_voila():
            return dict(defaults)
        query_string = os.environ.get("QUERY_STRING", "")
    given = parse_qs(query_string, keep_blank_values=True)
    out = dict(defaults)
    for name, default in defaults.items():
        if name in given:
            out[name] = _coerce(name, given[name][-1], default)
    return out


def open_journey(
    namespace: MutableMapping[str, Any], *, url: Sequence[str] = (), scope: Sequence[str] = SCOPE_PARAMETERS
) -> Journey:
    """Turn a notebook's parameters into its analysis context, in one call.

    1. Under Voila, the parameters named in *url* are overridden from the page's
       query string (:func:`query_parameters`) and written back into
       *namespace*, so the rest of the notebook sees the values it runs with.
    2. The store is opened: with an ``engine`` parameter naming an
       ``engine.yaml`` (:class:`journeylib.config.engine.EngineConfig`), the
       store it describes (``engine: spark`` runs every query of the notebook
       on Spark, ``engine: duckdb`` opens its ``db`` read-only); otherwise
       (no ``engine`` parameter, or empty) the DuckDB store named by ``db``,
       read-only (empty: ``JOURNEYLIB_DB`` or ``data/journeylib.duckdb``).
       The journey definition named by ``definition`` is loaded (when the
       notebook has one), and the parameters named in *scope* make the
       :class:`~journeylib.scope.Scope`.
    3. The notes of an earlier run in the same kernel are forgotten (:func:`clear_notes`).

    Parameters
    ----------
    namespace : MutableMapping
        The notebook's parameters: pass ``globals()``.
    url : sequence of str
        Parameters a dashboard URL may override (never ``db``, ``engine`` or ``output_dir``).
    scope : sequence of str, default :data:`SCOPE_PARAMETERS`
        Parameters that make the scope; those the notebook lacks are left at
        their defaults. A notebook whose ``segment`` only filters a view (not
        the customers analysed) leaves it out.

    Returns
    -------
    Journey
        The context every cell of the notebook asks.

    Raises
    ------
    TypeError
        If *url* names ``db``, ``engine`` or ``output_dir``, or both ``db`` and
        ``engine`` are given (an ``engine.yaml`` with ``engine: duckdb`` names
        its own ``db``).
    ValueError
        If a URL value cannot be converted to its parameter's type.
    journeylib.exceptions.ConfigError
        If the ``engine`` file is missing or not a valid engine configuration.
    """
    from journeylib.config.journey import JourneyDefinition
    from journeylib.context import Journey
    from journeylib.scope import Scope
    from journeylib.store import Store, resolve_db_path

    unsafe = sorted(set(url) & {"db", "engine", "output_dir"})
    if unsafe:
        msg = f"open_journey: {', '.join(unsafe)} cannot come from a URL (they choose files)"
        raise TypeError(msg)
    namespace.update(query_parameters({name: namespace[name] for name in url}))
    clear_notes()  # a notebook run starts here: the notes of an earlier run in this kernel no longer apply
    capture_warnings()
    engine = namespace.get("engine") or None
    if engine is not None and namespace.get("db"):
        msg = (
            f"open_journey: give db (a DuckDB store file) or engine (an engine.yaml), not both; got db={namespace['db']!r} "
            f"and engine={engine!r}. An engine.yaml with engine: duckdb names its store in its own db key."
        )
        raise TypeError(msg)
    if engine is not None:
        from journeylib.config.engine import EngineConfig
        from journeylib.store.database import open_store

        store = open_store(EngineConfig.from_yaml(engine), read_only=True)
    else:
        store = Store(resolve_db_path(namespace.get("db") or None), read_only=True)
    definition = JourneyDefinition.load(namespace["definition"]) if namespace.get("definition") else None
    filters = {name: namespace[name] for name in scope if name in namespace}
    if definition is not None:  # the segment parameter is a value of the definition's segment_field
        filters["segment_field"] = definition.segment_field
    journey = Journey(store, definition, Scope.build(store, function="open_journey", **filters))
    show_sample(journey)  # a sampled run says so at the top of the report
    return journey


def _display_note(title: str, text: str) -> None:
    from IPython.display import display

    # Markdown for notebooks, Voila and the HTML reports; plain text for consoles and text exports.
    display({"text/plain": f"{title}. {text}", "text/markdown": f"> **{title}.** {text}"}, raw=True)


def show_note(title: str, text: str) -> None:
    """Show a short note in the notebook and record it for :func:`notes`.

    Parameters
    ----------
    title : str
        What the note is about (a section title); a later note with the same
        title replaces it.
    text : str
        The note, in full sentences.

    Examples
    --------
    >>> clear_notes()
    >>> show_note("Absent events", "The definition names 1 event the store does not have.")  # doctest: +SKIP
    """
    _NOTES[title] = {"section": title, "status": "note", "error": "", "message": text}
    _display_note(title, text)


def show_absent_events(absent: pd.DataFrame) -> None:
    """Show and record a note naming the events the journey definition uses that the store does not have.

    Nothing is shown when *absent* is empty. The note says how many names are
    absent, then each one with the stages that use it and the closest names
    present (the ``message`` column).

    Parameters
    ----------
    absent : pandas.DataFrame
        What :func:`journeylib.journey.stages.absent_events_data` returned
        (``Journey.absent_events_data()``): columns ``event``, ``used_by``,
        ``closest``, ``message``.

    Raises
    ------
    ValueError
        If *absent* lacks the ``message`` column.

    Examples
    --------
    >>> import pandas as pd
    >>> show_absent_events(pd.DataFrame(columns=["event", "used_by", "closest", "message"]))
    """
    if "message" not in absent.columns:
        msg = (
            "show_absent_events: the table has no 'message' column; pass what absent_events_data returned "
            f"(columns event, used_by, closest, message), got columns {list(absent.columns)}"
        )
        raise ValueError(msg)
    if absent.empty:
        return
    names = plural(len(absent), "event name")
    lead = f"The journey definition uses {names} the store does not have, so the conditions naming them never hold."
    details = " ".join(sentence(str(m)) for m in absent["message"])
    show_note(ABSENT_EVENTS_TITLE, f"{lead} {details}")


def notes() -> list[dict[str, str]]:
    """Return the notes recorded in this kernel, in the order their sections ran.

    Returns
    -------
    list of dict
        One dict per note: ``section`` (its title), ``status`` (``"skipped"``:
        the section could not be computed; ``"note"``: a remark from
        :func:`show_note`), ``error`` (the class name of the error that skipped
        the section, empty for a remark) and ``message`` (the text shown).
        JSON-ready: notebooks put it in their ``summary.json`` as ``section_notes``.

    Examples
    --------
    >>> clear_notes()
    >>> notes()
    []
    """
    return [dict(note) for note in _NOTES.values()]


def clear_notes() -> None:
    """Forget every recorded note, warning and the recorded sample (a fresh notebook run, or a test).

    Examples
    --------
    >>> clear_notes()
    """
    _NOTES.clear()
    _WARNINGS.clear()
    _SAMPLE.clear()


def _record_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: Any = None,
    line: str | None = None,
) -> None:
    """``warnings.showwarning`` replacement: record the warning in words, print nothing (no file path)."""
    text = reader_message(str(message)) or f"{category.__name__} without a message."
    topic = next(name for kind, name in _WARNING_TOPICS if issubclass(category, kind))
    where = _CURRENT_SECTION[-1] if _CURRENT_SECTION else topic
    if text in _WARNINGS:
        _WARNINGS[text]["count"] += 1
        return
    _WARNINGS[text] = {"section": where, "status": "warning", "error": category.__name__, "message": text, "count": 1}


def capture_warnings() -> None:
    """Record the Python warnings raised from now on in this kernel instead of printing them.

    A printed warning carries the temporary file of the kernel's cell and its
    line, which mean nothing to a reader of the report. Each warning is
    recorded once per message (later repeats are counted) with the section
    running when it was raised (:class:`Section`), else its kind in words
    ("Statistical caveat", "Data caveat", "Caveat"); :func:`warning_notes`
    lists them. Python's warning filters still decide which warnings are
    raised. :func:`open_journey` calls it.

    Examples
    --------
    >>> capture_warnings()
    >>> import warnings
    >>> warnings.showwarning is not None
    True
    """
    warnings.showwarning = _record_warning


def warning_notes() -> list[dict[str, Any]]:
    """Return the warnings recorded since :func:`capture_warnings`, in the order first raised.

    Returns
    -------
    list of dict
        One dict per distinct message: ``section`` (the section running when
        it was raised, else its kind in words), ``status`` (``"warning"``),
        ``error`` (the warning's class name), ``message`` (the text, one
        sentence, no file path) and ``count`` (times raised). JSON-ready.

    Examples
    --------
    >>> clear_notes()
    >>> warning_notes()
    []
    """
    return [dict(w) for w in _WARNINGS.values()]


class Section:
    """A notebook section that shows a note instead of failing when the data leave nothing to compute.

    Use it as a context manager: ``with section("Title") as part:``. A
    :data:`SKIPPABLE_ERRORS` error raised in the block is swallowed; a note
    (the title and the error's message) is displayed where the output would
    have been and recorded for :func:`notes`, and :attr:`computed` becomes
    False. Any other error propagates. The same section may be entered again
    in a later cell (``with part:``); a block that completes leaves
    :attr:`computed` as it was, a block that fails sets it to False. Later
    cells that use what the section produced are guarded with
    ``if part.computed:``, and the artifact cell includes the section's tables
    only when it was computed.

    Parameters
    ----------
    title : str
        The section's title, as in the notebook's heading; it names the note.

    Attributes
    ----------
    title : str
        The title.
    computed : bool
        True until a block of the section fails.
    note : str
        The message of the error that skipped the section (empty while computed).

    Examples
    --------
    >>> from journeylib.exceptions import DataQualityWarning, EmptyResultError, StatisticalWarning
    >>> clear_notes()
    >>> with Section("Retention") as part:  # doctest: +SKIP
    ...     raise EmptyResultError("no cohort has 30+ converted customers.")
    >>> part.computed  # doctest: +SKIP
    False
    """

    def __init__(self, title: str) -> None:
        if not isinstance(title, str) or not title.strip():
            msg = f"Section: title must be a non-empty string (it names the note), got {title!r}"
            raise ValueError(msg)
        self.title = title
        self.computed = True
        self.note = ""

    def __enter__(self) -> Section:
        _CURRENT_SECTION.append(self.title)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        if _CURRENT_SECTION and _CURRENT_SECTION[-1] == self.title:
            _CURRENT_SECTION.pop()
        if exc is None:
            if self.computed:
                _NOTES.pop(self.title, None)  # a re-run that now computes drops its old note
            return False
        if not isinstance(exc, SKIPPABLE_ERRORS):
            return False
        self.computed = False
        self.note = reader_message(str(exc)) or f"{type(exc).__name__} without a message."
        text = sentence(f"Not computed: {self.note}")
        _NOTES[self.title] = {"section": self.title, "status": "skipped", "error": type(exc).__name__, "message": self.note}
        _display_note(self.title, text)
        return True

    def __repr__(self) -> str:
        state = "computed" if self.computed else f"not computed: {self.note}"
        return f"Section({self.title!r}, {state})"


def section(title: str) -> Section:
    """Start a notebook section that shows a note instead of failing when there is nothing to compute.

    Parameters
    ----------
    title : str
        The section's title; it names the note in the notebook and in
        :func:`notes`.

    Returns
    -------
    Section
        A context manager; see :class:`Section`.

    Examples
    --------
    >>> part = section("Retention of paying customers")
    >>> part.computed
    True
    """
    return Section(title)


def require(*parts: Section) -> None:
    """Stop a section whose inputs come from earlier sections that could not be computed.

    Called first inside ``with section("Title"):``, it raises
    :class:`~journeylib.exceptions.EmptyResultError` when any of *parts* has
    ``computed`` False, so the dependent section is skipped with its own note
    (naming the sections it needs) instead of failing on a missing result.

    Parameters
    ----------
    *parts : Section
        The sections whose results the current section uses.

    Raises
    ------
    TypeError
        If a part is not a :class:`Section`.
    EmptyResultError
        If a part was not computed; the message names it.

    Examples
    --------
    >>> first = section("Snapshots")
    >>> require(first)  # computed: nothing happens
    """
    wrong = [type(p).__name__ for p in parts if not isinstance(p, Section)]
    if wrong:
        msg = f"require: every argument must be a Section (from section(...)); got {', '.join(wrong)}"
        raise TypeError(msg)
    missing = [p for p in parts if not p.computed]
    if missing:
        named = ", ".join(f"\u201c{p.title}\u201d" for p in missing)
        msg = f"Needs the results of {named}, which could not be computed on this data (see the note there)."
        raise EmptyResultError(msg)


#: The title of the note :func:`show_sample` shows.
SAMPLE_TITLE = "Sample"
# The customer sample of the last open_journey in this kernel (empty: none).
_SAMPLE: list[dict[str, Any]] = []


def show_sample(journey: Journey) -> dict[str, Any] | None:
    """State the customer sample of *journey*'s scope in the notebook, and record it for :func:`sample_info`.

    With ``sample_n`` > 0 it shows the note "Computed on a random sample of
    N of M customers (seed S)." (M: the customers the scope's other filters
    keep; N: those sampled, fewer than ``sample_n`` when M is smaller) and
    records it for :func:`sample_info` (the report's ``summary.json`` keeps
    it as ``sample``; it is not a section note: nothing failed to compute).
    :func:`open_journey` calls it, so the note opens every sampled report.

    Parameters
    ----------
    journey : Journey
        The notebook's analysis context.

    Returns
    -------
    dict or None
        ``n``, ``of_customers``, ``random_state``, ``sample_n`` and ``note``
        (the sentence shown); None without a sample.
    """
    import dataclasses

    _SAMPLE.clear()
    scope = journey.scope
    if scope.sample_n <= 0:
        return None
    whole = dataclasses.replace(scope, sample_n=0)
    with journey.store.session():
        n = int(journey.store.query(f"SELECT count(*) AS n FROM ({scope.customers_sql()}) AS s")["n"].iloc[0])
        m = int(journey.store.query(f"SELECT count(*) AS n FROM ({whole.customers_sql()}) AS s")["n"].iloc[0])
    text = f"Computed on a random sample of {n:,} of {m:,} customers (seed {scope.random_state})."
    if n < scope.sample_n:
        text += f" A sample of {scope.sample_n:,} was asked for; the scope holds only {m:,} customers, so all of them are analysed."
    info = {"n": n, "of_customers": m, "random_state": scope.random_state, "sample_n": scope.sample_n, "note": text}
    _display_note(SAMPLE_TITLE, text)
    _SAMPLE.append(info)
    return info


def sample_info() -> dict[str, Any] | None:
    """Return the sample :func:`show_sample` recorded for the last :func:`open_journey` of this kernel.

    :func:`journeylib.reports.artifacts.write_artifacts` adds it to
    ``summary.json`` as ``sample``.

    Returns
    -------
    dict or None
        See :func:`show_sample`; None when the notebook analyses every customer.
    """
    return dict(_SAMPLE[0]) if _SAMPLE else None
