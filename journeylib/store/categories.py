"""What kind of system each event source is: product analytics, CRM, support or e-mail.

Analyses ask for *kinds* of sources, not source names: activity (days
active, sessions) comes from product analytics; CRM records
(``subscription_started``, a won opportunity, a lifecycle stage change) are
commercial facts that encode outcomes and are never behaviour candidates.
Source names differ between stores — the canonical files use ``product``,
``crm``, ``support``, ``email``; a ``sources.yaml`` names its sources freely
(``salesforce``, or ``product`` read by the Mixpanel reader) — so the category
of a source is found from its reader when a vendor reader loaded it, else from
its name.
"""

from __future__ import annotations

from collections.abc import Sequence

from journeylib.io.registry import CATEGORIES, reader_categories
from journeylib.store.database import Store
from journeylib.store.dialect import sql_quote
from journeylib.store.staging import vendor_tables_exist

__all__ = ["CATEGORIES", "READER_CATEGORY", "events_of", "events_of_kinds", "source_categories", "sources_of"]

#: Category of each vendor reader, as the readers declare it (:mod:`journeylib.io.registry`).
#: The categories (:data:`CATEGORIES`) are also the canonical source labels.
READER_CATEGORY: dict[str, str] = reader_categories()


def source_categories(store: Store) -> dict[str, str]:
    """Return the category of every event source in the store.

    Parameters
    ----------
    store : Store
        The canonical store (read-only is fine).

    Returns
    -------
    dict of str to str
        ``events.source`` → ``product``, ``crm``, ``support``, ``email``, or
        the source name itself when neither its reader nor its name says
        (e.g. ``synthetic``).
    """
    sources = store.query("SELECT DISTINCT source FROM events WHERE source IS NOT NULL ORDER BY source")["source"].astype(str)
    readers: dict[str, str] = {}
    if vendor_tables_exist(store):
        rows = store.query("SELECT source, min(reader) AS reader FROM source_identities GROUP BY source")
        readers = dict(zip(rows["source"].astype(str), rows["reader"].astype(str), strict=True))
    out: dict[str, str] = {}
    for name in sources:
        reader = readers.get(name, name)
        out[name] = READER_CATEGORY.get(reader, READER_CATEGORY.get(name, name))
    return out


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
