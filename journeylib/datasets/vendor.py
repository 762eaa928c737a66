"""Vendor-format exports of a synthetic world, with realistic mess and planted identity outcomes.

:func:`write_vendor_exports` reads a world written by
:func:`journeylib.datasets.synthesize` and writes the same truth as the files
the real tools would give a Customer Success team, under ``<world>/vendor/``:

==============  ===================================================================
``salesforce/``  ``Account.csv`` (the account master), ``Contact.csv``,
                 ``Opportunity.csv`` and ``OpportunityHistory.csv`` (conversions,
                 upgrades, renewals, cancellations)
``hubspot/``     ``contacts.csv`` and ``companies.csv`` (lifecycle stages;
                 ``Salesforce Account ID`` on most companies)
``mixpanel/``    product events before the analytics migration, one JSON Lines
                 file per month
``amplitude/``   product events after it, one Export API zip per month
``zendesk/``     ``tickets.json``, ``users.json``, ``organizations.json``
                 (e-mail, web and phone tickets; an agent among the users) and
                 ``comments/ticket_<id>_comments.json`` (the Ticket Comments
                 endpoint, one file per ticket, for some tickets)
``intercom/``    ``conversations.json``, ``contacts.json``, ``companies.json``
                 (chat tickets)
``sendgrid/``    ``events.json`` webhook batches (lifecycle e-mails)
``mailchimp/``   one e-mail activity report per newsletter send month
==============  ===================================================================

plus ``sources.yaml`` (so ``journeylib ingest --config <world>/vendor/sources.yaml``
loads them) and ``vendor_truth.json``.

The mess planted
----------------
* e-mails in mixed case with surrounding white space (``messy_email_share``
  of people, in every tool);
* people missing from both CRMs (``missing_from_crm_share``); half of them
  use a free-mail address (gmail.com, outlook.com) in every tool and can only
  be matched where their tool knows their account;
* an explicit ``salesforce_account_id`` user property on the product events of
  ``explicit_id_share`` of the accounts;
* a shared support inbox (``support@helpdesk-partners.net``) listed as a CRM
  contact of two accounts and raising tickets for both: its id is ambiguous;
* overlapping exports: each monthly Mixpanel file and Amplitude archive also
  holds the first day of the next month, with the same insert ids;
* Zendesk times with ``+02:00`` offsets, Salesforce times with ``+0000``;
* a few malformed lines (truncated JSON, a JSON array, an unknown SendGrid
  event);
* values that need the boundary rules: Intercom ``conversation_rating`` on
  its native 1–5 scale and Zendesk good/bad ratings (rescaled to 0..1 by
  their readers), and e-mails that carry only their furthest status:
  ``click_only_share`` of the clicked SendGrid e-mails have no ``delivered``
  or ``open`` event (a webhook sending engagement events only), and Mailchimp's
  e-mail activity never has delivery rows. These draws come from a random
  stream of their own, so the other draws of a seed do not change.

``vendor_truth.json["expected_values"]`` records what the ingest must make of
them: the satisfaction each rated ticket is stored with, and per file the
counted notes (ratings rescaled or read as 1/0, e-mails whose ``delivered``
or ``opened`` status is implied).

``vendor_truth.json`` records what was planted and, per source, the identity
outcome the resolution rules of :mod:`journeylib.store.identity` must reach on these
files (``expected``): ids and rows matched, ambiguous and unmatched. These
expectations are derived from the planted facts (who is missing from the CRM,
who uses free mail, which accounts carry an explicit id, which tool knows
whose account), not by running the resolver.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import zipfile
import zlib
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from journeylib.datasets.files import load_truth, load_world
from journeylib.io.generic import IMPLIED_NOTES

__all__ = ["CRM_EVENT_RULES", "VENDOR_TRUTH_FILE", "VendorExportResult", "load_vendor_truth", "write_vendor_exports"]

#: Name of the vendor truth file inside ``<world>/vendor/``.
VENDOR_TRUTH_FILE = "vendor_truth.json"
SHARED_INBOX = "support@helpdesk-partners.net"
#: Zendesk user id of the support agent answering in the per-ticket comment files.
AGENT_ID = 361000001
_FREE = ("gmail.com", "outlook.com")
#: ``events`` rules of the written ``sources.yaml``: the CRM records of this world → the journey's commercial events.
CRM_EVENT_RULES: dict[str, list[dict[str, Any]]] = {
    "salesforce": [
        {"match": "opportunity_won", "where": {"opportunity_type": "New Business"}, "to": "subscription_started"},
        {"match": "opportunity_won", "where": {"opportunity_type": "Upsell"}, "to": "plan_upgraded"},
        {"match": "opportunity_won", "where": {"opportunity_type": "Renewal"}, "to": "renewal"},
        {"match": "opportunity_lost", "where": {"opportunity_type": "Renewal"}, "to": "subscription_cancelled"},
    ],
    "hubspot": [{"match": "lifecycle_stage_changed", "where": {"object": "company", "stage": "lead"}, "to": "trial_started"}],
}
PRODUCT_EVENTS = ("login", "feature_used", "project_created", "task_created", "invite_sent", "integration_connected",
                  "setup_step_completed", "setup_completed", "experiment_assigned")  # fmt: skip


@dataclass(frozen=True)
class VendorExportResult:
    """What :func:`write_vendor_exports` wrote.

    Attributes
    ----------
    out_dir : pathlib.Path
        The ``vendor`` folder.
    files : dict of str to list of pathlib.Path
        Files per source.
    sources_yaml : pathlib.Path
        A ``sources.yaml`` loading all of them.
    truth_path : pathlib.Path
        ``vendor_truth.json``.
    """

    out_dir: Path
    files: dict[str, list[Path]]
    sources_yaml: Path
    truth_path: Path


def _rows(frame: pd.DataFrame) -> Iterator[Any]:
    """Iterate rows as named tuples (typed loosely: columns are attributes)."""
    return iter(frame.itertuples(index=False))


def _sf_time(ts: Any) -> str:
    return "" if pd.isna(ts) else pd.Timestamp(ts).tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def _iso(ts: Any) -> str | None:
    return None if pd.isna(ts) else pd.Timestamp(ts).tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%SZ")


def _messy(email: str, rng_value: float) -> str:
    local, domain = email.split("@")
    cased = local[:1].upper() + local[1:] + "@" + domain.upper() if rng_value < 0.5 else email.upper()
    return f"  {cased} " if rng_value < 0.75 else f"{cased}\t"


def _csv(path: Path, header: list[str], rows: list[list[Any]], *, bom: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8-sig" if bom else "utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows([["" if v is None or (isinstance(v, float) and np.isnan(v)) else v for v in r] for r in rows])
    return path


def _json(path: Path, obj: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=1, default=str), encoding="utf-8")
    return path


def load_vendor_truth(world_dir: str | Path) -> dict[str, Any]:
    """Read ``<world>/vendor/vendor_truth.json``.

    Parameters
    ----------
    world_dir : str or pathlib.Path
        The world folder (or its ``vendor`` folder).

    Returns
    -------
    dict
        ``seed``, ``files``, ``planted`` and ``expected`` (per source and
        ``(all sources)``: ``ids``, ``ids_matched``, ``ids_ambiguous``,
        ``ids_unmatched``, ``rows``, ``rows_matched``, ``rows_ambiguous``,
        ``rows_unmatched``; plus ``quarantined`` rows per source), and
        ``expected_values``: ``satisfaction`` (ticket id → the 0..1 value the
        store must hold) and ``notes`` (file path inside ``vendor/`` → the
        counted notes its ingest must report: ratings rescaled or read as
        1/0, e-mails whose ``delivered`` or ``opened`` status is implied).
    """
    root = Path(world_dir)
    path = root / VENDOR_TRUTH_FILE if (root / VENDOR_TRUTH_FILE).exists() else root / "vendor" / VENDOR_TRUTH_FILE
    return dict(json.loads(path.read_text(encoding="utf-8")))


class _Expect:
    """Counts the identity outcome planted for every id and row written."""

    def __init__(self) -> None:
        self.ids: dict[str, dict[str, str]] = defaultdict(dict)
        self.rows: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self.quarantined: dict[str, int] = defaultdict(int)

    def id(self, source: str, source_id: str, status: str) -> None:
        """Record the outcome of an id: its resolution method, ``ambiguous`` or ``unmatched``."""
        self.ids[source][source_id] = status

    def row(self, source: str, status: str, n: int = 1) -> None:
        """Record *n* rows whose customer is decided by an id of outcome *status*."""
        self.rows[source][status] += n

    def methods(self) -> dict[str, dict[str, dict[str, int]]]:
        """Per source and method: ``ids`` and ``rows``, as :func:`journeylib.store.identity.identity_report_data` counts them."""
        out: dict[str, dict[str, dict[str, int]]] = {}
        for src in sorted(set(self.ids) | set(self.rows)):
            st = list(self.ids[src].values())
            out[src] = {m: {"ids": st.count(m), "rows": int(self.rows[src].get(m, 0))} for m in sorted(set(st) | set(self.rows[src]))}
        return out

    def table(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        tot: dict[str, int] = defaultdict(int)
        for src in sorted(set(self.ids) | set(self.rows)):
            st = list(self.ids[src].values())
            r = self.rows[src]
            unresolved = ("ambiguous", "unmatched")
            d = {
                "ids": len(st), "ids_matched": sum(x not in unresolved for x in st), "ids_ambiguous": st.count("ambiguous"), "ids_unmatched": st.count("unmatched"),
                "rows": sum(r.values()), "rows_matched": sum(v for k, v in r.items() if k not in unresolved), "rows_ambiguous": r.get("ambiguous", 0),
                "rows_unmatched": r.get("unmatched", 0),
            }  # fmt: skip
            out[src] = d
            for k, v in d.items():
                tot[k] += v
        out["(all sources)"] = dict(tot)
        return out


def write_vendor_exports(
    world_dir: str | Path,
    *,
    seed: int | None = None,
    missing_from_crm_share: float = 0.12,
    messy_email_share: float = 0.25,
    explicit_id_share: float = 0.25,
    click_only_share: float = 0.3,
) -> VendorExportResult:
    """Write a synthetic world's truth as vendor exports under ``<world>/vendor/``.

    Parameters
    ----------
    world_dir : str or pathlib.Path
        A folder written by :func:`journeylib.datasets.synthesize`.
    seed : int, optional
        Seed of the mess (default: the world's seed).
    missing_from_crm_share : float, default 0.12
        Share of people absent from both CRMs (half of them on free mail).
    messy_email_share : float, default 0.25
        Share of people whose e-mail is written in mixed case with white space.
    explicit_id_share : float, default 0.25
        Share of accounts whose product events carry ``salesforce_account_id``.
    click_only_share : float, default 0.3
        Share of the clicked SendGrid e-mails whose webhook payloads carry
        only the ``click`` (no ``delivered`` or ``open`` event).

    Returns
    -------
    VendorExportResult
        The folder, the files per source, ``sources.yaml`` and ``vendor_truth.json``.

    Raises
    ------
    JourneyLibError
        If *world_dir* is not a synthetic world.
    ValueError
        If a share is outside [0, 1].
    """
    shares = (("missing_from_crm_share", missing_from_crm_share), ("messy_email_share", messy_email_share), ("explicit_id_share", explicit_id_share),
              ("click_only_share", click_only_share))  # fmt: skip
    for name, v in shares:
        if not 0.0 <= v <= 1.0:
            msg = f"write_vendor_exports: {name} must be within [0, 1], got {v}"
            raise ValueError(msg)
    root = Path(world_dir)
    truth = load_truth(root)
    seed = int(truth["seed"]) if seed is None else seed
    world = load_world(root)
    out = root / "vendor"
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, 31])
    w = _World(world, rng, missing_from_crm_share, messy_email_share, explicit_id_share)
    # the boundary values draw from a stream of their own: adding them changes no draw of the stream above
    w.boundary_rng, w.click_only_share = np.random.default_rng([seed, 31, 1]), click_only_share
    files: dict[str, list[Path]] = {}
    exp = _Expect()
    files["salesforce"] = w.salesforce(out / "salesforce", exp)
    files["hubspot"] = w.hubspot(out / "hubspot", exp)
    files["mixpanel"], files["amplitude"] = w.product(out, exp)
    files["zendesk"] = w.zendesk(out / "zendesk", exp)
    files["intercom"] = w.intercom(out / "intercom", exp)
    w.settle_product_rows(exp)
    files["sendgrid"], files["mailchimp"] = w.email(out, exp)
    experiments = _experiment_export(root, out, w.sf_id)
    sources = {
        name: {"files": [str(p.relative_to(out)).replace("\\", "/") for p in paths], **({"events": CRM_EVENT_RULES[name]} if name in CRM_EVENT_RULES else {})}
        for name, paths in files.items()
    }
    sources_yaml = out / "sources.yaml"
    header = (
        "# Vendor exports of the synthetic world, written by journeylib.datasets.vendor.\n"
        "# Load them with: journeylib ingest --db PATH --config THIS_FILE\n"
    )
    import yaml

    sources_yaml.write_text(header + yaml.safe_dump({"version": 1, "sources": sources, "identity": {"account_sources": ["salesforce", "hubspot"]}}, sort_keys=False))
    vt = {
        "generator": "journeylib.datasets.vendor",
        "world_seed": truth["seed"],
        "seed": seed,
        "n_customers": truth["n_customers"],
        "files": {k: [str(p.relative_to(out)) for p in v] for k, v in files.items()},
        "planted": w.planted,
        "expected": exp.table(),
        "expected_methods": exp.methods(),
        "expected_customers": {"salesforce": int(truth["n_customers"]), "hubspot": int(w.planted["hubspot_only_accounts"])},
        "quarantined": dict(exp.quarantined),
        "expected_values": w.values,
        "experiment_assignments": experiments,
        "notes": (
            "expected: identity outcome per source as journeylib.store.identity.identity_summary_data reports it "
            "(ids and vendor rows matched / ambiguous / unmatched). quarantined: malformed input rows planted per source."
        ),
    }
    truth_path = _json(out / VENDOR_TRUTH_FILE, vt)
    return VendorExportResult(out_dir=out, files=files, sources_yaml=sources_yaml, truth_path=truth_path)


def _experiment_export(root: Path, out: Path, sf_id: dict[str, str]) -> dict[str, Any] | None:
    """Write the world's experiment assignments as the experimentation tool's canonical export, keyed by CRM account.

    The file (``experiments/assignments.csv``) is a canonical ``assignments``
    table, not a vendor format: ``journeylib demo`` loads it with the generic
    ingest after ``sources.yaml``. Returns its path and row count, or None when
    the world has no assignments.
    """
    found = sorted(root.glob("assignments.*"))
    if not found:
        return None
    src = found[0]
    frame = pd.read_parquet(src) if src.suffix == ".parquet" else pd.read_csv(src, dtype=str, keep_default_na=False)
    frame = frame.assign(customer_id=frame["customer_id"].map(sf_id))
    frame = frame[frame["customer_id"].notna()]
    frame["assignment_id"] = frame["customer_id"] + ":" + frame["experiment"].astype(str)
    path = out / "experiments" / "assignments.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return {"file": path.relative_to(out).as_posix(), "rows": len(frame)}


class _World:
    """The world's tables plus the planted mess, and one writer per vendor."""

    def __init__(self, world: dict[str, pd.DataFrame], rng: np.random.Generator, missing: float, messy: float, explicit: float) -> None:
        self.c = world["customers"].reset_index(drop=True)
        self.u = world["users"].reset_index(drop=True)
        self.ev = world["events"]
        self.t = world["tickets"]
        self.m = world["messages"]
        self.rng = rng
        n_u, n_c = len(self.u), len(self.c)
        self.sf_id = {cid: f"001{i + 1:012d}AAA" for i, cid in enumerate(self.c["customer_id"])}
        self.domain = dict(zip(self.c["customer_id"], self.c["domain"], strict=True))
        self.user_cust = dict(zip(self.u["user_id"], self.u["customer_id"], strict=True))
        in_m = rng.random(n_u) < missing
        free = in_m & (rng.random(n_u) < 0.5)
        mess = rng.random(n_u)
        self.missing = dict(zip(self.u["user_id"], in_m, strict=True))
        self.free = dict(zip(self.u["user_id"], free, strict=True))
        emails = {}
        for i, (uid, email) in enumerate(zip(self.u["user_id"], self.u["email"], strict=True)):
            if free[i]:
                email = f"{email.split('@')[0]}{i}@{_FREE[i % 2]}"
            emails[uid] = email
        self.addr = emails
        self.messy_email = {uid: (_messy(emails[uid], float(mess[i] / messy)) if mess[i] < messy else emails[uid]) for i, uid in enumerate(self.u["user_id"])}
        self.explicit = {cid for cid, r in zip(self.c["customer_id"], rng.random(n_c), strict=True) if r < explicit}
        bucket = {uid: zlib.crc32(f"identity:{uid}".encode()) % 20 for uid in self.u["user_id"]}
        #: users whose product user id is in a Salesforce contact field / a HubSpot contact property (and whose analytics events carry no e-mail)
        self.sf_product_ids = {u for u, b in bucket.items() if b < 3 and not self.missing[u]}
        self.hs_product_ids = {u for u, b in bucket.items() if 3 <= b < 5 and not self.missing[u]}
        #: users whose analytics id is their e-mail address (as typed: mixed case, white space)
        self.email_ids = {u for u, b in bucket.items() if 5 <= b < 7}
        #: users whose first sessions in each analytics tool are anonymous (a device id until sign-up)
        self.anonymous_first = {u for u, b in bucket.items() if 7 <= b < 11}
        self.ic_member: dict[str, bool] = {}
        self.boundary_rng = np.random.default_rng(0)  # replaced by write_vendor_exports with the seed's own stream
        self.click_only_share = 0.0
        #: what the boundary rules must make of the values planted: ``satisfaction`` per ticket id, ``notes`` per file
        self.values: dict[str, Any] = {"satisfaction": {}, "notes": {}}
        self.deferred: list[tuple[str, str, str, str]] = []  # analytics rows: (source, source_id, user, "user" or "device")
        self.planted: dict[str, Any] = {
            "missing_from_crm": int(in_m.sum()),
            "free_mail": int(free.sum()),
            "messy_emails": int((mess < messy).sum()),
            "explicit_id_accounts": len(self.explicit),
            "product_id_fields": {"salesforce": "Ext_Ref_2__c", "hubspot": "Portal login", "intercom": "external_id"},
            "product_ids_in_salesforce": len(self.sf_product_ids),
            "product_ids_in_hubspot": len(self.hs_product_ids),
            "email_user_ids": len(self.email_ids),
            "anonymous_first_sessions_users": len(self.anonymous_first),
        }

    # -- statuses ---------------------------------------------------------------------
    def person(self, uid: str, *, product: bool = False, member: bool = False, email_id: bool = False) -> str:
        """Return the method that resolves a person of *uid* (``unmatched`` when none does).

        *product*: an analytics user (explicit account ids, product user ids held by contacts);
        *member*: its tool knows its account; *email_id*: its analytics id is its e-mail.
        """
        if product and self.user_cust[uid] in self.explicit:
            return "crm_id"
        if product and not email_id and self.holds_product_id(uid):
            return "product_user_id"
        if not self.missing[uid]:
            return "email"  # → CRM contact
        if member:
            return "contact_account"
        return "unmatched" if self.free[uid] else "domain"

    def holds_product_id(self, uid: str) -> bool:
        """Whether a resolved contact of another tool holds *uid* as the product user id."""
        if not self.missing[uid] and (uid in self.sf_product_ids or uid in self.hs_product_ids):
            return True
        member = self.ic_member.get(uid)
        return member is not None and self.person(uid, member=member) != "unmatched"

    # -- CRM ----------------------------------------------------------------------------
    def salesforce(self, out: Path, exp: _Expect) -> list[Path]:
        c = self.c
        rows = []
        for r in _rows(c):
            props = json.loads(r.properties) if isinstance(r.properties, str) else {}
            site = f"https://www.{r.domain}" if zlib.crc32(r.customer_id.encode()) % 3 else f"http://{r.domain}/"
            rows.append([self.sf_id[r.customer_id], r.name, site, props.get("industry"), "Customer" if pd.notna(r.converted_at) else "Prospect",
                         _sf_time(r.signup_at), _sf_time(r.signup_at), r.segment, r.plan, r.mrr, _sf_time(r.signup_at),
                         _sf_time(r.converted_at), _sf_time(r.churned_at), _sf_time(r.renewal_at), props.get("region")])  # fmt: skip
            exp.id("salesforce", f"account:{self.sf_id[r.customer_id]}", "crm_account")
        acc = _csv(out / "Account.csv", ["Id", "Name", "Website", "Industry", "Type", "CreatedDate", "LastModifiedDate", "Segment__c", "Plan__c",
                                         "MRR__c", "Signup_Date__c", "Converted_Date__c", "Churned_Date__c", "Renewal_Date__c", "Region__c"], rows, bom=True)  # fmt: skip
        contacts = []
        for i, r in enumerate(_rows(self.u)):
            if self.missing[r.user_id]:
                continue
            first, last = [*r.email.split("@")[0].split("."), ""][:2]
            cid = f"003{i + 1:012d}AAA"
            contacts.append([cid, self.sf_id[r.customer_id], first.title(), last.title() or "Unknown", self.messy_email[r.user_id], json.loads(r.properties or "{}").get("job_title"),
                             _sf_time(r.created_at), _sf_time(r.created_at), r.user_id if r.user_id in self.sf_product_ids else ""])  # fmt: skip
            exp.id("salesforce", f"contact:{cid}", "contact_account")
        # the shared inbox: a contact of two accounts
        with_tickets = [x for x in self.t.loc[self.t["channel"] != "chat", "customer_id"].drop_duplicates().tolist()]
        self.shared = with_tickets[:2] if len(with_tickets) >= 2 else []
        for k, cust in enumerate(self.shared):
            cid = f"003{900000000 + k:012d}AAA"
            contacts.append([cid, self.sf_id[cust], "Helpdesk", "Partners", SHARED_INBOX, "IT support (outsourced)", _sf_time(self.c["signup_at"].min()), _sf_time(self.c["signup_at"].min()), ""])
            exp.id("salesforce", f"contact:{cid}", "contact_account")
        # Ext_Ref_2__c: the product's user id, kept in a custom field with a name that says nothing (found by value overlap)
        con = _csv(out / "Contact.csv", ["Id", "AccountId", "FirstName", "LastName", "Email", "Title", "CreatedDate", "LastModifiedDate", "Ext_Ref_2__c"], contacts, bom=True)
        # opportunities from CRM events
        crm = self.ev[self.ev["source"] == "crm"].sort_values(["customer_id", "timestamp", "event_id"])
        opps, hist = [], []
        kinds = {"subscription_started": ("New Business", True), "plan_upgraded": ("Upsell", True), "renewal": ("Renewal", True), "subscription_cancelled": ("Renewal", False)}
        signup = dict(zip(c["customer_id"], c["signup_at"], strict=True))
        for j, r in enumerate(_rows(crm)):
            if r.event not in kinds:
                continue
            typ, won = kinds[r.event]
            oid = f"006{j + 1:012d}AAA"
            created = signup[r.customer_id] if typ == "New Business" else r.timestamp - pd.Timedelta(days=14)
            stage = "Closed Won" if won else "Closed Lost"
            props = json.loads(r.properties) if isinstance(r.properties, str) else {}
            opps.append([oid, self.sf_id[r.customer_id], f"{typ} {r.customer_id}", stage, typ, props.get("plan") or props.get("new_plan"), _sf_time(created),
                         r.timestamp.strftime("%Y-%m-%d"), "true", "true" if won else "false", _sf_time(r.timestamp)])  # fmt: skip
            hist.append([f"008{2 * j + 1:012d}AAA", oid, "Prospecting", _sf_time(created)])
            hist.append([f"008{2 * j + 2:012d}AAA", oid, stage, _sf_time(r.timestamp)])
            exp.id("salesforce", f"opportunity:{oid}", "crm_account")
            exp.row("salesforce", "crm_account", 2 + 2)  # created + won/lost; two history rows
        opp = _csv(out / "Opportunity.csv", ["Id", "AccountId", "Name", "StageName", "Type", "Plan__c", "CreatedDate", "CloseDate", "IsClosed", "IsWon", "LastModifiedDate"], opps)
        oh = _csv(out / "OpportunityHistory.csv", ["Id", "OpportunityId", "StageName", "CreatedDate"], hist)
        # a Salesforce close date is a day: opportunities closed the same day as created keep both events distinct anyway
        return [acc, con, opp, oh]

    def hubspot(self, out: Path, exp: _Expect) -> list[Path]:
        comp_rows = []
        hs_company = {}
        for i, r in enumerate(_rows(self.c)):
            rid = str(5000 + i)
            hs_company[r.customer_id] = rid
            link = self.sf_id[r.customer_id] if self.rng.random() >= 0.1 else ""
            comp_rows.append([rid, r.name, r.domain, link, r.signup_at.strftime("%Y-%m-%d %H:%M"), r.signup_at.strftime("%Y-%m-%d %H:%M"),
                              "customer" if pd.notna(r.converted_at) else "lead", r.signup_at.strftime("%Y-%m-%d %H:%M"),
                              "" if pd.isna(r.converted_at) else r.converted_at.strftime("%Y-%m-%d %H:%M")])  # fmt: skip
            exp.id("hubspot", f"company:{rid}", "crm_id" if link else "domain")
            exp.row("hubspot", "crm_id" if link else "domain", 1 + int(pd.notna(r.converted_at)))
        # a trial that exists only in HubSpot (no Salesforce account yet): a customer of its own, with one user
        trial_rid, trial_domain = str(5000 + len(self.c)), f"trial-{zlib.crc32(str(self.c['customer_id'].iloc[0]).encode()) % 10**6:06d}.example"
        trial_at = pd.Timestamp(self.ev["timestamp"].min()) + pd.Timedelta(days=2)
        comp_rows.append([trial_rid, "Trialco Labs", trial_domain, "", trial_at.strftime("%Y-%m-%d %H:%M"), trial_at.strftime("%Y-%m-%d %H:%M"), "lead", "", ""])
        exp.id("hubspot", f"company:{trial_rid}", "own_account")
        self.trial: dict[str, Any] = {"company": trial_rid, "domain": trial_domain, "user": f"trial-{trial_rid}", "email": f"first.user@{trial_domain}", "at": trial_at}
        self.planted["hubspot_only_accounts"] = 1
        self.planted["hubspot_only_account"] = {"customer_id": f"hubspot:{trial_rid}", "domain": trial_domain}
        companies = _csv(out / "companies.csv", ["Record ID", "Company name", "Company Domain Name", "Salesforce Account ID", "Create Date",
                                                 "Last Modified Date", "Lifecycle Stage", "Became a Lead Date", "Became a Customer Date"], comp_rows)  # fmt: skip
        rows = []
        for i, r in enumerate(_rows(self.u)):
            if self.missing[r.user_id]:
                continue
            rid = str(100000 + i)
            company = hs_company[r.customer_id] if self.rng.random() < 0.9 else ""
            first, last = [*r.email.split("@")[0].split("."), ""][:2]
            when = r.created_at.strftime("%Y-%m-%d %H:%M")
            portal = r.user_id if r.user_id in self.hs_product_ids else ""
            rows.append([rid, first.title(), last.title(), self.messy_email[r.user_id], json.loads(r.properties or "{}").get("job_title"), "lead", when, when, company, when, portal])
            status = "contact_account" if company else "email"  # without a company: the e-mail of its Salesforce contact
            exp.id("hubspot", f"contact:{rid}", status)
            exp.row("hubspot", status)
        when = self.trial["at"].strftime("%Y-%m-%d %H:%M")
        rows.append([str(100000 + len(self.u)), "First", "User", self.trial["email"], "Founder", "lead", when, when, self.trial["company"], when, ""])
        exp.id("hubspot", f"contact:{100000 + len(self.u)}", "contact_account")
        exp.row("hubspot", "contact_account")
        # Portal login: the product's user id as a custom contact property (found by value overlap)
        contacts = _csv(out / "contacts.csv", ["Record ID", "First Name", "Last Name", "Email", "Job Title", "Lifecycle Stage", "Create Date",
                                               "Last Modified Date", "Associated Company IDs", "Became a Lead Date", "Portal login"], rows)  # fmt: skip
        return [companies, contacts]

    # -- product ------------------------------------------------------------------------
    def product(self, out: Path, exp: _Expect) -> tuple[list[Path], list[Path]]:
        ev = self.ev[self.ev["event"].isin(PRODUCT_EVENTS) & self.ev["user_id"].notna()].sort_values(["timestamp", "event_id"]).reset_index(drop=True)
        if ev.empty:
            return [], []
        cut = pd.Timestamp(ev["timestamp"].iloc[len(ev) // 2])
        cut = pd.Timestamp(year=cut.year, month=cut.month, day=1, tz="UTC")
        month = ev["timestamp"].dt.strftime("%Y-%m")
        ev = ev.assign(month=month)
        # anonymous first sessions: a user's first two events in each tool, when a later event there identifies them
        tool = np.where(ev["timestamp"] < cut, "mixpanel", "amplitude")
        firsts = ev.assign(tool=tool)[ev["user_id"].isin(self.anonymous_first)].groupby(["user_id", "tool"], sort=False)["event_id"]
        self.anonymous_events = {e for _, ids in firsts for e in (list(ids)[:2] if len(ids) >= 3 else [])}
        self.planted["anonymous_events"] = len(self.anonymous_events)
        mp_files: list[Path] = []
        amp_files: list[Path] = []
        seen_mp: set[str] = set()
        seen_amp: set[str] = set()
        bad_planted = {"mixpanel": 0, "amplitude": 0}
        months = sorted(ev["month"].unique())
        for k, mo in enumerate(months):
            start = pd.Timestamp(mo + "-01", tz="UTC")
            end = start + pd.offsets.MonthBegin(1) + pd.Timedelta(days=1)  # one day of overlap with the next file
            part = ev[(ev["timestamp"] >= start) & (ev["timestamp"] < end)]
            if start < cut:
                part = part[part["timestamp"] < cut]
                lines = []
                for r in _rows(part):
                    props = self._mp_props(r)
                    lines.append(json.dumps({"event": r.event, "properties": props}, separators=(",", ":")))
                    if r.event_id not in seen_mp:
                        seen_mp.add(r.event_id)
                        self._product_row("mixpanel", f"distinct_id:{props['distinct_id']}", r.user_id, r.event_id)
                if k == 0 and lines:
                    lines += self._trial_lines()
                    lines.insert(min(3, len(lines)), lines[0][: len(lines[0]) // 2])  # a truncated line
                    lines.insert(min(7, len(lines)), '["not", "an", "event"]')
                    bad_planted["mixpanel"] += 2
                p = out / "mixpanel" / f"export-{mo}.jsonl"
                p.parent.mkdir(parents=True, exist_ok=True)
                p.write_text("\n".join(lines) + "\n" if lines else "", encoding="utf-8")
                if lines:
                    mp_files.append(p)
            else:
                part = part[part["timestamp"] >= cut]
                buf = io.BytesIO()
                lines = []
                for r in _rows(part):
                    amp = self._amp_event(r)
                    lines.append(json.dumps(amp, separators=(",", ":")))
                    if r.event_id not in seen_amp:
                        seen_amp.add(r.event_id)
                        ref = f"user_id:{amp['user_id']}" if amp["user_id"] is not None else f"device_id:{amp['device_id']}"
                        self._product_row("amplitude", ref, r.user_id, r.event_id)
                if not lines:
                    continue
                if not amp_files:
                    lines.insert(min(5, len(lines)), '{"event_type": "login", "event_time": ')
                    bad_planted["amplitude"] += 1
                with zipfile.ZipFile(buf, "w") as z:
                    half = len(lines) // 2
                    for n, chunk in enumerate((lines[:half], lines[half:])):
                        if chunk:
                            info = zipfile.ZipInfo(f"187520/187520_{mo.replace('-', '')}01_0#{n}.json.gz", date_time=(2026, 1, 1, 0, 0, 0))
                            z.writestr(info, gzip.compress(("\n".join(chunk) + "\n").encode(), mtime=0))
                p = out / "amplitude" / f"export-{mo}.zip"
                p.parent.mkdir(parents=True, exist_ok=True)
                p.write_bytes(buf.getvalue())
                amp_files.append(p)
        exp.quarantined["mixpanel"] += bad_planted["mixpanel"]
        exp.quarantined["amplitude"] += bad_planted["amplitude"]
        self.planted["analytics_migration"] = cut.strftime("%Y-%m-%d")
        self.planted["overlap_days_per_file"] = 1
        return mp_files, amp_files

    def _product_row(self, source: str, source_id: str, uid: str, event_id: str) -> None:
        """Note an analytics row of *uid* under *source_id*; its outcome is settled once every tool is written."""
        self.deferred.append((source, source_id, uid, "device" if event_id in self.anonymous_events else "user"))

    def settle_product_rows(self, exp: _Expect) -> None:
        """Record the outcome of the analytics ids and rows (product user ids depend on the support tools' contacts)."""
        for source, source_id, uid, role in self.deferred:
            if uid == self.trial["user"]:
                status = "email"  # the HubSpot contact of the trial account
            else:
                status = self.person(uid, product=True, email_id=uid in self.email_ids)
            if role == "device":
                status = "device" if status not in ("ambiguous", "unmatched") else status
            exp.id(source, source_id, status)
            exp.row(source, status)

    def _analytics_id(self, uid: str) -> str:
        return self.messy_email[uid] if uid in self.email_ids else uid

    def _mp_props(self, r: Any) -> dict[str, Any]:
        device = f"{zlib.crc32(('mp-device:' + r.user_id).encode()):08x}-{zlib.crc32(r.user_id.encode()) % 10**6:06d}"
        uid = self._analytics_id(r.user_id)
        if r.event_id in self.anonymous_events:  # before sign-up: Mixpanel's simplified ID merge device id only
            props: dict[str, Any] = {"time": int(r.timestamp.timestamp()), "distinct_id": f"$device:{device}", "$device_id": device, "$insert_id": r.event_id, "mp_lib": "web"}
        else:
            props = {"time": int(r.timestamp.timestamp()), "distinct_id": uid, "$insert_id": r.event_id, "mp_lib": "web"}
            if r.user_id in self.anonymous_first:
                props.update({"$device_id": device, "$user_id": uid})
            if r.user_id not in self.email_ids and r.user_id not in self.sf_product_ids and r.user_id not in self.hs_product_ids:
                props["$email"] = self.messy_email[r.user_id]
            if self.user_cust[r.user_id] in self.explicit:
                props["salesforce_account_id"] = self.sf_id[self.user_cust[r.user_id]]
        if isinstance(r.properties, str):
            props.update(json.loads(r.properties))
        return props

    def _amp_event(self, r: Any) -> dict[str, Any]:
        anonymous = r.event_id in self.anonymous_events
        user_props: dict[str, Any] = {}
        if not anonymous and r.user_id not in self.email_ids and r.user_id not in self.sf_product_ids and r.user_id not in self.hs_product_ids:
            user_props["email"] = self.messy_email[r.user_id]
        if not anonymous and self.user_cust[r.user_id] in self.explicit:
            user_props["salesforce_account_id"] = self.sf_id[self.user_cust[r.user_id]]
        return {
            "$insert_id": r.event_id, "uuid": f"uuid-{r.event_id}", "event_type": r.event,
            "event_time": r.timestamp.strftime("%Y-%m-%d %H:%M:%S.%f"), "user_id": None if anonymous else self._analytics_id(r.user_id), "device_id": f"dev-{r.user_id}",
            "amplitude_id": zlib.crc32(r.user_id.encode()) % 10**9, "platform": "Web", "country": "United States",
            "event_properties": json.loads(r.properties) if isinstance(r.properties, str) else {}, "user_properties": user_props,
        }  # fmt: skip

    def _trial_lines(self) -> list[str]:
        """Mixpanel lines of the HubSpot-only trial's first user: one anonymous session event, then sign-up and a project."""
        t, uid, device = self.trial, str(self.trial["user"]), f"{zlib.crc32(str(self.trial['user']).encode()):08x}-trial"
        events: list[tuple[str, Any, dict[str, Any], str, str]] = [
            ("feature_used", t["at"], {"distinct_id": f"$device:{device}", "$device_id": device}, f"distinct_id:$device:{device}", "device"),
            ("login", t["at"] + pd.Timedelta(minutes=5), {"distinct_id": uid, "$device_id": device, "$user_id": uid, "$email": t["email"]}, f"distinct_id:{uid}", "user"),
            ("project_created", t["at"] + pd.Timedelta(minutes=20), {"distinct_id": uid, "$email": t["email"]}, f"distinct_id:{uid}", "user"),
        ]
        lines = []
        for n, (name, at, ids, ref, role) in enumerate(events):
            insert_id = f"trial-{t['company']}-{n}"
            lines.append(json.dumps({"event": name, "properties": {"time": int(at.timestamp()), **ids, "$insert_id": insert_id, "mp_lib": "web"}}, separators=(",", ":")))
            self.deferred.append(("mixpanel", ref, uid, role))
        return lines

    # -- support ------------------------------------------------------------------------
    def zendesk(self, out: Path, exp: _Expect) -> list[Path]:
        t = self.t[self.t["channel"] != "chat"].sort_values(["created_at", "ticket_id"]).reset_index(drop=True)
        requesters = sorted(t["user_id"].dropna().unique())
        zid = {uid: 360000000 + i for i, uid in enumerate(requesters)}
        member = {uid: self.rng.random() < 0.5 for uid in requesters}
        orgs = sorted({self.user_cust[u] for u in requesters})
        oid = {cid: 9000 + i for i, cid in enumerate(orgs)}
        shared_id = 369999999
        shared_tickets: set[str] = set()
        for cust in getattr(self, "shared", []):
            shared_tickets |= set(t.loc[t["customer_id"] == cust, "ticket_id"].head(2))
        tickets = []
        threads: list[tuple[int, int, Any, bool, str]] = []  # tickets given a per-ticket comments file
        for i, r in enumerate(_rows(t)):
            shared = r.ticket_id in shared_tickets
            req = shared_id if shared else zid[r.user_id]
            org = None if shared or not member[r.user_id] else oid[self.user_cust[r.user_id]]
            created = r.created_at.strftime("%Y-%m-%dT%H:%M:%SZ") if i % 5 else (r.created_at + pd.Timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S+02:00")
            metric = {"solved_at": _iso(r.solved_at)} if pd.notna(r.solved_at) else {"solved_at": None}
            sat = {"score": "unoffered"} if pd.isna(r.satisfaction) else {"score": "good" if r.satisfaction >= 0.5 else "bad"}
            if pd.notna(r.satisfaction):
                self.values["satisfaction"][f"zendesk:{10000 + i}"] = 1.0 if r.satisfaction >= 0.5 else 0.0
            tickets.append({
                "id": 10000 + i, "url": f"https://planwise.zendesk.com/api/v2/tickets/{10000 + i}.json", "created_at": created,
                "updated_at": _iso(r.solved_at) or _iso(r.created_at), "type": "question", "subject": r.subject, "description": r.body,
                "priority": r.priority, "status": r.status, "requester_id": req, "submitter_id": req, "organization_id": org,
                "tags": json.loads(r.properties).get("tags", []) if isinstance(r.properties, str) else [],
                "via": {"channel": {"email": "email", "web": "web", "phone": "voice"}.get(r.channel, r.channel)},
                "satisfaction_rating": sat, "metric_set": metric,
            })  # fmt: skip
            if shared:
                status = "ambiguous"
            elif org is not None:
                status = "crm_id"
            else:
                status = self.person(r.user_id, member=False)
            exp.id("zendesk", f"ticket:{10000 + i}", status)
            exp.row("zendesk", status, 2 + int(metric["solved_at"] is not None))
            if (i % 5 == 2 and len(threads) < 12) or (shared and not any(th[3] for th in threads)):
                threads.append((10000 + i, req, r, shared, status))
        comment_files = []
        for n, (tid, req, r, _shared, status) in enumerate(threads):
            # the Ticket Comments endpoint: the description is the first comment; an agent's public reply; every other
            # thread an internal note. The requester's comments refer to the requester, staff comments to no customer
            # person; every comment lands on its ticket's customer (an ambiguous ticket's staff comments stay ambiguous).
            at = pd.Timestamp(r.created_at)
            comments = [
                {"id": 700000 + 10 * n, "type": "Comment", "author_id": req, "body": r.body, "plain_body": r.body, "public": True,
                 "audit_id": 800000 + 10 * n, "via": {"channel": "web"}, "created_at": _iso(at)},
                {"id": 700001 + 10 * n, "type": "Comment", "author_id": AGENT_ID, "body": "Thanks for reaching out, we are looking into it.",
                 "public": True, "audit_id": 800001 + 10 * n, "via": {"channel": "web"}, "created_at": _iso(at + pd.Timedelta(hours=1))},
            ]  # fmt: skip
            if n % 2:
                comments.append({"id": 700002 + 10 * n, "type": "Comment", "author_id": AGENT_ID, "body": "Internal: checked the account settings.",
                                 "public": False, "audit_id": 800002 + 10 * n, "via": {"channel": "web"}, "created_at": _iso(at + pd.Timedelta(hours=2))})  # fmt: skip
            exp.row("zendesk", status, len(comments))
            path = out / "comments" / f"ticket_{tid}_comments.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            comment_files.append(_json(path, {"comments": comments, "next_page": None, "previous_page": None, "count": len(comments)}))
        rated = sum(k.startswith("zendesk:") for k in self.values["satisfaction"])
        if rated:
            self.values["notes"]["zendesk/tickets.json"] = {"satisfaction: Zendesk good/bad read as 1/0": rated}
        self.planted["zendesk_comment_files"] = {"files": len(threads), "comments": sum(2 + n % 2 for n in range(len(threads))), "agent_id": AGENT_ID}
        users = []
        for uid in requesters:
            org = oid[self.user_cust[uid]] if member[uid] else None
            users.append({"id": zid[uid], "name": self.addr[uid].split("@")[0].replace(".", " ").title(), "email": self.messy_email[uid],
                          "role": "end-user", "organization_id": org, "created_at": _iso(t["created_at"].min()), "updated_at": _iso(t["created_at"].min())})  # fmt: skip
            exp.id("zendesk", f"user:{zid[uid]}", self.person(uid, member=member[uid]))
        if shared_tickets:
            users.append({"id": shared_id, "name": "Helpdesk Partners", "email": SHARED_INBOX.upper(), "role": "end-user", "organization_id": None,
                          "created_at": _iso(t["created_at"].min()), "updated_at": _iso(t["created_at"].min())})  # fmt: skip
            exp.id("zendesk", f"user:{shared_id}", "ambiguous")
        # the support agent who answers: support staff, skipped by the reader (no id, no person)
        users.append({"id": AGENT_ID, "name": "Support Agent", "email": "agent@support.planwise.example", "role": "agent", "organization_id": None,
                      "created_at": _iso(t["created_at"].min()), "updated_at": _iso(t["created_at"].min())})  # fmt: skip
        organizations = []
        for cid in orgs:
            organizations.append({"id": oid[cid], "name": str(self.c.loc[self.c["customer_id"] == cid, "name"].iloc[0]), "domain_names": [self.domain[cid]],
                                  "external_id": self.sf_id[cid], "created_at": _iso(self.c["signup_at"].min()), "updated_at": _iso(self.c["signup_at"].min())})  # fmt: skip
            exp.id("zendesk", f"organization:{oid[cid]}", "crm_id")
        self.planted["shared_inbox"] = {"email": SHARED_INBOX, "accounts": [self.sf_id[c] for c in getattr(self, "shared", [])], "tickets": len(shared_tickets)}
        return [
            _json(out / "tickets.json", {"tickets": tickets, "next_page": None, "end_of_stream": True, "count": len(tickets)}),
            _json(out / "users.json", {"users": users, "next_page": None, "count": len(users)}),
            _json(out / "organizations.json", {"organizations": organizations, "next_page": None, "count": len(organizations)}),
            *comment_files,
        ]

    def intercom(self, out: Path, exp: _Expect) -> list[Path]:
        t = self.t[self.t["channel"] == "chat"].sort_values(["created_at", "ticket_id"]).reset_index(drop=True)
        requesters = sorted(t["user_id"].dropna().unique())
        cid = {uid: f"65f{i:09d}" for i, uid in enumerate(requesters)}
        member = {uid: self.rng.random() < 0.5 for uid in requesters}
        self.ic_member = member  # external_id is the product's user id: analytics users resolve through these contacts
        custs = sorted({self.user_cust[u] for u in requesters})
        comp = {c: f"66a{i:09d}" for i, c in enumerate(custs)}
        convs = []
        for i, r in enumerate(_rows(t)):
            closed = pd.notna(r.solved_at)
            rating = None if pd.isna(r.satisfaction) else {"rating": round(1 + 4 * r.satisfaction), "remark": None}
            if rating is not None:  # Intercom's native 1-5 scale, rescaled by the reader as (r - 1) / 4
                self.values["satisfaction"][f"intercom:{2000 + i}"] = (rating["rating"] - 1) / 4
            convs.append({
                "type": "conversation", "id": str(2000 + i), "created_at": int(r.created_at.timestamp()),
                "updated_at": int((r.solved_at if closed else r.created_at).timestamp()), "title": r.subject,
                "state": "closed" if closed else "open", "open": not closed, "priority": "priority" if r.priority in ("high", "urgent") else "not_priority",
                "source": {"type": "conversation", "delivered_as": "customer_initiated", "subject": r.subject,
                           "body": "<p>" + str(r.body).replace("\n", "<br>") + "</p>", "author": {"type": "user", "id": cid[r.user_id]}},
                "contacts": {"type": "contact.list", "contacts": [{"type": "contact", "id": cid[r.user_id]}]},
                "conversation_rating": rating, "statistics": {"last_close_at": int(r.solved_at.timestamp()) if closed else None},
                "conversation_parts": {"type": "conversation_part.list", "conversation_parts": [], "total_count": 0},
            })  # fmt: skip
            status = self.person(r.user_id, member=member[r.user_id])
            exp.row("intercom", status, 2 + int(closed))
        contacts = []
        for uid in requesters:
            contacts.append({"type": "contact", "id": cid[uid], "external_id": uid, "role": "user", "email": self.messy_email[uid],
                             "name": self.addr[uid].split("@")[0].replace(".", " ").title(), "created_at": int(t["created_at"].min().timestamp()),
                             "updated_at": int(t["created_at"].min().timestamp()),
                             "companies": {"type": "list", "data": [{"type": "company", "id": comp[self.user_cust[uid]]}] if member[uid] else []}})  # fmt: skip
            exp.id("intercom", f"contact:{cid[uid]}", self.person(uid, member=member[uid]))
        companies = []
        for c in custs:
            companies.append({"type": "company", "id": comp[c], "company_id": self.sf_id[c], "name": str(self.c.loc[self.c["customer_id"] == c, "name"].iloc[0]),
                              "website": f"https://{self.domain[c]}", "created_at": int(self.c["signup_at"].min().timestamp()), "updated_at": int(self.c["signup_at"].min().timestamp())})  # fmt: skip
            exp.id("intercom", f"company:{comp[c]}", "crm_id")
        rated = sum(k.startswith("intercom:") for k in self.values["satisfaction"])
        if rated:
            self.values["notes"]["intercom/conversations.json"] = {"satisfaction: Intercom conversation_rating 1-5 rescaled to 0..1 as (r - 1) / 4": rated}
        return [
            _json(out / "conversations.json", {"type": "conversation.list", "conversations": convs, "total_count": len(convs)}),
            _json(out / "contacts.json", {"type": "list", "data": contacts, "total_count": len(contacts)}),
            _json(out / "companies.json", {"type": "list", "data": companies, "total_count": len(companies)}),
        ]

    # -- e-mail -------------------------------------------------------------------------
    def email(self, out: Path, exp: _Expect) -> tuple[list[Path], list[Path]]:
        m = self.m.sort_values(["timestamp", "message_id"]).reset_index(drop=True)
        news = m["campaign"] == "monthly_newsletter"
        sg = m[~news]
        # e-mails whose webhook payloads carry only the click (engagement-only webhook): their delivered and open rows are not sent
        sends = sg["properties"].map(lambda v: json.loads(v).get("send_id") if isinstance(v, str) else None)
        clicked = sorted(set(sends[sg["status"] == "clicked"].dropna()))
        draw = self.boundary_rng.random(len(clicked))
        click_only = {sid for sid, x in zip(clicked, draw, strict=True) if x < self.click_only_share}
        sg = sg[~(sends.isin(click_only) & sg["status"].isin(["delivered", "opened"]))]
        self.planted["sendgrid_click_only_emails"] = len(click_only)
        status_ev = {"delivered": "delivered", "opened": "open", "clicked": "click", "bounced": "bounce", "unsubscribed": "unsubscribe"}
        batch, batches = [], []
        recipients: dict[str, str] = {}
        for r in _rows(sg):
            send = json.loads(r.properties).get("send_id") if isinstance(r.properties, str) else None
            e = {"email": self.messy_email[r.user_id], "timestamp": int(r.timestamp.timestamp()), "event": status_ev[r.status],
                 "sg_event_id": f"sg-{r.message_id}", "sg_message_id": f"{send}.filter0001", "category": [r.campaign], "campaign": r.campaign}  # fmt: skip
            if r.status == "clicked":
                e["url"] = "https://app.planwise.example/onboarding"
            batch.append(e)
            recipients[self.addr[r.user_id].lower()] = r.user_id
            exp.row("sendgrid", self.person(r.user_id), 2)
            if len(batch) >= 500:
                batches.append(batch)
                batch = []
        if batch:
            batches.append(batch)
        sg_files = []
        if batches:
            batches[0].append({"email": "someone@example.com", "timestamp": batches[0][0]["timestamp"], "event": "processed_v2", "sg_event_id": "sg-bad-1"})
            exp.quarantined["sendgrid"] += 1
            if click_only:
                self.values["notes"]["sendgrid/events.json"] = {IMPLIED_NOTES["delivered"]: len(click_only), IMPLIED_NOTES["opened"]: len(click_only)}
            p = out / "sendgrid" / "events.json"
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text("\n".join(json.dumps(b, separators=(",", ":")) for b in batches) + "\n", encoding="utf-8")
            sg_files.append(p)
        for email, uid in recipients.items():
            exp.id("sendgrid", f"email:{email}", self.person(uid))
        # Mailchimp: one email-activity report per newsletter month
        mc = m[news & m["status"].isin(["opened", "clicked", "bounced"])]
        action = {"opened": "open", "clicked": "click", "bounced": "bounce"}
        mc_files = []
        for mo, g in mc.groupby(mc["timestamp"].dt.strftime("%Y-%m")):
            campaign_id = f"nl{mo.replace('-', '')}"
            per: dict[str, list[dict[str, Any]]] = defaultdict(list)
            for r in _rows(g):
                item = {"action": action[r.status], "timestamp": r.timestamp.strftime("%Y-%m-%dT%H:%M:%S+00:00")}
                if r.status == "clicked":
                    item["url"] = "https://planwise.example/blog"
                if r.status == "bounced":
                    item["type"] = "hard"
                per[r.user_id].append(item)
                exp.row("mailchimp", self.person(r.user_id), 2)
            emails = [{"campaign_id": campaign_id, "list_id": "a1b2c3", "list_is_active": True, "email_id": f"{zlib.crc32(uid.encode()):08x}",
                       "email_address": self.messy_email[uid], "activity": acts} for uid, acts in sorted(per.items())]  # fmt: skip
            for uid in per:
                exp.id("mailchimp", f"email:{self.addr[uid].lower()}", self.person(uid))
            engaged = sum(any(a["action"] in ("open", "click") for a in acts) for acts in per.values())
            if engaged:  # the activity report has no delivery rows: each e-mail opened or clicked implies one
                self.values["notes"][f"mailchimp/email-activity-{mo}.json"] = {IMPLIED_NOTES["delivered"]: engaged}
            mc_files.append(_json(out / "mailchimp" / f"email-activity-{mo}.json", {"emails": emails, "campaign_id": campaign_id, "total_items": len(emails)}))
        return sg_files, mc_files
