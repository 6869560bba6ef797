"""Ranks search candidates against a Spotify track. Pure: plain data in, plain data out.

A wrong song is worse than no song: a candidate is acceptable only when its title, its artist and its
duration all agree with the track and it is not a version the track does not ask for (live, remix,
cover, karaoke, sped up, ...). Evidence that can stand in for a missing artist match: the track's
ISRC found it, or (for non-Latin artist spellings) the album name agrees. Among acceptable
candidates official audio ("song" results) ranks above videos, ISRC hits above text-search hits.

Text is compared twice, as written (case-folded, punctuation dropped) and transliterated to ASCII
(anyascii), and the better of the two counts: "Потап и Настя" meets "Potap & Nastya", "Zółtański"
meets "Żółtański". A name of only punctuation or symbols (the band "!!!", the title "..") is compared
as written. Video titles are matched segment by segment ("Artist - Title | Channel") and with
the artist names taken out, because uploaders put the artist in the title.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from anyascii import anyascii
from rapidfuzz import fuzz

from pipeline.models import Candidate, Track

log = logging.getLogger(__name__)

ACCEPT_THRESHOLD = 0.75  # below: not acceptable ("no confident match" when nothing is)
CONCLUSIVE_SCORE = 0.93  # at or above: searching further cannot find anything better

TITLE_GATE = 0.85  # title similarity below this: a different song
ARTIST_GATE = 0.6  # artist evidence below this: a different performer (a cover) or unknown
GATED_SCORE_CAP = 0.6  # what a candidate that fails a gate can score at most
DURATION_GAP_CAP = 0.3  # ... and one whose duration is far off

WEIGHT_TITLE, WEIGHT_ARTIST, WEIGHT_DURATION = 0.4, 0.3, 0.3
BASE_SCALE = 0.9  # the base score leaves room for the bonuses below
SONG_BONUS = 0.05
ISRC_BONUS = 0.05
ALBUM_BONUS = 0.03
FEATURED_BONUS = 0.03
VERSION_PENALTY = 0.35  # a version the track does not ask for
MISSING_VERSION_PENALTY = 0.3  # the track asks for a version (live, remix...) the candidate is not
UNEXPLAINED_QUALIFIER_PENALTY = 0.25  # "(just SZA)": a qualifier the track's title does not explain


# --- text ---------------------------------------------------------------------------------------

_APOSTROPHES = re.compile(r"['’‘`´ʼ׳״\"]")  # dropped, not spaced: "don't" = "dont", "י'א" = 'י"א'
_NON_WORD = re.compile(r"[\W_]+")


def words(text: str) -> str:
    """Case-folded words separated by single spaces; "&" reads "and"; punctuation is dropped."""
    text = unicodedata.normalize("NFKC", text).casefold().replace("&", " and ")
    return _NON_WORD.sub(" ", _APOSTROPHES.sub("", text)).strip()


@dataclass(frozen=True)
class Folded:
    """A text as words in its own script and transliterated to ASCII."""

    raw: str
    ascii: str

    def __bool__(self) -> bool:
        return bool(self.raw or self.ascii)


@lru_cache(maxsize=8192)
def fold(text: str) -> Folded:
    """A name made only of punctuation or symbols ("!!!", "..", "÷") has no words: then the symbols are the name,
    compared case-folded without whitespace, so that it can still meet itself."""
    folded = Folded(words(text), words(anyascii(unicodedata.normalize("NFKC", text))))
    if folded:
        return folded
    symbols = "".join(unicodedata.normalize("NFKC", text).casefold().split())
    return Folded(symbols, symbols)


def _ratio(a: str, b: str) -> float:
    if not a or not b:
        return 0.0
    return max(fuzz.ratio(a, b), fuzz.token_sort_ratio(a, b)) / 100


def similarity(a: Folded, b: Folded) -> float:
    """0..1; the better of the raw and the transliterated comparison."""
    return max(_ratio(a.raw, b.raw), _ratio(a.ascii, b.ascii))


def _has_words(haystack: str, needle: str) -> bool:
    return bool(needle) and re.search(rf"(?<!\w){re.escape(needle)}(?!\w)", haystack) is not None


def contains(haystack: Folded, needle: Folded) -> bool:
    """Whether `needle` occurs as whole words in `haystack` (either script)."""
    if len(needle.raw) > 1 and _has_words(haystack.raw, needle.raw):
        return True
    return len(needle.ascii) > 2 and _has_words(haystack.ascii, needle.ascii)


def _drop_words(text: str, needle: str) -> str:
    return " ".join(re.sub(rf"(?<!\w){re.escape(needle)}(?!\w)", " ", text).split()) if needle else text


def without(text: Folded, needles: Iterable[Folded]) -> Folded:
    """`text` with every whole-word occurrence of the needles removed."""
    raw, ascii_ = text.raw, text.ascii
    for needle in needles:
        raw, ascii_ = _drop_words(raw, needle.raw), _drop_words(ascii_, needle.ascii)
    return Folded(raw, ascii_)


def is_latin(text: str) -> bool:
    """Whether every letter is Latin (with or without accents): comparable with other Latin text."""
    return all(ch.isascii() or "LATIN" in unicodedata.name(ch, "") for ch in text if ch.isalpha())


# --- titles -------------------------------------------------------------------------------------

_OPEN, _CLOSE = "([{【「『〔", ")]}】」』〕"
_BRACKETED = re.compile(rf"[{re.escape(_OPEN)}]([^{re.escape(_OPEN + _CLOSE)}]*)[{re.escape(_CLOSE)}]")
# "mit" is how YouTube Music writes "with" for German-speaking listeners.
_FEAT_IN_BRACKETS = re.compile(r"^\s*(?:feat\.?|ft\.?|featuring|with|mit|prod\.?(?:\s+by)?)\s+(.+)$", re.IGNORECASE)
_FEAT_TRAILING = re.compile(r"\s+(?:feat\.?|ft\.?|featuring)\s+(.+?)(?=\s+[-–—|]\s+|$)", re.IGNORECASE)
_SEGMENT_SEPARATORS = re.compile(r"\s+[-–—~]\s*|\s*[-–—~]\s+|\s*[|ǀ•·]\s*|\s*//\s*|/")
# A Spotify " - suffix" that names a version rather than being part of the title.
_QUALIFIER_SUFFIX = re.compile(
    r"\s+-\s+(?=[^-]*\b(?:remaster(?:ed)?|live|edit|version|mix|mono|stereo|from|recorded|remix|acoustic|demo|"
    r"instrumental|single|bonus|original|session|\d{4})\b)[^-]*$",
    re.IGNORECASE,
)
_NAME_SPLIT = re.compile(
    r"\s*(?:,|&|/|\+|;|・|、|\s-\s|\bx\b|\band\b|\bund\b|\bfeat\.?|\bft\.?|\bwith\b)\s*", re.IGNORECASE
)
_CHANNEL_NOISE = re.compile(r"\s*-\s*topic$|vevo$|\bofficial\b", re.IGNORECASE)


# Words a bracketed qualifier may use without naming another version: "(Official Video)",
# "(2017 Master)", "(Single Version)". Any other word the track does not use ("(just SZA)",
# "(Switching Vocals)", "(Lower Key)") suggests a different version.
NEUTRAL_QUALIFIER_WORDS = frozenset(
    """official video audio music musik lyric lyrics lyrical visualizer visualiser hd hq 4k uhd 1080p 720p remaster
    remastered remasterizado master mastered explicit clean radio edit single album version original mix stereo mono
    mv clip videoclip full song track ost soundtrack bonus deluxe digital high quality new color coded with and the
    by of from prod produced feat ft""".split()  # noqa: SIM905 - a word list reads better as text
)


@dataclass(frozen=True)
class Title:
    """A title split into what identifies the song and what qualifies it."""

    core: Folded  # without brackets, " - version" suffixes and featured artists
    full: Folded  # without featured artists only
    featured: tuple[str, ...]


def split_featured(title: str) -> tuple[str, tuple[str, ...]]:
    """Title without "(feat. X)", "(with X)", " ft. X" parts, and the names found there."""
    featured: list[str] = []

    def bracket(match: re.Match[str]) -> str:
        inner = _FEAT_IN_BRACKETS.match(match.group(1))
        if inner is None:
            return match.group(0)
        featured.extend(name for name in _NAME_SPLIT.split(inner.group(1)) if name.strip())
        return " "

    rest = _BRACKETED.sub(bracket, title)
    trailing = _FEAT_TRAILING.search(rest)
    if trailing:
        featured.extend(name for name in _NAME_SPLIT.split(_BRACKETED.sub(" ", trailing.group(1))) if name.strip())
        rest = rest[: trailing.start()] + rest[trailing.end() :]
    return " ".join(rest.split()), tuple(featured)


def parse_title(title: str, *, spotify_suffixes: bool = False) -> Title:
    """`spotify_suffixes`: also treat " - Remastered 2011"-style suffixes as qualifiers (Spotify's style)."""
    rest, featured = split_featured(title)
    core = _BRACKETED.sub(" ", rest)
    if spotify_suffixes:
        core = _QUALIFIER_SUFFIX.sub("", core)
    core_folded = fold(core)
    full = fold(rest)
    return Title(core_folded if core_folded else full, full, featured)


def unexplained_qualifiers(title: str, explained: frozenset[str]) -> list[str]:
    """Words in the candidate's bracketed qualifiers that are neither neutral nor used by the track."""
    found: list[str] = []
    for match in _BRACKETED.finditer(title):
        inner = match.group(1)
        if _FEAT_IN_BRACKETS.match(inner) or re.match(r"^\s*from\b", inner, re.IGNORECASE):
            continue  # featured artists, or the film/show the song is from
        for word in words(inner).split():
            if word.isdigit() or word in NEUTRAL_QUALIFIER_WORDS or word in explained:
                continue
            if words(anyascii(word)) not in explained:
                found.append(word)
    return found


def title_variants(title: str, remove: Sequence[Folded]) -> list[Title]:
    """Readings of a candidate title: whole, each "A - B | C" segment, each with the artist names removed."""
    rest, featured = split_featured(title)
    pieces = [rest, *(p for p in _SEGMENT_SEPARATORS.split(rest) if p.strip() and p.strip() != rest)]
    variants: list[Title] = []
    for piece in pieces:
        core, full = fold(_BRACKETED.sub(" ", piece)), fold(piece)
        variants.append(Title(core or full, full, featured))
        core_less, full_less = without(core, remove), without(full, remove)
        if full_less and full_less != full:
            variants.append(Title(core_less or full_less, full_less, featured))
    return variants


def title_similarity(wanted: Title, variants: Sequence[Title]) -> tuple[float, float]:
    """(core similarity, full similarity): the best over the candidate's readings."""
    core = max((similarity(wanted.core, v.core) for v in variants), default=0.0)
    full = max((similarity(wanted.full, v.full) for v in variants), default=0.0)
    return core, full


# --- artists ------------------------------------------------------------------------------------


def artist_names(artist: str) -> list[Folded]:
    """The names in a credit like "A, B & C", "A und B", "אבי - Avi", plus the credit itself."""
    cleaned = _CHANNEL_NOISE.sub("", artist).strip()
    parts = {cleaned, *(p for p in cleaned.split(",")), *_NAME_SPLIT.split(cleaned)}
    return [f for f in (fold(p) for p in parts if p and p.strip()) if f]


def name_similarity(a: Folded, b: Folded) -> float:
    """Like `similarity`, but "Bedoes" meets "Bedoes 2115" (one name's words inside the other's)."""
    score = similarity(a, b)
    for x, y in ((a.raw, b.raw), (a.ascii, b.ascii)):
        shorter, longer = sorted((x, y), key=len)
        if len(shorter) >= 4 and _has_words(longer, shorter):
            score = max(score, 0.9)
    return score


def artist_matches(wanted: Sequence[Folded], names: Sequence[Folded], title: Folded | None) -> list[float]:
    """For each wanted artist, how well the candidate credits it (or, for videos, names it in the title)."""
    scores = []
    for artist in wanted:
        score = max((name_similarity(artist, name) for name in names), default=0.0)
        if title is not None and contains(title, artist):
            score = max(score, 0.9)
        scores.append(score)
    return scores


# --- duration -----------------------------------------------------------------------------------


def duration_gap_limit(duration_s: float) -> float:
    """Beyond this many seconds off, it is another edit or a video with an intro: rejected."""
    return max(10.0, 0.05 * duration_s)


def duration_score(wanted_s: float | None, found_s: float | None) -> float | None:
    """1.0 within 2 s, falling to 0.3 at the gap limit, 0.0 beyond; None when either is unknown."""
    if not wanted_s or found_s is None:
        return None
    gap = abs(wanted_s - found_s)
    limit = duration_gap_limit(wanted_s)
    if gap <= 2:
        return 1.0
    if gap <= 6:
        return 1.0 - (gap - 2) * 0.05
    if gap <= limit:
        return 0.8 - (gap - 6) / max(limit - 6, 1e-9) * 0.5
    return 0.0


# --- versions -----------------------------------------------------------------------------------

VERSION_MARKERS: dict[str, re.Pattern[str]] = {
    name: re.compile(pattern)
    for name, pattern in {
        "live": r"\b(?:live|unplugged|en vivo|ao vivo)\b",
        "remix": r"\b(?:remix|rmx|remixed|bootleg|vip mix)\b",
        "cover": r"\b(?:cover|covers|tribute|made famous by|originally performed by|in the style of|as made famous)\b",
        "karaoke": r"\b(?:karaoke|backing tracks?|sing ?along)\b",
        "instrumental": r"\b(?:instrumental|instrumentals|no vocals|minus one|acapella|a cappella)\b",
        "acoustic": r"\bacoustic\b",
        "sped up": r"\b(?:sped up|speed up|speedup|nightcore)\b",
        "slowed": r"\b(?:slowed|reverb)\b",
        "8d": r"\b8d\b",
        "hours": r"\b\d+\s*(?:hour|hours|hrs?)\b",
        "extended": r"\bextended\b",
        "reaction": r"\b(?:reaction|reacts?|reacting)\b",
        "mashup": r"\b(?:mashup|mash up)\b",
        "demo": r"\bdemo\b",
        "lofi": r"\blo ?fi\b",
        "bass boosted": r"\bbass ?boost(?:ed)?\b",
        "ringtone": r"\bringtones?\b",
    }.items()
}


def version_markers(text: Folded) -> frozenset[str]:
    """The kinds of version (live, remix, cover...) a text names."""
    return frozenset(
        name for name, pattern in VERSION_MARKERS.items() if pattern.search(text.raw) or pattern.search(text.ascii)
    )


# --- scoring ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScoredCandidate:
    candidate: Candidate
    score: float  # 0..1
    reasons: tuple[str, ...] = ()

    @property
    def acceptable(self) -> bool:
        return self.score >= ACCEPT_THRESHOLD


@dataclass(frozen=True)
class Wanted:
    """What the track asks for, prepared once for all its candidates."""

    title: Title
    artists: tuple[Folded, ...]
    album: Folded
    album_is_title: bool  # a single named after its song: the album proves nothing
    duration_s: float | None
    requested_versions: frozenset[str]  # named in the title: the candidate must be that version
    tolerated_versions: frozenset[str]  # named in title, album or artists: no penalty
    explained_words: frozenset[str]  # words of title, album and artists (as written and transliterated)
    artist_scripts: frozenset[bool]  # is_latin() of each artist name

    @classmethod
    def of(cls, track: Track) -> Wanted:
        title = parse_title(track.title, spotify_suffixes=True)
        album = parse_title(track.album, spotify_suffixes=True).core if track.album else Folded("", "")
        requested = version_markers(fold(track.title))
        context = fold(" ".join([track.title, track.album, *track.artists]))
        return cls(
            title=title,
            artists=tuple(f for f in (fold(a) for a in track.artists) if f),
            album=album,
            album_is_title=bool(album) and similarity(album, title.core) >= 0.9,
            duration_s=track.duration_ms / 1000 if track.duration_ms else None,
            requested_versions=requested,
            tolerated_versions=requested | version_markers(context),
            explained_words=frozenset(context.raw.split()) | frozenset(context.ascii.split()),
            artist_scripts=frozenset(is_latin(a) for a in track.artists),
        )


def score(track: Track, candidate: Candidate) -> ScoredCandidate:
    return score_wanted(Wanted.of(track), candidate)


def score_wanted(wanted: Wanted, candidate: Candidate) -> ScoredCandidate:
    names = artist_names(candidate.artist)
    is_song = candidate.result_type == "song"
    variants = title_variants(candidate.title, [*wanted.artists, *names])
    core_sim, full_sim = title_similarity(wanted.title, variants)
    title = 0.85 * core_sim + 0.15 * full_sim
    reasons = [f"title {core_sim:.2f}"]

    # Song credits are label metadata; a video's uploader is often a fan channel, so its title counts too.
    per_artist = artist_matches(wanted.artists, names, None if is_song else fold(candidate.title))
    artist = max(per_artist[0], 0.95 * max(per_artist[1:], default=0.0)) if per_artist else 0.0
    reasons.append(f"artist {artist:.2f}")
    # Names in different scripts ("Tuna" / "טונה") cannot be compared: other evidence may vouch instead.
    artist_unknown = not any(is_latin(n.raw) in wanted.artist_scripts for n in names)

    album = similarity(wanted.album, parse_title(candidate.album).core) if candidate.album and wanted.album else 0.0
    duration = duration_score(wanted.duration_s, candidate.duration_s)
    if duration is None:
        reasons.append("duration unknown")
    else:
        reasons.append(f"Δ{abs((wanted.duration_s or 0) - (candidate.duration_s or 0)):.0f}s")
    isrc_agrees = candidate.from_isrc_query and core_sim >= TITLE_GATE and duration is not None and duration >= 0.9
    if artist_unknown and artist < 0.8 and (isrc_agrees or (album >= 0.9 and not wanted.album_is_title)):
        artist = 0.8
        reasons.append("ISRC vouches for artist" if isrc_agrees else "album vouches for artist")

    total = BASE_SCALE * (
        WEIGHT_TITLE * title + WEIGHT_ARTIST * artist + WEIGHT_DURATION * (0.5 if duration is None else duration)
    )
    if is_song:
        total += SONG_BONUS
        reasons.append("song")
    if isrc_agrees:
        total += ISRC_BONUS
        reasons.append("ISRC hit")
    if album >= 0.9:
        total += ALBUM_BONUS
        reasons.append("album")
    featured_found = _featured_found(wanted, per_artist, variants)
    if featured_found:
        total += FEATURED_BONUS * featured_found
        reasons.append(f"feat {featured_found:.0%}")

    offered = version_markers(fold(" ".join([candidate.title, candidate.artist, candidate.album or ""])))
    unrequested = sorted(offered - wanted.tolerated_versions)
    missing = sorted(wanted.requested_versions - offered)
    if unrequested:
        total -= VERSION_PENALTY
        reasons.append("unrequested " + "/".join(unrequested))
    elif unexplained := unexplained_qualifiers(candidate.title, wanted.explained_words):
        total -= UNEXPLAINED_QUALIFIER_PENALTY
        reasons.append("unexplained qualifier " + " ".join(unexplained))
    if missing:
        total -= MISSING_VERSION_PENALTY
        reasons.append("not the " + "/".join(missing) + " version")

    if core_sim < TITLE_GATE:
        total = min(total, GATED_SCORE_CAP)
        reasons.append("title differs")
    if artist < ARTIST_GATE:
        total = min(total, GATED_SCORE_CAP)
        reasons.append("artist not found")
    if duration == 0.0:
        total = min(total, DURATION_GAP_CAP)
        reasons.append("duration far off")
    return ScoredCandidate(candidate, round(min(max(total, 0.0), 1.0), 4), tuple(reasons))


def _featured_found(wanted: Wanted, per_artist: Sequence[float], variants: Sequence[Title]) -> float:
    """Share of the extra (non-best) Spotify artists the candidate names: helps, never required."""
    if len(wanted.artists) < 2:
        return 0.0
    named = [fold(n) for v in variants[:1] for n in v.featured]
    found = 0
    best = max(range(len(per_artist)), key=per_artist.__getitem__)
    for index, artist in enumerate(wanted.artists):
        if index == best:
            continue
        if per_artist[index] >= 0.8 or any(name_similarity(artist, n) >= 0.8 for n in named):
            found += 1
    return found / (len(wanted.artists) - 1)


def rank(track: Track, candidates: Iterable[Candidate]) -> list[ScoredCandidate]:
    """All candidates, best first; equal scores keep the providers' order."""
    wanted = Wanted.of(track)
    return sorted((score_wanted(wanted, c) for c in candidates), key=lambda s: s.score, reverse=True)


def conclusive(track: Track, candidates: Iterable[Candidate]) -> bool:
    """Whether searching further is wasted (providers' early exit): the best is near-certain official audio.

    A near-certain video is not enough: a later search may still find the same recording as a song.
    """
    ranked = rank(track, candidates)
    return bool(ranked) and ranked[0].score >= CONCLUSIVE_SCORE and ranked[0].candidate.result_type == "song"


def describe(track: Track, ranked: Sequence[ScoredCandidate], runners_up: int = 3) -> str:
    """One log line: the decision, its score and reasons, and the next best."""

    def one(item: ScoredCandidate) -> str:
        return f"{item.candidate.url} {item.score:.2f} ({', '.join(item.reasons)})"

    head = f"{track.spotify_id} {track.display_name!r}: "
    if not ranked:
        return head + "no candidates"
    verdict = f"pick {one(ranked[0])}" if ranked[0].acceptable else f"no confident match, best {one(ranked[0])}"
    others = "; ".join(one(item) for item in ranked[1 : 1 + runners_up])
    return head + verdict + (f" | runners-up: {others}" if others else "")


def accepted(track: Track, candidates: Iterable[Candidate]) -> list[Candidate]:
    """The candidates good enough to download, best first; empty means "no confident match"."""
    ranked = rank(track, candidates)
    log.debug("match %s", describe(track, ranked))
    return [item.candidate for item in ranked if item.acceptable]
