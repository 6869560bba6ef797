"""Process-wide wiring: settings, broker, Redis store, and the jobs the actors run.

Dramatiq actors bind to the global broker when they are decorated, so `configure` must run before
`bot.actors` is imported (bot.worker and bot.__main__ do this).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from bot.settings import ServiceSettings
from bot.state import RequestStore

log = logging.getLogger(__name__)

# Crash recovery: a killed worker's messages are redelivered after ~15–40 s instead of ~5 min (NOTES.md).
HEARTBEAT_TIMEOUT_MS = 15_000
MAINTENANCE_CHANCE = 50_000


@dataclass
class Runtime:
    settings: ServiceSettings
    store: RequestStore
    broker: dramatiq.Broker

    @property
    def all_in_one(self) -> bool:
        return self.settings.redis_url is None


_current: Runtime | None = None


def _redis_retry() -> Retry:
    """Reconnect and retry each command for about half a minute (0.2, 0.4 … 5 s): a Redis restart with its
    append-only file reloads in seconds."""
    return Retry(ExponentialBackoff(cap=5, base=0.2), retries=10)


def _connect(url: str, *, decode_responses: bool) -> redis.Redis:
    return redis.Redis.from_url(
        url,
        decode_responses=decode_responses,
        socket_timeout=10,
        socket_connect_timeout=5,
        health_check_interval=15,
        retry=_redis_retry(),
        retry_on_error=[redis.ConnectionError, redis.TimeoutError],
    )


def redis_client(settings: ServiceSettings) -> redis.Redis:
    """A client that rides out a Redis restart: reconnects and retries each command a few times."""
    if settings.redis_url is None:
        import fakeredis

        return fakeredis.FakeRedis(decode_responses=True)
    return _connect(settings.redis_url, decode_responses=True)


def make_broker(settings: ServiceSettings) -> dramatiq.Broker:
    """The broker rides out a Redis restart like the store does, instead of failing at once.

    It matters beyond log noise: on a connection error Dramatiq's consumer drops the delayed messages it
    holds in memory (retries waiting out a backoff or a Retry-After) without handing them back, and they
    stay claimed by a live worker until that worker restarts: the track would never be delivered.
    """
    if settings.redis_url is None:
        return StubBroker()
    return RedisBroker(
        client=_connect(settings.redis_url, decode_responses=False),
        heartbeat_timeout=HEARTBEAT_TIMEOUT_MS,
        maintenance_chance=MAINTENANCE_CHANCE,
    )


def configure(settings: ServiceSettings) -> Runtime:
    global _current
    broker = make_broker(settings)
    dramatiq.set_broker(broker)
    store = RequestStore(redis_client(settings), finished_ttl=settings.request_ttl_hours * 3600)
    _current = Runtime(settings=settings, store=store, broker=broker)
    return _current


def current() -> Runtime:
    if _current is None:
        raise RuntimeError("bot.runtime.configure() was not called")
    return _current
