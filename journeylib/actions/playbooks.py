"""Playbooks: the recommended action of each alert, and the random holdout that lets it be measured.

A playbook (:class:`journeylib.config.alerts.Playbook`) answers one rule, in
one segment or in all of them. An alerted customer is **held out** of a
playbook (no action; the control group) when a uniform draw made from the
rule file's stored ``holdout_seed``, the playbook and the customer falls below
its ``holdout_share``. The draw is a hash, not a random stream: the same
customer is always in or out of the same playbook's holdout, whatever the
order, day or number of runs, so the holdout can be audited and reproduced.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from journeylib.config.alerts import AlertRules

__all__ = ["assign_playbooks", "holdout_draw"]


def holdout_draw(seed: int, playbook: str, customer_id: str) -> float:
    """Return the customer's uniform draw in [0, 1) for a playbook's holdout.

    Parameters
    ----------
    seed : int
        The rule file's ``holdout_seed``.
    playbook : str
        The playbook's key (:attr:`journeylib.config.alerts.Playbook.key`).
    customer_id : str
        The customer.

    Returns
    -------
    float
        The first 8 bytes of ``sha256("<seed>|<playbook>|<customer_id>")``
        over 2**64.

    Examples
    --------
    >>> 0 <= holdout_draw(7, "quiet", "c1") < 1
    True
    >>> holdout_draw(7, "quiet", "c1") == holdout_draw(7, "quiet", "c1")
    True
    """
    digest = hashlib.sha256(f"{int(seed)}|{playbook}|{customer_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def assign_playbooks(firings: pd.DataFrame, rules: AlertRules) -> pd.DataFrame:
    """Give every firing its playbook, next step and holdout flag.

    Parameters
    ----------
    firings : pandas.DataFrame
        :func:`journeylib.actions.rules.evaluate_rules` (``rule``,
        ``customer_id``, ``segment`` at least).
    rules : AlertRules
        The rules with their playbooks and ``holdout_seed``.

    Returns
    -------
    pandas.DataFrame
        *firings* with ``playbook`` (the playbook's key; ``""`` when the rule
        has none for the segment), ``action`` (``email``, ``csm_task``,
        ``in_app``, ``webhook``; ``""`` without a playbook), ``holdout``
        (bool: held out, no action), ``holdout_seed`` and ``next_step``
        (the action and its timing; for a held-out customer, that no action
        is taken; without a playbook, a review by the owner).
    """
    out = firings.copy()
    keys, actions, holdout, steps = [], [], [], []
    for rule, customer, segment in zip(out["rule"], out["customer_id"], out["segment"], strict=True):
        p = rules.playbook(str(rule), None if segment is None or (isinstance(segment, float) and np.isnan(segment)) else str(segment))
        if p is None:
            keys.append("")
            actions.append("")
            holdout.append(False)
            steps.append("review the account (no playbook for this rule and segment)")
            continue
        keys.append(p.key)
        actions.append(p.action)
        held = p.holdout_share > 0 and holdout_draw(rules.holdout_seed, p.key, str(customer)) < p.holdout_share
        holdout.append(held)
        steps.append(
            f"none: held out at random ({p.holdout_share:.0%} of playbook {p.key!r}) to measure it; do not contact for this alert"
            if held
            else p.next_step()
        )
    out["playbook"] = keys
    out["action"] = actions
    out["holdout"] = pd.Series(holdout, index=out.index, dtype=bool)
    out["holdout_seed"] = int(rules.holdout_seed)
    out["next_step"] = steps
    return out
