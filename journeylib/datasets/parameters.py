"""What the synthetic world draws from: time units, vocabularies, event sources and :class:`WorldParameters`.

Every probability and rate of the simulation (:mod:`journeylib.datasets.simulation`)
is a field of :class:`WorldParameters`; :data:`PARAMS` holds the defaults that
:func:`journeylib.datasets.world.synthesize` uses, recorded in ``truth.json``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "ARCHETYPES",
    "ARMS",
    "CAMPAIGNS",
    "CANCEL_REASONS",
    "CHANNELS",
    "DAY",
    "DEVICES",
    "EVENT_NAMES",
    "EVENT_SOURCE",
    "EXPERIMENT",
    "FEATURES",
    "GENERATOR_VERSION",
    "HOUR",
    "INDUSTRIES",
    "INTEGRATIONS",
    "JOB_TITLES",
    "NEVER",
    "PARAMS",
    "PLANS",
    "PRICE_PER_SEAT",
    "PRIORITIES",
    "REGIONS",
    "REGION_SHARES",
    "REGION_UTC_OFFSET_HOURS",
    "ROLES",
    "SEGMENTS",
    "SOURCES",
    "TICKET_CHANNELS",
    "TICKET_STAGES",
    "WEEK",
    "WorldParameters",
]

#: Bumped whenever the same seed would produce different files.
GENERATOR_VERSION = "1.0.0"

DAY = 86_400
HOUR = 3_600
WEEK = 7 * DAY
#: "Never happens" time: far beyond any as_of, small enough not to overflow when shifted.
NEVER = np.int64(np.iinfo(np.int64).max // 4)

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
