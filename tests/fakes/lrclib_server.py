"""A local LRCLIB (https://lrclib.net/docs) for tests: the two read endpoints over real HTTP on 127.0.0.1.

Built from LRCLIB's documented shapes:
- `GET /api/get?track_name=&artist_name=[&album_name=][&duration=]` → 200 with one record
  `{id, trackName, artistName, albumName, duration, instrumental, plainLyrics, syncedLyrics}` when title and
  artist (and the album, when given) agree case-insensitively and the duration is within ±2 s (when given);
  404 `{"statusCode":404,"name":"TrackNotFound","message":"Failed to find specified track"}` otherwise; 400
  when track_name or artist_name is missing or the duration is not a number in 1–3600.
- `GET /api/search?q=|track_name=[&artist_name=][&album_name=]` → 200 with a list of records whose fields
  contain the words asked for (case-insensitive); 400 without q or track_name.

`fail(regex, status, delay=…)` makes requests (path and query, e.g. one track's) answer an error, or answer
late (a slow LRCLIB, for timeouts: the wait ends at once when the server stops). Every request is logged
(`requests`, `count`).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.fakes.local_http import LocalHttpServer

NOT_FOUND = {"statusCode": 404, "name": "TrackNotFound", "message": "Failed to find specified track"}
DURATION_TOLERANCE_S = 2.0  # LRCLIB's documented ±2 s
SEARCH_LIMIT = 20

SYNCED_EXAMPLE = "[00:01.00] First line of the song\n[00:02.50] Second line of the song"
PLAIN_EXAMPLE = "First line of the song\nSecond line of the song"


@dataclass(frozen=True)
class LoggedRequest:
    path: str
    query: dict[str, str]
    headers: dict[str, str]


@dataclass
class _Fault:
    pattern: re.Pattern[str]
    status: int
    remaining: int | None
    delay: float


def _bad_request(message: str) -> dict[str, Any]:
    return {"statusCode": 400, "name": "BadRequest", "message": message}


class FakeLrclib(LocalHttpServer):
    thread_name = "fake-lrclib"

    """See the module docstring. Thread-safe; usable as a context manager."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: list[dict[str, Any]] = []
        self._log: list[LoggedRequest] = []
        self._faults: list[_Fault] = []
        super().__init__()

    def env(self) -> dict[str, str]:
        """Environment variables for a process (bot, worker, CLI) that should use this fake."""
        return {"LYRICS": "on", "LYRICS_URL": self.base_url}

    def settings_kwargs(self) -> dict[str, Any]:
        return {"lyrics": True, "lyrics_url": self.base_url}

    # --- the catalog ------------------------------------------------------------------------------
    def add(
        self,
        track_name: str,
        artist_name: str,
        album_name: str = "",
        duration: float = 180.0,
        *,
        plain: str | None = None,
        synced: str | None = None,
        instrumental: bool = False,
    ) -> int:
        """A record as LRCLIB holds it; returns its id. An instrumental record has no lyrics."""
        with self._lock:
            record_id = 1000 + len(self._records)
            self._records.append(
                {
                    "id": record_id,
                    "trackName": track_name,
                    "artistName": artist_name,
                    "albumName": album_name,
                    "duration": float(duration),
                    "instrumental": instrumental,
                    "plainLyrics": None if instrumental else plain,
                    "syncedLyrics": None if instrumental else synced,
                }
            )
            return record_id

    # --- the request log and faults --------------------------------------------------------------
    @property
    def requests(self) -> list[LoggedRequest]:
        with self._lock:
            return list(self._log)

    def count(self, path_regex: str = "") -> int:
        pattern = re.compile(path_regex)
        with self._lock:
            return sum(1 for r in self._log if pattern.search(r.path))

    def clear_requests(self) -> None:
        with self._lock:
            self._log.clear()

    def fail(self, path_regex: str, status: int, *, times: int | None = None, delay: float = 0.0) -> None:
        """Answer the next `times` requests whose path with its query matches (None = all) with `status` after
        `delay` seconds (status 200 with a delay: the right answer, late). E.g. `fail("track_name=Slow", 200,
        delay=60)`, `fail("/api/", 500)`."""
        with self._lock:
            self._faults.append(_Fault(re.compile(path_regex), status, times, delay))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    # --- request handling -------------------------------------------------------------------------
    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            server_version = "FakeLrclib/1.0"

            def do_GET(self) -> None:
                fake._handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        path = parts.path.rstrip("/") or "/"
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        with self._lock:
            self._log.append(LoggedRequest(path, query, dict(handler.headers.items())))
            fault = self._take_fault(handler.path)
        if fault is not None:
            if self._stopping.wait(fault.delay):
                return
            if fault.status != 200:
                self._send(handler, fault.status, {"statusCode": fault.status, "name": "Fault", "message": "fake"})
                return
        if path == "/api/get":
            status, payload = self._get(query)
        elif path == "/api/search":
            status, payload = self._search(query)
        else:
            status, payload = 404, {"statusCode": 404, "name": "NotFound", "message": "Not found"}
        self._send(handler, status, payload)

    def _take_fault(self, target: str) -> _Fault | None:
        for fault in self._faults:
            if not fault.pattern.search(target):
                continue
            if fault.remaining is not None:
                if fault.remaining <= 0:
                    continue
                fault.remaining -= 1
            return fault
        return None

    @staticmethod
    def _send(handler: BaseHTTPRequestHandler, status: int, payload: Any) -> None:
        body = json.dumps(payload).encode()
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            handler.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout test)
            pass

    def _get(self, query: Mapping[str, str]) -> tuple[int, Any]:
        track, artist = query.get("track_name"), query.get("artist_name")
        if not track or not artist:
            return 400, _bad_request("track_name and artist_name are required")
        duration: float | None = None
        if "duration" in query:
            try:
                duration = float(query["duration"])
            except ValueError:
                return 400, _bad_request("duration must be a number")
            if not 1 <= duration <= 3600:
                return 400, _bad_request("duration must be between 1 and 3600")
        album = query.get("album_name")
        with self._lock:
            for record in self._records:
                same = record["trackName"].casefold() == track.casefold()
                same = same and record["artistName"].casefold() == artist.casefold()
                same = same and (album is None or record["albumName"].casefold() == album.casefold())
                if same and (duration is None or abs(record["duration"] - duration) <= DURATION_TOLERANCE_S):
                    return 200, dict(record)
        return 404, NOT_FOUND

    def _search(self, query: Mapping[str, str]) -> tuple[int, Any]:
        if not query.get("q") and not query.get("track_name"):
            return 400, _bad_request("q or track_name is required")
        wanted = {
            "trackName": query.get("track_name"),
            "artistName": query.get("artist_name"),
            "albumName": query.get("album_name"),
        }
        with self._lock:
            found = []
            for record in self._records:
                fields = all(_has_words(record[key], words) for key, words in wanted.items() if words)
                anywhere = " ".join(str(record[key]) for key in wanted)
                if fields and (not query.get("q") or _has_words(anywhere, query["q"])):
                    found.append(dict(record))
        return 200, found[:SEARCH_LIMIT]


def _has_words(text: str, words: str) -> bool:
    return all(word in text.casefold() for word in words.casefold().split())
