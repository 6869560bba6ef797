"""Pipeline settings from the environment or `.env` (pydantic-settings).

A bad value fails at start with one clear line (see `load_settings`), never deep inside a job.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, TypeVar

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from pipeline.errors import ConfigurationError

_MP3_QUALITY = re.compile(r"^(V[0-9]|(32|40|48|56|64|80|96|112|128|160|192|224|256|320)k)$")


class PipelineSettings(BaseSettings):
    """Everything the media pipeline needs; names are a fixed outside interface."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore", env_ignore_empty=True)

    spotify_client_id: str | None = None
    spotify_client_secret: SecretStr | None = None
    spotify_api_url: str = "https://api.spotify.com/v1/"
    spotify_token_url: str = "https://accounts.spotify.com/api/token"
    spotify_embed_url: str = "https://open.spotify.com/embed/"
    # Replaces https://spotify.link/ when a short link is opened (tests point it at a local server).
    spotify_shortlink_url: str = "https://spotify.link/"
    # A person's own login (Authorization Code + PKCE): where it starts, and where Spotify sends the browser
    # back with the code (must be registered in the Spotify app exactly; 127.0.0.1, not localhost).
    spotify_auth_url: str = "https://accounts.spotify.com/authorize"
    spotify_redirect_uri: str = "http://127.0.0.1:8888/callback"
    # A Spotify 429 whose Retry-After exceeds this (seconds) fails the job instead of waiting.
    spotify_max_retry_after: int = Field(default=600, ge=0)

    # Replaces https://music.youtube.com for searches (tests point it at a local server).
    youtube_music_url: str = "https://music.youtube.com"

    audio_sources: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["youtube-music", "youtube"])
    download_dir: Path = Path("downloads")

    # "V0".."V9" = LAME VBR quality (V2 ≈ 190 kb/s), or a constant bitrate like "192k".
    mp3_quality: str = "V2"
    ytdlp_cookies_file: Path | None = None  # may be absent: then no cookies, and a warning at start
    ytdlp_proxy: str | None = None
    # yt-dlp's `--extractor-args` text, several extractors joined by ";" (see pipeline.ytdlp.parse_extractor_args).
    ytdlp_extractor_args: str | None = None
    # A bgutil PO-token provider server (`docker compose --profile pot`), e.g. http://pot-provider:4416.
    ytdlp_pot_provider_url: str | None = None
    # yt-dlp releases are dates: an installed one older than this is warned about at start (and in /status).
    ytdlp_max_age_days: int = Field(default=60, ge=0)
    ffmpeg_path: str | None = None  # default: `ffmpeg` on PATH, else imageio-ffmpeg's bundled binary

    http_timeout: float = Field(default=20.0, gt=0)  # one network call (Spotify, search, socket read)
    download_timeout: float = Field(default=600.0, gt=0)  # one whole yt-dlp download
    ffmpeg_timeout: float = Field(default=600.0, gt=0)  # one conversion
    max_candidates: int = Field(default=3, ge=1)  # download attempts before giving up on a track

    lyrics: bool = True  # look up each track's lyrics (LRCLIB) for its USLT frame; off = no request at all
    lyrics_url: str = "https://lrclib.net"  # an LRCLIB-compatible service (tests point it at a local fake)

    @field_validator("audio_sources", mode="before")
    @classmethod
    def _split_sources(cls, value: object) -> object:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if isinstance(value, list) and not value:
            raise ValueError("needs at least one source, e.g. youtube-music,youtube")
        return value

    @field_validator("spotify_api_url", "spotify_embed_url")
    @classmethod
    def _trailing_slash(cls, value: str) -> str:
        return value if value.endswith("/") else value + "/"

    @field_validator("lyrics_url")
    @classmethod
    def _http_base(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("use an http(s) base URL like https://lrclib.net")
        return value.rstrip("/")

    @field_validator("mp3_quality")
    @classmethod
    def _check_quality(cls, value: str) -> str:
        if not _MP3_QUALITY.match(value):
            raise ValueError("use V0..V9 (VBR) or a bitrate like 192k")
        return value

    @field_validator("ytdlp_extractor_args")
    @classmethod
    def _check_extractor_args(cls, value: str | None) -> str | None:
        if value is not None:
            from pipeline.ytdlp import parse_extractor_args  # yt-dlp takes a while to load: only when set

            parse_extractor_args(value)  # a ValueError names what is wrong
        return value

    @field_validator("ytdlp_pot_provider_url")
    @classmethod
    def _check_provider_url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("use the provider server's http(s) URL, e.g. http://pot-provider:4416")
        return value.rstrip("/") if value else value

    @property
    def has_spotify_credentials(self) -> bool:
        return bool(self.spotify_client_id and self.spotify_client_secret)

    @property
    def audio_settings_key(self) -> str:
        """Identifies the audio a track is turned into: a cached upload is reused only for the same key."""
        return f"mp3-{self.mp3_quality}"


def describe_validation_error(error: ValidationError) -> str:
    """One line naming each bad setting, as the environment variable a user would fix."""
    parts = []
    for item in error.errors():
        name = "_".join(str(loc) for loc in item["loc"]).upper() or "settings"
        parts.append(f"{name}: {item['msg']}")
    return "Bad setting: " + "; ".join(parts)


S = TypeVar("S", bound=PipelineSettings)


def load_settings(cls: type[S], **overrides: object) -> S:
    """Build settings or raise ConfigurationError with a one-line explanation."""
    try:
        return cls(**overrides)
    except ValidationError as error:
        raise ConfigurationError(describe_validation_error(error)) from None
