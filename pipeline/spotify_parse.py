"""Spotify Web API JSON → our models (pure functions, no I/O).

Accepts the pre-2026 shapes and the 2026 Development-Mode shapes alike: playlist entries carry the
track under `item` (new) and/or `track` (deprecated), and `popularity`, `available_markets`,
`linked_from`, `label` or `external_ids.isrc` may be missing. Items that cannot be fetched (removed,
local files, podcast episodes) become `SkippedItem`s with a reason, never exceptions.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any, Final, Literal

from pipeline.errors import Unavailable
from pipeline.links import is_spotify_id
from pipeline.models import Collection, PlaylistSummary, SkippedItem, Track

Json = Mapping[str, Any]

REMOVED = "no longer available on Spotify"
UNAVAILABLE = "unavailable on Spotify"
LOCAL_FILE = "a local file, not on Spotify"
EPISODE = "a podcast episode, not a song"


def _side(image: Mapping[str, Any], *keys: str) -> int:
    """The first of `keys` that holds a positive whole number of pixels, else 0."""
    for key in keys:
        value = image.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return 0


def largest_image(images: object) -> str | None:
    """URL of the image with the most pixels, the first of equals; None when no entry has a URL.

    Spotify lists sizes in no guaranteed order and may omit them: the API says `width`/`height`, the embed page
    `maxWidth`/`maxHeight`. A cover with one side known counts as square (covers are); one with none, as 0×0,
    so it is taken only when nothing better is offered. Anything that is not a positive number is no size.
    """
    if not isinstance(images, Sequence) or isinstance(images, str):
        return None
    best_url, best_pixels = None, -1
    for image in images:
        if not isinstance(image, Mapping) or not isinstance(image.get("url"), str) or not image["url"]:
            continue
        width, height = _side(image, "width", "maxWidth"), _side(image, "height", "maxHeight")
        pixels = (width or height) * (height or width)
        if pixels > best_pixels:
            best_url, best_pixels = image["url"], pixels
    return best_url


_DATE: Final = re.compile(r"([0-9]{4})(?:-([0-9]{2})(?:-([0-9]{2}))?)?")


def release_date(value: object) -> str | None:
    """Spotify's "YYYY", "YYYY-MM" or "YYYY-MM-DD" when it names a real year, month or day, else None.

    Unavailable items carry a meaningless "0000" (or "0000-00-00"); the result goes into ID3 TDRC as is,
    so nothing else may pass.
    """
    if not isinstance(value, str):
        return None
    text = value.strip()
    match = _DATE.fullmatch(text)
    if match is None:
        return None
    year, month, day = (int(part) if part is not None else 1 for part in match.groups())
    try:
        date(year, month, day)  # year 0 does not exist: a ValueError like month 13 or 30 February
    except ValueError:
        return None
    return text


def artist_names(artists: object) -> list[str]:
    if not isinstance(artists, Sequence) or isinstance(artists, str):
        return []
    return [a["name"] for a in artists if isinstance(a, Mapping) and isinstance(a.get("name"), str) and a["name"]]


def _is_episode(data: Json) -> bool:
    uri = data.get("uri") or ""
    return (
        data.get("type") == "episode"
        or (data.get("episode") is True and data.get("track") is not True)
        or (isinstance(uri, str) and uri.startswith("spotify:episode:"))
    )


def _is_local(data: Json) -> bool:
    uri = data.get("uri") or ""
    return bool(data.get("is_local")) or (isinstance(uri, str) and uri.startswith("spotify:local:"))


def _label(data: Json | None, position: int) -> str:
    name = data.get("name") if data else None
    return name if isinstance(name, str) and name else f"item {position}"


def track_or_skip(
    data: object, position: int, *, album: Json | None = None, disc_total: int | None = None
) -> Track | SkippedItem:
    """A full or simplified track object; `album` supplies what simplified (album-page) tracks lack.

    `position` is 1-based and only names items that have no title of their own.
    """
    if not isinstance(data, Mapping):
        return SkippedItem(title=f"item {position}", reason=REMOVED)
    if _is_episode(data):
        return SkippedItem(title=_label(data, position), reason=EPISODE)
    if _is_local(data):
        return SkippedItem(title=_label(data, position), reason=LOCAL_FILE)
    spotify_id, title = data.get("id"), data.get("name")
    if not is_spotify_id(spotify_id) or not isinstance(title, str) or not title.strip():
        return SkippedItem(title=_label(data, position), reason=UNAVAILABLE)

    album = data.get("album") if isinstance(data.get("album"), Mapping) else album
    album = album or {}
    external_ids = data.get("external_ids") if isinstance(data.get("external_ids"), Mapping) else {}
    isrc = external_ids.get("isrc")
    return Track(
        spotify_id=spotify_id,
        title=title,
        artists=artist_names(data.get("artists")),
        album=album.get("name") or "",
        duration_ms=int(data.get("duration_ms") or 0),
        isrc=isrc.strip().upper() if isinstance(isrc, str) and isrc.strip() else None,
        album_artists=artist_names(album.get("artists")),
        track_number=data.get("track_number") or None,
        track_total=album.get("total_tracks") or None,
        disc_number=data.get("disc_number") or None,
        disc_total=disc_total,
        release_date=release_date(album.get("release_date")),
        explicit=bool(data.get("explicit")),
        cover_url=largest_image(album.get("images")),
    )


def parse_track(data: object) -> Track:
    """`GET /tracks/{id}`; an unplayable shell (no name) is `Unavailable`."""
    result = track_or_skip(data, 1)
    if isinstance(result, SkippedItem):
        raise Unavailable(f"this track is {result.reason}")
    return result


def search_tracks(data: object) -> list[Track]:
    """`GET /search?type=track`: the playable tracks of `tracks.items`, in Spotify's order."""
    page = data.get("tracks") if isinstance(data, Mapping) else None
    items = page.get("items") if isinstance(page, Mapping) else None
    if not isinstance(items, list):
        return []
    found = (track_or_skip(item, n) for n, item in enumerate(items, 1))
    return [track for track in found if isinstance(track, Track)]


def entry_track(entry: object) -> object:
    """The track of a playlist entry: `item` (2026) or `track` (before), whichever is present."""
    if not isinstance(entry, Mapping):
        return None
    item = entry.get("item")
    return item if item is not None else entry.get("track")


def playlist_entry(entry: object, position: int) -> Track | SkippedItem:
    data = entry_track(entry)
    if isinstance(entry, Mapping) and entry.get("is_local") and isinstance(data, Mapping):
        return SkippedItem(title=_label(data, position), reason=LOCAL_FILE)
    return track_or_skip(data, position)


def _split(results: Sequence[Track | SkippedItem]) -> tuple[list[Track], list[SkippedItem]]:
    tracks = [r for r in results if isinstance(r, Track)]
    skipped = [r for r in results if isinstance(r, SkippedItem)]
    return tracks, skipped


def album_pages(album: Json) -> list[Json]:
    """Track objects of the first page embedded in `GET /albums/{id}` (more may follow)."""
    page = album.get("tracks")
    items = page.get("items") if isinstance(page, Mapping) else None
    return list(items) if isinstance(items, list) else []


def parse_album(album: Json, items: Sequence[object]) -> Collection:
    """`GET /albums/{id}` plus every item of `/albums/{id}/tracks`, in order."""
    discs = [i.get("disc_number") for i in items if isinstance(i, Mapping) and isinstance(i.get("disc_number"), int)]
    disc_total = max(discs) if discs else None
    results = [track_or_skip(item, n, album=album, disc_total=disc_total) for n, item in enumerate(items, 1)]
    tracks, skipped = _split(results)
    artists = artist_names(album.get("artists"))
    return Collection(
        kind="album",
        spotify_id=str(album.get("id") or ""),
        name=album.get("name") or "",
        owner=", ".join(artists),
        tracks=tracks,
        skipped=skipped,
        source="api",
        cover_url=largest_image(album.get("images")),
    )


def playlist_owner(playlist: Json) -> str:
    owner = playlist.get("owner")
    if not isinstance(owner, Mapping):
        return ""
    return owner.get("display_name") or owner.get("id") or ""


def parse_playlist(playlist: Json, entries: Sequence[object]) -> Collection:
    """`GET /playlists/{id}` metadata plus every entry of `/playlists/{id}/items` (or the old `/tracks`)."""
    tracks, skipped = _split([playlist_entry(entry, n) for n, entry in enumerate(entries, 1)])
    return Collection(
        kind="playlist",
        spotify_id=str(playlist.get("id") or ""),
        name=playlist.get("name") or "",
        owner=playlist_owner(playlist),
        tracks=tracks,
        skipped=skipped,
        source="api",
        cover_url=largest_image(playlist.get("images")),
    )


LIKED_SONGS = "Liked Songs"


def parse_saved_tracks(entries: Sequence[object], owner: str) -> Collection:
    """Every entry of `GET /me/tracks` (`{"added_at", "track"}`, newest first as Spotify orders them)."""
    tracks, skipped = _split([playlist_entry(entry, n) for n, entry in enumerate(entries, 1)])
    return Collection(
        kind="playlist", spotify_id="", name=LIKED_SONGS, owner=owner, tracks=tracks, skipped=skipped, source="api"
    )


def parse_playlist_summary(item: object) -> PlaylistSummary | None:
    """An item of `GET /me/playlists`; None when it has no usable id (it could not be opened anyway).

    The item count sits under `items` since 2026 (`tracks` before)."""
    if not isinstance(item, Mapping) or not is_spotify_id(item.get("id")):
        return None
    count = item.get("items") if isinstance(item.get("items"), Mapping) else item.get("tracks")
    total = count.get("total") if isinstance(count, Mapping) else None
    return PlaylistSummary(
        id=item["id"],
        name=str(item.get("name") or "Untitled"),
        owner=playlist_owner(item),
        total=total if isinstance(total, int) and not isinstance(total, bool) else None,
    )


def single(track: Track, *, source: Literal["api", "embed"] = "api") -> Collection:
    """A track link as a one-track collection."""
    return Collection(
        kind="track",
        spotify_id=track.spotify_id,
        name=track.title,
        owner=", ".join(track.artists),
        tracks=[track],
        source=source,
        cover_url=track.cover_url,
    )
