"""The delivery log: every (alert, endpoint) delivery, each of its attempts, and the dead letters.

Three tables, created on first use by :func:`ensure_delivery_tables`:

``deliveries``
    One row per idempotency key, i.e. per (alert, endpoint): its state
    (:data:`DELIVERY_STATUSES`), the exact body sent on every attempt, the
    attempts of the current round and in total, the last HTTP status or
    error and the time of the next attempt.
``delivery_attempts``
    One row per HTTP attempt, written *before* the request is sent (outcome
    ``sending``) and completed after it (:data:`ATTEMPT_OUTCOMES`). A row
    still ``sending`` when a run starts is an attempt whose process died
    between sending and recording: its outcome is unknown, and the delivery
    layer records it as ``interrupted`` and sends again with the same
    idempotency key.
``dead_letters``
    One row per delivery that ran out of attempts (or was refused for good),
    with the round, attempts and last error; ``requeued_at`` is set when
    :func:`requeue_dead_letters` sends it again (a new round).

Each state change is one transaction, so a process killed at any point
leaves either the state before or the state after it. Only the writer of a
store (one process at a time, DuckDB's file lock) changes these rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from journeylib.exceptions import StoreError
from journeylib.store.database import Store, table_ddl
from journeylib.store.dialect import SQL_TYPES
from journeylib.store.errors import cleanup
from journeylib.store.schema import Column, Table

__all__ = [
    "ATTEMPT_OUTCOMES",
    "DEAD_LETTERS",
    "DELIVERIES",
    "DELIVERY_ATTEMPTS",
    "DELIVERY_STATUSES",
    "OPEN_STATUSES",
    "attempt_log",
    "begin_attempt",
    "dead_letter_log",
    "delivery_log",
    "ensure_delivery_tables",
    "finish_attempt",
    "open_deliveries",
    "plan_deliveries",
    "planned_conflicts",
    "requeue_dead_letters",
]

#: States of a delivery: waiting for its first attempt, an attempt in flight (or cut short by a crash),
#: waiting for a retry, confirmed by a 2xx response, dead-lettered, never sent because its alert is held out.
DELIVERY_STATUSES: tuple[str, ...] = ("pending", "sending", "retrying", "delivered", "dead", "held_out")
#: States of a delivery that still needs work.
OPEN_STATUSES: tuple[str, ...] = ("pending", "sending", "retrying")
#: Outcomes of one attempt: in flight (or unknown after a crash), a 2xx response, another HTTP status,
#: a timeout, a connection failure (refused, reset, closed without a response), found in flight by a later run.
ATTEMPT_OUTCOMES: tuple[str, ...] = ("sending", "delivered", "http_error", "timeout", "connection_error", "interrupted")

DELIVERIES = Table(
    name="deliveries",
    doc="One row per (alert, endpoint): the state of its delivery and the exact body sent.",
    columns=(
        Column("idempotency_key", "id", True, doc="Key of the (alert, endpoint) pair, sent as the Idempotency-Key header."),
        Column("alert_id", "id", True, doc="The alert."),
        Column("customer_id", "id", True, doc="The alert's customer."),
        Column("endpoint", "id", True, doc="The endpoint's name."),
        Column("kind", "enum", True, allowed=("json", "slack"), doc="Payload format."),
        Column("status", "enum", True, allowed=DELIVERY_STATUSES, doc="State of the delivery."),
        Column("round", "integer", True, doc="0 for the first delivery, +1 for each redelivery of a dead letter."),
        Column("attempts", "integer", True, doc="Attempts in the current round."),
        Column("total_attempts", "integer", True, doc="Attempts in all rounds."),
        Column("planned_at", "timestamp", True, doc="When the delivery was recorded."),
        Column("next_attempt_at", "timestamp", doc="Earliest time of the next attempt (open deliveries)."),
        Column("last_attempt_at", "timestamp", doc="Start of the last attempt."),
        Column("delivered_at", "timestamp", doc="When a 2xx response was recorded."),
        Column("http_status", "integer", doc="HTTP status of the last attempt (empty without a response)."),
        Column("error", "text", doc="What went wrong in the last attempt (empty when delivered)."),
        Column("body", "text", True, doc="The JSON body, byte for byte the same on every attempt."),
        Column("updated_at", "timestamp", True, doc="Last change of the row."),
    ),
    key=("idempotency_key",),
    order=("planned_at", "alert_id", "endpoint"),
    extra_column=None,
)

DELIVERY_ATTEMPTS = Table(
    name="delivery_attempts",
    doc="One row per HTTP attempt, written before the request and completed after it.",
    columns=(
        Column("idempotency_key", "id", True, doc="The delivery."),
        Column("round", "integer", True, doc="The delivery's round."),
        Column("attempt", "integer", True, doc="1-based attempt number within the round."),
        Column("started_at", "timestamp", True, doc="Recorded just before the request was sent."),
        Column("finished_at", "timestamp", doc="When the outcome was recorded (for interrupted: when a later run found it)."),
        Column("outcome", "enum", True, allowed=ATTEMPT_OUTCOMES, doc="What happened."),
        Column("http_status", "integer", doc="HTTP status of the response, if any."),
        Column("error", "text", doc="Error text (timeout, reset, status and the start of the response body)."),
        Column("elapsed_s", "number", doc="Seconds from start to outcome (empty when interrupted)."),
        Column("wait_s", "number", doc="Wait chosen before the next attempt (empty when there is none)."),
    ),
    key=("idempotency_key", "round", "attempt"),
    order=("started_at", "idempotency_key", "round", "attempt"),
    extra_column=None,
)

DEAD_LETTERS = Table(
    name="dead_letters",
    doc="Deliveries that ran out of attempts or were refused for good; requeued_at is set when redelivered.",
    columns=(
        Column("idempotency_key", "id", True, doc="The delivery (its body is in deliveries)."),
        Column("alert_id", "id", True, doc="The alert."),
        Column("customer_id", "id", True, doc="The alert's customer."),
        Column("endpoint", "id", True, doc="The endpoint's name."),
        Column("round", "integer", True, doc="The round that failed."),
        Column("attempts", "integer", True, doc="Attempts made in that round."),
        Column("outcome", "enum", True, allowed=ATTEMPT_OUTCOMES, doc="Outcome of the last attempt."),
        Column("http_status", "integer", doc="HTTP status of the last attempt, if any."),
        Column("error", "text", doc="Error of the last attempt."),
        Column("dead_at", "timestamp", True, doc="When the delivery was given up."),
        Column("requeued_at", "timestamp", doc="When a redelivery started a new round (empty: still dead)."),
    ),
    key=("idempotency_key", "round"),
    order=("dead_at", "idempotency_key"),
    extra_column=None,
)

_TABLES = (DELIVERIES, DELIVERY_ATTEMPTS, DEAD_LETTERS)
_PLAN_COLUMNS = ("idempotency_key", "alert_id", "customer_id", "endpoint", "kind", "status", "body")


def ensure_delivery_tables(store: Store) -> None:
    """Create the delivery tables if they do not exist, and add columns a store made by an older version lacks.

    Parameters
    ----------
    store : Store
        A writable store.

    Raises
    ------
    journeylib.exceptions.StoreError
        If the store is read-only.
    """
    _writable(store, "ensure_delivery_tables")
    with store.session():
        for table in _TABLES:
            store.execute(table_ddl(table))
            present = set(
                store.query("SELECT column_name FROM information_schema.columns WHERE table_name = ?", [table.name])["column_name"]
            )
            for column in table.columns:
                if column.name not in present:
                    store.execute(f'ALTER TABLE "{table.name}" ADD COLUMN "{column.name}" {SQL_TYPES[column.type]}')


def plan_deliveries(store: Store, planned: pd.DataFrame, *, at: datetime) -> int:
    """Record new deliveries; a key already recorded is left as it is (whatever its state).

    Parameters
    ----------
    store : Store
        A writable store.
    planned : pandas.DataFrame
        One row per (alert, endpoint) with ``idempotency_key``, ``alert_id``,
        ``customer_id``, ``endpoint``, ``kind``, ``status`` (``pending`` or
        ``held_out``) and ``body``; keys are distinct.
    at : datetime.datetime
        The time recorded as ``planned_at`` (and ``next_attempt_at`` of
        pending rows).

    Returns
    -------
    int
        Rows added (those whose key was not recorded yet).

    Raises
    ------
    ValueError
        If columns are missing, keys repeat, or a status is not ``pending``
        or ``held_out``.
    """
    _writable(store, "plan_deliveries")
    missing = [c for c in _PLAN_COLUMNS if c not in planned.columns]
    if missing:
        msg = f"plan_deliveries: the frame lacks column(s) {missing}; expected {list(_PLAN_COLUMNS)}"
        raise ValueError(msg)
    if planned.empty:
        return 0
    repeated = planned["idempotency_key"][planned["idempotency_key"].duplicated()].tolist()
    if repeated:
        msg = f"plan_deliveries: idempotency keys repeat in the frame: {repeated[:5]}"
        raise ValueError(msg)
    bad = sorted(set(planned["status"]) - {"pending", "held_out"})
    if bad:
        msg = f"plan_deliveries: status must be 'pending' or 'held_out'; found {bad}"
        raise ValueError(msg)
    frame = planned.loc[:, list(_PLAN_COLUMNS)].astype(object).reset_index(drop=True)
    cols = ", ".join(f'"{c}"' for c in _PLAN_COLUMNS)
    with store.transaction():
        before = _count(store, "deliveries")
        store.con.register("_jl_planned", frame)
        with cleanup(store.con.unregister, "_jl_planned"):
            store.execute(
                f"""INSERT INTO deliveries ({cols}, "round", attempts, total_attempts, planned_at, next_attempt_at, updated_at)
                SELECT {cols}, 0, 0, 0, CAST($at AS TIMESTAMPTZ),
                       CASE WHEN status = 'pending' THEN CAST($at AS TIMESTAMPTZ) END, CAST($at AS TIMESTAMPTZ)
                FROM _jl_planned p
                WHERE NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.idempotency_key = p.idempotency_key)""",
                {"at": at},
            )
        return _count(store, "deliveries") - before


def planned_conflicts(store: Store, planned: pd.DataFrame) -> pd.DataFrame:
    """Return the rows of *planned* whose key is recorded with another body or hold-out state.

    The recorded row wins (an alert is delivered as it was first recorded);
    the caller reports these.

    Parameters
    ----------
    store : Store
        The store.
    planned : pandas.DataFrame
        As for :func:`plan_deliveries`.

    Returns
    -------
    pandas.DataFrame
        ``idempotency_key``, ``alert_id``, ``endpoint``, ``stored_status``
        (the recorded state), ``body_differs`` and ``holdout_differs``
        (bool).
    """
    columns = ["idempotency_key", "alert_id", "endpoint", "stored_status", "body_differs", "holdout_differs"]
    if planned.empty or "deliveries" not in store.tables():
        return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    frame = planned.loc[:, list(_PLAN_COLUMNS)].astype(object).reset_index(drop=True)
    out = store.query(
        """SELECT p.idempotency_key, p.alert_id, p.endpoint, d.status AS stored_status,
                  d.body <> p.body AS body_differs,
                  (d.status = 'held_out') <> (p.status = 'held_out') AS holdout_differs
           FROM _jl_planned p JOIN deliveries d ON d.idempotency_key = p.idempotency_key
           WHERE d.body <> p.body OR (d.status = 'held_out') <> (p.status = 'held_out')
           ORDER BY p.alert_id, p.endpoint""",
        _jl_planned=frame,
    )
    return out.loc[:, columns]


def open_deliveries(store: Store, endpoints: Sequence[str]) -> pd.DataFrame:
    """Return the deliveries to the named endpoints that still need work (:data:`OPEN_STATUSES`).

    Parameters
    ----------
    store : Store
        The store.
    endpoints : sequence of str
        Endpoint names.

    Returns
    -------
    pandas.DataFrame
        Every column of ``deliveries`` (:data:`DELIVERIES`), ordered by
        ``next_attempt_at``, ``planned_at``, ``alert_id``, ``endpoint``.
    """
    if "deliveries" not in store.tables():
        return _empty(DELIVERIES)
    return _utc(
        store.query(
            f"""SELECT {_select(DELIVERIES)} FROM deliveries
            WHERE status IN ({_in(OPEN_STATUSES)}) AND endpoint IN (SELECT name FROM _jl_names)
            ORDER BY next_attempt_at NULLS FIRST, planned_at, alert_id, endpoint""",
            _jl_names=pd.DataFrame({"name": pd.Series(list(endpoints), dtype=object)}),
        ),
        DELIVERIES,
    )


def begin_attempt(store: Store, key: str, *, at: datetime) -> tuple[int, int] | None:
    """Record that an attempt is about to be sent; return its (round, attempt), or None if the delivery is not open.

    In one transaction: the delivery becomes ``sending`` with one more
    attempt, and a ``delivery_attempts`` row with outcome ``sending`` is
    added. Call it before sending; a crash after it leaves the attempt
    ``sending``, which the next run resolves.

    Parameters
    ----------
    store : Store
        A writable store.
    key : str
        The delivery's idempotency key.
    at : datetime.datetime
        The attempt's start.

    Returns
    -------
    tuple of (int, int) or None
        The round and the 1-based attempt number; None when the delivery is
        not ``pending`` or ``retrying`` (already delivered, dead, held out,
        or in flight), in which case nothing is written.
    """
    _writable(store, "begin_attempt")
    with store.transaction():
        row = store.query(
            """UPDATE deliveries
               SET status = 'sending', attempts = attempts + 1, total_attempts = total_attempts + 1,
                   last_attempt_at = CAST($at AS TIMESTAMPTZ), updated_at = CAST($at AS TIMESTAMPTZ)
               WHERE idempotency_key = $key AND status IN ('pending', 'retrying')
               RETURNING "round", attempts""",
            {"key": key, "at": at},
        )
        if row.empty:
            return None
        round_, attempt = int(row["round"].iloc[0]), int(row["attempts"].iloc[0])
        store.execute(
            """INSERT INTO delivery_attempts (idempotency_key, "round", attempt, started_at, outcome)
               VALUES ($key, $round, $attempt, CAST($at AS TIMESTAMPTZ), 'sending')""",
            {"key": key, "round": round_, "attempt": attempt, "at": at},
        )
    return round_, attempt


def finish_attempt(
    store: Store,
    key: str,
    *,
    round_: int,
    attempt: int,
    at: datetime,
    outcome: str,
    status: str,
    http_status: int | None = None,
    error: str | None = None,
    elapsed_s: float | None = None,
    wait_s: float | None = None,
) -> None:
    """Record the outcome of an attempt and the delivery's new state, in one transaction.

    Parameters
    ----------
    store : Store
        A writable store.
    key : str
        The delivery's idempotency key.
    round_, attempt : int
        The attempt, as :func:`begin_attempt` returned it.
    at : datetime.datetime
        When the outcome is recorded.
    outcome : str
        One of :data:`ATTEMPT_OUTCOMES` other than ``sending``.
    status : {"delivered", "retrying", "dead"}
        The delivery's new state. ``retrying`` needs *wait_s* (the next
        attempt is due *wait_s* seconds after *at*); ``dead`` also adds a
        ``dead_letters`` row.
    http_status : int, optional
        The response's status.
    error : str, optional
        What went wrong.
    elapsed_s : float, optional
        Duration of the attempt.
    wait_s : float, optional
        Wait before the next attempt (``retrying`` only).

    Raises
    ------
    ValueError
        If *outcome* or *status* is not allowed, or *wait_s* is missing for
        ``retrying``.
    journeylib.exceptions.StoreError
        If the attempt is not recorded as ``sending`` (it was finished
        already, or never begun): nothing is written.
    """
    _writable(store, "finish_attempt")
    if outcome not in ATTEMPT_OUTCOMES or outcome == "sending":
        msg = f"finish_attempt: outcome must be one of {[o for o in ATTEMPT_OUTCOMES if o != 'sending']}; got {outcome!r}"
        raise ValueError(msg)
    if status not in ("delivered", "retrying", "dead"):
        msg = f"finish_attempt: status must be 'delivered', 'retrying' or 'dead'; got {status!r}"
        raise ValueError(msg)
    if status == "retrying" and wait_s is None:
        msg = f"finish_attempt: status 'retrying' needs wait_s (delivery {key}, attempt {attempt})"
        raise ValueError(msg)
    params: dict[str, Any] = {
        "key": key,
        "round": round_,
        "attempt": attempt,
        "at": at,
        "outcome": outcome,
        "http_status": http_status,
        "error": error,
        "elapsed": elapsed_s,
        "wait": wait_s if status == "retrying" else None,
        "status": status,
        "next": at + timedelta(seconds=wait_s) if status == "retrying" and wait_s is not None else None,
    }
    with store.transaction():
        done = store.query(
            """UPDATE delivery_attempts
               SET finished_at = CAST($at AS TIMESTAMPTZ), outcome = CAST($outcome AS VARCHAR), http_status = CAST($http_status AS BIGINT),
                   error = CAST($error AS VARCHAR), elapsed_s = CAST($elapsed AS DOUBLE), wait_s = CAST($wait AS DOUBLE)
               WHERE idempotency_key = $key AND "round" = $round AND attempt = $attempt AND outcome = 'sending'
               RETURNING attempt""",
            _used(params, ("at", "outcome", "http_status", "error", "elapsed", "wait", "key", "round", "attempt")),
        )
        if done.empty:
            msg = (
                f"finish_attempt: delivery {key} round {round_} attempt {attempt} is not recorded as in flight "
                "('sending'); it was finished already or never begun"
            )
            raise StoreError(msg)
        store.execute(
            """UPDATE deliveries
               SET status = CAST($status AS VARCHAR), http_status = CAST($http_status AS BIGINT),
                   error = CASE WHEN CAST($status AS VARCHAR) = 'delivered' THEN NULL ELSE CAST($error AS VARCHAR) END,
                   delivered_at = CASE WHEN CAST($status AS VARCHAR) = 'delivered' THEN CAST($at AS TIMESTAMPTZ) ELSE delivered_at END,
                   next_attempt_at = CAST($next AS TIMESTAMPTZ),
                   updated_at = CAST($at AS TIMESTAMPTZ)
               WHERE idempotency_key = $key""",
            _used(params, ("status", "http_status", "error", "at", "next", "key")),
        )
        if status == "dead":
            store.execute(
                """INSERT INTO dead_letters (idempotency_key, alert_id, customer_id, endpoint, "round", attempts, outcome,
                                             http_status, error, dead_at)
                   SELECT idempotency_key, alert_id, customer_id, endpoint, "round", attempts, CAST($outcome AS VARCHAR),
                          CAST($http_status AS BIGINT), CAST($error AS VARCHAR), CAST($at AS TIMESTAMPTZ)
                   FROM deliveries WHERE idempotency_key = $key""",
                _used(params, ("key", "outcome", "http_status", "error", "at")),
            )


def requeue_dead_letters(
    store: Store, endpoints: Sequence[str], *, at: datetime, alert_ids: Sequence[str] | None = None
) -> pd.DataFrame:
    """Start a new round for the dead deliveries to the named endpoints, in one transaction.

    Each open dead letter (``requeued_at`` empty) of a ``dead`` delivery gets
    ``requeued_at``; its delivery becomes ``pending`` with round + 1, no
    attempts in the round, due at *at*. The body and the idempotency key
    stay the same, so a receiver that already has the alert can drop it.

    Parameters
    ----------
    store : Store
        A writable store.
    endpoints : sequence of str
        Endpoint names.
    at : datetime.datetime
        The time recorded.
    alert_ids : sequence of str, optional
        Only these alerts (default: every dead letter of the endpoints).

    Returns
    -------
    pandas.DataFrame
        The requeued deliveries: ``idempotency_key``, ``alert_id``,
        ``endpoint``, ``round`` (the new round).
    """
    _writable(store, "requeue_dead_letters")
    ensure_delivery_tables(store)
    names = pd.DataFrame({"name": pd.Series(list(endpoints), dtype=object)})
    ids = pd.DataFrame({"alert_id": pd.Series([str(a) for a in (alert_ids or [])], dtype=object)})
    only = "" if alert_ids is None else " AND d.alert_id IN (SELECT alert_id FROM _jl_ids)"
    with store.transaction():
        keys = store.query(
            f"""SELECT DISTINCT d.idempotency_key FROM deliveries d JOIN dead_letters l
                  ON l.idempotency_key = d.idempotency_key AND l."round" = d."round"
               WHERE d.status = 'dead' AND l.requeued_at IS NULL
                 AND d.endpoint IN (SELECT name FROM _jl_names){only}""",
            _jl_names=names,
            _jl_ids=ids,
        )
        if keys.empty:
            return pd.DataFrame({c: pd.Series(dtype=object) for c in ("idempotency_key", "alert_id", "endpoint", "round")})
        frame = keys.astype(object)
        store.query(
            """UPDATE dead_letters SET requeued_at = CAST($at AS TIMESTAMPTZ)
               WHERE requeued_at IS NULL AND idempotency_key IN (SELECT idempotency_key FROM _jl_keys)""",
            {"at": at},
            _jl_keys=frame,
        )
        out = store.query(
            """UPDATE deliveries
               SET status = 'pending', "round" = "round" + 1, attempts = 0, next_attempt_at = CAST($at AS TIMESTAMPTZ),
                   updated_at = CAST($at AS TIMESTAMPTZ)
               WHERE idempotency_key IN (SELECT idempotency_key FROM _jl_keys)
               RETURNING idempotency_key, alert_id, endpoint, "round" """,
            {"at": at},
            _jl_keys=frame,
        )
    return out.sort_values(["alert_id", "endpoint"]).reset_index(drop=True)


def delivery_log(store: Store, *, keys: Sequence[str] | None = None, with_body: bool = False) -> pd.DataFrame:
    """Return the ``deliveries`` table (empty with its columns when the store has none).

    Parameters
    ----------
    store : Store
        The store.
    keys : sequence of str, optional
        Only these idempotency keys.
    with_body : bool, default False
        Include ``body``.

    Returns
    -------
    pandas.DataFrame
        The columns of :data:`DELIVERIES` (without ``body`` unless asked),
        ordered by ``planned_at``, ``alert_id``, ``endpoint``.
    """
    return _read(store, DELIVERIES, keys=keys, drop=() if with_body else ("body",))


def attempt_log(store: Store, *, keys: Sequence[str] | None = None) -> pd.DataFrame:
    """Return the ``delivery_attempts`` table (empty with its columns when the store has none).

    Parameters
    ----------
    store : Store
        The store.
    keys : sequence of str, optional
        Only these idempotency keys.

    Returns
    -------
    pandas.DataFrame
        The columns of :data:`DELIVERY_ATTEMPTS`, ordered by ``started_at``,
        ``idempotency_key``, ``round``, ``attempt``.
    """
    return _read(store, DELIVERY_ATTEMPTS, keys=keys)


def dead_letter_log(store: Store, *, open_only: bool = False) -> pd.DataFrame:
    """Return the ``dead_letters`` table (empty with its columns when the store has none).

    Parameters
    ----------
    store : Store
        The store.
    open_only : bool, default False
        Only dead letters not requeued (``requeued_at`` empty).

    Returns
    -------
    pandas.DataFrame
        The columns of :data:`DEAD_LETTERS`, ordered by ``dead_at``,
        ``idempotency_key``.
    """
    out = _read(store, DEAD_LETTERS)
    return out[out["requeued_at"].isna()].reset_index(drop=True) if open_only else out


# -- helpers ---------------------------------------------------------------------------------


def _writable(store: Store, what: str) -> None:
    if store.read_only:
        msg = f"{what}: store {store.path} is open read-only; delivery needs a writable store (Store(path))"
        raise StoreError(msg)


def _used(params: dict[str, Any], names: Sequence[str]) -> dict[str, Any]:
    return {name: params[name] for name in names}


def _count(store: Store, name: str) -> int:
    return int(store.query(f'SELECT count(*) AS n FROM "{name}"')["n"].iloc[0])


def _in(values: Sequence[str]) -> str:
    return ", ".join("'" + v.replace("'", "''") + "'" for v in values)


def _select(table: Table, drop: Sequence[str] = ()) -> str:
    return ", ".join(f'"{c}"' for c in table.names if c not in drop)


def _empty(table: Table, drop: Sequence[str] = ()) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in table.names if c not in drop})


def _utc(frame: pd.DataFrame, table: Table) -> pd.DataFrame:
    out = frame.copy()
    for column in table.columns:
        if column.type == "timestamp" and column.name in out.columns:
            out[column.name] = pd.to_datetime(out[column.name], utc=True)
    return out


def _read(store: Store, table: Table, *, keys: Sequence[str] | None = None, drop: Sequence[str] = ()) -> pd.DataFrame:
    if table.name not in store.tables():
        return _empty(table, drop)
    order = ", ".join(f'"{c}"' for c in table.order)
    sql = f'SELECT {_select(table, drop)} FROM "{table.name}"'
    if keys is None:
        return _utc(store.query(f"{sql} ORDER BY {order}"), table)
    wanted = pd.DataFrame({"k": pd.Series([str(k) for k in keys], dtype=object)})
    return _utc(store.query(f"{sql} WHERE idempotency_key IN (SELECT k FROM _jl_keys) ORDER BY {order}", _jl_keys=wanted), table)
