"""Request state in Redis, shared by the bot and the workers across processes and restarts.

Each hash field has a single writer: the bot writes the request's meta, progress memo, delivery pointer,
cancel flag and "sent"; the resolver writes the resolution; a worker writes its track's state. Track
states never leave a terminal status (a late duplicate worker cannot undo a delivery). Keys expire
`ttl` after the request finishes, and after a week at most while it runs.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import redis

from bot.requests import RequestMeta, RequestSnapshot, Resolution, TrackState
from pipeline.models import Track

ACTIVE_TTL = 7 * 24 * 3600
CACHE_TTL = 180 * 24 * 3600
PREFIX = "spotbot"


def _key(*parts: object) -> str:
    return ":".join((PREFIX, *(str(p) for p in parts)))


class RequestStore:
    def __init__(self, client: redis.Redis, *, finished_ttl: float = 24 * 3600, clock: Callable[[], float] = time.time):
        self.redis = client
        self.finished_ttl = int(finished_ttl)
        self.clock = clock

    # --- keys -------------------------------------------------------------------------------------
    @staticmethod
    def _req(rid: str) -> str:
        return _key("req", rid)

    @staticmethod
    def _tracks(rid: str) -> str:
        return _key("req", rid, "tracks")

    @staticmethod
    def _states(rid: str) -> str:
        return _key("req", rid, "states")

    def _request_keys(self, rid: str) -> list[str]:
        return [self._req(rid), self._tracks(rid), self._states(rid)]

    # --- lifecycle (bot) --------------------------------------------------------------------------
    def create(self, meta: RequestMeta, *, progress_message_id: int | None = None, progress_text: str = "") -> None:
        rid = meta.id
        head: dict[str, str | int | float] = {"meta": meta.model_dump_json(), "phase": "resolving"}
        if progress_message_id is not None:
            head |= {"progress_message": progress_message_id, "last_text": progress_text, "last_edit": self.clock()}
        with self.redis.pipeline() as pipe:
            pipe.hset(self._req(rid), mapping=head)
            pipe.sadd(_key("active"), rid)
            pipe.sadd(_key("chat", meta.chat_id), rid)
            pipe.sadd(_key("user", meta.user_id), rid)
            pipe.expire(self._req(rid), ACTIVE_TTL)
            pipe.execute()

    def exists(self, rid: str) -> bool:
        return bool(self.redis.exists(self._req(rid)))

    def active(self) -> list[str]:
        return sorted(self.redis.smembers(_key("active")))

    def chat_active(self, chat_id: int) -> list[str]:
        return self._live_members(_key("chat", chat_id))

    def user_active(self, user_id: int) -> list[str]:
        return self._live_members(_key("user", user_id))

    def _live_members(self, set_key: str) -> list[str]:
        members = sorted(self.redis.smembers(set_key))
        live = [rid for rid in members if self.redis.sismember(_key("active"), rid)]
        stale = set(members) - set(live)
        if stale:
            self.redis.srem(set_key, *stale)
        return live

    def set_progress_message(self, rid: str, message_id: int) -> None:
        self.redis.hset(self._req(rid), "progress_message", message_id)

    def cancel(self, rid: str) -> None:
        self.redis.hset(self._req(rid), "cancelled", "1")

    def is_cancelled(self, rid: str) -> bool:
        return self.redis.hget(self._req(rid), "cancelled") == "1"

    def finish(self, rid: str) -> None:
        """Stop tracking a settled request; its state stays readable until the TTL runs out."""
        meta = self.meta(rid)
        with self.redis.pipeline() as pipe:
            pipe.srem(_key("active"), rid)
            if meta:
                pipe.srem(_key("chat", meta.chat_id), rid)
                pipe.srem(_key("user", meta.user_id), rid)
            pipe.hset(self._req(rid), "finished_at", self.clock())
            for key in self._request_keys(rid):
                pipe.expire(key, self.finished_ttl)
            pipe.execute()

    def forget(self, rid: str) -> None:
        """Drop an active id whose state already expired."""
        self.redis.srem(_key("active"), rid)

    # --- resolution (resolver) --------------------------------------------------------------------
    def set_resolution(self, rid: str, resolution: Resolution, tracks: list[Track], states: list[TrackState]) -> bool:
        """Store what the link resolved to, unless the request was finished meanwhile (e.g. cancelled while
        Spotify was read): a late resolver must not revive its keys. Returns whether it was stored."""
        head = self._req(rid)
        track_map = {str(i): t.model_dump_json() for i, t in enumerate(tracks)}
        state_map = {str(i): s.model_dump_json() for i, s in enumerate(states)}

        def store(pipe: redis.client.Pipeline) -> bool:
            if not pipe.exists(head) or pipe.hexists(head, "finished_at"):
                return False
            pipe.multi()
            if tracks:
                pipe.hset(self._tracks(rid), mapping=track_map)
                pipe.hset(self._states(rid), mapping=state_map)
            pipe.hset(head, mapping={"resolution": resolution.model_dump_json(), "phase": "running"})
            for key in self._request_keys(rid):
                pipe.expire(key, ACTIVE_TTL)
            return True

        return self.redis.transaction(store, head, value_from_callable=True)

    def fail(self, rid: str, reason: str) -> None:
        """Resolving failed; a no-op once the request expired, so no key is left without a TTL."""
        if self.redis.exists(self._req(rid)):
            self.redis.hset(self._req(rid), mapping={"phase": "failed", "error": reason})

    def set_retry_at(self, rid: str, at: float) -> None:
        """Resolving waits for a rate limit until `at` (epoch seconds): shown in the progress message."""
        if self.redis.exists(self._req(rid)):
            self.redis.hset(self._req(rid), "retry_at", at)

    def phase(self, rid: str) -> str | None:
        return self.redis.hget(self._req(rid), "phase")

    # --- tracks -----------------------------------------------------------------------------------
    def meta(self, rid: str) -> RequestMeta | None:
        raw = self.redis.hget(self._req(rid), "meta")
        return RequestMeta.model_validate_json(raw) if raw else None

    def track(self, rid: str, index: int) -> Track | None:
        raw = self.redis.hget(self._tracks(rid), str(index))
        return Track.model_validate_json(raw) if raw else None

    def state(self, rid: str, index: int) -> TrackState | None:
        raw = self.redis.hget(self._states(rid), str(index))
        return TrackState.model_validate_json(raw) if raw else None

    def update_state(
        self, rid: str, index: int, *, expect: tuple[str, ...] | None = None, force: bool = False, **changes: object
    ) -> TrackState | None:
        """Change a track's state unless it is already terminal (returns None then, or if unknown).

        `expect` limits the change to those current statuses; `force` allows leaving a terminal status
        (only the bot's sender does that: ready → sent, or ready → failed when Telegram refuses a file).
        """
        key, field = self._states(rid), str(index)

        def change(pipe: redis.client.Pipeline) -> TrackState | None:
            raw = pipe.hget(key, field)
            if raw is None:
                return None
            current = TrackState.model_validate_json(raw)
            if (current.terminal and not force) or (expect is not None and current.status not in expect):
                return None
            new = TrackState.model_validate({**current.model_dump(), **changes})
            pipe.multi()
            pipe.hset(key, field, new.model_dump_json())
            return new

        return self.redis.transaction(change, key, value_from_callable=True)

    def mark_queued(self, rid: str, index: int) -> bool:
        return self.update_state(rid, index, expect=("pending",), status="queued") is not None

    def next_enqueue(self, rid: str) -> int:
        return int(self.redis.hget(self._req(rid), "next_enqueue") or 0)

    def set_next_enqueue(self, rid: str, value: int) -> None:
        self.redis.hset(self._req(rid), "next_enqueue", value)

    def set_next_send(self, rid: str, value: int) -> None:
        self.redis.hset(self._req(rid), "next_send", value)

    # --- progress memo (bot) ----------------------------------------------------------------------
    def progress_memo(self, rid: str) -> tuple[str | None, float]:
        text, at = self.redis.hmget(self._req(rid), "last_text", "last_edit")
        return text, float(at or 0)

    def set_progress_memo(self, rid: str, text: str, at: float) -> None:
        self.redis.hset(self._req(rid), mapping={"last_text": text, "last_edit": at})

    # --- whole snapshot ---------------------------------------------------------------------------
    def load(self, rid: str) -> RequestSnapshot | None:
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(self._req(rid))
            pipe.hgetall(self._tracks(rid))
            pipe.hgetall(self._states(rid))
            head, tracks, states = pipe.execute()
        if not head or "meta" not in head:
            return None
        count = len(tracks)
        return RequestSnapshot(
            meta=RequestMeta.model_validate_json(head["meta"]),
            phase=head.get("phase", "resolving"),
            resolution=Resolution.model_validate_json(head["resolution"]) if "resolution" in head else None,
            error=head.get("error"),
            cancelled=head.get("cancelled") == "1",
            tracks=[Track.model_validate_json(tracks[str(i)]) for i in range(count)],
            states=[TrackState.model_validate_json(states[str(i)]) for i in range(count) if str(i) in states],
            next_send=int(head.get("next_send", 0)),
            progress_message_id=int(head["progress_message"]) if "progress_message" in head else None,
            retry_at=float(head["retry_at"]) if "retry_at" in head else None,
        )

    # --- upload cache -----------------------------------------------------------------------------
    def cached_upload(self, audio_key: str, spotify_id: str) -> dict | None:
        raw = self.redis.get(_key("cache", audio_key, spotify_id))
        return json.loads(raw) if raw else None

    def remember_upload(self, audio_key: str, spotify_id: str, upload: dict) -> None:
        self.redis.set(_key("cache", audio_key, spotify_id), json.dumps(upload), ex=CACHE_TTL)

    def drop_upload(self, audio_key: str, spotify_id: str) -> None:
        self.redis.delete(_key("cache", audio_key, spotify_id))
