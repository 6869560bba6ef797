"""Builds the python-telegram-bot Application: handlers, commands and the delivery loop."""

from __future__ import annotations

import asyncio
import logging

from telegram import BotCommand, Update
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    MessageHandler,
    filters,
)

from bot.delivery import Delivery
from bot.handlers import Handlers
from bot.pacing import ChatPacer
from bot.runtime import Runtime
from bot.settings import BotSettings

log = logging.getLogger(__name__)

COMMANDS = [
    BotCommand("help", "How to use this bot"),
    BotCommand("status", "What is running for you"),
    BotCommand("cancel", "Stop all your requests"),
]


def build_application(settings: BotSettings, rt: Runtime) -> Application:
    from bot import actors  # after runtime.configure(): actors bind to its broker

    pacer = ChatPacer(settings.chat_send_interval)
    handlers = Handlers(settings, rt.store, pacer, actors.enqueue_resolve)

    def enqueue_track(rid: str, index: int) -> None:
        actors.enqueue_track(rid, index, settings.track_max_retries)

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
    delivery_task: list[asyncio.Task[None]] = []

    async def post_init(app: Application) -> None:
        await app.bot.set_my_commands(COMMANDS)
        delivery = Delivery(app.bot, rt.store, settings, enqueue_track, pacer)
        app.bot_data["delivery"] = delivery
        delivery_task.append(asyncio.create_task(delivery.run()))
        log.info("bot @%s is up", app.bot.username)

    async def post_stop(app: Application) -> None:
        delivery: Delivery | None = app.bot_data.get("delivery")
        if delivery:
            delivery.stop()
            await asyncio.gather(*delivery_task, return_exceptions=True)

    app = builder.post_init(post_init).post_stop(post_stop).build()
    app.add_handler(CommandHandler(["start", "help"], handlers.help))
    app.add_handler(CommandHandler("status", handlers.status))
    app.add_handler(CommandHandler("cancel", handlers.cancel))
    app.add_handler(CallbackQueryHandler(handlers.cancel_button))
    app.add_handler(MessageHandler(filters.COMMAND, handlers.unknown_command))
    app.add_handler(MessageHandler(filters.ALL, handlers.message))
    app.add_error_handler(handlers.on_error)
    return app


def run(app: Application) -> None:
    app.run_polling(allowed_updates=Update.ALL_TYPES)
