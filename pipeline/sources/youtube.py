"""Plain YouTube search through yt-dlp (`ytsearch10:`), the fallback when YouTube Music has nothing.

Only the result list is fetched (`extract_flat`): no video page is opened, nothing is downloaded.
Every result is a "video" candidate whose artist is the uploading channel; the matcher reads the
artist from the title too, where uploaders put it.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yt_dlp
from yt_dlp.utils import DownloadError

from pipeline.errors import PipelineError, TransientError, Unavailable
from pipeline.models import YOUTUBE_EXTRACTOR, Candidate, Track
from pipeline.settings import PipelineSettings
from pipeline.ytdlp import base_options, from_download_error, private_cookies

log = logging.getLogger(__name__)

SOURCE = "youtube"
WATCH_URL = "https://www.youtube.com/watch?v="
RESULTS = 10
ACTION = "YouTube search"  # in the reasons users read: "YouTube search failed"


def search_query(track: Track) -> str:
    return f"ytsearch{RESULTS}:{track.search_text}"


def ydl_options(settings: PipelineSettings, cookie_copy: Path | None) -> dict[str, Any]:
    """yt-dlp options for a search; `cookie_copy` is this call's own copy of the cookies file."""
    return {
        **base_options(settings, cookie_copy),
        "no_warnings": True,
        "skip_download": True,
        "extract_flat": "in_playlist",
        "logger": log,
    }


def candidates_from_search(info: Mapping[str, Any] | None) -> list[Candidate]:
    """yt-dlp's flat search result → candidates, in YouTube's order; skips channels, playlists, live streams, shorts."""
    candidates: list[Candidate] = []
    for entry in (info or {}).get("entries") or []:
        if not isinstance(entry, Mapping):
            continue
        video_id, title, url = entry.get("id"), entry.get("title"), str(entry.get("url") or "")
        if not isinstance(video_id, str) or len(video_id) != 11 or not isinstance(title, str) or not title:
            continue
        if entry.get("ie_key") not in (None, "Youtube") or "/shorts/" in url or "list=" in url:
            continue
        if entry.get("live_status") in ("is_live", "is_upcoming"):
            continue
        duration = entry.get("duration")
        views = entry.get("view_count")
        candidates.append(
            Candidate(
                url=WATCH_URL + video_id,
                title=title,
                artist=str(entry.get("channel") or entry.get("uploader") or ""),
                duration_s=float(duration) if isinstance(duration, int | float) else None,
                source=SOURCE,
                result_type="video",
                rank=len(candidates),
                views=views if isinstance(views, int) else None,
                extractor=YOUTUBE_EXTRACTOR,
            )
        )
    return candidates


def error_from_download_error(error: DownloadError) -> PipelineError:
    """What a failed yt-dlp search means for the job, as for a download (`pipeline.ytdlp`), except that a search
    names no recording: what would make one "unavailable" (a 403 or 404 of the search page) is a failed
    search, worth retrying."""
    mapped = from_download_error(error, action=ACTION)
    if isinstance(mapped, Unavailable):
        return TransientError(f"{ACTION} failed", detail=mapped.detail)
    return mapped


class YouTubeSearchProvider:
    def __init__(self, settings: PipelineSettings) -> None:
        self.settings = settings

    def search(self, track: Track) -> list[Candidate]:
        with tempfile.TemporaryDirectory(prefix="ytsearch-") as scratch:
            cookie_copy = private_cookies(self.settings, Path(scratch))
            try:
                with yt_dlp.YoutubeDL(ydl_options(self.settings, cookie_copy)) as ydl:  # type: ignore[arg-type]
                    info = ydl.extract_info(search_query(track), download=False)
            except DownloadError as error:
                raise error_from_download_error(error) from None
        candidates = candidates_from_search(info)
        log.debug("youtube %s %r: %d results", track.spotify_id, search_query(track), len(candidates))
        return candidates
