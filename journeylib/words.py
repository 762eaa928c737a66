"""Words for the plain-English lines: event labels, articles, plurals, percentages and ratios.

Every sentence journeylib writes for a reader goes through these helpers, so an event
stored as ``employee_added`` reads "employee added", a noun gets the article its sound
asks for ("an integration", "a user", "an NPS survey"), counts agree with their noun
("1 customer", "2 customers") and numbers are formatted one way everywhere.

The module imports nothing from journeylib, so any layer may use it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable

__all__ = [
    "event_label",
    "join_words",
    "percent",
    "plural",
    "ratio",
    "reader_message",
    "sentence",
    "with_article",
]

_SEPARATORS = re.compile(r"[_\-.:/]+")
# Split "invoicePaid" / "APIKeyCreated" / "step2Done" at their humps.
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_SPACES = re.compile(r"\s+")


def event_label(name: object) -> str:
    """Return an event name as words a reader sees.

    Underscores, hyphens, dots, colons and slashes become spaces, camelCase humps are
    split, and repeated spaces collapse. Words of a camelCase name are lower-cased
    unless they are acronyms (two or more capitals); names already written with
    separators keep their case.

    Parameters
    ----------
    name : object
        An event name as stored (``str``); ``None`` and NaN give ``""``.

    Returns
    -------
    str
        The label, for example ``"employee added"``.

    Examples
    --------
    >>> event_label("employee_added")
    'employee added'
    >>> event_label("invoicePaid")
    'invoice paid'
    >>> event_label("APIKeyCreated")
    'API key created'
    >>> event_label("Order Completed")
    'Order Completed'
    >>> event_label("page-view.pricing")
    'page view pricing'
    """
    if name is None or (isinstance(name, float) and math.isnan(name)):
        return ""
    text = str(name).strip()
    if not text:
        return ""
    camel = " " not in text and not _SEPARATORS.search(text) and bool(_CAMEL.search(text))
    text = _SEPARATORS.sub(" ", text)
    if camel:
        words = _CAMEL.sub(" ", text).split()
        text = " ".join(w if (sum(c.isupper() for c in w) > 1 or (i == 0 and w.isupper())) else w.lower()
                        for i, w in enumerate(words))
    return _SPACES.sub(" ", text).strip()


# Words that start with a vowel letter but a consonant sound ("a user", "a one-off").
_CONSONANT_SOUND = re.compile(
    r"^(one|once|uni(?!nst|nt|nv|mp|nf|ndent)|use|usu|usa|usi|uti|ura|ure|uro|eu|ewe|ubiq|ufo|uk\b|us\b|u\b)",
    re.IGNORECASE,
)
# Words that start with a consonant letter but a vowel sound ("an hour", "an honest").
_VOWEL_SOUND = re.compile(r"^(hour|honest|honou?r|heir|herb\b)", re.IGNORECASE)
# Letters whose spoken name starts with a vowel sound: "an NPS score", "an SMS", "an API".
_VOWEL_LETTERS = set("AEFHILMNORSX")


def _needs_an(word: str) -> bool:
    letters = word.lstrip("\"'(“‘")
    if not letters:
        return False
    first = letters[0]
    if first.isdigit():
        head = re.match(r"\d+", letters.replace(",", ""))
        n = head.group(0) if head else ""
        # 8, 80, 800 ... are read "eight...", and 11, 18, 11,000, 18,000 ... "eleven", "eighteen"
        return n.startswith("8") or (n[:2] in {"11", "18"} and len(n) % 3 == 2)
    core = re.match(r"[A-Za-z]+", letters)
    token = core.group(0) if core else letters
    if len(token) > 1 and token.isupper() and not re.match(r"^[A-Z][AEIOU]", token):
        # an acronym read letter by letter (NPS, SMS, API, CSV); words like "UNICEF" are rare here
        return token[0] in _VOWEL_LETTERS
    if len(token) == 1:
        return token.upper() in _VOWEL_LETTERS
    if _VOWEL_SOUND.match(token):
        return True
    if _CONSONANT_SOUND.match(token):
        return False
    return first.lower() in "aeiou"


def with_article(phrase: str) -> str:
    """Prefix a noun phrase with "a" or "an", chosen by the sound of its first word.

    Parameters
    ----------
    phrase : str
        A noun phrase in words (pass event names through :func:`event_label` first).

    Returns
    -------
    str
        ``"a <phrase>"`` or ``"an <phrase>"``; an empty phrase gives ``""``.

    Examples
    --------
    >>> with_article("integration")
    'an integration'
    >>> with_article("employee added event")
    'an employee added event'
    >>> with_article("user")
    'a user'
    >>> with_article("hour-long call")
    'an hour-long call'
    >>> with_article("NPS survey")
    'an NPS survey'
    >>> with_article("CSV export")
    'a CSV export'
    >>> with_article("8-day trial")
    'an 8-day trial'
    >>> with_article("14-day trial")
    'a 14-day trial'
    """
    text = str(phrase).strip()
    if not text:
        return ""
    return f"{'an' if _needs_an(text.split()[0]) else 'a'} {text}"


def _plural_noun(noun: str) -> str:
    head, sep, tail = noun.rpartition(" ")
    word = tail
    lower = word.lower()
    if lower.endswith(("s", "x", "z", "ch", "sh")):
        out = word + "es"
    elif lower.endswith("y") and len(lower) > 1 and lower[-2] not in "aeiou":
        out = word[:-1] + "ies"
    else:
        out = word + "s"
    return f"{head}{sep}{out}"


def plural(n: float, noun: str, plural_form: str | None = None) -> str:
    """Return a count with its noun in the right number.

    Parameters
    ----------
    n : float
        The count. Whole numbers are written with thousands separators; other numbers
        with up to one decimal.
    noun : str
        The singular noun (or noun phrase; its last word is inflected).
    plural_form : str, optional
        The plural for nouns the regular rules get wrong ("person" → "people").

    Returns
    -------
    str
        ``"<n> <noun>"`` with the noun singular only when ``n`` is exactly 1.

    Examples
    --------
    >>> plural(1, "customer")
    '1 customer'
    >>> plural(0, "customer")
    '0 customers'
    >>> plural(1234, "ticket")
    '1,234 tickets'
    >>> plural(3, "journey stage")
    '3 journey stages'
    >>> plural(2, "activity")
    '2 activities'
    >>> plural(2, "person", "people")
    '2 people'
    >>> plural(2.5, "day")
    '2.5 days'
    """
    if isinstance(n, float) and math.isnan(n):
        return f"an unknown number of {plural_form or _plural_noun(noun)}"
    if float(n) == int(n):
        count = f"{int(n):,}"
        one = int(n) == 1
    else:
        count = f"{n:,.1f}"
        one = False
    return f"{count} {noun if one else (plural_form or _plural_noun(noun))}"


def percent(x: float, digits: int = 0) -> str:
    """Format a share (0–1) as a percentage.

    A share that is not 0 but rounds to 0 is written ``"<1%"`` (``"<0.1%"`` with one
    digit), and one that is not 1 but rounds to 100 is written ``">99%"``, so a reader
    never sees "0%" for something that happened.

    Parameters
    ----------
    x : float
        The share, between 0 and 1.
    digits : int, default 0
        Decimals after the point.

    Returns
    -------
    str
        For example ``"74%"``; NaN gives ``"n/a"``.

    Examples
    --------
    >>> percent(0.7412)
    '74%'
    >>> percent(0.7412, 1)
    '74.1%'
    >>> percent(0.001)
    '<1%'
    >>> percent(0.999)
    '>99%'
    >>> percent(0.0)
    '0%'
    >>> percent(-0.052)
    '-5%'
    >>> percent(float("nan"))
    'n/a'
    """
    if x is None or math.isnan(float(x)):
        return "n/a"
    if x < 0:
        below = percent(-x, digits)
        return f">-{below[1:]}" if below.startswith("<") else f"-{below}"
    value = float(x) * 100
    step = 10.0 ** (-digits)
    rounded = round(value, digits)
    if value > 0 and rounded == 0:
        return f"<{step:.{digits}f}%"
    if value < 100 and rounded >= 100:
        return f">{100 - step:.{digits}f}%"
    return f"{rounded:.{digits}f}%"


def ratio(x: float, digits: int = 1) -> str:
    """Format a ratio (a risk or rate ratio, a lift) as ``"2.3×"``.

    Parameters
    ----------
    x : float
        The ratio.
    digits : int, default 1
        Decimals after the point. A ratio that is not 0 but rounds to 0 is written
        ``"<0.1×"``.

    Returns
    -------
    str
        For example ``"2.3×"``; NaN gives ``"n/a"`` and infinity ``"∞×"``.

    Examples
    --------
    >>> ratio(2.345)
    '2.3×'
    >>> ratio(0.5)
    '0.5×'
    >>> ratio(0.01)
    '<0.1×'
    >>> ratio(float("inf"))
    '∞×'
    """
    if x is None or math.isnan(float(x)):
        return "n/a"
    if math.isinf(float(x)):
        return "∞×" if x > 0 else "-∞×"
    rounded = round(float(x), digits)
    if x > 0 and rounded == 0:
        return f"<{10.0 ** (-digits):.{digits}f}×"
    return f"{rounded:.{digits}f}×"


def join_words(items: Iterable[object], conjunction: str = "and") -> str:
    """Join words as a reader lists them: "a", "a and b", "a, b and c".

    Parameters
    ----------
    items : iterable of object
        The words, in order; empty strings are skipped.
    conjunction : str, default "and"
        The word before the last item.

    Returns
    -------
    str
        The joined list; no items give ``""``.

    Examples
    --------
    >>> join_words(["plan", "segment", "region"])
    'plan, segment and region'
    >>> join_words(["trial expired"], "or")
    'trial expired'
    """
    words = [str(w) for w in items if str(w)]
    if len(words) <= 1:
        return "".join(words)
    return f"{', '.join(words[:-1])} {conjunction} {words[-1]}"


def sentence(text: str) -> str:
    """Make a line a sentence: capital first letter, one final full stop.

    Parameters
    ----------
    text : str
        The line; a line that already ends in ``.``, ``!`` or ``?`` keeps its ending.

    Returns
    -------
    str
        The sentence.

    Examples
    --------
    >>> sentence("3 customers converted")
    '3 customers converted.'
    >>> sentence("no tickets.")
    'No tickets.'
    """
    out = str(text).strip()
    if not out:
        return ""
    out = out[0].upper() + out[1:]
    return out if out.endswith((".", "!", "?")) else out + "."


#: A message's leading "where" prefix: a Python name (``funnel_data:``, ``Journey.run:``, ``RiskWidget:``, ``to_spark_sql:``).
_CODE_PREFIX = re.compile(r"^\s*(?P<name>[A-Za-z_][\w.]*)(?:\(\))?:\s+")


def reader_message(text: str) -> str:
    """Return an error or warning message as a sentence for a report reader, without its code-name prefix.

    journeylib's messages start with the function or class that raised them
    (``backtest_data: only 3 churners ...``), which helps an analyst and
    means nothing to a reader of a report. A prefix is removed only when it
    is a code name: it contains ``_`` or ``.``, or it is CamelCase with two
    or more capitals (``RiskWidget``); a plain word (``Note:``) stays.
    Whitespace runs (line breaks) become single spaces.

    Parameters
    ----------
    text : str
        The message.

    Returns
    -------
    str
        The message as a sentence (:func:`sentence`); empty for an empty message.

    Examples
    --------
    >>> reader_message("backtest_data: only 3 churners in the test period")
    'Only 3 churners in the test period.'
    >>> reader_message("RiskWidget: segment 'X' has no churner")
    "Segment 'X' has no churner."
    >>> reader_message("Note: the sample has 20 customers")
    'Note: the sample has 20 customers.'
    """
    out = " ".join(str(text).split())
    match = _CODE_PREFIX.match(out)
    if match:
        name = match.group("name")
        if "_" in name or "." in name or sum(c.isupper() for c in name) >= 2:
            out = out[match.end():]
    return sentence(out)
