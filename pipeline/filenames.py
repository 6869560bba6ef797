"""File names for finished tracks, built from untrusted metadata (titles can say anything).

Names must be valid on every platform a user may copy the file to (pathvalidate "universal"),
fit common file systems (255 bytes), never escape the download directory, and never be empty.
They must also show what they are: invisible format characters (Unicode category Cf: bidi overrides such
as U+202E, which make a name display in another order than it has, zero-width spaces, BOMs) are dropped,
since pathvalidate keeps them.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

from pathvalidate import sanitize_filename

from pipeline.models import Track

EXTENSION = ".mp3"
MAX_NAME_BYTES = 240  # below ext4/btrfs's 255 so tools can add a suffix; counts UTF-8 bytes
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_SEPARATORS = re.compile(r"[/\\]")


def _truncate_utf8(text: str, max_bytes: int) -> str:
    return text.encode("utf-8")[:max_bytes].decode("utf-8", "ignore")


def _without_invisible(text: str) -> str:
    """Drops format characters (Cf) and lone surrogates (Cs: JSON can carry them, UTF-8 cannot encode them)."""
    if text.isascii():
        return text
    return "".join(ch for ch in text if unicodedata.category(ch) not in ("Cf", "Cs"))


def clean_part(text: str) -> str:
    """One name component: no control or invisible format characters, separators or reserved names; no leading
    dots or dashes."""
    text = _CONTROL.sub(" ", _without_invisible(text))
    text = _SEPARATORS.sub("-", text)
    text = " ".join(text.split())
    text = sanitize_filename(text, platform="universal")
    return text.lstrip(". -").rstrip()


def track_filename(track: Track) -> str:
    """`Artist, Artist - Title.mp3`, safe anywhere; the Spotify id when the metadata leaves nothing."""
    artist = clean_part(", ".join(track.artists))
    title = clean_part(track.title)
    stem = " - ".join(part for part in (artist, title) if part) or clean_part(track.spotify_id) or "track"
    stem = clean_part(_truncate_utf8(stem, MAX_NAME_BYTES - len(EXTENSION)))
    # Sanitising the whole name also catches reserved stems (a stem "CON" becomes "CON_").
    return sanitize_filename(stem + EXTENSION, platform="universal")


def numbered_filename(filename: str, number: int) -> str:
    """`filename` with " (number)" before its extension, for a second track of the same name: "A - B (2).mp3".
    The stem is cut (on a character boundary) so that the result still fits MAX_NAME_BYTES."""
    stem, dot, extension = filename.rpartition(".")
    if not dot:
        stem, extension = filename, ""
    suffix = f" ({number})" + (dot + extension)
    stem = _truncate_utf8(stem, MAX_NAME_BYTES - len(suffix.encode("utf-8"))).rstrip(". ")
    return stem + suffix


def safe_join(directory: Path, filename: str) -> Path:
    """`directory / filename`, refusing anything that would land outside `directory`."""
    base = Path(directory).resolve()
    if filename in ("", ".", "..") or _SEPARATORS.search(filename) or "\x00" in filename:
        raise ValueError(f"not a plain file name: {filename!r}")
    target = base / filename
    if target.resolve().parent != base:
        raise ValueError(f"{filename!r} escapes {base}")
    return target
