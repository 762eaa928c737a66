"""The simulation of the synthetic world, one chunk of customers at a time.

:class:`Chunk` draws each customer's latent state (segment, archetype, setup
time, conversion, churn time, ...) and expands it into users, product
sessions and events, CRM events, lifecycle e-mails and support tickets, all
vectorised across the chunk's customers; :func:`journeylib.datasets.world.synthesize`
runs the chunks and writes their tables.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from scipy.special import ndtr

from journeylib.datasets import text
from journeylib.datasets.parameters import (
    ARMS,
    CAMPAIGNS,
    CANCEL_REASONS,
    CHANNELS,
    DAY,
    DEVICES,
    EVENT_NAMES,
    EVENT_SOURCE,
    EXPERIMENT,
    FEATURES,
    HOUR,
    INDUSTRIES,
    INTEGRATIONS,
    JOB_TITLES,
    NEVER,
    PLANS,
    PRICE_PER_SEAT,
    PRIORITIES,
    REGION_SHARES,
    REGION_UTC_OFFSET_HOURS,
    REGIONS,
    ROLES,
    SEGMENTS,
    SOURCES,
    TICKET_CHANNELS,
    TICKET_STAGES,
    WEEK,
    WorldParameters,
)
from journeylib.datasets.timeline import Calendar
from journeylib.datasets.truth import TruthTally
from journeylib.store.schema import MESSAGE_STATUSES

__all__ = ["Chunk", "property_table", "string_array", "take"]

_EV = {name: i for i, name in enumerate(EVENT_NAMES)}
_EV_SOURCE = np.array([SOURCES.index(EVENT_SOURCE[e]) for e in EVENT_NAMES], dtype=np.int8)


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


def string_array(values: tuple[str, ...] | list[str]) -> pa.Array:
    """Return *values* as an Arrow string array.

    Parameters
    ----------
    values : tuple or list of str
        The strings.

    Returns
    -------
    pyarrow.Array
        A ``string`` array, in the same order.
    """
    return pa.array(list(values), type=pa.string())


def take(values: pa.Array, idx: np.ndarray) -> pa.Array:
    """Return the elements of an Arrow array at integer positions (a vectorised look-up).

    Parameters
    ----------
    values : pyarrow.Array
        The look-up table.
    idx : numpy.ndarray of int
        Positions into *values*.

    Returns
    -------
    pyarrow.Array
        ``values[idx]``.
    """
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
    prefix = take(string_array(_PREFIXES), pi)
    noun = take(string_array(_NOUNS), ni)
    suffix = take(string_array(_SUFFIXES), rng.integers(0, len(_SUFFIXES), len(g)))
    name = _join(prefix, " ", noun, suffix)
    slug = pc.utf8_lower(_join(prefix, noun))
    cycle_text = pc.if_else(pa.array(cycle > 0), _num_text(cycle), "")
    domain = _join(slug, cycle_text, ".", take(string_array(_TLDS), ti))
    return name, domain


# -- property look-up table -----------------------------------------------------
def property_table(p: WorldParameters) -> tuple[pa.Array, dict[str, int]]:
    """Return the look-up table of event ``properties`` JSON texts, and where each group starts in it.

    Parameters
    ----------
    p : WorldParameters
        The parameters (the trial length appears in a property).

    Returns
    -------
    tuple of (pyarrow.Array, dict of str to int)
        The JSON texts (position 0 is ``{}``), and the first position of each
        group (``device``, ``feature``, ``integration``, ``step``, ``arm``,
        ``plan``, ``upgrade``, ``reason``, ``invite``, ``trial``).
    """
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
    return string_array(lut), base


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
                "customer_id": take(customer_ids, cust),
                "user_id": user_ids.take(pa.array(user, mask=user < 0)),
                "timestamp": _timestamps(t),
                "event": take(string_array(EVENT_NAMES), ev),
                "source": take(string_array(SOURCES), src),
                "properties": props.take(pa.array(order)),
            }
        )


# -- the simulation of one chunk ------------------------------------------------
class Chunk:
    """Simulates one chunk of customers; every array is indexed by the chunk-local customer index."""

    def __init__(
        self,
        rng: np.random.Generator,
        *,
        first: int,
        signup: np.ndarray,
        cal: Calendar,
        p: WorldParameters,
        seed: int,
        id_width: int,
        props: tuple[pa.Array, dict[str, int]],
        tally: TruthTally,
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
        """Draw each customer's latent state: segment, archetype, region, seats, setup, conversion, churn and plan."""
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
        """Draw the users of each account: when they are invited and created, their names, roles and titles."""
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
        self.user_firstname = take(string_array(_FIRST), fi)
        self.user_lastname = take(string_array(_LAST), li)
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
        """Simulate product sessions (login) and the feature, task and project events within them."""
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
        """Add the setup steps and ``setup_completed`` of the customers who complete setup."""
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
        """Add ``integration_connected`` events during and after the trial."""
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
        """Add ``experiment_assigned`` for the customers enrolled in the onboarding experiment."""
        idx = np.flatnonzero((self.arm >= 0) & (self.t0 + 120 < self.cal.as_of))
        self.events.add("experiment_assigned", idx, self.t0[idx] + 120, user=self.user_first[idx], prop=self.arm[idx], group="arm")

    def crm_events(self) -> None:
        """Add the CRM events: trial start, subscription, upgrades, renewals and cancellations."""
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
        """Send the lifecycle e-mails; return the messages table and the next send and message numbers."""
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
        campaign = take(string_array(CAMPAIGNS), k[send_i])
        table = pa.table(
            {
                "message_id": message_ids,
                "customer_id": take(self.customer_ids, mc),
                "user_id": take(self.user_ids, user[send_i]),
                "timestamp": _timestamps(mt),
                "campaign": campaign,
                "status": take(string_array(MESSAGE_STATUSES), status),
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
        """Open the support tickets; return the tickets table, their latent labels and the next ticket number."""
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
        tag_lut = string_array([json.dumps({"tags": [tp]}) for tp in text.TOPICS] + [json.dumps({"tags": []})])
        props = take(tag_lut, np.where(tagged, topic, len(text.TOPICS)))
        first = self.user_firstname.take(pa.array(user))
        last = self.user_lastname.take(pa.array(user))
        company = take(self.names, c)
        subject, body = text.ticket_texts(r, topic=topic, tone=tone, first=first, last=last, company=company, created_s=t)
        ticket_ids = _ids("tkt_", ticket_seq + 1 + np.arange(nt), id_width)
        table = pa.table(
            {
                "ticket_id": ticket_ids,
                "customer_id": take(self.customer_ids, c),
                "user_id": take(self.user_ids, user),
                "created_at": _timestamps(t),
                "solved_at": _timestamps(solved_at, solved),
                "channel": take(string_array(TICKET_CHANNELS), channel),
                "subject": subject,
                "body": body,
                "status": take(string_array(("new", "open", "pending", "solved", "closed")), status),
                "priority": take(string_array(PRIORITIES), priority),
                "satisfaction": satisfaction,
                "properties": props,
            }
        )
        labels = pa.table(
            {
                "ticket_id": ticket_ids,
                "topic": take(string_array(text.TOPICS), topic),
                "tone": take(string_array(text.TONES), tone),
                "stage": take(string_array(TICKET_STAGES), stage),
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
        """Set the customer ids, company names and domains."""
        self.customer_ids = _ids("cus_", self.g + 1, self.id_width)
        self.names, self.domains = _company_names(self.g, self.seed, self.rng)

    def customer_table(self) -> pa.Table:
        """Return the canonical ``customers`` rows of the chunk (statuses tallied for the truths)."""
        cal = self.cal
        decided_at = np.where(self.conv_latent, self.conv_at, self.trial_end)
        in_trial = ~self.converted & (decided_at > cal.as_of)
        status = np.where(self.churned, 3, np.where(self.converted, 2, np.where(in_trial, 0, 1)))
        # per-seat pricing on the licensed seats (not all of them need to be taken by users yet)
        last_mrr = np.where(self.converted, np.asarray(PRICE_PER_SEAT)[self.plan] * self.seats, 0.0)
        mrr = np.where(self.converted & ~self.churned, last_mrr, 0.0)
        statuses = ("trial", "trial_expired", "active", "churned")
        props = _join(
            '{"acquisition_channel": "', take(string_array(CHANNELS), self.channel),
            '", "region": "', take(string_array(REGIONS), self.region),
            '", "industry": "', take(string_array(INDUSTRIES), self.industry),
            '", "seats": ', _num_text(self.seats),
            ', "status": "', take(string_array(statuses), status),
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
                "segment": take(string_array(SEGMENTS), self.seg),
                "plan": take(string_array(PLANS), self.plan),
                "signup_at": _timestamps(self.t0),
                "converted_at": _timestamps(self.conv_at, self.converted),
                "churned_at": _timestamps(self.churn_at, self.churned),
                "renewal_at": _timestamps(self.renewal_at, self.renewal_at < NEVER),
                "mrr": pa.array(mrr.astype(np.float64)),
                "properties": props,
            }
        )

    def user_table(self) -> pa.Table:
        """Return the canonical ``users`` rows of the chunk."""
        cust = self.user_owner
        first = pc.utf8_lower(self.user_firstname)
        last = pc.utf8_lower(self.user_lastname)
        email = _join(first, ".", last, "@", take(self.domains, cust))
        title_lut = string_array([json.dumps({"job_title": t}) for t in JOB_TITLES])
        return pa.table(
            {
                "user_id": self.user_ids,
                "customer_id": take(self.customer_ids, cust),
                "email": email,
                "role": take(string_array(ROLES), self.user_role),
                "created_at": _timestamps(self.user_created),
                "properties": take(title_lut, self.user_title),
            }
        )

    # .. realised truths .............................................................
    def tally_truths(self) -> None:
        """Add the chunk's counts of the planted effects to the :class:`journeylib.datasets.truth.TruthTally`."""
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


