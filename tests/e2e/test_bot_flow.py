"""The product as a user meets it: links in a chat, songs back, through real bot and worker processes."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import E2E, OTHER_USER, STRANGER, USER, id3_of

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]


def final_text(e2e: E2E, chat: int = USER) -> str:
    return e2e.wait_text("Done:", chat=chat)


def test_one_track_arrives_tagged(e2e: E2E) -> None:
    track_id = e2e.spotify.add_track("Midnight Drive", ["Luna Park", "Neon Kid"], album="Night Songs")
    e2e.system.start_worker()
    e2e.system.start_bot()

    e2e.send(f"listen to this https://open.spotify.com/track/{track_id}?si=abc !")

    [audio] = e2e.wait_audios(1)
    assert audio.filename == "Luna Park, Neon Kid - Midnight Drive.mp3"
    assert audio.title == "Midnight Drive"
    assert audio.performer == "Luna Park, Neon Kid"
    assert audio.duration and audio.duration > 0
    assert audio.thumbnail and len(audio.thumbnail) < 200_000
    tags = id3_of(audio.data)
    assert tags.version[:2] == (2, 3)
    assert str(tags["TIT2"]) == "Midnight Drive"
    assert tags["TPE1"].text == ["Luna Park", "Neon Kid"] or str(tags["TPE1"]) == "Luna Park/Neon Kid"
    assert str(tags["TALB"]) == "Night Songs"
    assert tags.getall("APIC"), "cover art embedded"
    summary = final_text(e2e)
    assert "1 delivered" in summary
    progress = next(m for m in e2e.telegram.sent_messages(USER) if m.text and "Done:" in m.text)
    assert progress.button_texts == [], "the Cancel button goes away once finished"


def test_album_arrives_in_order(e2e: E2E) -> None:
    titles = [f"Chapter {n}" for n in range(1, 9)]
    album_id = e2e.spotify.add_album("Long Story", "The Narrators", titles)
    e2e.system.start_worker(threads=3)
    e2e.system.start_bot()

    e2e.send(f"https://open.spotify.com/album/{album_id}")

    audios = e2e.wait_audios(len(titles))
    assert [a.title for a in audios] == titles
    numbers = [str(id3_of(a.data)["TRCK"]) for a in audios]
    assert numbers == [f"{n}/{len(titles)}" for n in range(1, len(titles) + 1)]
    summary = final_text(e2e)
    assert "Album · The Narrators – Long Story · 8 tracks" in summary
    assert "8 delivered" in summary
    assert e2e.telegram.duplicate_audios(USER) == []


def test_playlist_with_unavailable_items_reports_them(e2e: E2E) -> None:
    ids = [e2e.spotify.add_track(f"Mix Song {n}", f"Artist {n}") for n in range(1, 4)]
    playlist_id = e2e.spotify.add_playlist(
        "Road Trip",
        "Some Curator",
        [ids[0], None, ids[1], ids[2]],
        extra_items=[e2e.spotify.local_item("My Local Demo")],
        owned=True,
    )
    e2e.system.start_worker()
    e2e.system.start_bot()

    e2e.send(f"https://open.spotify.com/playlist/{playlist_id}")

    audios = e2e.wait_audios(3)
    assert [a.title for a in audios] == ["Mix Song 1", "Mix Song 2", "Mix Song 3"]
    summary = final_text(e2e)
    assert "3 delivered" in summary
    assert "skipped" in summary


def test_cached_track_is_resent_by_file_id(e2e: E2E) -> None:
    track_id = e2e.spotify.add_track("Evergreen", "Pine Trees")
    e2e.system.start_worker()
    e2e.system.start_bot()
    e2e.send(f"https://open.spotify.com/track/{track_id}")
    e2e.wait_audios(1)
    final_text(e2e)
    downloads_before = len(e2e.audio.requests)

    e2e.send(f"https://open.spotify.com/track/{track_id}", user=OTHER_USER)

    [again] = e2e.wait_audios(1, chat=OTHER_USER)
    assert again.by_file_id
    assert len(e2e.audio.requests) == downloads_before, "no search, no download"


def test_cancel_button_stops_a_playlist(e2e: E2E) -> None:
    ids = [e2e.spotify.add_track(f"Slow Song {n} [fake: slow]", "Snail") for n in range(1, 13)]
    playlist_id = e2e.spotify.add_playlist("Slow Jams", "Snail Fan", ids, owned=True)
    e2e.system.start_worker(threads=1)
    e2e.system.start_bot()
    e2e.send(f"https://open.spotify.com/playlist/{playlist_id}")
    e2e.wait_audios(1)

    e2e.send("/status")
    status = e2e.wait_text("request(s) running")
    assert "Slow Jams" in status

    progress = next(m for m in e2e.telegram.sent_messages(USER) if "Cancel" in " ".join(m.button_texts))
    e2e.telegram.push_callback(USER, progress.message_id, progress.button("Cancel")["callback_data"])

    summary = e2e.wait_text("Cancelled")
    assert "cancelled" in summary
    delivered = len(e2e.telegram.audios(USER))
    assert delivered < 12
    e2e.send("/status")
    e2e.wait_text("Nothing is running")
    assert len(e2e.telegram.audios(USER)) <= delivered + 1


def test_cancel_command(e2e: E2E) -> None:
    ids = [e2e.spotify.add_track(f"Tune {n} [fake: slow]", "Band") for n in range(1, 10)]
    album_like = e2e.spotify.add_playlist("Many Tunes", "DJ", ids, owned=True)
    e2e.system.start_worker(threads=1)
    e2e.system.start_bot()
    e2e.send(f"https://open.spotify.com/playlist/{album_like}")
    e2e.wait_text("Playlist · DJ – Many Tunes")

    e2e.send("/cancel")

    e2e.wait_text("Cancelling 1 request(s)")
    e2e.wait_text("🛑 Cancelled")


def test_someone_elses_cancel_button_does_nothing(e2e: E2E) -> None:
    ids = [e2e.spotify.add_track(f"Group Song {n}", "Choir") for n in range(1, 6)]
    playlist_id = e2e.spotify.add_playlist("Choir Set", "Choir", ids, owned=True)
    e2e.system.start_worker(threads=1)
    e2e.system.start_bot()
    e2e.send(f"https://open.spotify.com/playlist/{playlist_id}")
    progress = e2e.telegram.wait_for(
        lambda: next((m for m in e2e.telegram.sent_messages(USER) if m.button_texts), None), timeout=30
    )

    e2e.telegram.push_callback(OTHER_USER, progress.message_id, f"cancel:{'0' * 12}", chat_id=USER)
    data = progress.button("Cancel")["callback_data"]
    e2e.telegram.push_callback(OTHER_USER, progress.message_id, data, chat_id=USER)

    e2e.telegram.wait_for(lambda: len(e2e.telegram.answered_callbacks) >= 2, timeout=30)
    answers = [a.text for a in e2e.telegram.answered_callbacks]
    assert any("Only the person" in (a or "") for a in answers)
    summary = final_text(e2e)
    assert "5 delivered" in summary


def test_unauthorized_user_is_told_their_id_and_nothing_runs(e2e: E2E) -> None:
    track_id = e2e.spotify.add_track("Secret", "Nobody")
    e2e.system.start_worker()
    e2e.system.start_bot()
    e2e.spotify.clear_requests()

    e2e.send(f"https://open.spotify.com/track/{track_id}", user=STRANGER)

    refusal = e2e.wait_text("not on its list", chat=STRANGER)
    assert str(STRANGER) in refusal
    assert e2e.spotify.requests == []
    assert e2e.audio.requests == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("hello there", "Nothing found for “hello there”"),
        ("https://open.spotify.com/artist/0OdUWJ0sBjDrqHygGUXeCF", "artist"),
        ("https://www.youtube.com/watch?v=dQw4w9WgXcQ", "Spotify"),
        ("/frobnicate", "don't know that command"),
        ("https://open.spotify.com/track/0000000000000000000000", "Couldn't read"),
    ],
)
def test_bad_inputs_get_a_helpful_reply(e2e: E2E, text: str, expected: str) -> None:
    e2e.system.start_worker()
    e2e.system.start_bot()
    e2e.send(text)
    reply = e2e.wait_text(expected)
    assert "Traceback" not in e2e.transcript()
    assert reply


def test_all_in_one_mode_needs_no_redis(e2e: E2E) -> None:
    track_id = e2e.spotify.add_track("Solo", "One Process")
    bot = e2e.system.start_bot(REDIS_URL="")
    e2e.send(f"https://open.spotify.com/track/{track_id}")
    [audio] = e2e.wait_audios(1)
    assert audio.title == "Solo"
    assert bot.alive


def test_limits_are_explained(e2e: E2E) -> None:
    album_id = e2e.spotify.add_album("Five Songs", "Quintet", [f"Part {n}" for n in range(1, 6)])
    other_album = e2e.spotify.add_album("Another", "Quintet", ["Encore"])
    env = {"MAX_TRACKS_PER_REQUEST": "3", "MAX_REQUESTS_PER_USER": "1", "TELEGRAM_UPLOAD_LIMIT_MB": "0.01"}
    e2e.system.start_worker(**env)
    e2e.system.start_bot(**env)

    e2e.send(f"https://open.spotify.com/album/{album_id} https://open.spotify.com/album/{other_album}")

    e2e.wait_text("You already have 1 request(s) waiting or running")
    summary = e2e.wait_text("Done:")
    assert "Only the first 3 of 5 tracks" in summary
    assert "3 failed" in summary
    assert "file too large for Telegram" in summary
    assert e2e.telegram.audios(USER) == []
