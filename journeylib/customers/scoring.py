"""Per-customer churn risk: reasons in journey words, the next stage, and the scored table of ``journeylib score``.

* :func:`risk_reasons_data` explains each customer's risk by **grouped
  occlusion on the instance**: for each journey factor (a group of related
  snapshot features: inactivity, activity trend, tickets, ticket sentiment,
  satisfaction, e-mail, stage, tenure, users, plan), the customer's factor
  values are replaced by those of ``n_background`` reference customers, one
  at a time, and the change in the model's calibrated risk is averaged. The
  contribution ``risk(customer) - mean risk(customer with the factor of a
  reference customer)`` is in probability points: positive raises the risk,
  negative lowers it. It works for any fitted classifier with
  ``predict_proba`` (the boosted model, the logistic baseline, the rule
  score). For a model linear in its features it equals
  ``sum(w_j * (x_j - mean of the reference x_j))`` over the factor's features
  (the logistic contributions); a test checks that. ``shap`` was not used:
  it is not a dependency and brings numba and llvmlite.
* :func:`next_stage_data` gives, for each current stage, the next stage of
  the journey definition and the empirical probability of reaching it within
  the horizon.
* :func:`score_customers` trains the boosted model on the store's history
  (every labelled weekly snapshot up to the as-of day: labels never read past
  it) and scores every active paying customer on the as-of day and 7 days
  before; :func:`score_customers_data` returns its table.

Reasons describe what the model associates with churn; they are warning
signs, not causes, and acting on one is not shown to prevent churn.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import itertools
import json
import math
import re
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from journeylib import __version__
from journeylib.cache import ResultCache
from journeylib.config.journey import JourneyDefinition
from journeylib.customers.risk import MODEL_VERSION, ChurnClassifier
from journeylib.customers.snapshots import (
    DEFAULT_HORIZON_DAYS,
    Snapshots,
    asof_days,
    build_snapshots,
    day_end,
    day_number,
    expand_columns,
)
from journeylib.exceptions import EmptyResultError, StatisticalWarning
from journeylib.journey.stages import stage_milestones
from journeylib.scope import Scope
from journeylib.store import Store
from journeylib.store.dialect import sql_quote
from journeylib.store.memory import BOUNDED_MEMORY_LIMIT, bounded_memory_limit, give_back_freed_memory
from journeylib.store.progress import progress_bar
from journeylib.words import percent, plural, ratio

__all__ = [
    "DEFAULT_BAND_CUTS",
    "RISK_BANDS",
    "SCORING_MEMORY_LIMIT",
    "RiskScores",
    "cox_table_data",
    "landmark_durations_data",
    "model_card_data",
    "next_stage_data",
    "reason_factors_data",
    "risk_band",
    "risk_reasons_data",
    "score_customers",
    "score_customers_data",
    "scoring_memory_limit",
]

#: Risk bands, lowest first; a risk below the first cut is ``low``.
RISK_BANDS: tuple[str, ...] = ("low", "medium", "high", "very high")
#: Cut points of the bands (calibrated probability of churn within the horizon): low < 0.10 <= medium < 0.25 <= high < 0.50 <= very high.
DEFAULT_BAND_CUTS: tuple[float, ...] = (0.10, 0.25, 0.50)
#: Fewest churned training snapshots (and non-churned ones) :func:`score_customers` trains on.
MIN_TRAIN_CHURNED = 10

_ACTIVITY_RECENCY = ("days_since_activity", "days_since_product")
#: What the snapshots read of the ticket scores.
SENTIMENT_COLUMNS: tuple[str, ...] = ("ticket_id", "compound", "polarity")
#: About this many tickets are read and scored at a time by :func:`score_customers` (whole customers per block).
TICKET_BLOCK_ROWS = 50_000
#: DuckDB ``memory_limit`` of the statements :func:`score_customers` runs on a store whose own limit is its
#: default (no ``memory_limit=`` given, ``$JOURNEYLIB_MEMORY_LIMIT`` not set), when lower than that default. Above
#: it DuckDB spills to disk: the results are the same. Measured at 10M events: see ``benchmarks/results/scale_score.md``.
SCORING_MEMORY_LIMIT = BOUNDED_MEMORY_LIMIT


# -- journey factors ---------------------------------------------------------------------------
def _window(feature: str, prefix: str) -> int | None:
    m = re.fullmatch(rf"{prefix}_(\d+)d", feature)
    return int(m.group(1)) if m else None


def _factor_of(feature: str, activity_recency: str | None) -> str:
    """Return the journey factor of a snapshot feature (the feature itself when it belongs to none)."""
    for prefix in ("activity", "active_days"):
        w = _window(feature, prefix)
        if w is not None:
            return "inactivity" if w <= 7 else "activity_trend"
    if feature == activity_recency:
        return "inactivity"
    if feature.startswith(("baseline_", "activity_ratio_", "activity_slope_", "active_share_ratio_", "activity_drop_score_")) \
            or feature == "usual_gap_days":
        return "activity_trend"
    if feature.startswith(("negative_tickets_", "ticket_compound_")):
        return "ticket_sentiment"
    if feature.startswith("satisfaction_"):
        return "satisfaction"
    if feature in ("days_since_ticket", "days_since_support"):
        return "ticket_recency"
    if feature.startswith("tickets_") or feature == "open_tickets":
        return "tickets"
    if feature.startswith(("emails_", "email_", "days_since_email")) or feature == "unsubscribed":
        return "email"
    if feature in ("stage", "stages_reached"):
        return "stage"
    if feature in ("days_in_stage", "days_in_stage_vs_peers", "stage_overdue"):
        return "stage_time"
    if feature in ("tenure_days", "paying_days"):
        return "tenure"
    if feature == "users":
        return "users"
    if feature in ("segment", "plan"):
        return "plan"
    return feature


def reason_factors_data(features: Sequence[str]) -> pd.DataFrame:
    """Return the journey factor of each snapshot feature: the groups :func:`risk_reasons_data` explains by.

    Parameters
    ----------
    features : sequence of str
        Snapshot feature columns (:attr:`Snapshots.feature_columns`).

    Returns
    -------
    pandas.DataFrame
        One row per feature: ``feature``, ``factor`` (``inactivity``: days
        since the last activity and the counts of the shortest windows;
        ``activity_trend``: longer windows, the customer's own baseline,
        ratios and slope; ``tickets`` (counts, high priority, open);
        ``ticket_recency``; ``ticket_sentiment``; ``satisfaction``;
        ``email``; ``stage`` (the stage and stages reached); ``stage_time``
        (days in stage, against peers, overdue); ``tenure``; ``users``;
        ``plan`` (segment and plan); any other feature is its own factor).

    Examples
    --------
    >>> reason_factors_data(["days_since_product", "activity_30d", "negative_tickets_14d"])["factor"].tolist()
    ['inactivity', 'activity_trend', 'ticket_sentiment']
    """
    feats = list(features)
    recency = next((f for f in _ACTIVITY_RECENCY if f in feats), None)
    return pd.DataFrame({"feature": feats, "factor": [_factor_of(f, recency) for f in feats]}, columns=["feature", "factor"])


def _num(row: Mapping[str, Any], key: str) -> float:
    v = row.get(key, np.nan)
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def _fmt(x: float) -> str:
    if not math.isfinite(x):
        return "n/a"
    return f"{x:,.0f}" if abs(x - round(x)) < 0.05 else f"{x:,.1f}"


def _largest(features: Sequence[str], prefix: str) -> str | None:
    wins = sorted((w, f) for f in features if (w := _window(f, prefix)) is not None)
    return wins[-1][1] if wins else None


#: A phrase: (key feature, value, reference, reference basis, text) of one factor for one customer.
Phrase = tuple[str, float, float, str, str]


def _phrase(factor: str, members: Sequence[str], row: Mapping[str, Any], med: Mapping[str, float],
            catalog: Mapping[str, str]) -> Phrase:
    """Words for one factor of one customer, with its value and the reference it is read against."""
    peers = "peers' median"
    if factor == "inactivity":
        key = next((f for f in _ACTIVITY_RECENCY if f in members), None)
        if key is None:
            key = min(members, key=lambda f: _window(f, "activity") or _window(f, "active_days") or 99)
            v = _num(row, key)
            return key, v, med.get(key, np.nan), peers, f"{catalog.get(key, key)}: {_fmt(v)} (peers' median: {_fmt(med.get(key, np.nan))})"
        v, usual = _num(row, key), _num(row, "usual_gap_days")
        if math.isfinite(usual):
            ref, basis = usual, "own usual"
            tail = "usual: every day" if usual <= 1.05 else f"usual: every {plural(round(usual, 1), 'day')}"
        else:
            ref, basis = med.get(key, np.nan), peers
            tail = f"peers' median: {plural(round(ref, 1), 'day')}" if math.isfinite(ref) else "no usual rhythm yet"
        if not math.isfinite(v):
            return key, v, ref, basis, "no activity recorded"
        if v < 1:
            return key, v, ref, basis, f"active on the day scored ({tail})"
        return key, v, ref, basis, f"no activity for {plural(round(v), 'day')} ({tail})"
    if factor == "activity_trend":
        ratio_key = _largest(members, "activity_ratio")
        if ratio_key is not None and math.isfinite(_num(row, ratio_key)):
            v, w = _num(row, ratio_key), _window(ratio_key, "activity_ratio")
            base = _num(row, "baseline_per_day")
            return ratio_key, v, 1.0, "own usual", (
                f"activity in the last {w} days at {percent(v)} of the customer's usual "
                f"({_fmt(v * base)} vs {_fmt(base)} events a day)"
            )
        key = _largest(members, "activity") or members[0]
        v = _num(row, key)
        w = _window(key, "activity")
        return key, v, med.get(key, np.nan), peers, (
            f"{plural(v, 'activity event')} in the last {w} days (peers' median: {_fmt(med.get(key, np.nan))})"
            if w else f"{catalog.get(key, key)}: {_fmt(v)} (peers' median: {_fmt(med.get(key, np.nan))})"
        )
    if factor == "tickets":
        key = _largest(members, "tickets") or members[0]
        v, w = _num(row, key), _window(key, "tickets")
        extra = []
        if _num(row, "tickets_high_priority_30d") > 0:
            extra.append(f"{_fmt(_num(row, 'tickets_high_priority_30d'))} high priority")
        if _num(row, "open_tickets") > 0:
            extra.append(f"{_fmt(_num(row, 'open_tickets'))} open")
        more = f", {', '.join(extra)}" if extra else ""
        if w is None:
            return key, v, med.get(key, np.nan), peers, f"{catalog.get(key, key)}: {_fmt(v)} (peers' median: {_fmt(med.get(key, np.nan))})"
        return key, v, med.get(key, np.nan), peers, (
            f"{plural(v, 'support ticket')} in the last {w} days{more} (peers' median: {_fmt(med.get(key, np.nan))})"
        )
    if factor == "ticket_sentiment":
        wins = sorted((w, f) for f in members if (w := _window(f, "negative_tickets")) is not None)
        if wins:
            n_max = _num(row, wins[-1][1])
            w, key = next(((w, f) for w, f in wins if _num(row, f) == n_max), wins[-1])
            if n_max > 0:
                return key, n_max, med.get(key, np.nan), peers, (
                    f"{plural(n_max, 'negative ticket')} in the last {w} days (peers' median: {_fmt(med.get(key, np.nan))})"
                )
            return key, n_max, med.get(key, np.nan), peers, f"no negative ticket in the last {wins[-1][0]} days"
        key = members[0]
        v = _num(row, key)
        return key, v, med.get(key, np.nan), peers, f"{catalog.get(key, key)}: {v:.2f} (peers' median: {med.get(key, np.nan):.2f})"
    if factor == "satisfaction":
        key = members[0]
        v = _num(row, key)
        if not math.isfinite(v):
            return key, v, med.get(key, np.nan), peers, "no rated ticket solved recently"
        return key, v, med.get(key, np.nan), peers, (
            f"satisfaction {percent(v)} on recently solved tickets (peers' median: {percent(med.get(key, np.nan))})"
        )
    if factor == "email":
        if "unsubscribed" in members and _num(row, "unsubscribed") >= 1:
            return "unsubscribed", 1.0, med.get("unsubscribed", np.nan), peers, "unsubscribed from e-mails"
        key = next((f for f in members if f.startswith("email_open_rate_")), None)
        if key is not None:
            v = _num(row, key)
            days = re.sub(r"\D", "", key) or "?"
            if not math.isfinite(v):
                return key, v, med.get(key, np.nan), peers, f"no e-mail delivered in the last {days} days"
            return key, v, med.get(key, np.nan), peers, (
                f"opened {percent(v)} of the e-mails of the last {days} days (peers' median: {percent(med.get(key, np.nan))})"
            )
        key = members[0]
        v = _num(row, key)
        return key, v, med.get(key, np.nan), peers, f"{catalog.get(key, key)}: {_fmt(v)} (peers' median: {_fmt(med.get(key, np.nan))})"
    if factor == "ticket_recency":
        key = "days_since_ticket" if "days_since_ticket" in members else members[0]
        v = _num(row, key)
        if not math.isfinite(v):
            return key, v, med.get(key, np.nan), peers, "no support ticket yet"
        m = med.get(key, np.nan)
        ref_text = plural(round(m), "day") if math.isfinite(m) else "n/a"
        return key, v, m, peers, f"last support ticket {plural(round(v), 'day')} ago (peers' median: {ref_text})"
    stage = row.get("stage")
    no_stage = stage is None or (isinstance(stage, float) and math.isnan(stage))
    if factor == "stage":
        key = "stages_reached" if "stages_reached" in members else members[0]
        v = _num(row, "stages_reached")
        if no_stage:
            return key, v, med.get(key, np.nan), peers, "no journey stage entered yet"
        reached = f" ({plural(v, 'stage')} reached; peers' median: {_fmt(med.get(key, np.nan))})" if math.isfinite(v) else ""
        return key, v, med.get(key, np.nan), peers, f"at stage {stage}{reached}"
    if factor == "stage_time":
        d, r = _num(row, "days_in_stage"), _num(row, "days_in_stage_vs_peers")
        key = "days_in_stage_vs_peers" if "days_in_stage_vs_peers" in members else members[0]
        if no_stage:
            return key, r, 1.0, peers, "no journey stage entered yet"
        if math.isfinite(r) and math.isfinite(d):
            return key, r, 1.0, peers, f"in {stage} for {plural(round(d), 'day')}, {ratio(r)} as long as peers in it"
        return key, r, 1.0, peers, f"in {stage} for {plural(round(d), 'day')}" if math.isfinite(d) else f"in {stage}"
    if factor == "tenure":
        key = "paying_days" if "paying_days" in members and math.isfinite(_num(row, "paying_days")) else members[0]
        v = _num(row, key)
        verb = "paying for" if key == "paying_days" else "signed up"
        ago = "" if key == "paying_days" else " ago"
        return key, v, med.get(key, np.nan), peers, (
            f"{verb} {plural(round(v), 'day')}{ago} (peers' median: {plural(round(med.get(key, np.nan)), 'day') if math.isfinite(med.get(key, np.nan)) else 'n/a'})"
        )
    if factor == "users":
        v = _num(row, "users")
        return "users", v, med.get("users", np.nan), peers, f"{plural(v, 'user')} (peers' median: {_fmt(med.get('users', np.nan))})"
    if factor == "plan":
        parts = []
        if "plan" in members and row.get("plan") is not None and not pd.isna(row.get("plan")):
            parts.append(f"plan {row['plan']}")
        if "segment" in members and row.get("segment") is not None and not pd.isna(row.get("segment")):
            parts.append(f"segment {row['segment']}")
        key = "plan" if "plan" in members else members[0]
        return key, float("nan"), float("nan"), "category", ("on " + ", ".join(parts)) if parts else "plan and segment unknown"
    key = members[0]
    v = _num(row, key)
    if not math.isfinite(v) and row.get(key) is not None and not pd.isna(row.get(key)):
        return key, v, float("nan"), "category", f"{catalog.get(key, key)}: {row.get(key)}"
    return key, v, med.get(key, np.nan), peers, f"{catalog.get(key, key)}: {_fmt(v)} (peers' median: {_fmt(med.get(key, np.nan))})"


#: Predicted rows (customers × factors × background) above which :func:`risk_reasons_data` draws a progress bar
#: by default (about five seconds of a 200-tree boosted model on one core).
PROGRESS_MIN_ROWS = 200_000


def _numpy_number(dtype: Any) -> bool:
    """Whether *dtype* is a NumPy float, integer or bool type (not an extension type)."""
    return isinstance(dtype, np.dtype) and dtype.kind in "fiub"


def _occlusion(model: Any, X: pd.DataFrame, groups: Mapping[str, list[str]], background: pd.DataFrame,
               *, chunk_rows: int, progress: bool | None) -> tuple[np.ndarray, np.ndarray]:
    """Risk of each row, and per group the risk minus the mean risk with the group's values of each background row.

    Background rows that share a group's values give the same swapped row, so
    each group's distinct value combinations are scored once per customer
    and their risks spread back to every background row before the mean
    (the same numbers, in the same order, as scoring every background row).
    A swapped row whose group values equal the customer's own (numbers: equal
    with the same sign bit, or both NaN; other values: same type and repr)
    is the customer's row itself: its risk is the customer's risk and it is
    not scored again (the model scores each row on its own). The other
    swapped rows of a block of customers, for every group, are built column
    by column in the columns' own types and scored in one ``predict_proba``
    call.
    """
    p = np.asarray(model.predict_proba(X))[:, 1]
    n, m, n_groups = len(X), len(background), len(groups)
    out = np.zeros((n, n_groups))
    cols = list(X.columns)
    dtypes = X.dtypes
    # Each column's values as they enter the swapped frame: the customers' in their own type, the background's
    # cast to the customers' type; columns of other types (text, categories) as objects, cast when the frame is built.
    xcol: list[np.ndarray] = []
    bcol: list[np.ndarray] = []
    codes_x: list[np.ndarray | None] = []
    codes_b: list[np.ndarray | None] = []
    for c in cols:
        if _numpy_number(dtypes[c]):
            xcol.append(X[c].to_numpy())
            bcol.append(pd.Series(background[c].to_numpy(dtype=object)).astype(dtypes[c]).to_numpy())
            codes_x.append(None)
            codes_b.append(None)
        else:
            xa, ba = X[c].to_numpy(dtype=object), background[c].to_numpy(dtype=object)
            codes: dict[tuple[type, str], int] = {}
            codes_x.append(np.asarray([codes.setdefault((type(v), repr(v)), len(codes)) for v in xa.tolist()], dtype=np.int64))
            codes_b.append(np.asarray([codes.setdefault((type(v), repr(v)), len(codes)) for v in ba.tolist()], dtype=np.int64))
            xcol.append(xa)
            bcol.append(ba)

    def same(j: int, start: int, k: int, rows: np.ndarray) -> np.ndarray:
        """(k, len(rows)) bool: column j of customers start..start+k equals that of background *rows*."""
        cx, cb = codes_x[j], codes_b[j]
        if cx is not None and cb is not None:
            return np.asarray(cx[start:start + k, None] == cb[rows][None, :])
        a, b = xcol[j][start:start + k, None], bcol[j][rows][None, :]
        if a.dtype.kind == "f" or b.dtype.kind == "f":
            return np.asarray(((a == b) & (np.signbit(a) == np.signbit(b))) | (np.isnan(a) & np.isnan(b)))
        return np.asarray(a == b)

    # Per group: the background rows of its distinct value combinations, and each background row's combination.
    # Values are told apart by type and repr, so NaN and None, or 0.0 and -0.0, are never merged.
    bv = background[cols].to_numpy(dtype=object)
    pos = {c: i for i, c in enumerate(cols)}
    firsts: list[np.ndarray] = []
    inverses: list[np.ndarray] = []
    for gcols in groups.values():
        seen: dict[tuple[Any, ...], int] = {}
        first: list[int] = []
        inverse: list[int] = []
        for b, values in enumerate(bv[:, [pos[c] for c in gcols]].tolist()):
            key = tuple((type(v), repr(v)) for v in values)
            if key not in seen:
                seen[key] = len(first)
                first.append(b)
            inverse.append(seen[key])
        firsts.append(np.asarray(first, dtype=np.int64))
        inverses.append(np.asarray(inverse, dtype=np.int64))
    sizes = [len(f) for f in firsts]
    width = sum(sizes)  # swapped rows per customer
    in_group = [{pos[c] for c in gcols} for gcols in groups.values()]
    per = max(1, chunk_rows // max(width, 1))
    total = n * m * n_groups
    show = progress if progress is not None else (None if total >= PROGRESS_MIN_ROWS else False)
    with progress_bar(total=n, desc="risk reasons", unit="customer", progress=show) as bar:
        for start in range(0, n, per):
            k = min(per, n - start)
            needs: list[np.ndarray] = []
            who: list[np.ndarray] = []
            which: list[np.ndarray] = []
            for g, gcols in enumerate(groups.values()):
                u = sizes[g]
                equal = np.ones((k, u), dtype=bool)
                for c in gcols:
                    equal &= same(pos[c], start, k, firsts[g])
                need = ~equal
                needs.append(need)
                cust, comb = np.nonzero(need)  # row-major: customer, then combination
                who.append(start + cust)
                which.append(firsts[g][comb])
            n_rows = sum(len(w) for w in who)
            if n_rows:
                data = {}
                for j, c in enumerate(cols):
                    data[c] = np.concatenate([
                        bcol[j][which[g]] if j in in_group[g] else xcol[j][who[g]] for g in range(n_groups)
                    ])
                frame = pd.DataFrame(data, columns=cols).astype(dtypes.to_dict())
                risk = np.asarray(model.predict_proba(frame))[:, 1]
            else:
                risk = np.empty(0)
            full = np.empty((n_groups, k, m))
            done = 0
            for g in range(n_groups):
                distinct = np.repeat(p[start:start + k, None], sizes[g], axis=1)
                count = len(who[g])
                distinct[needs[g]] = risk[done:done + count]
                done += count
                full[g] = distinct[:, inverses[g]]
            q = full.mean(axis=2)
            out[start:start + k] = p[start:start + k, None] - q.T
            bar.update(k)
    return p, out


#: Rows of :func:`risk_reasons_data` turned into Python values at a time (at 10M events all 22,273 scored rows'
#: 56 values as Python objects were about 80 MB).
RECORD_BLOCK_ROWS = 1_000


def _records(frame: pd.DataFrame, *, block_rows: int | None = None) -> Iterator[dict[str, Any]]:
    """Yield each row of *frame* as ``to_dict(orient="records")`` gives it (keys as text), a block of rows at a time.

    Each block is a slice of the rows with the frame's column types, so its
    rows' values are those of converting the whole frame at once.
    """
    frame = frame.reset_index(drop=True)
    step = max(int(block_rows if block_rows is not None else RECORD_BLOCK_ROWS), 1)
    for start in range(0, len(frame), step):
        for r in frame.iloc[start:start + step].to_dict(orient="records"):
            yield {str(k): v for k, v in r.items()}


def risk_reasons_data(
    model: Any,
    rows: pd.DataFrame,
    *,
    features: Sequence[str],
    reference: pd.DataFrame | None = None,
    catalog: pd.DataFrame | None = None,
    top_n: int = 3,
    n_background: int = 30,
    min_contribution: float = 0.005,
    random_state: int = 0,
    chunk_rows: int = 50_000,
    progress: bool | None = None,
) -> pd.DataFrame:
    """Return the top journey factors raising and lowering each customer's churn risk, in words.

    Each factor of :func:`reason_factors_data` is scored by grouped occlusion
    on the instance: the customer's values of the factor's features are
    replaced, together, by those of each of ``n_background`` reference
    customers (a seeded sample of *reference*), and ``contribution`` is the
    customer's risk minus the mean of those risks (probability points;
    positive raises the risk). Factors whose contribution is smaller than
    ``min_contribution`` in absolute value are not reasons.

    Parameters
    ----------
    model : classifier
        Fitted, with ``predict_proba`` on a frame of *features* (e.g.
        :class:`~journeylib.customers.risk.ChurnClassifier`).
    rows : pandas.DataFrame
        The snapshots to explain: ``customer_id`` and the *features*.
    features : sequence of str
        The model's feature columns.
    reference : pandas.DataFrame, optional
        The peers: where the background sample and the peer medians come
        from (default *rows*; pass the customers scored on the same day).
    catalog : pandas.DataFrame, optional
        :attr:`Snapshots.catalog` (feature descriptions for features outside
        the named factors).
    top_n : int, default 3
        Reasons per direction and customer.
    n_background : int, default 30
        Reference customers per factor (fewer if the reference is smaller).
    min_contribution : float, default 0.005
        Smallest absolute contribution that is a reason (half a point).
    random_state : int, default 0
        Seed of the background sample.
    chunk_rows : int, default 50000
        Rows per ``predict_proba`` call (bounds memory); each call scores a
        block of customers × factors × background rows.
    progress : bool or None, default None
        Progress bar on stderr (:func:`journeylib.store.progress.progress_bar`).
        None: drawn when stderr is a terminal and the work exceeds
        ``PROGRESS_MIN_ROWS`` predicted rows.

    Returns
    -------
    pandas.DataFrame
        One row per customer × reason, riskiest customers first, then by
        direction and rank: ``customer_id``, ``risk`` (the model's risk of
        the row), ``rank`` (1 = largest within its direction),
        ``direction`` (``raises`` or ``lowers``), ``factor``, ``feature``
        (the factor's feature the text reads), ``value`` (its value; NaN
        for categories), ``reference`` (what it is read against: the
        customer's own usual when ``reference_basis`` is ``own usual``,
        else the median of the reference customers), ``reference_basis``
        (``own usual``, ``peers' median`` or ``category``),
        ``contribution`` (risk minus the mean risk with reference values of
        the factor, in probability units), ``text`` (journey words).

    Raises
    ------
    ValueError
        If *rows* lacks ``customer_id`` or a feature, or ``top_n`` or
        ``n_background`` is not positive.
    EmptyResultError
        If *rows* is empty.
    """
    function = "risk_reasons_data"
    feats = list(features)
    missing = [c for c in ["customer_id", *feats] if c not in rows.columns]
    if missing:
        msg = f"{function}: rows lack the columns {missing[:5]}; give the snapshot rows with customer_id and the model's features"
        raise ValueError(msg)
    for name, v in (("top_n", top_n), ("n_background", n_background)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            msg = f"{function}: {name} must be a positive whole number; got {v!r}"
            raise ValueError(msg)
    if rows.empty:
        msg = f"{function}: no rows to explain"
        raise EmptyResultError(msg)
    ref = rows if reference is None else reference
    missing = [c for c in feats if c not in ref.columns]
    if missing:
        msg = f"{function}: reference lacks the feature columns {missing[:5]}"
        raise ValueError(msg)
    X = rows[feats].reset_index(drop=True)
    rng = np.random.default_rng(random_state)
    pick = rng.choice(len(ref), size=min(n_background, len(ref)), replace=False)
    background = ref[feats].iloc[np.sort(pick)].reset_index(drop=True)
    fac = reason_factors_data(feats)
    groups: dict[str, list[str]] = {str(f): g["feature"].tolist() for f, g in fac.groupby("factor", sort=False)}
    risk, contrib = _occlusion(model, X, groups, background, chunk_rows=chunk_rows, progress=progress)
    num = ref[feats].select_dtypes(include="number")
    med = {c: float(num[c].median()) if num[c].notna().any() else float("nan") for c in num.columns}
    desc = {} if catalog is None else {str(f): str(t) for f, t in zip(catalog["feature"], catalog["description"], strict=False)}
    ids = rows["customer_id"].astype(str).to_numpy()
    names = list(groups)
    cols = ["customer_id", "risk", "rank", "direction", "factor", "feature", "value", "reference", "reference_basis",
            "contribution", "text"]
    out: dict[str, list[Any]] = {c: [] for c in cols}  # a list per column (a dict per reason was ~1 KB each)
    for i, row in enumerate(_records(rows)):
        c = contrib[i]
        for direction, order in (("raises", np.argsort(-c, kind="stable")), ("lowers", np.argsort(c, kind="stable"))):
            for rank, g in enumerate(order[:top_n], start=1):
                val = float(c[g])
                if (direction == "raises" and val < min_contribution) or (direction == "lowers" and val > -min_contribution):
                    break
                key, value, refv, basis, text = _phrase(names[g], groups[names[g]], row, med, desc)
                for name, v in zip(cols, (ids[i], float(risk[i]), rank, direction, names[g], key, value, refv, basis, val, text),
                                   strict=True):
                    out[name].append(v)
    res = pd.DataFrame(out if out["customer_id"] else [], columns=cols)  # (no reason: columns of objects, as rows give)
    res["value"] = res["value"].astype(float)
    res["reference"] = res["reference"].astype(float)
    res["_d"] = (res["direction"] == "lowers").astype(int)
    res = res.sort_values(["risk", "customer_id", "_d", "rank"], ascending=[False, True, True, True], kind="mergesort")
    return res.drop(columns="_d").reset_index(drop=True)


# -- bands -------------------------------------------------------------------------------------
def risk_band(risk: Any, cuts: Sequence[float] = DEFAULT_BAND_CUTS) -> np.ndarray:
    """Return the band of each risk: ``low``, ``medium``, ``high``, ``very high`` by the cut points.

    Parameters
    ----------
    risk : array-like of float
        Calibrated probabilities.
    cuts : sequence of 3 floats, default (0.10, 0.25, 0.50)
        Increasing cut points in (0, 1); a risk equal to a cut is in the band above it.

    Returns
    -------
    numpy.ndarray
        Band names (object); NaN risks get None.

    Raises
    ------
    ValueError
        If *cuts* are not 3 increasing numbers strictly between 0 and 1.

    Examples
    --------
    >>> risk_band([0.05, 0.1, 0.3, 0.7]).tolist()
    ['low', 'medium', 'high', 'very high']
    """
    c = [float(x) for x in cuts]
    if len(c) != len(RISK_BANDS) - 1 or any(not 0 < x < 1 for x in c) or any(b <= a for a, b in itertools.pairwise(c)):
        msg = f"risk_band: cuts must be {len(RISK_BANDS) - 1} increasing numbers strictly between 0 and 1; got {list(cuts)!r}"
        raise ValueError(msg)
    r = np.asarray(risk, dtype=float)
    idx = np.searchsorted(np.asarray(c), r, side="right")
    bands = np.asarray(RISK_BANDS, dtype=object)[np.minimum(idx, len(RISK_BANDS) - 1)]
    bands[np.isnan(r)] = None
    return bands


# -- the next stage ----------------------------------------------------------------------------
def _ordered_next(definition: JourneyDefinition) -> dict[int, int | None]:
    """For each stage order, the next stage that is not a free-order milestone (None after the last)."""
    free = definition.free_stages
    names = definition.stage_names
    ordered = [k for k, n in enumerate(names) if n not in free]
    out: dict[int, int | None] = {-1: ordered[0] if ordered else None}
    for k in range(len(names)):
        out[k] = next((o for o in ordered if o > k), None)
    return out


#: Snapshot rows whose next stage is looked up at a time (:func:`_next_stage_rows`).
NEXT_STAGE_BLOCK_ROWS = 100_000


def _entered_stages(milestones: pd.DataFrame, definition: JourneyDefinition) -> pd.DataFrame:
    """Return the entries into ordered stages of a milestone frame: ``customer_id``, ``stage_order``, ``entered_dayf``.

    One row per customer × stage entered (free-order milestones are not
    steps of the sequence: left out); ``entered_dayf`` is the entry time in
    days since 1970-01-01 (UTC). All :func:`_next_stage_rows` reads of the
    milestones (``stage_milestones``), a few bytes a row.
    """
    free = definition.free_stages
    names = definition.stage_names
    ms = milestones[milestones["entered_at"].notna()]
    ms = pd.DataFrame({
        "customer_id": ms["customer_id"].astype(str).to_numpy(),
        "stage_order": ms["stage_order"].astype("int64").to_numpy(),
        "entered_dayf": ((pd.to_datetime(ms["entered_at"], utc=True) - pd.Timestamp("1970-01-01", tz="UTC"))
                         / pd.Timedelta(days=1)).to_numpy(dtype=float),
    })
    return ms[~ms["stage_order"].map(lambda k: names[int(k)] in free)].reset_index(drop=True)


class _MilestoneTap(ResultCache):
    """A cache that keeps nothing but what :func:`score_customers` needs of the milestone frame it passes on.

    Given to :func:`build_snapshots` (its stage family reads the milestone
    frame through its cache), it hands each result out as computed (no copy
    is kept) and keeps :func:`_entered_stages` of the milestone frame, so
    the next-stage step does not run the milestone statement again. Only
    one milestone frame is expected; after a second one ``entered`` is None.
    """

    def __init__(self, definition: JourneyDefinition) -> None:
        super().__init__()
        self.definition = definition
        self.entered: pd.DataFrame | None = None

    def get(self, kind: str, key: Any, compute: Any) -> Any:
        value = compute()
        self.computed[kind] += 1
        if kind == "milestones":
            first = self.computed[kind] == 1 and isinstance(value, pd.DataFrame)
            self.entered = _entered_stages(value, self.definition) if first else None
        return value


def _next_stage_rows(snapshots: Snapshots, entered: pd.DataFrame, definition: JourneyDefinition) -> pd.DataFrame:
    """Each snapshot's next stage and the day it was entered (NaN if not by the data's end).

    *entered* is :func:`_entered_stages` of the scope's milestones. For each
    snapshot the furthest ordered stage its customer entered before the end
    of its as-of day is found (the largest stage order whose entry time is
    below ``as_of_day + 1``), then the stage after it
    (:func:`_ordered_next`) and that stage's entry time. Each customer's
    entry times are held in one array per stage, read by the snapshots'
    customer numbers, ``NEXT_STAGE_BLOCK_ROWS`` snapshots at a time: no
    join of snapshots with milestones (a few million rows at 10M events).

    Returns
    -------
    pandas.DataFrame
        ``customer_id`` (as text), ``as_of_day``, ``next_stage`` (its name, None
        after the last stage), ``next_entered_dayf``; one row per snapshot, in
        the snapshots' order.
    """
    names = definition.stage_names
    nxt = _ordered_next(definition)
    ids = snapshots.data["customer_id"].astype(str).to_numpy()
    day = snapshots.data["as_of_day"].to_numpy()
    codes, customers = pd.factorize(ids)
    who = pd.Index(customers).get_indexer(pd.Index(entered["customer_id"].to_numpy()))
    orders = entered["stage_order"].to_numpy(dtype="int64")
    dayf = entered["entered_dayf"].to_numpy(dtype=float)
    stages = [int(k) for k in np.unique(orders[who >= 0])]  # ascending
    at = np.full((len(stages), len(customers)), np.inf)  # each customer's entry into each stage (inf: not entered)
    for i, k in enumerate(stages):
        sel = (orders == k) & (who >= 0)
        np.minimum.at(at[i], who[sel], dayf[sel])
    row_of = {k: i for i, k in enumerate(stages)}
    # the next ordered stage after stage order k, at position k + 1 (-1 before the first): -1 when there is none
    following = np.asarray([-1 if nxt.get(k) is None else nxt[k] for k in range(-1, len(names))], dtype=np.int64)
    label = np.asarray([*names, None], dtype=object)  # label[-1]: None
    next_order = np.empty(len(ids), dtype=np.int64)
    next_dayf = np.full(len(ids), np.nan)
    for start in range(0, len(ids), max(int(NEXT_STAGE_BLOCK_ROWS), 1)):
        rows = slice(start, start + max(int(NEXT_STAGE_BLOCK_ROWS), 1))
        c, end = codes[rows], day[rows] + 1
        top = np.full(len(c), -1, dtype=np.int64)  # the furthest ordered stage entered by the as-of day
        for i, k in enumerate(stages):
            top[at[i][c] < end] = k
        order = following[top + 1]
        for k in np.unique(order[order >= 0]):
            if int(k) in row_of:
                hit = order == k
                when = at[row_of[int(k)]][c[hit]]
                next_dayf[start + np.flatnonzero(hit)] = np.where(np.isfinite(when), when, np.nan)
        next_order[rows] = order
    return pd.DataFrame({"customer_id": ids, "as_of_day": day, "next_stage": label[next_order],
                         "next_entered_dayf": next_dayf})


def next_stage_data(
    store: Store, *, definition: JourneyDefinition, snapshots: Snapshots, cache: ResultCache | None = None
) -> pd.DataFrame:
    """Return, for each current stage, the next stage of the journey and the empirical probability of reaching it within the horizon.

    The next stage of a snapshot is the first stage of the definition's order
    after the furthest ordered stage the customer had entered by the as-of
    day (free-order milestones are not steps of the sequence). Among the
    labelled snapshots (whose horizon ends by the data's end: censored ones
    are left out, never counted as not reaching it), the probability is the
    share that entered that next stage within ``horizon_days`` after the
    as-of day; a customer who churned first counts as not reaching it. The
    weekly snapshots of one customer are not independent: ``customers``
    says how many customers a probability rests on.

    Parameters
    ----------
    store : Store
        The canonical store.
    definition : JourneyDefinition
        The stages and their order (the one *snapshots* were built with).
    snapshots : Snapshots
        From :func:`journeylib.customers.snapshots.build_snapshots`.
    cache : ResultCache, optional
        Shares the milestone frame with the snapshots and other analyses.

    Returns
    -------
    pandas.DataFrame
        One row per current stage (``stage``, as in the snapshots; ``(none)``
        before the first) × next stage: ``stage``, ``next_stage`` (None
        after the last stage), ``snapshots`` (labelled snapshots in the
        stage), ``customers`` (distinct customers among them), ``reached``
        (snapshots whose customer entered the next stage within the
        horizon), ``probability`` (reached / snapshots; NaN without
        snapshots or next stage), ``horizon_days``.
    """
    ms = stage_milestones(store, definition, snapshots.scope.replace(sample_n=0, random_state=0), cache=cache)
    return _next_stage_table(snapshots, _entered_stages(ms, definition), definition)


def _next_stage_table(snapshots: Snapshots, entered: pd.DataFrame, definition: JourneyDefinition) -> pd.DataFrame:
    """Return :func:`next_stage_data` of *snapshots* from their scope's entries into stages (:func:`_entered_stages`).

    *snapshots*' ``data`` needs only ``customer_id``, ``as_of_day``, ``stage`` and ``churned``.
    """
    rows = _next_stage_rows(snapshots, entered, definition)
    data = snapshots.data
    rows["stage"] = data["stage"].where(data["stage"].notna(), "(none)").to_numpy()
    rows["labelled"] = data["churned"].notna().to_numpy()
    h = snapshots.horizon_days
    end = rows["as_of_day"].to_numpy(dtype=float) + 1
    rows["reached"] = (rows["next_entered_dayf"] > end - 1e-9) & (rows["next_entered_dayf"] <= end + h)
    lab = rows[rows["labelled"]]
    # every stage seen in the snapshots, labelled or not, so the scored day's stages all have a row
    pairs = rows[["stage", "next_stage"]].drop_duplicates()
    agg = lab.groupby(["stage", "next_stage"], dropna=False).agg(
        snapshots=("reached", "size"), customers=("customer_id", "nunique"), reached=("reached", "sum")
    ).reset_index()
    out = pairs.merge(agg, on=["stage", "next_stage"], how="left")
    for c in ("snapshots", "customers", "reached"):
        out[c] = out[c].fillna(0).astype("int64")
    with np.errstate(invalid="ignore", divide="ignore"):
        out["probability"] = np.where((out["snapshots"] > 0) & out["next_stage"].notna(), out["reached"] / out["snapshots"], np.nan)
    out["horizon_days"] = h
    order = {n: k for k, n in enumerate(definition.stage_names)}
    out["_o"] = out["stage"].map(order).fillna(-1)
    return out.sort_values(["_o", "next_stage"], kind="mergesort").drop(columns="_o").reset_index(drop=True)


# -- scoring -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class RiskScores:
    """The scored customers of :func:`score_customers` and how they were scored.

    Attributes
    ----------
    scores : pandas.DataFrame
        One row per active customer; columns in :func:`score_customers`.
    reasons : pandas.DataFrame
        :func:`risk_reasons_data` of the scored customers.
    next_stage : pandas.DataFrame
        :func:`next_stage_data` of the training history.
    model : ChurnClassifier
        The fitted model.
    training : dict
        ``from``, ``to`` (as-of days of the labelled training snapshots),
        ``snapshots``, ``customers``, ``churned``, ``base_rate``,
        ``censored`` (snapshots whose horizon runs past the as-of day),
        ``calibration``.
    as_of : pandas.Timestamp
        The end of the as-of day scored.
    horizon_days : int
        The horizon of the risk.
    model_version : str
        ``churn-risk-<n>-<12 hex>``: a hash of the training snapshots, the
        model's parameters, the horizon, the features and the package version.
    snapshots : Snapshots
        The snapshots trained on and scored.
    """

    scores: pd.DataFrame
    reasons: pd.DataFrame
    next_stage: pd.DataFrame
    model: Any = field(repr=False)
    training: dict[str, Any]
    as_of: pd.Timestamp
    horizon_days: int
    model_version: str
    snapshots: Snapshots = field(repr=False)


def _ticket_sentiment(store: Store, *, block_rows: int = TICKET_BLOCK_ROWS) -> pd.DataFrame | None:
    """Return ``ticket_id``, ``compound`` and ``polarity`` of every ticket of *store* in the tickets' order (None if none).

    The values of :func:`journeylib.voice.sentiment.score_tickets` (VADER) on
    ``store.table("tickets")``, scored block by block: each block holds the
    tickets of consecutive customers (about *block_rows* of them; a
    customer's tickets are never split), read in the table's order (by
    customer, then creation time and id) with only the columns scoring reads.
    A ticket's score depends on its own text alone, so the blocks give the
    values scoring all of them at once gives; only one block's text and
    29-column scores are held at a time (at 10M events all the tickets'
    are a few hundred MB, much of it kept by the allocator after it is freed).
    Tickets without a customer (ingest does not write them) are read in one
    block with the others.

    Parameters
    ----------
    store : Store
        The canonical store.
    block_rows : int, default TICKET_BLOCK_ROWS
        About how many tickets are read and scored at a time.

    Returns
    -------
    pandas.DataFrame or None
        One row per ticket, index 0..n-1; None when the store has no ticket.
    """
    from journeylib.voice.sentiment import score_tickets

    columns = ["ticket_id", "subject", "body"]
    parts: dict[str, list[np.ndarray]] = {c: [] for c in SENTIMENT_COLUMNS}
    with store.session():  # one connection for the blocks (a read-only store would connect per query)
        counts = store.query("SELECT customer_id, count(*) AS n FROM tickets GROUP BY customer_id ORDER BY customer_id")
        if counts.empty:
            return None
        blocks: list[str | None] = [None]  # one block of every ticket
        if not counts["customer_id"].isna().any():
            ids = counts["customer_id"].tolist()
            ends = np.cumsum(counts["n"].to_numpy())
            blocks, lo = [], 0
            while lo < len(ids):
                start = int(ends[lo - 1]) if lo else 0
                hi = min(int(np.searchsorted(ends, start + max(int(block_rows), 1), side="left")), len(ids) - 1)
                blocks.append(f"customer_id >= {sql_quote(ids[lo])} AND customer_id <= {sql_quote(ids[hi])}")
                lo = hi + 1
        for where in blocks:
            scored = score_tickets(store.table("tickets", columns=columns, where=where))
            for c in SENTIMENT_COLUMNS:
                parts[c].append(scored[c].to_numpy())
            del scored
    return pd.DataFrame({c: np.concatenate(v) for c, v in parts.items()}, columns=list(SENTIMENT_COLUMNS))


def scoring_memory_limit(store: Store, memory_limit: str | None = None) -> str | None:
    """Return the DuckDB ``memory_limit`` :func:`score_customers` runs its statements under (None: the store's own).

    :func:`journeylib.store.memory.bounded_memory_limit` with scoring's bound,
    :data:`SCORING_MEMORY_LIMIT`.

    Parameters
    ----------
    store : Store
        The store scored.
    memory_limit : str, optional
        The caller's choice (e.g. ``"1GB"``): returned as it is.

    Returns
    -------
    str or None
        *memory_limit* when given. Otherwise :data:`SCORING_MEMORY_LIMIT`
        when the store runs on DuckDB under its default limit and that
        default is larger; None (the store's limit applies) for a limit set
        by the user, a smaller default, or another engine.

    Examples
    --------
    >>> scoring_memory_limit(Store(":memory:"))  # a store without a file: 2GB by default
    '250MB'
    >>> scoring_memory_limit(Store(":memory:", memory_limit="1GB")) is None
    True
    """
    return bounded_memory_limit(store, memory_limit, bound=SCORING_MEMORY_LIMIT)


def _row_frame(data: pd.DataFrame, rows: np.ndarray, cols: list[str]) -> pd.DataFrame:
    """Return rows *rows* (a boolean mask) and columns *cols* of *data* as a frame, without copying *data* when it can.

    When the rows are one run (the labelled snapshots of a table sorted by
    as-of day are), each column is a slice of *data*'s column (a view) and
    the frame is built around them with ``copy=False`` (its columns are not
    consolidated into one block): nothing is copied. Otherwise each column
    is taken (one copy). The index is *data*'s index of those rows. The
    frame shares memory with *data*: read it, do not modify it.
    """
    idx = np.flatnonzero(rows)
    if len(idx) and idx[-1] - idx[0] + 1 == len(idx):
        run = slice(int(idx[0]), int(idx[-1]) + 1)
        return pd.DataFrame({c: data[c].iloc[run] for c in cols}, columns=cols, copy=False)
    return pd.DataFrame({c: data[c].take(idx) for c in cols}, columns=cols, copy=False)


#: Training rows hashed at a time by :func:`_model_version` (their coded columns expanded a block at a time).
HASH_BLOCK_ROWS = 50_000


def _model_version(
    data: pd.DataFrame, rows: np.ndarray, feats: list[str], model: ChurnClassifier, horizon: int, coded: Sequence[str] = ()
) -> str:
    """Return ``churn-risk-<n>-<12 hex>``: sha256 of the training rows (*rows* of *data*), the parameters and the features.

    The rows' hashes (``pandas.util.hash_pandas_object``, one per row, from
    that row's values alone) are computed ``HASH_BLOCK_ROWS`` rows at a time
    with the columns *coded* (:func:`journeylib.customers.snapshots.compact_columns`)
    expanded, and hashed together: the digest of hashing all the expanded
    rows at once.
    """
    h = hashlib.sha256()
    frame = _row_frame(data, rows, ["customer_id", "as_of_day", "churned", *feats])
    parts = [
        pd.util.hash_pandas_object(expand_columns(frame.iloc[start:start + HASH_BLOCK_ROWS], coded), index=False).to_numpy()
        for start in range(0, len(frame), HASH_BLOCK_ROWS)
    ]
    h.update(np.concatenate(parts).tobytes() if parts else pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    params = {k: (v if isinstance(v, (int, float, str, bool)) or v is None else repr(v)) for k, v in model.get_params().items()}
    h.update(json.dumps({"params": params, "features": feats, "horizon_days": horizon, "journeylib": __version__,
                         "model": MODEL_VERSION}, sort_keys=True).encode())
    return f"{MODEL_VERSION}-{h.hexdigest()[:12]}"


def score_customers(
    store: Store,
    *,
    definition: JourneyDefinition,
    as_of: Any = None,
    horizon_days: int = DEFAULT_HORIZON_DAYS,
    every_days: int = 7,
    ticket_scores: pd.DataFrame | str | None = "vader",
    band_cuts: Sequence[float] = DEFAULT_BAND_CUTS,
    top_reasons: int = 3,
    n_background: int = 30,
    model: ChurnClassifier | None = None,
    segment: str | None = None,
    plan: str | None = None,
    scope: Scope | None = None,
    cache: ResultCache | None = None,
    progress: bool | None = None,
    memory_limit: str | None = None,
) -> RiskScores:
    """Train the churn model on the store's history and score every active paying customer on the as-of day.

    Snapshots are taken every ``every_days`` days back from the as-of day
    (:func:`journeylib.customers.snapshots.build_snapshots`; nothing after
    the end of the as-of day is read). The model (boosted and calibrated by
    default) is trained on every labelled snapshot — those whose horizon
    closed by the as-of day — so it is tested on the future by construction:
    the scored day lies after every training label. It then scores the
    snapshots of the as-of day (every customer converted and not churned by
    then) and of 7 days before it.

    Parameters
    ----------
    store : Store
        The canonical store.
    definition : JourneyDefinition
        Its churn and conversion outcomes and stages.
    as_of : date-like, optional
        The day scored (a bare date means the end of that day). Default: the
        day of the latest event (the whole of what the store holds).
    horizon_days : int, default 60
        Risk of churn within this many days.
    every_days : int, default 7
        Spacing of the training snapshots (7 also places the day 7 days
        before the as-of day on the grid).
    ticket_scores : DataFrame, "vader" or None, default "vader"
        Ticket sentiment (:func:`journeylib.voice.sentiment.score_tickets`
        output); ``"vader"`` scores the store's tickets; None: no sentiment features.
    band_cuts : sequence of 3 floats, default (0.10, 0.25, 0.50)
        Cut points of :func:`risk_band`.
    top_reasons : int, default 3
        Reasons raising the risk written per customer.
    n_background : int, default 30
        Reference customers of :func:`risk_reasons_data`.
    model : ChurnClassifier, optional
        Default ``ChurnClassifier("boosting")``.
    segment, plan, scope
        Which customers (the scope's ``as_of`` is the day scored).
    cache : ResultCache, optional
        Shares the milestone frame.
    progress : bool or None, default None
        A progress bar on stderr over the steps (ticket sentiment,
        snapshots, model, risk reasons, next stage), the step named at its
        right; risk reasons draw their own bar per customer. None: drawn
        when stderr is a terminal
        (:func:`journeylib.store.progress.progress_bar`).
    memory_limit : str, optional
        DuckDB's ``memory_limit`` for the statements scoring runs (e.g.
        ``"1GB"``); above it DuckDB spills to disk, with the same results.
        Default (:func:`scoring_memory_limit`): :data:`SCORING_MEMORY_LIMIT`
        (250MB) when the store has its default limit and that is larger
        (600MB for a read-only store of up to 400 MB), else the store's own
        limit: a limit the user set (``memory_limit=`` of the store,
        ``$JOURNEYLIB_MEMORY_LIMIT``) is kept. It is applied to the store's
        settings and connection while scoring runs and set back after.
        Between steps, memory the C heap freed is given back to the system
        (glibc's ``malloc_trim``, on Linux with glibc).

    Returns
    -------
    RiskScores
        ``scores`` has one row per active customer, riskiest first:
        ``customer_id``, ``name``, ``segment``, ``stage`` (entered last by
        the as-of day), ``risk`` (calibrated probability of churn within
        ``horizon_days``), ``risk_band`` (:func:`risk_band` with
        ``band_cuts``), ``risk_previous`` (the same model's risk 7 days
        earlier; NaN when the customer was not active then),
        ``risk_change_7d`` (risk minus risk_previous), ``reasons`` (the
        factors raising the risk most, in words, ``; ``-separated; empty
        when none raises it by half a point), ``next_stage`` (None after the
        last stage), ``next_stage_probability`` (empirical probability of
        reaching it within the horizon from the current stage:
        :func:`next_stage_data`), ``next_stage_customers`` (customers that
        probability rests on), ``as_of`` (the end of the day scored),
        ``horizon_days``, ``model_version``.

    Raises
    ------
    EmptyResultError
        If the history before the as-of day holds fewer than 10 churned (or
        10 non-churned) labelled snapshots, or no customer is active on the
        as-of day.
    ValueError
        From :func:`build_snapshots` (e.g. no churn outcome in the definition)
        or :func:`risk_band`.
    """
    function = "score_customers"
    risk_band([0.5], band_cuts)  # check the cut points before the work
    scope = Scope.resolve(store, scope, function=function, as_of=as_of, segment=segment, plan=plan)
    data_end = pd.Timestamp(scope.as_of)
    score_day = day_number(data_end - pd.Timedelta(microseconds=1))
    if isinstance(ticket_scores, str) and ticket_scores != "vader":
        msg = f"{function}: ticket_scores must be a frame, 'vader' or None; got {ticket_scores!r}"
        raise ValueError(msg)
    limit = scoring_memory_limit(store, memory_limit)
    bounded = store.memory_limit_for(limit) if limit is not None and store.engine == "duckdb" else contextlib.nullcontext()
    with bounded, \
            progress_bar(total=5, desc="score", unit="step", progress=progress) as bar:
        return _score_customers(
            store, definition=definition, scope=scope, score_day=score_day, horizon_days=horizon_days,
            every_days=every_days, ticket_scores=ticket_scores, band_cuts=band_cuts, top_reasons=top_reasons,
            n_background=n_background, model=model, cache=cache, bar=bar, progress=progress,
        )


def _score_customers(
    store: Store,
    *,
    definition: JourneyDefinition,
    scope: Scope,
    score_day: int,
    horizon_days: int,
    every_days: int,
    ticket_scores: pd.DataFrame | str | None,
    band_cuts: Sequence[float],
    top_reasons: int,
    n_background: int,
    model: ChurnClassifier | None,
    cache: ResultCache | None,
    bar: Any,
    progress: bool | None,
) -> RiskScores:
    """Do the work of :func:`score_customers` once its arguments are checked, one step of *bar* at a time."""
    function = "score_customers"
    bar.set_postfix_str("ticket sentiment")
    if isinstance(ticket_scores, str):
        ticket_scores = _ticket_sentiment(store)
    if isinstance(ticket_scores, pd.DataFrame) and set(SENTIMENT_COLUMNS) <= set(ticket_scores.columns):
        ticket_scores = ticket_scores[list(SENTIMENT_COLUMNS)]
    give_back_freed_memory()
    bar.update(1)
    bar.set_postfix_str("snapshots")
    first = store.query(f"SELECT min(signup_at) AS s FROM ({scope.customers_sql()}) c")["s"].iloc[0]
    days = asof_days(first if pd.notna(first) else day_end(score_day), day_end(score_day) - pd.Timedelta(days=1), every_days=every_days)
    # Without a cache, the entries into stages the next-stage step reads are kept from the milestone frame the
    # snapshots' stage family reads (its statement is not run twice; the frame itself is not kept).
    tap = _MilestoneTap(definition) if cache is None else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StatisticalWarning)  # censored snapshots: the ones scored, by design
        snap = build_snapshots(
            store, definition=definition, horizon_days=horizon_days, as_of_dates=[day_end(d) - pd.Timedelta(days=1) for d in days],
            ticket_scores=ticket_scores, scope=scope, cache=cache if tap is None else tap, compact=True,
        )
    # Until the scores are made, the table's numeric features of few distinct values are held as codes (242 -> ~100
    # MiB at 10M events): the model expands them a block of rows at a time; the table is expanded back at the end.
    coded = list(snap.coded)
    ticket_scores = None
    give_back_freed_memory()  # the families' frames, freed: the model's arrays are allocated next
    bar.update(1)
    bar.set_postfix_str("model")
    feats = snap.feature_columns
    # The labelled snapshots (snap.labelled) are read in place: a copy of them is the size of the table.
    lab = snap.labelled_rows
    n_train = int(lab.sum())
    churned = snap.data["churned"].to_numpy()[lab]
    train_days = snap.data["as_of_day"].to_numpy()[lab]
    n_pos = int(churned.sum()) if n_train else 0
    if n_pos < MIN_TRAIN_CHURNED or n_train - n_pos < MIN_TRAIN_CHURNED:
        msg = (
            f"{function}: the history up to {day_end(score_day) - pd.Timedelta(days=1):%Y-%m-%d} holds {n_pos} churned of {n_train} labelled snapshots "
            f"(customers who churned within {horizon_days} days of a snapshot day, every {every_days} days, in scope "
            f"{scope.describe()}); training needs at least {MIN_TRAIN_CHURNED} churned and {MIN_TRAIN_CHURNED} not churned. "
            f"Check that the store records churn (the definition {definition.name!r} reads it from its churn outcome), "
            "score a later as-of day, or use a shorter --horizon."
        )
        raise EmptyResultError(msg)
    est = ChurnClassifier("boosting") if model is None else model
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StatisticalWarning)
        est.fit(_row_frame(snap.data, lab, feats), churned.astype(int), time=train_days, coded=coded)
    give_back_freed_memory()
    version = _model_version(snap.data, lab, feats, est, horizon_days, coded)
    now = expand_columns(snap.data[snap.data["as_of_day"] == score_day].reset_index(drop=True), coded)
    if now.empty:
        msg = f"{function}: no active paying customer on {day_end(score_day) - pd.Timedelta(days=1):%Y-%m-%d} in scope {scope.describe()}"
        raise EmptyResultError(msg)
    before = expand_columns(snap.data[snap.data["as_of_day"] == score_day - 7], coded)
    prev = pd.Series(np.asarray(est.predict_proba(before[feats]))[:, 1], index=before["customer_id"].astype(str)) if len(before) else pd.Series(dtype=float)
    bar.update(1)
    bar.set_postfix_str("risk reasons")
    reasons = risk_reasons_data(est, now, features=feats, reference=now, catalog=snap.catalog, top_n=top_reasons,
                                n_background=n_background, progress=progress)
    bar.update(1)
    bar.set_postfix_str("next stage")
    risk = np.asarray(est.predict_proba(now[feats]))[:, 1]
    # next_stage_data, with the milestones read once for the history and the scored day
    give_back_freed_memory()  # the reasons' blocks, freed
    entered = tap.entered if tap is not None else None
    if entered is None:
        entered = _entered_stages(stage_milestones(store, definition, snap.scope.replace(sample_n=0, random_state=0), cache=cache), definition)
    keys = expand_columns(snap.data[["customer_id", "as_of_day", "stage", "churned"]], coded)
    nxt = _next_stage_table(dataclasses.replace(snap, data=keys), entered, definition)
    del keys
    now_next = _next_stage_rows(dataclasses.replace(snap, data=now), entered, definition)
    stage_key = now["stage"].where(now["stage"].notna(), "(none)")
    prob = nxt.set_index(["stage", "next_stage"])
    idx = pd.MultiIndex.from_arrays([stage_key.to_numpy(), now_next["next_stage"].to_numpy()])
    cust = store.query(f"SELECT customer_id, name FROM ({scope.customers_sql()}) c")
    names = cust.set_index(cust["customer_id"].astype(str))["name"]
    ids = now["customer_id"].astype(str)
    raising = reasons[reasons["direction"] == "raises"].groupby("customer_id", sort=False)["text"].agg("; ".join)
    previous = ids.map(prev).to_numpy(dtype=float)
    scores = pd.DataFrame({
        "customer_id": ids.to_numpy(),
        "name": ids.map(names).to_numpy(),
        "segment": now["segment"].to_numpy(),
        "stage": now["stage"].to_numpy(),
        "risk": risk,
        "risk_band": risk_band(risk, band_cuts),
        "risk_previous": previous,
        "risk_change_7d": risk - previous,
        "reasons": ids.map(raising).fillna("").to_numpy(),
        "next_stage": now_next["next_stage"].to_numpy(),
        "next_stage_probability": prob["probability"].reindex(idx).to_numpy(dtype=float),
        "next_stage_customers": np.where(now_next["next_stage"].notna(), prob["customers"].reindex(idx).fillna(0), 0).astype("int64"),
        "as_of": day_end(score_day),
        "horizon_days": int(horizon_days),
        "model_version": version,
    }).sort_values(["risk", "customer_id"], ascending=[False, True], kind="mergesort").reset_index(drop=True)
    training = {
        "from": f"{day_end(int(train_days.min())) - pd.Timedelta(days=1):%Y-%m-%d}",
        "to": f"{day_end(int(train_days.max())) - pd.Timedelta(days=1):%Y-%m-%d}",
        "snapshots": n_train, "customers": int(snap.data.loc[lab, "customer_id"].nunique()), "churned": n_pos,
        "base_rate": n_pos / n_train, "censored": snap.n_excluded("censored"),
        "calibration": getattr(est, "calibration_basis_", ""),
    }
    del entered, tap
    snap = snap.expanded()  # the table of build_snapshots(compact=False)
    bar.update(1)
    return RiskScores(scores=scores, reasons=reasons, next_stage=nxt, model=est, training=training, as_of=day_end(score_day),
                      horizon_days=int(horizon_days), model_version=version, snapshots=snap)


def score_customers_data(
    store: Store,
    *,
    definition: JourneyDefinition,
    as_of: Any = None,
    horizon_days: int = DEFAULT_HORIZON_DAYS,
    **kwargs: Any,
) -> pd.DataFrame:
    """Return the scored table of :func:`score_customers` (one row per active customer, riskiest first).

    Parameters
    ----------
    store : Store
        The canonical store.
    definition : JourneyDefinition
        The journey definition.
    as_of : date-like, optional
        The day scored (default: the day of the latest event).
    horizon_days : int, default 60
        Risk of churn within this many days.
    **kwargs
        Other arguments of :func:`score_customers`.

    Returns
    -------
    pandas.DataFrame
        ``RiskScores.scores``: the columns listed in :func:`score_customers`.
    """
    return score_customers(store, definition=definition, as_of=as_of, horizon_days=horizon_days, **kwargs).scores


# -- survival from a landmark ------------------------------------------------------------------
def landmark_durations_data(snapshots: Snapshots, *, covariates: Sequence[str]) -> pd.DataFrame:
    """Return one row per customer from its first snapshot: covariates known then, and the days to churn or the data's end.

    A landmark analysis: each customer's clock starts at its first as-of
    day in the snapshots (for the paying population, the first grid day
    after conversion), its covariates are that snapshot's features (known
    then, never later), and its duration runs to churn or to the data's end
    (censored, never counted as churned). Customers who churned before their
    first snapshot day have no snapshot and are not in the table.

    Parameters
    ----------
    snapshots : Snapshots
        From :func:`journeylib.customers.snapshots.build_snapshots`.
    covariates : sequence of str
        Snapshot feature columns to carry.

    Returns
    -------
    pandas.DataFrame
        One row per customer: ``customer_id``, ``landmark`` (the as-of
        instant the clock starts), ``duration_days``, ``churned`` (1 =
        churn observed by the data's end, 0 = censored) and the covariates.

    Raises
    ------
    ValueError
        If a covariate is not a snapshot column.
    """
    missing = [c for c in covariates if c not in snapshots.data.columns]
    if missing:
        msg = f"landmark_durations_data: covariates {missing} are not snapshot columns; known: {snapshots.feature_columns}"
        raise ValueError(msg)
    d = snapshots.data.sort_values(["customer_id", "as_of_day"], kind="mergesort").drop_duplicates("customer_id")
    churn = pd.to_datetime(d["churn_at"], utc=True)
    churned = churn.notna() & (churn <= snapshots.data_end)
    stop = churn.where(churned, snapshots.data_end)
    out = pd.DataFrame({
        "customer_id": d["customer_id"].to_numpy(), "landmark": d["as_of"].to_numpy(),
        "duration_days": (pd.to_timedelta(stop - pd.to_datetime(d["as_of"], utc=True)).dt.total_seconds() / 86400.0).to_numpy(dtype=float),
        "churned": churned.astype(int).to_numpy(),
    })
    for c in covariates:
        out[c] = d[c].to_numpy()
    return out.reset_index(drop=True)



# -- tables for reports ------------------------------------------------------------------------
def cox_table_data(result: Any) -> pd.DataFrame:
    """Return a Cox model's hazard ratios beside its proportional-hazards check, one row per covariate.

    Parameters
    ----------
    result : CoxResult
        From :func:`journeylib.customers.survival.cox_data`.

    Returns
    -------
    pandas.DataFrame
        ``covariate``, ``coef``, ``se``, ``hazard_ratio``, ``hr_low``,
        ``hr_high``, ``p_value`` (of the coefficient), ``ph_test_statistic``,
        ``ph_p_value`` (Schoenfeld-residual test), ``ph_violated``, ``n``,
        ``events``, ``concordance``.
    """
    ph = result.ph_test.rename(columns={"test_statistic": "ph_test_statistic", "p_value": "ph_p_value"})
    out = result.summary.merge(ph, on="covariate", how="left")
    out["n"], out["events"], out["concordance"] = int(result.n), int(result.events), float(result.concordance)
    return out


def model_card_data(card: Mapping[str, Any]) -> pd.DataFrame:
    """Return a model card (:func:`journeylib.customers.risk.model_card`) as a two-column table.

    Parameters
    ----------
    card : mapping
        The model card.

    Returns
    -------
    pandas.DataFrame
        One row per field of the card: ``field`` and ``value`` (text; lists
        and mappings as JSON).
    """
    rows = [{"field": str(k), "value": v if isinstance(v, str) else json.dumps(v, default=str)} for k, v in card.items()]
    return pd.DataFrame(rows, columns=["field", "value"])
