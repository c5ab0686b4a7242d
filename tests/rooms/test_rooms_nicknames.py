"""Nickname rules, the confusable skeleton and assigned pseudonyms."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rooms import Refusal, RefusalCode, validate_nickname
from rooms.pseudonyms import ADJECTIVES, ANIMALS, COMBINATIONS, assign, pseudonym_at
from rooms.skeleton import compact, skeleton
from rooms.text import is_safe_text


def _code(raw: str, taken: tuple[str, ...] = ()) -> RefusalCode | None:
    result = validate_nickname(raw, taken)
    return result.code if isinstance(result, Refusal) else None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Sam", "Sam"),
        ("  Quiet   Reader  ", "Quiet Reader"),
        ("Ｑｕｉｅｔ", "Quiet"),  # full-width letters
        ("José", "José"),
        ("Zoë Ng", "Zoë Ng"),
        ("Мария", "Мария"),  # all-Cyrillic names are fine
        ("小明", "小明"),
        ("مريم", "مريم"),  # Arabic, right-to-left
        ("Gentle Ghost", "Gentle Ghost"),  # contains "host" inside a word
        ("Modest Owl", "Modest Owl"),
        ("Andrew", "Andrew"),  # contains "dr" inside a word
        ("Jo 2", "Jo 2"),
        ("x" * 32, "x" * 32),
    ],
)
def test_good_nicknames(raw: str, expected: str) -> None:
    assert validate_nickname(raw, ()) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "a",
        "   b   ",
        "x" * 33,
        "Sam\u200dSmith",  # zero-width joiner
        "Sam\u200b",  # zero-width space
        "\u202eevil",  # right-to-left override
        "ab\u2066cd",  # left-to-right isolate
        "Sam\x07",  # control
        "Sam\tSmith",  # tab
        "Sam\nSmith",
        "Line\u2028Break",  # line separator
        "\u3164\u3164",  # Hangul filler
        "ab\u115f",
        "ab\u2800",  # braille blank
        "Sam\ufe0f",  # variation selector
        "Sam\U000e0041",  # tag
        "Sam\ue000",  # private use
        "Sam\U000e01ef",
        "Sam\u0378",  # unassigned
        "a\u0301\u0302\u0303\u0304",  # zalgo pile-up
        "\u0301ab",  # leading combining mark
        "!!",  # no letter or digit
        "-- --",
    ],
)
def test_invalid_nicknames(raw: str) -> None:
    assert _code(raw) is RefusalCode.nickname_invalid


@pytest.mark.parametrize(
    "raw",
    [
        "Therapist",
        "Thеrapist",  # Cyrillic e
        "THERAPIST",
        "T h e r a p i s t",
        "the-rapist",
        "Thérapist",
        "M0derator",
        "Moderator Jane",
        "mod",
        "Mods",
        "ModJane",
        "ADMIN",
        "Admin1",
        "Administrator",
        "Ａｄｍｉｎ",
        "𝐀𝐝𝐦𝐢𝐧",
        "host",
        "H0ST",
        "The Host",
        "Staff",
        "System",
        "Official",
        "Counsellor Amy",
        "Counselor",
        "Doctor Who",
        "Dr Smith",
        "dr.smith",
        "DrSmith",
        "Dr.",
        "Nurse Jo",
        "Support Team",
        "SupportTeam",
        "Psychologist",
    ],
)
def test_role_imitations_refused(raw: str) -> None:
    assert _code(raw) is RefusalCode.nickname_reserved


def test_taken_is_case_insensitive() -> None:
    assert _code("calm otter", ("Calm Otter",)) is RefusalCode.nickname_taken
    assert _code("CALM  OTTER", ("Calm Otter",)) is RefusalCode.nickname_taken
    assert _code("Straße", ("STRASSE",)) is RefusalCode.nickname_taken


@pytest.mark.parametrize(
    "raw",
    [
        "CaIm Otter",  # capital I for l
        "Ca1m Otter",
        "Саlm Оtter",  # Cyrillic С, а, О
        "CalmOtter",
        "Calm.Otter",
        "Cálm Otter",
        "Calm 0tter",
    ],
)
def test_lookalikes_of_members_refused(raw: str) -> None:
    assert _code(raw, ("Calm Otter",)) is RefusalCode.nickname_confusable


def test_refusal_messages_never_echo_input() -> None:
    secret = "Zyxwvut Qrs"
    cases = [
        (secret + "\u200b", ()),
        ("Therapist " + "Zyxwvut", ()),
        (secret.lower(), (secret,)),
        ("Zyxwvut Qr5", (secret,)),
        ("Zyxwvut" * 5, ()),
    ]
    for raw, taken in cases:
        result = validate_nickname(raw, taken)
        assert isinstance(result, Refusal)
        assert "Zyxwvut".casefold() not in result.message.casefold()


def test_skeleton_examples() -> None:
    assert compact("Thеrapist") == compact("therapist")
    assert compact("M0DERATOR") == compact("moderator")
    assert compact("Ca1m") == compact("Calm") == compact("CaIm")
    assert compact("rnary") == compact("mary")
    assert skeleton("DrSmith") == skeleton("dr smith")
    assert compact("Мария") != compact("Maria")  # different letters stay different


def test_custom_length_limits() -> None:
    assert _code_len("abc", 4, 10) is RefusalCode.nickname_invalid
    assert validate_nickname("abcd", (), min_chars=4, max_chars=4) == "abcd"


def _code_len(raw: str, lo: int, hi: int) -> RefusalCode | None:
    result = validate_nickname(raw, (), min_chars=lo, max_chars=hi)
    return result.code if isinstance(result, Refusal) else None


def test_word_lists_are_gentle_and_valid() -> None:
    assert len(ADJECTIVES) == len(set(ADJECTIVES)) == 64
    assert len(ANIMALS) == len(set(ANIMALS)) == 64
    names = [pseudonym_at(i) for i in range(COMBINATIONS)]
    assert all(validate_nickname(n, ()) == n for n in names)
    assert len({compact(n) for n in names}) == COMBINATIONS  # no two look alike


def test_assign_is_deterministic_and_probes() -> None:
    assert assign(0, ()) == "Amber Alpaca"
    assert assign(COMBINATIONS, ()) == assign(0, ())
    assert assign(-1, ()) == pseudonym_at(COMBINATIONS - 1)
    assert assign(0, ("amber alpaca",)) == pseudonym_at(1)
    assert assign(0, ("Amber A1paca",)) == pseudonym_at(1)


def test_assign_falls_back_to_suffix_when_all_taken() -> None:
    every = tuple(pseudonym_at(i) for i in range(COMBINATIONS))
    name = assign(5, every)
    assert name == pseudonym_at(5) + " 2"
    assert assign(5, (*every, name)) == pseudonym_at(5) + " 3"


@given(st.text(max_size=40), st.lists(st.text(max_size=12), max_size=5))
def test_validate_nickname_is_total_and_output_is_clean(raw: str, taken: list[str]) -> None:
    result = validate_nickname(raw, taken)
    if isinstance(result, str):
        assert 2 <= len(result) <= 32
        assert result == result.strip()
        assert "  " not in result
        assert is_safe_text(result)
        assert all(result.casefold() != t.casefold() for t in taken)
        assert validate_nickname(result, taken) == result  # idempotent
    else:
        assert result.message


@given(st.integers(), st.lists(st.sampled_from([pseudonym_at(i) for i in range(80)]), max_size=60))
def test_assign_never_conflicts(entropy: int, taken: list[str]) -> None:
    name = assign(entropy, taken)
    assert validate_nickname(name, taken) == name
