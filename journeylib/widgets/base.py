"""Shared parts of the widgets: the live-recompute base class, the live chart area, the error area and picker helpers.

:class:`LiveComputationWidget` is the base of the widgets that wrap one
computation: pickers set traits, a change recomputes the data, the new chart
is shown in a :class:`LiveChart`, a failure in the red error area
(:func:`error_html`) with a placeholder chart, and the statistical caveats in
a notes area. Widget modules import what they share from here only.

Why the JupyterChart built with the page is replaced before its first update
----------------------------------------------------------------------------
Each ``altair.JupyterChart`` model carries its own copy of the offline
Vega bundle (about 900 KB of JavaScript), which anywidget imports once per
model. anywidget (0.11) gives a model 2 s to initialise; past that, the
model's ``ready`` promise is rejected for good and every later message from
the kernel to that model is dropped, while its view still draws the first
chart. When a dashboard page opens, all its JupyterChart models load at
once (01_journey_map had 14 of them while displayed charts were JupyterCharts
too; now only widget charts are, see :func:`journeylib.notebook.setup_altair`),
so on a busy machine the last ones could miss the 2 s, and assigning
``chart`` to such a widget changed the kernel's spec but never the browser's
picture.

:class:`LiveChart` therefore shows its first new chart in a *new*
JupyterChart (and closes the one built with the page): a model's first state
arrives with its creation, never through the message path that a late
initialisation breaks. That new model loads alone, long after the page, so
later charts update it in place. (Replacing the JupyterChart for every chart
would work too, but each model keeps its own ~6 MB copy of Vega in the
page: about 13 MB more per pick for the two charts of the journey map.)

Widgets built from an analysis context
--------------------------------------
Every widget has ``from_journey(journey, **options)``: the store, the journey
definition and the scope's filters come from the
:class:`~journeylib.context.Journey`, and its computations run on that
context (:meth:`journeylib.context.Journey.run`), so they get its scope and
its :class:`~journeylib.cache.ResultCache`. The first view is then made from
the milestone frames, feature tables and cohort frames that the notebook
above the widget already computed. A picker that changes a scope filter
(segment, as_of, ...) runs the computation on ``journey.with_scope(...)``,
which shares the cache: a scope seen before costs no new pass.
:class:`ContextRunner` does this for every widget; :func:`scope_filters` and
:func:`journey_options` build the arguments of ``from_journey``.

Heavy dashboards read the report run's results
----------------------------------------------
The churn-risk, voice-of-the-customer and alerts widgets need results that
take tens of seconds (snapshots, backtests, scores, topic models, alert
runs). Their computations go through the context's persistent result store
(:meth:`journeylib.context.Journey.persisted`; a widget with ``PERSIST = True``
makes its :class:`ContextRunner` use it), under the same keys as the report
cells of the same notebook, so a dashboard opened after a report run of the
same data, definition, scope and parameters reads them from disk. When the
store does not have them, :func:`first_view_notice` says so at the top of the
page while the first view computes.
"""

from __future__ import annotations

import contextlib
import html
import inspect
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, ClassVar, Self, cast

import altair as alt
import ipywidgets as widgets
import pandas as pd
import traitlets
from IPython.display import HTML, display

from journeylib.charts.common import placeholder_chart
from journeylib.context import Journey
from journeylib.exceptions import StatisticalWarning
from journeylib.scope import ALL, NO_CUTOFF, Scope
from journeylib.store import Store

__all__ = [
    "EMBED_OPTIONS",
    "ERROR_STYLE",
    "LABEL_STYLE",
    "NOTES_STYLE",
    "NOTICE_STYLE",
    "SCOPE_FILTERS",
    "SUPPORT_CHOICES",
    "WINDOW_CHOICES",
    "ContextRunner",
    "LiveChart",
    "LiveComputationWidget",
    "date_text",
    "error_html",
    "first_view_notice",
    "first_view_notice_html",
    "journey_options",
    "live_chart",
    "picker_options",
    "scope_filters",
]

#: Inline style of the red error area (Voila pages load no extra CSS).
ERROR_STYLE = "color:#a40000;background:#fff1f0;border:1px solid #f3b7b2;padding:6px 10px;border-radius:4px"
#: Inline style of the notes area listing a computation's statistical caveats.
NOTES_STYLE = "color:#5c4400;background:#fffbe6;border:1px solid #f0dc9a;padding:4px 10px;border-radius:4px;font-size:90%"
#: Dropdown ``style``: labels at their natural width (the default cuts "Window (days):").
LABEL_STYLE: dict[str, str] = {"description_width": "initial"}
#: Choices of the window pickers (days after signup).
WINDOW_CHOICES: tuple[int, ...] = (7, 14, 30)
#: Choices of the minimum-support pickers (customers per side or per cohort).
SUPPORT_CHOICES: tuple[int, ...] = (10, 20, 30, 50, 100)
#: vega-embed options of live charts: SVG (so text can be asserted on) and no action menu.
EMBED_OPTIONS: dict[str, Any] = {"renderer": "svg", "actions": False, "ast": True}  # ast: no eval, so the CSP needs no unsafe-eval
#: The filters of a :class:`~journeylib.scope.Scope`, as :meth:`journeylib.context.Journey.with_scope` takes them.
SCOPE_FILTERS: tuple[str, ...] = ("as_of", "segment", "plan", "signup_from", "signup_to", "sample_n", "random_state")


def live_chart(chart: alt.TopLevelSpec) -> alt.JupyterChart:
    """Wrap *chart* in a ``JupyterChart`` widget that can be updated in place.

    Assign ``live.chart = new_chart`` to update it; never re-display into an
    ``Output`` widget (that stalls headless execution).

    Parameters
    ----------
    chart : altair.Chart
        The first chart to show.

    Returns
    -------
    altair.JupyterChart
        The widget, drawing SVG without the action menu.

    Examples
    --------
    >>> live = live_chart(alt.Chart().mark_point().properties(title="t"))
    >>> live.spec["title"]
    't'
    """
    return alt.JupyterChart(chart, embed_options=EMBED_OPTIONS)


def picker_options(values: tuple[Any, ...], current: Any) -> list[Any]:
    """Return the options of a picker: its fixed choices plus the current value, sorted.

    Parameters
    ----------
    values : tuple
        The picker's usual choices.
    current : object
        The value the widget was given, kept among the options even when it
        is not one of *values*.

    Returns
    -------
    list
        The distinct values, sorted by type name, then value.

    Examples
    --------
    >>> picker_options(WINDOW_CHOICES, 21)
    [7, 14, 21, 30]
    """
    return sorted({*values, current}, key=lambda v: (str(type(v)), v))


def error_html(message: str) -> str:
    """Return the HTML of the visible error area for *message* (escaped), or ``""``.

    Parameters
    ----------
    message : str
        The failure, e.g. ``"EmptyResultError: segment 'X' matches no customer"``;
        empty for no failure.

    Returns
    -------
    str
        A ``<div class="journeylib-error">`` with the escaped message, or
        ``""`` when *message* is empty.

    Examples
    --------
    >>> "ValueError: a &lt; b</div>" in error_html("ValueError: a < b")
    True
    >>> error_html("")
    ''
    """
    if not message:
        return ""
    return f'<div class="journeylib-error" style="{ERROR_STYLE}">{html.escape(message)}</div>'


def date_text(value: pd.Timestamp | None, *, end_of_day: bool = False) -> str:
    """Return a scope date as the text of a widget trait: ``""`` when open, else ISO.

    A date at midnight (or, with *end_of_day*, at the last microsecond of its
    day, as :func:`journeylib.scope.to_utc` reads a bare ``as_of`` date) is
    written as the bare date, so the text reads back to the same time.

    Parameters
    ----------
    value : pandas.Timestamp or None
        A time of a :class:`~journeylib.scope.Scope` (UTC).
    end_of_day : bool, default False
        Whether a bare date means the end of its day (``as_of``).

    Returns
    -------
    str
        ``""``, ``"YYYY-MM-DD"`` or the full ISO time.

    Examples
    --------
    >>> date_text(pd.Timestamp("2025-06-30T23:59:59.999999Z"), end_of_day=True)
    '2025-06-30'
    >>> date_text(pd.Timestamp("2025-04-01T00:00:00Z")), date_text(None)
    ('2025-04-01', '')
    >>> date_text(pd.Timestamp("2025-06-30T12:00:00Z"))
    '2025-06-30T12:00:00+00:00'
    """
    if value is None or value is NO_CUTOFF:
        return ""
    day = value.normalize()
    boundary = day + pd.Timedelta(days=1) - pd.Timedelta(microseconds=1) if end_of_day else day
    return f"{value:%Y-%m-%d}" if value == boundary else value.isoformat()


def scope_filters(scope: Scope, names: Iterable[str] = SCOPE_FILTERS) -> dict[str, Any]:
    """Return the filters of *scope* as the values of widget parameters.

    Parameters
    ----------
    scope : Scope
        The scope of an analysis context (``journey.scope``).
    names : iterable of str, default :data:`SCOPE_FILTERS`
        The filters wanted; names that are not scope filters are skipped.

    Returns
    -------
    dict
        ``as_of``, ``signup_from``, ``signup_to`` as text (:func:`date_text`;
        ``""`` when open), ``segment`` and ``plan`` as their value or
        ``"all"``, ``sample_n`` and ``random_state`` as int; each reads back
        to the same scope.

    Examples
    --------
    >>> scope = Scope(as_of=pd.Timestamp("2025-06-30T23:59:59.999999Z"), segment="SMB")
    >>> scope_filters(scope, ["as_of", "segment", "plan", "stage"])
    {'as_of': '2025-06-30', 'segment': 'SMB', 'plan': 'all'}
    """
    values: dict[str, Any] = {
        "as_of": date_text(scope.as_of, end_of_day=True),
        "segment": scope.segment_label,
        "plan": scope.plan if scope.plan is not None else ALL,
        "signup_from": date_text(scope.signup_from),
        "signup_to": date_text(scope.signup_to),
        "sample_n": scope.sample_n,
        "random_state": scope.random_state,
    }
    return {name: values[name] for name in names if name in values}


def journey_options(function: str, journey: Journey, options: Mapping[str, Any], *, forbidden: Iterable[str]) -> dict[str, Any]:
    """Check the arguments of a widget's ``from_journey`` and return its options.

    Parameters
    ----------
    function : str
        The caller, named in error messages (``"DriversWidget.from_journey"``).
    journey : Journey
        The analysis context.
    options : mapping
        The keyword options given.
    forbidden : iterable of str
        Names that come from the context (its scope filters, ``definition``,
        ``scope``, ``cache``) and must not be given.

    Returns
    -------
    dict
        A copy of *options*.

    Raises
    ------
    TypeError
        If *journey* is not a :class:`~journeylib.context.Journey`, or an
        option names something the context gives.
    """
    if not isinstance(journey, Journey):
        msg = (
            f"{function}: journey must be a journeylib.Journey (journeylib.notebook.open_journey(...) or "
            f"Journey.open(...)); got {type(journey).__name__}"
        )
        raise TypeError(msg)
    clashing = sorted(set(options) & set(forbidden))
    if clashing:
        filters = [name for name in clashing if name in SCOPE_FILTERS]
        widget = function.split(".")[0]
        if filters:
            changes = ", ".join(f"{name}=..." for name in filters)
            how = f"they are the context's scope; pass {widget}.from_journey(journey.with_scope({changes}), ...)"
        else:
            how = "they come from the context (journey.with_definition(...) for another definition)"
        msg = f"{function}: {', '.join(clashing)} cannot be given: {how}"
        raise TypeError(msg)
    return dict(options)


class ContextRunner:
    """Calls a widget's computations: on its store, or on the analysis context it was built from.

    Without a context, ``run(func, params)`` is ``func(store, **params)``.
    With one, the scope filters among *params* select the context: the
    context itself while they are the values the widget was built with,
    else ``journey.with_scope(...)`` for the filters that differ (which
    shares the context's cache; made once per set of changes, so a scope
    seen before is not validated again); the other parameters are passed to
    :meth:`journeylib.context.Journey.run`, which adds the scope (or its
    filters, for a function without ``scope``) and the cache.

    Parameters
    ----------
    store : Store
        The store of a widget built without a context.
    journey : Journey, optional
        The context (``from_journey``).
    initial : mapping, optional
        The widget's scope filters when it was built, as its computations
        get them (``data_parameters()``); they stand for the context's scope.
    persist : bool, default False
        Run the computations through the context's persistent result store
        (:meth:`journeylib.context.Journey.persisted`) instead of
        :meth:`~journeylib.context.Journey.run`: for heavy computations that
        a report run or another dashboard kernel may have done already.

    Attributes
    ----------
    journey : Journey or None
        The context.
    persist : bool
        Whether computations on the context are persisted.
    """

    def __init__(
        self, store: Store, journey: Journey | None = None, initial: Mapping[str, Any] | None = None, *, persist: bool = False
    ) -> None:
        self.store = store
        self.journey = journey
        self.persist = persist
        self._initial = {k: v for k, v in (initial or {}).items() if k in SCOPE_FILTERS}
        self._contexts: dict[tuple[tuple[str, Any], ...], Journey] = {}

    def context(self, params: Mapping[str, Any]) -> Journey:
        """Return the context for the scope filters among *params*.

        Raises
        ------
        ValueError
            If the runner has no context.
        ScopeError
            If a changed segment or plan matches no customer.
        """
        if self.journey is None:
            msg = "ContextRunner.context: this widget was built without an analysis context (use from_journey)"
            raise ValueError(msg)
        changes = tuple(sorted((k, v) for k, v in params.items() if k in self._initial and v != self._initial[k]))
        if not changes:
            return self.journey
        if changes not in self._contexts:
            self._contexts[changes] = self.journey.with_scope(**dict(changes))
        return self._contexts[changes]

    def run(self, func: Callable[..., Any], params: Mapping[str, Any]) -> Any:
        """Return ``func(store, **params)``, on the context when the widget has one.

        Parameters
        ----------
        func : callable
            The wrapped ``_data`` function.
        params : mapping
            Its keyword arguments (the widget's ``data_parameters()`` plus any
            display-driven ones such as ``from_stage``).

        Returns
        -------
        object
            What *func* returns.
        """
        if self.journey is None:
            return func(self.store, **params)
        rest = {k: v for k, v in params.items() if k not in SCOPE_FILTERS and k not in ("scope", "cache")}
        context = self.context(params)
        return context.persisted(func, **rest) if self.persist else context.run(func, **rest)


#: Inline style of the notice shown while a dashboard's first view computes.
NOTICE_STYLE = "color:#0b3d66;background:#eef6fc;border:1px solid #a9cbe8;padding:6px 10px;border-radius:4px"


def first_view_notice_html(what: str, seconds: float | None) -> str:
    """Return the HTML of the notice shown while a dashboard's first view computes.

    Parameters
    ----------
    what : str
        What is being prepared (``"the churn-risk dashboard"``).
    seconds : float or None
        How long the last first view took on this machine, if known.

    Returns
    -------
    str
        A ``<div class="journeylib-computing">`` with the escaped sentence.

    Examples
    --------
    >>> "about 30 s" in first_view_notice_html("the risk page", 28.4)
    True
    """
    if seconds is None:
        how_long = "It has not been measured on this machine yet; it can take a minute or more."
    else:
        how_long = f"Last time this took about {max(5, round(seconds / 5) * 5):.0f} s on this machine."
    text = (
        f"Computing {what}: its results for this data and these settings are not saved yet. {how_long} "
        "Later views of the same data read the saved results (a report run of the same data saves them too)."
    )
    return f'<div class="journeylib-computing" style="{NOTICE_STYLE}">{html.escape(text)}</div>'


@contextlib.contextmanager
def first_view_notice(journey: Journey, what: str) -> Iterator[None]:
    """Show a notice while the block computes results the persistent result store does not have.

    Nothing is shown when every persisted result of the block is read from
    disk. On the first computation (a miss of
    :meth:`journeylib.context.Journey.persisted`), a notice saying that the
    first view computes, and roughly how long it took last time on this
    machine, is displayed (in the cell's output, so at the top of a
    dashboard whose widget cell follows the configuration cell); when the
    block ends it is removed, and the time it took is recorded for the next
    estimate.

    Parameters
    ----------
    journey : Journey
        The analysis context whose :attr:`~journeylib.context.Journey.results` are watched.
    what : str
        What is being prepared, in words (``"the churn-risk dashboard"``).
    """
    label = f"first view: {what}"
    handle: Any = None
    start = time.perf_counter()

    def on_miss(_: str) -> None:
        nonlocal handle
        if handle is None:
            handle = display(HTML(first_view_notice_html(what, journey.results.last_seconds(label))), display_id=True)

    with journey.results.listen(on_miss):
        yield
    if handle is not None:
        journey.results.record_seconds(label, time.perf_counter() - start)
        handle.update(HTML(""))


class LiveChart(widgets.Box):
    """A chart area: a ``JupyterChart``, replaced once by a new one, then updated in place.

    The first chart assigned to :attr:`chart` gets a new ``JupyterChart``
    (:func:`live_chart`), which replaces the one built with
    the page (that one is closed); later charts update the new one in place.
    A chart equal to the current one changes nothing. The area itself stays
    the same widget, so it keeps its place in the layout. See the module
    docstring for why.

    Parameters
    ----------
    chart : altair.TopLevelSpec
        The first chart.
    **kwargs
        Display options passed to :class:`ipywidgets.Box`.

    Attributes
    ----------
    widget : altair.JupyterChart
        The JupyterChart currently shown.
    replaced : bool
        Whether :attr:`widget` is the JupyterChart built after the page,
        which is updated in place.

    Examples
    --------
    >>> area = LiveChart(alt.Chart().mark_point().properties(title="a"))
    >>> first = area.widget
    >>> area.chart = alt.Chart().mark_point().properties(title="b")
    >>> area.spec["title"], area.widget is first
    ('b', False)
    >>> second = area.widget
    >>> area.chart = alt.Chart().mark_point().properties(title="c")
    >>> area.spec["title"], area.widget is second
    ('c', True)
    """

    def __init__(self, chart: alt.TopLevelSpec, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.add_class("journeylib-live")  # the browser tests look for chart texts inside live charts only
        self.widget = live_chart(chart)
        self.replaced = False
        self.children = [self.widget]

    @property
    def chart(self) -> alt.TopLevelSpec:
        """The chart shown; assign a chart to show it."""
        return cast("alt.TopLevelSpec", self.widget.chart)  # never None: every JupyterChart here gets a chart

    @chart.setter
    def chart(self, chart: alt.TopLevelSpec) -> None:
        if chart.to_dict() == self.widget.spec:  # same picture: nothing to send
            return
        if self.replaced:
            self.widget.chart = chart
            return
        old = self.widget
        self.widget = live_chart(chart)
        self.replaced = True
        self.children = [self.widget]
        old.close()

    @property
    def spec(self) -> dict[str, Any] | None:
        """The Vega-Lite spec of the chart shown (``JupyterChart.spec``)."""
        spec: dict[str, Any] | None = self.widget.spec
        return spec

    def close(self) -> None:
        """Close the area and its JupyterChart."""
        self.widget.close()
        super().close()


class LiveComputationWidget(widgets.VBox):
    """Base of the widgets that wrap one computation and show its chart live.

    Subclasses set :attr:`compute` (the ``_data`` function), declare its
    picker-driven parameters as traits, and implement :meth:`_draw` and
    :meth:`_title`. Parameters of the computation that have no trait are kept
    in :attr:`fixed`. On any observed trait change the data are recomputed
    and the new chart is shown in ``live``
    (:class:`LiveChart`); a failure shows in
    :attr:`errors` (and :attr:`error`) with a placeholder chart, never raised; the
    statistical caveats of the computation
    (:class:`~journeylib.exceptions.StatisticalWarning`) are listed in
    :attr:`notes` instead of the cell's output.

    Built with :meth:`from_journey`, the widget computes on the analysis
    context (:class:`ContextRunner`): its scope and its cache.
    """

    compute: ClassVar[Any]
    DATA_PARAMETERS: ClassVar[tuple[str, ...]] = ()
    #: Whether the computations on a context go through its persistent result store (heavy ones do).
    PERSIST: ClassVar[bool] = False
    error = traitlets.Unicode("", help="Message of the last failure; empty when the chart is current.")

    @classmethod
    def from_journey(cls, journey: Journey, **options: Any) -> Self:
        """Build the widget on an analysis context: its store, definition, scope and cache.

        The scope's filters become the widget's scope parameters (the
        pickers' first values and the fixed filters); the computations run
        on the context (:meth:`journeylib.context.Journey.run`), so the first
        view reuses what the notebook computed on the same context, and a
        picker that changes a filter computes on ``journey.with_scope(...)``,
        which shares the cache.

        Parameters
        ----------
        journey : Journey
            The analysis context (``journeylib.notebook.open_journey``).
        **options
            The widget's other parameters (``outcome``, ``min_support``,
            ``property_keys``, ...) and display options.

        Returns
        -------
        LiveComputationWidget
            The widget.

        Raises
        ------
        TypeError
            If *journey* is not a Journey, or an option is a scope filter,
            ``definition``, ``scope`` or ``cache`` (those come from the
            context: pass ``journey.with_scope(...)`` instead).
        """
        function = f"{cls.__name__}.from_journey"
        given = journey_options(function, journey, options, forbidden=(*SCOPE_FILTERS, "definition", "scope", "cache", "journey"))
        filters = scope_filters(journey.scope, cls.DATA_PARAMETERS)
        return cls(journey.store, definition=journey.definition, journey=journey, **filters, **given)

    def _setup(
        self,
        store: Store,
        fixed: dict[str, Any],
        controls: list[widgets.Widget],
        extra: list[widgets.Widget],
        journey: Journey | None = None,
    ) -> None:
        self.store = store
        self.fixed = fixed
        self.journey = journey
        self._runner = ContextRunner(store, journey, self.data_parameters() if journey is not None else None, persist=self.PERSIST)
        self.data: pd.DataFrame | None = None
        self.errors = widgets.HTML("")
        self.notes = widgets.HTML("")
        self.live: LiveChart | None = None
        self.live = LiveChart(self._chart())
        self.children = [widgets.HBox(controls), self.errors, self.notes, self.live, *extra]

    def data_parameters(self) -> dict[str, Any]:
        """Return the keyword arguments passed to the wrapped computation.

        Returns
        -------
        dict
            ``{name: value}`` for every name in :attr:`DATA_PARAMETERS`:
            traits where the widget has one (``""`` passed as None), the
            constructor's values otherwise.
        """
        out: dict[str, Any] = {}
        for name in self.DATA_PARAMETERS:
            if self.has_trait(name):
                value = getattr(self, name)
                out[name] = None if value == "" else value
            else:
                out[name] = self.fixed.get(name, inspect.signature(self.compute).parameters[name].default)
        return out

    def _draw(self, data: pd.DataFrame) -> alt.TopLevelSpec:
        raise NotImplementedError

    def _title(self) -> str:
        raise NotImplementedError

    def _after(self, data: pd.DataFrame) -> None:
        """Update widgets other than the chart after a successful computation."""

    def _chart(self) -> alt.TopLevelSpec:
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", StatisticalWarning)
                data = self._runner.run(self.compute, self.data_parameters())
                chart = self._draw(data)
            self._show_notes(caught)
        except Exception as exc:  # a widget callback must show its failure, not raise it
            self.notes.value = ""
            self.error = f"{type(exc).__name__}: {exc}"
            self.errors.value = error_html(self.error)
            return placeholder_chart(title=self._title(), message="No result for this selection; see the message above.")
        self.data = data
        self.error = ""
        self.errors.value = ""
        self._after(data)
        return chart

    def _show_notes(self, caught: list[warnings.WarningMessage]) -> None:
        notes = []
        for w in caught:
            if issubclass(w.category, StatisticalWarning):
                notes.append(str(w.message))
            else:  # not ours to summarise: pass it on
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        items = "".join(f"<li>{html.escape(n)}</li>" for n in dict.fromkeys(notes))
        self.notes.value = f'<ul class="journeylib-notes" style="{NOTES_STYLE}">{items}</ul>' if items else ""

    def _refresh(self) -> None:
        if self.live is None:  # still being constructed
            return
        self.live.chart = self._chart()
