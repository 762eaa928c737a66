"""A second synthetic world that shares none of the demo world's assumptions: an HR and payroll SaaS.

The demo world (:mod:`journeylib.datasets.world`) is a project-management
product with a 14-day trial, events from sources named ``product``, ``crm``,
``support`` and ``email``, strictly ordered stages, conversion at the end of
the trial, churn inside a 150-day horizon and planted effects whose windows
equal journeylib's defaults (7 and 14 days). Analyses tuned on it can pass on
it alone. :func:`synthesize_second_world` writes a world that differs in every
one of those:

* **Product and trial.** Payroll software with a 21-day trial; the plan is
  chosen at sign-up (it is never ``trial``); ``trial_ends_at``, ``contract``,
  ``payment_method``, ``country`` and ``employees`` are customer properties.
* **Events and sources.** ``company_created``, ``employee_added``,
  ``payroll_run``, ``report_exported``, ``document_uploaded``,
  ``integration_connected``, ``login`` from ``web``; ``app_opened``,
  ``shift_clocked``, ``time_off_requested`` from ``mobile``;
  ``plan_purchased``, ``subscription_cancelled`` from ``backend``; e-mail
  events from ``customerio`` (and the ``messages`` table); ticket events from
  ``helpdesk`` (and the ``tickets`` table). No source is named ``product``.
* **Stage order.** Paying does not wait for set-up: a company can buy a plan
  on day 1 and add its team later, or never. The journey definition
  (``second_world.yaml``, copied into the world as ``journey.yaml``) marks
  that stage ``order: any``.
* **Timings.** Conversions happen at any time of the trial (not at its end);
  churn happens 30 to 360 days after conversion, so a fixed 150-day horizon
  after signup misses most churns; everything is censored at the export date
  ``as_of`` (trials still running, churns not yet happened).
* **Planted effects** with windows and thresholds off journeylib's defaults:
  *fewer than 3 employee_added within 5 days* lowers conversion (true RR
  2.5 for 3 or more), *no payroll_run within 10 days* raises 12-month churn
  (true RR 2.2), and the ``monthly`` contract raises churn (true RR 1.8 vs
  ``annual``). ``plan``, ``segment``, ``payment_method`` and ``country`` have
  no effect, nor does any other behaviour.
* **Behaviour groups.** Four personas (``payroll_admin``, ``people_ops``,
  ``mobile_workforce``, ``light_touch``) with distinct event mixes, drawn
  independently of the planted flags and the outcomes, so a behavioural
  segmentation has something to recover and a null behaviour is null
  marginally, not only within personas.

The truths hold by construction (they are the probabilities drawn from);
``truth.json`` records them with what this particular world realised, computed
from exactly the rows written: outcome counts (converted, trial expired,
trials still running, churned, still paying), each stage's true reach
(computed from the journey definition file by an interpreter independent of
:mod:`journeylib.journey.stages`), the planted effects with their realised
2×2 counts, and the persona of every customer.

The whole world is simulated at once, vectorised across customers (no Python
loop over customers or events); 5,000 customers take a few seconds.
"""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import yaml

from journeylib.datasets.files import FILE_FORMATS, TRUTH_FILE, arrow_schema, write_table
from journeylib.store.schema import CUSTOMERS, EVENTS, MESSAGES, TICKETS, USERS

__all__ = [
    "SECOND_WORLD_DEFINITION",
    "SECOND_WORLD_VERSION",
    "SecondWorldParameters",
    "SecondWorldResult",
    "synthesize_second_world",
]

#: Bumped whenever the same arguments would produce different files.
SECOND_WORLD_VERSION = "1.0.0"

#: The journey definition of the second world (package data).
SECOND_WORLD_DEFINITION: Path = Path(__file__).with_name("second_world.yaml")

_DAY = 86_400
_EPS = 1e-4  # days (~9 s): keeps planted events strictly inside their half-open windows after rounding

PERSONAS: tuple[str, ...] = ("payroll_admin", "people_ops", "mobile_workforce", "light_touch")
SEGMENTS: tuple[str, ...] = ("Startup", "Scaleup", "Corporate")
PLANS: tuple[str, ...] = ("essentials", "plus", "premium")
CONTRACTS: tuple[str, ...] = ("monthly", "annual")
PAYMENT_METHODS: tuple[str, ...] = ("card", "invoice", "sepa_debit")
COUNTRIES: tuple[str, ...] = ("de", "fr", "nl", "es", "pl")
PRICE_PER_EMPLOYEE: tuple[float, ...] = (4.0, 7.0, 11.0)

#: Source of every event name.
EVENT_SOURCE: dict[str, str] = {
    "company_created": "web",
    "employee_added": "web",
    "payroll_run": "backend",
    "report_exported": "web",
    "document_uploaded": "web",
    "integration_connected": "web",
    "login": "web",
    "app_opened": "mobile",
    "shift_clocked": "mobile",
    "time_off_requested": "mobile",
    "plan_purchased": "backend",
    "subscription_cancelled": "backend",
    "email_delivered": "customerio",
    "email_bounced": "customerio",
    "email_opened": "customerio",
    "email_clicked": "customerio",
    "ticket_opened": "helpdesk",
    "ticket_solved": "helpdesk",
}

#: Per-day rate of each persona-driven event during the trial, by persona (order of :data:`PERSONAS`).
#: ``employee_added`` follows this rate only from the end of the planted conversion window on.
ACTIVITY_RATES: dict[str, tuple[float, ...]] = {
    "login": (1.2, 1.0, 0.25, 0.2),
    "report_exported": (0.6, 0.05, 0.03, 0.02),
    "document_uploaded": (0.05, 0.7, 0.05, 0.02),
    "integration_connected": (0.12, 0.02, 0.02, 0.01),
    "app_opened": (0.1, 0.3, 2.0, 0.08),
    "shift_clocked": (0.02, 0.1, 1.5, 0.02),
    "time_off_requested": (0.02, 0.3, 0.4, 0.02),
    "employee_added": (0.15, 1.0, 0.1, 0.05),
}

_INTEGRATIONS = ("datev", "quickbooks", "xero", "slack", "google_workspace", "personio_import")
_REPORT_FORMATS = ("pdf", "csv", "xlsx")
_CANCEL_REASONS = ("price", "switched_provider", "company_closed", "missing_features", "too_complex")
_TRIAL_CAMPAIGNS: tuple[tuple[str, float], ...] = (
    ("welcome", 0.01), ("getting_started", 2.0), ("payroll_reminder", 8.0), ("trial_ending", 18.0),
)
_DIGEST = "monthly_digest"
_USER_ROLES = ("admin", "hr_manager", "accountant", "viewer")
_FIRST_NAMES = ("anna", "ben", "clara", "david", "eva", "felix", "greta", "hugo", "ines", "jonas", "lena", "marc")
_LAST_NAMES = ("schmidt", "dubois", "jansen", "garcia", "nowak", "muller", "martin", "visser", "lopez", "kowalski")
_COMPANY_A = ("Nordic", "Blue", "Bright", "Urban", "Green", "Alpine", "Coastal", "Silver", "Rapid", "Golden")
_COMPANY_B = ("Bakery", "Logistics", "Studio", "Clinic", "Builders", "Foods", "Consulting", "Retail", "Labs", "Garage")

#: Ticket topics with a subject and a sentence per tone (neutral, frustrated, happy).
_TICKET_TEXT: dict[str, tuple[str, tuple[str, str, str]]] = {
    "payroll": ("Question about a payroll run", (
        "How do I correct a payslip after the payroll run?",
        "The payroll run failed again and my staff are waiting to be paid. This is unacceptable.",
        "The payroll run worked perfectly, I only want to check the tax settings.",
    )),
    "employees": ("Adding employees", (
        "Can I import employees from a spreadsheet?",
        "The employee import keeps rejecting my file and nobody explains why.",
        "Adding the team was easy, thanks! One question about contract types.",
    )),
    "integrations": ("Accounting integration", (
        "Which accounts does the accounting export use?",
        "The integration disconnected twice this week and the export is wrong.",
        "The integration is great, could it also sync cost centres?",
    )),
    "billing": ("Invoice and plan", (
        "Please send the invoice with our VAT number.",
        "We were charged twice this month. Please refund immediately.",
        "Upgrading was smooth, please add our PO number to the invoice.",
    )),
    "mobile_app": ("Mobile app", (
        "Does the mobile app work offline for clocking shifts?",
        "The mobile app crashes whenever my staff clock in. Terrible.",
        "My staff love the mobile app, can managers approve time off there too?",
    )),
}
_TONES = ("neutral", "frustrated", "happy")


@dataclass(frozen=True)
class SecondWorldParameters:
    """Every share, rate and planted effect of the second world (recorded in ``truth.json``).

    Tuples indexed by persona follow :data:`PERSONAS`; by segment,
    :data:`SEGMENTS`; by plan, :data:`PLANS`; by contract, :data:`CONTRACTS`;
    by payment method, :data:`PAYMENT_METHODS`; by country, :data:`COUNTRIES`.
    """

    trial_days: int = 21
    persona_shares: tuple[float, ...] = (0.28, 0.26, 0.22, 0.24)
    segment_shares: tuple[float, ...] = (0.55, 0.33, 0.12)
    plan_shares: tuple[float, ...] = (0.50, 0.35, 0.15)
    contract_shares: tuple[float, ...] = (0.55, 0.45)
    payment_method_shares: tuple[float, ...] = (0.60, 0.25, 0.15)
    country_shares: tuple[float, ...] = (0.35, 0.20, 0.15, 0.15, 0.15)
    employees_median_by_segment: tuple[float, ...] = (8.0, 45.0, 220.0)
    extra_users_mean_by_segment: tuple[float, ...] = (0.4, 1.2, 2.5)
    # persona-driven activity
    activity_sigma: float = 0.3
    paying_rate_multiplier: float = 0.15
    company_created_median_days: float = 0.05
    # planted conversion behaviour: at least `conversion_threshold` employee_added within `conversion_window_days`
    conversion_window_days: int = 5
    conversion_threshold: int = 3
    conversion_flag_prob: float = 0.35
    conversion_prob_flag: float = 0.45
    conversion_prob_no_flag: float = 0.18
    early_payer_share: float = 0.10
    late_payer_share: float = 0.60
    # planted churn behaviour: no payroll_run within `churn_window_days`; planted churn attribute: monthly contract
    churn_window_days: int = 10
    payroll_early_prob: float = 0.60
    late_first_payroll_mean_days: float = 12.0
    churn_prob_12m_reference: float = 0.12
    churn_rr_no_early_payroll: float = 2.2
    churn_rr_monthly_contract: float = 1.8
    churn_min_days_after_conversion: float = 30.0
    churn_max_days_after_conversion: float = 360.0
    # e-mail and support
    open_prob_by_persona: tuple[float, ...] = (0.50, 0.45, 0.35, 0.25)
    click_prob_given_open: float = 0.30
    bounce_prob: float = 0.015
    ticket_rate_trial_by_persona: tuple[float, ...] = (0.04, 0.035, 0.03, 0.015)
    ticket_rate_paying: float = 0.006
    ticket_solve_mean_days: float = 1.5


PARAMS = SecondWorldParameters()


#: What each event source of the second world is: the e-mail tool and the help desk are not customer activity.
SOURCE_KINDS: dict[str, str] = {"web": "product", "mobile": "product", "backend": "product", "customerio": "email", "helpdesk": "support"}


@dataclass(frozen=True)
class SecondWorldResult:
    """What :func:`synthesize_second_world` wrote.

    Attributes
    ----------
    out_dir : pathlib.Path
        The world's folder (ingest it with ``journeylib ingest --folder``).
    files : dict of str to list of pathlib.Path
        The files of each canonical table (``customers``, ``users``,
        ``events``, ``tickets``, ``messages``).
    counts : dict of str to int
        Rows written per canonical table.
    truth_path : pathlib.Path
        ``truth.json``.
    truth : dict
        Its content (see :func:`synthesize_second_world`).
    definition_path : pathlib.Path
        The journey definition copied into the world (``journey.yaml``).
    as_of : pandas.Timestamp
        The export date (UTC); nothing at or after it is written.
    source_kinds : dict of str to str
        The kind of each event source (:data:`SOURCE_KINDS`), to declare at
        ingest (``--source-kind``): unknown sources default to product activity.
    """

    out_dir: Path
    files: dict[str, list[Path]]
    counts: dict[str, int]
    truth_path: Path
    truth: dict[str, Any]
    definition_path: Path
    as_of: pd.Timestamp
    source_kinds: dict[str, str] = field(default_factory=lambda: dict(SOURCE_KINDS))


# -- small vectorised helpers ----------------------------------------------------------------------
def _poisson_times(rng: np.random.Generator, rate: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Draw a constant-rate Poisson process on ``[lo, hi)`` (days) per customer: (customer index, time)."""
    length = np.clip(hi - lo, 0.0, None)
    counts = rng.poisson(rate * length)
    idx = np.repeat(np.arange(rate.size), counts)
    return idx, lo[idx] + rng.random(idx.size) * length[idx]


def _periodic_times(
    rng: np.random.Generator, first: np.ndarray, cadence: np.ndarray, end: np.ndarray, jitter_days: float
) -> tuple[np.ndarray, np.ndarray]:
    """Repeat an event at ``first``, ``first + cadence``, ... before ``end``: (customer index, time)."""
    ok = np.isfinite(first) & (first < end)
    span = np.where(ok, end - np.where(ok, first, 0.0), 0.0)
    runs = np.where(ok, 1 + np.floor(span / cadence).astype(np.int64), 0)
    idx = np.repeat(np.arange(first.size), runs)
    starts = np.repeat(np.cumsum(runs) - runs, runs)
    j = np.arange(idx.size) - starts
    t = first[idx] + j * cadence[idx] + np.where(j > 0, rng.normal(0.0, jitter_days, idx.size), 0.0)
    keep = t < end[idx]
    return idx[keep], t[keep]


def _choice(rng: np.random.Generator, shares: tuple[float, ...], n: int) -> np.ndarray:
    p = np.asarray(shares, dtype=float)
    return rng.choice(p.size, size=n, p=p / p.sum())


def _json_values(key: str, values: tuple[str, ...]) -> np.ndarray:
    return np.array([json.dumps({key: v}) for v in values], dtype=object)


def _ids(prefix: str, numbers: np.ndarray, width: int) -> np.ndarray:
    return np.array([f"{prefix}{i:0{width}d}" for i in numbers.tolist()], dtype=object)


def _ts_array(seconds: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    """UTC microsecond timestamps from whole seconds; rows where *valid* is False are null."""
    mask = None if valid is None else ~np.asarray(valid, dtype=bool)
    micros = pa.array(np.asarray(seconds, dtype=np.int64) * 1_000_000, type=pa.int64(), mask=mask)
    return micros.cast(pa.timestamp("us", tz="UTC"))


def _codes(values: np.ndarray) -> np.ndarray:
    """Sortable integer codes of text values (in text order)."""
    return np.unique(values.astype(str), return_inverse=True)[1]


def _iso(seconds: np.ndarray) -> np.ndarray:
    stamps = pd.to_datetime(np.asarray(seconds, dtype=np.int64), unit="s", utc=True)
    return np.asarray(stamps.strftime("%Y-%m-%dT%H:%M:%SZ"), dtype=object)


class _Parts:
    """Event rows accumulated per kind: customer index, time in days since signup, name, properties, user."""

    def __init__(self) -> None:
        self.cust: list[np.ndarray] = []
        self.t: list[np.ndarray] = []
        self.event: list[np.ndarray] = []
        self.props: list[np.ndarray] = []
        self.user: list[np.ndarray] = []

    def add(self, cust: np.ndarray, t: np.ndarray, event: str, props: np.ndarray | str = "{}", user: np.ndarray | None = None) -> None:
        n = cust.size
        self.cust.append(cust.astype(np.int64))
        self.t.append(np.asarray(t, dtype=float))
        self.event.append(np.full(n, event, dtype=object))
        self.props.append(np.full(n, props, dtype=object) if isinstance(props, str) else np.asarray(props, dtype=object))
        self.user.append(np.full(n, -1, dtype=np.int64) if user is None else user.astype(np.int64))


# -- the simulation ---------------------------------------------------------------------------------
def _validate(n_customers: int, seed: int, months: int, file_format: str) -> None:
    if isinstance(n_customers, bool) or not isinstance(n_customers, int) or n_customers < 1:
        msg = f"synthesize_second_world(n_customers=...) must be a positive integer; got {n_customers!r}"
        raise ValueError(msg)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        msg = f"synthesize_second_world(seed=...) must be a non-negative integer; got {seed!r}"
        raise ValueError(msg)
    if isinstance(months, bool) or not isinstance(months, int) or months < 2:
        msg = f"synthesize_second_world(months=...) must be an integer of at least 2 (months of sign-ups); got {months!r}"
        raise ValueError(msg)
    if file_format not in FILE_FORMATS:
        msg = f"synthesize_second_world(file_format=...) must be one of {list(FILE_FORMATS)}; got {file_format!r}"
        raise ValueError(msg)


def synthesize_second_world(
    out_dir: str | Path,
    *,
    n_customers: int = 2000,
    seed: int = 0,
    start: str = "2024-02-05",
    months: int = 18,
    file_format: str = "parquet",
) -> SecondWorldResult:
    """Simulate the second synthetic world (an HR and payroll SaaS) and write it with its truth.

    Parameters
    ----------
    out_dir : str or pathlib.Path
        Folder to write into (created if needed); the files of an earlier
        world there are replaced.
    n_customers : int, default 2000
        Number of companies (all start as trials).
    seed : int, default 0
        Seed; the same arguments give identical files.
    start : str, default "2024-02-05"
        First sign-up day (UTC).
    months : int, default 18
        Months from ``start`` to the export date ``as_of``; sign-ups are
        spread over them, up to two days before ``as_of``.
    file_format : {"parquet", "csv"}, default "parquet"
        File format of the tables.

    Returns
    -------
    SecondWorldResult
        ``out_dir``, ``files``, ``counts``, ``truth_path``, ``truth``,
        ``definition_path`` and ``as_of``. The folder holds the canonical
        tables (``journeylib ingest --folder`` reads them):

        ``customers.<fmt>``
            ``customer_id``, ``name``, ``domain``, ``segment`` (Startup,
            Scaleup, Corporate), ``plan`` (essentials, plus, premium; chosen
            at sign-up), ``signup_at``, ``converted_at``, ``churned_at``,
            ``renewal_at``, ``mrr``, ``properties`` (``trial_ends_at`` as
            ISO-8601 text, ``contract`` (monthly, annual),
            ``payment_method`` (card, invoice, sepa_debit), ``country``,
            ``employees``), ``updated_at`` (empty).
        ``users.<fmt>``
            ``user_id``, ``customer_id``, ``email``, ``role``,
            ``created_at``, ``properties``, ``updated_at`` (empty).
        ``events/part-00000.<fmt>``
            ``event_id``, ``customer_id``, ``user_id``, ``timestamp``,
            ``event``, ``source`` (web, mobile, backend, customerio,
            helpdesk), ``properties``.
        ``tickets.<fmt>``
            ``ticket_id``, ``customer_id``, ``user_id``, ``created_at``,
            ``solved_at``, ``channel``, ``subject``, ``body``, ``status``,
            ``priority``, ``satisfaction``, ``properties`` (``topic``),
            ``updated_at`` (empty).
        ``messages.<fmt>``
            ``message_id``, ``customer_id``, ``user_id``, ``timestamp``,
            ``campaign``, ``status``, ``properties`` (``send_id``,
            ``provider``).

        plus ``journey.yaml`` (the journey definition) and ``truth.json``:
        ``generator``, ``generator_version``, ``seed``, ``n_customers``,
        ``start``, ``months``, ``as_of``, ``last_event_at``, ``trial_days``,
        ``file_format``, ``files``, ``row_counts``, ``events_by_source``,
        ``events_by_name``, ``world`` (the parameters), ``differences_from_demo``,
        ``outcomes`` (realised counts: ``converted``, ``trial_expired``,
        ``trial_running``, ``churned``, ``paying_active``, ...),
        ``funnel`` (per stage: ``stage``, ``order``, ``rule_holds``,
        ``reached``, ``eligible``, ``dropped``, ``censored``,
        ``reached_if_ordered``), ``planted`` (effects with their true RR,
        window, threshold and realised 2×2 counts), ``null_behaviours``,
        ``null_attributes``, ``persona_counts`` and ``personas``
        (customer id → persona).

    Raises
    ------
    ValueError
        If an argument is out of range or *file_format* is unknown.

    Examples
    --------
    >>> import tempfile
    >>> res = synthesize_second_world(tempfile.mkdtemp(), n_customers=60, seed=3)
    >>> res.counts["customers"], sorted(res.truth["events_by_source"])[:2]
    (60, ['backend', 'customerio'])
    """
    _validate(n_customers, seed, months, file_format)
    p = PARAMS
    n = n_customers
    rng = np.random.default_rng([seed, 2])
    out = Path(out_dir)
    (out / "events").mkdir(parents=True, exist_ok=True)
    for old in sorted((out / "events").glob("part-*.*")):
        old.unlink()
    for name in ("customers", "users", "tickets", "messages"):
        for ext in FILE_FORMATS:
            (out / f"{name}.{ext}").unlink(missing_ok=True)

    start_ts = pd.Timestamp(start, tz="UTC").normalize()
    as_of_ts = start_ts + pd.DateOffset(months=months)
    start_s, as_of_s = int(start_ts.timestamp()), int(as_of_ts.timestamp())
    span_days = (as_of_s - start_s) / _DAY - 2.0

    # -- customers: sign-up, attributes, latent flags and outcomes --------------------------------
    signup_s = np.sort(
        start_s + np.floor(rng.random(n) * span_days).astype(np.int64) * _DAY
        + np.round((7.0 + 11.0 * rng.random(n)) * 3600).astype(np.int64)
    )
    horizon = (as_of_s - signup_s) / _DAY  # days from signup to as_of
    persona = _choice(rng, p.persona_shares, n)
    segment = _choice(rng, p.segment_shares, n)
    plan = _choice(rng, p.plan_shares, n)
    contract = _choice(rng, p.contract_shares, n)
    payment = _choice(rng, p.payment_method_shares, n)
    country = _choice(rng, p.country_shares, n)
    employees = np.maximum(
        2, np.round(np.asarray(p.employees_median_by_segment)[segment] * rng.lognormal(0.0, 0.5, n))
    ).astype(np.int64)
    activity = rng.lognormal(0.0, p.activity_sigma, n)
    company_t = np.minimum(rng.lognormal(math.log(p.company_created_median_days), 1.2, n), 2.5)

    c5 = rng.random(n) < p.conversion_flag_prob  # planted: >= threshold employee_added within the window
    p10 = rng.random(n) < p.payroll_early_prob  # planted: payroll_run within the churn window
    converts = rng.random(n) < np.where(c5, p.conversion_prob_flag, p.conversion_prob_no_flag)
    when = rng.random(n)
    trial = float(p.trial_days)
    cw = float(p.conversion_window_days)
    conv_d = np.where(
        when < p.early_payer_share, rng.uniform(1.0, cw - _EPS, n),
        np.where(when < 1.0 - p.late_payer_share, rng.uniform(cw, 14.0, n), rng.uniform(14.0, trial - _EPS, n)),
    )
    churn_p = (
        p.churn_prob_12m_reference
        * np.where(p10, 1.0, p.churn_rr_no_early_payroll)
        * np.where(contract == 0, p.churn_rr_monthly_contract, 1.0)
    )
    churns = converts & (rng.random(n) < churn_p)
    churn_d = conv_d + rng.uniform(p.churn_min_days_after_conversion, p.churn_max_days_after_conversion, n)
    conv_s = signup_s + np.round(conv_d * _DAY).astype(np.int64)
    churn_s = signup_s + np.round(churn_d * _DAY).astype(np.int64)
    converted = converts & (conv_s < as_of_s)
    churned = churns & (churn_s < as_of_s)
    access_end = np.where(converts, np.where(churns, churn_d, np.inf), trial)  # days since signup
    end = np.minimum(access_end, horizon)

    # -- users ---------------------------------------------------------------------------------
    n_users = 1 + np.minimum(rng.poisson(np.asarray(p.extra_users_mean_by_segment)[segment]), 7)
    u_cust = np.repeat(np.arange(n), n_users)
    u_off = np.cumsum(n_users) - n_users
    u_j = np.arange(u_cust.size) - u_off[u_cust]
    u_created = np.where(u_j == 0, 0.0, rng.uniform(0.05, 14.0, u_cust.size))

    def pick_user(cust: np.ndarray, t: np.ndarray) -> np.ndarray:
        j = np.floor(rng.random(cust.size) * n_users[cust]).astype(np.int64)
        flat = u_off[cust] + j
        return np.where(u_created[flat] <= t, flat, u_off[cust])

    parts = _Parts()
    everyone = np.arange(n)
    # company and the planted early employee block
    parts.add(everyone, company_t, "company_created", user=u_off)
    k_block = np.where(c5, p.conversion_threshold + rng.poisson(1.5, n), _choice(rng, (0.45, 0.35, 0.20), n))
    b_cust = np.repeat(everyone, k_block)
    b_t = rng.uniform(company_t[b_cust] + 0.01, cw - _EPS)
    parts.add(b_cust, b_t, "employee_added", user=pick_user(b_cust, b_t))
    # persona-driven activity: trial rates until the trial ends, a fraction of them while paying
    rates = {e: np.asarray(r)[persona] * activity for e, r in ACTIVITY_RATES.items()}
    for event, rate in rates.items():
        lo = np.full(n, cw) if event == "employee_added" else np.zeros(n)
        for phase_lo, phase_hi, mult in ((lo, np.minimum(end, trial), 1.0), (np.full(n, trial), end, p.paying_rate_multiplier)):
            cust, t = _poisson_times(rng, rate * mult, np.maximum(phase_lo, lo), phase_hi)
            props: np.ndarray | str = "{}"
            if event == "integration_connected":
                props = _json_values("integration", _INTEGRATIONS)[rng.integers(0, len(_INTEGRATIONS), cust.size)]
            elif event == "report_exported":
                props = _json_values("format", _REPORT_FORMATS)[rng.integers(0, len(_REPORT_FORMATS), cust.size)]
            user = None if EVENT_SOURCE[event] == "backend" else pick_user(cust, t)
            parts.add(cust, t, event, props, user)
    # payroll: the planted first run, then a fortnightly (payroll admins) or monthly cadence
    chw = float(p.churn_window_days)
    first = np.where(
        p10, rng.uniform(company_t + 0.2, chw - _EPS), chw + 0.01 + rng.exponential(p.late_first_payroll_mean_days, n)
    )
    cadence = np.where(persona == 0, 14.0, 30.4)
    cust, t = _periodic_times(rng, first, cadence, end, 0.5)
    paid = np.maximum(1, np.round(employees[cust] * rng.uniform(0.8, 1.0, cust.size))).astype(np.int64)
    parts.add(cust, t, "payroll_run", np.array([json.dumps({"employees_paid": int(x)}) for x in paid.tolist()], dtype=object))
    # billing
    buy = np.flatnonzero(converts)
    plan_props = np.array(
        [json.dumps({"plan": PLANS[a], "contract": CONTRACTS[b]}) for a, b in zip(plan[buy].tolist(), contract[buy].tolist(), strict=True)],
        dtype=object,
    )
    parts.add(buy, conv_d[buy], "plan_purchased", plan_props)
    gone = np.flatnonzero(churns)
    reasons = _json_values("reason", _CANCEL_REASONS)[rng.integers(0, len(_CANCEL_REASONS), gone.size)]
    parts.add(gone, churn_d[gone], "subscription_cancelled", reasons)

    # -- e-mail (customerio): trial campaigns, then a monthly digest while paying -------------------
    s_cust, s_t, s_camp = [], [], []
    for camp, offset in _TRIAL_CAMPAIGNS:
        # trial_ending goes only to trials that have not paid yet
        who = everyone if camp != "trial_ending" else np.flatnonzero(~converts | (conv_d > offset))
        s_cust.append(who)
        s_t.append(np.full(who.size, offset) + rng.uniform(0.0, 0.1, who.size))
        s_camp.append(np.full(who.size, camp, dtype=object))
    d_first = np.where(converts, conv_d + 30.0, np.inf)
    cust, t = _periodic_times(rng, d_first, np.full(n, 30.0), end, 0.2)
    s_cust.append(cust)
    s_t.append(t)
    s_camp.append(np.full(cust.size, _DIGEST, dtype=object))
    s_cust_a, s_t_a, s_camp_a = np.concatenate(s_cust), np.concatenate(s_t), np.concatenate(s_camp)
    live = s_t_a < np.minimum(access_end, horizon)[s_cust_a]
    s_cust_a, s_t_a, s_camp_a = s_cust_a[live], s_t_a[live], s_camp_a[live]
    n_sends = s_cust_a.size
    bounced = rng.random(n_sends) < p.bounce_prob
    opened = ~bounced & (rng.random(n_sends) < np.asarray(p.open_prob_by_persona)[persona[s_cust_a]])
    clicked = opened & (rng.random(n_sends) < p.click_prob_given_open)
    t_open = s_t_a + rng.exponential(0.2, n_sends)
    t_click = t_open + rng.exponential(0.02, n_sends)
    m_cust = np.concatenate([s_cust_a, s_cust_a[opened], s_cust_a[clicked]])
    m_t = np.concatenate([s_t_a, t_open[opened], t_click[clicked]])
    m_status = np.concatenate([
        np.where(bounced, "bounced", "delivered").astype(object),
        np.full(int(opened.sum()), "opened", dtype=object), np.full(int(clicked.sum()), "clicked", dtype=object),
    ])
    m_send = np.concatenate([np.arange(n_sends), np.flatnonzero(opened), np.flatnonzero(clicked)])
    m_camp = np.concatenate([s_camp_a, s_camp_a[opened], s_camp_a[clicked]])
    m_s = signup_s[m_cust] + np.round(m_t * _DAY).astype(np.int64)
    keep = m_s < as_of_s
    m_cust, m_s, m_status, m_send, m_camp, m_t = m_cust[keep], m_s[keep], m_status[keep], m_send[keep], m_camp[keep], m_t[keep]
    for status in ("delivered", "bounced", "opened", "clicked"):
        sel = m_status == status
        props = np.array([json.dumps({"campaign": c}) for c in m_camp[sel].tolist()], dtype=object)
        parts.add(m_cust[sel], m_t[sel], f"email_{status}", props, u_off[m_cust[sel]])

    # -- support tickets (helpdesk) -----------------------------------------------------------------
    tr = np.asarray(p.ticket_rate_trial_by_persona)[persona]
    t1c, t1t = _poisson_times(rng, tr, np.zeros(n), np.minimum(end, trial))
    t2c, t2t = _poisson_times(rng, np.full(n, p.ticket_rate_paying), np.full(n, trial), end)
    k_cust, k_t = np.concatenate([t1c, t2c]), np.concatenate([t1t, t2t])
    k_order = np.lexsort((k_t, k_cust))
    k_cust, k_t = k_cust[k_order], k_t[k_order]
    n_tk = k_cust.size
    topics = tuple(_TICKET_TEXT)
    k_topic = rng.integers(0, len(topics), n_tk)
    k_tone = _choice(rng, (0.5, 0.3, 0.2), n_tk)
    k_user = pick_user(k_cust, k_t)
    k_created = signup_s[k_cust] + np.round(k_t * _DAY).astype(np.int64)
    k_solved = k_created + np.round(rng.exponential(p.ticket_solve_mean_days, n_tk) * _DAY).astype(np.int64) + 600
    k_is_solved = k_solved < as_of_s
    k_rated = k_is_solved & (rng.random(n_tk) < 0.4)
    k_sat = np.where(k_tone == 1, rng.choice([0.0, 0.25, 0.5], n_tk), np.where(k_tone == 2, 1.0, rng.choice([0.5, 0.75, 1.0], n_tk)))
    width = max(6, len(str(n)))
    tk_ids = _ids("tk", np.arange(n_tk), width + 2)
    parts.add(k_cust, k_t, "ticket_opened", np.array([json.dumps({"ticket_id": x}) for x in tk_ids.tolist()], dtype=object), k_user)
    solved_t = (k_solved - signup_s[k_cust]) / _DAY
    parts.add(
        k_cust[k_is_solved], solved_t[k_is_solved], "ticket_solved",
        np.array([json.dumps({"ticket_id": x}) for x in tk_ids[k_is_solved].tolist()], dtype=object),
    )

    # -- assemble and censor events ---------------------------------------------------------------
    e_cust = np.concatenate(parts.cust)
    e_t = np.concatenate(parts.t)
    e_name = np.concatenate(parts.event)
    e_props = np.concatenate(parts.props)
    e_user = np.concatenate(parts.user)
    e_s = signup_s[e_cust] + np.round(e_t * _DAY).astype(np.int64)
    # opens, clicks and solved tickets may follow the end of access; a cancellation is at its end
    after_access_ok = np.isin(e_name, ["email_opened", "email_clicked", "ticket_solved", "subscription_cancelled"])
    live = (e_t >= 0) & (e_s < as_of_s) & (after_access_ok | (e_t < access_end[e_cust]))
    e_cust, e_s, e_name, e_props, e_user = e_cust[live], e_s[live], e_name[live], e_props[live], e_user[live]
    e_source = np.array([EVENT_SOURCE[x] for x in e_name.tolist()], dtype=object)
    order = np.lexsort((_codes(e_name), _codes(e_source), e_s, e_cust))
    e_cust, e_s, e_name, e_props, e_user, e_source = (a[order] for a in (e_cust, e_s, e_name, e_props, e_user, e_source))

    # -- tables -------------------------------------------------------------------------------------
    cust_ids = _ids("hr", np.arange(n), width)
    user_ids = np.array([f"{cust_ids[c]}-u{j}" for c, j in zip(u_cust.tolist(), u_j.tolist(), strict=True)], dtype=object)
    names_a = rng.integers(0, len(_COMPANY_A), n)
    names_b = rng.integers(0, len(_COMPANY_B), n)
    company = [f"{_COMPANY_A[a]} {_COMPANY_B[b]} {i + 1}" for i, (a, b) in enumerate(zip(names_a.tolist(), names_b.tolist(), strict=True))]
    domains = [f"{c.lower().replace(' ', '-')}.example" for c in company]
    trial_end_s = signup_s + int(trial * _DAY)
    period = np.where(contract == 0, 30.4375, 365.25) * _DAY
    last_renewal = conv_s + np.floor((np.where(churned, churn_s, as_of_s) - conv_s) / period) * period
    next_renewal = last_renewal + period
    renewal_s = np.where(churned, last_renewal, next_renewal).astype(np.int64)
    paying_now = converted & ~churned
    mrr = np.where(paying_now, np.asarray(PRICE_PER_EMPLOYEE)[plan] * employees, 0.0)
    trial_end_iso = _iso(trial_end_s)
    cust_props = [
        json.dumps({
            "trial_ends_at": te, "contract": CONTRACTS[c], "payment_method": PAYMENT_METHODS[m],
            "country": COUNTRIES[k], "employees": int(e),
        })
        for te, c, m, k, e in zip(trial_end_iso.tolist(), contract.tolist(), payment.tolist(), country.tolist(), employees.tolist(), strict=True)
    ]
    customers = pa.table({
        "customer_id": pa.array(cust_ids, pa.string()),
        "name": pa.array(company, pa.string()),
        "domain": pa.array(domains, pa.string()),
        "segment": pa.array(np.asarray(SEGMENTS, dtype=object)[segment], pa.string()),
        "plan": pa.array(np.asarray(PLANS, dtype=object)[plan], pa.string()),
        "signup_at": _ts_array(signup_s),
        "converted_at": _ts_array(conv_s, converted),
        "churned_at": _ts_array(churn_s, churned),
        "renewal_at": _ts_array(renewal_s, converted),
        "mrr": pa.array(mrr, pa.float64()),
        "properties": pa.array(cust_props, pa.string()),
    })
    u_created_s = signup_s[u_cust] + np.round(u_created * _DAY).astype(np.int64)
    u_live = (u_created_s < as_of_s) & (u_created < access_end[u_cust])
    first_i = rng.integers(0, len(_FIRST_NAMES), u_cust.size)
    last_i = rng.integers(0, len(_LAST_NAMES), u_cust.size)
    emails = [
        f"{_FIRST_NAMES[a]}.{_LAST_NAMES[b]}{j}@{domains[c]}"
        for a, b, j, c in zip(first_i.tolist(), last_i.tolist(), u_j.tolist(), u_cust.tolist(), strict=True)
    ]
    roles = np.where(u_j == 0, 0, rng.integers(1, len(_USER_ROLES), u_cust.size))
    users = pa.table({
        "user_id": pa.array(user_ids[u_live], pa.string()),
        "customer_id": pa.array(cust_ids[u_cust[u_live]], pa.string()),
        "email": pa.array(np.asarray(emails, dtype=object)[u_live], pa.string()),
        "role": pa.array(np.asarray(_USER_ROLES, dtype=object)[roles[u_live]], pa.string()),
        "created_at": _ts_array(u_created_s[u_live]),
        "properties": pa.array(np.full(int(u_live.sum()), "{}", dtype=object), pa.string()),
    })
    ev_ids = _ids("ev", np.arange(e_cust.size), width + 3)
    events = pa.table({
        "event_id": pa.array(ev_ids, pa.string()),
        "customer_id": pa.array(cust_ids[e_cust], pa.string()),
        "user_id": pa.array(np.where(e_user >= 0, user_ids[np.maximum(e_user, 0)], None), pa.string()),
        "timestamp": _ts_array(e_s),
        "event": pa.array(e_name, pa.string()),
        "source": pa.array(e_source, pa.string()),
        "properties": pa.array(e_props, pa.string()),
    })
    tk_keep = k_created < as_of_s
    tk_status = np.where(k_is_solved, np.where(rng.random(n_tk) < 0.5, "solved", "closed"), np.where(rng.random(n_tk) < 0.7, "open", "pending"))
    subjects = np.array([_TICKET_TEXT[topics[i]][0] for i in k_topic.tolist()], dtype=object)
    bodies = np.array(
        [f"Hello, {_TICKET_TEXT[topics[i]][1][j]} Thanks." for i, j in zip(k_topic.tolist(), k_tone.tolist(), strict=True)], dtype=object
    )
    priority = np.where(k_tone == 1, np.where(rng.random(n_tk) < 0.5, "high", "urgent"), np.where(rng.random(n_tk) < 0.7, "normal", "low"))
    channel = np.asarray(("email", "chat", "web"), dtype=object)[rng.integers(0, 3, n_tk)]
    tickets = pa.table({
        "ticket_id": pa.array(tk_ids[tk_keep], pa.string()),
        "customer_id": pa.array(cust_ids[k_cust[tk_keep]], pa.string()),
        "user_id": pa.array(user_ids[k_user[tk_keep]], pa.string()),
        "created_at": _ts_array(k_created[tk_keep]),
        "solved_at": _ts_array(k_solved[tk_keep], k_is_solved[tk_keep]),
        "channel": pa.array(channel[tk_keep], pa.string()),
        "subject": pa.array(subjects[tk_keep], pa.string()),
        "body": pa.array(bodies[tk_keep], pa.string()),
        "status": pa.array(tk_status[tk_keep].astype(object), pa.string()),
        "priority": pa.array(priority[tk_keep].astype(object), pa.string()),
        "satisfaction": pa.array(np.where(k_rated, k_sat, np.nan)[tk_keep], pa.float64(), from_pandas=True),
        "properties": pa.array([json.dumps({"topic": topics[i]}) for i in k_topic[tk_keep].tolist()], pa.string()),
    })
    m_order = np.lexsort((_codes(m_status), m_s, m_cust))
    send_ids = _ids("s", m_send[m_order], width + 2)
    messages = pa.table({
        "message_id": pa.array(_ids("msg", np.arange(m_order.size), width + 3), pa.string()),
        "customer_id": pa.array(cust_ids[m_cust[m_order]], pa.string()),
        "user_id": pa.array(user_ids[u_off[m_cust[m_order]]], pa.string()),
        "timestamp": _ts_array(m_s[m_order]),
        "campaign": pa.array(m_camp[m_order], pa.string()),
        "status": pa.array(m_status[m_order], pa.string()),
        "properties": pa.array([json.dumps({"send_id": s, "provider": "customerio"}) for s in send_ids.tolist()], pa.string()),
    })

    ext = file_format
    files: dict[str, list[Path]] = {}
    counts: dict[str, int] = {}
    for name, table, schema in (
        ("customers", customers, CUSTOMERS), ("users", users, USERS), ("events", events, EVENTS),
        ("tickets", tickets, TICKETS), ("messages", messages, MESSAGES),
    ):
        path = out / "events" / f"part-00000.{ext}" if name == "events" else out / f"{name}.{ext}"
        counts[name] = write_table(path, table, arrow_schema(schema), ext)
        files[name] = [path]
    definition_path = out / "journey.yaml"
    shutil.copyfile(SECOND_WORLD_DEFINITION, definition_path)

    # -- truth ----------------------------------------------------------------------------------------
    frame = pd.DataFrame({"cust": e_cust, "s": e_s, "event": e_name, "source": e_source})
    truth = _truth(
        p=p, n=n, seed=seed, start=str(start_ts.date()), months=months, as_of_s=as_of_s, file_format=ext,
        files={k: [f.relative_to(out).as_posix() for f in v] for k, v in files.items()}, counts=counts,
        events=frame, signup_s=signup_s, cust_ids=cust_ids, persona=persona, segment=segment, plan=plan,
        contract=contract, payment=payment, country=country, converts=converts, converted=converted, conv_s=conv_s,
        churns=churns, churned=churned, churn_s=churn_s, trial_end_s=trial_end_s, c5=c5, p10=p10,
    )
    text = json.dumps(truth, indent=2)
    truth = json.loads(text)  # the result holds exactly what the file holds (lists, not tuples)
    truth_path = out / TRUTH_FILE
    truth_path.write_text(text + "\n", encoding="utf-8")
    return SecondWorldResult(
        out_dir=out, files=files, counts=counts, truth_path=truth_path, truth=truth, definition_path=definition_path,
        as_of=as_of_ts,
    )


# -- truth ------------------------------------------------------------------------------------------
def _rr(flag: np.ndarray, outcome: np.ndarray) -> dict[str, Any]:
    """2×2 counts and the crude risk ratio of *outcome* for *flag* vs not."""
    n1, n0 = int(flag.sum()), int((~flag).sum())
    e1, e0 = int((flag & outcome).sum()), int((~flag & outcome).sum())
    r1 = e1 / n1 if n1 else None
    r0 = e0 / n0 if n0 else None
    rr = None if r1 is None or not r0 else round(r1 / r0, 4)
    return {
        "n_exposed": n1, "events_exposed": e1, "rate_exposed": None if r1 is None else round(r1, 4),
        "n_reference": n0, "events_reference": e0, "rate_reference": None if r0 is None else round(r0, 4),
        "risk_ratio": rr,
    }


def _stage_reach(
    definition: dict[str, Any], events: pd.DataFrame, signup_s: np.ndarray, ended: np.ndarray
) -> list[dict[str, Any]]:
    """Each stage's true reach, read from the definition file by an interpreter of its simple conditions.

    ``eligible`` is who waits for the stage (those who reached the previous
    stage; everyone for the first stage and a free-order stage); of them, not
    reached, ``dropped`` are those whose journey *ended* (churned, or the
    trial expired unpaid) and ``censored`` the rest.
    """
    n = signup_s.size
    out: list[dict[str, Any]] = []
    reached_prev = np.ones(n, dtype=bool)
    ordered_prev = np.ones(n, dtype=bool)
    for stage in definition["stages"]:
        rule = stage["rule"]
        order = str(stage.get("order", "after_previous"))
        if rule == "signup":
            holds = np.ones(n, dtype=bool)
        else:
            allowed = {"event", "min_count", "within_days"}
            if not isinstance(rule, dict) or not set(rule) <= allowed or "event" not in rule:
                msg = (
                    f"second_world.yaml, stage {stage['name']!r}: the truth interpreter reads only 'signup' or "
                    f"{{event, min_count, within_days}} (days after signup); got {rule!r}"
                )
                raise ValueError(msg)
            sel = events["event"].to_numpy() == rule["event"]
            cust = events["cust"].to_numpy()[sel]
            secs = events["s"].to_numpy()[sel]
            if "within_days" in rule:
                inside = secs < signup_s[cust] + float(rule["within_days"]) * _DAY
                cust = cust[inside]
            holds = np.bincount(cust, minlength=n) >= int(rule.get("min_count", 1))
        eligible = np.ones(n, dtype=bool) if order == "any" or not out else reached_prev
        reached = holds & eligible
        ordered = holds & ordered_prev
        waiting = eligible & ~reached
        out.append({
            "stage": stage["name"], "order": order, "rule_holds": int(holds.sum()), "reached": int(reached.sum()),
            "eligible": int(eligible.sum()), "dropped": int((waiting & ended).sum()),
            "censored": int((waiting & ~ended).sum()), "reached_if_ordered": int(ordered.sum()),
        })
        reached_prev, ordered_prev = reached, ordered
    return out


def _truth(
    *, p: SecondWorldParameters, n: int, seed: int, start: str, months: int, as_of_s: int, file_format: str,
    files: dict[str, list[str]], counts: dict[str, int], events: pd.DataFrame, signup_s: np.ndarray,
    cust_ids: np.ndarray, persona: np.ndarray, segment: np.ndarray, plan: np.ndarray, contract: np.ndarray,
    payment: np.ndarray, country: np.ndarray, converts: np.ndarray, converted: np.ndarray, conv_s: np.ndarray,
    churns: np.ndarray, churned: np.ndarray, churn_s: np.ndarray, trial_end_s: np.ndarray, c5: np.ndarray,
    p10: np.ndarray,
) -> dict[str, Any]:
    """Build ``truth.json`` from the parameters, the latent draws and the rows actually written."""
    ev, cust, secs = events["event"].to_numpy(), events["cust"].to_numpy(), events["s"].to_numpy()

    def count_within(event: str, days: float) -> np.ndarray:
        sel = (ev == event) & (secs < signup_s[cust] + days * _DAY)
        return np.bincount(cust[sel], minlength=n)

    trial_ended = trial_end_s <= as_of_s
    trial_expired = ~converted & trial_ended
    decided = converted | trial_expired
    early_conv = converted & (conv_s < signup_s + p.conversion_window_days * _DAY)
    employees_flag = count_within("employee_added", p.conversion_window_days) >= p.conversion_threshold
    payroll_flag = count_within("payroll_run", p.churn_window_days) >= 1
    follow = p.churn_max_days_after_conversion
    full_follow = converted & (conv_s + follow * _DAY <= as_of_s)
    churn_days_after_signup = (churn_s - signup_s) / _DAY
    monthly = contract == 0
    definition = yaml.safe_load(SECOND_WORLD_DEFINITION.read_text(encoding="utf-8"))
    funnel = _stage_reach(definition, events, signup_s, churned | trial_expired)

    def attribute_rows(name: str, codes: np.ndarray, levels: tuple[str, ...]) -> dict[str, Any]:
        return {
            "attribute": name,
            "levels": list(levels),
            "churn_12m_full_follow_up": {lv: _rr((codes == i)[full_follow], churned[full_follow]) for i, lv in enumerate(levels)},
            "conversion_decided_trials": {lv: _rr((codes == i)[decided], converted[decided]) for i, lv in enumerate(levels)},
        }

    persona_names = np.asarray(PERSONAS, dtype=object)[persona]
    return {
        "generator": "journeylib.datasets.second_world",
        "generator_version": SECOND_WORLD_VERSION,
        "seed": seed,
        "n_customers": n,
        "start": start,
        "months": months,
        "as_of": pd.Timestamp(as_of_s, unit="s", tz="UTC").isoformat(),
        "last_event_at": pd.Timestamp(int(secs.max()), unit="s", tz="UTC").isoformat() if secs.size else None,
        "trial_days": p.trial_days,
        "file_format": file_format,
        "files": files,
        "definition_file": "journey.yaml",
        "row_counts": counts,
        "events_by_source": {k: int(v) for k, v in events["source"].value_counts().sort_index().items()},
        "events_by_name": {k: int(v) for k, v in events["event"].value_counts().sort_index().items()},
        "world": asdict(p),
        "differences_from_demo": {
            "trial_days": p.trial_days,
            "sources": sorted(set(EVENT_SOURCE.values())),
            "planted_windows_days": [p.conversion_window_days, p.churn_window_days],
            "conversion_timing": "any time of the trial (10% before day 5, 30% days 5-14, 60% days 14-21)",
            "churn_timing": f"{p.churn_min_days_after_conversion:g}-{p.churn_max_days_after_conversion:g} days after conversion",
            "free_order_stage": "Paying (order: any)",
            "plan": "chosen at sign-up, never 'trial'",
        },
        "outcomes": {
            "customers": n,
            "converted": int(converted.sum()),
            "converted_before_conversion_window_end": int(early_conv.sum()),
            "trial_expired": int(trial_expired.sum()),
            "trial_running": int((~converted & ~trial_ended).sum()),
            "churned": int(churned.sum()),
            "paying_active": int((converted & ~churned).sum()),
            "churned_more_than_150_days_after_signup": int((churned & (churn_days_after_signup > 150)).sum()),
            "churned_more_than_365_days_after_signup": int((churned & (churn_days_after_signup > 365)).sum()),
            "churn_after_as_of_censored": int((churns & ~churned & converted).sum()),
            "conversion_after_as_of_censored": int((converts & ~converted).sum()),
            "converted_with_full_12_month_follow_up": int(full_follow.sum()),
            "churned_within_full_12_month_follow_up": int((full_follow & churned).sum()),
            "definitions": {
                "converted": "converted_at set (conversion before as_of)",
                "trial_expired": "no conversion and trial_ends_at (signup + trial_days) at or before as_of",
                "trial_running": "no conversion and the trial has not ended at as_of (censored)",
                "churned": "churned_at set (churn before as_of)",
                "paying_active": "converted and not churned at as_of (censored)",
            },
        },
        "funnel": funnel,
        "planted": [
            {
                "name": "conversion_employees_added",
                "outcome": "conversion",
                "kind": "count_at_least",
                "event": "employee_added",
                "window_days": p.conversion_window_days,
                "threshold": p.conversion_threshold,
                "exposed": f"at least {p.conversion_threshold} employee_added within {p.conversion_window_days} days of signup",
                "true_risk_ratio": round(p.conversion_prob_flag / p.conversion_prob_no_flag, 4),
                "true_rates": {"exposed": p.conversion_prob_flag, "reference": p.conversion_prob_no_flag},
                "population": "trials whose outcome is known at as_of (converted or trial expired)",
                "latent_flag_count": int(c5.sum()),
                "realised": _rr(employees_flag[decided], converted[decided]),
                "realised_after_window": _rr(employees_flag[decided & ~early_conv], converted[decided & ~early_conv]),
            },
            {
                "name": "churn_no_early_payroll",
                "outcome": "churn",
                "kind": "did_not_within",
                "event": "payroll_run",
                "window_days": p.churn_window_days,
                "threshold": 1,
                "exposed": f"no payroll_run within {p.churn_window_days} days of signup",
                "true_risk_ratio": p.churn_rr_no_early_payroll,
                "true_rates_note": "12-month churn probability after conversion; multiplied by the contract effect",
                "population": "converted customers with 12 months of follow-up after conversion",
                "latent_flag_count": int((~p10).sum()),
                "realised": _rr(~payroll_flag[full_follow], churned[full_follow]),
                "realised_all_converted_churn_by_as_of": _rr(~payroll_flag[converted], churned[converted]),
            },
            {
                "name": "churn_monthly_contract",
                "outcome": "churn",
                "kind": "attribute",
                "attribute": "contract",
                "exposed": "contract = monthly",
                "reference": "contract = annual",
                "true_risk_ratio": p.churn_rr_monthly_contract,
                "population": "converted customers with 12 months of follow-up after conversion",
                "realised": _rr(monthly[full_follow], churned[full_follow]),
                "realised_all_converted_churn_by_as_of": _rr(monthly[converted], churned[converted]),
            },
        ],
        "null_behaviours": {
            "events": sorted(e for e in EVENT_SOURCE if e not in (
                "employee_added", "payroll_run", "plan_purchased", "subscription_cancelled", "company_created",
            )),
            "note": (
                "drawn from the personas, which are independent of the planted flags and the outcomes: no effect on "
                "conversion or churn (true RR 1). Trial e-mail 'trial_ending' is not sent to customers who already "
                "paid, and non-converted trials lose access at the trial end, so windows reaching past a customer's "
                "outcome see those differences."
            ),
        },
        "null_attributes": [
            attribute_rows("plan", plan, PLANS),
            attribute_rows("segment", segment, SEGMENTS),
            attribute_rows("payment_method", payment, PAYMENT_METHODS),
            attribute_rows("country", country, COUNTRIES),
        ],
        "persona_counts": {name: int((persona == i).sum()) for i, name in enumerate(PERSONAS)},
        "personas": dict(zip(cust_ids.tolist(), persona_names.tolist(), strict=True)),
    }
