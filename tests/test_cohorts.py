"""Cohort comparison: rates with intervals, the right tests, FDR control, Kaplan-Meier censored at as_of."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _builders import ROOT, T0, day, event_rows, journey_definition, memory_store
from lifelines import KaplanMeierFitter
from lifelines.statistics import logrank_test
from scipy import stats
from statsmodels.stats.proportion import proportion_confint, proportions_ztest

from journeylib.config.journey import JourneyDefinition
from journeylib.customers.cohorts import (
    METRIC_COLUMNS,
    PAIRWISE_COLUMNS,
    cohort_customers_data,
    cohort_metrics_data,
    cohort_pairwise_data,
    retention_curves_data,
    select_metrics,
)
from journeylib.exceptions import EmptyResultError, StatisticalWarning
from journeylib.scope import Scope
from journeylib.stats import bh_qvalues, median_interval
from journeylib.store import Store

AS_OF = T0 + pd.Timedelta(days=60)
DEF = journey_definition({"Trial": "signup", "First Value": {"event": "project_created"}}, outcomes=("churn", "conversion"))


def make_store() -> Store:
    # SMB: 4 trials, s1 and s2 convert on day 15, s1 churns on day 25 (10 days later).
    # Enterprise: e1 converts day 15, churns day 25 (10 days); e2 converts day 40 and "churns" on day 80,
    # after as_of (day 60): censored at 20 days; e3 converts day 20, churns day 50 (30 days).
    customers = [
        {"customer_id": "s1", "segment": "SMB", "signup_at": day(0), "converted_at": day(15), "churned_at": day(25),
         "properties": '{"acquisition_channel": "partner", "region": "europe"}'},
        {"customer_id": "s2", "segment": "SMB", "signup_at": day(0), "converted_at": day(15),
         "properties": '{"acquisition_channel": "organic", "region": "europe"}'},
        {"customer_id": "s3", "segment": "SMB", "signup_at": day(0), "properties": '{"acquisition_channel": "organic"}'},
        {"customer_id": "s4", "segment": "SMB", "signup_at": day(0), "properties": '{"acquisition_channel": "organic"}'},
        {"customer_id": "e1", "segment": "Enterprise", "signup_at": day(0), "converted_at": day(15), "churned_at": day(25)},
        {"customer_id": "e2", "segment": "Enterprise", "signup_at": day(20), "converted_at": day(40), "churned_at": day(80)},
        {"customer_id": "e3", "segment": "Enterprise", "signup_at": day(0), "converted_at": day(20), "churned_at": day(50)},
    ]
    events = [("s1", 2, "project_created"), ("s2", 6, "project_created"), ("e1", 1, "project_created"),
              ("e3", 3, "project_created"), ("s1", 1, "login"), ("s1", 2.5, "login"), ("e1", 1, "login")]
    return memory_store(customers=customers, events=event_rows(events))


def metrics(**kw) -> pd.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StatisticalWarning)
        return cohort_metrics_data(make_store(), definition=DEF, as_of=AS_OF, min_support=2, activity_days=7, **kw)


def test_median_interval_by_hand() -> None:
    # n = 100: binom.ppf(0.025, 100, 0.5) = 40 -> [x_(40), x_(61)] = [40, 61]
    assert median_interval(list(range(1, 101))) == (50.5, 40.0, 61.0)
    assert median_interval([1, 2, 3, 4, 5]) == (3.0, 1.0, 5.0)  # too few values: the extremes
    assert all(math.isnan(v) for v in median_interval([]))


def test_conversion_rates_with_wilson_intervals_and_the_right_test() -> None:
    m = metrics()
    assert list(m.columns) == list(METRIC_COLUMNS)
    conv = m[m["metric"] == "conversion_rate"].set_index("cohort")
    # everybody has 30 days of follow-up (e2 signed up on day 20, as_of is day 60): SMB 2 of 4, Enterprise 3 of 3
    assert (conv.loc["SMB", "n"], conv.loc["SMB", "events"], conv.loc["SMB", "value"]) == (4, 2, 0.5)
    assert (conv.loc["Enterprise", "n"], conv.loc["Enterprise", "value"]) == (3, 1.0)
    lo, hi = proportion_confint(2, 4, method="wilson")
    assert (conv.loc["SMB", "ci_low"], conv.loc["SMB", "ci_high"]) == pytest.approx((lo, hi))
    # a sparse 2x2: Fisher's exact test
    assert conv["test"].iloc[0] == "fisher"
    assert conv["p_value"].iloc[0] == pytest.approx(stats.fisher_exact([[3, 0], [2, 2]]).pvalue)
    stage = m[m["metric"] == "stage:First Value"].set_index("cohort")
    assert stage.loc["SMB", "value"] == 0.5
    assert stage.loc["Enterprise", "value"] == pytest.approx(2 / 3)


def test_churn_is_kaplan_meier_censored_at_as_of() -> None:
    m = metrics(churn_days=25)
    churn = m[m["metric"] == "churn_rate"].set_index("cohort")
    # Enterprise durations: 10 (churn), 20 (censored: the churn on day 80 is after as_of), 30 (churn)
    kmf = KaplanMeierFitter().fit([10, 20, 30], [True, False, True])
    assert churn.loc["Enterprise", "value"] == pytest.approx(1 - 2 / 3)
    assert churn.loc["Enterprise", "value"] == pytest.approx(1 - float(kmf.survival_function_at_times(25).iloc[0]))
    assert churn.loc["Enterprise", "events"] == 2
    assert churn.loc["SMB", "value"] == pytest.approx(0.5)  # s1 churns at 10, s2 is followed 45 days
    assert churn["test"].iloc[0] == "logrank"


def test_retention_curves_by_hand() -> None:
    curves = retention_curves_data(make_store(), definition=DEF, as_of=AS_OF, min_support=2, step_days=5)
    ent = curves[curves["cohort"] == "Enterprise"].set_index("day")
    assert ent["retention"].round(4).tolist() == [1.0, 1.0, 0.6667, 0.6667, 0.6667, 0.6667, 0.0]
    assert ent.index.max() == 30  # the longest follow-up: nobody is followed beyond it
    assert (ent.loc[25, "at_risk"], ent.loc[25, "churned"], ent.loc[25, "customers"]) == (1, 1, 3)
    kmf = KaplanMeierFitter().fit([10, 20, 30], [True, False, True])
    ci = kmf.confidence_interval_survival_function_
    assert ent.loc[15, "ci_low"] == pytest.approx(float(ci.loc[:15].iloc[-1, 0]))
    with pytest.raises(EmptyResultError, match="no cohort by segment has 10"), pytest.warns(StatisticalWarning):
        retention_curves_data(make_store(), definition=DEF, as_of=AS_OF, min_support=10)


def test_pairwise_tests_and_fdr() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StatisticalWarning)
        pairs = cohort_pairwise_data(make_store(), definition=DEF, as_of=AS_OF, min_support=2, activity_days=7)
    assert list(pairs.columns) == list(PAIRWISE_COLUMNS)
    churn = pairs[pairs["metric"] == "churn_rate"].iloc[0]
    ref = logrank_test([10, 20, 30], [10, 45], [True, False, True], [True, False])
    assert (churn["cohort_a"], churn["cohort_b"]) == ("Enterprise", "SMB")
    assert churn["p_value"] == pytest.approx(ref.p_value)
    assert pairs["q_value"].to_numpy() == pytest.approx(bh_qvalues(pairs["p_value"]), nan_ok=True)
    tests = set(pairs["test"])
    assert tests <= {"fisher", "two_proportion_z", "logrank", "mann_whitney", ""}


def test_two_proportion_z_test_matches_statsmodels() -> None:
    # a bigger store: 60 SMB (30 convert) and 60 Enterprise (45 convert)
    rows = []
    for seg, k in (("SMB", 30), ("Enterprise", 45)):
        rows += [{"customer_id": f"{seg}{i}", "segment": seg, "signup_at": day(0),
                  "converted_at": day(15) if i < k else None} for i in range(60)]
    s = Store(":memory:")
    s.insert("customers", pd.DataFrame(rows))
    s.insert("events", pd.DataFrame([{"event_id": "x", "customer_id": "SMB0", "timestamp": day(1), "event": "login"}]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StatisticalWarning)
        pairs = cohort_pairwise_data(s, definition=DEF, as_of=AS_OF, min_support=10)
    row = pairs[pairs["metric"] == "conversion_rate"].iloc[0]
    z, p = proportions_ztest([45, 30], [60, 60])
    assert row["test"] == "two_proportion_z"
    assert (row["statistic"], row["p_value"]) == pytest.approx((z, p))
    assert row["difference"] == pytest.approx(0.25)
    assert row["effect"] == pytest.approx(1.5)
    assert row["diff_ci_low"] < 0.25 < row["diff_ci_high"]


def test_cohorts_below_min_support_are_rows_with_reasons() -> None:
    with pytest.warns(StatisticalWarning, match="fewer than 4 customers"):
        m = cohort_metrics_data(make_store(), definition=DEF, as_of=AS_OF, min_support=4, activity_days=7)
    conv = m[m["metric"] == "conversion_rate"].set_index("cohort")
    assert conv.loc["Enterprise", "status"] == "below_min_support"
    assert conv.loc["Enterprise", "reason"] == "3 customers; at least 4 needed"
    assert math.isnan(conv.loc["Enterprise", "value"])
    assert conv["p_value"].isna().all()  # one supported cohort: nothing to test
    assert not m["significant"].any()


def test_cohort_dimensions() -> None:
    store = make_store()
    ch = cohort_customers_data(store, definition=DEF, by="channel", as_of=AS_OF).set_index("customer_id")
    assert ch.loc["s1", "cohort"] == "partner"
    assert ch.loc["e1", "cohort"] == "(none)"
    reg = cohort_customers_data(store, definition=DEF, by="property:region", as_of=AS_OF).set_index("customer_id")
    assert reg.loc["s2", "cohort"] == "europe"
    per = cohort_customers_data(store, definition=DEF, by="signup_period", cohort_freq="M", as_of=AS_OF).set_index("customer_id")
    assert per.loc["e2", "cohort"] == "2025-01"
    labels = pd.DataFrame({"customer_id": ["s1", "e1"], "cohort": ["power users", "strugglers"]})
    lab = cohort_customers_data(store, definition=DEF, by="labels", labels=labels, as_of=AS_OF)
    assert sorted(lab["cohort"]) == ["power users", "strugglers"]  # unlabelled customers are left out
    assert lab.set_index("customer_id").loc["s1", "entered_first_value_days"] == pytest.approx(2.0)
    with pytest.raises(ValueError, match=r"by='weather' is no cohort dimension, customers column, customers.properties key or event "
                       r"property key of this store\..*customers.properties keys: acquisition_channel, region;"):
        cohort_customers_data(store, definition=DEF, by="weather")
    with pytest.raises(ValueError, match="needs labels=DataFrame"):
        cohort_customers_data(store, definition=DEF, by="labels")
    bare = Store(":memory:")
    bare.insert("customers", pd.DataFrame([{"customer_id": "x", "signup_at": day(0)}]))
    bare.insert("events", pd.DataFrame([{"event_id": "x", "customer_id": "x", "timestamp": day(1), "event": "login"}]))
    with pytest.raises(ValueError, match="by='channel' needs a customer property channel or acquisition_channel"):
        cohort_customers_data(bare, definition=DEF, by="channel")


def test_select_metrics_and_unknown_metric() -> None:
    m = metrics()
    assert set(select_metrics(m, outcome="churn")["metric"]) == {"churn_rate", "days_active"}
    assert set(select_metrics(m, outcome="conversion")["metric"]) == {"conversion_rate", "stage:First Value", "time_to_value_days"}
    assert len(select_metrics(m, outcome="other")) == len(m)
    with pytest.raises(ValueError, match="unknown metric"):
        metrics(metrics=["nps"])


@pytest.mark.slow
def test_planted_world_cohorts_use_the_right_tests_and_control_fdr(planted_world: tuple[Path, Path]) -> None:
    _, db = planted_world
    definition = JourneyDefinition.from_yaml(ROOT / "parameters" / "journeys" / "saas.yaml")
    with Store(db, read_only=True) as store, warnings.catch_warnings():
        warnings.simplefilter("ignore", StatisticalWarning)
        m = cohort_metrics_data(store, definition=definition, by="segment")
    per_metric = m.drop_duplicates("metric").set_index("metric")
    tested = per_metric[per_metric["p_value"].notna()]
    assert tested["q_value"].to_numpy() == pytest.approx(bh_qvalues(tested["p_value"]))
    assert per_metric.loc["churn_rate", "test"] == "logrank"
    assert per_metric.loc["days_active", "test"] == "kruskal"
    assert per_metric.loc["conversion_rate", "test"] == "chi2"
    # the planted segment differences in conversion (base rates 20/24/28%) are found
    assert per_metric.loc["conversion_rate", "significant"]
    assert np.isfinite(m.loc[m["status"] == "ok", ["value", "ci_low", "ci_high"]].to_numpy(dtype=float)).all()


# -- cohorts by any frequency, column or property ---------------------------------------------------
def test_cohort_freq_week_month_quarter_year() -> None:
    store = make_store()
    # e2 signed up on day 20 = 2025-01-21 (a Tuesday): ISO week 2025-01-20..26, January, Q1, 2025
    expected = {"week": "2025-01-20/2025-01-26", "month": "2025-01", "quarter": "2025Q1", "year": "2025", "W": "2025-01-20/2025-01-26"}
    for freq, label in expected.items():
        got = cohort_customers_data(store, definition=DEF, by="signup_period", cohort_freq=freq, as_of=AS_OF).set_index("customer_id")
        assert got.loc["e2", "cohort"] == label, freq
    with pytest.raises(ValueError, match=r"cohort_freq must be one of week \(W\), month \(M\), quarter \(Q\), year \(Y\); got 'fortnight'"):
        cohort_customers_data(store, definition=DEF, by="signup_period", cohort_freq="fortnight")


def platform_store() -> Store:
    """Three customers; the event property platform differs between their first and later events."""
    customers = [
        {"customer_id": "a", "segment": "SMB", "plan": "pro", "signup_at": day(0), "mrr": 10.0, "properties": '{"tier": "gold"}'},
        {"customer_id": "b", "segment": "SMB", "plan": "basic", "signup_at": day(0), "mrr": 20.0},
        {"customer_id": "c", "segment": "Ent", "plan": "pro", "signup_at": day(0)},
    ]
    events = pd.DataFrame(
        [
            {"event_id": "1", "customer_id": "a", "timestamp": day(1), "event": "login", "source": "product", "properties": '{"platform": "ios"}'},
            {"event_id": "2", "customer_id": "a", "timestamp": day(8), "event": "login", "source": "product", "properties": '{"platform": "web"}'},
            {"event_id": "3", "customer_id": "b", "timestamp": day(2), "event": "login", "source": "product", "properties": "{}"},
            {"event_id": "4", "customer_id": "b", "timestamp": day(3), "event": "login", "source": "product", "properties": '{"platform": "android"}'},
            {"event_id": "5", "customer_id": "c", "timestamp": day(9), "event": "ticket_opened", "source": "support", "properties": '{"channel": "chat"}'},
        ]
    )
    return memory_store(customers=customers, events=events)


def test_cohorts_by_column_customer_property_and_event_property() -> None:
    store = platform_store()
    as_of = T0 + pd.Timedelta(days=30)

    def cohorts(by: str, **kw) -> dict[str, str]:
        got = cohort_customers_data(store, definition=DEF, by=by, as_of=as_of, **kw)
        return dict(zip(got["customer_id"], got["cohort"], strict=True))

    assert cohorts("mrr") == {"a": "10.0", "b": "20.0", "c": "(none)"}  # any customers column
    assert cohorts("tier") == {"a": "gold", "b": "(none)", "c": "(none)"}  # a customers.properties key, bare
    # an event property: the value on each customer's first event that has it (a: ios on day 1, not web on day 8)
    assert cohorts("property:platform") == {"a": "ios", "b": "android", "c": "(none)"}
    # inside an event window only the window's events count: a's first event with a platform there is day 8
    window = Scope.build(store, as_of=as_of, events_from=day(5).isoformat())
    got = cohort_customers_data(store, definition=DEF, by="property:platform", scope=window)
    assert dict(zip(got["customer_id"], got["cohort"], strict=True)) == {"a": "web", "b": "(none)", "c": "(none)"}


def test_channel_absent_names_what_exists() -> None:
    # a vendor-ingested store: no acquisition channel on the customers, only a support channel on events
    store = platform_store()
    with pytest.raises(ValueError, match=r"by='channel' needs a customer property channel or acquisition_channel \(the acquisition "
                       r"channel\); no customer has one in this store\..*customers columns: customer_id, name, domain, segment, plan, "
                       r".*customers.properties keys: tier; event property keys .*: channel, platform\."):
        cohort_customers_data(store, definition=DEF, by="channel")


def test_cohort_by_segment_follows_the_segment_field() -> None:
    store = platform_store()
    by_plan = DEF.model_copy(update={"segment_field": "plan"})
    got = cohort_customers_data(store, definition=by_plan, by="segment", as_of=T0 + pd.Timedelta(days=30))
    assert dict(zip(got["customer_id"], got["cohort"], strict=True)) == {"a": "pro", "b": "basic", "c": "pro"}
    only_pro = cohort_customers_data(store, definition=by_plan, by="signup_period", segment="pro", as_of=T0 + pd.Timedelta(days=30))
    assert sorted(only_pro["customer_id"]) == ["a", "c"]


@pytest.mark.parametrize("path", sorted((ROOT / "parameters" / "02_cohorts_and_segments").glob("*.yaml")), ids=lambda p: p.stem)
def test_parameter_sets_use_dimensions_every_store_has(path: Path) -> None:
    # a parameter set of notebook 02 runs on canonical and vendor-ingested stores alike: no store-specific dimension
    import yaml

    by = yaml.safe_load(path.read_text())["by"]
    assert by in ("signup_period", "segment", "plan"), f"{path.name}: by={by!r} is not in every store"
