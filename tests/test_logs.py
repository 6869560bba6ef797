"""Secrets never reach a log line: messages, arguments and tracebacks are scrubbed."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from bot.logs import REDACTED, RedactSecrets, secrets_of, setup_logging, url_credentials
from bot.settings import BotSettings

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
SPOTIFY_SECRET = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
NOISY = ("httpx", "httpcore", "urllib3", "spotipy")


class Captured:
    """A real handler writing formatted lines (with tracebacks) to a string."""

    def __init__(self, logger: logging.Logger, *filters: logging.Filter) -> None:
        self.stream = io.StringIO()
        self.handler = logging.StreamHandler(self.stream)
        self.handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        for item in filters:
            self.handler.addFilter(item)
        logger.addHandler(self.handler)

    @property
    def text(self) -> str:
        return self.stream.getvalue()


@pytest.fixture
def logger() -> Iterator[logging.Logger]:
    """A private logger that does not propagate, so nothing else sees the test's records."""
    log = logging.getLogger("tests.logs.private")
    log.setLevel(logging.DEBUG)
    log.propagate = False
    yield log
    for handler in list(log.handlers):
        log.removeHandler(handler)
    log.propagate = True
    log.setLevel(logging.NOTSET)


@pytest.fixture
def redacted(logger: logging.Logger) -> Captured:
    return Captured(logger, RedactSecrets([TOKEN, SPOTIFY_SECRET]))


def test_secret_in_the_message_is_removed(logger: logging.Logger, redacted: Captured) -> None:
    logger.info(f"calling https://api.telegram.org/bot{TOKEN}/getMe")
    assert TOKEN not in redacted.text
    assert f"https://api.telegram.org/bot{REDACTED}/getMe" in redacted.text


def test_secret_in_the_arguments_is_removed(logger: logging.Logger, redacted: Captured) -> None:
    logger.info('HTTP Request: %s %s "%s"', "POST", f"https://api.telegram.org/bot{TOKEN}/sendAudio", "200 OK")
    logger.warning("spotify secret=%(secret)s", {"secret": SPOTIFY_SECRET})
    assert TOKEN not in redacted.text
    assert SPOTIFY_SECRET not in redacted.text
    assert f'HTTP Request: POST https://api.telegram.org/bot{REDACTED}/sendAudio "200 OK"' in redacted.text
    assert f"spotify secret={REDACTED}" in redacted.text


def test_every_occurrence_is_removed(logger: logging.Logger, redacted: Captured) -> None:
    logger.info("%s and %s and %s", TOKEN, SPOTIFY_SECRET, TOKEN)
    assert redacted.text.count(REDACTED) == 3


def test_secret_in_an_exception_traceback_is_removed(logger: logging.Logger, redacted: Captured) -> None:
    try:
        try:
            raise ConnectionError(f"cannot reach https://api.telegram.org/bot{TOKEN}/getUpdates")
        except ConnectionError as cause:
            raise RuntimeError(f"spotify login failed with {SPOTIFY_SECRET}") from cause
    except RuntimeError:
        logger.exception("delivery step failed")
    assert "Traceback" in redacted.text
    assert "ConnectionError" in redacted.text
    assert "RuntimeError: spotify login failed with " + REDACTED in redacted.text
    assert TOKEN not in redacted.text
    assert SPOTIFY_SECRET not in redacted.text


def test_exc_info_tuple_is_scrubbed_too(logger: logging.Logger, redacted: Captured) -> None:
    try:
        raise ValueError(TOKEN)
    except ValueError as error:
        logger.error("boom", exc_info=(type(error), error, error.__traceback__))
    assert f"ValueError: {REDACTED}" in redacted.text
    assert TOKEN not in redacted.text


def test_a_secret_in_an_already_formatted_traceback_is_scrubbed() -> None:
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", None, None)
    record.exc_text = f"Traceback ...\nOSError: {TOKEN}"
    RedactSecrets([TOKEN]).filter(record)
    assert record.exc_text == f"Traceback ...\nOSError: {REDACTED}"


def test_clean_records_keep_their_arguments() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "track %d of %d", (3, 10), None)
    assert RedactSecrets([TOKEN]).filter(record) is True
    assert record.msg == "track %d of %d"
    assert record.args == (3, 10)
    assert record.getMessage() == "track 3 of 10"


def test_filter_never_drops_a_record() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "token %s", (TOKEN,), None)
    assert RedactSecrets([TOKEN]).filter(record) is True
    assert record.getMessage() == f"token {REDACTED}"


def test_longer_secret_wins_over_a_secret_it_contains() -> None:
    short, long = "abcdefgh", "abcdefgh-and-more"
    record = logging.LogRecord("x", logging.INFO, __file__, 1, f"{long} / {short}", None, None)
    RedactSecrets([short, long]).filter(record)
    assert record.getMessage() == f"{REDACTED} / {REDACTED}"


def test_empty_and_very_short_values_are_not_treated_as_secrets() -> None:
    # Redacting "" or "1" would mangle every line; such values are no real secrets anyway.
    redact = RedactSecrets(["", "1", "abc", "12345"])
    assert redact.secrets == []
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "track 1 of 12345 abc", None, None)
    redact.filter(record)
    assert record.getMessage() == "track 1 of 12345 abc"


def test_no_secrets_configured_changes_nothing(logger: logging.Logger) -> None:
    captured = Captured(logger, RedactSecrets([]))
    logger.info("hello %s", "world")
    assert captured.text == "INFO tests.logs.private: hello world\n"


def test_non_string_messages_are_scrubbed(logger: logging.Logger, redacted: Captured) -> None:
    logger.error(ValueError(f"bad token {TOKEN}"))
    assert f"bad token {REDACTED}" in redacted.text
    assert TOKEN not in redacted.text


def test_a_badly_formatted_log_call_does_not_crash_the_caller(logger: logging.Logger, redacted: Captured) -> None:
    previous = logging.raiseExceptions
    logging.raiseExceptions = False  # logging's own policy: report (here: silence) formatting errors, never raise
    try:
        logger.info("%s and %s", "only one argument")
    finally:
        logging.raiseExceptions = previous


# --- setup_logging ---------------------------------------------------------------------------------


@contextmanager
def isolated_root() -> Iterator[logging.Logger]:
    """The root logger without any handler (pytest adds its own for each test phase), restored afterwards."""
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    saved_noisy = {name: logging.getLogger(name).level for name in NOISY}
    root.handlers = []
    try:
        yield root
    finally:
        for handler in root.handlers:
            if handler not in saved_handlers:
                handler.close()
        root.handlers = saved_handlers
        root.setLevel(saved_level)
        for name, level in saved_noisy.items():
            logging.getLogger(name).setLevel(level)


def redactors(handler: logging.Handler) -> list[RedactSecrets]:
    return [item for item in handler.filters if isinstance(item, RedactSecrets)]


def test_setup_logging_scrubs_every_existing_root_handler() -> None:
    first, second = io.StringIO(), io.StringIO()
    with isolated_root() as root:
        for stream in (first, second):
            root.addHandler(logging.StreamHandler(stream))
        root.setLevel(logging.INFO)
        setup_logging([TOKEN, SPOTIFY_SECRET])
        assert len(root.handlers) == 2  # nobody's handlers were replaced
        for handler in root.handlers:
            assert len(redactors(handler)) == 1
        logging.getLogger("bot.some.module").warning("sending to https://api.telegram.org/bot%s/x", TOKEN)
    for stream in (first, second):
        assert TOKEN not in stream.getvalue()
        assert REDACTED in stream.getvalue()


def test_setup_logging_configures_root_when_nobody_did() -> None:
    with isolated_root() as root:
        setup_logging([TOKEN], level=logging.DEBUG)
        handlers, level = list(root.handlers), root.level
    assert len(handlers) == 1
    assert level == logging.DEBUG
    assert redactors(handlers[0])[0].secrets == [TOKEN]


def test_setup_logging_silences_chatty_http_libraries() -> None:
    stream = io.StringIO()
    with isolated_root() as root:
        root.addHandler(logging.StreamHandler(stream))
        root.setLevel(logging.DEBUG)
        setup_logging([TOKEN])
        for name in NOISY:
            assert logging.getLogger(name).level == logging.WARNING
        logging.getLogger("httpx").info("HTTP Request: GET https://api.telegram.org/bot%s/getUpdates", TOKEN)
        assert stream.getvalue() == ""
        logging.getLogger("httpx").warning("retrying https://api.telegram.org/bot%s/getUpdates", TOKEN)
    assert f"bot{REDACTED}/getUpdates" in stream.getvalue()
    assert TOKEN not in stream.getvalue()


# --- which secrets: every one the settings and the environment hold ------------------------------

REDIS_PASSWORD = "s3cr3t-redis-pw"
PROXY_PASSWORD = "pr0xy-pass-word"
API_HASH = "0123456789abcdef0123456789abcdef"


def all_secret_settings() -> BotSettings:
    return BotSettings(  # type: ignore[call-arg]
        _env_file=None,
        telegram_bot_token=TOKEN,
        spotify_client_id="spotify-client-id-1234",
        spotify_client_secret=SPOTIFY_SECRET,
        redis_url=f"redis://default:{REDIS_PASSWORD}@redis:6379/0",
        ytdlp_proxy=f"socks5://proxyuser:{PROXY_PASSWORD}@10.0.0.1:1080",
        ytdlp_pot_provider_url="http://pot:p%40ss-word@pot-provider:4416",
    )


def test_secrets_of_finds_every_secret() -> None:
    found = secrets_of(all_secret_settings(), {"TELEGRAM_API_HASH": API_HASH, "HOME": "/root"})
    for secret in (TOKEN, SPOTIFY_SECRET, "spotify-client-id-1234", REDIS_PASSWORD, PROXY_PASSWORD, API_HASH):
        assert secret in found, secret
    assert "p@ss-word" in found and "p%40ss-word" in found  # as written in the URL, and decoded
    assert "/root" not in found


def test_nothing_secret_is_found_in_plain_settings() -> None:
    plain = BotSettings(_env_file=None, telegram_bot_token=TOKEN, redis_url="redis://redis:6379/0")  # type: ignore[call-arg]
    assert secrets_of(plain, {}) == [TOKEN]


@pytest.mark.parametrize(
    ("url", "secrets"),
    [
        ("redis://:pw@host:6379/0", [":pw", "pw"]),
        ("redis://user:pass%2Fword@host/0", ["user:pass%2Fword", "pass%2Fword", "user:pass/word", "pass/word"]),
        ("rediss://host:6380/0?password=qs-secret", ["qs-secret"]),
        ("http://host:4416", []),
        ("not a url", []),
    ],
)
def test_url_credentials(url: str, secrets: list[str]) -> None:
    assert set(url_credentials(url)) == set(secrets)


def test_every_configured_secret_is_scrubbed_end_to_end() -> None:
    settings = all_secret_settings()
    stream = io.StringIO()
    with isolated_root() as root:
        root.addHandler(logging.StreamHandler(stream))
        root.setLevel(logging.INFO)
        setup_logging(secrets_of(settings, {"TELEGRAM_API_HASH": API_HASH}))
        log = logging.getLogger("bot.some.module")
        log.warning("redis down: %s", settings.redis_url)
        log.warning("yt-dlp: Unable to connect to proxy %s", settings.ytdlp_proxy)
        log.warning("settings: %r", settings)
        log.error("api hash %s, token %s, spotify %s", API_HASH, TOKEN, SPOTIFY_SECRET)
    text = stream.getvalue()
    for secret in (TOKEN, SPOTIFY_SECRET, REDIS_PASSWORD, PROXY_PASSWORD, API_HASH, "p%40ss-word"):
        assert secret not in text, secret
    assert "socks5://proxyuser:[REDACTED]@10.0.0.1:1080" in text or "socks5://[REDACTED]@10.0.0.1:1080" in text


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("connecting to redis://:pw@10.0.0.5:6379/0", f"connecting to redis://:{REDACTED}@10.0.0.5:6379/0"),
        ("proxy socks5h://bob:x@p:1080 failed", f"proxy socks5h://bob:{REDACTED}@p:1080 failed"),
        (
            "GET https://a:b@example.com/x and http://c:d@e/f",
            f"GET https://a:{REDACTED}@example.com/x and http://c:{REDACTED}@e/f",
        ),
        ("redis://redis:6379/0 is fine", "redis://redis:6379/0 is fine"),
        ("http://host:8080/path?q=1", "http://host:8080/path?q=1"),
        ("mail me: bob@example.com at 12:30", "mail me: bob@example.com at 12:30"),
    ],
)
def test_passwords_in_any_url_are_scrubbed_whatever_their_length(line: str, expected: str) -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, line, None, None)
    RedactSecrets([]).filter(record)
    assert record.getMessage() == expected
