"""WorkerStore (sync, the workers' side) and RequestStore (asyncio, the bot's side) on one Redis.

Every test runs twice: on a private real Redis (pytest-redis) and on fakeredis, where the sync and the asyncio
client share one FakeServer, as the bot and its workers share one Redis in production.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import fakeredis
import pytest
import redis
import redis.asyncio as aioredis
from pytest_redis import factories

from bot import schema
from bot.lifecycle import RequestStatus, TrackStatus, track_target
from bot.request_store import Event, RequestStore
from bot.requests import RequestMeta, RequestSnapshot, Resolution, TrackState
from bot.worker_store import WorkerStore
from pipeline.models import SkippedItem, Track

decoded_redisdb = factories.redisdb("redis_proc", decode=True)  # flushed after each test

V = TypeVar("V")
T = TrackStatus
R = RequestStatus

RID, OTHER, THIRD = "0123456789ab", "ba9876543210", "aaaabbbbcccc"
FINISHED_TTL = 3600
AUDIO = "mp3-V2"


def ticket() -> str:
    """A fresh queue ticket, as the scheduler makes one per queue/requeue."""
    return uuid.uuid4().hex


class Clock:
    """A clock that moves only when told to (shared by both stores)."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Stores:
    """The bot's and a worker's view of one Redis, plus a sync client to look at the keys."""

    worker: WorkerStore
    bot: RequestStore
    redis: redis.Redis
    clock: Clock
    runner: asyncio.Runner

    def run(self, coroutine: Coroutine[Any, Any, V]) -> V:
        return self.runner.run(coroutine)

    def ttl(self, name: str) -> int:
        return int(self.redis.ttl(name))

    def keys(self) -> list[str]:
        return sorted(self.redis.scan_iter(match=f"{schema.PREFIX}:*"))

    def event_count(self) -> int:
        return int(self.redis.xlen(schema.EVENTS))

    def events_since(self, position: str) -> tuple[str, list[Event]]:
        return self.run(self.bot.events(position, 10))

    def load(self, rid: str = RID) -> RequestSnapshot:
        snapshot = self.run(self.bot.load(rid))
        assert snapshot is not None
        return snapshot

    def statuses(self, rid: str = RID) -> list[TrackStatus]:
        return [state.status for state in self.load(rid).states]


@pytest.fixture
def runner() -> Iterator[asyncio.Runner]:
    with asyncio.Runner() as runner:
        yield runner


@pytest.fixture(params=["redis", "fakeredis"])
def stores(request: pytest.FixtureRequest, runner: asyncio.Runner) -> Iterator[Stores]:
    if request.param == "redis":
        sync: redis.Redis = request.getfixturevalue("decoded_redisdb")
        proc = request.getfixturevalue("redis_proc")
        aio: aioredis.Redis = aioredis.Redis(host=proc.host, port=proc.port, decode_responses=True)
    else:
        server = fakeredis.FakeServer()
        sync = fakeredis.FakeRedis(server=server, decode_responses=True)
        aio = fakeredis.FakeAsyncRedis(server=server, decode_responses=True)
    clock = Clock()
    yield Stores(
        worker=WorkerStore(sync, clock=clock),
        bot=RequestStore(aio, finished_ttl=FINISHED_TTL, clock=clock),
        redis=sync,
        clock=clock,
        runner=runner,
    )
    runner.run(aio.aclose())
    if request.param == "fakeredis":
        sync.close()


# --- builders --------------------------------------------------------------------------------------


def meta(rid: str = RID, *, chat_id: int = 10, user_id: int = 20, created_at: float = 1_699_999_000.0) -> RequestMeta:
    return RequestMeta(
        id=rid,
        chat_id=chat_id,
        user_id=user_id,
        link="https://open.spotify.com/album/2noRn2Aes5aoNVsU6iWThc",
        created_at=created_at,
        reply_to=77,
        thread_id=5,
    )


def tracks(count: int) -> list[Track]:
    return [
        Track(
            spotify_id=f"{i:022d}",
            title=f"Song {i}",
            artists=["Daft Punk", "Romanthony"],
            album="Discovery",
            duration_ms=320_000 + i,
            track_number=i + 1,
            track_total=count,
        )
        for i in range(count)
    ]


def resolution(total: int) -> Resolution:
    return Resolution(
        kind="playlist",
        name="Mix",
        owner="someone",
        total=total,
        available=total + 2,
        skipped=[SkippedItem(title="Episode 1", reason="podcast episodes aren't supported")],
    )


def create(stores: Stores, rid: str = RID, **fields: Any) -> RequestMeta:
    request = meta(rid, **fields)
    stores.run(stores.bot.create(request, progress_message_id=None, progress_text=""))
    return request


def running(stores: Stores, rid: str = RID, count: int = 3, states: list[TrackState] | None = None) -> RequestMeta:
    """A request whose link was read: `count` tracks (pending unless `states` says otherwise)."""
    request = create(stores, rid)
    states = states if states is not None else [TrackState() for _ in range(count)]
    assert stores.worker.resolved(rid, resolution(len(states)), tracks(len(states)), states)
    return request


def request_in(stores: Stores, status: RequestStatus) -> None:
    """A request (without tracks) brought to `status` through the stores' own transitions."""
    create(stores)
    if status in (R.RUNNING, R.DONE, R.CANCELLED):
        assert stores.worker.resolved(RID, resolution(0), [], [])
    if status == R.DONE:
        assert stores.run(stores.bot.finish(RID))
    elif status == R.FAILED:
        assert stores.worker.reject(RID, "not found")
    elif status == R.CANCELLED:
        assert stores.run(stores.bot.cancel(RID))
    assert stores.load().status == status


# --- the track transitions, one per store method --------------------------------------------------

Action = Callable[[Stores, str, int], TrackState | None]

ACTIONS: dict[str, tuple[str, Action]] = {  # name → (event of the table, call)
    "bot.queue": ("queue", lambda s, rid, i: s.run(s.bot.queue(rid, i, ticket()))),
    "bot.requeue": ("requeue", lambda s, rid, i: s.run(s.bot.requeue(rid, i, ticket()))),
    "worker.start": ("start", lambda s, rid, i: s.worker.start(rid, i, "attempt-x")),
    "worker.retry": ("retry", lambda s, rid, i: s.worker.retry(rid, i, "rate-limited", retry_at=s.clock.now + 60)),
    "worker.ready": ("ready", lambda s, rid, i: s.worker.ready(rid, i, path="/dl/a.mp3", size_bytes=7_000_000)),
    "bot.sent": ("sent", lambda s, rid, i: s.run(s.bot.sent(rid, i, "FILE-ID"))),
    "bot.reupload": ("reupload", lambda s, rid, i: s.run(s.bot.reupload(rid, i))),
    "worker.fail": ("fail", lambda s, rid, i: s.worker.fail(rid, i, "no confident match")),
    "bot.fail": ("fail", lambda s, rid, i: s.run(s.bot.fail(rid, i, "Telegram refused the file"))),
    "worker.cancel": ("cancel", lambda s, rid, i: s.worker.cancel(rid, i)),
}

PATHS: dict[TrackStatus, list[str]] = {  # how a pending track reaches each status
    T.PENDING: [],
    T.QUEUED: ["bot.queue"],
    T.RUNNING: ["bot.queue", "worker.start"],
    T.RETRYING: ["bot.queue", "worker.start", "worker.retry"],
    T.READY: ["bot.queue", "worker.start", "worker.ready"],
    T.SENT: ["bot.queue", "worker.start", "worker.ready", "bot.sent"],
    T.FAILED: ["bot.queue", "worker.fail"],
    T.CANCELLED: ["worker.cancel"],
}


def act(stores: Stores, name: str, index: int = 0, rid: str = RID) -> TrackState | None:
    return ACTIONS[name][1](stores, rid, index)


def drive(stores: Stores, status: TrackStatus, index: int = 0, rid: str = RID) -> TrackState:
    for name in PATHS[status]:
        assert act(stores, name, index, rid) is not None, name
    state = stores.worker.state(rid, index)
    assert state is not None
    assert state.status == status
    return state


# --- create and load -------------------------------------------------------------------------------


def test_create_then_load_round_trip(stores: Stores) -> None:
    request = meta()
    stores.run(stores.bot.create(request, progress_message_id=555, progress_text="🔎 Reading…"))
    snapshot = stores.load()
    assert snapshot.meta == request
    assert snapshot.meta.thread_id == 5
    assert snapshot.status == R.RESOLVING
    assert (snapshot.resolution, snapshot.tracks, snapshot.states) == (None, [], [])
    assert snapshot.progress_message_id == 555
    assert (snapshot.progress_text, snapshot.progress_at) == ("🔎 Reading…", stores.clock.now)
    assert (snapshot.next_send, snapshot.resolve_attempts, snapshot.resolve_at, snapshot.closed) == (0, 1, None, False)
    assert stores.run(stores.bot.progress_memo(RID)) == ("🔎 Reading…", stores.clock.now)
    assert stores.run(stores.bot.meta(RID)) == request
    assert stores.worker.meta(RID) == request
    assert stores.worker.request_status(RID) == R.RESOLVING
    assert not stores.worker.cancelled(RID)


def test_create_without_a_progress_message(stores: Stores) -> None:
    create(stores)
    assert stores.load().progress_message_id is None
    assert stores.run(stores.bot.progress_memo(RID)) == (None, 0.0)


def test_open_requests_are_indexed_per_chat_and_user_in_the_order_shared(stores: Stores) -> None:
    create(stores, OTHER, chat_id=1, user_id=100, created_at=2.0)
    create(stores, RID, chat_id=1, user_id=200, created_at=1.0)
    create(stores, THIRD, chat_id=2, user_id=100, created_at=3.0)
    assert stores.run(stores.bot.active()) == [RID, OTHER, THIRD]
    assert stores.run(stores.bot.chat_active(1)) == [RID, OTHER]
    assert stores.run(stores.bot.chat_active(2)) == [THIRD]
    assert stores.run(stores.bot.chat_active(3)) == []
    assert stores.run(stores.bot.user_active(100)) == 2
    assert stores.run(stores.bot.user_active(200)) == 1
    assert stores.run(stores.bot.user_active(300)) == 0


def test_an_unknown_request_reads_as_nothing_and_creates_no_key(stores: Stores) -> None:
    assert stores.run(stores.bot.load(RID)) is None
    assert stores.run(stores.bot.meta(RID)) is None
    assert stores.run(stores.bot.state(RID, 0)) is None
    assert stores.run(stores.bot.progress_memo(RID)) == (None, 0.0)
    assert stores.worker.meta(RID) is None
    assert stores.worker.request_status(RID) is None
    assert stores.worker.track(RID, 0) is None
    assert stores.worker.state(RID, 0) is None
    assert stores.worker.cancelled(RID)  # expired: the worker stops
    assert stores.keys() == []


# --- resolving -------------------------------------------------------------------------------------


def test_resolved_stores_the_tracks_and_runs_the_request(stores: Stores) -> None:
    create(stores)
    items = tracks(3)
    cached = TrackState(status=T.READY, file_id="CACHED", title="Song 2")  # found in the upload cache
    states = [TrackState(), TrackState(), cached]
    assert stores.worker.resolved(RID, resolution(3), items, states)
    snapshot = stores.load()
    assert snapshot.status == R.RUNNING
    assert snapshot.resolution == resolution(3)
    assert (snapshot.tracks, snapshot.states, snapshot.total) == (items, states, 3)
    assert stores.worker.request_status(RID) == R.RUNNING
    assert stores.worker.track(RID, 1) == items[1]
    assert stores.worker.state(RID, 2) == cached
    assert stores.worker.track(RID, 3) is None
    for name in schema.request_keys(RID):
        assert schema.ACTIVE_TTL - 60 < stores.ttl(name) <= schema.ACTIVE_TTL


def test_resolved_only_once(stores: Stores) -> None:
    running(stores, count=2)
    assert not stores.worker.resolved(RID, resolution(1), tracks(1), [TrackState(status=T.FAILED)])
    snapshot = stores.load()
    assert snapshot.total == 2
    assert snapshot.states == [TrackState(), TrackState()]


def test_many_tracks_keep_their_order(stores: Stores) -> None:
    """More than ten tracks: the hash fields "10" and "2" must not be read in text order."""
    running(stores, count=120)
    assert [track.title for track in stores.load().tracks] == [f"Song {i}" for i in range(120)]


def test_resolved_without_tracks_is_settled_at_once(stores: Stores) -> None:
    create(stores)
    assert stores.worker.resolved(RID, resolution(0), [], [])
    snapshot = stores.load()
    assert (snapshot.status, snapshot.tracks, snapshot.states) == (R.RUNNING, [], [])
    assert snapshot.settled


def test_a_late_resolver_cannot_revive_a_cancelled_request(stores: Stores) -> None:
    """Cancelled while Spotify was read: the resolver's answer is dropped, no key comes back, no TTL moves."""
    create(stores)
    stores.redis.expire(schema.head_key(RID), 500)  # a TTL the resolver would visibly reset
    assert stores.run(stores.bot.cancel(RID))
    events = stores.event_count()
    assert not stores.worker.resolved(RID, resolution(2), tracks(2), [TrackState(), TrackState()])
    assert stores.worker.request_status(RID) == R.CANCELLED
    assert stores.redis.exists(schema.tracks_key(RID), schema.states_key(RID)) == 0
    assert 0 < stores.ttl(schema.head_key(RID)) <= 500
    assert stores.event_count() == events


def test_a_resolver_cannot_revive_an_expired_request(stores: Stores) -> None:
    assert not stores.worker.resolved(RID, resolution(1), tracks(1), [TrackState()])
    assert not stores.worker.reject(RID, "not found")
    stores.worker.delay_resolve(RID, stores.clock.now + 30)
    assert stores.keys() == []


def test_reject_fails_a_request_that_is_still_resolving(stores: Stores) -> None:
    create(stores)
    assert stores.worker.reject(RID, "not found on Spotify")
    snapshot = stores.load()
    assert (snapshot.status, snapshot.error) == (R.FAILED, "not found on Spotify")
    assert snapshot.settled
    assert not stores.worker.reject(RID, "again")
    assert not stores.worker.resolved(RID, resolution(1), tracks(1), [TrackState()])
    assert stores.load().error == "not found on Spotify"


def test_the_bot_rejects_only_while_resolving(stores: Stores) -> None:
    create(stores, OTHER)
    assert stores.run(stores.bot.reject(OTHER, "the queue is down"))
    assert stores.load(OTHER).status == R.FAILED
    running(stores)
    assert not stores.run(stores.bot.reject(RID, "too late"))
    assert stores.load().status == R.RUNNING
    assert not stores.run(stores.bot.reject(THIRD, "unknown"))


def test_delay_resolve_is_shown_only_while_resolving(stores: Stores) -> None:
    create(stores)
    stores.worker.delay_resolve(RID, stores.clock.now + 30)
    assert stores.load().retry_at == stores.clock.now + 30
    running(stores, OTHER)
    events = stores.event_count()
    stores.worker.delay_resolve(OTHER, stores.clock.now + 30)
    assert stores.load(OTHER).retry_at is None
    assert stores.event_count() == events


def test_redrive_resolve_counts_the_messages(stores: Stores) -> None:
    create(stores)
    stores.clock.advance(100)
    assert stores.run(stores.bot.redrive_resolve(RID)) == 2
    assert stores.run(stores.bot.redrive_resolve(RID)) == 3
    snapshot = stores.load()
    assert (snapshot.resolve_attempts, snapshot.resolve_at) == (3, stores.clock.now)


# --- track transitions ------------------------------------------------------------------------------


@pytest.mark.parametrize("status", list(TrackStatus))
@pytest.mark.parametrize("action", list(ACTIONS))
def test_each_track_method_follows_the_table(stores: Stores, action: str, status: TrackStatus) -> None:
    """Allowed: the new state is stored with version + 1 and announced once. Refused: nothing changes."""
    running(stores, count=2)
    before = drive(stores, status)
    stores.clock.advance(5)
    position, events = stores.run(stores.bot.last_event_id()), stores.event_count()
    target = track_target(ACTIONS[action][0], status)
    new = act(stores, action)
    if target is None:
        assert new is None
        assert stores.worker.state(RID, 0) == before
        assert stores.event_count() == events
        assert stores.events_since(position)[1] == []
    else:
        assert new is not None
        assert (new.status, new.version, new.changed_at) == (target, before.version + 1, stores.clock.now)
        assert stores.worker.state(RID, 0) == new
        assert stores.events_since(position)[1] == [(RID, "0", new.model_dump_json())]
    assert stores.worker.state(RID, 1) == TrackState()  # the other track is untouched


@pytest.mark.parametrize("action", list(ACTIONS))
def test_track_methods_refuse_unknown_tracks_and_requests(stores: Stores, action: str) -> None:
    running(stores, count=1)
    events = stores.event_count()
    assert act(stores, action, index=1) is None
    assert act(stores, action, rid=OTHER) is None
    assert stores.event_count() == events
    assert stores.redis.exists(*schema.request_keys(OTHER)) == 0


def test_start_counts_attempts_and_names_the_run(stores: Stores) -> None:
    running(stores, count=1)
    stores.run(stores.bot.queue(RID, 0, ticket()))
    first = stores.worker.start(RID, 0, "a1")
    assert first is not None
    assert (first.status, first.attempt, first.attempts, first.started_at) == (T.RUNNING, "a1", 1, stores.clock.now)
    retrying = stores.worker.retry(RID, 0, "rate-limited", retry_at=stores.clock.now + 60)
    assert retrying is not None
    assert (retrying.reason, retrying.retry_at) == ("rate-limited", stores.clock.now + 60)
    stores.clock.advance(60)
    second = stores.worker.start(RID, 0, "a2")
    assert second is not None
    assert (second.attempt, second.attempts, second.started_at, second.retry_at) == ("a2", 2, stores.clock.now, None)
    redelivered = stores.worker.start(RID, 0, "a3")  # the message came again while it ran
    assert redelivered is not None
    assert (redelivered.attempt, redelivered.attempts, redelivered.version) == ("a3", 3, second.version + 1)


def test_a_queue_whose_answer_was_lost_is_confirmed_by_its_ticket(stores: Stores) -> None:
    """Redis applied the transition but the answer was lost (a timeout): asked again with the same ticket, the
    store says it is done, so the bot still sends the message; another ticket is refused."""
    running(stores, count=1)
    first = stores.run(stores.bot.queue(RID, 0, "lost-answer"))
    assert first is not None
    again = stores.run(stores.bot.queue(RID, 0, "lost-answer"))
    assert again is not None and again.status == T.QUEUED and again.version == first.version
    assert stores.run(stores.bot.queue(RID, 0, ticket())) is None


def test_requeue_forgets_the_run_but_not_the_count(stores: Stores) -> None:
    running(stores, count=1)
    drive(stores, T.RUNNING)
    stores.clock.advance(900)
    new = stores.run(stores.bot.requeue(RID, 0, ticket()))
    assert new is not None
    assert (new.status, new.attempt, new.attempts, new.queued_at) == (T.QUEUED, None, 1, stores.clock.now)


def test_a_duplicate_run_cannot_finish_twice(stores: Stores) -> None:
    running(stores, count=1)
    drive(stores, T.RUNNING)
    first = stores.worker.ready(RID, 0, path="/dl/first.mp3")
    assert first is not None
    assert (first.status, first.path, first.finished_at) == (T.READY, "/dl/first.mp3", stores.clock.now)
    assert stores.worker.ready(RID, 0, path="/dl/second.mp3") is None
    assert stores.worker.state(RID, 0) == first


def test_sent_only_after_ready_and_it_forgets_the_file(stores: Stores) -> None:
    running(stores, count=1)
    drive(stores, T.RUNNING)
    assert stores.run(stores.bot.sent(RID, 0, "F1")) is None
    stores.worker.ready(RID, 0, path="/dl/a.mp3", thumb_path="/dl/a.jpg")
    sent = stores.run(stores.bot.sent(RID, 0, "F1"))
    assert sent is not None
    assert (sent.status, sent.file_id, sent.path, sent.thumb_path) == (T.SENT, "F1", None, None)
    assert stores.worker.fail(RID, 0, "a late duplicate gave up") is None
    assert stores.worker.state(RID, 0) == sent


def test_reupload_sends_a_cached_track_back_to_pending(stores: Stores) -> None:
    """Telegram forgot the cached file_id: the track is fetched again like a new one."""
    running(stores, states=[TrackState(status=T.READY, file_id="STALE", title="Song 0")])
    new = stores.run(stores.bot.reupload(RID, 0))
    assert new is not None
    assert (new.status, new.file_id, new.title) == (T.PENDING, None, "Song 0")
    assert stores.run(stores.bot.reupload(RID, 0)) is None
    assert stores.run(stores.bot.queue(RID, 0, ticket())) is not None


def test_fail_keeps_the_reason_and_the_time(stores: Stores) -> None:
    running(stores, count=2)
    drive(stores, T.RUNNING, 0)
    drive(stores, T.READY, 1)
    failed = stores.worker.fail(RID, 0, "no confident match")
    refused = stores.run(stores.bot.fail(RID, 1, "file too big for Telegram"))
    assert failed is not None
    assert refused is not None
    assert (failed.status, failed.reason, failed.finished_at) == (T.FAILED, "no confident match", stores.clock.now)
    assert (refused.status, refused.reason) == (T.FAILED, "file too big for Telegram")


def test_racing_duplicate_runs_only_one_finishes(stores: Stores) -> None:
    running(stores, count=1)
    drive(stores, T.RUNNING)
    results: list[TrackState | None] = []
    lock = threading.Lock()

    def finish(n: int) -> None:
        new = stores.worker.ready(RID, 0, path=f"/dl/{n}.mp3")
        with lock:
            results.append(new)

    run_together([lambda n=n: finish(n) for n in range(8)])
    winners = [state for state in results if state is not None]
    assert len(winners) == 1
    assert stores.worker.state(RID, 0) == winners[0]


def test_concurrent_workers_of_different_tracks_lose_no_change(stores: Stores) -> None:
    """WATCH covers the whole states hash: writers of different tracks make each other retry, never overwrite."""
    count, rounds = 8, 10
    running(stores, count=count)
    for index in range(count):
        stores.run(stores.bot.queue(RID, index, ticket()))

    def work(index: int) -> None:
        for n in range(rounds):
            assert stores.worker.start(RID, index, f"a{n}") is not None
            assert stores.worker.retry(RID, index, f"try {n}") is not None
        assert stores.worker.start(RID, index, "last") is not None
        assert stores.worker.ready(RID, index, size_bytes=index) is not None

    run_together([lambda i=i: work(i) for i in range(count)])
    states = stores.load().states
    assert [(s.status, s.size_bytes, s.attempts, s.version) for s in states] == [
        (T.READY, index, rounds + 1, 2 * rounds + 3) for index in range(count)
    ]


def run_together(jobs: list[Callable[[], None]]) -> None:
    start = threading.Barrier(len(jobs))
    errors: list[BaseException] = []

    def run(job: Callable[[], None]) -> None:
        try:
            start.wait()
            job()
        except BaseException as error:  # surfaced in the test thread below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []


# --- cancel, finish, close ---------------------------------------------------------------------------

MIXED = [T.PENDING, T.QUEUED, T.RUNNING, T.RETRYING, T.READY, T.SENT, T.FAILED]


def test_cancel_stops_every_unfinished_track_but_keeps_the_finished_ones(stores: Stores) -> None:
    running(stores, count=len(MIXED))
    before = [drive(stores, status, index) for index, status in enumerate(MIXED)]
    assert stores.run(stores.bot.cancel(RID))
    after = stores.load()
    assert after.status == R.CANCELLED
    assert [s.status for s in after.states] == [T.CANCELLED] * 5 + [T.SENT, T.FAILED]
    assert [s.version for s in after.states] == [b.version + 1 for b in before[:5]] + [b.version for b in before[5:]]
    assert after.states[5:] == before[5:]
    assert stores.worker.cancelled(RID)


def test_cancel_twice_is_refused_the_second_time(stores: Stores) -> None:
    running(stores, count=2)
    assert stores.run(stores.bot.cancel(RID))
    snapshot, events = stores.load(), stores.event_count()
    assert not stores.run(stores.bot.cancel(RID))
    assert stores.load() == snapshot
    assert stores.event_count() == events


def test_cancel_while_resolving(stores: Stores) -> None:
    create(stores)
    assert stores.run(stores.bot.cancel(RID))
    assert stores.load().status == R.CANCELLED
    assert stores.worker.cancelled(RID)


def test_a_cancelled_track_takes_no_more_work(stores: Stores) -> None:
    running(stores, count=1)
    drive(stores, T.RUNNING)
    stores.run(stores.bot.cancel(RID))
    assert stores.worker.start(RID, 0, "late") is None
    assert stores.worker.ready(RID, 0, path="/dl/late.mp3") is None
    assert stores.worker.state(RID, 0).status == T.CANCELLED  # type: ignore[union-attr]


@pytest.mark.parametrize("final", [R.DONE, R.FAILED, R.CANCELLED])
def test_a_final_request_cannot_be_cancelled(stores: Stores, final: RequestStatus) -> None:
    request_in(stores, final)
    assert not stores.run(stores.bot.cancel(RID))
    assert stores.load().status == final
    assert not stores.run(stores.bot.cancel(OTHER))  # unknown


@pytest.mark.parametrize("status", list(RequestStatus))
def test_finish_only_from_running(stores: Stores, status: RequestStatus) -> None:
    request_in(stores, status)
    allowed = status == R.RUNNING
    assert stores.run(stores.bot.finish(RID)) is allowed
    assert stores.load().status == (R.DONE if allowed else status)


def test_close_stops_indexing_and_keeps_the_state_for_the_finished_ttl(stores: Stores) -> None:
    closing = running(stores, RID, count=2)
    running(stores, OTHER, count=2)
    stores.run(stores.bot.finish(RID))
    stores.run(stores.bot.close(closing))
    assert stores.run(stores.bot.active()) == [OTHER]
    assert stores.run(stores.bot.chat_active(10)) == [OTHER]
    assert stores.run(stores.bot.user_active(20)) == 1
    for name in schema.request_keys(RID):
        assert FINISHED_TTL - 60 < stores.ttl(name) <= FINISHED_TTL
    for name in schema.request_keys(OTHER):
        assert stores.ttl(name) > FINISHED_TTL
    snapshot = stores.load()
    assert (snapshot.closed, snapshot.status) == (True, R.DONE)
    assert not stores.load(OTHER).closed


def test_closing_the_last_request_leaves_no_empty_index(stores: Stores) -> None:
    request = create(stores)
    stores.worker.reject(RID, "not found")
    stores.run(stores.bot.close(request))
    assert stores.redis.exists(schema.ACTIVE, schema.chat_key(10), schema.user_key(20)) == 0
    assert FINISHED_TTL - 60 < stores.ttl(schema.head_key(RID)) <= FINISHED_TTL


def test_forget_drops_an_expired_request(stores: Stores) -> None:
    create(stores)
    create(stores, OTHER, created_at=1_699_999_001.0)
    stores.redis.delete(*schema.request_keys(RID))  # its keys expired
    stores.run(stores.bot.forget(RID))
    assert stores.run(stores.bot.active()) == [OTHER]


def test_migrate_chat_moves_the_chat_index(stores: Stores) -> None:
    old = running(stores)
    create(stores, OTHER)
    moved = stores.run(stores.bot.migrate_chat(old, -100_123))
    assert moved == old.model_copy(update={"chat_id": -100_123})
    assert stores.load().meta == moved
    assert stores.worker.meta(RID) == moved
    assert stores.run(stores.bot.chat_active(10)) == [OTHER]
    assert stores.run(stores.bot.chat_active(-100_123)) == [RID]
    assert stores.run(stores.bot.active()) == [RID, OTHER]
    assert stores.ttl(schema.chat_key(-100_123)) > 0
    stores.run(stores.bot.close(moved))
    assert stores.run(stores.bot.chat_active(-100_123)) == []


# --- bookkeeping -----------------------------------------------------------------------------------


def test_delivery_pointer_and_progress_memo(stores: Stores) -> None:
    running(stores)
    stores.run(stores.bot.set_next_send(RID, 2))
    stores.run(stores.bot.set_progress_message(RID, 1234))
    stores.run(stores.bot.set_progress_memo(RID, "▓▓░░ 2/4", 1_700_000_123.25))
    snapshot = stores.load()
    assert (snapshot.next_send, snapshot.progress_message_id) == (2, 1234)
    assert (snapshot.progress_text, snapshot.progress_at) == ("▓▓░░ 2/4", 1_700_000_123.25)
    assert stores.run(stores.bot.progress_memo(RID)) == ("▓▓░░ 2/4", 1_700_000_123.25)
    stores.run(stores.bot.set_progress_message(RID, None))
    assert stores.load().progress_message_id is None


def test_upload_cache_round_trip(stores: Stores) -> None:
    upload = {"file_id": "CQACAgIAAxkB", "title": "One More Time", "performer": "Daft Punk", "duration_s": 320.4}
    assert stores.worker.cached_upload(AUDIO, "0DiWol3AO6WpXZgp0goxAV") is None
    stores.run(stores.bot.remember_upload(AUDIO, "0DiWol3AO6WpXZgp0goxAV", upload))
    assert stores.worker.cached_upload(AUDIO, "0DiWol3AO6WpXZgp0goxAV") == upload
    assert stores.worker.cached_upload("mp3-192k", "0DiWol3AO6WpXZgp0goxAV") is None  # other audio settings
    assert stores.worker.cached_upload(AUDIO, "other") is None
    name = schema.cache_key(AUDIO, "0DiWol3AO6WpXZgp0goxAV")
    assert schema.CACHE_TTL - 60 < stores.ttl(name) <= schema.CACHE_TTL
    stores.run(stores.bot.drop_upload(AUDIO, "0DiWol3AO6WpXZgp0goxAV"))
    assert stores.worker.cached_upload(AUDIO, "0DiWol3AO6WpXZgp0goxAV") is None
    stores.run(stores.bot.drop_upload(AUDIO, "0DiWol3AO6WpXZgp0goxAV"))  # dropping twice is fine


def test_the_upload_cache_outlives_the_request(stores: Stores) -> None:
    request = running(stores)
    stores.run(stores.bot.remember_upload(AUDIO, "abc", {"file_id": "F"}))
    stores.run(stores.bot.cancel(RID))
    stores.run(stores.bot.close(request))
    assert stores.worker.cached_upload(AUDIO, "abc") == {"file_id": "F"}


# --- events ----------------------------------------------------------------------------------------


def request_event(rid: str, status: RequestStatus) -> Event:
    return (rid, schema.REQUEST_EVENT, str(status))


def track_event(rid: str, index: int, state: TrackState | None) -> Event:
    assert state is not None
    return (rid, str(index), state.model_dump_json())


def test_every_transition_appends_exactly_one_event(stores: Stores) -> None:
    """The bot wakes on these: each step below must show up once, in order, and nothing else."""
    s, bot, worker = stores, stores.bot, stores.worker
    position = s.run(bot.last_event_id())
    assert position == "0-0"

    def expect(event: Event) -> None:
        """Called right after the step: the events since the previous step are exactly `event`."""
        nonlocal position
        position, events = s.events_since(position)
        assert events == [event]

    create(s)
    expect(request_event(RID, R.RESOLVING))
    worker.delay_resolve(RID, s.clock.now + 5)
    expect(request_event(RID, R.RESOLVING))
    worker.resolved(RID, resolution(3), tracks(3), [TrackState()] * 3)
    expect(request_event(RID, R.RUNNING))
    expect(track_event(RID, 0, s.run(bot.queue(RID, 0, ticket()))))
    expect(track_event(RID, 0, worker.start(RID, 0, "a1")))
    expect(track_event(RID, 0, worker.retry(RID, 0, "busy")))
    expect(track_event(RID, 0, worker.start(RID, 0, "a2")))
    expect(track_event(RID, 0, worker.ready(RID, 0, path="/dl/a.mp3")))
    expect(track_event(RID, 0, s.run(bot.reupload(RID, 0))))
    expect(track_event(RID, 1, s.run(bot.queue(RID, 1, ticket()))))
    expect(track_event(RID, 1, s.run(bot.requeue(RID, 1, ticket()))))
    expect(track_event(RID, 1, worker.fail(RID, 1, "no match")))
    expect(track_event(RID, 2, s.run(bot.queue(RID, 2, ticket()))))
    expect(track_event(RID, 2, worker.start(RID, 2, "a1")))
    expect(track_event(RID, 2, worker.ready(RID, 2, path="/dl/c.mp3")))
    expect(track_event(RID, 2, s.run(bot.sent(RID, 2, "F"))))
    expect(track_event(RID, 0, worker.cancel(RID, 0)))
    s.run(bot.finish(RID))
    expect(request_event(RID, R.DONE))
    create(s, OTHER)
    expect(request_event(OTHER, R.RESOLVING))
    s.run(bot.cancel(OTHER))
    expect(request_event(OTHER, R.CANCELLED))
    create(s, THIRD)
    expect(request_event(THIRD, R.RESOLVING))
    worker.reject(THIRD, "not found")
    expect(request_event(THIRD, R.FAILED))


def test_the_bot_fail_and_reject_are_announced(stores: Stores) -> None:
    running(stores, count=1)
    create(stores, OTHER)
    position = stores.run(stores.bot.last_event_id())
    drive(stores, T.READY)
    position, _ = stores.events_since(position)
    failed = stores.run(stores.bot.fail(RID, 0, "too big"))
    assert stores.run(stores.bot.reject(OTHER, "queue down"))
    assert stores.events_since(position)[1] == [track_event(RID, 0, failed), request_event(OTHER, R.FAILED)]


def test_a_request_cancel_is_one_event(stores: Stores) -> None:
    """Cancelling a request changes its tracks too, in one transaction and one event: the bot re-reads it."""
    running(stores, count=4)
    position = stores.run(stores.bot.last_event_id())
    stores.run(stores.bot.cancel(RID))
    assert stores.events_since(position)[1] == [request_event(RID, R.CANCELLED)]


def test_refusals_and_bookkeeping_are_not_announced(stores: Stores) -> None:
    request = running(stores, count=1)
    drive(stores, T.SENT)
    position = stores.run(stores.bot.last_event_id())
    stores.run(stores.bot.set_next_send(RID, 1))
    stores.run(stores.bot.set_progress_message(RID, 5))
    stores.run(stores.bot.set_progress_memo(RID, "text", 1.0))
    stores.run(stores.bot.remember_upload(AUDIO, "x", {"file_id": "F"}))
    stores.worker.heartbeat("w1", 4)
    for name in ACTIONS:
        assert act(stores, name) is None  # sent is final
    assert not stores.run(stores.bot.reject(RID, "x"))
    assert not stores.worker.resolved(RID, resolution(0), [], [])
    moved = stores.run(stores.bot.migrate_chat(request, 11))
    stores.run(stores.bot.finish(RID))
    position, _ = stores.events_since(position)  # the finish
    stores.run(stores.bot.close(moved))
    assert stores.events_since(position) == (position, [])


def test_last_event_id_then_events_sees_only_later_events(stores: Stores) -> None:
    create(stores)
    running(stores, OTHER)
    position = stores.run(stores.bot.last_event_id())
    assert position != "0-0"
    assert stores.events_since(position) == (position, [])  # nothing new: the position stays
    assert stores.run(stores.bot.cancel(RID))
    new_position, events = stores.events_since(position)
    assert events == [request_event(RID, R.CANCELLED)]
    assert new_position == stores.run(stores.bot.last_event_id())
    assert stores.events_since(new_position) == (new_position, [])


def test_events_from_the_start_replay_everything(stores: Stores) -> None:
    create(stores)
    create(stores, OTHER)
    assert stores.events_since("0-0")[1] == [request_event(RID, R.RESOLVING), request_event(OTHER, R.RESOLVING)]


# --- workers ---------------------------------------------------------------------------------------


def test_worker_threads_counts_only_live_workers(stores: Stores) -> None:
    start = stores.clock.now
    assert stores.run(stores.bot.worker_threads(start, 30)) == 0
    stores.worker.heartbeat("w1", 4)
    stores.clock.advance(20)
    stores.worker.heartbeat("w2", 2)
    assert stores.run(stores.bot.worker_threads(start + 20, 30)) == 6
    assert stores.run(stores.bot.worker_threads(start + 30, 30)) == 6  # seen exactly 30 s ago still counts
    assert stores.run(stores.bot.worker_threads(start + 31, 30)) == 2  # w1 is stale
    stores.worker.heartbeat("w2", 3)  # a new heartbeat replaces the old count
    assert stores.run(stores.bot.worker_threads(start + 31, 30)) == 3
    stores.worker.leave("w2")
    assert stores.run(stores.bot.worker_threads(start + 20, 30)) == 4
    stores.worker.leave("w1")
    stores.worker.leave("never-seen")
    assert stores.run(stores.bot.worker_threads(start, 30)) == 0


def test_the_workers_hash_expires_when_every_worker_is_gone(stores: Stores) -> None:
    stores.worker.heartbeat("w1", 4)
    assert 0 < stores.ttl(schema.WORKERS) <= schema.WORKERS_TTL


# --- every key has a TTL ---------------------------------------------------------------------------


def assert_every_key_expires(stores: Stores) -> None:
    keys = stores.keys()
    assert keys
    assert [name for name in keys if stores.ttl(name) == -1] == []


def test_no_key_is_left_without_a_ttl(stores: Stores) -> None:
    """Whatever happens to a request, every key it touches expires on its own."""
    s, bot, worker = stores, stores.bot, stores.worker
    first = running(s, count=4)
    stores.run(bot.create(meta(OTHER, chat_id=11, user_id=21), progress_message_id=3, progress_text="…"))
    create(s, THIRD, chat_id=12, user_id=22)
    for index, status in enumerate([T.SENT, T.FAILED, T.RETRYING, T.READY]):
        drive(s, status, index)
    s.run(bot.reupload(RID, 3))
    s.run(bot.set_next_send(RID, 2))
    s.run(bot.set_progress_message(RID, 9))
    s.run(bot.set_progress_memo(RID, "text", 1.0))
    s.run(bot.redrive_resolve(OTHER))
    worker.delay_resolve(OTHER, s.clock.now + 10)
    worker.reject(THIRD, "not found")
    s.run(bot.remember_upload(AUDIO, "abc", {"file_id": "F"}))
    worker.heartbeat("w1", 2)
    moved = s.run(bot.migrate_chat(first, 99))
    assert_every_key_expires(s)
    s.run(bot.cancel(RID))
    s.run(bot.close(moved))
    s.run(bot.close(meta(THIRD, chat_id=12, user_id=22)))
    assert_every_key_expires(s)
    # Late writes to a closed request: a duplicate worker, the bot's last memo.
    assert worker.start(RID, 1, "late") is None
    s.run(bot.set_progress_memo(RID, "🛑 Cancelled", 2.0))
    s.run(bot.set_next_send(RID, 4))
    assert_every_key_expires(s)
    assert FINISHED_TTL - 60 < s.ttl(schema.head_key(RID)) <= FINISHED_TTL


LATE_WRITES: dict[str, Callable[[Stores, RequestMeta], Coroutine[Any, Any, object]]] = {
    "set_next_send": lambda s, request: s.bot.set_next_send(request.id, 1),
    "set_progress_message": lambda s, request: s.bot.set_progress_message(request.id, 9),
    "set_progress_memo": lambda s, request: s.bot.set_progress_memo(request.id, "text", 1.0),
    "redrive_resolve": lambda s, request: s.bot.redrive_resolve(request.id),
    "migrate_chat": lambda s, request: s.bot.migrate_chat(request, 11),
}


@pytest.mark.parametrize("write", list(LATE_WRITES))
def test_a_late_write_to_a_request_whose_keys_are_gone_leaves_no_key_without_a_ttl(stores: Stores, write: str) -> None:
    """The bot's copy may outlive the request's keys (they expired, or Redis lost its data): its bookkeeping
    writes must not recreate a request hash that never expires."""
    request = running(stores)
    create(stores, OTHER)
    stores.redis.delete(*schema.request_keys(RID))
    stores.run(LATE_WRITES[write](stores, request))
    assert_every_key_expires(stores)


def test_free_expired_keeps_live_keys(stores: Stores) -> None:
    """The all-in-one walk over the keys only reads them."""
    running(stores)
    before = stores.keys()
    stores.run(stores.bot.free_expired())
    assert stores.keys() == before
    assert stores.load().status == R.RUNNING
