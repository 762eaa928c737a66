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
  every threshold of every count included — so the threshold search is paid
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

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from journeylib.cache import ResultCache
from journeylib.config.journey import JourneyDefinition
from journeylib.customers.driver_views import OUTCOME_VERBS, driver_line
from journeylib.customers.features import CustomerFeatures, build_features, feature_slug
from journeylib.customers.outcomes import PLAN_ENCODED_OUTCOMES, outcome_horizon, outcome_population_data, outcome_spec
from journeylib.exceptions import EmptyResultError, StatisticalWarning
from journeylib.scope import Scope
from journeylib.stats import bh_qvalues, mantel_haenszel_odds_ratio, mantel_haenszel_risk_ratio, two_by_two_data
from journeylib.store import Store

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
    "exposure", "reference", "orientation", "outcome", "horizon_days",
    "n_exposed", "events_exposed", "rate_exposed", "n_reference", "events_reference", "rate_reference", "rate_overall",
    "share_of_outcome", "share_of_no_outcome",
    "rr", "rr_ci_low", "rr_ci_high", "or", "or_ci_low", "or_ci_high", "lift", "lift_ci_low", "lift_ci_high",
    "test", "p_value", "q_value", "significant",
    "adjusted_for", "strata_used", "rr_adjusted", "rr_adjusted_ci_low", "rr_adjusted_ci_high",
    "or_adjusted", "or_adjusted_ci_low", "or_adjusted_ci_high", "p_adjusted",
    "status", "reason", "note", "line",
    "population", "events", "n_excluded_window", "n_excluded_followup", "n_not_at_risk", "n_excluded_prior_outcome",
    "family_size", "alpha", "min_support",
)


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
    return (f"have a {event} event", f"had a {event} event", f"{event} events")


def _fmt(x: float) -> str:
    return f"{x:.3g}"


class _Candidate:
    __slots__ = ("candidate", "event", "exposure", "feature", "kind", "reference", "threshold", "values", "window_days")

    def __init__(
        self, *, candidate: str, feature: str, kind: str, event: str, window_days: int, threshold: float | str,
        values: np.ndarray, exposure: str, reference: str,
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


def _candidates(
    data: pd.DataFrame, feats: CustomerFeatures, thresholds: Sequence[int], skipped: list[dict[str, Any]],
    property_cols: Sequence[str], attributes: Sequence[str],
) -> list[_Candidate]:
    """Generate the yes/no splits; constant or all-missing features go to *skipped*."""
    out: list[_Candidate] = []
    cat: dict[Any, dict[Any, Any]] = feats.catalog.set_index("feature").to_dict("index")
    ths = sorted({int(t) for t in thresholds if int(t) >= 2})

    def skip(feature: str, kind: str, event: str, wd: int, status: str, reason: str) -> None:
        skipped.append({"candidate": feature, "feature": feature, "kind": kind, "event": event, "window_days": wd,
                        "status": status, "reason": reason})

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

    for col in feats.columns_of("count"):
        row = cat[col]
        event, wd, source = str(row["event"]), int(row["window_days"]), str(row["source"])
        v = usable(col, "count", event, wd)
        if v is None:
            continue
        desc = str(row["description"])
        if source == "events" and event:
            base, past, plural = _phrases(event)
            out.append(_Candidate(
                candidate=f"{col}>=1", feature=col, kind="did_within", event=event, window_days=wd, threshold=1,
                values=np.where(np.isfinite(v), (v >= 1).astype(float), np.nan),
                exposure=f"who {past} within {wd} days", reference=f"who did not {base} within {wd} days",
            ))
            if wd != feats.window_days:
                continue
            for k in ths:
                out.append(_Candidate(
                    candidate=f"{col}>={k}", feature=col, kind="count_at_least", event=event, window_days=wd, threshold=k,
                    values=np.where(np.isfinite(v), (v >= k).astype(float), np.nan),
                    exposure=f"who had {k} or more {plural} within {wd} days",
                    reference=f"who had fewer than {k} {plural} within {wd} days",
                ))
        else:
            for k in [1, *ths]:
                out.append(_Candidate(
                    candidate=f"{col}>={k}", feature=col, kind="count_at_least", event=event, window_days=wd, threshold=k,
                    values=np.where(np.isfinite(v), (v >= k).astype(float), np.nan),
                    exposure=f"with {k} or more {desc}", reference=f"with fewer than {k} {desc}",
                ))
    for col in feats.columns_of("numeric", "rate"):
        row = cat[col]
        event, wd = str(row["event"]), int(row["window_days"])
        v = usable(col, "numeric", event, wd)
        if v is None:
            continue
        fin = v[np.isfinite(v)]
        cuts = sorted({float(q) for q in np.quantile(fin, [0.25, 0.5, 0.75])})
        desc = str(row["description"])
        for q in cuts:
            if not (fin.min() < q <= fin.max()):
                continue
            out.append(_Candidate(
                candidate=f"{col}>={_fmt(q)}", feature=col, kind="value_at_least", event=event, window_days=wd, threshold=q,
                values=np.where(np.isfinite(v), (v >= q).astype(float), np.nan),
                exposure=f"with {desc} at or above {_fmt(q)}", reference=f"with {desc} below {_fmt(q)}",
            ))
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
    for col in [*attributes, *property_cols]:
        if col not in data.columns:
            continue
        key = col[len("prop_"):] if col.startswith("prop_") else col
        s = data[col]
        levels = sorted(s.dropna().astype(str).unique())
        if not levels:
            skip(col, "property_value", key, 0, "skipped_missing", f"{key} is missing for every analysed customer")
            continue
        if len(levels) == 1:
            skip(col, "property_value", key, 0, "skipped_constant", f"{key} is {levels[0]} for every analysed customer")
            continue
        text = s.astype(object).where(s.notna(), None)
        for level in levels:
            v = np.where(text.isna(), np.nan, (text == level).astype(float))
            out.append(_Candidate(
                candidate=f"{col}={level}", feature=col, kind="property_value", event=key, window_days=0, threshold=level,
                values=v.astype(float), exposure=f"with {key} {level}", reference=f"with {key} other than {level}",
            ))
    return out


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
    window_days: int = 7,
    horizon_days: float | None = None,
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
) -> pd.DataFrame:
    """Rank early behaviours by how strongly they are associated with an outcome.

    Parameters
    ----------
    store : Store
        The canonical store.
    definition : JourneyDefinition
        Stages (for "reached stage by day D") and outcomes.
    outcome : str, default "churn"
        Outcome name of the definition: ``churn``, ``conversion``,
        ``expansion`` ...
    window_days : int, default 7
        Behaviour window D (days after signup); sub-windows 7/14/30 up to D.
    horizon_days : float, optional
        Outcome within this many days of signup (default per outcome:
        :data:`journeylib.customers.outcomes.DEFAULT_HORIZON_DAYS`).
    min_support : int, default 30
        Fewest customers on each side of a split for it to be estimated.
    as_of, segment, plan, signup_from, signup_to, sample_n, random_state, scope
        Scope, as in :func:`journeylib.customers.features.build_features`.
    population : {"auto", "all", "converted"}, default "auto"
        See :func:`journeylib.customers.outcomes.outcome_population_data`.
    thresholds : sequence of int, default (2, 3, 5, 10)
        The k of "had k or more X" tried for every count feature (k = 1 is the
        "did X" candidate). Every threshold tried enters the FDR family.
    adjust_for : sequence of str, default ("segment", "plan", "size")
        Strata of the adjusted estimates (``size`` = users at the window end,
        banded by :func:`size_band`). ``plan`` is dropped for conversion and
        expansion (:data:`journeylib.customers.outcomes.PLAN_ENCODED_OUTCOMES`):
        the exported plan is ``trial`` until conversion and the new plan after
        an upgrade, so it encodes those outcomes. Plan is never a candidate (it is not a
        behaviour, and it is a snapshot taken after the window).
    property_keys : sequence of str or str, default ()
        Customer properties whose values are candidates (e.g.
        ``("acquisition_channel", "region")``, or the text
        ``"acquisition_channel,region"``); the segment's values always are.
        Choose properties fixed at signup.
    ticket_scores : pandas.DataFrame, optional
        Per-ticket sentiment/topic scores (``ticket_id`` + columns); see
        :func:`journeylib.customers.features.build_features`.
    alpha : float, default 0.05
        1 - confidence level of every interval, and the FDR level of
        ``significant``.

    Returns
    -------
    pandas.DataFrame
        One row per candidate (:data:`DRIVER_COLUMNS`), estimated rows first,
        best first:

        ``rank``
            1 = strongest among significant rows (by the lower CI bound of RR),
            then the other estimated rows; NaN when not estimated.
        ``candidate``, ``feature``, ``kind``, ``event``, ``window_days``, ``threshold``
            The split: ``kind`` is ``did_within`` (feature ≥ 1),
            ``count_at_least`` (≥ threshold), ``value_at_least`` (numeric ≥ a
            quartile), ``stage_reached``, or ``property_value`` (= a level).
        ``thresholds_tried``
            Splits of the same feature in the family (all thresholds tried).
        ``selected``
            True on the split with the smallest p-value of its feature.
        ``exposure``, ``reference``, ``orientation``
            The groups in words; ``orientation`` is ``as_defined`` or
            ``complement`` (the split was flipped so that RR ≥ 1).
        ``outcome``, ``horizon_days``
            The outcome and its follow-up from signup.
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
        ``status``, ``reason``, ``note``
            ``ok``; ``below_min_support``; ``duplicate`` (same split as
            another candidate); ``skipped_constant``; ``skipped_missing``;
            ``no_outcome_variation`` — with the reason in words; ``note``
            lists caveats (zero-cell correction, possible leak).
        ``line``
            The plain-English sentence for significant rows, else empty.
        ``population``, ``events``
            Customers analysed, and of them those with the outcome within
            the horizon.
        ``n_excluded_window``, ``n_excluded_followup``, ``n_not_at_risk``, ``n_excluded_prior_outcome``
            Customers in scope left out, by reason
            (:func:`journeylib.customers.outcomes.outcome_population_data`).
        ``family_size``, ``alpha``, ``min_support``
            Rows estimated (the FDR family) and the settings.

    Raises
    ------
    ValueError
        If the outcome is unknown or an argument is out of range.
    EmptyResultError
        If no customer is in scope, or none is left after the exclusions.

    Warns
    -----
    StatisticalWarning
        On exclusions, thin or degenerate data (see the module docstring).
    """
    if not isinstance(min_support, (int, np.integer)) or isinstance(min_support, bool) or min_support < 1:
        msg = f"min_support must be a positive whole number of customers; got {min_support!r}"
        raise ValueError(msg)
    if not 0 < alpha < 1:
        msg = f"alpha must be between 0 and 1; got {alpha!r}"
        raise ValueError(msg)
    property_keys = split_keys(property_keys)
    unknown_adj = [a for a in adjust_for if a not in ("segment", "plan", "size")]
    if unknown_adj:
        msg = f"adjust_for accepts segment, plan and size; got {unknown_adj}"
        raise ValueError(msg)
    is_conversion = outcome_spec(definition, outcome)[1]
    horizon = outcome_horizon(outcome, horizon_days)
    scope = Scope.resolve(store, scope, function="drivers_data", as_of=as_of, segment=segment, plan=plan,
                          signup_from=signup_from, signup_to=signup_to, sample_n=sample_n, random_state=random_state)
    pop = outcome_population_data(
        store, definition=definition, outcome=outcome, window_days=window_days, horizon_days=horizon,
        population=population, scope=scope,
    )
    counts = pop["status"].value_counts()
    excl = {k: int(counts.get(k, 0)) for k in ("window_incomplete", "followup_incomplete", "not_at_risk", "outcome_before_window_end")}
    included = pop[pop["status"] == "included"]
    if included.empty:
        msg = (
            f"no customer is left for the {outcome} analysis: of {len(pop)} in scope, "
            f"{excl['window_incomplete']} have an incomplete {window_days}-day window, {excl['followup_incomplete']} "
            f"less than {horizon:g} days of follow-up, {excl['not_at_risk']} never converted and "
            f"{excl['outcome_before_window_end']} had the outcome within the window. Use a shorter horizon_days, "
            "a later as_of or a wider scope."
        )
        raise EmptyResultError(msg)
    dropped = sum(excl.values())
    if dropped:
        warnings.warn(
            f"{dropped} of {len(pop)} customers in scope are not analysed for {outcome}: "
            + ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in excl.items() if v),
            StatisticalWarning,
            stacklevel=2,
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StatisticalWarning)  # the exclusions are reported above
        feats = build_features(
            store, definition=definition, window_days=window_days, scope=scope, cache=cache,
            property_keys=property_keys, ticket_scores=ticket_scores,
        )
    return _analyse(
        feats, included[["customer_id", "outcome"]], outcome=outcome, horizon_days=horizon, min_support=min_support,
        thresholds=thresholds, adjust_for=adjust_for, property_keys=property_keys, alpha=alpha,
        plan_encodes_outcome=is_conversion or outcome in PLAN_ENCODED_OUTCOMES, exclusions=excl,
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
) -> pd.DataFrame:
    """Run the candidate analysis of :func:`drivers_data` on a feature table and outcome flags.

    :func:`drivers_data` builds both from the store (with the timing rules)
    and calls this; call it directly to re-analyse the same features, e.g.
    with permuted outcomes for a null check.

    Parameters
    ----------
    features : CustomerFeatures
        From :func:`journeylib.customers.features.build_features` (with the same
        ``property_keys``).
    outcomes : pandas.DataFrame
        ``customer_id`` and ``outcome`` (1 = had the outcome within the
        horizon, 0 = not) of the analysed customers; customers of
        *features* without a row are not analysed.
    outcome : str
        Outcome name (for the text).
    horizon_days : float
        The follow-up the flags were computed over (reported).
    min_support, thresholds, adjust_for, property_keys, alpha
        As in :func:`drivers_data`.
    plan_encodes_outcome : bool, default False
        Leave plan out of the adjustment (conversion, expansion).
    exclusions : dict, optional
        Customers left out by reason (``window_incomplete``,
        ``followup_incomplete``, ``not_at_risk``,
        ``outcome_before_window_end``), reported in the table.

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
        exclusions=exclusions,
    )


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
) -> pd.DataFrame:
    """Do the work of :func:`drivers_from_features`; warnings point at the public function's caller."""
    property_keys = split_keys(property_keys)
    feats = features
    excl = {k: 0 for k in ("window_incomplete", "followup_incomplete", "not_at_risk", "outcome_before_window_end")}
    excl.update(exclusions or {})
    horizon = float(horizon_days)
    data = feats.data.merge(outcomes[["customer_id", "outcome"]], on="customer_id", how="inner")
    if data.empty:
        msg = "drivers_from_features: no customer of the feature table has an outcome row; check the customer ids"
        raise EmptyResultError(msg)
    y = data["outcome"].to_numpy(dtype=float) == 1
    n_pop = len(data)
    events = int(y.sum())

    # The exported plan is a snapshot: 'trial' until conversion and the upgraded plan after an
    # expansion, so it encodes those outcomes; it is never a candidate (it is not a behaviour).
    plan_leaks = plan_encodes_outcome
    attributes = ["segment"]
    notes_global: list[str] = []
    if plan_leaks and "plan" in adjust_for:
        notes_global.append(f"not adjusted for plan: the exported plan changes with {outcome}")
    adjusters = [a for a in adjust_for if not (a == "plan" and plan_leaks)]
    strata_cols: dict[str, pd.Series] = {}
    for a in adjusters:
        s = size_band(data[f"users_{feats.window_days}d"]) if a == "size" else data[a].astype(str)
        if s.nunique() < 2:
            what = "size band" if a == "size" else a
            msg = f"{what} is the same for every analysed customer ({s.iloc[0]}); estimates are not adjusted for it"
            warnings.warn(msg, StatisticalWarning, stacklevel=3)
            notes_global.append(msg)
            continue
        strata_cols[a] = s.reset_index(drop=True)

    skipped: list[dict[str, Any]] = []
    prop_cols = [f"prop_{feature_slug(k)}" for k in property_keys]
    cands = _candidates(data, feats, thresholds, skipped, prop_cols, attributes)
    if skipped:
        names = ", ".join(s["feature"] for s in skipped[:8]) + (" ..." if len(skipped) > 8 else "")
        warnings.warn(
            f"{len(skipped)} feature(s) are constant or missing for every analysed customer and are not tested: {names}",
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
    no_variation = events == 0 or events == n_pop
    if no_variation:
        what = "no analysed customer" if events == 0 else "every analysed customer"
        warnings.warn(
            f"{what} had the {outcome} outcome ({events} of {n_pop}); no association can be estimated.",
            StatisticalWarning,
            stacklevel=3,
        )
    n_low = 0
    for i, cand in enumerate(cands):
        row: dict[str, Any] = {
            "candidate": cand.candidate, "feature": cand.feature, "kind": cand.kind, "event": cand.event,
            "window_days": cand.window_days, "threshold": str(cand.threshold), "exposure": cand.exposure,
            "reference": cand.reference, "orientation": "as_defined",
        }
        key = np.packbits(xe[i]).tobytes() + np.packbits(xr[i]).tobytes()
        n1, n0 = int(a[i] + b[i]), int(c[i] + d[i])
        row.update(n_exposed=n1, events_exposed=int(a[i]), n_reference=n0, events_reference=int(c[i]))
        if no_variation:
            row.update(status="no_outcome_variation",
                       reason=f"{events} of {n_pop} analysed customers had the outcome; nothing to compare")
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
            f"{n_low} candidate split(s) have fewer than {min_support} customers on a side and are not estimated.",
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
    out["q_value"] = bh_qvalues(out["p_value"].where(out["status"] == "ok"))
    out["significant"] = (out["status"] == "ok") & (out["q_value"] <= alpha)

    # orientation: the exposed group is the one with the higher rate
    flip = (out["status"] == "ok") & (out["rr"] < 1)
    if flip.any():
        f = flip
        sw = out.loc[f].copy()
        out.loc[f, ["exposure", "reference"]] = sw[["reference", "exposure"]].to_numpy()
        out.loc[f, ["n_exposed", "n_reference"]] = sw[["n_reference", "n_exposed"]].to_numpy()
        out.loc[f, ["events_exposed", "events_reference"]] = sw[["events_reference", "events_exposed"]].to_numpy()
        out.loc[f, ["rate_exposed", "rate_reference"]] = sw[["rate_reference", "rate_exposed"]].to_numpy()
        for lo, hi, est in (("rr_ci_low", "rr_ci_high", "rr"), ("or_ci_low", "or_ci_high", "or")):
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
        use = [k for k in strata_cols if k != cand.feature]
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

    # thresholds tried, selected split, ranking
    ok = out["status"] == "ok"
    out["thresholds_tried"] = out.groupby("feature")["candidate"].transform("size").astype("int64")
    out["selected"] = False
    if ok.any():
        best = out[ok].sort_values(["p_value", "rr_ci_low"], ascending=[True, False]).groupby("feature").head(1).index
        out.loc[best, "selected"] = True
    order_key = np.where(out["significant"], 0, np.where(ok, 1, 2))
    out = out.assign(_k=order_key, _lo=out["rr_ci_low"].fillna(-1.0)).sort_values(["_k", "_lo", "p_value"], ascending=[True, False, True])
    out["rank"] = np.where(out["_k"] < 2, np.arange(1, len(out) + 1), np.nan)
    for sk in skipped:
        sk.update(exposure="", reference="", orientation="", thresholds_tried=0, selected=False, significant=False,
                  note="", threshold="")
    if skipped:
        out = pd.concat([out, pd.DataFrame(skipped)], ignore_index=True)
    out["outcome"] = outcome
    out["horizon_days"] = horizon
    out["population"] = n_pop
    out["events"] = events
    out["n_excluded_window"] = excl["window_incomplete"]
    out["n_excluded_followup"] = excl["followup_incomplete"]
    out["n_not_at_risk"] = excl["not_at_risk"]
    out["n_excluded_prior_outcome"] = excl["outcome_before_window_end"]
    out["family_size"] = int((out["status"] == "ok").sum())
    out["alpha"] = alpha
    out["min_support"] = int(min_support)
    out["significant"] = out["significant"].fillna(False).astype(bool)
    out["selected"] = out["selected"].fillna(False).astype(bool)
    verb = OUTCOME_VERBS.get(outcome, f"reached {outcome}")
    out["line"] = [driver_line(r, verb) if r["significant"] else "" for _, r in out.iterrows()]
    for col_name in ("n_exposed", "events_exposed", "n_reference", "events_reference", "strata_used", "thresholds_tried"):
        out[col_name] = out[col_name].fillna(0).astype("int64")
    out["window_days"] = out["window_days"].astype("int64")
    out["threshold"] = out["threshold"].astype(str)
    for col_name in ("exposure", "reference", "orientation", "reason", "note", "adjusted_for", "test", "line", "event"):
        out[col_name] = out[col_name].fillna("").astype(str)
    return out.loc[:, list(DRIVER_COLUMNS)].reset_index(drop=True)
