"""ALLOWED_USERS parsing and the access decision (pure)."""

from __future__ import annotations

import pytest

from bot.access import AllowedUsers


@pytest.mark.parametrize("text", ["", "   ", ",", " , ; ,"])
def test_empty_means_nobody(text: str) -> None:
    allowed = AllowedUsers.parse(text)
    assert allowed == AllowedUsers.nobody()
    assert not allowed
    assert not allowed.everyone
    assert allowed.ids == frozenset()


@pytest.mark.parametrize(
    ("text", "ids"),
    [
        ("1", {1}),
        ("1,2", {1, 2}),
        (" 1 ; 2 ", {1, 2}),
        ("1;2,3", {1, 2, 3}),
        ("1,,2,", {1, 2}),
        ("7,7,7", {7}),
        ("123456789012", {123456789012}),
        ("-100123, 5", {-100123, 5}),
        ("007", {7}),
    ],
)
def test_list_of_ids(text: str, ids: set[int]) -> None:
    allowed = AllowedUsers.parse(text)
    assert allowed.ids == frozenset(ids)
    assert not allowed.everyone
    assert allowed


@pytest.mark.parametrize("text", ["*", " * ", "*,", ";*;"])
def test_star_means_everyone(text: str) -> None:
    allowed = AllowedUsers.parse(text)
    assert allowed.everyone
    assert allowed
    assert allowed.allows(1)
    assert allowed.allows(-5)


@pytest.mark.parametrize("text", ["*,1", "1,*", "*;*"])
def test_star_mixed_with_anything_is_an_error(text: str) -> None:
    with pytest.raises(ValueError, match=r"either \*"):
        AllowedUsers.parse(text)


@pytest.mark.parametrize(
    ("text", "bad"),
    [("abc", "abc"), ("1,abc", "abc"), ("1 2", "1 2"), ("@someone", "@someone"), ("-", "-"), ("1.5", "1.5")],
)
def test_non_numeric_is_an_error_naming_the_value(text: str, bad: str) -> None:
    with pytest.raises(ValueError, match="not a numeric Telegram user id") as caught:
        AllowedUsers.parse(text)
    assert repr(bad) in str(caught.value)


def test_doubled_minus_is_still_rejected() -> None:
    with pytest.raises(ValueError):
        AllowedUsers.parse("--5")


def test_allows_only_listed_ids() -> None:
    allowed = AllowedUsers.parse("10, -20")
    assert allowed.allows(10)
    assert allowed.allows(-20)
    assert not allowed.allows(20)
    assert not allowed.allows(11)
    assert not allowed.allows(0)


def test_unknown_user_is_never_allowed() -> None:
    assert not AllowedUsers.parse("*").allows(None)
    assert not AllowedUsers.parse("1").allows(None)
    assert not AllowedUsers.nobody().allows(None)


def test_nobody_allows_nobody() -> None:
    nobody = AllowedUsers.nobody()
    assert not nobody.allows(1)
    assert not nobody.allows(0)


def test_value_object() -> None:
    assert AllowedUsers.parse("2,1") == AllowedUsers.parse("1;2")
    assert hash(AllowedUsers.parse("2,1")) == hash(AllowedUsers.parse("1;2"))
    with pytest.raises(AttributeError):
        AllowedUsers.parse("1").everyone = True  # type: ignore[misc]
