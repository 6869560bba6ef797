"""Download one candidate recording with yt-dlp (used as a library), into a job's own directory.

yt-dlp's failures are mapped by `pipeline.ytdlp.classify_ytdlp_error`, so a job knows whether to try the next
candidate (`Unavailable`, `TransientError`), stop (`SourceBlocked`: YouTube wants cookies or another IP), or
retry later. A progress hook enforces cancellation and the time limits, since yt-dlp has no overall timeout
of its own.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yt_dlp
from yt_dlp.utils import DownloadError

from pipeline.convert import ffmpeg_executable
from pipeline.errors import Cancelled, PipelineError, TransientError, Unavailable
from pipeline.settings import PipelineSettings
from pipeline.ytdlp import base_options, from_download_error, private_cookies

log = logging.getLogger(__name__)

OUTPUT_STEM = "source"


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
    """`pipeline.ytdlp.base_options` (proxy, extractor arguments, a private cookie copy) plus the download's own."""
    options: dict[str, Any] = {
        **base_options(settings, private_cookies(settings, workdir)),
        "format": "bestaudio/best",
        "noplaylist": True,
        "playlist_items": "1",  # a playlist URL that slipped through: its first entry, never all of it
        "retries": 2,
        "fragment_retries": 2,
        "extractor_retries": 1,
        "file_access_retries": 1,
        "logger": _YtDlpLogger(),
        "paths": {"home": str(workdir), "temp": str(workdir)},
        "outtmpl": f"{OUTPUT_STEM}.%(ext)s",
        "overwrites": True,
        "progress_hooks": [hook],
        "fixup": "never",  # FFmpeg re-encodes the file anyway
        "ffmpeg_location": ffmpeg_executable(settings),
    }
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


def download_audio(
    url: str,
    workdir: Path,
    settings: PipelineSettings,
    *,
    cancel: Callable[[], bool],
    extractor: str | None = None,
) -> Path:
    """Download the best audio of `url` into `workdir` (which the caller owns and deletes). `extractor`: yt-dlp's
    extractor for the URL when known (see `Candidate.extractor`); None lets yt-dlp try them all."""
    watchdog = _Watchdog(cancel, settings.download_timeout, settings.http_timeout)
    watchdog.check()
    options = ytdlp_options(workdir, settings, watchdog)
    try:
        with yt_dlp.YoutubeDL(options, auto_init=extractor is None) as ydl:
            if extractor is not None:
                ydl.get_info_extractor(extractor)  # the one extractor asked below, instead of all of them
            info = ydl.extract_info(url, download=True, ie_key=extractor)
    except PipelineError:
        raise  # raised by our progress hook (Cancelled, timeout)
    except DownloadError as error:
        cause = error.exc_info[1] if error.exc_info else None
        if isinstance(cause, PipelineError):
            raise cause from None
        mapped = from_download_error(error)
        log.debug("download of %s failed: %s (%s)", url, type(mapped).__name__, mapped.detail)
        raise mapped from error
    except OSError as error:
        raise TransientError("download failed", detail=f"{type(error).__name__}: {error}") from error
    if cancel():
        raise Cancelled()
    if not info:
        raise Unavailable("this recording is unavailable", detail="yt-dlp returned no info")
    return _downloaded_file(info, workdir)
