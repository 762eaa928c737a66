"""Alert rules, playbooks, the alert history and ``journeylib alerts``."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from journeylib.actions import (
    WORKLIST_COLUMNS,
    AlertFeatures,
    assign_playbooks,
    evaluate_rules,
    holdout_draw,
    raise_alerts,
    read_risk_table,
    write_worklist,
)
from journeylib.actions.alerts import latest_day
from journeylib.actions.backtest import apply_cooldown
from journeylib.cli import main
from journeylib.config.alerts import AlertRules
from journeylib.exceptions import ConfigError
from journeylib.store import Store
from journeylib.store.alerts import ALERT_HISTORY_COLUMNS, alert_history_data, blocked_by_cooldown, record_alerts

ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "parameters" / "alerts" / "saas.yaml"
JOURNEY = str(ROOT / "parameters" / "journeys" / "saas.yaml")
STAGES = ["Trial Started", "Onboarding Completed", "First Value Achieved"]
RAISED = "2026-01-10T08:00:00Z"


def _rules(rules: list[dict], **extra: object) -> AlertRules:
    return AlertRules.from_dict({"name": "t", "journey": JOURNEY, "holdout_seed": 11, "rules": rules, **extra})


# -- the rule file ---------------------------------------------------------------------------


def test_starter_rules_load_and_name_stages_of_their_journey() -> None:
    rules, lines = AlertRules.load(RULES)
    assert rules.journey_path().is_file()
    from journeylib.config.journey import JourneyDefinition

    rules.check_journey(JourneyDefinition.load(rules.journey_path()).stage_names, lines=lines)
    assert {r.name for r in rules.rules} >= {"onboarding_quiet", "paying_gone_quiet", "churn_risk_rising"}
    assert rules.playbook("onboarding_quiet", "SMB").action == "email"  # the segment's own playbook wins
    assert rules.playbook("onboarding_quiet", "Enterprise").action == "csm_task"


def test_rule_file_problems_name_key_line_and_what_is_allowed(tmp_path: Path) -> None:
    p = tmp_path / "rules.yaml"
    p.write_text(
        textwrap.dedent(
            """\
            name: t
            journey: j.yaml
            holdout_seed: 1
            rules:
              - name: quiet
                severity: urgent
                when:
                  days_since_activty: {gt: 5}
              - name: trend
                when:
                  activity_trend: {}
            playbooks:
              - {rule: quite, action: email, template: x}
            """
        )
    )
    with pytest.raises(ConfigError) as exc:
        AlertRules.from_yaml(p)
    text = str(exc.value)
    assert "rules[0].severity (line 6): must be 'low', 'medium', 'high' or 'critical'; found 'urgent'" in text
    assert "rules[0].when.days_since_activty (line 8): unknown key 'days_since_activty'; allowed keys here: stage," in text
    assert "rules[1].when.activity_trend (line 11): give at least one bound" in text


def test_playbook_of_an_unknown_rule_is_named() -> None:
    with pytest.raises(ConfigError, match=r"playbooks\[0\]\.rule: names unknown rule 'quite'; rules are quiet; did you mean 'quiet'\?"):
        _rules([{"name": "quiet", "when": {"paying": True}}], playbooks=[{"rule": "quite", "action": "email", "template": "x"}])


def test_unknown_stage_is_reported_with_its_line(tmp_path: Path) -> None:
    p = tmp_path / "rules.yaml"
    p.write_text("name: t\njourney: j.yaml\nholdout_seed: 1\nrules:\n  - name: s\n    when:\n      stage: {in: [Trial Startd]}\n")
    rules, lines = AlertRules.load(p)
    with pytest.raises(ConfigError, match=r"rules\[0\]\.when\.stage\.in\[0\] \(line 7\): unknown stage 'Trial Startd'.*did you mean 'Trial Started'"):
        rules.check_journey(STAGES, lines=lines)


def test_playbook_action_needs_its_content() -> None:
    with pytest.raises(ConfigError, match=r"playbooks\[0\]: action 'csm_task' needs 'task'"):
        _rules([{"name": "q", "when": {"paying": True}}], playbooks=[{"rule": "q", "action": "csm_task"}])


# -- evaluation on hand-made values ----------------------------------------------------------


def _features(risk: bool = False) -> AlertFeatures:
    day = 20400
    rows = {
        "customer_id": ["a", "b", "c", "d"],
        "as_of_day": day,
        "as_of": pd.Timestamp("2025-11-08T00:00:00Z"),
        "segment": ["SMB", "SMB", "Enterprise", "SMB"],
        "plan": ["pro", "pro", "pro", "trial"],
        "paying": [True, True, True, False],
        "tenure_days": [100.5, 40.2, 200.0, 20.0],
        "stage": ["First Value Achieved", "Trial Started", "First Value Achieved", "Trial Started"],
        "days_in_stage": [30.0, 40.2, 10.0, 20.0],
        "peer_median_days": [10.0, 8.0, 10.0, 8.0],
        "days_in_stage_vs_peers": [3.0, 40.2 / 8.0, 1.0, 2.5],
        "stage_overdue": [1.0, 1.0, 0.0, np.nan],
        "reached:Trial Started": True,
        "reached:Onboarding Completed": [True, False, True, False],
        "reached:First Value Achieved": [True, False, True, False],
        "days_since_activity": [9.0, 40.0, 1.0, 3.0],
        "no_activity": [False, True, False, False],
        "activity_14d": [7.0, 0.0, 30.0, 5.0],
        "baseline_per_day": [2.0, np.nan, 2.0, np.nan],
        "activity_trend": [0.25, np.nan, 30 / 14 / 2.0, np.nan],
        "tickets_7d": 0.0, "tickets_14d": 0.0, "tickets_30d": [4.0, 0.0, 1.0, 0.0],
        "negative_tickets_7d": np.nan, "negative_tickets_14d": np.nan, "negative_tickets_30d": np.nan,
        "ticket_sentiment": np.nan,
        "risk": [0.7, np.nan, 0.1, 0.9] if risk else np.nan,
        "risk_change_7d": [0.2, np.nan, 0.0, 0.3] if risk else np.nan,
        "risk_reasons": ["logins fell; 4 tickets", "", "", "no setup"] if risk else "",
    }  # fmt: skip
    return AlertFeatures(data=pd.DataFrame(rows), notes=[], risk_given=risk, sentiment_given=False, stage_names=STAGES)


def test_conditions_are_all_required_and_missing_values_never_fire() -> None:
    rules = _rules(
        [
            # a: 9 days quiet and paying -> fires; b: 40 days but no activity ever -> fires (from signup); c: 1 day -> no
            {"name": "quiet", "when": {"days_since_activity": {"gt": 5}, "paying": True}, "severity": "high"},
            # trend 0.25 < 0.4 for a; b and d have no baseline (NaN) -> never; c 1.07 -> no
            {"name": "trend", "when": {"activity_trend": {"lt": 0.4}}},
            # peers: a 3.0x, b 5.0x (> 2), d 2.5x but d is in segment SMB and plan trial -> plans filter drops d
            {"name": "behind", "plans": ["pro"], "when": {"days_in_stage_vs_peers": {"gt": 2}}},
            {"name": "onb", "when": {"milestone_overdue": {"stage": "Onboarding Completed", "within_days": 14}}},
        ]
    )
    fired, notes = evaluate_rules(_features(), rules)
    got = {(r, c) for r, c in zip(fired["rule"], fired["customer_id"], strict=True)}
    assert got == {("quiet", "a"), ("quiet", "b"), ("trend", "a"), ("behind", "a"), ("behind", "b"), ("onb", "b"), ("onb", "d")}
    why = fired.set_index(["rule", "customer_id"])["why"]
    assert why[("quiet", "a")] == "last activity 9 days ago (rule > 5); paying"
    assert why[("quiet", "b")].startswith("no activity since signup 40 days ago")
    assert why[("behind", "a")] == (
        "30 days in stage 'First Value Achieved', 3.0x the median of 10 days of the customers in that stage (rule > 2x)"
    )
    assert why[("trend", "a")].startswith("activity in the last 14 days at 25% of the customer's own baseline (0.50 vs 2.00")
    assert why[("onb", "d")] == "'Onboarding Completed' not reached 20 days after signup (expected within 14)"
    expl = json.loads(fired.set_index(["rule", "customer_id"]).loc[("behind", "a"), "explanation"])
    assert expl["conditions"][0]["reference"] == 10.0
    assert expl["conditions"][0]["value"] == 3.0
    assert notes == []


def test_risk_conditions_without_a_risk_table_skip_or_fire_and_say_so() -> None:
    rules = _rules(
        [
            {"name": "skip", "when": {"paying": True, "risk": {"gte": 0.5}}},
            {"name": "fire", "without_risk": "fire", "when": {"paying": True, "risk": {"gte": 0.5}}},
            {"name": "only", "without_risk": "fire", "when": {"risk_change_7d": {"gt": 0.1}}},
        ]
    )
    fired, notes = evaluate_rules(_features(risk=False), rules)
    assert set(fired["rule"]) == {"fire"}
    assert set(fired["customer_id"]) == {"a", "b", "c"}
    assert all(w.endswith("churn risk not checked (no risk table given)") for w in fired["why"])
    assert any("'skip' raised nothing" in n for n in notes)
    assert any("'only' raised nothing" in n for n in notes)
    # with a risk table: a (0.7) fires both; d is not paying; b has no score (NaN) -> no
    fired, _ = evaluate_rules(_features(risk=True), rules)
    got = {(r, c) for r, c in zip(fired["rule"], fired["customer_id"], strict=True)}
    assert got == {("skip", "a"), ("fire", "a"), ("only", "a"), ("only", "d")}
    assert "churn risk 0.70 (rule >= 0.5); reasons: logins fell; 4 tickets" in fired["why"].iloc[0]


def test_read_risk_table_checks_columns_and_range(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['risk_change_7d'\]"):
        read_risk_table(pd.DataFrame({"customer_id": ["a"], "risk": [0.2], "reasons": ["x"]}))
    with pytest.raises(ValueError, match="risk must be between 0 and 1"):
        read_risk_table(pd.DataFrame({"customer_id": ["a"], "risk": [1.5], "risk_change_7d": [0.0], "reasons": ["x"]}))
    p = tmp_path / "risk.csv"
    pd.DataFrame({"customer_id": ["007"], "risk": [0.4], "risk_change_7d": [0.1], "reasons": ["a"]}).to_csv(p, index=False)
    assert read_risk_table(p)["customer_id"].tolist() == ["007"]  # ids stay text


# -- playbooks and holdout -------------------------------------------------------------------


def test_holdout_is_seeded_stable_and_near_its_share() -> None:
    draws = np.array([holdout_draw(11, "quiet", f"c{i}") for i in range(20000)])
    assert draws.min() >= 0
    assert draws.max() < 1
    share = (draws < 0.2).mean()
    # binomial sd of a 20% share over 20,000 draws is 0.0028: 5 sd either side
    assert abs(share - 0.2) < 0.014
    assert holdout_draw(11, "quiet", "c1") == holdout_draw(11, "quiet", "c1")
    assert holdout_draw(11, "quiet", "c1") != holdout_draw(12, "quiet", "c1")


def test_assign_playbooks_prefers_the_segment_and_holds_out_with_the_seed() -> None:
    rules = _rules(
        [{"name": "q", "when": {"paying": True}}, {"name": "n", "when": {"paying": True}}],
        playbooks=[
            {"rule": "q", "action": "csm_task", "task": "call", "holdout_share": 0.5},
            {"rule": "q", "segment": "SMB", "action": "email", "template": "nudge", "resources": ["https://x"]},
        ],
    )
    firings = pd.DataFrame({"rule": ["q", "q", "n"], "customer_id": ["a", "b", "c"], "segment": ["SMB", "Enterprise", "SMB"]})
    out = assign_playbooks(firings, rules)
    assert out["playbook"].tolist() == ["q@SMB", "q", ""]
    assert out["next_step"].iloc[0] == "send e-mail 'nudge' with https://x (now, due within 3 days)"
    held = holdout_draw(11, "q", "b") < 0.5
    assert bool(out["holdout"].iloc[1]) == held
    assert out["next_step"].iloc[1].startswith("none: held out" if held else "CSM task: call")
    assert out["next_step"].iloc[2].startswith("review the account")


def test_apply_cooldown_keeps_one_alert_per_window() -> None:
    f = pd.DataFrame({"rule": ["r"] * 5 + ["s"], "customer_id": ["c"] * 6, "as_of_day": [0, 7, 14, 20, 35, 7], "cooldown_days": [14] * 5 + [7]})
    kept = apply_cooldown(f)
    # r: 0 kept; 7 < 0+14 dropped; 14 kept; 20 < 28 dropped; 35 kept. s: its own cooldown
    assert list(zip(kept["rule"], kept["as_of_day"], strict=True)) == [("r", 0), ("r", 14), ("r", 35), ("s", 7)]


# -- the alert history -----------------------------------------------------------------------


def _history_rows(days: list[int], *, run: str, cooldown: int = 14) -> pd.DataFrame:
    rows = []
    for d in days:
        row = {c: None for c in ALERT_HISTORY_COLUMNS}
        row.update(alert_id=f"r:c1:{d}", rule="r", customer_id="c1", as_of_day=d, cooldown_days=cooldown, holdout=False,
                   holdout_seed=1, run_id=run, as_of=pd.Timestamp("2025-01-01T00:00:00Z") + pd.Timedelta(days=d),
                   raised_at=pd.Timestamp("2025-06-01T00:00:00Z"), severity="high")  # fmt: skip
        rows.append(row)
    return pd.DataFrame(rows)


def test_record_alerts_is_idempotent_within_the_cooldown() -> None:
    store = Store(":memory:")
    assert record_alerts(store, _history_rows([100], run="1")) == ["r:c1:100"]
    assert record_alerts(store, _history_rows([100], run="2")) == []  # the same alert again
    assert record_alerts(store, _history_rows([110], run="3")) == []  # 10 days later, cooldown 14
    assert blocked_by_cooldown(store, _history_rows([113, 114], run="4")).tolist() == [True, False]
    assert record_alerts(store, _history_rows([114], run="4")) == ["r:c1:114"]
    assert record_alerts(store, _history_rows([90], run="5")) == []  # 10 days before a stored alert, its own cooldown covers it
    assert alert_history_data(store)["as_of_day"].tolist() == [100, 114]


# -- raise_alerts on the session world -------------------------------------------------------


@pytest.fixture
def store_copy(demo_store: Path, tmp_path: Path) -> Path:
    db = tmp_path / "alerts.duckdb"
    shutil.copy(demo_store, db)
    return db


def test_raise_alerts_is_idempotent_and_lists_an_explained_worklist(store_copy: Path, tmp_path: Path) -> None:
    with Store(store_copy) as store:
        day = latest_day(store) - pd.Timedelta(days=30)
        dry = raise_alerts(store, RULES, as_of=day, raised_at=RAISED, dry_run=True)
        assert alert_history_data(store).empty
        first = raise_alerts(store, RULES, as_of=day, raised_at=RAISED)
        again = raise_alerts(store, RULES, as_of=day, raised_at="2026-01-11T08:00:00Z")
        later = raise_alerts(store, RULES, as_of=day + pd.Timedelta(days=3), raised_at=RAISED, dry_run=True)
        stored = alert_history_data(store)
    assert len(first.raised) > 0
    assert sorted(dry.raised) == first.raised
    assert again.raised == []
    assert again.suppressed == len(first.raised)
    assert list(first.alerts.columns) == list(WORKLIST_COLUMNS)
    pd.testing.assert_frame_equal(first.alerts, again.alerts)
    assert stored["alert_id"].is_unique
    assert len(stored) == len(first.raised)
    # 3 days later, no rule's cooldown (7 days or more) has run out: nothing new for an alerted rule and customer
    alerted = set(zip(stored["rule"], stored["customer_id"], strict=True))
    later_new = {tuple(a.split(":")[:2]) for a in later.raised}
    assert not (later_new & alerted)
    assert all(first.alerts["why"].str.len() > 0)
    assert all(first.alerts["next_step"].str.len() > 0)
    assert (first.alerts["owner"] == "cs-team").all()  # the synthetic world's CRM has no owner: said in a note
    assert any("no customer has an owner" in n for n in first.notes)
    assert not any(r.startswith("churn_risk_rising:") for r in first.raised)  # without_risk: skip
    quiet = stored[stored["rule"] == "paying_gone_quiet"]
    assert quiet["why"].str.endswith("churn risk not checked (no risk table given)").all()
    csv = write_worklist(first.alerts, tmp_path / "w" / "worklist.csv")
    back = pd.read_csv(csv)
    assert back["alert_id"].tolist() == first.alerts["alert_id"].tolist()
    records = json.loads(write_worklist(first.alerts, tmp_path / "w" / "worklist.json").read_text())
    assert list(records[0]) == list(WORKLIST_COLUMNS)
    assert len(records) == len(first.alerts)
    with pytest.raises(ValueError, match=r"must end in \.csv or \.json; got \.txt"):
        write_worklist(first.alerts, tmp_path / "w.txt")


def test_risk_table_reasons_reach_the_alert(store_copy: Path) -> None:
    with Store(store_copy) as store:
        day = latest_day(store) - pd.Timedelta(days=30)
        customers = store.query("SELECT customer_id FROM customers WHERE converted_at IS NOT NULL AND churned_at IS NULL ORDER BY 1")["customer_id"]
        risk = pd.DataFrame({"customer_id": customers, "risk": 0.8, "risk_change_7d": 0.3, "reasons": "logins down 80%",
                             "as_of": day + pd.Timedelta(hours=12)})  # fmt: skip
        run = raise_alerts(store, RULES, as_of=day, raised_at=RAISED, risk=risk, dry_run=True)
        late = raise_alerts(store, RULES, as_of=day, raised_at=RAISED, dry_run=True,
                            risk=risk.assign(as_of=day + pd.Timedelta(days=2)))  # fmt: skip
    crit = run.alerts[run.alerts["rule"] == "churn_risk_rising"]
    assert len(crit) > 0
    assert (crit["severity"] == "critical").all()
    assert crit["why"].str.contains("churn risk 0.80 (rule >= 0.5); reasons: logins down 80%", regex=False).all()
    assert (late.alerts["rule"] == "churn_risk_rising").sum() == 0  # a score made after the as-of day is never read
    assert any("no risk score made by their as-of day" in n for n in late.notes)


_CHILD = """
import sys
from journeylib.store import Store
from journeylib.actions import raise_alerts
db, rules, *days = sys.argv[1:]
with Store(db) as store:
    for d in days:
        raise_alerts(store, rules, as_of=d, raised_at="2026-01-10T08:00:00Z", run_id="child")
        print(d, flush=True)
"""


def _run_child(db: Path, days: list[str], *, kill_after: int | None = None) -> int:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", _CHILD, str(db), str(RULES), *days], stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    for done, _line in enumerate(proc.stdout, start=1):
        if kill_after is not None and done == kill_after:
            proc.send_signal(signal.SIGKILL)  # while the next day is being evaluated or written
            break
    proc.wait(timeout=600)
    return proc.returncode


def test_sigkill_mid_run_then_rerun_leaves_no_duplicate_and_no_gap(store_copy: Path, tmp_path: Path) -> None:
    reference = tmp_path / "reference.duckdb"
    shutil.copy(store_copy, reference)
    with Store(store_copy, read_only=True) as store:
        last = latest_day(store)
    days = [f"{last - pd.Timedelta(days=7 * k):%Y-%m-%d}" for k in range(5, -1, -1)]
    assert _run_child(reference, days) == 0
    assert _run_child(store_copy, days, kill_after=2) == -signal.SIGKILL
    with Store(store_copy, read_only=True) as s, Store(reference, read_only=True) as r:
        partial, ref = alert_history_data(s), alert_history_data(r)
    assert 0 < len(partial) < len(ref)
    for day, group in ref.groupby("as_of_day"):
        got = set(partial.loc[partial["as_of_day"] == day, "alert_id"])
        assert got in (set(), set(group["alert_id"])), f"day {day}: a partial day after the kill"
    assert _run_child(store_copy, days) == 0
    with Store(store_copy, read_only=True) as s:
        after = alert_history_data(s)
    assert after["alert_id"].is_unique
    cols = ["alert_id", "rule", "customer_id", "as_of_day", "why", "next_step", "holdout", "owner"]
    pd.testing.assert_frame_equal(after[cols].reset_index(drop=True), ref[cols].reset_index(drop=True))


def test_cli_alerts_writes_history_and_worklists(store_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    csv, js = tmp_path / "out" / "worklist.csv", tmp_path / "out" / "worklist.json"
    code = main(["alerts", "--db", str(store_copy), "--rules", str(RULES), "--out", str(csv), "--out", str(js)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "new alert(s)" in out
    assert csv.is_file()
    assert js.is_file()
    with Store(store_copy, read_only=True) as store:
        n = len(alert_history_data(store))
    assert n == len(pd.read_csv(csv)) > 0
    assert main(["alerts", "--db", str(store_copy), "--rules", str(RULES), "--dry-run"]) == 0
    assert "would raise 0 new alert(s)" in capsys.readouterr().out
    assert main(["alerts", "--db", str(store_copy), "--rules", str(RULES), "--out", str(tmp_path / "w.xlsx")]) == 1
    assert "the worklist is written as .csv or .json" in capsys.readouterr().err


def test_sentiment_conditions_do_not_hold_without_scores() -> None:
    rules = _rules([{"name": "tone", "when": {"tickets": {"gte": 3}, "ticket_sentiment": {"lt": 0}}}])
    fired, _ = evaluate_rules(_features(), rules)  # a has 4 tickets but no sentiment score
    assert fired.empty


# -- the rule backtest on the demo world -----------------------------------------------------


def test_recency_rule_backtest_catches_planted_login_drop_with_positive_lead(planted_world: tuple[Path, Path]) -> None:
    from journeylib.actions import rule_backtest_data

    _, db = planted_world
    rules = _rules(
        [
            {"name": "paying_quiet", "severity": "high", "cooldown_days": 21,
             "when": {"paying": True, "days_since_activity": {"gt": 14}}},
            {"name": "never", "when": {"paying": True, "days_since_activity": {"gt": 100000}}},
        ],
        routing={"default_owner": "csm"},
    )  # fmt: skip
    with Store(db, read_only=True) as store:
        bt = rule_backtest_data(store, rules, every_days=7, horizon_days=60)
    s = bt.summary.set_index("rule")
    quiet = s.loc["paying_quiet"]
    # churners' logins fall below 2 a week 45 days before churn (truth.json churn_login_decline)
    assert quiet["churners_caught"] > 0.3 * quiet["churners"]
    assert quiet["lead_days_ci_low"] > 0
    assert quiet["precision_ci_low"] > quiet["base_rate"]  # alerts are followed by churn more often than any customer-day
    assert quiet["labelled_alerts"] + quiet["censored_alerts"] == quiet["alerts"]
    assert s.loc["never", "alerts"] == 0
    assert np.isnan(s.loc["never", "precision"])
    # one owner (the default): volume per owner-week is alerts over the grid's weeks
    assert quiet["alerts_per_owner_week"] == pytest.approx(quiet["alerts"] / len(bt.as_of_days))
    assert len(bt.missed) == s.loc["(any rule)", "churners"] - s.loc["(any rule)", "churners_caught"]
    assert not set(bt.missed["customer_id"]) & set(bt.alerts.loc[bt.alerts["churned"] == 1, "customer_id"])


def test_cli_alerts_delivers_once_dead_letters_and_redelivers(
    store_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading
    from collections import Counter
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from journeylib.actions.delivery import verify_signature

    received: Counter[str] = Counter()
    bodies: list[tuple[bytes, dict[str, str]]] = []
    state = {"down": True}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if self.path == "/down" and state["down"]:
                self.send_response(500)
                self.end_headers()
                return
            received[f"{self.path} {self.headers['Idempotency-Key']}"] += 1
            bodies.append((body, dict(self.headers)))
            self.send_response(200)
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setenv("JL_TEST_HOOK_SECRET", "s3cret")
    fast = {"max_attempts": 2, "timeout_s": 5, "backoff": {"base_s": 0.01, "max_s": 0.02}}
    up = tmp_path / "up.yaml"
    up.write_text(yaml.safe_dump({"endpoints": [{"name": "hub", "url": f"{base}/hook", "secret_env": "JL_TEST_HOOK_SECRET", **fast}]}))
    both = tmp_path / "both.yaml"
    both.write_text(yaml.safe_dump({"endpoints": [{"name": "down", "url": f"{base}/down", "secret_env": "JL_TEST_HOOK_SECRET", **fast}]}))
    try:
        assert main(["alerts", "--db", str(store_copy), "--rules", str(RULES), "--deliver", str(up)]) == 0
        out = capsys.readouterr().out
        with Store(store_copy, read_only=True) as store:
            history = alert_history_data(store)
        sent = history[~history["holdout"].astype(bool)]
        assert len(sent) > 0
        assert "delivery:" in out
        assert sorted(k.split(" ")[0] for k in received) == ["/hook"] * len(sent)
        assert set(received.values()) == {1}  # each alert once
        body, headers = bodies[0]
        assert verify_signature(body, b"s3cret", timestamp=headers["X-Journeylib-Timestamp"], signature=headers["X-Journeylib-Signature"])
        # an endpoint that fails: every alert dead-lettered, exit 1; then it recovers and --redeliver sends them
        assert main(["alerts", "--db", str(store_copy), "--rules", str(RULES), "--deliver", str(both)]) == 1
        assert "dead-lettered" in capsys.readouterr().out
        state["down"] = False
        assert main(["alerts", "--db", str(store_copy), "--deliver", str(both), "--redeliver"]) == 0
        assert sum(1 for k in received if k.startswith("/down ")) == len(sent)
        assert main(["alerts", "--db", str(store_copy), "--redeliver"]) == 1
        assert "--redeliver sends the dead letters again" in capsys.readouterr().err
    finally:
        server.shutdown()


def test_rules_on_one_context_score_the_tickets_once(demo_store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import journeylib.voice.sentiment as sentiment
    from journeylib.actions.rules import tickets_for_rules
    from journeylib.cache import ResultCache

    calls: list[int] = []
    real = sentiment.score_tickets

    def counted(tickets: pd.DataFrame, **kwargs: object) -> pd.DataFrame:
        calls.append(len(tickets))
        return real(tickets, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(sentiment, "score_tickets", counted)
    tone = _rules([{"name": "tone", "when": {"ticket_sentiment": {"lt": 0}}}])
    cache = ResultCache()
    with Store(demo_store, read_only=True) as store:
        first = tickets_for_rules(store, tone, None, cache=cache)  # the dry run
        again = tickets_for_rules(store, tone, None, cache=cache)  # the backtest, on the same context
        assert first is not None
        assert again is not None
        pd.testing.assert_frame_equal(first, again)
        assert len(calls) == 1
        tickets_for_rules(store, tone, None)  # no cache: scored again
        assert len(calls) == 2
        assert tickets_for_rules(store, _rules([{"name": "quiet", "when": {"tickets": {"gte": 3}}}]), None, cache=cache) is None
