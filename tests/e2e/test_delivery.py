"""The delivery core as people meet it: many links in a row, turns inside a chat, a frozen Redis, chats that
change under the bot (a group upgraded to a supergroup, forum topics, a blocked bot), and a cached upload
Telegram no longer knows. Real bot and worker processes against the fakes, as everywhere in tests/e2e."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot import texts
from tests.e2e.conftest import E2E, OTHER_USER, USER, running_e2e
from tests.fakes.audio_server import AudioServer
from tests.fakes.spotify_server import FakeSpotify
from tests.system import RedisServer

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

BOT = "fake_mp3_bot"
GROUP = -4001
SUPERGROUP = -1004001


@pytest.fixture
def quick(tmp_path: Path, redis_proc, fake_spotify: FakeSpotify) -> Iterator[E2E]:  # type: ignore[no-untyped-def]
    url = f"redis://{redis_proc.host}:{redis_proc.port}/0"
    with running_e2e(tmp_path, url, fake_spotify, audio=AudioServer(seconds=1.0, slow_seconds=2.0)) as running:
        yield running


def titles(e2e: E2E, chat: int = USER) -> list[str | None]:
    return [audio.title for audio in e2e.telegram.audios(chat)]


def test_ten_links_shared_one_after_another_all_arrive(quick: E2E) -> None:
    """The most common use: songs shared one by one. Each one is queued, none is refused."""
    e2e = quick
    songs = [(f"Shared Song {n:02d}", e2e.spotify.add_track(f"Shared Song {n:02d}", f"Sharer {n}")) for n in range(10)]
    e2e.system.start_worker(threads=2)
    e2e.system.start_bot()
    e2e.telegram.wait_for(lambda: e2e.telegram.commands(), timeout=30, message="the bot to start")

    for _title, track_id in songs:
        e2e.send(f"https://open.spotify.com/track/{track_id}")
        time.sleep(0.3)

    e2e.wait_audios(len(songs), timeout=120)
    assert sorted(titles(e2e)) == sorted(title for title, _ in songs)
    assert e2e.telegram.duplicate_audios(USER) == []
    assert not [t for t in e2e.telegram.texts(USER) if "You already have" in t]
    assert titles(e2e) == [title for title, _ in songs], "requests of a chat are served in the order shared"


def test_own_single_takes_turns_with_own_playlist(quick: E2E) -> None:
    """A person's single, shared during their own 16-track playlist, does not wait for the whole playlist."""
    e2e = quick
    ids = [e2e.spotify.add_track(f"Long List {n:02d}", "Marathon") for n in range(1, 17)]
    playlist = e2e.spotify.add_playlist("Sixteen", "Runner", ids, owned=True)
    single = e2e.spotify.add_track("My Own Single", "Me")
    e2e.system.start_worker(threads=2)
    e2e.system.start_bot()

    e2e.send(f"https://open.spotify.com/playlist/{playlist}")
    e2e.wait_audios(1)
    e2e.send(f"https://open.spotify.com/track/{single}")

    got = e2e.telegram.wait_for(lambda: "My Own Single" in titles(e2e) and titles(e2e), timeout=120)
    before = got.index("My Own Single")
    assert before < 8, f"the single waited behind {before} playlist tracks: {got}"
    e2e.wait_audios(17, timeout=180)
    playlist_titles = [t for t in titles(e2e) if t != "My Own Single"]
    assert playlist_titles == [f"Long List {n:02d}" for n in range(1, 17)], "the playlist stays in order"
    assert e2e.telegram.duplicate_audios(USER) == []


@pytest.fixture
def frozen_redis(tmp_path: Path, fake_spotify: FakeSpotify) -> Iterator[tuple[E2E, RedisServer]]:
    with RedisServer(tmp_path / "redis") as server:
        audio = AudioServer(seconds=1.0, slow_seconds=2.0)
        with running_e2e(tmp_path, server.url, fake_spotify, audio=audio) as running:
            yield running, server


def test_a_frozen_redis_stops_neither_the_bot_nor_the_album(frozen_redis: tuple[E2E, RedisServer]) -> None:
    """Redis stops answering for 15 s mid-album (SIGSTOP, then SIGCONT): /help is still answered at once,
    /status says the storage is unreachable, and afterwards the album completes, each track exactly once."""
    e2e, server = frozen_redis
    album_titles = [f"Frozen {n}" for n in range(1, 9)]
    album = e2e.spotify.add_album("Ice Age", "Glacier", album_titles)
    for title in album_titles:
        e2e.audio.set_plan(title, ["slow"])
    e2e.system.start_worker(processes=1, threads=2)
    e2e.system.start_bot()
    e2e.send(f"https://open.spotify.com/album/{album}")
    e2e.wait_audios(2)

    assert server.popen is not None
    os.kill(server.popen.pid, signal.SIGSTOP)
    try:
        frozen_at = time.monotonic()
        e2e.send("/help")
        e2e.wait_text("/status — what I'm working on", timeout=10)
        help_after = time.monotonic() - frozen_at
        e2e.send("/status")
        e2e.wait_text(texts.STORAGE_DOWN, timeout=10)
        status_after = time.monotonic() - frozen_at
        assert time.monotonic() - frozen_at < 15, "the answers came while Redis was still frozen"
        time.sleep(max(0.0, 15 - (time.monotonic() - frozen_at)))
    finally:
        os.kill(server.popen.pid, signal.SIGCONT)

    e2e.wait_audios(len(album_titles), timeout=180)
    e2e.wait_text("Done:", timeout=120)
    assert titles(e2e) == album_titles
    assert e2e.telegram.duplicate_audios(USER) == []
    print(f"\n[redis frozen 15 s] /help answered after {help_after:.1f} s, /status after {status_after:.1f} s")


def test_a_group_upgraded_to_a_supergroup_keeps_its_playlist(quick: E2E) -> None:
    e2e = quick
    ids = [e2e.spotify.add_track(f"Upgrade Song {n} [fake: slow]", "Movers") for n in range(1, 6)]
    playlist = e2e.spotify.add_playlist("Moving Day", "Movers", ids, owned=True)
    e2e.system.start_worker(threads=1)
    e2e.system.start_bot()
    e2e.telegram.push_text(
        USER, f"@{BOT} https://open.spotify.com/playlist/{playlist}", chat_id=GROUP, chat_type="group"
    )
    e2e.wait_audios(1, chat=GROUP)

    e2e.telegram.migrate(GROUP, SUPERGROUP)

    e2e.telegram.wait_for(
        lambda: len(e2e.telegram.audios(GROUP)) + len(e2e.telegram.audios(SUPERGROUP)) >= 5 or None, timeout=120
    )
    everything = titles(e2e, GROUP) + titles(e2e, SUPERGROUP)
    assert everything == [f"Upgrade Song {n} [fake: slow]" for n in range(1, 6)]
    assert e2e.telegram.audios(SUPERGROUP), "the rest went to the supergroup"
    summary = e2e.wait_text("Done:", chat=SUPERGROUP, timeout=60)
    assert "5 delivered" in summary


def test_replies_and_audios_stay_in_the_forum_topic(quick: E2E) -> None:
    e2e = quick
    track = e2e.spotify.add_track("Topic Song", "Forum Band")
    e2e.system.start_worker()
    e2e.system.start_bot()

    e2e.telegram.push_text(
        USER, f"@{BOT} https://open.spotify.com/track/{track}", chat_id=SUPERGROUP, chat_type="supergroup", thread_id=42
    )

    [audio] = e2e.wait_audios(1, chat=SUPERGROUP)
    e2e.wait_text("Done:", chat=SUPERGROUP)
    sent = e2e.telegram.sent_messages(SUPERGROUP)
    assert {message.thread_id for message in sent} == {42}, [(m.kind, m.thread_id) for m in sent]
    assert audio.title == "Topic Song"


def test_a_cached_upload_telegram_forgot_is_fetched_again(quick: E2E) -> None:
    e2e = quick
    track = e2e.spotify.add_track("Forgotten Upload", "Amnesia")
    e2e.system.start_worker()
    e2e.system.start_bot()
    e2e.send(f"https://open.spotify.com/track/{track}")
    e2e.wait_audios(1)
    e2e.wait_text("Done:")
    downloads = len(e2e.audio.requests)

    e2e.telegram.forget_file_ids()
    e2e.send(f"https://open.spotify.com/track/{track}", user=OTHER_USER)

    [again] = e2e.wait_audios(1, chat=OTHER_USER)
    assert not again.by_file_id, "uploaded afresh"
    assert len(e2e.audio.requests) > downloads, "downloaded again"
    summary = e2e.wait_text("Done:", chat=OTHER_USER)
    assert "1 delivered" in summary


def test_a_chat_that_blocks_the_bot_frees_its_requests(quick: E2E) -> None:
    e2e = quick
    ids = [e2e.spotify.add_track(f"Blocked Song {n} [fake: slow]", "Walls") for n in range(1, 7)]
    playlist = e2e.spotify.add_playlist("Walled", "Walls", ids, owned=True)
    e2e.system.start_worker(threads=1)
    e2e.system.start_bot()
    e2e.send(f"https://open.spotify.com/playlist/{playlist}")
    e2e.wait_audios(1)

    e2e.telegram.block(USER)

    e2e.telegram.wait_for(lambda: not e2e.redis.exists("spotbot:active"), timeout=60, message="the request closed")
    assert len(e2e.telegram.audios(USER)) < 6
    [head] = [key for key in e2e.redis.scan_iter("spotbot:req:*") if key.count(":") == 2]
    assert e2e.redis.hget(head, "status") == "cancelled"
