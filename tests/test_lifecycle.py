"""The state table of requests and tracks (bot.lifecycle) and the pure transition helper of bot.schema.

The expected tables below are written out by hand from the lifecycle docstring, so that a change to the
code's table has to be made on purpose in three places: the code, its docstring and here.
"""

from __future__ import annotations

import itertools

import pytest

from bot import lifecycle, schema
from bot.lifecycle import (
    REQUEST_FINAL,
    REQUEST_TRANSITIONS,
    TRACK_FINAL,
    TRACK_IN_FLIGHT,
    TRACK_TRANSITIONS,
    RequestStatus,
    TrackStatus,
    request_target,
    track_target,
)
from bot.requests import TrackState

T = TrackStatus
R = RequestStatus

EXPECTED_TRACK: dict[str, tuple[set[TrackStatus], TrackStatus]] = {
    "queue": ({T.PENDING}, T.QUEUED),
    "requeue": ({T.QUEUED, T.RUNNING, T.RETRYING}, T.QUEUED),
    "start": ({T.QUEUED, T.RETRYING, T.RUNNING}, T.RUNNING),
    "retry": ({T.RUNNING}, T.RETRYING),
    "ready": ({T.RUNNING}, T.READY),
    "claim": ({T.READY}, T.READY),
    "sent": ({T.READY}, T.SENT),
    "reupload": ({T.READY}, T.PENDING),
    "fail": ({T.QUEUED, T.RUNNING, T.RETRYING, T.READY}, T.FAILED),
    "cancel": ({T.PENDING, T.QUEUED, T.RUNNING, T.RETRYING, T.READY}, T.CANCELLED),
}

EXPECTED_REQUEST: dict[str, tuple[set[RequestStatus], RequestStatus]] = {
    "resolved": ({R.RESOLVING}, R.RUNNING),
    "reject": ({R.RESOLVING}, R.FAILED),
    "finish": ({R.RUNNING}, R.DONE),
    "cancel": ({R.RESOLVING, R.RUNNING}, R.CANCELLED),
}


def expected_track(event: str, status: TrackStatus) -> TrackStatus | None:
    sources, target = EXPECTED_TRACK[event]
    return target if status in sources else None


def expected_request(event: str, status: RequestStatus) -> RequestStatus | None:
    sources, target = EXPECTED_REQUEST[event]
    return target if status in sources else None


# --- the tables ------------------------------------------------------------------------------------


def test_the_code_has_exactly_the_expected_events() -> None:
    assert set(TRACK_TRANSITIONS) == set(EXPECTED_TRACK)
    assert set(REQUEST_TRANSITIONS) == set(EXPECTED_REQUEST)


@pytest.mark.parametrize(("event", "status"), list(itertools.product(EXPECTED_TRACK, TrackStatus)))
def test_track_target_allows_exactly_the_table(event: str, status: TrackStatus) -> None:
    assert track_target(event, status) == expected_track(event, status)


@pytest.mark.parametrize(("event", "status"), list(itertools.product(EXPECTED_REQUEST, RequestStatus)))
def test_request_target_allows_exactly_the_table(event: str, status: RequestStatus) -> None:
    assert request_target(event, status) == expected_request(event, status)


def test_status_strings_are_the_stored_values() -> None:
    """The statuses are stored in Redis as plain strings: renaming one would strand stored requests."""
    assert [s.value for s in TrackStatus] == [
        "pending",
        "queued",
        "running",
        "retrying",
        "ready",
        "sent",
        "failed",
        "cancelled",
    ]
    assert [s.value for s in RequestStatus] == ["resolving", "running", "done", "failed", "cancelled"]
    assert track_target("queue", "pending") == T.QUEUED  # type: ignore[arg-type]  # a raw stored string works


def test_final_sets() -> None:
    assert {T.SENT, T.FAILED, T.CANCELLED} == TRACK_FINAL
    assert {T.QUEUED, T.RUNNING, T.RETRYING} == TRACK_IN_FLIGHT
    assert {R.DONE, R.FAILED, R.CANCELLED} == REQUEST_FINAL
    assert lifecycle.TRACK_SETTLED == TRACK_FINAL


@pytest.mark.parametrize("status", sorted(TRACK_FINAL))
def test_a_final_track_has_no_way_out(status: TrackStatus) -> None:
    assert [event for event in TRACK_TRANSITIONS if track_target(event, status) is not None] == []


@pytest.mark.parametrize("status", sorted(REQUEST_FINAL))
def test_a_final_request_has_no_way_out(status: RequestStatus) -> None:
    assert [event for event in REQUEST_TRANSITIONS if request_target(event, status) is not None] == []


@pytest.mark.parametrize("status", sorted(set(TrackStatus) - TRACK_FINAL))
def test_every_unfinished_track_can_be_cancelled(status: TrackStatus) -> None:
    assert track_target("cancel", status) == T.CANCELLED


def reachable(start: TrackStatus) -> set[TrackStatus]:
    seen, todo = {start}, [start]
    while todo:
        current = todo.pop()
        for event in TRACK_TRANSITIONS:
            target = track_target(event, current)
            if target is not None and target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def test_every_track_status_is_reachable_from_pending() -> None:
    assert reachable(T.PENDING) == set(TrackStatus)


@pytest.mark.parametrize("status", list(TrackStatus))
def test_every_track_status_can_still_end(status: TrackStatus) -> None:
    """No status is a trap: from anywhere a final status can be reached."""
    assert reachable(status) & TRACK_FINAL


def test_unknown_event_is_a_programming_error() -> None:
    with pytest.raises(KeyError):
        track_target("finish", T.PENDING)
    with pytest.raises(KeyError):
        request_target("queue", R.RUNNING)


# --- the docstring table matches the code ----------------------------------------------------------


def docstring_table(heading: str) -> dict[str, tuple[set[str], str]]:
    """The rows of the markdown table under `heading` in the lifecycle docstring: event → (from, to)."""
    doc = lifecycle.__doc__ or ""
    section = doc.split(heading, 1)[1]
    rows: dict[str, tuple[set[str], str]] = {}
    for line in section.splitlines():
        if not line.startswith("|"):
            if rows:
                break
            continue
        event, sources, target = (cell.strip() for cell in line.strip("|").split("|")[:3])
        if event == "event" or set(event) <= {"-"}:
            continue
        rows[event] = ({s.strip() for s in sources.split(",")}, target)
    return rows


def test_the_docstring_tables_are_the_code_tables() -> None:
    tracks = {event: ({str(s) for s in sources}, str(target)) for event, (sources, target) in TRACK_TRANSITIONS.items()}
    requests = {
        event: ({str(s) for s in sources}, str(target)) for event, (sources, target) in REQUEST_TRANSITIONS.items()
    }
    assert docstring_table("Track transitions") == tracks
    assert docstring_table("Request transitions") == requests


# --- next_track_state ------------------------------------------------------------------------------


def encoded(status: TrackStatus, **fields: object) -> str:
    return TrackState(status=status, **fields).model_dump_json()  # type: ignore[arg-type]


@pytest.mark.parametrize(("event", "status"), list(itertools.product(EXPECTED_TRACK, TrackStatus)))
def test_next_track_state_follows_the_table(event: str, status: TrackStatus) -> None:
    new = schema.next_track_state(encoded(status, version=7), event, {})
    target = expected_track(event, status)
    if target is None:
        assert new is None
    else:
        assert new is not None
        assert (new.status, new.version) == (target, 8)


def test_next_track_state_applies_changes_and_keeps_the_rest() -> None:
    raw = encoded(T.RUNNING, title="One More Time", attempts=2, version=3, step="downloading")
    new = schema.next_track_state(raw, "ready", {"path": "/dl/a.mp3", "step": None})
    assert new == TrackState(status=T.READY, title="One More Time", attempts=2, version=4, path="/dl/a.mp3", step=None)


def test_next_track_state_accepts_changes_computed_from_the_current_state() -> None:
    seen: list[TrackState] = []

    def changes(current: TrackState) -> dict[str, object]:
        seen.append(current)
        return {"attempts": current.attempts + 1, "attempt": "second"}

    new = schema.next_track_state(encoded(T.QUEUED, attempts=1, version=2), "start", changes)
    assert seen == [TrackState(status=T.QUEUED, attempts=1, version=2)]
    assert new is not None
    assert (new.status, new.attempts, new.attempt, new.version) == (T.RUNNING, 2, "second", 3)


def test_next_track_state_does_not_compute_changes_for_a_refused_transition() -> None:
    def changes(current: TrackState) -> dict[str, object]:
        raise AssertionError("computed for a refused transition")

    assert schema.next_track_state(encoded(T.SENT), "start", changes) is None


def test_changes_cannot_override_the_status_or_the_version() -> None:
    """Only the table decides the status, and the version only ever counts up by one."""
    new = schema.next_track_state(encoded(T.PENDING, version=5), "queue", {"status": T.SENT, "version": 0})
    assert new is not None
    assert (new.status, new.version) == (T.QUEUED, 6)


def test_next_track_state_of_an_unknown_track_is_none() -> None:
    assert schema.next_track_state(None, "queue", {}) is None


def test_next_track_state_does_not_change_its_input() -> None:
    raw = encoded(T.PENDING)
    schema.next_track_state(raw, "queue", {"queued_at": 5.0})
    assert TrackState.model_validate_json(raw) == TrackState()


@pytest.mark.parametrize("callable_changes", [False, True])
def test_stamped_adds_the_time_of_the_transition(callable_changes: bool) -> None:
    base = {"reason": "x"}
    changes: schema.Changes = (lambda _current: base) if callable_changes else base
    new = schema.next_track_state(encoded(T.RUNNING), "fail", schema.stamped(changes, 123.5))
    assert new is not None
    assert (new.status, new.reason, new.changed_at) == (T.FAILED, "x", 123.5)
    assert base == {"reason": "x"}
