"""Builders for the hand-made worlds of the unit tests: a day clock, event rows, in-memory stores, definitions.

Test modules import these names (``from _builders import day, memory_store``) to
write their hand-computed timelines as short tuples and their journey
definitions as a stage → rule mapping. Shared fixtures are in ``tests/conftest.py``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from journeylib.config import JourneyDefinition
from journeylib.store import Store

#: The repository's top folder (``parameters/``, ``notebooks/`` and ``tests/`` are below it).
ROOT = Path(__file__).resolve().parents[1]
#: Day 0 of the hand-made timelines: 2025-01-01 00:00 UTC.
T0 = pd.Timestamp("2025-01-01T00:00:00Z")
#: The outcome rules of the hand-made worlds: churn and conversion from customer fields, expansion from an event.
OUTCOMES: dict[str, dict[str, str]] = {
    "churn": {"customer_field": "churned_at"},
    "conversion": {"customer_field": "converted_at"},
    "expansion": {"event": "plan_upgraded"},
}


def day(d: float) -> pd.Timestamp:
    """Return the UTC timestamp *d* days (fractions allowed, negatives too) after :data:`T0`."""
    return T0 + pd.Timedelta(days=d)


def event_rows(events: Iterable[Sequence[Any]], *, id_width: int = 0) -> pd.DataFrame:
    """Build rows of the ``events`` table from ``(customer_id, day, event[, source])`` tuples.

    Parameters
    ----------
    events : iterable of tuple
        ``(customer_id, d, event)`` or ``(customer_id, d, event, source)``; *d* is
        passed to :func:`day`, and a missing source is ``"product"``.
    id_width : int, default 0
        Zero-padding of the running number in ``event_id``: ``e7`` for 0,
        ``e07`` for 2.

    Returns
    -------
    pandas.DataFrame
        Columns ``event_id``, ``customer_id``, ``timestamp``, ``event``, ``source``,
        one row a tuple, in the order given; an empty frame without columns when
        there are no tuples.
    """
    return pd.DataFrame(
        [
            {
                "event_id": f"e{i:0{id_width}d}",
                "customer_id": e[0],
                "timestamp": day(e[1]),
                "event": e[2],
                "source": e[3] if len(e) > 3 else "product",
            }
            for i, e in enumerate(events)
        ]
    )


def memory_store(**tables: pd.DataFrame | list[dict[str, Any]]) -> Store:
    """Return an in-memory store with each given table inserted, in the order given.

    Parameters
    ----------
    **tables : pandas.DataFrame or list of dict
        Canonical table name → its rows (a list of row dicts becomes a DataFrame).

    Returns
    -------
    Store
        An open ``Store(":memory:")``; the caller closes it.
    """
    store = Store(":memory:")
    for name, rows in tables.items():
        store.insert(name, rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(rows))
    return store


def journey_definition(
    stages: dict[str, Any], *, name: str = "test", outcomes: Sequence[str] = (), **sections: Any
) -> JourneyDefinition:
    """Build a journey definition from its stages in order, named outcomes and other sections.

    Parameters
    ----------
    stages : dict
        Stage name → rule, in journey order (e.g. ``{"Trial": "signup", "Setup": {"event": "setup"}}``).
    name : str, default "test"
        The definition's name.
    outcomes : sequence of str, default ()
        Names from :data:`OUTCOMES`; none means no ``outcomes`` section.
    **sections
        Further top-level sections as in a definition file (e.g. ``conventions``).

    Returns
    -------
    JourneyDefinition
        ``JourneyDefinition.from_dict`` of ``{"name", "stages", "outcomes", **sections}``.
    """
    spec: dict[str, Any] = {"name": name, "stages": [{"name": stage, "rule": rule} for stage, rule in stages.items()]}
    if outcomes:
        spec["outcomes"] = {outcome: OUTCOMES[outcome] for outcome in outcomes}
    return JourneyDefinition.from_dict({**spec, **sections})


def memory_limits_seen(monkeypatch: Any, marker: str) -> list[str | None]:
    """Spy on ``Store.query``: the store's ``memory_limit`` setting at each query whose SQL contains *marker*."""
    seen: list[str | None] = []
    query = Store.query

    def spy(self: Store, sql: str, params: Any = None, **frames: pd.DataFrame) -> pd.DataFrame:
        if marker in sql:
            seen.append(self.settings.get("memory_limit"))
        return query(self, sql, params, **frames)

    monkeypatch.setattr(Store, "query", spy)
    return seen


def process_alive(pid: int) -> bool:
    """Whether process *pid* exists and is not a zombie (Linux: ``/proc/<pid>/stat``)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"
