"""The seeded synthetic SaaS world: a B2B project-management product with planted truths.

:func:`synthesize` simulates accounts of a fictional product (Planwise) from
trial sign-up to conversion, expansion, renewal and churn, with their users,
product events, support tickets, lifecycle e-mails and CRM stage changes, and
writes them as canonical tables (see :mod:`journeylib.store.schema`) plus a
``truth.json`` describing what was planted and what was realised.

How it is generated
-------------------
Customers are simulated in chunks of ``chunk_customers``; chunk *k* draws
from its own generator ``numpy.random.default_rng([seed, k])`` and is written
before the next one is generated, so memory stays bounded. Within a chunk
everything is vectorised across customers: each customer's latent state
(segment, archetype, setup time, conversion, churn time, ...) is drawn first,
then event streams are expanded with ``numpy.repeat`` from per-customer
counts (sessions are a piecewise-constant Poisson process). Nothing loops over
customers or events in Python.

The planted truths hold *by construction* — they are the probabilities the
simulation draws from — and the realised values in this particular world are
computed from exactly what was written. Outcomes are censored honestly at
``as_of``: nothing after it is written, accounts still paying are not churned,
and trials that have not ended have not converted.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from scipy.special import ndtr

from journeylib.datasets import text
from journeylib.datasets.files import FILE_FORMATS, TRUTH_FILE, TableSink, arrow_schema, truth_schema
from journeylib.store.schema import CUSTOMERS, EVENTS, MESSAGE_STATUSES, MESSAGES, TICKETS, USERS

__all__ = ["GENERATOR_VERSION", "SynthResult", "synthesize"]

#: Bumped whenever the same seed would produce different files.
GENERATOR_VERSION = "1.0.0"

DAY = 86_400
HOUR = 3_600
WEEK = 7 * DAY
#: "Never happens" time: far beyond any as_of, small enough not to overflow when shifted.
NEVER = np.int64(np.iinfo(np.int64).max // 4)
_SIGNUP_STREAM = 2**32 - 1  # second seed word of the generator that draws sign-up times

# -- vocabularies ----------------------------------------------------------
SEGMENTS: tuple[str, ...] = ("SMB", "Mid-market", "Enterprise")
ARCHETYPES: tuple[str, ...] = ("power_user", "in_between", "struggler")
PLANS: tuple[str, ...] = ("trial", "starter", "pro", "business")
PRICE_PER_SEAT: tuple[float, ...] = (0.0, 9.0, 19.0, 35.0)
REGIONS: tuple[str, ...] = ("north_america", "europe", "apac", "latam")
REGION_SHARES: tuple[float, ...] = (0.45, 0.35, 0.12, 0.08)
REGION_UTC_OFFSET_HOURS: tuple[int, ...] = (-5, 1, 8, -3)
CHANNELS: tuple[str, ...] = ("organic", "paid_search", "partner", "outbound")
INDUSTRIES: tuple[str, ...] = (
    "software", "marketing", "consulting", "construction", "education", "healthcare", "retail",
    "manufacturing", "nonprofit", "finance", "media", "logistics",
)
DEVICES: tuple[str, ...] = ("desktop", "mobile", "tablet")
FEATURES: tuple[str, ...] = ("boards", "gantt", "time_tracking", "reports", "automations", "docs")
INTEGRATIONS: tuple[str, ...] = ("slack", "github", "google_drive", "jira", "salesforce", "zoom")
ARMS: tuple[str, ...] = ("control", "email_variant_a", "email_variant_b")
EXPERIMENT = "onboarding_nudge"
CAMPAIGNS: tuple[str, ...] = (
    "welcome", "onboarding_tips", "onboarding_nudge_a", "onboarding_nudge_b", "trial_ending", "monthly_newsletter",
)
CANCEL_REASONS: tuple[str, ...] = ("budget", "low_usage", "missing_features", "switched_to_competitor", "company_closed")
ROLES: tuple[str, ...] = ("admin", "member", "viewer")
JOB_TITLES: tuple[str, ...] = (
    "Project Manager", "Operations Lead", "Software Engineer", "Designer", "Marketing Manager", "Founder",
    "Team Lead", "Analyst", "Consultant", "Office Manager", "Product Manager", "Account Executive",
)
TICKET_CHANNELS: tuple[str, ...] = ("email", "web", "chat", "phone")
PRIORITIES: tuple[str, ...] = ("low", "normal", "high", "urgent")
TICKET_STAGES: tuple[str, ...] = ("setup", "regular", "decline")

#: Which source each event name comes from.
EVENT_SOURCE: dict[str, str] = {
    "trial_started": "crm",
    "subscription_started": "crm",
    "plan_upgraded": "crm",
    "renewal": "crm",
    "subscription_cancelled": "crm",
    "email_delivered": "email",
    "email_opened": "email",
    "email_clicked": "email",
    "login": "product",
    "feature_used": "product",
    "project_created": "product",
    "task_created": "product",
    "invite_sent": "product",
    "integration_connected": "product",
    "setup_step_completed": "product",
    "setup_completed": "product",
    "experiment_assigned": "product",
    "ticket_created": "support",
    "ticket_solved": "support",
}
# Codes follow alphabetical order so that sorting by code sorts by name.
EVENT_NAMES: tuple[str, ...] = tuple(sorted(EVENT_SOURCE))
SOURCES: tuple[str, ...] = tuple(sorted(set(EVENT_SOURCE.values())))
_EV = {name: i for i, name in enumerate(EVENT_NAMES)}
_EV_SOURCE = np.array([SOURCES.index(EVENT_SOURCE[e]) for e in EVENT_NAMES], dtype=np.int8)


@dataclass(frozen=True)
class WorldParameters:
    """Every probability and rate the simulation draws from (recorded in ``truth.json``).

    Tuples indexed by archetype follow :data:`ARCHETYPES` (power_user,
    in_between, struggler); tuples indexed by segment follow :data:`SEGMENTS`.
    """

    segment_shares: tuple[float, ...] = (0.60, 0.30, 0.10)
    archetype_shares: tuple[float, ...] = (0.30, 0.25, 0.45)
    seats_min: tuple[int, ...] = (1, 3, 10)
    seats_max: tuple[int, ...] = (5, 15, 40)
    channel_shares_by_archetype: tuple[tuple[float, ...], ...] = (
        (0.40, 0.20, 0.25, 0.15),
        (0.38, 0.27, 0.17, 0.18),
        (0.33, 0.35, 0.10, 0.22),
    )
    plan_mix_by_segment: tuple[tuple[float, ...], ...] = ((0.60, 0.35, 0.05), (0.20, 0.55, 0.25), (0.0, 0.25, 0.75))
    trial_days: int = 14
    signup_growth: float = 0.5
    # product usage: account sessions per week = rate[archetype] * seats ** seat_exponent * noise
    sessions_per_week: tuple[float, ...] = (2.7, 1.9, 1.3)
    seat_exponent: float = 0.4
    usage_noise_sigma: float = 0.35
    trial_usage_boost: float = 1.3
    weekend_keep: float = 0.3
    features_per_session: tuple[float, ...] = (1.3, 0.9, 0.5)
    tasks_per_session: tuple[float, ...] = (0.7, 0.45, 0.2)
    projects_per_session: tuple[float, ...] = (0.06, 0.04, 0.03)
    feature_weights: tuple[tuple[float, ...], ...] = (
        (0.25, 0.18, 0.12, 0.17, 0.18, 0.10),
        (0.33, 0.15, 0.14, 0.13, 0.08, 0.17),
        (0.45, 0.10, 0.10, 0.07, 0.03, 0.25),
    )
    device_shares: tuple[float, ...] = (0.88, 0.08, 0.04)
    # setup (onboarding): time from sign-up to setup_completed, lognormal
    setup_complete_prob: tuple[float, ...] = (0.86, 0.78, 0.50)
    setup_median_days: tuple[float, ...] = (0.8, 2.5, 7.0)
    setup_sigma: float = 0.9
    setup_segment_multiplier: tuple[float, ...] = (1.0, 3.0, 1.3)
    # integrations
    trial_integrations_mean: tuple[float, ...] = (2.6, 1.1, 0.35)
    extra_integrations_mean: tuple[float, ...] = (1.0, 0.5, 0.2)
    invite_delay_days: tuple[float, ...] = (3.0, 15.0, 40.0)
    # conversion at the end of the trial
    conversion_base_by_segment: tuple[float, ...] = (0.20, 0.24, 0.28)
    conversion_archetype_multiplier: tuple[float, ...] = (1.15, 1.0, 0.85)
    conversion_integrations_threshold: int = 2
    conversion_integrations_ratio: float = 3.0
    # churn of paying accounts
    churn_horizon_days: int = 150
    churn_base_by_segment: tuple[float, ...] = (0.13, 0.11, 0.08)
    churn_archetype_multiplier: tuple[float, ...] = (0.9, 1.0, 1.1)
    churn_no_setup_ratio: float = 4.0
    setup_window_days: int = 7
    churn_day_min: int = 70
    late_churn_monthly_hazard: tuple[float, ...] = (0.015, 0.02, 0.03)
    decline_days: int = 45
    decline_sessions_per_week: tuple[float, ...] = (1.6, 0.8, 0.4)
    upgrade_prob: tuple[float, ...] = (0.35, 0.15, 0.05)
    # experiment
    experiment_uplift: float = 0.12
    experiment_from_months_after_start: int = 1
    experiment_until_months_before_as_of: int = 3
    nudge_days: tuple[int, ...] = (2, 5)
    # drift
    drift_months: int = 2
    drift_device_shares: tuple[float, ...] = (0.60, 0.35, 0.05)
    drift_gantt_multiplier: float = 0.35
    drift_sessions_multiplier: float = 0.8
    # support
    setup_ticket_rate_per_week: tuple[float, ...] = (0.12, 0.25, 0.45)
    setup_ticket_tone_by_archetype: tuple[tuple[float, ...], ...] = (
        (0.45, 0.10, 0.45),
        (0.65, 0.10, 0.25),
        (0.80, 0.10, 0.10),
    )
    friction_segment: str = "Mid-market"
    friction_ticket_multiplier: float = 3.0
    friction_ticket_tone: tuple[float, ...] = (0.25, 0.70, 0.05)
    regular_ticket_rate_per_week: tuple[float, ...] = (0.10, 0.07, 0.08)
    decline_ticket_rate_per_week: float = 0.30
    # e-mail
    open_prob: tuple[float, ...] = (0.55, 0.42, 0.28)
    click_prob: tuple[float, ...] = (0.35, 0.25, 0.15)
    bounce_prob: float = 0.02


PARAMS = WorldParameters()


@dataclass(frozen=True)
class SynthResult:
    """What :func:`synthesize` wrote.

    Attributes
    ----------
    out_dir : pathlib.Path
        The world's folder.
    files : dict of str to list of pathlib.Path
        The files of each canonical table (``customers``, ``users``,
        ``events``, ``tickets``, ``messages``); events have one part per chunk.
    counts : dict of str to int
        Rows written per canonical table.
    truth_path : pathlib.Path
        The ``truth.json`` file.
    as_of : pandas.Timestamp
        End of the observation window (UTC); nothing at or after it is written.
    truth_files : dict of str to pathlib.Path
        Latent truth tables: ``archetypes`` and ``ticket_labels``.
    """

    out_dir: Path
    files: dict[str, list[Path]]
    counts: dict[str, int]
    truth_path: Path
    as_of: pd.Timestamp
    truth_files: dict[str, Path] = field(default_factory=dict)


@dataclass(frozen=True)
class _Calendar:
    start: int
    as_of: int
    drift_from: int
    experiment_from: int
    experiment_to: int

    @property
    def key_base(self) -> int:
        return self.start - DAY


def _epoch(ts: pd.Timestamp) -> int:
    return int(ts.value // 1_000_000_000)


def _iso(t: int) -> str:
    return pd.Timestamp(t, unit="s", tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ")


def _calendar(start: str | pd.Timestamp, months: int, p: WorldParameters) -> _Calendar:
    ts = pd.Timestamp(start)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    as_of = ts + pd.DateOffset(months=months)
    drift_from = max(ts, as_of - pd.DateOffset(months=p.drift_months))
    exp_from = ts + pd.DateOffset(months=p.experiment_from_months_after_start)
    exp_to = as_of - pd.DateOffset(months=p.experiment_until_months_before_as_of)
    return _Calendar(
        start=_epoch(ts),
        as_of=_epoch(as_of),
        drift_from=_epoch(drift_from),
        experiment_from=_epoch(exp_from),
        experiment_to=max(_epoch(exp_from), _epoch(exp_to)),
    )


def _signups(seed: int, n: int, cal: _Calendar, p: WorldParameters) -> np.ndarray:
    """Sign-up times of all customers, sorted (customer ids follow sign-up order)."""
    rng = np.random.default_rng([seed, _SIGNUP_STREAM])
    n_days = max(1, math.ceil((cal.as_of - cal.start) / DAY))
    day = np.arange(n_days)
    dow = (cal.start // DAY + day + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
    weight = (1.0 + p.signup_growth * day / n_days) * np.where(dow >= 5, 0.35, 1.0)
    picked = rng.choice(n_days, size=n, p=weight / weight.sum())
    hour = np.clip(rng.normal(15.0, 3.5, n), 0.0, 23.99)
    t = cal.start + picked * DAY + (hour * HOUR).astype(np.int64)
    return np.sort(np.minimum(t, cal.as_of - HOUR))


# -- small vectorised helpers ----------------------------------------------
def _choice_rows(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One categorical draw per row of a (rows, k) probability matrix."""
    cum = np.cumsum(probs, axis=1)
    u = rng.random(len(probs)) * cum[:, -1]
    return np.minimum((u[:, None] >= cum).sum(axis=1), probs.shape[1] - 1)


def _ranks(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For ``np.repeat(arange(len(counts)), counts)``: the owner and the rank within the owner."""
    owner = np.repeat(np.arange(len(counts)), counts)
    starts = np.cumsum(counts) - counts
    return owner, np.arange(len(owner)) - starts[owner]


def _add_months(t: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Add *k* calendar months to epoch seconds *t* (day of month clipped to the month's end)."""
    days = (t // DAY).astype("datetime64[D]")
    tod = t % DAY
    month = days.astype("datetime64[M]")
    dom = (days - month.astype("datetime64[D]")).astype(np.int64)
    target = month + k.astype("timedelta64[M]")
    dim = ((target + 1).astype("datetime64[D]") - target.astype("datetime64[D]")).astype(np.int64)
    new_day = target.astype("datetime64[D]").astype(np.int64) + np.minimum(dom, dim - 1)
    return new_day * DAY + tod


def _str(values: tuple[str, ...] | list[str]) -> pa.Array:
    return pa.array(list(values), type=pa.string())


def _take(values: pa.Array, idx: np.ndarray) -> pa.Array:
    return values.take(pa.array(np.asarray(idx, dtype=np.int64)))


def _ids(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    text_numbers = pc.utf8_lpad(pc.cast(pa.array(np.asarray(numbers, dtype=np.int64)), pa.string()), width, "0")
    return pc.binary_join_element_wise(prefix, text_numbers, "")


def _join(*parts: pa.Array | str) -> pa.Array:
    return pc.binary_join_element_wise(*parts, "")


def _num_text(values: np.ndarray) -> pa.Array:
    return pc.cast(pa.array(np.asarray(values, dtype=np.int64)), pa.string())


def _timestamps(t: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    t = np.asarray(t, dtype=np.int64)
    mask = None if valid is None else ~np.asarray(valid, dtype=bool)
    us = np.where(mask, 0, t) * 1_000_000 if mask is not None else t * 1_000_000
    return pa.array(us, type=pa.timestamp("us", tz="UTC"), mask=mask)


# -- names -------------------------------------------------------------------
_PREFIXES = (
    "Acorn", "Alder", "Alpine", "Amber", "Anchor", "Apex", "Arbor", "Arrow", "Aspen", "Atlas", "Aurora",
    "Beacon", "Birch", "Blue", "Bold", "Bright", "Brook", "Canyon", "Cedar", "Cinder", "Clear", "Cloud",
    "Cobalt", "Compass", "Copper", "Coral", "Crest", "Crimson", "Crystal", "Delta", "Ember", "Evergreen",
    "Falcon", "Fern", "Field", "Flint", "Forge", "Fox", "Frontier", "Garnet", "Glacier", "Golden",
    "Granite", "Green", "Harbor", "Hawk", "Highland", "Horizon", "Indigo", "Iron", "Ivy", "Jade",
    "Juniper", "Keystone", "Lake", "Lantern", "Laurel", "Linden", "Lumen", "Maple", "Marble", "Meadow",
    "Mesa", "Metro", "Moss", "North", "Oak", "Onyx", "Orchid", "Pacific", "Pine", "Pioneer", "Polar",
    "Prairie", "Quartz", "Rapid", "Raven", "Red", "Ridge", "River", "Rock", "Sage", "Silver", "Slate",
    "Solar", "Spruce", "Stone", "Summit", "Swift", "Thistle", "Timber", "True", "Union", "Valley",
    "Vertex", "West", "Willow", "Zenith", "Zephyr", "Harvest",
)
_NOUNS = (
    "Analytics", "Apparel", "Architects", "Bakery", "Bio", "Brands", "Builders", "Capital", "Care",
    "Clinics", "Collective", "Commerce", "Consulting", "Creative", "Dental", "Design", "Digital",
    "Dynamics", "Education", "Energy", "Engineering", "Events", "Fitness", "Foods", "Freight", "Games",
    "Health", "Homes", "Hospitality", "Imaging", "Insights", "Interiors", "Labs", "Learning", "Legal",
    "Logistics", "Marine", "Media", "Medical", "Metrics", "Mobility", "Motors", "Networks", "Nutrition",
    "Optics", "Outdoors", "Packaging", "Partners", "Pharma", "Photography", "Print", "Properties",
    "Publishing", "Realty", "Recruiting", "Renewables", "Research", "Robotics", "Security", "Software",
    "Solutions", "Sports", "Staffing", "Studio", "Supply", "Systems", "Tech", "Textiles", "Therapy",
    "Tools", "Tours", "Trading", "Translations", "Travel", "Ventures", "Vision", "Wellness", "Works",
    "Yoga", "Cloudworks",
)
_TLDS = ("com", "io", "co", "net", "dev", "ai", "app", "co.uk", "de", "fr", "nl", "com.au", "ca", "es")
_SUFFIXES = ("", "", "", " Inc.", " Ltd", " LLC", " GmbH", " Group", " & Co.", " AG")
_FIRST = (
    "James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David", "Elizabeth",
    "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah", "Charles", "Karen",
    "Daniel", "Lisa", "Matthew", "Nancy", "Anthony", "Betty", "Mark", "Sandra", "Paul", "Ashley",
    "Steven", "Emily", "Andrew", "Michelle", "Joshua", "Amanda", "Kevin", "Melissa", "Brian", "Laura",
    "Lucas", "Sofia", "Noah", "Emma", "Liam", "Olivia", "Mateo", "Camila", "Leon", "Mia", "Hugo",
    "Chloe", "Arjun", "Priya", "Wei", "Mei", "Kenji", "Yuki", "Omar", "Fatima", "Ahmed", "Layla",
    "Diego", "Valentina", "Lars", "Ingrid", "Pierre", "Claire", "Marco", "Giulia", "Felix", "Hannah",
    "Ravi", "Anika", "Tomasz", "Zofia", "Ivan", "Elena", "Kofi", "Amara",
)
_LAST = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
    "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson",
    "Martin", "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez", "Clark", "Ramirez", "Lewis",
    "Robinson", "Walker", "Young", "Allen", "King", "Wright", "Scott", "Torres", "Nguyen", "Hill",
    "Flores", "Muller", "Schmidt", "Schneider", "Fischer", "Weber", "Dubois", "Moreau", "Laurent",
    "Rossi", "Russo", "Ferrari", "Jansen", "Devries", "Nilsson", "Larsen", "Kowalski", "Novak",
    "Tanaka", "Suzuki", "Sato", "Kim", "Park", "Chen", "Wang", "Singh", "Patel", "Khan", "Ali",
    "Silva", "Santos", "Costa", "Okafor", "Mensah", "Ivanov", "Petrov", "Murphy", "Kelly", "Walsh",
    "Byrne", "Hughes",
)
_NAME_STEP = 7_919  # prime, coprime to len(_FIRST) * len(_LAST): spreads a customer's users over name pairs


def _company_names(g: np.ndarray, seed: int, rng: np.random.Generator) -> tuple[pa.Array, pa.Array]:
    """Plausible company names and unique lower-case domains for global customer indices *g*.

    A fixed affine permutation of ``prefix x noun x tld`` maps each customer
    index to a distinct combination, so domains never collide (beyond the
    combinations, a cycle number is appended to the domain).
    """
    n_p, n_n, n_t = len(_PREFIXES), len(_NOUNS), len(_TLDS)
    m = n_p * n_n * n_t
    mult = 104_729  # prime, coprime to m
    offset = (seed * 2_654_435_761) % m
    perm = (g % m * mult + offset) % m
    cycle = g // m
    pi, rest = np.divmod(perm, n_n * n_t)
    ni, ti = np.divmod(rest, n_t)
    prefix = _take(_str(_PREFIXES), pi)
    noun = _take(_str(_NOUNS), ni)
    suffix = _take(_str(_SUFFIXES), rng.integers(0, len(_SUFFIXES), len(g)))
    name = _join(prefix, " ", noun, suffix)
    slug = pc.utf8_lower(_join(prefix, noun))
    cycle_text = pc.if_else(pa.array(cycle > 0), _num_text(cycle), "")
    domain = _join(slug, cycle_text, ".", _take(_str(_TLDS), ti))
    return name, domain


# -- property look-up table -----------------------------------------------------
def _build_props(p: WorldParameters) -> tuple[pa.Array, dict[str, int]]:
    lut: list[str] = ["{}"]
    base: dict[str, int] = {}

    def group(name: str, values: list[dict[str, Any]]) -> None:
        base[name] = len(lut)
        lut.extend(json.dumps(v) for v in values)

    group("device", [{"device": d} for d in DEVICES])
    group("feature", [{"feature": f} for f in FEATURES])
    group("integration", [{"integration": i} for i in INTEGRATIONS])
    group("step", [{"step": k} for k in range(1, 5)])
    group("arm", [{"experiment": EXPERIMENT, "arm": a} for a in ARMS])
    group("plan", [{"plan": pl} for pl in PLANS])
    group("upgrade", [{"old_plan": PLANS[i], "new_plan": PLANS[i + 1]} for i in range(len(PLANS) - 1)])
    group("reason", [{"reason": r} for r in CANCEL_REASONS])
    group("invite", [{"role": r} for r in ROLES])
    group("trial", [{"plan": "trial", "trial_days": p.trial_days}])
    return _str(lut), base


class _Events:
    """Collects event fragments of one chunk, then sorts them into the canonical order."""

    def __init__(self, props_base: dict[str, int]) -> None:
        self.base = props_base
        self.lut: list[tuple[np.ndarray, ...]] = []
        self.text: list[tuple[tuple[np.ndarray, ...], pa.Array]] = []

    def add(
        self,
        event: str,
        cust: np.ndarray,
        t: np.ndarray,
        *,
        user: np.ndarray | None = None,
        prop: np.ndarray | None = None,
        group: str | None = None,
    ) -> None:
        n = len(cust)
        ev = np.full(n, _EV[event], dtype=np.int8)
        u = np.full(n, -1, dtype=np.int64) if user is None else np.asarray(user, dtype=np.int64)
        if group is None:
            pr = np.zeros(n, dtype=np.int64)
        else:
            pr = self.base[group] + (np.zeros(n, dtype=np.int64) if prop is None else np.asarray(prop, dtype=np.int64))
        self.lut.append((np.asarray(cust, dtype=np.int64), np.asarray(t, dtype=np.int64), ev, u, pr))

    def add_text(self, event: str, cust: np.ndarray, t: np.ndarray, props: pa.Array, *, user: np.ndarray | None = None) -> None:
        n = len(cust)
        ev = np.full(n, _EV[event], dtype=np.int8)
        u = np.full(n, -1, dtype=np.int64) if user is None else np.asarray(user, dtype=np.int64)
        self.text.append(((np.asarray(cust, dtype=np.int64), np.asarray(t, dtype=np.int64), ev, u), props))

    def table(self, lut: pa.Array, first_seq: int, customer_ids: pa.Array, user_ids: pa.Array) -> pa.Table:
        cust = np.concatenate([f[0] for f in self.lut] + [f[0][0] for f in self.text])
        t = np.concatenate([f[1] for f in self.lut] + [f[0][1] for f in self.text])
        ev = np.concatenate([f[2] for f in self.lut] + [f[0][2] for f in self.text])
        user = np.concatenate([f[3] for f in self.lut] + [f[0][3] for f in self.text])
        prop_idx = np.concatenate([f[4] for f in self.lut])
        props = pa.concat_arrays([lut.take(pa.array(prop_idx))] + [f[1] for f in self.text])
        src = _EV_SOURCE[ev]
        order = np.lexsort((ev, src, t, cust))
        cust, t, ev, user, src = cust[order], t[order], ev[order], user[order], src[order]
        n = len(order)
        return pa.table(
            {
                "event_id": _ids("evt_", first_seq + 1 + np.arange(n), 10),
                "customer_id": _take(customer_ids, cust),
                "user_id": user_ids.take(pa.array(user, mask=user < 0)),
                "timestamp": _timestamps(t),
                "event": _take(_str(EVENT_NAMES), ev),
                "source": _take(_str(SOURCES), src),
                "properties": props.take(pa.array(order)),
            }
        )


# -- realised truths ------------------------------------------------------------
class _Tally:
    """Counts accumulated over chunks, turned into the ``realised`` parts of truth.json."""

    def __init__(self) -> None:
        z = np.zeros
        self.setup_churn_n = z((3, 3, 2), dtype=np.int64)  # segment, archetype, no-setup-in-7-days
        self.setup_churn_events = z((3, 3, 2), dtype=np.int64)
        self.integ_n = z((3, 3, 2), dtype=np.int64)  # segment, archetype, >= 2 integrations in trial
        self.integ_conv = z((3, 3, 2), dtype=np.int64)
        self.decline_logins = z(13, dtype=np.int64)  # weeks before churn 1..12
        self.decline_customers = z(13, dtype=np.int64)
        self.setup_days: list[list[np.ndarray]] = [[], [], []]
        self.setup_customers = z(3, dtype=np.int64)
        self.setup_tickets = z((3, 3), dtype=np.int64)  # segment, tone
        self.archetypes = z((3, 3), dtype=np.int64)  # segment, archetype
        self.arm_n = z(3, dtype=np.int64)
        self.arm_setup14 = z(3, dtype=np.int64)
        self.cohort_devices = z((2, 3), dtype=np.int64)
        self.cohort_features = z((2, 6), dtype=np.int64)
        self.cohort_trial_sessions = z(2, dtype=np.int64)
        self.cohort_trial_customers = z(2, dtype=np.int64)
        self.customers_by_status: dict[str, int] = {"trial": 0, "trial_expired": 0, "active": 0, "churned": 0}


# -- the simulation of one chunk ------------------------------------------------
class _Chunk:
    """Simulates one chunk of customers; every array is indexed by the chunk-local customer index."""

    def __init__(
        self,
        rng: np.random.Generator,
        *,
        first: int,
        signup: np.ndarray,
        cal: _Calendar,
        p: WorldParameters,
        seed: int,
        id_width: int,
        props: tuple[pa.Array, dict[str, int]],
        tally: _Tally,
    ) -> None:
        self.rng = rng
        self.p = p
        self.cal = cal
        self.seed = seed
        self.n = len(signup)
        self.g = first + np.arange(self.n, dtype=np.int64)
        self.t0 = np.asarray(signup, dtype=np.int64)
        self.id_width = id_width
        self.props_lut, props_base = props
        self.events = _Events(props_base)
        self.tally = tally

    # .. latent customer state ....................................................
    def customers(self) -> None:
        r, p, n, cal = self.rng, self.p, self.n, self.cal
        t0 = self.t0
        self.seg = r.choice(3, n, p=p.segment_shares)
        self.arch = r.choice(3, n, p=p.archetype_shares)
        self.region = r.choice(len(REGIONS), n, p=REGION_SHARES)
        self.tz = np.asarray(REGION_UTC_OFFSET_HOURS)[self.region] * HOUR
        self.channel = _choice_rows(r, np.asarray(p.channel_shares_by_archetype)[self.arch])
        self.industry = r.integers(0, len(INDUSTRIES), n)
        lo = np.asarray(p.seats_min)[self.seg]
        hi = np.asarray(p.seats_max)[self.seg]
        self.seats = lo + np.floor((hi - lo + 1) * r.random(n) ** 2).astype(np.int64)
        self.drift = t0 >= cal.drift_from
        enrolled = (t0 >= cal.experiment_from) & (t0 < cal.experiment_to)
        self.arm = np.where(enrolled, r.integers(0, 3, n), -1)
        noise = np.exp(p.usage_noise_sigma * r.standard_normal(n))
        self.lam = (
            np.asarray(p.sessions_per_week)[self.arch]
            * self.seats**p.seat_exponent
            * noise
            * np.where(self.drift, p.drift_sessions_multiplier, 1.0)
        )
        self.first_login = t0 + r.integers(60, 600, n)
        trial = p.trial_days * DAY
        self.trial_end = t0 + trial

        # setup: lognormal time to setup_completed, longer in the friction segment
        med = np.asarray(p.setup_median_days)[self.arch] * np.asarray(p.setup_segment_multiplier)[self.seg]
        pc_ = np.asarray(p.setup_complete_prob)[self.arch]
        completes = r.random(n) < pc_
        dur = med * np.exp(p.setup_sigma * r.standard_normal(n))
        setup = np.where(completes, np.maximum(t0 + (dur * DAY).astype(np.int64), self.first_login + 60), NEVER)
        # variant_b: P(setup within the trial) rises by exactly `experiment_uplift` for every customer:
        # q is the customer's own probability without the nudge, and a share uplift / (1 - q) of the
        # customers who would have been late is moved inside the trial, after the first nudge.
        q = pc_ * ndtr((np.log(p.trial_days) - np.log(med)) / p.setup_sigma)
        move = r.random(n) < np.minimum(1.0, p.experiment_uplift / (1.0 - q))
        nudge0 = p.nudge_days[0]
        nudged_at = t0 + ((nudge0 + r.random(n) * (p.trial_days - 0.01 - nudge0)) * DAY).astype(np.int64)
        nudged = (self.arm == 2) & (setup > self.trial_end) & move
        self.setup_latent = np.where(nudged, np.maximum(nudged_at, self.first_login + 60), setup)

        # integrations during the trial drive conversion
        self.k_trial = np.minimum(r.poisson(np.asarray(p.trial_integrations_mean)[self.arch]), len(INTEGRATIONS))
        self.k_extra = r.poisson(np.asarray(p.extra_integrations_mean)[self.arch])
        self.integ_perm = np.argsort(r.random((n, len(INTEGRATIONS))), axis=1)
        many = self.k_trial >= p.conversion_integrations_threshold
        p_conv = (
            np.asarray(p.conversion_base_by_segment)[self.seg]
            * np.asarray(p.conversion_archetype_multiplier)[self.arch]
            * np.where(many, p.conversion_integrations_ratio, 1.0)
        )
        self.conv_latent = r.random(n) < p_conv
        self.conv_at = self.trial_end + r.integers(0, 36 * HOUR, n)
        self.plan0 = 1 + _choice_rows(r, np.asarray(p.plan_mix_by_segment)[self.seg])

        # churn of paying accounts: early (within the horizon) with a planted setup effect, then a small hazard
        setup7 = self.setup_latent <= t0 + p.setup_window_days * DAY
        p_churn = (
            np.asarray(p.churn_base_by_segment)[self.seg]
            * np.asarray(p.churn_archetype_multiplier)[self.arch]
            * np.where(setup7, 1.0, p.churn_no_setup_ratio)
        )
        early = r.random(n) < p_churn
        early_day = p.churn_day_min + r.random(n) * (p.churn_horizon_days - p.churn_day_min)
        late_day = p.churn_horizon_days + r.exponential(30.0 / np.asarray(p.late_churn_monthly_hazard)[self.arch])
        churn_day = np.where(early, early_day, late_day)
        self.churn_at = np.where(self.conv_latent, t0 + (churn_day * DAY).astype(np.int64), NEVER)
        self.decline_start = np.where(self.conv_latent, self.churn_at - p.decline_days * DAY, NEVER)
        self.active_end = np.where(
            self.conv_latent, np.minimum(self.churn_at, cal.as_of), np.minimum(self.trial_end, cal.as_of)
        )
        self.converted = self.conv_latent & (self.conv_at < cal.as_of)
        self.churned = self.conv_latent & (self.churn_at < cal.as_of)
        self.setup = np.where(self.setup_latent < self.active_end, self.setup_latent, NEVER)

        # expansion
        up_at = self.conv_at + ((30 + r.random(n) * 170) * DAY).astype(np.int64)
        self.upgraded = (
            self.converted
            & (self.plan0 < len(PLANS) - 1)
            & (r.random(n) < np.asarray(p.upgrade_prob)[self.arch])
            & (up_at < self.active_end)
        )
        self.up_at = up_at
        self.plan = np.where(self.converted, self.plan0 + self.upgraded, 0)

    # .. users ..........................................................................
    def users(self) -> None:
        r, p = self.rng, self.p
        owner, j = _ranks(self.seats)
        delay = r.exponential(np.asarray(p.invite_delay_days)[self.arch[owner]]) * DAY
        invite_at = self.first_login[owner] + delay.astype(np.int64)
        created = np.where(j == 0, self.t0[owner], invite_at + r.exponential(6 * HOUR, len(owner)).astype(np.int64))
        role = np.where(j == 0, 0, _choice_rows(r, np.tile([0.1, 0.8, 0.1], (len(owner), 1))))
        title = r.integers(0, len(JOB_TITLES), len(owner))
        invited = (j > 0) & (invite_at < self.active_end[owner])
        invite_owner, invite_t, invite_role = owner[invited], invite_at[invited], role[invited]
        keep = created < self.active_end[owner]
        keep |= j == 0
        owner, created, role, title = owner[keep], created[keep], role[keep], title[keep]
        order = np.lexsort((created, owner))
        owner, created, role, title = owner[order], created[order], role[order], title[order]
        counts = np.bincount(owner, minlength=self.n)
        _, rank = _ranks(counts)
        self.user_owner = owner
        self.user_created = created
        self.user_first = np.cumsum(counts) - counts
        self.user_count = counts
        self.user_key = (owner << 32) | (created - self.cal.key_base)
        # the admin (the account's first user) sends the invites
        self.events.add("invite_sent", invite_owner, invite_t, user=self.user_first[invite_owner], prop=invite_role, group="invite")
        # names: a per-account offset plus rank * prime step gives distinct (first, last) pairs per account
        n_pairs = len(_FIRST) * len(_LAST)
        offset = r.integers(0, n_pairs, self.n)
        pair = (offset[owner] + rank * _NAME_STEP) % n_pairs
        fi, li = np.divmod(pair, len(_LAST))
        self.user_firstname = _take(_str(_FIRST), fi)
        self.user_lastname = _take(_str(_LAST), li)
        cust_num = self.g[owner] + 1
        self.user_ids = _join(_ids("usr_", cust_num, self.id_width), "_", pc.utf8_lpad(_num_text(rank), 2, "0"))
        self.user_role = role
        self.user_title = title

    def pick_users(self, cust: np.ndarray, t: np.ndarray, skew: float = 1.6) -> np.ndarray:
        """Pick, per row, a user of the account who exists at time *t* (early users, the admin first, more often)."""
        key = (cust << 32) | (t - self.cal.key_base)
        first = self.user_first[cust]
        m = np.maximum(np.searchsorted(self.user_key, key, side="right") - first, 1)
        return first + np.minimum(np.floor(self.rng.random(len(cust)) ** skew * m).astype(np.int64), m - 1)

    # .. product usage ...........................................................
    def sessions(self) -> None:
        r, p, n = self.rng, self.p, self.n
        conv = self.conv_latent
        seg_c, seg_s, seg_e, seg_r = [], [], [], []

        def add(mask: np.ndarray, s: np.ndarray, e: np.ndarray, rate: np.ndarray) -> None:
            idx = np.flatnonzero(mask & (e > s))
            seg_c.append(idx)
            seg_s.append(s[idx])
            seg_e.append(e[idx])
            seg_r.append(rate[idx])

        everyone = np.ones(n, dtype=bool)
        add(everyone, self.first_login + 60, np.minimum(self.trial_end, self.active_end), self.lam * p.trial_usage_boost)
        add(conv, self.trial_end, np.minimum(self.decline_start, self.active_end), self.lam)
        third = p.decline_days * DAY // len(p.decline_sessions_per_week)
        for k, cap in enumerate(p.decline_sessions_per_week):
            s = np.maximum(self.decline_start + k * third, self.trial_end)
            add(conv, s, np.minimum(s + third, self.active_end), np.minimum(self.lam, cap))
        cust = np.concatenate(seg_c)
        start = np.concatenate(seg_s)
        end = np.concatenate(seg_e)
        rate = np.concatenate(seg_r)
        keep_frac = (5 + 2 * p.weekend_keep) / 7
        count = r.poisson(rate * (end - start) / WEEK / keep_frac)
        owner, _ = _ranks(count)
        c = cust[owner]
        t = start[owner] + (r.random(len(owner)) * (end - start)[owner]).astype(np.int64)
        # business hours on weekdays, in the account's time zone
        local_day = (t + self.tz[c]) // DAY
        weekday = (local_day + 3) % 7 < 5
        keep = weekday | (r.random(len(c)) < p.weekend_keep)
        hour = np.clip(r.normal(13.5, 2.8, len(c)), 6.0, 23.5)
        t = local_day * DAY + (hour * HOUR).astype(np.int64) - self.tz[c]
        keep &= (t > self.first_login[c]) & (t < self.active_end[c])
        c, t = c[keep], t[keep]
        # the very first session, right after sign-up
        has_first = self.first_login < self.active_end
        c = np.concatenate([np.flatnonzero(has_first), c])
        t = np.concatenate([self.first_login[has_first], t])
        user = self.pick_users(c, t)
        dev_p = np.where(self.drift[c][:, None], np.asarray(p.drift_device_shares), np.asarray(p.device_shares))
        device = _choice_rows(r, dev_p)
        self.events.add("login", c, t, user=user, prop=device, group="device")
        self.session_cust, self.session_t, self.session_device = c, t, device

        # what happens inside a session
        a = self.arch[c]
        n_feat = r.poisson(np.asarray(p.features_per_session)[a])
        n_task = r.poisson(np.asarray(p.tasks_per_session)[a])
        n_proj = (r.random(len(c)) < np.asarray(p.projects_per_session)[a]).astype(np.int64)
        k = n_feat + n_task + n_proj
        sess, rank = _ranks(k)
        kind = np.where(rank < n_feat[sess], 0, np.where(rank < (n_feat + n_task)[sess], 1, 2))
        kind = kind[np.lexsort((r.random(len(sess)), sess))]  # shuffle the order within each session
        gap = r.exponential(180.0, len(sess)) + 20.0
        csum = np.cumsum(gap)
        first_in = (np.cumsum(k) - k)[sess]
        et = t[sess] + (csum - csum[first_in] + gap[first_in]).astype(np.int64)
        ok = et < self.active_end[c[sess]]
        sess, kind, et = sess[ok], kind[ok], et[ok]
        ec, eu = c[sess], user[sess]
        f = kind == 0
        weights = np.asarray(p.feature_weights)[self.arch[ec[f]]]
        drifted = self.drift[ec[f]]
        weights = weights * np.where(drifted[:, None] & (np.arange(len(FEATURES)) == 1), p.drift_gantt_multiplier, 1.0)
        feature = _choice_rows(r, weights)
        self.events.add("feature_used", ec[f], et[f], user=eu[f], prop=feature, group="feature")
        self.feature_cust, self.feature = ec[f], feature
        self.events.add("task_created", ec[kind == 1], et[kind == 1], user=eu[kind == 1])
        self.events.add("project_created", ec[kind == 2], et[kind == 2], user=eu[kind == 2])

    def setup_events(self) -> None:
        r = self.rng
        n = self.n
        done = self.setup < NEVER
        admin = self.user_first
        idx = np.flatnonzero(done)
        self.events.add("setup_completed", idx, self.setup[idx], user=admin[idx])
        # steps 1-4: spread before setup_completed for completers; 0-3 steps for the others
        steps = np.where(done, 4, r.choice(4, n, p=[0.3, 0.3, 0.25, 0.15]))
        owner, rank = _ranks(steps)
        frac = np.sort(r.random((n, 4)) * 0.95, axis=1)
        frac[:, 3] = 0.98
        span_done = (self.setup - self.first_login).astype(np.float64)
        gaps = np.cumsum(r.exponential(1.5 * DAY, (n, 4)), axis=1)
        t_done = self.first_login[owner] + (frac[owner, rank] * span_done[owner]).astype(np.int64)
        t_part = self.first_login[owner] + gaps[owner, rank].astype(np.int64)
        t = np.where(done[owner], t_done, t_part)
        ok = (t < self.active_end[owner]) & (t < self.setup[owner])
        self.events.add("setup_step_completed", owner[ok], t[ok], user=admin[owner[ok]], prop=rank[ok], group="step")

    def integration_events(self) -> None:
        r, p = self.rng, self.p
        trial = p.trial_days * DAY
        owner, rank = _ranks(self.k_trial)
        t = self.t0[owner] + 300 + ((trial - 600) * r.random(len(owner)) ** 1.5).astype(np.int64)
        extra = np.where(self.conv_latent, np.minimum(self.k_extra, len(INTEGRATIONS) - self.k_trial), 0)
        o2, r2 = _ranks(extra)
        span = np.maximum(self.active_end - self.conv_at, 0)
        t2 = self.conv_at[o2] + (r.random(len(o2)) * span[o2]).astype(np.int64)
        owner = np.concatenate([owner, o2])
        rank = np.concatenate([rank, r2 + self.k_trial[o2]])
        t = np.concatenate([t, t2])
        ok = t < self.active_end[owner]
        owner, rank, t = owner[ok], rank[ok], t[ok]
        user = self.pick_users(owner, t, skew=3.0)
        self.events.add("integration_connected", owner, t, user=user, prop=self.integ_perm[owner, rank], group="integration")
        in_trial = t < self.trial_end[owner]
        self.k_trial_observed = np.bincount(owner[in_trial], minlength=self.n)

    def experiment_events(self) -> None:
        idx = np.flatnonzero((self.arm >= 0) & (self.t0 + 120 < self.cal.as_of))
        self.events.add("experiment_assigned", idx, self.t0[idx] + 120, user=self.user_first[idx], prop=self.arm[idx], group="arm")

    def crm_events(self) -> None:
        r, cal, n = self.rng, self.cal, self.n
        ev = self.events
        all_ = np.arange(n)
        ev.add("trial_started", all_, self.t0, group="trial")
        c = np.flatnonzero(self.converted)
        ev.add("subscription_started", c, self.conv_at[c], prop=self.plan0[c], group="plan")
        u = np.flatnonzero(self.upgraded)
        ev.add("plan_upgraded", u, self.up_at[u], prop=self.plan0[u], group="upgrade")
        ch = np.flatnonzero(self.churned)
        reason_p = np.tile([0.25, 0.35, 0.2, 0.15, 0.05], (len(ch), 1))
        ev.add("subscription_cancelled", ch, self.churn_at[ch], prop=_choice_rows(r, reason_p), group="reason")
        # monthly renewals on the conversion anniversary
        k = np.full(len(c), 14)
        owner, rank = _ranks(k)
        cc = c[owner]
        when = _add_months(self.conv_at[cc], rank + 1)
        plan_then = np.where(self.upgraded[cc] & (self.up_at[cc] <= when), self.plan0[cc] + 1, self.plan0[cc])
        ok = when < self.active_end[cc]
        ev.add("renewal", cc[ok], when[ok], prop=plan_then[ok], group="plan")
        # renewal_at: next renewal for paying accounts, the last one for churned accounts
        renewal_at = np.full(n, NEVER)
        nxt = (when >= cal.as_of) & ~self.churned[cc]
        np.minimum.at(renewal_at, cc[nxt], when[nxt])
        last = np.full(n, -1, dtype=np.int64)
        prev = ok & self.churned[cc]
        np.maximum.at(last, cc[prev], when[prev])
        self.renewal_at = np.where(last >= 0, last, renewal_at)

    # .. e-mail ...................................................................
    def emails(self, send_seq: int, message_seq: int, id_width: int) -> tuple[pa.Table, int, int]:
        r, p, cal, n = self.rng, self.p, self.cal, self.n
        s_c, s_t, s_k = [], [], []

        def send(mask: np.ndarray, t: np.ndarray, campaign: str) -> None:
            idx = np.flatnonzero(mask & (t < self.active_end))
            s_c.append(idx)
            s_t.append(t[idx])
            s_k.append(np.full(len(idx), CAMPAIGNS.index(campaign)))

        everyone = np.ones(n, dtype=bool)
        send(everyone, self.t0 + 300, "welcome")
        send(everyone, self.t0 + 3 * DAY, "onboarding_tips")
        for d in p.nudge_days:
            send(self.arm == 1, self.t0 + d * DAY, "onboarding_nudge_a")
            send(self.arm == 2, self.t0 + d * DAY, "onboarding_nudge_b")
        send(everyone, self.t0 + (p.trial_days - 3) * DAY, "trial_ending")
        for m in range(13):
            send(self.conv_latent, self.conv_at + (10 + 30 * m) * DAY, "monthly_newsletter")
        c = np.concatenate(s_c)
        t = np.concatenate(s_t)
        k = np.concatenate(s_k)
        order = np.lexsort((k, t, c))
        c, t, k = c[order], t[order], k[order]
        ns = len(c)
        user = self.user_first[c]
        a = self.arch[c]
        bounced = r.random(ns) < p.bounce_prob
        delivered_at = t + r.integers(5, 120, ns)
        factor = np.where(k == CAMPAIGNS.index("monthly_newsletter"), 0.7, np.where((k == 2) | (k == 3), 1.1, 1.0))
        opened = ~bounced & (r.random(ns) < np.asarray(p.open_prob)[a] * factor)
        opened_at = delivered_at + np.exp(np.log(3 * HOUR) + 1.2 * r.standard_normal(ns)).astype(np.int64)
        clicked = opened & (r.random(ns) < np.asarray(p.click_prob)[a] * factor)
        clicked_at = opened_at + r.integers(10, 600, ns)
        unsub = opened & (r.random(ns) < np.where(k == CAMPAIGNS.index("monthly_newsletter"), 0.03, 0.01))
        unsub_at = opened_at + r.integers(20, 900, ns)
        # one row per status; MESSAGE_STATUSES = delivered, opened, clicked, bounced, unsubscribed
        rows = [
            (~bounced, delivered_at, 0),
            (opened, opened_at, 1),
            (clicked, clicked_at, 2),
            (bounced, delivered_at, 3),
            (unsub, unsub_at, 4),
        ]
        send_i = np.concatenate([np.flatnonzero(m & (tt < cal.as_of)) for m, tt, _ in rows])
        status = np.concatenate([np.full(int((m & (tt < cal.as_of)).sum()), s) for m, tt, s in rows])
        mt = np.concatenate([tt[m & (tt < cal.as_of)] for m, tt, _ in rows])
        order = np.lexsort((status, send_i, mt, c[send_i]))
        send_i, status, mt = send_i[order], status[order], mt[order]
        mc = c[send_i]
        nm = len(send_i)
        message_ids = _ids("msg_", message_seq + 1 + np.arange(nm), id_width)
        send_ids = _ids("snd_", send_seq + 1 + send_i, id_width)
        campaign = _take(_str(CAMPAIGNS), k[send_i])
        table = pa.table(
            {
                "message_id": message_ids,
                "customer_id": _take(self.customer_ids, mc),
                "user_id": _take(self.user_ids, user[send_i]),
                "timestamp": _timestamps(mt),
                "campaign": campaign,
                "status": _take(_str(MESSAGE_STATUSES), status),
                "properties": _join('{"send_id": "', send_ids, '"}'),
            }
        )
        ev_name = {0: "email_delivered", 1: "email_opened", 2: "email_clicked"}
        for s, name in ev_name.items():
            sel = np.flatnonzero(status == s)
            props = _join('{"campaign": "', campaign.take(pa.array(sel)), '", "message_id": "', message_ids.take(pa.array(sel)), '"}')
            self.events.add_text(name, mc[sel], mt[sel], props, user=user[send_i[sel]])
        return table, send_seq + ns, message_seq + nm

    # .. support ...................................................................
    def tickets(self, ticket_seq: int, id_width: int) -> tuple[pa.Table, pa.Table, int]:
        r, p, cal, n = self.rng, self.p, self.cal, self.n
        friction = SEGMENTS.index(p.friction_segment)
        t0, first_login = self.t0, self.first_login
        stage_end = np.minimum(np.minimum(self.setup_latent, t0 + 30 * DAY), self.active_end)
        parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []

        def window(s: np.ndarray, e: np.ndarray, rate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            e = np.maximum(e, s)
            cnt = r.poisson(rate * (e - s) / WEEK)
            owner, _ = _ranks(cnt)
            t = s[owner] + (r.random(len(owner)) * (e - s)[owner]).astype(np.int64)
            return owner, t

        # the setup stage: confused questions, and a frustrated spike in the friction segment
        rate = np.asarray(p.setup_ticket_rate_per_week)[self.arch] * np.where(self.seg == friction, p.friction_ticket_multiplier, 1.0)
        o, t = window(first_login + HOUR, stage_end, rate)
        tone_p = np.where(
            (self.seg[o] == friction)[:, None], np.asarray(p.friction_ticket_tone), np.asarray(p.setup_ticket_tone_by_archetype)[self.arch[o]]
        )
        tone = _choice_rows(r, tone_p)
        topic = np.where(r.random(len(o)) < 0.8, 0, 1)
        parts.append((o, t, topic, tone, np.zeros(len(o), dtype=np.int64)))
        # regular life
        reg_end = np.minimum(self.decline_start, self.active_end)
        o, t = window(np.maximum(stage_end, first_login + HOUR), reg_end, np.asarray(p.regular_ticket_rate_per_week)[self.arch])
        topic = 1 + _choice_rows(r, np.tile([0.18, 0.15, 0.15, 0.12, 0.22, 0.18], (len(o), 1)))
        rough = (topic == 4) | (topic == 6)
        tone_p = np.where(rough[:, None], [0.15, 0.40, 0.45], [0.12, 0.18, 0.70])
        parts.append((o, t, topic, _choice_rows(r, tone_p), np.ones(len(o), dtype=np.int64)))
        # the last weeks of a churner: frustrated
        o, t = window(np.maximum(self.decline_start, stage_end), self.active_end, np.full(n, p.decline_ticket_rate_per_week))
        topic = 1 + _choice_rows(r, np.tile([0.05, 0.25, 0.15, 0.25, 0.10, 0.20], (len(o), 1)))
        tone = _choice_rows(r, np.tile([0.10, 0.80, 0.10], (len(o), 1)))
        parts.append((o, t, topic, tone, np.full(len(o), 2, dtype=np.int64)))

        c = np.concatenate([q[0] for q in parts])
        t = np.concatenate([q[1] for q in parts])
        topic = np.concatenate([q[2] for q in parts])
        tone = np.concatenate([q[3] for q in parts])
        stage = np.concatenate([q[4] for q in parts])
        ok = t < self.active_end[c]
        c, t, topic, tone, stage = c[ok], t[ok], topic[ok], tone[ok], stage[ok]
        order = np.lexsort((t, c))
        c, t, topic, tone, stage = c[order], t[order], topic[order], tone[order], stage[order]
        nt = len(c)
        user = self.pick_users(c, t)
        frustrated = tone == 1
        channel = _choice_rows(r, np.tile([0.45, 0.25, 0.25, 0.05], (nt, 1)))
        prio_p = np.where(
            frustrated[:, None], [0.0, 0.40, 0.45, 0.15], np.where((tone == 0)[:, None], [0.30, 0.60, 0.10, 0.0], [0.45, 0.50, 0.05, 0.0])
        )
        priority = _choice_rows(r, prio_p)
        hours = np.exp(np.log(6.0) + 1.1 * r.standard_normal(nt)) * np.where(frustrated, 1.8, 1.0) * np.where(topic == 6, 2.0, 1.0)
        solved_at = t + (hours * HOUR).astype(np.int64) + 120
        solved = solved_at < cal.as_of
        age = cal.as_of - t
        status_open = np.where(age < DAY, 0, np.where(r.random(nt) < 0.6, 1, 2))  # new, open, pending
        status = np.where(solved, np.where(cal.as_of - solved_at > 4 * DAY, 4, 3), status_open)
        rated = solved & (r.random(nt) < 0.45)
        rating_p = np.asarray([[0.03, 0.07, 0.25, 0.40, 0.25], [0.30, 0.30, 0.25, 0.10, 0.05], [0.0, 0.0, 0.05, 0.35, 0.60]])[tone]
        rating = _choice_rows(r, rating_p)
        satisfaction = pa.array(rating / 4.0, mask=~rated)
        tagged = r.random(nt) < 0.6
        tag_lut = _str([json.dumps({"tags": [tp]}) for tp in text.TOPICS] + [json.dumps({"tags": []})])
        props = _take(tag_lut, np.where(tagged, topic, len(text.TOPICS)))
        first = self.user_firstname.take(pa.array(user))
        last = self.user_lastname.take(pa.array(user))
        company = _take(self.names, c)
        subject, body = text.ticket_texts(r, topic=topic, tone=tone, first=first, last=last, company=company, created_s=t)
        ticket_ids = _ids("tkt_", ticket_seq + 1 + np.arange(nt), id_width)
        table = pa.table(
            {
                "ticket_id": ticket_ids,
                "customer_id": _take(self.customer_ids, c),
                "user_id": _take(self.user_ids, user),
                "created_at": _timestamps(t),
                "solved_at": _timestamps(solved_at, solved),
                "channel": _take(_str(TICKET_CHANNELS), channel),
                "subject": subject,
                "body": body,
                "status": _take(_str(("new", "open", "pending", "solved", "closed")), status),
                "priority": _take(_str(PRIORITIES), priority),
                "satisfaction": satisfaction,
                "properties": props,
            }
        )
        labels = pa.table(
            {
                "ticket_id": ticket_ids,
                "topic": _take(_str(text.TOPICS), topic),
                "tone": _take(_str(text.TONES), tone),
                "stage": _take(_str(TICKET_STAGES), stage),
            }
        )
        created_props = _join('{"ticket_id": "', ticket_ids, '"}')
        self.events.add_text("ticket_created", c, t, created_props, user=user)
        sel = np.flatnonzero(solved)
        self.events.add_text("ticket_solved", c[sel], solved_at[sel], created_props.take(pa.array(sel)))
        self.ticket_cust, self.ticket_tone, self.ticket_stage = c, tone, stage
        return table, labels, ticket_seq + nt

    # .. tables ....................................................................
    def identity(self) -> None:
        self.customer_ids = _ids("cus_", self.g + 1, self.id_width)
        self.names, self.domains = _company_names(self.g, self.seed, self.rng)

    def customer_table(self) -> pa.Table:
        cal = self.cal
        decided_at = np.where(self.conv_latent, self.conv_at, self.trial_end)
        in_trial = ~self.converted & (decided_at > cal.as_of)
        status = np.where(self.churned, 3, np.where(self.converted, 2, np.where(in_trial, 0, 1)))
        # per-seat pricing on the licensed seats (not all of them need to be taken by users yet)
        last_mrr = np.where(self.converted, np.asarray(PRICE_PER_SEAT)[self.plan] * self.seats, 0.0)
        mrr = np.where(self.converted & ~self.churned, last_mrr, 0.0)
        statuses = ("trial", "trial_expired", "active", "churned")
        props = _join(
            '{"acquisition_channel": "', _take(_str(CHANNELS), self.channel),
            '", "region": "', _take(_str(REGIONS), self.region),
            '", "industry": "', _take(_str(INDUSTRIES), self.industry),
            '", "seats": ', _num_text(self.seats),
            ', "status": "', _take(_str(statuses), status),
            '", "last_mrr": ', _num_text(last_mrr),
            "}",
        )
        for i, s in enumerate(statuses):
            self.tally.customers_by_status[s] += int((status == i).sum())
        return pa.table(
            {
                "customer_id": self.customer_ids,
                "name": self.names,
                "domain": self.domains,
                "segment": _take(_str(SEGMENTS), self.seg),
                "plan": _take(_str(PLANS), self.plan),
                "signup_at": _timestamps(self.t0),
                "converted_at": _timestamps(self.conv_at, self.converted),
                "churned_at": _timestamps(self.churn_at, self.churned),
                "renewal_at": _timestamps(self.renewal_at, self.renewal_at < NEVER),
                "mrr": pa.array(mrr.astype(np.float64)),
                "properties": props,
            }
        )

    def user_table(self) -> pa.Table:
        cust = self.user_owner
        first = pc.utf8_lower(self.user_firstname)
        last = pc.utf8_lower(self.user_lastname)
        email = _join(first, ".", last, "@", _take(self.domains, cust))
        title_lut = _str([json.dumps({"job_title": t}) for t in JOB_TITLES])
        return pa.table(
            {
                "user_id": self.user_ids,
                "customer_id": _take(self.customer_ids, cust),
                "email": email,
                "role": _take(_str(ROLES), self.user_role),
                "created_at": _timestamps(self.user_created),
                "properties": _take(title_lut, self.user_title),
            }
        )

    # .. realised truths .............................................................
    def tally_truths(self) -> None:
        p, cal, tl = self.p, self.cal, self.tally
        seg, arch = self.seg, self.arch
        # 1. setup within 7 days vs churn within the horizon, paying accounts with a complete window
        horizon = p.churn_horizon_days * DAY
        pop = self.converted & (self.t0 <= cal.as_of - horizon)
        no_setup = ~(self.setup <= self.t0 + p.setup_window_days * DAY)
        churn_h = self.churned & (self.churn_at - self.t0 <= horizon)
        np.add.at(tl.setup_churn_n, (seg[pop], arch[pop], no_setup[pop].astype(int)), 1)
        np.add.at(tl.setup_churn_events, (seg[pop], arch[pop], no_setup[pop].astype(int)), churn_h[pop].astype(int))
        # 2. integrations in the trial vs conversion, accounts whose trial (and decision) is over
        pop = self.t0 <= cal.as_of - (p.trial_days + 2) * DAY
        many = (self.k_trial_observed >= p.conversion_integrations_threshold).astype(int)
        np.add.at(tl.integ_n, (seg[pop], arch[pop], many[pop]), 1)
        np.add.at(tl.integ_conv, (seg[pop], arch[pop], many[pop]), self.converted[pop].astype(int))
        # 3. sessions per week before churn
        ch = self.churned
        sc, st = self.session_cust, self.session_t
        cs, ts_ = sc[ch[sc]], st[ch[sc]]
        week = (self.churn_at[cs] - ts_) // WEEK + 1
        full_week = self.churn_at[cs] - week * WEEK >= self.t0[cs]  # only weeks entirely after sign-up
        tl.decline_logins += np.bincount(week[full_week & (week <= 12)], minlength=13)[:13]
        for w in range(1, 13):
            tl.decline_customers[w] += int((ch & (self.churn_at - w * WEEK >= self.t0)).sum())
        # 4. setup stage duration and tickets by segment
        done = self.setup < NEVER
        for s in range(3):
            m = done & (seg == s)
            tl.setup_days[s].append((self.setup[m] - self.first_login[m]) / DAY)
            tl.setup_customers[s] += int((seg == s).sum())
        st_ = self.ticket_stage == 0
        np.add.at(tl.setup_tickets, (seg[self.ticket_cust[st_]], self.ticket_tone[st_]), 1)
        # 5. archetypes
        np.add.at(tl.archetypes, (seg, arch), 1)
        # 6. experiment
        enrolled = (self.arm >= 0) & (self.t0 <= cal.as_of - p.trial_days * DAY)
        np.add.at(tl.arm_n, self.arm[enrolled], 1)
        np.add.at(tl.arm_setup14, self.arm[enrolled], (self.setup[enrolled] <= self.t0[enrolled] + p.trial_days * DAY).astype(int))
        # 7. drift
        coh = self.drift.astype(int)
        np.add.at(tl.cohort_devices, (coh[sc], self.session_device), 1)
        np.add.at(tl.cohort_features, (coh[self.feature_cust], self.feature), 1)
        full = self.t0 + p.trial_days * DAY <= cal.as_of
        in_trial = full[sc] & (st < self.t0[sc] + p.trial_days * DAY)
        np.add.at(tl.cohort_trial_sessions, coh[sc[in_trial]], 1)
        np.add.at(tl.cohort_trial_customers, coh[full], 1)


# -- truth summary --------------------------------------------------------------------
def _ratio(a: float, b: float) -> float | None:
    return None if b == 0 else round(a / b, 4)


def _difference(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round(a - b, 4)


def _rr_tables(n: np.ndarray, ev: np.ndarray, exposed: int) -> dict[str, Any]:
    """Crude and Mantel-Haenszel risk ratios (exposed vs unexposed) over segment x archetype strata."""
    n1, e1 = n[..., exposed].ravel(), ev[..., exposed].ravel()
    n0, e0 = n[..., 1 - exposed].ravel(), ev[..., 1 - exposed].ravel()
    tot = n1 + n0
    ok = tot > 0
    num = float(np.sum(e1[ok] * n0[ok] / tot[ok]))
    den = float(np.sum(e0[ok] * n1[ok] / tot[ok]))
    r1 = _ratio(float(e1.sum()), float(n1.sum()))
    r0 = _ratio(float(e0.sum()), float(n0.sum()))
    return {
        "n_exposed": int(n1.sum()),
        "events_exposed": int(e1.sum()),
        "rate_exposed": r1,
        "n_unexposed": int(n0.sum()),
        "events_unexposed": int(e0.sum()),
        "rate_unexposed": r0,
        "crude_risk_ratio": (
            None if not n1.sum() or not n0.sum() or not e0.sum() else round(float(e1.sum() / n1.sum() / (e0.sum() / n0.sum())), 4)
        ),
        "adjusted_risk_ratio_mantel_haenszel": _ratio(num, den),
        "adjusted_for": ["segment", "archetype"],
    }


def _truth(
    *, p: WorldParameters, cal: _Calendar, tally: _Tally, seed: int, n: int, start: str, months: int,
    chunk: int, fmt: str, files: dict[str, list[str]], truth_files: dict[str, str], counts: dict[str, int],
) -> dict[str, Any]:
    tl = tally
    arms: dict[str, dict[str, Any]] = {}
    for i, a in enumerate(ARMS):
        arms[a] = {"n": int(tl.arm_n[i]), "setup_within_14d": int(tl.arm_setup14[i]), "rate": _ratio(float(tl.arm_setup14[i]), float(tl.arm_n[i]))}
    ctrl = arms["control"]["rate"]
    mean_decline = {
        str(w): _ratio(float(tl.decline_logins[w]), float(tl.decline_customers[w])) for w in range(1, 13)
    }
    below = 0
    for w in range(1, 13):
        v = mean_decline[str(w)]
        if v is None or v >= 2.0:
            break
        below = w
    setup_medians = {}
    for s, name in enumerate(SEGMENTS):
        d = np.concatenate(tl.setup_days[s]) if tl.setup_days[s] else np.array([])
        setup_medians[name] = None if len(d) == 0 else round(float(np.median(d)), 4)
    friction = SEGMENTS.index(p.friction_segment)
    others = np.concatenate([np.concatenate(tl.setup_days[s]) for s in range(3) if s != friction and tl.setup_days[s]] or [np.array([])])
    fric_days = np.concatenate(tl.setup_days[friction]) if tl.setup_days[friction] else np.array([])
    tickets_by_seg = {
        name: {
            "setup_tickets": int(tl.setup_tickets[s].sum()),
            "per_customer": _ratio(float(tl.setup_tickets[s].sum()), float(tl.setup_customers[s])),
            "frustrated_share": _ratio(float(tl.setup_tickets[s, 1]), float(tl.setup_tickets[s].sum())),
        }
        for s, name in enumerate(SEGMENTS)
    }
    arch_counts = tl.archetypes.sum(axis=0)
    dev = tl.cohort_devices
    feat = tl.cohort_features
    cohorts = {}
    for i, name in enumerate(("before", "after")):
        cohorts[name] = {
            "device_share": {d: _ratio(float(dev[i, j]), float(dev[i].sum())) for j, d in enumerate(DEVICES)},
            "feature_share": {f: _ratio(float(feat[i, j]), float(feat[i].sum())) for j, f in enumerate(FEATURES)},
            "trial_sessions_per_week": _ratio(float(tl.cohort_trial_sessions[i]), float(tl.cohort_trial_customers[i]) * p.trial_days / 7),
            "customers_with_complete_trial": int(tl.cohort_trial_customers[i]),
        }
    params = asdict(p)
    planted = {
        "setup_churn": {
            "description": (
                "Paying customers who do not complete setup (a setup_completed event) within "
                f"{p.setup_window_days} days of sign-up churn within {p.churn_horizon_days} days of sign-up "
                f"{p.churn_no_setup_ratio:g}x as often as those who do, given segment and archetype."
            ),
            "parameters": {
                "risk_ratio": p.churn_no_setup_ratio,
                "setup_window_days": p.setup_window_days,
                "churn_horizon_days": p.churn_horizon_days,
                "churn_base_by_segment": dict(zip(SEGMENTS, p.churn_base_by_segment, strict=True)),
                "churn_archetype_multiplier": dict(zip(ARCHETYPES, p.churn_archetype_multiplier, strict=True)),
            },
            "definition": {
                "population": "converted_at not empty and signup_at <= as_of - churn_horizon_days",
                "exposure": "no setup_completed event within setup_window_days of signup_at",
                "outcome": "churned_at - signup_at <= churn_horizon_days",
            },
            "realised": _rr_tables(tl.setup_churn_n, tl.setup_churn_events, exposed=1),
        },
        "integrations_conversion": {
            "description": (
                f"Trial customers who connect >= {p.conversion_integrations_threshold} integrations during the "
                f"{p.trial_days}-day trial convert to paid {p.conversion_integrations_ratio:g}x as often, given segment "
                "and archetype."
            ),
            "parameters": {
                "risk_ratio": p.conversion_integrations_ratio,
                "threshold": p.conversion_integrations_threshold,
                "trial_days": p.trial_days,
                "conversion_base_by_segment": dict(zip(SEGMENTS, p.conversion_base_by_segment, strict=True)),
                "conversion_archetype_multiplier": dict(zip(ARCHETYPES, p.conversion_archetype_multiplier, strict=True)),
            },
            "definition": {
                "population": "signup_at <= as_of - (trial_days + 2) days",
                "exposure": "distinct integration_connected events with timestamp < signup_at + trial_days >= threshold",
                "outcome": "converted_at not empty",
            },
            "realised": _rr_tables(tl.integ_n, tl.integ_conv, exposed=1),
        },
        "churn_login_decline": {
            "description": (
                f"Account sessions (login events) of churners drop below 2 per week {p.decline_days} days before "
                "churned_at and keep falling until the cancellation."
            ),
            "parameters": {
                "decline_start_days_before_churn": p.decline_days,
                "threshold_sessions_per_week": 2.0,
                "decline_sessions_per_week_caps": list(p.decline_sessions_per_week),
                "decline_piece_days": p.decline_days / len(p.decline_sessions_per_week),
            },
            "definition": {
                "population": "customers with churned_at not empty",
                "measure": "login events per churner in week w before churned_at, weeks fully after signup_at",
            },
            "realised": {
                "churners": int(tl.decline_customers[1]),
                "mean_sessions_by_week_before_churn": mean_decline,
                "weeks_before_churn_below_threshold": below,
            },
        },
        "friction_point": {
            "description": (
                f"{p.friction_segment} customers take {p.setup_segment_multiplier[friction]:g}x longer (median) from "
                "first login to setup_completed and raise "
                f"{p.friction_ticket_multiplier:g}x more setup-stage tickets, mostly frustrated."
            ),
            "parameters": {
                "segment": p.friction_segment,
                "stage": "setup",
                "stage_from_event": "login",
                "stage_to_event": "setup_completed",
                "duration_multiplier": p.setup_segment_multiplier[friction],
                "setup_segment_multiplier": dict(zip(SEGMENTS, p.setup_segment_multiplier, strict=True)),
                "ticket_rate_multiplier": p.friction_ticket_multiplier,
                "ticket_tone_shares": dict(zip(text.TONES, p.friction_ticket_tone, strict=True)),
            },
            "realised": {
                "median_setup_days_by_segment": setup_medians,
                "median_ratio_vs_other_segments": (
                    None if len(others) == 0 or len(fric_days) == 0 else round(float(np.median(fric_days) / np.median(others)), 4)
                ),
                "setup_tickets_by_segment": tickets_by_seg,
            },
        },
        "archetypes": {
            "description": "Latent behavioural archetypes drive usage, setup, integrations, invites and tickets.",
            "parameters": {"shares": dict(zip(ARCHETYPES, p.archetype_shares, strict=True))},
            "labels_file": truth_files["archetypes"],
            "realised": {
                "counts": {a: int(arch_counts[i]) for i, a in enumerate(ARCHETYPES)},
                "shares": {a: _ratio(float(arch_counts[i]), float(arch_counts.sum())) for i, a in enumerate(ARCHETYPES)},
                "counts_by_segment": {
                    s: {a: int(tl.archetypes[si, ai]) for ai, a in enumerate(ARCHETYPES)} for si, s in enumerate(SEGMENTS)
                },
            },
        },
        "experiment": {
            "description": (
                f"Trial customers signing up between {_iso(cal.experiment_from)} and {_iso(cal.experiment_to)} are "
                "randomised into three equal arms; email_variant_b raises the probability of completing setup within "
                f"{p.trial_days} days by {p.experiment_uplift * 100:g} points, email_variant_a has no effect."
            ),
            "parameters": {
                "experiment": EXPERIMENT,
                "arms": list(ARMS),
                "allocation": [1 / 3, 1 / 3, 1 / 3],
                "enrolment_from": _iso(cal.experiment_from),
                "enrolment_to": _iso(cal.experiment_to),
                "outcome": f"setup_completed within {p.trial_days} days of signup_at",
                "uplift_absolute": {"control": 0.0, "email_variant_a": 0.0, "email_variant_b": p.experiment_uplift},
                "campaigns": {"control": None, "email_variant_a": "onboarding_nudge_a", "email_variant_b": "onboarding_nudge_b"},
                "nudge_days": list(p.nudge_days),
            },
            "realised": {
                "arms": arms,
                "uplift_vs_control": {a: _difference(arms[a]["rate"], ctrl) for a in ARMS[1:]},
            },
        },
        "drift": {
            "description": (
                f"Customers signing up from {_iso(cal.drift_from)} on use the mobile app far more, use Gantt charts "
                "less and log in less often."
            ),
            "parameters": {
                "cohort_boundary": _iso(cal.drift_from),
                "device_shares_before": dict(zip(DEVICES, p.device_shares, strict=True)),
                "device_shares_after": dict(zip(DEVICES, p.drift_device_shares, strict=True)),
                "gantt_weight_multiplier": p.drift_gantt_multiplier,
                "sessions_multiplier": p.drift_sessions_multiplier,
            },
            "realised": cohorts,
        },
    }
    return {
        "generator": "journeylib.datasets",
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "n_customers": n,
        "start": start,
        "months": months,
        "as_of": _iso(cal.as_of),
        "chunk_customers": chunk,
        "file_format": fmt,
        "files": files,
        "truth_files": truth_files,
        "row_counts": counts,
        "customers_by_status": dict(tl.customers_by_status),
        "world": params,
        "planted": planted,
    }


_TABLE_FILES = ("customers", "users", "tickets", "messages")


def _validate(n_customers: int, seed: int, months: int, file_format: str, chunk_customers: int) -> None:
    if isinstance(n_customers, bool) or not isinstance(n_customers, int) or n_customers < 1:
        msg = f"synthesize(n_customers=...) must be a positive integer; got {n_customers!r}"
        raise ValueError(msg)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        msg = f"synthesize(seed=...) must be a non-negative integer; got {seed!r}"
        raise ValueError(msg)
    if isinstance(months, bool) or not isinstance(months, int) or months < 1:
        msg = f"synthesize(months=...) must be a positive integer; got {months!r}"
        raise ValueError(msg)
    if file_format not in FILE_FORMATS:
        msg = f"synthesize(file_format=...) must be one of {list(FILE_FORMATS)}; got {file_format!r}"
        raise ValueError(msg)
    if isinstance(chunk_customers, bool) or not isinstance(chunk_customers, int) or chunk_customers < 1:
        msg = f"synthesize(chunk_customers=...) must be a positive integer; got {chunk_customers!r}"
        raise ValueError(msg)


def synthesize(
    out_dir: str | Path,
    *,
    n_customers: int = 2000,
    seed: int = 0,
    start: str = "2025-01-06",
    months: int = 12,
    file_format: str = "parquet",
    chunk_customers: int = 5000,
) -> SynthResult:
    """Simulate the synthetic SaaS world and write it as canonical tables plus ``truth.json``.

    Parameters
    ----------
    out_dir : str or pathlib.Path
        Folder to write into (created if needed). Files of an earlier world
        in the same folder are overwritten; stale event parts are removed.
    n_customers : int, default 2000
        Number of accounts (all start as trials).
    seed : int, default 0
        Seed; the same ``(seed, n_customers, start, months, chunk_customers)``
        gives byte-identical files.
    start : str, default "2025-01-06"
        Start of the observation window (UTC); sign-ups are spread over it.
    months : int, default 12
        Length of the window; ``as_of`` is ``start + months``.
    file_format : {"parquet", "csv"}, default "parquet"
        File format of the tables.
    chunk_customers : int, default 5000
        Customers simulated (and held in memory) at once; one event part per
        chunk.

    Returns
    -------
    SynthResult
        ``out_dir``, ``files`` (table -> paths), ``counts`` (table -> rows),
        ``truth_path``, ``as_of`` and ``truth_files``. The files hold:

        ``customers.<fmt>``
            ``customer_id``, ``name``, ``domain``, ``segment``, ``plan``,
            ``signup_at``, ``converted_at``, ``churned_at``, ``renewal_at``,
            ``mrr``, ``properties``.
        ``users.<fmt>``
            ``user_id``, ``customer_id``, ``email``, ``role``,
            ``created_at``, ``properties``.
        ``events/part-NNNNN.<fmt>``
            ``event_id``, ``customer_id``, ``user_id``, ``timestamp``,
            ``event``, ``source``, ``properties``.
        ``tickets.<fmt>``
            ``ticket_id``, ``customer_id``, ``user_id``, ``created_at``,
            ``solved_at``, ``channel``, ``subject``, ``body``, ``status``,
            ``priority``, ``satisfaction``, ``properties``.
        ``messages.<fmt>``
            ``message_id``, ``customer_id``, ``user_id``, ``timestamp``,
            ``campaign``, ``status``, ``properties``.
        ``archetypes.<fmt>``, ``ticket_labels.<fmt>``
            Latent truths (see :func:`load_archetypes`,
            :func:`load_ticket_labels`).

    Raises
    ------
    ValueError
        If an argument is out of range or *file_format* is unknown.

    Examples
    --------
    >>> import tempfile
    >>> result = synthesize(tempfile.mkdtemp(), n_customers=50, seed=1)
    >>> result.counts["customers"]
    50
    """
    _validate(n_customers, seed, months, file_format, chunk_customers)
    p = PARAMS
    out = Path(out_dir)
    events_dir = out / "events"
    events_dir.mkdir(parents=True, exist_ok=True)
    # Remove what an earlier run (other size or format) left behind, so the folder holds one world.
    stale = list(events_dir.glob("part-*.*"))
    for name in (*_TABLE_FILES, "archetypes", "ticket_labels"):
        stale += [out / f"{name}.{other}" for other in FILE_FORMATS]
    for path in sorted(stale):
        path.unlink(missing_ok=True)
    cal = _calendar(start, months, p)
    signup = _signups(seed, n_customers, cal, p)
    id_width = max(6, len(str(n_customers)))
    big_width = id_width + 4
    ext = file_format
    sinks = {
        "customers": TableSink(out / f"customers.{ext}", arrow_schema(CUSTOMERS), ext),
        "users": TableSink(out / f"users.{ext}", arrow_schema(USERS), ext),
        "tickets": TableSink(out / f"tickets.{ext}", arrow_schema(TICKETS), ext),
        "messages": TableSink(out / f"messages.{ext}", arrow_schema(MESSAGES), ext),
        "archetypes": TableSink(out / f"archetypes.{ext}", truth_schema("archetypes"), ext),
        "ticket_labels": TableSink(out / f"ticket_labels.{ext}", truth_schema("ticket_labels"), ext),
    }
    props = _build_props(p)
    tally = _Tally()
    event_files: list[Path] = []
    seq = {"event": 0, "ticket": 0, "message": 0, "send": 0}
    events_schema = arrow_schema(EVENTS)
    try:
        for k, lo in enumerate(range(0, n_customers, chunk_customers)):
            hi = min(n_customers, lo + chunk_customers)
            rng = np.random.default_rng([seed, k])
            ch = _Chunk(rng, first=lo, signup=signup[lo:hi], cal=cal, p=p, seed=seed, id_width=id_width, props=props, tally=tally)
            ch.customers()
            ch.identity()
            ch.users()
            ch.crm_events()
            ch.experiment_events()
            ch.setup_events()
            ch.integration_events()
            ch.sessions()
            messages, seq["send"], seq["message"] = ch.emails(seq["send"], seq["message"], big_width)
            tickets, labels, seq["ticket"] = ch.tickets(seq["ticket"], big_width)
            ch.tally_truths()
            sinks["customers"].write(ch.customer_table())
            sinks["users"].write(ch.user_table())
            sinks["messages"].write(messages)
            sinks["tickets"].write(tickets)
            sinks["ticket_labels"].write(labels)
            sinks["archetypes"].write(pa.table({"customer_id": ch.customer_ids, "archetype": _take(_str(ARCHETYPES), ch.arch)}))
            events = ch.events.table(props[0], seq["event"], ch.customer_ids, ch.user_ids)
            seq["event"] += events.num_rows
            path = events_dir / f"part-{k:05d}.{ext}"
            part = TableSink(path, events_schema, ext)
            try:
                part.write(events)
            finally:
                part.close()
            event_files.append(path)
            del ch, events, messages, tickets, labels
    finally:
        for sink in sinks.values():
            sink.close()
    counts = {name: sinks[name].rows for name in ("customers", "users", "tickets", "messages")}
    counts["events"] = seq["event"]
    counts = {name: counts[name] for name in ("customers", "users", "events", "tickets", "messages")}
    files = {name: [sinks[name].path] for name in ("customers", "users", "tickets", "messages")}
    files["events"] = event_files
    files = {name: files[name] for name in ("customers", "users", "events", "tickets", "messages")}
    truth_files = {name: sinks[name].path for name in ("archetypes", "ticket_labels")}
    truth = _truth(
        p=p, cal=cal, tally=tally, seed=seed, n=n_customers, start=str(start), months=months, chunk=chunk_customers,
        fmt=file_format,
        files={k: [f.relative_to(out).as_posix() for f in v] for k, v in files.items()},
        truth_files={k: v.relative_to(out).as_posix() for k, v in truth_files.items()},
        counts=counts,
    )
    truth_path = out / TRUTH_FILE
    truth_path.write_text(json.dumps(truth, indent=2) + "\n", encoding="utf-8")
    return SynthResult(
        out_dir=out,
        files=files,
        counts=counts,
        truth_path=truth_path,
        as_of=pd.Timestamp(cal.as_of, unit="s", tz="UTC"),
        truth_files=truth_files,
    )
