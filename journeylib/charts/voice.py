"""Charts of the voice-of-the-customer computations (:mod:`journeylib.voice.stages`, :mod:`journeylib.voice.trends`, topics, evaluation).

Each ``<metric>_chart(data, *, title=None)`` takes exactly the frame its
computation returned and only encodes it (reshaping for display is done with
Altair transforms, never by computing new numbers). Fonts and palette come
from the theme in :mod:`journeylib.charts.theme`; emotions always appear in the
order of :data:`journeylib.voice.sentiment.EMOTIONS`, so each keeps its colour.
"""

from __future__ import annotations

import altair as alt
import pandas as pd

from journeylib.charts import theme as _theme  # noqa: F401  (registers and enables the journeylib theme)
from journeylib.charts.common import require_columns, scoped_title
from journeylib.voice.sentiment import EMOTIONS

__all__ = [
    "emotion_by_stage_chart",
    "stage_sentiment_chart",
    "ticket_spikes_chart",
    "topic_selection_chart",
    "topics_chart",
    "validation_chart",
    "voc_weekly_chart",
]


def _scope(base: str, data: pd.DataFrame) -> str:
    title = scoped_title(base, data)
    for col, label in (("stage", "stage"), ("topic", "topic"), ("period", "period")):
        if col in data.columns:
            values = data[col].dropna().astype(str).unique()
            if len(values) == 1 and values[0] != "all" and col != "stage":
                title += f" · {label} {values[0]}"
    return title


def _stage_sort(data: pd.DataFrame) -> list[str]:
    return data.drop_duplicates("stage").sort_values("stage_order")["stage"].astype(str).tolist()


def emotion_by_stage_chart(data: pd.DataFrame, *, title: str | None = None) -> alt.Chart:
    """Draw the share of each emotion per journey stage as stacked bars.

    Parameters
    ----------
    data : pandas.DataFrame
        The result of :func:`journeylib.voice.stages.emotion_by_stage_data`.
    title : str, optional
        Default ``"Emotion by journey stage"``, with the segment, topic and
        period appended when the data is filtered.

    Returns
    -------
    altair.Chart
        y = ``stage`` in journey order, x = ``share`` stacked to 100%,
        colour = ``emotion`` (fixed order); tooltips show counts.

    Raises
    ------
    ValueError
        If *data* lacks the columns of ``emotion_by_stage_data``.

    Examples
    --------
    >>> d = pd.DataFrame({"stage": ["Trial"], "stage_order": [0], "emotion": ["frustration"], "tickets": [2],
    ...     "stage_tickets": [2], "share": [1.0], "mean_compound": [-0.5], "segment": ["SMB"], "topic": ["all"],
    ...     "period": ["all"]})
    >>> emotion_by_stage_chart(d).to_dict()["title"]
    'Emotion by journey stage — SMB'
    """
    frame = require_columns(
        data,
        [
            "stage",
            "stage_order",
            "emotion",
            "tickets",
            "stage_tickets",
            "share",
            "mean_compound",
            "segment",
            "topic",
            "period",
        ],
        chart="emotion_by_stage_chart",
        producer="journeylib.voice.stages.emotion_by_stage_data",
    )
    order = {e: i for i, e in enumerate(EMOTIONS)}
    frame = frame.assign(emotion_rank=frame["emotion"].map(order))
    return (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            y=alt.Y("stage:N", title="Journey stage", sort=_stage_sort(frame)),
            x=alt.X("share:Q", title="Share of the stage's tickets", stack="normalize", axis=alt.Axis(format="%")),
            color=alt.Color("emotion:N", title="Emotion", scale=alt.Scale(domain=list(EMOTIONS)), sort=list(EMOTIONS)),
            order=alt.Order("emotion_rank:Q"),
            tooltip=[
                alt.Tooltip("stage:N", title="Stage"),
                alt.Tooltip("emotion:N", title="Emotion"),
                alt.Tooltip("tickets:Q", title="Tickets", format=","),
                alt.Tooltip("stage_tickets:Q", title="Tickets in stage", format=","),
                alt.Tooltip("share:Q", title="Share", format=".1%"),
                alt.Tooltip("mean_compound:Q", title="Mean sentiment", format="+.2f"),
            ],
        )
        .properties(title=title or _scope("Emotion by journey stage", frame), height=alt.Step(28))
    )


def stage_sentiment_chart(data: pd.DataFrame, *, title: str | None = None) -> alt.Chart:
    """Draw mean sentiment per stage, one bar per segment, with negative tickets per customer-month.

    Parameters
    ----------
    data : pandas.DataFrame
        The result of :func:`journeylib.voice.stages.voc_by_stage_data`.
    title : str, optional
        Default ``"Mean ticket sentiment by stage and segment"``.

    Returns
    -------
    altair.Chart
        x = ``stage`` in journey order, y = ``mean_compound`` (-1..1),
        colour and x-offset = ``segment``; the tooltip shows ticket counts,
        the negative share and the negative-ticket rate.

    Raises
    ------
    ValueError
        If *data* lacks the columns of ``voc_by_stage_data``.

    Examples
    --------
    >>> d = pd.DataFrame({"segment": ["SMB"], "stage": ["Trial"], "stage_order": [0], "tickets": [3],
    ...     "mean_compound": [-0.2], "share_negative": [0.6], "negative_per_customer_month": [0.1],
    ...     "dominant_emotion": ["frustration"], "customer_months": [30.0]})
    >>> stage_sentiment_chart(d).to_dict()["encoding"]["y"]["field"]
    'mean_compound'
    """
    frame = require_columns(
        data,
        [
            "segment",
            "stage",
            "stage_order",
            "tickets",
            "mean_compound",
            "share_negative",
            "negative_per_customer_month",
            "dominant_emotion",
            "customer_months",
        ],
        chart="stage_sentiment_chart",
        producer="journeylib.voice.stages.voc_by_stage_data",
    )
    return (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X("stage:N", title="Journey stage", sort=_stage_sort(frame), axis=alt.Axis(labelAngle=-20)),
            y=alt.Y("mean_compound:Q", title="Mean sentiment (VADER compound)", scale=alt.Scale(domain=[-1, 1])),
            color=alt.Color("segment:N", title="Segment"),
            xOffset=alt.XOffset("segment:N"),
            tooltip=[
                alt.Tooltip("segment:N", title="Segment"),
                alt.Tooltip("stage:N", title="Stage"),
                alt.Tooltip("tickets:Q", title="Tickets", format=","),
                alt.Tooltip("mean_compound:Q", title="Mean sentiment", format="+.2f"),
                alt.Tooltip("share_negative:Q", title="Negative tickets", format=".0%"),
                alt.Tooltip("negative_per_customer_month:Q", title="Negative tickets per customer-month", format=".3f"),
                alt.Tooltip("customer_months:Q", title="Customer-months in stage", format=",.0f"),
                alt.Tooltip("dominant_emotion:N", title="Dominant emotion"),
            ],
        )
        .properties(title=title or "Mean ticket sentiment by stage and segment")
    )


def voc_weekly_chart(data: pd.DataFrame, *, title: str | None = None) -> alt.LayerChart:
    """Draw weekly ticket volume (bars) and mean sentiment (line, right axis).

    Parameters
    ----------
    data : pandas.DataFrame
        The result of :func:`journeylib.voice.trends.voc_by_week_data`.
    title : str, optional
        Default ``"Weekly tickets and sentiment"`` with the selection appended.

    Returns
    -------
    altair.LayerChart
        Bars of ``tickets`` per ``week_start`` and a line of ``mean_compound``
        on an independent axis; weeks without tickets show as 0 bars and gaps.

    Raises
    ------
    ValueError
        If *data* lacks the columns of ``voc_by_week_data``.

    Examples
    --------
    >>> d = pd.DataFrame({"week_start": [pd.Timestamp("2025-01-06")], "iso_week": ["2025-W02"], "tickets": [4],
    ...     "mean_compound": [0.1], "share_negative": [0.25], "share_frustration": [0.25], "segment": ["all"],
    ...     "stage": ["all"], "topic": ["all"], "period": ["all"]})
    >>> len(voc_weekly_chart(d).to_dict()["layer"])
    2
    """
    frame = require_columns(
        data,
        [
            "week_start",
            "iso_week",
            "tickets",
            "mean_compound",
            "share_negative",
            "share_frustration",
            "segment",
            "stage",
            "topic",
            "period",
        ],
        chart="voc_weekly_chart",
        producer="journeylib.voice.trends.voc_by_week_data",
    )
    base = alt.Chart(frame).encode(
        x=alt.X("week_start:T", title="Week starting (Monday, UTC)"),
        tooltip=[
            alt.Tooltip("iso_week:N", title="ISO week"),
            alt.Tooltip("tickets:Q", title="Tickets", format=","),
            alt.Tooltip("mean_compound:Q", title="Mean sentiment", format="+.2f"),
            alt.Tooltip("share_negative:Q", title="Negative", format=".0%"),
            alt.Tooltip("share_frustration:Q", title="Frustration", format=".0%"),
        ],
    )
    bars = base.mark_bar(opacity=0.6).encode(y=alt.Y("tickets:Q", title="Tickets"))
    line = base.mark_line(point=True, color="#D55E00").encode(
        y=alt.Y("mean_compound:Q", title="Mean sentiment", scale=alt.Scale(domain=[-1, 1]))
    )
    scope = _scope("Weekly tickets and sentiment", frame)
    stage = frame["stage"].dropna().astype(str).unique()
    if len(stage) == 1 and stage[0] != "all":
        scope += f" · stage {stage[0]}"
    return alt.LayerChart(layer=[bars, line]).resolve_scale(y="independent").properties(title=title or scope)


def ticket_spikes_chart(data: pd.DataFrame, *, title: str | None = None) -> alt.LayerChart:
    """Draw each stage × segment's ticket rate ratio against its comparison group.

    Only the ``other_stages`` and ``other_segments`` rows are drawn (weekly
    ``own_baseline`` rows belong in a table).

    Parameters
    ----------
    data : pandas.DataFrame
        The result of :func:`journeylib.voice.trends.ticket_spikes_data`.
    title : str, optional
        Default ``"Ticket rate vs comparison (spikes: q ≤ alpha)"``.

    Returns
    -------
    altair.LayerChart
        Points at ``rate_ratio`` (log scale) per ``segment / stage``, one
        column per comparison, filled when ``spike``; a rule marks ratio 1.

    Raises
    ------
    ValueError
        If *data* lacks the columns of ``ticket_spikes_data``.

    Examples
    --------
    >>> d = pd.DataFrame({"comparison": ["other_stages"], "segment": ["SMB"], "stage": ["Trial"], "stage_order": [0],
    ...     "kind": ["negative"], "tickets": [9], "rate": [0.3], "baseline_rate": [0.1], "rate_ratio": [3.0],
    ...     "q_value": [0.001], "spike": [True]})
    >>> ticket_spikes_chart(d).to_dict()["layer"][0]["mark"]["type"]
    'rule'
    """
    frame = require_columns(
        data,
        [
            "comparison",
            "segment",
            "stage",
            "stage_order",
            "kind",
            "tickets",
            "rate",
            "baseline_rate",
            "rate_ratio",
            "q_value",
            "spike",
        ],
        chart="ticket_spikes_chart",
        producer="journeylib.voice.trends.ticket_spikes_data",
    )
    frame = frame[frame["comparison"].isin(["other_stages", "other_segments"]) & frame["rate_ratio"].gt(0)]
    kind = frame["kind"].iloc[0] if len(frame) else "negative"
    rule = alt.Chart(pd.DataFrame({"one": [1.0]})).mark_rule(strokeDash=[4, 3], color="#888888").encode(x="one:Q")
    points = (
        alt.Chart(frame)
        .transform_calculate(cell="datum.segment + ' / ' + datum.stage")
        .mark_point(size=90, filled=True)
        .encode(
            y=alt.Y(
                "cell:N", title="Segment / stage", sort=alt.EncodingSortField(field="stage_order", order="ascending")
            ),
            x=alt.X(
                "rate_ratio:Q", title=f"Rate of {kind} tickets ÷ comparison rate (log)", scale=alt.Scale(type="log")
            ),
            color=alt.Color("comparison:N", title="Compared with"),
            shape=alt.Shape("spike:N", title="Spike (q ≤ alpha)"),
            tooltip=[
                alt.Tooltip("comparison:N", title="Compared with"),
                alt.Tooltip("segment:N", title="Segment"),
                alt.Tooltip("stage:N", title="Stage"),
                alt.Tooltip("tickets:Q", title="Tickets", format=","),
                alt.Tooltip("rate:Q", title="Per customer-month", format=".3f"),
                alt.Tooltip("baseline_rate:Q", title="Comparison rate", format=".3f"),
                alt.Tooltip("rate_ratio:Q", title="Ratio", format=".2f"),
                alt.Tooltip("q_value:Q", title="q (BH)", format=".2g"),
            ],
        )
    )
    return alt.LayerChart(layer=[rule, points]).properties(
        title=title or "Ticket rate vs comparison (spikes: q ≤ alpha)"
    )


def topics_chart(data: pd.DataFrame, *, title: str | None = None) -> alt.Chart:
    """Draw the number of tickets per topic, labelled by top terms.

    Parameters
    ----------
    data : pandas.DataFrame
        The result of :meth:`journeylib.voice.topics.TopicModel.summary` called
        with texts (it has ``texts`` and ``share``).
    title : str, optional
        Default ``"Ticket topics (TF-IDF + NMF)"``.

    Returns
    -------
    altair.Chart
        y = ``label`` sorted by count, x = ``texts``; the tooltip shows the
        top terms, the share and the topic's stability across seeds.

    Raises
    ------
    ValueError
        If *data* lacks the columns of the summary.

    Examples
    --------
    >>> d = pd.DataFrame({"topic": [0], "label": ["invoice · refund"], "top_terms": ["invoice, refund"],
    ...     "stability": [0.9], "texts": [5], "share": [1.0]})
    >>> topics_chart(d).to_dict()["encoding"]["x"]["field"]
    'texts'
    """
    frame = require_columns(
        data,
        ["topic", "label", "top_terms", "stability", "texts", "share"],
        chart="topics_chart",
        producer="TopicModel.summary(texts)",
    )
    return (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            y=alt.Y("label:N", title="Topic (top terms)", sort="-x"),
            x=alt.X("texts:Q", title="Tickets"),
            tooltip=[
                alt.Tooltip("label:N", title="Topic"),
                alt.Tooltip("top_terms:N", title="Top terms"),
                alt.Tooltip("texts:Q", title="Tickets", format=","),
                alt.Tooltip("share:Q", title="Share", format=".1%"),
                alt.Tooltip("stability:Q", title="Stability across seeds", format=".2f"),
            ],
        )
        .properties(title=title or "Ticket topics (TF-IDF + NMF)")
    )


def topic_selection_chart(data: pd.DataFrame, *, title: str | None = None) -> alt.Chart:
    """Draw stability and coherence against the number of topics, marking the chosen one.

    Parameters
    ----------
    data : pandas.DataFrame
        ``TopicModel.k_selection_``.
    title : str, optional
        Default ``"Choosing the number of topics"``.

    Returns
    -------
    altair.Chart
        Lines of ``stability`` and ``coherence_npmi`` per ``k`` (folded into
        one ``measure`` colour), larger points where ``chosen``.

    Raises
    ------
    ValueError
        If *data* lacks the columns of ``k_selection_``.

    Examples
    --------
    >>> d = pd.DataFrame({"k": [4, 5], "stability": [0.8, 0.7], "coherence_npmi": [0.2, 0.3],
    ...     "reconstruction_error": [50.0, 49.0], "chosen": [False, True]})
    >>> topic_selection_chart(d).to_dict()["transform"][0]["fold"]
    ['stability', 'coherence_npmi']
    """
    frame = require_columns(
        data,
        ["k", "stability", "coherence_npmi", "reconstruction_error", "chosen"],
        chart="topic_selection_chart",
        producer="TopicModel.k_selection_",
    )
    return (
        alt.Chart(frame)
        .transform_fold(["stability", "coherence_npmi"], as_=["measure", "value"])
        .mark_line(point=True)
        .encode(
            x=alt.X("k:O", title="Number of topics (k)"),
            y=alt.Y("value:Q", title="Score (stability 0–1; coherence NPMI −1 to 1)"),
            color=alt.Color("measure:N", title="Measure"),
            size=alt.condition("datum.chosen", alt.value(140), alt.value(30)),
            tooltip=[
                alt.Tooltip("k:O", title="k"),
                alt.Tooltip("measure:N", title="Measure"),
                alt.Tooltip("value:Q", title="Value", format=".3f"),
                alt.Tooltip("chosen:N", title="Chosen"),
            ],
        )
        .properties(title=title or "Choosing the number of topics")
    )


def validation_chart(data: pd.DataFrame, *, title: str | None = None) -> alt.Chart:
    """Draw accuracy, macro-F1 and Pearson r of each scorer on each validation corpus.

    Parameters
    ----------
    data : pandas.DataFrame
        The result of :func:`journeylib.voice.evaluation.scorer_validation_data`.
    title : str, optional
        Default ``"Scorer validation on human-rated sentences"``.

    Returns
    -------
    altair.Chart
        Bars per scorer (colour) for each metric (column) and corpus (row).

    Raises
    ------
    ValueError
        If *data* lacks the columns of ``scorer_validation_data``.

    Examples
    --------
    >>> d = pd.DataFrame({"corpus": ["hutto_tweets"], "scorer": ["vader"], "accuracy": [0.8], "macro_f1": [0.7],
    ...     "pearson_r": [0.87], "n": [10], "coverage": [1.0]})
    >>> validation_chart(d).to_dict()["transform"][0]["fold"]
    ['accuracy', 'macro_f1', 'pearson_r']
    """
    frame = require_columns(
        data,
        ["corpus", "scorer", "accuracy", "macro_f1", "pearson_r", "n", "coverage"],
        chart="validation_chart",
        producer="journeylib.voice.evaluation.scorer_validation_data",
    )
    return (
        alt.Chart(frame)
        .transform_fold(["accuracy", "macro_f1", "pearson_r"], as_=["metric", "value"])
        .mark_bar()
        .encode(
            y=alt.Y("scorer:N", title=None),
            x=alt.X("value:Q", title=None, scale=alt.Scale(domain=[0, 1])),
            color=alt.Color("scorer:N", title="Scorer", legend=None),
            column=alt.Column("metric:N", title=None),
            row=alt.Row("corpus:N", title=None),
            tooltip=[
                alt.Tooltip("corpus:N", title="Corpus"),
                alt.Tooltip("scorer:N", title="Scorer"),
                alt.Tooltip("metric:N", title="Metric"),
                alt.Tooltip("value:Q", title="Value", format=".3f"),
                alt.Tooltip("n:Q", title="Texts", format=","),
                alt.Tooltip("coverage:Q", title="Scored", format=".1%"),
            ],
        )
        .properties(title=title or "Scorer validation on human-rated sentences", width=150, height=alt.Step(16))
    )
