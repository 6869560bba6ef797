"""Text search: the pure parts exhaustively, the two adapters against the fake Spotify and the recorded
YouTube Music answers (served over HTTP by tests.fakes.ytmusic_server)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from bot.search import CALLBACK_SEARCH, SEARCH_PREFIX, request_link, results_keyboard, search_words
from pipeline.errors import RateLimited, TransientError
from pipeline.models import Track
from pipeline.spotify_parse import search_tracks
from pipeline.tagging import SPOTIFY_URL_DESC, build_tags
from pipeline.track_search import (
    MAX_QUERY_CHARS,
    SpotifySearch,
    YouTubeMusicSearch,
    button_label,
    normalize_query,
    track_from_song,
    track_length,
    track_searcher,
    tracks_from_songs,
)
from tests.fakes.spotify_server import FakeSpotify
from tests.fakes.ytmusic_server import FakeYouTubeMusic

METALLICA = "Metallica For Whom The Bell Tolls Remastered"  # recorded: ytm_search_songs_metallica-for-whom-…


# --- the words -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "query"),
    [
        ("  Daft Punk  -  One More Time ", "Daft Punk - One More Time"),
        ("line\nbreaks\tand\rtabs", "line breaks and tabs"),
        ("zero\u200bwidth\u200d joiners\ufeff", "zerowidth joiners"),
        ("\u202edirection\u202c marks\u2067", "direction marks"),
        ("bell\x07 and escape \x1b[31mred", "bell and escape [31mred"),
        ("Потап и Настя – Чумачечая весна", "Потап и Настя – Чумачечая весна"),
        ("", ""),
        ("   \u200b\u200b \n ", ""),
        ("line\u2028separator\u2029paragraph", "line separator paragraph"),
    ],
)
def test_queries_are_cleaned(text: str, query: str) -> None:
    assert normalize_query(text) == query


def test_long_text_is_cut_to_its_first_whole_words() -> None:
    text = "lorem ipsum dolor sit amet " * 400
    query = normalize_query(text)
    assert len(query) <= MAX_QUERY_CHARS
    assert query.startswith("lorem ipsum dolor")
    assert text.startswith(query)
    assert query.split()[-1] in {"lorem", "ipsum", "dolor", "sit", "amet"}


def test_one_overlong_word_is_cut_where_it_must_be() -> None:
    assert normalize_query("x" * 10_000) == "x" * MAX_QUERY_CHARS
    assert normalize_query("a " + "x" * 10_000) == "a"


# --- labels --------------------------------------------------------------------------------------


def track(title: str = "One More Time", artists: list[str] | None = None, duration_ms: int = 225_000) -> Track:
    return Track(
        spotify_id="0DiWol3AO6WpXZgp0goxAV", title=title, artists=artists or ["Daft Punk"], duration_ms=duration_ms
    )


@pytest.mark.parametrize(
    ("ms", "text"), [(225_000, "3:45"), (59_600, "1:00"), (5_000, "0:05"), (3_723_000, "1:02:03"), (0, "0:00")]
)
def test_durations(ms: int, text: str) -> None:
    assert track_length(ms) == text


def test_a_label_names_artists_title_and_length() -> None:
    assert button_label(track()) == "Daft Punk – One More Time (3:45)"
    assert button_label(track(artists=["A", "B"])) == "A, B – One More Time (3:45)"
    assert button_label(track(duration_ms=0)) == "Daft Punk – One More Time"


def test_a_long_label_is_cut_and_keeps_its_length() -> None:
    label = button_label(track(title="Very " * 40 + "Long"), max_chars=60)
    assert 50 < len(label) <= 60
    assert label.endswith("… (3:45)")
    assert label.startswith("Daft Punk – Very Very")


def test_a_label_is_one_line() -> None:
    assert "\n" not in button_label(track(title="two\nlines"))


# --- Spotify JSON --------------------------------------------------------------------------------


def test_search_json_becomes_playable_tracks_in_order(fake_spotify: FakeSpotify) -> None:
    first = fake_spotify.track_json(fake_spotify.add_track("Alpha", "Band"))
    second = fake_spotify.track_json(fake_spotify.add_track("Beta", "Band"))
    episode = {"type": "episode", "id": "4rOoJ6Egrf8K2IrywzwOMk", "name": "A Show"}
    data = {"tracks": {"items": [first, None, episode, {"name": "no id"}, second]}}

    found = search_tracks(data)

    assert [t.title for t in found] == ["Alpha", "Beta"]
    assert all(t.origin == "spotify" and t.spotify_url for t in found)


@pytest.mark.parametrize("data", [None, {}, {"tracks": None}, {"tracks": {"items": "x"}}, []])
def test_odd_search_json_finds_nothing(data: object) -> None:
    assert search_tracks(data) == []


# --- YouTube Music song results ------------------------------------------------------------------

SONG = {
    "resultType": "song",
    "title": "For Whom The Bell Tolls",
    "album": {"name": "Ride The Lightning", "id": "MPREb_vbNohrhu6ae"},
    "videoId": "B_HSa1dEL9s",
    "videoType": "MUSIC_VIDEO_TYPE_ATV",
    "duration": "5:10",
    "artists": [{"name": "Metallica", "id": "UCGexNm_Kw4rdQjLxmpb2EKw"}],
    "duration_seconds": 310,
    "isExplicit": False,
    "thumbnails": [
        {"url": "https://lh3.googleusercontent.com/x=w60-h60-l90-rj", "width": 60, "height": 60},
        {"url": "https://lh3.googleusercontent.com/x=w120-h120-l90-rj", "width": 120, "height": 120},
    ],
}


def test_a_song_result_becomes_a_track_that_is_not_spotifys() -> None:
    found = track_from_song(SONG)
    assert found is not None
    assert (found.title, found.artists, found.album, found.duration_ms) == (
        "For Whom The Bell Tolls",
        ["Metallica"],
        "Ride The Lightning",
        310_000,
    )
    assert found.spotify_id == "B_HSa1dEL9s" and found.origin == "youtube-music"
    assert found.spotify_url is None
    assert found.cover_url == "https://lh3.googleusercontent.com/x=w544-h544-l90-rj"
    assert button_label(found) == "Metallica – For Whom The Bell Tolls (5:10)"


@pytest.mark.parametrize(
    "item",
    [
        {**SONG, "videoId": None},
        {**SONG, "videoId": ""},
        {**SONG, "title": "  "},
        {**SONG, "title": None},
    ],
)
def test_results_that_are_no_song_are_left_out(item: dict) -> None:
    assert track_from_song(item) is None


def test_songs_are_listed_once_each_in_order() -> None:
    other = {**SONG, "videoId": "PNTOTp6v8a8", "title": "Live", "album": None, "duration_seconds": None}
    found = tracks_from_songs([SONG, "junk", other, SONG])  # type: ignore[list-item]
    assert [t.spotify_id for t in found] == ["B_HSa1dEL9s", "PNTOTp6v8a8"]
    assert found[1].album == "" and found[1].duration_ms == 310_000  # from its "5:10"


def test_tags_of_a_youtube_music_track_name_no_spotify_link() -> None:
    found = track_from_song(SONG)
    assert found is not None
    frames = build_tags(found, "https://music.youtube.com/watch?v=B_HSa1dEL9s")
    assert not [f for f in frames if getattr(f, "desc", None) == SPOTIFY_URL_DESC]


# --- the adapters --------------------------------------------------------------------------------


@pytest.fixture
def fake_ytmusic() -> Iterator[FakeYouTubeMusic]:
    with FakeYouTubeMusic() as server:
        yield server


def test_with_credentials_spotify_is_searched(fake_spotify: FakeSpotify) -> None:
    wanted = fake_spotify.add_track("Midnight Drive", ["Luna Park", "Neon Kid"], album="Night Songs")
    fake_spotify.add_track("Midnight Drive (Live)", "Luna Park")
    fake_spotify.add_track("Noon Walk", "Luna Park")
    searcher = track_searcher(fake_spotify.settings())
    assert isinstance(searcher, SpotifySearch)

    found = searcher.search("  luna park midnight drive ", limit=50)

    assert [t.title for t in found] == ["Midnight Drive", "Midnight Drive (Live)"]
    assert found[0].spotify_id == wanted and found[0].album == "Night Songs" and found[0].isrc
    [request] = [r for r in fake_spotify.request_log if r.path == "/v1/search"]
    assert request.query["type"] == "track" and int(request.query["limit"]) <= 10


def test_spotify_finding_nothing_is_an_empty_list(fake_spotify: FakeSpotify) -> None:
    assert SpotifySearch(fake_spotify.settings()).search("zzqx nothing like it") == []


def test_spotify_search_failures_are_our_errors(fake_spotify: FakeSpotify) -> None:
    searcher = SpotifySearch(fake_spotify.settings())
    fake_spotify.fail("/v1/search", 429, {"Retry-After": "30"})
    with pytest.raises(RateLimited):
        searcher.search("anything")
    fake_spotify.fail("/v1/search", 503, times=None)
    with pytest.raises(TransientError):
        searcher.search("anything")


@pytest.mark.parametrize(("status", "where"), [(403, "/v1/search"), (401, "/api/token")])
def test_spotify_refusing_the_app_falls_back_to_youtube_music(
    fake_spotify: FakeSpotify, fake_ytmusic: FakeYouTubeMusic, status: int, where: str
) -> None:
    settings = fake_spotify.settings(youtube_music_url=fake_ytmusic.base_url)
    fake_spotify.fail(where, status, times=None)

    found = SpotifySearch(settings).search(METALLICA, limit=3)

    assert [t.origin for t in found] == ["youtube-music"] * 3
    assert found[0].title == "For Whom The Bell Tolls"


def test_without_credentials_youtube_music_is_searched(
    fake_spotify: FakeSpotify, fake_ytmusic: FakeYouTubeMusic
) -> None:
    settings = fake_spotify.settings(credentials=False, youtube_music_url=fake_ytmusic.base_url)
    searcher = track_searcher(settings)
    assert isinstance(searcher, YouTubeMusicSearch)

    found = searcher.search(METALLICA, limit=5)

    assert len(found) == 5
    assert found[0].title == "For Whom The Bell Tolls" and found[0].artists == ["Metallica"]
    assert all(t.origin == "youtube-music" and t.duration_ms > 0 for t in found)
    assert [(s.filter, s.query) for s in fake_ytmusic.searches] == [("songs", METALLICA)]
    assert fake_spotify.requests == []


def test_youtube_music_finding_nothing_is_an_empty_list(
    fake_spotify: FakeSpotify, fake_ytmusic: FakeYouTubeMusic
) -> None:
    settings = fake_spotify.settings(credentials=False, youtube_music_url=fake_ytmusic.base_url)
    assert YouTubeMusicSearch(settings).search("never recorded words") == []


def test_youtube_music_unreachable_is_transient(fake_spotify: FakeSpotify) -> None:
    settings = fake_spotify.settings(credentials=False, youtube_music_url="http://127.0.0.1:9", http_timeout=2)
    with pytest.raises(TransientError):
        YouTubeMusicSearch(settings).search("anything")


# --- the bot's side ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("/search daft punk", "daft punk"),
        ("/search@Fake_MP3_Bot daft punk", "daft punk"),
        ("/search", ""),
        ("/searching for", "/searching for"),
        ("@fake_mp3_bot daft punk", "daft punk"),
        ("daft @fake_mp3_bot punk", "daft   punk"),
        ("hello @other_bot", "hello @other_bot"),
        ("  plain words ", "plain words"),
    ],
)
def test_the_words_of_a_message(text: str, words: str) -> None:
    assert search_words(text, "fake_mp3_bot") == words


def test_result_buttons_fit_telegram() -> None:
    tracks = [track(title=f"Song {n} " + "ü" * 80) for n in range(5)]
    keyboard = results_keyboard("0123456789ab", tracks)
    buttons = [row[0] for row in keyboard.inline_keyboard]
    assert len(buttons) == 5
    for n, button in enumerate(buttons):
        assert button.callback_data == f"{SEARCH_PREFIX}0123456789ab:{n}"
        assert len(str(button.callback_data).encode()) <= 64
        assert CALLBACK_SEARCH.fullmatch(str(button.callback_data))
        assert len(button.text) <= 60


def test_a_request_goes_by_the_spotify_link_when_there_is_one() -> None:
    assert request_link(track()) == "https://open.spotify.com/track/0DiWol3AO6WpXZgp0goxAV"
    found = track_from_song(SONG)
    assert found is not None
    assert request_link(found) == "https://music.youtube.com/watch?v=B_HSa1dEL9s"


def test_the_fake_search_pages_like_spotify(fake_spotify: FakeSpotify) -> None:
    """The fake's /search, as the 2026 rules have it: type=track needed, limit 0–10, offset paging."""
    for n in range(12):
        fake_spotify.add_track(f"Paging Song {n}", "Pager")
    token = requests.post(
        fake_spotify.token_url,
        data={"grant_type": "client_credentials"},
        auth=(fake_spotify.client_id, fake_spotify.client_secret),
        timeout=5,
    ).json()["access_token"]

    def get(**params: str) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}"}
        return requests.get(f"{fake_spotify.api_url}search", params=params, headers=headers, timeout=5)

    first = get(q="pager paging", type="track", limit="10").json()["tracks"]
    assert len(first["items"]) == 10 and first["total"] == 12 and "q=pager" in first["next"]
    second = get(q="pager paging", type="track", limit="10", offset="10").json()["tracks"]
    assert [t["name"] for t in second["items"]] == ["Paging Song 10", "Paging Song 11"] and second["next"] is None
    assert get(q="pager", type="track", limit="11").status_code == 400
    assert get(q="pager", type="album").status_code == 400
    assert get(q="", type="track").status_code == 400
