"""What the two uses of yt-dlp (the YouTube search in `pipeline.sources.youtube`, the download in
`pipeline.download`) share: the options every call gets (`base_options`: timeouts, proxy, extractor
arguments such as the PO-token provider, cookies), what its failures mean, and the private copy of the
cookies file.

yt-dlp's failures arrive as message strings, sometimes with the HTTP error behind them (`cause`);
`classify_ytdlp_error` turns them into the pipeline's vocabulary so a job knows whether to try the next
candidate (`Unavailable`, `TransientError`), stop (`SourceBlocked`: YouTube wants cookies or another IP), or
retry later (`RateLimited`).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from yt_dlp.options import create_parser
from yt_dlp.plugins import load_all_plugins
from yt_dlp.utils import DownloadError

from pipeline.errors import (
    ConfigurationError,
    PipelineError,
    RateLimited,
    SourceBlocked,
    TransientError,
    Unavailable,
)
from pipeline.ytdlp_age import installed_ytdlp_age

if TYPE_CHECKING:  # settings import this module to validate YTDLP_EXTRACTOR_ARGS at start
    from pipeline.settings import PipelineSettings

__all__ = [
    "COOKIES_COPY",
    "POT_PROVIDER_KEY",
    "base_options",
    "classify_ytdlp_error",
    "cookies_problem",
    "extractor_args",
    "from_download_error",
    "http_status",
    "parse_extractor_args",
    "private_cookies",
    "ytdlp_warnings",
]

log = logging.getLogger(__name__)

# yt-dlp loads its plugins (the PO-token provider) in the first YoutubeDL it makes, without a lock: two
# threads making their first one at once register the provider twice and print a traceback. Loading them
# here, while Python's import lock makes this run once, leaves nothing for the threads to race on.
load_all_plugins()

COOKIES_COPY: Final = "cookies.txt"
# The bgutil-ytdlp-pot-provider plugin's HTTP provider reads its server from this extractor's `base_url`.
POT_PROVIDER_KEY: Final = "youtubepot-bgutilhttp"
# `KEY:ARGS` starts a new extractor's arguments; `ARG=VALUE` continues the previous one's (yt-dlp splits
# ARGS on ";" itself, so "youtube:player_client=web;skip=dash" is one extractor with two arguments).
_NEW_KEY: Final = re.compile(r"^\s*[\w-]+:")

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


ExtractorArgs = dict[str, dict[str, list[str]]]


def parse_extractor_args(text: str | None, pot_provider_url: str | None = None) -> ExtractorArgs:
    """YTDLP_EXTRACTOR_ARGS (and YTDLP_POT_PROVIDER_URL) → yt-dlp's `extractor_args` option.

    The text is what `--extractor-args` takes, for one extractor or several joined by ";":
    `youtube:player_client=web,mweb;youtubepot-bgutilhttp:base_url=http://pot:4416`. Each extractor's part is
    parsed by yt-dlp's own option parser, so values mean exactly what they mean on its command line (keys
    lower-cased, values split on "," unless escaped as "\\,"). The parts are merged argument by argument, later
    ones winning; the provider URL comes last as `youtubepot-bgutilhttp:base_url=<url>`. A malformed part
    raises ValueError with yt-dlp's explanation.
    """
    groups: list[str] = []
    for part in (text or "").split(";"):
        if not part.strip():
            continue
        if _NEW_KEY.match(part) or not groups:
            groups.append(part.strip())
        else:
            groups[-1] += ";" + part.strip()
    if pot_provider_url:
        groups.append(f"{POT_PROVIDER_KEY}:base_url={pot_provider_url.strip()}")
    merged: ExtractorArgs = {}
    for group in groups:
        for key, args in _parse_one(group).items():
            merged.setdefault(key, {}).update(args)
    return merged


def _parse_one(group: str) -> ExtractorArgs:
    parser = create_parser()

    def fail(message: str) -> None:  # optparse would print usage and exit the process
        raise ValueError(message.replace("--extractor-args", "YTDLP_EXTRACTOR_ARGS"))

    parser.error = fail  # type: ignore[method-assign]
    options, _ = parser.parse_args(["--extractor-args", group])
    return options.extractor_args


@lru_cache(maxsize=8)
def _cached_extractor_args(text: str | None, pot_provider_url: str | None) -> ExtractorArgs:
    return parse_extractor_args(text, pot_provider_url)


def extractor_args(settings: PipelineSettings) -> ExtractorArgs:
    """The `extractor_args` option for these settings (a fresh copy: yt-dlp may keep what it is given)."""
    parsed = _cached_extractor_args(settings.ytdlp_extractor_args, settings.ytdlp_pot_provider_url)
    return {key: {arg: list(values) for arg, values in args.items()} for key, args in parsed.items()}


def base_options(settings: PipelineSettings, cookie_copy: Path | None) -> dict[str, Any]:
    """What every yt-dlp call gets, search or download: the network settings and the extractor arguments.

    `cookie_copy` is the caller's own copy of the cookies file (`private_cookies`), or None.
    """
    options: dict[str, Any] = {
        "quiet": True,
        "noprogress": True,
        "socket_timeout": settings.http_timeout,
    }
    if args := extractor_args(settings):
        options["extractor_args"] = args
    if settings.ytdlp_proxy:
        options["proxy"] = settings.ytdlp_proxy
    if cookie_copy is not None:
        options["cookiefile"] = str(cookie_copy)
    return options


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


def cookies_problem(settings: PipelineSettings) -> str | None:
    """Why YTDLP_COOKIES_FILE will not be used, for the warning at start; None when it is fine or unset.

    An optional file that is absent (a Docker mount not made yet) is no reason to stop: the bot runs
    without cookies until it appears, and says so, instead of crash-looping.
    """
    path = settings.ytdlp_cookies_file
    if path is None:
        return None
    if not path.exists():
        return f"YTDLP_COOKIES_FILE {path} does not exist: downloading without cookies until it does"
    if not path.is_file():
        return f"YTDLP_COOKIES_FILE {path} is not a file (a folder Docker made for a missing file?): remove it"
    if not os.access(path, os.R_OK):
        return f"YTDLP_COOKIES_FILE {path} is not readable by this user (uid {os.getuid()}): fix its permissions"
    return None


def private_cookies(settings: PipelineSettings, directory: Path) -> Path | None:
    """A copy of YTDLP_COOKIES_FILE in `directory` (the caller's own, removed with it), or None without one.

    yt-dlp writes its cookie jar back when it closes: two jobs sharing the user's file would overwrite each
    other's cookies, and the user's. An absent file means no cookies (see `cookies_problem`); a file that
    exists but cannot be read is a `ConfigurationError`: every job would fail alike, so retrying cannot help.
    """
    if settings.ytdlp_cookies_file is None:
        return None
    if not settings.ytdlp_cookies_file.exists():
        log.debug("YTDLP_COOKIES_FILE %s does not exist: no cookies", settings.ytdlp_cookies_file)
        return None
    copy = directory / COOKIES_COPY
    try:
        shutil.copyfile(settings.ytdlp_cookies_file, copy)
    except OSError as error:
        raise ConfigurationError("cannot read YTDLP_COOKIES_FILE", detail=str(error)) from None
    return copy


def ytdlp_warnings(settings: PipelineSettings) -> list[str]:
    """What an operator should hear at start about yt-dlp: an old release, cookies that will not be used."""
    found = [installed_ytdlp_age(settings.ytdlp_max_age_days).warning(), cookies_problem(settings)]
    return [warning for warning in found if warning]
