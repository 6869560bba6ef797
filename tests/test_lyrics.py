"""pipeline.lyrics: which LRCLIB record is the track (pure), and the adapter against a fake LRCLIB."""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest

from pipeline.errors import ConfigurationError, PipelineError
from pipeline.lyrics import (
    USER_AGENT,
    LrclibClient,
    LrclibRecord,
    Lyrics,
    PendingLyrics,
    best_record,
    duration_param,
    get_params,
    lyrics_of,
    parse_records,
    plain_text,
    search_params,
    start_lyrics,
)
from pipeline.models import Track
from pipeline.settings import PipelineSettings, load_settings
from tests.fakes.lrclib_server import NOT_FOUND, PLAIN_EXAMPLE, SYNCED_EXAMPLE, FakeLrclib

TRACK = Track(
    spotify_id="0VjIjW4GlUZAMYd2vXMi3b",
    title="Blinding Lights",
    artists=["The Weeknd"],
    album="After Hours",
    duration_ms=200_040,
)
SYNCED = "[00:26.88] Yeah\n[00:30.12] I've been tryna call"
PLAIN = "Yeah\nI've been tryna call"


def record(**fields: Any) -> LrclibRecord:
    values: dict[str, Any] = {
        "id": 1,
        "trackName": "Blinding Lights",
        "artistName": "The Weeknd",
        "albumName": "After Hours",
        "duration": 200.0,
        "instrumental": False,
        "plainLyrics": PLAIN,
        "syncedLyrics": SYNCED,
    }
    return LrclibRecord.model_validate({**values, **fields})


# --- the request (pure) ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("duration_ms", "expected"),
    [(200_040, 200), (200_600, 201), (1_000, 1), (499, None), (0, None), (3_600_000, 3600), (3_600_600, None)],
)
def test_duration_is_whole_seconds_within_what_lrclib_accepts(duration_ms: int, expected: int | None) -> None:
    assert duration_param(duration_ms) == expected


def test_get_params_carry_the_signature_and_leave_out_the_unknown() -> None:
    duet = TRACK.model_copy(update={"artists": ["The Weeknd", "Rosalía"]})
    assert get_params(duet) == {
        "track_name": "Blinding Lights",
        "artist_name": "The Weeknd, Rosalía",
        "album_name": "After Hours",
        "duration": 200,
    }
    bare = TRACK.model_copy(update={"album": "", "duration_ms": 0})
    assert get_params(bare) == {"track_name": "Blinding Lights", "artist_name": "The Weeknd"}
    assert search_params(duet) == {"track_name": "Blinding Lights", "artist_name": "The Weeknd"}


# --- the answer (pure) -------------------------------------------------------------------------------
def test_the_matching_record_gives_synced_lyrics() -> None:
    chosen = best_record(TRACK, [record()])
    assert chosen is not None
    assert lyrics_of(chosen, TRACK) == Lyrics(SYNCED, synced=True)


def test_plain_lyrics_when_there_are_no_synced_ones() -> None:
    chosen = best_record(TRACK, [record(syncedLyrics=None)])
    assert chosen is not None and lyrics_of(chosen, TRACK) == Lyrics(PLAIN, synced=False)


def test_synced_preferred_over_plain_among_equals() -> None:
    plain_only = record(id=1, syncedLyrics=None)
    synced = record(id=2)
    assert best_record(TRACK, [plain_only, synced]) == synced


def test_instrumental_means_no_lyrics() -> None:
    instrumental = record(instrumental=True, plainLyrics=None, syncedLyrics=None)
    chosen = best_record(TRACK, [instrumental])
    assert chosen == instrumental
    assert lyrics_of(chosen, TRACK) is None


def test_the_exact_record_saying_instrumental_beats_words_from_elsewhere() -> None:
    instrumental = record(id=1, instrumental=True, plainLyrics=None, syncedLyrics=None)
    elsewhere = record(id=2, albumName="The Highlights", duration=200.0)
    chosen = best_record(TRACK, [elsewhere, instrumental])
    assert chosen == instrumental and lyrics_of(chosen, TRACK) is None


def test_a_record_with_nothing_says_nothing() -> None:
    assert best_record(TRACK, [record(plainLyrics=None, syncedLyrics="  ")]) is None
    assert best_record(TRACK, [record(plainLyrics="", syncedLyrics=None)]) is None


@pytest.mark.parametrize(
    "other",
    [
        {"trackName": "Save Your Tears"},  # another song
        {"artistName": "Some Cover Band"},  # a cover
        {"duration": 260.0},  # another edit, a minute longer
        {"trackName": "Blinding Lights (Live)", "albumName": "Live at SoFi Stadium", "duration": 203.0},
        {"trackName": "Blinding Lights - Karaoke Version", "artistName": "The Weeknd"},
    ],
)
def test_other_recordings_are_not_the_track(other: dict[str, Any]) -> None:
    assert best_record(TRACK, [record(**other)]) is None


def test_same_album_and_duration_win_over_another_version() -> None:
    live = record(id=1, albumName="Live From Somewhere", duration=205.0)
    compilation = record(id=2, albumName="Hits 2020", duration=200.0, syncedLyrics=None)
    album = record(id=3, syncedLyrics=None)
    assert best_record(TRACK, [live, compilation, album]) == album
    assert best_record(TRACK, [live, compilation]) == compilation, "duration agrees: more likely the recording"


def test_synced_lyrics_of_another_edit_give_their_words_only() -> None:
    edit = record(duration=206.0, plainLyrics=None)  # 6 s longer: acceptable, but timed for another edit
    chosen = best_record(TRACK, [edit])
    assert chosen is not None
    assert lyrics_of(chosen, TRACK) == Lyrics(PLAIN, synced=False)


def test_unknown_album_and_duration_still_match_on_title_and_artist() -> None:
    bare = TRACK.model_copy(update={"album": "", "duration_ms": 0})
    chosen = best_record(bare, [record(albumName=None, duration=None)])
    assert chosen is not None and lyrics_of(chosen, bare) == Lyrics(SYNCED, synced=True)


def test_non_latin_titles_and_artists_match() -> None:
    track = Track(spotify_id="x" * 22, title="Кукушка", artists=["Кино"], album="Чёрный альбом", duration_ms=396_000)
    found = record(trackName="Кукушка", artistName="Кино", albumName="Черный альбом", duration=396.0)
    assert best_record(track, [found]) == found


def test_plain_text_of_lrc() -> None:
    lrc = "[ar: The Weeknd]\n[offset:+100]\n[00:26.88] Yeah\n[00:30.12][01:02.50]I've been tryna call\n[00:40.00]"
    assert plain_text(lrc) == "Yeah\nI've been tryna call"


def test_odd_answers_are_skipped_not_fatal() -> None:
    payload = [
        {"id": 1, "trackName": "Blinding Lights", "artistName": "The Weeknd", "duration": "long"},
        "not a record",
        None,
        {"trackName": None},
        {"id": 2, "trackName": "Blinding Lights", "artistName": "The Weeknd", "extra": 1, "plainLyrics": PLAIN},
    ]
    assert [r.id for r in parse_records(payload)] == [2]
    assert parse_records({"statusCode": 404}) == []
    assert lyrics_of(record(plainLyrics="x" * 200_000, syncedLyrics=None), TRACK) is None


def test_windows_line_ends_become_newlines() -> None:
    found = lyrics_of(record(syncedLyrics=None, plainLyrics="Yeah\r\nI've been tryna call\r\n"), TRACK)
    assert found == Lyrics(PLAIN, synced=False)


# --- the adapter, against a fake LRCLIB ---------------------------------------------------------------
@pytest.fixture
def client(fake_lrclib: FakeLrclib) -> LrclibClient:
    return LrclibClient(fake_lrclib.base_url + "/", timeout=5)


def add_track(fake: FakeLrclib, **changes: Any) -> int:
    values: dict[str, Any] = {
        "track_name": "Blinding Lights",
        "artist_name": "The Weeknd",
        "album_name": "After Hours",
        "duration": 200.0,
        "plain": PLAIN_EXAMPLE,
        "synced": SYNCED_EXAMPLE,
    }
    return fake.add(**{**values, **changes})


def test_found_by_signature_in_one_request(fake_lrclib: FakeLrclib, client: LrclibClient) -> None:
    add_track(fake_lrclib)
    assert client.lookup(TRACK) == Lyrics(SYNCED_EXAMPLE, synced=True)
    [asked] = fake_lrclib.requests
    assert asked.path == "/api/get"
    assert asked.query == {
        "track_name": "Blinding Lights",
        "artist_name": "The Weeknd",
        "album_name": "After Hours",
        "duration": "200",
    }
    assert asked.headers["User-Agent"] == USER_AGENT


def test_not_found_by_signature_then_searched(fake_lrclib: FakeLrclib, client: LrclibClient) -> None:
    add_track(fake_lrclib, album_name="Blinding Lights (Single)", synced=None)  # another album: /api/get says 404
    assert client.lookup(TRACK) == Lyrics(PLAIN_EXAMPLE, synced=False)
    assert [r.path for r in fake_lrclib.requests] == ["/api/get", "/api/search"]
    assert fake_lrclib.requests[1].query == {"track_name": "Blinding Lights", "artist_name": "The Weeknd"}


def test_search_ranks_the_versions_lrclib_holds(fake_lrclib: FakeLrclib, client: LrclibClient) -> None:
    add_track(fake_lrclib, album_name="Live at SoFi Stadium", duration=212.0, synced="[00:01.00] live words")
    add_track(fake_lrclib, album_name="The Highlights", duration=201.0, synced=None, plain="album words")
    track = TRACK.model_copy(update={"album": "After Hours (Deluxe)"})  # /api/get finds nothing under this album
    assert client.lookup(track) == Lyrics("album words", synced=False)


def test_nothing_anywhere_is_no_lyrics(fake_lrclib: FakeLrclib, client: LrclibClient) -> None:
    add_track(fake_lrclib, track_name="Save Your Tears")
    assert client.lookup(TRACK) is None
    assert fake_lrclib.count("/api/search") == 1


def test_instrumental_found_by_signature_is_final(fake_lrclib: FakeLrclib, client: LrclibClient) -> None:
    add_track(fake_lrclib, instrumental=True)
    assert client.lookup(TRACK) is None
    assert fake_lrclib.count("/api/search") == 0, "the exact record says there are no words"


def test_a_duration_lrclib_refuses_is_not_sent(fake_lrclib: FakeLrclib, client: LrclibClient) -> None:
    add_track(fake_lrclib, duration=3700.0, plain="a very long piece", synced=None)
    long_track = TRACK.model_copy(update={"duration_ms": 3_700_000})
    assert client.lookup(long_track) == Lyrics("a very long piece", synced=False)
    assert "duration" not in fake_lrclib.requests[0].query


def test_the_fake_answers_as_lrclib_does(fake_lrclib: FakeLrclib) -> None:
    import requests

    base = fake_lrclib.base_url
    missing = requests.get(f"{base}/api/get", params={"track_name": "x", "artist_name": "y"}, timeout=5)
    assert (missing.status_code, missing.json()) == (404, NOT_FOUND)
    bad = requests.get(f"{base}/api/get", params={"track_name": "x", "artist_name": "y", "duration": 0}, timeout=5)
    assert bad.status_code == 400
    assert requests.get(f"{base}/api/search", timeout=5).status_code == 400
    assert requests.get(f"{base}/api/search", params={"q": "x"}, timeout=5).json() == []


@pytest.mark.parametrize("status", [500, 503, 429])
def test_a_failing_service_raises_for_the_caller_to_log(
    fake_lrclib: FakeLrclib, client: LrclibClient, status: int
) -> None:
    add_track(fake_lrclib)
    fake_lrclib.fail("/api/", status)
    with pytest.raises(PipelineError):
        client.lookup(TRACK)
    assert fake_lrclib.count() == 1, "a service in trouble is not asked again"


def test_a_failing_search_raises(fake_lrclib: FakeLrclib, client: LrclibClient) -> None:
    fake_lrclib.fail("/api/search", 400)
    with pytest.raises(PipelineError):
        client.lookup(TRACK)


def test_an_unreachable_service_raises(fake_lrclib: FakeLrclib) -> None:
    fake_lrclib.stop()
    with pytest.raises(PipelineError):
        LrclibClient(fake_lrclib.base_url, timeout=5).lookup(TRACK)


# --- in the background, bounded ------------------------------------------------------------------------
def test_background_lookup_hands_over_its_result(fake_lrclib: FakeLrclib) -> None:
    add_track(fake_lrclib)
    assert start_lyrics(TRACK, fake_lrclib.base_url, timeout=5).result() == Lyrics(SYNCED_EXAMPLE, synced=True)


def test_a_slow_service_gives_no_lyrics_once_the_timeout_is_spent(
    fake_lrclib: FakeLrclib, caplog: pytest.LogCaptureFixture
) -> None:
    add_track(fake_lrclib)
    fake_lrclib.fail("/api/", 200, delay=60)  # the right answer, a minute late
    with caplog.at_level(logging.INFO, logger="pipeline.lyrics"):
        assert start_lyrics(TRACK, fake_lrclib.base_url, timeout=0.5).result() is None
    assert len([r for r in caplog.records if "no lyrics" in r.getMessage()]) == 1


def test_the_wait_is_bounded_even_when_the_lookup_hangs(caplog: pytest.LogCaptureFixture) -> None:
    release = threading.Event()

    def hangs() -> Lyrics | None:
        release.wait()
        return Lyrics("too late", synced=False)

    pending = PendingLyrics(hangs, budget=0.2, label="hang")
    with caplog.at_level(logging.INFO, logger="pipeline.lyrics"):
        assert pending.result() is None
    release.set()
    assert [r.getMessage() for r in caplog.records] == ["hang: no lyrics: LRCLIB did not answer within 0.2 s"]


def test_a_failure_is_logged_once_and_gives_none(fake_lrclib: FakeLrclib, caplog: pytest.LogCaptureFixture) -> None:
    fake_lrclib.fail("/api/", 500)
    with caplog.at_level(logging.INFO, logger="pipeline.lyrics"):
        assert start_lyrics(TRACK, fake_lrclib.base_url, timeout=5).result() is None
    [line] = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
    assert "no lyrics" in line and "HTTP 500" in line


def test_a_bug_in_a_lookup_costs_the_lyrics_only(caplog: pytest.LogCaptureFixture) -> None:
    def broken() -> Lyrics | None:
        raise KeyError("bug")

    with caplog.at_level(logging.INFO, logger="pipeline.lyrics"):
        assert PendingLyrics(broken, budget=5, label="bug").result() is None
    assert caplog.records[0].levelno == logging.WARNING


# --- settings ------------------------------------------------------------------------------------------
def test_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LYRICS", raising=False)
    defaults = load_settings(PipelineSettings, _env_file=None)
    assert defaults.lyrics is True and defaults.lyrics_url == "https://lrclib.net"
    monkeypatch.setenv("LYRICS", "off")
    monkeypatch.setenv("LYRICS_URL", "http://127.0.0.1:9/")
    configured = load_settings(PipelineSettings, _env_file=None)
    assert configured.lyrics is False and configured.lyrics_url == "http://127.0.0.1:9"
    monkeypatch.setenv("LYRICS", "on")
    assert load_settings(PipelineSettings, _env_file=None).lyrics is True
    monkeypatch.setenv("LYRICS_URL", "lrclib.net")
    with pytest.raises(ConfigurationError, match="LYRICS_URL"):
        load_settings(PipelineSettings, _env_file=None)
    monkeypatch.delenv("LYRICS_URL")
    monkeypatch.setenv("LYRICS", "maybe")
    with pytest.raises(ConfigurationError, match="LYRICS:"):
        load_settings(PipelineSettings, _env_file=None)
