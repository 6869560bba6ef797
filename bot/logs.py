"""Logging setup that keeps secrets out of every log line.

httpx logs each request URL, and Telegram URLs contain the bot token: its INFO lines are silenced and
every record is scrubbed of the configured secrets before any handler writes it. Uncaught exceptions go
through the same handlers instead of being printed raw (an exception's text may quote a secret).
Passwords in URLs (`redis://:pw@host`, `socks5://user:pw@host`) are scrubbed from every line whatever
their length, also in URLs nobody configured.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Final
from urllib.parse import parse_qsl, unquote, urlsplit

REDACTED = "[REDACTED]"
# scheme://user:password@host: the password goes, the user stays (it helps to see which account is used).
_URL_PASSWORD: Final = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^/\s:@]*:)(?P<password>[^/\s@]+)(?=@)", re.I)
# Settings that are secrets as a whole, and settings that are URLs whose credentials are secret.
SECRET_SETTINGS: Final = ("telegram_bot_token", "spotify_client_secret", "spotify_client_id", "webhook_secret")
URL_SETTINGS: Final = ("redis_url", "ytdlp_proxy", "ytdlp_pot_provider_url", "telegram_api_url", "telegram_file_url")
# Secrets the process may carry in its environment without reading them as settings: compose passes the
# whole .env to every service, and TELEGRAM_API_HASH belongs to the local Bot API server.
SECRET_ENVIRONMENT: Final = ("TELEGRAM_API_HASH",)


class RedactSecrets(logging.Filter):
    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = sorted({s for s in secrets if s and len(s) >= 6}, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: let logging report it as usual, never crash the caller
            return True
        cleaned = self.scrub(message)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.scrub(record.exc_text)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True

    def scrub(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        return _URL_PASSWORD.sub(lambda found: found["head"] + REDACTED, text)


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


def secrets_of(settings: object, environ: Mapping[str, str] = os.environ) -> list[str]:
    """Every secret these settings (and the environment) hold: tokens, keys, and the credentials inside URLs
    (user:password, the password alone, a `password=` query parameter)."""
    values = []
    for name in SECRET_SETTINGS:
        value = getattr(settings, name, None)
        if value is not None:
            values.append(value.get_secret_value() if hasattr(value, "get_secret_value") else str(value))
    for name in URL_SETTINGS:
        if url := getattr(settings, name, None):
            values += url_credentials(str(url))
    values += [environ[name] for name in SECRET_ENVIRONMENT if environ.get(name)]
    return values


def url_credentials(url: str) -> list[str]:
    """The secret parts of a URL, as written and decoded: `user:password`, `password`, `?password=…`."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return []
    found = []
    if password:
        userinfo = parts.netloc.rpartition("@")[0]
        found += [userinfo, password, unquote(userinfo), unquote(password)]
    found += [value for key, value in parse_qsl(parts.query) if key.lower() in ("password", "pass", "secret", "token")]
    return found
