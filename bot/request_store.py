"""The bot's side of request state (redis.asyncio: never blocks the event loop).

One method per transition of `bot.lifecycle` that the bot makes (queue, requeue, sent, reupload, fail,
cancel, finish, reject), each atomic and announced on the events stream like the workers' ones; plus the
bot's own bookkeeping (delivery pointer, progress memo, chat migration, closing) and reading the events.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from bot import schema
from bot.lifecycle import RequestStatus, request_target
from bot.requests import RequestMeta, RequestSnapshot, TrackState
from bot.search import SearchResults

Event = tuple[str, str, str]  # (rid, track index or schema.REQUEST_EVENT, new state)


class RequestStore:
    def __init__(
        self, client: aioredis.Redis, *, finished_ttl: float = 24 * 3600, clock: Callable[[], float] = time.time
    ) -> None:
        self.redis = client
        self.finished_ttl = int(finished_ttl)
        self.clock = clock

    # --- requests ---------------------------------------------------------------------------------
    async def create(self, meta: RequestMeta, *, progress_message_id: int | None, progress_text: str) -> None:
        rid = meta.id
        head: dict[str, str | int | float] = {
            "meta": meta.model_dump_json(),
            "status": RequestStatus.RESOLVING,
            "resolve_attempts": 1,
        }
        if progress_message_id is not None:
            head |= {"progress_message": progress_message_id, "last_text": progress_text, "last_edit": self.clock()}
        score = {rid: meta.created_at}
        async with self.redis.pipeline() as pipe:
            pipe.hset(schema.head_key(rid), mapping=head)
            pipe.expire(schema.head_key(rid), schema.ACTIVE_TTL)
            for name in (schema.ACTIVE, schema.chat_key(meta.chat_id), schema.user_key(meta.user_id)):
                pipe.zadd(name, score)
                pipe.expire(name, schema.ACTIVE_TTL)
            schema.announce(pipe, rid, None, RequestStatus.RESOLVING)
            await pipe.execute()

    async def load(self, rid: str) -> RequestSnapshot | None:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(schema.head_key(rid))
            pipe.hgetall(schema.tracks_key(rid))
            pipe.hgetall(schema.states_key(rid))
            head, tracks, states = await pipe.execute()
        return schema.snapshot_from(head, tracks, states)

    async def state(self, rid: str, index: int) -> TrackState | None:
        raw = await self.redis.hget(schema.states_key(rid), str(index))
        return TrackState.model_validate_json(raw) if raw else None

    async def meta(self, rid: str) -> RequestMeta | None:
        raw = await self.redis.hget(schema.head_key(rid), "meta")
        return RequestMeta.model_validate_json(raw) if raw else None

    async def active(self) -> list[str]:
        """Open requests, oldest first (the order they were shared in)."""
        return list(await self.redis.zrange(schema.ACTIVE, 0, -1))

    async def chat_active(self, chat_id: int) -> list[str]:
        return list(await self.redis.zrange(schema.chat_key(chat_id), 0, -1))

    async def user_active(self, user_id: int) -> int:
        return int(await self.redis.zcard(schema.user_key(user_id)))

    async def cancel(self, rid: str) -> bool:
        """resolving/running → cancelled, and each unfinished track → cancelled; False if already final."""
        head, states = schema.head_key(rid), schema.states_key(rid)

        async def body(pipe: Any) -> bool:
            raw = await pipe.hget(head, "status")
            target = request_target("cancel", RequestStatus(raw)) if raw else None
            if target is None:
                return False
            changed = {}
            for field, value in (await pipe.hgetall(states)).items():
                new = schema.next_track_state(value, "cancel", {})
                if new is not None:
                    changed[field] = new.model_dump_json()
            pipe.multi()
            pipe.hset(head, "status", target)
            if changed:
                pipe.hset(states, mapping=changed)
            schema.announce(pipe, rid, None, target)
            return True

        return await self.redis.transaction(body, head, states, value_from_callable=True)

    async def finish(self, rid: str) -> bool:
        """running → done: every track settled and delivered in order."""
        return await self._request_transition(rid, "finish", {})

    async def reject(self, rid: str, reason: str) -> bool:
        """resolving → failed (the queue was unreachable, or resolving never finished)."""
        return await self._request_transition(rid, "reject", {"error": reason})

    async def redrive_resolve(self, rid: str) -> int:
        """Count one more resolve message for a request still resolving; returns the count."""
        async with self.redis.pipeline() as pipe:
            pipe.hincrby(schema.head_key(rid), "resolve_attempts", 1)
            pipe.hset(schema.head_key(rid), "resolve_at", self.clock())
            _keep_expiring(pipe, schema.head_key(rid))
            count, *_ = await pipe.execute()
        return int(count)

    async def _request_transition(self, rid: str, event: str, fields: Mapping[str, str]) -> bool:
        head = schema.head_key(rid)

        async def body(pipe: Any) -> bool:
            raw = await pipe.hget(head, "status")
            target = request_target(event, RequestStatus(raw)) if raw else None
            if target is None:
                return False
            pipe.multi()
            pipe.hset(head, mapping={**fields, "status": target})
            schema.announce(pipe, rid, None, target)
            return True

        return await self.redis.transaction(body, head, value_from_callable=True)

    async def close(self, meta: RequestMeta) -> None:
        """Stop tracking a final request; its state stays readable until REQUEST_TTL_HOURS runs out."""
        rid = meta.id
        async with self.redis.pipeline() as pipe:
            pipe.zrem(schema.ACTIVE, rid)
            pipe.zrem(schema.chat_key(meta.chat_id), rid)
            pipe.zrem(schema.user_key(meta.user_id), rid)
            pipe.hset(schema.head_key(rid), "closed_at", self.clock())
            for name in schema.request_keys(rid):
                pipe.expire(name, self.finished_ttl)
            await pipe.execute()

    async def forget(self, rid: str) -> None:
        """Drop an open id whose keys already expired."""
        await self.redis.zrem(schema.ACTIVE, rid)

    async def migrate_chat(self, meta: RequestMeta, new_chat_id: int) -> RequestMeta:
        """The group became a supergroup: the request goes on in the new chat."""
        moved = meta.model_copy(update={"chat_id": new_chat_id})
        async with self.redis.pipeline() as pipe:
            pipe.hset(schema.head_key(meta.id), "meta", moved.model_dump_json())
            _keep_expiring(pipe, schema.head_key(meta.id))
            pipe.zrem(schema.chat_key(meta.chat_id), meta.id)
            pipe.zadd(schema.chat_key(new_chat_id), {meta.id: meta.created_at})
            pipe.expire(schema.chat_key(new_chat_id), schema.ACTIVE_TTL)
            await pipe.execute()
        return moved

    # --- tracks -----------------------------------------------------------------------------------
    async def queue(self, rid: str, index: int, ticket: str) -> TrackState | None:
        """pending → queued: its Dramatiq message is about to be sent (`ticket`: see `confirmed`)."""
        return await self._confirmed(rid, index, "queue", {"queued_at": self.clock(), "ticket": ticket})

    async def requeue(self, rid: str, index: int, ticket: str) -> TrackState | None:
        """queued/running/retrying → queued: its message was lost or its run is overdue."""
        changes = {"queued_at": self.clock(), "attempt": None, "ticket": ticket}
        return await self._confirmed(rid, index, "requeue", changes)

    async def _confirmed(self, rid: str, index: int, event: str, changes: dict[str, Any]) -> TrackState | None:
        """A queue transition, and if it looks refused, whether it was applied after all (an answer lost to a
        timeout): then the state carries our ticket and the message must still be sent."""
        try:
            new = await self._track_transition(rid, index, event, changes)
        except (ConnectionError, TimeoutError, RedisError):
            new = None
        if new is not None:
            return new
        current = await self.state(rid, index)
        return current if current is not None and current.ticket == changes["ticket"] else None

    async def claim(self, rid: str, index: int) -> TrackState | None:
        """ready → ready, claimed: the sender is about to send it; None when it is no longer ready."""
        return await self._track_transition(rid, index, "claim", {"claimed_at": self.clock()})

    async def sent(self, rid: str, index: int, file_id: str | None) -> TrackState | None:
        changes = {"file_id": file_id, "path": None, "thumb_path": None, "claimed_at": None}
        return await self._track_transition(rid, index, "sent", changes)

    async def reupload(self, rid: str, index: int) -> TrackState | None:
        """ready → pending: Telegram no longer knows the cached file_id, so the track is fetched again."""
        return await self._track_transition(rid, index, "reupload", {"file_id": None, "claimed_at": None})

    async def fail(self, rid: str, index: int, reason: str) -> TrackState | None:
        return await self._track_transition(rid, index, "fail", {"reason": reason, "finished_at": self.clock()})

    async def _track_transition(self, rid: str, index: int, event: str, changes: schema.Changes) -> TrackState | None:
        name, field = schema.states_key(rid), str(index)
        stamped = schema.stamped(changes, self.clock())

        async def body(pipe: Any) -> TrackState | None:
            new = schema.next_track_state(await pipe.hget(name, field), event, stamped)
            if new is not None:
                schema.write_track_state(pipe, rid, index, new)
            return new

        return await self.redis.transaction(body, name, value_from_callable=True)

    # --- bot bookkeeping --------------------------------------------------------------------------
    async def set_next_send(self, rid: str, value: int) -> None:
        await self._set_head(rid, {"next_send": value})

    async def set_progress_message(self, rid: str, message_id: int | None) -> None:
        await self._set_head(rid, {"progress_message": "" if message_id is None else message_id})

    async def progress_memo(self, rid: str) -> tuple[str | None, float]:
        text, at = await self.redis.hmget(schema.head_key(rid), ["last_text", "last_edit"])
        return text, float(at or 0)

    async def set_progress_memo(self, rid: str, text: str, at: float) -> None:
        await self._set_head(rid, {"last_text": text, "last_edit": at})

    async def _set_head(self, rid: str, fields: Mapping[str, str | int | float]) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hset(schema.head_key(rid), mapping=dict(fields))
            _keep_expiring(pipe, schema.head_key(rid))
            await pipe.execute()

    # --- upload cache -----------------------------------------------------------------------------
    async def remember_upload(self, audio_key: str, spotify_id: str, upload: dict[str, Any]) -> None:
        await self.redis.set(schema.cache_key(audio_key, spotify_id), json.dumps(upload), ex=schema.CACHE_TTL)

    async def drop_upload(self, audio_key: str, spotify_id: str) -> None:
        await self.redis.delete(schema.cache_key(audio_key, spotify_id))

    # --- text searches --------------------------------------------------------------------------
    async def save_search(self, search_id: str, results: SearchResults) -> None:
        await self.redis.set(schema.search_key(search_id), results.model_dump_json(), ex=schema.SEARCH_TTL)

    async def search(self, search_id: str) -> SearchResults | None:
        raw = await self.redis.get(schema.search_key(search_id))
        return SearchResults.model_validate_json(raw) if raw else None

    async def drop_uploads(self, audio_key: str, spotify_ids: list[str]) -> int:
        """Forget the uploads of these tracks (/uncache); returns how many were cached."""
        if not spotify_ids:
            return 0
        return int(await self.redis.delete(*(schema.cache_key(audio_key, sid) for sid in spotify_ids)))

    async def count_uploads(self) -> int:
        count = 0
        async for _key in self.redis.scan_iter(match=schema.cache_key("*", "*"), count=1000):
            count += 1
        return count

    # --- events and workers -----------------------------------------------------------------------
    async def last_event_id(self) -> str:
        """Where to start reading so that nothing after this moment is missed."""
        newest = await self.redis.xrevrange(schema.EVENTS, count=1)
        return newest[0][0] if newest else "0-0"

    async def events(self, after: str, block_ms: int) -> tuple[str, list[Event]]:
        """Events after `after`, waiting up to `block_ms` for the first; returns the new position too."""
        answer = await self.redis.xread({schema.EVENTS: after}, block=block_ms, count=1000)
        events: list[Event] = []
        for _stream, entries in answer or ():
            for entry_id, fields in entries:
                after = entry_id
                events.append((fields["rid"], fields["i"], fields["s"]))
        return after, events

    async def free_expired(self) -> None:
        """Walk our keys: an in-memory store (all-in-one mode) frees expired keys only when it meets them."""
        async for _key in self.redis.scan_iter(match=f"{schema.PREFIX}:*", count=500):
            pass

    async def worker_threads(self, now: float, stale_after: float) -> int:
        """Threads of the workers seen within `stale_after` seconds: the queue's capacity."""
        return (await self.live_workers(now, stale_after))[1]

    async def live_workers(self, now: float, stale_after: float) -> tuple[int, int]:
        """(processes, threads) of the workers seen within `stale_after` seconds."""
        processes = threads = 0
        for raw in (await self.redis.hgetall(schema.WORKERS)).values():
            seen = json.loads(raw)
            if now - float(seen["seen"]) <= stale_after:
                processes += 1
                threads += int(seen["threads"])
        return processes, threads


def _keep_expiring(pipe: Any, name: str) -> None:
    """A write to a request whose keys already expired recreates its hash: give it a TTL then (and only then,
    `NX`: a closed request keeps its shorter one)."""
    pipe.expire(name, schema.ACTIVE_TTL, nx=True)
