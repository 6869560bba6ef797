"""The result handler: the one paced sender for every chat, living in the bot process.

Each tick it walks the active requests (state in Redis) and, per chat, in order:
1. tops up the request's window of queued track messages (fairness: a 500-track playlist keeps only
   TRACK_WINDOW messages in the queue, so another chat's track waits behind a few tracks, not 500);
2. sends the ready tracks strictly in album/playlist order (a file, or a cached file_id);
3. edits the progress message, at most once per PROGRESS_INTERVAL and never to identical text;
4. when settled, writes the final summary, removes leftover files and lets the state expire.

State is re-read from Redis every tick, so a restarted bot resumes where it stopped; a track is
marked "sent" right after Telegram accepts it and the delivery pointer never goes back, so a
retried or duplicated track message is never delivered twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter

from bot.pacing import ChatPacer
from bot.progress import render_progress
from bot.requests import RequestSnapshot
from bot.settings import BotSettings
from bot.state import RequestStore

log = logging.getLogger(__name__)

TICK_SECONDS = 0.5
UPLOAD_TIMEOUT = 600.0
INFLIGHT = ("queued", "running", "retrying")
SWEEP_EVERY = 60.0  # seconds between sweeps of DOWNLOAD_DIR (at most; see Delivery.sweep_every)


def cancel_keyboard(rid: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[InlineKeyboardButton("✖ Cancel", callback_data=f"cancel:{rid}")]])


def retry_after_seconds(error: RetryAfter) -> float:
    value = error.retry_after
    return value.total_seconds() if hasattr(value, "total_seconds") else float(value)


class Delivery:
    def __init__(
        self,
        bot: Bot,
        store: RequestStore,
        settings: BotSettings,
        enqueue_track: Callable[[str, int], None],
        pacer: ChatPacer,
    ) -> None:
        self.bot = bot
        self.store = store
        self.settings = settings
        self.enqueue_track = enqueue_track
        self.pacer = pacer
        self._chat_tasks: dict[int, asyncio.Task[None]] = {}
        self._stopping = asyncio.Event()
        self.orphan_age = settings.orphan_minutes * 60
        # Sweep at least twice per orphan age: with a short ORPHAN_MINUTES orphans go promptly too.
        self.sweep_every = min(SWEEP_EVERY, self.orphan_age / 2)

    # --- the loop -----------------------------------------------------------------------------------
    async def run(self) -> None:
        last_sweep = -math.inf  # the first sweep at start: a crash's leftovers go at once
        while not self._stopping.is_set():
            try:
                await self.tick()
                if time.monotonic() - last_sweep > self.sweep_every:
                    last_sweep = time.monotonic()
                    self.sweep()
            except Exception:  # Redis down, a bug in one request: keep serving the others
                log.exception("delivery tick failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), TICK_SECONDS)
        if self._chat_tasks:
            await asyncio.gather(*self._chat_tasks.values(), return_exceptions=True)

    def stop(self) -> None:
        self._stopping.set()

    def sweep(self, now: float | None = None) -> list[Path]:
        """Remove request folders that no active request owns (left by a crash or a late worker)."""
        root = self.settings.download_dir
        if not root.is_dir():
            return []
        now = time.time() if now is None else now
        active = set(self.store.active())
        removed = []
        for entry in root.iterdir():
            if entry.is_dir() and entry.name not in active and now - entry.stat().st_mtime > self.orphan_age:
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(entry)
        if removed:
            log.info("swept %d orphaned folder(s) from %s", len(removed), root)
        return removed

    async def tick(self) -> None:
        by_chat: dict[int, list[str]] = {}
        for rid in self.store.active():
            meta = self.store.meta(rid)
            if meta is None:
                self.store.forget(rid)
                continue
            by_chat.setdefault(meta.chat_id, []).append(rid)
        for chat_id, rids in by_chat.items():
            task = self._chat_tasks.get(chat_id)
            if task is None or task.done():
                self._chat_tasks[chat_id] = asyncio.create_task(self._serve_chat(rids))
        for chat_id in [c for c, t in self._chat_tasks.items() if t.done()]:
            del self._chat_tasks[chat_id]

    async def _serve_chat(self, rids: list[str]) -> None:
        for rid in rids:
            if self._stopping.is_set():
                return
            try:
                await self.advance(rid)
            except Exception:
                log.exception("request %s: delivery step failed", rid)

    # --- one request --------------------------------------------------------------------------------
    async def advance(self, rid: str) -> None:
        snapshot = self.store.load(rid)
        if snapshot is None:
            self.store.forget(rid)
            return
        if snapshot.phase == "running" and not snapshot.cancelled:
            self._top_up(snapshot)
            if not self._progress_due(snapshot):  # a due edit goes first, or a stream of tracks starves it
                await self._deliver_ready(snapshot)
        if await self._update_progress(snapshot) and snapshot.settled:
            self._finish(snapshot)

    def _top_up(self, snapshot: RequestSnapshot) -> None:
        rid = snapshot.meta.id
        inflight = sum(1 for s in snapshot.states if s.status in INFLIGHT)
        position = self.store.next_enqueue(rid)
        start = position
        while inflight < self.settings.track_window and position < snapshot.total:
            if snapshot.states[position].status == "pending":
                self.enqueue_track(rid, position)
                self.store.mark_queued(rid, position)
                snapshot.states[position].status = "queued"
                inflight += 1
            position += 1
        if position != start:
            self.store.set_next_enqueue(rid, position)

    async def _deliver_ready(self, snapshot: RequestSnapshot) -> None:
        rid, chat_id = snapshot.meta.id, snapshot.meta.chat_id
        while snapshot.next_send < snapshot.total and not self._stopping.is_set():
            state = snapshot.states[snapshot.next_send]
            if state.status == "ready":
                if not self.pacer.ready(chat_id) or not await self._send_track(snapshot, snapshot.next_send):
                    return
            elif state.status not in ("sent", "failed", "cancelled"):
                return
            snapshot.next_send += 1
            self.store.set_next_send(rid, snapshot.next_send)

    async def _send_track(self, snapshot: RequestSnapshot, index: int) -> bool:
        """Send one ready track; True when it is settled (sent, or failed for good)."""
        rid, chat_id = snapshot.meta.id, snapshot.meta.chat_id
        state, track = snapshot.states[index], snapshot.tracks[index]
        audio_key = self.settings.audio_settings_key
        thumbnail = None
        filename = None
        if state.file_id:
            audio: str | Path = state.file_id
        else:
            if not state.path or not Path(state.path).is_file():
                return self._fail_track(snapshot, index, "the downloaded file was lost; please send the link again")
            audio = Path(state.path)
            filename = audio.name
            thumbnail = Path(state.thumb_path) if state.thumb_path and Path(state.thumb_path).is_file() else None
        try:
            message = await self.bot.send_audio(
                chat_id,
                audio,
                title=state.title or track.title,
                performer=state.performer or ", ".join(track.artists),
                duration=round(state.duration_s) if state.duration_s else None,
                thumbnail=thumbnail,
                filename=filename,
                read_timeout=UPLOAD_TIMEOUT,
                write_timeout=UPLOAD_TIMEOUT,
            )
        except RetryAfter as error:
            self.pacer.retry_after(chat_id, retry_after_seconds(error))
            return False
        except Forbidden:
            log.info("chat %s blocked the bot: cancelling request %s", chat_id, rid)
            self.store.cancel(rid)
            snapshot.cancelled = True
            return False
        except BadRequest as error:
            log.warning("request %s track %d refused by Telegram: %s", rid, index, error)
            if state.file_id:
                self.store.drop_upload(audio_key, track.spotify_id)
            self.pacer.sent(chat_id)
            return self._fail_track(snapshot, index, "Telegram refused the file")
        except NetworkError as error:
            wait = self.pacer.failed(chat_id)
            log.warning("request %s track %d: Telegram unreachable (%s); retry in %.0f s", rid, index, error, wait)
            return False
        self.pacer.sent(chat_id)
        file_id = message.audio.file_id if message.audio else state.file_id
        self.store.update_state(rid, index, force=True, status="sent", file_id=file_id, path=None, thumb_path=None)
        state.status = "sent"
        if file_id:
            upload = {
                "file_id": file_id,
                "title": state.title or track.title,
                "performer": state.performer or ", ".join(track.artists),
                "duration_s": state.duration_s,
                "size_bytes": state.size_bytes,
            }
            self.store.remember_upload(audio_key, track.spotify_id, upload)
        if state.path:
            shutil.rmtree(Path(state.path).parent, ignore_errors=True)
        return True

    def _fail_track(self, snapshot: RequestSnapshot, index: int, reason: str) -> bool:
        self.store.update_state(snapshot.meta.id, index, force=True, status="failed", reason=reason)
        snapshot.states[index].status = "failed"
        snapshot.states[index].reason = reason
        return True

    def _progress_check(self, snapshot: RequestSnapshot, now: float) -> tuple[str, bool, bool]:
        """The progress text now, whether the message already shows it, and whether an edit is due
        (PROGRESS_INTERVAL passed since the last one): the one place that rule lives."""
        text = render_progress(snapshot, now)
        last_text, last_at = self.store.progress_memo(snapshot.meta.id)
        return text, text == last_text, now - last_at >= self.settings.progress_interval

    def _progress_due(self, snapshot: RequestSnapshot) -> bool:
        """The progress message shows stale text and PROGRESS_INTERVAL has passed since its last edit."""
        _, current, due = self._progress_check(snapshot, time.time())
        return due and not current

    async def _update_progress(self, snapshot: RequestSnapshot) -> bool:
        """Edit the progress message if due; True when the message shows the current text."""
        rid, chat_id = snapshot.meta.id, snapshot.meta.chat_id
        now = time.time()
        text, current, due = self._progress_check(snapshot, now)
        if current:
            return True
        if not due or not self.pacer.ready(chat_id):
            return False
        markup = None if snapshot.settled else cancel_keyboard(rid)
        try:
            if snapshot.progress_message_id is None:
                message = await self.bot.send_message(chat_id, text, reply_markup=markup)
                self.store.set_progress_message(rid, message.message_id)
            else:
                await self.bot.edit_message_text(
                    text, chat_id=chat_id, message_id=snapshot.progress_message_id, reply_markup=markup
                )
        except RetryAfter as error:
            self.pacer.retry_after(chat_id, retry_after_seconds(error))
            return False
        except Forbidden:
            self.store.cancel(rid)
            self.store.set_progress_memo(rid, text, now)
            return True
        except BadRequest as error:
            if "not modified" not in str(error).lower():
                log.info("request %s: progress message gone (%s); sending a new one", rid, error)
                self.pacer.sent(chat_id)
                message = await self.bot.send_message(chat_id, text, reply_markup=markup)
                self.store.set_progress_message(rid, message.message_id)
        except NetworkError:
            self.pacer.failed(chat_id)
            return False
        self.pacer.sent(chat_id)
        self.store.set_progress_memo(rid, text, now)
        return True

    def _finish(self, snapshot: RequestSnapshot) -> None:
        shutil.rmtree(self.settings.download_dir / snapshot.meta.id, ignore_errors=True)
        self.store.finish(snapshot.meta.id)
        log.info("request %s finished: %d delivered", snapshot.meta.id, snapshot.delivered)
