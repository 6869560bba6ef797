from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from mutagen.id3 import ID3
from mutagen.mp3 import MP3
from PIL import Image

from pipeline.lyrics import Lyrics
from pipeline.models import Track
from pipeline.tagging import (
    SOURCE_URL_DESC,
    SPOTIFY_URL_DESC,
    build_tags,
    fetch_cover,
    lyrics_frame,
    write_tags,
)
from tests.fakes.audio_server import AudioServer, cover_image, write_audio

SOURCE = "https://music.youtube.com/watch?v=dQw4w9WgXcQ"
FULL = Track(
    spotify_id="4uLU6hMCjMI75M1A2tKUQC",
    title="Never Gonna Give You Up",
    artists=["Rick Astley", "Ünïcødé Guest"],
    album="Whenever You Need Somebody",
    duration_ms=213573,
    isrc="gbarl9300135",
    album_artists=["Rick Astley"],
    track_number=1,
    track_total=10,
    disc_number=1,
    disc_total=2,
    release_date="1987-11-12",
)
MINIMAL = Track(spotify_id="0000000000000000000000", title="Untitled", artists=[])


@pytest.fixture(scope="module")
def audio_server() -> Iterator[AudioServer]:
    with AudioServer(hang_seconds=10) as server:
        yield server


def by_id(frames: list) -> dict[str, list]:
    found: dict[str, list] = {}
    for frame in frames:
        found.setdefault(frame.FrameID, []).append(frame)
    return found


# --- build_tags (pure) ---------------------------------------------------------------------------
def test_build_tags_full_track() -> None:
    frames = by_id(build_tags(FULL, SOURCE))
    assert frames["TIT2"][0].text == ["Never Gonna Give You Up"]
    assert frames["TPE1"][0].text == ["Rick Astley", "Ünïcødé Guest"]
    assert frames["TPE2"][0].text == ["Rick Astley"]
    assert frames["TALB"][0].text == ["Whenever You Need Somebody"]
    assert frames["TRCK"][0].text == ["1/10"]
    assert frames["TPOS"][0].text == ["1/2"]
    assert str(frames["TDRC"][0].text[0]) == "1987-11-12"
    assert frames["TSRC"][0].text == ["GBARL9300135"]
    urls = {frame.desc: frame.url for frame in frames["WXXX"]}
    assert urls == {SPOTIFY_URL_DESC: FULL.spotify_url, SOURCE_URL_DESC: SOURCE}


def test_build_tags_leaves_out_what_is_unknown() -> None:
    frames = by_id(build_tags(MINIMAL, ""))
    assert set(frames) == {"TIT2", "WXXX"}
    assert [frame.desc for frame in frames["WXXX"]] == [SPOTIFY_URL_DESC]


@pytest.mark.parametrize(
    ("number", "total", "expected"),
    [(3, 12, "3/12"), (3, None, "3"), (None, 12, None), (0, 12, None)],
)
def test_track_position(number: int | None, total: int | None, expected: str | None) -> None:
    track = MINIMAL.model_copy(update={"track_number": number, "track_total": total})
    trck = by_id(build_tags(track, "")).get("TRCK")
    assert (trck[0].text[0] if trck else None) == expected


@pytest.mark.parametrize(
    ("release_date", "expected"),
    [
        ("1987", "1987"),
        ("1987-11", "1987-11"),
        ("1987-11-12", "1987-11-12"),
        ("0000", None),
        ("2023-02-29", None),  # the same rule as the parser's (pipeline.spotify_parse.release_date)
        ("soon", None),
        (None, None),
    ],
)
def test_release_date(release_date: str | None, expected: str | None) -> None:
    track = MINIMAL.model_copy(update={"release_date": release_date})
    tdrc = by_id(build_tags(track, "")).get("TDRC")
    assert (str(tdrc[0].text[0]) if tdrc else None) == expected


# --- write_tags (round trip through a real MP3) -------------------------------------------------
@pytest.fixture
def mp3(tmp_path: Path) -> Path:
    return write_audio(tmp_path / "song.mp3")


def test_round_trip_reads_every_frame_back_as_v23(mp3: Path) -> None:
    cover = cover_image("jpg")
    write_tags(mp3, FULL, SOURCE, cover)

    raw = ID3(mp3, translate=False)  # as stored on disk, without mutagen's upgrade to v2.4
    assert raw.version == (2, 3, 0)
    assert "TDRC" not in raw
    assert raw["TYER"].text == ["1987"]
    assert raw["TDAT"].text == ["1211"]  # DDMM
    assert raw["TPE1"].text == ["Rick Astley/Ünïcødé Guest"]  # v2.3 has one string; "/" joins
    assert raw["TIT2"].text == ["Never Gonna Give You Up"]
    assert raw["TPE2"].text == ["Rick Astley"]
    assert raw["TALB"].text == ["Whenever You Need Somebody"]
    assert raw["TRCK"].text == ["1/10"]
    assert raw["TPOS"].text == ["1/2"]
    assert raw["TSRC"].text == ["GBARL9300135"]
    assert {frame.desc: frame.url for frame in raw.getall("WXXX")} == {
        SPOTIFY_URL_DESC: FULL.spotify_url,
        SOURCE_URL_DESC: SOURCE,
    }
    (apic,) = raw.getall("APIC")
    assert (apic.mime, apic.type, apic.data) == ("image/jpeg", 3, cover)
    assert all(frame.encoding in (0, 1) for frame in raw.values() if hasattr(frame, "encoding"))  # no UTF-8 in v2.3

    upgraded = ID3(mp3)  # what a v2.4-minded reader sees
    assert str(upgraded["TDRC"].text[0]) == "1987-11-12"
    assert MP3(mp3).info.length == pytest.approx(3.0, abs=0.2)  # the audio is untouched


def test_writing_again_replaces_the_old_tag(mp3: Path) -> None:
    write_tags(mp3, FULL, SOURCE, cover_image("jpg"))
    write_tags(mp3, MINIMAL, "", None)
    raw = ID3(mp3, translate=False)
    assert sorted(raw.keys()) == ["TIT2", "WXXX:Spotify"]
    assert raw["TIT2"].text == ["Untitled"]


def test_year_only_gives_tyer_without_tdat(mp3: Path) -> None:
    write_tags(mp3, MINIMAL.model_copy(update={"release_date": "2001"}), "", None)
    raw = ID3(mp3, translate=False)
    assert raw["TYER"].text == ["2001"]
    assert "TDAT" not in raw and "TDRC" not in raw


# --- lyrics --------------------------------------------------------------------------------------
SYNCED_LYRICS = Lyrics("[00:01.00] Ünïcødé first line\n[00:02.50] Second line", synced=True)


def test_lyrics_frame_is_unsynchronised_lyrics() -> None:
    frame = lyrics_frame(SYNCED_LYRICS)
    assert (frame.FrameID, frame.lang, frame.desc, frame.text) == ("USLT", "XXX", "", SYNCED_LYRICS.text)


@pytest.mark.parametrize("lyrics", [SYNCED_LYRICS, Lyrics("Plain first line\nSecond line", synced=False)])
def test_lyrics_round_trip_as_uslt(mp3: Path, lyrics: Lyrics) -> None:
    write_tags(mp3, FULL, SOURCE, cover_image("jpg"), lyrics)
    raw = ID3(mp3, translate=False)
    assert raw.version == (2, 3, 0)
    (uslt,) = raw.getall("USLT")
    assert uslt.text == lyrics.text
    assert uslt.encoding in (0, 1)  # v2.3 has no UTF-8: mutagen stores UTF-16
    assert raw["TIT2"].text == ["Never Gonna Give You Up"], "the other frames are unchanged"


def test_no_lyrics_no_frame(mp3: Path) -> None:
    write_tags(mp3, FULL, SOURCE, None, SYNCED_LYRICS)
    write_tags(mp3, FULL, SOURCE, None, None)
    assert ID3(mp3).getall("USLT") == []


# --- covers --------------------------------------------------------------------------------------
def test_fetch_cover_returns_a_jpeg_as_is(audio_server: AudioServer) -> None:
    assert fetch_cover(audio_server.cover_url(ext="jpg"), timeout=5) == cover_image("jpg")


def test_fetch_cover_converts_other_formats_to_jpeg(audio_server: AudioServer) -> None:
    data = fetch_cover(audio_server.cover_url(ext="png"), timeout=5)
    assert data is not None
    with Image.open(io.BytesIO(data)) as image:
        assert (image.format, image.mode, image.size) == ("JPEG", "RGB", (640, 640))


@pytest.mark.parametrize("fault", ["404", "500", "hang", "truncated"])
def test_fetch_cover_failures_give_none(audio_server: AudioServer, fault: str) -> None:
    assert fetch_cover(audio_server.cover_url(fault=fault), timeout=0.5) is None


def test_fetch_cover_of_something_that_is_not_an_image(audio_server: AudioServer) -> None:
    assert fetch_cover(audio_server.audio_url(ext="mp3"), timeout=5) is None
    assert fetch_cover(None, timeout=5) is None
    assert fetch_cover("http://127.0.0.1:9/nothing-listens-here.jpg", timeout=1) is None
