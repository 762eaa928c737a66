"""Shared reader machinery: inflating gzip streams and splitting them into blocks of lines."""

from __future__ import annotations

import gzip
import io
import random
import zlib

import pytest

from journeylib.exceptions import SourceFormatError
from journeylib.io.common import Caps, iter_line_blocks, open_inflating


def inflate(data: bytes, *, step: int = 7, caps: Caps | None = None) -> bytes:
    """Read *data* through :func:`open_inflating` in reads of *step* bytes."""
    fh = open_inflating(io.BufferedReader(io.BytesIO(data)), label="x.gz", caps=caps or Caps())
    out = bytearray()
    buf = bytearray(step)
    while n := fh.readinto(buf):
        out += buf[:n]
    return bytes(out)


_RNG = random.Random(3)
#: About 3 MiB of JSON Lines (more than one read of the stream) compressing about 3:1.
PAYLOAD = _RNG.randbytes(5_000) + b"".join(b'{"event":"e","i":%d,"r":"%s"}\n' % (i, _RNG.randbytes(8).hex().encode()) for i in range(60_000))
ONE = gzip.compress(PAYLOAD, mtime=0)


@pytest.mark.parametrize(
    "data",
    [
        ONE,
        ONE + gzip.compress(b"more\n"),  # members in a row
        ONE + b"\x00" * 100,  # zero padding after a member
        ONE + b"\x00" * 5 + gzip.compress(b"x"),
        gzip.compress(b"") + ONE,  # an empty member first
        gzip.compress(PAYLOAD, compresslevel=1),
    ],
    ids=["one", "two members", "padding", "padding then member", "empty member", "level 1"],
)
@pytest.mark.parametrize("step", [1, 4096, 64 << 20])
def test_gzip_streams_inflate_as_the_gzip_module_reads_them(data: bytes, step: int) -> None:
    if step == 1:  # byte by byte: the first 20,000 inflated bytes
        fh = open_inflating(io.BufferedReader(io.BytesIO(data)), label="x.gz", caps=Caps())
        assert bytes(fh.read(20_000)) == gzip.decompress(data)[:20_000]
        return
    assert inflate(data, step=step) == gzip.decompress(data)


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (ONE[:-10], EOFError),  # truncated in the trailer
        (ONE[: len(ONE) // 2], EOFError),  # truncated in the data
        (ONE[:5], EOFError),  # truncated in the header
        (ONE[:-8] + bytes([ONE[-8] ^ 1]) + ONE[-7:], gzip.BadGzipFile),  # CRC that does not match
        (ONE[:-4] + bytes([ONE[-4] ^ 1]) + ONE[-3:], gzip.BadGzipFile),  # length that does not match
        (ONE + b"garbage", gzip.BadGzipFile),  # what follows a member is not one
    ],
    ids=["trailer cut", "data cut", "header cut", "bad CRC", "bad length", "trailing garbage"],
)
def test_damaged_gzip_streams_fail_as_the_gzip_module_does(data: bytes, error: type[Exception]) -> None:
    with pytest.raises((EOFError, zlib.error, OSError)):
        gzip.decompress(data)  # the standard library refuses them too
    with pytest.raises(error):
        inflate(data, step=1 << 20)


def test_inflation_cap_counts_the_compressed_bytes_read() -> None:
    bomb = gzip.compress(b"\x00" * (8 << 20))
    with pytest.raises(SourceFormatError, match=r"inflates at more than 200:1"):
        inflate(bomb, step=1 << 20)
    with pytest.raises(SourceFormatError, match=r"inflates to more than 1,000,000 bytes"):
        inflate(ONE, step=1 << 20, caps=Caps(max_decompressed_bytes=1_000_000))


@pytest.mark.parametrize("block_bytes", [1, 3, 64, 1 << 20])
def test_line_blocks_cover_every_line_once(block_bytes: int) -> None:
    lines = [b"", b"a", b'{"k": "' + b"v" * 100 + b'"}', b"\r", b"last"]
    data = b"\n".join(lines)  # the last line has no newline
    got: list[bytes] = []
    for first, block in iter_line_blocks(io.BytesIO(data), block_bytes=block_bytes):
        assert first == len(got) + 1
        got += block.to_pylist()
    assert got == [line + b"\n" for line in lines]
