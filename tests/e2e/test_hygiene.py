"""Resource hygiene: after ~50 mixed requests, a worker crash and cancels, nothing is left behind.

One system runs everything: tracks that arrive (fresh and re-sent from the upload cache), albums, tracks
with no matching recording, downloads that fail or break off, unknown links, requests cancelled while
downloading, and a playlist whose worker is killed (SIGKILL) in the middle of a download. Afterwards:
no file in DOWNLOAD_DIR or in the processes' TMPDIR, every Redis key of a finished request expires within
REQUEST_TTL_HOURS, no request is still tracked as active, and the folders a crash orphans are swept.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.work_area import WORK_DIR_NAME
from tests.e2e.conftest import E2E, running_e2e
from tests.fakes.spotify_server import FakeSpotify
from tests.system import files_under

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

FIRST_USER = 5000  # request i is sent by user FIRST_USER + i, in its own private chat
USERS = 80
TTL_HOURS = 2
ORPHAN_MINUTES = 0.05  # 3 s: orphans are swept within seconds
SETTLED = ("Done:", "Cancelled", "Couldn't read")


@dataclass
class Request:
    link: str
    settles_as: str  # a fragment of the request's final progress message
    audios: int = 0
    cancel: str | None = None  # "button" or "command": cancel it while a track is downloading
    user: int = 0


@pytest.fixture
def e2e(tmp_path: Path, redis_proc) -> Iterator[E2E]:  # type: ignore[no-untyped-def]
    (tmp_path / "tmp").mkdir()
    settings = {
        "ALLOWED_USERS": ",".join(str(FIRST_USER + i) for i in range(USERS)),
        "TMPDIR": str(tmp_path / "tmp"),
        "REQUEST_TTL_HOURS": str(TTL_HOURS),
        "ORPHAN_MINUTES": str(ORPHAN_MINUTES),
        "TRACK_MAX_RETRIES": "0",
    }
    redis_url = f"redis://{redis_proc.host}:{redis_proc.port}/0"
    with FakeSpotify() as spotify, running_e2e(tmp_path, redis_url, spotify, **settings) as system:
        yield system


def plant_orphan(downloads: Path, rid: str, age_s: float) -> Path:
    """What a worker killed mid-download leaves: a request folder with a half-written file in a job dir."""
    folder = downloads / WORK_DIR_NAME / rid
    part = folder / "0" / ".work-crash" / "candidate-0" / "source.m4a.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(b"\0" * 1000)
    old = time.time() - age_s
    for path in (part, *part.parents):
        os.utime(path, (old, old))
        if path == folder:
            break
    return folder


def plant_own_files(downloads: Path, age_s: float) -> list[Path]:
    """The person's own music beside the bot's work (the CLI puts albums in DOWNLOAD_DIR): old, and in folders
    named like the bot's own request folders too. Returns everything there, the empty work area included."""
    own = [
        downloads / "Daft Punk - Discovery" / "Daft Punk - One More Time.mp3",
        downloads / "Daft Punk - Discovery" / "cover.jpg",
        downloads / "Podcasts" / "episode-12.mp3",
        downloads / "0badc0ffee03" / "mine.mp3",
        downloads / "loose.mp3",
    ]
    old = time.time() - age_s
    for path in own:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"ID3 not the bot's")
        os.utime(path, (old, old))
        os.utime(path.parent, (old, old))
    return sorted({*own, *(p.parent for p in own), downloads / WORK_DIR_NAME} - {downloads})


def request_of(e2e: E2E, user: int) -> str:
    def find() -> str | None:
        for key in e2e.redis.scan_iter("spotbot:req:*"):
            meta = e2e.redis.hget(key, "meta") if key.count(":") == 2 else None
            if meta and json.loads(meta)["user_id"] == user:
                return key.rsplit(":", 1)[1]
        return None

    return e2e.telegram.wait_for(find, timeout=30, message=f"a request of user {user}")


def downloading(e2e: E2E, rid: str) -> bool:
    """True once a track of the request is mid-download (a partial file exists in its folder)."""
    return any(p.suffix == ".part" for p in files_under(e2e.downloads / WORK_DIR_NAME / rid))


def settled_text(e2e: E2E, chat: int) -> str | None:
    return next((t for t in e2e.telegram.texts(chat) if any(s in t for s in SETTLED)), None)


def test_nothing_is_left_behind(e2e: E2E) -> None:
    spotify, audio, downloads = e2e.spotify, e2e.audio, e2e.downloads
    stale = plant_orphan(downloads, "0badc0ffee01", age_s=3600)
    own = plant_own_files(downloads, age_s=3600)
    worker = e2e.system.start_worker(threads=3, restart=True)  # supervised, as in production
    e2e.system.start_bot()
    e2e.telegram.wait_for(lambda: not stale.exists(), timeout=30, message="the sweep at start")

    # The crash first, so that waiting for the redelivery overlaps with everything else.
    crash_ids = [spotify.add_track(f"Crash Song {n}", "Crashers") for n in range(3)]
    for track_id in crash_ids:
        audio.set_plan(track_id, ["slow"])
    crash = Request(
        f"https://open.spotify.com/playlist/{spotify.add_playlist('Crash', 'DJ', crash_ids, owned=True)}",
        "3 delivered",
        audios=3,
    )
    requests = [crash]

    songs = [spotify.add_track(f"Clean Song {n}", f"Band {n}") for n in range(16)]
    requests += [Request(f"https://open.spotify.com/track/{s}", "1 delivered", audios=1) for s in songs]
    requests += [Request(f"spotify:track:{s}", "1 delivered", audios=1) for s in songs[:10]]  # from the upload cache
    for n in range(2):
        album = spotify.add_album(f"Record {n}", "Album Band", [f"Side {n}-{k}" for k in range(4)])
        requests.append(Request(f"https://open.spotify.com/album/{album}", "4 delivered", audios=4))
    for n in range(5):
        requests.append(
            Request(f"https://open.spotify.com/track/{spotify.add_track(f'Nomatch {n} [fake: wrong]')}", "1 failed")
        )
    for n, mode in enumerate(["404", "404", "410", "truncated", "truncated"]):
        track = spotify.add_track(f"Broken {n} [fake: {mode}]", "Broken Band")
        requests.append(Request(f"https://open.spotify.com/track/{track}", "1 failed"))
    for n in range(3):
        requests.append(Request(f"https://open.spotify.com/track/{n}{'0' * 20}{n}", "Couldn't read"))
        requests.append(Request(f"https://open.spotify.com/album/{n}{'1' * 20}{n}", "Couldn't read"))
    requests += [Request(f"https://open.spotify.com/playlist/3{str(n) * 21}", "Couldn't read") for n in range(2)]
    for n, how in enumerate(["button", "command", "button", "command"]):
        slow = [spotify.add_track(f"Slow {n}-{k} [fake: slow]", "Snails") for k in range(4)]
        playlist = spotify.add_playlist(f"Slow {n}", "Snail", slow, owned=True)
        requests.append(Request(f"https://open.spotify.com/playlist/{playlist}", "Cancelled", cancel=how))
    for index, request in enumerate(requests):
        request.user = FIRST_USER + index
    assert len(requests) >= 50

    e2e.send(crash.link, user=crash.user)
    crash_rid = request_of(e2e, crash.user)
    e2e.telegram.wait_for(lambda: downloading(e2e, crash_rid), timeout=60, message="a crash-playlist download")
    worker.kill_child()  # dramatiq then stops its other processes; the supervisor starts them again
    worker.wait_restarted()
    assert [p for p in files_under(downloads / WORK_DIR_NAME / crash_rid) if p.is_file()], "the crash left files"
    audio.clear_plans()  # the retried downloads go fast

    for request in requests[1:]:
        e2e.send(request.link, user=request.user)
    for request in requests:
        if request.cancel:
            rid = request_of(e2e, request.user)
            e2e.telegram.wait_for(lambda rid=rid: downloading(e2e, rid), timeout=90, message="a slow download")
            if request.cancel == "command":
                e2e.send("/cancel", user=request.user)
            else:
                progress = next(m for m in e2e.telegram.sent_messages(request.user) if m.button_texts)
                e2e.telegram.push_callback(request.user, progress.message_id, f"cancel:{rid}")

    for request in requests:
        final = e2e.telegram.wait_for(
            lambda r=request: settled_text(e2e, r.user),
            timeout=150,
            message="the request to settle",
            chat_id=request.user,
        )
        assert request.settles_as in final, f"{request.link}: {final}"
        if not request.cancel:
            assert len(e2e.telegram.audios(request.user)) == request.audios, e2e.telegram.describe(request.user)

    # Nothing is tracked as active any more.
    e2e.telegram.wait_for(lambda: not e2e.redis.exists("spotbot:active"), timeout=30, message="no active request")
    sets = [k for k in e2e.redis.scan_iter("spotbot:*") if k.startswith(("spotbot:chat:", "spotbot:user:"))]
    assert sets == [], f"per-chat/per-user sets of finished requests remain: {sets}"

    # Every key of a finished request expires, within REQUEST_TTL_HOURS; nothing of ours lives forever.
    ttls = request_ttls(e2e)
    assert len(ttls) >= len(requests)
    bad = {key: ttl for key, ttl in ttls.items() if not 0 < ttl <= TTL_HOURS * 3600}
    assert bad == {}, f"keys of finished requests without the finished TTL: {bad}"
    immortal = [key for key in e2e.redis.scan_iter("spotbot:*") if e2e.redis.ttl(key) == -1]
    assert immortal == []

    # A folder orphaned now (a worker that died after its request was settled) goes within seconds.
    late = plant_orphan(downloads, "0badc0ffee02", age_s=0)
    e2e.telegram.wait_for(lambda: not late.exists(), timeout=30, message="the orphan to be swept")
    health = downloads / WORK_DIR_NAME / "health"  # the running processes' heartbeats (bot.health)
    assert [path for path in files_under(downloads) if not path.is_relative_to(health)] == own
    assert files_under(e2e.system.workdir / "tmp") == []
    assert all(p.alive for p in e2e.system.processes), "the bot and the (restarted) worker still run"

    e2e.system.stop_all()
    assert files_under(downloads) == sorted([*own, health]), (
        "only the bot's own leftovers are removed; the person's files stay; the heartbeats are signed off"
    )
    assert files_under(e2e.system.workdir / "tmp") == [], "no temporary file outlives the processes"


def request_ttls(e2e: E2E) -> dict[str, int]:
    return {key: e2e.redis.ttl(key) for key in e2e.redis.scan_iter("spotbot:req:*")}


def test_request_cancelled_while_its_link_is_read_expires_too(e2e: E2E) -> None:
    track = e2e.spotify.add_track("Slow Read", "Sloths")
    e2e.spotify.fail(rf"/v1/tracks/{track}", 200, body=e2e.spotify.track_json(track), delay=4)  # a slow Spotify
    e2e.system.start_worker()
    e2e.system.start_bot()
    user = FIRST_USER

    e2e.send(f"https://open.spotify.com/track/{track}", user=user)
    e2e.telegram.wait_for(lambda: e2e.spotify.count(f"/v1/tracks/{track}"), timeout=30, message="reading the link")
    e2e.send("/cancel", user=user)

    e2e.wait_text("Cancelled", chat=user)
    e2e.telegram.wait_for(lambda: not e2e.redis.exists("spotbot:active"), timeout=30, message="no active request")
    time.sleep(5)  # the resolver finishes reading the link after the request was settled
    ttls = request_ttls(e2e)
    assert ttls and all(0 < ttl <= TTL_HOURS * 3600 for ttl in ttls.values()), ttls
