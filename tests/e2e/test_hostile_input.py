"""Hostile and odd input, one table, one running bot + worker: every case gets a defined answer or silence.

Each case runs in its own chat (its own user for private chats, its own group otherwise), so the cases
cannot disturb one another and all of them are pushed at once. A case's outcome is what the bot says in
that chat (messages and callback answers): it must contain every expected fragment, or, for group chatter
not meant for the bot, be nothing at all. Afterwards nothing may have crashed, no chat may show a
traceback or an internal error, and a new link must still work.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest

from tests.e2e.conftest import E2E, running_e2e
from tests.fakes.spotify_server import FakeSpotify
from tests.fakes.telegram_server import FakeTelegram

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

BOT = "fake_mp3_bot"
FIRST_USER = 3000  # case i runs as user FIRST_USER + i (all allowed)
HELPER_OFFSET = 500  # a second allowed user for case i: FIRST_USER + HELPER_OFFSET + i
STRANGER = 6666  # not allowed
SENTINEL = 2999  # allowed; its chat checks that the bot has got through the table and still works
FIRST_GROUP = -4100000000  # case i's group: FIRST_GROUP - i

GOOD = "3HostileGoodTrack00001"  # in the fake catalog: resolves and downloads fine
UNKNOWN_TRACK = "0000000000000000000000"  # well-formed, not in the catalog
UNKNOWN_ALBUM = "1111111111111111111111"
UNKNOWN_PLAYLIST = "2222222222222222222222"
GOOD_URL = f"https://open.spotify.com/track/{GOOD}"

# What the bot says (fragments of bot/texts.py and pipeline/links.py answers).
WORKS = "1 delivered"
NO_LINK = "Send me a Spotify link"
NOT_SPOTIFY = "isn't from Spotify"
PODCAST = "Podcasts aren't supported"
ARTIST = "Artist links aren't supported"
PROFILE = "user profile"
MALFORMED = "looks cut off or mistyped"
OTHER_PAGE = "isn't a track, album or playlist"
SHORT_INCOMPLETE = "short link looks incomplete"
NOT_FOUND = "Couldn't read"
TOO_MANY = "more than 10 links"
EDITED = "only act on new messages"
UNKNOWN_COMMAND = "don't know that command"
HELP = "Send me a Spotify link — a track"
REFUSED = "not on its list"
BUTTON_INVALID = "no longer valid"
BUTTON_EXPIRED = "already finished"
BUTTON_NOT_YOURS = "Only the person"
NOTHING_TO_CANCEL = "nothing to cancel"
NOTHING_FOUND = "Nothing found for"
SEARCH_RESULTS = "pick one"
SEARCH_USAGE = "What should I look for?"
SEARCH_NOT_YOURS = "Only the person who searched"
SEARCH_EXPIRED = "expired"
INTERNAL_ERROR = "something went wrong on my side"


@dataclass
class Chat:
    """Where a case happens and who acts in it."""

    index: int
    group: bool

    @property
    def user(self) -> int:
        return FIRST_USER + self.index

    @property
    def helper(self) -> int:
        return FIRST_USER + HELPER_OFFSET + self.index

    @property
    def id(self) -> int:
        return FIRST_GROUP - self.index if self.group else self.user


@dataclass
class Ctx:
    e2e: E2E
    chat: Chat
    queries: list[str] = field(default_factory=list)  # callback query ids this case pushed

    @property
    def telegram(self) -> FakeTelegram:
        return self.e2e.telegram

    def say(self, text: str, user: int | None = None, **kwargs: object) -> None:
        if self.chat.group:
            kwargs.setdefault("chat_type", "group")
        self.telegram.push_text(self.chat.user if user is None else user, text, chat_id=self.chat.id, **kwargs)

    def bot_message(self, fragment: str = "") -> int:
        """Wait for a bot message in this chat containing `fragment`; its id."""
        return self.telegram.wait_for(
            lambda: next(
                (m.message_id for m in self.telegram.sent_messages(self.chat.id) if fragment in (m.text or "")), None
            ),
            timeout=60,
            message=f"a bot message containing {fragment!r}",
            chat_id=self.chat.id,
        )

    def press(self, message_id: int, data: str, user: int | None = None) -> None:
        user = self.chat.user if user is None else user
        update = self.telegram.push_callback(user, message_id, data, chat_id=self.chat.id)
        self.queries.append(update["callback_query"]["id"])

    def request_of(self, user: int) -> str:
        """The id of the request `user` started (read from the bot's state in Redis)."""

        def find() -> str | None:
            for key in self.e2e.redis.scan_iter("spotbot:req:*"):
                meta = self.e2e.redis.hget(key, "meta") if key.count(":") == 2 else None
                if meta and json.loads(meta)["user_id"] == user:
                    return key.rsplit(":", 1)[1]
            return None

        return self.telegram.wait_for(find, timeout=30, message=f"a request of user {user}")


Act = Callable[[Ctx], None]


@dataclass(frozen=True)
class Case:
    name: str
    act: Act
    expect: tuple[str, ...]  # fragments the bot's answers in the chat must contain; () = deliberate silence
    group: bool = False
    audios: int = 0  # audio messages the chat must receive


def says(text: str, **kwargs: object) -> Act:
    return lambda ctx: ctx.say(text, **kwargs)


def mention(text: str, **kwargs: object) -> Act:
    return says(f"@{BOT} {text}", **kwargs)


def sticker(ctx: Ctx) -> None:
    ctx.telegram.push_sticker(ctx.chat.user, chat_id=ctx.chat.id, chat_type="group" if ctx.chat.group else "private")


def photo(caption: str | None = None) -> Act:
    return lambda ctx: ctx.telegram.push_photo(ctx.chat.user, caption, chat_id=ctx.chat.id)


def voice(ctx: Ctx) -> None:
    ctx.telegram.push_voice(ctx.chat.user, chat_id=ctx.chat.id)


def edited(original: str, new: str, **kwargs: object) -> Act:
    """The user sends `original`, waits for the bot to act on it, then edits the message to `new`."""

    def act(ctx: Ctx) -> None:
        ctx.say(original, **kwargs)
        if not ctx.chat.group or BOT in original:
            ctx.bot_message()
        ctx.say(new, edited=True, **kwargs)

    return act


def reply_to_bot(text: str) -> Act:
    """In a group: get the bot to say something (an addressed /help), then reply to it."""

    def act(ctx: Ctx) -> None:
        ctx.say(f"/help@{BOT}")
        ctx.bot_message()
        ctx.say(text, reply_to_bot=True)

    return act


def press(data: str | Callable[[Ctx], str], user: Callable[[Ctx], int] | None = None) -> Act:
    """Press a button carrying `data` under a bot message (the answer to /help) in the case's chat."""

    def act(ctx: Ctx) -> None:
        ctx.say(f"/help@{BOT}" if ctx.chat.group else "/help")
        message_id = ctx.bot_message()
        ctx.press(message_id, data(ctx) if callable(data) else data, user(ctx) if user else None)

    return act


def press_someone_elses_button(ctx: Ctx) -> None:
    """The case's user starts a request in a group; another allowed member presses its Cancel button."""
    ctx.say(f"@{BOT} {GOOD_URL}")
    rid = ctx.request_of(ctx.chat.user)
    message_id = ctx.bot_message("")
    ctx.press(message_id, f"cancel:{rid}", user=ctx.chat.helper)


def pick(words: str, n: int = 0, user: Callable[[Ctx], int] | None = None) -> Act:
    """Search for `words` (in a group: /search@bot), then press the n-th result (as `user`, default the searcher)."""

    def act(ctx: Ctx) -> None:
        ctx.say(f"/search@{BOT} {words}" if ctx.chat.group else words)
        message_id = ctx.bot_message(SEARCH_RESULTS)
        [message] = [m for m in ctx.telegram.sent_messages(ctx.chat.id) if m.message_id == message_id]
        data = message.buttons[n][0]["callback_data"]
        ctx.press(message_id, data, user(ctx) if user else None)

    return act


def raw_message(kind: str, chat_type: str, **fields: object) -> Act:
    """A message update built by hand, for shapes the helpers do not make (a bot's message, a channel post)."""

    def act(ctx: Ctx) -> None:
        chat = {"id": ctx.chat.id, "type": chat_type, "title": "raw"}
        message = {"message_id": 1, "date": int(time.time()), "chat": chat, **fields}
        ctx.telegram.push_raw({kind: message})

    return act


def raw_update(update: dict) -> Act:
    return lambda ctx: ctx.telegram.push_raw(update)


def distinct_ids(count: int) -> list[str]:
    digits = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    ids = []
    for n in range(count):
        tail = ""
        for _ in range(6):
            n, r = divmod(n, 62)
            tail = digits[r] + tail
        ids.append("4" + "x" * 15 + tail)
    return ids


THOUSAND_LINKS = " ".join(f"https://open.spotify.com/track/{i}" for i in distinct_ids(1000))
TEN_KB_PROSE = ("lorem ipsum dolor sit amet, e.g. node.js or file.mp3; no links here. " * 150)[:10_240]
TEN_KB_DOTS = "a." * 5120
ZWSP, ZWJ, BOM, RLM, RLO, PDF, RLI = "\u200b", "\u200d", "\ufeff", "\u200f", "\u202e", "\u202c", "\u2067"
NOT_A_BOT = {"id": 4242, "is_bot": True, "first_name": "Other Bot", "username": "other_bot"}

CASES: list[Case] = [
    # --- links that are not (usable) Spotify music ----------------------------------------------------
    Case("youtube link", says("https://www.youtube.com/watch?v=dQw4w9WgXcQ"), (NOT_SPOTIFY,)),
    Case("apple music link", says("music.apple.com/us/album/x/123"), (NOT_SPOTIFY,)),
    Case(
        "javascript: url and html",
        says("<a href='javascript:alert(1)'>x</a> <b>hi</b>"),
        (f"{NOTHING_FOUND} “<a href='javascript:alert(1)'>x</a> <b>hi</b>”",),
    ),
    Case("lookalike host", says(f"https://open.spotify.com.evil.example.com/track/{GOOD}"), (NOT_SPOTIFY,)),
    Case(
        "spotify link in another site's path", says(f"https://evil.com/open.spotify.com/track/{GOOD}"), (NOT_SPOTIFY,)
    ),
    Case("homoglyph host (Cyrillic o)", says(f"https://\u043epen.spotify.com/track/{GOOD}"), ("isn't",)),
    Case("podcast episode", says("https://open.spotify.com/episode/4rOoJ6Egrf8K2IrywzwOMk"), (PODCAST,)),
    Case("podcast show", says("https://open.spotify.com/show/2MAi0BvDc6GTFvKFPXnkCL?si=1"), (PODCAST,)),
    Case("artist", says("https://open.spotify.com/artist/0OdUWJ0sBjDrqHygGUXeCF"), (ARTIST,)),
    Case("user profile", says("https://open.spotify.com/user/spotify"), (PROFILE,)),
    Case("other spotify page", says("https://open.spotify.com/search/never%20gonna"), (OTHER_PAGE,)),
    Case("unknown uri kind", says("spotify:frobnicator:3HostileGoodTrack00001"), (OTHER_PAGE,)),
    Case("short link without code", says("https://spotify.link/"), (SHORT_INCOMPLETE,)),
    # --- ids that are wrong, or right but unknown -----------------------------------------------------
    Case("id too short", says("https://open.spotify.com/track/3HostileGoodTrack0000"), (MALFORMED,)),
    Case("id too long", says("https://open.spotify.com/album/3HostileGoodTrack000012"), (MALFORMED,)),
    Case("id beyond 128 bits", says("https://open.spotify.com/playlist/ZZZZZZZZZZZZZZZZZZZZZZ"), (MALFORMED,)),
    Case("id with odd characters", says("spotify:track:3Hostile-GoodTrack_0001"), (MALFORMED,)),
    Case("unknown track", says(f"https://open.spotify.com/track/{UNKNOWN_TRACK}"), (NOT_FOUND,)),
    Case("unknown album", says(f"https://open.spotify.com/album/{UNKNOWN_ALBUM}"), (NOT_FOUND,)),
    Case("unknown playlist", says(f"spotify:playlist:{UNKNOWN_PLAYLIST}"), (NOT_FOUND,)),
    # --- size ------------------------------------------------------------------------------------------
    Case("1,000 distinct links", says(THOUSAND_LINKS), (TOO_MANY,)),
    Case("1,000 copies of one link", says(" ".join([GOOD_URL] * 1000)), (WORKS,), audios=1),
    Case("10 kB of prose", says(TEN_KB_PROSE), (f"{NOTHING_FOUND} “lorem ipsum dolor sit amet, e.g.",)),
    Case("10 kB of dots", says(TEN_KB_DOTS), (f"{NOTHING_FOUND} “a.a.a.",)),
    # --- words: a text search ---------------------------------------------------------------------------
    Case("words find a song, a tap fetches it", pick("good band good song"), (SEARCH_RESULTS, WORKS), audios=1),
    Case("only invisible characters", says(f"{ZWSP}{ZWJ} {RLO}{PDF} {BOM}"), (NO_LINK,)),
    Case("control characters", says("bell\x07 and \x1b[31mred"), (f"{NOTHING_FOUND} “bell and [31mred”",)),
    Case("words in a script of its own", says("Потап и Настя"), (f"{NOTHING_FOUND} “Потап и Настя”",)),
    Case("/search without words", says("/search"), (SEARCH_USAGE,)),
    Case("/search with a link", says(f"/search {GOOD_URL}"), (WORKS,), audios=1),
    Case("button: forged search id", press("s:0123456789ab:0"), (HELP, SEARCH_EXPIRED)),
    Case("button: malformed search data", press("s:../../etc:0"), (HELP, BUTTON_INVALID)),
    Case(
        "group: someone else's search result",
        pick("good song", user=lambda ctx: ctx.chat.helper),
        (SEARCH_RESULTS, SEARCH_NOT_YOURS),
        group=True,
    ),
    Case("group: search chatter", says("good song"), (), group=True),
    # --- invisible and direction characters inside a link -----------------------------------------------
    Case(
        "zero-width inside a link",
        says(f"https://open.spo{ZWSP}tify.com/tr{ZWJ}ack/3Hostile{BOM}GoodTrack00001"),
        (WORKS,),
        audios=1,
    ),
    Case(
        "right-to-left marks inside a link",
        says(f"{RLI}https://open.spotify.com/{RLM}track/{RLO}3HostileGoodTrack00001{PDF}"),
        (WORKS,),
        audios=1,
    ),
    # --- links in other text, and in other kinds of messages ---------------------------------------------
    Case("link inside prose", says(f"omg listen:{GOOD_URL}?si=x!!! (so good)"), (WORKS,), audios=1),
    Case(
        "link hidden behind text",
        says("listen to this", entities=[{"type": "text_link", "offset": 10, "length": 4, "url": GOOD_URL}]),
        (WORKS,),
        audios=1,
    ),
    Case("link plus a bad link", says(f"{GOOD_URL} and https://open.spotify.com/artist/x"), (ARTIST, WORKS), audios=1),
    Case("sticker", sticker, (NO_LINK,)),
    Case("photo without caption", photo(), (NO_LINK,)),
    Case("voice note", voice, (NO_LINK,)),
    Case("photo with a link in the caption", photo(f"look {GOOD_URL}"), (WORKS,), audios=1),
    Case("forwarded from a user", says(GOOD_URL, forward_from=4242), (WORKS,), audios=1),
    Case(
        "forwarded from a channel",
        says(
            GOOD_URL,
            forward_from={
                "type": "channel",
                "chat": {"id": -1009999, "type": "channel", "title": "Music"},
                "message_id": 7,
                "date": 1,
            },
        ),
        (WORKS,),
        audios=1,
    ),
    Case("edited message", edited("hello", GOOD_URL), (f"{NOTHING_FOUND} “hello”", EDITED)),
    # --- groups ------------------------------------------------------------------------------------------
    Case("group chatter with a link", says(GOOD_URL), (), group=True),
    Case("group chatter", says("anyone up for pizza?"), (), group=True),
    Case("group: mention of another bot", says(f"@other_bot {GOOD_URL}"), (), group=True),
    Case("group: sticker", sticker, (), group=True),
    Case("group: edit of chatter", edited("hi all", f"hi all {GOOD_URL}"), (), group=True),
    Case("group: addressed by mention", mention(GOOD_URL), (WORKS,), group=True, audios=1),
    Case("group: mention without a link", mention("hello"), (f"{NOTHING_FOUND} “hello”",), group=True),
    Case("group: mention alone", says(f"@{BOT}"), (NO_LINK,), group=True),
    Case("group: addressed by reply", reply_to_bot(GOOD_URL), (HELP, WORKS), group=True, audios=1),
    Case("group: stranger chatter", says("hello", user=STRANGER), (), group=True),
    Case("group: stranger addressing the bot", mention(GOOD_URL, user=STRANGER), (REFUSED,), group=True),
    Case(
        "group: message from another bot",
        raw_message("message", "group", **{"from": NOT_A_BOT, "text": f"@{BOT} {GOOD_URL}"}),
        (),
        group=True,
    ),
    Case(
        "group: channel post",
        raw_message("channel_post", "channel", text=f"@{BOT} {GOOD_URL}"),
        (),
        group=True,
    ),
    # --- commands ----------------------------------------------------------------------------------------
    Case("unknown command", says("/frobnicate now"), (UNKNOWN_COMMAND,)),
    Case("/start with a payload", says("/start ref-123"), (HELP,)),
    Case("command with junk", says("/start@" + "x" * 300), (UNKNOWN_COMMAND,)),
    Case("group: unknown command to me", says(f"/frobnicate@{BOT}"), (UNKNOWN_COMMAND,), group=True),
    Case("group: unknown command to all", says("/frobnicate"), (), group=True),
    Case("group: command for another bot", says("/help@other_bot"), (), group=True),
    Case("group: /cancel with nothing running", says(f"/cancel@{BOT}"), (NOTHING_TO_CANCEL,), group=True),
    Case("stranger: /help", says("/help", user=STRANGER), (REFUSED,), group=True),
    # --- buttons -----------------------------------------------------------------------------------------
    Case("button: garbage data", press("\x00💣' OR 1=1 --"), (HELP, BUTTON_INVALID)),
    Case("button: wrong prefix", press("delete:0123456789ab"), (HELP, BUTTON_INVALID)),
    Case("button: id with a newline", press("cancel:0123456789ab\n"), (HELP, BUTTON_INVALID)),
    Case("button: unknown request id", press("cancel:0123456789ab"), (HELP, BUTTON_EXPIRED)),
    Case("button: stranger", press("cancel:0123456789ab", user=lambda ctx: STRANGER), (HELP, REFUSED), group=True),
    Case(
        "button: someone else's request",
        press_someone_elses_button,
        (BUTTON_NOT_YOURS, WORKS),
        group=True,
        audios=1,
    ),
    Case("button: empty data", press(""), (HELP, BUTTON_INVALID)),
    # --- update kinds the bot has no business with --------------------------------------------------------
    Case(
        "inline query",
        raw_update(
            {
                "inline_query": {
                    "id": "iq1",
                    "from": {"id": 1, "is_bot": False, "first_name": "U"},
                    "query": GOOD_URL,
                    "offset": "",
                }
            }
        ),
        (),
    ),
    Case(
        "bot added to a group",
        lambda ctx: ctx.telegram.push_raw(
            {
                "my_chat_member": {
                    "chat": {"id": ctx.chat.id, "type": "group", "title": "New"},
                    "from": {"id": ctx.chat.user, "is_bot": False, "first_name": "U"},
                    "date": int(time.time()),
                    "old_chat_member": {"status": "left", "user": {"id": 123456789, "is_bot": True, "first_name": "B"}},
                    "new_chat_member": {
                        "status": "member",
                        "user": {"id": 123456789, "is_bot": True, "first_name": "B"},
                    },
                }
            }
        ),
        (),
        group=True,
    ),
]


@pytest.fixture(scope="module")
def e2e(tmp_path_factory: pytest.TempPathFactory, redis_proc) -> Iterator[E2E]:  # type: ignore[no-untyped-def]
    """One bot + worker system for the whole table (each case has its own chat)."""
    users = (
        [SENTINEL]
        + [FIRST_USER + i for i in range(len(CASES))]
        + [FIRST_USER + HELPER_OFFSET + i for i in range(len(CASES))]
    )
    with FakeSpotify() as spotify:
        spotify.add_track("Good Song", "Good Band", track_id=GOOD)
        redis_url = f"redis://{redis_proc.host}:{redis_proc.port}/0"
        allowed = ",".join(map(str, users))
        with running_e2e(tmp_path_factory.mktemp("hostile"), redis_url, spotify, ALLOWED_USERS=allowed) as system:
            system.system.start_worker(threads=3)
            system.system.start_bot()
            yield system


def answers(e2e: E2E, ctx: Ctx) -> list[str]:
    """Everything the bot said in the case's chat: its messages and its answers to the case's button presses."""
    said = [m.text or "" for m in e2e.telegram.sent_messages(ctx.chat.id)]
    pressed = set(ctx.queries)
    said += [a.text or "" for a in e2e.telegram.answered_callbacks if a.query_id in pressed]
    return said


def outcome_met(e2e: E2E, case: Case, ctx: Ctx) -> bool:
    said = answers(e2e, ctx)
    found = all(any(fragment in text for text in said) for fragment in case.expect)
    return found and len(e2e.telegram.audios(ctx.chat.id)) >= case.audios


def test_hostile_corpus(e2e: E2E) -> None:
    assert len(CASES) >= 30
    assert len({case.name for case in CASES}) == len(CASES)
    contexts = [Ctx(e2e, Chat(index, case.group)) for index, case in enumerate(CASES)]
    e2e.telegram.wait_for(lambda: e2e.telegram.commands(), timeout=30, message="the bot to start")

    for case, ctx in zip(CASES, contexts, strict=True):
        case.act(ctx)
    # Updates are handled one by one, in order: once this last one is answered, every case has been handled.
    e2e.send("/help", user=SENTINEL)

    deadline = time.monotonic() + 120
    for case, ctx in zip(CASES, contexts, strict=True):
        while not outcome_met(e2e, case, ctx) and time.monotonic() < deadline:
            time.sleep(0.1)
    e2e.wait_text(HELP, chat=SENTINEL)
    time.sleep(2)  # room for anything said late (e.g. by a request that should never have started)
    failures = []
    for case, ctx in zip(CASES, contexts, strict=True):
        said, audios = answers(e2e, ctx), len(e2e.telegram.audios(ctx.chat.id))
        if not outcome_met(e2e, case, ctx) or (not case.expect and said) or audios != case.audios:
            failures.append(
                f"{case.name}: expected {case.expect or 'silence'} + {case.audios} audio, got {said} + {audios}"
            )
    assert not failures, f"{len(failures)} case(s) misbehaved:\n" + "\n".join(failures)

    for chat_id in e2e.telegram.chat_ids():
        transcript = "\n".join(e2e.telegram.transcript(chat_id))
        for bad in ("Traceback", "Exception", "Error:", INTERNAL_ERROR):
            assert bad not in transcript, f"{bad!r} shown in chat {chat_id}:\n{transcript}"
    assert e2e.telegram.unanswered_callbacks == []
    assert all(p.alive for p in e2e.system.processes), "the bot and the worker keep running"
    bot_log = (e2e.system.logs / "bot.log").read_text()
    assert "Traceback" not in bot_log and "error while handling" not in bot_log, bot_log[-3000:]

    # Later messages still work.
    e2e.send(GOOD_URL, user=SENTINEL)
    e2e.wait_audios(1, chat=SENTINEL)
