"""Behaviours associated with churn, conversion and expansion, with honest statistics.

Every candidate behaviour is a yes/no split of the analysed customers built
from the feature table (:mod:`journeylib.customers.features`): *did X within d days*,
*had k or more X* (thresholds searched), *reached stage S by day D*, ticket,
e-mail and sentiment signals, and property values. Each is compared with an
outcome of the journey definition in a 2×2 table:

================  ===============  ==================
                  outcome          no outcome
================  ===============  ==================
exposed           a                b                  n1 = a + b
reference         c                d                  n0 = c + d
================  ===============  ==================

* relative risk ``RR = (a/n1) / (c/n0)`` with the Katz log interval,
  odds ratio ``OR = ad / bc`` with the Woolf log interval, lift
  ``(a/n1) / ((a + c)/(n1 + n0))`` with the interval of RR carried through
  (group shares held fixed);
* p-value: Fisher's exact test when an expected cell count is below 5,
  otherwise Pearson's chi-square (1 df, no continuity correction);
* a table with a zero cell gets 0.5 added to every cell for RR, OR and their
  intervals (Haldane–Anscombe), and says so in ``note``: never an infinite
  ratio;
* Benjamini–Hochberg q-values over *every* candidate tested in the call —
  every window and threshold of every count included — so the search is paid
  for;
* adjusted estimates beside the crude ones: Mantel–Haenszel RR
  (Greenland–Robins interval) and OR (Robins–Breslow–Greenland interval,
  ``statsmodels`` ``StratifiedTable``) over strata of segment × plan × size
  band, with the Cochran–Mantel–Haenszel p-value;
* each candidate is oriented so that its *exposed* group has the higher
  outcome rate (RR ≥ 1): "did not complete setup" rather than RR 0.24 for
  "completed setup".

Timing rules: behaviours come from the window ``[signup, signup +
window_days)``; the outcome counts only if it happens after the window end and
within ``horizon_days`` of signup; customers whose window or follow-up is not
complete at ``as_of``, or whose outcome came first, are excluded and counted.
Both the window and the horizon are chosen from the data by default
(:mod:`journeylib.customers.outcomes`); beside the crude 2×2 estimates a
Kaplan–Meier cumulative incidence ratio at the horizon keeps the customers
followed for less, censored. "Did X within d days" is searched over a grid of
d up to the window and "k or more X" over k, every split in the FDR family.
Customer attributes (segment, plan, any ``customers`` column or properties
key) are candidates too, and an outcome known only as a flag or a snapshot
date is analysed cross-sectionally (attributes only).
The unit is the account (``customer_id``).

Thin data never crashes and never yields an infinite ratio or a spurious
"significant" line: a candidate below ``min_support`` customers on either side,
a constant or all-missing feature, an outcome with no events (or only events)
and a scope with a single segment each produce a
:class:`~journeylib.exceptions.StatisticalWarning` and a row whose ``status``
and ``reason`` say why no estimate is given.

The lines of :func:`journeylib.customers.driver_views.driver_lines_data`
describe associations only; they never claim a cause. Who enters the analysis
(the timing rules above) is decided by :mod:`journeylib.customers.outcomes`.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from journeylib.cache import ResultCache
from journeylib.config.journey import JourneyDefinition, Outcome
from journeylib.customers.driver_views import OUTCOME_VERBS, driver_line
from journeylib.customers.features import (
    AUTO_ATTRIBUTE_MAX_LEVELS,
    AUTO_ATTRIBUTE_MIN_COVERAGE,
    CustomerFeatures,
    attribute_candidates_data,
    attribute_column,
    build_features,
    customer_attributes_data,
    customer_outcomes_data,
    feature_slug,
)
from journeylib.customers.outcomes import PLAN_ENCODED_OUTCOMES, outcome_population_data, outcome_spec, window_grid
from journeylib.exceptions import EmptyResultError, StatisticalWarning
from journeylib.scope import Scope
from journeylib.stats import bh_qvalues, mantel_haenszel_odds_ratio, mantel_haenszel_risk_ratio, two_by_two_data
from journeylib.store import Store
from journeylib.store.schema import CUSTOMERS
from journeylib.words import event_label, join_words, plural, with_article

#: ``customers`` columns an attribute or property key may name (read from the column, not from properties).
CUSTOMER_COLUMNS: frozenset[str] = frozenset(CUSTOMERS.names) - {"properties", "customer_id"}

__all__ = [
    "DRIVER_COLUMNS",
    "EVENT_PHRASES",
    "drivers_data",
    "drivers_from_features",
    "size_band",
    "split_keys",
]

#: Event name -> (base verb phrase, past verb phrase, plural noun) for plain-English lines.
EVENT_PHRASES: dict[str, tuple[str, str, str]] = {
    "setup_completed": ("complete setup", "completed setup", "setup completions"),
    "setup_step_completed": ("complete a setup step", "completed a setup step", "setup steps completed"),
    "integration_connected": ("connect an integration", "connected an integration", "integrations connected"),
    "invite_sent": ("send an invite", "sent an invite", "invites sent"),
    "login": ("log in", "logged in", "logins"),
    "project_created": ("create a project", "created a project", "projects created"),
    "task_created": ("create a task", "created a task", "tasks created"),
    "feature_used": ("use a feature", "used a feature", "feature uses"),
    "ticket_created": ("open a support ticket", "opened a support ticket", "support tickets opened"),
    "ticket_solved": ("have a ticket solved", "had a ticket solved", "tickets solved"),
    "email_delivered": ("receive an email", "received an email", "emails received"),
    "email_opened": ("open an email", "opened an email", "emails opened"),
    "email_clicked": ("click a link in an email", "clicked a link in an email", "email clicks"),
    "experiment_assigned": ("enter an experiment", "entered an experiment", "experiment assignments"),
}

#: Columns of :func:`drivers_data`, in order.
DRIVER_COLUMNS: tuple[str, ...] = (
    "rank", "candidate", "feature", "kind", "event", "window_days", "threshold", "thresholds_tried", "selected",
    "family", "windows_tried", "neighbours",
    "exposure", "reference", "orientation", "outcome", "timing", "as_of", "horizon_days", "horizon_basis", "window_basis",
    "n_exposed", "events_exposed", "rate_exposed", "n_reference", "events_reference", "rate_reference", "rate_overall",
    "share_of_outcome", "share_of_no_outcome",
    "rr", "rr_ci_low", "rr_ci_high", "or", "or_ci_low", "or_ci_high", "lift", "lift_ci_low", "lift_ci_high",
    "estimate", "hr", "hr_ci_low", "hr_ci_high", "test", "p_value", "p_crude", "q_value", "significant",
    "adjusted_for", "strata_used", "rr_adjusted", "rr_adjusted_ci_low", "rr_adjusted_ci_high",
    "or_adjusted", "or_adjusted_ci_low", "or_adjusted_ci_high", "p_adjusted",
    "n_km", "n_censored", "n_km_exposed", "events_km_exposed", "n_km_reference", "events_km_reference",
    "risk_km_exposed", "risk_km_reference", "rr_km", "rr_km_ci_low", "rr_km_ci_high",
    "status", "reason", "note", "line",
    "population", "events", "events_after_horizon",
    "n_excluded_window", "n_excluded_followup", "n_not_at_risk", "n_excluded_prior_outcome", "n_outcome_unknown",
    "attributes_used", "family_size", "alpha", "min_support",
)

#: What ranks and tests the splits: ``auto`` (the hazard ratio when follow-up is censored, else the risk ratio).
ESTIMATES: tuple[str, ...] = ("auto", "hazard_ratio", "risk_ratio")


def split_keys(keys: Sequence[str] | str | None) -> tuple[str, ...]:
    """Turn ``"a, b"`` or ``["a", "b"]`` into ``("a", "b")`` (empty items dropped).

    Parameters
    ----------
    keys : str, sequence of str or None
        Comma-separated text (as notebook parameters give it) or names.

    Returns
    -------
    tuple of str
        The names, stripped.

    Examples
    --------
    >>> split_keys("acquisition_channel, region,")
    ('acquisition_channel', 'region')
    """
    if keys is None:
        return ()
    items = keys.split(",") if isinstance(keys, str) else list(keys)
    return tuple(str(k).strip() for k in items if str(k).strip())


def size_band(users: Any) -> pd.Series:
    """Band account sizes (users) as 1, 2–3, 4–7, 8–15, 16+ for stratification.

    Parameters
    ----------
    users : array-like of int
        Users per account.

    Returns
    -------
    pandas.Series
        Text labels (``"1"``, ``"2-3"``, ``"4-7"``, ``"8-15"``, ``"16+"``;
        ``"0"`` for none).

    Examples
    --------
    >>> size_band([1, 3, 9, 40]).tolist()
    ['1', '2-3', '8-15', '16+']
    """
    u = pd.Series(np.asarray(users, dtype=float))
    labels = np.select([u <= 0, u <= 1, u <= 3, u <= 7, u <= 15], ["0", "1", "2-3", "4-7", "8-15"], default="16+")
    return pd.Series(labels, index=u.index)


# -- candidates -------------------------------------------------------------------------------
def _phrases(event: str) -> tuple[str, str, str]:
    if event in EVENT_PHRASES:
        return EVENT_PHRASES[event]
    label = event_label(event)
    return (f"have {with_article(label + ' event')}", f"had {with_article(label + ' event')}", f"{label} events")


def _fmt(x: float) -> str:
    return f"{x:.3g}"


class _Candidate:
    __slots__ = ("candidate", "event", "exposure", "family", "feature", "kind", "reference", "threshold", "values", "window_days")

    def __init__(
        self, *, candidate: str, feature: str, kind: str, event: str, window_days: int, threshold: float | str,
        values: np.ndarray, exposure: str, reference: str, family: str = "",
    ) -> None:
        self.candidate = candidate
        self.feature = feature
        self.kind = kind
        self.event = event
        self.window_days = window_days
        self.threshold = threshold
        self.values = values  # float array: 1 exposed, 0 reference, NaN missing
        self.exposure = exposure
        self.reference = reference
        self.family = family or feature


#: Most levels an attribute may have to be split level by level.
MAX_ATTRIBUTE_LEVELS = 30


def _candidates(
    data: pd.DataFrame, feats: CustomerFeatures, thresholds: Sequence[int], skipped: list[dict[str, Any]],
    property_cols: Sequence[str], attributes: Sequence[tuple[str, str]],
) -> list[_Candidate]:
    """Generate the yes/no splits; constant or all-missing features go to *skipped*.

    *attributes* are ``(column, name)`` pairs of customer attributes.
    """
    out: list[_Candidate] = []
    cat: dict[Any, dict[Any, Any]] = feats.catalog.set_index("feature").to_dict("index") if len(feats.catalog) else {}
    ths = sorted({int(t) for t in thresholds if int(t) >= 2})

    def skip(feature: str, kind: str, event: str, wd: int, status: str, reason: str) -> None:
        skipped.append({"candidate": feature, "feature": feature, "kind": kind, "event": event, "window_days": wd,
                        "status": status, "reason": reason, "family": feature})

    def usable(col: str, kind: str, event: str, wd: int) -> np.ndarray | None:
        v = pd.to_numeric(data[col], errors="coerce").to_numpy(dtype=float)
        fin = v[np.isfinite(v)]
        if not len(fin):
            skip(col, kind, event, wd, "skipped_missing", f"{col} is missing for every analysed customer")
            return None
        if np.all(fin == fin[0]):
            skip(col, kind, event, wd, "skipped_constant", f"{col} is {_fmt(fin[0])} for every analysed customer")
            return None
        return v

    def split(v: np.ndarray, k: float) -> np.ndarray:
        return np.where(np.isfinite(v), (v >= k).astype(float), np.nan)

    # longest window first: of identical splits (nobody did X between d and W) the full window is the one tested
    for col in sorted(feats.columns_of("count"), key=lambda c: -int(cat[c]["window_days"])):
        row = cat[col]
        event, wd, source = str(row["event"]), int(row["window_days"]), str(row["source"])
        v = usable(col, "count", event, wd)
        if v is None:
            continue
        desc = str(row["description"])
        if source == "events" and event:
            # the window x threshold search: every sub-window d, "did X" and "k or more X" within d days
            base, past, plural = _phrases(event)
            fam = f"event:{event}"
            out.append(_Candidate(
                candidate=f"{col}>=1", feature=col, kind="did_within", event=event, window_days=wd, threshold=1,
                values=split(v, 1), exposure=f"who {past} within {wd} days", reference=f"who did not {base} within {wd} days",
                family=fam,
            ))
            for k in ths:
                out.append(_Candidate(
                    candidate=f"{col}>={k}", feature=col, kind="count_at_least", event=event, window_days=wd, threshold=k,
                    values=split(v, k), exposure=f"who had {k} or more {plural} within {wd} days",
                    reference=f"who had fewer than {k} {plural} within {wd} days", family=fam,
                ))
        else:
            for k in [1, *ths]:
                out.append(_Candidate(
                    candidate=f"{col}>={k}", feature=col, kind="count_at_least", event=event, window_days=wd, threshold=k,
                    values=split(v, k), exposure=f"with {k} or more {desc}", reference=f"with fewer than {k} {desc}",
                ))
    for col in feats.columns_of("numeric", "rate"):
        row = cat[col]
        event, wd = str(row["event"]), int(row["window_days"])
        v = usable(col, "numeric", event, wd)
        if v is None:
            continue
        desc = str(row["description"])
        out.extend(_quartile_splits(col, v, kind="value_at_least", event=event, wd=wd, desc=desc))
    for col in feats.columns_of("binary"):
        row = cat[col]
        event, wd = str(row["event"]), int(row["window_days"])
        v = usable(col, "binary", event, wd)
        if v is None:
            continue
        out.append(_Candidate(
            candidate=col, feature=col, kind="stage_reached", event=event, window_days=wd, threshold=1, values=v,
            exposure=f"who reached {event} within {wd} days", reference=f"who did not reach {event} within {wd} days",
        ))
    pairs = [*attributes, *[(c, c[len("prop_"):]) for c in property_cols]]
    for col, key in pairs:
        if col not in data.columns:
            continue
        s = data[col]
        if pd.api.types.is_bool_dtype(s):
            s = s.astype(object).where(s.notna(), None).map(lambda x: None if x is None else str(bool(x)).lower())
        numeric = pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)
        if numeric and s.nunique() > 10:
            v = s.to_numpy(dtype=float)
            out.extend(_quartile_splits(col, v, kind="attribute_at_least", event=key, wd=0, desc=key))
            continue
        levels = sorted(s.dropna().astype(str).unique())
        if not levels:
            skip(col, "property_value", key, 0, "skipped_missing", f"{key} is missing for every analysed customer")
            continue
        if len(levels) == 1:
            skip(col, "property_value", key, 0, "skipped_constant", f"{key} is {levels[0]} for every analysed customer")
            continue
        if len(levels) > MAX_ATTRIBUTE_LEVELS:
            skip(col, "property_value", key, 0, "skipped_levels",
                 f"{key} has {len(levels)} levels; at most {MAX_ATTRIBUTE_LEVELS} are split level by level")
            continue
        text = s.astype(object).where(s.notna(), None).map(lambda x: None if x is None else str(x))
        counts = text.value_counts()
        # the most common level (ties: the first in sort order)
        reference = min(levels, key=lambda lv: (-int(counts.get(lv, 0)), lv))
        for level in levels:
            v = np.where(text.isna(), np.nan, (text == level).astype(float))
            out.append(_Candidate(
                candidate=f"{col}={level}", feature=col, kind="property_value", event=key, window_days=0, threshold=level,
                values=v.astype(float), exposure=f"with {key} {level}", reference=f"with {key} other than {level}",
            ))
        if len(levels) < 3:
            continue  # with two levels, level vs reference is level vs rest
        for level in levels:
            if level == reference:
                continue
            v = np.where(text == level, 1.0, np.where(text == reference, 0.0, np.nan))
            out.append(_Candidate(
                candidate=f"{col}={level} vs {reference}", feature=col, kind="property_vs_reference", event=key,
                window_days=0, threshold=level, values=v.astype(float), exposure=f"with {key} {level}",
                reference=f"with {key} {reference}",
            ))
    return out


def _quartile_splits(col: str, v: np.ndarray, *, kind: str, event: str, wd: int, desc: str) -> list[_Candidate]:
    fin = v[np.isfinite(v)]
    cuts = sorted({float(q) for q in np.quantile(fin, [0.25, 0.5, 0.75])})
    out = []
    for q in cuts:
        if not (fin.min() < q <= fin.max()):
            continue
        out.append(_Candidate(
            candidate=f"{col}>={_fmt(q)}", feature=col, kind=kind, event=event, window_days=wd, threshold=q,
            values=np.where(np.isfinite(v), (v >= q).astype(float), np.nan),
            exposure=f"with {desc} at or above {_fmt(q)}", reference=f"with {desc} below {_fmt(q)}",
        ))
    return out


def _km_risks(
    x: np.ndarray, duration: np.ndarray, event: np.ndarray, horizon: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Kaplan–Meier cumulative incidence at *horizon* of both sides of every split, with Greenwood variances.

    *x* is (splits × customers) with 1 exposed, 0 reference, NaN unknown.
    Returns risk and variance of the exposed and the reference side, and
    whether anyone of each side is still followed at the horizon.
    """
    order = np.argsort(duration, kind="stable")
    dur = duration[order]
    ev = event[order] == 1
    times = np.unique(dur[ev & (dur <= horizon)])
    lt = np.searchsorted(dur, times, side="left")
    le = np.searchsorted(dur, times, side="right")
    res = []
    for side in (1.0, 0.0):
        g = (x[:, order] == side).astype(float)
        cum = np.concatenate([np.zeros((len(g), 1)), np.cumsum(g, axis=1)], axis=1)
        cum_ev = np.concatenate([np.zeros((len(g), 1)), np.cumsum(g * ev, axis=1)], axis=1)
        total = cum[:, -1:]
        at_risk = total - cum[:, lt]
        deaths = cum_ev[:, le] - cum_ev[:, lt]
        with np.errstate(divide="ignore", invalid="ignore"):
            frac = np.where(at_risk > 0, 1 - deaths / np.where(at_risk > 0, at_risk, 1), 1.0)
            surv = np.prod(frac, axis=1)
            gw = np.where(at_risk - deaths > 0, deaths / (at_risk * (at_risk - deaths)), 0.0).sum(axis=1)
        followed = (g * (dur >= horizon)).sum(axis=1) > 0
        res.append((1 - surv, surv**2 * gw, followed))
    (r1, v1, f1), (r0, v0, f0) = res
    return r1, v1, r0, v0, f1, f0


def _cox_logrank(
    x: np.ndarray, duration: np.ndarray, event: np.ndarray, *, max_iter: int = 60,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Cox hazard ratio (Efron ties, Newton–Raphson) and log-rank test of every split at once.

    *x* is (splits × customers) with 1 exposed, 0 reference, NaN unknown (left
    out of that split); *duration* the follow-up (days, already capped at the
    horizon) and *event* 1 when the outcome ended it. With one binary
    covariate the partial likelihood depends only on the numbers at risk and
    with the outcome on each side at each event time, so all splits are fitted
    together. Returns the log hazard ratio, its standard error (observed
    information at the estimate), the log-rank chi-square p-value and the
    observed minus expected outcomes of the exposed side (its sign is the
    direction of the association). The ratio is NaN when a side has no
    outcome (it would be 0 or infinite). The results equal
    ``lifelines.CoxPHFitter`` and ``lifelines.statistics.logrank_test``
    (tested).
    """
    n_splits = x.shape[0]
    order = np.argsort(duration, kind="stable")
    dur = duration[order]
    ev = event[order] == 1
    times = np.unique(dur[ev])
    if n_splits == 0 or not len(times):
        nan = np.full(n_splits, np.nan)
        return nan, nan, nan, np.zeros(n_splits)
    lt = np.searchsorted(dur, times, side="left")
    le = np.searchsorted(dur, times, side="right")

    def at_risk_and_events(side: float) -> tuple[np.ndarray, np.ndarray]:
        g = (x[:, order] == side).astype(float)
        cum = np.concatenate([np.zeros((n_splits, 1)), np.cumsum(g, axis=1)], axis=1)
        cum_ev = np.concatenate([np.zeros((n_splits, 1)), np.cumsum(g * ev, axis=1)], axis=1)
        return cum[:, -1:] - cum[:, lt], cum_ev[:, le] - cum_ev[:, lt]

    n1, d1 = at_risk_and_events(1.0)
    n0, d0 = at_risk_and_events(0.0)
    n, d = n1 + n0, d1 + d0
    # log-rank: observed minus expected exposed outcomes, hypergeometric variance
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(n > 0, n1 / np.where(n > 0, n, 1), 0.0)
        expected = (d * share).sum(axis=1)
        var = np.where(n > 1, d * share * (1 - share) * (n - d) / np.where(n > 1, n - 1, 1), 0.0).sum(axis=1)
        chi2 = np.where(var > 0, (d1.sum(axis=1) - expected) ** 2 / np.where(var > 0, var, 1), np.nan)
    p = np.where(np.isfinite(chi2), stats.chi2.sf(chi2, 1), np.nan)
    # Cox partial likelihood, Efron's approximation for tied times
    max_tied = int(d.max())
    frac = [np.where(d > 0, k / np.where(d > 0, d, 1), 0.0) for k in range(max_tied)]
    tied = [d > k for k in range(max_tied)]

    def score_info(beta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        w = np.exp(beta)[:, None]
        u = d1.sum(axis=1).astype(float)
        info = np.zeros(n_splits)
        for k in range(max_tied):
            num = n1 * w - frac[k] * d1 * w
            den = num + n0 - frac[k] * d0
            with np.errstate(divide="ignore", invalid="ignore"):
                q = np.where(tied[k] & (den > 0), num / np.where(den > 0, den, 1), 0.0)
            u = u - q.sum(axis=1)
            info = info + (q - q**2).sum(axis=1)
        return u, info

    fits = (d1.sum(axis=1) > 0) & (d0.sum(axis=1) > 0) & (var > 0)
    beta = np.zeros(n_splits)
    converged = np.zeros(n_splits, dtype=bool)
    for _ in range(max_iter):
        u, info = score_info(beta)
        with np.errstate(divide="ignore", invalid="ignore"):
            step = np.where(fits & (info > 0), u / np.where(info > 0, info, 1), 0.0)
        step = np.clip(step, -1.0, 1.0)  # the log-likelihood is concave: damped Newton steps cannot diverge
        beta = beta + step
        converged = fits & (np.abs(step) < 1e-9)
        if converged.sum() == fits.sum():
            break
    _, info = score_info(beta)
    with np.errstate(divide="ignore", invalid="ignore"):
        se = np.where(converged & (info > 0), 1 / np.sqrt(np.where(info > 0, info, 1)), np.nan)
    beta = np.where(converged, beta, np.nan)
    return beta, se, p, d1.sum(axis=1) - expected


# -- the analysis -----------------------------------------------------------------------------
def _adjusted(x: np.ndarray, y: np.ndarray, strata: np.ndarray, n_strata: int, alpha: float) -> tuple[Any, ...]:
    """MH RR (Greenland–Robins CI), MH OR (RBG CI), CMH p, informative strata, corrected flag."""
    ok = np.isfinite(x)
    xs, ys, ss = x[ok] == 1, y[ok] == 1, strata[ok]
    a = np.bincount(ss[xs & ys], minlength=n_strata).astype(float)
    b = np.bincount(ss[xs & ~ys], minlength=n_strata).astype(float)
    c = np.bincount(ss[~xs & ys], minlength=n_strata).astype(float)
    d = np.bincount(ss[~xs & ~ys], minlength=n_strata).astype(float)
    informative = (a + b > 0) & (c + d > 0)
    n_inf = int(informative.sum())
    nan = math.nan
    if n_inf == 0:
        return nan, nan, nan, nan, nan, nan, nan, 0, False
    rr, rr_lo, rr_hi, corrected = mantel_haenszel_risk_ratio(a, b, c, d, alpha=alpha)
    or_, or_lo, or_hi, p = mantel_haenszel_odds_ratio(a, b, c, d, alpha=alpha, add_half=corrected)
    vals = [rr, rr_lo, rr_hi, or_, or_lo, or_hi, p]
    vals = [v if math.isfinite(v) else nan for v in vals]
    return (*vals, n_inf, corrected)


def drivers_data(
    store: Store,
    *,
    definition: JourneyDefinition,
    outcome: str = "churn",
    window_days: int | str = "auto",
    horizon_days: float | str | None = "auto",
    min_support: int = 30,
    as_of: Any = None,
    segment: str | None = None,
    plan: str | None = None,
    signup_from: Any = None,
    signup_to: Any = None,
    sample_n: int = 0,
    random_state: int = 0,
    scope: Scope | None = None,
    cache: ResultCache | None = None,
    population: str = "auto",
    thresholds: Sequence[int] = (2, 3, 5, 10),
    adjust_for: Sequence[str] = ("segment", "plan", "size"),
    property_keys: Sequence[str] | str = (),
    ticket_scores: pd.DataFrame | None = None,
    alpha: float = 0.05,
    windows: Sequence[int] | None = None,
    attributes: Sequence[str] | str = (),
    outcome_field: str = "",
    timing: str = "auto",
    estimate: str = "auto",
) -> pd.DataFrame:
    """Rank early behaviours and customer attributes by how strongly they are associated with an outcome.

    Parameters
    ----------
    store : Store
        The canonical store.
    definition : JourneyDefinition
        Stages (for "reached stage by day D") and outcomes.
    outcome : str, default "churn"
        Outcome name of the definition: ``churn``, ``conversion``,
        ``expansion`` ... (with ``outcome_field``, any name: it is only used
        in the text).
    window_days : int or "auto", default "auto"
        Behaviour window W (days after signup). ``"auto"`` or 0: the longest
        window of :data:`journeylib.customers.outcomes.WINDOW_GRID` (at most
        30 days) that ends before all but 5% of the observed outcomes
        (:func:`journeylib.customers.outcomes.choose_window_days`).
    horizon_days : float or "auto", default "auto"
        Outcome within this many days of signup. ``"auto"``, 0 or None: the
        90th percentile of the observed days from signup to the outcome
        (:func:`journeylib.customers.outcomes.choose_horizon_days`); customers
        followed for less are left out of the 2×2 tables and counted, and
        kept, censored, in the Kaplan–Meier columns.
    min_support : int, default 30
        Fewest customers on each side of a split for it to be estimated.
    as_of, segment, plan, signup_from, signup_to, sample_n, random_state, scope
        Scope, as in :func:`journeylib.customers.features.build_features`.
    cache : ResultCache, optional
        Shares the feature table with other analyses of a context.
    population : {"auto", "all", "converted"}, default "auto"
        See :func:`journeylib.customers.outcomes.outcome_population_data`.
    thresholds : sequence of int, default (2, 3, 5, 10)
        The k of "had k or more X within d days" tried for every event at
        every window d (k = 1 is the "did X within d days" candidate). Every
        split tried enters the FDR family.
    adjust_for : sequence of str, default ("segment", "plan", "size")
        Strata of the adjusted estimates (``size`` = users at the window end,
        banded by :func:`size_band`). ``plan`` is dropped for conversion and
        expansion (:data:`journeylib.customers.outcomes.PLAN_ENCODED_OUTCOMES`):
        the exported plan is ``trial`` until conversion and the new plan after
        an upgrade, so it encodes those outcomes.
    property_keys : sequence of str or str, default ()
        Customer properties whose values are candidates (e.g.
        ``("acquisition_channel", "region")``, or the text
        ``"acquisition_channel,region"``). A name that is a ``customers``
        column (``plan``, ``mrr``) is read from the column, as an attribute.
    ticket_scores : pandas.DataFrame, optional
        Per-ticket sentiment/topic scores (``ticket_id`` + columns); see
        :func:`journeylib.customers.features.build_features`.
    alpha : float, default 0.05
        1 - confidence level of every interval, and the FDR level of
        ``significant``.
    windows : sequence of int, optional
        The windows d searched (default
        :data:`journeylib.customers.outcomes.WINDOW_GRID` up to W, and W).
    attributes : sequence of str or str, default ()
        Customer attributes that are candidates besides ``segment``: any
        ``customers`` column (``plan``, ``mrr``) or ``properties`` key,
        comma-separated or a list. Each level is compared with the rest and,
        with three or more levels, with the most common level; numeric
        attributes with more than 10 values are split at their quartiles.
        An attribute that is null for every analysed customer is a
        ``skipped_missing`` row and a warning.
    outcome_field : str, default ""
        A ``customers`` column or ``properties`` key holding the outcome as a
        flag (true/false, yes/no, 1/0) or a date, instead of the
        definition's outcome. A flag has no time: the analysis is
        cross-sectional.
    timing : {"auto", "since_signup", "cross_sectional"}, default "auto"
        ``since_signup``: behaviour window, horizon and censoring as above.
        ``cross_sectional``: the outcome as known at ``as_of`` (no window, no
        horizon), customer attributes as the only candidates (behaviour
        cannot be placed before an outcome without a time). ``auto``:
        cross-sectional when the outcome is a flag, or when at least half of
        the observed outcome dates are at or before signup (a snapshot export
        stamping both with the export date).

    Returns
    -------
    pandas.DataFrame
        One row per candidate (:data:`DRIVER_COLUMNS`), estimated rows first,
        best first:

        ``rank``
            1 = strongest among significant rows (by the lower CI bound of RR),
            then the other estimated rows; NaN when not estimated.
        ``candidate``, ``feature``, ``kind``, ``event``, ``window_days``, ``threshold``
            The split: ``kind`` is ``did_within`` (event count within
            ``window_days`` ≥ 1), ``count_at_least`` (≥ threshold),
            ``value_at_least`` (numeric ≥ a quartile), ``stage_reached``,
            ``property_value`` (= a level, vs every other level),
            ``property_vs_reference`` (= a level, vs the most common level) or
            ``attribute_at_least`` (numeric attribute ≥ a quartile).
        ``thresholds_tried``
            Splits of the same feature column in the family.
        ``selected``
            True on the split with the smallest p-value of its ``family``.
        ``family``, ``windows_tried``, ``neighbours``
            The search family (``event:<name>`` gathers every window and
            threshold of one event; otherwise the feature), the windows it
            tried, and on selected rows the RR of the neighbouring windows
            (same threshold) and thresholds (same window), e.g.
            ``"window 7d 2.1, [10d 3.0], 14d 2.6; threshold ≥1 [3.0], ≥2 2.2"``.
        ``exposure``, ``reference``, ``orientation``
            The groups in words; ``orientation`` is ``as_defined`` or
            ``complement`` (the split was flipped so that RR ≥ 1).
        ``outcome``, ``timing``, ``as_of``
            The outcome, ``since_signup`` or ``cross_sectional``, and the
            censoring date (ISO).
        ``horizon_days``, ``horizon_basis``, ``window_basis``
            The follow-up from signup (NaN when cross-sectional) and how the
            horizon and the behaviour window were chosen, in words.
        ``n_exposed``, ``events_exposed``, ``rate_exposed``
            Customers in the exposed group; of them, with the outcome; the
            share (denominator n_exposed).
        ``n_reference``, ``events_reference``, ``rate_reference``
            The same for the reference group.
        ``rate_overall``
            Outcome rate among customers with a known value of the feature.
        ``share_of_outcome``, ``share_of_no_outcome``
            Share of customers with (without) the outcome who are in the
            exposed group ("what converting trials do").
        ``rr``, ``rr_ci_low``, ``rr_ci_high``
            Crude relative risk and its 1-alpha interval (Katz).
        ``or``, ``or_ci_low``, ``or_ci_high``
            Crude odds ratio (Woolf interval).
        ``lift``, ``lift_ci_low``, ``lift_ci_high``
            rate_exposed / rate_overall, interval from RR's.
        ``test``, ``p_value``
            ``fisher`` or ``chi2``; two-sided p.
        ``q_value``, ``significant``
            Benjamini–Hochberg q over every estimated row; q ≤ alpha.
        ``adjusted_for``, ``strata_used``
            Strata variables (comma-separated) and informative strata.
        ``rr_adjusted``, ``rr_adjusted_ci_low``, ``rr_adjusted_ci_high``
            Mantel–Haenszel RR (Greenland–Robins interval).
        ``or_adjusted``, ``or_adjusted_ci_low``, ``or_adjusted_ci_high``, ``p_adjusted``
            Mantel–Haenszel OR, its interval and the CMH test p-value.
        ``n_km``, ``n_censored``
            Customers in the Kaplan–Meier estimate (the analysed ones plus
            those followed for less than the horizon), and of them those
            censored before the horizon without the outcome.
        ``risk_km_exposed``, ``risk_km_reference``
            Kaplan–Meier cumulative incidence of the outcome at the horizon
            (1 − S(horizon)) in each group; NaN when a group has nobody
            followed to the horizon.
        ``rr_km``, ``rr_km_ci_low``, ``rr_km_ci_high``
            Their ratio, with a log-scale interval from Greenwood variances.
        ``status``, ``reason``, ``note``
            ``ok``; ``below_min_support``; ``duplicate`` (same split as
            another candidate); ``skipped_constant``; ``skipped_missing``;
            ``skipped_levels``; ``skipped_leak``; ``no_outcome_variation`` —
            with the reason in words; ``note`` lists caveats (zero-cell
            correction, possible leak, dropped strata).
        ``line``
            The plain-English sentence for significant rows, else empty.
        ``population``, ``events``, ``events_after_horizon``
            Customers analysed; of them with the outcome within the horizon;
            and with the outcome later (counted as "no outcome within the
            horizon").
        ``n_excluded_window``, ``n_excluded_followup``, ``n_not_at_risk``, ``n_excluded_prior_outcome``, ``n_outcome_unknown``
            Customers in scope left out, by reason
            (:func:`journeylib.customers.outcomes.outcome_population_data`;
            ``n_outcome_unknown``: an ``outcome_field`` with no value).
        ``family_size``, ``alpha``, ``min_support``
            Rows estimated (the FDR family) and the settings.

    Raises
    ------
    ValueError
        If the outcome is unknown, an argument is out of range, or an
        ``outcome_field`` holds values that are neither flags nor dates.
    EmptyResultError
        If no customer is in scope, or none is left after the exclusions.

    Warns
    -----
    StatisticalWarning
        On exclusions, thin or degenerate data, all-null attributes (see the
        module docstring).
    """
    if not isinstance(min_support, (int, np.integer)) or isinstance(min_support, bool) or min_support < 1:
        msg = f"min_support must be a positive whole number of customers; got {min_support!r}"
        raise ValueError(msg)
    if not 0 < alpha < 1:
        msg = f"alpha must be between 0 and 1; got {alpha!r}"
        raise ValueError(msg)
    if timing not in ("auto", "since_signup", "cross_sectional"):
        msg = f"drivers_data: timing must be 'auto', 'since_signup' or 'cross_sectional'; got {timing!r}"
        raise ValueError(msg)
    property_keys = split_keys(property_keys)
    attribute_names = list(split_keys(attributes))
    auto_attributes = "auto" in attribute_names
    attribute_names = [a for a in attribute_names if a != "auto"]
    if estimate not in ESTIMATES:
        msg = f"drivers_data: estimate must be one of {', '.join(ESTIMATES)}; got {estimate!r}"
        raise ValueError(msg)
    unknown_adj = [a for a in adjust_for if a not in ("segment", "plan", "size")]
    if unknown_adj:
        msg = f"adjust_for accepts segment, plan and size; got {unknown_adj}"
        raise ValueError(msg)
    notes: list[str] = []
    # a property key that is a customers column (plan, mrr) is read from the column, never as an absent JSON key
    columns = [k for k in property_keys if k in CUSTOMER_COLUMNS]
    if columns:
        notes.append(f"{', '.join(columns)} read from the customers column(s), not properties")
        property_keys = tuple(k for k in property_keys if k not in CUSTOMER_COLUMNS)
        attribute_names += [k for k in columns if k not in attribute_names]
    attribute_names = [a for a in attribute_names if a != "segment"]
    asked_plan = "plan" in attribute_names
    if not asked_plan:
        attribute_names.insert(0, "plan")  # plan is always a candidate attribute (unless it encodes the outcome)
    scope = Scope.resolve(store, scope, function="drivers_data", as_of=as_of, segment=segment, plan=plan,
                          signup_from=signup_from, signup_to=signup_to, sample_n=sample_n, random_state=random_state)
    attributes_used = ""
    if auto_attributes:
        exclude = [outcome_field, *property_keys, *attribute_names,
                   *[o.customer_property for o in definition.outcomes.values() if o.customer_property]]
        table = attribute_candidates_data(store, exclude=[e for e in exclude if e], scope=scope.replace(sample_n=0, random_state=0))
        chosen = [str(nm) for nm in table.loc[table["used"] & (table["source"] == "property"), "name"]]
        attribute_names += [nm for nm in chosen if nm not in attribute_names]
        left = table[~table["used"]]
        attributes_used = (
            "chosen automatically (customers columns segment and plan, properties keys with 2 to "
            f"{AUTO_ATTRIBUTE_MAX_LEVELS} levels covering at least {AUTO_ATTRIBUTE_MIN_COVERAGE:.0%} of customers): "
            + (", ".join(chosen) or "no properties key")
            + ("; not used: " + "; ".join(f"{r.name} ({r.reason})" for r in left.itertuples()) if len(left) else "")
        )
        notes.append(f"attributes {attributes_used}")
    flags: pd.DataFrame | None = None
    cross = False
    basis = ""
    if outcome_field:
        flags, kind_of_field = _outcome_field(store, outcome_field, scope)
        if kind_of_field == "flag" and timing == "since_signup":
            msg = (f"drivers_data: outcome_field {outcome_field!r} holds flags, which have no time; timing must be "
                   "'cross_sectional' or 'auto'")
            raise ValueError(msg)
        if kind_of_field == "flag" or timing == "cross_sectional":
            cross = True
            basis = f"{outcome_field} is a {kind_of_field} without signup-relative timing"
        else:
            # a date: timed from signup like a definition outcome, unless it is a snapshot stamped at signup
            field_definition = _definition_with_field(definition, outcome, outcome_field)
            if timing == "auto":
                cross, basis = _is_snapshot(store, field_definition, outcome, scope)
            if not cross:
                definition, flags = field_definition, None
        is_conversion = False
    else:
        is_conversion = outcome_spec(definition, outcome)[1]
        cross, basis = _is_snapshot(store, definition, outcome, scope) if timing == "auto" else (timing == "cross_sectional", "")
    if cross and estimate == "hazard_ratio":
        msg = (f"drivers_data: estimate='hazard_ratio' needs times; the {outcome} outcome is analysed cross-sectionally "
               f"({basis or 'asked for'}); use estimate='auto' or 'risk_ratio'")
        raise ValueError(msg)
    if cross:
        return _cross_sectional(
            store, definition=definition, outcome=outcome, flags=flags, scope=scope, population=population,
            min_support=min_support, adjust_for=adjust_for, attribute_names=attribute_names,
            property_keys=property_keys, alpha=alpha, basis=basis or "asked for", notes=notes, thresholds=thresholds,
            attributes_used=attributes_used,
        )

    wd_arg: int | str = "auto" if window_days in (0, None, "auto") else window_days
    hz_arg: float | str = "auto" if horizon_days in (0, None, "auto") or horizon_days is None else horizon_days
    pop = outcome_population_data(
        store, definition=definition, outcome=outcome, window_days=wd_arg, horizon_days=hz_arg,
        population=population, scope=scope,
    )
    wd = int(pop["window_days"].iloc[0])
    horizon = float(pop["horizon_days"].iloc[0])
    counts = pop["status"].value_counts()
    excl = {k: int(counts.get(k, 0)) for k in ("window_incomplete", "followup_incomplete", "not_at_risk", "outcome_before_window_end")}
    included = pop[pop["status"] == "included"]
    if included.empty:
        msg = (
            f"no customer is left for the {outcome} analysis: of the {plural(len(pop), 'customer')} in scope, "
            f"{excl['window_incomplete']:,} have an incomplete {wd}-day window, {excl['followup_incomplete']:,} "
            f"less than {horizon:g} days of follow-up, {excl['not_at_risk']:,} are not at risk (churn and expansion "
            f"are measured among converted customers) and {excl['outcome_before_window_end']:,} had the outcome "
            "within the window. Use a shorter horizon_days, a later as_of or a wider scope."
        )
        raise EmptyResultError(msg)
    dropped = sum(excl.values())
    if dropped:
        reasons = {
            "window_incomplete": f"with an incomplete {wd}-day window",
            "followup_incomplete": f"with less than {horizon:g} days of follow-up",
            "not_at_risk": "not at risk (never converted, for churn and expansion)",
            "outcome_before_window_end": "with the outcome inside the window",
        }
        warnings.warn(
            f"{dropped:,} of {plural(len(pop), 'customer')} in scope are not analysed for {outcome}: "
            + join_words(f"{v:,} {reasons[k]}" for k, v in excl.items() if v) + ".",
            StatisticalWarning,
            stacklevel=2,
        )
    grid = window_grid(wd, windows)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StatisticalWarning)  # the exclusions are reported above
        feats = build_features(
            store, definition=definition, window_days=wd, windows=grid, scope=scope, cache=cache,
            property_keys=property_keys, ticket_scores=ticket_scores,
        )
    sources: dict[str, str] = {}
    if attribute_names:
        feats, sources = _with_attributes(store, feats, attribute_names, scope)
    km = pop.loc[pop["km_eligible"], ["customer_id", "km_duration", "km_event"]]
    after = int((included["outcome_at"].notna() & (included["time_days"] > horizon)).sum())
    return _analyse(
        feats, included[["customer_id", "outcome"]], outcome=outcome, horizon_days=horizon, min_support=min_support,
        thresholds=thresholds, adjust_for=adjust_for, property_keys=property_keys, alpha=alpha,
        plan_encodes_outcome=is_conversion or outcome in PLAN_ENCODED_OUTCOMES, exclusions=excl, km=km,
        attributes=attribute_names, notes=notes, events_after_horizon=after, attribute_sources=sources,
        explicit_plan=asked_plan, estimate=estimate, attributes_used=attributes_used,
        context={"timing": "since_signup", "as_of": f"{scope.as_of:%Y-%m-%d}",
                 "horizon_basis": str(pop.attrs.get("horizon_basis", "")),
                 "window_basis": str(pop.attrs.get("window_basis", ""))},
    )


_FLAG_TRUE = frozenset({"1", "1.0", "true", "t", "yes", "y"})
_FLAG_FALSE = frozenset({"0", "0.0", "false", "f", "no", "n"})


def _outcome_field(store: Store, name: str, scope: Scope) -> tuple[pd.DataFrame, str]:
    """Read an outcome held in a customer field: flags (1/0) or dates (1 when on or before as_of)."""
    attrs = customer_attributes_data(store, names=[name], scope=scope)
    s = attrs[attribute_column(name)]
    known = s.dropna()
    if known.empty:
        msg = (f"drivers_data: outcome_field {name!r} ({attrs.attrs['sources'][name]}) is empty for every customer in "
               f"scope ({scope.describe()})")
        raise ValueError(msg)
    if pd.api.types.is_datetime64_any_dtype(s):
        dates = s
    else:
        text = known.astype(str).str.strip().str.lower()
        if text.isin(_FLAG_TRUE | _FLAG_FALSE).all():
            y = s.map(lambda v: None if v is None or (isinstance(v, float) and math.isnan(v)) else
                      float(str(v).strip().lower() in _FLAG_TRUE))
            return pd.DataFrame({"customer_id": attrs["customer_id"], "outcome": pd.to_numeric(y)}), "flag"
        dates = pd.to_datetime(s, errors="coerce", utc=True)
        if dates.notna().sum() < len(known):
            bad = sorted(known[dates[known.index].isna()].astype(str).unique())[:8]
            msg = (f"drivers_data: outcome_field {name!r} must hold flags (true/false, yes/no, 1/0) or dates; "
                   f"got values such as {bad}")
            raise ValueError(msg)
    dates = pd.to_datetime(dates, utc=True)
    y = (dates.notna() & (dates <= scope.as_of)).astype(float)
    return pd.DataFrame({"customer_id": attrs["customer_id"], "outcome": y}), "date"


def _is_snapshot(store: Store, definition: JourneyDefinition, outcome: str, scope: Scope) -> tuple[bool, str]:
    """Whether an outcome of the definition has no signup-relative timing (a snapshot export).

    It has none when at least half of the observed outcome dates are at or
    before the customer's signup (signup and outcome both stamped with the
    export date, say): a time since signup of zero says nothing.
    """
    col, _ = outcome_spec(definition, outcome)
    outs = customer_outcomes_data(store, definition=definition, scope=scope)
    seen = outs[col].notna()
    if seen.sum() < 2:
        return False, ""
    at_signup = int((outs.loc[seen, col] <= outs.loc[seen, "signup_at"]).sum())
    if at_signup * 2 >= int(seen.sum()):
        return True, (f"{at_signup} of {int(seen.sum())} observed {outcome} dates are at or before signup "
                      "(a snapshot export: no time since signup)")
    return False, ""


def _definition_with_field(definition: JourneyDefinition, outcome: str, field: str) -> JourneyDefinition:
    """Return the definition with *outcome* read from the date in *field* (a customers date column or properties key)."""
    if field in ("converted_at", "churned_at", "renewal_at"):
        spec = Outcome.model_validate({"customer_field": field})
    elif field in CUSTOMER_COLUMNS:
        msg = (f"drivers_data: outcome_field {field!r} is a customers column that is not an outcome date; allowed date "
               "columns: converted_at, churned_at, renewal_at, or any customers.properties key holding dates")
        raise ValueError(msg)
    else:
        spec = Outcome(customer_property=field)
    return definition.model_copy(update={"outcomes": {**definition.outcomes, outcome: spec}})


def _with_attributes(
    store: Store, feats: CustomerFeatures, names: Sequence[str], scope: Scope,
) -> tuple[CustomerFeatures, dict[str, str]]:
    attrs = customer_attributes_data(store, names=list(names), scope=scope.replace(sample_n=0, random_state=0))
    data = feats.data.merge(attrs, on="customer_id", how="left")
    return dataclasses.replace(feats, data=data), dict(attrs.attrs.get("sources", {}))


def _cross_sectional(
    store: Store, *, definition: JourneyDefinition, outcome: str, flags: pd.DataFrame | None, scope: Scope,
    population: str, min_support: int, adjust_for: Sequence[str], attribute_names: list[str],
    property_keys: Sequence[str], alpha: float, basis: str, notes: list[str], thresholds: Sequence[int],
    attributes_used: str = "",
) -> pd.DataFrame:
    """Attributes against an outcome known only as of ``as_of``."""
    names = ["segment", *attribute_names]
    attrs = customer_attributes_data(store, names=[*names, *property_keys], scope=scope)
    data = attrs.rename(columns={"attr_segment": "segment"})
    data["plan"] = data["attr_plan"]
    data = data.rename(columns={attribute_column(k): f"prop_{feature_slug(k)}" for k in property_keys})
    n_not_at_risk = 0
    if flags is None:
        col, is_conversion = outcome_spec(definition, outcome)
        outs = customer_outcomes_data(store, definition=definition, scope=scope)
        flags = pd.DataFrame({"customer_id": outs["customer_id"], "outcome": outs[col].notna().astype(float)})
        conv = next((f"{feature_slug(n)}_at" for n, sp in definition.outcomes.items() if sp.customer_field == "converted_at"), None)
        use_converted = population == "converted" or (
            population == "auto" and not is_conversion and conv is not None and outs[conv].notna().any()
        )
        if use_converted and conv is not None:
            at_risk = outs[conv].notna().to_numpy()
            n_not_at_risk = int((~at_risk).sum())
            flags = flags[at_risk]
    unknown = int(flags["outcome"].isna().sum())
    flags = flags[flags["outcome"].notna()]
    if flags.empty:
        msg = f"no customer is left for the cross-sectional {outcome} analysis ({scope.describe()})"
        raise EmptyResultError(msg)
    notes = [*notes, f"cross-sectional: {basis}; behaviours are not candidates (they cannot be placed before an outcome "
                     "without a time)"]
    warnings.warn(f"{outcome} is analysed cross-sectionally as of {scope.as_of:%Y-%m-%d}: {basis}; only customer "
                  "attributes are candidates.", StatisticalWarning, stacklevel=3)
    catalog = pd.DataFrame(columns=["feature", "kind", "source", "event", "window_days", "activity", "description"])
    feats = CustomerFeatures(data=data, catalog=catalog, exclusions=pd.DataFrame(columns=["reason", "customers"]),
                             window_days=0, windows=(), as_of=scope.as_of, scope=scope)
    excl = {"not_at_risk": n_not_at_risk, "outcome_unknown": unknown}
    return _analyse(
        feats, flags, outcome=outcome, horizon_days=math.nan, min_support=min_support, thresholds=thresholds,
        adjust_for=[a for a in adjust_for if a != "size"], property_keys=property_keys, alpha=alpha,
        plan_encodes_outcome=outcome in PLAN_ENCODED_OUTCOMES or outcome == "conversion", exclusions=excl,
        attributes=[a for a in names if a != "segment"], notes=notes, attribute_sources=attrs.attrs.get("sources", {}),
        attributes_used=attributes_used,
        context={"timing": "cross_sectional", "as_of": f"{scope.as_of:%Y-%m-%d}", "horizon_basis": "",
                 "window_basis": ""},
    )


def drivers_from_features(
    features: CustomerFeatures,
    outcomes: pd.DataFrame,
    *,
    outcome: str,
    horizon_days: float,
    min_support: int = 30,
    thresholds: Sequence[int] = (2, 3, 5, 10),
    adjust_for: Sequence[str] = ("segment", "plan", "size"),
    property_keys: Sequence[str] | str = (),
    alpha: float = 0.05,
    plan_encodes_outcome: bool = False,
    exclusions: dict[str, int] | None = None,
    km: pd.DataFrame | None = None,
    attributes: Sequence[str] | str = (),
    estimate: str = "auto",
) -> pd.DataFrame:
    """Run the candidate analysis of :func:`drivers_data` on a feature table and outcome flags.

    :func:`drivers_data` builds both from the store (with the timing rules)
    and calls this; call it directly to re-analyse the same features, e.g.
    with permuted outcomes for a null check.

    Parameters
    ----------
    features : CustomerFeatures
        From :func:`journeylib.customers.features.build_features` (with the same
        ``property_keys``); ``attributes`` need ``attr_<slug>`` columns
        (:func:`journeylib.customers.features.customer_attributes_data`).
    outcomes : pandas.DataFrame
        ``customer_id`` and ``outcome`` (1 = had the outcome within the
        horizon, 0 = not) of the analysed customers; customers of
        *features* without a row are not analysed.
    outcome : str
        Outcome name (for the text).
    horizon_days : float
        The follow-up the flags were computed over (reported).
    min_support, thresholds, adjust_for, property_keys, alpha, attributes
        As in :func:`drivers_data`.
    plan_encodes_outcome : bool, default False
        Leave plan out of the adjustment, and out of the candidates
        (conversion, expansion).
    exclusions : dict, optional
        Customers left out by reason (``window_incomplete``,
        ``followup_incomplete``, ``not_at_risk``,
        ``outcome_before_window_end``, ``outcome_unknown``), reported in the
        table.
    km : pandas.DataFrame, optional
        ``customer_id``, ``km_duration`` (days from signup to the outcome,
        censoring or the horizon) and ``km_event`` (1/0) of the Kaplan–Meier
        population (:func:`journeylib.customers.outcomes.outcome_population_data`);
        without it the ``*_km`` columns are NaN.

    Returns
    -------
    pandas.DataFrame
        As :func:`drivers_data`.

    Raises
    ------
    EmptyResultError
        If no customer of *features* has an outcome row.
    """
    return _analyse(
        features, outcomes, outcome=outcome, horizon_days=horizon_days, min_support=min_support, thresholds=thresholds,
        adjust_for=adjust_for, property_keys=property_keys, alpha=alpha, plan_encodes_outcome=plan_encodes_outcome,
        exclusions=exclusions, km=km, attributes=list(split_keys(attributes)), estimate=estimate,
    )


def _neighbours(out: pd.DataFrame) -> pd.Series:
    """Text of the RR at the windows and thresholds next to each selected row."""
    res = pd.Series("", index=out.index, dtype=object)
    ok = out[out["status"] == "ok"]
    for idx in out.index[out["selected"]]:
        row = out.loc[idx]
        fam = ok[ok["family"] == row["family"]]
        if len(fam) < 2:
            continue
        parts = []
        same_k = fam[fam["threshold"] == row["threshold"]].sort_values("window_days")
        if same_k["window_days"].nunique() > 1:
            parts.append("window " + ", ".join(
                (f"[{int(r.window_days)}d {r.rr:.2g}]" if i == idx else f"{int(r.window_days)}d {r.rr:.2g}")
                for i, r in same_k.iterrows()
            ))
        same_w = fam[(fam["window_days"] == row["window_days"]) & (fam["feature"] == row["feature"])]
        if len(same_w) > 1 and row["kind"] in ("did_within", "count_at_least"):
            same_w = same_w.assign(_t=pd.to_numeric(same_w["threshold"], errors="coerce")).sort_values("_t")
            parts.append("threshold " + ", ".join(
                (f"≥{r.threshold} [{r.rr:.2g}]" if i == idx else f"≥{r.threshold} {r.rr:.2g}") for i, r in same_w.iterrows()
            ))
        res[idx] = "; ".join(parts)
    return res


def _analyse(
    features: CustomerFeatures,
    outcomes: pd.DataFrame,
    *,
    outcome: str,
    horizon_days: float,
    min_support: int = 30,
    thresholds: Sequence[int] = (2, 3, 5, 10),
    adjust_for: Sequence[str] = ("segment", "plan", "size"),
    property_keys: Sequence[str] | str = (),
    alpha: float = 0.05,
    plan_encodes_outcome: bool = False,
    exclusions: dict[str, int] | None = None,
    km: pd.DataFrame | None = None,
    attributes: Sequence[str] = (),
    notes: Sequence[str] = (),
    events_after_horizon: int = 0,
    attribute_sources: dict[str, str] | None = None,
    context: dict[str, str] | None = None,
    explicit_plan: bool = True,
    estimate: str = "auto",
    attributes_used: str = "",
) -> pd.DataFrame:
    """Do the work of :func:`drivers_from_features`; warnings point at the public function's caller."""
    if estimate not in ESTIMATES:
        msg = f"drivers: estimate must be one of {', '.join(ESTIMATES)}; got {estimate!r}"
        raise ValueError(msg)
    if estimate == "hazard_ratio" and (km is None or not math.isfinite(float(horizon_days))):
        msg = ("drivers: estimate='hazard_ratio' needs follow-up times (the km table of outcome_population_data) and a "
               "horizon; a cross-sectional outcome or outcome flags alone allow 'risk_ratio' or 'auto' only")
        raise ValueError(msg)
    property_keys = split_keys(property_keys)
    feats = features
    excl = {k: 0 for k in ("window_incomplete", "followup_incomplete", "not_at_risk", "outcome_before_window_end",
                           "outcome_unknown")}
    excl.update(exclusions or {})
    horizon = float(horizon_days)
    ctx = {"timing": "since_signup", "as_of": f"{feats.as_of:%Y-%m-%d}", "horizon_basis": "given", "window_basis": "given"}
    ctx.update(context or {})
    flags = outcomes[["customer_id", "outcome"]]
    if km is not None:
        # the Kaplan-Meier population (analysed + followed for less than the horizon) carries the candidate values too
        union = pd.concat([flags["customer_id"], km["customer_id"]]).drop_duplicates()
        full = feats.data[feats.data["customer_id"].isin(union)]
        full = full.merge(flags, on="customer_id", how="left").merge(
            km[["customer_id", "km_duration", "km_event"]], on="customer_id", how="left")
    else:
        full = feats.data.merge(flags, on="customer_id", how="inner")
    full = full.reset_index(drop=True)
    known = np.isfinite(full["outcome"].to_numpy(dtype=float))
    if not known.any():
        msg = "drivers_from_features: no customer of the feature table has an outcome row; check the customer ids"
        raise EmptyResultError(msg)
    data = full[known].reset_index(drop=True)
    y = data["outcome"].to_numpy(dtype=float) == 1
    # censoring-aware mode: the Cox model and the log-rank test over everyone followed past the window (censored ones
    # kept) rank and test the splits whenever somebody is censored before the horizon; else the 2x2 tables do
    if km is not None and math.isfinite(float(horizon_days)):
        km_dur = full["km_duration"].to_numpy(dtype=float)
        km_ev = full["km_event"].to_numpy(dtype=float) == 1
        in_km = np.isfinite(km_dur)
        censored_early = in_km & ~km_ev & (km_dur < float(horizon_days))
    else:
        km_dur = np.full(len(full), np.nan)
        km_ev = np.zeros(len(full), dtype=bool)
        in_km = np.zeros(len(full), dtype=bool)
        censored_early = in_km
    use_cox = estimate == "hazard_ratio" or (estimate == "auto" and bool(censored_early.any()))
    n_pop = len(data)
    events = int(y.sum())

    # The exported plan is a snapshot: 'trial' until conversion and the upgraded plan after an
    # expansion, so it encodes those outcomes: not adjusted for, and never a candidate then.
    plan_leaks = plan_encodes_outcome
    sources = attribute_sources or {}
    attr_pairs: list[tuple[str, str]] = [("segment", "segment")]
    skipped: list[dict[str, Any]] = []
    notes_global: list[str] = list(notes)
    for name in attributes:
        col = "plan" if name == "plan" and "plan" in full.columns and attribute_column(name) not in full.columns else attribute_column(name)
        if name == "plan" and plan_leaks:
            quiet = True
            skipped.append({"candidate": col, "feature": col, "kind": "property_value", "event": name, "window_days": 0,
                            "family": col, "status": "skipped_leak",
                            "reason": f"the exported plan changes with {outcome}, so it encodes the outcome"})
            if quiet and explicit_plan:
                warnings.warn(f"The plan is not a candidate for {outcome}: the exported plan changes with it.",
                              StatisticalWarning, stacklevel=3)
            continue
        if col not in full.columns:
            msg = (f"drivers: attribute {name!r} has no column {col!r} in the feature table; add it with "
                   "customer_attributes_data")
            raise ValueError(msg)
        if full[col].isna().all():
            where = {"column": "customers column", "property": "customers.properties key"}.get(sources.get(name, ""), "field")
            warnings.warn(
                f"The attribute {name!r} ({where}) is null for every one of the {len(full):,} analysed customers, so it is "
                "not tested; check the name against the customers columns and properties keys.",
                StatisticalWarning, stacklevel=3,
            )
            notes_global.append(f"attribute {name} is null for every analysed customer")
        attr_pairs.append((col, name))
    for pk in property_keys:
        col = f"prop_{feature_slug(pk)}"
        if col in full.columns and full[col].isna().all():
            warnings.warn(
                f"The property {pk!r} is null for every one of the {len(full):,} analysed customers (no such "
                "customers.properties key?), so it is not tested.",
                StatisticalWarning, stacklevel=3,
            )
            notes_global.append(f"property {pk} is null for every analysed customer")
    if plan_leaks and "plan" in adjust_for:
        notes_global.append(f"not adjusted for plan: the exported plan changes with {outcome}")
    adjusters = [a for a in adjust_for if not (a == "plan" and plan_leaks)]
    strata_cols: dict[str, pd.Series] = {}
    for a in adjusters:
        size_col = f"users_{feats.window_days}d"
        if a == "size" and size_col not in data.columns:
            notes_global.append("not adjusted for size band: no account size without a behaviour window")
            continue
        s = size_band(data[size_col]) if a == "size" else data[a].astype(str)
        if s.nunique() < 2:
            what = "size band" if a == "size" else a
            msg = f"{what} is the same for every analysed customer ({s.iloc[0]}); estimates are not adjusted for it"
            warnings.warn(msg, StatisticalWarning, stacklevel=3)
            notes_global.append(msg)
            continue
        strata_cols[a] = s.reset_index(drop=True)

    prop_cols = [f"prop_{feature_slug(k)}" for k in property_keys]
    cands_full = _candidates(full, feats, thresholds, skipped, prop_cols, attr_pairs)
    cands = cands_full
    full_values = [c.values for c in cands]
    for c in cands:
        c.values = c.values[known]  # the 2x2 tables use the analysed customers only
    if skipped:
        names = ", ".join(s["feature"] for s in skipped[:8]) + (f" and {len(skipped) - 8} more" if len(skipped) > 8 else "")
        warnings.warn(
            f"{plural(len(skipped), 'feature')} {'is' if len(skipped) == 1 else 'are'} constant or missing for every "
            f"analysed customer and {'is' if len(skipped) == 1 else 'are'} not tested: {names}.",
            StatisticalWarning,
            stacklevel=3,
        )

    rows: list[dict[str, Any]] = []
    x_all = np.stack([c.values for c in cands]) if cands else np.zeros((0, n_pop))
    valid = np.isfinite(x_all)
    xe = (x_all == 1) & valid
    xr = (x_all == 0) & valid
    a = (xe & y).sum(axis=1)
    b = (xe & ~y).sum(axis=1)
    c = (xr & y).sum(axis=1)
    d = (xr & ~y).sum(axis=1)
    tab = two_by_two_data(a, b, c, d, alpha=alpha)
    # identical splits (e.g. >=5 and >=10 when nobody has 5-9) are tested once
    seen: dict[bytes, str] = {}
    if use_cox:
        # support, duplicates and "no variation" are judged on the customers the Cox model uses
        xk = np.stack([v[in_km] for v in full_values]) if cands else np.zeros((0, int(in_km.sum())))
        xke, xkr = xk == 1, xk == 0
        ev_k = km_ev[in_km]
        n1_sup, n0_sup = xke.sum(axis=1), xkr.sum(axis=1)
        n_var, events_var = int(in_km.sum()), int(ev_k.sum())
        key_e, key_r = xke, xkr
    else:
        n1_sup, n0_sup = a + b, c + d
        n_var, events_var = n_pop, events
        key_e, key_r = xe, xr
    no_variation = events_var == 0 or events_var == n_var
    if no_variation:
        what = "no analysed customer" if events_var == 0 else "every analysed customer"
        warnings.warn(
            f"No association can be estimated: {what} had the {outcome} outcome ({events_var:,} of {n_var:,}).",
            StatisticalWarning,
            stacklevel=3,
        )
    n_low = 0
    for i, cand in enumerate(cands):
        row: dict[str, Any] = {
            "candidate": cand.candidate, "feature": cand.feature, "kind": cand.kind, "event": cand.event,
            "window_days": cand.window_days, "threshold": str(cand.threshold), "exposure": cand.exposure,
            "reference": cand.reference, "orientation": "as_defined", "family": cand.family,
        }
        key = np.packbits(key_e[i]).tobytes() + np.packbits(key_r[i]).tobytes()
        n1, n0 = int(n1_sup[i]), int(n0_sup[i])
        row.update(n_exposed=int(a[i] + b[i]), events_exposed=int(a[i]), n_reference=int(c[i] + d[i]),
                   events_reference=int(c[i]))
        if no_variation:
            row.update(status="no_outcome_variation",
                       reason=f"{events_var} of {n_var} analysed customers had the outcome; nothing to compare")
        elif n1 < min_support or n0 < min_support:
            n_low += 1
            row.update(status="below_min_support",
                       reason=f"{n1} vs {n0} customers; at least {min_support} needed on each side")
        elif key in seen:
            row.update(status="duplicate", reason=f"same customers as {seen[key]}")
        else:
            seen[key] = cand.candidate
            row.update(status="ok", reason="", _i=i)
        rows.append(row)
    if n_low:
        warnings.warn(
            f"{plural(n_low, 'candidate split')} {'has' if n_low == 1 else 'have'} fewer than {min_support} customers "
            f"on a side and {'is' if n_low == 1 else 'are'} not estimated.",
            StatisticalWarning,
            stacklevel=3,
        )
    out = pd.DataFrame(rows)
    if out.empty:
        out = pd.DataFrame(columns=["candidate", "status"])
    ok_idx = [r["_i"] for r in rows if r.get("status") == "ok"]
    stat_cols = ["rate_exposed", "rate_reference", "rate_overall", "rr", "rr_ci_low", "rr_ci_high", "or", "or_ci_low",
                 "or_ci_high", "lift", "lift_ci_low", "lift_ci_high", "test", "p_value"]
    for sc in stat_cols:
        out[sc] = np.nan if sc != "test" else ""
    out["note"] = ""
    if ok_idx:
        ok_mask = out["status"] == "ok"
        sub = tab.iloc[ok_idx].reset_index(drop=True)
        for sc in stat_cols:
            out.loc[ok_mask, sc] = sub[sc].to_numpy()
        out.loc[ok_mask, "note"] = np.where(sub["corrected"].to_numpy(), "zero cell: 0.5 added to every cell", "")
    # rates are reported for every row with support, estimates only for ok rows
    with np.errstate(divide="ignore", invalid="ignore"):
        out["rate_exposed"] = np.where(out["n_exposed"] > 0, out["events_exposed"] / out["n_exposed"].where(out["n_exposed"] > 0, 1), np.nan)
        out["rate_reference"] = np.where(out["n_reference"] > 0, out["events_reference"] / out["n_reference"].where(out["n_reference"] > 0, 1), np.nan)
    n_known = out["n_exposed"] + out["n_reference"]
    ev_known = out["events_exposed"] + out["events_reference"]
    out["rate_overall"] = np.where(n_known > 0, ev_known / n_known.where(n_known > 0, 1), np.nan)
    out["share_of_outcome"] = np.where(ev_known > 0, out["events_exposed"] / ev_known.where(ev_known > 0, 1), np.nan)
    no_ev = n_known - ev_known
    out["share_of_no_outcome"] = np.where(
        no_ev > 0, (out["n_exposed"] - out["events_exposed"]) / no_ev.where(no_ev > 0, 1), np.nan
    )
    out["p_crude"] = out["p_value"]
    for hc in ("hr", "hr_ci_low", "hr_ci_high"):
        out[hc] = np.nan
    out["estimate"] = "hazard_ratio" if use_cox else "risk_ratio"
    direction = np.where(out["rr"].to_numpy(dtype=float) < 1, 1.0, -1.0)  # > 0: flip so that the exposed side is higher
    if use_cox and ok_idx:
        ok_mask = out["status"] == "ok"
        xs_cox = np.stack([full_values[i][in_km] for i in ok_idx])
        beta, se, p_lr, o_minus_e = _cox_logrank(xs_cox, np.minimum(km_dur[in_km], float(horizon_days)), km_ev[in_km])
        z = float(stats.norm.ppf(1 - alpha / 2))
        out.loc[ok_mask, "hr"] = np.exp(beta)
        out.loc[ok_mask, "hr_ci_low"] = np.exp(beta - z * se)
        out.loc[ok_mask, "hr_ci_high"] = np.exp(beta + z * se)
        out.loc[ok_mask, "p_value"] = p_lr
        out.loc[ok_mask, "test"] = "logrank"
        dir_ok = np.where(o_minus_e < 0, 1.0, -1.0)
        direction = direction.copy()
        direction[np.flatnonzero(ok_mask.to_numpy())] = dir_ok
        no_hr = ~np.isfinite(beta)
        if no_hr.any():
            notes_hr = out.loc[ok_mask, "note"].to_numpy(dtype=object)
            notes_hr[no_hr] = ["; ".join(x for x in (str(n), "no outcome on one side: no hazard ratio (log-rank test only)") if x)
                               for n in notes_hr[no_hr]]
            out.loc[ok_mask, "note"] = notes_hr
    out["q_value"] = bh_qvalues(out["p_value"].where(out["status"] == "ok"))
    out["significant"] = (out["status"] == "ok") & (out["q_value"] <= alpha)

    # orientation: the exposed group is the one with the higher rate
    flip = (out["status"] == "ok") & (direction > 0)
    if flip.any():
        f = flip
        sw = out.loc[f].copy()
        out.loc[f, ["exposure", "reference"]] = sw[["reference", "exposure"]].to_numpy()
        out.loc[f, ["n_exposed", "n_reference"]] = sw[["n_reference", "n_exposed"]].to_numpy()
        out.loc[f, ["events_exposed", "events_reference"]] = sw[["events_reference", "events_exposed"]].to_numpy()
        out.loc[f, ["rate_exposed", "rate_reference"]] = sw[["rate_reference", "rate_exposed"]].to_numpy()
        for lo, hi, est in (("rr_ci_low", "rr_ci_high", "rr"), ("or_ci_low", "or_ci_high", "or"),
                            ("hr_ci_low", "hr_ci_high", "hr")):
            out.loc[f, est] = 1 / sw[est]
            out.loc[f, lo] = 1 / sw[hi]
            out.loc[f, hi] = 1 / sw[lo]
        ne = out.loc[f, "n_exposed"].astype(float)
        nr = out.loc[f, "n_reference"].astype(float)
        w1 = ne / (ne + nr)
        for est, src in (("lift", "rr"), ("lift_ci_low", "rr_ci_low"), ("lift_ci_high", "rr_ci_high")):
            rr_v = out.loc[f, src].astype(float)
            out.loc[f, est] = rr_v / (w1 * rr_v + (1 - w1))
        out.loc[f, "share_of_outcome"] = 1 - sw["share_of_outcome"]
        out.loc[f, "share_of_no_outcome"] = 1 - sw["share_of_no_outcome"]
        out.loc[f, "orientation"] = "complement"

    # adjusted estimates
    adj_cols = ["rr_adjusted", "rr_adjusted_ci_low", "rr_adjusted_ci_high", "or_adjusted", "or_adjusted_ci_low",
                "or_adjusted_ci_high", "p_adjusted"]
    for ac in adj_cols:
        out[ac] = np.nan
    out["strata_used"] = 0
    out["adjusted_for"] = ""
    cand_of = out["_i"].to_numpy() if "_i" in out.columns else np.zeros(len(out))
    for pos in np.flatnonzero(out["status"].to_numpy() == "ok"):
        idx = out.index[int(pos)]
        cand = cands[int(cand_of[pos])]
        use = [k for k in strata_cols if cand.feature not in (k, attribute_column(k))]
        if not use:
            continue
        key_s = strata_cols[use[0]].astype(str)
        for k in use[1:]:
            key_s = key_s + "|" + strata_cols[k].astype(str)
        codes, uniq = pd.factorize(key_s)
        x = cand.values.copy()
        if out.at[idx, "orientation"] == "complement":
            x = np.where(np.isfinite(x), 1 - x, np.nan)
        res = _adjusted(x, y, codes, len(uniq), alpha)
        out.at[idx, "adjusted_for"] = ", ".join("size band" if k == "size" else k for k in use)
        for j, ac in enumerate(adj_cols):
            out.at[idx, ac] = res[j]
        out.at[idx, "strata_used"] = res[7]
        if res[8]:
            prev = str(out.at[idx, "note"])
            out.at[idx, "note"] = "; ".join(x for x in (prev, "adjusted: 0.5 added to every cell") if x)

    # possible leaks: an outcome rate of exactly 0% or 100% in a large group
    leak = (out["status"] == "ok") & (out["n_exposed"] >= max(min_support, 50)) & (out["rate_exposed"] >= 1)
    out.loc[leak, "note"] = [
        "; ".join(x for x in (str(n), "every exposed customer had the outcome: check the feature does not encode it") if x)
        for n in out.loc[leak, "note"]
    ]
    if global_note := "; ".join(notes_global):
        out["note"] = [("; ".join(x for x in (str(n), global_note) if x)) for n in out["note"]]

    # Kaplan-Meier cumulative incidence at the horizon, censored customers kept (not counted as non-events)
    for kc in ("risk_km_exposed", "risk_km_reference", "rr_km", "rr_km_ci_low", "rr_km_ci_high"):
        out[kc] = np.nan
    for kc in ("n_km", "n_censored", "n_km_exposed", "n_km_reference", "events_km_exposed", "events_km_reference"):
        out[kc] = 0
    ok_pos = np.flatnonzero(out["status"].to_numpy() == "ok")
    if km is not None and len(ok_pos) and math.isfinite(horizon):
        dur = full["km_duration"].to_numpy(dtype=float)
        kev = full["km_event"].to_numpy(dtype=float)
        in_km = np.isfinite(dur)
        xs = np.stack([full_values[int(cand_of[pos])] for pos in ok_pos])
        flip_rows = (out["orientation"].to_numpy()[ok_pos] == "complement")[:, None]
        xs = np.where(np.isfinite(xs) & flip_rows, 1 - xs, xs)
        xs = np.where(in_km[None, :], xs, np.nan)
        r1, v1, r0, v0, f1, f0 = _km_risks(xs, np.where(in_km, dur, np.inf), np.where(in_km, kev, 0.0), horizon)
        r1 = np.where(f1 | (r1 >= 1), r1, np.nan)
        r0 = np.where(f0 | (r0 >= 1), r0, np.nan)
        z = float(stats.norm.ppf(1 - alpha / 2))
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where((r0 > 0) & (r1 > 0), r1 / r0, np.nan)
            se = np.sqrt(v1 / r1**2 + v0 / r0**2)
        idx_ok = out.index[ok_pos]
        out.loc[idx_ok, "risk_km_exposed"] = r1
        out.loc[idx_ok, "risk_km_reference"] = r0
        out.loc[idx_ok, "rr_km"] = ratio
        out.loc[idx_ok, "rr_km_ci_low"] = ratio * np.exp(-z * se)
        out.loc[idx_ok, "rr_km_ci_high"] = ratio * np.exp(z * se)
        known_x = np.isfinite(xs)
        out.loc[idx_ok, "n_km"] = known_x.sum(axis=1)
        censored = in_km & (kev != 1) & (dur < horizon)
        out.loc[idx_ok, "n_censored"] = (known_x & censored[None, :]).sum(axis=1)
        ev_row = (kev == 1)[None, :]
        out.loc[idx_ok, "n_km_exposed"] = (xs == 1).sum(axis=1)
        out.loc[idx_ok, "n_km_reference"] = (xs == 0).sum(axis=1)
        out.loc[idx_ok, "events_km_exposed"] = ((xs == 1) & ev_row).sum(axis=1)
        out.loc[idx_ok, "events_km_reference"] = ((xs == 0) & ev_row).sum(axis=1)

    # thresholds and windows tried, selected split per family, ranking (by the lower bound of the estimate used)
    ok = out["status"] == "ok"
    lo_col = "hr_ci_low" if use_cox else "rr_ci_low"
    out["thresholds_tried"] = out.groupby("feature")["candidate"].transform("size").astype("int64")
    out["windows_tried"] = out.groupby("family")["window_days"].transform("nunique").astype("int64")
    out["selected"] = False
    if ok.any():
        best = out[ok].sort_values(["p_value", lo_col], ascending=[True, False]).groupby("family").head(1).index
        out.loc[best, "selected"] = True
    out["neighbours"] = _neighbours(out)
    order_key = np.where(out["significant"], 0, np.where(ok, 1, 2))
    out = out.assign(_k=order_key, _lo=out[lo_col].fillna(-1.0)).sort_values(["_k", "_lo", "p_value"], ascending=[True, False, True])
    out["rank"] = np.where(out["_k"] < 2, np.arange(1, len(out) + 1), np.nan)
    for sk in skipped:
        sk.update(exposure="", reference="", orientation="", thresholds_tried=0, selected=False, significant=False,
                  note="", threshold="", windows_tried=0, neighbours="")
    if skipped:
        out = pd.concat([out, pd.DataFrame(skipped)], ignore_index=True)
    out["outcome"] = outcome
    out["horizon_days"] = horizon
    for ck in ("timing", "as_of", "horizon_basis", "window_basis"):
        out[ck] = ctx[ck]
    out["population"] = n_pop
    out["events"] = events
    out["events_after_horizon"] = int(events_after_horizon)
    out["n_outcome_unknown"] = excl["outcome_unknown"]
    out["n_excluded_window"] = excl["window_incomplete"]
    out["n_excluded_followup"] = excl["followup_incomplete"]
    out["n_not_at_risk"] = excl["not_at_risk"]
    out["n_excluded_prior_outcome"] = excl["outcome_before_window_end"]
    out["attributes_used"] = attributes_used or ", ".join([n for _, n in attr_pairs] + list(property_keys))
    out["family_size"] = int((out["status"] == "ok").sum())
    out["alpha"] = alpha
    out["min_support"] = int(min_support)
    out["significant"] = out["significant"].fillna(False).astype(bool)
    out["selected"] = out["selected"].fillna(False).astype(bool)
    verb = OUTCOME_VERBS.get(outcome, f"reached {outcome}")
    out["line"] = [driver_line(r, verb) if r["significant"] else "" for _, r in out.iterrows()]
    for col_name in ("n_exposed", "events_exposed", "n_reference", "events_reference", "strata_used", "thresholds_tried",
                     "windows_tried", "n_km", "n_censored", "n_km_exposed", "n_km_reference", "events_km_exposed",
                     "events_km_reference"):
        out[col_name] = out[col_name].fillna(0).astype("int64")
    out["window_days"] = out["window_days"].astype("int64")
    out["threshold"] = out["threshold"].astype(str)
    for col_name in ("exposure", "reference", "orientation", "reason", "note", "adjusted_for", "test", "line", "event",
                     "family", "neighbours", "estimate", "attributes_used"):
        out[col_name] = out[col_name].fillna("").astype(str)
    return out.loc[:, list(DRIVER_COLUMNS)].reset_index(drop=True)
