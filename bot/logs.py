"""Logging setup that keeps secrets out of every log line.

httpx logs each request URL, and Telegram URLs contain the bot token: its INFO lines are silenced and
every record is scrubbed of the configured secrets before any handler writes it. Uncaught exceptions go
through the same handlers instead of being printed raw (an exception's text may quote a secret).
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Iterable
from types import TracebackType

REDACTED = "[REDACTED]"


class RedactSecrets(logging.Filter):
    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = sorted({s for s in secrets if s and len(s) >= 6}, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: let logging report it as usual, never crash the caller
            return True
        cleaned = message
        for secret in self.secrets:
            cleaned = cleaned.replace(secret, REDACTED)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            for secret in self.secrets:
                record.exc_text = record.exc_text.replace(secret, REDACTED)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def setup_logging(secrets: Iterable[str], level: str | None = None) -> None:
    """Configure root logging once (if nobody did) and scrub secrets on every root handler.

    `level` (LOG_LEVEL) overrides the root level, also the one dramatiq's CLI set (`--verbose`)."""
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if level:
        root.setLevel(level)
    redact = RedactSecrets(secrets)
    for handler in root.handlers:
        handler.addFilter(redact)
    for noisy in ("httpx", "httpcore", "urllib3", "spotipy"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_uncaught_in_thread


def _log_uncaught(kind: type[BaseException], error: BaseException, traceback: TracebackType | None) -> None:
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, error, traceback)
        return
    logging.getLogger().critical("uncaught exception", exc_info=(kind, error, traceback))


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:
        return
    name = args.thread.name if args.thread else "?"
    exc_info = (args.exc_type, args.exc_value, args.exc_traceback)
    logging.getLogger().critical("uncaught exception in thread %s", name, exc_info=exc_info)  # type: ignore[arg-type]


def secrets_of(settings: object) -> list[str]:
    values = []
    for name in ("telegram_bot_token", "spotify_client_secret", "webhook_secret"):
        value = getattr(settings, name, None)
        if value is not None:
            values.append(value.get_secret_value())
    return values
