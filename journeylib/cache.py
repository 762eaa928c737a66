"""Results shared by the analyses of one context: computed on first use, then reused.

Every journey analysis starts from the same milestone frame (one row per
customer × stage); the customer analyses start from the same feature tables;
friction and the voice of the customer read the same scored tickets. A
:class:`ResultCache` passed to the ``*_data`` functions (as
:class:`journeylib.Journey` does) makes them share those results: each is
computed once per key — for the milestone frame, once per (store, journey
definition, scope) — however many analyses a notebook or a widget asks for.

Results are handed out as copies, so no analysis can change another's input.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

import pandas as pd

__all__ = ["ResultCache"]

T = TypeVar("T")


class ResultCache:
    """A memo of intermediate results by kind and key.

    Attributes
    ----------
    computed : collections.Counter
        How many results of each kind were computed (``computed["milestones"]``
        counts the milestone SQL passes); what tests read.

    Examples
    --------
    >>> cache = ResultCache()
    >>> cache.get("answer", 1, lambda: 42), cache.get("answer", 1, lambda: 0)
    (42, 42)
    >>> cache.computed["answer"]
    1
    """

    def __init__(self) -> None:
        self._results: dict[tuple[str, Hashable], Any] = {}
        self.computed: Counter[str] = Counter()

    def __repr__(self) -> str:
        kinds = ", ".join(f"{k} {n}×" for k, n in sorted(self.computed.items())) or "empty"
        return f"ResultCache({kinds})"

    def __len__(self) -> int:
        return len(self._results)

    def get(self, kind: str, key: Hashable, compute: Callable[[], T]) -> T:
        """Return the result of *kind* for *key*, computing it with *compute* the first time.

        Parameters
        ----------
        kind : str
            What the result is (``"milestones"``, ``"features"``, ...).
        key : hashable
            Everything the result depends on.
        compute : callable
            Makes the result; called at most once per (kind, key).

        Returns
        -------
        object
            A copy of the result (DataFrames and objects with a ``copy``
            method are copied; other values are returned as they are).
        """
        full = (kind, key)
        if full not in self._results:
            self._results[full] = compute()
            self.computed[kind] += 1
        return _copy(self._results[full])


def _copy(value: Any) -> Any:
    if isinstance(value, pd.DataFrame):
        return value.copy()
    copy = getattr(value, "copy", None)
    return copy() if callable(copy) else value
