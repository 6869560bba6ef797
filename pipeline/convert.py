"""Turn whatever yt-dlp downloaded into an MP3 with FFmpeg, run as a subprocess.

FFmpeg is a blocking child process: it gets its own timeout and is killed on timeout or cancel,
because a worker's time limit cannot interrupt a process wait. Metadata, cover art and video
streams of the source are dropped; tags are written afterwards from Spotify's data.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from mutagen import MutagenError
from mutagen.mp3 import MP3

from pipeline.errors import Cancelled, ConfigurationError, PermanentError, TransientError
from pipeline.settings import PipelineSettings

log = logging.getLogger(__name__)

_VBR = re.compile(r"^V([0-9])$")
_CBR = re.compile(r"^([0-9]{2,3})k$")
_POLL_S = 0.2  # how often a running conversion checks `cancel()`
_STDERR_TAIL = 1500


def ffmpeg_executable(settings: PipelineSettings | None = None) -> str:
    """FFMPEG_PATH if set, else `ffmpeg` on PATH, else imageio-ffmpeg's bundled binary (pip-only installs)."""
    if settings is not None and settings.ffmpeg_path:
        return settings.ffmpeg_path
    found = shutil.which("ffmpeg")
    if found:
        return found
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError) as error:
        raise ConfigurationError("FFmpeg not found; install it or set FFMPEG_PATH", detail=str(error)) from None


def quality_args(quality: str) -> list[str]:
    """LAME options for MP3_QUALITY: "V0".."V9" is VBR (`-q:a N`), "192k" a constant bitrate."""
    if match := _VBR.match(quality):
        return ["-q:a", match.group(1)]
    if _CBR.match(quality):
        return ["-b:a", quality]
    raise ValueError(f"unsupported MP3 quality {quality!r} (use V0..V9 or a bitrate like 192k)")


def ffmpeg_args(executable: str, src: Path, dest: Path, quality: str) -> list[str]:
    """The full FFmpeg command line: first audio stream only, no metadata, no video/cover, MP3 via LAME."""
    return [
        executable,
        "-hide_banner",
        "-nostdin",
        "-loglevel",
        "error",
        "-y",
        "-i",
        str(src),
        "-map",
        "0:a:0",
        "-vn",
        "-sn",
        "-dn",
        "-map_metadata",
        "-1",
        "-codec:a",
        "libmp3lame",
        *quality_args(quality),
        "-id3v2_version",
        "3",
        "-f",
        "mp3",
        str(dest),
    ]


def to_mp3(
    src: Path,
    dest: Path,
    quality: str,
    *,
    timeout: float,
    cancel: Callable[[], bool] | None = None,
    ffmpeg: str | None = None,
) -> Path:
    """Convert `src` to `dest` (MP3). Kills FFmpeg on timeout (TransientError) or cancel (Cancelled)."""
    args = ffmpeg_args(ffmpeg or ffmpeg_executable(), src, dest, quality)
    log.debug("ffmpeg: %s", " ".join(args))
    try:
        process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    except OSError as error:
        raise ConfigurationError("FFmpeg could not be started; check FFMPEG_PATH", detail=str(error)) from None
    deadline = time.monotonic() + timeout
    stderr = b""
    try:
        while True:
            remaining = deadline - time.monotonic()
            try:
                _, stderr = process.communicate(timeout=max(0.0, min(_POLL_S, remaining)))
                break
            except subprocess.TimeoutExpired:
                if cancel is not None and cancel():
                    raise Cancelled() from None
                if time.monotonic() >= deadline:
                    raise TransientError("audio conversion timed out", detail=f"ffmpeg ran over {timeout:g}s") from None
    except BaseException:
        process.kill()
        process.communicate()
        dest.unlink(missing_ok=True)
        raise
    if process.returncode != 0:
        dest.unlink(missing_ok=True)
        tail = stderr.decode("utf-8", "replace").strip()[-_STDERR_TAIL:]
        raise PermanentError("could not convert the audio", detail=f"ffmpeg exit {process.returncode}: {tail}")
    return dest


def mp3_duration(path: Path) -> float:
    """The real playing time in seconds, read from the encoded file (Xing/LAME header)."""
    try:
        return float(MP3(path).info.length)
    except (MutagenError, OSError) as error:
        raise PermanentError("could not read the converted audio", detail=str(error)) from None
