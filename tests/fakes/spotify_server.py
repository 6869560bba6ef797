"""A fake Spotify on 127.0.0.1: token endpoint, Web API (2026 rules), embed pages and cover images.

A real HTTP server in a daemon thread, so the code under test (and bot/worker subprocesses in
end-to-end tests) talks HTTP exactly as in production; point SPOTIFY_API_URL, SPOTIFY_TOKEN_URL and
SPOTIFY_EMBED_URL at it (`env()` / `settings()`).

The catalog starts with the recorded responses in tests/data/spotify/ and grows with synthetic
entities (`add_track`, `add_album`, `add_playlist`). It behaves like Spotify for a
Development-Mode app in 2026: playlist items are 403 unless the playlist is marked `owned`,
Spotify-owned playlists (`37i9dQZF…`) are 404, pages hold at most 50 items, `popularity`,
`available_markets`, `linked_from` and `label` are gone, and playlist entries carry the track under
`item` (`entry_shape` switches to the old `track` or to both). Embed pages show up to 100 items and
answer 200 with `pageProps.status` 404 and no `state` for unknown or private ids.

A person's own login (Authorization Code + PKCE, as Spotify documents it): `add_user` makes a Spotify
account (`registered=False`: not in the app's user list, so the API answers 403 to its token);
`GET /authorize` approves for the account "signed in" in the browser (`authorize(link, user)` plays the
browser and returns where it is sent: the redirect URI with `?code=&state=`, or `error=access_denied`);
the token endpoint takes `authorization_code` (single use, `code_verifier` checked against the challenge)
and `refresh_token` (rotating: the answer has a new refresh token and the old one is revoked, reuse →
400 `invalid_grant`). With a user token: `/v1/me`, `/v1/me/tracks` (`like`), `/v1/me/playlists` (the
playlists added with `user_owner`, `collaborators` or `followers`), and playlist items only for their owner
and collaborators (403 for a follower). `expire_user_tokens()` makes the issued access tokens answer 401.

Faults: `fail(path_regex, status, headers=..., times=N)`. Every request is logged in `requests`.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import random
import re
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import parse_qs, quote, urlencode, urlsplit

from pipeline.settings import PipelineSettings, load_settings
from tests.fakes.local_http import LocalHttpServer

DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "spotify"
BASE62 = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
SPOTIFY_ID = re.compile(r"^[0-9A-Za-z]{22}$")
SPOTIFY_OWNED_PREFIX = "37i9dQZF"
ANONYMOUS_TOKEN = "FAKE-ANONYMOUS-EMBED-TOKEN"  # sits in every embed page; the API rejects it
REMOVED_FIELDS = frozenset({"popularity", "available_markets", "linked_from", "label"})
EMBED_LIMIT = 100
NOT_REGISTERED = "Check settings on developer.spotify.com/dashboard, the user may not be registered."
MAX_PAGE = 50
MAX_SEARCH_PAGE = 10  # /search's largest `limit` for Development-Mode apps since 2026
MAX_SEARCH_OFFSET = 1000
_CDN_URL = re.compile(r"https://[a-z0-9.-]*(?:scdn\.co|spotifycdn\.com)/[^\"\s]*")

EntryShape = Literal["item", "track", "both"]
S = TypeVar("S", bound=PipelineSettings)


@dataclass
class RecordedRequest:
    method: str
    path: str  # without query string or trailing slash
    query: dict[str, str]
    headers: dict[str, str]


@dataclass
class _Fault:
    pattern: re.Pattern[str]
    status: int
    headers: dict[str, str]
    remaining: int | None  # None = forever
    body: bytes | None
    method: str | None
    delay: float


@dataclass
class _Playlist:
    meta: dict[str, Any]  # the playlist object without its items
    entries: list[dict[str, Any]]  # {"added_at", "added_by", "is_local", "track": track JSON or None}
    owned: bool = False
    public: bool = True
    user_owner: str | None = None  # a fake Spotify account (add_user) that owns it
    collaborators: set[str] = field(default_factory=set)


@dataclass
class FakeUser:
    """A Spotify account that can log in to the app."""

    id: str
    display_name: str
    registered: bool = True  # in the app's User Management list (else 403 from the API)
    liked: list[str] = field(default_factory=list)  # track ids, newest first (Spotify's order)
    library: list[str] = field(default_factory=list)  # playlist ids: own, collaborative and followed


@dataclass
class _Grant:
    user: str
    challenge: str
    redirect_uri: str
    scope: str


@dataclass
class _Catalog:
    tracks: dict[str, dict[str, Any]] = field(default_factory=dict)  # full track objects
    albums: dict[str, dict[str, Any]] = field(default_factory=dict)  # album objects without "tracks"
    album_items: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # simplified tracks
    playlists: dict[str, _Playlist] = field(default_factory=dict)


def strip_removed_fields(value: Any) -> Any:
    """The 2026 Development-Mode shape of a recorded object: drops the fields Spotify removed."""
    if isinstance(value, dict):
        return {k: strip_removed_fields(v) for k, v in value.items() if k not in REMOVED_FIELDS}
    if isinstance(value, list):
        return [strip_removed_fields(v) for v in value]
    return value


def _error(status: int, message: str | None = None) -> dict[str, Any]:
    return {"error": {"status": status, "message": message or HTTPStatus(status).phrase}}


def _date_iso(date: str | None) -> str | None:
    if not date or date.startswith("0000"):
        return None
    parts = [*date.split("-"), "01", "01"][:3]
    return f"{parts[0]}-{parts[1]}-{parts[2]}T00:00:00Z"


def _jpeg(key: str, size: int) -> bytes:
    from PIL import Image

    digest = hashlib.sha1(key.encode()).digest()
    image = Image.new("RGB", (size, size), (digest[0], digest[1], digest[2]))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=80)
    return out.getvalue()


class FakeSpotify(LocalHttpServer):
    """See the module docstring. Thread-safe; usable as a context manager."""

    CLIENT_ID = "fake-spotify-client-id"
    CLIENT_SECRET = "fake-spotify-client-secret"
    REDIRECT_URI = "http://127.0.0.1:8888/callback"  # registered in the fake app (SPOTIFY_REDIRECT_URI's default)
    REQUIRED_SCOPES = frozenset({"user-library-read", "playlist-read-private", "playlist-read-collaborative"})
    thread_name = "fake-spotify"

    def __init__(
        self,
        *,
        client_id: str = CLIENT_ID,
        client_secret: str = CLIENT_SECRET,
        recorded: bool = True,
        seed: int = 2026,
    ) -> None:
        self.client_id, self.client_secret = client_id, client_secret
        self.entry_shape: EntryShape = "item"
        self.request_log: list[RecordedRequest] = []
        self.tokens_issued = 0
        self._lock = threading.RLock()
        self._rng = random.Random(seed)
        self._catalog = _Catalog()
        self._faults: list[_Fault] = []
        self._tokens: set[str] = set()
        self.users: dict[str, FakeUser] = {}
        self.redirect_uris = {self.REDIRECT_URI}
        self.user_token_lifetime = 3600  # expires_in of user access tokens
        self.code_grants = 0  # authorization codes exchanged
        self.refresh_grants = 0  # successful refreshes
        self._codes: dict[str, _Grant] = {}  # unused authorization codes
        self._user_tokens: dict[str, str] = {}  # access token → user id
        self._refresh_tokens: dict[str, str] = {}  # live refresh token → user id
        self.revoked_refresh_tokens: set[str] = set()
        self._artist_ids: dict[str, str] = {}
        self._images: dict[tuple[str, int], bytes] = {}
        super().__init__()
        if recorded:
            self.load_recorded(DATA_DIR)

    # --- where it listens -----------------------------------------------------------------------
    @property
    def api_url(self) -> str:
        return f"{self.base_url}/v1/"

    @property
    def token_url(self) -> str:
        return f"{self.base_url}/api/token"

    @property
    def embed_url(self) -> str:
        return f"{self.base_url}/embed/"

    @property
    def auth_url(self) -> str:
        return f"{self.base_url}/authorize"

    def env(self, *, credentials: bool = True) -> dict[str, str]:
        """Environment variables for a subprocess (bot, worker) that should use this fake."""
        return {
            "SPOTIFY_API_URL": self.api_url,
            "SPOTIFY_TOKEN_URL": self.token_url,
            "SPOTIFY_AUTH_URL": self.auth_url,
            "SPOTIFY_EMBED_URL": self.embed_url,
            "SPOTIFY_CLIENT_ID": self.client_id if credentials else "",
            "SPOTIFY_CLIENT_SECRET": self.client_secret if credentials else "",
        }

    def settings_kwargs(self, *, credentials: bool = True) -> dict[str, Any]:
        """Keyword overrides for `load_settings(...)`; explicit Nones beat a developer's own env/.env."""
        return {
            "spotify_api_url": self.api_url,
            "spotify_token_url": self.token_url,
            "spotify_auth_url": self.auth_url,
            "spotify_embed_url": self.embed_url,
            "spotify_client_id": self.client_id if credentials else None,
            "spotify_client_secret": self.client_secret if credentials else None,
        }

    def settings(self, cls: type[S] = PipelineSettings, *, credentials: bool = True, **overrides: Any) -> S:  # type: ignore[assignment]
        """Settings (PipelineSettings by default) pointing at this fake; `overrides` win."""
        return load_settings(cls, **{**self.settings_kwargs(credentials=credentials), **overrides})  # type: ignore[type-var]

    # --- the request log and faults --------------------------------------------------------------
    @property
    def requests(self) -> list[tuple[str, str]]:
        """(method, path) of every request so far, e.g. ("GET", "/v1/tracks/0abc…")."""
        with self._lock:
            return [(r.method, r.path) for r in self.request_log]

    def count(self, path_regex: str = "", method: str | None = None) -> int:
        pattern = re.compile(path_regex)
        with self._lock:
            return sum(1 for r in self.request_log if pattern.search(r.path) and method in (None, r.method))

    def clear_requests(self) -> None:
        with self._lock:
            self.request_log.clear()

    def fail(
        self,
        path_regex: str,
        status: int,
        headers: Mapping[str, str] | None = None,
        times: int | None = 1,
        *,
        body: str | bytes | Mapping[str, Any] | None = None,
        method: str | None = None,
        delay: float = 0.0,
    ) -> None:
        """Answer the next `times` requests whose path (with query) matches with `status` (None = always),
        after `delay` seconds (a slow Spotify, for timeouts).

        E.g. `fail(r"/v1/tracks/", 429, {"Retry-After": "3600"})`, `fail("/embed/", 200, body="<html/>")`.
        """
        if isinstance(body, Mapping):
            body = json.dumps(body)
        raw = body.encode() if isinstance(body, str) else body
        fault = _Fault(re.compile(path_regex), status, dict(headers or {}), times, raw, method, delay)
        with self._lock:
            self._faults.append(fault)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def revoke_tokens(self) -> None:
        """Every issued token becomes invalid (the API answers 401)."""
        with self._lock:
            self._tokens.clear()

    # --- people's own logins ------------------------------------------------------------------------
    def add_user(self, display_name: str, *, registered: bool = True, user_id: str | None = None) -> str:
        """A Spotify account; `registered=False`: not in the app's user list (the API answers 403)."""
        with self._lock:
            uid = user_id or re.sub(r"[^a-z0-9]", "", display_name.lower()) or f"user{len(self.users)}"
            self.users[uid] = FakeUser(uid, display_name, registered=registered)
        return uid

    def like(self, user_id: str, track_ids: Iterable[str]) -> None:
        """Add to the account's Liked Songs; the last one liked comes first, as on Spotify."""
        with self._lock:
            for track_id in track_ids:
                self.users[user_id].liked.insert(0, track_id)

    def authorize(self, link: str, user_id: str, *, deny: bool = False) -> str:
        """The browser: open the bot's authorization link signed in as `user_id`, approve (or deny), and
        return the address Spotify sends the browser to (or raise with the error page's status)."""
        import http.client

        query = urlsplit(link).query + ("&" if urlsplit(link).query else "") + urlencode({"fake_deny": int(deny)})
        connection = http.client.HTTPConnection(*self._server.server_address[:2], timeout=10)
        try:
            connection.request("GET", f"/authorize?{query}", headers={"Cookie": f"fake_user={user_id}"})
            response = connection.getresponse()
            body = response.read().decode()
            if response.status != 303:
                raise AssertionError(f"/authorize answered {response.status}: {body}")
            return response.getheader("Location") or ""
        finally:
            connection.close()

    def expire_user_tokens(self) -> None:
        """Every user access token issued so far expires (401); refresh tokens keep working."""
        with self._lock:
            self._user_tokens.clear()

    def live_refresh_tokens(self, user_id: str) -> int:
        with self._lock:
            return sum(1 for owner in self._refresh_tokens.values() if owner == user_id)

    # --- the catalog ------------------------------------------------------------------------------
    def new_id(self, prefix: str = "") -> str:
        """A fresh valid id: 22 base62 characters whose first is 0–6 (so it fits in 128 bits)."""
        with self._lock:
            while True:
                head = prefix or self._rng.choice("0123456")
                candidate = head + "".join(self._rng.choice(BASE62) for _ in range(22 - len(head)))
                known = self._catalog
                if not any(candidate in d for d in (known.tracks, known.albums, known.playlists)):
                    return candidate

    def add_track(
        self,
        title: str,
        artists: str | Sequence[str] = "Fake Artist",
        *,
        duration_ms: int = 180_000,
        isrc: str | None = "auto",
        album: str | None = None,
        album_artists: str | Sequence[str] | None = None,
        release_date: str = "2020-01-01",
        explicit: bool = False,
        track_id: str | None = None,
    ) -> str:
        """A track on its own single (or on a one-track album named `album`); returns the track id."""
        names = [artists] if isinstance(artists, str) else list(artists)
        album_id = self.add_album(
            album or title,
            album_artists or names,
            tracks=[{"title": title, "duration_ms": duration_ms, "isrc": isrc, "artists": names, "id": track_id}],
            release_date=release_date,
            explicit=explicit,
            album_type="single" if album is None else "album",
        )
        return self.album_track_ids(album_id)[0]

    def add_album(
        self,
        name: str,
        artist: str | Sequence[str],
        tracks: Iterable[str | tuple[Any, ...] | Mapping[str, Any]],
        *,
        release_date: str = "2020-01-01",
        explicit: bool = False,
        album_type: str = "album",
        album_id: str | None = None,
    ) -> str:
        """An album; `tracks` items are a title, `(title, duration_ms[, isrc])` or a dict with keys
        title, duration_ms, isrc ("auto" = generated, None = none), artists, disc_number, explicit, id.
        Track numbers restart on each disc. Returns the album id (`album_track_ids` gives its tracks)."""
        album_artists = [artist] if isinstance(artist, str) else list(artist)
        specs = [self._track_spec(t) for t in tracks]
        with self._lock:
            album_id = album_id or self.new_id()
            album = {
                "album_type": album_type,
                "total_tracks": len(specs),
                "external_urls": {"spotify": f"https://open.spotify.com/album/{album_id}"},
                "href": f"{self.api_url}albums/{album_id}",
                "id": album_id,
                "images": self._image_list(album_id),
                "name": name,
                "release_date": release_date,
                "release_date_precision": {1: "year", 2: "month"}.get(len(release_date.split("-")), "day"),
                "type": "album",
                "uri": f"spotify:album:{album_id}",
                "artists": [self._artist(a) for a in album_artists],
                "copyrights": [{"text": f"(C) {release_date[:4]} Fake Records", "type": "C"}],
                "external_ids": {"upc": "0" + "".join(self._rng.choice("0123456789") for _ in range(11))},
                "genres": [],
            }
            items, numbers = [], {}
            for spec in specs:
                disc = int(spec.get("disc_number", 1))
                numbers[disc] = numbers.get(disc, 0) + 1
                track_id = spec.get("id") or self.new_id()
                simplified = {
                    "artists": [self._artist(a) for a in spec.get("artists") or album_artists],
                    "disc_number": disc,
                    "duration_ms": int(spec.get("duration_ms", 180_000)),
                    "explicit": bool(spec.get("explicit", explicit)),
                    "external_urls": {"spotify": f"https://open.spotify.com/track/{track_id}"},
                    "href": f"{self.api_url}tracks/{track_id}",
                    "id": track_id,
                    "name": spec["title"],
                    "preview_url": None,
                    "track_number": numbers[disc],
                    "type": "track",
                    "uri": f"spotify:track:{track_id}",
                    "is_local": False,
                }
                isrc = spec.get("isrc", "auto")
                if isrc == "auto":
                    isrc = "QZFAK" + "".join(self._rng.choice("0123456789") for _ in range(7))
                items.append(simplified)
                self._catalog.tracks[track_id] = self._full_track(simplified, album, isrc)
            self._catalog.albums[album_id] = album
            self._catalog.album_items[album_id] = items
        return album_id

    def album_track_ids(self, album_id: str) -> list[str]:
        with self._lock:
            return [t["id"] for t in self._catalog.album_items[album_id]]

    def add_playlist(
        self,
        name: str,
        owner: str = "Fake Curator",
        track_ids: Iterable[str | Mapping[str, Any] | None] = (),
        *,
        owned: bool = False,
        public: bool = True,
        spotify_owned: bool = False,
        extra_items: Iterable[Mapping[str, Any] | None] = (),
        playlist_id: str | None = None,
        user_owner: str | None = None,
        collaborators: Iterable[str] = (),
        followers: Iterable[str] = (),
    ) -> str:
        """A playlist of catalog tracks, in order; `None` = a removed track, a dict = an entry such as
        `local_item(...)` or `episode_item(...)`. `extra_items` are appended after `track_ids`.
        `owned` lets the API list its items (else 403); `spotify_owned` gives a `37i9dQZF…` id (404 to
        the API, shown by the embed page); `public=False` hides it from the embed page too. `user_owner`,
        `collaborators` (accounts: their tokens read its items) and `followers` (they can't) have it in their
        library (`/me/playlists`)."""
        with self._lock:
            playlist_id = playlist_id or self.new_id(prefix=SPOTIFY_OWNED_PREFIX if spotify_owned else "")
            owner_id = re.sub(r"[^a-z0-9]", "", owner.lower()) or "user"
            owner_json = {
                "display_name": "Spotify" if spotify_owned else owner,
                "external_urls": {"spotify": f"https://open.spotify.com/user/{owner_id}"},
                "href": f"{self.api_url}users/{owner_id}",
                "id": "spotify" if spotify_owned else owner_id,
                "type": "user",
                "uri": f"spotify:user:{'spotify' if spotify_owned else owner_id}",
            }
            entries = []
            for value in [*track_ids, *extra_items]:
                if value is None:
                    entries.append(self._entry(None, owner_json))
                elif isinstance(value, str):
                    entries.append(self._entry(self._catalog.tracks[value], owner_json))
                else:
                    entries.append({**self._entry(None, owner_json), **value})
            meta = {
                "collaborative": False,
                "description": "",
                "external_urls": {"spotify": f"https://open.spotify.com/playlist/{playlist_id}"},
                "href": f"{self.api_url}playlists/{playlist_id}",
                "id": playlist_id,
                "images": self._image_list(playlist_id),
                "name": name,
                "owner": owner_json,
                "public": public,
                "snapshot_id": base64.b64encode(playlist_id.encode()).decode(),
                "type": "playlist",
                "uri": f"spotify:playlist:{playlist_id}",
            }
            collaborating = set(collaborators)
            meta["collaborative"] = bool(collaborating)
            self._catalog.playlists[playlist_id] = _Playlist(
                meta, entries, owned=owned, public=public, user_owner=user_owner, collaborators=collaborating
            )
            for uid in [*([user_owner] if user_owner else []), *collaborating, *followers]:
                self.users[uid].library.append(playlist_id)
        return playlist_id

    def set_owned(self, playlist_id: str, owned: bool = True) -> None:
        with self._lock:
            self._catalog.playlists[playlist_id].owned = owned

    def remove(self, spotify_id: str) -> None:
        """Forget a track, album or playlist: the API answers 404 and the embed page "not found"."""
        with self._lock:
            for table in (self._catalog.tracks, self._catalog.albums, self._catalog.playlists):
                table.pop(spotify_id, None)

    def track_json(self, track_id: str) -> dict[str, Any]:
        """What GET /v1/tracks/{id} answers (a copy)."""
        with self._lock:
            return json.loads(json.dumps(self._public(self._catalog.tracks[track_id])))

    @staticmethod
    def local_item(title: str, artist: str = "Someone", duration_ms: int = 200_000) -> dict[str, Any]:
        """A playlist entry for a local file (is_local, no id), as Spotify returns it."""
        uri = f"spotify:local:{artist}::{title}:{duration_ms // 1000}".replace(" ", "+")
        track = {
            "album": {"album_type": None, "artists": [], "images": [], "name": "", "type": "album", "uri": None},
            "artists": [{"name": artist, "type": "artist", "uri": None, "id": None, "href": None}],
            "disc_number": 0,
            "duration_ms": duration_ms,
            "explicit": False,
            "external_ids": {},
            "external_urls": {},
            "href": None,
            "id": None,
            "is_local": True,
            "name": title,
            "preview_url": None,
            "track_number": 0,
            "type": "track",
            "uri": uri,
        }
        return {"is_local": True, "track": track}

    @staticmethod
    def episode_item(name: str, show: str = "A Fake Podcast", duration_ms: int = 1_800_000) -> dict[str, Any]:
        episode_id = hashlib.sha1(name.encode()).hexdigest()[:22]
        episode = {
            "id": episode_id,
            "name": name,
            "duration_ms": duration_ms,
            "type": "episode",
            "uri": f"spotify:episode:{episode_id}",
            "show": {"name": show, "type": "show"},
            "explicit": False,
        }
        return {"is_local": False, "track": episode}

    def load_recorded(self, directory: Path) -> None:
        """Recorded tracks, albums and playlists; their API and CDN URLs are rewritten to this fake."""
        for path in sorted(directory.glob("spotify_*.json")):
            text = path.read_text(encoding="utf-8").replace("https://api.spotify.com/v1/", self.api_url)
            text = _CDN_URL.sub(
                lambda m: f"{self.base_url}/image/{hashlib.sha1(m.group(0).encode()).hexdigest()[:20]}", text
            )
            data = json.loads(text)
            kind = path.stem.split("_")[1]
            with self._lock:
                if kind == "track" and data.get("id"):
                    self._catalog.tracks[data["id"]] = data
                elif kind == "album" and not path.stem.endswith("_offset0") and data.get("id"):
                    items = (data.pop("tracks", None) or {}).get("items") or []
                    self._catalog.albums[data["id"]] = data
                    self._catalog.album_items[data["id"]] = items
                    for item in items:
                        self._catalog.tracks.setdefault(item["id"], self._full_track(item, data, None))
                elif kind == "playlist" and not path.stem.endswith("_offset0") and data.get("id"):
                    entries = (data.pop("tracks", None) or {}).get("items") or []
                    for entry in entries:
                        track = entry.get("track")
                        if isinstance(track, dict) and track.get("id") and not entry.get("is_local"):
                            self._catalog.tracks.setdefault(track["id"], track)
                    self._catalog.playlists[data["id"]] = _Playlist(data, entries)

    # --- JSON builders ----------------------------------------------------------------------------
    @staticmethod
    def _track_spec(value: str | tuple[Any, ...] | Mapping[str, Any]) -> dict[str, Any]:
        if isinstance(value, str):
            return {"title": value}
        if isinstance(value, tuple):
            keys = ("title", "duration_ms", "isrc")
            return dict(zip(keys, value, strict=False))
        return {k: v for k, v in value.items() if v is not None or k == "isrc"}

    def _artist(self, name: str) -> dict[str, Any]:
        artist_id = self._artist_ids.get(name) or self._artist_ids.setdefault(name, self.new_id())
        return {
            "external_urls": {"spotify": f"https://open.spotify.com/artist/{artist_id}"},
            "href": f"{self.api_url}artists/{artist_id}",
            "id": artist_id,
            "name": name,
            "type": "artist",
            "uri": f"spotify:artist:{artist_id}",
        }

    def _image_list(self, key: str) -> list[dict[str, Any]]:
        return [
            {"url": f"{self.base_url}/image/{key}-{size}", "height": size, "width": size} for size in (640, 300, 64)
        ]

    @staticmethod
    def _album_simplified(album: Mapping[str, Any]) -> dict[str, Any]:
        keep = ("album_type", "artists", "available_markets", "external_urls", "href", "id", "images", "name")
        more = ("release_date", "release_date_precision", "total_tracks", "type", "uri")
        return {k: album[k] for k in (*keep, *more) if k in album}

    def _full_track(self, simplified: Mapping[str, Any], album: Mapping[str, Any], isrc: str | None) -> dict[str, Any]:
        track = dict(simplified)
        track["album"] = self._album_simplified(album)
        track["external_ids"] = {"isrc": isrc} if isrc else {}
        return track

    @staticmethod
    def _entry(track: Mapping[str, Any] | None, owner: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "added_at": "2026-01-01T00:00:00Z",
            "added_by": {k: owner[k] for k in ("external_urls", "href", "id", "type", "uri")},
            "is_local": False,
            "track": track,
        }

    @staticmethod
    def _public(value: Any) -> Any:
        """As served: a deep copy without the fields Spotify dropped in 2026."""
        return strip_removed_fields(value)

    def _render_entry(self, entry: Mapping[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in entry.items() if k != "track"}
        track = entry.get("track")
        if self.entry_shape in ("item", "both"):
            out["item"] = track
        if self.entry_shape in ("track", "both"):
            out["track"] = track
        return self._public(out)

    def _page(self, path: str, items: Sequence[Any], query: Mapping[str, str], default_limit: int = 20) -> Any:
        try:
            offset, limit = int(query.get("offset", 0)), int(query.get("limit", default_limit))
        except ValueError:
            return 400, _error(400, "Invalid limit or offset")
        if not 1 <= limit <= MAX_PAGE or offset < 0:
            return 400, _error(400, "Invalid limit" if offset >= 0 else "Invalid offset")
        total = len(items)
        url = f"{self.api_url}{path}"
        return 200, {
            "href": f"{url}?offset={offset}&limit={limit}",
            "items": list(items[offset : offset + limit]),
            "limit": limit,
            "next": f"{url}?offset={offset + limit}&limit={limit}" if offset + limit < total else None,
            "offset": offset,
            "previous": f"{url}?offset={max(0, offset - limit)}&limit={limit}" if offset > 0 else None,
            "total": total,
        }

    # --- request handling -------------------------------------------------------------------------
    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            server_version = "FakeSpotify/1.0"

            def do_GET(self) -> None:
                fake._handle(self, "GET")

            def do_POST(self) -> None:
                fake._handle(self, "POST")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(handler.path)
        path = parts.path.rstrip("/") or "/"
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        body = handler.rfile.read(int(handler.headers.get("Content-Length") or 0)) if method == "POST" else b""
        with self._lock:
            self.request_log.append(RecordedRequest(method, path, query, dict(handler.headers.items())))
            fault = self._take_fault(method, handler.path)
        if fault is not None:
            time.sleep(fault.delay)
            default = json.dumps(_error(fault.status)).encode() if fault.status >= 400 else b""
            content_type = "application/json" if fault.body is None else "text/html; charset=utf-8"
            if fault.body is not None and fault.body[:1] in (b"{", b"["):
                content_type = "application/json"
            self._send(
                handler, fault.status, fault.body if fault.body is not None else default, content_type, fault.headers
            )
            return
        try:
            if method == "GET" and path == "/authorize":
                self._authorize(handler, query)
                return
            if method == "POST" and path == "/api/token":
                status, payload = self._token(handler, body)
            elif method == "GET" and path.startswith("/v1/"):
                status, payload = self._api(handler, path[len("/v1/") :], query)
            elif method == "GET" and path.startswith("/embed/"):
                html = self._embed_page(path[len("/embed/") :])
                self._send(handler, 200, html.encode(), "text/html; charset=utf-8")
                return
            elif method == "GET" and path.startswith("/image/"):
                self._send(handler, 200, self._image(path[len("/image/") :]), "image/jpeg")
                return
            else:
                status, payload = 404, _error(404, "Service not found")
        except Exception as error:  # a bug in the fake must show up as a 500, not a hung client
            status, payload = 500, _error(500, f"fake Spotify crashed: {error!r}")
        self._send(handler, status, json.dumps(payload).encode(), "application/json; charset=utf-8")

    def _take_fault(self, method: str, target: str) -> _Fault | None:
        for fault in self._faults:
            if fault.method not in (None, method) or not fault.pattern.search(target):
                continue
            if fault.remaining is not None:
                if fault.remaining <= 0:
                    continue
                fault.remaining -= 1
            return fault
        return None

    @staticmethod
    def _send(
        handler: BaseHTTPRequestHandler,
        status: int,
        body: bytes,
        content_type: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", content_type)
            handler.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout test)
            pass

    def _authorize(self, handler: BaseHTTPRequestHandler, query: Mapping[str, str]) -> None:
        """Spotify's consent page, already approved (or denied) by the account in the `fake_user` cookie."""
        problems = []
        if query.get("client_id") != self.client_id:
            problems.append("INVALID_CLIENT: Invalid client")
        if query.get("response_type") != "code":
            problems.append("unsupported response_type")
        if query.get("redirect_uri") not in self.redirect_uris:
            problems.append("INVALID_CLIENT: Invalid redirect URI")
        if query.get("code_challenge_method") != "S256" or not re.fullmatch(
            r"[A-Za-z0-9_-]{43}", query.get("code_challenge", "")
        ):
            problems.append("code_challenge must be S256")
        if not query.get("state"):
            problems.append("no state")
        scopes = set(query.get("scope", "").split())
        if not scopes >= self.REQUIRED_SCOPES:
            problems.append(f"missing scopes {sorted(self.REQUIRED_SCOPES - scopes)}")
        cookie = handler.headers.get("Cookie", "")
        user = cookie.partition("fake_user=")[2].split(";")[0] or None
        with self._lock:
            if user not in self.users:
                problems.append("nobody signed in")
            if problems:
                self._send(handler, 400, "; ".join(problems).encode(), "text/plain; charset=utf-8")
                return
            assert user is not None
            back = {"state": query["state"]}
            if query.get("fake_deny") == "1":
                back["error"] = "access_denied"
            else:
                code = "AQ" + "".join(self._rng.choice(BASE62 + "-_") for _ in range(180))
                self._codes[code] = _Grant(user, query["code_challenge"], query["redirect_uri"], query["scope"])
                back = {"code": code, **back}
        location = f"{query['redirect_uri']}?{urlencode(back)}"
        self._send(handler, 303, b"", "text/plain", {"Location": location})

    def _user_tokens_for(self, user: str, scope: str) -> dict[str, Any]:
        """Called with the lock held."""
        access = "fake-user-token-" + "".join(self._rng.choice(BASE62) for _ in range(24))
        refresh = "fake-refresh-" + "".join(self._rng.choice(BASE62) for _ in range(32))
        self._user_tokens[access] = user
        self._refresh_tokens[refresh] = user
        return {
            "access_token": access,
            "token_type": "Bearer",
            "scope": scope,
            "expires_in": self.user_token_lifetime,
            "refresh_token": refresh,
        }

    def _user_grant(self, form: Mapping[str, str]) -> tuple[int, Any]:
        """PKCE: no client secret; the client id is in the form."""
        invalid = {"error": "invalid_grant"}
        if form.get("client_id") != self.client_id:
            return 400, {"error": "invalid_client", "error_description": "Invalid client"}
        with self._lock:
            if form["grant_type"] == "authorization_code":
                grant = self._codes.pop(form.get("code", ""), None)  # single use, right or wrong
                if grant is None:
                    return 400, {**invalid, "error_description": "Invalid authorization code"}
                if form.get("redirect_uri") != grant.redirect_uri:
                    return 400, {**invalid, "error_description": "Invalid redirect URI"}
                verifier = form.get("code_verifier", "")
                challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
                if challenge != grant.challenge:
                    return 400, {**invalid, "error_description": "code_verifier was incorrect"}
                self.code_grants += 1
                return 200, self._user_tokens_for(grant.user, grant.scope)
            old = form.get("refresh_token", "")
            user = self._refresh_tokens.pop(old, None)  # rotation: the old one stops working
            if user is None:
                return 400, {**invalid, "error_description": "Refresh token revoked"}
            self.revoked_refresh_tokens.add(old)
            self.refresh_grants += 1
            return 200, self._user_tokens_for(user, " ".join(sorted(self.REQUIRED_SCOPES)))

    def _token(self, handler: BaseHTTPRequestHandler, body: bytes) -> tuple[int, Any]:
        form = {k: v[-1] for k, v in parse_qs(body.decode()).items()}
        if form.get("grant_type") in ("authorization_code", "refresh_token"):
            return self._user_grant(form)
        client_id, secret = form.get("client_id"), form.get("client_secret")
        auth = handler.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            try:
                client_id, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
            except ValueError:
                return 400, {"error": "invalid_client", "error_description": "Invalid client"}
        if form.get("grant_type") != "client_credentials":
            return 400, {"error": "unsupported_grant_type", "error_description": "grant_type parameter is missing"}
        if client_id != self.client_id:
            return 401, {"error": "invalid_client", "error_description": "Invalid client"}
        if secret != self.client_secret:
            return 401, {"error": "invalid_client", "error_description": "Invalid client secret"}
        token = "fake-token-" + "".join(self._rng.choice(BASE62) for _ in range(24))
        with self._lock:
            self._tokens.add(token)
            self.tokens_issued += 1
        return 200, {"access_token": token, "token_type": "Bearer", "expires_in": 3600}

    def _api(self, handler: BaseHTTPRequestHandler, path: str, query: Mapping[str, str]) -> tuple[int, Any]:
        auth = handler.headers.get("Authorization", "")
        if not auth.startswith("Bearer "):
            return 401, _error(401, "No token provided")
        token = auth[len("Bearer ") :]
        with self._lock:
            user = self.users.get(self._user_tokens.get(token, ""))
            if token not in self._tokens and user is None:
                expired = token.startswith("fake-user")
                return 401, _error(401, "The access token expired" if expired else "Invalid access token")
            if user is not None and not user.registered:
                return 403, _error(403, NOT_REGISTERED)
            return self._api_locked(path.split("/"), query, user)

    def _me(self, user: FakeUser | None, rest: list[str], query: Mapping[str, str]) -> tuple[int, Any]:
        if user is None:
            return 401, _error(401, "This request requires user authentication.")
        if not rest:
            uri = f"spotify:user:{user.id}"
            return 200, {"id": user.id, "display_name": user.display_name, "type": "user", "uri": uri}
        if rest == ["tracks"]:
            entries = [
                {"added_at": "2026-01-01T00:00:00Z", "track": self._public(self._catalog.tracks[t])} for t in user.liked
            ]
            return self._page("me/tracks", entries, query)
        if rest == ["playlists"]:
            items = []
            for playlist_id in user.library:
                playlist = self._catalog.playlists[playlist_id]
                total = {"href": f"{self.api_url}playlists/{playlist_id}/items", "total": len(playlist.entries)}
                items.append({**self._public(playlist.meta), "items": total})
            return self._page("me/playlists", items, query)
        return 404, _error(404, "Service not found")

    def _api_locked(self, parts: list[str], query: Mapping[str, str], user: FakeUser | None = None) -> tuple[int, Any]:
        catalog = self._catalog
        if parts and parts[0] == "me":
            return self._me(user, parts[1:], query)
        if parts == ["search"]:
            return self._search(query)
        if len(parts) < 2 or parts[0] not in ("tracks", "albums", "playlists"):
            return 404, _error(404, "Service not found")
        kind, spotify_id, rest = parts[0], parts[1], parts[2:]
        if not SPOTIFY_ID.match(spotify_id):
            return 400, _error(400, "Invalid base62 id")
        if kind == "tracks" and not rest:
            track = catalog.tracks.get(spotify_id)
            return (200, self._public(track)) if track else (404, _error(404, "Resource not found"))
        if kind == "albums":
            album = catalog.albums.get(spotify_id)
            if album is None:
                return 404, _error(404, "Resource not found")
            items = self._public(catalog.album_items[spotify_id])
            if rest == ["tracks"]:
                return self._page(f"albums/{spotify_id}/tracks", items, query)
            if not rest:
                _, first = self._page(f"albums/{spotify_id}/tracks", items, {"limit": str(MAX_PAGE)})
                return 200, {**self._public(album), "tracks": first}
        if kind == "playlists":
            playlist = catalog.playlists.get(spotify_id)
            if spotify_id.startswith(SPOTIFY_OWNED_PREFIX) or playlist is None:
                return 404, _error(404, "Resource not found")
            # The app's token reads the items of `owned` playlists; a person's token those they own or
            # collaborate on (a follower gets 403, as in 2026).
            if user is None:
                readable = playlist.owned
            else:
                readable = user.id == playlist.user_owner or user.id in playlist.collaborators
            if not playlist.public and not readable:
                return 404, _error(404, "Resource not found")
            entries = [self._render_entry(e) for e in playlist.entries]
            if rest == ["items"]:
                if not readable:
                    return 403, _error(403, "Forbidden")
                return self._page(f"playlists/{spotify_id}/items", entries, query)
            if rest == ["tracks"]:  # removed for Development-Mode apps
                return 403, _error(403, "Forbidden")
            if not rest:
                items: dict[str, Any] = {"href": f"{self.api_url}playlists/{spotify_id}/items", "total": len(entries)}
                if readable:
                    _, items = self._page(f"playlists/{spotify_id}/items", entries, {"limit": str(MAX_PAGE)})
                return 200, {**self._public(playlist.meta), "items": items}
        return 404, _error(404, "Service not found")

    def _search(self, query: Mapping[str, str]) -> tuple[int, Any]:
        """`GET /search?q=&type=track&limit=&offset=`: tracks whose title, artists and album hold every word of
        `q` (field filters like `artist:` count as plain words), in catalog order; pages of at most 10."""
        words = re.findall(r"\w+", re.sub(r"\b(artist|track|album|year|isrc|genre):", " ", query.get("q", "")).lower())
        if not query.get("q", "").strip():
            return 400, _error(400, "No search query")
        types = query.get("type", "").split(",")
        if "track" not in types:
            return 400, _error(400, "Bad search type field" if query.get("type") else "Missing parameter type")
        try:
            limit, offset = int(query.get("limit", 10)), int(query.get("offset", 0))
        except ValueError:
            return 400, _error(400, "Invalid limit")
        if not 0 <= limit <= MAX_SEARCH_PAGE:
            return 400, _error(400, "Invalid limit")
        if not 0 <= offset <= MAX_SEARCH_OFFSET:
            return 400, _error(400, "Invalid offset")
        found = []
        for track in self._catalog.tracks.values():
            album = track.get("album") or {}
            names = [track.get("name") or "", album.get("name") or ""]
            names += [a.get("name") or "" for a in track.get("artists") or []]
            text = set(re.findall(r"\w+", " ".join(names).lower()))
            if words and all(word in text for word in words):
                found.append(self._public(track))
        if limit == 0:
            return 200, {
                "tracks": {"href": "", "items": [], "limit": 0, "next": None, "offset": offset, "total": len(found)}
            }
        q = query.get("q", "")
        status, page = self._page("search", found, {"limit": str(limit), "offset": str(offset)})
        if status != 200:
            return status, page
        for name in ("href", "next", "previous"):  # Spotify's page links repeat the query
            if page[name]:
                page[name] = page[name].replace("search?", f"search?q={quote(q)}&type=track&", 1)
        return 200, {"tracks": page}

    # --- embed pages ------------------------------------------------------------------------------
    def _embed_page(self, path: str) -> str:
        kind, _, spotify_id = path.partition("/")
        with self._lock:
            entity = self._embed_entity(kind, spotify_id) if SPOTIFY_ID.match(spotify_id) else None
        if entity is None:
            status = 404 if SPOTIFY_ID.match(spotify_id) and spotify_id[0] in "01234567" else 500
            page_props: dict[str, Any] = {
                "status": status,
                "title": "Page not found",
                "description": "",
                "links": [],
                "rtl": False,
            }
        else:
            page_props = {
                "state": {
                    "data": {"entity": entity, "embeded_entity_uri": f"spotify:{kind}:{spotify_id}"},
                    "settings": {
                        "rtl": False,
                        "session": {"accessToken": ANONYMOUS_TOKEN, "isAnonymous": True},
                        "entityContext": kind,
                    },
                    "machineState": {"initialized": False},
                },
                "config": {"correlationId": "fake", "clientId": "fake-embed", "restrictionId": ""},
            }
        data = {
            "props": {"pageProps": page_props, "__N_SSP": True},
            "page": "/[type]/[id]",
            "query": {"type": kind, "id": spotify_id},
            "buildId": "fake-build",
            "isFallback": False,
            "gssp": True,
            "scriptLoader": [],
        }
        payload = json.dumps(data, ensure_ascii=False).replace("<", "\\u003c")  # as Next.js writes it
        return (
            '<!DOCTYPE html><html lang="en"><head><meta charSet="utf-8"/><title>Spotify Embed</title></head>'
            '<body><div id="__next"></div>'
            f'<script id="__NEXT_DATA__" type="application/json">{payload}</script>'
            "</body></html>"
        )

    @staticmethod
    def _visual(images: Any) -> dict[str, Any]:
        out = []
        for image in images or []:
            size = image.get("width") or image.get("height") or 640
            out.append({"url": image["url"], "maxHeight": size, "maxWidth": size})
        return {"image": out}

    @staticmethod
    def _subtitle(artists: Any) -> str:
        return ",\u00a0".join(a.get("name") or "" for a in artists or [])

    def _list_item(self, track: Mapping[str, Any]) -> dict[str, Any]:
        if track.get("type") == "episode":
            return {
                "uri": track["uri"],
                "uid": hashlib.sha1(track["uri"].encode()).hexdigest()[:20],
                "title": track.get("name") or "",
                "subtitle": (track.get("show") or {}).get("name", ""),
                "isExplicit": bool(track.get("explicit")),
                "duration": track.get("duration_ms") or 0,
                "isPlayable": True,
                "playabilityReason": "PLAYABLE",
                "entityType": "episode",
            }
        playable = bool(track.get("name"))
        return {
            "uri": track.get("uri") or "",
            "uid": hashlib.sha1(str(track.get("uri")).encode()).hexdigest()[:20],
            "title": track.get("name") or "",
            "subtitle": self._subtitle(track.get("artists")),
            "isExplicit": bool(track.get("explicit")),
            "isNineteenPlus": False,
            "duration": track.get("duration_ms") or 0,
            "isPlayable": playable,
            "playabilityReason": "PLAYABLE" if playable else "UNAVAILABLE",
            "audioPreview": {"url": f"{self.base_url}/preview/{track.get('id')}"},
            "entityType": "track",
        }

    def _embed_entity(self, kind: str, spotify_id: str) -> dict[str, Any] | None:
        catalog = self._catalog
        if kind == "track" and spotify_id in catalog.tracks:
            track = catalog.tracks[spotify_id]
            album = track.get("album") or {}
            return {
                "type": "track",
                "name": track.get("name"),
                "uri": f"spotify:track:{spotify_id}",
                "id": spotify_id,
                "title": track.get("name"),
                "subtitle": self._subtitle(track.get("artists")),
                "artists": [{"name": a.get("name"), "uri": a.get("uri")} for a in track.get("artists") or []],
                "releaseDate": {"isoString": _date_iso(album.get("release_date"))}
                if album.get("release_date")
                else None,
                "duration": track.get("duration_ms") or 0,
                "isExplicit": bool(track.get("explicit")),
                "isPlayable": True,
                "playabilityReason": "PLAYABLE",
                "audioPreview": {"url": f"{self.base_url}/preview/{spotify_id}"},
                "visualIdentity": self._visual(album.get("images")),
                "hasVideo": False,
                "relatedEntityUri": album.get("uri"),
            }
        if kind == "album" and spotify_id in catalog.albums:
            album = catalog.albums[spotify_id]
            return {
                "type": "album",
                "name": album.get("name"),
                "uri": f"spotify:album:{spotify_id}",
                "id": spotify_id,
                "title": album.get("name"),
                "subtitle": self._subtitle(album.get("artists")),
                "releaseDate": {"isoString": _date_iso(album.get("release_date"))},
                "visualIdentity": self._visual(album.get("images")),
                "trackList": [self._list_item(t) for t in catalog.album_items[spotify_id][:EMBED_LIMIT]],
                "hasVideo": False,
            }
        if kind == "playlist" and spotify_id in catalog.playlists:
            playlist = catalog.playlists[spotify_id]
            if not playlist.public:
                return None
            owner = (playlist.meta.get("owner") or {}).get("display_name") or ""
            tracks = [e["track"] for e in playlist.entries if e.get("track") and not e.get("is_local")]
            return {
                "type": "playlist",
                "name": playlist.meta.get("name"),
                "uri": f"spotify:playlist:{spotify_id}",
                "id": spotify_id,
                "title": playlist.meta.get("name"),
                "subtitle": owner,
                "authors": [{"name": owner}],
                "releaseDate": None,
                "visualIdentity": self._visual(playlist.meta.get("images")),
                "trackList": [self._list_item(t) for t in tracks[:EMBED_LIMIT]],
                "hasVideo": False,
                "relatedEntityUri": None,
            }
        return None

    def _image(self, key: str) -> bytes:
        match = re.search(r"-(\d{2,4})$", key)
        size = min(int(match.group(1)), 1000) if match else 640
        with self._lock:
            if (key, size) not in self._images:
                self._images[(key, size)] = _jpeg(key, size)
            return self._images[(key, size)]
