"""spotify.link resolution against a real HTTP server on loopback standing in for the short-link service."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from requests.adapters import HTTPAdapter

from pipeline.errors import PermanentError, RateLimited, TransientError
from pipeline.links import REASON_ARTIST, ParsedLink, RejectedLink, ShortLink, SpotifyRef, is_spotify_host, parse_link
from pipeline.settings import PipelineSettings
from pipeline.shortlinks import (
    MAX_REDIRECTS,
    REASON_DEAD_SHORT_LINK,
    REASON_OUTSIDE_SPOTIFY,
    Resolver,
    is_public_address,
    resolve_short_link,
)

T = "4cOdK2wGLETKBW3PvgPWqT"
A = "0GMsBnxw3YejP3iUFQyrYd"
P = "37i9dQZF1DXcBWIGoYBM5M"


@dataclass
class Reply:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""


def redirect(location: str, status: int = 307) -> Reply:
    return Reply(status, {"Location": location})


def page(body: str) -> Reply:
    return Reply(200, {"Content-Type": "text/html; charset=utf-8"}, body)


# Redirects the fake answers that must never be followed: {port} is the fake's own port on 127.0.0.1.
OUTSIDE = {
    "to-self": "http://127.0.0.1:{port}/track307",
    "to-localhost": "http://localhost:{port}/track307",
    "to-private": "http://10.0.0.1/admin",
    "to-metadata": "http://169.254.169.254/latest/meta-data/",
    "to-ipv6-loopback": "http://[::1]:{port}/track307",
    "to-ip-of-spotify": "https://35.186.224.25/track/" + T,
    "to-userinfo": "https://open.spotify.com@127.0.0.1:{port}/track307",
    "to-short-userinfo": "https://spotify.link@127.0.0.1:{port}/track307",
    "to-look-alike": "https://evilspotify.com/track/" + T,
    "to-suffix": "https://spotify.com.evil.net/track/" + T,
    "to-short-suffix": "https://spotify.link.evil.net/track307",
    "to-backslash": "http://evil.net\\.spotify.com/track/" + T,  # urllib3 would connect to evil.net
    "to-elsewhere": "https://example.com/",
}


class FakeShortLinkServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.routes: dict[str, Reply] = {}
        self.hits: list[str] = []
        self.headers_seen: list[dict[str, str]] = []
        self.release = threading.Event()  # lets the "/slow" route answer at teardown

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/"

    def handle_error(self, request: object, client_address: object) -> None:
        """A client that timed out has gone away; that is expected here."""


class _Handler(BaseHTTPRequestHandler):
    server: FakeShortLinkServer

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        self.server.hits.append(path)
        self.server.headers_seen.append(dict(self.headers))
        if path == "/slow":
            self.server.release.wait(10)
        reply = self.server.routes.get(path, Reply(404, body="not found"))
        body = reply.body.encode()
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[FakeShortLinkServer]:
    fake = FakeShortLinkServer()
    fake.routes = {
        "/track307": redirect(f"https://open.spotify.com/track/{T}?si=abc&_branch_match_id=123&utm_source=copy-link"),
        "/chain": redirect("/chain-2", 301),
        "/chain-2": redirect("https://spotify.link/chain-3", 302),
        "/chain-3": redirect(f"https://open.spotify.com/intl-de/album/{A}?si=x", 307),
        "/via-prefix": redirect("https://spotify.link/track307", 308),
        "/legacy": redirect(f"https://open.spotify.com/user/bob/playlist/{P}"),
        "/uri": redirect(f"spotify:playlist:{P}", 302),
        "/see-other": redirect("/html", 303),
        "/html": page(
            "<!doctype html><html><head>"
            f'<meta property="og:url" content="https://open.spotify.com/track/{T}?si=1">'
            "</head><body><a href='https://open.spotify.com/genre/x'>genres</a></body></html>"
        ),
        "/html-escaped": page(
            f'<script>window.__DATA__ = {{"$canonical_url":"https:\\/\\/open.spotify.com\\/album\\/{A}"}}</script>'
        ),
        "/html-entities": page(f'<a href="https://open.spotify.com/playlist/{P}?si=1&amp;pt=2">open</a>'),
        "/html-artist": page(f'<a href="https://open.spotify.com/artist/{T}">artist</a>'),
        "/html-none": page("<html><body>Sorry, this link has expired.</body></html>"),
        "/artist": redirect(f"https://open.spotify.com/artist/{T}?si=2"),
        "/home": redirect("https://open.spotify.com/"),
        "/premium": redirect("https://www.spotify.com/us/premium/"),
        "/no-location": Reply(302),
        "/elsewhere": redirect("ftp://files.example/x"),
        "/app-store": redirect("itms-apps://apps.apple.com/app/id324684580"),
        "/empty": Reply(204),
        "/gone": Reply(410),
        "/broken": Reply(500),
        "/unavailable": Reply(503, {"Retry-After": "120"}),
        "/busy": Reply(429, {"Retry-After": "30"}),
        "/busy-until": Reply(429, {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}),  # a date, long past
        "/busy-garbled": Reply(429, {"Retry-After": "-5"}),
        "/loop": redirect("/loop"),
        "/ping": redirect("/pong", 302),
        "/pong": redirect("/ping", 302),
        "/slow": redirect(f"https://open.spotify.com/track/{T}"),
        "/bad-location": redirect("http://[::1/track307"),
        "/bad-port": redirect("https://spotify.app.link:99999/app-hop"),
        "/to-app-link": redirect("https://spotify.app.link/app-hop?_p=c1"),
        "/app-hop": redirect("/app-hop-2", 302),  # relative, so against spotify.app.link
        "/app-hop-2": redirect(f"https://open.spotify.com/track/{T}?si=1"),
    }
    port = fake.server_address[1]
    fake.routes |= {f"/{code}": redirect(location.format(port=port)) for code, location in OUTSIDE.items()}
    for hops in range(MAX_REDIRECTS + 2):
        fake.routes[f"/hop-{hops}"] = redirect(f"/hop-{hops - 1}") if hops else redirect(f"spotify:track:{T}")
    thread = threading.Thread(target=fake.serve_forever, daemon=True)
    thread.start()
    yield fake
    fake.release.set()
    fake.shutdown()
    fake.server_close()
    thread.join(5)


@pytest.fixture
def fake(server: FakeShortLinkServer) -> FakeShortLinkServer:
    server.hits.clear()
    server.headers_seen.clear()
    return server


def no_dns(host: str, port: int) -> list[Any]:
    raise AssertionError(f"tests never look up real hosts, yet {host} was resolved")


def dns(*addresses: str, asked: list[tuple[str, int]] | None = None) -> Resolver:
    """A resolver in getaddrinfo's shape that answers `addresses` for any host, noting what it was `asked`."""

    def resolver(host: str, port: int) -> list[Any]:
        if asked is not None:
            asked.append((host, port))
        return [
            (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in addresses
        ]

    return resolver


class ToFake(HTTPAdapter):
    """Sends what is mounted on it to the fake (same path and query): spotify.app.link without the internet."""

    def __init__(self, fake: FakeShortLinkServer) -> None:
        super().__init__()
        self.base_url = fake.base_url

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        parts = urlsplit(request.url or "")
        request.url = self.base_url.rstrip("/") + parts.path + (f"?{parts.query}" if parts.query else "")
        return super().send(request, **kwargs)


@pytest.fixture
def app_link_session(fake: FakeShortLinkServer) -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.mount("https://spotify.app.link/", ToFake(fake))
        yield session


def resolve(
    fake: FakeShortLinkServer,
    code: str,
    *,
    session: requests.Session | None = None,
    timeout: float = 5,
    resolver: Resolver = no_dns,
) -> ParsedLink:
    link = ShortLink(f"https://spotify.link/{code}")
    return resolve_short_link(link, session=session, timeout=timeout, base_url=fake.base_url, resolver=resolver)


RESOLVED = [
    ("track307", SpotifyRef("track", T)),
    ("chain", SpotifyRef("album", A)),
    ("via-prefix", SpotifyRef("track", T)),
    ("legacy", SpotifyRef("playlist", P)),
    ("uri", SpotifyRef("playlist", P)),
    ("see-other", SpotifyRef("track", T)),
    ("html", SpotifyRef("track", T)),
    ("html-escaped", SpotifyRef("album", A)),
    ("html-entities", SpotifyRef("playlist", P)),
    (f"hop-{MAX_REDIRECTS}", SpotifyRef("track", T)),
]


@pytest.mark.parametrize(("code", "expected"), RESOLVED)
def test_resolves_to_a_spotify_ref(fake: FakeShortLinkServer, code: str, expected: SpotifyRef) -> None:
    assert resolve(fake, code) == expected


def test_never_fetches_spotify_itself(fake: FakeShortLinkServer) -> None:
    assert resolve(fake, "chain") == SpotifyRef("album", A)
    assert fake.hits == ["/chain", "/chain-2", "/chain-3"]


DEAD = [
    "html-none",
    "home",
    "premium",
    "no-location",
    "elsewhere",
    "app-store",
    "empty",
    "gone",
    "does-not-exist",
    "loop",
    "ping",
    f"hop-{MAX_REDIRECTS + 1}",
    "bad-location",
    "bad-port",
]


@pytest.mark.parametrize("code", DEAD)
def test_dead_short_links_are_rejected(fake: FakeShortLinkServer, code: str) -> None:
    url = f"https://spotify.link/{code}"
    assert resolve(fake, code) == RejectedLink(url, REASON_DEAD_SHORT_LINK)


@pytest.mark.parametrize("code", ["loop", "ping", f"hop-{MAX_REDIRECTS + 1}"])
def test_follows_at_most_five_redirects(fake: FakeShortLinkServer, code: str) -> None:
    resolve(fake, code)
    assert len(fake.hits) == MAX_REDIRECTS + 1  # the first request and five redirects


@pytest.mark.parametrize("code", ["artist", "html-artist"])
def test_short_link_to_an_artist_says_so(fake: FakeShortLinkServer, code: str) -> None:
    assert resolve(fake, code) == RejectedLink(f"https://spotify.link/{code}", REASON_ARTIST)


@pytest.mark.parametrize("code", ["broken", "unavailable"])
def test_server_errors_are_transient(fake: FakeShortLinkServer, code: str) -> None:
    with pytest.raises(TransientError) as caught:
        resolve(fake, code)
    assert not isinstance(caught.value, RateLimited)
    assert caught.value.reason


def test_rate_limit_carries_retry_after(fake: FakeShortLinkServer) -> None:
    with pytest.raises(RateLimited) as caught:
        resolve(fake, "busy")
    assert caught.value.retry_after == 30


@pytest.mark.parametrize(("code", "seconds"), [("busy-until", 0.0), ("busy-garbled", None)])
def test_rate_limit_reads_retry_after_like_every_adapter(fake: FakeShortLinkServer, code: str, seconds: float) -> None:
    with pytest.raises(RateLimited) as caught:
        resolve(fake, code)
    assert caught.value.retry_after == seconds


def test_the_short_link_base_is_a_pipeline_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI reads it too, not only the bot: it lives in PipelineSettings under its old name."""
    monkeypatch.setenv("SPOTIFY_SHORTLINK_URL", "http://127.0.0.1:1/")
    assert PipelineSettings(_env_file=None).spotify_shortlink_url == "http://127.0.0.1:1/"
    monkeypatch.delenv("SPOTIFY_SHORTLINK_URL")
    assert PipelineSettings(_env_file=None).spotify_shortlink_url == "https://spotify.link/"


def test_timeout_is_transient(fake: FakeShortLinkServer) -> None:
    with pytest.raises(TransientError):
        resolve(fake, "slow", timeout=0.2)


def test_unreachable_service_is_transient() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(TransientError):
        resolve_short_link(ShortLink("https://spotify.link/abc"), base_url=f"http://127.0.0.1:{port}/", timeout=2)


def test_uses_the_given_session(fake: FakeShortLinkServer) -> None:
    with requests.Session() as session:
        session.headers["X-Test"] = "from-the-caller"
        assert resolve(fake, "track307", session=session) == SpotifyRef("track", T)
        assert resolve(fake, "html", session=session) == SpotifyRef("track", T)  # still open after use
    assert [headers.get("X-Test") for headers in fake.headers_seen] == ["from-the-caller"] * 2


def test_base_url_without_trailing_slash(fake: FakeShortLinkServer) -> None:
    link = ShortLink("https://spotify.link/track307")
    assert resolve_short_link(link, base_url=fake.base_url.rstrip("/")) == SpotifyRef("track", T)


def test_from_pasted_text_to_spotify_ref(fake: FakeShortLinkServer) -> None:
    short = parse_link("listen to this!! https://spotify.link/chain?si=1 ")
    assert isinstance(short, ShortLink)
    assert resolve_short_link(short, base_url=fake.base_url) == SpotifyRef("album", A)


SPOTIFY_HOSTS = [
    "spotify.link",
    "spotify.app.link",
    "spotify.com",
    "open.spotify.com",
    "www.spotify.com",
    "embed.spotify.com",
    "i.scdn.spotify.com",
    "OPEN.Spotify.COM",
    "open.spotify.com.",  # the fully qualified spelling of the same host
    "xn--80ak6aa92e.spotify.com",
    "a-b.spotify.com",
    "a" * 63 + ".spotify.com",
]
NOT_SPOTIFY_HOSTS = [
    "",
    ".",
    "evilspotify.com",
    "evil-spotify.com",
    "spotify.co",
    "spotify.comm",
    "spotify.com.evil.net",
    "open.spotify.com.evil.net",
    "spotify.link.evil.net",
    "evilspotify.link",
    "x.spotify.link",
    "app.link",
    "evil.app.link",
    "x.spotify.app.link",
    "open.spotify.com@127.0.0.1",
    "spotify.link@127.0.0.1",
    "open.spotify.com:443",
    "open.spotify.com/",
    "evil.net\\.spotify.com",
    "evil.net/.spotify.com",
    "evil.net%2f.spotify.com",
    "evil.net?.spotify.com",
    "evil.net#.spotify.com",
    ".spotify.com",
    "..spotify.com",
    "open..spotify.com",
    "open.spotify.com..",
    "-x.spotify.com",
    "x-.spotify.com",
    "a_b.spotify.com",
    "a" * 64 + ".spotify.com",
    "a." * 124 + "spotify.com",  # 259 characters: longer than a DNS name can be
    " open.spotify.com",
    "open.spotify.com\n",
    "open.spotify.com\x00.evil.net",
    "оpen.spotify.com",  # Cyrillic о
    "spotify.lin\u212a",  # KELVIN SIGN, which lower() turns into an ASCII k
    "127.0.0.1",
    "10.0.0.1",
    "0x7f000001",
    "2130706433",
    "::1",
    "[::1]",
    "localhost",
]


@pytest.mark.parametrize("host", SPOTIFY_HOSTS)
def test_spotify_hosts(host: str) -> None:
    assert is_spotify_host(host)


@pytest.mark.parametrize("host", NOT_SPOTIFY_HOSTS)
def test_look_alike_hosts_are_not_spotify(host: str) -> None:
    assert not is_spotify_host(host)


PUBLIC = ["8.8.8.8", "35.186.224.25", "151.101.2.1", "2606:4700::1", "2a00:1450:4001:80b::200e"]
NOT_PUBLIC = [
    "127.0.0.1",
    "127.1.2.3",
    "10.0.0.1",
    "172.16.0.1",
    "172.31.255.255",
    "192.168.1.1",
    "169.254.169.254",  # cloud metadata
    "100.64.0.1",  # carrier-grade NAT
    "192.0.2.1",  # documentation
    "0.0.0.0",
    "224.0.0.1",
    "224.0.1.1",  # multicast that Python calls global
    "239.255.255.250",
    "240.0.0.1",
    "255.255.255.255",
    "::1",
    "::",
    "fe80::1",
    "fe80::1%eth0",
    "fc00::1",
    "fd12:3456::1",
    "ff02::1",
    "ff0e::1",
    "::ffff:127.0.0.1",
    "::ffff:10.0.0.1",
    "::ffff:169.254.169.254",
    "64:ff9b::7f00:1",
]


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses(address: str) -> None:
    assert is_public_address(address)


@pytest.mark.parametrize("address", NOT_PUBLIC)
def test_loopback_private_and_special_addresses_are_not_public(address: str) -> None:
    assert not is_public_address(address)


@pytest.mark.parametrize("code", sorted(OUTSIDE))
def test_redirects_outside_spotify_are_refused(fake: FakeShortLinkServer, code: str) -> None:
    with pytest.raises(PermanentError) as caught:
        resolve(fake, code)
    assert caught.value.reason == REASON_OUTSIDE_SPOTIFY
    assert fake.hits == [f"/{code}"]  # the target was never requested, not even on the fake's own address


@pytest.mark.parametrize(
    "addresses",
    [
        ["10.0.0.1"],
        ["127.0.0.1"],
        ["169.254.169.254"],
        ["::1"],
        ["fe80::1%eth0"],
        ["::ffff:127.0.0.1"],
        ["151.101.2.1", "192.168.1.1"],  # one private address is enough: the client may pick it
        [],
    ],
)
def test_spotify_host_at_a_private_address_is_refused(
    fake: FakeShortLinkServer, app_link_session: requests.Session, addresses: list[str]
) -> None:
    asked: list[tuple[str, int]] = []
    with pytest.raises(PermanentError) as caught:
        resolve(fake, "to-app-link", session=app_link_session, resolver=dns(*addresses, asked=asked))
    assert caught.value.reason == REASON_OUTSIDE_SPOTIFY
    assert asked == [("spotify.app.link", 443)]
    assert fake.hits == ["/to-app-link"]


def test_redirect_chain_through_spotify_hosts(fake: FakeShortLinkServer, app_link_session: requests.Session) -> None:
    asked: list[tuple[str, int]] = []
    resolver = dns("151.101.2.1", "2a04:4e42::1", asked=asked)
    assert resolve(fake, "to-app-link", session=app_link_session, resolver=resolver) == SpotifyRef("track", T)
    assert fake.hits == ["/to-app-link", "/app-hop", "/app-hop-2"]
    assert asked == [("spotify.app.link", 443)] * 2  # each hop is checked


def test_unresolvable_spotify_host_is_transient(fake: FakeShortLinkServer, app_link_session: requests.Session) -> None:
    def unresolvable(host: str, port: int) -> list[Any]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    with pytest.raises(TransientError):
        resolve(fake, "to-app-link", session=app_link_session, resolver=unresolvable)
    assert fake.hits == ["/to-app-link"]


def test_only_the_configured_base_url_is_trusted(fake: FakeShortLinkServer) -> None:
    """The base URL may be on loopback because the operator said so; a short link naming loopback may not."""
    link = ShortLink(f"{fake.base_url}track307")
    with pytest.raises(PermanentError) as caught:
        resolve_short_link(link, base_url=fake.base_url, resolver=no_dns)
    assert caught.value.reason == REASON_OUTSIDE_SPOTIFY
    assert fake.hits == []
