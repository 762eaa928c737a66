"""DriversWidget and CohortsWidget: built headless, pickers recompute the live chart in place, errors are shown."""

from __future__ import annotations

import inspect

import pandas as pd
import pytest
from _browser import NetworkGuard, TimeToUsable, new_page
from _builders import ROOT, T0, day, journey_definition, memory_store

from journeylib.context import Journey
from journeylib.customers import cohorts, drivers
from journeylib.exceptions import StatisticalWarning
from journeylib.scope import Scope
from journeylib.store import Store
from journeylib.widgets.cohorts import CohortsWidget
from journeylib.widgets.drivers import DriversWidget

AS_OF = (T0 + pd.Timedelta(days=400)).isoformat()
DEF = journey_definition({"Trial": "signup", "Setup": {"event": "setup_completed"}}, outcomes=("churn", "conversion"))


@pytest.fixture
def store() -> Store:
    """120 customers in two segments; 80 convert; setup on day 2 goes with less churn (every window of the search splits alike; the longest, 30 days, is tested)."""
    customers, events = [], []
    for i in range(120):
        cid = f"c{i:03d}"
        setup = i % 2 == 0
        converted = i < 80
        churned = converted and ((not setup and i % 4 == 1) or (setup and i % 12 == 0))
        customers.append({"customer_id": cid, "segment": "SMB" if i % 3 else "Enterprise", "plan": "pro" if converted else "trial",
                          "signup_at": day(0), "converted_at": day(15) if converted else None,
                          "churned_at": day(100) if churned else None})
        events.append({"event_id": f"l{i}", "customer_id": cid, "timestamp": day(1 + i % 5), "event": "login", "source": "product"})
        if setup:
            events.append({"event_id": f"s{i}", "customer_id": cid, "timestamp": day(2), "event": "setup_completed", "source": "product"})
    s = memory_store(customers=customers, events=events)
    yield s
    s.close()


def test_drivers_widget_parameters_equal_the_wrapped_signature(store: Store) -> None:
    params = list(inspect.signature(drivers.drivers_data).parameters)
    assert list(DriversWidget.DATA_PARAMETERS) == params[1:]
    w = DriversWidget(store, definition=DEF, as_of=AS_OF, min_support=10, property_keys="region")
    got = w.data_parameters()
    assert set(got) == set(params[1:])
    assert (got["outcome"], got["window_days"], got["segment"], got["min_support"]) == ("churn", 0, "all", 10)
    assert got["definition"] is DEF
    assert got["property_keys"] == "region"
    assert got["horizon_days"] == 0.0


def test_drivers_widget_recomputes_in_place(store: Store) -> None:
    w = DriversWidget(store, definition=DEF, as_of=AS_OF, min_support=10)
    assert w.error == ""
    assert w.errors.value == ""
    assert w.live.spec["title"] == "Churn: behaviours in the first days (window chosen from the data)"
    assert "did not complete setup within 30 days" in w.lines.value
    assert "customers in scope are not analysed for churn" in w.notes.value  # caveats shown, not printed
    assert w.children[1] is w.errors
    assert w.children[2] is w.notes
    assert w.children[3] is w.live
    live = w.live
    w.segment_picker.value = "SMB"  # what a user does in the browser
    assert w.segment == "SMB"
    assert w.live is live
    assert w.live.spec["title"] == "Churn: behaviours in the first days (window chosen from the data) — SMB"
    w.outcome_picker.value = "conversion"
    w.window_picker.value = 14
    assert w.live.spec["title"] == "Conversion: behaviours in the first 14 days — SMB"
    assert w.data is not None
    assert set(w.data["outcome"]) == {"conversion"}
    w.support_picker.value = 100
    assert w.min_support == 100
    assert "lower the minimum support" in str(w.live.spec)  # nothing estimable: a placeholder, not an error
    assert w.error == ""


def test_drivers_widget_shows_errors_instead_of_raising(store: Store) -> None:
    w = DriversWidget(store, definition=DEF, as_of=AS_OF, min_support=10)
    w.outcome = "expansion"  # not in this definition (e.g. from a URL)
    assert w.error.startswith("ValueError: outcome 'expansion' is not in the journey definition")
    assert "journeylib-error" in w.errors.value
    assert w.live.spec["mark"]["type"] == "text"  # placeholder
    w.outcome = "churn"
    assert w.error == ""
    assert w.errors.value == ""


def test_cohorts_widget(store: Store) -> None:
    params = list(inspect.signature(cohorts.cohort_metrics_data).parameters)
    assert list(CohortsWidget.DATA_PARAMETERS) == params[1:]
    w = CohortsWidget(store, definition=DEF, as_of=AS_OF, min_support=10)
    got = w.data_parameters()
    assert got["metrics"] == ["conversion_rate", "stage", "time_to_value_days"]
    assert got["conversion_days"] == got["stage_days"] == 30.0
    assert w.error == ""
    assert w.live.spec["title"] == "Conversion by segment"
    live = w.live
    w.outcome_picker.value = "churn"
    assert w.live is live
    assert w.live.spec["title"] == "Churn by segment"
    assert set(w.data["metric"]) == {"churn_rate", "days_active"}
    w.segment_picker.value = "SMB"
    assert w.live.spec["title"] == "Churn by segment — SMB"
    w.by = "weather"
    assert w.error.startswith("ValueError: by='weather' is no cohort dimension")
    assert "journeylib-error" in w.errors.value


# -- built from an analysis context -------------------------------------------------------------------
@pytest.fixture
def journey(store: Store) -> Journey:
    return Journey(store, DEF, Scope.build(store, as_of=AS_OF))


def test_drivers_widget_from_journey_reuses_the_notebooks_features(journey: Journey, store: Store) -> None:
    with pytest.warns(StatisticalWarning) as caveats:  # the notebook's cell (its caveats go to its output)
        table = journey.drivers_data(outcome="churn", min_support=10, property_keys="region")
    assert any("not analysed for churn" in str(c.message) for c in caveats)
    computed = dict(journey.cache.computed)
    w = DriversWidget.from_journey(journey, min_support=10, property_keys="region")
    assert dict(journey.cache.computed) == computed  # the first view: no new feature table, no new milestone pass
    assert w.journey is journey
    assert (w.segment, w.as_of) == ("all", AS_OF)
    got = w.data_parameters()
    assert got["definition"] is journey.definition
    assert (got["plan"], got["random_state"], got["property_keys"]) == ("all", 0, "region")
    pd.testing.assert_frame_equal(w.data, table)
    twin = DriversWidget(store, definition=DEF, as_of=AS_OF, min_support=10, property_keys="region")
    pd.testing.assert_frame_equal(w.data, twin.data)
    assert (w.notes.value, w.lines.value) == (twin.notes.value, twin.lines.value)
    w.segment_picker.value = "SMB"  # a new scope: one feature table
    assert journey.cache.computed["features"] == computed["features"] + 1
    after_smb = dict(journey.cache.computed)
    w.segment_picker.value = "all"  # back: nothing computed
    w.segment_picker.value = "SMB"
    w.window_picker.value = 0  # unchanged (chosen from the data): nothing computed
    assert dict(journey.cache.computed) == after_smb
    twin.segment_picker.value = "SMB"
    pd.testing.assert_frame_equal(w.data, twin.data)
    w.outcome = "expansion"  # not in this definition (e.g. from a URL)
    assert w.error.startswith("ValueError: outcome 'expansion' is not in the journey definition")
    assert "journeylib-error" in w.errors.value
    w.outcome = "churn"
    assert w.error == ""


def test_drivers_widget_from_journey_keeps_the_context_filters(journey: Journey, store: Store) -> None:
    pro = journey.with_scope(plan="pro")  # a filter the widget has no picker for
    w = DriversWidget.from_journey(pro, min_support=10)
    assert w.data_parameters()["plan"] == "pro"
    twin = DriversWidget(store, definition=DEF, as_of=AS_OF, min_support=10, plan="pro")
    pd.testing.assert_frame_equal(w.data, twin.data)
    w.segment_picker.value = "SMB"  # the plan stays
    twin.segment_picker.value = "SMB"
    pd.testing.assert_frame_equal(w.data, twin.data)
    with pytest.raises(TypeError, match=r"segment cannot be given: .*DriversWidget\.from_journey\(journey\.with_scope\(segment=\.\.\.\)"):
        DriversWidget.from_journey(journey, segment="SMB")
    with pytest.raises(TypeError, match="cache cannot be given"):
        DriversWidget.from_journey(journey, cache=journey.cache)


def test_cohorts_widget_from_journey_reuses_the_notebooks_cohorts(journey: Journey, store: Store) -> None:
    with pytest.warns(StatisticalWarning):  # the notebook's cell (its caveats go to its output)
        journey.cohort_metrics_data(by="segment", min_support=10)
    computed = dict(journey.cache.computed)
    w = CohortsWidget.from_journey(journey, by="segment", outcome="conversion", min_support=10)
    assert dict(journey.cache.computed) == computed  # the first view: no new cohort frame, no new milestone pass
    twin = CohortsWidget(store, definition=DEF, as_of=AS_OF, min_support=10)
    pd.testing.assert_frame_equal(w.data, twin.data)
    w.outcome_picker.value = "churn"  # other metrics of the same cohort frame
    assert dict(journey.cache.computed) == computed
    w.segment_picker.value = "SMB"  # a new scope: one cohort frame
    assert journey.cache.computed["cohort_customers"] == computed["cohort_customers"] + 1
    after_smb = dict(journey.cache.computed)
    w.segment_picker.value = "all"
    w.segment_picker.value = "SMB"
    assert dict(journey.cache.computed) == after_smb
    twin.outcome_picker.value = "churn"
    twin.segment_picker.value = "SMB"
    pd.testing.assert_frame_equal(w.data, twin.data)
    assert w.live.spec["title"] == "Churn by segment — SMB"
    w.by = "weather"
    assert w.error.startswith("ValueError: by='weather' is no cohort dimension")
    assert "journeylib-error" in w.errors.value


# -- the Voila dashboards in a real browser ---------------------------------------------------------------
#: A chart text inside the widget's live chart (static charts of the page may carry the same titles).
HAS_TITLE = "(want) => [...document.querySelectorAll('.journeylib-live svg text')].some(t => t.textContent.trim() === want)"


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize(
    ("notebook", "picker", "first", "label", "second"),
    [
        ("03_churn_drivers", 0, "Churn: behaviours in the first days (window chosen from the data)", "conversion", "Conversion: behaviours in the first days (window chosen from the data)"),
        ("02_cohorts_and_segments", 1, "Conversion by segment", "churn", "Churn by segment"),
    ],
    ids=["03_churn_drivers", "02_cohorts_and_segments"],
)
def test_voila_dashboard_pickers_recompute_in_a_real_browser(
    notebook: str, picker: int, first: str, label: str, second: str, demo_store, tmp_path, browser, time_to_usable: TimeToUsable
) -> None:
    from journeylib.reports.dashboard import find_free_port, start_dashboard, stop_dashboard, wait_until_ready

    port = find_free_port()
    log = tmp_path / "voila.log"
    process = start_dashboard(ROOT / "notebooks", port=port, db=demo_store, notebook=notebook, execution_timeout=180, log=log)
    guard = NetworkGuard(allow_loopback=True, allow_files=False)
    try:
        url = wait_until_ready(port, 60, process=process)
        page = new_page(browser, guard, width=1300, height=1200)
        try:
            time_to_usable.open(
                page, url, lambda: page.wait_for_function(HAS_TITLE, arg=first, timeout=150_000), timeout_ms=150_000, notebook=notebook
            )
            select = page.locator(".widget-dropdown select").nth(picker)
            select.scroll_into_view_if_needed()
            select.select_option(label=label)  # a user picks another outcome
            page.wait_for_function(HAS_TITLE, arg=second, timeout=60_000)
            page.screenshot(path=str(tmp_path / f"{notebook}.png"))
            assert "journeylib.widgets" not in page.content()  # sources are stripped
        finally:
            page.close()
    finally:
        stop_dashboard(process)
    assert [u for u in guard.blocked if "fontawesome" not in u] == []
