"""Faults at the system level: real bot and worker processes while workers, the bot or Redis die, Telegram
floods or goes away, Spotify rate-limits and audio sources misbehave.

Each test starts one system and hits it with one kind of fault in the middle of a playlist; every test
checks the user-visible promise: each track arrives exactly once, in playlist order, and the request ends
with its summary. Audio is a 1 s tone to keep the file quick; recovery times are printed (`pytest -s`).
"""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import E2E, OTHER_USER, USER, running_e2e
from tests.fakes.audio_server import AudioServer
from tests.fakes.spotify_server import FakeSpotify
from tests.system import RedisServer

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

PROGRESS_INTERVAL = 1.0
EDIT_TOLERANCE = 0.25  # seconds: the pacer decides before the call, the fake stamps on arrival
DELIVERED = re.compile(r"✅ (\d+) delivered")


@pytest.fixture
def faults(tmp_path: Path, redis_proc, fake_spotify: FakeSpotify) -> Iterator[E2E]:  # type: ignore[no-untyped-def]
    audio = AudioServer(seconds=1.0, hang_seconds=60.0, slow_seconds=2.0)
    url = f"redis://{redis_proc.host}:{redis_proc.port}/0"
    with running_e2e(tmp_path, url, fake_spotify, audio=audio, PROGRESS_INTERVAL=str(PROGRESS_INTERVAL)) as running:
        yield running


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server like docker-compose's (AOF on) that the test may restart: not the shared pytest-redis one."""
    with RedisServer(tmp_path / "redis") as server:
        yield server


@pytest.fixture
def faults_own_redis(tmp_path: Path, own_redis: RedisServer, fake_spotify: FakeSpotify) -> Iterator[E2E]:
    audio = AudioServer(seconds=1.0)
    with running_e2e(
        tmp_path, own_redis.url, fake_spotify, audio=audio, PROGRESS_INTERVAL=str(PROGRESS_INTERVAL)
    ) as running:
        yield running


# --- helpers ------------------------------------------------------------------------------------------


def make_playlist(e2e: E2E, name: str, count: int, *, owned: bool = True) -> tuple[str, list[str]]:
    """A playlist of `count` new tracks; returns its link and the titles in order."""
    titles = [f"{name} Song {n:02d}" for n in range(1, count + 1)]
    ids = [e2e.spotify.add_track(title, f"{name} Band") for title in titles]
    playlist_id = e2e.spotify.add_playlist(name, "Curator", ids, owned=owned)
    return f"https://open.spotify.com/playlist/{playlist_id}", titles


def titles_of(e2e: E2E, chat: int = USER) -> list[str | None]:
    return [audio.title for audio in e2e.telegram.audios(chat)]


def assert_exactly_once_in_order(e2e: E2E, titles: list[str], chat: int = USER) -> None:
    got = titles_of(e2e, chat)
    assert got == titles, f"expected each track once, in order\n{e2e.telegram.describe(chat)}"
    assert e2e.telegram.duplicate_audios(chat) == []


def wait_finished(e2e: E2E, chat: int = USER, timeout: float = 120) -> str:
    return e2e.wait_text("Done:", chat=chat, timeout=timeout)


def progress_message(e2e: E2E, chat: int = USER, fragment: str = "Playlist ·"):  # type: ignore[no-untyped-def]
    return e2e.telegram.wait_for(
        lambda: next((m for m in e2e.telegram.sent_messages(chat) if m.text and fragment in m.text), None),
        timeout=60,
        message=f"the progress message ({fragment!r})",
        chat_id=chat,
    )


def delivered_counts(e2e: E2E, chat: int, message_id: int) -> list[int]:
    """The "✅ n delivered" figure of each edit of the progress message, in order."""
    return [int(m.group(1)) for edit in e2e.telegram.edits(chat, message_id) if (m := DELIVERED.search(edit.text or ""))]


def wait_audio_count(e2e: E2E, count: int, chat: int = USER, timeout: float = 120) -> float:
    """Wait for the `count`-th audio; returns when it was seen (monotonic)."""
    e2e.wait_audios(count, chat=chat, timeout=timeout)
    return time.monotonic()


def worker_holds_work(e2e: E2E, workers: int) -> bool:
    """True when `workers` Dramatiq processes each hold (run or prefetched) at least one track message."""
    holders = [key for key in e2e.redis.scan_iter("dramatiq:__acks__.*.tracks") if e2e.redis.scard(key)]
    return len(holders) >= workers


# --- 1. a worker process is killed ---------------------------------------------------------------------


def test_killed_worker_process_loses_nothing(faults: E2E) -> None:
    """SIGKILL of one of two dramatiq worker processes mid-playlist.

    Dramatiq's parent then stops its other child and exits, so the worker runs under a restart policy as
    in docker-compose.yml; the killed process's messages come back after the broker's heartbeat timeout.
    """
    e2e = faults
    link, titles = make_playlist(e2e, "Crash", 12)
    worker = e2e.system.start_worker(processes=2, threads=1, restart=True, TRACK_WINDOW="4")
    e2e.system.start_bot(TRACK_WINDOW="4")
    e2e.send(link)
    e2e.wait_audios(3)
    e2e.telegram.wait_for(lambda: worker_holds_work(e2e, 2), timeout=60, message="both workers busy")

    before = len(e2e.telegram.audios(USER))
    killed_at = time.monotonic()
    worker.kill_child()
    worker.wait_restarted()
    next_at = wait_audio_count(e2e, before + 1)
    e2e.wait_audios(len(titles), timeout=180)
    done_at = time.monotonic()

    wait_finished(e2e)
    assert_exactly_once_in_order(e2e, titles)
    assert "12 delivered" in e2e.telegram.texts(USER)[-1]
    print(
        f"\n[worker SIGKILL] {before} delivered before the kill; next track {next_at - killed_at:.1f} s "
        f"after the kill, all {len(titles)} {done_at - killed_at:.1f} s after it (worker exit codes {worker.exit_codes})"
    )
