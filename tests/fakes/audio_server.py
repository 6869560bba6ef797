"""A local stand-in for "the internet's audio": tones, covers and misbehaving downloads over real HTTP.

A ThreadingHTTPServer on 127.0.0.1 (random port, daemon thread, context manager) so real yt-dlp (its
generic extractor takes a plain audio URL), requests and worker subprocesses fetch from it exactly
as they would from a CDN. Audio is generated at test time with the FFmpeg binary (a sine tone,
3 s by default) and cached per process.

Paths:
- `/audio/<name>.<ext>`  a tone; ext m4a (AAC), webm (Opus), opus (Ogg Opus) or mp3. Any name works.
  Supports HEAD and byte ranges, as CDNs do.
- `/cover/<name>.jpg` a 640×640 JPEG; `/cover/<name>.png` an RGBA PNG (to exercise conversion).
- `/<fault>/<any path above>` the same resource, misbehaving:
  `403`, `404`, `410`, `500`, `503` answer that status; `truncated` promises more bytes
  (Content-Length) than it sends, then closes; `hang` sends nothing for `hang_seconds`; `stall`
  sends the headers and half the body, then nothing for `hang_seconds`; `slow` trickles the body
  over `slow_seconds`. Hanging handlers end at once when the server stops.
- Any of these asked as an HTTP proxy (`GET http://any.host/audio/x.m4a`) is served too, to test
  proxy settings; such requests are logged with `proxied=True`.
- `/plan.json` the candidate plans set with `set_plan()`, read by tests.fakes.audio_provider on
  every search (so a test can steer worker processes that are already running).

Every request is logged (`requests`, `count`, `clear_requests`).
"""

from __future__ import annotations

import atexit
import io
import json
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from pipeline.convert import ffmpeg_executable
from tests.fakes.local_http import LocalHttpServer

AUDIO_FORMATS: dict[str, tuple[str, list[str]]] = {
    # ext: (Content-Type, ffmpeg encoder options)
    "m4a": ("audio/mp4", ["-c:a", "aac", "-b:a", "64k", "-f", "mp4"]),
    "webm": ("audio/webm", ["-c:a", "libopus", "-b:a", "48k", "-f", "webm"]),
    "opus": ("audio/ogg", ["-c:a", "libopus", "-b:a", "48k", "-f", "ogg"]),
    "mp3": ("audio/mpeg", ["-c:a", "libmp3lame", "-b:a", "64k", "-f", "mp3"]),
}
STATUS_FAULTS = {"403": 403, "404": 404, "410": 410, "500": 500, "503": 503}
FAULTS = frozenset({*STATUS_FAULTS, "truncated", "hang", "stall", "slow"})
DEFAULT_SECONDS = 3.0
_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")

_cache_lock = threading.Lock()
_cache: dict[tuple[str, float], bytes] = {}
_cache_dir: Path | None = None


def _work_dir() -> Path:
    global _cache_dir
    if _cache_dir is None:
        _cache_dir = Path(tempfile.mkdtemp(prefix="fake-audio-"))
        atexit.register(shutil.rmtree, _cache_dir, True)
    return _cache_dir


def generate_audio(ext: str = "m4a", seconds: float = DEFAULT_SECONDS) -> bytes:
    """A sine tone encoded as `ext` (see AUDIO_FORMATS); generated once per process with FFmpeg."""
    if ext not in AUDIO_FORMATS:
        raise ValueError(f"unknown audio format {ext!r}")
    with _cache_lock:
        key = (ext, seconds)
        if key not in _cache:
            path = _work_dir() / f"tone-{seconds:g}s.{ext}"
            args = [ffmpeg_executable(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y"]
            args += ["-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds:g}", *AUDIO_FORMATS[ext][1], str(path)]
            subprocess.run(args, check=True, capture_output=True, timeout=60)
            _cache[key] = path.read_bytes()
        return _cache[key]


def write_audio(path: Path, ext: str | None = None, seconds: float = DEFAULT_SECONDS) -> Path:
    """Write a generated tone to `path` (format from its suffix unless `ext` is given)."""
    path.write_bytes(generate_audio(ext or path.suffix.lstrip("."), seconds))
    return path


def cover_image(fmt: str = "jpg", size: int = 640) -> bytes:
    """A cover picture: a JPEG gradient, or an RGBA PNG (which a tagger must convert to JPEG)."""
    from PIL import Image

    mode = "RGBA" if fmt == "png" else "RGB"
    image = Image.linear_gradient("L").resize((size, size)).convert(mode)
    out = io.BytesIO()
    image.save(out, format="PNG" if fmt == "png" else "JPEG", quality=90)
    return out.getvalue()


@dataclass(frozen=True)
class LoggedRequest:
    method: str
    path: str  # without the query string
    range: str | None  # the Range header, if any
    headers: dict[str, str]
    proxied: bool  # asked as an HTTP proxy (absolute URL in the request line)


class AudioServer(LocalHttpServer):
    thread_name = "fake-audio"

    """See the module docstring. Thread-safe; usable as a context manager."""

    def __init__(self, *, seconds: float = DEFAULT_SECONDS, hang_seconds: float = 30.0, slow_seconds: float = 3.0):
        self.seconds = seconds
        self.hang_seconds = hang_seconds
        self.slow_seconds = slow_seconds
        self._lock = threading.Lock()
        self._log: list[LoggedRequest] = []
        self._plans: dict[str, list[str]] = {}
        super().__init__()
        self._server.handle_error = self._handle_error  # type: ignore[method-assign]

    @staticmethod
    def _handle_error(request: Any, client_address: Any) -> None:
        """Clients hanging up mid-body (cancelled or timed-out downloads) are expected, not errors."""

    # --- addresses ------------------------------------------------------------------------------
    def url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"

    def audio_url(self, name: str = "tone", ext: str = "m4a", fault: str | None = None) -> str:
        return self.url(f"{fault + '/' if fault else ''}audio/{name}.{ext}")

    def cover_url(self, name: str = "cover", ext: str = "jpg", fault: str | None = None) -> str:
        return self.url(f"{fault + '/' if fault else ''}cover/{name}.{ext}")

    def env(self) -> dict[str, str]:
        """Environment for a worker subprocess: search with the local provider against this server."""
        return {"FAKE_AUDIO_URL": self.base_url, "AUDIO_SOURCES": "tests.fakes.audio_provider:LocalAudioProvider"}

    # --- plans for tests.fakes.audio_provider ----------------------------------------------------
    def set_plan(self, key: str, modes: Sequence[str]) -> None:
        """Candidates the local provider offers for tracks whose id is `key` or whose title contains it."""
        with self._lock:
            self._plans[key] = list(modes)

    def clear_plans(self) -> None:
        with self._lock:
            self._plans.clear()

    # --- the request log ------------------------------------------------------------------------
    @property
    def requests(self) -> list[LoggedRequest]:
        with self._lock:
            return list(self._log)

    def count(self, path_regex: str = "", method: str | None = None) -> int:
        pattern = re.compile(path_regex)
        with self._lock:
            return sum(1 for r in self._log if pattern.search(r.path) and method in (None, r.method))

    def clear_requests(self) -> None:
        with self._lock:
            self._log.clear()

    # --- serving --------------------------------------------------------------------------------
    def _resource(self, path: str) -> tuple[str, bytes] | None:
        """(content type, body) of a path without its fault prefix; None if there is no such thing."""
        kind, _, name = path.lstrip("/").partition("/")
        ext = name.rpartition(".")[2].lower() if "." in name and "/" not in name else ""
        if kind == "audio" and ext in AUDIO_FORMATS:
            return AUDIO_FORMATS[ext][0], generate_audio(ext, self.seconds)
        if kind == "cover" and ext in ("jpg", "jpeg", "png"):
            return ("image/png" if ext == "png" else "image/jpeg"), cover_image(ext)
        if path == "/plan.json":
            with self._lock:
                return "application/json", json.dumps(self._plans).encode()
        return None

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_HEAD(self) -> None:
                self._serve(send_body=False)

            def do_GET(self) -> None:
                self._serve(send_body=True)

            def _serve(self, *, send_body: bool) -> None:
                target = self.path
                proxied = target.startswith("http://")
                if proxied:  # acting as an HTTP proxy: serve the absolute URL's path
                    target = "/" + target.removeprefix("http://").partition("/")[2]
                path = target.split("?", 1)[0]
                logged = LoggedRequest(self.command, path, self.headers.get("Range"), dict(self.headers), proxied)
                with server._lock:
                    server._log.append(logged)
                first, _, rest = path.lstrip("/").partition("/")
                fault = first if first in FAULTS and rest else None
                found = server._resource("/" + rest if fault else path)
                if found is None:
                    self._status(404)
                    return
                content_type, body = found
                if fault in STATUS_FAULTS:
                    self._status(STATUS_FAULTS[fault])
                elif fault == "hang":
                    server._stopping.wait(server.hang_seconds)
                    self.close_connection = True
                elif fault == "truncated":
                    self._headers(200, content_type, len(body) * 2)
                    if send_body:
                        self.wfile.write(body[: len(body) // 2])
                    self.close_connection = True
                elif fault == "stall":
                    self._headers(200, content_type, len(body))
                    if send_body:
                        self.wfile.write(body[: len(body) // 2])
                        self.wfile.flush()
                        server._stopping.wait(server.hang_seconds)
                    self.close_connection = True
                else:
                    self._ranged(content_type, body, send_body, slow=fault == "slow")

            def _headers(self, status: int, content_type: str, length: int, extra: dict[str, str] | None = None):
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(length))
                self.send_header("Accept-Ranges", "bytes")
                for name, value in (extra or {}).items():
                    self.send_header(name, value)
                self.end_headers()

            def _status(self, status: int) -> None:
                body = f"<html><body>error {status}</body></html>".encode()
                self._headers(status, "text/html", len(body))
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _ranged(self, content_type: str, body: bytes, send_body: bool, *, slow: bool) -> None:
                start, end, status, extra = 0, len(body) - 1, 200, {}
                match = _RANGE.match(self.headers.get("Range") or "")
                if match and int(match.group(1)) < len(body):
                    start = int(match.group(1))
                    end = min(int(match.group(2)), end) if match.group(2) else end
                    status, extra = 206, {"Content-Range": f"bytes {start}-{end}/{len(body)}"}
                part = body[start : end + 1]
                self._headers(status, content_type, len(part), extra)
                if not send_body:
                    return
                if not slow:
                    self.wfile.write(part)
                    return
                pieces = 30
                size = max(1, -(-len(part) // pieces))
                for offset in range(0, len(part), size):
                    if server._stopping.wait(server.slow_seconds / pieces):
                        self.close_connection = True
                        return
                    self.wfile.write(part[offset : offset + size])
                    self.wfile.flush()

        return Handler


if __name__ == "__main__":  # a standalone server for manual runs: python -m tests.fakes.audio_server
    with AudioServer() as running:
        print(running.base_url, flush=True)
        threading.Event().wait()
