"""DriversWidget: the behaviours associated with an outcome, recomputed from pickers."""

from __future__ import annotations

import html
import inspect
from typing import Any, ClassVar

import altair as alt
import ipywidgets as widgets
import pandas as pd
import traitlets

from journeylib import health
from journeylib.charts import customers as charts_drivers
from journeylib.charts.common import placeholder_chart
from journeylib.config.journey import JourneyDefinition
from journeylib.context import Journey
from journeylib.customers import accounts, driver_views, drivers
from journeylib.store import Store
from journeylib.widgets.accounts import AccountList
from journeylib.widgets.base import (
    LABEL_STYLE,
    SUPPORT_CHOICES,
    WINDOW_CHOICES,
    LiveComputationWidget,
    picker_options,
)

__all__ = ["DriversWidget"]

_LIST_COLUMNS = ["name", "segment", "plan", "current_stage", "side", "feature_value", "outcome", "outcome_at"]
_SIDES = (("both groups", "both"), ("with the behaviour (exposed)", "exposed"), ("without it (reference)", "reference"))

class DriversWidget(LiveComputationWidget):
    """Forest plot of the behaviours most associated with an outcome, with pickers.

    Wraps :func:`journeylib.customers.drivers.drivers_data`; its data parameters are the
    function's parameters after ``store``. ``outcome``, ``window_days``,
    ``segment``, ``min_support``, ``as_of``, ``horizon_days`` and ``sample_n``
    are traits (the Outcome, Window, Segment and Min. support pickers set the
    first four); the others are fixed at construction. Each change
    recomputes the table, shows the new chart in ``live`` and rewrites the
    plain-English lines below it; failures go to the red ``errors`` area.

    In a notebook, build it with :meth:`from_journey`
    (``DriversWidget.from_journey(journey, outcome="churn", property_keys=...)``):
    store, definition and scope come from the context, and the feature
    tables the notebook built for ``journey.drivers_data(...)`` are reused.

    Parameters
    ----------
    store : Store
        The journey store.
    definition : JourneyDefinition
        Outcomes and stages.
    outcome : str, default "churn"
        An outcome of the definition.
    window_days : int, default 0
        Behaviour window; 0 for one chosen from the data.
    segment : str, default "all"
        ``"all"`` or a segment.
    min_support : int, default 30
        Fewest customers per side.
    as_of : str, default ""
        Censoring date; empty for the latest event.
    horizon_days : float, default 0
        0 for the outcome's default horizon.
    sample_n : int, default 0
        Seeded sample size (0 = all).
    top_n : int, default 12
        Behaviours drawn.
    journey : Journey, optional
        The analysis context to compute on (set by :meth:`from_journey`;
        not a parameter of ``drivers_data``).
    **kwargs
        Other parameters of ``drivers_data`` (``property_keys``,
        ``thresholds`` ...) and display options of ``ipywidgets.VBox``.

    Attributes
    ----------
    outcome_picker, window_picker, segment_picker, support_picker : ipywidgets.Dropdown
        The pickers.
    errors : ipywidgets.HTML
        Visible error area.
    notes : ipywidgets.HTML
        Statistical caveats of the last computation (exclusions, thin data).
    live : LiveChart
        The forest plot; ``live.chart`` is replaced on change.
    lines : ipywidgets.HTML
        The plain-English lines of the significant behaviours.
    driver_picker, side_picker : ipywidgets.Dropdown
        Which drawn behaviour's split to list (labels give its group sizes,
        "161 vs 230 customers") and which side.
    accounts : AccountList
        "List these customers": the customers on each side of the chosen
        split with their outcome
        (:func:`journeylib.customers.accounts.driver_accounts_data`), with a
        CSV download.
    data : pandas.DataFrame or None
        The last result of ``drivers_data``.
    journey : Journey or None
        The analysis context the widget computes on.
    """

    compute = staticmethod(drivers.drivers_data)
    DATA_PARAMETERS: ClassVar[tuple[str, ...]] = tuple(inspect.signature(drivers.drivers_data).parameters)[1:]

    outcome = traitlets.Unicode("churn", help="Outcome name of the journey definition.")
    window_days = traitlets.Int(0, help="Behaviour window in days after signup; 0 for one chosen from the data.")
    segment = traitlets.Unicode(health.ALL_SEGMENTS, help="'all' or a customers.segment value.")
    min_support = traitlets.Int(30, help="Fewest customers on each side of a split.")
    as_of = traitlets.Unicode("", help="Censoring date (ISO); empty for the latest event.")
    horizon_days = traitlets.Float(0.0, help="Outcome follow-up in days; 0 for the outcome's default.")
    sample_n = traitlets.Int(0, help="0 for every customer; >0 for a seeded sample.")

    def __init__(
        self,
        store: Store,
        *,
        definition: JourneyDefinition,
        outcome: str = "churn",
        window_days: int = 0,
        segment: str | None = health.ALL_SEGMENTS,
        min_support: int = 30,
        as_of: str | None = "",
        horizon_days: float = 0.0,
        sample_n: int = 0,
        top_n: int = 12,
        journey: Journey | None = None,
        **kwargs: Any,
    ) -> None:
        fixed = {k: kwargs.pop(k) for k in list(kwargs) if k in self.DATA_PARAMETERS}
        fixed["definition"] = definition
        super().__init__(**kwargs)
        self.live = None
        self.top_n = top_n
        with self.hold_trait_notifications():
            self.outcome = outcome
            self.window_days = int(window_days)
            self.segment = segment or health.ALL_SEGMENTS
            self.min_support = int(min_support)
            self.as_of = "" if as_of is None else str(as_of)
            self.horizon_days = float(horizon_days or 0)
            self.sample_n = int(sample_n)
        self.outcome_picker = widgets.Dropdown(options=list(definition.outcomes), value=None, description="Outcome:", style=LABEL_STYLE)
        self.window_picker = widgets.Dropdown(options=picker_options(WINDOW_CHOICES, self.window_days), value=self.window_days,
                                              description="Window (days):", style=LABEL_STYLE)
        seg_options = [health.ALL_SEGMENTS, *health.available_segments(store)]
        self.segment_picker = widgets.Dropdown(options=seg_options, value=None, description="Segment:", style=LABEL_STYLE)
        self.support_picker = widgets.Dropdown(options=picker_options(SUPPORT_CHOICES, self.min_support), value=self.min_support,
                                               description="Min. support:", style=LABEL_STYLE)
        self._sync_pickers()
        self.outcome_picker.observe(lambda c: setattr(self, "outcome", c["new"]), names="value")
        self.window_picker.observe(lambda c: setattr(self, "window_days", int(c["new"])), names="value")
        self.segment_picker.observe(lambda c: setattr(self, "segment", c["new"]), names="value")
        self.support_picker.observe(lambda c: setattr(self, "min_support", int(c["new"])), names="value")
        self.lines = widgets.HTML("")
        self.driver_picker = widgets.Dropdown(options=[], description="Behaviour:", style=LABEL_STYLE, layout=widgets.Layout(width="32em"))
        self.side_picker = widgets.Dropdown(options=list(_SIDES), value="both", description="Customers:", style=LABEL_STYLE)
        self.accounts = AccountList(self._list_accounts, self._list_title, columns=_LIST_COLUMNS)
        self._listed = pd.DataFrame()
        self.driver_picker.observe(lambda c: self.accounts.clear(), names="value")
        self.side_picker.observe(lambda c: self.accounts.clear(), names="value")
        lists = widgets.VBox([widgets.HTML("<b>List the customers behind a behaviour's counts</b>"),
                              widgets.HBox([self.driver_picker, self.side_picker, self.accounts.button], layout=widgets.Layout(flex_flow="row wrap")),
                              self.accounts.errors, self.accounts.output])
        lists.add_class("journeylib-account-lists")
        self._setup(store, fixed, [self.outcome_picker, self.window_picker, self.segment_picker, self.support_picker],
                    [self.lines, lists], journey=journey)

    def _sync_pickers(self) -> None:
        # A value the pickers do not offer (e.g. from a URL) stays out of them; the computation reports it.
        for picker, value in ((self.outcome_picker, self.outcome), (self.segment_picker, self.segment)):
            if value in picker.options and picker.value != value:
                picker.value = value

    def _title(self) -> str:
        where = "" if self.segment in ("", health.ALL_SEGMENTS) else f" — {self.segment}"
        days = f"the first {self.window_days} days" if self.window_days else "the first days (window chosen from the data)"
        return f"{self.outcome.capitalize()}: behaviours in {days}{where}"

    def _draw(self, data: pd.DataFrame) -> alt.TopLevelSpec:
        top = driver_views.top_drivers_data(data, top_n=self.top_n)
        if top.empty:
            return placeholder_chart(
                title=self._title(), message=f"No behaviour has {self.min_support}+ customers on both sides; lower the minimum support."
            )
        return charts_drivers.drivers_forest_chart(top, title=self._title())

    def _after(self, data: pd.DataFrame) -> None:
        lines = driver_views.driver_lines_data(data, top_n=5)["line"]
        self.lines.value = "<ul>" + "".join(f"<li>{html.escape(str(x))}</li>" for x in lines) + "</ul>"
        top = driver_views.top_drivers_data(data, top_n=self.top_n)
        listable = top[top["timing"].astype(str) == "since_signup"] if "timing" in top.columns else top.iloc[0:0]
        options = [
            (f"{r['exposure']} vs {r['reference']} ({int(r['n_exposed']):,} vs {int(r['n_reference']):,} customers)", str(r["candidate"]))
            for r in listable.to_dict("records")
        ]
        self._listed = listable.set_index(listable["candidate"].astype(str))
        self.driver_picker.options = options
        self.driver_picker.value = options[0][1] if options else None
        self.accounts.button.disabled = not options
        self.accounts.clear()

    def _list_title(self) -> str:
        where = "" if self.segment in ("", health.ALL_SEGMENTS) else f", segment {self.segment}"
        side = {"both": "on both sides of", "exposed": "in the exposed group of", "reference": "in the reference group of"}[self.side_picker.value]
        return f"customers {side} the split {self.driver_picker.value} ({self.outcome}{where})"

    def _list_accounts(self) -> pd.DataFrame:
        if self.driver_picker.value is None:
            msg = "no behaviour to list: none is drawn for this selection"
            raise ValueError(msg)
        row = self._listed.loc[self.driver_picker.value]
        params = self.data_parameters()
        wanted = inspect.signature(accounts.driver_accounts_data).parameters
        given = {k: v for k, v in params.items() if k in wanted and k not in ("horizon_days",)}
        given.update(driver=row, side=self.side_picker.value)
        return self._runner.run(accounts.driver_accounts_data, given)

    @traitlets.observe("outcome", "window_days", "segment", "min_support", "as_of", "horizon_days", "sample_n")
    def _recompute(self, change: dict[str, Any]) -> None:
        if self.live is None:
            return
        self._sync_pickers()
        self._refresh()
