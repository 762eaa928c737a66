"""Tests of journeylib.charts.health, journeylib.charts.common and journeylib.charts.theme: spec fragments, theme."""

from __future__ import annotations

import altair as alt
import pandas as pd
import pytest
import vl_convert as vlc

from journeylib import health
from journeylib.charts import health as charts
from journeylib.charts import theme
from journeylib.charts.common import placeholder_chart, scoped_title
from journeylib.store import Store

CUSTOMERS = pd.DataFrame(
    {
        "customer_id": ["c1", "c2", "c3"],
        "segment": ["SMB", "SMB", "Enterprise"],
        "plan": ["pro", "free", "pro"],
        "signup_at": ["2024-01-01T00:00:00Z"] * 3,
    }
)
# c1: 2 product events in W10, 1 support in W12; c3: 1 product event in W11
EVENTS = pd.DataFrame(
    {
        "event_id": ["e1", "e2", "e3", "e4"],
        "customer_id": ["c1", "c1", "c1", "c3"],
        "timestamp": ["2024-03-04T09:00:00Z", "2024-03-05T09:00:00Z", "2024-03-20T09:00:00Z", "2024-03-12T09:00:00Z"],
        "event": ["login", "login", "ticket_created", "login"],
        "source": ["product", "product", "support", "product"],
    }
)
QUARANTINE = pd.DataFrame(
    {
        "run": ["r"] * 3,
        "source": ["product"] * 3,
        "file": ["a.csv"] * 3,
        "line": [2, 3, 4],
        "reason": ["column event: required value is empty"] * 2 + ["not valid JSON: Expecting value at column 3"],
        "ingested_at": ["2024-03-25T00:00:00Z"] * 3,
    }
)


@pytest.fixture(scope="module")
def store() -> Store:
    s = Store(":memory:")
    s.insert("customers", CUSTOMERS)
    s.insert("events", EVENTS)
    s.insert("quarantine", QUARANTINE)
    yield s
    s.close()


def _values(spec: dict) -> list[dict]:
    """The inline rows of a chart spec (Altair puts them under ``datasets``)."""
    (rows,) = spec["datasets"].values()
    return rows


def test_source_volume_chart_encodes_the_weekly_frame(store: Store) -> None:
    data = health.source_volume_data(store)
    spec = charts.source_volume_chart(data).to_dict()
    assert spec["facet"]["row"]["field"] == "source"
    assert spec["resolve"]["scale"]["y"] == "independent"  # a small feed's gap stays visible
    inner = spec["spec"]
    assert inner["mark"] == {"type": "line", "point": True}
    assert inner["encoding"]["x"]["field"] == "week_start"
    assert inner["encoding"]["x"]["type"] == "temporal"
    assert inner["encoding"]["y"]["field"] == "events"
    assert inner["encoding"]["y"]["type"] == "quantitative"
    assert inner["encoding"]["y"]["axis"] == {"format": ",d", "tickMinStep": 1}  # counts: no 0.5 ticks
    assert inner["encoding"]["color"]["field"] == "source"
    assert spec["title"] == "Weekly events by source"
    rows = _values(spec)
    assert len(rows) == len(data) == 6  # 2 sources x 3 weeks, the zero weeks included
    assert sum(r["events"] for r in rows) == 4
    assert {"source", "week_start", "events"} <= set(rows[0])


def test_titles_name_the_segment_when_filtered(store: Store) -> None:
    smb = health.source_volume_data(store, segment="SMB")
    assert charts.source_volume_chart(smb).to_dict()["title"] == "Weekly events by source — SMB"
    assert charts.source_volume_chart(smb, title="Volume").to_dict()["title"] == "Volume — SMB"
    assert charts.event_type_chart(health.event_type_data(store, segment="Enterprise")).to_dict()["title"] == (
        "Events by type — Enterprise"
    )
    coverage = health.coverage_data(store, segment="SMB")
    assert charts.coverage_chart(coverage).to_dict()["title"] == "Timeline coverage by source — SMB"
    mix = health.customer_mix_data(store, segment="SMB")
    assert charts.customer_mix_chart(mix).to_dict()["title"] == "Customers by segment and plan — SMB"
    assert (
        charts.customer_mix_chart(health.customer_mix_data(store)).to_dict()["title"] == "Customers by segment and plan"
    )


def test_customer_mix_chart_stacks_plans(store: Store) -> None:
    spec = charts.customer_mix_chart(health.customer_mix_data(store)).to_dict()
    assert spec["mark"]["type"] == "bar"
    assert spec["encoding"]["y"]["field"] == "segment"
    assert spec["encoding"]["x"]["field"] == "customers"
    assert spec["encoding"]["x"]["stack"] == "zero"
    assert spec["encoding"]["color"]["field"] == "plan"
    formats = {t["field"]: t.get("format") for t in spec["encoding"]["tooltip"]}
    assert formats["share_of_total"] == ".1%"


def test_event_type_chart_sorts_by_count(store: Store) -> None:
    spec = charts.event_type_chart(health.event_type_data(store)).to_dict()
    assert spec["encoding"]["y"]["field"] == "event"
    assert spec["encoding"]["y"]["sort"] == "-x"
    assert [r["event"] for r in _values(spec)] == ["login", "ticket_created"]


def test_coverage_chart_spans_first_to_last(store: Store) -> None:
    spec = charts.coverage_chart(health.coverage_data(store)).to_dict()
    span, first, last = spec["layer"]
    assert span["mark"]["type"] == "bar"
    assert span["encoding"]["x"]["field"] == "first_timestamp"
    assert span["encoding"]["x2"]["field"] == "last_timestamp"
    assert (first["mark"]["type"], last["mark"]["type"]) == ("tick", "tick")
    assert [r["source"] for r in _values(spec)] == ["product", "support", health.ALL_SOURCES]


def test_quarantine_reasons_chart_in_rank_order(store: Store) -> None:
    data = health.quarantine_reasons_data(store)
    spec = charts.quarantine_reasons_chart(data).to_dict()
    assert spec["encoding"]["y"]["sort"] == {"field": "rank", "order": "ascending"}
    assert [(r["rank"], r["rows"]) for r in _values(spec)] == [(1, 2), (2, 1)]
    assert spec["title"] == "Top quarantine reasons"


def test_quarantine_reasons_chart_with_nothing_quarantined() -> None:
    with Store(":memory:") as empty:
        spec = charts.quarantine_reasons_chart(health.quarantine_reasons_data(empty)).to_dict()
    assert _values(spec) == []


def test_charts_use_the_theme_only(store: Store) -> None:
    built = [
        charts.source_volume_chart(health.source_volume_data(store)),
        charts.customer_mix_chart(health.customer_mix_data(store)),
        charts.event_type_chart(health.event_type_data(store)),
        charts.quarantine_reasons_chart(health.quarantine_reasons_data(store)),
        placeholder_chart(title="x"),
    ]
    for chart in built:
        spec = chart.to_dict()
        assert spec["config"]["font"] == theme.FONT
        assert spec["config"]["range"]["category"] == list(theme.PALETTE)
        mark = spec["spec"]["mark"] if "facet" in spec else spec["mark"]
        assert not {"color", "font", "fontSize", "fill", "size"} & set(mark)  # no per-chart styling


@pytest.mark.parametrize(
    ("chart", "frame"),
    [
        (charts.source_volume_chart, pd.DataFrame({"source": ["a"]})),
        (charts.customer_mix_chart, pd.DataFrame({"segment": ["a"]})),
        (charts.event_type_chart, pd.DataFrame({"event": ["a"]})),
        (charts.coverage_chart, pd.DataFrame({"source": ["a"]})),
        (charts.quarantine_reasons_chart, pd.DataFrame({"reason": ["a"]})),
    ],
)
def test_charts_reject_frames_from_elsewhere(chart, frame: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match=r"lacks column\(s\) .* pass the DataFrame returned by journeylib\.health\."):
        chart(frame)


def test_charts_reject_non_frames() -> None:
    with pytest.raises(
        TypeError, match=r"data must be the DataFrame returned by journeylib\.health\.source_volume_data"
    ):
        charts.source_volume_chart([{"source": "a"}])  # type: ignore[arg-type]


def test_scoped_title() -> None:
    assert scoped_title("T", pd.DataFrame({"segment": ["all", "all"]})) == "T"
    assert scoped_title("T", pd.DataFrame({"segment": ["SMB", "Enterprise"]})) == "T"
    assert scoped_title("T", pd.DataFrame({"x": [1]})) == "T"
    assert scoped_title("T", pd.DataFrame({"segment": ["Mid-market"]})) == "T — Mid-market"


def test_static_svg_carries_the_title_text(store: Store) -> None:
    # What the offline HTML report shows: vl-convert SVG with the title as <text>.
    chart = charts.source_volume_chart(health.source_volume_data(store, segment="SMB"))
    svg = vlc.vegalite_to_svg(chart.to_dict())
    assert "Weekly events by source — SMB" in svg


# -- theme ---------------------------------------------------------------------------------


def test_theme_is_registered_and_enabled() -> None:
    assert theme.THEME_NAME in alt.theme.names()
    assert alt.theme.active == theme.THEME_NAME


def test_charts_do_not_pay_for_jsonschemas_iri_grammar() -> None:
    """altair's jsonschema would build rfc3987_syntax's grammar (about 1 s of every kernel); journeylib keeps it out."""
    import subprocess
    import sys

    code = (
        "import sys, altair as alt, pandas as pd\n"
        "import journeylib.charts.journey\n"  # a chart module, as a notebook's import cell has it
        "spec = alt.Chart(pd.DataFrame({'a': [1]})).mark_bar().encode(x='a:Q').to_dict()\n"  # validated against the schema
        "print(sys.modules.get('rfc3987_syntax') is None, spec['mark']['type'])\n"
    )
    out = subprocess.run([sys.executable, "-c", "import journeylib\n" + code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.split() == ["True", "bar"]
