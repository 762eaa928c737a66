"""Customer360Widget: one customer's timeline, stage against peers, risk and sentiment, searchable by name."""

from __future__ import annotations

import datetime as dt
import html
from typing import Any, Self

import altair as alt
import ipywidgets as widgets
import pandas as pd
import traitlets

from journeylib.charts.common import placeholder_chart
from journeylib.charts.customer360 import customer_activity_chart
from journeylib.config.journey import JourneyDefinition
from journeylib.context import Journey
from journeylib.customers import timeline
from journeylib.scope import ALL
from journeylib.store import Store
from journeylib.widgets.accounts import csv_link_html
from journeylib.widgets.base import SCOPE_FILTERS, ContextRunner, LiveChart, error_html, journey_options, scope_filters

__all__ = ["Customer360Widget"]

#: Timeline rows shown on the page, newest first (the CSV has every row).
SHOWN_EVENTS = 40
_TIMELINE_SHOWN = ["timestamp", "kind", "event", "stage", "detail", "sentiment", "emotion"]


def _days(x: Any) -> str:
    return "–" if pd.isna(x) else f"{float(x):,.0f} days" if float(x) >= 10 else f"{float(x):.1f} days"


def _date(x: Any) -> str:
    return "–" if pd.isna(x) else f"{pd.Timestamp(x):%Y-%m-%d}"


def profile_html(profile: pd.Series) -> str:
    """Return the header of the customer 360 page for one row of :func:`journeylib.customers.timeline.customer_profile_data`.

    Parameters
    ----------
    profile : pandas.Series
        The profile row.

    Returns
    -------
    str
        HTML (every value escaped): the name, segment, plan and signup; the
        stage with days in it against the peers' median (and the peer group
        and its size); the risk with its band and reasons, or why there is
        none; the tickets and their mean sentiment.
    """
    e = html.escape
    p = profile
    progress = {"on_track": "on track", "behind": "behind peers (beyond their 75th percentile)",
                "stuck": "stuck (beyond the peers' 90th percentile)", "no_peers": "no peers to compare with"}.get(str(p["progress"]), str(p["progress"]))
    if p["stage"] == "(no stage entered)":
        stage = "No stage entered yet."
    else:
        peers = (f"peer median {_days(p['peer_median_days'])} ({int(p['peers']):,} customers of "
                 f"{'every segment' if p['peer_group'] == 'all' else 'segment ' + str(p['peer_group'])} who moved on)")
        stage = f"<b>{e(str(p['stage']))}</b> since {_date(p['stage_entered_at'])}: {_days(p['days_in_stage'])} in the stage vs {e(peers)}; {e(progress)}."
    if pd.isna(p["risk"]):
        risk = f"Risk: not scored — {e(str(p['risk_note']))}."
    else:
        reasons = f" Reasons: {e(str(p['risk_reasons']))}." if p["risk_reasons"] else ""
        risk = f"Risk of churn: <b>{float(p['risk']):.0%}</b> ({e(str(p['risk_band']))}).{reasons}"
    if int(p["tickets"]) == 0:
        voice = "No support tickets."
    else:
        mean = "" if pd.isna(p["mean_sentiment"]) else f", mean sentiment {float(p['mean_sentiment']):+.2f} (−1 to +1)"
        voice = (f"{int(p['tickets']):,} support ticket{'s' if int(p['tickets']) != 1 else ''}{mean}, "
                 f"{int(p['negative_tickets']):,} negative; latest emotion: {e(str(p['last_ticket_emotion']) or '–')}.")
    outcome = ""
    if pd.notna(p["churned_at"]):
        outcome = f" Churned {_date(p['churned_at'])}."
    elif pd.notna(p["converted_at"]):
        outcome = f" Paying since {_date(p['converted_at'])}."
    return (
        f'<div class="journeylib-customer-header"><h3 class="journeylib-customer-name">{e(str(p["name"]))}</h3>'
        f"<p>{e(str(p['segment']))} · plan {e(str(p['plan']))} · signed up {_date(p['signup_at'])}.{e(outcome)} "
        f"Data as of {_date(p['as_of'])}; {int(p['events']):,} events, last {_date(p['last_activity_at'])}.</p>"
        f"<p>{stage}</p><p>{risk}</p><p>{voice}</p></div>"
    )


def _timeline_html(rows: pd.DataFrame, max_rows: int) -> str:
    shown = rows.sort_values("timestamp", ascending=False, kind="mergesort").head(max_rows)[_TIMELINE_SHOWN].copy()
    shown["timestamp"] = shown["timestamp"].dt.strftime("%Y-%m-%d %H:%M")
    shown["sentiment"] = shown["sentiment"].map(lambda x: "" if pd.isna(x) else f"{x:+.2f}")
    table = shown.to_html(index=False, escape=True, border=0, classes="journeylib-timeline-table", na_rep="")
    return f'<div style="max-height:28em;overflow:auto">{table}</div>'


class Customer360Widget(widgets.VBox):
    """One customer seen whole: header, weekly activity by source kind, and the timeline, with a name search.

    Wraps :func:`journeylib.customers.timeline.customer_timeline_data` (the
    chart and the table) and :func:`~journeylib.customers.timeline.customer_profile_data`
    (the header). ``customer_id`` and the scope parameters (``as_of``,
    ``segment``, ``plan``, ``sample_n``) are traits with the functions'
    names and meaning; picking a name in the search box sets
    ``customer_id`` and recomputes everything. A failure (an id not in
    scope) shows in the red ``errors`` area, never raised.

    Parameters
    ----------
    store : Store
        The journey store.
    definition : JourneyDefinition
        The stages.
    customer_id : str, default ""
        The customer shown first; empty for the first customer of the search
        list (by name).
    as_of : str, datetime.date or None, default None
        Censoring date; empty for the latest event.
    segment, plan : str, default "all"
        Which customers the search offers.
    sample_n : int, default 0
        Seeded sample of the customers offered (0 = all).
    risk_scores : pandas.DataFrame, optional
        A risk score table (``journeylib score`` or the churn-risk report's
        ``risk_scores`` artifact) for the header's risk and reasons.
    ticket_scores : pandas.DataFrame, optional
        Scored tickets; without them the customer's own tickets are scored.
    journey : Journey, optional
        The analysis context to compute on (set by :meth:`from_journey`).
    **kwargs
        Display options passed to :class:`ipywidgets.VBox`.

    Attributes
    ----------
    search : ipywidgets.Combobox
        Type a name; the options are ``"name · segment · id"``.
    header : ipywidgets.HTML
        :func:`profile_html` of the customer (class ``journeylib-customer-header``).
    errors : ipywidgets.HTML
        The visible error area.
    live : LiveChart
        Weekly activity by source kind (class ``journeylib-customer-activity``).
    events : ipywidgets.HTML
        The newest :data:`SHOWN_EVENTS` timeline rows and a CSV download of all.
    timeline, profile : pandas.DataFrame or None
        The last results.
    """

    DATA_PARAMETERS: tuple[str, ...] = ("customer_id", "as_of", "segment", "plan", "sample_n")

    customer_id = traitlets.Unicode("", help="The customer shown (customers.customer_id).")
    as_of = traitlets.Unicode("", help="Censoring date (ISO); empty for the latest event.")
    segment = traitlets.Unicode(ALL, help="'all' or a segment: the customers the search offers.")
    plan = traitlets.Unicode(ALL, help="'all' or a plan: the customers the search offers.")
    sample_n = traitlets.Int(0, help="0 for every customer; >0 for a seeded sample.")
    error = traitlets.Unicode("", help="Message of the last failure; empty when the page is current.")

    def __init__(
        self,
        store: Store,
        definition: JourneyDefinition,
        *,
        customer_id: str = "",
        as_of: str | dt.date | None = None,
        segment: str | None = ALL,
        plan: str | None = ALL,
        sample_n: int = 0,
        risk_scores: pd.DataFrame | None = None,
        ticket_scores: pd.DataFrame | None = None,
        journey: Journey | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.store = store
        self.definition = definition
        self.journey = journey
        self.risk_scores = risk_scores
        self.ticket_scores = ticket_scores
        self.timeline: pd.DataFrame | None = None
        self.profile: pd.DataFrame | None = None
        self.live: LiveChart | None = None
        self._by_label: dict[str, str] = {}
        with self.hold_trait_notifications():
            self.as_of = "" if as_of is None else (as_of.isoformat() if isinstance(as_of, dt.date) else str(as_of))
            self.segment = segment or ALL
            self.plan = plan or ALL
            self.sample_n = int(sample_n)
        self.errors = widgets.HTML("")
        self.search = widgets.Combobox(placeholder="Type a customer's name", description="Customer:", ensure_option=True,
                                       layout=widgets.Layout(width="36em"))
        self.search.add_class("journeylib-customer-search")
        self.header = widgets.HTML("")
        self.events = widgets.HTML("")
        self._runner = ContextRunner(store, journey, self._scope_parameters() if journey is not None else None)
        self._load_search()
        if customer_id:
            self.customer_id = str(customer_id)
        elif self._by_label:
            self.customer_id = next(iter(self._by_label.values()))
        self.search.observe(self._on_search, names="value")
        self.live = LiveChart(self._compute())
        self.live.add_class("journeylib-customer-activity")
        self.add_class("journeylib-customer-360")
        self.children = [self.search, self.errors, self.header, self.live, self.events]

    @classmethod
    def from_journey(cls, journey: Journey, **options: Any) -> Self:
        """Build the widget on an analysis context: its store, definition, scope and cache.

        Parameters
        ----------
        journey : Journey
            The analysis context (``journeylib.notebook.open_journey``).
        **options
            ``customer_id``, ``risk_scores``, ``ticket_scores`` and display
            options.

        Returns
        -------
        Customer360Widget
            The widget.

        Raises
        ------
        TypeError
            If *journey* is not a Journey or an option is a scope filter or
            ``definition``.
        """
        given = journey_options(f"{cls.__name__}.from_journey", journey, options, forbidden=(*SCOPE_FILTERS, "definition", "journey"))
        filters = scope_filters(journey.scope, ("as_of", "segment", "plan", "sample_n"))
        return cls(journey.store, journey.definition, journey=journey, **filters, **given)

    def _scope_parameters(self) -> dict[str, Any]:
        return {"as_of": self.as_of or None, "segment": self.segment, "plan": self.plan, "sample_n": self.sample_n}

    def data_parameters(self) -> dict[str, Any]:
        """Return the keyword arguments of the wrapped computations.

        Returns
        -------
        dict
            ``customer_id``, ``as_of`` (None when empty), ``segment``,
            ``plan``, ``sample_n``.
        """
        return {"customer_id": self.customer_id, **self._scope_parameters()}

    def _load_search(self) -> None:
        try:
            people = self._runner.run(timeline.customer_search_data, {"definition": self.definition, **self._scope_parameters()})
        except Exception as exc:  # a widget must show its failure, not raise it
            self._by_label = {}
            self.search.options = []
            self.error = f"{type(exc).__name__}: {exc}"
            self.errors.value = error_html(self.error)
            return
        self._by_label = dict(zip(people["label"], people["customer_id"].astype(str), strict=True))
        self.search.options = list(self._by_label)

    def _on_search(self, change: dict[str, Any]) -> None:
        cid = self._by_label.get(change["new"])
        if cid is not None and cid != self.customer_id:
            self.customer_id = cid

    def _compute(self) -> alt.TopLevelSpec:
        params = {"definition": self.definition, **self.data_parameters()}
        try:
            rows = self._runner.run(timeline.customer_timeline_data, {**params, "ticket_scores": self.ticket_scores})
            profile = self._runner.run(timeline.customer_profile_data,
                                       {**params, "ticket_scores": self.ticket_scores, "risk_scores": self.risk_scores})
            activity = timeline.customer_activity_data(rows)
            name = str(profile["name"].iloc[0])
            chart = customer_activity_chart(activity, title=f"Activity per week by source kind — {name}, as of {_date(profile['as_of'].iloc[0])}")
        except Exception as exc:  # a widget callback must show its failure, not raise it
            self.error = f"{type(exc).__name__}: {exc}"
            self.errors.value = error_html(self.error)
            self.header.value = ""
            self.events.value = ""
            return placeholder_chart(title="Activity per week by source kind", message="No customer to show; see the message above.")
        self.timeline, self.profile = rows, profile
        self.error = ""
        self.errors.value = ""
        self.header.value = profile_html(profile.iloc[0])
        label = next((k for k, v in self._by_label.items() if v == self.customer_id), None)
        if label is not None and self.search.value != label:
            self.search.value = label
        link = csv_link_html(rows, f"timeline_{name}", text=f"Download the whole timeline ({len(rows):,} rows) as CSV")
        self.events.value = f"<h4>Latest {min(SHOWN_EVENTS, len(rows))} of {len(rows):,} events and tickets</h4>" + _timeline_html(rows, SHOWN_EVENTS) + f"<p>{link}</p>"
        return chart

    @traitlets.observe("customer_id", "as_of", "segment", "plan", "sample_n")
    def _recompute(self, change: dict[str, Any]) -> None:
        if self.live is None:  # still being constructed
            return
        if change["name"] != "customer_id":
            self._load_search()
        self.live.chart = self._compute()
