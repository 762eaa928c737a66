"""Tests of journeylib.widgets: construct headless, change traits, read the chart spec."""

from __future__ import annotations

import inspect

import pandas as pd
import pytest

from journeylib import health
from journeylib.store import Store
from journeylib.widgets import DataHealthWidget

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
