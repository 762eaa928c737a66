"""Tests of journeylib.voice.textclean: quotes, signatures, boilerplate, HTML, language, length, odd input."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from journeylib.voice import textclean
from journeylib.voice.textclean import (
    clean_text,
    clean_texts,
    detect_language,
    split_messages,
    strip_quoted,
    strip_signature,
)

# -- quoted replies -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "kept"),
    [
        # Gmail style, as in the synthetic world
        (
            "The import failed again.\n\nOn Fri, 17 Jan 2025 at 11:48, Mateo from Planwise Support "
            "<support@planwise.io> wrote:\n> Thanks for reaching out!\n> Best,\n> Mateo",
            "The import failed again.",
        ),
        # Outlook header block
        (
            "Still broken.\n\nFrom: Support <support@acme.io>\nSent: Monday, 3 March 2025 10:14\nTo: me\n"
            "Subject: RE: export\n\nWe fixed it!",
            "Still broken.",
        ),
        ("Thanks, that works.\n\n-----Original Message-----\nFrom: x\nGreat news!", "Thanks, that works."),
        # French and German reply headers
        ("Toujours en panne.\n\nLe lun. 3 mars 2025 à 10:14, Tom <t@x.io> a écrit :\n> Réparé", "Toujours en panne."),
        ("Geht immer noch nicht.\n\nAm 03.03.2025 um 10:14 schrieb Tom <t@x.io>:\n> Behoben", "Geht immer noch nicht."),
        # bare '>' lines without a header
        ("> old quoted line\nMy new question?", "My new question?"),
    ],
)
def test_strip_quoted_removes_earlier_replies(body: str, kept: str) -> None:
    text, removed = strip_quoted(body)
    assert text == kept
    assert removed


def test_strip_quoted_leaves_plain_text_alone() -> None:
    assert strip_quoted("On Monday the export broke.") == ("On Monday the export broke.", False)


# -- signatures -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "kept"),
    [
        ("It works now.\n\nBest regards,\nMaya Smith\nAcme Ltd", "It works now."),
        ("It works now.\n\nThanks,\nMaya", "It works now."),
        ("It works now.\n\nCheers!\nMaya", "It works now."),
        ("It works now.\n-- \nMaya Smith | Head of Ops | +44 20 7946 0958", "It works now."),
        ("It works now.\n\nSent from my iPhone", "It works now."),
        ("It works now.\n\nKevin Brown", "It works now."),  # a bare name block
    ],
)
def test_strip_signature(body: str, kept: str) -> None:
    assert strip_signature(body) == (kept, True)


def test_a_thanks_sentence_is_content_not_a_signature() -> None:
    text = "Thanks for fixing the sync so quickly last week. Everything looks good now."
    assert strip_signature(text) == (text, False)


def test_a_message_that_is_only_a_sign_off_is_kept() -> None:
    result = clean_text("Thanks!")
    assert result.text_clean == "Thanks!"
    assert result.unscored_reason is None
    assert "only a sign-off" in "; ".join(result.notes)


def test_greeting_is_removed_because_vader_reads_good_as_positive() -> None:
    result = clean_text("Good morning,\n\nThe export is broken.\n\nThanks,\nMaya")
    assert result.text_clean == "The export is broken."
    assert result.signature_removed


def test_confidentiality_boilerplate_is_removed() -> None:
    body = (
        "The report is wrong.\n\nThis email and any attachments are confidential and intended solely for the addressee."
    )
    assert clean_text(body).text_clean == "The report is wrong."


# -- HTML ----------------------------------------------------------------------------------


def test_html_is_converted_and_quotes_dropped() -> None:
    body = (
        "<html><head><style>p{color:red}</style></head><body><p>Hello,</p><p>The app is <b>broken</b> &amp; slow!!"
        "</p><div class='gmail_quote'>On Mon, Tom wrote: <blockquote>Fixed!</blockquote></div>"
        "<script>alert(1)</script></body></html>"
    )
    result = clean_text(body)
    assert result.text_clean == "The app is broken & slow!!"
    assert result.was_html
    assert result.quoted_removed
    assert "HTML converted to text" in result.notes


def test_broken_html_never_crashes() -> None:
    result = clean_text("<div><p>Unclosed <b>tags <i>everywhere</div> and the export is broken")
    assert "export is broken" in result.text_clean


# -- language --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("The export is broken and we need it for the board meeting", "en"),
        ("La exportación no funciona y la necesito para la reunión del lunes", "es"),
        ("Le rapport ne fonctionne pas et nous avons besoin de lui pour la réunion", "fr"),
        ("Der Export funktioniert nicht und wir brauchen ihn für das Meeting", "de"),
        ("Спасибо, всё работает отлично", "other"),
        ("导出功能坏了,请帮忙", "other"),
        ("Merci beaucoup", "und"),
        ("Nothing works since the update.", "en"),
        ("I need a refund as soon as possible.", "en"),  # "a", "as" are not Portuguese here
    ],
)
def test_detect_language(text: str, language: str) -> None:
    assert detect_language(text)[0] == language


def test_non_english_is_unscored_with_the_reason() -> None:
    result = clean_text("Gracias, pero la factura está mal y no funciona el pago del mes.")
    assert result.text_scored == ""
    assert result.unscored_reason is not None
    assert result.unscored_reason.startswith("not English: detected es")


def test_mixed_language_scores_only_the_english_sentences() -> None:
    text = "The export works fine now and the team is happy with it. Pero la factura está mal y no funciona el pago del mes."
    result = clean_text(text)
    assert result.language == "mixed"
    assert result.text_scored == "The export works fine now and the team is happy with it."
    assert any("1 non-English sentence(s) not scored" in n for n in result.notes)


# -- length, emoji, odd input -------------------------------------------------------------------


def test_very_long_text_is_truncated_at_a_sentence_with_a_note() -> None:
    body = "The export is broken. " * 1000  # 22,000 characters
    result = clean_text(body, max_chars=500)
    assert result.truncated
    assert len(result.text_clean) <= 500
    assert result.text_clean.endswith(".")
    assert any(n.startswith("truncated from 22,000") for n in result.notes)


def test_truncate_text_hand_case() -> None:
    assert textclean.truncate_text("One. Two three. Four five six.", 20) == ("One. Two three.", True)
    assert textclean.truncate_text("short", 0) == ("short", False)


def test_emoji_are_kept_and_noted() -> None:
    result = clean_text("😡😡")
    assert result.has_emoji
    assert result.text_scored == "😡😡"
    assert result.unscored_reason is None


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "empty text"),
        (float("nan"), "empty text"),
        (pd.NA, "empty text"),
        ("", "empty text"),
        ("   \n ", "empty text"),
        (12, "not text"),
    ],
)
def test_empty_and_non_text_are_unscored_with_a_reason(value: object, reason: str) -> None:
    result = clean_text(value)
    assert result.unscored_reason == reason
    assert result.text_scored == ""


def test_only_punctuation_is_unscored() -> None:
    assert clean_text("???!!! ...").unscored_reason == textclean.REASON_NO_WORDS


def test_clean_texts_frame_keeps_index_and_columns() -> None:
    texts = pd.Series(["It works, thanks!", None], index=[10, 11])
    frame = clean_texts(texts)
    assert list(frame.index) == [10, 11]
    assert tuple(frame.columns) == textclean.CLEAN_COLUMNS
    assert frame["unscored_reason"].tolist() == [None, "empty text"]


@settings(max_examples=150, deadline=None)
@given(st.one_of(st.none(), st.text(max_size=300), st.floats(allow_nan=True), st.integers()))
def test_clean_text_never_crashes_and_never_silently_drops(value: object) -> None:
    result = clean_text(value, max_chars=120)
    # Either it can be scored (and there is text to score), or it says why not.
    if result.unscored_reason is None:
        assert result.text_scored.strip()
    else:
        assert result.text_scored == ""
    assert len(result.text_clean) <= 120
    assert result.language in textclean.LANGUAGES
    assert not (isinstance(value, float) and math.isnan(value) and result.unscored_reason is None)


# -- conversation parts ---------------------------------------------------------------------------


def test_split_messages_separates_customer_and_quoted_parts() -> None:
    body = (
        "Still broken.\n\nOn Mon, 3 Mar 2025 at 10:14, Tom <t@x.io> wrote:\n> We fixed it, enjoy!\n>\n"
        "> On Sun, 2 Mar 2025 at 09:00, Maya <m@acme.io> wrote:\n>> The export is broken."
    )
    parts = split_messages(body)
    assert [(p.part, p.role) for p in parts] == [(0, "customer"), (1, "quoted"), (2, "quoted")]
    assert parts[0].text == "Still broken."
    assert parts[1].author == "Tom <t@x.io>"
    assert parts[1].text == "We fixed it, enjoy!"
    assert parts[2].text == "The export is broken."


def test_split_messages_of_html_and_empty_input() -> None:
    parts = split_messages("<p>Still broken</p><blockquote>On Mon, Tom wrote:<br>Fixed!</blockquote>")
    assert parts[0].text == "Still broken"
    assert [p.role for p in split_messages(None)] == ["customer"]


# -- emoticons, ratings and short English text (issue 13, part 7) -------------------------------


@pytest.mark.parametrize("text", [":)", "<3", ":(", ":-(", ":D", ":) :)", "</3"])
def test_emoticon_only_text_is_kept_for_scoring(text: str) -> None:
    result = clean_text(text)
    assert result.unscored_reason is None
    assert result.text_scored == text
    assert "language undetermined" not in "; ".join(result.notes)


@pytest.mark.parametrize(
    ("text", "value", "scale", "compound"),
    [
        ("10/10", 10, 10, 1.0),
        ("1/5", 1, 5, -1.0),
        ("3/5", 3, 5, 0.0),
        ("5 stars", 5, 5, 1.0),
        ("1 star", 1, 5, -1.0),
        ("two stars", 2, 5, -0.5),
        ("4 out of 5", 4, 5, 0.5),
        ("7/10", 7, 10, 0.4),
        ("★★★★☆", 4, 5, 0.5),
    ],
)
def test_find_ratings_reads_the_rating_and_its_scale(text: str, value: float, scale: float, compound: float) -> None:
    (rating,) = textclean.find_ratings(text)
    assert (rating.value, rating.scale) == (value, scale)
    assert rating.compound == pytest.approx(compound)
    assert clean_text(text).unscored_reason is None


@pytest.mark.parametrize("text", ["see you on 10/10/2024", "open 24/7", "12/5 items", "page 1/50", "???!!! ..."])
def test_dates_and_fractions_are_not_ratings(text: str) -> None:
    assert textclean.find_ratings(text) == []


@pytest.mark.parametrize("text", ["Love it", "Terrible!", "Great", "Works great", "Awesome, thanks", "Works", "It works."])
def test_short_english_text_is_english(text: str) -> None:
    assert detect_language(text)[0] == "en"
    assert clean_text(text).language == "en"


@pytest.mark.parametrize(("text", "language"), [("Merci beaucoup", "und"), ("Muy bien", "und"), ("Danke schön", "und")])
def test_short_text_with_another_languages_function_word_is_not_english(text: str, language: str) -> None:
    assert detect_language(text)[0] == language


# -- many texts at once ---------------------------------------------------------------

TRICKY_TEXTS = [
    "Hi Tom,\n\nThe export is broken AGAIN.\n\nThanks,\nMaya",
    ":) <3",
    "10/10 would buy again",
    "★★★★☆",
    "See https://status.acme.io/incidents/42?x=1 and write to ops@acme.io please, it still fails",
    "La exportación no funciona y la necesito para la reunión",
    "Спасибо, всё работает",
    "The export works now. Pero el informe no funciona todavía para nosotros.",
    "",
    "   \n\t ",
    None,
    float("nan"),
    b"bytes body: it is broken",
    42,
    "<p>Hi&nbsp;team</p><p>It <b>broke</b></p><blockquote>old</blockquote>",
    "Great 👍",
    "Thanks!",
    "It broke again.\n\nOn Mon, 3 Mar 2025 at 10:14, Tom <t@x.io> wrote:\n> Fixed!",
]


def test_clean_texts_equals_clean_text_one_by_one_with_repeats() -> None:
    """Repeated texts are cleaned once: every row still equals clean_text of its own input."""
    texts = TRICKY_TEXTS + TRICKY_TEXTS[::-1] + TRICKY_TEXTS[:3]
    for max_chars, greeting in ((textclean.DEFAULT_MAX_CHARS, True), (20, False)):
        got = clean_texts(texts, max_chars=max_chars, strip_greeting=greeting)
        rows = [clean_text(t, max_chars=max_chars, strip_greeting=greeting) for t in texts]
        expected = pd.DataFrame({
            "text_clean": [r.text_clean for r in rows], "text_scored": [r.text_scored for r in rows],
            "language": [r.language for r in rows], "n_chars_raw": [r.n_chars_raw for r in rows],
            "n_chars_clean": [r.n_chars_clean for r in rows], "was_html": [r.was_html for r in rows],
            "quoted_removed": [r.quoted_removed for r in rows], "signature_removed": [r.signature_removed for r in rows],
            "has_emoji": [r.has_emoji for r in rows], "truncated": [r.truncated for r in rows],
            "unscored_reason": pd.Series([r.unscored_reason for r in rows], dtype=object),
            "notes": ["; ".join(r.notes) for r in rows],
        })
        pd.testing.assert_frame_equal(got, expected, check_exact=True)
    reasons = clean_texts(TRICKY_TEXTS)["unscored_reason"].tolist()
    assert reasons[8:12] == [textclean.REASON_EMPTY, textclean.REASON_EMPTY, textclean.REASON_EMPTY, textclean.REASON_EMPTY]
    assert reasons[13] == textclean.REASON_NOT_TEXT
    assert clean_texts([":) <3"])["text_scored"].tolist() == [":) <3"]  # emoticons only: kept and scored


def test_language_hits_count_words_listed_by_several_languages() -> None:
    """'la' is a function word of es, fr and it: each counts it (the detail names every count)."""
    assert detect_language("la la la the the") == ("es", "es=3, fr=3, it=3, en=2")
    assert detect_language("de het een en niet, la de le") == ("nl", "nl=6, es=5, fr=4, pt=2, it=2")


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("great :) <3 :-( :D xD ;) 8) 10/10 :P", [":)", "<3", ":-(", ":D", ";)", "8)", ":P"]),
        ("thanks :). sad :(!", [":)", ":("]),
        ("no emoticons here, just words and 3 numbers", []),
        ("", []),
    ],
)
def test_find_emoticons(text: str, found: list[str]) -> None:
    assert textclean.find_emoticons(text) == found
