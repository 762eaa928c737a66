"""The vendor JSON Lines parse: its quick forms give what its exact forms give.

``stage_json_lines`` parses a block with the lean statement (no reasons, no raw
text, unguarded first) and explains only the lines it marks bad with the full
statement; text times are read as UTC wall-clock TIMESTAMPs and labelled UTC in
Arrow instead of being converted line by line. These tests hold each quick form
to the exact one: the lean and the full statement agree on every line, a bad
line in the middle of a block changes nothing of the good lines around it, and
the labelled times are the instants DuckDB's own ``timezone('UTC', ...)``
reading gives, whatever the session's zone.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pytest

from journeylib.io import amplitude, mixpanel
from journeylib.store import Store, staging
from journeylib.store.sources import ingest_vendor_file

#: event_time texts of the Amplitude reader: the Export API format, other forms, offsets, and unreadable ones.
TIME_TEXTS = (
    "2024-03-01 09:30:00.123456",
    "2024-03-01 09:30:00",
    "  2024-03-01 09:30:00.5  ",
    "2024-03-01T09:30:00Z",
    "2024-03-01 09:30:00+05:30",
    "2024-03-01 09:30:00-0800",
    "2024-03-01",
    "infinity",
    "-infinity",
    "1999-12-31 23:59:59.999999",
)
BAD_TIMES = ("2024-13-45 99:00:00", "soon")
#: Their instants do not depend on the time zone of the session that parses them (a date alone included).
ZONELESS_TIMES = TIME_TEXTS


def _amplitude_line(i: int, time: object, **extra: object) -> str:
    obj: dict[str, object] = {
        "$insert_id": f"ins-{i}",
        "event_type": ["open", "buy"][i % 2],
        "event_time": time,
        "user_id": f"u{i % 3}",
        "device_id": f"d{i}",
        "amplitude_id": i,
        "platform": "Web",
        "session_id": 7,
        "country": "Ü",
        "event_properties": {"plan": "pro", "n": i},
        "user_properties": {"email": f"U{i % 3}@x.com"},
    }
    obj.update(extra)
    return json.dumps(obj)


def _mixpanel_line(i: int, **props: object) -> str:
    p: dict[str, object] = {"time": 1_700_000_000 + i, "distinct_id": f"u{i % 4}", "$insert_id": f"m{i}", "nested": {"a": [1, {"b": None}]}}
    p.update(props)
    return json.dumps({"event": "e", "properties": p})


def _parse(spec: staging.JsonLinesSpec, texts: list[str], *, lean: bool, guarded: bool = True, zone: str = "UTC") -> dict[int, dict[str, object]]:
    """Run the lean or the full parse statement on *texts* in a session of time zone *zone*; return the rows by line (times as microseconds)."""
    raw = pa.array([t.encode() for t in texts], pa.binary())
    lines = pa.table({"line": pa.array(np.arange(1, len(texts) + 1, dtype=np.int64)), "raw": raw})
    con = duckdb.connect()
    try:
        con.execute("SET arrow_lossless_conversion = true")
        con.execute(f"SET TimeZone = '{zone}'")
        staging._hold("_jl_lines", lines)
        try:
            table = staging._arrow_rows(con, staging._json_lines_sql(spec, "src", lean=lean, guarded=guarded))
        finally:
            staging._release("_jl_lines")
    finally:
        con.close()
    i = table.schema.get_field_index("timestamp")
    assert table.schema.field(i).type.tz is not None  # a TIMESTAMPTZ to the engine, as the events column is
    table = table.set_column(i, "timestamp", table.column(i).cast(pa.int64()))  # infinity has no Python datetime
    rows = table.to_pylist()
    return {int(r["line"]): r for r in rows}


COMPARED = ("event_id", "timestamp", "event", "source", "properties", "_person_ref", "_account_ref", "_id_email", "_id_link_id", "_id_name")


@pytest.mark.parametrize("reader", ["amplitude", "mixpanel"])
def test_lean_and_full_statements_agree_on_every_line(reader: str) -> None:
    if reader == "amplitude":
        spec = amplitude.spec("src")
        good = [_amplitude_line(i, t) for i, t in enumerate(TIME_TEXTS)]
        good += [_amplitude_line(20, TIME_TEXTS[0], **{"$insert_id": None, "uuid": None})]  # no key: the md5 id
        good += [_amplitude_line(21, TIME_TEXTS[0], event_properties={"country": "x"}, platform=None)]  # merged, not appended
        bad = [_amplitude_line(30 + k, t) for k, t in enumerate(BAD_TIMES)]
        bad += [_amplitude_line(40, TIME_TEXTS[0], v=float("nan")), "not json", "[1]", '{"event_type": "x"}']
    else:
        spec = mixpanel.spec("src")
        good = [_mixpanel_line(i) for i in range(8)] + [_mixpanel_line(9, time=1_700_000_000_123), _mixpanel_line(10, **{"$insert_id": None})]
        good += [_mixpanel_line(11, s="NaN is only text")]  # suspect, settled good by the reader's check
        bad = [_mixpanel_line(20, time="later"), _mixpanel_line(21, v=float("inf")), "{", '"text"', _mixpanel_line(22, d=json.loads("[" * 70 + "]" * 70))]
    texts = good[: len(good) // 2] + bad + good[len(good) // 2 :]
    lean = _parse(spec, texts, lean=True)
    full = _parse(spec, texts, lean=False)
    assert set(lean) == set(full) == set(range(1, len(texts) + 1))
    marked = {n for n, r in lean.items() if r["_reason"] is not None}
    explained = {n for n, r in full.items() if r["_reason"] is not None}
    assert marked == explained
    assert len(marked) >= len(bad)  # every bad line (and only suspect good ones besides) is marked
    for n in set(lean) - marked:
        assert {c: lean[n][c] for c in COMPARED} == {c: full[n][c] for c in COMPARED}, n
        assert lean[n]["timestamp"] is not None
    # the first, unguarded attempt of stage_json_lines fails on this block (it is retried guarded); on
    # the good lines alone it gives what the guarded statement gives
    with pytest.raises(duckdb.Error):
        _parse(spec, texts, lean=True, guarded=False)
    alone = _parse(spec, good, lean=True, guarded=False)
    assert [{c: r[c] for c in COMPARED} for r in alone.values()] == [{c: r[c] for c in COMPARED} for r in _parse(spec, good, lean=True).values()]


def _reference_instants(texts: tuple[str, ...], zone: str = "UTC") -> list[object]:
    """DuckDB's own reading of the texts: an offset read as an instant, anything else as UTC wall-clock time.

    A date alone (``2024-03-01`` ends in ``-01``, not an offset) is midnight UTC
    whatever the session's zone *zone*.
    """
    con = duckdb.connect()
    try:
        con.execute(f"SET TimeZone = '{zone}'")
        out = []
        for t in texts:
            sql = (
                "SELECT CASE WHEN regexp_matches(trim(?), '^(.*[zZ]|.{11,}[+-]\\d\\d(:?\\d\\d)?)$') THEN TRY_CAST(trim(?) AS TIMESTAMPTZ) "
                "ELSE timezone('UTC', TRY_CAST(trim(?) AS TIMESTAMP)) END"
            )
            value = con.sql(sql, params=[t, t, t]).to_arrow_table().column(0).cast(pa.int64())[0].as_py()  # infinity too
            out.append(None if value is None else str(value))
        return out
    finally:
        con.close()


@pytest.mark.parametrize("zone", ["UTC", "America/New_York", "Asia/Kolkata"])
@pytest.mark.parametrize("lean", [True, False])
def test_parse_statement_reads_text_times_as_instants(zone: str, lean: bool) -> None:
    texts = [_amplitude_line(i, t) for i, t in enumerate(TIME_TEXTS)]
    rows = _parse(amplitude.spec("src"), texts, lean=lean, zone=zone)
    got = [None if rows[n]["timestamp"] is None else str(rows[n]["timestamp"]) for n in range(1, len(texts) + 1)]
    assert got == _reference_instants(TIME_TEXTS, zone)
    assert all(rows[n]["_reason"] is None for n in rows)


@pytest.mark.parametrize("zone", ["UTC", "America/New_York", "Asia/Kolkata"])
def test_text_times_are_the_instants_whatever_the_session_zone(tmp_path: Path, zone: str) -> None:
    path = tmp_path / "events.json"
    texts = [_amplitude_line(i, t) for i, t in enumerate(ZONELESS_TIMES)]
    path.write_text("\n".join([*texts[:5], _amplitude_line(99, BAD_TIMES[0]), *texts[5:]]) + "\n")
    with Store(str(tmp_path / "s.duckdb")) as store:
        store.con.execute(f"SET TimeZone = '{zone}'")
        (ev,) = [r for r in ingest_vendor_file(store, path, reader="amplitude") if r.table == "events"]
        assert (ev.read, ev.loaded, ev.quarantined) == (len(ZONELESS_TIMES) + 1, len(ZONELESS_TIMES), 1)
        times = store.con.sql('SELECT event_id, "timestamp" FROM events').to_arrow_table()
        got = dict(zip(times.column(0).to_pylist(), [str(v) for v in times.column(1).cast(pa.int64()).to_pylist()], strict=True))
        assert store.con.execute("SELECT line FROM quarantine").fetchall() == [(6,)]
    expected = _reference_instants(ZONELESS_TIMES)
    assert got == {f"amplitude:ins-{i}": e for i, e in enumerate(expected)}
    assert expected[0] == "1709285400123456"  # 2024-03-01 09:30:00.123456 UTC
    assert expected[4] == "1709265600000000"  # 09:30 at +05:30 is 04:00 UTC
    assert expected[TIME_TEXTS.index("2024-03-01")] == "1709251200000000"  # a date alone: midnight UTC, in any zone


@pytest.mark.parametrize("block_bytes", [None, 700])
def test_a_bad_line_inside_a_block_leaves_the_good_lines_as_they_were(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block_bytes: int | None) -> None:
    from journeylib.io import common

    if block_bytes:
        monkeypatch.setattr(common, "BLOCK_BYTES", block_bytes)
    good = [_mixpanel_line(i) for i in range(12)]
    bad_lines = ["this is not JSON", _mixpanel_line(50, v=float("nan"))]
    clean, dirty = tmp_path / "clean.jsonl", tmp_path / "dirty.jsonl"
    clean.write_text("\n".join(good) + "\n")
    dirty.write_text("\n".join(good[:6] + bad_lines + good[6:]) + "\n")
    tables = []
    for path in (clean, dirty):
        with Store(str(tmp_path / f"{path.stem}.duckdb")) as store:
            (ev,) = [r for r in ingest_vendor_file(store, path, reader="mixpanel") if r.table == "events"]
            assert ev.read == ev.loaded + ev.duplicate + ev.quarantined
            rows = store.con.execute(
                'SELECT event_id, "timestamp", event, source, CAST(properties AS VARCHAR) FROM events ORDER BY event_id'
            ).fetchall()
            refs = store.con.execute("SELECT * FROM source_refs ORDER BY ALL").fetchall()
            quarantined = store.con.execute("SELECT line, reason FROM quarantine ORDER BY line").fetchall()
            tables.append((rows, refs, quarantined))
    assert tables[0][:2] == tables[1][:2]
    assert len(tables[0][0]) == 12
    assert tables[0][2] == []
    assert tables[1][2] == [(7, "not valid JSON"), (8, tables[1][2][1][1])]
    assert "NaN" in tables[1][2][1][1] or "finite" in tables[1][2][1][1]
