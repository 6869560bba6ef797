"""Who may use the bot. A personal tool: nobody unless listed."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AllowedUsers:
    """Parsed ALLOWED_USERS: comma-separated numeric user ids, or `*` for everyone; empty = nobody."""

    everyone: bool = False
    ids: frozenset[int] = frozenset()

    @classmethod
    def nobody(cls) -> AllowedUsers:
        return cls()

    @classmethod
    def parse(cls, text: str) -> AllowedUsers:
        parts = [part.strip() for part in text.replace(";", ",").split(",") if part.strip()]
        if "*" in parts:
            if len(parts) > 1:
                raise ValueError("use either * or a list of user ids, not both")
            return cls(everyone=True)
        ids = set()
        for part in parts:
            if not part.lstrip("-").isdigit():
                raise ValueError(f"{part!r} is not a numeric Telegram user id")
            ids.add(int(part))
        return cls(ids=frozenset(ids))

    def allows(self, user_id: int | None) -> bool:
        return user_id is not None and (self.everyone or user_id in self.ids)

    def __bool__(self) -> bool:
        return self.everyone or bool(self.ids)
