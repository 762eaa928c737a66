"""Tests of journeylib.voice.tickets, stages, trends, attention, ticket_features and summary (and their charts and widget).

Hand-made tickets and stage intervals give hand-computed cases; the synthetic
world (2,000 customers, seed 42) checks that the planted friction point, a spike
of negative setup tickets in the Mid-market segment, is found in that stage and
segment.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _builders import memory_store
from scipy import stats

from journeylib.charts import voice as charts_voc
from journeylib.config import JourneyDefinition
from journeylib.datasets import load_truth, load_world
from journeylib.exceptions import EmptyResultError
from journeylib.journey.stages import stage_intervals_data
from journeylib.stats import poisson_rate_test
from journeylib.store import Store
from journeylib.voice.attention import tickets_needing_attention_data
from journeylib.voice.stages import emotion_by_stage_data, stage_emotion_data, voc_by_stage_data
from journeylib.voice.summary import voc_summary
from journeylib.voice.ticket_features import ticket_text_features_data
from journeylib.voice.tickets import NO_STAGE, assign_stages, period_options, ticket_voice_data, unscored_reasons_data
from journeylib.voice.trends import ticket_spikes_data, voc_by_week_data
from journeylib.widgets.voice_of_customer import VoiceOfCustomerWidget

UTC = "UTC"


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz=UTC)


# Three customers. A (SMB): Trial 10 days, then Paid until as_of (20 days).
# B (SMB): Trial the whole month (30 days). C (Mid-market): Trial the whole month.
AS_OF = "2025-01-31"
INTERVALS = pd.DataFrame(
    {
        "customer_id": ["A", "A", "B", "C"],
        "stage": ["Trial", "Paid", "Trial", "Trial"],
        "stage_order": [0, 1, 0, 0],
        "entered_at": [ts("2025-01-01"), ts("2025-01-11"), ts("2025-01-01"), ts("2025-01-01")],
        "exited_at": [ts("2025-01-11"), pd.NaT, pd.NaT, pd.NaT],
    }
)
SEGMENTS = pd.DataFrame({"customer_id": ["A", "B", "C"], "segment": ["SMB", "SMB", "Mid-market"]})


def _voice() -> pd.DataFrame:
    rows = [
        # ticket, customer, created, compound, polarity, emotion
        ("t1", "A", "2025-01-02", -0.6, "negative", "frustration"),  # A in Trial
        ("t2", "A", "2025-01-11", 0.5, "positive", "satisfaction"),  # exactly at entry of Paid -> Paid
        ("t3", "A", "2025-01-20", 0.0, "neutral", "neutral"),  # Paid
        ("t4", "B", "2025-01-05", -0.2, "negative", "confusion"),  # Trial
        ("t5", "C", "2025-01-06", -0.8, "negative", "frustration"),  # Trial
        ("t6", "C", "2024-12-25", 0.3, "positive", "satisfaction"),  # before any stage
        ("t7", "C", "2025-01-07", np.nan, "unscored", "unscored"),  # Trial, unreadable
    ]
    frame = pd.DataFrame(rows, columns=["ticket_id", "customer_id", "created_at", "compound", "polarity", "emotion"])
    frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True)
    frame["segment"] = frame["customer_id"].map(SEGMENTS.set_index("customer_id")["segment"])
    frame["text"] = "some text"
    frame["unscored_reason"] = np.where(frame["polarity"] == "unscored", "empty text", None)
    frame["notes"] = ""
    frame["cues"] = ""
    return frame


# -- assign_stages ----------------------------------------------------------------------------------


def test_assign_stages_uses_half_open_intervals() -> None:
    out = assign_stages(_voice(), INTERVALS)
    assert out["stage"].tolist() == ["Trial", "Paid", "Paid", "Trial", "Trial", NO_STAGE, "Trial"]
    assert out["stage_order"].tolist() == [0, 1, 1, 0, 0, -1, 0]


def test_assign_stages_does_not_mutate_and_keeps_order() -> None:
    voice = _voice().sample(frac=1.0, random_state=3)
    before = voice.copy()
    out = assign_stages(voice, INTERVALS)
    pd.testing.assert_frame_equal(voice, before)
    assert out["ticket_id"].tolist() == voice["ticket_id"].tolist()


def test_assign_stages_later_stage_wins_on_overlap() -> None:
    iv = pd.DataFrame(
        {"customer_id": ["A", "A"], "stage": ["Trial", "Paid"], "stage_order": [0, 1],
         "entered_at": [ts("2025-01-01"), ts("2025-01-05")], "exited_at": [pd.NaT, pd.NaT]}
    )  # fmt: skip
    out = assign_stages(_voice().head(1).assign(created_at=ts("2025-01-06")), iv)
    assert out["stage"].tolist() == ["Paid"]


def test_assign_stages_errors() -> None:
    with pytest.raises(ValueError, match="lacks column"):
        assign_stages(_voice(), INTERVALS.drop(columns="stage_order"))
    bad = INTERVALS.assign(exited_at=[ts("2024-12-01"), pd.NaT, pd.NaT, pd.NaT])
    with pytest.raises(ValueError, match="end before they start"):
        assign_stages(_voice(), bad)


# -- per stage ---------------------------------------------------------------------------------------


def test_voc_by_stage_hand_case() -> None:
    out = voc_by_stage_data(_voice(), stage_intervals=INTERVALS, as_of=AS_OF, segments=SEGMENTS)
    out = out.set_index(["segment", "stage"])
    smb_trial = out.loc[("SMB", "Trial")]
    # A 10 days + B 30 days (as_of "2025-01-31" is midnight UTC, as in journeylib.scope)
    assert smb_trial["customer_months"] == pytest.approx(40 / 30.44)
    assert smb_trial["tickets_per_customer_month"] == pytest.approx(2 / (40 / 30.44))
    assert smb_trial["tickets"] == 2  # t1, t4
    assert smb_trial["negative_tickets"] == 2
    assert smb_trial["mean_compound"] == pytest.approx((-0.6 - 0.2) / 2)
    assert smb_trial["share_frustration"] == pytest.approx(0.5)
    assert smb_trial["share_confusion"] == pytest.approx(0.5)
    mm_trial = out.loc[("Mid-market", "Trial")]
    assert mm_trial["tickets"] == 2  # t5, t7 (t6 is before any stage)
    assert mm_trial["tickets_scored"] == 1
    assert mm_trial["share_negative"] == pytest.approx(1.0)
    assert mm_trial["share_frustration"] == pytest.approx(1.0)  # the unscored ticket has no emotion
    assert out.loc[("SMB", "Paid"), "tickets"] == 2
    assert out.loc[("SMB", "Paid"), "dominant_emotion"] in {"satisfaction", "neutral"}


def test_voc_by_stage_needs_segments_somewhere() -> None:
    with pytest.raises(ValueError, match="no 'segment' column"):
        voc_by_stage_data(_voice(), stage_intervals=INTERVALS)
    # not needed when pooled
    pooled = voc_by_stage_data(_voice(), stage_intervals=INTERVALS, as_of=AS_OF, by_segment=False)
    assert pooled["segment"].unique().tolist() == ["all"]
    assert pooled.set_index("stage").loc["Trial", "tickets"] == 4


def test_emotion_by_stage_shares_sum_to_one_and_filters() -> None:
    voice = assign_stages(_voice(), INTERVALS)
    out = emotion_by_stage_data(voice)
    assert out.groupby("stage")["share"].sum().tolist() == pytest.approx([1.0, 1.0])
    assert len(out) == 2 * 4  # every emotion, zeros included
    assert out["stage"].tolist()[:4] == ["Trial"] * 4  # journey order
    smb = emotion_by_stage_data(voice, segment="SMB")
    assert smb.set_index(["stage", "emotion"]).loc[("Trial", "confusion"), "tickets"] == 1
    with pytest.raises(EmptyResultError, match="known values"):
        emotion_by_stage_data(voice, segment="Enterprise")
    with pytest.raises(ValueError, match="not understood"):
        emotion_by_stage_data(voice, period="yesterday")


def test_periods() -> None:
    voice = assign_stages(_voice(), INTERVALS)
    jan = emotion_by_stage_data(voice, period="2025-01")
    assert jan["stage_tickets"].groupby(jan["stage"]).first().sum() == 5  # t1..t5 (t7 unscored, t6 no stage)
    last = emotion_by_stage_data(voice, period="last_2w", as_of=AS_OF)  # from 2025-01-17 on
    assert last["tickets"].sum() == 1  # t3
    assert period_options(voice)[:4] == ["all", "last_4w", "last_13w", "last_26w"]
    assert "2025-Q1" in period_options(voice)


def test_stage_emotion_row_for_the_journey_map() -> None:
    voice = assign_stages(_voice(), INTERVALS)
    out = stage_emotion_data(voice)
    assert out["segment"].iloc[0] == "all"  # pooled rows first
    row = out[(out["segment"] == "Mid-market") & (out["stage"] == "Trial")].iloc[0]
    assert row["dominant_emotion"] == "frustration"
    assert row["emotion_label"] == "frustration 100%"
    assert set(out.columns) >= {"share_frustration", "share_confusion", "share_satisfaction", "share_neutral"}


def test_weekly_table_includes_zero_weeks() -> None:
    voice = _voice().assign(
        created_at=pd.to_datetime(
            ["2025-01-02", "2025-01-03", "2025-01-20", "2025-01-03", "2025-01-03", "2025-01-02", "2025-01-02"], utc=True
        )
    )
    out = voc_by_week_data(voice)
    assert out["iso_week"].tolist() == ["2025-W01", "2025-W02", "2025-W03", "2025-W04"]
    assert out["tickets"].tolist() == [6, 0, 0, 1]
    assert out["share_negative"].iloc[0] == pytest.approx(3 / 5)


# -- spikes ---------------------------------------------------------------------------------------------


def test_rate_test_matches_the_binomial_oracle() -> None:
    x1, e1, x2, e2 = 30, 100.0, 5, 100.0
    p = poisson_rate_test(np.array([x1], float), np.array([e1]), np.array([x2], float), np.array([e2]))[0]
    assert p == pytest.approx(stats.binomtest(x1, x1 + x2, e1 / (e1 + e2), alternative="greater").pvalue)


def _spike_world(n: int = 20) -> tuple[pd.DataFrame, pd.DataFrame]:
    """n SMB customers, 60 days in Trial then 60 in Paid; many negative tickets in Trial."""
    start = ts("2025-01-01")
    ivs, tickets = [], []
    rng = np.random.default_rng(1)
    for i in range(n):
        cid = f"c{i}"
        ivs.append((cid, "Trial", 0, start, start + pd.Timedelta(days=60)))
        ivs.append((cid, "Paid", 1, start + pd.Timedelta(days=60), pd.NaT))
        for k in range(3):  # 3 negative tickets per customer in Trial
            tickets.append((f"{cid}-t{k}", cid, start + pd.Timedelta(days=int(rng.integers(0, 60))), "negative"))
        if i % 4 == 0:  # a few in Paid
            tickets.append((f"{cid}-p", cid, start + pd.Timedelta(days=int(rng.integers(61, 119))), "negative"))
    iv = pd.DataFrame(ivs, columns=["customer_id", "stage", "stage_order", "entered_at", "exited_at"]).assign(
        segment="SMB"
    )
    voice = pd.DataFrame(tickets, columns=["ticket_id", "customer_id", "created_at", "polarity"])
    voice = voice.assign(emotion="frustration", segment="SMB", compound=-0.5)
    return voice, iv


def test_ticket_spikes_flags_the_noisy_stage_against_other_stages() -> None:
    voice, iv = _spike_world()
    out = ticket_spikes_data(voice, stage_intervals=iv, as_of="2025-04-30", comparison="other_stages")
    top = out.iloc[0]
    assert (top["stage"], top["spike"], top["comparison"]) == ("Trial", True, "other_stages")
    assert top["tickets"] == 60
    assert top["rate_ratio"] > 5
    assert not out.loc[out["stage"] == "Paid", "spike"].any()
    assert (out["q_value"] >= out["p_value"]).all()  # BH never lowers a p-value
    assert set(out.columns) >= {"expected", "baseline_rate", "method", "week_start"}


def test_ticket_spikes_weekly_baseline_finds_a_burst() -> None:
    voice, iv = _spike_world()
    burst = pd.DataFrame(
        {"ticket_id": [f"b{i}" for i in range(25)], "customer_id": [f"c{i % 20}" for i in range(25)],
         "created_at": ts("2025-04-22"), "polarity": "negative", "emotion": "frustration", "segment": "SMB", "compound": -0.5}
    )  # fmt: skip
    out = ticket_spikes_data(
        pd.concat([voice, burst]), stage_intervals=iv, as_of="2025-04-30", comparison="own_baseline"
    )
    hit = out[out["spike"]]
    assert len(hit) >= 1
    assert hit.iloc[0]["stage"] == "Paid"
    assert hit.iloc[0]["week_start"] == pd.Timestamp("2025-04-21")


def test_ticket_spikes_errors() -> None:
    voice, iv = _spike_world()
    with pytest.raises(ValueError, match="kind="):
        ticket_spikes_data(voice, stage_intervals=iv, kind="angry")
    with pytest.raises(ValueError, match="comparison="):
        ticket_spikes_data(voice, stage_intervals=iv, comparison="others")
    with pytest.raises(ValueError, match="alpha"):
        ticket_spikes_data(voice, stage_intervals=iv, alpha=1.5)


# -- the CSM worklist ------------------------------------------------------------------------------------


def test_tickets_needing_attention_hand_scores() -> None:
    voice = pd.DataFrame(
        {
            "ticket_id": ["a", "b", "c"],
            "customer_id": ["X", "Y", "Y"],
            "segment": ["SMB"] * 3,
            "created_at": pd.to_datetime(["2025-01-20", "2025-01-21", "2024-11-01"], utc=True),
            "emotion": ["frustration", "confusion", "frustration"],
            "compound": [-0.5, 0.1, -0.9],
            "polarity": ["negative", "positive", "negative"],
            "cues": ["frustration: escalation / churn threat", "", ""],
            "priority": ["urgent", "low", "urgent"],
            "status": ["open", "solved", "open"],
            "satisfaction": [0.0, np.nan, 0.0],
            "text": ["x" * 400, "short", "old"],
        }
    )
    out = tickets_needing_attention_data(voice, as_of="2025-01-31", window_days=30)
    assert out["ticket_id"].tolist() == ["a", "b"]  # c is outside the window
    # a: frustrated 3 + negative 2*0.5 + churn cue 2 + urgent 2 + open 1 + bad rating 1 = 10
    assert out.loc[0, "attention_score"] == pytest.approx(10.0)
    assert out.loc[1, "attention_score"] == pytest.approx(1.0)
    assert "urgent" in out.loc[0, "reasons"]
    assert "still open" in out.loc[0, "reasons"]
    assert out.loc[0, "text"] == "x" * 400  # the whole text: a report wraps it, never cuts it with "…"
    with pytest.raises(EmptyResultError, match="no ticket opened"):
        tickets_needing_attention_data(voice, as_of="2030-01-01")


# -- features for drivers and prediction --------------------------------------------------------------------


def test_text_features_use_only_tickets_before_as_of() -> None:
    voice = assign_stages(_voice(), INTERVALS)
    out = ticket_text_features_data(voice, as_of="2025-01-06", topic_model=None, n_topics=2)
    out = out.set_index("customer_id")
    # before 2025-01-06 00:00: A t1, B t4, C t6 (t5 is ON 2025-01-06, not before)
    assert out.loc["A", "voc_tickets"] == 1
    assert out.loc["A", "voc_negative_tickets"] == 1
    assert out.loc["C", "voc_tickets"] == 1
    assert out.loc["C", "voc_negative_tickets"] == 0
    assert out.loc["B", "voc_share_confusion"] == pytest.approx(1.0)
    assert out.loc["A", "voc_days_since_last_negative"] == pytest.approx(4.0)
    assert out["as_of"].eq(ts("2025-01-06")).all()


def test_text_features_window_and_customers_without_tickets() -> None:
    out = ticket_text_features_data(_voice(), as_of="2025-01-31", window_days=12).set_index("customer_id")
    assert out.loc["A", "voc_tickets"] == 1  # from 2025-01-19: t3 only (2025-01-20)
    assert out.loc["B", "voc_tickets"] == 0
    assert np.isnan(out.loc["B", "voc_mean_compound"])
    assert pd.isna(out.loc["B", "voc_dominant_emotion"])


def test_text_features_need_as_of() -> None:
    with pytest.raises(ValueError, match="as_of is required"):
        ticket_text_features_data(_voice(), as_of="")


def test_unscored_reasons_and_summary() -> None:
    voice = _voice().assign(notes=["quoted reply removed; signature removed", "", "", "", "", "", ""])
    reasons = unscored_reasons_data(voice)
    assert reasons.set_index("reason").loc["empty text", "tickets"] == 1
    assert reasons.set_index("reason").loc["quoted reply removed", "kind"] == "note"
    summary = voc_summary(voice)
    assert summary["tickets"] == 7
    assert summary["tickets_scored"] == 6
    assert sum(summary["emotions"].values()) == pytest.approx(1.0)


# -- charts and widget ----------------------------------------------------------------------------------


def test_charts_encode_the_data() -> None:
    voice = assign_stages(_voice(), INTERVALS)
    chart = charts_voc.emotion_by_stage_chart(emotion_by_stage_data(voice, segment="SMB")).to_dict()
    assert chart["title"] == "Emotion by journey stage — SMB"
    assert chart["encoding"]["color"]["scale"]["domain"] == ["frustration", "confusion", "satisfaction", "neutral"]
    assert chart["encoding"]["y"]["sort"] == ["Trial", "Paid"]
    by_stage = voc_by_stage_data(voice, stage_intervals=INTERVALS, as_of=AS_OF, segments=SEGMENTS)
    assert charts_voc.stage_sentiment_chart(by_stage).to_dict()["encoding"]["xOffset"]["field"] == "segment"
    weekly = charts_voc.voc_weekly_chart(voc_by_week_data(voice, stage="Trial")).to_dict()
    assert weekly["title"].endswith("stage Trial")
    with pytest.raises(ValueError, match="lacks column"):
        charts_voc.emotion_by_stage_chart(pd.DataFrame({"stage": ["x"]}))


def test_spike_chart_draws_only_between_group_rows() -> None:
    voice, iv = _spike_world()
    out = ticket_spikes_data(voice, stage_intervals=iv, as_of="2025-04-30")
    spec = charts_voc.ticket_spikes_chart(out).to_dict()
    (rows,) = [v for k, v in spec["datasets"].items() if len(v) and "comparison" in v[0]]
    assert {r["comparison"] for r in rows} <= {"other_stages", "other_segments"}


def test_widget_wraps_emotion_by_stage_and_recomputes_in_place() -> None:
    voice = assign_stages(_voice(), INTERVALS)
    params = list(inspect.signature(emotion_by_stage_data).parameters)
    assert list(VoiceOfCustomerWidget.DATA_PARAMETERS) == params[1:]
    widget = VoiceOfCustomerWidget(voice)
    assert widget.segment_picker.options == ("all", "Mid-market", "SMB")
    assert widget.stage_picker.options == ("all", "Trial", "Paid")
    live = widget.live
    widget.segment_picker.value = "SMB"
    assert widget.segment == "SMB"
    assert widget.live is live
    assert widget.live.spec["title"] == "Emotion by journey stage — SMB"
    widget.segment = "Enterprise"  # unknown: shown, not raised
    assert "Enterprise" in widget.error
    assert "journeylib-error" in widget.errors.value
    widget.segment = "all"
    assert widget.error == ""


# -- the planted friction point of the synthetic world ------------------------------------------------------


@pytest.fixture(scope="module")
def world(planted_world: tuple[Path, Path]) -> tuple[Store, Path]:
    folder, _ = planted_world  # the same 2,000-customer, seed-42 world, loaded here from its files
    store = memory_store(**load_world(folder))
    yield store, folder
    store.close()


@pytest.mark.slow
def test_planted_negative_setup_spike_is_found_in_its_stage_and_segment(world: tuple[Store, Path]) -> None:
    store, folder = world
    planted = load_truth(folder)["planted"]["friction_point"]["parameters"]
    assert planted["segment"] == "Mid-market"
    assert planted["stage"] == "setup"
    # "setup" is the time before setup is completed: the journey's first stage.
    setup_stage = "Trial Started"
    voice = ticket_voice_data(store)
    intervals = stage_intervals_data(store, definition=JourneyDefinition.load("parameters/journeys/saas.yaml"))
    voice = assign_stages(voice, intervals)
    spikes = ticket_spikes_data(voice, stage_intervals=intervals)
    flagged = spikes[spikes["spike"] & spikes["comparison"].isin(["other_stages", "other_segments"])]
    cells = set(zip(flagged["comparison"], flagged["segment"], flagged["stage"], strict=True))
    assert ("other_stages", "Mid-market", setup_stage) in cells
    assert ("other_segments", "Mid-market", setup_stage) in cells
    # no other segment's setup stage stands out against the other segments
    assert not any(c == "other_segments" and st == setup_stage and seg != "Mid-market" for c, seg, st in cells)
    # and it is the most negative stage of its segment
    by_stage = voc_by_stage_data(voice, stage_intervals=intervals)
    mid = by_stage[(by_stage["segment"] == "Mid-market") & (by_stage["tickets"] >= 10)]
    assert mid.loc[mid["mean_compound"].idxmin(), "stage"] == setup_stage
    assert mid.loc[mid["share_frustration"].idxmax(), "stage"] == setup_stage
    emotion = stage_emotion_data(voice)
    row = emotion[(emotion["segment"] == "Mid-market") & (emotion["stage"] == setup_stage)].iloc[0]
    assert row["dominant_emotion"] == "frustration"
