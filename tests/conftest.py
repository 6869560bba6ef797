"""Shared pytest fixtures; each section belongs to the fake it wires in."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

# --- fake Spotify ---
from tests.fakes.spotify_server import FakeSpotify


@pytest.fixture
def fake_spotify() -> Iterator[FakeSpotify]:
    """A running fake Spotify (Web API, token endpoint, embed pages, images) with the recorded catalog.

    Use `fake_spotify.settings()` / `.settings(credentials=False)` or `.env()` to point code at it.
    """
    with FakeSpotify() as server:
        yield server


# --- end fake Spotify ---
