r"""Masking personal data (emails, phone numbers, names) in displayed text and tables.

Reports and dashboards show ticket excerpts so a Customer Success manager can
read the customer's words, and tables whose id columns may hold e-mail
addresses (an analytics ``user_id`` that is an address). :func:`mask_pii`
replaces personal data in a text with placeholders; :func:`mask_email_values`
masks e-mail-shaped values in chosen columns of a table. The voice-of-customer
notebook does both by default (``mask_pii: bool = True``). Scoring never needs
the masked text: masking is for display only.

What is masked, and how
-----------------------
``[EMAIL]``
    Anything shaped like ``local@domain.tld``.
``[PHONE]``
    A run of digit groups (separated by spaces, dots, dashes or slashes,
    optionally ``+``/``00``-prefixed or with an ``(area)`` code) that has the
    structure of a telephone number: international (``+`` or ``00`` and 8 to
    15 digits), national with a trunk ``0`` (9 to 12 digits, e.g.
    ``020 7946 0958``, ``030 1234567``, ``01 23 45 67 89``), an area code in
    brackets, or the North American plan (``415-555-0199``, ``1-800-555-0199``,
    ``2125550143``; area codes start with 2 to 9). Not masked: a run right
    after an identifier label (ISBN, order, lot, batch, invoice, ticket, case,
    serial, SKU, part, version, build, account, customer, reference, ...),
    year ranges (``2019-2023``), dates and times, dotted versions and IP
    addresses, numbers whose last group is one check digit (ISBN-10/13, lot
    numbers), valid ISBN-13s written without separators, and other digit runs
    without a phone structure (``12345-67890``, ``1 200 000``).
``[NAME]``
    Title-case words (``Maya``, ``O'Connor``, ``Anna-Lena``, ``McDonald``;
    never all-capital words such as ``NOT`` or ``URGENT``) in these places:
    (a) words given in *names* (e.g. first and last names taken from the
    store's user emails with :func:`names_from_emails`); (b) after a greeting
    at the start of a line (``Hi Maya,`` ``Dear Mr. Smith``, ``Thanks Jamal``);
    (c) on the line after a sign-off (``Thanks,\nMaya Smith``) or after it on
    the same line (``Cheers, Tom``); (d) after a title (``Mr.``, ``Dr``, ...)
    anywhere; (e) ``my name is X``, and ``this is X`` / ``I am X`` / ``I'm X`` /
    ``it's X`` when X is followed by punctuation, the end of the line, or
    ``from``, ``at``, ``here``, ``and``, ``again``; (f) ``<Name> from <Company>
    Support``; (g) after a role (``colleague``, ``agent``, ``manager``,
    ``CEO``, ``ask for``, ...); (h) ``From:``/``To:``/``Cc:`` headers. A run of
    words containing a word that is not a name (``Team``, ``Support``,
    ``The``, week days, months, ...) is left alone. No name list can be
    complete: a name that appears only mid-sentence, in none of these places
    and not in *names*, stays visible.

Measured precision and recall
-----------------------------
:func:`pii_sample_data` loads a labelled sample of support-style texts
(``journeylib/voice/data/pii_sample.jsonl``: greetings, sign-offs, phones in
several national formats, e-mails, ISBNs, order and lot numbers, dates,
versions, shouting words, product names in capitals) and
:func:`masker_evaluation_data` measures each masker on it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from journeylib.stats import wilson_interval

__all__ = [
    "EMAIL_TOKEN",
    "NAME_TOKEN",
    "PHONE_TOKEN",
    "PII_KINDS",
    "PII_SAMPLE_PATH",
    "PiiSpan",
    "find_pii",
    "mask_email_values",
    "mask_pii",
    "mask_pii_series",
    "masker_evaluation_data",
    "names_from_emails",
    "pii_sample_data",
]

#: Placeholder of a masked email address.
EMAIL_TOKEN = "[EMAIL]"
#: Placeholder of a masked phone number.
PHONE_TOKEN = "[PHONE]"
#: Placeholder of a masked person name.
NAME_TOKEN = "[NAME]"
#: The kinds of personal data found by :func:`find_pii`, in masking order.
PII_KINDS = ("email", "phone", "name")
#: The labelled sample measured by :func:`masker_evaluation_data`.
PII_SAMPLE_PATH = Path(__file__).parent / "data" / "pii_sample.jsonl"

_TOKENS = {"email": EMAIL_TOKEN, "phone": PHONE_TOKEN, "name": NAME_TOKEN}

# -- e-mail ---------------------------------------------------------------------------------
_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,24}\b")
_WHOLE_EMAIL = re.compile(rf"^\s*{_EMAIL.pattern}\s*$")

# -- phone ----------------------------------------------------------------------------------
# A candidate: optional + or 00, digit groups (up to 8 digits: "030 1234567") with one separator
# each (space, dot, dash or slash, spaces allowed around the last three), brackets around a group.
_SEP = r"(?:[ \t]?[.\-/][ \t]?|[ \t])"
_PHONE = re.compile(rf"(?<![\w/#.,-])\+?\(?\d{{1,8}}\)?(?:{_SEP}?\(?\d{{1,8}}\)?){{0,7}}(?![\w/-]|[.,]\d)")
_DATE_LIKE = re.compile(
    r"^(?:\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}|\d{1,2}[:.]\d{2}(?:[:.]\d{2})?)$"
)
_YEAR_RANGE = re.compile(r"^(?:19|20)\d\d[ \t]*[-/][ \t]*(?:(?:19|20)\d\d|\d\d)$")
_IPV4 = re.compile(r"^\d{1,3}(?:\.\d{1,3}){3}$")
_NANP = re.compile(r"^(?:1[ .\-])?(?:\([2-9]\d\d\)[ ]?|[2-9]\d\d[ .\-])\d{3}[ .\-]\d{4}$|^1?[2-9]\d{9}$")
# The label right before a number that makes it an identifier, not a phone ("order no. 4471-...").
_ID_LABEL = re.compile(
    r"(?i)\b(?:isbn(?:-?1[03])?|orders?|po|lot|batch|invoices?|inv|tickets?|case|ref|reference|serial|s/?n|"
    r"sku|part|item|model|versions?|ver|v|build|release|patch|tracking|account|acct|customer|client|member|"
    r"iban|bic|vat|tax|id|code|pin|otp|quote|contract|licen[cs]e|key|meeting|reseller|partner|shipment|"
    r"receipt|transaction|booking|confirmation|claim|policy|product|request)"
    r"(?:[ \t]*(?:no\.?|nr\.?|number|num|#|id|code|ref))?(?:[ \t]+is)?[ \t]*[:#]?[ \t]*$"
)


def _isbn13(digits: str) -> bool:
    if len(digits) != 13 or not digits.startswith(("978", "979")):
        return False
    total = sum(int(d) * (1 if i % 2 == 0 else 3) for i, d in enumerate(digits))
    return total % 10 == 0


def _is_phone(candidate: str, before: str) -> bool:
    """Whether a digit-group run is a phone number, by its shape and the words before it."""
    text = candidate.strip()
    groups = re.findall(r"\d+", text)
    digits = "".join(groups)
    if _ID_LABEL.search(before[-40:]):
        return False
    if _DATE_LIKE.match(text) or _YEAR_RANGE.match(text) or _IPV4.match(text) or _isbn13(digits):
        return False
    if len(groups) >= 3 and len(groups[-1]) == 1:  # a check digit: ISBN-10/13, lot and order numbers
        return False
    dotted = "." in text and not re.search(r"[ \-/]", text)
    if dotted and any(len(g) == 1 for g in groups) and not text.startswith("+"):
        return False  # versions and builds: 10.0.19045.2965
    if text.startswith("+"):
        return 8 <= len(digits) <= 15
    if text.startswith("00"):
        return len(groups) >= 2 and 10 <= len(digits) <= 17
    if text.startswith("("):
        return 9 <= len(digits) <= 12
    if text.startswith("0"):
        return 9 <= len(digits) <= 12 and (len(groups) >= 2 or len(digits) in (10, 11))
    return bool(_NANP.match(text))


# -- names ----------------------------------------------------------------------------------
_UP = "A-ZÀ-ÖØ-Þ"
_LOW = "a-zß-öø-ÿ"
# A title-case word; all-capital words ("NOT", "URGENT") never match.
_NAME_WORD = rf"(?:[{_UP}]'|Mc|Mac)?[{_UP}][{_LOW}]+(?:[{_UP}][{_LOW}]+)*(?:-[{_UP}][{_LOW}]+)?(?![\w'’-]*\w)"
_PARTICLE = r"(?:de|van|von|der|den|da|del|della|di|du|dos|das|le|la|bin|al|ter|ten)"
_NAME_SEQ = rf"{_NAME_WORD}(?:[ \t]+(?:{_PARTICLE}[ \t]+)?{_NAME_WORD}){{0,2}}"
_NAME_RUN = re.compile(_NAME_SEQ)
_TITLE = r"(?:(?i:mr|mrs|ms|miss|mx|dr|prof|sir)\.?[ \t]+)"
_GREETING_NAME = re.compile(
    rf"(?m)^[ \t]*(?i:hi|hello|hey|dear|good (?:morning|afternoon|evening)|thanks|thank you|morning)"
    rf"[ \t]+{_TITLE}?(?P<name>{_NAME_SEQ}(?:[ \t]+(?:and|&)[ \t]+{_TITLE}?{_NAME_SEQ})?)"
    rf"(?=[ \t]*(?:[,!:.;\-–—]|$))"
)
_SIGN_OFFS = (
    r"(?i:thanks(?: again| so much| a lot)?|thank you(?: again)?|many thanks|best|best regards|kind regards|"
    r"warm regards|regards|cheers|sincerely|all the best|best wishes|talk soon|speak soon|yours)"
)
_SIGN_OFF_BLOCK = re.compile(rf"(?m)^[ \t]*{_SIGN_OFFS}[ \t]*[,.!]*[ \t]*\n[ \t]*{_TITLE}?(?P<name>{_NAME_SEQ})[ \t]*$")
_SIGN_OFF_LINE = re.compile(
    rf"(?m)^[ \t]*{_SIGN_OFFS}[ \t]*[,.!\-–—]+[ \t]*{_TITLE}?(?P<name>{_NAME_SEQ})[ \t]*[.!]?[ \t]*$"
)
_TITLED = re.compile(rf"\b(?i:mr|mrs|ms|miss|mx|dr|prof)\.?[ \t]+(?P<name>{_NAME_SEQ})")
_INTRO = re.compile(rf"(?i:\bmy name is|\bmy name's)[ \t]+(?P<name>{_NAME_SEQ})")
_WEAK_INTRO = re.compile(
    rf"(?i:\b(?:this is|i am|i'm|i’m|it's|it’s|it is))[ \t]+(?P<name>{_NAME_SEQ})"
    r"(?=[ \t]*(?:[,.;:!?)]|$)|[ \t]+(?i:from|at|with|here|and|again|speaking)\b)"
)
_AGENT = re.compile(rf"(?P<name>{_NAME_WORD})(?=[ \t]+from[ \t]+{_NAME_WORD}[ \t]+Support\b)")
_ROLE = re.compile(
    rf"(?i:\b(?:colleague|agent|manager|rep|representative|accountant|assistant|ceo|cto|cfo|coo|founder|"
    rf"ask for|speak to|talk to))[ \t]*[:,]?[ \t]+(?P<name>{_NAME_SEQ})"
)
_HEADER = re.compile(rf"(?m)^(?i:from|to|cc):[ \t]*(?P<name>{_NAME_SEQ})")
_NAME_RULES = (_GREETING_NAME, _SIGN_OFF_BLOCK, _SIGN_OFF_LINE, _TITLED, _INTRO, _WEAK_INTRO, _AGENT, _ROLE, _HEADER)
# Title-case words that are not names; a run of words holding one is left alone ("Hello Acme Support").
_NOT_NAMES = frozenset(
    {
        "team", "there", "all", "everyone", "everybody", "support", "folks", "guys", "sir", "madam", "again", "urgent",
        "the", "this", "that", "it", "i", "we", "you", "not", "so", "very", "really", "just", "still", "please", "dear",
        "hello", "hi", "hey", "thanks", "thank", "good", "morning", "afternoon", "evening", "sales", "billing",
        "finance", "operations", "customer", "success", "service", "services", "department", "office", "admin", "help",
        "desk", "helpdesk", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", "today",
        "tomorrow", "yesterday", "january", "february", "march", "april", "may", "june", "july", "august", "september",
        "october", "november", "december", "sent", "from", "subject", "re", "fwd", "fw", "regards", "best", "kind",
        "warm", "cheers", "sincerely", "yours", "and", "or", "but", "if", "when", "what", "why", "how", "yes", "no",
        "ok", "okay", "hope", "happy", "sorry", "great", "excel", "word", "outlook", "windows", "mac", "chrome",
        "safari", "firefox", "android", "iphone", "ios", "mr", "mrs", "ms", "miss", "mx", "dr", "prof",
    }
)  # fmt: skip


@dataclasses.dataclass(frozen=True)
class PiiSpan:
    """One piece of personal data found in a text.

    Attributes
    ----------
    start, end : int
        Character offsets in the text (``text[start:end]``).
    kind : str
        ``"email"``, ``"phone"`` or ``"name"``.
    """

    start: int
    end: int
    kind: str


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


def _name_spans(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Name runs inside ``text[start:end]``; a run holding a word that is not a name is dropped."""
    spans = []
    for run in _NAME_RUN.finditer(text, start, end):
        words = re.split(r"[ \t]+", run.group(0))
        if any(w.lower() in _NOT_NAMES for w in words):
            continue
        spans.append(run.span())
    return spans


def _overlaps(span: tuple[int, int], taken: list[tuple[int, int]]) -> bool:
    return any(span[0] < e and s < span[1] for s, e in taken)


def find_pii(
    text: str,
    *,
    names: Iterable[str] = (),
    emails: bool = True,
    phones: bool = True,
    person_names: bool = True,
) -> list[PiiSpan]:
    """Find e-mail addresses, phone numbers and person names in *text*.

    Parameters
    ----------
    text : str
        The text to search.
    names : iterable of str, optional
        Known names, found wherever they appear as whole capitalised words
        (see :func:`names_from_emails`).
    emails, phones, person_names : bool, default True
        Which kinds of personal data to find.

    Returns
    -------
    list of PiiSpan
        Non-overlapping spans ordered by position. E-mails are found first;
        phones and names never overlap an e-mail, names never overlap a phone.

    Raises
    ------
    TypeError
        If *text* is not a string.

    Examples
    --------
    >>> [(text[s.start:s.end], s.kind) for text in ["Hi Tom, call 020 7946 0958"] for s in find_pii(text)]
    [('Tom', 'name'), ('020 7946 0958', 'phone')]
    """
    if not isinstance(text, str):
        msg = f"find_pii: text must be a str, got {type(text).__name__}"
        raise TypeError(msg)
    found: list[PiiSpan] = []
    taken: list[tuple[int, int]] = []
    if emails:
        for m in _EMAIL.finditer(text):
            found.append(PiiSpan(m.start(), m.end(), "email"))
            taken.append(m.span())
    if phones:
        # Phones are searched with e-mails blanked out, so an address's digits are never a phone.
        blanked = list(text)
        for s, e in taken:
            blanked[s:e] = "_" * (e - s)
        searched = "".join(blanked)
        for m in _PHONE.finditer(searched):
            start = m.start() + (len(m.group(0)) - len(m.group(0).lstrip()))
            end = m.start() + len(m.group(0).rstrip())
            if _is_phone(text[start:end], text[:start]):
                found.append(PiiSpan(start, end, "phone"))
                taken.append((start, end))
    if person_names:
        spans: list[tuple[int, int]] = []
        for rule in _NAME_RULES:
            for m in rule.finditer(text):
                spans.extend(_name_spans(text, *m.span("name")))
        known = sorted({n.strip() for n in names if isinstance(n, str) and len(n.strip()) >= 2}, key=len, reverse=True)
        if known:
            # Capitalised form only: "Grace" the person, not "grace period".
            pattern = re.compile(r"\b(?:" + "|".join(re.escape(n[0].upper() + n[1:]) for n in known) + r")\b")
            spans.extend(m.span() for m in pattern.finditer(text))
        merged: list[tuple[int, int]] = []
        for s, e in sorted(spans):
            if merged and s <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], e))
            else:
                merged.append((s, e))
        found.extend(PiiSpan(s, e, "name") for s, e in merged if not _overlaps((s, e), taken))
    return sorted(found, key=lambda span: span.start)


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
        The text with ``[EMAIL]``, ``[PHONE]`` and ``[NAME]`` placeholders
        (the spans of :func:`find_pii`); first and last name separated only by
        blanks become one ``[NAME]``.

    Examples
    --------
    >>> mask_pii("Hi Tom,\ncall me on +44 20 7946 0958 or mail maya.smith@acme.io. Invoice INV-48213.")
    'Hi [NAME],\ncall me on [PHONE] or mail [EMAIL]. Invoice INV-48213.'
    >>> mask_pii("Thanks,\nMaya Smith")
    'Thanks,\n[NAME]'
    >>> mask_pii("This is NOT a tin. ISBN 978-3-16-148410-0, lots 2019-2023.")
    'This is NOT a tin. ISBN 978-3-16-148410-0, lots 2019-2023.'
    """
    if not isinstance(text, str):
        return text
    spans = find_pii(text, names=names, emails=emails, phones=phones, person_names=person_names)
    parts: list[str] = []
    pos = 0
    for span in spans:
        gap = text[pos : span.start]
        if span.kind == "name" and parts and parts[-1] == NAME_TOKEN and re.fullmatch(r"[ \t]+", gap):
            pos = span.end  # "[NAME] [NAME]" from first + last name reads better as one placeholder
            continue
        parts.extend([gap, _TOKENS[span.kind]])
        pos = span.end
    parts.append(text[pos:])
    return "".join(parts)


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


def _email_pseudonym(value: str, key: str) -> str:
    digest = hashlib.blake2b(value.strip().lower().encode("utf-8"), digest_size=4, key=key.encode("utf-8")[:64])
    return f"[EMAIL-{digest.hexdigest()}]"


def mask_email_values(frame: pd.DataFrame, *, columns: Sequence[str], key: str = "") -> pd.DataFrame:
    """Mask the e-mail addresses in chosen columns of a table before it is shown or saved.

    A value that is one e-mail address (an id column such as ``user_id``;
    any case, surrounding blanks) becomes ``[EMAIL-<8 hex digits>]``, a keyed
    BLAKE2b digest of the lower-cased address: the same address gets the same
    pseudonym in every table and run with the same *key*, different addresses
    stay different, so counts of distinct users and joins between tables
    still hold. E-mail addresses inside longer text become ``[EMAIL]``.
    Other values, missing values and non-text values are kept.

    The pseudonym is not anonymous: with the default empty *key*, someone who
    guesses an address can compute its pseudonym and confirm the guess. Pass
    a secret *key* when that matters.

    Parameters
    ----------
    frame : pandas.DataFrame
        The table.
    columns : sequence of str
        Columns to mask; columns that the frame does not have are skipped (a
        report may show a table with or without them).
    key : str, default ""
        Key of the digest (at most 64 bytes are used).

    Returns
    -------
    pandas.DataFrame
        A copy of *frame* with the same columns, index and row order; the
        listed columns hold masked values.

    Raises
    ------
    TypeError
        If *frame* is not a DataFrame or *columns* is a single string.

    Examples
    --------
    >>> t = pd.DataFrame({"user_id": [" Maya@Acme.io", "maya@acme.io", "u-17", None], "n": [1, 2, 3, 4]})
    >>> mask_email_values(t, columns=["user_id"])["user_id"].tolist()
    ['[EMAIL-4485f727]', '[EMAIL-4485f727]', 'u-17', None]
    """
    if not isinstance(frame, pd.DataFrame):
        msg = f"mask_email_values: frame must be a pandas DataFrame, got {type(frame).__name__}"
        raise TypeError(msg)
    if isinstance(columns, str):
        msg = (
            f"mask_email_values: columns must be a list of column names, got the string {columns!r}; use [{columns!r}]"
        )
        raise TypeError(msg)
    out = frame.copy()

    def mask(value: Any) -> Any:
        if not isinstance(value, str) or "@" not in value:
            return value
        if _WHOLE_EMAIL.match(value):
            return _email_pseudonym(value, key)
        return _EMAIL.sub(EMAIL_TOKEN, value)

    for column in columns:
        if column in out.columns:
            out[column] = out[column].map(mask)
    return out


# -- the labelled sample and the measurement ------------------------------------------------
_LABEL_FIELDS = {"email": "emails", "phone": "phones", "name": "names"}


def pii_sample_data(path: str | Path | None = None) -> pd.DataFrame:
    """Load a labelled sample of texts with the exact spans that are e-mails, phones and names.

    The bundled sample (:data:`PII_SAMPLE_PATH`) holds 266 short texts written
    for journeylib in the style of support tickets and chats: greetings and
    sign-offs with and without names, names mid-sentence, phone numbers in
    North American, British, German, French, Spanish, Italian, Dutch, Irish,
    Swiss, Swedish, Russian, Indian, Japanese, Australian, Brazilian and South
    African formats, e-mail addresses, ISBNs, order, lot, batch, serial and
    SKU numbers, year ranges, dates, times, versions, IP addresses, amounts,
    shouting words and product names in capitals. Its ``set`` field says how
    it was used: the 206 ``design`` texts were written first and the rules
    were then tuned while reading them, so their figures are optimistic; the
    60 ``fresh`` texts were written after the rules were fixed and were not
    used to change them. Both were written by the same hand as the rules, so
    read the figures as a check, not a benchmark.

    Parameters
    ----------
    path : str or pathlib.Path, optional
        A JSON Lines file with one object per line: ``text``, an optional
        ``set`` and the lists ``names``, ``phones``, ``emails`` (substrings
        of ``text``; every
        occurrence of a listed substring is personal data). Default: the
        bundled sample.

    Returns
    -------
    pandas.DataFrame
        One row per text: ``id`` (the line number if the file has none),
        ``set`` (the line's ``set`` field, ``""`` if none), ``text``, and
        ``spans``, a list of ``(start, end, kind)`` tuples ordered by
        position, ``kind`` one of ``email``, ``phone``, ``name``.

    Raises
    ------
    ValueError
        If a line is not a JSON object with a ``text`` string, or a labelled
        substring does not occur in its text (the message names the line).

    Examples
    --------
    >>> sample = pii_sample_data()
    >>> len(sample) >= 150
    True
    """
    source = Path(path) if path is not None else PII_SAMPLE_PATH
    rows = []
    for line_no, line in enumerate(source.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as exc:
            msg = f"pii_sample_data: {source}, line {line_no}: not valid JSON ({exc})"
            raise ValueError(msg) from exc
        if not isinstance(record, dict) or not isinstance(record.get("text"), str):
            msg = (
                f"pii_sample_data: {source}, line {line_no}: expected an object with a 'text' string, got {line[:80]!r}"
            )
            raise ValueError(msg)
        text = record["text"]
        spans: set[tuple[int, int, str]] = set()
        for kind, field in _LABEL_FIELDS.items():
            labels = record.get(field, [])
            if not isinstance(labels, list) or not all(isinstance(x, str) and x for x in labels):
                msg = f"pii_sample_data: {source}, line {line_no}: {field!r} must be a list of non-empty strings, got {labels!r}"
                raise ValueError(msg)
            for label in labels:
                starts = [m.start() for m in re.finditer(re.escape(label), text)]
                if not starts:
                    msg = f"pii_sample_data: {source}, line {line_no}: {field} label {label!r} does not occur in the text {text!r}"
                    raise ValueError(msg)
                spans.update((s, s + len(label), kind) for s in starts)
        rows.append(
            {"id": record.get("id", line_no), "set": str(record.get("set", "")), "text": text, "spans": sorted(spans)}
        )
    return pd.DataFrame(rows, columns=["id", "set", "text", "spans"])


def masker_evaluation_data(
    sample: pd.DataFrame | None = None,
    *,
    names: Iterable[str] = (),
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Measure the precision and recall of each masker on labelled text.

    A found span counts as correct when it overlaps a labelled span of the
    same kind (``Mr. [NAME]`` for a labelled ``Smith`` is right even if the
    boundaries differ by a title); a labelled span is recalled when a found
    span of the same kind overlaps it. Exact boundary agreement is reported
    separately.

    Parameters
    ----------
    sample : pandas.DataFrame, optional
        ``text`` and ``spans`` as returned by :func:`pii_sample_data` (default:
        the bundled sample).
    names : iterable of str, optional
        Known names passed to :func:`find_pii` (default none: the rules alone).
    alpha : float, default 0.05
        1 - confidence level of the Wilson intervals.

    Returns
    -------
    pandas.DataFrame
        One row per kind (``email``, ``phone``, ``name``):

        ``kind``
            The masker.
        ``texts``
            Texts in the sample (the same for every kind).
        ``labelled``
            Labelled spans of that kind (the recall denominator).
        ``found``
            Spans the masker found (the precision denominator).
        ``correct``
            Found spans that overlap a labelled span of the kind.
        ``recalled``
            Labelled spans overlapped by a found span of the kind.
        ``exact``
            Found spans with exactly the labelled boundaries.
        ``precision``, ``precision_low``, ``precision_high``
            ``correct / found`` and its Wilson interval (NaN if nothing found).
        ``recall``, ``recall_low``, ``recall_high``
            ``recalled / labelled`` and its Wilson interval (NaN if nothing
            labelled).
        ``false_positives``, ``missed``
            The wrongly found and the missed substrings, for reading.

    Raises
    ------
    ValueError
        If *sample* lacks the ``text`` or ``spans`` column.

    Examples
    --------
    >>> ev = masker_evaluation_data()
    >>> list(ev["kind"])
    ['email', 'phone', 'name']
    """
    data = pii_sample_data() if sample is None else sample
    missing = [c for c in ("text", "spans") if c not in data.columns]
    if missing:
        msg = f"masker_evaluation_data: sample lacks column(s) {missing}; expected the frame of pii_sample_data()"
        raise ValueError(msg)
    known = list(names)
    rows = []
    for kind in PII_KINDS:
        labelled = found = correct = recalled = exact = 0
        false_positives: list[str] = []
        missed: list[str] = []
        for text, spans in zip(data["text"], data["spans"], strict=True):
            gold = [(s, e) for s, e, k in spans if k == kind]
            pred = [(p.start, p.end) for p in find_pii(text, names=known) if p.kind == kind]
            labelled += len(gold)
            found += len(pred)
            for p in pred:
                if _overlaps(p, gold):
                    correct += 1
                    exact += p in gold
                else:
                    false_positives.append(text[p[0] : p[1]])
            for g in gold:
                if _overlaps(g, pred):
                    recalled += 1
                else:
                    missed.append(text[g[0] : g[1]])
        rows.append(
            {
                "kind": kind, "texts": len(data), "labelled": labelled, "found": found, "correct": correct,
                "recalled": recalled, "exact": exact, "false_positives": false_positives, "missed": missed,
            }
        )  # fmt: skip
    out = pd.DataFrame(rows)
    p_lo, p_hi = wilson_interval(out["correct"].to_numpy(), out["found"].to_numpy(), alpha=alpha)
    r_lo, r_hi = wilson_interval(out["recalled"].to_numpy(), out["labelled"].to_numpy(), alpha=alpha)
    # correct <= found and recalled <= labelled, so a zero denominator gives 0 / 0 = NaN, never infinity.
    out["precision"] = out["correct"] / out["found"]
    out["recall"] = out["recalled"] / out["labelled"]
    out["precision_low"], out["precision_high"] = p_lo, p_hi
    out["recall_low"], out["recall_high"] = r_lo, r_hi
    columns = [
        "kind", "texts", "labelled", "found", "correct", "recalled", "exact", "precision", "precision_low",
        "precision_high", "recall", "recall_low", "recall_high", "false_positives", "missed",
    ]  # fmt: skip
    return out[columns]
