"""The small picture Telegram shows next to an audio: made by the bot from the cover the pipeline embedded.

Telegram's limits (JPEG, at most 320×320, under 200 kB) are the bot's business; the pipeline only hands
over the cover (`FetchedTrack.cover`). A thumbnail is decoration: no cover or a broken one means none.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Final

from pipeline.tagging import to_jpeg

log = logging.getLogger(__name__)

# Bot API, sendAudio's thumbnail: a JPEG under 200 kB whose width and height do not exceed 320.
THUMBNAIL_SIZE: Final = 320
THUMBNAIL_MAX_BYTES: Final = 200 * 1000
THUMBNAIL_NAME: Final = "thumbnail.jpg"
_QUALITIES: Final = (87, 75, 60, 45, 30)


def make_thumbnail(jpeg: bytes) -> bytes:
    """A Telegram audio thumbnail of an image: JPEG within 320×320 and under 200 kB, in the best quality that
    fits (a noisy cover can need a low one). Raises OSError/ValueError for what is not an image."""
    for quality in _QUALITIES:
        thumb = to_jpeg(jpeg, max_size=THUMBNAIL_SIZE, quality=quality)
        if len(thumb) < THUMBNAIL_MAX_BYTES:
            return thumb
    return to_jpeg(jpeg, max_size=THUMBNAIL_SIZE // 2, quality=_QUALITIES[-1])


def write_thumbnail(cover: bytes | None, directory: Path) -> Path | None:
    """The thumbnail of `cover`, written as `directory/thumbnail.jpg`; None when there is no cover or it cannot
    be made (logged: the audio is sent without one)."""
    if not cover:
        return None
    try:
        thumb = make_thumbnail(cover)
    except (OSError, ValueError) as error:  # PIL's UnidentifiedImageError is an OSError
        log.info("no thumbnail: %s", error)
        return None
    path = directory / THUMBNAIL_NAME
    path.write_bytes(thumb)
    return path
