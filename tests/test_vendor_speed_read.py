"""The readers fill their blocks of lines in reused buffers, in reads of bounded size.

``iter_line_blocks`` hands each block to Arrow without a copy; the buffer under
a block is taken again for a later block only once nothing refers to it
(``BlockBuffers``), and the stream is read in pieces of at most
``READ_BYTES`` (an inflating stream returns each read as a new object). These
tests hold the blocks to the bytes read whatever the consumer keeps, check
that buffers are in fact reused when the consumer lets blocks go and let go
of at the last block, and that no read asks for more than ``READ_BYTES``.
"""

from __future__ import annotations

import gzip
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest

from journeylib.io import amplitude, common
from journeylib.io.common import ReadContext, iter_line_blocks

BlockBuffers = common._BlockBuffers


def _lines(n: int, width: int = 40) -> list[bytes]:
    return [json.dumps({"i": i, "pad": "x" * (i * 7 % width)}).encode() + b"\n" for i in range(n)]


def _spy_buffers(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record the identity of the buffer behind every block (the buffers kept are alive, so ids are not recycled)."""
    seen: list[int] = []
    get = BlockBuffers.get

    def spying(self: BlockBuffers, size: int) -> memoryview:
        view = get(self, size)
        seen.append(id(view.obj))
        return view

    monkeypatch.setattr(BlockBuffers, "get", spying)
    return seen


@pytest.mark.parametrize("keep_all", [True, False])
def test_blocks_hold_the_bytes_read_whatever_the_consumer_keeps(keep_all: bool) -> None:
    lines = _lines(3000)
    data = b"".join(lines)
    blocks = []
    got: list[bytes] = []
    for first, block in iter_line_blocks(io.BytesIO(data), block_bytes=4096):
        assert first == len(got) + 1
        got.extend(block.to_pylist())
        if keep_all:  # every block stays referenced: none of their buffers may be written again
            blocks.append(block)
    assert got == lines
    if keep_all:
        assert [x for b in blocks for x in b.to_pylist()] == lines


def test_a_buffer_is_reused_once_its_block_is_gone(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = _spy_buffers(monkeypatch)
    n = 0
    for _, block in iter_line_blocks(io.BytesIO(b"".join(_lines(3000))), block_bytes=4096):
        n += len(block)
        del block
    assert n == 3000
    assert len(seen) > 20
    assert len(set(seen)) <= 3  # the smaller first block's, then the block in hand and the one being filled


def test_a_buffer_still_referenced_is_never_reused(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = _spy_buffers(monkeypatch)
    held = list(iter_line_blocks(io.BytesIO(b"".join(_lines(3000))), block_bytes=4096))
    assert len(set(seen)) == len(seen) == len(held)


class _Recording(io.RawIOBase):
    """A stream that records the size of every read asked of it."""

    def __init__(self, data: bytes) -> None:
        self._inner = io.BytesIO(data)
        self.asked: list[int] = []

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        self.asked.append(len(b))
        return self._inner.readinto(b)


def test_the_stream_is_read_in_pieces_of_at_most_read_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(common, "READ_BYTES", 1000)
    lines = _lines(2000)
    stream = _Recording(b"".join(lines))
    got = [x for _, block in iter_line_blocks(stream, block_bytes=64_000) for x in block.to_pylist()]
    assert got == lines
    assert max(stream.asked) == 1000


def test_the_buffers_are_let_go_at_the_last_block(monkeypatch: pytest.MonkeyPatch) -> None:
    pools: list[BlockBuffers] = []
    init = BlockBuffers.__init__

    def recording(self: BlockBuffers, **kw: Any) -> None:
        init(self, **kw)
        pools.append(self)

    monkeypatch.setattr(BlockBuffers, "__init__", recording)
    blocks = iter_line_blocks(io.BytesIO(b"".join(_lines(3000))), block_bytes=4096)
    kept = []
    for _, block in blocks:
        kept.append(len(pools[0]._kept))
        del block
    assert max(kept[:-1]) >= 1
    assert kept[-1] == 0  # released before the last block is handed over (its rows are merged while the reader waits)


def test_an_amplitude_zip_reads_the_same_lines_through_reused_buffers(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(common, "BLOCK_BYTES", 2048)
    rows = [
        json.dumps({"event_type": "open", "event_time": f"2024-03-01 09:00:{i % 60:02d}.000000", "user_id": f"u{i}", "$insert_id": f"a{i}"})
        for i in range(600)
    ]
    path = tmp_path / "export.zip"
    with zipfile.ZipFile(path, "w") as z:
        for k in range(3):
            z.writestr(f"1/1_2024030{k}_0#0.json.gz", gzip.compress("\n".join(rows[k * 200 : (k + 1) * 200]).encode() + b"\n"))
    seen = _spy_buffers(monkeypatch)
    got: list[str] = []
    for part in amplitude.read_amplitude(path, ReadContext(source="amp")):
        got.extend(x.decode().rstrip("\n") for x in part.raw.to_pylist())  # type: ignore[union-attr]
        del part
    assert got == rows
    assert len(seen) > 6
    assert len(set(seen)) < len(seen) / 2  # each member's blocks fill the buffers of its earlier blocks
