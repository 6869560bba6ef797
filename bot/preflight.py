"""One look at the Bot API before anything else starts, so a wrong token or an unreachable Telegram is one clear
line and a non-zero exit, not python-telegram-bot's retry loop and its traceback, with workers started for
nothing.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from telegram import Bot
from telegram.error import InvalidToken, NetworkError, TelegramError

from bot.settings import BotSettings

TIMEOUT = 15.0  # seconds for the whole check: connect, answer


@dataclass(frozen=True)
class TelegramProblem:
    message: str  # one line for stderr, without the token
    exit_code: int  # 2: fix a setting; 1: try again later (the network)


def check_telegram(settings: BotSettings) -> TelegramProblem | None:
    """getMe against TELEGRAM_API_URL with TELEGRAM_BOT_TOKEN; None when Telegram answers and knows the token."""
    return asyncio.run(_check(settings))


async def _check(settings: BotSettings) -> TelegramProblem | None:
    url = settings.telegram_api_url
    bot = Bot(settings.telegram_bot_token.get_secret_value(), base_url=url, local_mode=settings.telegram_local_mode)
    try:
        async with asyncio.timeout(TIMEOUT):
            async with bot:  # initialize() calls getMe
                return None
    except InvalidToken:
        return TelegramProblem("error: Telegram rejected TELEGRAM_BOT_TOKEN (check it with @BotFather)", 2)
    except (NetworkError, TimeoutError) as error:
        reason = str(error) or f"no answer within {TIMEOUT:g}s"
        return TelegramProblem(f"error: cannot reach the Telegram Bot API at {url}: {reason}", 1)
    except TelegramError as error:
        return TelegramProblem(f"error: the Telegram Bot API at {url} refused the bot: {error}", 1)
