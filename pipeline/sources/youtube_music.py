"""YouTube Music search through ytmusicapi, without an account.

Up to three searches per track, cheapest-to-most-certain first, stopping as soon as the matcher calls
the candidates found so far conclusive (`matching.conclusive`), so a typical track costs one request:

1. the ISRC as the query, unfiltered: YouTube Music has no ISRC lookup, but its search indexes ISRCs
   and often answers with the exact recording (official audio, sometimes its music video);
2. `filter="songs"` with "<artists> - <title>": official audio tracks ("Topic" uploads);
3. `filter="videos"` with the same query: music videos and user uploads, for what has no audio track.

Every candidate found is returned (not only the best), so the caller ranks all providers' candidates
together. One page (up to 20 results) per search: the right recording is on the first page when it
is there at all.

ytmusicapi is asked for English labels (its default). Its search parser reads localized labels and
drops a songs shelf it cannot recognise, which is why spotDL's `YTMusic(language="de")` finds no
songs with ytmusicapi 1.12.
"""

from __future__ import annotations

import locale
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

import requests
from requests.adapters import HTTPAdapter
from ytmusicapi import YTMusic
from ytmusicapi.exceptions import YTMusicError

from pipeline import matching
from pipeline.errors import PermanentError, PipelineError, TransientError
from pipeline.http import request_error, status_error
from pipeline.models import YOUTUBE_EXTRACTOR, Candidate, Track

log = logging.getLogger(__name__)

SOURCE = "youtube-music"
BASE_URL = "https://music.youtube.com"  # where ytmusicapi sends every request
SERVICE_NAME = "YouTube Music"  # as users read it in "rate-limited by YouTube Music"
WATCH_URL = "https://music.youtube.com/watch?v="
RESULTS_PER_SEARCH = 20  # one page: ytmusicapi only follows continuations beyond it

# How YouTube Music types what a watch link plays; episodes are not music.
_VIDEO_TYPES: dict[str, Literal["song", "video"] | None] = {
    "MUSIC_VIDEO_TYPE_ATV": "song",  # audio track of a release ("Topic")
    "MUSIC_VIDEO_TYPE_OMV": "video",  # official music video
    "MUSIC_VIDEO_TYPE_UGC": "video",  # user upload
    "MUSIC_VIDEO_TYPE_OFFICIAL_SOURCE_MUSIC": "video",
    "MUSIC_VIDEO_TYPE_PODCAST_EPISODE": None,
}


@dataclass(frozen=True)
class SearchStep:
    query: str
    filter: Literal["songs", "videos"] | None
    from_isrc: bool = False


def search_plan(track: Track) -> list[SearchStep]:
    """The searches for a track, in the order they are tried."""
    text = track.search_text
    steps = [SearchStep(track.isrc.strip().upper(), None, from_isrc=True)] if track.isrc and track.isrc.strip() else []
    return [*steps, SearchStep(text, "songs"), SearchStep(text, "videos")]


def duration_seconds(item: Mapping[str, Any]) -> float | None:
    if isinstance(item.get("duration_seconds"), int | float):
        return float(item["duration_seconds"])
    text = item.get("duration")
    if isinstance(text, str) and text.replace(":", "").isdigit():
        seconds = 0
        for part in text.split(":"):
            seconds = seconds * 60 + int(part)
        return float(seconds)
    return None


def result_type(item: Mapping[str, Any]) -> Literal["song", "video"] | None:
    """ "song" or "video", or None for what cannot be played as a track (albums, artists, episodes)."""
    video_type = item.get("videoType")
    if isinstance(video_type, str):
        # Unknown future types are still playable videos.
        return _VIDEO_TYPES.get(video_type, "video")
    kind = item.get("resultType")
    return kind if kind in ("song", "video") else None


def candidates_from(results: Iterable[Mapping[str, Any]], *, from_isrc_query: bool) -> list[Candidate]:
    """ytmusicapi search results → candidates, in the order YouTube Music ranked them."""
    candidates: list[Candidate] = []
    for item in results:
        video_id, title, kind = item.get("videoId"), item.get("title"), result_type(item)
        if not isinstance(video_id, str) or not video_id or not isinstance(title, str) or kind is None:
            continue
        artists = [a["name"] for a in item.get("artists") or [] if isinstance(a, Mapping) and a.get("name")]
        album = item.get("album")
        candidates.append(
            Candidate(
                url=WATCH_URL + video_id,
                title=title,
                artist=", ".join(artists),
                duration_s=duration_seconds(item),
                source=SOURCE,
                result_type=kind,
                album=album.get("name") if isinstance(album, Mapping) else None,
                from_isrc_query=from_isrc_query,
                rank=len(candidates),
                extractor=YOUTUBE_EXTRACTOR,
            )
        )
    return candidates


def merge(found: Sequence[Candidate], new: Iterable[Candidate]) -> list[Candidate]:
    """`found` plus the new candidates it does not already hold (same URL = same candidate)."""
    seen = {c.url for c in found}
    merged = list(found)
    for candidate in new:
        if candidate.url not in seen:
            seen.add(candidate.url)
            merged.append(candidate)
    return merged


def _check_status(response: requests.Response, *args: object, **kwargs: object) -> None:
    """Session hook: turn refusals into our errors before ytmusicapi tries to parse an error page."""
    status, detail = response.status_code, f"HTTP {response.status_code} from {response.url}"
    if passing := status_error(status, response.headers, service=SERVICE_NAME, detail=detail):
        raise passing
    if status == 403:
        raise TransientError("YouTube Music refused the search", detail=detail)
    if status >= 400:
        raise PermanentError("YouTube Music refused the search", detail=detail)


class _Rebased(HTTPAdapter):
    """Sends what ytmusicapi addresses to music.youtube.com to another base URL (a test server): ytmusicapi
    has no setting for it."""

    def __init__(self, base_url: str) -> None:
        super().__init__()
        self.base_url = base_url.rstrip("/")

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        url = request.url or ""
        if url.startswith(BASE_URL):
            request.url = self.base_url + url[len(BASE_URL) :]
        return super().send(request, *args, **kwargs)


class YouTubeMusicProvider:
    """`session` (for proxies, adapters or tests) gets this provider's timeout and status hook; `base_url`
    (YOUTUBE_MUSIC_URL) replaces https://music.youtube.com."""

    def __init__(
        self,
        *,
        timeout: float = 20,
        proxy: str | None = None,
        session: requests.Session | None = None,
        base_url: str = BASE_URL,
    ) -> None:
        self._session = session if session is not None else requests.Session()
        self._session.request = partial(self._session.request, timeout=timeout)  # type: ignore[method-assign]
        self._session.hooks["response"].append(_check_status)
        if base_url.rstrip("/") != BASE_URL:
            self._session.mount(BASE_URL, _Rebased(base_url))
        self._proxies = {"http": proxy, "https": proxy} if proxy else None
        self._client: YTMusic | None = None

    def _ytmusic(self) -> YTMusic:
        if self._client is None:
            # YTMusic() sets the process-wide locale for its own number parsing; keep ours.
            saved = locale.setlocale(locale.LC_ALL)
            try:
                self._client = YTMusic(requests_session=self._session, proxies=self._proxies)
            finally:
                locale.setlocale(locale.LC_ALL, saved)
        return self._client

    def run(self, step: SearchStep) -> list[Candidate]:
        """One search for a track's candidates; every failure becomes a PipelineError."""
        results = self.results(step.query, step.filter, RESULTS_PER_SEARCH)
        return candidates_from(results, from_isrc_query=step.from_isrc)

    def results(self, query: str, filter: Literal["songs", "videos"] | None, limit: int) -> list[dict[str, Any]]:
        """ytmusicapi's parsed results of one search (also what a text search shows people); every failure
        becomes a PipelineError."""
        try:
            return list(self._ytmusic().search(query, filter=filter, limit=limit))
        except PipelineError:
            raise
        except requests.RequestException as error:
            raise request_error(error, service=SERVICE_NAME, detail=str(error)) from None
        except YTMusicError as error:
            raise TransientError("YouTube Music search failed", detail=str(error)) from None
        except (ValueError, KeyError, TypeError, IndexError, AttributeError) as error:
            # A layout ytmusicapi cannot read: retrying will not help until it is updated.
            raise PermanentError("YouTube Music answered in an unexpected format", detail=repr(error)) from None

    def search(self, track: Track) -> list[Candidate]:
        found: list[Candidate] = []
        for step in search_plan(track):
            try:
                new = self.run(step)
            except TransientError as error:
                # A later search failing must not throw away an acceptable match an earlier one found.
                if any(item.acceptable for item in matching.rank(track, found)):
                    log.warning("youtube-music %s: %s; keeping earlier results", track.spotify_id, error)
                    break
                raise
            found = merge(found, new)
            done = matching.conclusive(track, found)
            log.debug(
                "youtube-music %s %s %r: %d results%s",
                track.spotify_id,
                "isrc" if step.from_isrc else step.filter,
                step.query,
                len(new),
                ", conclusive" if done else "",
            )
            if done:
                break
        return found
