"""One chat's sender: the only place that sends audios and edits progress messages to that chat.

It wakes when something of the chat changed (or when the pacer, an edit interval or a retry is due), and
does one Telegram call per step: the next audio of the chat's requests in turn (each request strictly in
album/playlist order, see `_next_audio`), or a due progress edit, at the chat's pace. A track is recorded as sent right
after Telegram accepts it; if Redis is down at that moment, it is held as "unrecorded" and never sent
twice. Every Telegram error leaves the request able to finish or be cancelled:

- 429 RetryAfter: nothing goes to the chat before Telegram allows; network errors back off.
- ChatMigrated (a group became a supergroup): the chat's requests go on in the new chat.
- Forbidden (blocked, removed from the group): the chat's requests are cancelled.
- BadRequest: a cached file_id Telegram no longer knows is fetched again; a refused file fails the track;
  a progress message that can't be edited is sent anew, and after repeated refusals the request goes on
  without one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING

from redis.exceptions import RedisError
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, LinkPreviewOptions
from telegram.error import BadRequest, ChatMigrated, Forbidden, NetworkError, RetryAfter, TelegramError

from bot import texts
from bot.lifecycle import REQUEST_FINAL, RequestStatus
from bot.progress import edit_wait, render_progress
from bot.request_view import RequestView

if TYPE_CHECKING:
    from bot.delivery import Delivery
    from bot.request_store import RequestStore

log = logging.getLogger(__name__)

UPLOAD_TIMEOUT = 600.0
IDLE_SECONDS = 30.0  # nothing to do: look again after this long even without a wake-up
MAX_PROGRESS_FAILURES = 3
CANCEL_PREFIX = "cancel:"


def cancel_keyboard(rid: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[InlineKeyboardButton("✖ Cancel", callback_data=f"{CANCEL_PREFIX}{rid}")]])


def retry_after_seconds(error: RetryAfter) -> float:
    value = error.retry_after
    return value.total_seconds() if hasattr(value, "total_seconds") else float(value)


class ChatSender:
    def __init__(self, delivery: Delivery, chat_id: int) -> None:
        self.delivery = delivery
        self.chat_id = chat_id
        self._wake = asyncio.Event()
        self._redis_failures = 0

    @property
    def store(self) -> RequestStore:
        return self.delivery.store

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        while not self.delivery.stopping:
            views = self.delivery.chat_views(self.chat_id)
            if not views:
                return
            try:
                delay = await self._step(views)
                if self._redis_failures:
                    log.info("chat %s: storage reachable again", self.chat_id)
                self._redis_failures = 0
            except RedisError as error:
                self._redis_failures += 1
                delay = min(5.0, 0.5 * 2**self._redis_failures)
                if self._redis_failures == 1:
                    log.warning("chat %s: storage unreachable (%s); retrying", self.chat_id, error)
            except Exception:
                log.exception("chat %s: delivery step failed", self.chat_id)
                delay = 1.0
            if delay > 0:
                await self._sleep(delay)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)
        self._wake.clear()

    # --- one step ---------------------------------------------------------------------------------
    async def _step(self, views: list[RequestView]) -> float:
        """Do the next thing for this chat; returns how long to wait before the next step."""
        for view in views:
            await self._bookkeep(view)
            if view.final_shown:
                await self.delivery.close(view)
                return 0.0
        now = time.time()
        streaming = any(view.ready_to_send() is not None for view in views)
        waits = [IDLE_SECONDS]
        edit = self._due_edit(views, now, streaming, waits)
        audio = None if edit else self._next_audio(views)
        if edit is None and audio is None:
            return min(waits)
        wait = self.delivery.pacer.wait_time(self.chat_id)
        if wait > 0:
            if edit:
                edit[0].dirty = True  # rendered but not shown: render again when the chat's turn comes
            return wait
        if edit:
            await self._edit_progress(*edit)
        elif audio:
            await self._send_audio(*audio)
        return 0.0

    async def _bookkeep(self, view: RequestView) -> None:
        """Record sends Redis missed, move the delivery pointer, and finish a request that is all delivered."""
        for index, file_id in list(view.unrecorded.items()):
            await self._record_sent(view, index, file_id)
        for index in view.interrupted_sends():
            log.warning("request %s track %d: the bot stopped while sending it; not sending it twice", view.rid, index)
            await self._fail_track(view, index, texts.INTERRUPTED_SEND)
        if view.advance_pointer():
            await self.store.set_next_send(view.rid, view.next_send)
        if view.all_delivered and await self.store.finish(view.rid):
            view.snapshot.status = RequestStatus.DONE
            view.dirty = True

    def _due_edit(
        self, views: list[RequestView], now: float, streaming: bool, waits: list[float]
    ) -> tuple[RequestView, str] | None:
        interval = self.delivery.settings.progress_interval
        for view in views:
            snapshot = view.snapshot
            final = snapshot.status in REQUEST_FINAL
            if view.progress_broken:
                view.final_shown = final
                continue
            if not view.dirty:
                continue
            wait = edit_wait(now, snapshot.progress_at, interval, streaming=streaming, final=final)
            if wait > 0:
                waits.append(wait)
                continue
            text = render_progress(snapshot, now)
            view.dirty = False
            if text != snapshot.progress_text or snapshot.progress_message_id is None:
                return view, text
            view.final_shown = final
        return None

    @staticmethod
    def _next_audio(views: list[RequestView]) -> tuple[RequestView, int] | None:
        """The chat's requests take turns by position: the ready track with the lowest position in its request
        goes next (ties: the request shared first), and a request's n-th track never overtakes the n-th track
        of a request shared before it (still being read: no position to wait for)."""
        best: tuple[int, int, RequestView] | None = None
        earlier_pointer = math.inf  # the lowest unsettled position among the requests shared before
        for order, view in enumerate(views):  # in the order shared
            index = view.ready_to_send()
            if index is not None and index < earlier_pointer and (best is None or (index, order) < best[:2]):
                best = (index, order, view)
            if view.status == RequestStatus.RUNNING and not view.all_delivered:
                earlier_pointer = min(earlier_pointer, view.next_send)
        return (best[2], best[0]) if best else None

    # --- Telegram calls ---------------------------------------------------------------------------
    async def _claim(self, view: RequestView, index: int) -> bool:
        """Claim the track in Redis before each try of its audio (held in memory first: a claim whose answer
        is lost is still ours); refused when the copy was stale, which then takes the stored state."""
        view.claims.add(index)
        new = await self.store.claim(view.rid, index)
        if new is None:
            view.claims.discard(index)
            current = await self.store.state(view.rid, index)
            if current is not None:
                view.set_state(index, current)
            return False
        view.set_state(index, new)
        return True

    async def _send_audio(self, view: RequestView, index: int) -> None:
        delivery, pacer = self.delivery, self.delivery.pacer
        if not await self._claim(view, index):
            return
        state, track = view.snapshot.states[index], view.snapshot.tracks[index]
        thumbnail = filename = None
        if state.file_id:
            audio: str | Path = state.file_id
        else:
            if not state.path or not Path(state.path).is_file():
                await self._fail_track(view, index, "the downloaded file was lost; please send the link again")
                return
            audio = Path(state.path)
            filename = audio.name
            thumbnail = Path(state.thumb_path) if state.thumb_path and Path(state.thumb_path).is_file() else None
        try:
            message = await delivery.bot.send_audio(
                self.chat_id,
                audio,
                title=state.title or track.title,
                performer=state.performer or ", ".join(track.artists),
                duration=round(state.duration_s) if state.duration_s else None,
                thumbnail=thumbnail,
                filename=filename,
                message_thread_id=view.snapshot.meta.thread_id,
                read_timeout=UPLOAD_TIMEOUT,
                write_timeout=UPLOAD_TIMEOUT,
            )
        except BadRequest as error:
            pacer.sent(self.chat_id)
            if state.file_id:
                log.info("request %s track %d: cached upload refused (%s); fetching it again", view.rid, index, error)
                await self.store.drop_upload(delivery.settings.audio_settings_key, track.spotify_id)
                new = await self.store.reupload(view.rid, index)
                if new is not None:
                    view.claims.discard(index)
                    view.set_state(index, new)
                    delivery.request_schedule()
                return
            log.warning("request %s track %d refused by Telegram: %s", view.rid, index, error)
            await self._fail_track(view, index, "Telegram refused the file")
            return
        except TelegramError as error:
            await self._telegram_failed(error, f"request {view.rid} track {index}")
            return
        pacer.sent(self.chat_id)
        if delivery.activity is not None:
            delivery.activity.delivered(cached=bool(state.file_id), seconds=time.time() - view.snapshot.meta.created_at)
        file_id = message.audio.file_id if message.audio else state.file_id
        view.unrecorded[index] = file_id
        await self._record_sent(view, index, file_id)

    async def _record_sent(self, view: RequestView, index: int, file_id: str | None) -> None:
        state, track = view.snapshot.states[index], view.snapshot.tracks[index]
        new = await self.store.sent(view.rid, index, file_id)
        if new is None:  # refused: recorded already (an answer lost to a timeout), or cancelled meanwhile
            new = await self.store.state(view.rid, index)
        view.unrecorded.pop(index, None)
        view.claims.discard(index)
        if new is not None:
            view.set_state(index, new)
        if file_id:
            upload = {
                "file_id": file_id,
                "title": state.title or track.title,
                "performer": state.performer or ", ".join(track.artists),
                "duration_s": state.duration_s,
                "size_bytes": state.size_bytes,
            }
            await self.store.remember_upload(self.delivery.settings.audio_settings_key, track.spotify_id, upload)
        if state.path:
            await asyncio.to_thread(self.delivery.work_area.remove_folder, Path(state.path).parent)

    async def _fail_track(self, view: RequestView, index: int, reason: str) -> None:
        new = await self.store.fail(view.rid, index, reason)
        view.claims.discard(index)
        if new is not None:
            view.set_state(index, new)

    async def _edit_progress(self, view: RequestView, text: str) -> None:
        bot, pacer, snapshot = self.delivery.bot, self.delivery.pacer, view.snapshot
        final = snapshot.status in REQUEST_FINAL
        markup = None if final else cancel_keyboard(view.rid)
        try:
            if snapshot.progress_message_id is None:
                message = await bot.send_message(
                    self.chat_id,
                    text,
                    reply_markup=markup,
                    message_thread_id=snapshot.meta.thread_id,
                    link_preview_options=LinkPreviewOptions(is_disabled=True),
                )
                snapshot.progress_message_id = message.message_id
                await self.store.set_progress_message(view.rid, message.message_id)
            else:
                await bot.edit_message_text(
                    text, chat_id=self.chat_id, message_id=snapshot.progress_message_id, reply_markup=markup
                )
        except BadRequest as error:
            pacer.sent(self.chat_id)
            if "not modified" not in str(error).lower():
                self._progress_refused(view, error)
                return
        except TelegramError as error:
            view.dirty = True
            await self._telegram_failed(error, f"request {view.rid} progress")
            return
        pacer.sent(self.chat_id)
        snapshot.progress_text, snapshot.progress_at = text, time.time()
        view.progress_failures = 0
        view.final_shown = final
        await self.store.set_progress_memo(view.rid, text, snapshot.progress_at)

    def _progress_refused(self, view: RequestView, error: BadRequest) -> None:
        view.progress_failures += 1
        view.dirty = True
        if view.progress_failures >= MAX_PROGRESS_FAILURES:
            log.warning("request %s: Telegram refuses its progress message (%s); going on without it", view.rid, error)
            view.progress_broken = True
        else:
            log.info("request %s: progress message refused (%s); sending a new one", view.rid, error)
            view.snapshot.progress_message_id = None

    async def _telegram_failed(self, error: TelegramError, what: str) -> None:
        """The policy for every Telegram error but BadRequest (handled where its meaning is known)."""
        pacer = self.delivery.pacer
        if isinstance(error, RetryAfter):
            pacer.retry_after(self.chat_id, retry_after_seconds(error))
        elif isinstance(error, ChatMigrated):
            log.info("chat %s became %s: its requests go on there", self.chat_id, error.new_chat_id)
            await self.delivery.migrate_chat(self.chat_id, error.new_chat_id)
        elif isinstance(error, Forbidden):
            log.info("chat %s is closed to the bot (%s): cancelling its requests", self.chat_id, error)
            await self.delivery.chat_gone(self.chat_id)
        elif isinstance(error, NetworkError):
            wait = pacer.failed(self.chat_id)
            log.warning("%s: Telegram unreachable (%s); retry in %.0f s", what, error, wait)
        else:
            wait = pacer.failed(self.chat_id)
            log.warning("%s: Telegram error (%s); retry in %.0f s", what, error, wait)
