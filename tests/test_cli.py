"""The command line: exit codes and one-paragraph errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from journeylib.cli import main
from journeylib.store import Store


def test_ingest_prints_reconciled_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "e.csv"
    f.write_text("event_id,customer_id,timestamp,event\ne1,c1,2025-01-01T00:00:00Z,login\ne2,c1,bad,login\n")
    db = tmp_path / "s.duckdb"
    assert main(["ingest", "--db", str(db), "events", str(f)]) == 0
    out = capsys.readouterr().out
    assert "read 2 = loaded 1 + duplicate 0 + quarantined 1" in out
    assert main(["ingest", "--db", str(db), "events", str(f)]) == 0
    assert "skipped, identical content already ingested" in capsys.readouterr().out
    with Store(db, read_only=True) as s:
        assert s.count("events") == 1


def test_ingest_bad_file_exits_nonzero_with_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "e.csv"
    f.write_text("a;b;c\n1;2;3\n")
    assert main(["ingest", "--db", str(tmp_path / "s.duckdb"), "events", str(f)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("journeylib ingest: error: ")
    assert str(f) in err
    assert "semicolons" in err


def test_ingest_needs_table_and_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ingest", "--db", str(tmp_path / "s.duckdb")]) == 1
    assert "give a TABLE and one or more FILEs" in capsys.readouterr().err


def test_synth_then_ingest_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "world"
    assert main(["synth", "--customers", "30", "--seed", "3", "--out", str(out)]) == 0
    assert (out / "truth.json").exists()
    db = tmp_path / "s.duckdb"
    assert main(["ingest", "--db", str(db), "--folder", str(out)]) == 0
    text = capsys.readouterr().out
    assert "total: read" in text
    with Store(db, read_only=True) as s:
        assert s.count("customers") == 30
        log = s.query("SELECT sum(rows_read) r, sum(rows_loaded + rows_duplicate + rows_quarantined) a FROM ingest_log")
        assert log["r"].iloc[0] == log["a"].iloc[0]


def test_read_only_store_must_exist(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--db", str(tmp_path / "none.duckdb"), "--suite", "parameters/demo.yaml", "--out", str(tmp_path / "r")]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_demo_store_comes_from_the_vendor_exports_through_sources_yaml(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from journeylib.cli import build_demo_store

    world, db = tmp_path / "world", tmp_path / "demo.duckdb"
    first = build_demo_store(world, db, customers=40, seed=3)
    out = capsys.readouterr().out
    assert "with its vendor exports" in out
    assert f"{world / 'vendor' / 'sources.yaml'}" in out
    assert all(r.reconciles for r in first.files)
    readers = {Path(r.file).parent.name for r in first.files}
    assert readers == {"salesforce", "hubspot", "mixpanel", "amplitude", "zendesk", "intercom", "sendgrid", "mailchimp"}
    with Store(db, read_only=True) as s:
        n = {t: s.count(t) for t in ("customers", "users", "events", "tickets", "messages", "identity_map", "quarantine")}
        assert n["customers"] == 40
        assert s.query("SELECT count(*) AS n FROM events WHERE event = 'subscription_started'")["n"].iloc[0] > 0  # mapped CRM events
    again = build_demo_store(world, db, customers=40, seed=3)  # re-running changes nothing
    assert "already in" in capsys.readouterr().out
    assert {r.status for r in again.files} == {"skipped"}
    with Store(db, read_only=True) as s:
        assert {t: s.count(t) for t in n} == n
