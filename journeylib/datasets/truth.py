"""Planted truths: what the simulation planted, and what it realised in this particular world (``truth.json``).

:class:`TruthTally` accumulates counts over the simulated chunks
(:meth:`journeylib.datasets.simulation.Chunk.tally_truths`);
:func:`truth_summary` turns them, with the parameters, into the content of
``truth.json``.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import numpy as np

from journeylib.datasets import text
from journeylib.datasets.parameters import (
    ARCHETYPES,
    ARMS,
    DEVICES,
    EXPERIMENT,
    FEATURES,
    GENERATOR_VERSION,
    SEGMENTS,
    WorldParameters,
)
from journeylib.datasets.timeline import Calendar, iso_time

__all__ = ["TruthTally", "truth_summary"]


class TruthTally:
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


def truth_summary(
    *, p: WorldParameters, cal: Calendar, tally: TruthTally, seed: int, n: int, start: str, months: int,
    chunk: int, fmt: str, files: dict[str, list[str]], truth_files: dict[str, str], counts: dict[str, int],
    assignments: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Return the content of ``truth.json``: the run, the parameters, and each planted effect with its realised values.

    Parameters
    ----------
    p : WorldParameters
        The parameters the world was drawn from.
    cal : Calendar
        The world's dates.
    tally : TruthTally
        Counts accumulated over every chunk.
    seed, n, start, months, chunk, fmt
        The arguments of :func:`journeylib.datasets.world.synthesize`.
    files, truth_files : dict
        Paths (relative to the world's folder) of the canonical tables and of
        the latent truth tables.
    counts : dict of str to int
        Rows written per canonical table.
    assignments : dict, optional
        The experiment's ``assignments`` file: ``file``, ``rows`` and the
        per-arm counts on the assignment clock
        (:meth:`journeylib.datasets.experiments.ExperimentTally.realised`);
        recorded as ``planted.experiment.assignments``.

    Returns
    -------
    dict
        ``generator``, ``generator_version``, ``seed``, ``n_customers``,
        ``start``, ``months``, ``as_of``, ``chunk_customers``,
        ``file_format``, ``files``, ``truth_files``, ``row_counts``,
        ``customers_by_status``, ``world`` (the parameters) and ``planted``.
    """
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
                f"Trial customers signing up between {iso_time(cal.experiment_from)} and {iso_time(cal.experiment_to)} are "
                "randomised into three equal arms; email_variant_b raises the probability of completing setup within "
                f"{p.trial_days} days by {p.experiment_uplift * 100:g} points, email_variant_a has no effect."
            ),
            "parameters": {
                "experiment": EXPERIMENT,
                "arms": list(ARMS),
                "allocation": [1 / 3, 1 / 3, 1 / 3],
                "enrolment_from": iso_time(cal.experiment_from),
                "enrolment_to": iso_time(cal.experiment_to),
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
                f"Customers signing up from {iso_time(cal.drift_from)} on use the mobile app far more, use Gantt charts "
                "less and log in less often."
            ),
            "parameters": {
                "cohort_boundary": iso_time(cal.drift_from),
                "device_shares_before": dict(zip(DEVICES, p.device_shares, strict=True)),
                "device_shares_after": dict(zip(DEVICES, p.drift_device_shares, strict=True)),
                "gantt_weight_multiplier": p.drift_gantt_multiplier,
                "sessions_multiplier": p.drift_sessions_multiplier,
            },
            "realised": cohorts,
        },
    }
    if assignments is not None:
        planted["experiment"]["assignments"] = {
            "description": (
                "The arms as rows of the canonical assignments table (assigned_at = signup_at + 120 s, the time of "
                f"the experiment_assigned event); 'arms' counts, per arm, the customers assigned at least {p.trial_days} "
                f"days before as_of and those of them whose setup_completed falls within {p.trial_days} days of "
                "assigned_at (setup before assignment counted apart)."
            ),
            **assignments,
        }
    return {
        "generator": "journeylib.datasets",
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "n_customers": n,
        "start": start,
        "months": months,
        "as_of": iso_time(cal.as_of),
        "chunk_customers": chunk,
        "file_format": fmt,
        "files": files,
        "truth_files": truth_files,
        "row_counts": counts,
        "customers_by_status": dict(tl.customers_by_status),
        "world": params,
        "planted": planted,
    }


