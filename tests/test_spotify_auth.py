"""PKCE login pieces: the pure parts in tables, the two token grants against the fake Spotify."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from pipeline.errors import PermanentError, RateLimited, TransientError
from pipeline.settings import PipelineSettings
from pipeline.spotify_auth import (
    SCOPES,
    BadLoginAnswer,
    GrantRefused,
    LoginAnswer,
    authorize_url,
    code_challenge,
    exchange_code,
    new_pkce,
    new_state,
    parse_login_answer,
    refresh_token,
    token_from_answer,
)
from tests.fakes.spotify_server import FakeSpotify

REDIRECT = "http://127.0.0.1:8888/callback"
CODE = "AQBx-_" + "k" * 150


def test_challenge_is_rfc7636_s256() -> None:
    # RFC 7636, appendix B.
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert code_challenge(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_new_pkce_and_state_are_random_and_well_formed() -> None:
    first, second = new_pkce(), new_pkce()
    assert first.verifier != second.verifier
    assert 43 <= len(first.verifier) <= 128
    assert re.fullmatch(r"[A-Za-z0-9_\-]+", first.verifier)
    assert first.challenge == code_challenge(first.verifier)
    assert new_state() != new_state()
    assert len(new_state()) >= 24


def test_authorize_url_carries_everything_spotify_asks() -> None:
    settings = PipelineSettings(spotify_client_id="cid", spotify_auth_url="https://accounts.example/authorize")
    url = authorize_url(settings, challenge="ch", state="st")
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == "https://accounts.example/authorize"
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert query == {
        "client_id": "cid",
        "response_type": "code",
        "redirect_uri": REDIRECT,
        "code_challenge_method": "S256",
        "code_challenge": "ch",
        "state": "st",
        "scope": " ".join(SCOPES),
    }
    assert {"user-library-read", "playlist-read-private", "playlist-read-collaborative"} <= set(query["scope"].split())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"{REDIRECT}?code={CODE}&state=abc", LoginAnswer(code=CODE, state="abc")),
        (f"  {REDIRECT}?state=abc&code={CODE}\n", LoginAnswer(code=CODE, state="abc")),
        (CODE, LoginAnswer(code=CODE)),
        (f"{REDIRECT}?error=access_denied&state=abc", LoginAnswer(error="access_denied", state="abc")),
        # Another registered address (or one the browser rewrote) still carries code and state.
        (f"http://127.0.0.1:9999/cb?code={CODE}&state=abc", LoginAnswer(code=CODE, state="abc")),
        # Not an answer: ordinary messages go on to the link handling.
        ("hello", None),
        ("https://open.spotify.com/playlist/37i9dQZF1DXcBWIGoYBM5M", None),
        ("spotify:track:4uLU6hMCjMI75M1A2tKUQC", None),
        ("two words " + CODE, None),
        ("", None),
        ("x" * 5000, None),
        ("https://example.com/?code=abc", None),
    ],
)
def test_parse_login_answer(text: str, expected: LoginAnswer | None) -> None:
    assert parse_login_answer(text, REDIRECT) == expected


@pytest.mark.parametrize(
    "text", [f"{REDIRECT}?code=short&state=abc", f"{REDIRECT}?state=abc", f"{REDIRECT}?code=<script>&state=a"]
)
def test_parse_login_answer_refuses_a_broken_redirect(text: str) -> None:
    with pytest.raises(BadLoginAnswer) as raised:
        parse_login_answer(text, REDIRECT)
    assert "?code=" in raised.value.reason


def test_token_from_answer() -> None:
    token = token_from_answer({"access_token": "A", "refresh_token": "R", "expires_in": 3600, "scope": "s"}, 1000.0)
    assert token.access_token.get_secret_value() == "A"
    assert token.refresh_token.get_secret_value() == "R"
    assert token.expires_at == 4600.0
    assert token.fresh(1000.0) and not token.fresh(4590.0)
    kept = token_from_answer({"access_token": "B", "expires_in": 60}, 0.0, previous_refresh="R")
    assert kept.refresh_token.get_secret_value() == "R"
    assert "A" not in repr(token) and "R'" not in repr(token)
    with pytest.raises(TransientError):
        token_from_answer({"token_type": "Bearer"}, 0.0)


def _approved(fake: FakeSpotify, settings: PipelineSettings) -> tuple[str, str]:
    user = fake.add_user("Ann")
    pkce = new_pkce()
    location = fake.authorize(authorize_url(settings, challenge=pkce.challenge, state="s1"), user)
    answer = parse_login_answer(location, settings.spotify_redirect_uri)
    assert answer is not None and answer.code and answer.state == "s1"
    return answer.code, pkce.verifier


def test_exchange_then_rotating_refresh(fake_spotify: FakeSpotify) -> None:
    settings = fake_spotify.settings(credentials=False, spotify_client_id=FakeSpotify.CLIENT_ID)
    session = requests.Session()
    code, verifier = _approved(fake_spotify, settings)

    token = exchange_code(session, settings, code=code, verifier=verifier)
    assert fake_spotify.code_grants == 1
    form = fake_spotify.request_log[-1]
    assert form.path == "/api/token" and "Authorization" not in form.headers, "PKCE sends no client secret"

    fresh = refresh_token(session, settings, token)
    assert fresh.refresh_token != token.refresh_token, "Spotify rotates refresh tokens"
    with pytest.raises(GrantRefused):
        refresh_token(session, settings, token)  # the old one was revoked
    assert refresh_token(session, settings, fresh).access_token.get_secret_value()


def test_a_code_works_once_and_only_with_its_verifier(fake_spotify: FakeSpotify) -> None:
    settings = fake_spotify.settings(credentials=False, spotify_client_id=FakeSpotify.CLIENT_ID)
    session = requests.Session()
    code, verifier = _approved(fake_spotify, settings)
    with pytest.raises(GrantRefused):
        exchange_code(session, settings, code=code, verifier=new_pkce().verifier)
    code, verifier = _approved(fake_spotify, settings)
    exchange_code(session, settings, code=code, verifier=verifier)
    with pytest.raises(GrantRefused) as raised:
        exchange_code(session, settings, code=code, verifier=verifier)
    assert "already used" in raised.value.reason


@pytest.mark.parametrize(
    ("status", "headers", "error"),
    [(429, {"Retry-After": "7"}, RateLimited), (503, {}, TransientError), (401, {}, PermanentError)],
)
def test_grant_failures_are_classified(
    fake_spotify: FakeSpotify, status: int, headers: dict[str, str], error: type[Exception]
) -> None:
    settings = fake_spotify.settings(credentials=False, spotify_client_id=FakeSpotify.CLIENT_ID)
    fake_spotify.fail("/api/token", status, headers, times=None)
    with pytest.raises(error) as raised:
        exchange_code(requests.Session(), settings, code=CODE, verifier="v" * 43)
    assert CODE not in str(raised.value), "the code never goes into an error (it may be logged)"
    if status == 429:
        assert raised.value.retry_after == 7  # type: ignore[attr-defined]


def test_unreachable_token_endpoint_is_transient() -> None:
    settings = PipelineSettings(spotify_client_id="cid", spotify_token_url="http://127.0.0.1:9/api/token")
    with pytest.raises(TransientError):
        exchange_code(requests.Session(), settings, code=CODE, verifier="v" * 43)
