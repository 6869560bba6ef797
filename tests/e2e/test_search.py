"""Text search as a user meets it: words in a chat, result buttons, a tap, the song — through real bot and worker
processes against the fake Telegram, the fake Spotify (`/v1/search`) and the fake YouTube Music."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import E2E, OTHER_USER, STRANGER, USER, id3_of, running_e2e
from tests.fakes.spotify_server import FakeSpotify
from tests.fakes.telegram_server import ChatMessage
from tests.fakes.ytmusic_server import FakeYouTubeMusic

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

BOT = "fake_mp3_bot"
GROUP = -4200000001


def results_message(e2e: E2E, chat: int = USER) -> ChatMessage:
    return e2e.telegram.wait_for(
        lambda: next((m for m in e2e.telegram.sent_messages(chat) if "pick one" in (m.text or "")), None),
        timeout=60,
        message="the search results",
        chat_id=chat,
    )


def answers_to(e2e: E2E, update: dict) -> str:
    query_id = update["callback_query"]["id"]
    answer = e2e.telegram.wait_for(
        lambda: next((a for a in e2e.telegram.answered_callbacks if a.query_id == query_id), None),
        timeout=30,
        message=f"an answer to {query_id}",
    )
    return answer.text or ""


def test_words_find_tracks_and_a_tap_delivers_one(e2e: E2E) -> None:
    wanted = e2e.spotify.add_track(
        "Midnight Drive", ["Luna Park", "Neon Kid"], album="Night Songs", duration_ms=225_000
    )
    e2e.spotify.add_track("Midnight Drive (Live)", "Luna Park", duration_ms=241_000)
    e2e.spotify.add_track("Noon Walk", "Luna Park")
    e2e.system.start_worker()
    e2e.system.start_bot()
    e2e.telegram.wait_for(lambda: e2e.telegram.commands(), timeout=30, message="the bot to start")
    assert "search" in [c["command"] for c in e2e.telegram.commands()]

    e2e.send("luna park   midnight\u200b drive")

    results = results_message(e2e)
    assert results.button_texts == [
        "Luna Park, Neon Kid – Midnight Drive (3:45)",
        "Luna Park – Midnight Drive (Live) (4:01)",
    ]
    assert all(len(b["callback_data"].encode()) <= 64 for row in results.buttons for b in row)
    [search] = [r for r in e2e.spotify.request_log if r.path == "/v1/search"]
    assert search.query["q"] == "luna park midnight drive"
    assert search.query["type"] == "track" and int(search.query["limit"]) <= 10

    data = results.button("Midnight Drive (3:45)")["callback_data"]
    answer = answers_to(e2e, e2e.telegram.push_callback(USER, results.message_id, data))
    assert "Midnight Drive" in answer

    [audio] = e2e.wait_audios(1)
    assert audio.title == "Midnight Drive" and audio.performer == "Luna Park, Neon Kid"
    tags = id3_of(audio.data)
    assert str(tags["TALB"]) == "Night Songs"
    assert [f.url for f in tags.getall("WXXX") if f.desc == "Spotify"] == [f"https://open.spotify.com/track/{wanted}"]
    assert "1 delivered" in e2e.wait_text("Done:")
    assert e2e.spotify.count(f"/v1/tracks/{wanted}") >= 1, "the request read its link like a shared one"

    # The results stay usable: a second tap fetches another.
    data = results.button("(Live)")["callback_data"]
    e2e.telegram.push_callback(USER, results.message_id, data)
    audios = e2e.wait_audios(2)
    assert audios[1].title == "Midnight Drive (Live)"
    assert "Traceback" not in e2e.transcript()


def test_nothing_found_says_so_with_the_words(e2e: E2E) -> None:
    e2e.system.start_worker()
    e2e.system.start_bot()

    e2e.send("zzqx <b>unheard</b> of")

    reply = e2e.wait_text("Nothing found")
    assert "“zzqx <b>unheard</b> of”" in reply
    assert not any(m.buttons for m in e2e.telegram.sent_messages(USER))


def test_search_command_without_words_explains_itself(e2e: E2E) -> None:
    e2e.system.start_worker()
    e2e.system.start_bot()
    e2e.send("/search")
    e2e.wait_text("What should I look for?")
    e2e.send("/help")
    assert "/search" in e2e.wait_text("/status")


def test_search_in_a_group_and_only_the_searcher_may_pick(e2e: E2E) -> None:
    e2e.spotify.add_track("Evergreen", "Pine Trees")
    e2e.spotify.add_track("Evergreen Forest", "Oak Leaves")
    e2e.system.start_worker()
    e2e.system.start_bot()

    e2e.send("evergreen", chat_id=GROUP, chat_type="group")  # chatter: not addressed
    e2e.send(f"/search@{BOT} pine trees evergreen", chat_id=GROUP, chat_type="group")

    results = results_message(e2e, chat=GROUP)
    assert results.button_texts == ["Pine Trees – Evergreen (3:00)"]
    assert e2e.spotify.count("/v1/search") == 1, "group chatter is not searched"
    data = results.button("Evergreen")["callback_data"]

    refused = answers_to(e2e, e2e.telegram.push_callback(OTHER_USER, results.message_id, data, chat_id=GROUP))
    assert "Only the person who searched" in refused
    stranger = answers_to(e2e, e2e.telegram.push_callback(STRANGER, results.message_id, data, chat_id=GROUP))
    assert "not on its list" in stranger
    forged = answers_to(e2e, e2e.telegram.push_callback(USER, results.message_id, "s:0123456789ab:9", chat_id=GROUP))
    assert "expired" in forged

    e2e.telegram.push_callback(USER, results.message_id, data, chat_id=GROUP)
    [audio] = e2e.wait_audios(1, chat=GROUP)
    assert audio.title == "Evergreen"
    assert "1 delivered" in e2e.wait_text("Done:", chat=GROUP)
    assert e2e.telegram.audios(OTHER_USER) == []

    # A mention searches too.
    e2e.send(f"@{BOT} oak leaves", chat_id=GROUP, chat_type="group")
    e2e.telegram.wait_for(
        lambda: any(
            "Oak Leaves – Evergreen Forest (3:00)" in m.button_texts for m in e2e.telegram.sent_messages(GROUP)
        ),
        timeout=60,
        message="results of the mention",
        chat_id=GROUP,
    )


def test_a_stranger_gets_the_refusal_and_no_search(e2e: E2E) -> None:
    e2e.system.start_worker()
    e2e.system.start_bot()

    e2e.send("daft punk one more time", user=STRANGER)
    e2e.send("/search daft punk", user=STRANGER)

    assert str(STRANGER) in e2e.wait_text("not on its list", chat=STRANGER)
    e2e.send("/help")
    e2e.wait_text("/status")
    assert e2e.spotify.count("/v1/search") == 0
    assert len([m for m in e2e.telegram.sent_messages(STRANGER) if "not on its list" in (m.text or "")]) == 1


def test_search_service_down_is_a_calm_message(e2e: E2E) -> None:
    e2e.spotify.fail("/v1/search", 503, times=None)
    e2e.system.start_worker()
    e2e.system.start_bot()

    e2e.send("anything at all")

    e2e.wait_text("Search is unavailable right now")
    e2e.spotify.clear_faults()
    e2e.spotify.add_track("Back Again", "Comeback Kid")
    e2e.send("comeback kid back again")
    assert results_message(e2e).button_texts == ["Comeback Kid – Back Again (3:00)"]
    assert "Traceback" not in e2e.transcript()


# --- without Spotify credentials: YouTube Music --------------------------------------------------------


@pytest.fixture
def e2e_ytmusic(tmp_path: Path, redis_proc, fake_spotify: FakeSpotify) -> Iterator[tuple[E2E, FakeYouTubeMusic]]:  # type: ignore[no-untyped-def]
    with FakeYouTubeMusic() as ytmusic:
        env = {**fake_spotify.env(credentials=False), **ytmusic.env()}
        url = f"redis://{redis_proc.host}:{redis_proc.port}/0"
        with running_e2e(tmp_path, url, fake_spotify, **env) as running:
            yield running, ytmusic


def test_without_credentials_youtube_music_results_are_delivered(
    e2e_ytmusic: tuple[E2E, FakeYouTubeMusic],
) -> None:
    e2e, ytmusic = e2e_ytmusic
    e2e.system.start_worker()
    e2e.system.start_bot()

    e2e.send("Metallica For Whom The Bell Tolls Remastered")  # a recorded YouTube Music search

    results = results_message(e2e)
    assert len(results.button_texts) == 5
    assert results.button_texts[0] == "Metallica – For Whom The Bell Tolls (5:10)"
    assert [(s.filter, s.query) for s in ytmusic.searches] == [
        ("songs", "Metallica For Whom The Bell Tolls Remastered")
    ]

    e2e.telegram.push_callback(USER, results.message_id, results.button("(5:10)")["callback_data"])

    [audio] = e2e.wait_audios(1)
    assert audio.title == "For Whom The Bell Tolls" and audio.performer == "Metallica"
    tags = id3_of(audio.data)
    assert str(tags["TALB"]) == "Ride The Lightning"
    assert not [f for f in tags.getall("WXXX") if f.desc == "Spotify"], "no made-up Spotify link"
    assert tags.getall("APIC"), "YouTube Music's cover"
    assert "1 delivered" in e2e.wait_text("Done:")
    assert not [r for r in e2e.spotify.request_log if r.path.startswith(("/v1/", "/embed/"))], (
        "nothing read from Spotify"
    )


def test_a_slow_search_holds_up_nothing_else(e2e: E2E) -> None:
    e2e.spotify.add_track("Slow Burner", "Patience")
    link = e2e.spotify.add_track("Quick One", "Hurry")
    e2e.spotify.fail("/v1/search", 200, times=1, delay=3, body={"tracks": {"items": [], "total": 0}})
    e2e.system.start_worker()
    e2e.system.start_bot()
    e2e.telegram.wait_for(lambda: e2e.telegram.commands(), timeout=30, message="the bot to start")

    e2e.send("patience slow burner")
    e2e.send("/help", user=OTHER_USER)
    e2e.send(f"https://open.spotify.com/track/{link}")

    e2e.wait_text("Nothing found for “patience slow burner”")
    sends = [str(c.params.get("text", "")) for c in e2e.telegram.calls_to("sendMessage")]
    nothing = next(n for n, text in enumerate(sends) if "Nothing found" in text)
    helped = next(n for n, text in enumerate(sends) if "/search" in text)
    progress = next(n for n, text in enumerate(sends) if f"open.spotify.com/track/{link}" in text)
    assert helped < nothing and progress < nothing, f"answered while the search was waiting: {sends}"
    e2e.wait_audios(1)


def test_search_in_all_in_one_mode(e2e: E2E) -> None:
    e2e.spotify.add_track("Solo Search", "One Process")
    bot = e2e.system.start_bot(REDIS_URL="")

    e2e.send("one process solo search")

    results = results_message(e2e)
    e2e.telegram.push_callback(USER, results.message_id, results.button("Solo Search")["callback_data"])
    [audio] = e2e.wait_audios(1)
    assert audio.title == "Solo Search"
    assert bot.alive
