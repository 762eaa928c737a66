"""Identity stitching: every source id resolved to a paying account and a person.

Each vendor reader records who its ids are (``source_identities``: a CRM
contact's e-mail, account and fields, a Mixpanel distinct_id's e-mail and CRM
id, a Zendesk organization's domain); :func:`resolve_identities` turns that
evidence into ``identity_map`` and writes ``customer_id``/``user_id`` of the
vendor rows of ``events``, ``tickets`` and ``messages``. It recomputes
everything from the stored evidence each time new data arrives, so the result
depends only on *what* was ingested, never on the order: events loaded before
their CRM record get their customer as soon as it arrives.

Accounts
--------
The **account sources** (``IdentityOptions.account_sources``; by default the
sources read by salesforce, then hubspot, intercom, zendesk) are ranked; the
first one holding accounts is the *master*: each of its accounts is a
customer, ``customer_id`` being its id in that tool (method ``crm_account``).
An account of another source resolves, in order, by an explicit id of a
master account it carries (``crm_id``: HubSpot's *Salesforce Account ID*, a
Zendesk organization's ``external_id``, an Intercom ``company_id``), by its
web domain (``domain``), or by fuzzy company name (``fuzzy_name``, off by
default). An account of a secondary source that none of these resolves (a
HubSpot company with no Salesforce account yet, typically a trial) becomes a
customer of its own, ``customer_id`` ``<source>:<its id>`` (method
``own_account``; ``IdentityOptions.own_accounts``). Secondary sources are
taken in rank order, so a later source's account resolves by id or domain to
a customer an earlier one created. An ``ambiguous`` account never creates one.

People
------
A person id resolves, in order of trust, by:

1. ``crm_id`` — an explicit account id on the record (e.g. an analytics user
   property such as ``salesforce_account_id``);
2. ``product_user_id`` — an analytics user id (Mixpanel ``distinct_id``,
   Amplitude ``user_id``) equal to the product user id stored on a contact
   of another tool (a Salesforce custom field, a HubSpot property, an
   Intercom ``external_id``): the contact's account. The contact fields are
   ``IdentityOptions.product_user_id_fields`` per source, or, for sources
   not listed there, detected by value overlap (see below);
3. ``email`` — its normalised e-mail (trimmed, lower case; ``+tag`` dropped
   only with ``plus_addressing``) equals that of a CRM contact (a person of a
   salesforce or hubspot source) attached to an account. An analytics user
   id that is an e-mail address (any case, white space around it) counts as
   the person's e-mail;
4. ``contact_account`` — the record's own account in its tool (a CRM
   contact's account, a Zendesk user's organization, an Intercom contact's
   company) resolves;
5. ``domain`` — its e-mail domain equals the domain of exactly one customer
   (never for free-mail domains such as gmail.com, outlook.com);
6. ``fuzzy_name`` — its company name matches one customer's name with a
   similarity of at least ``fuzzy_threshold`` (optional; the confidence is the
   similarity);
7. ``device`` — an anonymous analytics id (Mixpanel ``$device:…``, Amplitude
   ``device_id``) that an event links to an identified person (one event
   carrying both ids; the readers' ``DEVICE_LINKS``) takes that person's
   customer and ``user_id``; linked to people of two customers it is
   ``ambiguous``.

When a step finds **two or more** accounts the id is ``ambiguous`` and
resolution stops: a conflict is never guessed. An id no step resolves is
``unmatched``. Both keep ``customer_id`` NULL; their rows are kept and counted
in the report. A person's ``user_id`` is its normalised e-mail when it has
exactly one; else, matched by ``product_user_id`` or ``device``, that of the
person it was matched to; else ``<source>:<source_id>``.

Product user id fields detected
-------------------------------
For a source of people that is not a product-analytics source and is not
named in ``product_user_id_fields``, each field of its contacts (the export's
columns or properties kept in the record's attributes) is a candidate. Its
values (trimmed; e-mail addresses left out, the e-mail rule covers them) are
compared with the analytics user ids (anonymous device ids left out). The
field is used when at least ``product_user_id_min_matches`` (default 3) of its
distinct values are analytics user ids **and** they are at least
``product_user_id_min_share`` (default 0.5) of its distinct values, and its
values are unique per contact for at least 90% of the contacts holding one.
Never by the field's name. The summary names every field used, how it was
found and its overlap.

Customers and users from vendor data
-------------------------------------
The master source's accounts and the secondary accounts that became customers
(``own_account``) become ``customers`` rows, and resolved people ``users``
rows (``properties.derived_by = "journeylib.store.identity"``,
``properties.source`` = the source that created the row); they are replaced
on each resolution, and rows loaded by the generic ingest are left alone.
:func:`customer_origin_data` counts customers by the source that created them.
"""

from __future__ import annotations

import difflib
import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from journeylib.io import amplitude, mixpanel
from journeylib.io.common import FREE_MAIL_DOMAINS, email_domain, norm_email
from journeylib.io.registry import account_readers, readers_in_category
from journeylib.store.database import Store
from journeylib.store.dialect import sql_json_text, sql_quote
from journeylib.store.merge import replace_derived_rows
from journeylib.store.staging import (
    apply_identity_map,
    ensure_vendor_tables,
    identity_observations,
    replace_identity_map,
    vendor_tables_exist,
)

__all__ = [
    "DERIVED_MARKER",
    "METHODS",
    "IdentityOptions",
    "ProductIdField",
    "ResolutionSummary",
    "customer_origin_data",
    "identity_report_data",
    "identity_summary_data",
    "resolve_identities",
    "unmatched_ids_data",
    "write_identity_report",
]

#: Resolution methods in order of trust, then the two non-resolutions.
METHODS: tuple[str, ...] = (
    "crm_account", "own_account", "crm_id", "product_user_id", "email", "contact_account", "domain", "fuzzy_name", "device", "ambiguous", "unmatched",
)  # fmt: skip
_CONFIDENCE = {"crm_account": 1.0, "own_account": 1.0, "crm_id": 1.0, "product_user_id": 1.0, "email": 0.95, "contact_account": 0.9, "domain": 0.8}
#: Confidence of a ``product_user_id`` match through a field detected by overlap (not configured).
DETECTED_FIELD_CONFIDENCE = 0.95
#: Readers whose people are CRM contacts (the reference for the ``email`` method): the ``crm`` readers.
CRM_READERS: tuple[str, ...] = readers_in_category("crm")
#: Product-analytics readers: their people are the analytics user ids.
PRODUCT_READERS: tuple[str, ...] = readers_in_category("product")
#: Default rank of account sources, by reader (:attr:`journeylib.io.registry.VendorReader.account_rank`).
ACCOUNT_READERS: tuple[str, ...] = account_readers()
#: Per analytics reader: source-id prefixes of identified people, of anonymous devices, and the device links.
ANALYTICS_IDS: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[tuple[str, tuple[str, ...]], ...]]] = {
    mixpanel.NAME: (mixpanel.USER_ID_PREFIXES, mixpanel.ANONYMOUS_ID_PREFIXES, mixpanel.DEVICE_LINKS),
    amplitude.NAME: (amplitude.USER_ID_PREFIXES, amplitude.ANONYMOUS_ID_PREFIXES, amplitude.DEVICE_LINKS),
}
#: Share of a detected field's contacts whose value no other contact of the source holds (an id is unique).
UNIQUE_SHARE = 0.9
#: ``properties.derived_by`` of customers/users rows written by resolution.
DERIVED_MARKER = "journeylib.store.identity"
#: Attribute keys of a person record that are not candidate product-user-id fields.
_NOT_FIELDS = frozenset({"role", "created_at", "name", "lifecycle_stage", "properties"})


class IdentityOptions(BaseModel):
    """How identities are resolved (the ``identity`` section of ``sources.yaml``).

    Parameters
    ----------
    account_sources : list of str, optional
        Source names that hold accounts, most trusted first; the first with
        accounts is the master (its account ids become ``customer_id``).
        Default: sources read by salesforce, hubspot, intercom, zendesk, in
        that order.
    plus_addressing : bool, default False
        Treat ``jane+news@acme.com`` as ``jane@acme.com``.
    free_mail_domains : list of str
        Domains added to the built-in free-mail list (never used to match an
        account by domain).
    fuzzy_names : bool, default False
        Match remaining ids by company name.
    fuzzy_threshold : float, default 0.92
        Minimum similarity (0.5..1) of a fuzzy match.
    own_accounts : bool, default True
        An account of a secondary account source that resolves to no master
        account becomes a customer of its own (``<source>:<id>``).
    product_user_id_fields : dict of str to list of str
        Source name → fields of its contacts holding the product's user id
        (e.g. ``{salesforce: [App_User_ID__c], intercom: [external_id]}``).
        A source listed here is not searched for other fields.
    detect_product_user_ids : bool, default True
        Detect such fields by value overlap for the sources not listed.
    product_user_id_min_matches : int, default 3
        Fewest distinct values of a field equal to analytics user ids for it
        to be detected.
    product_user_id_min_share : float, default 0.5
        Smallest share (0..1] of a field's distinct values that must be
        analytics user ids for it to be detected.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    account_sources: tuple[str, ...] | None = None
    plus_addressing: bool = False
    free_mail_domains: tuple[str, ...] = ()
    fuzzy_names: bool = False
    fuzzy_threshold: float = Field(default=0.92, ge=0.5, le=1.0)
    own_accounts: bool = True
    product_user_id_fields: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    detect_product_user_ids: bool = True
    product_user_id_min_matches: int = Field(default=3, ge=1)
    product_user_id_min_share: float = Field(default=0.5, gt=0.0, le=1.0)


@dataclass(frozen=True)
class ProductIdField:
    """A contact field used as the product's user id.

    Attributes
    ----------
    source : str
        The source of the contacts.
    field : str
        The field (column or property name).
    how : str
        ``configured`` (``product_user_id_fields``) or ``detected`` (value overlap).
    values : int
        Distinct non-empty values of the field.
    matches : int
        Of those, the ones equal to an analytics user id.
    """

    source: str
    field: str
    how: str
    values: int
    matches: int

    def text(self) -> str:
        """One phrase, e.g. ``salesforce.App_User_ID__c (detected: 41 of 44 values are analytics user ids)``."""
        return f"{self.source}.{self.field} ({self.how}: {self.matches:,} of {self.values:,} values are analytics user ids)"


@dataclass(frozen=True)
class ResolutionSummary:
    """What one resolution did.

    Attributes
    ----------
    master : str or None
        The account source whose ids are ``customer_id``.
    ids : dict
        Ids per method over all sources.
    rows_changed : dict
        Rows whose customer/user changed, per table.
    customers, users : int
        Derived rows written.
    customers_by_source : dict
        Derived customers per source that created them.
    product_user_id_fields : tuple of ProductIdField
        Contact fields used as product user ids.
    device_links : int
        Anonymous ids that an event links to an identified person.
    """

    master: str | None
    ids: dict[str, int] = field(default_factory=dict)
    rows_changed: dict[str, int] = field(default_factory=dict)
    customers: int = 0
    users: int = 0
    customers_by_source: dict[str, int] = field(default_factory=dict)
    product_user_id_fields: tuple[ProductIdField, ...] = ()
    device_links: int = 0

    def summary(self) -> str:
        """One line for humans."""
        ids = ", ".join(f"{m} {self.ids[m]:,}" for m in METHODS if self.ids.get(m))
        changed = sum(self.rows_changed.values())
        by_source = ", ".join(f"{s} {n:,}" for s, n in sorted(self.customers_by_source.items()))
        fields = "; ".join(f.text() for f in self.product_user_id_fields) or "none"
        return (
            f"identity: master {self.master or '(none: no account source)'}; ids {ids or 'none'}; "
            f"{changed:,} row(s) re-attributed; {self.customers:,} customers ({by_source or 'none'}) and {self.users:,} users derived; "
            f"product user ids from {fields}; {self.device_links:,} anonymous device id(s) linked to a person"
        )


def _native(source_id: str) -> str:
    return source_id.split(":", 1)[1] if ":" in source_id else source_id


_NAME_NOISE = re.compile(r"\b(inc|ltd|llc|gmbh|group|co|ag|sa|plc|corp|corporation|company)\b\.?")


def _norm_name(name: Any) -> str:
    if not isinstance(name, str):
        return ""
    s = _NAME_NOISE.sub(" ", name.lower().replace("&", " "))
    return " ".join(re.sub(r"[^a-z0-9 ]", " ", s).split())


def _scalar_text(value: Any) -> str | None:
    if isinstance(value, bool) or value is None or isinstance(value, (dict, list)):
        return None
    if isinstance(value, float):
        value = int(value) if value.is_integer() else value
    text = str(value).strip()
    return text or None


def _contact_fields(attributes: str | None) -> dict[str, str]:
    """Return the scalar fields of a person record's attributes: its own keys and its ``properties``."""
    if not attributes:
        return {}
    try:
        attrs = json.loads(attributes)
    except ValueError:
        return {}
    if not isinstance(attrs, dict):
        return {}
    out: dict[str, str] = {}
    props = attrs.get("properties")
    for key, value in [*attrs.items(), *(props.items() if isinstance(props, dict) else ())]:
        text = _scalar_text(value)
        if text is not None and key not in _NOT_FIELDS:
            out.setdefault(str(key), text)
    return out


class _Resolver:
    """The resolution rules over one snapshot of the evidence (pure; no store access)."""

    def __init__(self, obs: pd.DataFrame, options: IdentityOptions, links: pd.DataFrame | None = None) -> None:
        self.o = options
        self.free = FREE_MAIL_DOMAINS | {d.lower() for d in options.free_mail_domains}
        self.obs = obs
        self.readers = dict(zip(obs["source"], obs["reader"], strict=False))
        self.ranked = self._ranked()
        self.master = self.ranked[0] if self.ranked else None
        # one entry per (source, source_id): sets of evidence
        self.ev: dict[tuple[str, str], dict[str, Any]] = {}
        for r in obs.itertuples(index=False):
            k = (str(r.source), str(r.source_id))
            e = self.ev.setdefault(
                k,
                {"kind": r.kind, "reader": r.reader, "emails": set(), "links": set(), "names": set(), "domains": set(), "accounts": set(), "attributes": None},
            )
            em = norm_email(r.email, plus_addressing=options.plus_addressing)
            if em:
                e["emails"].add(em)
            for key, val in (("links", r.link_id), ("names", r.name), ("domains", r.domain), ("accounts", r.account_ref)):
                if isinstance(val, str) and val.strip():
                    e[key].add(val.strip().lower() if key == "domains" else val.strip())
            if isinstance(r.attributes, str):
                e["attributes"] = r.attributes
        # analytics people: identified user ids (an e-mail-shaped one is e-mail evidence) and anonymous devices
        self.user_ids: dict[str, set[tuple[str, str]]] = defaultdict(set)  # analytics user id -> its (source, source_id)
        for k, e in self.ev.items():
            if e["kind"] != "person" or e["reader"] not in ANALYTICS_IDS:
                continue
            users, anonymous, _ = ANALYTICS_IDS[e["reader"]]
            if k[1].startswith(users) and not k[1].startswith(anonymous):
                uid = _native(k[1])
                em = norm_email(uid, plus_addressing=options.plus_addressing)
                if em:
                    e["emails"].add(em)
                elif uid.strip():
                    self.user_ids[uid.strip()].add(k)
        # device links: anonymous person -> identified people of its source
        self.device_targets: dict[tuple[str, str], set[tuple[str, str]]] = defaultdict(set)
        if links is not None:
            for r in links.itertuples(index=False):
                dev, target = (str(r.source), str(r.device_ref)), (str(r.source), str(r.target))
                if dev != target and dev in self.ev and target in self.ev:
                    self.device_targets[dev].add(target)
        self.result: dict[tuple[str, str], tuple[str | None, str, float | None]] = {}
        self.user_of: dict[tuple[str, str], tuple[str, str]] = {}  # person matched through another person's id
        self.created: dict[str, tuple[str, str]] = {}  # customer_id of an own account -> its (source, source_id)
        self.fields: list[ProductIdField] = []

    def _ranked(self) -> list[str]:
        accounts = self.obs[self.obs["kind"] == "account"]
        have = set(accounts["source"])
        if self.o.account_sources is not None:
            return [s for s in self.o.account_sources if s in have]
        ranked = sorted(have, key=lambda s: (ACCOUNT_READERS.index(self.readers[s]) if self.readers.get(s) in ACCOUNT_READERS else 99, s))
        return [s for s in ranked if self.readers.get(s) in ACCOUNT_READERS]

    # -- accounts -------------------------------------------------------------
    def resolve_accounts(self) -> None:
        self.customer_ids: dict[str, str] = {}  # native master id -> customer_id
        self.domain_index: dict[str, set[str]] = defaultdict(set)
        self.names: dict[str, str] = {}
        for (src, sid), e in self.ev.items():
            if e["kind"] == "account" and src == self.master:
                cid = _native(sid)
                self.customer_ids[cid] = cid
                self.result[(src, sid)] = (cid, "crm_account", 1.0)
                self._index(cid, e)
        self.other_accounts: dict[str, list[tuple[str | None, str, float | None]]] = defaultdict(list)
        rank = {s: i for i, s in enumerate(self.ranked)}
        others = [(k, e) for k, e in self.ev.items() if e["kind"] == "account" and k[0] != self.master]
        # secondary account sources in rank order (then any other source holding accounts): an own account of an
        # earlier source is a customer a later one can resolve to
        for src in sorted({k[0] for k, _ in others}, key=lambda s: (rank.get(s, len(rank)), s)):
            created: list[tuple[str, dict[str, Any]]] = []
            for (s, sid), e in sorted(others):
                if s != src:
                    continue
                res = self._account_steps(e)
                if res[1] == "unmatched" and self.o.own_accounts and src in rank:
                    cid = f"{src}:{_native(sid)}"
                    res = (cid, "own_account", 1.0)
                    self.created[cid] = (src, sid)
                    created.append((cid, e))
                self.result[(s, sid)] = res
                self.other_accounts[_native(sid)].append(res)
            for cid, e in created:  # indexed after the source's own resolution: its accounts never resolve to each other
                self._index(cid, e)

    def _index(self, cid: str, e: dict[str, Any]) -> None:
        for d in e["domains"]:
            if d not in self.free:
                self.domain_index[d].add(cid)
        for n in sorted(e["names"]):
            self.names[cid] = n

    def _account_steps(self, e: dict[str, Any]) -> tuple[str | None, str, float | None]:
        links = {self.customer_ids[x] for x in e["links"] if x in self.customer_ids}
        if links:
            return self._one(links, "crm_id")
        doms = set().union(*(self.domain_index.get(d, set()) for d in e["domains"] if d not in self.free)) if e["domains"] else set()
        if doms:
            return self._one(doms, "domain")
        return self._fuzzy(e)

    def _one(self, candidates: set[str], method: str, confidence: float | None = None) -> tuple[str | None, str, float | None]:
        if len(candidates) == 1:
            return next(iter(candidates)), method, confidence if confidence is not None else _CONFIDENCE[method]
        return None, "ambiguous", None

    def _fuzzy(self, e: dict[str, Any]) -> tuple[str | None, str, float | None]:
        if not self.o.fuzzy_names or not e["names"] or not self.names:
            return None, "unmatched", None
        best: dict[str, float] = {}
        for n in e["names"]:
            q = _norm_name(n)
            if not q:
                continue
            for cid, name in self.names.items():
                score = difflib.SequenceMatcher(None, q, _norm_name(name)).ratio()
                if score >= self.o.fuzzy_threshold:
                    best[cid] = max(best.get(cid, 0.0), score)
        if not best:
            return None, "unmatched", None
        top = max(best.values())
        winners = {c for c, s in best.items() if s == top}
        return self._one(winners, "fuzzy_name", round(top, 4))

    # -- product user ids -------------------------------------------------------
    def find_product_id_fields(self) -> None:
        """Choose the contact fields holding product user ids: configured per source, else detected by overlap."""
        self.product_index: dict[str, set[tuple[tuple[str, str], float]]] = defaultdict(set)  # user id -> (contact, confidence)
        per_source: dict[str, dict[str, dict[tuple[str, str], str]]] = defaultdict(lambda: defaultdict(dict))
        for k, e in self.ev.items():
            if e["kind"] != "person" or e["reader"] in PRODUCT_READERS:
                continue
            for name, value in _contact_fields(e["attributes"]).items():
                per_source[k[0]][name][k] = value
        configured = self.o.product_user_id_fields
        for src in sorted(per_source):
            fields = per_source[src]
            if src in configured:
                chosen = [(f, "configured") for f in configured[src] if f in fields]
            elif self.o.detect_product_user_ids and self.user_ids:
                chosen = [(f, "detected") for f in sorted(fields) if self._overlaps(fields[f])]
            else:
                chosen = []
            for name, how in chosen:
                values = {v for v in fields[name].values()}
                matches = {v for v in values if v in self.user_ids}
                self.fields.append(ProductIdField(source=src, field=name, how=how, values=len(values), matches=len(matches)))
                conf = 1.0 if how == "configured" else DETECTED_FIELD_CONFIDENCE
                for contact, value in fields[name].items():
                    if value in self.user_ids:
                        self.product_index[value].add((contact, conf))

    def _overlaps(self, values: dict[tuple[str, str], str]) -> bool:
        held = [v for v in values.values() if not norm_email(v)]
        distinct = set(held)
        if not distinct or len(distinct) < UNIQUE_SHARE * len(held):
            return False
        matches = sum(1 for v in distinct if v in self.user_ids)
        return matches >= self.o.product_user_id_min_matches and matches >= self.o.product_user_id_min_share * len(distinct)

    # -- people ---------------------------------------------------------------
    def resolve_people(self) -> None:
        people = {k: e for k, e in self.ev.items() if e["kind"] == "person"}
        # anchors: CRM contacts attached to an account (explicit id or their own account)
        self.email_index: dict[str, set[str]] = defaultdict(set)
        anchors: dict[tuple[str, str], tuple[str | None, str, float | None]] = {}
        for k, e in people.items():
            if e["reader"] not in CRM_READERS:
                continue
            res = self._explicit(e) or self._membership(k[0], e)
            if res and res[0]:
                anchors[k] = res
                for em in e["emails"]:
                    self.email_index[em].add(res[0])
        # the people of other tools first: an analytics user id resolves through the contact holding it
        for phase in (False, True):
            for k, e in sorted(people.items()):
                if (e["reader"] in PRODUCT_READERS) != phase:
                    continue
                if k in anchors:  # a CRM contact: its own account is the answer
                    self.result[k] = anchors[k]
                    continue
                self.result[k] = (
                    self._explicit(e) or self._product_id(k) or self._email(e) or self._membership(k[0], e) or self._domain(e) or self._fuzzy(e)
                )
        # anonymous devices that are not resolved by their own evidence join the person an event links them to
        for k in sorted(self.device_targets):
            if self.result.get(k, (None, "unmatched", None))[1] == "unmatched":
                self.result[k] = self._device(k)
        # aliases (a ticket, an opportunity) resolve like the record they name: account_ref, else link_id
        for (src, sid), e in sorted(self.ev.items()):
            if e["kind"] != "alias":
                continue
            alias_res: tuple[str | None, str, float | None] = (None, "unmatched", None)
            for target in [*sorted(e["accounts"]), *sorted(e["links"])]:
                got = self.result.get((src, target))
                if got and (got[0] or alias_res[1] == "unmatched"):
                    alias_res = got
                if alias_res[0]:
                    break
            self.result[(src, sid)] = alias_res

    def _explicit(self, e: dict[str, Any]) -> tuple[str | None, str, float | None] | None:
        found: set[str] = set()
        ambiguous = False
        for link in e["links"]:
            if link in self.customer_ids:
                found.add(self.customer_ids[link])
                continue
            # an id of another account source (e.g. hubspot_company_id) that resolved
            for res in self.other_accounts.get(link, []):
                if res[0]:
                    found.add(res[0])
                elif res[1] == "ambiguous":
                    ambiguous = True
        if ambiguous and not found:
            return None, "ambiguous", None
        return self._one(found, "crm_id") if found else None

    def _product_id(self, k: tuple[str, str]) -> tuple[str | None, str, float | None] | None:
        if k not in self.user_ids.get(_native(k[1]).strip(), ()):
            return None
        found: dict[str, float] = {}
        contacts: list[tuple[str, str]] = []
        ambiguous = False
        for contact, conf in sorted(self.product_index.get(_native(k[1]).strip(), ())):
            res = self.result.get(contact)
            if res and res[0]:
                found[res[0]] = max(found.get(res[0], 0.0), conf)
                contacts.append(contact)
            elif res and res[1] == "ambiguous":
                ambiguous = True
        if not found:
            return (None, "ambiguous", None) if ambiguous else None
        res = self._one(set(found), "product_user_id", max(found.values()))
        if res[0]:
            self.user_of[k] = contacts[0]
        return res

    def _device(self, k: tuple[str, str]) -> tuple[str | None, str, float | None]:
        targets = sorted(self.device_targets[k])
        resolved = [(t, self.result[t]) for t in targets if self.result.get(t, (None,))[0]]
        if not resolved:
            ambiguous = any(self.result.get(t, (None, ""))[1] == "ambiguous" for t in targets)
            return (None, "ambiguous", None) if ambiguous else (None, "unmatched", None)
        customers = {res[0] for _, res in resolved if res[0]}
        if len(customers) > 1:
            return None, "ambiguous", None
        target, res = resolved[0]
        self.user_of[k] = target
        return res[0], "device", res[2]

    def _email(self, e: dict[str, Any]) -> tuple[str | None, str, float | None] | None:
        found: set[str] = set()
        for em in e["emails"]:
            found |= self.email_index.get(em, set())
        return self._one(found, "email") if found else None

    def _membership(self, source: str, e: dict[str, Any]) -> tuple[str | None, str, float | None] | None:
        if not e["accounts"]:
            return None
        found: set[str] = set()
        ambiguous = False
        for ref in e["accounts"]:
            res = self.result.get((source, ref))
            if res and res[0]:
                found.add(res[0])
            elif res and res[1] == "ambiguous":
                ambiguous = True
        if ambiguous and not found:
            return None, "ambiguous", None
        return self._one(found, "contact_account") if found else None

    def _domain(self, e: dict[str, Any]) -> tuple[str | None, str, float | None] | None:
        doms = {d for d in (email_domain(em) for em in e["emails"]) if d and d not in self.free}
        found: set[str] = set()
        for d in doms:
            found |= self.domain_index.get(d, set())
        return self._one(found, "domain") if found else None

    # -- output ---------------------------------------------------------------
    def _own_user(self, k: tuple[str, str]) -> str | None:
        e = self.ev[k]
        return next(iter(e["emails"])) if len(e["emails"]) == 1 else None

    def user_id(self, k: tuple[str, str]) -> str:
        """Return the ``user_id`` of person *k*: its e-mail, else that of the person it was matched through."""
        own = self._own_user(k)
        if own:
            return own
        via = self.user_of.get(k)
        if via and self.result.get(k, (None,))[0]:
            return self._own_user(via) or f"{via[0]}:{via[1]}"
        return f"{k[0]}:{k[1]}"

    def identity_map(self) -> pd.DataFrame:
        rows = []
        for (src, sid), (cid, method, conf) in sorted(self.result.items()):
            e = self.ev[(src, sid)]
            user = self.user_id((src, sid)) if e["kind"] == "person" else None
            rows.append({"source": src, "source_id": sid, "customer_id": cid, "user_id": user, "method": method, "confidence": conf})
        return pd.DataFrame(rows, columns=["source", "source_id", "customer_id", "user_id", "method", "confidence"])


def _derived_customers(res: _Resolver) -> pd.DataFrame:
    rows = []
    created = {v: k for k, v in res.created.items()}
    for (src, sid), e in sorted(res.ev.items()):
        if e["kind"] != "account" or (src != res.master and (src, sid) not in created):
            continue
        attrs = json.loads(e["attributes"]) if e["attributes"] else {}
        props = dict(attrs.get("properties") or {})
        props.update({"derived_by": DERIVED_MARKER, "source": src, "source_id": sid, "method": "own_account" if (src, sid) in created else "crm_account"})
        rows.append(
            {
                "customer_id": created.get((src, sid), _native(sid)),
                "name": attrs.get("name") or next(iter(sorted(e["names"])), None),
                "domain": attrs.get("domain") or next(iter(sorted(e["domains"])), None),
                **{k: attrs.get(k) for k in ("segment", "plan", "signup_at", "converted_at", "churned_at", "renewal_at", "mrr")},
                "properties": json.dumps(props, sort_keys=True, separators=(",", ":"), default=str),
            }
        )
    frame = pd.DataFrame(rows, columns=["customer_id", "name", "domain", "segment", "plan", "signup_at", "converted_at", "churned_at", "renewal_at", "mrr", "properties"])
    for col in ("signup_at", "converted_at", "churned_at", "renewal_at"):
        frame[col] = pd.to_datetime(frame[col], utc=True, format="ISO8601", errors="coerce")
    frame["mrr"] = pd.to_numeric(frame["mrr"], errors="coerce")
    return frame


def _derived_users(res: _Resolver, imap: pd.DataFrame) -> pd.DataFrame:
    people = imap[imap["customer_id"].notna() & imap["user_id"].notna()].copy()
    if people.empty:
        return pd.DataFrame(columns=["user_id", "customer_id", "email", "role", "created_at", "properties"])
    people["rank"] = people["method"].map({m: i for i, m in enumerate(METHODS)})
    people = people.sort_values(["user_id", "rank", "customer_id", "source", "source_id"])
    # The best-ranked identity names the person's account; role and creation time come from the
    # best-ranked identity that has them (an e-mail sender with no role must not blank a CRM contact's).
    known: dict[str, dict[str, Any]] = {}
    for r in people.itertuples(index=False):
        e = res.ev[(str(r.source), str(r.source_id))]
        attrs = json.loads(e["attributes"]) if e["attributes"] else {}
        slot = known.setdefault(str(r.user_id), {})
        for key in ("role", "created_at"):
            if slot.get(key) is None and attrs.get(key) not in (None, ""):
                slot[key] = attrs[key]
    rows = []
    for r in people.drop_duplicates("user_id").itertuples(index=False):
        email = r.user_id if "@" in str(r.user_id) and ":" not in str(r.user_id) else None
        props = {"derived_by": DERIVED_MARKER, "source": r.source, "source_id": r.source_id, "method": r.method}
        slot = known[str(r.user_id)]
        rows.append({"user_id": r.user_id, "customer_id": r.customer_id, "email": email, "role": slot.get("role"), "created_at": slot.get("created_at"), "properties": json.dumps(props, sort_keys=True, separators=(",", ":"))})
    frame = pd.DataFrame(rows)
    frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True, format="ISO8601", errors="coerce")
    return frame


def _device_links(store: Store, obs: pd.DataFrame) -> pd.DataFrame:
    """Return ``source``, ``device_ref``, ``target``: anonymous ids one event links to the person it names.

    Read from the stored events of the analytics sources (their properties
    hold the anonymous id, their ``source_refs`` the person), with the paths
    and id forms each reader declares (``DEVICE_LINKS``).
    """
    empty = pd.DataFrame(columns=["source", "device_ref", "target"])
    sources = sorted({(str(s), str(r)) for s, r in zip(obs["source"], obs["reader"], strict=True) if r in ANALYTICS_IDS})
    if not sources or not vendor_tables_exist(store):
        return empty
    parts = []
    for src, reader in sources:
        for path, templates in ANALYTICS_IDS[reader][2]:
            for template in templates:
                prefix, _, suffix = template.partition("{}")
                parts.append(
                    f"""SELECT DISTINCT r.source, {sql_quote(prefix)} || d.v || {sql_quote(suffix)} AS device_ref, r.person_ref AS target
                    FROM (SELECT event_id, json_extract_string(properties, {sql_quote(path)}) AS v FROM events
                          WHERE source = {sql_quote(src)} AND json_extract_string(properties, {sql_quote(path)}) IS NOT NULL) d
                    JOIN source_refs r ON r.table_name = 'events' AND r.row_id = d.event_id AND r.source = {sql_quote(src)}
                    WHERE r.person_ref IS NOT NULL AND trim(d.v) <> ''"""
                )
    links = store.query(" UNION ".join(parts))
    return links[links["device_ref"] != links["target"]].reset_index(drop=True) if len(links) else empty


def resolve_identities(store: Store, options: IdentityOptions | None = None) -> ResolutionSummary:
    """Resolve every stored source id and re-attribute the vendor rows, in one transaction.

    Parameters
    ----------
    store : Store
        A writable store.
    options : IdentityOptions, optional
        Resolution settings (defaults: see :class:`IdentityOptions`).

    Returns
    -------
    ResolutionSummary
        The master source, ids per method, rows re-attributed, derived rows,
        customers per source that created them, the product-user-id fields
        used and the anonymous ids linked.

    Examples
    --------
    >>> from journeylib.store import Store
    >>> resolve_identities(Store(":memory:")).master is None
    True
    """
    options = options or IdentityOptions()
    ensure_vendor_tables(store)
    obs = identity_observations(store)
    links = _device_links(store, obs)
    res = _Resolver(obs, options, links)
    res.resolve_accounts()
    res.find_product_id_fields()
    res.resolve_people()
    imap = res.identity_map()
    customers = _derived_customers(res)
    users = _derived_users(res, imap)
    with store.transaction():
        replace_identity_map(store, imap)
        changed = apply_identity_map(store)
        n_c = replace_derived_rows(store, "customers", customers, marker=DERIVED_MARKER)
        n_u = replace_derived_rows(store, "users", users, marker=DERIVED_MARKER)
    counts = imap["method"].value_counts().to_dict() if len(imap) else {}
    by_source = {str(json.loads(p)["source"]): 0 for p in customers["properties"]}
    for p in customers["properties"]:
        by_source[str(json.loads(p)["source"])] += 1
    return ResolutionSummary(
        master=res.master, ids={str(k): int(v) for k, v in counts.items()}, rows_changed=changed, customers=n_c, users=n_u,
        customers_by_source=by_source, product_user_id_fields=tuple(res.fields), device_links=len(res.device_targets),
    )  # fmt: skip


# -- the resolution report ---------------------------------------------------------
_ROWS_SQL = """
WITH r AS (
    SELECT r.source, r.table_name,
           CASE WHEN a.customer_id IS NOT NULL THEN a.method ELSE coalesce(p.method, a.method, 'unmatched') END AS method
    FROM source_refs r
    LEFT JOIN identity_map p ON p.source = r.source AND p.source_id = r.person_ref
    LEFT JOIN identity_map a ON a.source = r.source AND a.source_id = r.account_ref
)
SELECT source, method,
       count(*) FILTER (WHERE table_name = 'events') AS events,
       count(*) FILTER (WHERE table_name = 'tickets') AS tickets,
       count(*) FILTER (WHERE table_name = 'messages') AS messages
FROM r GROUP BY ALL
"""


def _warn_without_bookkeeping(store: Store, what: str) -> None:
    """Warn (with the count of identity_map's ids) that *what* is empty because the store is not the ingest's DuckDB file."""
    import warnings

    from journeylib.exceptions import DataQualityWarning

    if store.engine == "duckdb":
        return
    n = int(store.query("SELECT count(*) AS n FROM identity_map")["n"].iloc[0])
    if n:
        msg = (
            f"{what}: identity_map has {n:,} ids, but the ingest's bookkeeping tables (source_identities, source_refs) "
            f"are kept only in the DuckDB store an ingest writes and are not read on engine {store.engine!r}; this table "
            "is therefore empty here, not a finding. Run it on the DuckDB store for the identity-resolution figures."
        )
        warnings.warn(msg, DataQualityWarning, stacklevel=3)


def identity_report_data(store: Store, *, empty_ok: bool = False) -> pd.DataFrame:
    """Count, per source and resolution method, the ids and the rows they carry.

    Parameters
    ----------
    store : Store
        The store (after :func:`resolve_identities`); read-only is fine.
    empty_ok : bool, default False
        Return an empty frame (same columns) instead of raising when no
        vendor export was ever ingested (a store of canonical files only).

    Returns
    -------
    pandas.DataFrame
        One row per (source, method) that occurs, sources alphabetically and
        methods in :data:`METHODS` order:

        ``source``
            Source label.
        ``method``
            One of :data:`METHODS`: ``crm_account``, ``own_account``,
            ``crm_id``, ``product_user_id``, ``email``, ``contact_account``,
            ``domain``, ``fuzzy_name``, ``device``, ``ambiguous`` or
            ``unmatched``.
        ``matched``
            Whether the method gives a customer (False for ambiguous/unmatched).
        ``ids``
            Source ids resolved by the method.
        ``ids_share``
            ``ids`` / all ids of the source.
        ``events``, ``tickets``, ``messages``
            Vendor rows whose customer was decided by an id of this method
            (a row's account reference when it resolves, else its person).
        ``rows_share``
            (events + tickets + messages) / all vendor rows of the source;
            0 when the source has no rows.

    Raises
    ------
    EmptyResultError
        If no source id is stored (nothing vendor-formatted was ingested)
        and *empty_ok* is False.
    """
    from journeylib.exceptions import EmptyResultError

    columns = ["source", "method", "matched", "ids", "ids_share", "events", "tickets", "messages", "rows_share"]
    ids = store.query("SELECT source, method, count(*) AS ids FROM identity_map GROUP BY ALL")
    if ids.empty or not vendor_tables_exist(store):
        _warn_without_bookkeeping(store, "identity_report_data")
        if empty_ok:
            return pd.DataFrame({c: pd.Series(dtype="object" if c in ("source", "method") else "float64") for c in columns})
        msg = "identity_report_data: identity_map is empty. Ingest vendor exports (journeylib ingest --config sources.yaml) first."
        raise EmptyResultError(msg)
    rows = store.query(_ROWS_SQL)
    out = ids.merge(rows, on=["source", "method"], how="outer")
    for col in ("ids", "events", "tickets", "messages"):
        out[col] = out[col].fillna(0).astype("int64")
    out["matched"] = ~out["method"].isin(["ambiguous", "unmatched"])
    out["ids_share"] = out["ids"] / out.groupby("source")["ids"].transform("sum")
    n_rows = out["events"] + out["tickets"] + out["messages"]
    tot = n_rows.groupby(out["source"]).transform("sum")
    out["rows_share"] = np.where(tot > 0, n_rows / tot.where(tot > 0, 1), 0.0)
    out["_o"] = out["method"].map({m: i for i, m in enumerate(METHODS)})
    out = out.sort_values(["source", "_o"]).drop(columns="_o").reset_index(drop=True)
    return out[columns]


def identity_summary_data(store: Store, *, empty_ok: bool = False) -> pd.DataFrame:
    """Summarise resolution per source: matched, ambiguous and unmatched ids and rows.

    Parameters
    ----------
    store : Store
        The store (after :func:`resolve_identities`); read-only is fine.
    empty_ok : bool, default False
        See :func:`identity_report_data`; an empty store gives only the
        ``(all sources)`` row, with zeros.

    Returns
    -------
    pandas.DataFrame
        One row per source plus a last row ``source == "(all sources)"``:
        ``ids``, ``ids_matched``, ``ids_ambiguous``, ``ids_unmatched``,
        ``matched_share`` (ids_matched / ids), ``rows``, ``rows_matched``,
        ``rows_ambiguous``, ``rows_unmatched``, ``rows_matched_share``
        (rows_matched / rows; 0 without rows).
    """
    rep = identity_report_data(store, empty_ok=empty_ok)
    rep = rep.assign(rows=rep["events"] + rep["tickets"] + rep["messages"])
    out = []
    for src, g in [*rep.groupby("source", sort=True), ("(all sources)", rep)]:
        def part(col: str, g: pd.DataFrame = g) -> tuple[int, int, int, int]:
            return (
                int(g[col].sum()),
                int(g.loc[g["matched"], col].sum()),
                int(g.loc[g["method"] == "ambiguous", col].sum()),
                int(g.loc[g["method"] == "unmatched", col].sum()),
            )

        i, im, ia, iu = part("ids")
        r, rm, ra, ru = part("rows")
        out.append(
            {
                "source": src, "ids": i, "ids_matched": im, "ids_ambiguous": ia, "ids_unmatched": iu,
                "matched_share": im / i if i else 0.0,
                "rows": r, "rows_matched": rm, "rows_ambiguous": ra, "rows_unmatched": ru,
                "rows_matched_share": rm / r if r else 0.0,
            }
        )  # fmt: skip
    return pd.DataFrame(out)


def unmatched_ids_data(store: Store, *, n: int = 10) -> pd.DataFrame:
    """List the unresolved ids that carry the most rows, per source.

    Parameters
    ----------
    store : Store
        The store (after :func:`resolve_identities`).
    n : int, default 10
        Ids kept per source.

    Returns
    -------
    pandas.DataFrame
        ``source``, ``source_id``, ``method`` (``ambiguous`` or
        ``unmatched``), ``email`` (the e-mail(s) seen, ``;``-separated),
        ``rows`` (vendor rows referring to the id) and ``rank`` (1 = most
        rows within the source). Empty when every id resolved.
    """
    if n < 1:
        msg = f"unmatched_ids_data: n must be at least 1, got {n}"
        raise ValueError(msg)
    if not vendor_tables_exist(store):
        _warn_without_bookkeeping(store, "unmatched_ids_data")
        return pd.DataFrame(columns=["source", "source_id", "method", "email", "rows", "rank"])
    return store.query(
        """WITH u AS (SELECT source, source_id, method FROM identity_map WHERE method IN ('ambiguous', 'unmatched')),
        rows AS (
            SELECT r.source, x.source_id, count(*) AS rows FROM source_refs r
            JOIN u x ON x.source = r.source AND (x.source_id = r.person_ref OR x.source_id = r.account_ref)
            GROUP BY ALL
        ),
        em AS (SELECT source, source_id, string_agg(DISTINCT email, ';' ORDER BY email) AS email
               FROM source_identities WHERE email IS NOT NULL GROUP BY ALL)
        SELECT * FROM (
            SELECT u.source, u.source_id, u.method, em.email, coalesce(rows.rows, 0) AS rows,
                   row_number() OVER (PARTITION BY u.source ORDER BY coalesce(rows.rows, 0) DESC, u.source_id) AS rank
            FROM u LEFT JOIN rows USING (source, source_id) LEFT JOIN em USING (source, source_id)
        ) WHERE rank <= ? ORDER BY source, rank""",
        [n],
    )


def customer_origin_data(store: Store) -> pd.DataFrame:
    """Count customers by the source that created them.

    Parameters
    ----------
    store : Store
        The store (after :func:`resolve_identities`); read-only is fine.

    Returns
    -------
    pandas.DataFrame
        One row per origin, most customers first (then by name):

        ``source``
            The vendor source whose account created the customer (the master,
            or a secondary source for ``own_account`` customers), or
            ``(canonical files)`` for rows loaded by the generic ingest.
        ``method``
            ``crm_account`` (the master's accounts), ``own_account`` (a
            secondary source's account matching no master account) or
            ``canonical``.
        ``customers``
            Customers created.
        ``share``
            ``customers`` / all customers.
    """
    source = sql_json_text("properties", "source")
    marker = sql_json_text("properties", "derived_by")
    frame = store.query(
        f"""SELECT CASE WHEN {marker} = {sql_quote(DERIVED_MARKER)} THEN {source} ELSE '(canonical files)' END AS source,
                   CASE WHEN {marker} = {sql_quote(DERIVED_MARKER)} THEN coalesce({sql_json_text("properties", "method")}, 'crm_account')
                        ELSE 'canonical' END AS method,
                   count(*) AS customers
            FROM customers GROUP BY 1, 2"""
    )
    frame["customers"] = frame["customers"].astype("int64")
    total = int(frame["customers"].sum())
    frame["share"] = frame["customers"] / total if total else 0.0
    return frame.sort_values(["customers", "source"], ascending=[False, True]).reset_index(drop=True)[["source", "method", "customers", "share"]]


def write_identity_report(store: Store, out_dir: str | Path, *, n: int = 10) -> list[Path]:
    """Write the resolution report as artifacts (Parquet and JSON).

    Parameters
    ----------
    store : Store
        The store (after :func:`resolve_identities`).
    out_dir : str or pathlib.Path
        Folder to write into (created).
    n : int, default 10
        Top unmatched ids per source.

    Returns
    -------
    list of pathlib.Path
        ``identity_report.parquet``, ``identity_summary.parquet``,
        ``identity_unmatched.parquet``, ``identity_customers.parquet``
        (:func:`customer_origin_data`) and ``identity_report.json`` (all four
        tables as records).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tables = {
        "identity_report": identity_report_data(store),
        "identity_summary": identity_summary_data(store),
        "identity_unmatched": unmatched_ids_data(store, n=n),
        "identity_customers": customer_origin_data(store),
    }
    paths = []
    for name, frame in tables.items():
        p = out / f"{name}.parquet"
        frame.to_parquet(p, index=False)
        paths.append(p)
    js = out / "identity_report.json"
    js.write_text(json.dumps({k: json.loads(v.to_json(orient="records")) for k, v in tables.items()}, indent=2))
    paths.append(js)
    return paths

