"""Webhook delivery against a real HTTP server on 127.0.0.1 that fails on purpose.

The receiver below keeps, per idempotency key, every request it got and the
keys it *processed* (a request it accepted, whether or not the answer reached
the sender). "Delivered exactly once" is checked the way a receiver honouring
the key sees it: each key processed once after de-duplication; and on the
wire: no key gets a second request after a 2xx answer was read.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import random
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from journeylib.actions.delivery import (
    ALERT_COLUMNS,
    alert_body,
    deliver_alerts,
    idempotency_key,
    is_retryable_status,
    redeliver,
    sign_body,
    verify_signature,
)
from journeylib.config.delivery import Backoff, DeliveryConfig, Endpoint
from journeylib.exceptions import ConfigError, SchemaError
from journeylib.store import Store
from journeylib.store.deliveries import attempt_log, dead_letter_log, delivery_log

SECRET = "s3cret-for-tests"
ENV = {"JL_TEST_HOOK_SECRET": SECRET}
T0 = datetime(2024, 7, 1, 9, 0, tzinfo=UTC)


# -- the failing receiver ------------------------------------------------------------------------


class Receiver:
    """A webhook receiver whose answer to each request follows a script per idempotency key.

    Actions: ``ok`` (200), ``slow`` (200 after 0.05 s, under the client's timeout), ``500``/``503``/``404``,
    ``429`` (with ``Retry-After: 7``), ``timeout`` (processes the request, answers after the client gave up),
    ``reset`` (TCP reset, no answer), ``close`` (closes without an answer), ``hold`` (processes, then waits for
    ``release``), ``down`` (500 for every request). A key with no script left gets ``ok``.
    """

    def __init__(self, scripts: dict[str, list[str]] | None = None, *, late_s: float = 0.6) -> None:
        self.scripts: dict[str, list[str]] = defaultdict(list, {k: list(v) for k, v in (scripts or {}).items()})
        self.late_s = late_s
        self.lock = threading.Lock()
        self.requests: list[dict[str, Any]] = []
        self.processed: dict[str, int] = defaultdict(int)  # accepted requests per key (before de-duplication)
        self.answered_2xx: dict[str, int] = defaultdict(int)  # 2xx answers fully written per key
        self.got_hold = threading.Event()
        self.release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                key = self.headers.get("Idempotency-Key", "")
                with receiver.lock:
                    action = receiver.scripts[key].pop(0) if receiver.scripts[key] else "ok"
                    if action == "down":
                        receiver.scripts[key].insert(0, "down")
                    receiver.requests.append({"key": key, "headers": dict(self.headers), "body": body, "action": action})
                if action in ("ok", "slow", "timeout", "hold"):
                    with receiver.lock:
                        receiver.processed[key] += 1
                if action == "slow":
                    time.sleep(0.05)
                elif action == "timeout":
                    time.sleep(receiver.late_s)
                elif action == "hold":
                    receiver.got_hold.set()
                    receiver.release.wait(30)
                if action == "reset":
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.connection.close()
                    self.close_connection = True
                    return
                if action == "close":
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                status = {"500": 500, "503": 503, "404": 404, "429": 429, "down": 500}.get(action, 200)
                try:
                    self.send_response(status)
                    if status == 429:
                        self.send_header("Retry-After", "7")
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok" if status == 200 else b"no")
                    self.wfile.flush()
                except OSError:
                    return  # the client gave up (timeout) or is gone (killed)
                if status == 200:
                    with receiver.lock:
                        receiver.answered_2xx[key] += 1

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # resets and late writes to a gone client are the point of these tests

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    def keys_received(self) -> set[str]:
        return {r["key"] for r in self.requests}

    def count(self, key: str) -> int:
        return sum(r["key"] == key for r in self.requests)


class FakeClock:
    """A clock that moves only when the code under test sleeps (so backoff waits take no real time)."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.now += timedelta(seconds=seconds)


def make_alerts(n: int, *, held_out: tuple[int, ...] = ()) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "alert_id": [f"A{i:03d}" for i in range(n)],
            "customer_id": [f"C{i:03d}" for i in range(n)],
            "name": [f"Company <{i}> & Co" for i in range(n)],
            "owner": ["dana@example.com"] * n,
            "severity": ["high" if i % 2 else "medium" for i in range(n)],
            "rule": ["stuck_in_onboarding"] * n,
            "why": [f"no login for {5 + i} days; peers log in every 2 days" for i in range(n)],
            "next_step": ["book a CSM call"] * n,
            "raised_at": pd.Timestamp("2024-06-30 08:00", tz="UTC"),
            "as_of": pd.Timestamp("2024-06-30", tz="UTC"),
            "holdout": [i in held_out for i in range(n)],
        }
    )


def hub(url: str, **kw: Any) -> Endpoint:
    options = {"timeout_s": 0.3, "max_attempts": 4, "backoff": Backoff(base_s=2, factor=3, max_s=60, jitter=0.5)}
    options.update(kw)
    return Endpoint(name="hub", url=url, kind="json", secret_env="JL_TEST_HOOK_SECRET", **options)


def slack(url: str, **kw: Any) -> Endpoint:
    options = {"timeout_s": 0.3, "max_attempts": 3, "backoff": Backoff(base_s=1, factor=2, max_s=10, jitter=1.0)}
    options.update(kw)
    return Endpoint(name="slack", url=url, kind="slack", **options)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "d.duckdb") as s:
        yield s


def signature_ok(request: dict[str, Any]) -> bool:
    """Check the HMAC the way a receiver would, without journeylib."""
    headers = request["headers"]
    expected = hmac.new(SECRET.encode(), headers["X-Journeylib-Timestamp"].encode() + b"." + request["body"], hashlib.sha256)
    return hmac.compare_digest("sha256=" + expected.hexdigest(), headers.get("X-Journeylib-Signature", ""))


def assert_nothing_lost(store: Store, alerts: pd.DataFrame, endpoints: list[Endpoint], receiver: Receiver) -> pd.DataFrame:
    """Every (alert, endpoint) is delivered, dead or held out; delivered ones were processed by the receiver."""
    log = delivery_log(store)
    expected = {idempotency_key(a, e.name) for a in alerts["alert_id"] for e in endpoints}
    assert set(log["idempotency_key"]) == expected  # one row per pair: none lost, none invented
    held = {idempotency_key(a, e.name) for a in alerts.loc[alerts["holdout"], "alert_id"] for e in endpoints}
    assert set(log.loc[log["status"] == "held_out", "idempotency_key"]) == held
    assert set(log["status"]) <= {"delivered", "dead", "held_out"}
    assert not held & receiver.keys_received()  # held-out alerts never go out
    delivered = set(log.loc[log["status"] == "delivered", "idempotency_key"])
    assert all(receiver.processed[k] >= 1 for k in delivered)
    attempts = attempt_log(store)
    for key in delivered:
        outcomes = attempts[attempts["idempotency_key"] == key].sort_values(["round", "attempt"])["outcome"].tolist()
        # one 2xx read per delivered key, and it is the last attempt: after it the key is never sent again
        assert outcomes.count("delivered") == 1, key
        assert outcomes[-1] == "delivered", key
        assert receiver.count(key) == len(outcomes), key  # every request the receiver got is a recorded attempt
    dead = log.loc[log["status"] == "dead", "idempotency_key"]
    letters = dead_letter_log(store, open_only=True)
    assert sorted(letters["idempotency_key"]) == sorted(dead)
    return log


# -- the mixed failure scenario ------------------------------------------------------------------


def test_every_alert_delivered_once_or_dead_lettered_against_a_failing_server(store: Store) -> None:
    alerts = make_alerts(12, held_out=(10, 11))
    keys = {a: idempotency_key(a, "hub") for a in alerts["alert_id"]}
    scripts = {
        keys["A000"]: ["ok"],
        keys["A001"]: ["500", "ok"],
        keys["A002"]: ["503", "500", "ok"],
        keys["A003"]: ["timeout", "ok"],  # processed, answered late: sent again, same key
        keys["A004"]: ["reset", "ok"],
        keys["A005"]: ["close", "ok"],
        keys["A006"]: ["slow"],
        keys["A007"]: ["404"],  # refused for good: dead at once
        keys["A008"]: ["down"],  # 500 every time: dead after max_attempts
        keys["A009"]: ["429", "ok"],  # Retry-After: 7 lengthens the first wait
        idempotency_key("A001", "slack"): ["reset", "500", "ok"],
        idempotency_key("A002", "slack"): ["down"],
    }
    clock = FakeClock()
    with Receiver(scripts) as receiver:
        endpoints = [hub(receiver.url), slack(receiver.url)]
        report = deliver_alerts(store, alerts, endpoints, clock=clock, sleep=clock.sleep, rng=random.Random(3), environ=ENV)
        log = assert_nothing_lost(store, alerts, endpoints, receiver)

    status = dict(zip(log["idempotency_key"], log["status"], strict=True))
    dead = {k for k, s in status.items() if s == "dead"}
    assert dead == {keys["A007"], keys["A008"], idempotency_key("A002", "slack")}
    # counts: 10 sent alerts x 2 endpoints = 20 deliveries, 2 held-out alerts x 2 endpoints = 4 held-out rows
    assert (report.planned, report.held_out, report.delivered, report.dead_lettered) == (20, 4, 17, 3)
    assert report.attempts == len(receiver.requests)
    assert len(report.outcomes) == 24
    assert report.open_elsewhere == 0

    # exactly once after de-duplication by key; on the wire the late-answered A003 arrived twice
    processed_keys = {k for k, n in receiver.processed.items() if n > 0}
    assert processed_keys == {k for k, s in status.items() if s == "delivered"}
    assert receiver.processed[keys["A003"]] == 2
    assert receiver.answered_2xx[keys["A003"]] == 1
    assert all(n == 1 for k, n in receiver.processed.items() if k != keys["A003"])
    assert receiver.count(keys["A008"]) == 4
    assert receiver.count(keys["A007"]) == 1
    assert receiver.count(idempotency_key("A002", "slack")) == 3

    # every json request is signed with the secret from the environment; Slack ones are unsigned Slack messages
    hub_requests = [r for r in receiver.requests if r["key"] in set(keys.values())]
    assert hub_requests
    assert all(signature_ok(r) for r in hub_requests)
    slack_requests = [r for r in receiver.requests if r["key"] not in set(keys.values())]
    assert slack_requests
    assert all("X-Journeylib-Signature" not in r["headers"] for r in slack_requests)
    message = json.loads(slack_requests[0]["body"])
    assert set(message) == {"text", "blocks"}
    assert "&lt;" in message["blocks"][0]["text"]["text"] + message["text"]
    first = json.loads(next(r["body"] for r in hub_requests if r["key"] == keys["A000"]))
    assert first["idempotency_key"] == keys["A000"]
    assert first["alert"]["raised_at"] == "2024-06-30T08:00:00Z"
    # every attempt of a delivery sends the same bytes
    for key in keys.values():
        assert len({r["body"] for r in receiver.requests if r["key"] == key}) <= 1

    # the backoff schedule: wait_s within [ceiling * (1 - jitter), ceiling], and no attempt before its wait is over
    attempts = attempt_log(store)
    assert set(attempts["outcome"]) <= {"delivered", "http_error", "timeout", "connection_error"}
    by_endpoint = dict(zip(log["idempotency_key"], log["endpoint"], strict=True))
    backoffs = {e.name: e.backoff for e in endpoints}
    for key, rows in attempts.groupby("idempotency_key"):
        rows = rows.sort_values("attempt").reset_index(drop=True)
        assert rows["attempt"].tolist() == list(range(1, len(rows) + 1))
        b = backoffs[by_endpoint[key]]
        for i in range(len(rows) - 1):
            wait = rows.loc[i, "wait_s"]
            ceiling = b.ceiling(i + 1)
            if key == keys["A009"] and i == 0:
                assert ceiling == 2  # the jittered wait (1 to 2 s) is lengthened to what Retry-After: 7 asks
                assert wait == pytest.approx(7.0)
            else:
                assert ceiling * (1 - b.jitter) - 1e-9 <= wait <= ceiling + 1e-9
            gap = (rows.loc[i + 1, "started_at"] - rows.loc[i, "finished_at"]).total_seconds()
            assert gap >= wait - 1e-6
        assert pd.isna(rows["wait_s"].iloc[-1])
    assert clock.sleeps
    assert max(clock.sleeps) <= 60

    # a second run with the same alerts sends nothing and changes nothing
    before = len(receiver.requests)
    again = deliver_alerts(store, alerts, endpoints, clock=clock, sleep=clock.sleep, environ=ENV)
    assert (again.planned, again.attempts, again.already_recorded) == (0, 0, 24)
    assert len(receiver.requests) == before


def test_redeliver_sends_dead_letters_again_with_the_same_key(store: Store) -> None:
    alerts = make_alerts(3)
    _k0, k1, k2 = (idempotency_key(a, "hub") for a in alerts["alert_id"])
    clock = FakeClock()
    with Receiver({k1: ["down"], k2: ["404"]}) as receiver:
        endpoints = [hub(receiver.url, max_attempts=2)]
        first = deliver_alerts(store, alerts, endpoints, clock=clock, sleep=clock.sleep, environ=ENV)
        assert (first.delivered, first.dead_lettered) == (1, 2)
        letters = dead_letter_log(store, open_only=True)
        assert sorted(letters["idempotency_key"]) == sorted([k1, k2])
        assert letters.set_index("idempotency_key").loc[k2, "http_status"] == 404

        receiver.scripts[k1] = []  # the receiver is fixed
        only_k1 = redeliver(store, endpoints, alert_ids=["A001", "A999"], clock=clock, sleep=clock.sleep, environ=ENV)
        assert (only_k1.requeued, only_k1.delivered, only_k1.attempts) == (1, 1, 1)
        assert any("A999" in n for n in only_k1.notes)
        rest = redeliver(store, endpoints, clock=clock, sleep=clock.sleep, environ=ENV)
        assert (rest.requeued, rest.delivered, rest.dead_lettered) == (1, 1, 0)
        none_left = redeliver(store, endpoints, clock=clock, sleep=clock.sleep, environ=ENV)
        assert (none_left.requeued, none_left.attempts) == (0, 0)
        log = assert_nothing_lost(store, alerts, endpoints, receiver)

    assert set(log["status"]) == {"delivered"}
    assert log.set_index("idempotency_key").loc[[k1, k2], "round"].tolist() == [1, 1]
    assert all(n == 1 for n in receiver.processed.values())
    assert len(receiver.processed) == 3
    letters = dead_letter_log(store)
    assert len(letters) == 2
    assert letters["requeued_at"].notna().all()
    headers = [r["headers"]["X-Journeylib-Attempt"] for r in receiver.requests if r["key"] == k1]
    assert headers == ["0.1", "0.2", "1.1"]


def test_a_stop_between_attempts_loses_nothing(store: Store) -> None:
    alerts = make_alerts(4)
    keys = [idempotency_key(a, "hub") for a in alerts["alert_id"]]

    class Stop(Exception):
        pass

    clock = FakeClock()

    def stopping_sleep(seconds: float) -> None:
        raise Stop  # the process is stopped while it waits for a retry

    with Receiver({keys[1]: ["500"], keys[2]: ["500"]}) as receiver:
        endpoints = [hub(receiver.url)]
        with pytest.raises(Stop):
            deliver_alerts(store, alerts, endpoints, clock=clock, sleep=stopping_sleep, environ=ENV)
        mid = delivery_log(store)
        assert set(mid["status"]) <= {"pending", "retrying", "delivered"}
        assert (mid["status"] != "delivered").any()
        report = deliver_alerts(store, alerts.iloc[:0], endpoints, clock=clock, sleep=clock.sleep, environ=ENV)
        assert report.resumed == 0
        assert report.planned == 0
        assert_nothing_lost(store, alerts, endpoints, receiver)
    assert set(delivery_log(store)["status"]) == {"delivered"}
    assert all(n == 1 for n in receiver.processed.values())
    assert len(receiver.processed) == 4


def test_a_stop_between_send_and_record_is_resolved_on_the_next_run(store: Store) -> None:
    alerts = make_alerts(3)
    keys = [idempotency_key(a, "hub") for a in alerts["alert_id"]]

    class Killed(BaseException):
        pass

    class DyingClock(FakeClock):
        """Raises the first time it is read after the receiver processed keys[1]: after sending, before recording."""

        armed = True

        def __call__(self) -> datetime:
            if self.armed and receiver.processed.get(keys[1]):
                self.armed = False
                raise Killed
            return self.now

    clock = DyingClock()
    with Receiver() as receiver:
        endpoints = [hub(receiver.url)]
        with pytest.raises(Killed):
            deliver_alerts(store, alerts, endpoints, clock=clock, sleep=clock.sleep, environ=ENV)
        mid = delivery_log(store).set_index("idempotency_key")
        assert mid.loc[keys[1], "status"] == "sending"
        report = deliver_alerts(store, alerts, endpoints, clock=clock, sleep=clock.sleep, environ=ENV)
        assert report.resumed == 1
        assert report.already_recorded == 3
        assert any("in flight" in n for n in report.notes)
        assert_nothing_lost(store, alerts, endpoints, receiver)
    assert set(delivery_log(store)["status"]) == {"delivered"}
    # at-least-once on the wire: the interrupted key arrived twice; a receiver honouring the key keeps one
    assert receiver.count(keys[1]) == 2
    assert {r["key"] for r in receiver.requests} == set(keys)
    assert receiver.count(keys[0]) == 1
    assert receiver.count(keys[2]) == 1
    outcomes = attempt_log(store, keys=[keys[1]])["outcome"].tolist()
    assert outcomes == ["interrupted", "delivered"]


CHILD = """
import os, sys, pandas as pd
from journeylib.actions.delivery import deliver_alerts
from journeylib.config.delivery import DeliveryConfig
from journeylib.store import Store
alerts = pd.read_pickle(sys.argv[2])
config = DeliveryConfig.from_yaml(sys.argv[3])
with Store(sys.argv[1]) as store:
    deliver_alerts(store, alerts, config, sleep=lambda s: None)
"""


def test_a_process_killed_between_send_and_record_loses_nothing_and_sends_no_duplicate_effect(tmp_path: Path) -> None:
    alerts = make_alerts(5)
    keys = [idempotency_key(a, "hub") for a in alerts["alert_id"]]
    alerts.to_pickle(tmp_path / "alerts.pkl")
    db = tmp_path / "killed.duckdb"
    with Receiver({keys[2]: ["hold"], keys[3]: ["500"]}) as receiver:
        config = tmp_path / "delivery.yaml"
        config.write_text(
            f"endpoints:\n  - name: hub\n    url: {receiver.url}\n    secret_env: JL_TEST_HOOK_SECRET\n    timeout_s: 20\n",
            encoding="utf-8",
        )
        env = {**os.environ, **ENV}
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(db), str(tmp_path / "alerts.pkl"), str(config)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            assert receiver.got_hold.wait(60), child.stderr.read().decode() if child.poll() is not None else "no request"
            os.kill(child.pid, signal.SIGKILL)  # the request is sent and processed; its outcome is never recorded
            child.wait(30)
        finally:
            if child.poll() is None:
                child.kill()
        receiver.release.set()
        assert child.returncode == -signal.SIGKILL
        endpoints = list(DeliveryConfig.from_yaml(config).endpoints)
        with Store(db) as store:
            before = delivery_log(store).set_index("idempotency_key")["status"]
            assert before[keys[2]] == "sending"
            assert (before == "delivered").sum() == 2
            clock = FakeClock(datetime.now(UTC))
            report = deliver_alerts(store, alerts, endpoints, clock=clock, sleep=clock.sleep, environ=ENV)
            assert report.resumed == 1
            assert report.planned == 0
            assert report.already_recorded == 5
            assert_nothing_lost(store, alerts, endpoints, receiver)
            assert set(delivery_log(store)["status"]) == {"delivered"}
    assert receiver.count(keys[2]) == 2
    assert receiver.processed[keys[2]] == 2
    assert {k for k, n in receiver.processed.items() if n} == set(keys)  # de-duplicated by key: each alert once
    assert all(receiver.processed[k] == 1 for k in keys if k != keys[2])


# -- the pieces ----------------------------------------------------------------------------------


def test_signature_is_hmac_sha256_of_timestamp_and_body() -> None:
    body = b'{"a":1}'
    expected = "sha256=" + hmac.new(b"k", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert sign_body(body, b"k", 1_700_000_000) == expected
    assert verify_signature(body, b"k", timestamp="1700000000", signature=expected, now=1_700_000_100)
    assert not verify_signature(body + b" ", b"k", timestamp="1700000000", signature=expected, now=1_700_000_100)
    assert not verify_signature(body, b"other", timestamp="1700000000", signature=expected, now=1_700_000_100)
    assert not verify_signature(body, b"k", timestamp="1700000000", signature=expected, now=1_700_000_301)  # too old
    assert not verify_signature(body, b"k", timestamp="x", signature=expected)


def test_backoff_ceiling_and_jitter_bounds() -> None:
    b = Backoff(base_s=2, factor=3, max_s=60, jitter=0.5)
    # 2, 6, 18, 54, then capped at 60
    assert [b.ceiling(n) for n in range(1, 6)] == [2, 6, 18, 54, 60]
    assert b.delay(3, 0.0) == 18
    assert b.delay(3, 0.5) == pytest.approx(13.5)
    assert b.ceiling(10_000) == 60
    with pytest.raises(ValueError, match="u must be"):
        b.delay(1, 1.0)
    with pytest.raises(ValueError, match="attempt must be 1 or more"):
        b.ceiling(0)


def test_retryable_statuses() -> None:
    assert [is_retryable_status(s) for s in (500, 502, 503, 408, 429, 425)] == [True] * 6
    assert [is_retryable_status(s) for s in (400, 401, 403, 404, 301, 422)] == [False] * 6


def test_idempotency_key_and_bodies() -> None:
    assert idempotency_key("A1", "hub") != idempotency_key("A1", "hub2") != idempotency_key("A2", "hub")
    assert idempotency_key("A1", "hub") == idempotency_key("A1", "hub")
    assert idempotency_key("A1", "hub").startswith("jl-")
    alert = make_alerts(1).iloc[0].to_dict()
    body = json.loads(alert_body(alert, kind="json", key="k"))
    assert body["event"] == "journeylib.alert"
    assert body["alert"]["name"] == "Company <0> & Co"
    assert set(body["alert"]) == set(ALERT_COLUMNS) - {"holdout"}
    message = json.loads(alert_body(alert, kind="slack", key="k"))
    assert "Company &lt;0&gt; &amp; Co" in message["text"]
    with pytest.raises(ValueError, match="kind must be 'json' or 'slack'"):
        alert_body(alert, kind="email", key="k")


def test_missing_secret_is_refused_before_anything_is_written(store: Store) -> None:
    endpoints = [hub("http://127.0.0.1:9/x"), Endpoint(name="s", url_env="JL_TEST_SLACK_URL", kind="slack")]
    with pytest.raises(ConfigError, match=r"JL_TEST_HOOK_SECRET \(secret_env\) is not set[\s\S]*JL_TEST_SLACK_URL"):
        deliver_alerts(store, make_alerts(2), endpoints, environ={})
    assert delivery_log(store).empty


def test_alerts_frame_is_checked(store: Store) -> None:
    endpoints = [hub("http://127.0.0.1:9/x")]
    with pytest.raises(SchemaError, match=r"lacks column\(s\) \['holdout'\]"):
        deliver_alerts(store, make_alerts(2).drop(columns="holdout"), endpoints, environ=ENV)
    twice = pd.concat([make_alerts(2), make_alerts(1)], ignore_index=True)
    with pytest.raises(SchemaError, match=r"alert_id repeats: \['A000'\]"):
        deliver_alerts(store, twice, endpoints, environ=ENV)
    wrong = make_alerts(2).assign(holdout=["no", False])
    with pytest.raises(SchemaError, match="holdout must be True or False; found 'no'"):
        deliver_alerts(store, wrong, endpoints, environ=ENV)
    with pytest.raises(TypeError, match="timezone-aware"):
        deliver_alerts(store, make_alerts(1), endpoints, environ=ENV, clock=lambda: datetime(2024, 1, 1))
    assert delivery_log(store).empty


def test_a_changed_resubmission_keeps_the_recorded_version(store: Store) -> None:
    clock = FakeClock()
    with Receiver() as receiver:
        endpoints = [hub(receiver.url)]
        deliver_alerts(store, make_alerts(2), endpoints, clock=clock, sleep=clock.sleep, environ=ENV)
        changed = make_alerts(2).assign(why="something else", extra=1)
        report = deliver_alerts(store, changed, endpoints, clock=clock, sleep=clock.sleep, environ=ENV)
    assert report.attempts == 0
    assert report.already_recorded == 2
    assert any("another body" in n for n in report.notes)
    assert any("['extra']" in n for n in report.notes)
    assert len(receiver.requests) == 2


def test_open_deliveries_of_endpoints_not_given_are_reported(store: Store) -> None:
    clock = FakeClock()

    def stop(seconds: float) -> None:
        raise RuntimeError("stop")

    with Receiver({idempotency_key("A000", "hub"): ["500"]}) as receiver:
        endpoints = [hub(receiver.url)]
        with pytest.raises(RuntimeError, match="stop"):  # the hub delivery is left waiting for its retry
            deliver_alerts(store, make_alerts(1), endpoints, clock=clock, sleep=stop, environ=ENV)
        other = deliver_alerts(store, make_alerts(0), [slack(receiver.url)], clock=clock, sleep=clock.sleep, environ=ENV)
        assert other.open_elsewhere == 1
        assert other.attempts == 0
        assert any("['hub']" in n for n in other.notes)
        done = deliver_alerts(store, make_alerts(0), endpoints, clock=clock, sleep=clock.sleep, environ=ENV)
        assert (done.delivered, done.open_elsewhere) == (1, 0)
    assert receiver.count(idempotency_key("A000", "hub")) == 2


def test_delivery_config_validation() -> None:
    cfg = DeliveryConfig.from_yaml(
        "endpoints:\n  - name: hub\n    url: https://h.example/x\n    secret_env: HUB_KEY\n"
        "  - name: team\n    url_env: SLACK_URL\n    kind: slack\n    backoff: {base_s: 1, max_s: 5}\n"
    )
    assert [e.name for e in cfg.endpoints] == ["hub", "team"]
    assert cfg.endpoints[1].backoff.max_s == 5
    with pytest.raises(ConfigError, match=r"endpoints\[0\]\.secret \(line 4\): unknown key 'secret'"):
        DeliveryConfig.from_yaml("endpoints:\n  - name: hub\n    url: https://h.example/x\n    secret: abc\n    secret_env: K\n")
    with pytest.raises(ConfigError, match="needs `secret_env`"):
        DeliveryConfig.from_dict({"endpoints": [{"name": "hub", "url": "https://h.example/x"}]})
    with pytest.raises(ConfigError, match="exactly one of `url` and `url_env`"):
        DeliveryConfig.from_dict({"endpoints": [{"name": "s", "kind": "slack"}]})
    with pytest.raises(ConfigError, match=r"url.*http:// or https://.*found 'ftp://h/x'"):
        DeliveryConfig.from_dict({"endpoints": [{"name": "s", "kind": "slack", "url": "ftp://h/x"}]})
    with pytest.raises(ConfigError, match="names must be distinct"):
        DeliveryConfig.from_dict({"endpoints": [{"name": "s", "kind": "slack", "url": "https://a/b"}] * 2})
    with pytest.raises(ConfigError, match=r"max_s \(1.0\) must be at least backoff.base_s"):
        DeliveryConfig.from_dict(
            {"endpoints": [{"name": "s", "kind": "slack", "url": "https://a/b", "backoff": {"base_s": 10, "max_s": 1}}]}
        )
