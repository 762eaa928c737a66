"""The CSM worklist: recent tickets ranked by how much they need a customer success manager's eye."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from journeylib.exceptions import EmptyResultError
from journeylib.scope import to_utc
from journeylib.voice.tickets import require_columns, utc_series

__all__ = ["tickets_needing_attention_data"]

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
        :func:`journeylib.voice.tickets.ticket_voice_data` (with stages if assigned).
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
        (``"; "``-joined), ``text`` (the whole text, as masked in *voice*).

    Raises
    ------
    EmptyResultError
        If no ticket was opened in the window.
    """
    function = "tickets_needing_attention_data"
    require_columns(
        voice,
        ["ticket_id", "customer_id", "created_at", "emotion", "compound", "polarity"],
        function=function,
        producer="ticket_voice_data",
    )
    if window_days <= 0 or top_n <= 0:
        msg = f"{function}: window_days and top_n must be positive; got {window_days!r}, {top_n!r}"
        raise ValueError(msg)
    v = voice.assign(created_at=utc_series(voice["created_at"]))
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
    # the whole (masked) text: a report wraps it, and a sentence cut with "…" misleads the reader
    v["text"] = v["text"].astype(str) if "text" in v.columns else ""
    v = v.sort_values(["attention_score", "created_at", "ticket_id"], ascending=[False, False, True]).head(int(top_n))
    v.insert(0, "rank", np.arange(1, len(v) + 1))
    cols = ["rank", "ticket_id", "customer_id", "segment", "stage", "created_at", "status", "priority", "emotion", "compound",
            "customer_tickets_in_window", "attention_score", "reasons", "text"]  # fmt: skip
    return v[[c for c in cols if c in v.columns]].reset_index(drop=True)

