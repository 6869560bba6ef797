"""spotify.link resolution against a real HTTP server on loopback standing in for the short-link service."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from pipeline.errors import RateLimited, TransientError
from pipeline.links import REASON_ARTIST, ParsedLink, RejectedLink, ShortLink, SpotifyRef, parse_link
from pipeline.shortlinks import MAX_REDIRECTS, REASON_DEAD_SHORT_LINK, resolve_short_link

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
    base = fake.base_url
    fake.routes = {
        "/track307": redirect(f"https://open.spotify.com/track/{T}?si=abc&_branch_match_id=123&utm_source=copy-link"),
        "/chain": redirect("/chain-2", 301),
        "/chain-2": redirect(f"{base}chain-3", 302),
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
        "/loop": redirect("/loop"),
        "/ping": redirect("/pong", 302),
        "/pong": redirect("/ping", 302),
        "/slow": redirect(f"https://open.spotify.com/track/{T}"),
    }
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


def resolve(
    fake: FakeShortLinkServer, code: str, *, session: requests.Session | None = None, timeout: float = 5
) -> ParsedLink:
    link = ShortLink(f"https://spotify.link/{code}")
    return resolve_short_link(link, session=session, timeout=timeout, base_url=fake.base_url)


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
