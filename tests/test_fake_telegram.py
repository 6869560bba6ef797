"""The fake Telegram server speaks the Bot API the way python-telegram-bot expects (real PTB, real HTTP)."""

from __future__ import annotations

import asyncio
import http.server
import io
import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from PIL import Image
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import BadRequest, InvalidToken, NetworkError, RetryAfter
from telegram.ext import ApplicationBuilder, ContextTypes, MessageHandler, filters

from tests.fakes.telegram_server import DEFAULT_GROUP_ID, FakeTelegram

USER = 42


@pytest.fixture
def fake() -> Iterator[FakeTelegram]:
    with FakeTelegram() as server:
        yield server


def make_bot(fake: FakeTelegram, **kwargs: object) -> Bot:
    return Bot(fake.token, base_url=fake.api_url, base_file_url=fake.file_url, **kwargs)  # type: ignore[arg-type]


def cancel_markup(data: str = "cancel:1") -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[InlineKeyboardButton("Cancel", callback_data=data)]])


def jpeg(size: int = 320) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), (200, 30, 30)).save(buffer, "JPEG")
    return buffer.getvalue()


def test_messages_edits_and_not_modified(fake: FakeTelegram) -> None:
    async def scenario() -> int:
        async with make_bot(fake) as bot:
            assert bot.username == "fake_mp3_bot"
            sent = await bot.send_message(USER, "Working…", reply_markup=cancel_markup())
            assert sent.reply_markup == cancel_markup()
            await bot.edit_message_text(
                "1/2 done", chat_id=USER, message_id=sent.message_id, reply_markup=cancel_markup()
            )
            with pytest.raises(BadRequest, match=r"(?i)message is not modified"):
                await bot.edit_message_text(
                    "1/2 done", chat_id=USER, message_id=sent.message_id, reply_markup=cancel_markup()
                )
            await bot.edit_message_text("Done", chat_id=USER, message_id=sent.message_id)  # no markup: buttons go
            with pytest.raises(BadRequest, match=r"(?i)not modified"):
                await bot.edit_message_reply_markup(chat_id=USER, message_id=sent.message_id)
            with pytest.raises(BadRequest, match=r"(?i)message to edit not found"):
                await bot.edit_message_text("x", chat_id=USER, message_id=999)
            return sent.message_id

    message_id = asyncio.run(scenario())
    assert fake.transcript(USER) == ["bot: Done"]
    assert [(e.text, e.reply_markup is not None) for e in fake.edits(USER, message_id)] == [
        ("1/2 done", True),
        ("Done", False),
    ]
    assert fake.texts(USER) == ["Done"]
    assert [c.status for c in fake.calls_to("editMessageText")] == [200, 400, 200, 400]


def test_delete_and_html_rendering(fake: FakeTelegram) -> None:
    async def scenario() -> None:
        async with make_bot(fake) as bot:
            first = await bot.send_message(USER, "<b>Halo</b> &amp; more", parse_mode="HTML")
            await bot.send_message(USER, "second")
            assert await bot.delete_message(USER, first.message_id)
            with pytest.raises(BadRequest, match=r"(?i)message to delete not found"):
                await bot.delete_message(USER, first.message_id)

    asyncio.run(scenario())
    assert fake.transcript(USER) == ["bot: second"]
    assert fake.transcript(USER, include_deleted=True) == ["[deleted] bot: Halo & more", "bot: second"]


def test_send_audio_records_bytes_and_resend_by_file_id(fake: FakeTelegram) -> None:
    audio = b"ID3" + bytes(range(256)) * 400
    thumb = jpeg()

    async def scenario() -> str:
        async with make_bot(fake) as bot:
            sent = await bot.send_audio(
                USER,
                audio,
                filename="Beyoncé - Halo.mp3",
                title="Halo",
                performer="Beyoncé",
                duration=261,
                thumbnail=thumb,
                caption="1/2",
                reply_markup=cancel_markup(),
            )
            assert sent.audio is not None
            assert (sent.audio.title, sent.audio.performer, sent.audio.file_size) == ("Halo", "Beyoncé", len(audio))
            assert sent.audio.thumbnail is not None
            await bot.send_audio(7, sent.audio.file_id)  # another chat, no upload
            await bot.send_audio(USER, sent.audio.file_id)
            with pytest.raises(BadRequest, match=r"(?i)wrong file identifier"):
                await bot.send_audio(USER, "no-such-file-id")
            return sent.audio.file_unique_id

    unique_id = asyncio.run(scenario())
    first, again = fake.audios(USER)
    assert first.data == audio and first.thumbnail == thumb and not first.by_file_id
    assert (first.filename, first.title, first.performer, first.duration) == (
        "Beyoncé - Halo.mp3",
        "Halo",
        "Beyoncé",
        261,
    )
    assert first.reply_markup == {"inline_keyboard": [[{"text": "Cancel", "callback_data": "cancel:1"}]]}
    [elsewhere] = fake.audios(7)
    assert elsewhere.by_file_id and elsewhere.data == audio and elsewhere.file_unique_id == unique_id
    assert fake.duplicate_audios(USER) == [[first, again]]
    assert fake.duplicate_audios(7) == []
    assert fake.transcript(USER)[0] == "bot [audio] Beyoncé - Halo.mp3 (102 kB): 1/2 [Cancel]"
    assert set(fake.calls_to("sendAudio")[0].files) >= {"audio"}


def test_upload_limit_and_local_mode_paths(fake: FakeTelegram, tmp_path: Path) -> None:
    track = tmp_path / "Artist - Song.mp3"
    track.write_bytes(b"ID3" + b"\x00" * 5000)
    fake.upload_limit = 1000

    async def scenario() -> None:
        async with make_bot(fake) as bot:
            with pytest.raises(NetworkError, match="Request Entity Too Large"):
                await bot.send_audio(USER, track.read_bytes(), filename=track.name)
        async with make_bot(fake, local_mode=True) as local:  # sends file:// paths, no upload limit
            await local.send_audio(USER, track, title="Song", performer="Artist")

    asyncio.run(scenario())
    [audio] = fake.audios(USER)
    assert audio.data == track.read_bytes() and audio.filename == track.name and not audio.by_file_id


def test_documents_and_file_download(fake: FakeTelegram) -> None:
    async def scenario() -> bytes:
        async with make_bot(fake) as bot:
            sent = await bot.send_document(USER, b"playlist report", filename="report.txt")
            assert sent.document is not None
            file = await bot.get_file(sent.document.file_id)
            return bytes(await file.download_as_bytearray())

    assert asyncio.run(scenario()) == b"playlist report"
    assert fake.transcript(USER) == ["bot [document] report.txt (15 B)"]


def test_long_poll_returns_pushed_update_and_honours_offset(fake: FakeTelegram) -> None:
    async def scenario() -> None:
        async with make_bot(fake) as bot:
            threading.Timer(0.2, fake.push_text, args=(USER, "/start")).start()
            [update] = await bot.get_updates(timeout=20)
            assert update.message is not None and update.message.text == "/start"
            assert update.message.parse_entities(["bot_command"])
            assert await bot.get_updates(offset=update.update_id + 1, timeout=0) == ()
            fake.push_text(USER, "second", edited=True)
            [edited] = await bot.get_updates(offset=update.update_id + 1, timeout=0)
            assert edited.edited_message is not None
            assert edited.edited_message.message_id == update.message.message_id

    asyncio.run(scenario())
    assert fake.transcript(USER) == ["user: second"]


def test_callbacks_are_answered_once(fake: FakeTelegram) -> None:
    async def scenario() -> None:
        async with make_bot(fake) as bot:
            sent = await bot.send_message(USER, "Working…", reply_markup=cancel_markup("cancel:9"))
            fake.push_callback(USER, sent.message_id, "cancel:9")
            [update] = await bot.get_updates(timeout=0)
            query = update.callback_query
            assert query is not None and query.data == "cancel:9"
            assert query.message is not None and query.message.message_id == sent.message_id
            assert await query.answer("Cancelled")
            with pytest.raises(BadRequest, match=r"(?i)query is too old"):
                await query.answer("again")

    asyncio.run(scenario())
    [answer] = fake.answered_callbacks
    assert (answer.data, answer.text, answer.chat_id) == ("cancel:9", "Cancelled", USER)
    assert fake.transcript(USER) == ["bot: Working… [Cancel]", "user [pressed] Cancel"]
    assert fake.unanswered_callbacks == []


def test_group_mentions_and_replies_to_the_bot(fake: FakeTelegram) -> None:
    async def scenario() -> None:
        async with make_bot(fake) as bot:
            fake.push_text(7, "👋 @fake_mp3_bot open.spotify.com/track/abc!", chat_type="group", username="alice")
            [update] = await bot.get_updates(timeout=0)
            message = update.message
            assert message is not None and message.chat.type == "group" and message.chat.id == DEFAULT_GROUP_ID
            entities = message.parse_entities()
            assert sorted(entities.values()) == ["@fake_mp3_bot", "open.spotify.com/track/abc"]
            await bot.send_message(DEFAULT_GROUP_ID, "Which one?")
            fake.push_text(7, "the first", chat_id=DEFAULT_GROUP_ID, reply_to_bot=True)
            [reply] = await bot.get_updates(offset=update.update_id + 1, timeout=0)
            assert reply.message is not None and reply.message.reply_to_message is not None
            assert reply.message.reply_to_message.from_user is not None
            assert reply.message.reply_to_message.from_user.id == bot.id

    asyncio.run(scenario())
    assert fake.transcript(DEFAULT_GROUP_ID)[1:] == ["bot: Which one?", "user @alice: the first"]


def test_media_updates_parse(fake: FakeTelegram) -> None:
    fake.push_sticker(USER, "🎵")
    fake.push_photo(USER, caption="look https://spotify.link/x")
    fake.push_voice(USER, duration=4)
    fake.push_text(USER, "forwarded", forward_from=99)
    fake.push_raw({"my_chat_member": {"chat": {"id": USER, "type": "private"}}})

    async def scenario() -> tuple[Update, ...]:
        async with make_bot(fake) as bot:
            return await bot.get_updates(timeout=0)

    sticker, photo, voice, forwarded, raw = asyncio.run(scenario())
    assert sticker.message is not None and sticker.message.sticker is not None
    assert photo.message is not None and photo.message.photo and photo.message.caption_entities
    assert (
        voice.message is not None
        and voice.message.voice is not None
        and voice.message.voice.duration in (4, timedelta(seconds=4))
    )
    assert forwarded.message is not None and forwarded.message.forward_origin is not None
    assert raw.update_id == forwarded.update_id + 1
    assert fake.transcript(USER) == [
        "user [sticker] 🎵",
        "user [photo]: look https://spotify.link/x",
        "user [voice]",
        "user: forwarded",
    ]


def test_flood_answers_retry_after_deterministically(fake: FakeTelegram) -> None:
    async def statuses(seed: int) -> list[str]:
        fake.reset()
        fake.flood(methods={"sendMessage"}, ratio=0.5, retry_after=3, seed=seed)
        results = []
        async with make_bot(fake) as bot:
            for index in range(12):
                try:
                    await bot.send_message(USER, f"m{index}")
                    results.append("ok")
                except RetryAfter as error:
                    assert error.retry_after in (3, timedelta(seconds=3))  # int unless PTB_TIMEDELTA is set
                    results.append("429")
        return results

    first = asyncio.run(statuses(seed=5))
    assert "ok" in first and "429" in first
    assert asyncio.run(statuses(seed=5)) == first
    assert len(fake.texts(USER)) == first.count("ok")  # a flooded call has no effect


def test_fail_rules_and_lost_answers(fake: FakeTelegram) -> None:
    fake.fail("sendMessage", 500, times=1)
    fake.fail("sendAudio", status=None, applied=True)  # delivered, but the answer is lost

    async def scenario() -> None:
        async with make_bot(fake) as bot:
            with pytest.raises(NetworkError, match="Internal Server Error"):
                await bot.send_message(USER, "first try")
            await bot.send_message(USER, "second try")
            with pytest.raises(NetworkError):
                await bot.send_audio(USER, b"ID3 data", filename="a.mp3")

    asyncio.run(scenario())
    assert fake.transcript(USER) == ["bot: second try", "bot [audio] a.mp3 (8 B)"]
    assert [c.status for c in fake.calls_to("sendAudio")] == [0]


def test_unreachable_then_recovery_on_the_same_port(fake: FakeTelegram) -> None:
    port = fake.port

    async def scenario() -> None:
        async with make_bot(fake) as bot:
            await bot.send_message(USER, "before")
            threading.Timer(0.2, fake.stop).start()
            with pytest.raises(NetworkError):  # an open long poll is cut, not left hanging
                await bot.get_updates(timeout=30)
            with pytest.raises(NetworkError):
                await bot.send_message(USER, "lost")
            fake.start()
            assert fake.port == port
            await bot.send_message(USER, "after restart")
            fake.unreachable(0.3)
            with pytest.raises(NetworkError):
                await bot.send_message(USER, "lost too")
            for _ in range(500):  # up to ~10 s on a loaded machine
                try:
                    await bot.send_message(USER, "reconnected")
                    break
                except NetworkError:
                    await asyncio.sleep(0.02)

    asyncio.run(scenario())
    assert fake.transcript(USER) == ["bot: before", "bot: after restart", "bot: reconnected"]


def test_wrong_token_is_rejected(fake: FakeTelegram) -> None:
    async def scenario() -> None:
        async with Bot("1:wrong", base_url=fake.api_url):
            pass

    with pytest.raises(InvalidToken):
        asyncio.run(scenario())


def test_wait_for_fails_with_the_transcript(fake: FakeTelegram) -> None:
    fake.push_text(USER, "hello?")
    with pytest.raises(AssertionError, match=r"user: hello\?"):
        fake.wait_for(lambda: fake.texts(USER), timeout=0.1, message="a reply")


def test_a_polling_application_talks_to_the_fake(fake: FakeTelegram) -> None:
    async def shout(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.message is not None and update.message.text is not None
        await update.message.reply_text(update.message.text.upper())

    async def scenario() -> None:
        app = ApplicationBuilder().token(fake.token).base_url(fake.api_url).build()
        app.add_handler(MessageHandler(filters.TEXT, shout))
        async with app:
            await app.bot.set_my_commands([("start", "Say hello")])
            await app.updater.start_polling(timeout=5, poll_interval=0)  # type: ignore[union-attr]
            await app.start()
            fake.push_text(USER, "hello")
            await asyncio.to_thread(fake.wait_for, lambda: fake.texts(USER), 10, "the echo", USER)
            await app.updater.stop()  # type: ignore[union-attr]
            await app.stop()

    asyncio.run(scenario())
    assert fake.transcript(USER) == ["user: hello", "bot: HELLO"]
    assert fake.commands() == [{"command": "start", "description": "Say hello"}]
    assert fake.unhandled_methods == []


def test_webhook_registration_and_posts_carry_the_secret(fake: FakeTelegram) -> None:
    """setWebhook is recorded, and post_webhook delivers an update the way Telegram does (secret header)."""
    received: list[tuple[str | None, dict]] = []

    class Receiver(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            received.append((self.headers.get("X-Telegram-Bot-Api-Secret-Token"), body))
            ok = self.headers.get("X-Telegram-Bot-Api-Secret-Token") == "s3cret"
            self.send_response(200 if ok else 403)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    try:

        async def register() -> None:
            async with make_bot(fake) as bot:
                await bot.set_webhook(url, secret_token="s3cret")

        asyncio.run(register())
        assert (fake.webhook_url, fake.webhook_secret) == (url, "s3cret")
        update = fake.push_text(USER, "/help")
        assert fake.post_webhook(update, secret="wrong") == 403
        assert fake.post_webhook(update, secret=None) == 403
        assert fake.post_webhook(update) == 200
        assert [secret for secret, _ in received] == ["wrong", None, "s3cret"]
        assert received[-1][1]["message"]["text"] == "/help"
        assert fake.pending_updates == [], "delivered by webhook, not left for getUpdates"
    finally:
        server.shutdown()
        server.server_close()
