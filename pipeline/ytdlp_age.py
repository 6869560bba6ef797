"""How old the installed yt-dlp is. YouTube changes often and yt-dlp follows within days, so a yt-dlp a few
months old is the usual cause of sudden download failures; its versions are release dates (2025.10.22, a
nightly 2025.10.22.123456), so its age needs no network.

`ytdlp_age` is pure (version and today in, `YtDlpAge` out); `installed_ytdlp_age` reads the installed
version. Used by the warning at start (bot and workers), by `/status` for admins and by `/stats`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from importlib.metadata import PackageNotFoundError, version
from typing import Final

__all__ = ["YtDlpAge", "installed_ytdlp_age", "installed_ytdlp_version", "release_date", "ytdlp_age"]

_VERSION_DATE: Final = re.compile(r"^\s*(\d{4})\.(\d{1,2})\.(\d{1,2})(?:\D|$)")
UPDATE_HINT: Final = "update it: scripts/update (Docker: see README, Operating it)"


@dataclass(frozen=True)
class YtDlpAge:
    version: str
    released: date | None  # None: a version string that is no date (a source checkout)
    age_days: int | None
    max_age_days: int

    @property
    def stale(self) -> bool:
        """Older than YTDLP_MAX_AGE_DAYS. An undatable version is never called stale (nothing to compare)."""
        return self.age_days is not None and self.age_days > self.max_age_days

    def describe(self) -> str:
        """`2025.10.22 (40 days old)`, for /stats and the warnings."""
        if self.age_days is None:
            return self.version
        return f"{self.version} ({self.age_days} day{'' if self.age_days == 1 else 's'} old)"

    def warning(self) -> str | None:
        """The one-line warning for logs and admins, or None when it is recent enough."""
        if not self.stale:
            return None
        return (
            f"yt-dlp {self.describe()} is older than YTDLP_MAX_AGE_DAYS={self.max_age_days}: YouTube downloads "
            f"may start failing; {UPDATE_HINT}"
        )


def release_date(version: str) -> date | None:
    """The release date a yt-dlp version string names, or None if it names none."""
    found = _VERSION_DATE.match(version)
    if found is None:
        return None
    try:
        return date(int(found.group(1)), int(found.group(2)), int(found.group(3)))
    except ValueError:
        return None


def ytdlp_age(version: str, today: date, max_age_days: int) -> YtDlpAge:
    released = release_date(version)
    age = None if released is None else max(0, (today - released).days)
    return YtDlpAge(version=version, released=released, age_days=age, max_age_days=max_age_days)


def installed_ytdlp_version() -> str:
    try:
        return version("yt-dlp")  # the package's metadata: importing yt_dlp itself takes a fifth of a second
    except PackageNotFoundError:
        from yt_dlp.version import __version__

        return __version__


def installed_ytdlp_age(max_age_days: int, today: date | None = None) -> YtDlpAge:
    """The installed yt-dlp's age on `today` (default: the local date now)."""
    return ytdlp_age(installed_ytdlp_version(), today or date.today(), max_age_days)
