"""Run ``score_customers`` on a store and keep its frames, or compare two such runs exactly.

Run: ``.venv/bin/python benchmarks/score_equivalence.py run STORE OUT.pkl [DEFINITION]`` (default definition
``parameters/journeys/saas.yaml``; with ``PYTHONPATH=<tree>`` to run
another copy of the code, e.g. the tree before a change), then
``.venv/bin/python benchmarks/score_equivalence.py compare OLD.pkl NEW.pkl``. ``run`` prints the wall time and the
peak RSS of scoring (taken before the frames are pickled); ``compare`` checks ``scores``, ``reasons``, ``next_stage``, the snapshot frame and its catalog with
``pandas.testing.assert_frame_equal(check_exact=True)`` and ``training`` and ``model_version`` for equality, and
exits non-zero on the first difference. Used for ``benchmarks/results/scale_score.md``.
"""

from __future__ import annotations

import pickle
import resource
import sys
import time
from pathlib import Path

import pandas as pd

FRAMES = ("scores", "reasons", "next_stage", "snapshots", "catalog")


def run(store_path: str, out: str, definition: str = "parameters/journeys/saas.yaml") -> None:
    """Score every active customer of *store_path* and pickle the frames to *out*."""
    import journeylib
    from journeylib.config.journey import JourneyDefinition
    from journeylib.customers.scoring import score_customers
    from journeylib.store import Store

    t0 = time.perf_counter()
    with Store(store_path, read_only=True) as store:
        res = score_customers(store, definition=JourneyDefinition.load(definition))
    seconds = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # of scoring, before the frames are pickled
    kept = {"scores": res.scores, "reasons": res.reasons, "next_stage": res.next_stage, "snapshots": res.snapshots.data,
            "catalog": res.snapshots.catalog, "training": res.training, "model_version": res.model_version}
    Path(out).write_bytes(pickle.dumps(kept))
    sys.stdout.write(f"{journeylib.__file__}: {len(res.scores):,} customers scored in {seconds:.1f} s; peak RSS {rss:.0f} MiB\n")


def compare(old: str, new: str) -> None:
    """Raise AssertionError unless the two pickled runs hold identical frames and training figures."""
    a = pickle.loads(Path(old).read_bytes())
    b = pickle.loads(Path(new).read_bytes())
    for key in FRAMES:
        pd.testing.assert_frame_equal(a[key], b[key], check_exact=True, obj=key)
    for key in ("training", "model_version"):
        if a[key] != b[key]:
            msg = f"{key} differs: {a[key]!r} vs {b[key]!r}"
            raise AssertionError(msg)
    sys.stdout.write(f"identical: {', '.join(f'{k} {a[k].shape}' for k in FRAMES)}, training, model_version\n")


if __name__ == "__main__":
    if len(sys.argv) in (4, 5) and sys.argv[1] == "run":
        run(sys.argv[2], sys.argv[3], *sys.argv[4:])
    elif len(sys.argv) == 4 and sys.argv[1] == "compare":
        compare(sys.argv[2], sys.argv[3])
    else:
        sys.stderr.write("usage: score_equivalence.py run STORE OUT.pkl [DEFINITION] | compare OLD.pkl NEW.pkl\n")
        sys.exit(2)
