"""The canonical tables: the data contract every layer after ``io`` relies on.

One :class:`Table` per canonical table of docs/data-contract.md. Each lists its
columns with a logical type, whether a value is required in an input row, and
the key that identifies a row (used for de-duplication). The store turns these
into DuckDB DDL; ``io`` validates input rows against them.

Logical types
-------------
``id``
    Non-empty text identifier (surrounding whitespace stripped).
``text``
    Free text; empty means missing.
``timestamp``
    An instant, stored as ``TIMESTAMPTZ`` in UTC.
``number``
    A floating-point number.
``integer``
    A whole number (bookkeeping tables only).
``json``
    A JSON object (text in files, ``JSON`` in the store).
``enum``
    Text from a closed set of values (``Column.allowed``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

LogicalType = Literal["id", "text", "timestamp", "number", "integer", "json", "enum"]

MESSAGE_STATUSES: tuple[str, ...] = (
    "delivered",
    "opened",
    "clicked",
    "bounced",
    "unsubscribed",
)
#: The ``properties`` key naming the e-mail a ``messages`` row belongs to: the rows of one e-mail share it.
SEND_ID = "send_id"


@dataclass(frozen=True)
class Column:
    """One column of a canonical table.

    Parameters
    ----------
    name : str
        Column name, the same in files and in the store.
    type : str
        Logical type, one of ``id``, ``text``, ``timestamp``, ``number``,
        ``json``, ``enum``.
    required : bool
        Whether an input row must carry a non-empty value.
    allowed : tuple of str
        Allowed values for ``enum`` columns.
    doc : str
        What the column means.
    """

    name: str
    type: LogicalType
    required: bool = False
    allowed: tuple[str, ...] = ()
    doc: str = ""


@dataclass(frozen=True)
class Table:
    """A canonical table: its columns, key and deterministic order.

    ``mutable`` tables hold snapshots of entities (customers, users, tickets):
    a row with the same key and new content replaces the stored row, unless
    both carry their own update time (:data:`SNAPSHOT_TIME`, the last column
    of every mutable table) and the stored one is later; ties and missing
    times fall back to ingest order. Immutable tables hold facts (events,
    messages): a row whose key is stored with different content is
    quarantined as a conflict, never overwritten.
    """

    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    order: tuple[str, ...]
    doc: str = ""
    extra_column: str | None = "properties"
    mutable: bool = False
    fields: dict[str, Column] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "fields", {c.name: c for c in self.columns})

    @property
    def names(self) -> list[str]:
        """Column names in canonical order."""
        return [c.name for c in self.columns]

    @property
    def required(self) -> list[str]:
        """Names of the columns an input file must have."""
        return [c.name for c in self.columns if c.required]


def _c(name: str, type_: LogicalType, required: bool = False, doc: str = "", allowed: tuple[str, ...] = ()) -> Column:
    return Column(name=name, type=type_, required=required, allowed=allowed, doc=doc)


#: The optional column of every mutable table holding the record's own update time (see :class:`Table`).
SNAPSHOT_TIME = "updated_at"


def _snapshot_time() -> Column:
    return _c(
        SNAPSHOT_TIME,
        "timestamp",
        doc=(
            "When the source last changed the record (its own update time). A stored row with a later "
            "updated_at is kept when an older snapshot arrives; ties and missing times: the later ingest wins."
        ),
    )


CUSTOMERS = Table(
    name="customers",
    mutable=True,
    doc="One row per paying account (or trial account that may become one).",
    columns=(
        _c("customer_id", "id", True, "The account's id, unique across sources."),
        _c("name", "text", doc="Account name."),
        _c("domain", "text", doc="Main email/web domain of the account, lower case."),
        _c("segment", "text", doc="Business segment, e.g. SMB, Mid-market, Enterprise."),
        _c("plan", "text", doc="Current plan."),
        _c("signup_at", "timestamp", True, "When the account signed up (trial start)."),
        _c("converted_at", "timestamp", doc="When the account first paid; empty if never."),
        _c("churned_at", "timestamp", doc="When the account churned; empty if active."),
        _c("renewal_at", "timestamp", doc="Next (or last) renewal date."),
        _c("mrr", "number", doc="Monthly recurring revenue in the account currency."),
        _c("properties", "json", doc="Every other attribute of the input row, as JSON."),
        _snapshot_time(),
    ),
    key=("customer_id",),
    order=("customer_id",),
)

USERS = Table(
    name="users",
    mutable=True,
    doc="People inside accounts.",
    columns=(
        _c("user_id", "id", True, "The person's id."),
        _c("customer_id", "id", True, "The account the person belongs to."),
        _c("email", "text", doc="Email address, lower case, trimmed."),
        _c("role", "text", doc="Role in the account (admin, member, ...)."),
        _c("created_at", "timestamp", doc="When the person's user was created."),
        _c("properties", "json", doc="Every other attribute of the input row, as JSON."),
        _snapshot_time(),
    ),
    key=("user_id",),
    order=("customer_id", "user_id"),
)

EVENTS = Table(
    name="events",
    doc="One long timeline across product, support, email and CRM.",
    columns=(
        _c("event_id", "id", True, "Unique id of the event (vendor insert id where there is one)."),
        _c("customer_id", "id", True, "The account the event belongs to."),
        _c("user_id", "text", doc="The person who did it, if known."),
        _c("timestamp", "timestamp", True, "When it happened, UTC."),
        _c("event", "text", True, "Event name, e.g. login, invite_sent, ticket_created."),
        _c(
            "source",
            "text",
            doc=(
                "Where it came from: any name (product, web, ios, segment, a vendor name, ...); its kind "
                "(product activity, crm, support, email) is in source_kinds."
            ),
        ),
        _c("properties", "json", doc="Event properties, as a JSON object."),
    ),
    key=("event_id",),
    order=("customer_id", "timestamp", "source", "event", "event_id"),
)

TICKETS = Table(
    name="tickets",
    mutable=True,
    doc="Support tickets, text kept for sentiment and topics.",
    columns=(
        _c("ticket_id", "id", True, "Ticket id."),
        _c("customer_id", "id", True, "The account that raised it."),
        _c("user_id", "text", doc="The requester, if known."),
        _c("created_at", "timestamp", True, "When it was opened."),
        _c("solved_at", "timestamp", doc="When it was solved; empty if open."),
        _c("channel", "text", doc="email, chat, web, phone, ..."),
        _c("subject", "text", doc="Subject line."),
        _c("body", "text", doc="Full text of the conversation."),
        _c("status", "text", doc="new, open, pending, solved, closed."),
        _c("priority", "text", doc="low, normal, high, urgent."),
        _c("satisfaction", "number", doc="Satisfaction score scaled to 0..1 (bad=0, good=1; a 1-5 rating r is (r-1)/4)."),
        _c("properties", "json", doc="Every other attribute of the input row, as JSON."),
        _snapshot_time(),
    ),
    key=("ticket_id",),
    order=("customer_id", "created_at", "ticket_id"),
)

MESSAGES = Table(
    name="messages",
    doc="Email engagement, one row per recipient and status.",
    columns=(
        _c("message_id", "id", True, "Id of this engagement record."),
        _c("customer_id", "id", True, "The account of the recipient."),
        _c("user_id", "text", doc="The recipient, if known."),
        _c("timestamp", "timestamp", True, "When the status happened."),
        _c("campaign", "text", doc="Campaign or template name."),
        _c("status", "enum", True, "What happened.", MESSAGE_STATUSES),
        _c("properties", "json", doc="Every other attribute of the input row, as JSON."),
    ),
    key=("message_id",),
    order=("customer_id", "timestamp", "message_id"),
)

ASSIGNMENTS = Table(
    name="assignments",
    doc=(
        "Who was assigned to which variant of which experiment, and when: one row per assignment. "
        "Rows are facts: a second row with the same assignment_id and other content is quarantined as a conflict. "
        "A tool that gives assignments no id of their own can write assignment_id = customer_id:experiment, "
        "so that one customer holds one variant per experiment and a contradicting row is quarantined, not merged."
    ),
    columns=(
        _c("assignment_id", "id", True, "Unique id of the assignment (the tool's id, or customer_id:experiment)."),
        _c("customer_id", "id", True, "The account assigned."),
        _c("user_id", "text", doc="The person assigned, when the experiment assigns people; empty for account-level assignment."),
        _c("experiment", "id", True, "Experiment (or feature flag, campaign test) name or id."),
        _c("variant", "id", True, "The arm the account was assigned to, e.g. control, variant_b."),
        _c("assigned_at", "timestamp", True, "When the assignment happened, UTC (exposure starts here)."),
        _c("properties", "json", doc="Every other attribute of the input row, as JSON."),
    ),
    key=("assignment_id",),
    order=("customer_id", "experiment", "assigned_at", "assignment_id"),
)

IDENTITY_MAP = Table(
    name="identity_map",
    doc="How each source identifier was resolved to an account and a person.",
    columns=(
        _c("source", "text", True),
        _c("source_id", "text", True),
        _c("customer_id", "text"),
        _c("user_id", "text"),
        _c("method", "text"),
        _c("confidence", "number"),
    ),
    key=("source", "source_id"),
    order=("source", "source_id"),
    extra_column=None,
)

QUARANTINE = Table(
    name="quarantine",
    doc="Every rejected input row, with the reason.",
    columns=(
        _c("run", "text", True, "Ingest run id."),
        _c("source", "text", True, "Source label (canonical, or a vendor name)."),
        _c("table_name", "text", True, "Canonical table the row was meant for."),
        _c("file", "text", True, "Input file path."),
        _c("line", "integer", doc="1-based line (CSV, JSON Lines) or row number (Parquet) of the row."),
        _c("raw", "text"),
        _c("reason", "text", True),
        _c("ingested_at", "timestamp", True),
    ),
    key=("table_name", "file", "line", "raw", "reason"),
    order=("file", "line"),
    extra_column=None,
)

INGEST_LOG = Table(
    name="ingest_log",
    doc="One row per ingested file; read = loaded + duplicate + quarantined.",
    columns=(
        _c("run", "text", True),
        _c("source", "text", True),
        _c("table_name", "text", True),
        _c("file", "text", True),
        _c("sha256", "text", True),
        _c("rows_read", "integer", True),
        _c("rows_loaded", "integer", True),
        _c("rows_duplicate", "integer", True),
        _c("rows_quarantined", "integer", True),
        _c("rows_updated", "integer", doc="Of rows_loaded, how many replaced a stored row of a mutable table."),
        _c("status", "text", doc="loaded, or skipped (same content already ingested)."),
        _c("notes", "text", doc="Assumptions made while reading, e.g. naive timestamps taken as UTC."),
        _c("ingested_at", "timestamp", True),
        _c(
            "notes_count",
            "integer",
            doc="Rows this entry added to ingest_notes (optional values that could not be read); 0 when none.",
        ),
    ),
    key=("run", "file"),
    order=("ingested_at", "file"),
    extra_column=None,
)

INGEST_NOTES = Table(
    name="ingest_notes",
    doc=(
        "Every optional value stored as empty because it could not be read (or is a date that means "
        "'none'), with where it was and why; a row whose required value cannot be read is quarantined instead."
    ),
    columns=(
        _c("run", "text", True, "Ingest run id."),
        _c("source", "text", True, "Source label (canonical, or a vendor name)."),
        _c("file", "text", True, "Input file path."),
        _c("line", "integer", doc="1-based line (CSV, JSON Lines) or row number (Parquet) of the row."),
        _c("table_name", "text", True, "Canonical table the row was loaded into."),
        _c("row_key", "text", doc="The row's id (the table's key)."),
        _c("field", "text", True, "The column whose value could not be read."),
        _c("value", "text", doc="The raw value, cut to 200 characters."),
        _c("reason", "text", True, "Why it could not be read, and what was stored instead."),
        _c("ingested_at", "timestamp", True),
    ),
    key=("table_name", "file", "line", "row_key", "field", "value", "reason"),
    order=("file", "line", "field"),
    extra_column=None,
)

#: The kinds a source of events can be (:mod:`journeylib.store.categories`): product analytics (the
#: customer's own activity), CRM (commercial records), support, e-mail (messages the company sent).
SOURCE_KINDS: tuple[str, ...] = ("product", "crm", "support", "email")

SOURCE_KINDS_TABLE = Table(
    name="source_kinds",
    doc=(
        "The kind of every event source, chosen when the source's first events are ingested (or declared): "
        "which sources are customer activity, company-sent, CRM or support. Analyses select sources by kind."
    ),
    columns=(
        _c("source", "text", True, "The events.source value."),
        _c("kind", "enum", True, "What kind of system the source is.", SOURCE_KINDS),
        _c(
            "origin",
            "text",
            True,
            "How the kind was chosen: declared (sources.yaml source_kinds or --source-kind), reader <name> "
            "(the vendor reader that loaded it), name (a canonical label such as email), or default "
            "(an unknown name: product activity).",
        ),
        _c("run", "text", doc="Ingest run that chose it."),
        _c("decided_at", "timestamp", True, "When the kind was chosen."),
    ),
    key=("source",),
    order=("source",),
    extra_column=None,
)

#: The journey tables: accounts, people and their timeline (every synthetic world writes them).
ENTITY_TABLES: dict[str, Table] = {t.name: t for t in (CUSTOMERS, USERS, EVENTS, TICKETS, MESSAGES)}

#: Tables a user can load with the generic ingest: the journey tables and experiment assignments.
LOADABLE_TABLES: dict[str, Table] = {**ENTITY_TABLES, ASSIGNMENTS.name: ASSIGNMENTS}

#: Every table of the store.
ALL_TABLES: dict[str, Table] = {
    **LOADABLE_TABLES,
    **{t.name: t for t in (IDENTITY_MAP, SOURCE_KINDS_TABLE, QUARANTINE, INGEST_LOG, INGEST_NOTES)},
}


def get_table(name: str) -> Table:
    """Return the canonical table called *name*.

    Parameters
    ----------
    name : str
        One of the canonical table names.

    Returns
    -------
    Table
        Its schema.

    Raises
    ------
    ValueError
        If *name* is not a canonical table; the message lists the allowed names.
    """
    try:
        return ALL_TABLES[name]
    except KeyError:
        allowed = ", ".join(ALL_TABLES)
        msg = f"unknown table {name!r}; allowed tables are: {allowed}"
        raise ValueError(msg) from None


def contract_markdown() -> str:
    """Render the canonical tables as the Markdown of ``docs/data-contract.md``.

    Returns
    -------
    str
        One section per table: its purpose, key, whether it is mutable, and a
        column table (name, type, required, meaning).
    """
    out = [
        "# The data contract: canonical tables",
        "",
        "Generated from `journeylib/store/schema.py` by `journeylib.store.schema.contract_markdown()`;",
        "a test keeps this file in step. Timestamps are UTC. Files for the generic ingest",
        "(`journeylib ingest TABLE FILE...` or `--folder DIR`, for customers, users, events, tickets,",
        "messages and assignments) name their columns exactly like this; other columns are kept",
        "inside `properties`.",
        "",
    ]
    for table in ALL_TABLES.values():
        kind = "mutable (a newer snapshot replaces the stored row)" if table.mutable else "immutable (conflicting rows are quarantined)"
        out += [f"## {table.name}", "", table.doc, "", f"Key: `{', '.join(table.key)}`; {kind}.", ""]
        out += ["| column | type | required | meaning |", "|---|---|---|---|"]
        for c in table.columns:
            typ = c.type + (f" ({', '.join(c.allowed)})" if c.allowed else "")
            out.append(f"| {c.name} | {typ} | {'yes' if c.required else ''} | {c.doc} |")
        out.append("")
    out += _reading_rules()
    out += _value_rules()
    return "\n".join(out)


def _value_rules() -> list[str]:
    """Return the Markdown lines of the section on values that do not fit the contract (written by the reader)."""
    from journeylib.io.generic import value_rules_markdown

    return value_rules_markdown()


def _reading_rules() -> list[str]:
    """Return the Markdown lines of how the generic ingest reads values (the limits come from the reader)."""
    from journeylib.io.generic import (
        MAX_FIELD_CHARS,
        MAX_JSON_DEPTH,
        MAX_LINE_BYTES,
        NONE_SENTINEL_DATES,
    )
    from journeylib.store.notes import MAX_NOTE_VALUE_CHARS

    sentinels = " and ".join(f"`{d}`" for d in NONE_SENTINEL_DATES)
    return [
        "## Reading rules",
        "",
        "How the generic ingest (CSV, JSON Lines and Parquet alike) reads values. Nothing is dropped",
        "silently: every row read is loaded, a duplicate or quarantined, and every value stored as",
        "empty because it could not be read is a row of `ingest_notes`.",
        "",
        "* **Required and optional values.** A required value that is empty or cannot be read",
        "  quarantines its row. An optional value that cannot be read (a `renewal_at` that is not a",
        "  timestamp, an `mrr` that is not a number, a value outside an enum, a JSON object in a plain",
        "  column) is stored as empty and recorded in `ingest_notes` with its file, line, row id, field,",
        f"  raw value (first {MAX_NOTE_VALUE_CHARS} characters) and reason; `ingest_log.notes_count` counts them",
        "  per file, and the ingest summary and the data-health report show the counts.",
        "* **Refused anywhere in a row.** A row is quarantined, whatever the column, for a NUL",
        "  character; a non-finite number (NaN, Infinity, or a JSON number too large for a float); a",
        "  lone surrogate escape such as `\\ud800`; a field longer than",
        f"  {MAX_FIELD_CHARS:,} characters; JSON nested deeper than {MAX_JSON_DEPTH} levels; a JSON Lines line",
        f"  longer than {MAX_LINE_BYTES:,} bytes; a `properties` value that is not a JSON object (the",
        "  column holds many values, which would all be lost with it).",
        "* **Timestamps.** ISO-8601 (`2025-03-01T09:30:00Z`, `2025-03-01 09:30:00+02:00`, `2025-03-01`);",
        "  offsets are honoured and naive times taken as UTC (counted in `ingest_log.notes`). Any year",
        f"  from 1 to 9999 is accepted. {sentinels} (at any time of day) mean \"none\": an optional",
        "  value is stored as empty (and noted), a required one quarantines its row.",
        "* **Ids.** Surrounding white space is stripped. Invisible characters (Unicode categories Cc,",
        "  Cf, Zl and Zp: control characters, zero-width spaces and joiners, direction marks, the",
        "  byte-order mark, the soft hyphen) are refused, not stripped: in a required id column the row",
        "  is quarantined; in an optional id column (`user_id` of events, tickets, messages) the value",
        "  is stored as empty and noted.",
        "* **CSV quotes.** A row whose quoted field does not close (an unbalanced quote) is",
        "  quarantined on its own line and reading goes on with the next line, so the quote does not",
        "  swallow the rows after it.",
        "* **Per-record isolation.** An error while reading one record quarantines that record with",
        "  the reason in words; a file is refused whole only when it cannot be read at all (no header,",
        "  missing required columns, not UTF-8 text, a damaged Parquet file). With several files the",
        "  others are still loaded, and `journeylib ingest` exits non-zero with the summary.",
        "* **Re-reading.** A file already ingested (same sha256) is skipped; a forced re-read adds no",
        "  quarantine row and no note twice (quarantine rows are unique on their key).",
        "* **Snapshots by their own time.** A row of a mutable table (customers, users, tickets) whose",
        "  key is stored with different content replaces the stored row, unless both carry their own",
        f"  `{SNAPSHOT_TIME}` and the stored one is later: then the older row counts as a duplicate (a stale",
        "  snapshot; nothing is loaded or quarantined, so `read = loaded + duplicate + quarantined` holds).",
        f"  Equal times, or no `{SNAPSHOT_TIME}` on either side, fall back to ingest order: the later ingest",
        f"  wins. An unreadable `{SNAPSHOT_TIME}` is stored as empty and noted, like any optional value.",
        "  Inside one file, rows sharing a key with different content are still all quarantined.",
        "* **Folders.** `journeylib ingest --folder DIR` loads `<table>.<ext>`, `<table>.<anything>.<ext>` and the",
        "  files of `<table>/` (or `<table>.<ext>/`, as Spark writes) for the tables customers, users, tickets,",
        "  messages, events and assignments, in that order. Every other file or folder is named in the summary",
        "  with the reason it was not read (a name that is no table, a table name in other case, a format the",
        "  reader does not take, a hidden file, a folder inside a table folder).",
        "* **Source kinds.** `events.source` is free text. The first time a source's events are ingested its kind",
        "  is recorded in `source_kinds` and printed in the summary: declared (`source_kinds` in `sources.yaml`,",
        "  `--source-kind NAME=KIND`), else its vendor reader's category, else its name when the name is a kind",
        "  or a reader's name, else `product` (customer activity). A later declaration changes the kind without",
        "  re-reading anything; the data-health report lists every source with its kind and how it was chosen.",
        "",
    ]
