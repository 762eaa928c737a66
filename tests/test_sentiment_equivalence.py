"""The fast paths of ticket scoring give exactly what the plain, per-row algorithms give, on tricky texts.

journeylib.voice.sentiment scores each distinct text once, counts lexicon hits with a kept answer per
token, vectorises the emotion rules, strips ticket bodies without the language check, and
journeylib.voice.evaluation shares the TF-IDF n-grams between cross-validation folds. Each test here
holds a plain reference (the per-row algorithm those paths replaced) and requires equal results, to the
bit, on texts chosen to reach every branch: empty, None, NaN, bytes, unicode, emoji, emoticons, ratings,
HTML, quoted replies, signatures, greetings, other languages, ALL CAPS, negations, "but", very long.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from journeylib.voice import evaluation, sentiment, textclean

_LONG = " ".join(["The export is broken AGAIN and I am not happy, but support was kind :)."] * 80)
TRICKY: list[object] = [
    None, float("nan"), pd.NA, 3, b"bytes: it works great, thanks!", "", " ", "\n\n\t", "\r\n\r\n",
    "Thanks!", "Thanks,\nMaya", "Hi Tom,", "Hi,\n\nThanks,\nBob", "Best regards,\nJohn Smith\nACME Inc.\n+1 555 0100",
    "It works, thanks!", "It does not work.", "It is not bad at all.", "Not good. Not good at all!!", "I am not unhappy",
    "THIS IS UNACCEPTABLE!!! FIX IT NOW", "WHY is the EXPORT BROKEN", "ok", "meh", "?", "???", "!!", "...",
    "The app is great but the export is terrible.", "Great, another outage.", "I love it but it crashes constantly",
    "How do I invite my team?", "Where is the invoice? Can you resend it?", "Can't log in?!?!",
    ":)", ":-(", "<3", ":( :( :(", "10/10", "1/5", "5 stars", "4 out of 5", "Rated 3/5. Works ok but slow.",
    "10/10 love it 😍", "😀", "😡😡😡", "👍🏽", "🇫🇷", "👨‍👩‍👧", "🙂 thanks", "❤️", "emoji in word cool😎cool",
    "Le produit ne fonctionne pas, c'est vraiment nul. Merci de corriger rapidement.",
    "The export fails. Le produit ne fonctionne pas du tout et c'est inacceptable pour nous.",
    "Café naïve résumé — déjà vu", "日本語のテキストです。とても良い。", "\u200b\u200b", "\ufeffHello there, works great",
    "<p>Hi Tom,</p><p>The export is broken AGAIN.</p><p>Thanks,<br>Maya</p>",
    "<html><body><div>Great job!</div><blockquote>On Mon, Tom wrote: thanks</blockquote></body></html>",
    "<b>bad</b> &amp; <i>worse</i> &lt;3", "<p></p>", "a < b and c > d, still broken",
    "Still broken.\n\nOn Mon, 3 Jan 2026 at 10:00, Support <support@x.com> wrote:\n> We fixed it.\n> Thanks",
    "Still broken.\n\n-----Original Message-----\nFrom: Support\nSent: Monday\nSubject: Re: fix\n\nWe fixed it, great!",
    "> quoted only\n> more quoted", "Terrible.\n\n--\nJohn\nSent from my iPhone", "Sent from my iPhone",
    "Good morning,\n\nWorks perfectly now, thank you so much!\n\nKind regards,\nLee",
    "mixed\r\nwindows\nlines\r", "\t  tabs   and    spaces\t\t", _LONG, "Hello. " * 900,
]
STRINGS = [t for t in TRICKY if isinstance(t, str)]
SUBJECTS: list[object] = [None, float("nan"), "", "Re: Export broken", "RE: Fw: [123]: it is bad", "Help!!", "URGENT", "😡"]


def _tickets() -> pd.DataFrame:
    """Tickets crossing subjects and bodies, with repeated rows in another order and a non-default index."""
    rows = [{"subject": s, "body": b} for s in SUBJECTS for b in TRICKY[:: 1 + SUBJECTS.index(s) % 3]]
    rows += rows[::-7]
    frame = pd.DataFrame(rows)
    frame.insert(0, "ticket_id", [f"t{i}" for i in range(len(frame))])
    frame.index = pd.RangeIndex(50, 50 + len(frame))
    return frame


# -- references: the per-row algorithms -----------------------------------------------------------------------
def _reference_ticket_texts(tickets: pd.DataFrame) -> tuple[list[str | None], list[str]]:
    """Each ticket's text from the full cleaning of its body (``clean_text(max_chars=0)``), row by row."""
    out: list[str | None] = []
    notes: list[str] = []
    for subject, body in zip(tickets["subject"].tolist(), tickets["body"].tolist(), strict=True):
        body_text = body if isinstance(body, str) else ""
        subject_text = sentiment._SUBJECT_PREFIX.sub("", subject).strip() if isinstance(subject, str) else ""
        if not body_text.strip() and not subject_text:
            out.append(None)
            notes.append("")
            continue
        found: list[str] = []
        cleaned = ""
        if body_text.strip():
            result = textclean.clean_text(body_text, max_chars=0)
            cleaned = result.text_clean
            found += [n for n in result.notes if n.startswith("HTML")]
            if result.quoted_removed:
                found.append("quoted reply removed")
            if result.signature_removed:
                found.append("signature removed")
            if not cleaned:
                found.append(f"body: {result.unscored_reason}; subject only")
        else:
            found.append("empty body; subject only")
        if subject_text and subject_text[-1] not in ".!?":
            subject_text += "."
        out.append("\n".join(p for p in (subject_text, cleaned) if p))
        notes.append("; ".join(found))
    return out, notes


def _reference_hits(analyzer: object, text: str) -> int:
    """Sentiment-bearing tokens and emoji of *text*, token by token and character by character."""
    lexicon = analyzer.lexicon  # type: ignore[attr-defined]
    emojis = analyzer.emojis  # type: ignore[attr-defined]
    n = 0
    for token in text.split():
        word = token.lower().strip(".,!?;:\"'()[]")
        if token in lexicon or token.lower() in lexicon or token.rstrip(".,!?;") in lexicon or word in lexicon:
            n += 1
    for ch in text:
        desc = emojis.get(ch)
        if desc and any(part in lexicon for part in desc.split()):
            n += 1
    return n


def _reference_score_frame(scorer: sentiment._TextScorer, texts: list[object]) -> pd.DataFrame:
    """``score_frame`` scoring every scoreable row (repeats included) and adding ratings and notes row by row."""
    prep = scorer._prepare(texts)
    n = len(prep)
    scores = np.full((n, 4), np.nan)
    hits = np.full(n, -1, dtype=np.int64)
    reasons = prep["unscored_reason"].astype(object).tolist()
    todo = [i for i in range(n) if reasons[i] is None]
    scored_texts = prep["text_scored"].astype(str).tolist()
    if todo:
        raw, raw_hits = scorer._raw_scores([scored_texts[i] for i in todo])
        scores[todo] = raw
        hits[todo] = raw_hits
        for j, i in enumerate(todo):
            ratings = textclean.find_ratings(scored_texts[i])
            if ratings:
                hits[i] = max(int(raw_hits[j]), 0) + len(ratings)
                scores[i] = sentiment._with_ratings(scores[i], int(raw_hits[j]), scored_texts[i], ratings)
                prep.at[i, "notes"] = "; ".join(x for x in (str(prep.at[i, "notes"]), sentiment._rating_note(ratings)) if x)
            elif raw_hits[j] == 0 and prep.at[i, "language"] == "und":
                reasons[i] = sentiment.REASON_NO_LEXICON
                scores[i] = np.nan
    out = pd.DataFrame(scores, columns=list(sentiment.SCORE_COLUMNS))
    out["polarity"] = sentiment.polarity_labels(
        out["compound"], negative_threshold=scorer.negative_threshold, positive_threshold=scorer.positive_threshold
    )
    out["scored"] = out["compound"].notna()
    out["unscored_reason"] = pd.Series(reasons, dtype=object)
    out["lexicon_hits"] = hits
    out["language"] = prep["language"].to_numpy()
    out["text_clean"] = prep["text_clean"].to_numpy()
    out["text_scored"] = prep["text_scored"].to_numpy()
    notes = prep["notes"].astype(str).tolist()
    for i in range(n):
        if out.at[i, "scored"] and hits[i] == 0:
            notes[i] = "; ".join(x for x in (notes[i], "no sentiment-bearing word found: neutral by absence") if x)
    out["notes"] = notes
    return out


def _reference_explain(clf: sentiment.EmotionClassifier, frame: pd.DataFrame) -> pd.DataFrame:
    """The emotion rules applied row by row."""
    texts = frame["text_scored"].tolist()
    compound = frame["compound"].to_numpy(dtype=float)
    readable = np.array([bool(t and t.strip()) for t in texts])
    n = len(texts)
    result = {e: np.zeros(n) for e in sentiment.EMOTIONS[:3]}
    cues_out: list[str] = []
    for i, text in enumerate(texts):
        if not readable[i]:
            cues_out.append("")
            continue
        cue_scores, cue_names, shouting = sentiment._cue_scores(text)
        fired = list(cue_names)
        for emotion, value in cue_scores.items():
            result[emotion][i] = value
        c = compound[i]
        if c == c:
            if c <= sentiment.POLARITY_THRESHOLDS[0]:
                result["frustration"][i] += 2 * abs(c)
            elif c >= sentiment.POLARITY_THRESHOLDS[1] and result["frustration"][i] == 0:
                result["satisfaction"][i] += 2 * c
        if shouting:
            result["frustration"][i] += 1.0
            fired.append("frustration: shouting")
        if "!!" in text:
            result["frustration"][i] += 0.5
        result["confusion"][i] += min(1.0, 0.5 * text.count("?"))
        cues_out.append("; ".join(fired))
    table = np.column_stack([result[e] for e in sentiment.EMOTIONS[:3]])
    best = table.argmax(axis=1)
    labels = np.where(
        table.max(axis=1) >= float(clf.threshold), np.asarray(sentiment.EMOTIONS[:3], dtype=object)[best], "neutral"
    )
    out = pd.DataFrame({"emotion": np.where(readable, labels, sentiment.UNSCORED).astype(object)})
    for e in sentiment.EMOTIONS[:3]:
        out[f"{e}_score"] = np.where(readable, result[e], np.nan)
    out["cues"] = cues_out
    return out


# -- tests ------------------------------------------------------------------------------------------------------
def test_strip_message_is_clean_text_before_length_and_language() -> None:
    for text in STRINGS:
        for greeting in (True, False):
            stripped = textclean.strip_message(text, strip_greeting=greeting)
            full = textclean.clean_text(text, max_chars=0, strip_greeting=greeting)
            assert stripped.text == full.text_clean, text
            assert stripped.unscored_reason == (full.unscored_reason if not full.text_clean else None), text
            flags = ("was_html", "quoted_removed", "signature_removed", "has_emoji")
            assert [getattr(stripped, f) for f in flags] == [getattr(full, f) for f in flags], text
            assert full.notes[: len(stripped.notes)] == stripped.notes, text


def test_ticket_texts_equal_the_full_cleaning_of_each_body() -> None:
    tickets = _tickets()
    assert sentiment._ticket_texts(tickets) == _reference_ticket_texts(tickets)


@pytest.mark.parametrize("known_tokens", [50_000, 3])
def test_lexicon_hits_equal_token_by_token_counting(monkeypatch: pytest.MonkeyPatch, known_tokens: int) -> None:
    monkeypatch.setattr(sentiment, "_KNOWN_TOKENS", known_tokens)  # 3: the kept answers are forgotten as it goes
    analyzer = sentiment.VaderScorer().fit().analyzer_
    counter = sentiment._HitCounter(analyzer)
    texts = [*STRINGS, *STRINGS[::-1], "Great 😀 😀 :) good good"]
    assert [counter.count(t) for t in texts] == [_reference_hits(analyzer, t) for t in texts]
    # kept answers are bounded: emptied before a text once above the bound, so at most the bound and one text's tokens
    assert 0 < len(counter.tokens) <= known_tokens + 1 + len(set(texts[-1].split()))
    assert sentiment._vader_scores("Great 😀 😀 :) good good", counter)[4] == 6


@pytest.mark.parametrize("clean", [True, False])
def test_vader_score_frame_equals_scoring_every_row(clean: bool) -> None:
    texts = [*TRICKY, *TRICKY[::-2], *STRINGS[:20]]
    default = sentiment.VaderScorer(clean=clean, max_chars=400).fit()
    edited = sentiment.VaderScorer(clean=clean).fit()
    edited.analyzer_.lexicon["export"] = -2.0  # not the shipped lexicon: nothing read from the process cache
    for scorer in (default, edited):
        pd.testing.assert_frame_equal(scorer.score_frame(texts), _reference_score_frame(scorer, texts), check_exact=True)


def test_tfidf_score_frame_equals_scoring_every_row() -> None:
    train = [*STRINGS, *STRINGS[:30]]
    labels = ["negative", "neutral", "positive"] * (len(train) // 3) + ["positive"] * (len(train) % 3)
    scorer = sentiment.TfidfLogisticScorer(min_df=1).fit(train, labels)
    texts = [*TRICKY, *TRICKY[::-3]]
    pd.testing.assert_frame_equal(scorer.score_frame(texts), _reference_score_frame(scorer, texts), check_exact=True)


def test_explain_equals_the_rules_row_by_row() -> None:
    clf = sentiment.EmotionClassifier().fit()
    frame = sentiment.VaderScorer().fit().score_frame([*TRICKY, *TRICKY[::-1]])
    # One text with many compounds, NaN included, on either side of the thresholds.
    frame["compound"] = np.resize([np.nan, -0.9, -0.05, -0.04, 0.0, 0.04, 0.05, 0.7], len(frame))
    got = clf.explain(frame["text_scored"].tolist(), scores=frame)
    pd.testing.assert_frame_equal(got, _reference_explain(clf, frame), check_exact=True)


def test_score_tickets_equals_scoring_each_ticket_alone() -> None:
    tickets = _tickets()
    together = sentiment.score_tickets(tickets, max_chars=300)
    assert together.index.equals(tickets.index)
    assert together["scored"].any()
    assert not together["scored"].all()
    for i in range(0, len(tickets), 3):
        alone = sentiment.score_tickets(tickets.iloc[[i]], max_chars=300)
        pd.testing.assert_frame_equal(together.iloc[[i]], alone, check_exact=True)


def test_cross_validation_with_shared_ngrams_equals_fitting_each_fold_alone() -> None:
    texts = [f"{t} {w}" for t in STRINGS[9:] for w in ("great", "broken", "invoice")]
    labels = sentiment.training_labels(["positive", "negative", "neutral"] * (len(texts) // 3))
    scorer = sentiment.TfidfLogisticScorer(min_df=2)
    got = evaluation._predict(scorer, texts, labels, random_state=4, n_jobs=2)
    folds = evaluation.StratifiedKFold(n_splits=5, shuffle=True, random_state=4)
    prep = textclean.clean_texts(texts, max_chars=scorer.max_chars).reset_index(drop=True)
    ready = prep["text_scored"].tolist()
    params = {**scorer.get_params(), "clean": False}
    parts = []
    for train, test in folds.split(np.arange(len(texts)), labels):
        est = sentiment.TfidfLogisticScorer(**params).fit([ready[i] for i in train], labels[train])
        part = est.score_frame([ready[i] for i in test])
        part.index = test
        parts.append(part)
    want = pd.concat(parts).sort_index()
    refused = prep["unscored_reason"].notna().to_numpy()
    want.loc[refused, list(sentiment.SCORE_COLUMNS)] = np.nan
    want.loc[refused, "polarity"] = sentiment.UNSCORED
    want.loc[refused, "unscored_reason"] = prep.loc[refused, "unscored_reason"].to_numpy()
    pd.testing.assert_frame_equal(got, want, check_exact=True)
