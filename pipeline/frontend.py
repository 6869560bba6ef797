"""What every front end (the bot's workers, `python -m pipeline`) does with the pipeline besides `fetch_track`:
turn one link into the collection behind it, and give each thread its own search providers.

One implementation for both, so that a link the CLI accepts is a link the bot accepts, with the same reasons.
"""

from __future__ import annotations

import threading

from pipeline.errors import BadInput
from pipeline.links import RejectedLink, ShortLink, SpotifyRef, parse_link
from pipeline.metadata import SpotifyMetadata
from pipeline.models import Collection
from pipeline.settings import PipelineSettings
from pipeline.shortlinks import REASON_DEAD_SHORT_LINK, resolve_short_link
from pipeline.sources import SearchProvider, load_providers
from pipeline.spotify_api import UserAuth
from pipeline.track_search import TrackSearcher, track_searcher

__all__ = ["REASON_NO_LINK", "resolve_collection", "spotify_ref", "thread_providers", "thread_searcher"]

REASON_NO_LINK = "No Spotify link found; send a link to a Spotify track, album or playlist."


def spotify_ref(link: str | SpotifyRef | ShortLink, settings: PipelineSettings) -> SpotifyRef:
    """The track, album or playlist `link` names: text is parsed (its first link counts), a spotify.link short
    link is followed (network). Raises BadInput with a reason a user can act on when it names none of them,
    TransientError (RateLimited on 429) when the short-link service cannot be reached."""
    parsed = parse_link(link) if isinstance(link, str) else link
    if isinstance(parsed, ShortLink):
        parsed = resolve_short_link(parsed, timeout=settings.http_timeout, base_url=settings.spotify_shortlink_url)
    if isinstance(parsed, SpotifyRef):
        return parsed
    if isinstance(parsed, RejectedLink):
        raise BadInput(parsed.reason)
    raise BadInput(REASON_NO_LINK if parsed is None else REASON_DEAD_SHORT_LINK)


def resolve_collection(
    link: str | SpotifyRef | ShortLink,
    settings: PipelineSettings,
    metadata: SpotifyMetadata,
    *,
    user: UserAuth | None = None,
) -> Collection:
    """The tracks behind `link` (see `spotify_ref`), in order, with what had to be skipped and why.

    Raises PermanentError (BadInput, NotFound, …) with a friendly `reason` when the link cannot be used, and
    TransientError when Spotify or spotify.link cannot be reached for now; nothing is retried here (the caller
    decides how: Dramatiq's retries in the bot, `call_with_retries` in the CLI). With `user` (a person's
    own Spotify login) their playlists are read with their token.
    """
    ref = spotify_ref(link, settings)
    return metadata.resolve(ref.kind, ref.id, user=user)


def thread_providers(settings: PipelineSettings, local: threading.local) -> list[tuple[str, SearchProvider]]:
    """The calling thread's search providers, made on its first call and kept in `local` (one `threading.local()`
    per owner, e.g. per worker or per CLI run). Search clients (ytmusicapi, a plugin's) are not documented as
    thread-safe, so threads never share them."""
    providers: list[tuple[str, SearchProvider]] | None = getattr(local, "providers", None)
    if providers is None:
        providers = local.providers = load_providers(settings)
    return providers


def thread_searcher(settings: PipelineSettings, local: threading.local) -> TrackSearcher:
    """The calling thread's text search (see `pipeline.track_search`), kept in `local` like the providers."""
    searcher: TrackSearcher | None = getattr(local, "searcher", None)
    if searcher is None:
        searcher = local.searcher = track_searcher(settings)
    return searcher
