"""Builds the python-telegram-bot Application: handlers, commands and the delivery loop."""

from __future__ import annotations

import asyncio
import logging
import secrets
import threading
from collections.abc import Callable
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

from telegram import BotCommand, BotCommandScopeChat, Update
from telegram.error import TelegramError
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    MessageHandler,
    TypeHandler,
    filters,
)
from telegram.request import HTTPXRequest

from bot import metrics
from bot.activity import Activity
from bot.delivery import Delivery, Enqueue
from bot.handlers import PLAYLIST_PREFIX, Handlers
from bot.health import BotBeat, health_dir
from bot.pacing import ChatPacer
from bot.recovery import Limits
from bot.runtime import Runtime
from bot.search import SEARCH_PREFIX
from bot.settings import BotSettings
from bot.spotify_accounts import SpotifyAccounts
from pipeline.frontend import thread_searcher
from pipeline.models import Track
from pipeline.track_job import worst_case_seconds

BURST = 3  # calls that may go to one chat at once (reply, audio, summary of a cached song)

log = logging.getLogger(__name__)

COMMANDS = [
    BotCommand("help", "How to use this bot"),
    BotCommand("search", "Find a song by its name"),
    BotCommand("status", "What is running for you"),
    BotCommand("cancel", "Stop all your requests"),
    BotCommand("login", "Connect your Spotify account"),
    BotCommand("liked", "Your Liked Songs (after /login)"),
    BotCommand("playlists", "Your playlists (after /login)"),
    BotCommand("logout", "Forget your Spotify login"),
]
ADMIN_COMMANDS = [
    BotCommand("stats", "Admin: the last 24 h, queue and workers"),
    BotCommand("uncache", "Admin: forget the cached files of a link"),
]
GET_UPDATES_READ_TIMEOUT = 40.0


class StampingRequest(HTTPXRequest):
    """The getUpdates connection: each round trip Telegram answered with updates (or none yet) is proof that
    polling works (bot.health); a refusal (409: another instance polls, 401) is not."""

    def __init__(self, on_answer: Callable[[], None], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._on_answer = on_answer

    async def do_request(self, *args: Any, **kwargs: Any) -> tuple[int, bytes]:
        status, payload = await super().do_request(*args, **kwargs)
        if status == HTTPStatus.OK:
            self._on_answer()
        return status, payload


def build_application(settings: BotSettings, rt: Runtime) -> Application:
    from bot import actors  # after runtime.configure(): actors bind to its broker

    pacer = ChatPacer(settings.chat_send_interval, burst=BURST)
    beat = BotBeat(health_dir(settings.download_dir), settings.health_max_age)
    enqueue = Enqueue(
        resolve=actors.enqueue_resolve,
        track=lambda rid, index: actors.enqueue_track(rid, index, settings.track_max_retries),
    )
    builder = (
        ApplicationBuilder()
        .token(settings.telegram_bot_token.get_secret_value())
        .base_url(settings.telegram_api_url)
        .local_mode(settings.telegram_local_mode)
        .rate_limiter(AIORateLimiter(max_retries=0))
        .get_updates_request(
            StampingRequest(beat.updates_seen, connection_pool_size=1, read_timeout=GET_UPDATES_READ_TIMEOUT)
        )
    )
    if settings.telegram_file_url:
        builder = builder.base_file_url(settings.telegram_file_url)
    store = rt.request_store()  # connects lazily, inside the application's event loop
    accounts = SpotifyAccounts(rt.bot_sync_client(), settings)  # synchronous: called in threads
    searchers = threading.local()  # one search client per thread of asyncio.to_thread's pool

    def search_tracks(query: str) -> list[Track]:
        return thread_searcher(settings, searchers).search(query)

    activity = Activity(store.redis)
    handlers = Handlers(
        settings, store, pacer, enqueue.resolve, accounts=accounts, search_tracks=search_tracks, activity=activity
    )
    running: list[asyncio.Task[None]] = []
    beating: list[asyncio.Task[None]] = []  # the heartbeat: runs until cancelled

    async def post_init(app: Application) -> None:
        delivery = Delivery(
            app.bot,
            store,
            settings,
            enqueue,
            pacer,
            limits=recovery_limits(settings),
            all_in_one=rt.all_in_one,
            activity=activity,
        )
        app.bot_data["delivery"] = delivery
        handlers.delivery = delivery
        running.append(asyncio.create_task(delivery.run(), name="delivery"))
        receiving = (lambda: bool(app.updater and app.updater.running)) if settings.webhook_url else None
        beating.append(asyncio.create_task(beat.run(lambda: delivery.alive_at, receiving), name="heartbeat"))
        await app.bot.set_my_commands(COMMANDS)
        await set_admin_commands(app, settings)
        if settings.metrics_port:
            try:
                metrics.serve(settings.metrics_port, settings.metrics_listen)
                log.info("metrics at http://%s:%d/metrics", settings.metrics_listen, settings.metrics_port)
            except OSError as error:  # the bot matters more than its metrics
                log.error("cannot serve metrics on METRICS_PORT %d: %s", settings.metrics_port, error)
        log.info("bot @%s is up", app.bot.username)

    async def post_stop(app: Application) -> None:
        """Stop our tasks; also after a failed start (post_shutdown: PTB calls post_stop only after running)."""
        delivery: Delivery | None = app.bot_data.pop("delivery", None)
        if delivery:
            delivery.stop()
            for task in beating:
                task.cancel()
            await asyncio.gather(*running, *beating, return_exceptions=True)
            beat.remove()
            await delivery.store.redis.aclose()

    app = builder.post_init(post_init).post_stop(post_stop).post_shutdown(post_stop).build()
    app.add_handler(TypeHandler(Update, handlers.guard), group=-1)
    app.add_handler(CommandHandler(["start", "help"], handlers.help))
    app.add_handler(CommandHandler("status", handlers.status))
    app.add_handler(CommandHandler("cancel", handlers.cancel))
    app.add_handler(CommandHandler("login", handlers.login))
    app.add_handler(CommandHandler("logout", handlers.logout))
    app.add_handler(CommandHandler("liked", handlers.liked))
    app.add_handler(CommandHandler("playlists", handlers.playlists))
    app.add_handler(CallbackQueryHandler(handlers.playlist_button, pattern=f"^{PLAYLIST_PREFIX}"))
    app.add_handler(CommandHandler("search", handlers.search))
    app.add_handler(CallbackQueryHandler(handlers.search_button, pattern=f"^{SEARCH_PREFIX}"))
    app.add_handler(CommandHandler("stats", handlers.stats))
    app.add_handler(CommandHandler("uncache", handlers.uncache))
    app.add_handler(CallbackQueryHandler(handlers.cancel_button))
    app.add_handler(MessageHandler(filters.COMMAND, handlers.unknown_command))
    app.add_handler(MessageHandler(filters.ALL, handlers.message))
    app.add_error_handler(handlers.on_error)
    return app


def recovery_limits(settings: BotSettings) -> Limits:
    """When the reconciler treats a track or a link as stuck (see bot.recovery)."""
    from bot.actors import RESOLVE_TIME_LIMIT_MS

    run = worst_case_seconds(settings)
    return Limits(
        queued_stale=15 * 60,
        run_overdue=run + 5 * 60,
        retry_overdue=run + 10 * 60,
        max_attempts=settings.track_max_retries + 3,
        resolve_overdue=2 * RESOLVE_TIME_LIMIT_MS / 1000,
    )


async def set_admin_commands(app: Application, settings: BotSettings) -> None:
    """Admins see /stats and /uncache in their private chat's command list; nobody else does."""
    for admin in sorted(settings.admin_users.ids):
        try:
            await app.bot.set_my_commands(COMMANDS + ADMIN_COMMANDS, scope=BotCommandScopeChat(admin))
        except TelegramError as error:  # e.g. the admin never opened a chat with the bot
            log.info("could not set the admin commands for %s: %s", admin, error)


def poll_timeout(settings: BotSettings) -> int:
    """getUpdates' long-poll timeout: short enough that an idle bot still proves it polls (bot.health)."""
    return int(max(1, min(10, settings.health_max_age / 3)))


class WebhookUnavailable(Exception):
    """The webhook server cannot listen (the port is taken, the address is not this machine's)."""


def run(app: Application, settings: BotSettings) -> None:
    """Long polling (the default), or a webhook server when WEBHOOK_URL is set."""
    if not settings.webhook_url:
        app.run_polling(allowed_updates=Update.ALL_TYPES, timeout=poll_timeout(settings))
        return
    secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else secrets.token_urlsafe(32)
    log.info(
        "webhook mode: listening on %s:%d for %s", settings.webhook_listen, settings.webhook_port, settings.webhook_url
    )
    try:
        app.run_webhook(
            listen=settings.webhook_listen,
            port=settings.webhook_port,
            url_path=urlsplit(settings.webhook_url).path.lstrip("/"),
            webhook_url=settings.webhook_url,
            secret_token=secret,
            allowed_updates=Update.ALL_TYPES,
        )
    except OSError as error:  # raised by the server's bind; Telegram's own failures are TelegramErrors
        where = f"{settings.webhook_listen}:{settings.webhook_port}"
        raise WebhookUnavailable(
            f"cannot listen on WEBHOOK_LISTEN:WEBHOOK_PORT {where}: {error.strerror or error}"
        ) from None
