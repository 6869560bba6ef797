"""The request model: one shared link and the states of its tracks, as stored in Redis.

Plain pydantic data with derived views (counts, order of delivery); no I/O here. Statuses and what may
follow what are in `bot.lifecycle`.
"""

from __future__ import annotations

import re
import uuid
from typing import Literal

from pydantic import BaseModel, Field

from bot.lifecycle import TRACK_FINAL, TRACK_IN_FLIGHT, RequestStatus, TrackStatus
from pipeline.models import LinkKind, SkippedItem, Track

REQUEST_ID = re.compile(r"[0-9a-f]{12}")


def new_request_id() -> str:
    """A short random id (matches REQUEST_ID): names the request's keys, folder and Cancel button."""
    return uuid.uuid4().hex[:12]


class RequestMeta(BaseModel):
    """Written once by the bot when a link arrives (the chat id changes only if the group migrates)."""

    id: str
    chat_id: int
    user_id: int
    link: str  # canonical Spotify URL (or the short link as given); for "liked", a label
    # "link": the tracks behind `link`; "liked": the requester's Liked Songs, read with their Spotify login
    source: Literal["link", "liked"] = "link"
    created_at: float
    reply_to: int | None = None  # the user's message
    thread_id: int | None = None  # forum topic of the user's message: replies stay in it
    track: Track | None = None  # chosen from a text search: already read, the resolver uses it as it is


class Resolution(BaseModel):
    """Written once by the resolver when the link's metadata is known."""

    kind: LinkKind
    name: str
    owner: str = ""
    total: int
    available: int  # items on Spotify before MAX_TRACKS_PER_REQUEST cut the list
    truncated: bool = False  # embed fallback: the playlist may hold more than 100 items
    login_refused: bool = False  # the requester's login may not read it (followed only): embed page used
    skipped: list[SkippedItem] = Field(default_factory=list)


class TrackState(BaseModel):
    status: TrackStatus = TrackStatus.PENDING
    reason: str | None = None  # why it failed / is retrying (user-facing)
    step: str | None = None  # searching, downloading…
    path: str | None = None  # the tagged MP3 waiting to be sent
    thumb_path: str | None = None
    file_id: str | None = None  # a Telegram upload that can be re-sent
    title: str | None = None
    performer: str | None = None
    duration_s: float | None = None
    size_bytes: int | None = None
    attempt: str | None = None  # id of the run that holds it (its own folder; a duplicate run has another)
    ticket: str | None = None  # id of the bot's last queue/requeue (tells whether a lost answer was a success)
    attempts: int = 0  # runs started, redeliveries and re-drives included
    version: int = 0  # +1 per transition: a copy never goes back to an older state
    changed_at: float | None = None  # when the last transition happened (epoch seconds)
    queued_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    retry_at: float | None = None  # epoch seconds of the next attempt after a rate limit
    claimed_at: float | None = None  # the bot's sender claimed it for a send (see bot.lifecycle, "claim")

    @property
    def final(self) -> bool:
        return self.status in TRACK_FINAL

    @property
    def in_flight(self) -> bool:
        return self.status in TRACK_IN_FLIGHT


class RequestSnapshot(BaseModel):
    """Everything known about one request at one moment (the bot keeps one per active request)."""

    meta: RequestMeta
    status: RequestStatus = RequestStatus.RESOLVING
    resolution: Resolution | None = None
    error: str | None = None  # why resolving failed
    tracks: list[Track] = Field(default_factory=list)
    states: list[TrackState] = Field(default_factory=list)
    next_send: int = 0  # tracks before this index are delivered or settled, in order
    progress_message_id: int | None = None
    retry_at: float | None = None  # resolving waits for a rate limit until then (epoch seconds)
    resolve_attempts: int = 1  # resolve messages sent (the reconciler re-drives a lost one)
    resolve_at: float | None = None  # when the last resolve message was sent (None: at creation)
    progress_text: str | None = None  # what the progress message shows…
    progress_at: float = 0.0  # …since when (epoch seconds)
    closed: bool = False  # final and summarised: no longer open

    def count(self, *statuses: TrackStatus) -> int:
        return sum(1 for state in self.states if state.status in statuses)

    @property
    def cancelled(self) -> bool:
        return self.status == RequestStatus.CANCELLED

    @property
    def total(self) -> int:
        return self.resolution.total if self.resolution else 0

    @property
    def delivered(self) -> int:
        return self.count(TrackStatus.SENT)

    @property
    def failures(self) -> list[tuple[Track, str]]:
        return [
            (track, state.reason or "failed")
            for track, state in zip(self.tracks, self.states, strict=False)
            if state.status == TrackStatus.FAILED
        ]

    @property
    def settled(self) -> bool:
        """Nothing more will be delivered: the request is final, or every track was handled in order."""
        if self.status in (RequestStatus.FAILED, RequestStatus.CANCELLED, RequestStatus.DONE):
            return True
        return self.status == RequestStatus.RUNNING and self.next_send >= self.total
