"""The fair share of worker slots (bot.scheduling): counts in, request ids out (pure)."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.scheduling import Demand, allocate, hold_limit_for, slots_for

WIDE = {"window": 100, "hold_limit": 1000}  # limits that never bind


def demand(
    rid: str, chat_id: int = 1, *, working: int = 0, retrying: int = 0, held: int = 0, waiting: int = 100
) -> Demand:
    return Demand(rid=rid, chat_id=chat_id, working=working, retrying=retrying, held=held, waiting=waiting)


# --- sharing ---------------------------------------------------------------------------------------


def test_a_lone_request_gets_every_slot() -> None:
    assert allocate([demand("a")], 5, **WIDE) == ["a"] * 5


def test_a_lone_request_fills_only_the_free_slots() -> None:
    assert allocate([demand("a", working=3)], 5, **WIDE) == ["a"] * 2


def test_two_requests_share_the_slots() -> None:
    picks = allocate([demand("a", 1), demand("b", 2)], 6, **WIDE)
    assert picks == ["a", "b"] * 3


def test_two_requests_of_one_chat_take_turns() -> None:
    assert allocate([demand("a"), demand("b")], 4, **WIDE) == ["a", "b", "a", "b"]


def test_a_request_behind_catches_up_first() -> None:
    """Slots go to the request with the fewest tracks in flight until they are even."""
    picks = allocate([demand("a", working=3), demand("b")], 8, **WIDE)
    assert picks == ["b", "b", "b", "a", "b"]


@pytest.mark.parametrize("same_chat", [True, False])
def test_a_new_request_takes_the_next_free_slot_before_a_big_one(same_chat: bool) -> None:
    """A single track shared during someone's 500-track playlist does not wait behind it."""
    big = demand("big", 1, working=3, waiting=497)
    new = demand("new", 1 if same_chat else 2, waiting=1)
    assert allocate([big, new], 4, **WIDE) == ["new"]
    assert allocate([big, new], 6, **WIDE) == ["new", "big", "big"]


def test_chats_are_balanced_before_requests_within_a_chat() -> None:
    """Chat 1 shared two links, chat 2 one: chat 2 gets as many slots as chat 1 in all."""
    demands = [demand("a", 1), demand("b", 1), demand("c", 2)]
    assert allocate(demands, 4, **WIDE) == ["a", "c", "b", "c"]


def test_a_quiet_chat_goes_before_a_fresh_request_of_a_busy_chat() -> None:
    """Chat 2 first catches up with chat 1; only then does chat 1's new request get its turn."""
    demands = [demand("a", 1, working=2), demand("b", 1), demand("c", 2)]
    assert allocate(demands, 5, **WIDE) == ["c", "c", "b"]


def test_ties_go_to_the_oldest_request() -> None:
    assert allocate([demand("a"), demand("b")], 1, **WIDE) == ["a"]
    assert allocate([demand("b"), demand("a")], 1, **WIDE) == ["b"]
    assert allocate([demand("a", 2), demand("b", 1)], 1, **WIDE) == ["a"]


def test_retrying_and_held_tracks_use_no_worker_slot() -> None:
    """A track waiting out a retry or a file waiting to be sent keeps no worker busy."""
    assert allocate([demand("a", retrying=2, held=2)], 3, window=10, hold_limit=10) == ["a"] * 3


# --- limits ----------------------------------------------------------------------------------------


def test_the_window_caps_tracks_in_flight_per_request() -> None:
    assert allocate([demand("a"), demand("b", 2)], 10, window=2, hold_limit=100) == ["a", "b", "a", "b"]


def test_retrying_tracks_count_against_the_window() -> None:
    assert allocate([demand("a", working=1, retrying=2)], 10, window=3, hold_limit=100) == []
    assert allocate([demand("a", working=1, retrying=1)], 10, window=3, hold_limit=100) == ["a"]


def test_held_files_count_against_the_hold_limit() -> None:
    """A chat that stalls (files ready but unsent) cannot fill the disk."""
    assert allocate([demand("a", held=4)], 10, window=10, hold_limit=4) == []
    assert allocate([demand("a", working=1, retrying=1, held=1)], 10, window=10, hold_limit=4) == ["a"]
    stalled, other = demand("a", held=3), demand("b", 2)
    assert allocate([stalled, other], 4, window=10, hold_limit=4) == ["a", "b", "b", "b"]


def test_never_more_picks_than_waiting_tracks() -> None:
    assert allocate([demand("a", waiting=2), demand("b", 2, waiting=1)], 10, **WIDE) == ["a", "b", "a"]


@pytest.mark.parametrize("working", [4, 5, 9])
def test_no_picks_when_the_slots_are_full(working: int) -> None:
    """Working beyond the slots happens when workers leave: nothing more starts until it drains."""
    assert allocate([demand("a", working=working), demand("b", 2)], 4, **WIDE) == []


def test_no_picks_when_nothing_waits() -> None:
    assert allocate([demand("a", waiting=0), demand("b", 2, waiting=0)], 4, **WIDE) == []
    assert allocate([], 4, **WIDE) == []


def test_no_picks_without_workers() -> None:
    assert allocate([demand("a")], slots_for(0), **WIDE) == []


# --- sizing ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("threads", "slots"), [(0, 0), (1, 2), (4, 5), (32, 33)])
def test_slots_keep_one_message_ready_beyond_the_threads(threads: int, slots: int) -> None:
    assert slots_for(threads) == slots


@pytest.mark.parametrize(("threads", "limit"), [(0, 4), (1, 4), (2, 6), (4, 10), (32, 66)])
def test_hold_limit_keeps_every_worker_busy_twice_over(threads: int, limit: int) -> None:
    assert hold_limit_for(threads) == limit
    assert hold_limit_for(threads) >= slots_for(threads)


# --- properties ------------------------------------------------------------------------------------


def startable(d: Demand, window: int, hold_limit: int) -> int:
    """Tracks `d` may start under its own limits, however many slots are free."""
    return max(0, min(d.waiting, window - d.working - d.retrying, hold_limit - d.working - d.retrying - d.held))


@st.composite
def demands(draw: st.DrawFn) -> list[Demand]:
    count = draw(st.integers(0, 8))
    return [
        Demand(
            rid=f"r{i}",
            chat_id=draw(st.integers(1, 4)),
            working=draw(st.integers(0, 6)),
            retrying=draw(st.integers(0, 3)),
            held=draw(st.integers(0, 6)),
            waiting=draw(st.integers(0, 12)),
        )
        for i in range(count)
    ]


SLOTS = st.integers(0, 40)
WINDOWS = st.integers(1, 10)
HOLD_LIMITS = st.integers(1, 16)


@settings(max_examples=500, deadline=None)
@given(demands(), SLOTS, WINDOWS, HOLD_LIMITS)
def test_every_free_slot_is_used_within_the_limits(
    items: list[Demand], slots: int, window: int, hold_limit: int
) -> None:
    picks = Counter(allocate(items, slots, window=window, hold_limit=hold_limit))
    free = max(0, slots - sum(d.working for d in items))
    room = {d.rid: startable(d, window, hold_limit) for d in items}
    assert sum(picks.values()) == min(free, sum(room.values()))
    for rid, count in picks.items():
        assert count <= room[rid]


@settings(max_examples=500, deadline=None)
@given(demands(), SLOTS, WINDOWS, HOLD_LIMITS)
def test_slots_go_to_the_least_loaded_chat_then_request(
    items: list[Demand], slots: int, window: int, hold_limit: int
) -> None:
    """A request that could still start more was passed over only for chats (and, within its chat,
    requests) that end up at most one track ahead of it."""
    picks = Counter(allocate(items, slots, window=window, hold_limit=hold_limit))
    working = {d.rid: d.working + picks[d.rid] for d in items}
    chat_load: Counter[int] = Counter()
    for d in items:
        chat_load[d.chat_id] += working[d.rid]
    for left_out in (d for d in items if picks[d.rid] < startable(d, window, hold_limit)):
        for d in items:
            if picks[d.rid]:
                assert chat_load[d.chat_id] <= chat_load[left_out.chat_id] + 1
                if d.chat_id == left_out.chat_id:
                    assert working[d.rid] <= working[left_out.rid] + 1


@settings(max_examples=500, deadline=None)
@given(demands(), st.booleans(), st.integers(0, 5), SLOTS, WINDOWS, HOLD_LIMITS)
def test_every_request_with_room_gets_a_slot_when_there_are_enough(
    items: list[Demand], one_chat: bool, in_flight: int, slots: int, window: int, hold_limit: int
) -> None:
    """When loads are even (one chat, or one request per chat, and as many in flight each), enough free slots
    give every request that can start at least one. (Uneven loads are evened out first: see above.)"""
    items = [replace(d, chat_id=1 if one_chat else i, working=in_flight) for i, d in enumerate(items)]
    picks = set(allocate(items, slots, window=window, hold_limit=hold_limit))
    free = max(0, slots - sum(d.working for d in items))
    with_room = {d.rid for d in items if startable(d, window, hold_limit) > 0}
    if free >= len(with_room):
        assert with_room <= picks
