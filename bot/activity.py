"""Counts what happens, for the operator: Prometheus metrics (`bot.metrics`) and the last day's numbers in Redis
(hourly hashes with a TTL, `bot.stats`) that /stats shows.

Called from the bot's event loop at the moment each thing is known: a link accepted (`received`), an audio
accepted by Telegram (`delivered`), a request closed (`closed`). Counting never delays or breaks the work it
counts: the Redis writes run as background tasks, and a failed one is only logged.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from bot import schema
from bot.metrics import bot_metrics
from bot.requests import RequestSnapshot
from bot.stats import (
    STATS_TTL,
    DayStats,
    closed_counts,
    day_hours,
    delivered_counts,
    hour_of,
    received_counts,
)

log = logging.getLogger(__name__)


def stats_key(hour: int) -> str:
    return schema.key("stats", hour)


class Activity:
    def __init__(self, client: aioredis.Redis, *, clock: Callable[[], float] = time.time) -> None:
        self.redis = client
        self.clock = clock
        self.metrics = bot_metrics()
        self._writes: set[asyncio.Task[None]] = set()

    def received(self, kind: str) -> None:
        self.metrics.requests.labels(kind).inc()
        self._count(received_counts(kind))

    def delivered(self, *, cached: bool, seconds: float) -> None:
        self.metrics.tracks.labels("cached" if cached else "sent").inc()
        self.metrics.track_seconds.observe(max(0.0, seconds))
        self._count(delivered_counts(cached))

    def closed(self, snapshot: RequestSnapshot) -> None:
        counts = closed_counts(snapshot)
        for outcome in ("failed", "cancelled"):
            if counts[f"tracks:{outcome}"]:
                self.metrics.tracks.labels(outcome).inc(counts[f"tracks:{outcome}"])
        self._count(counts)

    def _count(self, counts: Counter[str]) -> None:
        """Add `counts` to the bucket of this hour (the hour it happened, whenever the write gets through)."""
        task = asyncio.get_running_loop().create_task(self._write(stats_key(hour_of(self.clock())), counts))
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def _write(self, name: str, counts: Counter[str]) -> None:
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for field, amount in counts.items():
                    pipe.hincrby(name, field, amount)
                pipe.expire(name, STATS_TTL)
                await pipe.execute()
        except (RedisError, OSError) as error:
            log.info("could not count %s for /stats: %s", dict(counts), error)

    async def flush(self) -> None:
        """Wait for the counts still being written (tests, shutdown)."""
        if self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)

    async def last_day(self) -> DayStats:
        async with self.redis.pipeline(transaction=False) as pipe:
            for hour in day_hours(self.clock()):
                pipe.hgetall(stats_key(hour))
            buckets: list[dict[str, Any]] = await pipe.execute()
        return DayStats.from_buckets(buckets)
