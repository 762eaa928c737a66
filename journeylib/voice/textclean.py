r"""Support-text cleaning: what a sentiment scorer should (and should not) read.

A ticket body is a conversation, not a message: it carries greetings, the
customer's new text, a signature, legal boilerplate and, often, quoted earlier
replies (from the support agent) below an ``On <date>, <name> wrote:`` line.
Scoring all of it mixes the agent's polite "Thanks for reaching out!" and the
customer's "Thanks,\nMaya" sign-off into the customer's tone. This module
turns raw text into the part worth scoring, and says what it did:

* **HTML** bodies are converted to text (``<br>``/``<p>``/``<div>`` become
  line breaks, ``<script>``/``<style>`` are dropped, entities unescaped);
  ``<blockquote>`` and Gmail/Outlook quote containers are removed as quotes.
* **Quoted replies**: everything from the first reply header (``On ... wrote:``,
  ``-----Original Message-----``, an Outlook ``From:``/``Sent:`` block, and the
  French, German, Spanish, Portuguese and Dutch equivalents) to the end, and
  every line starting with ``>``.
* **Signatures**: from a ``-- `` delimiter, a lone sign-off line (``Thanks,``,
  ``Best regards,``, ``Cheers,`` ... followed by at most four short lines),
  or a ``Sent from my ...`` line, to the end.
* **Boilerplate**: a greeting line at the top (``Hi team,``, ``Good
  morning,`` — VADER reads "good" as positive), confidentiality notices and
  "please consider the environment" footers.
* **Language**: a stop-word heuristic over seven Latin-script languages
  (en, es, fr, de, pt, it, nl) plus a script check (Cyrillic, Greek, Arabic,
  Hebrew, CJK, ...). A short text with too few function words is English when
  it holds an English function word or a word of VADER's English lexicon and
  no other language's function word ("Love it", "Terrible!", "Works great").
  English and undetermined short text are scored; in
  *mixed* text only the English sentences are scored; other languages are
  left unscored with the reason, because the default scorer (VADER) only
  knows English.
* **Emoticons and ratings**: a text of only emoticons (``:)``, ``<3``,
  ``:(``) or ratings (``10/10``, ``1/5``, ``5 stars``, ``4 out of 5``,
  ``★★★★☆``) has content: it is kept and scored, not dropped as "no words"
  (:func:`find_emoticons`, :func:`find_ratings`).
* **Length**: text longer than ``max_chars`` is cut at the last sentence end
  before the limit, with a note.

Nothing here raises on odd input: ``None``, ``NaN``, non-strings, empty or
whitespace-only text come back with ``unscored_reason`` set.
"""

from __future__ import annotations

import functools
import html
import importlib.resources
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

import pandas as pd

__all__ = [
    "DEFAULT_MAX_CHARS",
    "LANGUAGES",
    "CleanText",
    "MessagePart",
    "Rating",
    "StrippedText",
    "clean_text",
    "clean_texts",
    "detect_language",
    "find_emoticons",
    "find_ratings",
    "has_emoji",
    "html_to_text",
    "split_messages",
    "strip_message",
    "strip_quoted",
    "strip_signature",
    "truncate_text",
]

#: Default longest text passed to a scorer (characters, after cleaning).
DEFAULT_MAX_CHARS = 5_000

#: Languages the stop-word heuristic knows, plus the special values.
LANGUAGES: tuple[str, ...] = ("en", "es", "fr", "de", "pt", "it", "nl", "mixed", "other", "und")

# -- unscored reasons (stable strings: tests and reports group by them) ---------------
REASON_EMPTY = "empty text"
REASON_NO_WORDS = "no words left after removing quotes, signature and boilerplate"
REASON_NOT_TEXT = "not text"


def _reason_language(lang: str, detail: str = "") -> str:
    extra = f" ({detail})" if detail else ""
    return f"not English: detected {lang}{extra}; the scorer only reads English"


# -- HTML -----------------------------------------------------------------------
_HTML_HINT = re.compile(r"<\s*(?:[a-zA-Z][a-zA-Z0-9]*)(?:\s[^<>]*)?/?\s*>|&(?:[a-zA-Z]{2,8}|#\d{2,5});")
_BLOCK_TAGS = frozenset(
    {"p", "div", "br", "li", "ul", "ol", "tr", "table", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "section", "article"}
)
_DROP_TAGS = frozenset({"script", "style", "head", "title", "blockquote"})
_QUOTE_CLASSES = ("gmail_quote", "yahoo_quoted", "moz-cite-prefix", "ms-outlook-quote", "divrplyfwdmsg")


class _TextExtractor(HTMLParser):
    """Collect the visible text of an HTML fragment, without quotes."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip_depth = 0
        self.stack: list[tuple[str, bool]] = []
        self.quote_dropped = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        tag = tag.lower()
        attr_text = " ".join(f"{k}={v}" for k, v in attrs if v).lower()
        is_quote = tag == "blockquote" or any(c in attr_text for c in _QUOTE_CLASSES)
        skipping = tag in _DROP_TAGS or is_quote
        if tag in ("br", "hr", "img", "meta", "link", "input"):
            # Void elements never get an end tag.
            if tag in ("br", "hr"):
                self.parts.append("\n")
            return
        self.stack.append((tag, skipping))
        if skipping:
            self.skip_depth += 1
            if is_quote:
                self.quote_dropped = True
        if tag in _BLOCK_TAGS and not self.skip_depth:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        tag = tag.lower()
        # Pop to the matching open tag; tolerate unclosed inner tags.
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i][0] == tag:
                for _, skipping in self.stack[i:]:
                    if skipping:
                        self.skip_depth -= 1
                del self.stack[i:]
                break
        if tag in _BLOCK_TAGS and not self.skip_depth:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skip_depth:
            self.parts.append(data)


def html_to_text(text: str) -> tuple[str, bool]:
    r"""Convert an HTML fragment to plain text.

    Parameters
    ----------
    text : str
        Text that may contain HTML markup.

    Returns
    -------
    text : str
        The visible text: block elements become line breaks, runs of blank
        lines collapse to one, ``<script>``, ``<style>``, ``<blockquote>`` and
        mail-client quote containers are dropped, entities are unescaped.
    quote_dropped : bool
        Whether a quote container was removed.

    Examples
    --------
    >>> html_to_text("<p>Hi&nbsp;team</p><p>It <b>broke</b></p><blockquote>old</blockquote>")
    ('Hi team\n\nIt broke', True)
    """
    parser = _TextExtractor()
    try:
        parser.feed(text)
        parser.close()
    except Exception:  # HTMLParser is lenient, but never let markup crash scoring
        return re.sub(r"<[^>]*>", " ", html.unescape(text)), False
    out = "".join(parser.parts).replace("\xa0", " ")
    out = re.sub(r"[ \t]+", " ", out)
    out = re.sub(r" *\n *", "\n", out)
    out = re.sub(r"\n{3,}", "\n\n", out)
    return out.strip(), parser.quote_dropped


# -- quotes, signatures, boilerplate ----------------------------------------------
_REPLY_HEADERS = [
    r"^\s*On\b.{0,200}\bwrote:\s*$",  # On Mon, 3 Mar 2025 at 10:14, Maya <m@x.io> wrote:
    r"^\s*-{2,}\s*Original Message\s*-{2,}\s*$",
    r"^\s*-{2,}\s*Forwarded message\s*-{2,}\s*$",
    r"^\s*_{10,}\s*$",  # Outlook's rule above the header block
    r"^\s*From:\s.{1,200}\n\s*(?:Sent|Date):\s",  # Outlook header block
    r"^\s*Le\b.{0,200}\ba écrit\s*:\s*$",
    r"^\s*Am\b.{0,200}\bschrieb.{0,80}:\s*$",
    r"^\s*El\b.{0,200}\bescribió\s*:\s*$",
    r"^\s*Em\b.{0,200}\bescreveu\s*:\s*$",
    r"^\s*Op\b.{0,200}\bschreef.{0,80}:\s*$",
]
_REPLY_HEADER = re.compile("|".join(f"(?:{p})" for p in _REPLY_HEADERS), re.MULTILINE | re.IGNORECASE)
_QUOTED_LINE = re.compile(r"^[ \t]*>.*$\n?", re.MULTILINE)

_SIGN_OFF = re.compile(
    r"^[ \t]*(?:thanks(?: again| so much| in advance)?|thank you(?: so much| in advance)?|many thanks|"
    r"thx|best|best regards|best wishes|kind regards|warm regards|regards|cheers|sincerely|yours(?: truly)?|"
    r"all the best|talk soon|br|merci|gracias|danke|grüße|viele grüße|saludos|cordialement|obrigad[oa])"
    r"[ \t]*[,.!]*[ \t]*$",
    re.IGNORECASE | re.MULTILINE,
)
# One to three lines of one to four capitalised words, no sentence punctuation, at the very end.
_NAME_BLOCK = re.compile(r"\n[ \t]*\n(?:[ \t]*[A-Z][\w.'&-]*(?:[ \t]+[A-Z&][\w.'&-]*){0,3}[ \t]*(?:\n|\Z)){1,3}\s*\Z")
_SIG_DELIMITER = re.compile(r"^-- ?$", re.MULTILINE)
_SENT_FROM = re.compile(r"^[ \t]*(?:sent from my|get outlook for|sent via)\b.*$", re.IGNORECASE | re.MULTILINE)
_GREETING = re.compile(
    r"\A[ \t]*(?:hi|hello|hey|hiya|dear|good (?:morning|afternoon|evening|day)|greetings|hallo|hola|bonjour|"
    r"guten tag|olá|ciao)\b[^\n.!?]{0,60}[,!:.]?[ \t]*(?:\n|\Z)",
    re.IGNORECASE,
)
_BOILERPLATE = re.compile(
    r"(?:^|\n)[^\n]*(?:this (?:e-?mail|message)(?: and any attachments?)? (?:is|are|may be) (?:confidential|"
    r"intended)|confidentiality notice|please consider the environment before printing|"
    r"if you (?:have )?received this (?:e-?mail|message) in error)[^\n]*(?:\n[^\n]+)*",
    re.IGNORECASE,
)


def strip_quoted(text: str) -> tuple[str, bool]:
    r"""Remove quoted earlier replies: from the first reply header on, and ``>`` lines.

    Parameters
    ----------
    text : str
        Plain text of a message.

    Returns
    -------
    text : str
        The text above the first reply header, without ``>``-quoted lines.
    removed : bool
        Whether anything was removed.

    Examples
    --------
    >>> strip_quoted("It broke again.\n\nOn Mon, 3 Mar 2025 at 10:14, Tom <t@x.io> wrote:\n> Fixed!")
    ('It broke again.', True)
    """
    out = text
    match = _REPLY_HEADER.search(out)
    if match:
        out = out[: match.start()]
    out2 = _QUOTED_LINE.sub("", out)
    removed = bool(match) or out2 != out
    return out2.strip(), removed


def strip_signature(text: str) -> tuple[str, bool]:
    r"""Remove a signature block from the end of a message.

    A signature starts at a ``-- `` line, a ``Sent from my ...`` line, or a
    line holding only a sign-off (``Thanks,``, ``Best regards``, ``Cheers!``)
    that is followed by at most four short lines (names, titles, companies)
    and nothing else. A sign-off inside a sentence ("Thanks for fixing it")
    is content, not a signature.

    Parameters
    ----------
    text : str
        Plain text of a message, quotes already removed.

    Returns
    -------
    text : str
        The text without its signature.
    removed : bool
        Whether a signature was found.

    Examples
    --------
    >>> strip_signature("It works now, thanks for fixing it.\n\nBest regards,\nMaya Smith\nAcme Ltd")
    ('It works now, thanks for fixing it.', True)
    """
    cut: int | None = None
    for pattern in (_SIG_DELIMITER, _SENT_FROM):
        m = pattern.search(text)
        if m and (cut is None or m.start() < cut):
            cut = m.start()
    for m in _SIGN_OFF.finditer(text):
        tail = [ln for ln in text[m.end() :].splitlines() if ln.strip()]
        if len(tail) <= 4 and all(len(ln.strip()) <= 60 for ln in tail):
            if cut is None or m.start() < cut:
                cut = m.start()
            break
    if cut is None:
        # A bare name block after a blank line ("\n\nMaya Smith\nAcme Ltd").
        m_name = _NAME_BLOCK.search(text)
        if m_name and text[: m_name.start()].strip():
            cut = m_name.start()
    if cut is None:
        return text.strip(), False
    return text[:cut].strip(), True


def _strip_boilerplate(text: str) -> tuple[str, bool]:
    out = _BOILERPLATE.sub("", text)
    greeting = _GREETING.match(out)
    if greeting and out[greeting.end() :].strip():
        out = out[greeting.end() :]
    return out.strip(), out.strip() != text.strip()


# -- language ---------------------------------------------------------------------
# Words that are also common English words ("a", "in", "no", "me", "die") are
# listed under English only, so English text with a Portuguese-looking "a" or
# "as" is not called mixed.
# fmt: off
_STOPWORDS: dict[str, frozenset[str]] = {
    "en": frozenset((
        "the", "and", "is", "are", "was", "were", "to", "of", "it", "this", "that", "with", "for", "not", "have",
        "has", "we", "you", "i", "my", "our", "can", "do", "does", "don't", "doesn't", "be", "on", "at", "but",
        "please", "what", "how", "why", "there", "thanks", "your", "me", "just", "still", "would", "could", "should",
        "when", "where", "which", "will", "been", "i'm", "it's", "can't", "need", "from", "they", "them", "their",
        "about", "into", "than", "some", "any", "all", "if", "or", "as", "an", "so", "get", "got", "no", "in", "a"
    )),
    "es": frozenset((
        "el", "la", "los", "las", "de", "que", "y", "es", "en", "un", "una", "por", "para", "con", "se", "mi", "su",
        "pero", "muy", "está", "gracias", "hola", "cómo", "qué", "tengo", "hay", "problema", "funciona", "del", "al",
        "lo", "le", "sí", "también", "cuando"
    )),
    "fr": frozenset((
        "le", "la", "les", "de", "des", "et", "est", "un", "une", "pour", "pas", "je", "nous", "vous", "avec", "dans",
        "ne", "ce", "mon", "merci", "bonjour", "ça", "sur", "mais", "très", "fonctionne", "du", "au", "il", "elle",
        "sont", "cette", "aussi"
    )),
    "de": frozenset((
        "der", "das", "und", "ist", "nicht", "ich", "wir", "sie", "ein", "eine", "mit", "für", "auf", "es", "zu",
        "bitte", "danke", "hallo", "funktioniert", "kann", "mein", "unser", "aber", "sehr", "noch", "den", "dem",
        "auch", "wie"
    )),
    "pt": frozenset((
        "os", "de", "que", "é", "não", "um", "uma", "para", "com", "em", "por", "meu", "obrigado", "obrigada", "olá",
        "está", "muito", "mas", "você", "funciona", "da", "na", "também"
    )),
    "it": frozenset((
        "il", "lo", "la", "gli", "le", "di", "che", "è", "non", "un", "una", "per", "con", "mi", "grazie", "ciao",
        "sono", "ma", "molto", "funziona", "del", "della", "anche", "come", "questo"
    )),
    "nl": frozenset((
        "de", "het", "een", "en", "niet", "ik", "wij", "met", "voor", "op", "van", "dat", "maar", "bedankt", "hallo",
        "werkt", "graag", "heel", "ook", "nog", "zijn"
    )),
}
# fmt: on
# Each function word and the languages that list it.
_LANGUAGES_OF: dict[str, tuple[str, ...]] = {
    w: tuple(lang for lang, stop in _STOPWORDS.items() if w in stop) for w in frozenset().union(*_STOPWORDS.values())
}
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?", re.UNICODE)
_SENTENCE = re.compile(r"[^.!?\n]+[.!?]*|\n", re.UNICODE)
_NON_LATIN = ("CYRILLIC", "GREEK", "ARABIC", "HEBREW", "CJK", "HIRAGANA", "KATAKANA", "HANGUL", "THAI", "DEVANAGARI")


def _script_of(ch: str) -> str:
    try:
        name = unicodedata.name(ch)
    except ValueError:
        return "OTHER"
    for script in _NON_LATIN:
        if name.startswith(script) or f" {script}" in name:
            return script
    return "LATIN" if "LATIN" in name else "OTHER"


def detect_language(text: str) -> tuple[str, str]:
    """Guess the language of a text with a stop-word and script heuristic.

    Method: letters are classified by Unicode script; if more than half of
    them are in a non-Latin script the language is ``"other"`` (with the
    script named). Otherwise the words are matched against short lists of
    function words of en, es, fr, de, pt, it and nl; the language with the
    most hits wins if it has at least two hits. ``"mixed"`` means English
    and another language each hold at least 30% of the hits (two or more
    each). Fewer than two hits gives ``"und"`` (undetermined: too short).

    Parameters
    ----------
    text : str
        Plain text.

    Returns
    -------
    language : str
        One of :data:`LANGUAGES`.
    detail : str
        Why: the hit counts or the script, for notes.

    Examples
    --------
    >>> detect_language("The export is broken and we need it for the board meeting")[0]
    'en'
    >>> detect_language("La exportación no funciona y la necesito para la reunión")[0]
    'es'
    >>> detect_language("Спасибо, всё работает")[0]
    'other'
    """
    return _detect(text, allow_mixed=True)


def _detect(text: str, *, allow_mixed: bool) -> tuple[str, str]:
    letters = [ch for ch in text if ch.isalpha()] if not text.isascii() else []
    if letters:
        scripts: dict[str, int] = {}
        for ch in letters:
            s = _script_of(ch)
            scripts[s] = scripts.get(s, 0) + 1
        non_latin = {s: n for s, n in scripts.items() if s in _NON_LATIN}
        if non_latin and sum(non_latin.values()) > 0.5 * len(letters):
            main = max(non_latin, key=lambda s: non_latin[s])
            return "other", f"{main.lower()} script"
    words = [w.lower() for w in _WORD.findall(text)]
    hits = dict.fromkeys(_STOPWORDS, 0)
    for w, n in Counter(words).items():
        for lang in _LANGUAGES_OF.get(w, ()):
            hits[lang] += n
    total = sum(hits.values())
    best = max(hits, key=lambda lang: (hits[lang], lang == "en"))
    if hits[best] < 2:
        if hits["en"] == 1 and total == 1:
            return "en", "en=1 (short text, English only)"
        if total == 0:
            known = [w for w in words if w in _english_lexicon()]
            if known:
                return "en", f"short text; English word(s) {', '.join(known[:3])} and no other language's function word"
        return "und", "too few words to tell"
    detail = ", ".join(f"{lang}={n}" for lang, n in sorted(hits.items(), key=lambda kv: -kv[1]) if n)
    en = hits["en"]
    others = {lang: n for lang, n in hits.items() if lang != "en"}
    second = max(others, key=lambda lang: others[lang])
    if allow_mixed and en >= 2 and others[second] >= 2 and min(en, others[second]) >= 0.3 * total:
        # Words shared by many languages inflate the others; only call it mixed
        # when whole sentences disagree.
        langs = {_detect(s, allow_mixed=False)[0] for s in _sentences(text) if len(_WORD.findall(s)) >= 3}
        if "en" in langs and langs - {"en", "und"}:
            return "mixed", detail
        return ("en" if en >= others[second] else second), detail
    return best, detail


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE.findall(text) if s.strip()]


@functools.lru_cache(maxsize=1)
def _vader_lexicon() -> dict[str, float]:
    # VADER's lexicon ships with vaderSentiment (a dependency): token, mean rating, sd, ratings.
    path = importlib.resources.files("vaderSentiment").joinpath("vader_lexicon.txt")
    out: dict[str, float] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split("\t")
        if len(parts) >= 2:
            try:
                out[parts[0]] = float(parts[1])
            except ValueError:
                continue
    return out


# Words of short English support replies that are neither function words nor in VADER's lexicon.
_EN_SHORT_WORDS = frozenset((
    "works", "work", "working", "worked", "fixed", "thank", "yes", "yeah", "very", "much", "now", "again", "too",
    "app", "product", "support", "team", "service", "done", "solved", "resolved", "slow", "fast", "crashes",
    "crashed", "crashing", "bug", "bugs", "issue", "issues", "tool", "nice", "well",
))  # fmt: skip


@functools.lru_cache(maxsize=1)
def _english_lexicon() -> frozenset[str]:
    words = {w for w in _vader_lexicon() if w.isalpha()} | _EN_SHORT_WORDS | _STOPWORDS["en"]
    # A word that is a function word of another language says nothing about English.
    others = frozenset().union(*(stop for lang, stop in _STOPWORDS.items() if lang != "en"))
    return frozenset(words - others)


# -- emoticons and ratings --------------------------------------------------------
_TOKEN_EDGE = ".,!?;"
_LETTER_RUN = re.compile(r"[^\W\d_]{2,}")


def find_emoticons(text: str) -> list[str]:
    """Return the emoticons of *text* that VADER's lexicon rates (``:)``, ``<3``, ``:(``, ``:-/``).

    A whitespace-separated token (trailing ``.,!?;`` removed) is an emoticon when
    it holds no letter run of two or more and VADER's lexicon lists it.

    Parameters
    ----------
    text : str
        Plain text.

    Returns
    -------
    list of str
        The emoticons in order of appearance.

    Examples
    --------
    >>> find_emoticons("thanks :) <3")
    [':)', '<3']
    >>> find_emoticons("???!!! ...")
    []
    """
    lexicon = _vader_lexicon()
    out = []
    for token in text.split():
        for t in (token, token.rstrip(_TOKEN_EDGE)):
            # The lexicon look-ups are cheaper than the letter-run search and rarely succeed: they go first.
            if t and (t in lexicon or t.lower() in lexicon) and not _LETTER_RUN.search(t):
                out.append(t)
                break
    return out


@dataclass(frozen=True)
class Rating:
    """A rating found in text, and the sentiment it states.

    Attributes
    ----------
    text : str
        The matched text (``"10/10"``, ``"5 stars"``).
    value : float
        The rating given.
    scale : float
        The top of its scale (5, 10 or 100; the number of stars for star glyphs).
    low : float
        The bottom of its scale: 1 for scales up to 5 (one star is the worst), 0 above.
    compound : float
        The rating mapped to -1..1: ``2 * (value - low) / (scale - low) - 1``, clipped,
        so the middle of the scale is 0 (neutral), the top +1 and the bottom -1.
    """

    text: str
    value: float
    scale: float
    low: float
    compound: float


_NUMBER_WORDS = {"zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5}
_RATING = re.compile(
    r"(?<![\d/.])(?P<v1>\d{1,3}(?:\.\d)?)\s*/\s*(?P<s1>5|10|100)(?![\d/])"
    r"|(?<![\d.])(?P<v2>\d{1,2}(?:\.\d)?)\s+out\s+of\s+(?P<s2>5|10|100)\b"
    r"|(?<![\w.])(?P<v3>[0-5](?:\.5)?|zero|one|two|three|four|five)[\s-]*stars?\b"
    r"|(?P<glyphs>[★]+[☆]*)",
    re.IGNORECASE,
)


def _without_symbols(text: str) -> str:
    emoticons = set(find_emoticons(text))
    kept = [t for t in text.split() if t not in emoticons and t.rstrip(_TOKEN_EDGE) not in emoticons]
    return _RATING.sub(" ", " ".join(kept))


def find_ratings(text: str) -> list[Rating]:
    """Return the ratings stated in *text*: ``8/10``, ``1/5``, ``4 out of 5``, ``5 stars``, ``★★★☆☆``.

    Dates (``10/10/2024``) and values above their scale are not ratings.

    Parameters
    ----------
    text : str
        Plain text.

    Returns
    -------
    list of Rating
        The ratings in order of appearance.

    Examples
    --------
    >>> [(r.text, r.compound) for r in find_ratings("10/10 would buy again")]
    [('10/10', 1.0)]
    >>> [(r.text, r.compound) for r in find_ratings("1/5, and 3 stars for support")]
    [('1/5', -1.0), ('3 stars', 0.0)]
    >>> find_ratings("see you on 10/10/2024, open 24/7")
    []
    """
    out = []
    for m in _RATING.finditer(text):
        if m.group("glyphs"):
            glyphs = m.group("glyphs")
            value, scale = float(glyphs.count("★")), float(len(glyphs))
            if scale < 3:
                continue
        elif m.group("v3"):
            word = m.group("v3").lower()
            value, scale = float(_NUMBER_WORDS.get(word, word)), 5.0
        else:
            value = float(m.group("v1") or m.group("v2"))
            scale = float(m.group("s1") or m.group("s2"))
        if value > scale:
            continue
        low = 1.0 if scale <= 5 else 0.0
        compound = max(-1.0, min(1.0, 2 * (value - low) / (scale - low) - 1))
        out.append(Rating(m.group(0).strip(), value, scale, low, round(compound, 4)))
    return out


# -- emoji ------------------------------------------------------------------------
_EMOJI = re.compile("[\U0001f300-\U0001faff\U00002600-\U000027bf\U0001f1e6-\U0001f1ff\U00002b00-\U00002bff\U0000fe0f]")


def has_emoji(text: str) -> bool:
    """Tell whether *text* contains an emoji (pictographs, symbols, flags).

    Examples
    --------
    >>> has_emoji("great 👍"), has_emoji("great")
    (True, False)
    """
    return bool(_EMOJI.search(text))


# -- truncation -------------------------------------------------------------------
def truncate_text(text: str, max_chars: int) -> tuple[str, bool]:
    """Cut *text* to at most *max_chars*, at the last sentence end before the limit.

    Parameters
    ----------
    text : str
        Any text.
    max_chars : int
        Largest length kept; ``0`` or less keeps everything.

    Returns
    -------
    text : str
        The kept text (the whole text when it is short enough; cut at a word
        boundary when no sentence ends in the second half of the limit).
    truncated : bool
        Whether anything was cut.

    Examples
    --------
    >>> truncate_text("One. Two three. Four five six.", 20)
    ('One. Two three.', True)
    """
    if max_chars <= 0 or len(text) <= max_chars:
        return text, False
    head = text[:max_chars]
    ends = [m.end() for m in re.finditer(r"[.!?](?=\s|$)", head)]
    if ends and ends[-1] >= max_chars // 2:
        return head[: ends[-1]].strip(), True
    space = head.rfind(" ")
    return (head[:space] if space > max_chars // 2 else head).strip(), True


# -- the pipeline -----------------------------------------------------------------
@dataclass(frozen=True)
class CleanText:
    """The result of :func:`clean_text` for one text.

    Attributes
    ----------
    text_clean : str
        The customer's own words: HTML converted, quotes, signature and
        boilerplate removed, truncated to ``max_chars``. Shown to people.
    text_scored : str
        What a scorer should read: ``text_clean``, or only its English
        sentences when the text is mixed-language; empty when unscored.
    language : str
        One of :data:`LANGUAGES`.
    n_chars_raw : int
        Length of the input.
    n_chars_clean : int
        Length of ``text_clean``.
    was_html : bool
        The input held HTML markup.
    quoted_removed : bool
        Quoted earlier replies were removed.
    signature_removed : bool
        A signature was removed.
    has_emoji : bool
        The text holds emoji (kept: VADER scores them).
    truncated : bool
        The text was cut to ``max_chars``.
    unscored_reason : str or None
        Why the text must not be scored (empty, not English, nothing left);
        ``None`` when it can be scored.
    notes : tuple of str
        Everything else worth knowing (mixed language, truncation, ...).
    """

    text_clean: str
    text_scored: str
    language: str
    n_chars_raw: int
    n_chars_clean: int
    was_html: bool = False
    quoted_removed: bool = False
    signature_removed: bool = False
    has_emoji: bool = False
    truncated: bool = False
    unscored_reason: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)


def _as_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, float) and value != value:  # NaN
        return None
    if value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if not isinstance(value, str):
        return None
    return value


@dataclass(frozen=True)
class StrippedText:
    """The result of :func:`strip_message`: a message without HTML, quotes, signature and boilerplate.

    Attributes
    ----------
    text : str
        The customer's own words, whitespace collapsed (not truncated; its
        language not checked); empty when ``unscored_reason`` is set.
    was_html, quoted_removed, signature_removed, has_emoji : bool
        As in :class:`CleanText`.
    unscored_reason : str or None
        ``REASON_EMPTY`` or ``REASON_NO_WORDS`` (nothing left to read), else ``None``.
    notes : tuple of str
        ``"HTML converted to text"`` and ``"message is only a sign-off; kept as content"`` when they apply.
    """

    text: str
    was_html: bool = False
    quoted_removed: bool = False
    signature_removed: bool = False
    has_emoji: bool = False
    unscored_reason: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)


def strip_message(text: str, *, strip_greeting: bool = True) -> StrippedText:
    r"""Remove HTML, quoted replies, signature and boilerplate from one message: :func:`clean_text` before language and length.

    :func:`clean_text` is this, then truncation and the language check. A
    caller that only needs the customer's words (a ticket body that will be
    read again with its subject) can stop here and skip the language check.

    Parameters
    ----------
    text : str
        The raw text.
    strip_greeting : bool, default True
        Remove a greeting line at the top (``Good morning,``).

    Returns
    -------
    StrippedText
        The stripped text, what was removed, and ``unscored_reason`` when
        nothing is left.

    Examples
    --------
    >>> s = strip_message("<p>Hi Tom,</p><p>The export is broken AGAIN.</p><p>Thanks,<br>Maya</p>")
    >>> s.text, s.signature_removed, s.notes
    ('The export is broken AGAIN.', True, ('HTML converted to text',))
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        return StrippedText("", unscored_reason=REASON_EMPTY)
    notes: list[str] = []
    was_html = bool(_HTML_HINT.search(text))
    quote_in_html = False
    if was_html:
        text, quote_in_html = html_to_text(text)
        notes.append("HTML converted to text")
    text, quoted = strip_quoted(text)
    quoted = quoted or quote_in_html
    before_signature = text
    text, signed = strip_signature(text)
    if signed and not _WORD.search(text):
        # The whole message is a sign-off ("Thanks!"): that is its content.
        text, signed = before_signature, False
        notes.append("message is only a sign-off; kept as content")
    before_greeting = text
    if strip_greeting:
        text, _ = _strip_boilerplate(text)
    else:
        text = _BOILERPLATE.sub("", text).strip()
    if not _WORD.search(text) and _WORD.search(before_greeting):
        text = before_greeting
    text = re.sub(r"[ \t]+", " ", text)
    text = re.sub(r"\n{3,}", "\n\n", text).strip()
    emoji = has_emoji(text)
    # Emoticons and ratings only matter to a text without words or emoji.
    if not text or (not _WORD.search(text) and not emoji and not (find_emoticons(text) or find_ratings(text))):
        return StrippedText("", was_html, quoted, signed, emoji, unscored_reason=REASON_NO_WORDS, notes=tuple(notes))
    return StrippedText(text, was_html, quoted, signed, emoji, notes=tuple(notes))


def clean_text(value: Any, *, max_chars: int = DEFAULT_MAX_CHARS, strip_greeting: bool = True) -> CleanText:
    r"""Clean one support text and decide whether it can be scored.

    Parameters
    ----------
    value : str or None
        The raw text (ticket body, subject + body, or one message). ``None``,
        ``NaN`` and non-strings are reported as unscored, never raised.
    max_chars : int, default 5000
        Longest cleaned text kept; longer text is cut at a sentence end with
        a note. ``0`` keeps everything.
    strip_greeting : bool, default True
        Remove a greeting line at the top (``Good morning,``).

    Returns
    -------
    CleanText
        The cleaned text, what to score, the language and the reasons.

    Examples
    --------
    >>> c = clean_text("Hi Tom,\n\nThe export is broken AGAIN.\n\nThanks,\nMaya")
    >>> c.text_clean, c.signature_removed, c.unscored_reason
    ('The export is broken AGAIN.', True, None)
    >>> clean_text("   ").unscored_reason
    'empty text'
    """
    text = _as_text(value)
    if text is None:
        why = (
            REASON_EMPTY
            if value is None or (not isinstance(value, (bytes, str)) and pd.isna(value))
            else REASON_NOT_TEXT
        )
        return CleanText("", "", "und", 0, 0, unscored_reason=why)
    n_raw = len(text)
    stripped = strip_message(text, strip_greeting=strip_greeting)
    if stripped.unscored_reason == REASON_EMPTY:
        return CleanText("", "", "und", n_raw, 0, unscored_reason=REASON_EMPTY)
    notes = list(stripped.notes)
    was_html, quoted, signed = stripped.was_html, stripped.quoted_removed, stripped.signature_removed
    emoji = stripped.has_emoji
    if stripped.unscored_reason is not None:
        return CleanText(
            "", "", "und", n_raw, 0, was_html, quoted, signed, emoji,
            unscored_reason=stripped.unscored_reason, notes=tuple(notes),
        )  # fmt: skip
    text = stripped.text
    text, truncated = truncate_text(text, max_chars)
    if truncated:
        notes.append(f"truncated from {n_raw:,} to {len(text):,} characters (max_chars={max_chars:,})")
    language, detail = detect_language(text)
    scored = text
    reason: str | None = None
    if language == "mixed":
        english = [s for s in _sentences(text) if _detect(s, allow_mixed=False)[0] in ("en", "und")]
        dropped = len(_sentences(text)) - len(english)
        scored = " ".join(english)
        notes.append(f"mixed language ({detail}); {dropped} non-English sentence(s) not scored")
        if not _WORD.search(scored):
            reason = _reason_language("mixed", "no English sentence")
    elif language == "und" and not _WORD.search(_without_symbols(text)):
        notes.append("no words: emoticons, emoji or ratings scored")
    elif language == "und":
        notes.append("language undetermined (short text); scored as English")
    elif language != "en":
        reason = _reason_language(language, detail)
    if emoji:
        notes.append("emoji kept (scored through the VADER emoji lexicon)")
    return CleanText(
        text_clean=text,
        text_scored="" if reason else scored,
        language=language,
        n_chars_raw=n_raw,
        n_chars_clean=len(text),
        was_html=was_html,
        quoted_removed=quoted,
        signature_removed=signed,
        has_emoji=emoji,
        truncated=truncated,
        unscored_reason=reason,
        notes=tuple(notes),
    )


#: Columns of :func:`clean_texts`, in order.
CLEAN_COLUMNS: tuple[str, ...] = (
    "text_clean",
    "text_scored",
    "language",
    "n_chars_raw",
    "n_chars_clean",
    "was_html",
    "quoted_removed",
    "signature_removed",
    "has_emoji",
    "truncated",
    "unscored_reason",
    "notes",
)


def clean_texts(
    texts: Iterable[Any], *, max_chars: int = DEFAULT_MAX_CHARS, strip_greeting: bool = True
) -> pd.DataFrame:
    """Clean many texts; one row per input, in input order.

    Parameters
    ----------
    texts : iterable of str or None
        Raw texts (a Series keeps its index).
    max_chars : int, default 5000
        See :func:`clean_text`.
    strip_greeting : bool, default True
        See :func:`clean_text`.

    Returns
    -------
    pandas.DataFrame
        ``text_clean`` (str), ``text_scored`` (str; empty when unscored),
        ``language``, ``n_chars_raw``, ``n_chars_clean``, ``was_html``,
        ``quoted_removed``, ``signature_removed``, ``has_emoji``,
        ``truncated`` (bool), ``unscored_reason`` (str or None) and ``notes``
        (``"; "``-joined, empty when none). See :class:`CleanText`.

    Examples
    --------
    >>> clean_texts(["It works, thanks!", None])["unscored_reason"].tolist()
    [None, 'empty text']
    """
    index = texts.index if isinstance(texts, pd.Series) else None
    # clean_text depends on the text only: each distinct string is cleaned once (tickets repeat).
    done: dict[str, CleanText] = {}
    rows = []
    for t in texts:
        if type(t) is str:
            r = done.get(t)
            if r is None:
                r = done[t] = clean_text(t, max_chars=max_chars, strip_greeting=strip_greeting)
        else:
            r = clean_text(t, max_chars=max_chars, strip_greeting=strip_greeting)
        rows.append(r)
    frame = pd.DataFrame(
        {
            "text_clean": [r.text_clean for r in rows],
            "text_scored": [r.text_scored for r in rows],
            "language": [r.language for r in rows],
            "n_chars_raw": [r.n_chars_raw for r in rows],
            "n_chars_clean": [r.n_chars_clean for r in rows],
            "was_html": [r.was_html for r in rows],
            "quoted_removed": [r.quoted_removed for r in rows],
            "signature_removed": [r.signature_removed for r in rows],
            "has_emoji": [r.has_emoji for r in rows],
            "truncated": [r.truncated for r in rows],
            "unscored_reason": pd.Series([r.unscored_reason for r in rows], dtype=object),
            "notes": ["; ".join(r.notes) for r in rows],
        }
    )
    if index is not None:
        frame.index = index
    return frame


# -- conversation parts -------------------------------------------------------------
@dataclass(frozen=True)
class MessagePart:
    """One message of a conversation thread.

    Attributes
    ----------
    part : int
        0 for the newest (top) message, then older quoted messages in order.
    role : str
        ``"customer"`` for the top message (the requester's new text) or
        ``"quoted"`` for an earlier message quoted below it (usually the
        agent's reply, or the customer's previous one).
    author : str
        Who wrote a quoted message, from its reply header (may hold a name
        and an email address: mask before display); empty for the top one.
    text : str
        The message's raw text (quote markers ``>`` removed).
    """

    part: int
    role: str
    author: str
    text: str


_HEADER_AUTHOR = re.compile(r"^\s*On\b.{0,200}?,\s*(?P<author>[^,\n]{1,160}?)\s+wrote:\s*$", re.IGNORECASE)


def split_messages(value: Any) -> list[MessagePart]:
    r"""Split a conversation body into its top message and the quoted earlier ones.

    Each reply header (``On ..., <author> wrote:`` and the other forms of
    :func:`strip_quoted`) starts a new, older message; ``>`` markers are
    removed one level per header. HTML is converted first.

    Parameters
    ----------
    value : str or None
        A ticket body.

    Returns
    -------
    list of MessagePart
        At least one part (the top message; empty text for empty input).

    Examples
    --------
    >>> parts = split_messages("Still broken.\n\nOn Mon, 3 Mar 2025 at 10:14, Tom <t@x.io> wrote:\n> Fixed now!")
    >>> [(p.role, p.text) for p in parts]
    [('customer', 'Still broken.'), ('quoted', 'Fixed now!')]
    """
    text = _as_text(value) or ""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if _HTML_HINT.search(text):
        # Blockquotes hold the older messages in HTML mail: keep them as '>' lines.
        marked = re.sub(r"(?is)<blockquote[^>]*>(.*?)</blockquote>", lambda m: "\n" + _quote_block(m.group(1)), text)
        text, _ = html_to_text(marked)
    parts: list[MessagePart] = []
    author = ""
    role = "customer"
    remaining = text
    while True:
        match = _REPLY_HEADER.search(remaining)
        head = remaining[: match.start()] if match else remaining
        body = (
            "\n".join(ln for ln in head.splitlines() if not ln.lstrip().startswith(">")) if role == "customer" else head
        )
        parts.append(MessagePart(len(parts), role, author, body.strip()))
        if not match:
            break
        header = match.group(0)
        m_author = _HEADER_AUTHOR.match(header.strip())
        author = m_author.group("author").strip() if m_author else header.strip()[:120]
        role = "quoted"
        rest = remaining[match.end() :]
        # Remove one level of '>' from the quoted message.
        remaining = re.sub(r"(?m)^[ \t]*> ?", "", rest, count=0)
        if len(parts) > 50:  # pathological threads: keep the rest as one part
            parts.append(MessagePart(len(parts), "quoted", "", remaining.strip()))
            break
    return parts


def _quote_block(inner: str) -> str:
    text, _ = html_to_text(inner)
    return "\n".join("> " + ln for ln in text.splitlines())
