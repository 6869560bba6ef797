"""Find tracks by words ("artist - title", a half-remembered title): the bot's text search and the CLI's.

With Spotify credentials the Web API's track search answers (full metadata, and a Spotify link the rest of
the pipeline already understands); without them YouTube Music's songs search does (title, artists, album,
duration, cover), and its tracks carry `origin="youtube-music"` so that nothing takes their id for a
Spotify one. The pure part (cleaning what people type, turning results into `Track`s, button labels) is
separate from the two thin adapters, which reuse `SpotifyApi` and `YouTubeMusicProvider` (one client and
one error mapping per service).
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from pipeline.errors import ConfigurationError
from pipeline.models import Track
from pipeline.settings import PipelineSettings
from pipeline.sources.youtube_music import YouTubeMusicProvider, duration_seconds
from pipeline.spotify_api import SEARCH_LIMIT, AccessRefused, SpotifyApi
from pipeline.spotify_parse import artist_names, largest_image

log = logging.getLogger(__name__)

MAX_QUERY_CHARS = 120  # longer text is searched on its first words: nobody's song title is a paragraph
RESULTS = 5  # what the bot offers as buttons, and enough for the CLI's first match
LABEL_CHARS = 60  # longer button labels are cut (Telegram clients cut them anyway, unpredictably)
_YTM_SIZE = re.compile(r"=w\d+-h\d+")  # YouTube Music thumbnails are resizable through their URL
YTM_COVER_SIZE = "=w544-h544"


def normalize_query(text: str, *, max_chars: int = MAX_QUERY_CHARS) -> str:
    """What to search for: invisible and control characters out, whitespace collapsed, and text beyond
    `max_chars` cut at the last whole word that fits (a single overlong word is cut where it must be).
    "" when nothing searchable is left."""
    kept = "".join(
        " " if unicodedata.category(ch) in ("Cc", "Zl", "Zp") else ch
        for ch in text
        if unicodedata.category(ch) not in ("Cf", "Cs", "Co", "Cn")
    )
    words = kept.split()
    query = ""
    for word in words:
        joined = f"{query} {word}" if query else word
        if len(joined) > max_chars:
            return query or word[:max_chars]
        query = joined
    return query


def track_length(duration_ms: int) -> str:
    """A track's length as players show it: 3:45, or 1:02:03 from an hour on (ETAs are `bot.progress`'s)."""
    minutes, seconds = divmod(round(duration_ms / 1000), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


def button_label(track: Track, *, max_chars: int = LABEL_CHARS) -> str:
    """`Artist – Title (3:45)`; a long name is cut with "…" and keeps its duration."""
    suffix = f" ({track_length(track.duration_ms)})" if track.duration_ms > 0 else ""
    name = " ".join(track.display_name.split())
    room = max_chars - len(suffix)
    if len(name) > room:
        name = name[: max(1, room - 1)].rstrip() + "…"
    return name + suffix


def track_from_song(item: Mapping[str, Any]) -> Track | None:
    """One ytmusicapi `search(filter="songs")` result as a Track (None when it is no playable song)."""
    video_id, title = item.get("videoId"), item.get("title")
    if not isinstance(video_id, str) or not video_id or not isinstance(title, str) or not title.strip():
        return None
    album = item.get("album")
    seconds = duration_seconds(item)
    cover = largest_image(item.get("thumbnails"))
    artists = artist_names(item.get("artists"))
    return Track(
        spotify_id=video_id,
        title=title,
        artists=artists,
        album=(album.get("name") or "") if isinstance(album, Mapping) else "",
        duration_ms=int(seconds * 1000) if seconds else 0,
        album_artists=artists,
        explicit=bool(item.get("isExplicit")),
        cover_url=_YTM_SIZE.sub(YTM_COVER_SIZE, cover) if cover else None,
        origin="youtube-music",
    )


def tracks_from_songs(results: Iterable[Mapping[str, Any]]) -> list[Track]:
    """Song results as Tracks, in YouTube Music's order, each video once."""
    tracks: list[Track] = []
    for item in results:
        track = track_from_song(item) if isinstance(item, Mapping) else None
        if track is not None and all(t.spotify_id != track.spotify_id for t in tracks):
            tracks.append(track)
    return tracks


class TrackSearcher(Protocol):
    def search(self, query: str, limit: int = RESULTS) -> list[Track]: ...


class SpotifySearch:
    """The Web API's `GET /search?type=track` (at most 10 results per call since 2026). When Spotify refuses
    the app itself (bad credentials, or a Development-Mode app whose owner lost Premium) YouTube Music answers
    instead, as links still work through the embed pages then."""

    def __init__(self, settings: PipelineSettings) -> None:
        self._settings = settings
        self._api = SpotifyApi(settings)
        self._fallback: YouTubeMusicSearch | None = None

    def search(self, query: str, limit: int = RESULTS) -> list[Track]:
        try:
            return self._api.search(query, min(limit, SEARCH_LIMIT))
        except (AccessRefused, ConfigurationError) as error:
            log.warning("Spotify refused the search (%s); searching YouTube Music instead", error.reason)
        if self._fallback is None:
            self._fallback = YouTubeMusicSearch(self._settings)
        return self._fallback.search(query, limit)


class YouTubeMusicSearch:
    """YouTube Music's songs search through ytmusicapi (no account needed)."""

    def __init__(self, settings: PipelineSettings) -> None:
        self._provider = YouTubeMusicProvider(
            timeout=settings.http_timeout, proxy=settings.ytdlp_proxy, base_url=settings.youtube_music_url
        )

    def search(self, query: str, limit: int = RESULTS) -> list[Track]:
        return tracks_from_songs(self._provider.results(query, "songs", limit))[:limit]


def track_searcher(settings: PipelineSettings) -> TrackSearcher:
    """Spotify's search when credentials are set, else YouTube Music's. Not thread-safe: one per thread."""
    return SpotifySearch(settings) if settings.has_spotify_credentials else YouTubeMusicSearch(settings)
