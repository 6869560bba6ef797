"""Per-chat pacing of Telegram calls, on a clock the test controls."""

from __future__ import annotations

import pytest

from bot.pacing import MAX_IDLE_CHATS, ChatPacer

CHAT, OTHER = 100, 200


class Clock:
    """A clock that moves only when told to."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def pacer(clock: Clock) -> ChatPacer:
    return ChatPacer(1.0, max_backoff=60.0, clock=clock)


def test_a_new_chat_is_ready(pacer: ChatPacer) -> None:
    assert pacer.ready(CHAT)
    assert pacer.wait_time(CHAT) == 0.0


def test_sent_makes_the_chat_wait_one_interval(pacer: ChatPacer, clock: Clock) -> None:
    pacer.sent(CHAT)
    assert not pacer.ready(CHAT)
    assert pacer.wait_time(CHAT) == pytest.approx(1.0)
    clock.advance(0.4)
    assert not pacer.ready(CHAT)
    assert pacer.wait_time(CHAT) == pytest.approx(0.6)
    clock.advance(0.6)
    assert pacer.ready(CHAT)
    assert pacer.wait_time(CHAT) == 0.0
    clock.advance(100)
    assert pacer.wait_time(CHAT) == 0.0


def test_chats_are_paced_independently(pacer: ChatPacer) -> None:
    pacer.sent(CHAT)
    assert not pacer.ready(CHAT)
    assert pacer.ready(OTHER)


@pytest.mark.parametrize("interval", [0.5, 2.0, 3.0])
def test_custom_interval(clock: Clock, interval: float) -> None:
    pacer = ChatPacer(interval, clock=clock)
    pacer.sent(CHAT)
    assert pacer.wait_time(CHAT) == pytest.approx(interval)


def test_zero_interval_never_waits_after_a_send(clock: Clock) -> None:
    pacer = ChatPacer(0.0, clock=clock)
    pacer.sent(CHAT)
    assert pacer.ready(CHAT)


def test_retry_after_blocks_the_chat_for_as_long_as_telegram_said(pacer: ChatPacer, clock: Clock) -> None:
    pacer.retry_after(CHAT, 37)
    assert pacer.wait_time(CHAT) == pytest.approx(37)
    clock.advance(36.9)
    assert not pacer.ready(CHAT)
    clock.advance(0.1)
    assert pacer.ready(CHAT)
    assert pacer.ready(OTHER)


@pytest.mark.parametrize("seconds", [0, 0.2, -3])
def test_retry_after_waits_at_least_one_interval(pacer: ChatPacer, seconds: float) -> None:
    pacer.retry_after(CHAT, seconds)
    assert pacer.wait_time(CHAT) == pytest.approx(1.0)


def test_retry_after_replaces_a_shorter_wait(pacer: ChatPacer) -> None:
    pacer.sent(CHAT)
    pacer.retry_after(CHAT, 10)
    assert pacer.wait_time(CHAT) == pytest.approx(10)


def test_failed_backs_off_exponentially_up_to_the_cap(pacer: ChatPacer) -> None:
    waits = [pacer.failed(CHAT) for _ in range(9)]
    assert waits == [1, 2, 4, 8, 16, 32, 60, 60, 60]
    assert pacer.wait_time(CHAT) == pytest.approx(60)


def test_failed_backs_off_from_at_least_one_second_and_respects_a_custom_cap(clock: Clock) -> None:
    pacer = ChatPacer(0.5, max_backoff=3.0, clock=clock)
    assert [pacer.failed(CHAT) for _ in range(5)] == [1.0, 2.0, 3.0, 3.0, 3.0]


def test_failed_blocks_the_chat_for_the_returned_wait(pacer: ChatPacer, clock: Clock) -> None:
    pacer.failed(CHAT)
    wait = pacer.failed(CHAT)
    assert wait == 2
    assert pacer.wait_time(CHAT) == pytest.approx(wait)
    clock.advance(wait - 0.01)
    assert not pacer.ready(CHAT)
    clock.advance(0.01)
    assert pacer.ready(CHAT)


def test_failures_are_counted_per_chat(pacer: ChatPacer) -> None:
    pacer.failed(CHAT)
    pacer.failed(CHAT)
    assert pacer.failed(OTHER) == 1
    assert pacer.failed(CHAT) == 4


def test_sent_resets_the_backoff(pacer: ChatPacer, clock: Clock) -> None:
    for _ in range(4):
        pacer.failed(CHAT)
    clock.advance(60)
    pacer.sent(CHAT)
    assert pacer.wait_time(CHAT) == pytest.approx(1.0)
    assert pacer.failed(CHAT) == 1
    assert pacer.failed(CHAT) == 2


def test_retry_after_does_not_reset_the_backoff(pacer: ChatPacer) -> None:
    pacer.failed(CHAT)
    pacer.failed(CHAT)
    pacer.retry_after(CHAT, 5)
    assert pacer.failed(CHAT) == 4


def test_sent_on_one_chat_keeps_another_chats_backoff(pacer: ChatPacer) -> None:
    pacer.failed(OTHER)
    pacer.failed(OTHER)
    pacer.sent(CHAT)
    assert pacer.failed(OTHER) == 4


def test_default_clock_is_monotonic_and_works() -> None:
    pacer = ChatPacer(1000.0)
    pacer.sent(CHAT)
    assert not pacer.ready(CHAT)
    assert 0 < pacer.wait_time(CHAT) <= 1000.0


def test_failed_backs_off_even_with_zero_interval(clock: Clock) -> None:
    pacer = ChatPacer(0.0, clock=clock)
    first, second = pacer.failed(CHAT), pacer.failed(CHAT)
    assert 0 < first < second


# --- burst ---------------------------------------------------------------------------------------


@pytest.fixture
def bursty(clock: Clock) -> ChatPacer:
    return ChatPacer(1.0, burst=3, clock=clock)


def send_while_ready(pacer: ChatPacer, chat_id: int = CHAT) -> int:
    """Send to the chat for as long as the pacer lets it go at once; how many went."""
    count = 0
    while pacer.ready(chat_id) and count < 100:
        pacer.sent(chat_id)
        count += 1
    return count


def test_the_default_burst_is_one(pacer: ChatPacer) -> None:
    assert pacer.burst == 1
    assert send_while_ready(pacer) == 1


def test_a_burst_goes_at_once_then_one_per_interval(bursty: ChatPacer, clock: Clock) -> None:
    """A cached song's reply, audio and summary arrive together; the next ones keep the chat's pace."""
    assert send_while_ready(bursty) == 3
    assert bursty.wait_time(CHAT) == pytest.approx(1.0)
    for _ in range(5):
        clock.advance(1.0)
        assert send_while_ready(bursty) == 1
        assert bursty.wait_time(CHAT) == pytest.approx(1.0)


def test_tokens_refill_over_time(bursty: ChatPacer, clock: Clock) -> None:
    send_while_ready(bursty)
    clock.advance(1.5)
    assert send_while_ready(bursty) == 1
    assert bursty.wait_time(CHAT) == pytest.approx(0.5)
    clock.advance(2.5)
    assert send_while_ready(bursty) == 3


def test_an_idle_chat_saves_up_no_more_than_the_burst(bursty: ChatPacer, clock: Clock) -> None:
    send_while_ready(bursty)
    clock.advance(3600)
    assert send_while_ready(bursty) == 3


def test_each_chat_has_its_own_bucket(bursty: ChatPacer) -> None:
    assert send_while_ready(bursty, CHAT) == 3
    assert send_while_ready(bursty, OTHER) == 3


def test_retry_after_empties_the_bucket(bursty: ChatPacer, clock: Clock) -> None:
    bursty.sent(CHAT)
    bursty.retry_after(CHAT, 0.5)
    assert bursty.wait_time(CHAT) == pytest.approx(1.0)  # not 0.5: the bucket is empty
    clock.advance(1.0)
    assert send_while_ready(bursty) == 1


def test_no_burst_right_after_a_retry_after(bursty: ChatPacer, clock: Clock) -> None:
    """Telegram said 429: when it allows again, calls resume at the chat's pace, not with a burst."""
    bursty.retry_after(CHAT, 30)
    clock.advance(29.9)
    assert not bursty.ready(CHAT)
    clock.advance(0.1)
    assert send_while_ready(bursty) == 1
    assert bursty.wait_time(CHAT) == pytest.approx(1.0)


def test_a_failure_backoff_also_applies_to_a_bursty_chat(bursty: ChatPacer, clock: Clock) -> None:
    assert bursty.failed(CHAT) == 1.0
    assert not bursty.ready(CHAT)
    clock.advance(1.0)
    assert bursty.ready(CHAT)


# --- memory ----------------------------------------------------------------------------------------


def test_many_chats_do_not_grow_memory_without_bound(clock: Clock) -> None:
    """A bot in thousands of chats keeps state only for those still waiting out their pace."""
    pacer = ChatPacer(1.0, burst=2, clock=clock)
    largest = 0
    for chat_id in range(5 * MAX_IDLE_CHATS):
        pacer.sent(chat_id)
        clock.advance(0.01)
        largest = max(largest, len(pacer._buckets))  # the only way to see its memory
    assert largest <= MAX_IDLE_CHATS + 1


def test_idle_chats_are_forgotten_but_waiting_ones_are_kept(clock: Clock) -> None:
    pacer = ChatPacer(1.0, clock=clock)
    first = 10_000
    for chat_id in range(first, first + MAX_IDLE_CHATS):
        pacer.sent(chat_id)
    pacer.retry_after(-1, 600)  # still blocked when the others are forgotten
    clock.advance(10)
    pacer.sent(CHAT)
    pacer.sent(OTHER)
    assert len(pacer._buckets) <= 3
    assert not pacer.ready(CHAT)
    assert not pacer.ready(-1)
    assert pacer.wait_time(-1) == pytest.approx(590)
    assert pacer.ready(first)  # a forgotten chat starts afresh
