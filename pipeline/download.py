"""Download one candidate recording with yt-dlp (used as a library), into a job's own directory.

yt-dlp's failures arrive as message strings; `classify_download_error` turns them into the pipeline's
vocabulary so a job knows whether to try the next candidate (`Unavailable`, `TransientError`), stop
(`SourceBlocked`: YouTube wants cookies or another IP), or retry later. A progress hook enforces
cancellation and the time limits, since yt-dlp has no overall timeout of its own.
"""

from __future__ import annotations

import logging
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yt_dlp
from yt_dlp.utils import DownloadError

from pipeline.convert import ffmpeg_executable
from pipeline.errors import (
    Cancelled,
    ConfigurationError,
    PipelineError,
    RateLimited,
    SourceBlocked,
    TransientError,
    Unavailable,
)
from pipeline.settings import PipelineSettings

log = logging.getLogger(__name__)

OUTPUT_STEM = "source"
COOKIES_COPY = "cookies.txt"

_STATUS = re.compile(r"HTTP Error (\d{3})")
# Checked in this order: YouTube's rate-limit text starts like an unavailable video, and "Private video.
# Sign in if you've been granted access" is an unavailable video, not a bot check.
_RATE_LIMITED = ("content isn't available, try again later", "rate-limited by youtube", "http error 429")
_UNAVAILABLE = (
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
_BLOCKED = ("not a bot", "sign in to confirm", "confirm your age", "age-restricted", "inappropriate", "captcha")


def classify_download_error(message: str, status: int | None = None) -> PipelineError:
    """Map a yt-dlp error message (and the HTTP status behind it, if known) to a pipeline error.

    Anything not recognised as blocked or unavailable (5xx, connection errors, truncated data,
    unknown extractor trouble) is transient: another candidate or a later retry may work.
    """
    text = message.replace("’", "'").lower()
    detail = message.replace("\r", "").strip()[-500:]
    if status is None and (match := _STATUS.search(message)):
        status = int(match.group(1))
    if status == 429 or any(marker in text for marker in _RATE_LIMITED):
        return RateLimited("YouTube is rate-limiting this server; try again later", detail=detail)
    if status in (401, 403, 404, 410, 451) or any(marker in text for marker in _UNAVAILABLE):
        return Unavailable("this recording is unavailable", detail=detail)
    if any(marker in text for marker in _BLOCKED):
        return SourceBlocked(detail=detail)
    if "timed out" in text or "timeout" in text:
        return TransientError("download timed out", detail=detail)
    return TransientError("download failed", detail=detail)


def _http_status(error: BaseException | None) -> int | None:
    """The HTTP status behind a yt-dlp error, following its `cause`/`__cause__` chain."""
    seen = 0
    while error is not None and seen < 10:
        status = getattr(error, "status", None)
        if isinstance(status, int):
            return status
        error = getattr(error, "cause", None) or error.__cause__ or error.__context__
        seen += 1
    return None


class _YtDlpLogger:
    """Routes yt-dlp's console output to our logger; errors are raised and logged by the caller."""

    def debug(self, message: str) -> None:
        log.debug("yt-dlp: %s", message)

    def info(self, message: str) -> None:
        log.debug("yt-dlp: %s", message)

    def warning(self, message: str) -> None:
        log.warning("yt-dlp: %s", message)

    def error(self, message: str) -> None:
        log.debug("yt-dlp: %s", message)


class _Watchdog:
    """yt-dlp progress hook: aborts on cancel, on the overall deadline, and when bytes stop coming."""

    def __init__(self, cancel: Callable[[], bool], total_s: float, stall_s: float) -> None:
        self.cancel = cancel
        self.total_s = total_s
        self.stall_s = stall_s
        self.started = self.last_progress = time.monotonic()
        self.downloaded = -1

    def check(self, progress: dict[str, Any] | None = None) -> None:
        if self.cancel():
            raise Cancelled()
        now = time.monotonic()
        if progress is not None:
            downloaded = progress.get("downloaded_bytes") or 0
            if downloaded != self.downloaded:  # a restarted download counts from 0 again: still progress
                self.downloaded, self.last_progress = downloaded, now
        if progress is not None and now - self.last_progress > self.stall_s:
            raise TransientError("download timed out", detail=f"no data for {self.stall_s:g}s")
        if now - self.started > self.total_s:
            raise TransientError("download timed out", detail=f"took over {self.total_s:g}s")

    def __call__(self, progress: dict[str, Any]) -> None:
        self.check(progress)


def ytdlp_options(workdir: Path, settings: PipelineSettings, hook: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    options: dict[str, Any] = {
        "format": "bestaudio/best",
        "noplaylist": True,
        "playlist_items": "1",  # a playlist URL that slipped through: its first entry, never all of it
        "socket_timeout": settings.http_timeout,
        "retries": 2,
        "fragment_retries": 2,
        "extractor_retries": 1,
        "file_access_retries": 1,
        "quiet": True,
        "noprogress": True,
        "logger": _YtDlpLogger(),
        "paths": {"home": str(workdir), "temp": str(workdir)},
        "outtmpl": f"{OUTPUT_STEM}.%(ext)s",
        "overwrites": True,
        "progress_hooks": [hook],
        "fixup": "never",  # FFmpeg re-encodes the file anyway
        "ffmpeg_location": ffmpeg_executable(settings),
    }
    if settings.ytdlp_proxy:
        options["proxy"] = settings.ytdlp_proxy
    if settings.ytdlp_cookies_file:
        # yt-dlp writes the cookie jar back at exit: each download gets its own copy.
        copy = workdir / COOKIES_COPY
        try:
            shutil.copyfile(settings.ytdlp_cookies_file, copy)
        except OSError as error:
            raise ConfigurationError("cannot read YTDLP_COOKIES_FILE", detail=str(error)) from None
        options["cookiefile"] = str(copy)
    return options


def _downloaded_file(info: dict[str, Any], workdir: Path) -> Path:
    for item in info.get("requested_downloads") or ():
        path = item.get("filepath")
        if path and Path(path).is_file():
            return Path(path)
    found = [p for p in workdir.glob(f"{OUTPUT_STEM}.*") if p.suffix not in (".part", ".ytdl")]
    if not found:
        raise TransientError("download failed", detail="yt-dlp reported success but wrote no file")
    return found[0]


def download_audio(url: str, workdir: Path, settings: PipelineSettings, *, cancel: Callable[[], bool]) -> Path:
    """Download the best audio of `url` into `workdir` (which the caller owns and deletes)."""
    watchdog = _Watchdog(cancel, settings.download_timeout, settings.http_timeout)
    watchdog.check()
    options = ytdlp_options(workdir, settings, watchdog)
    try:
        with yt_dlp.YoutubeDL(options) as ydl:
            info = ydl.extract_info(url, download=True)
    except PipelineError:
        raise  # raised by our progress hook (Cancelled, timeout)
    except DownloadError as error:
        cause = error.exc_info[1] if error.exc_info else None
        if isinstance(cause, PipelineError):
            raise cause from None
        mapped = classify_download_error(str(error), _http_status(cause))
        log.debug("download of %s failed: %s (%s)", url, type(mapped).__name__, mapped.detail)
        raise mapped from error
    except OSError as error:
        raise TransientError("download failed", detail=f"{type(error).__name__}: {error}") from error
    if cancel():
        raise Cancelled()
    if not info:
        raise Unavailable("this recording is unavailable", detail="yt-dlp returned no info")
    return _downloaded_file(info, workdir)
