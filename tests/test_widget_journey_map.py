"""JourneyMapWidget: construct headless (from a store or an analysis context), change pickers and traits, read the chart specs."""

from __future__ import annotations

import inspect
from pathlib import Path

import pandas as pd
import pytest
from _browser import NetworkGuard, new_page
from _builders import T0

from journeylib.config.journey import JourneyDefinition
from journeylib.context import Journey
from journeylib.journey import stages, transitions
from journeylib.scope import Scope
from journeylib.store import Store
from journeylib.widgets.journey_map import JourneyMapWidget

DEF = JourneyDefinition.from_dict(
    {"name": "w", "stages": [{"name": "Trial", "rule": "signup"}, {"name": "Setup", "rule": {"event": "setup"}}, {"name": "Value", "rule": {"event": "project"}}]}
)
# SMB: a (Trial → Setup → Value) and b (Trial); Enterprise: c (Trial → Setup), signed up in Q2 on the pro plan
CUSTOMERS = pd.DataFrame(
    {
        "customer_id": ["a", "b", "c"],
        "segment": ["SMB", "SMB", "Enterprise"],
        "plan": ["starter", "starter", "pro"],
        "signup_at": [T0, T0, T0 + pd.Timedelta(days=100)],
    }
)
EVENTS = pd.DataFrame(
    {
        "event_id": ["e1", "e2", "e3", "e4"],
        "customer_id": ["a", "a", "c", "b"],
        "timestamp": [T0 + pd.Timedelta(days=d) for d in (1, 2, 101, 3)],
        "event": ["setup", "project", "setup", "login"],
    }
)


@pytest.fixture
def store() -> Store:
    s = Store(":memory:")
    s.insert("customers", CUSTOMERS)
    s.insert("events", EVENTS)
    yield s
    s.close()


def _rows(live) -> list[dict]:
    return [row for rows in live.spec["datasets"].values() for row in rows]


def test_data_parameters_are_the_shared_scope_of_the_wrapped_computations(store: Store) -> None:
    funnel_params = list(inspect.signature(stages.funnel_data).parameters)
    flow_params = list(inspect.signature(transitions.flow_data).parameters)
    scope = [p for p in JourneyMapWidget.DATA_PARAMETERS if p != "stage"]
    assert set(scope) <= set(funnel_params) & set(flow_params)
    assert "from_stage" in flow_params
    w = JourneyMapWidget(store, DEF)
    assert set(JourneyMapWidget.DATA_PARAMETERS) <= set(w.trait_names())
    assert w.data_parameters() == {"as_of": None, "segment": "all", "plan": "all", "signup_from": None, "signup_to": None, "sample_n": 0}
    assert w.compute_funnel is stages.funnel_data
    assert w.compute_flow is transitions.flow_data


def test_initial_state(store: Store) -> None:
    w = JourneyMapWidget(store, DEF)
    assert w.segment_picker.options == ("all", "Enterprise", "SMB")
    assert w.plan_picker.options == ("all", "pro", "starter")
    assert w.period_picker.options == ("all", "2025Q1 (2)", "2025Q2 (1)")
    assert w.stage_picker.options == ("all", "Trial", "Setup", "Value")
    assert w.funnel_live.spec["title"] == "Journey funnel"
    assert w.flow_live.spec["title"] == "Customer flow through the milestones"
    assert w.error == ""
    assert w.errors.value == ""
    assert w.children[1] is w.errors
    assert w.children[2] is w.funnel_live
    assert w.children[3] is w.flow_live
    assert int(w.funnel.loc[0, "eligible"]) == 3


def test_pickers_recompute_in_place(store: Store) -> None:
    w = JourneyMapWidget(store, DEF)
    funnel_live, flow_live = w.funnel_live, w.flow_live
    w.segment_picker.value = "SMB"  # what a user does in the browser
    assert w.segment == "SMB"
    assert w.funnel_live is funnel_live  # same widgets, new charts
    assert w.flow_live is flow_live
    assert w.funnel_live.spec["title"] == "Journey funnel — SMB"
    assert w.flow_live.spec["title"] == "Customer flow through the milestones — SMB"
    assert int(w.funnel.loc[0, "eligible"]) == 2
    w.segment_picker.value = "all"
    w.period_picker.value = "2025Q2 (1)"
    assert (w.signup_from, w.signup_to) == ("2025-04-01", "2025-07-01")
    assert int(w.funnel.loc[0, "eligible"]) == 1  # c
    w.period_picker.value = "all"
    assert (w.signup_from, w.signup_to) == ("", "")
    w.plan_picker.value = "starter"
    assert int(w.funnel.loc[0, "eligible"]) == 2
    w.stage_picker.value = "Setup"
    nodes = [r for r in _rows(w.flow_live) if r["element"] == "node" and r["step"] == 0]
    assert [(r["node"], r["customers"]) for r in nodes] == [("Setup", 1)]  # a: the only starter who met Setup


def test_errors_are_shown_not_raised(store: Store) -> None:
    w = JourneyMapWidget(store, DEF)
    w.segment = "Partner"  # e.g. from a URL: not in the store
    assert "segment 'Partner' matches no customer" in w.error
    assert "journeylib-error" in w.errors.value
    assert w.funnel_live.spec["title"] == "Journey funnel — Partner"
    assert w.funnel_live.spec["mark"]["type"] == "text"  # the placeholder
    w.segment = "Enterprise"
    assert w.error == ""
    assert w.errors.value == ""
    w.stage = "Value"  # no Enterprise customer met Value
    assert "met 'Value'" in w.error


def test_initial_values_are_applied(store: Store) -> None:
    w = JourneyMapWidget(store, DEF, segment="Enterprise", signup_from="2025-04-01", signup_to="2025-07-01", stage="Setup")
    assert w.segment_picker.value == "Enterprise"
    assert w.period_picker.value == "2025Q2 (1)"
    assert w.stage_picker.value == "Setup"
    # the title states the whole scope: segment and signup period
    assert w.funnel_live.spec["title"] == "Journey funnel — Enterprise, signups 2025-04-01 to 2025-07-01"


# -- built from an analysis context ---------------------------------------------------------------
@pytest.fixture
def journey(store: Store) -> Journey:
    """The notebook's context, after the notebook computed the funnel and the flow (one milestone pass)."""
    j = Journey(store, DEF, Scope.build(store))
    j.funnel_data()
    j.flow_data(n_steps=5)
    assert j.cache.computed["milestones"] == 1
    return j


def test_from_journey_reuses_the_notebooks_milestones(journey: Journey, store: Store) -> None:
    w = JourneyMapWidget.from_journey(journey, n_steps=5)
    assert journey.cache.computed["milestones"] == 1  # the first view makes no new pass
    assert w.journey is journey
    assert w.definition is journey.definition
    pd.testing.assert_frame_equal(w.funnel, journey.funnel_data())
    pd.testing.assert_frame_equal(w.flow, journey.flow_data(n_steps=5))
    twin = JourneyMapWidget(store, DEF)  # the constructor shows the same
    pd.testing.assert_frame_equal(w.funnel, twin.funnel)
    pd.testing.assert_frame_equal(w.flow, twin.flow)
    assert w.funnel_live.spec == twin.funnel_live.spec


def test_from_journey_picks_compute_once_per_scope(journey: Journey, store: Store) -> None:
    w = JourneyMapWidget.from_journey(journey)
    w.segment_picker.value = "SMB"  # a new scope: one pass
    assert journey.cache.computed["milestones"] == 2
    assert int(w.funnel.loc[0, "eligible"]) == 2
    w.segment_picker.value = "all"  # back to the notebook's scope: nothing computed
    assert journey.cache.computed["milestones"] == 2
    assert int(w.funnel.loc[0, "eligible"]) == 3
    w.segment_picker.value = "SMB"  # seen before: nothing computed
    assert journey.cache.computed["milestones"] == 2
    w.stage_picker.value = "Setup"  # not a scope filter: the flow from the same frame
    assert journey.cache.computed["milestones"] == 2
    pd.testing.assert_frame_equal(w.flow, journey.with_scope(segment="SMB").flow_data(from_stage="Setup"))
    w.period_picker.value = "2025Q1 (2)"
    assert journey.cache.computed["milestones"] == 3
    twin = JourneyMapWidget(store, DEF, segment="SMB", signup_from="2025-01-01", signup_to="2025-04-01", stage="Setup")
    pd.testing.assert_frame_equal(w.funnel, twin.funnel)
    pd.testing.assert_frame_equal(w.flow, twin.flow)


def test_from_journey_starts_at_the_context_scope_and_shows_errors(store: Store) -> None:
    j = Journey(store, DEF, Scope.build(store, segment="Enterprise", signup_from="2025-04-01", signup_to="2025-07-01"))
    w = JourneyMapWidget.from_journey(j, stage="Setup")
    assert (w.segment_picker.value, w.period_picker.value, w.stage_picker.value) == ("Enterprise", "2025Q2 (1)", "Setup")
    assert (w.signup_from, w.signup_to) == ("2025-04-01", "2025-07-01")
    assert w.funnel_live.spec["title"] == "Journey funnel — Enterprise, signups 2025-04-01 to 2025-07-01"
    assert j.cache.computed["milestones"] == 1
    w.segment = "Partner"  # e.g. from a URL: not in the store
    assert "segment 'Partner' matches no customer" in w.error
    assert "journeylib-error" in w.errors.value
    assert w.funnel_live.spec["mark"]["type"] == "text"  # the placeholder
    w.segment = "Enterprise"
    assert w.error == ""
    assert j.cache.computed["milestones"] == 1
    w.stage = "Value"  # no Enterprise customer met Value
    assert "met 'Value'" in w.error


def test_from_journey_rejects_what_the_context_gives(journey: Journey) -> None:
    with pytest.raises(TypeError, match=r"plan, segment cannot be given: .*with_scope\(plan=\.\.\., segment=\.\.\.\)"):
        JourneyMapWidget.from_journey(journey, segment="SMB", plan="pro")
    with pytest.raises(TypeError, match="definition cannot be given"):
        JourneyMapWidget.from_journey(journey, definition=DEF)


# -- a real browser: the notebook as a Voila dashboard ---------------------------------------------
ROOT = Path(__file__).resolve().parents[1]
WIDGET = ".journeylib-journey-map"
CHART_AREAS = {"funnel": f"{WIDGET} .journeylib-funnel", "flow": f"{WIDGET} .journeylib-flow"}
# The texts of the chart drawn in an area, and its SVG (to tell a redrawn picture from the old one).
DRAWN = """(sel) => { const svg = document.querySelector(sel + ' svg');
  return svg ? {texts: [...svg.querySelectorAll('text')].map(t => t.textContent.trim()).filter(Boolean), svg: svg.outerHTML}
             : {texts: [], svg: null}; }"""
# True when an area draws a chart with the wanted title and texts, and a picture other than `before`.
SHOWS = """([sel, title, texts, before]) => { const svg = document.querySelector(sel + ' svg');
  if (!svg) return false;
  const drawn = new Set([...svg.querySelectorAll('text')].map(t => t.textContent.trim()));
  return drawn.has(title) && texts.every(t => drawn.has(t)) && (before === null || svg.outerHTML !== before); }"""


def _expected(w: JourneyMapWidget) -> dict[str, tuple[str, list[str]]]:
    """What each chart area must draw for the headless twin's state: its title, and for the flow its node labels."""
    labels = sorted(set(w.flow.loc[w.flow["element"] == "node", "label"].astype(str))) if w.flow is not None else []
    return {"funnel": (w.funnel_live.spec["title"], []), "flow": (w.flow_live.spec["title"], labels)}


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_voila_journey_map_pickers_redraw_every_chart_in_a_real_browser(demo_store, tmp_path, browser, time_to_usable) -> None:
    """01_journey_map under Voila: each picker of the widget redraws the funnel and the flow, on loopback only.

    A headless twin of the widget (same store and definition) receives the
    same picks and says what each chart must show: titles, the flow's node
    labels, and whether the funnel changed at all (then its picture must
    differ from the one before the pick).
    """
    sync_api = pytest.importorskip("playwright.sync_api")
    from journeylib.reports.dashboard import find_free_port, start_dashboard, stop_dashboard, wait_until_ready

    store = Store(demo_store, read_only=True)
    twin = JourneyMapWidget(store, JourneyDefinition.load(ROOT / "parameters" / "journeys" / "saas.yaml"), n_steps=5)
    # (picker index in the widget, option label) as a user picks them; each changes the flow, the last two the funnel too
    picks = [(0, "Mid-market"), (3, "First Value Achieved"), (1, "pro"), (2, twin.period_picker.options[2])]

    port = find_free_port()
    log = tmp_path / "voila.log"
    process = start_dashboard(ROOT / "notebooks", port=port, db=demo_store, notebook="01_journey_map", execution_timeout=240, log=log)
    guard = NetworkGuard(allow_loopback=True, allow_files=False)
    console: list[tuple[str, str]] = []

    def wait_until_drawn(page, step: str, want: dict[str, tuple[str, list[str]]], before: dict[str, str | None], timeout_ms: int) -> None:
        for area, (title, texts) in want.items():
            try:
                page.wait_for_function(SHOWS, arg=[CHART_AREAS[area], title, texts, before.get(area)], timeout=timeout_ms)
            except sync_api.TimeoutError:
                page.screenshot(path=str(tmp_path / "voila-failed.png"), full_page=True)
                drawn = page.evaluate(DRAWN, CHART_AREAS[area])
                pytest.fail(
                    f"{step}: the widget's {area} chart was not redrawn as {title!r} with {texts} within {timeout_ms / 1000:.0f} s"
                    f"{' (its picture did not change)' if before.get(area) is not None and drawn['svg'] == before[area] else ''}; "
                    f"texts drawn: {drawn['texts'][:40]}; browser console: {[f'{k}: {m}'[:300] for k, m in console[-15:]]}; "
                    f"Voila log tail:\n{log.read_text(errors='replace')[-3000:]}"
                )

    try:
        url = wait_until_ready(port, 60, process=process)
        page = new_page(browser, guard, console, width=1300, height=1000)
        try:
            time_to_usable.open(
                page, url, lambda: wait_until_drawn(page, "initial page", _expected(twin), {}, 180_000),
                timeout_ms=180_000, notebook="01_journey_map",
            )
            selects = page.locator(f"{WIDGET} .widget-dropdown select")
            selects.first.scroll_into_view_if_needed()
            page.screenshot(path=str(tmp_path / "voila-initial.png"))
            for index, label in picks:
                before = {area: page.evaluate(DRAWN, sel)["svg"] for area, sel in CHART_AREAS.items()}
                funnel_spec = twin.funnel_live.spec
                [twin.segment_picker, twin.plan_picker, twin.period_picker, twin.stage_picker][index].value = label
                assert twin.error == "", twin.error
                want = _expected(twin)
                must_change = {"flow": before["flow"], "funnel": before["funnel"] if twin.funnel_live.spec != funnel_spec else None}
                selects.nth(index).select_option(label=label)
                wait_until_drawn(page, f"after picking {label!r}", want, must_change, 60_000)
                assert page.locator(f"{WIDGET} .journeylib-error").count() == 0
            selects.first.scroll_into_view_if_needed()
            page.screenshot(path=str(tmp_path / "voila-picked.png"))
        finally:
            page.close()
    finally:
        stop_dashboard(process)
        store.close()
    assert guard.blocked == [] or all("fontawesome" in u for u in guard.blocked), f"the dashboard tried to leave 127.0.0.1: {guard.blocked}"
