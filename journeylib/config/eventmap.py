"""Event rules: the ``events`` list of a source in ``sources.yaml``.

A CRM does not export ``subscription_started`` or ``renewal``; a source's
``events`` rules rename its vendor events to the names the journey definition
uses, applied in order when its files are read (the first rule that matches
an event wins)::

    salesforce:
      files: [exports/salesforce/*.csv]
      events:
        - {match: opportunity_won, where: {opportunity_type: New Business}, to: subscription_started}
        - {match: opportunity_won, where: {opportunity_type: [Renewal, Renewal (auto)]}, to: renewal}

:func:`journeylib.store.eventmap.apply_event_map` applies them.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["EventRule", "Scalar"]

_NAME_RE = re.compile(r"^\S(.*\S)?$")
#: A property value a rule compares with (as text).
Scalar = str | int | float | bool


class EventRule(BaseModel):
    """One rule of a source's ``events`` list.

    Parameters
    ----------
    match : str
        The vendor event name (``events.event`` as the reader writes it).
    where : dict of str to scalar or list of scalars, optional
        Property filters, all of which must hold; a list means any of its
        values. Values are compared as text.
    to : str
        The event name to give matching events.

    Examples
    --------
    >>> EventRule(match="opportunity_won", where={"opportunity_type": "Renewal"}, to="renewal").where
    {'opportunity_type': 'Renewal'}
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    match: str = Field(min_length=1)
    where: dict[str, Scalar | list[Scalar]] = Field(default_factory=dict)
    to: str = Field(min_length=1)

    @field_validator("match", "to")
    @classmethod
    def _trimmed(cls, value: str) -> str:
        if not _NAME_RE.match(value):
            msg = f"an event name without leading or trailing white space is expected, found {value!r}"
            raise ValueError(msg)
        return value

    @field_validator("where")
    @classmethod
    def _values(cls, value: dict[str, Any]) -> dict[str, Any]:
        empty = [k for k, v in value.items() if isinstance(v, list) and not v]
        if empty:
            msg = f"property {empty[0]!r}: an empty list matches nothing; give at least one value"
            raise ValueError(msg)
        return value
