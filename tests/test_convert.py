from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import imageio_ffmpeg
import pytest
from mutagen.id3 import ID3
from mutagen.mp3 import MP3, BitrateMode

from pipeline.convert import ffmpeg_args, ffmpeg_executable, mp3_duration, quality_args, to_mp3
from pipeline.errors import Cancelled, ConfigurationError, PermanentError, TransientError
from pipeline.models import Track
from pipeline.settings import PipelineSettings, load_settings
from pipeline.tagging import write_tags
from tests.fakes.audio_server import cover_image, write_audio

FFMPEG = ffmpeg_executable()


# --- pure helpers ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("quality", "expected"),
    [("V0", ["-q:a", "0"]), ("V2", ["-q:a", "2"]), ("V9", ["-q:a", "9"]), ("192k", ["-b:a", "192k"])],
)
def test_quality_args(quality: str, expected: list[str]) -> None:
    assert quality_args(quality) == expected


@pytest.mark.parametrize("quality", ["V10", "v2", "2", "192", "192kbps", "", "-q:a"])
def test_quality_args_rejects_anything_else(quality: str) -> None:
    with pytest.raises(ValueError):
        quality_args(quality)


def test_ffmpeg_args() -> None:
    args = ffmpeg_args("/usr/bin/ffmpeg", Path("in dir/source.webm"), Path("out.mp3"), "V2")
    assert args[0] == "/usr/bin/ffmpeg"
    assert args[args.index("-i") + 1] == "in dir/source.webm"  # one argument, no shell quoting
    assert args[-1] == "out.mp3"
    pairs = {args[i]: args[i + 1] for i in range(len(args) - 1)}
    assert pairs["-codec:a"] == "libmp3lame"
    assert pairs["-q:a"] == "2"
    assert pairs["-map_metadata"] == "-1"
    assert pairs["-map"] == "0:a:0"  # the first audio stream only: no cover or video stream
    assert pairs["-f"] == "mp3"
    assert {"-vn", "-sn", "-dn", "-nostdin", "-y"} <= set(args)
    assert "-b:a" not in args


def test_ffmpeg_args_constant_bitrate() -> None:
    args = ffmpeg_args("ffmpeg", Path("a.m4a"), Path("b.mp3"), "192k")
    assert args[args.index("-b:a") + 1] == "192k"
    assert "-q:a" not in args


# --- finding the binary -------------------------------------------------------------------------
def test_ffmpeg_path_setting_wins() -> None:
    settings = load_settings(PipelineSettings, ffmpeg_path="/opt/ffmpeg/bin/ffmpeg")
    assert ffmpeg_executable(settings) == "/opt/ffmpeg/bin/ffmpeg"


def test_ffmpeg_on_path_before_the_bundled_binary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "ffmpeg"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert ffmpeg_executable(load_settings(PipelineSettings, ffmpeg_path=None)) == str(fake)


def test_bundled_binary_when_nothing_else(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert ffmpeg_executable(None) == imageio_ffmpeg.get_ffmpeg_exe()


# --- real conversions ---------------------------------------------------------------------------
@pytest.mark.parametrize("ext", ["m4a", "webm", "opus", "mp3"])
def test_converts_real_audio(tmp_path: Path, ext: str) -> None:
    src = write_audio(tmp_path / f"source.{ext}")
    dest = to_mp3(src, tmp_path / "out.mp3", "V2", timeout=60, ffmpeg=FFMPEG)
    assert dest == tmp_path / "out.mp3"
    assert MP3(dest).info.bitrate_mode == BitrateMode.VBR
    assert mp3_duration(dest) == pytest.approx(3.0, abs=0.15)


def test_constant_bitrate(tmp_path: Path) -> None:
    src = write_audio(tmp_path / "source.m4a")
    dest = to_mp3(src, tmp_path / "out.mp3", "128k", timeout=60, ffmpeg=FFMPEG)
    info = MP3(dest).info
    assert info.bitrate == pytest.approx(128000, rel=0.01)
    assert info.bitrate_mode == BitrateMode.CBR


def test_source_metadata_and_cover_are_dropped(tmp_path: Path) -> None:
    src = write_audio(tmp_path / "source.mp3")
    track = Track(spotify_id="0" * 22, title="Old Title", artists=["Old Artist"])
    write_tags(src, track, "https://example.invalid/x", cover_image("jpg"))  # a source with tags and a picture
    dest = to_mp3(src, tmp_path / "out.mp3", "V5", timeout=60, ffmpeg=FFMPEG)
    tags = ID3(dest)
    assert not tags.getall("APIC")
    assert not tags.getall("TIT2") and not tags.getall("TPE1") and not tags.getall("WXXX")


def test_overwrites_an_existing_destination(tmp_path: Path) -> None:
    dest = tmp_path / "out.mp3"
    dest.write_bytes(b"old")
    to_mp3(write_audio(tmp_path / "source.m4a"), dest, "V2", timeout=60, ffmpeg=FFMPEG)
    assert mp3_duration(dest) == pytest.approx(3.0, abs=0.15)


# --- failures -----------------------------------------------------------------------------------
def test_broken_input_gives_a_clear_error_with_ffmpeg_output_in_detail(tmp_path: Path) -> None:
    src = tmp_path / "source.m4a"
    src.write_bytes(b"this is not audio at all" * 100)
    with pytest.raises(PermanentError) as caught:
        to_mp3(src, tmp_path / "out.mp3", "V2", timeout=60, ffmpeg=FFMPEG)
    assert caught.value.reason == "could not convert the audio"
    assert caught.value.detail and "ffmpeg exit" in caught.value.detail
    assert "source.m4a" in caught.value.detail  # ffmpeg's own words, for the logs
    assert not (tmp_path / "out.mp3").exists()


def test_missing_executable_is_a_configuration_error(tmp_path: Path) -> None:
    src = write_audio(tmp_path / "source.m4a")
    with pytest.raises(ConfigurationError):
        to_mp3(src, tmp_path / "out.mp3", "V2", timeout=60, ffmpeg=str(tmp_path / "no-such-ffmpeg"))


@pytest.fixture
def never_ending_input(tmp_path: Path) -> Path:
    """A FIFO nobody writes to: FFmpeg blocks opening it, like a conversion that never finishes."""
    fifo = tmp_path / "stuck.m4a"
    os.mkfifo(fifo)
    return fifo


def _no_ffmpeg_left(executable: str) -> bool:
    name = Path(executable).name
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if name.encode() in cmdline and b"stuck.m4a" in cmdline:
            return False
    return True


def test_timeout_kills_ffmpeg(tmp_path: Path, never_ending_input: Path) -> None:
    with pytest.raises(TransientError) as caught:
        to_mp3(never_ending_input, tmp_path / "out.mp3", "V2", timeout=0.5, ffmpeg=FFMPEG)
    assert caught.value.reason == "audio conversion timed out"
    assert not (tmp_path / "out.mp3").exists()
    assert _no_ffmpeg_left(FFMPEG)


def test_cancel_kills_ffmpeg(tmp_path: Path, never_ending_input: Path) -> None:
    polls = []

    def cancel() -> bool:
        polls.append(1)
        return len(polls) >= 2

    with pytest.raises(Cancelled):
        to_mp3(never_ending_input, tmp_path / "out.mp3", "V2", timeout=60, cancel=cancel, ffmpeg=FFMPEG)
    assert _no_ffmpeg_left(FFMPEG)


def test_duration_of_something_that_is_not_mp3(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.mp3"
    bogus.write_bytes(b"\x00" * 10)
    with pytest.raises(PermanentError):
        mp3_duration(bogus)


def test_bundled_ffmpeg_is_available() -> None:
    assert shutil.which(FFMPEG) or Path(FFMPEG).is_file()
