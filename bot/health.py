"""Heartbeats that say the bot and each worker are alive *and working*, for `python -m bot.healthcheck`.

A heartbeat is a small JSON file in `DOWNLOAD_DIR/.spotbot-work/health/` (the work area's sweeper removes only
request folders). Files rather than Redis keys: all-in-one mode has no Redis, a check must not depend on the
thing whose outage it reports, and a file is written by the very process it vouches for, so a frozen process
(SIGSTOP, a deadlock, a stalled event loop) stops writing it.

- **Bot** (`bot.json`): a task on the bot's event loop writes it every few seconds with the last proof of each
  half: *updates* (a getUpdates round trip answered by Telegram; in webhook mode, the webhook server running on
  this same loop) and *delivery* (the events loop read Redis's stream). A stalled half ages its stamp even while
  the loop still writes.
- **Worker** (`worker-<host>-<pid>.json`, one per process): its heartbeat thread writes it after telling Redis it
  is alive, and only while Dramatiq's consumer and worker threads are all running. The check looks at the files
  of its own host (a container's hostname) whose process is still alive.

Pure rules (`bot_problem`, `worker_problem`) decide; the file helpers are thin.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from bot.work_area import WORK_DIR_NAME

log = logging.getLogger(__name__)

BOT_FILE = "bot.json"
WORKER_PREFIX = "worker-"

Beat = dict[str, Any]


def health_dir(download_dir: Path) -> Path:
    return download_dir / WORK_DIR_NAME / "health"


def beat_interval(max_age: float) -> float:
    """How often heartbeats are written: several times per allowed age, at most every 5 s."""
    return min(5.0, max_age / 3)


# --- the rules ------------------------------------------------------------------------------------------------


def bot_problem(beat: Beat | None, now: float, max_age: float) -> str | None:
    """Why the bot is not healthy (None: it is). `beat` is the content of its heartbeat file."""
    if beat is None:
        return "no heartbeat yet (is the bot running?)"
    for key, what in (
        ("at", "the bot's event loop"),
        ("updates", "receiving updates from Telegram"),
        ("delivery", "the delivery loop (Redis)"),
    ):
        stamp = beat.get(key)
        if not isinstance(stamp, int | float) or stamp <= 0:
            return f"{what}: no sign of life yet"
        age = now - stamp
        if age > max_age:
            return f"{what}: last sign of life {age:.0f} s ago (limit {max_age:.0f} s)"
    return None


def worker_problem(beats: Iterable[Beat], alive: Callable[[int], bool], now: float, max_age: float) -> str | None:
    """Why this host's workers are not healthy (None: they are): every live worker process must have beaten
    within `max_age`, and there must be one. Files of processes that are gone are ignored (Dramatiq's parent
    exits when one of its workers dies, so the container restarts anyway)."""
    live = [beat for beat in beats if isinstance(beat.get("pid"), int) and beat["pid"] > 0 and alive(beat["pid"])]
    if not live:
        return "no live worker process has a heartbeat (is `dramatiq bot.worker` running?)"
    for beat in live:
        age = now - float(beat.get("at") or 0)
        if age > max_age:
            return f"worker process {beat['pid']}: last heartbeat {age:.0f} s ago (limit {max_age:.0f} s)"
    return None


# --- files ----------------------------------------------------------------------------------------------------


def write_beat(path: Path, beat: Beat) -> None:
    """Replace the file atomically: a reader never sees half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(beat))
    os.replace(temporary, path)


def read_beat(path: Path) -> Beat | None:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def host_prefix(host: str | None = None) -> str:
    return f"{WORKER_PREFIX}{host or socket.gethostname()}-"


class WorkerBeat:
    """One worker process's heartbeat file."""

    def __init__(self, directory: Path, host: str | None = None, pid: int | None = None) -> None:
        self.directory = directory
        self.host = host or socket.gethostname()
        self.pid = pid or os.getpid()
        self.path = directory / f"{host_prefix(self.host)}{self.pid}.json"

    def stamp(self, now: float | None = None) -> None:
        write_beat(self.path, {"host": self.host, "pid": self.pid, "at": time.time() if now is None else now})

    def clear_leftovers(self, max_age: float, now: float | None = None) -> None:
        """At boot: drop this host's files of processes that are gone or long silent (a previous run of the
        container); live siblings beat every few seconds and write theirs again at once."""
        now = time.time() if now is None else now
        for path in self.directory.glob(f"{host_prefix(self.host)}*.json"):
            beat = read_beat(path) or {}
            if path == self.path or beat.get("host", self.host) != self.host:
                continue
            pid = beat.get("pid")
            if now - float(beat.get("at") or 0) > max_age or not (
                isinstance(pid, int) and pid > 0 and process_alive(pid)
            ):
                with contextlib.suppress(OSError):
                    path.unlink()

    def remove(self) -> None:
        with contextlib.suppress(OSError):
            self.path.unlink()


class BotBeat:
    """The bot's heartbeat file and the in-memory stamp of the updates half (the delivery keeps its own)."""

    def __init__(self, directory: Path, max_age: float) -> None:
        self.path = directory / BOT_FILE
        self.interval = beat_interval(max_age)
        self.updates = 0.0

    def updates_seen(self) -> None:
        self.updates = time.time()

    def write(self, delivery_at: float) -> None:
        write_beat(self.path, {"at": time.time(), "updates": self.updates, "delivery": delivery_at})

    def remove(self) -> None:
        """A clean stop signs off (the check then says the bot is not running, rather than frozen)."""
        with contextlib.suppress(OSError):
            self.path.unlink()

    async def run(self, delivery_at: Callable[[], float], receiving: Callable[[], bool] | None = None) -> None:
        """Write the file every `interval` until cancelled. `receiving`: webhook mode's proof of the updates
        half (no getUpdates round trips there), asked on each beat."""
        while True:
            if receiving is not None and receiving():
                self.updates_seen()
            try:
                self.write(delivery_at())
            except OSError as error:  # a full or read-only disk: the check reports the stale file
                log.warning("could not write the heartbeat %s: %s", self.path, error)
            await asyncio.sleep(self.interval)


def host_worker_beats(directory: Path, host: str | None = None) -> list[Beat]:
    """The heartbeats of this host's worker processes (a container's hostname is its own)."""
    host = host or socket.gethostname()
    beats = (read_beat(path) for path in sorted(directory.glob(f"{host_prefix(host)}*.json")))
    return [beat for beat in beats if beat is not None and beat.get("host") == host]
