"""The journey definition in plain English: one line per stage rule, one table row per stage."""

from __future__ import annotations

from typing import Any

import pandas as pd

from journeylib.config.journey import AllOf, AnyOf, Condition, JourneyDefinition

__all__ = ["rule_text", "stage_map_data"]


def rule_text(rule: Any) -> str:
    """Return a short plain-English rendering of a stage rule.

    Parameters
    ----------
    rule : "signup", Condition, AllOf or AnyOf
        A stage's rule.

    Returns
    -------
    str
        E.g. ``"setup_completed within 30 d"``, ``"all of (…; …)"``.

    Examples
    --------
    >>> rule_text(Condition(event="login", min_count=5, within_days=14))
    '≥ 5 login within 14 d of signup'
    """
    if rule == "signup":
        return "signup"
    if isinstance(rule, Condition):
        text = ("≥ " + str(rule.min_count) + " " if rule.min_count > 1 else "") + " or ".join(rule.names)
        if rule.where:
            text += " (" + ", ".join(f"{k}={v}" for k, v in rule.where.items()) + ")"
        if rule.within_days is not None:
            text += f" within {rule.within_days:g} d of {'signup' if rule.of == 'signup' else 'previous stage'}"
        elif rule.of == "previous_stage":
            text += " after previous stage"
        return text
    if isinstance(rule, AllOf):
        return "all of (" + "; ".join(rule_text(m) for m in rule.all) + ")"
    if isinstance(rule, AnyOf):
        return "any of (" + "; ".join(rule_text(m) for m in rule.any) + ")"
    return str(rule)


def stage_map_data(definition: JourneyDefinition) -> pd.DataFrame:
    """Return the journey definition as a table: one row per stage, in order.

    Parameters
    ----------
    definition : JourneyDefinition
        The journey definition.

    Returns
    -------
    pandas.DataFrame
        ``stage_order`` (0-based), ``stage``, ``description``, ``rule``
        (plain English, see :func:`rule_text`), ``events`` (event names the
        rule refers to, comma-separated), ``order`` (``after_previous``, or
        ``any`` for a free-order milestone), ``on_happy_path`` (bool),
        ``happy_path_position`` (1-based; 0 if not on it).

    Examples
    --------
    >>> stage_map_data(JourneyDefinition.load("parameters/journeys/saas.yaml"))["stage"].tolist()[:2]
    ['Trial Started', 'Onboarding Completed']
    """
    path = definition.path
    return pd.DataFrame(
        {
            "stage_order": range(len(definition.stages)),
            "stage": definition.stage_names,
            "description": [s.description for s in definition.stages],
            "rule": [rule_text(s.rule) for s in definition.stages],
            "events": [", ".join(sorted(s.events())) for s in definition.stages],
            "order": [s.order for s in definition.stages],
            "on_happy_path": [s.name in path for s in definition.stages],
            "happy_path_position": [path.index(s.name) + 1 if s.name in path else 0 for s in definition.stages],
        }
    )
