"""YouTubeMusicProvider against real recorded YouTube Music responses, replayed at the HTTP transport.

The fixtures in tests/data are copies of spotDL's recordings (see tests/data/README.md):
raw innertube JSON as `POST music.youtube.com/youtubei/v1/search` answered it. ytmusicapi and the
provider run unchanged; only the requests.Session's transport adapter is canned (tests/replay.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests

from pipeline import matching
from pipeline.errors import PermanentError, RateLimited, TransientError
from pipeline.models import Candidate, Track
from pipeline.sources.youtube_music import (
    SearchStep,
    YouTubeMusicProvider,
    candidates_from,
    merge,
    result_type,
    search_plan,
)
from tests.replay import CannedStatus, RaisingTransport, RecordedYTMusic, filter_name, query_slug, session_with

DATA = Path(__file__).parent / "data"
CASES = {case["name"]: case for case in json.loads((DATA / "matching_cases.json").read_text(encoding="utf-8"))}


def track_of(name: str, **changes: object) -> Track:
    case = CASES[name]
    fields = {
        "spotify_id": case["spotify_track_id"],
        "title": case["name"],
        "artists": case["artists"],
        "album": case["album"],
        "duration_ms": case["duration_ms"],
        "isrc": case["isrc"],
    }
    return Track(**(fields | changes))  # type: ignore[arg-type]


@pytest.fixture
def replay() -> RecordedYTMusic:
    return RecordedYTMusic(DATA / "ytmusic")


@pytest.fixture
def provider(replay: RecordedYTMusic) -> YouTubeMusicProvider:
    return YouTubeMusicProvider(session=session_with(replay))


def searches(replay: RecordedYTMusic) -> list[tuple[str, str]]:
    return [(r.filter, r.query) for r in replay.searches]


# --- the search strategy, end to end -------------------------------------------------------------


def test_a_conclusive_isrc_hit_costs_one_search(provider: YouTubeMusicProvider, replay: RecordedYTMusic) -> None:
    track = track_of("Down")

    found = provider.search(track)

    assert searches(replay) == [("isrc", "USCM50900094")]
    best = found[0]
    assert best.url == "https://music.youtube.com/watch?v=DQ514qIthSc"
    assert (best.title, best.artist, best.duration_s) == ("Down (feat. Lil Wayne)", "Jay Sean", 213.0)
    assert best.result_type == "song" and best.from_isrc_query and best.source == "youtube-music"
    assert all(c.from_isrc_query for c in found)
    assert [c.rank for c in found] == list(range(len(found)))
    assert matching.accepted(track, found)[0] == best


def test_the_isrc_is_sent_trimmed_and_upper_case(provider: YouTubeMusicProvider, replay: RecordedYTMusic) -> None:
    provider.search(track_of("Down", isrc=" uscm50900094 "))
    assert searches(replay) == [("isrc", "USCM50900094")]


def test_an_empty_isrc_answer_falls_through_to_songs(provider: YouTubeMusicProvider, replay: RecordedYTMusic) -> None:
    track = track_of("Santa Baby (with Henri René & His Orchestra)")

    found = provider.search(track)

    query = "Eartha Kitt, Henri René and His Orchestra - Santa Baby (with Henri René & His Orchestra)"
    assert searches(replay) == [("isrc", "USBB10101085"), ("songs", query)]  # a song settled it: no videos search
    assert not replay.missing
    assert {c.result_type for c in found} == {"song"}
    pick = matching.accepted(track, found)[0]
    assert pick.url.endswith("BX4q8Qyjfqg")
    assert pick.artist == "Eartha Kitt, Henri Rene and his Orchestra"
    assert pick.album == "Happy Winter Holidays: Where Are You Christmas"
    assert not pick.from_isrc_query


def test_without_isrc_the_songs_search_comes_first(provider: YouTubeMusicProvider, replay: RecordedYTMusic) -> None:
    provider.search(track_of("Santa Baby (with Henri René & His Orchestra)", isrc=None))
    assert [f for f, _ in searches(replay)] == ["songs"]


def test_nothing_conclusive_runs_all_three_and_returns_everything(
    provider: YouTubeMusicProvider, replay: RecordedYTMusic
) -> None:
    track = track_of("Proper Sensi")

    found = provider.search(track)

    assert [f for f, _ in searches(replay)] == ["isrc", "songs", "videos"]
    assert not replay.missing
    video = next(c for c in found if c.url.endswith("Al3UIEPPSOg"))
    assert video.result_type == "video"
    assert video.title == "JR Kenna & Mr. Patze - Proper Sensi [Official Video 2022]"
    assert video.artist == "Reggaeville"
    assert len({c.url for c in found}) == len(found) == 21
    # The official video runs 26 s longer than the track and nothing else is this song: no confident match.
    assert matching.accepted(track, found) == []


def test_a_search_that_was_never_recorded_replays_empty(
    provider: YouTubeMusicProvider, replay: RecordedYTMusic
) -> None:
    track = Track(spotify_id="0" * 22, title="Unknown Song", artists=["Nobody"], duration_ms=200_000)
    assert provider.search(track) == []
    assert [r.filter for r in replay.missing] == ["songs", "videos"]


# --- failures at the transport -------------------------------------------------------------------


def test_429_is_rate_limited_with_retry_after() -> None:
    provider = YouTubeMusicProvider(session=session_with(CannedStatus(429, {"Retry-After": "120"})))
    with pytest.raises(RateLimited) as raised:
        provider.search(track_of("Down"))
    assert raised.value.retry_after == 120


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_are_transient(status: int) -> None:
    provider = YouTubeMusicProvider(session=session_with(CannedStatus(status)))
    with pytest.raises(TransientError) as raised:
        provider.search(track_of("Down"))
    assert not isinstance(raised.value, RateLimited)


def test_a_client_error_is_permanent() -> None:
    provider = YouTubeMusicProvider(session=session_with(CannedStatus(400, body=b'{"error": {"message": "bad"}}')))
    with pytest.raises(PermanentError):
        provider.search(track_of("Down"))


@pytest.mark.parametrize(
    "error", [requests.ConnectTimeout("slow"), requests.ReadTimeout("slow"), requests.ConnectionError("refused")]
)
def test_network_failures_are_transient(error: requests.RequestException) -> None:
    provider = YouTubeMusicProvider(session=session_with(RaisingTransport(error)))
    with pytest.raises(TransientError):
        provider.search(track_of("Down"))


def test_an_unreadable_answer_is_permanent() -> None:
    body = json.dumps({"contents": {"somethingNew": {}}}).encode()
    provider = YouTubeMusicProvider(session=session_with(CannedStatus(200, {"Content-Type": "application/json"}, body)))
    with pytest.raises(PermanentError):
        provider.search(track_of("Down"))


class FailingAfterFirst(RecordedYTMusic):
    """Replays the first search, then answers 503 (YouTube Music falling over mid-track)."""

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):  # type: ignore[override]
        if request.method == "POST" and self.served:
            return CannedStatus(503).send(request)
        return super().send(request, stream, timeout, verify, cert, proxies)


def test_a_failing_later_search_keeps_an_acceptable_earlier_match() -> None:
    # 7 s off: the ISRC hit stays acceptable but is not conclusive, so the songs search runs and fails.
    track = track_of("Down", duration_ms=206_000)
    found = YouTubeMusicProvider(session=session_with(FailingAfterFirst(DATA / "ytmusic"))).search(track)
    assert matching.accepted(track, found)[0].url.endswith("DQ514qIthSc")


def test_a_failing_later_search_raises_when_nothing_acceptable_was_found() -> None:
    provider = YouTubeMusicProvider(session=session_with(FailingAfterFirst(DATA / "ytmusic")))
    with pytest.raises(TransientError):
        provider.search(track_of("Proper Sensi"))


def test_timeout_and_proxy_reach_the_transport() -> None:
    seen: list[dict] = []

    class Recording(RecordedYTMusic):
        def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):  # type: ignore[override]
            seen.append({"timeout": timeout, "proxies": proxies})
            return super().send(request, stream, timeout, verify, cert, proxies)

    provider = YouTubeMusicProvider(
        timeout=7.5, proxy="http://proxy.invalid:3128", session=session_with(Recording(DATA / "ytmusic"))
    )
    provider.search(track_of("Down"))
    assert seen and all(s["timeout"] == 7.5 for s in seen)
    assert all(s["proxies"].get("https") == "http://proxy.invalid:3128" for s in seen)


# --- pure parts ----------------------------------------------------------------------------------


def test_search_plan() -> None:
    plan = search_plan(track_of("Down"))
    assert plan == [
        SearchStep("USCM50900094", None, from_isrc=True),
        SearchStep("Jay Sean, Lil Wayne - Down", "songs"),
        SearchStep("Jay Sean, Lil Wayne - Down", "videos"),
    ]
    assert search_plan(Track(spotify_id="x", title="Intro", artists=[]))[0] == SearchStep("Intro", "songs")


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        ({"videoType": "MUSIC_VIDEO_TYPE_ATV", "resultType": "album"}, "song"),  # top result typed by label
        ({"videoType": "MUSIC_VIDEO_TYPE_OMV"}, "video"),
        ({"videoType": "MUSIC_VIDEO_TYPE_UGC"}, "video"),
        ({"videoType": "MUSIC_VIDEO_TYPE_SOMETHING_NEW"}, "video"),
        ({"videoType": "MUSIC_VIDEO_TYPE_PODCAST_EPISODE", "resultType": "episode"}, None),
        ({"resultType": "song"}, "song"),
        ({"resultType": "video"}, "video"),
        ({"resultType": "album"}, None),
        ({"resultType": "artist"}, None),
    ],
)
def test_result_type(item: dict, expected: str | None) -> None:
    assert result_type(item) == expected


def test_candidates_from_skips_what_cannot_be_played() -> None:
    results = [
        {"resultType": "artist", "artist": "Jay Sean", "browseId": "UC1"},
        {"resultType": "album", "title": "All Or Nothing", "browseId": "MPRE1", "videoId": None},
        {
            "resultType": "song",
            "videoType": "MUSIC_VIDEO_TYPE_ATV",
            "videoId": "DQ514qIthSc",
            "title": "Down (feat. Lil Wayne)",
            "artists": [{"name": "Jay Sean", "id": "UC2"}, {"name": "Lil Wayne", "id": None}],
            "album": {"name": "All Or Nothing", "id": "MPRE2"},
            "duration": "3:33",
        },
        {"resultType": "video", "videoId": "abc", "title": "Down", "artists": [], "duration_seconds": 212},
    ]
    songs = candidates_from(results, from_isrc_query=True)
    assert [c.url for c in songs] == [
        "https://music.youtube.com/watch?v=DQ514qIthSc",
        "https://music.youtube.com/watch?v=abc",
    ]
    first, second = songs
    assert (first.artist, first.album, first.duration_s, first.rank) == (
        "Jay Sean, Lil Wayne",
        "All Or Nothing",
        213.0,
        0,
    )
    assert (second.artist, second.album, second.duration_s, second.rank) == ("", None, 212.0, 1)
    assert all(c.from_isrc_query for c in songs)


def test_merge_keeps_the_first_of_the_same_url() -> None:
    a = Candidate(url="u1", title="A", artist="x", from_isrc_query=True)
    b = Candidate(url="u1", title="A", artist="x", result_type="song")
    c = Candidate(url="u2", title="C", artist="x")
    assert merge([a], [b, c]) == [a, c]


# --- the replay itself ----------------------------------------------------------------------------


def test_replay_names_files_like_the_recordings() -> None:
    assert query_slug("Tuna - י'א 2") == "tuna-י-א-2"
    long = "Eartha Kitt, Henri René and His Orchestra - Santa Baby (with Henri René & His Orchestra)"
    assert query_slug(long) == "eartha-kitt-henri-rené-and-his-orchestra-santa-baby-with-hen"
    assert filter_name(None, "USCM50900094") == "isrc"
    assert filter_name(None, "Jay Sean - Down") == "nofilter"
    assert filter_name("EgWKAQIIAWoMEA4QChADEAQQCRAF", "q") == "songs"
    assert filter_name("EgWKAQIQAWoMEA4QChADEAQQCRAF", "q") == "videos"
