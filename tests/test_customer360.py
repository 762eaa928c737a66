"""Account lists and the customer 360 on the session's synthetic world.

Every account list must be the customers its count describes: the funnel's
reached / dropped / censored / eligible, a friction unit's customers, a driver's
exposed and reference groups (with their outcome counts). The customer 360 must
show one customer's events and tickets, by source kind, with stage, progress
against peers as ``progress_data`` computes it, and a masked ticket subject.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import pandas as pd
import pytest

from journeylib.context import Journey
from journeylib.customers import accounts, drivers, timeline
from journeylib.exceptions import EmptyResultError
from journeylib.journey import friction
from journeylib.reports import landing
from journeylib.store.categories import source_categories
from journeylib.widgets import Customer360Widget, DriversWidget, JourneyMapWidget

ROOT = Path(__file__).resolve().parents[1]
DEFINITION = ROOT / "parameters" / "journeys" / "saas.yaml"
KINDS = {"product", "crm", "support", "email"}


@pytest.fixture(scope="module")
def journey(demo_store: Path) -> Journey:
    return Journey.open(demo_store, definition=DEFINITION)


# -- account lists -----------------------------------------------------------------------------------
def test_funnel_lists_have_the_funnel_counts_and_partition_the_eligible(journey: Journey) -> None:
    funnel = journey.funnel_data()
    for row in funnel.itertuples():
        lists = {s: journey.run(accounts.funnel_accounts_data, stage=str(row.stage), status=s) for s in accounts.FUNNEL_STATUSES}
        for status, frame in lists.items():
            assert len(frame) == int(getattr(row, status)), (row.stage, status)
            assert frame["customer_id"].is_unique
        ids = {s: set(f["customer_id"]) for s, f in lists.items()}
        waiting_reached = ids["reached"] & ids["eligible"]
        assert ids["dropped"].isdisjoint(ids["censored"])
        assert ids["dropped"].isdisjoint(waiting_reached)
        assert ids["dropped"] | ids["censored"] | waiting_reached == ids["eligible"]


def test_funnel_lists_by_segment_match_the_segment_funnel(journey: Journey) -> None:
    by = journey.funnel_data(by="segment")
    for row in by[by["stage_order"] == 1].itertuples():
        got = journey.run(accounts.funnel_accounts_data, stage=str(row.stage), status="dropped", by="segment", group=str(row.group))
        assert len(got) == int(row.dropped)
        assert set(got["segment"]) <= {row.group}
    seg = str(by["group"].iloc[0])
    scoped = journey.with_scope(segment=seg)
    assert len(scoped.run(accounts.funnel_accounts_data, stage=str(by["stage"].iloc[1]), status="reached")) == int(
        scoped.funnel_data().iloc[1]["reached"]
    )


def test_funnel_list_refuses_unknown_stage_or_status(journey: Journey) -> None:
    with pytest.raises(ValueError, match="stage must be one of"):
        journey.run(accounts.funnel_accounts_data, stage="Nope")
    with pytest.raises(ValueError, match="status must be one of"):
        journey.run(accounts.funnel_accounts_data, stage=journey.definition.stage_names[0], status="lost")


def test_friction_list_has_the_friction_units_customers(journey: Journey) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        units = journey.run(friction.friction_tests_data, n_boot=50)
    assert len(units)
    for row in units.head(6).itertuples():
        got = journey.run(accounts.friction_accounts_data, stage=str(row.stage), group=str(row.group))
        assert len(got) == int(row.customers), (row.group, row.stage)
        assert set(got["stage_status"]) <= {"progressed", "churned", "dropped", "completed", "in_progress"}
        if len(got) > 1:  # the customers still in the stage come first
            in_progress = (got["stage_status"] == "in_progress").to_numpy()
            assert list(in_progress) == sorted(in_progress, reverse=True)


def test_driver_lists_rebuild_the_split_and_its_outcomes(journey: Journey) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = journey.run(drivers.drivers_data, outcome="churn", min_support=10)
        top = table[table["status"] == "ok"].head(3)
        assert len(top)
        for _, row in top.iterrows():
            both = journey.run(accounts.driver_accounts_data, driver=row, outcome="churn")
            exposed = both[both["side"] == "exposed"]
            reference = both[both["side"] == "reference"]
            assert (len(exposed), len(reference)) == (int(row["n_exposed"]), int(row["n_reference"]))
            assert (int(exposed["outcome"].sum()), int(reference["outcome"].sum())) == (
                int(row["events_exposed"]), int(row["events_reference"]))
            assert set(exposed["group"]) == {row["exposure"]}
            only = journey.run(accounts.driver_accounts_data, driver=row, outcome="churn", side="reference")
            assert set(only["customer_id"]) == set(reference["customer_id"])
        wrong = top.iloc[0].copy()
        wrong["n_exposed"] = int(wrong["n_exposed"]) + 1
        with pytest.raises(ValueError, match="drivers table counts"):
            journey.run(accounts.driver_accounts_data, driver=wrong, outcome="churn")


def test_accounts_csv_opens_as_the_same_table(journey: Journey) -> None:
    frame = journey.run(accounts.funnel_accounts_data, stage=journey.definition.stage_names[1], status="dropped")
    text = accounts.accounts_csv(frame)
    back = pd.read_csv(io.StringIO(text), dtype={"customer_id": str})
    assert list(back.columns) == list(frame.columns)
    assert back["customer_id"].tolist() == frame["customer_id"].tolist()
    assert back["signup_at"].iloc[0] == frame["signup_at"].iloc[0].strftime("%Y-%m-%dT%H:%M:%SZ")


# -- customer 360 ------------------------------------------------------------------------------------------
def _busy_customer(journey: Journey) -> str:
    counts = journey.store.query(
        "SELECT t.customer_id, count(*) AS n FROM tickets t GROUP BY t.customer_id ORDER BY n DESC, t.customer_id LIMIT 1"
    )
    return str(counts["customer_id"].iloc[0])


def test_timeline_holds_every_event_and_ticket_by_source_kind(journey: Journey) -> None:
    cid = _busy_customer(journey)
    rows = journey.run(timeline.customer_timeline_data, customer_id=cid)
    as_of = pd.Timestamp(journey.scope.as_of).to_pydatetime()
    n_events = journey.store.query("SELECT count(*) AS n FROM events WHERE customer_id = $c AND timestamp <= $a", {"c": cid, "a": as_of})["n"].iloc[0]
    tickets = journey.store.query("SELECT ticket_id, subject FROM tickets WHERE customer_id = $c AND created_at <= $a", {"c": cid, "a": as_of})
    assert (rows["source"] != "tickets").sum() == n_events
    assert (rows["source"] == "tickets").sum() == len(tickets) > 0
    assert set(rows["kind"]) <= KINDS
    kinds = source_categories(journey.store)
    events = rows[rows["source"] != "tickets"]
    assert (events["source"].map(kinds) == events["kind"]).all()
    assert rows["timestamp"].is_monotonic_increasing
    ticket_rows = rows[rows["source"] == "tickets"]
    assert ticket_rows["sentiment"].between(-1, 1).all()
    assert not ticket_rows["detail"].str.contains("@").any()
    intervals = journey.stage_intervals_data()
    first = intervals[intervals["customer_id"] == cid]["entered_at"].min()
    assert (rows.loc[rows["timestamp"] < first, "stage"] == "(before the first stage)").all()
    later = set(rows.loc[rows["timestamp"] >= first, "stage"])
    assert {st for st in later if not st.startswith("(after ")} <= set(journey.definition.stage_names)
    weekly = timeline.customer_activity_data(rows)
    assert int(weekly["count"].sum()) == len(rows)


def test_profile_compares_with_peers_as_progress_data_does(journey: Journey) -> None:
    progress = journey.progress_data()
    row = progress[progress["progress"] != "no_peers"].iloc[0]
    profile = journey.run(timeline.customer_profile_data, customer_id=str(row["customer_id"])).iloc[0]
    assert profile["stage"] == str(row["stage"])
    assert profile["progress"] == row["progress"]
    assert profile["peers"] == row["peers"]
    assert profile["peer_median_days"] == pytest.approx(row["peer_p50"])
    assert profile["days_in_stage"] == pytest.approx(row["days_in_stage"])
    assert pd.isna(profile["risk"])
    assert "no risk score table" in profile["risk_note"]
    scores = pd.DataFrame({"customer_id": [str(row["customer_id"])], "risk": [0.42], "risk_band": ["high"], "reasons": ["few logins"]})
    scored = journey.run(timeline.customer_profile_data, customer_id=str(row["customer_id"]), risk_scores=scores).iloc[0]
    assert (scored["risk"], scored["risk_band"], scored["risk_reasons"], scored["risk_note"]) == (0.42, "high", "few logins", "")


def test_a_customer_outside_the_scope_is_refused_with_the_reason(journey: Journey) -> None:
    with pytest.raises(EmptyResultError, match="no customer with that id"):
        journey.run(timeline.customer_timeline_data, customer_id="no-such-customer")
    other = journey.store.query("SELECT customer_id, segment FROM customers LIMIT 1").iloc[0]
    seg = next(s for s in journey.store.query("SELECT DISTINCT segment FROM customers")["segment"] if s != other["segment"])
    with pytest.raises(EmptyResultError, match="outside the scope"):
        journey.with_scope(segment=seg).run(timeline.customer_profile_data, customer_id=str(other["customer_id"]))


def test_customer_360_widget_follows_the_search(journey: Journey) -> None:
    w = Customer360Widget.from_journey(journey)
    assert w.error == ""
    first = w.customer_id
    assert w.search.value.endswith(first)
    label = w.search.options[7]
    w.search.value = label
    assert w.customer_id == label.rsplit(" · ", 1)[1] != first
    name = str(w.profile["name"].iloc[0])
    assert name in w.header.value
    assert name in w.live.spec["title"]
    assert 'class="journeylib-csv"' in w.events.value
    assert "data:text/csv" in w.events.value
    w.customer_id = "no-such-customer"
    assert "no customer with that id" in w.error
    assert w.live.spec["mark"]["type"] == "text"  # the placeholder


# -- the dashboards' "list these customers" ----------------------------------------------------------------
def test_journey_map_lists_the_customers_of_the_chosen_count(journey: Journey) -> None:
    w = JourneyMapWidget.from_journey(journey)
    stage = journey.definition.stage_names[1]
    w.list_stage_picker.value = stage
    w.list_what_picker.value = "dropped"
    dropped = int(w.funnel.loc[w.funnel["stage"].astype(str) == stage, "dropped"].iloc[0])
    assert any(label.endswith(f"({dropped:,})") for label, value in w.list_what_picker.options if value == "dropped")
    w.accounts.button.click()
    assert w.accounts.accounts is not None
    assert len(w.accounts.accounts) == dropped
    assert "data:text/csv" in w.accounts.output.value
    seg = str(journey.funnel_data(by="segment")["group"].iloc[0])
    w.segment = seg
    assert w.accounts.accounts is None  # a new selection forgets the old list
    assert w.funnel_live.spec["title"] == f"Journey funnel — {seg}"
    w.accounts.button.click()
    assert set(w.accounts.accounts["segment"]) <= {seg}
    assert f"segment {seg}" in w.accounts.output.value


def test_drivers_widget_lists_both_sides_of_a_drawn_behaviour(journey: Journey) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        w = DriversWidget.from_journey(journey, outcome="churn", min_support=10)
        assert w.error == "", w.error
        assert w.driver_picker.options
        label, candidate = w.driver_picker.options[0]
        row = w.data.set_index("candidate").loc[candidate]
        assert f"({int(row['n_exposed']):,} vs {int(row['n_reference']):,} customers)" in label
        w.accounts.button.click()
    assert w.accounts.errors.value == ""
    got = w.accounts.accounts
    assert (got["side"] == "exposed").sum() == int(row["n_exposed"])
    assert (got["side"] == "reference").sum() == int(row["n_reference"])


# -- landing page --------------------------------------------------------------------------------------------
def test_landing_lists_notebooks_with_their_latest_headlines(tmp_path: Path) -> None:
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    for name in ("b_second", "a_first"):
        (notebooks / f"{name}.ipynb").write_text('{"cells": [{"cell_type": "markdown", "source": ["# Title of ' + name + '\\n"]}]}')
    run = tmp_path / "reports" / "r1" / "a_first" / "artifacts"
    run.mkdir(parents=True)
    (run / "summary.json").write_text('{"customers": 2000, "share_negative": 0.384, "top_line": "A line.", "names": ["x"], "sample_n": 0}')
    (tmp_path / "reports" / "latest").symlink_to("r1")
    pages = landing.dashboard_pages_data(notebooks, tmp_path / "reports")
    assert pages["notebook"].tolist() == ["a_first", "b_second"]
    assert pages["title"].tolist() == ["Title of a_first", "Title of b_second"]
    assert pages["headlines"].iloc[0] == ["A line.", "Customers: 2,000", "Share negative: 38.4%"]
    assert pages["headlines"].iloc[1] == []
    assert pages["run_id"].tolist() == ["r1", ""]
    page = landing.landing_html(pages)
    assert page.count('class="journeylib-dashboard-link"') == 2
    assert "/voila/render/a_first.ipynb" in page
    assert landing.latest_risk_scores(tmp_path / "reports") is None
