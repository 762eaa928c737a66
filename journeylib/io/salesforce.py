"""Salesforce CSV export reader: Account, Contact, Opportunity, OpportunityHistory, Case, CaseComment, EmailMessage.

Reads the CSV files of Salesforce's Data Export service or Data Loader
(https://help.salesforce.com/s/articleView?id=sf.admin_exportdata.htm), whose
columns are the objects' API field names
(https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/):

``Account``
    ``Id``, ``Name``, ``Website``, ``Industry``, ``Type``, ``CreatedDate``,
    ``LastModifiedDate`` and custom fields; ``Segment__c``, ``Plan__c``,
    ``MRR__c``, ``Signup_Date__c``, ``Converted_Date__c``,
    ``Churned_Date__c`` and ``Renewal_Date__c`` fill the customers table;
``Contact``
    ``Id``, ``AccountId``, ``Email``, ``FirstName``, ``LastName``, ``Title``
    and custom fields (kept in the contact's attributes: a product user id
    such as ``App_User_ID__c`` links the contact to the analytics user,
    :mod:`journeylib.store.identity`);
``Opportunity``
    ``Id``, ``AccountId``, ``Name``, ``StageName``, ``Type``, ``Amount``,
    ``CloseDate``, ``IsClosed``, ``IsWon``, ``CreatedDate``;
``OpportunityHistory``
    ``Id``, ``OpportunityId``, ``StageName``, ``Amount``, ``CloseDate``,
    ``CreatedDate`` (the stage history);
``Case``
    ``Id``, ``CaseNumber``, ``AccountId``, ``ContactId``, ``Subject``,
    ``Description``, ``Status``, ``Priority``, ``Origin``, ``CreatedDate``,
    ``ClosedDate``, ``LastModifiedDate``, ``SuppliedEmail``;
``CaseComment``
    ``Id``, ``ParentId`` (the case's ``Id``), ``CommentBody``,
    ``IsPublished``, ``CreatedById``, ``CreatedDate``, and when the export
    adds them the relationship fields ``CreatedBy.UserType`` and
    ``CreatedBy.ContactId``;
``EmailMessage``
    ``Id``, ``ParentId`` (the case's ``Id``), ``Subject``, ``TextBody``,
    ``HtmlBody``, ``FromAddress``, ``ToAddress``, ``Incoming``,
    ``MessageDate``, ``Status``, ``CreatedById``, ``CreatedDate``.

The object is recognised from the header. Column names are matched without
regard to case, since Data Loader writes its export headers in upper case
(``ID``, ``PARENTID``, ``COMMENTBODY``); the Bulk API and the Data Export
service write the API names as they are spelled.

Update times
------------
A record's own update time is ``LastModifiedDate``, else ``SystemModstamp``.
A case's becomes the ticket's ``updated_at``, so an older export of a case
never replaces a newer one (docs/adr/0009-snapshots-by-their-own-time.md);
an account's or contact's (else its ``CreatedDate``) dates the identity
record its customer or user is derived from.

Dates and times
---------------
``2024-01-05T10:22:00.000+0000`` (the export's date-times) are converted to
UTC; ``2024-01-05`` (date fields), times without an offset and
``05/01/2024``-style dates are read in the source's ``timezone`` option
(default UTC), the day/month order settled by ``date_order`` or by the
file's own dates (:class:`journeylib.io.common.DateReader`; an ambiguous
``03/04/2024`` is refused, never guessed).

What cannot be read
-------------------
A row missing ``Id`` (or another required field), or whose required time
(``CreatedDate`` of an opportunity, its history, a case or a case comment;
``MessageDate``, else ``CreatedDate``, of an e-mail; ``CloseDate`` of a
closed opportunity) cannot be read, is quarantined. An optional value that
cannot be read is stored empty and noted in ``ingest_notes``: an account's
``CreatedDate``, ``LastModifiedDate``, custom dates (``Signup_Date__c``, ...)
and ``MRR__c`` (a plain number such as ``1250.50``), a contact's dates, a
case's ``ClosedDate`` and update time.

Mapping
-------
* Account → accounts ``account:<Id>`` (usually the account master: its ids
  become ``customer_id``); Contact → people ``contact:<Id>`` of
  ``account:<AccountId>``;
* Opportunity → ``opportunity_created``, ``opportunity_won`` /
  ``opportunity_lost`` events, and an alias ``opportunity:<Id>`` of its
  account; OpportunityHistory → ``opportunity_stage_changed`` events
  referring to ``opportunity:<OpportunityId>``;
* Case → ``tickets`` (``ticket_id`` ``<source>:<Id>``) with
  ``ticket_created``/``ticket_solved`` events, and an alias ``case:<Id>``
  that resolves like the case (its account, else its contact or
  ``SuppliedEmail``), so that the case's conversation lands on its customer;
* CaseComment and EmailMessage → ``events`` ``ticket_comment``, as the
  Zendesk and Intercom readers write conversation: ``event_id``
  ``<source>:comment:<Id>``, ``properties`` ``ticket_id``
  (``<source>:<ParentId>``), ``author_id``, ``author_role``, ``public``,
  ``body``; the event refers to ``case:<ParentId>``. A comment's time is its
  ``CreatedDate``; an e-mail's is ``MessageDate`` (when it was sent or
  received), else ``CreatedDate``. A comment's body is ``CommentBody``; an
  e-mail's ``TextBody``, else ``HtmlBody`` with the tags removed.

Conversation authors: staff or customer
---------------------------------------
``author_role`` is decided from the row itself (:func:`comment_author_role`,
:func:`email_author_role`):

* an EmailMessage with ``Incoming`` true was received from the customer
  (``customer``; the sender ``FromAddress`` becomes the person
  ``email:<address>`` the row refers to, and ``author_id`` stays empty so
  that no address is copied into ``properties``); ``Incoming`` false was
  sent by the company (``staff``, ``author_id`` = ``CreatedById``); any
  other value → ``unknown``. Drafts (``Status`` 5) were never sent, and an
  e-mail without ``ParentId`` is on no case (related to another record):
  both are skipped, counted in a note;
* a CaseComment is written by a User (``CreatedById``, key prefix ``005``)
  or, in old Self-Service portals, a Contact (prefix ``003``):

  1. ``CreatedBy.UserType`` ``Standard`` → ``staff``; a customer portal
     user (``CspLitePortal``, ``CustomerSuccess``, ``PowerCustomerSuccess``)
     → ``customer``; another type (a partner, a guest) → ``unknown``;
  2. otherwise a ``CreatedBy.ContactId``, or a ``CreatedById`` that is a
     Contact → ``customer``, the person ``contact:<id>``;
  3. otherwise an unpublished comment (``IsPublished`` false: internal,
     never shown to the customer) → ``staff``;
  4. otherwise a ``CreatedById`` that is a User → ``staff``, counted in a
     note: Experience Cloud customers are Users too, and only
     ``CreatedBy.UserType`` (add it to the export) tells them apart;
  5. otherwise ``unknown``.

  A customer's comment refers to its author's contact (``user_id``); staff
  and unknown comments refer to no person.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from journeylib.exceptions import SourceFormatError
from journeylib.io.common import (
    DateReader,
    Part,
    ReadContext,
    RecordSink,
    clean,
    epoch_key,
    json_text,
    norm_email,
    optional_number,
    optional_time,
    read_bytes,
    read_csv_records,
    require_columns,
    web_domain,
)
from journeylib.io.registry import VendorReader

NAME = "salesforce"
#: File kinds this reader recognises (Salesforce object names).
KINDS: tuple[str, ...] = ("Account", "Contact", "Opportunity", "OpportunityHistory", "Case", "CaseComment", "EmailMessage")
#: Canonical table each kind mainly feeds.
KIND_TABLES: dict[str, str] = {
    "Account": "identities", "Contact": "identities", "Opportunity": "events", "OpportunityHistory": "events", "Case": "tickets",
    "CaseComment": "events", "EmailMessage": "events",
}  # fmt: skip
REQUIRED: dict[str, tuple[str, ...]] = {
    "Account": ("Id", "Name"),
    "Contact": ("Id", "AccountId", "Email"),
    "Opportunity": ("Id", "AccountId", "StageName", "CreatedDate"),
    "OpportunityHistory": ("Id", "OpportunityId", "StageName", "CreatedDate"),
    "Case": ("Id", "CaseNumber", "CreatedDate"),
    "CaseComment": ("Id", "ParentId", "CreatedDate"),
    "EmailMessage": ("Id", "ParentId"),
}
#: ``CreatedBy.UserType`` of the company's own users, and of customer portal (Experience Cloud) users.
STAFF_USER_TYPES: frozenset[str] = frozenset({"standard"})
CUSTOMER_USER_TYPES: frozenset[str] = frozenset({"cspliteportal", "customersuccess", "powercustomersuccess"})
#: Key prefixes of Salesforce record ids: a User, a Contact.
USER_PREFIX, CONTACT_PREFIX = "005", "003"
#: ``EmailMessage.Status`` of a draft, never sent.
DRAFT_STATUS = "5"
#: Values of a comment's ``properties.author_role``.
AUTHOR_ROLES: tuple[str, ...] = ("customer", "staff", "unknown")
_CUSTOMER_FIELDS = {
    "segment": "Segment__c", "plan": "Plan__c", "mrr": "MRR__c", "signup_at": "Signup_Date__c",
    "converted_at": "Converted_Date__c", "churned_at": "Churned_Date__c", "renewal_at": "Renewal_Date__c",
}  # fmt: skip
#: API field names the reader reads, by their lower-case spelling (Data Loader writes headers in upper case).
_KNOWN_FIELDS = {
    f.lower(): f
    for f in (
        "Id", "Name", "Website", "Industry", "Type", "CreatedDate", "LastModifiedDate", "SystemModstamp", "AccountId", "ContactId",
        "Email", "FirstName", "LastName", "Title", "StageName", "Amount", "CloseDate", "IsClosed", "IsWon", "OpportunityId",
        "CaseNumber", "Subject", "Description", "Status", "Priority", "Origin", "ClosedDate", "SuppliedEmail", "ParentId",
        "CommentBody", "IsPublished", "CreatedById", "CreatedBy.UserType", "CreatedBy.ContactId", "TextBody", "HtmlBody",
        "FromAddress", "FromName", "ToAddress", "CcAddress", "Incoming", "MessageDate", *_CUSTOMER_FIELDS.values(),
    )
}  # fmt: skip
_TAG = re.compile(r"<[^>]+>")


def _canonical_header(header: list[str]) -> list[str]:
    """Return *header* with the fields the reader knows spelled as the API spells them (``PARENTID`` → ``ParentId``)."""
    return [_KNOWN_FIELDS.get(h.lower(), h) for h in header]


def _kind_of(header: list[str]) -> str | None:
    cols = set(header)
    if "CaseNumber" in cols:
        return "Case"
    if "CommentBody" in cols or ("ParentId" in cols and "IsPublished" in cols):
        return "CaseComment"
    if "ParentId" in cols and cols & {"TextBody", "HtmlBody", "Incoming", "FromAddress", "MessageDate"}:
        return "EmailMessage"
    if "OpportunityId" in cols:
        return "OpportunityHistory"
    if "StageName" in cols:
        return "Opportunity"
    if "AccountId" in cols or "Email" in cols or "LastName" in cols:
        return "Contact"
    if "Id" in cols and ("Name" in cols or "Website" in cols):
        return "Account"
    return None


def detect_kind(path: Path) -> str:
    """Recognise a Salesforce object export from its header.

    Returns
    -------
    str
        ``Account``, ``Contact``, ``Opportunity``, ``OpportunityHistory``,
        ``Case``, ``CaseComment`` or ``EmailMessage``.

    Raises
    ------
    SourceFormatError
        If the header is none of them, or lacks a required field.
    """
    header, _, _ = read_csv_records(path, read_bytes(path))
    header = _canonical_header(header)
    kind = _kind_of(header)
    if kind is None:
        found = ", ".join(repr(h) for h in header[:10])
        msg = (
            f"{path}: line 1: not a Salesforce object export. Expected API field names (Account: Id, Name; Contact: Id, "
            f"AccountId, Email; Opportunity: Id, AccountId, StageName; OpportunityHistory: OpportunityId; Case: CaseNumber; "
            f"CaseComment: ParentId, CommentBody; EmailMessage: ParentId, TextBody or HtmlBody); found {found}."
        )
        raise SourceFormatError(msg)
    require_columns(path, header, f"Salesforce {kind}", REQUIRED[kind], "Export with API field names (Data Loader or Data Export), or rename the column back")
    if kind == "EmailMessage" and not {"MessageDate", "CreatedDate"} & set(header):
        found = ", ".join(repr(h) for h in header[:12])
        msg = (
            f"{path}: line 1: the Salesforce EmailMessage export has no time column: expected MessageDate or CreatedDate; "
            f"found {found}. Export the object again with MessageDate; nothing was loaded."
        )
        raise SourceFormatError(msg)
    return kind


def read_salesforce(path: str | Path, ctx: ReadContext) -> Iterator[Part]:
    """Read a Salesforce Account, Contact, Opportunity, OpportunityHistory, Case, CaseComment or EmailMessage CSV.

    Parameters
    ----------
    path : str or pathlib.Path
        The CSV file.
    ctx : ReadContext
        Source label; notes receive counted assumptions (comment authors
        taken as staff, drafts skipped).

    Yields
    ------
    Part
        ``tickets``, ``events``, ``identities`` and ``rejects`` parts.

    Raises
    ------
    SourceFormatError
        If the file is not such an export.
    """
    p = Path(path)
    kind = detect_kind(p)
    header, rows, rejects = read_csv_records(p, read_bytes(p), ctx.caps)
    header = _canonical_header(header)
    sink = RecordSink(str(p))
    for line, raw, reason in rejects:
        sink.reject(line, raw, reason)
    handler = {
        "Account": _account, "Contact": _contact, "Opportunity": _opportunity, "OpportunityHistory": _history, "Case": _case,
        "CaseComment": _case_comment, "EmailMessage": _email_message,
    }[kind]  # fmt: skip
    dates = DateReader.for_file((v for _, fields, _ in rows for v in fields), timezone=ctx.options.get("timezone"), date_order=ctx.options.get("date_order"))
    for line, fields, raw in rows:
        rec = {h: clean(v) for h, v in zip(header, fields, strict=True)}
        # a contact without e-mail is read; an e-mail on no case (one related to another record) is skipped with a note
        miss = [c for c in REQUIRED[kind] if rec.get(c) is None and c != "Email" and (kind, c) != ("EmailMessage", "ParentId")]
        if miss:
            sink.reject(line, raw, f"column(s) {', '.join(miss)}: required value is empty")
            continue
        with sink.record(line, raw):
            handler(sink, ctx, _Row(sink, dates, line, raw, rec))
    yield from sink.parts()


class _Row:
    """One record being read, with the file's date reader; optional values that cannot be read are noted."""

    def __init__(self, sink: RecordSink, dates: DateReader, line: int, raw: str, rec: dict[str, Any]) -> None:
        self.sink, self.dates, self.line, self.raw, self.rec = sink, dates, line, raw, rec
        self.table = "identities"
        self.key: str | None = None

    def time(self, col: str) -> datetime | None:
        """Return the optional time *col* (noted when unreadable)."""
        return optional_time(self.sink, self.dates, self.line, self.table, self.key, self.rec, col)[0]

    def modified(self) -> datetime | None:
        """Return the record's own update time: ``LastModifiedDate``, else ``SystemModstamp`` (noted when unreadable)."""
        return self.time("LastModifiedDate") or self.time("SystemModstamp")

    def required_time(self, col: str) -> datetime | None:
        """Return the required time *col*; None (the row quarantined with the reason) when it cannot be read."""
        dt, reason, _ = self.dates.parse(self.rec.get(col), expected="a date-time")
        if dt is None:
            self.sink.reject(self.line, self.raw, f"column {col}: {reason or 'expected a date-time'}, found {self.rec.get(col)!r}")
        return dt


def _extras(rec: dict[str, Any], used: set[str]) -> dict[str, Any]:
    return {k: v for k, v in rec.items() if v is not None and k not in used}


def _account(sink: RecordSink, ctx: ReadContext, row: _Row) -> None:
    rec = row.rec
    row.key = f"account:{rec['Id']}"
    modified = row.modified()
    times = {col: row.time(col) for col in ("CreatedDate", *(c for k, c in _CUSTOMER_FIELDS.items() if k.endswith("_at")))}
    updated = modified or times["CreatedDate"]
    domain = web_domain(rec.get("Website"))
    attrs: dict[str, Any] = {"name": rec.get("Name"), "domain": domain}
    for canon, col in _CUSTOMER_FIELDS.items():
        if canon.endswith("_at"):
            at = times[col]
            attrs[canon] = at.isoformat() if at else None
        elif canon == "mrr":
            attrs[canon] = optional_number(sink, row.line, row.table, row.key, rec, col)
        else:
            attrs[canon] = rec.get(col)
    created = times["CreatedDate"]
    attrs["signup_at"] = attrs["signup_at"] or (created.isoformat() if created else None)
    attrs["properties"] = _extras(rec, {"Id", "Name", "Website", "LastModifiedDate", *_CUSTOMER_FIELDS.values()})
    sink.add("identities", row.line, row.raw, source_id=row.key, kind="account", name=rec.get("Name"), domain=domain,
             updated_at=updated, attributes=json_text(attrs))  # fmt: skip


def _contact(sink: RecordSink, ctx: ReadContext, row: _Row) -> None:
    rec, line, raw = row.rec, row.line, row.raw
    row.key = f"contact:{rec['Id']}"
    email = norm_email(rec.get("Email"))
    if rec.get("Email") is not None and email is None:
        sink.reject(line, raw, f"column Email: expected an e-mail address, found {rec['Email']!r}")
        return
    modified, created = row.modified(), row.time("CreatedDate")
    updated = modified or created
    used = {"Id", "AccountId", "Email", "Title", "FirstName", "LastName", "CreatedDate", "LastModifiedDate", "SystemModstamp"}
    attrs = {"role": rec.get("Title"), "created_at": created.isoformat() if created else None, "name": " ".join(x for x in (rec.get("FirstName"), rec.get("LastName")) if x) or None,
             "properties": _extras(rec, used) or None}  # fmt: skip
    sink.add("identities", line, raw, source_id=row.key, kind="person", email=email,
             account_ref=f"account:{rec['AccountId']}", updated_at=updated, attributes=json_text(attrs))  # fmt: skip


def _truthy(v: Any) -> bool:
    return str(v).strip().lower() in ("true", "1", "yes")


def _opportunity(sink: RecordSink, ctx: ReadContext, row: _Row) -> None:
    rec, line, raw = row.rec, row.line, row.raw
    created = row.required_time("CreatedDate")
    if created is None:
        return
    oid = rec["Id"]
    alias = f"opportunity:{oid}"
    row.key = alias
    updated = row.modified()
    sink.add("identities", line, raw, source_id=alias, kind="alias", account_ref=f"account:{rec['AccountId']}", updated_at=updated or created)
    base = {"opportunity_id": oid, "opportunity_type": rec.get("Type")}
    sink.add("events", line, raw, event_id=f"{ctx.source}:opportunity:{oid}:created", timestamp=created, event="opportunity_created", properties=json_text(base), _account_ref=alias)
    if _truthy(rec.get("IsClosed")) or rec.get("StageName") in ("Closed Won", "Closed Lost"):
        closed, reason, _ = row.dates.parse(rec.get("CloseDate"), expected="a date")
        if closed is None:
            why = f"{reason}, " if reason else ""
            sink.reject(line, raw, f"column CloseDate: a closed opportunity needs a close date, {why}found {rec.get('CloseDate')!r}")
            return
        won = _truthy(rec.get("IsWon")) or rec.get("StageName") == "Closed Won"
        props = {**base, "amount": rec.get("Amount"), "stage": rec.get("StageName")}
        sink.add("events", line, raw, event_id=f"{ctx.source}:opportunity:{oid}:closed:{epoch_key(closed)}", timestamp=closed,
                 event="opportunity_won" if won else "opportunity_lost", properties=json_text(props), _account_ref=alias)  # fmt: skip


def _history(sink: RecordSink, ctx: ReadContext, row: _Row) -> None:
    rec = row.rec
    created = row.required_time("CreatedDate")
    if created is None:
        return
    props = {"opportunity_id": rec["OpportunityId"], "stage": rec.get("StageName"), "amount": rec.get("Amount"), "close_date": rec.get("CloseDate")}
    sink.add("events", row.line, row.raw, event_id=f"{ctx.source}:opportunity_history:{rec['Id']}", timestamp=created, event="opportunity_stage_changed",
             properties=json_text(props), _account_ref=f"opportunity:{rec['OpportunityId']}")  # fmt: skip


def _case(sink: RecordSink, ctx: ReadContext, row: _Row) -> None:
    rec, line, raw = row.rec, row.line, row.raw
    created = row.required_time("CreatedDate")
    if created is None:
        return
    tid = f"{ctx.source}:{rec['Id']}"
    row.table, row.key = "tickets", tid
    closed = row.time("ClosedDate")
    modified = row.modified()
    supplied = norm_email(rec.get("SuppliedEmail"))  # web-to-case / email-to-case sender
    person = f"contact:{rec['ContactId']}" if rec.get("ContactId") else (f"email:{supplied}" if supplied else None)
    account = f"account:{rec['AccountId']}" if rec.get("AccountId") else None
    used = {"Id", "AccountId", "ContactId", "Subject", "Description", "Status", "Priority", "Origin", "CreatedDate", "ClosedDate"}
    sink.add(
        "tickets", line, raw, ticket_id=tid, created_at=created, solved_at=closed, channel=(rec.get("Origin") or "").lower() or None,
        subject=rec.get("Subject"), body=rec.get("Description"), status=(rec.get("Status") or "").lower() or None,
        priority=(rec.get("Priority") or "").lower() or None, properties=json_text(_extras(rec, used)), updated_at=modified,
        _person_ref=person, _account_ref=account,
    )  # fmt: skip
    props = json_text({"ticket_id": tid, "case_number": rec.get("CaseNumber")})
    sink.add("events", line, raw, event_id=f"{tid}:created", timestamp=created, event="ticket_created", properties=props, _person_ref=person, _account_ref=account)
    if closed is not None:
        sink.add("events", line, raw, event_id=f"{tid}:solved:{epoch_key(closed)}", timestamp=closed, event="ticket_solved", properties=props, _person_ref=person, _account_ref=account)
    if supplied:
        sink.add("identities", line, raw, source_id=f"email:{supplied}", kind="person", email=supplied)
    # the case as an alias: its comments and e-mails resolve like the case (account, else contact or sender)
    sink.add("identities", line, raw, source_id=f"case:{rec['Id']}", kind="alias", account_ref=account or person,
             link_id=person if account else None, updated_at=modified or created)  # fmt: skip


def _flag(value: Any) -> bool | None:
    """Read a Salesforce checkbox (``true``/``false``, ``1``/``0``); None when empty or anything else."""
    v = str(value).strip().lower() if value is not None else ""
    return True if v in ("true", "1") else False if v in ("false", "0") else None


def comment_author_role(*, created_by: str | None, user_type: str | None = None, contact_id: str | None = None, published: bool | None = None) -> str:
    """Return who wrote a Salesforce CaseComment: ``customer``, ``staff`` or ``unknown`` (the rule of the module docstring).

    Parameters
    ----------
    created_by : str or None
        ``CreatedById``: a User (key prefix ``005``) or a Contact (``003``).
    user_type : str or None
        ``CreatedBy.UserType`` when the export carries it.
    contact_id : str or None
        ``CreatedBy.ContactId`` when the export carries it (set for portal users).
    published : bool or None
        ``IsPublished`` (None when absent).

    Returns
    -------
    str
        One of :data:`AUTHOR_ROLES`.

    Examples
    --------
    >>> comment_author_role(created_by="0055g00000AGENT1", user_type="Standard")
    'staff'
    >>> comment_author_role(created_by="0055g00000PORTAL", user_type="PowerCustomerSuccess")
    'customer'
    >>> comment_author_role(created_by="0035g00000JANE001")
    'customer'
    >>> comment_author_role(created_by=None, published=True)
    'unknown'
    """
    kind = (user_type or "").strip().lower()
    if kind:
        return "staff" if kind in STAFF_USER_TYPES else "customer" if kind in CUSTOMER_USER_TYPES else "unknown"
    if contact_id or (created_by or "").startswith(CONTACT_PREFIX):
        return "customer"
    if published is False or (created_by or "").startswith(USER_PREFIX):
        return "staff"
    return "unknown"


def email_author_role(incoming: bool | None) -> str:
    """Return who wrote a Salesforce EmailMessage: ``customer`` when received (``Incoming`` true), ``staff`` when sent, else ``unknown``.

    Examples
    --------
    >>> email_author_role(True), email_author_role(False), email_author_role(None)
    ('customer', 'staff', 'unknown')
    """
    return "unknown" if incoming is None else "customer" if incoming else "staff"


def _html_text(body: str | None) -> str | None:
    if body is None:
        return None
    text = html.unescape(_TAG.sub("", re.sub(r"(?i)<br\s*/?>|</p>|</div>", "\n", body))).strip()
    return text or None


def _conversation_event(sink: RecordSink, ctx: ReadContext, row: _Row, ts: datetime, author: str | None, role: str, public: bool | None, body: Any, person: str | None) -> None:
    """Add one ``ticket_comment`` event of the case ``ParentId``."""
    rec = row.rec
    props = {"ticket_id": f"{ctx.source}:{rec['ParentId']}", "author_id": author, "author_role": role, "public": public, "body": body}
    sink.add("events", row.line, row.raw, event_id=f"{ctx.source}:comment:{rec['Id']}", timestamp=ts, event="ticket_comment",
             properties=json_text(props), _account_ref=f"case:{rec['ParentId']}", _person_ref=person)  # fmt: skip


def _case_comment(sink: RecordSink, ctx: ReadContext, row: _Row) -> None:
    rec = row.rec
    created = row.required_time("CreatedDate")
    if created is None:
        return
    row.table, row.key = "events", f"{ctx.source}:comment:{rec['Id']}"
    author, contact, user_type = rec.get("CreatedById"), rec.get("CreatedBy.ContactId"), rec.get("CreatedBy.UserType")
    published = _flag(rec.get("IsPublished"))
    role = comment_author_role(created_by=author, user_type=user_type, contact_id=contact, published=published)
    if role == "staff" and not user_type and published is not False:
        ctx.notes["case comments by Users taken as staff (no CreatedBy.UserType column tells Experience Cloud customers apart)"] += 1
    ctx.notes[f"case comments by {role} authors"] += 1
    if role == "customer":
        contact = contact or (author if (author or "").startswith(CONTACT_PREFIX) else None)
    person = f"contact:{contact}" if role == "customer" and contact else None
    _conversation_event(sink, ctx, row, created, author, role, published, rec.get("CommentBody"), person)


def _email_message(sink: RecordSink, ctx: ReadContext, row: _Row) -> None:
    rec, line, raw = row.rec, row.line, row.raw
    if rec.get("ParentId") is None:
        ctx.notes["e-mails on no case skipped (no ParentId: related to another record)"] += 1
        return
    if str(rec.get("Status") or "").strip() == DRAFT_STATUS:
        ctx.notes["e-mail drafts skipped (Status 5: never sent)"] += 1
        return
    col = "MessageDate" if rec.get("MessageDate") is not None else "CreatedDate"
    at = row.required_time(col)
    if at is None:
        return
    row.table, row.key = "events", f"{ctx.source}:comment:{rec['Id']}"
    incoming = _flag(rec.get("Incoming"))
    role = email_author_role(incoming)
    ctx.notes[f"case e-mails by {role} authors"] += 1
    sender = norm_email(rec.get("FromAddress"))
    person = f"email:{sender}" if role == "customer" and sender else None
    if person:
        sink.add("identities", line, raw, source_id=person, kind="person", email=sender)
    author = None if role == "customer" else rec.get("CreatedById")
    body = rec.get("TextBody") or _html_text(rec.get("HtmlBody"))
    _conversation_event(sink, ctx, row, at, author, role, True, body, person)


#: This reader as :mod:`journeylib.io.registry` lists it.
READER = VendorReader(
    name=NAME,
    category="crm",
    detect_kind=detect_kind,
    read=read_salesforce,
    kind_tables=KIND_TABLES,
    order=60,
    account_rank=1,
    options=("timezone", "date_order"),
)
