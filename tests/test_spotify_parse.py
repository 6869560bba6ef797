"""Pure parsing: recorded Web API JSON (old and 2026 shapes) and embed pages → our models."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from pipeline.errors import NotFound, PermanentError, Unavailable
from pipeline.models import SkippedItem, Track
from pipeline.spotify_embed import parse_embed_page, split_artists
from pipeline.spotify_parse import (
    EPISODE,
    LOCAL_FILE,
    REMOVED,
    UNAVAILABLE,
    album_pages,
    largest_image,
    parse_album,
    parse_playlist,
    parse_track,
    playlist_entry,
    release_date,
    track_or_skip,
)
from tests.fakes.spotify_server import FakeSpotify, strip_removed_fields

DATA = Path(__file__).parent / "data" / "spotify"
NBSP = "\u00a0"


def load(name: str) -> Any:
    return json.loads((DATA / f"spotify_{name}.json").read_text(encoding="utf-8"))


def to_2026(entries: list[dict[str, Any]], *, keep_track: bool = False) -> list[dict[str, Any]]:
    """Playlist entries as Development-Mode apps get them since 2026: `item`, fewer fields."""
    out = []
    for entry in strip_removed_fields(entries):
        entry["item"] = entry["track"] if keep_track else entry.pop("track")
        out.append(entry)
    return out


# --- Web API JSON ----------------------------------------------------------------------------------
def test_track_has_every_tag_field() -> None:
    track = parse_track(load("track_02WuyBR56QN3B6ZC0BeC3f"))
    assert track == Track(
        spotify_id="02WuyBR56QN3B6ZC0BeC3f",
        title="מיליון דולר",
        artists=["Noa Kirel", "שחר סאול"],
        album="מיליון דולר",
        duration_ms=173400,
        isrc="IL4432001535",
        album_artists=["Noa Kirel"],
        track_number=1,
        track_total=1,
        disc_number=1,
        disc_total=None,  # unknown from a lone track
        release_date="2020-06-09",
        explicit=False,
        cover_url="https://i.scdn.co/image/ab67616d0000b2733eeaa6ec8758e3dcc1e51404",
    )


def test_track_without_isrc_or_external_ids() -> None:
    data = load("track_02WuyBR56QN3B6ZC0BeC3f")
    del data["external_ids"]["isrc"]
    assert parse_track(data).isrc is None
    del data["external_ids"]
    assert parse_track(data).isrc is None


def test_track_in_2026_shape_without_removed_fields() -> None:
    data = load("track_02WuyBR56QN3B6ZC0BeC3f")
    assert parse_track(strip_removed_fields(data)) == parse_track(data)


def test_largest_image_whatever_the_order() -> None:
    images = [
        {"url": "small", "width": 64, "height": 64},
        {"url": "big", "width": 640, "height": 640},
        {"url": "mid", "width": 300, "height": 300},
    ]
    assert largest_image(images) == "big"
    assert largest_image([{"url": "only", "width": None, "height": None}]) == "only"
    assert largest_image([]) is None
    assert largest_image(None) is None


@pytest.mark.parametrize(
    ("images", "expected"),
    [
        # The embed page's maxWidth/maxHeight count like the API's width/height.
        ([{"url": "api", "width": 300, "height": 300}, {"url": "page", "maxWidth": 640, "maxHeight": 640}], "page"),
        # Area, not width: a wide banner loses to a bigger square cover.
        ([{"url": "wide", "width": 700, "height": 100}, {"url": "square", "width": 640, "height": 640}], "square"),
        # One side known: a square of it (covers are square), whichever side it is.
        ([{"url": "h", "maxHeight": 640}, {"url": "w", "width": 300}], "h"),
        # A size-less entry is taken only when nothing has a size, and equals keep the first.
        ([{"url": "none"}, {"url": "sized", "width": 64}], "sized"),
        ([{"url": "first", "width": 64}, {"url": "second", "width": 64}], "first"),
        # What is not a positive whole number is no size (and never an error).
        ([{"url": "text", "width": "6400"}, {"url": "real", "width": 64}], "real"),
        ([{"url": "flag", "width": True}, {"url": "negative", "width": -5}, {"url": "real", "width": 1}], "real"),
        # Entries without a usable URL are skipped.
        ([{"url": "", "width": 999}, {"url": None, "width": 999}, {"width": 999}, "x", {"url": "ok"}], "ok"),
        ("not a list", None),
    ],
)
def test_largest_image_rules(images: object, expected: str | None) -> None:
    assert largest_image(images) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1987", "1987"),
        ("1987-11", "1987-11"),
        ("1987-11-12", "1987-11-12"),
        (" 1987-11-12\n", "1987-11-12"),
        ("2024-02-29", "2024-02-29"),
        ("2023-02-29", None),  # no such day
        ("1987-13", None),
        ("1987-00", None),
        ("1987-11-00", None),
        ("0000", None),  # what Spotify gives unavailable items
        ("0000-00-00", None),
        ("87", None),
        ("1987-1-2", None),
        ("1987/11/12", None),
        ("1987-11-12T00:00:00Z", None),
        ("١٩٨٧", None),  # Arabic-Indic digits are no ISO date
        ("soon", None),
        ("", None),
        (None, None),
        (1987, None),
    ],
)
def test_release_date(value: object, expected: str | None) -> None:
    assert release_date(value) == expected


@pytest.mark.parametrize("bad_id", ["", "8" + "0" * 21, "0" * 21, "0" * 21 + "_", "../../v1/me", None, 42])
def test_a_track_without_a_well_formed_id_is_skipped(bad_id: object) -> None:
    data = {"id": bad_id, "name": "Song", "artists": [{"name": "A"}]}
    assert track_or_skip(data, 3) == SkippedItem(title="Song", reason=UNAVAILABLE)


def test_album_on_three_discs_knows_the_disc_total() -> None:
    album = load("album_4bZJWQhHKJckFLJuYdvyX2")
    collection = parse_album(album, album_pages(album))
    assert (collection.kind, collection.name, collection.owner) == ("album", "F*CK LOVE 3: OVER YOU", "The Kid LAROI")
    assert len(collection.tracks) == 29 and not collection.skipped
    assert {t.disc_total for t in collection.tracks} == {3}
    assert {t.track_total for t in collection.tracks} == {29}
    last = collection.tracks[-1]
    assert (last.title, last.disc_number, last.track_number) == ("SELFISH", 3, 15)
    assert last.album == "F*CK LOVE 3: OVER YOU" and last.release_date == "2021-07-23" and last.explicit
    assert collection.tracks[1].artists == ["The Kid LAROI", "Polo G", "Stunna Gambino"]
    assert collection.cover_url == last.cover_url == album["images"][0]["url"]


def test_album_tracks_page_gives_the_same_tracks_as_the_embedded_page() -> None:
    album = load("album_4MQnUDGXmHOvnsWCpzeqWT")
    page = load("album_4MQnUDGXmHOvnsWCpzeqWT_tracks_offset0")
    from_page = parse_album(album, page["items"])
    embedded = parse_album(album, album_pages(album))

    def without_ids(tracks: list[Track]) -> list[dict[str, Any]]:
        return [t.model_dump(exclude={"spotify_id", "spotify_url"}) for t in tracks]

    # Recorded on different days: Spotify relinked some track ids in between, nothing else changed.
    assert without_ids(from_page.tracks) == without_ids(embedded.tracks)
    assert len(from_page.tracks) == 16 and from_page.tracks[0].title == "Linked"
    assert from_page.owner == "Various Artists" and all(t.isrc is None for t in from_page.tracks)  # simplified tracks


def test_playlist_old_shape() -> None:
    playlist = load("playlist_78Lg6HmUqlTnmipvNxc536")
    collection = parse_playlist(playlist, playlist["tracks"]["items"])
    assert (collection.name, collection.owner) == ("NCS top 10", "Emilio Nicolas DG")
    assert [t.title for t in collection.tracks][:3] == ["Polaris", "Northern Lights", "Where We Started"]
    assert len(collection.tracks) == 11 and not collection.skipped
    first = collection.tracks[0]
    assert (first.album, first.isrc, first.artists, first.release_date) == (
        "Polaris",
        "GB2LD0902518",
        ["Blazars"],
        "2016-10-18",
    )
    assert collection.cover_url is not None and collection.cover_url.startswith("https://mosaic.scdn.co/640/")


@pytest.mark.parametrize("keep_track", [False, True], ids=["item-only", "item-and-track"])
def test_playlist_2026_shape_parses_like_the_old(keep_track: bool) -> None:
    playlist = load("playlist_78Lg6HmUqlTnmipvNxc536")
    old = parse_playlist(playlist, playlist["tracks"]["items"])
    meta = strip_removed_fields({k: v for k, v in playlist.items() if k != "tracks"})
    assert parse_playlist(meta, to_2026(playlist["tracks"]["items"], keep_track=keep_track)) == old


def test_unavailable_shell_is_skipped_with_a_reason() -> None:
    playlist = load("playlist_5LkNhFidYyyjRWwnkcMbQs")
    collection = parse_playlist(playlist, playlist["tracks"]["items"])
    assert collection.skipped == [SkippedItem(title="item 1", reason=UNAVAILABLE)]
    assert len(collection.tracks) == 9 and collection.tracks[0].title == "Cradles"
    with pytest.raises(Unavailable):
        parse_track(playlist["tracks"]["items"][0]["track"])


def test_null_local_and_episode_items_are_skipped_never_crash() -> None:
    playlist = load("playlist_78Lg6HmUqlTnmipvNxc536")
    good = playlist["tracks"]["items"][0]
    local = FakeSpotify.local_item("My Demo", "Me")
    episode = FakeSpotify.episode_item("Episode 12")
    old_episode = copy.deepcopy(good)
    old_episode["track"].update({"episode": True, "track": False})  # additional_types=track, pre-2026
    entries = [
        None,
        {"is_local": False, "track": None},
        {"is_local": False, "item": None},
        local,
        episode,
        {"is_local": False, "item": episode["track"]},
        old_episode,
        {"is_local": False, "item": None, "track": good["track"]},  # deprecated key still filled
        "garbage",
    ]
    results = [playlist_entry(entry, n) for n, entry in enumerate(entries, 1)]
    assert results[:7] == [
        SkippedItem(title="item 1", reason=REMOVED),
        SkippedItem(title="item 2", reason=REMOVED),
        SkippedItem(title="item 3", reason=REMOVED),
        SkippedItem(title="My Demo", reason=LOCAL_FILE),
        SkippedItem(title="Episode 12", reason=EPISODE),
        SkippedItem(title="Episode 12", reason=EPISODE),
        SkippedItem(title="Polaris", reason=EPISODE),
    ]
    assert isinstance(results[7], Track) and results[7].title == "Polaris"
    assert results[8] == SkippedItem(title="item 9", reason=REMOVED)


# --- embed pages -----------------------------------------------------------------------------------
def page(page_props: dict[str, Any], *, attrs: str = 'id="__NEXT_DATA__" type="application/json"') -> str:
    data = json.dumps({"props": {"pageProps": page_props}, "page": "/[type]/[id]"}).replace("<", "\\u003c")
    return f'<html><head></head><body><div id="__next"></div><script {attrs}>{data}</script></body></html>'


def entity_page(entity: dict[str, Any]) -> str:
    return page({"state": {"data": {"entity": entity}, "settings": {"session": {"accessToken": "anon"}}}})


def item(n: int, *, subtitle: str = "Artist", **extra: Any) -> dict[str, Any]:
    return {
        "uri": f"spotify:track:{n:022d}",
        "uid": f"u{n}",
        "title": f"Song {n}",
        "subtitle": subtitle,
        "duration": 200_000 + n,
        "isExplicit": n % 2 == 1,
        "isPlayable": True,
        "entityType": "track",
        **extra,
    }


def test_artists_split_only_on_comma_nbsp() -> None:
    assert split_artists(f"Tyler, The Creator,{NBSP}Kali Uchis") == ["Tyler, The Creator", "Kali Uchis"]
    assert split_artists("Earth, Wind & Fire") == ["Earth, Wind & Fire"]
    assert split_artists("") == [] and split_artists(None) == []


def test_embed_playlist() -> None:
    entity = {
        "type": "playlist",
        "name": "Road </script> Trip",
        "subtitle": "Ann",
        "authors": [{"name": "Ann"}],
        "visualIdentity": {"image": [{"url": "s", "maxWidth": 60}, {"url": "b", "maxWidth": 640}]},
        "trackList": [
            item(1, subtitle=f"A,{NBSP}B"),
            item(2, entityType="episode", uri="spotify:episode:0000000000000000000002"),
            item(3, uri="spotify:local:x:y:z:1"),
            item(4, title=""),
            item(5, isPlayable=False),  # unplayable on Spotify here: still worth a search
        ],
    }
    collection = parse_embed_page(entity_page(entity), "playlist", "1" * 22)
    assert (collection.name, collection.owner, collection.source) == ("Road </script> Trip", "Ann", "embed")
    assert collection.cover_url == "b" and not collection.truncated
    assert [t.title for t in collection.tracks] == ["Song 1", "Song 5"]
    first = collection.tracks[0]
    assert (first.spotify_id, first.artists, first.duration_ms, first.explicit) == (
        "0" * 21 + "1",
        ["A", "B"],
        200_001,
        True,
    )
    assert (first.album, first.isrc, first.track_number) == ("", None, None)
    assert [s.reason for s in collection.skipped] == [EPISODE, LOCAL_FILE, UNAVAILABLE]


def test_embed_shows_at_most_100_items_so_100_means_maybe_more() -> None:
    entity = {"type": "playlist", "name": "Big", "trackList": [item(n) for n in range(1, 101)]}
    assert parse_embed_page(entity_page(entity), "playlist", "1" * 22).truncated
    entity["trackList"].pop()
    assert not parse_embed_page(entity_page(entity), "playlist", "1" * 22).truncated


def test_embed_album_tracks_carry_the_album() -> None:
    entity = {
        "type": "album",
        "name": "Album",
        "subtitle": f"X,{NBSP}Y",
        "releaseDate": {"isoString": "2019-05-03T00:00:00Z"},
        "coverArt": {"sources": [{"url": "c300", "width": 300}, {"url": "c640", "width": 640}]},
        "trackList": [item(1), item(2)],
    }
    collection = parse_embed_page(entity_page(entity), "album", "2" * 22)
    assert collection.owner == "X, Y" and collection.cover_url == "c640"
    second = collection.tracks[1]
    assert (second.album, second.album_artists, second.release_date) == ("Album", ["X", "Y"], "2019-05-03")
    assert (second.track_number, second.track_total, second.cover_url, second.isrc) == (2, 2, "c640", None)


def test_embed_item_with_a_malformed_id_is_skipped() -> None:
    entity = {
        "type": "playlist",
        "name": "P",
        "trackList": [item(1, uri="spotify:track:" + "9" * 22), item(2, uri="spotify:track:abc"), item(3)],
    }
    collection = parse_embed_page(entity_page(entity), "playlist", "1" * 22)
    assert [t.title for t in collection.tracks] == ["Song 3"]
    assert [s.reason for s in collection.skipped] == [UNAVAILABLE, UNAVAILABLE]


def test_embed_single_track() -> None:
    entity = {
        "type": "track",
        "name": "Title",
        "uri": "spotify:track:" + "3" * 22,
        "subtitle": f"Tyler, The Creator,{NBSP}Kali Uchis",
        "artists": [{"name": "Tyler, The Creator", "uri": "spotify:artist:x"}, {"name": "Kali Uchis"}],
        "duration": 123_456,
        "isExplicit": True,
        "releaseDate": {"isoString": "2017-07-21T00:00:00Z"},
        "visualIdentity": {"image": [{"url": "big", "maxWidth": 640}, {"url": "small", "maxWidth": 64}]},
    }
    collection = parse_embed_page(
        page({"state": {"data": {"entity": entity}}}, attrs='type="application/json" id="__NEXT_DATA__"'),
        "track",
        "3" * 22,
    )
    assert collection.kind == "track" and collection.owner == "Tyler, The Creator, Kali Uchis"
    assert collection.tracks == [
        Track(
            spotify_id="3" * 22,
            title="Title",
            artists=["Tyler, The Creator", "Kali Uchis"],
            duration_ms=123_456,
            explicit=True,
            release_date="2017-07-21",
            cover_url="big",
        )
    ]


@pytest.mark.parametrize("status", [404, 500])
def test_embed_unknown_or_private_id_is_not_found_despite_http_200(status: int) -> None:
    with pytest.raises(NotFound):
        parse_embed_page(page({"status": status, "title": "Page not found"}), "playlist", "0" * 22)


@pytest.mark.parametrize(
    "html",
    [
        "<html><body>A new design</body></html>",
        '<script id="__NEXT_DATA__" type="application/json">{not json</script>',
        page({"somethingElse": {}}),
        page({"state": {"data": {}}}),
        entity_page({"type": "playlist", "name": "No list"}),
    ],
    ids=["no-script", "bad-json", "no-state-no-status", "no-entity", "no-tracklist"],
)
def test_embed_format_change_is_a_clear_permanent_error(html: str) -> None:
    with pytest.raises(PermanentError, match="page format changed") as caught:
        parse_embed_page(html, "playlist", "0" * 22)
    assert not isinstance(caught.value, NotFound)
