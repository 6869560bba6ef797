"""All-in-one mode keeps its memory bounded over days of use: the in-memory store and broker forget."""

from __future__ import annotations

import asyncio
import time

import dramatiq
import fakeredis
from dramatiq.brokers.stub import StubBroker

from bot.request_store import RequestStore
from bot.runtime import BoundedDeadLetters


def test_expired_keys_are_freed_by_the_keyspace_walk() -> None:
    """fakeredis drops an expired key only when something touches it (or samples it while writing); the bot's
    periodic walk touches them all."""
    server = fakeredis.FakeServer()
    writer = fakeredis.FakeRedis(server=server, decode_responses=True)
    for n in range(500):
        writer.set(f"spotbot:req:{n:012x}", "x", px=20)
    writer.set("spotbot:keep", "x", ex=3600)
    time.sleep(0.1)  # every short-lived key is past its expiry (the assertion is on what remains, not on time)
    assert len(server.dbs[0]) > 1, "expired, and still held in memory"

    async def walk() -> None:
        client = fakeredis.FakeAsyncRedis(server=server, decode_responses=True)
        await RequestStore(client).free_expired()
        await client.aclose()

    asyncio.run(walk())

    assert list(server.dbs[0]) == [b"spotbot:keep"]


def test_the_in_memory_broker_keeps_only_recent_dead_letters() -> None:
    broker = StubBroker()
    broker.add_middleware(BoundedDeadLetters())
    broker.emit_after("process_boot")

    @dramatiq.actor(broker=broker, queue_name="doomed", max_retries=0)
    def doomed() -> None:
        raise RuntimeError("always")

    for _ in range(BoundedDeadLetters.KEEP + 50):
        doomed.send()
    worker = dramatiq.Worker(broker, worker_threads=2)
    worker.start()
    try:
        broker.join("doomed", fail_fast=False)
    finally:
        worker.stop()

    assert len(broker.dead_letters_by_queue["doomed"]) <= BoundedDeadLetters.KEEP
