"""Topics of support text: TF-IDF + NMF, with the number of topics chosen by stability.

:class:`TopicModel` is a scikit-learn transformer. Texts (best: the cleaned
``text_clean`` of :func:`journeylib.voice.sentiment.score_tickets`, so quoted agent
replies and signatures do not become topics) are turned into TF-IDF vectors
of words and word pairs, and factorised by non-negative matrix factorisation
(NMF). Each topic is labelled by its top terms; each text gets the topic
with the largest weight.

Choosing the number of topics
-----------------------------
With ``n_topics="auto"`` the model tries every *k* in ``k_min..k_max``.
For each *k* it measures two things:

* **stability across seeds** (Greene, O'Callaghan & Cunningham, 2014, "How
  many topics? Stability analysis for topic models"): a reference model is
  fitted on all texts and ``n_seeds`` further models on random 80%
  subsamples with other seeds; each topic of a further model is matched
  one-to-one to a reference topic (Hungarian algorithm) by the overlap
  (Jaccard) of their top-10 terms; stability is the mean matched overlap
  (1 = the same topics every time);
* **coherence**: the mean NPMI of each topic's top-10 terms over document
  co-occurrence in the corpus (Bouma, 2009; Röder et al., 2015): high when
  a topic's words really appear together.

The rule: among the *k* whose stability is at least ``min_stability``
(default 0.6: topics that come back under another seed and subsample), take
the one with the highest coherence; if no *k* is that stable, take the most
stable *k*. Both numbers and the reconstruction error of every *k* are kept
in ``k_selection_``, and the chosen model's stability (overall and per
topic) is reported.

Topic words leave out English stop words, support boilerplate (greetings,
sign-offs, "please", "thanks"), numbers and, by default, the words that only
carry tone (VADER lexicon words with ``|valence| >= 1.5`` such as "great",
"terrible"), so that topics say *what* tickets are about and sentiment says
*how* the customer feels.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment
from scipy.sparse import csr_matrix
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.decomposition import NMF
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, TfidfVectorizer
from sklearn.utils.validation import check_is_fitted

from journeylib.exceptions import EmptyResultError

__all__ = ["NO_TOPIC", "SUPPORT_STOP_WORDS", "TopicModel", "topic_stability"]

#: Topic id of a text with none of the topic words.
NO_TOPIC = -1
#: Label of :data:`NO_TOPIC`.
NO_TOPIC_LABEL = "(no topic words)"

#: Boilerplate of support mail that says nothing about the topic.
SUPPORT_STOP_WORDS: frozenset[str] = frozenset(
    [
        "hi",
        "hello",
        "hey",
        "dear",
        "thanks",
        "thank",
        "thx",
        "please",
        "regards",
        "best",
        "cheers",
        "kind",
        "sincerely",
        "morning",
        "afternoon",
        "evening",
        "team",
        "support",
        "sorry",
        "yes",
        "ok",
        "okay",
        "would",
        "could",
        "also",
        "get",
        "got",
        "one",
        "us",
        "let",
        "know",
        "really",
        "just",
        "like",
        "want",
        "wanted",
        "need",
        "needs",
        "quick",
        "question",
        "questions",
        "hope",
        "asap",
        "today",
        "tomorrow",
        "week",
        "weeks",
        "days",
        "day",
        "time",
        "thing",
        "things",
        "way",
        "lot",
        "bit",
        "anyone",
        "someone",
        "something",
        "able",
        "sure",
        "think",
        "thought",
        "see",
        "seems",
        "look",
        "looking",
        "tried",
        "try",
        "trying",
        "use",
        "using",
        "used",
        "make",
        "made",
        "going",
        "go",
        "went",
        "come",
        "came",
        "take",
        "took",
        "said",
        "say",
        "says",
        "back",
        "still",
        "now",
        "new",
        "ve",
        "ll",
        "im",
        "don",
        "didn",
        "doesn",
        "isn",
        "wasn",
        "aren",
        "won",
        "can",
        "cant",
        "re",
        "etc",
        "via",
        "per",
    ]
)


def _jaccard(a: Iterable[str], b: Iterable[str]) -> float:
    sa, sb = set(a), set(b)
    return len(sa & sb) / len(sa | sb) if sa | sb else 1.0


def topic_stability(reference: list[list[str]], other: list[list[str]]) -> tuple[float, np.ndarray]:
    """Match two topic models' top-term lists one-to-one and measure their agreement.

    Parameters
    ----------
    reference, other : list of list of str
        Top terms of each topic of two models with the same number of topics.

    Returns
    -------
    mean : float
        Mean Jaccard overlap of the matched pairs (1 = identical topics).
    per_topic : numpy.ndarray
        For each reference topic, the overlap with its match.

    Examples
    --------
    >>> topic_stability([["a", "b"], ["c", "d"]], [["c", "d"], ["a", "x"]])[0]
    np.float64(0.6666666666666666)
    """
    sim = np.array([[_jaccard(r, o) for o in other] for r in reference])
    rows, cols = linear_sum_assignment(-sim)
    per_topic = np.zeros(len(reference))
    per_topic[rows] = sim[rows, cols]
    return per_topic.mean(), per_topic


def _npmi(binary: csr_matrix, term_index: list[int]) -> float:
    """Mean NPMI of all pairs of *term_index* over document co-occurrence."""
    n_docs = binary.shape[0]
    cols = binary[:, term_index].toarray().astype(bool)
    p = cols.mean(axis=0)
    scores = []
    for i, j in itertools.combinations(range(len(term_index)), 2):
        pij = np.mean(cols[:, i] & cols[:, j])
        if pij == 0 or p[i] == 0 or p[j] == 0:
            scores.append(-1.0)
            continue
        if pij >= 1.0 - 1.0 / (n_docs + 1):
            scores.append(1.0)
            continue
        scores.append(float(np.log(pij / (p[i] * p[j])) / -np.log(pij)))
    return float(np.mean(scores)) if scores else 0.0


class TopicModel(BaseEstimator, TransformerMixin):
    """Unsupervised topics of support text (TF-IDF + NMF), labelled by their top terms.

    Parameters
    ----------
    n_topics : int or "auto", default "auto"
        Number of topics, or ``"auto"`` to choose it by stability across
        seeds (see the module docstring).
    k_min, k_max : int, default 4 and 15
        Range searched when ``n_topics="auto"``.
    n_seeds : int, default 3
        Subsampled models per *k* compared with the reference model (also
        used to report the chosen model's stability when ``n_topics`` is
        fixed; 0 skips the stability measure).
    min_stability : float, default 0.6
        Stability a *k* needs to compete on coherence.
    subsample : float, default 0.8
        Share of texts each subsampled model sees.
    max_features : int, default 2000
        Largest vocabulary.
    min_df : int, default 5
        Ignore terms in fewer texts (1 when there are fewer than ``10 *
        min_df`` texts).
    max_df : float, default 0.3
        Ignore terms in a larger share of texts (boilerplate that survived
        cleaning; ignored below 20 texts).
    ngram_max : int, default 1
        Longest word n-gram (word pairs tend to pick out message templates
        rather than subjects).
    top_n_terms : int, default 10
        Terms listed per topic (and compared for stability).
    label_terms : int, default 3
        Terms in a topic's label.
    drop_tone_words : bool, default True
        Leave out VADER lexicon words with ``|valence| >= 1.5``.
    extra_stop_words : tuple of str or str, default ()
        More words to leave out (e.g. the product's name); a string is split
        at commas.
    random_state : int, default 0
        Seed of the reference model; seed ``random_state + i`` for the others.

    Attributes
    ----------
    n_topics_ : int
        The number of topics used.
    vectorizer_ : TfidfVectorizer
        The fitted vectoriser.
    nmf_ : NMF
        The fitted factorisation (reference model of ``n_topics_``).
    top_terms_ : list of list of str
        Top terms per topic.
    labels_ : list of str
        One label per topic: its first ``label_terms`` terms joined by " · ".
    stability_ : float
        Mean matched top-term overlap of the chosen *k* across seeds.
    topic_stability_ : numpy.ndarray
        The same per topic.
    k_selection_ : pandas.DataFrame
        One row per *k* tried: ``k``, ``stability`` (mean matched Jaccard of
        top terms, 0..1), ``stability_min`` (worst seed), ``coherence_npmi``
        (mean NPMI of the top terms' document co-occurrence, -1..1),
        ``reconstruction_error`` (Frobenius norm of the reference model's
        residual), ``chosen`` (bool).

    Examples
    --------
    >>> texts = ["invoice charged twice refund", "invoice wrong amount refund", "billing invoice refund",
    ...          "slack integration sync failing", "slack sync disconnected", "integration slack sync broken"] * 3
    >>> tm = TopicModel(n_topics=2, min_df=1).fit(texts)
    >>> sorted(tm.labels_)[0].split(" · ")[0] in {"invoice", "refund", "slack", "sync"}
    True
    """

    def __init__(
        self,
        *,
        n_topics: int | str = "auto",
        k_min: int = 4,
        k_max: int = 15,
        n_seeds: int = 3,
        min_stability: float = 0.6,
        subsample: float = 0.8,
        max_features: int = 2000,
        min_df: int = 5,
        max_df: float = 0.3,
        ngram_max: int = 1,
        top_n_terms: int = 10,
        label_terms: int = 3,
        drop_tone_words: bool = True,
        extra_stop_words: tuple[str, ...] | str = (),
        random_state: int = 0,
    ) -> None:
        self.n_topics = n_topics
        self.k_min = k_min
        self.k_max = k_max
        self.n_seeds = n_seeds
        self.min_stability = min_stability
        self.subsample = subsample
        self.max_features = max_features
        self.min_df = min_df
        self.max_df = max_df
        self.ngram_max = ngram_max
        self.top_n_terms = top_n_terms
        self.label_terms = label_terms
        self.drop_tone_words = drop_tone_words
        self.extra_stop_words = extra_stop_words
        self.random_state = random_state

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        return tags

    # -- helpers ---------------------------------------------------------------
    def _stop_words(self) -> list[str]:
        extra = self.extra_stop_words.split(",") if isinstance(self.extra_stop_words, str) else self.extra_stop_words
        words = set(ENGLISH_STOP_WORDS) | SUPPORT_STOP_WORDS | {w.strip().lower() for w in extra if w.strip()}
        # Placeholders left by PII masking ("[NAME]") are not topic words either.
        words |= {"name", "email", "phone"}
        if self.drop_tone_words:
            from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

            lexicon = SentimentIntensityAnalyzer().lexicon
            words |= {w for w, v in lexicon.items() if abs(v) >= 1.5 and w.isalpha()}
        return sorted(words)

    def _fit_nmf(self, matrix: csr_matrix, k: int, seed: int) -> NMF:
        # nndsvda is deterministic given the data; the seed drives the subsample and the solver.
        model = NMF(n_components=k, init="nndsvda", random_state=seed, max_iter=300, tol=1e-3)
        with warnings.catch_warnings():
            # A model that stops at max_iter is still usable for ranking terms.
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(matrix)
        return model

    def _top_terms(self, model: NMF, names: np.ndarray) -> list[list[str]]:
        n = int(self.top_n_terms)
        return [names[np.argsort(row)[::-1][:n]].tolist() for row in model.components_]

    def _validate(self) -> None:
        if isinstance(self.n_topics, str):
            if self.n_topics != "auto":
                msg = f"TopicModel: n_topics must be a positive int or 'auto'; got {self.n_topics!r}"
                raise ValueError(msg)
            if not 2 <= int(self.k_min) <= int(self.k_max):
                msg = f"TopicModel: need 2 <= k_min <= k_max; got k_min={self.k_min}, k_max={self.k_max}"
                raise ValueError(msg)
        elif int(self.n_topics) < 1:
            msg = f"TopicModel: n_topics must be a positive int or 'auto'; got {self.n_topics!r}"
            raise ValueError(msg)
        if not 0.1 <= float(self.subsample) <= 1.0:
            msg = f"TopicModel: subsample must be in [0.1, 1]; got {self.subsample!r}"
            raise ValueError(msg)
        if int(self.n_seeds) < 0:
            msg = f"TopicModel: n_seeds must be >= 0; got {self.n_seeds!r}"
            raise ValueError(msg)

    # -- API -------------------------------------------------------------------
    def fit(self, X: Any, y: Any = None) -> TopicModel:
        """Learn the vocabulary, choose the number of topics and fit the topics.

        Parameters
        ----------
        X : sequence of str
            Texts (cleaned ticket text is best). Missing values count as empty.
        y : ignored
            Present for the scikit-learn API.

        Returns
        -------
        TopicModel
            ``self``.

        Raises
        ------
        EmptyResultError
            If no text has a topic word (e.g. all texts are empty), or there
            are fewer texts with words than topics.
        ValueError
            If a parameter is out of range.
        """
        self._validate()
        texts = [t if isinstance(t, str) else "" for t in _texts(X)]
        self.vectorizer_ = TfidfVectorizer(
            stop_words=self._stop_words(),
            token_pattern=r"(?u)\b[a-zA-Z][a-zA-Z]{2,}\b",
            lowercase=True,
            ngram_range=(1, int(self.ngram_max)),
            min_df=int(self.min_df) if len(texts) >= 10 * int(self.min_df) else 1,
            max_df=float(self.max_df) if len(texts) >= 20 else 1.0,
            max_features=int(self.max_features),
            sublinear_tf=True,
            norm="l2",
        )
        try:
            matrix = self.vectorizer_.fit_transform(texts)
        except ValueError as exc:  # "empty vocabulary"
            msg = f"TopicModel.fit: no topic words in the {len(texts)} texts ({exc}); pass non-empty ticket text"
            raise EmptyResultError(msg) from exc
        rows = np.flatnonzero(matrix.getnnz(axis=1) > 0)
        names = self.vectorizer_.get_feature_names_out()
        k_values = (
            list(range(int(self.k_min), int(self.k_max) + 1)) if self.n_topics == "auto" else [int(self.n_topics)]
        )
        k_values = [k for k in k_values if k <= min(len(rows), len(names))]
        if not k_values:
            msg = (
                f"TopicModel.fit: {len(rows)} texts with topic words and {len(names)} terms are too few for "
                f"{self.n_topics} topics; use fewer topics or more text"
            )
            raise EmptyResultError(msg)
        used = matrix[rows]
        binary = (used > 0).astype(np.int8).tocsr()
        rng = np.random.default_rng(self.random_state)
        subsets = [
            rng.choice(
                used.shape[0], size=max(round(float(self.subsample) * used.shape[0]), max(k_values)), replace=False
            )
            for _ in range(int(self.n_seeds))
        ]
        records = []
        fitted: dict[int, tuple[NMF, np.ndarray, float]] = {}
        for k in k_values:
            ref = self._fit_nmf(used, k, self.random_state)
            ref_terms = self._top_terms(ref, names)
            per_seed = []
            per_topic_sum = np.zeros(k)
            for i, subset in enumerate(subsets, start=1):
                other = self._fit_nmf(used[np.sort(subset)], k, self.random_state + i)
                mean, per_topic = topic_stability(ref_terms, self._top_terms(other, names))
                per_seed.append(mean)
                per_topic_sum += per_topic
            stability = float(np.mean(per_seed)) if per_seed else float("nan")
            per_topic_mean = per_topic_sum / len(per_seed) if per_seed else np.full(k, np.nan)
            vocab = {t: j for j, t in enumerate(names)}
            coherence = float(np.mean([_npmi(binary, [vocab[t] for t in terms]) for terms in ref_terms]))
            records.append(
                {
                    "k": k,
                    "stability": stability,
                    "stability_min": float(np.min(per_seed)) if per_seed else float("nan"),
                    "coherence_npmi": coherence,
                    "reconstruction_error": float(ref.reconstruction_err_),
                }
            )
            fitted[k] = (ref, per_topic_mean, stability)
        table = pd.DataFrame(records)
        if len(table) == 1:
            chosen = int(table["k"].iloc[0])
        elif table["stability"].isna().all():
            chosen = int(table["k"].to_numpy()[int(np.argmax(table["coherence_npmi"].to_numpy()))])
        else:
            stable = table[table["stability"] >= float(self.min_stability)]
            pool = stable if len(stable) else table
            column = "coherence_npmi" if len(stable) else "stability"
            chosen = int(pool["k"].to_numpy()[int(np.argmax(pool[column].to_numpy()))])
        table["chosen"] = table["k"] == chosen
        self.k_selection_ = table
        self.nmf_, self.topic_stability_, self.stability_ = fitted[chosen]
        self.n_topics_ = chosen
        self.top_terms_ = self._top_terms(self.nmf_, names)
        self.labels_ = [" · ".join(terms[: int(self.label_terms)]) for terms in self.top_terms_]
        return self

    def transform(self, X: Any) -> np.ndarray:
        """Return each text's topic weights, each row summing to 1 (0 when it has no topic word).

        Parameters
        ----------
        X : sequence of str
            Texts.

        Returns
        -------
        numpy.ndarray of shape (n_texts, n_topics_)
            Topic shares per text.
        """
        check_is_fitted(self)
        texts = [t if isinstance(t, str) else "" for t in _texts(X)]
        weights = self.nmf_.transform(self.vectorizer_.transform(texts))
        totals = weights.sum(axis=1, keepdims=True)
        return np.divide(weights, totals, out=np.zeros_like(weights), where=totals > 0)

    def predict(self, X: Any) -> np.ndarray:
        """Return each text's topic id (:data:`NO_TOPIC` when it has no topic word).

        Parameters
        ----------
        X : sequence of str
            Texts.

        Returns
        -------
        numpy.ndarray of int
            Topic ids ``0..n_topics_-1`` or ``-1``.
        """
        weights = self.transform(X)
        ids = weights.argmax(axis=1)
        ids[weights.sum(axis=1) == 0] = NO_TOPIC
        return ids

    def label_of(self, topic_ids: Any) -> np.ndarray:
        """Return the label of each topic id (``"(no topic words)"`` for ``-1``).

        Parameters
        ----------
        topic_ids : array-like of int
            Topic ids from :meth:`predict`.

        Returns
        -------
        numpy.ndarray of str
            Labels.
        """
        check_is_fitted(self)
        labels = np.asarray([*self.labels_, NO_TOPIC_LABEL], dtype=object)
        ids = np.asarray(topic_ids, dtype=int)
        return labels[np.where(ids < 0, len(self.labels_), ids)]

    def summary(self, X: Any | None = None, *, examples: int = 2) -> pd.DataFrame:
        """Describe the topics, optionally with counts and example texts.

        Parameters
        ----------
        X : sequence of str, optional
            Texts to count per topic (usually the ones fitted on).
        examples : int, default 2
            Example texts per topic (the highest-weight ones), when *X* is
            given. Mask personal data before display.

        Returns
        -------
        pandas.DataFrame
            One row per topic (plus ``-1`` if some texts have no topic word):
            ``topic`` (id), ``label``, ``top_terms`` (comma-joined),
            ``stability`` (this topic's matched overlap across seeds, 0..1),
            and with *X*: ``texts`` (count), ``share`` (of all texts),
            ``examples`` (`` | ``-joined).
        """
        check_is_fitted(self)
        out = pd.DataFrame(
            {
                "topic": np.arange(self.n_topics_),
                "label": self.labels_,
                "top_terms": [", ".join(t) for t in self.top_terms_],
                "stability": np.round(self.topic_stability_, 3),
            }
        )
        if X is None:
            return out
        texts = [t if isinstance(t, str) else "" for t in _texts(X)]
        weights = self.transform(texts)
        ids = self.predict(texts)
        counts = pd.Series(ids).value_counts()
        out["texts"] = out["topic"].map(counts).fillna(0).astype(int)
        ex = []
        for k in range(self.n_topics_):
            order = np.argsort(weights[:, k])[::-1]
            picked = [texts[i] for i in order if ids[i] == k][: int(examples)]
            ex.append(" | ".join(" ".join(p.split())[:200] for p in picked))
        out["examples"] = ex
        if (ids == NO_TOPIC).any():
            out = pd.concat(
                [
                    out,
                    pd.DataFrame(
                        {"topic": [NO_TOPIC], "label": [NO_TOPIC_LABEL], "top_terms": [""], "stability": [np.nan],
                         "texts": [int((ids == NO_TOPIC).sum())], "examples": [""]}
                    ),
                ],
                ignore_index=True,
            )  # fmt: skip
        out["share"] = out["texts"] / max(len(texts), 1)
        return out[["topic", "label", "top_terms", "stability", "texts", "share", "examples"]]


def _texts(X: Any) -> list[Any]:
    if isinstance(X, str):
        msg = "expected a sequence of texts, got a single string; wrap it in a list"
        raise TypeError(msg)
    if isinstance(X, pd.DataFrame):
        return X.iloc[:, 0].tolist()
    return list(X)
