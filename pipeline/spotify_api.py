"""Thin adapter on spotipy (client credentials, or a person's own login): fetch Spotify Web API JSON, map
failures to our errors.

spotipy's own session would sleep out a 429's Retry-After (hours, in practice); ours retries only
5xx with a short backoff and ignores Retry-After, so a 429 surfaces at once as `RateLimited` and the
caller (a Dramatiq retry) decides when to come back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import requests
import spotipy
from requests.adapters import HTTPAdapter
from spotipy.cache_handler import MemoryCacheHandler
from spotipy.exceptions import SpotifyException, SpotifyOauthError
from urllib3.util.retry import Retry

from pipeline.errors import (
    ConfigurationError,
    NotFound,
    PermanentError,
    PipelineError,
    TransientError,
)
from pipeline.http import request_error, status_error
from pipeline.models import Collection, PlaylistSummary, Track
from pipeline.settings import PipelineSettings
from pipeline.spotify_parse import (
    album_pages,
    parse_album,
    parse_playlist,
    parse_playlist_summary,
    parse_saved_tracks,
    parse_track,
    search_tracks,
)

log = logging.getLogger(__name__)

# spotipy logs request headers (the client secret, bearer tokens) at DEBUG and every HTTP error it
# raises at ERROR; we log the mapped errors ourselves and never the secrets.
logging.getLogger("spotipy").setLevel(logging.CRITICAL)

SERVICE = "Spotify"  # as users read it in "rate-limited by Spotify"
PAGE_LIMIT = 50  # the largest page /albums/{id}/tracks and /playlists/{id}/items accept
SEARCH_LIMIT = 10  # the largest page /search accepts since 2026
BAD_CREDENTIALS = "Spotify rejected SPOTIFY_CLIENT_ID/SECRET; check them in the bot's settings"
LOGIN_REJECTED = "Spotify no longer accepts your login; send /login to connect again"


class UserAuth(Protocol):
    """A person's login as spotipy's `auth_manager` sees it (see `bot.spotify_accounts`)."""

    display_name: str

    def get_access_token(self, as_dict: bool = False) -> str:
        """A valid access token, refreshed first when it has expired; raises PipelineError."""
        ...

    def forget(self) -> None:
        """The API refused the access token: the next `get_access_token` refreshes it."""
        ...


class LoginRejected(PermanentError):
    """A person's token is refused even right after a refresh: they must log in again."""

    default_reason = LOGIN_REJECTED


class AccessRefused(PermanentError):
    """HTTP 403: the app may not read this (another user's playlist items, or a Development-Mode app
    whose owner has no Premium); the public embed page may still show it."""

    default_reason = "Spotify refused access"


def spotify_session(*, retries: int = 3, backoff_factor: float = 0.3) -> requests.Session:
    """A session that retries 5xx briefly and never waits out a Retry-After, which from Spotify can be hours."""
    retry = Retry(
        total=retries,
        backoff_factor=backoff_factor,
        status_forcelist=(500, 502, 503, 504),
        respect_retry_after_header=False,
        raise_on_status=False,  # hand back the last 5xx so it is reported as such, not as spotipy's fake 429
    )
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def api_error(error: SpotifyException, what: str, *, user: bool = False) -> PipelineError:
    status, detail = error.http_status, f"HTTP {error.http_status} for {what}: {' '.join(str(error.msg).split())}"
    if passing := status_error(status, error.headers, service=SERVICE, detail=detail):
        return passing
    if status in (400, 404):
        return NotFound(detail=detail)
    if status == 401:
        return LoginRejected(detail=detail) if user else ConfigurationError(BAD_CREDENTIALS, detail=detail)
    if status == 403:
        return AccessRefused(detail=detail)
    return PermanentError(f"Spotify answered HTTP {status}", detail=detail)


def token_error(error: SpotifyOauthError) -> PipelineError:
    """spotipy hides the token endpoint's status; the HTTPError it was raised from still has it."""
    cause = error.__context__
    response = getattr(cause, "response", None)
    status = getattr(response, "status_code", None)
    detail = f"token endpoint: HTTP {status}: {error.error} {error.error_description or ''}".strip()
    headers = getattr(response, "headers", None)
    if status is not None and (passing := status_error(status, headers, service=SERVICE, detail=detail)):
        return passing
    return ConfigurationError(BAD_CREDENTIALS, detail=detail)


class _TokenRejected(Exception):
    """The API refused the cached access token: worth one retry with a fresh token."""


class SpotifyApi:
    """The few Web API calls we need, each returning our models or raising a `PipelineError`.

    With `user`, calls are made with that person's token (their library, their private playlists);
    without, with the app's client-credentials token.
    """

    def __init__(
        self, settings: PipelineSettings, *, session: requests.Session | None = None, user: UserAuth | None = None
    ) -> None:
        session = session or spotify_session()
        self._user = user
        self._token_cache = MemoryCacheHandler()
        auth: Any = user
        if user is None:
            if not settings.has_spotify_credentials:
                raise ConfigurationError("SPOTIFY_CLIENT_ID and SPOTIFY_CLIENT_SECRET are needed for the Spotify API")
            assert settings.spotify_client_secret is not None
            auth = spotipy.SpotifyClientCredentials(
                client_id=settings.spotify_client_id,
                client_secret=settings.spotify_client_secret.get_secret_value(),
                requests_session=session,
                requests_timeout=settings.http_timeout,
                cache_handler=self._token_cache,
            )
            auth.OAUTH_TOKEN_URL = settings.spotify_token_url  # instance attribute: the documented test seam
        self._sp = spotipy.Spotify(auth_manager=auth, requests_session=session, requests_timeout=settings.http_timeout)
        self._sp.prefix = settings.spotify_api_url

    def _call(self, what: str, func: Callable[..., Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
        """A 401 from the API means the token we hold went bad (revoked, expired early), not the credentials:
        forget it and try once more with a fresh one. Only a 401 right after a fresh token blames them."""
        try:
            return self._call_once(what, lambda: func(*args, **kwargs), token_is_fresh=False)
        except _TokenRejected:
            log.info("Spotify rejected the access token for %s; getting a new one", what)
            if self._user is not None:
                self._user.forget()
            else:
                self._token_cache.save_token_to_cache(None)
        return self._call_once(what, lambda: func(*args, **kwargs), token_is_fresh=True)

    def _call_once(self, what: str, call: Callable[[], Any], *, token_is_fresh: bool) -> dict[str, Any]:
        try:
            result = call()
        except SpotifyOauthError as error:
            mapped: PipelineError = token_error(error)
        except SpotifyException as error:
            if error.http_status == 401 and not token_is_fresh:
                raise _TokenRejected from None
            mapped = api_error(error, what, user=self._user is not None)
        except requests.RequestException as error:  # connection refused, timeouts, exhausted retries
            mapped = request_error(error, service=SERVICE, detail=f"{what}: {type(error).__name__}")
        else:
            if not isinstance(result, dict):  # spotipy returns None for a body that is not JSON
                raise TransientError("unexpected answer from Spotify; will retry", detail=f"{what}: not JSON")
            return result
        log.info("Spotify %s failed: %s", what, mapped)
        raise mapped from None

    def _pages(self, what: str, first: dict[str, Any] | None, fetch: Callable[[int], dict[str, Any]]) -> Iterator[Any]:
        """Every item of a paged list: follow offsets while Spotify says there is a `next` page."""
        page = first if first is not None else self._call(what, fetch, 0)
        offset = 0
        while True:
            items = page.get("items") or []
            yield from items
            offset += len(items)
            total = page.get("total")
            if not page.get("next") or not items or (isinstance(total, int) and offset >= total):
                return
            page = self._call(what, fetch, offset)

    def track(self, spotify_id: str) -> Track:
        return parse_track(self._call(f"track {spotify_id}", self._sp.track, spotify_id))

    def search(self, query: str, limit: int = SEARCH_LIMIT) -> list[Track]:
        """Tracks matching the words, best first (`GET /search?type=track`)."""
        limit = max(1, min(limit, SEARCH_LIMIT))
        return search_tracks(self._call("search", self._sp.search, q=query, type="track", limit=limit))

    def album(self, spotify_id: str) -> Collection:
        what = f"album {spotify_id}"
        album = self._call(what, self._sp.album, spotify_id)
        embedded = album.get("tracks")

        def fetch(offset: int) -> dict[str, Any]:
            return self._sp.album_tracks(spotify_id, limit=PAGE_LIMIT, offset=offset)

        first = embedded if isinstance(embedded, dict) and album_pages(album) else None
        items = list(self._pages(what, first, fetch))
        return parse_album(album, items)

    def playlist(self, spotify_id: str) -> Collection:
        """Items first: a 403/404 there (the usual case in 2026) costs one call before the embed fallback."""
        what = f"playlist {spotify_id}"

        def fetch(offset: int) -> dict[str, Any]:
            return self._sp.playlist_items(spotify_id, limit=PAGE_LIMIT, offset=offset)

        entries = list(self._pages(what, None, fetch))
        playlist = self._call(what, self._sp.playlist, spotify_id)
        return parse_playlist(playlist, entries)

    # --- a person's own library (needs `user`) -------------------------------------------------------
    def me(self) -> dict[str, Any]:
        """`GET /me`: 403 (AccessRefused) when the person is not in the app's user list."""
        return self._call("your profile", self._sp.me)

    def saved_tracks(self, owner: str) -> Collection:
        """The Liked Songs, in Spotify's order (newest first), read in pages of 50."""

        def fetch(offset: int) -> dict[str, Any]:
            return self._sp.current_user_saved_tracks(limit=PAGE_LIMIT, offset=offset)

        return parse_saved_tracks(list(self._pages("your Liked Songs", None, fetch)), owner)

    def my_playlists(self) -> list[PlaylistSummary]:
        """The playlists in the person's library (own, collaborative and followed), in their order."""

        def fetch(offset: int) -> dict[str, Any]:
            return self._sp.current_user_playlists(limit=PAGE_LIMIT, offset=offset)

        found = (parse_playlist_summary(item) for item in self._pages("your playlists", None, fetch))
        return [summary for summary in found if summary is not None]
