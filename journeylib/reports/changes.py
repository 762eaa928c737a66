"""What changed since the last run: this run's KPIs against the previous run's, with intervals and false-discovery control.

:func:`previous_run_dir_of` finds the folder of the same notebook in the most
recent earlier run that succeeded (runs are the folders of the reports
directory with a ``manifest.json``, see :mod:`journeylib.reports.index`);
:func:`changes_data` compares the latest period of each KPI in the two
``kpis`` tables (:func:`journeylib.customers.kpis.kpis_data`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps

from journeylib.exceptions import EmptyResultError, JourneyLibError
from journeylib.reports.artifacts import read_artifacts
from journeylib.stats import bh_qvalues, newcombe_difference_interval, two_proportion_z_test

__all__ = ["CHANGE_COLUMNS", "changes_data", "changes_since_data", "previous_run_dir_of"]

#: Columns of :func:`changes_data`.
CHANGE_COLUMNS: list[str] = [
    "kpi", "item", "unit", "previous_period", "current_period", "previous_value", "current_value", "difference",
    "ci_low", "ci_high", "p_value", "q_value", "flagged", "previous_n", "current_n", "test",
]


def previous_run_dir_of(output_dir: str | Path) -> Path | None:
    """Return the same notebook's folder in the most recent earlier run that succeeded, or None.

    Parameters
    ----------
    output_dir : str or pathlib.Path
        This notebook's report folder, ``<reports>/<run_id>/<notebook>``.

    Returns
    -------
    pathlib.Path or None
        ``<reports>/<earlier run_id>/<notebook>`` of the latest run of the
        same suite and the same customer sample, started before this one,
        whose manifest says it succeeded and whose record of this notebook
        succeeded and has an ``artifacts`` folder; None when there is none (a
        first run) or *output_dir* is empty. A run of another suite (other
        parameter sets) or on another sample is not a previous state of this
        one: comparing with it would flag differences of set-up as changes.
    """
    if not str(output_dir):
        return None
    here = Path(output_dir).resolve()
    run_dir, name = here.parent, here.name
    reports = run_dir.parent
    candidates: list[tuple[str, Path]] = []
    if not reports.is_dir():
        return None
    this = _manifest(run_dir)
    for manifest_path in reports.glob("*/manifest.json"):
        folder = manifest_path.parent
        if folder.resolve() == run_dir or folder.is_symlink():
            continue
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if manifest.get("status") != "succeeded":
            continue
        if this is not None and _setup(manifest) != _setup(this):
            continue
        record = next((n for n in manifest.get("notebooks", []) if n.get("name") == name), None)
        if record is None or record.get("status") != "succeeded" or not (folder / name / "artifacts").is_dir():
            continue
        candidates.append((str(manifest.get("started_at") or folder.name), folder / name))
    mine = (str(this.get("started_at") or "") or None) if this is not None else None
    earlier = [c for c in candidates if mine is None or c[0] < mine]
    return max(earlier)[1] if earlier else None


def _setup(manifest: dict[str, Any]) -> tuple[Any, Any, Any]:
    """Return what makes two runs comparable: the suite, and the sample asked for (its share or size and seed)."""
    sample = manifest.get("sample") or {}
    return manifest.get("suite"), sample.get("requested"), sample.get("random_state")


def _manifest(run_dir: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _latest(kpis: pd.DataFrame) -> pd.DataFrame:
    ok = kpis[kpis["value"].notna() & (kpis["n"] > 0)]
    return ok.sort_values("period").groupby(["freq", "kpi", "item"], as_index=False).tail(1).set_index(["freq", "kpi", "item"])


def changes_data(current: pd.DataFrame, previous: pd.DataFrame, *, alpha: float = 0.05) -> pd.DataFrame:
    """Compare the latest period of every KPI of this run with the previous run's, flagging changes larger than noise.

    Shares (stage conversion, churn rate, the share at risk) are compared
    with a two-proportion z-test and Newcombe's interval of the difference;
    medians (time to value) by a normal approximation from their intervals
    (each half-width / 1.96 taken as a standard error). The two runs may
    share customers, so the tests treat overlapping samples as independent,
    which makes them conservative when the same customers appear in both.
    Benjamini–Hochberg q-values are taken over every tested item.

    Only KPIs of the same period length (``freq``) are compared: a run by week
    and a run by month have no row in common.

    Parameters
    ----------
    current, previous : pandas.DataFrame
        Two ``kpis`` tables (:data:`journeylib.customers.kpis.KPI_COLUMNS`).
    alpha : float, default 0.05
        False-discovery rate for ``flagged`` and 1 − level of the intervals.

    Returns
    -------
    pandas.DataFrame
        One row per KPI and item present in both runs, flagged first, columns:
        ``kpi``, ``item``, ``unit``; ``previous_period``, ``current_period`` (the latest period with a
        value in each run); ``previous_value``, ``current_value``; ``difference`` (current − previous;
        for ``at_risk`` the difference of the shares at risk); ``ci_low``, ``ci_high`` (its interval);
        ``p_value``, ``q_value``; ``flagged`` (q below ``alpha``); ``previous_n``, ``current_n``
        (denominators); ``test`` (the test used).

    Raises
    ------
    ValueError
        If a table lacks a KPI column.

    Examples
    --------
    >>> cols = ["period", "freq", "kpi", "item", "value", "ci_low", "ci_high", "numerator", "n", "unit"]
    >>> a = pd.DataFrame([["2024-01", "month", "churn_rate", "", 0.05, 0.04, 0.06, 50, 1000, "share"]], columns=cols)
    >>> b = pd.DataFrame([["2024-02", "month", "churn_rate", "", 0.10, 0.08, 0.12, 100, 1000, "share"]], columns=cols)
    >>> bool(changes_data(b, a)["flagged"].iloc[0])
    True
    """
    need = {"period", "freq", "kpi", "item", "value", "ci_low", "ci_high", "numerator", "n", "unit"}
    for name, table in (("current", current), ("previous", previous)):
        missing = need - set(table.columns)
        if missing:
            msg = f"changes_data: the {name} kpis table lacks the columns {sorted(missing)}; it has {list(table.columns)}"
            raise ValueError(msg)
    cur, prev = _latest(current), _latest(previous)
    rows: list[dict[str, Any]] = []
    z = sps.norm.ppf(1 - alpha / 2)
    for key in cur.index.intersection(prev.index):
        c, p = cur.loc[key], prev.loc[key]
        row: dict[str, Any] = {
            "kpi": key[1], "item": key[2], "unit": c["unit"], "previous_period": p["period"], "current_period": c["period"],
            "previous_value": float(p["value"]), "current_value": float(c["value"]), "previous_n": int(p["n"]),
            "current_n": int(c["n"]),
        }
        if c["unit"] in ("share", "customers"):
            k1, n1, k0, n0 = int(c["numerator"]), int(c["n"]), int(p["numerator"]), int(p["n"])
            diff = k1 / n1 - k0 / n0
            lo, hi = newcombe_difference_interval(k1, n1, k0, n0, alpha=alpha)
            pv = two_proportion_z_test(k1, n1, k0, n0)[1] if (k1 + k0) > 0 and (k1 + k0) < (n1 + n0) else 1.0
            row.update(difference=diff, ci_low=lo, ci_high=hi, p_value=float(pv), test="two-proportion z-test")
        else:
            se1 = (float(c["ci_high"]) - float(c["ci_low"])) / (2 * z)
            se0 = (float(p["ci_high"]) - float(p["ci_low"])) / (2 * z)
            diff = float(c["value"]) - float(p["value"])
            se = float(np.hypot(se1, se0))
            if np.isfinite(se) and se > 0:
                row.update(difference=diff, ci_low=diff - z * se, ci_high=diff + z * se,
                           p_value=float(2 * sps.norm.sf(abs(diff) / se)), test="normal approximation from the intervals")
            else:
                row.update(difference=diff, ci_low=np.nan, ci_high=np.nan, p_value=np.nan,
                           test="not tested: an interval bound is not reached")
        rows.append(row)
    out = pd.DataFrame(rows, columns=[c for c in CHANGE_COLUMNS if c not in ("q_value", "flagged")])
    out["q_value"] = bh_qvalues(out["p_value"].to_numpy(float)) if len(out) else []
    out["flagged"] = out["q_value"].lt(alpha)
    out = out[CHANGE_COLUMNS]
    return out.sort_values(["flagged", "q_value"], ascending=[False, True], na_position="last").reset_index(drop=True)


def changes_since_data(kpis: pd.DataFrame | None, *, output_dir: str | Path = "", previous_run_dir: str | Path = "",
                       alpha: float = 0.05) -> pd.DataFrame:
    """Compare *kpis* with the ``kpis`` artifact of the previous run (given, or found by :func:`previous_run_dir_of`).

    Parameters
    ----------
    kpis : pandas.DataFrame or None
        This run's :func:`journeylib.customers.kpis.kpis_data`; None when this run has none (nothing to compare).
    output_dir : str or pathlib.Path, default ""
        This notebook's report folder, from which the previous run is found.
    previous_run_dir : str or pathlib.Path, default ""
        The earlier run's folder of this notebook (``reports/<run_id>/<notebook>``); empty means found.
    alpha : float, default 0.05
        As in :func:`changes_data`.

    Returns
    -------
    pandas.DataFrame
        :func:`changes_data` of this run against the previous one, with ``previous_run`` (its folder) added.

    Raises
    ------
    EmptyResultError
        When this run has no KPIs, there is no previous run (a first run, or a run outside
        ``journeylib report``) or it saved no ``kpis`` table; the message says which.
    """
    if kpis is None:
        msg = "this run computed no KPIs, so there is nothing to compare with the previous run"
        raise EmptyResultError(msg)
    folder = Path(previous_run_dir) if str(previous_run_dir) else previous_run_dir_of(output_dir)
    if folder is None:
        msg = "first run: no earlier successful run of this notebook was found next to this one, so nothing is compared yet"
        raise EmptyResultError(msg)
    try:
        previous = read_artifacts(folder, tables=["kpis"]).tables["kpis"]
    except JourneyLibError as err:
        msg = f"the previous run {folder} has no kpis table to compare with ({err})"
        raise EmptyResultError(msg) from err
    out = changes_data(kpis, previous, alpha=alpha)
    if out.empty:
        msg = (
            f"the previous run {folder} has no KPI of the same kind and period length as this one "
            f"(this run: {sorted(set(kpis['freq']))}; previous: {sorted(set(previous.get('freq', pd.Series(dtype=str))))})"
        )
        raise EmptyResultError(msg)
    out["previous_run"] = str(folder)
    return out
