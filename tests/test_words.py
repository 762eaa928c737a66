"""Tests of journeylib.words and of the plain-English line templates that use it.

Every template is rendered with edge values (counts 0, 1 and many; event names with
underscores and starting with a vowel) and each line must be a full sentence: a capital
first letter, a final full stop, no article error ("a employee"), no raw snake_case name.
"""

from __future__ import annotations

import doctest
import re

import numpy as np
import pandas as pd
import pytest

from journeylib import words
from journeylib.customers.segments import group_comparison_data
from journeylib.exceptions import StatisticalWarning
from journeylib.journey.suggest import SUCCESS_WORDS, milestone_sentence
from journeylib.words import event_label, join_words, percent, plural, ratio, sentence, with_article

SNAKE = re.compile(r"\b[A-Za-z]+_[A-Za-z0-9_]+\b")
BAD_ARTICLE = re.compile(r"\b[Aa] (?=[aeiAEI]|o(?!ne)|u(?!s|n[ii]|ti))|\b[Aa]n (?=[bcdfgjkpqtvwyzBCDGJKPQTVWYZ])")
EVENTS = ["employee_added", "invoice_paid", "onboarding_call_booked", "API_key_created", "upgradeClicked"]


def assert_sentence(line: str) -> None:
    assert line, "empty line"
    assert line[0].isupper() or line[0].isdigit(), f"does not start with a capital: {line!r}"
    assert line.endswith("."), f"no final full stop: {line!r}"
    assert not BAD_ARTICLE.search(line), f"article error: {line!r}"
    assert not SNAKE.search(line), f"raw snake_case name: {line!r}"
    assert "  " not in line, f"double space: {line!r}"


def test_doctests_of_words() -> None:
    result = doctest.testmod(words)
    assert result.attempted > 20
    assert result.failed == 0


@pytest.mark.parametrize(
    ("name", "label"),
    [
        ("employee_added", "employee added"),
        ("onboarding-call.booked", "onboarding call booked"),
        ("upgradeClicked", "upgrade clicked"),
        ("APIKeyCreated", "API key created"),
        ("Order Completed", "Order Completed"),
        ("  trial__started ", "trial started"),
        (None, ""),
        (float("nan"), ""),
    ],
)
def test_event_label(name: object, label: str) -> None:
    assert event_label(name) == label


@pytest.mark.parametrize(
    ("phrase", "expected"),
    [
        ("integration", "an integration"),
        ("employee added event", "an employee added event"),
        ("onboarding call", "an onboarding call"),
        ("upgrade", "an upgrade"),
        ("uninstalled app", "an uninstalled app"),
        ("user", "a user"),
        ("unique visitor", "a unique visitor"),
        ("one-off payment", "a one-off payment"),
        ("European customer", "a European customer"),
        ("hour", "an hour"),
        ("honest answer", "an honest answer"),
        ("HR admin", "an HR admin"),
        ("NPS survey", "an NPS survey"),
        ("SMS", "an SMS"),
        ("URL", "a URL"),
        ("CSV export", "a CSV export"),
        ("payroll run", "a payroll run"),
        ("8-day trial", "an 8-day trial"),
        ("11-day trial", "an 11-day trial"),
        ("18-day trial", "an 18-day trial"),
        ("14-day trial", "a 14-day trial"),
        ("1-day trial", "a 1-day trial"),
        ("", ""),
    ],
)
def test_with_article(phrase: str, expected: str) -> None:
    assert with_article(phrase) == expected


@pytest.mark.parametrize(
    ("n", "noun", "expected"),
    [
        (0, "customer", "0 customers"),
        (1, "customer", "1 customer"),
        (2, "customer", "2 customers"),
        (12_345, "ticket", "12,345 tickets"),
        (1.0, "day", "1 day"),
        (1.5, "day", "1.5 days"),
        (2, "journey stage", "2 journey stages"),
        (3, "activity", "3 activities"),
        (2, "day", "2 days"),
        (2, "match", "2 matches"),
        (2, "box", "2 boxes"),
        (float("nan"), "customer", "an unknown number of customers"),
    ],
)
def test_plural(n: float, noun: str, expected: str) -> None:
    assert plural(n, noun) == expected


@pytest.mark.parametrize(
    ("x", "digits", "expected"),
    [(0.0, 0, "0%"), (1.0, 0, "100%"), (0.004, 0, "<1%"), (0.0004, 1, "<0.1%"), (0.996, 0, ">99%"), (0.7412, 0, "74%"),
     (-0.052, 0, "-5%"), (-0.001, 0, ">-1%"), (float("nan"), 0, "n/a")],
)
def test_percent(x: float, digits: int, expected: str) -> None:
    assert percent(x, digits) == expected


@pytest.mark.parametrize(
    ("x", "expected"), [(2.345, "2.3×"), (1.0, "1.0×"), (0.01, "<0.1×"), (0.0, "0.0×"), (np.inf, "∞×"), (np.nan, "n/a")]
)
def test_ratio(x: float, expected: str) -> None:
    assert ratio(x) == expected


def test_join_words_and_sentence() -> None:
    assert join_words([]) == ""
    assert join_words(["a"]) == "a"
    assert join_words(["a", "b"]) == "a and b"
    assert join_words(["a", "", "b", "c"], "or") == "a, b or c"
    assert sentence("") == ""
    assert sentence("done!") == "Done!"
    assert sentence("  two customers ") == "Two customers."


# -- the templates --------------------------------------------------------------------------------


@pytest.mark.parametrize("event", EVENTS)
@pytest.mark.parametrize("min_count", [1, 2, 10])
@pytest.mark.parametrize("outcome", sorted(SUCCESS_WORDS))
@pytest.mark.parametrize("support", [0.0, 0.004, 1.0])
def test_suggested_milestone_sentences(event: str, min_count: int, outcome: str, support: float) -> None:
    row = {"event": event, "min_count": min_count, "within_days": 14.0, "support": support, "median_days": 3.25,
           "outcome": outcome, "outcome_window_days": 150.0, "lift": 1.456, "lift_ci_low": 1.1, "lift_ci_high": 1.9}
    line = milestone_sentence(row)
    assert_sentence(line)
    assert event_label(event) in line
    assert percent(support) in line
    assert "1.46×" in line
    assert "within 14 days" in line
    assert SUCCESS_WORDS[outcome] in line
    if min_count > 1:
        assert f"{min_count} or more {event_label(event)} events" in line
    else:
        assert line.startswith(with_article(f"{event_label(event)} event").capitalize()[:1])


def test_milestone_sentence_names_what_success_is_for_churn() -> None:
    # success of the churn outcome is staying: the line must not say churn is more frequent
    row = {"event": "employee_added", "min_count": 1, "within_days": 7.0, "support": 0.5, "median_days": 1.0,
           "outcome": "churn", "outcome_window_days": 150.0, "lift": 2.0, "lift_ci_low": 1.5, "lift_ci_high": 2.5}
    line = milestone_sentence(row)
    assert line.startswith("An employee added event within 7 days: reached by 50% of customers")
    assert "staying (no churn) within 150 days is 2.00× as frequent as among the others" in line


def _matrix(n_a: int, n_b: int, seed: int = 0) -> tuple[pd.DataFrame, list[str], list[str]]:
    rng = np.random.default_rng(seed)
    n = n_a + n_b
    m = pd.DataFrame(
        {
            "n_employee_added_14d": np.concatenate([rng.poisson(6, n_a), rng.poisson(2, n_b)]).astype(float),
            "share_invoice_paid": np.concatenate([rng.uniform(0.4, 0.9, n_a), rng.uniform(0.0, 0.3, n_b)]),
            "days_active_14d": np.concatenate([rng.integers(5, 14, n_a), rng.integers(1, 6, n_b)]).astype(float),
            "email_open_rate_14d": rng.uniform(0, 1, n),
            "tickets_14d": np.zeros(n),
        },
        index=[f"c{i}" for i in range(n)],
    )
    ids = list(m.index)
    return m, ids[:n_a], ids[n_a:]


@pytest.mark.parametrize(("name_a", "name_b"), [("power users", "churners"), ("early adopters", "accounts"), ("segment 1", "segment 2")])
def test_group_comparison_statements_are_sentences(name_a: str, name_b: str) -> None:
    m, a, b = _matrix(40, 60)
    out = group_comparison_data(m, group_a=a, group_b=b, name_a=name_a, name_b=name_b)
    assert len(out) == m.shape[1]
    for line in out["statement"]:
        assert_sentence(line)
    by_feature = out.set_index("feature")["statement"]
    assert "employee added events" in by_feature["n_employee_added_14d"]
    assert "invoice paid events as a share of activity" in by_feature["share_invoice_paid"]
    assert "active days" in by_feature["days_active_14d"]
    assert by_feature["tickets_14d"] == (f"{name_a[:1].upper()}{name_a[1:]} and {name_b} were not compared on support tickets: "
                                         "support tickets are the same for every customer compared.")


def test_group_comparison_statements_when_groups_are_too_small() -> None:
    m, a, b = _matrix(1, 1)
    with pytest.warns(StatisticalWarning, match="at least"):
        out = group_comparison_data(m, group_a=a, group_b=b, name_a="power users", name_b="churners")
    for line in out["statement"]:
        assert_sentence(line)
        assert line.startswith("Power users and churners were not compared on ")


def test_lower_group_average_is_said_with_the_right_possessive() -> None:
    m, a, b = _matrix(40, 60)
    out = group_comparison_data(m, group_a=b, group_b=a, name_a="the rest", name_b="segment 2")
    line = out.set_index("feature").loc["n_employee_added_14d", "statement"]
    assert "segment 2's average" in line
    assert "segment 2' average" not in line


# -- success indicators, cohort and driver caveats: every line a sentence with its numbers --------------


def _indicator_rows() -> pd.DataFrame:
    exposures = [
        "with 2 or more journey stages entered within 14 days",
        "who reached Onboarding Completed within 14 days",
        "who connected an integration within 2 days",
        "with activity sessions per week in the first 14 days at or above 10",
    ]
    n = len(exposures)
    return pd.DataFrame(
        {
            "exposure": exposures,
            "kind": ["count_at_least", "stage_reached", "did_within", "value_at_least"],
            "significant": True,
            "selected": True,
            "orientation": "as_defined",
            "rank": range(1, n + 1),
            "share_of_outcome": [0.74, 0.5, 0.081, 0.45],
            "share_of_no_outcome": [0.2, 0.25, 0.01, 0.12],
            "rr": [3.72, 2.0, 4.0, 2.3],
            "rr_ci_low": [2.0, 1.5, 1.2, 1.7],
            "rr_ci_high": [6.8, 2.7, 13.0, 3.1],
        }
    )


def test_success_indicators_are_sentences_that_say_what_trials_did() -> None:
    from journeylib.customers.driver_views import success_indicators_data

    lines = success_indicators_data(_indicator_rows(), top_n=10)["indicator"].tolist()
    for line in lines:
        assert_sentence(line)
    assert lines[0] == (
        "74% of converting trials had 2 or more journey stages entered within 14 days "
        "(vs 20% of the others; converted 3.7× as often, 95% CI 2.0–6.8)."
    )
    assert lines[1].startswith("50% of converting trials reached Onboarding Completed within 14 days (vs 25%")
    assert lines[2].startswith("8% of converting trials connected an integration within 2 days")
    assert lines[3].startswith("45% of converting trials had activity sessions per week")


def _caveats(record: list) -> list[str]:
    return [str(w.message) for w in record if issubclass(w.category, StatisticalWarning)]


def assert_capital_and_stop(line: str) -> None:
    """A caveat that lists column or metric identifiers: a sentence, without the snake_case check."""
    assert line[0].isupper() or line[0].isdigit(), f"does not start with a capital: {line!r}"
    assert line.endswith("."), f"no final full stop: {line!r}"
    assert not BAD_ARTICLE.search(line), f"article error: {line!r}"
    assert "(s)" not in line, f"count not agreed with its noun: {line!r}"


@pytest.fixture(scope="module")
def demo_journey(demo_store):
    from journeylib.context import Journey

    return Journey.open(demo_store, definition="parameters/journeys/saas.yaml")


def test_cohort_caveats_are_sentences_with_their_numbers(demo_journey) -> None:
    from journeylib.exceptions import EmptyResultError

    with pytest.warns(StatisticalWarning) as record:
        demo_journey.cohort_metrics_data(by="segment", min_support=100_000)
    caveats = _caveats(record)
    low = [c for c in caveats if "fewer than 100000 customers for some metrics" in c]
    assert low == [
        "3 cohorts (Enterprise, Mid-market and SMB) have fewer than 100000 customers for some metrics; "
        "those rows are not estimated or tested."
    ]
    untested = [c for c in caveats if "not tested: fewer than two cohorts" in c]
    assert len(untested) == 1
    assert re.match(r"^\d+ metrics \(churn rate, conversion rate, .*\) are not tested: fewer than two cohorts have "
                    r"100000 or more customers, or there are no events\.$", untested[0])
    with pytest.warns(StatisticalWarning) as record:
        demo_journey.with_scope(segment="SMB").cohort_metrics_data(by="segment", min_support=100_000)
    assert "1 cohort (SMB) has fewer than 100000 customers for some metrics; those rows are not estimated or tested." in _caveats(record)
    with pytest.warns(StatisticalWarning) as record:
        demo_journey.cohort_pairwise_data(by="segment", min_support=100_000)
    assert "No pair of cohorts has 100000 or more customers on any metric, so nothing was compared." in _caveats(record)
    with pytest.raises(EmptyResultError, match="no cohort by segment has 100000 or more converted customers"), \
            pytest.warns(StatisticalWarning) as record:
        demo_journey.with_scope(segment="SMB").retention_curves_data(by="segment", min_support=100_000)
    assert "No retention curve is drawn for 1 cohort (SMB): it has fewer than 100000 converted customers." in _caveats(record)
    for line in caveats + _caveats(record):
        assert_capital_and_stop(line)


def test_driver_caveats_are_sentences_with_their_numbers(demo_journey) -> None:
    with pytest.warns(StatisticalWarning) as record:
        demo_journey.drivers_data(outcome="churn", window_days=7, min_support=40)
    caveats = _caveats(record)
    not_analysed = [c for c in caveats if "are not analysed for churn" in c]
    assert len(not_analysed) == 1
    assert re.match(r"^[\d,]+ of [\d,]+ customers in scope are not analysed for churn: .*\.$", not_analysed[0])
    assert "incomplete 7-day window" in not_analysed[0] or "follow-up" in not_analysed[0]
    assert "_" not in not_analysed[0]
    splits = [c for c in caveats if "fewer than 40 customers on a side" in c]
    assert len(splits) == 1
    assert re.match(r"^\d+ candidate splits? (has|have) fewer than 40 customers on a side and (is|are) not estimated\.$", splits[0])
    for line in caveats:
        if "not analysed for churn" in line or "candidate split" in line or "constant or missing" in line:
            assert_capital_and_stop(line)


def test_section_note_of_an_empty_driver_analysis_is_a_sentence(demo_journey) -> None:
    from journeylib import notebook

    notebook.clear_notes()
    try:
        with notebook.section("Drivers") as part:
            demo_journey.with_scope(sample_n=3).drivers_data(outcome="churn", window_days=7, horizon_days=3000)
        assert not part.computed
        (note,) = notebook.notes()
        assert note["message"].startswith("No customer is left for the churn analysis: of the 3 customers in scope, ")
        assert_capital_and_stop(note["message"])
    finally:
        notebook.clear_notes()
