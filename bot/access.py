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


class RefusalLimiter:
    """A stranger gets the refusal (with their id) once per `per_user` seconds in each chat, and all strangers
    together at most `burst` refusals per `window` seconds: nobody can make the bot send messages without
    limit."""

    def __init__(self, per_user: float = 600.0, burst: int = 20, window: float = 60.0) -> None:
        self.per_user = per_user
        self.burst = burst
        self.window = window
        self._last: dict[tuple[int, int], float] = {}
        self._recent: list[float] = []

    def allow(self, chat_id: int, user_id: int | None, now: float) -> bool:
        self._recent = [at for at in self._recent if now - at < self.window]
        self._last = {who: at for who, at in self._last.items() if now - at < self.per_user}
        if user_id is None or (chat_id, user_id) in self._last or len(self._recent) >= self.burst:
            return False
        self._last[chat_id, user_id] = now
        self._recent.append(now)
        return True
