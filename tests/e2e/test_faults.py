"""Faults at the system level: real bot and worker processes while workers, the bot or Redis die, Telegram
floods or goes away, Spotify rate-limits and audio sources misbehave.

Each test starts one system and hits it with one kind of fault in the middle of a playlist; every test
checks the user-visible promise: each track arrives exactly once, in playlist order, and the request ends
with its summary. Audio is a 1 s tone to keep the file quick; recovery times are printed (`pytest -s`).
"""

from __future__ import annotations

import itertools
import json
import re
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.conftest import E2E, OTHER_USER, USER, running_e2e
from tests.fakes.audio_server import AudioServer
from tests.fakes.spotify_server import FakeSpotify
from tests.fakes.telegram_server import ChatMessage
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


@dataclass
class Playlist:
    link: str
    titles: list[str]
    ids: list[str]


def make_playlist(e2e: E2E, name: str, count: int, *, owned: bool = True) -> Playlist:
    """A playlist of `count` new tracks. `owned=False`: the API refuses its items, so the bot reads the embed
    page and completes each track with GET /v1/tracks/{id} right before fetching it."""
    titles = [f"{name} Song {n:02d}" for n in range(1, count + 1)]
    ids = [e2e.spotify.add_track(title, f"{name} Band") for title in titles]
    playlist_id = e2e.spotify.add_playlist(name, "Curator", ids, owned=owned)
    return Playlist(f"https://open.spotify.com/playlist/{playlist_id}", titles, ids)


def titles_of(e2e: E2E, chat: int = USER) -> list[str | None]:
    return [audio.title for audio in e2e.telegram.audios(chat)]


def assert_exactly_once_in_order(e2e: E2E, titles: list[str], chat: int = USER) -> None:
    got = titles_of(e2e, chat)
    assert got == titles, f"expected each track once, in order\n{e2e.telegram.describe(chat)}"
    assert e2e.telegram.duplicate_audios(chat) == []


def wait_finished(e2e: E2E, chat: int = USER, timeout: float = 120) -> str:
    return e2e.wait_text("Done:", chat=chat, timeout=timeout)


def progress_message(e2e: E2E, chat: int = USER, fragment: str = "Playlist ·") -> ChatMessage:
    return e2e.telegram.wait_for(
        lambda: next((m for m in e2e.telegram.sent_messages(chat) if m.text and fragment in m.text), None),
        timeout=60,
        message=f"the progress message ({fragment!r})",
        chat_id=chat,
    )


def delivered_counts(e2e: E2E, chat: int, message_id: int) -> list[int]:
    """The "✅ n delivered" figure of each edit of the progress message, in order."""
    return [
        int(m.group(1)) for edit in e2e.telegram.edits(chat, message_id) if (m := DELIVERED.search(edit.text or ""))
    ]


def wait_audio_count(e2e: E2E, count: int, chat: int = USER, timeout: float = 120) -> float:
    """Wait for the `count`-th audio; returns when it was seen (monotonic)."""
    e2e.wait_audios(count, chat=chat, timeout=timeout)
    return time.monotonic()


def track_status(e2e: E2E, index: int) -> str | None:
    """The status of track `index` of the (only) active request, straight from Redis."""
    for rid in e2e.redis.zrange("spotbot:active", 0, -1):
        raw = e2e.redis.hget(f"spotbot:req:{rid}:states", str(index))
        if raw:
            return json.loads(raw)["status"]
    return None


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
    playlist = make_playlist(e2e, "Crash", 12)
    e2e.audio.set_plan("Crash Song", ["slow"])  # ~2 s per download: the workers are busy when one is killed
    worker = e2e.system.start_worker(processes=2, threads=1, restart=True, TRACK_WINDOW="4")
    e2e.system.start_bot(TRACK_WINDOW="4")
    e2e.send(playlist.link)
    e2e.wait_audios(3)
    e2e.telegram.wait_for(lambda: worker_holds_work(e2e, 2), timeout=60, message="both workers busy")

    before = len(e2e.telegram.audios(USER))
    killed_at = time.monotonic()
    worker.kill_child()
    worker.wait_restarted()
    next_at = wait_audio_count(e2e, before + 1)
    e2e.wait_audios(len(playlist.titles), timeout=180)
    done_at = time.monotonic()

    wait_finished(e2e)
    assert_exactly_once_in_order(e2e, playlist.titles)
    assert "12 delivered" in e2e.telegram.texts(USER)[-1]
    print(
        f"\n[worker SIGKILL] {before} delivered before the kill; next track {next_at - killed_at:.1f} s after "
        f"the kill, all {len(playlist.titles)} {done_at - killed_at:.1f} s after it (exit codes {worker.exit_codes})"
    )


# --- 2. the bot process is restarted -------------------------------------------------------------------


def test_bot_restart_resumes_the_playlist(faults: E2E) -> None:
    """The bot is stopped (SIGTERM, as on a redeploy) and later killed (SIGKILL) mid-playlist, and started again.

    SIGTERM comes at any moment: the bot finishes the call in flight and records it. SIGKILL comes while the
    bot waits for the next track (downloads are slow here): a kill in the few milliseconds between
    Telegram accepting a file and the bot recording it would resend that file, and no API can tell.
    """
    e2e = faults
    playlist = make_playlist(e2e, "Restart", 9)
    e2e.audio.set_plan("Restart Song", ["slow"])  # ~2 s per download: the bot is idle between tracks
    e2e.system.start_worker(threads=1)
    bot = e2e.system.start_bot()
    e2e.send(playlist.link)
    progress = progress_message(e2e)
    e2e.wait_audios(2)

    bot.stop()  # SIGTERM
    assert bot.popen is not None and bot.popen.returncode == 0, bot.log()[-3000:]
    edits_before = len(e2e.telegram.edits(USER, progress.message_id))
    bot.start()
    e2e.wait_audios(5)
    assert len(e2e.telegram.edits(USER, progress.message_id)) > edits_before, "progress not updated after restart"

    time.sleep(0.3)  # let the bot record the delivery it just made
    bot.signal(signal.SIGKILL)
    bot.popen.wait(10)
    bot.start()

    e2e.wait_audios(len(playlist.titles))
    wait_finished(e2e)
    assert_exactly_once_in_order(e2e, playlist.titles)
    final = e2e.telegram.message(USER, progress.message_id)
    assert final.text and "Done: ✅ 9 delivered" in final.text, "the same progress message carries the summary"
    assert [t for t in e2e.telegram.texts(USER) if "Playlist ·" in t] == [final.text], "one progress message only"
    counts = delivered_counts(e2e, USER, progress.message_id)
    assert counts == sorted(counts), f"the progress went backwards: {counts}"


# --- 3. Redis is restarted ------------------------------------------------------------------------------


def test_redis_restart_loses_nothing(faults_own_redis: E2E, own_redis: RedisServer) -> None:
    """Redis (append-only file on, as in docker-compose.yml) is restarted mid-playlist and stays down a few
    seconds: the bot and the workers reconnect by themselves, without a restart of their own. One track is
    waiting out a retry delay meanwhile (its message is held by a worker until the delay ends)."""
    e2e = faults_own_redis
    playlist = make_playlist(e2e, "Outage", 10)
    e2e.audio.set_plan("Outage Song 05", ["500"])  # fails once: Dramatiq retries it after a backoff
    worker = e2e.system.start_worker(processes=2, threads=1)
    bot = e2e.system.start_bot()
    e2e.send(playlist.link)
    e2e.telegram.wait_for(lambda: track_status(e2e, 4) == "retrying", timeout=60, message="track 5 retrying")
    e2e.audio.set_plan("Outage Song 05", ["ok"])

    down_at = time.monotonic()
    own_redis.restart(down_for=4)
    before = len(e2e.telegram.audios(USER))
    next_at = wait_audio_count(e2e, before + 1)
    e2e.wait_audios(len(playlist.titles), timeout=120)
    done_at = time.monotonic()

    wait_finished(e2e)
    assert_exactly_once_in_order(e2e, playlist.titles)
    assert worker.alive and bot.alive, "they reconnect by themselves"
    print(
        f"\n[redis restart, 4 s down] {before} delivered before; next track {next_at - down_at:.1f} s after Redis "
        f"went down, all {len(playlist.titles)} {done_at - down_at:.1f} s after it"
    )


# --- 4. Telegram floods ---------------------------------------------------------------------------------


def test_telegram_flood_keeps_order_and_paces_edits(faults: E2E) -> None:
    """Telegram answers 30 % of sendAudio and editMessageText calls with 429 and retry_after=1."""
    e2e = faults
    playlist = make_playlist(e2e, "Flood", 10)
    e2e.telegram.flood(("sendAudio", "editMessageText"), ratio=0.3, retry_after=1, seed=7)
    for method in ("sendAudio", "editMessageText"):  # at least one of each, whatever the random draws
        e2e.telegram.fail(method, 429, retry_after=1, times=1)
    e2e.system.start_worker(threads=3)
    e2e.system.start_bot()
    e2e.send(playlist.link)
    progress = progress_message(e2e)

    e2e.wait_audios(len(playlist.titles))
    wait_finished(e2e)

    assert_exactly_once_in_order(e2e, playlist.titles)
    flooded = [c for c in e2e.telegram.calls if c.status == 429]
    assert {c.method for c in flooded} == {"sendAudio", "editMessageText"}
    stamps = [edit.timestamp for edit in e2e.telegram.edits(USER, progress.message_id)]
    gaps = [round(b - a, 2) for a, b in itertools.pairwise(stamps)]
    assert gaps and min(gaps) >= PROGRESS_INTERVAL - EDIT_TOLERANCE, f"a burst of edits: gaps {gaps}"
    print(f"\n[flood] {len(flooded)} calls answered 429; gaps between progress edits: {gaps}")


# --- 5. Telegram is unreachable -------------------------------------------------------------------------


def test_telegram_outage_retries_sends(faults: E2E) -> None:
    """Telegram refuses connections for 9 s mid-playlist. (The issue says 30 s; the behaviour is the same,
    since the bot's back-off between attempts is capped at 60 s whatever the outage: 9 s keeps the test short.)

    The outage starts just after a delivery, not during one: a connection cut after Telegram accepted a file
    but before its answer arrived would make the bot send that file again, and no API can tell.
    """
    e2e = faults
    playlist = make_playlist(e2e, "Offline", 8)
    e2e.system.start_worker(threads=2)
    bot = e2e.system.start_bot()
    e2e.send(playlist.link)
    e2e.wait_audios(3)
    time.sleep(0.1)  # the answer to that sendAudio is on its way back

    down_at = time.monotonic()
    e2e.telegram.unreachable(9)
    before = len(e2e.telegram.audios(USER))
    e2e.telegram.wait_for(lambda: e2e.telegram.running, timeout=30)
    next_at = wait_audio_count(e2e, before + 1)
    e2e.wait_audios(len(playlist.titles), timeout=120)
    done_at = time.monotonic()

    wait_finished(e2e)
    assert_exactly_once_in_order(e2e, playlist.titles)
    assert bot.alive
    print(
        f"\n[telegram unreachable 9 s] next track {next_at - down_at:.1f} s after the outage began, "
        f"all {len(playlist.titles)} {done_at - down_at:.1f} s after it"
    )


# --- 6. Spotify asks to wait ----------------------------------------------------------------------------


def spotify_track_path(track_id: str) -> str:
    return rf"^/v1/tracks/{track_id}\b"


def test_spotify_retry_after_beyond_the_limit_fails_with_a_reason(faults: E2E) -> None:
    """Retry-After 3600 > SPOTIFY_MAX_RETRY_AFTER=60: the track (or the link being read) fails at once and
    says why, instead of a worker waiting for an hour."""
    e2e = faults
    playlist = make_playlist(e2e, "Limited", 3, owned=False)
    e2e.spotify.fail(spotify_track_path(playlist.ids[1]), 429, {"Retry-After": "3600"}, times=None)
    single = e2e.spotify.add_track("Single Limited", "Solo")
    e2e.spotify.fail(spotify_track_path(single), 429, {"Retry-After": "3600"}, times=None)
    e2e.system.start_worker(threads=2, SPOTIFY_MAX_RETRY_AFTER="60")
    e2e.system.start_bot()

    e2e.send(playlist.link)
    e2e.send(f"https://open.spotify.com/track/{single}", user=OTHER_USER)

    summary = wait_finished(e2e)
    assert titles_of(e2e) == [playlist.titles[0], playlist.titles[2]]
    assert "✅ 2 delivered · ❌ 1 failed" in summary
    assert f"{playlist.titles[1]} — rate-limited by Spotify: asked to wait about 60 min" in summary
    refused = e2e.wait_text("Couldn't read", chat=OTHER_USER)
    assert "rate-limited by Spotify: asked to wait about 60 min" in refused
    assert e2e.telegram.audios(OTHER_USER) == []


def test_spotify_short_retry_after_delays_the_track_not_the_others(faults: E2E) -> None:
    """Retry-After 8 s (under the limit) on a playlist's first track, with a single worker thread: the user
    sees "Delayed", another chat's track goes through meanwhile (no thread sleeps out the wait), and then
    the playlist is delivered in order."""
    e2e = faults
    playlist = make_playlist(e2e, "Patient", 2, owned=False)
    e2e.spotify.fail(spotify_track_path(playlist.ids[0]), 429, {"Retry-After": "8"}, times=1)
    other = e2e.spotify.add_track("Meanwhile Elsewhere", "Other Chat")
    e2e.system.start_worker(processes=1, threads=1)
    e2e.system.start_bot()

    e2e.send(playlist.link)
    delayed = e2e.wait_text("⏸ Delayed")
    e2e.send(f"https://open.spotify.com/track/{other}", user=OTHER_USER)

    e2e.wait_audios(1, chat=OTHER_USER)
    assert e2e.telegram.audios(USER) == [], "the other chat did not wait for the delayed track"
    e2e.wait_audios(len(playlist.titles))
    wait_finished(e2e)
    assert_exactly_once_in_order(e2e, playlist.titles)
    assert "a service asked us to wait" in delayed


# --- 7. audio sources misbehave -------------------------------------------------------------------------


def test_broken_sources_fall_through_and_a_hung_one_times_out(faults: E2E) -> None:
    """First candidates answering 403, 500 or a truncated body give way to the next candidate; a download
    that hangs (the server sends nothing) times out and the track fails with a reason the user can read."""
    e2e = faults
    playlist = make_playlist(e2e, "Sources", 5)
    plans = {
        playlist.titles[0]: ["403", "ok"],
        playlist.titles[1]: ["500", "ok"],
        playlist.titles[2]: ["truncated", "ok"],
        playlist.titles[3]: ["hang"],
    }
    for title, modes in plans.items():
        e2e.audio.set_plan(title, modes)
    e2e.system.start_worker(threads=3, TRACK_MAX_RETRIES="0")
    e2e.system.start_bot(TRACK_MAX_RETRIES="0")

    e2e.send(playlist.link)

    summary = wait_finished(e2e, timeout=180)
    delivered = [t for t in playlist.titles if t != playlist.titles[3]]
    assert titles_of(e2e) == delivered
    assert "✅ 4 delivered · ❌ 1 failed" in summary
    for title in delivered[:3]:
        fault = plans[title][0]
        assert e2e.audio.count(rf"^/{fault}/audio/") >= 1, f"the {fault} candidate was tried first"
    failure = next(line for line in summary.splitlines() if playlist.titles[3] in line)
    print(f"\n[sources] the hung download is reported as: {failure}")
    assert "gave up after 1 try" in failure
    assert "timed out" in failure
