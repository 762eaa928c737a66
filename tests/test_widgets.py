"""Tests of journeylib.widgets: construct headless (from a store or an analysis context), change traits, read the chart spec."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from journeylib import health
from journeylib.context import Journey
from journeylib.exceptions import EmptyResultError
from journeylib.notebook import setup_altair
from journeylib.scope import Scope
from journeylib.store import Store
from journeylib.voice.sentiment import UNSCORED
from journeylib.voice.stages import emotion_by_stage_data
from journeylib.voice.tickets import NO_STAGE
from journeylib.widgets import DataHealthWidget, VoiceOfCustomerWidget
from journeylib.widgets.base import scope_filters

# SMB: a (2 product events in W10); Enterprise: b (1 support event in W11);
# Partner: p has no events at all.
CUSTOMERS = pd.DataFrame(
    {
        "customer_id": ["a", "b", "p"],
        "segment": ["SMB", "Enterprise", "Partner"],
        "signup_at": ["2024-01-01T00:00:00Z"] * 3,
    }
)
EVENTS = pd.DataFrame(
    {
        "event_id": ["e1", "e2", "e3"],
        "customer_id": ["a", "a", "b"],
        "timestamp": ["2024-03-04T09:00:00Z", "2024-03-05T09:00:00Z", "2024-03-12T09:00:00Z"],
        "event": ["login", "login", "ticket_created"],
        "source": ["product", "product", "support"],
    }
)


@pytest.fixture
def store() -> Store:
    s = Store(":memory:")
    s.insert("customers", CUSTOMERS)
    s.insert("events", EVENTS)
    yield s
    s.close()


def _rows(widget: DataHealthWidget) -> list[dict]:
    (rows,) = widget.live.spec["datasets"].values()
    return rows


def test_data_parameters_equal_the_wrapped_signature(store: Store) -> None:
    params = list(inspect.signature(health.source_volume_data).parameters)
    assert params[0] == "store"
    assert list(DataHealthWidget.DATA_PARAMETERS) == params[1:]
    widget = DataHealthWidget(store)
    assert set(DataHealthWidget.DATA_PARAMETERS) <= set(widget.trait_names())
    assert widget.data_parameters() == {"as_of": None, "segment": "all", "sample_n": 0, "random_state": 0}
    assert widget.compute is health.source_volume_data


def test_initial_state(store: Store) -> None:
    widget = DataHealthWidget(store)
    assert widget.segment_picker.options == ("all", "Enterprise", "Partner", "SMB")
    assert widget.segment_picker.value == "all"
    assert widget.live.spec["title"] == "Weekly events by source"
    assert widget.error == ""
    assert widget.errors.value == ""
    assert sum(r["events"] for r in _rows(widget)) == 3
    assert widget.children[1] is widget.errors
    assert widget.children[2] is widget.live


def test_picking_a_segment_recomputes_in_place(store: Store) -> None:
    widget = DataHealthWidget(store)
    live = widget.live
    widget.segment_picker.value = "SMB"  # what a user does in the browser
    assert widget.segment == "SMB"
    assert widget.live is live  # same JupyterChart, new chart: no re-display
    assert widget.live.spec["title"] == "Weekly events by source — SMB"
    # a's two events in W10; W11 (the week of the latest event, the default as_of) is a zero week
    assert [(r["source"], r["iso_week"], r["events"]) for r in _rows(widget)] == [
        ("product", "2024-W10", 2),
        ("product", "2024-W11", 0),
    ]
    assert widget.data is not None
    assert widget.data["segment"].unique().tolist() == ["SMB"]


def test_setting_the_trait_moves_the_picker(store: Store) -> None:
    widget = DataHealthWidget(store)
    widget.segment = "Enterprise"
    assert widget.segment_picker.value == "Enterprise"
    assert widget.live.spec["title"] == "Weekly events by source — Enterprise"
    assert [(r["source"], r["events"]) for r in _rows(widget)] == [("support", 1)]


def test_initial_segment_and_as_of(store: Store) -> None:
    widget = DataHealthWidget(store, segment="SMB", as_of="2024-03-04")
    assert widget.segment_picker.value == "SMB"
    assert widget.as_of == "2024-03-04"
    assert [(r["source"], r["events"]) for r in _rows(widget)] == [("product", 1)]  # e1 only
    widget.as_of = ""
    assert sum(r["events"] for r in _rows(widget)) == 2


def test_errors_go_to_the_error_area(store: Store) -> None:
    widget = DataHealthWidget(store)
    widget.segment_picker.value = "Partner"  # customers, but no events: not raised
    assert "EmptyResultError" in widget.error
    assert "no events for segment &#x27;Partner&#x27;" in widget.errors.value  # escaped HTML
    assert widget.live.spec["title"] == "Weekly events by source — Partner"
    assert widget.live.spec["mark"]["type"] == "text"  # the placeholder
    widget.segment_picker.value = "SMB"  # recovers
    assert widget.error == ""
    assert widget.errors.value == ""
    assert widget.live.spec["title"] == "Weekly events by source — SMB"


def test_unknown_segment_from_a_url_is_reported_and_escaped(store: Store) -> None:
    widget = DataHealthWidget(store, segment="<b>Foo</b>")
    assert widget.segment_picker.value == "all"  # not an option: the picker does not take it
    assert "matches no customer" in widget.error
    assert "&lt;b&gt;Foo&lt;/b&gt;" in widget.errors.value
    assert "<b>Foo" not in widget.errors.value


def test_bad_sample_n_is_shown_not_raised(store: Store) -> None:
    widget = DataHealthWidget(store)
    widget.sample_n = -3
    assert "ValueError" in widget.error
    assert "sample_n must be 0" in widget.errors.value
    widget.sample_n = 1
    assert widget.error == ""


def test_live_chart_replaces_the_page_built_chart_once_then_updates_in_place() -> None:
    import altair as alt

    from journeylib.widgets.base import LiveChart, error_html

    area = LiveChart(alt.Chart().mark_point().properties(title="a"))
    built_with_page = area.widget
    area.chart = alt.Chart().mark_point().properties(title="a")  # the same chart: nothing sent
    assert area.widget is built_with_page
    assert not area.replaced
    area.chart = alt.Chart().mark_point().properties(title="b")
    assert area.replaced
    assert area.widget is not built_with_page
    assert area.children == (area.widget,)
    assert built_with_page.comm is None  # closed
    fresh = area.widget
    area.chart = alt.Chart().mark_point().properties(title="c")
    assert area.widget is fresh
    assert area.spec["title"] == "c"
    assert error_html("") == ""
    assert error_html("ValueError: <b>") == (
        '<div class="journeylib-error" style="color:#a40000;background:#fff1f0;border:1px solid #f3b7b2;'
        'padding:6px 10px;border-radius:4px">ValueError: &lt;b&gt;</div>'
    )


def test_live_chart_updates_in_place() -> None:
    from journeylib.charts.common import placeholder_chart
    from journeylib.widgets.base import EMBED_OPTIONS, live_chart

    live = live_chart(placeholder_chart(title="before"))
    assert live.embed_options == EMBED_OPTIONS
    live.chart = placeholder_chart(title="after")
    assert live.spec["title"] == "after"


# -- built from an analysis context ---------------------------------------------------------------------------
def test_from_journey_takes_store_and_scope_from_the_context(store: Store) -> None:
    journey = Journey(store, None, Scope.build(store))  # data health needs no journey definition
    volume = journey.source_volume_data()  # what the notebook computed above the widget
    widget = DataHealthWidget.from_journey(journey)
    assert widget.journey is journey
    assert (widget.segment, widget.as_of, widget.sample_n) == ("all", "2024-03-12T09:00:00+00:00", 0)  # the latest event
    pd.testing.assert_frame_equal(widget.data, volume)
    pd.testing.assert_frame_equal(widget.data, DataHealthWidget(store).data)  # the same view as the constructor's
    widget.segment_picker.value = "SMB"  # computed on journey.with_scope(segment="SMB")
    assert widget.live.spec["title"] == "Weekly events by source — SMB"
    pd.testing.assert_frame_equal(widget.data, journey.with_scope(segment="SMB").source_volume_data())


def test_from_journey_starts_at_the_scope_segment_and_shows_errors(store: Store) -> None:
    journey = Journey(store, None, Scope.build(store, segment="SMB", as_of="2024-03-04"))
    widget = DataHealthWidget.from_journey(journey)
    assert (widget.segment_picker.value, widget.as_of) == ("SMB", "2024-03-04")
    assert [(r["source"], r["events"]) for r in _rows(widget)] == [("product", 1)]  # e1 only, as the constructor shows
    widget.segment_picker.value = "Partner"  # customers, but no events: shown, not raised
    assert "EmptyResultError" in widget.error
    assert "no events for segment &#x27;Partner&#x27;" in widget.errors.value
    widget.segment = "<b>Foo</b>"  # e.g. from a URL: the derived scope cannot be built
    assert "ScopeError" in widget.error
    assert "&lt;b&gt;Foo&lt;/b&gt;" in widget.errors.value
    widget.segment_picker.value = "all"
    assert widget.error == ""
    assert sum(r["events"] for r in _rows(widget)) == 1  # still as of 2024-03-04: the context's as_of is kept


def test_from_journey_rejects_scope_filters_and_other_contexts(store: Store) -> None:
    journey = Journey(store, None, Scope.build(store))
    with pytest.raises(TypeError, match=r"segment cannot be given: .*journey\.with_scope\(segment=\.\.\.\)"):
        DataHealthWidget.from_journey(journey, segment="SMB")
    with pytest.raises(TypeError, match=r"journey must be a journeylib\.Journey"):
        DataHealthWidget.from_journey(store)  # type: ignore[arg-type]


def test_scope_filters_read_back_to_the_same_scope(store: Store) -> None:
    scope = Scope.build(store, as_of="2024-03-04", segment="SMB", signup_from="2024-01-01", sample_n=1, random_state=3)
    values = scope_filters(scope)
    assert values == {"as_of": "2024-03-04", "segment": "SMB", "plan": "all", "signup_from": "2024-01-01", "signup_to": "",
                      "sample_n": 1, "random_state": 3}
    assert Scope.build(store, **values) == scope
    latest = Scope.build(store)
    assert Scope.build(store, **scope_filters(latest)) == latest


def test_voice_widget_from_journey() -> None:
    voice = pd.DataFrame({"ticket_id": ["a", "b"], "stage": ["Trial", "Paid"], "stage_order": [0, 1],
                          "emotion": ["frustration", "satisfaction"], "compound": [-0.6, 0.5], "segment": ["SMB", "Enterprise"],
                          "created_at": pd.to_datetime(["2025-01-02", "2025-02-03"], utc=True)})
    store = Store(":memory:")
    try:
        store.insert("customers", CUSTOMERS)
        store.insert("events", EVENTS)
        journey = Journey(store, None, Scope.build(store))
        widget = VoiceOfCustomerWidget.from_journey(journey, voice=voice, segment="SMB")
        assert widget.journey is journey
        assert widget.voice is voice
        assert widget.live.spec["title"] == "Emotion by journey stage — SMB"
        pd.testing.assert_frame_equal(widget.data, VoiceOfCustomerWidget(voice, segment="SMB").data)
        assert widget.stage_picker.options == ("all", "Trial")  # no SMB ticket in Paid: not offered
        widget.stage = "Paid"  # set in code: the sentence and the selection, not a red error
        assert widget.error == ""
        assert widget.errors.value == ""
        assert widget.empty == "No tickets for this choice. (segment SMB, stage Paid, topic all, period all)"
        assert "journeylib-empty" in widget.notice.value
        with pytest.raises(TypeError, match=r"journey must be a journeylib\.Journey"):
            VoiceOfCustomerWidget.from_journey(voice)  # type: ignore[arg-type]
    finally:
        store.close()


def _voice_world(seed: int = 7, n: int = 60) -> pd.DataFrame:
    """Scored, staged tickets with topics, spread so that many selections are empty."""
    rng = np.random.default_rng(seed)
    stages = ["Trial", "Onboarding", "Paid"]
    stage = rng.choice([*stages, NO_STAGE], n, p=[0.4, 0.3, 0.2, 0.1])
    return pd.DataFrame({
        "ticket_id": [f"t{i}" for i in range(n)],
        "stage": stage,
        "stage_order": [stages.index(s) if s in stages else -1 for s in stage],
        "emotion": rng.choice(["frustration", "satisfaction", "neutral", UNSCORED], n),
        "compound": rng.uniform(-1, 1, n),
        "segment": rng.choice(["SMB", "Mid-market", "Enterprise"], n, p=[0.6, 0.3, 0.1]),
        "topic_label": rng.choice(["billing", "login", "a very rare topic"], n, p=[0.5, 0.45, 0.05]),
        "created_at": pd.Timestamp("2025-01-01", tz="UTC") + pd.to_timedelta(rng.integers(0, 270, n), unit="D"),
    })


def _has_tickets(voice: pd.DataFrame, **selection: str) -> bool:
    """Oracle: whether the wrapped computation returns rows for *selection*."""
    try:
        return not emotion_by_stage_data(voice, **selection).empty
    except EmptyResultError:
        return False


@pytest.mark.parametrize("seed", [1, 7, 11])
def test_voice_pickers_offer_only_values_with_tickets(seed: int) -> None:
    voice = _voice_world(seed)
    widget = VoiceOfCustomerWidget(voice)
    pickers = {"segment": widget.segment_picker, "stage": widget.stage_picker, "topic": widget.topic_picker,
               "period": widget.period_picker}
    everything = {name: widget.available_options(name) for name in pickers}
    # walk: choose each offered value of each picker in turn, keeping the earlier choices
    for name, picker in pickers.items():
        for value in picker.options:
            picker.value = value
            assert widget.error == "", (name, value, widget.error)
            assert widget.empty == "", (name, value, widget.empty)
            assert widget.data is not None
            # the options of every picker agree with the computation on the current selection
            current = {n: getattr(widget, n) for n in pickers}
            for other, other_picker in pickers.items():
                expected = [v for v in everything[other] if v == "all" or _has_tickets(voice, **{**current, other: v})]
                if current[other] not in expected:
                    expected.append(current[other])
                assert list(other_picker.options) == expected, (other, current)
        picker.value = picker.options[-1]


def test_voice_empty_choice_says_so_with_its_scope_and_unknown_value_stays_an_error() -> None:
    voice = pd.DataFrame({"ticket_id": ["a", "b", "c"], "stage": ["Trial", "Paid", "Trial"], "stage_order": [0, 1, 0],
                          "emotion": ["frustration", "satisfaction", UNSCORED], "compound": [-0.6, 0.5, 0.0],
                          "segment": ["SMB", "Enterprise", "Enterprise"], "topic_label": ["billing", "login", "billing"],
                          "created_at": pd.to_datetime(["2025-01-02", "2025-02-03", "2025-02-04"], utc=True)})
    widget = VoiceOfCustomerWidget(voice, segment="Enterprise")
    # Enterprise's billing ticket has no emotion label: billing is not offered for Enterprise
    assert widget.topic_picker.options == ("all", "login")
    widget.topic = "billing"  # e.g. from a URL
    assert widget.empty == "No tickets for this choice. (segment Enterprise, stage all, topic billing, period all)"
    assert widget.error == ""
    assert "No tickets for this choice." in json.dumps(widget.live.spec)
    assert widget.topic_picker.value == "billing"  # the dropdown shows what is selected
    widget.segment = "SMB"
    assert widget.empty == ""
    assert widget.data is not None
    assert set(widget.data["topic"]) == {"billing"}
    widget.topic = "shipping"  # a topic the tickets do not have at all: the red error naming the known ones
    assert widget.empty == ""
    assert "topic_label='shipping' matches no ticket" in widget.error
    assert "journeylib-error" in widget.errors.value
    with pytest.raises(ValueError, match="name='colour' is not a picker; allowed: segment, stage, topic, period"):
        widget.available_options("colour")


def test_widget_chart_javascript_is_bundled_once_and_reused_by_later_kernels(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import altair as alt
    import vl_convert

    monkeypatch.setenv("JOURNEYLIB_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(alt.JupyterChart, "_is_offline", False)
    monkeypatch.setattr(alt.JupyterChart, "_esm", alt.JupyterChart._esm)
    assert setup_altair("dashboard") == "dashboard"  # bundles with vl-convert and keeps the bundle
    (kept,) = tmp_path.glob("jupyterchart-*.js")
    bundle = alt.JupyterChart._esm
    assert len(bundle) > 100_000
    assert kept.read_text(encoding="utf-8") == bundle

    def no_bundling(*args: object, **kwargs: object) -> str:
        raise AssertionError("vl_convert.javascript_bundle called although the bundle was kept")

    monkeypatch.setattr(vl_convert, "javascript_bundle", no_bundling)
    monkeypatch.setattr(alt.JupyterChart, "_is_offline", False)  # a new kernel
    monkeypatch.setattr(alt.JupyterChart, "_esm", "")
    assert setup_altair("dashboard") == "dashboard"
    assert alt.JupyterChart._esm == bundle
    assert alt.JupyterChart._is_offline
