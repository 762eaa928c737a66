"""The command line: exit codes and one-paragraph errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd
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
    from journeylib.datasets.vendor import load_vendor_truth

    world, db = tmp_path / "world", tmp_path / "demo.duckdb"
    first = build_demo_store(world, db, customers=40, seed=3)
    out = capsys.readouterr().out
    assert "with its vendor exports" in out
    assert f"{world / 'vendor' / 'sources.yaml'}" in out
    assert all(r.reconciles for r in first.files)
    readers = {Path(r.file).relative_to(world / "vendor").parts[0] for r in first.files}
    assert readers == {"salesforce", "hubspot", "mixpanel", "amplitude", "zendesk", "intercom", "sendgrid", "mailchimp"}
    with Store(db, read_only=True) as s:
        n = {t: s.count(t) for t in ("customers", "users", "events", "tickets", "messages", "identity_map", "quarantine")}
        # The 40 Salesforce accounts and the trial companies that exist only in HubSpot.
        vendor_truth = load_vendor_truth(world / "vendor")
        assert n["customers"] == sum(vendor_truth["expected_customers"].values()) > 40
        # The experimentation tool's export (canonical assignments keyed by CRM account) lands on the customers.
        assigned = s.query("SELECT count(*) AS n, count(DISTINCT a.customer_id) AS c FROM assignments a JOIN customers USING (customer_id)")
        assert int(assigned["n"].iloc[0]) == vendor_truth["experiment_assignments"]["rows"] > 0
        assert s.query("SELECT count(*) AS n FROM events WHERE event = 'subscription_started'")["n"].iloc[0] > 0  # mapped CRM events
    again = build_demo_store(world, db, customers=40, seed=3)  # re-running changes nothing
    assert "already in" in capsys.readouterr().out
    assert {r.status for r in again.files} == {"skipped"}
    with Store(db, read_only=True) as s:
        assert {t: s.count(t) for t in n} == n


# -- one paragraph for every failure -------------------------------------------------------------


def _events_csv(tmp_path: Path) -> Path:
    f = tmp_path / "e.csv"
    f.write_text("event_id,customer_id,timestamp,event\ne1,c1,2025-01-01T00:00:00Z,login\n")
    return f


def _one_paragraph(err: str) -> str:
    assert "Traceback" not in err
    assert err.endswith("\n")
    assert "\n" not in err.rstrip("\n"), err
    return err.rstrip("\n")


def test_a_store_locked_by_another_process_is_one_paragraph(tmp_path: Path) -> None:
    db = tmp_path / "held.duckdb"
    code = f"import sys, duckdb; con = duckdb.connect({str(db)!r}); print('ready', flush=True); sys.stdin.read()"
    holder = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "ready"
        run = subprocess.run(
            [sys.executable, "-m", "journeylib.cli", "ingest", "--db", str(db), "events", str(_events_csv(tmp_path))],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=Path(__file__).resolve().parents[1],
            env={**os.environ, "JOURNEYLIB_LOCK_WAIT": "0"},  # no waiting: the holder never lets go
        )
    finally:
        holder.kill()
        holder.wait(timeout=30)
    assert run.returncode == 1
    err = _one_paragraph(run.stderr)
    assert err.startswith(f"journeylib ingest: error: store {db} is locked: another process (PID {holder.pid}, ")
    assert "then run again" in err


def test_a_full_disk_during_ingest_says_disk_full_the_store_and_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    db, f = tmp_path / "s.duckdb", _events_csv(tmp_path)

    def merge_on_a_full_disk(store: Store, *args: object, **kwargs: object) -> None:
        raise duckdb.IOException(f'IO Error: Could not write file "{db}": No space left on device')

    monkeypatch.setattr("journeylib.store.ingest.merge_stage", merge_on_a_full_disk)
    assert main(["ingest", "--db", str(db), "events", str(f)]) == 1
    err = _one_paragraph(capsys.readouterr().err)
    assert err.startswith(f"journeylib ingest: error: disk full: DuckDB could not write store {db}: no space left on the device.")
    assert f"Nothing of {f} was loaded" in err
    with Store(db, read_only=True) as s:
        assert s.count("events") == 0


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (a device that is always full)")
def test_a_real_full_disk_is_reported_not_the_aborted_transaction_after_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def merge_on_a_full_disk(store: Store, *args: object, **kwargs: object) -> None:
        # a real ENOSPC inside the file's transaction; un-registering the frame after it meets the aborted transaction
        store.query("COPY (SELECT * FROM f) TO '/dev/full' (FORMAT csv)", f=pd.DataFrame({"a": range(1000)}))

    monkeypatch.setattr("journeylib.store.ingest.merge_stage", merge_on_a_full_disk)
    assert main(["ingest", "--db", str(tmp_path / "s.duckdb"), "events", str(_events_csv(tmp_path))]) == 1
    err = _one_paragraph(capsys.readouterr().err)
    assert err.startswith("journeylib ingest: error: disk full: DuckDB could not write /dev/full")
    assert "aborted" not in err


def test_invalid_json_inside_a_command_is_one_paragraph_naming_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    f = tmp_path / "e.jsonl"
    f.write_text('{"event_id": "e1",, "event": "login"}\n')
    monkeypatch.setattr("journeylib.store.ingest.read_canonical", lambda p, table, **kw: json.loads(Path(p).read_text()))
    assert main(["ingest", "--db", str(tmp_path / "s.duckdb"), "events", str(f)]) == 1
    err = _one_paragraph(capsys.readouterr().err)
    assert err.startswith(f"journeylib ingest: error: invalid JSON while reading {f}: Expecting property name")
    assert "line 1, column 19" in err
    assert "--debug" in err


def test_input_nested_too_deeply_is_one_paragraph(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "e.json"
    f.write_text("[" * 100_000 + "]" * 100_000)
    monkeypatch.setattr("journeylib.store.ingest.read_canonical", lambda p, table, **kw: json.loads(Path(p).read_text()))
    assert main(["ingest", "--db", str(tmp_path / "s.duckdb"), "events", str(f)]) == 1
    err = _one_paragraph(capsys.readouterr().err)
    assert err.startswith(f"journeylib ingest: error: the input is nested too deeply to process while reading {f}")


def test_a_bug_is_one_paragraph_and_debug_shows_the_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def buggy(p: Path, table: object, **kw: object) -> None:
        raise KeyError("chunk_rows")

    monkeypatch.setattr("journeylib.store.ingest.read_canonical", buggy)
    argv = ["ingest", "--db", str(tmp_path / "s.duckdb"), "events", str(_events_csv(tmp_path))]
    assert main(argv) == 1
    err = _one_paragraph(capsys.readouterr().err)
    assert err.startswith("journeylib ingest: internal error: KeyError: 'chunk_rows'. This is a bug in journeylib")
    assert "journeylib --debug ingest" in err
    with pytest.raises(KeyError):
        main(["--debug", *argv])


def test_an_untranslated_engine_error_is_one_paragraph_naming_the_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def bad_sql(store: Store, *args: object, **kwargs: object) -> None:
        store.query("SELECT no_such_column FROM events")

    monkeypatch.setattr("journeylib.store.ingest.merge_stage", bad_sql)
    db = tmp_path / "s.duckdb"
    assert main(["ingest", "--db", str(db), "events", str(_events_csv(tmp_path))]) == 1
    err = _one_paragraph(capsys.readouterr().err)
    assert err.startswith(f"journeylib ingest: error: the database engine (DuckDB) failed on store {db}: Binder Error")


def test_ingest_source_kind_option_and_skipped_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "events.csv").write_text(
        "event_id,customer_id,timestamp,event,source\n"
        "e1,c1,2025-01-01T00:00:00Z,login,web\n"
        "e2,c1,2025-01-02T00:00:00Z,email_opened,braze\n"
    )
    (folder / "assignments.csv").write_text("assignment_id,customer_id,experiment,variant,assigned_at\nc1:x,c1,x,control,2025-01-01\n")
    (folder / "notes.txt").write_text("hello")
    db = tmp_path / "s.duckdb"
    assert main(["ingest", "--db", str(db), "--folder", str(folder), "--source-kind", "braze=email"]) == 0
    out = capsys.readouterr().out
    assert f"{folder / 'notes.txt'}: not ingested: the file is not named after a table" in out
    assert "assignments.csv → assignments: read 1 = loaded 1" in out
    assert "source braze: kind email (declared)" in out
    assert "source web: kind product (default: journeylib does not know the name" in out
    # a later declaration changes the kind without re-reading anything
    assert main(["ingest", "--db", str(db), "--folder", str(folder), "--source-kind", "web=support"]) == 0
    assert "source web: kind support (declared; was product (default))" in capsys.readouterr().out
    assert main(["ingest", "--db", str(db), "--folder", str(folder), "--source-kind", "web"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("journeylib ingest: error: --source-kind expects NAME=KIND (KIND one of product, crm, support, email)")
    with Store(db, read_only=True) as s:
        assert dict(s.query("SELECT source, kind FROM source_kinds ORDER BY source").values.tolist()) == {"braze": "email", "web": "support"}
