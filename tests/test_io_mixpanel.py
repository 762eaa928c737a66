"""Mixpanel raw export reader: documented example, de-duplication, bad input."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from journeylib.config.sources import ReaderOptions
from journeylib.exceptions import SourceFormatError
from journeylib.store import Store
from journeylib.store.sources import ingest_source_files, ingest_vendor_file

FIXTURE = Path(__file__).parent / "data" / "vendors" / "mixpanel" / "export.jsonl"


@pytest.fixture
def store() -> Iterator[Store]:
    s = Store(":memory:")
    yield s
    s.close()


def reasons(store: Store) -> list[tuple[int, str]]:
    q = store.query("SELECT line, reason FROM quarantine ORDER BY line")
    return list(zip(q["line"].tolist(), q["reason"].tolist(), strict=True))


def test_documented_example(store: Store) -> None:
    res = ingest_source_files(store, "mixpanel", [FIXTURE])
    events = next(r for r in res.files if r.table == "events")
    # 5 lines: line 4 repeats line 1 exactly (same $insert_id and content) → 4 loaded + 1 duplicate
    assert (events.read, events.loaded, events.duplicate, events.quarantined) == (5, 4, 1, 0)
    ev = store.table("events").set_index("event_id")
    assert sorted(ev.index) == [
        "mixpanel:29fc2962-6d9c-455d-95ad-95b84f09b9e4",
        "mixpanel:5d958f87-542d-4c10-9422-0ed75893dc81",
        "mixpanel:935d87b1-00cd-41b7-be34-b9d98dd08b42",
        # no $insert_id: md5 of event, time, distinct_id and properties
        "mixpanel:" + ev.index[ev["event"] == "Page View"][0].split(":", 1)[1],
    ]
    signup = ev.loc["mixpanel:29fc2962-6d9c-455d-95ad-95b84f09b9e4"]
    assert signup["timestamp"].isoformat() == "2021-04-18T03:27:57+00:00"  # 1618716477 s
    purchase = ev.loc["mixpanel:935d87b1-00cd-41b7-be34-b9d98dd08b42"]
    assert purchase["timestamp"].isoformat() == "2021-04-18T03:27:57+00:00"  # 1618716477000 ms
    assert json.loads(str(purchase["properties"]))["Item"] == "Coffee"  # vendor properties kept
    assert signup["source"] == "mixpanel"
    # nobody can be resolved without a CRM: customers are NULL, not dropped; people get their e-mail
    assert ev["customer_id"].isna().all()
    assert signup["user_id"] == "jane.doe@acme.com"
    imap = store.table("identity_map").set_index("source_id")
    assert imap.loc["distinct_id:john.doe@gmail.com", "method"] == "unmatched"


def test_explicit_crm_id_resolves_once_the_account_arrives(store: Store, tmp_path: Path) -> None:
    ingest_source_files(store, "mixpanel", [FIXTURE])
    acc = tmp_path / "Account.csv"
    acc.write_text("Id,Name,Website\n0015g00000GLOBEX1,Globex,https://globex.io\n")
    ingest_source_files(store, "salesforce", [acc])
    ev = store.table("events")
    song = ev[ev["event"] == "Played Song"].iloc[0]
    assert song["customer_id"] == "0015g00000GLOBEX1"  # salesforce_account_id property
    imap = store.table("identity_map").set_index("source_id")
    assert imap.loc["distinct_id:john.doe@gmail.com", "method"] == "crm_id"


def test_gzip_export_and_truncated_gzip(store: Store, tmp_path: Path) -> None:
    gz = tmp_path / "export.jsonl.gz"
    gz.write_bytes(gzip.compress(FIXTURE.read_bytes()))
    assert ingest_vendor_file(store, gz, reader="mixpanel")[0].loaded == 4
    cut = tmp_path / "cut.jsonl.gz"
    data = gzip.compress(FIXTURE.read_bytes() * 50)
    cut.write_bytes(data[: len(data) // 2])
    before = store.count("events")
    with pytest.raises(SourceFormatError, match=r"cut\.jsonl\.gz: the gzip stream is truncated or corrupt"):
        ingest_vendor_file(store, cut, reader="mixpanel")
    assert store.count("events") == before  # the whole file was rolled back


BAD_LINES = [
    ("not json", '{"event": "x", "properties": {"time": 1', "not valid JSON"),
    ("array", "[1, 2, 3]", "expected a JSON object per line, found array"),
    ("string", '"hello"', "expected a JSON object per line, found varchar"),
    ("no event", '{"properties": {"time": 1618716477, "distinct_id": "a"}}', "missing required field event"),
    ("unknown shape", '{"name": "Signup", "ts": 1618716477}', "missing required field event"),
    ("no time", '{"event": "x", "properties": {"distinct_id": "a"}}', "missing required field properties.time"),
    ("bad time", '{"event": "x", "properties": {"time": "yesterday", "distinct_id": "a"}}', "properties.time: expected epoch seconds, found yesterday"),
]


@pytest.mark.parametrize(("kind", "line", "reason"), BAD_LINES, ids=[b[0] for b in BAD_LINES])
def test_bad_line_is_quarantined_with_line_and_reason(store: Store, tmp_path: Path, kind: str, line: str, reason: str) -> None:
    good = FIXTURE.read_text().splitlines()[0]
    f = tmp_path / "export.jsonl"
    f.write_text(good + "\n\n" + line + "\n")  # the blank line 2 is not a row
    (r, _) = ingest_vendor_file(store, f, reader="mixpanel")
    assert (r.read, r.loaded, r.quarantined) == (2, 1, 1)
    [(lineno, why)] = reasons(store)
    assert lineno == 3
    assert reason in why
    q = store.table("quarantine")
    assert q["file"].iloc[0] == str(f)
    assert q["raw"].iloc[0].strip() == line


def test_non_utf8_line_and_bom(store: Store, tmp_path: Path) -> None:
    good = FIXTURE.read_bytes().splitlines()[0]
    f = tmp_path / "export.jsonl"
    f.write_bytes(b"\xef\xbb\xbf" + good + b"\n" + '{"event": "caf\xe9", "properties": {"time": 1}}'.encode("latin-1") + b"\n")
    (r, _) = ingest_vendor_file(store, f, reader="mixpanel")
    assert (r.loaded, r.quarantined) == (1, 1)
    assert reasons(store) == [(2, "bytes that are not valid UTF-8")]


def test_not_a_mixpanel_file_is_rejected_whole(store: Store, tmp_path: Path) -> None:
    f = tmp_path / "events.csv"
    f.write_text("event_id,customer_id\ne1,c1\n")
    with pytest.raises(SourceFormatError, match=r"events\.csv: line 1: not a Mixpanel raw event export"):
        ingest_vendor_file(store, f, reader="mixpanel")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(SourceFormatError, match="the file is empty"):
        ingest_vendor_file(store, empty, reader="mixpanel")
    assert store.count("ingest_log") == 0


def test_conflicting_insert_ids_are_quarantined(store: Store, tmp_path: Path) -> None:
    f = tmp_path / "export.jsonl"
    f.write_text(
        '{"event": "a", "properties": {"time": 1, "distinct_id": "u", "$insert_id": "i1"}}\n'
        '{"event": "b", "properties": {"time": 1, "distinct_id": "u", "$insert_id": "i1"}}\n'
    )
    (r, _) = ingest_vendor_file(store, f, reader="mixpanel")
    assert (r.read, r.loaded, r.quarantined) == (2, 0, 2)
    assert all("rows with event_id=mixpanel:i1 disagree (lines 1, 2)" in why for _, why in reasons(store))


def test_timezone_option(store: Store, tmp_path: Path) -> None:
    from journeylib.config import ReaderOptions

    f = tmp_path / "export.jsonl"
    f.write_text('{"event": "a", "properties": {"time": 1618716477, "distinct_id": "u", "$insert_id": "i1"}}\n')
    ingest_vendor_file(store, f, reader="mixpanel", options=ReaderOptions(timezone="Europe/Berlin"))
    # 03:27:57 wall-clock in Berlin (UTC+2 in April) is 01:27:57 UTC
    assert store.table("events")["timestamp"].iloc[0].isoformat() == "2021-04-18T01:27:57+00:00"


def test_large_files_are_merged_in_bounded_batches(store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import journeylib.io.common as vendor
    import journeylib.store.sources as sources

    monkeypatch.setattr(vendor, "BLOCK_BYTES", 150)  # a few lines per block
    monkeypatch.setattr(sources, "FLUSH_ROWS", 1)  # merge after every block
    lines = [f'{{"event": "e", "properties": {{"time": {t}, "distinct_id": "u{t % 3}", "$insert_id": "i{t % 7}"}}}}' for t in range(1, 15)]
    f = tmp_path / "export.jsonl"
    f.write_text("\n".join(lines) + "\nnot json\n")
    (r, ids) = ingest_vendor_file(store, f, reader="mixpanel")
    # 15 lines; insert ids repeat every 7 lines with other content: the first occurrences load (7),
    # the 7 later ones conflict with a stored row and are quarantined, and the bad line too
    assert (r.read, r.loaded, r.duplicate, r.quarantined) == (15, 7, 0, 8)
    assert ids.reconciles
    assert store.count("events") == 7
    why = store.query("SELECT reason FROM quarantine WHERE reason LIKE '%already stored%'")["reason"]
    assert len(why) == 7


def test_mixed_new_repeated_and_stored_keys(store: Store, tmp_path: Path) -> None:
    def line(name: str, ins: str, t: int = 1) -> str:
        return json.dumps({"event": name, "properties": {"time": t, "distinct_id": "u", "$insert_id": ins}})

    first = tmp_path / "a.jsonl"
    first.write_text("\n".join([line("a", "i1"), line("b", "i2")]) + "\n")
    ingest_vendor_file(store, first, reader="mixpanel")
    second = tmp_path / "b.jsonl"
    second.write_text(
        "\n".join(
            [
                line("a", "i1"),  # stored, same content: duplicate
                line("x", "i2"),  # stored with other content: quarantined, stored row kept
                line("c", "i3"),  # new
                line("d", "i4"),  # new, repeated identically below: loaded once
                line("d", "i4"),
                line("e", "i5"),  # repeated with other content: both quarantined
                line("f", "i5"),
            ]
        )
        + "\n"
    )
    (r, _) = ingest_vendor_file(store, second, reader="mixpanel")
    assert (r.read, r.loaded, r.duplicate, r.quarantined) == (7, 2, 2, 3)
    ev = store.table("events").set_index("event_id")["event"].to_dict()
    assert ev == {"mixpanel:i1": "a", "mixpanel:i2": "b", "mixpanel:i3": "c", "mixpanel:i4": "d"}
    refs = store.query("SELECT row_id, count(*) AS n FROM source_refs GROUP BY row_id")
    assert sorted(refs["row_id"]) == sorted(str(k) for k in ev)
    assert (refs["n"] == 1).all()


def test_bad_lines_among_good_ones_in_every_block(store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Blocks are parsed in a fast form first (which fails on a line that is not JSON and is then
    # retried, outside the file's transaction) and only the lines it marks bad are explained.
    import journeylib.io.common as vendor

    monkeypatch.setattr(vendor, "BLOCK_BYTES", 400)  # several blocks, each with good and bad lines
    good = [json.dumps({"event": "e", "properties": {"time": 1618716477 + t, "distinct_id": "u", "$insert_id": f"i{t}"}}) for t in range(12)]
    bad = {
        3: ('{"event": "x", "properties": {"time": 1', "not valid JSON"),
        6: ('{"event": "x", "properties": {"distinct_id": "a"}}', "missing required field properties.time"),
        9: ('["an", "array"]', "expected a JSON object per line, found array"),
        12: ('{"event": "x", "properties": {"time": "soon"}}', "properties.time: expected epoch seconds, found soon"),
    }
    lines: list[str] = []
    for g in good:
        lines.append(g)
        if len(lines) + 1 in bad:
            lines.append(bad[len(lines) + 1][0])
    f = tmp_path / "export.jsonl"
    f.write_text("\n".join(lines) + "\n")
    (r, _) = ingest_vendor_file(store, f, reader="mixpanel")
    assert (r.read, r.loaded, r.quarantined) == (16, 12, 4)
    got = reasons(store)
    assert [n for n, _ in got] == sorted(bad)
    for n, why in got:
        assert bad[n][1] in why
    q = store.query("SELECT line, raw FROM quarantine ORDER BY line")
    assert q["raw"].tolist() == [bad[n][0] for n in sorted(bad)]
    assert sorted(store.table("events")["event_id"]) == sorted(f"mixpanel:i{t}" for t in range(12))


def test_reingest_is_skipped_before_anything_is_written(store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the digest is computed while the file is read; the file is given up before its first merge
    import journeylib.io.common as vendor
    import journeylib.store.sources as sources

    monkeypatch.setattr(vendor, "BLOCK_BYTES", 300)
    monkeypatch.setattr(sources, "FLUSH_ROWS", 2)  # a merge after (almost) every block
    lines = [json.dumps({"event": "e", "properties": {"time": 1618716477 + t, "distinct_id": "u", "$insert_id": f"i{t}"}}) for t in range(20)]
    f = tmp_path / "export.jsonl"
    f.write_text("\n".join(lines) + "\n")
    (first, _) = ingest_vendor_file(store, f, reader="mixpanel")
    assert first.loaded == 20
    def counts() -> dict[str, int]:
        tables = ("events", "source_refs", "source_identities", "ingest_log", "quarantine")
        return {t: int(store.query(f"SELECT count(*) AS n FROM {t}")["n"].iloc[0]) for t in tables}

    before = counts()
    (again,) = ingest_vendor_file(store, f, reader="mixpanel")
    assert again.status == "skipped"
    assert again.sha256 == first.sha256
    assert counts() == before
    forced = ingest_vendor_file(store, f, reader="mixpanel", force=True)[0]
    assert (forced.status, forced.loaded, forced.duplicate) == ("loaded", 0, 20)


def test_vendor_writes_restore_the_compression_setting(store: Store, tmp_path: Path) -> None:
    f = tmp_path / "export.jsonl"
    f.write_text('{"event": "a", "properties": {"time": 1618716477, "distinct_id": "u", "$insert_id": "i1"}}\n')
    store.execute("SET force_compression = 'uncompressed'")
    ingest_vendor_file(store, f, reader="mixpanel")
    assert store.query("SELECT current_setting('force_compression') AS v")["v"].iloc[0].lower() == "uncompressed"
    store.execute("SET force_compression = 'auto'")
    assert store.query("SELECT current_setting('arrow_lossless_conversion') AS v")["v"].iloc[0] in (False, "false")


# -- issue 11: values no column can store, caps ----------------------------------------------------
def _mp(i: int, extra: str = "") -> str:
    return '{"event": "e", "properties": {"time": ' + f'{1700000000 + i}, "distinct_id": "u{i}", "$insert_id": "i{i}"{extra}' + "}}"


def test_unstorable_lines_are_quarantined_and_lookalikes_loaded(store: Store, tmp_path: Path) -> None:
    lines = [
        _mp(1, ', "note": "NaN and Infinity are words here, \\\\u0000 too"'),  # the text only: loaded
        _mp(2, ', "x": NaN'),
        _mp(3, ', "x": -Infinity'),
        _mp(4, ', "who": "a\\u0000b"'),
        _mp(5, ', "d": ' + "[" * 65 + "]" * 65),
        _mp(6, ', "d": ' + "[" * 100_000 + "]" * 100_000),
        _mp(7, ', "brackets": "' + "[{" * 100 + '", "d": [[[1]]]'),  # many brackets, shallow: loaded
        _mp(8, ', "blob": "' + "x" * 300_000 + '"'),
    ]
    f = tmp_path / "export.jsonl"
    f.write_text("\n".join(lines) + "\n")
    res = ingest_source_files(store, "mixpanel", [f], options=ReaderOptions(max_field_bytes=250_000))
    events = next(r for r in res.files if r.table == "events")
    assert (events.read, events.loaded, events.quarantined) == (8, 2, 6)
    assert reasons(store) == [
        (2, "properties.x: NaN is not a finite number; such numbers are refused"),
        (3, "properties.x: -Infinity is not a finite number; such numbers are refused"),
        (4, "properties.who: a NUL character (\\u0000), which text columns refuse"),
        (5, "JSON nested deeper than 64 levels (options.max_json_depth); the record was not read"),
        (6, "JSON nested deeper than 64 levels (options.max_json_depth); the record was not read"),
        (8, "a line longer than the cap of 250,000 bytes (options.max_field_bytes); not read"),
    ]
    assert sorted(store.table("events")["event_id"]) == ["mixpanel:i1", "mixpanel:i7"]


def test_an_endless_line_is_cut_while_read(store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import journeylib.io.common as common

    monkeypatch.setattr(common, "BLOCK_BYTES", 4096)  # the endless line spans many blocks
    f = tmp_path / "export.jsonl"
    f.write_text(_mp(1) + "\n" + '{"event": "e", "properties": {"blob": "' + "y" * 200_000 + '"}}\n' + _mp(3) + "\n")
    res = ingest_source_files(store, "mixpanel", [f], options=ReaderOptions(max_field_bytes=10_000))
    events = next(r for r in res.files if r.table == "events")
    assert (events.read, events.loaded, events.quarantined) == (3, 2, 1)
    q = store.query("SELECT line, reason, length(raw) AS n FROM quarantine")
    assert q["line"].tolist() == [2]
    assert q["reason"].tolist() == ["a line longer than the cap of 10,000 bytes (options.max_field_bytes); not read"]
    assert q["n"].iloc[0] <= 4000
    # the endless line may be the last one, without a newline
    tail = tmp_path / "tail.jsonl"
    tail.write_text(_mp(4) + "\n" + '{"event": "e", "properties": {"blob": "' + "z" * 200_000)
    events = next(r for r in ingest_source_files(store, "mixpanel", [tail], options=ReaderOptions(max_field_bytes=10_000)).files if r.table == "events")
    assert (events.read, events.loaded, events.quarantined) == (2, 1, 1)


def zeros_gzip(path: Path, mib: int) -> Path:
    """Write one event line then *mib* MiB of zero bytes, gzipped, streaming (the file is about 1/1000 of that)."""
    block = bytes(1 << 20)
    with gzip.open(path, "wb", compresslevel=9) as fh:
        fh.write((_mp(99) + "\n").encode())
        for _ in range(mib):
            fh.write(block)
    return path


def test_gzip_bomb_is_refused_and_the_next_file_still_loads(store: Store, tmp_path: Path) -> None:
    from journeylib.store.sources import SourcesIncompleteError

    bomb = zeros_gzip(tmp_path / "bomb.jsonl.gz", 200)
    good = tmp_path / "good.jsonl"
    good.write_text(_mp(1) + "\n")
    assert bomb.stat().st_size < 400_000
    with pytest.raises(SourcesIncompleteError) as info:
        ingest_source_files(store, "mixpanel", [bomb, good])
    result = info.value.result
    refused = [r for r in result.files if r.status == "refused"]
    assert [Path(r.file).name for r in refused] == ["bomb.jsonl.gz"]
    assert "inflates at more than 200:1" in refused[0].error
    assert "max_compression_ratio" in refused[0].error
    assert store.count("events") == 1  # nothing of the bomb; the good file after it was loaded
    assert result.identity is not None  # and identities were resolved


def test_inflation_caps_stop_reading_early(store: Store, tmp_path: Path) -> None:
    bomb = zeros_gzip(tmp_path / "bomb.jsonl.gz", 200)
    with pytest.raises(SourceFormatError, match=r"bomb\.jsonl\.gz: inflates at more than 200:1 \(([\d,]+) bytes") as info:
        ingest_vendor_file(store, bomb, reader="mixpanel")
    inflated = int(info.value.args[0].split("(")[1].split(" bytes")[0].replace(",", ""))
    assert inflated < 64 << 20  # stopped long before the 200 MiB
    assert store.count("events") == 0
    # a genuine export past the size cap is refused too, naming the option
    big = tmp_path / "big.jsonl.gz"
    big.write_bytes(gzip.compress(("\n".join(_mp(i) for i in range(30_000)) + "\n").encode()))
    with pytest.raises(SourceFormatError, match=r"big\.jsonl\.gz: inflates to more than 1,000,000 bytes \(options\.max_decompressed_bytes"):
        ingest_source_files(store, "mixpanel", [big], options=ReaderOptions(max_decompressed_bytes=1_000_000, max_compression_ratio=1000))
