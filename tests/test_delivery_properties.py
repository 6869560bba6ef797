"""Delivery under random interleavings: a Hypothesis state machine against a real, private redis-server.

The machine plays every party of a delivery over the production stores (`WorkerStore`, `RequestStore`):

- workers: `TrackJobs.process` mirrored in steps that interleave (begin: cancelled? → start; fetch: write the
  file into the run's own attempt folder; finish: ready / fail / retry / cancel), with its except and finally
  clauses: the loser of a race removes only its own attempt folder. Messages behave like Dramatiq's:
  duplicated, redelivered while a run goes on or after it ended, redelivered after a worker crash, lost,
  retried after an exception, and handed to `track_gave_up` when the retries run out;
- the resolver (`TrackJobs.resolve` with the upload cache), with duplicated resolve messages and resolve
  messages arriving after a cancel;
- the bot: the production `Delivery` (`_apply_events`, `_load`, `schedule`, `_repair`, `close`) and
  `ChatSender._step` (bookkeeping, progress edits, the audio at the delivery pointer, recording it, a cached
  file_id refused, finishing, closing) on a fake Telegram that keeps the list of delivered (request, index).
  Only the loops are the machine's: one pass of `_follow_events`, and `reconcile` whose repairs
  (`Delivery._repair`) are steps of their own, so that workers act between the read and the repair. No task,
  thread or sleep: `asyncio.to_thread` runs inline, the pacer and `time.time()` follow the machine's clock.
  A restart drops the bot's memory and its Redis client;
- Redis faults, at the client under the stores: one round trip of a chosen store method (or of the next
  call) fails before reaching Redis ("before"), is applied and its answer is lost for good ("after"), or is
  applied and run again ("rerun": a lost answer while watching makes redis-py run a transaction's body again,
  a pipeline's commands again).

Invariants (after every step, and after `drain`, which runs everything pending to its end at teardown):
1. every track is delivered at most once, and per request in index order;
2. every change of a track or request status (replayed from the events stream, with the cancels it implies)
   is a row of `bot.lifecycle`, and what Redis stores is exactly the replayed state;
3. after the drain, every request is final (done/failed/cancelled) and closed;
4. no `spotbot:*` key without a TTL;
5. no file outside the work area (a file of the user's own in DOWNLOAD_DIR survives); a closed request's folder
   is gone; a ready track's file exists until it is sent (no run removes the winner's file).

What the search found is kept as step-by-step regression tests at the end of this file.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import inspect
import itertools
import os
import shutil
import sys
import tempfile
import time
import warnings
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar, TypeVar

import pytest
import redis
import redis.asyncio as aioredis
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.database import DirectoryBasedExampleDatabase
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from redis.driver_info import DriverInfo
from redis.exceptions import RedisError
from telegram.error import BadRequest, NetworkError

from bot import chat_sender, delivery, schema
from bot.chat_sender import ChatSender
from bot.delivery import Delivery, Enqueue
from bot.jobs import TooLarge, TrackJobs, TrackRun
from bot.lifecycle import (
    REQUEST_FINAL,
    REQUEST_TRANSITIONS,
    TRACK_FINAL,
    TRACK_TRANSITIONS,
    RequestStatus,
    TrackStatus,
    request_target,
    track_target,
)
from bot.pacing import ChatPacer
from bot.recovery import Limits
from bot.request_store import RequestStore
from bot.request_view import RequestView
from bot.requests import RequestMeta, Resolution, TrackState
from bot.settings import BotSettings
from bot.work_area import WorkArea
from bot.worker_store import WorkerStore
from pipeline.errors import Cancelled, NoConfidentMatch, TransientError
from pipeline.models import Track

T = TrackStatus
R = RequestStatus
X = TypeVar("X")

SONGS = tuple(
    Track(spotify_id=f"{n:022d}", title=f"Song {n}", artists=["Artist"], album="Album", duration_ms=200_000)
    for n in range(4)
)
CHATS = (1001, 1002)
T0 = 1_700_000_000.0
LIMITS = Limits(
    queued_stale=60, run_overdue=600, retry_overdue=120, max_attempts=4, resolve_overdue=300, max_resolves=3
)
CAPACITY = 2  # live worker threads the scheduler sizes the queue for
TRACK_MAX_RETRIES = 2  # Dramatiq retries of a track message before `track_gave_up`
RESOLVE_MAX_RETRIES = 2
FINISHED_TTL = 3600
UPLOAD_LIMIT = 1000  # bytes: a fetched file above it is TooLarge
FAULT_KINDS = ("before", "after", "rerun")
TELEGRAM_ANSWERS = ("accept", "accept", "accept", "refuse", "network")  # to an audio
FAULTY_METHODS: dict[str, list[str | None]] = {  # None: whatever store call comes next
    "worker": [None, "start", "ready", "state", "track", "cancelled", "fail", "retry", "cancel", "resolved"],
    "bot": [
        None,
        *("claim", "sent", "state", "queue", "requeue", "finish", "close", "set_next_send", "fail", "reupload"),
        "load",
        *("events", "last_event_id", "active", "cancel", "create", "remember_upload", "redrive_resolve"),
    ],
}

DRIVER = DriverInfo(lib_version=redis.__version__)  # spares each client a look-up of the package metadata


# --- the machine's clock, shared with the production modules that read time.time() -------------------
class MachineTime:
    """Stands for the `time` module in bot.chat_sender and bot.delivery: `time()` is the machine's clock."""

    now = T0

    def time(self) -> float:
        return MachineTime.now

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


class InlineExecutor(concurrent.futures.ThreadPoolExecutor):
    """`asyncio.to_thread` without a thread: the call runs at once, in order (no thread is ever started)."""

    def submit(self, fn: Callable[..., X], /, *args: Any, **kwargs: Any) -> concurrent.futures.Future[X]:
        future: concurrent.futures.Future[X] = concurrent.futures.Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as error:
            future.set_exception(error)
        return future


# --- Redis faults ------------------------------------------------------------------------------------
class Faults:
    """Armed faults per side ("worker", "bot") and store method (None: whichever call comes next): (kind, n) hits
    the n-th Redis round trip of that side's next call of the method."""

    def __init__(self) -> None:
        self.armed: dict[tuple[str, str | None], tuple[str, int]] = {}
        self.calls: dict[str, list[Any] | None] = {"worker": None, "bot": None}  # [method, round trips so far]
        self.fired: list[tuple[str, str, str]] = []

    def enter(self, side: str, method: str) -> None:
        self.calls[side] = [method, 0]

    def leave(self, side: str) -> None:
        self.calls[side] = None

    def hit(self, side: str) -> str | None:
        call = self.calls[side] or [None, 0]
        method, count = call
        call[1] += 1
        for target in (method, None):
            armed = self.armed.get((side, target))
            if armed is None or armed[1] != count:
                continue
            del self.armed[(side, target)]
            self.fired.append((side, str(method), armed[0]))
            return armed[0]
        return None

    def disarm(self) -> None:
        self.armed.clear()


def unreachable() -> redis.ConnectionError:
    return redis.ConnectionError("Error 111 connecting to redis:6379. Connection refused.")


def answer_lost() -> redis.ConnectionError:
    return redis.ConnectionError("Connection closed by server (after Redis applied the command)")


class FaultySyncClient:
    """The workers' redis-py client, breakable one round trip at a time."""

    def __init__(self, real: redis.Redis, faults: Faults, side: str) -> None:
        self._real, self._faults, self._side = real, faults, side

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._real, name)
        if name.startswith("_") or name == "pipeline" or not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            kind = self._faults.hit(self._side)
            if kind == "before":
                raise unreachable()
            result = attr(*args, **kwargs)
            if kind == "after":
                raise answer_lost()
            if kind == "rerun":  # the answer was lost and redis-py retried (a transaction's body runs again)
                result = attr(*args, **kwargs)
            return result

        return call


class FaultyAsyncClient:
    """The bot's redis.asyncio client, breakable one round trip at a time (pipelines included)."""

    def __init__(self, real: aioredis.Redis, faults: Faults, side: str) -> None:
        self._real, self._faults, self._side = real, faults, side

    def pipeline(self, *args: Any, **kwargs: Any) -> FaultyPipeline:
        return FaultyPipeline(self._real.pipeline(*args, **kwargs), self._faults, self._side)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._real, name)
        if name.startswith("_") or not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            first = attr(*args, **kwargs)
            if not inspect.isawaitable(first):
                return first
            return self._faulty(first, lambda: attr(*args, **kwargs))

        return call

    async def _faulty(self, first: Any, again: Callable[[], Any]) -> Any:
        kind = self._faults.hit(self._side)
        if kind == "before":
            with warnings.catch_warnings():  # the unsent command is dropped on purpose
                warnings.simplefilter("ignore", RuntimeWarning)
                first.close()
            raise unreachable()
        result = await first
        if kind == "after":
            raise answer_lost()
        if kind == "rerun":
            result = await again()
        return result


class FaultyPipeline:
    def __init__(self, real: Any, faults: Faults, side: str) -> None:
        self._real, self._faults, self._side = real, faults, side

    async def __aenter__(self) -> FaultyPipeline:
        await self._real.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._real.__aexit__(*exc)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    async def execute(self, *args: Any, **kwargs: Any) -> Any:
        stack = list(self._real.command_stack)
        kind = self._faults.hit(self._side)
        if kind == "before":
            raise unreachable()
        result = await self._real.execute(*args, **kwargs)
        if kind == "after":
            raise answer_lost()
        if kind == "rerun":
            self._real.command_stack = stack
            result = await self._real.execute(*args, **kwargs)
        return result


class StoreCalls:
    """A store whose method calls tell the faults which store method a round trip belongs to."""

    def __init__(self, real: Any, faults: Faults, side: str) -> None:
        self._real, self._faults, self._side = real, faults, side

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._real, name)
        if name.startswith("_") or not callable(attr):
            return attr
        faults, side = self._faults, self._side
        if inspect.iscoroutinefunction(attr):

            async def acall(*args: Any, **kwargs: Any) -> Any:
                faults.enter(side, name)
                try:
                    return await attr(*args, **kwargs)
                finally:
                    faults.leave(side)

            return acall

        def call(*args: Any, **kwargs: Any) -> Any:
            faults.enter(side, name)
            try:
                return attr(*args, **kwargs)
            finally:
                faults.leave(side)

        return call


# --- the workers' messages and runs ------------------------------------------------------------------
@dataclass(frozen=True)
class Message:
    actor: str  # resolve | track | track_gave_up | resolve_gave_up
    rid: str
    index: int = -1
    retries: int = 0

    def __repr__(self) -> str:
        where = self.rid if self.index < 0 else f"{self.rid}/{self.index}"
        return f"<{self.actor} {where}{f' retry {self.retries}' if self.retries else ''}>"


@dataclass(eq=False)
class Run:
    """One `TrackJobs.process` call between its steps."""

    msg: Message
    job: TrackRun
    track: Track | None = None
    path: Path | None = None  # set once fetched
    size: int = 0

    @property
    def attempt(self) -> str:
        return self.job.attempt

    @property
    def out_dir(self) -> Path:
        return self.job.out_dir

    @property
    def fetched(self) -> bool:
        return self.path is not None

    def __repr__(self) -> str:
        return f"<run {self.attempt} of {self.msg.rid}/{self.msg.index}{' (fetched)' if self.fetched else ''}>"


@dataclass
class Request:
    meta: RequestMeta
    songs: tuple[Track, ...]


# --- the bot -----------------------------------------------------------------------------------------
class FakeTelegram:
    """Bot API calls of Delivery / ChatSender; the audios it accepts are the delivered list."""

    def __init__(self, machine: DeliveryMachine) -> None:
        self.m = machine
        self.ids = itertools.count(1)

    async def send_audio(self, chat_id: int, audio: str | Path, **kwargs: Any) -> Any:
        assert self.m.sending is not None
        rid, index = self.m.sending
        if isinstance(audio, Path):
            assert self.m.work_area.root / rid / str(index) in audio.parents, f"{rid}/{index}: sent {audio}"
            audio.read_bytes()  # the upload reads the file
        if self.m.telegram_answer == "refuse":
            raise BadRequest("Wrong file identifier/HTTP URL specified")
        if self.m.telegram_answer == "network":
            raise NetworkError("Connection reset by peer")
        self.m.telegram.append((rid, index))
        file_id = audio if isinstance(audio, str) else f"upload-{rid}-{index}"
        return SimpleNamespace(message_id=next(self.ids), audio=SimpleNamespace(file_id=file_id))

    async def send_message(self, chat_id: int, text: str, **kwargs: Any) -> Any:
        return SimpleNamespace(message_id=next(self.ids))

    async def edit_message_text(self, text: str, **kwargs: Any) -> Any:
        return True


async def no_pause(seconds: float) -> None:
    return None


class BotProcess:
    """One life of the bot process: a production `Delivery` and a `ChatSender` per chat, stepped by the machine."""

    def __init__(self, machine: DeliveryMachine, store: Any) -> None:
        self.m = machine
        self.store = store
        enqueue = Enqueue(resolve=machine.enqueue_resolve, track=machine.enqueue_track)
        pacer = ChatPacer(interval=0.0, clock=machine.clock)
        self.delivery = Delivery(FakeTelegram(machine), store, machine.bot_settings, enqueue, pacer, limits=LIMITS)
        self.delivery.capacity = CAPACITY
        self.delivery._wake_chat = lambda chat_id: None  # type: ignore[method-assign]  # senders: see step()
        self.delivery._pause = no_pause  # type: ignore[method-assign]
        close = self.delivery.close

        async def close_and_check(view: RequestView) -> None:
            await close(view)
            assert not machine.work_area.request_dir(view.rid).exists(), f"{view.rid}: its folder outlived close"

        self.delivery.close = close_and_check  # type: ignore[method-assign]
        self.senders: dict[int, ChatSender] = {}
        self.position: str | None = None
        self.repairs: list[tuple[RequestView, float]] = []

    # Delivery._follow_events, one pass (its outage branch included)
    async def follow_events(self) -> None:
        try:
            if self.position is None:
                self.position = await self.store.last_event_id()
                await self.reconcile()
            self.position, events = await self.store.events(self.position, None)
            await self.delivery._apply_events(events)
        except RedisError:
            self.position = None

    # Delivery.reconcile with the machine's clock; each Delivery._repair waits for `repair_next`
    async def reconcile(self) -> None:
        active = await self.store.active()
        for rid in set(self.delivery.views) - set(active):
            self.delivery.views.pop(rid, None)
        for rid in active:
            view = await self.delivery._load(rid)
            if view is None:
                await self.store.forget(rid)
                continue
            self.repairs.append((view, self.m.now))

    async def repair_next(self) -> None:
        view, now = self.repairs.pop(0)
        try:
            await self.delivery._repair(view, now)
        except RedisError:
            self.repairs.clear()  # the pass stops there; the next one repairs the rest

    async def schedule(self) -> None:
        with contextlib.suppress(RedisError):  # Delivery._scheduler pauses and schedules again
            await self.delivery.schedule()

    def sender(self, chat_id: int) -> ChatSender:
        sender = self.senders.get(chat_id)
        if sender is None:
            sender = self.senders[chat_id] = ChatSender(self.delivery, chat_id)
            send_audio = sender._send_audio

            async def send_and_note(view: RequestView, index: int) -> None:
                self.m.sending = (view.rid, index)
                try:
                    await send_audio(view, index)
                finally:
                    self.m.sending = None

            sender._send_audio = send_and_note  # type: ignore[method-assign]
        return sender

    # ChatSender.run, one step (a RedisError is caught there, and the step tried again later)
    async def step(self, chat_id: int, telegram: str) -> bool:
        """One step of the chat's sender; False when it had nothing to do now."""
        views = self.delivery.chat_views(chat_id)
        if not views:
            return False
        self.m.telegram_answer = telegram
        try:
            return await self.sender(chat_id)._step(views) == 0.0
        except RedisError:
            return True

    @property
    def unrecorded(self) -> bool:
        return any(view.unrecorded for view in self.delivery.views.values())


# --- the machine -------------------------------------------------------------------------------------
class DeliveryMachine(RuleBasedStateMachine):
    redis_host: ClassVar[str] = "127.0.0.1"
    redis_port: ClassVar[int] = 0
    base_dir: ClassVar[Path] = Path(tempfile.gettempdir())
    worker_client: ClassVar[redis.Redis | None] = None  # shared by the examples (a client costs milliseconds)

    def __init__(self) -> None:
        super().__init__()
        MachineTime.now = T0
        assert self.worker_client is not None
        self.observer = self.worker_client
        self.observer.flushdb()
        self.download_dir = Path(tempfile.mkdtemp(dir=self.base_dir))
        self.own_file = self.download_dir / "My Music" / "keep.mp3"
        self.own_file.parent.mkdir()
        self.own_file.write_bytes(b"the user's own")
        self.work_area = WorkArea(self.download_dir)
        self.bot_settings = BotSettings(
            telegram_bot_token="1:fake",
            download_dir=self.download_dir,
            progress_interval=0.5,
            chat_send_interval=0.0,
            track_max_retries=TRACK_MAX_RETRIES,
            _env_file=None,  # type: ignore[call-arg]
        )
        self.audio_key = self.bot_settings.audio_settings_key
        self.faults = Faults()
        worker_redis = FaultySyncClient(self.worker_client, self.faults, "worker")
        self.ws: Any = StoreCalls(WorkerStore(worker_redis, clock=self.clock), self.faults, "worker")  # type: ignore[arg-type]
        self.jobs = TrackJobs(self.bot_settings, self.ws)
        self.loop = asyncio.new_event_loop()
        self.loop.set_default_executor(InlineExecutor())
        self.bot_client: aioredis.Redis | None = None
        self.bot = self._new_bot()
        self.requests: dict[str, Request] = {}
        self.expired: set[str] = set()
        self.broker: list[Message] = []
        self.broker_up = True
        self.history: list[Message] = []  # every resolve / track message the bot sent
        self.runs: list[Run] = []
        self.telegram: list[tuple[str, int]] = []
        self.telegram_answer = "accept"
        self.sending: tuple[str, int] | None = None
        self.chaos = 1
        self.rids = itertools.count(1)
        # what the events stream said so far (invariant 2)
        self.event_pos: str | None = None
        self.resolutions: dict[str, list[list[TrackState]]] = defaultdict(list)  # states of each `resolved` call
        self.known: dict[tuple[str, int], tuple[int, frozenset[TrackStatus]]] = {}
        self.request_status: dict[str, RequestStatus] = {}

    # --- plumbing ------------------------------------------------------------------------------------
    @property
    def now(self) -> float:
        return MachineTime.now

    @now.setter
    def now(self, value: float) -> None:
        MachineTime.now = value

    def clock(self) -> float:
        return MachineTime.now

    def _new_bot(self) -> BotProcess:
        if self.bot_client is not None:
            self.run(self.bot_client.aclose())
        self.bot_client = aioredis.Redis(
            host=self.redis_host, port=self.redis_port, decode_responses=True, driver_info=DRIVER
        )
        store = RequestStore(
            FaultyAsyncClient(self.bot_client, self.faults, "bot"),  # type: ignore[arg-type]
            finished_ttl=FINISHED_TTL,
            clock=self.clock,
        )
        return BotProcess(self, StoreCalls(store, self.faults, "bot"))

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def enqueue_resolve(self, rid: str) -> None:
        self._send(Message("resolve", rid))

    def enqueue_track(self, rid: str, index: int) -> None:
        self._send(Message("track", rid, index))

    def _send(self, msg: Message) -> None:
        if not self.broker_up:
            raise ConnectionError("the broker is unreachable")
        self.broker.append(msg)
        self.history.append(msg)

    # --- workers: TrackJobs.process in steps (its begin, settle_failure and clean_up are the real ones) ---
    def _begin(self, msg: Message) -> Run | None:
        try:
            job = self.jobs.begin(msg.rid, msg.index)
        except RedisError:
            self._message_failed(msg)
            return None
        if job is None:
            return None
        run = Run(msg, job)
        self.runs.append(run)
        return run

    def _fetch(self, run: Run, failure: str | None) -> None:
        """`_fetch` up to `ready`: the track, the download into the attempt folder with its cancel callback."""
        rid, index = run.msg.rid, run.msg.index
        try:
            track = self.ws.track(rid, index)
            if track is None:
                raise Cancelled()
            run.out_dir.mkdir(parents=True, exist_ok=True)
            path = run.out_dir / f"{track.main_artist} - {track.title}.mp3"
            path.write_bytes(b"partial")
            if self.ws.cancelled(rid):
                raise Cancelled()
            if failure == "permanent":
                raise NoConfidentMatch()
            if failure == "transient":
                raise TransientError("download timed out")
            if failure == "unexpected":
                raise RuntimeError("bug in a provider")
            run.size = 2 * UPLOAD_LIMIT if failure == "too large" else len(run.attempt)
            path.write_bytes(run.attempt.encode().ljust(run.size, b"."))
        except Exception as error:
            self._end(run, error)
            return
        run.track, run.path = track, path

    def _finish(self, run: Run, failure: str | None) -> None:
        """The rest of `_fetch`: the size check, the thumbnail, `ready`."""
        rid, index = run.msg.rid, run.msg.index
        assert run.track is not None and run.path is not None
        try:
            if failure == "cancelled":  # the pipeline's last look at the cancel callback
                raise Cancelled()
            if run.size > UPLOAD_LIMIT:
                raise TooLarge("file too large for Telegram")
            thumb = run.out_dir / "thumbnail.jpg"
            thumb.write_bytes(b"jpeg")
            ready = self.ws.ready(
                rid,
                index,
                path=str(run.path),
                thumb_path=str(thumb),
                title=run.track.title,
                performer=", ".join(run.track.artists),
                duration_s=200.0,
                size_bytes=run.size,
            )
            run.job.won = ready is not None
        except Exception as error:
            self._end(run, error)
            return
        self._end(run, None)

    def _end(self, run: Run, error: Exception | None) -> None:
        """The except and finally clauses of TrackJobs.process, then Dramatiq's ack or retry."""
        self.runs.remove(run)
        try:
            try:
                if error is not None:
                    self.jobs.settle_failure(run.job, error)
            finally:
                self.jobs.clean_up(run.job)
        except Exception:
            self._message_failed(run.msg)

    def _message_failed(self, msg: Message) -> None:
        """Dramatiq's Retries middleware: retry the message, or hand it to the on_retry_exhausted actor."""
        limit = {"track": TRACK_MAX_RETRIES, "resolve": RESOLVE_MAX_RETRIES}.get(msg.actor)
        if limit is None or msg.retries < limit:
            self.broker.append(replace(msg, retries=msg.retries + 1))
        else:
            self.broker.append(Message(f"{msg.actor}_gave_up", msg.rid, msg.index))

    def _resolve(self, msg: Message, outcome: str) -> None:
        """TrackJobs.resolve + _store_collection."""
        rid = msg.rid
        try:
            meta = self.ws.meta(rid)
            if meta is None or self.ws.request_status(rid) != "resolving":
                return
            if outcome == "reject":
                self.ws.reject(rid, "not found on Spotify")
                return
            if outcome == "transient":
                raise TransientError("Spotify is down")
            songs = self.requests[rid].songs
            states = []
            for song in songs:
                upload = self.ws.cached_upload(self.audio_key, song.spotify_id)
                states.append(TrackState(status=T.READY, **upload) if upload else TrackState())
            resolution = Resolution(kind="playlist", name="Mix", total=len(songs), available=len(songs))
            self.resolutions[rid].append(states)
            self.ws.resolved(rid, resolution, list(songs), states)
        except (TransientError, RedisError):
            self._message_failed(msg)

    def _gave_up(self, msg: Message) -> None:
        """Dramatiq's on_retry_exhausted actors."""
        try:
            if msg.actor == "resolve_gave_up":
                self.jobs.resolve_gave_up(msg.rid)
            else:
                self.jobs.track_gave_up(msg.rid, msg.index)
        except RedisError:
            self._message_failed(msg)

    def _deliver(self, msg: Message) -> None:
        """A worker takes `msg` and runs it to its end, successfully unless Redis fails."""
        if msg.actor == "resolve":
            self._resolve(msg, "ok")
        elif msg.actor == "track":
            run = self._begin(msg)
            if run is not None:
                self._fetch(run, None)
                if run in self.runs:
                    self._finish(run, None)
        else:
            self._gave_up(msg)

    # --- rules -----------------------------------------------------------------------------------------
    # A few rules, each drawing one of the actions that apply now (with weights), so that runs reach deep
    # states; the draws are labelled, so a failing example reads as "worker: fetch", "bot: send", … steps.
    def _messages(self, *actors: str) -> list[Message]:
        return [msg for msg in self.broker if msg.actor in actors]

    def _take(self, data: st.DataObject, actors: tuple[str, ...]) -> Message:
        msg = data.draw(st.sampled_from(self._messages(*actors)), label="message")
        self.broker.remove(msg)
        return msg

    def _open(self) -> list[str]:
        closed = set(self._closed())
        return [rid for rid in self.requests if rid not in closed]

    @initialize(
        requests=st.lists(
            st.tuples(st.lists(st.integers(0, len(SONGS) - 1), max_size=3), st.sampled_from(CHATS)),
            min_size=1,
            max_size=3,
        ),
        chaos=st.integers(1, 3),
        cached=st.lists(st.integers(0, len(SONGS) - 1), max_size=2),
    )
    def first_requests(self, requests: list[tuple[list[int], int]], chaos: int, cached: list[int]) -> None:
        self.chaos = chaos  # how much goes wrong in this example: weight of the chaos steps
        for song in sorted(set(cached)):  # sent before: Telegram knows them by file_id
            upload = {"file_id": f"cached-{song}", "title": SONGS[song].title, "performer": "Artist"}
            self.run(self.bot.store.remember_upload(self.audio_key, SONGS[song].spotify_id, upload))
        for songs, chat in requests:
            self.new_request(songs, chat)

    @precondition(lambda self: len(self._open()) < 3)
    @rule(songs=st.lists(st.integers(0, len(SONGS) - 1), max_size=3), chat=st.sampled_from(CHATS))
    def new_request(self, songs: list[int], chat: int) -> None:
        """Handlers._start_request: record the request, then queue its resolve message."""
        rid = f"{next(self.rids):012x}"
        meta = RequestMeta(
            id=rid, chat_id=chat, user_id=chat + 1, link="https://open.spotify.com/playlist/x", created_at=self.now
        )
        try:
            self.run(self.bot.store.create(meta, progress_message_id=None, progress_text="Reading the link…"))
            created = True
        except RedisError:
            created = False
        if self.observer.exists(schema.head_key(rid)):
            self.requests[rid] = Request(meta, tuple(SONGS[i] for i in songs))
        if created:
            self.enqueue_resolve(rid)

    @rule(data=st.data())
    def step(self, data: st.DataObject) -> None:
        """One thing happens: a worker's step, a bot's step, or chaos (faults, crashes, duplicates, losses, time)."""
        actions: list[str] = []
        if self._messages("resolve", "track"):
            actions += ["worker: run a message whole"]
        if self._messages("resolve"):
            actions += ["worker: resolve"] * 2
        if self._messages("track"):
            actions += ["worker: begin"] * 3
        if any(not run.fetched for run in self.runs):
            actions += ["worker: fetch"] * 3
        if any(run.fetched for run in self.runs):
            actions += ["worker: finish"] * 3
        if self._messages("track_gave_up", "resolve_gave_up"):
            actions += ["worker: gave up"]
        actions += ["bot: tick"] * 2 + ["bot: events"] * 2 + ["bot: schedule"] * 2 + ["bot: send"] * 3
        actions += ["chaos: fault"] * 2 * self.chaos + ["chaos: advance clock"] * 2 + ["chaos: reconcile"]
        actions += ["chaos: cancel"]
        if self.bot.repairs:
            actions += ["chaos: repair"] * 3
        if self.runs:
            actions += ["chaos: crash"] * self.chaos
        if self.history:
            actions += ["chaos: duplicate"] * self.chaos
        if self.broker:
            actions += ["chaos: lose"]
        if not self.bot.unrecorded:
            # Not while a send is unrecorded: Telegram accepted it and a crash loses that fact; across such a
            # crash delivery is at-least-once by nature.
            actions += ["chaos: restart"]
        if not self.bot.repairs and self._closed(expired=False):
            actions += ["chaos: expire"]
        action = data.draw(st.sampled_from(actions), label="step")
        getattr(self, "_" + action.replace(": ", "_").replace(" ", "_"))(data)

    # worker steps
    def _worker_run_a_message_whole(self, data: st.DataObject) -> None:
        self._deliver(self._take(data, ("resolve", "track")))

    def _worker_resolve(self, data: st.DataObject) -> None:
        outcome = data.draw(st.sampled_from(["ok", "ok", "ok", "reject", "transient"]), label="outcome")
        self._resolve(self._take(data, ("resolve",)), outcome)

    def _worker_begin(self, data: st.DataObject) -> None:
        self._begin(self._take(data, ("track",)))

    def _worker_fetch(self, data: st.DataObject) -> None:
        run = data.draw(st.sampled_from([run for run in self.runs if not run.fetched]), label="run")
        failures = [None, None, None, "permanent", "transient", "unexpected", "too large"]
        self._fetch(run, data.draw(st.sampled_from(failures), label="failure"))

    def _worker_finish(self, data: st.DataObject) -> None:
        run = data.draw(st.sampled_from([run for run in self.runs if run.fetched]), label="run")
        self._finish(run, data.draw(st.sampled_from([None, None, None, "cancelled"]), label="failure"))

    def _worker_gave_up(self, data: st.DataObject) -> None:
        self._gave_up(self._take(data, ("track_gave_up", "resolve_gave_up")))

    # bot steps
    def _bot_tick(self, data: st.DataObject) -> None:
        """A second of the bot when nothing interleaves: events, scheduling, the chat's sender until idle."""
        chat = data.draw(st.sampled_from(CHATS), label="chat")
        answer = data.draw(st.sampled_from(TELEGRAM_ANSWERS), label="telegram")
        self.now += 1
        self.run(self.bot.follow_events())
        self.run(self.bot.schedule())
        for _ in range(8):
            if not self.run(self.bot.step(chat, answer)):
                break

    def _bot_events(self, data: st.DataObject) -> None:
        self.run(self.bot.follow_events())

    def _bot_schedule(self, data: st.DataObject) -> None:
        self.broker_up = data.draw(st.sampled_from([True, True, True, False]), label="broker up")
        try:
            self.run(self.bot.schedule())
        finally:
            self.broker_up = True

    def _bot_send(self, data: st.DataObject) -> None:
        chat = data.draw(st.sampled_from(CHATS), label="chat")
        answer = data.draw(st.sampled_from(TELEGRAM_ANSWERS), label="telegram")
        self.run(self.bot.step(chat, answer))

    # chaos
    def _chaos_fault(self, data: st.DataObject) -> None:
        """Arm a fault: the n-th Redis round trip of the next call of a store method (None: of any) fails."""
        side = data.draw(st.sampled_from(["worker", "bot"]), label="side")
        method = data.draw(st.sampled_from(FAULTY_METHODS[side]), label="method")
        kind = data.draw(st.sampled_from(FAULT_KINDS), label="kind")
        self.faults.armed[(side, method)] = (kind, data.draw(st.sampled_from([0, 0, 1]), label="round trip"))

    def _chaos_advance_clock(self, data: st.DataObject) -> None:
        self.now += data.draw(st.sampled_from([1, 61, 121, 301, 601]), label="seconds")

    def _chaos_reconcile(self, data: st.DataObject) -> None:
        with contextlib.suppress(RedisError):
            self.run(self.bot.reconcile())

    def _chaos_repair(self, data: st.DataObject) -> None:
        for _ in range(data.draw(st.integers(1, 3), label="repairs")):
            if self.bot.repairs:
                self.run(self.bot.repair_next())

    def _chaos_cancel(self, data: st.DataObject) -> None:
        """Handlers.cancel (the user's /cancel or the Cancel button)."""
        rid = data.draw(st.sampled_from(list(self.requests) or ["0" * 12]), label="request")
        with contextlib.suppress(RedisError):
            self.run(self.bot.store.cancel(rid))

    def _chaos_crash(self, data: st.DataObject) -> None:
        """The worker dies mid-run: no cleanup; Dramatiq redelivers the message."""
        run = data.draw(st.sampled_from(self.runs), label="run")
        self.runs.remove(run)
        self.broker.append(run.msg)

    def _chaos_duplicate(self, data: st.DataObject) -> None:
        """A message delivered again: while its first run goes on, or long after it ended."""
        self.broker.append(replace(data.draw(st.sampled_from(self.history), label="message"), retries=0))

    def _chaos_lose(self, data: st.DataObject) -> None:
        """The broker lost a message (its Redis data went away): the reconciler has to notice."""
        self.broker.remove(data.draw(st.sampled_from(self.broker), label="message"))

    def _chaos_restart(self, data: st.DataObject) -> None:
        """The bot restarts: its live copies, the messages it owed and its connections are gone."""
        self.bot = self._new_bot()

    def _chaos_expire(self, data: st.DataObject) -> None:
        """REQUEST_TTL_HOURS ran out for a closed request: Redis drops its keys."""
        rid = data.draw(st.sampled_from(self._closed(expired=False)), label="request")
        self.observer.delete(*schema.request_keys(rid))
        self.expired.add(rid)

    def _closed(self, *, expired: bool | None = None) -> list[str]:
        rids = [rid for rid in self.requests if rid not in self.expired]
        with self.observer.pipeline(transaction=False) as pipe:
            for rid in rids:
                pipe.hexists(schema.head_key(rid), "closed_at")
            closed = {rid for rid, yes in zip(rids, pipe.execute(), strict=True) if yes}
        return [
            rid
            for rid in self.requests
            if (rid in self.expired or rid in closed) and (expired is None or (rid in self.expired) == expired)
        ]

    # --- invariants ----------------------------------------------------------------------------------
    @invariant()
    def invariants(self) -> None:
        self.check()

    def check(self) -> None:
        self._check_deliveries()
        stored = self._read()
        self._check_transitions(stored)
        self._check_ttls()
        self._check_files(stored)

    def _read(self) -> dict[str, tuple[str | None, dict[int, TrackState]]]:
        rids = [rid for rid in self.requests if rid not in self.expired]
        with self.observer.pipeline(transaction=False) as pipe:
            for rid in rids:
                pipe.hget(schema.head_key(rid), "status")
                pipe.hgetall(schema.states_key(rid))
            answers = pipe.execute()
        return {
            rid: (status, {int(i): TrackState.model_validate_json(raw) for i, raw in states.items()})
            for rid, status, states in zip(rids, answers[::2], answers[1::2], strict=True)
        }

    def _check_deliveries(self) -> None:
        seen: set[tuple[str, int]] = set()
        last: dict[str, int] = {}
        for rid, index in self.telegram:
            assert (rid, index) not in seen, f"track {rid}/{index} delivered twice: {self.telegram}"
            assert index > last.get(rid, -1), f"request {rid} delivered out of order: {self.telegram}"
            seen.add((rid, index))
            last[rid] = index

    def _check_transitions(self, stored: dict[str, tuple[str | None, dict[int, TrackState]]]) -> None:
        low = f"({self.event_pos}" if self.event_pos else "-"
        for event_id, fields in self.observer.xrange(schema.EVENTS, min=low, max="+"):
            self.event_pos = event_id
            rid, index, new = fields["rid"], fields["i"], fields["s"]
            if index == schema.REQUEST_EVENT:
                self._replay_request(rid, RequestStatus(new))
            else:
                self._replay_track(rid, int(index), TrackState.model_validate_json(new))
        for rid, (status, states) in stored.items():
            assert status == self.request_status.get(rid), f"{rid}: stored {status}, the events say otherwise"
            for index, state in states.items():
                version, statuses = self.known[(rid, index)]
                assert state.version == version and state.status in statuses, (
                    f"{rid}/{index}: stored v{state.version} {state.status}, the events say v{version} {statuses}"
                )

    def _replay_request(self, rid: str, new: RequestStatus) -> None:
        old = self.request_status.get(rid)
        if old is None or old == new:
            assert new == R.RESOLVING, f"{rid}: {old} → {new} announced"
        else:
            assert any(request_target(event, old) == new for event in REQUEST_TRANSITIONS), f"{rid}: {old} → {new}"
        self.request_status[rid] = new
        if new == R.RUNNING and old != R.RUNNING:  # resolved: the tracks begin (which call won: any of them)
            for index in range(len(self.requests[rid].songs)):
                statuses = frozenset(states[index].status for states in self.resolutions[rid])
                assert statuses <= {T.PENDING, T.READY}
                self.known[(rid, index)] = (0, statuses)
        if new == R.CANCELLED and old != R.CANCELLED:  # RequestStore.cancel: every unfinished track with it
            for key, (version, statuses) in list(self.known.items()):
                if key[0] == rid and not statuses & TRACK_FINAL:
                    assert all(track_target("cancel", status) == T.CANCELLED for status in statuses)
                    self.known[key] = (version + 1, frozenset({T.CANCELLED}))

    def _replay_track(self, rid: str, index: int, new: TrackState) -> None:
        assert (rid, index) in self.known, f"{rid}/{index}: a transition before the track existed"
        version, statuses = self.known[(rid, index)]
        assert new.version == version + 1, f"{rid}/{index}: v{version} → v{new.version} {new.status}"
        assert any(track_target(event, old) == new.status for event in TRACK_TRANSITIONS for old in statuses), (
            f"{rid}/{index}: {set(statuses)} → {new.status} is no transition of bot.lifecycle"
        )
        self.known[(rid, index)] = (new.version, frozenset({new.status}))

    NO_TTL = """
        local found = {}
        for _, name in ipairs(redis.call('KEYS', ARGV[1])) do
            if redis.call('TTL', name) == -1 then table.insert(found, name) end
        end
        return found"""

    def _check_ttls(self) -> None:
        forever = self.observer.eval(self.NO_TTL, 0, f"{schema.PREFIX}:*")
        assert not forever, f"keys without a TTL: {forever}"

    def _check_files(self, stored: dict[str, tuple[str | None, dict[int, TrackState]]]) -> None:
        root = self.work_area.root
        assert self.own_file.read_bytes() == b"the user's own"
        for path in self.download_dir.rglob("*"):
            assert path in (self.own_file, self.own_file.parent, root) or root in path.parents, f"stray {path}"
        for rid, (_status, states) in stored.items():
            for index, state in states.items():
                if state.status == T.READY and state.path:
                    path = Path(state.path)
                    assert root / rid / str(index) in path.parents, f"{rid}/{index}: ready at {path}"
                    assert path.is_file(), f"{rid}/{index} is ready but its file {path} is gone"

    # --- the end -------------------------------------------------------------------------------------
    def _progress_mark(self) -> tuple[Any, ...]:
        newest = self.observer.xrevrange(schema.EVENTS, count=1)
        return (newest[0][0] if newest else None, len(self.telegram), len(self._closed()), len(self.broker))

    def drain(self) -> None:
        """Run everything pending to its end without faults; then every request must be over and closed."""
        self.faults.disarm()
        idle = 0
        while len(self._closed()) < len(self.requests):
            mark = self._progress_mark()
            self.run(self.bot.follow_events())
            for run in list(self.runs):
                if not run.fetched:
                    self._fetch(run, None)
                if run in self.runs:
                    self._finish(run, None)
            while self.broker:
                self._deliver(self.broker.pop(0))
            self.check()
            while self.bot.repairs:
                self.run(self.bot.repair_next())
            self.run(self.bot.follow_events())
            self.run(self.bot.schedule())
            for chat in CHATS:
                for _ in range(100):
                    if not self.run(self.bot.step(chat, "accept")):
                        break
            self.check()
            if self._progress_mark() == mark:
                idle += 1
                assert idle <= 10, "the drain makes no progress"
                self.now += 3600  # the reconciler sees what is stuck, and every wait is over
                self.run(self.bot.reconcile())
            else:
                idle = 0
        for rid in self.requests:
            if rid in self.expired:
                continue
            head = self.observer.hgetall(schema.head_key(rid))
            assert RequestStatus(head["status"]) in REQUEST_FINAL, f"{rid} ended as {head['status']}"
            assert "closed_at" in head, f"{rid} ({head['status']}) was never closed"
            for index, raw in self.observer.hgetall(schema.states_key(rid)).items():
                state = TrackState.model_validate_json(raw)
                assert state.status in TRACK_FINAL, f"{rid}/{index} ended as {state.status}"
                if state.status == T.SENT:
                    assert (rid, int(index)) in self.telegram, f"{rid}/{index} recorded as sent, never delivered"
        assert not self.observer.zcard(schema.ACTIVE)
        assert not self.bot.delivery.views
        # Late runs may leave (empty) folders of closed requests: the sweeper's job, once they are old enough.
        orphan_age = self.bot_settings.orphan_minutes * 60
        self.work_area.sweep(set(), orphan_age, now=time.time() + orphan_age + 1)
        leftovers = list(self.work_area.root.iterdir()) if self.work_area.root.exists() else []
        assert not leftovers, f"left after the sweep: {leftovers}"
        self.check()

    def teardown(self) -> None:
        try:
            if sys.exc_info()[1] is None:  # a step failed already: report that, not the drain
                self.drain()
        finally:
            if self.bot_client is not None:
                self.run(self.bot_client.aclose())
            self.loop.close()
            shutil.rmtree(self.download_dir, ignore_errors=True)


# --- the tests ---------------------------------------------------------------------------------------
@pytest.fixture
def machine_env(redis_proc: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The machine's class settings: the private redis-server, a folder, the clock in the bot's modules."""
    client = redis.Redis(host=redis_proc.host, port=redis_proc.port, decode_responses=True, driver_info=DRIVER)
    monkeypatch.setattr(DeliveryMachine, "redis_host", redis_proc.host)
    monkeypatch.setattr(DeliveryMachine, "redis_port", redis_proc.port)
    monkeypatch.setattr(DeliveryMachine, "base_dir", tmp_path)
    monkeypatch.setattr(DeliveryMachine, "worker_client", client)
    monkeypatch.setattr(chat_sender, "time", MachineTime())
    monkeypatch.setattr(delivery, "time", MachineTime())
    yield
    client.flushdb()
    client.close()


def machine_settings(examples: int, steps: int = 50) -> settings:
    return settings(
        max_examples=examples,
        stateful_step_count=steps,
        deadline=None,
        # DELIVERY_DB=folder keeps failing examples between runs (a hunt shrinks on where it stopped)
        database=DirectoryBasedExampleDatabase(os.environ["DELIVERY_DB"]) if os.environ.get("DELIVERY_DB") else None,
        phases=(Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink),
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )


HUNTS = 3  # the examples are shared among this many tests, which parallel test processes run side by side


@pytest.mark.parametrize("hunt", range(HUNTS))
def test_delivery_under_random_interleavings(machine_env: None, hunt: int) -> None:
    """A longer hunt: DELIVERY_EXAMPLES=2000 DELIVERY_STEPS=100 (a few minutes; DELIVERY_DB=folder to keep what
    it finds)."""
    examples = max(1, int(os.environ.get("DELIVERY_EXAMPLES", "90")) // HUNTS)
    steps = int(os.environ.get("DELIVERY_STEPS", "80"))
    run_state_machine_as_test(DeliveryMachine, settings=machine_settings(examples, steps))


# --- found by the machine, step by step (fixed in bot/jobs.py: the state, not the answer, names the winner) ---
@contextlib.contextmanager
def scripted() -> Iterator[DeliveryMachine]:
    """The machine driven by hand: steps as a test writes them, every invariant checked at the end (and the
    drain run, unless the steps failed)."""
    machine = DeliveryMachine()
    try:
        yield machine
        machine.check()
    finally:
        machine.teardown()


def one_track_queued(machine: DeliveryMachine) -> Message:
    """A request of one track, resolved and queued: returns its track message (taken from the broker)."""
    machine.new_request([0], CHATS[0])
    machine._deliver(machine.broker.pop(0))
    machine.run(machine.bot.follow_events())
    machine.run(machine.bot.schedule())
    (msg,) = machine.broker
    machine.broker.clear()
    return msg


def test_a_run_whose_ready_answer_is_lost_keeps_its_file(machine_env: None) -> None:
    """Redis applies `ready`, then the connection drops and stays down beyond the client's retries: `ready` raises
    and `process` takes the run for a failure, but the state names the file in its folder, so the folder stays
    (the bot used to find no file and fail the track)."""
    with scripted() as machine:
        run = machine._begin(one_track_queued(machine))
        assert run is not None
        machine._fetch(run, None)
        machine.faults.armed[("worker", "ready")] = ("after", 0)
        machine._finish(run, None)
        machine.check()  # invariant 5: a ready track's file exists


def test_a_duplicate_run_does_not_take_the_winners_file_for_its_own(machine_env: None) -> None:
    """Runs A and B of one track (a redelivered message): B's `start` names B in the state. A finishes first; its
    `ready` is applied but the answer is lost, so redis-py runs the transaction again and it is refused. Judged
    by `attempt` (B), A took itself for the loser and removed the file Redis points to; judged by the path, A
    keeps it and B removes its own folder."""
    with scripted() as machine:
        msg = one_track_queued(machine)
        first, second = machine._begin(msg), machine._begin(msg)
        assert first is not None and second is not None
        machine._fetch(first, None)
        machine.faults.armed[("worker", "ready")] = ("rerun", 0)
        machine._finish(first, None)
        machine.check()  # invariant 5: a ready track's file exists


def one_cached_track_ready(machine: DeliveryMachine) -> str:
    """A request of one song Telegram knows by file_id: resolved, the track ready at once, seen by the bot."""
    machine.first_requests([([0], CHATS[0])], chaos=1, cached=[0])
    machine._deliver(machine.broker.pop(0))
    machine.run(machine.bot.follow_events())
    (rid,) = machine.requests
    return rid


def test_a_stale_copy_does_not_send_a_track_twice(machine_env: None) -> None:
    """Telegram refuses the cached file_id; `reupload` is applied but its answer is lost, so the bot's copy still
    says "ready" with the old file_id. Sending from that copy succeeded once Telegram knew the file again, and
    the track, fetched anew, was sent a second time; the claim before each audio finds it pending instead."""
    with scripted() as machine:
        one_cached_track_ready(machine)
        machine.faults.armed[("bot", "reupload")] = ("after", 0)
        for _ in range(4):  # the progress message, then the cached audio: refused
            if ("bot", "reupload") in machine.faults.armed:
                machine.run(machine.bot.step(CHATS[0], "refuse"))
        machine.run(machine.bot.step(CHATS[0], "accept"))
        assert machine.faults.fired == [("bot", "reupload", "after")]
        machine.check()  # the drain fetches and sends it: invariant 1, once


def test_a_restart_between_an_audio_and_its_record_does_not_send_it_again(machine_env: None) -> None:
    """Telegram accepts the audio, Redis misses `sent` and the bot restarts before it can record it: the new bot
    finds the track claimed by nobody and fails it (it may have arrived) instead of sending it again."""
    with scripted() as machine:
        rid = one_cached_track_ready(machine)
        machine.faults.armed[("bot", "sent")] = ("before", 0)
        for _ in range(4):  # the progress message, then the audio
            if not machine.telegram:
                machine.run(machine.bot.step(CHATS[0], "accept"))
        assert machine.telegram == [(rid, 0)] and machine.bot.unrecorded
        machine.bot = machine._new_bot()
        machine.run(machine.bot.follow_events())  # the new bot loads the open requests
        machine.run(machine.bot.step(CHATS[0], "accept"))
        state = TrackState.model_validate_json(machine.observer.hget(schema.states_key(rid), "0") or "{}")
        assert state.status == T.FAILED and state.reason and "interrupted" in state.reason
        assert machine.telegram == [(rid, 0)]
