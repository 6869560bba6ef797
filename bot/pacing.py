"""Per-chat pacing of Telegram calls: about one message per second per chat, and honouring RetryAfter.

One instance lives in the bot process, which owns every send and edit; overall (30/s) and group
(20/min) limits are left to python-telegram-bot's AIORateLimiter.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class ChatPacer:
    def __init__(
        self, interval: float = 1.0, *, max_backoff: float = 60.0, clock: Callable[[], float] = time.monotonic
    ):
        self.interval = interval
        self.max_backoff = max_backoff
        self.clock = clock
        self._next: dict[int, float] = {}
        self._failures: dict[int, int] = {}

    def ready(self, chat_id: int) -> bool:
        return self.clock() >= self._next.get(chat_id, 0.0)

    def wait_time(self, chat_id: int) -> float:
        return max(0.0, self._next.get(chat_id, 0.0) - self.clock())

    def sent(self, chat_id: int) -> None:
        """A call to this chat went through: the next one waits `interval`."""
        self._failures.pop(chat_id, None)
        self._next[chat_id] = self.clock() + self.interval

    def retry_after(self, chat_id: int, seconds: float) -> None:
        """Telegram said 429: nothing goes to this chat before it allows."""
        self._next[chat_id] = self.clock() + max(seconds, self.interval)

    def failed(self, chat_id: int) -> float:
        """A network failure: back off exponentially (1, 2, 4 … max_backoff s). Returns the wait."""
        count = self._failures.get(chat_id, 0) + 1
        self._failures[chat_id] = count
        wait = min(self.max_backoff, max(self.interval, 1.0) * 2 ** (count - 1))
        self._next[chat_id] = self.clock() + wait
        return wait
