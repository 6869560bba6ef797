"""What the reconciler re-drives, and when it gives up. Pure: a state and the time in, a decision out.

Dramatiq redelivers the messages of a worker that died, and the bot retries a failed enqueue at once, so
these rules only catch what slipped through both: a message lost with Redis data, a resolve or track
message whose enqueue never happened because the bot stopped, a run far past its time limit. A track
re-driven too often fails for good with a reason; so does a link whose reading never finishes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from bot.lifecycle import RequestStatus, TrackStatus
from bot.requests import RequestSnapshot, TrackState

TrackRepair = Literal["requeue", "fail"]
ResolveRepair = Literal["redrive", "reject"]

GAVE_UP = "could not be finished (the worker kept stopping); please send the link again"
RESOLVE_GAVE_UP = "reading the link did not finish; please send it again"


@dataclass(frozen=True)
class Limits:
    queued_stale: float  # seconds a message may wait in the queue before it is presumed lost
    run_overdue: float  # seconds a run may last (above the actor's time limit)
    retry_overdue: float  # seconds past its retry time a track may wait for the retry to begin
    max_attempts: int  # runs of one track before it fails for good
    resolve_overdue: float  # seconds a link may take to be read
    max_resolves: int = 3


def track_repair(state: TrackState, now: float, limits: Limits) -> TrackRepair | None:
    changed = state.changed_at or state.queued_at or now
    age = now - changed
    if state.status == TrackStatus.QUEUED:
        stuck = age > limits.queued_stale
    elif state.status == TrackStatus.RUNNING:
        stuck = age > limits.run_overdue
    elif state.status == TrackStatus.RETRYING:
        stuck = now - max(changed, state.retry_at or 0) > limits.retry_overdue
    else:
        return None
    if not stuck:
        return None
    return "fail" if state.attempts >= limits.max_attempts else "requeue"


def resolve_repair(snapshot: RequestSnapshot, now: float, limits: Limits) -> ResolveRepair | None:
    if snapshot.status != RequestStatus.RESOLVING:
        return None
    since = max(snapshot.resolve_at or snapshot.meta.created_at, snapshot.retry_at or 0)
    if now - since <= limits.resolve_overdue:
        return None
    return "reject" if snapshot.resolve_attempts >= limits.max_resolves else "redrive"
