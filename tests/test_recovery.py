"""What the reconciler re-drives and when it gives up (bot.recovery): a state and the time in, a decision out."""

from __future__ import annotations

import pytest

from bot.lifecycle import RequestStatus, TrackStatus
from bot.recovery import Limits, resolve_repair, track_repair
from bot.requests import RequestMeta, RequestSnapshot, TrackState

T = TrackStatus
R = RequestStatus

NOW = 1_700_000_000.0
LIMITS = Limits(
    queued_stale=600.0,
    run_overdue=1800.0,
    retry_overdue=300.0,
    max_attempts=3,
    resolve_overdue=900.0,
    max_resolves=3,
)
THRESHOLD = {T.QUEUED: LIMITS.queued_stale, T.RUNNING: LIMITS.run_overdue, T.RETRYING: LIMITS.retry_overdue}


def state(status: TrackStatus, age: float, *, attempts: int = 1, **fields: object) -> TrackState:
    """A track that entered `status` `age` seconds before NOW."""
    return TrackState(status=status, changed_at=NOW - age, attempts=attempts, **fields)  # type: ignore[arg-type]


# --- track_repair ----------------------------------------------------------------------------------


@pytest.mark.parametrize("status", list(THRESHOLD))
def test_an_in_flight_track_is_left_alone_until_its_threshold(status: TrackStatus) -> None:
    limit = THRESHOLD[status]
    assert track_repair(state(status, 0), NOW, LIMITS) is None
    assert track_repair(state(status, limit - 1), NOW, LIMITS) is None
    assert track_repair(state(status, limit), NOW, LIMITS) is None  # exactly at the limit: not yet


@pytest.mark.parametrize("status", list(THRESHOLD))
def test_an_in_flight_track_past_its_threshold_is_requeued(status: TrackStatus) -> None:
    limit = THRESHOLD[status]
    assert track_repair(state(status, limit + 0.5), NOW, LIMITS) == "requeue"
    assert track_repair(state(status, limit * 10), NOW, LIMITS) == "requeue"


@pytest.mark.parametrize("status", list(THRESHOLD))
@pytest.mark.parametrize(("attempts", "repair"), [(0, "requeue"), (2, "requeue"), (3, "fail"), (7, "fail")])
def test_a_track_re_driven_too_often_fails_for_good(status: TrackStatus, attempts: int, repair: str) -> None:
    assert track_repair(state(status, THRESHOLD[status] + 1, attempts=attempts), NOW, LIMITS) == repair


@pytest.mark.parametrize("attempts", [0, 3, 10])
def test_an_overdue_track_is_never_failed_before_it_is_stuck(attempts: int) -> None:
    assert track_repair(state(T.RUNNING, 10, attempts=attempts), NOW, LIMITS) is None


@pytest.mark.parametrize("status", [T.PENDING, T.READY, T.SENT, T.FAILED, T.CANCELLED])
def test_a_track_not_in_flight_is_never_repaired(status: TrackStatus) -> None:
    """Pending waits for the scheduler, ready for the sender; final is final."""
    assert track_repair(state(status, 10**7, attempts=99), NOW, LIMITS) is None


def test_a_retry_delay_postpones_the_deadline() -> None:
    """A rate limit asked the track to wait: it is overdue only `retry_overdue` after that wait is over."""
    retry_at = NOW + 3600
    waiting = state(T.RETRYING, 5000, retry_at=retry_at)
    assert track_repair(waiting, NOW, LIMITS) is None
    assert track_repair(waiting, retry_at + LIMITS.retry_overdue, LIMITS) is None
    assert track_repair(waiting, retry_at + LIMITS.retry_overdue + 1, LIMITS) == "requeue"


def test_a_past_retry_time_does_not_hide_a_stuck_track() -> None:
    assert track_repair(state(T.RETRYING, 1000, retry_at=NOW - 5000), NOW, LIMITS) == "requeue"


def test_the_retry_time_only_matters_while_retrying() -> None:
    assert track_repair(state(T.RUNNING, LIMITS.run_overdue + 1, retry_at=NOW + 3600), NOW, LIMITS) == "requeue"


def test_the_queue_time_stands_in_for_a_missing_change_time() -> None:
    old = TrackState(status=T.QUEUED, queued_at=NOW - LIMITS.queued_stale - 1)
    assert track_repair(old, NOW, LIMITS) == "requeue"
    fresh = TrackState(status=T.QUEUED, queued_at=NOW - 1)
    assert track_repair(fresh, NOW, LIMITS) is None


def test_a_track_without_any_time_is_not_judged() -> None:
    assert track_repair(TrackState(status=T.RUNNING), NOW, LIMITS) is None


def test_the_change_time_wins_over_the_queue_time() -> None:
    """Queued long ago, but it started running a moment ago: not overdue."""
    running = TrackState(status=T.RUNNING, queued_at=NOW - 10**6, changed_at=NOW - 5)
    assert track_repair(running, NOW, LIMITS) is None


# --- resolve_repair --------------------------------------------------------------------------------

CREATED = NOW - 10_000


def snapshot(
    status: RequestStatus = R.RESOLVING,
    *,
    resolve_attempts: int = 1,
    resolve_at: float | None = None,
    retry_at: float | None = None,
) -> RequestSnapshot:
    return RequestSnapshot(
        meta=RequestMeta(
            id="0123456789ab", chat_id=1, user_id=2, link="https://open.spotify.com/x", created_at=CREATED
        ),
        status=status,
        resolve_attempts=resolve_attempts,
        resolve_at=resolve_at,
        retry_at=retry_at,
    )


def test_resolving_is_left_alone_until_it_is_overdue() -> None:
    assert resolve_repair(snapshot(), CREATED, LIMITS) is None
    assert resolve_repair(snapshot(), CREATED + LIMITS.resolve_overdue, LIMITS) is None


def test_an_overdue_resolve_is_sent_again() -> None:
    assert resolve_repair(snapshot(), CREATED + LIMITS.resolve_overdue + 1, LIMITS) == "redrive"
    assert resolve_repair(snapshot(resolve_attempts=2), NOW, LIMITS) == "redrive"


@pytest.mark.parametrize("attempts", [3, 4])
def test_an_overdue_resolve_sent_too_often_is_rejected(attempts: int) -> None:
    assert resolve_repair(snapshot(resolve_attempts=attempts), NOW, LIMITS) == "reject"


def test_a_re_driven_resolve_gets_a_fresh_deadline() -> None:
    redriven = snapshot(resolve_attempts=2, resolve_at=NOW - 10)
    assert resolve_repair(redriven, NOW, LIMITS) is None
    assert resolve_repair(redriven, NOW - 10 + LIMITS.resolve_overdue + 1, LIMITS) == "redrive"


def test_a_spotify_rate_limit_postpones_the_deadline() -> None:
    retry_at = NOW + 600
    delayed = snapshot(retry_at=retry_at)
    assert resolve_repair(delayed, NOW, LIMITS) is None
    assert resolve_repair(delayed, retry_at + LIMITS.resolve_overdue, LIMITS) is None
    assert resolve_repair(delayed, retry_at + LIMITS.resolve_overdue + 1, LIMITS) == "redrive"


def test_a_past_rate_limit_does_not_postpone() -> None:
    assert resolve_repair(snapshot(retry_at=CREATED - 100), NOW, LIMITS) == "redrive"


@pytest.mark.parametrize("status", [R.RUNNING, R.DONE, R.FAILED, R.CANCELLED])
def test_only_a_resolving_request_is_repaired(status: RequestStatus) -> None:
    assert resolve_repair(snapshot(status, resolve_attempts=99), NOW + 10**7, LIMITS) is None


def test_limits_default_to_three_resolves() -> None:
    limits = Limits(queued_stale=1, run_overdue=1, retry_overdue=1, max_attempts=1, resolve_overdue=1)
    assert limits.max_resolves == 3
