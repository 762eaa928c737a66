"""Values that do not fit the contract, caught at ingest: satisfaction scales, implied e-mail statuses, unknown enums.

Each rule is checked through both canonical ingest paths (the engine and the
exact reader) and, for implied statuses, through the feature table that reads
the implication.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from journeylib.customers.features import build_features
from journeylib.io.generic import IMPLIED_NOTES, score_scale
from journeylib.store import Store
from journeylib.store.ingest import ingest_file

TICKETS_HEADER = "ticket_id,customer_id,created_at,satisfaction\n"


def _tickets(path: Path, scores: list[str]) -> Path:
    rows = "".join(f"t{i},c1,2025-01-0{1 + i % 9}T10:00:00Z,{s}\n" for i, s in enumerate(scores))
    path.write_text(TICKETS_HEADER + rows, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("values", "kind", "low", "high"),
    [
        ([0.0, 0.5, 1.0], "unit", 0, 1),
        ([1, 1], "unit", 0, 1),
        ([1, 2, 5, 3], "rescale", 1, 5),
        ([0, 7, 10, 3], "rescale", 0, 10),
        ([3, 6, 9], "unknown", 0, 1),  # whole numbers without a 0 or a 10: 1-7? 1-10? 0-10?
        ([0, 1, 3, 5], "unknown", 0, 1),  # 0-5 or 0-10 without high scores
        ([0.25, 0.5, 4], "outliers", 0, 1),
        ([2.5, 4.0], "unknown", 0, 1),
        ([-1, 3], "unknown", 0, 1),
        ([np.nan, 4, 2], "rescale", 1, 5),
    ],
)
def test_score_scale_is_told_from_the_values_present(values: list[float], kind: str, low: float, high: float) -> None:
    choice = score_scale(values)
    assert (choice.kind, choice.low, choice.high) == (kind, low, high)
    assert choice.reason


@pytest.mark.parametrize("engine", ["exact", "auto"])
def test_a_one_to_five_file_is_rescaled_with_a_counted_note(tmp_path: Path, engine: str) -> None:
    path = _tickets(tmp_path / "t.csv", ["1", "5", "3", "", "4"])
    with Store(":memory:") as s:
        r = ingest_file(s, "tickets", path, engine=engine)
        got = s.query("SELECT ticket_id, satisfaction FROM tickets ORDER BY ticket_id")
        assert got["satisfaction"].tolist()[:3] == [0.0, 1.0, 0.5]
        assert np.isnan(got["satisfaction"].iloc[3])
        assert got["satisfaction"].iloc[4] == 0.75
        assert any(n.startswith("satisfaction: whole numbers of a 1-5 scale rescaled") and n.endswith("(4)") for n in r.notes)
        assert r.notes_count == 0
        # a forced re-read rescales alike: every row is a duplicate
        again = ingest_file(s, "tickets", path, engine=engine, force=True)
        assert (again.loaded, again.duplicate) == (0, 5)


@pytest.mark.parametrize("engine", ["exact", "auto"])
def test_a_zero_to_ten_file_is_rescaled(tmp_path: Path, engine: str) -> None:
    path = _tickets(tmp_path / "t.csv", ["0", "10", "7", "9"])
    with Store(":memory:") as s:
        r = ingest_file(s, "tickets", path, engine=engine)
        assert s.query("SELECT satisfaction FROM tickets ORDER BY ticket_id")["satisfaction"].tolist() == [0.0, 1.0, 0.7, 0.9]
        assert any("0-10 scale" in n for n in r.notes)


@pytest.mark.parametrize("engine", ["exact", "auto"])
def test_an_ambiguous_scale_is_refused_value_by_value_and_listed(tmp_path: Path, engine: str) -> None:
    path = _tickets(tmp_path / "t.csv", ["0", "1", "3", "5"])
    with Store(":memory:") as s:
        r = ingest_file(s, "tickets", path, engine=engine)
        assert r.loaded == 4
        assert r.notes_count == 4
        assert s.query("SELECT count(satisfaction) AS n FROM tickets")["n"].iloc[0] == 0
        notes = s.query("SELECT line, row_key, field, value, reason FROM ingest_notes ORDER BY line")
        assert notes["value"].tolist() == ["0", "1", "3", "5"]
        assert set(notes["field"]) == {"satisfaction"}
        assert notes["reason"].str.contains("the scale cannot be told").all()


@pytest.mark.parametrize("engine", ["exact", "auto"])
def test_outliers_of_a_unit_file_are_stored_as_empty(tmp_path: Path, engine: str) -> None:
    path = _tickets(tmp_path / "t.csv", ["0.5", "1", "4", "0.25"])
    with Store(":memory:") as s:
        r = ingest_file(s, "tickets", path, engine=engine)
        vals = s.query("SELECT satisfaction FROM tickets ORDER BY ticket_id")["satisfaction"].tolist()
        assert [vals[0], vals[1], vals[3]] == [0.5, 1.0, 0.25]
        assert np.isnan(vals[2])
        assert r.notes_count == 1


MESSAGES_HEADER = "message_id,customer_id,user_id,timestamp,campaign,status,properties\n"


def _message(mid: str, customer: str, day: int, status: str, send: str | None) -> str:
    props = '"' + json.dumps({"send_id": send}).replace('"', '""') + '"' if send else ""
    return f"{mid},{customer},,2025-01-{day:02d}T12:00:00Z,welcome,{status},{props}\n"


@pytest.mark.parametrize("engine", ["exact", "auto"])
def test_implied_statuses_are_counted_not_stored(tmp_path: Path, engine: str) -> None:
    rows = [
        _message("m1", "c1", 2, "clicked", "s1"),  # furthest status only: delivered and opened implied
        _message("m2", "c1", 3, "delivered", "s2"),
        _message("m3", "c1", 3, "opened", "s2"),
        _message("m4", "c1", 4, "opened", None),
        _message("m5", "c1", 4, "open", None),
        _message("m6", "c1", 4, "processed", None),
    ]
    path = tmp_path / "m.csv"
    path.write_text(MESSAGES_HEADER + "".join(rows), encoding="utf-8")
    with Store(":memory:") as s:
        r = ingest_file(s, "messages", path, engine=engine)
        assert (r.loaded, r.quarantined) == (4, 2)  # no derived row is added
        notes = dict(n.rsplit(" (", 1) for n in r.notes)
        assert notes[IMPLIED_NOTES["delivered"]] == "1)"
        assert notes[IMPLIED_NOTES["opened"]] == "1)"
        assert notes[IMPLIED_NOTES["loose"]] == "1)"
        assert notes["status: unknown value 'open', row quarantined"] == "1)"
        assert notes["status: unknown value 'processed', row quarantined"] == "1)"


def test_features_read_the_implication_once_per_email(tmp_path: Path) -> None:
    customers = tmp_path / "customers.csv"
    lines = ["customer_id,signup_at,converted_at"]
    lines += [f"c{i},2025-01-01T00:00:00Z," for i in range(6)]
    customers.write_text("\n".join(lines) + "\n", encoding="utf-8")
    events = tmp_path / "events.csv"
    ev = ["event_id,customer_id,timestamp,event,source"]
    ev += [f"e{i}_{d},c{i},2025-01-{d:02d}T09:00:00Z,login,product" for i in range(6) for d in (1, 2, 3)]
    events.write_text("\n".join(ev) + "\n", encoding="utf-8")
    msgs = [
        # c0: every status of two e-mails, as most tools export them
        _message("a1", "c0", 2, "delivered", "x1"), _message("a2", "c0", 2, "opened", "x1"), _message("a3", "c0", 2, "clicked", "x1"),
        _message("a4", "c0", 3, "delivered", "x2"),
        # c1: the furthest status only (one clicked e-mail, one opened, one delivered)
        _message("b1", "c1", 2, "clicked", "y1"), _message("b2", "c1", 3, "opened", "y2"), _message("b3", "c1", 4, "delivered", "y3"),
    ]  # fmt: skip
    messages = tmp_path / "messages.csv"
    messages.write_text(MESSAGES_HEADER + "".join(msgs), encoding="utf-8")
    with Store(tmp_path / "s.duckdb") as s:
        for table, path in (("customers", customers), ("events", events), ("messages", messages)):
            ingest_file(s, table, path)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            data = build_features(s, window_days=14, as_of="2025-03-01").data.set_index("customer_id")
    c0, c1 = data.loc["c0"], data.loc["c1"]
    assert (c0["emails_delivered_14d"], c0["emails_opened_14d"], c0["emails_clicked_14d"]) == (2, 1, 1)
    assert (c1["emails_delivered_14d"], c1["emails_opened_14d"], c1["emails_clicked_14d"]) == (3, 2, 1)
    assert c0["email_open_rate_14d"] == 0.5
    assert c1["email_open_rate_14d"] == pytest.approx(2 / 3)
