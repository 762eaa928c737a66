"""Sentiment and emotions of support text, offline, with a scikit-learn interface.

Scorers
-------
A *scorer* turns texts into sentiment. The default, :class:`VaderScorer`, wraps
VADER (``vaderSentiment``: a lexicon of about 7,500 human-rated words and
emoji plus rules for negation, intensifiers, "but", capitals and
exclamation marks; Hutto & Gilbert, ICWSM 2014). It needs no download and no
training. :class:`TfidfLogisticScorer` is a supervised alternative (TF-IDF
word n-grams + multinomial logistic regression) for teams that have labelled
tickets. Any other estimator can be plugged in through configuration with
:func:`make_scorer` and a dotted class path (``"mypkg.scorers.BertScorer"``);
the contract is in :func:`make_scorer`.

Every scorer returns four numbers per text, ``neg``, ``neu``, ``pos`` (shares
in 0..1) and ``compound`` (-1..1), and a **polarity** label from
``compound`` with VADER's published thresholds (:data:`POLARITY_THRESHOLDS`):

* ``positive`` if ``compound >= 0.05``,
* ``negative`` if ``compound <= -0.05``,
* ``neutral`` otherwise.

A text that cannot be scored gets ``NaN`` scores, polarity ``"unscored"`` and
an ``unscored_reason``: empty, not English (see :mod:`journeylib.voice.textclean`),
nothing left after removing quotes and signatures, or, for short text whose
language cannot be told, no word or emoji that the lexicon knows. A neutral
label therefore always means "read, and found neutral"; the column
``lexicon_hits`` says how many sentiment-bearing words were found.

Emoticons (``:)``, ``<3``, ``:(``) are lexicon entries of VADER and are
scored like words. A **rating** in the text (``10/10``, ``1/5``, ``5 stars``,
``4 out of 5``; :func:`journeylib.voice.textclean.find_ratings`) states a
sentiment of its own: the middle of its scale is 0, the top +1, the bottom -1.
A text that is only ratings gets the ratings' mean as ``compound`` (with
``pos``/``neg`` its positive/negative part and ``neu`` the rest); a text with
ratings and words gets the mean of the scorer's compound and the ratings'
(and the mean of their shares). Every scorer that inherits from the
journeylib base does this; each rating counts as one ``lexicon_hits``.

Emotions
--------
:class:`EmotionClassifier` labels a text ``frustration``, ``confusion``,
``satisfaction`` or ``neutral`` with documented cues (see the class): phrase
patterns, question forms, shouting, emoji and the VADER compound. It is a
transparent rule set, not a learned model; its accuracy is measured in
:mod:`journeylib.voice.evaluation` and reported in ``docs/voice-of-customer.md``.
"""

from __future__ import annotations

import functools
import importlib
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from sklearn.utils.validation import check_is_fitted

from journeylib.exceptions import ConfigError
from journeylib.voice import textclean

__all__ = [
    "EMOTIONS",
    "POLARITIES",
    "POLARITY_THRESHOLDS",
    "SCORE_COLUMNS",
    "UNSCORED",
    "EmotionClassifier",
    "TfidfLogisticScorer",
    "VaderScorer",
    "emotion_labels_from_tones",
    "forget_kept_scores",
    "make_scorer",
    "polarity_labels",
    "score_messages",
    "score_texts",
    "score_tickets",
    "training_labels",
]

#: ``(negative_max, positive_min)``: compound <= -0.05 is negative, >= 0.05 positive (VADER's thresholds).
POLARITY_THRESHOLDS: tuple[float, float] = (-0.05, 0.05)
#: Polarity labels, in order.
POLARITIES: tuple[str, ...] = ("negative", "neutral", "positive")
#: Emotion labels, in the order used by tables and charts.
EMOTIONS: tuple[str, ...] = ("frustration", "confusion", "satisfaction", "neutral")
#: Label of a text that was not scored (see ``unscored_reason``).
UNSCORED = "unscored"
#: Feature names of every scorer's ``transform``.
SCORE_COLUMNS: tuple[str, ...] = ("neg", "neu", "pos", "compound")

REASON_NO_LEXICON = "no English word or emoji with a sentiment value (language undetermined)"

#: Tokens of :class:`TfidfLogisticScorer`: words of two or more characters (scikit-learn's
#: default) and emoticons such as ``:)``, ``:-(``, ``;p``, ``<3`` (matched after lower-casing).
TOKEN_PATTERN = r"(?u)\b\w\w+\b|(?<!\S)(?:[:;=8x][-'^o]?[)(\]\[dpo3/\\|*]+|[)(\]\[]+[-']?[:;=]|</?3+)(?=[\s.,!?]|$)"

_LABEL_ALIASES: dict[str, str] = {
    "negative": "negative", "neg": "negative", "neutral": "neutral", "neu": "neutral",
    "positive": "positive", "pos": "positive",
}  # fmt: skip


def training_labels(
    y: Any,
    *,
    negative_threshold: float = POLARITY_THRESHOLDS[0],
    positive_threshold: float = POLARITY_THRESHOLDS[1],
) -> np.ndarray:
    """Turn training labels into polarity labels.

    Parameters
    ----------
    y : sequence of str, bool, int or float
        Labels as a labelled set holds them. Strings are matched without case
        (``negative``/``neutral``/``positive`` or ``neg``/``neu``/``pos``). Labels
        that are all 0 or 1 (numbers, booleans or the strings ``"0"``/``"1"``) are
        binary: 0 is negative, 1 positive. Other numbers are scores labelled with
        the thresholds (as :func:`polarity_labels`), so -1/0/1 is
        negative/neutral/positive.
    negative_threshold, positive_threshold : float
        Thresholds for numeric scores.

    Returns
    -------
    numpy.ndarray of str
        One polarity label per input label.

    Raises
    ------
    ValueError
        If a label is neither a known polarity nor a number, naming the unknown
        values and their first positions.

    Examples
    --------
    >>> training_labels([0, 1, 1]).tolist()
    ['negative', 'positive', 'positive']
    >>> training_labels([-1, 0, 1]).tolist()
    ['negative', 'neutral', 'positive']
    >>> training_labels(["POS", "neg", "Neutral"]).tolist()
    ['positive', 'negative', 'neutral']
    """
    raw = list(y.tolist() if hasattr(y, "tolist") else y)
    if not raw:
        return np.asarray([], dtype=object)
    text = [str(v).strip().lower() for v in raw]
    is_number = [isinstance(v, (int, float, np.number)) for v in raw]  # bool is an int
    if all(is_number) or set(text) <= {"0", "1", "0.0", "1.0", "true", "false"}:
        if set(text) <= {"0", "1", "0.0", "1.0", "true", "false"}:
            return np.asarray(["positive" if t in {"1", "1.0", "true"} else "negative" for t in text], dtype=object)
        return polarity_labels(
            np.asarray(raw, dtype=float), negative_threshold=negative_threshold, positive_threshold=positive_threshold
        )
    out = np.asarray([_LABEL_ALIASES.get(t, "") for t in text], dtype=object)
    bad = [i for i, v in enumerate(out) if not v]
    if bad:
        unknown = sorted({str(raw[i]) for i in bad})
        msg = (
            f"training labels: unknown label(s) {unknown[:10]} (first at position {bad[0]}); allowed: "
            f"{list(POLARITIES)} (any case, or neg/neu/pos), 0/1 for negative/positive, or numeric scores in -1..1"
        )
        raise ValueError(msg)
    return out


def polarity_labels(
    compound: Any,
    *,
    negative_threshold: float = POLARITY_THRESHOLDS[0],
    positive_threshold: float = POLARITY_THRESHOLDS[1],
) -> np.ndarray:
    """Label compound scores ``negative``, ``neutral`` or ``positive``.

    Parameters
    ----------
    compound : array-like of float
        Compound scores in -1..1; ``NaN`` means unscored.
    negative_threshold : float, default -0.05
        Scores at or below it are negative.
    positive_threshold : float, default 0.05
        Scores at or above it are positive.

    Returns
    -------
    numpy.ndarray of str
        One label per score; ``"unscored"`` for ``NaN``.

    Examples
    --------
    >>> polarity_labels([-0.5, 0.0, 0.05, float("nan")]).tolist()
    ['negative', 'neutral', 'positive', 'unscored']
    """
    values = np.asarray(compound, dtype=float)
    out = np.full(values.shape, "neutral", dtype=object)
    out[values <= negative_threshold] = "negative"
    out[values >= positive_threshold] = "positive"
    out[np.isnan(values)] = UNSCORED
    return out


def _as_list(X: Any) -> list[Any]:
    if isinstance(X, str):
        msg = "expected a sequence of texts (a list, array or Series), got a single string; wrap it in a list"
        raise TypeError(msg)
    if isinstance(X, pd.DataFrame):
        if X.shape[1] != 1:
            msg = f"expected one text column, got a DataFrame with {X.shape[1]} columns"
            raise ValueError(msg)
        return X.iloc[:, 0].tolist()
    if isinstance(X, np.ndarray):
        if X.ndim == 2 and X.shape[1] == 1:
            return X[:, 0].tolist()
        if X.ndim != 1:
            msg = f"expected a 1-D sequence of texts, got an array of shape {X.shape}"
            raise ValueError(msg)
        return X.tolist()
    if isinstance(X, Iterable):
        return list(X)
    msg = f"expected a sequence of texts, got {type(X).__name__}"
    raise TypeError(msg)


def _text_input_tags(tags: Any) -> Any:
    """Declare 1-D text input (like ``CountVectorizer``); numeric estimator checks do not apply."""
    tags.input_tags.two_d_array = False
    tags.input_tags.string = True
    return tags


class _TextScorer(BaseEstimator, TransformerMixin):
    """Shared behaviour of the journeylib scorers: cleaning, labels, frames."""

    clean: bool
    max_chars: int
    negative_threshold: float
    positive_threshold: float

    def _validate_params_(self) -> None:
        if not -1.0 <= self.negative_threshold < self.positive_threshold <= 1.0:
            msg = (
                f"{type(self).__name__}: need -1 <= negative_threshold < positive_threshold <= 1; got "
                f"negative_threshold={self.negative_threshold!r}, positive_threshold={self.positive_threshold!r}"
            )
            raise ValueError(msg)
        if int(self.max_chars) < 0:
            msg = f"{type(self).__name__}: max_chars must be >= 0 (0 = no limit); got {self.max_chars!r}"
            raise ValueError(msg)

    def _prepare(self, X: Any) -> pd.DataFrame:
        texts = _as_list(X)
        if self.clean:
            return textclean.clean_texts(texts, max_chars=int(self.max_chars)).reset_index(drop=True)
        # Already-clean text: only the empty/non-text checks apply.
        rows = []
        for t in texts:
            ok = isinstance(t, str) and bool(t.strip())
            rows.append(
                {
                    "text_clean": t if ok else "",
                    "text_scored": t if ok else "",
                    # clean=False means "already clean English": score every non-empty text.
                    "language": "en",
                    "unscored_reason": None if ok else textclean.REASON_EMPTY,
                    "notes": "",
                }
            )
        return pd.DataFrame(rows, columns=["text_clean", "text_scored", "language", "unscored_reason", "notes"])

    def _raw_scores(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover - abstract
        raise NotImplementedError

    def __sklearn_tags__(self) -> Any:
        return _text_input_tags(super().__sklearn_tags__())

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Return the names of the ``transform`` columns: ``neg``, ``neu``, ``pos``, ``compound``."""
        return np.asarray(SCORE_COLUMNS, dtype=object)

    def score_frame(self, X: Any, *, cleaned: pd.DataFrame | None = None) -> pd.DataFrame:
        """Score texts and explain every result.

        Parameters
        ----------
        X : sequence of str
            Raw texts (cleaned first when ``clean=True``).
        cleaned : pandas.DataFrame, optional
            ``journeylib.voice.textclean.clean_texts(X, max_chars=self.max_chars)``
            when the caller has it already (scoring the same texts with
            several scorers): used instead of cleaning again. Only with
            ``clean=True``; one row per text, in order.

        Returns
        -------
        pandas.DataFrame
            One row per text, in input order: ``neg``, ``neu``, ``pos``
            (shares 0..1), ``compound`` (-1..1; NaN when unscored),
            ``polarity`` (negative/neutral/positive/unscored, thresholds in
            :data:`POLARITY_THRESHOLDS`), ``scored`` (bool),
            ``unscored_reason`` (None when scored), ``lexicon_hits``
            (sentiment-bearing tokens found; -1 when the scorer has no
            lexicon), ``language``, ``text_clean``, ``text_scored``,
            ``notes``.
        """
        check_is_fitted(self)
        if cleaned is None:
            prep = self._prepare(X)
        else:
            n_texts = len(X) if hasattr(X, "__len__") else len(_as_list(X))
            if not self.clean or len(cleaned) != n_texts:
                msg = (
                    f"{type(self).__name__}.score_frame: cleaned must be the clean_texts frame of the {n_texts} texts "
                    f"and the scorer must clean (clean=True); got {len(cleaned)} cleaned rows with clean={self.clean!r}"
                )
                raise ValueError(msg)
            prep = cleaned.reset_index(drop=True).copy()
        n = len(prep)
        scores = np.full((n, 4), np.nan)
        hits = np.full(n, -1, dtype=np.int64)
        reasons = prep["unscored_reason"].astype(object).tolist()
        scored_texts = prep["text_scored"].astype(str).tolist()
        languages = prep["language"].tolist()
        notes = prep["notes"].astype(str).tolist()
        todo = [i for i in range(n) if reasons[i] is None]
        if todo:
            # A text's scores, lexicon hits and ratings depend on the text only (scorers score each text on its
            # own): each distinct text is scored once and its results are copied to its rows.
            position: dict[str, int] = {}
            codes = np.fromiter(
                (position.setdefault(scored_texts[i], len(position)) for i in todo), np.int64, len(todo)
            )
            distinct = list(position)
            raw, raw_hits = self._raw_scores(distinct)
            final, final_hits = np.array(raw, dtype=float), np.array(raw_hits, dtype=np.int64)
            rating_notes: dict[int, str] = {}
            for k, text in enumerate(distinct):
                ratings = textclean.find_ratings(text)
                if ratings:
                    final_hits[k] = max(int(raw_hits[k]), 0) + len(ratings)
                    final[k] = _with_ratings(final[k], int(raw_hits[k]), text, ratings)
                    rating_notes[k] = _rating_note(ratings)
            rows = np.asarray(todo, dtype=np.int64)
            scores[rows] = final[codes]
            hits[rows] = final_hits[codes]
            for i, k in zip(todo, codes.tolist(), strict=True):
                if k in rating_notes:
                    notes[i] = "; ".join(x for x in (notes[i], rating_notes[k]) if x)
                elif raw_hits[k] == 0 and languages[i] == "und":
                    reasons[i] = REASON_NO_LEXICON
                    scores[i] = np.nan
        out = pd.DataFrame(scores, columns=list(SCORE_COLUMNS))
        out["polarity"] = polarity_labels(
            out["compound"], negative_threshold=self.negative_threshold, positive_threshold=self.positive_threshold
        )
        out["scored"] = out["compound"].notna()
        out["unscored_reason"] = pd.Series(reasons, dtype=object)
        out["lexicon_hits"] = hits
        out["language"] = prep["language"].to_numpy()
        out["text_clean"] = prep["text_clean"].to_numpy()
        out["text_scored"] = prep["text_scored"].to_numpy()
        absent = "no sentiment-bearing word found: neutral by absence"
        scored = out["scored"].to_numpy()
        out["notes"] = [
            "; ".join(x for x in (note, absent) if x) if ok and h == 0 else note
            for note, ok, h in zip(notes, scored.tolist(), hits.tolist(), strict=True)
        ]
        return out

    def transform(self, X: Any) -> np.ndarray:
        """Return ``neg``, ``neu``, ``pos``, ``compound`` per text (NaN rows when unscored).

        Parameters
        ----------
        X : sequence of str
            Raw texts.

        Returns
        -------
        numpy.ndarray of shape (n_texts, 4)
            Columns as :meth:`get_feature_names_out`.
        """
        return self.score_frame(X)[list(SCORE_COLUMNS)].to_numpy(dtype=float)

    def predict(self, X: Any) -> np.ndarray:
        """Return the polarity label of each text (``"unscored"`` when it cannot be scored).

        Parameters
        ----------
        X : sequence of str
            Raw texts.

        Returns
        -------
        numpy.ndarray of str
            negative, neutral, positive or unscored.
        """
        return self.score_frame(X)["polarity"].to_numpy(dtype=object)


def _rating_shares(compound: float) -> np.ndarray:
    return np.array([max(-compound, 0.0), 1.0 - abs(compound), max(compound, 0.0), compound])


def _with_ratings(scores: np.ndarray, raw_hits: int, text: str, ratings: list[textclean.Rating]) -> np.ndarray:
    """Combine a scorer's four numbers with the ratings of the text (see the module docstring)."""
    rated = _rating_shares(float(np.mean([r.compound for r in ratings])))
    rest = text
    for r in ratings:
        rest = rest.replace(r.text, " ")
    # A lexicon scorer that found nothing, or a text with no words besides its ratings: the ratings decide.
    if raw_hits == 0 or (raw_hits < 0 and not re.search(r"[^\W\d_]{2,}", rest)):
        return rated
    return (np.asarray(scores, dtype=float) + rated) / 2


def _rating_note(ratings: list[textclean.Rating]) -> str:
    parts = ", ".join(f"{r.text} ({r.compound:+.2f})" for r in ratings)
    return f"rating{'s' if len(ratings) > 1 else ''} scored: {parts}"


class VaderScorer(_TextScorer):
    """VADER sentiment of support text, as a scikit-learn transformer.

    ``fit`` learns nothing from the data: it loads VADER's lexicon (shipped in
    the ``vaderSentiment`` package, no download) and validates the
    parameters, so it can sit in a scikit-learn ``Pipeline``.

    Parameters
    ----------
    clean : bool, default True
        Clean texts with :func:`journeylib.voice.textclean.clean_text` first
        (HTML, quotes, signature, greeting, language, truncation).
    max_chars : int, default 5000
        Longest text scored (after cleaning); longer text is cut with a note.
        VADER's compound of a long thread averages many sentences; cutting
        keeps the customer's first, newest words.
    negative_threshold : float, default -0.05
        Compound at or below it is ``negative``.
    positive_threshold : float, default 0.05
        Compound at or above it is ``positive``.

    Attributes
    ----------
    analyzer_ : vaderSentiment.vaderSentiment.SentimentIntensityAnalyzer
        The loaded analyzer.

    Examples
    --------
    >>> scorer = VaderScorer().fit()
    >>> scorer.predict(["The export is broken again.", "Works great, thanks!", "How do I invite my team?"]).tolist()
    ['negative', 'positive', 'positive']
    """

    def __init__(
        self,
        *,
        clean: bool = True,
        max_chars: int = textclean.DEFAULT_MAX_CHARS,
        negative_threshold: float = POLARITY_THRESHOLDS[0],
        positive_threshold: float = POLARITY_THRESHOLDS[1],
    ) -> None:
        self.clean = clean
        self.max_chars = max_chars
        self.negative_threshold = negative_threshold
        self.positive_threshold = positive_threshold

    def fit(self, X: Any = None, y: Any = None) -> VaderScorer:
        """Load the VADER lexicon and check the parameters.

        Parameters
        ----------
        X, y : ignored
            Present for the scikit-learn API.

        Returns
        -------
        VaderScorer
            ``self``.
        """
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        self._validate_params_()
        self.analyzer_ = SentimentIntensityAnalyzer()
        return self

    def _raw_scores(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        analyzer = self.analyzer_
        # The scores of a text depend on the text and the lexicons only: with VADER's own lexicons they are
        # kept by text for the process (the same sentences scored raw and cleaned, or by several scorers).
        cached = _has_default_lexicons(analyzer)
        counter: _HitCounter | None = None  # made when a text is not in the cache (it reads the lexicons)
        out = np.empty((len(texts), 4))
        hits = np.zeros(len(texts), dtype=np.int64)
        for i, text in enumerate(texts):
            if cached and len(text) <= _CACHED_TEXT_CHARS:
                *scores, n_hits = _default_vader_scores(text)
            else:
                if counter is None:
                    counter = _default_counter() if analyzer is _default_analyzer() else _HitCounter(analyzer)
                *scores, n_hits = _vader_scores(text, counter)
            out[i] = scores
            hits[i] = n_hits
        return out, hits


#: Texts up to this length have their VADER scores kept by text (:func:`_default_vader_scores`), at most
#: ``maxsize`` of them: sentences and short tickets, a few tens of megabytes at most.
_CACHED_TEXT_CHARS = 500
#: Tokens whose lexicon answer a :class:`_HitCounter` keeps (a few megabytes).
_KNOWN_TOKENS = 50_000


class _HitCounter:
    """Counts the sentiment-bearing tokens (words, emoticons, emoji) of texts for one VADER analyzer.

    A whitespace token counts when it, its lower case, it without trailing ``.,!?;``, or its lower case
    without surrounding punctuation is a lexicon entry (emoticons are entries only before punctuation is
    stripped); an emoji character counts, once per occurrence, when a word of its description is. The
    answer per token is kept (tokens repeat across texts; at most :data:`_KNOWN_TOKENS`, then forgotten)
    and the emoji that count are listed once.
    """

    def __init__(self, analyzer: Any) -> None:
        self.analyzer = analyzer
        self.lexicon = analyzer.lexicon
        self.tokens: dict[str, bool] = {}
        # Only one-character keys can match a character of the text.
        self.emoji = frozenset(
            ch for ch, desc in analyzer.emojis.items() if desc and any(part in self.lexicon for part in desc.split())
        )

    def _is_hit(self, token: str) -> bool:
        lexicon = self.lexicon
        lower = token.lower()
        return (
            token in lexicon
            or lower in lexicon
            or token.rstrip(".,!?;") in lexicon
            or lower.strip(".,!?;:\"'()[]") in lexicon
        )

    def count(self, text: str) -> int:
        """Return the number of sentiment-bearing tokens and emoji of *text*."""
        known = self.tokens
        if len(known) > _KNOWN_TOKENS:
            known.clear()  # the process-wide counter must not grow with every token ever scored
        n_words = 0
        for token in text.split():
            hit = known.get(token)
            if hit is None:
                hit = known[token] = self._is_hit(token)
            n_words += hit
        n_emoji = sum(text.count(ch) for ch in self.emoji.intersection(text))
        return n_words + n_emoji


def _vader_scores(text: str, counter: _HitCounter) -> tuple[float, float, float, float, int]:
    """VADER's ``neg``, ``neu``, ``pos``, ``compound`` of *text* and its sentiment-bearing tokens (words and emoji)."""
    s = counter.analyzer.polarity_scores(text)
    return s["neg"], s["neu"], s["pos"], s["compound"], counter.count(text)


@functools.lru_cache(maxsize=1)
def _default_analyzer() -> Any:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


@functools.lru_cache(maxsize=1)
def _default_counter() -> _HitCounter:
    return _HitCounter(_default_analyzer())


def _has_default_lexicons(analyzer: Any) -> bool:
    """Whether *analyzer* reads VADER's shipped lexicons (not edited ones), so that cached scores apply to it."""
    default = _default_analyzer()
    if analyzer is default:
        return True
    return bool(analyzer.lexicon == default.lexicon and analyzer.emojis == default.emojis)


@functools.lru_cache(maxsize=65_536)
def _default_vader_scores(text: str) -> tuple[float, float, float, float, int]:
    return _vader_scores(text, _default_counter())


def forget_kept_scores() -> None:
    """Forget the VADER scores kept by text for the process (texts of up to :data:`_CACHED_TEXT_CHARS` characters).

    The scores of a text are kept while tickets are scored, so that the same
    sentence scored raw and cleaned, or by several scorers, is scored once;
    after a whole store's tickets are scored they hold tens of thousands of
    texts (about 20 MB at 10M events) that nothing reads again when the
    scored tickets are kept instead (:meth:`journeylib.Journey.scored_tickets`).
    Scores do not change: a text scored again is scored anew.
    """
    _default_vader_scores.cache_clear()


class TfidfLogisticScorer(_TextScorer):
    """A supervised alternative scorer: TF-IDF word n-grams and logistic regression.

    For teams with labelled tickets (or to compare against VADER on labelled
    text). ``compound`` is ``P(positive) - P(negative)``; ``neg``, ``neu``,
    ``pos`` are the class probabilities (``neu`` is 0 when the training labels
    have no neutral class).

    Parameters
    ----------
    C : float, default 2.0
        Inverse regularisation strength of the logistic regression.
    ngram_max : int, default 2
        Longest word n-gram.
    min_df : int, default 2
        Ignore n-grams seen in fewer texts.
    clean, max_chars, negative_threshold, positive_threshold
        As in :class:`VaderScorer`.
    random_state : int, default 0
        Seed of the solver.

    Attributes
    ----------
    vectorizer_ : sklearn.feature_extraction.text.TfidfVectorizer
        The fitted vectoriser.
    model_ : sklearn.multiclass.OneVsRestClassifier
        The fitted one-vs-rest logistic regressions (liblinear).
    classes_ : numpy.ndarray
        Polarity labels seen in training.

    Examples
    --------
    >>> texts = ["great, thanks", "love it", "broken again", "terrible, cancel", "invoice attached", "update address"]
    >>> y = ["positive", "positive", "negative", "negative", "neutral", "neutral"]
    >>> TfidfLogisticScorer(min_df=1).fit(texts, y).predict(["thanks, love it"]).tolist()
    ['positive']
    """

    def __init__(
        self,
        *,
        C: float = 2.0,
        ngram_max: int = 2,
        min_df: int = 2,
        clean: bool = True,
        max_chars: int = textclean.DEFAULT_MAX_CHARS,
        negative_threshold: float = POLARITY_THRESHOLDS[0],
        positive_threshold: float = POLARITY_THRESHOLDS[1],
        random_state: int = 0,
    ) -> None:
        self.C = C
        self.ngram_max = ngram_max
        self.min_df = min_df
        self.clean = clean
        self.max_chars = max_chars
        self.negative_threshold = negative_threshold
        self.positive_threshold = positive_threshold
        self.random_state = random_state

    def fit(self, X: Any, y: Any) -> TfidfLogisticScorer:
        """Fit on labelled texts.

        Parameters
        ----------
        X : sequence of str
            Raw texts.
        y : sequence of str, bool, int or float
            Polarity labels (negative/neutral/positive, any case, or
            neg/neu/pos), or numbers. Labels that are all 0/1 (or
            ``False``/``True``, or the strings ``"0"``/``"1"``) are binary:
            0 is negative and 1 positive. Other numbers are scores turned
            into labels with the thresholds, as for compound (so -1/0/1 is
            negative/neutral/positive).

        Returns
        -------
        TfidfLogisticScorer
            ``self``.

        Raises
        ------
        ValueError
            If *y* has another length than *X*, holds unknown labels, or fewer
            than two classes remain after dropping unscoreable texts.
        """
        self._validate_params_()
        prep = self._prepare(X)
        labels = training_labels(
            y, negative_threshold=self.negative_threshold, positive_threshold=self.positive_threshold
        )
        if len(labels) != len(prep):
            msg = f"TfidfLogisticScorer.fit: X has {len(prep)} texts but y has {len(labels)} labels"
            raise ValueError(msg)
        keep = prep["unscored_reason"].isna().to_numpy()
        if len(set(labels[keep])) < 2:
            msg = "TfidfLogisticScorer.fit: need at least two polarity classes among the scoreable texts"
            raise ValueError(msg)
        self.vectorizer_ = self._new_vectorizer()
        matrix = self.vectorizer_.fit_transform(prep.loc[keep, "text_scored"].tolist())
        # liblinear (one-vs-rest) is fast on sparse text; probabilities are normalised across classes.
        self.model_ = OneVsRestClassifier(
            LogisticRegression(C=float(self.C), solver="liblinear", max_iter=1000, random_state=self.random_state)
        )
        self.model_.fit(matrix, labels[keep].astype(str))
        self.classes_ = self.model_.classes_
        return self

    def _new_vectorizer(self) -> TfidfVectorizer:
        """Return the unfitted TF-IDF vectoriser of ``fit``."""
        return TfidfVectorizer(
            ngram_range=(1, int(self.ngram_max)),
            min_df=int(self.min_df),
            sublinear_tf=True,
            strip_accents="unicode",
            token_pattern=TOKEN_PATTERN,
        )

    def _raw_scores(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        proba = self.model_.predict_proba(self.vectorizer_.transform(texts))
        cols = {c: i for i, c in enumerate(self.model_.classes_)}
        neg = proba[:, cols["negative"]] if "negative" in cols else np.zeros(len(texts))
        neu = proba[:, cols["neutral"]] if "neutral" in cols else np.zeros(len(texts))
        pos = proba[:, cols["positive"]] if "positive" in cols else np.zeros(len(texts))
        out = np.column_stack([neg, neu, pos, pos - neg])
        return out, np.full(len(texts), -1, dtype=np.int64)


# -- configuration -------------------------------------------------------------------
_ALIASES: dict[str, str] = {
    "vader": "journeylib.voice.sentiment.VaderScorer",
    "tfidf_logistic": "journeylib.voice.sentiment.TfidfLogisticScorer",
}


def make_scorer(spec: Any = None, **params: Any) -> Any:
    """Build a scorer from configuration: an alias, a dotted class path, or an instance.

    The scorer contract: an object with ``fit(X, y=None)`` returning itself
    and either ``score_frame(X)`` returning the columns of
    :meth:`VaderScorer.score_frame`, or ``transform(X)`` returning an array
    whose columns are named by ``get_feature_names_out()`` and include
    ``compound`` in -1..1 (NaN for unscored texts). :func:`score_texts` adds
    the cleaning, labels and reasons for the second kind. A wrapper around a
    ``transformers`` pipeline with a local model fits this contract.

    Parameters
    ----------
    spec : str, object or None
        ``None``, ``""`` or ``"vader"`` for :class:`VaderScorer`;
        ``"tfidf_logistic"`` for :class:`TfidfLogisticScorer`; a dotted path
        ``"package.module.Class"`` (or ``"package.module:Class"``) imported
        and called with *params*; or an estimator instance (returned as is).
    **params
        Keyword arguments of the class.

    Returns
    -------
    object
        An unfitted scorer (or the instance given).

    Raises
    ------
    ConfigError
        If the path cannot be imported, or the object lacks ``fit`` and
        ``transform``/``score_frame``.

    Examples
    --------
    >>> type(make_scorer("vader", max_chars=2000)).__name__
    'VaderScorer'
    >>> type(make_scorer("journeylib.voice.sentiment.VaderScorer")).__name__
    'VaderScorer'
    """
    if spec is None or (isinstance(spec, str) and not spec.strip()):
        spec = "vader"
    if isinstance(spec, str):
        path = _ALIASES.get(spec.strip().lower(), spec.strip())
        module_name, _, attr = path.partition(":") if ":" in path else path.rpartition(".")
        if not module_name or not attr:
            msg = f"scorer {spec!r} is not a dotted path like 'package.module.Class'; aliases: {sorted(_ALIASES)}"
            raise ConfigError([msg], source="scorer")
        try:
            module = importlib.import_module(module_name)
            cls = getattr(module, attr)
        except (ImportError, AttributeError) as exc:
            msg = f"scorer {spec!r} cannot be imported ({exc}); aliases: {sorted(_ALIASES)}"
            raise ConfigError([msg], source="scorer") from exc
        try:
            obj = cls(**params)
        except TypeError as exc:
            msg = f"scorer {spec!r} does not accept the parameters {sorted(params)}: {exc}"
            raise ConfigError([msg], source="scorer") from exc
    else:
        obj = spec
    if not callable(getattr(obj, "fit", None)) or not (
        callable(getattr(obj, "score_frame", None)) or callable(getattr(obj, "transform", None))
    ):
        msg = f"scorer {type(obj).__name__} needs a fit method and a score_frame or transform method"
        raise ConfigError([msg], source="scorer")
    return obj


def _is_fitted(obj: Any) -> bool:
    try:
        check_is_fitted(obj)
    except Exception:
        return False
    return True


def score_texts(texts: Any, *, scorer: Any = None, max_chars: int = textclean.DEFAULT_MAX_CHARS) -> pd.DataFrame:
    """Score texts with any scorer and return the explained frame.

    Parameters
    ----------
    texts : sequence of str
        Raw texts.
    scorer : object, str or None
        A scorer or a :func:`make_scorer` spec; ``None`` for VADER. An
        unfitted scorer is fitted without labels (fine for VADER).
    max_chars : int, default 5000
        Used to clean texts for scorers that only implement ``transform``.

    Returns
    -------
    pandas.DataFrame
        The columns of :meth:`VaderScorer.score_frame`, one row per text.

    Raises
    ------
    ValueError
        If a plug-in scorer's ``transform`` returns no ``compound`` column
        or the wrong number of rows.

    Examples
    --------
    >>> score_texts(["It is broken again!!", ""])[["polarity", "unscored_reason"]].to_dict("list")
    {'polarity': ['negative', 'unscored'], 'unscored_reason': [None, 'empty text']}
    """
    est = make_scorer(scorer) if scorer is None or isinstance(scorer, str) else scorer
    if not _is_fitted(est):
        est = est.fit(None) if isinstance(est, VaderScorer) else est.fit(_as_list(texts))
    if callable(getattr(est, "score_frame", None)):
        return est.score_frame(texts)
    # A plug-in with transform only: clean here, score the scoreable rows.
    prep = textclean.clean_texts(_as_list(texts), max_chars=max_chars).reset_index(drop=True)
    n = len(prep)
    scores = np.full((n, 4), np.nan)
    todo = np.flatnonzero(prep["unscored_reason"].isna().to_numpy())
    if len(todo):
        raw = np.asarray(est.transform(prep.loc[todo, "text_scored"].tolist()), dtype=float)
        names = list(getattr(est, "get_feature_names_out", lambda: ["compound"])())
        if raw.ndim == 1:
            raw = raw.reshape(-1, 1)
        if "compound" not in names or raw.shape[0] != len(todo):
            msg = (
                f"scorer {type(est).__name__}.transform must return one row per text and a 'compound' column "
                f"(got shape {raw.shape}, features {names})"
            )
            raise ValueError(msg)
        for j, col in enumerate(SCORE_COLUMNS):
            if col in names:
                scores[todo, j] = raw[:, names.index(col)]
    out = pd.DataFrame(scores, columns=list(SCORE_COLUMNS))
    out["polarity"] = polarity_labels(out["compound"])
    out["scored"] = out["compound"].notna()
    out["unscored_reason"] = prep["unscored_reason"].astype(object)
    out["lexicon_hits"] = -1
    out["language"] = prep["language"]
    out["text_clean"] = prep["text_clean"]
    out["text_scored"] = prep["text_scored"]
    out["notes"] = prep["notes"]
    return out


# -- emotions ----------------------------------------------------------------------------
def _rx(*patterns: str) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE)


#: Cue patterns and weights of :class:`EmotionClassifier` (documented in docs/voice-of-customer.md).
EMOTION_CUES: dict[str, tuple[tuple[str, float, re.Pattern[str]], ...]] = {
    "frustration": (
        (
            "repeated problem",
            1.0,
            _rx(
                r"\b(?:again|still|every time|(?:second|third|fourth|fifth|nth) (?:time|ticket))\b",
                r"\bkeeps? (?:on )?(?:fail|crash|break|reset|disconnect|vanish|disappear|happen|time|log|dropp)\w*",
                r"\bfor \d+ (?:days|weeks)\b",
                r"\b(?:days|weeks) now\b",
            ),
        ),
        (
            "broken / failing",
            1.0,
            _rx(
                r"\bnothing (?:works|loads|syncs|happens)\b",
                r"\b(?:broken|broke|crash(?:es|ed|ing)?|fail(?:s|ed|ing)?|down|not working|doesn'?t work|isn'?t working|won'?t work|unusable|timing out|lost|vanish\w*|disappear\w*|disconnected|stale|duplicated|wrong|mistake)\b",
            ),
        ),
        (
            "strong negative",
            1.5,
            _rx(
                r"\b(?:unacceptable|ridiculous|terrible|awful|useless|frustrat\w*|annoy\w*|angry|furious|fed up|disappoint\w*|waste of|worst|seriously)\b"
            ),
        ),
        (
            "escalation / churn threat",
            1.5,
            _rx(
                r"\b(?:escalate|refund|cancel\w*|other tools|competitors?|look(?:ing)? (?:at|for) (?:other|another)|considering (?:other|leaving|switching)|switch(?:ing)? to|right fit|justify)\b"
            ),
        ),
        (
            "disappointed",
            1.0,
            _rx(
                r"\b(?:not|isn'?t|wasn'?t) what (?:we|i) (?:expected|paid for|signed up for)\b",
                r"\bexpected (?:better|more)\b",
                r"\bnot (?:happy|satisfied|impressed)\b",
            ),
        ),
        (
            "waiting / ignored",
            1.0,
            _rx(
                r"\bnever (?:finish\w*|answer\w*|repl\w*|respond\w*|work\w*|load\w*|arriv\w*|sync\w*)\b",
                r"\bnobody (?:has )?(?:answered|replied|responded)\b",
                r"\bno (?:answer|reply|response)\b",
                r"\b(?:still )?waiting\b",
                r"\bnothing has happened\b",
                r"\bnot resolved\b",
                r"\bon hold\b",
                r"\bblocking\b",
                r"\blosing (?:time|updates|money)\b",
                r"\bcan'?t work\b",
            ),
        ),
        (
            "sarcasm",
            2.0,
            _rx(
                r"\b(?:great|perfect|wonderful|fantastic|awesome|love how|nice)\b[,!.]*\s+(?:a |an )?(?:another|yet another|again|third|second|fourth)\b",
                r"\bjust what (?:i|we) needed\b",
                r"\bthanks for nothing\b",
                r"\b(?:yeah|oh) (?:right|sure)\b",
                r"\blove how\b.*\b(?:every|always|never|again)\b",
                r"['\"]fixed['\"]",
            ),
        ),
        ("angry emoji", 1.5, _rx("[\U0001f620\U0001f621\U0001f624\U0001f92c\U0001f44e\U0001f644\U0001f612\U0001f4a2]")),
    ),
    "confusion": (
        (
            "how / where / which question",
            1.0,
            _rx(
                r"\b(?:how (?:do|can|does|should|would) (?:i|we|you)|where (?:do|can|is|are)|which (?:\w+ )?(?:do|should|is)|what(?:'s| is) the difference|is (?:there|it) (?:a way|possible)|do (?:i|we) need|can (?:i|we|guests?)|does \w+ support)\b"
            ),
        ),
        (
            "not sure / unclear",
            1.5,
            _rx(
                r"\b(?:not sure|unsure|confus\w*|don'?t understand|unclear|not clear|a bit lost|lost on|can'?t find|couldn'?t find|don'?t see|silly question|am i doing something wrong|wasn'?t sure|wondering|clarify|explain)\b"
            ),
        ),
        (
            "new user",
            0.5,
            _rx(r"\b(?:new to|just signed up|getting started|first time|step-by-step|any pointers|guide)\b"),
        ),
    ),
    "satisfaction": (
        ("thanks / appreciation", 1.0, _rx(r"\b(?:thanks?|thank you|appreciate\w*|grateful|kudos)\b")),
        (
            "praise",
            1.0,
            _rx(
                r"\b(?:great|love\w*|excellent|awesome|amazing|perfect|smooth|painless|snappy|nice work|good work|well done|keep up|happy with|glad|impressed|much (?:faster|better)|big difference|works (?:great|well|perfectly)|sorted|no complaints|went fine|all good)\b"
            ),
        ),
        ("relaxed", 0.5, _rx(r"\b(?:no rush|not urgent|no hurry|just curious|when you have a (?:moment|minute))\b")),
        (
            "happy emoji",
            1.5,
            _rx(
                "[\U0001f60d\U0001f64f\U0001f44d\U0001f389\u2764\U0001f60a\U0001f642\U0001f600\U0001f603\U0001f604\U0001f970\U0001f929\U0001f44f]"
            ),
        ),
    ),
}

_SHOUT_WORD = re.compile(r"\b[A-Z]{3,}\b")
# "not happy", "never great", "isn't smooth": a negated praise cue does not count.
_NEGATED = re.compile(
    r"\b(?:not|never|no|isn'?t|wasn'?t|aren'?t|don'?t|doesn'?t|didn'?t|hardly|far from)\s+(?:\w+\s+)?$", re.IGNORECASE
)


def _matches(pattern: re.Pattern[str], text: str, *, negatable: bool, searched: str | None = None) -> bool:
    """Whether *pattern* matches *text* (a praise cue not negated); *searched* is what it searches instead, same positions."""
    for m in pattern.finditer(text if searched is None else searched):
        if not negatable or not _NEGATED.search(text[max(0, m.start() - 30) : m.start()]):
            return True
    return False


def _ascii_lower_case_pattern(pattern: re.Pattern[str]) -> re.Pattern[str] | None:
    r"""Return *pattern* without ``re.IGNORECASE``, to search the lower case of an ASCII text; None if it would differ.

    On an ASCII character, a case-insensitive pattern's letter matches what
    the same lower-case letter matches case-sensitively in the lower-cased
    character (Unicode's other case variants of ASCII letters, such as the
    Kelvin sign or the long s, are not ASCII), and ``\w``, ``\s``, ``\b`` and
    classes without letters do not depend on case; ``str.lower`` keeps an
    ASCII text's length, so the matches are at the same positions. A
    pattern with an upper-case ASCII letter outside an escape (which the
    lower case would never match), a non-ASCII character that has a case
    (U+212A, the Kelvin sign, matches ``k``), an escape that can name one
    (``\u``, ``\U``, ``\x``, ``\N``, octal) or a back reference, or inline
    flags (a case-sensitive group) gets None.
    """
    source = pattern.pattern
    if (
        not pattern.flags & re.IGNORECASE
        or re.search(r"(?:^|[^\\])(?:\\\\)*(?:[A-Z]|\\[uUxN0-9])|\(\?[-aiLmsux]", source)
        or any(not ch.isascii() and (ch.lower() != ch or ch.upper() != ch) for ch in source)
    ):
        return None
    return re.compile(source, pattern.flags & ~re.IGNORECASE)


#: The cue patterns without ``re.IGNORECASE``, for the lower case of ASCII texts (twice as fast; see
#: :func:`_ascii_lower_case_pattern`): the same matches.
_ASCII_CUES: dict[re.Pattern[str], re.Pattern[str]] = {
    pattern: fast
    for groups in EMOTION_CUES.values()
    for _, _, pattern in groups
    if (fast := _ascii_lower_case_pattern(pattern)) is not None
}


def _cue_scores(text: str) -> tuple[dict[str, float], list[str], bool]:
    """Sum of the weights of the cue groups of each emotion that match *text* (in order), their names, and shouting."""
    sums = dict.fromkeys(EMOTIONS[:3], 0.0)
    fired: list[str] = []
    lowered = text.lower() if text.isascii() else None
    for emotion, groups in EMOTION_CUES.items():
        for name, weight, pattern in groups:
            fast = _ASCII_CUES.get(pattern) if lowered is not None else None
            if (
                _matches(fast, text, negatable=emotion == "satisfaction", searched=lowered)
                if fast is not None
                else _matches(pattern, text, negatable=emotion == "satisfaction")
            ):
                sums[emotion] += weight
                fired.append(f"{emotion}: {name}")
    if len(_SHOUT_WORD.findall(text)) >= 2:
        return sums, fired, True
    letters = "".join(filter(str.isalpha, text))
    caps_share = sum(map(str.isupper, letters)) / len(letters) if len(letters) >= 12 else 0.0
    return sums, fired, caps_share > 0.6


class EmotionClassifier(BaseEstimator, ClassifierMixin):
    """Label support text ``frustration``, ``confusion``, ``satisfaction`` or ``neutral``.

    Method (a transparent rule set; nothing is learned, ``fit`` only loads
    VADER and checks the parameters). For each emotion a score adds the
    weights of the cue groups that match (each group counts once; see
    :data:`EMOTION_CUES`), plus:

    * frustration: ``2 * |compound|`` when VADER's compound is negative
      (``<= -0.05``); +1.0 for shouting (two or more all-capital words of 3+
      letters, or over 60% capitals); +0.5 for ``!!``;
    * confusion: +0.5 per question mark, at most 1.0;
    * satisfaction: ``2 * compound`` when the compound is positive
      (``>= 0.05``), but only if no frustration cue matched (a polite
      "thanks" in a complaint is not satisfaction).

    The label is the emotion with the highest score if that score reaches
    ``threshold``, else ``neutral``; ties go to frustration, then confusion,
    then satisfaction (a missed frustration costs a CSM more than a missed
    compliment). Texts that cannot be read (empty, not English) get
    ``"unscored"``.

    Known limits: sarcasm is caught only in the listed forms ("Great,
    another outage"); irony without them reads as satisfaction. Cues are
    English.

    Parameters
    ----------
    threshold : float, default 1.0
        Lowest winning score for a non-neutral label.
    clean : bool, default True
        Clean texts first (see :class:`VaderScorer`).
    max_chars : int, default 5000
        Longest text read.

    Attributes
    ----------
    classes_ : numpy.ndarray
        :data:`EMOTIONS`.
    analyzer_ : SentimentIntensityAnalyzer
        VADER, for the compound score.

    Examples
    --------
    >>> clf = EmotionClassifier().fit()
    >>> clf.predict(["Still broken after 3 days. Unacceptable.", "How do I add a guest?", "Works great, thanks!"]).tolist()
    ['frustration', 'confusion', 'satisfaction']
    """

    def __init__(
        self, *, threshold: float = 1.0, clean: bool = True, max_chars: int = textclean.DEFAULT_MAX_CHARS
    ) -> None:
        self.threshold = threshold
        self.clean = clean
        self.max_chars = max_chars

    def __sklearn_tags__(self) -> Any:
        return _text_input_tags(super().__sklearn_tags__())

    def fit(self, X: Any = None, y: Any = None) -> EmotionClassifier:
        """Load VADER and check the parameters.

        Parameters
        ----------
        X, y : ignored
            Present for the scikit-learn API.

        Returns
        -------
        EmotionClassifier
            ``self``.
        """
        if not float(self.threshold) > 0:
            msg = f"EmotionClassifier: threshold must be > 0; got {self.threshold!r}"
            raise ValueError(msg)
        self._scorer = VaderScorer(clean=self.clean, max_chars=self.max_chars).fit()
        self.analyzer_ = self._scorer.analyzer_
        self.classes_ = np.asarray(EMOTIONS, dtype=object)
        return self

    def explain(self, X: Any, *, scores: pd.DataFrame | None = None) -> pd.DataFrame:
        """Score every emotion and name the cues that fired.

        Parameters
        ----------
        X : sequence of str
            Raw texts.
        scores : pandas.DataFrame, optional
            The :meth:`VaderScorer.score_frame` of the same texts, to avoid
            scoring twice.

        Returns
        -------
        pandas.DataFrame
            One row per text: ``emotion`` (label or ``"unscored"``),
            ``frustration_score``, ``confusion_score``,
            ``satisfaction_score`` (>= 0; NaN when unreadable), ``cues``
            (``"; "``-joined cue groups that matched, e.g.
            ``"frustration: repeated problem"``).
        """
        check_is_fitted(self)
        frame = scores if scores is not None else self._scorer.score_frame(X)
        texts = frame["text_scored"].tolist()
        compound = frame["compound"].to_numpy(dtype=float)
        n = len(texts)
        # The cues read the text only: each distinct text is matched once (tickets repeat) and its cue
        # scores are copied to its rows; the compound, which may differ between rows of one text, is added
        # per row, in the order the rules state (a row's sum is the same whatever the other rows hold).
        position: dict[str, int] = {}
        codes = np.full(n, -1, dtype=np.int64)
        for i, text in enumerate(texts):
            if text and text.strip():
                codes[i] = position.setdefault(text, len(position))
        readable = codes >= 0
        m = len(position)
        cue_table = np.zeros((m + 1, 3))  # the last row stands for the unreadable texts (code -1)
        shouting = np.zeros(m + 1, dtype=bool)
        bangs = np.zeros(m + 1, dtype=bool)
        questions = np.zeros(m + 1)
        cue_text = [""] * (m + 1)
        for k, text in enumerate(position):
            cue_scores, cue_names, shouting[k] = _cue_scores(text)
            cue_table[k] = [cue_scores[e] for e in EMOTIONS[:3]]
            bangs[k] = "!!" in text
            questions[k] = min(1.0, 0.5 * text.count("?"))
            cue_text[k] = "; ".join([*cue_names, "frustration: shouting"] if shouting[k] else cue_names)
        frustration, confusion, satisfaction = (cue_table[codes, j] for j in range(3))
        scored = readable & ~np.isnan(compound)
        negative = scored & (compound <= POLARITY_THRESHOLDS[0])
        positive = scored & ~negative & (compound >= POLARITY_THRESHOLDS[1]) & (frustration == 0)
        frustration = np.where(negative, frustration + 2 * np.abs(compound), frustration)
        satisfaction = np.where(positive, satisfaction + 2 * compound, satisfaction)
        frustration = np.where(readable & shouting[codes], frustration + 1.0, frustration)
        frustration = np.where(readable & bangs[codes], frustration + 0.5, frustration)
        confusion = np.where(readable, confusion + questions[codes], confusion)
        result = {"frustration": frustration, "confusion": confusion, "satisfaction": satisfaction}
        cues_out = [cue_text[k] for k in codes.tolist()]
        table = np.column_stack([result[e] for e in EMOTIONS[:3]])
        best = table.argmax(axis=1)  # argmax takes the first maximum: frustration, confusion, satisfaction
        labels = np.where(
            table.max(axis=1) >= float(self.threshold), np.asarray(EMOTIONS[:3], dtype=object)[best], "neutral"
        )
        labels = np.where(readable, labels, UNSCORED).astype(object)
        out = pd.DataFrame({"emotion": labels})
        for e in EMOTIONS[:3]:
            out[f"{e}_score"] = np.where(readable, result[e], np.nan)
        out["cues"] = cues_out
        return out

    def predict(self, X: Any) -> np.ndarray:
        """Return the emotion label of each text.

        Parameters
        ----------
        X : sequence of str
            Raw texts.

        Returns
        -------
        numpy.ndarray of str
            frustration, confusion, satisfaction, neutral or unscored.
        """
        return self.explain(X)["emotion"].to_numpy(dtype=object)

    def decision_function(self, X: Any) -> np.ndarray:
        """Return the frustration, confusion and satisfaction scores of each text.

        Parameters
        ----------
        X : sequence of str
            Raw texts.

        Returns
        -------
        numpy.ndarray of shape (n_texts, 3)
            Scores in the order of ``EMOTIONS[:3]``; NaN rows for unreadable texts.
        """
        frame = self.explain(X)
        return frame[[f"{e}_score" for e in EMOTIONS[:3]]].to_numpy(dtype=float)


# -- tickets and messages ----------------------------------------------------------------
_SUBJECT_PREFIX = re.compile(r"^\s*(?:(?:re|fw|fwd|aw|wg|tr|sv)\s*(?:\[\d+\])?\s*:\s*)+", re.IGNORECASE)


def _ticket_texts(tickets: pd.DataFrame) -> tuple[list[str | None], list[str]]:
    """Return the text to read per ticket and the notes of cleaning its body."""
    subjects = (
        tickets["subject"] if "subject" in tickets.columns else pd.Series([None] * len(tickets), index=tickets.index)
    )
    bodies = tickets["body"] if "body" in tickets.columns else pd.Series([None] * len(tickets), index=tickets.index)
    out: list[str | None] = []
    notes: list[str] = []
    # Subjects and bodies are cleaned once per distinct string: exports repeat them (a handful of subject
    # lines, macro replies, auto-responses), and the cleaning depends on the string only.
    subject_done: dict[str, str] = {}
    body_done: dict[str, tuple[str, tuple[str, ...]]] = {}
    for subject, body in zip(subjects.tolist(), bodies.tolist(), strict=True):
        body_text = body if isinstance(body, str) else ""
        if isinstance(subject, str):
            subject_text = subject_done.get(subject)
            if subject_text is None:
                subject_text = subject_done[subject] = _SUBJECT_PREFIX.sub("", subject).strip()
        else:
            subject_text = ""
        if not body_text.strip() and not subject_text:
            out.append(None)
            notes.append("")
            continue
        # The body is cleaned first (its greeting and signature are at its edges);
        # the subject is then a sentence of its own in front of it.
        if body_text.strip():
            known = body_done.get(body_text)
            if known is None:
                known = body_done[body_text] = _clean_body(body_text)
            cleaned, found = known
        else:
            cleaned, found = "", ("empty body; subject only",)
        if subject_text and subject_text[-1] not in ".!?":
            subject_text += "."
        out.append("\n".join(p for p in (subject_text, cleaned) if p))
        notes.append("; ".join(found))
    return out, notes


def _clean_body(body_text: str) -> tuple[str, tuple[str, ...]]:
    """Return a ticket body's own words and the notes of cleaning it (the body holds more than whitespace).

    Only the stripping of :func:`journeylib.voice.textclean.clean_text` is needed here (no length limit):
    the language is checked once, on the subject and body together, by the scorer's cleaning.
    """
    result = textclean.strip_message(body_text)
    found = [n for n in result.notes if n.startswith("HTML")]
    if result.quoted_removed:
        found.append("quoted reply removed")
    if result.signature_removed:
        found.append("signature removed")
    if not result.text:
        found.append(f"body: {result.unscored_reason}; subject only")
    return result.text, tuple(found)


def _check_columns(frame: pd.DataFrame, needed: Sequence[str], *, function: str) -> None:
    if not isinstance(frame, pd.DataFrame):
        msg = f"{function}: expected a tickets DataFrame, got {type(frame).__name__}"
        raise TypeError(msg)
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        msg = f"{function}: the tickets frame lacks column(s) {missing}; columns found: {list(frame.columns)}"
        raise ValueError(msg)


def score_tickets(
    tickets: pd.DataFrame,
    *,
    scorer: Any = None,
    emotions: EmotionClassifier | None = None,
    max_chars: int = textclean.DEFAULT_MAX_CHARS,
) -> pd.DataFrame:
    r"""Score the sentiment and emotion of each ticket (subject + the customer's newest message).

    The text read is the subject (``Re:``/``Fwd:`` removed) followed by the
    body cleaned by :mod:`journeylib.voice.textclean`: quoted earlier replies (the
    agent's), signature, greeting and boilerplate are left out.

    Parameters
    ----------
    tickets : pandas.DataFrame
        Canonical tickets (at least ``ticket_id``, ``subject``, ``body``);
        other columns are kept.
    scorer : object, str or None
        A scorer or :func:`make_scorer` spec; ``None`` for VADER.
    emotions : EmotionClassifier, optional
        The emotion rules (default :class:`EmotionClassifier` with its
        default threshold).
    max_chars : int, default 5000
        Longest text read per ticket.

    Returns
    -------
    pandas.DataFrame
        The input columns (not modified), then ``text_clean`` (what was read,
        for display: unmasked), ``language``, ``compound``, ``neg``, ``neu``,
        ``pos``, ``polarity``, ``scored``, ``unscored_reason``,
        ``lexicon_hits``, ``emotion`` (frustration / confusion /
        satisfaction / neutral / unscored), ``frustration_score``,
        ``confusion_score``, ``satisfaction_score``, ``cues`` and ``notes``.
        In each column of strings, equal strings are one object (a
        pointer per row rather than a string per row; the values are
        those given or computed).

    Raises
    ------
    ValueError
        If ``ticket_id`` or both of ``subject`` and ``body`` are missing.

    Examples
    --------
    >>> t = pd.DataFrame({"ticket_id": ["t1"], "subject": ["Re: Export broken"],
    ...                   "body": ["Hi,\n\nStill broken!!\n\nThanks,\nMaya"]})
    >>> score_tickets(t)[["text_clean", "polarity", "emotion"]].iloc[0].tolist()
    ['Export broken.\nStill broken!!', 'negative', 'frustration']
    """
    _check_columns(tickets, ["ticket_id"], function="score_tickets")
    if "subject" not in tickets.columns and "body" not in tickets.columns:
        msg = "score_tickets: the tickets frame needs a subject or body column"
        raise ValueError(msg)
    columns = _score_ticket_texts(tickets, scorer=scorer, emotions=emotions, max_chars=max_chars)
    out = tickets.reset_index(drop=True).copy()
    for col, values in columns.items():
        out[col] = values
    from journeylib.store.memory import shared_strings  # on first use: this module reads no store

    for col in [c for c in out.columns if pd.api.types.is_object_dtype(out[c].dtype)]:
        out[col] = shared_strings(out[col])
    out.index = tickets.index
    return out


def _score_ticket_texts(
    tickets: pd.DataFrame, *, scorer: Any, emotions: EmotionClassifier | None, max_chars: int
) -> dict[str, np.ndarray]:
    """Return the columns :func:`score_tickets` adds, one value per ticket in order."""
    texts, body_notes = _ticket_texts(tickets)
    est = make_scorer(scorer) if scorer is None or isinstance(scorer, str) else scorer
    if isinstance(est, _TextScorer):
        est = est.set_params(max_chars=max_chars)
    scores = score_texts(texts, scorer=est, max_chars=max_chars)
    clf = emotions if emotions is not None else EmotionClassifier(max_chars=max_chars)
    if not _is_fitted(clf):
        clf = clf.fit()
    # Emotion cues read the same cleaned text; VADER's compound feeds them
    # (a plug-in scorer changes polarity, not the emotion rules).
    vader_frame = scores if isinstance(est, VaderScorer) else clf._scorer.score_frame(texts)
    emo = clf.explain(texts, scores=vader_frame)
    out: dict[str, np.ndarray] = {}
    for col in (
        "text_clean",
        "language",
        "compound",
        "neg",
        "neu",
        "pos",
        "polarity",
        "scored",
        "unscored_reason",
        "lexicon_hits",
    ):
        out[col] = scores[col].to_numpy()
    for col in ("emotion", "frustration_score", "confusion_score", "satisfaction_score", "cues"):
        out[col] = emo[col].to_numpy()
    out["notes"] = np.asarray(
        ["; ".join(x for x in pair if x) for pair in zip(body_notes, scores["notes"].tolist(), strict=True)], dtype=object
    )
    return out


def score_messages(
    tickets: pd.DataFrame, *, scorer: Any = None, max_chars: int = textclean.DEFAULT_MAX_CHARS
) -> pd.DataFrame:
    r"""Score each message of each ticket's conversation separately.

    A body is split by :func:`journeylib.voice.textclean.split_messages` into the
    customer's newest message (part 0) and the quoted earlier messages.

    Parameters
    ----------
    tickets : pandas.DataFrame
        Canonical tickets with ``ticket_id`` and ``body`` (``customer_id``
        and ``created_at`` are carried along if present).
    scorer : object, str or None
        A scorer or :func:`make_scorer` spec; ``None`` for VADER.
    max_chars : int, default 5000
        Longest text read per message.

    Returns
    -------
    pandas.DataFrame
        One row per message: ``ticket_id``, ``customer_id``, ``created_at``
        (the ticket's), ``part`` (0 = newest), ``role`` (customer / quoted),
        ``author`` (from the reply header; personal data: mask before
        display), ``compound``, ``polarity``, ``scored``,
        ``unscored_reason``, ``text_clean``.

    Raises
    ------
    ValueError
        If ``ticket_id`` or ``body`` is missing.

    Examples
    --------
    >>> t = pd.DataFrame({"ticket_id": ["t1"], "body": ["Still broken.\n\nOn Mon, 3 Mar 2025, Tom wrote:\n> Fixed, enjoy!"]})
    >>> score_messages(t)[["role", "polarity"]].values.tolist()
    [['customer', 'negative'], ['quoted', 'positive']]
    """
    _check_columns(tickets, ["ticket_id", "body"], function="score_messages")
    rows: list[dict[str, Any]] = []
    has_c = "customer_id" in tickets.columns
    has_t = "created_at" in tickets.columns
    for rec in tickets.itertuples(index=False):
        for part in textclean.split_messages(rec.body):
            rows.append(
                {
                    "ticket_id": rec.ticket_id,
                    "customer_id": rec.customer_id if has_c else None,
                    "created_at": rec.created_at if has_t else pd.NaT,
                    "part": part.part,
                    "role": part.role,
                    "author": part.author,
                    "text": part.text,
                }
            )
    frame = pd.DataFrame(rows, columns=["ticket_id", "customer_id", "created_at", "part", "role", "author", "text"])
    scores = score_texts(frame["text"].tolist(), scorer=scorer, max_chars=max_chars)
    for col in ("compound", "polarity", "scored", "unscored_reason", "text_clean"):
        frame[col] = scores[col].to_numpy()
    return frame.drop(columns=["text"])


def emotion_labels_from_tones(tones: Iterable[Any], mapping: Mapping[str, str] | None = None) -> list[str]:
    """Map tone labels (``confused``, ``frustrated``, ``satisfied``) to :data:`EMOTIONS`.

    Parameters
    ----------
    tones : iterable of str
        Tone labels, e.g. the synthetic world's ``ticket_labels.tone``.
    mapping : mapping, optional
        Tone to emotion; default confused→confusion, frustrated→frustration,
        satisfied→satisfaction, neutral→neutral.

    Returns
    -------
    list of str
        Emotion labels (unknown tones pass through unchanged).

    Examples
    --------
    >>> emotion_labels_from_tones(["frustrated", "confused"])
    ['frustration', 'confusion']
    """
    table = dict(
        mapping
        or {"confused": "confusion", "frustrated": "frustration", "satisfied": "satisfaction", "neutral": "neutral"}
    )
    return [table.get(str(t), str(t)) for t in tones]
