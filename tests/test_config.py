"""Configuration: validation with key, line, allowed values, for every config kind."""

from __future__ import annotations

from pathlib import Path

import pytest

from journeylib.config import SourcesConfig, SuiteConfig
from journeylib.config.journey import AllOf, AnyOf, Condition, JourneyDefinition
from journeylib.exceptions import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def test_demo_definition_loads() -> None:
    d = JourneyDefinition.from_yaml(ROOT / "parameters" / "journeys" / "saas.yaml")
    assert d.stage_names == [
        "Trial Started",
        "Onboarding Completed",
        "First Value Achieved",
        "Routine Usage Established",
        "Expansion Opportunity",
        "Renewal",
    ]
    assert isinstance(d.stages[1].rule, AllOf)
    assert isinstance(d.stages[2].rule, AnyOf)
    assert isinstance(d.stages[3].rule, Condition)
    assert d.stages[3].rule.of == "previous_stage"
    assert d.outcomes["churn"].customer_field == "churned_at"
    assert d.path == d.stage_names


def test_all_problems_reported_with_lines(tmp_path: Path) -> None:
    f = tmp_path / "j.yaml"
    f.write_text(
        "name: t\n"  # 1
        "stages:\n"  # 2
        "  - name: A\n"  # 3
        "    rule: signup\n"  # 4
        "  - name: B\n"  # 5
        "    rule:\n"  # 6
        "      all:\n"  # 7
        "        - {event: setup_completed, within_days: 7, colour: red}\n"  # 8
        "        - {event: login, min_count: 0}\n"  # 9
        "outcomes:\n"  # 10
        "  churn: {customer_field: churn_at}\n"  # 11
        "bogus: 1\n"  # 12
    )
    with pytest.raises(ConfigError) as info:
        JourneyDefinition.from_yaml(f)
    problems = info.value.problems
    assert len(problems) == 4
    text = str(info.value)
    assert str(f) in text
    assert "stages[1].rule.all[0].colour (line 8): unknown key 'colour'; allowed keys here: event, events, min_count, within_days, of, where" in problems
    assert "stages[1].rule.all[1].min_count (line 9): Input should be greater than or equal to 1; found 0" in problems
    assert "outcomes.churn.customer_field (line 11): must be 'converted_at', 'churned_at' or 'renewal_at'; found 'churn_at'" in problems
    assert "bogus (line 12): unknown key 'bogus'; allowed keys here: name, description, stages, outcomes, segment_field, happy_path, value_stage, conventions" in problems


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": "x", "stages": []}, r"stages: List should have at least 1 item .*; found \[\]"),
        ({"name": "x", "stages": [{"name": "A", "rule": {"event": "a", "events": ["b"]}}]}, r"stages\[0\]\.rule: give exactly one of 'event'"),
        ({"name": "x", "stages": [{"name": "A", "rule": "signup"}, {"name": "A", "rule": {"event": "a"}}]}, "repeated: A"),
        ({"name": "x", "stages": [{"name": "A", "rule": "signup"}], "happy_path": ["Z"]}, "unknown stage"),
        ({"name": "x", "stages": [{"name": "A", "rule": {"event": "a", "of": "previous_stage"}}]}, "first stage 'A' cannot use"),
        ({"name": "x", "stages": [{"name": "A", "rule": "signup"}, {"name": "B", "rule": "signup"}]}, "only allowed for the first stage"),
        ({"name": "x", "stages": [{"name": "A", "rule": 5}]}, r"stages\[0\]\.rule: expected 'signup' or a rule mapping \(event/events, all, any\); found 5"),
        ({"name": "x", "stages": [{"name": "A", "rule": "signup"}], "conventions": {"occurence": "first"}}, "conventions.occurence: unknown key 'occurence'; allowed keys here: occurrence, drop_after_days"),
    ],
)
def test_invalid_definitions(data: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        JourneyDefinition.from_dict(data)


def test_missing_file_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        JourneyDefinition.from_yaml(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        JourneyDefinition.from_yaml(bad)


def test_dates_stay_strings(tmp_path: Path) -> None:
    f = tmp_path / "j.yaml"
    f.write_text("name: 2025-01-01\nstages:\n  - {name: A, rule: signup}\n")
    assert JourneyDefinition.from_yaml(f).name == "2025-01-01"


# -- one loader and one message format for every config kind ------------------------------------


def test_every_config_kind_names_key_line_allowed_and_found(tmp_path: Path) -> None:
    sources = "sources:\n  mixpanel:\n    files: [a.jsonl]\n    optoins: {}\n"  # line 4
    with pytest.raises(ConfigError) as info:
        SourcesConfig.from_yaml(sources)
    assert info.value.problems == ["sources.mixpanel.optoins (line 4): unknown key 'optoins'; allowed keys here: reader, files, options, events"]
    suite = tmp_path / "weekly.yaml"
    suite.write_text("notebooks:\n  - notebook: ok_report\n    parameter_set: 'bad name'\n")  # line 3
    with pytest.raises(ConfigError) as info:
        SuiteConfig.from_yaml(suite)
    assert info.value.problems == [
        "notebooks[0].parameter_set (line 3): not a valid name; use letters, digits, '_', '-' or '.', starting with a letter or digit; found 'bad name'"
    ]
    assert info.value.source == str(suite)


def test_union_alternatives_come_as_one_problem() -> None:
    data = {"name": "x", "stages": [{"name": "A", "rule": {"event": "a", "where": {"plan": None, "seats": [None]}}}]}
    with pytest.raises(ConfigError) as info:
        JourneyDefinition.from_dict(data)
    assert info.value.problems == [
        "stages[0].rule.where.plan: must be a valid string or a valid integer or a valid number or a valid boolean or a valid list; found None",
        "stages[0].rule.where.seats[0]: must be a valid string or a valid integer or a valid number or a valid boolean; found None",
    ]


def test_sources_yaml_keeps_dates_as_text() -> None:
    cfg = SourcesConfig.from_yaml("sources:\n  salesforce:\n    files: [a.csv]\n    events: [{match: won, where: {closed: 2024-06-30}, to: renewal}]\n")
    assert cfg.sources["salesforce"].events[0].where == {"closed": "2024-06-30"}


def test_load_takes_a_definition_a_mapping_or_a_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    d = JourneyDefinition.load({"name": "x", "stages": [{"name": "A", "rule": "signup"}]})
    assert JourneyDefinition.load(d) is d
    monkeypatch.chdir(tmp_path)
    assert JourneyDefinition.load("parameters/journeys/saas.yaml") == JourneyDefinition.from_yaml(ROOT / "parameters" / "journeys" / "saas.yaml")
    with pytest.raises(ConfigError, match=r"journey definition 'nope\.yaml' not found; looked at"):
        JourneyDefinition.load("nope.yaml")


def test_stage_order_and_drop_outcomes_validated_with_key_and_line(tmp_path: Path) -> None:
    f = tmp_path / "j.yaml"
    f.write_text(
        "name: t\n"  # 1
        "stages:\n"  # 2
        "  - name: Trial\n"  # 3
        "    rule: signup\n"  # 4
        "  - name: Setup\n"  # 5
        "    rule: {event: setup}\n"  # 6
        "    order: whenever\n"  # 7
        "  - name: Paid\n"  # 8
        "    rule: {event: paid, of: previous_stage}\n"  # 9
        "    order: any\n"  # 10
        "outcomes:\n"  # 11
        "  trial_expired: {customer_property: trial_ends_at, kind: ended}\n"  # 12
        "  lapsed: {event: lapse, unless_stage: Paid}\n"  # 13
    )
    with pytest.raises(ConfigError) as info:
        JourneyDefinition.from_yaml(f)
    problems = info.value.problems
    assert "stages[1].order (line 7): must be 'after_previous' or 'any'; found 'whenever'" in problems
    assert any(p.startswith("stages[2] (line 8): order 'any' (a free-order milestone) is reached by its rule alone") for p in problems)
    assert "outcomes.trial_expired.kind (line 12): must be 'outcome' or 'drop'; found 'ended'" in problems
    assert any(p.startswith("outcomes.lapsed (line 13): 'unless_stage' is only allowed with kind: drop") for p in problems)
    assert len(problems) == 4


def test_free_order_stage_and_drop_outcome_load() -> None:
    d = JourneyDefinition.from_dict(
        {
            "name": "t",
            "stages": [{"name": "Trial", "rule": "signup"}, {"name": "Paid", "rule": {"event": "paid"}, "order": "any"}],
            "outcomes": {"trial_expired": {"customer_property": "trial_ends_at", "kind": "drop", "unless_stage": "Paid"},
                         "conversion": {"customer_field": "converted_at"}},
        }
    )
    assert d.free_stages == {"Paid"}
    assert d.stages[0].order == "after_previous"
    assert list(d.drop_outcomes) == ["trial_expired"]
    with pytest.raises(ConfigError, match=r"outcomes.trial_expired.unless_stage: names unknown stage 'Payed'; stages are \['Trial', 'Paid'\]"):
        JourneyDefinition.from_dict(
            {"name": "t", "stages": [{"name": "Trial", "rule": "signup"}, {"name": "Paid", "rule": {"event": "paid"}}],
             "outcomes": {"trial_expired": {"customer_property": "trial_ends_at", "kind": "drop", "unless_stage": "Payed"}}}
        )
    with pytest.raises(ConfigError, match=r"give exactly one of 'customer_field', 'customer_property', 'event' or 'inactive_days'; found customer_property, event"):
        JourneyDefinition.from_dict(
            {"name": "t", "stages": [{"name": "Trial", "rule": "signup"}],
             "outcomes": {"x": {"customer_property": "trial_ends_at", "event": "expired", "kind": "drop"}}}
        )
