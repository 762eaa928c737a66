"""Voice of the customer along the journey: sentiment, emotions, topics and ticket spikes.

The computations behind ``notebooks/05_voice_of_customer.ipynb``. The flow:

1. :func:`ticket_voice_data` reads the tickets of the customers in scope (up
   to ``as_of``), scores each with :func:`journeylib.voice.sentiment.score_tickets`
   and masks personal data in the displayed text (on by default);
2. :func:`assign_stages` puts each ticket in the journey stage its customer
   was in when it was opened (from ``journeylib.journey.stages.stage_intervals_data``);
3. :func:`add_topics` adds the topic of a fitted
   :class:`journeylib.voice.topics.TopicModel`;
4. tables per stage, segment and week (:func:`voc_by_stage_data`,
   :func:`emotion_by_stage_data`, :func:`stage_emotion_data`,
   :func:`voc_by_week_data`), the spike detector (:func:`ticket_spikes_data`),
   the CSM worklist (:func:`tickets_needing_attention_data`) and the
   customer-level features for drivers and prediction
   (:func:`ticket_text_features_data`).

Rates use exposure: a stage that customers stay in for months gets more
tickets than one they pass through in a day, so tickets are counted per
*customer-month in the stage* (30.44 days), from the stage intervals.

The spike rule
--------------
For every segment × stage, :func:`ticket_spikes_data` tests whether the rate
of (by default negative) tickets is higher than expected, three ways:

``other_stages``
    the stage against all other stages of the same segment;
``other_segments``
    the segment against the other segments in the same stage;
``own_baseline``
    each week against the same stage and segment's previous
    ``baseline_weeks`` weeks.

The first two use the exact conditional test of two Poisson rates: given
``n = x1 + x2`` tickets and exposures ``e1``, ``e2``, ``x1 ~ Binomial(n, e1 /
(e1 + e2))`` if the rates are equal; the one-sided p-value is ``P(X >= x1)``.
The weekly test compares the week's count with a Poisson mean ``rate_baseline
* exposure_week`` (the baseline rate counts half a ticket more than were seen,
so an empty baseline does not make one ticket a certain spike), or a negative binomial with the same mean when the
baseline weeks are over-dispersed (dispersion ``phi`` = mean squared Pearson
residual; variance ``phi * mean``). P-values are adjusted for multiple testing
with Benjamini–Hochberg within each comparison; a spike is ``q <= alpha``
(default 0.05) with at least ``min_tickets`` tickets.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from journeylib.exceptions import EmptyResultError, StatisticalWarning
from journeylib.scope import ALL, Scope, to_utc
from journeylib.stats import bh_qvalues, poisson_rate_test
from journeylib.store import Store
from journeylib.voice import pii, sentiment

__all__ = [
    "ALL",
    "COMPARISONS",
    "NO_STAGE",
    "add_topics",
    "assign_stages",
    "emotion_by_stage_data",
    "period_options",
    "stage_emotion_data",
    "stage_order_of",
    "ticket_spikes_data",
    "ticket_text_features_data",
    "ticket_voice_data",
    "tickets_needing_attention_data",
    "unscored_reasons_data",
    "voc_by_stage_data",
    "voc_by_week_data",
    "voc_summary",
]

#: The value of ``segment``, ``stage``, ``topic`` or ``period`` that selects everything.
#: Stage of a ticket opened outside every stage interval of its customer.
NO_STAGE = "(no stage)"
#: Comparisons of :func:`ticket_spikes_data`.
COMPARISONS: tuple[str, ...] = ("other_stages", "other_segments", "own_baseline")
#: Kinds of tickets :func:`ticket_spikes_data` can count.
SPIKE_KINDS: tuple[str, ...] = ("all", "negative", "frustration", "confusion")

_DAYS_PER_MONTH = 30.44
_INTERVAL_COLUMNS = ("customer_id", "stage", "stage_order", "entered_at", "exited_at")
_EXCERPT_CHARS = 280
_warn_kw: dict[str, Any] = {"category": StatisticalWarning, "stacklevel": 3}


# -- helpers ----------------------------------------------------------------------------
def _need(frame: Any, columns: Sequence[str], *, function: str, producer: str) -> None:
    if not isinstance(frame, pd.DataFrame):
        msg = f"{function}: expected the DataFrame returned by {producer}, got {type(frame).__name__}"
        raise TypeError(msg)
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        msg = f"{function}: the frame lacks column(s) {missing}; pass the DataFrame returned by {producer} (columns found: {list(frame.columns)})"
        raise ValueError(msg)


def _utc_series(values: pd.Series) -> pd.Series:
    out = pd.to_datetime(values, utc=True)
    return out.astype("datetime64[ns, UTC]")


def _week_start(ts: pd.Series) -> pd.Series:
    """Monday 00:00 UTC of each timestamp's ISO week, as a tz-naive date-time (for charts)."""
    naive = ts.dt.tz_convert("UTC").dt.tz_localize(None)
    return (naive - pd.to_timedelta(naive.dt.weekday, unit="D")).dt.normalize()


def _check_choice(name: str, value: str, allowed: Sequence[str], *, function: str) -> None:
    if value not in allowed:
        msg = f"{function}: {name}={value!r} is not allowed; use one of {', '.join(map(repr, allowed))}"
        raise ValueError(msg)


def _filter_values(frame: pd.DataFrame, column: str, value: Any, *, function: str) -> pd.DataFrame:
    if value in (None, "", ALL):
        return frame
    if column not in frame.columns:
        msg = f"{function}: cannot filter by {column}={value!r}: the frame has no {column!r} column"
        raise ValueError(msg)
    values = frame[column].astype(str)
    known = sorted(values.dropna().unique().tolist())
    if str(value) not in known:
        msg = f"{function}: {column}={value!r} matches no ticket; known values: {', '.join(known) or '(none)'}"
        raise EmptyResultError(msg)
    return frame[values == str(value)]


_PERIOD_WEEKS = re.compile(r"^last_(\d{1,3})w$")
_PERIOD_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_PERIOD_QUARTER = re.compile(r"^(\d{4})-Q([1-4])$")


def _period_bounds(period: str, as_of: pd.Timestamp) -> tuple[pd.Timestamp | None, pd.Timestamp]:
    """Return ``[start, end)`` of a period (start None = from the beginning)."""
    end = as_of + pd.Timedelta(microseconds=1)
    if period in (None, "", ALL):
        return None, end
    m = _PERIOD_WEEKS.match(period)
    if m:
        return as_of - pd.Timedelta(weeks=int(m.group(1))), end
    m = _PERIOD_MONTH.match(period)
    if m:
        start = pd.Timestamp(year=int(m.group(1)), month=int(m.group(2)), day=1, tz="UTC")
        return start, min(start + pd.offsets.MonthBegin(1), end)
    m = _PERIOD_QUARTER.match(period)
    if m:
        start = pd.Timestamp(year=int(m.group(1)), month=3 * int(m.group(2)) - 2, day=1, tz="UTC")
        return start, min(start + pd.offsets.QuarterBegin(1, startingMonth=1), end)
    msg = (
        f"period={period!r} is not understood; use 'all', 'last_<N>w' (e.g. 'last_13w'), "
        "a month 'YYYY-MM' or a quarter 'YYYY-Qn'"
    )
    raise ValueError(msg)


def _filter_period(frame: pd.DataFrame, period: str, as_of: Any, *, function: str) -> pd.DataFrame:
    if period in (None, "", ALL):
        return frame
    ref = to_utc(as_of) if as_of not in (None, "") else None
    if ref is None:
        ref = pd.Timestamp(frame["created_at"].max())
    start, end = _period_bounds(period, ref)
    created = frame["created_at"]
    mask = created < end
    if start is not None:
        mask &= created >= start
    out = frame[mask]
    if out.empty:
        msg = f"{function}: no ticket in period={period!r} (from {start} to {end})"
        raise EmptyResultError(msg)
    return out


def period_options(voice: pd.DataFrame) -> list[str]:
    """Return the ``period`` values that make sense for a voice frame.

    Parameters
    ----------
    voice : pandas.DataFrame
        The result of :func:`ticket_voice_data`.

    Returns
    -------
    list of str
        ``"all"``, ``"last_4w"``, ``"last_13w"``, ``"last_26w"``, then every
        quarter with tickets, newest first (``"2025-Q3"``).

    Examples
    --------
    >>> v = pd.DataFrame({"created_at": pd.to_datetime(["2025-01-05", "2025-04-02"], utc=True)})
    >>> period_options(v)
    ['all', 'last_4w', 'last_13w', 'last_26w', '2025-Q2', '2025-Q1']
    """
    _need(voice, ["created_at"], function="period_options", producer="ticket_voice_data")
    created = _utc_series(voice["created_at"]).dropna()
    quarters = sorted({f"{t.year}-Q{(t.month - 1) // 3 + 1}" for t in created}, reverse=True)
    return [ALL, "last_4w", "last_13w", "last_26w", *quarters]


# -- 1. tickets, scored --------------------------------------------------------------------
_VOICE_KEEP = (
    "ticket_id",
    "customer_id",
    "user_id",
    "created_at",
    "solved_at",
    "channel",
    "status",
    "priority",
    "satisfaction",
)


def _load_tickets(
    store: Store, scope: Scope, *, strict_before: bool, window_start: pd.Timestamp | None
) -> pd.DataFrame:
    asof = scope.as_of.isoformat()
    op = "<" if strict_before else "<="
    where = [f"t.created_at {op} CAST($as_of AS TIMESTAMPTZ)"]
    params: dict[str, Any] = {"as_of": asof}
    if window_start is not None:
        where.append("t.created_at >= CAST($start AS TIMESTAMPTZ)")
        params["start"] = window_start.isoformat()
    sql = f"""
        SELECT t.ticket_id, t.customer_id, t.user_id, t.created_at, t.solved_at, t.channel, t.subject, t.body,
               t.status, t.priority, t.satisfaction, coalesce(c.segment, '(none)') AS segment
        FROM tickets t JOIN ({scope.customers_sql()}) c ON t.customer_id = c.customer_id
        WHERE {" AND ".join(where)}
        ORDER BY t.customer_id, t.created_at, t.ticket_id"""
    return store.query(sql, params)


def _known_names(store: Store) -> list[str]:
    users = store.query("SELECT DISTINCT email FROM users WHERE email IS NOT NULL")
    return pii.names_from_emails(users["email"].tolist())


def ticket_voice_data(
    store: Store | pd.DataFrame,
    *,
    as_of: Any = None,
    segment: str | None = ALL,
    sample_n: int = 0,
    random_state: int = 0,
    scope: Scope | None = None,
    scorer: Any = None,
    max_chars: int = 5_000,
    mask_pii: bool = True,
) -> pd.DataFrame:
    """Score every ticket of the customers in scope: sentiment, emotion, cleaned text.

    Parameters
    ----------
    store : Store or pandas.DataFrame
        The journey store, or a tickets frame (canonical ticket columns plus
        ``segment``; used as is, no scope filter but ``as_of``).
    as_of : str, date or None
        Tickets opened after it are left out; ``None``/``""`` = the latest
        event in the store.
    segment : str, default "all"
        ``"all"`` or one ``customers.segment`` value.
    sample_n : int, default 0
        0 for every customer, else a seeded sample of that many customers.
    scope : Scope, optional
        A ready scope instead of ``as_of``, ``segment``, ``sample_n`` and
        ``random_state`` (a store only).
    random_state : int, default 0
        Seed of the sample.
    scorer : object or str, optional
        A scorer or :func:`journeylib.voice.sentiment.make_scorer` spec (``None`` = VADER).
    max_chars : int, default 5000
        Longest text read per ticket.
    mask_pii : bool, default True
        Replace emails, phone numbers and person names in ``text`` (see
        :mod:`journeylib.voice.pii`). The raw subject and body are never returned.

    Returns
    -------
    pandas.DataFrame
        One row per ticket, ordered by customer and time: ``ticket_id``,
        ``customer_id``, ``user_id``, ``segment``, ``created_at`` (UTC),
        ``week_start`` (Monday of the ISO week, naive UTC), ``solved_at``,
        ``channel``, ``status``, ``priority``, ``satisfaction`` (0..1),
        ``text`` (what was read: subject + the customer's cleaned message;
        masked when ``mask_pii``), ``language``, ``compound`` (-1..1, NaN if
        unscored), ``neg``, ``neu``, ``pos``, ``polarity`` (negative /
        neutral / positive / unscored; thresholds -0.05 and 0.05),
        ``scored``, ``unscored_reason``, ``lexicon_hits``, ``emotion``
        (frustration / confusion / satisfaction / neutral / unscored),
        ``frustration_score``, ``confusion_score``, ``satisfaction_score``,
        ``cues`` and ``notes``.

    Raises
    ------
    EmptyResultError
        If no ticket is in scope.
    ValueError
        If the segment matches no customer.
    """
    function = "ticket_voice_data"
    names: list[str] = []
    if isinstance(store, pd.DataFrame):
        _need(
            store, ["ticket_id", "customer_id", "created_at"], function=function, producer="the canonical tickets table"
        )
        tickets = store.copy()
        tickets["created_at"] = _utc_series(tickets["created_at"])
        cutoff = to_utc(as_of)
        if cutoff is not None:
            tickets = tickets[tickets["created_at"] <= cutoff]
        if "segment" not in tickets.columns:
            tickets["segment"] = "(none)"
        tickets = _filter_values(tickets, "segment", segment, function=function)
        if "user_email" in tickets.columns:
            names = pii.names_from_emails(tickets["user_email"].tolist())
    else:
        scope = Scope.resolve(store, scope, function=function, as_of=as_of, segment=segment, sample_n=sample_n,
                              random_state=random_state)
        tickets = _load_tickets(store, scope, strict_before=False, window_start=None)
        if mask_pii:
            names = _known_names(store)
    if tickets.empty:
        msg = f"{function}: no ticket in scope (as_of={as_of!r}, segment={segment!r}, sample_n={sample_n}); nothing to score"
        raise EmptyResultError(msg)
    scored = sentiment.score_tickets(tickets.reset_index(drop=True), scorer=scorer, max_chars=max_chars)
    out = pd.DataFrame({c: scored[c] for c in _VOICE_KEEP if c in scored.columns})
    for c in _VOICE_KEEP:
        if c not in out.columns:
            out[c] = None
    out = out[list(_VOICE_KEEP)]
    out.insert(3, "segment", scored["segment"].astype(str).to_numpy())
    out["created_at"] = _utc_series(out["created_at"])
    out.insert(5, "week_start", _week_start(out["created_at"]))
    text = scored["text_clean"]
    out["text"] = pii.mask_pii_series(text, names=names) if mask_pii else text
    for col in (
        "language", "compound", "neg", "neu", "pos", "polarity", "scored", "unscored_reason", "lexicon_hits",
        "emotion", "frustration_score", "confusion_score", "satisfaction_score", "cues", "notes",
    ):  # fmt: skip
        out[col] = scored[col].to_numpy()
    return out.reset_index(drop=True)


# -- 2. stages and topics ------------------------------------------------------------------
def _intervals(stage_intervals: pd.DataFrame, *, function: str) -> pd.DataFrame:
    _need(stage_intervals, _INTERVAL_COLUMNS, function=function, producer="journeylib.journey.stages.stage_intervals_data")
    iv = stage_intervals.copy()
    iv["stage"] = iv["stage"].astype(str)
    iv["stage_order"] = iv["stage_order"].astype(int)
    iv["entered_at"] = _utc_series(iv["entered_at"])
    iv["exited_at"] = _utc_series(iv["exited_at"])
    bad = iv["exited_at"].notna() & (iv["exited_at"] < iv["entered_at"])
    if bad.any():
        first = iv.loc[bad].iloc[0]
        msg = (
            f"{function}: {int(bad.sum())} stage interval(s) end before they start, e.g. customer "
            f"{first['customer_id']!r} in {first['stage']!r}; exited_at must be >= entered_at"
        )
        raise ValueError(msg)
    return iv


def stage_order_of(stage_intervals: pd.DataFrame) -> list[str]:
    """Return stage names in journey order (by ``stage_order``).

    Parameters
    ----------
    stage_intervals : pandas.DataFrame
        The result of ``journeylib.journey.stages.stage_intervals_data``.

    Returns
    -------
    list of str
        Distinct stage names ordered by ``stage_order``.
    """
    iv = _intervals(stage_intervals, function="stage_order_of")
    return iv.drop_duplicates("stage").sort_values("stage_order")["stage"].tolist()


def assign_stages(voice: pd.DataFrame, stage_intervals: pd.DataFrame) -> pd.DataFrame:
    """Put each ticket in the journey stage its customer was in when it was opened.

    A ticket belongs to the stage whose interval ``[entered_at, exited_at)``
    contains its ``created_at`` (``exited_at`` NaT: still in the stage). If
    intervals of one customer overlap, the later stage wins; a ticket outside
    every interval (e.g. opened before the first stage, or by a customer
    without intervals) gets stage ``"(no stage)"`` and ``stage_order`` -1.

    Parameters
    ----------
    voice : pandas.DataFrame
        Tickets with ``ticket_id``, ``customer_id``, ``created_at`` (e.g. from
        :func:`ticket_voice_data`).
    stage_intervals : pandas.DataFrame
        ``customer_id``, ``stage``, ``stage_order``, ``entered_at``,
        ``exited_at`` (``journeylib.journey.stages.stage_intervals_data``).

    Returns
    -------
    pandas.DataFrame
        A copy of *voice* with ``stage`` (str) and ``stage_order`` (int)
        added (replaced if present); same rows, same order.

    Raises
    ------
    ValueError
        If columns are missing or an interval ends before it starts.

    Examples
    --------
    >>> t = pd.DataFrame({"ticket_id": ["t1", "t2"], "customer_id": ["c", "c"],
    ...                   "created_at": pd.to_datetime(["2025-01-02", "2025-02-02"], utc=True)})
    >>> iv = pd.DataFrame({"customer_id": ["c", "c"], "stage": ["Trial", "Paid"], "stage_order": [0, 1],
    ...                    "entered_at": pd.to_datetime(["2025-01-01", "2025-01-15"], utc=True),
    ...                    "exited_at": pd.to_datetime(["2025-01-15", None], utc=True)})
    >>> assign_stages(t, iv)["stage"].tolist()
    ['Trial', 'Paid']
    """
    function = "assign_stages"
    _need(voice, ["ticket_id", "customer_id", "created_at"], function=function, producer="ticket_voice_data")
    iv = _intervals(stage_intervals, function=function)
    out = voice.drop(columns=[c for c in ("stage", "stage_order") if c in voice.columns]).copy()
    keys = pd.DataFrame(
        {
            "_row": np.arange(len(out)),
            "customer_id": out["customer_id"].to_numpy(),
            "created_at": _utc_series(out["created_at"]).to_numpy(),
        }
    )
    joined = keys.merge(iv[list(_INTERVAL_COLUMNS)], on="customer_id", how="inner")
    inside = (joined["created_at"] >= joined["entered_at"]) & (
        joined["exited_at"].isna() | (joined["created_at"] < joined["exited_at"])
    )
    hit = joined[inside].sort_values(["_row", "stage_order"]).drop_duplicates("_row", keep="last").set_index("_row")
    stage = pd.Series(NO_STAGE, index=np.arange(len(out)), dtype=object)
    order = pd.Series(-1, index=np.arange(len(out)), dtype=np.int64)
    stage.loc[hit.index] = hit["stage"].to_numpy()
    order.loc[hit.index] = hit["stage_order"].to_numpy()
    out["stage"] = stage.to_numpy()
    out["stage_order"] = order.to_numpy()
    return out


def add_topics(voice: pd.DataFrame, model: Any, *, text_col: str = "text") -> pd.DataFrame:
    """Add each ticket's topic from a fitted :class:`journeylib.voice.topics.TopicModel`.

    Parameters
    ----------
    voice : pandas.DataFrame
        Tickets with a text column.
    model : journeylib.voice.topics.TopicModel
        A fitted topic model.
    text_col : str, default "text"
        The column read.

    Returns
    -------
    pandas.DataFrame
        A copy of *voice* with ``topic`` (int id; -1 = no topic word) and
        ``topic_label`` (its top terms) added.

    Raises
    ------
    ValueError
        If *text_col* is missing.
    sklearn.exceptions.NotFittedError
        If the model is not fitted.
    """
    _need(voice, [text_col], function="add_topics", producer="ticket_voice_data")
    out = voice.copy()
    ids = model.predict(out[text_col].tolist())
    out["topic"] = ids.astype(int)
    out["topic_label"] = model.label_of(ids)
    return out


# -- 3. tables along the journey --------------------------------------------------------------
def _emotion_shares(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    labelled = frame[frame["emotion"] != sentiment.UNSCORED]
    counts = labelled.groupby([*keys, "emotion"], observed=True).size().unstack("emotion", fill_value=0)
    for e in sentiment.EMOTIONS:
        if e not in counts.columns:
            counts[e] = 0
    total = counts[list(sentiment.EMOTIONS)].sum(axis=1)
    shares = counts[list(sentiment.EMOTIONS)].div(total.where(total > 0), axis=0)
    shares.columns = [f"share_{e}" for e in sentiment.EMOTIONS]
    dominant = counts[list(sentiment.EMOTIONS)].idxmax(axis=1).where(total > 0)
    result = shares.assign(emotion_labelled=total, dominant_emotion=dominant)
    return result.reset_index()


def _exposure(iv: pd.DataFrame, as_of: pd.Timestamp, keys: list[str]) -> pd.DataFrame:
    end = iv["exited_at"].fillna(as_of).where(lambda t: t <= as_of, as_of)
    days = ((end - iv["entered_at"]).dt.total_seconds() / 86_400).clip(lower=0)
    frame = iv.assign(_days=days)
    return (
        frame.groupby(keys, observed=True)
        .agg(customers_in_stage=("customer_id", "nunique"), customer_days=("_days", "sum"))
        .reset_index()
    )


def _segments_for(
    iv: pd.DataFrame, voice: pd.DataFrame, segments: pd.DataFrame | None, *, function: str
) -> pd.DataFrame:
    if "segment" in iv.columns:
        return iv.assign(segment=iv["segment"].astype(str))
    if segments is not None:
        _need(segments, ["customer_id", "segment"], function=function, producer="the customers table")
        return iv.merge(
            segments[["customer_id", "segment"]].drop_duplicates("customer_id"), on="customer_id", how="left"
        ).assign(segment=lambda f: f["segment"].fillna("(none)").astype(str))
    msg = (
        f"{function}: stage_intervals has no 'segment' column and no segments frame was given, so the "
        "customer-months per segment are unknown; pass segments=customers[['customer_id', 'segment']] "
        "or intervals from journeylib.journey.stages.stage_intervals_data (which carry segment)"
    )
    raise ValueError(msg)


def _as_of_for(voice: pd.DataFrame, iv: pd.DataFrame, as_of: Any) -> pd.Timestamp:
    ts = to_utc(as_of)
    if ts is not None:
        return ts
    candidates = [pd.Timestamp(voice["created_at"].max()), pd.Timestamp(iv["entered_at"].max())]
    if iv["exited_at"].notna().any():
        candidates.append(pd.Timestamp(iv["exited_at"].max()))
    return max(c for c in candidates if pd.notna(c))


def voc_by_stage_data(
    voice: pd.DataFrame,
    *,
    stage_intervals: pd.DataFrame,
    as_of: Any = None,
    segments: pd.DataFrame | None = None,
    by_segment: bool = True,
) -> pd.DataFrame:
    """Ticket volume, sentiment, emotions and topics per journey stage (and segment).

    Parameters
    ----------
    voice : pandas.DataFrame
        :func:`ticket_voice_data`, with stages from :func:`assign_stages`
        (added here if missing) and optionally topics from :func:`add_topics`.
    stage_intervals : pandas.DataFrame
        ``journeylib.journey.stages.stage_intervals_data`` (exposure comes from it).
    as_of : str, date or None
        End of exposure for customers still in a stage; default: the latest
        ticket or interval date.
    segments : pandas.DataFrame, optional
        ``customer_id``, ``segment``; needed only when the intervals carry no
        ``segment`` column.
    by_segment : bool, default True
        One row per stage × segment; else one row per stage (all segments).

    Returns
    -------
    pandas.DataFrame
        One row per stage (× segment), in journey order: ``segment``
        (``"all"`` when not by segment), ``stage``, ``stage_order``,
        ``customers_in_stage`` (customers with an interval in it),
        ``customer_months`` (time spent in it, 30.44-day months),
        ``tickets`` (opened while in it), ``tickets_per_customer_month``,
        ``tickets_scored``, ``mean_compound`` (of scored tickets),
        ``negative_tickets``, ``share_negative`` (of scored tickets),
        ``negative_per_customer_month``, ``share_frustration``,
        ``share_confusion``, ``share_satisfaction``, ``share_neutral`` (of
        tickets with an emotion label), ``dominant_emotion``, and
        ``top_topic`` (most frequent ``topic_label``; only with topics).
        Stages without tickets have 0 tickets and NaN means.

    Raises
    ------
    ValueError
        If columns are missing.
    EmptyResultError
        If the intervals are empty.
    """
    function = "voc_by_stage_data"
    _need(
        voice,
        ["ticket_id", "customer_id", "created_at", "compound", "polarity", "emotion", "segment"],
        function=function,
        producer="ticket_voice_data",
    )
    iv = _intervals(stage_intervals, function=function)
    if iv.empty:
        msg = f"{function}: stage_intervals is empty; no stage to describe"
        raise EmptyResultError(msg)
    v = voice if "stage" in voice.columns else assign_stages(voice, iv)
    iv = _segments_for(iv, v, segments, function=function) if by_segment else iv.assign(segment=ALL)
    ref = _as_of_for(v, iv, as_of)
    v = v.assign(segment=v["segment"].astype(str) if by_segment else ALL)
    keys = ["segment", "stage", "stage_order"]
    expo = _exposure(iv, ref, keys)
    v = v[v["stage"] != NO_STAGE]
    agg = (
        v.assign(_neg=(v["polarity"] == "negative").astype(int))
        .groupby(keys, observed=True)
        .agg(
            tickets=("ticket_id", "size"),
            tickets_scored=("compound", "count"),
            mean_compound=("compound", "mean"),
            negative_tickets=("_neg", "sum"),
        )
        .reset_index()
    )
    out = expo.merge(agg, on=keys, how="left")
    out = out.merge(_emotion_shares(v, keys), on=keys, how="left")
    for c in ("tickets", "tickets_scored", "negative_tickets"):
        out[c] = out[c].fillna(0).astype(int)
    out["customer_months"] = out.pop("customer_days") / _DAYS_PER_MONTH
    out["tickets_per_customer_month"] = out["tickets"] / out["customer_months"].where(out["customer_months"] > 0)
    out["share_negative"] = out["negative_tickets"] / out["tickets_scored"].where(out["tickets_scored"] > 0)
    out["negative_per_customer_month"] = out["negative_tickets"] / out["customer_months"].where(
        out["customer_months"] > 0
    )
    cols = [
        "segment", "stage", "stage_order", "customers_in_stage", "customer_months", "tickets",
        "tickets_per_customer_month", "tickets_scored", "mean_compound", "negative_tickets", "share_negative",
        "negative_per_customer_month", *[f"share_{e}" for e in sentiment.EMOTIONS], "dominant_emotion",
    ]  # fmt: skip
    if "topic_label" in v.columns:
        top = (
            v.groupby([*keys, "topic_label"], observed=True).size().reset_index(name="n")
            .sort_values([*keys, "n", "topic_label"], ascending=[True, True, True, False, True])
            .drop_duplicates(keys).rename(columns={"topic_label": "top_topic"})
        )  # fmt: skip
        out = out.merge(top[[*keys, "top_topic"]], on=keys, how="left")
        cols.append("top_topic")
    return out[cols].sort_values(["segment", "stage_order"]).reset_index(drop=True)


def emotion_by_stage_data(
    voice: pd.DataFrame,
    *,
    segment: str = ALL,
    stage: str = ALL,
    topic: str = ALL,
    period: str = ALL,
    as_of: Any = None,
) -> pd.DataFrame:
    """Emotion shares per journey stage for one selection of tickets (the dashboard's view).

    Parameters
    ----------
    voice : pandas.DataFrame
        :func:`ticket_voice_data` after :func:`assign_stages` (and
        :func:`add_topics` to filter by topic).
    segment : str, default "all"
        A segment, or ``"all"``.
    stage : str, default "all"
        A stage name, or ``"all"``.
    topic : str, default "all"
        A ``topic_label``, or ``"all"``.
    period : str, default "all"
        ``"all"``, ``"last_<N>w"``, ``"YYYY-MM"`` or ``"YYYY-Qn"`` (see
        :func:`period_options`), relative to *as_of*.
    as_of : str, date or None
        End of the period; default the latest ticket.

    Returns
    -------
    pandas.DataFrame
        One row per stage × emotion (all four emotions, zeros included), in
        journey order: ``stage``, ``stage_order``, ``emotion``, ``tickets``
        (with that emotion), ``stage_tickets`` (with any emotion label),
        ``share`` (of ``stage_tickets``), ``mean_compound`` (of the stage's
        scored tickets), ``segment``, ``topic``, ``period`` (the selection,
        repeated).

    Raises
    ------
    EmptyResultError
        If the selection holds no ticket with an emotion label (the message
        says which filter emptied it).
    ValueError
        If stages are missing or a period is malformed.

    Examples
    --------
    >>> v = pd.DataFrame({"ticket_id": ["a", "b"], "stage": ["Trial", "Trial"], "stage_order": [0, 0],
    ...     "emotion": ["frustration", "neutral"], "compound": [-0.6, 0.0], "segment": ["SMB", "SMB"],
    ...     "created_at": pd.to_datetime(["2025-01-02", "2025-01-03"], utc=True)})
    >>> emotion_by_stage_data(v).query("tickets > 0")[["emotion", "share"]].values.tolist()
    [['frustration', 0.5], ['neutral', 0.5]]
    """
    function = "emotion_by_stage_data"
    _need(
        voice,
        ["ticket_id", "stage", "stage_order", "emotion", "compound", "created_at"],
        function=function,
        producer="assign_stages(ticket_voice_data(...), ...)",
    )
    v = voice.assign(created_at=_utc_series(voice["created_at"]))
    v = _filter_values(v, "segment", segment, function=function)
    v = _filter_values(v, "stage", stage, function=function)
    v = _filter_values(v, "topic_label", topic, function=function)
    v = _filter_period(v, period, as_of, function=function)
    v = v[(v["emotion"] != sentiment.UNSCORED) & (v["stage"] != NO_STAGE)]
    if v.empty:
        msg = f"{function}: no ticket with an emotion label for segment={segment!r}, stage={stage!r}, topic={topic!r}, period={period!r}"
        raise EmptyResultError(msg)
    stages = v[["stage", "stage_order"]].drop_duplicates().sort_values("stage_order")
    grid = stages.merge(pd.DataFrame({"emotion": list(sentiment.EMOTIONS)}), how="cross")
    counts = v.groupby(["stage", "emotion"], observed=True).size().reset_index(name="tickets")
    out = grid.merge(counts, on=["stage", "emotion"], how="left")
    out["tickets"] = out["tickets"].fillna(0).astype(int)
    out["stage_tickets"] = out.groupby("stage")["tickets"].transform("sum")
    out["share"] = out["tickets"] / out["stage_tickets"]
    means = v.groupby("stage")["compound"].mean()
    out["mean_compound"] = out["stage"].map(means)
    out["segment"] = segment or ALL
    out["topic"] = topic or ALL
    out["period"] = period or ALL
    out["_e"] = out["emotion"].map({e: i for i, e in enumerate(sentiment.EMOTIONS)})
    return out.sort_values(["stage_order", "_e"]).drop(columns="_e").reset_index(drop=True)


def stage_emotion_data(voice: pd.DataFrame, *, by_segment: bool = True) -> pd.DataFrame:
    """Return the "emotion at each stage" row of the journey map: one dominant emotion per stage.

    Parameters
    ----------
    voice : pandas.DataFrame
        :func:`ticket_voice_data` after :func:`assign_stages`.
    by_segment : bool, default True
        One row per stage × segment, plus the ``"all"`` rows; else only the
        ``"all"`` rows.

    Returns
    -------
    pandas.DataFrame
        ``segment`` (``"all"`` = every segment), ``stage``, ``stage_order``,
        ``tickets`` (with an emotion label), ``dominant_emotion`` (most
        frequent label other than neutral when any non-neutral label holds
        at least 25% of the stage's tickets, else ``neutral``),
        ``dominant_share``, ``share_frustration``, ``share_confusion``,
        ``share_satisfaction``, ``share_neutral``, ``mean_compound``,
        ``share_negative`` (of scored tickets) and ``emotion_label``, a short
        text for the map (``"frustration 64%"``).

    Raises
    ------
    EmptyResultError
        If no ticket is in a stage.
    """
    function = "stage_emotion_data"
    _need(
        voice,
        ["stage", "stage_order", "emotion", "compound", "polarity"],
        function=function,
        producer="assign_stages(ticket_voice_data(...), ...)",
    )
    v = voice[voice["stage"] != NO_STAGE]
    if v.empty:
        msg = f"{function}: no ticket falls in a journey stage"
        raise EmptyResultError(msg)
    frames = [v.assign(segment=ALL)]
    if by_segment and "segment" in v.columns:
        frames.append(v.assign(segment=v["segment"].astype(str)))
    both = pd.concat(frames, ignore_index=True)
    keys = ["segment", "stage", "stage_order"]
    shares = _emotion_shares(both, keys)
    extra = (
        both.assign(_neg=(both["polarity"] == "negative").astype(float).where(both["compound"].notna()))
        .groupby(keys, observed=True)
        .agg(mean_compound=("compound", "mean"), share_negative=("_neg", "mean"))
        .reset_index()
    )
    out = shares.merge(extra, on=keys, how="left").rename(columns={"emotion_labelled": "tickets"})
    non_neutral = out[[f"share_{e}" for e in sentiment.EMOTIONS[:3]]]
    best = non_neutral.idxmax(axis=1).astype(str).map(lambda c: c.removeprefix("share_"))
    best_share = non_neutral.max(axis=1)
    # A stage is "frustrated" only if frustration is common there, not merely the top of small shares.
    out["dominant_emotion"] = np.where(best_share >= 0.25, best, "neutral")
    out["dominant_share"] = np.where(best_share >= 0.25, best_share, out["share_neutral"])
    out["emotion_label"] = [
        f"{e} {s:.0%}" if s == s else e for e, s in zip(out["dominant_emotion"], out["dominant_share"], strict=True)
    ]
    out["_all"] = out["segment"] != ALL
    out = out.sort_values(["_all", "segment", "stage_order"]).drop(columns="_all")
    cols = [
        "segment", "stage", "stage_order", "tickets", "dominant_emotion", "dominant_share",
        *[f"share_{e}" for e in sentiment.EMOTIONS], "mean_compound", "share_negative", "emotion_label",
    ]  # fmt: skip
    return out[cols].reset_index(drop=True)


def voc_by_week_data(
    voice: pd.DataFrame, *, segment: str = ALL, stage: str = ALL, topic: str = ALL, period: str = ALL, as_of: Any = None
) -> pd.DataFrame:
    """Weekly ticket volume, sentiment and emotions for one selection.

    Parameters
    ----------
    voice : pandas.DataFrame
        :func:`ticket_voice_data` (stages and topics needed only to filter by them).
    segment, stage, topic, period, as_of
        As in :func:`emotion_by_stage_data`.

    Returns
    -------
    pandas.DataFrame
        One row per ISO week from the first to the last week with a ticket
        (weeks without tickets included, with 0): ``week_start`` (Monday,
        naive UTC), ``iso_week`` (``2025-W07``), ``tickets``,
        ``tickets_scored``, ``mean_compound``, ``negative_tickets``,
        ``share_negative`` (of scored), ``share_frustration``,
        ``share_confusion``, ``share_satisfaction``, ``share_neutral`` (of
        labelled tickets), ``segment``, ``stage``, ``topic``, ``period``.

    Raises
    ------
    EmptyResultError
        If the selection holds no ticket.
    """
    function = "voc_by_week_data"
    _need(
        voice,
        ["ticket_id", "created_at", "compound", "polarity", "emotion"],
        function=function,
        producer="ticket_voice_data",
    )
    v = voice.assign(created_at=_utc_series(voice["created_at"]))
    v = _filter_values(v, "segment", segment, function=function)
    v = _filter_values(v, "stage", stage, function=function)
    v = _filter_values(v, "topic_label", topic, function=function)
    v = _filter_period(v, period, as_of, function=function)
    if v.empty:
        msg = f"{function}: no ticket for segment={segment!r}, stage={stage!r}, topic={topic!r}, period={period!r}"
        raise EmptyResultError(msg)
    v = v.assign(week_start=_week_start(v["created_at"]), _neg=(v["polarity"] == "negative").astype(int))
    agg = v.groupby("week_start").agg(
        tickets=("ticket_id", "size"), tickets_scored=("compound", "count"), mean_compound=("compound", "mean"),
        negative_tickets=("_neg", "sum"),
    )  # fmt: skip
    weeks = pd.date_range(agg.index.min(), agg.index.max(), freq="7D")
    agg = agg.reindex(weeks)
    agg.index.name = "week_start"
    agg[["tickets", "tickets_scored", "negative_tickets"]] = (
        agg[["tickets", "tickets_scored", "negative_tickets"]].fillna(0).astype(int)
    )
    out = agg.reset_index()
    out["share_negative"] = out["negative_tickets"] / out["tickets_scored"].where(out["tickets_scored"] > 0)
    shares = _emotion_shares(v, ["week_start"]).drop(columns=["emotion_labelled", "dominant_emotion"])
    out = out.merge(shares, on="week_start", how="left")
    iso = out["week_start"].dt.isocalendar()
    out.insert(1, "iso_week", iso["year"].astype(str) + "-W" + iso["week"].astype(str).str.zfill(2))
    out["segment"], out["stage"], out["topic"], out["period"] = (
        segment or ALL,
        stage or ALL,
        topic or ALL,
        period or ALL,
    )
    return out


# -- 4. spikes ---------------------------------------------------------------------------------
def _kind_mask(v: pd.DataFrame, kind: str) -> pd.Series:
    if kind == "all":
        return pd.Series(True, index=v.index)
    if kind == "negative":
        return v["polarity"] == "negative"
    return v["emotion"] == kind


def _weekly_exposure(iv: pd.DataFrame, start: pd.Timestamp, as_of: pd.Timestamp) -> pd.DataFrame:
    """Customer-days in each stage × segment × week, from interval overlaps with week bins."""
    week0 = _week_start(pd.Series([start]))[0].tz_localize("UTC")
    a = iv["entered_at"].where(lambda t: t >= week0, week0)
    b = iv["exited_at"].fillna(as_of).where(lambda t: t <= as_of, as_of)
    keep = b > a
    a, b, sub = a[keep], b[keep], iv[keep]
    if sub.empty:
        return pd.DataFrame(columns=["segment", "stage", "stage_order", "week_start", "customer_days"])
    day = 86_400.0
    a_s = (a - week0).dt.total_seconds().to_numpy() / day
    b_s = (b - week0).dt.total_seconds().to_numpy() / day
    w_first = np.floor(a_s / 7).astype(np.int64)
    w_last = np.floor((b_s - 1e-9) / 7).astype(np.int64)
    counts = w_last - w_first + 1
    rep = np.repeat(np.arange(len(a_s)), counts)
    offs = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    w = w_first[rep] + offs
    lo = np.maximum(a_s[rep], w * 7.0)
    hi = np.minimum(b_s[rep], (w + 1) * 7.0)
    frame = pd.DataFrame(
        {
            "segment": sub["segment"].to_numpy()[rep],
            "stage": sub["stage"].to_numpy()[rep],
            "stage_order": sub["stage_order"].to_numpy()[rep],
            "week_start": week0.tz_localize(None) + pd.to_timedelta(w * 7, unit="D"),
            "customer_days": np.clip(hi - lo, 0, None),
        }
    )
    return (
        frame.groupby(["segment", "stage", "stage_order", "week_start"], observed=True)["customer_days"]
        .sum()
        .reset_index()
    )


def ticket_spikes_data(
    voice: pd.DataFrame,
    *,
    stage_intervals: pd.DataFrame,
    as_of: Any = None,
    kind: str = "negative",
    comparison: str = "all",
    alpha: float = 0.05,
    min_tickets: int = 5,
    baseline_weeks: int = 8,
    segments: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Detect stages (and weeks) with more tickets of a kind than expected.

    The statistical rule is in the module docstring: exact conditional
    Poisson-rate tests against other stages and other segments, a Poisson or
    negative-binomial tail against the stage's own previous weeks, and
    Benjamini–Hochberg control of the false discovery rate within each
    comparison.

    Parameters
    ----------
    voice : pandas.DataFrame
        :func:`ticket_voice_data` (stages are assigned here if missing).
    stage_intervals : pandas.DataFrame
        ``journeylib.journey.stages.stage_intervals_data``.
    as_of : str, date or None
        End of exposure; default the latest ticket or interval date.
    kind : {"negative", "all", "frustration", "confusion"}, default "negative"
        Which tickets are counted: negative polarity, every ticket, or an
        emotion.
    comparison : {"all", "other_stages", "other_segments", "own_baseline"}, default "all"
        Which tests to run.
    alpha : float, default 0.05
        False discovery rate.
    min_tickets : int, default 5
        A spike needs at least this many tickets (tiny counts can be
        significant against a near-zero baseline but say little).
    baseline_weeks : int, default 8
        Previous weeks forming a week's baseline (``own_baseline``); weeks
        with fewer than 4 baseline weeks of exposure are not tested.
    segments : pandas.DataFrame, optional
        ``customer_id``, ``segment`` when the intervals have no segment.

    Returns
    -------
    pandas.DataFrame
        One row per test, spikes first then by q-value: ``comparison``,
        ``segment``, ``stage``, ``stage_order``, ``week_start`` (NaT except
        for ``own_baseline``), ``kind``, ``tickets`` (of the kind),
        ``customer_months`` (exposure), ``rate`` (tickets per customer-month),
        ``baseline_tickets``, ``baseline_customer_months``,
        ``baseline_rate`` (of the comparison group), ``rate_ratio``
        (``rate / baseline_rate``), ``expected`` (``baseline_rate *
        customer_months``), ``p_value`` (one-sided), ``q_value`` (BH within
        the comparison), ``spike`` (``q <= alpha`` and ``tickets >=
        min_tickets``), ``method``.

    Raises
    ------
    ValueError
        If *kind* or *comparison* is unknown, or columns are missing.
    EmptyResultError
        If there is nothing to test.
    """
    function = "ticket_spikes_data"
    _check_choice("kind", kind, SPIKE_KINDS, function=function)
    _check_choice("comparison", comparison, (ALL, *COMPARISONS), function=function)
    if not 0 < alpha < 1:
        msg = f"{function}: alpha must be in (0, 1); got {alpha!r}"
        raise ValueError(msg)
    _need(
        voice,
        ["ticket_id", "customer_id", "created_at", "polarity", "emotion", "segment"],
        function=function,
        producer="ticket_voice_data",
    )
    iv = _intervals(stage_intervals, function=function)
    v = voice if "stage" in voice.columns else assign_stages(voice, iv)
    iv = _segments_for(iv, v, segments, function=function)
    ref = _as_of_for(v, iv, as_of)
    v = v[(v["stage"] != NO_STAGE) & _kind_mask(v, kind)].assign(segment=lambda f: f["segment"].astype(str))
    keys = ["segment", "stage", "stage_order"]
    expo = _exposure(iv, ref, keys).drop(columns="customers_in_stage")
    counts = v.groupby(keys, observed=True).size().reset_index(name="tickets")
    cell = expo.merge(counts, on=keys, how="left").fillna({"tickets": 0})
    cell["tickets"] = cell["tickets"].astype(int)
    cell["customer_months"] = cell.pop("customer_days") / _DAYS_PER_MONTH
    frames: list[pd.DataFrame] = []
    wanted = COMPARISONS if comparison == ALL else (comparison,)
    for comp in wanted:
        if comp in ("other_stages", "other_segments"):
            group = "segment" if comp == "other_stages" else "stage"
            tot = cell.groupby(group)[["tickets", "customer_months"]].transform("sum")
            res = cell.copy()
            res["baseline_tickets"] = (tot["tickets"] - cell["tickets"]).astype(int)
            res["baseline_customer_months"] = tot["customer_months"] - cell["customer_months"]
            res["p_value"] = poisson_rate_test(
                res["tickets"].to_numpy(float), res["customer_months"].to_numpy(float),
                res["baseline_tickets"].to_numpy(float), res["baseline_customer_months"].to_numpy(float),
            )  # fmt: skip
            res["method"] = "exact conditional test of two Poisson rates (binomial), one-sided"
            res["week_start"] = pd.NaT
            frames.append(res.assign(comparison=comp))
        else:
            frames.append(_own_baseline(v, iv, ref, keys, baseline_weeks=baseline_weeks).assign(comparison=comp))
    out = (
        pd.concat([f for f in frames if not f.empty], ignore_index=True)
        if any(not f.empty for f in frames)
        else pd.DataFrame()
    )
    if out.empty:
        msg = f"{function}: nothing to test (no exposure in any stage for kind={kind!r})"
        raise EmptyResultError(msg)
    out["kind"] = kind
    out["rate"] = out["tickets"] / out["customer_months"].where(out["customer_months"] > 0)
    out["baseline_rate"] = out["baseline_tickets"] / out["baseline_customer_months"].where(
        out["baseline_customer_months"] > 0
    )
    out["rate_ratio"] = out["rate"] / out["baseline_rate"].where(out["baseline_rate"] > 0)
    out["expected"] = out["baseline_rate"] * out["customer_months"]
    out["q_value"] = np.nan
    for comp in out["comparison"].unique():
        sel = (out["comparison"] == comp) & out["p_value"].notna()
        if sel.any():
            out.loc[sel, "q_value"] = bh_qvalues(out.loc[sel, "p_value"].to_numpy())
    out["spike"] = (out["q_value"] <= alpha) & (out["tickets"] >= int(min_tickets))
    cols = [
        "comparison", "segment", "stage", "stage_order", "week_start", "kind", "tickets", "customer_months", "rate",
        "baseline_tickets", "baseline_customer_months", "baseline_rate", "rate_ratio", "expected", "p_value",
        "q_value", "spike", "method",
    ]  # fmt: skip
    out["week_start"] = pd.to_datetime(out["week_start"])
    out = out.sort_values(
        ["spike", "q_value", "comparison", "segment", "stage_order"], ascending=[False, True, True, True, True]
    )
    return out[cols].reset_index(drop=True)


def _own_baseline(
    v: pd.DataFrame, iv: pd.DataFrame, as_of: pd.Timestamp, keys: list[str], *, baseline_weeks: int
) -> pd.DataFrame:
    start = min(iv["entered_at"].min(), v["created_at"].min()) if len(v) else iv["entered_at"].min()
    expo = _weekly_exposure(iv, start, as_of)
    if expo.empty:
        return pd.DataFrame()
    weekly = v.assign(week_start=_week_start(_utc_series(v["created_at"])))
    counts = weekly.groupby([*keys, "week_start"], observed=True).size().reset_index(name="tickets")
    frame = expo.merge(counts, on=[*keys, "week_start"], how="left").fillna({"tickets": 0})
    frame["tickets"] = frame["tickets"].astype(int)
    frame["customer_months"] = frame.pop("customer_days") / _DAYS_PER_MONTH
    frame = frame.sort_values([*keys, "week_start"]).reset_index(drop=True)
    rows = []
    for _, grp in frame.groupby(keys, observed=True, sort=False):
        x = grp["tickets"].to_numpy(float)
        e = grp["customer_months"].to_numpy(float)
        for i in range(len(grp)):
            lo = max(0, i - baseline_weeks)
            bx, be = x[lo:i], e[lo:i]
            valid = be > 0
            if valid.sum() < 4 or e[i] <= 0 or be.sum() <= 0 or e[i] < 0.05 * be.sum() / max(valid.sum(), 1):
                continue
            # Half a ticket is added to the baseline (a Jeffreys-style pseudo-count) so that a
            # stage with no ticket in its baseline weeks does not make any single ticket "impossible".
            rate = (bx.sum() + 0.5) / be.sum()
            mu = rate * e[i]
            mu_b = rate * be[valid]
            phi = (
                float(np.mean((bx[valid] - mu_b) ** 2 / np.where(mu_b > 0, mu_b, np.nan))) if (mu_b > 0).any() else 1.0
            )
            phi = phi if np.isfinite(phi) else 1.0
            if phi > 1.0:
                size = mu / (phi - 1.0)
                p = float(stats.nbinom.sf(x[i] - 1, size, size / (size + mu)))
                method = f"negative binomial tail (phi={phi:.2f})"
            else:
                p = float(stats.poisson.sf(x[i] - 1, mu))
                method = "Poisson tail"
            rows.append(
                {
                    **{k: grp.iloc[i][k] for k in keys},
                    "week_start": grp.iloc[i]["week_start"],
                    "tickets": int(x[i]),
                    "customer_months": e[i],
                    "baseline_tickets": int(bx.sum()),
                    "baseline_customer_months": float(be.sum()),
                    "p_value": p,
                    "method": method,
                }
            )
    return pd.DataFrame(rows)


# -- 5. the CSM worklist ----------------------------------------------------------------------
_OPEN_STATUSES = frozenset({"new", "open", "pending", "hold", "on-hold"})


def tickets_needing_attention_data(
    voice: pd.DataFrame, *, as_of: Any = None, window_days: int = 30, top_n: int = 20
) -> pd.DataFrame:
    """Rank the tickets that most need a CSM's eye, with the reasons in plain English.

    Tickets opened in the last *window_days* before *as_of* get points (the
    ``attention_score``):

    * +3 frustration, +1 confusion (the emotion label);
    * ``+2 * |compound|`` for negative tickets;
    * +2 a churn or escalation cue (refund, cancel, other tools, escalate);
    * +1 high priority, +2 urgent;
    * +1 still open (new, open, pending);
    * +1 the customer opened 3 or more tickets in the window;
    * +1 rated bad (satisfaction <= 0.25).

    Parameters
    ----------
    voice : pandas.DataFrame
        :func:`ticket_voice_data` (with stages if assigned).
    as_of : str, date or None
        End of the window; default the latest ticket.
    window_days : int, default 30
        Days before *as_of* looked at.
    top_n : int, default 20
        Rows returned.

    Returns
    -------
    pandas.DataFrame
        At most *top_n* rows, highest score first: ``rank``, ``ticket_id``,
        ``customer_id``, ``segment``, ``stage`` (if assigned), ``created_at``,
        ``status``, ``priority``, ``emotion``, ``compound``,
        ``customer_tickets_in_window``, ``attention_score``, ``reasons``
        (``"; "``-joined), ``text`` (excerpt, as masked in *voice*).

    Raises
    ------
    EmptyResultError
        If no ticket was opened in the window.
    """
    function = "tickets_needing_attention_data"
    _need(
        voice,
        ["ticket_id", "customer_id", "created_at", "emotion", "compound", "polarity"],
        function=function,
        producer="ticket_voice_data",
    )
    if window_days <= 0 or top_n <= 0:
        msg = f"{function}: window_days and top_n must be positive; got {window_days!r}, {top_n!r}"
        raise ValueError(msg)
    v = voice.assign(created_at=_utc_series(voice["created_at"]))
    ref = to_utc(as_of) or pd.Timestamp(v["created_at"].max())
    v = v[(v["created_at"] <= ref) & (v["created_at"] > ref - pd.Timedelta(days=window_days))].copy()
    if v.empty:
        msg = f"{function}: no ticket opened in the {window_days} days before {ref:%Y-%m-%d}"
        raise EmptyResultError(msg)
    n = len(v)
    score = np.zeros(n)
    reasons: list[list[str]] = [[] for _ in range(n)]

    def add(mask: np.ndarray, points: np.ndarray | float, text: str) -> None:
        pts = np.broadcast_to(np.asarray(points, dtype=float), (n,))
        score[mask] += pts[mask]
        for i in np.flatnonzero(mask):
            reasons[i].append(text)

    emotion = v["emotion"].to_numpy()
    compound = v["compound"].to_numpy(dtype=float)
    add(emotion == "frustration", 3.0, "frustrated")
    add(emotion == "confusion", 1.0, "confused")
    neg = (v["polarity"] == "negative").to_numpy()
    add(neg, 2 * np.abs(np.nan_to_num(compound)), "negative tone")
    cues = v["cues"].astype(str).to_numpy() if "cues" in v.columns else np.full(n, "")
    add(
        np.char.find(cues.astype(str), "escalation / churn threat") >= 0,
        2.0,
        "mentions refund, cancelling or other tools",
    )
    if "priority" in v.columns:
        prio = v["priority"].astype(str).str.lower().to_numpy()
        add(prio == "high", 1.0, "high priority")
        add(prio == "urgent", 2.0, "urgent")
    if "status" in v.columns:
        add(v["status"].astype(str).str.lower().isin(_OPEN_STATUSES).to_numpy(), 1.0, "still open")
    per_customer = v.groupby("customer_id")["ticket_id"].transform("size").to_numpy()
    add(per_customer >= 3, 1.0, f"customer opened {'3+'} tickets in {window_days} days")
    if "satisfaction" in v.columns:
        sat = pd.to_numeric(v["satisfaction"], errors="coerce").to_numpy(dtype=float)
        add(np.nan_to_num(sat, nan=1.0) <= 0.25, 1.0, "rated the support bad")
    v["attention_score"] = np.round(score, 2)
    v["reasons"] = ["; ".join(r) for r in reasons]
    v["customer_tickets_in_window"] = per_customer
    v["text"] = (
        v["text"].astype(str).map(lambda t: t if len(t) <= _EXCERPT_CHARS else t[: _EXCERPT_CHARS - 1] + "…")
        if "text" in v.columns
        else ""
    )
    v = v.sort_values(["attention_score", "created_at", "ticket_id"], ascending=[False, False, True]).head(int(top_n))
    v.insert(0, "rank", np.arange(1, len(v) + 1))
    cols = ["rank", "ticket_id", "customer_id", "segment", "stage", "created_at", "status", "priority", "emotion", "compound",
            "customer_tickets_in_window", "attention_score", "reasons", "text"]  # fmt: skip
    return v[[c for c in cols if c in v.columns]].reset_index(drop=True)


# -- 6. features for drivers and prediction ------------------------------------------------------
def ticket_text_features_data(
    store_or_tickets: Store | pd.DataFrame,
    *,
    as_of: Any,
    window_days: int | None = None,
    scorer: Any = None,
    topic_model: Any = None,
    n_topics: int | str = 8,
) -> pd.DataFrame:
    """Sentiment and topic features per customer, from tickets opened strictly before ``as_of``.

    No leakage: only tickets with ``created_at < as_of`` (and, with
    *window_days*, ``>= as_of - window_days``) are read; a topic model is
    fitted on those tickets only unless a fitted one is given (fit it on
    pre-``as_of`` text yourself).

    Parameters
    ----------
    store_or_tickets : Store or pandas.DataFrame
        The store (every customer signed up by ``as_of`` gets a row), or a
        tickets frame: raw canonical tickets, or the already-scored output of
        :func:`ticket_voice_data` (one row per customer in it).
    as_of : str, date or datetime
        The feature date. Required: there is no default clock.
    window_days : int, optional
        Only tickets of the last *window_days* before ``as_of``.
    scorer : object or str, optional
        Scorer for raw tickets (default VADER).
    topic_model : journeylib.voice.topics.TopicModel, optional
        A fitted topic model; default: fit ``TopicModel(n_topics=n_topics)``
        on the window's tickets (skipped below 20 tickets: topic NaN).
    n_topics : int or "auto", default 8
        Topics of the model fitted here.

    Returns
    -------
    pandas.DataFrame
        One row per customer: ``customer_id``, ``as_of``, ``voc_tickets``
        (opened in the window), ``voc_tickets_scored``,
        ``voc_negative_tickets``, ``voc_share_negative`` (of scored; NaN
        without scored tickets), ``voc_mean_compound``, ``voc_min_compound``,
        ``voc_last_compound`` (of the latest scored ticket),
        ``voc_frustrated_tickets``, ``voc_share_frustration``,
        ``voc_share_confusion``, ``voc_share_satisfaction`` (of labelled
        tickets), ``voc_dominant_emotion``, ``voc_dominant_topic`` (label of
        the most frequent topic), ``voc_days_since_last_ticket`` and
        ``voc_days_since_last_negative`` (NaN when none). Customers without
        tickets have 0 counts and NaN means.

    Raises
    ------
    ValueError
        If ``as_of`` is empty.
    """
    function = "ticket_text_features_data"
    ts = to_utc(as_of)
    if ts is None:
        msg = f"{function}: as_of is required (features must not see the future); got {as_of!r}"
        raise ValueError(msg)
    start = ts - pd.Timedelta(days=int(window_days)) if window_days else None
    customers: pd.Series
    if isinstance(store_or_tickets, Store):
        scope = Scope.build(store_or_tickets, as_of=ts)
        customers = store_or_tickets.query(f"SELECT customer_id FROM ({scope.customers_sql()}) ORDER BY customer_id")[
            "customer_id"
        ]
        raw = _load_tickets(store_or_tickets, scope, strict_before=True, window_start=start)
        voice = ticket_voice_data(raw, scorer=scorer, mask_pii=False) if len(raw) else raw
    else:
        frame = store_or_tickets.assign(created_at=_utc_series(store_or_tickets["created_at"]))
        customers = pd.Series(sorted(frame["customer_id"].dropna().unique()), name="customer_id")
        frame = frame[frame["created_at"] < ts]
        if start is not None:
            frame = frame[frame["created_at"] >= start]
        already = {"compound", "polarity", "emotion", "text"} <= set(frame.columns)
        voice = frame if already or frame.empty else ticket_voice_data(frame, scorer=scorer, mask_pii=False)
    out = pd.DataFrame({"customer_id": customers.astype(str).to_numpy()})
    out["as_of"] = ts
    if len(voice) == 0:
        for col in ("voc_tickets", "voc_tickets_scored", "voc_negative_tickets", "voc_frustrated_tickets"):
            out[col] = 0
        for col in ("voc_share_negative", "voc_mean_compound", "voc_min_compound", "voc_last_compound",
                    "voc_share_frustration", "voc_share_confusion", "voc_share_satisfaction",
                    "voc_days_since_last_ticket", "voc_days_since_last_negative"):  # fmt: skip
            out[col] = np.nan
        out["voc_dominant_emotion"] = None
        out["voc_dominant_topic"] = None
        return _feature_order(out)
    v = voice.copy()
    v["customer_id"] = v["customer_id"].astype(str)
    v["_neg"] = (v["polarity"] == "negative").astype(int)
    v["_frus"] = (v["emotion"] == "frustration").astype(int)
    g = v.groupby("customer_id")
    feats = pd.DataFrame(
        {
            "voc_tickets": g.size(),
            "voc_tickets_scored": g["compound"].count(),
            "voc_negative_tickets": g["_neg"].sum(),
            "voc_mean_compound": g["compound"].mean(),
            "voc_min_compound": g["compound"].min(),
            "voc_frustrated_tickets": g["_frus"].sum(),
        }
    )
    feats["voc_share_negative"] = feats["voc_negative_tickets"] / feats["voc_tickets_scored"].where(
        feats["voc_tickets_scored"] > 0
    )
    last = v[v["compound"].notna()].sort_values("created_at").groupby("customer_id")["compound"].last()
    feats["voc_last_compound"] = last
    shares = _emotion_shares(v, ["customer_id"]).set_index("customer_id")
    for e in ("frustration", "confusion", "satisfaction"):
        feats[f"voc_share_{e}"] = shares[f"share_{e}"]
    feats["voc_dominant_emotion"] = shares["dominant_emotion"]
    feats["voc_days_since_last_ticket"] = (ts - g["created_at"].max()).dt.total_seconds() / 86_400
    last_neg = v[v["_neg"] == 1].groupby("customer_id")["created_at"].max()
    feats["voc_days_since_last_negative"] = (ts - last_neg).dt.total_seconds() / 86_400
    texts = v["text"] if "text" in v.columns else pd.Series([""] * len(v), index=v.index)
    model = topic_model
    if model is None and len(v) >= 20:
        from journeylib.voice.topics import TopicModel

        try:
            model = TopicModel(n_topics=n_topics).fit(texts.tolist())
        except EmptyResultError:
            model = None
    if model is not None:
        v["_topic"] = model.label_of(model.predict(texts.tolist()))
        top = (
            v.groupby(["customer_id", "_topic"])
            .size()
            .reset_index(name="n")
            .sort_values(["customer_id", "n", "_topic"], ascending=[True, False, True])
            .drop_duplicates("customer_id")
            .set_index("customer_id")["_topic"]
        )
        feats["voc_dominant_topic"] = top
    else:
        feats["voc_dominant_topic"] = None
    out = out.merge(feats.reset_index(), on="customer_id", how="left")
    for col in ("voc_tickets", "voc_tickets_scored", "voc_negative_tickets", "voc_frustrated_tickets"):
        out[col] = out[col].fillna(0).astype(int)
    return _feature_order(out)


def _feature_order(out: pd.DataFrame) -> pd.DataFrame:
    cols = [
        "customer_id", "as_of", "voc_tickets", "voc_tickets_scored", "voc_negative_tickets", "voc_share_negative",
        "voc_mean_compound", "voc_min_compound", "voc_last_compound", "voc_frustrated_tickets", "voc_share_frustration",
        "voc_share_confusion", "voc_share_satisfaction", "voc_dominant_emotion", "voc_dominant_topic",
        "voc_days_since_last_ticket", "voc_days_since_last_negative",
    ]  # fmt: skip
    return out[cols].sort_values("customer_id").reset_index(drop=True)


# -- 7. awkward text and the summary ------------------------------------------------------------
def unscored_reasons_data(voice: pd.DataFrame) -> pd.DataFrame:
    """Count tickets by why they were not scored, and by cleaning notes.

    Parameters
    ----------
    voice : pandas.DataFrame
        :func:`ticket_voice_data`.

    Returns
    -------
    pandas.DataFrame
        ``kind`` (``unscored`` or ``note``), ``reason`` (the reason, or one
        note such as "quoted reply removed" with numbers masked),
        ``tickets`` and ``share`` (of all tickets), largest first.
    """
    _need(voice, ["unscored_reason", "notes"], function="unscored_reasons_data", producer="ticket_voice_data")
    n = max(len(voice), 1)
    reasons: pd.Series = voice["unscored_reason"].dropna().astype(str)
    reasons = reasons.str.replace(r"\(([a-z]{2}=\d+(?:, )?)+\)", "(…)", regex=True)
    un = reasons.value_counts().rename_axis("reason").reset_index(name="tickets").assign(kind="unscored")
    notes = voice["notes"].fillna("").astype(str).str.split("; ").explode()
    notes = (
        notes[notes != ""]
        .str.replace(r"\d[\d,]*", "N", regex=True)
        .str.replace(r"\(([a-z]{2}=N(?:, )?)+\)", "(…)", regex=True)
    )
    nt = notes.value_counts().rename_axis("reason").reset_index(name="tickets").assign(kind="note")
    out = pd.concat([un, nt], ignore_index=True)
    out["share"] = out["tickets"] / n
    return out[["kind", "reason", "tickets", "share"]]


def voc_summary(
    voice: pd.DataFrame,
    *,
    stage_emotion: pd.DataFrame | None = None,
    spikes: pd.DataFrame | None = None,
    topic_model: Any = None,
) -> dict[str, Any]:
    """Headline numbers of the voice of the customer, for reports and artifacts.

    Parameters
    ----------
    voice : pandas.DataFrame
        :func:`ticket_voice_data`.
    stage_emotion : pandas.DataFrame, optional
        :func:`stage_emotion_data`, for the most negative stage per segment.
    spikes : pandas.DataFrame, optional
        :func:`ticket_spikes_data`, for the spike count and list.
    topic_model : journeylib.voice.topics.TopicModel, optional
        The fitted topic model, for *k* and its stability.

    Returns
    -------
    dict
        ``tickets``, ``tickets_scored``, ``share_scored``, ``mean_compound``,
        ``share_negative``, ``emotions`` (share per label), ``unscored`` (count
        per reason), and when given: ``most_negative_stage`` (per segment:
        stage with the lowest mean compound among stages with 10+ tickets), ``spikes`` (count),
        ``spike_list`` (``"comparison: segment / stage"``), ``n_topics``,
        ``topic_stability``.
    """
    _need(
        voice,
        ["compound", "polarity", "emotion", "unscored_reason"],
        function="voc_summary",
        producer="ticket_voice_data",
    )
    scored = voice["compound"].notna()
    emo = voice.loc[voice["emotion"] != sentiment.UNSCORED, "emotion"].value_counts(normalize=True)
    out: dict[str, Any] = {
        "tickets": len(voice),
        "tickets_scored": int(scored.sum()),
        "share_scored": float(scored.mean()) if len(voice) else None,
        "mean_compound": float(voice["compound"].mean()) if scored.any() else None,
        "share_negative": float((voice.loc[scored, "polarity"] == "negative").mean()) if scored.any() else None,
        "emotions": {e: float(emo.get(e, 0.0)) for e in sentiment.EMOTIONS},
        "unscored": {str(k): int(v) for k, v in voice["unscored_reason"].dropna().value_counts().items()},
    }
    if stage_emotion is not None and len(stage_emotion):
        # Stages with fewer than 10 labelled tickets are too noisy to call the most negative.
        sized = stage_emotion[stage_emotion["tickets"] >= 10].dropna(subset=["mean_compound"])
        worst = sized.sort_values("mean_compound").drop_duplicates("segment")
        out["most_negative_stage"] = {str(r.segment): str(r.stage) for r in worst.itertuples()}
    if spikes is not None:
        hit = spikes[spikes["spike"]]
        out["spikes"] = len(hit)
        out["spike_list"] = [
            f"{c}: {seg} / {st}" + (f" / week of {pd.Timestamp(w):%Y-%m-%d}" if pd.notna(w) else "")
            for c, seg, st, w in hit.head(20)[["comparison", "segment", "stage", "week_start"]].itertuples(index=False)
        ]
    if topic_model is not None:
        out["n_topics"] = int(topic_model.n_topics_)
        out["topic_stability"] = float(topic_model.stability_)
    return out
