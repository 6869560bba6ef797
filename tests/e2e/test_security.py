"""Security, through the real bot and worker processes (DEBUG logging on, as an operator chasing a bug would):

- a user not in ALLOWED_USERS gets a refusal and nothing else: no Spotify or audio request, no state;
- a Cancel button acts only for the user who owns its request;
- the bot token and the Spotify secret (in any form they take on the wire) never reach a log, even while
  every outside service misbehaves and when Telegram rejects the token at start;
- hostile titles (`../../etc/passwd`, `CON`, 300 characters…) are delivered under safe file names and
  nothing is written outside DOWNLOAD_DIR.
"""

from __future__ import annotations

import base64
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.e2e.conftest import E2E, OTHER_USER, STRANGER, USER, id3_of, running_e2e
from tests.fakes.spotify_server import FakeSpotify
from tests.fakes.telegram_server import DEFAULT_TOKEN
from tests.system import Process, files_under

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

BOT = "fake_mp3_bot"
GROUP = -4200000001
THIRD_USER, FOURTH_USER = 1003, 1004  # allowed here too
REFUSED = "not on its list"
# `python -m bot` with the root logger at DEBUG, set up before the bot's own logging setup (which then only adds
# its secret filter), the way `dramatiq --verbose` does it for the workers.
DEBUG_BOT = (
    "import logging, runpy; "
    "logging.basicConfig(level=logging.DEBUG, format='%(asctime)s %(levelname)s %(name)s: %(message)s'); "
    "runpy.run_module('bot', run_name='__main__', alter_sys=True)"
)
WRONG_TOKEN = "123456789:WRONG-token-that-must-not-be-logged"
ALLOWED = f"{USER},{OTHER_USER},{THIRD_USER},{FOURTH_USER}"
RESERVED_STEMS = {"CON", "PRN", "AUX", "NUL", *(f"COM{n}" for n in range(10)), *(f"LPT{n}" for n in range(10))}


def start_debug_bot(e2e: E2E, name: str = "bot", **env: str) -> Process:
    return e2e.system._spawn(name, [sys.executable, "-c", DEBUG_BOT], env)


def start_debug_worker(e2e: E2E, name: str = "worker") -> Process:
    argv = [sys.executable, "-m", "dramatiq", "bot.worker", "--processes", "1", "--threads", "3", "--verbose"]
    return e2e.system._spawn(name, argv)


@pytest.fixture(scope="module")
def e2e(tmp_path_factory: pytest.TempPathFactory, redis_proc) -> Iterator[E2E]:  # type: ignore[no-untyped-def]
    redis_url = f"redis://{redis_proc.host}:{redis_proc.port}/0"
    workdir = tmp_path_factory.mktemp("security")
    with FakeSpotify() as spotify, running_e2e(workdir, redis_url, spotify, ALLOWED_USERS=ALLOWED) as system:
        start_debug_worker(system)
        start_debug_bot(system)
        system.telegram.wait_for(system.telegram.commands, timeout=30, message="the bot to start")
        yield system


def secret_forms(token: str, client_id: str, secret: str) -> list[str]:
    """Every form a leaked secret could take in a log line."""
    return [
        token,
        token.partition(":")[2],
        quote(token, safe=""),
        secret,
        base64.b64encode(f"{client_id}:{secret}".encode()).decode(),
    ]


def settled(e2e: E2E, chat: int, count: int = 1) -> list[str]:
    done = ("Done:", "Cancelled", "Couldn't read")
    return e2e.telegram.wait_for(
        lambda: len(found := [t for t in e2e.telegram.texts(chat) if any(d in t for d in done)]) >= count and found,
        timeout=120,
        message=f"{count} settled request(s)",
        chat_id=chat,
    )


def request_keys(e2e: E2E) -> list[str]:
    return list(e2e.redis.scan_iter("spotbot:req:*"))


def test_strangers_cause_no_outside_requests(e2e: E2E) -> None:
    track = e2e.spotify.add_track("Private Song", "Private Band")
    album = e2e.spotify.add_album("Private Album", "Private Band", ["One", "Two"])
    playlist = e2e.spotify.add_playlist("Private List", "Someone", [track], owned=True)
    links = [
        f"https://open.spotify.com/track/{track}",
        f"https://open.spotify.com/album/{album}",
        f"spotify:playlist:{playlist}",
        "https://spotify.link/AbCdEf123",  # a short link: resolving it would be an outside request too
        f"{track} https://open.spotify.com/track/{track} https://open.spotify.com/album/{album}",
    ]
    keys_before = set(request_keys(e2e))
    e2e.spotify.clear_requests()
    e2e.audio.clear_requests()
    telegram = e2e.telegram

    for link in links:
        telegram.push_text(STRANGER, link)
    telegram.push_text(STRANGER, links[0], forward_from=USER)  # forwarding an allowed user's message
    telegram.push_photo(STRANGER, f"look {links[0]}")
    telegram.push_text(STRANGER, links[1], edited=True)
    for command in ("/start", "/status", "/cancel", "/frobnicate"):
        telegram.push_text(STRANGER, command)
    telegram.push_text(STRANGER, f"@{BOT} {links[0]}", chat_id=GROUP, chat_type="group")
    telegram.push_text(STRANGER, links[0], chat_id=GROUP, chat_type="group")  # not addressed: silence
    refusal = e2e.wait_text(REFUSED, chat=STRANGER)
    assert str(STRANGER) in refusal, "the refusal tells the user their id"
    first_refusal = telegram.sent_messages(STRANGER)[0].message_id
    telegram.push_callback(STRANGER, first_refusal, "cancel:0123456789ab")
    e2e.send("/help", user=USER)  # updates are handled in order: once this is answered, all of the above were
    e2e.wait_text("/status", chat=USER)
    time.sleep(1)

    # One refusal per chat: a stranger's flood of messages does not make the bot send a flood of refusals.
    assert [t for t in telegram.texts(STRANGER) if REFUSED in t] == [refusal]
    assert len([t for t in telegram.texts(GROUP) if REFUSED in t]) == 1
    assert next(a.text for a in telegram.answered_callbacks if a.chat_id == STRANGER).startswith("Sorry")
    assert e2e.spotify.requests == [], "no Spotify request for a stranger"
    assert e2e.audio.requests == [], "no search or download for a stranger"
    assert set(request_keys(e2e)) == keys_before, "no request state for a stranger"
    assert telegram.audios(STRANGER) == [] and telegram.audios(GROUP) == []


def test_a_button_acts_only_for_its_owner(e2e: E2E) -> None:
    ids = [e2e.spotify.add_track(f"Owned {n} [fake: slow]", "Owners") for n in range(4)]
    playlist = e2e.spotify.add_playlist("Owned Set", "Owner", ids, owned=True)
    group = GROUP - 1
    telegram = e2e.telegram
    telegram.push_text(USER, f"@{BOT} https://open.spotify.com/playlist/{playlist}", chat_id=group, chat_type="group")
    progress = telegram.wait_for(
        lambda: next((m for m in telegram.sent_messages(group) if m.button_texts), None), timeout=30, chat_id=group
    )
    data = progress.button("Cancel")["callback_data"]
    rid = data.partition(":")[2]

    def answer_to(user: int) -> str:
        pushed = telegram.push_callback(user, progress.message_id, data, chat_id=group)["callback_query"]["id"]
        return telegram.wait_for(
            lambda: next((a.text for a in telegram.answered_callbacks if a.query_id == pushed), None), timeout=30
        )

    assert "Only the person" in answer_to(OTHER_USER)
    assert REFUSED in answer_to(STRANGER)
    telegram.push_text(OTHER_USER, f"/cancel@{BOT}", chat_id=group, chat_type="group")
    e2e.wait_text("nothing to cancel", chat=group)
    assert e2e.redis.hget(f"spotbot:req:{rid}", "status") != "cancelled", "nobody but the owner cancelled it"

    assert "Cancelling" in answer_to(USER)
    [final] = settled(e2e, group)
    assert "Cancelled" in final


NASTY_TITLES = [
    ("../../etc/passwd", ["Path Walkers"]),
    ("..\\..\\boot.ini", ["../../../tmp"]),
    ("CON", ["PRN"]),
    ("nul", ["AUX"]),
    ("Ünïcödé " + "Долгое название " * 20, ["Ø" * 40]),  # ~300 characters, over 255 bytes in UTF-8
    ("x" * 300, ["y"]),
    ('a/b\\c:d*e?f"g<h>i|j', ["Slash/Back\\slash"]),
    ("Line one\nline two\ttab\x07bell", ["Control\x00Char"]),
    ("$(touch pwned) `touch pwned2` %(title)s {0}", ["; rm -rf ~"]),
]


def test_hostile_titles_get_safe_file_names_inside_download_dir(e2e: E2E) -> None:
    workdir = e2e.system.workdir
    before = {p for p in files_under(workdir) if not p.is_relative_to(e2e.system.logs)}
    album = e2e.spotify.add_album(
        "Nasty Names", "Various", [{"title": title, "artists": artists} for title, artists in NASTY_TITLES]
    )
    e2e.send(f"https://open.spotify.com/album/{album}", user=OTHER_USER)

    [summary] = settled(e2e, OTHER_USER)
    assert f"{len(NASTY_TITLES)} delivered" in summary
    audios = e2e.telegram.audios(OTHER_USER)
    for audio, (title, _) in zip(audios, NASTY_TITLES, strict=True):
        name = audio.filename or ""
        stem = name.removesuffix(".mp3")
        assert name.endswith(".mp3") and stem, name
        assert not ({"/", "\\", "\0"} & set(name)) and not any(ord(c) < 32 for c in name), name
        assert not name.startswith((".", "-", " ")), name
        assert len(name.encode()) <= 255, len(name.encode())
        assert stem.upper() not in RESERVED_STEMS and stem.split(".")[0].upper() not in RESERVED_STEMS, name
        assert str(id3_of(audio.data)["TIT2"]) == title, "the tag keeps the real title"

    after = {p for p in files_under(workdir) if not p.is_relative_to(e2e.system.logs)}
    outside = sorted(str(p) for p in after - before if not p.is_relative_to(e2e.downloads))
    assert outside == [], f"written outside DOWNLOAD_DIR: {outside}"
    assert not [p for p in files_under(workdir) if p.name in ("passwd", "pwned", "pwned2")]
    assert not (Path.cwd() / "pwned").exists()


def test_names_of_only_punctuation_are_matched(e2e: E2E) -> None:
    track = e2e.spotify.add_track("..", ["!!!"])
    e2e.send(f"https://open.spotify.com/track/{track}", user=THIRD_USER)
    [summary] = settled(e2e, THIRD_USER)
    assert "1 delivered" in summary


def test_secrets_never_reach_a_log(e2e: E2E) -> None:
    spotify, telegram, audio = e2e.spotify, e2e.telegram, e2e.audio
    good = spotify.add_track("Logged Song [fake: 403, ok]", "Loggers")
    other = spotify.add_track("Second Logged Song", "Loggers")
    album = spotify.add_album("Logged Album", "Loggers", ["Logged One"])
    # A fresh worker, so that it logs in to Spotify again, and every outside service misbehaves at least once.
    next(p for p in e2e.system.processes if p.name == "worker").stop()
    spotify.fail("/api/token", 500, times=2)
    spotify.fail(rf"/v1/tracks/{other}", 429, {"Retry-After": "1"}, times=1)
    spotify.fail(rf"/v1/albums/{album}", 401, times=1)
    telegram.fail("sendAudio", 500, times=1)
    telegram.fail("editMessageText", 400, "Bad Request: message to edit not found", times=1)
    telegram.fail("getUpdates", 502, times=1)
    audio.set_plan(other, ["500", "ok"])
    start_debug_worker(e2e, "worker-fresh")

    telegram.fail("sendMessage", None, times=1)  # the /help answer is lost: the handler fails, the bot logs it
    e2e.send("/help", user=USER)
    for user, link in (
        (USER, f"https://open.spotify.com/track/{good}"),
        (USER, f"https://open.spotify.com/track/{other}"),
        (FOURTH_USER, f"https://open.spotify.com/album/{album}"),
        (FOURTH_USER, "https://open.spotify.com/playlist/6" + "0" * 21),
    ):
        e2e.send(link, user=user)
    settled(e2e, USER, count=2)
    settled(e2e, FOURTH_USER, count=2)
    telegram.clear_faults()
    spotify.clear_faults()

    # Telegram rejects a bot's token at start: a clear line, and the token nowhere in the log.
    rejected = start_debug_bot(e2e, "bot-wrong-token", TELEGRAM_BOT_TOKEN=WRONG_TOKEN)
    telegram.wait_for(lambda: not rejected.alive, timeout=60, message="the bot with a wrong token to exit")
    assert rejected.popen is not None and rejected.popen.returncode != 0
    assert "TELEGRAM_BOT_TOKEN" in rejected.log()

    logs = {path.name: path.read_text(errors="replace") for path in e2e.system.logs.glob("*.log")}
    assert {"bot.log", "worker.log", "worker-fresh.log", "bot-wrong-token.log"} <= set(logs)
    assert " DEBUG " in logs["bot.log"] and "[DEBUG]" in logs["worker-fresh.log"], "DEBUG logging was on"
    assert "bot[REDACTED]" in logs["bot.log"], "at DEBUG a library does log the token (in the API URL): scrubbed"
    everything = "\n".join(logs.values())
    assert "WARNING" in everything and "ERROR" in everything, "the errors above were logged"
    forms = secret_forms(DEFAULT_TOKEN, FakeSpotify.CLIENT_ID, FakeSpotify.CLIENT_SECRET)
    forms += [WRONG_TOKEN, WRONG_TOKEN.partition(":")[2]]
    for name, text in logs.items():
        for secret in forms:
            assert secret not in text, f"{secret!r} in {name}"
    for chat in telegram.chat_ids():
        transcript = json.dumps(telegram.transcript(chat))
        assert not any(secret in transcript for secret in forms)
