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
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import altair as alt

from journeylib.charts.theme import THEME_NAME

if TYPE_CHECKING:
    from journeylib.context import Journey

__all__ = ["CHART_MODES", "SCOPE_PARAMETERS", "in_voila", "open_journey", "query_parameters", "setup_altair"]

#: Notebook parameters that make a scope (:class:`journeylib.scope.Scope`), in the order :func:`open_journey` reads them.
SCOPE_PARAMETERS: tuple[str, ...] = ("as_of", "segment", "plan", "signup_from", "signup_to", "sample_n", "events_from", "events_to")

#: The chart modes :func:`setup_altair` accepts.
CHART_MODES: tuple[str, ...] = ("static", "dashboard")


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
        alt.JupyterChart.enable_offline(offline=True)
    return chosen


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
    2. The store named by ``db`` is opened read-only (empty: ``JOURNEYLIB_DB``
       or ``data/journeylib.duckdb``), the journey definition named by
       ``definition`` is loaded (when the notebook has one), and the
       parameters named in *scope* make the :class:`~journeylib.scope.Scope`.

    Parameters
    ----------
    namespace : MutableMapping
        The notebook's parameters: pass ``globals()``.
    url : sequence of str
        Parameters a dashboard URL may override (never ``db`` or ``output_dir``).
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
        If *url* names ``db`` or ``output_dir``.
    ValueError
        If a URL value cannot be converted to its parameter's type.
    """
    from journeylib.config.journey import JourneyDefinition
    from journeylib.context import Journey
    from journeylib.scope import Scope
    from journeylib.store import Store, resolve_db_path

    unsafe = sorted(set(url) & {"db", "output_dir"})
    if unsafe:
        msg = f"open_journey: {', '.join(unsafe)} cannot come from a URL (they choose files)"
        raise TypeError(msg)
    namespace.update(query_parameters({name: namespace[name] for name in url}))
    store = Store(resolve_db_path(namespace.get("db") or None), read_only=True)
    definition = JourneyDefinition.load(namespace["definition"]) if namespace.get("definition") else None
    filters = {name: namespace[name] for name in scope if name in namespace}
    if definition is not None:  # the segment parameter is a value of the definition's segment_field
        filters["segment_field"] = definition.segment_field
    return Journey(store, definition, Scope.build(store, function="open_journey", **filters))
