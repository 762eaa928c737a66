"""What kind of system each event source is: product analytics, CRM, support or e-mail.

Analyses ask for *kinds* of sources, not source names: activity (days
active, sessions) comes from product analytics; CRM records
(``subscription_started``, a won opportunity, a lifecycle stage change) are
commercial facts that encode outcomes and are never behaviour candidates;
e-mail and CRM events are sent by the company, not done by the customer.

Source names are whatever the company's tools and pipeline wrote (``web``,
``ios``, ``segment``, ``backend``, a ``sources.yaml`` name read by the
Mixpanel reader, ...). The kind of a source is, in order:

1. **declared** — ``source_kinds`` in ``sources.yaml`` or
   ``journeylib ingest --source-kind NAME=KIND``;
2. **reader** — the category of the vendor reader that loaded it
   (``source_identities.reader``);
3. **name** — a canonical kind label (``product``, ``crm``, ``support``,
   ``email``) or a vendor reader's name (a canonical file whose source is
   ``zendesk``);
4. **default** — any other name is product activity.

The ingest records the kind it chose for each new source in the
``source_kinds`` table (:func:`record_source_kinds`) and prints it, so a
default that is wrong (an e-mail tool named ``braze`` counted as activity)
shows in the ingest summary and the data-health report, and a declaration
fixes it without re-ingesting. A source with events but no recorded kind (a
store written before the table existed, rows inserted directly) gets the
same rule at query time.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from journeylib.store.database import Store
from journeylib.store.dialect import sql_quote
from journeylib.store.schema import SOURCE_KINDS, SOURCE_KINDS_TABLE

__all__ = [
    "CATEGORIES",
    "DEFAULT_KIND",
    "SourceKindChoice",
    "activity_source_names",
    "check_source_kinds",
    "events_of",
    "events_of_kinds",
    "parse_source_kind",
    "reader_category",
    "record_source_kinds",
    "source_categories",
    "source_kinds_table",
    "sources_of",
]

#: The categories of systems a vendor reader can read (``journeylib.io.registry.CATEGORIES``), which
#: are also the canonical source labels and the kinds of :data:`journeylib.store.schema.SOURCE_KINDS`.
CATEGORIES: tuple[str, ...] = SOURCE_KINDS


def reader_category() -> dict[str, str]:
    """Return the category of each vendor reader, as the readers declare it.

    The vendor readers (:mod:`journeylib.io`) are imported on the first call
    (:func:`journeylib.io.registry.reader_categories`), not when this module
    is: analyses whose sources all have a recorded kind never import them.

    Returns
    -------
    dict of str to str
        Reader name → one of :data:`CATEGORIES`, in listing order.
    """
    from journeylib.io.registry import reader_categories  # the readers, imported when first needed

    return reader_categories()


#: The kind of a source whose name journeylib does not know and that nobody declared: product activity.
DEFAULT_KIND = "product"

#: Columns of :func:`source_kinds_table`.
KIND_COLUMNS: tuple[str, ...] = ("source", "kind", "origin", "recorded", "events")


def _derived(source: str, reader: str | None) -> tuple[str, str]:
    """Return (kind, origin) of a source nobody declared: from its reader, else its name, else the default."""
    if source in CATEGORIES and reader is None:
        return source, "name"
    readers = reader_category()
    if reader is not None and reader in readers:
        return readers[reader], f"reader {reader}"
    if source in CATEGORIES:
        return source, "name"
    if source in readers:
        return readers[source], "name"
    return DEFAULT_KIND, "default"


def _readers(store: Store) -> dict[str, str]:
    """Return the vendor reader of every source a vendor export loaded (empty for a canonical-only store)."""
    from journeylib.store.staging import vendor_tables_exist  # the vendor bookkeeping, only for sources without a kind

    if not vendor_tables_exist(store):
        return {}
    rows = store.query("SELECT source, min(reader) AS reader FROM source_identities GROUP BY source")
    return dict(zip(rows["source"].astype(str), rows["reader"].astype(str), strict=True))


def _recorded(store: Store) -> pd.DataFrame:
    """Return the rows of ``source_kinds`` (none for a store made before the table existed)."""
    if SOURCE_KINDS_TABLE.name not in store.tables():
        return pd.DataFrame({c: pd.Series(dtype=object) for c in ("source", "kind", "origin")})
    return store.query("SELECT source, kind, origin FROM source_kinds ORDER BY source")


def _event_sources(store: Store) -> pd.DataFrame:
    return store.query("SELECT source, count(*) AS events FROM events WHERE source IS NOT NULL GROUP BY source ORDER BY source")


#: :func:`source_kinds_table` of a read-only DuckDB store, by the connection it was read on. A
#: read-only connection's data cannot change while it is open (a writer cannot open the file
#: then), so the table is read once per store session: a feature build asking for the activity
#: sources and two source lists scans ``events`` once. The entry goes with the connection.
_KINDS_BY_CONNECTION: weakref.WeakKeyDictionary[Any, pd.DataFrame] = weakref.WeakKeyDictionary()


def _kinds_table(store: Store) -> pd.DataFrame:
    with store.session():
        counts = _event_sources(store)
        events = dict(zip(counts["source"].astype(str), counts["events"].astype(int), strict=True))
        recorded = _recorded(store)
        stored = {str(r.source): (str(r.kind), str(r.origin)) for r in recorded.itertuples(index=False)}
        readers = _readers(store) if set(events) - set(stored) else {}
    rows = []
    for name in sorted(set(events) | set(stored)):
        kind, origin = stored.get(name) or _derived(name, readers.get(name))
        rows.append({"source": name, "kind": kind, "origin": origin, "recorded": name in stored, "events": events.get(name, 0)})
    out = pd.DataFrame(rows, columns=list(KIND_COLUMNS))
    return out.astype({"recorded": bool, "events": "int64"})


def source_kinds_table(store: Store) -> pd.DataFrame:
    """Return the kind of every event source, with how it was chosen.

    On a read-only DuckDB store the table is read once per connection: the
    calls inside one ``store.session()`` share one scan of ``events`` (its
    data cannot change while the session holds the file). A writable store
    and a Spark store are read on every call.

    Parameters
    ----------
    store : Store
        The canonical store (read-only is fine).

    Returns
    -------
    pandas.DataFrame
        One row per source that has events or a recorded kind, sorted by
        source:

        ``source``
            The ``events.source`` value.
        ``kind``
            ``product``, ``crm``, ``support`` or ``email``.
        ``origin``
            ``declared``, ``reader <name>``, ``name`` or ``default`` (see the
            module docstring).
        ``recorded``
            Whether the kind is stored in ``source_kinds`` (False: derived
            now by the same rule, e.g. for a store written before the table
            existed).
        ``events``
            Events of the source in the store (0 for a kind declared before
            any of its events arrived).
    """
    if store.engine != "duckdb" or not store.read_only or store.path is None:
        return _kinds_table(store)
    with store.session():
        con = store.con
        table = _KINDS_BY_CONNECTION.get(con)
        if table is None:
            table = _kinds_table(store)
            _KINDS_BY_CONNECTION[con] = table
    return table.copy()


def source_categories(store: Store) -> dict[str, str]:
    """Return the kind of every event source in the store.

    Parameters
    ----------
    store : Store
        The canonical store (read-only is fine).

    Returns
    -------
    dict of str to str
        ``events.source`` → ``product``, ``crm``, ``support`` or ``email``,
        for every source with events: the recorded kind, else the rule of the
        module docstring (a name journeylib does not know is ``product``).
    """
    table = source_kinds_table(store)
    table = table[table["events"] > 0]
    return dict(zip(table["source"].astype(str), table["kind"].astype(str), strict=True))


def activity_source_names(store: Store) -> list[str]:
    """Return the event sources whose events are the customer's own activity (kind ``product``), sorted.

    Parameters
    ----------
    store : Store
        The canonical store.

    Returns
    -------
    list of str
        ``events.source`` values of kind product; empty when no source is.
    """
    return sorted(s for s, kind in source_categories(store).items() if kind == DEFAULT_KIND)


def check_source_kinds(kinds: Mapping[str, str], *, where: str = "source kinds") -> dict[str, str]:
    """Validate a mapping of source name → kind.

    Parameters
    ----------
    kinds : mapping of str to str
        Source names (non-empty, surrounding white space stripped) and kinds.
    where : str, default "source kinds"
        Where the mapping came from, for the message (``--source-kind``,
        ``sources.yaml``).

    Returns
    -------
    dict of str to str
        The mapping with names and kinds stripped, kinds lower case.

    Raises
    ------
    ValueError
        Naming every entry whose name is empty or whose kind is not one of
        :data:`journeylib.store.schema.SOURCE_KINDS`.
    """
    out: dict[str, str] = {}
    problems: list[str] = []
    for name, kind in kinds.items():
        src, k = str(name).strip(), str(kind).strip().lower()
        if not src:
            problems.append(f"an empty source name (kind {kind!r})")
        elif k not in SOURCE_KINDS:
            problems.append(f"source {src!r}: kind {kind!r} is not one of {', '.join(SOURCE_KINDS)}")
        else:
            out[src] = k
    if problems:
        msg = f"{where}: " + "; ".join(problems) + "."
        raise ValueError(msg)
    return out


def parse_source_kind(text: str) -> tuple[str, str]:
    """Parse one ``NAME=KIND`` declaration (the ``--source-kind`` option).

    Parameters
    ----------
    text : str
        E.g. ``"braze=email"``.

    Returns
    -------
    tuple of str
        ``(name, kind)``, stripped, the kind lower case.

    Raises
    ------
    ValueError
        If there is no ``=``, the name is empty or the kind is not one of
        :data:`journeylib.store.schema.SOURCE_KINDS`.

    Examples
    --------
    >>> parse_source_kind("braze=Email")
    ('braze', 'email')
    """
    name, sep, kind = text.partition("=")
    if not sep:
        msg = f"--source-kind expects NAME=KIND (KIND one of {', '.join(SOURCE_KINDS)}), got {text!r}"
        raise ValueError(msg)
    ((src, k),) = check_source_kinds({name: kind}, where=f"--source-kind {text}").items()
    return src, k


@dataclass(frozen=True)
class SourceKindChoice:
    """The kind an ingest chose (or a declaration set) for one source.

    Attributes
    ----------
    source : str
        The ``events.source`` value.
    kind : str
        Its kind now.
    origin : str
        ``declared``, ``reader <name>``, ``name`` or ``default``.
    previous : str
        The kind recorded before, with its origin (``product (default)``);
        empty for a source seen for the first time.
    events : int
        Events of the source in the store.
    """

    source: str
    kind: str
    origin: str
    previous: str = ""
    events: int = 0

    def summary(self) -> str:
        """One line for the ingest summary."""
        why = {
            "declared": "declared",
            "name": "its name is a kind" if self.source in CATEGORIES else f"the kind of the {self.source} reader",
            "default": (
                f"default: journeylib does not know the name, so its events count as customer activity; if they are "
                f"not, declare it with --source-kind {self.source}=KIND or source_kinds in sources.yaml "
                f"(KIND one of {', '.join(SOURCE_KINDS)})"
            ),
        }.get(self.origin, f"from its {self.origin}")
        line = f"source {self.source}: kind {self.kind} ({why}"
        if self.previous:
            line += f"; was {self.previous}"
        if not self.events:
            line += "; no events from this source in the store yet"
        return line + ")"


def record_source_kinds(store: Store, declared: Mapping[str, str] | None = None, *, run: str = "") -> list[SourceKindChoice]:
    """Record the kind of every source that has none yet, and apply declared kinds.

    A source with events and no recorded kind gets the kind of the rule in the
    module docstring; a declared kind replaces a recorded one (analyses read
    kinds when they run, so nothing needs re-ingesting); a declared source
    with no events yet is recorded too, so its first events take that kind.

    Parameters
    ----------
    store : Store
        A writable store.
    declared : mapping of str to str, optional
        Source name → kind (checked by :func:`check_source_kinds`).
    run : str, default ""
        Ingest run id stored with each new or changed row.

    Returns
    -------
    list of SourceKindChoice
        The new and changed kinds, by source (empty when nothing changed).

    Raises
    ------
    ValueError
        If a declared kind is not one of the kinds.
    """
    wanted = check_source_kinds(declared or {})
    table = source_kinds_table(store)
    choices: list[SourceKindChoice] = []
    rows: list[dict[str, object]] = []
    known: dict[str, dict[str, object]] = {str(r["source"]): {str(k): v for k, v in r.items()} for r in table.to_dict("records")}
    for name in sorted(set(known) | set(wanted)):
        row = known.get(name)
        events = int(str(row["events"])) if row is not None else 0
        recorded = row is not None and bool(row["recorded"])
        was = f"{row['kind']} ({row['origin']})" if row is not None and recorded else ""
        if name in wanted:
            if row is not None and recorded and (row["kind"], row["origin"]) == (wanted[name], "declared"):
                continue
            kind, origin = wanted[name], "declared"
        elif row is not None and not recorded:
            kind, origin = str(row["kind"]), str(row["origin"])
        else:
            continue
        choices.append(SourceKindChoice(name, kind, origin, was, events))
        rows.append({"source": name, "kind": kind, "origin": origin, "run": run or None, "decided_at": datetime.now(UTC)})
    if rows:
        with store.transaction():
            names = ", ".join(sql_quote(str(r["source"])) for r in rows)
            store.execute(f"DELETE FROM source_kinds WHERE source IN ({names})")
            store.insert("source_kinds", pd.DataFrame(rows))
    return choices


def sources_of(store: Store, categories: Sequence[str]) -> list[str]:
    """Return the event sources of the given categories (or names), sorted.

    Parameters
    ----------
    store : Store
        The canonical store.
    categories : sequence of str
        Categories (``product``, ``crm``, ...); a value that is a source name
        selects that source too, so explicit names keep working.

    Returns
    -------
    list of str
        The matching ``events.source`` values, plus the given values
        themselves (a category with no source yet still names nothing
        harmful in an ``IN`` list).
    """
    wanted = set(categories)
    found = {s for s, c in source_categories(store).items() if c in wanted or s in wanted}
    return sorted(found | wanted)


def events_of(store: Store, categories: Sequence[str]) -> list[str]:
    """Return the event names seen from sources of the given categories (or names), sorted.

    Parameters
    ----------
    store : Store
        The canonical store.
    categories : sequence of str
        As in :func:`sources_of`.

    Returns
    -------
    list of str
        Distinct ``events.event`` values of those sources (e.g. for
        ``["product", "support"]``: what customers did, without CRM records
        or e-mails the company sent).
    """
    names = ", ".join(sql_quote(s) for s in sources_of(store, categories))
    if not names:
        return []
    return store.query(f"SELECT DISTINCT event FROM events WHERE source IN ({names}) ORDER BY event")["event"].astype(str).tolist()


def events_of_kinds(store: Store, kinds: str) -> list[str] | None:
    """Return the events of the source kinds named in a comma-separated text; None for an empty text.

    The form notebook parameters take (``path_sources: str = "product,support"``).

    Parameters
    ----------
    store : Store
        The canonical store.
    kinds : str
        Comma-separated categories or source names; empty or blank means
        every source.

    Returns
    -------
    list of str or None
        As :func:`events_of`, or None (no restriction) for an empty text.
    """
    names = [k.strip() for k in kinds.split(",") if k.strip()]
    return events_of(store, names) if names else None
