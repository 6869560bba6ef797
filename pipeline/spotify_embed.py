"""Spotify's public embed page (`open.spotify.com/embed/<kind>/<id>`): the fallback when the Web API
refuses a playlist, or when no credentials are configured.

The page's `__NEXT_DATA__` JSON holds the entity at `props.pageProps.state.data.entity`: name, cover
and, for albums and playlists, a `trackList` of at most 100 items without album, ISRC or release
date (`SpotifyMetadata.enrich` fills those in when credentials exist). An unknown or private id
answers HTTP 200 without `state`, so the parser branches on `state`, never on the status. The
anonymous token inside the page is never used.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

import requests

from pipeline.errors import NotFound, PermanentError
from pipeline.http import request_error, status_error
from pipeline.links import is_spotify_id
from pipeline.models import Collection, LinkKind, SkippedItem, Track
from pipeline.spotify_api import SERVICE
from pipeline.spotify_parse import EPISODE, LOCAL_FILE, UNAVAILABLE, artist_names, largest_image, release_date

EMBED_LIMIT = 100  # the page lists at most this many items, with no paging
ARTIST_SEPARATOR = ",\u00a0"  # Spotify joins artists with comma + NBSP; ", " belongs to names ("Tyler, The Creator")
FORMAT_CHANGED = "Spotify's page format changed; this bot needs an update (or set SPOTIFY_CLIENT_ID/SECRET)"
# Next.js writes the script tag itself; `<` inside the JSON is escaped, so the first `</script>` ends it.
_NEXT_DATA = re.compile(
    r"<script\b[^>]*\bid\s*=\s*[\"']__NEXT_DATA__[\"'][^>]*>(.*?)</script\s*>", re.DOTALL | re.IGNORECASE
)
_HEADERS = {
    "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/140.0 Safari/537.36",
    "Accept": "text/html,application/xhtml+xml",
    "Accept-Language": "en",
}


def split_artists(subtitle: object) -> list[str]:
    if not isinstance(subtitle, str):
        return []
    return [part.strip() for part in subtitle.split(ARTIST_SEPARATOR) if part.strip()]


def _plain(text: object) -> str:
    return text.replace("\u00a0", " ").strip() if isinstance(text, str) else ""


def _images(value: object) -> list[object]:
    return list(value) if isinstance(value, Sequence) and not isinstance(value, str) else []


def _largest(entity: Mapping[str, Any]) -> str | None:
    """Covers come as `visualIdentity.image` (maxWidth/maxHeight), `coverArt.sources` or `images` (width/height):
    the largest of them all."""
    visual = entity.get("visualIdentity")
    cover = entity.get("coverArt")
    return largest_image(
        _images(visual.get("image") if isinstance(visual, Mapping) else None)
        + _images(cover.get("sources") if isinstance(cover, Mapping) else None)
        + _images(entity.get("images"))
    )


def _uri_id(uri: object, kind: str) -> str | None:
    """The id in `spotify:<kind>:<id>`, if it is a well-formed one (it becomes part of an API URL)."""
    prefix = f"spotify:{kind}:"
    found = uri.removeprefix(prefix) if isinstance(uri, str) and uri.startswith(prefix) else None
    return found if is_spotify_id(found) else None


def _date(entity: Mapping[str, Any]) -> str | None:
    value = entity.get("releaseDate")
    iso = value.get("isoString") if isinstance(value, Mapping) else None
    return release_date(iso[:10]) if isinstance(iso, str) else None


def next_data(html: str) -> dict[str, Any]:
    match = _NEXT_DATA.search(html)
    if not match:
        raise PermanentError(FORMAT_CHANGED, detail="no __NEXT_DATA__ script in the embed page")
    try:
        data = json.loads(match.group(1))
    except ValueError as error:
        raise PermanentError(FORMAT_CHANGED, detail=f"__NEXT_DATA__ is not JSON: {error}") from None
    if not isinstance(data, dict):
        raise PermanentError(FORMAT_CHANGED, detail="__NEXT_DATA__ is not an object")
    return data


def page_entity(data: Mapping[str, Any]) -> Mapping[str, Any]:
    """The entity, `NotFound` for the unknown/private-id page, `PermanentError` for anything else."""
    props = data.get("props")
    page = props.get("pageProps") if isinstance(props, Mapping) else None
    if not isinstance(page, Mapping):
        raise PermanentError(FORMAT_CHANGED, detail="no props.pageProps")
    state = page.get("state")
    if state is None:
        if "status" in page:
            raise NotFound(detail=f"embed page status {page.get('status')}")
        raise PermanentError(FORMAT_CHANGED, detail="pageProps has neither state nor status")
    data_ = state.get("data") if isinstance(state, Mapping) else None
    entity = data_.get("entity") if isinstance(data_, Mapping) else None
    if not isinstance(entity, Mapping):
        raise PermanentError(FORMAT_CHANGED, detail="no state.data.entity")
    return entity


def entity_track(entity: Mapping[str, Any], spotify_id: str) -> Track:
    """A track page's entity. It names no album; its artists come as a list, else in `subtitle`."""
    title = entity.get("name") or entity.get("title")
    if not isinstance(title, str) or not title.strip():
        raise PermanentError(FORMAT_CHANGED, detail="track entity without name")
    names = artist_names(entity.get("artists"))
    return Track(
        spotify_id=_uri_id(entity.get("uri"), "track") or spotify_id,
        title=title,
        artists=names or split_artists(entity.get("subtitle")),
        duration_ms=int(entity.get("duration") or 0),
        explicit=bool(entity.get("isExplicit")),
        release_date=_date(entity),
        cover_url=_largest(entity),
    )


def list_item(
    item: object, position: int, *, album: Mapping[str, Any] | None, total: int | None
) -> Track | SkippedItem:
    """One `trackList` entry. On an album page, album name, artists, date and cover come from the page."""
    if not isinstance(item, Mapping):
        return SkippedItem(title=f"item {position}", reason=UNAVAILABLE)
    title = item.get("title") if isinstance(item.get("title"), str) and item.get("title") else f"item {position}"
    uri = item.get("uri")
    if item.get("entityType") == "episode" or (isinstance(uri, str) and uri.startswith("spotify:episode:")):
        return SkippedItem(title=title, reason=EPISODE)
    if isinstance(uri, str) and uri.startswith("spotify:local:"):
        return SkippedItem(title=title, reason=LOCAL_FILE)
    track_id = _uri_id(uri, "track")
    if track_id is None or not item.get("title"):
        return SkippedItem(title=title, reason=UNAVAILABLE)
    fields: dict[str, Any] = {}
    if album is not None:
        fields = {
            "album": str(album.get("name") or album.get("title") or "").strip(),
            "album_artists": split_artists(album.get("subtitle")),
            "release_date": _date(album),
            "cover_url": _largest(album),
            # The page lists an album in order; without disc numbers this is the continuous numbering.
            "track_number": position,
            "track_total": total,
        }
    return Track(
        spotify_id=track_id,
        title=item["title"],
        artists=split_artists(item.get("subtitle")),
        duration_ms=int(item.get("duration") or 0),
        explicit=bool(item.get("isExplicit")),
        **fields,
    )


def parse_embed_page(html: str, kind: LinkKind, spotify_id: str) -> Collection:
    """The embed page's HTML → a Collection (`source="embed"`)."""
    entity = page_entity(next_data(html))
    name = entity.get("name") or entity.get("title")
    name = name.strip() if isinstance(name, str) else ""
    if kind == "track":
        track = entity_track(entity, spotify_id)
        return Collection(
            kind="track",
            spotify_id=spotify_id,
            name=track.title,
            owner=", ".join(track.artists),
            tracks=[track],
            source="embed",
            cover_url=track.cover_url,
        )
    items = entity.get("trackList")
    if not isinstance(items, list):
        raise PermanentError(FORMAT_CHANGED, detail=f"{kind} entity without trackList")
    truncated = len(items) >= EMBED_LIMIT
    album = entity if kind == "album" else None
    total = None if truncated else len(items)
    results = [list_item(item, n, album=album, total=total) for n, item in enumerate(items, 1)]
    if kind == "album":
        owner = ", ".join(split_artists(entity.get("subtitle")))
    else:
        owner = ", ".join(artist_names(entity.get("authors"))) or _plain(entity.get("subtitle"))
    return Collection(
        kind=kind,
        spotify_id=spotify_id,
        name=name,
        owner=owner,
        tracks=[r for r in results if isinstance(r, Track)],
        skipped=[r for r in results if isinstance(r, SkippedItem)],
        truncated=truncated,
        source="embed",
        cover_url=_largest(entity),
    )


def fetch_embed(
    session: requests.Session, base_url: str, kind: LinkKind, spotify_id: str, *, timeout: float
) -> Collection:
    """GET `<base_url><kind>/<id>` and parse it. `base_url` is SPOTIFY_EMBED_URL (ends with "/")."""
    url = f"{base_url}{kind}/{spotify_id}"
    try:
        response = session.get(url, headers=_HEADERS, timeout=timeout)
    except requests.RequestException as error:
        raise request_error(error, service=SERVICE, detail=f"embed {kind}: {type(error).__name__}") from None
    status = response.status_code
    detail = f"embed {kind} {spotify_id}: HTTP {status}"
    if passing := status_error(status, response.headers, service=SERVICE, detail=detail):
        raise passing
    if status in (400, 404, 410):
        raise NotFound(detail=detail)
    if status != 200:
        raise PermanentError(f"Spotify refused its public page (HTTP {status})", detail=detail)
    return parse_embed_page(response.text, kind, spotify_id)
