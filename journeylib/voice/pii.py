r"""Masking personal data (emails, phone numbers, names) in displayed ticket text.

Reports and dashboards show ticket excerpts so a Customer Success manager can
read the customer's words. Those words carry personal data: signatures, email
addresses, phone numbers, "Hi Maya,". :func:`mask_pii` replaces them with
placeholders before display; the voice-of-customer notebook does it by default
(``mask_pii: bool = True``). Scoring never needs the masked text: masking is
for display only.

What is masked, and how
-----------------------
``[EMAIL]``
    Anything shaped like ``local@domain.tld``.
``[PHONE]``
    Digit groups that look like a phone number: 7 to 15 digits in total,
    optionally starting with ``+`` or a ``(area)`` code, separated by spaces,
    dots, dashes or slashes, or 10 to 15 digits in a row. Shorter numbers
    (invoice ``INV-48213``, error code ``50213``, ``$1,205``) are kept, and so
    are dates (``2025-03-04``) and times.
``[NAME]``
    (a) Words given in *names* (e.g. first and last names taken from the
    store's user emails with :func:`names_from_emails`), matched as whole
    words, case-sensitively on the capitalised form; (b) the capitalised
    words after a greeting (``Hi Maya,`` ``Dear Mr. Smith``) or a sign-off
    line (``Thanks,\nMaya Smith``); (c) ``my name is X`` / ``this is X``
    introductions; (d) ``<Name> from <Company> Support``. No name list can be
    complete: a name that appears only mid-sentence and is not in *names*
    stays visible. Tests document what is and is not caught.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import pandas as pd

__all__ = [
    "EMAIL_TOKEN",
    "NAME_TOKEN",
    "PHONE_TOKEN",
    "mask_pii",
    "mask_pii_series",
    "names_from_emails",
]

#: Placeholder of a masked email address.
EMAIL_TOKEN = "[EMAIL]"
#: Placeholder of a masked phone number.
PHONE_TOKEN = "[PHONE]"
#: Placeholder of a masked person name.
NAME_TOKEN = "[NAME]"

_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,24}\b")
# A phone-shaped run: optional +, digit groups with separators; checked for digit count afterwards.
_PHONE = re.compile(r"(?<![\w/-])(?:\+|00)?\(?\d{1,4}\)?(?:[ .\-/]?\(?\d{1,5}\)?){1,6}(?![\w/-])")
_DATE_LIKE = re.compile(r"^\d{4}[-/.]\d{1,2}[-/.]\d{1,2}$|^\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}$")
_CAP_WORD = r"[A-Z][a-zA-Z'\-]+"
_NAME_SEQ = rf"{_CAP_WORD}(?:[ \t]+{_CAP_WORD}){{0,2}}"
_GREETING_NAME = re.compile(
    rf"(?m)^(?P<lead>[ \t]*(?i:hi|hello|hey|dear|good (?:morning|afternoon|evening)|thanks|thank you)"
    rf"[ \t]+(?:(?i:mr|mrs|ms|dr)\.?[ \t]+)?)(?P<name>{_NAME_SEQ})(?=[ \t]*[,!:.]?[ \t]*$)"
)
_SIGN_OFF_BLOCK = re.compile(
    r"(?m)^(?P<lead>[ \t]*(?i:thanks(?: again)?|thank you!?|many thanks|best|best regards|kind regards|"
    r"warm regards|regards|cheers|sincerely|all the best)[ \t]*[,.!]*[ \t]*\n)"
    rf"(?P<name>[ \t]*{_NAME_SEQ}[ \t]*)$"
)
_INTRO = re.compile(rf"(?i:\b(?:my name is|this is|i am|i'm)[ \t]+)(?P<name>{_NAME_SEQ})")
_AGENT = re.compile(rf"(?P<name>{_CAP_WORD})(?=[ \t]+from[ \t]+{_CAP_WORD}[ \t]+Support\b)")
# Capitalised words that are not names even after "Hi"/"this is" ("Hi team", "this is Planwise").
_NOT_NAMES = frozenset(
    {
        "Team", "There", "All", "Everyone", "Support", "Folks", "Guys", "Sir", "Madam", "Again", "Urgent",
        "The", "This", "It", "I", "We", "Not", "So", "Very", "Really", "Just", "Still", "Please",
    }
)  # fmt: skip


def names_from_emails(emails: Iterable[Any], *, min_length: int = 3) -> list[str]:
    """Derive person names from email local parts such as ``maya.smith@acme.io``.

    Parameters
    ----------
    emails : iterable of str
        Email addresses (e.g. ``users.email``); missing values are skipped.
    min_length : int, default 3
        Shortest name part kept (drops initials such as ``j.smith``'s ``j``).

    Returns
    -------
    list of str
        Capitalised, de-duplicated, sorted name parts (``["Maya", "Smith"]``);
        parts with digits and role mailboxes (``support``, ``info``, ...) are
        left out.

    Examples
    --------
    >>> names_from_emails(["maya.smith@acme.io", "support@acme.io", "j.o-neil@x.com", None])
    ['Maya', 'Neil', 'Smith']
    """
    roles = {"support", "info", "admin", "sales", "billing", "hello", "team", "contact", "help", "noreply", "no"}
    out: set[str] = set()
    for email in emails:
        if not isinstance(email, str) or "@" not in email:
            continue
        local = email.split("@", 1)[0].lower()
        for part in re.split(r"[._\-+]", local):
            if len(part) >= min_length and part.isalpha() and part not in roles:
                out.add(part.capitalize())
    return sorted(out)


def _phone_repl(match: re.Match[str]) -> str:
    text = match.group(0)
    digits = sum(ch.isdigit() for ch in text)
    has_sep = bool(re.search(r"[ .\-/()]", text.strip())) or text.startswith(("+", "00"))
    if _DATE_LIKE.match(text.strip()):
        return text
    if (7 <= digits <= 15 and has_sep and len(re.findall(r"\d+", text)) >= 2) or 10 <= digits <= 15:
        return PHONE_TOKEN
    return text


def _mask_name_group(match: re.Match[str]) -> str:
    name = match.group("name")
    words = name.split()
    if words and words[0] in _NOT_NAMES:
        return match.group(0)
    lead = match.group("lead") if "lead" in match.groupdict() and match.group("lead") is not None else ""
    start, end = match.span("name")
    whole_start = match.start()
    prefix = lead or match.group(0)[: start - whole_start]
    suffix = match.group(0)[end - whole_start :]
    return f"{prefix}{NAME_TOKEN}{suffix}"


def mask_pii(
    text: Any,
    *,
    names: Iterable[str] = (),
    emails: bool = True,
    phones: bool = True,
    person_names: bool = True,
) -> Any:
    r"""Replace email addresses, phone numbers and person names in *text* with placeholders.

    Parameters
    ----------
    text : str
        Text to display. Non-strings (``None``, ``NaN``) are returned as they are.
    names : iterable of str, optional
        Known names to mask wherever they appear as whole capitalised words
        (see :func:`names_from_emails`).
    emails, phones, person_names : bool, default True
        Which kinds of personal data to mask.

    Returns
    -------
    str
        The text with ``[EMAIL]``, ``[PHONE]`` and ``[NAME]`` placeholders.

    Examples
    --------
    >>> mask_pii("Hi Tom,\ncall me on +44 20 7946 0958 or mail maya.smith@acme.io. Invoice INV-48213.")
    'Hi [NAME],\ncall me on [PHONE] or mail [EMAIL]. Invoice INV-48213.'
    >>> mask_pii("Thanks,\nMaya Smith")
    'Thanks,\n[NAME]'
    """
    if not isinstance(text, str):
        return text
    out = text
    if emails:
        out = _EMAIL.sub(EMAIL_TOKEN, out)
    if phones:
        out = _PHONE.sub(_phone_repl, out)
    if person_names:
        out = _GREETING_NAME.sub(_mask_name_group, out)
        out = _SIGN_OFF_BLOCK.sub(lambda m: m.group("lead") + NAME_TOKEN, out)
        out = _INTRO.sub(_mask_name_group, out)
        out = _AGENT.sub(NAME_TOKEN, out)
        known = sorted({n.strip() for n in names if isinstance(n, str) and len(n.strip()) >= 2}, key=len, reverse=True)
        if known:
            # Capitalised form only: "Grace" the person, not "grace period".
            pattern = re.compile(r"\b(?:" + "|".join(re.escape(n[0].upper() + n[1:]) for n in known) + r")\b")
            out = pattern.sub(NAME_TOKEN, out)
        # "[NAME] [NAME]" from first + last name reads better as one placeholder.
        out = re.sub(rf"{re.escape(NAME_TOKEN)}(?:[ \t]+{re.escape(NAME_TOKEN)})+", NAME_TOKEN, out)
    return out


def mask_pii_series(texts: pd.Series, *, names: Iterable[str] = (), **kinds: bool) -> pd.Series:
    """Apply :func:`mask_pii` to every text of a Series.

    Parameters
    ----------
    texts : pandas.Series
        Texts to display.
    names : iterable of str, optional
        Known names (see :func:`mask_pii`).
    **kinds : bool
        ``emails``, ``phones``, ``person_names`` as in :func:`mask_pii`.

    Returns
    -------
    pandas.Series
        The masked texts, same index; a new Series (the input is not changed).

    Examples
    --------
    >>> mask_pii_series(pd.Series(["mail me at a@b.io", None])).tolist()
    ['mail me at [EMAIL]', None]
    """
    known = list(names)
    return texts.map(lambda t: mask_pii(t, names=known, **kinds))
