"""Tests of journeylib.voice.pii: what is masked, and what is deliberately left alone."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
from _builders import memory_store

from journeylib import health
from journeylib.voice.pii import (
    EMAIL_TOKEN,
    NAME_TOKEN,
    PHONE_TOKEN,
    PiiSpan,
    find_pii,
    mask_email_values,
    mask_pii,
    mask_pii_series,
    masker_evaluation_data,
    names_from_emails,
    pii_sample_data,
)
from journeylib.voice.tickets import ticket_voice_data


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


# -- what is NOT masked: shouting words, identifiers, ranges --------------------------------


@pytest.mark.parametrize(
    "kept",
    [
        "This is NOT a tin",
        "URGENT: the export is broken",
        "The dashboard is VERY slow. This is VERY bad.",
        "I'm STILL waiting. THIS IS UNACCEPTABLE.",
        "This is Urgent: we cannot invoice customers.",
        "Best,\nThe Acme Team",
        "Hello Acme Support,\nthe form is broken.",
        "This is Planwise's fault, not ours.",
    ],
)
def test_upper_case_words_and_non_names_are_not_names(kept: str) -> None:
    assert mask_pii(kept) == kept


@pytest.mark.parametrize(
    "kept",
    [
        "ISBN 978-3-16-148410-0 was ordered twice",  # ISBN-13 with hyphens
        "We got 978-1-4028-9462-6 in the feed",  # ISBN-13 without the label (check digit group)
        "The book (ISBN 0-306-40615-2) is listed twice",  # ISBN-10
        "The ISBN-13 9781402894626 is rejected",  # valid ISBN-13 checksum, no separators
        "Our contract ran 2019-2023 and we renewed",  # year range
        "Report period 2020–2024 and 2023/2024",  # en dash, slash
        "Lot number 2024-11873 arrived damaged",  # lot number
        "Lot 23-0917-44 is on hold",
        "Order no. 4471-2290-118 still hasn't shipped",  # order number
        "Still waiting on order 1002345678",
        "Serial SN 8842-1190-7731 fails",
        "Windows build 10.0.19045.2965, Chrome 122",  # version
        "I'm on version 3.12.1",
        "IP 192.168.10.254 is blocked",  # IPv4
        "The invoice date says 03/05/2024 but we signed on 2024-02-28",  # dates
        "Since 2025-03-04 10:14 UTC",
        "1 200 000 rows and $12,400.00",  # counts and amounts
        "Bank ref 2024 0315 7781 shows it",
    ],
)
def test_identifiers_ranges_versions_and_dates_are_not_phone_numbers(kept: str) -> None:
    assert mask_pii(kept) == kept


@pytest.mark.parametrize(
    "phone",
    [
        "020 7946 0958",  # UK national
        "07700 900123",  # UK mobile
        "+49 30 1234567",  # Germany
        "030 1234567",
        "0221 / 9876543",
        "+49 (0)30 98765432",
        "+33 1 23 45 67 89",  # France
        "01 23 45 67 89",
        "+61 2 9876 5432",  # Australia
        "0412 345 678",
        "+91 98765 43210",  # India
        "+81 3-1234-5678",  # Japan
        "+55 11 91234-5678",  # Brazil
        "+7 495 123-45-67",  # Russia
        "1-800-555-0199",  # North America
        "+1 (415) 555-0132",
        "2125550143",
    ],
)
def test_national_phone_formats_are_masked(phone: str) -> None:
    assert mask_pii(f"call {phone} today") == f"call {PHONE_TOKEN} today"


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("Hey Chen, any update?", f"Hey {NAME_TOKEN}, any update?"),
        ("Cheers, Mateo", f"Cheers, {NAME_TOKEN}"),
        ("Thanks,\nDr. Ingrid Larsen", f"Thanks,\nDr. {NAME_TOKEN}"),
        ("Hi Aisha and Ben,", f"Hi {NAME_TOKEN} and {NAME_TOKEN},"),
        ("Our accountant, Mrs. Papadopoulos, needs it", f"Our accountant, Mrs. {NAME_TOKEN}, needs it"),
        ("this is Kofi Mensah, the new admin", f"this is {NAME_TOKEN}, the new admin"),
        ("Many thanks,\nJoão Silva", f"Many thanks,\n{NAME_TOKEN}"),
        ("Regards,\nLiam O'Connor", f"Regards,\n{NAME_TOKEN}"),
    ],
)
def test_more_name_places_are_masked(text: str, masked: str) -> None:
    assert mask_pii(text) == masked


def test_find_pii_hand_case() -> None:
    text = "Hi Tom,\nmail tom@x.io or call 020 7946 0958 (ISBN 978-3-16-148410-0)"
    spans = [(text[s.start : s.end], s.kind) for s in find_pii(text)]
    assert spans == [("Tom", "name"), ("tom@x.io", "email"), ("020 7946 0958", "phone")]
    assert find_pii(text, phones=False, person_names=False) == [PiiSpan(13, 21, "email")]
    with pytest.raises(TypeError, match="text must be a str, got NoneType"):
        find_pii(None)  # type: ignore[arg-type]


# -- e-mail-shaped values in tables ----------------------------------------------------------


def test_mask_email_values_pseudonymises_whole_addresses_and_masks_them_in_text() -> None:
    frame = pd.DataFrame(
        {
            "user_id": ["Maya@Acme.io ", "maya@acme.io", "kofi@acme.io", "u-17", None],
            "note": ["from maya@acme.io today", "", "x", "no mail", None],
            "n": [1, 2, 3, 4, 5],
        },
        index=[10, 11, 12, 13, 14],
    )
    out = mask_email_values(frame, columns=["user_id", "note", "not_there"])
    ids = out["user_id"].tolist()
    assert ids[0] == ids[1] != ids[2]  # same address (case, blanks) -> same pseudonym; another -> another
    assert all(re.fullmatch(r"\[EMAIL-[0-9a-f]{8}\]", v) for v in ids[:3])
    assert ids[3:] == ["u-17", None]
    assert out["note"].tolist() == [f"from {EMAIL_TOKEN} today", "", "x", "no mail", None]
    assert list(out.index) == [10, 11, 12, 13, 14]
    assert out["n"].tolist() == [1, 2, 3, 4, 5]
    assert frame.loc[10, "user_id"] == "Maya@Acme.io "  # input unchanged
    assert mask_email_values(frame, columns=["user_id"], key="secret")["user_id"][10] != ids[0]


def test_mask_email_values_errors() -> None:
    with pytest.raises(TypeError, match="columns must be a list of column names, got the string 'user_id'"):
        mask_email_values(pd.DataFrame({"user_id": ["a@b.io"]}), columns="user_id")
    with pytest.raises(TypeError, match="frame must be a pandas DataFrame, got list"):
        mask_email_values([], columns=["user_id"])  # type: ignore[arg-type]


def test_ticket_voice_data_masks_e_mail_user_ids_only_when_asked() -> None:
    tickets = pd.DataFrame(
        {
            "ticket_id": ["t1", "t2"],
            "customer_id": ["c1", "c2"],
            "user_id": ["maya.smith@acme.io", "u-2"],
            "created_at": ["2024-03-01T10:00:00Z", "2024-03-02T10:00:00Z"],
            "subject": ["Export broken", "Thanks"],
            "body": ["Call me on 020 7946 0958 please. This is NOT ok.", "Works now, great job"],
        }
    )
    masked = ticket_voice_data(tickets, mask_pii=True)
    assert masked["user_id"].iloc[0].startswith("[EMAIL-")
    assert masked["user_id"].iloc[1] == "u-2"
    assert masked["customer_id"].tolist() == ["c1", "c2"]
    assert PHONE_TOKEN in masked["text"].iloc[0]
    assert "NOT ok" in masked["text"].iloc[0]
    raw = ticket_voice_data(tickets, mask_pii=False)
    assert raw["user_id"].tolist() == ["maya.smith@acme.io", "u-2"]


def test_data_health_tables_mask_e_mails_in_reasons_and_values() -> None:
    quarantine = pd.DataFrame(
        {
            "run": ["r1", "r1"],
            "source": ["sendgrid", "sendgrid"],
            "table_name": ["messages", "messages"],
            "file": ["sg.json", "sg.json"],
            "line": [3, 4],
            "raw": ["...", "..."],
            "reason": ["unknown status for ops@acme.io", "unknown status for ops@acme.io"],
            "ingested_at": ["2024-03-25T00:00:00Z"] * 2,
        }
    )
    store = memory_store(quarantine=quarantine)
    try:
        out = health.quarantine_data(store)
        assert out[["reason", "example_reason", "rows"]].values.tolist() == [
            [f"unknown status for {EMAIL_TOKEN}", f"unknown status for {EMAIL_TOKEN}", 2]
        ]
        assert health.quarantine_reasons_data(store)["reason"].tolist() == [f"unknown status for {EMAIL_TOKEN}"]
        assert health.quarantine_data(store, mask_pii=False)["reason"].tolist() == ["unknown status for ops@acme.io"]
    finally:
        store.close()


# -- the labelled sample and the measured precision ------------------------------------------


def test_evaluation_hand_case(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    rows = [
        # found: Maya (right), 020 7946 0958 (right); nothing missed
        {"text": "Hi Maya,\ncall 020 7946 0958", "names": ["Maya"], "phones": ["020 7946 0958"], "emails": []},
        # found: 555-123-4567 labelled as not a phone (a false positive); Priya missed (mid-sentence)
        {"text": "I spoke to Priya, or 555-123-4567", "names": ["Priya"], "phones": [], "emails": []},
        {"text": "mail a@b.io", "emails": ["a@b.io"]},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    sample = pii_sample_data(path)
    assert sample["spans"].iloc[0] == [(3, 7, "name"), (14, 27, "phone")]
    ev = masker_evaluation_data(sample).set_index("kind")
    # phone: found 2, correct 1 -> precision 1/2; labelled 1, recalled 1 -> recall 1
    assert ev.loc["phone", ["labelled", "found", "correct", "recalled"]].tolist() == [1, 2, 1, 1]
    assert ev.loc["phone", "precision"] == pytest.approx(0.5)
    assert ev.loc["phone", "false_positives"] == ["555-123-4567"]
    # name: labelled 2, found 1 (Maya), recalled 1 -> recall 1/2, precision 1
    assert ev.loc["name", ["labelled", "found", "correct", "recalled"]].tolist() == [2, 1, 1, 1]
    assert ev.loc["name", "missed"] == ["Priya"]
    assert ev.loc["email", "precision"] == 1.0
    assert ev.loc["email", "recall"] == 1.0
    assert ev.loc["name", "precision_low"] < 1.0 <= ev.loc["name", "precision_high"]


def test_sample_loader_errors(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "Hi Maya", "names": ["Mara"]}\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"line 1: names label 'Mara' does not occur in the text"):
        pii_sample_data(path)
    path.write_text("[1, 2]\n", encoding="utf-8")
    with pytest.raises(ValueError, match="line 1: expected an object with a 'text' string"):
        pii_sample_data(path)
    with pytest.raises(ValueError, match=r"sample lacks column\(s\) \['spans'\]"):
        masker_evaluation_data(pd.DataFrame({"text": ["x"]}))


def test_bundled_sample_is_large_and_varied() -> None:
    sample = pii_sample_data()
    kinds = pd.Series([k for spans in sample["spans"] for _s, _e, k in spans]).value_counts()
    assert len(sample) >= 150
    assert kinds["name"] >= 50
    assert kinds["phone"] >= 50
    assert kinds["email"] >= 20
    assert set(sample["set"]) == {"design", "fresh"}
    assert (sample["spans"].map(len) == 0).sum() >= 60  # texts with nothing to mask (identifiers, shouting)


# Measured on the bundled sample (266 texts; see docs/voice-of-customer.md): phones 62 of 63 found are phones
# (0.984, 95% Wilson 0.915-0.997), names 70 of 70 (1.0, 0.948-1.0), e-mails 26 of 26. The rules before this
# sample reached 61/112 = 0.545 (phones) and 40/51 = 0.784 (names). A floor of 0.9 sits under the lower 95%
# bound of the measured precision and far above the old rules, so a change that brings back ISBNs, year
# ranges, lot numbers or shouting words as PII fails here. On the 60 "fresh" texts (written after the rules
# were fixed, never used to tune them) the measured precision is 12/12 and 16/16: the same floor applies.
PRECISION_FLOOR = {"email": 0.95, "phone": 0.9, "name": 0.9}
RECALL_FLOOR = {"email": 0.95, "phone": 0.9, "name": 0.75}  # names measured 70/82 = 0.854 (0.761-0.914)


@pytest.mark.parametrize("subset", ["all", "fresh"])
def test_measured_precision_on_the_labelled_sample(subset: str) -> None:
    sample = pii_sample_data()
    if subset != "all":
        sample = sample[sample["set"] == subset]
    ev = masker_evaluation_data(sample).set_index("kind")
    for kind, floor in PRECISION_FLOOR.items():
        assert ev.loc[kind, "precision"] >= floor, (kind, ev.loc[kind, "false_positives"])
    if subset == "all":
        for kind, floor in RECALL_FLOOR.items():
            assert ev.loc[kind, "recall"] >= floor, (kind, ev.loc[kind, "missed"])
