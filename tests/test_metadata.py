"""SpotifyMetadata and its adapters against the fake Spotify over real HTTP."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from pipeline.errors import BadInput, ConfigurationError, NotFound, PermanentError, RateLimited, TransientError
from pipeline.metadata import SpotifyMetadata
from pipeline.models import SkippedItem
from pipeline.spotify_api import spotify_session
from pipeline.spotify_parse import EPISODE, LOCAL_FILE, REMOVED
from tests.fakes.spotify_server import ANONYMOUS_TOKEN, FakeSpotify

RECORDED_TRACK = "02WuyBR56QN3B6ZC0BeC3f"
RECORDED_PLAYLIST = "78Lg6HmUqlTnmipvNxc536"


def metadata(server: FakeSpotify, *, credentials: bool = True, **overrides: object) -> SpotifyMetadata:
    # No backoff between 5xx retries: the tests count retries, they need not wait for them.
    return SpotifyMetadata(
        server.settings(credentials=credentials, **overrides), session=spotify_session(backoff_factor=0)
    )


def paths(server: FakeSpotify) -> list[str]:
    return [path for _, path in server.requests]


# --- the Web API --------------------------------------------------------------------------------------
def test_track_from_the_api_with_one_token(fake_spotify: FakeSpotify) -> None:
    meta = metadata(fake_spotify)
    collection = meta.resolve("track", RECORDED_TRACK)
    assert (collection.kind, collection.source, collection.name) == ("track", "api", "מיליון דולר")
    track = collection.tracks[0]
    assert (track.isrc, track.album_artists, track.release_date) == ("IL4432001535", ["Noa Kirel"], "2020-06-09")
    assert track.cover_url is not None and track.cover_url.startswith(fake_spotify.base_url)
    assert meta.track(RECORDED_TRACK) == track
    assert fake_spotify.requests == [
        ("POST", "/api/token"),
        ("GET", f"/v1/tracks/{RECORDED_TRACK}"),
        ("GET", f"/v1/tracks/{RECORDED_TRACK}"),
    ]


def test_synthetic_track_keeps_what_the_test_says(fake_spotify: FakeSpotify) -> None:
    track_id = fake_spotify.add_track("Song", ["A", "B"], duration_ms=7_000, isrc=None, explicit=True)
    track = metadata(fake_spotify).track(track_id)
    assert (track.title, track.artists, track.duration_ms, track.isrc, track.explicit) == (
        "Song",
        ["A", "B"],
        7_000,
        None,
        True,
    )


def test_album_pages_through_all_tracks(fake_spotify: FakeSpotify) -> None:
    album_id = fake_spotify.add_album(
        "Long", "Band", tracks=[(f"T{n}", 1000 + n, f"QZFAK00000{n:02d}") for n in range(60)]
    )
    collection = metadata(fake_spotify).resolve("album", album_id)
    assert [t.title for t in collection.tracks] == [f"T{n}" for n in range(60)]
    assert collection.tracks[-1].track_number == 60 and {t.track_total for t in collection.tracks} == {60}
    assert {t.disc_total for t in collection.tracks} == {1} and collection.owner == "Band"
    tracks_pages = [r.query for r in fake_spotify.request_log if r.path == f"/v1/albums/{album_id}/tracks"]
    assert tracks_pages == [{"limit": "50", "offset": "50"}]


def test_album_disc_numbers(fake_spotify: FakeSpotify) -> None:
    tracks = [{"title": f"D{d}T{n}", "duration_ms": 1000, "disc_number": d} for d in (1, 2) for n in (1, 2, 3)]
    album_id = fake_spotify.add_album("Double", ["X", "Y"], tracks=tracks)
    collection = metadata(fake_spotify).resolve("album", album_id)
    assert [(t.disc_number, t.track_number, t.disc_total) for t in collection.tracks][2:4] == [(1, 3, 2), (2, 1, 2)]
    assert collection.owner == "X, Y" and collection.tracks[0].album_artists == ["X", "Y"]


@pytest.mark.parametrize("shape", ["item", "track", "both"])
def test_owned_playlist_pages_through_items_and_skips_what_cannot_be_fetched(
    fake_spotify: FakeSpotify, shape: str
) -> None:
    fake_spotify.entry_shape = shape  # type: ignore[assignment]
    album_id = fake_spotify.add_album("Many", "Band", tracks=[(f"T{n}", 1000) for n in range(110)])
    track_ids = fake_spotify.album_track_ids(album_id)
    playlist_id = fake_spotify.add_playlist(
        "Mine",
        "Owner Name",
        track_ids,
        owned=True,
        extra_items=[None, FakeSpotify.local_item("Demo"), FakeSpotify.episode_item("Ep 1")],
    )
    collection = metadata(fake_spotify).resolve("playlist", playlist_id)
    assert (collection.source, collection.name, collection.owner, collection.truncated) == (
        "api",
        "Mine",
        "Owner Name",
        False,
    )
    assert [t.spotify_id for t in collection.tracks] == track_ids
    assert collection.skipped == [
        SkippedItem(title="item 111", reason=REMOVED),
        SkippedItem(title="Demo", reason=LOCAL_FILE),
        SkippedItem(title="Ep 1", reason=EPISODE),
    ]
    offsets = [r.query["offset"] for r in fake_spotify.request_log if r.path.endswith("/items")]
    assert offsets == ["0", "50", "100"]


def test_someone_elses_playlist_403_falls_back_to_the_embed_page(fake_spotify: FakeSpotify) -> None:
    collection = metadata(fake_spotify).resolve("playlist", RECORDED_PLAYLIST)
    assert (collection.source, collection.name, collection.owner) == ("embed", "NCS top 10", "Emilio Nicolas DG")
    assert [t.title for t in collection.tracks][:2] == ["Polaris", "Northern Lights"] and len(collection.tracks) == 11
    assert paths(fake_spotify) == [
        "/api/token",
        f"/v1/playlists/{RECORDED_PLAYLIST}/items",
        f"/embed/playlist/{RECORDED_PLAYLIST}",
    ]


def test_spotify_owned_playlist_404_falls_back_to_the_embed_page(fake_spotify: FakeSpotify) -> None:
    track_ids = [fake_spotify.add_track(f"Hit {n}", f"Star {n}") for n in range(3)]
    playlist_id = fake_spotify.add_playlist("Today's Hits", track_ids=track_ids, spotify_owned=True)
    assert playlist_id.startswith("37i9dQZF") and len(playlist_id) == 22
    collection = metadata(fake_spotify).resolve("playlist", playlist_id)
    assert collection.source == "embed" and collection.owner == "Spotify"
    assert [(t.title, t.artists) for t in collection.tracks] == [(f"Hit {n}", [f"Star {n}"]) for n in range(3)]


def test_private_playlist_is_not_found(fake_spotify: FakeSpotify) -> None:
    playlist_id = fake_spotify.add_playlist("Secret", public=False)
    with pytest.raises(NotFound):
        metadata(fake_spotify).resolve("playlist", playlist_id)


def test_big_playlist_through_the_embed_page_may_be_truncated(fake_spotify: FakeSpotify) -> None:
    album_id = fake_spotify.add_album("Many", "Band", tracks=[(f"T{n}", 1000) for n in range(150)])
    playlist_id = fake_spotify.add_playlist("Big", track_ids=fake_spotify.album_track_ids(album_id))
    collection = metadata(fake_spotify).resolve("playlist", playlist_id)
    assert collection.source == "embed" and collection.truncated and len(collection.tracks) == 100


def test_api_403_on_a_track_uses_the_embed_page(fake_spotify: FakeSpotify) -> None:
    fake_spotify.fail(r"/v1/tracks/", 403)  # a Development-Mode app whose owner has no Premium
    collection = metadata(fake_spotify).resolve("track", RECORDED_TRACK)
    assert collection.source == "embed" and collection.tracks[0].artists == ["Noa Kirel", "שחר סאול"]


def test_unknown_track_or_album_is_not_found(fake_spotify: FakeSpotify) -> None:
    meta = metadata(fake_spotify)
    with pytest.raises(NotFound):
        meta.resolve("track", "0" * 22)
    with pytest.raises(NotFound):
        meta.resolve("album", "0" * 22)


@pytest.mark.parametrize(
    "bad_id",
    [
        "../../v1/tracks/xyz",
        "8" + "0" * 21,  # 22 base62 digits, but more than 128 bits: no Spotify id
        "z" * 22,
        RECORDED_TRACK + "\n",
        RECORDED_TRACK[:-1],
    ],
)
def test_malformed_id_is_bad_input_without_any_request(fake_spotify: FakeSpotify, bad_id: str) -> None:
    with pytest.raises(BadInput):
        metadata(fake_spotify).resolve("track", bad_id)
    assert fake_spotify.requests == []


# --- no credentials: embed pages for everything ---------------------------------------------------------
def test_without_credentials_everything_comes_from_embed_pages(fake_spotify: FakeSpotify) -> None:
    album_id = fake_spotify.add_album("Album", "Band", tracks=[("One", 1000), ("Two", 2000)])
    meta = metadata(fake_spotify, credentials=False)
    track = meta.resolve("track", RECORDED_TRACK)
    album = meta.resolve("album", album_id)
    playlist = meta.resolve("playlist", RECORDED_PLAYLIST)
    assert {c.source for c in (track, album, playlist)} == {"embed"}
    assert (track.tracks[0].title, track.tracks[0].release_date) == ("מיליון דולר", "2020-06-09")
    assert [(t.title, t.album, t.track_number) for t in album.tracks] == [("One", "Album", 1), ("Two", "Album", 2)]
    assert len(playlist.tracks) == 11
    assert all(path.startswith("/embed/") for path in paths(fake_spotify))


def test_without_credentials_unknown_id_is_not_found(fake_spotify: FakeSpotify) -> None:
    with pytest.raises(NotFound):
        metadata(fake_spotify, credentials=False).resolve("playlist", "1" * 22)


def test_changed_embed_page_is_a_clear_error(fake_spotify: FakeSpotify) -> None:
    fake_spotify.fail("/embed/", 200, body="<html><body>new look</body></html>")
    with pytest.raises(Exception, match="page format changed"):
        metadata(fake_spotify, credentials=False).resolve("track", RECORDED_TRACK)


def test_the_anonymous_token_of_the_page_is_never_used(fake_spotify: FakeSpotify) -> None:
    meta = metadata(fake_spotify)
    collection = meta.resolve("playlist", RECORDED_PLAYLIST)
    meta.enrich(collection.tracks[0])
    assert not any(ANONYMOUS_TOKEN in str(r.headers) for r in fake_spotify.request_log)


# --- failures -----------------------------------------------------------------------------------------
@pytest.mark.timeout(10)  # behavioural guard: spotipy must not sleep out the Retry-After hour
def test_429_raises_rate_limited_at_once(fake_spotify: FakeSpotify) -> None:
    fake_spotify.fail(r"/v1/tracks/", 429, {"Retry-After": "3600"}, times=None)
    with pytest.raises(RateLimited) as caught:
        metadata(fake_spotify).resolve("track", RECORDED_TRACK)
    assert caught.value.retry_after == 3600
    assert fake_spotify.count(r"^/v1/tracks/") == 1


@pytest.mark.timeout(10)
@pytest.mark.parametrize("path", ["/api/token", "/embed/"])
def test_429_on_token_or_embed_page_is_rate_limited_too(fake_spotify: FakeSpotify, path: str) -> None:
    fake_spotify.fail(path, 429, {"Retry-After": "3600"}, times=None)
    with pytest.raises(RateLimited) as caught:
        metadata(fake_spotify, credentials=path == "/api/token").resolve("track", RECORDED_TRACK)
    assert caught.value.retry_after == 3600


@pytest.mark.timeout(10)
@pytest.mark.parametrize("path", [r"/v1/tracks/", "/api/token", "/embed/"])
def test_retry_after_as_an_http_date_is_understood_everywhere(fake_spotify: FakeSpotify, path: str) -> None:
    in_an_hour = format_datetime(datetime.now(UTC) + timedelta(hours=1), usegmt=True)
    fake_spotify.fail(path, 429, {"Retry-After": in_an_hour}, times=None)
    with pytest.raises(RateLimited) as caught:
        metadata(fake_spotify, credentials=path != "/embed/").resolve("track", RECORDED_TRACK)
    assert caught.value.retry_after == pytest.approx(3600, abs=10)


def test_500_is_retried_then_transient(fake_spotify: FakeSpotify) -> None:
    fake_spotify.fail(r"/v1/albums/", 500, times=None)
    with pytest.raises(TransientError) as caught:
        metadata(fake_spotify).resolve("album", "4bZJWQhHKJckFLJuYdvyX2")
    assert not isinstance(caught.value, RateLimited)
    assert fake_spotify.count(r"^/v1/albums/") == 4  # one try and three retries


def test_a_single_503_is_retried_transparently(fake_spotify: FakeSpotify) -> None:
    fake_spotify.fail(r"/v1/tracks/", 503, times=1)
    assert metadata(fake_spotify).track(RECORDED_TRACK).isrc == "IL4432001535"


def test_unreachable_spotify_is_transient() -> None:
    server = FakeSpotify(recorded=False)
    settings_kwargs = server.settings_kwargs()
    server.stop()  # nothing listens on that port any more
    from pipeline.settings import PipelineSettings, load_settings

    meta = SpotifyMetadata(
        load_settings(PipelineSettings, **settings_kwargs), session=spotify_session(backoff_factor=0)
    )
    with pytest.raises(TransientError):
        meta.resolve("track", RECORDED_TRACK)


def test_slow_spotify_times_out_as_transient(fake_spotify: FakeSpotify) -> None:
    fake_spotify.fail(r"/v1/tracks/", 200, times=None, delay=1.0)
    meta = metadata(fake_spotify, http_timeout=0.2)
    with pytest.raises(TransientError):
        meta.resolve("track", RECORDED_TRACK)


def test_wrong_secret_is_a_configuration_error_that_does_not_leak_it(
    fake_spotify: FakeSpotify, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "wrong-secret-do-not-log"
    meta = SpotifyMetadata(
        fake_spotify.settings(spotify_client_secret=secret), session=spotify_session(backoff_factor=0)
    )
    with pytest.raises(ConfigurationError, match="SPOTIFY_CLIENT_ID/SECRET") as caught:
        meta.resolve("track", RECORDED_TRACK)
    assert secret not in str(caught.value) and secret not in caplog.text
    assert fake_spotify.requests == [("POST", "/api/token")]


def test_a_revoked_token_is_replaced_and_the_call_retried(fake_spotify: FakeSpotify) -> None:
    meta = metadata(fake_spotify)
    meta.track(RECORDED_TRACK)
    fake_spotify.revoke_tokens()
    fake_spotify.clear_requests()
    assert meta.track(RECORDED_TRACK).spotify_id == RECORDED_TRACK
    assert fake_spotify.requests == [
        ("GET", f"/v1/tracks/{RECORDED_TRACK}"),
        ("POST", "/api/token"),
        ("GET", f"/v1/tracks/{RECORDED_TRACK}"),
    ]
    fake_spotify.clear_requests()
    meta.track(RECORDED_TRACK)  # the new token is kept
    assert fake_spotify.requests == [("GET", f"/v1/tracks/{RECORDED_TRACK}")]
    assert fake_spotify.tokens_issued == 2


def test_a_revoked_token_in_the_middle_of_paging_is_replaced(fake_spotify: FakeSpotify) -> None:
    album_id = fake_spotify.add_album("Long", "Band", tracks=[f"T{n}" for n in range(60)])
    meta = metadata(fake_spotify)
    meta.track(RECORDED_TRACK)
    fake_spotify.revoke_tokens()
    assert len(meta.resolve("album", album_id).tracks) == 60
    fake_spotify.revoke_tokens()
    assert len(meta.resolve("album", album_id).tracks) == 60
    assert fake_spotify.tokens_issued == 3


def test_api_401_with_a_fresh_token_is_a_configuration_error(fake_spotify: FakeSpotify) -> None:
    meta = metadata(fake_spotify)
    meta.track(RECORDED_TRACK)
    fake_spotify.fail(r"/v1/tracks/", 401, times=None)
    fake_spotify.clear_requests()
    with pytest.raises(ConfigurationError, match="SPOTIFY_CLIENT_ID/SECRET"):
        meta.track(RECORDED_TRACK)
    assert fake_spotify.requests == [
        ("GET", f"/v1/tracks/{RECORDED_TRACK}"),
        ("POST", "/api/token"),
        ("GET", f"/v1/tracks/{RECORDED_TRACK}"),
    ]


def test_token_endpoint_rejecting_the_credentials_after_a_revoked_token(fake_spotify: FakeSpotify) -> None:
    meta = metadata(fake_spotify)
    meta.track(RECORDED_TRACK)
    fake_spotify.revoke_tokens()
    fake_spotify.fail("/api/token", 401, times=None, body={"error": "invalid_client"})
    with pytest.raises(ConfigurationError, match="SPOTIFY_CLIENT_ID/SECRET"):
        meta.track(RECORDED_TRACK)


# --- enrich ---------------------------------------------------------------------------------------------
def test_enrich_completes_an_embed_track_and_keeps_its_id(fake_spotify: FakeSpotify) -> None:
    meta = metadata(fake_spotify)
    bare = meta.resolve("playlist", RECORDED_PLAYLIST).tracks[0]
    assert (bare.album, bare.isrc) == ("", None)
    full = meta.enrich(bare)
    assert (full.spotify_id, full.title, full.album, full.isrc) == (
        bare.spotify_id,
        "Polaris",
        "Polaris",
        "GB2LD0902518",
    )
    assert (full.release_date, full.album_artists, full.track_number) == ("2016-10-18", ["Blazars"], 1)
    assert full.cover_url is not None
    assert fake_spotify.requests[-1] == ("GET", f"/v1/tracks/{bare.spotify_id}")


def test_enrich_keeps_what_only_the_album_knew(fake_spotify: FakeSpotify) -> None:
    tracks = [{"title": f"T{d}", "duration_ms": 1000, "disc_number": d} for d in (1, 2)]
    meta = metadata(fake_spotify)
    album_track = meta.resolve("album", fake_spotify.add_album("A", "B", tracks=tracks)).tracks[0]
    assert album_track.isrc is None and album_track.disc_total == 2  # album pages carry no ISRC
    full = meta.enrich(album_track)
    assert full.isrc is not None and full.isrc.startswith("QZFAK") and full.disc_total == 2


def test_enrich_leaves_complete_tracks_alone(fake_spotify: FakeSpotify) -> None:
    meta = metadata(fake_spotify)
    track = meta.track(RECORDED_TRACK)
    fake_spotify.clear_requests()
    assert meta.enrich(track) is track
    assert fake_spotify.requests == []


def test_enrich_without_credentials_changes_nothing(fake_spotify: FakeSpotify) -> None:
    meta = metadata(fake_spotify, credentials=False)
    bare = meta.resolve("playlist", RECORDED_PLAYLIST).tracks[0]
    fake_spotify.clear_requests()
    assert meta.enrich(bare) is bare and fake_spotify.requests == []


def test_enrich_of_a_track_the_api_no_longer_has_returns_it_unchanged(fake_spotify: FakeSpotify) -> None:
    meta = metadata(fake_spotify)
    bare = meta.resolve("playlist", RECORDED_PLAYLIST).tracks[0]
    fake_spotify.remove(bare.spotify_id)
    assert meta.enrich(bare) == bare


@pytest.mark.timeout(10)
def test_enrich_lets_rate_limits_through(fake_spotify: FakeSpotify) -> None:
    meta = metadata(fake_spotify)
    bare = meta.resolve("playlist", RECORDED_PLAYLIST).tracks[0]
    fake_spotify.fail(r"/v1/tracks/", 429, {"Retry-After": "3600"})
    with pytest.raises(RateLimited):
        meta.enrich(bare)


@pytest.mark.parametrize(("status", "error"), [(404, NotFound), (500, TransientError), (403, PermanentError)])
def test_embed_page_http_errors(fake_spotify: FakeSpotify, status: int, error: type[Exception]) -> None:
    fake_spotify.fail("/embed/", status, times=None)
    with pytest.raises(error):
        metadata(fake_spotify, credentials=False).resolve("playlist", RECORDED_PLAYLIST)
