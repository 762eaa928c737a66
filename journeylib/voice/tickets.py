"""Support tickets, scored and placed on the journey: the first steps of the voice of the customer.

The computations behind ``notebooks/05_voice_of_customer.ipynb`` start here:

1. :func:`ticket_voice_data` reads the tickets of the customers in scope (up
   to ``as_of``), scores each with :func:`journeylib.voice.sentiment.score_tickets`
   and masks personal data in the displayed text (on by default);
2. :func:`assign_stages` puts each ticket in the journey stage its customer
   was in when it was opened (from ``journeylib.journey.stages.stage_intervals_data``);
3. :func:`add_topics` adds the topic of a fitted
   :class:`journeylib.voice.topics.TopicModel`;
4. tables per stage (:mod:`journeylib.voice.stages`), per week and the spike
   detector (:mod:`journeylib.voice.trends`), the CSM worklist
   (:mod:`journeylib.voice.attention`), the customer-level features for
   drivers and prediction (:mod:`journeylib.voice.ticket_features`) and the
   headline numbers (:mod:`journeylib.voice.summary`).

This module also holds what those views share about a voice frame: the
column check, the ``segment`` / ``stage`` / ``topic`` / ``period`` filters
(:func:`period_options`), ISO weeks and the emotion shares of a group.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from journeylib.exceptions import EmptyResultError
from journeylib.scope import ALL, Scope, to_utc
from journeylib.store import Store
from journeylib.store.dialect import sql_cast
from journeylib.voice import pii, sentiment

__all__ = [
    "NO_STAGE",
    "add_topics",
    "assign_stages",
    "checked_intervals",
    "emotion_shares",
    "filter_by_period",
    "filter_by_value",
    "iso_week_start",
    "load_tickets",
    "period_options",
    "require_columns",
    "stage_order_of",
    "ticket_voice_data",
    "unscored_reasons_data",
    "utc_series",
]

#: Stage of a ticket opened outside every stage interval of its customer.
NO_STAGE = "(no stage)"

_INTERVAL_COLUMNS = ("customer_id", "stage", "stage_order", "entered_at", "exited_at")


# -- helpers ----------------------------------------------------------------------------
def require_columns(frame: Any, columns: Sequence[str], *, function: str, producer: str) -> None:
    """Check that *frame* is a DataFrame with *columns*; the message names the function and the producer.

    Parameters
    ----------
    frame : object
        What the caller was given.
    columns : sequence of str
        Columns it must have.
    function : str
        The calling function (for the message).
    producer : str
        The function whose result is expected (for the message).

    Raises
    ------
    TypeError
        If *frame* is not a DataFrame.
    ValueError
        If columns are missing (the message lists the columns found).
    """
    if not isinstance(frame, pd.DataFrame):
        msg = f"{function}: expected the DataFrame returned by {producer}, got {type(frame).__name__}"
        raise TypeError(msg)
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        msg = f"{function}: the frame lacks column(s) {missing}; pass the DataFrame returned by {producer} (columns found: {list(frame.columns)})"
        raise ValueError(msg)


def utc_series(values: pd.Series) -> pd.Series:
    """Return *values* as UTC timestamps (``datetime64[ns, UTC]``).

    Parameters
    ----------
    values : pandas.Series
        Timestamps, text or dates (naive = UTC).

    Returns
    -------
    pandas.Series
        The same index, dtype ``datetime64[ns, UTC]``.
    """
    out = pd.to_datetime(values, utc=True)
    return out.astype("datetime64[ns, UTC]")


def iso_week_start(ts: pd.Series) -> pd.Series:
    """Monday 00:00 UTC of each timestamp's ISO week, as a tz-naive date-time (for charts).

    Parameters
    ----------
    ts : pandas.Series
        Time-zone-aware timestamps.

    Returns
    -------
    pandas.Series
        The Monday of each one's ISO week, naive UTC.
    """
    naive = ts.dt.tz_convert("UTC").dt.tz_localize(None)
    return (naive - pd.to_timedelta(naive.dt.weekday, unit="D")).dt.normalize()


def filter_by_value(frame: pd.DataFrame, column: str, value: Any, *, function: str) -> pd.DataFrame:
    """Keep the rows whose *column* equals *value* (as text); ``"all"``, ``""`` or None keep every row.

    Parameters
    ----------
    frame : pandas.DataFrame
        A voice frame.
    column : str
        ``segment``, ``stage``, ``topic_label``, ...
    value : object
        The value selected.
    function : str
        The calling function (for messages).

    Returns
    -------
    pandas.DataFrame
        The rows kept.

    Raises
    ------
    ValueError
        If *frame* has no *column*.
    EmptyResultError
        If no row has *value* (the message lists the values that exist).
    """
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


def filter_by_period(frame: pd.DataFrame, period: str, as_of: Any, *, function: str) -> pd.DataFrame:
    """Keep the tickets opened in *period* (see :func:`period_options`); ``"all"`` keeps every ticket.

    Parameters
    ----------
    frame : pandas.DataFrame
        A voice frame with ``created_at`` (UTC).
    period : str
        ``"all"``, ``"last_<N>w"``, ``"YYYY-MM"`` or ``"YYYY-Qn"``.
    as_of : str, date or None
        End of the period; default the latest ticket.
    function : str
        The calling function (for messages).

    Returns
    -------
    pandas.DataFrame
        The rows kept.

    Raises
    ------
    ValueError
        If *period* is malformed.
    EmptyResultError
        If no ticket falls in the period.
    """
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
    require_columns(voice, ["created_at"], function="period_options", producer="ticket_voice_data")
    created = utc_series(voice["created_at"]).dropna()
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


def load_tickets(
    store: Store, scope: Scope, *, strict_before: bool, window_start: pd.Timestamp | None
) -> pd.DataFrame:
    """Read the tickets of the customers in scope, with their segment, ordered by customer and time.

    Parameters
    ----------
    store : Store
        The canonical store.
    scope : Scope
        Customers and ``as_of``.
    strict_before : bool
        Tickets opened before ``as_of`` (True) or up to and including it (False).
    window_start : pandas.Timestamp or None
        Only tickets opened at or after it.

    Returns
    -------
    pandas.DataFrame
        ``ticket_id``, ``customer_id``, ``user_id``, ``created_at``,
        ``solved_at``, ``channel``, ``subject``, ``body``, ``status``,
        ``priority``, ``satisfaction`` and ``segment`` (``(none)`` if empty).
    """
    asof = scope.as_of.isoformat()
    op = "<" if strict_before else "<="
    where = [f"t.created_at {op} {sql_cast('$as_of', 'timestamp')}"]
    params: dict[str, Any] = {"as_of": asof}
    if window_start is not None:
        where.append(f"t.created_at >= {sql_cast('$start', 'timestamp')}")
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
        :mod:`journeylib.voice.pii`), and an e-mail-shaped ``user_id`` by a
        stable pseudonym ``[EMAIL-<8 hex>]`` (:func:`journeylib.voice.pii.mask_email_values`).
        The raw subject and body are never returned.

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
        require_columns(
            store, ["ticket_id", "customer_id", "created_at"], function=function, producer="the canonical tickets table"
        )
        tickets = store.copy()
        tickets["created_at"] = utc_series(tickets["created_at"])
        cutoff = to_utc(as_of)
        if cutoff is not None:
            tickets = tickets[tickets["created_at"] <= cutoff]
        if "segment" not in tickets.columns:
            tickets["segment"] = "(none)"
        tickets = filter_by_value(tickets, "segment", segment, function=function)
        if "user_email" in tickets.columns:
            names = pii.names_from_emails(tickets["user_email"].tolist())
    else:
        scope = Scope.resolve(store, scope, function=function, as_of=as_of, segment=segment, sample_n=sample_n,
                              random_state=random_state)
        tickets = load_tickets(store, scope, strict_before=False, window_start=None)
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
    out["created_at"] = utc_series(out["created_at"])
    out.insert(5, "week_start", iso_week_start(out["created_at"]))
    text = scored["text_clean"]
    out["text"] = pii.mask_pii_series(text, names=names) if mask_pii else text
    for col in (
        "language", "compound", "neg", "neu", "pos", "polarity", "scored", "unscored_reason", "lexicon_hits",
        "emotion", "frustration_score", "confusion_score", "satisfaction_score", "cues", "notes",
    ):  # fmt: skip
        out[col] = scored[col].to_numpy()
    if mask_pii:
        # An analytics user_id may be an e-mail address; customer_id stays as stored (stages join on it).
        out = pii.mask_email_values(out, columns=["user_id"])
    return out.reset_index(drop=True)


# -- 2. stages and topics ------------------------------------------------------------------
def checked_intervals(stage_intervals: pd.DataFrame, *, function: str) -> pd.DataFrame:
    """Return a copy of stage intervals with checked columns and types (UTC times, int order).

    Parameters
    ----------
    stage_intervals : pandas.DataFrame
        ``journeylib.journey.stages.stage_intervals_data``.
    function : str
        The calling function (for messages).

    Returns
    -------
    pandas.DataFrame
        The intervals, ``stage`` as text, ``stage_order`` as int,
        ``entered_at`` and ``exited_at`` as UTC timestamps.

    Raises
    ------
    ValueError
        If columns are missing or an interval ends before it starts.
    """
    require_columns(stage_intervals, _INTERVAL_COLUMNS, function=function, producer="journeylib.journey.stages.stage_intervals_data")
    iv = stage_intervals.copy()
    iv["stage"] = iv["stage"].astype(str)
    iv["stage_order"] = iv["stage_order"].astype(int)
    iv["entered_at"] = utc_series(iv["entered_at"])
    iv["exited_at"] = utc_series(iv["exited_at"])
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
    iv = checked_intervals(stage_intervals, function="stage_order_of")
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
    require_columns(voice, ["ticket_id", "customer_id", "created_at"], function=function, producer="ticket_voice_data")
    iv = checked_intervals(stage_intervals, function=function)
    out = voice.drop(columns=[c for c in ("stage", "stage_order") if c in voice.columns]).copy()
    keys = pd.DataFrame(
        {
            "_row": np.arange(len(out)),
            "customer_id": out["customer_id"].to_numpy(),
            "created_at": utc_series(out["created_at"]).to_numpy(),
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
    require_columns(voice, [text_col], function="add_topics", producer="ticket_voice_data")
    out = voice.copy()
    ids = model.predict(out[text_col].tolist())
    out["topic"] = ids.astype(int)
    out["topic_label"] = model.label_of(ids)
    return out


def emotion_shares(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Return the share of each emotion label among the labelled tickets of each group.

    Parameters
    ----------
    frame : pandas.DataFrame
        Tickets with ``emotion`` (unscored tickets are left out).
    keys : list of str
        Group columns.

    Returns
    -------
    pandas.DataFrame
        One row per group with a labelled ticket: *keys*, ``share_<emotion>``
        for every emotion of :data:`journeylib.voice.sentiment.EMOTIONS`,
        ``emotion_labelled`` (labelled tickets) and ``dominant_emotion``.
    """
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
    require_columns(voice, ["unscored_reason", "notes"], function="unscored_reasons_data", producer="ticket_voice_data")
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

