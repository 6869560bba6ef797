"""End-to-end fixtures: real bot and worker processes against the fakes and a private Redis."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from mutagen.id3 import ID3

from tests.fakes.audio_server import AudioServer
from tests.fakes.spotify_server import FakeSpotify
from tests.fakes.telegram_server import FakeTelegram
from tests.system import BotSystem

USER = 1001  # allowed
OTHER_USER = 1002  # allowed
STRANGER = 6666  # not allowed


@dataclass
class E2E:
    system: BotSystem
    telegram: FakeTelegram
    spotify: FakeSpotify
    audio: AudioServer
    redis: redis.Redis
    downloads: Path

    def send(self, text: str, user: int = USER, **kwargs: object) -> dict:
        return self.telegram.push_text(user, text, **kwargs)

    def wait_audios(self, count: int, chat: int = USER, timeout: float = 90) -> list:
        return self.telegram.wait_for(
            lambda: len(self.telegram.audios(chat)) >= count and self.telegram.audios(chat),
            timeout=timeout,
            message=f"{count} audio message(s)",
            chat_id=chat,
        )

    def wait_text(self, fragment: str, chat: int = USER, timeout: float = 60) -> str:
        def find() -> str | None:
            return next((t for t in self.telegram.texts(chat) if t and fragment in t), None)

        return self.telegram.wait_for(find, timeout=timeout, message=f"a message containing {fragment!r}", chat_id=chat)

    def transcript(self, chat: int = USER) -> str:
        return "\n".join(self.telegram.transcript(chat))


def id3_of(data: bytes) -> ID3:
    return ID3(io.BytesIO(data))


@contextlib.contextmanager
def running_e2e(
    tmp_path: Path, redis_url: str, spotify: FakeSpotify, *, audio: AudioServer | None = None, **env: str
) -> Iterator[E2E]:
    """The fakes and an (unstarted) BotSystem pointed at them and at the Redis behind `redis_url`.

    `audio` replaces the default AudioServer (e.g. shorter tones for fault tests); `env` adds settings.
    """
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    client.flushall()
    downloads = tmp_path / "downloads"
    with FakeTelegram() as telegram, audio or AudioServer() as audio_server:
        settings = {
            **telegram.env(),
            **spotify.env(),
            "REDIS_URL": redis_url,
            "ALLOWED_USERS": f"{USER},{OTHER_USER}",
            "AUDIO_SOURCES": "tests.fakes.audio_provider:LocalAudioProvider",
            "FAKE_AUDIO_URL": audio_server.base_url,
            "DOWNLOAD_DIR": str(downloads),
            "PROGRESS_INTERVAL": "1",
            "CHAT_SEND_INTERVAL": "0.2",
            "HTTP_TIMEOUT": "5",
            "DOWNLOAD_TIMEOUT": "30",
            "LYRICS": "off",  # no lyrics service on the internet: tests of lyrics pass a FakeLrclib's env()
            **env,
        }
        system = BotSystem(tmp_path, settings)
        try:
            yield E2E(system, telegram, spotify, audio_server, client, downloads)
        finally:
            system.stop_all()
            client.close()


@pytest.fixture
def e2e(tmp_path: Path, redis_proc, fake_spotify: FakeSpotify) -> Iterator[E2E]:  # type: ignore[no-untyped-def]
    with running_e2e(tmp_path, f"redis://{redis_proc.host}:{redis_proc.port}/0", fake_spotify) as running:
        yield running
