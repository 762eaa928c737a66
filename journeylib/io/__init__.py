"""Readers: one per export format. Nothing outside this package knows vendor formats."""

from journeylib.io.generic import SUPPORTED_SUFFIXES, Chunk, FileReader, read_canonical

__all__ = ["SUPPORTED_SUFFIXES", "Chunk", "FileReader", "read_canonical"]
