r"""Zendesk Support export reader: tickets, users, organizations, ticket events.

Reads the JSON returned by the Zendesk Support API's list and incremental
export endpoints (https://developer.zendesk.com/api-reference/ticketing/tickets/tickets/,
https://developer.zendesk.com/api-reference/ticketing/ticket-management/incremental_exports/):

``{"tickets": [...]}``
    tickets with ``id``, ``created_at``, ``updated_at``, ``subject``,
    ``description``, ``status``, ``priority``, ``type``, ``via.channel``,
    ``requester_id``, ``organization_id``, ``tags``, ``satisfaction_rating``
    (``score`` good/bad/offered/unoffered, ``comment``), and with
    ``include=metric_sets`` a ``metric_set`` (``solved_at``) or, from the
    full export, inline ``comments``;
``{"users": [...]}``
    people with ``id``, ``email``, ``name``, ``role``, ``organization_id``;
``{"organizations": [...]}``
    accounts with ``id``, ``name``, ``domain_names``, ``external_id``;
``{"ticket_events": [...]}``
    the incremental ticket event export with ``child_events`` (``Comment``
    bodies, ``Change`` of ``status``).

JSON Lines of such objects (the full JSON export) are recognised too. The
kind comes from the top-level key or the records' fields.

Mapping
-------
* tickets → ``tickets`` (``ticket_id`` ``<source>:<id>``; ``body`` = the
  description and any inline comments, text kept; ``satisfaction`` good = 1,
  bad = 0; ``solved_at`` from ``metric_set.solved_at``, else ``updated_at`` of
  a solved/closed ticket, noted; ``updated_at`` kept as the snapshot's own
  time, so an older export of the ticket never replaces a newer one) and
  ``events`` ``ticket_created`` and
  ``ticket_solved``; the ticket refers to the person ``user:<requester_id>``
  and the account ``organization:<organization_id>``, and is itself an
  identity ``ticket:<id>`` that resolves like them (for its comment events);
* users → people ``user:<id>`` (e-mail, organization; agents and admins,
  the support staff, are skipped with a note); organizations →
  accounts ``organization:<id>`` (domain, ``external_id`` as an explicit CRM
  id);
* ticket events → ``events`` ``ticket_comment`` (body kept) and
  ``ticket_status_changed``, referring to ``ticket:<ticket_id>``.

Times are ISO-8601 as the API writes them (``2025-03-01T09:30:00Z``,
``+02:00`` offsets honoured; a time without an offset is UTC) or epoch
seconds.

What cannot be read
-------------------
A record that is not a JSON object, lacks ``id`` (a ticket also
``created_at``, a ticket event ``ticket_id``), whose required time cannot be
read, or that holds a value no column can store (a NUL, a lone surrogate
such as ``"\ud800"``, ``NaN``, a field over ``max_field_bytes``, nesting over
``max_json_depth``: :func:`journeylib.io.common.value_problem`) is
quarantined, and the file goes on. An optional time that cannot be read (a
ticket's ``updated_at`` or ``metric_set.solved_at``, a user's or an
organization's ``created_at``/``updated_at``) is stored empty and noted in
``ingest_notes``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from journeylib.exceptions import SourceFormatError
from journeylib.io.common import (
    Caps,
    Part,
    ReadContext,
    RecordSink,
    as_dict,
    clean,
    decode_text,
    epoch_key,
    first,
    json_records,
    json_text,
    norm_email,
    parse_ts,
    read_bytes,
    text_id,
    time_problem,
    unreadable,
    web_domain,
)
from journeylib.io.registry import VendorReader

NAME = "zendesk"
#: File kinds this reader recognises.
KINDS: tuple[str, ...] = ("tickets", "users", "organizations", "ticket_events")
#: Canonical table each kind mainly feeds.
KIND_TABLES: dict[str, str] = {"tickets": "tickets", "users": "identities", "organizations": "identities", "ticket_events": "events"}
_SATISFACTION = {"good": 1.0, "bad": 0.0}


def _kind_of(rec: dict[str, Any]) -> str | None:
    if "child_events" in rec and "ticket_id" in rec:
        return "ticket_events"
    if "requester_id" in rec or ("subject" in rec and "status" in rec):
        return "tickets"
    if "domain_names" in rec:
        return "organizations"
    if "email" in rec and ("role" in rec or "organization_id" in rec):
        return "users"
    return None


def _load(path: Path, caps: Caps | None = None) -> tuple[str | None, list[tuple[int, Any, str]]]:
    text = decode_text(path, read_bytes(path))
    _, key, recs = json_records(path, text, KINDS, caps)
    if key is not None:
        return key, recs
    for _, v, _ in recs[:50]:
        if isinstance(v, dict) and (k := _kind_of(v)):
            return k, recs
    return None, recs


def detect_kind(path: Path) -> str:
    """Recognise a Zendesk export: ``tickets``, ``users``, ``organizations`` or ``ticket_events``.

    Raises
    ------
    SourceFormatError
        If the file is none of them; the message names what was expected.
    """
    kind, _ = _load(path)
    if kind is None:
        msg = (
            f"{path}: line 1: not a Zendesk export the reader knows. Expected the JSON of the tickets, users, "
            'organizations or incremental ticket_events endpoints ({"tickets": [...]}, ...) or JSON Lines of such records.'
        )
        raise SourceFormatError(msg)
    return kind


def read_zendesk(path: str | Path, ctx: ReadContext) -> Iterator[Part]:
    """Read a Zendesk export file of any of its kinds.

    Parameters
    ----------
    path : str or pathlib.Path
        The JSON (or JSON Lines) file.
    ctx : ReadContext
        Source label; notes receive assumptions (``solved_at`` approximated).

    Yields
    ------
    Part
        ``tickets``, ``events``, ``identities`` and ``rejects`` parts.

    Raises
    ------
    SourceFormatError
        If the file is not a Zendesk export.
    """
    p = Path(path)
    found, recs = _load(p, ctx.caps)
    kind = found or detect_kind(p)
    sink = RecordSink(str(p))
    handler = {"tickets": _ticket, "users": _user, "organizations": _organization, "ticket_events": _ticket_event}[kind]
    required = {"tickets": ("id", "created_at"), "users": ("id",), "organizations": ("id",), "ticket_events": ("id", "ticket_id")}[kind]
    for line, rec, raw in recs:
        if reason := unreadable(rec, kind[:-1]):
            sink.reject(line, raw, reason)
        elif miss := [f for f in required if text_id(rec.get(f)) is None]:
            sink.reject(line, raw, f"missing required field(s) {', '.join(miss)} of a Zendesk {kind[:-1]}")
        else:
            with sink.record(line, raw):
                handler(sink, ctx, line, raw, rec)
    yield from sink.parts()


def _as_text(value: Any, parsed: Any) -> Any:
    """Return a time as the export wrote it when that is text, else as ISO-8601 UTC text (None when unread)."""
    if parsed is None:
        return None
    return clean(value) if isinstance(value, str) else parsed.isoformat()


def _time(sink: RecordSink, line: int, table: str, key: str, rec: dict[str, Any], name: str) -> Any:
    """Read the optional time *name* (a dotted path) of a record; one that cannot be read is noted and empty."""
    value = first(rec, name)
    if reason := time_problem(value, "an ISO-8601 time such as 2025-03-01T09:30:00Z"):
        sink.note(line, table, key, name, value, reason)
        return None
    return parse_ts(value)[0]


def _ticket(sink: RecordSink, ctx: ReadContext, line: int, raw: str, rec: dict[str, Any]) -> None:
    created, _ = parse_ts(rec.get("created_at"))
    if created is None:
        sink.reject(line, raw, f"created_at: expected an ISO-8601 time, found {rec.get('created_at')!r}")
        return
    tid = text_id(rec["id"])
    src = ctx.source
    updated = _time(sink, line, "tickets", f"{src}:{tid}", rec, "updated_at")
    status = (clean(rec.get("status")) or "").lower() or None
    solved = _time(sink, line, "tickets", f"{src}:{tid}", rec, "metric_set.solved_at")
    if solved is None and status in ("solved", "closed") and updated is not None:
        solved = updated
        ctx.notes["solved_at taken from updated_at (no metric_set)"] += 1
    comments = [as_dict(c) for c in rec.get("comments") or [] if isinstance(c, dict)]
    texts = [str(clean(rec.get("description")) or "")] + [str(clean(c.get("plain_body")) or clean(c.get("body")) or "") for c in comments[1:]]
    body = "\n\n".join(t for t in texts if t) or None
    sat = as_dict(rec.get("satisfaction_rating"))
    score = str(sat.get("score") or "").lower()
    requester = text_id(rec.get("requester_id"))
    org = text_id(rec.get("organization_id"))
    person = f"user:{requester}" if requester else None
    account = f"organization:{org}" if org else None
    props = {
        "zendesk_id": tid, "type": clean(rec.get("type")), "tags": rec.get("tags") or None,
        "satisfaction_score": score or None, "satisfaction_comment": clean(sat.get("comment")),
        "group_id": rec.get("group_id"), "assignee_id": rec.get("assignee_id"), "updated_at": rec.get("updated_at"),
    }  # fmt: skip
    ticket_id = f"{src}:{tid}"
    sink.add(
        "tickets", line, raw, ticket_id=ticket_id, created_at=created, solved_at=solved,
        channel=clean(first(rec, "via.channel")), subject=clean(rec.get("subject")), body=body, status=status,
        priority=(clean(rec.get("priority")) or "").lower() or None, satisfaction=_SATISFACTION.get(score),
        properties=json_text(props), updated_at=updated, _person_ref=person, _account_ref=account,
    )  # fmt: skip
    ev_props = json_text({"ticket_id": ticket_id, "channel": clean(first(rec, "via.channel"))})
    sink.add("events", line, raw, event_id=f"{ticket_id}:created", timestamp=created, event="ticket_created", properties=ev_props, _person_ref=person, _account_ref=account)
    if solved is not None:
        sink.add("events", line, raw, event_id=f"{ticket_id}:solved:{epoch_key(solved)}", timestamp=solved, event="ticket_solved", properties=ev_props, _person_ref=person, _account_ref=account)
    # the ticket as an alias: its comment events resolve like the ticket (organization, else requester)
    sink.add("identities", line, raw, source_id=f"ticket:{tid}", kind="alias", account_ref=account or person, link_id=person if account else None, updated_at=updated or created)


def _user(sink: RecordSink, ctx: ReadContext, line: int, raw: str, rec: dict[str, Any]) -> None:
    if str(rec.get("role", "")).lower() in ("agent", "admin"):
        ctx.notes["agents and admins skipped (support staff, not customers)"] += 1
        return
    key = f"user:{text_id(rec['id'])}"
    modified, created = _time(sink, line, "identities", key, rec, "updated_at"), _time(sink, line, "identities", key, rec, "created_at")
    updated = modified or created
    org = text_id(rec.get("organization_id"))
    attrs = {"role": clean(rec.get("role")), "created_at": _as_text(rec.get("created_at"), created), "name": clean(rec.get("name"))}
    sink.add(
        "identities", line, raw, source_id=key, kind="person", email=norm_email(rec.get("email")),
        account_ref=f"organization:{org}" if org else None, updated_at=updated, attributes=json_text(attrs),
    )  # fmt: skip


def _organization(sink: RecordSink, ctx: ReadContext, line: int, raw: str, rec: dict[str, Any]) -> None:
    key = f"organization:{text_id(rec['id'])}"
    modified, created = _time(sink, line, "identities", key, rec, "updated_at"), _time(sink, line, "identities", key, rec, "created_at")
    updated = modified or created
    domains = rec.get("domain_names") or []
    domain = web_domain(domains[0]) if isinstance(domains, list) and domains else None
    attrs = {"name": clean(rec.get("name")), "domain": domain, "signup_at": _as_text(rec.get("created_at"), created), "properties": {"tags": rec.get("tags") or None}}
    sink.add(
        "identities", line, raw, source_id=key, kind="account", name=clean(rec.get("name")),
        domain=domain, link_id=text_id(rec.get("external_id")), updated_at=updated, attributes=json_text(attrs),
    )  # fmt: skip


def _ticket_event(sink: RecordSink, ctx: ReadContext, line: int, raw: str, rec: dict[str, Any]) -> None:
    ts, _ = parse_ts(rec.get("created_at") or rec.get("timestamp"))
    if ts is None:
        sink.reject(line, raw, f"created_at: expected an ISO-8601 time, found {rec.get('created_at')!r}")
        return
    tid = text_id(rec["ticket_id"])
    ticket_id = f"{ctx.source}:{tid}"
    ref = f"ticket:{tid}"
    children = [c for c in rec.get("child_events") or [] if isinstance(c, dict)]
    for c in children:
        etype = str(c.get("event_type", ""))
        cid = text_id(c.get("id")) or f"{text_id(rec['id'])}-{children.index(c)}"
        if etype == "Comment":
            props = {"ticket_id": ticket_id, "public": c.get("public"), "author_id": text_id(c.get("author_id")), "body": clean(c.get("body"))}
            sink.add("events", line, raw, event_id=f"{ctx.source}:comment:{cid}", timestamp=ts, event="ticket_comment", properties=json_text(props), _account_ref=ref)
        elif etype == "Change" and c.get("field_name") == "status":
            props = {"ticket_id": ticket_id, "from": c.get("previous_value"), "to": c.get("value")}
            sink.add("events", line, raw, event_id=f"{ctx.source}:change:{cid}", timestamp=ts, event="ticket_status_changed", properties=json_text(props), _account_ref=ref)


#: This reader as :mod:`journeylib.io.registry` lists it.
READER = VendorReader(
    name=NAME,
    category="support",
    detect_kind=detect_kind,
    read=read_zendesk,
    kind_tables=KIND_TABLES,
    order=30,
    account_rank=4,
)
