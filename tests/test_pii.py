"""Tests of journeylib.voice.pii: what is masked, and what is deliberately left alone."""

from __future__ import annotations

import pandas as pd
import pytest

from journeylib.voice.pii import EMAIL_TOKEN, NAME_TOKEN, PHONE_TOKEN, mask_pii, mask_pii_series, names_from_emails


@pytest.mark.parametrize(
    "email",
    ["maya.smith@acme.io", "m+tickets@sub.example.co.uk", "SUPPORT@Planwise.IO", "first_last-2@x-y.com"],
)
def test_emails_are_masked(email: str) -> None:
    assert mask_pii(f"write to {email} please") == f"write to {EMAIL_TOKEN} please"


@pytest.mark.parametrize(
    "phone",
    ["+44 20 7946 0958", "(555) 123-4567", "555.123.4567", "5551234567", "+1-202-555-0143", "0049 30 1234567"],
)
def test_phone_numbers_are_masked(phone: str) -> None:
    assert mask_pii(f"call me on {phone} today") == f"call me on {PHONE_TOKEN} today"


@pytest.mark.parametrize(
    "kept",
    [
        "Invoice INV-48213 is wrong",
        "Error code 50213 again",
        "We were charged $1,205 twice",
        "Since 2025-03-04 at 10:14",
        "Sprint 14 lost 12 of 361 tasks",
    ],
)
def test_ids_amounts_and_dates_are_not_phone_numbers(kept: str) -> None:
    assert mask_pii(kept) == kept


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("Hi Tom,\nThe export is broken.", f"Hi {NAME_TOKEN},\nThe export is broken."),
        ("Dear Mr. Smith,", f"Dear Mr. {NAME_TOKEN},"),
        ("Thanks,\nMaya Smith", f"Thanks,\n{NAME_TOKEN}"),
        ("Best regards,\nKofi Davis\nGolden Bakery", f"Best regards,\n{NAME_TOKEN}\nGolden Bakery"),
        ("My name is Anna Lee and I'm stuck", f"My name is {NAME_TOKEN} and I'm stuck"),
        ("Mateo from Planwise Support wrote", f"{NAME_TOKEN} from Planwise Support wrote"),
    ],
)
def test_names_in_greetings_sign_offs_and_introductions_are_masked(text: str, masked: str) -> None:
    assert mask_pii(text) == masked


@pytest.mark.parametrize("kept", ["Hi team,", "Hello there!", "Dear Planwise support,", "Cheers,\nthe team"])
def test_greetings_without_a_name_are_left_alone(kept: str) -> None:
    assert mask_pii(kept) == kept


def test_known_names_are_masked_only_when_capitalised() -> None:
    text = "Grace said the grace period ended; ask Kofi Davis."
    assert (
        mask_pii(text, names=["Grace", "Kofi", "Davis"])
        == f"{NAME_TOKEN} said the grace period ended; ask {NAME_TOKEN}."
    )


def test_a_name_mid_sentence_not_in_the_list_stays_visible() -> None:
    # Documented limit: no gazetteer, so an unknown name mid-sentence is not found.
    assert mask_pii("I spoke to Priya yesterday") == "I spoke to Priya yesterday"


def test_kinds_can_be_switched_off() -> None:
    text = "Hi Tom, mail a@b.io"
    assert mask_pii(text, emails=False, person_names=False) == text


def test_names_from_emails_hand_case() -> None:
    assert names_from_emails(["maya.smith@acme.io", "support@acme.io", "j.o-neil@x.com", None, "nope"]) == [
        "Maya",
        "Neil",
        "Smith",
    ]


def test_mask_pii_series_keeps_missing_values_and_does_not_mutate() -> None:
    texts = pd.Series(["mail me at a@b.io", None], index=[3, 4])
    out = mask_pii_series(texts)
    assert out.tolist() == [f"mail me at {EMAIL_TOKEN}", None]
    assert list(out.index) == [3, 4]
    assert texts.iloc[0] == "mail me at a@b.io"


def test_non_strings_pass_through() -> None:
    assert mask_pii(None) is None
    assert mask_pii(3) == 3
