"""The values the scope filters can take in a store (segments, plans, signup periods), for dashboard pickers."""

from __future__ import annotations

import pandas as pd

from journeylib.store import Store

__all__ = ["scope_choices_data"]


def scope_choices_data(store: Store, *, cohort_freq: str = "Q") -> pd.DataFrame:
    """Return the values the scope filters can take in this store, for dashboard pickers.

    Parameters
    ----------
    store : Store
        The canonical store.
    cohort_freq : str, default "Q"
        Pandas period alias of the signup periods (``"M"``, ``"Q"``, ``"Y"``).

    Returns
    -------
    pandas.DataFrame
        One row per choice: ``field`` (``segment``, ``plan`` or
        ``signup_period``), ``value`` (the segment, the plan, or the period
        such as ``2025Q1``), ``customers`` (customers with that value: the
        count shown next to it), ``signup_from`` and ``signup_to`` (the
        period's bounds as ISO dates, ``[from, to)``; empty for segments and
        plans). Sorted by field, then value (periods in time order).
    """
    cust = store.query("SELECT segment, plan, signup_at FROM customers")
    rows = []
    for field in ("segment", "plan"):
        counts = cust[field].dropna().astype(str).value_counts().sort_index()
        rows += [{"field": field, "value": v, "customers": int(n), "signup_from": "", "signup_to": ""} for v, n in counts.items()]
    if len(cust):
        periods = cust["signup_at"].dt.tz_convert("UTC").dt.tz_localize(None).dt.to_period(cohort_freq)
        for period, n in periods.value_counts().sort_index().items():
            rows.append({"field": "signup_period", "value": str(period), "customers": int(n),
                         "signup_from": period.start_time.date().isoformat(), "signup_to": (period + 1).start_time.date().isoformat()})
    return pd.DataFrame(rows, columns=["field", "value", "customers", "signup_from", "signup_to"])
