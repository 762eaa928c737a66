"""Tests of journeylib.voice.topics: recovery of clear topics, the choice of k, stability, edge cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils import estimator_checks

from journeylib.exceptions import EmptyResultError
from journeylib.voice.topics import NO_TOPIC, TopicModel, topic_stability

RNG = np.random.default_rng(0)
VOCAB = {
    "billing": ["invoice", "refund", "charged", "billing", "payment", "vat", "seats", "plan"],
    "integrations": ["slack", "jira", "sync", "integration", "github", "webhook", "connected", "zoom"],
    "permissions": ["admin", "role", "access", "permissions", "sso", "guest", "owner", "member"],
}
FILLER = ["today", "team", "please", "thanks", "the", "our", "with", "and"]


def _corpus(n_per_topic: int = 40) -> tuple[list[str], list[str]]:
    texts, truth = [], []
    for topic, words in VOCAB.items():
        for _ in range(n_per_topic):
            picked = list(RNG.choice(words, size=5, replace=True)) + list(RNG.choice(FILLER, size=3))
            RNG.shuffle(picked)
            texts.append(" ".join(picked))
            truth.append(topic)
    return texts, truth


TEXTS, TRUTH = _corpus()


def test_fixed_k_recovers_clear_topics() -> None:
    model = TopicModel(n_topics=3, n_seeds=2, min_df=2).fit(TEXTS)
    ids = model.predict(TEXTS)
    table = pd.crosstab(pd.Series(TRUTH, name="truth"), pd.Series(ids, name="topic"))
    # each true topic lands (almost) entirely in one model topic, a different one each
    assert (table.max(axis=1) / table.sum(axis=1)).min() >= 0.95
    assert table.idxmax(axis=1).nunique() == 3
    for label, terms in zip(model.labels_, model.top_terms_, strict=True):
        owner = [t for t, words in VOCAB.items() if terms[0] in words]
        assert owner, f"top term {terms[0]!r} of {label!r} is not a topic word"
        assert label.count(" · ") == 2


def test_auto_k_is_chosen_by_the_stated_rule_and_reported() -> None:
    model = TopicModel(k_min=2, k_max=5, n_seeds=2, min_df=2).fit(TEXTS)
    table = model.k_selection_
    assert list(table.columns) == [
        "k",
        "stability",
        "stability_min",
        "coherence_npmi",
        "reconstruction_error",
        "chosen",
    ]
    assert table["k"].tolist() == [2, 3, 4, 5]
    assert table["chosen"].sum() == 1
    stable = table[table["stability"] >= model.min_stability]
    expected = (
        int(stable.loc[stable["coherence_npmi"].idxmax(), "k"])
        if len(stable)
        else int(table.loc[table["stability"].idxmax(), "k"])
    )
    assert model.n_topics_ == expected
    assert model.n_topics_ == 3  # the planted number of topics
    assert ((table["stability"] >= 0) & (table["stability"] <= 1)).all()
    assert 0 <= model.stability_ <= 1
    assert len(model.topic_stability_) == model.n_topics_


def test_topic_stability_hand_case() -> None:
    mean, per_topic = topic_stability([["a", "b"], ["c", "d"]], [["c", "d"], ["a", "x"]])
    # a,b <-> a,x: 1/3; c,d <-> c,d: 1
    assert per_topic.tolist() == pytest.approx([1 / 3, 1.0])
    assert mean == pytest.approx(2 / 3)


def test_transform_rows_are_shares_and_no_topic_words_give_minus_one() -> None:
    model = TopicModel(n_topics=3, n_seeds=0, min_df=2).fit(TEXTS)
    weights = model.transform(["invoice refund charged", "", "zzz qqq"])
    assert weights.shape == (3, 3)
    assert weights[0].sum() == pytest.approx(1.0)
    assert weights[1].sum() == 0.0
    ids = model.predict(["invoice refund charged", "", "zzz qqq"])
    assert ids[1] == NO_TOPIC
    assert ids[2] == NO_TOPIC
    assert model.label_of(ids)[1] == "(no topic words)"


def test_summary_counts_every_text() -> None:
    model = TopicModel(n_topics=3, n_seeds=1, min_df=2).fit(TEXTS)
    summary = model.summary([*TEXTS, ""], examples=1)
    assert list(summary.columns) == ["topic", "label", "top_terms", "stability", "texts", "share", "examples"]
    assert summary["texts"].sum() == len(TEXTS) + 1
    assert summary["share"].sum() == pytest.approx(1.0)
    assert summary["topic"].tolist()[-1] == NO_TOPIC


def test_results_do_not_depend_on_the_seed_for_clear_topics() -> None:
    a = TopicModel(n_topics=3, n_seeds=0, random_state=1, min_df=2).fit(TEXTS)
    b = TopicModel(n_topics=3, n_seeds=0, random_state=2, min_df=2).fit(TEXTS)
    # each topic has 8 real words; the 9th and 10th terms are noise, so compare the top 6
    assert sorted(frozenset(t[:6]) for t in a.top_terms_) == sorted(frozenset(t[:6]) for t in b.top_terms_)


def test_stop_words_tone_words_and_pii_placeholders_are_not_topic_words() -> None:
    texts = [f"{t} planwise terrible [NAME]" for t in TEXTS]
    model = TopicModel(n_topics=3, n_seeds=0, min_df=2, extra_stop_words="planwise, other").fit(texts)
    words = {w for terms in model.top_terms_ for w in terms}
    assert not words & {"planwise", "terrible", "name", "thanks", "please"}


def test_errors() -> None:
    with pytest.raises(EmptyResultError, match="no topic words"):
        TopicModel(n_topics=2).fit(["", None, "the and"])
    with pytest.raises(EmptyResultError, match="too few"):
        TopicModel(n_topics=50, n_seeds=0, min_df=1).fit(["invoice refund", "slack sync"])
    with pytest.raises(ValueError, match="n_topics must be"):
        TopicModel(n_topics="many").fit(TEXTS)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="k_min <= k_max"):
        TopicModel(k_min=5, k_max=3).fit(TEXTS)
    with pytest.raises(NotFittedError):
        TopicModel().transform(["x"])
    with pytest.raises(TypeError, match="single string"):
        TopicModel().fit("one text")


@pytest.mark.parametrize(
    "check",
    [
        estimator_checks.check_get_params_invariance,
        estimator_checks.check_set_params,
        estimator_checks.check_no_attributes_set_in_init,
        estimator_checks.check_parameters_default_constructible,
        estimator_checks.check_do_not_raise_errors_in_init_or_set_params,
    ],
    ids=lambda f: f.__name__,
)
def test_sklearn_api_checks(check: object) -> None:
    check("TopicModel", clone(TopicModel()))  # type: ignore[operator]


def test_fit_returns_self() -> None:
    model = TopicModel(n_topics=3, n_seeds=0, min_df=2)
    assert model.fit(TEXTS) is model
