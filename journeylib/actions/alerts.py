"""Raising alerts: rules evaluated as of a day, routed to their owner, written once, listed for the CSMs.

:func:`raise_alerts` is what ``journeylib alerts`` runs: it evaluates the
rules on the customers' values as of each day
(:func:`journeylib.actions.rules.alert_features_data`), explains each firing,
gives it its playbook, holdout flag and owner, and writes it to the store's
``alert_history`` (:mod:`journeylib.store.alerts`) in one transaction per day,
never twice within a rule's cooldown. The result's ``alerts`` is the CSM
worklist of those days (:data:`WORKLIST_COLUMNS`), written to CSV or JSON by
:func:`write_worklist`.

Owners come from the CRM: the first key of the routing's
``owner_properties`` that a customer's ``properties`` hold (Salesforce's
``OwnerId``, HubSpot's ``Company owner`` ...), mapped through ``owners``;
customers without one go to ``default_owner``, and the run says how many.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from journeylib.actions.playbooks import assign_playbooks
from journeylib.actions.rules import alert_features_data, evaluate_rules, tickets_for_rules
from journeylib.cache import ResultCache
from journeylib.config.alerts import SEVERITIES, AlertRules, Routing
from journeylib.config.journey import JourneyDefinition
from journeylib.customers.snapshots import day_end, day_number
from journeylib.exceptions import JourneyLibError
from journeylib.scope import to_utc
from journeylib.store import Store
from journeylib.store.alerts import ALERT_HISTORY_COLUMNS, alert_history_data, blocked_by_cooldown, record_alerts

__all__ = [
    "WORKLIST_COLUMNS",
    "AlertRun",
    "customer_owners_data",
    "latest_day",
    "raise_alerts",
    "worklist_data",
    "worklist_details_data",
    "write_worklist",
]

#: Columns of the worklist / alert frame (webhook delivery reads exactly these).
WORKLIST_COLUMNS: tuple[str, ...] = (
    "alert_id", "customer_id", "name", "owner", "severity", "rule", "why", "next_step", "raised_at", "as_of", "holdout",
)  # fmt: skip


@dataclass(frozen=True)
class AlertRun:
    """What one run of the rules did.

    Attributes
    ----------
    alerts : pandas.DataFrame
        The worklist of the run's as-of days (:data:`WORKLIST_COLUMNS`):
        every alert stored for those days, those of earlier runs included;
        in a dry run, the stored ones and those the run would write.
    raised : list of str
        ``alert_id`` of the alerts this run wrote (would write, in a dry run).
    suppressed : int
        Firings not written because the same rule had alerted the same
        customer within its cooldown (or the alert was already stored).
    as_of_days : list of int
        The UTC day numbers evaluated.
    notes : list of str
        Caveats with counts (risk or sentiment not checked, default owners,
        customers without activity).
    dry_run : bool
        Whether nothing was written.
    run_id : str
        The run's id (stored with its alerts).
    history : pandas.DataFrame
        The same alerts as :attr:`alerts` with every column of
        ``alert_history`` (:data:`journeylib.store.alerts.ALERT_HISTORY_COLUMNS`:
        ``segment``, ``playbook``, the JSON ``explanation`` ...);
        :func:`worklist_details_data` reads it.
    """

    alerts: pd.DataFrame
    raised: list[str]
    suppressed: int
    as_of_days: list[int]
    notes: list[str] = field(default_factory=list)
    dry_run: bool = False
    run_id: str = ""
    history: pd.DataFrame = field(default_factory=lambda: pd.DataFrame({c: pd.Series(dtype=object) for c in ALERT_HISTORY_COLUMNS}))

    def lines(self) -> list[str]:
        """Return the run in a few plain lines, for the command line."""
        days = ", ".join(f"{day_end(d) - pd.Timedelta(days=1):%Y-%m-%d}" for d in self.as_of_days)
        verb = "would raise" if self.dry_run else "raised"
        out = [f"as of {days}: {verb} {len(self.raised)} new alert(s); {self.suppressed} not raised again (cooldown)"]
        if len(self.alerts):
            by = self.alerts.groupby("severity").size()
            sev = ", ".join(f"{by[s]} {s}" for s in reversed(SEVERITIES) if s in by.index)
            held = int(self.alerts["holdout"].sum())
            out.append(f"worklist: {len(self.alerts)} alert(s) ({sev}), {self.alerts['owner'].nunique()} owner(s), {held} held out")
        else:
            out.append("worklist: no alert")
        out += [f"note: {n}" for n in self.notes]
        return out


def latest_day(store: Store) -> pd.Timestamp:
    """Return the UTC day (midnight) of the latest event: the default as-of day.

    Raises
    ------
    JourneyLibError
        If the store has no events.
    """
    t = store.query("SELECT max(timestamp) AS t FROM events")["t"].iloc[0]
    if pd.isna(t):
        msg = "the store has no events, so there is no as-of day to default to; ingest data first or give --as-of DATE"
        raise JourneyLibError(msg)
    return day_end(day_number(t)) - pd.Timedelta(days=1)


def customer_owners_data(store: Store, routing: Routing) -> pd.DataFrame:
    """Return every customer's name and owner (the CSM), from the CRM properties or the default.

    Parameters
    ----------
    store : Store
        The canonical store.
    routing : Routing
        Owner property keys, the id → name map and the default owner.

    Returns
    -------
    pandas.DataFrame
        ``customer_id``, ``name`` (the account name; the id when empty),
        ``owner`` (the mapped owner, else the raw property value, else the
        default), ``owner_source`` (``property:<key>`` or ``default``).
    """
    c = store.table("customers", columns=["customer_id", "name", "properties"])
    owners, sources = [], []
    for props in c["properties"]:
        found = None
        if isinstance(props, str) and props:
            try:
                data = json.loads(props)
            except ValueError:
                data = {}
            if isinstance(data, dict):
                for key in routing.owner_properties:
                    value = data.get(key)
                    if value not in (None, ""):
                        found = (key, str(value))
                        break
        if found is None:
            owners.append(routing.default_owner)
            sources.append("default")
        else:
            owners.append(routing.owners.get(found[1], found[1]))
            sources.append(f"property:{found[0]}")
    names = c["name"].where(c["name"].notna() & (c["name"].astype(str) != ""), c["customer_id"])
    return pd.DataFrame({"customer_id": c["customer_id"].astype(str), "name": names.astype(str), "owner": owners, "owner_source": sources})


def worklist_data(history: pd.DataFrame) -> pd.DataFrame:
    """Return alerts (``alert_history`` rows) as the CSM worklist: most severe first, then by owner and company.

    Parameters
    ----------
    history : pandas.DataFrame
        Rows with at least :data:`WORKLIST_COLUMNS`.

    Returns
    -------
    pandas.DataFrame
        Exactly :data:`WORKLIST_COLUMNS`: ``alert_id`` (rule:customer:day),
        ``customer_id``, ``name`` (company), ``owner``, ``severity``,
        ``rule``, ``why`` (the conditions that held, with the customer's
        values and the peer reference), ``next_step`` (the playbook's action
        and timing, or none for a held-out customer), ``raised_at``,
        ``as_of`` (UTC; the end of the as-of day), ``holdout`` (bool).
    """
    if history.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in WORKLIST_COLUMNS})
    rank = {s: i for i, s in enumerate(SEVERITIES)}
    out = history.assign(_sev=-history["severity"].map(rank).fillna(-1))
    out = out.sort_values(["as_of", "_sev", "owner", "name", "rule"], kind="mergesort")
    out = out[list(WORKLIST_COLUMNS)].reset_index(drop=True)
    out["holdout"] = out["holdout"].astype(bool)
    for c in ("raised_at", "as_of"):
        out[c] = pd.to_datetime(out[c], utc=True)
    return out


#: Columns :func:`worklist_details_data` adds to :data:`WORKLIST_COLUMNS`.
WORKLIST_DETAIL_COLUMNS: tuple[str, ...] = (
    "segment", "plan", "playbook", "action", "conditions", "risk_reasons", "risk_checked",
)  # fmt: skip


def worklist_details_data(history: pd.DataFrame) -> pd.DataFrame:
    """Return the worklist with each alert's segment, playbook and structured explanation (for the dashboard).

    The rows and their order are those of :func:`worklist_data`; the
    worklist files and webhooks keep :data:`WORKLIST_COLUMNS` only.

    Parameters
    ----------
    history : pandas.DataFrame
        ``alert_history`` rows (:attr:`AlertRun.history`,
        :func:`journeylib.store.alerts.alert_history_data`), with at least
        :data:`WORKLIST_COLUMNS`, ``segment``, ``plan``, ``playbook``,
        ``action`` and ``explanation``.

    Returns
    -------
    pandas.DataFrame
        :data:`WORKLIST_COLUMNS` (see :func:`worklist_data`), then
        ``segment`` and ``plan`` (the customer's on the as-of day; ``""``
        when unknown), ``playbook`` (its key; ``""`` when the rule has none
        for the segment), ``action`` (``email``, ``csm_task``, ``in_app``,
        ``webhook`` or ``""``), ``conditions`` (list of dicts, one per
        condition that held: ``condition``, ``value`` (the customer's),
        ``rule`` (the threshold), ``reference`` (the peer median days in the
        stage, or the customer's own activity baseline per day; None when
        the condition has none), ``text``), ``risk_reasons`` (the risk
        table's reasons, or None), ``risk_checked`` (bool: a risk table was
        given).

    Raises
    ------
    ValueError
        If a column is missing, or an ``explanation`` is not the JSON object
        :func:`journeylib.actions.rules.evaluate_rules` writes (the alert
        is named).
    """
    needed = [*WORKLIST_COLUMNS, "segment", "plan", "playbook", "action", "explanation"]
    missing = [c for c in needed if c not in history.columns]
    if missing:
        msg = f"worklist_details_data: history lacks column(s) {', '.join(missing)}; pass alert_history rows (AlertRun.history); got {list(history.columns)}"
        raise ValueError(msg)
    base = worklist_data(history)
    if base.empty:
        return base.assign(**{c: pd.Series(dtype=object) for c in WORKLIST_DETAIL_COLUMNS})
    extra = history.drop_duplicates("alert_id").set_index("alert_id").reindex(base["alert_id"])
    conditions, reasons, checked = [], [], []
    for alert_id, text in zip(base["alert_id"], extra["explanation"], strict=True):
        try:
            data = json.loads(text) if isinstance(text, str) and text else {}
        except ValueError as exc:
            msg = f"worklist_details_data: alert {alert_id!r} has an explanation that is not JSON ({exc}); got {str(text)[:80]!r}"
            raise ValueError(msg) from exc
        if not isinstance(data, dict) or not isinstance(data.get("conditions", []), list):
            msg = f"worklist_details_data: alert {alert_id!r}: explanation must be a JSON object with a 'conditions' list; got {str(text)[:80]!r}"
            raise ValueError(msg)
        conditions.append(list(data.get("conditions", [])))
        reasons.append(data.get("risk_reasons") or None)
        checked.append(bool(data.get("risk_checked", False)))
    out = base.copy()
    for c in ("segment", "plan", "playbook", "action"):
        out[c] = extra[c].where(extra[c].notna(), "").astype(str).to_numpy()
    out["conditions"] = conditions
    out["risk_reasons"] = reasons
    out["risk_checked"] = pd.Series(checked, index=out.index, dtype=bool)
    return out


def write_worklist(alerts: pd.DataFrame, path: str | Path) -> Path:
    """Write the worklist as CSV (``.csv``) or JSON (``.json``, a list of records; times in ISO 8601 UTC).

    Parameters
    ----------
    alerts : pandas.DataFrame
        :func:`worklist_data` (or :attr:`AlertRun.alerts`).
    path : str or pathlib.Path
        The file; its folder is created.

    Returns
    -------
    pathlib.Path
        The file written.

    Raises
    ------
    ValueError
        If the suffix is neither ``.csv`` nor ``.json``.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in (".csv", ".json"):
        msg = f"write_worklist: {p} must end in .csv or .json; got {suffix or 'no suffix'}"
        raise ValueError(msg)
    p.parent.mkdir(parents=True, exist_ok=True)
    frame = alerts.copy()
    for c in ("raised_at", "as_of"):
        if c in frame.columns:
            frame[c] = pd.to_datetime(frame[c], utc=True).map(lambda t: t.isoformat() if pd.notna(t) else None)
    if suffix == ".csv":
        frame.to_csv(p, index=False)
    else:
        records = json.loads(frame.to_json(orient="records", force_ascii=False))
        p.write_text(json.dumps(records, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return p


def _days(as_of: Any, store: Store) -> list[int]:
    if as_of is None:
        return [day_number(latest_day(store))]
    values = [as_of] if isinstance(as_of, (str, pd.Timestamp)) or not isinstance(as_of, Sequence) else list(as_of)
    return sorted({day_number(to_utc(v, function="raise_alerts", name="as_of") or v) for v in values})


def raise_alerts(
    store: Store,
    rules: AlertRules | str | Path,
    *,
    raised_at: Any,
    as_of: Any = None,
    run_id: str | None = None,
    dry_run: bool = False,
    risk: pd.DataFrame | str | Path | None = None,
    ticket_scores: pd.DataFrame | None = None,
    definition: JourneyDefinition | str | Path | None = None,
    activity_sources: Sequence[str] = ("product",),
    cache: ResultCache | None = None,
) -> AlertRun:
    """Evaluate the rules as of one or more days and write the alerts, once per rule, customer and cooldown.

    Parameters
    ----------
    store : Store
        The canonical store; writable unless *dry_run*.
    rules : AlertRules, str or pathlib.Path
        The rules, or their YAML file.
    raised_at : date-like
        When the run happens (stored with each alert; no hidden clock).
    as_of : date-like or sequence of date-like, optional
        The as-of day(s) (UTC; each read up to its end). Default: the day of
        the latest event. Several days are evaluated in order, one
        transaction each, so an earlier day's alerts start the cooldowns of
        the later ones.
    run_id : str, optional
        Stored with the alerts (default: ``raised_at`` in ISO form).
    dry_run : bool, default False
        Evaluate and list, write nothing.
    risk : pandas.DataFrame, str or pathlib.Path, optional
        A risk table (:func:`journeylib.actions.rules.read_risk_table`);
        without it the risk conditions are not checked (said in each alert).
    ticket_scores : pandas.DataFrame, optional
        Scored tickets; computed with :func:`journeylib.voice.sentiment.score_tickets`
        when a rule reads sentiment and none are given.
    definition : JourneyDefinition, str or pathlib.Path, optional
        The journey definition (default: the rule file's ``journey``).
    activity_sources : sequence of str, default ("product",)
        Source kinds or names whose events are activity.
    cache : ResultCache, optional
        Share the milestone frame with other analyses.

    Returns
    -------
    AlertRun
        The worklist of the days, the alerts written, the count suppressed
        by cooldowns, and the notes.

    Raises
    ------
    journeylib.exceptions.ConfigError
        If the rules are invalid or name a stage the definition lacks.
    JourneyLibError
        If the store is read-only and *dry_run* is False.
    """
    loaded, lines = AlertRules.load(rules)
    definition_obj = JourneyDefinition.load(definition if definition is not None else loaded.journey_path())
    loaded.check_journey(definition_obj.stage_names, lines=lines)
    if store.read_only and not dry_run:
        msg = f"raise_alerts: store {store.path} is open read-only; open it writable to record alerts, or pass dry_run=True"
        raise JourneyLibError(msg)
    raised_utc = to_utc(raised_at, function="raise_alerts", name="raised_at")
    if raised_utc is None:
        msg = "raise_alerts: raised_at must be a date or time (when the run happens); got None"
        raise ValueError(msg)
    raised = pd.Timestamp(raised_utc)
    rid = run_id or raised.isoformat()
    days = _days(as_of, store)
    scores = tickets_for_rules(store, loaded, ticket_scores, cache=cache)
    notes: list[str] = []
    features = alert_features_data(
        store, definition=definition_obj, as_of_dates=[day_end(d) - pd.Timedelta(days=1) for d in days], risk=risk,
        ticket_scores=scores, activity_sources=activity_sources, cache=cache,
    )  # fmt: skip
    notes += features.notes
    firings, rule_notes = evaluate_rules(features, loaded)
    notes += rule_notes
    owners = customer_owners_data(store, loaded.routing)
    alerts = assign_playbooks(firings, loaded).merge(owners, on="customer_id", how="left")
    alerts["name"] = alerts["name"].fillna(alerts["customer_id"])
    alerts["owner"] = alerts["owner"].fillna(loaded.routing.default_owner)
    alerts["owner_source"] = alerts["owner_source"].fillna("default")
    if len(alerts):
        n_default = int((alerts["owner_source"] == "default").sum())
        if n_default == len(alerts) and (owners["owner_source"] == "default").all():
            notes.append(
                f"no customer has an owner in its CRM properties (looked for {', '.join(loaded.routing.owner_properties)}); "
                f"every alert goes to the default owner {loaded.routing.default_owner!r}."
            )
        elif n_default:
            notes.append(f"{n_default} of {len(alerts)} alerts have no CRM owner and go to {loaded.routing.default_owner!r}.")
    alerts["alert_id"] = [
        f"{r}:{c}:{day_end(int(d)) - pd.Timedelta(days=1):%Y-%m-%d}"
        for r, c, d in zip(alerts["rule"], alerts["customer_id"], alerts["as_of_day"], strict=True)
    ]
    alerts["raised_at"] = raised
    alerts["run_id"] = rid
    alerts["rules_name"] = loaded.name
    history = alerts[list(ALERT_HISTORY_COLUMNS)] if len(alerts) else pd.DataFrame(columns=list(ALERT_HISTORY_COLUMNS))
    written: list[str] = []
    suppressed = 0
    would: list[pd.DataFrame] = []
    for d in days:
        batch = history[history["as_of_day"] == d].reset_index(drop=True)
        if dry_run:
            blocked = blocked_by_cooldown(store, batch).to_numpy()
            blocked |= _blocked_by(batch, would)
            would.append(batch[~blocked])
            written += batch.loc[~blocked, "alert_id"].tolist()
            suppressed += int(blocked.sum())
        else:
            ids = record_alerts(store, batch)
            written += ids
            suppressed += len(batch) - len(ids)
    parts = [f for f in [*(alert_history_data(store, as_of_day=d) for d in days), *would] if len(f)]
    listed = pd.concat(parts, ignore_index=True) if parts else alert_history_data(store, as_of_day=days[0])
    listed = listed.drop_duplicates("alert_id") if len(listed) else listed
    return AlertRun(
        alerts=worklist_data(listed), raised=sorted(written), suppressed=suppressed, as_of_days=days,
        notes=notes, dry_run=dry_run, run_id=rid, history=listed.reset_index(drop=True),
    )  # fmt: skip


def _blocked_by(batch: pd.DataFrame, earlier: list[pd.DataFrame]) -> np.ndarray:
    """Which rows of *batch* the would-be alerts of earlier days of a dry run block (same rule and customer, within a cooldown)."""
    if not earlier or batch.empty:
        return np.zeros(len(batch), dtype=bool)
    prev = pd.concat(earlier, ignore_index=True)[["rule", "customer_id", "as_of_day", "cooldown_days"]]
    m = batch[["rule", "customer_id", "as_of_day"]].reset_index().merge(prev, on=["rule", "customer_id"], suffixes=("", "_h"))
    near = m[(m["as_of_day"] - m["as_of_day_h"] >= 0) & (m["as_of_day"] - m["as_of_day_h"] < m["cooldown_days"])]
    out = np.zeros(len(batch), dtype=bool)
    out[near["index"].to_numpy(dtype=int)] = True
    return out
