"""bot.thumbnails: Telegram's audio thumbnail, made from the cover the pipeline hands over."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from PIL import Image

from bot.thumbnails import THUMBNAIL_MAX_BYTES, THUMBNAIL_NAME, make_thumbnail, write_thumbnail


def jpeg(size: tuple[int, int], mode: str = "RGB") -> bytes:
    noise = Image.frombytes(mode, size, os.urandom(size[0] * size[1] * len(mode)))  # hard to compress
    out = io.BytesIO()
    noise.convert("RGB").save(out, format="JPEG", quality=100)
    return out.getvalue()


@pytest.mark.parametrize(("size", "mode"), [((3000, 2000), "RGB"), ((100, 400), "RGBA"), ((50, 50), "L")])
def test_thumbnail_fits_telegram_limits(size: tuple[int, int], mode: str) -> None:
    thumb = make_thumbnail(jpeg(size, mode))
    assert len(thumb) < THUMBNAIL_MAX_BYTES
    with Image.open(io.BytesIO(thumb)) as image:
        assert image.format == "JPEG"
        assert max(image.size) <= 320
        assert image.size[0] / image.size[1] == pytest.approx(size[0] / size[1], rel=0.05)


def test_written_next_to_the_audio(tmp_path: Path) -> None:
    path = write_thumbnail(jpeg((640, 640)), tmp_path)
    assert path == tmp_path / THUMBNAIL_NAME
    with Image.open(path) as image:
        assert image.format == "JPEG" and image.size == (320, 320)


@pytest.mark.parametrize("cover", [None, b"", b"not an image", jpeg((10, 10))[:40]])
def test_no_or_broken_cover_means_no_thumbnail(cover: bytes | None, tmp_path: Path) -> None:
    assert write_thumbnail(cover, tmp_path) is None
    assert list(tmp_path.iterdir()) == []
