"""Soak: 200 tracks through 2 worker processes while a random worker process is SIGKILLed every 20 s.

Run from the project root: `.venv/bin/python -m bench.soak [--tracks 200] [--kill-every 20] [--deadline 1800]`.
Not for CI (it takes minutes); it stops by itself when every request has finished or at the deadline.

The real `python -m bot` and `dramatiq bot.worker --processes 2 --threads 2` run against the test fakes
(Telegram, Spotify, audio) and a private redis-server with its append-only file on, as in
docker-compose.yml. Dramatiq's parent stops when one of its children dies, so the worker runs under a
restart policy, as in production. The tracks come as playlists of 50, two per chat, and each download
trickles over a few seconds so that the workers, not the paced sender, are the bottleneck.

Prints what users got (delivered, duplicated, lost, out of order, failed), the kills, and the peak
resident memory (RSS) of each process; sampled twice a second with psutil.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import random
import re
import signal
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from tests.e2e.conftest import OTHER_USER, USER, running_e2e
from tests.fakes.audio_server import AudioServer
from tests.fakes.spotify_server import FakeSpotify
from tests.fakes.telegram_server import FakeTelegram
from tests.system import Process, RedisServer

USERS = (USER, OTHER_USER)  # the users running_e2e allows
PLAYLIST_SIZE = 50
SAMPLE_EVERY = 0.5
FAILED = re.compile(r"❌ (\d+) failed")


@dataclass
class Request:
    chat: int
    name: str
    link: str
    titles: list[str]


@dataclass
class MemoryPeaks:
    """Peak RSS per process (pid), with the role it played."""

    peaks: dict[int, int] = field(default_factory=dict)
    roles: dict[int, str] = field(default_factory=dict)

    def sample(self, role: str, pid: int) -> None:
        try:
            rss = psutil.Process(pid).memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return
        self.roles[pid] = role
        self.peaks[pid] = max(self.peaks.get(pid, 0), rss)

    def report(self) -> list[str]:
        """One line per role; a role that ran as several processes (restarts) shows the largest and smallest."""
        by_role: dict[str, list[int]] = {}
        for pid, peak in self.peaks.items():
            by_role.setdefault(self.roles[pid], []).append(peak)
        lines = []
        for role, peaks in sorted(by_role.items()):
            mib = sorted(peak / 2**20 for peak in peaks)
            if len(mib) == 1:
                lines.append(f"  {role:<15} peak RSS {mib[0]:6.1f} MiB")
            else:
                spread = f"{len(mib)} processes, from {mib[0]:.1f} to {mib[-1]:.1f}"
                lines.append(f"  {role:<15} peak RSS {mib[-1]:6.1f} MiB ({spread})")
        return lines


def make_requests(spotify: FakeSpotify, tracks: int) -> list[Request]:
    requests = []
    for number, start in enumerate(range(0, tracks, PLAYLIST_SIZE), 1):
        name = f"Soak {number}"
        titles = [f"{name} Song {n:03d}" for n in range(1, min(PLAYLIST_SIZE, tracks - start) + 1)]
        ids = [spotify.add_track(title, f"{name} Band") for title in titles]
        playlist_id = spotify.add_playlist(name, "Soaker", ids, owned=True)
        chat = USERS[(number - 1) % len(USERS)]
        requests.append(Request(chat, name, f"https://open.spotify.com/playlist/{playlist_id}", titles))
    return requests


def finished(telegram: FakeTelegram, requests: list[Request]) -> bool:
    for chat in USERS:
        expected = sum(1 for r in requests if r.chat == chat)
        if sum(1 for text in telegram.texts(chat) if "Done:" in text) < expected:
            return False
    return True


def sample_all(memory: MemoryPeaks, bot: Process, worker: Process, redis_server: RedisServer) -> None:
    if bot.alive:
        memory.sample("bot", bot.pid)
    if worker.alive:
        memory.sample("worker parent", worker.pid)
        for child in worker.children():
            memory.sample("worker process", child)
    if redis_server.popen is not None:
        memory.sample("redis-server", redis_server.popen.pid)


def outcome(telegram: FakeTelegram, requests: list[Request]) -> list[str]:
    lines = []
    totals = Counter[str]()
    for chat in USERS:
        got = [audio.title or "" for audio in telegram.audios(chat)]
        counts = Counter(got)
        for request in (r for r in requests if r.chat == chat):
            wanted = set(request.titles)
            mine = [title for title in got if title in wanted]
            first_seen = list(dict.fromkeys(mine))
            delivered = len(first_seen)
            duplicated = sum(counts[t] - 1 for t in first_seen)
            lost = len(wanted) - delivered
            in_order = first_seen == [t for t in request.titles if t in counts]
            totals.update(expected=len(wanted), delivered=delivered, duplicated=duplicated, lost=lost)
            lines.append(
                f"  chat {chat} {request.name}: {delivered}/{len(wanted)} delivered, "
                f"{duplicated} duplicated, {lost} lost, {'in order' if in_order else 'OUT OF ORDER'}"
            )
    summaries = [text for chat in USERS for text in telegram.texts(chat) if "Done:" in text]
    failed = sum(int(m.group(1)) for text in summaries if (m := FAILED.search(text)))
    lines.append(
        f"  total: {totals['delivered']}/{totals['expected']} delivered, {totals['duplicated']} duplicated, "
        f"{totals['lost']} lost ({failed} reported as failed to the user)"
    )
    return lines


def run(tracks: int, kill_every: float, deadline: float, seed: int, download_seconds: float) -> int:
    rng = random.Random(seed)
    workdir = Path(tempfile.mkdtemp(prefix="soak-"))
    memory = MemoryPeaks()
    kills: list[tuple[float, int]] = []
    with (
        RedisServer(workdir / "redis") as redis_server,
        FakeSpotify() as spotify,
        AudioServer(seconds=1.0, slow_seconds=download_seconds) as audio,
    ):
        requests = make_requests(spotify, tracks)
        audio.set_plan("Soak", ["slow"])  # downloads take `download_seconds`: the workers stay the bottleneck
        # The end-to-end tests' wiring (same fakes, settings and users); the system stops when the block ends.
        with running_e2e(workdir, redis_server.url, spotify, audio=audio, PROGRESS_INTERVAL="2") as e2e:
            telegram, system = e2e.telegram, e2e.system
            worker = system.start_worker(processes=2, threads=2, restart=True)
            bot = system.start_bot()
            for request in requests:
                telegram.push_text(request.chat, request.link)
            started = time.monotonic()
            next_kill = started + kill_every
            while not finished(telegram, requests) and time.monotonic() - started < deadline:
                sample_all(memory, bot, worker, redis_server)
                now = time.monotonic()
                if now >= next_kill:
                    next_kill = now + kill_every
                    children = worker.children() if worker.alive else []
                    if children:
                        victim = rng.choice(children)
                        with contextlib.suppress(ProcessLookupError):  # it may have just exited
                            worker.kill_child(victim)
                            kills.append((now - started, victim))
                time.sleep(SAMPLE_EVERY)
            elapsed = time.monotonic() - started
            done = finished(telegram, requests)
        print(
            f"soak: {tracks} tracks ({download_seconds:g} s downloads), 2 worker processes x 2 threads, "
            f"one SIGKILLed every {kill_every:g} s"
        )
        print(
            f"{'finished' if done else 'DEADLINE REACHED'} after {elapsed:.0f} s; {len(kills)} kills at "
            + ", ".join(f"{at:.0f}s" for at, _ in kills)
        )
        print(f"worker restarts by the restart policy: {worker.restarts} (exit codes {sorted(set(worker.exit_codes))})")
        sends = sorted(c.timestamp for c in telegram.calls_to("sendAudio") if c.status == 200)
        gap = max((b - a for a, b in itertools.pairwise(sends)), default=0.0)
        print(f"longest wait between two delivered tracks: {gap:.1f} s")
        print("outcome:")
        print("\n".join(outcome(telegram, requests)))
        print("peak memory:")
        print("\n".join(memory.report()))
        print(f"logs: {system.logs}")
        return 0 if done else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tracks", type=int, default=200)
    parser.add_argument("--kill-every", type=float, default=20.0, help="seconds between kills")
    parser.add_argument("--deadline", type=float, default=1800.0, help="give up after this many seconds")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--download-seconds", type=float, default=3.0, help="how long each download trickles")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # run the cleanup (stop the processes) on SIGTERM
    return run(args.tracks, args.kill_every, args.deadline, args.seed, args.download_seconds)


if __name__ == "__main__":
    raise SystemExit(main())
