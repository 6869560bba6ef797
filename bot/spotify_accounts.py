"""People's own Spotify logins, per Telegram user, in Redis: the waiting login and the tokens it gave.

Keys (see `bot.schema`; each with a TTL):
- `login:<user>`            hash {state, verifier}: a login link handed out, waiting for its answer (10 min,
                            single use: taken with the first answer, right or wrong)
- `spotify:<user>`          hash {token (JSON), name}: the person's tokens and display name; kept
                            `TOKEN_TTL` after the last use (Spotify's refresh tokens do not expire on a clock)
- `spotify:<user>:refresh`  a lock (SET NX with a TTL) held while one process refreshes

Spotify rotates refresh tokens: a refresh answers a new one and revokes the old. Two processes refreshing
with the same old token would log the person out (the second gets `invalid_grant`), so refreshing is
serialised by the lock, and whoever gets the lock first re-reads the stored token: someone else may have
refreshed it meanwhile. The new token is stored before it is used. Synchronous (workers run on threads);
the bot calls it with `asyncio.to_thread`. Tokens are `SecretStr` and never logged.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis
import requests

from bot import schema
from pipeline.errors import PermanentError, TransientError
from pipeline.metadata import SpotifyMetadata
from pipeline.models import Collection, PlaylistSummary
from pipeline.settings import PipelineSettings
from pipeline.spotify_api import spotify_session
from pipeline.spotify_auth import (
    GrantRefused,
    LoginAnswer,
    LoginDenied,
    UserToken,
    authorize_url,
    exchange_code,
    new_pkce,
    new_state,
    refresh_token,
)

log = logging.getLogger(__name__)

LOGIN_TTL = 10 * 60  # seconds a login link stays usable
TOKEN_TTL = 180 * 24 * 3600  # a login unused this long is forgotten
LOCK_TTL_MS = 60_000  # the refresh lock frees itself if its holder dies


class NoLoginWaiting(PermanentError):
    default_reason = (
        "No Spotify login is waiting for this: a login link works once, for 10 minutes. Send /login for a new one."
    )


class ForeignLogin(PermanentError):
    default_reason = (
        "This answer belongs to another login link (someone else's, or an older one). "
        "Open the link from your latest /login and paste the address it lands on."
    )


class NotLoggedIn(PermanentError):
    default_reason = "You're not connected to Spotify. Send /login first."


class LoginLost(PermanentError):
    default_reason = "Spotify no longer accepts your login (it was revoked or expired). Send /login to connect again."


@dataclass(frozen=True)
class Account:
    user_id: int
    display_name: str


def login_key(user_id: int) -> str:
    return schema.key("login", user_id)


def account_key(user_id: int) -> str:
    return schema.key("spotify", user_id)


def refresh_lock_key(user_id: int) -> str:
    return schema.key("spotify", user_id, "refresh")


class SpotifyAccounts:
    def __init__(
        self,
        client: redis.Redis,
        settings: PipelineSettings,
        *,
        metadata: SpotifyMetadata | None = None,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.redis = client
        self.settings = settings
        self.session = session or spotify_session()
        self.metadata = metadata or SpotifyMetadata(settings, session=self.session)
        self.clock = clock

    @property
    def enabled(self) -> bool:
        """PKCE needs only the app's client id (no secret)."""
        return bool(self.settings.spotify_client_id)

    # --- logging in -----------------------------------------------------------------------------------
    def begin_login(self, user_id: int) -> str:
        """A fresh authorization link for this person; an older link of theirs stops working."""
        pkce, state = new_pkce(), new_state()
        key = login_key(user_id)
        with self.redis.pipeline() as pipe:
            pipe.delete(key)
            pipe.hset(key, mapping={"state": state, "verifier": pkce.verifier})
            pipe.expire(key, LOGIN_TTL)
            pipe.execute()
        return authorize_url(self.settings, challenge=pkce.challenge, state=state)

    def login_waiting(self, user_id: int) -> bool:
        return bool(self.redis.exists(login_key(user_id)))

    def finish_login(self, user_id: int, answer: LoginAnswer) -> Account:
        """Exchange the pasted answer for tokens, check them with `GET /me` and store them.

        The waiting login is used up by any answer. Nothing is stored unless everything succeeded; raises
        PermanentError with what the person should do (AccessRefused: not in the app's user list).
        """
        key = login_key(user_id)
        with self.redis.pipeline() as pipe:  # take it: single use, even if two answers race
            pipe.hgetall(key)
            pipe.delete(key)
            waiting, _ = pipe.execute()
        if not waiting:
            raise NoLoginWaiting()
        if answer.state is not None and not secrets.compare_digest(answer.state, waiting.get("state", "")):
            raise ForeignLogin()
        if answer.error is not None:
            raise LoginDenied(detail=answer.error)
        assert answer.code is not None
        token = exchange_code(self.session, self.settings, code=answer.code, verifier=waiting["verifier"])
        holder = _FixedToken(token)
        name = self.metadata.profile_name(holder)  # AccessRefused (403): not in the app's user list
        self._save(user_id, token, name=name)
        log.info("user %s connected a Spotify account", user_id)
        return Account(user_id, name)

    def logout(self, user_id: int) -> bool:
        """Forget the person's tokens (and a waiting login); True when there was a login."""
        with self.redis.pipeline() as pipe:
            pipe.exists(account_key(user_id))
            pipe.delete(account_key(user_id), login_key(user_id))
            had, _ = pipe.execute()
        return bool(had)

    def account(self, user_id: int) -> Account | None:
        name = self.redis.hget(account_key(user_id), "name")
        return None if name is None else Account(user_id, name)

    # --- using the login --------------------------------------------------------------------------------
    def auth(self, user_id: int) -> UserLogin | None:
        """The person's login for `SpotifyApi(user=...)` / `SpotifyMetadata`, or None when not logged in."""
        account = self.account(user_id)
        return None if account is None else UserLogin(self, account)

    def liked(self, user_id: int) -> Collection:
        return self.metadata.liked(self._require(user_id))

    def playlists(self, user_id: int) -> list[PlaylistSummary]:
        return self.metadata.playlists(self._require(user_id))

    def _require(self, user_id: int) -> UserLogin:
        login = self.auth(user_id)
        if login is None:
            raise NotLoggedIn()
        return login

    def access_token(self, user_id: int) -> str:
        """A valid access token, refreshed (and the rotated refresh token stored) when it has expired."""
        token = self._load(user_id)
        if token.fresh(self.clock()):
            return token.access_token.get_secret_value()
        return self._refresh(user_id).access_token.get_secret_value()

    def expire_access(self, user_id: int) -> None:
        """Spotify refused the access token before its time: the next use refreshes it."""
        token = self._load(user_id)
        self._save(user_id, token.model_copy(update={"expires_at": 0.0}))

    def _refresh(self, user_id: int) -> UserToken:
        lock = _Lock(self.redis, refresh_lock_key(user_id), wait=2 * self.settings.http_timeout + 5)
        with lock:
            token = self._load(user_id)  # another process may have refreshed while we waited
            if token.fresh(self.clock()):
                return token
            try:
                fresh = refresh_token(self.session, self.settings, token)
            except GrantRefused as error:
                stored = self._load(user_id)
                if stored.refresh_token != token.refresh_token:  # rotated meanwhile by a holder whose lock expired
                    return stored
                # The refresh token was revoked (the person removed the app, or it was rotated by a refresh
                # whose answer was lost): the login is over.
                log.info("user %s: Spotify refused the refresh token (%s); forgetting the login", user_id, error.detail)
                self.redis.delete(account_key(user_id))
                raise LoginLost() from None
            self._save(user_id, fresh)  # at once: the old refresh token no longer works
            return fresh

    def _load(self, user_id: int) -> UserToken:
        raw = self.redis.hget(account_key(user_id), "token")
        if raw is None:
            raise NotLoggedIn()
        return UserToken.model_validate_json(raw)

    def _save(self, user_id: int, token: UserToken, *, name: str | None = None) -> None:
        key = account_key(user_id)
        fields = {"token": token.to_json()}
        if name is not None:
            fields["name"] = name
        with self.redis.pipeline() as pipe:
            pipe.hset(key, mapping=fields)
            pipe.expire(key, TOKEN_TTL)
            pipe.execute()


class UserLogin:
    """One person's login as `pipeline.spotify_api.UserAuth`: tokens come from, and go back to, the store."""

    def __init__(self, accounts: SpotifyAccounts, account: Account) -> None:
        self._accounts = accounts
        self.user_id = account.user_id
        self.display_name = account.display_name

    def get_access_token(self, as_dict: bool = False) -> str:
        return self._accounts.access_token(self.user_id)

    def forget(self) -> None:
        self._accounts.expire_access(self.user_id)


class _FixedToken:
    """The token of a login being finished (not stored yet): it is fresh, nothing to refresh."""

    display_name = ""

    def __init__(self, token: UserToken) -> None:
        self._token = token

    def get_access_token(self, as_dict: bool = False) -> str:
        return self._token.access_token.get_secret_value()

    def forget(self) -> None:
        pass


class _Lock:
    """A Redis lock without Lua (all-in-one mode's fakeredis has no scripting): SET NX PX to take it, a
    WATCHed compare-and-delete to release only our own."""

    def __init__(self, client: redis.Redis, key: str, *, wait: float) -> None:
        self.redis, self.key, self.wait = client, key, wait
        self.token = secrets.token_hex(8)

    def __enter__(self) -> _Lock:
        deadline = time.monotonic() + self.wait
        delay = 0.02
        while not self.redis.set(self.key, self.token, nx=True, px=LOCK_TTL_MS):
            if time.monotonic() > deadline:
                raise TransientError("Spotify login is busy; will retry", detail=f"lock {self.key} held")
            time.sleep(delay)
            delay = min(delay * 2, 0.5)
        return self

    def __exit__(self, *exc_info: object) -> None:
        def release(pipe: redis.client.Pipeline) -> None:
            if pipe.get(self.key) == self.token:
                pipe.multi()
                pipe.delete(self.key)

        self.redis.transaction(release, self.key)
