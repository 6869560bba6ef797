"""`python -m bot`: the Telegram front end (long polling).

With REDIS_URL unset it is the whole product in one process ("all-in-one"): an in-memory store and
the same Dramatiq actors on in-process worker threads.
"""

from __future__ import annotations

import logging
import sys

import dramatiq
from telegram.error import InvalidToken, NetworkError

from bot import runtime
from bot.app import WebhookUnavailable, build_application, run
from bot.logs import secrets_of, setup_logging
from bot.preflight import check_telegram
from bot.settings import BotSettings
from pipeline.errors import ConfigurationError
from pipeline.settings import load_settings
from pipeline.ytdlp import ytdlp_warnings

log = logging.getLogger("bot")


def main() -> int:
    try:
        settings = load_settings(BotSettings)
    except ConfigurationError as error:
        print(f"error: {error.reason}", file=sys.stderr)
        return 2
    setup_logging(secrets_of(settings), settings.log_level)
    if (problem := check_telegram(settings)) is not None:
        print(problem.message, file=sys.stderr)
        return problem.exit_code
    for warning in ytdlp_warnings(settings):
        log.warning("%s", warning)
    rt = runtime.configure(settings)
    app = build_application(settings, rt)
    if not settings.allowed_users:
        log.warning("ALLOWED_USERS is empty: the bot will refuse everyone (it tells each user their id)")
    worker = None
    if rt.all_in_one:
        log.info("REDIS_URL is unset: all-in-one mode with %d in-process workers", settings.inprocess_workers)
        worker = dramatiq.Worker(rt.broker, worker_threads=settings.inprocess_workers)
        worker.start()
    try:
        run(app, settings)
    except InvalidToken:
        print("error: Telegram rejected TELEGRAM_BOT_TOKEN (check it with @BotFather)", file=sys.stderr)
        return 2
    except WebhookUnavailable as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except NetworkError as error:
        print(f"error: cannot reach the Telegram Bot API at {settings.telegram_api_url}: {error}", file=sys.stderr)
        return 1
    finally:
        if worker is not None:
            worker.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
