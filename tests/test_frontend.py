"""`pipeline.frontend`: the one link → collection path and the per-thread providers the bot and the CLI share."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from pipeline.errors import BadInput, NotFound, TransientError
from pipeline.frontend import REASON_NO_LINK, resolve_collection, thread_providers
from pipeline.links import REASON_ARTIST, ShortLink, SpotifyRef
from pipeline.metadata import SpotifyMetadata
from pipeline.settings import PipelineSettings
from pipeline.shortlinks import REASON_DEAD_SHORT_LINK
from tests.fakes.spotify_server import FakeSpotify


class WithShortLinks(PipelineSettings):
    # The bot's setting; declared here so the test does not depend on where it lives.
    spotify_shortlink_url: str = "https://spotify.link/"


class NoAudio:
    """A search provider that finds nothing (loaded by name, like any AUDIO_SOURCES plugin)."""

    def search(self, track: object) -> list[object]:
        return []


class ShortLinkService:
    """spotify.link on loopback: /<code> answers 307 to `targets[code]`, 404 if unknown, 503 for "down"."""

    def __init__(self) -> None:
        self.targets: dict[str, str] = {}
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                code = self.path.strip("/")
                if code == "down":
                    self.send_response(503)
                elif code in service.targets:
                    self.send_response(307)
                    self.send_header("Location", service.targets[code])
                else:
                    self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def base_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/"


@pytest.fixture(scope="module")
def shortlinks() -> Iterator[ShortLinkService]:
    service = ShortLinkService()
    yield service
    service.server.shutdown()
    service.server.server_close()


@pytest.fixture
def settings(fake_spotify: FakeSpotify, shortlinks: ShortLinkService) -> WithShortLinks:
    return fake_spotify.settings(
        WithShortLinks, spotify_shortlink_url=shortlinks.base_url, audio_sources=["tests.test_frontend:NoAudio"]
    )


@pytest.fixture
def metadata(settings: WithShortLinks) -> SpotifyMetadata:
    return SpotifyMetadata(settings)


@pytest.mark.parametrize("form", ["text", "ref"])
def test_a_link_becomes_its_collection(
    fake_spotify: FakeSpotify, settings: WithShortLinks, metadata: SpotifyMetadata, form: str
) -> None:
    album_id = fake_spotify.add_album("Tiny", "Band", ["One", "Two"])
    link = (
        f"have a listen: https://open.spotify.com/album/{album_id}?si=x"
        if form == "text"
        else SpotifyRef("album", album_id)
    )

    collection = resolve_collection(link, settings, metadata)

    assert (collection.kind, collection.name) == ("album", "Tiny")
    assert [track.title for track in collection.tracks] == ["One", "Two"]


def test_a_short_link_is_followed_with_the_configured_service(
    fake_spotify: FakeSpotify, shortlinks: ShortLinkService, settings: WithShortLinks, metadata: SpotifyMetadata
) -> None:
    track_id = fake_spotify.add_track("Short", "Band")
    shortlinks.targets["abc123"] = f"https://open.spotify.com/track/{track_id}?si=1"

    for link in ("https://spotify.link/abc123", ShortLink("https://spotify.link/abc123")):
        collection = resolve_collection(link, settings, metadata)
        assert [track.spotify_id for track in collection.tracks] == [track_id]


@pytest.mark.parametrize(
    ("link", "reason"),
    [
        ("https://open.spotify.com/artist/0OdUWJ0sBjDrqHygGUXeCF", REASON_ARTIST),
        ("no link in here", REASON_NO_LINK),
        ("https://spotify.link/to-artist", REASON_ARTIST),
        ("https://spotify.link/unknown", REASON_DEAD_SHORT_LINK),
    ],
)
def test_an_unusable_link_says_why(
    shortlinks: ShortLinkService, settings: WithShortLinks, metadata: SpotifyMetadata, link: str, reason: str
) -> None:
    shortlinks.targets["to-artist"] = "https://open.spotify.com/artist/0OdUWJ0sBjDrqHygGUXeCF"
    with pytest.raises(BadInput) as raised:
        resolve_collection(link, settings, metadata)
    assert raised.value.reason == reason


def test_a_missing_album_is_permanent_and_a_dead_service_transient(
    fake_spotify: FakeSpotify, settings: WithShortLinks, metadata: SpotifyMetadata
) -> None:
    with pytest.raises(NotFound):
        resolve_collection(f"spotify:album:{fake_spotify.new_id()}", settings, metadata)
    with pytest.raises(TransientError):
        resolve_collection("https://spotify.link/down", settings, metadata)


def test_each_thread_gets_its_own_providers(settings: WithShortLinks) -> None:
    local = threading.local()
    mine = thread_providers(settings, local)
    assert thread_providers(settings, local) is mine  # made once per thread
    theirs: list[object] = []
    worker = threading.Thread(target=lambda: theirs.append(thread_providers(settings, local)))
    worker.start()
    worker.join()
    assert theirs[0] is not mine
    assert [name for name, _ in mine] == settings.audio_sources
