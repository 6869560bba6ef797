"""Telegram handlers: thin, they validate, write request state, enqueue, and answer at once.

Everything slower (metadata, downloads, sending files, progress edits) happens in the workers and in
`bot.delivery`. Access is checked once, before any handler (`guard`, group -1). State lives in Redis
behind `RequestStore` (asyncio): a command that needs it answers "storage unreachable" within
STATE_TIMEOUT seconds while Redis is down; /help and /start need none and always answer.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from redis.exceptions import RedisError
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, LinkPreviewOptions, Message, Update
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
from bot.search import CALLBACK_SEARCH, SearchResults, request_link, results_keyboard, search_words
from bot.settings import BotSettings
from bot.spotify_accounts import SpotifyAccounts
from bot.stats import Operations, render_stats
from pipeline.errors import PermanentError, PipelineError, TransientError
from pipeline.frontend import resolve_collection
from pipeline.links import RejectedLink, ShortLink, SpotifyRef, parse_links
from pipeline.metadata import SpotifyMetadata
from pipeline.models import Collection, PlaylistSummary, Track
from pipeline.spotify_api import AccessRefused
from pipeline.spotify_auth import BadLoginAnswer, LoginAnswer, parse_login_answer
from pipeline.track_search import RESULTS, button_label, normalize_query
from pipeline.ytdlp_age import installed_ytdlp_age

if TYPE_CHECKING:
    from bot.delivery import Delivery

log = logging.getLogger(__name__)

CALLBACK_CANCEL = re.compile(re.escape(CANCEL_PREFIX) + f"({REQUEST_ID.pattern})")
OWN_COMMANDS = frozenset(
    {"/start", "/help", "/status", "/cancel", "/login", "/logout", "/liked", "/playlists", "/search"}
    | {"/stats", "/uncache"}
)
STATE_TIMEOUT = 1.5  # seconds a command waits for Redis before saying it is unreachable
UNCACHE_TIMEOUT = 120.0  # reading an album or playlist from Spotify for /uncache
SEARCH_CALLS = 2  # a search is one HTTP call (Spotify: plus a token): it may take this many HTTP_TIMEOUTs
PLAYLIST_PREFIX = "pl:"  # + playlist id + ":" + the asker's user id: at most 48 bytes of the 64 allowed
CALLBACK_PLAYLIST = re.compile(re.escape(PLAYLIST_PREFIX) + r"([0-9A-Za-z]{22}):([0-9]{1,20})")
MAX_PLAYLIST_BUTTONS = 100
BUTTON_LABEL_LIMIT = 60


def playlist_keyboard(playlists: list[PlaylistSummary], user_id: int) -> InlineKeyboardMarkup:
    """One button per playlist, bound to the person who asked (their login reads it)."""
    rows = []
    for playlist in playlists[:MAX_PLAYLIST_BUTTONS]:
        count = f" ({playlist.total})" if playlist.total is not None else ""
        name = playlist.name
        if len(name) > BUTTON_LABEL_LIMIT:
            name = name[: BUTTON_LABEL_LIMIT - 1] + "…"
        data = f"{PLAYLIST_PREFIX}{playlist.id}:{user_id}"
        rows.append([InlineKeyboardButton(name + count, callback_data=data)])
    return InlineKeyboardMarkup(rows)


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
    accounts: SpotifyAccounts | None = None  # people's own Spotify logins (synchronous: called in a thread)
    # Synchronous (spotipy, ytmusicapi): called in a thread. None: text is not searched.
    search_tracks: Callable[[str], list[Track]] | None = None
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
        lines = [f"{len(snapshots)} request(s) running:"] + [render_status_line(s, now) for s in snapshots]
        lines = lines if snapshots else [texts.NOTHING_RUNNING]
        user = update.effective_user
        if self.settings.admin_users.allows(user.id if user else None):  # operator news first: never cut off
            warning = installed_ytdlp_age(self.settings.ytdlp_max_age_days).warning()
            lines = [f"⚠️ {warning}", *lines] if warning else lines
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
        ytdlp = installed_ytdlp_age(self.settings.ytdlp_max_age_days)
        ops = Operations(
            cache_entries=cached,
            queue_depth=delivery.queue_depth() if delivery else 0,
            workers=delivery.workers if delivery else 0,
            worker_threads=delivery.capacity if delivery else 0,
            ytdlp_version=ytdlp.version,
            ytdlp_age_days=ytdlp.age_days,
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
        if await self._login_answer(message):
            return
        if not await self._links(message):
            words = search_words(message.text or "", context.bot.username)
            if words and self.search_tracks is not None:
                self._start_search(update, context, message, words)
            else:
                await self._reply(message, texts.NO_LINK)

    async def _links(self, message: Message) -> bool:
        """Act on the links in `message` (requests, or why not); False when it holds none."""
        assert message.from_user
        limit = self.settings.max_links_per_message
        links = parse_links(self._link_text(message), limit=limit + 1)
        if len(links) > limit:
            await self._reply(message, texts.too_many_links(limit))
            return True
        rejected = [(link.text, link.reason) for link in links if isinstance(link, RejectedLink)]
        accepted = [link for link in links if isinstance(link, (SpotifyRef, ShortLink))]
        if rejected:
            await self._reply(message, texts.rejected(rejected))
        if not accepted:
            return bool(links)
        room = await self._room(message.from_user.id)
        if room < len(accepted):
            await self._reply(message, texts.too_many_requests(self.settings.max_requests_per_user))
        for link in accepted[: max(0, room)]:
            kind = link.kind if isinstance(link, SpotifyRef) else "shortlink"
            await self._start_request(message, link.url, kind=kind)
        return True

    async def _room(self, user_id: int) -> int:
        """How many more requests this person may start now."""
        async with state_access():
            open_requests = await self.store.user_active(user_id)
        return self.settings.max_requests_per_user - open_requests

    async def _start_request(
        self,
        message: Message,
        link: str,
        *,
        kind: str,
        user_id: int | None = None,
        source: Literal["link", "liked"] = "link",
        track: Track | None = None,
    ) -> None:
        """Answer at once with the progress message, then record the request and queue its resolution.

        The state is written after the reply so the delivery never sees a request without its progress
        message (it would send a second one); if the reply fails, the delivery sends it later. `user_id`:
        the requester when `message` is not theirs (a button under the bot's own message: a playlist, a search
        result); `track`: a track already read (see `RequestMeta.track`).
        """
        if user_id is None:
            assert message.from_user
            user_id = message.from_user.id
        meta = RequestMeta(
            id=new_request_id(),
            chat_id=message.chat.id,
            user_id=user_id,
            link=link,
            source=source,
            track=track,
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

    # --- a person's own Spotify login ----------------------------------------------------------------------
    async def _spotify(self, func: Callable[..., Any], *args: Any) -> Any:
        """Run a (synchronous: Redis and HTTP) SpotifyAccounts call in a thread. Redis trouble is "storage
        unreachable"; Spotify's own failures come back as PipelineErrors for the caller to word."""
        try:
            async with asyncio.timeout(3 * self.settings.http_timeout + 5):
                return await asyncio.to_thread(func, *args)
        except RedisError as error:
            raise StateUnavailable(str(error) or type(error).__name__) from error
        except TimeoutError:
            raise TransientError("Spotify did not answer in time") from None

    def _login_enabled(self) -> bool:
        return self.accounts is not None and self.accounts.enabled

    async def login(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message, user = update.effective_message, update.effective_user
        assert message and user
        if self.accounts is None or not self.accounts.enabled:
            await self._reply(message, texts.LOGIN_UNAVAILABLE)
            return
        if message.chat.type != ChatType.PRIVATE:
            await self._reply(message, texts.LOGIN_PRIVATE_ONLY)
            return
        url = await self._spotify(self.accounts.begin_login, user.id)
        await message.reply_text(
            texts.login_link(url, self.settings.spotify_redirect_uri),
            link_preview_options=LinkPreviewOptions(is_disabled=True),
        )
        self.pacer.sent(message.chat.id)

    # --- text search ------------------------------------------------------------------------------
    async def search(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/search <words> (in groups also /search@bot <words>)."""
        message = update.effective_message
        if message is None or message.from_user is None or message.from_user.is_bot:
            return
        if update.edited_message is not None:
            await self._reply(message, texts.EDITED)
            return
        if await self._links(message):  # "/search <link>": the link is what was meant
            return
        words = search_words(message.text or "", context.bot.username)
        if not words or self.search_tracks is None:
            await self._reply(message, texts.SEARCH_USAGE)
            return
        self._start_search(update, context, message, words)

    def _start_search(self, update: Update, context: ContextTypes.DEFAULT_TYPE, message: Message, words: str) -> None:
        """Search beside the update loop: updates are handled one at a time, and a slow search service must not
        hold up everyone else's (errors still reach `on_error`)."""
        context.application.create_task(self._search(message, words), update=update, name="search")

    async def _search(self, message: Message, words: str) -> None:
        """Search in a thread (the clients are synchronous) with a deadline, and answer with the matches as
        buttons; their list waits in Redis for the tap."""
        assert message.from_user and self.search_tracks is not None
        query = normalize_query(words)
        if not query:
            await self._reply(message, texts.NO_LINK)
            return
        try:
            timeout = SEARCH_CALLS * self.settings.http_timeout + 1
            tracks = await asyncio.wait_for(asyncio.to_thread(self.search_tracks, query), timeout)
        except PipelineError as error:
            log.warning("search failed: %s", error)
            await self._reply(message, texts.SEARCH_UNAVAILABLE)
            return
        except TimeoutError:
            log.warning("search took longer than %.0f s", timeout)
            await self._reply(message, texts.SEARCH_UNAVAILABLE)
            return
        except Exception:  # a client's bug or an answer it cannot read: still a calm reply
            log.exception("search failed unexpectedly")
            await self._reply(message, texts.SEARCH_UNAVAILABLE)
            return
        tracks = tracks[:RESULTS]
        if not tracks:
            await self._reply(message, texts.nothing_found(query))
            return
        search_id = new_request_id()
        results = SearchResults(user_id=message.from_user.id, chat_id=message.chat.id, query=query, tracks=tracks)
        async with state_access():
            await self.store.save_search(search_id, results)
        await message.reply_text(
            texts.search_results(query, len(tracks)),
            reply_markup=results_keyboard(search_id, tracks),
            do_quote=message.chat.type != ChatType.PRIVATE,
            link_preview_options=LinkPreviewOptions(is_disabled=True),
        )
        self.pacer.sent(message.chat.id)

    async def _login_answer(self, message: Message) -> bool:
        """Whether `message` is the answer to a /login (the address the browser landed on, or the code) and
        was handled; anything else goes on to the link handling."""
        if message.chat.type != ChatType.PRIVATE or not message.text or not self._login_enabled():
            return False
        assert self.accounts and message.from_user
        user_id = message.from_user.id
        try:
            answer = parse_login_answer(message.text, self.settings.spotify_redirect_uri)
        except BadLoginAnswer as error:
            await self._reply(message, error.reason)
            return True
        if answer is None:
            return False
        if answer.state is None and not await self._spotify(self.accounts.login_waiting, user_id):
            return False  # a bare code-like word with no login waiting: not an answer
        await self._finish_login(message, user_id, answer)
        return True

    async def _finish_login(self, message: Message, user_id: int, answer: LoginAnswer) -> None:
        assert self.accounts
        try:
            account = await self._spotify(self.accounts.finish_login, user_id, answer)
        except AccessRefused:
            await self._reply(message, texts.NOT_REGISTERED)
        except PermanentError as error:
            await self._reply(message, error.reason)
        except TransientError as error:
            log.info("user %s: login not finished: %s", user_id, error)
            await self._reply(message, texts.login_failed_for_now(error.reason))
        else:
            await self._reply(message, texts.connected(account.display_name))

    async def logout(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message, user = update.effective_message, update.effective_user
        assert message and user
        if self.accounts is None:
            await self._reply(message, texts.WAS_NOT_LOGGED_IN)
            return
        had = await self._spotify(self.accounts.logout, user.id)
        await self._reply(message, texts.LOGGED_OUT if had else texts.WAS_NOT_LOGGED_IN)

    async def _logged_in(self, message: Message, user_id: int) -> bool:
        """Whether the person has a login; tells them how to get one when not."""
        if self.accounts is None or not self.accounts.enabled:
            await self._reply(message, texts.LOGIN_UNAVAILABLE)
            return False
        if await self._spotify(self.accounts.account, user_id) is None:
            await self._reply(message, texts.NOT_LOGGED_IN)
            return False
        return True

    async def liked(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """The Liked Songs: a request like a shared playlist, read by the worker with the person's login."""
        message, user = update.effective_message, update.effective_user
        assert message and user
        if not await self._logged_in(message, user.id):
            return
        if await self._room(user.id) < 1:
            await self._reply(message, texts.too_many_requests(self.settings.max_requests_per_user))
            return
        await self._start_request(message, texts.LIKED_LABEL, kind="liked", source="liked")

    async def playlists(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message, user = update.effective_message, update.effective_user
        assert message and user
        if not await self._logged_in(message, user.id):
            return
        assert self.accounts
        try:
            found: list[PlaylistSummary] = await self._spotify(self.accounts.playlists, user.id)
        except AccessRefused:
            await self._reply(message, texts.NOT_REGISTERED)
            return
        except PermanentError as error:
            await self._reply(message, error.reason)
            return
        except TransientError as error:
            await self._reply(message, texts.spotify_for_now(error.reason))
            return
        if not found:
            await self._reply(message, texts.NO_PLAYLISTS)
            return
        await message.reply_text(
            texts.playlists_header(min(len(found), MAX_PLAYLIST_BUTTONS), len(found)),
            reply_markup=playlist_keyboard(found, user.id),
            do_quote=message.chat.type != ChatType.PRIVATE,
        )
        self.pacer.sent(message.chat.id)

    async def playlist_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A tap on a /playlists button: the playlist is requested like a shared link (read with the
        presser's login by the worker). Callback data can be anything: only a well-formed one of the
        presser's own list acts."""
        query = update.callback_query
        assert query
        match = CALLBACK_PLAYLIST.fullmatch(query.data or "")
        if match is None or not isinstance(query.message, Message):
            await query.answer(texts.BUTTON_INVALID)
            return
        playlist_id, owner = match.group(1), int(match.group(2))
        if owner != query.from_user.id:
            await query.answer(texts.PLAYLIST_BUTTON_NOT_YOURS, show_alert=True)
            return
        if await self._room(owner) < 1:
            await query.answer(texts.too_many_requests(self.settings.max_requests_per_user)[:200], show_alert=True)
            return
        await query.answer(texts.STARTING)
        playlist = SpotifyRef("playlist", playlist_id).url
        await self._start_request(query.message, playlist, kind="playlist", user_id=owner)

    async def search_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A tap on a search result: the searcher's own tap starts the track's request, like its link would."""
        query = update.callback_query
        assert query
        match = CALLBACK_SEARCH.fullmatch(query.data or "")
        if match is None:
            await query.answer(texts.BUTTON_INVALID)
            return
        search_id, index = match.group(1), int(match.group(2))
        async with state_access():
            results = await self.store.search(search_id)
        if results is None or not isinstance(query.message, Message):
            await query.answer(texts.SEARCH_EXPIRED)
            return
        if results.user_id != query.from_user.id:
            await query.answer(texts.SEARCH_NOT_YOURS, show_alert=True)
            return
        if index >= len(results.tracks):
            await query.answer(texts.BUTTON_INVALID)
            return
        if await self._room(query.from_user.id) < 1:
            await query.answer(texts.too_many_requests(self.settings.max_requests_per_user)[:200], show_alert=True)
            return
        track = results.tracks[index]
        await query.answer(texts.fetching(button_label(track)))
        carried = track if track.spotify_url is None else None  # a Spotify result goes by its link
        await self._start_request(
            query.message, request_link(track), kind="track", user_id=query.from_user.id, track=carried
        )

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
