"""ID3 tags and cover art for the finished MP3.

Tags are ID3 v2.3 (what the widest range of players and phones read): `build_tags`, `cover_frame` and
`lyrics_frame` describe them as mutagen frames from plain data, `write_tags` is the only part touching the
file. Cover art and lyrics are decoration: any failure to fetch them yields none, never a failed track.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path

import requests
from mutagen import MutagenError
from mutagen.id3 import (
    APIC,
    ID3,
    TALB,
    TDRC,
    TIT2,
    TPE1,
    TPE2,
    TPOS,
    TRCK,
    TSRC,
    USLT,
    WXXX,
    Frame,
    PictureType,
)
from PIL import Image

from pipeline.errors import PermanentError
from pipeline.lyrics import Lyrics
from pipeline.models import Track
from pipeline.spotify_parse import release_date

log = logging.getLogger(__name__)

UTF8 = 3  # mutagen writes it as UTF-16 when saving v2.3, which has no UTF-8
SPOTIFY_URL_DESC = "Spotify"
SOURCE_URL_DESC = "Source"
COVER_DESC = "Cover"
LYRICS_LANGUAGE = "XXX"  # ID3's "unknown language": LRCLIB does not say which language the words are in
MAX_COVER_BYTES = 10 * 1024 * 1024


def _position(number: int | None, total: int | None) -> str | None:
    if not number:
        return None
    return f"{number}/{total}" if total else str(number)


def build_tags(track: Track, source_url: str) -> list[Frame]:
    """The text and link frames for `track`, in ID3 v2.4 terms (TDRC); `write_tags` downgrades to v2.3."""
    frames: list[Frame] = [TIT2(encoding=UTF8, text=[track.title])]
    if track.artists:
        frames.append(TPE1(encoding=UTF8, text=list(track.artists)))
    if track.album_artists:
        frames.append(TPE2(encoding=UTF8, text=list(track.album_artists)))
    if track.album:
        frames.append(TALB(encoding=UTF8, text=[track.album]))
    if trck := _position(track.track_number, track.track_total):
        frames.append(TRCK(encoding=UTF8, text=[trck]))
    if tpos := _position(track.disc_number, track.disc_total):
        frames.append(TPOS(encoding=UTF8, text=[tpos]))
    if date := release_date(track.release_date):
        frames.append(TDRC(encoding=UTF8, text=[date]))
    if track.isrc:
        frames.append(TSRC(encoding=UTF8, text=[track.isrc.strip().upper()]))
    if track.spotify_url:
        frames.append(WXXX(encoding=UTF8, desc=SPOTIFY_URL_DESC, url=track.spotify_url))
    if source_url:
        frames.append(WXXX(encoding=UTF8, desc=SOURCE_URL_DESC, url=source_url))
    return frames


def cover_frame(jpeg: bytes) -> APIC:
    return APIC(encoding=UTF8, mime="image/jpeg", type=PictureType.COVER_FRONT, desc=COVER_DESC, data=jpeg)


def lyrics_frame(lyrics: Lyrics) -> USLT:
    """USLT, the frame players commonly read lyrics from. Synced lyrics keep their LRC timestamps: players that
    understand LRC scroll along with them, the others show the lines as they are."""
    return USLT(encoding=UTF8, lang=LYRICS_LANGUAGE, desc="", text=lyrics.text)


def write_tags(
    path: Path, track: Track, source_url: str, cover_jpeg: bytes | None, lyrics: Lyrics | None = None
) -> None:
    """Replace any tag in the MP3 at `path` with ours, saved as ID3 v2.3."""
    tags = ID3()
    for frame in build_tags(track, source_url):
        tags.add(frame)
    if cover_jpeg:
        tags.add(cover_frame(cover_jpeg))
    if lyrics is not None:
        tags.add(lyrics_frame(lyrics))
    tags.update_to_v23()
    try:
        tags.save(path, v2_version=3)
    except (MutagenError, OSError) as error:
        raise PermanentError("could not write the tags", detail=str(error)) from None


def to_jpeg(data: bytes, *, max_size: int | None = None, quality: int = 90) -> bytes:
    """Re-encode an image as baseline RGB JPEG, optionally shrunk to fit max_size×max_size."""
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        if image.mode != "RGB":
            image = image.convert("RGB")
        if max_size is not None:
            image.thumbnail((max_size, max_size))
        out = io.BytesIO()
        image.save(out, format="JPEG", quality=quality, optimize=True)
        return out.getvalue()


def _is_plain_jpeg(data: bytes) -> bool:
    with Image.open(io.BytesIO(data)) as image:
        return image.format == "JPEG" and image.mode == "RGB"


def fetch_cover(url: str | None, timeout: float) -> bytes | None:
    """The cover image as JPEG bytes, or None when it can't be had (logged, never raised)."""
    if not url:
        return None
    try:
        with requests.get(url, timeout=timeout, stream=True) as response:
            response.raise_for_status()
            buffer = bytearray()
            for chunk in response.iter_content(64 * 1024):
                buffer += chunk
                if len(buffer) > MAX_COVER_BYTES:
                    log.info("cover %s is larger than %d bytes; skipped", url, MAX_COVER_BYTES)
                    return None
        data = bytes(buffer)
        return data if _is_plain_jpeg(data) else to_jpeg(data)
    except (requests.RequestException, OSError, ValueError, Image.DecompressionBombError) as error:
        log.info("no cover from %s: %s", url, error)
        return None
