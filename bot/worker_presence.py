"""Dramatiq middleware: each worker process tunes its consumers for quick hand-offs and tells the bot it is alive.

- Each thread holds one track message at a time (`queue_prefetch` = threads): the bot sizes the queue to the
  live threads, and one process must not hoard messages while another one's threads idle.
- An idle consumer polls Redis every 50 ms at most (`worker_timeout`), instead of backing off to 1 s: a track
  queued by the bot starts within a blink.
- A heartbeat thread writes the worker's thread count every few seconds (`spotbot:workers`); the bot's
  scheduler reads the sum as its capacity and ignores workers not seen for a while. The same thread stamps the
  process's heartbeat file (`bot.health`) after each heartbeat Redis took, while Dramatiq's consumer and worker
  threads are all alive: `python -m bot.healthcheck --worker` reads it.
"""

from __future__ import annotations

import logging
import os
import socket
import threading

import dramatiq
from dramatiq.middleware import Middleware

from bot.health import WorkerBeat
from bot.worker_store import WorkerStore

log = logging.getLogger(__name__)

HANDOFF_POLL_MS = 50
HEARTBEAT_SECONDS = 5.0
STALE_AFTER_SECONDS = 20.0  # the bot counts a worker until this long after its last heartbeat


class WorkerPresence(Middleware):
    def __init__(self, store: WorkerStore, beat: WorkerBeat | None = None, max_age: float = 30.0) -> None:
        self.store = store
        self.beat = beat
        self.max_age = max_age
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}"
        self._stop = threading.Event()
        self._threads = 0
        self._worker: dramatiq.Worker | None = None

    def before_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        self._threads = worker.worker_threads
        self._worker = worker
        worker.queue_prefetch = worker.worker_threads
        worker.worker_timeout = HANDOFF_POLL_MS
        self._stop.clear()

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        if self.beat is not None:
            self.beat.clear_leftovers(self.max_age)
        threading.Thread(target=self._beat, name="spotbot-heartbeat", daemon=True).start()

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        self._stop.set()
        if self.beat is not None:
            self.beat.remove()
        try:
            self.store.leave(self.worker_id)
        except Exception as error:  # Redis down at shutdown: the entry goes stale by itself
            log.warning("could not sign off worker %s: %s", self.worker_id, error)

    def _beat(self) -> None:
        while not self._stop.is_set():
            try:
                self.store.heartbeat(self.worker_id, self._threads)
                self._stamp()
            except Exception as error:  # Redis unreachable: try again next beat
                log.warning("worker heartbeat failed: %s", error)
            self._stop.wait(min(HEARTBEAT_SECONDS, self.max_age / 3))

    def _stamp(self) -> None:
        """Vouch for this process only while all of Dramatiq's threads run (a dead consumer fetches nothing)."""
        worker = self._worker
        if self.beat is None or worker is None:
            return
        threads = [*worker.consumers.values(), *worker.workers]
        if all(thread.is_alive() for thread in threads):
            self.beat.stamp()
        else:
            log.error("a Dramatiq thread of worker %s died: it no longer reports healthy", self.worker_id)
