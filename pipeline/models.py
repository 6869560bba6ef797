"""Plain data passed between the pipeline's steps, the bot and the workers.

Pydantic models so that they cross process boundaries (Redis, Dramatiq messages) as JSON unchanged.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field

LinkKind = Literal["track", "album", "playlist"]
TrackOrigin = Literal["spotify", "youtube-music"]


class Track(BaseModel):
    """One Spotify track with everything needed to find, tag and name it."""

    model_config = ConfigDict(frozen=True)

    spotify_id: str  # for a track found on YouTube Music (origin "youtube-music"): its video id
    title: str
    artists: list[str]
    album: str = ""
    duration_ms: int = 0
    isrc: str | None = None
    album_artists: list[str] = Field(default_factory=list)
    track_number: int | None = None
    track_total: int | None = None
    disc_number: int | None = None
    disc_total: int | None = None
    release_date: str | None = None  # "YYYY", "YYYY-MM" or "YYYY-MM-DD" as Spotify gives it
    explicit: bool = False
    cover_url: str | None = None  # the largest image Spotify offers
    # Where the metadata comes from: a text search without Spotify credentials finds tracks on YouTube Music.
    origin: TrackOrigin = "spotify"

    @computed_field  # type: ignore[prop-decorator]
    @property
    def spotify_url(self) -> str | None:
        return f"https://open.spotify.com/track/{self.spotify_id}" if self.origin == "spotify" else None

    @property
    def main_artist(self) -> str:
        return self.artists[0] if self.artists else ""

    @property
    def display_name(self) -> str:
        return f"{', '.join(self.artists)} – {self.title}" if self.artists else self.title

    @property
    def search_text(self) -> str:
        """What the search providers type for this track: "<artists> - <title>", the way uploads are named."""
        return f"{', '.join(self.artists)} - {self.title}" if self.artists else self.title


# yt-dlp's extractor for www.youtube.com and music.youtube.com watch pages (see `Candidate.extractor`).
YOUTUBE_EXTRACTOR = "Youtube"


class Candidate(BaseModel):
    """One search result a provider offers for a track; the matcher decides."""

    model_config = ConfigDict(frozen=True)

    url: str
    title: str
    artist: str  # channel/uploader, or the artist names as the source shows them
    duration_s: float | None = None
    source: str = "unknown"  # provider name, e.g. "youtube-music"
    result_type: Literal["song", "video", "unknown"] = "unknown"  # "song" = official audio track
    album: str | None = None
    from_isrc_query: bool = False  # found by searching the track's ISRC
    rank: int = 0  # position in the provider's result list (0 = first)
    views: int | None = None
    # yt-dlp's extractor for `url` (e.g. "Youtube"), when the provider knows it: the download then asks that one
    # extractor instead of trying ~1,700 URL patterns and loading them all (most of a short download's CPU).
    extractor: str | None = None


class SkippedItem(BaseModel):
    """An item of an album/playlist that cannot be fetched, and why (shown to the user)."""

    title: str
    reason: str


class Collection(BaseModel):
    """What a link resolved to: a single track, an album or a playlist, in order."""

    kind: LinkKind
    spotify_id: str
    name: str
    owner: str = ""  # album artists, or playlist owner
    tracks: list[Track]
    skipped: list[SkippedItem] = Field(default_factory=list)
    truncated: bool = False  # the embed fallback shows at most 100 items: there may be more
    # A person's own login was refused (a playlist they only follow): read from the embed page instead.
    login_refused: bool = False
    source: Literal["api", "embed"] = "api"
    cover_url: str | None = None


class PlaylistSummary(BaseModel):
    """One entry of a person's playlist list (`GET /me/playlists`): enough for a button."""

    id: str
    name: str
    owner: str = ""
    total: int | None = None
