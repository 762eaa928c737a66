"""`score_customers` runs its DuckDB statements under a scoring limit, gives freed heap pages back, and its results do not change."""

from __future__ import annotations

import pickle
import shutil
import sys
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import psutil
import pytest

from journeylib.config.journey import JourneyDefinition
from journeylib.customers import risk, scoring, snapshots
from journeylib.customers.risk import ChurnClassifier
from journeylib.customers.scoring import SCORING_MEMORY_LIMIT, score_customers, scoring_memory_limit
from journeylib.store import Store, memory
from journeylib.store.database import memory_size_bytes

ROOT = Path(__file__).resolve().parents[1]
FRAMES = ("scores", "reasons", "next_stage")


def _definition() -> JourneyDefinition:
    return JourneyDefinition.load(ROOT / "parameters" / "journeys" / "saas.yaml")


def _shown(limit: str) -> str:
    """How DuckDB shows *limit* in ``current_setting('memory_limit')``."""
    con = duckdb.connect()
    try:
        con.execute(f"SET memory_limit = '{limit}'")
        return str(con.execute("SELECT current_setting('memory_limit')").fetchone()[0])  # type: ignore[index]
    finally:
        con.close()


def _current(store: Store) -> str:
    return str(store.query("SELECT current_setting('memory_limit') AS m")["m"].iloc[0])


def _record_limits(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, str | None]]:
    """Record (step, DuckDB's limit, the store's setting) when the snapshots and the milestones (the largest statement) are built."""
    seen: list[tuple[str, str, str | None]] = []
    build, milestones = scoring.build_snapshots, snapshots.stage_milestones

    def recording_build(store: Store, **kwargs: Any) -> Any:
        seen.append(("snapshots", _current(store), store.settings.get("memory_limit")))
        return build(store, **kwargs)

    def recording_milestones(store: Store, *args: Any, **kwargs: Any) -> Any:
        seen.append(("milestones", _current(store), store.settings.get("memory_limit")))
        return milestones(store, *args, **kwargs)

    monkeypatch.setattr(scoring, "build_snapshots", recording_build)
    monkeypatch.setattr(snapshots, "stage_milestones", recording_milestones)  # read once, by the snapshots' stage family
    return seen


def test_the_scoring_limit_applies_while_scoring_and_the_store_s_comes_back(
    demo_store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read-only store under its default limit (600MB) scores under 250MB; its settings and connections get 600MB back."""
    monkeypatch.delenv("JOURNEYLIB_MEMORY_LIMIT", raising=False)
    seen = _record_limits(monkeypatch)
    with Store(demo_store, read_only=True) as store:
        before = dict(store.settings)
        assert before["memory_limit"] == "600MB"
        score_customers(store, definition=_definition(), progress=False)
        assert store.settings == before
        assert _current(store) == _shown("600MB")
    assert [step for step, _, _ in seen] == ["snapshots", "milestones"]
    assert all(limit == _shown(SCORING_MEMORY_LIMIT) and setting == SCORING_MEMORY_LIMIT for _, limit, setting in seen)


@pytest.mark.parametrize(
    ("store_limit", "env", "argument", "expected"),
    [
        ("1GB", None, None, "1GB"),  # the user's limit, larger
        ("100MB", None, None, "100MB"),  # the user's limit, smaller: never raised
        (None, "700MB", None, "700MB"),  # $JOURNEYLIB_MEMORY_LIMIT
        (None, None, "300MB", "300MB"),  # score_customers(memory_limit=...)
    ],
)
def test_a_limit_the_user_set_wins(
    demo_store: Path,
    monkeypatch: pytest.MonkeyPatch,
    store_limit: str | None,
    env: str | None,
    argument: str | None,
    expected: str,
) -> None:
    if env is None:
        monkeypatch.delenv("JOURNEYLIB_MEMORY_LIMIT", raising=False)
    else:
        monkeypatch.setenv("JOURNEYLIB_MEMORY_LIMIT", env)
    with Store(demo_store, read_only=True, memory_limit=store_limit) as store:
        assert scoring_memory_limit(store, argument) == argument  # None: the store's own
        seen = _record_limits(monkeypatch)
        before = dict(store.settings)
        score_customers(store, definition=_definition(), progress=False, memory_limit=argument)
        assert store.settings == before
    assert seen
    assert all(limit == _shown(expected) for _, limit, _ in seen)


def test_which_limit_scoring_takes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JOURNEYLIB_MEMORY_LIMIT", raising=False)
    with Store(":memory:") as store:  # writable default 2GB
        assert scoring_memory_limit(store) == SCORING_MEMORY_LIMIT
        assert scoring_memory_limit(store, "3GB") == "3GB"
    for given in ("2GB", "60%", "100MB", "none"):  # given by the user (2GB equals the default: not told apart)
        with Store(":memory:", memory_limit=given) as store:
            assert scoring_memory_limit(store) == (SCORING_MEMORY_LIMIT if given == "2GB" else None)
    monkeypatch.setattr(scoring, "SCORING_MEMORY_LIMIT", "3000MB")  # larger than the store's default: not raised
    with Store(":memory:") as store:
        assert scoring_memory_limit(store) is None
    assert memory_size_bytes("600MB") == 600 * 10**6
    assert memory_size_bytes("572.2 MiB") == int(572.2 * 2**20)
    assert memory_size_bytes("60%") is None


def test_the_live_connection_gets_its_limit_back_after_an_error(
    demo_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writable store keeps one connection: it runs under the scoring limit, and has its own again after a failure."""
    monkeypatch.delenv("JOURNEYLIB_MEMORY_LIMIT", raising=False)
    db = tmp_path / "copy.duckdb"
    shutil.copy(demo_store, db)
    seen: list[str] = []

    def failing_build(store: Store, **kwargs: Any) -> Any:
        seen.append(_current(store))
        raise RuntimeError("stop")

    monkeypatch.setattr(scoring, "build_snapshots", failing_build)
    with Store(db) as store:
        assert _current(store) == _shown("2GB")
        with pytest.raises(RuntimeError, match="stop"):
            score_customers(store, definition=_definition(), ticket_scores=None, progress=False)
        assert seen == [_shown(SCORING_MEMORY_LIMIT)]
        assert _current(store) == _shown("2GB")
        assert store.settings["memory_limit"] == "2GB"


def test_the_results_are_those_without_the_scoring_limit_and_the_trims(
    demo_store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Scoring under 250MB with the heap trimmed between steps gives every frame of scoring under 600MB without trims."""
    monkeypatch.delenv("JOURNEYLIB_MEMORY_LIMIT", raising=False)
    trims: list[int] = []
    trim = scoring.give_back_freed_memory

    def counting() -> bool:
        trims.append(1)
        return trim()

    monkeypatch.setattr(scoring, "give_back_freed_memory", counting)
    with Store(demo_store, read_only=True) as store:
        new = score_customers(store, definition=_definition(), progress=False)
    assert len(trims) == 4  # after the tickets, after the snapshots, after the fit, before the next stage
    monkeypatch.setattr(scoring, "give_back_freed_memory", lambda: False)
    monkeypatch.setattr(risk, "give_back_freed_memory", lambda: False)
    with Store(demo_store, read_only=True) as store:
        old = score_customers(store, definition=_definition(), progress=False, memory_limit="600MB")
    assert len(new.scores) > 20
    for name in FRAMES:
        pd.testing.assert_frame_equal(getattr(new, name), getattr(old, name), check_exact=True)
    pd.testing.assert_frame_equal(new.snapshots.data, old.snapshots.data, check_exact=True)
    assert new.training == old.training
    assert new.model_version == old.model_version


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim is looked up on Linux only")
def test_freed_memory_is_given_back_with_glibc_and_nothing_happens_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    import ctypes

    try:
        ctypes.CDLL(None).gnu_get_libc_version  # noqa: B018
    except AttributeError:
        pytest.skip("not glibc")
    memory._malloc_trim.cache_clear()
    assert memory._malloc_trim() is not None
    calls: list[int] = []
    with monkeypatch.context() as m:
        m.setattr(memory, "_malloc_trim", lambda: calls.append)
        assert memory.give_back_freed_memory() is True
    assert calls == [0]
    # the real one: free pages between blocks still in use go back to the system
    proc = psutil.Process()
    blocks = [bytearray(100_000) for _ in range(2_000)]  # 200 MB of heap chunks (under the mmap threshold)
    for b in blocks:
        b[::4096] = b"x" * len(b[::4096])  # touch every page
    kept = blocks[::10]
    del blocks
    before = proc.memory_info().rss
    assert memory.give_back_freed_memory() is True
    assert before - proc.memory_info().rss > 50 * 2**20
    del kept
    monkeypatch.setattr(sys, "platform", "darwin")
    memory._malloc_trim.cache_clear()
    try:
        assert memory._malloc_trim() is None
        assert memory.give_back_freed_memory() is False
    finally:
        monkeypatch.undo()
        memory._malloc_trim.cache_clear()


@pytest.mark.filterwarnings("ignore::journeylib.exceptions.StatisticalWarning")
def test_the_customer_day_pairs_hold_no_text(demo_store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The pairs query names customers by position (no text object per pair); the table has one id object per customer."""
    results: list[pd.DataFrame] = []
    query = Store.query

    def recording(self: Store, sql: str, *args: Any, **kwargs: Any) -> pd.DataFrame:
        out = query(self, sql, *args, **kwargs)
        if "churned_before" in sql:
            results.append(out)
        return out

    monkeypatch.setattr(Store, "query", recording)
    with Store(demo_store, read_only=True) as store:
        snap = snapshots.build_snapshots(store, definition=_definition(), test_every_days=1)
    assert len(results) == 2  # the grid's pairs and the finer test grid's
    for pairs in results:
        assert len(pairs) > 100
        assert not any(pd.api.types.is_object_dtype(dtype) for dtype in pairs.dtypes), pairs.dtypes
    ids = snap.data["customer_id"]
    assert len({id(x) for x in ids}) == ids.nunique()
    assert ids.map(type).eq(str).all()


def _prepared_frame(n: int = 500, seed: int = 5) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "segment": rng.choice(np.asarray(["smb", "mid", "ent", None], dtype=object), n),
            "plan": rng.choice(np.asarray(["a", "b", "c", "d", "e"], dtype=object), n),
            "activity_7d": rng.poisson(5, n),
            "ratio": np.where(rng.random(n) < 0.2, np.nan, rng.normal(size=n)),
            "users": rng.integers(1, 9, n),
        }
    )
    frame.loc[n - 3, "plan"] = "only-last"  # a category first seen in the last block
    return frame, (rng.random(n) < 0.3).astype(int)


@pytest.mark.parametrize("block_rows", [1, 37, 374])
def test_the_preparing_step_in_blocks_is_the_one_fitted_on_all_rows(
    monkeypatch: pytest.MonkeyPatch, block_rows: int
) -> None:
    """Fitted on the first row of each category and transformed in blocks: the same fitted step (pickled) and array, bit for bit."""
    frame, y = _prepared_frame()
    mask = np.ones(len(frame), dtype=bool)
    mask[::4] = False
    cats = ["segment", "plan"]
    nums = [c for c in frame.columns if c not in cats]
    whole = ChurnClassifier("boosting")._pipeline(cats, nums)
    expected = whole[:-1].fit_transform(risk._text_rows(frame, mask, cats), y[mask])
    monkeypatch.setattr(risk, "PREPARE_BLOCK_ROWS", block_rows)
    blocks = ChurnClassifier("boosting")._pipeline(cats, nums)
    got = risk._prepare_in_blocks(blocks[:-1], frame, mask, cats, y[mask])
    assert got is not None
    assert got.dtype == expected.dtype
    assert got.shape == expected.shape
    assert got.tobytes() == expected.tobytes()
    assert pickle.dumps(blocks[:-1][0]) == pickle.dumps(whole[:-1][0])
    monkeypatch.setattr(risk, "PREPARE_BLOCK_ROWS", len(frame))  # one block or less: fitted as before
    assert (
        risk._prepare_in_blocks(ChurnClassifier("boosting")._pipeline(cats, nums)[:-1], frame, mask, cats, y[mask])
        is None
    )
    assert (
        risk._prepare_in_blocks(ChurnClassifier("logistic")._pipeline(cats, nums)[:-1], frame, mask, cats, y[mask])
        is None
    )


@pytest.mark.filterwarnings("ignore::journeylib.exceptions.StatisticalWarning")
def test_the_churn_model_is_the_same_with_blocks(demo_store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The calibrated boosted model fitted with its preparing step in blocks predicts what the usual fit predicts, bit for bit."""
    with Store(demo_store, read_only=True) as store:
        snap = snapshots.build_snapshots(store, definition=_definition())
    lab = snap.labelled
    X, y, t = lab[snap.feature_columns], lab["churned"].astype(int).to_numpy(), lab["as_of_day"].to_numpy()
    usual = ChurnClassifier().fit(X, y, time=t)
    calls: list[int] = []
    blocks = risk._prepare_in_blocks

    def counting(*args: Any, **kwargs: Any) -> Any:
        out = blocks(*args, **kwargs)
        calls.append(out is not None)
        return out

    monkeypatch.setattr(risk, "PREPARE_BLOCK_ROWS", 101)
    monkeypatch.setattr(risk, "_prepare_in_blocks", counting)
    blocked = ChurnClassifier().fit(X, y, time=t)
    assert calls == [True]
    assert len(X) > 1000
    a, b = usual.predict_proba(snap.data[snap.feature_columns]), blocked.predict_proba(snap.data[snap.feature_columns])
    assert a.tobytes() == b.tobytes()
    assert pickle.dumps(usual.base_estimator_.named_steps["prepare"]) == pickle.dumps(
        blocked.base_estimator_.named_steps["prepare"]
    )


@pytest.mark.parametrize("block_rows", [1, 3, 1000])
def test_rows_as_records_in_blocks_are_the_whole_frame_s(block_rows: int) -> None:
    """Values, their Python types and the keys are those of ``to_dict(orient="records")`` of the whole frame."""
    frame = pd.DataFrame(
        {
            "customer_id": ["a", "b", None, "d", "e"],
            "n": np.arange(5, dtype="int64"),
            "x": [0.5, np.nan, -0.0, 2.0, 1e300],
            "stage": pd.Series(["s1", None, "s2", "s1", np.nan], dtype=object),
            "flag": [True, False, True, True, False],
            "when": pd.to_datetime(["2025-01-01", None, "2025-01-03", "2025-01-04", "2025-01-05"], utc=True),
        },
        index=[10, 11, 12, 13, 14],
    )
    whole = [{str(k): v for k, v in r.items()} for r in frame.reset_index(drop=True).to_dict(orient="records")]
    got = list(scoring._records(frame, block_rows=block_rows))
    assert len(got) == len(whole)
    for a, b in zip(got, whole, strict=True):
        assert list(a) == list(b)
        assert [type(v) for v in a.values()] == [type(v) for v in b.values()]
        assert [repr(v) for v in a.values()] == [repr(v) for v in b.values()]
