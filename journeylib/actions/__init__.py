"""From insight to action: alert rules evaluated as of any day, playbooks with holdouts, the alert history and worklist, and the rule backtest.

* :mod:`journeylib.actions.rules` — per-customer values as of a day and which rules fire, with why
* :mod:`journeylib.actions.playbooks` — the recommended action of each alert and its seeded holdout
* :mod:`journeylib.actions.alerts` — :func:`raise_alerts` (what ``journeylib alerts`` runs), owners, the CSM worklist
* :mod:`journeylib.actions.backtest` — the rules over past as-of days: precision for churn, lead time, volume per CSM

The rule file's model is :class:`journeylib.config.alerts.AlertRules`; the
alert history table is :mod:`journeylib.store.alerts`.
"""

from journeylib.actions.alerts import (
    WORKLIST_COLUMNS,
    AlertRun,
    customer_owners_data,
    raise_alerts,
    worklist_data,
    write_worklist,
)
from journeylib.actions.backtest import RuleBacktest, rule_backtest_data
from journeylib.actions.playbooks import assign_playbooks, holdout_draw
from journeylib.actions.rules import AlertFeatures, alert_features_data, evaluate_rules, read_risk_table

__all__ = [
    "WORKLIST_COLUMNS",
    "AlertFeatures",
    "AlertRun",
    "RuleBacktest",
    "alert_features_data",
    "assign_playbooks",
    "customer_owners_data",
    "evaluate_rules",
    "holdout_draw",
    "raise_alerts",
    "read_risk_table",
    "rule_backtest_data",
    "worklist_data",
    "write_worklist",
]
