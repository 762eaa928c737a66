"""Event mapping: give vendor events the names the journey definition uses.

A CRM does not export ``subscription_started`` or ``renewal``: Salesforce has
won and lost opportunities of a type, HubSpot has lifecycle-stage changes.
A source of ``sources.yaml`` can therefore list ``events`` rules, applied in
order when its files are read (the first rule that matches an event wins)::

    salesforce:
      files: [exports/salesforce/*.csv]
      events:
        - {match: opportunity_won, where: {opportunity_type: New Business}, to: subscription_started}
        - {match: opportunity_won, where: {opportunity_type: [Renewal, Renewal (auto)]}, to: renewal}

``match`` is the vendor event name as the reader writes it, ``where`` an
optional mapping of property name to a value or a list of allowed values
(compared as text: ``true``, ``3``), and ``to`` the new event name. A renamed
event keeps its id, timestamp and properties and records the reader's name
in ``properties.vendor_event``, so nothing is lost and de-duplication across
overlapping exports is unchanged.

The mapping applies when a file is read. Files already loaded are skipped by
content hash and keep the names they were loaded with: after changing the
rules, ingest into a new store (see ``docs/sources.md``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from journeylib.config.eventmap import EventRule, Scalar
from journeylib.store.database import Store
from journeylib.store.dialect import sql_json_text, sql_quote

__all__ = ["apply_event_map", "event_map_case", "event_rule_condition"]

def event_rule_condition(rule: EventRule, column_event: str = "event", column_properties: str = "properties") -> str:
    """Return the SQL condition of an event rule over an events table.

    Parameters
    ----------
    rule : journeylib.config.eventmap.EventRule
        The rule.
    column_event : str, default "event"
        The column of event names.
    column_properties : str, default "properties"
        The column of JSON properties.

    Returns
    -------
    str
        A parenthesised SQL condition: the event name is ``match`` and every
        ``where`` property (as text) is one of its values.
    """
    parts = [f"{column_event} = {sql_quote(rule.match)}"]
    for key, want in rule.where.items():
        values = want if isinstance(want, list) else [want]
        texts = ", ".join(sql_quote(_text(v)) for v in values)
        parts.append(f"{sql_json_text(column_properties, key)} IN ({texts})")
    return "(" + " AND ".join(parts) + ")"


def _text(value: Scalar) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def event_map_case(rules: Sequence[EventRule]) -> tuple[str, str]:
    """Return the SQL ``CASE`` giving the new name and the condition any rule holds.

    Parameters
    ----------
    rules : sequence of journeylib.config.eventmap.EventRule
        In order; the first that matches wins.

    Returns
    -------
    tuple of str
        ``(case_sql, any_sql)``: an expression of the new event name, and a
        condition true for the events some rule renames.
    """
    if not rules:
        return "event", "FALSE"
    whens = " ".join(f"WHEN {event_rule_condition(r)} THEN {sql_quote(r.to)}" for r in rules)
    return f"CASE {whens} ELSE event END", " OR ".join(event_rule_condition(r) for r in rules)


def apply_event_map(store: Store, table: str, rules: Sequence[EventRule]) -> Counter[str]:
    """Rename the events of *table* that a rule matches, in place.

    Parameters
    ----------
    store : Store
        A writable store (inside the file's transaction).
    table : str
        A table with the ``event`` and ``properties`` columns of ``events``
        (the vendor staging table of the file being read).
    rules : sequence of journeylib.config.eventmap.EventRule
        The source's rules, in order.

    Returns
    -------
    collections.Counter
        ``"events renamed <vendor name> → <new name>"`` → number of events.
    """
    out: Counter[str] = Counter()
    if not rules:
        return out
    case, any_rule = event_map_case(rules)
    counts = store.query(f"SELECT event AS old, {case} AS new, count(*) AS n FROM {table} WHERE {any_rule} GROUP BY ALL")
    if counts.empty:
        return out
    store.execute(
        f"""UPDATE {table}
            SET properties = json_merge_patch(coalesce(properties::JSON, '{{}}'::JSON), json_object('vendor_event', event)),
                event = {case}
            WHERE {any_rule}"""
    )
    for old, new, n in zip(counts["old"].tolist(), counts["new"].tolist(), counts["n"].astype("int64").tolist(), strict=True):
        out[f"events renamed {old} → {new}"] += n
    return out
