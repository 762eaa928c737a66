"""JourneyMapWidget: the funnel and the milestone flow, recomputed for a segment, plan, signup period and stage."""

from __future__ import annotations

import datetime as dt
from typing import Any, Self

import altair as alt
import ipywidgets as widgets
import pandas as pd
import traitlets

from journeylib.charts import journey as charts_journey
from journeylib.charts.common import placeholder_chart
from journeylib.config.journey import JourneyDefinition
from journeylib.context import Journey
from journeylib.customers import accounts
from journeylib.journey import scope_choices, stages, transitions
from journeylib.scope import ALL
from journeylib.store import Store
from journeylib.widgets.accounts import AccountList
from journeylib.widgets.base import SCOPE_FILTERS, ContextRunner, LiveChart, error_html, journey_options, scope_filters

__all__ = ["LIST_CHOICES", "JourneyMapWidget"]

#: What "list these customers" can list for a stage: the funnel's counts, and the customers who entered it
#: (the customers of a friction row, with how their time in the stage ended).
LIST_CHOICES = {
    "reached": "reached",
    "dropped": "dropped (left without reaching it)",
    "censored": "still on their way (censored)",
    "eligible": "eligible (waiting for it)",
    "entered": "entered it: time in stage (friction row)",
}
_LIST_COLUMNS = ["name", "segment", "plan", "current_stage", "signup_at", "status", "stage_status", "days_in_stage"]


class JourneyMapWidget(widgets.VBox):
    """The journey funnel and flow as live charts, with segment, plan, signup period and stage pickers.

    Wraps :func:`journeylib.journey.stages.funnel_data` and
    :func:`journeylib.journey.transitions.flow_data`: the scope parameters they share
    (``as_of``, ``segment``, ``plan``, ``signup_from``, ``signup_to``,
    ``sample_n``) are traits of the widget with the same names and meaning,
    and ``stage`` is the flow's ``from_stage`` (``"all"`` = from each
    customer's first milestone). Changing any of them (the pickers change
    ``segment``, ``plan``, ``signup_from``/``signup_to`` and ``stage``)
    recomputes both results and shows the new charts in the two chart
    areas (:class:`~journeylib.widgets.base.LiveChart`: each new chart gets a
    new ``JupyterChart``, see that module for why). A failure (e.g. a filter that leaves
    no customer) is shown in the red ``errors`` area above the charts, with
    placeholder charts, and never raised.

    In a notebook, build it with :meth:`from_journey`: store, definition and
    scope come from the context, so the first charts reuse the milestone
    frame of the notebook's ``journey.funnel_data()`` and
    ``journey.flow_data()``, and a pick computes on
    ``journey.with_scope(...)``, which shares the cache.

    Parameters
    ----------
    store : Store
        The journey store to read.
    definition : JourneyDefinition
        The journey definition (stages, conventions).
    as_of : str, datetime.date or None, default None
        Censoring date; ``None`` or ``""`` for the latest event.
    segment, plan : str, default "all"
        ``"all"`` or a value of ``customers.segment`` / ``customers.plan``.
    signup_from, signup_to : str, default ""
        Signup period ``[from, to)`` as ISO dates; empty = open.
    sample_n : int, default 0
        0 for every customer; otherwise a seeded sample of that many.
    stage : str, default "all"
        Start the flow at this stage.
    n_steps : int, default 5
        Steps of the flow (display).
    journey : Journey, optional
        The analysis context to compute on (set by :meth:`from_journey`;
        not a parameter of the computations).
    **kwargs
        Display options passed to :class:`ipywidgets.VBox`.

    Attributes
    ----------
    segment_picker, plan_picker, period_picker, stage_picker : ipywidgets.Dropdown
        The pickers; the period options are ``"all"`` and the signup quarters.
    errors : ipywidgets.HTML
        The visible error area; empty when the last computation succeeded.
    funnel_live, flow_live : LiveChart
        The chart areas (CSS classes ``journeylib-funnel`` and
        ``journeylib-flow``); ``.spec`` is the chart shown. The widget has
        the class ``journeylib-journey-map``.
    list_stage_picker, list_what_picker : ipywidgets.Dropdown
        Which count of the funnel to list: a stage, and ``reached``,
        ``dropped``, ``censored``, ``eligible`` (the funnel's columns, their
        counts in the labels) or ``entered`` (the customers who entered the
        stage, as a friction row counts them).
    accounts : AccountList
        "List these customers": the customers behind the chosen count for
        the current segment, plan and signup period
        (:func:`journeylib.customers.accounts.funnel_accounts_data` /
        :func:`~journeylib.customers.accounts.friction_accounts_data`), with a
        CSV download.
    funnel, flow : pandas.DataFrame or None
        The last successful results.
    journey : Journey or None
        The analysis context the widget computes on.
    """

    #: The computations the widget wraps, and the charts that draw their results.
    compute_funnel = staticmethod(stages.funnel_data)
    compute_flow = staticmethod(transitions.flow_data)
    #: The scope parameters shared by both computations, plus ``stage`` (the flow's ``from_stage``).
    DATA_PARAMETERS: tuple[str, ...] = ("as_of", "segment", "plan", "signup_from", "signup_to", "sample_n", "stage")

    as_of = traitlets.Unicode("", help="Censoring date (ISO); empty for the latest event.")
    segment = traitlets.Unicode(ALL, help="'all' or a customers.segment value.")
    plan = traitlets.Unicode(ALL, help="'all' or a customers.plan value.")
    signup_from = traitlets.Unicode("", help="Start of the signup period (ISO date, inclusive); empty = open.")
    signup_to = traitlets.Unicode("", help="End of the signup period (ISO date, exclusive); empty = open.")
    sample_n = traitlets.Int(0, help="0 for every customer; >0 for a seeded sample of that many.")
    stage = traitlets.Unicode(ALL, help="Stage the flow starts at; 'all' = each customer's first milestone.")
    error = traitlets.Unicode("", help="Message of the last failure; empty when the charts are current.")

    def __init__(
        self,
        store: Store,
        definition: JourneyDefinition,
        *,
        as_of: str | dt.date | None = None,
        segment: str | None = ALL,
        plan: str | None = ALL,
        signup_from: str | dt.date | None = "",
        signup_to: str | dt.date | None = "",
        sample_n: int = 0,
        stage: str | None = ALL,
        n_steps: int = 5,
        journey: Journey | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.store = store
        self.definition = definition
        self.journey = journey
        self.n_steps = n_steps
        self.funnel: pd.DataFrame | None = None
        self.flow: pd.DataFrame | None = None
        self.funnel_live: LiveChart | None = None
        self.flow_live: LiveChart | None = None
        self._batch = False
        choices = scope_choices.scope_choices_data(store)
        self._periods = {
            f"{r.value} ({r.customers})": (str(r.signup_from), str(r.signup_to))
            for r in choices[choices["field"] == "signup_period"].itertuples()
        }
        self.segment_picker = widgets.Dropdown(options=[ALL, *choices.loc[choices["field"] == "segment", "value"]], value=ALL, description="Segment:")
        self.plan_picker = widgets.Dropdown(options=[ALL, *choices.loc[choices["field"] == "plan", "value"]], value=ALL, description="Plan:")
        self.period_picker = widgets.Dropdown(options=[ALL, *self._periods], value=ALL, description="Signups:")
        self.stage_picker = widgets.Dropdown(options=[ALL, *definition.stage_names], value=ALL, description="Flow from:")
        self.errors = widgets.HTML("")
        with self.hold_trait_notifications():
            self.as_of = _text(as_of)
            self.segment = segment or ALL
            self.plan = plan or ALL
            self.signup_from = _text(signup_from)
            self.signup_to = _text(signup_to)
            self.sample_n = int(sample_n)
            self.stage = stage or ALL
        self._sync_pickers()
        self.segment_picker.observe(self._on_pick("segment"), names="value")
        self.plan_picker.observe(self._on_pick("plan"), names="value")
        self.stage_picker.observe(self._on_pick("stage"), names="value")
        self.period_picker.observe(self._on_period, names="value")
        self._runner = ContextRunner(store, journey, self.data_parameters() if journey is not None else None)
        funnel_chart, flow_chart = self._charts()
        self.funnel_live = LiveChart(funnel_chart)
        self.funnel_live.add_class("journeylib-funnel")
        self.flow_live = LiveChart(flow_chart)
        self.flow_live.add_class("journeylib-flow")
        self.add_class("journeylib-journey-map")
        pickers = widgets.HBox([self.segment_picker, self.plan_picker, self.period_picker, self.stage_picker], layout=widgets.Layout(flex_flow="row wrap"))
        self.list_stage_picker = widgets.Dropdown(options=list(definition.stage_names), description="Stage:")
        self.list_what_picker = widgets.Dropdown(options=[(v, k) for k, v in LIST_CHOICES.items()], value="dropped", description="Customers:")
        self.accounts = AccountList(self._list_accounts, self._list_title, columns=_LIST_COLUMNS)
        if self.funnel is not None:  # start on the stage that loses the most customers: a list worth opening
            overall = self.funnel[self.funnel["group"] == "all"]
            if len(overall) and int(overall["dropped"].max()) > 0:
                self.list_stage_picker.value = str(overall.loc[overall["dropped"].idxmax(), "stage"])
        self.list_stage_picker.observe(self._on_list_choice, names="value")
        self.list_what_picker.observe(self._on_list_choice, names="value")
        self._label_list_choices()
        lists = widgets.VBox([widgets.HTML("<b>List the customers behind a count</b>"),
                              widgets.HBox([self.list_stage_picker, self.list_what_picker, self.accounts.button], layout=widgets.Layout(flex_flow="row wrap")),
                              self.accounts.errors, self.accounts.output])
        lists.add_class("journeylib-account-lists")
        self.children = [pickers, self.errors, self.funnel_live, self.flow_live, lists]

    @classmethod
    def from_journey(cls, journey: Journey, **options: Any) -> Self:
        """Build the widget on an analysis context: its store, definition, scope and cache.

        The scope's filters become the widget's traits (the pickers' first
        values); both computations run on the context
        (:meth:`journeylib.context.Journey.run`), so the first charts come
        from the milestone frame the notebook computed, and a pick computes
        on ``journey.with_scope(...)``, which shares the cache.

        Parameters
        ----------
        journey : Journey
            The analysis context (``journeylib.notebook.open_journey``).
        **options
            ``stage``, ``n_steps`` and display options passed to
            :class:`ipywidgets.VBox`.

        Returns
        -------
        JourneyMapWidget
            The widget.

        Raises
        ------
        TypeError
            If *journey* is not a Journey or an option is a scope filter or
            ``definition`` (pass ``journey.with_scope(...)`` instead).
        ValueError
            If the context has no journey definition.
        """
        given = journey_options(f"{cls.__name__}.from_journey", journey, options, forbidden=(*SCOPE_FILTERS, "definition", "journey"))
        filters = scope_filters(journey.scope, cls.DATA_PARAMETERS)
        return cls(journey.store, journey.definition, journey=journey, **filters, **given)

    def data_parameters(self) -> dict[str, Any]:
        """Return the scope keyword arguments passed to both computations.

        Returns
        -------
        dict
            ``as_of``, ``segment``, ``plan``, ``signup_from``, ``signup_to``
            (``""`` passed as ``None``) and ``sample_n``; ``stage`` is passed
            to ``flow_data`` as ``from_stage``.
        """
        values: dict[str, Any] = {name: getattr(self, name) for name in self.DATA_PARAMETERS if name != "stage"}
        for name in ("as_of", "signup_from", "signup_to"):
            values[name] = values[name] or None
        return values

    # -- internals ----------------------------------------------------------------------------------
    def _on_pick(self, name: str) -> Any:
        def handler(change: dict[str, Any]) -> None:
            setattr(self, name, change["new"])

        return handler

    def _on_period(self, change: dict[str, Any]) -> None:
        lo, hi = self._periods.get(change["new"], ("", ""))
        # both bounds change together: recompute once, not once per bound
        self._batch = True
        try:
            self.signup_from, self.signup_to = lo, hi
        finally:
            self._batch = False
        self._recompute({})

    def _sync_pickers(self) -> None:
        # Values from a URL that the store does not have stay out of the dropdowns;
        # the computation then reports them in the error area.
        for picker, value in ((self.segment_picker, self.segment), (self.plan_picker, self.plan), (self.stage_picker, self.stage)):
            if value in picker.options and picker.value != value:
                picker.value = value
        label = next((k for k, v in self._periods.items() if v == (self.signup_from, self.signup_to)), ALL if not (self.signup_from or self.signup_to) else None)
        if label is not None and self.period_picker.value != label:
            self.period_picker.value = label

    def _scope_words(self) -> str:
        parts = [f"segment {self.segment}" if self.segment != ALL else "", f"plan {self.plan}" if self.plan != ALL else "",
                 f"signups {self.signup_from or '…'} to {self.signup_to or '…'}" if (self.signup_from or self.signup_to) else ""]
        return ", ".join(p for p in parts if p) or "all customers"

    def _list_title(self) -> str:
        what = self.list_what_picker.value
        stage = self.list_stage_picker.value
        verb = {"reached": "who reached", "dropped": "who dropped out before", "censored": "still on their way to",
                "eligible": "waiting for", "entered": "who entered"}[what]
        return f"customers {verb} {stage} ({self._scope_words()})"

    def _list_accounts(self) -> pd.DataFrame:
        params = self.data_parameters()
        stage = self.list_stage_picker.value
        if self.list_what_picker.value == "entered":
            return self._runner.run(accounts.friction_accounts_data, {"definition": self.definition, "stage": stage, **params})
        return self._runner.run(accounts.funnel_accounts_data, {"definition": self.definition, "stage": stage,
                                                                  "status": self.list_what_picker.value, **params})

    def _label_list_choices(self) -> None:
        """Put the funnel's counts for the chosen stage into the list choices' labels."""
        counts: dict[str, int] = {}
        if self.funnel is not None:
            row = self.funnel[(self.funnel["group"] == "all") & (self.funnel["stage"].astype(str) == self.list_stage_picker.value)]
            if len(row):
                counts = {k: int(row.iloc[0][k]) for k in ("reached", "dropped", "censored", "eligible")}
                counts["entered"] = counts["reached"]
        value = self.list_what_picker.value
        options = [(f"{label} ({counts[k]:,})" if k in counts else label, k) for k, label in LIST_CHOICES.items()]
        if list(self.list_what_picker.options) != options:
            self.list_what_picker.options = options
            self.list_what_picker.value = value

    def _on_list_choice(self, change: dict[str, Any]) -> None:
        if change.get("owner") is self.list_stage_picker:
            self._label_list_choices()
        self.accounts.clear()

    def _title_segment(self) -> str:
        """Return the scope for the chart titles: segment, plan and signup period when they filter; empty for every customer."""
        parts = [self.segment if self.segment != ALL else "", f"plan {self.plan}" if self.plan != ALL else "",
                 f"signups {self.signup_from or '…'} to {self.signup_to or '…'}" if (self.signup_from or self.signup_to) else ""]
        words = ", ".join(p for p in parts if p)
        return f" — {words}" if words else ""

    def _charts(self) -> tuple[alt.TopLevelSpec, alt.TopLevelSpec]:
        """Recompute both results and return their charts, or placeholders and the error shown."""
        params = self.data_parameters()
        try:
            funnel = self._runner.run(self.compute_funnel, {"definition": self.definition, **params})
            flow = self._runner.run(
                self.compute_flow,
                {"definition": self.definition, "from_stage": None if self.stage == ALL else self.stage, "n_steps": self.n_steps, **params},
            )
            funnel_chart = charts_journey.funnel_chart(funnel, title="Journey funnel" + self._title_segment())
            flow_chart = charts_journey.flow_chart(flow, title="Customer flow through the milestones" + self._title_segment())
        except Exception as exc:  # a widget callback must show its failure, not raise it
            self.error = f"{type(exc).__name__}: {exc}"
            self.errors.value = error_html(self.error)
            message = "No data for this selection; see the message above."
            return (
                placeholder_chart(title="Journey funnel" + self._title_segment(), message=message),
                placeholder_chart(title="Customer flow through the milestones" + self._title_segment(), message=message),
            )
        self.funnel, self.flow = funnel, flow
        self.error = ""
        self.errors.value = ""
        return funnel_chart, flow_chart

    @traitlets.observe("as_of", "segment", "plan", "signup_from", "signup_to", "sample_n", "stage")
    def _recompute(self, change: dict[str, Any]) -> None:
        if self.funnel_live is None or self.flow_live is None or self._batch:  # constructing, or a batch of changes
            return
        self._sync_pickers()
        funnel_chart, flow_chart = self._charts()
        self.funnel_live.chart = funnel_chart
        self.flow_live.chart = flow_chart
        self._label_list_choices()
        self.accounts.clear()


def _text(value: str | dt.date | None) -> str:
    if value is None:
        return ""
    return value.isoformat() if isinstance(value, dt.date) else str(value)
