"""Salesforce CSV export reader: Account, Contact, Opportunity, OpportunityHistory, Case.

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
    ``Id``, ``AccountId``, ``Email``, ``FirstName``, ``LastName``, ``Title``;
``Opportunity``
    ``Id``, ``AccountId``, ``Name``, ``StageName``, ``Type``, ``Amount``,
    ``CloseDate``, ``IsClosed``, ``IsWon``, ``CreatedDate``;
``OpportunityHistory``
    ``Id``, ``OpportunityId``, ``StageName``, ``Amount``, ``CloseDate``,
    ``CreatedDate`` (the stage history);
``Case``
    ``Id``, ``CaseNumber``, ``AccountId``, ``ContactId``, ``Subject``,
    ``Description``, ``Status``, ``Priority``, ``Origin``, ``CreatedDate``,
    ``ClosedDate``.

The object is recognised from the header. Times like
``2024-01-05T10:22:00.000+0000`` are UTC-converted.

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
  ``ticket_created``/``ticket_solved`` events.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from journeylib.exceptions import SourceFormatError
from journeylib.io.common import (
    Part,
    ReadContext,
    RecordSink,
    clean,
    epoch_key,
    json_text,
    norm_email,
    parse_ts,
    read_bytes,
    read_csv_records,
    require_columns,
    web_domain,
)
from journeylib.io.registry import VendorReader

NAME = "salesforce"
#: File kinds this reader recognises (Salesforce object names).
KINDS: tuple[str, ...] = ("Account", "Contact", "Opportunity", "OpportunityHistory", "Case")
#: Canonical table each kind mainly feeds.
KIND_TABLES: dict[str, str] = {"Account": "identities", "Contact": "identities", "Opportunity": "events", "OpportunityHistory": "events", "Case": "tickets"}
REQUIRED: dict[str, tuple[str, ...]] = {
    "Account": ("Id", "Name"),
    "Contact": ("Id", "AccountId", "Email"),
    "Opportunity": ("Id", "AccountId", "StageName", "CreatedDate"),
    "OpportunityHistory": ("Id", "OpportunityId", "StageName", "CreatedDate"),
    "Case": ("Id", "CaseNumber", "CreatedDate"),
}
_CUSTOMER_FIELDS = {
    "segment": "Segment__c", "plan": "Plan__c", "mrr": "MRR__c", "signup_at": "Signup_Date__c",
    "converted_at": "Converted_Date__c", "churned_at": "Churned_Date__c", "renewal_at": "Renewal_Date__c",
}  # fmt: skip


def _kind_of(header: list[str]) -> str | None:
    cols = set(header)
    if "CaseNumber" in cols:
        return "Case"
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
        ``Account``, ``Contact``, ``Opportunity``, ``OpportunityHistory`` or ``Case``.

    Raises
    ------
    SourceFormatError
        If the header is none of them, or lacks a required field.
    """
    header, _, _ = read_csv_records(path, read_bytes(path))
    kind = _kind_of(header)
    if kind is None:
        found = ", ".join(repr(h) for h in header[:10])
        msg = (
            f"{path}: line 1: not a Salesforce object export. Expected API field names (Account: Id, Name; Contact: Id, "
            f"AccountId, Email; Opportunity: Id, AccountId, StageName; OpportunityHistory: OpportunityId; Case: CaseNumber); found {found}."
        )
        raise SourceFormatError(msg)
    require_columns(path, header, f"Salesforce {kind}", REQUIRED[kind], "Export with API field names (Data Loader or Data Export), or rename the column back")
    return kind


def read_salesforce(path: str | Path, ctx: ReadContext) -> Iterator[Part]:
    """Read a Salesforce Account, Contact, Opportunity, OpportunityHistory or Case CSV.

    Parameters
    ----------
    path : str or pathlib.Path
        The CSV file.
    ctx : ReadContext
        Source label.

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
    header, rows, rejects = read_csv_records(p, read_bytes(p))
    sink = RecordSink(str(p))
    for line, raw, reason in rejects:
        sink.reject(line, raw, reason)
    handler = {"Account": _account, "Contact": _contact, "Opportunity": _opportunity, "OpportunityHistory": _history, "Case": _case}[kind]
    for line, fields, raw in rows:
        rec = {h: clean(v) for h, v in zip(header, fields, strict=True)}
        miss = [c for c in REQUIRED[kind] if rec.get(c) is None and c != "Email"]
        if miss:
            sink.reject(line, raw, f"column(s) {', '.join(miss)}: required value is empty")
            continue
        handler(sink, ctx, line, raw, rec)
    yield from sink.parts()


def _iso(rec: dict[str, Any], col: str) -> str | None:
    dt, _ = parse_ts(rec.get(col))
    return dt.isoformat() if dt else None


def _extras(rec: dict[str, Any], used: set[str]) -> dict[str, Any]:
    return {k: v for k, v in rec.items() if v is not None and k not in used}


def _account(sink: RecordSink, ctx: ReadContext, line: int, raw: str, rec: dict[str, Any]) -> None:
    updated, _ = parse_ts(rec.get("LastModifiedDate") or rec.get("CreatedDate"))
    domain = web_domain(rec.get("Website"))
    attrs: dict[str, Any] = {"name": rec.get("Name"), "domain": domain}
    for canon, col in _CUSTOMER_FIELDS.items():
        attrs[canon] = _iso(rec, col) if canon.endswith("_at") else rec.get(col)
    attrs["signup_at"] = attrs["signup_at"] or _iso(rec, "CreatedDate")
    attrs["properties"] = _extras(rec, {"Id", "Name", "Website", "LastModifiedDate", *_CUSTOMER_FIELDS.values()})
    sink.add("identities", line, raw, source_id=f"account:{rec['Id']}", kind="account", name=rec.get("Name"), domain=domain,
             updated_at=updated, attributes=json_text(attrs))  # fmt: skip


def _contact(sink: RecordSink, ctx: ReadContext, line: int, raw: str, rec: dict[str, Any]) -> None:
    updated, _ = parse_ts(rec.get("LastModifiedDate") or rec.get("CreatedDate"))
    email = norm_email(rec.get("Email"))
    if rec.get("Email") is not None and email is None:
        sink.reject(line, raw, f"column Email: expected an e-mail address, found {rec['Email']!r}")
        return
    attrs = {"role": rec.get("Title"), "created_at": _iso(rec, "CreatedDate"), "name": " ".join(x for x in (rec.get("FirstName"), rec.get("LastName")) if x) or None}
    sink.add("identities", line, raw, source_id=f"contact:{rec['Id']}", kind="person", email=email,
             account_ref=f"account:{rec['AccountId']}", updated_at=updated, attributes=json_text(attrs))  # fmt: skip


def _truthy(v: Any) -> bool:
    return str(v).strip().lower() in ("true", "1", "yes")


def _opportunity(sink: RecordSink, ctx: ReadContext, line: int, raw: str, rec: dict[str, Any]) -> None:
    created, _ = parse_ts(rec.get("CreatedDate"))
    if created is None:
        sink.reject(line, raw, f"column CreatedDate: expected a date-time, found {rec.get('CreatedDate')!r}")
        return
    updated, _ = parse_ts(rec.get("LastModifiedDate"))
    oid = rec["Id"]
    alias = f"opportunity:{oid}"
    sink.add("identities", line, raw, source_id=alias, kind="alias", account_ref=f"account:{rec['AccountId']}", updated_at=updated or created)
    base = {"opportunity_id": oid, "opportunity_type": rec.get("Type")}
    sink.add("events", line, raw, event_id=f"{ctx.source}:opportunity:{oid}:created", timestamp=created, event="opportunity_created", properties=json_text(base), _account_ref=alias)
    if _truthy(rec.get("IsClosed")) or rec.get("StageName") in ("Closed Won", "Closed Lost"):
        closed, _ = parse_ts(rec.get("CloseDate"))
        if closed is None:
            sink.reject(line, raw, f"column CloseDate: a closed opportunity needs a close date, found {rec.get('CloseDate')!r}")
            return
        won = _truthy(rec.get("IsWon")) or rec.get("StageName") == "Closed Won"
        props = {**base, "amount": rec.get("Amount"), "stage": rec.get("StageName")}
        sink.add("events", line, raw, event_id=f"{ctx.source}:opportunity:{oid}:closed:{epoch_key(closed)}", timestamp=closed,
                 event="opportunity_won" if won else "opportunity_lost", properties=json_text(props), _account_ref=alias)  # fmt: skip


def _history(sink: RecordSink, ctx: ReadContext, line: int, raw: str, rec: dict[str, Any]) -> None:
    created, _ = parse_ts(rec.get("CreatedDate"))
    if created is None:
        sink.reject(line, raw, f"column CreatedDate: expected a date-time, found {rec.get('CreatedDate')!r}")
        return
    props = {"opportunity_id": rec["OpportunityId"], "stage": rec.get("StageName"), "amount": rec.get("Amount"), "close_date": rec.get("CloseDate")}
    sink.add("events", line, raw, event_id=f"{ctx.source}:opportunity_history:{rec['Id']}", timestamp=created, event="opportunity_stage_changed",
             properties=json_text(props), _account_ref=f"opportunity:{rec['OpportunityId']}")  # fmt: skip


def _case(sink: RecordSink, ctx: ReadContext, line: int, raw: str, rec: dict[str, Any]) -> None:
    created, _ = parse_ts(rec.get("CreatedDate"))
    if created is None:
        sink.reject(line, raw, f"column CreatedDate: expected a date-time, found {rec.get('CreatedDate')!r}")
        return
    closed, _ = parse_ts(rec.get("ClosedDate"))
    tid = f"{ctx.source}:{rec['Id']}"
    supplied = norm_email(rec.get("SuppliedEmail"))  # web-to-case / email-to-case sender
    person = f"contact:{rec['ContactId']}" if rec.get("ContactId") else (f"email:{supplied}" if supplied else None)
    account = f"account:{rec['AccountId']}" if rec.get("AccountId") else None
    used = {"Id", "AccountId", "ContactId", "Subject", "Description", "Status", "Priority", "Origin", "CreatedDate", "ClosedDate"}
    sink.add(
        "tickets", line, raw, ticket_id=tid, created_at=created, solved_at=closed, channel=(rec.get("Origin") or "").lower() or None,
        subject=rec.get("Subject"), body=rec.get("Description"), status=(rec.get("Status") or "").lower() or None,
        priority=(rec.get("Priority") or "").lower() or None, properties=json_text(_extras(rec, used)), _person_ref=person, _account_ref=account,
    )  # fmt: skip
    props = json_text({"ticket_id": tid, "case_number": rec.get("CaseNumber")})
    sink.add("events", line, raw, event_id=f"{tid}:created", timestamp=created, event="ticket_created", properties=props, _person_ref=person, _account_ref=account)
    if closed is not None:
        sink.add("events", line, raw, event_id=f"{tid}:solved:{epoch_key(closed)}", timestamp=closed, event="ticket_solved", properties=props, _person_ref=person, _account_ref=account)
    if supplied:
        sink.add("identities", line, raw, source_id=f"email:{supplied}", kind="person", email=supplied)


#: This reader as :mod:`journeylib.io.registry` lists it.
READER = VendorReader(
    name=NAME,
    category="crm",
    detect_kind=detect_kind,
    read=read_salesforce,
    kind_tables=KIND_TABLES,
    order=60,
    account_rank=1,
)
