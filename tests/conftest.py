"""Shared pytest fixtures; each section belongs to the fake it wires in."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

# No test may reach the real lyrics service: settings built in this process (and the processes it starts
# with its environment) look up no lyrics unless a test points them at a FakeLrclib.
os.environ["LYRICS"] = "off"
os.environ.pop("LYRICS_URL", None)

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


# --- fake LRCLIB ---
from tests.fakes.lrclib_server import FakeLrclib  # noqa: E402


@pytest.fixture
def fake_lrclib() -> Iterator[FakeLrclib]:
    """A running fake LRCLIB, empty; `fake_lrclib.add(...)` records, `.env()` / `.settings_kwargs()` point at it."""
    with FakeLrclib() as server:
        yield server


# --- end fake LRCLIB ---
