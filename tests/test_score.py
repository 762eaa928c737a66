"""Per-customer reasons, risk bands, the next stage and `journeylib score`."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest
from _builders import ROOT

from journeylib.cli import main
from journeylib.customers.risk import ChurnClassifier
from journeylib.customers.scoring import (
    RISK_BANDS,
    reason_factors_data,
    risk_band,
    risk_reasons_data,
)
from journeylib.exceptions import EmptyResultError

SCORE_COLUMNS = ["customer_id", "name", "segment", "stage", "risk", "risk_band", "risk_change_7d", "reasons", "next_stage",
                 "next_stage_probability", "model_version"]


def _planted_frame(n: int = 800, seed: int = 3) -> pd.DataFrame:
    """Snapshot-like rows where churn depends on negative tickets only; the other features are noise."""
    rng = np.random.default_rng(seed)
    neg30 = rng.poisson(0.4, n)
    frame = pd.DataFrame({
        "customer_id": [f"c{i:04d}" for i in range(n)],
        "days_since_product": rng.integers(0, 10, n).astype(float),
        "usual_gap_days": rng.uniform(1, 4, n),
        "activity_7d": rng.poisson(10, n),
        "activity_30d": rng.poisson(40, n),
        "tickets_30d": neg30 + rng.poisson(0.5, n),
        "negative_tickets_14d": np.minimum(neg30, rng.poisson(0.3, n) + neg30 // 2),
        "negative_tickets_30d": neg30,
        "users": rng.integers(1, 12, n),
        "segment": rng.choice(["A", "B"], n),
    })
    logit = -3.0 + 1.6 * neg30
    frame["churned"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return frame


FEATURES = ["days_since_product", "usual_gap_days", "activity_7d", "activity_30d", "tickets_30d", "negative_tickets_14d",
            "negative_tickets_30d", "users", "segment"]


def test_factors_group_the_snapshot_features() -> None:
    fac = reason_factors_data(FEATURES).set_index("feature")["factor"]
    assert fac["days_since_product"] == "inactivity"
    assert fac["activity_7d"] == "inactivity"  # the shortest window reads like recency
    assert fac["activity_30d"] == "activity_trend"
    assert fac["usual_gap_days"] == "activity_trend"
    assert fac["negative_tickets_14d"] == fac["negative_tickets_30d"] == "ticket_sentiment"
    assert fac["segment"] == "plan"
    assert reason_factors_data(["some_new_feature"])["factor"].tolist() == ["some_new_feature"]


@pytest.mark.parametrize("kind", ["boosting", "logistic"])
def test_the_planted_cause_is_the_top_reason(kind: str) -> None:
    frame = _planted_frame()
    model = ChurnClassifier(kind).fit(frame[FEATURES], frame["churned"])
    # the customer with the most negative tickets in 30 days, all of them in the last 14
    target = frame.assign(k=frame["negative_tickets_30d"] * 10 - frame["customer_id"].str[1:].astype(int) / 1e4)
    cid = target.sort_values("k").iloc[-1]["customer_id"]
    row = frame[frame["customer_id"] == cid]
    reasons = risk_reasons_data(model, row, features=FEATURES, reference=frame, n_background=60)
    top = reasons[(reasons["direction"] == "raises") & (reasons["rank"] == 1)].iloc[0]
    assert top["factor"] == "ticket_sentiment"
    n = int(row["negative_tickets_30d"].iloc[0])
    assert n >= 3
    assert f"{n} negative tickets in the last" in top["text"]
    assert top["value"] == n
    assert top["reference"] == frame["negative_tickets_30d"].median() or top["feature"] == "negative_tickets_14d"
    assert top["contribution"] > 0.1
    # ranks run 1.. within each direction, contributions in order
    for _, g in reasons.groupby("direction"):
        assert g["rank"].tolist() == list(range(1, len(g) + 1))
        assert g["contribution"].abs().is_monotonic_decreasing
    # a customer without negative tickets: the factor, if a reason at all, lowers the risk
    calm = frame[frame["negative_tickets_30d"] == 0].iloc[:20]
    calm_reasons = risk_reasons_data(model, calm, features=FEATURES, reference=frame)
    sentiment = calm_reasons[calm_reasons["factor"] == "ticket_sentiment"]
    assert (sentiment["direction"] == "lowers").all()


class _Linear:
    """A model whose churn probability is linear in two features: the occlusion contribution has a closed form."""

    w: ClassVar[dict[str, float]] = {"days_since_product": 0.02, "activity_7d": -0.01, "negative_tickets_30d": 0.05}

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        p = 0.3 + sum(wi * X[c].to_numpy(dtype=float) for c, wi in self.w.items())
        return np.column_stack([1 - p, p])


def test_contributions_equal_the_linear_oracle() -> None:
    X = pd.DataFrame({
        "customer_id": ["a", "b", "c", "d"],
        "days_since_product": [0.0, 5.0, 10.0, 1.0],
        "activity_7d": [4, 0, 2, 6],
        "negative_tickets_30d": [0, 2, 1, 0],
    })
    feats = ["days_since_product", "activity_7d", "negative_tickets_30d"]
    res = risk_reasons_data(_Linear(), X, features=feats, n_background=4, min_contribution=0.0, top_n=3)
    got = res.set_index(["customer_id", "factor"])["contribution"]
    # inactivity groups days_since_product and activity_7d: means 4.0 and 3.0
    # b: 0.02 * (5 - 4) - 0.01 * (0 - 3) = 0.05; sentiment: 0.05 * (2 - 0.75) = 0.0625
    assert got[("b", "inactivity")] == pytest.approx(0.05)
    assert got[("b", "ticket_sentiment")] == pytest.approx(0.0625)
    # a: 0.02 * (0 - 4) - 0.01 * (4 - 3) = -0.09 lowers; 0.05 * (0 - 0.75) = -0.0375
    row_a = res[res["customer_id"] == "a"].set_index("factor")
    assert row_a.loc["inactivity", "contribution"] == pytest.approx(-0.09)
    assert row_a.loc["inactivity", "direction"] == "lowers"
    assert row_a.loc["inactivity", "text"] == "active on the day scored (peers' median: 3 days)"
    assert res.loc[res["customer_id"] == "c", "text"].iloc[0].startswith("no activity for 10 days")
    # riskiest customer first: c (0.3 + 0.2 - 0.02 + 0.05 = 0.53)
    assert res["customer_id"].iloc[0] == "c"


def test_reasons_do_not_depend_on_the_block_size() -> None:
    """Customers × factors × background rows are stacked per block: one customer a block or all at once, same answer."""
    frame = _planted_frame(n=300)
    model = ChurnClassifier("boosting").fit(frame[FEATURES], frame["churned"])
    rows = frame.iloc[:25]
    kw = {"features": FEATURES, "reference": frame, "n_background": 7, "min_contribution": 0.0, "top_n": 9}
    one = risk_reasons_data(model, rows, chunk_rows=1, **kw)  # a block of one customer per call
    big = risk_reasons_data(model, rows, **kw)
    pd.testing.assert_frame_equal(one, big)
    # the same contributions as swapping one factor at a time by hand
    cid = rows["customer_id"].iloc[3]
    x = rows[rows["customer_id"] == cid][FEATURES]
    bg = frame[FEATURES].iloc[np.sort(np.random.default_rng(0).choice(len(frame), size=7, replace=False))]
    swapped = pd.concat([x] * 7, ignore_index=True)
    swapped["segment"] = bg["segment"].to_numpy()
    expected = model.predict_proba(x)[0, 1] - model.predict_proba(swapped)[:, 1].mean()
    got = big[(big["customer_id"] == cid) & (big["factor"] == "plan")]["contribution"]
    assert len(got) == 1
    assert got.iloc[0] == pytest.approx(expected)
    drop = reason_factors_data(["activity_drop_score_21d", "active_share_ratio_14d"])["factor"].tolist()
    assert drop == ["activity_trend", "activity_trend"]


def test_contributions_equal_every_background_row_swapped_by_hand() -> None:
    """Background rows sharing a factor's values are scored once: the contributions are still exactly the mean over all rows."""
    frame = _planted_frame(n=300)
    model = ChurnClassifier("boosting").fit(frame[FEATURES], frame["churned"])
    rows = frame.iloc[:6]
    m = 20  # many background rows share a segment, a users count or a ticket count
    res = risk_reasons_data(model, rows, features=FEATURES, reference=frame, n_background=m, min_contribution=0.0, top_n=20)
    bg = frame[FEATURES].iloc[np.sort(np.random.default_rng(0).choice(len(frame), size=m, replace=False))]
    factors = reason_factors_data(FEATURES).groupby("factor", sort=False)["feature"].agg(list)
    assert any(len(bg[cols].drop_duplicates()) < m for cols in factors)  # the shortcut is exercised
    for cid in rows["customer_id"]:
        x = rows[rows["customer_id"] == cid][FEATURES]
        risk = model.predict_proba(x)[0, 1]
        got = res[res["customer_id"] == cid].drop_duplicates("factor").set_index("factor")["contribution"]
        for factor, cols in factors.items():
            swapped = pd.concat([x] * m, ignore_index=True)
            swapped[cols] = bg[cols].to_numpy()
            expected = risk - model.predict_proba(swapped)[:, 1].mean()
            if factor in got.index:
                assert got[factor] == expected  # exact: the same numbers averaged in the same order
            else:
                assert expected == 0.0


def test_reasons_errors() -> None:
    X = pd.DataFrame({"customer_id": ["a"], "activity_7d": [1]})
    with pytest.raises(ValueError, match=r"rows lack the columns \['users'\]"):
        risk_reasons_data(_Linear(), X, features=["users"])
    with pytest.raises(ValueError, match="top_n must be a positive whole number"):
        risk_reasons_data(_Linear(), X, features=["activity_7d"], top_n=0)
    with pytest.raises(EmptyResultError, match="no rows"):
        risk_reasons_data(_Linear(), X.iloc[:0], features=["activity_7d"])


def test_risk_bands_follow_the_cut_points() -> None:
    assert risk_band([0.0, 0.0999, 0.1, 0.249, 0.25, 0.5, 1.0, np.nan]).tolist() == [
        "low", "low", "medium", "medium", "high", "very high", "very high", None]
    assert risk_band([0.3], (0.2, 0.3, 0.4)).tolist() == ["high"]
    assert RISK_BANDS == ("low", "medium", "high", "very high")
    with pytest.raises(ValueError, match="3 increasing numbers"):
        risk_band([0.3], (0.5, 0.2, 0.7))


# -- the command line --------------------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_score_writes_the_table(demo_store: Path, tmp_path: Path, suffix: str, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / f"scores{suffix}"
    code = main(["score", "--db", str(demo_store), "--out", str(out), "--definition",
                 str(ROOT / "parameters" / "journeys" / "saas.yaml"), "--horizon", "60"])
    assert code == 0, capsys.readouterr().err
    table = pd.read_csv(out) if suffix == ".csv" else pd.read_parquet(out)
    assert set(SCORE_COLUMNS) <= set(table.columns)
    assert len(table) > 10
    assert table["customer_id"].is_unique
    assert table["risk"].between(0, 1).all()
    assert table["risk"].is_monotonic_decreasing
    assert set(table["risk_band"]) <= set(RISK_BANDS)
    assert table["model_version"].nunique() == 1
    assert table["model_version"].iloc[0].startswith("churn-risk-")
    assert table["name"].notna().all()
    prob = table["next_stage_probability"].dropna()
    assert prob.between(0, 1).all()
    assert (table["risk_change_7d"].dropna().abs() <= 1).all()
    text = capsys.readouterr().out
    assert "active customers" in text
    assert f"written to {out}" in text


def test_score_refuses_an_unknown_extension(demo_store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["score", "--db", str(demo_store), "--out", str(tmp_path / "scores.xlsx")])
    err = capsys.readouterr().err
    assert code == 1
    assert err.count("\n") == 1  # one paragraph
    assert "one of .csv, .parquet; got '.xlsx'" in err


def test_score_on_a_store_without_churn_is_one_paragraph(demo_world: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from journeylib.store import Store
    from journeylib.store.ingest import ingest_folder

    world = tmp_path / "world"
    shutil.copytree(demo_world, world)
    customers = pd.read_parquet(world / "customers.parquet")
    customers["churned_at"] = pd.NaT
    customers.to_parquet(world / "customers.parquet", index=False)
    db = tmp_path / "nochurn.duckdb"
    with Store(db) as store:
        ingest_folder(store, world, source="synthetic")
    code = main(["score", "--db", str(db), "--out", str(tmp_path / "s.csv"),
                 "--definition", str(ROOT / "parameters" / "journeys" / "saas.yaml")])
    err = capsys.readouterr().err
    assert code == 1
    assert err.count("\n") == 1
    assert "holds 0 churned of" in err
    assert "Check that the store records churn" in err
    assert not (tmp_path / "s.csv").exists()


@pytest.mark.parametrize("kind", ["boosting", "logistic"])
def test_rows_unchanged_by_a_swap_are_not_rescored_and_the_contributions_stay_exact(kind: str) -> None:
    """A swap that leaves a customer's row as it was takes the customer's own risk; NaN, -0.0 and categories included."""
    frame = _planted_frame(n=300)
    frame.loc[::7, "usual_gap_days"] = np.nan
    frame.loc[::5, "days_since_product"] = -0.0
    model = ChurnClassifier(kind).fit(frame[FEATURES], frame["churned"])
    m = 12
    pick = np.sort(np.random.default_rng(0).choice(len(frame), size=m, replace=False))
    bg = frame[FEATURES].iloc[pick]
    rows = pd.concat([frame.iloc[pick[:4]], frame.iloc[:8]], ignore_index=True)  # four customers are background rows
    res = risk_reasons_data(model, rows, features=FEATURES, reference=frame, n_background=m, min_contribution=0.0, top_n=20)
    factors = reason_factors_data(FEATURES).groupby("factor", sort=False)["feature"].agg(list)
    unchanged = 0
    for cid in rows["customer_id"].unique():
        x = rows[rows["customer_id"] == cid][FEATURES].iloc[[0]]
        risk = model.predict_proba(x)[0, 1]
        got = res[res["customer_id"] == cid].drop_duplicates("factor").set_index("factor")["contribution"]
        for factor, cols in factors.items():
            swapped = pd.concat([x] * m, ignore_index=True)
            swapped[cols] = bg[cols].to_numpy()
            same = swapped[cols].eq(x[cols].to_numpy()) | (swapped[cols].isna() & x[cols].isna().to_numpy())
            unchanged += int(same.all(axis=1).sum())
            expected = risk - model.predict_proba(swapped)[:, 1].mean()
            if factor in got.index:
                assert got[factor] == expected
            else:
                assert expected == 0.0
    assert unchanged > 20  # the shortcut is exercised (the background's own rows, shared segments and counts)
