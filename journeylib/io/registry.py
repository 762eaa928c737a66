"""The vendor readers journeylib knows, found by looking at the modules of :mod:`journeylib.io`.

Every vendor reader module ``journeylib/io/<name>.py`` ends with a
:class:`VendorReader` named ``READER`` that says what the reader is: its
name, the category of system it reads (product analytics, CRM, support,
e-mail), whether and how highly its accounts rank as the account master, and
its ``detect_kind`` and ``read`` functions. This module imports every module
of the package once, on first use, and collects those declarations, so adding
a vendor is adding its module: the ingest (:mod:`journeylib.store.sources`),
source categories (:mod:`journeylib.store.categories`), identity resolution
(:mod:`journeylib.store.identity`) and the command line read the readers from
here.

Examples
--------
>>> reader_names()
('mixpanel', 'amplitude', 'zendesk', 'intercom', 'hubspot', 'salesforce', 'sendgrid', 'mailchimp')
>>> get_vendor_reader("zendesk").category
'support'
>>> account_readers()
('salesforce', 'hubspot', 'intercom', 'zendesk')
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from journeylib.io.common import LinesBlock, Part, ReadContext

__all__ = [
    "CATEGORIES",
    "VendorReader",
    "account_readers",
    "get_vendor_reader",
    "reader_categories",
    "reader_names",
    "readers_in_category",
    "readers_taking",
    "vendor_readers",
]

#: The categories of systems a reader can read, which are also the canonical source labels.
CATEGORIES: tuple[str, ...] = ("product", "crm", "support", "email")


@dataclass(frozen=True)
class VendorReader:
    """What one vendor reader is: declared as ``READER`` at the end of its module.

    Parameters
    ----------
    name : str
        The reader's name, which is also its module's name
        (``journeylib.io.<name>``) and the name used in ``sources.yaml`` and
        on the command line.
    category : str
        One of :data:`CATEGORIES`: what kind of system the vendor is
        (``product`` analytics, ``crm``, ``support``, ``email``). The people
        of a ``crm`` reader are the CRM contacts identity resolution matches
        e-mails against.
    detect_kind : callable
        ``detect_kind(path) -> str``: recognises what an export file holds
        (one of the keys of *kind_tables*) or raises
        :class:`~journeylib.exceptions.SourceFormatError`.
    read : callable
        ``read(path, ctx) -> Iterator[Part | LinesBlock]``: reads an export
        file into parts for the store to stage.
    kind_tables : mapping of str to str
        File kind → the table it mainly feeds (``events``, ``tickets``,
        ``messages`` or ``identities``).
    order : int
        Place of the reader in listings (messages, ``--help``): readers are
        listed by increasing *order*. Each reader has its own.
    account_rank : int, optional
        Set when the vendor holds accounts that can be the account master:
        by default the account source whose reader has the lowest rank is the
        master (``identity.account_sources`` in ``sources.yaml`` overrides
        it). None for readers whose accounts never are.
    options : tuple of str
        The reader's own options in ``sources.yaml`` (fields of
        :class:`journeylib.config.sources.ReaderOptions`, e.g.
        ``timezone``); the caps of :class:`journeylib.io.common.Caps` apply
        to every reader and are not listed.

    Examples
    --------
    >>> get_vendor_reader("salesforce").account_rank
    1
    """

    name: str
    category: str
    detect_kind: Callable[[Path], str]
    read: Callable[[Path, ReadContext], Iterator[Part | LinesBlock]]
    kind_tables: Mapping[str, str]
    order: int
    account_rank: int | None = None
    options: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.category not in CATEGORIES:
            msg = f"reader {self.name!r}: category must be one of {', '.join(CATEGORIES)}, got {self.category!r}"
            raise ValueError(msg)

    @property
    def kinds(self) -> tuple[str, ...]:
        """The file kinds the reader recognises."""
        return tuple(self.kind_tables)

    @property
    def is_account_source(self) -> bool:
        """Whether the vendor's accounts can be the account master."""
        return self.account_rank is not None


def vendor_readers() -> dict[str, VendorReader]:
    """Return every vendor reader of :mod:`journeylib.io`, by name, in listing order.

    The modules of the package are imported once, on the first call; those
    that define a :class:`VendorReader` named ``READER`` are readers.

    Returns
    -------
    dict of str to VendorReader
        Name → reader, ordered by :attr:`VendorReader.order` (a new dict on
        each call).

    Raises
    ------
    ValueError
        If a reader's name differs from its module's name, or two readers
        share an order or an account rank.
    """
    return {r.name: r for r in _discover()}


@functools.cache
def _discover() -> tuple[VendorReader, ...]:
    import journeylib.io as package

    found: list[VendorReader] = []
    for info in pkgutil.iter_modules(package.__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        reader: Any = getattr(module, "READER", None)
        if not isinstance(reader, VendorReader):
            continue
        if reader.name != info.name:
            msg = f"journeylib/io/{info.name}.py: READER.name must be the module's name {info.name!r}, got {reader.name!r}"
            raise ValueError(msg)
        found.append(reader)
    for attr in ("order", "account_rank"):
        values = [getattr(r, attr) for r in found if getattr(r, attr) is not None]
        clash = sorted({v for v in values if values.count(v) > 1})
        if clash:
            names = [r.name for r in found if getattr(r, attr) in clash]
            msg = f"vendor readers {names} share the {attr} {clash}; give each reader its own {attr}"
            raise ValueError(msg)
    return tuple(sorted(found, key=lambda r: r.order))


def reader_names() -> tuple[str, ...]:
    """Return the names of the vendor readers, in listing order.

    Returns
    -------
    tuple of str
        E.g. ``("mixpanel", "amplitude", ...)``.
    """
    return tuple(vendor_readers())


def get_vendor_reader(name: str) -> VendorReader:
    """Return the vendor reader called *name*.

    Parameters
    ----------
    name : str
        A reader name.

    Returns
    -------
    VendorReader
        Its declaration.

    Raises
    ------
    ValueError
        If *name* is not a reader; the message lists the readers.
    """
    readers = vendor_readers()
    if name not in readers:
        msg = f"unknown reader {name!r}; allowed readers are {', '.join(readers)}"
        raise ValueError(msg)
    return readers[name]


def readers_in_category(category: str) -> tuple[str, ...]:
    """Return the readers of one category, account sources first by rank, then the others in listing order.

    Parameters
    ----------
    category : str
        One of :data:`CATEGORIES`.

    Returns
    -------
    tuple of str
        Reader names (e.g. ``("salesforce", "hubspot")`` for ``crm``).
    """
    readers = [r for r in vendor_readers().values() if r.category == category]
    ranked = sorted((r for r in readers if r.account_rank is not None), key=lambda r: r.account_rank or 0)
    return tuple(r.name for r in [*ranked, *(r for r in readers if r.account_rank is None)])


def account_readers() -> tuple[str, ...]:
    """Return the readers whose accounts can be the master, most trusted (lowest rank) first.

    Returns
    -------
    tuple of str
        Reader names.
    """
    ranked = sorted((r for r in vendor_readers().values() if r.account_rank is not None), key=lambda r: r.account_rank or 0)
    return tuple(r.name for r in ranked)


def readers_taking(option: str) -> tuple[str, ...]:
    """Return the readers that take the reader option *option*, in listing order.

    Parameters
    ----------
    option : str
        An option name (``timezone``, ``date_order``, ...).

    Returns
    -------
    tuple of str
        Reader names (empty for an option no reader declares, such as a cap,
        which every reader takes).
    """
    return tuple(name for name, r in vendor_readers().items() if option in r.options)


def reader_categories() -> dict[str, str]:
    """Return the category of every vendor reader.

    Returns
    -------
    dict of str to str
        Reader name → one of :data:`CATEGORIES`, in listing order.
    """
    return {name: r.category for name, r in vendor_readers().items()}
