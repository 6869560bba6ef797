"""ALLOWED_USERS parsing and the access decision (pure)."""

from __future__ import annotations

import pytest

from bot.access import AllowedUsers, RefusalLimiter


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


# --- RefusalLimiter ------------------------------------------------------------------------------

NOW = 1_700_000_000.0


def test_a_stranger_is_refused_once_per_period_in_each_chat() -> None:
    limiter = RefusalLimiter(per_user=600, burst=20, window=60)
    assert limiter.allow(1, 100, NOW)
    assert not limiter.allow(1, 100, NOW + 1)
    assert not limiter.allow(1, 100, NOW + 599)
    assert limiter.allow(1, 100, NOW + 600)
    assert not limiter.allow(1, 100, NOW + 601)


def test_each_chat_and_each_user_gets_its_own_refusal() -> None:
    limiter = RefusalLimiter(per_user=600, burst=20, window=60)
    assert limiter.allow(1, 100, NOW)
    assert limiter.allow(2, 100, NOW)  # the same person in another chat
    assert limiter.allow(1, 200, NOW)  # another person in the same chat
    assert not limiter.allow(2, 100, NOW)


def test_an_unknown_sender_gets_no_refusal() -> None:
    """A channel post or an anonymous admin: no user id to show, so nothing to answer."""
    limiter = RefusalLimiter()
    assert not limiter.allow(1, None, NOW)
    assert limiter.allow(1, 100, NOW)


def test_all_strangers_together_are_capped_per_window() -> None:
    limiter = RefusalLimiter(per_user=600, burst=3, window=60)
    assert [limiter.allow(1, user, NOW + user) for user in range(5)] == [True, True, True, False, False]
    assert not limiter.allow(2, 99, NOW + 59)
    assert limiter.allow(2, 99, NOW + 60)  # the first refusal left the window
    assert not limiter.allow(2, 98, NOW + 60.5)


def test_a_capped_stranger_is_answered_later() -> None:
    """Being held back by the global cap does not count as having been refused."""
    limiter = RefusalLimiter(per_user=600, burst=1, window=60)
    assert limiter.allow(1, 100, NOW)
    assert not limiter.allow(1, 200, NOW + 1)
    assert limiter.allow(1, 200, NOW + 61)


def test_the_defaults() -> None:
    limiter = RefusalLimiter()
    assert (limiter.per_user, limiter.burst, limiter.window) == (600.0, 20, 60.0)
    assert sum(limiter.allow(1, user, NOW) for user in range(100)) == 20


def test_memory_stays_bounded_under_a_flood_of_strangers() -> None:
    """Entries expire: however many strangers write over time, only the recent ones are remembered."""
    limiter = RefusalLimiter(per_user=600, burst=20, window=60)
    largest = 0
    for n in range(20_000):
        limiter.allow(n % 50, n, NOW + n * 0.5)
        largest = max(largest, len(limiter._last), len(limiter._recent))  # the only way to see its memory
    assert largest <= 20 * (600 // 60 + 1)
    limiter.allow(1, -1, NOW + 10**6)
    assert (len(limiter._last), len(limiter._recent)) == (1, 1)
