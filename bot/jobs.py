"""The work behind the actors: resolve a link into tracks, and turn one track into a file ready to send.

Each method is idempotent: a message redelivered after a crash, or a duplicate, finds the state and
does nothing twice. Permanent failures are written to the track's state at once; transient ones
are re-raised so that Dramatiq's Retries middleware retries them with backoff (or after the
server's Retry-After via `dramatiq.Retry`).
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from functools import cached_property
from pathlib import Path

import dramatiq

from bot.requests import Resolution, TrackState
from bot.settings import ServiceSettings
from bot.state import RequestStore
from pipeline.errors import Cancelled, PermanentError, RateLimited, TooLarge, TransientError
from pipeline.links import RejectedLink, ShortLink, parse_link
from pipeline.metadata import SpotifyMetadata
from pipeline.models import Collection
from pipeline.shortlinks import resolve_short_link
from pipeline.sources import SearchProvider, load_providers
from pipeline.track_job import fetch_track

log = logging.getLogger(__name__)


def rate_limit_delay(error: RateLimited, limit: float) -> int | None:
    """Milliseconds to wait before retrying, or None when the wait is beyond the configured limit."""
    wait = error.retry_after if error.retry_after is not None else 30.0
    return None if wait > limit else int(wait * 1000)


def retry_later(error: TransientError) -> dramatiq.Retry:
    """A passing failure, handed to Dramatiq's Retries middleware as `Retry`: it waits the server's Retry-After
    if there was one, else the actor's backoff, and logs one line instead of the traceback of an "unhandled"
    exception (expected failures are logged by us, once)."""
    delay = int(error.retry_after * 1000) if error.retry_after else None
    return dramatiq.Retry(str(error), delay=delay)


def too_long_reason(error: RateLimited) -> str:
    minutes = max(1, round((error.retry_after or 0) / 60))
    return f"{error.reason}: asked to wait about {minutes} min, more than allowed; try again later"


class TrackJobs:
    def __init__(self, settings: ServiceSettings, store: RequestStore) -> None:
        self.settings = settings
        self.store = store
        self._local = threading.local()

    @cached_property
    def metadata(self) -> SpotifyMetadata:
        return SpotifyMetadata(self.settings)

    @property
    def providers(self) -> list[tuple[str, SearchProvider]]:
        """One set per worker thread: search clients (ytmusicapi) are not documented as thread-safe."""
        providers = getattr(self._local, "providers", None)
        if providers is None:
            providers = self._local.providers = load_providers(self.settings)
        return providers

    def request_dir(self, rid: str) -> Path:
        return self.settings.download_dir / rid

    # --- resolve ------------------------------------------------------------------------------------
    def resolve(self, rid: str) -> None:
        meta = self.store.meta(rid)
        if meta is None or self.store.phase(rid) != "resolving":
            return
        if self.store.is_cancelled(rid):
            self.store.fail(rid, "cancelled")
            return
        try:
            collection = self._collection(meta.link)
        except PermanentError as error:
            self.store.fail(rid, error.reason)
            return
        except RateLimited as error:
            delay = rate_limit_delay(error, self.settings.spotify_max_retry_after)
            if delay is None:
                self.store.fail(rid, too_long_reason(error))
                return
            self.store.set_retry_at(rid, time.time() + delay / 1000)
            raise dramatiq.Retry(str(error), delay=delay) from error
        except TransientError as error:
            log.warning("request %s: reading the link failed for now: %s", rid, error)
            raise retry_later(error) from error
        self._store_collection(rid, collection)

    def _collection(self, link: str) -> Collection:
        parsed = parse_link(link)
        if isinstance(parsed, ShortLink):
            parsed = resolve_short_link(
                parsed, timeout=self.settings.http_timeout, base_url=self.settings.spotify_shortlink_url
            )
        if parsed is None or isinstance(parsed, (RejectedLink, ShortLink)):
            reason = parsed.reason if isinstance(parsed, RejectedLink) else "not a Spotify link"
            raise PermanentError(reason)
        return self.metadata.resolve(parsed.kind, parsed.id)

    def _store_collection(self, rid: str, collection: Collection) -> None:
        tracks = collection.tracks[: self.settings.max_tracks_per_request]
        audio_key = self.settings.audio_settings_key
        states = []
        for track in tracks:
            upload = self.store.cached_upload(audio_key, track.spotify_id)
            if upload:
                states.append(TrackState(status="ready", **upload))
            else:
                states.append(TrackState())
        resolution = Resolution(
            kind=collection.kind,
            name=collection.name,
            owner=collection.owner,
            total=len(tracks),
            available=len(collection.tracks),
            truncated=collection.truncated,
            skipped=collection.skipped,
        )
        self.store.set_resolution(rid, resolution, tracks, states)
        if not tracks:
            log.info("request %s: nothing to fetch", rid)

    def resolve_gave_up(self, rid: str) -> None:
        self.store.fail(rid, "Spotify could not be reached; please try again later")

    # --- one track ----------------------------------------------------------------------------------
    def process(self, rid: str, index: int) -> None:
        state, track = self.store.state(rid, index), self.store.track(rid, index)
        if state is None or track is None or state.terminal:
            return  # expired, or a redelivered / duplicate message of a settled track
        if self.store.is_cancelled(rid):
            self.store.update_state(rid, index, status="cancelled")
            return
        self.store.update_state(rid, index, status="running", step="starting", started_at=time.time(), retry_at=None)
        out_dir = self.request_dir(rid) / str(index)
        try:
            self._fetch(rid, index, out_dir)
        except Cancelled:
            shutil.rmtree(out_dir, ignore_errors=True)
            self.store.update_state(rid, index, status="cancelled", step=None)
        except PermanentError as error:
            shutil.rmtree(out_dir, ignore_errors=True)
            log.info("request %s track %d failed: %s", rid, index, error)
            self.store.update_state(rid, index, status="failed", reason=error.reason, step=None)
        except RateLimited as error:
            shutil.rmtree(out_dir, ignore_errors=True)
            delay = rate_limit_delay(error, self.settings.spotify_max_retry_after)
            if delay is None:
                self.store.update_state(rid, index, status="failed", reason=too_long_reason(error), step=None)
                return
            self.store.update_state(
                rid, index, status="retrying", reason=error.reason, retry_at=time.time() + delay / 1000, step=None
            )
            raise dramatiq.Retry(str(error), delay=delay) from error
        except TransientError as error:
            shutil.rmtree(out_dir, ignore_errors=True)
            log.warning("request %s track %d failed for now: %s", rid, index, error)
            self.store.update_state(rid, index, status="retrying", reason=error.reason, step=None)
            raise retry_later(error) from error
        except Exception:
            shutil.rmtree(out_dir, ignore_errors=True)
            log.exception("request %s track %d: unexpected error", rid, index)
            self.store.update_state(rid, index, status="retrying", reason="unexpected error", step=None)
            raise

    def _fetch(self, rid: str, index: int, out_dir: Path) -> None:
        track = self.store.track(rid, index)
        assert track is not None
        track = self.metadata.enrich(track)

        def cancelled() -> bool:
            return self.store.is_cancelled(rid)

        def on_step(step: str) -> None:
            self.store.update_state(rid, index, step=step)

        fetched = fetch_track(
            track, self.settings, providers=self.providers, out_dir=out_dir, cancel=cancelled, on_step=on_step
        )
        limit = self.settings.upload_limit_bytes
        if fetched.size_bytes > limit:
            raise TooLarge(
                f"file too large for Telegram ({fetched.size_bytes / 2**20:.1f} MB > {limit / 2**20:.1f} MB)"
            )
        thumb_path = None
        if fetched.thumbnail:
            thumb_path = out_dir / "thumbnail.jpg"
            thumb_path.write_bytes(fetched.thumbnail)
        if cancelled():
            raise Cancelled()
        self.store.update_state(
            rid,
            index,
            status="ready",
            step=None,
            reason=None,
            path=str(fetched.path),
            thumb_path=str(thumb_path) if thumb_path else None,
            title=track.title,
            performer=", ".join(track.artists),
            duration_s=fetched.duration_s,
            size_bytes=fetched.size_bytes,
            finished_at=time.time(),
        )

    def track_gave_up(self, rid: str, index: int) -> None:
        state = self.store.state(rid, index)
        reason = state.reason if state and state.reason else "temporary problem"
        tries = self.settings.track_max_retries + 1
        attempts = "1 try" if tries == 1 else f"{tries} tries"
        self.store.update_state(rid, index, status="failed", reason=f"{reason} (gave up after {attempts})")
        shutil.rmtree(self.request_dir(rid) / str(index), ignore_errors=True)
