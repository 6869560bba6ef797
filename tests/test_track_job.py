from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from mutagen.id3 import ID3
from PIL import Image

from pipeline.errors import (
    Cancelled,
    NoConfidentMatch,
    SourceBlocked,
    TransientError,
    Unavailable,
)
from pipeline.models import Candidate, Track
from pipeline.settings import PipelineSettings, load_settings
from pipeline.sources import SearchProvider, load_providers
from pipeline.track_job import FetchedTrack, fetch_track, no_match_error, search_candidates
from tests.fakes.audio_provider import LocalAudioProvider
from tests.fakes.audio_server import AudioServer
from tests.fakes.lrclib_server import PLAIN_EXAMPLE, SYNCED_EXAMPLE, FakeLrclib

SPOTIFY_ID = "4uLU6hMCjMI75M1A2tKUQC"
FILENAME = "Rick Astley - Never Gonna Give You Up.mp3"


@pytest.fixture(scope="module")
def server() -> Iterator[AudioServer]:
    with AudioServer(hang_seconds=10, slow_seconds=3) as running:
        yield running


@pytest.fixture(autouse=True)
def _local_audio(server: AudioServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in server.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("FAKE_AUDIO_FAULTS", raising=False)
    server.clear_requests()
    server.clear_plans()
    yield
    server.clear_plans()


@pytest.fixture
def track(server: AudioServer) -> Track:
    return Track(
        spotify_id=SPOTIFY_ID,
        title="Never Gonna Give You Up",
        artists=["Rick Astley"],
        album="Whenever You Need Somebody",
        duration_ms=213573,
        isrc="GBARL9300135",
        album_artists=["Rick Astley"],
        track_number=1,
        track_total=10,
        release_date="1987-11-12",
        cover_url=server.cover_url("album"),
    )


def settings(**overrides: Any) -> PipelineSettings:
    values: dict[str, Any] = {
        "http_timeout": 5,
        "download_timeout": 30,
        "ffmpeg_timeout": 60,
        "max_candidates": 3,
        "ytdlp_cookies_file": None,
        "ytdlp_proxy": None,
        "ffmpeg_path": None,
        "audio_sources": ["tests.fakes.audio_provider:LocalAudioProvider"],
    }
    return load_settings(PipelineSettings, **{**values, **overrides})


def local() -> list[tuple[str, SearchProvider]]:
    return [("local", LocalAudioProvider())]


def leftovers(out_dir: Path) -> list[str]:
    return sorted(p.name for p in out_dir.iterdir()) if out_dir.exists() else []


class Steps:
    def __init__(self) -> None:
        self.seen: list[str] = []

    def __call__(self, step: str) -> None:
        self.seen.append(step)


# --- success ---------------------------------------------------------------------------------------
def test_happy_path(server: AudioServer, track: Track, tmp_path: Path) -> None:
    out_dir = tmp_path / "request" / "0"  # created on demand
    steps = Steps()
    result = fetch_track(track, settings(), providers=local(), out_dir=out_dir, on_step=steps)

    assert isinstance(result, FetchedTrack)
    assert result.path == out_dir.resolve() / FILENAME
    assert leftovers(out_dir) == [FILENAME]  # the work directory is gone
    assert result.candidate.url == f"{server.base_url}/audio/{SPOTIFY_ID}.m4a"
    assert result.duration_s == pytest.approx(3.0, abs=0.2)
    assert result.size_bytes == result.path.stat().st_size > 0
    assert steps.seen == ["searching", "downloading", "converting", "tagging"]

    tags = ID3(result.path, translate=False)
    assert tags.version == (2, 3, 0)
    assert tags["TIT2"].text == ["Never Gonna Give You Up"]
    assert tags["TYER"].text == ["1987"]
    assert {f.desc: f.url for f in tags.getall("WXXX")}["Source"] == result.candidate.url
    (cover,) = tags.getall("APIC")
    assert cover.mime == "image/jpeg"

    assert result.cover == cover.data  # handed over for the bot's thumbnail (bot.thumbnails)
    with Image.open(io.BytesIO(result.cover)) as image:
        assert image.format == "JPEG"


def test_providers_loaded_from_settings(server: AudioServer, track: Track, tmp_path: Path) -> None:
    config = settings()
    result = fetch_track(track, config, providers=load_providers(config), out_dir=tmp_path)
    assert result.path.name == FILENAME


def test_no_cover_is_not_a_failure(server: AudioServer, track: Track, tmp_path: Path) -> None:
    broken_cover = track.model_copy(update={"cover_url": server.cover_url(fault="404")})
    result = fetch_track(broken_cover, settings(), providers=local(), out_dir=tmp_path)
    assert result.cover is None
    assert not ID3(result.path).getall("APIC")


# --- lyrics --------------------------------------------------------------------------------------
@pytest.fixture
def lrclib(fake_lrclib: FakeLrclib, track: Track) -> FakeLrclib:
    """The fake LRCLIB holding `track`'s lyrics under its exact signature."""
    fake_lrclib.add(
        track.title,
        track.main_artist,
        track.album,
        track.duration_ms / 1000,
        plain=PLAIN_EXAMPLE,
        synced=SYNCED_EXAMPLE,
    )
    return fake_lrclib


def test_lyrics_are_embedded(lrclib: FakeLrclib, track: Track, tmp_path: Path) -> None:
    result = fetch_track(track, settings(**lrclib.settings_kwargs()), providers=local(), out_dir=tmp_path)
    (uslt,) = ID3(result.path, translate=False).getall("USLT")
    assert uslt.text == SYNCED_EXAMPLE
    assert result.lyrics is not None and result.lyrics.synced
    assert lrclib.count("^/api/get$") == 1


def test_lyrics_off_asks_nothing(lrclib: FakeLrclib, track: Track, tmp_path: Path) -> None:
    config = settings(**{**lrclib.settings_kwargs(), "lyrics": False})
    result = fetch_track(track, config, providers=local(), out_dir=tmp_path)
    assert lrclib.requests == []
    assert result.lyrics is None
    assert ID3(result.path).getall("USLT") == []


@pytest.mark.parametrize(("status", "delay"), [(500, 0.0), (200, 60.0)], ids=["failing", "slow"])
def test_a_failing_or_slow_lyrics_service_costs_only_the_lyrics(
    lrclib: FakeLrclib, track: Track, tmp_path: Path, status: int, delay: float
) -> None:
    lrclib.fail("/api/", status, delay=delay)
    config = settings(**lrclib.settings_kwargs(), http_timeout=1)
    result = fetch_track(track, config, providers=local(), out_dir=tmp_path)
    assert result.path.name == FILENAME
    assert result.lyrics is None
    assert ID3(result.path).getall("USLT") == []
    assert ID3(result.path)["TIT2"].text == [track.title]
    assert lrclib.count("/api/") >= 1


def test_lyrics_are_not_asked_for_a_cancelled_track(lrclib: FakeLrclib, track: Track, tmp_path: Path) -> None:
    with pytest.raises(Cancelled):
        fetch_track(
            track, settings(**lrclib.settings_kwargs()), providers=local(), out_dir=tmp_path, cancel=lambda: True
        )
    assert lrclib.requests == []


# --- falling back to the next candidate ----------------------------------------------------------
def test_forbidden_first_candidate_falls_back_to_the_second(server: AudioServer, track: Track, tmp_path: Path) -> None:
    server.set_plan(SPOTIFY_ID, ["403", "ok"])
    steps = Steps()
    result = fetch_track(track, settings(), providers=local(), out_dir=tmp_path, on_step=steps)
    assert result.candidate.url == f"{server.base_url}/audio/{SPOTIFY_ID}-1.m4a"
    assert server.count(rf"^/403/audio/{SPOTIFY_ID}\.m4a$") >= 1
    assert steps.seen == ["searching", "downloading", "downloading", "converting", "tagging"]
    assert leftovers(tmp_path) == [FILENAME]


def test_server_error_and_timeout_fall_back(server: AudioServer, track: Track, tmp_path: Path) -> None:
    server.set_plan("never gonna", ["500", "hang", "ok.webm"])  # a title substring works as the key too
    result = fetch_track(track, settings(http_timeout=0.3), providers=local(), out_dir=tmp_path)
    assert result.candidate.url.endswith(f"/audio/{SPOTIFY_ID}-2.webm")
    assert leftovers(tmp_path) == [FILENAME]


def test_gives_up_after_max_candidates(server: AudioServer, track: Track, tmp_path: Path) -> None:
    server.set_plan(SPOTIFY_ID, ["404", "410", "ok"])
    with pytest.raises(Unavailable):
        fetch_track(track, settings(max_candidates=2), providers=local(), out_dir=tmp_path)
    assert server.count(rf"/audio/{SPOTIFY_ID}-2\.m4a") == 0
    assert leftovers(tmp_path) == []


def test_a_transient_failure_makes_the_whole_track_transient(server: AudioServer, track: Track, tmp_path: Path) -> None:
    server.set_plan(SPOTIFY_ID, ["truncated", "404"])
    with pytest.raises(TransientError):
        fetch_track(track, settings(), providers=local(), out_dir=tmp_path)
    assert leftovers(tmp_path) == []


def test_title_marker_steers_the_provider(server: AudioServer, track: Track, tmp_path: Path) -> None:
    marked = track.model_copy(update={"title": "Never Gonna Give You Up [fake: 503, ok.mp3]"})
    result = fetch_track(marked, settings(), providers=local(), out_dir=tmp_path)
    assert result.candidate.url.endswith("-1.mp3")


def test_env_plan(server: AudioServer, track: Track, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_AUDIO_FAULTS", f'{{"{SPOTIFY_ID}": ["wrong"]}}')
    with pytest.raises(NoConfidentMatch):
        fetch_track(track, settings(), providers=local(), out_dir=tmp_path)


# --- no match, search failures ---------------------------------------------------------------------
@pytest.mark.parametrize("plan", [["wrong"], ["none"], ["wrong", "none"]])
def test_no_confident_match(server: AudioServer, track: Track, tmp_path: Path, plan: list[str]) -> None:
    server.set_plan(SPOTIFY_ID, plan)
    with pytest.raises(NoConfidentMatch):
        fetch_track(track, settings(), providers=local(), out_dir=tmp_path)
    assert server.count("^/audio/") == 0  # nothing downloaded
    assert leftovers(tmp_path) == []


class Broken:
    def __init__(self, error: Exception) -> None:
        self.error = error

    def search(self, track: Track) -> Iterable[Candidate]:
        raise self.error


def test_all_providers_failing_is_transient(server: AudioServer, track: Track, tmp_path: Path) -> None:
    server.set_plan(SPOTIFY_ID, ["search-error"])
    providers = [*local(), ("buggy", Broken(KeyError("contents")))]
    with pytest.raises(TransientError):
        fetch_track(track, settings(), providers=providers, out_dir=tmp_path)


def test_a_failing_provider_is_skipped(server: AudioServer, track: Track, tmp_path: Path) -> None:
    providers = [("down", Broken(TransientError("down"))), *local()]
    result = fetch_track(track, settings(), providers=providers, out_dir=tmp_path)
    assert result.candidate.source == "local"


def test_a_blocked_source_is_reported_as_such(server: AudioServer, track: Track, tmp_path: Path) -> None:
    with pytest.raises(SourceBlocked):
        fetch_track(track, settings(), providers=[("yt", Broken(SourceBlocked()))], out_dir=tmp_path)


# --- cancel ----------------------------------------------------------------------------------------
def test_cancelled_before_start(server: AudioServer, track: Track, tmp_path: Path) -> None:
    with pytest.raises(Cancelled):
        fetch_track(track, settings(), providers=local(), out_dir=tmp_path, cancel=lambda: True)
    assert server.requests == []
    assert leftovers(tmp_path) == []


def test_cancelled_mid_download_leaves_nothing(server: AudioServer, track: Track, tmp_path: Path) -> None:
    server.set_plan(SPOTIFY_ID, ["slow"])
    asked: list[int] = []

    def cancel() -> bool:
        asked.append(1)
        return len(asked) > 5

    with pytest.raises(Cancelled):
        fetch_track(track, settings(), providers=local(), out_dir=tmp_path, cancel=cancel)
    assert server.count(f"^/slow/audio/{SPOTIFY_ID}") >= 1
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("at_step", ["downloading", "converting", "tagging"])
def test_cancelled_at_each_step_leaves_nothing(track: Track, tmp_path: Path, at_step: str) -> None:
    cancelled = False

    def on_step(step: str) -> None:
        nonlocal cancelled
        cancelled = cancelled or step == at_step

    with pytest.raises(Cancelled):
        fetch_track(track, settings(), providers=local(), out_dir=tmp_path, cancel=lambda: cancelled, on_step=on_step)
    assert leftovers(tmp_path) == []


# --- provider order, early exit and the reason for "nothing found" --------------------------------------------


class _RecordingProvider:
    """A third-party-style provider (the plugin interface) that answers fixed candidates and counts calls."""

    def __init__(self, candidates: list[Candidate] | None = None, error: Exception | None = None) -> None:
        self.candidates = candidates or []
        self.error = error
        self.calls = 0

    def search(self, track: Track) -> list[Candidate]:
        self.calls += 1
        if self.error:
            raise self.error
        return self.candidates


def _exact_song(track: Track) -> Candidate:
    return Candidate(
        url="https://music.youtube.com/watch?v=exact",
        title=track.title,
        artist=", ".join(track.artists),
        duration_s=track.duration_ms / 1000,
        source="first",
        result_type="song",
        from_isrc_query=True,
    )


def test_a_conclusive_match_skips_the_next_providers() -> None:
    track = Track(spotify_id="4uLU6hMCjMI75M1A2tKUQC", title="Exact", artists=["Someone"], duration_ms=200_000)
    first, second = _RecordingProvider([_exact_song(track)]), _RecordingProvider([])
    candidates, failures = search_candidates(track, [("first", first), ("second", second)])
    assert [c.source for c in candidates] == ["first"] and failures == []
    assert second.calls == 0


def test_a_failing_provider_does_not_hide_the_others() -> None:
    track = Track(spotify_id="4uLU6hMCjMI75M1A2tKUQC", title="Exact", artists=["Someone"], duration_ms=200_000)
    broken, good = _RecordingProvider(error=RuntimeError("plugin bug")), _RecordingProvider([_exact_song(track)])
    candidates, failures = search_candidates(track, [("broken", broken), ("good", good)])
    assert len(candidates) == 1
    assert [type(f) for f in failures] == [TransientError]


@pytest.mark.parametrize(
    ("failures", "expected"),
    [
        ([], NoConfidentMatch),
        ([SourceBlocked()], SourceBlocked),
        ([SourceBlocked(), TransientError("down", retry_after=7)], TransientError),
    ],
)
def test_why_nothing_was_found(failures: list, expected: type) -> None:
    error = no_match_error(failures)
    assert type(error) is expected
    if expected is TransientError:
        assert error.retry_after == 7
