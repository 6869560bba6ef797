"""The request model: one shared link and the states of its tracks, as stored in Redis.

Plain pydantic data with derived views (counts, order of delivery); no I/O here.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from pipeline.models import LinkKind, SkippedItem, Track

TrackStatus = Literal["pending", "queued", "running", "retrying", "ready", "sent", "failed", "cancelled"]
TERMINAL: frozenset[str] = frozenset({"ready", "sent", "failed", "cancelled"})
Phase = Literal["resolving", "running", "failed"]


class RequestMeta(BaseModel):
    """Written once by the bot when a link arrives."""

    id: str
    chat_id: int
    user_id: int
    link: str  # canonical Spotify URL (or the short link as given)
    created_at: float
    reply_to: int | None = None  # the user's message


class Resolution(BaseModel):
    """Written once by the resolver when the link's metadata is known."""

    kind: LinkKind
    name: str
    owner: str = ""
    total: int
    available: int  # items on Spotify before MAX_TRACKS_PER_REQUEST cut the list
    truncated: bool = False  # embed fallback: the playlist may hold more than 100 items
    skipped: list[SkippedItem] = Field(default_factory=list)


class TrackState(BaseModel):
    status: TrackStatus = "pending"
    reason: str | None = None  # why it failed / is retrying (user-facing)
    step: str | None = None  # searching, downloading…
    path: str | None = None  # the tagged MP3 waiting to be sent
    thumb_path: str | None = None
    file_id: str | None = None  # a Telegram upload that can be re-sent
    title: str | None = None
    performer: str | None = None
    duration_s: float | None = None
    size_bytes: int | None = None
    started_at: float | None = None
    finished_at: float | None = None
    retry_at: float | None = None  # epoch seconds of the next attempt after a rate limit

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL


class RequestSnapshot(BaseModel):
    """Everything known about one request at one moment."""

    meta: RequestMeta
    phase: Phase = "resolving"
    resolution: Resolution | None = None
    error: str | None = None  # why resolving failed
    cancelled: bool = False
    tracks: list[Track] = Field(default_factory=list)
    states: list[TrackState] = Field(default_factory=list)
    next_send: int = 0  # tracks before this index are delivered or settled, in order
    progress_message_id: int | None = None
    retry_at: float | None = None  # resolving waits for a rate limit until then (epoch seconds)

    def count(self, *statuses: str) -> int:
        return sum(1 for state in self.states if state.status in statuses)

    @property
    def total(self) -> int:
        return self.resolution.total if self.resolution else 0

    @property
    def delivered(self) -> int:
        return self.count("sent")

    @property
    def failures(self) -> list[tuple[Track, str]]:
        return [
            (track, state.reason or "failed")
            for track, state in zip(self.tracks, self.states, strict=False)
            if state.status == "failed"
        ]

    @property
    def settled(self) -> bool:
        """Nothing more will be delivered: all tracks were handled, or the request was cancelled."""
        if self.phase == "failed" or self.cancelled:
            return True
        return self.phase == "running" and self.next_send >= self.total
