"""What the two uses of yt-dlp (the YouTube search in `pipeline.sources.youtube`, the download in
`pipeline.download`) share: what its failures mean, and the private copy of the cookies file.

yt-dlp's failures arrive as message strings, sometimes with the HTTP error behind them (`cause`);
`classify_ytdlp_error` turns them into the pipeline's vocabulary so a job knows whether to try the next
candidate (`Unavailable`, `TransientError`), stop (`SourceBlocked`: YouTube wants cookies or another IP), or
retry later (`RateLimited`).
"""

from __future__ import annotations

import datetime
import re
import shutil
from pathlib import Path
from typing import Final

from yt_dlp.utils import DownloadError

from pipeline.errors import (
    ConfigurationError,
    PipelineError,
    RateLimited,
    SourceBlocked,
    TransientError,
    Unavailable,
)
from pipeline.settings import PipelineSettings

__all__ = [
    "COOKIES_COPY",
    "classify_ytdlp_error",
    "from_download_error",
    "http_status",
    "private_cookies",
    "ytdlp_release_age_days",
    "ytdlp_version",
]

COOKIES_COPY: Final = "cookies.txt"

# How yt-dlp (and urllib before it) words an HTTP error: "HTTP Error 429: Too Many Requests".
_STATUS: Final = re.compile(r"\bHTTP Error (\d{3})\b")
# A bare "429" is no rate limit: video ids ("a429bcdefgh") and byte counts ("429 bytes read") contain it too.
# Checked in this order: YouTube's rate-limit text starts like an unavailable video, and "Private video.
# Sign in if you've been granted access" is an unavailable video, not a bot check.
_RATE_LIMITED: Final = (
    "too many requests",
    "content isn't available, try again later",
    "rate-limited by youtube",
)
_UNAVAILABLE: Final = (
    "private video",
    "video unavailable",
    "this video is unavailable",
    "this video is not available",
    "has been removed",
    "no longer available",
    "not available in your country",
    "not made this video available",
    "geo restriction",
    "members-only",
    "available to this channel's members",
    "requested format is not available",
    "no video formats found",
    "unsupported url",
    "this live event will begin",
    "premieres in",
    "drm protected",
)
_BLOCKED: Final = ("not a bot", "sign in to confirm", "confirm your age", "age-restricted", "inappropriate", "captcha")


def classify_ytdlp_error(message: str, status: int | None = None, *, action: str = "download") -> PipelineError:
    """Map a yt-dlp error message (and the HTTP status behind it, if known) to a pipeline error.

    Rate-limited only on a real HTTP 429 (the status, "HTTP Error 429", "Too Many Requests") or YouTube's own
    rate-limit sentence. Anything not recognised as blocked or unavailable (5xx, connection errors, truncated
    data, unknown extractor trouble) is transient: another candidate or a later retry may work. `action` names
    what failed in the user-facing reason ("download failed", "YouTube search timed out").
    """
    text = message.replace("’", "'").lower()
    detail = message.replace("\r", "").strip()[-500:]
    statuses = {int(found) for found in _STATUS.findall(message)}
    if status is None and (first := _STATUS.search(message)):
        status = int(first.group(1))
    if status == 429 or 429 in statuses or any(marker in text for marker in _RATE_LIMITED):
        return RateLimited("YouTube is rate-limiting this server; try again later", detail=detail)
    if status in (401, 403, 404, 410, 451) or any(marker in text for marker in _UNAVAILABLE):
        return Unavailable("this recording is unavailable", detail=detail)
    if any(marker in text for marker in _BLOCKED):
        return SourceBlocked(detail=detail)
    if "timed out" in text or "timeout" in text:
        return TransientError(f"{action} timed out", detail=detail)
    return TransientError(f"{action} failed", detail=detail)


def http_status(error: BaseException | None) -> int | None:
    """The HTTP status behind a yt-dlp error, following its `cause`/`__cause__` chain."""
    seen = 0
    while error is not None and seen < 10:
        status = getattr(error, "status", None)
        if isinstance(status, int):
            return status
        error = getattr(error, "cause", None) or error.__cause__ or error.__context__
        seen += 1
    return None


def from_download_error(error: DownloadError, *, action: str = "download") -> PipelineError:
    """`classify_ytdlp_error` for a raised DownloadError, with the status of the HTTP error behind it."""
    cause = error.exc_info[1] if error.exc_info else None
    return classify_ytdlp_error(str(error), http_status(cause), action=action)


def private_cookies(settings: PipelineSettings, directory: Path) -> Path | None:
    """A copy of YTDLP_COOKIES_FILE in `directory` (the caller's own, removed with it), or None without one.

    yt-dlp writes its cookie jar back when it closes: two jobs sharing the user's file would overwrite each
    other's cookies, and the user's. A file that cannot be read is a `ConfigurationError`: every job would
    fail alike, so retrying cannot help.
    """
    if settings.ytdlp_cookies_file is None:
        return None
    copy = directory / COOKIES_COPY
    try:
        shutil.copyfile(settings.ytdlp_cookies_file, copy)
    except OSError as error:
        raise ConfigurationError("cannot read YTDLP_COOKIES_FILE", detail=str(error)) from None
    return copy


def ytdlp_version() -> str:
    from yt_dlp.version import __version__

    return __version__


def ytdlp_release_age_days(version: str, today: datetime.date) -> int | None:
    """Days since the release `version` names (yt-dlp's versions are dates: 2026.10.26, 2026.10.26.1, nightly
    2026.10.26.232512); None when it names no date."""
    match = re.match(r"(\d{4})\.(\d{1,2})\.(\d{1,2})", version)
    if match is None:
        return None
    try:
        released = datetime.date(*(int(part) for part in match.groups()))
    except ValueError:
        return None
    return (today - released).days
