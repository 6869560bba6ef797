"""The bot's live copy of an open request (bot.request_view): counts, pointers and versions (pure)."""

from __future__ import annotations

from collections import Counter

import pytest

from bot.lifecycle import RequestStatus, TrackStatus
from bot.request_view import RequestView
from bot.requests import RequestMeta, RequestSnapshot, Resolution, TrackState
from bot.scheduling import Demand
from pipeline.models import Track

T = TrackStatus
R = RequestStatus
RID = "0123456789ab"


def snapshot(*statuses: TrackStatus, status: RequestStatus = R.RUNNING, next_send: int = 0) -> RequestSnapshot:
    """A request with one track per status (version 1 each, as after the resolver wrote them)."""
    count = len(statuses)
    return RequestSnapshot(
        meta=RequestMeta(id=RID, chat_id=10, user_id=20, link="https://spotify.link/x", created_at=1.0),
        status=status,
        resolution=Resolution(kind="album", name="Discovery", total=count, available=count),
        tracks=[Track(spotify_id=f"{i:022d}", title=f"Song {i}", artists=["Daft Punk"]) for i in range(count)],
        states=[TrackState(status=s, version=1) for s in statuses],
        next_send=next_send,
    )


def newer(view: RequestView, index: int, status: TrackStatus, **fields: object) -> TrackState:
    """The state the next transition of track `index` would store."""
    version = view.snapshot.states[index].version + 1
    return TrackState(status=status, version=version, **fields)  # type: ignore[arg-type]


def recount(view: RequestView) -> Counter[TrackStatus]:
    return Counter(state.status for state in view.snapshot.states)


def assert_counts_match(view: RequestView) -> None:
    assert +view.counts == recount(view)


# --- counts and versions ---------------------------------------------------------------------------


def test_counts_start_from_the_snapshot() -> None:
    view = RequestView(snapshot(T.PENDING, T.PENDING, T.READY, T.SENT))
    assert view.counts[T.PENDING] == 2
    assert view.counts[T.READY] == 1
    assert view.counts[T.SENT] == 1
    assert view.counts[T.RUNNING] == 0
    assert (view.rid, view.chat_id, view.status) == (RID, 10, R.RUNNING)


def test_counts_follow_set_state() -> None:
    view = RequestView(snapshot(T.PENDING, T.PENDING, T.PENDING))
    for index, status in [(0, T.QUEUED), (0, T.RUNNING), (1, T.QUEUED), (0, T.READY), (1, T.FAILED), (0, T.SENT)]:
        assert view.set_state(index, newer(view, index, status))
        assert_counts_match(view)
    assert +view.counts == Counter({T.SENT: 1, T.FAILED: 1, T.PENDING: 1})


def test_set_state_marks_the_view_dirty() -> None:
    view = RequestView(snapshot(T.PENDING))
    view.dirty = False
    assert view.set_state(0, newer(view, 0, T.QUEUED))
    assert view.dirty


def test_an_older_or_equal_version_never_replaces_a_newer_one() -> None:
    """Events and the bot's own writes may arrive in any order: the copy never goes back."""
    view = RequestView(snapshot(T.PENDING))
    queued = newer(view, 0, T.QUEUED)
    running = TrackState(status=T.RUNNING, version=queued.version + 1)
    assert view.set_state(0, running)
    view.dirty = False
    assert not view.set_state(0, queued)  # the event of the earlier transition arrives late
    assert not view.set_state(0, TrackState(status=T.FAILED, version=running.version))
    assert view.snapshot.states[0] == running
    assert not view.dirty
    assert_counts_match(view)


@pytest.mark.parametrize("index", [-1, 2, 100])
def test_set_state_of_an_unknown_track_is_ignored(index: int) -> None:
    view = RequestView(snapshot(T.PENDING, T.PENDING))
    assert not view.set_state(index, TrackState(status=T.QUEUED, version=99))
    assert [s.status for s in view.snapshot.states] == [T.PENDING, T.PENDING]
    assert_counts_match(view)


def test_replace_keeps_the_newer_states_of_the_copy() -> None:
    """A fresh read from Redis may be older than events already applied: those stay."""
    view = RequestView(snapshot(T.PENDING, T.PENDING, T.PENDING))
    view.set_state(0, newer(view, 0, T.QUEUED))  # version 2, not in the read below
    fresh = snapshot(T.PENDING, T.RUNNING, T.PENDING)
    fresh.states[1].version = 5  # newer than the copy
    view.replace(fresh)
    assert [(s.status, s.version) for s in view.snapshot.states] == [(T.QUEUED, 2), (T.RUNNING, 5), (T.PENDING, 1)]
    assert_counts_match(view)
    assert view.dirty


def test_replace_keeps_the_further_delivery_pointer() -> None:
    view = RequestView(snapshot(T.SENT, T.SENT, T.PENDING))
    assert view.advance_pointer()
    view.replace(snapshot(T.SENT, T.SENT, T.PENDING, next_send=1))  # the pointer write is still on its way
    assert view.next_send == 2
    view.replace(snapshot(T.SENT, T.SENT, T.SENT, next_send=3))
    assert view.next_send == 3


def test_replace_takes_the_status_and_a_new_track_list() -> None:
    """Resolving → running: the copy had no tracks, the read has them all."""
    view = RequestView(snapshot(status=R.RESOLVING))
    view.replace(snapshot(T.PENDING, T.READY))
    assert view.status == R.RUNNING
    assert [s.status for s in view.snapshot.states] == [T.PENDING, T.READY]
    assert_counts_match(view)
    assert view.next_waiting() == 0


def test_replace_takes_a_cancel() -> None:
    view = RequestView(snapshot(T.RUNNING, T.SENT))
    cancelled = snapshot(T.CANCELLED, T.SENT, status=R.CANCELLED)
    cancelled.states[0].version = 2
    view.replace(cancelled)
    assert view.status == R.CANCELLED
    assert +view.counts == Counter({T.CANCELLED: 1, T.SENT: 1})
    assert view.demand() is None


# --- next_waiting ----------------------------------------------------------------------------------


def test_next_waiting_is_the_first_pending_track() -> None:
    view = RequestView(snapshot(T.SENT, T.QUEUED, T.PENDING, T.PENDING))
    assert view.next_waiting() == 2
    view.set_state(2, newer(view, 2, T.QUEUED))
    assert view.next_waiting() == 3
    view.set_state(3, newer(view, 3, T.QUEUED))
    assert view.next_waiting() is None


def test_next_waiting_goes_back_when_a_track_is_pending_again() -> None:
    """Telegram forgot a cached file: the track is fetched again, before the later ones."""
    view = RequestView(snapshot(T.READY, T.PENDING, T.PENDING))
    view.set_state(1, newer(view, 1, T.QUEUED))
    assert view.next_waiting() == 2
    view.set_state(0, newer(view, 0, T.PENDING))
    assert view.next_waiting() == 0


def test_next_waiting_after_replace() -> None:
    view = RequestView(snapshot(T.PENDING, T.PENDING))
    view.set_state(0, newer(view, 0, T.QUEUED))
    view.set_state(1, newer(view, 1, T.QUEUED))
    assert view.next_waiting() is None
    fresh = snapshot(T.PENDING, T.QUEUED)
    fresh.states[0].version = 3  # re-uploaded meanwhile
    view.replace(fresh)
    assert view.next_waiting() == 0


def test_no_tracks_nothing_waits() -> None:
    assert RequestView(snapshot()).next_waiting() is None


# --- the delivery pointer --------------------------------------------------------------------------


@pytest.mark.parametrize("settled", [T.SENT, T.FAILED, T.CANCELLED])
def test_advance_pointer_passes_settled_tracks(settled: TrackStatus) -> None:
    view = RequestView(snapshot(settled, settled, T.PENDING))
    assert view.advance_pointer()
    assert view.next_send == 2
    assert not view.advance_pointer()


@pytest.mark.parametrize("unsettled", [T.PENDING, T.QUEUED, T.RUNNING, T.RETRYING, T.READY])
def test_advance_pointer_stops_at_an_unsettled_track(unsettled: TrackStatus) -> None:
    """Delivery is in order: a track not yet sent (or given up) holds back every later one."""
    view = RequestView(snapshot(T.SENT, unsettled, T.SENT))
    assert view.advance_pointer()
    assert view.next_send == 1
    assert not view.advance_pointer()
    assert view.next_send == 1


def test_advance_pointer_to_the_end_delivers_all() -> None:
    view = RequestView(snapshot(T.SENT, T.FAILED))
    assert not view.all_delivered
    view.advance_pointer()
    assert view.next_send == 2
    assert view.all_delivered


def test_all_delivered_only_while_running() -> None:
    view = RequestView(snapshot(T.SENT, status=R.CANCELLED, next_send=1))
    assert not view.all_delivered
    assert RequestView(snapshot(status=R.RUNNING)).all_delivered  # no tracks at all


def test_ready_to_send_only_the_track_at_the_pointer() -> None:
    view = RequestView(snapshot(T.RUNNING, T.READY))
    assert view.ready_to_send() is None  # track 1 is ready, but 0 goes first
    view.set_state(0, newer(view, 0, T.READY))
    assert view.ready_to_send() == 0
    view.set_state(0, newer(view, 0, T.SENT))
    assert view.ready_to_send() is None  # the pointer has not moved yet
    view.advance_pointer()
    assert view.ready_to_send() == 1


def test_ready_to_send_waits_while_the_send_is_unrecorded() -> None:
    """Telegram has the audio but Redis does not know yet: never send it twice."""
    view = RequestView(snapshot(T.READY, T.READY))
    view.unrecorded[0] = "FILE-ID"
    assert view.ready_to_send() is None
    del view.unrecorded[0]
    assert view.ready_to_send() == 0


@pytest.mark.parametrize("status", [R.RESOLVING, R.DONE, R.FAILED, R.CANCELLED])
def test_nothing_is_sent_unless_running(status: RequestStatus) -> None:
    assert RequestView(snapshot(T.READY, status=status)).ready_to_send() is None


def test_nothing_to_send_past_the_end() -> None:
    assert RequestView(snapshot(T.SENT, next_send=1)).ready_to_send() is None


# --- demand ----------------------------------------------------------------------------------------


def test_demand_counts_what_the_scheduler_needs() -> None:
    view = RequestView(
        snapshot(T.PENDING, T.PENDING, T.PENDING, T.QUEUED, T.RUNNING, T.RUNNING, T.RETRYING, T.READY, T.SENT)
    )
    assert view.demand() == Demand(rid=RID, chat_id=10, working=3, retrying=1, held=1, waiting=3)


def test_demand_follows_set_state() -> None:
    view = RequestView(snapshot(T.PENDING, T.PENDING))
    view.set_state(0, newer(view, 0, T.QUEUED))
    assert view.demand() == Demand(rid=RID, chat_id=10, working=1, retrying=0, held=0, waiting=1)
    view.set_state(0, newer(view, 0, T.READY))
    assert view.demand() == Demand(rid=RID, chat_id=10, working=0, retrying=0, held=1, waiting=1)


@pytest.mark.parametrize("status", [R.RESOLVING, R.DONE, R.FAILED, R.CANCELLED])
def test_no_demand_unless_running(status: RequestStatus) -> None:
    assert RequestView(snapshot(T.PENDING, status=status)).demand() is None
