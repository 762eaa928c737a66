"""The store: canonical tables in DuckDB, ingest, identity stitching and source kinds.

This package is the only part of journeylib that talks to the database.
"""
