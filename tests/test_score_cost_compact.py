"""Scoring holds the snapshot table's numeric columns as codes until its scores are made; nothing it returns changes.

``compact_columns`` / ``expand_columns`` give back every column byte for byte, ``build_snapshots(compact=True)``
expanded is ``build_snapshots()``, a model fitted on a coded frame is the one fitted on the expanded frame (bit for
bit, block path included), the model version hashes the same rows, the families name grid rows by number, and the
next stage step reads the milestones once.
"""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from journeylib.config.journey import JourneyDefinition
from journeylib.customers import risk, scoring, snapshots
from journeylib.customers.risk import ChurnClassifier
from journeylib.customers.scoring import score_customers
from journeylib.customers.snapshots import build_snapshots, compact_columns, expand_columns
from journeylib.exceptions import StatisticalWarning
from journeylib.store import Store

ROOT = Path(__file__).resolve().parents[1]


def _definition() -> JourneyDefinition:
    return JourneyDefinition.load(ROOT / "parameters" / "journeys" / "saas.yaml")


def _same_bytes(a: pd.Series, b: pd.Series) -> bool:
    return a.dtype == b.dtype and a.to_numpy().tobytes() == b.to_numpy().tobytes()


@pytest.fixture(scope="module")
def snaps(demo_store: Path) -> tuple[snapshots.Snapshots, snapshots.Snapshots]:
    """(plain, compact) weekly snapshots of the demo store."""
    with Store(demo_store, read_only=True) as store, warnings.catch_warnings():
        warnings.simplefilter("ignore", StatisticalWarning)  # censored snapshots, counted
        plain = build_snapshots(store, definition=_definition())
        small = build_snapshots(store, definition=_definition(), compact=True)
    return plain, small


def test_columns_come_back_byte_for_byte() -> None:
    rng = np.random.default_rng(3)
    n = 4000
    x = rng.integers(0, 5, n).astype(float)
    x[::7] = np.nan
    odd_nan = x.copy()
    odd_nan[3] = np.frombuffer(np.uint64(0x7FF8000000000001).tobytes(), dtype=np.float64)[0]  # another NaN payload
    signed_zero = np.zeros(n)
    signed_zero[5] = -0.0
    frame = pd.DataFrame({
        "count": rng.integers(0, 300, n),
        "small": rng.integers(0, 3, n).astype("int8"),
        "share": x,
        "odd_nan": odd_nan,
        "signed_zero": signed_zero,
        "continuous": rng.random(n),
        "flag": rng.random(n) > 0.5,
        "text": np.asarray(["a", "b"] * (n // 2), dtype=object),
    }, index=pd.RangeIndex(10, 10 + n))
    small, coded = compact_columns(frame)
    assert coded == ["count", "share"]  # int8 gains nothing; another NaN payload or -0.0 would not come back
    assert all(isinstance(small[c].dtype, pd.CategoricalDtype) for c in coded)
    for c in frame.columns:
        if c not in coded:
            assert small[c] is not None
            assert np.shares_memory(small[c].to_numpy(), frame[c].to_numpy())  # kept, not copied
    back = expand_columns(small, coded)
    pd.testing.assert_frame_equal(back, frame, check_exact=True)
    for c in frame.columns:
        assert _same_bytes(back[c], frame[c]), c
    rows = np.array([3999, 0, 7, 7, 500])  # rows of a coded frame, in any order
    part = expand_columns(small.take(rows), coded)
    pd.testing.assert_frame_equal(part, frame.take(rows), check_exact=True)
    mask = frame["count"].to_numpy() > 100
    pd.testing.assert_frame_equal(expand_columns(small[mask], coded), frame[mask], check_exact=True)
    _, none = compact_columns(frame, ["continuous", "text"])
    assert none == []


def test_compact_snapshots_expand_to_the_plain_table(snaps: tuple[snapshots.Snapshots, snapshots.Snapshots]) -> None:
    plain, small = snaps
    assert plain.coded == ()
    assert plain.expanded() is plain
    assert small.coded
    assert set(small.coded) <= set(small.feature_columns)
    assert all(isinstance(small.data[c].dtype, pd.CategoricalDtype) for c in small.coded)
    assert small.data.memory_usage(deep=False).sum() < plain.data.memory_usage(deep=False).sum()
    big = small.expanded()
    assert big.coded == ()
    pd.testing.assert_frame_equal(big.data, plain.data, check_exact=True)
    for c in small.coded:
        assert _same_bytes(big.data[c], plain.data[c]), c
    pd.testing.assert_frame_equal(big.catalog, plain.catalog, check_exact=True)
    pd.testing.assert_frame_equal(big.exclusions, plain.exclusions, check_exact=True)


def test_family_statements_in_blocks_of_customers_give_the_same_table(
    demo_store: Path, snaps: tuple[snapshots.Snapshots, snapshots.Snapshots], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The window statements run for blocks of 400 grid rows (whole customers): the same table, ticket scores included."""
    plain, _ = snaps
    with Store(demo_store, read_only=True) as store, warnings.catch_warnings():
        warnings.simplefilter("ignore", StatisticalWarning)
        ids = store.query("SELECT ticket_id FROM tickets ORDER BY ticket_id")["ticket_id"]
        rng = np.random.default_rng(5)
        scores = pd.DataFrame({"ticket_id": ids, "compound": rng.uniform(-1, 1, len(ids)).round(3)})
        scores["polarity"] = np.where(scores["compound"] < -0.05, "negative", "neutral")
        whole = build_snapshots(store, definition=_definition(), ticket_scores=scores)
        monkeypatch.setattr(snapshots, "FAMILY_BLOCK_ROWS", 400)
        blocks = build_snapshots(store, definition=_definition(), ticket_scores=scores)
        again = build_snapshots(store, definition=_definition())
    assert len(plain.data) > 400 * 3
    assert "negative_tickets_30d" in blocks.data.columns
    pd.testing.assert_frame_equal(blocks.data, whole.data, check_exact=True)
    pd.testing.assert_frame_equal(blocks.catalog, whole.catalog, check_exact=True)
    pd.testing.assert_frame_equal(again.data, plain.data, check_exact=True)


def test_families_name_grid_rows_by_number() -> None:
    """``_on_grid`` with the grid row's number gives what the customer and day gave, missing rows included."""
    grid = pd.DataFrame({"customer_id": np.array(["b", "a", "c", "a"], dtype=object), "as_of_day": [1, 2, 2, 3]})
    grid["_g"] = np.arange(len(grid))
    raw = pd.DataFrame({"customer_id": ["a", "b", "a"], "day": [3, 1, 2], "is_grid": 1, "v": [30, 10, 20], "_g": [3, 0, 1]})
    by_number = snapshots._on_grid(grid, raw, day="day")
    by_key = snapshots._on_grid(grid, raw.drop(columns="_g"), day="day")
    pd.testing.assert_frame_equal(by_number, by_key, check_exact=True)
    pieces = [raw.iloc[[2]], raw.iloc[[0, 1]]]  # results of two blocks of the grid
    pd.testing.assert_frame_equal(snapshots._on_grid(grid, pieces, day="day"), by_key, check_exact=True)
    assert by_number["v"].tolist()[:2] == [10.0, 20.0]
    assert np.isnan(by_number["v"].iloc[2])
    assert list(by_number.columns) == ["customer_id", "as_of_day", "v"]


@pytest.mark.parametrize("model", ["boosting", "logistic"])
def test_a_model_fitted_on_coded_columns_is_the_same(
    snaps: tuple[snapshots.Snapshots, snapshots.Snapshots], monkeypatch: pytest.MonkeyPatch, model: str
) -> None:
    """Fitted on the coded training rows (blocks of 97 rows) or on the plain ones: the same model, bit for bit."""
    plain, small = snaps
    monkeypatch.setattr(risk, "PREPARE_BLOCK_ROWS", 97)  # the boosted model's preparing step in blocks
    feats = plain.feature_columns
    lab = plain.labelled_rows
    y = plain.data.loc[lab, "churned"].to_numpy(dtype=int)
    t = plain.data.loc[lab, "as_of_day"].to_numpy()
    ref = ChurnClassifier(model).fit(plain.data.loc[lab, feats], y, time=t)
    got = ChurnClassifier(model).fit(small.data.loc[lab, feats], y, time=t, coded=small.coded)
    assert got.categorical_features_ == ref.categorical_features_ == plain.categorical_columns
    cats = plain.categorical_columns
    pd.testing.assert_frame_equal(  # the rows the pipeline reads: the plain ones, expanded when copied
        risk._text_rows(small.data[feats], lab, cats, small.coded), risk._text_rows(plain.data[feats], lab, cats), check_exact=True
    )
    X = plain.data[feats]
    np.testing.assert_array_equal(got.predict_proba(X), ref.predict_proba(X))
    assert pickle.dumps(got.base_estimator_) == pickle.dumps(ref.base_estimator_)
    # without coded=, the coded columns would be categories: a different model
    wrong = ChurnClassifier(model).fit(small.data.loc[lab, feats], y, time=t)
    assert set(small.coded) <= set(wrong.categorical_features_)


def test_the_model_version_hashes_the_same_rows(
    snaps: tuple[snapshots.Snapshots, snapshots.Snapshots], monkeypatch: pytest.MonkeyPatch
) -> None:
    plain, small = snaps
    model = ChurnClassifier()
    feats = plain.feature_columns
    lab = plain.labelled_rows
    whole = scoring._model_version(plain.data, lab, feats, model, 60)
    monkeypatch.setattr(scoring, "HASH_BLOCK_ROWS", 41)
    assert lab.sum() > 41 * 3
    assert scoring._model_version(small.data, lab, feats, model, 60, small.coded) == whole
    assert scoring._model_version(plain.data, lab, feats, model, 60) == whole
    assert scoring._model_version(small.data, lab, feats, model, 60) != whole  # codes hashed as categories differ


def test_scoring_reads_the_milestones_once_and_returns_the_plain_table(
    demo_store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No cache given: the next stage step reads no milestone frame of its own; the table returned has no coded column."""
    calls: list[int] = []
    milestones = scoring.stage_milestones
    build = scoring.build_snapshots
    built: list[Any] = []

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return milestones(*args, **kwargs)

    def recording(*args: Any, **kwargs: Any) -> Any:
        snap = build(*args, **kwargs)
        built.append(snap)
        return snap

    monkeypatch.setattr(scoring, "stage_milestones", counting)
    monkeypatch.setattr(scoring, "build_snapshots", recording)
    with Store(demo_store, read_only=True) as store:
        res = score_customers(store, definition=_definition(), ticket_scores=None, progress=False)
        nxt = scoring.next_stage_data(store, definition=_definition(), snapshots=res.snapshots)
    assert len(calls) == 1  # in the next_stage_data call above: score_customers keeps what it reads of the snapshots' milestones
    assert built[0].coded  # scored on the coded table
    assert res.snapshots.coded == ()
    assert not any(isinstance(t, pd.CategoricalDtype) for t in res.snapshots.data.dtypes)
    pd.testing.assert_frame_equal(res.next_stage, nxt, check_exact=True)
