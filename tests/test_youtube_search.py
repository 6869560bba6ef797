"""YouTubeSearchProvider: the pure parts on yt-dlp's result shape, the adapter against a dead local proxy.

`SEARCH_RESULT` has the shape yt-dlp 2026.10 returns for `extract_info("ytsearch10:...", download=False)`
with `extract_flat="in_playlist"`: a playlist whose entries are the `url` results built by
`YoutubeTabBaseInfoExtractor._extract_video` (yt_dlp/extractor/youtube/_tab.py).
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from yt_dlp.utils import DownloadError

from pipeline.errors import RateLimited, SourceBlocked, TransientError
from pipeline.models import Track
from pipeline.settings import PipelineSettings, load_settings
from pipeline.sources.youtube import (
    YouTubeSearchProvider,
    candidates_from_search,
    error_from_download_error,
    search_query,
    ydl_options,
)


def entry(video_id: str, title: str, channel: str, duration: float | None, **extra: object) -> dict:
    return {
        "_type": "url",
        "ie_key": "Youtube",
        "id": video_id,
        "url": f"https://www.youtube.com/watch?v={video_id}",
        "title": title,
        "description": None,
        "duration": duration,
        "channel_id": "UC" + "x" * 22,
        "channel": channel,
        "channel_url": "https://www.youtube.com/channel/UC" + "x" * 22,
        "uploader": channel,
        "uploader_id": "@" + channel.replace(" ", ""),
        "uploader_url": "https://www.youtube.com/@" + channel.replace(" ", ""),
        "thumbnails": [{"url": f"https://i.ytimg.com/vi/{video_id}/hqdefault.jpg", "height": 360, "width": 480}],
        "timestamp": None,
        "release_timestamp": None,
        "availability": None,
        "view_count": 1234567,
        "live_status": None,
        "channel_is_verified": True,
        "__x_forwarded_for_ip": None,
    } | extra


SEARCH_RESULT = {
    "_type": "playlist",
    "id": "Jay Sean, Lil Wayne - Down",
    "title": "Jay Sean, Lil Wayne - Down",
    "extractor": "youtube:search",
    "extractor_key": "YoutubeSearch",
    "webpage_url": "ytsearch10:Jay Sean, Lil Wayne - Down",
    "entries": [
        entry("oUbpGmR1-QM", "Jay Sean - Down ft. Lil Wayne (Official Music Video)", "JaySeanVEVO", 231.0),
        entry("ehZECQUvMhE", "Jay Sean - Down (Audio) ft. Lil Wayne", "Jay Sean", 213.0, view_count=None),
        entry("shrt0000001", "Down #shorts", "clips", 15.0, url="https://www.youtube.com/shorts/shrt0000001"),
        entry("live0000001", "Down 24/7 radio", "radio", None, live_status="is_live"),
        {
            "_type": "url",
            "ie_key": "YoutubeTab",
            "id": "UCxxxxxxxxxxxxxxxxxxxxxx",
            "title": "Jay Sean",
            "url": "https://www.youtube.com/channel/UCxxxxxxxxxxxxxxxxxxxxxx",
        },
        entry("noDuration1", "Jay Sean - Down (lyrics)", "Lyrics Channel", None),
        {"_type": "url", "ie_key": "Youtube", "id": "broken", "title": None},
    ],
}


def test_candidates_from_search() -> None:
    found = candidates_from_search(SEARCH_RESULT)
    assert [c.url for c in found] == [
        "https://www.youtube.com/watch?v=oUbpGmR1-QM",
        "https://www.youtube.com/watch?v=ehZECQUvMhE",
        "https://www.youtube.com/watch?v=noDuration1",
    ]
    first, second, third = found
    assert (first.title, first.artist, first.duration_s, first.views) == (
        "Jay Sean - Down ft. Lil Wayne (Official Music Video)",
        "JaySeanVEVO",
        231.0,
        1234567,
    )
    assert (second.views, third.duration_s) == (None, None)
    assert [c.rank for c in found] == [0, 1, 2]
    assert {(c.source, c.result_type, c.from_isrc_query, c.album) for c in found} == {("youtube", "video", False, None)}


def test_uploader_when_channel_is_missing() -> None:
    result = {"entries": [entry("abcdefghijk", "Song", "x", 200.0) | {"channel": None, "uploader": "Someone"}]}
    assert candidates_from_search(result)[0].artist == "Someone"


@pytest.mark.parametrize("info", [None, {}, {"entries": None}, {"entries": []}])
def test_no_results(info: dict | None) -> None:
    assert candidates_from_search(info) == []


def test_search_query() -> None:
    down = Track(spotify_id="6cmm1LMvZdB5zsCwX5BjqE", title="Down", artists=["Jay Sean", "Lil Wayne"])
    assert search_query(down) == "ytsearch10:Jay Sean, Lil Wayne - Down"
    assert search_query(Track(spotify_id="x", title="Intro", artists=[])) == "ytsearch10:Intro"


def settings(**overrides: object) -> PipelineSettings:
    return load_settings(PipelineSettings, _env_file=None, **overrides)


def test_ydl_options(tmp_path: Path) -> None:
    plain = ydl_options(settings(http_timeout=7), None)
    assert plain["extract_flat"] == "in_playlist" and plain["skip_download"] is True
    assert plain["socket_timeout"] == 7
    assert "proxy" not in plain and "cookiefile" not in plain
    copy = tmp_path / "copy.txt"
    full = ydl_options(settings(ytdlp_proxy="socks5://127.0.0.1:9050"), copy)
    assert full["proxy"] == "socks5://127.0.0.1:9050"
    assert full["cookiefile"] == str(copy)


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        ("ERROR: [youtube] abc: Sign in to confirm you’re not a bot. Use --cookies", SourceBlocked),
        ("ERROR: Unable to download API page: HTTP Error 429: Too Many Requests", RateLimited),
        ("ERROR: Unable to download API page: <urlopen error timed out>", TransientError),
        ("ERROR: query page 1: Unable to download API page: HTTP Error 503: Service Unavailable", TransientError),
    ],
)
def test_error_from_download_error(message: str, kind: type) -> None:
    error = error_from_download_error(DownloadError(message))
    assert type(error) is kind
    assert error.detail == message


@pytest.fixture
def dead_proxy() -> str:
    """A loopback port nobody listens on: yt-dlp's requests fail at once, as with no network."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_network_failure_is_transient_and_the_cookie_file_stays_untouched(dead_proxy: str, tmp_path: Path) -> None:
    cookies = tmp_path / "cookies.txt"
    original = "# Netscape HTTP Cookie File\n.youtube.com\tTRUE\t/\tTRUE\t2000000000\tPREF\tf6=40000000\n"
    cookies.write_text(original)
    provider = YouTubeSearchProvider(settings(ytdlp_proxy=dead_proxy, ytdlp_cookies_file=cookies, http_timeout=2))
    track = Track(spotify_id="6cmm1LMvZdB5zsCwX5BjqE", title="Down", artists=["Jay Sean"])

    with pytest.raises(TransientError) as raised:
        provider.search(track)

    assert "proxy" in (raised.value.detail or "").lower()  # the configured proxy was used
    assert cookies.read_text() == original  # yt-dlp wrote its jar back to a copy, not to the user's file
