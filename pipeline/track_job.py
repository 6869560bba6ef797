"""One track, start to finish: search, pick, download, convert, tag, and place the MP3.

Everything a job writes lives in one temporary directory inside `out_dir` (same file system, so
the finished file is moved into place atomically) and that directory is removed however the job
ends: success, error, timeout or cancel. A candidate that fails to download or convert makes way
for the next one; a bot check stops the job at once, since every other candidate would hit it too.
Lyrics (LYRICS=on) are looked up beside the search and download and waited for at tagging time, at most
HTTP_TIMEOUT after they were asked for: they never fail a track, and delay it by at most that.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pipeline.convert import ffmpeg_executable, mp3_duration, to_mp3
from pipeline.download import download_audio
from pipeline.errors import (
    Cancelled,
    ConfigurationError,
    NoConfidentMatch,
    PermanentError,
    PipelineError,
    SourceBlocked,
    TransientError,
    Unavailable,
)
from pipeline.filenames import safe_join, track_filename
from pipeline.lyrics import Lyrics, PendingLyrics, start_lyrics
from pipeline.matching import accepted, conclusive
from pipeline.models import Candidate, Track
from pipeline.settings import PipelineSettings
from pipeline.sources import SearchProvider
from pipeline.tagging import fetch_cover, write_tags

log = logging.getLogger(__name__)

WORKDIR_PREFIX = ".work-"


@dataclass(frozen=True)
class FetchedTrack:
    path: Path  # final tagged MP3 in out_dir, named by track_filename
    candidate: Candidate  # the recording used
    duration_s: float
    size_bytes: int
    cover: bytes | None  # the JPEG embedded in the tags, for a front end's own preview (the bot's thumbnail)
    lyrics: Lyrics | None = None  # what the USLT frame holds (the CLI's --lrc writes synced ones to a file)


SEARCH_CALLS_PER_PROVIDER = 4  # ISRC, songs, videos queries (+1 spare); a plugin is held to the same budget
SPOTIFY_CALLS = 4  # enriching a track: one call, retried up to 3 times on 5xx
MARGIN_SECONDS = 60.0


def worst_case_seconds(settings: PipelineSettings) -> float:
    """How long `fetch_track` can take when every step runs into its own timeout: a run still going after
    this is stuck (a time limit below it would kill runs that would have finished)."""
    lyrics_wait = 1 if settings.lyrics else 0  # tagging waits for the lyrics up to one HTTP_TIMEOUT
    calls = len(settings.audio_sources) * SEARCH_CALLS_PER_PROVIDER + SPOTIFY_CALLS + 1 + lyrics_wait
    network = calls * settings.http_timeout
    per_candidate = settings.download_timeout + settings.ffmpeg_timeout
    return network + settings.max_candidates * per_candidate + MARGIN_SECONDS


def _check(cancel: Callable[[], bool]) -> None:
    if cancel():
        raise Cancelled()


def search_candidates(
    track: Track, providers: list[tuple[str, SearchProvider]]
) -> tuple[list[Candidate], list[PipelineError]]:
    """Candidates of the providers in order, and the failures of those that could not answer.

    Stops early once the candidates so far hold a conclusive match (e.g. YouTube Music found the
    official audio by ISRC): the next providers would only cost time and requests.
    """
    candidates: list[Candidate] = []
    failures: list[PipelineError] = []
    for name, provider in providers:
        try:
            found = list(provider.search(track))
        except Cancelled:
            raise
        except PipelineError as error:
            log.warning("%s: search on %s failed: %s (%s)", track.spotify_id, name, error.reason, error.detail)
            failures.append(error)
            continue
        except Exception as error:  # a third-party provider's bug must not sink the other providers
            log.warning("%s: search on %s failed: %r", track.spotify_id, name, error)
            failures.append(TransientError("the audio search failed", detail=repr(error)))
            continue
        log.debug("%s: %s offered %d candidate(s)", track.spotify_id, name, len(found))
        candidates.extend(found)
        if conclusive(track, candidates):
            break
    return candidates, failures


def no_match_error(failures: list[PipelineError]) -> PipelineError:
    """Why nothing acceptable was found: a provider's passing failure means "try again later", a
    permanent one (e.g. YouTube's bot check) is worth telling; otherwise there is no confident match."""
    transient = [error for error in failures if isinstance(error, TransientError)]
    if transient:
        retry_after = next((e.retry_after for e in transient if e.retry_after), None)
        detail = "; ".join(f"{e.reason} ({e.detail})" for e in failures)
        return TransientError("could not search for the audio; will try again", retry_after=retry_after, detail=detail)
    if failures:
        return failures[0]
    return NoConfidentMatch("no confident match on YouTube")


def fetch_track(
    track: Track,
    settings: PipelineSettings,
    *,
    providers: list[tuple[str, SearchProvider]],
    out_dir: Path,
    cancel: Callable[[], bool] = lambda: False,
    on_step: Callable[[str], None] | None = None,
) -> FetchedTrack:
    """Find, download, convert and tag `track` into `out_dir`; raise a PipelineError saying why not."""
    step = on_step or (lambda _name: None)
    _check(cancel)
    lyrics = start_lyrics(track, settings.lyrics_url, timeout=settings.http_timeout) if settings.lyrics else None
    step("searching")
    candidates, failures = search_candidates(track, providers)
    chosen = accepted(track, candidates)
    if not chosen:
        raise no_match_error(failures)
    _check(cancel)
    out_dir.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix=WORKDIR_PREFIX, dir=out_dir))
    try:
        tried = chosen[: settings.max_candidates]
        return _first_working(track, settings, tried, workdir, out_dir, cancel, step, lyrics)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _first_working(
    track: Track,
    settings: PipelineSettings,
    candidates: list[Candidate],
    workdir: Path,
    out_dir: Path,
    cancel: Callable[[], bool],
    step: Callable[[str], None],
    pending_lyrics: PendingLyrics | None,
) -> FetchedTrack:
    ffmpeg = ffmpeg_executable(settings)
    cover: bytes | None = None
    cover_fetched = False
    failures: list[PipelineError] = []
    for index, candidate in enumerate(candidates):
        attempt_dir = workdir / f"candidate-{index}"
        attempt_dir.mkdir()
        try:
            _check(cancel)
            step("downloading")
            source = download_audio(candidate.url, attempt_dir, settings, cancel=cancel, extractor=candidate.extractor)
            _check(cancel)
            step("converting")
            mp3 = to_mp3(
                source,
                attempt_dir / "audio.mp3",
                settings.mp3_quality,
                timeout=settings.ffmpeg_timeout,
                cancel=cancel,
                ffmpeg=ffmpeg,
            )
            duration = mp3_duration(mp3)
        except (Cancelled, SourceBlocked, ConfigurationError):
            raise
        except (TransientError, PermanentError) as error:  # this candidate only (Unavailable, 5xx, bad file)
            log.info("%s: candidate %s failed: %s (%s)", track.spotify_id, candidate.url, error.reason, error.detail)
            failures.append(error)
            shutil.rmtree(attempt_dir, ignore_errors=True)
            continue
        _check(cancel)
        step("tagging")
        if not cover_fetched:
            cover, cover_fetched = fetch_cover(track.cover_url, settings.http_timeout), True
        lyrics = pending_lyrics.result() if pending_lyrics else None
        write_tags(mp3, track, candidate.url, cover, lyrics)
        _check(cancel)
        final = safe_join(out_dir, track_filename(track))
        os.replace(mp3, final)
        return FetchedTrack(final, candidate, duration, final.stat().st_size, cover, lyrics)
    raise _overall_failure(failures)


def _overall_failure(failures: list[PipelineError]) -> PipelineError:
    """Retry later if any candidate failed for a passing reason; otherwise none of them can be had."""
    transient = [error for error in failures if isinstance(error, TransientError)]
    if transient:
        return transient[-1]
    detail = "; ".join(f"{error.reason} ({error.detail})" for error in failures)
    return Unavailable("no downloadable recording found", detail=detail[-1000:])
