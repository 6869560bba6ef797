"""Spotify's Authorization Code flow with PKCE: what a person's own login needs, without any store.

PKCE needs no client secret: the app proves it started the login by showing, at the token endpoint, the
random `code_verifier` whose SHA-256 (`code_challenge`, S256) was in the authorization link. Pure parts
(the verifier and challenge, the link, reading what the person pastes back, a token answer → `UserToken`)
are plain functions; `exchange_code` and `refresh_token` are the two thin HTTP calls.

Spotify rotates refresh tokens: every refresh answers a new one and revokes the old, so whoever refreshes
must store the answer at once (see `bot.spotify_accounts`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import parse_qs, urlencode, urlsplit

import requests
from pydantic import BaseModel, SecretStr

from pipeline.errors import PermanentError, TransientError
from pipeline.http import request_error, status_error
from pipeline.settings import PipelineSettings

__all__ = [
    "SCOPES",
    "BadLoginAnswer",
    "GrantRefused",
    "LoginAnswer",
    "LoginDenied",
    "Pkce",
    "UserToken",
    "authorize_url",
    "code_challenge",
    "exchange_code",
    "new_pkce",
    "new_state",
    "parse_login_answer",
    "refresh_token",
    "token_from_answer",
]

SERVICE = "Spotify"
SCOPES: Final = ("user-library-read", "playlist-read-private", "playlist-read-collaborative")
# An authorization code is a long run of URL-safe characters (Spotify's are ~200); a pasted bare code is
# recognised by that shape only while a login is waiting.
_BARE_CODE: Final = re.compile(r"[A-Za-z0-9_\-]{30,1024}")
_MAX_ANSWER = 4096
EXPIRY_MARGIN = 60.0  # seconds: an access token this close to its end is refreshed before use


class LoginDenied(PermanentError):
    default_reason = "You didn't allow access on Spotify's page (or it was cancelled). Send /login to try again."


class BadLoginAnswer(PermanentError):
    default_reason = (
        "That doesn't look like the address Spotify sent you to. Paste the whole address from the browser's "
        "address bar (it contains ?code=…), or send /login for a new link."
    )


class GrantRefused(PermanentError):
    """The token endpoint answered `invalid_grant`: a wrong, expired or used code, or a revoked refresh token."""

    default_reason = "Spotify refused this code: it is wrong, expired or was already used. Send /login for a new link."


@dataclass(frozen=True)
class Pkce:
    verifier: str  # kept secret until the token exchange
    challenge: str  # goes into the authorization link


def code_challenge(verifier: str) -> str:
    """S256: base64url(SHA-256(verifier)) without padding (RFC 7636 §4.2)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def new_pkce() -> Pkce:
    """A fresh verifier (86 URL-safe characters from 64 random bytes; RFC 7636 asks 43–128) and its challenge."""
    verifier = secrets.token_urlsafe(64)
    return Pkce(verifier=verifier, challenge=code_challenge(verifier))


def new_state() -> str:
    """The `state` that binds an authorization answer to the login that asked for it."""
    return secrets.token_urlsafe(24)


def authorize_url(settings: PipelineSettings, *, challenge: str, state: str, scopes: tuple[str, ...] = SCOPES) -> str:
    query = {
        "client_id": settings.spotify_client_id or "",
        "response_type": "code",
        "redirect_uri": settings.spotify_redirect_uri,
        "code_challenge_method": "S256",
        "code_challenge": challenge,
        "state": state,
        "scope": " ".join(scopes),
    }
    return f"{settings.spotify_auth_url}?{urlencode(query)}"


@dataclass(frozen=True)
class LoginAnswer:
    """What the person pasted: the redirect address (code and state, or Spotify's error), or just the code."""

    code: str | None = None
    state: str | None = None  # None: a bare code was pasted
    error: str | None = None  # e.g. "access_denied"


def parse_login_answer(text: str, redirect_uri: str) -> LoginAnswer | None:
    """The login answer in `text`, or None when it does not look like one (the message is something else).

    An address counts when it starts with the registered redirect URI or carries `code=`/`error=` with a
    `state=`; a bare code only by its shape (the caller accepts it only while a login is waiting).
    """
    text = text.strip()
    if not text or len(text) > _MAX_ANSWER or any(c.isspace() for c in text):
        return None
    if _BARE_CODE.fullmatch(text):
        return LoginAnswer(code=text)
    parts = urlsplit(text)
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    ours = text.startswith(redirect_uri.rstrip("/"))
    if not ours and not ("state" in query and ("code" in query or "error" in query)):
        return None
    if "error" in query:
        return LoginAnswer(state=query.get("state"), error=query["error"][:100])
    code = query.get("code", "")
    if not _BARE_CODE.fullmatch(code):
        raise BadLoginAnswer()
    return LoginAnswer(code=code, state=query.get("state"))


class UserToken(BaseModel):
    """One person's Spotify tokens. SecretStr: they never show in a repr, a log line or a traceback."""

    access_token: SecretStr
    refresh_token: SecretStr
    expires_at: float  # epoch seconds
    scope: str = ""

    def fresh(self, now: float) -> bool:
        return now < self.expires_at - EXPIRY_MARGIN

    def to_json(self) -> str:
        """JSON for the store, secrets included (SecretStr would hide them from model_dump_json)."""
        return json.dumps(
            {
                "access_token": self.access_token.get_secret_value(),
                "refresh_token": self.refresh_token.get_secret_value(),
                "expires_at": self.expires_at,
                "scope": self.scope,
            }
        )


def token_from_answer(answer: Mapping[str, Any], now: float, *, previous_refresh: str | None = None) -> UserToken:
    """A token endpoint's JSON answer → UserToken. A refresh answer may (per RFC 6749) omit the refresh token,
    then the previous one stays; Spotify's PKCE answers always carry a new one."""
    access = answer.get("access_token")
    refresh = answer.get("refresh_token") or previous_refresh
    if not isinstance(access, str) or not access or not isinstance(refresh, str) or not refresh:
        raise TransientError("unexpected answer from Spotify's login service; will retry", detail="no tokens")
    expires_in = answer.get("expires_in")
    lifetime = float(expires_in) if isinstance(expires_in, (int, float)) and expires_in > 0 else 3600.0
    scope = answer.get("scope")
    return UserToken(
        access_token=SecretStr(access),
        refresh_token=SecretStr(refresh),
        expires_at=now + lifetime,
        scope=scope if isinstance(scope, str) else "",
    )


def _grant(session: requests.Session, settings: PipelineSettings, form: dict[str, str], what: str) -> dict[str, Any]:
    """POST a grant to the token endpoint. Only the status and Spotify's error code are ever put in an error:
    the form holds the code, the verifier or the refresh token."""
    try:
        response = session.post(settings.spotify_token_url, data=form, timeout=settings.http_timeout)
    except requests.RequestException as error:
        raise request_error(error, service=SERVICE, detail=f"{what}: {type(error).__name__}") from None
    try:
        body = response.json()
    except ValueError:
        body = None
    code = body.get("error") if isinstance(body, dict) else None
    detail = f"{what}: HTTP {response.status_code} {code or ''}".strip()
    if passing := status_error(response.status_code, response.headers, service=SERVICE, detail=detail):
        raise passing
    if response.status_code == 400 and code == "invalid_grant":
        raise GrantRefused(detail=detail)
    if response.status_code != 200 or not isinstance(body, dict):
        raise PermanentError(f"Spotify's login service answered HTTP {response.status_code}", detail=detail)
    return body


def exchange_code(
    session: requests.Session, settings: PipelineSettings, *, code: str, verifier: str, now: float | None = None
) -> UserToken:
    """`grant_type=authorization_code` with the PKCE verifier (no client secret)."""
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": settings.spotify_redirect_uri,
        "client_id": settings.spotify_client_id or "",
        "code_verifier": verifier,
    }
    answer = _grant(session, settings, form, "authorization code")
    return token_from_answer(answer, time.time() if now is None else now)


def refresh_token(
    session: requests.Session, settings: PipelineSettings, token: UserToken, *, now: float | None = None
) -> UserToken:
    """`grant_type=refresh_token`; the answer's new refresh token replaces (and revokes) the old one."""
    old = token.refresh_token.get_secret_value()
    form = {"grant_type": "refresh_token", "refresh_token": old, "client_id": settings.spotify_client_id or ""}
    answer = _grant(session, settings, form, "refresh")
    return token_from_answer(answer, time.time() if now is None else now, previous_refresh=old)
