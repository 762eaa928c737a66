"""`score_customers` scores the store's tickets block by block: the same sentiment as scoring them all at once."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from journeylib.customers.scoring import SENTIMENT_COLUMNS, _ticket_sentiment
from journeylib.store import Store
from journeylib.voice.sentiment import score_tickets


@pytest.mark.parametrize("block_rows", [1, 7, 10_000])
def test_ticket_blocks_give_the_scores_of_all_tickets_at_once(demo_store: Path, block_rows: int) -> None:
    """Blocks of whole customers, read in the table's order: ``score_tickets`` of the whole table, row for row."""
    with Store(demo_store, read_only=True) as store:
        tickets = store.table("tickets")
        whole = score_tickets(tickets)[list(SENTIMENT_COLUMNS)].reset_index(drop=True)
        blocks = _ticket_sentiment(store, block_rows=block_rows)
    assert len(whole) > 50
    assert tickets["customer_id"].nunique() > 7
    assert blocks is not None
    pd.testing.assert_frame_equal(blocks, whole, check_exact=True)


@pytest.mark.parametrize("with_null_customer", [False, True])
def test_ticket_blocks_with_quoted_ids_and_tickets_without_a_customer(tmp_path: Path, with_null_customer: bool) -> None:
    """Customer ids holding quotes are read in their blocks; a ticket without a customer is scored too, in its place."""
    ids = ["c'1", "c'1", "c2", "d''3", None]
    rows = pd.DataFrame({
        "ticket_id": [f"t{i}" for i in range(5)],
        "customer_id": ids if with_null_customer else [*ids[:4], "e4"],
        "created_at": pd.to_datetime(["2024-01-02", "2024-01-01", "2024-01-03", "2024-01-01", "2024-01-05"], utc=True),
        "subject": ["Thanks, works great!", "Export broken", None, "Re: billing", "Terrible support"],
        "body": ["Love it.", "Still broken!!", "Why was I charged twice?", None, "Nobody answers. Awful."],
    })
    with Store(tmp_path / "t.duckdb") as store:
        store.create_tables()
        store.query(
            "INSERT INTO tickets (ticket_id, customer_id, created_at, subject, body) "
            "SELECT ticket_id, customer_id, created_at, subject, body FROM rows", rows=rows
        )
        whole = score_tickets(store.table("tickets"))[list(SENTIMENT_COLUMNS)].reset_index(drop=True)
        blocks = _ticket_sentiment(store, block_rows=1)
    assert len(whole) == 5
    assert whole["ticket_id"].tolist()[:2] == ["t1", "t0"]  # the table's order: by customer, then creation time
    assert blocks is not None
    pd.testing.assert_frame_equal(blocks, whole, check_exact=True)


def test_no_tickets_give_no_scores(tmp_path: Path) -> None:
    with Store(tmp_path / "empty.duckdb") as store:
        store.create_tables()
        assert _ticket_sentiment(store) is None
