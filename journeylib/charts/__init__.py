"""Altair charts: each ``<metric>_chart`` encodes what the matching ``<metric>_data`` returned."""
