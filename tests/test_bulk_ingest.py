"""The engine's bulk canonical ingest decides exactly as the exact reader does.

Every example writes one canonical file (CSV with either line ending, or
Parquet with text or typed columns) from rows whose values are drawn from
pools of plain and hostile values (timestamps with offsets, naive, date-only,
impossible, far, sentinel; ids with spaces, invisible characters, non-ASCII;
JSON with escapes, trailing commas, NaN, exponents, nesting; numbers of every
shape; extra columns; repeated keys with the same or other content; satisfaction
on every scale the ingest tells apart; e-mails carrying every status or only
the furthest, with and without a send id; unknown statuses), ingests
it into one store with ``engine="exact"`` and into another with
``engine="auto"``, and compares every table, the quarantine, the value notes,
the counts and the reader's notes. Then a forced re-read of the file must
change nothing but the log on both paths.
"""

from __future__ import annotations

import csv
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from journeylib.store import Store
from journeylib.store.ingest import FileResult, ingest_file
from journeylib.store.schema import LOADABLE_TABLES

TIMESTAMPS = [
    "2025-03-01T09:30:00Z",
    "2025-03-01T09:30:00",
    "2025-03-01 09:30:00+05:30",
    "2025-03-01",
    "2025-03-01T09:30",
    "2025-03-01T09:30:00.123456Z",
    "2025-03-01T09:30:00.1234567Z",
    "2025-02-30T00:00:00Z",
    "2025-13-01",
    " 2025-03-01T09:30:00Z ",
    "2025-03-01T09:30:00z",
    "2025-03-01T09:30:00+0530",
    "2025-03-01T09:30:00-08",
    "2025-03-01T09:30+05:30",
    "2025-03-01Z",
    "2025-03-01-05",
    "2025-03-01 09:30:00.5+00:00",
    "2025-03-01T24:00:00",
    "9999-12-31",
    "0001-01-01T00:00:00Z",
    "1500-06-01T00:00:00Z",
    "3000-01-01",
    "yesterday",
    "",
]
IDS = ["c1", "c2", " c3 ", "c\u200b4", "Ç5", "c 6", "", "c1", "C1", "e\t7"]
TEXTS = ["login", "Setup Done", "", "  ", "naïve", "a,b", 'say "hi"', "two\nlines", "tab\there"]
PROPS = [
    "",
    "{}",
    '{"plan":"pro","n":3}',
    '{"a":[1,2,{"b":null}]}',
    '{"a":1,}',
    '{"a":NaN}',
    '{"a":1e400}',
    '{"a":1e5}',
    '{"a":"\\u00e9"}',
    '{"a":"\\ud800"}',
    "[1,2]",
    "not json",
    '  {"a": 1}  ',
    '{"a":"x","a":2}',
    "{" * 70 + "}" * 70,
    '{"a":-0}',
]
NUMBERS = ["", "12", "-3", "0", "-0", "49.99", "1e3", "1,000", "NaN", "inf", "007", " 5", "12345678901234567890", "abc"]
STATUSES = ["delivered", "OPENED", " clicked ", "bounced", "exploded", ""]
EXTRAS = ["", "web", "ios 17"]


def _events(draw: Any, n: int) -> list[dict[str, str]]:
    rows = []
    for i in range(n):
        eid = draw(st.sampled_from([f"e{i}", f"e{i}", f"e{i % 3}", " e9 ", "e\u200b1", ""]))
        rows.append(
            {
                "event_id": eid,
                "customer_id": draw(st.sampled_from(IDS)),
                "user_id": draw(st.sampled_from(["u1", "", "U2", "u\u200b3", "ü4"])),
                "timestamp": draw(st.sampled_from(TIMESTAMPS)),
                "event": draw(st.sampled_from(TEXTS)),
                "source": draw(st.sampled_from(["product", "web", "", "mobile"])),
                "properties": draw(st.sampled_from(PROPS)),
            }
        )
    return rows


def _customers(draw: Any, n: int) -> list[dict[str, str]]:
    rows = []
    for i in range(n):
        rows.append(
            {
                "customer_id": draw(st.sampled_from([f"c{i}", f"c{i % 2}", " c7 ", "c\u200b8", ""])),
                "name": draw(st.sampled_from(TEXTS)),
                "domain": draw(st.sampled_from(["Acme.COM", " x.io ", "", "ÄBC.de"])),
                "segment": draw(st.sampled_from(["SMB", "", "Mid-market"])),
                "signup_at": draw(st.sampled_from(TIMESTAMPS)),
                "churned_at": draw(st.sampled_from(TIMESTAMPS)),
                "mrr": draw(st.sampled_from(NUMBERS)),
                "updated_at": draw(st.sampled_from(TIMESTAMPS)),
            }
        )
    return rows


def _messages(draw: Any, n: int) -> list[dict[str, str]]:
    return [
        {
            "message_id": draw(st.sampled_from([f"m{i}", f"m{i % 2}"])),
            "customer_id": draw(st.sampled_from(IDS)),
            "timestamp": draw(st.sampled_from(TIMESTAMPS)),
            "campaign": draw(st.sampled_from(TEXTS)),
            "status": draw(st.sampled_from(STATUSES)),
        }
        for i in range(n)
    ]


#: Satisfaction pools, one per file: the contract's 0..1, a 1-5 scale, a 0-10 scale, an ambiguous mix, 0..1 with outliers.
SCORES = [
    ["", "0", "1", "0.5", "0.25"],
    ["", "1", "2", "3", "4", "5"],
    ["", "0", "6", "10", "3"],
    ["", "0", "3", "5"],
    ["", "0.5", "0.75", "4", "-1"],
]


def _tickets(draw: Any, n: int) -> list[dict[str, str]]:
    pool = draw(st.sampled_from(SCORES))
    return [
        {
            "ticket_id": draw(st.sampled_from([f"t{i}", f"t{i % 2}", " t5 ", ""])),
            "customer_id": draw(st.sampled_from(IDS)),
            "created_at": draw(st.sampled_from(TIMESTAMPS)),
            "subject": draw(st.sampled_from(TEXTS)),
            "satisfaction": draw(st.sampled_from([*pool, *NUMBERS[:4]] if draw(st.booleans()) else pool)),
        }
        for i in range(n)
    ]


def _sent_messages(draw: Any, n: int) -> list[dict[str, str]]:
    """Messages whose e-mails (``properties.send_id``) carry every status, or only the furthest one."""
    return [
        {
            "message_id": draw(st.sampled_from([f"m{i}", f"m{i % 3}"])),
            "customer_id": draw(st.sampled_from(IDS[:3])),
            "timestamp": draw(st.sampled_from(TIMESTAMPS[:6])),
            "status": draw(st.sampled_from([*STATUSES, "open", "processed"])),
            "properties": draw(st.sampled_from(["", '{"send_id":"s1"}', '{"send_id":"s2"}', '{"send_id":"s1","x":1}', '{"other":1}'])),
        }
        for i in range(n)
    ]


def _assignments(draw: Any, n: int) -> list[dict[str, str]]:
    """Assignments keyed customer:experiment, so a customer given two variants of one experiment is a conflict."""
    rows = []
    for _ in range(n):
        customer = draw(st.sampled_from(IDS))
        experiment = draw(st.sampled_from(["onboarding", "Pricing Page", "", "exp\u200b2"]))
        rows.append(
            {
                "assignment_id": draw(st.sampled_from([f"{customer}:{experiment}", f"{customer.strip()}:{experiment}", ""])),
                "customer_id": customer,
                "experiment": experiment,
                "variant": draw(st.sampled_from(["control", "variant_b", " variant_b ", ""])),
                "assigned_at": draw(st.sampled_from(TIMESTAMPS)),
                "properties": draw(st.sampled_from(PROPS[:4])),
            }
        )
    return rows


BUILDERS = {
    "events": _events,
    "customers": _customers,
    "messages": _messages,
    "tickets": _tickets,
    "sent_messages": _sent_messages,
    "assignments": _assignments,
}


@st.composite
def files(draw: Any) -> tuple[str, list[dict[str, str]], str, bool]:
    builder = draw(st.sampled_from(sorted(BUILDERS)))
    rows = BUILDERS[builder](draw, draw(st.integers(1, 12)))
    table = "messages" if builder == "sent_messages" else builder
    if draw(st.booleans()):
        for r in rows:
            r["platform"] = draw(st.sampled_from(EXTRAS))
    fmt = draw(st.sampled_from(["csv", "csv-crlf", "parquet"]))
    return table, rows, fmt, draw(st.booleans())


def _write(path: Path, rows: list[dict[str, str]], fmt: str) -> None:
    if fmt.startswith("csv"):
        with open(path, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh, lineterminator="\r\n" if fmt == "csv-crlf" else "\n")
            writer.writerow(list(rows[0]))
            writer.writerows([list(r.values()) for r in rows])
    else:
        frame = pd.DataFrame(rows)
        pq.write_table(pa.Table.from_pandas(frame.where(frame != "", None), preserve_index=False), path)


def _snapshot(store: Store, table: str) -> dict[str, Any]:
    key = LOADABLE_TABLES[table].key[0]
    data = store.query(f'SELECT * EXCLUDE (ingested_at) FROM "{table}" ORDER BY "{key}"') if "ingested_at" in store.query(f'SELECT * FROM "{table}" LIMIT 0').columns else store.query(f'SELECT * FROM "{table}" ORDER BY "{key}"')
    quarantine = store.query("SELECT table_name, line, raw, reason FROM quarantine ORDER BY line, reason, raw")
    notes = store.query("SELECT * EXCLUDE (run, ingested_at) FROM ingest_notes ORDER BY line, field")
    return {"data": data, "quarantine": quarantine, "notes": notes}


def _counts(result: FileResult) -> tuple[Any, ...]:
    return (result.status, result.read, result.loaded, result.updated, result.duplicate, result.quarantined, result.notes, result.notes_count)


def _same(a: dict[str, Any], b: dict[str, Any]) -> None:
    for part in a:
        pd.testing.assert_frame_equal(a[part].reset_index(drop=True), b[part].reset_index(drop=True), check_dtype=True, obj=part)


def _ingest_both(table: str, path: Path, *, prior: Path | None = None) -> tuple[list[FileResult], list[FileResult], Store, Store]:
    stores = (Store(":memory:"), Store(":memory:"))
    results: tuple[list[FileResult], list[FileResult]] = ([], [])
    for store, engine, out in zip(stores, ("exact", "auto"), results, strict=True):
        if prior is not None:
            ingest_file(store, table, prior, source="test", run="r0", engine=engine)
        out.append(ingest_file(store, table, path, source="test", run="r1", engine=engine))
        out.append(ingest_file(store, table, path, source="test", run="r2", engine=engine, force=True))
    return results[0], results[1], stores[0], stores[1]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(files())
def test_bulk_and_exact_paths_agree(example: tuple[str, list[dict[str, str]], str, bool]) -> None:
    table, rows, fmt, with_prior = example
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / ("f.parquet" if fmt == "parquet" else "f.csv")
        prior = None
        if with_prior:  # a file before it, so that the merge meets stored rows
            prior = Path(tmp) / ("p.parquet" if fmt == "parquet" else "p.csv")
            _write(prior, rows[::-1][: max(1, len(rows) // 2)], fmt)
        _write(path, rows, fmt)
        exact, auto, s1, s2 = _ingest_both(table, path, prior=prior)
        try:
            assert [_counts(r) for r in exact] == [_counts(r) for r in auto]
            _same(_snapshot(s1, table), _snapshot(s2, table))
            assert all(r.reconciles for r in auto)
        finally:
            s1.close()
            s2.close()


def _write_text(path: Path, text: str) -> Path:
    path.write_bytes(text.encode("utf-8"))
    return path


def test_clean_files_go_through_the_engine_and_damaged_ones_through_the_exact_reader(tmp_path: Path) -> None:
    header = "event_id,customer_id,timestamp,event,properties\n"
    good = _write_text(tmp_path / "good.csv", header + 'e1,c1,2025-01-01T00:00:00Z,login,"{""a"":1}"\ne2,c1,2025-01-02,setup,\n')
    blank = _write_text(tmp_path / "blank.csv", header + "e1,c1,2025-01-01T00:00:00Z,login,\n\ne2,c1,2025-01-02,setup,\n")
    quote = _write_text(tmp_path / "quote.csv", header + 'e1,c1,2025-01-01T00:00:00Z,"login,\ne2,c1,2025-01-02,setup,\n')
    jsonl = _write_text(tmp_path / "e.jsonl", '{"event_id":"e1","customer_id":"c1","timestamp":"2025-01-01","event":"x"}\n')
    with Store(":memory:") as store:
        assert ingest_file(store, "events", good).engine == "bulk"
        assert ingest_file(store, "events", blank).engine == "exact: blank lines"
        assert ingest_file(store, "events", quote).engine.startswith("exact: ")
        assert ingest_file(store, "events", jsonl).engine.startswith("exact: JSON Lines")
        assert ingest_file(store, "events", good, engine="exact", force=True).engine == "exact: asked for"
        with pytest.raises(ValueError, match="engine must be"):
            ingest_file(store, "events", good, engine="fast", force=True)


def test_multi_line_fields_keep_the_exact_readers_line_numbers(tmp_path: Path) -> None:
    body = 'e1,c1,2025-01-01T00:00:00Z,"two\nlines",\ne2,,2025-01-02,setup,\ne3,c1,2025-01-02,"a\nb\nc",\ne4,c1,bad,x,\n'
    path = _write_text(tmp_path / "m.csv", "event_id,customer_id,timestamp,event,properties\n" + body)
    exact, auto, s1, s2 = _ingest_both("events", path)
    with s1, s2:
        assert auto[0].engine == "bulk"
        assert [_counts(r) for r in exact] == [_counts(r) for r in auto]
        _same(_snapshot(s1, "events"), _snapshot(s2, "events"))
        assert s2.query("SELECT line FROM quarantine ORDER BY line")["line"].tolist() == [4, 8]


def test_conflicting_rows_are_quarantined_with_the_exact_readers_raw_text(tmp_path: Path) -> None:
    body = 'e1,c1,2025-01-01T00:00:00Z,login,"{""a"":1}"\ne1,c1,2025-01-01T00:00:00Z,logout,\ne2,c2,2025-01-01,x,\n'
    path = _write_text(tmp_path / "c.csv", "event_id,customer_id,timestamp,event,properties\n" + body)
    changed = _write_text(tmp_path / "d.csv", "event_id,customer_id,timestamp,event,properties\ne2,c2,2025-01-01,y,\n")
    exact, auto, s1, s2 = _ingest_both("events", changed, prior=path)
    with s1, s2:
        assert [_counts(r) for r in exact] == [_counts(r) for r in auto]
        _same(_snapshot(s1, "events"), _snapshot(s2, "events"))
        raws = s2.query("SELECT raw FROM quarantine ORDER BY file, line")["raw"].tolist()
        assert raws == ['e1,c1,2025-01-01T00:00:00Z,login,"{""a"":1}"', "e1,c1,2025-01-01T00:00:00Z,logout,", "e2,c2,2025-01-01,y,"]
