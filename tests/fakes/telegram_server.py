"""A fake Telegram Bot API server for end-to-end tests: real HTTP on 127.0.0.1, real python-telegram-bot.

The bot under test is pointed at it through the same seam a local Bot API server uses in production:
`ApplicationBuilder().base_url(fake.api_url)` (PTB appends the token) and `.base_file_url(fake.file_url)`.
It answers like Telegram does (full Message/User/Chat objects, the same error texts and status codes,
429 with `retry_after`, 409 for competing long polls), keeps a per-chat transcript of what a user would see,
and lets a test script users, inject faults and take the server down and back up on the same port.

PTB encodes a call as form fields (`application/x-www-form-urlencoded`, or `multipart/form-data` when a file
is uploaded) whose non-string values are JSON text; a file given as `attach://<name>` (e.g. a thumbnail) is
the multipart part of that name. JSON bodies and query strings are accepted too, as Telegram does.
Multipart bodies are parsed with the standard library's `email` parser (binary-safe).

Typical use::

    with FakeTelegram() as fake:
        app = ApplicationBuilder().token(fake.token).base_url(fake.api_url).build()
        ...
        fake.push_text(42, "https://open.spotify.com/track/…")
        fake.wait_for(lambda: fake.audios(42), timeout=20)
        assert fake.duplicate_audios(42) == []
"""

from __future__ import annotations

import contextlib
import email.parser
import email.policy
import hashlib
import html.parser
import itertools
import json
import mimetypes
import random
import re
import socket
import threading
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

DEFAULT_TOKEN = "123456789:TEST-fake-telegram-token"
DEFAULT_GROUP_ID = -4000000001
DEFAULT_SUPERGROUP_ID = -1001000000001
CLOUD_UPLOAD_LIMIT = 50 * 1024 * 1024

NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are exactly the same"
    " as a current content and reply markup of the message"
)
QUERY_TOO_OLD = "Bad Request: query is too old and response timeout expired or query ID is invalid"
POLL_CONFLICT = "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"
WEBHOOK_CONFLICT = (
    "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first"
)
FILE_KINDS = ("audio", "document", "photo", "voice", "video", "animation", "sticker")

_JSON_FIELDS = {
    "reply_markup",
    "entities",
    "caption_entities",
    "allowed_updates",
    "commands",
    "scope",
    "reply_parameters",
    "link_preview_options",
    "media",
    "message_ids",
}
_INT_FIELDS = {
    "chat_id",
    "from_chat_id",
    "message_id",
    "reply_to_message_id",
    "message_thread_id",
    "offset",
    "limit",
    "timeout",
    "duration",
    "cache_time",
    "user_id",
    "width",
    "height",
}
_BOOL_FIELDS = {
    "disable_notification",
    "protect_content",
    "show_alert",
    "drop_pending_updates",
    "disable_web_page_preview",
    "allow_sending_without_reply",
    "supports_streaming",
    "disable_content_type_detection",
    "has_spoiler",
}
_URL = re.compile(r"https?://[^\s<>\"]+|\b(?:[a-z0-9-]+\.)+[a-z]{2,}/[^\s<>\"]*", re.IGNORECASE)
_COMMAND = re.compile(r"(?:^|(?<=\s))/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{3,32})?")
_MENTION = re.compile(r"(?<![\w@])@[A-Za-z0-9_]{4,32}\b")


# ----------------------------------------------------------------------------------------------- records


@dataclass
class Call:
    """One request as the server saw it; `status` is the HTTP status it answered (0 = connection dropped)."""

    method: str
    params: dict[str, Any]
    files: dict[str, Part]
    timestamp: float
    status: int = 200
    description: str | None = None


@dataclass(frozen=True)
class Part:
    """One uploaded multipart file."""

    filename: str | None
    data: bytes
    content_type: str | None

    def __repr__(self) -> str:
        return f"Part({self.filename!r}, {len(self.data)} bytes, {self.content_type!r})"


@dataclass(frozen=True)
class StoredFile:
    """A file the fake "Telegram" holds, reachable by any of its file_ids."""

    file_unique_id: str
    kind: str
    data: bytes
    filename: str | None
    mime_type: str | None
    duration: int | None = None
    performer: str | None = None
    title: str | None = None


@dataclass(frozen=True)
class SentFile:
    """A file message the bot sent (sendAudio, sendDocument, …), as the server received it."""

    chat_id: int
    message_id: int
    kind: str
    data: bytes
    filename: str | None
    mime_type: str | None
    file_id: str
    file_unique_id: str
    by_file_id: bool  # re-sent by an existing file_id (or a local file:// path) instead of uploaded
    title: str | None
    performer: str | None
    duration: int | None
    thumbnail: bytes | None
    caption: str | None
    reply_markup: dict[str, Any] | None
    params: dict[str, Any]

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def display_name(self) -> str:
        if self.filename:
            return self.filename
        return " - ".join(part for part in (self.performer, self.title) if part) or self.kind

    def __repr__(self) -> str:
        return f"SentFile({self.kind} {self.display_name!r}, {self.size} bytes, message {self.message_id})"


@dataclass(frozen=True)
class Edit:
    """One edit of a message: the content it had after that edit."""

    text: str | None
    reply_markup: dict[str, Any] | None
    timestamp: float


@dataclass
class ChatMessage:
    """A message in a chat as the user sees it now (edits applied); `edits` keeps the history."""

    chat_id: int
    message_id: int
    sender: str  # "user" or "bot"
    kind: str  # "text", "audio", "document", "photo", "sticker", "voice", …
    text: str | None  # the text, or the caption of a media message
    reply_markup: dict[str, Any] | None
    raw: dict[str, Any]  # the Telegram Message object as last returned
    user_id: int | None = None
    sender_label: str = "user"
    edits: list[Edit] = field(default_factory=list)
    deleted: bool = False
    file: SentFile | None = None

    @property
    def buttons(self) -> list[list[dict[str, Any]]]:
        return (self.reply_markup or {}).get("inline_keyboard", [])

    @property
    def thread_id(self) -> int | None:
        """The forum topic the message is in (None: the chat's General / no topics)."""
        return self.raw.get("message_thread_id")

    @property
    def button_texts(self) -> list[str]:
        return [button.get("text", "") for row in self.buttons for button in row]

    def button(self, text: str) -> dict[str, Any]:
        """The inline button whose text contains `text` (to press it with push_callback)."""
        for row in self.buttons:
            for button in row:
                if text in button.get("text", ""):
                    return button
        raise KeyError(f"no button {text!r} in message {self.message_id}: {self.button_texts}")

    def render(self) -> str:
        who = "bot" if self.sender == "bot" else self.sender_label
        if self.kind == "text":
            line = f"{who}: {self.text}"
        elif self.file is not None:
            line = f"{who} [{self.kind}] {self.file.display_name} ({_human_size(self.file.size)})"
            if self.text:
                line += f": {self.text}"
        elif self.kind == "sticker":
            line = f"{who} [sticker] {self.raw.get('sticker', {}).get('emoji', '')}".rstrip()
        else:
            line = f"{who} [{self.kind}]" + (f": {self.text}" if self.text else "")
        if self.button_texts:
            line += " [" + " | ".join(self.button_texts) + "]"
        return line

    def snapshot(self) -> ChatMessage:
        return replace(self, edits=list(self.edits), raw=json.loads(json.dumps(self.raw)))


@dataclass(frozen=True)
class CallbackAnswer:
    """An answerCallbackQuery call for a query the fake pushed."""

    query_id: str
    chat_id: int | None
    message_id: int | None
    data: str | None
    text: str | None
    show_alert: bool


@dataclass
class _Press:
    """A button press in the transcript."""

    label: str

    def render(self) -> str:
        return self.label


@dataclass
class _FailRule:
    method: str  # lower-case
    status: int | None  # None = drop the connection without an answer
    description: str
    times: int | None
    applied: bool
    retry_after: int | None


@dataclass
class _Flood:
    methods: frozenset[str]  # lower-case
    ratio: float
    retry_after: int
    rng: random.Random


class _ApiError(Exception):
    def __init__(self, status: int, description: str, parameters: dict[str, Any] | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters


class _Drop(Exception):
    """Close the connection without answering (the server went away mid-request)."""


# ----------------------------------------------------------------------------------------------- helpers


def _human_size(size: int) -> str:
    if size < 1000:
        return f"{size} B"
    if size < 1_000_000:
        return f"{round(size / 1000)} kB"
    return f"{size / 1_000_000:.1f} MB"


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def auto_entities(text: str) -> list[dict[str, Any]]:
    """The entities Telegram's clients attach by themselves: commands, @mentions and links (UTF-16 offsets)."""
    found: list[tuple[int, int, str]] = []
    for match in _COMMAND.finditer(text):
        found.append((match.start(), match.end(), "bot_command"))
    for match in _MENTION.finditer(text):
        found.append((match.start(), match.end(), "mention"))
    for match in _URL.finditer(text):
        end = match.end()
        while end > match.start() and text[end - 1] in ".,;:!?)]'":
            end -= 1
        found.append((match.start(), end, "url"))
    found.sort()
    return [
        {"type": kind, "offset": _utf16_len(text[:start]), "length": _utf16_len(text[start:end])}
        for start, end, kind in found
    ]


class _HtmlText(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def render_text(text: str, parse_mode: str | None) -> str:
    """The plain text a user sees for `text` sent with `parse_mode` (formatting dropped)."""
    mode = (parse_mode or "").lower()
    if mode == "html":
        parser = _HtmlText()
        parser.feed(text)
        parser.close()
        return "".join(parser.parts)
    if mode == "markdownv2":
        text = re.sub(r"(?<!\\)\[([^\]]*)\]\([^)]*\)", r"\1", text)
        text = re.sub(r"(?<!\\)(\|\||[*_~`])", "", text)
        return re.sub(r"\\(.)", r"\1", text)
    if mode == "markdown":
        text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
        return re.sub(r"[*_`]", "", text)
    return text


def _normalize_markup(markup: Any) -> dict[str, Any] | None:
    """Telegram echoes only inline keyboards, and an empty one is the same as none."""
    if not isinstance(markup, dict) or not markup.get("inline_keyboard"):
        return None
    return {"inline_keyboard": markup["inline_keyboard"]}


def _check_markup(markup: dict[str, Any] | None) -> None:
    for row in (markup or {}).get("inline_keyboard", []):
        for button in row:
            if not button.get("text"):
                raise _ApiError(400, "Bad Request: text buttons are unallowed in the inline keyboard")
            data = button.get("callback_data")
            if data is not None and not 1 <= len(str(data).encode()) <= 64:
                raise _ApiError(400, "Bad Request: BUTTON_DATA_INVALID")


def _coerce(name: str, value: Any) -> Any:
    """Form fields are strings; give them the types Telegram would parse them as."""
    if not isinstance(value, str):
        return value
    try:
        if name in _JSON_FIELDS:
            return json.loads(value)
        if name in _INT_FIELDS and re.fullmatch(r"-?\d+", value):
            return int(value)
        if name in _BOOL_FIELDS and value.lower() in ("true", "false"):
            return value.lower() == "true"
    except json.JSONDecodeError:
        raise _ApiError(400, f"Bad Request: can't parse {name} JSON object") from None
    return value


def _parse_body(query: str, content_type: str, body: bytes) -> tuple[dict[str, Any], dict[str, Part]]:
    params: dict[str, Any] = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
    files: dict[str, Part] = {}
    ctype = content_type.split(";")[0].strip().lower()
    if ctype == "application/json" and body.strip():
        try:
            decoded = json.loads(body)
        except json.JSONDecodeError:
            raise _ApiError(400, "Bad Request: can't parse JSON object") from None
        if not isinstance(decoded, dict):
            raise _ApiError(400, "Bad Request: can't parse JSON object")
        params.update(decoded)
    elif ctype == "application/x-www-form-urlencoded":
        params.update(urllib.parse.parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    elif ctype == "multipart/form-data":
        head = f"Content-Type: {content_type}\r\n\r\n".encode()
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True) or b""
            filename = part.get_filename()
            if filename is not None:  # httpx escapes these three the way HTML5 forms do
                filename = filename.replace("%22", '"').replace("%0D", "\r").replace("%0A", "\n")
                files[str(name)] = Part(filename, payload, part.get_content_type())
            elif name is not None:
                params[str(name)] = payload.decode("utf-8")
    return {name: _coerce(name, value) for name, value in params.items()}, files


# ----------------------------------------------------------------------------------------------- HTTP


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], fake: FakeTelegram) -> None:
        self.fake = fake
        self.closing = False
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def track(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.add(connection)

    def untrack(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.discard(connection)

    def drop_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that hung up is not a test failure; our own bugs answer 500 in _Handler


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.untrack(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline().strip():
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _serve(self) -> None:
        try:
            body = self._read_body()
            status, payload, content_type = self.server.fake._handle_http(
                self.server, self.path, self.headers.get("Content-Type", ""), body
            )
        except _Drop:
            self.close_connection = True
            return
        except OSError:
            self.close_connection = True
            return
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except OSError:
            self.close_connection = True


# ----------------------------------------------------------------------------------------------- the fake


class FakeTelegram:
    """A scriptable Telegram Bot API server (see the module docstring)."""

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        *,
        bot_username: str = "fake_mp3_bot",
        bot_name: str = "MP3 Bot",
        host: str = "127.0.0.1",
        port: int = 0,
        upload_limit: int | None = CLOUD_UPLOAD_LIMIT,
        check_token: bool = True,
    ) -> None:
        self.token = token
        self.host = host
        self.upload_limit = upload_limit  # bytes per fresh upload (None = no limit, like a local server)
        self.check_token = check_token
        prefix = token.split(":", 1)[0]
        self.bot_user: dict[str, Any] = {
            "id": int(prefix) if prefix.isdigit() else 123456789,
            "is_bot": True,
            "first_name": bot_name,
            "username": bot_username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }
        self._port = port
        self._lock = threading.RLock()
        self._lifecycle = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._timers: list[threading.Timer] = []
        self._closed = False
        self.reset()

    def reset(self) -> None:
        """Forget all chats, updates, calls and faults (the server keeps running)."""
        with self._lock:
            self._update_ids = itertools.count(1)
            self._updates: list[dict[str, Any]] = []
            self._allowed_updates: list[str] = []
            self._poll_generation = 0
            self._webhook_url = ""
            self._webhook_secret: str | None = None
            self._chats: dict[int, dict[str, Any]] = {}
            self._users: dict[int, dict[str, Any]] = {}
            self._message_ids: dict[int, itertools.count[int]] = {}
            self._messages: dict[int, dict[int, ChatMessage]] = {}
            self._timeline: dict[int, list[ChatMessage | _Press]] = {}
            self._files: dict[str, StoredFile] = {}  # file_id -> file
            self._file_paths: dict[str, str] = {}  # file_path (getFile) -> file_id
            self._file_counter = itertools.count(1)
            self._callbacks: dict[str, dict[str, Any]] = {}
            self._callback_ids = itertools.count(1)
            self._answered: list[CallbackAnswer] = []
            self._commands: dict[str, list[dict[str, Any]]] = {}
            self._calls: list[Call] = []
            self._unhandled: list[str] = []
            self._blocked: set[int] = set()
            self._forgotten_ids: set[str] = set()
            self._fail_rules: list[_FailRule] = []
            self._flood: _Flood | None = None
            self._migrated: dict[int, int] = {}  # group id → the supergroup it became
            self._changed.notify_all()

    # ------------------------------------------------------------------------------------------- lifecycle

    def start(self) -> FakeTelegram:
        """Listen (again) on the same port; a no-op while running."""
        with self._lifecycle:
            if self._server is not None:
                return self
            server = _Server((self.host, self._port), self)
            self._port = server.server_address[1]
            thread = threading.Thread(
                target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-telegram", daemon=True
            )
            thread.start()
            with self._lock:
                self._server, self._thread = server, thread
            return self

    def stop(self) -> None:
        """Stop listening and cut every open connection: clients get connection errors until start()."""
        with self._lifecycle:  # a start() waits until the old socket is really closed
            with self._lock:
                server, self._server = self._server, None
                if server is not None:
                    server.closing = True  # from here on every request on it is dropped unanswered
                self._changed.notify_all()
            if server is None:
                return
            server.shutdown()
            server.server_close()
            server.drop_connections()
            if self._thread is not None:
                self._thread.join(timeout=5)

    def unreachable(self, seconds: float) -> None:
        """Go away now and come back on the same port after `seconds` (returns at once)."""
        self.stop()
        timer = threading.Timer(seconds, self._come_back)
        timer.daemon = True
        self._timers.append(timer)
        timer.start()

    def _come_back(self) -> None:
        if not self._closed:
            self.start()

    def close(self) -> None:
        self._closed = True
        for timer in self._timers:
            timer.cancel()
        self.stop()

    def __enter__(self) -> FakeTelegram:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def port(self) -> int:
        return self._port

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self._port}"

    @property
    def api_url(self) -> str:
        """For `base_url=` / TELEGRAM_API_URL (PTB appends the token)."""
        return f"{self.base_url}/bot"

    @property
    def file_url(self) -> str:
        """For `base_file_url=` / TELEGRAM_FILE_URL."""
        return f"{self.base_url}/file/bot"

    def env(self) -> dict[str, str]:
        """Environment variables that point a `python -m bot` process at this server."""
        return {"TELEGRAM_BOT_TOKEN": self.token, "TELEGRAM_API_URL": self.api_url, "TELEGRAM_FILE_URL": self.file_url}

    # ------------------------------------------------------------------------------------------- scripting

    def push_text(
        self,
        user_id: int,
        text: str,
        chat_id: int | None = None,
        chat_type: str = "private",
        username: str | None = None,
        *,
        first_name: str | None = None,
        reply_to_bot: bool = False,
        reply_to: int | None = None,
        entities: list[dict[str, Any]] | None = None,
        caption: bool = False,
        forward_from: int | dict[str, Any] | None = None,
        edited: bool = False,
        thread_id: int | None = None,
    ) -> dict[str, Any]:
        """A user's text message (or, with caption=True, a photo with that caption) as an update.

        Entities default to what Telegram's clients detect (commands, @mentions, links); pass [] for none.
        reply_to_bot replies to the bot's latest message in the chat; reply_to to a given message_id.
        forward_from: a user id, or a full `forward_origin` dict. edited: edits the user's latest message.
        thread_id: the message is in that forum topic of a supergroup (`message_thread_id`, `is_topic_message`).
        """
        entities = auto_entities(text) if entities is None else entities
        content: dict[str, Any] = {"caption": text} if caption else {"text": text}
        if thread_id is not None:
            content |= {"message_thread_id": thread_id, "is_topic_message": True}
        if entities:
            content["caption_entities" if caption else "entities"] = entities
        if forward_from is not None:
            content["forward_origin"] = (
                forward_from
                if isinstance(forward_from, dict)
                else {"type": "user", "sender_user": self._user(forward_from, None, None), "date": int(time.time())}
            )
        with self._lock:
            if caption:
                content["photo"] = self._photo_sizes(self._store_file("photo", _TINY_JPEG, None, "image/jpeg"))
            return self._push_user_message(
                user_id,
                chat_id,
                chat_type,
                username,
                first_name,
                "photo" if caption else "text",
                text,
                content,
                reply_to_bot=reply_to_bot,
                reply_to=reply_to,
                edited=edited,
            )

    def push_callback(
        self, user_id: int, message_id: int, data: str, chat_id: int | None = None, *, username: str | None = None
    ) -> dict[str, Any]:
        """The user presses an inline button with callback `data` under the bot's message `message_id`."""
        chat_id = user_id if chat_id is None else chat_id
        with self._lock:
            message = self._messages.get(chat_id, {}).get(message_id)
            if message is None:
                raise KeyError(f"no message {message_id} in chat {chat_id}\n{self.describe(chat_id)}")
            query_id = f"cbq{next(self._callback_ids)}"
            self._callbacks[query_id] = {"chat_id": chat_id, "message_id": message_id, "data": data}
            label = next(
                (b.get("text", "") for row in message.buttons for b in row if b.get("callback_data") == data), None
            )
            pressed = f"[pressed] {label}" if label is not None else f"[pressed data={data!r}]"
            self._timeline.setdefault(chat_id, []).append(_Press(f"{self._label(chat_id, user_id)} {pressed}"))
            query = {
                "id": query_id,
                "from": self._user(user_id, username, None),
                "message": json.loads(json.dumps(message.raw)),
                "chat_instance": str(abs(chat_id)),
                "data": data,
            }
            return self._queue({"callback_query": query})

    def push_sticker(
        self, user_id: int, emoji: str = "👍", chat_id: int | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        with self._lock:
            stored_id = self._store_file("sticker", b"RIFF\x00\x00\x00\x00WEBP", None, "image/webp")
            stored = self._files[stored_id]
            sticker = {
                "file_id": stored_id,
                "file_unique_id": stored.file_unique_id,
                "type": "regular",
                "width": 512,
                "height": 512,
                "is_animated": False,
                "is_video": False,
                "emoji": emoji,
            }
            return self._push_media(user_id, chat_id, "sticker", None, {"sticker": sticker}, kwargs)

    def push_photo(
        self,
        user_id: int,
        caption: str | None = None,
        chat_id: int | None = None,
        data: bytes | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        with self._lock:
            file_id = self._store_file("photo", data or _TINY_JPEG, None, "image/jpeg")
            content: dict[str, Any] = {"photo": self._photo_sizes(file_id)}
            if caption:
                content["caption"] = caption
                if entities := auto_entities(caption):
                    content["caption_entities"] = entities
            return self._push_media(user_id, chat_id, "photo", caption, content, kwargs)

    def push_voice(
        self, user_id: int, duration: int = 3, chat_id: int | None = None, data: bytes | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        with self._lock:
            payload = data or b"OggS\x00fake-voice"
            file_id = self._store_file("voice", payload, None, "audio/ogg")
            voice = {
                "file_id": file_id,
                "file_unique_id": self._files[file_id].file_unique_id,
                "duration": duration,
                "mime_type": "audio/ogg",
                "file_size": len(payload),
            }
            return self._push_media(user_id, chat_id, "voice", None, {"voice": voice}, kwargs)

    def push_raw(self, update: dict[str, Any]) -> dict[str, Any]:
        """Queue any update dict as is (an update_id is added when missing)."""
        with self._lock:
            update = json.loads(json.dumps(update))
            if "update_id" in update:
                self._update_ids = itertools.count(max(int(update["update_id"]) + 1, next(self._update_ids)))
                self._updates.append(update)
                self._changed.notify_all()
                return update
            return self._queue(update)

    # ------------------------------------------------------------------------------------------- webhook

    @property
    def webhook_url(self) -> str:
        """The URL the bot registered with setWebhook ("" = none: it polls)."""
        with self._lock:
            return self._webhook_url

    @property
    def webhook_secret(self) -> str | None:
        """The secret_token of the last setWebhook: Telegram sends it in X-Telegram-Bot-Api-Secret-Token."""
        with self._lock:
            return self._webhook_secret

    def post_webhook(self, update: dict[str, Any], secret: str | None = "registered", timeout: float = 10.0) -> int:
        """POST an update (e.g. the one push_text returned) to the registered webhook as Telegram does; returns
        the HTTP status the bot answered. `secret`: the header to send ("registered" = the one setWebhook gave,
        None = no header). The update is also taken off the getUpdates queue: it is delivered this way."""
        with self._lock:
            url, registered = self._webhook_url, self._webhook_secret
            self._updates = [u for u in self._updates if u.get("update_id") != update.get("update_id")]
        if not url:
            raise AssertionError("the bot registered no webhook (setWebhook was not called)")
        headers = {"Content-Type": "application/json"}
        token = registered if secret == "registered" else secret
        if token is not None:
            headers["X-Telegram-Bot-Api-Secret-Token"] = token
        request = urllib.request.Request(url, data=json.dumps(update).encode(), headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as answer:
                return int(answer.status)
        except urllib.error.HTTPError as error:
            return int(error.code)

    def block(self, chat_id: int) -> None:
        """The user blocks the bot: sends to this chat answer 403 Forbidden."""
        with self._lock:
            self._blocked.add(chat_id)

    def unblock(self, chat_id: int) -> None:
        with self._lock:
            self._blocked.discard(chat_id)

    def migrate(self, chat_id: int, new_chat_id: int) -> None:
        """The group is upgraded to a supergroup: every call to the old id answers 400 with
        `migrate_to_chat_id`, as Telegram does; the chat goes on under the new id."""
        with self._lock:
            self._migrated[chat_id] = new_chat_id
            old = self._chat(chat_id)
            self._chats[new_chat_id] = {**old, "id": new_chat_id, "type": "supergroup"}

    def forget_file_ids(self) -> None:
        """Telegram no longer knows the file_ids it gave out (sending one answers 400 "wrong file identifier")."""
        with self._lock:
            self._forgotten_ids = set(self._files)

    def _check_migrated(self, chat_id: Any) -> None:
        if isinstance(chat_id, int) and chat_id in self._migrated:
            raise _ApiError(
                400,
                "Bad Request: group chat was upgraded to a supergroup chat",
                {"migrate_to_chat_id": self._migrated[chat_id]},
            )

    # ------------------------------------------------------------------------------------------- faults

    def flood(
        self,
        methods: Iterable[str] = ("sendAudio", "editMessageText"),
        ratio: float = 0.3,
        retry_after: int = 1,
        seed: int | None = 0,
    ) -> None:
        """Answer that share of calls to `methods` with 429 Too Many Requests (deterministic per seed).

        ratio=0 turns flooding off. A flooded call has no effect, as on Telegram.
        """
        with self._lock:
            self._flood = (
                _Flood(frozenset(m.lower() for m in methods), ratio, retry_after, random.Random(seed))
                if ratio > 0
                else None
            )

    def fail(
        self,
        method: str,
        status: int | None = 500,
        description: str | None = None,
        times: int | None = 1,
        *,
        applied: bool = False,
        retry_after: int | None = None,
    ) -> None:
        """The next `times` calls of `method` fail (times=None: until clear_faults()).

        status=None drops the connection without an answer (the bot sees a network error). With
        applied=True the call takes effect first and only the answer is lost or wrong: the "did my message
        go out?" case that makes naive retries send duplicates.
        """
        default = {
            400: "Bad Request: fake failure",
            403: "Forbidden: bot was blocked by the user",
            429: f"Too Many Requests: retry after {retry_after or 1}",
            500: "Internal Server Error",
            502: "Bad Gateway",
        }
        text = description or default.get(status or 0, f"Error {status}")
        if status == 429 and retry_after is None:
            retry_after = 1
        with self._lock:
            self._fail_rules.append(_FailRule(method.lower(), status, text, times, applied, retry_after))

    def clear_faults(self) -> None:
        with self._lock:
            self._fail_rules.clear()
            self._flood = None

    # ------------------------------------------------------------------------------------------- queries

    def sent_messages(self, chat_id: int) -> list[ChatMessage]:
        """Every message the bot sent to the chat (any kind, deleted ones too), oldest first."""
        with self._lock:
            return [m.snapshot() for m in self._messages.get(chat_id, {}).values() if m.sender == "bot"]

    def texts(self, chat_id: int) -> list[str]:
        """The current text of each visible bot text message in the chat."""
        return [m.text or "" for m in self.sent_messages(chat_id) if m.kind == "text" and not m.deleted]

    def message(self, chat_id: int, message_id: int) -> ChatMessage:
        with self._lock:
            return self._messages[chat_id][message_id].snapshot()

    def edits(self, chat_id: int, message_id: int) -> list[Edit]:
        """The edits of one message in order (each holds the content after that edit)."""
        with self._lock:
            return list(self._messages[chat_id][message_id].edits)

    def audios(self, chat_id: int) -> list[SentFile]:
        """Audio messages the bot sent to the chat, in the order the server received them."""
        return self.files(chat_id, "audio")

    def documents(self, chat_id: int) -> list[SentFile]:
        return self.files(chat_id, "document")

    def files(self, chat_id: int, kind: str | None = None) -> list[SentFile]:
        with self._lock:
            return [
                m.file
                for m in self._messages.get(chat_id, {}).values()
                if m.file is not None and (kind is None or m.kind == kind)
            ]

    def duplicate_audios(self, chat_id: int, by: str = "content") -> list[list[SentFile]]:
        """Groups of audio messages that repeat one another: by "content" (same bytes) or "title"."""
        groups: dict[Any, list[SentFile]] = {}
        for audio in self.audios(chat_id):
            key = audio.sha256 if by == "content" else (audio.performer, audio.title)
            groups.setdefault(key, []).append(audio)
        return [group for group in groups.values() if len(group) > 1]

    def transcript(self, chat_id: int, include_deleted: bool = False) -> list[str]:
        """What the user sees in the chat, one entry per message or button press, edits applied."""
        with self._lock:
            lines = []
            for item in self._timeline.get(chat_id, []):
                if isinstance(item, ChatMessage) and item.deleted:
                    if include_deleted:
                        lines.append(f"[deleted] {item.render()}")
                    continue
                lines.append(item.render())
            return lines

    def chat_ids(self) -> list[int]:
        with self._lock:
            return list(self._timeline)

    def describe(self, chat_id: int | None = None) -> str:
        """A readable dump for assertion messages: transcripts and the failed calls."""
        with self._lock:
            chats = [chat_id] if chat_id is not None else list(self._timeline)
            out = []
            for chat in chats:
                out.append(f"chat {chat}:")
                out.extend(f"  {line}" for line in self.transcript(chat, include_deleted=True))
            failed = [c for c in self._calls if c.status != 200]
            if failed:
                out.append("failed calls:")
                out.extend(f"  {c.method} -> {c.status} {c.description or ''}" for c in failed[-10:])
            if self._unhandled:
                out.append(f"unhandled methods: {sorted(set(self._unhandled))}")
            return "\n".join(out)

    def wait_for(
        self, predicate: Callable[[], T], timeout: float = 10.0, message: str = "", chat_id: int | None = None
    ) -> T:
        """Poll `predicate` until it returns something truthy; on timeout fail with the transcript."""
        deadline = time.monotonic() + timeout
        while True:
            result = predicate()
            if result:
                return result
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"timed out after {timeout}s waiting for {message or predicate}\n" + self.describe(chat_id)
                )
            with self._changed:
                self._changed.wait(min(remaining, 0.05))

    @property
    def calls(self) -> list[Call]:
        with self._lock:
            return list(self._calls)

    def calls_to(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method.lower() == method.lower()]

    @property
    def answered_callbacks(self) -> list[CallbackAnswer]:
        with self._lock:
            return list(self._answered)

    @property
    def unanswered_callbacks(self) -> list[str]:
        with self._lock:
            answered = {a.query_id for a in self._answered}
            return [query_id for query_id in self._callbacks if query_id not in answered]

    @property
    def unhandled_methods(self) -> list[str]:
        """Methods the fake does not know (answered ok with True): worth a look when a test misbehaves."""
        with self._lock:
            return sorted(set(self._unhandled))

    @property
    def pending_updates(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._updates)

    def commands(self) -> list[dict[str, Any]]:
        """The bot's default command list as last set with setMyCommands."""
        with self._lock:
            return list(self._commands.get(self._commands_key({}), []))

    # ------------------------------------------------------------------------------------------- internals

    def _user(self, user_id: int, username: str | None, first_name: str | None) -> dict[str, Any]:
        user = self._users.get(user_id) or {"id": user_id, "is_bot": False, "first_name": f"User{user_id}"}
        if first_name:
            user["first_name"] = first_name
        if username:
            user["username"] = username
        user.setdefault("language_code", "en")
        self._users[user_id] = user
        return dict(user)

    def _chat(self, chat_id: int, chat_type: str | None = None, user: dict[str, Any] | None = None) -> dict[str, Any]:
        chat = self._chats.get(chat_id)
        if chat is None:
            kind = chat_type or ("private" if chat_id > 0 else "group")
            if kind == "private":
                user = user or self._users.get(chat_id) or {"first_name": f"User{chat_id}"}
                chat = {"id": chat_id, "type": "private", "first_name": user["first_name"]}
                if user.get("username"):
                    chat["username"] = user["username"]
            else:
                chat = {"id": chat_id, "type": kind, "title": f"Test {kind} {chat_id}"}
            self._chats[chat_id] = chat
        return dict(chat)

    def _label(self, chat_id: int, user_id: int) -> str:
        if self._chat(chat_id)["type"] == "private":
            return "user"
        user = self._users.get(user_id, {})
        return f"user @{user['username']}" if user.get("username") else f"user {user_id}"

    def _next_message_id(self, chat_id: int) -> int:
        return next(self._message_ids.setdefault(chat_id, itertools.count(1)))

    def _queue(self, body: dict[str, Any]) -> dict[str, Any]:
        update = {"update_id": next(self._update_ids), **body}
        self._updates.append(update)
        self._changed.notify_all()
        return json.loads(json.dumps(update))

    def _push_media(
        self,
        user_id: int,
        chat_id: int | None,
        kind: str,
        text: str | None,
        content: dict[str, Any],
        kw: dict[str, Any],
    ) -> dict[str, Any]:
        return self._push_user_message(
            user_id,
            chat_id,
            kw.pop("chat_type", "private"),
            kw.pop("username", None),
            kw.pop("first_name", None),
            kind,
            text,
            content,
            **kw,
        )

    def _push_user_message(
        self,
        user_id: int,
        chat_id: int | None,
        chat_type: str,
        username: str | None,
        first_name: str | None,
        kind: str,
        text: str | None,
        content: dict[str, Any],
        *,
        reply_to_bot: bool = False,
        reply_to: int | None = None,
        edited: bool = False,
    ) -> dict[str, Any]:
        if chat_id is None:
            chat_id = {"private": user_id, "group": DEFAULT_GROUP_ID}.get(chat_type, DEFAULT_SUPERGROUP_ID)
        elif chat_type == "private" and chat_id != user_id:
            chat_type = "supergroup" if str(chat_id).startswith("-100") else "group"
        user = self._user(user_id, username, first_name)
        chat = self._chat(chat_id, chat_type, user)
        previous = None
        if edited:
            previous = next(
                (
                    m
                    for m in reversed(self._messages.get(chat_id, {}).values())
                    if m.sender == "user" and m.user_id == user_id
                ),
                None,
            )
        message_id = previous.message_id if previous else self._next_message_id(chat_id)
        raw: dict[str, Any] = {"message_id": message_id, "from": user, "chat": chat, "date": int(time.time())}
        if edited:
            raw["edit_date"] = int(time.time())
        raw.update(content)
        if reply_to_bot and reply_to is None:
            last_bot = next(
                (m for m in reversed(self._messages.get(chat_id, {}).values()) if m.sender == "bot" and not m.deleted),
                None,
            )
            if last_bot is None:
                raise KeyError(f"reply_to_bot: the bot has sent nothing to chat {chat_id}")
            reply_to = last_bot.message_id
        if reply_to is not None:
            raw["reply_to_message"] = json.loads(json.dumps(self._messages[chat_id][reply_to].raw))
        if previous is not None:
            previous.edits.append(Edit(text, None, time.time()))
            previous.text, previous.raw = text, raw
        else:
            message = ChatMessage(
                chat_id, message_id, "user", kind, text, None, raw, user_id, self._label(chat_id, user_id)
            )
            self._messages.setdefault(chat_id, {})[message_id] = message
            self._timeline.setdefault(chat_id, []).append(message)
        return self._queue({"edited_message" if edited else "message": raw})

    def _store_file(
        self,
        kind: str,
        data: bytes,
        filename: str | None,
        mime_type: str | None,
        **meta: Any,
    ) -> str:
        number = next(self._file_counter)
        stored = StoredFile(f"AgADfake{number:06d}", kind, data, filename, mime_type, **meta)
        return self._new_file_id(stored)

    def _new_file_id(self, stored: StoredFile) -> str:
        file_id = f"{stored.kind.upper()[:3]}-{stored.file_unique_id}-{next(self._file_counter)}"
        self._files[file_id] = stored
        return file_id

    def _photo_sizes(self, file_id: str) -> list[dict[str, Any]]:
        stored = self._files[file_id]
        return [
            {
                "file_id": file_id,
                "file_unique_id": stored.file_unique_id,
                "width": 90,
                "height": 90,
                "file_size": len(stored.data),
            }
        ]

    # ------------------------------------------------------------------------------------------- HTTP entry

    def _handle_http(self, server: _Server, path: str, content_type: str, body: bytes) -> tuple[int, bytes, str]:
        if server.closing:
            raise _Drop
        split = urllib.parse.urlsplit(path)
        segments = split.path.lstrip("/").split("/")
        if len(segments) >= 3 and segments[0] == "file" and segments[1].startswith("bot"):
            return self._download(urllib.parse.unquote(segments[1][3:]), urllib.parse.unquote("/".join(segments[2:])))
        if len(segments) != 2 or not segments[0].startswith("bot"):
            return _answer_error(_ApiError(404, "Not Found"))
        token, method = urllib.parse.unquote(segments[0][3:]), segments[1]
        if self.check_token and token != self.token:
            return _answer_error(_ApiError(401, "Unauthorized"))
        try:
            params, files = _parse_body(split.query, content_type, body)
        except _ApiError as error:
            return _answer_error(error)
        call = Call(method, params, files, time.time())
        with self._lock:
            self._calls.append(call)
        try:
            result = self._call(server, call)
        except _ApiError as error:
            call.status, call.description = error.status, error.description
            self._notify()
            return _answer_error(error)
        except _Drop:
            call.status, call.description = 0, "connection dropped"
            self._notify()
            raise
        except Exception as error:  # a bug in the fake: say so loudly instead of hanging the test
            traceback.print_exc()
            call.status, call.description = 500, f"fake server bug: {error!r}"
            self._notify()
            return _answer_error(_ApiError(500, call.description))
        self._notify()
        return 200, json.dumps({"ok": True, "result": result}).encode(), "application/json"

    def _notify(self) -> None:
        with self._changed:
            self._changed.notify_all()

    def _download(self, token: str, file_path: str) -> tuple[int, bytes, str]:
        if self.check_token and token != self.token:
            return _answer_error(_ApiError(401, "Unauthorized"))
        with self._lock:
            file_id = self._file_paths.get(file_path)
            stored = self._files.get(file_id) if file_id else None
        if stored is None:
            return _answer_error(_ApiError(404, "Not Found"))
        return 200, stored.data, stored.mime_type or "application/octet-stream"

    def _call(self, server: _Server, call: Call) -> Any:
        name = call.method.lower()
        handler = _METHODS.get(name)
        with self._lock:
            rule = self._take_fail_rule(name)
            if rule is None or not rule.applied:
                self._raise_fault(rule)
                self._raise_flood(name)
        if name == "getupdates":
            return self._get_updates(server, call.params)
        with self._lock:
            if handler is None:
                self._unhandled.append(call.method)
                result: Any = True
            else:
                result = handler(self, call.params, call.files)
            if rule is not None:
                self._raise_fault(rule)
            return result

    def _take_fail_rule(self, name: str) -> _FailRule | None:
        for rule in self._fail_rules:
            if rule.method == name:
                if rule.times is not None:
                    rule.times -= 1
                    if rule.times <= 0:
                        self._fail_rules.remove(rule)
                return rule
        return None

    @staticmethod
    def _raise_fault(rule: _FailRule | None) -> None:
        if rule is None:
            return
        if rule.status is None:
            raise _Drop
        parameters = {"retry_after": rule.retry_after} if rule.retry_after else None
        raise _ApiError(rule.status, rule.description, parameters)

    def _raise_flood(self, name: str) -> None:
        flood = self._flood
        if flood is not None and name in flood.methods and flood.rng.random() < flood.ratio:
            raise _ApiError(
                429, f"Too Many Requests: retry after {flood.retry_after}", {"retry_after": flood.retry_after}
            )

    # ------------------------------------------------------------------------------------------- methods

    def _get_updates(self, server: _Server, p: dict[str, Any]) -> list[dict[str, Any]]:
        limit = min(max(int(p.get("limit") or 100), 1), 100)
        deadline = time.monotonic() + max(float(p.get("timeout") or 0), 0.0)
        with self._changed:
            if self._webhook_url:
                raise _ApiError(409, WEBHOOK_CONFLICT)
            offset = p.get("offset")
            if isinstance(offset, int) and offset < 0:
                self._updates = self._updates[offset:]
            elif isinstance(offset, int) and offset > 0:
                self._updates = [u for u in self._updates if u["update_id"] >= offset]
            if isinstance(p.get("allowed_updates"), list):
                self._allowed_updates = list(p["allowed_updates"])
            self._poll_generation += 1
            generation = self._poll_generation
            while True:
                if server.closing or self._server is not server:
                    raise _Drop
                if self._poll_generation != generation:
                    raise _ApiError(409, POLL_CONFLICT)
                ready = [u for u in self._updates if self._allowed(u)][:limit]
                remaining = deadline - time.monotonic()
                if ready or remaining <= 0:
                    return json.loads(json.dumps(ready))
                self._changed.wait(remaining)

    def _allowed(self, update: dict[str, Any]) -> bool:
        if not self._allowed_updates:
            return True
        return any(key in self._allowed_updates for key in update if key != "update_id")

    def _bot_message(
        self,
        chat_id: Any,
        kind: str,
        text: str | None,
        content: dict[str, Any],
        p: dict[str, Any],
    ) -> ChatMessage:
        if not isinstance(chat_id, int):
            raise _ApiError(400, "Bad Request: chat not found")
        self._check_migrated(chat_id)
        if chat_id in self._blocked:
            raise _ApiError(403, "Forbidden: bot was blocked by the user")
        markup = _normalize_markup(p.get("reply_markup"))
        _check_markup(markup)
        raw: dict[str, Any] = {"message_id": 0, "from": dict(self.bot_user), "chat": self._chat(chat_id)}
        raw["date"] = int(time.time())
        reply_to = (p.get("reply_parameters") or {}).get("message_id") or p.get("reply_to_message_id")
        if reply_to:
            target = self._messages.get(chat_id, {}).get(int(reply_to))
            if target is not None and not target.deleted:
                raw["reply_to_message"] = json.loads(json.dumps(target.raw))
            elif not (p.get("reply_parameters") or {}).get("allow_sending_without_reply") and not p.get(
                "allow_sending_without_reply"
            ):
                raise _ApiError(400, "Bad Request: message to be replied not found")
        raw.update(content)
        if p.get("message_thread_id"):
            raw |= {"message_thread_id": p["message_thread_id"], "is_topic_message": True}
        if markup:
            raw["reply_markup"] = markup
        message_id = self._next_message_id(chat_id)
        raw["message_id"] = message_id
        message = ChatMessage(chat_id, message_id, "bot", kind, text, markup, raw, sender_label="bot")
        self._messages.setdefault(chat_id, {})[message_id] = message
        self._timeline.setdefault(chat_id, []).append(message)
        return message

    def _text_param(self, p: dict[str, Any], key: str, limit: int, too_long: str) -> str:
        text = render_text(str(p.get(key) or ""), p.get("parse_mode"))
        if len(text) > limit:
            raise _ApiError(400, too_long)
        return text

    def _find_bot_message(self, p: dict[str, Any], not_found: str) -> ChatMessage:
        if p.get("inline_message_id"):
            raise _ApiError(400, "Bad Request: MESSAGE_ID_INVALID")
        message = self._lookup(p.get("chat_id"), p.get("message_id"))
        if message is None or message.deleted:
            raise _ApiError(400, not_found)
        if message.sender != "bot":
            raise _ApiError(400, "Bad Request: message can't be edited")
        return message

    def _lookup(self, chat_id: Any, message_id: Any) -> ChatMessage | None:
        self._check_migrated(chat_id)
        try:
            return self._messages.get(int(chat_id), {}).get(int(message_id))
        except (TypeError, ValueError):
            return None

    def _apply_edit(self, message: ChatMessage, text: str | None, markup: dict[str, Any] | None) -> dict[str, Any]:
        if text == message.text and markup == message.reply_markup:
            raise _ApiError(400, NOT_MODIFIED)
        _check_markup(markup)
        message.edits.append(Edit(text, markup, time.time()))
        message.text, message.reply_markup = text, markup
        if message.kind == "text":
            message.raw["text"] = text
        elif text:
            message.raw["caption"] = text
        else:
            message.raw.pop("caption", None)
        if markup:
            message.raw["reply_markup"] = markup
        else:
            message.raw.pop("reply_markup", None)
        message.raw["edit_date"] = int(time.time())
        return json.loads(json.dumps(message.raw))

    def _m_get_me(self, p: dict[str, Any], files: dict[str, Part]) -> Any:
        return dict(self.bot_user)

    def _m_true(self, p: dict[str, Any], files: dict[str, Part]) -> Any:
        return True

    def _m_delete_webhook(self, p: dict[str, Any], files: dict[str, Part]) -> Any:
        self._webhook_url = ""
        self._webhook_secret = None
        if p.get("drop_pending_updates"):
            self._updates.clear()
        return True

    def _m_set_webhook(self, p: dict[str, Any], files: dict[str, Part]) -> Any:
        self._webhook_url = str(p.get("url") or "")
        self._webhook_secret = str(p["secret_token"]) if p.get("secret_token") else None
        return True

    def _m_get_webhook_info(self, p: dict[str, Any], files: dict[str, Part]) -> Any:
        return {"url": self._webhook_url, "has_custom_certificate": False, "pending_update_count": len(self._updates)}

    @staticmethod
    def _commands_key(p: dict[str, Any]) -> str:
        return json.dumps([p.get("scope") or {"type": "default"}, p.get("language_code") or ""], sort_keys=True)

    def _m_set_my_commands(self, p: dict[str, Any], files: dict[str, Part]) -> Any:
        commands = p.get("commands")
        if not isinstance(commands, list):
            raise _ApiError(400, "Bad Request: can't parse commands JSON object")
        self._commands[self._commands_key(p)] = commands
        return True

    def _m_get_my_commands(self, p: dict[str, Any], files: dict[str, Part]) -> Any:
        return list(self._commands.get(self._commands_key(p), []))

    def _m_delete_my_commands(self, p: dict[str, Any], files: dict[str, Part]) -> Any:
        self._commands.pop(self._commands_key(p), None)
        return True

    def _m_get_chat(self, p: dict[str, Any], files: dict[str, Part]) -> Any:
        chat_id = p.get("chat_id")
        if not isinstance(chat_id, int) or chat_id not in self._chats:
            raise _ApiError(400, "Bad Request: chat not found")
        return {**self._chats[chat_id], "accent_color_id": 0, "max_reaction_count": 11}

    def _m_send_message(self, p: dict[str, Any], files: dict[str, Part]) -> Any:
        text = self._text_param(p, "text", 4096, "Bad Request: message is too long")
        if not text.strip():
            raise _ApiError(400, "Bad Request: message text is empty")
        content: dict[str, Any] = {"text": text}
        if p.get("entities"):
            content["entities"] = p["entities"]
        return self._bot_message(p.get("chat_id"), "text", text, content, p).raw

    def _m_edit_message_text(self, p: dict[str, Any], files: dict[str, Part]) -> Any:
        message = self._find_bot_message(p, "Bad Request: message to edit not found")
        if message.kind != "text":
            raise _ApiError(400, "Bad Request: there is no text in the message to edit")
        text = self._text_param(p, "text", 4096, "Bad Request: MESSAGE_TOO_LONG")
        if not text.strip():
            raise _ApiError(400, "Bad Request: message text is empty")
        return self._apply_edit(message, text, _normalize_markup(p.get("reply_markup")))

    def _m_edit_message_caption(self, p: dict[str, Any], files: dict[str, Part]) -> Any:
        message = self._find_bot_message(p, "Bad Request: message to edit not found")
        if message.kind == "text":
            raise _ApiError(400, "Bad Request: there is no caption in the message to edit")
        caption = self._text_param(p, "caption", 1024, "Bad Request: message caption is too long") or None
        return self._apply_edit(message, caption, _normalize_markup(p.get("reply_markup")))

    def _m_edit_message_reply_markup(self, p: dict[str, Any], files: dict[str, Part]) -> Any:
        message = self._find_bot_message(p, "Bad Request: message to edit not found")
        return self._apply_edit(message, message.text, _normalize_markup(p.get("reply_markup")))

    def _m_delete_message(self, p: dict[str, Any], files: dict[str, Part]) -> Any:
        message = self._lookup(p.get("chat_id"), p.get("message_id"))
        if message is None or message.deleted:
            raise _ApiError(400, "Bad Request: message to delete not found")
        message.deleted = True
        return True

    def _m_delete_messages(self, p: dict[str, Any], files: dict[str, Part]) -> Any:
        for message_id in p.get("message_ids") or []:
            message = self._lookup(p.get("chat_id"), message_id)
            if message is not None:
                message.deleted = True
        return True

    def _m_answer_callback_query(self, p: dict[str, Any], files: dict[str, Part]) -> Any:
        query_id = str(p.get("callback_query_id") or "")
        query = self._callbacks.get(query_id)
        if query is None or any(a.query_id == query_id for a in self._answered):
            raise _ApiError(400, QUERY_TOO_OLD)
        text = p.get("text")
        if text is not None and len(str(text)) > 200:
            raise _ApiError(400, "Bad Request: MESSAGE_TOO_LONG")
        self._answered.append(
            CallbackAnswer(
                query_id,
                query["chat_id"],
                query["message_id"],
                query["data"],
                text,
                bool(p.get("show_alert")),
            )
        )
        return True

    def _m_get_file(self, p: dict[str, Any], files: dict[str, Part]) -> Any:
        file_id = str(p.get("file_id") or "")
        stored = self._files.get(file_id)
        if stored is None:
            raise _ApiError(400, "Bad Request: invalid file_id")
        file_path = f"{stored.kind}s/{stored.file_unique_id}{Path(stored.filename or '').suffix}"
        self._file_paths[file_path] = file_id
        return {
            "file_id": file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": len(stored.data),
            "file_path": file_path,
        }

    def _resolve_upload(self, kind: str, p: dict[str, Any], files: dict[str, Part]) -> tuple[StoredFile, bool]:
        """The file a send* call refers to, and whether it was given by reference (file_id/path)."""
        value = p.get(kind)
        if kind in files:
            part = files[kind]
        elif isinstance(value, str) and value.startswith("attach://") and value[9:] in files:
            part = files[value[9:]]
        elif isinstance(value, str) and value.startswith("file://"):  # a local Bot API server reads the path
            path = _local_path(value)
            if path is None:
                raise _ApiError(400, "Bad Request: wrong file identifier/HTTP URL specified")
            part = Part(path.name, path.read_bytes(), mimetypes.guess_type(path.name)[0])
            return self._fresh_file(kind, part, limit=None), False
        elif isinstance(value, str) and value.startswith(("http://", "https://")):
            raise _ApiError(400, "Bad Request: failed to get HTTP URL content")
        elif isinstance(value, str) and value in self._files and value not in self._forgotten_ids:
            stored = self._files[value]
            if stored.kind != kind:
                raise _ApiError(400, f"Bad Request: can't use file of type {stored.kind.title()} as {kind.title()}")
            return stored, True
        elif value:
            raise _ApiError(400, "Bad Request: wrong file identifier/HTTP URL specified")
        else:
            raise _ApiError(400, f"Bad Request: there is no {kind} in the request")
        return self._fresh_file(kind, part, limit=self.upload_limit), False

    def _fresh_file(self, kind: str, part: Part, limit: int | None) -> StoredFile:
        if not part.data:
            raise _ApiError(400, "Bad Request: file must be non-empty")
        if limit is not None and len(part.data) > limit:
            raise _ApiError(413, "Request Entity Too Large")
        unique_id = f"AgADfake{next(self._file_counter):06d}"
        return StoredFile(unique_id, kind, part.data, part.filename, part.content_type)

    def _thumbnail(self, p: dict[str, Any], files: dict[str, Part]) -> bytes | None:
        value = p.get("thumbnail")
        if isinstance(value, str) and value.startswith("attach://") and value[9:] in files:
            return files[value[9:]].data
        if "thumbnail" in files:
            return files["thumbnail"].data
        if isinstance(value, str) and (path := _local_path(value)) is not None:
            return path.read_bytes()
        return None

    def _send_file(self, kind: str, p: dict[str, Any], files: dict[str, Part]) -> Any:
        stored, by_reference = self._resolve_upload(kind, p, files)
        caption = self._text_param(p, "caption", 1024, "Bad Request: message caption is too long") or None
        thumbnail = self._thumbnail(p, files)
        duration = p.get("duration") if isinstance(p.get("duration"), int) else stored.duration
        performer = p.get("performer") or stored.performer
        title = p.get("title") or stored.title
        stored = replace(stored, duration=duration, performer=performer, title=title)
        file_id = self._new_file_id(stored)
        media: dict[str, Any] = {"file_id": file_id, "file_unique_id": stored.file_unique_id}
        if kind == "audio":
            media["duration"] = duration or 0
            media.update({key: value for key, value in (("performer", performer), ("title", title)) if value})
        if kind in ("voice", "video", "animation"):
            media["duration"] = duration or 0
        if stored.filename and kind in ("audio", "document", "video", "animation"):
            media["file_name"] = stored.filename
        if stored.mime_type:
            media["mime_type"] = stored.mime_type
        media["file_size"] = len(stored.data)
        if thumbnail and not by_reference:
            thumb_id = self._store_file("thumbnail", thumbnail, None, "image/jpeg")
            media["thumbnail"] = self._photo_sizes(thumb_id)[0] | {"width": 320, "height": 320}
        content: dict[str, Any] = {kind: [media] if kind == "photo" else media}
        if caption:
            content["caption"] = caption
        message = self._bot_message(p.get("chat_id"), kind, caption, content, p)
        message.file = SentFile(
            chat_id=message.chat_id,
            message_id=message.message_id,
            kind=kind,
            data=stored.data,
            filename=stored.filename,
            mime_type=stored.mime_type,
            file_id=file_id,
            file_unique_id=stored.file_unique_id,
            by_file_id=by_reference,
            title=title,
            performer=performer,
            duration=duration,
            thumbnail=thumbnail,
            caption=caption,
            reply_markup=message.reply_markup,
            params=dict(p),
        )
        return message.raw

    def _m_send_audio(self, p: dict[str, Any], files: dict[str, Part]) -> Any:
        return self._send_file("audio", p, files)

    def _m_send_document(self, p: dict[str, Any], files: dict[str, Part]) -> Any:
        return self._send_file("document", p, files)

    def _m_send_photo(self, p: dict[str, Any], files: dict[str, Part]) -> Any:
        return self._send_file("photo", p, files)

    def _m_send_voice(self, p: dict[str, Any], files: dict[str, Part]) -> Any:
        return self._send_file("voice", p, files)

    def _m_send_video(self, p: dict[str, Any], files: dict[str, Part]) -> Any:
        return self._send_file("video", p, files)


def _local_path(uri: str) -> Path | None:
    if not uri.startswith("file://"):
        return None
    path = Path(urllib.parse.unquote(urllib.parse.urlsplit(uri).path))
    return path if path.is_file() else None


def _answer_error(error: _ApiError) -> tuple[int, bytes, str]:
    body: dict[str, Any] = {"ok": False, "error_code": error.status, "description": error.description}
    if error.parameters:
        body["parameters"] = error.parameters
    return error.status, json.dumps(body).encode(), "application/json"


_METHODS: dict[str, Callable[[FakeTelegram, dict[str, Any], dict[str, Part]], Any]] = {
    "getme": FakeTelegram._m_get_me,
    "logout": FakeTelegram._m_true,
    "close": FakeTelegram._m_true,
    "sendchataction": FakeTelegram._m_true,
    "deletewebhook": FakeTelegram._m_delete_webhook,
    "setwebhook": FakeTelegram._m_set_webhook,
    "getwebhookinfo": FakeTelegram._m_get_webhook_info,
    "setmycommands": FakeTelegram._m_set_my_commands,
    "getmycommands": FakeTelegram._m_get_my_commands,
    "deletemycommands": FakeTelegram._m_delete_my_commands,
    "getchat": FakeTelegram._m_get_chat,
    "sendmessage": FakeTelegram._m_send_message,
    "editmessagetext": FakeTelegram._m_edit_message_text,
    "editmessagecaption": FakeTelegram._m_edit_message_caption,
    "editmessagereplymarkup": FakeTelegram._m_edit_message_reply_markup,
    "deletemessage": FakeTelegram._m_delete_message,
    "deletemessages": FakeTelegram._m_delete_messages,
    "answercallbackquery": FakeTelegram._m_answer_callback_query,
    "getfile": FakeTelegram._m_get_file,
    "sendaudio": FakeTelegram._m_send_audio,
    "senddocument": FakeTelegram._m_send_document,
    "sendphoto": FakeTelegram._m_send_photo,
    "sendvoice": FakeTelegram._m_send_voice,
    "sendvideo": FakeTelegram._m_send_video,
}

# The smallest valid JPEG (1x1, grey): stands in for photos users send.
_TINY_JPEG = bytes.fromhex(
    "ffd8ffe000104a46494600010100000100010000ffdb004300080606070605080707070909080a0c140d0c0b0b0c1912130f141d1a1f1e1d"
    "1a1c1c20242e2720222c231c1c2837292c30313434341f27393d38323c2e333432ffc0000b080001000101011100ffc4001f000001050101"
    "0101010100000000000000000102030405060708090a0bffc400b5100002010303020403050504040000017d010203000411051221314106"
    "13516107227114328191a1082342b1c11552d1f02433627282090a161718191a25262728292a3435363738393a434445464748494a535455"
    "565758595a636465666768696a737475767778797a838485868788898a92939495969798999aa2a3a4a5a6a7a8a9aab2b3b4b5b6b7b8b9ba"
    "c2c3c4c5c6c7c8c9cad2d3d4d5d6d7d8d9dae1e2e3e4e5e6e7e8e9eaf1f2f3f4f5f6f7f8f9faffda0008010100003f00fbd3ffd9"
)
