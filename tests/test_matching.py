"""The matcher: pure functions, table-driven. Real-world shapes (titles, credits) come from recorded
YouTube Music answers; the end-to-end cases live in tests/test_youtube_music.py and bench/matching.py.
"""

from __future__ import annotations

import itertools
import logging

import pytest

from pipeline import matching
from pipeline.matching import (
    ACCEPT_THRESHOLD,
    CONCLUSIVE_SCORE,
    Folded,
    accepted,
    artist_names,
    conclusive,
    duration_score,
    fold,
    is_latin,
    parse_title,
    rank,
    score,
    split_featured,
    unexplained_qualifiers,
    version_markers,
    words,
)
from pipeline.models import Candidate, Track


def track(
    title: str = "Down",
    artists: tuple[str, ...] = ("Jay Sean", "Lil Wayne"),
    duration: float = 212.5,
    album: str = "All Or Nothing",
    isrc: str | None = "USCM50900094",
) -> Track:
    return Track(
        spotify_id="6cmm1LMvZdB5zsCwX5BjqE",
        title=title,
        artists=list(artists),
        album=album,
        duration_ms=round(duration * 1000),
        isrc=isrc,
    )


_IDS = itertools.count()


def cand(
    title: str = "Down",
    artist: str = "Jay Sean",
    duration: float | None = 213,
    kind: str = "song",
    album: str | None = None,
    isrc: bool = False,
    url: str | None = None,
) -> Candidate:
    return Candidate(
        url=url or f"https://music.youtube.com/watch?v=c{next(_IDS):010d}",
        title=title,
        artist=artist,
        duration_s=duration,
        result_type=kind,  # type: ignore[arg-type]
        album=album,
        from_isrc_query=isrc,
        source="test",
    )


# --- one candidate: acceptable or not --------------------------------------------------------------

ACCEPTABLE = [
    ("exact song", track(), cand()),
    ("song crediting every artist", track(), cand(artist="Jay Sean, Lil Wayne")),
    ("title carries the feat part", track(), cand(title="Down (feat. Lil Wayne)")),
    ("title carries a German 'mit' part", track(), cand(title="Down (mit Lil Wayne)")),
    ("credit names only the featured artist", track(), cand(artist="Lil Wayne")),
    ("official music video by the artist", track(), cand(title="Down", kind="video", duration=214)),
    (
        "fan upload, artist in title",
        track(),
        cand(title="Jay Sean - Down (Official Video)", artist="fan1", kind="video"),
    ),
    ("lyrics video", track(), cand(title="Jay Sean ft. Lil Wayne - Down [Lyrics]", artist="Lyric Hub", kind="video")),
    ("pipe-separated upload", track(), cand(title="Down | Jay Sean", artist="Some Channel", kind="video")),
    ("VEVO channel", track(), cand(title="Down", artist="JaySeanVEVO", kind="video")),
    ("Topic channel", track(), cand(title="Down", artist="Jay Sean - Topic", kind="video")),
    (
        "remaster qualifier",
        track("Bigmouth Strikes Again - 2011 Remaster", ("The Smiths",), 193.3, "The Queen Is Dead"),
        cand("Bigmouth Strikes Again (2017 Master)", "The Smiths", 192),
    ),
    (
        "spotify remaster, plain upload",
        track("For Whom The Bell Tolls (Remastered)", ("Metallica",), 310, "Ride"),
        cand("For Whom The Bell Tolls", "Metallica", 310),
    ),
    (
        "live asked, live given",
        track("Piano Man - Live", ("Billy Joel",), 330, "Live"),
        cand("Piano Man (Live)", "Billy Joel", 331),
    ),
    (
        "remix asked, remix given",
        track("On My Way - Da Tweekaz Remix", ("Alan Walker",), 205, "OMW"),
        cand("On My Way (Da Tweekaz Remix)", "Alan Walker", 205),
    ),
    (
        "both in Cyrillic",
        track("Чумачечая весна", ("Потап и Настя",), 193.7, "Всё пучком"),
        cand("Чумачечая весна", "Потап и Настя", 194),
    ),
    (
        "Cyrillic track, romanised upload",
        track("Чумачечая весна", ("Потап и Настя",), 193.7, "Всё пучком"),
        cand("Potap i Nastya - Chumachechaya vesna", "uploader", 194, kind="video"),
    ),
    (
        "romanised track, Cyrillic upload",
        track("Chumachechaya vesna", ("Potap & Nastya",), 193.7, "X"),
        cand("Чумачечая весна", "Потап и Настя", 194),
    ),
    ("kana track, romanised upload", track("さくら", ("Ikimono",), 300, "X"), cand("Sakura", "Ikimono", 300)),
    (
        "Hebrew title, bilingual credit",
        track("מחכה לך", ("Avi Aburomi",), 251.8, "מחכה לך"),
        cand("מחכה לך", "אבי אבורומי - Avi Aburomi", 252),
    ),
    (
        "Hebrew quote marks differ",
        track("י'א 2", ("Tuna",), 176.4, "טונהפארק"),
        cand('י"א 2', "Tuna", 177, kind="video"),
    ),
    (
        "artist in Hebrew, the album vouches",
        track("י'א 2", ("Tuna",), 176.4, "טונהפארק"),
        cand("י'א 2", "טונה", 177, album="טונהפארק"),
    ),
    (
        "artist in Hebrew, the ISRC vouches",
        track("האסל", ("Ortega", "Tuna"), 161, "זהב שחור"),
        cand("האסל (feat. טונה)", "אורטגה", 161, isrc=True),
    ),
    (
        "mathematical-alphabet title",
        track("spy?", ("WHOKILLEDXIX",), 153.9, "19"),
        cand("𝘞𝘏𝘖𝘒𝘐𝘓𝘓𝘌𝘋𝘟𝘐𝘟 - 𝘴𝘱𝘺?", "someone", 154, kind="video"),
    ),
    (
        "accents dropped",
        track("67-410", ("Mata", "Pedro", "Maurycy Żółtański"), 311, "Młody Matczak"),
        cand("67-410", "Maurycy Zoltanski", 311),
    ),
    (
        "German 'und' credit",
        track("OWOCE 33", ("Fukaj", "Mata"), 195.3, "OWOCE 33"),
        cand("OWOCE 33", "Fukaj, Mata, charlie moncler und Pedro", 196),
    ),
    ("unknown candidate duration", track(), cand(duration=None)),
    ("unknown track duration", track(duration=0), cand()),
    ("5 s off", track(), cand(duration=217.5)),
    (
        "from a film",
        track("Let It Go", ("Idina Menzel",), 224, "Frozen"),
        cand('Let It Go (From "Frozen")', "Idina Menzel", 224),
    ),
    (
        "classical composer prefix",
        track(
            "Solomon, HWV 67: The Arrival of the Queen of Sheba", ("George Frideric Handel", "Trevor Pinnock"), 190, "X"
        ),
        cand(
            "Handel: Solomon, HWV 67: The Arrival of the Queen of Sheba", "Trevor Pinnock, George Frideric Handel", 191
        ),
    ),
    # Names of only punctuation or symbols have no words: compared as written.
    ("title of only dots, band of only '!'", track("..", ("!!!",), 200, ".."), cand("..", "!!!", 200)),
    ("band of only '!'", track("Heart Of Hearts", ("!!!",), 200, "Myth Takes"), cand("Heart Of Hearts", "!!!", 200)),
    ("title of one symbol", track("÷", ("Someone",), 200, "X"), cand("÷", "Someone", 200)),
    ("symbols, spaced differently", track("( )", ("Someone",), 200, "X"), cand("()", "Someone", 200)),
    ("fullwidth symbols", track("！！！", ("Someone",), 200, "X"), cand("!!!", "Someone", 200)),
]

REJECTED = [
    ("different song, same artist", track(), cand(title="Do You Remember")),
    ("similar title", track("Linked", ("Jim Yosef", "Anna Yvette"), 223, "NCS"), cand("Link", "Jim Yosef", 225)),
    ("cover by someone else", track(), cand(artist="Finn HP")),
    (
        "cover, credited in the title",
        track(),
        cand("Down (Made Famous by Jay Sean feat. Lil Wayne)", "Future Hit Makers", 219),
    ),
    (
        "karaoke",
        track(),
        cand("Down (Originally Performed by Jay Sean & Lil Wayne) [Vocal Version]", "Singer's Edge Karaoke", 214),
    ),
    ("karaoke channel", track(), cand("Down", "Sunfly Karaoke", 213)),
    ("karaoke album", track(), cand("Down", "Jay Sean", 213, album="Karaoke Platinum Hits")),
    ("live", track(), cand("Down (Live)")),
    ("live, in a dash suffix", track(), cand("Down - Live at Wembley", kind="video")),
    ("remix", track(), cand("Down (Jason Nevins Remix) (feat. Lil Wayne)")),
    ("instrumental", track(), cand("Down (Instrumental)")),
    ("acoustic", track(), cand("Down (Acoustic Version)")),
    ("sped up", track(), cand("Down (Sped Up)", kind="video", artist="edits")),
    ("nightcore", track(), cand("「Nightcore」Down - Jay Sean", kind="video", artist="NC")),
    ("slowed and reverb", track(), cand("Down (slowed + reverb)", kind="video", artist="Jay Sean")),
    ("8D", track(), cand("Jay Sean - Down (8D Audio)", kind="video", artist="8D Tunes")),
    ("1 hour loop", track(), cand("Jay Sean - Down 1 Hour", kind="video", artist="loops", duration=3600)),
    ("10 hours", track(), cand("Jay Sean - Down [10 HOURS]", kind="video", artist="loops", duration=213)),
    ("extended mix", track(), cand("Down (Extended Mix)")),
    ("reaction video", track(), cand("REACTION: Jay Sean - Down", kind="video", artist="Reactor")),
    ("mashup", track(), cand("Down x Ride It - Jay Sean (Mashup)", kind="video", artist="Jay Sean")),
    ("demo", track(), cand("Down (Demo)")),
    (
        "another edit the title names",
        track("Open Arms (feat. Travis Scott)", ("SZA", "Travis Scott"), 239.6, "SOS"),
        cand("Open Arms (just SZA)", "SZA", 242, kind="video", isrc=True),
    ),
    (
        "live asked, studio given",
        track("Piano Man - Live", ("Billy Joel",), 330, "Live"),
        cand("Piano Man", "Billy Joel", 331),
    ),
    (
        "remix asked, original given",
        track("On My Way - Da Tweekaz Remix", ("Alan Walker",), 205, "OMW"),
        cand("On My Way", "Alan Walker", 205),
    ),
    (
        "21 s longer",
        track("Last Christmas", ("Wham!",), 262.9, "LAST CHRISTMAS"),
        cand("Last Christmas (Single Version)", "Wham!", 284, isrc=True),
    ),
    (
        "music video with a long intro",
        track("Proper Sensi", ("JR Kenna", "Mr. Patze"), 184, "Proper Sensi"),
        cand("JR Kenna & Mr. Patze - Proper Sensi [Official Video 2022]", "Reggaeville", 210, kind="video"),
    ),
    (
        "ISRC result by another artist in the same script",
        track("OWOCE 33", ("Fukaj", "Mata"), 195.3, "OWOCE 33"),
        cand("SpangeBob - OWOCE 33 (prod. skalmar x patryk)", "SpangeBob - Topic", 195, kind="video", isrc=True),
    ),
    (
        "same title in a translation",
        track("מיליון דולר", ("Noa Kirel",), 173.4, "מיליון דולר"),
        cand("Million Dollar", "Dream Escape", 174, isrc=True),
    ),
    ("empty title", track(), cand(title="")),
    ("no credit, no title match", track(), cand(title="Track 1", artist="")),
    ("other symbols", track("!!!", ("Someone",), 200, "X"), cand("???", "Someone", 200)),
    ("one symbol more", track("..", ("Someone",), 200, "X"), cand("...", "Someone", 200)),
    ("a band of other symbols", track("Heart", ("!!!",), 200, "X"), cand("Heart", "???", 200)),
    ("symbol title, word candidate", track("..", ("!!!",), 200, "X"), cand("Song", "!!!", 200)),
]


@pytest.mark.parametrize(("case", "wanted", "candidate"), ACCEPTABLE, ids=[c[0] for c in ACCEPTABLE])
def test_acceptable(case: str, wanted: Track, candidate: Candidate) -> None:
    scored = score(wanted, candidate)
    assert scored.acceptable, f"{case}: {scored.score} {scored.reasons}"


@pytest.mark.parametrize(("case", "wanted", "candidate"), REJECTED, ids=[c[0] for c in REJECTED])
def test_rejected(case: str, wanted: Track, candidate: Candidate) -> None:
    scored = score(wanted, candidate)
    assert not scored.acceptable, f"{case}: {scored.score} {scored.reasons}"
    assert scored.score < ACCEPT_THRESHOLD


# --- two candidates: which one wins ----------------------------------------------------------------

SINATRA = track(
    "Have Yourself A Merry Little Christmas - Remastered 1999",
    ("Frank Sinatra",),
    206.6,
    "A Jolly Christmas From Frank Sinatra",
)
PREFERENCES = [
    ("official audio over the music video", track(), cand(), cand(kind="video")),
    ("official audio over a fan upload", track(), cand(), cand("Jay Sean - Down", "fan", kind="video")),
    ("ISRC hit over a text-search hit", track(), cand(isrc=True), cand()),
    ("closer duration", track(), cand(duration=212), cand(duration=218)),
    ("known duration over unknown", track(), cand(duration=213), cand(duration=None)),
    (
        "same album and qualifier",
        SINATRA,
        cand(
            "Have Yourself A Merry Little Christmas (Remastered 1999)",
            "Frank Sinatra",
            207,
            album="A Jolly Christmas From Frank Sinatra",
        ),
        cand("Have Yourself A Merry Little Christmas", "Frank Sinatra", 207, album="Christmas With The Rat Pack"),
    ),
    ("featured artist present", track(), cand("Down (feat. Lil Wayne)"), cand("Down")),
    ("main artist over a featured one", track(), cand(artist="Jay Sean"), cand(artist="Lil Wayne")),
    ("acceptable over rejected live", track(), cand(duration=220), cand("Down (Live)", duration=213)),
]


@pytest.mark.parametrize(("case", "wanted", "better", "worse"), PREFERENCES, ids=[c[0] for c in PREFERENCES])
def test_preference(case: str, wanted: Track, better: Candidate, worse: Candidate) -> None:
    assert score(wanted, better).score > score(wanted, worse).score
    assert [s.candidate for s in rank(wanted, [worse, better])] == [better, worse]


def test_featured_artists_help_but_their_absence_does_not_reject() -> None:
    wanted = track("Open Arms (feat. Travis Scott)", ("SZA", "Travis Scott"), 239.6, "SOS")
    without_feat = score(wanted, cand("Open Arms", "SZA", 240))
    with_feat = score(wanted, cand("Open Arms (feat. Travis Scott)", "SZA", 240))
    assert without_feat.acceptable
    assert with_feat.score > without_feat.score


def test_an_agreeing_isrc_song_is_near_certain() -> None:
    hit = score(track(), cand("Down (feat. Lil Wayne)", isrc=True))
    assert hit.score >= CONCLUSIVE_SCORE
    assert "ISRC hit" in hit.reasons


def test_an_isrc_result_that_disagrees_gets_no_credit() -> None:
    far = score(track(), cand("Down", duration=240, isrc=True))
    assert "ISRC hit" not in far.reasons
    assert not far.acceptable


def test_duration_gap_rejects_even_a_perfect_title() -> None:
    scored = score(track(), cand(duration=212.5 + 16))
    assert not scored.acceptable
    assert "duration far off" in scored.reasons


# --- rank / accepted / conclusive ------------------------------------------------------------------


def test_empty_candidates() -> None:
    assert rank(track(), []) == []
    assert accepted(track(), []) == []
    assert not conclusive(track(), [])


def test_accepted_keeps_only_acceptable_best_first() -> None:
    best, good, bad = cand(isrc=True), cand(kind="video"), cand("Down (Live)")
    assert accepted(track(), [bad, good, best]) == [best, good]


def test_equal_scores_keep_provider_order() -> None:
    first = cand(url="https://music.youtube.com/watch?v=aaaaaaaaaaa")
    second = cand(url="https://music.youtube.com/watch?v=bbbbbbbbbbb")
    assert [s.candidate for s in rank(track(), [first, second])] == [first, second]
    assert [s.candidate for s in rank(track(), [second, first])] == [second, first]


def test_conclusive_needs_near_certain_official_audio() -> None:
    assert conclusive(track(), [cand(isrc=True)])
    assert not conclusive(track(), [cand(kind="video", isrc=True)])  # a song may still turn up
    assert not conclusive(track(), [cand(duration=None)])
    assert not conclusive(track(), [cand("Down (Live)")])


def test_one_debug_line_per_track(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger=matching.__name__)
    best = cand(isrc=True, url="https://music.youtube.com/watch?v=DQ514qIthSc")
    accepted(track(), [best, cand("Down (Live)"), cand(artist="Finn HP")])
    assert len(caplog.records) == 1
    line = caplog.records[0].getMessage()
    assert "pick https://music.youtube.com/watch?v=DQ514qIthSc" in line
    assert "ISRC hit" in line and "runners-up" in line and "unrequested live" in line


def test_the_log_line_says_no_confident_match(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger=matching.__name__)
    assert accepted(track(), [cand(artist="Finn HP")]) == []
    assert "no confident match" in caplog.records[0].getMessage()


# --- the small pieces ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Don't Stop Me Now!", "dont stop me now"),
        ("AC/DC — T.N.T.", "ac dc t n t"),
        ("Simon & Garfunkel", "simon and garfunkel"),
        ('י"א 2', "יא 2"),
        ("י׳א 2", "יא 2"),
        ("  ＦＵＬＬＷＩＤＴＨ  ", "fullwidth"),
        ("𝙨𝙥𝙚𝙙 𝙪𝙥", "sped up"),
        ("STRASSE", "strasse"),
        ("", ""),
    ],
)
def test_words(text: str, expected: str) -> None:
    assert words(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("!!!", Folded("!!!", "!!!")),
        ("..", Folded("..", "..")),
        ("÷", Folded("÷", "÷")),
        ("( )", Folded("()", "()")),
        (" ! ! ! ", Folded("!!!", "!!!")),
        ("！？", Folded("!?", "!?")),
        ("Wham!", Folded("wham", "wham")),  # words are there: the punctuation is dropped as usual
        ("", Folded("", "")),
        ("   ", Folded("", "")),
    ],
)
def test_fold_keeps_names_of_only_symbols(text: str, expected: Folded) -> None:
    assert fold(text) == expected


def test_fold_transliterates() -> None:
    assert fold("Потап и Настя") == Folded("потап и настя", "potap i nastya")
    assert fold("Żółtański").ascii == "zoltanski"
    assert fold("さくら").ascii == "sakura"


@pytest.mark.parametrize(
    ("title", "rest", "featured"),
    [
        ("Down (feat. Lil Wayne)", "Down", ("Lil Wayne",)),
        ("STAY (with Justin Bieber)", "STAY", ("Justin Bieber",)),
        ("club2020 (mit Otsochodzi, CatchUp & Young Igi)", "club2020", ("Otsochodzi", "CatchUp", "Young Igi")),
        ("Song ft. A & B - Official Video", "Song - Official Video", ("A", "B")),
        ("Song [Ft A]", "Song", ("A",)),
        ("OWOCE 33 (prod. skalmar x patryk)", "OWOCE 33", ("skalmar", "patryk")),
        ("Dancing with Myself", "Dancing with Myself", ()),
        ("death bed (coffee for your head)", "death bed (coffee for your head)", ()),
    ],
)
def test_split_featured(title: str, rest: str, featured: tuple[str, ...]) -> None:
    assert split_featured(title) == (rest, featured)


@pytest.mark.parametrize(
    ("title", "core", "full"),
    [
        (
            "Have Yourself A Merry Little Christmas - Remastered 1999",
            "have yourself a merry little christmas",
            "have yourself a merry little christmas remastered 1999",
        ),
        ("Bigmouth Strikes Again - 2011 Remaster", "bigmouth strikes again", "bigmouth strikes again 2011 remaster"),
        ("Piano Man - Live", "piano man", "piano man live"),
        ("Ciepło - zimno", "ciepło zimno", "ciepło zimno"),  # a dash inside a title is kept
        ("Open Arms (feat. Travis Scott)", "open arms", "open arms"),
        ("(outro)", "outro", "outro"),  # nothing but a bracket: the bracket is the title
    ],
)
def test_parse_spotify_title(title: str, core: str, full: str) -> None:
    parsed = parse_title(title, spotify_suffixes=True)
    assert (parsed.core.raw, parsed.full.raw) == (core, full)


@pytest.mark.parametrize(
    ("credit", "includes"),
    [
        ("Fukaj, Mata, charlie moncler und Pedro", {"fukaj", "mata", "charlie moncler", "pedro"}),
        ("Ai Kamano und Kazuki Sugawara", {"ai kamano", "kazuki sugawara"}),
        ("אבי אבורומי - Avi Aburomi", {"avi aburomi", "אבי אבורומי"}),
        ("Jay Sean - Topic", {"jay sean"}),
        ("!!!", {"!!!"}),
        ("!!!, Someone", {"!!!", "someone"}),
        ("Eartha Kitt, Henri Rene and his Orchestra", {"eartha kitt", "henri rene and his orchestra"}),
    ],
)
def test_artist_names(credit: str, includes: set[str]) -> None:
    assert includes <= {name.raw for name in artist_names(credit)}


@pytest.mark.parametrize(
    ("wanted", "found", "expected"),
    [
        (200, 200, 1.0),
        (200, 202, 1.0),
        (200, 198, 1.0),
        (200, 206, 0.8),
        (200, 210, 0.3),
        (200, 211, 0.0),
        (400, 420, 0.3),  # 5 % of a long track is still the same edit
        (400, 421, 0.0),
        (200, None, None),
        (None, 200, None),
        (0, 200, None),
    ],
)
def test_duration_score(wanted: float | None, found: float | None, expected: float | None) -> None:
    result = duration_score(wanted, found)
    assert result == pytest.approx(expected) if expected is not None else result is None


@pytest.mark.parametrize(
    ("text", "markers"),
    [
        ("Down (Live at Wembley)", {"live"}),
        ("Alive", set()),
        ("Live Forever", {"live"}),
        ("Song (Jason Nevins Remix)", {"remix"}),
        ("Song (Made Famous by X)", {"cover"}),
        ("Song - Sunfly Karaoke", {"karaoke"}),
        ("Song (slowed + reverb)", {"slowed"}),
        ("Song (sped up) nightcore", {"sped up"}),
        ("Song 8D AUDIO", {"8d"}),
        ("Song 10 Hours", {"hours"}),
        ("Song (Extended Mix)", {"extended"}),
        ("Song (Official Video) [Lyrics]", set()),
        ("Piano Man", set()),
    ],
)
def test_version_markers(text: str, markers: set[str]) -> None:
    assert version_markers(fold(text)) == markers


def test_unexplained_qualifiers() -> None:
    explained = frozenset({"open", "arms", "sza", "travis", "scott", "outro"})
    assert unexplained_qualifiers("Open Arms (just SZA)", explained) == ["just"]
    assert unexplained_qualifiers("Open Arms (Official Video) [HD] (2022)", explained) == []
    assert unexplained_qualifiers("Open Arms (feat. Someone Else)", explained) == []
    assert unexplained_qualifiers('Open Arms (From "Some Film")', explained) == []
    assert unexplained_qualifiers("Open Arms (outro)", explained) == []


def test_is_latin() -> None:
    assert is_latin("Żółtański") and is_latin("Jay Sean") and is_latin("2115")
    assert not is_latin("טונה") and not is_latin("Потап") and not is_latin("菅原一樹")
