"""The result handler in the bot process: follows the events, schedules tracks, and runs one sender per chat.

- **Events, not ticks.** Workers announce every transition on a Redis stream (`bot.schema`); the bot
  blocks on it, applies each change to its live copy of the request (`bot.request_view`) and wakes that
  chat's sender (`bot.chat_sender`). The work per event is one track's state, whatever the playlist's size.
- **Fair share.** After each batch of events the scheduler (`bot.scheduling`) fills the free worker slots:
  a request alone uses every live worker thread, several share them.
- **Self-healing.** A slow reconciliation (every RECONCILE_SECONDS, and after Redis comes back) re-reads
  every open request, re-drives what is stuck (`bot.recovery`), sweeps crash leftovers from the bot's own
  work area, and in all-in-one mode lets the in-memory store drop expired keys.

Every Redis call here is asynchronous; a Redis outage pauses delivery (logged once) and never the bot.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from redis.exceptions import RedisError
from telegram import Bot

from bot import schema
from bot.activity import Activity
from bot.chat_sender import ChatSender
from bot.lifecycle import RequestStatus, TrackStatus
from bot.pacing import ChatPacer
from bot.recovery import GAVE_UP, RESOLVE_GAVE_UP, Limits, resolve_repair, track_repair
from bot.request_store import RequestStore
from bot.request_view import RequestView
from bot.requests import TrackState
from bot.scheduling import allocate, hold_limit_for, slots_for
from bot.settings import BotSettings
from bot.work_area import WorkArea
from bot.worker_presence import STALE_AFTER_SECONDS

log = logging.getLogger(__name__)

EVENT_BLOCK_MS = 1000
RECONCILE_SECONDS = 30.0
CAPACITY_SECONDS = 2.0
SWEEP_EVERY = 60.0  # seconds between sweeps of the work area (at most; see Delivery.sweep_every)
KEYSPACE_WALK_SECONDS = 600.0  # all-in-one: fakeredis frees expired keys only when it walks them


@dataclass(frozen=True)
class Enqueue:
    """Sends the Dramatiq messages; synchronous (the broker's client), so the bot calls them in a thread."""

    resolve: Callable[[str], None]
    track: Callable[[str, int], None]


class Delivery:
    def __init__(
        self,
        bot: Bot,
        store: RequestStore,
        settings: BotSettings,
        enqueue: Enqueue,
        pacer: ChatPacer,
        *,
        limits: Limits,
        all_in_one: bool = False,
        activity: Activity | None = None,
    ) -> None:
        self.bot = bot
        self.store = store
        self.settings = settings
        self.enqueue = enqueue
        self.pacer = pacer
        self.limits = limits
        self.all_in_one = all_in_one
        self.activity = activity
        self.alive_at = 0.0  # the last time the events loop read Redis (bot.health)
        self.workers = 0  # live worker processes
        self.work_area = WorkArea(settings.download_dir)
        self.views: dict[str, RequestView] = {}
        self.senders: dict[int, ChatSender] = {}
        self._sender_tasks: dict[int, asyncio.Task[None]] = {}
        self.capacity = 0  # live worker threads
        self.stopping = False
        self._stop = asyncio.Event()
        self._schedule_due = asyncio.Event()
        self.orphan_age = settings.orphan_minutes * 60
        # Sweep at least twice per orphan age: with a short ORPHAN_MINUTES orphans go promptly too.
        self.sweep_every = min(SWEEP_EVERY, self.orphan_age / 2)

    # --- lifecycle --------------------------------------------------------------------------------
    async def run(self) -> None:
        """Follow the events and keep everything moving until `stop()`."""
        tasks = [
            asyncio.create_task(self._follow_events(), name="delivery-events"),
            asyncio.create_task(self._maintain(), name="delivery-maintenance"),
            asyncio.create_task(self._scheduler(), name="delivery-scheduler"),
        ]
        await self._stop.wait()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, *self._sender_tasks.values(), return_exceptions=True)

    def stop(self) -> None:
        self.stopping = True
        self._stop.set()
        for sender in self.senders.values():
            sender.wake()

    # --- events -----------------------------------------------------------------------------------
    async def _follow_events(self) -> None:
        position: str | None = None
        failures = 0
        while not self.stopping:
            try:
                if position is None:  # at start and after an outage: read everything afresh, then follow
                    position = await self.store.last_event_id()
                    await self.reconcile()
                position, events = await self.store.events(position, EVENT_BLOCK_MS)
                self.alive_at = time.time()
                if failures:
                    log.info("storage reachable again: delivery resumes")
                failures = 0
                await self._apply_events(events)
            except RedisError as error:
                failures += 1
                position = None
                if failures == 1:
                    log.warning("storage unreachable (%s): delivery pauses until it is back", error)
                await self._pause(min(5.0, 0.5 * 2**failures))
            except Exception:
                log.exception("delivery: handling events failed")
                await self._pause(1.0)

    async def _apply_events(self, events: list[tuple[str, str, str]]) -> None:
        reload: set[str] = set()
        touched: set[int] = set()
        for rid, index, raw in events:
            view = self.views.get(rid)
            if index == schema.REQUEST_EVENT or view is None:
                reload.add(rid)
            elif view.set_state(int(index), TrackState.model_validate_json(raw)):
                touched.add(view.chat_id)
        for rid in reload:
            view = await self._load(rid)
            if view is not None:
                touched.add(view.chat_id)
        for chat_id in touched:
            self._wake_chat(chat_id)
        if events:
            self.request_schedule()

    async def _load(self, rid: str) -> RequestView | None:
        """Read one request afresh into the live copy (None when it is gone or closed)."""
        snapshot = await self.store.load(rid)
        if snapshot is None or snapshot.closed:
            self.views.pop(rid, None)
            return None
        view = self.views.get(rid)
        if view is None:
            view = self.views[rid] = RequestView(snapshot)
        else:
            view.replace(snapshot)
        return view

    # --- scheduling -------------------------------------------------------------------------------
    def request_schedule(self) -> None:
        self._schedule_due.set()

    async def _scheduler(self) -> None:
        while not self.stopping:
            await self._schedule_due.wait()
            self._schedule_due.clear()
            try:
                await self.schedule()
            except RedisError as error:
                log.warning("scheduling paused: storage unreachable (%s)", error)
                await self._pause(1.0)
                self.request_schedule()
            except Exception:
                log.exception("scheduling failed")

    async def schedule(self) -> None:
        """Queue the tracks the free worker slots go to, and settle the messages still owed."""
        views = sorted(self.views.values(), key=lambda v: v.snapshot.meta.created_at)
        for view in views:
            for index, ticket in sorted(view.owed.items()):
                await self._settle_owed(view, index, ticket)
        demands = [d for view in views if (d := view.demand()) is not None]
        window = self.settings.track_window or math.inf
        picks = allocate(demands, slots_for(self.capacity), window=window, hold_limit=hold_limit_for(self.capacity))
        for rid in picks:
            view = self.views.get(rid)
            index = view.next_waiting() if view else None
            if view is None or index is None:
                continue
            ticket = view.owed[index] = uuid.uuid4().hex  # owed until sent, even if the answer below is lost
            state = await self.store.queue(rid, index, ticket)
            if state is None:  # the copy was behind: read the track again
                del view.owed[index]
                fresh = await self.store.state(rid, index)
                if fresh is not None:
                    view.set_state(index, fresh)
                continue
            view.set_state(index, state)
            await self._send_track_message(view, index)

    async def _settle_owed(self, view: RequestView, index: int, ticket: str) -> None:
        """A queue transition whose message is not sent yet: send it if the transition is ours (its ticket)."""
        state = await self.store.state(view.rid, index)
        if state is not None:
            view.set_state(index, state)
        if state is not None and state.status == TrackStatus.QUEUED and state.ticket == ticket:
            await self._send_track_message(view, index)
        else:
            view.owed.pop(index, None)

    async def _send_track_message(self, view: RequestView, index: int) -> None:
        try:
            await asyncio.to_thread(self.enqueue.track, view.rid, index)
        except Exception as error:  # the broker is unreachable: the next pass tries again
            log.warning("request %s track %d: could not queue it yet (%s)", view.rid, index, error)
            self.request_schedule()
            await self._pause(1.0)
            return
        view.owed.pop(index, None)

    # --- senders ----------------------------------------------------------------------------------
    def chat_views(self, chat_id: int) -> list[RequestView]:
        """The chat's open requests in the order they were shared."""
        views = [view for view in self.views.values() if view.chat_id == chat_id]
        return sorted(views, key=lambda view: view.snapshot.meta.created_at)

    def _wake_chat(self, chat_id: int) -> None:
        sender = self.senders.get(chat_id)
        task = self._sender_tasks.get(chat_id)
        if sender is None or task is None or task.done():
            sender = self.senders[chat_id] = ChatSender(self, chat_id)
            self._sender_tasks[chat_id] = asyncio.create_task(sender.run(), name=f"chat-{chat_id}")
        sender.wake()

    async def close(self, view: RequestView) -> None:
        """The request is final and its summary shown: stop tracking it and remove its files."""
        await self.store.close(view.snapshot.meta)
        if self.activity is not None:
            self.activity.closed(view.snapshot)
        await asyncio.to_thread(self.work_area.remove_request, view.rid)
        self.views.pop(view.rid, None)
        if not self.chat_views(view.chat_id):  # its sender ends by itself: don't keep it around
            self.senders.pop(view.chat_id, None)
            self._sender_tasks.pop(view.chat_id, None)
        log.info("request %s closed (%s): %d delivered", view.rid, view.status, view.snapshot.delivered)
        self.request_schedule()

    async def migrate_chat(self, old_chat_id: int, new_chat_id: int) -> None:
        for view in self.chat_views(old_chat_id):
            meta = await self.store.migrate_chat(view.snapshot.meta, new_chat_id)
            view.snapshot.meta = meta
            view.dirty = True
        self._wake_chat(new_chat_id)

    async def chat_gone(self, chat_id: int) -> None:
        """The bot can't write to the chat any more: cancel its requests and close them without a summary."""
        for view in self.chat_views(chat_id):
            await self.store.cancel(view.rid)
            view.snapshot.status = RequestStatus.CANCELLED
            view.progress_broken = True
            view.final_shown = True

    def queue_depth(self) -> int:
        """Tracks of open requests waiting for a worker: not yet queued (fair share), or in Dramatiq's queue."""
        waiting = (TrackStatus.PENDING, TrackStatus.QUEUED, TrackStatus.RETRYING)
        return sum(
            sum(view.counts[status] for status in waiting)
            for view in self.views.values()
            if view.status == RequestStatus.RUNNING
        )

    # --- maintenance ------------------------------------------------------------------------------
    async def _maintain(self) -> None:
        last_reconcile = time.monotonic()
        last_sweep = last_walk = -math.inf  # the first sweep at start: a crash's leftovers go at once
        while not self.stopping:
            try:
                await self._refresh_capacity()
                now = time.monotonic()
                if now - last_reconcile >= RECONCILE_SECONDS:
                    last_reconcile = now
                    await self.reconcile()
                if now - last_sweep >= self.sweep_every:
                    last_sweep = now
                    await self.sweep()
                if self.all_in_one and now - last_walk >= KEYSPACE_WALK_SECONDS:
                    last_walk = now
                    await self.store.free_expired()
            except RedisError:
                pass  # the events task reports the outage once
            except Exception:
                log.exception("delivery maintenance failed")
            await self._pause(CAPACITY_SECONDS)

    async def _refresh_capacity(self) -> None:
        self.workers, capacity = await self.store.live_workers(time.time(), STALE_AFTER_SECONDS)
        if self.activity is not None:
            self.activity.metrics.worker_threads.set(capacity)
            self.activity.metrics.queue_depth.set(self.queue_depth())
        if capacity != self.capacity:
            log.info("worker capacity: %d thread(s)", capacity)
            self.capacity = capacity
            self.request_schedule()

    async def reconcile(self) -> None:
        """Re-read every open request, repair what is stuck, and wake every chat."""
        await self._refresh_capacity()
        active = await self.store.active()
        for rid in set(self.views) - set(active):
            self.views.pop(rid, None)
        now = time.time()
        for rid in active:
            view = await self._load(rid)
            if view is None:
                await self.store.forget(rid)
                continue
            await self._repair(view, now)
            self._wake_chat(view.chat_id)
        self.request_schedule()

    async def _repair(self, view: RequestView, now: float) -> None:
        snapshot, rid = view.snapshot, view.rid
        fix = resolve_repair(snapshot, now, self.limits)
        if fix == "reject":
            log.warning("request %s: reading the link never finished; giving up", rid)
            await self.store.reject(rid, RESOLVE_GAVE_UP)
        elif fix == "redrive":
            log.warning("request %s: reading the link seems lost; queuing it again", rid)
            await self.store.redrive_resolve(rid)
            await asyncio.to_thread(self.enqueue.resolve, rid)
        if snapshot.status != RequestStatus.RUNNING:
            return
        for index, state in enumerate(snapshot.states):
            repair = track_repair(state, now, self.limits)
            if repair is None:
                continue
            log.warning("request %s track %d stuck as %s: %s", rid, index, state.status, repair)
            if repair == "fail":
                new = await self.store.fail(rid, index, GAVE_UP)
            else:
                ticket = view.owed[index] = uuid.uuid4().hex
                new = await self.store.requeue(rid, index, ticket)
                if new is None:
                    view.owed.pop(index, None)
            if new is not None:
                view.set_state(index, new)

    async def sweep(self) -> None:
        active = set(await self.store.active())
        await asyncio.to_thread(self.work_area.sweep, active, self.orphan_age)

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)
