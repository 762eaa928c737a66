"""Mailchimp campaign e-mail activity reader.

Reads the Marketing API's per-recipient e-mail activity report,
``GET /3.0/reports/{campaign_id}/email-activity``
(https://mailchimp.com/developer/marketing/api/email-activity-reports/list-email-activity/):
``{"emails": [{"campaign_id", "list_id", "email_id", "email_address",
"activity": [{"action": "open"|"click"|"bounce", "type", "timestamp",
"url", "ip"}]}], "campaign_id", "total_items"}``. Several pages of the same
report may be given as several files; JSON Lines of recipient objects are
read as well.

Mapping
-------
* every activity item → ``messages`` row (open → opened, click → clicked,
  bounce → bounced) and ``events`` row (``email_opened``, ``email_clicked``,
  ``email_bounced``); ``campaign`` = the campaign id; the id is
  ``<source>:`` + md5 of campaign, e-mail id, action, time and url, so
  overlapping report pages de-duplicate;
* each recipient is the person ``email:<address>``;
* a ``messages`` row's ``properties.send_id`` is ``<campaign>:<email_id>``
  (the address when there is no ``email_id``). The report has no delivery
  rows: an open or click implies ``delivered`` for its e-mail (and a click
  ``opened``); the analytics read the implication, the rows are not added,
  and the file's notes count the e-mails concerned. Recipients without
  activity cannot be told delivered, so an open rate over Mailchimp data
  alone counts only e-mails that were opened or clicked as delivered.

A recipient without ``email_address`` or with an ``activity`` that is not a
list is quarantined; so is an activity item with an unknown action or time,
and a recipient holding a value no column can store (a NUL, a lone
surrogate, ``NaN``, a field over ``max_field_bytes``, nesting over
``max_json_depth``: :func:`journeylib.io.common.value_problem`). Times are
ISO-8601 with an offset (``2025-03-01T09:30:00+00:00``), as the API writes
them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from journeylib.exceptions import SourceFormatError
from journeylib.io.common import (
    Caps,
    Part,
    ReadContext,
    RecordSink,
    clean,
    decode_text,
    json_records,
    json_text,
    norm_email,
    parse_ts,
    raw_json,
    read_bytes,
    unreadable,
)
from journeylib.io.generic import SEND_ID, count_implied_statuses
from journeylib.io.registry import VendorReader

NAME = "mailchimp"
#: File kinds this reader recognises.
KINDS: tuple[str, ...] = ("email_activity",)
#: Canonical table each kind mainly feeds.
KIND_TABLES: dict[str, str] = {"email_activity": "messages"}
#: Mailchimp action → (timeline event, message status).
ACTIONS: dict[str, tuple[str, str]] = {"open": ("email_opened", "opened"), "click": ("email_clicked", "clicked"), "bounce": ("email_bounced", "bounced")}


def _records(path: Path, caps: Caps | None = None) -> tuple[dict[str, Any], list[tuple[int, Any, str]]]:
    text = decode_text(path, read_bytes(path))
    top, key, recs = json_records(path, text, ("emails",), caps)
    if key is None and isinstance(top, dict) and recs and isinstance(recs[0][1], dict) and "emails" not in recs[0][1] and "email_address" not in recs[0][1]:
        return {}, []
    return (top if isinstance(top, dict) else {}), recs


def detect_kind(path: Path) -> str:
    """Tell whether *path* is a Mailchimp e-mail activity report.

    Raises
    ------
    SourceFormatError
        If the file has no ``emails`` list of recipients with ``activity``.
    """
    _, recs = _records(path)
    if any(isinstance(v, dict) and "email_address" in v for _, v, _ in recs[:50]):
        return "email_activity"
    msg = (
        f"{path}: line 1: not a Mailchimp e-mail activity report. Expected the JSON of "
        '/reports/{campaign_id}/email-activity: {"emails": [{"email_address": ..., "activity": [...]}]}.'
    )
    raise SourceFormatError(msg)


def read_mailchimp(path: str | Path, ctx: ReadContext) -> Iterator[Part]:
    """Read a Mailchimp e-mail activity report into messages, events and identities.

    Parameters
    ----------
    path : str or pathlib.Path
        The report JSON (or JSON Lines of recipients).
    ctx : ReadContext
        Source label.

    Yields
    ------
    Part
        ``messages``, ``events``, ``identities`` and ``rejects`` parts.

    Raises
    ------
    SourceFormatError
        If the file is not such a report.
    """
    p = Path(path)
    detect_kind(p)
    top, recs = _records(p, ctx.caps)
    sink = RecordSink(str(p))
    kept: list[tuple[str | None, str]] = []  # (send id, status) of the messages rows of the recipients read
    for line, rec, raw in recs:
        if reason := unreadable(rec, "recipient"):
            sink.reject(line, raw, reason)
            continue
        sends: list[tuple[str | None, str]] = []
        with sink.record(line, raw):
            _recipient(sink, ctx.source, top, line, raw, rec, sends)
            kept += sends
    count_implied_statuses(kept, ctx.notes)
    yield from sink.parts()


def _recipient(
    sink: RecordSink, src: str, top: dict[str, Any], line: int, raw: str, rec: dict[str, Any], sends: list[tuple[str | None, str]]
) -> None:
    """Read one recipient and its activity items (each item quarantined alone when it cannot be read); *sends* receives (send id, status) per row."""
    email = norm_email(rec.get("email_address"))
    activity = rec.get("activity")
    if email is None:
        sink.reject(line, raw, "missing required field email_address (or not an e-mail address)")
        return
    if not isinstance(activity, list):
        sink.reject(line, raw, f"activity: expected a list of actions, found {type(activity).__name__}")
        return
    campaign = clean(rec.get("campaign_id")) or clean(top.get("campaign_id"))
    ref = f"email:{email}"
    sink.add("identities", line, raw, source_id=ref, kind="person", email=email)
    for item in activity:
        item_raw = raw_json({"email_address": rec.get("email_address"), "activity": item})
        if not isinstance(item, dict):
            sink.reject(line, item_raw, f"activity item: expected an object, found {type(item).__name__}")
            continue
        action = str(item.get("action", "")).strip().lower()
        if action not in ACTIONS:
            sink.reject(line, item_raw, f"activity item: unknown action {item.get('action')!r}; expected one of {', '.join(ACTIONS)}")
            continue
        ts, _ = parse_ts(item.get("timestamp"))
        if ts is None:
            sink.reject(line, item_raw, f"activity item: timestamp: expected an ISO-8601 time, found {item.get('timestamp')!r}")
            continue
        basis = "\x1f".join(str(x) for x in (campaign, rec.get("email_id") or email, action, ts.isoformat(), item.get("url", "")))
        row_id = f"{src}:{hashlib.md5(basis.encode()).hexdigest()}"
        event, status = ACTIONS[action]
        extras = {"list_id": rec.get("list_id"), "email_id": rec.get("email_id"), **{k: item[k] for k in ("type", "url", "ip") if k in item}}
        extras[SEND_ID] = f"{campaign}:{clean(rec.get('email_id')) or email}"
        sends.append((extras[SEND_ID], status))
        sink.add("messages", line, item_raw, message_id=row_id, timestamp=ts, campaign=campaign, status=status, properties=json_text(extras), _person_ref=ref)
        props = {"campaign": campaign, "message_id": row_id, **{k: item[k] for k in ("type", "url") if k in item}}
        sink.add("events", line, item_raw, event_id=row_id, timestamp=ts, event=event, properties=json_text(props), _person_ref=ref)


#: This reader as :mod:`journeylib.io.registry` lists it.
READER = VendorReader(
    name=NAME,
    category="email",
    detect_kind=detect_kind,
    read=read_mailchimp,
    kind_tables=KIND_TABLES,
    order=80,
)
