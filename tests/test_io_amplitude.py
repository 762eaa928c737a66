"""Amplitude Export API reader: documented example, archives, bad input."""

from __future__ import annotations

import gzip
import json
import zipfile
from pathlib import Path

import pytest

from journeylib.exceptions import SourceFormatError
from journeylib.store import Store
from journeylib.store.sources import ingest_source_files, ingest_vendor_file

FIXTURE = Path(__file__).parent / "data" / "vendors" / "amplitude" / "events.jsonl"


@pytest.fixture
def store() -> Store:
    s = Store(":memory:")
    yield s
    s.close()


def export_zip(path: Path, members: dict[str, bytes]) -> Path:
    """Write an archive shaped like the Export API's: <project>/<project>_<date>_<hour>#<n>.json.gz members."""
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return path


def test_documented_example(store: Store, tmp_path: Path) -> None:
    zf = export_zip(tmp_path / "export.zip", {"187520/187520_2022-01-01_10#0.json.gz": gzip.compress(FIXTURE.read_bytes())})
    res = ingest_source_files(store, "amplitude", [zf])
    events = next(r for r in res.files if r.table == "events")
    # 4 lines; the 4th repeats the 1st ($insert_id 5f0adeff...) → 3 loaded + 1 duplicate
    assert (events.read, events.loaded, events.duplicate, events.quarantined) == (4, 3, 1, 0)
    ev = store.table("events").set_index("event_id")
    assert set(ev.index) == {
        "amplitude:5f0adeff-6668-4427-8d02-57d803a2b841",  # $insert_id
        "amplitude:c1d2e3f4-6c1e-11ec-90d6-0242ac120003",  # no insert id: uuid
        "amplitude:a3c9b0d2-1111-4a4a-9b9b-000000000003",
    }
    click = ev.loc["amplitude:5f0adeff-6668-4427-8d02-57d803a2b841"]
    assert click["event"] == "Button Clicked"
    assert click["timestamp"].isoformat() == "2022-01-01T10:00:00.100000+00:00"  # event_time is UTC
    props = json.loads(click["properties"])
    assert props["button"] == "upgrade"  # event_properties
    assert props["platform"] == "iOS"
    assert props["amplitude_id"] == 123456789
    assert click["user_id"] == "bob@globex.io"  # user_properties.email, normalised
    imap = store.table("identity_map").set_index("source_id")
    assert "device_id:D1E2F3A4" in imap.index  # anonymous event: the device is the person
    assert "user_id:user-42" in imap.index


def test_email_links_to_crm_contact(store: Store, tmp_path: Path) -> None:
    zf = export_zip(tmp_path / "export.zip", {"187520/187520_2022-01-01_10#0.json.gz": gzip.compress(FIXTURE.read_bytes())})
    sf = Path(__file__).parent / "data" / "vendors" / "salesforce"
    acc = tmp_path / "Contact.csv"
    acc.write_text("Id,AccountId,Email\n0035g00000BOB0001,0015g00000GLOBEX1,bob@globex.io\n")
    ingest_source_files(store, "salesforce", [sf / "Account.csv", acc])
    ingest_source_files(store, "amplitude", [zf])
    ev = store.table("events")
    assert (ev.loc[ev["user_id"] == "bob@globex.io", "customer_id"] == "0015g00000GLOBEX1").all()
    imap = store.table("identity_map").set_index("source_id")
    assert imap.loc["user_id:user-42", "method"] == "email"


def test_overlapping_archives_deduplicate(store: Store, tmp_path: Path) -> None:
    lines = FIXTURE.read_bytes().splitlines()
    a = export_zip(tmp_path / "a.zip", {"1/1_2022-01-01_10#0.json.gz": gzip.compress(b"\n".join(lines[:2]))})
    b = export_zip(tmp_path / "b.zip", {"1/1_2022-01-01_11#0.json.gz": gzip.compress(b"\n".join(lines[1:3]))})
    ra = ingest_vendor_file(store, a, reader="amplitude")[0]
    rb = ingest_vendor_file(store, b, reader="amplitude")[0]
    assert (ra.loaded, rb.loaded, rb.duplicate) == (2, 1, 1)
    assert store.count("events") == 3


def test_zip_with_a_foreign_member(store: Store, tmp_path: Path) -> None:
    zf = export_zip(
        tmp_path / "export.zip",
        {"187520/187520_2022-01-01_10#0.json.gz": gzip.compress(FIXTURE.read_bytes()), "README.txt": b"hello", "__MACOSX/._x": b"\x00"},
    )
    r = ingest_vendor_file(store, zf, reader="amplitude")[0]
    assert (r.read, r.loaded, r.duplicate, r.quarantined) == (6, 3, 1, 2)
    q = store.query("SELECT raw, reason FROM quarantine ORDER BY raw")
    assert q["raw"].tolist() == ["README.txt", "__MACOSX/._x"]
    assert "zip member 'README.txt' is not an Amplitude export file" in q["reason"].iloc[0]


def test_truncated_gzip_member_fails_the_archive(store: Store, tmp_path: Path) -> None:
    data = gzip.compress(FIXTURE.read_bytes() * 30)
    zf = export_zip(tmp_path / "export.zip", {"1/1_2022-01-01_10#0.json.gz": data[: len(data) // 2]})
    with pytest.raises(SourceFormatError, match=r"export\.zip!1/1_2022-01-01_10#0\.json\.gz: the gzip stream is truncated"):
        ingest_vendor_file(store, zf, reader="amplitude")
    assert store.count("events") == 0
    assert store.count("ingest_log") == 0


def _damaged(data: bytes, how: str) -> bytes:
    if how == "bad CRC":  # a byte of the (stored) member flipped
        i = data.index(b"\x1f\x8b") + 20
        return data[:i] + bytes([data[i] ^ 0x55]) + data[i + 1 :]
    if how == "bad local header":
        return b"QK" + data[2:]
    return data[1:]  # "shifted": every offset of the central directory one byte off


@pytest.mark.parametrize("how", ["bad CRC", "bad local header", "shifted"])
def test_damaged_zip_member_refuses_the_archive_naming_it(store: Store, tmp_path: Path, how: str) -> None:
    # found by tests/test_fuzz.py: zipfile's BadZipFile / OSError escaped the reader (the ingest's safety net refused the file)
    zf = tmp_path / "export.zip"
    with zipfile.ZipFile(zf, "w", zipfile.ZIP_STORED) as z:
        z.writestr("1/1_2022-01-01_10#0.json.gz", gzip.compress(FIXTURE.read_bytes(), mtime=0))
    zf.write_bytes(_damaged(zf.read_bytes(), how))
    with pytest.raises(SourceFormatError, match=r"export\.zip!1/1_2022-01-01_10#0\.json\.gz: the zip member cannot be read") as err:
        ingest_vendor_file(store, zf, reader="amplitude")
    assert "reader could not read the file" not in str(err.value)
    assert store.count("events") == 0


BAD_LINES = [
    ("not json", b'{"event_type": "x", "event_time": ', "not valid JSON"),
    ("not an object", b"[1, 2]", "expected a JSON object per line, found array"),
    ("missing event_type", b'{"event_time": "2022-01-01 10:00:00", "user_id": "u"}', "missing required field event_type"),
    ("bad time", b'{"event_type": "x", "event_time": "soon", "user_id": "u"}', "event_time: expected a timestamp such as 2025-03-01 09:30:00, found soon"),
    ("not utf-8", '{"event_type": "caf\xe9", "event_time": "2022-01-01 10:00:00"}'.encode("latin-1"), "bytes that are not valid UTF-8"),
]


@pytest.mark.parametrize(("kind", "line", "reason"), BAD_LINES, ids=[b[0] for b in BAD_LINES])
def test_bad_line_in_a_member(store: Store, tmp_path: Path, kind: str, line: bytes, reason: str) -> None:
    good = FIXTURE.read_bytes().splitlines()[0]
    zf = export_zip(tmp_path / "export.zip", {"1/1_2022-01-01_10#0.json.gz": gzip.compress(good + b"\n" + line + b"\n")})
    r = ingest_vendor_file(store, zf, reader="amplitude")[0]
    assert (r.read, r.loaded, r.quarantined) == (2, 1, 1)
    q = store.table("quarantine")
    assert q["line"].tolist() == [2]
    assert reason in q["reason"].iloc[0]
    assert q["file"].iloc[0] == f"{zf}!1/1_2022-01-01_10#0.json.gz"


def test_not_an_amplitude_file(store: Store, tmp_path: Path) -> None:
    f = tmp_path / "x.json"
    f.write_text('{"tickets": []}')
    with pytest.raises(SourceFormatError, match=r"x\.json: line 1: not an Amplitude export"):
        ingest_vendor_file(store, f, reader="amplitude")


def test_offsets_in_event_time(store: Store, tmp_path: Path) -> None:
    f = tmp_path / "events.json"
    f.write_text('{"event_type": "a", "event_time": "2022-01-01T12:00:00+02:00", "user_id": "u", "uuid": "1"}\n')
    ingest_vendor_file(store, f, reader="amplitude")
    assert store.table("events")["timestamp"].iloc[0].isoformat() == "2022-01-01T10:00:00+00:00"


def test_zip_bomb_member_is_refused_before_it_is_inflated(store: Store, tmp_path: Path) -> None:
    line = json.dumps({"event_type": "login", "event_time": "2024-01-01 00:00:00.000000", "user_id": "u1", "$insert_id": "a"}).encode() + b"\n"
    bomb = tmp_path / "export.zip"
    block = bytes(1 << 20)
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.writestr("187520/187520_2024-01-01_0#0.json.gz", gzip.compress(line))
        with z.open("187520/187520_2024-01-01_1#0.json", "w") as member:  # 200 MiB of zeros, streamed
            member.write(line)
            for _ in range(200):
                member.write(block)
    assert bomb.stat().st_size < 1_000_000
    with pytest.raises(SourceFormatError, match=r"export\.zip!187520/187520_2024-01-01_1#0\.json: inflates at more than 200:1 \(([\d,]+) bytes") as info:
        ingest_vendor_file(store, bomb, reader="amplitude")
    inflated = int(info.value.args[0].split("(")[1].split(" bytes")[0].replace(",", ""))
    assert inflated < 100 << 20  # stopped long before the 200 MiB
    assert store.count("events") == 0  # the archive is refused whole


def test_gzip_member_nested_in_zip_is_capped_too(store: Store, tmp_path: Path) -> None:
    from journeylib.config.sources import ReaderOptions

    lines = b"".join(
        json.dumps({"event_type": "login", "event_time": "2024-01-01 00:00:00.000000", "user_id": f"u{i}", "$insert_id": f"a{i}"}).encode() + b"\n"
        for i in range(20_000)
    )
    archive = export_zip(tmp_path / "export.zip", {"187520/187520_2024-01-01_0#0.json.gz": gzip.compress(lines)})
    with pytest.raises(SourceFormatError, match=r"#0\.json\.gz: inflates to more than 500,000 bytes \(options\.max_decompressed_bytes"):
        ingest_source_files(store, "amplitude", [archive], options=ReaderOptions(max_decompressed_bytes=500_000))
    assert ingest_source_files(store, "amplitude", [archive]).files[0].loaded == 20_000


#: ``event_properties`` and device fields whose merge the reader may build as text or leave to ``json_merge_patch``.
MERGE_PROPERTIES: list[object] = [
    {"a": 1},
    {},
    None,  # key absent (see below) or JSON null
    [],
    "text",
    {"amplitude_id": 5, "q": 1},  # a device key already there: it moves to the end with the new value
    {"a": {"b": None}, "c": 1.10},
    {"x": "é\u00e9\"\\/\n", "country": None},
    {"a": 1, "nested": {"country": "x"}},
    {"device_id": {"k": 1}},
    {"n": 12345678901234567890123, "f": 1e300},
    {"s": '"country"', "t": '"platform":1'},  # a device key's text inside a value, not a key
    {"a": [1, {"device_id": 2}]},  # a device key nested in an array
    {"PLATFORM": 1, "Country": "x"},  # keys differing only in case are other keys
    {"session_id": None},  # a device key present with a JSON null
]
MERGE_EXTRAS: list[dict[str, object]] = [
    {"amplitude_id": 1, "device_id": "d1", "platform": "Web", "session_id": 10, "country": "US"},
    {"amplitude_id": None, "device_id": "d{1}", "platform": None},
    {},
    {"amplitude_id": "str-id", "device_id": ["a", None], "platform": {"os": "ios", "v": None}, "session_id": 1.5, "country": "Ünïcode"},
    {"device_id": "", "country": {"a": 1}},
    {"amplitude_id": "null", "device_id": 'x"y', "platform": "a\\b", "session_id": -1, "country": "}"},
    {"amplitude_id": True, "device_id": False, "platform": "[", "session_id": 0, "country": None},
]


def test_properties_are_event_properties_merge_patched_with_the_device_fields(store: Store, tmp_path: Path) -> None:
    import duckdb

    lines = []
    for i, (props, extras) in enumerate((p, e) for p in MERGE_PROPERTIES for e in MERGE_EXTRAS):
        rec: dict[str, object] = {"event_type": "e", "event_time": "2024-01-01 00:00:00.000000", "user_id": "u", "$insert_id": f"m{i}", **extras}
        if props is not None or i % 2:
            rec["event_properties"] = props
        lines.append(json.dumps(rec, ensure_ascii=i % 3 == 0))
    lines.append('{"event_type":"e","event_time":"2024-01-01 00:00:00.000000","user_id":"u","$insert_id":"dup","event_properties":{"a":1,"a":2},"amplitude_id":3}')
    lines.append('{"event_type":"e","event_time":"2024-01-01 00:00:00.000000","user_id":"u","$insert_id":"esc","event_properties":{"amplitude\\u005fid":1},"amplitude_id":3}')
    f = tmp_path / "events.json"
    f.write_text("\n".join(lines) + "\n")
    assert ingest_vendor_file(store, f, reader="amplitude")[0].loaded == len(lines)
    got = store.table("events").set_index("event_id")["properties"]
    # the definition: RFC 7396 merge of the event properties with the device fields, as DuckDB writes it
    con = duckdb.connect()
    fields = ", ".join(f"'{k}', json_extract(l, '$.{k}')" for k in ("amplitude_id", "device_id", "platform", "session_id", "country"))
    want = dict(
        con.execute(
            f"SELECT 'amplitude:' || json_extract_string(l, '$.\"$insert_id\"'), "
            f"CAST(json_merge_patch(coalesce(json_extract(l, '$.event_properties'), '{{}}'::JSON), json_object({fields})) AS VARCHAR) "
            "FROM unnest(?) AS t(l)",
            [lines],
        ).fetchall()
    )
    con.close()
    assert {k: got[k] for k in want} == want
    assert got["amplitude:dup"] == '{"a":1,"a":2,"amplitude_id":3}'  # members kept as exported, then the device fields
    assert got["amplitude:esc"] == '{"amplitude_id":3}'  # the escaped key is the same key: replaced, not repeated


@pytest.mark.parametrize(
    ("text", "iso"),
    [
        ("2024-01-01 00:00:00.000000", "2024-01-01T00:00:00+00:00"),
        ("2024-01-01 00:00:00.5", "2024-01-01T00:00:00.500000+00:00"),  # a short fraction is tenths, not microseconds
        ("2024-01-01 00:00:00", "2024-01-01T00:00:00+00:00"),
        ("2024-1-1 1:2:3.000000", "2024-01-01T01:02:03+00:00"),
        (" 2024-01-01 00:00:00.000000 ", "2024-01-01T00:00:00+00:00"),
        ("2024-01-01 10:00:00.000000+02:00", "2024-01-01T08:00:00+00:00"),
        ("2024-01-01 10:00:00.000000Z", "2024-01-01T10:00:00+00:00"),
        ("2024-01-01T10:00:00Z", "2024-01-01T10:00:00+00:00"),
        ("2024-01-01 00:00:00.1234567", "2024-01-01T00:00:00.123456+00:00"),
        ("2024-01-01 24:00:00.000000", "2024-01-02T00:00:00+00:00"),
    ],
)
def test_event_time_forms(store: Store, tmp_path: Path, text: str, iso: str) -> None:
    f = tmp_path / "events.json"
    f.write_text(json.dumps({"event_type": "a", "event_time": text, "user_id": "u", "uuid": "1"}) + "\n")
    ingest_vendor_file(store, f, reader="amplitude")
    assert store.table("events")["timestamp"].iloc[0].isoformat() == iso


def test_impossible_event_time_is_quarantined(store: Store, tmp_path: Path) -> None:
    f = tmp_path / "events.json"
    f.write_text(json.dumps({"event_type": "a", "event_time": "2024-02-30 00:00:00.000000", "user_id": "u", "uuid": "1"}) + "\n")
    r = ingest_vendor_file(store, f, reader="amplitude")[0]
    assert (r.loaded, r.quarantined) == (0, 1)
    assert "event_time: expected a timestamp" in store.table("quarantine")["reason"].iloc[0]
