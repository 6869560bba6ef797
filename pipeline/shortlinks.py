"""Resolve spotify.link short links to what they point at.

A thin adapter at the edge: redirects are followed one by one (never more than five) so that the
final open.spotify.com address is read from the Location header without ever fetching Spotify itself;
when the service answers with an HTML page instead, the page is searched for an open.spotify.com link.

A short link is attacker-chosen input, so redirects must not turn the bot into a proxy into its own network
(SSRF): a spotify.link URL goes to the configured base URL (trusted as the operator set it, so tests can use a
local server), any other URL only to a Spotify host (`pipeline.links.is_spotify_host`) whose every address is public.
"""

from __future__ import annotations

import html
import ipaddress
import re
import socket
from collections.abc import Callable, Iterable
from typing import Any, Final
from urllib.parse import urljoin, urlsplit

import requests

from pipeline.errors import BadInput, TransientError
from pipeline.http import request_error, status_error
from pipeline.links import (
    REASON_OTHER_SPOTIFY_PAGE,
    SHORT_LINK_HOSTS,
    ParsedLink,
    RejectedLink,
    ShortLink,
    SpotifyRef,
    is_spotify_host,
    parse_link,
)

__all__ = [
    "MAX_REDIRECTS",
    "REASON_DEAD_SHORT_LINK",
    "REASON_OUTSIDE_SPOTIFY",
    "Resolver",
    "is_public_address",
    "resolve_short_link",
]

# socket.getaddrinfo's shape: (host, port) -> [(family, type, proto, canonname, sockaddr)], sockaddr[0] the address.
Resolver = Callable[[str, int], Iterable[tuple[Any, Any, Any, Any, tuple[Any, ...]]]]

SERVICE: Final = "spotify.link"  # as users read it in "rate-limited by spotify.link"
MAX_REDIRECTS: Final = 5
REASON_DEAD_SHORT_LINK: Final = (
    "This spotify.link short link doesn't lead to a track, album or playlist; "
    "open it in Spotify and copy the full link instead."
)
REASON_OUTSIDE_SPOTIFY: Final = (
    "This spotify.link short link leads outside Spotify, so it wasn't opened; "
    "send a link to a Spotify track, album or playlist instead."
)
_SHORT_PREFIXES: Final = ("https://spotify.link/", "http://spotify.link/")
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}
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
    resolver: Resolver = socket.getaddrinfo,
) -> ParsedLink:
    """What `link` leads to: a SpotifyRef, or a RejectedLink saying why not.

    Raises TransientError (RateLimited on 429) when the service cannot be reached or fails; retrying may help.
    Raises BadInput (REASON_OUTSIDE_SPOTIFY) when it leads to a host other than Spotify's or to a private address.
    `base_url` replaces the `https://spotify.link/` prefix, so tests can point it at a local server; `resolver`
    looks up the addresses of any other host before it is fetched, so tests can do without DNS.
    """
    own_session = session is None
    http = session if session is not None else requests.Session()
    try:
        return _follow(link, http, timeout, base_url, resolver)
    except (requests.exceptions.InvalidURL, requests.exceptions.InvalidSchema, requests.exceptions.MissingSchema):
        return _dead(link)
    except requests.RequestException as error:
        raise request_error(error, service=SERVICE, detail=repr(error)) from error
    except ValueError:  # a malformed Location, e.g. "http://[::1" or a port out of range
        return _dead(link)
    finally:
        if own_session:
            http.close()


def is_public_address(address: str) -> bool:
    """False for a loopback, private, link-local, reserved, multicast or otherwise non-global address."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    special = ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_reserved or ip.is_multicast
    return ip.is_global and not (special or ip.is_unspecified)


def _follow(link: ShortLink, http: requests.Session, timeout: float, base_url: str, resolver: Resolver) -> ParsedLink:
    target = link.url  # as production sees it: relative redirects resolve against spotify.link, not the base URL
    for _ in range(MAX_REDIRECTS + 1):
        url = _connect_to(target, base_url, resolver)
        with http.get(url, allow_redirects=False, timeout=timeout, stream=True) as response:
            status = response.status_code
            if status in _REDIRECTS:
                location = response.headers.get("Location")
                if not location:
                    return _dead(link)
                target = urljoin(target, location)
                if _is_spotify_destination(target):
                    return _final(link, parse_link(target))
                if urlsplit(target).scheme not in _DEFAULT_PORTS:
                    return _dead(link)
                continue
            if passing := status_error(status, response.headers, service=SERVICE, detail=f"HTTP {status} for {url}"):
                raise passing
            if status != 200:
                return _dead(link)
            return _from_page(link, _read_text(response))
    return _dead(link)  # a redirect loop, or a chain longer than anyone needs


def _connect_to(url: str, base_url: str, resolver: Resolver) -> str:
    """Where to send the request for `url`; raises BadInput unless that is safe (see the module docstring)."""
    for prefix in _SHORT_PREFIXES:
        if url.startswith(prefix):
            return base_url.rstrip("/") + "/" + url.removeprefix(prefix)
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme not in _DEFAULT_PORTS or not is_spotify_host(host):
        raise BadInput(REASON_OUTSIDE_SPOTIFY, detail=f"refused to open {url[:200]!r}: not a Spotify host")
    try:
        addresses = {str(info[4][0]) for info in resolver(host, parts.port or _DEFAULT_PORTS[parts.scheme])}
    except OSError as error:
        raise TransientError(f"couldn't reach {SERVICE}; will retry", detail=repr(error)) from error
    private = sorted(address for address in addresses if not is_public_address(address))
    if private or not addresses:
        raise BadInput(
            REASON_OUTSIDE_SPOTIFY, detail=f"refused to open {url[:200]!r}: {host} is at {private or 'no address'}"
        )
    return url


def _is_spotify_destination(url: str) -> bool:
    if url.lower().startswith("spotify:"):
        return True
    host = urlsplit(url).hostname or ""
    return is_spotify_host(host) and host.removesuffix(".") not in SHORT_LINK_HOSTS


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


def _dead(link: ShortLink) -> RejectedLink:
    return RejectedLink(link.url, REASON_DEAD_SHORT_LINK)
