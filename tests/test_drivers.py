"""Drivers: 2x2 statistics by hand and against statsmodels/scipy, timing rules, thin data, planted effects, nulls."""

from __future__ import annotations

import dataclasses
import json
import math
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _builders import ROOT, T0, day, event_rows, journey_definition, memory_store
from scipy import stats
from statsmodels.stats.contingency_tables import StratifiedTable, Table2x2

from journeylib.config.journey import JourneyDefinition
from journeylib.customers.driver_views import (
    driver_lines_data,
    driver_notes_data,
    driver_search_data,
    driver_summary,
    success_indicators_data,
    top_drivers_data,
)
from journeylib.customers.drivers import DRIVER_COLUMNS, drivers_data, drivers_from_features, size_band, split_keys
from journeylib.customers.features import build_features
from journeylib.customers.outcomes import outcome_population_data
from journeylib.datasets import load_truth
from journeylib.exceptions import EmptyResultError, StatisticalWarning
from journeylib.stats import bh_qvalues, mantel_haenszel_risk_ratio, two_by_two_data
from journeylib.store import Store

AS_OF = T0 + pd.Timedelta(days=400)
CAUSAL = re.compile(r"\b(?:because|caus\w*|driv\w*|leads? to|due to|impact\w*|effect\w*|result\w* in)\b", re.IGNORECASE)

DEF = journey_definition(
    {"Trial": "signup", "Setup": {"event": "setup_completed", "within_days": 30}}, outcomes=("churn", "conversion", "expansion")
)


def make_store(customers: list[dict], events: list[tuple], **tables: pd.DataFrame) -> Store:
    with_events = {"events": event_rows(events)} if events else {}
    return memory_store(customers=customers, **with_events, **tables)


def effect_store(*, churn_a: int = 10, churn_b: int = 30, n: int = 60, segments: tuple[str, ...] = ("SMB", "Enterprise")) -> Store:
    """2n converted customers; group a completes setup on day 2, group b does not within 7 days.

    Half of group b completes setup on day 8 (after the 7-day window: it must not count).
    churn_a of group a and churn_b of group b churn on day 100 (within the 150-day horizon).
    Everybody logs in once on day 1 (a constant feature).
    """
    customers, events = [], []
    for g, churners in (("a", churn_a), ("b", churn_b)):
        for i in range(n):
            cid = f"{g}{i:03d}"
            customers.append(
                {"customer_id": cid, "segment": segments[i % len(segments)], "plan": "pro", "signup_at": day(0),
                 "converted_at": day(15), "churned_at": day(100) if i < churners else None}
            )
            events.append((cid, 1, "login"))
            if g == "a":
                events.append((cid, 2, "setup_completed"))
            elif i % 2 == 0:
                events.append((cid, 8, "setup_completed"))
    return make_store(customers, events)


# -- 2x2 statistics ---------------------------------------------------------------------------------
def test_two_by_two_hand_computed() -> None:
    # a=20 of 100 exposed, c=10 of 100 reference: RR = 0.2/0.1 = 2; OR = 20*90/(80*10) = 2.25
    # Katz: se = sqrt(1/20 - 1/100 + 1/10 - 1/100) = sqrt(0.13) -> 2*exp(+-1.95996*0.36056) = 0.98656, 4.05448
    # Woolf: se = sqrt(1/20 + 1/80 + 1/10 + 1/90) = 0.41667 -> 2.25*exp(+-0.81665) = 0.99429, 5.09155
    t = two_by_two_data([20], [80], [10], [90]).iloc[0]
    assert t["rr"] == pytest.approx(2.0)
    assert (t["rr_ci_low"], t["rr_ci_high"]) == pytest.approx((0.98656, 4.05448), abs=1e-4)
    assert t["or"] == pytest.approx(2.25)
    assert (t["or_ci_low"], t["or_ci_high"]) == pytest.approx((0.99429, 5.09155), abs=1e-4)
    # lift = 0.2 / 0.15; its interval is RR's through RR / (w1 RR + w0) with w1 = w0 = 0.5
    assert t["lift"] == pytest.approx(0.2 / 0.15)
    assert t["lift_ci_low"] == pytest.approx(0.98656 / (0.5 * 0.98656 + 0.5), abs=1e-4)
    assert t["test"] == "chi2"
    assert not t["corrected"]


def test_two_by_two_matches_statsmodels_and_scipy() -> None:
    tables = [(20, 80, 10, 90), (45, 155, 30, 270), (7, 43, 3, 47), (120, 30, 60, 90)]
    out = two_by_two_data(*zip(*tables, strict=True))
    for (a, b, c, d), (_, row) in zip(tables, out.iterrows(), strict=True):
        ref = Table2x2(np.array([[a, b], [c, d]]))
        assert row["rr"] == pytest.approx(ref.riskratio)
        assert (row["rr_ci_low"], row["rr_ci_high"]) == pytest.approx(ref.riskratio_confint(), rel=1e-9)
        assert row["or"] == pytest.approx(ref.oddsratio)
        assert (row["or_ci_low"], row["or_ci_high"]) == pytest.approx(ref.oddsratio_confint(), rel=1e-9)
        exp = stats.contingency.expected_freq([[a, b], [c, d]])
        if exp.min() < 5:
            assert row["test"] == "fisher"
            assert row["p_value"] == pytest.approx(stats.fisher_exact([[a, b], [c, d]]).pvalue)
        else:
            assert row["test"] == "chi2"
            assert row["p_value"] == pytest.approx(stats.chi2_contingency([[a, b], [c, d]], correction=False).pvalue)


def test_zero_cell_gives_a_finite_corrected_ratio_and_fisher() -> None:
    # 3 of 10 vs 0 of 10: Haldane: (3.5/11) / (0.5/11) = 7
    t = two_by_two_data([3], [7], [0], [10]).iloc[0]
    assert t["corrected"]
    assert t["rr"] == pytest.approx(7.0)
    assert np.isfinite([t["rr"], t["rr_ci_low"], t["rr_ci_high"], t["or"], t["or_ci_high"]]).all()
    assert t["test"] == "fisher"
    assert t["p_value"] == pytest.approx(stats.fisher_exact([[3, 7], [0, 10]]).pvalue)  # 0.2105


def test_empty_group_gives_nan_not_inf() -> None:
    t = two_by_two_data([0], [0], [5], [5]).iloc[0]
    assert math.isnan(t["rr"])
    assert math.isnan(t["p_value"])


def test_mantel_haenszel_risk_ratio_by_hand_and_statsmodels() -> None:
    # stratum 1: 10/100 vs 5/100; stratum 2: 30/50 vs 20/50
    # RR_MH = (10*100/200 + 30*50/100) / (5*100/200 + 20*50/100) = 20 / 12.5 = 1.6
    # Greenland-Robins: sum (n1 n0 m1 - a c N)/N^2 = 3.5 + 6.5 = 10; var = 10 / (20*12.5) = 0.04; se = 0.2
    rr, lo, hi, corrected = mantel_haenszel_risk_ratio([10, 30], [90, 20], [5, 20], [95, 30])
    assert rr == pytest.approx(1.6)
    z = stats.norm.ppf(0.975)
    assert (lo, hi) == pytest.approx((1.6 * math.exp(-z * 0.2), 1.6 * math.exp(z * 0.2)))
    assert not corrected
    st = StratifiedTable(np.array([[[10, 30], [90, 20]], [[5, 20], [95, 30]]]))
    assert rr == pytest.approx(st.riskratio_pooled)


def test_mantel_haenszel_one_stratum_is_the_crude_katz_interval() -> None:
    rr, lo, hi, _ = mantel_haenszel_risk_ratio([45], [155], [30], [270])
    t = two_by_two_data([45], [155], [30], [270]).iloc[0]
    assert (rr, lo, hi) == pytest.approx((t["rr"], t["rr_ci_low"], t["rr_ci_high"]))


def test_mantel_haenszel_without_reference_events_is_corrected_not_infinite() -> None:
    rr, lo, hi, corrected = mantel_haenszel_risk_ratio([3, 2], [7, 8], [0, 0], [10, 10])
    assert corrected
    assert np.isfinite([rr, lo, hi]).all()
    assert math.isnan(mantel_haenszel_risk_ratio([1], [0], [0], [0])[0])  # no informative stratum


def test_bh_qvalues_by_hand() -> None:
    # sorted p 0.01, 0.03, 0.04, 0.5 (m = 4): 0.04, 0.06, 0.0533, 0.5 -> monotone 0.04, 0.0533, 0.0533, 0.5
    q = bh_qvalues([0.01, 0.04, 0.03, 0.5, float("nan")])
    assert q[:4] == pytest.approx([0.04, 0.04 * 4 / 3, 0.04 * 4 / 3, 0.5])
    assert math.isnan(q[4])


def test_small_helpers() -> None:
    assert size_band([0, 1, 2, 4, 8, 16]).tolist() == ["0", "1", "2-3", "4-7", "8-15", "16+"]
    assert split_keys(" a, b ,,c") == ("a", "b", "c")
    assert split_keys(["x"]) == ("x",)
    assert split_keys(None) == ()


# -- timing rules -------------------------------------------------------------------------------------
def test_outcome_population_statuses() -> None:
    customers = [
        {"customer_id": "late", "signup_at": AS_OF - pd.Timedelta(days=3)},  # window incomplete
        {"customer_id": "recent", "signup_at": AS_OF - pd.Timedelta(days=100), "converted_at": AS_OF - pd.Timedelta(days=80)},
        {"customer_id": "trial", "signup_at": day(0)},  # never converted: not at risk of churn
        {"customer_id": "early", "signup_at": day(0), "converted_at": day(1), "churned_at": day(5)},  # churn in window
        {"customer_id": "edge", "signup_at": day(0), "converted_at": day(1), "churned_at": day(7)},  # at the window end
        {"customer_id": "in", "signup_at": day(0), "converted_at": day(15), "churned_at": day(120)},
        {"customer_id": "out", "signup_at": day(0), "converted_at": day(15), "churned_at": day(200)},  # after horizon
        {"customer_id": "future", "signup_at": day(0), "converted_at": day(15), "churned_at": AS_OF + pd.Timedelta(days=1)},
    ]
    store = make_store(customers, [("in", 1, "login")])
    pop = outcome_population_data(store, definition=DEF, outcome="churn", window_days=7, as_of=AS_OF).set_index("customer_id")
    assert pop.loc["late", "status"] == "window_incomplete"
    assert pop.loc["recent", "status"] == "followup_incomplete"
    assert pop.loc["trial", "status"] == "not_at_risk"
    assert pop.loc["early", "status"] == "outcome_before_window_end"
    assert pop.loc["edge", "status"] == "outcome_before_window_end"  # strictly after the window only
    assert pop.loc[["in", "out", "future"], "status"].eq("included").all()
    assert pop.loc["in", "outcome"] == 1.0
    assert pop.loc["out", "outcome"] == 0.0  # churned, but after the 150-day horizon
    assert pop.loc["future", "outcome"] == 0.0  # churn after as_of has not happened yet
    assert math.isnan(pop.loc["trial", "outcome"])
    conv = outcome_population_data(store, definition=DEF, outcome="conversion", window_days=7, as_of=AS_OF)
    assert conv.set_index("customer_id").loc["trial", "status"] == "included"  # everybody is at risk of converting


def test_behaviour_after_the_window_or_after_as_of_does_not_count() -> None:
    with pytest.warns(StatisticalWarning):
        out = drivers_data(effect_store(), definition=DEF, outcome="churn", window_days=7, as_of=AS_OF, min_support=10)
    row = out[out["candidate"] == "n_setup_completed_7d>=1"].iloc[0]
    # group b's day-8 setups are outside the window: 60 "did not" vs 60 "did", whatever happened later
    assert (row["n_exposed"], row["n_reference"]) == (60, 60)
    # a window must end by as_of, so nothing after as_of can be inside one
    with pytest.raises(EmptyResultError, match=r"no customer in scope .* has a complete 7-day window"):
        build_features(effect_store(), window_days=7, as_of=day(6.9))
    feats = build_features(effect_store(), window_days=7, as_of=day(7))
    assert feats.data["n_setup_completed_7d"].sum() == 60  # day-8 setups are after the window


def test_a_driver_is_recovered_with_counts_ci_and_plain_english() -> None:
    with pytest.warns(StatisticalWarning):
        out = drivers_data(effect_store(), definition=DEF, outcome="churn", window_days=7, as_of=AS_OF, min_support=10)
    assert list(out.columns) == list(DRIVER_COLUMNS)
    row = out[out["candidate"] == "n_setup_completed_7d>=1"].iloc[0]
    # did not complete setup: 30/60 churned vs 10/60: RR 3; Katz se sqrt(1/30-1/60+1/10-1/60) = sqrt(0.1)
    assert row["orientation"] == "complement"
    assert row["exposure"] == "who did not complete setup within 7 days"
    assert (row["events_exposed"], row["events_reference"]) == (30, 10)
    assert row["rr"] == pytest.approx(3.0)
    z = stats.norm.ppf(0.975)
    assert (row["rr_ci_low"], row["rr_ci_high"]) == pytest.approx((3 * math.exp(-z * math.sqrt(0.1)), 3 * math.exp(z * math.sqrt(0.1))))
    assert row["or"] == pytest.approx((30 * 50) / (30 * 10))
    assert row["rank"] == 1
    assert row["significant"]
    assert row["selected"]
    # segments alternate within both groups, so the adjusted RR equals the crude one
    assert row["rr_adjusted"] == pytest.approx(3.0)
    assert row["adjusted_for"] == "segment"  # plan and size band are constant here, so they are dropped
    assert row["line"].startswith("Customers who did not complete setup within 7 days churned 3.0× as often (50% vs 17%)")
    assert "(95% CI 1.6–5.6; 60 vs 60 customers; adjusted for segment" in row["line"]
    assert not CAUSAL.search(row["line"])
    assert row["population"] == 120
    assert row["events"] == 40
    lines = driver_lines_data(out)
    assert lines["line"].iloc[0] == row["line"]
    assert not lines["line"].str.contains(CAUSAL).any()
    summary = driver_summary(out)
    assert summary["population"] == 120
    assert summary["events"] == 40
    assert summary["top_line"] == row["line"]
    json.dumps(summary)  # JSON-safe for summary.json


def test_constant_and_missing_features_are_rows_with_reasons() -> None:
    with pytest.warns(StatisticalWarning, match="constant or missing"):
        out = drivers_data(effect_store(), definition=DEF, outcome="churn", window_days=7, as_of=AS_OF, min_support=10)
    status = out.set_index("candidate")["status"]
    assert status["n_login_7d"] == "skipped_constant"  # everybody logged in once
    assert status["email_open_rate_7d"] == "skipped_missing"  # no e-mail at all
    assert "for every analysed customer" in out.set_index("candidate").loc["n_login_7d", "reason"]
    numeric = out.select_dtypes("number")
    assert not np.isinf(numeric.to_numpy(dtype=float)).any()


@pytest.mark.parametrize(("churn_a", "churn_b", "what"), [(0, 0, "no analysed customer"), (60, 60, "every analysed customer")])
def test_no_outcome_events_or_all_events(churn_a: int, churn_b: int, what: str) -> None:
    store = effect_store(churn_a=churn_a, churn_b=churn_b)
    with pytest.warns(StatisticalWarning, match=what):
        out = drivers_data(store, definition=DEF, outcome="churn", window_days=7, as_of=AS_OF, min_support=10)
    tested = out[~out["status"].str.startswith("skipped")]
    assert tested["status"].eq("no_outcome_variation").all()
    assert not out["significant"].any()
    assert out["rr"].isna().all()
    assert driver_lines_data(out)["line"].iloc[0].startswith("No behaviour tested (0 splits of 120 customers)")


def test_below_min_support_is_a_row_not_an_estimate() -> None:
    with pytest.warns(StatisticalWarning, match="fewer than 500 customers"):
        out = drivers_data(effect_store(), definition=DEF, outcome="churn", window_days=7, as_of=AS_OF, min_support=500)
    row = out.set_index("candidate").loc["n_setup_completed_7d>=1"]
    assert row["status"] == "below_min_support"
    assert row["reason"] == "60 vs 60 customers; at least 500 needed on each side"
    assert math.isnan(row["rr"])
    assert not row["significant"]
    notes = driver_notes_data(out)
    assert notes.set_index("item").loc["below_min_support", "count"] >= 1


def test_single_segment_is_not_adjusted_for_and_says_so() -> None:
    store = effect_store(segments=("SMB",))
    with pytest.warns(StatisticalWarning, match="segment is the same for every analysed customer"):
        out = drivers_data(store, definition=DEF, outcome="churn", window_days=7, as_of=AS_OF, min_support=10)
    row = out.set_index("candidate").loc["n_setup_completed_7d>=1"]
    assert "segment" not in row["adjusted_for"]
    assert "segment is the same for every analysed customer" in row["note"]


def test_argument_errors() -> None:
    store = effect_store()
    with pytest.raises(ValueError, match="outcome 'nope' is not in the journey definition"):
        drivers_data(store, definition=DEF, outcome="nope")
    with pytest.raises(ValueError, match="min_support must be a positive"):
        drivers_data(store, definition=DEF, min_support=0)
    with pytest.raises(ValueError, match="adjust_for accepts"):
        drivers_data(store, definition=DEF, adjust_for=("weather",))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StatisticalWarning)
        with pytest.raises(EmptyResultError, match="no customer is left for the churn analysis"):
            drivers_data(store, definition=DEF, outcome="churn", window_days=7, as_of=day(20))
    with pytest.raises(ValueError, match="pass the DataFrame returned by drivers_data"):
        top_drivers_data(pd.DataFrame({"x": [1]}))


# -- the planted world ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def planted(planted_world: tuple[Path, Path]) -> tuple[Path, Store]:
    world, db = planted_world
    store = Store(db, read_only=True)
    yield world, store
    store.close()


@pytest.fixture(scope="module")
def definition() -> JourneyDefinition:
    return JourneyDefinition.from_yaml(ROOT / "parameters" / "journeys" / "saas.yaml")


@pytest.mark.slow
def test_planted_setup_churn_effect_is_recovered(planted, definition) -> None:
    world, store = planted
    truth = load_truth(world)
    planted_rr = truth["planted"]["setup_churn"]["parameters"]["risk_ratio"]
    realised = truth["planted"]["setup_churn"]["realised"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StatisticalWarning)
        out = drivers_data(store, definition=definition, outcome="churn", window_days=7, horizon_days=150,
                           as_of=truth["as_of"], property_keys="acquisition_channel,region,industry")
    row = out.set_index("candidate").loc["n_setup_completed_7d>=1"]
    # same population, exposure and outcome as truth.json's definition: the very same 2x2 table
    assert (row["n_exposed"], row["events_exposed"]) == (realised["n_exposed"], realised["events_exposed"])
    assert (row["n_reference"], row["events_reference"]) == (realised["n_unexposed"], realised["events_unexposed"])
    assert row["rr"] == pytest.approx(realised["crude_risk_ratio"], abs=1e-3)
    assert row["rr_ci_low"] < realised["crude_risk_ratio"] < row["rr_ci_high"]
    assert row["rr_ci_low"] < planted_rr < row["rr_ci_high"]
    assert row["rr_adjusted_ci_low"] < planted_rr < row["rr_adjusted_ci_high"]
    assert row["rank"] == 1
    assert row["exposure"] == "who did not complete setup within 7 days"


@pytest.mark.slow
def test_planted_integrations_conversion_effect_is_recovered_and_searched(planted, definition) -> None:
    world, store = planted
    truth = load_truth(world)
    spec = truth["planted"]["integrations_conversion"]
    realised = spec["realised"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StatisticalWarning)
        # horizon trial_days + 2 reproduces truth.json's population (signup <= as_of - 16 days)
        out = drivers_data(store, definition=definition, outcome="conversion", window_days=14, horizon_days=16,
                           as_of=truth["as_of"], property_keys="acquisition_channel,region,industry")
    by = out.set_index("candidate")
    row = by.loc["n_integration_connected_14d>=2"]
    assert (row["n_exposed"], row["events_exposed"]) == (realised["n_exposed"], realised["events_exposed"])
    assert (row["n_reference"], row["events_reference"]) == (realised["n_unexposed"], realised["events_unexposed"])
    assert row["rr_ci_low"] < realised["crude_risk_ratio"] < row["rr_ci_high"]
    assert row["rr_ci_low"] < spec["parameters"]["risk_ratio"] < row["rr_ci_high"]
    assert row["rank"] == 1
    assert row["selected"]
    assert row["orientation"] == "as_defined"
    # the threshold search: >=1 (did), >=2, >=3, >=5 were all tested and all count in the FDR family
    tried = out[out["feature"] == "n_integration_connected_14d"]
    assert set(tried["threshold"]) >= {"1", "2", "3", "5"}
    assert (tried["thresholds_tried"] == len(tried)).all()
    assert int(row["family_size"]) == int((out["status"] == "ok").sum())
    assert "plan" not in row["adjusted_for"]  # the exported plan encodes conversion
    top = success_indicators_data(out)
    assert top["candidate"].iloc[0] == "n_integration_connected_14d>=2"
    share = realised["events_exposed"] / (realised["events_exposed"] + realised["events_unexposed"])
    assert top["indicator"].iloc[0].startswith(f"{share:.0%} of converting trials had 2 or more integrations connected within 14 days")


@pytest.mark.slow
def test_null_check_fdr_holds_on_shuffled_outcomes_and_unused_features(planted, definition) -> None:
    world, store = planted
    truth = load_truth(world)
    alpha = 0.05
    runs, runs_with_any, null_tested, null_significant = 0, 0, 0, 0
    for outcome, window, horizon in (("churn", 7, 150), ("conversion", 14, 16)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", StatisticalWarning)
            feats = build_features(store, definition=definition, window_days=window, as_of=truth["as_of"],
                                   property_keys=("region", "industry"))
            pop = outcome_population_data(store, definition=definition, outcome=outcome, window_days=window,
                                          horizon_days=horizon, as_of=truth["as_of"])
            flags = pop.loc[pop["status"] == "included", ["customer_id", "outcome"]].reset_index(drop=True)
            rng = np.random.default_rng(2024)
            # 1. the global null: outcomes shuffled across customers; BH then bounds P(any "significant") by alpha
            for _ in range(40):
                shuffled = flags.assign(outcome=rng.permutation(flags["outcome"].to_numpy()))
                out = drivers_from_features(feats, shuffled, outcome=outcome, horizon_days=horizon, adjust_for=(),
                                            property_keys="region,industry")
                runs += 1
                runs_with_any += bool(out["significant"].any())
            # 2. features the simulator never uses (region, industry), redrawn per seed, beside the real signals
            for _ in range(15):
                data = feats.data.copy()
                data["prop_region"] = rng.permutation(data["prop_region"].to_numpy())
                data["prop_industry"] = rng.permutation(data["prop_industry"].to_numpy())
                redrawn = dataclasses.replace(feats, data=data)
                out = drivers_from_features(redrawn, flags, outcome=outcome, horizon_days=horizon, adjust_for=(),
                                            property_keys="region,industry")
                nulls = out[out["feature"].isin(["prop_region", "prop_industry"]) & (out["status"] == "ok")]
                null_tested += len(nulls)
                null_significant += int(nulls["significant"].sum())
                assert out["significant"].sum() > 10  # the real signals are still found
    # P(at least one false discovery | global null) <= alpha; 80 runs: allow the 99% binomial bound
    assert runs_with_any / runs <= stats.binom.ppf(0.99, runs, alpha) / runs
    # per null candidate, the rate of "significant" stays at or below the nominal level
    assert null_tested > 300
    assert null_significant / null_tested <= alpha


# -- the notebook ------------------------------------------------------------------------------------------
@pytest.mark.notebooks
@pytest.mark.slow
def test_churn_drivers_notebook_writes_every_table(demo_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import papermill as pm
    from papermill.iorw import read_yaml_file

    from journeylib.reports.artifacts import read_artifacts

    monkeypatch.setenv("REPORT_CHART_MODE", "static")
    monkeypatch.delenv("SERVER_SOFTWARE", raising=False)
    params = read_yaml_file(str(ROOT / "parameters" / "03_churn_drivers" / "smoke.yaml"))
    params.update(db=str(demo_store), output_dir=str(tmp_path / "out"), outcome="conversion", window_days=14)
    pm.execute_notebook(str(ROOT / "notebooks" / "03_churn_drivers.ipynb"), str(tmp_path / "out.ipynb"), parameters=params,
                        kernel_name="python3", cwd=str(ROOT / "notebooks"), execution_timeout=120, progress_bar=False)
    art = read_artifacts(tmp_path / "out")
    assert set(art.tables) == {"drivers", "driver_notes", "top_drivers", "driver_lines", "conversion_drivers", "success_indicators"}
    assert list(art.tables["drivers"].columns) == list(DRIVER_COLUMNS)
    assert art.summary["outcome"] == "conversion"
    assert art.summary["window_days"] == 14
    assert art.summary["population"] == int(art.tables["drivers"]["population"].iloc[0])
    assert art.summary["conversion"]["population"] > 0


# -- searched windows, data-chosen horizons, censoring, attributes, snapshots (issue 13) -----------------------
def window_store(*, n: int = 800, seed: int = 3) -> Store:
    """Half the customers do 'report_shared' on a day in [0, 10); the others on a day in [10.5, 16) or never.

    Churn (day 60-200) is 35% among those who did not share within 10 days, 12% among those who did:
    the planted window is 10 days, not the default 7 or the behaviour window.
    """
    rng = np.random.default_rng(seed)
    customers, events = [], []
    for i in range(n):
        cid = f"c{i:04d}"
        early = i % 2 == 0
        churn = rng.random() < (0.12 if early else 0.35)
        customers.append({"customer_id": cid, "segment": ("SMB", "Enterprise")[i % 3 == 0], "plan": "pro",
                          "signup_at": day(0), "converted_at": day(14),
                          "churned_at": day(float(rng.uniform(60, 200))) if churn else None})
        events.append((cid, 0.5, "login"))
        if early:
            events.append((cid, float(rng.uniform(0, 10)), "report_shared"))
        elif rng.random() < 0.8:
            events.append((cid, float(rng.uniform(10.5, 16)), "report_shared"))
    return make_store(customers, events)


def test_the_window_search_finds_a_planted_10_day_window_and_shows_its_neighbours() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StatisticalWarning)
        out = drivers_data(window_store(), definition=DEF, outcome="churn", as_of=AS_OF)
    fam = out[(out["family"] == "event:report_shared") & out["selected"]].iloc[0]
    assert fam["candidate"] == "n_report_shared_10d>=1"
    assert fam["rank"] == 1
    assert fam["significant"]
    assert int(fam["windows_tried"]) >= 6  # 1, 2, 3, 5, 7, 10, 14, 21 (and the window)
    assert "[10d" in fam["neighbours"]
    assert "7d" in fam["neighbours"]
    assert "14d" in fam["neighbours"]
    # every split tried counts in the FDR family
    assert int(fam["family_size"]) == int((out["status"] == "ok").sum())
    grid = driver_search_data(out, family="event:report_shared")
    assert grid["selected"].sum() == 1
    assert set(grid["window_days"]) >= {7, 10, 14}
    # the horizon was chosen from the data and is named in the sentence
    assert fam["horizon_basis"].startswith("the 90th percentile of the days from signup to churn")
    assert f"within {fam['horizon_days']:g} days of signup" in fam["line"]
    assert not CAUSAL.search(fam["line"])


def censored_store(*, n: int = 1200, seed: int = 5) -> tuple[Store, float]:
    """Exposed (no 'setup_completed' in 7 days) churn at a constant hazard 2x the others'; 30% sign up late (45% of the exposed, 15% of the others).

    The late signups are followed for 60 days only. True 120-day cumulative incidence ratio returned.
    """
    rng = np.random.default_rng(seed)
    lam0, hr, horizon = 0.002, 2.0, 120.0
    customers, events = [], []
    for i in range(n):
        cid = f"k{i:04d}"
        exposed = i % 2 == 0
        late = rng.random() < (0.45 if exposed else 0.15)  # 30% overall, more among the exposed
        start = 340.0 if late else 0.0  # AS_OF is day 400: late signups have 60 days of follow-up
        t = float(rng.exponential(1 / (lam0 * (hr if exposed else 1.0))))
        churn_day = start + 8 + t
        customers.append({"customer_id": cid, "segment": ("SMB", "Enterprise")[i % 3 == 0], "plan": "pro",
                          "signup_at": day(start), "converted_at": day(start + 1),
                          "churned_at": day(churn_day) if churn_day <= 400 else None})
        events.append((cid, start + 1, "login"))
        if not exposed:
            events.append((cid, start + 2, "setup_completed"))
    true_ratio = (1 - math.exp(-lam0 * hr * (horizon - 8))) / (1 - math.exp(-lam0 * (horizon - 8)))
    return make_store(customers, events), true_ratio


def test_censored_customers_are_not_non_events_and_the_km_ratio_is_unbiased() -> None:
    store, true_ratio = censored_store()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StatisticalWarning)
        out = drivers_data(store, definition=DEF, outcome="churn", window_days=7, horizon_days=120, as_of=AS_OF,
                           min_support=20)
        feats = build_features(store, window_days=7, as_of=AS_OF)
        pop = outcome_population_data(store, definition=DEF, outcome="churn", window_days=7, horizon_days=120, as_of=AS_OF)
    row = out.set_index("candidate").loc["n_setup_completed_7d>=1"]
    assert row["exposure"] == "who did not complete setup within 7 days"
    n_late = int((pop["followup_days"] < 120).sum())
    assert 0.25 < n_late / len(pop) < 0.35
    # the late signups are left out of the 2x2 table and counted, never counted as "no churn"
    assert row["n_excluded_followup"] == n_late
    assert row["n_exposed"] + row["n_reference"] == len(pop) - n_late
    assert f"{n_late:,} customers followed for less than 120 days were left out" in row["line"]
    # Kaplan-Meier keeps them, censored: its ratio is close to the truth
    assert row["n_km"] == len(pop)
    assert row["n_censored"] > 0.2 * len(pop)
    assert row["rr_km_ci_low"] < true_ratio < row["rr_km_ci_high"]
    assert abs(row["rr_km"] - true_ratio) < 0.25
    # the naive estimate that counts the censored as non-events is biased towards 1
    naive_flags = pop.loc[pop["km_eligible"], ["customer_id"]].assign(
        outcome=pop.loc[pop["km_eligible"], "km_event"].to_numpy())
    naive = drivers_from_features(feats, naive_flags, outcome="churn", horizon_days=120, adjust_for=(), min_support=20)
    naive_rr = naive.set_index("candidate").loc["n_setup_completed_7d>=1", "rr"]
    assert abs(naive_rr - true_ratio) > abs(row["rr_km"] - true_ratio)


def test_km_risk_matches_lifelines() -> None:
    from lifelines import KaplanMeierFitter

    store, _ = censored_store(n=300, seed=9)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StatisticalWarning)
        out = drivers_data(store, definition=DEF, outcome="churn", window_days=7, horizon_days=120, as_of=AS_OF,
                           min_support=20)
        pop = outcome_population_data(store, definition=DEF, outcome="churn", window_days=7, horizon_days=120, as_of=AS_OF)
    row = out.set_index("candidate").loc["n_setup_completed_7d>=1"]
    km = pop[pop["km_eligible"]].copy()
    exposed = ~km["customer_id"].str[1:].astype(int).mod(2).astype(bool)  # even ids: no setup
    for mask, col in ((exposed, "risk_km_exposed"), (~exposed, "risk_km_reference")):
        kmf = KaplanMeierFitter().fit(km.loc[mask, "km_duration"], km.loc[mask, "km_event"])
        assert row[col] == pytest.approx(1 - float(kmf.survival_function_at_times(120.0).iloc[0]), abs=1e-9)


def attribute_store(*, n: int = 600, seed: int = 0, planted: float = 2.5) -> Store:
    """Plan 'monthly' churns `planted` times as often as 'annual' and 'two_year'; 'region' (a property) is noise."""
    rng = np.random.default_rng(seed)
    customers = []
    plans = ("monthly", "annual", "two_year")
    for i in range(n):
        plan = plans[i % 3]
        p = 0.1 * (planted if plan == "monthly" else 1.0)
        customers.append({"customer_id": f"a{i:04d}", "segment": ("SMB", "Enterprise")[i % 2], "plan": plan,
                          "signup_at": day(0), "converted_at": day(14),
                          "churned_at": day(float(rng.uniform(30, 200))) if rng.random() < p else None,
                          "properties": json.dumps({"region": str(rng.choice(["north", "south", "east", "west"]))})})
    return make_store(customers, [(c["customer_id"], 1, "login") for c in customers])


def test_attribute_drivers_find_a_planted_plan_effect_vs_rest_and_vs_reference() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StatisticalWarning)
        out = drivers_data(attribute_store(), definition=DEF, outcome="churn", as_of=AS_OF, attributes="plan,region")
    by = out.set_index("candidate")
    rest = by.loc["attr_plan=monthly"]
    assert rest["significant"]
    assert rest["kind"] == "property_value"
    assert rest["exposure"] == "with plan monthly"
    vs_ref = out[(out["kind"] == "property_vs_reference") & (out["threshold"] == "monthly")]
    assert len(vs_ref) == 1
    assert vs_ref["significant"].iloc[0]
    assert out[out["significant"]].iloc[0]["feature"] == "attr_plan"
    assert "plan" not in str(rest["adjusted_for"])  # not adjusted for itself


def test_plan_as_a_property_key_reads_the_column_and_a_null_attribute_is_loud() -> None:
    store = attribute_store()
    with pytest.warns(StatisticalWarning, match="attribute 'nope' .*null for every"):
        out = drivers_data(store, definition=DEF, outcome="churn", as_of=AS_OF, property_keys="plan", attributes="nope")
    assert out.set_index("candidate").loc["attr_plan=monthly", "significant"]  # not silently null
    assert "plan read from the customers column" in out["note"].iloc[0]
    assert out.set_index("candidate").loc["attr_nope", "status"] == "skipped_missing"


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_a_null_attribute_is_not_significant_across_seeds(seed: int) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StatisticalWarning)
        out = drivers_data(attribute_store(seed=seed, planted=1.0), definition=DEF, outcome="churn", as_of=AS_OF,
                           attributes="plan,region")
    assert not out["significant"].any()


def test_a_flag_outcome_is_cross_sectional_without_events() -> None:
    rng = np.random.default_rng(7)
    customers = []
    for i in range(600):
        contract = ("month", "year", "two_year")[i % 3]
        churn = rng.random() < (0.4 if contract == "month" else 0.12)
        customers.append({"customer_id": f"t{i:04d}", "segment": "consumer", "signup_at": day(0),
                          "properties": json.dumps({"Contract": contract, "Churn": "Yes" if churn else "No"})})
    store = make_store(customers, [])
    with pytest.warns(StatisticalWarning, match="cross-sectionally"):
        out = drivers_data(store, definition=DEF, outcome="churn", outcome_field="Churn", attributes="Contract",
                           as_of=day(30))
    top = out.iloc[0]
    assert top["timing"] == "cross_sectional"
    assert top["feature"] == "attr_contract"
    assert top["exposure"] == "with Contract month"
    assert top["significant"]
    assert out.set_index("candidate").loc["attr_contract=month", "significant"]
    assert "as of 2025-01-31" in top["line"]
    assert "within" not in top["line"]
    assert "days of signup" not in top["line"]
    assert math.isnan(top["horizon_days"])
    json.dumps(driver_summary(out))


def test_snapshot_dates_at_signup_are_cross_sectional() -> None:
    rng = np.random.default_rng(8)
    customers = []
    for i in range(400):
        plan = ("basic", "pro")[i % 2]
        churn = rng.random() < (0.35 if plan == "basic" else 0.1)
        customers.append({"customer_id": f"s{i:04d}", "signup_at": day(10), "plan": plan,
                          "converted_at": day(10), "churned_at": day(10) if churn else None})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StatisticalWarning)
        out = drivers_data(make_store(customers, []), definition=DEF, outcome="churn", attributes="plan", as_of=day(11))
    assert (out["timing"] == "cross_sectional").all()
    assert "at or before signup" in out["note"].iloc[0]
    assert out.set_index("candidate").loc["attr_plan=basic", "significant"]


# -- the censoring-aware test, automatic attributes, dated outcome fields (issue 13, follow-up) --------------------
def test_censored_follow_up_ranks_and_tests_by_the_cox_hazard_ratio() -> None:
    store, _ = censored_store()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StatisticalWarning)
        out = drivers_data(store, definition=DEF, outcome="churn", window_days=7, horizon_days=120, as_of=AS_OF,
                           min_support=20)
    row = out.set_index("candidate").loc["n_setup_completed_7d>=1"]
    assert (out["estimate"][out["status"] == "ok"] == "hazard_ratio").all()
    assert row["test"] == "logrank"
    # planted constant hazards 2x: the Cox ratio over everyone followed past the window, censored ones kept
    assert row["hr_ci_low"] < 2.0 < row["hr_ci_high"]
    assert row["n_km_exposed"] + row["n_km_reference"] == row["n_km"]
    assert row["n_km"] > row["n_exposed"] + row["n_reference"]  # the censored customers are in the test
    assert row["rank"] == 1
    assert row["significant"]
    assert row["line"].startswith("Customers who did not complete setup within 7 days churned at ")
    assert "the rate of customers who completed setup within 7 days (hazard ratio of a Cox model, 95% CI" in row["line"]
    assert "Kaplan–Meier" in row["line"]
    assert "crude risk ratio" in row["line"]
    assert not CAUSAL.search(row["line"])
    # the crude test stays beside it
    assert row["p_crude"] != row["p_value"]
    assert driver_summary(out)["estimate"] == "hazard_ratio"
    with pytest.raises(ValueError, match="estimate must be one of"):
        drivers_data(store, definition=DEF, outcome="churn", as_of=AS_OF, estimate="odds")


def test_cox_hazard_ratio_and_logrank_match_lifelines() -> None:
    from lifelines import CoxPHFitter
    from lifelines.statistics import logrank_test

    store, _ = censored_store(n=400, seed=11)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StatisticalWarning)
        out = drivers_data(store, definition=DEF, outcome="churn", window_days=7, horizon_days=120, as_of=AS_OF,
                           min_support=20, estimate="hazard_ratio")
        pop = outcome_population_data(store, definition=DEF, outcome="churn", window_days=7, horizon_days=120, as_of=AS_OF)
    row = out.set_index("candidate").loc["n_setup_completed_7d>=1"]
    km = pop[pop["km_eligible"]].copy()
    km["x"] = (~km["customer_id"].str[1:].astype(int).mod(2).astype(bool)).astype(float)  # even ids: no setup (exposed)
    fit = CoxPHFitter().fit(km[["km_duration", "km_event", "x"]], "km_duration", "km_event").summary.iloc[0]
    assert row["hr"] == pytest.approx(fit["exp(coef)"], rel=1e-6)
    assert row["hr_ci_low"] == pytest.approx(fit["exp(coef) lower 95%"], rel=1e-6)
    assert row["hr_ci_high"] == pytest.approx(fit["exp(coef) upper 95%"], rel=1e-6)
    e, r = km[km["x"] == 1], km[km["x"] == 0]
    lr = logrank_test(e["km_duration"], r["km_duration"], e["km_event"], r["km_event"])
    assert row["p_value"] == pytest.approx(lr.p_value, rel=1e-9)


def test_cox_efron_ties_match_lifelines() -> None:
    from lifelines import CoxPHFitter

    from journeylib.customers import drivers as drivers_module

    rng = np.random.default_rng(4)
    n = 300
    duration = np.round(rng.exponential(40, n))  # whole days: many tied times
    event = (rng.random(n) < 0.7).astype(float)
    x = np.stack([(rng.random(n) < 0.4).astype(float), (duration > 30).astype(float) * (rng.random(n) < 0.7)])
    x[0, :40] = np.nan  # unknown values are left out of that split
    beta, se, _p, _ = vars(drivers_module)["_cox_logrank"](x, duration, event)
    for i in range(2):
        m = np.isfinite(x[i])
        fit = CoxPHFitter().fit(pd.DataFrame({"t": duration[m], "e": event[m], "x": x[i][m]}), "t", "e").summary.iloc[0]
        assert beta[i] == pytest.approx(fit["coef"], abs=1e-6)
        assert se[i] == pytest.approx(fit["se(coef)"], rel=1e-6)


def test_null_splits_stay_within_the_fdr_on_the_cox_path() -> None:
    """Outcome times shuffled across customers: the log-rank family keeps its false-discovery rate."""
    store, _ = censored_store(n=600, seed=21)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StatisticalWarning)
        feats = build_features(store, window_days=7, as_of=AS_OF, property_keys=("region",))
        pop = outcome_population_data(store, definition=DEF, outcome="churn", window_days=7, horizon_days=120, as_of=AS_OF)
        km = pop.loc[pop["km_eligible"], ["customer_id", "km_duration", "km_event", "outcome"]].reset_index(drop=True)
        rng = np.random.default_rng(3)
        runs_with_any = 0
        for _ in range(30):
            perm = rng.permutation(len(km))
            shuffled = km.assign(km_duration=km["km_duration"].to_numpy()[perm], km_event=km["km_event"].to_numpy()[perm],
                                 outcome=km["outcome"].to_numpy()[perm])
            flags = shuffled.loc[shuffled["outcome"].notna(), ["customer_id", "outcome"]]
            out = drivers_from_features(feats, flags, outcome="churn", horizon_days=120, adjust_for=(), min_support=20,
                                        km=shuffled[["customer_id", "km_duration", "km_event"]])
            assert (out.loc[out["status"] == "ok", "estimate"] == "hazard_ratio").all()
            runs_with_any += bool(out["significant"].any())
    assert runs_with_any / 30 <= stats.binom.ppf(0.99, 30, 0.05) / 30


def auto_attribute_store(*, n: int = 900, seed: int = 0, planted: float = 1.0) -> Store:
    """'contract' monthly churns `planted` times as often; 'region' is noise; an id, a date, free text and a rare key are not attributes."""
    rng = np.random.default_rng(seed)
    customers = []
    for i in range(n):
        contract = ("monthly", "annual")[i % 2]
        p = 0.12 * (planted if contract == "monthly" else 1.0)
        props = {"contract": contract, "region": str(rng.choice(["north", "south", "east", "west"])),
                 "crm_id": f"crm-{i}", "renewal_date": f"2025-0{1 + i % 9}-01",
                 "note": "Customer asked about payroll exports and the yearly summary report " + ("A" if i % 2 else "B")}
        if i % 10 == 0:
            props["referrer"] = ("partner", "event")[i % 20 == 0]
        customers.append({"customer_id": f"u{i:04d}", "segment": ("SMB", "Enterprise")[i % 3 == 0], "plan": "pro",
                          "signup_at": day(0), "converted_at": day(14),
                          "churned_at": day(float(rng.uniform(30, 200))) if rng.random() < p else None,
                          "properties": json.dumps(props)})
    return make_store(customers, [(c["customer_id"], 1, "login") for c in customers])


def test_attributes_auto_finds_a_planted_attribute_and_says_which_were_used() -> None:
    from journeylib.customers.features import attribute_candidates_data

    store = auto_attribute_store(planted=2.2)
    table = attribute_candidates_data(store, as_of=AS_OF).set_index("name")
    assert table.loc["contract", "used"]
    assert table.loc["region", "used"]
    assert table.loc["segment", "used"]
    assert table.loc["plan", "used"]
    for key, why in (("crm_id", "identifier"), ("renewal_date", "dates"), ("note", "free text"), ("referrer", "10%")):
        assert not table.loc[key, "used"]
        assert why in table.loc[key, "reason"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StatisticalWarning)
        out = drivers_data(store, definition=DEF, outcome="churn", as_of=AS_OF, attributes="auto")
    used = out["attributes_used"].iloc[0]
    assert used.startswith("chosen automatically")
    assert "contract, region" in used
    assert "crm_id (an identifier" in used
    assert out.set_index("candidate").loc["attr_contract=monthly", "significant"]
    assert driver_summary(out)["attributes_used"] == used


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_null_attributes_chosen_automatically_are_not_significant_across_seeds(seed: int) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StatisticalWarning)
        out = drivers_data(auto_attribute_store(seed=seed, planted=1.0), definition=DEF, outcome="churn", as_of=AS_OF,
                           attributes="auto")
    attrs = out[out["kind"].isin(["property_value", "property_vs_reference"])]
    assert set(attrs["feature"]) >= {"attr_contract", "attr_region"}
    assert not attrs["significant"].any()


def test_a_dated_outcome_field_is_timed_from_signup() -> None:
    rng = np.random.default_rng(12)
    customers, events = [], []
    for i in range(600):
        cid = f"d{i:04d}"
        early = i % 2 == 0
        cancelled = rng.random() < (0.12 if early else 0.32)
        props = {"cancelled_on": f"{day(float(rng.uniform(40, 300))):%Y-%m-%dT%H:%M:%SZ}"} if cancelled else {}
        customers.append({"customer_id": cid, "segment": ("SMB", "Enterprise")[i % 3 == 0], "plan": "pro",
                          "signup_at": day(0), "converted_at": day(10), "properties": json.dumps(props)})
        if early:
            events.append((cid, 2, "report_shared"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StatisticalWarning)
        out = drivers_data(make_store(customers, events), definition=DEF, outcome="churn", outcome_field="cancelled_on",
                           as_of=AS_OF, attributes="auto")
    row = out[(out["family"] == "event:report_shared") & out["selected"]].iloc[0]
    assert row["timing"] == "since_signup"
    assert row["significant"]
    assert row["orientation"] == "complement"
    assert row["exposure"] == f"who did not have a report shared event within {row['window_days']} days"
    assert f"within {row['horizon_days']:g} days of signup" in row["line"]
    assert "cancelled_on" not in out["attributes_used"].iloc[0].split(":")[1].split(";")[0]  # the outcome is no attribute
