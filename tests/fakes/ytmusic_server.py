"""A fake YouTube Music on 127.0.0.1 that answers searches from the recorded responses in tests/data/ytmusic.

The same replay as `tests.replay.RecordedYTMusic` (which tests use in-process, at the transport), served over
real HTTP so that bot and worker processes can use it: point YOUTUBE_MUSIC_URL at `base_url` (`env()`).
Searches never recorded answer an empty result; every search asked for is in `searches`. Cover thumbnails
point at this server (`/image/…`, a JPEG), never at Google's.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from tests.fakes.local_http import LocalHttpServer
from tests.fakes.spotify_server import _jpeg
from tests.replay import RecordedYTMusic, SearchRequest

DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "ytmusic"
THUMBNAIL_HOST = b"https://lh3.googleusercontent.com/"


class FakeYouTubeMusic(LocalHttpServer):
    thread_name = "fake-ytmusic"

    def __init__(self, directory: Path = DATA_DIR) -> None:
        self.replay = RecordedYTMusic(directory)
        self._lock = threading.Lock()
        super().__init__()

    def env(self) -> dict[str, str]:
        return {"YOUTUBE_MUSIC_URL": self.base_url}

    @property
    def searches(self) -> list[SearchRequest]:
        with self._lock:
            return list(self.replay.searches)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                if method == "GET" and self.path.startswith("/image/"):
                    status, payload, headers = 200, _jpeg(self.path, 544), {"Content-Type": "image/jpeg"}
                else:
                    with fake._lock:
                        status, payload, headers = fake.replay.answer(method, self.path, body)
                    payload = payload.replace(THUMBNAIL_HOST, f"{fake.base_url}/image/".encode())
                self.send_response(status)
                for name, value in {**headers, "Content-Length": str(len(payload))}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler
