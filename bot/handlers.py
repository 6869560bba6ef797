"""Telegram handlers: thin, they validate, write request state, enqueue, and answer at once.

Everything slower (metadata, downloads, sending files, progress edits) happens in the workers and
in `bot.delivery`.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from telegram import LinkPreviewOptions, Message, Update
from telegram.constants import ChatType, MessageEntityType
from telegram.error import BadRequest, NetworkError, TelegramError
from telegram.ext import ContextTypes

from bot import texts
from bot.delivery import cancel_keyboard
from bot.pacing import ChatPacer
from bot.progress import render_progress, render_status_line
from bot.requests import RequestMeta, RequestSnapshot
from bot.settings import BotSettings
from bot.state import RequestStore
from pipeline.links import RejectedLink, ShortLink, SpotifyRef, parse_links

log = logging.getLogger(__name__)

CALLBACK_CANCEL = re.compile(r"cancel:([0-9a-f]{12})")


@dataclass
class Handlers:
    settings: BotSettings
    store: RequestStore
    pacer: ChatPacer
    enqueue_resolve: Callable[[str], None]

    # --- helpers ------------------------------------------------------------------------------------
    def _allowed(self, update: Update) -> bool:
        user = update.effective_user
        return self.settings.allowed_users.allows(user.id if user else None)

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

    async def _refuse(self, update: Update) -> None:
        user = update.effective_user
        log.info("refused user %s", user.id if user else None)
        if update.effective_message:
            await self._reply(update.effective_message, texts.refusal(user.id if user else None))

    # --- commands -----------------------------------------------------------------------------------
    async def help(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if not self._allowed(update):
            await self._refuse(update)
            return
        assert update.effective_message
        await self._reply(update.effective_message, texts.HELP)

    async def status(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if not self._allowed(update):
            await self._refuse(update)
            return
        message = update.effective_message
        assert message
        now = time.time()
        active = (self.store.load(rid) for rid in self.store.chat_active(message.chat.id))
        snapshots = [s for s in active if s and not s.settled]  # settled = over for the user, even if not yet closed
        if not snapshots:
            await self._reply(message, texts.NOTHING_RUNNING)
            return
        lines = [f"{len(snapshots)} request(s) running:"] + [render_status_line(s, now) for s in snapshots]
        await self._reply(message, "\n".join(lines)[:4096])

    async def cancel(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if not self._allowed(update):
            await self._refuse(update)
            return
        message, user = update.effective_message, update.effective_user
        assert message and user
        mine = [rid for rid in self.store.chat_active(message.chat.id) if self._owned_by(rid, user.id)]
        for rid in mine:
            self.store.cancel(rid)
        await self._reply(message, texts.cancelling(len(mine)) if mine else texts.NOTHING_TO_CANCEL)

    def _owned_by(self, rid: str, user_id: int) -> bool:
        meta = self.store.meta(rid)
        return meta is not None and meta.user_id == user_id

    async def cancel_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Callback data comes from the client and can be anything: only a well-formed id of the presser's own
        request acts."""
        query = update.callback_query
        assert query
        if not self._allowed(update):
            await query.answer(texts.refusal(query.from_user.id)[:200], show_alert=True)
            return
        match = CALLBACK_CANCEL.fullmatch(query.data or "")
        if match is None:
            await query.answer(texts.BUTTON_INVALID)
            return
        rid = match.group(1)
        meta = self.store.meta(rid)
        if meta is not None and meta.user_id != query.from_user.id:
            await query.answer(texts.BUTTON_NOT_YOURS, show_alert=True)
            return
        if meta is None or rid not in self.store.chat_active(meta.chat_id):
            await query.answer(texts.BUTTON_EXPIRED)
            return
        self.store.cancel(rid)
        await query.answer(texts.CANCELLING)

    async def unknown_command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        if message is None or not self._addressed(message, context.bot.username):
            return
        if not self._allowed(update):
            await self._refuse(update)
            return
        await self._reply(message, texts.UNKNOWN_COMMAND)

    # --- messages -----------------------------------------------------------------------------------
    async def message(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        if message is None or message.from_user is None or message.from_user.is_bot:
            return
        if not self._addressed(message, context.bot.username):
            return  # group chatter not meant for the bot: deliberate silence
        if not self._allowed(update):
            await self._refuse(update)
            return
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
        running = len(self.store.user_active(message.from_user.id))
        room = self.settings.max_requests_per_user - running
        if room < len(accepted):
            await self._reply(message, texts.too_many_requests(self.settings.max_requests_per_user))
        for link in accepted[: max(0, room)]:
            await self._start_request(message, link.url)

    async def _start_request(self, message: Message, link: str) -> None:
        """Answer at once with the progress message, then record the request and queue its resolution.

        The state is written after the reply so the delivery loop never sees a request without its
        progress message (it would send a second one); if the reply fails, the loop sends it later.
        """
        assert message.from_user
        meta = RequestMeta(
            id=uuid.uuid4().hex[:12],
            chat_id=message.chat.id,
            user_id=message.from_user.id,
            link=link,
            created_at=time.time(),
            reply_to=message.message_id,
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
        self.store.create(meta, progress_message_id=sent.message_id if sent else None, progress_text=text)
        try:
            self.enqueue_resolve(meta.id)
        except Exception:  # the queue is unreachable: say so rather than leave the request "reading" forever
            log.exception("request %s: could not queue it", meta.id)
            self.store.fail(meta.id, texts.QUEUE_DOWN)

    async def on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        if isinstance(context.error, NetworkError) and not isinstance(context.error, BadRequest):
            log.warning("Telegram unreachable: %s", context.error)  # polling retries by itself
        else:
            log.error("error while handling an update", exc_info=context.error)
        if isinstance(update, Update) and update.effective_chat and update.effective_message:
            try:
                await update.effective_message.reply_text(texts.INTERNAL_ERROR)
            except Exception:
                log.warning("could not report the error to chat %s", update.effective_chat.id)
