"""Settings of the bot and its workers (pydantic-settings; names are a fixed outside interface)."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import NoDecode

from bot.access import AllowedUsers
from pipeline.settings import PipelineSettings

CLOUD_UPLOAD_LIMIT = 50 * 1024 * 1024
LOCAL_UPLOAD_LIMIT = 2000 * 1024 * 1024


class ServiceSettings(PipelineSettings):
    """What both the bot and the workers need: Redis, queue tuning, limits."""

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] | None = None  # unset: INFO (workers: dramatiq's flags)
    # Unset = all-in-one mode: the bot runs the workers in-process with an in-memory store.
    redis_url: str | None = None
    telegram_local_mode: bool = False  # a local Bot API server: uploads up to 2000 MB

    max_tracks_per_request: int = Field(default=500, ge=1)
    # Requests of one person waiting or running at once; links beyond it are refused with a message.
    max_requests_per_user: int = Field(default=50, ge=1)
    # Tracks of one request queued or running at once; unset = as many as the workers can take (the
    # scheduler still shares them fairly between requests).
    track_window: int | None = Field(default=None, ge=1)
    track_max_retries: int = Field(default=5, ge=0)
    request_ttl_hours: float = Field(default=24.0, gt=0)  # state kept after a request finishes
    orphan_minutes: float = Field(default=30.0, gt=0)  # files of no active request older than this are swept

    # Override of the Bot API upload limit in MB (default: 50, or 2000 with TELEGRAM_LOCAL_MODE).
    telegram_upload_limit_mb: float | None = Field(default=None, gt=0)

    # Health (bot.health): a heartbeat older than this many seconds makes `python -m bot.healthcheck` fail.
    health_max_age: float = Field(default=30.0, ge=3)
    # Metrics (bot.metrics): unset = off; the bot serves /metrics on it, each worker container too (Dramatiq's
    # Prometheus middleware). On one host give each process its own port.
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    metrics_listen: str = "0.0.0.0"

    @property
    def upload_limit_bytes(self) -> int:
        if self.telegram_upload_limit_mb is not None:
            return int(self.telegram_upload_limit_mb * 1024 * 1024)
        return LOCAL_UPLOAD_LIMIT if self.telegram_local_mode else CLOUD_UPLOAD_LIMIT


class BotSettings(ServiceSettings):
    """The Telegram front end's settings."""

    telegram_bot_token: SecretStr
    telegram_api_url: str = "https://api.telegram.org/bot"
    telegram_file_url: str | None = None
    allowed_users: Annotated[AllowedUsers, NoDecode] = Field(default_factory=AllowedUsers.nobody)
    # Operators: numeric user ids, parsed like ALLOWED_USERS; they see operator details (default: nobody).
    admin_users: Annotated[AllowedUsers, NoDecode] = Field(default_factory=AllowedUsers.nobody)
    max_links_per_message: int = Field(default=10, ge=1)
    progress_interval: float = Field(default=3.0, ge=0.5)  # seconds between progress edits
    chat_send_interval: float = Field(default=1.0, ge=0.0)  # seconds between messages to one chat
    inprocess_workers: int = Field(default=2, ge=1)  # worker threads in all-in-one mode
    # Who may use /stats and /uncache (parsed like ALLOWED_USERS); admins may use the bot too.
    admin_users: Annotated[AllowedUsers, NoDecode] = Field(default_factory=AllowedUsers.nobody)
    # Webhook mode (unset = long polling): Telegram posts updates to this public HTTPS URL; the bot listens on
    # WEBHOOK_LISTEN:WEBHOOK_PORT at the URL's path and accepts only posts carrying WEBHOOK_SECRET.
    webhook_url: str | None = None
    webhook_secret: SecretStr | None = None  # unset: a random one at each start (setWebhook sends it each time)
    webhook_listen: str = "0.0.0.0"
    webhook_port: int = Field(default=8443, ge=1, le=65535)

    @field_validator("allowed_users", "admin_users", mode="before")
    @classmethod
    def _parse_allowed(cls, value: object) -> object:
        if value is None or isinstance(value, str):
            return AllowedUsers.parse(value or "")
        return value

    @field_validator("webhook_url")
    @classmethod
    def _webhook_url_shape(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"https?://[^/\s]+(/\S*)?", value):
            raise ValueError("must be the bot's public URL, like https://bot.example.com/telegram")
        return value

    @field_validator("webhook_secret")
    @classmethod
    def _webhook_secret_shape(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", value.get_secret_value()):
            raise ValueError("use 1-256 characters A-Z, a-z, 0-9, _ and - (Telegram's rule)")
        return value

    @field_validator("telegram_bot_token")
    @classmethod
    def _token_shape(cls, value: SecretStr) -> SecretStr:
        if ":" not in value.get_secret_value():
            raise ValueError("looks wrong: a bot token is like 123456:ABC-DEF… (from @BotFather)")
        return value
