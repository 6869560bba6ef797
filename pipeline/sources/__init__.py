"""Search providers: where candidate recordings for a track come from.

`AUDIO_SOURCES` lists provider names in the order they are tried. Built-in names are
`youtube-music` and `youtube`; an entry `module:attr` loads a third-party provider: an object with
`search(track) -> Iterable[Candidate]`, or a class whose no-argument constructor makes one.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from typing import Protocol, runtime_checkable

from pipeline.errors import ConfigurationError
from pipeline.models import Candidate, Track
from pipeline.settings import PipelineSettings


@runtime_checkable
class SearchProvider(Protocol):
    def search(self, track: Track) -> Iterable[Candidate]: ...


def _youtube_music(settings: PipelineSettings) -> SearchProvider:
    from pipeline.sources.youtube_music import YouTubeMusicProvider

    return YouTubeMusicProvider(
        timeout=settings.http_timeout, proxy=settings.ytdlp_proxy, base_url=settings.youtube_music_url
    )


def _youtube(settings: PipelineSettings) -> SearchProvider:
    from pipeline.sources.youtube import YouTubeSearchProvider

    return YouTubeSearchProvider(settings)


BUILTIN: dict[str, Callable[[PipelineSettings], SearchProvider]] = {
    "youtube-music": _youtube_music,
    "youtube": _youtube,
}


def load_provider(entry: str, settings: PipelineSettings) -> tuple[str, SearchProvider]:
    """Resolve one AUDIO_SOURCES entry to (name, provider); ConfigurationError if it can't be."""
    if entry in BUILTIN:
        return entry, BUILTIN[entry](settings)
    module_name, sep, attr = entry.partition(":")
    if not sep or not module_name or not attr:
        known = ", ".join(BUILTIN)
        raise ConfigurationError(f"AUDIO_SOURCES: unknown source {entry!r} (use {known} or module:attr)")
    try:
        target: object = importlib.import_module(module_name)
        for part in attr.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as error:
        raise ConfigurationError(f"AUDIO_SOURCES: cannot load {entry!r}: {error}") from None
    provider = target() if isinstance(target, type) else target
    if not callable(getattr(provider, "search", None)):
        raise ConfigurationError(f"AUDIO_SOURCES: {entry!r} has no search(track) method")
    return entry, provider  # type: ignore[return-value]


def load_providers(settings: PipelineSettings) -> list[tuple[str, SearchProvider]]:
    return [load_provider(entry, settings) for entry in settings.audio_sources]
