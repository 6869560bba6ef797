"""Lyrics in the delivered MP3s, through real bot and worker processes against a fake LRCLIB: found ones are
embedded, and a slow or failing lyrics service costs the lyrics only, never the track."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import E2E, id3_of, running_e2e
from tests.fakes.lrclib_server import FakeLrclib
from tests.fakes.spotify_server import FakeSpotify

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

SYNCED = "[00:01.00] Hello from the fake\n[00:02.00] Second line"


@pytest.fixture
def lyrics_e2e(tmp_path: Path, redis_proc, fake_spotify: FakeSpotify, fake_lrclib: FakeLrclib) -> Iterator[E2E]:  # type: ignore[no-untyped-def]
    url = f"redis://{redis_proc.host}:{redis_proc.port}/0"
    with running_e2e(tmp_path, url, fake_spotify, **fake_lrclib.env(), HTTP_TIMEOUT="2") as running:
        yield running


def uslt_texts(data: bytes) -> list[str]:
    return [frame.text for frame in id3_of(data).getall("USLT")]


def test_delivered_mp3s_carry_lyrics_even_when_the_service_is_slow_or_failing(
    lyrics_e2e: E2E, fake_lrclib: FakeLrclib
) -> None:
    e2e = lyrics_e2e
    album_id = e2e.spotify.add_album(
        "Songbook", "The Singers", [("Sung", 181_000), ("Slow", 182_000), ("Broken", 183_000), ("Plain", 184_000)]
    )
    fake_lrclib.add("Sung", "The Singers", "Songbook", 181, synced=SYNCED, plain="Hello from the fake")
    for title, duration in (("Slow", 182), ("Broken", 183)):
        fake_lrclib.add(title, "The Singers", "Songbook", duration, synced=SYNCED)
    fake_lrclib.add("Plain", "The Singers", "Other Album", 184, plain="Only words")  # found by /api/search
    fake_lrclib.fail("track_name=Slow", 200, delay=120)  # the right answer, far beyond HTTP_TIMEOUT
    fake_lrclib.fail("track_name=Broken", 500)
    e2e.system.start_worker(threads=2)
    e2e.system.start_bot()

    e2e.send(f"https://open.spotify.com/album/{album_id}")

    audios = e2e.wait_audios(4)
    assert [a.title for a in audios] == ["Sung", "Slow", "Broken", "Plain"]
    assert [uslt_texts(a.data) for a in audios] == [[SYNCED], [], [], ["Only words"]]
    assert all(str(id3_of(a.data)["TALB"]) == "Songbook" for a in audios), "the other tags are all there"
    assert "4 delivered" in e2e.wait_text("Done:")
    assert fake_lrclib.count("^/api/get$") == 4
    logs = e2e.system.all_logs()
    assert logs.count("no lyrics") == 2, "the slow and the failing lookup, logged once each"
    assert "Traceback" not in logs
