"""The folder the bot and its workers own inside DOWNLOAD_DIR, and the only place they ever delete.

Layout: `DOWNLOAD_DIR/.spotbot-work/<request id>/<track index>/<attempt id>/Artist - Title.mp3`. Each run of a
track works in its own attempt folder (a duplicate run of the same track never touches another run's
files), and the pipeline moves the finished MP3 into it atomically. The sweeper removes only folders named
like a request id, under this root: whatever else lives in DOWNLOAD_DIR is the person's own.
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

from bot.requests import REQUEST_ID

log = logging.getLogger(__name__)

WORK_DIR_NAME = ".spotbot-work"


class WorkArea:
    def __init__(self, download_dir: Path) -> None:
        self.root = download_dir / WORK_DIR_NAME

    def request_dir(self, rid: str) -> Path:
        if not REQUEST_ID.fullmatch(rid):
            raise ValueError(f"not a request id: {rid!r}")
        return self.root / rid

    def attempt_dir(self, rid: str, index: int, attempt: str) -> Path:
        return self.request_dir(rid) / str(index) / attempt

    def remove_request(self, rid: str) -> None:
        shutil.rmtree(self.request_dir(rid), ignore_errors=True)

    def remove_folder(self, folder: Path) -> None:
        """Remove an attempt folder; anything outside the work area (after `..` and links) is left alone."""
        try:
            real = folder.resolve(strict=True)
            real.relative_to(self.root.resolve(strict=True))
        except (OSError, ValueError):
            return  # gone already, or not ours
        if real != self.root.resolve() and not folder.is_symlink():
            shutil.rmtree(real, ignore_errors=True)

    def sweep(self, active: set[str], older_than: float, now: float | None = None) -> list[Path]:
        """Remove request folders of no open request, untouched for `older_than` seconds (a crash's leftovers)."""
        if not self.root.is_dir():
            return []
        now = time.time() if now is None else now
        removed = []
        for entry in self.root.iterdir():
            if not REQUEST_ID.fullmatch(entry.name) or entry.name in active or entry.is_symlink():
                continue
            try:
                if entry.is_dir() and now - entry.stat().st_mtime > older_than:
                    shutil.rmtree(entry, ignore_errors=True)
                    removed.append(entry)
            except FileNotFoundError:
                continue
        if removed:
            log.info("swept %d orphaned folder(s) from %s", len(removed), self.root)
        return removed
