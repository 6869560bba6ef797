"""pipeline.http: the one reading of Retry-After and of passing HTTP failures, for every adapter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
import requests

from pipeline.errors import RateLimited, TransientError
from pipeline.http import request_error, retry_after, retry_after_seconds, status_error


def http_date(offset: timedelta) -> str:
    return format_datetime(datetime.now(UTC) + offset, usegmt=True)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        (" 120 ", 120.0),  # optional white space around a header value
        ("0", 0.0),
        ("3600", 3600.0),
        ("86400", 86400.0),  # a day: never cut to urllib3's 6-hour default cap
        (None, None),
        ("", None),
        ("-5", None),  # delay-seconds has no sign
        ("1.5", None),  # ... nor a fraction
        ("abc", None),
        ("soon", None),
        ("1e3", None),
        ("\u0663", None),  # ARABIC-INDIC DIGIT THREE is no ASCII digit
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),  # in the past: go now
        ("Mon, 32 Foo 2020 99:99:99 GMT", None),
        ("Wed, 21 Oct 99999 07:28:00 GMT", None),  # a year datetime cannot hold
        ("Wed, 21 Oct 10000000000000 07:28:00 GMT", None),  # one the C library overflows on
        ("9" * 5000, None),  # past Python's limit on digits converted to int
    ],
)
def test_retry_after_seconds(value: str | None, expected: float | None) -> None:
    assert retry_after_seconds(value) == expected


def test_a_huge_number_stays_a_finite_float() -> None:
    seconds = retry_after_seconds("9" * 40)
    assert seconds is not None and seconds > 10**18 and seconds != float("inf")


def test_an_http_date_in_the_future_counts_from_now() -> None:
    assert retry_after_seconds(http_date(timedelta(hours=1))) == pytest.approx(3600, abs=5)


def test_an_http_date_in_the_past_means_now() -> None:
    assert retry_after_seconds(http_date(-timedelta(minutes=5))) == 0.0


def test_retry_after_reads_the_header_whatever_its_case() -> None:
    headers = requests.structures.CaseInsensitiveDict({"retry-after": "30"})
    assert retry_after(headers) == 30.0
    assert retry_after({}) is None
    assert retry_after(None) is None  # spotipy's errors may carry no headers


def test_429_is_rate_limited_with_the_servers_wait() -> None:
    error = status_error(429, {"Retry-After": "30"}, service="Spotify", detail="HTTP 429 for track x")
    assert isinstance(error, RateLimited)
    assert (error.retry_after, error.reason, error.detail) == (30.0, "rate-limited by Spotify", "HTTP 429 for track x")


def test_429_without_a_usable_retry_after_leaves_the_wait_to_the_caller() -> None:
    error = status_error(429, {"Retry-After": "-5"}, service="Spotify", detail="d")
    assert isinstance(error, RateLimited) and error.retry_after is None


@pytest.mark.parametrize("status", [408, 500, 502, 503, 504, 599])
def test_server_trouble_is_transient_but_no_rate_limit(status: int) -> None:
    error = status_error(status, {"Retry-After": "120"}, service="YouTube Music", detail="d")
    assert type(error) is TransientError
    assert error.reason == "YouTube Music is having trouble; will retry"


@pytest.mark.parametrize("status", [200, 301, 400, 401, 403, 404, 410, 451])
def test_other_statuses_are_left_to_the_adapter(status: int) -> None:
    assert status_error(status, None, service="Spotify", detail="d") is None


def test_request_errors_are_transient_and_say_which() -> None:
    timeout = request_error(requests.ReadTimeout("slow"), service="Spotify", detail="track x: ReadTimeout")
    refused = request_error(requests.ConnectionError("refused"), service="Spotify", detail="d")
    assert type(timeout) is TransientError and timeout.reason == "Spotify did not answer in time; will retry"
    assert timeout.detail == "track x: ReadTimeout"
    assert type(refused) is TransientError and refused.reason == "couldn't reach Spotify; will retry"
