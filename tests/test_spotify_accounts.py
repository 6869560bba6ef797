"""People's own Spotify logins in a real Redis against the fake Spotify: login, single use, refresh rotation
(also by several processes at once), logout, and reading their library with their token."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import pytest
import redis
from pytest_redis import factories

from bot.spotify_accounts import (
    LOGIN_TTL,
    ForeignLogin,
    LoginLost,
    NoLoginWaiting,
    NotLoggedIn,
    SpotifyAccounts,
    account_key,
    login_key,
)
from pipeline.settings import PipelineSettings
from pipeline.spotify_api import AccessRefused, LoginRejected
from pipeline.spotify_auth import GrantRefused, LoginAnswer, LoginDenied, parse_login_answer
from tests.fakes.spotify_server import EMBED_LIMIT, FakeSpotify

decoded_redisdb = factories.redisdb("redis_proc", decode=True)  # flushed after each test

ANN, BOB = 501, 502


@pytest.fixture
def settings(fake_spotify: FakeSpotify) -> PipelineSettings:
    return fake_spotify.settings()


@pytest.fixture
def accounts(decoded_redisdb: redis.Redis, settings: PipelineSettings) -> Iterator[SpotifyAccounts]:
    yield SpotifyAccounts(decoded_redisdb, settings)


def answer_for(fake: FakeSpotify, link: str, user: str, *, deny: bool = False) -> LoginAnswer:
    answer = parse_login_answer(fake.authorize(link, user, deny=deny), FakeSpotify.REDIRECT_URI)
    assert answer is not None
    return answer


def logged_in(fake: FakeSpotify, accounts: SpotifyAccounts, telegram_user: int, name: str = "Ann Example") -> str:
    spotify_user = fake.add_user(name)
    link = accounts.begin_login(telegram_user)
    accounts.finish_login(telegram_user, answer_for(fake, link, spotify_user))
    return spotify_user


def assert_every_key_expires(client: redis.Redis) -> None:
    for key in client.keys("*"):
        assert client.ttl(key) > 0, key


def test_login_stores_the_tokens_and_the_name(fake_spotify: FakeSpotify, accounts: SpotifyAccounts) -> None:
    spotify_user = fake_spotify.add_user("Ann Example")
    link = accounts.begin_login(ANN)
    assert 0 < accounts.redis.ttl(login_key(ANN)) <= LOGIN_TTL
    assert accounts.login_waiting(ANN)

    account = accounts.finish_login(ANN, answer_for(fake_spotify, link, spotify_user))

    assert account.display_name == "Ann Example"
    assert accounts.account(ANN) == account
    assert not accounts.login_waiting(ANN), "a login link is used up by its answer"
    assert_every_key_expires(accounts.redis)


def test_a_bare_code_works_too(fake_spotify: FakeSpotify, accounts: SpotifyAccounts) -> None:
    spotify_user = fake_spotify.add_user("Ann")
    answer = answer_for(fake_spotify, accounts.begin_login(ANN), spotify_user)
    assert accounts.finish_login(ANN, LoginAnswer(code=answer.code)).display_name == "Ann"


def test_a_reused_answer_is_refused_and_changes_nothing(fake_spotify: FakeSpotify, accounts: SpotifyAccounts) -> None:
    spotify_user = fake_spotify.add_user("Ann")
    answer = answer_for(fake_spotify, accounts.begin_login(ANN), spotify_user)
    accounts.finish_login(ANN, answer)
    stored = accounts.redis.hgetall(account_key(ANN))

    with pytest.raises(NoLoginWaiting):
        accounts.finish_login(ANN, answer)
    accounts.begin_login(ANN)  # a new link does not revive the old code either
    with pytest.raises(GrantRefused):
        accounts.finish_login(ANN, LoginAnswer(code=answer.code))

    assert accounts.redis.hgetall(account_key(ANN)) == stored


def test_someone_elses_answer_is_refused(fake_spotify: FakeSpotify, accounts: SpotifyAccounts) -> None:
    ann = fake_spotify.add_user("Ann")
    ann_answer = answer_for(fake_spotify, accounts.begin_login(ANN), ann)
    accounts.begin_login(BOB)

    with pytest.raises(ForeignLogin):
        accounts.finish_login(BOB, ann_answer)

    assert accounts.account(BOB) is None
    assert accounts.finish_login(ANN, ann_answer).display_name == "Ann", "Ann's own login is untouched"


def test_denied_unregistered_and_wrong_answers_store_nothing(
    fake_spotify: FakeSpotify, accounts: SpotifyAccounts
) -> None:
    stranger = fake_spotify.add_user("Stranger", registered=False)
    with pytest.raises(LoginDenied):
        accounts.finish_login(ANN, answer_for(fake_spotify, accounts.begin_login(ANN), stranger, deny=True))
    with pytest.raises(AccessRefused):  # the app's user list does not have this account: GET /me is 403
        accounts.finish_login(ANN, answer_for(fake_spotify, accounts.begin_login(ANN), stranger))
    accounts.begin_login(ANN)
    with pytest.raises(GrantRefused):
        accounts.finish_login(ANN, LoginAnswer(code="AQ" + "x" * 100))
    assert accounts.account(ANN) is None
    assert accounts.redis.keys("*") == []


def test_refresh_rotates_and_stores_the_new_refresh_token(
    fake_spotify: FakeSpotify, decoded_redisdb: redis.Redis, settings: PipelineSettings
) -> None:
    bot, worker = SpotifyAccounts(decoded_redisdb, settings), SpotifyAccounts(decoded_redisdb, settings)
    fake_spotify.user_token_lifetime = 30  # within the safety margin: due for a refresh at once
    spotify_user = logged_in(fake_spotify, bot, ANN)
    fake_spotify.user_token_lifetime = 3600

    first = worker.access_token(ANN)
    assert fake_spotify.refresh_grants == 1
    assert first == bot.access_token(ANN), "the refreshed token is stored at once and used by every process"
    assert fake_spotify.live_refresh_tokens(spotify_user) == 1, "the old refresh token was revoked"

    bot.expire_access(ANN)
    assert worker.access_token(ANN) != first, "another process refreshes with the rotated refresh token"
    assert fake_spotify.refresh_grants == 2
    assert_every_key_expires(decoded_redisdb)


def test_processes_refreshing_at_once_refresh_once(
    fake_spotify: FakeSpotify, decoded_redisdb: redis.Redis, settings: PipelineSettings, redis_proc: object
) -> None:
    fake_spotify.user_token_lifetime = 30  # due for a refresh at once
    logged_in(fake_spotify, SpotifyAccounts(decoded_redisdb, settings), ANN)
    fake_spotify.user_token_lifetime = 3600
    start = threading.Barrier(6)
    tokens: list[str] = []
    errors: list[BaseException] = []

    def worker() -> None:
        client = redis.Redis(host=redis_proc.host, port=redis_proc.port, decode_responses=True)  # type: ignore[attr-defined]
        process = SpotifyAccounts(client, settings)
        start.wait()
        try:
            tokens.append(process.access_token(ANN))
        except BaseException as error:
            errors.append(error)
        finally:
            client.close()

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert errors == []
    assert len(set(tokens)) == 1 and len(tokens) == 6
    assert fake_spotify.refresh_grants == 1
    assert decoded_redisdb.keys("*:refresh") == [], "the lock is released"


def test_a_revoked_login_is_forgotten(fake_spotify: FakeSpotify, accounts: SpotifyAccounts) -> None:
    spotify_user = logged_in(fake_spotify, accounts, ANN)
    with fake_spotify._lock:  # the person removed the app on spotify.com: the refresh token is dead
        fake_spotify._refresh_tokens = {k: v for k, v in fake_spotify._refresh_tokens.items() if v != spotify_user}
    fake_spotify.expire_user_tokens()

    with pytest.raises(LoginLost):
        accounts.liked(ANN)
    assert accounts.account(ANN) is None
    with pytest.raises(NotLoggedIn):
        accounts.liked(ANN)


def test_liked_songs_in_spotifys_order_across_pages(fake_spotify: FakeSpotify, accounts: SpotifyAccounts) -> None:
    spotify_user = logged_in(fake_spotify, accounts, ANN)
    ids = [fake_spotify.add_track(f"Liked {n}") for n in range(1, 56)]
    fake_spotify.like(spotify_user, ids)  # the last liked comes first

    liked = accounts.liked(ANN)

    assert [t.title for t in liked.tracks] == [f"Liked {n}" for n in range(55, 0, -1)]
    assert (liked.name, liked.owner, liked.kind) == ("Liked Songs", "Ann Example", "playlist")
    assert fake_spotify.count(r"^/v1/me/tracks$") == 2, "pages of 50"
    assert all(r.query.get("limit") == "50" for r in fake_spotify.request_log if r.path == "/v1/me/tracks")


def test_an_expired_access_token_is_refreshed_on_401(fake_spotify: FakeSpotify, accounts: SpotifyAccounts) -> None:
    spotify_user = logged_in(fake_spotify, accounts, ANN)
    fake_spotify.like(spotify_user, [fake_spotify.add_track("Only One")])
    fake_spotify.expire_user_tokens()

    assert [t.title for t in accounts.liked(ANN).tracks] == ["Only One"]
    assert fake_spotify.refresh_grants == 1


def test_own_private_and_long_playlists_come_complete(fake_spotify: FakeSpotify, accounts: SpotifyAccounts) -> None:
    spotify_user = logged_in(fake_spotify, accounts, ANN)
    other = fake_spotify.add_user("Other Person")
    ids = [fake_spotify.add_track(f"Track {n}") for n in range(1, 121)]
    own = fake_spotify.add_playlist("Mine", "Ann Example", ids, user_owner=spotify_user, public=False)
    shared = fake_spotify.add_playlist("Ours", "Other Person", ids[:3], user_owner=other, collaborators=[spotify_user])
    followed = fake_spotify.add_playlist("Theirs", "Other Person", ids, user_owner=other, followers=[spotify_user])
    login = accounts.auth(ANN)
    assert login is not None

    mine = accounts.metadata.resolve("playlist", own, user=login)
    assert [t.title for t in mine.tracks] == [f"Track {n}" for n in range(1, 121)]
    assert not mine.login_refused and mine.source == "api"
    assert len(accounts.metadata.resolve("playlist", shared, user=login).tracks) == 3

    theirs = accounts.metadata.resolve("playlist", followed, user=login)
    assert theirs.login_refused and theirs.source == "embed"
    assert len(theirs.tracks) == EMBED_LIMIT

    listed = accounts.playlists(ANN)
    expected = [(own, "Mine", 120), (shared, "Ours", 3), (followed, "Theirs", 120)]
    assert [(p.id, p.name, p.total) for p in listed] == expected


def test_logout_forgets_everything(fake_spotify: FakeSpotify, accounts: SpotifyAccounts) -> None:
    logged_in(fake_spotify, accounts, ANN)
    accounts.begin_login(ANN)
    assert accounts.logout(ANN) is True
    assert accounts.redis.keys("*") == []
    assert accounts.logout(ANN) is False
    assert accounts.auth(ANN) is None


def test_tokens_are_never_logged(
    fake_spotify: FakeSpotify, accounts: SpotifyAccounts, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    logged_in(fake_spotify, accounts, ANN)
    fake_spotify.expire_user_tokens()
    accounts.liked(ANN)
    stored = accounts.redis.hget(account_key(ANN), "token") or ""
    secrets = [part for part in stored.split('"') if part.startswith(("fake-user-token-", "fake-refresh-"))]
    assert len(secrets) == 2
    for secret in secrets:
        assert secret not in caplog.text


def test_a_token_refused_even_after_a_refresh_asks_to_log_in_again(
    fake_spotify: FakeSpotify, accounts: SpotifyAccounts
) -> None:
    logged_in(fake_spotify, accounts, ANN)
    fake_spotify.fail(r"^/v1/me/tracks", 401, times=None)

    with pytest.raises(LoginRejected) as raised:
        accounts.liked(ANN)
    assert "/login" in raised.value.reason
    assert fake_spotify.refresh_grants == 1, "one fresh token was tried"


def test_a_client_id_alone_is_enough_for_logins(fake_spotify: FakeSpotify, decoded_redisdb: redis.Redis) -> None:
    settings = fake_spotify.settings(credentials=False, spotify_client_id=FakeSpotify.CLIENT_ID)
    accounts = SpotifyAccounts(decoded_redisdb, settings)
    assert accounts.enabled
    spotify_user = logged_in(fake_spotify, accounts, ANN)
    ids = [fake_spotify.add_track(f"Track {n}") for n in range(1, 4)]
    fake_spotify.like(spotify_user, ids)
    own = fake_spotify.add_playlist("Mine", "Ann Example", ids, user_owner=spotify_user, public=False)

    assert len(accounts.liked(ANN).tracks) == 3
    login = accounts.auth(ANN)
    assert login is not None
    assert len(accounts.metadata.resolve("playlist", own, user=login).tracks) == 3
    assert fake_spotify.tokens_issued == 0, "no client-credentials token without a secret"
    assert not SpotifyAccounts(decoded_redisdb, fake_spotify.settings(credentials=False)).enabled
