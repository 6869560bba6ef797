"""HTTP facts shared by the adapters (Spotify's API and embed page, spotify.link, YouTube Music).

One reading of Retry-After and one rule for which answers are worth retrying, so that a 429 or a 503 means
the same thing whichever service sent it.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Final

import requests
from urllib3.exceptions import InvalidHeader
from urllib3.util.retry import Retry

from pipeline.errors import RateLimited, TransientError

__all__ = ["request_error", "retry_after", "retry_after_seconds", "status_error"]

# urllib3 caps what it parses at retry_after_max (6 h by default). The cap is the caller's policy
# (SPOTIFY_MAX_RETRY_AFTER), not a fact about the answer: a day-long wait read as 6 h would be retried
# into another 429 and reported as "about 360 min". sys.maxsize only keeps absurd values a finite float.
_PARSER: Final = Retry(total=0, retry_after_max=sys.maxsize)


def retry_after_seconds(value: str | None) -> float | None:
    """How long a Retry-After value asks us to wait: delay-seconds ("120") or an HTTP date, 0 for a date
    in the past. None when there is none or it is malformed ("-5", "1.5", "abc", a year out of range):
    the caller then uses its own backoff rather than a guess."""
    if value is None:
        return None
    try:
        return float(_PARSER.parse_retry_after(value))
    # InvalidHeader: not a number or date; ValueError: a year past 9999, more than 4300 digits;
    # OverflowError: a year the C library cannot convert.
    except (InvalidHeader, ValueError, OverflowError):
        return None


def retry_after(headers: Mapping[str, str] | None) -> float | None:
    """The Retry-After header of a response (see `retry_after_seconds`); headers may be missing altogether
    (spotipy's errors carry None when it had no response)."""
    return retry_after_seconds(headers.get("Retry-After")) if headers is not None else None


def status_error(status: int, headers: Mapping[str, str] | None, *, service: str, detail: str) -> TransientError | None:
    """The passing failure an HTTP status means, or None when it means none (the adapter decides what
    2xx-4xx mean for its service): 429 is `RateLimited` with the server's Retry-After, 408 (the server
    gave up waiting for us) and 5xx are worth retrying too."""
    if status == 429:
        return RateLimited(f"rate-limited by {service}", retry_after=retry_after(headers), detail=detail)
    if status == 408 or 500 <= status <= 599:
        return TransientError(f"{service} is having trouble; will retry", detail=detail)
    return None


def request_error(error: requests.RequestException, *, service: str, detail: str) -> TransientError:
    """A request that got no answer (refused, reset, timed out, exhausted retries): always worth retrying.

    Callers that can be handed an unusable URL (requests' InvalidURL, InvalidSchema, MissingSchema) must
    sort those out first: retrying cannot fix them.
    """
    if isinstance(error, requests.Timeout):
        return TransientError(f"{service} did not answer in time; will retry", detail=detail)
    return TransientError(f"couldn't reach {service}; will retry", detail=detail)
