"""How request state is laid out in Redis, shared by the bot's store and the workers' store.

Keys (all under `spotbot:`; every key has a TTL):
- `req:<rid>`          hash: meta, status, resolution, error, next_send, progress memo, closed_at
- `req:<rid>:tracks`   hash: index → Track JSON (written once by the resolver)
- `req:<rid>:states`   hash: index → TrackState JSON (changed only through `bot.lifecycle` transitions)
- `active`, `chat:<id>`, `user:<id>`  sorted sets of open requests, scored by creation time (order shared)
- `events`             stream: one entry per transition (`rid`, `i` = track index or "-", `s` = new state);
                       the bot wakes on it instead of polling
- `cache:<audio>:<spotify id>`  a Telegram upload that can be re-sent by file_id
- `workers`            hash: worker id → {"threads", "seen"}: live worker capacity for the scheduler
- `login:<user>`, `spotify:<user>`, `spotify:<user>:refresh`  a person's own Spotify login: see
                       `bot.spotify_accounts`
- `search:<id>`        string: a text search's results (`bot.search.SearchResults`), behind its buttons
- `stats:<hour>`       hash: the hour's counts for /stats (`bot.stats`, `bot.activity`), kept 25 h

Pure helpers only: the stores do the I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from bot.lifecycle import RequestStatus, track_target
from bot.requests import RequestMeta, RequestSnapshot, Resolution, TrackState
from pipeline.models import Track

PREFIX = "spotbot"
ACTIVE_TTL = 7 * 24 * 3600  # a request's keys while it is open: the reconciler ends it well before
CACHE_TTL = 180 * 24 * 3600
EVENTS_MAXLEN = 10_000  # the bot reads events within seconds; the reconciler covers any it missed
WORKERS_TTL = 60
SEARCH_TTL = 24 * 3600  # a search's buttons work this long
REQUEST_EVENT = "-"


def key(*parts: object) -> str:
    return ":".join((PREFIX, *(str(p) for p in parts)))


def head_key(rid: str) -> str:
    return key("req", rid)


def tracks_key(rid: str) -> str:
    return key("req", rid, "tracks")


def states_key(rid: str) -> str:
    return key("req", rid, "states")


def request_keys(rid: str) -> list[str]:
    return [head_key(rid), tracks_key(rid), states_key(rid)]


ACTIVE = key("active")
EVENTS = key("events")
WORKERS = key("workers")


def chat_key(chat_id: int) -> str:
    return key("chat", chat_id)


def user_key(user_id: int) -> str:
    return key("user", user_id)


def cache_key(audio_key: str, spotify_id: str) -> str:
    return key("cache", audio_key, spotify_id)


def search_key(search_id: str) -> str:
    return key("search", search_id)


Changes = Mapping[str, Any] | Callable[[TrackState], Mapping[str, Any]]


def announce(pipe: Any, rid: str, index: int | None, state: str) -> None:
    """Queue the event of a transition on a MULTI pipeline (sync or asyncio: queuing is synchronous in both)."""
    fields = {"rid": rid, "i": REQUEST_EVENT if index is None else str(index), "s": state}
    pipe.xadd(EVENTS, fields, maxlen=EVENTS_MAXLEN, approximate=True)
    pipe.expire(EVENTS, ACTIVE_TTL)


def write_track_state(pipe: Any, rid: str, index: int, state: TrackState) -> None:
    """After WATCH and the read: queue the write of a track's new state and its event (sync or asyncio pipe)."""
    encoded = state.model_dump_json()
    pipe.multi()
    pipe.hset(states_key(rid), str(index), encoded)
    announce(pipe, rid, index, encoded)


def stamped(changes: Changes, now: float) -> Changes:
    """`changes` plus the time of the transition."""
    if callable(changes):
        return lambda current: {**changes(current), "changed_at": now}
    return {**changes, "changed_at": now}


def next_track_state(raw: str | None, event: str, changes: Changes) -> TrackState | None:
    """The state after `event` with `changes` (or changes computed from the current state), or None when the
    track is unknown or the table forbids the transition."""
    if raw is None:
        return None
    current = TrackState.model_validate_json(raw)
    target = track_target(event, current.status)
    if target is None:
        return None
    update = changes(current) if callable(changes) else changes
    return current.model_copy(update={**update, "status": target, "version": current.version + 1})


def snapshot_from(
    head: Mapping[str, str], tracks: Mapping[str, str], states: Mapping[str, str]
) -> RequestSnapshot | None:
    """A request from its three hashes (None when its keys are gone)."""
    if not head or "meta" not in head:
        return None
    count = len(tracks)
    return RequestSnapshot(
        meta=RequestMeta.model_validate_json(head["meta"]),
        status=RequestStatus(head.get("status", RequestStatus.RESOLVING)),
        resolution=Resolution.model_validate_json(head["resolution"]) if "resolution" in head else None,
        error=head.get("error"),
        tracks=[Track.model_validate_json(tracks[str(i)]) for i in range(count)],
        states=[TrackState.model_validate_json(states[str(i)]) for i in range(count) if str(i) in states],
        next_send=int(head.get("next_send", 0)),
        progress_message_id=int(head["progress_message"]) if head.get("progress_message") else None,
        retry_at=float(head["retry_at"]) if "retry_at" in head else None,
        resolve_attempts=int(head.get("resolve_attempts", 1)),
        resolve_at=float(head["resolve_at"]) if "resolve_at" in head else None,
        progress_text=head.get("last_text"),
        progress_at=float(head.get("last_edit", 0)),
        closed="closed_at" in head,
    )
