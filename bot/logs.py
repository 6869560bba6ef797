"""Logging setup that keeps secrets out of every log line.

httpx logs each request URL, and Telegram URLs contain the bot token: its INFO lines are silenced and
every record is scrubbed of the configured secrets before any handler writes it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

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


def setup_logging(secrets: Iterable[str], level: int = logging.INFO) -> None:
    """Configure root logging once (if nobody did) and scrub secrets on every root handler."""
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    redact = RedactSecrets(secrets)
    for handler in root.handlers:
        handler.addFilter(redact)
    for noisy in ("httpx", "httpcore", "urllib3", "spotipy"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def secrets_of(settings: object) -> list[str]:
    values = []
    for name in ("telegram_bot_token", "spotify_client_secret"):
        value = getattr(settings, name, None)
        if value is not None:
            values.append(value.get_secret_value())
    return values
