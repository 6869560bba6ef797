"""What a Spotify link holds: the Web API when credentials exist, else (or when it refuses) the embed page.

Since 2026 a client-credentials token may read tracks, albums and playlist metadata but not the
items of other users' playlists (403) nor Spotify-owned ones (404); the public embed page still lists
up to 100 of them. Embed tracks lack album, ISRC and release date, so `enrich` fills them from
`GET /tracks/{id}` right before a track is searched for.

A person's own login (`UserAuth`) reads what only they may: playlists they own or collaborate on (complete,
private ones too) and their Liked Songs. A playlist they only follow is refused even to them (403): it is
read like anyone else's, from the embed page, and the collection says so (`login_refused`).
"""

from __future__ import annotations

import logging

import requests

from pipeline.errors import BadInput, NotFound, PermanentError, Unavailable
from pipeline.links import is_spotify_id
from pipeline.models import Collection, LinkKind, PlaylistSummary, Track
from pipeline.settings import PipelineSettings
from pipeline.spotify_api import AccessRefused, SpotifyApi, UserAuth, spotify_session
from pipeline.spotify_embed import fetch_embed
from pipeline.spotify_parse import single

log = logging.getLogger(__name__)


def _missing(value: object) -> bool:
    return value is None or value == "" or value == [] or (type(value) is int and value == 0)


def fill_gaps(fresh: Track, known: Track) -> Track:
    """`fresh`, keeping what only `known` had (e.g. the disc total learnt from the whole album).

    The id stays the known one: it keys the request's state and cached uploads.
    """
    update: dict[str, object] = {
        name: getattr(known, name)
        for name in Track.model_fields
        if _missing(getattr(fresh, name)) and not _missing(getattr(known, name))
    }
    update["spotify_id"] = known.spotify_id
    return fresh.model_copy(update=update)


class SpotifyMetadata:
    def __init__(self, settings: PipelineSettings, *, session: requests.Session | None = None) -> None:
        self._settings = settings
        self._session = session or spotify_session()
        self._api = SpotifyApi(settings, session=self._session) if settings.has_spotify_credentials else None
        if self._api is None and settings.spotify_client_secret:
            log.warning("SPOTIFY_CLIENT_SECRET without SPOTIFY_CLIENT_ID: using Spotify's public pages without the API")
        elif self._api is None and settings.spotify_client_id:
            log.info("no SPOTIFY_CLIENT_SECRET: links are read from Spotify's public pages (people's /login works)")

    def _embed(self, kind: LinkKind, spotify_id: str) -> Collection:
        return fetch_embed(
            self._session, self._settings.spotify_embed_url, kind, spotify_id, timeout=self._settings.http_timeout
        )

    def _user_api(self, user: UserAuth) -> SpotifyApi:
        return SpotifyApi(self._settings, session=self._session, user=user)

    def resolve(self, kind: LinkKind, spotify_id: str, *, user: UserAuth | None = None) -> Collection:
        """The track, album or playlist behind a link, in order, with what had to be skipped and why.

        With `user`, a playlist is read with that person's token first."""
        if not is_spotify_id(spotify_id):  # it becomes part of a URL path
            raise BadInput("not a valid Spotify id", detail=repr(spotify_id))
        if kind == "playlist" and user is not None:
            try:
                return self._user_api(user).playlist(spotify_id)
            except (AccessRefused, NotFound) as error:
                log.info("the user's login cannot read playlist %s (%s); reading it as a guest", spotify_id, error)
                return self._resolve(kind, spotify_id).model_copy(update={"login_refused": True})
            except PermanentError as error:  # the login itself is gone: read the link as anyone could
                log.info("the user's login failed for playlist %s (%s); reading it as a guest", spotify_id, error)
        return self._resolve(kind, spotify_id)

    def liked(self, user: UserAuth) -> Collection:
        """The person's Liked Songs (AccessRefused: they are not in the app's user list)."""
        return self._user_api(user).saved_tracks(user.display_name)

    def playlists(self, user: UserAuth) -> list[PlaylistSummary]:
        """The playlists in the person's library."""
        return self._user_api(user).my_playlists()

    def profile_name(self, user: UserAuth) -> str:
        """The person's display name from `GET /me` (AccessRefused: not in the app's user list)."""
        me = self._user_api(user).me()
        return str(me.get("display_name") or me.get("id") or "")

    def _resolve(self, kind: LinkKind, spotify_id: str) -> Collection:
        if self._api is None:
            return self._embed(kind, spotify_id)
        try:
            if kind == "track":
                return single(self._api.track(spotify_id))
            if kind == "album":
                return self._api.album(spotify_id)
            return self._api.playlist(spotify_id)
        except AccessRefused as error:
            # Another user's playlist (expected), or a Development-Mode app whose owner lacks Premium.
            level = logging.INFO if kind == "playlist" else logging.WARNING
            log.log(level, "Spotify API refused %s %s (%s); using the embed page", kind, spotify_id, error.detail)
            return self._embed(kind, spotify_id)
        except NotFound:
            if kind != "playlist":
                raise
            # Spotify-owned (37i9dQZF…) and some private playlists are 404 to apps; the page may show them.
            log.info("Spotify API has no playlist %s; trying the embed page", spotify_id)
            return self._embed(kind, spotify_id)

    def track(self, spotify_id: str) -> Track:
        collection = self.resolve("track", spotify_id)
        return collection.tracks[0]

    def enrich(self, track: Track) -> Track:
        """Complete an embed-page track (no album or ISRC) from the API; unchanged without credentials.

        A track the API cannot show is returned as it is; rate limits and network trouble propagate
        so that the caller retries later.
        """
        if self._api is None or (track.album and track.isrc) or track.origin != "spotify":
            return track
        try:
            fresh = self._api.track(track.spotify_id)
        except (NotFound, AccessRefused, Unavailable) as error:
            log.info("could not enrich track %s: %s", track.spotify_id, error)
            return track
        return fill_gaps(fresh, track)
