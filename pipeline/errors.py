"""Failure vocabulary shared by the pipeline, the workers and the bot.

Every error carries a short, friendly `reason` that can be shown to a user as is. `TransientError`
means "try again later" (network, 5xx, 429) and may carry the server's Retry-After; every
`PermanentError` is final and reported at once.
"""

from __future__ import annotations


class PipelineError(Exception):
    """Base class; `reason` is the user-facing text."""

    default_reason = "something went wrong"

    def __init__(self, reason: str | None = None, *, detail: str | None = None) -> None:
        self.reason = reason or self.default_reason
        self.detail = detail  # for logs only, never shown to users
        super().__init__(self.reason if detail is None else f"{self.reason} ({detail})")


class TransientError(PipelineError):
    """Worth retrying later; `retry_after` in seconds when the server said so."""

    default_reason = "temporary network problem"

    def __init__(
        self, reason: str | None = None, *, retry_after: float | None = None, detail: str | None = None
    ) -> None:
        super().__init__(reason, detail=detail)
        self.retry_after = retry_after


class RateLimited(TransientError):
    default_reason = "rate-limited by the service"


class PermanentError(PipelineError):
    """Retrying cannot help."""


class BadInput(PermanentError):
    default_reason = "not a supported Spotify link"


class NotFound(PermanentError):
    default_reason = "not found on Spotify"


class Unavailable(PermanentError):
    default_reason = "unavailable"


class NoConfidentMatch(PermanentError):
    default_reason = "no confident match"


class SourceBlocked(PermanentError):
    """YouTube asks to sign in / confirm not a bot: needs cookies or another IP."""

    default_reason = "YouTube asked to confirm we're not a bot; set YTDLP_COOKIES_FILE (or YTDLP_PROXY) and try again"


class ConfigurationError(PermanentError):
    default_reason = "bad configuration"


class Cancelled(PipelineError):
    default_reason = "cancelled"
