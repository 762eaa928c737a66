"""Digest every artifact of a report run, to prove a refactoring changed no result.

Usage::

    python benchmarks/digest_report.py reports/<run-id> > before.json
    ... change the code, run the same suite again ...
    python benchmarks/digest_report.py reports/<run-id> > after.json
    diff before.json after.json        # identical when no result changed

Each Parquet table is digested by content (column names, dtypes and the
values, row order included); ``summary.json`` with its timing fields left
out; other artifact files (e.g. ``suggested_journey.yaml``) by their bytes.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import pandas as pd

TIMING_KEYS = {"seconds", "timings", "started_at", "finished_at", "elapsed_s", "run_id"}


def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k not in TIMING_KEYS}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def _frame_digest(path: Path) -> str:
    frame = pd.read_parquet(path)
    h = hashlib.sha256()
    h.update(json.dumps([list(map(str, frame.columns)), [str(t) for t in frame.dtypes]]).encode())
    h.update(pd.util.hash_pandas_object(frame.astype(str), index=True).to_numpy().tobytes())
    return h.hexdigest()[:16]


def digest(run_dir: Path) -> dict[str, str]:
    """Return ``{relative path: digest}`` for every artifact below ``run_dir``."""
    out: dict[str, str] = {}
    for path in sorted(run_dir.rglob("*")):
        if not path.is_file():
            continue
        rel = str(path.relative_to(run_dir))
        if path.suffix == ".parquet":
            out[rel] = _frame_digest(path)
        elif path.name == "summary.json":
            data = _strip(json.loads(path.read_text()))
            out[rel] = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]
        elif (path.suffix in {".yaml", ".csv"} and "artifacts" in path.parts) or path.suffix == ".yaml":
            out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    return out


if __name__ == "__main__":
    print(json.dumps(digest(Path(sys.argv[1])), indent=1, sort_keys=True))
