"""The workers' side of request state (synchronous redis-py: Dramatiq actors run on threads).

One method per transition of `bot.lifecycle` that a worker makes; each is atomic (WATCH/MULTI), refuses
what the table forbids (returns None / False), and announces the change on the events stream in the same
transaction, so the bot never misses a change it could act on. Workers also publish their presence.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any

import redis

from bot import schema
from bot.lifecycle import RequestStatus, request_target
from bot.requests import RequestMeta, Resolution, TrackState
from pipeline.models import Track


class WorkerStore:
    def __init__(self, client: redis.Redis, *, clock: Callable[[], float] = time.time) -> None:
        self.redis = client
        self.clock = clock

    # --- reads ------------------------------------------------------------------------------------
    def meta(self, rid: str) -> RequestMeta | None:
        raw = self.redis.hget(schema.head_key(rid), "meta")
        return RequestMeta.model_validate_json(raw) if raw else None

    def request_status(self, rid: str) -> RequestStatus | None:
        raw = self.redis.hget(schema.head_key(rid), "status")
        return RequestStatus(raw) if raw else None

    def cancelled(self, rid: str) -> bool:
        """The request is over for the user (cancelled, or expired): stop working on it."""
        return self.request_status(rid) in (RequestStatus.CANCELLED, None)

    def track(self, rid: str, index: int) -> Track | None:
        raw = self.redis.hget(schema.tracks_key(rid), str(index))
        return Track.model_validate_json(raw) if raw else None

    def state(self, rid: str, index: int) -> TrackState | None:
        raw = self.redis.hget(schema.states_key(rid), str(index))
        return TrackState.model_validate_json(raw) if raw else None

    def cached_upload(self, audio_key: str, spotify_id: str) -> dict[str, Any] | None:
        raw = self.redis.get(schema.cache_key(audio_key, spotify_id))
        return json.loads(raw) if raw else None

    # --- request transitions (resolver) -----------------------------------------------------------
    def resolved(self, rid: str, resolution: Resolution, tracks: list[Track], states: list[TrackState]) -> bool:
        """resolving → running with the tracks; refused once the request is no longer resolving (cancelled
        while Spotify was read): a late resolver must not revive its keys."""
        track_map = {str(i): t.model_dump_json() for i, t in enumerate(tracks)}
        state_map = {str(i): s.model_dump_json() for i, s in enumerate(states)}

        def write(pipe: redis.client.Pipeline) -> None:
            if tracks:
                pipe.hset(schema.tracks_key(rid), mapping=track_map)
                pipe.hset(schema.states_key(rid), mapping=state_map)
            for name in schema.request_keys(rid):
                pipe.expire(name, schema.ACTIVE_TTL)

        return self._request_transition(rid, "resolved", {"resolution": resolution.model_dump_json()}, write)

    def reject(self, rid: str, reason: str) -> bool:
        """resolving → failed: the link cannot be read."""
        return self._request_transition(rid, "reject", {"error": reason})

    def delay_resolve(self, rid: str, at: float) -> None:
        """Resolving waits for a rate limit until `at` (epoch seconds): shown in the progress message."""
        head = schema.head_key(rid)

        def body(pipe: redis.client.Pipeline) -> None:
            if pipe.hget(head, "status") != RequestStatus.RESOLVING:
                return
            pipe.multi()
            pipe.hset(head, "retry_at", at)
            schema.announce(pipe, rid, None, RequestStatus.RESOLVING)

        self.redis.transaction(body, head)

    def _request_transition(
        self,
        rid: str,
        event: str,
        fields: Mapping[str, str],
        extra: Callable[[redis.client.Pipeline], None] | None = None,
    ) -> bool:
        head = schema.head_key(rid)

        def body(pipe: redis.client.Pipeline) -> bool:
            raw = pipe.hget(head, "status")
            target = request_target(event, RequestStatus(raw)) if raw else None
            if target is None:
                return False
            pipe.multi()
            pipe.hset(head, mapping={**fields, "status": target})
            if extra:
                extra(pipe)
            schema.announce(pipe, rid, None, target)
            return True

        return self.redis.transaction(body, head, value_from_callable=True)

    # --- track transitions (process_track) --------------------------------------------------------
    def start(self, rid: str, index: int, attempt: str) -> TrackState | None:
        """queued/retrying/running → running for this attempt (running: a redelivered message)."""
        now = self.clock()

        def changes(current: TrackState) -> dict[str, Any]:
            return {"attempt": attempt, "attempts": current.attempts + 1, "started_at": now, "retry_at": None}

        return self._track_transition(rid, index, "start", changes)

    def retry(self, rid: str, index: int, reason: str, retry_at: float | None = None) -> TrackState | None:
        return self._track_transition(rid, index, "retry", {"reason": reason, "retry_at": retry_at})

    def ready(self, rid: str, index: int, **fields: Any) -> TrackState | None:
        """running → ready with the file's details; None when another run finished first or it was cancelled."""
        return self._track_transition(rid, index, "ready", {**fields, "reason": None, "finished_at": self.clock()})

    def fail(self, rid: str, index: int, reason: str) -> TrackState | None:
        return self._track_transition(rid, index, "fail", {"reason": reason, "finished_at": self.clock()})

    def cancel(self, rid: str, index: int) -> TrackState | None:
        return self._track_transition(rid, index, "cancel", {})

    def _track_transition(self, rid: str, index: int, event: str, changes: schema.Changes) -> TrackState | None:
        name, field = schema.states_key(rid), str(index)
        stamped = schema.stamped(changes, self.clock())

        def body(pipe: redis.client.Pipeline) -> TrackState | None:
            new = schema.next_track_state(pipe.hget(name, field), event, stamped)
            if new is not None:
                schema.write_track_state(pipe, rid, index, new)
            return new

        return self.redis.transaction(body, name, value_from_callable=True)

    # --- presence ---------------------------------------------------------------------------------
    def heartbeat(self, worker_id: str, threads: int) -> None:
        """This worker is alive with `threads` threads: the bot's scheduler sizes the queue to the sum."""
        with self.redis.pipeline() as pipe:
            pipe.hset(schema.WORKERS, worker_id, json.dumps({"threads": threads, "seen": self.clock()}))
            pipe.expire(schema.WORKERS, schema.WORKERS_TTL)
            pipe.execute()

    def leave(self, worker_id: str) -> None:
        self.redis.hdel(schema.WORKERS, worker_id)
