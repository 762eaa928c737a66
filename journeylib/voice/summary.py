"""Headline numbers of the voice of the customer, for reports and artifacts."""

from __future__ import annotations

from typing import Any

import pandas as pd

from journeylib.voice import sentiment
from journeylib.voice.tickets import require_columns

__all__ = ["voc_summary"]


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
        :func:`journeylib.voice.tickets.ticket_voice_data`.
    stage_emotion : pandas.DataFrame, optional
        :func:`journeylib.voice.stages.stage_emotion_data`, for the most negative stage per segment.
    spikes : pandas.DataFrame, optional
        :func:`journeylib.voice.trends.ticket_spikes_data`, for the spike count and list.
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
    require_columns(
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
