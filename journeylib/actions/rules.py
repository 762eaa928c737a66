"""Evaluating alert rules: per-customer features as of any day, and which rules fire, with why.

:func:`alert_features_data` builds, for every customer and as-of day, the
values the conditions of :class:`journeylib.config.alerts.Conditions` read,
from what was known by the end of that day. It reuses the churn-risk
snapshots (:func:`journeylib.customers.snapshots.build_snapshots`, with every
customer who had signed up and not churned by then, paying or not), so the
stage, peer, recency, trend and ticket features mean exactly what they mean
there. :func:`evaluate_rules` applies the rules and explains every firing:
the conditions that held, the customer's values, the peer reference and the
churn-risk reasons when a risk table was given.

Associations only: a rule flags customers who look like those who churned or
stalled before; it does not say why they will.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from journeylib.cache import ResultCache
from journeylib.config.alerts import AlertRule, AlertRules, Threshold
from journeylib.config.journey import JourneyDefinition
from journeylib.customers.features import feature_slug
from journeylib.customers.snapshots import build_snapshots, day_end, day_number
from journeylib.exceptions import EmptyResultError, StatisticalWarning
from journeylib.journey.stages import stage_milestones
from journeylib.scope import Scope, to_utc
from journeylib.store import Store
from journeylib.store.categories import source_categories, sources_of

__all__ = [
    "RISK_COLUMNS",
    "AlertFeatures",
    "alert_features_data",
    "evaluate_rules",
    "read_risk_table",
    "tickets_for_rules",
]

#: Columns a risk table must have (``as_of`` is optional).
RISK_COLUMNS: tuple[str, ...] = ("customer_id", "risk", "risk_change_7d", "reasons")
#: A risk score older than this many days before the as-of day is not used.
RISK_MAX_AGE_DAYS = 7
_WINDOWS = (7, 14, 30)
_EPOCH = pd.Timestamp("1970-01-01T00:00:00Z")


@dataclass(frozen=True)
class AlertFeatures:
    """Per-customer values for the alert conditions, and what could not be known.

    Attributes
    ----------
    data : pandas.DataFrame
        One row per customer × as-of day; columns in :func:`alert_features_data`.
    notes : list of str
        Loud caveats with counts (missing risk scores, stale ones, no
        sentiment, customers without activity).
    risk_given : bool
        Whether a risk table was used (risk conditions are checked).
    sentiment_given : bool
        Whether ticket sentiment was scored (sentiment conditions are checked).
    stage_names : list of str
        The journey definition's stages.
    """

    data: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    risk_given: bool = False
    sentiment_given: bool = False
    stage_names: list[str] = field(default_factory=list)


def read_risk_table(risk: pd.DataFrame | str | Path) -> pd.DataFrame:
    """Read a churn-risk table (the output of ``journeylib score``) and check its columns.

    Parameters
    ----------
    risk : pandas.DataFrame, str or pathlib.Path
        A frame, or a ``.csv``, ``.parquet``, ``.json`` or ``.jsonl`` file,
        with ``customer_id``, ``risk`` (0..1), ``risk_change_7d`` and
        ``reasons`` (text, or a list of texts), and optionally ``as_of`` (when
        each score was made).

    Returns
    -------
    pandas.DataFrame
        ``customer_id`` (str), ``risk``, ``risk_change_7d`` (float),
        ``reasons`` (str, ``"; "``-joined), and ``as_of`` (UTC) when given.

    Raises
    ------
    ValueError
        If a column is missing, the file kind is unknown, or ``risk`` is
        outside 0..1.
    """
    function = "read_risk_table"
    if isinstance(risk, pd.DataFrame):
        frame, where = risk.copy(), "the risk frame"
    else:
        p = Path(risk)
        where = str(p)
        suffix = p.suffix.lower()
        if suffix == ".csv":
            frame = pd.read_csv(p, dtype={"customer_id": str})
        elif suffix == ".parquet":
            frame = pd.read_parquet(p)
        elif suffix in (".json", ".jsonl"):
            frame = pd.read_json(p, lines=suffix == ".jsonl", dtype={"customer_id": str})
        else:
            msg = f"{function}: {p} is not a risk table file; allowed: .csv, .parquet, .json, .jsonl; got {suffix or 'no suffix'}"
            raise ValueError(msg)
    missing = [c for c in RISK_COLUMNS if c not in frame.columns]
    if missing:
        msg = f"{function}: {where} lacks column(s) {missing}; a risk table has {list(RISK_COLUMNS)} (and optionally as_of); found {list(frame.columns)}"
        raise ValueError(msg)
    out = pd.DataFrame(
        {
            "customer_id": frame["customer_id"].astype(str),
            "risk": pd.to_numeric(frame["risk"], errors="coerce").astype(float),
            "risk_change_7d": pd.to_numeric(frame["risk_change_7d"], errors="coerce").astype(float),
            "reasons": [_reasons_text(r) for r in frame["reasons"]],
        }
    )
    bad = out["risk"].notna() & ~out["risk"].between(0, 1)
    if bad.any():
        msg = f"{function}: {where}: risk must be between 0 and 1; {int(bad.sum())} rows are not, e.g. {out.loc[bad, 'risk'].iloc[0]!r}"
        raise ValueError(msg)
    if "as_of" in frame.columns:
        out["as_of"] = pd.to_datetime(frame["as_of"], utc=True)
    return out


def _reasons_text(value: Any) -> str:
    if isinstance(value, (list, tuple, np.ndarray)):
        return "; ".join(str(v) for v in value)
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    return str(value)


def tickets_for_rules(
    store: Store, rules: AlertRules, ticket_scores: pd.DataFrame | None, *, cache: ResultCache | None = None
) -> pd.DataFrame | None:
    """Return the scored tickets the rules need: *ticket_scores* if given, else the store's tickets scored when a rule reads sentiment.

    Parameters
    ----------
    store : Store
        The canonical store.
    rules : AlertRules
        The loaded rules.
    ticket_scores : pandas.DataFrame, optional
        Already scored tickets (returned as they are).
    cache : ResultCache, optional
        The analysis context's cache: the store's tickets are scored once
        per store in it, in the entry :meth:`journeylib.context.Journey.scored_tickets`
        fills (a dry run of the rules and their backtest on one context
        score them once).

    Returns
    -------
    pandas.DataFrame or None
        :func:`journeylib.voice.sentiment.score_tickets` of the store's
        tickets, or None when no rule reads sentiment or there is no ticket.
    """
    if ticket_scores is not None:
        return ticket_scores
    if not any(r.when.uses_sentiment for r in rules.rules) or not store.count("tickets"):
        return None
    from journeylib.voice.sentiment import score_tickets

    def compute() -> pd.DataFrame:
        return score_tickets(store.table("tickets"))

    return compute() if cache is None else cache.get("scored_tickets", (id(store), "vader"), compute)


def alert_features_data(
    store: Store,
    *,
    definition: JourneyDefinition,
    as_of_dates: Sequence[Any],
    risk: pd.DataFrame | str | Path | None = None,
    ticket_scores: pd.DataFrame | None = None,
    activity_sources: Sequence[str] = ("product",),
    data_end: Any = None,
    cache: ResultCache | None = None,
) -> AlertFeatures:
    """Return the values the alert conditions read, per customer and as-of day, from what was known then.

    Parameters
    ----------
    store : Store
        The canonical store.
    definition : JourneyDefinition
        Stages, the churn and conversion outcomes, and the segment field.
    as_of_dates : sequence of date-like
        The as-of days (UTC days; each is read up to its end).
    risk : pandas.DataFrame, str or pathlib.Path, optional
        A risk table (:func:`read_risk_table`). With an ``as_of`` column,
        each day uses the latest score made by its end and at most
        :data:`RISK_MAX_AGE_DAYS` days before (never a later one); without
        it, the scores are taken as made on every as-of day (said in the
        notes).
    ticket_scores : pandas.DataFrame, optional
        Per-ticket sentiment (:func:`journeylib.voice.sentiment.score_tickets`);
        without it the sentiment values are NaN.
    activity_sources : sequence of str, default ("product",)
        Source kinds or names whose events are customer activity.
    data_end : date-like, optional
        The end of the data, for the outcome columns (default: the latest
        event, or the end of the last as-of day when later).
    cache : ResultCache, optional
        Share the milestone frame with other analyses.

    Returns
    -------
    AlertFeatures
        ``data`` has one row per customer × as-of day (customers who had
        signed up and not churned by the end of the day), with:

        ``customer_id``, ``as_of_day``, ``as_of``
            The customer, the UTC day number and its end.
        ``segment``, ``plan``
            As exported (``segment`` is the definition's segment field).
        ``paying``, ``tenure_days``
            Converted by then (bool); days from signup.
        ``stage``, ``days_in_stage``, ``peer_median_days``, ``days_in_stage_vs_peers``, ``stage_overdue``
            The stage entered last; days in it; the median days in it of the
            customers in the same stage on the same day; the ratio of the
            two; 1.0 when longer than the median time peers who moved on
            took (NaN when no peer had).
        ``reached:<stage>``
            Whether each stage of the definition had been entered (bool).
        ``days_since_activity``, ``no_activity``
            Whole days since the last activity event; when there was none
            since signup, the days since signup and ``no_activity`` True.
        ``activity_14d``, ``baseline_per_day``, ``activity_trend``
            Activity events in the last 14 days; the customer's own baseline
            events per day (days 120..31 before); activity per day in the 14
            days over the baseline per day (NaN when the baseline is shorter
            than 14 days or empty).
        ``tickets_<w>d``, ``negative_tickets_<w>d``, ``ticket_sentiment``
            Tickets created in the last 7, 14, 30 days; negative ones (NaN
            without scores); mean compound of the last 30 days' tickets (NaN
            without scores or tickets).
        ``risk``, ``risk_change_7d``, ``risk_reasons``
            From the risk table (NaN / "" without one or without a score).
        ``churned``, ``censored``, ``churn_at``, ``days_to_churn``
            Outcome columns of the snapshots (60-day horizon) for backtests:
            never read by a condition.

    Raises
    ------
    ValueError
        If no source is an activity source, or the risk table is invalid.
    EmptyResultError
        If no customer had signed up and not churned by any as-of day.
    """
    function = "alert_features_data"
    days = sorted({day_number(to_utc(d, function=function, name="as_of_dates") or d) for d in as_of_dates})
    if not days:
        msg = f"{function}: as_of_dates is empty; give at least one as-of day"
        raise ValueError(msg)
    cats = source_categories(store)
    act = [s for s in sources_of(store, activity_sources) if s in cats]
    if not act:
        msg = (
            f"{function}: no event source is an activity source ({', '.join(activity_sources)}); the store's sources "
            f"and kinds are {cats or '(none)'}. Pass activity_sources= with a kind or source name that is activity."
        )
        raise ValueError(msg)
    latest = store.query("SELECT max(timestamp) AS t FROM events")["t"].iloc[0]
    end = to_utc(data_end, function=function, name="data_end") if data_end is not None else None
    if end is None:
        end = max(pd.Timestamp(latest) if pd.notna(latest) else day_end(days[-1]), day_end(days[-1]))
    scope = Scope.resolve(store, None, function=function, as_of=end, segment_field=definition.segment_field)
    with warnings.catch_warnings():
        # the label's censoring warning is about training; alerts read features only
        warnings.simplefilter("ignore", StatisticalWarning)
        snap = build_snapshots(
            store, definition=definition, as_of_dates=[day_end(d) - pd.Timedelta(days=1) for d in days],
            population="all", ticket_scores=ticket_scores, activity_sources=activity_sources,
            scope=scope, cache=cache,
        )  # fmt: skip
    s = snap.data
    notes: list[str] = []
    out = pd.DataFrame({"customer_id": s["customer_id"].astype(str), "as_of_day": s["as_of_day"].astype("int64"), "as_of": s["as_of"]})
    out["segment"] = s["segment"]
    out["plan"] = s["plan"]
    out["paying"] = s["paying_days"].notna()
    out["tenure_days"] = s["tenure_days"].astype(float)
    out["stage"] = s["stage"]
    out["days_in_stage"] = s["days_in_stage"].astype(float)
    ratio = s["days_in_stage_vs_peers"].astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["peer_median_days"] = np.where(ratio > 0, out["days_in_stage"] / ratio, np.nan)
    out["days_in_stage_vs_peers"] = ratio
    out["stage_overdue"] = s["stage_overdue"].astype(float)
    out = pd.concat([out, _reached(store, definition, scope, out, cache)], axis=1)
    recency = _recency_column(s, act, cats, activity_sources)
    since = s[recency].astype(float)
    out["no_activity"] = since.isna()
    out["days_since_activity"] = since.where(since.notna(), np.floor(out["tenure_days"]))
    n_none = int(out["no_activity"].sum())
    if n_none:
        notes.append(
            f"{n_none} of {len(out)} customer-days had no activity event since signup; their days since activity "
            "are counted from signup."
        )
    out["activity_14d"] = s["activity_14d"].astype(float)
    out["baseline_per_day"] = s["baseline_per_day"].astype(float)
    out["activity_trend"] = s["activity_ratio_14d"].astype(float)
    for w in _WINDOWS:
        out[f"tickets_{w}d"] = s[f"tickets_{w}d"].astype(float)
        col = f"negative_tickets_{w}d"
        out[col] = s[col].astype(float) if col in s.columns else np.nan
    out["ticket_sentiment"] = s["ticket_compound_30d"].astype(float) if "ticket_compound_30d" in s.columns else np.nan
    if ticket_scores is None:
        notes.append("ticket sentiment was not scored: negative_tickets and ticket_sentiment conditions do not hold.")
    risk_given = risk is not None
    out["risk"], out["risk_change_7d"], out["risk_reasons"] = np.nan, np.nan, ""
    if risk is not None:
        out, risk_notes = _join_risk(out, read_risk_table(risk))
        notes.extend(risk_notes)
    for c in ("churned", "censored", "churn_at", "days_to_churn"):
        out[c] = s[c].to_numpy()
    if out.empty:
        msg = f"{function}: no customer had signed up and not churned by the as-of days {days[0]}..{days[-1]}"
        raise EmptyResultError(msg)
    return AlertFeatures(
        data=out.reset_index(drop=True), notes=notes, risk_given=risk_given,
        sentiment_given=ticket_scores is not None, stage_names=list(definition.stage_names),
    )  # fmt: skip


def _recency_column(s: pd.DataFrame, act: list[str], cats: dict[str, str], activity_sources: Sequence[str]) -> str:
    """Return the snapshot column of the days since the last activity event."""
    kinds = {cats[a] for a in act}
    if len(kinds) == 1:
        kind = next(iter(kinds))
        same = sorted(src for src, c in cats.items() if c == kind)
        col = f"days_since_{feature_slug(kind)}"
        if same == sorted(act) and col in s.columns:
            return col
    if "days_since_activity" in s.columns:
        return "days_since_activity"
    msg = f"alert_features_data: no recency column for the activity sources {list(activity_sources)} among {list(s.columns)}"
    raise ValueError(msg)


def _reached(store: Store, definition: JourneyDefinition, scope: Scope, out: pd.DataFrame, cache: ResultCache | None) -> pd.DataFrame:
    """``reached:<stage>`` columns: entered by the end of the as-of day (entry times of ``occurrence: first`` do not move)."""
    ms = stage_milestones(store, definition, scope, cache=cache)
    entered = pd.to_datetime(ms["entered_at"], utc=True)
    ms = ms.assign(dayf=((entered - _EPOCH) / pd.Timedelta(days=1)).astype(float), customer_id=ms["customer_id"].astype(str))
    wide = ms.pivot_table(index="customer_id", columns="stage", values="dayf", aggfunc="min", observed=True)
    res = {}
    for stage in definition.stage_names:
        col = out["customer_id"].map(wide[stage]) if stage in wide.columns else pd.Series(np.nan, index=out.index)
        res[f"reached:{stage}"] = (col.astype(float) < out["as_of_day"].astype(float) + 1).to_numpy()
    return pd.DataFrame(res, index=out.index)


def _join_risk(out: pd.DataFrame, risk: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    notes = []
    if "as_of" in risk.columns:
        r = risk.dropna(subset=["as_of"]).sort_values("as_of")
        left = out.reset_index().sort_values("as_of")
        left["as_of"] = pd.to_datetime(left["as_of"], utc=True)
        merged = pd.merge_asof(
            left, r.rename(columns={"risk": "_r", "risk_change_7d": "_c", "reasons": "_why", "as_of": "_scored"}),
            left_on="as_of", right_on="_scored", by="customer_id", direction="backward",
            tolerance=pd.Timedelta(days=RISK_MAX_AGE_DAYS + 1),
        ).set_index("index").sort_index()  # fmt: skip
        none = merged["_scored"].isna()
        if none.any():
            notes.append(
                f"{int(none.sum())} of {len(out)} customer-days have no risk score made by their as-of day and at most "
                f"{RISK_MAX_AGE_DAYS} days before it; their risk conditions do not hold."
            )
        out = out.copy()
        out["risk"] = merged["_r"].to_numpy(dtype=float)
        out["risk_change_7d"] = merged["_c"].to_numpy(dtype=float)
        out["risk_reasons"] = merged["_why"].fillna("").to_numpy()
        return out, notes
    notes.append(
        f"the risk table has no as_of column: its {len(risk)} scores are taken as made on the as-of day "
        f"({', '.join(sorted({f'{t:%Y-%m-%d}' for t in pd.to_datetime(out['as_of'], utc=True) - pd.Timedelta(days=1)}))})."
    )
    r = risk.drop_duplicates("customer_id", keep="last").set_index("customer_id")
    out = out.copy()
    out["risk"] = out["customer_id"].map(r["risk"]).astype(float)
    out["risk_change_7d"] = out["customer_id"].map(r["risk_change_7d"]).astype(float)
    out["risk_reasons"] = out["customer_id"].map(r["reasons"]).fillna("")
    n_missing = int(out["risk"].isna().sum())
    if n_missing:
        notes.append(f"{n_missing} of {len(out)} customer-days have no row in the risk table; their risk conditions do not hold.")
    return out, notes


# -- evaluation ------------------------------------------------------------------------------


def _bounds(values: pd.Series, t: Threshold) -> np.ndarray:
    v = values.to_numpy(dtype=float)
    ok = ~np.isnan(v)
    with np.errstate(invalid="ignore"):
        for bound, op in ((t.gt, np.greater), (t.gte, np.greater_equal), (t.lt, np.less), (t.lte, np.less_equal)):
            if bound is not None:
                ok &= op(v, bound)
    return ok


def _n(v: Any, digits: int = 1) -> str:
    f = float(v)
    return f"{f:.0f}" if f == round(f) else f"{f:.{digits}f}"


#: One condition: (values it reads, a test, a row's explanation).
_Check = tuple[np.ndarray, Callable[[pd.Series], dict[str, Any]]]


def _checks(rule: AlertRule, f: pd.DataFrame, stage_names: list[str]) -> dict[str, _Check]:
    """Mask and explainer of every condition of *rule* (risk conditions included)."""
    w = rule.when
    out: dict[str, _Check] = {}
    if w.stage is not None:
        names = w.stage.in_ or w.stage.not_in or []
        inside = f["stage"].isin(names).to_numpy()
        mask = inside if w.stage.in_ is not None else (~inside & f["stage"].notna().to_numpy())
        rule_text = ("one of " if w.stage.in_ is not None else "none of ") + ", ".join(repr(n) for n in names)
        out["stage"] = (mask, lambda r: {"value": r["stage"], "rule": rule_text, "text": f"in stage {r['stage']!r}"})
    if w.days_in_stage is not None:
        t_days_in_stage = w.days_in_stage
        out["days_in_stage"] = (
            _bounds(f["days_in_stage"], t_days_in_stage),
            lambda r: {"value": r["days_in_stage"], "rule": t_days_in_stage.text(),
                       "text": f"{_n(r['days_in_stage'])} days in stage {r['stage']!r} (rule {t_days_in_stage.text()})"},
        )  # fmt: skip
    if w.days_in_stage_vs_peers is not None:
        t_days_in_stage_vs_peers = w.days_in_stage_vs_peers
        out["days_in_stage_vs_peers"] = (
            _bounds(f["days_in_stage_vs_peers"], t_days_in_stage_vs_peers),
            lambda r: {"value": r["days_in_stage_vs_peers"], "rule": t_days_in_stage_vs_peers.text(), "reference": r["peer_median_days"],
                       "text": f"{_n(r['days_in_stage'])} days in stage {r['stage']!r}, {r['days_in_stage_vs_peers']:.1f}x the "
                               f"median of {_n(r['peer_median_days'])} days of the customers in that stage (rule {t_days_in_stage_vs_peers.text()}x)"},
        )  # fmt: skip
    if w.stage_overdue is not None:
        want = 1.0 if w.stage_overdue else 0.0
        out["stage_overdue"] = (
            (f["stage_overdue"] == want).to_numpy(),
            lambda r: {"value": r["stage_overdue"], "rule": str(w.stage_overdue).lower(),
                       "text": (f"in stage {r['stage']!r} for {_n(r['days_in_stage'])} days, "
                                + ("longer than" if want else "not longer than") + " the median time peers took to move on")},
        )  # fmt: skip
    if w.days_since_activity is not None:
        t_days_since_activity = w.days_since_activity
        out["days_since_activity"] = (
            _bounds(f["days_since_activity"], t_days_since_activity),
            lambda r: {"value": r["days_since_activity"], "rule": t_days_since_activity.text(),
                       "text": (f"no activity since signup {_n(r['days_since_activity'])} days ago" if r["no_activity"]
                                else f"last activity {_n(r['days_since_activity'])} days ago") + f" (rule {t_days_since_activity.text()})"},
        )  # fmt: skip
    if w.activity_trend is not None:
        t_activity_trend = w.activity_trend
        out["activity_trend"] = (
            _bounds(f["activity_trend"], t_activity_trend),
            lambda r: {"value": r["activity_trend"], "rule": t_activity_trend.text(), "reference": r["baseline_per_day"],
                       "text": f"activity in the last 14 days at {r['activity_trend']:.0%} of the customer's own baseline "
                               f"({r['activity_14d'] / 14:.2f} vs {r['baseline_per_day']:.2f} events a day; rule {t_activity_trend.text()})"},
        )  # fmt: skip
    if w.risk is not None:
        t_risk = w.risk
        out["risk"] = (
            _bounds(f["risk"], t_risk),
            lambda r: {"value": r["risk"], "rule": t_risk.text(),
                       "text": f"churn risk {r['risk']:.2f} (rule {t_risk.text()})" + (f"; reasons: {r['risk_reasons']}" if r["risk_reasons"] else "")},
        )  # fmt: skip
    if w.risk_change_7d is not None:
        t_risk_change_7d = w.risk_change_7d
        out["risk_change_7d"] = (
            _bounds(f["risk_change_7d"], t_risk_change_7d),
            lambda r: {"value": r["risk_change_7d"], "rule": t_risk_change_7d.text(),
                       "text": f"churn risk changed by {r['risk_change_7d']:+.2f} in 7 days (rule {t_risk_change_7d.text()})"},
        )  # fmt: skip
    if w.tickets is not None:
        wt = w.tickets
        col = f"tickets_{wt.window_days}d"
        out["tickets"] = (
            _bounds(f[col], wt),
            lambda r: {"value": r[col], "rule": wt.text(), "text": f"{_n(r[col])} tickets in {wt.window_days} days (rule {wt.text()})"},
        )  # fmt: skip
    if w.negative_tickets is not None:
        wn = w.negative_tickets
        ncol = f"negative_tickets_{wn.window_days}d"
        out["negative_tickets"] = (
            _bounds(f[ncol], wn),
            lambda r: {"value": r[ncol], "rule": wn.text(),
                       "text": f"{_n(r[ncol])} negative tickets in {wn.window_days} days (rule {wn.text()})"},
        )  # fmt: skip
    if w.ticket_sentiment is not None:
        t_ticket_sentiment = w.ticket_sentiment
        out["ticket_sentiment"] = (
            _bounds(f["ticket_sentiment"], t_ticket_sentiment),
            lambda r: {"value": r["ticket_sentiment"], "rule": t_ticket_sentiment.text(),
                       "text": f"mean sentiment of the last 30 days' tickets {r['ticket_sentiment']:+.2f} (rule {t_ticket_sentiment.text()})"},
        )  # fmt: skip
    if w.milestone_overdue is not None:
        m = w.milestone_overdue
        reached = f[f"reached:{m.stage}"].to_numpy(dtype=bool)
        mask = ~reached & (f["tenure_days"].to_numpy(dtype=float) > m.within_days)
        out["milestone_overdue"] = (
            mask,
            lambda r: {"value": r["tenure_days"], "rule": f"not reached within {_n(m.within_days)} days",
                       "text": f"{m.stage!r} not reached {_n(np.floor(r['tenure_days']))} days after signup "
                               f"(expected within {_n(m.within_days)})"},
        )  # fmt: skip
    if w.paying is not None:
        want_paying = w.paying
        out["paying"] = (
            (f["paying"].to_numpy(dtype=bool) == want_paying),
            lambda r: {"value": bool(r["paying"]), "rule": str(want_paying).lower(), "text": "paying" if r["paying"] else "not paying yet"},
        )  # fmt: skip
    if w.tenure_days is not None:
        t_tenure_days = w.tenure_days
        out["tenure_days"] = (
            _bounds(f["tenure_days"], t_tenure_days),
            lambda r: {"value": r["tenure_days"], "rule": t_tenure_days.text(), "text": f"{_n(np.floor(r['tenure_days']))} days since signup (rule {t_tenure_days.text()})"},
        )  # fmt: skip
    return out


_RISK_CONDITIONS = ("risk", "risk_change_7d")


def evaluate_rules(
    features: AlertFeatures, rules: AlertRules, *, explain: bool = True
) -> tuple[pd.DataFrame, list[str]]:
    """Apply every rule to every customer-day and return the firings with their explanation.

    Parameters
    ----------
    features : AlertFeatures
        :func:`alert_features_data`.
    rules : AlertRules
        The rules (their stage names are checked against the features').
    explain : bool, default True
        Build ``why`` and ``explanation`` (a backtest that needs only who
        and when passes False; both are then empty).

    Returns
    -------
    (pandas.DataFrame, list of str)
        One row per rule × customer × as-of day that fired, ordered by
        as-of day, rule and customer: ``rule``, ``customer_id``,
        ``as_of_day``, ``as_of``, ``segment``, ``plan``, ``severity``,
        ``cooldown_days``, ``conditions`` (the conditions that held,
        ``", "``-joined), ``risk_checked`` (bool: the rule's risk
        conditions were checked; False when it has none or no risk table
        was given), ``why`` (plain English, ``"; "``-joined) and
        ``explanation`` (JSON: a list of ``{condition, value, rule,
        reference, text}``, then ``risk_reasons`` when known); and the notes
        (rules skipped or changed because risk or sentiment were not
        available, with counts).

    Raises
    ------
    journeylib.exceptions.ConfigError
        If a rule names a stage the journey definition does not have.
    """
    rules.check_journey(features.stage_names)
    f = features.data
    notes: list[str] = []
    frames = []
    for rule in rules.rules:
        checks = _checks(rule, f, features.stage_names)
        skipped = []
        if not features.risk_given:
            skipped += [c for c in _RISK_CONDITIONS if c in checks]
        used = {k: v for k, v in checks.items() if k not in skipped}
        if skipped and not used:
            notes.append(
                f"rule {rule.name!r} raised nothing: its only conditions ({', '.join(skipped)}) need "
                "a risk table."
            )
            continue
        risk_skipped = [c for c in skipped if c in _RISK_CONDITIONS]
        if risk_skipped and rule.without_risk == "skip":
            notes.append(
                f"rule {rule.name!r} raised nothing: its conditions {', '.join(risk_skipped)} need a risk table "
                "(without_risk: skip); give one (journeylib score) or set without_risk: fire."
            )
            continue
        if risk_skipped:
            notes.append(f"rule {rule.name!r}: {', '.join(risk_skipped)} not checked (no risk table given); it fires on its other conditions.")
        mask = np.ones(len(f), dtype=bool)
        if rule.segments is not None:
            mask &= f["segment"].isin(rule.segments).to_numpy()
        if rule.plans is not None:
            mask &= f["plan"].isin(rule.plans).to_numpy()
        for m, _ in used.values():
            mask &= m
        hit = f[mask]
        if hit.empty:
            continue
        res = pd.DataFrame(
            {
                "rule": rule.name, "customer_id": hit["customer_id"].to_numpy(), "as_of_day": hit["as_of_day"].to_numpy(),
                "as_of": hit["as_of"].to_numpy(), "segment": hit["segment"].to_numpy(), "plan": hit["plan"].to_numpy(),
                "severity": rule.severity, "cooldown_days": rule.cooldown_days, "conditions": ", ".join(used),
                "risk_checked": bool(features.risk_given and any(c in checks for c in _RISK_CONDITIONS)),
            }
        )  # fmt: skip
        if explain:
            whys, expl = [], []
            for _, row in hit.iterrows():
                items = []
                for name, (_, say) in used.items():
                    item = say(row)
                    items.append({"condition": name, "value": _plain(item.get("value")), "rule": item["rule"],
                                  "reference": _plain(item.get("reference")), "text": item["text"]})  # fmt: skip
                texts = [i["text"] for i in items]
                if risk_skipped:
                    texts.append("churn risk not checked (no risk table given)")
                elif features.risk_given and row["risk_reasons"] and not any(c in used for c in _RISK_CONDITIONS):
                    texts.append(f"risk reasons: {row['risk_reasons']}")
                whys.append("; ".join(texts))
                expl.append(json.dumps({"conditions": items, "risk_reasons": row["risk_reasons"] or None,
                                        "risk_checked": not risk_skipped and features.risk_given}, sort_keys=True))  # fmt: skip
            res["why"], res["explanation"] = whys, expl
        else:
            res["why"], res["explanation"] = "", ""
        frames.append(res)
    cols = ["rule", "customer_id", "as_of_day", "as_of", "segment", "plan", "severity", "cooldown_days", "conditions",
            "risk_checked", "why", "explanation"]  # fmt: skip
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in cols}), notes
    out = pd.concat(frames, ignore_index=True)[cols]
    out["as_of"] = pd.to_datetime(out["as_of"], utc=True)
    return out.sort_values(["as_of_day", "rule", "customer_id"], kind="mergesort").reset_index(drop=True), notes


def _plain(v: Any) -> Any:
    """Return a JSON-ready value: floats rounded, NaN as None."""
    if v is None:
        return None
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, float, np.integer, np.floating)):
        f = float(v)
        return None if np.isnan(f) else round(f, 3)
    return str(v)
