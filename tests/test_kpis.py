"""Tests of journeylib.customers.kpis (KPIs over time) and journeylib.reports.changes (what changed since the last run)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from journeylib.config.journey import JourneyDefinition
from journeylib.context import Journey
from journeylib.customers.kpis import KPI_COLUMNS, kpis_data, value_stage_of
from journeylib.reports.changes import CHANGE_COLUMNS, changes_data, changes_since_data, previous_run_dir_of

ROOT = Path(__file__).resolve().parents[1]
SAAS = ROOT / "parameters" / "journeys" / "saas.yaml"


@pytest.fixture(scope="module")
def kpis(demo_store: Path) -> pd.DataFrame:
    with Journey.open(demo_store, definition=SAAS) as j:
        return j.run(kpis_data, freq="month")


def test_kpi_columns_and_kinds(kpis: pd.DataFrame) -> None:
    assert list(kpis.columns) == KPI_COLUMNS
    assert set(kpis["kpi"]) == {"time_to_value", "stage_conversion", "churn_rate", "at_risk"}
    assert (kpis["n"] > 0).all()
    ok = kpis["value"].notna() & kpis["ci_low"].notna() & kpis["ci_high"].notna()
    assert (kpis.loc[ok, "ci_low"] <= kpis.loc[ok, "value"] + 1e-9).all()
    assert (kpis.loc[ok, "value"] <= kpis.loc[ok, "ci_high"] + 1e-9).all()


def test_churn_rate_matches_a_direct_count(kpis: pd.DataFrame, demo_store: Path) -> None:
    with Journey.open(demo_store, definition=SAAS) as j:
        cust = j.store.table("customers", columns=["customer_id", "converted_at", "churned_at"])
        as_of = j.scope.as_of
    for col in ("converted_at", "churned_at"):
        cust[col] = pd.to_datetime(cust[col], utc=True).where(lambda s: s <= as_of)
    churn = kpis[kpis["kpi"] == "churn_rate"]
    assert len(churn)
    for r in churn.itertuples():
        start, end = r.period, r.period + pd.DateOffset(months=1)
        paying = (cust["converted_at"] < start) & (cust["churned_at"].isna() | (cust["churned_at"] >= start))
        churned = paying & (cust["churned_at"] >= start) & (cust["churned_at"] < end)
        assert (r.n, r.numerator) == (int(paying.sum()), int(churned.sum()))
        assert end <= as_of  # the running month is left out


def test_stage_conversion_counts_only_cohorts_with_full_follow_up(kpis: pd.DataFrame, demo_store: Path) -> None:
    conv = kpis[kpis["kpi"] == "stage_conversion"]
    first = conv[conv["item"] == "Trial Started"]
    assert (first["value"] == 1.0).all()  # everyone enters the first stage at signup
    with Journey.open(demo_store, definition=SAAS) as j:
        signups = pd.to_datetime(j.store.table("customers", columns=["signup_at"])["signup_at"], utc=True)
        as_of = j.scope.as_of
    full = signups[signups + pd.Timedelta(days=30) <= as_of]
    assert first["n"].sum() == len(full)
    # conversion along the ordered stages can only fall
    later = conv.pivot_table(index="period", columns="item", values="value")
    assert (later["Onboarding Completed"] <= later["Trial Started"] + 1e-12).all()


def test_time_to_value_uses_the_value_stage(kpis: pd.DataFrame) -> None:
    ttv = kpis[kpis["kpi"] == "time_to_value"]
    assert set(ttv["item"]) == {"First Value Achieved"}
    assert (ttv["numerator"] <= ttv["n"]).all()
    assert ttv["definition"].str.contains("censored").all()


def test_value_stage_of() -> None:
    d = JourneyDefinition.load(SAAS)
    assert value_stage_of(d) == "First Value Achieved"
    assert value_stage_of(d, "Renewal") == "Renewal"
    with pytest.raises(ValueError, match="value_stage 'Nope' is not a stage of the definition"):
        value_stage_of(d, "Nope")


def test_value_stage_from_the_definition_or_a_loud_positional_fallback() -> None:
    import warnings

    from journeylib.exceptions import ConfigError, DataQualityWarning

    stages = [{"name": "Signed up", "rule": "signup"}, {"name": "Team Added", "rule": {"event": "invite"}},
              {"name": "Report Shared", "rule": {"event": "share"}}, {"name": "Weekly Habit", "rule": {"event": "share", "min_count": 4}}]
    declared = JourneyDefinition.from_dict({"name": "teams", "stages": stages, "value_stage": "Report Shared"})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the declared stage is used silently
        assert value_stage_of(declared) == "Report Shared"
    assert value_stage_of(declared, "Weekly Habit") == "Weekly Habit"  # the argument still wins
    silent = JourneyDefinition.from_dict({"name": "teams", "stages": stages})
    with pytest.warns(DataQualityWarning, match=r"names no value stage .* position 3 of 4, 'Report Shared'"):
        assert value_stage_of(silent) == "Report Shared"
    two = JourneyDefinition.from_dict({"name": "two", "stages": [*stages[:2], {"name": "Value A", "rule": {"event": "a"}},
                                                                   {"name": "More Value", "rule": {"event": "b"}}]})
    with pytest.warns(DataQualityWarning, match=r"2 stages of 'two' have 'value' in their name"):
        assert value_stage_of(two) == "Value A"
    with pytest.raises(ConfigError, match=r"value_stage 'Nope' is not a stage"):
        JourneyDefinition.from_dict({"name": "teams", "stages": stages, "value_stage": "Nope"})


def test_kpis_argument_errors(demo_store: Path) -> None:
    with Journey.open(demo_store, definition=SAAS) as j:
        with pytest.raises(ValueError, match="freq must be 'week' or 'month'; got 'day'"):
            j.run(kpis_data, freq="day")
        with pytest.raises(ValueError, match="conversion_days must be a positive whole number of days; got 0"):
            j.run(kpis_data, conversion_days=0)


def test_weekly_periods_start_on_monday(demo_store: Path) -> None:
    with Journey.open(demo_store, definition=SAAS) as j:
        weekly = j.run(kpis_data, freq="week")
    assert (pd.DatetimeIndex(weekly["period"]).weekday == 0).all()


# -- changes -------------------------------------------------------------------------------------
def _kpi(period: str, kpi: str, value: float, lo: float, hi: float, k: int, n: int, unit: str, item: str = "") -> dict:
    return {"period": pd.Timestamp(period, tz="UTC"), "freq": "month", "kpi": kpi, "item": item, "value": value, "ci_low": lo, "ci_high": hi,
            "numerator": k, "n": n, "unit": unit, "definition": ""}


def test_changes_hand_computed() -> None:
    prev = pd.DataFrame([
        _kpi("2024-01-01", "churn_rate", 0.05, 0.04, 0.065, 50, 1000, "share"),
        _kpi("2024-01-01", "stage_conversion", 0.40, 0.37, 0.43, 400, 1000, "share", "Paid"),
        _kpi("2024-01-01", "time_to_value", 10.0, 8.04, 11.96, 80, 100, "days", "Value"),
    ])
    cur = pd.DataFrame([
        _kpi("2024-01-01", "churn_rate", 0.05, 0.04, 0.065, 50, 1000, "share"),  # an older period: not the latest
        _kpi("2024-02-01", "churn_rate", 0.10, 0.08, 0.12, 100, 1000, "share"),
        _kpi("2024-02-01", "stage_conversion", 0.41, 0.38, 0.44, 410, 1000, "share", "Paid"),
        _kpi("2024-02-01", "time_to_value", 11.0, 9.04, 12.96, 80, 100, "days", "Value"),
    ])
    ch = changes_data(cur, prev).set_index("kpi")
    assert list(changes_data(cur, prev).columns) == CHANGE_COLUMNS
    churn = ch.loc["churn_rate"]
    # 100/1000 vs 50/1000: pooled p = 0.075, z = 0.05 / sqrt(0.075·0.925·2/1000) = 4.25
    assert churn["difference"] == pytest.approx(0.05)
    assert churn["p_value"] == pytest.approx(2 * (1 - sps.norm.cdf(0.05 / np.sqrt(0.075 * 0.925 * 2 / 1000))), rel=1e-3)
    assert churn["flagged"]
    assert churn["current_period"] == pd.Timestamp("2024-02-01", tz="UTC")
    assert not ch.loc["stage_conversion", "flagged"]  # 41% vs 40%: noise
    # medians: se = (11.96 - 8.04) / (2·1.96) = 1 each; z = 1 / sqrt(2) → p = 0.48
    assert ch.loc["time_to_value", "p_value"] == pytest.approx(2 * (1 - sps.norm.cdf(1 / np.sqrt(2))), rel=1e-3)
    assert not ch.loc["time_to_value", "flagged"]


def test_changes_compare_only_the_same_period_length() -> None:
    monthly = pd.DataFrame([_kpi("2024-01-01", "churn_rate", 0.05, 0.04, 0.065, 50, 1000, "share")])
    weekly = monthly.assign(freq="week", value=0.0125, numerator=12)
    assert changes_data(weekly, monthly).empty


def test_changes_errors() -> None:
    with pytest.raises(ValueError, match=r"the previous kpis table lacks the columns \['ci_high'"):
        changes_data(pd.DataFrame(columns=KPI_COLUMNS), pd.DataFrame(columns=["period", "freq", "kpi", "item", "value", "ci_low"]))


def _run(reports: Path, run_id: str, started: str, status: str = "succeeded", artifacts: bool = True,
         suite: str = "demo", sample: dict[str, Any] | None = None) -> Path:
    folder = reports / run_id / "10_journey_summary"
    folder.mkdir(parents=True)
    if artifacts:
        (folder / "artifacts").mkdir()
    manifest = {"status": status, "started_at": started, "suite": suite, "sample": sample,
                "notebooks": [{"name": "10_journey_summary", "status": status}]}
    (reports / run_id / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return folder


def test_previous_run_dir_of(tmp_path: Path) -> None:
    assert previous_run_dir_of("") is None
    first = _run(tmp_path, "20240101-000000-demo", "2024-01-01T00:00:00Z")
    assert previous_run_dir_of(first) is None  # a first run
    _run(tmp_path, "20240102-000000-demo", "2024-01-02T00:00:00Z", status="failed")
    _run(tmp_path, "20240103-000000-demo", "2024-01-03T00:00:00Z", artifacts=False)
    now = _run(tmp_path, "20240104-000000-demo", "2024-01-04T00:00:00Z", status="running")
    assert previous_run_dir_of(now) == first.resolve()
    _run(tmp_path, "20240105-000000-demo", "2024-01-05T00:00:00Z")  # later than this run: not "previous"
    assert previous_run_dir_of(now).name == "10_journey_summary"
    assert previous_run_dir_of(now).parent.name == "20240101-000000-demo"


def test_previous_run_dir_of_skips_other_suites_and_samples(tmp_path: Path) -> None:
    same = _run(tmp_path, "20240101-000000-weekly", "2024-01-01T00:00:00Z", suite="weekly")
    _run(tmp_path, "20240102-000000-demo", "2024-01-02T00:00:00Z", suite="demo")  # other parameter sets
    _run(tmp_path, "20240103-000000-weekly", "2024-01-03T00:00:00Z", suite="weekly", sample={"requested": 200, "random_state": 0})
    now = _run(tmp_path, "20240104-000000-weekly", "2024-01-04T00:00:00Z", status="running", suite="weekly")
    assert previous_run_dir_of(now) == same.resolve()


def test_changes_since_data_reads_the_previous_run(tmp_path: Path) -> None:
    from journeylib.exceptions import EmptyResultError
    from journeylib.reports.artifacts import write_artifacts

    first = _run(tmp_path, "20240101-000000-demo", "2024-01-01T00:00:00Z")
    now = _run(tmp_path, "20240102-000000-demo", "2024-01-02T00:00:00Z", status="running")
    cur = pd.DataFrame([_kpi("2024-02-01", "churn_rate", 0.10, 0.08, 0.12, 100, 1000, "share")])
    with pytest.raises(EmptyResultError, match="has no kpis table"):
        changes_since_data(cur, output_dir=now)
    write_artifacts(first, tables={"kpis": pd.DataFrame([_kpi("2024-01-01", "churn_rate", 0.05, 0.04, 0.065, 50, 1000, "share")])}, summary={})
    out = changes_since_data(cur, output_dir=now)
    assert out.loc[0, "flagged"]
    assert out.loc[0, "previous_run"] == str(first.resolve())
    # an explicit folder wins; no previous run at all is a "first run" note
    assert changes_since_data(cur, previous_run_dir=first).loc[0, "previous_value"] == pytest.approx(0.05)
    with pytest.raises(EmptyResultError, match="first run"):
        changes_since_data(cur, output_dir=first)
    with pytest.raises(EmptyResultError, match="computed no KPIs"):
        changes_since_data(None, output_dir=now)
