"""The state machine of requests and tracks: the one table of what may follow what.

A request is one shared link; a track is one song of it. Every change of status goes through `advance`,
which refuses a change the table does not list, so an invalid transition cannot be stored (the stores in
`bot.worker_store` and `bot.request_store` apply it inside a Redis transaction, one method per row).

Track transitions (`TRACK_TRANSITIONS`):

| event        | from                               | to        | who                                           |
|--------------|------------------------------------|-----------|-----------------------------------------------|
| queue        | pending                            | queued    | bot scheduler: its Dramatiq message is sent   |
| requeue      | queued, running, retrying          | queued    | bot reconciler: message lost / run overdue    |
| start        | queued, retrying, running          | running   | worker: an attempt begins (running: redelivery)|
| retry        | running                            | retrying  | worker: a passing failure, Dramatiq retries   |
| ready        | running                            | ready     | worker: the tagged MP3 is in place            |
| claim        | ready                              | ready     | bot sender: about to send it (see below)      |
| sent         | ready                              | sent      | bot sender: Telegram accepted the audio       |
| reupload     | ready                              | pending   | bot sender: Telegram refused a cached file_id |
| fail         | queued, running, retrying, ready   | failed    | worker / bot sender / reconciler              |
| cancel       | pending, queued, running, retrying, ready | cancelled | bot: the request was cancelled        |

`sent`, `failed` and `cancelled` are final. A track found in the upload cache starts as `ready`.

`claim` makes a send at most once: the sender claims a track in Redis before each audio (refused when the
track is no longer ready: its copy was stale) and holds the claim in memory until `sent` is stored. A claim
found without its holder (the bot restarted between the audio and `sent`) is never sent again: the track
fails, saying it may have arrived.

Request transitions (`REQUEST_TRANSITIONS`):

| event    | from                | to        | who                                                   |
|----------|---------------------|-----------|-------------------------------------------------------|
| resolved | resolving           | running   | resolver: the tracks are known                        |
| reject   | resolving           | failed    | resolver / reconciler: the link cannot be read        |
| finish   | running             | done      | bot: every track settled and delivered in order       |
| cancel   | resolving, running  | cancelled | user (/cancel, button) or the chat is gone            |

`done`, `failed` and `cancelled` are final. After its final summary is shown, a request is *closed*: it
leaves the active sets and its keys expire after REQUEST_TTL_HOURS.
"""

from __future__ import annotations

from enum import StrEnum


class TrackStatus(StrEnum):
    PENDING = "pending"
    QUEUED = "queued"
    RUNNING = "running"
    RETRYING = "retrying"
    READY = "ready"
    SENT = "sent"
    FAILED = "failed"
    CANCELLED = "cancelled"


class RequestStatus(StrEnum):
    RESOLVING = "resolving"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


T = TrackStatus
R = RequestStatus

TRACK_TRANSITIONS: dict[str, tuple[frozenset[TrackStatus], TrackStatus]] = {
    "queue": (frozenset({T.PENDING}), T.QUEUED),
    "requeue": (frozenset({T.QUEUED, T.RUNNING, T.RETRYING}), T.QUEUED),
    "start": (frozenset({T.QUEUED, T.RETRYING, T.RUNNING}), T.RUNNING),
    "retry": (frozenset({T.RUNNING}), T.RETRYING),
    "ready": (frozenset({T.RUNNING}), T.READY),
    "claim": (frozenset({T.READY}), T.READY),
    "sent": (frozenset({T.READY}), T.SENT),
    "reupload": (frozenset({T.READY}), T.PENDING),
    "fail": (frozenset({T.QUEUED, T.RUNNING, T.RETRYING, T.READY}), T.FAILED),
    "cancel": (frozenset({T.PENDING, T.QUEUED, T.RUNNING, T.RETRYING, T.READY}), T.CANCELLED),
}

REQUEST_TRANSITIONS: dict[str, tuple[frozenset[RequestStatus], RequestStatus]] = {
    "resolved": (frozenset({R.RESOLVING}), R.RUNNING),
    "reject": (frozenset({R.RESOLVING}), R.FAILED),
    "finish": (frozenset({R.RUNNING}), R.DONE),
    "cancel": (frozenset({R.RESOLVING, R.RUNNING}), R.CANCELLED),
}

TRACK_FINAL = frozenset({T.SENT, T.FAILED, T.CANCELLED})
TRACK_IN_FLIGHT = frozenset({T.QUEUED, T.RUNNING, T.RETRYING})  # a Dramatiq message exists or runs
TRACK_SETTLED = TRACK_FINAL  # nothing more will happen to it: the delivery pointer may pass it
REQUEST_FINAL = frozenset({R.DONE, R.FAILED, R.CANCELLED})


def track_target(event: str, current: TrackStatus) -> TrackStatus | None:
    """The status `event` leads to from `current`, or None when the table does not allow it."""
    sources, target = TRACK_TRANSITIONS[event]
    return target if current in sources else None


def request_target(event: str, current: RequestStatus) -> RequestStatus | None:
    sources, target = REQUEST_TRANSITIONS[event]
    return target if current in sources else None
