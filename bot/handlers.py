"""Telegram handlers: thin, they validate, write request state, enqueue, and answer at once.

Everything slower (metadata, downloads, sending files, progress edits) happens in the workers and in
`bot.delivery`. Access is checked once, before any handler (`guard`, group -1). State lives in Redis
behind `RequestStore` (asyncio): a command that needs it answers "storage unreachable" within
STATE_TIMEOUT seconds while Redis is down; /help and /start need none and always answer.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import re
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from redis.exceptions import RedisError
from telegram import LinkPreviewOptions, Message, Update
from telegram.constants import ChatType, MessageEntityType
from telegram.error import BadRequest, NetworkError, TelegramError
from telegram.ext import ApplicationHandlerStop, ContextTypes

from bot import texts
from bot.access import RefusalLimiter
from bot.activity import Activity
from bot.chat_sender import CANCEL_PREFIX, cancel_keyboard
from bot.pacing import ChatPacer
from bot.progress import render_progress, render_status_line
from bot.request_store import RequestStore
from bot.requests import REQUEST_ID, RequestMeta, RequestSnapshot, new_request_id
from bot.settings import BotSettings
from bot.stats import Operations, render_stats
from pipeline.errors import PipelineError
from pipeline.frontend import resolve_collection
from pipeline.links import RejectedLink, ShortLink, SpotifyRef, parse_links
from pipeline.metadata import SpotifyMetadata
from pipeline.models import Collection
from pipeline.ytdlp import ytdlp_release_age_days, ytdlp_version

if TYPE_CHECKING:
    from bot.delivery import Delivery

log = logging.getLogger(__name__)

CALLBACK_CANCEL = re.compile(re.escape(CANCEL_PREFIX) + f"({REQUEST_ID.pattern})")
OWN_COMMANDS = frozenset({"/start", "/help", "/status", "/cancel", "/stats", "/uncache"})
STATE_TIMEOUT = 1.5  # seconds a command waits for Redis before saying it is unreachable
UNCACHE_TIMEOUT = 120.0  # reading an album or playlist from Spotify for /uncache


class StateUnavailable(Exception):
    """Redis did not answer in time: the user is told, the update is dropped."""


@asynccontextmanager
async def state_access() -> AsyncIterator[None]:
    try:
        async with asyncio.timeout(STATE_TIMEOUT):
            yield
    except (RedisError, TimeoutError) as error:
        raise StateUnavailable(str(error) or type(error).__name__) from error


@dataclass
class Handlers:
    settings: BotSettings
    store: RequestStore
    pacer: ChatPacer
    enqueue_resolve: Callable[[str], None]  # synchronous (the broker's client): called in a thread
    refusals: RefusalLimiter = field(default_factory=RefusalLimiter)
    activity: Activity | None = None
    delivery: Delivery | None = None  # set once the application runs (post_init)
    _metadata: SpotifyMetadata | None = None

    # --- access (group -1: before every other handler) ----------------------------------------------
    async def guard(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Let allowed users through; refuse others (rate-limited) and stop the update here."""
        user = update.effective_user
        user_id = user.id if user else None
        if self.settings.allowed_users.allows(user_id) or self.settings.admin_users.allows(user_id):
            return
        if update.callback_query is not None:
            await update.callback_query.answer(texts.refusal(update.callback_query.from_user.id)[:200], show_alert=True)
        elif (
            (message := update.effective_message) is not None
            and (self._addressed(message, context.bot.username) or self._own_command(message, context.bot.username))
            and self.refusals.allow(message.chat.id, user.id if user else None, time.monotonic())
        ):
            log.info("refused user %s", user.id if user else None)
            await self._reply(message, texts.refusal(user.id if user else None))
        raise ApplicationHandlerStop

    @staticmethod
    def _addressed(message: Message, bot_username: str) -> bool:
        """In groups the bot acts only when mentioned, replied to, or sent a /command@bot; private chats
        always address it."""
        if message.chat.type == ChatType.PRIVATE:
            return True
        reply = message.reply_to_message
        if reply is not None and reply.from_user is not None and reply.from_user.username == bot_username:
            return True
        mention = f"@{bot_username}".lower()
        for entity, value in {**message.parse_entities(), **message.parse_caption_entities()}.items():
            if entity.type == MessageEntityType.MENTION and value.lower() == mention:
                return True
            if entity.type == MessageEntityType.BOT_COMMAND and value.lower().endswith(mention):
                return True
        return False

    @staticmethod
    def _own_command(message: Message, bot_username: str) -> bool:
        """A command this bot answers (/help, or /help@thisbot): in a group a bare one reaches every bot."""
        command, _, target = (message.text or "").partition(" ")[0].partition("@")
        return command.lower() in OWN_COMMANDS and target.lower() in ("", bot_username.lower())

    @staticmethod
    def _link_text(message: Message) -> str:
        """The text to look for links in: the text or caption, plus the targets of links hidden behind words
        (Telegram's text_link entities, e.g. in forwarded posts)."""
        hidden = [
            entity.url
            for entity in (*(message.entities or ()), *(message.caption_entities or ()))
            if entity.type == MessageEntityType.TEXT_LINK and entity.url
        ]
        return "\n".join([message.text or message.caption or "", *hidden])

    async def _reply(self, message: Message, text: str) -> None:
        await message.reply_text(text, do_quote=message.chat.type != ChatType.PRIVATE)
        self.pacer.sent(message.chat.id)

    # --- commands -----------------------------------------------------------------------------------
    async def help(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message
        await self._reply(update.effective_message, texts.HELP)

    async def status(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        assert message
        now = time.time()
        async with state_access():
            loaded = [await self.store.load(rid) for rid in await self.store.chat_active(message.chat.id)]
        snapshots = [s for s in loaded if s and not s.settled]  # settled = over for the user, even if not yet closed
        if not snapshots:
            await self._reply(message, texts.NOTHING_RUNNING)
            return
        lines = [f"{len(snapshots)} request(s) running:"] + [render_status_line(s, now) for s in snapshots]
        await self._reply(message, "\n".join(lines)[:4096])

    async def cancel(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message, user = update.effective_message, update.effective_user
        assert message and user
        cancelled = 0
        async with state_access():
            for rid in await self.store.chat_active(message.chat.id):
                meta = await self.store.meta(rid)
                if meta is not None and meta.user_id == user.id and await self.store.cancel(rid):
                    cancelled += 1
        await self._reply(message, texts.cancelling(cancelled) if cancelled else texts.NOTHING_TO_CANCEL)

    async def cancel_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Callback data comes from the client and can be anything: only a well-formed id of the presser's own
        request acts."""
        query = update.callback_query
        assert query
        match = CALLBACK_CANCEL.fullmatch(query.data or "")
        if match is None:
            await query.answer(texts.BUTTON_INVALID)
            return
        rid = match.group(1)
        async with state_access():
            meta = await self.store.meta(rid)
            if meta is not None and meta.user_id != query.from_user.id:
                await query.answer(texts.BUTTON_NOT_YOURS, show_alert=True)
                return
            cancelled = meta is not None and await self.store.cancel(rid)
        await query.answer(texts.CANCELLING if cancelled else texts.BUTTON_EXPIRED)

    # --- admin commands -----------------------------------------------------------------------------
    async def _admin(self, update: Update) -> Message | None:
        """The message of an admin's command; others get a short refusal (and None)."""
        message, user = update.effective_message, update.effective_user
        if message is None:
            return None
        if user is None or not self.settings.admin_users.allows(user.id):
            await self._reply(message, texts.ADMIN_ONLY)
            return None
        return message

    async def stats(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = await self._admin(update)
        if message is None or self.activity is None:
            return
        delivery = self.delivery
        async with state_access():
            day = await self.activity.last_day()
            cached = await self.store.count_uploads()
        version = ytdlp_version()
        ops = Operations(
            cache_entries=cached,
            queue_depth=delivery.queue_depth() if delivery else 0,
            workers=delivery.workers if delivery else 0,
            worker_threads=delivery.capacity if delivery else 0,
            ytdlp_version=version,
            ytdlp_age_days=ytdlp_release_age_days(version, datetime.date.today()),
        )
        await self._reply(message, render_stats(day, ops)[:4096])

    async def uncache(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Forget the cached uploads of a track, album or playlist: its songs are fetched afresh next time."""
        message = await self._admin(update)
        if message is None:
            return
        links = [
            link for link in parse_links(" ".join(context.args or []), limit=1) if not isinstance(link, RejectedLink)
        ]
        if not links:
            await self._reply(message, texts.UNCACHE_USAGE)
            return
        link = links[0]
        try:
            if isinstance(link, SpotifyRef) and link.kind == "track":
                ids = [link.id]
            else:
                collection = await asyncio.wait_for(asyncio.to_thread(self._collection, link), UNCACHE_TIMEOUT)
                ids = [track.spotify_id for track in collection.tracks]
        except PipelineError as error:
            await self._reply(message, texts.uncache_unreadable(error.reason))
            return
        except TimeoutError:
            await self._reply(message, texts.uncache_unreadable("Spotify took too long to answer"))
            return
        async with state_access():
            forgotten = await self.store.drop_uploads(self.settings.audio_settings_key, ids)
        log.info(
            "admin %s forgot %d cached upload(s) of %s",
            update.effective_user.id if update.effective_user else None,
            forgotten,
            link.url,
        )
        await self._reply(message, texts.uncached(forgotten, len(ids)))

    def _collection(self, link: SpotifyRef | ShortLink) -> Collection:
        """Runs in a thread: the link's tracks, read from Spotify like a worker does."""
        if self._metadata is None:
            self._metadata = SpotifyMetadata(self.settings)
        return resolve_collection(link, self.settings, self._metadata)

    async def unknown_command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        if message is None or not self._addressed(message, context.bot.username):
            return
        await self._reply(message, texts.UNKNOWN_COMMAND)

    # --- messages -----------------------------------------------------------------------------------
    async def message(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        if message is None or message.from_user is None or message.from_user.is_bot:
            return
        if not self._addressed(message, context.bot.username):
            return  # group chatter not meant for the bot: deliberate silence
        if update.edited_message is not None or update.edited_channel_post is not None:
            await self._reply(message, texts.EDITED)
            return
        limit = self.settings.max_links_per_message
        links = parse_links(self._link_text(message), limit=limit + 1)
        if len(links) > limit:
            await self._reply(message, texts.too_many_links(limit))
            return
        rejected = [(link.text, link.reason) for link in links if isinstance(link, RejectedLink)]
        accepted = [link for link in links if isinstance(link, (SpotifyRef, ShortLink))]
        if rejected:
            await self._reply(message, texts.rejected(rejected))
        if not links:
            await self._reply(message, texts.NO_LINK)
        if not accepted:
            return
        async with state_access():
            open_requests = await self.store.user_active(message.from_user.id)
        room = self.settings.max_requests_per_user - open_requests
        if room < len(accepted):
            await self._reply(message, texts.too_many_requests(self.settings.max_requests_per_user))
        for link in accepted[: max(0, room)]:
            await self._start_request(message, link.url, link.kind if isinstance(link, SpotifyRef) else "shortlink")

    async def _start_request(self, message: Message, link: str, kind: str) -> None:
        """Answer at once with the progress message, then record the request and queue its resolution.

        The state is written after the reply so the delivery never sees a request without its progress
        message (it would send a second one); if the reply fails, the delivery sends it later.
        """
        assert message.from_user
        meta = RequestMeta(
            id=new_request_id(),
            chat_id=message.chat.id,
            user_id=message.from_user.id,
            link=link,
            created_at=time.time(),
            reply_to=message.message_id,
            thread_id=message.message_thread_id if message.is_topic_message else None,
        )
        text = render_progress(RequestSnapshot(meta=meta), time.time())
        sent: Message | None = None
        try:
            sent = await message.reply_text(
                text,
                reply_markup=cancel_keyboard(meta.id),
                do_quote=True,
                link_preview_options=LinkPreviewOptions(is_disabled=True),
            )
            self.pacer.sent(message.chat.id)
        except TelegramError as error:
            log.warning("request %s: could not send the progress message yet (%s)", meta.id, error)
        try:
            async with state_access():
                await self.store.create(meta, progress_message_id=sent.message_id if sent else None, progress_text=text)
        except StateUnavailable:
            if sent is not None:
                await self._quietly(sent.edit_text(texts.STORAGE_DOWN))
            raise
        if self.activity is not None:
            self.activity.received(kind)
        try:
            await asyncio.wait_for(asyncio.to_thread(self.enqueue_resolve, meta.id), STATE_TIMEOUT)
        except Exception as error:  # the queue is unreachable: say so rather than leave the request "reading"
            log.warning("request %s: could not queue it (%s)", meta.id, error)
            async with state_access():
                await self.store.reject(meta.id, texts.QUEUE_DOWN)

    @staticmethod
    async def _quietly(call: object) -> None:
        try:
            await call  # type: ignore[misc]
        except TelegramError as error:
            log.info("could not update a reply: %s", error)

    async def on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        error = context.error
        reply = texts.INTERNAL_ERROR
        if isinstance(error, StateUnavailable):
            log.warning("storage unreachable while handling an update: %s", error)
            reply = texts.STORAGE_DOWN
        elif isinstance(error, NetworkError) and not isinstance(error, BadRequest):
            log.warning("Telegram unreachable: %s", error)  # polling retries by itself
        else:
            log.error("error while handling an update", exc_info=error)
        if not isinstance(update, Update) or update.effective_chat is None:
            return
        try:
            if update.callback_query is not None:
                await update.callback_query.answer(reply[:200])
            elif update.effective_message is not None:
                await update.effective_message.reply_text(reply)
        except Exception:
            log.warning("could not report the error to chat %s", update.effective_chat.id)
