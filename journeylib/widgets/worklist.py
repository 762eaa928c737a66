"""WorklistWidget: the CSM worklist with owner, severity and segment filters, and an alert's explanation on click."""

from __future__ import annotations

import html
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Self

import ipywidgets as widgets
import pandas as pd
import traitlets

from journeylib.actions.alerts import AlertRun, raise_alerts, worklist_details_data
from journeylib.config.alerts import SEVERITIES, AlertRules
from journeylib.context import Journey
from journeylib.scope import ALL
from journeylib.widgets.base import ERROR_STYLE, LABEL_STYLE, NOTES_STYLE, error_html, journey_options

__all__ = ["WorklistWidget"]

#: The filters of the worklist: trait name → column of :func:`journeylib.actions.alerts.worklist_details_data`.
FILTERS: dict[str, str] = {"owner": "owner", "severity": "severity", "segment": "segment"}


def _value_text(value: Any) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.0f}" if value == round(value) else f"{value:.2f}"
    return str(value)


class WorklistWidget(widgets.VBox):
    """The CSM worklist of a run of the alert rules, filtered by owner, severity and segment; a row's explanation on click.

    Wraps :func:`journeylib.actions.alerts.worklist_details_data` (the
    worklist with each alert's segment and structured explanation). The
    Owner, Severity and Segment pickers set the traits ``owner``,
    ``severity`` and ``segment`` (``"all"`` or one value, matched exactly);
    each change narrows :attr:`rows` and the list of alerts. Selecting an
    alert in the list (``row_picker``; the trait ``selected`` holds its
    ``alert_id``) shows in :attr:`detail` the conditions that held, each with
    the customer's value, the rule's threshold and the reference (the peer
    median days in the stage, or the customer's own activity baseline), the
    playbook's next step, whether the customer is held out (not to be
    contacted), and the risk reasons when a risk table was given. A filter
    value no alert has (e.g. from a URL) lists nothing and says so in the
    red ``errors`` area.

    Build it from a run with :meth:`from_run` (the notebook's dry run,
    without computing it again) or from an analysis context with
    :meth:`from_journey` (a dry run as of the context's ``as_of``).

    Parameters
    ----------
    details : pandas.DataFrame
        :func:`journeylib.actions.alerts.worklist_details_data`.
    owner, severity, segment : str, default "all"
        The first values of the filters.
    notes : iterable of str, optional
        Caveats of the run (:attr:`journeylib.actions.alerts.AlertRun.notes`),
        shown above the list.
    rows : int, default 15
        Height of the list, in rows.
    **kwargs
        Display options of ``ipywidgets.VBox``.

    Attributes
    ----------
    details : pandas.DataFrame
        Every alert of the worklist.
    rows : pandas.DataFrame
        The alerts the filters keep, in worklist order (most severe first).
    owner_picker, severity_picker, segment_picker : ipywidgets.Dropdown
        The filters.
    row_picker : ipywidgets.Select
        The filtered alerts; selecting one shows its explanation.
    summary : ipywidgets.HTML
        How many alerts the filters keep, of how many.
    detail : ipywidgets.HTML
        The selected alert's explanation.
    errors : ipywidgets.HTML
        Visible error area.
    notes : ipywidgets.HTML
        The run's caveats.

    Examples
    --------
    >>> import journeylib.actions
    >>> run = journeylib.actions.raise_alerts(store, "parameters/alerts/saas.yaml", raised_at="2026-01-10", dry_run=True)  # doctest: +SKIP
    >>> w = WorklistWidget.from_run(run, severity="high")  # doctest: +SKIP
    """

    owner = traitlets.Unicode(ALL, help="'all' or one owner (CSM).")
    severity = traitlets.Unicode(ALL, help="'all' or one severity (low, medium, high, critical).")
    segment = traitlets.Unicode(ALL, help="'all' or one customers' segment.")
    selected = traitlets.Unicode("", help="alert_id of the alert whose explanation is shown; empty for none.")
    error = traitlets.Unicode("", help="Message of the last failure; empty when the list is current.")

    def __init__(
        self,
        details: pd.DataFrame,
        *,
        owner: str | None = ALL,
        severity: str | None = ALL,
        segment: str | None = ALL,
        notes: Iterable[str] = (),
        rows: int = 15,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        needed = ["alert_id", "customer_id", "name", "rule", "as_of", "next_step", "holdout", "playbook", "action", "conditions",
                  "risk_reasons", "risk_checked", *FILTERS.values()]  # fmt: skip
        missing = [c for c in needed if c not in details.columns]
        if missing:
            msg = (
                f"WorklistWidget: details lack column(s) {', '.join(missing)}; pass "
                f"journeylib.actions.alerts.worklist_details_data(run.history) or use WorklistWidget.from_run(run); "
                f"got {list(details.columns)}"
            )
            raise ValueError(msg)
        self.details = details.reset_index(drop=True)
        self.rows = self.details
        self._syncing = False
        self.owner_picker = widgets.Dropdown(options=self._choices("owner"), value=ALL, description="Owner:", style=LABEL_STYLE)
        self.severity_picker = widgets.Dropdown(options=self._choices("severity"), value=ALL, description="Severity:", style=LABEL_STYLE)
        self.segment_picker = widgets.Dropdown(options=self._choices("segment"), value=ALL, description="Segment:", style=LABEL_STYLE)
        self.owner_picker.observe(lambda c: setattr(self, "owner", c["new"]), names="value")
        self.severity_picker.observe(lambda c: setattr(self, "severity", c["new"]), names="value")
        self.segment_picker.observe(lambda c: setattr(self, "segment", c["new"]), names="value")
        self.row_picker = widgets.Select(options=[], value=None, rows=rows, layout=widgets.Layout(width="100%"))
        self.row_picker.observe(self._picked, names="value")
        self.errors = widgets.HTML("")
        items = "".join(f"<li>{html.escape(n)}</li>" for n in dict.fromkeys(notes))
        self.notes = widgets.HTML(f'<ul class="journeylib-notes" style="{NOTES_STYLE}">{items}</ul>' if items else "")
        self.summary = widgets.HTML("")
        self.detail = widgets.HTML("")
        self.children = [
            widgets.HBox([self.owner_picker, self.severity_picker, self.segment_picker]),
            self.errors, self.notes, self.summary, self.row_picker, self.detail,
        ]  # fmt: skip
        with self.hold_trait_notifications():
            self.owner = owner or ALL
            self.severity = severity or ALL
            self.segment = segment or ALL
        self._apply()

    @classmethod
    def from_run(cls, run: AlertRun, **options: Any) -> Self:
        """Build the widget on a run of the rules (:func:`journeylib.actions.alerts.raise_alerts`), computing nothing again.

        Parameters
        ----------
        run : AlertRun
            The run; its ``history`` gives the alerts, its ``notes`` the caveats.
        **options
            The widget's other parameters (``owner``, ``severity``,
            ``segment``, ``rows``) and display options.

        Returns
        -------
        WorklistWidget
            The widget.

        Raises
        ------
        TypeError
            If *run* is not an AlertRun.
        """
        if not isinstance(run, AlertRun):
            msg = f"WorklistWidget.from_run: run must be a journeylib.actions.alerts.AlertRun (raise_alerts(...)); got {type(run).__name__}"
            raise TypeError(msg)
        return cls(worklist_details_data(run.history), notes=options.pop("notes", run.notes), **options)

    @classmethod
    def from_journey(
        cls, journey: Journey, *, rules: AlertRules | str | Path, risk: pd.DataFrame | str | Path | None = None, **options: Any
    ) -> Self:
        """Build the widget on a dry run of *rules* as of the context's ``as_of``, on its store, definition and cache.

        Nothing is written. The run goes through the context's persistent
        result store (:meth:`journeylib.context.Journey.persisted_call`), so
        a dry run that a report run of the same data, rules and ``as_of``
        made (``journey.persisted_call(raise_alerts, journey.store, rules,
        raised_at=as_of, as_of=as_of, dry_run=True, definition=journey.definition)``,
        as notebook 06 does) is read from disk, run id included. The rules are evaluated on every customer of the
        store, as ``journeylib alerts`` does: the context's segment (when it
        has one) is the first value of the Segment filter, with every other
        customer's alerts one pick away, and its plan, signup window and
        sample do not narrow the worklist.

        Parameters
        ----------
        journey : Journey
            The analysis context (``journeylib.notebook.open_journey``).
        rules : AlertRules, str or pathlib.Path
            The alert rules, or their YAML file.
        risk : pandas.DataFrame, str or pathlib.Path, optional
            A risk table (``journeylib score``); without it risk conditions
            are not checked (said in the notes and in each explanation).
        **options
            ``owner``, ``severity``, ``rows`` and display options.

        Returns
        -------
        WorklistWidget
            The widget.

        Raises
        ------
        TypeError
            If *journey* is not a Journey, or an option comes from the
            context (its scope filters, ``definition``, ``cache``).
        """
        given = journey_options(
            "WorklistWidget.from_journey", journey, options,
            forbidden=("as_of", "segment", "plan", "signup_from", "signup_to", "sample_n", "random_state", "definition", "scope", "cache"),
        )  # fmt: skip
        as_of = journey.scope.as_of
        run = journey.persisted_call(
            raise_alerts, journey.store, rules, raised_at=as_of, as_of=as_of, dry_run=True, definition=journey.definition, risk=risk,
            cache=journey.cache,
        )  # fmt: skip
        return cls.from_run(run, segment=journey.scope.segment_label, **given)

    def _choices(self, name: str) -> list[str]:
        values = {str(v) for v in self.details[FILTERS[name]].dropna() if str(v) != ""}
        if name == "severity":
            return [ALL, *(s for s in reversed(SEVERITIES) if s in values)]
        return [ALL, *sorted(values)]

    @traitlets.observe("owner", "severity", "segment")
    def _filter_changed(self, change: dict[str, Any]) -> None:
        if hasattr(self, "detail"):  # not while being constructed
            self._apply()

    @traitlets.observe("selected")
    def _selected_changed(self, change: dict[str, Any]) -> None:
        if not hasattr(self, "detail"):
            return
        if not self._syncing and self.row_picker.value != (change["new"] or None) and change["new"] in self.rows["alert_id"].to_numpy():
            self._set_picker(change["new"])
        self._show_detail()

    def _apply(self) -> None:
        keep = pd.Series(True, index=self.details.index)
        unknown = []
        for name, column in FILTERS.items():
            value = getattr(self, name)
            picker = getattr(self, f"{name}_picker")
            if value in picker.options and picker.value != value:
                picker.value = value
            if value in ("", ALL):
                continue
            if value not in picker.options:
                unknown.append(f"{name} {value!r} has no alert (choices: {', '.join(picker.options[1:]) or 'none'})")
            keep &= self.details[column].astype(str) == value
        self.rows = self.details[keep].reset_index(drop=True)
        self.error = "; ".join(unknown)
        self.errors.value = error_html(self.error)
        filters = [f"{name} {getattr(self, name)}" for name in FILTERS if getattr(self, name) not in ("", ALL)]
        held = int(self.rows["holdout"].astype(bool).sum())
        self.summary.value = (
            f"<b>{len(self.rows)} of {len(self.details)} alerts</b>"
            + (f" ({', '.join(html.escape(f) for f in filters)})" if filters else "")
            + (f"; {held} held out (not to be contacted)" if held else "")
            + ". Select an alert to see why it fired."
        )
        options = [(self._label(r), str(r["alert_id"])) for _, r in self.rows.iterrows()]
        keep_selected = self.selected if self.selected in {v for _, v in options} else ""
        self._syncing = True
        try:
            self.row_picker.options = options
            self.row_picker.value = keep_selected or None
        finally:
            self._syncing = False
        if self.selected != keep_selected:
            self.selected = keep_selected  # shows the detail
        else:
            self._show_detail()

    def _set_picker(self, alert_id: str) -> None:
        self._syncing = True
        try:
            self.row_picker.value = alert_id
        finally:
            self._syncing = False

    def _picked(self, change: dict[str, Any]) -> None:
        if not self._syncing:
            self.selected = change["new"] or ""

    @staticmethod
    def _label(row: pd.Series) -> str:
        held = " · held out" if bool(row["holdout"]) else ""
        segment = f" · {row['segment']}" if str(row["segment"]) else ""
        return f"[{row['severity']}] {row['name']} · {row['rule']} · {row['owner']}{segment}{held}"

    def _show_detail(self) -> None:
        if not self.selected:
            self.detail.value = ""
            return
        match = self.details[self.details["alert_id"] == self.selected]
        if match.empty:
            self.detail.value = f'<div style="{ERROR_STYLE}">alert {html.escape(self.selected)!s} is not in this worklist</div>'
            return
        r = match.iloc[0]
        e = html.escape
        as_of = f"{pd.Timestamp(r['as_of']):%Y-%m-%d}" if "as_of" in r.index and pd.notna(r["as_of"]) else "—"
        cells = "".join(
            "<tr>" + "".join(f"<td>{e(_value_text(c.get(k)))}</td>" for k in ("condition", "value", "rule", "reference")) + f"<td>{e(str(c.get('text', '')))}</td></tr>"
            for c in r["conditions"]
        )
        table = (
            '<table class="journeylib-explanation"><thead><tr><th>condition</th><th>customer\'s value</th><th>rule</th>'
            "<th>reference (peers or own baseline)</th><th>what held</th></tr></thead>"
            f"<tbody>{cells}</tbody></table>"
            if cells
            else "<p>No condition recorded for this alert.</p>"
        )
        if r["risk_reasons"]:
            risk = f"<p><b>Risk reasons:</b> {e(str(r['risk_reasons']))}</p>"
        elif not bool(r["risk_checked"]):
            risk = "<p><b>Churn risk:</b> not checked (no risk table given).</p>"
        else:
            risk = "<p><b>Risk reasons:</b> none in the risk table.</p>"
        holdout = (
            "<p><b>Held out:</b> yes: in the playbook's random holdout; do not contact for this alert (it measures the playbook).</p>"
            if bool(r["holdout"])
            else "<p><b>Held out:</b> no.</p>"
        )
        playbook = f" (playbook {e(str(r['playbook']))}, {e(str(r['action']))})" if str(r["playbook"]) else ""
        self.detail.value = (
            f'<div class="journeylib-alert-detail"><h4>{e(str(r["name"]))} ({e(str(r["customer_id"]))})</h4>'
            f"<p>Rule <b>{e(str(r['rule']))}</b>, severity {e(str(r['severity']))}, owner {e(str(r['owner']))}, "
            f"segment {e(str(r['segment']) or '—')}, as of {as_of}.</p>"
            f"{table}<p><b>Next step:</b> {e(str(r['next_step']))}{playbook}</p>{holdout}{risk}</div>"
        )
