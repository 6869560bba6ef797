"""What an operator meets at start, through the real `python -m bot` / `scripts/run` and `dramatiq bot.worker`:
one clear line when Telegram cannot be reached or refuses the token; warnings at start (an old yt-dlp, a
cookies file that is not there) that stop nothing; the old-yt-dlp line in /status for admins only.
"""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.ytdlp_age import installed_ytdlp_age
from tests.e2e.conftest import E2E, OTHER_USER, USER, running_e2e
from tests.fakes.spotify_server import FakeSpotify
from tests.fakes.telegram_server import FakeTelegram
from tests.system import _SCRUBBED_PREFIXES, ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

MAX_LINES = 3


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def clean_env(tmp_path: Path, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUBBED_PREFIXES)}
    return {**env, "PYTHONPATH": str(ROOT), "DOWNLOAD_DIR": str(tmp_path / "downloads"), **settings}


def run(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[int, list[str]]:
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=120)
    return done.returncode, (done.stdout + done.stderr).splitlines()


def bot(tmp_path: Path, **settings: str) -> tuple[int, list[str]]:
    """`python -m bot`, all-in-one (nothing else needed), from an empty folder (no .env)."""
    return run([sys.executable, "-m", "bot"], clean_env(tmp_path, **settings), tmp_path)


def test_unreachable_telegram_is_one_line_and_a_failure(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}/bot"
    code, lines = bot(tmp_path, TELEGRAM_BOT_TOKEN="123456:ABCdefGHIjkl", TELEGRAM_API_URL=url)
    assert code != 0
    assert len(lines) <= MAX_LINES, lines
    assert not any("Traceback" in line for line in lines), lines
    assert any(f"cannot reach the Telegram Bot API at {url}" in line for line in lines), lines
    assert not any("ABCdefGHIjkl" in line for line in lines)


def test_a_wrong_token_is_one_line_and_a_failure(tmp_path: Path) -> None:
    with FakeTelegram() as telegram:  # knows only its own token: any other is 401 Unauthorized
        env = {**telegram.env(), "TELEGRAM_BOT_TOKEN": "987654:wrong-token-xyz"}
        code, lines = bot(tmp_path, **env)
    assert code == 2
    assert len(lines) <= MAX_LINES, lines
    assert not any("Traceback" in line for line in lines), lines
    assert any("Telegram rejected TELEGRAM_BOT_TOKEN" in line for line in lines), lines
    assert not any("wrong-token-xyz" in line for line in lines)


def test_scripts_run_with_an_unreachable_telegram_prints_at_most_three_lines(tmp_path: Path) -> None:
    """The documented entry point, in a copy of the checkout that shares this test run's installed .venv.

    (A fresh clone installs the lock first: one more line, "installing requirements.lock into .venv…".)
    """
    venv = Path(sys.prefix)
    files = [*sorted(ROOT.glob("requirements*.txt")), *sorted(ROOT.glob("requirements*.lock"))]  # as venv.sh
    digest = hashlib.sha256(b"".join(path.read_bytes() for path in files)).hexdigest()
    stamp_file = venv / ".installed-requirements"
    stamp = stamp_file.read_text().strip() if stamp_file.exists() else ""
    if stamp not in (f"{digest} requirements.lock", f"{digest} requirements-dev.lock"):
        pytest.skip("this .venv was not installed from the current lock files by scripts/run or scripts/test")
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    for name in ("scripts", "bot", "pipeline"):
        (checkout / name).symlink_to(ROOT / name)
    for path in files:
        (checkout / path.name).write_bytes(path.read_bytes())
    (checkout / ".venv").symlink_to(venv)
    env = clean_env(tmp_path, TELEGRAM_BOT_TOKEN="123456:ABCdefGHIjkl")
    env["TELEGRAM_API_URL"] = f"http://127.0.0.1:{closed_port()}/bot"
    env.pop("PYTHONPATH")
    code, lines = run(["bash", str(checkout / "scripts" / "run")], env, checkout)
    assert code != 0
    assert 1 <= len(lines) <= MAX_LINES, lines
    assert not any("Traceback" in line for line in lines), lines
    assert "cannot reach the Telegram Bot API" in lines[-1]


# --- warnings at start and /status for admins ---------------------------------------------------


@pytest.fixture
def e2e(tmp_path: Path, redis_proc) -> E2E:  # type: ignore[no-untyped-def]
    settings = {
        "ADMIN_USERS": str(USER),
        "YTDLP_MAX_AGE_DAYS": "0",  # any release before today is "old"
        "YTDLP_COOKIES_FILE": str(tmp_path / "config" / "cookies.txt"),  # a mount with no file in it
        "YTDLP_POT_PROVIDER_URL": f"http://127.0.0.1:{closed_port()}",
    }
    redis_url = f"redis://{redis_proc.host}:{redis_proc.port}/0"
    with FakeSpotify() as spotify, running_e2e(tmp_path, redis_url, spotify, **settings) as system:
        yield system


def test_start_warnings_stop_nothing_and_admins_see_an_old_yt_dlp_in_status(e2e: E2E, tmp_path: Path) -> None:
    installed = installed_ytdlp_age(0)
    worker = e2e.system.start_worker()
    bot_process = e2e.system.start_bot()
    track = e2e.spotify.add_track("Still Works", "The Operators")

    e2e.send(f"https://open.spotify.com/track/{track}")  # no cookies, provider down: plain audio still comes
    e2e.wait_audios(1)

    cookies = str(tmp_path / "config" / "cookies.txt")
    for process in (bot_process, worker):
        log = process.log()
        assert f"YTDLP_COOKIES_FILE {cookies} does not exist" in log, process.name
        if installed.stale:
            assert "is older than YTDLP_MAX_AGE_DAYS=0" in log, process.name
        assert "Traceback" not in log

    assert "YTDLP_MAX_AGE_DAYS" not in status_reply(e2e, OTHER_USER)
    status = status_reply(e2e, USER)
    if installed.stale:
        assert status.startswith(f"⚠️ yt-dlp {installed.describe()} is older than YTDLP_MAX_AGE_DAYS=0"), status
        assert "scripts/update" in status
    else:  # released today: nothing is older than today
        assert "YTDLP_MAX_AGE_DAYS" not in status


def status_reply(e2e: E2E, user: int) -> str:
    """The bot's answer to /status, whatever it lists (the finished request may still show for a moment)."""
    before = len(e2e.telegram.texts(user))
    e2e.send("/status", user=user)

    def answer() -> str | None:
        new = e2e.telegram.texts(user)[before:]
        return next((t for t in new if t and ("Nothing is running" in t or "request(s) running" in t)), None)

    return e2e.telegram.wait_for(answer, timeout=60, message="the answer to /status", chat_id=user)
