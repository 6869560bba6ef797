"""Every form of Spotify link users paste, every refusal, and hostile input."""

from __future__ import annotations

import random
import string
import sys
import unicodedata

import pytest

from pipeline.links import (
    REASON_ARTIST,
    REASON_AUDIOBOOK,
    REASON_LIKED_SONGS,
    REASON_LOCAL_FILE,
    REASON_OTHER_SPOTIFY_PAGE,
    REASON_PODCAST,
    REASON_PROFILE,
    REASON_SHORT_LINK_INCOMPLETE,
    RejectedLink,
    ShortLink,
    SpotifyRef,
    is_spotify_host,
    is_spotify_id,
    malformed_reason,
    not_spotify_reason,
    parse_link,
    parse_links,
)

T = "4cOdK2wGLETKBW3PvgPWqT"  # a track
A = "0GMsBnxw3YejP3iUFQyrYd"  # an album
P = "37i9dQZF1DXcBWIGoYBM5M"  # a playlist
TRACK = SpotifyRef("track", T)
ALBUM = SpotifyRef("album", A)
PLAYLIST = SpotifyRef("playlist", P)
TRACK_URL = f"https://open.spotify.com/track/{T}"

BASE62 = string.digits + string.ascii_lowercase + string.ascii_uppercase


def make_id(number: int) -> str:
    """A valid id for any number below 2**128 (base62, 22 digits)."""
    digits = []
    for _ in range(22):
        number, digit = divmod(number, 62)
        digits.append(BASE62[digit])
    return "".join(reversed(digits))


ACCEPTED = [
    (TRACK_URL, TRACK),
    (f"https://open.spotify.com/album/{A}", ALBUM),
    (f"https://open.spotify.com/playlist/{P}", PLAYLIST),
    (f"{TRACK_URL}?si=a1B2c3D4e5F6g7H8", TRACK),
    (f"{TRACK_URL}?si=abc&utm_source=copy-link&utm_medium=copy-link&nd=1&dlsi=f00", TRACK),
    (f"{TRACK_URL}?context=spotify%3Aalbum%3A{A}", TRACK),
    (f"{TRACK_URL}#section", TRACK),
    (f"{TRACK_URL}/", TRACK),
    (f"https://open.spotify.com:443/track/{T}", TRACK),
    (f"https://open.spotify.com/intl-de/track/{T}", TRACK),
    (f"https://open.spotify.com/intl-pt_BR/album/{A}?si=x", ALBUM),
    (f"https://open.spotify.com/intl-zh-TW/playlist/{P}", PLAYLIST),
    (f"https://open.spotify.com/embed/track/{T}", TRACK),
    (f"https://open.spotify.com/embed/playlist/{P}?utm_source=generator&theme=0", PLAYLIST),
    (f"https://open.spotify.com/intl-fr/embed/album/{A}", ALBUM),
    (f"https://play.spotify.com/track/{T}", TRACK),
    (f"play.spotify.com/album/{A}", ALBUM),
    (f"http://open.spotify.com/track/{T}", TRACK),
    (f"open.spotify.com/track/{T}", TRACK),
    (f"open.spotify.com/playlist/{P}?si=1", PLAYLIST),
    (f"HTTPS://OPEN.SPOTIFY.COM/TRACK/{T}", TRACK),
    (f"https://open.spotify.com/Album/{A}", ALBUM),
    (f"http:/open.spotify.com/track/{T}", TRACK),
    (f"spotify:track:{T}", TRACK),
    (f"spotify:album:{A}", ALBUM),
    (f"spotify:playlist:{P}", PLAYLIST),
    (f"SPOTIFY:TRACK:{T}", TRACK),
    (f"https://open.spotify.com/user/spotify/playlist/{P}", PLAYLIST),
    (f"open.spotify.com/user/some.user-1/playlist/{P}?si=x", PLAYLIST),
    (f"spotify:user:bob:playlist:{P}", PLAYLIST),
    (f"https://embed.spotify.com/?uri=spotify:track:{T}", TRACK),
    ("https://open.spotify.com/track/0000000000000000000000", SpotifyRef("track", "0" * 22)),
    ("spotify:track:7zzzzzzzzzzzzzzzzzzzzz", SpotifyRef("track", "7" + "z" * 21)),
    (f"spotify:track:{make_id(2**128 - 1)}", SpotifyRef("track", make_id(2**128 - 1))),
]


@pytest.mark.parametrize(("text", "expected"), ACCEPTED)
def test_accepted_forms(text: str, expected: SpotifyRef) -> None:
    assert parse_links(text) == [expected]
    assert parse_link(text) == expected


SURROUNDINGS = [
    "Listen to this: {}",
    "{} is my favourite",
    "{}.",
    "{},",
    "{}!",
    "{}?!",
    "{};",
    "{}:",
    "{}...",
    "({})",
    "({}).",
    "[{}]",
    "<{}>",
    "{{{}}}",
    '"{}"',
    "'{}'",
    "«{}»",
    "“{}”",
    "「{}」",
    "[my song]({})",
    '[my song]({} "title")',
    "**{}**",
    "_{}_",
    "`{}`",
    "~~{}~~",
    "🎵{}🎵",
    "Послушай:{}спасибо",
    "这首歌{}。",
    "line one\n{}\nline three",
    "\t{}\t",
    "\u00a0{}\u00a0",
    '<a href="{}">song</a>',
    "see:{}",
    "|{}|",
]


@pytest.mark.parametrize("template", SURROUNDINGS)
@pytest.mark.parametrize("link", [TRACK_URL, f"{TRACK_URL}?si=abc", f"open.spotify.com/track/{T}", TRACK.uri])
def test_links_inside_text(template: str, link: str) -> None:
    assert parse_links(template.format(link)) == [TRACK]


UNICODE_JUNK = [
    f"https://open.\u200bspotify.com/track/{T}",
    f"https://open.spotify.com/track/{T[:10]}\u200d{T[10:]}",
    f"https://open.spotify.com/track/\u200c{T}",
    f"\ufeff{TRACK_URL}",
    f"{TRACK_URL}\u2060",
    f"\u200e{TRACK_URL}\u200f",
    f"\u202b{TRACK_URL}\u202c",
    f"\u202e{TRACK_URL}\u202d",
    f"\u2066{TRACK_URL}\u2069",
    f"\u2067spotify:\u2068track:{T}\u2069",
    f"spotify:track:{T[:5]}\u200b\u200b\u200b{T[5:]}",
    # Any other format character (Unicode category Cf) is invisible too, and used to cut the link short.
    f"https://open.spotify.com/track/{T[:8]}\u00ad{T[8:]}",  # soft hyphen
    f"https://open.spo\u00adtify.com/track/{T}",
    f"\u061c{TRACK_URL}\u061c",  # Arabic letter mark
    f"{TRACK_URL[:20]}\u2061{TRACK_URL[20:]}",  # invisible operators
    f"spotify:track:{T[:3]}\u2062{T[3:6]}\u2063{T[6:9]}\u2064{T[9:]}",
    f"https://open.spotify.com/track/{T[:4]}\u180e{T[4:]}",  # Mongolian vowel separator
    f"https://open.spotify.com/track/{T}\U000e0001",  # a language tag
]


@pytest.mark.parametrize("text", UNICODE_JUNK)
def test_invisible_characters_are_ignored(text: str) -> None:
    assert parse_links(text) == [TRACK]


def test_every_format_character_is_ignored() -> None:
    format_characters = [chr(c) for c in range(sys.maxunicode + 1) if unicodedata.category(chr(c)) == "Cf"]
    assert len(format_characters) > 150
    for ch in format_characters:
        assert parse_links(f"{TRACK_URL[:30]}{ch}{TRACK_URL[30:]}") == [TRACK], f"U+{ord(ch):04X}"


REJECTED = [
    # artists
    (f"https://open.spotify.com/artist/{T}", REASON_ARTIST),
    (f"https://open.spotify.com/intl-es/artist/{T}?si=1", REASON_ARTIST),
    (f"https://open.spotify.com/embed/artist/{T}", REASON_ARTIST),
    (f"https://open.spotify.com/artist/{T}/discography/all", REASON_ARTIST),
    (f"spotify:artist:{T}", REASON_ARTIST),
    # podcasts and audiobooks
    (f"https://open.spotify.com/show/{T}", REASON_PODCAST),
    (f"https://open.spotify.com/episode/{T}?si=2", REASON_PODCAST),
    (f"https://open.spotify.com/embed-podcast/episode/{T}", REASON_PODCAST),
    (f"spotify:episode:{T}", REASON_PODCAST),
    (f"spotify:show:{T}", REASON_PODCAST),
    (f"https://open.spotify.com/audiobook/{T}", REASON_AUDIOBOOK),
    # user profiles and Liked Songs
    ("https://open.spotify.com/user/spotify", REASON_PROFILE),
    ("https://open.spotify.com/user/bob.smith/", REASON_PROFILE),
    ("spotify:user:bob", REASON_PROFILE),
    ("https://open.spotify.com/collection/tracks", REASON_LIKED_SONGS),
    ("spotify:user:bob:collection", REASON_LIKED_SONGS),
    # local files
    ("spotify:local:Some+Artist:Some+Album:Some+Title:215", REASON_LOCAL_FILE),
    ("spotify:local:::Voice+memo:12", REASON_LOCAL_FILE),
    # other Spotify pages
    ("https://open.spotify.com/genre/0JQ5DAqbMKFEC4WFtoNRpw", REASON_OTHER_SPOTIFY_PAGE),
    ("https://open.spotify.com/search/abba", REASON_OTHER_SPOTIFY_PAGE),
    ("https://open.spotify.com/concert/0sPFuYCh3zxAaHRJQb6mGP", REASON_OTHER_SPOTIFY_PAGE),
    ("https://open.spotify.com/", REASON_OTHER_SPOTIFY_PAGE),
    ("open.spotify.com", REASON_OTHER_SPOTIFY_PAGE),
    ("https://open.spotify.com/embed", REASON_OTHER_SPOTIFY_PAGE),
    ("https://open.spotify.com/intl-de", REASON_OTHER_SPOTIFY_PAGE),
    ("spotify.com", REASON_OTHER_SPOTIFY_PAGE),
    ("https://www.spotify.com/us/premium/", REASON_OTHER_SPOTIFY_PAGE),
    ("https://support.spotify.com/us/article/share-music/", REASON_OTHER_SPOTIFY_PAGE),
    (f"https://developer.spotify.com/track/{T}", REASON_OTHER_SPOTIFY_PAGE),
    ("spotify:genre:pop", REASON_OTHER_SPOTIFY_PAGE),
    ("spotify:search:abba+waterloo", REASON_OTHER_SPOTIFY_PAGE),
    # malformed ids
    (f"https://open.spotify.com/track/{T[:-1]}", malformed_reason("track")),
    (f"https://open.spotify.com/track/{T}x", malformed_reason("track")),
    (f"https://open.spotify.com/album/{A[:10]}-{A[11:]}", malformed_reason("album")),
    (f"https://open.spotify.com/playlist/8{P[1:]}", malformed_reason("playlist")),
    (f"https://open.spotify.com/playlist/Z{P[1:]}", malformed_reason("playlist")),
    (f"https://open.spotify.com/playlist/a{P[1:]}", malformed_reason("playlist")),
    ("https://open.spotify.com/track/", malformed_reason("track")),
    ("https://open.spotify.com/user/bob/playlist/", malformed_reason("playlist")),
    (f"spotify:track:{T[:-3]}", malformed_reason("track")),
    ("spotify:album:x", malformed_reason("album")),
    (f"spotify:user:bob:playlist:{P}zz", malformed_reason("playlist")),
    # short links without a code
    ("https://spotify.link/", REASON_SHORT_LINK_INCOMPLETE),
    ("spotify.link", REASON_SHORT_LINK_INCOMPLETE),
    # anything else
    ("https://www.youtube.com/watch?v=dQw4w9WgXcQ", not_spotify_reason("youtube.com")),
    ("youtube.com", not_spotify_reason("youtube.com")),
    ("youtu.be/dQw4w9WgXcQ", not_spotify_reason("youtu.be")),
    ("https://music.apple.com/us/album/x/123", not_spotify_reason("music.apple.com")),
    ("soundcloud.com/artist/song", not_spotify_reason("soundcloud.com")),
    ("http://127.0.0.1:8000/track/1", not_spotify_reason("127.0.0.1")),
    ("https://deezer.com/track/1", not_spotify_reason("deezer.com")),
    ("www.example.org", not_spotify_reason("example.org")),
    ("t.me/some_channel", not_spotify_reason("t.me")),
    (f"https://notspotify.com/track/{T}", not_spotify_reason("notspotify.com")),
    (f"https://open.spotify.com.evil.example.com/track/{T}", not_spotify_reason("open.spotify.com.evil.example.com")),
    (f"open.spotify.com.evil.com/track/{T}", not_spotify_reason("open.spotify.com.evil.com")),
    (f"https://open.spotify.com@evil.com/track/{T}", not_spotify_reason("evil.com")),
    ("https://:80/", not_spotify_reason(None)),
    # hosts spelled with look-alikes (Cyrillic о, Cyrillic ѕ, Greek ο): whole hosts, and not Spotify's
    (f"https://\u043epen.spotify.com/track/{T}", not_spotify_reason("\u043epen.spotify.com")),
    (f"\u043epen.spotify.com/track/{T}", not_spotify_reason("\u043epen.spotify.com")),
    (f"https://open.\u0455potify.com/track/{T}", not_spotify_reason("open.\u0455potify.com")),
    (f"open.\u0455potify.com/track/{T}", not_spotify_reason("open.\u0455potify.com")),
    (f"https://open.spotify.c\u03bfm/track/{T}", not_spotify_reason("open.spotify.c\u03bfm")),
    ("https://\u0455potify.link/AbC123", not_spotify_reason("\u0455potify.link")),
    ("\u0455potify.link/AbC123", not_spotify_reason("\u0455potify.link")),
    (f"https://\u00f6pen.spotify.com/track/{T}", not_spotify_reason("\u00f6pen.spotify.com")),
    ("https://пример.рф/", not_spotify_reason("пример.рф")),
]


@pytest.mark.parametrize(("text", "reason"), REJECTED)
def test_rejected_with_a_reason(text: str, reason: str) -> None:
    assert parse_links(f"look: {text} ") == [RejectedLink(text, reason)]


@pytest.mark.parametrize("reason", sorted({reason for _, reason in REJECTED}))
def test_reasons_are_one_friendly_sentence(reason: str) -> None:
    assert reason[0].isupper()
    assert reason.endswith(".")
    assert reason.count(". ") == 0
    assert len(reason) <= 120


def test_look_alike_hosts_are_not_spotify() -> None:
    assert is_spotify_host("open.spotify.com") and is_spotify_host("spotify.link")
    assert not is_spotify_host("\u043epen.spotify.com")
    assert not is_spotify_host("open.spotify.c\u03bfm")
    assert not is_spotify_host("\u0455potify.link")


def test_text_in_a_script_without_case_glued_to_a_link_is_not_its_host() -> None:
    # Chinese or Japanese text is written without spaces: the link starts where the ASCII does.
    assert parse_links(f"这首歌open.spotify.com/track/{T}。") == [TRACK]
    assert parse_links(f"この曲spotify:track:{T}") == [TRACK]


SHORT_LINKS = [
    "https://spotify.link/AbC123xyz",
    "spotify.link/AbC123xyz",
    "http://spotify.link/AbC123xyz?si=1",
    "Check this out: https://spotify.link/AbC123xyz!",
    "(https://spotify.link/AbC123xyz/)",
]


@pytest.mark.parametrize("text", SHORT_LINKS)
def test_short_links_are_left_for_resolution(text: str) -> None:
    assert parse_links(text) == [ShortLink("https://spotify.link/AbC123xyz")]


def test_branch_short_links_keep_their_query() -> None:
    assert parse_links("https://spotify.app.link/AbC123?_p=c11") == [
        ShortLink("https://spotify.app.link/AbC123?_p=c11")
    ]


NO_LINKS = [
    "",
    "   ",
    "hello",
    "I love Spotify: it's great",
    "spotify",
    "spotify:",
    "e.g. this, i.e. that, etc.",
    "node.js and file.mp3, version v1.2.3, pi is 3.14",
    "hello.world",
    "Mr.Smith went to Washington",
    "write to me@gmail.com",
    f"just an id {T}",
    f"track/{T}",
    "http://",
    "https:// nothing",
    "…",
]


@pytest.mark.parametrize("text", NO_LINKS)
def test_text_without_links(text: str) -> None:
    assert parse_links(text) == []
    assert parse_link(text) is None


def test_several_links_in_order_of_appearance() -> None:
    text = (
        f"first {TRACK_URL}, then spotify:album:{A}\n"
        "not this one: https://youtu.be/x\n"
        f"and finally <open.spotify.com/playlist/{P}> + https://spotify.link/Zz9"
    )
    assert parse_links(text) == [
        TRACK,
        ALBUM,
        RejectedLink("https://youtu.be/x", not_spotify_reason("youtu.be")),
        PLAYLIST,
        ShortLink("https://spotify.link/Zz9"),
    ]


def test_links_glued_together_are_split() -> None:
    text = f"{TRACK_URL},https://open.spotify.com/album/{A}https://open.spotify.com/playlist/{P}"
    assert parse_links(text) == [TRACK, ALBUM, PLAYLIST]


def test_exact_duplicates_are_dropped() -> None:
    text = f"{TRACK_URL}?si=1 {TRACK_URL}?si=2 spotify:track:{T} open.spotify.com/intl-de/track/{T}"
    assert parse_links(text) == [TRACK]


def test_same_id_as_another_kind_is_not_a_duplicate() -> None:
    assert parse_links(f"spotify:track:{T} spotify:album:{T}") == [TRACK, SpotifyRef("album", T)]


def test_repeated_short_links_and_refusals_are_reported_once() -> None:
    text = "youtube.com youtube.com spotify.link/abc https://spotify.link/abc"
    assert parse_links(text) == [
        RejectedLink("youtube.com", not_spotify_reason("youtube.com")),
        ShortLink("https://spotify.link/abc"),
    ]


def test_limit_stops_early() -> None:
    text = f"{TRACK_URL} spotify:album:{A} youtube.com spotify:playlist:{P}"
    assert parse_links(text, limit=2) == [TRACK, ALBUM]
    assert parse_links(text, limit=3)[-1] == RejectedLink("youtube.com", not_spotify_reason("youtube.com"))
    assert len(parse_links(text, limit=100)) == 4
    assert parse_links(text, limit=0) == []


def test_parse_link_takes_the_first() -> None:
    assert parse_link(f"youtube.com {TRACK_URL}") == RejectedLink("youtube.com", not_spotify_reason("youtube.com"))
    assert parse_link(f"spotify:album:{A} {TRACK_URL}") == ALBUM


def test_rejected_text_is_shortened() -> None:
    long_url = "https://example.com/" + "a" * 200
    [rejected] = parse_links(f"  {long_url}  ")
    assert isinstance(rejected, RejectedLink)
    assert len(rejected.text) == 80
    assert rejected.text == long_url[:79] + "…"


@pytest.mark.parametrize("ref", [TRACK, ALBUM, PLAYLIST])
def test_canonical_forms_round_trip(ref: SpotifyRef) -> None:
    assert ref.url == f"https://open.spotify.com/{ref.kind}/{ref.id}"
    assert ref.uri == f"spotify:{ref.kind}:{ref.id}"
    assert parse_link(ref.url) == ref
    assert parse_link(ref.uri) == ref


def test_short_link_round_trips() -> None:
    short = ShortLink("https://spotify.link/AbC123")
    assert parse_link(short.url) == short


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        (T, True),
        ("0" * 22, True),
        (make_id(2**128 - 1), True),
        ("8" + "0" * 21, False),
        ("z" + "0" * 21, False),
        ("0" * 21, False),
        ("0" * 23, False),
        ("0" * 21 + "_", False),
        ("0" * 21 + "é", False),
        ("", False),
    ],
)
def test_is_spotify_id(value: str, valid: bool) -> None:
    assert is_spotify_id(value) is valid


def test_every_128_bit_number_leads_with_0_to_7() -> None:
    assert make_id(2**128 - 1)[0] == "7"
    assert make_id(2**128 - 1) != make_id(2**128 - 2)


# Hostile input. The timeouts only stop a runaway regex from hanging the suite; nothing here measures speed.


@pytest.mark.timeout(30)
def test_a_thousand_links() -> None:
    ids = [make_id(number * 2**110 + number) for number in range(1000)]
    text = "\n".join(f"{number}. https://open.spotify.com/track/{id_}?si=x" for number, id_ in enumerate(ids))
    assert parse_links(text) == [SpotifyRef("track", id_) for id_ in ids]
    assert parse_links(text, limit=11) == [SpotifyRef("track", id_) for id_ in ids[:11]]


@pytest.mark.timeout(30)
def test_a_thousand_copies_of_one_link() -> None:
    assert parse_links(f"{TRACK_URL} " * 1000) == [TRACK]


@pytest.mark.timeout(30)
def test_ten_kilobytes_of_prose() -> None:
    prose = ("Lorem ipsum dolor sit amet, consectetur adipiscing elit (e.g. this). " * 150)[:10_000]
    assert parse_links(prose + TRACK_URL) == [TRACK]
    assert parse_links(TRACK_URL + " " + prose) == [TRACK]


PATHOLOGICAL = [
    "a" * 10_000,
    "a." * 5_000,
    "aa." * 3_400,
    "." * 10_000,
    "-" * 10_000,
    ":" * 10_000,
    "/" * 10_000,
    "1" * 10_000,
    ("x" * 63 + ".") * 160,
    ("x" * 70 + ".") * 150,
    "a-" * 5_000,
    "https://" * 1_250,
    "https://a" * 1_100,
    "spotify:" * 1_250,
    "spotify:track:" * 700,
    "open.spotify.com/" * 600,
    "/track/" * 1_400,
    "https://open.spotify.com/" + "x" * 10_000,
    "spotify:track:" + "x" * 10_000,
    "http://a.com/" + "%" * 10_000,
    "www." * 2_500,
    "\u200b" * 10_000,
    "🎵" * 5_000,
    "a.b" + ".c" * 5_000,
]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("text", PATHOLOGICAL, ids=range(len(PATHOLOGICAL)))
def test_pathological_input_is_handled(text: str) -> None:
    results = parse_links(text)
    assert all(isinstance(result, SpotifyRef | ShortLink | RejectedLink) for result in results)
    assert all(len(result.text) <= 80 for result in results if isinstance(result, RejectedLink))


@pytest.mark.timeout(30)
def test_random_unicode_soup() -> None:
    rng = random.Random(20260101)
    pieces = [
        *"abcxyzABC0123456789 .,:;/?#&=%-_~()[]<>\"'*`\n\t",
        "\u200b",
        "\u202e",
        "\ufeff",
        "\u00a0",
        "é",
        "ß",
        "ſ",
        "K",
        "İ",
        "🎵",
        "中",
        "ё",
        "https://",
        "spotify:",
        "open.spotify.com/",
        "track/",
        "spotify.link/",
        ".com",
        T,
        P,
    ]
    for _ in range(300):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 400)))
        for result in parse_links(text):
            if isinstance(result, SpotifyRef):
                assert is_spotify_id(result.id)
                assert parse_link(result.url) == result
            elif isinstance(result, RejectedLink):
                assert 0 < len(result.text) <= 80
                assert result.reason
            else:
                assert parse_link(result.url) == result
