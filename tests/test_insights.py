"""Tests of journeylib.insights: grounded sentences, guardrails, ranking, and the LLM path against a local stub."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pytest

from journeylib.insights import (
    INSIGHT_COLUMNS,
    LLMConfig,
    causal_words,
    insights_data,
    rewrite_insights,
    topic_sentences,
)


def _drivers(**over: Any) -> pd.DataFrame:
    row = {
        "feature": "did_not_complete_setup_7d", "outcome": "churn", "exposure": "who did not complete setup within 7 days",
        "reference": "who completed setup within 7 days", "rr": 2.1, "rr_ci_low": 1.6, "rr_ci_high": 2.8,
        "n_exposed": 161, "n_reference": 230, "rate_exposed": 0.42, "rate_reference": 0.20, "significant": True,
        "selected": True,
    }
    row.update(over)
    return pd.DataFrame([row])


def test_driver_sentence_cites_ratio_interval_and_denominators() -> None:
    ins = insights_data(drivers=_drivers())
    assert list(ins.columns) == INSIGHT_COLUMNS
    s = ins.loc[0, "sentence"]
    assert s == (
        "Customers who did not complete setup within 7 days churned 2.1× as often as customers who completed setup within "
        "7 days (42% vs 20%; risk ratio 2.1, 95% CI 1.6–2.8; 161 vs 230 customers)."
    )
    assert not causal_words(s)
    # score = |ln 2.1| × ln(1 + 161)
    assert ins.loc[0, "score"] == pytest.approx(np.log(2.1) * np.log1p(161))
    assert not ins.loc[0, "hedged"]


def test_wide_interval_is_hedged_and_small_support_is_left_out() -> None:
    wide = insights_data(drivers=_drivers(rr_ci_low=1.1, rr_ci_high=6.0))
    assert wide.loc[0, "sentence"].startswith("Tentatively (the interval is wide): customers who did not")
    assert wide.loc[0, "hedged"]
    small = insights_data(drivers=_drivers(n_reference=12), min_support=30)
    assert small.empty
    assert small.attrs["notes"] == ["1 result row(s) gave no sentence: fewer than 30 customers on a side."]
    assert len(insights_data(drivers=_drivers(n_reference=12), min_support=10)) == 1


def test_not_significant_rows_give_no_sentence() -> None:
    assert insights_data(drivers=_drivers(significant=False)).empty


def test_ranking_is_effect_times_support_across_topics() -> None:
    funnel = pd.DataFrame({
        "group": ["all"] * 3, "stage": ["Trial", "Setup", "Paid"], "stage_order": [0, 1, 2], "eligible": [1000, 1000, 500],
        "converted": [1000, 500, 450], "censored": [0, 0, 0], "conversion_rate": [1.0, 0.5, 0.9],
        "ci_low": [0.99, 0.47, 0.87], "ci_high": [1.0, 0.53, 0.92],
    })
    ins = insights_data(funnel=funnel, drivers=_drivers())
    # Setup: -ln 0.5 × ln 1001 = 4.79; driver: ln 2.1 × ln 162 = 3.76; Paid: -ln 0.9 × ln 501 = 0.66
    assert ins["key"].tolist() == ["Setup", "did_not_complete_setup_7d", "Paid"]
    assert ins["rank"].tolist() == [1, 2, 3]
    assert ins["topic_rank"].tolist() == [1, 1, 2]
    assert ins["score"].is_monotonic_decreasing


def test_drift_and_changes_sentences() -> None:
    drift = pd.DataFrame([{
        "kind": "event_property", "item": "login: device", "periods": "p", "statistic": "js_distance", "value": 0.15,
        "threshold": 0.1, "flagged": True, "p_value": 0.001, "q_value": 0.02, "n_current": 110, "n_reference": 393,
        "detail": "share of events: mobile: 21% → 35%",
    }])
    changes = pd.DataFrame([{
        "kpi": "churn_rate", "item": "", "unit": "share", "previous_period": "2024-01", "current_period": "2024-02",
        "previous_value": 0.05, "current_value": 0.10, "difference": 0.05, "ci_low": 0.027, "ci_high": 0.073,
        "p_value": 1e-5, "q_value": 1e-5, "flagged": True, "previous_n": 1000, "current_n": 1000, "test": "z",
    }])
    ins = insights_data(drift=drift, changes=changes)
    text = " ".join(ins["sentence"])
    assert "login: device (js distance 0.15, above the 0.1 threshold; q = 0.02; 110 recent vs 393 earlier customers)" in text
    assert "churn rate moved from 5% to 10% (difference +5.0 points, 95% CI +2.7 to +7.3)" in text


def test_causal_words_guard() -> None:
    assert causal_words("Onboarding drives retention and results in renewals") == ["drives", "results in"]
    assert causal_words("Customers who onboarded churned 0.4× as often (associated with onboarding).") == []
    bad = _drivers(exposure="whose setup leads to success")
    with pytest.raises(ValueError, match=r"the drivers sentence uses the causal word\(s\) \['leads to'\]"):
        insights_data(drivers=bad)


def test_min_support_must_be_positive() -> None:
    with pytest.raises(ValueError, match="min_support must be a positive whole number of customers; got 0"):
        insights_data(min_support=0)


# -- the LLM path, against a local stub --------------------------------------------------------
class _Stub(BaseHTTPRequestHandler):
    mode = "ok"
    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])).decode("utf-8"))
        type(self).received.append({"path": self.path, "body": body, "auth": self.headers.get("Authorization")})
        if self.mode == "500":
            self.send_response(500)
            self.end_headers()
            self.wfile.write(b"internal error")
            return
        sentences = json.loads(body["messages"][1]["content"])
        if self.mode == "garbage":
            content = "Sure! Here are your sentences: <html>"
        elif self.mode == "causal":
            content = json.dumps([s.replace("churned", "churned because of setup, ") for s in sentences])
        else:
            content = json.dumps(["In short: " + s for s in sentences])
        payload = json.dumps({"choices": [{"message": {"role": "assistant", "content": content}}]}).encode("utf-8")
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: Any) -> None:
        return


@pytest.fixture
def stub() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _Stub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Stub.received = []
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


def _insights_with_pii() -> pd.DataFrame:
    ins = insights_data(drivers=_drivers())
    ins.loc[0, "sentence"] = ins.loc[0, "sentence"] + " Contact jane.doe@example.com."
    return ins


def test_llm_off_by_default() -> None:
    res = rewrite_insights(insights_data(drivers=_drivers()))
    assert res.status == "off"
    assert res.insights["text"].tolist() == res.insights["sentence"].tolist()
    assert not res.insights["rewritten"].any()


def test_llm_rewrites_with_pii_masked_and_saves_the_prompt(stub: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JL_TEST_KEY", "secret-key")
    _Stub.mode = "ok"
    res = rewrite_insights(_insights_with_pii(), config=LLMConfig(base_url=stub, model="m", api_key_env="JL_TEST_KEY"))
    assert res.status == "ok"
    assert res.insights.loc[0, "text"].startswith("In short: Customers who did not complete setup")
    assert res.insights.loc[0, "rewritten"]
    sent = _Stub.received[0]
    assert sent["path"] == "/v1/chat/completions"
    assert sent["auth"] == "Bearer secret-key"
    assert "jane.doe@example.com" not in json.dumps(sent["body"])
    assert "[EMAIL]" in sent["body"]["messages"][1]["content"]
    prompt = res.prompt.iloc[0]
    assert prompt["status"] == "ok"
    assert "[EMAIL]" in prompt["messages"]
    assert "secret-key" not in prompt.to_json()


@pytest.mark.parametrize(("mode", "reason"), [("500", "answered HTTP 500"), ("garbage", "could not be read"),
                                              ("causal", "changed a number or used a causal word")])
def test_llm_falls_back_to_the_templates(stub: str, mode: str, reason: str) -> None:
    _Stub.mode = mode
    ins = insights_data(drivers=_drivers())
    res = rewrite_insights(ins, config=LLMConfig(base_url=stub, model="m"))
    assert res.status == "fallback"
    assert reason in res.reason
    assert res.insights["text"].tolist() == ins["sentence"].tolist()
    assert res.prompt.iloc[0]["status"] == "fallback"


def test_llm_unreachable_endpoint_falls_back() -> None:
    # a port nothing listens on (bound, then closed)
    server = HTTPServer(("127.0.0.1", 0), _Stub)
    port = server.server_address[1]
    server.server_close()
    ins = insights_data(drivers=_drivers())
    res = rewrite_insights(ins, config=LLMConfig(base_url=f"http://127.0.0.1:{port}/v1", model="m", timeout_seconds=2))
    assert res.status == "fallback"
    assert "could not be reached" in res.reason
    assert res.insights["text"].tolist() == ins["sentence"].tolist()


def test_topic_sentences() -> None:
    ins = insights_data(drivers=_drivers())
    assert topic_sentences(ins, "churn drivers") == ins["sentence"].tolist()
    assert topic_sentences(ins) == ins["sentence"].tolist()
    assert topic_sentences(ins, "friction") == [
        "No friction finding is stated: none had enough customers on each side and a result clear of noise."
    ]
