"""Turn whatever a user pastes into Spotify references, short links to resolve, or friendly refusals.

Pure code (no I/O) so that every form seen in the wild can be tested in a table. The text is cut into
link-like tokens by one regex whose quantifiers are all bounded and whose repeated parts are separated
by characters they cannot contain, so hostile input (10 kB of dots, thousands of links, odd unicode)
cannot make it backtrack.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Final, TypeGuard, cast, get_args
from urllib.parse import parse_qs, urlsplit

from pipeline.models import LinkKind

__all__ = [
    "REASON_ARTIST",
    "REASON_AUDIOBOOK",
    "REASON_LIKED_SONGS",
    "REASON_LOCAL_FILE",
    "REASON_OTHER_SPOTIFY_PAGE",
    "REASON_PODCAST",
    "REASON_PROFILE",
    "REASON_SHORT_LINK_INCOMPLETE",
    "SHORT_LINK_HOSTS",
    "ParsedLink",
    "RejectedLink",
    "ShortLink",
    "SpotifyRef",
    "is_spotify_host",
    "is_spotify_id",
    "malformed_reason",
    "not_spotify_reason",
    "parse_link",
    "parse_links",
]


@dataclass(frozen=True)
class SpotifyRef:
    """A track, album or playlist we can work on."""

    kind: LinkKind
    id: str

    @property
    def url(self) -> str:
        return f"https://open.spotify.com/{self.kind}/{self.id}"

    @property
    def uri(self) -> str:
        return f"spotify:{self.kind}:{self.id}"


@dataclass(frozen=True)
class ShortLink:
    """A spotify.link short link: only a network round trip (see `pipeline.shortlinks`) tells what it is."""

    url: str


@dataclass(frozen=True)
class RejectedLink:
    """Something link-like we cannot use; `reason` is one sentence the user can act on."""

    text: str
    reason: str


ParsedLink = SpotifyRef | ShortLink | RejectedLink

REASON_ARTIST: Final = (
    "Artist links aren't supported; send a link to one of the artist's albums, tracks or playlists instead."
)
REASON_PODCAST: Final = "Podcasts aren't supported, only music; send a link to a track, album or playlist."
REASON_AUDIOBOOK: Final = "Audiobooks aren't supported, only music; send a link to a track, album or playlist."
REASON_PROFILE: Final = "That's a Spotify user profile; open one of its playlists and send that link instead."
REASON_LIKED_SONGS: Final = (
    "Liked Songs are private to your account; add them to a playlist and send that playlist's link."
)
REASON_LOCAL_FILE: Final = (
    "That's a local file that lives only on your device; send a Spotify track, album or playlist link instead."
)
REASON_OTHER_SPOTIFY_PAGE: Final = (
    "That Spotify page isn't a track, album or playlist; open the music you want and use Share → Copy link."
)
REASON_SHORT_LINK_INCOMPLETE: Final = (
    "That spotify.link short link looks incomplete; copy it again with Share → Copy link."
)


def malformed_reason(kind: str) -> str:
    return f"That Spotify {kind} link looks cut off or mistyped; copy it again with Share → Copy link."


def not_spotify_reason(host: str | None) -> str:
    what = f"That {host} link" if host else "That link"
    return f"{what} isn't from Spotify; send a link to a Spotify track, album or playlist."


_KINDS: Final = frozenset(get_args(LinkKind))
_MAX_TEXT: Final = 80
# A Spotify id is a 128-bit number in base62 (0-9a-zA-Z), always 22 digits: 62**21 * 8 > 2**128, so only 0-7 lead.
_ID: Final = re.compile(r"[0-7][0-9A-Za-z]{21}")
_SHORT_CODE: Final = re.compile(r"[0-9A-Za-z_-]{1,64}")
_INTL_PREFIX: Final = re.compile(r"intl-[A-Za-z]{2,3}(?:[-_][A-Za-z]{2,4})?")
_EMBED_PREFIXES: Final = frozenset({"embed", "embed-podcast"})
# Hosts whose paths name Spotify entities; other *.spotify.com hosts (support., developer., …) are other pages.
_ENTITY_HOSTS: Final = frozenset(
    {"open.spotify.com", "play.spotify.com", "embed.spotify.com", "www.spotify.com", "spotify.com"}
)
SHORT_LINK_HOSTS: Final = frozenset({"spotify.link", "spotify.app.link"})  # only a request tells where they lead
_HOST_LABEL: Final = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_MAX_HOST: Final = 253
# A bare "word.word" is only a link if it ends in a TLD people actually paste; this keeps "e.g.", "node.js",
# "file.mp3" or "hello.world" out while still catching youtube.com, youtu.be, t.me, music.apple.com, …
_COMMON_TLD_NAMES = """com net org info biz io co me be ly fm tv app dev link page site online xyz ru ua by kz de
uk fr es nl pl pt br jp cn kr us ca au nz eu ch se fi dk ie cz gl gg su tr il mx ar cl"""
_COMMON_TLDS: Final = frozenset(_COMMON_TLD_NAMES.split())
_TRAILING_PUNCTUATION: Final = ".,:;!?_~"

# ASCII URL characters minus the ones that close or quote a URL in prose or markdown: " ' < > ( ) [ ] { } * ` | \ ^.
# Any other non-ASCII character (CJK punctuation, emoji, Cyrillic glued after the link) ends a token too...
_URL_CHAR = r"[!#$%&+,\-./0-9:;=?@A-Z_a-z~]"
# ... except that letters and digits of any script belong to the host (up to the path) after "https://": a host
# spelled with look-alikes ("оpen.spotify.com", Cyrillic о) is a whole host, not Spotify, not "pen.spotify.com".
_AUTHORITY_CHAR = r"[!$%&+,\-.0-9:;=@A-Z_a-z~]|[^\W\x00-\x7f]"
# Stops before a second "http(s)://" so links glued together ("…/track/A,https://…") split.
_NOT_A_NEW_URL = r"(?!(?i:https?)://)"
_URL_AUTHORITY = rf"(?:{_NOT_A_NEW_URL}(?:{_AUTHORITY_CHAR})){{0,255}}"
_URL_BODY = rf"(?:{_NOT_A_NEW_URL}{_URL_CHAR}){{0,2000}}"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_TOKEN: Final = re.compile(
    rf"""
    (?P<uri> (?<![A-Za-z0-9]) (?i:spotify) (?: : [A-Za-z0-9._%~+\-]{{0,250}} ){{2,9}} )
  | (?P<url> (?i:https?) :// (?= {_URL_CHAR} | [^\W\x00-\x7f] ) {_URL_AUTHORITY} {_URL_BODY} )
  | (?P<bare> (?<![A-Za-z0-9.@\-]) (?: {_LABEL} \. ){{1,10}} [A-Za-z]{{2,24}} (?![A-Za-z0-9\-])
              (?: :[0-9]{{1,5}} )? (?: [/?\#] {_URL_BODY} )? )
    """,
    re.VERBOSE,
)


def parse_links(text: str, *, limit: int | None = None) -> list[ParsedLink]:
    """Every link-like token in `text`, in order, exact duplicates dropped.

    Stops after `limit` results: ask for one more than you allow to learn that there were too many.
    """
    if limit is not None and limit <= 0:
        return []
    results: list[ParsedLink] = []
    seen: set[ParsedLink] = set()
    for match in _TOKEN.finditer(_without_format_characters(text)):
        parsed = _classify(match)
        if parsed is None or parsed in seen:
            continue
        seen.add(parsed)
        results.append(parsed)
        if limit is not None and len(results) >= limit:
            break
    return results


def _without_format_characters(text: str) -> str:
    """Format characters (Unicode category Cf: zero-width spaces and joiners, direction marks, soft hyphens,
    invisible operators, BOMs...) are invisible when pasted, but would cut a link short."""
    if text.isascii():
        return text
    return "".join(ch for ch in text if unicodedata.category(ch) != "Cf")


def parse_link(text: str) -> ParsedLink | None:
    """The one link in `text` (the first, if there are several); None if nothing in it looks like a link."""
    found = parse_links(text, limit=1)
    return found[0] if found else None


def is_spotify_id(value: object) -> TypeGuard[str]:
    """The one test of a Spotify id in the pipeline (links, the ids asked of Spotify, the ids its answers carry)."""
    return isinstance(value, str) and _ID.fullmatch(value) is not None


def is_spotify_host(host: str) -> bool:
    """True for spotify.com, its subdomains and the short-link hosts spotify.link and spotify.app.link.

    Decides both what pasted text counts as a Spotify link and where `pipeline.shortlinks` may follow a
    redirect, so it accepts only plain ASCII DNS names: a look-alike ("оpen.spotify.com", Cyrillic о) or a
    host URL parsers read differently ("evil.net\\.spotify.com" is evil.net to urllib3) is refused, not guessed at.
    """
    if not host.isascii():
        return False
    name = host.lower().removesuffix(".")
    if len(name) > _MAX_HOST or not all(_HOST_LABEL.fullmatch(label) for label in name.split(".")):
        return False
    return name in SHORT_LINK_HOSTS or name == "spotify.com" or name.endswith(".spotify.com")


def _classify(match: re.Match[str]) -> ParsedLink | None:
    token = match.group().rstrip(_TRAILING_PUNCTUATION)
    if match.lastgroup == "uri":
        return _from_segments(token, token.split(":")[1:])
    if match.lastgroup == "bare":
        token = _glued_host_start(match.string, match.start()) + token
    try:
        parts = urlsplit(token if match.lastgroup == "url" else f"//{token}")
        host = (parts.hostname or "").rstrip(".")
    except ValueError:
        return _reject(token, not_spotify_reason(None))
    if match.lastgroup == "bare" and not _looks_like_a_site(host):
        return None
    if host in SHORT_LINK_HOSTS:
        return _from_short_link(token, host, parts.path, parts.query)
    if is_spotify_host(host):
        if host not in _ENTITY_HOSTS:
            return _reject(token, REASON_OTHER_SPOTIFY_PAGE)
        return _from_path(token, parts.path, parts.query)
    return _reject(token, not_spotify_reason(host.removeprefix("www.")[:40] or None))


def _glued_host_start(text: str, start: int) -> str:
    """The start of a host that the tokenizer, which cuts at non-ASCII characters, left out.

    A link glued to text in a script without case (这首歌open.spotify.com) starts where the ASCII does. A letter of
    a cased script (Cyrillic, Greek, accented Latin: the look-alikes of Latin letters) glued to it is part of the
    host: "оpen.spotify.com" (Cyrillic о) is a host of its own, not "pen.spotify.com".
    """
    if start == 0 or not _is_cased_non_ascii_letter(text[start - 1]):
        return ""
    begin = start - 1
    while begin > max(0, start - _MAX_HOST) and _is_host_character(text[begin - 1]):
        begin -= 1
    return text[begin:start].lstrip(".-")


def _is_cased_non_ascii_letter(ch: str) -> bool:
    return not ch.isascii() and ch.isalpha() and ch.lower() != ch.upper()


def _is_host_character(ch: str) -> bool:
    return (ch.isascii() and (ch.isalnum() or ch in ".-")) or _is_cased_non_ascii_letter(ch)


def _looks_like_a_site(host: str) -> bool:
    return is_spotify_host(host) or host.startswith("www.") or host.rpartition(".")[2] in _COMMON_TLDS


def _from_short_link(token: str, host: str, path: str, query: str) -> ParsedLink:
    code = next((segment for segment in path.split("/") if segment), "")
    if not _SHORT_CODE.fullmatch(code):
        return _reject(token, REASON_SHORT_LINK_INCOMPLETE)
    if host == "spotify.link":
        return ShortLink(f"https://spotify.link/{code}")
    return ShortLink(f"https://{host}/{code}" + (f"?{query}" if query else ""))


def _from_path(token: str, path: str, query: str) -> ParsedLink:
    segments = [segment for segment in path.split("/") if segment]
    if segments and _INTL_PREFIX.fullmatch(segments[0]):
        segments = segments[1:]
    if segments and segments[0].lower() in _EMBED_PREFIXES:
        segments = segments[1:]
    if not segments:
        # The old embed widget: embed.spotify.com/?uri=spotify:track:<id>
        uri = next(iter(parse_qs(query).get("uri", [])), "")
        if uri.lower().startswith("spotify:"):
            return _from_segments(token, uri.split(":")[1:])
        return _reject(token, REASON_OTHER_SPOTIFY_PAGE)
    return _from_segments(token, segments)


def _from_segments(token: str, segments: list[str]) -> ParsedLink:
    """Shared by URL paths (`/track/<id>`) and URIs (`spotify:track:<id>`), which name things alike."""
    kind = segments[0].lower() if segments else ""
    rest = [segment.lower() for segment in segments[1:3]]
    if kind in _KINDS:
        return _reference(token, kind, segments[1] if len(segments) > 1 else "")
    if kind == "user":
        if rest[1:] == ["playlist"]:  # legacy /user/<name>/playlist/<id>
            return _reference(token, "playlist", segments[3] if len(segments) > 3 else "")
        if rest[1:] in (["collection"], ["starred"]):
            return _reject(token, REASON_LIKED_SONGS)
        return _reject(token, REASON_PROFILE)
    if kind == "collection":
        return _reject(token, REASON_LIKED_SONGS)
    if kind == "artist":
        return _reject(token, REASON_ARTIST)
    if kind in ("show", "episode"):
        return _reject(token, REASON_PODCAST)
    if kind in ("audiobook", "chapter"):
        return _reject(token, REASON_AUDIOBOOK)
    if kind == "local":
        return _reject(token, REASON_LOCAL_FILE)
    return _reject(token, REASON_OTHER_SPOTIFY_PAGE)


def _reference(token: str, kind: str, raw_id: str) -> ParsedLink:
    if is_spotify_id(raw_id):
        return SpotifyRef(cast(LinkKind, kind), raw_id)
    return _reject(token, malformed_reason(kind))


def _reject(token: str, reason: str) -> RejectedLink:
    text = token.strip()
    if len(text) > _MAX_TEXT:
        text = text[: _MAX_TEXT - 1] + "…"
    return RejectedLink(text, reason)
