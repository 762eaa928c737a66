"""Readers: one per export format. Nothing outside this package knows vendor formats.

``generic`` reads canonical files; each vendor reader is a module
``<vendor>.py`` declaring itself as ``READER`` (a
:class:`~journeylib.io.registry.VendorReader`), found by
:mod:`journeylib.io.registry`; :mod:`journeylib.io.common` holds what the vendor
readers share.
"""

from journeylib.io.generic import SUPPORTED_SUFFIXES, Chunk, FileReader, read_canonical

__all__ = ["SUPPORTED_SUFFIXES", "Chunk", "FileReader", "read_canonical"]
