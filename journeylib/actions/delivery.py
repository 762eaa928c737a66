"""Webhook delivery of alerts that loses nothing: signed, retried with backoff, dead-lettered, redelivered.

:func:`deliver_alerts` takes an alerts frame (:data:`ALERT_COLUMNS`) and the
endpoints (:class:`~journeylib.config.delivery.Endpoint`), records one
delivery per (alert, endpoint) in the store (:mod:`journeylib.store.deliveries`)
and POSTs each one until a 2xx response, or until its attempts run out and
it becomes a dead letter. :func:`redeliver` sends dead letters again.

Guarantees, and what they rest on
---------------------------------
* **Nothing is lost.** A delivery is recorded before its first attempt and
  leaves the open states only as ``delivered`` (a 2xx response was read),
  ``dead`` (a ``dead_letters`` row says why) or ``held_out``. A run that
  dies leaves open rows that the next run over the same endpoints finishes.
* **Nothing is sent twice by a run that knows the outcome.** A delivered row
  is never sent again; retries follow failures only.
* **At-least-once, not exactly-once, on the wire.** A request can reach the
  receiver while its outcome is lost: a timeout after the receiver
  processed it, or a process killed between sending and recording (found as
  an ``interrupted`` attempt by the next run). Both are sent again, with the
  same ``Idempotency-Key`` header and the same body. Exactly-once *effect*
  end to end holds only if the receiver keeps the keys it has processed and
  drops repeats; a receiver that ignores the key may show such an alert
  twice. A dead letter likewise means "not confirmed", not "not received".

Each request carries ``Idempotency-Key`` (one per alert and endpoint:
:func:`idempotency_key`), ``X-Journeylib-Timestamp`` (Unix seconds) and,
when the endpoint has a secret, ``X-Journeylib-Signature:
sha256=<hex>``, the HMAC-SHA256 of ``"<timestamp>." + body`` under the
secret (:func:`sign_body`; receivers check it with
:func:`verify_signature`).
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import http.client
import json
import math
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pandas as pd

from journeylib.config.delivery import DeliveryConfig, Endpoint
from journeylib.exceptions import ConfigError, SchemaError
from journeylib.store import Store
from journeylib.store.deliveries import (
    begin_attempt,
    delivery_log,
    ensure_delivery_tables,
    finish_attempt,
    open_deliveries,
    plan_deliveries,
    planned_conflicts,
    requeue_dead_letters,
)

__all__ = [
    "ALERT_COLUMNS",
    "IDEMPOTENCY_HEADER",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "DeliveryReport",
    "alert_body",
    "deliver_alerts",
    "idempotency_key",
    "is_retryable_status",
    "redeliver",
    "sign_body",
    "verify_signature",
]

#: Columns of the alerts frame :func:`deliver_alerts` takes.
ALERT_COLUMNS: tuple[str, ...] = (
    "alert_id",
    "customer_id",
    "name",
    "owner",
    "severity",
    "rule",
    "why",
    "next_step",
    "raised_at",
    "as_of",
    "holdout",
)
#: Header carrying the delivery's idempotency key (the same on every attempt and redelivery).
IDEMPOTENCY_HEADER = "Idempotency-Key"
#: Header carrying ``sha256=<hex>``, the HMAC-SHA256 of ``"<timestamp>." + body``.
SIGNATURE_HEADER = "X-Journeylib-Signature"
#: Header carrying the signing time in Unix seconds.
TIMESTAMP_HEADER = "X-Journeylib-Timestamp"
#: Header carrying ``<round>.<attempt>`` (round 0 is the first delivery; attempts count from 1).
ATTEMPT_HEADER = "X-Journeylib-Attempt"

#: Characters of a response body or error message kept in the log.
MAX_ERROR_CHARS = 300
#: Characters of a Slack text block (Slack refuses sections over 3,000).
_SLACK_TEXT_CHARS = 2900
_INTERRUPTED = (
    "the process stopped after this attempt was sent and before its outcome was recorded; the outcome is "
    "unknown, so the alert is sent again with the same idempotency key"
)


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class DeliveryReport:
    """What one :func:`deliver_alerts` or :func:`redeliver` run did.

    Attributes
    ----------
    planned : int
        (alert, endpoint) deliveries recorded by this run (not held out).
    held_out : int
        (alert, endpoint) pairs of held-out alerts recorded by this run (never sent).
    already_recorded : int
        (alert, endpoint) pairs of the input recorded by an earlier run (left as they were).
    requeued : int
        Dead letters put back in line by :func:`redeliver`.
    resumed : int
        Attempts found in flight from a run that stopped between sending and
        recording (outcome unknown; sent again with the same key).
    attempts : int
        HTTP requests made by this run.
    delivered : int
        Deliveries confirmed by a 2xx response in this run.
    dead_lettered : int
        Deliveries given up in this run (each has a ``dead_letters`` row).
    open_elsewhere : int
        Open deliveries to endpoints not passed to this run (left for a run that passes them).
    outcomes : pandas.DataFrame
        One row per delivery this run recorded, attempted or gave up:
        ``idempotency_key``, ``alert_id``, ``customer_id``, ``endpoint``,
        ``status`` (delivered, dead, held_out), ``round``, ``attempts``
        (in the round), ``total_attempts``, ``http_status`` (last),
        ``error`` (last; empty when delivered), ``delivered_at``.
    notes : tuple of str
        Things the caller should know (conflicting re-submissions, ignored
        columns, interrupted attempts, open deliveries left alone).
    """

    planned: int
    held_out: int
    already_recorded: int
    requeued: int
    resumed: int
    attempts: int
    delivered: int
    dead_lettered: int
    open_elsewhere: int
    outcomes: pd.DataFrame = field(repr=False)
    notes: tuple[str, ...] = ()

    def summary(self) -> str:
        """Return the run in one plain-English paragraph.

        Returns
        -------
        str
            Counts of the run, then its notes.
        """
        text = (
            f"{self.delivered} delivered and {self.dead_lettered} dead-lettered in {self.attempts} HTTP attempt(s); "
            f"{self.planned} new deliveries, {self.held_out} held out (not sent), {self.already_recorded} already "
            f"recorded, {self.requeued} dead letter(s) requeued, {self.resumed} interrupted attempt(s) resumed, "
            f"{self.open_elsewhere} open for endpoints not in this run."
        )
        return " ".join([text, *self.notes])


# -- keys, bodies and signatures ---------------------------------------------------------------


def idempotency_key(alert_id: str, endpoint: str) -> str:
    """Return the idempotency key of the delivery of an alert to an endpoint.

    Parameters
    ----------
    alert_id : str
        The alert.
    endpoint : str
        The endpoint's name.

    Returns
    -------
    str
        ``"jl-"`` and 32 hex digits of the SHA-256 of both; the same for the
        same pair in every run, distinct for distinct pairs.

    Examples
    --------
    >>> idempotency_key("a1", "hub") == idempotency_key("a1", "hub") != idempotency_key("a1", "slack")
    True
    """
    digest = hashlib.sha256(f"{alert_id}\x1f{endpoint}".encode()).hexdigest()
    return f"jl-{digest[:32]}"


def sign_body(body: bytes, secret: bytes, timestamp: int) -> str:
    """Return the signature header value of a body: ``sha256=`` and the HMAC-SHA256 of ``"<timestamp>." + body``.

    Parameters
    ----------
    body : bytes
        The request body, byte for byte.
    secret : bytes
        The endpoint's key.
    timestamp : int
        Unix seconds, sent in :data:`TIMESTAMP_HEADER`.

    Returns
    -------
    str
        ``"sha256=<64 hex digits>"``.

    Examples
    --------
    >>> sign_body(b"{}", b"k", 0)[:7]
    'sha256='
    """
    mac = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def verify_signature(
    body: bytes,
    secret: bytes,
    *,
    timestamp: str,
    signature: str,
    now: float | None = None,
    tolerance_s: float = 300.0,
) -> bool:
    """Check a received request's signature, for receivers (constant-time comparison).

    Parameters
    ----------
    body : bytes
        The raw request body.
    secret : bytes
        The shared key.
    timestamp : str
        The :data:`TIMESTAMP_HEADER` value.
    signature : str
        The :data:`SIGNATURE_HEADER` value.
    now : float, optional
        The receiver's time in Unix seconds (default the wall clock).
    tolerance_s : float, default 300
        Largest accepted distance between *timestamp* and *now*, against
        replays of old requests; ``math.inf`` turns the check off.

    Returns
    -------
    bool
        Whether the signature matches and the timestamp is recent enough.

    Examples
    --------
    >>> verify_signature(b"{}", b"k", timestamp="0", signature=sign_body(b"{}", b"k", 0), now=10)
    True
    """
    try:
        ts = int(timestamp)
    except (TypeError, ValueError):
        return False
    clock = time.time() if now is None else now
    if abs(clock - ts) > tolerance_s:
        return False
    return hmac.compare_digest(sign_body(body, secret, ts), signature)


def is_retryable_status(status: int) -> bool:
    """Return whether an HTTP status is worth another attempt: 408, 425, 429 and every 5xx.

    Other statuses (3xx, the other 4xx) are refusals that the same request
    meets again; such a delivery is dead-lettered at once, and
    :func:`redeliver` sends it after the cause (URL, secret) is fixed.

    Parameters
    ----------
    status : int
        The response's status (2xx are deliveries, not asked about here).

    Returns
    -------
    bool
        True for a transient failure.
    """
    return status >= 500 or status in (408, 425, 429)


def alert_body(alert: Mapping[str, Any], *, kind: str, key: str) -> str:
    """Return the JSON body of one alert for an endpoint kind.

    Parameters
    ----------
    alert : mapping
        The alert's fields (:data:`ALERT_COLUMNS` without ``holdout``);
        ``raised_at`` and ``as_of`` as ISO 8601 text or timestamps.
    kind : {"json", "slack"}
        ``json``: ``{"event": "journeylib.alert", "idempotency_key": ...,
        "alert": {alert_id, customer_id, name, owner, severity, rule, why,
        next_step, raised_at, as_of}}``. ``slack``: a Slack-compatible
        message, ``{"text": <one-line fallback>, "blocks": [header, section
        (why, next step), context (owner, rule, customer, raised, alert)]}``
        with Slack's ``&``, ``<``, ``>`` escaped.
    key : str
        The delivery's idempotency key (in the json body).

    Returns
    -------
    str
        Compact JSON (UTF-8 text, non-ASCII kept).

    Raises
    ------
    ValueError
        If *kind* is neither ``json`` nor ``slack``.
    """
    fields = {c: _plain(alert.get(c)) for c in ALERT_COLUMNS if c != "holdout"}
    if kind == "json":
        payload: dict[str, Any] = {"event": "journeylib.alert", "idempotency_key": key, "alert": fields}
    elif kind == "slack":
        payload = _slack_message(fields)
    else:
        msg = f"alert_body: kind must be 'json' or 'slack'; got {kind!r}"
        raise ValueError(msg)
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


def _plain(value: Any) -> Any:
    """Return a JSON-ready value: timestamps as ISO 8601 UTC, NaN/NaT/None as null, numpy scalars as Python ones."""
    if value is None:
        return None
    if isinstance(value, (pd.Timestamp, datetime)):
        stamp = pd.Timestamp(value)
        if pd.isna(stamp):
            return None
        stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
        return stamp.isoformat().replace("+00:00", "Z")
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _slack_escape(text: Any) -> str:
    return "" if text is None else str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _slack_message(f: Mapping[str, Any]) -> dict[str, Any]:
    severity = str(f.get("severity") or "alert")
    title = f"{severity.upper()} · {f.get('name') or f.get('customer_id')}"
    body = f"*Why:* {_slack_escape(f.get('why'))}\n*Next step:* {_slack_escape(f.get('next_step'))}"
    context = (
        f"Owner: {_slack_escape(f.get('owner'))} · rule `{_slack_escape(f.get('rule'))}` · "
        f"customer {_slack_escape(f.get('customer_id'))} · raised {_slack_escape(f.get('raised_at'))} · "
        f"alert {_slack_escape(f.get('alert_id'))}"
    )
    fallback = f"[{severity}] {f.get('name') or f.get('customer_id')}: {f.get('why') or f.get('rule')} → {f.get('next_step')}"
    return {
        "text": _slack_escape(fallback)[:_SLACK_TEXT_CHARS],
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": title[:150]}},
            {"type": "section", "text": {"type": "mrkdwn", "text": body[:_SLACK_TEXT_CHARS]}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": context[:_SLACK_TEXT_CHARS]}]},
        ],
    }


# -- the public runs ---------------------------------------------------------------------------


def deliver_alerts(
    store: Store,
    alerts: pd.DataFrame,
    endpoints: DeliveryConfig | Sequence[Endpoint],
    *,
    clock: Callable[[], datetime] = _utc_now,
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
    environ: Mapping[str, str] | None = None,
) -> DeliveryReport:
    """Deliver alerts to webhook endpoints: each (alert, endpoint) delivered once or dead-lettered.

    Steps: (1) check every endpoint's URL and secret in the environment,
    before anything is written or sent; (2) record one delivery per (alert,
    endpoint) in one transaction, held-out alerts as ``held_out`` (never
    sent), pairs recorded by an earlier run left as they are; (3) resolve
    attempts an earlier run left in flight (``interrupted``); (4) send every
    open delivery to these endpoints (this run's and earlier runs'), the
    earliest due first, waiting between attempts of a delivery as its
    endpoint's backoff says, until each is delivered or dead-lettered.

    Parameters
    ----------
    store : Store
        A writable store; it keeps the delivery log
        (:mod:`journeylib.store.deliveries`).
    alerts : pandas.DataFrame
        One row per alert with :data:`ALERT_COLUMNS`: ``alert_id`` (distinct,
        non-empty), ``customer_id``, ``name`` (company), ``owner``,
        ``severity``, ``rule``, ``why``, ``next_step``, ``raised_at`` and
        ``as_of`` (timestamps; naive ones are taken as UTC), ``holdout``
        (bool). Other columns are not sent (a note names them). May be
        empty: open deliveries are still finished.
    endpoints : DeliveryConfig or sequence of Endpoint
        Where to deliver (distinct names).
    clock : callable, default the UTC wall clock
        Returns the current time (timezone-aware); every recorded time and
        the signing timestamp come from it.
    sleep : callable, default time.sleep
        Waits the given seconds before an attempt that is not due yet.
    rng : random.Random, optional
        The jitter draws (default a fresh, system-seeded generator).
    environ : mapping, optional
        Where ``secret_env`` and ``url_env`` are read (default ``os.environ``).

    Returns
    -------
    DeliveryReport
        Counts, the outcome of every delivery the run handled and notes.

    Raises
    ------
    ConfigError
        If an endpoint's secret or URL variable is unset (every problem at
        once; nothing written or sent).
    SchemaError
        If *alerts* lacks columns, has empty or repeated ``alert_id`` or
        ``customer_id`` values, a ``holdout`` that is not boolean, or a
        timestamp that cannot be read.
    journeylib.exceptions.StoreError
        If the store is read-only.

    Notes
    -----
    Delivery is at-least-once on the wire: see the module's documentation.
    Run one delivery per store at a time (a writable store is held by one
    process; do not share one :class:`Store` between threads that deliver).
    """
    targets = _targets(endpoints, environ)
    frame, notes = _checked_alerts(alerts)
    ensure_delivery_tables(store)
    planned = _plan(frame, list(targets.values()))
    conflicts = planned_conflicts(store, planned)
    at = _now(clock)
    before = set(delivery_log(store, keys=planned["idempotency_key"].tolist())["idempotency_key"])
    added = plan_deliveries(store, planned, at=at)
    new = planned[~planned["idempotency_key"].isin(before)]
    if not conflicts.empty:
        notes.append(
            f"{len(conflicts)} (alert, endpoint) pair(s) were recorded earlier with another body or hold-out state "
            f"(e.g. alert {conflicts['alert_id'].iloc[0]!r} to {conflicts['endpoint'].iloc[0]!r}); the recorded version "
            "is kept and delivered as it was first recorded."
        )
    run = _Run(store, targets, clock=clock, sleep=sleep, rng=rng or random.Random())
    run.work()
    touched = set(new["idempotency_key"]) | run.touched
    return _report(
        store,
        targets,
        run,
        touched=touched,
        planned=int((new["status"] == "pending").sum()),
        held_out=int((new["status"] == "held_out").sum()),
        already=len(planned) - added,
        requeued=0,
        notes=notes,
    )


def redeliver(
    store: Store,
    endpoints: DeliveryConfig | Sequence[Endpoint],
    *,
    alert_ids: Sequence[str] | None = None,
    clock: Callable[[], datetime] = _utc_now,
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
    environ: Mapping[str, str] | None = None,
) -> DeliveryReport:
    """Send dead letters again: a new round of attempts with the same idempotency key and body.

    The open dead letters of these endpoints (all, or those of *alert_ids*)
    are marked requeued and their deliveries start a new round of up to
    ``max_attempts`` attempts; then every open delivery to these endpoints
    is worked off as in :func:`deliver_alerts`. A delivery that fails again
    gets a new dead letter (the next round).

    Parameters
    ----------
    store : Store
        A writable store with a delivery log.
    endpoints : DeliveryConfig or sequence of Endpoint
        The endpoints whose dead letters are sent (by name).
    alert_ids : sequence of str, optional
        Only the dead letters of these alerts.
    clock, sleep, rng, environ
        As for :func:`deliver_alerts`.

    Returns
    -------
    DeliveryReport
        With ``requeued`` the dead letters put back in line.

    Raises
    ------
    ConfigError
        If an endpoint's secret or URL variable is unset (nothing is changed).
    journeylib.exceptions.StoreError
        If the store is read-only.
    """
    targets = _targets(endpoints, environ)
    ensure_delivery_tables(store)
    requeued = requeue_dead_letters(store, list(targets), at=_now(clock), alert_ids=alert_ids)
    notes: list[str] = []
    if alert_ids is not None:
        missing = sorted({str(a) for a in alert_ids} - set(requeued["alert_id"]))
        if missing:
            notes.append(
                f"{len(missing)} alert id(s) had no open dead letter for these endpoints: {missing[:5]}"
                f"{' ...' if len(missing) > 5 else ''}."
            )
    run = _Run(store, targets, clock=clock, sleep=sleep, rng=rng or random.Random())
    run.work()
    return _report(
        store,
        targets,
        run,
        touched=set(requeued["idempotency_key"]) | run.touched,
        planned=0,
        held_out=0,
        already=0,
        requeued=len(requeued),
        notes=notes,
    )


# -- preparing --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Target:
    endpoint: Endpoint
    url: str
    secret: bytes | None


def _targets(endpoints: DeliveryConfig | Sequence[Endpoint], environ: Mapping[str, str] | None) -> dict[str, _Target]:
    items = list(endpoints.endpoints if isinstance(endpoints, DeliveryConfig) else endpoints)
    if not items:
        msg = "deliver: no endpoints given; pass a DeliveryConfig or a list of Endpoint"
        raise ValueError(msg)
    wrong = [type(e).__name__ for e in items if not isinstance(e, Endpoint)]
    if wrong:
        msg = f"deliver: endpoints must be journeylib.config.delivery.Endpoint objects; got {wrong}"
        raise TypeError(msg)
    names = [e.name for e in items]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        msg = f"deliver: endpoint names must be distinct; repeated: {repeated}"
        raise ValueError(msg)
    out: dict[str, _Target] = {}
    problems: list[str] = []
    for endpoint in items:
        try:
            out[endpoint.name] = _Target(endpoint, endpoint.resolved_url(environ), endpoint.secret(environ))
        except ConfigError as exc:
            problems.extend(exc.problems)
    if problems:
        raise ConfigError(problems, "the environment of the delivery")
    return out


def _checked_alerts(alerts: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    if not isinstance(alerts, pd.DataFrame):
        msg = f"deliver_alerts: alerts must be a pandas DataFrame with columns {list(ALERT_COLUMNS)}; got {type(alerts).__name__}"
        raise TypeError(msg)
    missing = [c for c in ALERT_COLUMNS if c not in alerts.columns]
    if missing:
        msg = f"deliver_alerts: the alerts frame lacks column(s) {missing}; expected {list(ALERT_COLUMNS)}, got {list(alerts.columns)}"
        raise SchemaError(msg)
    notes = []
    extra = [str(c) for c in alerts.columns if c not in ALERT_COLUMNS]
    if extra:
        notes.append(f"column(s) {extra} of the alerts frame are not part of the payload and were not sent.")
    frame = alerts.loc[:, list(ALERT_COLUMNS)].copy().reset_index(drop=True)
    problems = []
    for column in ("alert_id", "customer_id"):
        text = frame[column].map(lambda v: "" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v).strip())
        empty = frame.index[text == ""].tolist()
        if empty:
            problems.append(f"{column} is empty in row(s) {empty[:5]}")
        frame[column] = text
    repeated = sorted(set(frame.loc[frame["alert_id"].duplicated() & (frame["alert_id"] != ""), "alert_id"]))
    if repeated:
        problems.append(f"alert_id repeats: {repeated[:5]}")
    holdout = frame["holdout"]
    bad = frame.index[~holdout.map(lambda v: isinstance(v, (bool, np.bool_)))].tolist()
    if bad:
        problems.append(f"holdout must be True or False; found {holdout.iloc[bad[0]]!r} in row(s) {bad[:5]}")
    for column in ("raised_at", "as_of"):
        try:
            frame[column] = pd.to_datetime(frame[column], utc=True)
        except (ValueError, TypeError) as exc:
            problems.append(f"{column} cannot be read as timestamps ({exc})")
    if problems:
        msg = "deliver_alerts: the alerts frame is not valid: " + "; ".join(problems)
        raise SchemaError(msg)
    frame["holdout"] = frame["holdout"].astype(bool)
    return frame, notes


def _plan(alerts: pd.DataFrame, targets: Sequence[_Target]) -> pd.DataFrame:
    rows = []
    for record in alerts.to_dict("records"):
        alert = {str(k): v for k, v in record.items()}
        for target in targets:
            key = idempotency_key(alert["alert_id"], target.endpoint.name)
            rows.append(
                {
                    "idempotency_key": key,
                    "alert_id": alert["alert_id"],
                    "customer_id": alert["customer_id"],
                    "endpoint": target.endpoint.name,
                    "kind": target.endpoint.kind,
                    "status": "held_out" if alert["holdout"] else "pending",
                    "body": alert_body(alert, kind=target.endpoint.kind, key=key),
                }
            )
    columns = ["idempotency_key", "alert_id", "customer_id", "endpoint", "kind", "status", "body"]
    return pd.DataFrame(rows, columns=columns).astype(object)


def _now(clock: Callable[[], datetime]) -> datetime:
    now = clock()
    if not isinstance(now, datetime) or now.tzinfo is None:
        msg = f"deliver: clock() must return a timezone-aware datetime; got {now!r}"
        raise TypeError(msg)
    return now.astimezone(UTC)


# -- sending ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Response:
    outcome: str  # delivered, http_error, timeout, connection_error
    http_status: int | None
    error: str | None
    retry_after: str | None
    elapsed_s: float


def _post(url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> _Response:
    parts = urlsplit(url)
    connection = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    started = time.monotonic()
    conn = connection(str(parts.hostname), parts.port, timeout=timeout)
    try:
        conn.request("POST", path, body=body, headers=dict(headers))
        response = conn.getresponse()
        status = int(response.status)
        retry_after = response.getheader("Retry-After")
        text = response.read(MAX_ERROR_CHARS).decode("utf-8", "replace") if not 200 <= status < 300 else ""
    except TimeoutError as exc:
        return _Response("timeout", None, f"no response within {timeout:g} s ({exc})", None, time.monotonic() - started)
    except (OSError, http.client.HTTPException) as exc:
        error = f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS]
        return _Response("connection_error", None, error, None, time.monotonic() - started)
    finally:
        conn.close()
    elapsed = time.monotonic() - started
    if 200 <= status < 300:
        return _Response("delivered", status, None, None, elapsed)
    error = f"HTTP {status}: {text.strip()}"[:MAX_ERROR_CHARS] if text.strip() else f"HTTP {status}"
    return _Response("http_error", status, error, retry_after, elapsed)


def _retry_after_s(value: str | None, now: datetime) -> float | None:
    """Seconds a ``Retry-After`` header asks for (delta seconds or an HTTP date), or None."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


class _Run:
    """Works off the open deliveries of some endpoints, earliest due first."""

    def __init__(
        self,
        store: Store,
        targets: Mapping[str, _Target],
        *,
        clock: Callable[[], datetime],
        sleep: Callable[[float], None],
        rng: random.Random,
    ) -> None:
        self.store = store
        self.targets = targets
        self.clock = clock
        self.sleep = sleep
        self.rng = rng
        self.attempts = 0
        self.delivered = 0
        self.dead = 0
        self.resumed = 0
        self.touched: set[str] = set()

    def work(self) -> None:
        rows = open_deliveries(self.store, list(self.targets))
        for row in rows[rows["status"] == "sending"].itertuples(index=False):
            self._resolve_interrupted(row)
        rows = open_deliveries(self.store, list(self.targets))
        queue: list[tuple[datetime, int, str]] = []
        now = _now(self.clock)
        for i, (key, next_at) in enumerate(zip(rows["idempotency_key"], rows["next_attempt_at"], strict=True)):
            due: datetime = now if pd.isna(next_at) else pd.Timestamp(next_at).to_pydatetime()
            queue.append((due, i, str(key)))
        heapq.heapify(queue)
        bodies = dict(zip(rows["idempotency_key"], rows["body"], strict=True))
        endpoints = dict(zip(rows["idempotency_key"], rows["endpoint"], strict=True))
        seq = len(queue)
        while queue:
            due, _, key = heapq.heappop(queue)
            wait = (due - _now(self.clock)).total_seconds()
            if wait > 0:
                self.sleep(wait)
            retry_at = self._attempt(key, self.targets[endpoints[key]], str(bodies[key]).encode("utf-8"))
            if retry_at is not None:
                seq += 1
                heapq.heappush(queue, (retry_at, seq, key))

    def _resolve_interrupted(self, row: Any) -> None:
        endpoint = self.targets[str(row.endpoint)].endpoint
        exhausted = int(row.attempts) >= endpoint.max_attempts
        finish_attempt(
            self.store,
            str(row.idempotency_key),
            round_=int(row.round),
            attempt=int(row.attempts),
            at=_now(self.clock),
            outcome="interrupted",
            status="dead" if exhausted else "retrying",
            error=_INTERRUPTED,
            wait_s=None if exhausted else 0.0,
        )
        self.resumed += 1
        self.touched.add(str(row.idempotency_key))
        if exhausted:
            self.dead += 1

    def _attempt(self, key: str, target: _Target, body: bytes) -> datetime | None:
        """Send one attempt and record it; return when the next attempt is due, or None when the delivery is final."""
        start = _now(self.clock)
        begun = begin_attempt(self.store, key, at=start)
        if begun is None:
            return None
        round_, attempt = begun
        self.attempts += 1
        self.touched.add(key)
        stamp = int(start.timestamp())
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "journeylib-delivery/1",
            IDEMPOTENCY_HEADER: key,
            TIMESTAMP_HEADER: str(stamp),
            ATTEMPT_HEADER: f"{round_}.{attempt}",
        }
        if target.secret is not None:
            headers[SIGNATURE_HEADER] = sign_body(body, target.secret, stamp)
        response = _post(target.url, body, headers, target.endpoint.timeout_s)
        end = _now(self.clock)
        endpoint = target.endpoint
        if response.outcome == "delivered":
            status, wait = "delivered", None
        elif attempt < endpoint.max_attempts and (response.http_status is None or is_retryable_status(response.http_status)):
            wait = endpoint.backoff.delay(attempt, self.rng.random())
            asked = _retry_after_s(response.retry_after, end)
            if asked is not None:
                wait = min(endpoint.backoff.max_s, max(wait, asked))
            status = "retrying"
        else:
            status, wait = "dead", None
        finish_attempt(
            self.store,
            key,
            round_=round_,
            attempt=attempt,
            at=end,
            outcome=response.outcome,
            status=status,
            http_status=response.http_status,
            error=response.error,
            elapsed_s=response.elapsed_s,
            wait_s=wait,
        )
        if status == "delivered":
            self.delivered += 1
        elif status == "dead":
            self.dead += 1
        return end + timedelta(seconds=wait) if wait is not None else None


def _report(
    store: Store,
    targets: Mapping[str, _Target],
    run: _Run,
    *,
    touched: set[str],
    planned: int,
    held_out: int,
    already: int,
    requeued: int,
    notes: list[str],
) -> DeliveryReport:
    log = delivery_log(store)
    elsewhere = log[log["status"].isin(["pending", "sending", "retrying"]) & ~log["endpoint"].isin(list(targets))]
    if not elsewhere.empty:
        names = sorted(set(elsewhere["endpoint"]))
        notes.append(
            f"{len(elsewhere)} open deliveries to endpoint(s) {names} not given to this run were left alone; "
            "run again with those endpoints to finish them."
        )
    if run.resumed:
        notes.append(
            f"{run.resumed} attempt(s) left in flight by an earlier run (stopped between sending and recording) were "
            "resolved; their alerts may reach the receiver twice, with the same idempotency key."
        )
    columns = [
        "idempotency_key",
        "alert_id",
        "customer_id",
        "endpoint",
        "status",
        "round",
        "attempts",
        "total_attempts",
        "http_status",
        "error",
        "delivered_at",
    ]
    outcomes = log[log["idempotency_key"].isin(touched)].loc[:, columns].reset_index(drop=True)
    return DeliveryReport(
        planned=planned,
        held_out=held_out,
        already_recorded=already,
        requeued=requeued,
        resumed=run.resumed,
        attempts=run.attempts,
        delivered=run.delivered,
        dead_lettered=run.dead,
        open_elsewhere=len(elsewhere),
        outcomes=outcomes,
        notes=tuple(notes),
    )
