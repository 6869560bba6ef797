"""Process-wide wiring: settings, broker, the Redis clients and stores, and the jobs the actors run.

Dramatiq actors bind to the global broker when they are decorated, so `configure` must run before
`bot.actors` is imported (bot.worker and bot.__main__ do this). Workers use a synchronous client (they
run on threads); the bot an asyncio one, made inside its event loop. In all-in-one mode both talk to one
in-memory fakeredis server.
"""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import dramatiq
import redis
import redis.asyncio as aioredis
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import Middleware
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from bot.health import WorkerBeat, health_dir
from bot.settings import ServiceSettings
from bot.worker_presence import WorkerPresence
from bot.worker_store import WorkerStore

if TYPE_CHECKING:  # the bot's asyncio store: workers never load it (nor Telegram's library behind it)
    from bot.request_store import RequestStore

log = logging.getLogger(__name__)

# Crash recovery: a killed worker's messages are redelivered after ~15–40 s instead of ~5 min (measured).
HEARTBEAT_TIMEOUT_MS = 15_000
MAINTENANCE_CHANCE = 50_000


# The bot answers "storage unreachable" instead of hanging: its Redis calls give up quickly. An answer lost
# that way is harmless there: every transition is guarded by the table, and the bot re-reads a state
# whenever a transition it made is refused (it may have been applied after all).
BOT_REDIS_TIMEOUT = 2.0


@dataclass
class Runtime:
    settings: ServiceSettings
    worker_store: WorkerStore
    broker: dramatiq.Broker
    fake_server: Any = None  # all-in-one: the fakeredis server both clients share

    @property
    def all_in_one(self) -> bool:
        return self.settings.redis_url is None

    def request_store(self) -> RequestStore:
        """The bot's store; call inside the running event loop (its connections belong to that loop)."""
        from bot.request_store import RequestStore

        if self.fake_server is not None:
            import fakeredis

            client: aioredis.Redis = fakeredis.FakeAsyncRedis(server=self.fake_server, decode_responses=True)
        else:
            assert self.settings.redis_url is not None
            client = aioredis.Redis.from_url(
                self.settings.redis_url,
                decode_responses=True,
                socket_timeout=BOT_REDIS_TIMEOUT,
                socket_connect_timeout=BOT_REDIS_TIMEOUT,
                health_check_interval=15,
                retry=AsyncRetry(ExponentialBackoff(cap=0.5, base=0.1), retries=1),
                retry_on_error=[redis.ConnectionError, redis.TimeoutError],
            )
        return RequestStore(client, finished_ttl=self.settings.request_ttl_hours * 3600)

    def bot_sync_client(self) -> redis.Redis:
        """The bot's synchronous client, for the few calls it makes in threads (people's Spotify logins): it
        gives up quickly like the bot's asyncio one, so a stalled Redis cannot pin the bot's threads."""
        if self.fake_server is not None:
            import fakeredis

            return fakeredis.FakeRedis(server=self.fake_server, decode_responses=True)
        assert self.settings.redis_url is not None
        return redis.Redis.from_url(
            self.settings.redis_url,
            decode_responses=True,
            socket_timeout=BOT_REDIS_TIMEOUT,
            socket_connect_timeout=BOT_REDIS_TIMEOUT,
            health_check_interval=15,
        )


_current: Runtime | None = None


def _redis_retry() -> Retry:
    """Reconnect and retry each command for about half a minute (0.2, 0.4 … 5 s): a Redis restart with its
    append-only file reloads in seconds."""
    return Retry(ExponentialBackoff(cap=5, base=0.2), retries=10)


# A dead peer (a network cut) is noticed within about a minute, without a read timeout (below).
KEEPALIVE = {socket.TCP_KEEPIDLE: 30, socket.TCP_KEEPINTVL: 10, socket.TCP_KEEPCNT: 3}


def _connect(url: str, *, decode_responses: bool) -> redis.Redis:
    """The workers' and the broker's client. No read timeout, on purpose: a command sent to a Redis that stalls
    (paused, swapping) is executed when it wakes up, and a client that had given up on it would lose the
    answer: a Dramatiq fetch whose messages are then claimed by a worker that never got them, a transition the
    worker believes failed. So a stalled Redis makes the workers wait; a refused connection is retried."""
    return redis.Redis.from_url(
        url,
        decode_responses=decode_responses,
        socket_timeout=None,  # redis-py's default is 5 s
        socket_connect_timeout=5,
        socket_keepalive=True,
        socket_keepalive_options=KEEPALIVE,
        health_check_interval=15,
        retry=_redis_retry(),
        retry_on_error=[redis.ConnectionError],
    )


class BoundedDeadLetters(Middleware):
    """All-in-one: the in-memory broker keeps every failed message forever; keep the last few (for logs)."""

    KEEP = 100

    def after_nack(self, broker: dramatiq.Broker, message: dramatiq.MessageProxy) -> None:
        for dead in getattr(broker, "dead_letters_by_queue", {}).values():
            del dead[: -self.KEEP]


def make_broker(settings: ServiceSettings) -> dramatiq.Broker:
    """The broker rides out a Redis restart like the store does, instead of failing at once.

    It matters beyond log noise: on a connection error Dramatiq's consumer drops the delayed messages it
    holds in memory (retries waiting out a backoff or a Retry-After) without handing them back, and they
    stay claimed by a live worker until that worker restarts: the track would never be delivered.
    """
    if settings.redis_url is None:
        broker = StubBroker()
        broker.add_middleware(BoundedDeadLetters())
        return broker
    return RedisBroker(
        client=_connect(settings.redis_url, decode_responses=False),
        heartbeat_timeout=HEARTBEAT_TIMEOUT_MS,
        maintenance_chance=MAINTENANCE_CHANCE,
    )


def configure(settings: ServiceSettings) -> Runtime:
    """Set up the broker (with the workers' presence middleware) and the workers' store for this process."""
    global _current
    broker = make_broker(settings)
    fake_server = None
    if settings.redis_url is None:
        import fakeredis

        fake_server = fakeredis.FakeServer()
        client: redis.Redis = fakeredis.FakeRedis(server=fake_server, decode_responses=True)
    else:
        # Rides out a Redis restart: reconnects and retries each command a few times.
        client = _connect(settings.redis_url, decode_responses=True)
    worker_store = WorkerStore(client)
    beat = WorkerBeat(health_dir(settings.download_dir))
    broker.add_middleware(WorkerPresence(worker_store, beat, settings.health_max_age))
    dramatiq.set_broker(broker)
    _current = Runtime(settings=settings, worker_store=worker_store, broker=broker, fake_server=fake_server)
    return _current


def current() -> Runtime:
    if _current is None:
        raise RuntimeError("bot.runtime.configure() was not called")
    return _current
