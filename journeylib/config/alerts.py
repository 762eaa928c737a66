"""Alert rules and playbooks: the YAML a Customer Success team writes to be told who needs attention.

One file holds the rules, their playbooks and the owner routing; it is loaded
with :meth:`AlertRules.load` (or :meth:`AlertRules.from_yaml`) and every problem
is reported at once in one :class:`~journeylib.exceptions.ConfigError` naming
the key path, its line, what is allowed and what was found — the same format
as the journey definition.

Rule semantics
--------------
A rule fires for a customer on an as-of day when the customer is in one of
its ``segments`` and ``plans`` (all when not given) and **every** condition of
``when`` holds on what was known by the end of that day
(:func:`journeylib.actions.rules.alert_features_data`). A condition on a value
the customer does not have (no baseline for a trend, no peer in the stage, no
scored ticket) does not hold. Thresholds are ``gt``, ``gte``, ``lt``, ``lte``
(any combination; all must hold).

The churn-risk conditions (``risk``, ``risk_change_7d``) read a risk table
(the output of ``journeylib score``). Without one, a rule with risk
conditions raises nothing (``without_risk: skip``, the default; the run says
so), or fires on its other conditions with every alert saying that risk was
not checked (``without_risk: fire``); a rule whose only conditions are risk
conditions raises nothing without one.

After a rule fires for a customer it does not fire again for that customer
within ``cooldown_days`` (before or after that day), across runs.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from journeylib.config.loader import KeyPath, format_key_path, read_yaml, validate_config
from journeylib.exceptions import ConfigError

__all__ = [
    "ACTIONS",
    "SEVERITIES",
    "AlertRule",
    "AlertRules",
    "Conditions",
    "MilestoneOverdue",
    "Playbook",
    "Routing",
    "StageIn",
    "Threshold",
    "WindowThreshold",
]

#: Severities, lowest first.
SEVERITIES: tuple[str, ...] = ("low", "medium", "high", "critical")
#: What a playbook can do.
ACTIONS: tuple[str, ...] = ("email", "csm_task", "in_app", "webhook")
#: The windows (days) of the ticket-count conditions.
TICKET_WINDOWS: tuple[int, ...] = (7, 14, 30)
#: Keys of ``customers.properties`` that CRM exports use for the account owner, tried in order.
DEFAULT_OWNER_PROPERTIES: tuple[str, ...] = (
    "OwnerId", "Owner.Name", "Owner", "Account Owner", "Company owner", "HubSpot Owner", "hubspot_owner_id",
    "owner", "csm", "account_owner",
)  # fmt: skip

_NAME = r"^[A-Za-z0-9_.:\-]+$"


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Threshold(_Frozen):
    """Bounds on a number: every bound given must hold.

    Parameters
    ----------
    gt, gte, lt, lte : float, optional
        Greater than, at least, less than, at most.
    """

    gt: float | None = None
    gte: float | None = None
    lt: float | None = None
    lte: float | None = None

    @model_validator(mode="after")
    def _some_bound(self) -> Self:
        if all(v is None for v in (self.gt, self.gte, self.lt, self.lte)):
            msg = "give at least one bound: gt, gte, lt or lte"
            raise ValueError(msg)
        return self

    def text(self) -> str:
        """Return the bounds in words, e.g. ``"> 5 and <= 10"``."""
        parts = [f"{op} {_num(v)}" for op, v in ((">", self.gt), (">=", self.gte), ("<", self.lt), ("<=", self.lte)) if v is not None]
        return " and ".join(parts)


class WindowThreshold(Threshold):
    """Bounds on a count in a recent window.

    Parameters
    ----------
    window_days : {7, 14, 30}, default 30
        The window: the days up to and including the as-of day.
    gt, gte, lt, lte : float, optional
        As in :class:`Threshold`.
    """

    window_days: Literal[7, 14, 30] = 30


class StageIn(_Frozen):
    """The customer's current stage (the stage entered last by the as-of day).

    Parameters
    ----------
    in_ : list of str, optional
        Written ``in``: the stage is one of these.
    not_in : list of str, optional
        The stage is none of these.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    in_: list[str] | None = Field(default=None, alias="in", min_length=1)
    not_in: list[str] | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _one(self) -> Self:
        if (self.in_ is None) == (self.not_in is None):
            msg = "give exactly one of 'in' or 'not_in' (a list of stage names)"
            raise ValueError(msg)
        return self


class MilestoneOverdue(_Frozen):
    """A stage not reached within some days of signup.

    Parameters
    ----------
    stage : str
        A stage of the journey definition.
    within_days : float
        Holds when the customer signed up more than this many days before
        the end of the as-of day and had not entered *stage* by then.
    """

    stage: str = Field(min_length=1)
    within_days: Annotated[float, Field(gt=0)]


class Conditions(_Frozen):
    """The conditions of a rule; every one given must hold.

    Parameters
    ----------
    stage : StageIn, optional
        The current stage.
    days_in_stage : Threshold, optional
        Days since entering the current stage.
    days_in_stage_vs_peers : Threshold, optional
        Days in the stage over the median of the customers in the same stage
        on the same day (``gt: 2`` = more than twice the peer median: behind).
    stage_overdue : bool, optional
        ``true``: in the stage longer than the median time peers who moved on
        took (``false``: not).
    days_since_activity : Threshold, optional
        Whole days since the last activity event (a customer with none since
        signup counts from signup).
    activity_trend : Threshold, optional
        Activity per day in the last 14 days over the customer's own baseline
        per day (days 120..31 before; 1 = as usual, 0.5 = half).
    risk : Threshold, optional
        Churn risk (0..1) from the risk table.
    risk_change_7d : Threshold, optional
        Change of the churn risk over 7 days, from the risk table.
    tickets : WindowThreshold, optional
        Support tickets created in the window.
    negative_tickets : WindowThreshold, optional
        Negative-sentiment tickets created in the window.
    ticket_sentiment : Threshold, optional
        Mean sentiment (compound, -1..1) of the tickets created in the last 30 days.
    milestone_overdue : MilestoneOverdue, optional
        A stage not reached within some days of signup.
    paying : bool, optional
        ``true``: the customer had converted (the definition's conversion
        outcome) by the as-of day; ``false``: had not.
    tenure_days : Threshold, optional
        Days from signup to the end of the as-of day.
    """

    stage: StageIn | None = None
    days_in_stage: Threshold | None = None
    days_in_stage_vs_peers: Threshold | None = None
    stage_overdue: bool | None = None
    days_since_activity: Threshold | None = None
    activity_trend: Threshold | None = None
    risk: Threshold | None = None
    risk_change_7d: Threshold | None = None
    tickets: WindowThreshold | None = None
    negative_tickets: WindowThreshold | None = None
    ticket_sentiment: Threshold | None = None
    milestone_overdue: MilestoneOverdue | None = None
    paying: bool | None = None
    tenure_days: Threshold | None = None

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        if not self.given:
            msg = f"give at least one condition; allowed: {', '.join(type(self).model_fields)}"
            raise ValueError(msg)
        return self

    @property
    def given(self) -> list[str]:
        """The names of the conditions given, in declaration order."""
        return [name for name in type(self).model_fields if getattr(self, name) is not None]

    @property
    def uses_risk(self) -> bool:
        """Whether a condition reads the risk table."""
        return self.risk is not None or self.risk_change_7d is not None

    @property
    def uses_sentiment(self) -> bool:
        """Whether a condition reads ticket sentiment."""
        return self.negative_tickets is not None or self.ticket_sentiment is not None


class AlertRule(_Frozen):
    """One alert rule.

    Parameters
    ----------
    name : str
        Unique name (letters, digits, ``_ . : -``); part of the alert id.
    description : str, default ""
        What the rule looks for, in words.
    segments, plans : list of str, optional
        The rule applies only to customers of these segments / plans (the
        journey definition's segment field); all when not given.
    when : Conditions
        Every condition must hold.
    severity : {"low", "medium", "high", "critical"}, default "medium"
    cooldown_days : int, default 14
        Once raised for a customer, the rule is not raised again for that
        customer within this many days.
    without_risk : {"skip", "fire"}, default "skip"
        For a rule with risk conditions, when no risk table is given:
        ``skip`` raises nothing (said in the run's notes); ``fire`` fires on
        the other conditions and every alert says that risk was not checked.
    """

    name: str = Field(pattern=_NAME)
    description: str = ""
    segments: list[str] | None = Field(default=None, min_length=1)
    plans: list[str] | None = Field(default=None, min_length=1)
    when: Conditions
    severity: Literal["low", "medium", "high", "critical"] = "medium"
    cooldown_days: Annotated[int, Field(ge=1)] = 14
    without_risk: Literal["skip", "fire"] = "skip"


class Timing(_Frozen):
    """When a playbook's action should happen.

    Parameters
    ----------
    delay_days : float, default 0
        Days after the alert the action starts (0: at once).
    due_days : float, default 3
        Days after the alert by which it should be done.
    """

    delay_days: Annotated[float, Field(ge=0)] = 0
    due_days: Annotated[float, Field(gt=0)] = 3

    @model_validator(mode="after")
    def _order(self) -> Self:
        if self.due_days < self.delay_days:
            msg = f"due_days ({_num(self.due_days)}) must be at least delay_days ({_num(self.delay_days)})"
            raise ValueError(msg)
        return self


class Playbook(_Frozen):
    """The recommended action for a rule (in one segment, or in every segment).

    Parameters
    ----------
    rule : str
        The rule it answers.
    segment : str, optional
        Only for customers of this segment; a playbook of the rule's
        segment wins over one without a segment.
    action : {"email", "csm_task", "in_app", "webhook"}
        E-mail from a template, a task for the CSM, an in-app message, or a
        webhook call.
    template : str, optional
        The e-mail or in-app template (required for ``email`` and ``in_app``).
    resources : list of str, default []
        Links sent with the e-mail or message (guides, videos, office hours).
    task : str, optional
        The CSM task in words (required for ``csm_task``).
    webhook : str, optional
        The name of a webhook target (required for ``webhook``; its URL and
        secret come from the environment, not from this file).
    timing : Timing
        When the action happens.
    holdout_share : float, default 0
        Share (0..0.5) of the customers alerted under this playbook who are
        held out at random (no action), so its effect can be measured.
    """

    rule: str = Field(pattern=_NAME)
    segment: str | None = None
    action: Literal["email", "csm_task", "in_app", "webhook"]
    template: str | None = None
    resources: list[str] = Field(default_factory=list)
    task: str | None = None
    webhook: str | None = None
    timing: Timing = Field(default_factory=Timing)
    holdout_share: Annotated[float, Field(ge=0, le=0.5)] = 0.0

    @model_validator(mode="after")
    def _needs(self) -> Self:
        need = {"email": "template", "in_app": "template", "csm_task": "task", "webhook": "webhook"}[self.action]
        if getattr(self, need) is None:
            msg = f"action {self.action!r} needs {need!r}"
            raise ValueError(msg)
        return self

    @property
    def key(self) -> str:
        """``rule`` or ``rule@segment``: the playbook's name in alerts and holdout draws."""
        return self.rule if self.segment is None else f"{self.rule}@{self.segment}"

    def next_step(self) -> str:
        """Return the action and its timing in words."""
        when = "now" if self.timing.delay_days == 0 else f"in {_num(self.timing.delay_days)} days"
        due = f"due within {_num(self.timing.due_days)} days"
        res = f" with {', '.join(self.resources)}" if self.resources else ""
        if self.action == "email":
            text = f"send e-mail '{self.template}'{res}"
        elif self.action == "in_app":
            text = f"show in-app message '{self.template}'{res}"
        elif self.action == "csm_task":
            text = f"CSM task: {self.task}{res}"
        else:
            text = f"call webhook '{self.webhook}'"
        return f"{text} ({when}, {due})"


class Routing(_Frozen):
    """Who receives a customer's alerts.

    Parameters
    ----------
    owner_properties : list of str
        Keys of ``customers.properties`` holding the account owner (the CSM),
        tried in order; default: the keys CRM exports use (Salesforce
        ``OwnerId``, HubSpot ``Company owner`` ...).
    owners : dict of str to str, default {}
        Owner ids to names or addresses (a Salesforce ``OwnerId`` is an id).
    default_owner : str, default "unassigned"
        The owner of customers without one.
    """

    owner_properties: list[str] = Field(default_factory=lambda: list(DEFAULT_OWNER_PROPERTIES), min_length=1)
    owners: dict[str, str] = Field(default_factory=dict)
    default_owner: str = Field(default="unassigned", min_length=1)


class AlertRules(_Frozen):
    """An alert-rule file: the journey it reads, the rules, the playbooks and the owner routing.

    Parameters
    ----------
    name : str
        Name of the rule set.
    journey : str
        The journey definition (a path; relative to the rule file, else as
        :meth:`journeylib.config.JourneyDefinition.load` finds it).
    holdout_seed : int
        The seed of the holdout draws; kept with every alert.
    routing : Routing
    rules : list of AlertRule
    playbooks : list of Playbook

    Examples
    --------
    >>> r = AlertRules.from_dict({"name": "t", "journey": "j.yaml", "holdout_seed": 1, "rules": [
    ...     {"name": "quiet", "when": {"days_since_activity": {"gt": 7}}}]})
    >>> r.rules[0].when.given
    ['days_since_activity']
    """

    name: str = Field(min_length=1)
    description: str = ""
    journey: str = Field(min_length=1)
    holdout_seed: int
    routing: Routing = Field(default_factory=Routing)
    rules: list[AlertRule] = Field(min_length=1)
    playbooks: list[Playbook] = Field(default_factory=list)
    _source: str = PrivateAttr(default="<dict>")

    @field_validator("rules")
    @classmethod
    def _unique(cls, rules: list[AlertRule]) -> list[AlertRule]:
        names = [r.name for r in rules]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            msg = f"rule names must be unique; repeated: {', '.join(dupes)}"
            raise ValueError(msg)
        return rules

    @model_validator(mode="after")
    def _playbook_refs(self) -> Self:
        names = [r.name for r in self.rules]
        problems = []
        seen: set[str] = set()
        for i, p in enumerate(self.playbooks):
            if p.rule not in names:
                close = difflib.get_close_matches(p.rule, names, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                problems.append(f"playbooks[{i}].rule: names unknown rule {p.rule!r}; rules are {', '.join(names)}{hint}")
            if p.key in seen:
                problems.append(f"playbooks[{i}]: a second playbook for rule {p.rule!r} and segment {p.segment or '(any)'}")
            seen.add(p.key)
        if problems:
            raise ValueError("\n".join(problems))
        return self

    @property
    def source(self) -> str:
        """The file the rules were read from (``"<dict>"`` when built from a mapping)."""
        return self._source

    def rule(self, name: str) -> AlertRule:
        """Return the rule called *name*.

        Raises
        ------
        KeyError
            If there is none (the message lists the rules).
        """
        for r in self.rules:
            if r.name == name:
                return r
        msg = f"no rule {name!r} in {self.source}; rules are {', '.join(r.name for r in self.rules)}"
        raise KeyError(msg)

    def playbook(self, rule: str, segment: str | None) -> Playbook | None:
        """Return the playbook of *rule* for *segment* (a segment's own first, else the rule's general one)."""
        general = None
        for p in self.playbooks:
            if p.rule != rule:
                continue
            if p.segment is not None and p.segment == segment:
                return p
            if p.segment is None:
                general = p
        return general

    def check_journey(self, stage_names: list[str], *, lines: Mapping[KeyPath, int] | None = None) -> None:
        """Check that every stage a rule names is a stage of the journey definition.

        Parameters
        ----------
        stage_names : list of str
            The definition's stages.
        lines : mapping of KeyPath to int, optional
            Lines of the keys, for messages.

        Raises
        ------
        ConfigError
            Naming each unknown stage, its key path and line, and the stages.
        """
        lines = lines or {}
        problems = []
        for i, r in enumerate(self.rules):
            named: list[tuple[KeyPath, str]] = []
            if r.when.stage is not None:
                key = "in" if r.when.stage.in_ is not None else "not_in"
                named += [(("rules", i, "when", "stage", key, k), s) for k, s in enumerate(r.when.stage.in_ or r.when.stage.not_in or [])]
            if r.when.milestone_overdue is not None:
                named.append((("rules", i, "when", "milestone_overdue", "stage"), r.when.milestone_overdue.stage))
            for path, stage in named:
                if stage not in stage_names:
                    line = lines.get(path) or lines.get(path[:-1])
                    at = f" (line {line})" if line else ""
                    close = difflib.get_close_matches(stage, stage_names, n=1)
                    hint = f"; did you mean {close[0]!r}?" if close else ""
                    problems.append(
                        f"{format_key_path(path)}{at}: unknown stage {stage!r}; stages are {', '.join(stage_names)}{hint}"
                    )
        if problems:
            raise ConfigError(problems, self.source)

    def journey_path(self) -> Path:
        """Return the journey definition's path: relative to the rule file when it exists there, else as written."""
        p = Path(self.journey).expanduser()
        if not p.is_absolute() and self.source not in ("<dict>", "<yaml text>"):
            beside = Path(self.source).parent / p
            if beside.is_file():
                return beside.resolve()
        return p

    # -- loading ------------------------------------------------------------
    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], *, source: str = "<dict>", lines: Mapping[KeyPath, int] | None = None
    ) -> AlertRules:
        """Build and validate rules from a mapping.

        Parameters
        ----------
        data : dict
            The parsed YAML.
        source : str
            Where it came from, for messages.
        lines : mapping of KeyPath to int, optional
            The line of each key, for messages.

        Returns
        -------
        AlertRules

        Raises
        ------
        ConfigError
            With every problem: key path, line, what is allowed, what was found.
        """
        if not isinstance(data, Mapping):
            raise ConfigError([f"expected a mapping at the top level, found {type(data).__name__}"], source)
        rules = validate_config(cls, dict(data), source=source, lines=lines)
        rules._source = source
        return rules

    @classmethod
    def from_yaml(cls, path_or_data: str | Path | Mapping[str, Any]) -> AlertRules:
        """Load rules from a YAML file or a dict.

        Parameters
        ----------
        path_or_data : str, pathlib.Path or dict
            A path to a YAML file, or the already-parsed mapping.

        Returns
        -------
        AlertRules

        Raises
        ------
        ConfigError
            If the file is missing, not YAML, or invalid (all problems at once).
        """
        if isinstance(path_or_data, Mapping):
            return cls.from_dict(dict(path_or_data))
        doc = read_yaml(path_or_data, what="alert rule file")
        return cls.from_dict(doc.data, source=doc.source, lines=doc.lines)

    @classmethod
    def load(cls, rules: AlertRules | Mapping[str, Any] | str | Path) -> tuple[AlertRules, Mapping[KeyPath, int]]:
        """Load rules from anything that names them, with the lines of their keys.

        Parameters
        ----------
        rules : AlertRules, dict, str or pathlib.Path
            Ready rules (returned as they are), the parsed mapping, or a YAML file.

        Returns
        -------
        (AlertRules, mapping of KeyPath to int)
            The rules and the line of each key (empty unless read from a file).
        """
        if isinstance(rules, AlertRules):
            return rules, {}
        if isinstance(rules, Mapping):
            return cls.from_dict(dict(rules)), {}
        doc = read_yaml(rules, what="alert rule file")
        return cls.from_dict(doc.data, source=doc.source, lines=doc.lines), doc.lines


def _num(v: float) -> str:
    return f"{v:g}"
