"""`python -m pipeline URL -o DIR` as a user runs it: a real process against the fakes."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from mutagen.id3 import ID3

from tests.fakes.audio_server import AudioServer
from tests.fakes.lrclib_server import FakeLrclib
from tests.fakes.spotify_server import FakeSpotify
from tests.fakes.ytmusic_server import FakeYouTubeMusic
from tests.system import _SCRUBBED_PREFIXES, ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]  # the real `python -m pipeline` process


@pytest.fixture(scope="module")
def audio() -> Iterator[AudioServer]:
    with AudioServer() as server:
        yield server


def run_cli(
    args: list[str], spotify: FakeSpotify, audio: AudioServer, cwd: Path, **env: str
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUBBED_PREFIXES)}
    full_env = {**base, "PYTHONPATH": str(ROOT), **spotify.env(), **audio.env(), "HTTP_TIMEOUT": "5", "LYRICS": "off"}
    full_env.update(env)  # tests of lyrics pass a FakeLrclib's env()
    return subprocess.run(
        [sys.executable, "-m", "pipeline", *args],
        env=full_env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=170,
        check=False,
    )


def test_album_link_becomes_tagged_mp3s(fake_spotify: FakeSpotify, audio: AudioServer, tmp_path: Path) -> None:
    album_id = fake_spotify.add_album(
        "Tiny Album",
        "The Testers",
        [("Opening", 181_000), ("Middle Part", 200_000), ("Coda", 150_000)],
        release_date="2019-05-17",
    )
    out = tmp_path / "music"

    result = run_cli([f"https://open.spotify.com/album/{album_id}?si=x", "-o", str(out)], fake_spotify, audio, tmp_path)

    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    files = sorted(p.name for p in out.iterdir())
    assert files == ["The Testers - Coda.mp3", "The Testers - Middle Part.mp3", "The Testers - Opening.mp3"]
    tags = ID3(out / "The Testers - Middle Part.mp3", translate=False)  # raw v2.3 frames, as players read them
    assert tags.version[:2] == (2, 3)
    assert str(tags["TIT2"]) == "Middle Part"
    assert str(tags["TPE1"]) == "The Testers"
    assert str(tags["TPE2"]) == "The Testers"
    assert str(tags["TALB"]) == "Tiny Album"
    assert str(tags["TRCK"]) == "2/3"
    assert str(tags["TPOS"]) == "1/1"
    assert str(tags["TYER"]) == "2019"
    assert str(tags["TSRC"]).startswith("QZFAK")
    assert tags.getall("APIC")[0].mime == "image/jpeg"
    urls = {frame.desc: frame.url for frame in tags.getall("WXXX")}
    assert urls["Spotify"].startswith("https://open.spotify.com/track/")
    assert urls["Source"].startswith(audio.base_url)
    assert "3 track(s) saved" in result.stderr


def test_a_failed_track_gives_exit_1_and_a_reason(
    fake_spotify: FakeSpotify, audio: AudioServer, tmp_path: Path
) -> None:
    album_id = fake_spotify.add_album("Mixed", "Band", ["Fine Song", "Lost Song [fake: wrong]"])

    result = run_cli([f"spotify:album:{album_id}", "-o", str(tmp_path)], fake_spotify, audio, tmp_path)

    assert result.returncode == 1
    assert "no confident match" in result.stderr
    assert "Lost Song" in result.stderr
    assert (tmp_path / "Band - Fine Song.mp3").is_file()
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "env", "fragment"),
    [
        (["https://open.spotify.com/artist/0OdUWJ0sBjDrqHygGUXeCF"], {}, "artist"),
        (["not a link"], {}, "not a link: nothing found for these words"),
        (["\u200b \u202e"], {}, "no words to search for"),
        (["spotify:track:4uLU6hMCjMI75M1A2tKUQC"], {"MP3_QUALITY": "999"}, "MP3_QUALITY"),
        (["spotify:track:4uLU6hMCjMI75M1A2tKUQC"], {"AUDIO_SOURCES": "nope"}, "AUDIO_SOURCES"),
    ],
)
def test_bad_input_or_settings_give_exit_2_and_one_line(
    fake_spotify: FakeSpotify, audio: AudioServer, tmp_path: Path, args: list[str], env: dict[str, str], fragment: str
) -> None:
    result = run_cli([*args, "-o", str(tmp_path)], fake_spotify, audio, tmp_path, **env)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and fragment in lines[0], result.stderr


def test_an_absent_cookies_file_is_a_note_and_the_tracks_still_come(
    fake_spotify: FakeSpotify, audio: AudioServer, tmp_path: Path
) -> None:
    track_id = fake_spotify.add_track("Crumbs", "Cookie Monster")
    missing = tmp_path / "config" / "cookies.txt"
    result = run_cli(
        [f"spotify:track:{track_id}", "-o", str(tmp_path)],
        fake_spotify,
        audio,
        tmp_path,
        YTDLP_COOKIES_FILE=str(missing),
    )
    assert result.returncode == 0, result.stderr
    assert f"YTDLP_COOKIES_FILE {missing} does not exist" in " ".join(result.stderr.split())
    assert (tmp_path / "Cookie Monster - Crumbs.mp3").is_file()


def test_a_repeated_track_is_fetched_once_and_namesakes_get_their_own_files(
    fake_spotify: FakeSpotify, audio: AudioServer, tmp_path: Path
) -> None:
    # Two different recordings called "Band - Song" (e.g. album and live versions), the first listed twice.
    album_id = fake_spotify.add_album("Songs", "Band", ["Song", "Song", "Other"])
    first, second, other = fake_spotify.album_track_ids(album_id)
    playlist_id = fake_spotify.add_playlist("Mix", track_ids=[first, second, first, other], owned=True)

    result = run_cli([f"spotify:playlist:{playlist_id}", "-o", str(tmp_path / "out")], fake_spotify, audio, tmp_path)

    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "Band - Other.mp3",
        "Band - Song (2).mp3",
        "Band - Song.mp3",
    ]
    # The first listed keeps the plain name, whichever download finishes first.
    assert str(ID3(tmp_path / "out" / "Band - Song.mp3")["TRCK"]) == "1/3"
    assert str(ID3(tmp_path / "out" / "Band - Song (2).mp3")["TRCK"]) == "2/3"
    assert "3 track(s) saved" in result.stderr
    assert "Band – Song: listed 2 times; fetched once, as Band - Song.mp3" in result.stderr


def test_user_text_is_printed_as_written(fake_spotify: FakeSpotify, audio: AudioServer, tmp_path: Path) -> None:
    # "[/]" used to crash rich's live display (markup); ":fire:" is no emoji code and U+202E reorders a terminal line.
    album_id = fake_spotify.add_album(
        "Odd [b]Titles[/b]", "Band", ["Hit [/] Song :fire:", "Miss [bold] Song [fake: wrong]", "Evil\u202egpj.exe"]
    )

    result = run_cli([f"spotify:album:{album_id}", "-o", str(tmp_path)], fake_spotify, audio, tmp_path, COLUMNS="200")

    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.glob("*.mp3")) == ["Band - Evilgpj.exe.mp3", "Band - Hit [-] Song fire.mp3"]
    assert "Band - Hit [-] Song fire.mp3" in result.stderr
    assert "Band – Miss [bold] Song [fake: wrong]: no confident match" in result.stderr  # the progress line
    assert "│ Band – Miss [bold] Song [fake: wrong] │ no confident match on YouTube │" in result.stderr  # the summary
    assert "\u202e" not in result.stderr


def test_a_link_that_leads_nowhere_is_one_line(fake_spotify: FakeSpotify, audio: AudioServer, tmp_path: Path) -> None:
    missing = fake_spotify.new_id()

    result = run_cli([f"https://open.spotify.com/album/{missing}", "-o", str(tmp_path)], fake_spotify, audio, tmp_path)

    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [f"error: https://open.spotify.com/album/{missing}: not found on Spotify"], result.stderr


def test_a_dead_link_beside_good_ones_is_one_line_of_the_summary(
    fake_spotify: FakeSpotify, audio: AudioServer, tmp_path: Path
) -> None:
    track_id = fake_spotify.add_track("Fine", "Band")
    missing = fake_spotify.new_id()

    result = run_cli(
        [f"spotify:track:{track_id}", f"spotify:album:{missing}", "-o", str(tmp_path)], fake_spotify, audio, tmp_path
    )

    assert result.returncode == 1
    assert (tmp_path / "Band - Fine.mp3").is_file()
    assert f"error: https://open.spotify.com/album/{missing}: not found on Spotify\n" in result.stderr
    assert "failure(s)" not in result.stderr  # no table: no track failed


def test_lyrics_are_embedded_and_lrc_files_written_beside(
    fake_spotify: FakeSpotify, fake_lrclib: FakeLrclib, audio: AudioServer, tmp_path: Path
) -> None:
    album_id = fake_spotify.add_album("Words", "Singer", [("Sung", 181_000), ("Spoken", 200_000), ("Hummed", 150_000)])
    fake_lrclib.add("Sung", "Singer", "Words", 181, synced="[00:01.00] la la", plain="la la")
    fake_lrclib.add("Spoken", "Singer", "Words", 200, plain="just words")  # no synced lyrics: no .lrc
    out = tmp_path / "out"

    result = run_cli(
        [f"spotify:album:{album_id}", "-o", str(out), "--lrc"], fake_spotify, audio, tmp_path, **fake_lrclib.env()
    )

    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == [
        "Singer - Hummed.mp3",
        "Singer - Spoken.mp3",
        "Singer - Sung.lrc",
        "Singer - Sung.mp3",
    ]
    assert (out / "Singer - Sung.lrc").read_text(encoding="utf-8") == "[00:01.00] la la\n"
    assert [f.text for f in ID3(out / "Singer - Sung.mp3").getall("USLT")] == ["[00:01.00] la la"]
    assert [f.text for f in ID3(out / "Singer - Spoken.mp3").getall("USLT")] == ["just words"]
    assert ID3(out / "Singer - Hummed.mp3").getall("USLT") == []
    assert "1 lyrics file(s) (.lrc) written" in result.stderr
    assert all(r.headers.get("User-Agent", "").startswith("spotbot/") for r in fake_lrclib.requests)


def test_lrc_of_a_namesake_follows_its_mp3(
    fake_spotify: FakeSpotify, fake_lrclib: FakeLrclib, audio: AudioServer, tmp_path: Path
) -> None:
    first = fake_spotify.add_track("Song", "Band", duration_ms=181_000)
    second = fake_spotify.add_track("Song", "Band", duration_ms=240_000, album="Later")
    fake_lrclib.add("Song", "Band", "Song", 181, synced="[00:01.00] first")
    fake_lrclib.add("Song", "Band", "Later", 240, synced="[00:01.00] second")

    result = run_cli(
        [f"spotify:track:{first}", f"spotify:track:{second}", "-o", str(tmp_path / "out"), "--lrc"],
        fake_spotify,
        audio,
        tmp_path,
        **fake_lrclib.env(),
    )

    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "Band - Song.lrc").read_text(encoding="utf-8") == "[00:01.00] first\n"
    assert (tmp_path / "out" / "Band - Song (2).lrc").read_text(encoding="utf-8") == "[00:01.00] second\n"


def test_lyrics_off_asks_nothing_and_writes_no_lrc(
    fake_spotify: FakeSpotify, fake_lrclib: FakeLrclib, audio: AudioServer, tmp_path: Path
) -> None:
    track_id = fake_spotify.add_track("Sung", "Singer", duration_ms=181_000)
    fake_lrclib.add("Sung", "Singer", "Sung", 181, synced="[00:01.00] la la")

    result = run_cli(
        [f"spotify:track:{track_id}", "-o", str(tmp_path), "--lrc"],
        fake_spotify,
        audio,
        tmp_path,
        **{**fake_lrclib.env(), "LYRICS": "off"},
    )

    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in tmp_path.glob("Singer*")) == ["Singer - Sung.mp3"]
    assert ID3(tmp_path / "Singer - Sung.mp3").getall("USLT") == []
    assert fake_lrclib.requests == []
    assert "--lrc writes nothing while LYRICS=off" in result.stderr


def test_words_fetch_the_first_match(fake_spotify: FakeSpotify, audio: AudioServer, tmp_path: Path) -> None:
    track_id = fake_spotify.add_track("Midnight Drive", "Luna Park", album="Night Songs")
    fake_spotify.add_track("Midnight Drive (Live)", "Luna Park")
    link = fake_spotify.add_track("Evergreen", "Pine Trees")

    result = run_cli(
        ["Luna Park - Midnight Drive", f"spotify:track:{link}", "-o", str(tmp_path)], fake_spotify, audio, tmp_path
    )

    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in tmp_path.glob("*.mp3")) == [
        "Luna Park - Midnight Drive.mp3",
        "Pine Trees - Evergreen.mp3",
    ]
    tags = ID3(tmp_path / "Luna Park - Midnight Drive.mp3")
    assert str(tags["TALB"]) == "Night Songs"
    assert {f.desc: f.url for f in tags.getall("WXXX")}["Spotify"] == f"https://open.spotify.com/track/{track_id}"
    [search] = [r for r in fake_spotify.request_log if r.path == "/v1/search"]
    assert search.query["q"] == "Luna Park - Midnight Drive" and search.query["limit"] == "1"


def test_words_without_credentials_search_youtube_music(
    fake_spotify: FakeSpotify, audio: AudioServer, tmp_path: Path
) -> None:
    with FakeYouTubeMusic() as ytmusic:
        env = {**fake_spotify.env(credentials=False), **ytmusic.env()}
        result = run_cli(
            ["Metallica For Whom The Bell Tolls Remastered", "-o", str(tmp_path)], fake_spotify, audio, tmp_path, **env
        )

    assert result.returncode == 0, result.stderr
    [mp3] = tmp_path.glob("*.mp3")
    assert mp3.name == "Metallica - For Whom The Bell Tolls.mp3"
    tags = ID3(mp3)
    assert str(tags["TALB"]) == "Ride The Lightning"
    assert "Spotify" not in {f.desc for f in tags.getall("WXXX")}
    assert fake_spotify.requests == []
