"""Ticket sentiment and topic features per customer, for drivers and prediction (no look-ahead)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from journeylib.exceptions import EmptyResultError
from journeylib.scope import Scope, to_utc
from journeylib.store import Store
from journeylib.voice.tickets import emotion_shares, load_tickets, ticket_voice_data, utc_series

__all__ = ["ticket_text_features_data"]


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
        :func:`journeylib.voice.tickets.ticket_voice_data` (one row per customer in it).
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
        raw = load_tickets(store_or_tickets, scope, strict_before=True, window_start=start)
        voice = ticket_voice_data(raw, scorer=scorer, mask_pii=False) if len(raw) else raw
    else:
        frame = store_or_tickets.assign(created_at=utc_series(store_or_tickets["created_at"]))
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
    shares = emotion_shares(v, ["customer_id"]).set_index("customer_id")
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
