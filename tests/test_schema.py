"""The canonical schema and its generated documentation."""

from __future__ import annotations

from pathlib import Path

import pytest

from journeylib.store import Store
from journeylib.store.database import table_ddl
from journeylib.store.schema import ALL_TABLES, EVENTS, contract_markdown, get_table

ROOT = Path(__file__).resolve().parents[1]


def test_contract_doc_is_current() -> None:
    assert (ROOT / "docs" / "data-contract.md").read_text() == contract_markdown()


def test_events_contract() -> None:
    assert EVENTS.names == ["event_id", "customer_id", "user_id", "timestamp", "event", "source", "properties"]
    assert EVENTS.order == ("customer_id", "timestamp", "source", "event", "event_id")
    assert not EVENTS.mutable


def test_get_table_error_lists_allowed() -> None:
    with pytest.raises(ValueError, match="unknown table 'sessions'; allowed tables are: customers, users, events"):
        get_table("sessions")


def test_store_creates_every_table() -> None:
    with Store(":memory:") as s:
        for name, table in ALL_TABLES.items():
            cols = s.query(f"SELECT * FROM \"{name}\" LIMIT 0").columns.tolist()
            assert cols == table.names
            assert f'"{name}"' in table_ddl(table)


def test_assignments_contract_and_loadable_tables() -> None:
    from journeylib.store.schema import ASSIGNMENTS, ENTITY_TABLES, LOADABLE_TABLES

    assert ASSIGNMENTS.names == ["assignment_id", "customer_id", "user_id", "experiment", "variant", "assigned_at", "properties"]
    assert ASSIGNMENTS.key == ("assignment_id",)  # the merge keys on one column
    assert ASSIGNMENTS.required == ["assignment_id", "customer_id", "experiment", "variant", "assigned_at"]
    assert not ASSIGNMENTS.mutable  # a contradicting assignment is quarantined, never merged over the stored one
    assert list(LOADABLE_TABLES) == [*ENTITY_TABLES, "assignments"]
    assert "## assignments" in contract_markdown()


def test_source_kinds_are_the_readers_categories() -> None:
    from journeylib.io.registry import CATEGORIES
    from journeylib.store.schema import SOURCE_KINDS, SOURCE_KINDS_TABLE

    assert SOURCE_KINDS == CATEGORIES
    assert SOURCE_KINDS_TABLE.fields["kind"].allowed == SOURCE_KINDS
    assert SOURCE_KINDS_TABLE.key == ("source",)
