"""One customer seen whole: the timeline across every source kind, the stage, progress against peers, risk and sentiment.

The data of the customer 360 page (:class:`journeylib.widgets.Customer360Widget`):

- :func:`customer_search_data` — the customers in scope, by name, for the picker;
- :func:`customer_timeline_data` — one row per event and per support ticket of
  one customer, each with its source kind (``product``, ``crm``, ``support``,
  ``email``: :func:`journeylib.store.categories.source_categories`, never a
  vendor name), the stage the customer was in at that moment, and for tickets
  the subject (personal data masked) and its sentiment;
- :func:`customer_activity_data` — that timeline counted per week and kind;
- :func:`customer_profile_data` — one row: who the customer is, the current
  stage and how long they have been in it against the median of peers (same
  segment, same stage, progressed out of it), the risk and its reasons when a
  score table is given, and the tickets' sentiment.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from journeylib.cache import ResultCache
from journeylib.config.journey import JourneyDefinition
from journeylib.exceptions import EmptyResultError
from journeylib.journey.stages import add_stage_exits, stage_milestones
from journeylib.scope import Scope
from journeylib.store import Store
from journeylib.store.categories import source_categories
from journeylib.voice.pii import mask_pii
from journeylib.voice.sentiment import score_tickets

__all__ = [
    "MIN_PEERS",
    "PROFILE_COLUMNS",
    "TICKET_KIND",
    "TIMELINE_COLUMNS",
    "customer_activity_data",
    "customer_profile_data",
    "customer_search_data",
    "customer_timeline_data",
]

#: The source kind of the rows read from the ``tickets`` table.
TICKET_KIND = "support"
#: Fewest peers of the customer's own segment before the peers of every segment are used (as ``progress_data``).
MIN_PEERS = 20
#: The columns of :func:`customer_timeline_data`.
TIMELINE_COLUMNS = ("customer_id", "timestamp", "kind", "source", "event", "stage", "detail", "sentiment", "emotion")
#: The columns of :func:`customer_profile_data`.
PROFILE_COLUMNS = (
    "customer_id", "name", "segment", "plan", "signup_at", "converted_at", "churned_at", "as_of",
    "stage", "stage_entered_at", "days_in_stage", "stage_status", "peer_group", "peers", "peer_median_days",
    "peer_p75_days", "peer_p90_days", "progress", "risk", "risk_band", "risk_reasons", "risk_note",
    "events", "last_activity_at", "tickets", "mean_sentiment", "negative_tickets", "last_ticket_emotion",
)


def _resolve(store: Store, scope: Scope | None, definition: JourneyDefinition, function: str, filters: dict[str, Any]) -> Scope:
    return Scope.resolve(store, scope, function=function, segment_field=definition.segment_field, **filters)


def customer_search_data(
    store: Store,
    *,
    definition: JourneyDefinition,
    as_of: Any = None,
    segment: str | None = None,
    plan: str | None = None,
    sample_n: int = 0,
    scope: Scope | None = None,
) -> pd.DataFrame:
    """Return the customers in scope for a name search: one row each, ordered by name.

    Parameters
    ----------
    store : Store
        The canonical store.
    definition : JourneyDefinition
        Gives the segment field.
    as_of, segment, plan, sample_n, scope
        Which customers, as of when.

    Returns
    -------
    pandas.DataFrame
        ``customer_id``, ``name`` (the id when the name is empty),
        ``segment``, ``plan``, ``label`` (``"name · segment · id"``, unique).

    Raises
    ------
    EmptyResultError
        If no customer is in scope.
    """
    scope = _resolve(store, scope, definition, "customer_search_data",
                     {"as_of": as_of, "segment": segment, "plan": plan, "sample_n": sample_n})
    out = store.query(f"SELECT customer_id, name, segment, plan FROM ({scope.customers_sql()}) c")
    if out.empty:
        msg = f"customer_search_data: no customer in scope ({scope.describe()}); widen the filters"
        raise EmptyResultError(msg)
    out["name"] = out["name"].where(out["name"].notna() & (out["name"].astype(str).str.strip() != ""), out["customer_id"]).astype(str)
    out["label"] = out["name"] + " · " + out["segment"].astype(str) + " · " + out["customer_id"].astype(str)
    return out.sort_values(["name", "customer_id"], kind="mergesort").reset_index(drop=True)


def _one_customer(store: Store, scope: Scope, customer_id: str, function: str) -> pd.DataFrame:
    row = store.query(f"SELECT * FROM ({scope.customers_sql()}) c WHERE c.customer_id = $cid", {"cid": str(customer_id)})
    if row.empty:
        exists = not store.query("SELECT customer_id FROM customers WHERE customer_id = $cid", {"cid": str(customer_id)}).empty
        why = f"it is outside the scope ({scope.describe()})" if exists else "the store has no customer with that id"
        msg = f"{function}: customer_id {customer_id!r} cannot be shown: {why}; pick one from customer_search_data"
        raise EmptyResultError(msg)
    return row


def _intervals(store: Store, definition: JourneyDefinition, scope: Scope, cache: ResultCache | None) -> pd.DataFrame:
    ms = stage_milestones(store, definition, scope, cache=cache)
    for col in ("entered_at", "churned_at", "ended_at"):
        ms[col] = pd.to_datetime(ms[col], utc=True)
    return add_stage_exits(ms, definition, scope.as_of)


def _customer_tickets(store: Store, cid: str, as_of: pd.Timestamp, ticket_scores: pd.DataFrame | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return the customer's tickets by *as_of* and their scores: from *ticket_scores*, else scored here (VADER)."""
    tickets = store.query(
        "SELECT * FROM tickets WHERE customer_id = $cid AND created_at <= $as_of ORDER BY created_at, ticket_id",
        {"cid": cid, "as_of": pd.Timestamp(as_of).to_pydatetime()},
    )
    if ticket_scores is None:
        scores = score_tickets(tickets) if len(tickets) else pd.DataFrame(columns=["ticket_id", "compound", "emotion"])
    else:
        scores = ticket_scores[ticket_scores["ticket_id"].astype(str).isin(tickets["ticket_id"].astype(str))]
    return tickets, scores


def _ticket_rows(tickets: pd.DataFrame, ticket_scores: pd.DataFrame | None, names: list[str]) -> pd.DataFrame:
    if tickets.empty:
        return pd.DataFrame(columns=["timestamp", "kind", "source", "event", "detail", "sentiment", "emotion"])
    out = pd.DataFrame({
        "timestamp": pd.to_datetime(tickets["created_at"], utc=True),
        "kind": TICKET_KIND,
        "source": "tickets",
        "event": "ticket",
        "detail": [mask_pii(str(s), names=names) if isinstance(s, str) else "" for s in tickets.get("subject", pd.Series([""] * len(tickets)))],
        "ticket_id": tickets["ticket_id"].astype(str).to_numpy(),
    })
    if ticket_scores is not None and len(ticket_scores):
        scores = ticket_scores.drop_duplicates("ticket_id").set_index(ticket_scores["ticket_id"].drop_duplicates().astype(str))
        out["sentiment"] = out["ticket_id"].map(scores["compound"]) if "compound" in scores else np.nan
        out["emotion"] = out["ticket_id"].map(scores["emotion"]) if "emotion" in scores else ""
    else:
        out["sentiment"] = np.nan
        out["emotion"] = ""
    return out.drop(columns="ticket_id")


def customer_timeline_data(
    store: Store,
    *,
    definition: JourneyDefinition,
    customer_id: str,
    ticket_scores: pd.DataFrame | None = None,
    as_of: Any = None,
    segment: str | None = None,
    plan: str | None = None,
    sample_n: int = 0,
    scope: Scope | None = None,
    cache: ResultCache | None = None,
) -> pd.DataFrame:
    """Return one customer's events and support tickets up to ``as_of``, oldest first.

    Parameters
    ----------
    store : Store
        The canonical store.
    definition : JourneyDefinition
        The stages (each row gets the stage the customer was in at its time).
    customer_id : str
        The customer (see :func:`customer_search_data`).
    ticket_scores : pandas.DataFrame, optional
        Scored tickets (``Journey.scored_tickets()``:
        :func:`journeylib.voice.sentiment.score_tickets`); gives the tickets'
        ``sentiment`` and ``emotion``. Without it the customer's own tickets
        are scored here with the default (VADER) scorer.
    as_of, segment, plan, sample_n, scope
        Which customers, as of when; the customer must be in scope.
    cache : ResultCache, optional
        Share the milestone frame with the context's other analyses.

    Returns
    -------
    pandas.DataFrame
        One row per event and ticket (:data:`TIMELINE_COLUMNS`):
        ``customer_id``; ``timestamp`` (UTC); ``kind`` (the source kind:
        ``product``, ``crm``, ``support``, ``email``; tickets are
        ``support``); ``source`` (``events.source``, or ``tickets``);
        ``event`` (the event name, or ``ticket``); ``stage`` (the stage the
        customer was in at that time, ``"(before the first stage)"`` before
        it, ``"(after <stage>: <status>)"`` after a journey that ended, e.g.
        by churn); ``detail`` (a ticket's subject with e-mail addresses, phone
        numbers and person names masked; empty for events); ``sentiment``
        (a ticket's compound score, -1 to 1; NaN otherwise); ``emotion`` (a
        ticket's emotion; empty otherwise).

    Raises
    ------
    EmptyResultError
        If the customer is not in scope (the message says whether the id
        exists at all) or has neither events nor tickets by ``as_of``.
    """
    scope = _resolve(store, scope, definition, "customer_timeline_data",
                     {"as_of": as_of, "segment": segment, "plan": plan, "sample_n": sample_n})
    person = _one_customer(store, scope, customer_id, "customer_timeline_data")
    cid = str(customer_id)
    events = store.query(
        f"SELECT e.timestamp, e.source, e.event FROM ({scope.events_sql()}) e WHERE e.customer_id = $cid ORDER BY e.timestamp, e.source, e.event",
        {"cid": cid},
    )
    kinds = source_categories(store)
    ev = pd.DataFrame({
        "timestamp": pd.to_datetime(events["timestamp"], utc=True),
        "kind": events["source"].astype(str).map(kinds).fillna("product"),
        "source": events["source"].astype(str),
        "event": events["event"].astype(str),
        "detail": "",
        "sentiment": np.nan,
        "emotion": "",
    })
    tickets, scores = _customer_tickets(store, cid, scope.as_of, ticket_scores)
    names = [str(n) for n in person["name"].dropna()]
    rows = pd.concat([df for df in (ev, _ticket_rows(tickets, scores, names)) if len(df)], ignore_index=True) if len(ev) or len(tickets) else ev
    if rows.empty:
        msg = f"customer_timeline_data: customer {cid!r} has no events and no tickets by {scope.as_of:%Y-%m-%d}"
        raise EmptyResultError(msg)
    rows = rows.sort_values(["timestamp", "kind", "event"], kind="mergesort").reset_index(drop=True)
    iv = _intervals(store, definition, scope, cache)
    mine = iv[iv["customer_id"] == cid].sort_values("entered_at")
    rows["stage"] = "(before the first stage)"
    never = pd.Timestamp.max.tz_localize("UTC")
    if len(mine) and pd.notna(mine["exited_at"].iloc[-1]):  # the journey ended (churned, dropped): later rows are after it
        rows.loc[rows["timestamp"] >= mine["exited_at"].iloc[-1], "stage"] = f"(after {mine['stage'].iloc[-1]}: {mine['status'].iloc[-1]})"
    for entered, exited, stage in zip(mine["entered_at"], mine["exited_at"].fillna(never), mine["stage"].astype(str), strict=True):
        inside = (rows["timestamp"] >= entered) & (rows["timestamp"] < exited)
        rows.loc[inside, "stage"] = stage
    rows["customer_id"] = cid
    return rows[list(TIMELINE_COLUMNS)]


def customer_activity_data(timeline: pd.DataFrame, *, freq: str = "W-MON") -> pd.DataFrame:
    """Count a timeline's rows per period and source kind.

    Parameters
    ----------
    timeline : pandas.DataFrame
        What :func:`customer_timeline_data` returned.
    freq : str, default "W-MON"
        Pandas period alias; the default counts ISO weeks (Monday to Sunday).

    Returns
    -------
    pandas.DataFrame
        One row per period × kind with rows in it: ``period_start`` (UTC,
        the period's first day), ``kind``, ``count``, ``events`` (the three
        most frequent event names of that period and kind, comma-separated).

    Raises
    ------
    EmptyResultError
        If *timeline* has no rows.
    """
    if timeline.empty:
        msg = "customer_activity_data: the timeline has no rows"
        raise EmptyResultError(msg)
    naive = timeline["timestamp"].dt.tz_convert("UTC").dt.tz_localize(None)
    start = naive.dt.to_period(freq).dt.start_time.dt.tz_localize("UTC")
    frame = timeline.assign(period_start=start)
    grouped = frame.groupby(["period_start", "kind"], sort=True)
    out = grouped.size().rename("count").reset_index()
    top = grouped["event"].agg(lambda s: ", ".join(s.value_counts().head(3).index.astype(str))).rename("events").reset_index()
    return out.merge(top, on=["period_start", "kind"], how="left")


def customer_profile_data(
    store: Store,
    *,
    definition: JourneyDefinition,
    customer_id: str,
    risk_scores: pd.DataFrame | None = None,
    ticket_scores: pd.DataFrame | None = None,
    min_peers: int = MIN_PEERS,
    as_of: Any = None,
    segment: str | None = None,
    plan: str | None = None,
    sample_n: int = 0,
    scope: Scope | None = None,
    cache: ResultCache | None = None,
) -> pd.DataFrame:
    """Return one row describing one customer: who, where in the journey against peers, risk, sentiment.

    Peers are the customers of the same segment (every segment when that
    has fewer than *min_peers*) who entered the same stage and progressed
    out of it, among every customer of the store as of ``as_of`` (not only
    the scope's sample); their days in the stage give the median, p75 and
    p90. ``progress`` follows :func:`journeylib.journey.stages.progress_data`
    for a customer still in the stage (``on_track`` ≤ p75, ``behind`` ≤
    p90, ``stuck`` beyond, ``no_peers``); a customer whose time in the stage
    has ended gets its status (``churned``, ``dropped``, ``completed``).

    Parameters
    ----------
    store : Store
        The canonical store.
    definition : JourneyDefinition
        The stages.
    customer_id : str
        The customer.
    risk_scores : pandas.DataFrame, optional
        The scored table of ``journeylib score`` or the ``risk_scores``
        artifact of the churn-risk report (``customer_id``, ``risk``,
        ``risk_band``, ``reasons``). Without it, or when the customer is not
        in it (only active customers are scored), ``risk`` is NaN and
        ``risk_note`` says why.
    ticket_scores : pandas.DataFrame, optional
        Scored tickets (``Journey.scored_tickets()``); without it the
        customer's own tickets are scored here (VADER).
    min_peers : int, default 20
        Fewest peers of the own segment.
    as_of, segment, plan, sample_n, scope
        Which customers, as of when.
    cache : ResultCache, optional
        Share the milestone frame.

    Returns
    -------
    pandas.DataFrame
        One row, :data:`PROFILE_COLUMNS`: ``customer_id``, ``name``,
        ``segment``, ``plan``, ``signup_at``, ``converted_at``,
        ``churned_at`` (UTC; outcomes after as_of blank), ``as_of``;
        ``stage`` (entered last; ``"(no stage entered)"``),
        ``stage_entered_at``, ``days_in_stage`` (to exit or as_of),
        ``stage_status`` (as ``stage_intervals_data``); ``peer_group``
        (segment or ``"all"``), ``peers``, ``peer_median_days``,
        ``peer_p75_days``, ``peer_p90_days``; ``progress``; ``risk`` (0–1),
        ``risk_band``, ``risk_reasons``, ``risk_note`` (empty when scored);
        ``events`` (events by as_of), ``last_activity_at`` (UTC, latest
        event); ``tickets``, ``mean_sentiment`` (mean compound, NaN without
        tickets), ``negative_tickets`` (compound ≤ -0.05),
        ``last_ticket_emotion``.

    Raises
    ------
    EmptyResultError
        If the customer is not in scope.
    """
    scope = _resolve(store, scope, definition, "customer_profile_data",
                     {"as_of": as_of, "segment": segment, "plan": plan, "sample_n": sample_n})
    person = _one_customer(store, scope, customer_id, "customer_profile_data").iloc[0]
    cid = str(customer_id)
    everyone = scope.replace(segment=None, sample_n=0)
    iv = _intervals(store, definition, everyone, cache)
    mine = iv[iv["customer_id"] == cid].sort_values(["entered_at", "stage_order"], kind="mergesort")
    out: dict[str, Any] = {
        "customer_id": cid, "name": person.get("name"), "segment": person.get("segment"), "plan": person.get("plan"),
        "signup_at": pd.Timestamp(person["signup_at"]), "converted_at": person.get("converted_at"),
        "churned_at": person.get("churned_at"), "as_of": pd.Timestamp(scope.as_of),
        "stage": "(no stage entered)", "stage_entered_at": pd.NaT, "days_in_stage": np.nan, "stage_status": "",
        "peer_group": "", "peers": 0, "peer_median_days": np.nan, "peer_p75_days": np.nan, "peer_p90_days": np.nan,
        "progress": "",
    }
    if len(mine):
        cur = mine.iloc[-1]
        done = iv[(iv["status"] == "progressed") & (iv["stage_order"] == cur["stage_order"])]
        peers = done[done["segment"] == cur["segment"]]
        group = str(cur["segment"])
        if len(peers) < min_peers:
            peers, group = done, "all"
        days = peers["days_in_stage"].to_numpy(dtype=float)
        p50, p75, p90 = (float(np.quantile(days, q)) if len(days) else np.nan for q in (0.5, 0.75, 0.9))
        d = float(cur["days_in_stage"])
        if cur["status"] == "in_progress":
            progress = "no_peers" if not len(days) else "on_track" if d <= p75 else "behind" if d <= p90 else "stuck"
        else:
            progress = str(cur["status"])
        out.update(stage=str(cur["stage"]), stage_entered_at=cur["entered_at"], days_in_stage=d, stage_status=str(cur["status"]),
                   peer_group=group, peers=len(days), peer_median_days=p50, peer_p75_days=p75, peer_p90_days=p90, progress=progress)
    out.update(risk=np.nan, risk_band="", risk_reasons="", risk_note="")
    if risk_scores is None:
        out["risk_note"] = "no risk score table was given (run `journeylib score` or the churn-risk report)"
    else:
        hit = risk_scores[risk_scores["customer_id"].astype(str) == cid]
        if hit.empty:
            out["risk_note"] = "not in the risk score table (only active paying customers are scored)"
        else:
            h = hit.iloc[0]
            out.update(risk=float(h.get("risk", np.nan)), risk_band=str(h.get("risk_band", "")), risk_reasons=str(h.get("reasons", "")))
    counts = store.query(
        f"SELECT count(*) AS n, max(e.timestamp) AS last_at FROM ({scope.events_sql()}) e WHERE e.customer_id = $cid", {"cid": cid}
    )
    out["events"] = int(counts["n"].iloc[0])
    out["last_activity_at"] = pd.to_datetime(counts["last_at"], utc=True).iloc[0]
    tickets, mine_t = _customer_tickets(store, cid, scope.as_of, ticket_scores)
    out["tickets"] = len(tickets)
    out.update(mean_sentiment=np.nan, negative_tickets=0, last_ticket_emotion="")
    if len(tickets) and len(mine_t):
        comp = pd.to_numeric(mine_t["compound"], errors="coerce")
        out["mean_sentiment"] = float(comp.mean())
        out["negative_tickets"] = int((comp <= -0.05).sum())
        if "created_at" in mine_t.columns:
            mine_t = mine_t.sort_values("created_at")
        out["last_ticket_emotion"] = str(mine_t["emotion"].iloc[-1]) if "emotion" in mine_t else ""
    frame = pd.DataFrame([out])
    for col in ("signup_at", "converted_at", "churned_at", "as_of", "stage_entered_at", "last_activity_at"):
        frame[col] = pd.to_datetime(frame[col], utc=True)
    return frame[list(PROFILE_COLUMNS)]
