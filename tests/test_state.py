"""RequestStore on a real private Redis (pytest-redis) and on fakeredis (all-in-one mode)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import fakeredis
import pytest
import redis
from pytest_redis import factories

from bot.requests import RequestMeta, Resolution, TrackState
from bot.state import ACTIVE_TTL, CACHE_TTL, RequestStore
from pipeline.models import SkippedItem, Track

decoded_redisdb = factories.redisdb("redis_proc", decode=True)  # flushed after each test


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["redis", "fakeredis"])
def client(request: pytest.FixtureRequest) -> Iterator[redis.Redis]:
    if request.param == "redis":
        yield request.getfixturevalue("decoded_redisdb")
    else:
        fake = fakeredis.FakeRedis(server=fakeredis.FakeServer(), decode_responses=True)
        yield fake
        fake.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(client: redis.Redis, clock: Clock) -> RequestStore:
    return RequestStore(client, finished_ttl=3600, clock=clock)


def meta(rid: str = "r1", *, chat_id: int = 10, user_id: int = 20) -> RequestMeta:
    return RequestMeta(
        id=rid,
        chat_id=chat_id,
        user_id=user_id,
        link="https://open.spotify.com/album/2noRn2Aes5aoNVsU6iWThc",
        created_at=1_699_999_000.0,
        reply_to=77,
    )


def tracks(count: int) -> list[Track]:
    return [
        Track(
            spotify_id=f"{i:022d}",
            title=f"Song {i}",
            artists=["Daft Punk", "Romanthony"],
            album="Discovery",
            duration_ms=320_000 + i,
            isrc=f"GBDUW01000{i:02d}",
            album_artists=["Daft Punk"],
            track_number=i + 1,
            track_total=count,
            release_date="2001-03-07",
            explicit=bool(i % 2),
            cover_url="https://i.scdn.co/image/cover",
        )
        for i in range(count)
    ]


RESOLUTION = Resolution(
    kind="playlist",
    name="Mix",
    owner="someone",
    total=3,
    available=5,
    truncated=True,
    skipped=[SkippedItem(title="Episode 1", reason="podcast episodes aren't supported")],
)


def resolved(store: RequestStore, rid: str = "r1", count: int = 3, **meta_fields: int) -> str:
    store.create(meta(rid, **meta_fields))
    resolution = RESOLUTION.model_copy(update={"total": count})
    store.set_resolution(rid, resolution, tracks(count), [TrackState() for _ in range(count)])
    return rid


def request_keys(client: redis.Redis, rid: str) -> list[str]:
    return sorted(client.scan_iter(match=f"*{rid}*"))


# --- lifecycle -------------------------------------------------------------------------------------


def test_create_registers_an_active_request(store: RequestStore) -> None:
    store.create(meta("r1"))
    assert store.exists("r1")
    assert not store.exists("r2")
    assert store.active() == ["r1"]
    assert store.chat_active(10) == ["r1"]
    assert store.user_active(20) == ["r1"]
    assert store.chat_active(11) == []
    assert store.user_active(21) == []
    assert store.phase("r1") == "resolving"
    assert store.meta("r1") == meta("r1")


def test_create_snapshot_before_resolution(store: RequestStore) -> None:
    store.create(meta("r1"))
    snapshot = store.load("r1")
    assert snapshot is not None
    assert snapshot.meta == meta("r1")
    assert snapshot.phase == "resolving"
    assert snapshot.resolution is None
    assert snapshot.tracks == []
    assert snapshot.states == []
    assert snapshot.cancelled is False
    assert snapshot.progress_message_id is None
    assert snapshot.next_send == 0
    assert store.progress_memo("r1") == (None, 0.0)


def test_create_with_progress_message_remembers_it(store: RequestStore, clock: Clock) -> None:
    store.create(meta("r1"), progress_message_id=555, progress_text="🔎 Reading…")
    snapshot = store.load("r1")
    assert snapshot is not None
    assert snapshot.progress_message_id == 555
    assert store.progress_memo("r1") == ("🔎 Reading…", clock.now)


def test_active_sets_separate_chats_and_users(store: RequestStore) -> None:
    store.create(meta("b", chat_id=1, user_id=100))
    store.create(meta("a", chat_id=1, user_id=200))
    store.create(meta("c", chat_id=2, user_id=100))
    assert store.active() == ["a", "b", "c"]
    assert store.chat_active(1) == ["a", "b"]
    assert store.chat_active(2) == ["c"]
    assert store.user_active(100) == ["b", "c"]
    assert store.user_active(200) == ["a"]


def test_request_keys_expire_even_while_active(store: RequestStore, client: redis.Redis) -> None:
    resolved(store, "r1")
    keys = request_keys(client, "r1")
    assert len(keys) == 3  # head, tracks, states
    for key in keys:
        assert ACTIVE_TTL - 60 < client.ttl(key) <= ACTIVE_TTL


def test_unknown_request(store: RequestStore) -> None:
    assert store.load("nope") is None
    assert store.meta("nope") is None
    assert store.phase("nope") is None
    assert store.track("nope", 0) is None
    assert store.state("nope", 0) is None
    assert store.update_state("nope", 0, status="running") is None
    assert store.is_cancelled("nope") is False
    assert store.next_enqueue("nope") == 0


# --- resolution and snapshot -----------------------------------------------------------------------


def test_set_resolution_and_load_round_trip(store: RequestStore) -> None:
    store.create(meta("r1"), progress_message_id=9)
    items = tracks(3)
    states = [
        TrackState(),
        TrackState(status="retrying", reason="rate-limited", retry_at=1_700_000_100.5),
        TrackState(status="ready", path="/tmp/x/a.mp3", title="Song 2", duration_s=320.0, size_bytes=7_000_000),
    ]
    store.set_resolution("r1", RESOLUTION, items, states)
    snapshot = store.load("r1")
    assert snapshot is not None
    assert snapshot.phase == "running"
    assert snapshot.resolution == RESOLUTION
    assert snapshot.tracks == items
    assert snapshot.states == states
    assert snapshot.total == 3
    assert snapshot.progress_message_id == 9
    assert store.track("r1", 1) == items[1]
    assert store.state("r1", 2) == states[2]
    assert store.track("r1", 3) is None
    assert store.state("r1", 3) is None


def test_many_tracks_keep_their_order(store: RequestStore) -> None:
    store.create(meta("r1"))
    items = tracks(120)  # more than 10: "10" must not sort before "2"
    store.set_resolution("r1", RESOLUTION.model_copy(update={"total": 120}), items, [TrackState() for _ in items])
    snapshot = store.load("r1")
    assert snapshot is not None
    assert [t.title for t in snapshot.tracks] == [f"Song {i}" for i in range(120)]


def test_resolution_without_tracks(store: RequestStore) -> None:
    store.create(meta("r1"))
    empty = Resolution(kind="playlist", name="Only podcasts", total=0, available=0)
    store.set_resolution("r1", empty, [], [])
    snapshot = store.load("r1")
    assert snapshot is not None
    assert snapshot.phase == "running"
    assert snapshot.tracks == []
    assert snapshot.settled


def test_failed_resolution(store: RequestStore) -> None:
    store.create(meta("r1"))
    store.fail("r1", "not found on Spotify")
    assert store.phase("r1") == "failed"
    snapshot = store.load("r1")
    assert snapshot is not None
    assert snapshot.phase == "failed"
    assert snapshot.error == "not found on Spotify"
    assert snapshot.settled


def test_pointers(store: RequestStore) -> None:
    resolved(store, "r1")
    assert store.next_enqueue("r1") == 0
    store.set_next_enqueue("r1", 3)
    assert store.next_enqueue("r1") == 3
    store.set_next_send("r1", 2)
    store.set_progress_message("r1", 1234)
    snapshot = store.load("r1")
    assert snapshot is not None
    assert snapshot.next_send == 2
    assert snapshot.progress_message_id == 1234


# --- track states ----------------------------------------------------------------------------------


def test_update_state_applies_changes(store: RequestStore) -> None:
    resolved(store, "r1")
    new = store.update_state("r1", 1, status="running", step="downloading", started_at=5.0)
    assert new == TrackState(status="running", step="downloading", started_at=5.0)
    assert store.state("r1", 1) == new
    assert store.state("r1", 0) == TrackState()
    again = store.update_state("r1", 1, step="converting")
    assert again is not None
    assert (again.status, again.step, again.started_at) == ("running", "converting", 5.0)


def test_update_state_of_unknown_track(store: RequestStore) -> None:
    resolved(store, "r1")
    assert store.update_state("r1", 3, status="running") is None
    assert store.state("r1", 3) is None


@pytest.mark.parametrize("terminal", ["ready", "sent", "failed", "cancelled"])
def test_terminal_status_is_final(store: RequestStore, terminal: str) -> None:
    resolved(store, "r1")
    store.update_state("r1", 0, status=terminal, reason="why")
    assert store.update_state("r1", 0, status="running", reason=None) is None
    assert store.update_state("r1", 0, step="late progress") is None
    state = store.state("r1", 0)
    assert state is not None
    assert (state.status, state.reason, state.step) == (terminal, "why", None)


def test_force_leaves_a_terminal_status(store: RequestStore) -> None:
    resolved(store, "r1")
    store.update_state("r1", 0, status="ready", path="/tmp/a.mp3")
    sent = store.update_state("r1", 0, force=True, status="sent", file_id="F1", path=None)
    assert sent is not None
    assert (sent.status, sent.file_id, sent.path) == ("sent", "F1", None)
    assert store.state("r1", 0) == sent


def test_a_late_duplicate_worker_cannot_undo_a_delivery(store: RequestStore) -> None:
    resolved(store, "r1")
    store.update_state("r1", 0, status="ready")
    store.update_state("r1", 0, force=True, status="sent", file_id="F1")
    assert store.update_state("r1", 0, status="failed", reason="gave up") is None
    assert store.update_state("r1", 0, status="ready", path="/tmp/dup.mp3") is None
    state = store.state("r1", 0)
    assert state is not None
    assert (state.status, state.file_id) == ("sent", "F1")


def test_expect_limits_the_change_to_given_statuses(store: RequestStore) -> None:
    resolved(store, "r1")
    assert store.update_state("r1", 0, expect=("queued",), status="running") is None
    assert store.state("r1", 0) == TrackState()
    changed = store.update_state("r1", 0, expect=("pending", "queued"), status="running")
    assert changed is not None
    assert changed.status == "running"


def test_expect_and_force_together(store: RequestStore) -> None:
    resolved(store, "r1")
    store.update_state("r1", 0, status="ready")
    assert store.update_state("r1", 0, expect=("running",), force=True, status="sent") is None
    changed = store.update_state("r1", 0, expect=("ready",), force=True, status="sent")
    assert changed is not None
    assert changed.status == "sent"


def test_mark_queued_only_from_pending(store: RequestStore) -> None:
    resolved(store, "r1")
    assert store.mark_queued("r1", 0) is True
    assert store.state("r1", 0) == TrackState(status="queued")
    assert store.mark_queued("r1", 0) is False  # a second enqueue of the same track is refused
    store.update_state("r1", 1, status="running")
    assert store.mark_queued("r1", 1) is False
    store.update_state("r1", 2, status="cancelled")
    assert store.mark_queued("r1", 2) is False
    assert store.mark_queued("r1", 3) is False  # unknown track


def test_update_state_refuses_an_invalid_status(store: RequestStore) -> None:
    resolved(store, "r1")
    with pytest.raises(ValueError):
        store.update_state("r1", 0, status="done")
    assert store.load("r1") is not None


# --- concurrency -----------------------------------------------------------------------------------

FIELDS = ("reason", "step", "path", "thumb_path", "file_id", "title", "performer")
ROUNDS = 25


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


def test_concurrent_writers_of_one_track_keep_every_change(store: RequestStore) -> None:
    resolved(store, "r1", count=1)

    def writer(field: str) -> Callable[[], None]:
        def job() -> None:
            for n in range(ROUNDS):
                assert store.update_state("r1", 0, **{field: f"{field}-{n}"}) is not None

        return job

    run_together([writer(field) for field in FIELDS])
    state = store.state("r1", 0)
    assert state is not None
    for field in FIELDS:
        assert getattr(state, field) == f"{field}-{ROUNDS - 1}"
    assert state.status == "pending"


def test_concurrent_workers_of_different_tracks_keep_every_change(store: RequestStore) -> None:
    # WATCH covers the whole states hash, so writers of different tracks make each other retry.
    count = 8
    resolved(store, "r1", count=count)

    def worker(index: int) -> Callable[[], None]:
        def job() -> None:
            assert store.mark_queued("r1", index)
            for n in range(ROUNDS):
                store.update_state("r1", index, status="running", step=f"step {n}")
            store.update_state("r1", index, status="ready", size_bytes=index)

        return job

    run_together([worker(index) for index in range(count)])
    snapshot = store.load("r1")
    assert snapshot is not None
    assert [(s.status, s.size_bytes, s.step) for s in snapshot.states] == [
        ("ready", index, f"step {ROUNDS - 1}") for index in range(count)
    ]


def test_only_one_of_racing_enqueuers_wins(store: RequestStore) -> None:
    resolved(store, "r1", count=1)
    results: list[bool] = []
    lock = threading.Lock()

    def enqueue() -> None:
        won = store.mark_queued("r1", 0)
        with lock:
            results.append(won)

    run_together([enqueue for _ in range(8)])
    assert sorted(results) == [False] * 7 + [True]


# --- cancel and finish -----------------------------------------------------------------------------


def test_cancel(store: RequestStore) -> None:
    resolved(store, "r1")
    resolved(store, "r2")
    assert not store.is_cancelled("r1")
    store.cancel("r1")
    assert store.is_cancelled("r1")
    assert not store.is_cancelled("r2")
    snapshot = store.load("r1")
    assert snapshot is not None
    assert snapshot.cancelled
    assert snapshot.settled
    assert store.active() == ["r1", "r2"]  # still tracked until the bot finishes it


def test_finish_stops_tracking_and_keeps_state_for_the_ttl(store: RequestStore, client: redis.Redis) -> None:
    resolved(store, "r1", chat_id=1, user_id=100)
    resolved(store, "r2", chat_id=1, user_id=100)
    store.update_state("r1", 0, status="running")
    store.finish("r1")
    assert store.active() == ["r2"]
    assert store.chat_active(1) == ["r2"]
    assert store.user_active(100) == ["r2"]
    keys = request_keys(client, "r1")
    assert len(keys) == 3
    for key in keys:
        assert 3600 - 60 < client.ttl(key) <= 3600
    for key in request_keys(client, "r2"):
        assert client.ttl(key) > 3600
    snapshot = store.load("r1")
    assert snapshot is not None
    assert snapshot.states[0].status == "running"


def test_a_late_write_after_finish_keeps_the_ttl(store: RequestStore, client: redis.Redis) -> None:
    resolved(store, "r1")
    store.finish("r1")
    assert store.update_state("r1", 0, status="running") is not None
    store.set_progress_memo("r1", "text", 1.0)
    for key in request_keys(client, "r1"):
        assert 0 < client.ttl(key) <= 3600


def test_finish_of_a_failed_request_without_tracks(store: RequestStore, client: redis.Redis) -> None:
    store.create(meta("r1"))
    store.fail("r1", "not found")
    store.finish("r1")
    assert store.active() == []
    assert store.chat_active(10) == []
    (key,) = request_keys(client, "r1")
    assert 0 < client.ttl(key) <= 3600


def test_finish_twice_and_finish_unknown_are_harmless(store: RequestStore) -> None:
    resolved(store, "r1")
    store.finish("r1")
    store.finish("r1")
    store.finish("unknown")
    assert store.active() == []
    assert store.load("unknown") is None


def test_forget_drops_an_expired_request_everywhere(store: RequestStore, client: redis.Redis) -> None:
    store.create(meta("r1"))
    store.create(meta("r2"))
    client.delete(*request_keys(client, "r1"))  # its state expired
    store.forget("r1")
    assert store.active() == ["r2"]
    assert store.chat_active(10) == ["r2"]
    assert store.user_active(20) == ["r2"]


# --- progress memo and upload cache ----------------------------------------------------------------


def test_progress_memo_round_trip(store: RequestStore) -> None:
    resolved(store, "r1")
    assert store.progress_memo("r1") == (None, 0.0)
    store.set_progress_memo("r1", "▓▓░░ 2/4", 1_700_000_123.25)
    assert store.progress_memo("r1") == ("▓▓░░ 2/4", 1_700_000_123.25)
    store.set_progress_memo("r1", "Done", 1_700_000_200.0)
    assert store.progress_memo("r1") == ("Done", 1_700_000_200.0)


def test_cached_upload_round_trip(store: RequestStore, client: redis.Redis) -> None:
    upload = {"file_id": "CQACAgIAAxkB", "title": "One More Time", "performer": "Daft Punk", "duration_s": 320.4}
    assert store.cached_upload("mp3-V2", "0DiWol3AO6WpXZgp0goxAV") is None
    store.remember_upload("mp3-V2", "0DiWol3AO6WpXZgp0goxAV", upload)
    assert store.cached_upload("mp3-V2", "0DiWol3AO6WpXZgp0goxAV") == upload
    assert store.cached_upload("mp3-192k", "0DiWol3AO6WpXZgp0goxAV") is None  # other audio settings
    assert store.cached_upload("mp3-V2", "other") is None
    (key,) = [k for k in client.scan_iter() if "0DiWol3AO6WpXZgp0goxAV" in k]
    assert CACHE_TTL - 60 < client.ttl(key) <= CACHE_TTL
    store.drop_upload("mp3-V2", "0DiWol3AO6WpXZgp0goxAV")
    assert store.cached_upload("mp3-V2", "0DiWol3AO6WpXZgp0goxAV") is None
    store.drop_upload("mp3-V2", "0DiWol3AO6WpXZgp0goxAV")  # dropping twice is fine


def test_cached_upload_survives_finish(store: RequestStore) -> None:
    resolved(store, "r1")
    store.remember_upload("mp3-V2", "abc", {"file_id": "F"})
    store.finish("r1")
    assert store.cached_upload("mp3-V2", "abc") == {"file_id": "F"}


def test_two_stores_on_one_redis_see_the_same_state(client: redis.Redis) -> None:
    bot, worker = RequestStore(client), RequestStore(client)
    bot.create(meta("r1"))
    bot.set_resolution("r1", RESOLUTION, tracks(3), [TrackState() for _ in range(3)])
    assert worker.update_state("r1", 2, status="ready") is not None
    bot.cancel("r1")
    assert worker.is_cancelled("r1")
    snapshot = bot.load("r1")
    assert snapshot is not None
    assert snapshot.states[2].status == "ready"
