"""Retry policy for transient pipeline errors outside Dramatiq (the CLI), built on tenacity.

Waits the server's Retry-After when it gave one (up to a limit), else exponential backoff; permanent
errors and cancellation are never retried.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from pipeline.errors import TransientError

T = TypeVar("T")


def call_with_retries(
    func: Callable[[], T], *, attempts: int = 4, max_retry_after: float = 600.0, base_wait: float = 2.0
) -> T:
    backoff = wait_exponential(multiplier=base_wait, max=60)

    def wait(state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, TransientError) and error.retry_after is not None:
            return min(error.retry_after, max_retry_after)
        return backoff(state)

    def give_up_early(state: RetryCallState) -> bool:
        error = state.outcome.exception() if state.outcome else None
        too_long = isinstance(error, TransientError) and (error.retry_after or 0) > max_retry_after
        return too_long or stop_after_attempt(attempts)(state)

    retrying = Retrying(retry=retry_if_exception_type(TransientError), wait=wait, stop=give_up_early, reraise=True)
    return retrying(func)
