"""Fuzz suite of the readers: mutated valid files end in a documented outcome, reconcile, and re-run to nothing.

Small valid seed files are cut once per module from a synthetic world
(``synthesize`` and ``write_vendor_exports``): every canonical table as CSV,
JSON Lines and Parquet, one file of every kind of every vendor reader, and
gzipped JSON Lines for Mixpanel and Amplitude, each trimmed to
:data:`RECORDS` records. Hypothesis mutates them (bytes
flipped, inserted or deleted; lines cut, duplicated or swapped; JSON values,
CSV cells and Parquet cells or columns replaced by hostile ones: NaN, 1e999,
lone surrogate escapes, nesting 100 deep, huge strings, NUL, zero-width
spaces, wrong types, null; the encoding switched to Latin-1 or UTF-16 with a
BOM; the file truncated; members added to an Amplitude archive) and each
example is ingested through the real entry point (``ingest_files`` for
canonical files, ``ingest_source_files`` for vendor exports) on a fresh
in-memory store. For every example:

1. nothing escapes but journeylib's own errors
   (:class:`~journeylib.exceptions.JourneyLibError`: a refused file), a
   refused vendor file is refused by its reader (not by the ingest's safety
   net for reader crashes, "the X reader could not read the file (...)"), and
   ``journeylib ingest`` on the same file exits 1 exactly when the API raised
   (0 otherwise), printing neither a traceback nor an "internal error";
2. every ``ingest_log`` row reconciles: read = loaded + duplicate +
   quarantined;
3. running the same ingest again changes no table (the file is skipped, or
   refused again), and a forced re-read changes no table but ``ingest_log``.

An example is a plan of mutations (a short list of :class:`Op`), printed on
failure; :func:`mutate` applies it to a seed's bytes. Examples are
derandomized (the ``journeylib`` Hypothesis profile of the root
``conftest.py``), so every run tries the same ones; ``max_examples`` per
reader (:data:`EXAMPLES`) keeps the module under a minute on two cores. A
longer hunt with random examples::

    JOURNEYLIB_FUZZ_SCALE=20 pytest tests/test_fuzz.py -p no:cacheprovider --hypothesis-profile=default
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import hashlib
import io
import json
import os
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from journeylib.cli import main
from journeylib.datasets import synthesize
from journeylib.datasets.vendor import write_vendor_exports
from journeylib.exceptions import JourneyLibError
from journeylib.store import Store
from journeylib.store.ingest import ingest_files
from journeylib.store.sources import ingest_source_files

pytestmark = pytest.mark.slow

#: Seed of the synthetic world the seed files are cut from.
WORLD_SEED = 11
#: Records kept in each seed file.
RECORDS = 20
#: Multiplies every reader's ``max_examples`` (a longer hunt: ``JOURNEYLIB_FUZZ_SCALE=20``).
SCALE = max(1, int(os.environ.get("JOURNEYLIB_FUZZ_SCALE", "1")))
#: Examples per reader in one run (tuned so that the module runs in under a minute on two cores).
EXAMPLES: dict[str, int] = {
    "generic": 32,
    "mixpanel": 10,
    "amplitude": 10,
    "zendesk": 10,
    "intercom": 10,
    "hubspot": 8,
    "salesforce": 10,
    "sendgrid": 8,
    "mailchimp": 8,
}
FUZZ = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
}


# -- hostile values -----------------------------------------------------------------------
_DEEP_ARRAY = "[" * 100 + "]" * 100
_DEEP_OBJECT = '{"a":' * 100 + "1" + "}" * 100
#: JSON texts that replace a value of a JSON document (name → raw JSON).
HOSTILE_JSON: dict[str, str] = {
    "nan": "NaN",
    "infinity": "Infinity",
    "-infinity": "-Infinity",
    "1e999": "1e999",
    "-1e999": "-1e999",
    "surrogate": '"\\ud800"',
    "surrogate-pair-reversed": '"\\udfff\\ud800"',
    "deep-array": _DEEP_ARRAY,
    "deep-object": _DEEP_OBJECT,
    "huge-string": json.dumps("x" * 1_100_000),
    "nul": '"a\\u0000b"',
    "zero-width": '"\\u200b"',
    "bom-prefixed": '"\\ufeffid_1"',
    "rtl-override": '"\\u202eevil"',
    "null": "null",
    "true": "true",
    "zero": "0",
    "negative": "-1",
    "float": "1.5",
    "bigint": "123456789012345678901234567890",
    "huge-epoch": "99999999999999",
    "empty-string": '""',
    "blank": '"   "',
    "empty-array": "[]",
    "empty-object": "{}",
    "array": '[1, "two", null]',
    "object": '{"id": 1}',
    "not-a-date": '"not a date"',
    "impossible-date": '"2025-02-30T25:61:00Z"',
    "sentinel-date": '"9999-12-31T23:59:59Z"',
    "year-one": '"0001-01-01"',
    "newline": '"line\\nbreak"',
    "quotes": '"\\"quoted\\", with comma"',
}
#: Bytes that replace a CSV cell or are inserted anywhere (name → bytes).
HOSTILE_BYTES: dict[str, bytes] = {
    "empty": b"",
    "nan": b"NaN",
    "inf": b"-inf",
    "1e999": b"1e999",
    "nul": b"a\x00b",
    "zero-width": "\u200b".encode(),
    "bom": "\ufeff".encode(),
    "huge": b"y" * 1_100_000,
    "quote": b'"',
    "unclosed": b'"unclosed',
    "comma": b"a,b",
    "newline": b"line\nbreak",
    "cr": b"\r",
    "surrogate-utf8": b"\xed\xa0\x80",
    "invalid-utf8": b"\xff\xfe\xc3",
    "formula": b"=cmd|' /C calc'!A0",
    "negative": b"-1",
    "date-13": b"2025-13-45",
    "sentinel-date": b"9999-12-31",
    "year-one": b"0001-01-01 00:00",
    "arabic-digits": "١٢٣".encode(),
    "null-word": b"null",
    "backslash-n": b"\\N",
    "brace": b"{",
    "bracket": b"]",
}
#: Python values that replace a Parquet cell (name → value).
HOSTILE_CELLS: dict[str, Any] = {
    "none": None,
    "nan": float("nan"),
    "inf": float("inf"),
    "empty": "",
    "nul": "a\x00b",
    "zero-width": "\u200b",
    "huge": "z" * 1_100_000,
    "not-a-date": "not a date",
    "int": 7,
    "negative": -1,
    "bool": True,
    "json-array": "[1, 2]",
    "deep-json": _DEEP_OBJECT,
    "bytes": b"\xff\x00",
}
#: Ways to replace a whole Parquet column.
COLUMN_CHANGES = ("drop", "null", "str", "rename", "naive", "float", "bytes", "list", "int")
#: Encodings a file is switched to.
ENCODINGS = ("latin-1", "cp1252", "utf-16", "utf-16-le", "utf-32", "utf-8-sig")
#: Members added to an Amplitude archive.
ZIP_MEMBERS = ("readme", "macosx", "plain-json", "empty-gz", "bomb", "not-gzip", "nested-zip")

_SENTINEL = "@@fuzz-value@@"


# -- mutation plans -------------------------------------------------------------------------
@dataclass(frozen=True)
class Op:
    """One mutation: its kind and integer or name arguments (positions are taken modulo the size)."""

    kind: str
    args: tuple[Any, ...] = ()

    def __repr__(self) -> str:
        return f"{self.kind}{self.args!r}"


_pos = st.integers(min_value=0, max_value=1 << 20)
_small = st.integers(min_value=0, max_value=64)


def _byte_ops() -> st.SearchStrategy[Op]:
    payload = st.one_of(st.sampled_from(sorted(HOSTILE_BYTES)), st.binary(min_size=1, max_size=6))
    return st.one_of(
        st.builds(lambda p, x: Op("flip", (p, x)), _pos, st.integers(1, 255)),
        st.builds(lambda p, b: Op("insert", (p, b)), _pos, payload),
        st.builds(lambda p, n: Op("delete", (p, n)), _pos, st.integers(1, 32)),
        st.builds(lambda p: Op("truncate", (p,)), _pos),
    )


def _line_ops() -> st.SearchStrategy[Op]:
    return st.one_of(
        st.builds(lambda i: Op("cut_line", (i,)), _small),
        st.builds(lambda i, j: Op("dup_line", (i, j)), _small, _small),
        st.builds(lambda i, j: Op("swap_lines", (i, j)), _small, _small),
        st.builds(lambda e: Op("encoding", (e,)), st.sampled_from(ENCODINGS)),
    )


def _json_ops() -> st.SearchStrategy[Op]:
    return st.one_of(
        st.builds(lambda i, n, v: Op("json_value", (i, n, v)), _small, _pos, st.sampled_from(sorted(HOSTILE_JSON))),
        st.builds(lambda i, n: Op("json_drop", (i, n)), _small, _pos),
    )


def _csv_ops() -> st.SearchStrategy[Op]:
    return st.builds(
        lambda r, c, v, quoted: Op("csv_cell", (r, c, v, quoted)),
        _small,
        _small,
        st.sampled_from(sorted(HOSTILE_BYTES)),
        st.booleans(),
    )


def _parquet_ops() -> st.SearchStrategy[Op]:
    return st.one_of(
        st.builds(
            lambda r, c, v: Op("parquet_cell", (r, c, v)), _small, _small, st.sampled_from(sorted(HOSTILE_CELLS))
        ),
        st.builds(lambda c, how: Op("parquet_column", (c, how)), _small, st.sampled_from(COLUMN_CHANGES)),
    )


def ops_for(fmt: str) -> st.SearchStrategy[Op]:
    """Return the mutations that apply to files of format *fmt* (``csv``, ``json``, ``jsonl``, ``gz``, ``parquet``, ``zip``)."""
    if fmt == "parquet":
        return st.one_of(_parquet_ops(), _parquet_ops(), _byte_ops())
    if fmt == "gz":
        inflated = st.builds(lambda op: Op("inflated", (op,)), ops_for("jsonl"))
        return st.one_of(inflated, inflated, _byte_ops())
    if fmt == "zip":
        inner = st.builds(lambda m, gz, op: Op("member", (m, gz, op)), _small, st.booleans(), ops_for("jsonl"))
        added = st.builds(lambda name: Op("zip_add", (name,)), st.sampled_from(ZIP_MEMBERS))
        return st.one_of(inner, inner, added, _byte_ops())
    text = st.one_of(_byte_ops(), _line_ops())
    if fmt == "csv":
        return st.one_of(_csv_ops(), _csv_ops(), text)
    return st.one_of(_json_ops(), _json_ops(), text)


def plans(fmt: str) -> st.SearchStrategy[list[Op]]:
    """Return plans of one to three mutations for a file of format *fmt*."""
    return st.lists(ops_for(fmt), min_size=1, max_size=3)


def mutate(data: bytes, fmt: str, plan: list[Op]) -> bytes:
    """Apply a plan of mutations to a file's bytes, in order; a mutation that does not apply leaves them as they are."""
    for op in plan:
        data = _apply(data, fmt, op)
    return data


def _apply(data: bytes, fmt: str, op: Op) -> bytes:
    k, a = op.kind, op.args
    n = len(data)
    if k == "flip":
        if not n:
            return data
        p = a[0] % n
        return data[:p] + bytes([data[p] ^ a[1]]) + data[p + 1 :]
    if k == "insert":
        p = a[0] % (n + 1)
        payload = HOSTILE_BYTES[a[1]] if isinstance(a[1], str) else a[1]
        return data[:p] + payload + data[p:]
    if k == "delete":
        p = a[0] % (n + 1)
        return data[:p] + data[p + a[1] :]
    if k == "truncate":
        return data[: a[0] % (n + 1)]
    if k in ("cut_line", "dup_line", "swap_lines"):
        return _lines(data, k, a)
    if k == "encoding":
        return data.decode("utf-8", errors="replace").encode(a[0], errors="replace")
    if k in ("json_value", "json_drop"):
        return _json(data, fmt, k, a)
    if k == "csv_cell":
        return _csv_cell(data, *a)
    if k in ("parquet_cell", "parquet_column"):
        return _parquet(data, k, a)
    if k in ("member", "zip_add"):
        return _zip(data, k, a)
    if k == "inflated":
        try:
            text = gzip.decompress(data)
        except Exception:  # an earlier byte mutation broke the stream
            return data
        return gzip.compress(_apply(text, "jsonl", a[0]), mtime=0)
    raise AssertionError(k)


def _lines(data: bytes, kind: str, a: tuple[Any, ...]) -> bytes:
    lines = data.splitlines(keepends=True)
    if not lines:
        return data
    if lines[-1][-1:] not in (b"\n", b"\r"):
        lines[-1] += b"\n"
    i = a[0] % len(lines)
    if kind == "cut_line":
        del lines[i]
    elif kind == "dup_line":
        lines.insert(a[1] % (len(lines) + 1), lines[i])
    else:
        j = a[1] % len(lines)
        lines[i], lines[j] = lines[j], lines[i]
    return b"".join(lines)


def _nodes(value: Any) -> Iterator[tuple[Any, Any]]:
    """Yield (container, key) of every value inside a JSON document, depth first."""
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in items:
        yield value, key
        yield from _nodes(child)


def _json(data: bytes, fmt: str, kind: str, a: tuple[Any, ...]) -> bytes:
    def one(text: str, *, indent: int | None) -> str | None:
        try:
            doc = json.loads(text)
        except (ValueError, RecursionError):
            return None
        nodes = list(_nodes(doc))
        if not nodes:
            return None
        parent, key = nodes[a[1] % len(nodes)]
        if kind == "json_drop":
            del parent[key]
            return json.dumps(doc, indent=indent, ensure_ascii=False)
        parent[key] = _SENTINEL
        return json.dumps(doc, indent=indent, ensure_ascii=False).replace(json.dumps(_SENTINEL), HOSTILE_JSON[a[2]], 1)

    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return data
    if fmt == "json":
        out = one(text, indent=1 if "\n " in text else None)
        return data if out is None else out.encode("utf-8", errors="surrogatepass")
    lines = text.splitlines(keepends=True)
    if not lines:
        return data
    i = a[0] % len(lines)
    out = one(lines[i], indent=None)
    if out is None:
        return data
    lines[i] = out + "\n"
    return "".join(lines).encode("utf-8", errors="surrogatepass")


def _csv_cell(data: bytes, row: int, col: int, value: str, quoted: bool) -> bytes:
    text = data.decode("utf-8", errors="surrogateescape")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    if not rows:
        return data
    r = rows[row % len(rows)]
    if not r:
        return data
    payload = HOSTILE_BYTES[value]
    r[col % len(r)] = payload.decode("utf-8", errors="surrogateescape") if quoted else _SENTINEL
    out = io.StringIO(newline="")
    csv.writer(out, lineterminator="\n").writerows(rows)
    raw = out.getvalue().encode("utf-8", errors="surrogateescape")
    return raw if quoted else raw.replace(_SENTINEL.encode(), payload, 1)


def _parquet(data: bytes, kind: str, a: tuple[Any, ...]) -> bytes:
    try:
        frame = pd.read_parquet(io.BytesIO(data))
    except Exception:  # an earlier byte mutation broke the file
        return data
    if frame.empty or not len(frame.columns):
        return data
    col = (
        frame.columns[a[1] % len(frame.columns)] if kind == "parquet_cell" else frame.columns[a[0] % len(frame.columns)]
    )
    if kind == "parquet_cell":
        value = HOSTILE_CELLS[a[2]]
        values = frame[col].astype(object)
        values.iloc[a[0] % len(frame)] = value
        candidates = [values, values.map(lambda v: v if v is None else str(v))]
    else:
        how = a[1]
        values = frame[col]
        if how in ("drop", "rename"):
            out = _to_parquet(
                frame.drop(columns=[col]) if how == "drop" else frame.rename(columns={col: f"{col}\u200b"})
            )
            return data if out is None else out
        changed = {
            "null": lambda: pd.Series([None] * len(frame), dtype=object),
            "str": lambda: values.astype(str),
            "naive": lambda: (
                values.dt.tz_localize(None) if isinstance(values.dtype, pd.DatetimeTZDtype) else values.astype(str)
            ),
            "float": lambda: pd.to_numeric(values, errors="coerce").astype(float),
            "bytes": lambda: values.map(lambda v: str(v).encode()),
            "list": lambda: values.map(lambda v: [str(v)]),
            "int": lambda: pd.Series(range(len(frame)), dtype="int64"),
        }[how]
        candidates = [changed()]
    for values in candidates:  # the first spelling Parquet can hold
        out = _to_parquet(frame.assign(**{col: values.to_numpy()}))
        if out is not None:
            return out
    return data


def _to_parquet(frame: pd.DataFrame) -> bytes | None:
    buf = io.BytesIO()
    try:
        frame.to_parquet(buf, index=False)
    except Exception:  # a mix of types Parquet cannot hold
        return None
    return buf.getvalue()


def _zip(data: bytes, kind: str, a: tuple[Any, ...]) -> bytes:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            members = [(info.filename, zf.read(info)) for info in zf.infolist()]
    except Exception:  # an earlier byte mutation broke the archive
        return data
    if kind == "member":
        if not members:
            return data
        i = a[0] % len(members)
        name, body = members[i]
        inner: Op = a[2]
        if inner.kind in ("flip", "insert", "delete", "truncate") and a[1]:  # the gzip layer itself
            members[i] = (name, _apply(body, "gz", inner))
        else:
            try:
                text = gzip.decompress(body)
            except Exception:
                return data
            members[i] = (name, gzip.compress(_apply(text, "jsonl", inner), mtime=0))
    else:
        prefix = members[0][0].split("/")[0] if members else "187520"
        added = {
            "readme": ("README.txt", b"exported by amplitude\n"),
            "macosx": (f"__MACOSX/{prefix}/._x.json.gz", b"\x00\x05\x16\x07"),
            "plain-json": (f"{prefix}/{prefix}_20251001_9#0.json", b'{"event_type": "x"}\n'),
            "empty-gz": (f"{prefix}/{prefix}_20251001_9#1.json.gz", gzip.compress(b"", mtime=0)),
            "bomb": (f"{prefix}/{prefix}_20251001_9#2.json.gz", gzip.compress(b" " * 8_000_000, mtime=0)),
            "not-gzip": (f"{prefix}/{prefix}_20251001_9#3.json.gz", b"plain text, not gzip\n"),
            "nested-zip": (f"{prefix}/{prefix}_20251001_9#4.zip", data),
        }[a[0]]
        if any(name == added[0] for name, _ in members):
            return data
        members.append(added)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, body in members:
            zf.writestr(zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0)), body)
    return buf.getvalue()


# -- seed files -------------------------------------------------------------------------------
class Seed:
    """A small valid file: which reader reads it, into what (a table or a vendor file kind), its name, format and bytes.

    Not a dataclass, so that Hypothesis prints it as its short ``repr``.
    """

    def __init__(self, reader: str, target: str, name: str, fmt: str, data: bytes) -> None:
        self.reader, self.target, self.name, self.fmt, self.data = reader, target, name, fmt, data

    def __repr__(self) -> str:
        return f"Seed({self.reader}: {self.name})"


class SeedFiles(dict[str, list[Seed]]):
    """Reader name ("generic" or a vendor reader) → its seed files, printed short."""

    def __repr__(self) -> str:
        return f"SeedFiles({sum(map(len, self.values()))} files of {len(self)} readers)"


def _trim_csv(path: Path) -> bytes:
    raw = path.read_bytes()
    bom = raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline="")))[: RECORDS + 1]
    out = io.StringIO(newline="")
    csv.writer(out, lineterminator="\n").writerows(rows)
    return (b"\xef\xbb\xbf" if bom else b"") + out.getvalue().encode()


def _trim_json(path: Path) -> bytes:
    text = path.read_text(encoding="utf-8")
    doc = json.loads(text)
    if isinstance(doc, list):
        doc = doc[:RECORDS]
    else:
        doc = {k: v[:RECORDS] if isinstance(v, list) else v for k, v in doc.items()}
    return json.dumps(doc, indent=1 if "\n " in text else None, ensure_ascii=False).encode()


def _trim_lines(data: bytes, n: int = RECORDS) -> bytes:
    return b"".join(data.splitlines(keepends=True)[:n])


def _trim_zip(path: Path) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist()[:2]:
            body = gzip.compress(_trim_lines(gzip.decompress(src.read(info)), RECORDS // 2), mtime=0)
            dst.writestr(zipfile.ZipInfo(info.filename, date_time=(2026, 1, 1, 0, 0, 0)), body)
    return buf.getvalue()


def _canonical_seeds(world: Path) -> list[Seed]:
    seeds = []
    for table in ("customers", "users", "events", "tickets", "messages"):
        path = world / "events" / "part-00000.parquet" if table == "events" else world / f"{table}.parquet"
        frame = pd.read_parquet(path).head(RECORDS)
        buf = io.BytesIO()
        frame.to_parquet(buf, index=False)
        seeds.append(Seed("generic", table, f"{table}.parquet", "parquet", buf.getvalue()))
        seeds.append(Seed("generic", table, f"{table}.csv", "csv", frame.to_csv(index=False).encode()))
        jsonl = frame.assign(properties=frame["properties"].map(lambda v: None if v is None else json.loads(v)))
        seeds.append(
            Seed(
                "generic",
                table,
                f"{table}.jsonl",
                "jsonl",
                jsonl.to_json(orient="records", lines=True, date_format="iso").encode(),
            )
        )
    return seeds


def _vendor_seeds(files: dict[str, list[Path]]) -> list[Seed]:
    seeds = []
    for reader, paths in files.items():
        if reader in ("mixpanel", "amplitude", "mailchimp"):  # one file of many of the same kind: the largest
            paths = [max(paths, key=lambda p: p.stat().st_size)]
        for path in paths:
            suffix = path.suffix.lower()
            if suffix == ".csv":
                fmt, data = "csv", _trim_csv(path)
            elif suffix == ".jsonl":
                fmt, data = "jsonl", _trim_lines(path.read_bytes())
            elif suffix == ".zip":
                fmt, data = "zip", _trim_zip(path)
            else:
                fmt, data = "json", _trim_json(path)
            seeds.append(Seed(reader, path.stem, path.name, fmt, data))
            if reader in ("mixpanel", "amplitude"):  # the gzipped JSON Lines both read as well
                lines = _trim_lines(path.read_bytes()) if fmt == "jsonl" else _first_member_lines(path)
                seeds.append(Seed(reader, path.stem, f"{path.stem}.json.gz", "gz", gzip.compress(lines, mtime=0)))
    return seeds


def _first_member_lines(path: Path) -> bytes:
    with zipfile.ZipFile(path) as zf:
        return _trim_lines(gzip.decompress(zf.read(zf.infolist()[0])))


@pytest.fixture(scope="module")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> SeedFiles:
    """Reader name ("generic" or a vendor reader) → its seed files, cut from a 30-customer world."""
    world = tmp_path_factory.mktemp("fuzz-world")
    synthesize(world, n_customers=30, seed=WORLD_SEED)
    vendor = write_vendor_exports(world, seed=WORLD_SEED)
    by_reader = SeedFiles()
    for seed in _canonical_seeds(world) + _vendor_seeds(vendor.files):
        by_reader.setdefault(seed.reader, []).append(seed)
    return by_reader


# -- the invariants ----------------------------------------------------------------------------
def _ingest(seed: Seed, path: Path, store: Store, *, force: bool = False) -> JourneyLibError | None:
    """Run the real entry point; return journeylib's error if it raised one (anything else escapes)."""
    try:
        if seed.reader == "generic":
            ingest_files(store, seed.target, [path], force=force)
        else:
            ingest_source_files(store, seed.reader, [path], force=force)
    except JourneyLibError as exc:
        return exc
    return None


def _digests(store: Store, *, leave_out: tuple[str, ...] = ()) -> dict[str, str]:
    out = {}
    for name in sorted(store.tables() - set(leave_out)):
        frame = store.query(f'SELECT * FROM "{name}"')
        rows = sorted(map(repr, frame.astype(str).itertuples(index=False, name=None)))
        out[name] = hashlib.sha256("\n".join(rows).encode("utf-8", errors="surrogatepass")).hexdigest()
    return out


def _unreconciled(store: Store) -> pd.DataFrame:
    log = store.query("SELECT table_name, rows_read, rows_loaded, rows_duplicate, rows_quarantined FROM ingest_log")
    return log[log["rows_read"] != log["rows_loaded"] + log["rows_duplicate"] + log["rows_quarantined"]]


def _cli(seed: Path, reader: str, target: str, db: Path) -> tuple[int, str]:
    argv = ["ingest", "--db", str(db)] + (
        [target, str(seed)] if reader == "generic" else ["--source", reader, str(seed)]
    )
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue() + err.getvalue()


def check_invariants(seed: Seed, data: bytes, folder: Path) -> None:
    """Ingest *data* as *seed*'s file (API twice, forced once, and the command line) and assert the three invariants."""
    path = folder / seed.name
    path.write_bytes(data)
    with Store(":memory:") as store:
        first = _ingest(seed, path, store)
        note(f"outcome: {'refused: ' + str(first)[:500] if first else 'loaded'}")
        assert first is None or "reader could not read the file (" not in str(first), (
            f"the reader crashed (the ingest's safety net caught it):\n{first}"
        )
        bad = _unreconciled(store)
        assert bad.empty, f"ingest_log rows that do not reconcile:\n{bad}"
        before = _digests(store)
        again = _ingest(seed, path, store)
        assert type(again) is type(first), f"a re-run ended differently: {first!r} then {again!r}"
        assert _digests(store) == before, "re-running the same ingest changed the store"
        _ingest(seed, path, store, force=True)
        assert _unreconciled(store).empty
        assert _digests(store, leave_out=("ingest_log",)) == {k: v for k, v in before.items() if k != "ingest_log"}, (
            "a forced re-read changed the store"
        )
    code, printed = _cli(path, seed.reader, seed.target, folder / "cli.duckdb")
    assert "Traceback" not in printed, printed
    assert "internal error" not in printed, printed
    assert code == (1 if first is not None else 0), (
        f"exit {code}, the API {'raised' if first else 'did not raise'}:\n{printed}"
    )


def _fuzz(seeds: list[Seed], data: st.DataObject, tmp_root: Path) -> None:
    seed = data.draw(st.sampled_from(seeds), label="seed")
    plan = data.draw(plans(seed.fmt), label="plan")
    mutated = mutate(seed.data, seed.fmt, plan)
    folder = Path(tempfile.mkdtemp(dir=tmp_root))
    try:
        check_invariants(seed, mutated, folder)
    finally:  # a store file per example: keep the disk use of a long hunt flat
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def tmp_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder for the examples' files and command-line stores."""
    return tmp_path_factory.mktemp("fuzz-examples")


# -- the tests ------------------------------------------------------------------------------------
def test_seeds_load(seeds: SeedFiles, tmp_root: Path) -> None:
    """Every seed file loads (nothing refused, some rows loaded): the fuzz starts from valid files."""
    assert set(seeds) == set(EXAMPLES)
    for reader_seeds in seeds.values():
        for seed in reader_seeds:
            path = tmp_root / "valid" / seed.reader / seed.name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(seed.data)
            with Store(":memory:") as store:
                assert _ingest(seed, path, store) is None, seed
                assert store.query("SELECT sum(rows_loaded) AS n FROM ingest_log")["n"].iloc[0] > 0, seed


def _examples(reader: str) -> int:
    return EXAMPLES[reader] * SCALE


@settings(max_examples=_examples("generic"), **FUZZ)
@given(data=st.data())
def test_fuzz_generic(seeds: SeedFiles, tmp_root: Path, data: st.DataObject) -> None:
    _fuzz(seeds["generic"], data, tmp_root)


@settings(max_examples=_examples("mixpanel"), **FUZZ)
@given(data=st.data())
def test_fuzz_mixpanel(seeds: SeedFiles, tmp_root: Path, data: st.DataObject) -> None:
    _fuzz(seeds["mixpanel"], data, tmp_root)


@settings(max_examples=_examples("amplitude"), **FUZZ)
@given(data=st.data())
def test_fuzz_amplitude(seeds: SeedFiles, tmp_root: Path, data: st.DataObject) -> None:
    _fuzz(seeds["amplitude"], data, tmp_root)


@settings(max_examples=_examples("zendesk"), **FUZZ)
@given(data=st.data())
def test_fuzz_zendesk(seeds: SeedFiles, tmp_root: Path, data: st.DataObject) -> None:
    _fuzz(seeds["zendesk"], data, tmp_root)


@settings(max_examples=_examples("intercom"), **FUZZ)
@given(data=st.data())
def test_fuzz_intercom(seeds: SeedFiles, tmp_root: Path, data: st.DataObject) -> None:
    _fuzz(seeds["intercom"], data, tmp_root)


@settings(max_examples=_examples("hubspot"), **FUZZ)
@given(data=st.data())
def test_fuzz_hubspot(seeds: SeedFiles, tmp_root: Path, data: st.DataObject) -> None:
    _fuzz(seeds["hubspot"], data, tmp_root)


@settings(max_examples=_examples("salesforce"), **FUZZ)
@given(data=st.data())
def test_fuzz_salesforce(seeds: SeedFiles, tmp_root: Path, data: st.DataObject) -> None:
    _fuzz(seeds["salesforce"], data, tmp_root)


@settings(max_examples=_examples("sendgrid"), **FUZZ)
@given(data=st.data())
def test_fuzz_sendgrid(seeds: SeedFiles, tmp_root: Path, data: st.DataObject) -> None:
    _fuzz(seeds["sendgrid"], data, tmp_root)


@settings(max_examples=_examples("mailchimp"), **FUZZ)
@given(data=st.data())
def test_fuzz_mailchimp(seeds: SeedFiles, tmp_root: Path, data: st.DataObject) -> None:
    _fuzz(seeds["mailchimp"], data, tmp_root)
