"""HubSpot CRM CSV export reader: contacts, companies, deals.

Reads the CSV files of HubSpot's *Export* of a records view
(https://knowledge.hubspot.com/import-and-export/export-records), with the
default property labels as column names: ``Record ID``, ``Email``,
``First Name``, ``Last Name``, ``Job Title``, ``Lifecycle Stage``, ``Create
Date``, ``Last Modified Date``, ``Became a <stage> Date`` and ``Associated
Company IDs`` for contacts; ``Company name``, ``Company Domain Name``,
``Website URL`` and the Salesforce connector's ``Salesforce Account ID`` for
companies; ``Deal Name``, ``Deal Stage``, ``Pipeline``, ``Amount``,
``Close Date`` and the stage history columns ``Date entered "<stage>
(<pipeline>)"`` for deals (https://knowledge.hubspot.com/properties/hubspots-default-deal-properties).
The kind is recognised from the header.

A record's own update time is ``Last Modified Date``, else the internal
property names ``lastmodifieddate`` (contacts) or ``hs_lastmodifieddate``
(companies, deals) when the export carries them, else ``Create Date``; it
dates the identity record customers and users are derived from, so an older
export never overrides a newer one (docs/adr/0009-snapshots-by-their-own-time.md).

Dates and times
---------------
HubSpot writes dates as ``2025-12-31`` and times as ``2025-12-31 14:30``, in
the portal's time zone and without an offset; exports opened and saved in a
spreadsheet may hold ``31/12/2025`` or ``12/31/2025 2:30 PM``. Times without
an offset are read in the source's ``timezone`` option (default UTC; the
count is noted). Which number of ``03/04/2025`` is the day comes from the
``date_order`` option (``day_first`` or ``month_first``) or from the file's
own dates (``31/12/2025`` makes it day first); a date neither settles is
refused, never guessed (:class:`journeylib.io.common.DateReader`). ISO-8601
with an offset and epoch milliseconds are read too.

Mapping
-------
* contacts → people ``contact:<Record ID>`` (e-mail, first associated
  company ``company:<id>``, ``Company Name`` for fuzzy matching) and one
  ``lifecycle_stage_changed`` event per ``Became a ... Date``;
* companies → accounts ``company:<Record ID>`` (domain; ``Salesforce
  Account ID`` as explicit id; ``MRR``, ``Plan``, ``Segment``,
  ``Churn Date``, ``Renewal Date`` for the customers table when HubSpot is the
  account master) and their ``lifecycle_stage_changed`` events;
* deals → ``deal_created`` at ``Create Date`` and one ``deal_stage_changed``
  per ``Date entered`` column, referring to the deal's first company; each
  deal is an alias ``deal:<Record ID>`` of that company.

Every other column is kept in ``properties``/attributes.

What cannot be read
-------------------
A row without ``Record ID``, with a malformed e-mail, or whose required
value cannot be stored is quarantined. A ``Became a ... Date`` or
``Date entered ...`` value that cannot be read is quarantined too (the event
it would have made is missing), while the record itself is loaded. An
optional value that cannot be read (``Create Date``, ``Last Modified Date``,
``Churn Date``, ``Renewal Date``, ``MRR``) is stored empty and noted in
``ingest_notes``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
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
    read_bytes,
    read_csv_records,
    require_columns,
    web_domain,
)
from journeylib.io.registry import VendorReader

NAME = "hubspot"
#: File kinds this reader recognises.
KINDS: tuple[str, ...] = ("contacts", "companies", "deals")
#: Canonical table each kind mainly feeds.
KIND_TABLES: dict[str, str] = {"contacts": "identities", "companies": "identities", "deals": "events"}
REQUIRED: dict[str, tuple[str, ...]] = {
    "contacts": ("Record ID", "Email"),
    "companies": ("Record ID", "Company name"),
    "deals": ("Record ID", "Deal Name", "Deal Stage"),
}
_BECAME = re.compile(r"^Became an? (.+) Date$")
_ENTERED = re.compile(r"^Date entered [\"“](.+?)[\"”]$")
_COMPANY_IDS = ("Associated Company IDs", "Associated Company ID", "Associated Company IDs (Primary)", "Company ID")
#: Columns holding a record's own update time, the first present wins.
MODIFIED_COLUMNS: tuple[str, ...] = ("Last Modified Date", "lastmodifieddate", "hs_lastmodifieddate")


def _kind_of(header: list[str]) -> str | None:
    cols = set(header)
    if "Deal Stage" in cols or "Deal Name" in cols:
        return "deals"
    if "Email" in cols or "First Name" in cols or "Last Name" in cols:
        return "contacts"
    if "Company name" in cols or "Company Domain Name" in cols:
        return "companies"
    return None


def detect_kind(path: Path) -> str:
    """Recognise a HubSpot export from its header: ``contacts``, ``companies`` or ``deals``.

    Raises
    ------
    SourceFormatError
        If the header is none of them, or lacks a required column.
    """
    header, _, _ = read_csv_records(path, read_bytes(path))
    kind = _kind_of(header)
    if kind is None:
        found = ", ".join(repr(h) for h in header[:10])
        msg = (
            f"{path}: line 1: not a HubSpot CRM export. Expected the header of a contacts (Record ID, Email), "
            f"companies (Record ID, Company name) or deals (Record ID, Deal Name, Deal Stage) export; found {found}."
        )
        raise SourceFormatError(msg)
    require_columns(path, header, f"HubSpot {kind}", REQUIRED[kind], "Export the view again with HubSpot's default property labels, or rename the column back")
    return kind


def read_hubspot(path: str | Path, ctx: ReadContext) -> Iterator[Part]:
    """Read a HubSpot contacts, companies or deals CSV export.

    Parameters
    ----------
    path : str or pathlib.Path
        The CSV file (UTF-8, a byte-order mark is fine).
    ctx : ReadContext
        Source label; notes receive assumptions.

    Yields
    ------
    Part
        ``events``, ``identities`` and ``rejects`` parts.

    Raises
    ------
    SourceFormatError
        If the file is not such an export.
    """
    p = Path(path)
    kind = detect_kind(p)
    header, rows, rejects = read_csv_records(p, read_bytes(p), ctx.caps)
    sink = RecordSink(str(p))
    for line, raw, reason in rejects:
        sink.reject(line, raw, reason)
    handler = {"contacts": _contact, "companies": _company, "deals": _deal}[kind]
    dates = DateReader.for_file((v for _, fields, _ in rows for v in fields), timezone=ctx.options.get("timezone"), date_order=ctx.options.get("date_order"))
    naive = 0
    for line, fields, raw in rows:
        rec = {h: clean(v) for h, v in zip(header, fields, strict=True)}
        if rec.get("Record ID") is None:
            sink.reject(line, raw, "column Record ID: required value is empty")
            continue
        with sink.record(line, raw):
            naive += handler(sink, ctx, _Row(sink, dates, line, raw, rec))
    if naive:
        ctx.notes[f"dates without offset taken as {dates.zone_name}"] += naive
    yield from sink.parts()


class _Row:
    """One record being read, with the file's date reader."""

    def __init__(self, sink: RecordSink, dates: DateReader, line: int, raw: str, rec: dict[str, Any]) -> None:
        self.sink, self.dates, self.line, self.raw, self.rec = sink, dates, line, raw, rec
        self.key = f"{rec['Record ID']}"

    def ts(self, col: str) -> tuple[Any, int]:
        """Return the optional time *col* (noted when it cannot be read) and 1 if it had no offset."""
        v = self.rec.get(col)
        dt, reason, naive = self.dates.parse(v)
        if reason:
            self.sink.note(self.line, "identities", self.key, col, v, reason)
        return dt, int(dt is not None and naive)

    def modified(self) -> tuple[Any, int]:
        """Return the record's own update time (the first of :data:`MODIFIED_COLUMNS` present) as :meth:`ts` does."""
        return self.ts(next((c for c in MODIFIED_COLUMNS if self.rec.get(c) is not None), MODIFIED_COLUMNS[0]))

    def event_ts(self, col: str, what: str) -> tuple[Any, int]:
        """Return the time of an event column; one that cannot be read is quarantined with the reason (no event)."""
        v = self.rec.get(col)
        dt, reason, naive = self.dates.parse(v, expected="a date such as 2025-12-31 or 31/12/2025")
        if reason:
            self.sink.reject(self.line, self.raw, f"column {col}: {reason}, found {v!r}; no {what} event was made")
        return dt, int(dt is not None and naive)


def _first_id(value: Any) -> str | None:
    if value is None:
        return None
    ids = [x.strip() for x in re.split(r"[;,]", str(value)) if x.strip()]
    return ids[0] if ids else None


def _stage_events(sink: RecordSink, ctx: ReadContext, row: _Row, obj: str, rid: str, refs: dict[str, Any]) -> int:
    naive = 0
    rec = row.rec
    for col in rec:
        m = _BECAME.match(col)
        if not m or rec[col] is None:
            continue
        dt, n = row.event_ts(col, "lifecycle_stage_changed")
        naive += n
        if dt is None:
            continue
        stage = m.group(1).lower().replace(" ", "_")
        sink.add("events", row.line, row.raw, event_id=f"{ctx.source}:{obj}:{rid}:lifecycle:{stage}", timestamp=dt, event="lifecycle_stage_changed",
                 properties=json_text({"object": obj, "record_id": rid, "stage": stage}), **refs)  # fmt: skip
    return naive


def _extras(rec: dict[str, Any], used: set[str]) -> dict[str, Any]:
    return {k: v for k, v in rec.items() if v is not None and k not in used and not _BECAME.match(k) and not _ENTERED.match(k)}


def _contact(sink: RecordSink, ctx: ReadContext, row: _Row) -> int:
    rec, line, raw = row.rec, row.line, row.raw
    rid = str(rec["Record ID"])
    email = norm_email(rec.get("Email"))
    if rec.get("Email") is not None and email is None:
        sink.reject(line, raw, f"column Email: expected an e-mail address, found {rec['Email']!r}")
        return 0
    ref = f"contact:{rid}"
    row.key = ref
    updated, n1 = row.modified()
    created, n2 = row.ts("Create Date")
    company = next((_first_id(rec.get(c)) for c in _COMPANY_IDS if rec.get(c)), None)
    used = {"Record ID", "Email", "Last Modified Date", "Create Date", "Job Title", "Company Name", *_COMPANY_IDS}
    attrs = {"role": rec.get("Job Title"), "created_at": created.isoformat() if created else None, "lifecycle_stage": rec.get("Lifecycle Stage"), "properties": _extras(rec, used)}
    sink.add("identities", line, raw, source_id=ref, kind="person", email=email, name=rec.get("Company Name"),
             account_ref=f"company:{company}" if company else None, updated_at=updated or created, attributes=json_text(attrs))  # fmt: skip
    return n1 + n2 + _stage_events(sink, ctx, row, "contact", rid, {"_person_ref": ref})


def _company(sink: RecordSink, ctx: ReadContext, row: _Row) -> int:
    rec, line, raw = row.rec, row.line, row.raw
    rid = str(rec["Record ID"])
    ref = f"company:{rid}"
    row.key = ref
    updated, n1 = row.modified()
    created, n2 = row.ts("Create Date")
    domain = web_domain(rec.get("Company Domain Name")) or web_domain(rec.get("Website URL"))

    def iso(col: str) -> str | None:
        dt, reason, _ = row.dates.parse(rec.get(col))
        if reason and not _BECAME.match(col):  # an unreadable Became ... Date is quarantined with its event
            sink.note(line, "identities", ref, col, rec.get(col), reason)
        return dt.isoformat() if dt else None

    used = {"Record ID", "Company name", "Company Domain Name", "Website URL", "Last Modified Date", "Create Date", "Salesforce Account ID", "MRR", "Plan", "Segment", "Churn Date", "Renewal Date"}
    attrs = {
        "name": rec.get("Company name"), "domain": domain, "segment": rec.get("Segment"), "plan": rec.get("Plan"),
        "mrr": optional_number(sink, line, "identities", ref, rec, "MRR"),
        "signup_at": created.isoformat() if created else None, "converted_at": iso("Became a Customer Date"),
        "churned_at": iso("Churn Date"), "renewal_at": iso("Renewal Date"), "properties": _extras(rec, used),
    }  # fmt: skip
    sink.add("identities", line, raw, source_id=ref, kind="account", name=rec.get("Company name"), domain=domain,
             link_id=rec.get("Salesforce Account ID"), link_source="salesforce", updated_at=updated or created, attributes=json_text(attrs))  # fmt: skip
    return n1 + n2 + _stage_events(sink, ctx, row, "company", rid, {"_account_ref": ref})


def _deal(sink: RecordSink, ctx: ReadContext, row: _Row) -> int:
    rec, line, raw = row.rec, row.line, row.raw
    rid = str(rec["Record ID"])
    alias = f"deal:{rid}"
    row.key = alias
    created, naive = row.ts("Create Date")
    updated, _ = row.modified()
    company = next((_first_id(rec.get(c)) for c in _COMPANY_IDS if rec.get(c)), None)
    account = f"company:{company}" if company else None
    sink.add("identities", line, raw, source_id=alias, kind="alias", account_ref=account, updated_at=updated or created)
    base = {"deal_id": rid, "deal_name": rec.get("Deal Name"), "pipeline": rec.get("Pipeline")}
    if created is not None:
        sink.add("events", line, raw, event_id=f"{ctx.source}:deal:{rid}:created", timestamp=created, event="deal_created", properties=json_text(base), _account_ref=alias)
    entered = 0
    for col in rec:
        m = _ENTERED.match(col)
        if not m or rec[col] is None:
            continue
        dt, n = row.event_ts(col, "deal_stage_changed")
        naive += n
        if dt is None:
            continue
        stage = m.group(1)
        entered += 1
        sink.add("events", line, raw, event_id=f"{ctx.source}:deal:{rid}:stage:{stage}:{epoch_key(dt)}", timestamp=dt, event="deal_stage_changed",
                 properties=json_text({**base, "stage": stage}), _account_ref=alias)  # fmt: skip
    if created is None and not entered:
        sink.reject(line, raw, "deal without Create Date or any Date entered column: nothing to place on the timeline")
    return naive


#: This reader as :mod:`journeylib.io.registry` lists it.
READER = VendorReader(
    name=NAME,
    category="crm",
    detect_kind=detect_kind,
    read=read_hubspot,
    kind_tables=KIND_TABLES,
    order=50,
    account_rank=2,
    options=("timezone", "date_order"),
)
