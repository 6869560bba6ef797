"""A person's own Spotify library through the real bot and worker processes: /login (PKCE) with the browser
played by the fake Spotify, /liked, /playlists and their buttons, refresh-token rotation across processes,
the clear refusals, /logout."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot import texts
from tests.e2e.conftest import E2E, OTHER_USER, USER, running_e2e
from tests.fakes.audio_server import AudioServer
from tests.fakes.spotify_server import FakeSpotify

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

LINK = re.compile(r"http://127\.0\.0\.1:\d+/authorize\?\S+")


@pytest.fixture
def e2e(tmp_path: Path, redis_proc, fake_spotify: FakeSpotify) -> Iterator[E2E]:  # type: ignore[no-untyped-def]
    url = f"redis://{redis_proc.host}:{redis_proc.port}/0"
    with running_e2e(tmp_path, url, fake_spotify, audio=AudioServer(seconds=1.0)) as running:
        yield running


def wait_new_text(e2e: E2E, fragment: str, after: int, chat: int = USER, timeout: float = 60) -> str:
    """The first message containing `fragment` among those sent after the first `after` ones."""

    def find() -> str | None:
        return next((t for t in e2e.telegram.texts(chat)[after:] if t and fragment in t), None)

    return e2e.telegram.wait_for(find, timeout=timeout, message=f"a new message containing {fragment!r}", chat_id=chat)


def ask(e2e: E2E, text: str, fragment: str, chat: int = USER) -> str:
    """Send `text` and wait for a new reply containing `fragment`."""
    before = len(e2e.telegram.texts(chat))
    e2e.send(text, user=chat)
    return wait_new_text(e2e, fragment, before, chat=chat)


def login_link(e2e: E2E, chat: int = USER) -> str:
    reply = ask(e2e, "/login", "Connect your Spotify account", chat)
    found = LINK.search(reply)
    assert found, reply
    return found.group(0)


def start_bot(e2e: E2E) -> None:
    e2e.system.start_bot()
    e2e.telegram.wait_for(lambda: e2e.telegram.commands(), timeout=30, message="the bot to start")


def test_liked_songs_and_playlists_with_a_login_that_refreshes(e2e: E2E) -> None:
    spotify = e2e.spotify
    ann = spotify.add_user("Ann Example")
    liked = [spotify.add_track(f"Liked {n}", "Heart Band") for n in (1, 2, 3)]
    spotify.like(ann, liked)  # the last liked comes first: Liked 3, Liked 2, Liked 1
    encore = spotify.add_track("Encore", "Heart Band")
    # 103 items, private: only Ann's token reads them (the embed page shows 100, and not private ones).
    big = spotify.add_playlist("Everything", "Ann Example", [*liked * 34, encore], user_owner=ann, public=False)
    other = spotify.add_user("Other Person")
    followed_ids = [spotify.add_track(f"Followed {n}", "Far Band") for n in (1, 2)]
    followed = spotify.add_playlist("Their Mix", "Other Person", followed_ids, user_owner=other, followers=[ann])
    e2e.system.start_worker(threads=2)
    start_bot(e2e)

    commands = {c["command"] for c in e2e.telegram.commands()}
    assert {"login", "logout", "liked", "playlists"} <= commands
    help_text = ask(e2e, "/help", "/status")
    assert all(f"/{name}" in help_text for name in ("login", "logout", "liked", "playlists"))
    ask(e2e, "/liked", texts.NOT_LOGGED_IN)

    # /login → the person opens the link, approves, and pastes where the browser landed.
    link = login_link(e2e)
    assert "code_challenge_method=S256" in link and "user-library-read" in link
    landed = spotify.authorize(link, ann)
    assert landed.startswith(FakeSpotify.REDIRECT_URI + "?code=")
    ask(e2e, landed, "Connected to Spotify as Ann Example")

    # /liked: delivered like a playlist, in Spotify's order.
    e2e.send("/liked")
    audios = e2e.wait_audios(3)
    assert [a.title for a in audios] == ["Liked 3", "Liked 2", "Liked 1"]
    summary = e2e.wait_text("Done:")
    assert "Liked Songs" in summary and "3 delivered" in summary

    # The access token expires: the bot refreshes it (Spotify rotates the refresh token) and stores the new one.
    spotify.expire_user_tokens()
    before = len(e2e.telegram.texts(USER))
    e2e.send("/playlists")
    wait_new_text(e2e, "Your playlists", before)
    assert spotify.refresh_grants == 1
    listing = next(m for m in reversed(e2e.telegram.sent_messages(USER)) if m.button_texts)
    assert listing.button_texts == ["Everything (103)", "Their Mix (2)"]
    data = listing.button("Everything (103)")["callback_data"]
    assert big in data and len(data.encode()) <= 64

    # It expires again: now the worker refreshes, with the refresh token the bot stored (the first is revoked).
    spotify.expire_user_tokens()
    e2e.telegram.push_callback(USER, listing.message_id, data)
    everything = e2e.wait_audios(3 + 103, timeout=240)[3:]
    assert [a.title for a in everything] == [*["Liked 1", "Liked 2", "Liked 3"] * 34, "Encore"]
    assert spotify.refresh_grants == 2
    assert spotify.live_refresh_tokens(ann) == 1
    e2e.telegram.wait_for(
        lambda: any(t and "103 delivered" in t for t in e2e.telegram.texts(USER)), timeout=60, message="summary"
    )

    # A shared link to a playlist Ann only follows: her token is refused (403), the public page is used.
    e2e.send(f"https://open.spotify.com/playlist/{followed}")
    assert [a.title for a in e2e.wait_audios(3 + 103 + 2)[-2:]] == ["Followed 1", "Followed 2"]
    e2e.telegram.wait_for(
        lambda: any(t and "2 delivered" in t and "public page" in t for t in e2e.telegram.texts(USER)),
        timeout=60,
        message="a summary saying the public page was used",
    )

    ask(e2e, "/logout", "Disconnected")
    assert e2e.redis.keys("spotbot:spotify:*") == []
    ask(e2e, "/playlists", texts.NOT_LOGGED_IN)

    logs = e2e.system.all_logs()
    for secret in ("fake-user-token-", "fake-refresh-", "code=AQ"):
        assert secret not in logs


def test_refusals_are_clear_and_store_nothing(e2e: E2E) -> None:
    spotify = e2e.spotify
    stranger = spotify.add_user("Not On The List", registered=False)
    ann = spotify.add_user("Ann Example")
    start_bot(e2e)

    # Not in the app's user list (Development Mode): Spotify answers 403; say so and how to be added.
    ask(e2e, spotify.authorize(login_link(e2e), stranger), texts.NOT_REGISTERED)
    assert "User Management" in texts.NOT_REGISTERED and "e-mail" in texts.NOT_REGISTERED
    assert e2e.redis.keys("spotbot:spotify:*") == []

    # Denied on Spotify's page.
    ask(e2e, spotify.authorize(login_link(e2e), ann, deny=True), "You didn't allow access")

    # Someone else's answer, pasted by another person with a login of their own waiting.
    login_link(e2e, chat=OTHER_USER)
    landed = spotify.authorize(login_link(e2e), ann)
    ask(e2e, landed, "belongs to another login link", chat=OTHER_USER)
    assert e2e.redis.keys("spotbot:spotify:*") == []

    # The right person: connected. The same answer again: used up.
    ask(e2e, landed, "Connected to Spotify as Ann Example")
    ask(e2e, landed, "No Spotify login is waiting")
    # An old code with a fresh login: refused by Spotify (single use), the login kept as it was.
    link = login_link(e2e)
    code = landed.split("code=")[1].split("&")[0]
    ask(e2e, code, "already used")
    assert len(e2e.redis.keys("spotbot:spotify:*")) == 1
    assert link

    # /login is for private chats: the pasted answer is a key to the account.
    e2e.send("/login@" + e2e.telegram.bot_user["username"], chat_id=-100777, chat_type="group")
    e2e.wait_text(texts.LOGIN_PRIVATE_ONLY, chat=-100777)
