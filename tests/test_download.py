from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.download import download_audio
from pipeline.errors import Cancelled, PipelineError, RateLimited, SourceBlocked, TransientError, Unavailable
from pipeline.settings import PipelineSettings, load_settings
from pipeline.ytdlp import classify_ytdlp_error
from tests.fakes.audio_server import AudioServer, generate_audio

COOKIE_HINT = (
    "Use --cookies-from-browser or --cookies for the authentication. See  "
    "https://github.com/yt-dlp/yt-dlp/wiki/FAQ#how-do-i-pass-cookies-to-yt-dlp  for how to manually pass cookies. "
    "Also see  https://github.com/yt-dlp/yt-dlp/wiki/Extractors#exporting-youtube-cookies  for tips on effectively "
    "exporting YouTube cookies"
)


# --- the error classifier, on yt-dlp's real messages ---------------------------------------------
@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (f"ERROR: [youtube] dQw4w9WgXcQ: Sign in to confirm you’re not a bot. {COOKIE_HINT}", SourceBlocked),
        (f"ERROR: [youtube] dQw4w9WgXcQ: Sign in to confirm you're not a bot. {COOKIE_HINT}", SourceBlocked),
        (
            "ERROR: [youtube] HtVdAasjOgU: Sign in to confirm your age. This video may be inappropriate for some "
            f"users. {COOKIE_HINT}",
            SourceBlocked,
        ),
        ("ERROR: [youtube] abcdefghijk: YouTube is requiring a captcha challenge before playback", SourceBlocked),
        (
            f"ERROR: [youtube] abcdefghijk: Private video. Sign in if you've been granted access to this video. "
            f"{COOKIE_HINT}",
            Unavailable,
        ),
        ("ERROR: [youtube] abcdefghijk: Video unavailable. This video has been removed by the uploader", Unavailable),
        (
            "ERROR: [youtube] abcdefghijk: Video unavailable. This video is no longer available because the YouTube "
            "account associated with this video has been terminated.",
            Unavailable,
        ),
        (
            "ERROR: [youtube] abcdefghijk: Video unavailable. This video contains content from UMG, who has blocked "
            "it in your country on copyright grounds",
            Unavailable,
        ),
        (
            "ERROR: [youtube] abcdefghijk: The uploader has not made this video available in your country. "
            "You might want to use a VPN or a proxy server (with --proxy) to workaround.",
            Unavailable,
        ),
        (
            "ERROR: [youtube] abcdefghijk: Join this channel to get access to members-only content like this video, "
            "and other exclusive perks.",
            Unavailable,
        ),
        (
            "ERROR: [youtube] abcdefghijk: Requested format is not available. Use --list-formats for a list of "
            "available formats",
            Unavailable,
        ),
        ("ERROR: [youtube] abcdefghijk: This live event will begin in 3 hours.", Unavailable),
        ("ERROR: [generic] Unsupported URL: https://example.com/", Unavailable),
        ("ERROR: unable to download video data: HTTP Error 403: Forbidden", Unavailable),
        (
            "ERROR: [generic] a: Unable to download webpage: HTTP Error 404: Not Found "
            "(caused by <HTTPError 404: Not Found>)",
            Unavailable,
        ),
        ("ERROR: unable to download video data: HTTP Error 410: Gone", Unavailable),
        (
            "ERROR: [youtube] abcdefghijk: Video unavailable. This content isn’t available, try again later. The "
            "current session has been rate-limited by YouTube for up to an hour.",
            RateLimited,
        ),
        ("ERROR: unable to download video data: HTTP Error 429: Too Many Requests", RateLimited),
        ("ERROR: unable to download video data: HTTP Error 503: Service Unavailable", TransientError),
        (
            "ERROR: [generic] a: Unable to download webpage: HTTP Error 500: Internal Server Error "
            "(caused by <HTTPError 500: Internal Server Error>)",
            TransientError,
        ),
        (
            "ERROR: \r[download] Got error: 25803 bytes read, 25803 more expected. Giving up after 2 retries",
            TransientError,
        ),
        ("ERROR: content too short (expected 51606 bytes and served 25803)", TransientError),
        (
            "ERROR: [generic] a: Unable to download webpage: HTTPConnectionPool(host='127.0.0.1', port=9): Max retries "
            "exceeded with url: /a.m4a (Caused by NewConnectionError('<urllib3.connection.HTTPConnection object>: "
            "Failed to establish a new connection: [Errno 111] Connection refused'))",
            TransientError,
        ),
        (
            "ERROR: [generic] a: Unable to download webpage: HTTPConnectionPool(host='127.0.0.1', port=35037): Read "
            "timed out. (read timeout=1.0)",
            TransientError,
        ),
        (
            "ERROR: [youtube] abcdefghijk: Failed to extract any player response; please report this issue on  "
            "https://github.com/yt-dlp/yt-dlp/issues?q= , filling out the appropriate issue template.",
            TransientError,
        ),
    ],
)
def test_classify_real_messages(message: str, expected: type[Exception]) -> None:
    error = classify_ytdlp_error(message)
    assert type(error) is expected
    assert error.detail and message.strip()[-50:] in error.detail  # the whole story stays in the logs
    assert "ERROR" not in error.reason and "http" not in error.reason  # the user sees a short reason


def test_bot_check_reason_points_at_cookies() -> None:
    error = classify_ytdlp_error(f"ERROR: [youtube] x: Sign in to confirm you’re not a bot. {COOKIE_HINT}")
    assert "YTDLP_COOKIES_FILE" in error.reason


@pytest.mark.parametrize(("status", "expected"), [(403, Unavailable), (410, Unavailable), (502, TransientError)])
def test_classify_by_status_behind_the_message(status: int, expected: type[Exception]) -> None:
    assert type(classify_ytdlp_error("ERROR: unable to download video data", status)) is expected


# --- real yt-dlp against the local audio server ---------------------------------------------------
@pytest.fixture(scope="module")
def server() -> Iterator[AudioServer]:
    with AudioServer(hang_seconds=10, slow_seconds=3) as running:
        yield running


@pytest.fixture(autouse=True)
def _fresh_log(server: AudioServer) -> None:
    server.clear_requests()


def settings(**overrides: Any) -> PipelineSettings:
    values: dict[str, Any] = {
        "http_timeout": 5,
        "download_timeout": 30,
        "ytdlp_cookies_file": None,
        "ytdlp_proxy": None,
        "ffmpeg_path": None,
    }
    return load_settings(PipelineSettings, **{**values, **overrides})


def never() -> bool:
    return False


@pytest.mark.parametrize("ext", ["m4a", "webm", "mp3"])
def test_downloads_a_plain_audio_url(server: AudioServer, tmp_path: Path, ext: str) -> None:
    path = download_audio(server.audio_url("song", ext), tmp_path, settings(), cancel=never)
    assert path.parent == tmp_path
    assert path.suffix == f".{ext}"
    assert path.read_bytes() == generate_audio(ext)


def test_the_candidates_extractor_is_the_only_one_asked(server: AudioServer, tmp_path: Path) -> None:
    """A known extractor skips yt-dlp's walk over every URL pattern; it is then the only one tried."""
    path = download_audio(server.audio_url("song"), tmp_path / "a", settings(), cancel=never, extractor="Generic")
    assert path.read_bytes() == generate_audio("m4a")
    with pytest.raises(PipelineError):  # the YouTube extractor does not take a plain file's address
        download_audio(server.audio_url("song"), tmp_path / "b", settings(), cancel=never, extractor="Youtube")


@pytest.mark.parametrize("fault", ["403", "404", "410"])
def test_gone_or_forbidden_is_unavailable(server: AudioServer, tmp_path: Path, fault: str) -> None:
    with pytest.raises(Unavailable):
        download_audio(server.audio_url(fault=fault), tmp_path, settings(), cancel=never)


@pytest.mark.parametrize("fault", ["500", "503", "truncated"])
def test_server_errors_and_truncated_bodies_are_transient(server: AudioServer, tmp_path: Path, fault: str) -> None:
    with pytest.raises(TransientError) as caught:
        download_audio(server.audio_url(fault=fault), tmp_path, settings(), cancel=never)
    assert type(caught.value) is TransientError
    assert not list(tmp_path.glob("source.m4a"))  # no half file posing as a finished one


@pytest.mark.parametrize("fault", ["hang", "stall"])
def test_a_silent_server_times_out(server: AudioServer, tmp_path: Path, fault: str) -> None:
    with pytest.raises(TransientError):
        download_audio(server.audio_url(fault=fault), tmp_path, settings(http_timeout=0.3), cancel=never)


def test_whole_download_time_limit(server: AudioServer, tmp_path: Path) -> None:
    with pytest.raises(TransientError) as caught:
        download_audio(server.audio_url(fault="slow"), tmp_path, settings(download_timeout=0.5), cancel=never)
    assert caught.value.reason == "download timed out"


def test_cancel_before_start_sends_nothing(server: AudioServer, tmp_path: Path) -> None:
    with pytest.raises(Cancelled):
        download_audio(server.audio_url(), tmp_path, settings(), cancel=lambda: True)
    assert server.requests == []


def test_cancel_mid_download(server: AudioServer, tmp_path: Path) -> None:
    asked = []

    def cancel() -> bool:  # true once bytes have started to flow
        asked.append(1)
        return len(asked) > 3

    with pytest.raises(Cancelled):
        download_audio(server.audio_url("song", fault="slow"), tmp_path, settings(), cancel=cancel)
    assert server.count(r"^/slow/audio/song\.m4a$", "GET") >= 1
    assert not (tmp_path / "source.m4a").exists()


def test_cookies_are_used_from_a_private_copy(server: AudioServer, tmp_path: Path) -> None:
    cookies = tmp_path / "cookies.txt"
    original = "# Netscape HTTP Cookie File\n127.0.0.1\tFALSE\t/\tFALSE\t4102444800\tSID\tsecret-value\n"
    cookies.write_text(original)
    workdir = tmp_path / "job"
    workdir.mkdir()
    download_audio(server.audio_url(), workdir, settings(ytdlp_cookies_file=cookies), cancel=never)
    assert (workdir / "cookies.txt").is_file()  # yt-dlp wrote its jar back to the copy
    assert cookies.read_text() == original
    assert all("SID=secret-value" in r.headers.get("Cookie", "") for r in server.requests)


def test_proxy_setting(server: AudioServer, tmp_path: Path) -> None:
    url = "http://audio.example.invalid/audio/proxied.m4a"  # only reachable through the proxy
    path = download_audio(url, tmp_path, settings(ytdlp_proxy=server.base_url), cancel=never)
    assert path.read_bytes() == generate_audio("m4a")
    assert server.requests and all(r.proxied for r in server.requests)


def test_a_read_timeout_is_reported_as_a_timeout() -> None:
    error = classify_ytdlp_error(
        "ERROR: [generic] a: Unable to download webpage: HTTPConnectionPool(host='127.0.0.1', port=35037): Read "
        "timed out. (read timeout=1.0)"
    )
    assert isinstance(error, TransientError)
    assert error.reason == "download timed out"
