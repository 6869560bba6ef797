"""The pure retry rules of bot/jobs.py: how long a passing failure waits before Dramatiq retries it."""

from __future__ import annotations

import pytest

from bot.jobs import rate_limit_delay, retry_later, too_long_reason
from pipeline.errors import RateLimited, TransientError


@pytest.mark.parametrize(
    ("retry_after", "delay_ms"),
    [(None, None), (0.0, None), (2.5, 2500), (600.0, 600_000), (7200.0, 600_000)],
)
def test_a_passing_failure_waits_the_servers_retry_after_up_to_the_limit(
    retry_after: float | None, delay_ms: int | None
) -> None:
    retry = retry_later(TransientError("503 from the search", retry_after=retry_after), limit=600)
    assert retry.delay == delay_ms  # None: the actor's exponential backoff


@pytest.mark.parametrize(("retry_after", "delay_ms"), [(None, 30_000), (5.0, 5000), (600.0, 600_000), (601.0, None)])
def test_a_rate_limit_beyond_the_limit_is_not_waited_for(retry_after: float | None, delay_ms: int | None) -> None:
    assert rate_limit_delay(RateLimited(retry_after=retry_after), limit=600) == delay_ms


def test_a_refused_wait_is_explained_in_minutes() -> None:
    assert "about 60 min" in too_long_reason(RateLimited(retry_after=3600))
    assert "about 1 min" in too_long_reason(RateLimited(retry_after=5))
