r"""Intercom export reader: conversations (with their parts), contacts, companies.

Reads the JSON returned by the Intercom REST API
(https://developers.intercom.com/docs/references/rest-api/api.intercom.io/conversations/,
.../contacts/, .../companies/):

conversations
    ``{"type": "conversation.list", "conversations": [...]}`` (or JSON Lines
    of ``"type": "conversation"`` objects, as retrieved one by one). A
    conversation has ``id``, ``created_at``/``updated_at`` (epoch seconds),
    ``title``, ``state`` (open, closed, snoozed), ``priority``
    (priority/not_priority), ``source`` (``type``, ``delivered_as``,
    ``subject``, ``body`` HTML, ``author``), ``contacts.contacts[]``,
    ``conversation_rating`` (``rating`` 1-5, ``remark``), ``statistics``
    (``last_close_at``), ``tags.tags[]`` and ``conversation_parts.conversation_parts[]``
    (``part_type``, ``body``, ``created_at``, ``author``);
contacts
    ``{"type": "list", "data": [{"type": "contact", "id", "external_id",
    "email", "role", "name", "created_at", "updated_at", "companies": {"data": [{"id"}]}}]}``;
companies
    ``{"type": "list", "data": [{"type": "company", "id", "company_id",
    "name", "website", "created_at", "updated_at"}]}``.

Mapping
-------
* a conversation → ``tickets`` row (``ticket_id`` ``<source>:<id>``; body =
  the customer's words as text, HTML tags removed: the opening message
  (unless an admin or bot sent it) and the comment parts of users, leads
  and contacts, never admins' replies or internal notes;
  status open → open, snoozed → pending, closed → closed; priority →
  high/normal; ``satisfaction`` = (rating − 1) / 4; ``solved_at`` =
  ``statistics.last_close_at`` of a closed conversation, else its
  ``updated_at``; ``updated_at`` kept as the snapshot's own time, so an
  older export of the conversation never replaces a newer one) plus
  ``ticket_created``/``ticket_solved`` events; it refers to the person
  ``contact:<first contact id>``;
* every conversation part with a message (comments, notes, and assignments
  or closes written with a reply) → an ``events`` row ``ticket_comment``, as
  the Zendesk reader writes comments: ``event_id`` ``<source>:comment:<part
  id>``, ``timestamp`` the part's ``created_at``, ``properties``
  ``ticket_id``, ``author_id``, ``author_role`` (:func:`part_author_role`:
  ``customer`` for a user, lead or contact, ``staff`` for an admin, team or
  bot and for every note), ``public`` (false for a note), ``body``. It lands
  on its conversation's customer; a customer's part refers to its author
  ``contact:<author id>``, a staff part to no person;
* contacts → people ``contact:<id>`` with their first company
  ``company:<id>``; their ``external_id`` (the id your product gave the
  user, often the analytics user id) and ``custom_attributes`` are kept in
  the attributes identity resolution reads; companies → accounts ``company:<id>`` whose
  ``company_id`` (the id you gave the company, often the CRM account id) is
  an explicit id.

Times are epoch seconds, as the API writes them (ISO-8601 is read too).

What cannot be read
-------------------
A record that is not a JSON object, lacks ``id``, whose ``created_at`` (of a
conversation) cannot be read, or that holds a value no column can store (a
NUL, a lone surrogate such as ``"\ud800"`` in a title, ``NaN``, a field over
``max_field_bytes``, nesting over ``max_json_depth``:
:func:`journeylib.io.common.value_problem`) is quarantined, and the file goes
on. An optional value that cannot be read (a conversation's ``updated_at``,
a closed conversation's ``statistics.last_close_at``, a rating that is not 1-5, a contact's or
company's ``created_at``/``updated_at``) is stored empty and noted in
``ingest_notes``.
"""

from __future__ import annotations

import html
import re
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

NAME = "intercom"
#: File kinds this reader recognises.
KINDS: tuple[str, ...] = ("conversations", "contacts", "companies")
#: Canonical table each kind mainly feeds.
KIND_TABLES: dict[str, str] = {"conversations": "tickets", "contacts": "identities", "companies": "identities"}
_STATUS = {"open": "open", "snoozed": "pending", "closed": "closed"}
_TAG = re.compile(r"<[^>]+>")


def _text(body: Any) -> str:
    if not isinstance(body, str):
        return ""
    s = re.sub(r"(?i)<br\s*/?>|</p>", "\n", body)
    return html.unescape(_TAG.sub("", s)).strip()


def _kind_of(rec: dict[str, Any]) -> str | None:
    t = str(rec.get("type", ""))
    if t == "conversation" or "conversation_parts" in rec:
        return "conversations"
    if t == "contact" or ("role" in rec and "email" in rec):
        return "contacts"
    if t == "company" or "company_id" in rec:
        return "companies"
    return None


def _load(path: Path, caps: Caps | None = None) -> tuple[str | None, list[tuple[int, Any, str]]]:
    text = decode_text(path, read_bytes(path))
    _, key, recs = json_records(path, text, ("conversations", "data", "contacts", "companies"), caps)
    for _, v, _ in recs[:50]:
        if isinstance(v, dict) and (k := _kind_of(v)):
            return k, recs
    if key in ("conversations", "contacts", "companies"):
        return key, recs
    return None, recs


def detect_kind(path: Path) -> str:
    """Recognise an Intercom export: ``conversations``, ``contacts`` or ``companies``.

    Raises
    ------
    SourceFormatError
        If the file is none of them.
    """
    kind, _ = _load(path)
    if kind is None:
        msg = (
            f"{path}: line 1: not an Intercom export the reader knows. Expected the JSON of the conversations, "
            'contacts or companies endpoints (objects with "type": "conversation", "contact" or "company").'
        )
        raise SourceFormatError(msg)
    return kind


def read_intercom(path: str | Path, ctx: ReadContext) -> Iterator[Part]:
    """Read an Intercom export file of any of its kinds.

    Parameters
    ----------
    path : str or pathlib.Path
        The JSON (or JSON Lines) file.
    ctx : ReadContext
        Source label.

    Yields
    ------
    Part
        ``tickets``, ``events``, ``identities`` and ``rejects`` parts.

    Raises
    ------
    SourceFormatError
        If the file is not an Intercom export.
    """
    p = Path(path)
    found, recs = _load(p, ctx.caps)
    kind = found or detect_kind(p)
    sink = RecordSink(str(p))
    handler = {"conversations": _conversation, "contacts": _contact, "companies": _company}[kind]
    for line, rec, raw in recs:
        if reason := unreadable(rec, kind[:-1]):
            sink.reject(line, raw, reason)
        elif text_id(rec.get("id")) is None:
            sink.reject(line, raw, f"missing required field id of an Intercom {kind[:-1]}")
        elif _kind_of(rec) not in (kind, None):
            sink.reject(line, raw, f"unexpected record of type {rec.get('type')!r} in a {kind} export")
        else:
            with sink.record(line, raw):
                handler(sink, ctx, line, raw, rec)
    yield from sink.parts()


def _time(sink: RecordSink, line: int, table: str, key: str, rec: dict[str, Any], *names: str) -> Any:
    """Read the first present of the optional times *names* (dotted paths); one that cannot be read is noted and empty."""
    name = next((n for n in names if first(rec, n) is not None), names[0])
    value = first(rec, name)
    if reason := time_problem(value, "epoch seconds"):
        sink.note(line, table, key, name, value, reason)
        return None
    return parse_ts(value)[0]


def _conversation(sink: RecordSink, ctx: ReadContext, line: int, raw: str, rec: dict[str, Any]) -> None:
    created, _ = parse_ts(rec.get("created_at"))
    if created is None:
        sink.reject(line, raw, f"created_at: expected epoch seconds, found {rec.get('created_at')!r}")
        return
    cid = text_id(rec["id"])
    ticket_id = f"{ctx.source}:{cid}"
    state = (clean(rec.get("state")) or "").lower()
    updated = _time(sink, line, "tickets", ticket_id, rec, "updated_at")
    solved = None
    if state == "closed":
        closed_at = first(rec, "statistics.last_close_at") is not None
        solved = _time(sink, line, "tickets", ticket_id, rec, "statistics.last_close_at") if closed_at else updated
    src = as_dict(rec.get("source"))
    parts = [as_dict(x) for x in as_dict(rec.get("conversation_parts")).get("conversation_parts") or []]
    # the customer's words: the opening message unless staff sent it (an outbound message), and the customers' parts
    said = [x for x in parts if x.get("part_type") in ("comment", "note") and part_author_role(x) == "customer"]
    texts = [_text(src.get("body")) if part_author_role(src) != "staff" else ""] + [_text(x.get("body")) for x in said]
    contacts = [as_dict(c) for c in as_dict(rec.get("contacts")).get("contacts") or []]
    opener = text_id(first(src, "author.id")) if part_author_role(src) == "customer" else None
    contact = text_id(contacts[0].get("id")) if contacts else opener
    person = f"contact:{contact}" if contact else None
    rating = as_dict(rec.get("conversation_rating"))
    r = rating.get("rating")
    satisfaction = (float(r) - 1) / 4 if isinstance(r, (int, float)) and not isinstance(r, bool) and 1 <= r <= 5 and float(r).is_integer() else None
    if satisfaction is not None:
        ctx.notes["satisfaction: Intercom conversation_rating 1-5 rescaled to 0..1 as (r - 1) / 4"] += 1
    elif clean(r) is not None:
        sink.note(line, "tickets", ticket_id, "conversation_rating.rating", r, "expected a whole rating from 1 to 5")
        ctx.notes["conversation_rating.rating: not a whole rating from 1 to 5, stored as empty"] += 1
    channel = "email" if src.get("delivered_as") == "customer_initiated" and src.get("type") == "email" else ("email" if src.get("type") == "email" else "chat")
    tags = [t.get("name") for t in as_dict(rec.get("tags")).get("tags") or [] if isinstance(t, dict)]
    props = {"intercom_id": cid, "state": state or None, "tags": tags or None, "rating_remark": clean(rating.get("remark")), "source_type": src.get("type"), "parts": len(parts)}
    sink.add(
        "tickets", line, raw, ticket_id=ticket_id, created_at=created, solved_at=solved, channel=channel,
        subject=clean(src.get("subject")) or clean(rec.get("title")), body="\n\n".join(t for t in texts if t) or None,
        status=_STATUS.get(state, state or None), priority="high" if rec.get("priority") == "priority" else "normal",
        satisfaction=satisfaction, properties=json_text(props), updated_at=updated, _person_ref=person,
    )  # fmt: skip
    ev_props = json_text({"ticket_id": ticket_id, "channel": channel})
    sink.add("events", line, raw, event_id=f"{ticket_id}:created", timestamp=created, event="ticket_created", properties=ev_props, _person_ref=person)
    if solved is not None:
        sink.add("events", line, raw, event_id=f"{ticket_id}:solved:{epoch_key(solved)}", timestamp=solved, event="ticket_solved", properties=ev_props, _person_ref=person)
    for n, x in enumerate(parts):
        text = _text(x.get("body"))
        if not text:  # assignments, closes and opens without a message
            continue
        pid = text_id(x.get("id")) or f"{cid}-{n}"
        at = x.get("created_at")
        if reason := time_problem(at, "epoch seconds"):
            sink.note(line, "events", f"{ctx.source}:comment:{pid}", f"conversation_parts[{n}].created_at", at, f"{reason}; the part gives no ticket_comment event")
            continue
        ts, _ = parse_ts(at)
        if ts is None:
            sink.note(line, "events", f"{ctx.source}:comment:{pid}", f"conversation_parts[{n}].created_at", at, "no time; the part gives no ticket_comment event")
            continue
        role = part_author_role(x)
        author = text_id(first(x, "author.id"))
        props = {"ticket_id": ticket_id, "public": x.get("part_type") != "note", "author_id": author, "author_role": role, "body": text}
        ctx.notes[f"conversation parts by {role} authors"] += 1
        # the part lands on its conversation's customer (through the conversation's contact); a customer's part refers to its author
        sink.add("events", line, raw, event_id=f"{ctx.source}:comment:{pid}", timestamp=ts, event="ticket_comment", properties=json_text(props),
                 _account_ref=person, _person_ref=f"contact:{author}" if role == "customer" and author else None)  # fmt: skip


#: Intercom author types of people of the customer, and of the company's own staff (admins, teams, bots acting for them).
CUSTOMER_AUTHORS: frozenset[str] = frozenset({"user", "lead", "contact"})
STAFF_AUTHORS: frozenset[str] = frozenset({"admin", "team", "bot"})


def part_author_role(part: dict[str, Any]) -> str:
    """Return who wrote a conversation part or a conversation's ``source``: ``customer``, ``staff`` or ``unknown``.

    Parameters
    ----------
    part : dict
        A conversation part (or ``source``) with ``author.type``.

    Returns
    -------
    str
        ``customer`` for a ``user``, ``lead`` or ``contact`` author;
        ``staff`` for an ``admin``, ``team`` or ``bot`` author and for any
        ``note`` (internal notes are written by admins); ``unknown``
        otherwise.

    Examples
    --------
    >>> part_author_role({"part_type": "comment", "author": {"type": "admin", "id": "274"}})
    'staff'
    >>> part_author_role({"part_type": "comment", "author": {"type": "user", "id": "5ba6"}})
    'customer'
    """
    kind = str(first(part, "author.type") or "").strip().lower()
    if kind in STAFF_AUTHORS or part.get("part_type") == "note":
        return "staff"
    return "customer" if kind in CUSTOMER_AUTHORS else "unknown"


def _contact(sink: RecordSink, ctx: ReadContext, line: int, raw: str, rec: dict[str, Any]) -> None:
    key = f"contact:{text_id(rec['id'])}"
    modified, created = _time(sink, line, "identities", key, rec, "updated_at"), _time(sink, line, "identities", key, rec, "created_at")
    updated = modified or created
    companies = [as_dict(c) for c in as_dict(rec.get("companies")).get("data") or []]
    company = text_id(companies[0].get("id")) if companies else None
    attrs = {"role": clean(rec.get("role")), "name": clean(rec.get("name")), "created_at": created.isoformat() if created else None, "external_id": text_id(rec.get("external_id")),
             "properties": as_dict(rec.get("custom_attributes")) or None}  # fmt: skip
    sink.add(
        "identities", line, raw, source_id=key, kind="person", email=norm_email(rec.get("email")),
        account_ref=f"company:{company}" if company else None, updated_at=updated, attributes=json_text(attrs),
    )  # fmt: skip


def _company(sink: RecordSink, ctx: ReadContext, line: int, raw: str, rec: dict[str, Any]) -> None:
    key = f"company:{text_id(rec['id'])}"
    modified, created = _time(sink, line, "identities", key, rec, "updated_at"), _time(sink, line, "identities", key, rec, "created_at")
    updated = modified or created
    domain = web_domain(rec.get("website"))
    attrs = {"name": clean(rec.get("name")), "domain": domain, "signup_at": created.isoformat() if created else None, "plan": clean(first(rec, "plan.name")), "properties": as_dict(rec.get("custom_attributes")) or None}
    sink.add(
        "identities", line, raw, source_id=key, kind="account", name=clean(rec.get("name")),
        domain=domain, link_id=text_id(rec.get("company_id")), updated_at=updated, attributes=json_text(attrs),
    )  # fmt: skip


#: This reader as :mod:`journeylib.io.registry` lists it.
READER = VendorReader(
    name=NAME,
    category="support",
    detect_kind=detect_kind,
    read=read_intercom,
    kind_tables=KIND_TABLES,
    order=40,
    account_rank=3,
)
