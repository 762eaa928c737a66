"""Typed configuration models, validated at the boundary.

One model per file kind. This module holds the **journey definition**: the
ordered stages (milestone rules over the timeline), the outcomes, the segment
field and the intended happy path. It is YAML, loaded with
:meth:`JourneyDefinition.load` (or :meth:`JourneyDefinition.from_yaml`), and every problem is reported at once in
one :class:`~journeylib.exceptions.ConfigError` that names the key, its line in
the file, what is allowed and what was found.

Rule semantics
--------------
A **condition** holds at the time of the ``min_count``-th qualifying event:
an event whose name is ``event`` (or one of ``events``), whose properties
match ``where`` (all keys, values compared as text), that happened at or after
the reference time and strictly before ``reference + within_days`` (when
``within_days`` is given), and at or before the analysis ``as_of``. The
reference ``of`` is ``signup`` (customers.signup_at) or ``previous_stage``
(when the previous stage was entered). ``all`` holds when every member holds
(at the latest of their times); ``any`` when one does (at the earliest).

A **stage** of ``order: after_previous`` (the default) is entered when its
rule holds *and* the previous stage has been entered, at the later of the two
times. A stage of ``order: any`` (a free-order milestone) is entered when its
rule holds, whatever the earlier stages, at the time its rule holds. The first
stage may use ``rule: signup`` to start every customer at signup.

An **outcome** of ``kind: drop`` ends a customer's journey without churn (a
trial that expired unpaid): every stage the customer was waiting for at that
time and has not reached counts as a drop-off there, so drop-off is not guessed
from ``conventions.drop_after_days``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator, model_validator

from journeylib.config.loader import KeyPath, read_yaml, validate_config
from journeylib.exceptions import ConfigError

_NAME_RE = re.compile(r"^[A-Za-z0-9_.:\-]+$")


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Condition(_Frozen):
    """One milestone condition over events.

    Parameters
    ----------
    event : str, optional
        Event name (exclusive with ``events``).
    events : list of str, optional
        Any of these event names.
    min_count : int, default 1
        The condition holds at the ``min_count``-th qualifying event.
    within_days : float, optional
        Only events before ``reference + within_days`` qualify.
    of : {"signup", "previous_stage"}, default "signup"
        The reference time.
    where : dict, optional
        Property filters: ``{property: value}`` or ``{property: [values]}``.
    """

    event: str | None = None
    events: list[str] | None = None
    min_count: Annotated[int, Field(ge=1)] = 1
    within_days: Annotated[float, Field(gt=0)] | None = None
    of: Literal["signup", "previous_stage"] = "signup"
    where: dict[str, str | int | float | bool | list[str | int | float | bool]] | None = None

    @model_validator(mode="after")
    def _one_event_key(self) -> Self:
        if (self.event is None) == (self.events is None):
            msg = "give exactly one of 'event' (a name) or 'events' (a list of names)"
            raise ValueError(msg)
        if self.events is not None and not self.events:
            msg = "'events' must list at least one event name"
            raise ValueError(msg)
        return self

    @property
    def names(self) -> list[str]:
        """The qualifying event names."""
        return [self.event] if self.event is not None else list(self.events or [])


def _rule_kind(value: Any) -> str | None:
    """Pick the rule branch from what the user wrote, so errors speak of that branch only."""
    if isinstance(value, str):
        return "<signup>"
    if isinstance(value, dict):
        if "all" in value:
            return "<all>"
        if "any" in value:
            return "<any>"
        return "<condition>"
    if isinstance(value, (Condition, AllOf, AnyOf)):
        return {Condition: "<condition>", AllOf: "<all>", AnyOf: "<any>"}[type(value)]
    return None


class AllOf(_Frozen):
    """Every member condition holds (at the latest of their times)."""

    all: list[RuleMember] = Field(min_length=1)


class AnyOf(_Frozen):
    """At least one member holds (at the earliest of their times)."""

    any: list[RuleMember] = Field(min_length=1)


RuleMember = Annotated[
    Annotated[Condition, Tag("<condition>")] | Annotated[AllOf, Tag("<all>")] | Annotated[AnyOf, Tag("<any>")],
    Discriminator(_rule_kind),
]
StageRule = Annotated[
    Annotated[Literal["signup"], Tag("<signup>")]
    | Annotated[Condition, Tag("<condition>")]
    | Annotated[AllOf, Tag("<all>")]
    | Annotated[AnyOf, Tag("<any>")],
    Discriminator(_rule_kind),
]
AllOf.model_rebuild()
AnyOf.model_rebuild()

#: What a stage rule may be, for messages about a rule of none of its kinds.
_HINTS = {
    "union_tag_invalid": "expected 'signup' or a rule mapping (event/events, all, any)",
    "union_tag_not_found": "expected 'signup' or a rule mapping (event/events, all, any)",
}


#: The values of a stage's ``order``.
STAGE_ORDERS: tuple[str, ...] = ("after_previous", "any")


class Stage(_Frozen):
    """A journey stage: a name, an optional description, its milestone rule and its order.

    Parameters
    ----------
    name : str
        Unique stage name.
    description : str, default ""
        What the stage means, in words.
    rule : "signup", Condition, AllOf or AnyOf
        When the stage's milestone is met.
    order : {"after_previous", "any"}, default "after_previous"
        ``after_previous``: entered when the rule holds and the previous stage
        was entered, at the later of the two times. ``any``: a free-order
        milestone, entered when its rule holds whatever the earlier stages
        (its rule cannot refer to ``of: previous_stage``).
    """

    name: str = Field(min_length=1)
    description: str = ""
    rule: StageRule
    order: Literal["after_previous", "any"] = "after_previous"

    @model_validator(mode="after")
    def _free_order_is_its_own(self) -> Self:
        if self.order == "any" and _uses_previous(self.rule):
            msg = (
                "order 'any' (a free-order milestone) is reached by its rule alone, so its rule cannot use "
                "of: previous_stage; use of: signup, or order: after_previous"
            )
            raise ValueError(msg)
        return self

    @property
    def free_order(self) -> bool:
        """Whether the stage is a free-order milestone (``order: any``)."""
        return self.order == "any"

    def events(self) -> set[str]:
        """Every event name the stage's rule refers to."""
        return _rule_events(self.rule)


#: The values of an outcome's ``kind``.
OUTCOME_KINDS: tuple[str, ...] = ("outcome", "drop")


class Outcome(_Frozen):
    """An outcome (churn, conversion, trial expiry, ...) from a customer field, a customer property, an event or inactivity.

    Parameters
    ----------
    customer_field : str, optional
        A timestamp column of ``customers`` (e.g. ``churned_at``).
    customer_property : str, optional
        A key of ``customers.properties`` holding a date or timestamp (e.g.
        ``trial_ends_at`` of a CRM export); text that is not a date is left
        out with a :class:`~journeylib.exceptions.DataQualityWarning`.
    event : str, optional
        The first occurrence of this event at or after signup.
    inactive_days : float, optional
        A lapse: the customer had no activity (an event of a source that is
        not e-mail, CRM or support) for this many days. The outcome's time
        is the last activity (at or after signup; signup itself when there
        is none) plus ``inactive_days``, and it is known only when that time
        is at or before ``as_of``: a customer whose last activity is less
        than ``inactive_days`` before ``as_of`` has not lapsed (censored).
        For stores without a churn date (``churn: {inactive_days: 60}``).
    kind : {"outcome", "drop"}, default "outcome"
        ``outcome``: a result the analyses measure. ``drop``: it also ends
        the journey without churn: at its time (by ``as_of``), every stage the
        customer was waiting for and has not reached counts as a drop-off.
    unless_stage : str, optional
        For ``kind: drop`` only: the journey does not end for a customer who
        had entered this stage by then (a trial's end does not end the
        journey of a customer who had already paid).
    """

    customer_field: Literal["converted_at", "churned_at", "renewal_at"] | None = None
    customer_property: Annotated[str, Field(min_length=1)] | None = None
    event: str | None = None
    inactive_days: Annotated[float, Field(gt=0)] | None = None
    kind: Literal["outcome", "drop"] = "outcome"
    unless_stage: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        given = [k for k in ("customer_field", "customer_property", "event", "inactive_days") if getattr(self, k) is not None]
        if len(given) != 1:
            msg = (
                "give exactly one of 'customer_field', 'customer_property', 'event' or 'inactive_days'; "
                f"found {', '.join(given) or 'none'}"
            )
            raise ValueError(msg)
        if self.inactive_days is not None and self.kind == "drop":
            msg = (
                "'inactive_days' (a lapse) is an outcome, not a journey end: use kind: outcome (the default), "
                "or conventions.drop_after_days for drop-off after days without progress"
            )
            raise ValueError(msg)
        if self.unless_stage is not None and self.kind != "drop":
            msg = f"'unless_stage' is only allowed with kind: drop; found kind {self.kind!r}"
            raise ValueError(msg)
        return self


class Conventions(_Frozen):
    """Time conventions of the stage computation.

    Parameters
    ----------
    occurrence : {"first", "last"}, default "first"
        Whether a stage's time is when it first held, or the last qualifying
        event (for "last", the time of the last event that keeps it holding).
    drop_after_days : float, optional
        A customer who has not entered the next stage this many days after
        entering the current one, and has not churned, counts as dropped out
        rather than still in progress. Without it only churn makes a drop-out;
        everyone else not yet converted is censored (in progress).
    """

    occurrence: Literal["first", "last"] = "first"
    drop_after_days: Annotated[float, Field(gt=0)] | None = None


class JourneyDefinition(_Frozen):
    """A journey definition: stages in order, outcomes, segments and happy path.

    Examples
    --------
    >>> d = JourneyDefinition.from_dict({
    ...     "name": "mini",
    ...     "stages": [{"name": "Trial", "rule": "signup"},
    ...                {"name": "Setup", "rule": {"event": "setup_completed", "within_days": 14}}],
    ... })
    >>> d.stage_names
    ['Trial', 'Setup']
    """

    name: str = Field(min_length=1)
    description: str = ""
    stages: list[Stage] = Field(min_length=1)
    outcomes: dict[str, Outcome] = Field(default_factory=dict)
    segment_field: Literal["segment", "plan"] = "segment"
    happy_path: list[str] | None = None
    value_stage: str | None = None
    conventions: Conventions = Field(default_factory=Conventions)

    @field_validator("stages")
    @classmethod
    def _unique_names(cls, stages: list[Stage]) -> list[Stage]:
        names = [s.name for s in stages]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            msg = f"stage names must be unique; repeated: {', '.join(dupes)}"
            raise ValueError(msg)
        return stages

    @model_validator(mode="after")
    def _check_refs(self) -> Self:
        if self.happy_path is not None:
            unknown = [s for s in self.happy_path if s not in self.stage_names]
            if unknown:
                msg = f"happy_path names unknown stage(s) {unknown}; stages are {self.stage_names}"
                raise ValueError(msg)
        if self.value_stage is not None and self.value_stage not in self.stage_names:
            msg = f"value_stage {self.value_stage!r} is not a stage; stages are {self.stage_names}"
            raise ValueError(msg)
        first = self.stages[0]
        if _uses_previous(first.rule):
            msg = f"the first stage {first.name!r} cannot use of: previous_stage (there is none)"
            raise ValueError(msg)
        problems = []
        for s in self.stages[1:]:
            if s.rule == "signup":
                problems.append(f"stage {s.name!r}: rule 'signup' is only allowed for the first stage")
        for name, outcome in self.outcomes.items():
            if outcome.unless_stage is not None and outcome.unless_stage not in self.stage_names:
                problems.append(
                    f"outcomes.{name}.unless_stage: names unknown stage {outcome.unless_stage!r}; stages are {self.stage_names}"
                )
        if problems:
            raise ValueError("\n".join(problems))
        return self

    @property
    def stage_names(self) -> list[str]:
        """Stage names in order."""
        return [s.name for s in self.stages]

    @property
    def path(self) -> list[str]:
        """The happy path (default: all stages in order)."""
        return list(self.happy_path) if self.happy_path is not None else self.stage_names

    @property
    def free_stages(self) -> set[str]:
        """Names of the free-order stages (``order: any``)."""
        return {s.name for s in self.stages if s.free_order}

    @property
    def drop_outcomes(self) -> dict[str, Outcome]:
        """The outcomes of ``kind: drop`` (they end a journey without churn), by name."""
        return {name: o for name, o in self.outcomes.items() if o.kind == "drop"}

    def event_references(self) -> dict[str, list[str]]:
        """Return every event name the definition refers to, with where (stage names, ``outcome:<name>``).

        Returns
        -------
        dict of str to list of str
            Event name → the stages whose rules name it and the outcomes
            read from it (``outcome:<name>``), in definition order.
        """
        refs: dict[str, list[str]] = {}
        for stage in self.stages:
            for name in sorted(stage.events()):
                refs.setdefault(name, []).append(stage.name)
        for name, outcome in self.outcomes.items():
            if outcome.event is not None:
                refs.setdefault(outcome.event, []).append(f"outcome:{name}")
        return refs

    def absent_events(self, present: Iterable[str], *, n_closest: int = 3) -> list[AbsentEvent]:
        """Return the event names the definition refers to that are not among *present*, with the closest present names.

        Parameters
        ----------
        present : iterable of str
            The event names the store has (``SELECT DISTINCT event FROM events``).
        n_closest : int, default 3
            At most this many close names per absent event
            (:func:`difflib.get_close_matches`, cutoff 0.6, compared
            case-insensitively).

        Returns
        -------
        list of AbsentEvent
            One per absent event name, in definition order: the name, where
            the definition uses it, and the closest present names (possibly
            none).

        Examples
        --------
        >>> d = JourneyDefinition.from_dict({"name": "m", "stages": [
        ...     {"name": "Trial", "rule": "signup"}, {"name": "Setup", "rule": {"event": "setup_complete"}}]})
        >>> [(a.event, a.closest) for a in d.absent_events(["setup_completed", "login"])]
        [('setup_complete', ['setup_completed'])]
        """
        names = sorted({str(p) for p in present})
        lowered: dict[str, list[str]] = {}
        for name in names:
            lowered.setdefault(name.lower(), []).append(name)
        out = []
        for event, where in self.event_references().items():
            if event in lowered.get(event.lower(), []):
                continue
            import difflib  # only when a name is absent: not a cost of every process that reads a definition

            close = difflib.get_close_matches(event.lower(), list(lowered), n=n_closest, cutoff=0.6)
            out.append(AbsentEvent(event=event, used_by=tuple(where), closest=[n for c in close for n in lowered[c]][:n_closest]))
        return out

    # -- loading ------------------------------------------------------------
    @classmethod
    def load(cls, definition: JourneyDefinition | Mapping[str, Any] | str | Path) -> JourneyDefinition:
        """Load a journey definition from anything that names one.

        A relative path is tried against the working directory, then each of its
        parents (so ``../parameters/journeys/saas.yaml`` works from
        ``notebooks/`` and ``parameters/journeys/saas.yaml`` from anywhere inside
        the repository), then the folder that holds the ``journeylib`` package.

        Parameters
        ----------
        definition : JourneyDefinition, dict, str or pathlib.Path
            An already-built definition (returned as is), the parsed mapping,
            or the path of a YAML file.

        Returns
        -------
        JourneyDefinition
            The validated definition.

        Raises
        ------
        ConfigError
            If the file is found nowhere (the message lists where it looked) or
            is invalid (every problem, with key path, line, what is allowed and
            what was found).

        Examples
        --------
        >>> JourneyDefinition.load("parameters/journeys/saas.yaml").stage_names[0]
        'Trial Started'
        """
        if isinstance(definition, JourneyDefinition):
            return definition
        if isinstance(definition, Mapping):
            return cls.from_dict(dict(definition))
        path = Path(definition).expanduser()
        if path.is_absolute():
            return cls.from_yaml(path)
        here = Path.cwd().resolve()
        bases = [here, *here.parents, Path(__file__).resolve().parents[2]]
        tried = []
        for base in bases:
            candidate = (base / path).resolve()
            tried.append(str(candidate))
            if candidate.is_file():
                return cls.from_yaml(candidate)
        shown = ", ".join(tried[:3]) + (" ..." if len(tried) > 3 else "")
        raise ConfigError(
            [f"journey definition {str(definition)!r} not found; looked at {shown}. Pass an absolute path or one relative to the repository."],
            str(definition),
        )

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], *, source: str = "<dict>", lines: Mapping[KeyPath, int] | None = None
    ) -> JourneyDefinition:
        """Build and validate a definition from a mapping.

        Parameters
        ----------
        data : dict
            The parsed YAML.
        source : str
            Where it came from, for messages.
        lines : mapping of key path to int, optional
            The line of each key (:attr:`journeylib.config.loader.YamlDocument.lines`),
            for messages.

        Returns
        -------
        JourneyDefinition

        Raises
        ------
        ConfigError
            With every problem: key path, line, what is allowed, what was found.
        """
        if not isinstance(data, Mapping):
            raise ConfigError([f"expected a mapping at the top level, found {type(data).__name__}"], source)
        return validate_config(cls, dict(data), source=source, lines=lines, hints=_HINTS)

    @classmethod
    def from_yaml(cls, path_or_data: str | Path | Mapping[str, Any]) -> JourneyDefinition:
        """Load a definition from a YAML file or a dict.

        Unlike :meth:`load`, a relative path is taken relative to the working
        directory only.

        Parameters
        ----------
        path_or_data : str, pathlib.Path or dict
            A path to a YAML file, or the already-parsed mapping.

        Returns
        -------
        JourneyDefinition

        Raises
        ------
        ConfigError
            If the file is missing, not YAML, or invalid (all problems at once).
        """
        if isinstance(path_or_data, Mapping):
            return cls.from_dict(dict(path_or_data))
        doc = read_yaml(path_or_data)
        return cls.from_dict(doc.data, source=doc.source, lines=doc.lines)


@dataclass(frozen=True)
class AbsentEvent:
    """An event name a journey definition refers to that the store does not have.

    Parameters
    ----------
    event : str
        The name as the definition spells it.
    used_by : tuple of str
        The stages whose rules name it and the outcomes (``outcome:<name>``) read from it.
    closest : list of str
        The closest event names the store has (may be empty).
    """

    event: str
    used_by: tuple[str, ...]
    closest: list[str]

    def message(self) -> str:
        """Say what is absent, where it is used, and what the store has that is close, in one sentence."""
        hint = f"closest names present: {', '.join(self.closest)}" if self.closest else "no event name present is close to it"
        return f"event {self.event!r} (used by {', '.join(self.used_by)}) is not in the store; {hint}."


def _rule_events(rule: Any) -> set[str]:
    if isinstance(rule, Condition):
        return set(rule.names)
    if isinstance(rule, AllOf):
        return set().union(*(_rule_events(r) for r in rule.all))
    if isinstance(rule, AnyOf):
        return set().union(*(_rule_events(r) for r in rule.any))
    return set()


def _uses_previous(rule: Any) -> bool:
    if isinstance(rule, Condition):
        return rule.of == "previous_stage"
    if isinstance(rule, AllOf):
        return any(_uses_previous(r) for r in rule.all)
    if isinstance(rule, AnyOf):
        return any(_uses_previous(r) for r in rule.any)
    return False
