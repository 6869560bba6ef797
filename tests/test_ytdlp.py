"""pipeline.ytdlp: what yt-dlp's failures mean and the private cookie copy, shared by search and download."""

from __future__ import annotations

from pathlib import Path

import pytest
from yt_dlp.networking.common import Response
from yt_dlp.networking.exceptions import HTTPError
from yt_dlp.utils import DownloadError

from pipeline.errors import ConfigurationError, RateLimited, SourceBlocked, TransientError, Unavailable
from pipeline.settings import PipelineSettings
from pipeline.sources.youtube import error_from_download_error
from pipeline.ytdlp import (
    COOKIES_COPY,
    classify_ytdlp_error,
    cookies_problem,
    from_download_error,
    http_status,
    private_cookies,
    ytdlp_warnings,
)


@pytest.mark.parametrize(
    "message",
    [
        "ERROR: unable to download video data: HTTP Error 429: Too Many Requests",
        "ERROR: Unable to download API page: HTTP Error 429: ",  # no reason phrase
        "ERROR: [youtube] abcdefghijk: Unable to download webpage: Too Many Requests",
        "ERROR: [youtube] abcdefghijk: Video unavailable. This content isn’t available, try again later.",
    ],
)
def test_a_real_429_is_a_rate_limit(message: str) -> None:
    assert type(classify_ytdlp_error(message)) is RateLimited


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("ERROR: [youtube] a429bcdefgh: Video unavailable", Unavailable),  # an id with 429 in it
        ("ERROR: [youtube] 4294967295a: Private video", Unavailable),
        (
            "ERROR: \r[download] Got error: 429 bytes read, 25803 more expected. Giving up after 2 retries",
            TransientError,
        ),
        ("ERROR: content too short (expected 51606 bytes and served 4290)", TransientError),
        (
            "ERROR: unable to download video data: HTTP Error 503: Service Unavailable (retry 429 of 500)",
            TransientError,
        ),
        ("ERROR: [generic] a: Unable to download webpage: HTTP Error 4290", TransientError),  # not a status
    ],
)
def test_429_inside_an_id_or_a_count_is_no_rate_limit(message: str, expected: type[Exception]) -> None:
    assert type(classify_ytdlp_error(message)) is expected


def test_the_status_behind_the_message_decides() -> None:
    assert type(classify_ytdlp_error("ERROR: unable to download video data", 429)) is RateLimited
    assert type(classify_ytdlp_error("ERROR: unable to download video data", 403)) is Unavailable


def test_the_action_names_what_failed() -> None:
    assert classify_ytdlp_error("ERROR: boom").reason == "download failed"
    assert classify_ytdlp_error("ERROR: <urlopen error timed out>", action="YouTube search").reason == (
        "YouTube search timed out"
    )


def http_error(status: int) -> HTTPError:
    return HTTPError(Response(fp=None, url="https://www.youtube.com/x", headers={}, status=status))  # type: ignore[arg-type]


def raised(message: str, cause: BaseException | None) -> DownloadError:
    return DownloadError(message, exc_info=(type(cause), cause, None) if cause else None)


def test_the_status_is_found_down_the_cause_chain() -> None:
    wrapped = RuntimeError("extractor failed")
    wrapped.__cause__ = http_error(429)
    assert http_status(wrapped) == 429
    assert http_status(RuntimeError("no HTTP behind it")) is None
    assert type(from_download_error(raised("ERROR: unable to download webpage", wrapped))) is RateLimited


@pytest.mark.parametrize(
    ("message", "cause", "expected"),
    [
        ("ERROR: [youtube] abc: Sign in to confirm you’re not a bot. Use --cookies", None, SourceBlocked),
        ("ERROR: Unable to download API page: HTTP Error 429: Too Many Requests", None, RateLimited),
        ("ERROR: [youtube:search] a429b: Unable to download API page", None, TransientError),  # no 429 at all
        ("ERROR: Unable to download API page", http_error(429), RateLimited),
        # A search names no recording: "unavailable" (403/404 of the search page) is a failed search.
        ("ERROR: Unable to download API page: HTTP Error 404: Not Found", None, TransientError),
        ("ERROR: Unable to download API page", http_error(403), TransientError),
    ],
)
def test_search_errors_use_the_same_rules(message: str, cause: BaseException | None, expected: type) -> None:
    error = error_from_download_error(raised(message, cause))
    assert type(error) is expected
    assert error.detail == message
    assert "download" not in error.reason  # a search failed, not a download


# --- the private cookie copy ----------------------------------------------------------------------
def settings_with(cookies: Path | None) -> PipelineSettings:
    return PipelineSettings(_env_file=None, ytdlp_cookies_file=cookies)  # type: ignore[call-arg]


def test_no_cookies_file_no_copy(tmp_path: Path) -> None:
    assert private_cookies(settings_with(None), tmp_path) is None
    assert list(tmp_path.iterdir()) == []


def test_the_copy_is_private_and_equal(tmp_path: Path) -> None:
    original = tmp_path / "mine.txt"
    original.write_text("# Netscape HTTP Cookie File\n")
    work = tmp_path / "job"
    work.mkdir()
    copy = private_cookies(settings_with(original), work)
    assert copy == work / COOKIES_COPY and copy.read_text() == original.read_text()
    copy.write_text("written back by yt-dlp")
    assert original.read_text() == "# Netscape HTTP Cookie File\n"


def test_an_absent_cookies_file_means_no_cookies_and_a_warning(tmp_path: Path) -> None:
    """A Docker mount not made yet must not crash-loop the bot: it runs without cookies and says so."""
    config = settings_with(tmp_path / "not-there.txt")  # settings accept it
    assert private_cookies(config, tmp_path) is None
    assert list(tmp_path.iterdir()) == []
    problem = cookies_problem(config)
    assert problem is not None and "not-there.txt" in problem and "without cookies" in problem
    assert any("not-there.txt" in warning for warning in ytdlp_warnings(config))


def test_a_present_cookies_file_raises_no_warning(tmp_path: Path) -> None:
    original = tmp_path / "mine.txt"
    original.write_text("# Netscape HTTP Cookie File\n")
    assert cookies_problem(settings_with(original)) is None
    assert cookies_problem(settings_with(None)) is None


def test_an_unreadable_cookies_file_is_a_configuration_error(tmp_path: Path) -> None:
    original = tmp_path / "mine"
    original.mkdir()  # exists, but cannot be copied (root may read any file, so a folder stands in)
    with pytest.raises(ConfigurationError, match="YTDLP_COOKIES_FILE"):
        private_cookies(settings_with(original), tmp_path / "job")
    assert "is not a file" in (cookies_problem(settings_with(original)) or "")
