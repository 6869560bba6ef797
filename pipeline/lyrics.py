"""Song lyrics from LRCLIB (https://lrclib.net/docs), for the MP3's USLT frame and the CLI's `.lrc` files.

LRCLIB files lyrics by title, artist, album and duration, and holds live and re-recorded versions under the
same title. So a record counts only when the project's matcher (`pipeline.matching`) would accept it as the
track, as it would a search result; among those the nearest in duration, then the same album, then synced
over plain lyrics wins. Synced lyrics whose record differs in duration by more than LRCLIB's own ±2 s are
timed for another edit: only their words are used.

The choice is pure (`best_record`, `lyrics_of`); `LrclibClient` is the thin HTTP adapter (`/api/get` with
the track's signature, `/api/search` when that finds nothing good). Lyrics are decoration: `PendingLyrics`
runs the lookup beside the download, waits for it at most HTTP_TIMEOUT in all, and turns every failure
into "no lyrics", logged once, never a failed or delayed track.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Final

import requests
from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.alias_generators import to_camel

from pipeline.errors import PermanentError, PipelineError
from pipeline.http import request_error, status_error
from pipeline.matching import Wanted, parse_title, score_wanted, similarity
from pipeline.models import Candidate, Track

__all__ = [
    "LrclibClient",
    "LrclibRecord",
    "Lyrics",
    "PendingLyrics",
    "best_record",
    "duration_param",
    "get_params",
    "lyrics_of",
    "parse_records",
    "plain_text",
    "search_params",
    "start_lyrics",
]

log = logging.getLogger(__name__)

SERVICE: Final = "LRCLIB"
# LRCLIB asks clients to name themselves (application, and where to find it).
USER_AGENT: Final = "spotbot/0.1 (self-hosted Spotify-to-MP3 Telegram bot; python-requests)"
MIN_DURATION_S, MAX_DURATION_S = 1, 3600  # what /api/get accepts; it answers 400 otherwise
SYNC_TOLERANCE_S: Final = 2.0  # LRCLIB's own tolerance: beyond it, timestamps belong to another edit
ALBUM_AGREES: Final = 0.9
MAX_LYRICS_CHARS: Final = 100_000  # a song's lyrics are a few kB; anything bigger is not lyrics
_TIMESTAMP = re.compile(r"^\s*(?:\[\d{1,3}:\d{1,2}(?:[.:]\d{1,3})?\]\s*)+")
_ID_TAG = re.compile(r"^\s*\[[a-zA-Z#]+:[^\]]*\]\s*$")  # [ar: Artist], [offset:+100], [length: 3:33]


@dataclass(frozen=True)
class Lyrics:
    """What goes into the USLT frame: LRC text ("[00:17.12] words", one line each) when `synced`."""

    text: str
    synced: bool


class LrclibRecord(BaseModel):
    """One LRCLIB lyrics record, as /api/get answers it and /api/search lists it (unknown fields ignored)."""

    model_config = ConfigDict(alias_generator=to_camel, frozen=True)

    id: int | None = None
    track_name: str
    artist_name: str
    album_name: str | None = None
    duration: float | None = None
    instrumental: bool = False
    plain_lyrics: str | None = None
    synced_lyrics: str | None = None


# --- the request (pure) -----------------------------------------------------------------------------


def duration_param(duration_ms: int) -> int | None:
    """The track's duration in whole seconds as LRCLIB takes it, or None (leave it out) outside 1–3600."""
    seconds = round(duration_ms / 1000)
    return seconds if MIN_DURATION_S <= seconds <= MAX_DURATION_S else None


def get_params(track: Track) -> dict[str, str | int]:
    """/api/get's query: the track's signature; album and duration only when known (both are optional)."""
    params: dict[str, str | int] = {"track_name": track.title, "artist_name": ", ".join(track.artists)}
    if track.album:
        params["album_name"] = track.album
    if (duration := duration_param(track.duration_ms)) is not None:
        params["duration"] = duration
    return params


def search_params(track: Track) -> dict[str, str]:
    """/api/search's query: title and main artist only, so other albums and durations come back to be ranked."""
    params = {"track_name": track.title}
    if track.main_artist:
        params["artist_name"] = track.main_artist
    return params


# --- the answer (pure) ------------------------------------------------------------------------------


def parse_records(payload: Any) -> list[LrclibRecord]:
    """The usable records of a /api/search list (or one /api/get object); malformed items are skipped."""
    items = payload if isinstance(payload, list) else [payload]
    records = []
    for item in items:
        try:
            records.append(LrclibRecord.model_validate(item))
        except ValidationError:
            log.debug("skipped a malformed LRCLIB record: %.200r", item)
    return records


def _text(value: str | None) -> str | None:
    if not value:
        return None
    text = value.replace("\r\n", "\n").replace("\r", "\n").strip()
    return text if text and len(text) <= MAX_LYRICS_CHARS else None


def plain_text(synced: str) -> str:
    """The words of LRC text: timestamps and ID tags ([ar:…], [offset:…]) dropped."""
    lines = [_TIMESTAMP.sub("", line).rstrip() for line in synced.splitlines() if not _ID_TAG.match(line)]
    return "\n".join(lines).strip()


def _gap(track: Track, record: LrclibRecord) -> float | None:
    if not track.duration_ms or record.duration is None:
        return None
    return abs(track.duration_ms / 1000 - record.duration)


def _as_candidate(record: LrclibRecord) -> Candidate:
    """A record seen as a search result, so the one matcher judges whether it is this recording."""
    return Candidate(
        url=f"lrclib:{record.id}",
        title=record.track_name,
        artist=record.artist_name,
        album=record.album_name or None,
        duration_s=record.duration,
        source="lrclib",
        result_type="song",  # label-style metadata: the artist is credited, not guessed from the title
    )


def lyrics_of(record: LrclibRecord, track: Track) -> Lyrics | None:
    """The record's lyrics for `track`: synced when their timing fits it, else the words; None when it is
    instrumental or has nothing."""
    if record.instrumental:
        return None
    synced = _text(record.synced_lyrics)
    gap = _gap(track, record)
    if synced and (gap is None or gap <= SYNC_TOLERANCE_S):
        return Lyrics(synced, synced=True)
    plain = _text(record.plain_lyrics) or (_text(plain_text(synced)) if synced else None)
    return Lyrics(plain, synced=False) if plain else None


def _same_album(wanted: Wanted, record: LrclibRecord) -> bool:
    if not wanted.album or not record.album_name:
        return False  # unknown on either side: no evidence either way
    return similarity(wanted.album, parse_title(record.album_name).core) >= ALBUM_AGREES


def best_record(track: Track, records: Iterable[LrclibRecord]) -> LrclibRecord | None:
    """The record that is this track, or None when none is acceptable. It may be instrumental (then the track
    has no lyrics: `lyrics_of` says None). Records with neither lyrics nor the instrumental mark say nothing.

    Ranked by: duration within LRCLIB's ±2 s (or unknown), then the same album, then synced over plain over
    instrumental, then the matcher's score; equals keep LRCLIB's order."""
    wanted = Wanted.of(track)
    ranked: list[tuple[tuple[bool, bool, int, float], LrclibRecord]] = []
    for record in records:
        found = lyrics_of(record, track)
        if found is None and not record.instrumental:
            continue
        scored = score_wanted(wanted, _as_candidate(record))
        if not scored.acceptable:
            continue
        gap = _gap(track, record)
        close = gap is None or gap <= SYNC_TOLERANCE_S
        kind = 0 if found is None else 2 if found.synced else 1
        ranked.append(((close, _same_album(wanted, record), kind, scored.score), record))
    if not ranked:
        return None
    return max(ranked, key=lambda item: item[0])[1]  # max keeps the first of equals


# --- the adapter ------------------------------------------------------------------------------------


class LrclibClient:
    """LRCLIB's two read calls for one track: `/api/get` with its signature, then `/api/search` when that
    finds no acceptable record. Raises PipelineError when the service fails (5xx, 429, no answer)."""

    def __init__(self, base_url: str, *, timeout: float) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def lookup(self, track: Track) -> Lyrics | None:
        with requests.Session() as http:
            http.headers["User-Agent"] = USER_AGENT
            record = best_record(track, self._get(http, track))
            if record is None:
                record = best_record(track, self._search(http, track))
        if record is None:
            log.debug("%s: no lyrics on LRCLIB", track.spotify_id)
            return None
        return lyrics_of(record, track)

    def _get(self, http: requests.Session, track: Track) -> list[LrclibRecord]:
        status, payload = self._call(http, "/api/get", get_params(track))
        if status == 200:
            return parse_records(payload)
        log.debug("%s: LRCLIB /api/get answered HTTP %d; searching instead", track.spotify_id, status)
        return []  # 404 TrackNotFound, or a signature it refused (400): the search may still find it

    def _search(self, http: requests.Session, track: Track) -> list[LrclibRecord]:
        status, payload = self._call(http, "/api/search", search_params(track))
        if status != 200:
            raise PermanentError(f"{SERVICE} answered HTTP {status}", detail=f"HTTP {status} for /api/search")
        return parse_records(payload)

    def _call(self, http: requests.Session, path: str, params: Mapping[str, str | int]) -> tuple[int, Any]:
        """(status, JSON body of a 200); a failure worth no further call raises."""
        url = self.base_url + path
        try:
            response = http.get(url, params=params, timeout=self.timeout)
        except requests.RequestException as error:
            raise request_error(error, service=SERVICE, detail=f"{path}: {error!r}") from error
        with response:
            detail = f"HTTP {response.status_code} for {path}"
            if failure := status_error(response.status_code, response.headers, service=SERVICE, detail=detail):
                raise failure
            if response.status_code != 200:
                return response.status_code, None
            try:
                return 200, response.json()
            except ValueError as error:
                raise PermanentError(f"{SERVICE} answered something else than JSON", detail=detail) from error


class PendingLyrics:
    """A lookup running in its own thread beside the download. `result()` waits for it until `budget` seconds
    after it started at most, then gives up on it (a daemon thread: it ends with its own timeouts)."""

    def __init__(self, lookup: Callable[[], Lyrics | None], *, budget: float, label: str) -> None:
        self.label = label
        self.budget = budget
        self._deadline = time.monotonic() + budget
        self._future: Future[Lyrics | None] = Future()
        self._thread = threading.Thread(target=self._run, args=(lookup,), name=f"lyrics-{label}", daemon=True)
        self._thread.start()

    def _run(self, lookup: Callable[[], Lyrics | None]) -> None:
        try:
            self._future.set_result(lookup())
        except BaseException as error:  # reported by result(), the one place that logs
            self._future.set_exception(error)

    def result(self) -> Lyrics | None:
        """The lyrics, or None (not found, failed, or too slow: logged here, once)."""
        try:
            return self._future.result(timeout=max(0.0, self._deadline - time.monotonic()))
        except TimeoutError:
            log.info("%s: no lyrics: %s did not answer within %g s", self.label, SERVICE, self.budget)
        except PipelineError as error:
            log.info("%s: no lyrics: %s: %s", self.label, SERVICE, error.detail or error.reason)
        except Exception as error:  # a bug here must cost the lyrics only, never the track
            log.warning("%s: no lyrics: unexpected %r", self.label, error)
        return None


def start_lyrics(track: Track, base_url: str, *, timeout: float) -> PendingLyrics:
    """Look up `track`'s lyrics on the LRCLIB at `base_url` in the background; wait at most `timeout` for them."""
    client = LrclibClient(base_url, timeout=timeout)
    return PendingLyrics(lambda: client.lookup(track), budget=timeout, label=track.spotify_id)
