"""Dramatiq actors: thin shells over `bot.jobs.TrackJobs`. Import only after `bot.runtime.configure`."""

from __future__ import annotations

from functools import cache
from typing import Any

import dramatiq

from bot import runtime
from bot.jobs import TrackJobs
from bot.spotify_accounts import SpotifyAccounts
from pipeline.errors import Cancelled, PermanentError
from pipeline.track_job import worst_case_seconds

RESOLVE_QUEUE = "resolve"
TRACK_QUEUE = "tracks"
RESOLVE_TIME_LIMIT_MS = 5 * 60_000


@cache
def jobs() -> TrackJobs:
    current = runtime.current()
    accounts = SpotifyAccounts(current.worker_store.redis, current.settings)
    return TrackJobs(current.settings, current.worker_store, accounts)


@dramatiq.actor(
    queue_name=RESOLVE_QUEUE,
    max_retries=6,
    min_backoff=2_000,
    max_backoff=120_000,
    time_limit=RESOLVE_TIME_LIMIT_MS,
    throws=(PermanentError,),
    on_retry_exhausted="resolve_gave_up",
)
def resolve_request(rid: str) -> None:
    jobs().resolve(rid)


@dramatiq.actor(
    queue_name=TRACK_QUEUE,
    max_retries=5,
    min_backoff=5_000,
    max_backoff=300_000,
    # Above the worst case of the steps' own timeouts: a run is only cut when it is really stuck.
    time_limit=int(worst_case_seconds(runtime.current().settings) * 1000),
    throws=(PermanentError, Cancelled),
    on_retry_exhausted="track_gave_up",
)
def process_track(rid: str, index: int) -> None:
    jobs().process(rid, index)


@dramatiq.actor(queue_name=RESOLVE_QUEUE, max_retries=10)
def resolve_gave_up(message: dict[str, Any], retry_info: dict[str, Any]) -> None:
    jobs().resolve_gave_up(message["args"][0])


@dramatiq.actor(queue_name=RESOLVE_QUEUE, max_retries=10)
def track_gave_up(message: dict[str, Any], retry_info: dict[str, Any]) -> None:
    rid, index = message["args"][:2]
    jobs().track_gave_up(rid, index)


def enqueue_resolve(rid: str) -> None:
    resolve_request.send(rid)


def enqueue_track(rid: str, index: int, max_retries: int) -> None:
    process_track.send_with_options(args=(rid, index), max_retries=max_retries)
