"""The work behind the actors: resolve a link into tracks, and turn one track into a file ready to send.

Each method is idempotent: a message redelivered after a crash, or a duplicate, finds the state and does
nothing twice; two runs of one track each work in their own attempt folder and the first to finish wins
(`bot.lifecycle` refuses the second `ready`). Permanent failures are written to the track's state at once;
transient ones are re-raised so that Dramatiq's Retries middleware retries them with backoff (or after
the server's Retry-After via `dramatiq.Retry`).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import dramatiq
from redis.exceptions import RedisError

from bot import texts
from bot.lifecycle import TrackStatus
from bot.metrics import MATCHED, MATCHES, NO_MATCH
from bot.requests import RequestMeta, Resolution, TrackState
from bot.settings import ServiceSettings
from bot.spotify_accounts import SpotifyAccounts
from bot.thumbnails import write_thumbnail
from bot.work_area import WorkArea
from bot.worker_store import WorkerStore
from pipeline.errors import Cancelled, NoConfidentMatch, PermanentError, RateLimited, TransientError
from pipeline.frontend import resolve_collection, thread_providers
from pipeline.metadata import SpotifyMetadata
from pipeline.models import Collection
from pipeline.sources import SearchProvider
from pipeline.spotify_api import AccessRefused
from pipeline.spotify_parse import single
from pipeline.track_job import fetch_track

log = logging.getLogger(__name__)


class TooLarge(PermanentError):
    """Bigger than the Bot API takes (50 MB, or 2000 MB with a local Bot API server)."""

    default_reason = "file too large for Telegram"


def rate_limit_delay(error: RateLimited, limit: float) -> int | None:
    """Milliseconds to wait before retrying, or None when the wait is beyond the configured limit."""
    wait = error.retry_after if error.retry_after is not None else 30.0
    return None if wait > limit else int(wait * 1000)


def retry_later(error: TransientError, limit: float) -> dramatiq.Retry:
    """A passing failure, handed to Dramatiq's Retries middleware as `Retry`: it waits the server's Retry-After
    if there was one (at most `limit` seconds: a 503 asking for hours must not park the track), else the
    actor's backoff, and logs one line instead of the traceback of an "unhandled" exception (expected failures
    are logged by us, once)."""
    delay = int(min(error.retry_after, limit) * 1000) if error.retry_after else None
    return dramatiq.Retry(str(error), delay=delay)


def too_long_reason(error: RateLimited) -> str:
    minutes = max(1, round((error.retry_after or 0) / 60))
    return f"{error.reason}: asked to wait about {minutes} min, more than allowed; try again later"


def holds_ready_file(store: WorkerStore, rid: str, index: int, out_dir: Path) -> bool:
    """Whether the track's ready file is in `out_dir`. A `ready` can be applied with its answer lost (the
    connection dropped, or redis-py ran the transaction again and it was refused), so the state, not the
    answer, says which run won; when Redis can't be read the folder stays, for the request's sweep."""
    try:
        state = store.state(rid, index)
    except RedisError:
        return True
    return state is not None and state.path is not None and Path(state.path).is_relative_to(out_dir)


@dataclass
class TrackRun:
    """One run of a track's message, in its own attempt folder; `won` once its `ready` was applied."""

    rid: str
    index: int
    attempt: str
    out_dir: Path
    won: bool = False


class TrackJobs:
    def __init__(self, settings: ServiceSettings, store: WorkerStore, accounts: SpotifyAccounts | None = None) -> None:
        """`accounts`: people's own Spotify logins (their Liked Songs, their playlists read with their token);
        None = links are read as anyone could."""
        self.settings = settings
        self.store = store
        self.accounts = accounts
        self.work_area = WorkArea(settings.download_dir)
        self._local = threading.local()

    @cached_property
    def metadata(self) -> SpotifyMetadata:
        return SpotifyMetadata(self.settings)

    @property
    def providers(self) -> list[tuple[str, SearchProvider]]:
        """One set per worker thread: search clients (ytmusicapi) are not documented as thread-safe."""
        return thread_providers(self.settings, self._local)

    # --- resolve ------------------------------------------------------------------------------------
    def resolve(self, rid: str) -> None:
        meta = self.store.meta(rid)
        if meta is None or self.store.request_status(rid) != "resolving":
            return  # expired, cancelled, or a duplicate message of a resolved request
        try:
            collection = self._collection(meta)
        except AccessRefused as error:  # a person's own login refused: not in the app's user list
            self.store.reject(rid, texts.NOT_REGISTERED if meta.source == "liked" else error.reason)
            return
        except PermanentError as error:
            self.store.reject(rid, error.reason)
            return
        except RateLimited as error:
            delay = rate_limit_delay(error, self.settings.spotify_max_retry_after)
            if delay is None:
                self.store.reject(rid, too_long_reason(error))
                return
            self.store.delay_resolve(rid, time.time() + delay / 1000)
            raise dramatiq.Retry(str(error), delay=delay) from error
        except TransientError as error:
            log.warning("request %s: reading the link failed for now: %s", rid, error)
            raise retry_later(error, self.settings.spotify_max_retry_after) from error
        self._store_collection(rid, collection)

    def _collection(self, meta: RequestMeta) -> Collection:
        """The request's tracks: a track chosen from a text search comes already read (YouTube Music's have no
        link to read); the requester's own login reads their Liked Songs and their playlists."""
        if meta.track is not None:
            return single(meta.track)
        if meta.source == "liked":
            if self.accounts is None:
                raise PermanentError(texts.LOGIN_UNAVAILABLE)
            return self.accounts.liked(meta.user_id)
        user = self.accounts.auth(meta.user_id) if self.accounts is not None else None
        return resolve_collection(meta.link, self.settings, self.metadata, user=user)

    def _store_collection(self, rid: str, collection: Collection) -> None:
        tracks = collection.tracks[: self.settings.max_tracks_per_request]
        audio_key = self.settings.audio_settings_key
        states = []
        for track in tracks:
            upload = self.store.cached_upload(audio_key, track.spotify_id)
            states.append(TrackState(status=TrackStatus.READY, **upload) if upload else TrackState())
        resolution = Resolution(
            kind=collection.kind,
            name=collection.name,
            owner=collection.owner,
            total=len(tracks),
            available=len(collection.tracks),
            truncated=collection.truncated,
            skipped=collection.skipped,
            login_refused=collection.login_refused,
        )
        if self.store.resolved(rid, resolution, tracks, states) and not tracks:
            log.info("request %s: nothing to fetch", rid)

    def resolve_gave_up(self, rid: str) -> None:
        self.store.reject(rid, "Spotify could not be reached; please try again later")

    # --- one track ----------------------------------------------------------------------------------
    def process(self, rid: str, index: int) -> None:
        run = self.begin(rid, index)
        if run is None:
            return
        try:
            run.won = self._fetch(rid, index, run.out_dir)
        except Exception as error:
            self.settle_failure(run, error)
        finally:
            self.clean_up(run)

    def begin(self, rid: str, index: int) -> TrackRun | None:
        """Start a run in its own attempt folder; None when there is nothing to do (cancelled, expired, or a
        redelivered / duplicate message of a settled track)."""
        attempt = uuid.uuid4().hex[:8]
        if self.store.cancelled(rid):
            self.store.cancel(rid, index)
            return None
        if self.store.start(rid, index, attempt) is None:
            return None
        return TrackRun(rid, index, attempt, self.work_area.attempt_dir(rid, index, attempt))

    def settle_failure(self, run: TrackRun, error: Exception) -> None:
        """A run's failure into the track's state: permanent ones at once; passing ones raise for Dramatiq's
        Retries middleware (`Retry` with the server's wait, or the actor's backoff)."""
        rid, index = run.rid, run.index
        match error:
            case Cancelled():
                self.store.cancel(rid, index)
            case PermanentError():
                log.info("request %s track %d failed: %s", rid, index, error)
                self.store.fail(rid, index, error.reason)
            case RateLimited():
                delay = rate_limit_delay(error, self.settings.spotify_max_retry_after)
                if delay is None:
                    self.store.fail(rid, index, too_long_reason(error))
                    return
                self.store.retry(rid, index, error.reason, retry_at=time.time() + delay / 1000)
                raise dramatiq.Retry(str(error), delay=delay) from error
            case TransientError():
                log.warning("request %s track %d failed for now: %s", rid, index, error)
                self.store.retry(rid, index, error.reason)
                raise retry_later(error, self.settings.spotify_max_retry_after) from error
            case _:
                log.error("request %s track %d: unexpected error", rid, index, exc_info=error)
                self.store.retry(rid, index, "unexpected error")
                raise error

    def clean_up(self, run: TrackRun) -> None:
        """The attempt folder goes unless it holds the track's ready file (failed, cancelled, or another run
        of the track finished first)."""
        if not run.won and not holds_ready_file(self.store, run.rid, run.index, run.out_dir):
            self.work_area.remove_folder(run.out_dir)

    def _fetch(self, rid: str, index: int, out_dir: Path) -> bool:
        """Fetch the track into `out_dir`; True when this run's `ready` was applied and answered."""
        track = self.store.track(rid, index)
        if track is None:
            raise Cancelled()  # the request expired meanwhile
        track = self.metadata.enrich(track)

        def cancelled() -> bool:
            return self.store.cancelled(rid)

        counted = False

        def on_step(step: str) -> None:
            nonlocal counted
            if step == "downloading" and not counted:  # a recording was accepted: matched
                counted = True
                MATCHES.labels(MATCHED).inc()

        try:
            fetched = fetch_track(
                track, self.settings, providers=self.providers, out_dir=out_dir, cancel=cancelled, on_step=on_step
            )
        except NoConfidentMatch:
            MATCHES.labels(NO_MATCH).inc()
            raise
        limit = self.settings.upload_limit_bytes
        if fetched.size_bytes > limit:
            raise TooLarge(
                f"file too large for Telegram ({fetched.size_bytes / 2**20:.1f} MB > {limit / 2**20:.1f} MB)"
            )
        thumb_path = write_thumbnail(fetched.cover, out_dir)
        return (
            self.store.ready(
                rid,
                index,
                path=str(fetched.path),
                thumb_path=str(thumb_path) if thumb_path else None,
                title=track.title,
                performer=", ".join(track.artists),
                duration_s=fetched.duration_s,
                size_bytes=fetched.size_bytes,
            )
            is not None
        )

    def track_gave_up(self, rid: str, index: int) -> None:
        state = self.store.state(rid, index)
        reason = state.reason if state and state.reason else "temporary problem"
        tries = self.settings.track_max_retries + 1
        attempts = "1 try" if tries == 1 else f"{tries} tries"
        self.store.fail(rid, index, f"{reason} (gave up after {attempts})")
