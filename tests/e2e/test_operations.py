"""The operator's view, through the real processes: health checks, Prometheus metrics, admin commands, webhook mode.

The health checks run `python -m bot.healthcheck` as the container would, with a short HEALTH_MAX_AGE so a
frozen process (SIGSTOP) is noticed quickly; metrics are scraped over HTTP from the bot and the worker.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import E2E, OTHER_USER, USER, running_e2e
from tests.fakes.spotify_server import FakeSpotify
from tests.system import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

MAX_AGE = "6"  # seconds: a frozen process fails its check this long after its last heartbeat


@pytest.fixture
def ops(tmp_path: Path, redis_proc, fake_spotify: FakeSpotify) -> Iterator[E2E]:  # type: ignore[no-untyped-def]
    url = f"redis://{redis_proc.host}:{redis_proc.port}/0"
    with running_e2e(tmp_path, url, fake_spotify, HEALTH_MAX_AGE=MAX_AGE, ADMIN_USERS=str(USER)) as running:
        yield running


def healthcheck(e2e: E2E, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot.healthcheck", *args],
        env=e2e.system.env,
        cwd=e2e.system.workdir,
        capture_output=True,
        text=True,
        timeout=60,
    )


def eventually(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:.0f} s: {what}")
        time.sleep(0.5)


def healthy(e2e: E2E, *args: str) -> bool:
    return healthcheck(e2e, *args).returncode == 0


@contextlib.contextmanager
def frozen(pid: int) -> Iterator[None]:
    """SIGSTOP a process for the block, SIGCONT after (so that it can be stopped cleanly)."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


# --- health ------------------------------------------------------------------------------------------------


def test_the_healthcheck_follows_the_bot_and_a_frozen_bot_turns_unhealthy(ops: E2E) -> None:
    assert healthcheck(ops).returncode != 0, "no heartbeat before the bot ever ran"
    ops.system.start_worker()
    bot = ops.system.start_bot()
    eventually(lambda: healthy(ops), "the running bot's healthcheck passes")
    eventually(lambda: healthy(ops, "--worker"), "the running worker's healthcheck passes")

    with frozen(bot.pid):
        started = time.monotonic()
        eventually(lambda: not healthy(ops), "the frozen bot's healthcheck fails", timeout=60)
        assert time.monotonic() - started < 60
        result = healthcheck(ops)
        assert result.returncode == 1 and result.stderr.startswith("unhealthy: ")
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
        assert healthy(ops, "--worker"), "the worker is fine meanwhile"

    eventually(lambda: healthy(ops), "the bot is healthy again once it runs")
    ops.send("/help")
    ops.wait_text("Send me a Spotify link")


def test_a_frozen_worker_process_turns_its_healthcheck_unhealthy(ops: E2E) -> None:
    worker = ops.system.start_worker()
    ops.system.start_bot()
    eventually(lambda: healthy(ops, "--worker"), "the running worker's healthcheck passes")
    eventually(lambda: bool(worker.children()), "dramatiq started its worker process")

    with frozen(worker.children()[0]):
        eventually(lambda: not healthy(ops, "--worker"), "the frozen worker's healthcheck fails", timeout=60)
        assert "worker process" in healthcheck(ops, "--worker").stderr
    eventually(lambda: healthy(ops, "--worker"), "the worker is healthy again once it runs")


def test_a_stopped_worker_is_unhealthy(ops: E2E) -> None:
    worker = ops.system.start_worker()
    eventually(lambda: healthy(ops, "--worker"), "the running worker's healthcheck passes")
    worker.stop()
    assert not healthy(ops, "--worker")


# --- metrics -----------------------------------------------------------------------------------------------


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        return answer.read().decode()


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample in Prometheus' text format (labels in any order), or None."""
    for line in text.splitlines():
        match = re.fullmatch(r"([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)", line)
        if not match or match.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2) or ""))
        if all(found.get(key) == value for key, value in labels.items()):
            return float(match.group(3))
    return None


def test_metrics_of_the_bot_and_the_workers(ops: E2E) -> None:
    bot_port, worker_port = free_port(), free_port()
    found = ops.spotify.add_track("Found Song", "Band")
    missing = ops.spotify.add_track("Lost Song [fake: none]", "Band")
    ops.system.start_worker(METRICS_PORT=str(worker_port))
    ops.system.start_bot(METRICS_PORT=str(bot_port))

    ops.send(f"https://open.spotify.com/track/{found}")
    ops.wait_audios(1)
    ops.send(f"https://open.spotify.com/track/{missing}")
    ops.send(f"https://open.spotify.com/track/{found}", user=OTHER_USER)
    ops.wait_audios(1, chat=OTHER_USER)
    ops.telegram.wait_for(lambda: sum("Done:" in t for t in ops.telegram.texts(USER)) >= 2, timeout=90)

    def bot_counted() -> bool:
        text = scrape(bot_port)
        return sample(text, "spotbot_tracks_total", outcome="failed") == 1.0

    eventually(bot_counted, "the bot counted the failed track")
    text = scrape(bot_port)
    assert sample(text, "spotbot_requests_total", kind="track") == 3.0
    assert sample(text, "spotbot_tracks_total", outcome="sent") == 1.0
    assert sample(text, "spotbot_tracks_total", outcome="cached") == 1.0
    assert sample(text, "spotbot_track_seconds_count") == 2.0
    assert sample(text, "spotbot_track_seconds_bucket", le="+Inf") == 2.0
    assert sample(text, "spotbot_queue_depth") == 0.0
    assert sample(text, "spotbot_worker_threads") == 2.0

    worker_text = scrape(worker_port)
    assert sample(worker_text, "spotbot_match_total", result="matched") == 1.0
    assert sample(worker_text, "spotbot_match_total", result="no_match") == 1.0
    processed = sample(worker_text, "dramatiq_messages_total", queue_name="tracks", actor_name="process_track")
    assert processed == 2.0, worker_text  # Dramatiq's own middleware


def test_metrics_are_off_by_default(ops: E2E) -> None:
    ops.system.start_worker()
    ops.system.start_bot()
    ops.send("/help")
    ops.wait_text("Send me a Spotify link")
    assert "metrics" not in ops.system.all_logs().lower()


# --- admin commands ----------------------------------------------------------------------------------------


def test_admin_commands(ops: E2E) -> None:
    found = ops.spotify.add_track("Stat Song", "Band")
    missing = ops.spotify.add_track("Absent Song [fake: none]", "Band")
    album_titles = ["Side A", "Side B"]
    album = ops.spotify.add_album("Two Sides", "Band", album_titles)
    ops.system.start_worker()
    ops.system.start_bot()

    def admin_scope() -> list[dict]:
        calls = ops.telegram.calls_to("setMyCommands")
        return [c.params for c in calls if (c.params.get("scope") or {}).get("chat_id") == USER]

    [admin] = ops.telegram.wait_for(admin_scope, timeout=30, message="the admin's command list")
    assert admin["scope"]["type"] == "chat"
    assert {"stats", "uncache", "help"} <= {c["command"] for c in admin["commands"]}
    public = [c["command"] for c in ops.telegram.commands()]
    assert "help" in public and "stats" not in public and "uncache" not in public

    ops.send(f"https://open.spotify.com/track/{found}")
    ops.wait_audios(1)
    ops.send(f"https://open.spotify.com/track/{missing}")
    ops.send(f"https://open.spotify.com/album/{album}")
    ops.wait_audios(3)
    ops.telegram.wait_for(lambda: sum("Done:" in t for t in ops.telegram.texts(USER)) >= 3, timeout=90)

    ops.send("/stats", user=OTHER_USER)
    ops.wait_text("only for this bot's admins", chat=OTHER_USER)

    def stats_text() -> str | None:
        before = len(ops.telegram.texts(USER))
        ops.send("/stats")
        ops.telegram.wait_for(lambda: len(ops.telegram.texts(USER)) > before, timeout=30)
        text = ops.telegram.texts(USER)[-1]
        return text if "Tracks: 4" in text and "Finished: 3" in text else None  # counted when each closes

    text = ops.telegram.wait_for(stats_text, timeout=60, message="/stats with every track counted", chat_id=USER)
    assert "Requests: 3 (track 2, album 1)" in text
    assert "Finished: 3 (done 3)" in text
    assert "Tracks: 4 (sent 3, failed 1)" in text
    assert "no confident match on YouTube — 1" in text
    assert "Cached uploads: 3" in text
    assert "Workers alive: 1 (2 thread(s))" in text
    assert "Queue: 0" in text
    assert re.search(r"yt-dlp \d{4}\.\d+\.\d+.*days old", text)

    ops.send(f"/uncache https://open.spotify.com/album/{album}")
    ops.wait_text("Forgot 2 cached file(s) of 2 tracks")
    ops.send(f"/uncache https://open.spotify.com/track/{found}")
    ops.wait_text("Forgot 1 cached file(s) of 1 track;")
    ops.send("/uncache")
    ops.wait_text("Usage: /uncache")

    downloads = len(ops.audio.requests)
    ops.send(f"https://open.spotify.com/track/{found}", user=OTHER_USER)
    [again] = ops.wait_audios(1, chat=OTHER_USER)
    assert not again.by_file_id and len(ops.audio.requests) > downloads, "downloaded afresh"


# --- webhook mode ------------------------------------------------------------------------------------------


def test_webhook_mode(tmp_path: Path, redis_proc, fake_spotify: FakeSpotify) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    secret = "s3cret-Webhook_token"
    env = {
        "WEBHOOK_URL": f"http://127.0.0.1:{port}/telegram-hook",
        "WEBHOOK_LISTEN": "127.0.0.1",
        "WEBHOOK_PORT": str(port),
        "WEBHOOK_SECRET": secret,
        "HEALTH_MAX_AGE": MAX_AGE,
    }
    url = f"redis://{redis_proc.host}:{redis_proc.port}/0"
    with running_e2e(tmp_path, url, fake_spotify, **env) as e2e:
        e2e.system.start_worker()
        e2e.system.start_bot()
        e2e.telegram.wait_for(lambda: e2e.telegram.webhook_url, timeout=60, message="setWebhook")
        assert e2e.telegram.webhook_url == env["WEBHOOK_URL"]
        assert e2e.telegram.webhook_secret == secret

        def answered(update: dict, secret: str | None = "registered") -> int:
            deadline = time.monotonic() + 30
            while True:  # the server may still be starting right after setWebhook
                try:
                    return e2e.telegram.post_webhook(update, secret=secret)
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)

        update = e2e.send("/help")
        assert answered(update, secret="wrong-secret") == 403
        assert answered(update, secret=None) == 403
        time.sleep(1)
        assert not e2e.telegram.texts(USER), "a post without the right secret is ignored"

        assert answered(update) == 200
        e2e.wait_text("Send me a Spotify link")

        track = e2e.spotify.add_track("Hooked", "Band")
        assert answered(e2e.send(f"https://open.spotify.com/track/{track}")) == 200
        e2e.wait_audios(1)
        assert not e2e.telegram.calls_to("getUpdates"), "no polling in webhook mode"
        eventually(lambda: healthy(e2e), "the healthcheck passes in webhook mode")
        assert secret not in e2e.system.all_logs()


def test_a_taken_webhook_port_is_one_clear_line(tmp_path: Path, redis_proc, fake_spotify: FakeSpotify) -> None:  # type: ignore[no-untyped-def]
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {"WEBHOOK_URL": f"http://127.0.0.1:{port}/hook", "WEBHOOK_LISTEN": "127.0.0.1", "WEBHOOK_PORT": str(port)}
        url = f"redis://{redis_proc.host}:{redis_proc.port}/0"
        with running_e2e(tmp_path, url, fake_spotify, **env) as e2e:
            bot = e2e.system.start_bot()
            assert bot.popen is not None and bot.popen.wait(60) == 2
            log = bot.log()
    assert f"error: cannot listen on WEBHOOK_LISTEN:WEBHOOK_PORT 127.0.0.1:{port}: Address already in use" in log
    assert "Traceback" not in log
