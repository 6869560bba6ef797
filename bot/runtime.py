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


def redis_client(settings: ServiceSettings) -> redis.Redis:
    """A client that rides out a Redis restart: reconnects and retries each command a few times."""
    if settings.redis_url is None:
        import fakeredis

        return fakeredis.FakeRedis(decode_responses=True)
    return redis.Redis.from_url(
        settings.redis_url,
        decode_responses=True,
        socket_timeout=10,
        socket_connect_timeout=5,
        health_check_interval=15,
        retry=Retry(ExponentialBackoff(cap=5, base=0.2), retries=8),
        retry_on_error=[redis.ConnectionError, redis.TimeoutError],
    )


def make_broker(settings: ServiceSettings) -> dramatiq.Broker:
    if settings.redis_url is None:
        return StubBroker()
    return RedisBroker(
        url=settings.redis_url,
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
