"""Builds the python-telegram-bot Application: handlers, commands and the delivery loop."""

from __future__ import annotations

import asyncio
import logging
import threading

from telegram import BotCommand, Update
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

from bot.delivery import Delivery, Enqueue
from bot.handlers import PLAYLIST_PREFIX, Handlers
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


def build_application(settings: BotSettings, rt: Runtime) -> Application:
    from bot import actors  # after runtime.configure(): actors bind to its broker

    pacer = ChatPacer(settings.chat_send_interval, burst=BURST)
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
        .get_updates_read_timeout(40)
    )
    if settings.telegram_file_url:
        builder = builder.base_file_url(settings.telegram_file_url)
    store = rt.request_store()  # connects lazily, inside the application's event loop
    accounts = SpotifyAccounts(rt.bot_sync_client(), settings)  # synchronous: called in threads
    searchers = threading.local()  # one search client per thread of asyncio.to_thread's pool

    def search_tracks(query: str) -> list[Track]:
        return thread_searcher(settings, searchers).search(query)

    handlers = Handlers(settings, store, pacer, enqueue.resolve, accounts=accounts, search_tracks=search_tracks)
    running: list[asyncio.Task[None]] = []

    async def post_init(app: Application) -> None:
        delivery = Delivery(
            app.bot, store, settings, enqueue, pacer, limits=recovery_limits(settings), all_in_one=rt.all_in_one
        )
        app.bot_data["delivery"] = delivery
        running.append(asyncio.create_task(delivery.run(), name="delivery"))
        await app.bot.set_my_commands(COMMANDS)
        log.info("bot @%s is up", app.bot.username)

    async def post_stop(app: Application) -> None:
        delivery: Delivery | None = app.bot_data.get("delivery")
        if delivery:
            delivery.stop()
            await asyncio.gather(*running, return_exceptions=True)
            await delivery.store.redis.aclose()

    app = builder.post_init(post_init).post_stop(post_stop).build()
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


def run(app: Application) -> None:
    app.run_polling(allowed_updates=Update.ALL_TYPES)
