"""Outcomes from inactivity: a lapse dated at the last activity plus inactive_days, censored until it is known."""

from __future__ import annotations

import pandas as pd
import pytest
from _builders import T0, day, event_rows, memory_store

from journeylib.config.journey import JourneyDefinition
from journeylib.customers.features import customer_outcomes_data
from journeylib.customers.outcomes import inactivity_lapse_data, outcome_population_data
from journeylib.exceptions import ConfigError, EmptyResultError

AS_OF = T0 + pd.Timedelta(days=100)


def make_store():
    # a: last product event day 30 -> lapses day 90 (<= day 100): churned at day 90.
    # b: last product event day 50 -> day 110 > as_of: censored; its e-mail on day 95 is not activity.
    # c: no activity at all -> lapses signup (day 0) + 60 = day 60.
    # d: signed up day 70, active day 75 -> censored.
    customers = [{"customer_id": c, "segment": "SMB", "signup_at": day(s)} for c, s in (("a", 0), ("b", 0), ("c", 0), ("d", 70))]
    events = event_rows([("a", 5, "login"), ("a", 30, "report_viewed"), ("b", 50, "login"), ("b", 95, "email_opened", "email"),
                         ("d", 75, "login"), ("a", 120, "login")])
    return memory_store(customers=customers, events=events)


def test_lapse_after_inactive_days_is_dated_and_censored() -> None:
    lapse = inactivity_lapse_data(make_store(), inactive_days=60, as_of=AS_OF).set_index("customer_id")
    assert lapse.loc["a", "lapsed_at"] == day(90)  # the login on day 120 is after as_of: not seen
    assert lapse.loc["a", "last_active_at"] == day(30)
    assert pd.isna(lapse.loc["b", "lapsed_at"])
    assert lapse.loc["b", "status"] == "censored"
    assert lapse.loc["c", "lapsed_at"] == day(60)
    assert pd.isna(lapse.loc["c", "last_active_at"])
    assert lapse.loc["d", "status"] == "censored"
    assert lapse.attrs["activity_sources"] == ["product"]
    with pytest.raises(ValueError, match="inactive_days must be a positive number of days; got 0"):
        inactivity_lapse_data(make_store(), inactive_days=0)


def test_churn_from_inactivity_in_the_definition_feeds_the_outcome_analyses() -> None:
    d = JourneyDefinition.from_dict(
        {"name": "t", "stages": [{"name": "Trial", "rule": "signup"}], "outcomes": {"churn": {"inactive_days": 60}}}
    )
    outs = customer_outcomes_data(make_store(), definition=d, as_of=AS_OF).set_index("customer_id")
    assert outs.loc["a", "churn_at"] == day(90)
    assert outs["churn_at"].notna().sum() == 2  # a and c
    pop = outcome_population_data(make_store(), definition=d, outcome="churn", window_days=7, horizon_days=95, as_of=AS_OF)
    pop = pop.set_index("customer_id")
    assert pop.loc["a", "outcome"] == 1.0
    assert pop.loc["b", "outcome"] == 0.0
    assert pop.loc["d", "status"] == "followup_incomplete"


def test_inactivity_config_errors() -> None:
    with pytest.raises(ConfigError, match="give exactly one of 'customer_field', 'customer_property', 'event' or 'inactive_days'"):
        JourneyDefinition.from_dict({"name": "t", "stages": [{"name": "T", "rule": "signup"}],
                                     "outcomes": {"churn": {"inactive_days": 60, "event": "x"}}})
    with pytest.raises(ConfigError, match="'inactive_days' \\(a lapse\\) is an outcome, not a journey end"):
        JourneyDefinition.from_dict({"name": "t", "stages": [{"name": "T", "rule": "signup"}],
                                     "outcomes": {"churn": {"inactive_days": 60, "kind": "drop"}}})
    with pytest.raises(ConfigError, match="greater than 0"):
        JourneyDefinition.from_dict({"name": "t", "stages": [{"name": "T", "rule": "signup"}], "outcomes": {"churn": {"inactive_days": 0}}})


def test_no_activity_source_is_an_error() -> None:
    store = memory_store(customers=[{"customer_id": "a", "signup_at": day(0)}], events=event_rows([("a", 1, "email_opened", "email")]))
    with pytest.raises(EmptyResultError, match=r"no event source is customer activity \(sources: email \(email\)"):
        inactivity_lapse_data(store, inactive_days=30, as_of=AS_OF)
