"""Scoring's steps hold less at once; what they compute does not change.

The next stage is found from each customer's entry times per stage (no join of snapshots with milestones), the same
as the join it replaces; the boosted model's training and validation parts are written directly by its preparing
step, the same model bit for bit (and the same when a category of the validation part forces the usual split).
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
from journeylib.customers import risk, scoring
from journeylib.customers.risk import ChurnClassifier
from journeylib.customers.snapshots import Snapshots, build_snapshots
from journeylib.exceptions import StatisticalWarning
from journeylib.journey.stages import stage_milestones
from journeylib.store import Store

ROOT = Path(__file__).resolve().parents[1]


def _definition() -> JourneyDefinition:
    return JourneyDefinition.load(ROOT / "parameters" / "journeys" / "saas.yaml")


def _joined_next_stage_rows(snapshots: Snapshots, milestones: pd.DataFrame, definition: JourneyDefinition) -> pd.DataFrame:
    """The next stage as it was found before: each snapshot joined with its customer's milestones."""
    names = definition.stage_names
    ms = scoring._entered_stages(milestones, definition)  # the entries both ways read; the join is the old part
    keys = snapshots.data[["customer_id", "as_of_day"]].copy()
    keys["customer_id"] = keys["customer_id"].astype(str)
    j = keys.merge(ms, on="customer_id", how="left")
    j = j[j["entered_dayf"] < j["as_of_day"] + 1]
    top = j.groupby(["customer_id", "as_of_day"], sort=False)["stage_order"].max()
    nxt = scoring._ordered_next(definition)
    cur = keys.merge(top.rename("ordered_stage").reset_index(), on=["customer_id", "as_of_day"], how="left")
    cur["next_order"] = [nxt.get(int(k) if pd.notna(k) else -1) for k in cur["ordered_stage"]]
    entered = ms.set_index(["customer_id", "stage_order"])["entered_dayf"]
    idx = pd.MultiIndex.from_arrays([cur["customer_id"], cur["next_order"].fillna(-1).astype("int64")])
    cur["next_entered_dayf"] = entered.reindex(idx).to_numpy()
    cur["next_stage"] = [names[int(k)] if pd.notna(k) else None for k in cur["next_order"]]
    return cur[["customer_id", "as_of_day", "next_stage", "next_entered_dayf"]]


@pytest.fixture(scope="module")
def history(demo_store: Path) -> tuple[Snapshots, pd.DataFrame]:
    """Weekly snapshots of the demo store (no ticket scores) and the scope's milestone frame."""
    with Store(demo_store, read_only=True) as store, warnings.catch_warnings():
        warnings.simplefilter("ignore", StatisticalWarning)
        snap = build_snapshots(store, definition=_definition())
        ms = stage_milestones(store, _definition(), snap.scope.replace(sample_n=0, random_state=0))
    return snap, ms


@pytest.mark.parametrize("block_rows", [37, 100_000])
def test_the_next_stage_is_the_one_the_join_found(
    history: tuple[Snapshots, pd.DataFrame], monkeypatch: pytest.MonkeyPatch, block_rows: int
) -> None:
    snap, ms = history
    definition = _definition()
    monkeypatch.setattr(scoring, "NEXT_STAGE_BLOCK_ROWS", block_rows)
    got = scoring._next_stage_rows(snap, scoring._entered_stages(ms, definition), definition)
    expected = _joined_next_stage_rows(snap, ms, definition)
    pd.testing.assert_frame_equal(got, expected.reset_index(drop=True), check_exact=True)
    assert got["next_stage"].nunique() > 2  # several next stages, and none after the last (None) among them
    assert got["next_entered_dayf"].notna().any()
    assert got["next_entered_dayf"].isna().any()


def test_the_next_stage_with_free_stages_and_customers_without_milestones(history: tuple[Snapshots, pd.DataFrame]) -> None:
    """A definition with a free-order milestone, a snapshot whose customer has no milestone row, entries on the as-of day's end."""
    snap, ms = history
    base = _definition()
    stages = [s.model_copy(update={"order": "any"}) if k == 2 else s for k, s in enumerate(base.stages)]
    definition = base.model_copy(update={"stages": stages})
    assert definition.free_stages == {base.stage_names[2]}
    rows = snap.data[["customer_id", "as_of_day", "stage", "churned"]].head(400).copy()
    rows.loc[rows.index[:5], "customer_id"] = "no-such-customer"
    few = Snapshots(**{**snap.__dict__, "data": rows})
    ms = ms.copy()
    ms["entered_at"] = pd.to_datetime(ms["entered_at"], utc=True)
    # one customer entered every stage exactly at the end of a snapshot's day (not by then), another just before it
    for row, shift in ((10, pd.Timedelta(0)), (11, pd.Timedelta(microseconds=1))):
        who = (ms["customer_id"].astype(str) == str(rows["customer_id"].iloc[row])) & ms["entered_at"].notna()
        end = pd.Timestamp("1970-01-01", tz="UTC") + pd.Timedelta(days=int(rows["as_of_day"].iloc[row]) + 1)
        ms.loc[who, "entered_at"] = end - shift
    got = scoring._next_stage_rows(few, scoring._entered_stages(ms, definition), definition)
    expected = _joined_next_stage_rows(few, ms, definition)
    pd.testing.assert_frame_equal(got, expected.reset_index(drop=True), check_exact=True)
    assert got["next_stage"].iloc[10] == definition.stage_names[0]  # nothing entered by the end of its day
    assert got["next_stage"].iloc[11] != definition.stage_names[0]


def _training_frame(n: int, seed: int, *, singletons: int = 0) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    plan = rng.choice(np.asarray(["a", "b", "c", None], dtype=object), n)
    plan[:singletons] = [f"only-{k}" for k in range(singletons)]  # categories seen on one row each
    frame = pd.DataFrame({
        "segment": rng.choice(np.asarray(["smb", "mid", "ent"], dtype=object), n),
        "plan": plan,
        "activity_7d": rng.poisson(4, n),
        "ratio": np.where(rng.random(n) < 0.2, np.nan, rng.normal(size=n)),
        "users": rng.integers(1, 9, n),
    })
    y = (rng.random(n) < 0.15 + 0.2 * (frame["activity_7d"].to_numpy() < 2)).astype(int)
    t = np.sort(rng.integers(0, 40, n)) * 7
    return frame, y, t


@pytest.mark.parametrize("singletons", [0, 40])
def test_the_boosted_model_given_its_parts_is_the_usual_one(monkeypatch: pytest.MonkeyPatch, singletons: int) -> None:
    """Parts written by the preparing step (or, when a category is only in the validation part, the array put back
    together): the model ``pipeline.fit`` makes, bit for bit."""
    frame, y, t = _training_frame(16_000, 4, singletons=singletons)
    monkeypatch.setattr(risk, "PREPARE_BLOCK_ROWS", 997)
    parts: list[bool] = []
    covered: list[bool] = []
    blocks, check = risk._prepare_in_blocks, risk._validation_covered

    def preparing(*args: Any, **kwargs: Any) -> Any:
        parts.append("parts" in kwargs)
        return blocks(*args, **kwargs)

    def checking(*args: Any) -> bool:
        covered.append(check(*args))
        return covered[-1]

    monkeypatch.setattr(risk, "_prepare_in_blocks", preparing)
    monkeypatch.setattr(risk, "_validation_covered", checking)
    got = ChurnClassifier(max_iter=12).fit(frame, y, time=t)
    assert parts[0] is True  # the parts were written directly
    assert covered == [singletons == 0]  # with categories only in the validation part: put back together
    assert got.base_estimator_.named_steps["model"].do_early_stopping_

    monkeypatch.setattr(risk, "_prepare_in_blocks", blocks)
    monkeypatch.setattr(risk, "_validation_indices", lambda *args: None)  # the model splits its rows itself
    usual = ChurnClassifier(max_iter=12).fit(frame, y, time=t)
    np.testing.assert_array_equal(got.predict_proba(frame), usual.predict_proba(frame))
    assert pickle.dumps(got.base_estimator_) == pickle.dumps(usual.base_estimator_)
    assert pickle.dumps(got.estimator_) == pickle.dumps(usual.estimator_)


def test_the_parts_are_the_rows_of_the_whole_array(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each part holds the transformed rows at its positions, whatever the block size."""
    frame, y, _ = _training_frame(3000, 8)
    mask = np.ones(len(frame), dtype=bool)
    mask[::5] = False
    cats = ["segment", "plan"]
    nums = [c for c in frame.columns if c not in cats]
    monkeypatch.setattr(risk, "PREPARE_BLOCK_ROWS", 101)
    whole = risk._prepare_in_blocks(ChurnClassifier()._pipeline(cats, nums)[:-1], frame, mask, cats, y[mask])
    order = np.random.default_rng(1).permutation(int(mask.sum()))
    a, b = order[:1700], order[1700:]
    got = risk._prepare_in_blocks(ChurnClassifier()._pipeline(cats, nums)[:-1], frame, mask, cats, y[mask], parts=(a, b))
    assert whole is not None
    assert got is not None
    assert got[0].tobytes() == whole[a].tobytes()
    assert got[1].tobytes() == whole[b].tobytes()
    assert risk._prepare_in_blocks(ChurnClassifier()._pipeline(cats, nums)[:-1], frame, mask, cats, y[mask],
                                   parts=(a, b[:0])) is None  # an empty part: fitted as usual


def test_scoring_runs_the_milestone_statement_once(demo_store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a cache, the next-stage step reads the entries kept from the snapshots' milestone frame."""
    from journeylib.journey import stages

    calls: list[int] = []
    compute = stages.compute_stages

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return compute(*args, **kwargs)

    monkeypatch.setattr(stages, "compute_stages", counting)
    with Store(demo_store, read_only=True) as store:
        res = scoring.score_customers(store, definition=_definition(), ticket_scores=None, progress=False)
        assert len(calls) == 1
        nxt = scoring.next_stage_data(store, definition=_definition(), snapshots=res.snapshots)
    assert len(calls) == 2
    pd.testing.assert_frame_equal(res.next_stage, nxt, check_exact=True)


def test_the_catalog_keeps_the_families_order(demo_store: Path) -> None:
    """The stage family is built first (its statements then run beside the fewest columns); the table keeps its order."""
    with Store(demo_store, read_only=True) as store, warnings.catch_warnings():
        warnings.simplefilter("ignore", StatisticalWarning)
        snap = build_snapshots(store, definition=_definition(), compact=True)
    families = list(dict.fromkeys(snap.catalog["family"]))
    assert families == ["customer", "activity", "recency", "tickets", "email", "stages"]
    assert list(snap.data.columns[7:]) == snap.feature_columns
    assert len(snap.coded) > 10
    assert list(snap.coded) == [c for c in snap.feature_columns if c in set(snap.coded)]
