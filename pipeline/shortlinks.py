"""Resolve spotify.link short links to what they point at.

A thin adapter at the edge: redirects are followed one by one (never more than five) so that the
final open.spotify.com address is read from the Location header without ever fetching Spotify itself;
when the service answers with an HTML page instead, the page is searched for an open.spotify.com link.
"""

from __future__ import annotations

import html
import re
from typing import Final
from urllib.parse import urljoin, urlsplit

import requests

from pipeline.errors import RateLimited, TransientError
from pipeline.links import (
    REASON_OTHER_SPOTIFY_PAGE,
    ParsedLink,
    RejectedLink,
    ShortLink,
    SpotifyRef,
    is_spotify_host,
    parse_link,
)

__all__ = ["MAX_REDIRECTS", "REASON_DEAD_SHORT_LINK", "resolve_short_link"]

MAX_REDIRECTS: Final = 5
REASON_DEAD_SHORT_LINK: Final = (
    "This spotify.link short link doesn't lead to a track, album or playlist; "
    "open it in Spotify and copy the full link instead."
)
_SHORT_PREFIXES: Final = ("https://spotify.link/", "http://spotify.link/")
_REDIRECTS: Final = frozenset({301, 302, 303, 307, 308})
_MAX_BODY: Final = 1 << 20  # a redirect page is a few kB; never read an endless body
# Also matches the JSON-escaped form (https:\/\/open.spotify.com\/track\/…) found in inline scripts.
_SPOTIFY_IN_PAGE: Final = re.compile(r"https?:(?:\\?/){2}open\.spotify\.com(?:\\?/[A-Za-z0-9_-]{1,64}){1,6}")


def resolve_short_link(
    link: ShortLink,
    *,
    session: requests.Session | None = None,
    timeout: float = 10,
    base_url: str = "https://spotify.link/",
) -> ParsedLink:
    """What `link` leads to: a SpotifyRef, or a RejectedLink saying why not.

    Raises TransientError (RateLimited on 429) when the service cannot be reached or fails; retrying may help.
    `base_url` replaces the `https://spotify.link/` prefix, so tests can point it at a local server.
    """
    own_session = session is None
    http = session if session is not None else requests.Session()
    try:
        return _follow(link, http, timeout, base_url)
    except (requests.exceptions.InvalidURL, requests.exceptions.InvalidSchema, requests.exceptions.MissingSchema):
        return _dead(link)
    except requests.RequestException as error:
        raise TransientError("couldn't reach spotify.link to open the short link", detail=repr(error)) from error
    finally:
        if own_session:
            http.close()


def _follow(link: ShortLink, http: requests.Session, timeout: float, base_url: str) -> ParsedLink:
    url = _rebase(link.url, base_url)
    for _ in range(MAX_REDIRECTS + 1):
        with http.get(url, allow_redirects=False, timeout=timeout, stream=True) as response:
            status = response.status_code
            if status in _REDIRECTS:
                location = response.headers.get("Location")
                if not location:
                    return _dead(link)
                target = urljoin(url, location)
                if _is_spotify_destination(target):
                    return _final(link, parse_link(target))
                if urlsplit(target).scheme not in ("http", "https"):
                    return _dead(link)
                url = _rebase(target, base_url)
                continue
            if status == 429:
                raise RateLimited(retry_after=_retry_after(response), detail=f"spotify.link answered 429 for {url}")
            if status >= 500:
                raise TransientError(
                    "spotify.link is having trouble; try again in a minute", detail=f"HTTP {status} for {url}"
                )
            if status != 200:
                return _dead(link)
            return _from_page(link, _read_text(response))
    return _dead(link)  # a redirect loop, or a chain longer than anyone needs


def _rebase(url: str, base_url: str) -> str:
    for prefix in _SHORT_PREFIXES:
        if url.startswith(prefix):
            return base_url.rstrip("/") + "/" + url.removeprefix(prefix)
    return url


def _is_spotify_destination(url: str) -> bool:
    if url.lower().startswith("spotify:"):
        return True
    host = urlsplit(url).hostname or ""
    return is_spotify_host(host) and host not in ("spotify.link", "spotify.app.link")


def _final(link: ShortLink, parsed: ParsedLink | None) -> ParsedLink:
    if isinstance(parsed, SpotifyRef):
        return parsed
    if isinstance(parsed, RejectedLink) and parsed.reason != REASON_OTHER_SPOTIFY_PAGE:
        return RejectedLink(link.url, parsed.reason)  # e.g. it leads to an artist: say so
    return _dead(link)


def _from_page(link: ShortLink, page: str) -> ParsedLink:
    found = [parse_link(match.replace("\\/", "/")) for match in _SPOTIFY_IN_PAGE.findall(html.unescape(page))]
    refs = [parsed for parsed in found if isinstance(parsed, SpotifyRef)]
    return refs[0] if refs else _final(link, found[0] if found else None)


def _read_text(response: requests.Response) -> str:
    body = bytearray()
    for chunk in response.iter_content(chunk_size=64 * 1024):
        body += chunk
        if len(body) >= _MAX_BODY:
            break
    return bytes(body[:_MAX_BODY]).decode("utf-8", errors="replace")


def _retry_after(response: requests.Response) -> float | None:
    try:
        return max(0.0, float(response.headers.get("Retry-After", "")))
    except ValueError:
        return None


def _dead(link: ShortLink) -> RejectedLink:
    return RejectedLink(link.url, REASON_DEAD_SHORT_LINK)
