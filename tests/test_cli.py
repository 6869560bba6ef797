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
from tests.fakes.spotify_server import FakeSpotify
from tests.system import _SCRUBBED_PREFIXES, ROOT

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def audio() -> Iterator[AudioServer]:
    with AudioServer() as server:
        yield server


def run_cli(
    args: list[str], spotify: FakeSpotify, audio: AudioServer, cwd: Path, **env: str
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUBBED_PREFIXES)}
    full_env = {**base, "PYTHONPATH": str(ROOT), **spotify.env(), **audio.env(), "HTTP_TIMEOUT": "5", **env}
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
        (["not a link"], {}, "no Spotify link"),
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
