"""WorklistWidget: the filters narrow the worklist, a click shows that customer's explanation; worklist_details_data."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from journeylib.actions.alerts import WORKLIST_COLUMNS, latest_day, raise_alerts, worklist_data, worklist_details_data
from journeylib.store import Store
from journeylib.store.alerts import ALERT_HISTORY_COLUMNS
from journeylib.widgets import WorklistWidget

ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "parameters" / "alerts" / "saas.yaml"
AS_OF = pd.Timestamp("2026-01-05T23:59:59.999999Z")


def _explanation(conditions: list[dict], *, reasons: str | None = None, checked: bool = False) -> str:
    return json.dumps({"conditions": conditions, "risk_reasons": reasons, "risk_checked": checked}, sort_keys=True)


QUIET = {"condition": "days_since_activity", "value": 21.0, "rule": "> 14", "reference": None, "text": "last activity 21 days ago (rule > 14)"}
BEHIND = {"condition": "days_in_stage_vs_peers", "value": 3.5, "rule": "> 2", "reference": 4.0,
          "text": "14 days in stage 'Trial', 3.5x the median of 4 days of the customers in that stage (rule > 2x)"}  # fmt: skip


def _row(cid: str, rule: str, severity: str, owner: str, segment: str, conditions: list[dict], **extra: object) -> dict:
    row = {c: None for c in ALERT_HISTORY_COLUMNS}
    row.update(
        alert_id=f"{rule}:{cid}:2026-01-05", rule=rule, customer_id=cid, name=f"Company {cid}", owner=owner, segment=segment,
        plan="pro", severity=severity, why="; ".join(c["text"] for c in conditions), next_step="email 'check-in' within 3 days",
        action="email", playbook=f"{rule}/all", holdout=False, holdout_seed=7, as_of=AS_OF, as_of_day=20458, cooldown_days=14,
        raised_at=AS_OF, run_id="r", rules_name="t", explanation=_explanation(conditions),
    )  # fmt: skip
    row.update(extra)
    return row


@pytest.fixture
def history() -> pd.DataFrame:
    """Six alerts: owners ada (3) / bob (3); severities high (3), medium (2), critical (1); segments SMB (4) / Enterprise (2)."""
    rows = [
        _row("c1", "gone_quiet", "high", "ada", "SMB", [QUIET]),
        _row("c2", "gone_quiet", "high", "bob", "SMB", [QUIET]),
        _row("c3", "behind", "medium", "ada", "Enterprise", [BEHIND], holdout=True,
             next_step="none: held out at random (10% of playbook 'behind/all') to measure it; do not contact for this alert"),
        _row("c4", "behind", "medium", "bob", "SMB", [BEHIND]),
        _row("c5", "risky", "critical", "ada", "SMB", [QUIET],
             explanation=_explanation([QUIET], reasons="logins down 80%; 2 negative tickets", checked=True)),
        _row("c6", "gone_quiet", "high", "bob", "Enterprise", [QUIET]),
    ]  # fmt: skip
    return pd.DataFrame(rows)


def test_worklist_details_keep_the_worklist_and_add_segment_and_explanation(history: pd.DataFrame) -> None:
    details = worklist_details_data(history)
    base = worklist_data(history)
    assert list(details.columns[: len(WORKLIST_COLUMNS)]) == list(WORKLIST_COLUMNS)
    pd.testing.assert_frame_equal(details[list(WORKLIST_COLUMNS)], base)  # same rows, same order as the files
    assert details["alert_id"].iloc[0] == "risky:c5:2026-01-05"  # most severe first
    by_id = details.set_index("alert_id")
    assert by_id.loc["behind:c3:2026-01-05", "segment"] == "Enterprise"
    assert by_id.loc["behind:c3:2026-01-05", "conditions"] == [BEHIND]
    assert by_id.loc["risky:c5:2026-01-05", "risk_reasons"] == "logins down 80%; 2 negative tickets"
    assert bool(by_id.loc["risky:c5:2026-01-05", "risk_checked"]) is True
    assert by_id.loc["gone_quiet:c1:2026-01-05", "risk_reasons"] is None
    assert worklist_details_data(history.iloc[:0]).empty


def test_worklist_details_name_what_is_wrong(history: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match=r"history lacks column\(s\) segment, explanation"):
        worklist_details_data(history.drop(columns=["segment", "explanation"]))
    bad = history.assign(explanation=["{not json", *history["explanation"].iloc[1:]])
    with pytest.raises(ValueError, match=r"alert 'gone_quiet:c1:2026-01-05' has an explanation that is not JSON"):
        worklist_details_data(bad)


def test_each_filter_narrows_the_rows(history: pd.DataFrame) -> None:
    w = WorklistWidget(worklist_details_data(history))
    assert len(w.rows) == 6
    assert w.owner_picker.options == ("all", "ada", "bob")
    assert w.severity_picker.options == ("all", "critical", "high", "medium")  # most severe first, only those present
    assert w.segment_picker.options == ("all", "Enterprise", "SMB")
    assert len(w.row_picker.options) == 6
    w.owner_picker.value = "ada"  # what a user does in the browser
    assert w.owner == "ada"
    assert sorted(w.rows["customer_id"]) == ["c1", "c3", "c5"]
    w.severity_picker.value = "high"
    assert w.rows["customer_id"].tolist() == ["c1"]
    w.owner_picker.value = "all"
    assert sorted(w.rows["customer_id"]) == ["c1", "c2", "c6"]
    w.segment_picker.value = "Enterprise"
    assert w.rows["customer_id"].tolist() == ["c6"]
    assert [v for _, v in w.row_picker.options] == ["gone_quiet:c6:2026-01-05"]
    assert "1 of 6 alerts" in w.summary.value
    w.severity_picker.value = "all"
    assert sorted(w.rows["customer_id"]) == ["c3", "c6"]
    assert "1 held out" in w.summary.value
    assert w.error == ""


def test_a_filter_value_without_alerts_lists_nothing_and_says_so(history: pd.DataFrame) -> None:
    w = WorklistWidget(worklist_details_data(history), owner="carol")  # e.g. from a URL
    assert w.rows.empty
    assert w.row_picker.options == ()
    assert w.error == "owner 'carol' has no alert (choices: ada, bob)"
    assert "journeylib-error" in w.errors.value
    w.owner = "bob"
    assert w.error == ""
    assert len(w.rows) == 3


def test_a_click_shows_that_customers_explanation(history: pd.DataFrame) -> None:
    w = WorklistWidget(worklist_details_data(history))
    assert w.detail.value == ""  # nothing selected yet
    w.row_picker.value = "behind:c3:2026-01-05"  # a click
    assert w.selected == "behind:c3:2026-01-05"
    d = w.detail.value
    assert "Company c3 (c3)" in d
    assert "days_in_stage_vs_peers" in d
    assert "<td>3.50</td><td>&gt; 2</td><td>4</td>" in d  # the customer's value, the rule, the peer median
    assert "3.5x the median of 4 days" in d
    assert "Held out:</b> yes" in d
    assert "do not contact" in d
    assert "segment Enterprise" in d
    assert "not checked (no risk table given)" in d
    w.row_picker.value = "risky:c5:2026-01-05"
    d = w.detail.value
    assert "Company c5" in d
    assert "Company c3" not in d
    assert "Risk reasons:</b> logins down 80%; 2 negative tickets" in d
    assert "Held out:</b> no" in d
    assert "email &#x27;check-in&#x27; within 3 days" in d
    w.owner_picker.value = "bob"  # the selected alert is filtered out: its explanation goes too
    assert w.selected == ""
    assert w.detail.value == ""
    w.selected = "gone_quiet:c2:2026-01-05"  # set from code: the list follows
    assert w.row_picker.value == "gone_quiet:c2:2026-01-05"
    assert "Company c2" in w.detail.value


def test_widget_refuses_frames_without_the_explanation(history: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match=r"details lack column\(s\) playbook, action, conditions, risk_reasons, risk_checked, segment"):
        WorklistWidget(worklist_data(history))
    with pytest.raises(TypeError, match=r"run must be a journeylib\.actions\.alerts\.AlertRun"):
        WorklistWidget.from_run(history)  # type: ignore[arg-type]


def test_from_run_on_a_dry_run_of_the_starter_rules(demo_store: Path) -> None:
    with Store(demo_store, read_only=True) as store:
        day = latest_day(store) - pd.Timedelta(days=30)
        run = raise_alerts(store, RULES, as_of=day, raised_at=day, dry_run=True)
    assert len(run.alerts) > 0
    assert run.history["alert_id"].tolist() != []
    w = WorklistWidget.from_run(run)
    pd.testing.assert_frame_equal(w.details[list(WORKLIST_COLUMNS)], run.alerts)  # the same worklist as the files
    assert set(w.details["segment"]) <= set(w.segment_picker.options[1:])
    assert any("no customer has an owner" in n for n in run.notes)
    assert "no customer has an owner" in w.notes.value
    segment = w.segment_picker.options[-1]
    w.segment_picker.value = segment
    assert len(w.rows) == int((w.details["segment"] == segment).sum()) > 0
    first = w.rows.iloc[0]
    w.row_picker.value = first["alert_id"]
    for c in first["conditions"]:
        assert c["condition"] in w.detail.value
    assert first["next_step"][:20].replace("'", "&#x27;") in w.detail.value


def test_from_journey_runs_the_dry_run_as_of_the_context_and_starts_on_its_segment(demo_store: Path) -> None:
    from journeylib.context import Journey

    with Store(demo_store, read_only=True) as store:
        day = latest_day(store) - pd.Timedelta(days=30)
        run = raise_alerts(store, RULES, as_of=day, raised_at=day, dry_run=True)
    segment = str(run.history["segment"].mode().iloc[0])
    journey = Journey.open(demo_store, definition=ROOT / "parameters" / "journeys" / "saas.yaml", as_of=day.date().isoformat(), segment=segment)
    w = WorklistWidget.from_journey(journey, rules=RULES, severity="all")
    twin = WorklistWidget.from_run(run)
    pd.testing.assert_frame_equal(w.details.drop(columns="raised_at"), twin.details.drop(columns="raised_at"))  # the same alerts
    assert w.segment == segment
    assert w.segment_picker.value == segment
    assert len(w.rows) == int((run.history["segment"] == segment).sum())
    with pytest.raises(TypeError, match=r"segment cannot be given: .*with_scope\(segment=\.\.\.\)"):
        WorklistWidget.from_journey(journey, rules=RULES, segment="SMB")
