"""Views of a drivers table for reports: the strongest rows, plain-English lines, success indicators, notes, summary.

Each function takes the frame :func:`journeylib.customers.drivers.drivers_data`
returned. The lines describe associations only; they never claim a cause.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from journeylib.words import join_words, percent, plural, ratio, sentence

__all__ = [
    "OUTCOME_VERBS",
    "driver_line",
    "driver_lines_data",
    "driver_notes_data",
    "driver_search_data",
    "driver_summary",
    "success_indicators_data",
    "top_drivers_data",
]

#: Past-tense verbs of the outcomes in plain-English lines.
OUTCOME_VERBS: dict[str, str] = {"churn": "churned", "conversion": "converted", "expansion": "expanded", "renewal": "renewed"}


def _num(row: pd.Series, col: str) -> float:
    """Return a numeric cell of *row*, NaN when absent or empty."""
    v = row.get(col, np.nan)
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def _interval(low: float, high: float) -> str:
    return f"{low:.1f}–{high:.1f}"


def driver_line(row: pd.Series, verb: str) -> str:
    """Write the plain-English sentences of one significant row: association only, numbers cited, estimate named.

    Parameters
    ----------
    row : pandas.Series
        A row of a drivers table (``exposure``, ``reference``, ``estimate``,
        ``rr`` / ``hr`` and their intervals, ``rate_exposed``,
        ``rate_reference``, ``horizon_days``, ``n_exposed``, ``n_reference``,
        ``adjusted_for``, ``rr_adjusted``; when present ``timing``,
        ``as_of``, ``horizon_basis``, ``window_days``,
        ``n_excluded_followup``, the Kaplan–Meier columns).
    verb : str
        Past tense of the outcome (:data:`OUTCOME_VERBS`), e.g. ``"churned"``.

    Returns
    -------
    str
        With ``estimate = risk_ratio``: "Customers <exposure> <verb> <RR>× as
        often (…) within <H> days of signup (…)." (or "… as of <date> (…)."
        for a cross-sectional outcome), then a sentence naming how the horizon
        was chosen and the customers left out. With ``estimate =
        hazard_ratio``: "Customers <exposure> <verb> at <HR>× the rate of
        customers <reference> (hazard ratio of a Cox model, …)." followed by
        the Kaplan–Meier shares at the horizon with the censored customers,
        the crude comparison of the customers followed for the whole horizon,
        and how the horizon was chosen. Every part is a full sentence.
    """
    adj = ""
    adjusted_for = row.get("adjusted_for", "")
    if isinstance(adjusted_for, str) and adjusted_for and np.isfinite(_num(row, "rr_adjusted")):
        adj = f"; adjusted for {join_words(adjusted_for.split(', '))} {ratio(_num(row, 'rr_adjusted'))}"
    cross = row.get("timing", "since_signup") == "cross_sectional"
    horizon = _num(row, "horizon_days")
    n1, n0 = int(_num(row, "n_exposed") or 0), int(_num(row, "n_reference") or 0)
    crude_counts = f"{n1:,} vs {plural(n0, 'customer')}"
    basis = str(row.get("horizon_basis", "") or "")
    basis_text = f"The {horizon:g}-day horizon is {basis}." if basis and basis != "given" and not cross else ""
    left = int(_num(row, "n_excluded_followup") or 0) if np.isfinite(_num(row, "n_excluded_followup")) else 0
    if str(row.get("estimate", "risk_ratio")) == "hazard_ratio" and np.isfinite(_num(row, "hr")):
        window = _num(row, "window_days")
        k1, k0 = int(_num(row, "n_km_exposed")), int(_num(row, "n_km_reference"))
        e1, e0 = int(_num(row, "events_km_exposed")), int(_num(row, "events_km_reference"))
        start = f"the end of the {window:g}-day window" if np.isfinite(window) and window > 0 else "signup"
        parts = [
            f"Customers {row['exposure']} {verb} at {ratio(_num(row, 'hr'))} the rate of customers {row['reference']} "
            f"(hazard ratio of a Cox model, 95% CI {_interval(_num(row, 'hr_ci_low'), _num(row, 'hr_ci_high'))}; "
            f"{k1:,} vs {plural(k0, 'customer')} followed from {start} to day {horizon:g} after signup or the "
            f"censoring date, of whom {e1:,} vs {e0:,} {verb})."
        ]
        r1, r0 = _num(row, "risk_km_exposed"), _num(row, "risk_km_reference")
        censored = int(_num(row, "n_censored") or 0)
        if np.isfinite(r1) and np.isfinite(r0):
            parts.append(
                f"By day {horizon:g} after signup, {percent(r1)} vs {percent(r0)} had {verb} (Kaplan–Meier, with "
                f"{plural(censored, 'customer')} followed for less kept as censored)."
            )
        if n1 and n0 and np.isfinite(_num(row, "rr")):
            left_text = (f"; {plural(left, 'customer')} followed for less than {horizon:g} days "
                         f"{'were' if left != 1 else 'was'} left out of this comparison") if left else ""
            parts.append(
                f"Among the {plural(n1 + n0, 'customer')} followed for the whole {horizon:g} days, "
                f"{percent(_num(row, 'rate_exposed'))} vs {percent(_num(row, 'rate_reference'))} {verb} (crude risk "
                f"ratio {ratio(_num(row, 'rr'))}, 95% CI {_interval(_num(row, 'rr_ci_low'), _num(row, 'rr_ci_high'))}; "
                f"{crude_counts}{adj}{left_text})."
            )
        if basis_text:
            parts.append(basis_text)
        return " ".join(parts)
    when = f"as of {row.get('as_of', '')}" if cross else f"within {horizon:g} days of signup"
    text = (
        f"Customers {row['exposure']} {verb} {ratio(_num(row, 'rr'))} as often "
        f"({percent(_num(row, 'rate_exposed'))} vs {percent(_num(row, 'rate_reference'))}) {when} "
        f"(95% CI {_interval(_num(row, 'rr_ci_low'), _num(row, 'rr_ci_high'))}; {crude_counts}{adj})."
    )
    if cross:
        return text
    extra = []
    if basis_text:
        extra.append(basis_text[:-1])
    if left:
        extra.append(f"{plural(left, 'customer')} followed for less than {horizon:g} days "
                     f"{'were' if left != 1 else 'was'} left out")
    rr_km = _num(row, "rr_km")
    if left and np.isfinite(rr_km):
        extra.append(f"keeping them, censored, the Kaplan–Meier ratio is {ratio(rr_km)} "
                     f"({_interval(_num(row, 'rr_km_ci_low'), _num(row, 'rr_km_ci_high'))})")
    if extra:
        text += " " + sentence("; ".join(extra))
    return text


def driver_summary(drivers: pd.DataFrame) -> dict[str, Any]:
    """Return the headline numbers of a drivers table, for a report's summary.json.

    Parameters
    ----------
    drivers : pandas.DataFrame
        The result of :func:`journeylib.customers.drivers.drivers_data`.

    Returns
    -------
    dict
        ``outcome``, ``timing``, ``as_of``, ``horizon_days`` (None when
        cross-sectional), ``horizon_basis``, ``window_basis``,
        ``events_after_horizon``, ``population`` (customers analysed),
        ``events`` (of them, with the outcome), ``outcome_rate``,
        ``excluded`` (dict of exclusion reason -> customers),
        ``candidates`` (rows), ``family_size`` (rows tested),
        ``significant`` (rows with q ≤ alpha), ``alpha``, ``min_support``,
        ``top_line`` (first plain-English line), ``estimate``
        (``hazard_ratio`` or ``risk_ratio``: what ranks and tests the
        splits), ``attributes_used`` (the attributes tested, and with
        ``attributes="auto"`` how they were chosen and which were not).
    """
    if drivers.empty:
        return {"candidates": 0}
    first = drivers.iloc[0]
    ok = drivers[drivers["status"] == "ok"]
    pop = int(first["population"])
    events = int(first["events"])
    return {
        "outcome": str(first["outcome"]),
        "timing": str(first.get("timing", "since_signup")),
        "as_of": str(first.get("as_of", "")),
        "horizon_days": float(first["horizon_days"]) if np.isfinite(first["horizon_days"]) else None,
        "horizon_basis": str(first.get("horizon_basis", "")),
        "window_basis": str(first.get("window_basis", "")),
        "events_after_horizon": int(first.get("events_after_horizon", 0)),
        "population": pop,
        "events": events,
        "outcome_rate": events / pop if pop else None,
        "excluded": {
            "window_incomplete": int(first["n_excluded_window"]),
            "followup_incomplete": int(first["n_excluded_followup"]),
            "not_at_risk": int(first["n_not_at_risk"]),
            "outcome_before_window_end": int(first["n_excluded_prior_outcome"]),
            "outcome_unknown": int(first.get("n_outcome_unknown", 0)),
        },
        "candidates": len(drivers),
        "family_size": len(ok),
        "significant": int(drivers["significant"].sum()),
        "alpha": float(first["alpha"]),
        "min_support": int(first["min_support"]),
        "top_line": str(driver_lines_data(drivers, top_n=1)["line"].iloc[0]),
        "estimate": str(first.get("estimate", "") or (ok["estimate"].iloc[0] if len(ok) and "estimate" in ok else "")),
        "attributes_used": str(first.get("attributes_used", "")),
    }


# -- views of a drivers table ---------------------------------------------------------------------
def top_drivers_data(drivers: pd.DataFrame, *, top_n: int = 15, selected_only: bool = True) -> pd.DataFrame:
    """Return the strongest estimated rows of a drivers table, for a forest plot.

    Parameters
    ----------
    drivers : pandas.DataFrame
        The result of :func:`journeylib.customers.drivers.drivers_data`.
    top_n : int, default 15
        Rows to keep.
    selected_only : bool, default True
        Keep one split per feature (its best threshold).

    Returns
    -------
    pandas.DataFrame
        The same columns, ranked rows with status ``ok`` only, at most
        ``top_n``, plus ``label`` (``exposure`` with its first word removed,
        for axes).

    Raises
    ------
    ValueError
        If *drivers* lacks the columns of :func:`journeylib.customers.drivers.drivers_data`.
    """
    missing = [c for c in ("rank", "status", "selected", "exposure") if c not in drivers.columns]
    if missing:
        msg = f"top_drivers_data: pass the DataFrame returned by drivers_data (missing columns {missing})"
        raise ValueError(msg)
    ok = drivers[(drivers["status"] == "ok") & drivers["rank"].notna()]
    if selected_only:
        ok = ok[ok["selected"]]
    out = ok.sort_values("rank").head(int(top_n)).copy()
    out["label"] = out["exposure"].str.replace(r"^(who|with) ", "", regex=True)
    return out.reset_index(drop=True)


def driver_lines_data(drivers: pd.DataFrame, *, top_n: int = 10) -> pd.DataFrame:
    """Return the plain-English lines of the significant rows, best first.

    One line per feature (its selected threshold). When no row is
    significant, a single line says so, with the population and event count.

    Parameters
    ----------
    drivers : pandas.DataFrame
        The result of :func:`journeylib.customers.drivers.drivers_data`.
    top_n : int, default 10
        Lines to return at most.

    Returns
    -------
    pandas.DataFrame
        ``rank`` (1-based, of the line), ``candidate``, ``q_value`` and
        ``line`` (the sentence).
    """
    sig = drivers[drivers["significant"] & drivers["selected"]].sort_values("rank").head(int(top_n))
    if sig.empty:
        n = int(drivers["population"].iloc[0]) if len(drivers) else 0
        outcome = str(drivers["outcome"].iloc[0]) if len(drivers) else "the outcome"
        alpha = float(drivers["alpha"].iloc[0]) if len(drivers) else 0.05
        tested = int(drivers["family_size"].iloc[0]) if len(drivers) else 0
        line = (
            f"No behaviour tested ({tested} splits of {n:,} customers) differed in its {outcome} rate "
            f"at a false discovery rate of {alpha:.0%}."
        )
        return pd.DataFrame({"rank": [1], "candidate": [""], "q_value": [np.nan], "line": [line]})
    return pd.DataFrame(
        {"rank": np.arange(1, len(sig) + 1), "candidate": sig["candidate"].to_numpy(), "q_value": sig["q_value"].to_numpy(),
         "line": sig["line"].to_numpy()}
    )


def success_indicators_data(drivers: pd.DataFrame, *, top_n: int = 5) -> pd.DataFrame:
    """Return what converting trials do in their first days: significant behaviours done more by converters.

    Parameters
    ----------
    drivers : pandas.DataFrame
        The result of :func:`journeylib.customers.drivers.drivers_data` with ``outcome="conversion"``.
    top_n : int, default 5
        Indicators to return at most.

    Returns
    -------
    pandas.DataFrame
        Rows of *drivers* (same columns) that are significant, selected, and
        oriented ``as_defined`` for behaviours (doing it goes with a higher
        conversion rate), best first, plus ``indicator``, one sentence: "<share>
        of converting trials <did the behaviour> (vs <share> of the others;
        converted <RR>× as often, 95% CI <low>–<high>)." — an exposure "with
        <k or more …>" reads "had <k or more …>".
    """
    keep = drivers["significant"] & drivers["selected"] & (drivers["orientation"] == "as_defined")
    keep &= drivers["kind"].isin(["did_within", "count_at_least", "stage_reached", "value_at_least"])
    out = drivers[keep].sort_values("rank").head(int(top_n)).copy()
    out["indicator"] = [
        sentence(
            f"{percent(_num(r, 'share_of_outcome'))} of converting trials {_did(str(r['exposure']))} "
            f"(vs {percent(_num(r, 'share_of_no_outcome'))} of the others; converted {ratio(_num(r, 'rr'))} as often, "
            f"95% CI {_interval(_num(r, 'rr_ci_low'), _num(r, 'rr_ci_high'))})"
        )
        for _, r in out.iterrows()
    ]
    return out.reset_index(drop=True)


def _did(exposure: str) -> str:
    """Turn an exposure ("who reached …", "with 3 or more …") into what a trial did ("reached …", "had 3 or more …")."""
    if exposure.startswith("who "):
        return exposure.removeprefix("who ")
    if exposure.startswith("with "):
        return "had " + exposure.removeprefix("with ")
    return exposure


def driver_notes_data(drivers: pd.DataFrame) -> pd.DataFrame:
    """Summarise why rows of a drivers table have no estimate, and who was left out.

    Parameters
    ----------
    drivers : pandas.DataFrame
        The result of :func:`journeylib.customers.drivers.drivers_data`.

    Returns
    -------
    pandas.DataFrame
        ``topic`` (``population`` or ``candidates``), ``item`` (exclusion
        reason or row status), ``count`` (customers or candidate rows) and
        ``example`` (one reason text).
    """
    if drivers.empty:
        return pd.DataFrame(columns=["topic", "item", "count", "example"])
    first = drivers.iloc[0]
    rows = [
        {"topic": "population", "item": "analysed", "count": int(first["population"]), "example": ""},
        {"topic": "population", "item": "window_incomplete", "count": int(first["n_excluded_window"]), "example": ""},
        {"topic": "population", "item": "followup_incomplete", "count": int(first["n_excluded_followup"]), "example": ""},
        {"topic": "population", "item": "not_at_risk", "count": int(first["n_not_at_risk"]), "example": ""},
        {"topic": "population", "item": "outcome_before_window_end", "count": int(first["n_excluded_prior_outcome"]), "example": ""},
        {"topic": "population", "item": "outcome_unknown", "count": int(first.get("n_outcome_unknown", 0)), "example": ""},
        {"topic": "population", "item": "outcome_after_horizon", "count": int(first.get("events_after_horizon", 0)),
         "example": "had the outcome after the horizon: counted as no outcome within it"},
    ]
    for status, grp in drivers.groupby("status", sort=True):
        rows.append({"topic": "candidates", "item": str(status), "count": len(grp), "example": str(grp["reason"].iloc[0])})
    return pd.DataFrame(rows)


def driver_search_data(drivers: pd.DataFrame, *, family: str | None = None, top_n: int = 5) -> pd.DataFrame:
    """Return every window and threshold tried for the strongest behaviours, so the plateau around a choice shows.

    Parameters
    ----------
    drivers : pandas.DataFrame
        The result of :func:`journeylib.customers.drivers.drivers_data`.
    family : str, optional
        One search family (e.g. ``"event:setup_completed"``); default the
        families of the ``top_n`` best selected, significant rows.
    top_n : int, default 5
        Families shown when ``family`` is not given.

    Returns
    -------
    pandas.DataFrame
        One row per split of those families: ``family``, ``candidate``,
        ``kind``, ``window_days``, ``threshold``, ``n_exposed``,
        ``n_reference``, ``rr``, ``rr_ci_low``, ``rr_ci_high``,
        ``q_value``, ``significant``, ``selected`` (the family's chosen
        split), ``status``; ordered by family rank, then window and threshold.
    """
    cols = ["family", "candidate", "kind", "window_days", "threshold", "n_exposed", "n_reference", "rr", "rr_ci_low",
            "rr_ci_high", "q_value", "significant", "selected", "status"]
    missing = [c for c in cols if c not in drivers.columns]
    if missing:
        msg = f"driver_search_data: pass the DataFrame returned by drivers_data (missing columns {missing})"
        raise ValueError(msg)
    if family is not None:
        fams = [family]
    else:
        sel = drivers[drivers["selected"] & drivers["significant"]].sort_values("rank")
        fams = sel["family"].head(int(top_n)).tolist()
    out = drivers[drivers["family"].isin(fams)].copy()
    out["_f"] = out["family"].map({f: i for i, f in enumerate(fams)})
    out["_t"] = pd.to_numeric(out["threshold"], errors="coerce")
    out = out.sort_values(["_f", "window_days", "_t", "candidate"])
    return out.loc[:, cols].reset_index(drop=True)
