"""Runs the real product for end-to-end tests: `python -m bot` and `dramatiq bot.worker` as processes.

They talk to the fakes over 127.0.0.1 exactly as they would talk to Telegram, Spotify and YouTube in
production; Redis is a private redis-server. Each process logs to its own file for assertions
(e.g. that no secret is ever logged) and for debugging a failed test.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Settings that a developer's shell might carry and that must not leak into a test.
_SCRUBBED_PREFIXES = ("TELEGRAM_", "SPOTIFY_", "REDIS_", "ALLOWED_", "AUDIO_", "DOWNLOAD_", "YTDLP_", "MP3_", "FAKE_")


class Process:
    def __init__(self, name: str, argv: list[str], env: Mapping[str, str], cwd: Path, log_path: Path) -> None:
        self.name = name
        self.argv = argv
        self.env = dict(env)
        self.cwd = cwd
        self.log_path = log_path
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self) -> Process:
        log = self.log_path.open("ab")
        log.write(f"\n===== start {self.name} {time.strftime('%X')} =====\n".encode())
        log.flush()
        self.popen = subprocess.Popen(
            self.argv, env=self.env, cwd=self.cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        return self

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def children(self) -> list[int]:
        """Pids of the direct children (dramatiq's worker processes)."""
        try:
            out = subprocess.run(["pgrep", "-P", str(self.pid)], capture_output=True, text=True, check=False).stdout
        except FileNotFoundError:
            return []
        return [int(pid) for pid in out.split()]

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM (graceful), then SIGKILL the whole process group if it does not exit in time."""
        if self.popen is None:
            return None
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.popen.returncode

    def kill(self) -> None:
        if self.popen is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


class BotSystem:
    """The bot front end and its workers, configured by environment variables like in production."""

    def __init__(self, workdir: Path, env: Mapping[str, str]) -> None:
        self.workdir = workdir
        self.logs = workdir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        base = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUBBED_PREFIXES)}
        base["PYTHONPATH"] = str(ROOT)
        base["PYTHONUNBUFFERED"] = "1"
        self.env = {**base, **env}
        self.processes: list[Process] = []

    def _spawn(self, name: str, argv: list[str], extra_env: Mapping[str, str] | None = None) -> Process:
        env = {**self.env, **(extra_env or {})}
        process = Process(name, argv, env, self.workdir, self.logs / f"{name}.log").start()
        self.processes.append(process)
        return process

    def start_bot(self, name: str = "bot", **extra_env: str) -> Process:
        return self._spawn(name, [sys.executable, "-m", "bot"], extra_env)

    def start_worker(self, name: str = "worker", *, processes: int = 1, threads: int = 2, **extra_env: str) -> Process:
        argv = [sys.executable, "-m", "dramatiq", "bot.worker", "--processes", str(processes)]
        argv += ["--threads", str(threads)]
        return self._spawn(name, argv, extra_env)

    def stop_all(self) -> None:
        for process in reversed(self.processes):
            process.stop(timeout=15)

    def all_logs(self) -> str:
        return "\n".join(p.log_path.read_text(errors="replace") for p in self.logs.glob("*.log"))
