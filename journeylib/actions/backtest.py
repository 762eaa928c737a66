"""Backtest of alert rules: what the rules would have raised on past as-of days, and how often churn followed.

:func:`rule_backtest_data` evaluates the rules on a grid of past as-of days
(each read only up to its end), applies each rule's cooldown as
:func:`journeylib.actions.alerts.raise_alerts` does, and compares the alerts
with the churn outcome of the journey definition within ``horizon_days``.

* **Precision** is the share of alerts followed by churn within the horizon,
  over the alerts whose horizon is fully observed (an alert whose horizon
  runs past the data's end is *censored*: counted apart, never as a miss or
  a hit), with a Wilson interval; the **base rate** is the same share over
  every customer-day of the grid, so ``lift`` says how much more often
  churn followed an alert than any day.
* **Lead time** of a churner caught by a rule: days from the rule's first
  alert within the horizon before the churn to the churn.
* **Volume**: alerts per owner per week (mean over owners and weeks, and the
  busiest owner-week).
* **Missed churners**: customers who churned within the horizon of a grid
  day and whom no rule alerted within the horizon before.

Associations only: an alert followed by churn does not show that the
condition caused it, nor that acting on it would prevent it (that needs the
playbook's holdout).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from journeylib.actions.alerts import customer_owners_data, latest_day
from journeylib.actions.rules import alert_features_data, evaluate_rules, tickets_for_rules
from journeylib.cache import ResultCache
from journeylib.config.alerts import AlertRules
from journeylib.config.journey import JourneyDefinition
from journeylib.customers.snapshots import asof_days, day_end
from journeylib.exceptions import EmptyResultError
from journeylib.scope import to_utc
from journeylib.stats import median_interval, wilson_interval
from journeylib.store import Store

__all__ = ["ANY_RULE", "RuleBacktest", "apply_cooldown", "rule_backtest_data"]

#: The summary row of the alerts of every rule together.
ANY_RULE = "(any rule)"


@dataclass(frozen=True)
class RuleBacktest:
    """The rules over past as-of days.

    Attributes
    ----------
    summary : pandas.DataFrame
        One row per rule, then :data:`ANY_RULE`; columns in :func:`rule_backtest_data`.
    alerts : pandas.DataFrame
        The alerts the rules would have raised (after cooldowns): ``rule``,
        ``customer_id``, ``as_of_day``, ``owner``, ``censored``,
        ``churned`` (within the horizon; NaN when censored),
        ``days_to_churn``.
    missed : pandas.DataFrame
        The churners no rule caught: ``customer_id``, ``name``, ``segment``,
        ``plan``, ``owner``, ``churn_at``, ``days_observed`` (grid days
        within the horizon before the churn), ``stage`` and
        ``days_since_activity`` on the last of them.
    as_of_days : list of int
        The grid.
    horizon_days : int
        Churn within this many days after an alert counts.
    notes : list of str
        Caveats with counts.
    """

    summary: pd.DataFrame
    alerts: pd.DataFrame
    missed: pd.DataFrame
    as_of_days: list[int]
    horizon_days: int
    notes: list[str] = field(default_factory=list)


def apply_cooldown(firings: pd.DataFrame) -> pd.DataFrame:
    """Keep the firings an alert history would hold: per rule and customer, none within the cooldown of the one before.

    Parameters
    ----------
    firings : pandas.DataFrame
        ``rule``, ``customer_id``, ``as_of_day``, ``cooldown_days`` (other
        columns are kept).

    Returns
    -------
    pandas.DataFrame
        The kept rows, ordered by rule, customer and day.

    Examples
    --------
    >>> f = pd.DataFrame({"rule": "r", "customer_id": "c", "as_of_day": [0, 7, 14, 21], "cooldown_days": 14})
    >>> apply_cooldown(f)["as_of_day"].tolist()
    [0, 14]
    """
    f = firings.sort_values(["rule", "customer_id", "as_of_day"], kind="mergesort").reset_index(drop=True)
    keep = np.zeros(len(f), dtype=bool)
    last_key: tuple[Any, Any] | None = None
    last_day = 0
    for i, (rule, cust, day, cool) in enumerate(zip(f["rule"], f["customer_id"], f["as_of_day"], f["cooldown_days"], strict=True)):
        if (rule, cust) != last_key or day >= last_day + int(cool):
            keep[i] = True
            last_key, last_day = (rule, cust), int(day)
    return f[keep].reset_index(drop=True)


def rule_backtest_data(
    store: Store,
    rules: AlertRules | str | Path,
    *,
    first_as_of: Any = None,
    last_as_of: Any = None,
    every_days: int = 7,
    horizon_days: int = 60,
    risk: pd.DataFrame | str | Path | None = None,
    ticket_scores: pd.DataFrame | None = None,
    definition: JourneyDefinition | str | Path | None = None,
    activity_sources: Sequence[str] = ("product",),
    alpha: float = 0.05,
    cache: ResultCache | None = None,
) -> RuleBacktest:
    """Run the rules over past as-of days; per rule: alerts, precision for churn, lead time, volume per owner.

    Parameters
    ----------
    store : Store
        The canonical store.
    rules : AlertRules, str or pathlib.Path
        The rules (or their file).
    first_as_of, last_as_of : date-like, optional
        The grid's range. Default: ``last_as_of`` is the day of the latest
        event minus ``horizon_days`` (every alert then has its whole
        horizon), ``first_as_of`` 26 weeks before it.
    every_days : int, default 7
        Grid spacing (anchored on ``last_as_of``).
    horizon_days : int, default 60
        Churn within this many days after the alert counts.
    risk : pandas.DataFrame, str or pathlib.Path, optional
        A risk table **with an** ``as_of`` **column** (scores made on past
        days); a table without one would read today's scores into the past,
        so the risk conditions are then not checked (said in the notes).
    ticket_scores : pandas.DataFrame, optional
        Scored tickets, for sentiment conditions (scored from the store
        when a rule reads sentiment and none are given).
    definition : JourneyDefinition, str or pathlib.Path, optional
        The journey definition (default: the rule file's ``journey``).
    activity_sources : sequence of str, default ("product",)
        Source kinds or names whose events are activity.
    alpha : float, default 0.05
        1 - confidence level of the intervals.
    cache : ResultCache, optional
        Share the milestone frame with other analyses.

    Returns
    -------
    RuleBacktest
        ``summary`` has one row per rule and one for :data:`ANY_RULE`:

        ``rule``, ``severity``
            The rule (``""`` severity for the union).
        ``alerts``, ``customers_alerted``
            Alerts raised over the grid (after cooldowns) and distinct customers.
        ``labelled_alerts``, ``censored_alerts``
            Alerts whose horizon is observed / runs past the data's end.
        ``true_alerts``, ``precision``, ``precision_ci_low``, ``precision_ci_high``
            Labelled alerts followed by churn within the horizon, their share
            of the labelled alerts, and its Wilson interval (NaN without
            labelled alerts).
        ``base_rate``, ``lift``
            Churn within the horizon over every labelled customer-day of the
            grid, and precision over it.
        ``churners``, ``churners_caught``, ``recall``
            Customers who churned within the horizon of a grid day (the same
            for every row), those the rule alerted within the horizon before
            the churn, and the share.
        ``lead_days_median``, ``lead_days_ci_low``, ``lead_days_ci_high``
            Median days from the first such alert to the churn, over the
            caught churners, with a distribution-free interval.
        ``alerts_per_owner_week``, ``max_alerts_per_owner_week``
            Alerts per owner per week (mean over the owners of the grid's
            customers and the weeks of the grid) and the busiest owner-week.

    Raises
    ------
    ValueError
        If ``horizon_days`` or ``every_days`` is not a positive whole number.
    EmptyResultError
        If the grid is empty (the range is before the first signup).
    """
    function = "rule_backtest_data"
    for name, value in (("horizon_days", horizon_days), ("every_days", every_days)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            msg = f"{function}: {name} must be a positive whole number of days; got {value!r}"
            raise ValueError(msg)
    loaded, lines = AlertRules.load(rules)
    definition_obj = JourneyDefinition.load(definition if definition is not None else loaded.journey_path())
    loaded.check_journey(definition_obj.stage_names, lines=lines)
    notes: list[str] = []
    latest = latest_day(store)
    given_last = to_utc(last_as_of, function=function, name="last_as_of")
    last = pd.Timestamp(given_last) if given_last is not None else latest - pd.Timedelta(days=horizon_days)
    given_first = to_utc(first_as_of, function=function, name="first_as_of")
    first = pd.Timestamp(given_first) if given_first is not None else last - pd.Timedelta(weeks=26)
    if last < first:
        msg = f"{function}: last_as_of ({last:%Y-%m-%d}) is before first_as_of ({first:%Y-%m-%d}); with the default range the data span less than {horizon_days} days"
        raise EmptyResultError(msg)
    days = asof_days(first, last, every_days=every_days)
    risk_used = risk
    if risk is not None:
        cols = risk.columns if isinstance(risk, pd.DataFrame) else None
        if cols is not None and "as_of" not in cols:
            notes.append("the risk table has no as_of column: using it on past days would read later scores into the past, so risk conditions were not checked.")
            risk_used = None
    features = alert_features_data(
        store, definition=definition_obj, as_of_dates=[day_end(d) - pd.Timedelta(days=1) for d in days], risk=risk_used,
        ticket_scores=tickets_for_rules(store, loaded, ticket_scores, cache=cache), activity_sources=activity_sources, cache=cache,
    )  # fmt: skip
    if risk_used is not None and not isinstance(risk_used, pd.DataFrame) and not features.data["risk"].notna().any():
        notes.append("no risk score was found for any grid day (a risk file without as_of scores is not used on past days).")
    notes += features.notes
    f = features.data
    firings, rule_notes = evaluate_rules(features, loaded, explain=False)
    notes += rule_notes
    data_end = pd.Timestamp(max(pd.Timestamp(store.query("SELECT max(timestamp) AS t FROM events")["t"].iloc[0]), day_end(days[-1])))
    end_day_f = (data_end - pd.Timestamp("1970-01-01T00:00:00Z")) / pd.Timedelta(days=1)
    f = f.assign(
        censored_h=f["as_of_day"].to_numpy(dtype=float) + 1 + horizon_days > end_day_f + 1e-9,
        churn_h=(f["days_to_churn"].to_numpy(dtype=float) <= horizon_days),
    )
    f["label"] = np.where(f["censored_h"], np.nan, f["churn_h"].astype(float))
    owners = customer_owners_data(store, loaded.routing).set_index("customer_id")
    kept = apply_cooldown(firings) if len(firings) else firings
    key = ["customer_id", "as_of_day"]
    alerts = kept[["rule", "customer_id", "as_of_day", "severity"]].merge(
        f[[*key, "label", "censored_h", "days_to_churn"]], on=key, how="left"
    )
    alerts["owner"] = alerts["customer_id"].map(owners["owner"]).fillna(loaded.routing.default_owner)
    labelled_f = f[f["label"].notna()]
    base_rate = float(labelled_f["label"].mean()) if len(labelled_f) else float("nan")
    churn_rows = labelled_f[labelled_f["label"] == 1]
    churners = sorted(set(churn_rows["customer_id"]))
    n_owners = max(int(f["customer_id"].map(owners["owner"]).fillna(loaded.routing.default_owner).nunique()), 1)
    weeks = len(days) * every_days / 7.0
    rows = []
    groups: list[tuple[str, str, pd.DataFrame]] = [(r.name, r.severity, alerts[alerts["rule"] == r.name]) for r in loaded.rules]
    union = alerts.drop_duplicates(key)
    groups.append((ANY_RULE, "", union))
    first_day = days[0]
    for name, severity, a in groups:
        lab = a[a["label"].notna()]
        n_lab, n_true = len(lab), int((lab["label"] == 1).sum())
        lo, hi = wilson_interval(np.array([n_true]), np.array([n_lab]), alpha=alpha)
        prec = n_true / n_lab if n_lab else float("nan")
        hits = a[(a["label"] == 1)]
        lead = hits.groupby("customer_id")["days_to_churn"].max()  # the first alert within the horizon is the earliest: the longest lead
        med, llo, lhi = median_interval(lead.to_numpy(dtype=float), alpha=alpha)
        week = (a["as_of_day"].to_numpy(dtype=int) - first_day) // 7
        per = pd.Series(1, index=pd.MultiIndex.from_arrays([a["owner"].to_numpy(), week])).groupby(level=[0, 1]).sum() if len(a) else pd.Series(dtype=float)
        rows.append(
            {
                "rule": name, "severity": severity, "alerts": len(a), "customers_alerted": int(a["customer_id"].nunique()),
                "labelled_alerts": n_lab, "censored_alerts": int(a["censored_h"].sum()) if len(a) else 0,
                "true_alerts": n_true, "precision": prec,
                "precision_ci_low": float(lo[0]) if n_lab else float("nan"), "precision_ci_high": float(hi[0]) if n_lab else float("nan"),
                "base_rate": base_rate, "lift": prec / base_rate if base_rate and n_lab else float("nan"),
                "churners": len(churners), "churners_caught": len(lead),
                "recall": len(lead) / len(churners) if churners else float("nan"),
                "lead_days_median": med, "lead_days_ci_low": llo, "lead_days_ci_high": lhi,
                "alerts_per_owner_week": len(a) / (n_owners * weeks) if weeks else float("nan"),
                "max_alerts_per_owner_week": float(per.max()) if len(per) else 0.0,
            }
        )  # fmt: skip
    summary = pd.DataFrame(rows)
    caught = set(union.loc[union["label"] == 1, "customer_id"])
    miss_ids = [c for c in churners if c not in caught]
    last_rows = churn_rows[churn_rows["customer_id"].isin(miss_ids)].sort_values(key).groupby("customer_id").tail(1)
    observed = churn_rows.groupby("customer_id").size()
    churn_at = f.drop_duplicates("customer_id").set_index("customer_id")["churn_at"]
    missed = pd.DataFrame(
        {
            "customer_id": last_rows["customer_id"].to_numpy(),
            "name": last_rows["customer_id"].map(owners["name"]).to_numpy(),
            "segment": last_rows["segment"].to_numpy(), "plan": last_rows["plan"].to_numpy(),
            "owner": last_rows["customer_id"].map(owners["owner"]).fillna(loaded.routing.default_owner).to_numpy(),
            "churn_at": pd.to_datetime(last_rows["customer_id"].map(churn_at), utc=True).to_numpy(),
            "days_observed": last_rows["customer_id"].map(observed).astype(int).to_numpy(),
            "stage": last_rows["stage"].to_numpy(), "days_since_activity": last_rows["days_since_activity"].to_numpy(dtype=float),
        }
    ).sort_values("churn_at", kind="mergesort").reset_index(drop=True)  # fmt: skip
    alerts_out = alerts.rename(columns={"label": "churned", "censored_h": "censored"})[
        ["rule", "customer_id", "as_of_day", "owner", "censored", "churned", "days_to_churn"]
    ].reset_index(drop=True)
    return RuleBacktest(summary=summary, alerts=alerts_out, missed=missed, as_of_days=days, horizon_days=int(horizon_days), notes=notes)

