"""Per-chat pacing of Telegram calls: about one message per second per chat, and honouring RetryAfter.

A token bucket per chat: up to `burst` calls go at once (Telegram tolerates short bursts: a cached song's
reply, audio and summary arrive together), then one per `interval`. One instance lives in the bot
process, which owns every send and edit; overall (30/s) and group (20/min) limits are left to
python-telegram-bot's AIORateLimiter.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

MAX_IDLE_CHATS = 1000  # forget chats whose bucket is full beyond this many, so memory stays bounded


@dataclass
class _Bucket:
    tokens: float
    at: float  # when `tokens` was last computed
    blocked_until: float = 0.0
    failures: int = 0


class ChatPacer:
    def __init__(
        self,
        interval: float = 1.0,
        *,
        burst: int = 1,
        max_backoff: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.interval = interval
        self.burst = burst
        self.max_backoff = max_backoff
        self.clock = clock
        self._buckets: dict[int, _Bucket] = {}

    def _bucket(self, chat_id: int) -> _Bucket:
        now = self.clock()
        bucket = self._buckets.get(chat_id)
        if bucket is None:
            bucket = self._buckets[chat_id] = _Bucket(tokens=float(self.burst), at=now)
        elif self.interval > 0:
            since = max(bucket.at, min(bucket.blocked_until, now))  # no refill while Telegram makes us wait
            bucket.tokens = min(float(self.burst), bucket.tokens + (now - since) / self.interval)
        else:
            bucket.tokens = float(self.burst)
        bucket.at = now
        return bucket

    def ready(self, chat_id: int) -> bool:
        return self.wait_time(chat_id) == 0.0

    def wait_time(self, chat_id: int) -> float:
        bucket = self._bucket(chat_id)
        refill = max(0.0, 1.0 - bucket.tokens) * self.interval
        return max(0.0, bucket.blocked_until - bucket.at, refill)

    def sent(self, chat_id: int) -> None:
        """A call to this chat went through: it used one token."""
        bucket = self._bucket(chat_id)
        bucket.failures = 0
        bucket.tokens = max(0.0, bucket.tokens - 1.0)
        if len(self._buckets) > MAX_IDLE_CHATS:
            self._forget_idle()

    def retry_after(self, chat_id: int, seconds: float) -> None:
        """Telegram said 429: nothing goes to this chat before it allows, and no burst right after."""
        bucket = self._bucket(chat_id)
        bucket.tokens = min(1.0, float(self.burst))  # one call when the wait is over, then the plain pace
        bucket.blocked_until = bucket.at + max(seconds, self.interval)

    def failed(self, chat_id: int) -> float:
        """A network failure: back off exponentially (1, 2, 4 … max_backoff s). Returns the wait."""
        bucket = self._bucket(chat_id)
        bucket.failures += 1
        wait = min(self.max_backoff, max(self.interval, 1.0) * 2 ** (bucket.failures - 1))
        bucket.tokens = min(bucket.tokens, 1.0)
        bucket.blocked_until = bucket.at + wait
        return wait

    def _forget_idle(self) -> None:
        for chat_id in [c for c in self._buckets if self.wait_time(c) == 0.0 and self._buckets[c].tokens >= self.burst]:
            del self._buckets[chat_id]
