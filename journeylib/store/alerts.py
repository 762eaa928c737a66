"""The alert history: every alert raised, with its explanation, written idempotently.

One table, ``alert_history``, owned by this module (its DDL is
:data:`ALERT_HISTORY_DDL`, created on first use). Its key ``alert_id`` is the
idempotency key ``<rule>:<customer_id>:<YYYY-MM-DD>``: the rule, the customer
and the start of the cooldown window the alert opens (its as-of day).

:func:`record_alerts` writes a batch in **one transaction**, and writes an
alert only when no alert of the same rule and customer is stored within the
cooldown of either (``|day - stored day| < cooldown days``, the cooldown of
the earlier of the two): re-running the same day, or a later day within the
cooldown, adds nothing; a run killed mid-way left either the whole batch or
nothing, so the re-run fills exactly what is missing.
"""

from __future__ import annotations

import pandas as pd

from journeylib.store.database import Store
from journeylib.store.errors import cleanup

__all__ = [
    "ALERT_HISTORY_COLUMNS",
    "ALERT_HISTORY_DDL",
    "alert_history_data",
    "blocked_by_cooldown",
    "ensure_alert_history",
    "record_alerts",
]

#: Columns of ``alert_history`` with their DuckDB types, in order.
ALERT_HISTORY_COLUMNS: dict[str, str] = {
    "alert_id": "VARCHAR",
    "rule": "VARCHAR",
    "customer_id": "VARCHAR",
    "name": "VARCHAR",
    "owner": "VARCHAR",
    "segment": "VARCHAR",
    "plan": "VARCHAR",
    "severity": "VARCHAR",
    "why": "VARCHAR",
    "next_step": "VARCHAR",
    "action": "VARCHAR",
    "playbook": "VARCHAR",
    "holdout": "BOOLEAN",
    "holdout_seed": "BIGINT",
    "as_of": "TIMESTAMPTZ",
    "as_of_day": "INTEGER",
    "cooldown_days": "INTEGER",
    "raised_at": "TIMESTAMPTZ",
    "run_id": "VARCHAR",
    "rules_name": "VARCHAR",
    "explanation": "VARCHAR",
}

#: The table's DDL: the idempotency key is the primary key.
_NOT_NULL = ("rule", "customer_id", "as_of_day", "cooldown_days")
ALERT_HISTORY_DDL = (
    "CREATE TABLE IF NOT EXISTS alert_history (\n  "
    + ",\n  ".join(
        f'"{c}" {t}' + (" PRIMARY KEY" if c == "alert_id" else " NOT NULL" if c in _NOT_NULL else "")
        for c, t in ALERT_HISTORY_COLUMNS.items()
    )
    + "\n)"
)

_NEAR = """h.rule = a.rule AND h.customer_id = a.customer_id
           AND ((h.as_of_day <= a.as_of_day AND a.as_of_day < h.as_of_day + h.cooldown_days)
             OR (a.as_of_day <= h.as_of_day AND h.as_of_day < a.as_of_day + a.cooldown_days))"""


def ensure_alert_history(store: Store) -> None:
    """Create ``alert_history`` if the store does not have it.

    Parameters
    ----------
    store : Store
        A writable store.
    """
    store.execute(ALERT_HISTORY_DDL)


def _frame(alerts: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in ALERT_HISTORY_COLUMNS if c not in alerts.columns]
    if missing:
        msg = f"alert_history: the alerts frame lacks column(s) {missing}; expected {list(ALERT_HISTORY_COLUMNS)}"
        raise ValueError(msg)
    dupes = alerts["alert_id"][alerts["alert_id"].duplicated()]
    if len(dupes):
        msg = f"alert_history: alert_id must be unique within a batch; repeated: {sorted(set(dupes))[:3]}"
        raise ValueError(msg)
    return alerts[list(ALERT_HISTORY_COLUMNS)]


def record_alerts(store: Store, alerts: pd.DataFrame) -> list[str]:
    """Write alerts into ``alert_history`` in one transaction, skipping those a stored alert's cooldown covers.

    Parameters
    ----------
    store : Store
        A writable store (the table is created if missing).
    alerts : pandas.DataFrame
        The columns of :data:`ALERT_HISTORY_COLUMNS`, ``alert_id`` unique,
        at most one alert per rule and customer within a cooldown (one
        as-of day per batch does that).

    Returns
    -------
    list of str
        The ``alert_id`` of every alert written, sorted.

    Raises
    ------
    ValueError
        If a column is missing or an ``alert_id`` repeats.
    """
    frame = _frame(alerts)
    ensure_alert_history(store)
    if frame.empty:
        return []
    cols = ", ".join(f'"{c}"' for c in ALERT_HISTORY_COLUMNS)
    select = ", ".join(f'CAST(a."{c}" AS {t})' for c, t in ALERT_HISTORY_COLUMNS.items())
    fresh = f"NOT EXISTS (SELECT 1 FROM alert_history h WHERE h.alert_id = a.alert_id OR ({_NEAR}))"
    with store.transaction():
        store.con.register("_jl_alerts", frame)
        with cleanup(store.con.unregister, "_jl_alerts"):
            written = store.query(f"SELECT a.alert_id FROM _jl_alerts a WHERE {fresh} ORDER BY 1")
            store.execute(f"INSERT INTO alert_history ({cols}) SELECT {select} FROM _jl_alerts a WHERE {fresh}")
    return [str(x) for x in written["alert_id"]]


def blocked_by_cooldown(store: Store, alerts: pd.DataFrame) -> pd.Series:
    """Return which alerts a stored alert (same id, or same rule and customer within a cooldown) would block.

    Parameters
    ----------
    store : Store
        The store (read-only is fine; without ``alert_history`` nothing is blocked).
    alerts : pandas.DataFrame
        ``alert_id``, ``rule``, ``customer_id``, ``as_of_day``, ``cooldown_days``.

    Returns
    -------
    pandas.Series
        Bool, aligned with *alerts*: True where :func:`record_alerts` would skip the alert.
    """
    if alerts.empty or "alert_history" not in store.tables():
        return pd.Series(False, index=alerts.index, dtype=bool)
    keys = alerts[["alert_id", "rule", "customer_id", "as_of_day", "cooldown_days"]].reset_index(drop=True)
    keys["_row"] = range(len(keys))
    hit = store.query(
        f"""SELECT DISTINCT a._row FROM _jl_keys a JOIN alert_history h ON h.alert_id = a.alert_id OR ({_NEAR})""",
        _jl_keys=keys,
    )
    blocked = pd.Series(False, index=range(len(keys)), dtype=bool)
    blocked.loc[hit["_row"].astype(int).tolist()] = True
    blocked.index = alerts.index
    return blocked


def alert_history_data(store: Store, *, as_of_day: int | None = None) -> pd.DataFrame:
    """Return the stored alerts (all, or those of one as-of day), oldest first.

    Parameters
    ----------
    store : Store
        The store; without ``alert_history`` the result is empty.
    as_of_day : int, optional
        Only the alerts of this UTC day number.

    Returns
    -------
    pandas.DataFrame
        The columns of :data:`ALERT_HISTORY_COLUMNS`, ordered by ``as_of_day``
        and ``alert_id``.
    """
    if "alert_history" not in store.tables():
        return pd.DataFrame({c: pd.Series(dtype=object) for c in ALERT_HISTORY_COLUMNS})
    cols = ", ".join(f'"{c}"' for c in ALERT_HISTORY_COLUMNS)
    if as_of_day is None:
        return store.query(f"SELECT {cols} FROM alert_history ORDER BY as_of_day, alert_id")
    return store.query(f"SELECT {cols} FROM alert_history WHERE as_of_day = $d ORDER BY alert_id", {"d": int(as_of_day)})
