"""Fairness: a big playlist must not hold up another chat's single track (no plain FIFO)."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import E2E, OTHER_USER, USER

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

WINDOW = 2  # TRACK_WINDOW: messages of one request in the queue at once
THREADS = 1


def test_a_single_track_overtakes_a_big_playlist(e2e: E2E) -> None:
    ids = [e2e.spotify.add_track(f"Long Playlist Song {n}", "Marathon") for n in range(1, 41)]
    playlist_id = e2e.spotify.add_playlist("Forty Songs", "Runner", ids, owned=True)
    single_id = e2e.spotify.add_track("Quick One", "Sprinter")
    e2e.system.start_worker(threads=THREADS, TRACK_WINDOW=str(WINDOW))
    e2e.system.start_bot(TRACK_WINDOW=str(WINDOW))

    e2e.send(f"https://open.spotify.com/playlist/{playlist_id}")
    e2e.wait_audios(1)
    e2e.send(f"https://open.spotify.com/track/{single_id}", user=OTHER_USER)
    before = len(e2e.telegram.audios(USER))

    e2e.wait_audios(1, chat=OTHER_USER, timeout=120)

    overtaken_by = len(e2e.telegram.audios(USER)) - before
    # Ahead of the single track: at most the playlist's window in the queue plus what the worker was running.
    assert overtaken_by <= WINDOW + THREADS + 1, f"{overtaken_by} playlist tracks went first"
    assert before + overtaken_by < len(ids), "the single track did not wait for the whole playlist"
