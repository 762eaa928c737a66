r"""SendGrid Event Webhook reader.

Reads stored payloads of SendGrid's Event Webhook
(https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/event):
each POST body is a JSON array of event objects with ``email``,
``timestamp`` (epoch seconds), ``event`` (``processed``, ``dropped``,
``delivered``, ``deferred``, ``bounce``, ``open``, ``click``,
``spamreport``, ``unsubscribe``, ``group_unsubscribe``,
``group_resubscribe``), ``sg_event_id`` (unique per event),
``sg_message_id``, ``category`` (text or list) and optional ``url``,
``reason``, ``type``, ``ip``, ``useragent`` and custom arguments. A file may
hold one array, or JSON Lines of arrays (one POST per line) or of objects.

Mapping
-------
* every event → ``events`` row ``email_<status>`` (``email_delivered``,
  ``email_opened``, ``email_clicked``, ``email_bounced``,
  ``email_unsubscribed``, ``email_processed``, ``email_deferred``,
  ``email_dropped``, ``email_spamreport``, ``email_resubscribed``);
* delivered, open, click, bounce and (group) unsubscribe also → ``messages``
  row with status delivered, opened, clicked, bounced, unsubscribed;
* ids are ``<source>:<sg_event_id>`` (md5 of e-mail, time, event, message
  and url when absent), ``campaign`` is the ``campaign`` custom argument or
  the first category; the recipient is the person ``email:<address>``;
* a ``messages`` row's ``properties.send_id`` names its e-mail
  (:func:`send_id`), so that an ``open`` or ``click`` whose ``delivered``
  event is missing (webhooks configured for engagement only, images
  blocked) implies it; the file's notes count such e-mails (implied
  statuses are not stored: :mod:`journeylib.store.values`).

``timestamp`` is epoch seconds (UTC), as the webhook sends it.

What cannot be read
-------------------
An event that is not a JSON object, lacks ``email``, ``timestamp`` or
``event``, has an unknown event type or a time that is not a time, or holds
a value no column can store (a NUL, a lone surrogate such as ``"\ud800"`` in
a campaign, ``NaN``, a field over ``max_field_bytes``, nesting over
``max_json_depth``: :func:`journeylib.io.common.value_problem`) is
quarantined, alone: the other events of its POST and of the file are read.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from journeylib.exceptions import SourceFormatError
from journeylib.io.common import (
    BadRecord,
    Caps,
    Part,
    ReadContext,
    RecordSink,
    clean,
    decode_text,
    json_records,
    json_text,
    missing_fields,
    norm_email,
    parse_ts,
    raw_json,
    read_bytes,
    text_id,
    unreadable,
)
from journeylib.io.generic import SEND_ID, count_implied_statuses
from journeylib.io.registry import VendorReader

NAME = "sendgrid"
#: File kinds this reader recognises.
KINDS: tuple[str, ...] = ("events",)
#: Canonical table each kind mainly feeds.
KIND_TABLES: dict[str, str] = {"events": "messages"}
#: SendGrid event → (timeline event, message status or None).
EVENTS: dict[str, tuple[str, str | None]] = {
    "processed": ("email_processed", None),
    "deferred": ("email_deferred", None),
    "dropped": ("email_dropped", None),
    "delivered": ("email_delivered", "delivered"),
    "bounce": ("email_bounced", "bounced"),
    "blocked": ("email_bounced", "bounced"),
    "open": ("email_opened", "opened"),
    "click": ("email_clicked", "clicked"),
    "spamreport": ("email_spamreport", None),
    "unsubscribe": ("email_unsubscribed", "unsubscribed"),
    "group_unsubscribe": ("email_unsubscribed", "unsubscribed"),
    "group_resubscribe": ("email_resubscribed", None),
}
_CORE = ("email", "timestamp", "event", "sg_event_id", "category")


def _records(path: Path, caps: Caps | None = None) -> list[tuple[int, Any, str]]:
    text = decode_text(path, read_bytes(path))
    _, _, recs = json_records(path, text, (), caps)
    out: list[tuple[int, Any, str]] = []
    for line, value, raw in recs:
        if isinstance(value, list):  # one webhook POST per line
            out += [(line, v, raw if isinstance(v, BadRecord) else raw_json(v)) for v in value]
        else:
            out.append((line, value, raw))
    return out


def detect_kind(path: Path) -> str:
    """Tell whether *path* holds SendGrid webhook events.

    Raises
    ------
    SourceFormatError
        If no record looks like a webhook event (``event``, ``email``, ``timestamp``).
    """
    for _, value, _ in _records(path)[:50]:
        if isinstance(value, dict) and ("sg_event_id" in value or {"event", "email", "timestamp"} <= set(value)):
            return "events"
    msg = (
        f"{path}: line 1: not a SendGrid Event Webhook payload. Expected a JSON array (or JSON Lines) of events "
        'with "email", "timestamp", "event" and "sg_event_id".'
    )
    raise SourceFormatError(msg)


def read_sendgrid(path: str | Path, ctx: ReadContext) -> Iterator[Part]:
    """Read stored SendGrid webhook events into messages, events and identities.

    Parameters
    ----------
    path : str or pathlib.Path
        A JSON array or JSON Lines file of webhook events.
    ctx : ReadContext
        Source label.

    Yields
    ------
    Part
        ``messages``, ``events``, ``identities`` and ``rejects`` parts.

    Raises
    ------
    SourceFormatError
        If the file is not JSON or holds no webhook event.
    """
    p = Path(path)
    detect_kind(p)
    sink = RecordSink(str(p))
    src = ctx.source
    for line, rec, raw in _records(p, ctx.caps):
        if reason := unreadable(rec, "event"):
            sink.reject(line, raw, reason)
            continue
        with sink.record(line, raw):
            _event(sink, src, line, raw, rec)
    messages = sink.tables.get("messages", [])
    count_implied_statuses([(_send_of(r), str(r["status"])) for r in messages], ctx.notes)
    yield from sink.parts()


def send_id(rec: dict[str, Any], email: str) -> str | None:
    """Return the id of the e-mail an event belongs to: ``sg_message_id`` up to ``.filter``, and the recipient.

    SendGrid gives every event of one message to one recipient the same
    ``sg_message_id`` (the part before ``.filter`` is the ``X-Message-Id`` of
    the send, shared by its recipients); None when the event has none.

    Parameters
    ----------
    rec : dict
        The webhook event.
    email : str
        The recipient's normalised address.

    Returns
    -------
    str or None
        ``<message id>:<email>``, or None.
    """
    mid = clean(rec.get("sg_message_id")) or clean(rec.get("smtp-id"))
    if mid is None:
        return None
    return f"{str(mid).strip('<>').split('.filter')[0]}:{email}"


def _send_of(row: dict[str, Any]) -> str | None:
    props = json.loads(row["properties"]) if row.get("properties") else {}
    value = props.get(SEND_ID)
    return None if value is None else str(value)


def _event(sink: RecordSink, src: str, line: int, raw: str, rec: dict[str, Any]) -> None:
    """Read one webhook event (quarantined with the reason when it cannot be)."""
    reason = missing_fields(rec, "email", "timestamp", "event")
    if reason:
        sink.reject(line, raw, reason)
        return
    kind = str(rec["event"]).strip().lower()
    if kind not in EVENTS:
        sink.reject(line, raw, f"unknown SendGrid event {rec['event']!r}; expected one of {', '.join(EVENTS)}")
        return
    email = norm_email(rec["email"])
    if email is None:
        sink.reject(line, raw, f"email: expected an e-mail address, found {str(rec['email'])[:60]!r}")
        return
    ts, _ = parse_ts(rec["timestamp"])
    if ts is None:
        sink.reject(line, raw, f"timestamp: expected epoch seconds, found {rec['timestamp']!r}")
        return
    sg_id = text_id(rec.get("sg_event_id"))
    if sg_id is None:
        basis = "\x1f".join(str(rec.get(k, "")) for k in ("email", "timestamp", "event", "sg_message_id", "url"))
        sg_id = "md5-" + hashlib.md5(basis.encode()).hexdigest()
    cat = rec.get("category")
    campaign = clean(rec.get("campaign")) or (clean(cat[0]) if isinstance(cat, list) and cat else clean(cat))
    extras = {k: v for k, v in rec.items() if k not in _CORE and clean(v) is not None}
    if isinstance(cat, list) and len(cat) > 1:
        extras["categories"] = cat
    ref = f"email:{email}"
    event, status = EVENTS[kind]
    row_id = f"{src}:{sg_id}"
    if status:
        send = send_id(rec, email)
        if send is not None:
            extras[SEND_ID] = send
        sink.add("messages", line, raw, message_id=row_id, timestamp=ts, campaign=campaign, status=status, properties=json_text(extras), _person_ref=ref)
    props: dict[str, Any] = {"campaign": campaign, "message_id": row_id if status else None, "sendgrid_event": kind, **{k: extras[k] for k in ("url", "reason", "type") if k in extras}}
    sink.add("events", line, raw, event_id=row_id, timestamp=ts, event=event, properties=json_text(props), _person_ref=ref)
    sink.add("identities", line, raw, source_id=ref, kind="person", email=email)


#: This reader as :mod:`journeylib.io.registry` lists it.
READER = VendorReader(
    name=NAME,
    category="email",
    detect_kind=detect_kind,
    read=read_sendgrid,
    kind_tables=KIND_TABLES,
    order=70,
)
