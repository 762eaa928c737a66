"""Report files are written all at once, also by two threads of one process at the same time.

A report run's notebook jobs convert their pages in threads of the runner's process, and each page of a run
writes the run's glossary: with a temporary name made of the process id alone, one thread's rename took the
other's temporary file away (``FileNotFoundError`` in a run with two jobs).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from journeylib.reports import artifacts
from journeylib.reports.artifacts import atomic_write
from journeylib.reports.html import write_glossary


def test_threads_writing_the_glossary_at_once_all_succeed(tmp_path: Path) -> None:
    with ThreadPoolExecutor(max_workers=4) as pool:
        pages = list(pool.map(lambda _: write_glossary(tmp_path), range(400)))
    assert set(pages) == {tmp_path / "glossary.html"}
    assert "q-value" in pages[0].read_text(encoding="utf-8")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["glossary.html"]  # no temporary file left


def test_a_failed_write_leaves_the_old_file_and_no_temporary_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = atomic_write(tmp_path / "summary.json", "old")
    assert atomic_write(path, b"new bytes").read_bytes() == b"new bytes"

    def refuse(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(artifacts.os, "replace", refuse)
    with pytest.raises(OSError, match="No space left"):
        atomic_write(path, "newer")
    assert path.read_bytes() == b"new bytes"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.json"]
