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
    bodies, ``Change`` of ``status``);
``{"comments": [...]}``
    the Ticket Comments endpoint (``GET /api/v2/tickets/{ticket_id}/comments``,
    https://developer.zendesk.com/api-reference/ticketing/tickets/ticket_comments/),
    one file per ticket: comments with ``id``, ``created_at``, ``author_id``,
    ``body`` (else ``plain_body``), ``public``, ``via``. The ticket is the
    comment's own ``ticket_id`` (or ``audit.ticket_id``) when an export added
    it, else the file's top-level ``ticket_id``, else the number in the file
    name (``35436.json``, ``ticket_35436_comments.json``; with several
    numbers the one after ``ticket``) or in its folder's name
    (``35436/comments.json``);
``{"audits": [...]}``
    the Ticket Audits endpoints (``GET /api/v2/tickets/{ticket_id}/audits``,
    ``GET /api/v2/ticket_audits``,
    https://developer.zendesk.com/api-reference/ticketing/tickets/ticket_audits/):
    audits with ``id``, ``ticket_id``, ``created_at``, ``author_id``,
    ``via`` and ``events`` (``Comment`` and ``VoiceComment``, ``Change`` of
    ``status``).

JSON Lines of such objects (the full JSON export) and a top-level array of
comments are recognised too. The kind comes from the top-level key or the
records' fields. A comments, audits or ticket events file may carry the
authors as sideloaded ``users`` (``include=users``).

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
* ticket events, audits and comments → ``events`` ``ticket_comment`` and
  ``ticket_status_changed``, referring to ``ticket:<ticket_id>`` (a comment
  lands on its ticket's customer). One comment reads the same from every
  kind that carries it (Zendesk gives a comment the id of its audit event):
  ``event_id`` ``<source>:comment:<id>``, ``timestamp`` its audit's
  ``created_at``, ``properties`` ``ticket_id``, ``author_id``,
  ``author_role``, ``public``, ``body``. A comment written by a customer
  refers to its author ``user:<author_id>`` (``user_id``); one written by
  staff refers to no person.

Conversation authors: staff or customer
---------------------------------------
``author_role`` is decided from the file itself, so the ingest order never
changes it:

1. the author is a user sideloaded in the same file (``include=users``):
   role ``agent`` or ``admin`` → ``staff``, ``end-user`` → ``customer``;
2. otherwise an internal note (``public: false``; only agents write them) →
   ``staff``;
3. otherwise a comment made by a trigger, an automation or the system
   (``via.channel`` ``rule`` or ``system``; ``via`` of the comment, else of
   its audit) → ``staff``;
4. otherwise ``unknown``. The comment then refers to its author
   ``user:<author_id>``: a users export, loaded before or after, makes an
   end-user author a person of the customer (``user_id`` set), while agents
   and admins, which the users reader skips, never become people. So a
   comment is the customer's when ``author_role`` is ``customer``, or it is
   ``unknown`` and its ``user_id`` is set.

A ticket's ``body`` holds the customer's words: the description and, in an
export with inline ``comments``, the later public comments of the requester
(agents' replies and internal notes are left out; inline comments give no
events).

Times are ISO-8601 as the API writes them (``2025-03-01T09:30:00Z``,
``+02:00`` offsets honoured; a time without an offset is UTC) or epoch
seconds.

What cannot be read
-------------------
A record that is not a JSON object, lacks ``id`` (a ticket and a comment
also ``created_at``, a ticket event and an audit ``ticket_id``), whose
required time cannot be read, a comment whose ticket cannot be told, or that holds a value no column can store (a NUL, a lone surrogate
such as ``"\ud800"``, ``NaN``, a field over ``max_field_bytes``, nesting over
``max_json_depth``: :func:`journeylib.io.common.value_problem`) is
quarantined, and the file goes on. An optional time that cannot be read (a
ticket's ``updated_at`` or ``metric_set.solved_at``, a user's or an
organization's ``created_at``/``updated_at``) is stored empty and noted in
``ingest_notes``. A comments file whose ticket neither its records, nor its
top-level ``ticket_id``, nor its file or folder name tell is refused whole,
the message naming the file and how to name it.
"""

from __future__ import annotations

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
    raw_json,
    read_bytes,
    text_id,
    time_problem,
    unreadable,
    web_domain,
)
from journeylib.io.registry import VendorReader

NAME = "zendesk"
#: File kinds this reader recognises.
KINDS: tuple[str, ...] = ("tickets", "users", "organizations", "ticket_events", "comments", "audits")
#: Canonical table each kind mainly feeds.
KIND_TABLES: dict[str, str] = {
    "tickets": "tickets", "users": "identities", "organizations": "identities",
    "ticket_events": "events", "comments": "events", "audits": "events",
}  # fmt: skip
#: Values of a comment's ``properties.author_role``.
AUTHOR_ROLES: tuple[str, ...] = ("customer", "staff", "unknown")
#: ``satisfaction_rating.score`` → ``tickets.satisfaction`` (0..1); ``offered`` / ``unoffered`` carry no rating.
SATISFACTION_SCORES: dict[str, float | None] = {
    "good": 1.0, "bad": 0.0, "good_with_comment": 1.0, "good_without_comment": 1.0,
    "bad_with_comment": 0.0, "bad_without_comment": 0.0, "offered": None, "unoffered": None,
}  # fmt: skip
#: Top-level keys holding records, the conversation kinds first so that sideloaded ``users`` never hide them.
_KEYS: tuple[str, ...] = ("tickets", "ticket_events", "comments", "audits", "users", "organizations")
#: ``via.channel`` of comments no person typed: triggers, automations, system messages.
_AUTOMATED = frozenset({"rule", "system", "automation", "trigger"})
_STAFF_ROLES = frozenset({"agent", "admin"})
_COMMENT_TYPES = frozenset({"Comment", "VoiceComment"})
_REQUIRED: dict[str, tuple[str, ...]] = {
    "tickets": ("id", "created_at"), "users": ("id",), "organizations": ("id",),
    "ticket_events": ("id", "ticket_id"), "comments": ("id", "created_at"), "audits": ("id", "ticket_id", "created_at"),
}  # fmt: skip


def _kind_of(rec: dict[str, Any]) -> str | None:
    if "child_events" in rec and "ticket_id" in rec:
        return "ticket_events"
    if isinstance(rec.get("events"), list) and "ticket_id" in rec:
        return "audits"
    if rec.get("type") in _COMMENT_TYPES or ("author_id" in rec and "public" in rec and ("body" in rec or "plain_body" in rec)):
        return "comments"
    if "requester_id" in rec or ("subject" in rec and "status" in rec):
        return "tickets"
    if "domain_names" in rec:
        return "organizations"
    if "email" in rec and ("role" in rec or "organization_id" in rec):
        return "users"
    return None


def _load(path: Path, caps: Caps | None = None) -> tuple[str | None, dict[str, Any], list[tuple[int, Any, str]]]:
    """Return the file's kind (None when unknown), its top-level object (with sideloaded ``users``) and its records."""
    text = decode_text(path, read_bytes(path))
    top, key, recs = json_records(path, text, _KEYS, caps)
    if key in ("ticket_events", "comments", "audits"):
        # read again with only the records' key, so that sideloaded users stay in the top-level object
        top, key, recs = json_records(path, text, (key,), caps)
    top = top if isinstance(top, dict) else {}
    if key is not None:
        return key, top, recs
    for _, v, _ in recs[:50]:
        if isinstance(v, dict) and (k := _kind_of(v)):
            return k, top, recs
    return None, top, recs


def detect_kind(path: Path) -> str:
    """Recognise a Zendesk export: ``tickets``, ``users``, ``organizations``, ``ticket_events``, ``comments`` or ``audits``.

    Raises
    ------
    SourceFormatError
        If the file is none of them; the message names what was expected.
    """
    kind, _, _ = _load(path)
    if kind is None:
        msg = (
            f"{path}: line 1: not a Zendesk export the reader knows. Expected the JSON of the tickets, users, "
            'organizations, incremental ticket_events, ticket comments or ticket audits endpoints ({"tickets": [...]}, '
            '{"comments": [...]}, ...) or JSON Lines of such records.'
        )
        raise SourceFormatError(msg)
    return kind


_DIGITS = re.compile(r"\d+")
_AFTER_TICKET = re.compile(r"(?i)tickets?[^a-z0-9]?(\d+)")
#: A folder named after its ticket: ``35436``, ``ticket_35436``.
_FOLDER = re.compile(r"(?i)(?:tickets?[^a-z0-9]?)?(\d+)")


def _name_ticket(name: str) -> tuple[str | None, list[str]]:
    """Return the ticket id a file or folder name holds (one number, or the one after ``ticket``) and every number in it."""
    numbers = _DIGITS.findall(name)
    if len(numbers) == 1:
        return numbers[0], numbers
    after = _AFTER_TICKET.findall(name)
    return (after[0], numbers) if len(after) == 1 else (None, numbers)


def comments_ticket_id(path: str | Path) -> str | None:
    """Return the ticket id a per-ticket comments file's name tells, or ``None``.

    The Ticket Comments endpoint lists one ticket's comments without naming
    the ticket, so the id is read from the file name (``35436.json``,
    ``ticket_35436_comments.json``, ``comments-35436-page-2.json`` when one
    number follows ``ticket``...), else from its folder's name
    (``35436/comments.json``, ``ticket-35436/comments.json``: a folder
    named by the number alone).

    Parameters
    ----------
    path : str or pathlib.Path
        The file.

    Returns
    -------
    str or None
        The ticket id, or ``None`` when neither name holds exactly one
        candidate.

    Examples
    --------
    >>> comments_ticket_id("exports/ticket_35436_comments.json")
    '35436'
    >>> comments_ticket_id("exports/35436/comments.json")
    '35436'
    >>> comments_ticket_id("exports/comments.json") is None
    True
    """
    p = Path(path)
    tid, numbers = _name_ticket(p.stem.split(".")[0])
    if tid is None and not numbers and (m := _FOLDER.fullmatch(p.parent.name)):
        tid = m.group(1)
    return tid


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
    found, top, recs = _load(p, ctx.caps)
    kind = found or detect_kind(p)
    sink = RecordSink(str(p))
    conv = _Conversation(ctx, top, p if kind == "comments" else None)
    if kind == "comments" and conv.file_ticket is None and not any(isinstance(r, dict) and _record_ticket(r) for _, r, _ in recs):
        numbers = _DIGITS.findall(p.stem)
        why = f"its name holds several numbers ({', '.join(numbers)}) and none follows 'ticket'" if len(numbers) > 1 else "neither its name nor its folder's holds a ticket number"
        msg = (
            f"{p}: line 1: a Zendesk ticket comments file, but which ticket its comments belong to cannot be told: no comment has "
            f"ticket_id, the file has no top-level ticket_id, and {why}. Name each per-ticket file after its ticket "
            "(35436.json, ticket_35436_comments.json or 35436/comments.json); nothing was loaded."
        )
        raise SourceFormatError(msg)
    for line, rec, raw in conv.sideloaded_users():
        with sink.record(line, raw):
            _user(sink, ctx, line, raw, rec)
    handler = {"tickets": _ticket, "users": _user, "organizations": _organization, "ticket_events": conv.ticket_event, "comments": conv.comment, "audits": conv.audit}[kind]
    what = {"ticket_events": "ticket event", "comments": "comment", "audits": "audit"}.get(kind, kind[:-1])
    for line, rec, raw in recs:
        if reason := unreadable(rec, what):
            sink.reject(line, raw, reason)
        elif miss := [f for f in _REQUIRED[kind] if text_id(rec.get(f)) is None]:
            sink.reject(line, raw, f"missing required field(s) {', '.join(miss)} of a Zendesk {what}")
        else:
            with sink.record(line, raw):
                handler(sink, ctx, line, raw, rec)
    yield from sink.parts()


def _as_text(value: Any, parsed: Any) -> Any:
    """Return a time as the export wrote it when that is text, else as ISO-8601 UTC text (None when unread)."""
    if parsed is None:
        return None
    return clean(value) if isinstance(value, str) else parsed.isoformat()


def _time(sink: RecordSink, line: int | None, table: str, key: str, rec: dict[str, Any], name: str) -> Any:
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
    requester = text_id(rec.get("requester_id"))
    # the customer's words: the description (Zendesk's first comment) and the requester's later public comments
    comments = [as_dict(c) for c in rec.get("comments") or [] if isinstance(c, dict)]
    said = [c for c in comments[1:] if requester is not None and text_id(c.get("author_id")) == requester and c.get("public") is not False]
    texts = [str(clean(rec.get("description")) or "")] + [str(clean(c.get("plain_body")) or clean(c.get("body")) or "") for c in said]
    body = "\n\n".join(t for t in texts if t) or None
    sat = as_dict(rec.get("satisfaction_rating"))
    score = str(sat.get("score") or "").strip().lower()
    satisfaction = SATISFACTION_SCORES.get(score)
    if satisfaction is not None:
        ctx.notes["satisfaction: Zendesk good/bad read as 1/0"] += 1
    elif score and score not in SATISFACTION_SCORES:
        sink.note(line, "tickets", f"{src}:{tid}", "satisfaction_rating.score", sat.get("score"), f"expected one of {', '.join(SATISFACTION_SCORES)}")
        ctx.notes[f"satisfaction_rating.score: unknown value {score[:40]!r}, stored as empty"] += 1
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
        priority=(clean(rec.get("priority")) or "").lower() or None, satisfaction=satisfaction,
        properties=json_text(props), updated_at=updated, _person_ref=person, _account_ref=account,
    )  # fmt: skip
    ev_props = json_text({"ticket_id": ticket_id, "channel": clean(first(rec, "via.channel"))})
    sink.add("events", line, raw, event_id=f"{ticket_id}:created", timestamp=created, event="ticket_created", properties=ev_props, _person_ref=person, _account_ref=account)
    if solved is not None:
        sink.add("events", line, raw, event_id=f"{ticket_id}:solved:{epoch_key(solved)}", timestamp=solved, event="ticket_solved", properties=ev_props, _person_ref=person, _account_ref=account)
    # the ticket as an alias: its comment events resolve like the ticket (organization, else requester)
    sink.add("identities", line, raw, source_id=f"ticket:{tid}", kind="alias", account_ref=account or person, link_id=person if account else None, updated_at=updated or created)


def _user(sink: RecordSink, ctx: ReadContext, line: int | None, raw: str, rec: dict[str, Any]) -> None:
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


def _record_ticket(rec: dict[str, Any]) -> str | None:
    """Return the ticket id a comment record carries itself (``ticket_id``, ``audit.ticket_id``), or None."""
    return text_id(first(rec, "ticket_id", "audit.ticket_id"))


def _channel(via: Any) -> str | None:
    """Return the channel of a ``via`` (an object with ``channel``, or the incremental export's text such as ``"Rule"``), lower case."""
    value = via.get("channel") if isinstance(via, dict) else via
    return str(value).strip().lower() if isinstance(value, str) and value.strip() else None


def _public(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def author_role(*, public: bool | None, channel: str | None, user_role: str | None) -> str:
    """Return who wrote a Zendesk comment: ``customer``, ``staff`` or ``unknown`` (the rule of the module docstring).

    Parameters
    ----------
    public : bool or None
        The comment's ``public`` flag (None when absent).
    channel : str or None
        Its ``via.channel`` (the audit's when the comment has none), lower case.
    user_role : str or None
        The ``role`` of its author when the same file sideloads the author.

    Returns
    -------
    str
        One of :data:`AUTHOR_ROLES`.

    Examples
    --------
    >>> author_role(public=True, channel="web", user_role="agent")
    'staff'
    >>> author_role(public=False, channel="web", user_role=None)
    'staff'
    >>> author_role(public=True, channel="email", user_role=None)
    'unknown'
    """
    role = (user_role or "").strip().lower()
    if role in _STAFF_ROLES:
        return "staff"
    if role == "end-user":
        return "customer"
    if public is False or (channel or "") in _AUTOMATED:
        return "staff"
    return "unknown"


class _Conversation:
    """Reads the conversation kinds (ticket events, audits, comments) of one file, with the authors it sideloads."""

    def __init__(self, ctx: ReadContext, top: dict[str, Any], comments_path: Path | None) -> None:
        self.ctx = ctx
        users = top.get("users")
        self.users = [u for u in users if isinstance(u, dict)] if isinstance(users, list) else []
        self.roles = {uid: str(u.get("role") or "") for u in self.users if (uid := text_id(u.get("id")))}
        self.file_ticket = text_id(top.get("ticket_id")) or (comments_ticket_id(comments_path) if comments_path else None)

    def sideloaded_users(self) -> list[tuple[None, dict[str, Any], str]]:
        """Return the sideloaded users that can be read as users (with ``id``), as records without a line."""
        return [(None, u, raw_json(u)) for u in self.users if text_id(u.get("id")) is not None and unreadable(u, "user") is None]

    def add_comment(self, sink: RecordSink, line: int, raw: str, tid: str, ts: Any, c: dict[str, Any], via: Any, cid: str) -> None:
        """Add one comment as a ``ticket_comment`` event of ticket *tid*."""
        src = self.ctx.source
        author = text_id(c.get("author_id"))
        public = _public(c.get("public"))
        role = author_role(public=public, channel=_channel(via), user_role=self.roles.get(author) if author else None)
        body = clean(c.get("body")) or clean(c.get("plain_body"))
        props = {"ticket_id": f"{src}:{tid}", "public": public, "author_id": author, "author_role": role, "body": body}
        person = f"user:{author}" if author and role != "staff" else None
        self.ctx.notes[f"comments by {role} authors"] += 1
        sink.add("events", line, raw, event_id=f"{src}:comment:{cid}", timestamp=ts, event="ticket_comment", properties=json_text(props),
                 _account_ref=f"ticket:{tid}", _person_ref=person)  # fmt: skip

    def add_status(self, sink: RecordSink, line: int, raw: str, tid: str, ts: Any, c: dict[str, Any], cid: str) -> None:
        """Add one status change as a ``ticket_status_changed`` event of ticket *tid*."""
        src = self.ctx.source
        props = {"ticket_id": f"{src}:{tid}", "from": c.get("previous_value"), "to": c.get("value")}
        sink.add("events", line, raw, event_id=f"{src}:change:{cid}", timestamp=ts, event="ticket_status_changed", properties=json_text(props), _account_ref=f"ticket:{tid}")

    def _children(self, sink: RecordSink, line: int, raw: str, tid: str, ts: Any, rec: dict[str, Any], children: list[Any], type_key: str) -> None:
        kids = [c for c in children if isinstance(c, dict)]
        for n, c in enumerate(kids):
            etype = str(c.get(type_key, ""))
            cid = text_id(c.get("id")) or f"{text_id(rec['id'])}-{n}"
            if etype in _COMMENT_TYPES:
                if "author_id" not in c and rec.get("author_id", rec.get("updater_id")) is not None:
                    c = {**c, "author_id": rec.get("author_id", rec.get("updater_id"))}
                self.add_comment(sink, line, raw, tid, ts, c, c.get("via") or rec.get("via"), cid)
            elif etype == "Change" and c.get("field_name") == "status":
                self.add_status(sink, line, raw, tid, ts, c, cid)

    def ticket_event(self, sink: RecordSink, ctx: ReadContext, line: int, raw: str, rec: dict[str, Any]) -> None:
        """Read one record of the incremental ticket events export."""
        ts, _ = parse_ts(rec.get("created_at") or rec.get("timestamp"))
        if ts is None:
            sink.reject(line, raw, f"created_at: expected an ISO-8601 time, found {rec.get('created_at')!r}")
            return
        self._children(sink, line, raw, str(text_id(rec["ticket_id"])), ts, rec, rec.get("child_events") or [], "event_type")

    def audit(self, sink: RecordSink, ctx: ReadContext, line: int, raw: str, rec: dict[str, Any]) -> None:
        """Read one ticket audit: its ``Comment`` and status ``Change`` events."""
        ts, _ = parse_ts(rec.get("created_at"))
        if ts is None:
            sink.reject(line, raw, f"created_at: expected an ISO-8601 time, found {rec.get('created_at')!r}")
            return
        events = rec.get("events")
        if not isinstance(events, list):
            sink.reject(line, raw, f"events: expected the list of the audit's events, found {type(events).__name__}")
            return
        self._children(sink, line, raw, str(text_id(rec["ticket_id"])), ts, rec, events, "type")

    def comment(self, sink: RecordSink, ctx: ReadContext, line: int, raw: str, rec: dict[str, Any]) -> None:
        """Read one comment of the Ticket Comments endpoint."""
        ts, _ = parse_ts(rec.get("created_at"))
        if ts is None:
            sink.reject(line, raw, f"created_at: expected an ISO-8601 time, found {rec.get('created_at')!r}")
            return
        own = _record_ticket(rec)
        tid = own or self.file_ticket
        if tid is None:
            sink.reject(line, raw, "no ticket id: the comment has no ticket_id and the file's name and top-level object name no ticket")
            return
        if own and self.file_ticket and own != self.file_ticket:
            ctx.notes["comments whose own ticket_id differs from the file's ticket (their own used)"] += 1
        self.add_comment(sink, line, raw, tid, ts, rec, rec.get("via"), str(text_id(rec["id"])))


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
