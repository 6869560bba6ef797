"""What a person's own library looks like: /me JSON → models, the /playlists buttons, the progress notes
(pure, no I/O)."""

from __future__ import annotations

from typing import Any

import pytest

from bot import texts
from bot.handlers import CALLBACK_PLAYLIST, MAX_PLAYLIST_BUTTONS, playlist_keyboard
from bot.progress import headline, render_progress
from bot.requests import RequestMeta, RequestSnapshot, Resolution, TrackState
from pipeline.models import PlaylistSummary, Track
from pipeline.spotify_parse import LIKED_SONGS, parse_playlist_summary, parse_saved_tracks

PLAYLIST_ID = "5BANXYTvIKY8yeuB8ZCUIw"


def track_json(n: int, **extra: Any) -> dict[str, Any]:
    return {
        "id": f"{n:022d}",
        "name": f"Song {n}",
        "artists": [{"name": "Band"}],
        "duration_ms": 1000,
        "album": {"name": "Album", "images": []},
        "type": "track",
        **extra,
    }


def test_saved_tracks_keep_spotifys_order_and_skip_what_cannot_be_fetched() -> None:
    entries = [
        {"added_at": "2026-02-01T00:00:00Z", "track": track_json(2)},
        {"added_at": "2026-01-01T00:00:00Z", "track": None},
        {"added_at": "2025-12-01T00:00:00Z", "track": track_json(1)},
    ]
    liked = parse_saved_tracks(entries, "Ann")
    assert [t.title for t in liked.tracks] == ["Song 2", "Song 1"]
    assert (liked.kind, liked.name, liked.owner) == ("playlist", LIKED_SONGS, "Ann")
    assert len(liked.skipped) == 1


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        (
            {"id": PLAYLIST_ID, "name": "Mine", "owner": {"display_name": "Ann"}, "items": {"total": 120}},
            PlaylistSummary(id=PLAYLIST_ID, name="Mine", owner="Ann", total=120),
        ),
        (  # before 2026 the count sat under "tracks"
            {"id": PLAYLIST_ID, "name": "Old", "owner": {"id": "ann"}, "tracks": {"total": 3}},
            PlaylistSummary(id=PLAYLIST_ID, name="Old", owner="ann", total=3),
        ),
        ({"id": PLAYLIST_ID, "name": ""}, PlaylistSummary(id=PLAYLIST_ID, name="Untitled")),
        ({"id": PLAYLIST_ID, "name": "X", "items": {"total": True}}, PlaylistSummary(id=PLAYLIST_ID, name="X")),
        ({"id": "../../me", "name": "Hostile"}, None),
        ({"name": "No id"}, None),
        (None, None),
        ("text", None),
    ],
)
def test_playlist_summary(item: object, expected: PlaylistSummary | None) -> None:
    assert parse_playlist_summary(item) == expected


def test_playlist_buttons_fit_telegram_and_name_their_owner() -> None:
    playlists = [PlaylistSummary(id=PLAYLIST_ID, name="N" * 200, total=7)] + [
        PlaylistSummary(id=f"{n:022d}", name=f"List {n}") for n in range(150)
    ]
    keyboard = playlist_keyboard(playlists, user_id=9_999_999_999_999)
    buttons = [row[0] for row in keyboard.inline_keyboard]
    assert len(buttons) == MAX_PLAYLIST_BUTTONS
    assert buttons[0].text.endswith("… (7)") and len(buttons[0].text) < 70
    assert buttons[1].text == "List 0"
    for button in buttons:
        data = button.callback_data
        assert isinstance(data, str) and len(data.encode()) <= 64
        match = CALLBACK_PLAYLIST.fullmatch(data)
        assert match and match.group(2) == "9999999999999"
    assert CALLBACK_PLAYLIST.fullmatch(f"pl:{PLAYLIST_ID}:1") is not None
    for forged in (f"pl:{PLAYLIST_ID}", "pl:../../x:1", f"pl:{PLAYLIST_ID}:1:2", f"pl:{PLAYLIST_ID}:-1"):
        assert CALLBACK_PLAYLIST.fullmatch(forged) is None


def liked_snapshot(**resolution: Any) -> RequestSnapshot:
    meta = RequestMeta(id="0" * 12, chat_id=1, user_id=1, link=texts.LIKED_LABEL, created_at=0.0, source="liked")
    if not resolution:
        return RequestSnapshot(meta=meta)
    tracks = [Track(spotify_id=f"{n:022d}", title=f"Song {n}", artists=["Band"]) for n in range(2)]
    return RequestSnapshot(
        meta=meta,
        status="running",
        resolution=Resolution(kind="playlist", total=2, available=2, **resolution),
        tracks=tracks,
        states=[TrackState(), TrackState()],
    )


def test_liked_songs_read_and_shown_like_a_playlist() -> None:
    assert headline(liked_snapshot()) == "🔎 Reading your Liked Songs…"
    assert headline(liked_snapshot(name=LIKED_SONGS, owner="Ann")) == "📜 Playlist · Ann – Liked Songs · 2 tracks"


def test_a_playlist_the_login_could_not_read_says_so() -> None:
    text = render_progress(liked_snapshot(name="Their Mix", owner="Bob", login_refused=True, truncated=True), 0.0)
    assert texts.LOGIN_REFUSED_NOTE in text
    assert "only the first 100 tracks of this playlist to bots" not in text, "one note, not two"
    plain = render_progress(liked_snapshot(name="Mine", owner="Ann"), 0.0)
    assert texts.LOGIN_REFUSED_NOTE not in plain


def test_the_commands_are_in_help() -> None:
    from bot.app import COMMANDS

    names = {command.command for command in COMMANDS}
    assert {"login", "logout", "liked", "playlists"} <= names
    for name in names:
        assert f"/{name}" in texts.HELP
