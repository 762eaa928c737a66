"""Support-ticket text for the synthetic world, generated without per-ticket Python loops.

A ticket's subject and body come from templates chosen by its *topic* (what it
is about) and its *tone* (how the customer feels: ``confused``,
``frustrated`` or ``satisfied``). Templates have slots (``{feature}``,
``{integration}``, ``{n}``, ...) filled from small vocabularies, and the body
is wrapped in an optional greeting, an optional extra sentence, a signature and
sometimes a quoted earlier reply (``On Mon, 03 Mar 2025 at 10:14, ... wrote:``).

Everything is vectorised: rows sharing a template are filled together with
Arrow string kernels, so a chunk of tens of thousands of tickets costs a few
milliseconds per template rather than a Python call per ticket.
"""

from __future__ import annotations

import string
from collections.abc import Mapping, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["PRODUCT_NAME", "SUPPORT_ADDRESS", "TONES", "TOPICS", "fill_templates", "ticket_texts"]

#: The fictional product the world simulates.
PRODUCT_NAME = "Planwise"
#: The support mailbox that appears in quoted replies.
SUPPORT_ADDRESS = "support@planwise.io"

#: Ticket topics, in code order.
TOPICS: tuple[str, ...] = (
    "setup_onboarding",
    "integrations",
    "billing",
    "permissions",
    "performance",
    "feature_request",
    "bug",
)
#: Ticket tones, in code order.
TONES: tuple[str, ...] = ("confused", "frustrated", "satisfied")

# -- vocabularies ------------------------------------------------------------
_FEATURES = ("Boards", "Gantt charts", "Time tracking", "Reports", "Automations", "Docs")
_INTEGRATIONS = ("Slack", "GitHub", "Google Drive", "Jira", "Salesforce", "Zoom")
_PROJECTS = (
    "Q3 Launch", "Website Redesign", "Onboarding 2.0", "Marketing Calendar", "Sprint 14",
    "Customer Portal", "Office Move", "Hiring Plan", "Data Migration", "Product Roadmap",
    "Brand Refresh", "Mobile App v2", "Annual Audit", "Partner Program", "Support Backlog",
)
_PLANS = ("Starter", "Pro", "Business")
_AGENTS = ("Maya", "Tom", "Priya", "Lukas", "Sofia", "Daniel", "Aiko", "Omar", "Grace", "Mateo", "Hannah", "Ravi")
_STEPS = (
    "create your first project", "invite your team", "connect an integration", "import your tasks",
    "set up a workflow", "configure notifications",
)
_BROWSERS = ("Chrome", "Firefox", "Safari", "Edge", "the iOS app", "the Android app", "the desktop app")
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday")
_ROLES = ("admin", "member", "viewer", "guest")
_MONTHS = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
)

# -- templates: (subjects, bodies) per (topic, tone) --------------------------
_T = dict[tuple[str, str], tuple[tuple[str, ...], tuple[str, ...]]]
_TEMPLATES: _T = {
    ("setup_onboarding", "confused"): (
        ("How do I {step}?", "Getting started question", "Stuck on setup step {k}", "Where do I start with {product}?"),
        (
            "We just signed up and I'm not sure how to {step}. The checklist says step {k} is done but "
            "nothing shows up on my side. Is there a guide somewhere?",
            "I'm new to {product} and a bit lost. I created a project called \"{project}\" but I can't find "
            "where to add my team or how the {feature} view works. What should I do first?",
            "Sorry if this is obvious, but the onboarding checklist asks me to {step} and I don't see the "
            "button it mentions. I'm using {browser}.",
            "Quick question: do I need to finish all {n4} setup steps before my team can use {feature}? "
            "I got to step {k} and then wasn't sure what to do next.",
        ),
    ),
    ("setup_onboarding", "frustrated"): (
        (
            "Setup is taking forever", "Still can't finish onboarding", "Onboarding blocked for {n} days",
            "Setup step {k} keeps failing",
        ),
        (
            "We have been trying to {step} for {n} days now and it still doesn't work. Our rollout to "
            "{n2} people is on hold because of this. This is really not what we expected.",
            "The setup wizard resets every time I reach step {k}. I've tried {browser} and another browser, "
            "same thing. We are losing time we don't have.",
            "Your onboarding process is way too complicated for a team like ours. It took me an hour to "
            "{step} and {feature} still shows an empty state. I need someone to walk us through this today.",
            "Third ticket about setup. The import of \"{project}\" failed again at {n}% with no error "
            "message. Honestly we are starting to wonder whether {product} is the right fit.",
        ),
    ),
    ("setup_onboarding", "satisfied"): (
        ("Quick setup question", "Onboarding going well - one question", "Question about {feature}"),
        (
            "Setup was smooth so far, thanks! One small question: can we {step} later, or is it required "
            "to finish the checklist?",
            "Loving {product} so far. We moved \"{project}\" over in about {n} minutes. Is there a way to "
            "copy the same structure for our other teams?",
            "Everything is set up and the team likes {feature}. Could you point me to best practices for "
            "organising {n2} projects?",
        ),
    ),
    ("integrations", "confused"): (
        ("{integration} integration question", "How to connect {integration}?", "{integration} not syncing?"),
        (
            "I connected {integration} but I don't see anything happening. Do I need to configure something "
            "else on the {integration} side?",
            "Which permissions does the {integration} integration need? Our IT team is asking before they "
            "approve it.",
            "Is it possible to connect two {integration} workspaces to the same {product} account? The "
            "docs are not clear about that.",
        ),
    ),
    ("integrations", "frustrated"): (
        ("{integration} integration broken", "{integration} sync keeps failing", "URGENT: {integration} disconnected"),
        (
            "The {integration} integration disconnected again. This is the {nth} time this month and every "
            "time we lose updates for \"{project}\".",
            "{integration} sync has been failing since {weekday}. {n} tasks are out of sync and my team is "
            "working from stale data. Please fix this.",
            "We chose {product} because of the {integration} integration and it barely works. Tasks are "
            "duplicated and comments go missing.",
        ),
    ),
    ("integrations", "satisfied"): (
        ("{integration} integration works great", "Question about {integration} sync", "Thanks for the {integration} fix"),
        (
            "The {integration} integration works great, thank you! Is there a way to filter which projects "
            "get synced?",
            "Just connected {integration} and it was painless. Could we also get notifications for "
            "{feature} updates there?",
            "Thanks for fixing the {integration} sync so quickly last week. Everything looks good now.",
        ),
    ),
    ("billing", "confused"): (
        ("Question about my invoice", "Billing question", "How does per-seat pricing work?"),
        (
            "I got invoice INV-{n5} for ${n3} but I thought we were on the {plan} plan. Can you explain "
            "the difference?",
            "If we add {n} more seats in the middle of the month, how is that billed?",
            "Where can I download past invoices? Our finance team needs the {month} one.",
        ),
    ),
    ("billing", "frustrated"): (
        ("Charged twice", "Wrong amount on invoice", "Billing issue - please respond"),
        (
            "We were charged twice this month (${n3} each). I need a refund as soon as possible.",
            "Our invoice INV-{n5} lists {n2} seats but we only have {n}. This is the second billing mistake "
            "and it is getting hard to justify {product} internally.",
            "I asked to downgrade to {plan} {n} days ago and we were billed at the old price again. Please "
            "fix this or we will cancel.",
        ),
    ),
    ("billing", "satisfied"): (
        ("Upgrade to {plan}", "Adding seats", "Annual billing option?"),
        (
            "We'd like to move to the {plan} plan for the whole team. Can you help us with that?",
            "We're growing and want to add {n} seats. Is there a discount for annual billing?",
            "Thanks for sorting out the invoice so quickly. Could you also add our VAT number to future "
            "invoices?",
        ),
    ),
    ("permissions", "confused"): (
        ("User permissions question", "Guest access?", "What can a {role} see?"),
        (
            "What is the difference between a {role} and a member? I want {n} people to see \"{project}\" "
            "but not edit it.",
            "Can guests comment on tasks without a paid seat?",
            "One of my colleagues says she can't see {feature}. Is that a permission thing?",
        ),
    ),
    ("permissions", "frustrated"): (
        ("Locked out of my own workspace", "Permissions are a mess", "Admin rights disappeared"),
        (
            "I'm the account owner and I suddenly lost admin rights. I can't invite anyone or change billing.",
            "People with the {role} role can edit \"{project}\" even though they shouldn't. This is a "
            "serious problem for us.",
            "I've tried for {n} days to give my team access to {feature}. The settings page just doesn't "
            "save.",
        ),
    ),
    ("permissions", "satisfied"): (
        ("SSO question", "Custom roles", "Permissions question"),
        (
            "Is SSO available on the {plan} plan? Everything else is working great for us.",
            "Could we create a custom role between {role} and member? Not urgent, just curious.",
            "Thanks for the quick help with the permissions earlier. Everyone has access now.",
        ),
    ),
    ("performance", "confused"): (
        ("Is {product} slow today?", "Loading times", "{feature} loading slowly"),
        (
            "Is there an outage? {feature} takes a long time to load for me in {browser}.",
            "Some of my team say {product} feels slow in the afternoon. Is that expected with {n2} tasks in a "
            "project?",
            "Is there a limit to how many tasks a board can hold? \"{project}\" seems slower than the others.",
        ),
    ),
    ("performance", "frustrated"): (
        ("{product} is extremely slow", "Timeouts all day", "Unusable performance"),
        (
            "{feature} takes {s} seconds to load. We can't run our stand-up like this.",
            "The app has been timing out all day. {n} people on my team can't work. What is going on?",
            "Performance has gotten worse every week. \"{project}\" with {n2} tasks is basically unusable in "
            "{browser}.",
        ),
    ),
    ("performance", "satisfied"): (
        ("Much faster now", "Performance feedback", "Thanks for the speed-up"),
        (
            "Just wanted to say {feature} feels much faster since the last update. Nice work!",
            "The app is snappy again, thanks. One small thing: the {feature} export still takes a few seconds.",
            "Whatever you changed last week made a big difference for our {n2}-task projects. Thanks!",
        ),
    ),
    ("feature_request", "confused"): (
        ("Can {product} do this?", "Is there a way to...", "Recurring tasks?"),
        (
            "Is there a way to make tasks repeat every {weekday}? I couldn't find it in {feature}.",
            "Can I see all tasks across projects in one {feature} view, or is that not possible?",
            "Does {product} support dependencies between tasks in different projects?",
        ),
    ),
    ("feature_request", "frustrated"): (
        ("Missing basic features", "Feature request (again)", "We need {feature} exports"),
        (
            "We asked for CSV export of {feature} {n} weeks ago. Competitors have this and we are being "
            "asked why we pay for {product}.",
            "It's frustrating that {feature} still can't filter by assignee. This is a basic feature.",
            "Without a proper {integration} two-way sync we'll have to look at other tools.",
        ),
    ),
    ("feature_request", "satisfied"): (
        ("Feature idea", "Suggestion for {feature}", "Small request"),
        (
            "We love {feature}! It would be even better with custom colours per project.",
            "Suggestion: a dark mode for {browser}. Otherwise the product is great.",
            "Would you consider templates for projects like \"{project}\"? We'd use them a lot.",
        ),
    ),
    ("bug", "confused"): (
        ("Something weird with {feature}", "Is this a bug?", "Tasks disappeared?"),
        (
            "I think some tasks disappeared from \"{project}\" but maybe I filtered them out? I see {n} "
            "instead of {n2}.",
            "When I click export in {feature}, nothing happens. Am I doing something wrong?",
            "The due dates in {feature} show one day off for me. Is that a time zone setting?",
        ),
    ),
    ("bug", "frustrated"): (
        ("Bug: data lost", "{feature} broken", "Critical bug in {feature}"),
        (
            "We lost {n} tasks in \"{project}\" after the last update. This is unacceptable.",
            "{feature} crashes every time I open it in {browser}. Error code {n5}. Please escalate.",
            "Comments on tasks keep vanishing. We reported this on {weekday} and nothing has happened since.",
        ),
    ),
    ("bug", "satisfied"): (
        ("Small bug report", "Minor issue in {feature}", "Typo in the app"),
        (
            "Small thing: the {feature} tooltip has a typo. Otherwise all good!",
            "Minor bug: the task counter on \"{project}\" shows {n} but there are {n2} tasks. Not urgent.",
            "Found a small glitch in {browser}: the sidebar flickers when I switch projects. Love the product "
            "otherwise.",
        ),
    ),
}

_GREETINGS = (
    "", "", "Hi,\n\n", "Hello,\n\n", "Hi team,\n\n", "Hi {agent},\n\n", "Hey there,\n\n",
    "Good morning,\n\n", "Dear {product} support,\n\n", "Hello {product} team,\n\n",
)
_EXTRAS: dict[str, tuple[str, ...]] = {
    "confused": (
        "Sorry if this is a silly question!",
        "I looked in the help center but couldn't find the answer.",
        "Any pointers would be appreciated.",
        "I'm not very technical, so step-by-step instructions would help.",
    ),
    "frustrated": (
        "This is the third time this week.",
        "We are seriously considering other tools if this isn't fixed.",
        "Please escalate this, it is blocking the whole team.",
        "I expected better for what we pay.",
        "Nobody has answered my last email.",
    ),
    "satisfied": (
        "Thanks again for the great product!",
        "No rush on this one.",
        "The team is really enjoying {product}.",
        "Keep up the good work.",
    ),
}
_SIGNATURES = (
    "",
    "\n\nThanks,\n{first}",
    "\n\nBest regards,\n{first} {last}\n{company}",
    "\n\nCheers,\n{first}",
    "\n\n{first} {last}",
    "\n\nThank you!\n{first}",
    "\n\nKind regards,\n{first} {last}",
    "\n\nSent from my iPhone",
)
_QUOTES = (
    "\n\nOn {qdate}, {agent} from {product} Support <{support}> wrote:\n> Thanks for reaching out! Could you "
    "share a screenshot so we can take a closer look?\n> Best,\n> {agent}",
    "\n\nOn {qdate}, {agent} <{support}> wrote:\n> Hi {first},\n> We have passed this on to our engineers "
    "and will get back to you shortly.",
    "\n\nOn {qdate}, {product} Support <{support}> wrote:\n> Your request has been received. A member of "
    "our team will reply as soon as possible.",
)


def _pieces(template: str) -> list[tuple[str, str | None]]:
    """Split a template into (literal, slot name or None) pieces."""
    return [(lit, name) for lit, name, _, _ in string.Formatter().parse(template)]


def _choice(rng: np.random.Generator, vocab: Sequence[str], n: int) -> pa.Array:
    return pa.array(list(vocab), type=pa.string()).take(pa.array(rng.integers(0, len(vocab), n)))


def _numbers(rng: np.random.Generator, low: int, high: int, n: int) -> pa.Array:
    return pc.cast(pa.array(rng.integers(low, high, n)), pa.string())


def fill_templates(templates: Sequence[str], choice: np.ndarray, slots: Mapping[str, pa.Array]) -> pa.Array:
    """Fill one template per row, rows sharing a template at once.

    Parameters
    ----------
    templates : sequence of str
        ``str.format``-style templates; every slot name must be a key of
        *slots*.
    choice : numpy.ndarray of int
        For each row, the index of its template in *templates*.
    slots : mapping of str to pyarrow.Array
        Full-length string arrays, one value per row, for every slot.

    Returns
    -------
    pyarrow.StringArray
        One filled text per row, in row order.
    """
    n = len(choice)
    empty = pa.array([""], type=pa.string()).take(pa.array(np.zeros(n, dtype=np.int64)))
    parts: list[pa.Array] = []
    rows_all: list[np.ndarray] = []
    for t in np.unique(choice):
        rows = np.flatnonzero(choice == t)
        idx = pa.array(rows)
        args: list[pa.Array | str] = [empty.take(idx)]
        for literal, name in _pieces(templates[int(t)]):
            if literal:
                args.append(literal)
            if name is not None:
                args.append(slots[name].take(idx))
        parts.append(pc.binary_join_element_wise(*args, ""))
        rows_all.append(rows)
    if not parts:
        return pa.array([], type=pa.string())
    values = pa.concat_arrays(parts)
    inverse = np.empty(n, dtype=np.int64)
    inverse[np.concatenate(rows_all)] = np.arange(n)
    return values.take(pa.array(inverse))


def _flatten(groups: Sequence[Sequence[str]]) -> tuple[list[str], np.ndarray, np.ndarray]:
    flat = [t for g in groups for t in g]
    counts = np.array([len(g) for g in groups])
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])
    return flat, offsets, counts


def _pick(rng: np.random.Generator, group: np.ndarray, offsets: np.ndarray, counts: np.ndarray) -> np.ndarray:
    return offsets[group] + np.floor(rng.random(len(group)) * counts[group]).astype(np.int64)


def ticket_texts(
    rng: np.random.Generator,
    *,
    topic: np.ndarray,
    tone: np.ndarray,
    first: pa.Array,
    last: pa.Array,
    company: pa.Array,
    created_s: np.ndarray,
) -> tuple[pa.Array, pa.Array]:
    """Generate the subject and body of each ticket.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of randomness (the chunk's generator, for determinism).
    topic : numpy.ndarray of int
        Index into :data:`TOPICS` per ticket.
    tone : numpy.ndarray of int
        Index into :data:`TONES` per ticket.
    first, last : pyarrow.Array of str
        The requester's first and last name per ticket.
    company : pyarrow.Array of str
        The requester's account name per ticket.
    created_s : numpy.ndarray of int
        Creation time per ticket, seconds since the epoch (UTC); a quoted
        earlier reply is dated a few hours before it.

    Returns
    -------
    subject : pyarrow.StringArray
        One subject line per ticket.
    body : pyarrow.StringArray
        One body per ticket: greeting, message, optional extra sentence,
        signature and, sometimes, a quoted earlier reply.
    """
    n = len(topic)
    if n == 0:
        empty = pa.array([], type=pa.string())
        return empty, empty
    n_tones = len(TONES)
    combo = np.asarray(topic, dtype=np.int64) * n_tones + np.asarray(tone, dtype=np.int64)
    keys = [(tp, tn) for tp in TOPICS for tn in TONES]
    subj_flat, subj_off, subj_cnt = _flatten([_TEMPLATES[k][0] for k in keys])
    body_flat, body_off, body_cnt = _flatten([_TEMPLATES[k][1] for k in keys])
    quote_at = np.asarray(created_s, dtype=np.int64) - rng.integers(3_600, 3 * 86_400, n)
    slots: dict[str, pa.Array] = {
        "feature": _choice(rng, _FEATURES, n),
        "integration": _choice(rng, _INTEGRATIONS, n),
        "project": _choice(rng, _PROJECTS, n),
        "plan": _choice(rng, _PLANS, n),
        "agent": _choice(rng, _AGENTS, n),
        "step": _choice(rng, _STEPS, n),
        "browser": _choice(rng, _BROWSERS, n),
        "weekday": _choice(rng, _WEEKDAYS, n),
        "role": _choice(rng, _ROLES, n),
        "month": _choice(rng, _MONTHS, n),
        "nth": _choice(rng, ("second", "third", "fourth", "fifth"), n),
        "n": _numbers(rng, 2, 15, n),
        "n2": _numbers(rng, 16, 400, n),
        "n3": _numbers(rng, 49, 2_500, n),
        "n4": _numbers(rng, 4, 5, n),
        "n5": _numbers(rng, 10_000, 99_999, n),
        "k": _numbers(rng, 1, 5, n),
        "s": _numbers(rng, 8, 95, n),
        "first": first,
        "last": last,
        "company": company,
        "product": _choice(rng, (PRODUCT_NAME,), n),
        "support": _choice(rng, (SUPPORT_ADDRESS,), n),
        "qdate": pc.strftime(pa.array(quote_at, type=pa.timestamp("s")), format="%a, %d %b %Y at %H:%M"),
    }
    subject = fill_templates(subj_flat, _pick(rng, combo, subj_off, subj_cnt), slots)
    message = fill_templates(body_flat, _pick(rng, combo, body_off, body_cnt), slots)

    greeting = fill_templates(_GREETINGS, rng.integers(0, len(_GREETINGS), n), slots)
    extra_flat, extra_off, extra_cnt = _flatten([_EXTRAS[t] for t in TONES])
    extra_pick = _pick(rng, np.asarray(tone, dtype=np.int64), extra_off, extra_cnt)
    # Index len(extra_flat) is the empty extra: only about 40% of tickets add a sentence.
    extra_pick = np.where(rng.random(n) < 0.4, extra_pick, len(extra_flat))
    extra = fill_templates([*("\n\n" + e for e in extra_flat), ""], extra_pick, slots)
    signature = fill_templates(_SIGNATURES, rng.integers(0, len(_SIGNATURES), n), slots)
    quote_pick = np.where(rng.random(n) < 0.2, rng.integers(0, len(_QUOTES), n), len(_QUOTES))
    quote = fill_templates([*_QUOTES, ""], quote_pick, slots)
    body = pc.binary_join_element_wise(greeting, message, extra, signature, quote, "")
    return subject, body

