"""Runs the real product for end-to-end tests: `python -m bot` and `dramatiq bot.worker` as processes.

They talk to the fakes over 127.0.0.1 exactly as they would talk to Telegram, Spotify and YouTube in
production; Redis is a private redis-server. Each process logs to its own file for assertions
(e.g. that no secret is ever logged) and for debugging a failed test.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Settings that a developer's shell might carry and that must not leak into a test.
_SCRUBBED_PREFIXES = (
    *("TELEGRAM_", "SPOTIFY_", "REDIS_", "ALLOWED_", "AUDIO_", "DOWNLOAD_", "YTDLP_", "MP3_", "FAKE_"),
    "LYRICS",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Process:
    """One product process. With `restart=True` it is supervised like a container with a restart policy
    (`restart: unless-stopped` in docker-compose.yml): if it exits by itself, it is started again."""

    RESTART_DELAY = 0.5

    def __init__(
        self, name: str, argv: list[str], env: Mapping[str, str], cwd: Path, log_path: Path, *, restart: bool = False
    ) -> None:
        self.name = name
        self.argv = argv
        self.env = dict(env)
        self.cwd = cwd
        self.log_path = log_path
        self.restart_policy = restart
        self.popen: subprocess.Popen[bytes] | None = None
        self.exit_codes: list[int] = []  # of earlier runs that ended by themselves (supervised restarts)
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._supervisor: threading.Thread | None = None

    def start(self) -> Process:
        with self._lock:
            self._stopped.clear()
            self._launch()
        if self.restart_policy and self._supervisor is None:
            self._supervisor = threading.Thread(target=self._supervise, name=f"supervise-{self.name}", daemon=True)
            self._supervisor.start()
        return self

    def _launch(self) -> None:
        log = self.log_path.open("ab")
        log.write(f"\n===== start {self.name} {time.strftime('%X')} =====\n".encode())
        log.flush()
        self.popen = subprocess.Popen(
            self.argv, env=self.env, cwd=self.cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()

    def _supervise(self) -> None:
        while not self._stopped.wait(0.1):
            with self._lock:
                if self._stopped.is_set() or self.popen is None or self.popen.poll() is None:
                    continue
                self.exit_codes.append(self.popen.returncode)
            if self._stopped.wait(self.RESTART_DELAY):
                return
            with self._lock:
                if not self._stopped.is_set():
                    self._launch()

    @property
    def restarts(self) -> int:
        return len(self.exit_codes)

    def wait_restarted(self, count: int = 1, timeout: float = 60.0) -> None:
        """Wait until the supervisor has started the process again `count` times in all."""
        deadline = time.monotonic() + timeout
        while self.restarts < count or not self.alive:
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name} was not restarted {count} time(s) within {timeout}s")
            time.sleep(0.1)

    def signal(self, signum: int) -> None:
        """Send a signal to the main process only (e.g. SIGTERM for a graceful stop, SIGKILL for a crash)."""
        assert self.popen is not None
        with contextlib.suppress(ProcessLookupError):
            self.popen.send_signal(signum)

    def kill_child(self, pid: int | None = None) -> int:
        """SIGKILL one child (a dramatiq worker process; the first one unless `pid` is given); returns its pid."""
        children = self.children()
        if not children:
            raise AssertionError(f"{self.name} has no child process")
        victim = pid if pid is not None else children[0]
        os.kill(victim, signal.SIGKILL)
        return victim

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
        with self._lock:  # waits for a supervised restart in progress; none starts after this
            self._stopped.set()
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

    def _spawn(
        self, name: str, argv: list[str], extra_env: Mapping[str, str] | None = None, *, restart: bool = False
    ) -> Process:
        env = {**self.env, **(extra_env or {})}
        process = Process(name, argv, env, self.workdir, self.logs / f"{name}.log", restart=restart).start()
        self.processes.append(process)
        return process

    def start_bot(self, name: str = "bot", *, restart: bool = False, **extra_env: str) -> Process:
        return self._spawn(name, [sys.executable, "-m", "bot"], extra_env, restart=restart)

    def start_worker(
        self, name: str = "worker", *, processes: int = 1, threads: int = 2, restart: bool = False, **extra_env: str
    ) -> Process:
        """`dramatiq bot.worker`; `restart=True` adds the restart policy production has (see Process)."""
        argv = [sys.executable, "-m", "dramatiq", "bot.worker", "--processes", str(processes)]
        argv += ["--threads", str(threads)]
        return self._spawn(name, argv, extra_env, restart=restart)

    def stop_all(self) -> None:
        for process in reversed(self.processes):
            process.stop(timeout=15)

    def all_logs(self) -> str:
        return "\n".join(path.read_text(errors="replace") for path in sorted(self.logs.glob("*.log")))


class RedisServer:
    """A private redis-server configured like docker-compose.yml's (append-only file on), on a free port.

    For tests that restart Redis under the running product: `restart()` stops it the way `docker restart`
    does (SIGTERM: Redis flushes the AOF and exits) and starts it again on the same port and data directory.
    """

    def __init__(self, directory: Path, port: int | None = None) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.log_path = directory / "redis.log"
        self.popen: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> RedisServer:
        executable = shutil.which("redis-server") or "/usr/bin/redis-server"
        argv = [executable, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory)]
        argv += ["--appendonly", "yes", "--save", "", "--logfile", str(self.log_path)]
        self.popen = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while not self.ping():
            if self.popen.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start on port {self.port}: see {self.log_path}")
            time.sleep(0.05)
        return self

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self, timeout: float = 10.0) -> None:
        if self.popen is None or self.popen.poll() is not None:
            return
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(5)

    def restart(self, down_for: float = 0.0) -> None:
        self.stop()
        time.sleep(down_for)
        self.start()

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def files_under(root: Path) -> list[Path]:
    """Everything below root; tolerant of folders the processes delete while we look (os.walk skips them)."""
    found: list[Path] = []
    for folder, dirs, files in os.walk(root):
        found += [Path(folder, name) for name in (*dirs, *files)]
    return sorted(found)
