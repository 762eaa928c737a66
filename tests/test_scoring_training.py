"""`score_customers` reads its training rows in place: the same model version, training figures and snapshot table."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _builders import ROOT

import journeylib
from journeylib.config import JourneyDefinition
from journeylib.customers.risk import MODEL_VERSION
from journeylib.customers.scoring import RiskScores, score_customers
from journeylib.store import Store


@pytest.fixture(scope="module")
def scored(demo_store: Path) -> RiskScores:
    definition = JourneyDefinition.load(ROOT / "parameters" / "journeys" / "saas.yaml")
    with Store(demo_store, read_only=True) as store:
        return score_customers(store, definition=definition, horizon_days=30, ticket_scores=None, progress=False)


def test_model_version_is_the_hash_of_a_copy_of_the_labelled_snapshots(scored: RiskScores) -> None:
    """The version hashes the training rows without copying them; the digest equals hashing ``snapshots.labelled``."""
    snap = scored.snapshots
    train = snap.labelled
    feats = snap.feature_columns
    h = hashlib.sha256()
    h.update(pd.util.hash_pandas_object(train[["customer_id", "as_of_day", "churned", *feats]], index=False).to_numpy().tobytes())
    params = {k: (v if isinstance(v, (int, float, str, bool)) or v is None else repr(v)) for k, v in scored.model.get_params().items()}
    h.update(json.dumps({"params": params, "features": feats, "horizon_days": 30, "journeylib": journeylib.__version__,
                         "model": MODEL_VERSION}, sort_keys=True).encode())
    assert scored.model_version == f"{MODEL_VERSION}-{h.hexdigest()[:12]}"
    t = scored.training
    assert t["snapshots"] == len(train)
    assert t["churned"] == int(train["churned"].sum())
    assert t["customers"] == train["customer_id"].nunique()
    assert t["base_rate"] == int(train["churned"].sum()) / len(train)


def test_model_is_the_one_fitted_on_a_copy_of_the_labelled_snapshots(scored: RiskScores) -> None:
    """Refitting a clone of the model on ``snapshots.labelled`` gives the same risks, bit for bit."""
    from sklearn.base import clone

    snap = scored.snapshots
    train = snap.labelled
    feats = snap.feature_columns
    ref = clone(scored.model).fit(train[feats], train["churned"].to_numpy(dtype=int), time=train["as_of_day"].to_numpy())
    now = snap.data[snap.data["as_of_day"] == snap.data["as_of_day"].max()]
    np.testing.assert_array_equal(scored.model.predict_proba(now[feats]), ref.predict_proba(now[feats]))
    assert len(train)  # labelled rows exist, so the check above compared a fitted model


def test_snapshot_table_order_and_shared_text(scored: RiskScores) -> None:
    """Rows by as-of day then customer, index 0..n-1; each distinct id, segment and plan is one text object."""
    data = scored.snapshots.data
    assert isinstance(data.index, pd.RangeIndex)
    assert data.index.start == 0
    assert data.index.step == 1
    expected = data.sort_values(["as_of_day", "customer_id"], kind="mergesort", ignore_index=True)
    pd.testing.assert_frame_equal(data, expected, check_exact=True)
    assert not data.duplicated(["as_of_day", "customer_id"]).any()
    for col in ("customer_id", "segment", "plan"):
        values = data[col].dropna()
        assert len(values) > values.nunique()  # repeated values: several snapshots per customer
        assert len({id(v) for v in values}) == values.nunique(), col


def test_next_stage_does_not_depend_on_the_block_size(scored: RiskScores, demo_store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Snapshots are joined with their milestones in blocks; tiny blocks give the same next-stage table."""
    from journeylib.customers import scoring

    definition = JourneyDefinition.load(ROOT / "parameters" / "journeys" / "saas.yaml")
    with Store(demo_store, read_only=True) as store:
        whole = scoring.next_stage_data(store, definition=definition, snapshots=scored.snapshots)
        monkeypatch.setattr(scoring, "NEXT_STAGE_BLOCK_ROWS", 37)
        assert len(scored.snapshots.data) > 37 * 3
        blocks = scoring.next_stage_data(store, definition=definition, snapshots=scored.snapshots)
    pd.testing.assert_frame_equal(whole, blocks, check_exact=True)
    pd.testing.assert_frame_equal(whole, scored.next_stage, check_exact=True)
