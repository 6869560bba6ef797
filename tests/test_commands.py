"""The commands the bot registers with Telegram are the ones /help explains and the handlers answer."""

from __future__ import annotations

from bot import texts
from bot.app import COMMANDS
from bot.handlers import OWN_COMMANDS


def test_every_registered_command_is_explained_and_answered() -> None:
    names = [command.command for command in COMMANDS]
    assert "search" in names
    for name in names:
        assert f"/{name}" in texts.HELP
        assert f"/{name}" in OWN_COMMANDS
