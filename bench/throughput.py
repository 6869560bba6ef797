"""Throughput bench: how close the product gets to the floor that the CPU and Telegram's pacing set.

Run from the project root: `.venv/bin/python -m bench.throughput [--quick] [--tracks 16] [--big 500]`.
Not for CI (a few minutes). It prints figures next to their targets; it asserts nothing.

The real `python -m bot` and `dramatiq bot.worker --processes 2 --threads 2` run against the test fakes
(Telegram, Spotify, audio) and a private redis-server, wired by the end-to-end tests' `running_e2e`, with
production settings where running_e2e has test values (CHAT_SEND_INTERVAL 1 s, PROGRESS_INTERVAL 3 s,
timeouts). Absolute times on a small machine are noise, so each speed figure is a ratio against a floor
measured in the same run, or a difference against the same run's own pieces:

1. throughput: an album of 16 song-length tracks (3:20 to 4:20, each its own length), message → last
   audio, against max(FFmpeg alone converting the same 16 files 2 at a time, 1 s per audio);
2. repeat latency: the same track link again from a second user (answered from the upload cache);
3. single new track overhead: message → audio minus the worker's own search+download+convert time
   (parts 2 and 3 run 3 times each and show the median: one sample is too noisy);
4. bot CPU per delivered track for a 10-track and a 500-track playlist whose uploads are cached.

The test AudioServer serves one tone length to every track, so the bench subclasses it (BenchAudioServer)
to serve each track its own pre-generated file and to time every request it answers.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import psutil

from pipeline.convert import ffmpeg_args, ffmpeg_executable
from pipeline.settings import PipelineSettings
from tests.e2e.conftest import E2E, OTHER_USER, USER, running_e2e
from tests.fakes.audio_server import AUDIO_FORMATS, AudioServer
from tests.fakes.spotify_server import FakeSpotify
from tests.fakes.telegram_server import Call, FakeTelegram
from tests.system import Process, RedisServer

QUALITY: str = PipelineSettings.model_fields["mp3_quality"].default  # what the workers use (MP3_QUALITY unset)
SEND_INTERVAL = 1.0  # production CHAT_SEND_INTERVAL: Telegram's ~1 message per second per chat
# Production values of what running_e2e sets for tests (bot/settings.py, pipeline/settings.py).
PRODUCTION_ENV = {
    "CHAT_SEND_INTERVAL": f"{SEND_INTERVAL:g}",
    "PROGRESS_INTERVAL": "3",
    "HTTP_TIMEOUT": "20",
    "DOWNLOAD_TIMEOUT": "600",
    "MP3_QUALITY": QUALITY,
}
WORKER_PROCESSES, WORKER_THREADS = 2, 2
PARALLEL_FFMPEG = 2  # the machine's cores: the fair FFmpeg-alone floor runs this many at once
SHORTEST_S, LONGEST_S = 200, 260  # 3:20 .. 4:20
SINGLE_S = 230  # the lone new track of part 3: 3:50
SINGLE_RUNS = 3  # parts 2 and 3 repeat this often and show the median
TARGET_RATIO, TARGET_REPEAT_S, TARGET_OVERHEAD_S = 1.3, 0.5, 0.3
IDLE_S = 5.0  # how long the idle bot's CPU use is sampled
TICKS_PER_S = os.sysconf("SC_CLK_TCK")  # the resolution of a process's CPU time
DONE = "Done:"  # the final summary of a request (bot/progress.py)


# --------------------------------------------------------------------------------------------- audio


@dataclass(frozen=True)
class Served:
    """One request the audio server answered: path, and when it arrived and when its answer was written."""

    path: str
    started: float
    finished: float


class BenchAudioServer(AudioServer):
    """The test AudioServer, plus a file of its own length per track (`sources`, by spotify id) and timing.

    The stock server answers every `/audio/<name>.m4a` with one tone of `seconds`; a song-length album
    needs a length per track. Names not in `sources` still get the stock tone. `served` records when
    each request arrived and when its last byte was written (for the worker's own search+download time).
    """

    def __init__(self, sources: Mapping[str, Path], **kwargs: Any) -> None:
        self.sources = {name: path.read_bytes() for name, path in sources.items()}
        self.served: list[Served] = []  # set before super().__init__, which builds the handler class
        super().__init__(**kwargs)

    def _resource(self, path: str) -> tuple[str, bytes] | None:
        kind, _, name = path.lstrip("/").partition("/")
        stem, _, ext = name.rpartition(".")
        if kind == "audio" and ext == "m4a" and stem in self.sources:
            return AUDIO_FORMATS["m4a"][0], self.sources[stem]
        return super()._resource(path)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        served = self.served
        base: Any = super()._handler_class()

        class Timed(base):
            def _serve(self, *, send_body: bool) -> None:
                started = time.time()
                try:
                    super()._serve(send_body=send_body)
                finally:
                    served.append(Served(self.path.split("?", 1)[0], started, time.time()))

        return Timed

    def served_between(self, start: float, end: float) -> list[Served]:
        return [s for s in list(self.served) if start <= s.started <= end]


def spread(count: int, shortest: int, longest: int) -> list[int]:
    """`count` whole-second lengths evenly spread from `shortest` to `longest`."""
    if count == 1:
        return [(shortest + longest) // 2]
    return [round(shortest + (longest - shortest) * i / (count - 1)) for i in range(count)]


def make_tones(lengths: Mapping[str, int], folder: Path) -> dict[str, Path]:
    """An m4a tone per name, encoded like the AudioServer's own (2 at a time: generating them takes a while)."""
    folder.mkdir(parents=True, exist_ok=True)
    ffmpeg = ffmpeg_executable()

    def make(item: tuple[str, int]) -> tuple[str, Path]:
        name, seconds = item
        path = folder / f"{name}.m4a"
        args = [ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi"]
        args += ["-i", f"sine=frequency=440:duration={seconds}", *AUDIO_FORMATS["m4a"][1], str(path)]
        subprocess.run(args, check=True, capture_output=True, timeout=120)
        return name, path

    with ThreadPoolExecutor(PARALLEL_FFMPEG) as pool:
        return dict(pool.map(make, lengths.items()))


def ffmpeg_alone(sources: list[Path], folder: Path, parallel: int = PARALLEL_FFMPEG) -> float:
    """Seconds FFmpeg takes to turn `sources` into MP3s with the pipeline's own command line, `parallel` at once."""
    folder.mkdir(parents=True, exist_ok=True)
    ffmpeg = ffmpeg_executable()

    def convert(source: Path) -> None:
        args = ffmpeg_args(ffmpeg, source, folder / f"{source.stem}.mp3", QUALITY)
        subprocess.run(args, check=True, capture_output=True, timeout=600)

    started = time.monotonic()
    with ThreadPoolExecutor(parallel) as pool:
        list(pool.map(convert, sources))
    return time.monotonic() - started


# --------------------------------------------------------------------------------------------- chats


@dataclass
class Delivered:
    """One request as the user saw it: when the link was sent, when each audio arrived, when it was done."""

    sent_at: float
    audio_at: list[float]
    done_at: float | None  # None: no final summary seen (e.g. its wording changed)

    @property
    def last(self) -> float:
        return self.audio_at[-1] - self.sent_at


def chat_calls(telegram: FakeTelegram, chat: int, since: float, *methods: str) -> list[Call]:
    """Successful Bot API calls of these methods addressed to `chat` from `since` on, as the fake got them."""
    wanted = {method.lower() for method in methods}
    return [
        call
        for call in telegram.calls
        if call.method.lower() in wanted
        and call.params.get("chat_id") == chat
        and call.timestamp >= since
        and call.status == 200
    ]


def wait_until(predicate: Callable[[], object], timeout: float, what: str, every: float = 0.1) -> None:
    """Poll at a modest rate: FakeTelegram.wait_for re-checks on every call the bot makes, which with
    hundreds of audios would cost this process (and steal from the measured ones) a core."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(every)


def done_at(telegram: FakeTelegram, chat: int, since: float) -> float | None:
    calls = chat_calls(telegram, chat, since, "sendMessage", "editMessageText")
    return next((c.timestamp for c in calls if DONE in str(c.params.get("text", ""))), None)


def deliver(e2e: E2E, chat: int, link: str, count: int, timeout: float) -> Delivered:
    """Send `link` as `chat`'s user and wait for `count` audios, then (briefly) for the final summary: the
    request must be over before the next one, or it would count against the user's request limit."""
    telegram = e2e.telegram
    before = len(telegram.audios(chat))
    sent_at = time.time()
    e2e.send(link, user=chat)
    wait_until(lambda: len(telegram.audios(chat)) >= before + count, timeout, f"{count} audio(s) in chat {chat}")
    with contextlib.suppress(TimeoutError):
        wait_until(lambda: done_at(telegram, chat, sent_at), 30, "the final summary")
    audio_at = [c.timestamp for c in chat_calls(telegram, chat, sent_at, "sendAudio")]
    finished = done_at(telegram, chat, sent_at)
    if finished is None:
        print(f"  (no {DONE!r} summary seen in chat {chat}; carrying on)", file=sys.stderr)
    return Delivered(sent_at, audio_at, finished)


def pause() -> None:
    """Let the chat's pacing from one request run out, so that it does not delay the next measured one."""
    time.sleep(SEND_INTERVAL * 1.5)


def wait_ready(telegram: FakeTelegram, bot: Process, since: float, worker: Process | None = None) -> None:
    """The bot polls Telegram and (if given) every worker process has started consuming."""
    wait_until(lambda: called_since(telegram, "getUpdates", since), 60, f"{bot.name} polling")
    if worker is not None:
        wait_until(lambda: worker.log().count("ready for action") >= WORKER_PROCESSES, 60, "the worker processes")


def called_since(telegram: FakeTelegram, method: str, since: float) -> bool:
    return any(call.timestamp >= since for call in telegram.calls_to(method))


def cpu_seconds(process: Process) -> float:
    times = psutil.Process(process.pid).cpu_times()
    return times.user + times.system


def seconds(value: float) -> str:
    return f"{value:6.2f} s"


# --------------------------------------------------------------------------------------------- parts


@dataclass
class Catalog:
    """What the fake Spotify holds for the bench, and the tone length of each new track."""

    warmup: str
    album: str
    album_ids: list[str]
    single_ids: list[str]  # new tracks of the same length, one per run of part 3
    small: str
    small_ids: list[str]
    big: str
    big_ids: list[str]
    lengths: dict[str, int]


def track_link(track_id: str) -> str:
    return f"https://open.spotify.com/track/{track_id}"


def make_catalog(spotify: FakeSpotify, tracks: int, big: int) -> Catalog:
    durations = spread(tracks, SHORTEST_S, LONGEST_S)
    album_id = spotify.add_album(
        "Bench Album",
        "Bench Band",
        [{"title": f"Bench Song {n:02d}", "duration_ms": s * 1000} for n, s in enumerate(durations, 1)],
    )
    album_ids = spotify.album_track_ids(album_id)
    single_ids = [
        spotify.add_track(f"Bench Single {n}", "Bench Soloist", duration_ms=SINGLE_S * 1000)
        for n in range(1, SINGLE_RUNS + 1)
    ]
    warmup_id = spotify.add_track("Bench Warm-up", "Bench Band")  # gets the stock short tone
    small_ids = [spotify.add_track(f"Small {n:02d}", "Cached Band") for n in range(1, 11)]
    big_ids = [spotify.add_track(f"Big {n:03d}", "Cached Band") for n in range(1, big + 1)]
    small = spotify.add_playlist("Bench 10", "Bencher", small_ids, owned=True)
    big_list = spotify.add_playlist(f"Bench {big}", "Bencher", big_ids, owned=True)  # >100 items: API only
    return Catalog(
        warmup=track_link(warmup_id),
        album=f"https://open.spotify.com/album/{album_id}",
        album_ids=album_ids,
        single_ids=single_ids,
        small=f"https://open.spotify.com/playlist/{small}",
        small_ids=small_ids,
        big=f"https://open.spotify.com/playlist/{big_list}",
        big_ids=big_ids,
        lengths={**dict(zip(album_ids, durations, strict=True)), single_ids[0]: SINGLE_S},
    )


def throughput(e2e: E2E, audio: BenchAudioServer, catalog: Catalog, converted: float) -> list[str]:
    count = len(catalog.album_ids)
    run = deliver(e2e, USER, catalog.album, count, timeout=60 + 30 * count)
    floor = max(converted, SEND_INTERVAL * count)
    edits = chat_calls(e2e.telegram, USER, run.sent_at, "editMessageText")
    edits_before_last = sum(1 for call in edits if call.timestamp <= run.audio_at[-1])
    turns = [
        call.timestamp
        for call in chat_calls(e2e.telegram, USER, run.audio_at[0], "sendAudio", "editMessageText", "sendMessage")
        if call.timestamp <= run.audio_at[-1]
    ]
    audio_gaps = gaps(run.audio_at)
    lengths = sorted(catalog.lengths[i] for i in catalog.album_ids)
    # Album order is delivery order, so the i-th audio is the i-th track; the audio server saw its download.
    fetched: dict[str, float] = {}
    for served in audio.served_between(run.sent_at, run.audio_at[-1]):
        fetched.setdefault(served.path.removeprefix("/audio/").removesuffix(".m4a"), served.started)
    starts = [fetched[i] for i in catalog.album_ids if i in fetched]
    in_flight = [at - fetched[i] for i, at in zip(catalog.album_ids, run.audio_at, strict=True) if i in fetched]
    bursts = sum(1 for gap in audio_gaps if gap < 0.9 * SEND_INTERVAL)
    lines = [
        f"1. Throughput: album of {count} tracks, {len(set(lengths))} lengths from {clock(lengths[0])} to "
        f"{clock(lengths[-1])}; worker {WORKER_PROCESSES} processes x {WORKER_THREADS} threads",
        f"   message -> last audio        {seconds(run.last)}",
        f"   FFmpeg alone ({PARALLEL_FFMPEG} at a time)    {seconds(converted)}",
        f"   pacing ({SEND_INTERVAL:g} s x {count} audios)    {seconds(SEND_INTERVAL * count)}",
        f"   floor (the larger)           {seconds(floor)}",
        f"   ratio time / floor           {run.last / floor:6.2f}    (target <= {TARGET_RATIO})",
        f"   where it went: first audio after {run.audio_at[0] - run.sent_at:.2f} s, then {count - 1} more "
        f"{mean(audio_gaps):.2f} s apart on average (max {max(audio_gaps, default=0):.2f} s);",
        f"     {edits_before_last} progress edit(s) shared the chat's {SEND_INTERVAL:g} s pacing with the audios "
        f"(audios + edits = {(count + edits_before_last) * SEND_INTERVAL:.0f} s of pacing); from the first audio "
        f"to the last the chat got a message or edit every {mean(gaps(turns)):.2f} s;",
        f"     the workers started a download every {mean(gaps(sorted(starts))):.2f} s on average; a track took "
        f"{statistics.median(in_flight):.2f} s (median) from its download to its audio in the chat",
    ]
    if bursts:
        lines.append(
            f"   note: {bursts} audio(s) came less than {SEND_INTERVAL:g} s after the one before (the bot sends "
            f"bursts), so {SEND_INTERVAL:g} s per audio is not a hard floor"
        )
    return lines


def gaps(times: list[float]) -> list[float]:
    return [b - a for a, b in itertools.pairwise(times)]


def mean(values: list[float]) -> float:
    return statistics.mean(values) if values else 0.0


def clock(total: int) -> str:
    return f"{total // 60}:{total % 60:02d}"


@dataclass
class SingleRun:
    """Part 3, one new track: seconds from the user's message to each mark."""

    audio: float  # the audio arrived
    searched: float  # the worker asked the audio provider (the search began)
    downloaded: float  # the audio server wrote the file's last byte
    convert_s: float  # FFmpeg alone on the same file
    reply: float | None  # the progress reply arrived

    @property
    def own(self) -> float:
        return self.downloaded - self.searched + self.convert_s

    @property
    def overhead(self) -> float:
        return self.audio - self.own


def single_run(e2e: E2E, audio: BenchAudioServer, track_id: str, convert_s: float) -> SingleRun:
    """The worker's own time is measured from outside, not read from the bot's state: the search starts
    when the fake provider asks the audio server for /plan.json, the download ends when the server has
    written the file's last byte (both timed by BenchAudioServer), and the conversion takes what FFmpeg
    alone takes on that same file with the pipeline's command line (measured before the product started)."""
    run = deliver(e2e, USER, track_link(track_id), 1, timeout=120)
    audio_at = run.audio_at[0]
    served = audio.served_between(run.sent_at, audio_at)
    searched = min(s.started for s in served if s.path == "/plan.json")
    downloaded = max(s.finished for s in served if s.path.startswith(f"/audio/{track_id}."))
    replies = chat_calls(e2e.telegram, USER, run.sent_at, "sendMessage")
    reply = replies[0].timestamp - run.sent_at if replies else None
    return SingleRun(audio_at - run.sent_at, searched - run.sent_at, downloaded - run.sent_at, convert_s, reply)


def single_overhead(e2e: E2E, audio: BenchAudioServer, catalog: Catalog, convert_s: float) -> list[str]:
    """A few new tracks one after the other (one sample is too noisy on a small machine); the median run
    is shown in detail."""
    runs = []
    for track_id in catalog.single_ids:
        runs.append(single_run(e2e, audio, track_id, convert_s))
        pause()
    median = sorted(runs, key=lambda r: r.overhead)[len(runs) // 2]
    reply = "none" if median.reply is None else f"{median.reply:.2f} s"
    return [
        f"3. Single new track overhead ({clock(SINGLE_S)} tone; {len(runs)} new tracks one after the other, "
        "the median shown)",
        f"   message -> audio             {seconds(median.audio)}",
        f"   worker's own work            {seconds(median.own)}  (search+download "
        f"{median.downloaded - median.searched:.2f} s, convert {median.convert_s:.2f} s)",
        f"   overhead                     {seconds(median.overhead)}  (target <= {TARGET_OVERHEAD_S} s; all runs: "
        f"{', '.join(f'{r.overhead:.2f}' for r in runs)} s)",
        f"   where it went: progress reply after {reply}; search began {median.searched:.2f} s after the message "
        f"(bot intake, resolve job, queueing, track enrich); {median.audio - median.downloaded - median.convert_s:.2f}"
        " s from the end of the conversion to the audio (tagging, state, delivery loop, pacing, upload)",
    ]


def repeat_latency(e2e: E2E, catalog: Catalog) -> list[str]:
    """The first new track of part 3, asked again by the other user a few times; the median shown."""
    runs: list[tuple[float, float | None, bool]] = []  # latency, progress reply, re-sent by file_id
    for _ in range(SINGLE_RUNS):
        run = deliver(e2e, OTHER_USER, track_link(catalog.single_ids[0]), 1, timeout=60)
        replies = chat_calls(e2e.telegram, OTHER_USER, run.sent_at, "sendMessage")
        reply = replies[0].timestamp - run.sent_at if replies else None
        runs.append((run.audio_at[0] - run.sent_at, reply, e2e.telegram.audios(OTHER_USER)[-1].by_file_id))
        pause()
    latency, reply, _ = sorted(runs)[len(runs) // 2]
    by_file_id = sum(1 for *_, cached in runs if cached)
    where = "no progress reply" if reply is None else f"progress reply after {reply:.2f} s"
    return [
        f"2. Repeat latency: the same track link from a second user ({len(runs)} times, the median shown)",
        f"   message -> audio             {seconds(latency)}  (target <= {TARGET_REPEAT_S} s; all runs: "
        f"{', '.join(f'{r[0]:.2f}' for r in runs)} s)",
        f"   re-sent by cached file_id: {by_file_id} of {len(runs)}; {where}",
    ]


def upload_cache_key(audio_key: str, spotify_id: str) -> str:
    """Where the bot caches an upload: `bot.schema.cache_key` if the code has it, else today's layout
    (bot/state.py: `spotbot:cache:<audio_key>:<spotify_id>`)."""
    try:
        from bot.schema import cache_key
    except ImportError:
        return f"spotbot:cache:{audio_key}:{spotify_id}"
    return cache_key(audio_key, spotify_id)


def prefill_cache(e2e: E2E, catalog: Catalog, file_id: str, size: int) -> None:
    """Make every playlist track look delivered before, with one file_id the fake Telegram knows (any audio
    it stored can be re-sent by file_id). If the bot no longer reads this key or shape, the tracks are
    fetched fresh (1 s tones) instead, and the report says so."""
    audio_key = PipelineSettings.model_construct(mp3_quality=QUALITY).audio_settings_key
    with e2e.redis.pipeline() as pipe:
        for track_id in [*catalog.small_ids, *catalog.big_ids]:
            title = e2e.spotify.track_json(track_id)["name"]
            upload = {"file_id": file_id, "title": title, "performer": "Cached Band", "duration_s": 180.0}
            pipe.set(upload_cache_key(audio_key, track_id), json.dumps({**upload, "size_bytes": size}))
        pipe.execute()


def bot_cpu(e2e: E2E, audio: BenchAudioServer, catalog: Catalog, bot: Process) -> list[str]:
    """A bot of its own with CHAT_SEND_INTERVAL=0 (else 500 audios take 500 s), uploads prefilled in the cache."""
    bot.stop()
    source = e2e.telegram.audios(USER)[-1]
    prefill_cache(e2e, catalog, source.file_id, source.size)
    started = time.time()
    cpu_bot = e2e.system.start_bot("bot-cpu", CHAT_SEND_INTERVAL="0")
    wait_ready(e2e.telegram, cpu_bot, started)
    time.sleep(2)  # past start-up work
    idle_cpu = cpu_seconds(cpu_bot)
    time.sleep(IDLE_S)
    idle_cpu = cpu_seconds(cpu_bot) - idle_cpu
    rows, per_track, by_file_id = [], [], 0
    for chat, link, ids in ((USER, catalog.small, catalog.small_ids), (OTHER_USER, catalog.big, catalog.big_ids)):
        earlier = len(e2e.telegram.audios(chat))
        before = cpu_seconds(cpu_bot)
        run = deliver(e2e, chat, link, len(ids), timeout=300)
        used = cpu_seconds(cpu_bot) - before
        wall = (run.done_at or run.audio_at[-1]) - run.sent_at
        per_track.append(used / len(ids))
        rows.append(f"   {len(ids):>5} tracks  {wall:7.2f} s  {used:7.2f} s  {1000 * used / len(ids):8.2f} ms")
        by_file_id += sum(1 for sent in e2e.telegram.audios(chat)[earlier:] if sent.by_file_id)
        pause()
    all_ids = {*catalog.small_ids, *catalog.big_ids}
    fresh = {s.path for s in audio.served_between(started, time.time()) if s.path.startswith("/audio/")}
    fetched = sum(1 for track_id in all_ids if f"/audio/{track_id}.m4a" in fresh)
    how = f"{fetched} tracks fetched fresh (1 s tones)" if fetched else "uploads prefilled in the cache"
    return [
        f"4. Bot CPU per delivered track ({how}; CHAT_SEND_INTERVAL=0, PROGRESS_INTERVAL 3 s)",
        "   playlist       wall        bot CPU   per track",
        *rows,
        f"   per-track CPU, {len(catalog.big_ids)} vs 10 tracks: x{per_track[1] / per_track[0]:.2f}; idle bot: "
        f"{1000 * idle_cpu:.0f} ms CPU in {IDLE_S:g} s; CPU time is counted in {1000 / TICKS_PER_S:g} ms ticks",
        f"   audios re-sent by file_id: {by_file_id} of {len(all_ids)}",
    ]


# --------------------------------------------------------------------------------------------- main


def run(tracks: int, big: int, rounds: int) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="throughput-"))
    scratch = workdir / "audio"
    with RedisServer(workdir / "redis") as redis_server, FakeSpotify() as spotify:
        catalog = make_catalog(spotify, tracks, big)
        print(f"generating {len(catalog.lengths)} tones and measuring FFmpeg alone…", file=sys.stderr)
        sources = make_tones(catalog.lengths, scratch / "sources")
        album_files = [sources[i] for i in catalog.album_ids]
        converted = min(ffmpeg_alone(album_files, scratch / "mp3") for _ in range(rounds))
        single_source = sources[catalog.single_ids[0]]
        convert_single = min(ffmpeg_alone([single_source], scratch / "mp3", 1) for _ in range(3))
        sources |= dict.fromkeys(catalog.single_ids, single_source)  # the other new tracks: the same file
        audio = BenchAudioServer(sources, seconds=1.0)
        report: dict[int, list[str]] = {}
        with running_e2e(workdir, redis_server.url, spotify, audio=audio, **PRODUCTION_ENV) as e2e:
            started = time.time()
            worker = e2e.system.start_worker(processes=WORKER_PROCESSES, threads=WORKER_THREADS)
            bot = e2e.system.start_bot()
            wait_ready(e2e.telegram, bot, started, worker)
            print("warm-up track…", file=sys.stderr)
            deliver(e2e, USER, catalog.warmup, 1, timeout=120)  # first-use costs (imports, connections, token)
            pause()
            print("1. throughput…", file=sys.stderr)
            report[1] = throughput(e2e, audio, catalog, converted)
            pause()
            print("3. single new tracks…", file=sys.stderr)
            report[3] = single_overhead(e2e, audio, catalog, convert_single)
            print("2. repeats…", file=sys.stderr)
            report[2] = repeat_latency(e2e, catalog)
            print(f"4. bot CPU, 10 and {big} tracks…", file=sys.stderr)
            report[4] = bot_cpu(e2e, audio, catalog, bot)
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"throughput bench ({psutil.cpu_count()} CPUs; FFmpeg {QUALITY}; figures from one run)")
    for part in sorted(report):
        print("\n".join(report[part]))
    print(f"logs: {workdir / 'logs'}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes: 6 album tracks, a 100-track playlist")
    parser.add_argument("--tracks", type=int, help="album tracks for part 1 (default 16)")
    parser.add_argument("--big", type=int, help="tracks of the big playlist of part 4 (default 500)")
    args = parser.parse_args()
    tracks = args.tracks or (6 if args.quick else 16)
    big = args.big or (100 if args.quick else 500)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # run the cleanup (stop the processes) on SIGTERM
    return run(tracks, big, rounds=1 if args.quick else 2)


if __name__ == "__main__":
    raise SystemExit(main())
