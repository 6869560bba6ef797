"""The operator's numbers: what each event counts, the last day's sums, the /stats text, and their Redis keys."""

from __future__ import annotations

import asyncio
from collections import Counter

import fakeredis
import pytest

from bot.activity import Activity, stats_key
from bot.lifecycle import RequestStatus, TrackStatus
from bot.request_store import RequestStore
from bot.requests import RequestMeta, RequestSnapshot, TrackState
from bot.stats import (
    HOUR,
    STATS_TTL,
    DayStats,
    Operations,
    closed_counts,
    day_hours,
    delivered_counts,
    reason_group,
    received_counts,
    render_stats,
)

NOW = 1_800_000_000.0


def snapshot(status: RequestStatus, *states: TrackState, error: str | None = None) -> RequestSnapshot:
    meta = RequestMeta(id="a" * 12, chat_id=1, user_id=1, link="https://open.spotify.com/album/x", created_at=NOW)
    return RequestSnapshot(meta=meta, status=status, states=list(states), error=error)


# --- pure ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reason", "group"),
    [
        ("no confident match on YouTube", "no confident match on YouTube"),
        ("file too large for Telegram (51.2 MB > 50.0 MB)", "file too large for Telegram"),
        ("download failed (gave up after 6 tries)", "download failed"),
        ("rate-limited by the service: asked to wait about 30 min, more than allowed", "rate-limited by the service"),
        (None, "failed"),
        ("", "failed"),
        ("x" * 500, "x" * 80),
    ],
)
def test_failure_reasons_are_grouped_without_their_details(reason: str | None, group: str) -> None:
    assert reason_group(reason) == group


def test_what_each_event_counts() -> None:
    assert received_counts("album") == Counter({"requests:album": 1})
    assert delivered_counts(cached=True) == Counter({"tracks:cached": 1})
    assert delivered_counts(cached=False) == Counter({"tracks:sent": 1})
    done = snapshot(
        RequestStatus.DONE,
        TrackState(status=TrackStatus.SENT),
        TrackState(status=TrackStatus.FAILED, reason="no confident match on YouTube"),
        TrackState(status=TrackStatus.FAILED, reason="download failed (gave up after 6 tries)"),
    )
    assert closed_counts(done) == Counter(
        {
            "outcome:done": 1,
            "tracks:failed": 2,
            "track_failure:no confident match on YouTube": 1,
            "track_failure:download failed": 1,
        }
    )
    cancelled = snapshot(RequestStatus.CANCELLED, TrackState(status=TrackStatus.CANCELLED))
    assert closed_counts(cancelled) == Counter({"outcome:cancelled": 1, "tracks:cancelled": 1})
    failed = snapshot(RequestStatus.FAILED, error="not found on Spotify")
    assert closed_counts(failed) == Counter({"outcome:failed": 1, "request_failure:not found on Spotify": 1})


def test_the_day_is_the_last_24_hourly_buckets() -> None:
    hours = day_hours(NOW)
    assert len(hours) == 24 and hours[-1] == int(NOW // HOUR) and hours == sorted(hours)
    assert STATS_TTL > 24 * HOUR  # a bucket lives as long as it is part of the day


def test_buckets_are_summed_by_kind_of_count() -> None:
    day = DayStats.from_buckets(
        [
            {"requests:track": "2", "tracks:sent": "2", "outcome:done": "2"},
            {"requests:album": "1", "tracks:sent": "5", "tracks:failed": "1", "track_failure:no match": "1"},
            {"junk": "3", "requests:": "1"},
            {},
        ]
    )
    assert day.requests == Counter({"track": 2, "album": 1})
    assert day.tracks == Counter({"sent": 7, "failed": 1})
    assert day.outcomes == Counter({"done": 2})
    assert day.track_failures == Counter({"no match": 1})
    assert day.request_failures == Counter()


def test_the_stats_text() -> None:
    day = DayStats.from_buckets(
        [
            {
                "requests:playlist": "1",
                "requests:track": "3",
                "outcome:done": "3",
                "outcome:failed": "1",
                "request_failure:not found on Spotify": "1",
                "tracks:sent": "10",
                "tracks:cached": "2",
                "tracks:failed": "3",
                "track_failure:no confident match on YouTube": "2",
                "track_failure:download failed": "1",
            }
        ]
    )
    ops = Operations(
        cache_entries=42, queue_depth=7, workers=2, worker_threads=4, ytdlp_version="2026.10.26", ytdlp_age_days=36
    )
    assert render_stats(day, ops) == "\n".join(
        [
            "📊 Last 24 hours",
            "Requests: 4 (track 3, playlist 1)",
            "Finished: 4 (done 3, failed 1)",
            "  • not found on Spotify — 1",
            "Tracks: 15 (sent 10, cached 2, failed 3)",
            "Track failures:",
            "  • no confident match on YouTube — 2",
            "  • download failed — 1",
            "",
            "⚙️ Now",
            "Queue: 7 track(s) waiting for a worker",
            "Workers alive: 2 (4 thread(s))",
            "Cached uploads: 42",
            "yt-dlp 2026.10.26, 36 days old",
        ]
    )
    quiet = render_stats(DayStats(), Operations(0, 0, 0, 0, "unknown", None))
    assert "Requests: 0\n" in quiet and "Track failures" not in quiet and quiet.endswith("yt-dlp unknown")


# --- Redis -----------------------------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


def test_counts_go_to_hourly_keys_that_expire_and_the_day_sums_them() -> None:
    async def scenario() -> None:
        server = fakeredis.FakeServer()
        client = fakeredis.FakeAsyncRedis(server=server, decode_responses=True)
        clock = Clock()
        activity = Activity(client, clock=clock)
        clock.now = NOW - 30 * HOUR  # outside the day
        activity.received("track")
        clock.now = NOW - 3 * HOUR
        activity.received("album")
        activity.delivered(cached=False, seconds=12.0)
        clock.now = NOW
        activity.delivered(cached=True, seconds=1.0)
        activity.closed(snapshot(RequestStatus.DONE, TrackState(status=TrackStatus.FAILED, reason="no match (x)")))
        await activity.flush()

        keys = await client.keys("spotbot:stats:*")
        assert sorted(keys) == sorted(stats_key(int(t // HOUR)) for t in (NOW - 30 * HOUR, NOW - 3 * HOUR, NOW))
        for name in keys:
            assert 0 < await client.ttl(name) <= STATS_TTL
        day = await activity.last_day()
        assert day.requests == Counter({"album": 1})
        assert day.tracks == Counter({"sent": 1, "cached": 1, "failed": 1})
        assert day.track_failures == Counter({"no match": 1})
        await client.aclose()

    asyncio.run(scenario())


def test_counting_survives_an_unreachable_redis() -> None:
    async def scenario() -> None:
        server = fakeredis.FakeServer()
        server.connected = False
        activity = Activity(fakeredis.FakeAsyncRedis(server=server, decode_responses=True))
        before = activity.metrics.tracks.labels("sent")._value.get()
        activity.delivered(cached=False, seconds=3.0)  # never raises
        await activity.flush()
        assert activity.metrics.tracks.labels("sent")._value.get() == before + 1  # Prometheus still counts

    asyncio.run(scenario())


def test_the_upload_cache_can_be_counted_and_forgotten() -> None:
    async def scenario() -> None:
        client = fakeredis.FakeAsyncRedis(server=fakeredis.FakeServer(), decode_responses=True)
        store = RequestStore(client)
        for sid in ("a", "b", "c"):
            await store.remember_upload("mp3-V2", sid, {"file_id": f"F-{sid}"})
        await store.remember_upload("mp3-V0", "a", {"file_id": "other quality"})
        assert await store.count_uploads() == 4
        assert await store.drop_uploads("mp3-V2", ["a", "b", "zzz"]) == 2
        assert await store.drop_uploads("mp3-V2", []) == 0
        assert sorted(await client.keys("spotbot:cache:*")) == ["spotbot:cache:mp3-V0:a", "spotbot:cache:mp3-V2:c"]
        await client.aclose()

    asyncio.run(scenario())
