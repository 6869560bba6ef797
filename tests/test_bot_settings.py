"""BotSettings / ServiceSettings from overrides, the environment and `.env`, with one-line errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bot.access import AllowedUsers
from bot.logs import secrets_of
from bot.settings import CLOUD_UPLOAD_LIMIT, LOCAL_UPLOAD_LIMIT, BotSettings, ServiceSettings
from pipeline.errors import ConfigurationError
from pipeline.settings import load_settings

TOKEN = "123456:ABC-DEF1234ghIkl-zyx57W2v1u123ew11"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No setting may come from the developer's shell or a `.env` in the repository."""
    names = set(BotSettings.model_fields)
    for key in list(os.environ):
        if key.lower() in names:
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def configuration_error(cls: type[ServiceSettings] = BotSettings, **overrides: object) -> str:
    with pytest.raises(ConfigurationError) as caught:
        load_settings(cls, **overrides)
    message = caught.value.reason
    assert "\n" not in message
    assert message.startswith("Bad setting: ")
    return message


# --- the token -------------------------------------------------------------------------------------


def test_missing_token_names_the_variable() -> None:
    message = configuration_error()
    assert "TELEGRAM_BOT_TOKEN" in message


def test_token_from_override() -> None:
    settings = load_settings(BotSettings, telegram_bot_token=TOKEN)
    assert settings.telegram_bot_token.get_secret_value() == TOKEN


def test_token_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
    settings = load_settings(BotSettings)
    assert settings.telegram_bot_token.get_secret_value() == TOKEN


@pytest.mark.parametrize("token", ["not-a-token", "123456ABC", ""])
def test_bad_token_shape(token: str) -> None:
    message = configuration_error(telegram_bot_token=token)
    assert "TELEGRAM_BOT_TOKEN" in message
    if token:
        assert "looks wrong" in message
        assert token not in message.removeprefix("Bad setting: TELEGRAM_BOT_TOKEN")


def test_token_is_not_shown_in_repr_or_str() -> None:
    settings = load_settings(BotSettings, telegram_bot_token=TOKEN, spotify_client_secret="spotify-secret-value")
    for text in (repr(settings), str(settings)):
        assert TOKEN not in text
        assert "spotify-secret-value" not in text


def test_secrets_of_lists_the_token_and_spotify_secret() -> None:
    settings = load_settings(BotSettings, telegram_bot_token=TOKEN, spotify_client_secret="spotify-secret-value")
    assert sorted(secrets_of(settings)) == sorted([TOKEN, "spotify-secret-value"])
    assert secrets_of(load_settings(BotSettings, telegram_bot_token=TOKEN)) == [TOKEN]
    assert secrets_of(load_settings(ServiceSettings)) == []


# --- ALLOWED_USERS ---------------------------------------------------------------------------------


def test_allowed_users_default_is_nobody() -> None:
    settings = load_settings(BotSettings, telegram_bot_token=TOKEN)
    assert settings.allowed_users == AllowedUsers.nobody()
    assert not settings.allowed_users.allows(1)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1,2", AllowedUsers(ids=frozenset({1, 2}))),
        (" 1 ; 2 ", AllowedUsers(ids=frozenset({1, 2}))),
        ("-100500", AllowedUsers(ids=frozenset({-100500}))),
        ("*", AllowedUsers(everyone=True)),
        ("", AllowedUsers.nobody()),
    ],
)
def test_allowed_users_from_environment(monkeypatch: pytest.MonkeyPatch, value: str, expected: AllowedUsers) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
    monkeypatch.setenv("ALLOWED_USERS", value)
    assert load_settings(BotSettings).allowed_users == expected


@pytest.mark.parametrize(("value", "hint"), [("abc", "numeric"), ("*,1", "either"), ("1,@bob", "numeric")])
def test_bad_allowed_users_from_environment(monkeypatch: pytest.MonkeyPatch, value: str, hint: str) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
    monkeypatch.setenv("ALLOWED_USERS", value)
    message = configuration_error()
    assert "ALLOWED_USERS" in message
    assert hint in message


def test_admin_users_are_parsed_like_allowed_users_and_default_to_nobody(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
    assert load_settings(BotSettings).admin_users == AllowedUsers.nobody()
    monkeypatch.setenv("ADMIN_USERS", " 7 ; 8 ")
    assert load_settings(BotSettings).admin_users == AllowedUsers(ids=frozenset({7, 8}))
    monkeypatch.setenv("ADMIN_USERS", "@boss")
    assert "ADMIN_USERS" in configuration_error()


def test_allowed_users_override_accepts_a_parsed_value_or_text() -> None:
    parsed = AllowedUsers(ids=frozenset({5}))
    assert load_settings(BotSettings, telegram_bot_token=TOKEN, allowed_users=parsed).allowed_users == parsed
    assert load_settings(BotSettings, telegram_bot_token=TOKEN, allowed_users="5").allowed_users == parsed
    assert load_settings(BotSettings, telegram_bot_token=TOKEN, allowed_users=None).allowed_users == (
        AllowedUsers.nobody()
    )


def test_every_bad_setting_is_named_on_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALLOWED_USERS", "abc")
    monkeypatch.setenv("MAX_TRACKS_PER_REQUEST", "0")
    message = configuration_error()
    for name in ("TELEGRAM_BOT_TOKEN", "ALLOWED_USERS", "MAX_TRACKS_PER_REQUEST"):
        assert name in message


# --- .env ------------------------------------------------------------------------------------------


def test_dotenv_in_the_working_directory_is_read(clean_environment: Path) -> None:
    (clean_environment / ".env").write_text(f"TELEGRAM_BOT_TOKEN={TOKEN}\nALLOWED_USERS=42\n", encoding="utf-8")
    settings = load_settings(BotSettings)
    assert settings.telegram_bot_token.get_secret_value() == TOKEN
    assert settings.allowed_users.allows(42)


def test_environment_wins_over_dotenv(clean_environment: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (clean_environment / ".env").write_text(f"TELEGRAM_BOT_TOKEN={TOKEN}\nALLOWED_USERS=42\n", encoding="utf-8")
    monkeypatch.setenv("ALLOWED_USERS", "7")
    settings = load_settings(BotSettings)
    assert settings.allowed_users.allows(7)
    assert not settings.allowed_users.allows(42)


def test_no_dotenv_in_a_fresh_directory_means_defaults() -> None:
    settings = load_settings(ServiceSettings)
    assert settings.redis_url is None
    assert settings.max_tracks_per_request == 500
    assert settings.telegram_local_mode is False


def test_unrelated_dotenv_entries_are_ignored(clean_environment: Path) -> None:
    (clean_environment / ".env").write_text(f"TELEGRAM_BOT_TOKEN={TOKEN}\nSOMETHING_ELSE=1\n", encoding="utf-8")
    assert load_settings(BotSettings).telegram_bot_token.get_secret_value() == TOKEN


# --- limits and derived values ---------------------------------------------------------------------


def test_cloud_upload_limit_by_default() -> None:
    settings = load_settings(BotSettings, telegram_bot_token=TOKEN)
    assert settings.upload_limit_bytes == CLOUD_UPLOAD_LIMIT == 50 * 1024 * 1024


@pytest.mark.parametrize("value", ["true", "1", "yes", "True"])
def test_local_bot_api_raises_the_upload_limit(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("TELEGRAM_LOCAL_MODE", value)
    settings = load_settings(ServiceSettings)
    assert settings.telegram_local_mode is True
    assert settings.upload_limit_bytes == LOCAL_UPLOAD_LIMIT == 2000 * 1024 * 1024


@pytest.mark.parametrize("value", ["false", "0", "no"])
def test_local_mode_off(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("TELEGRAM_LOCAL_MODE", value)
    assert load_settings(ServiceSettings).upload_limit_bytes == CLOUD_UPLOAD_LIMIT


def test_audio_settings_key_follows_mp3_quality(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings(ServiceSettings).audio_settings_key == "mp3-V2"
    monkeypatch.setenv("MP3_QUALITY", "192k")
    assert load_settings(ServiceSettings).audio_settings_key == "mp3-192k"
    assert load_settings(ServiceSettings, mp3_quality="V0").audio_settings_key == "mp3-V0"
    assert load_settings(ServiceSettings, mp3_quality="V0").audio_settings_key != (
        load_settings(ServiceSettings).audio_settings_key
    )


def test_bad_mp3_quality_is_named() -> None:
    assert "MP3_QUALITY" in configuration_error(ServiceSettings, mp3_quality="best")


def test_service_settings_need_no_token() -> None:
    settings = load_settings(ServiceSettings)
    assert not hasattr(settings, "telegram_bot_token")


def test_service_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6390/2")
    monkeypatch.setenv("MAX_TRACKS_PER_REQUEST", "50")
    monkeypatch.setenv("MAX_REQUESTS_PER_USER", "1")
    monkeypatch.setenv("TRACK_WINDOW", "4")
    monkeypatch.setenv("TRACK_MAX_RETRIES", "0")
    monkeypatch.setenv("REQUEST_TTL_HOURS", "0.5")
    settings = load_settings(ServiceSettings)
    assert settings.redis_url == "redis://127.0.0.1:6390/2"
    assert (settings.max_tracks_per_request, settings.max_requests_per_user) == (50, 1)
    assert (settings.track_window, settings.track_max_retries) == (4, 0)
    assert settings.request_ttl_hours == 0.5


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MAX_TRACKS_PER_REQUEST", "0"),
        ("MAX_REQUESTS_PER_USER", "0"),
        ("TRACK_WINDOW", "0"),
        ("TRACK_MAX_RETRIES", "-1"),
        ("REQUEST_TTL_HOURS", "0"),
        ("ORPHAN_MINUTES", "0"),
        ("MAX_TRACKS_PER_REQUEST", "many"),
        ("TELEGRAM_LOCAL_MODE", "maybe"),
    ],
)
def test_bad_service_values_are_named(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    assert name in configuration_error(ServiceSettings)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MAX_LINKS_PER_MESSAGE", "0"),
        ("PROGRESS_INTERVAL", "0.1"),
        ("CHAT_SEND_INTERVAL", "-1"),
        ("INPROCESS_WORKERS", "0"),
    ],
)
def test_bad_bot_values_are_named(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
    monkeypatch.setenv(name, value)
    assert name in configuration_error()


def test_bot_defaults() -> None:
    settings = load_settings(BotSettings, telegram_bot_token=TOKEN)
    assert settings.telegram_api_url == "https://api.telegram.org/bot"
    assert settings.telegram_file_url is None
    assert settings.max_links_per_message == 10
    assert settings.progress_interval == 3.0
    assert settings.chat_send_interval == 1.0
    assert settings.inprocess_workers == 2
    # Inherited pipeline settings are there too.
    assert settings.audio_sources == ["youtube-music", "youtube"]


# --- operating it: health, metrics, admins, webhook ------------------------------------------------------------


def test_operations_defaults() -> None:
    settings = load_settings(BotSettings, telegram_bot_token=TOKEN)
    assert settings.health_max_age == 30.0
    assert settings.metrics_port is None and settings.metrics_listen == "0.0.0.0"
    assert settings.admin_users == AllowedUsers.nobody()
    assert settings.webhook_url is None and settings.webhook_secret is None
    assert (settings.webhook_listen, settings.webhook_port) == ("0.0.0.0", 8443)


def test_admin_users_are_parsed_like_allowed_users(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
    monkeypatch.setenv("ADMIN_USERS", " 7 ; 8 ")
    assert load_settings(BotSettings).admin_users == AllowedUsers(ids=frozenset({7, 8}))
    monkeypatch.setenv("ADMIN_USERS", "@boss")
    message = configuration_error()
    assert "ADMIN_USERS" in message and "numeric" in message


def test_webhook_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
    monkeypatch.setenv("WEBHOOK_URL", "https://bot.example.com/telegram")
    monkeypatch.setenv("WEBHOOK_SECRET", "Secret_token-123")
    monkeypatch.setenv("WEBHOOK_PORT", "8080")
    settings = load_settings(BotSettings)
    assert settings.webhook_url == "https://bot.example.com/telegram" and settings.webhook_port == 8080
    assert "Secret_token-123" in secrets_of(settings)
    assert "Secret_token-123" not in repr(settings)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("WEBHOOK_URL", "bot.example.com/telegram"),
        ("WEBHOOK_URL", "ftp://bot.example.com/"),
        ("WEBHOOK_SECRET", "has spaces"),
        ("WEBHOOK_SECRET", "x" * 257),
        ("WEBHOOK_PORT", "0"),
        ("METRICS_PORT", "70000"),
        ("HEALTH_MAX_AGE", "1"),
    ],
)
def test_bad_operations_values_are_named(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
    monkeypatch.setenv(name, value)
    assert name in configuration_error()
