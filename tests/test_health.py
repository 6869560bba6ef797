"""The health rules (pure) and the heartbeat files behind `python -m bot.healthcheck`."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot import health
from bot.health import BotBeat, WorkerBeat, bot_problem, worker_problem

NOW = 1_800_000_000.0
ROOT = Path(__file__).resolve().parent.parent


# --- the bot ---------------------------------------------------------------------------------------------------


def fresh(**ages: float) -> dict[str, float]:
    beat = {"at": NOW - 1, "updates": NOW - 2, "delivery": NOW - 3}
    beat.update({key: NOW - age for key, age in ages.items()})
    return beat


def test_a_bot_whose_loops_all_beat_recently_is_healthy() -> None:
    assert bot_problem(fresh(), NOW, 30) is None
    assert bot_problem(fresh(at=30, updates=30, delivery=30), NOW, 30) is None  # the limit itself is fine


@pytest.mark.parametrize(
    ("stale", "named"),
    [("at", "event loop"), ("updates", "updates from Telegram"), ("delivery", "delivery loop")],
)
def test_any_stale_half_makes_the_bot_unhealthy_and_is_named(stale: str, named: str) -> None:
    problem = bot_problem(fresh(**{stale: 31}), NOW, 30)
    assert problem is not None and named in problem and "31 s ago" in problem


def test_no_heartbeat_or_a_half_that_never_beat_is_unhealthy() -> None:
    assert bot_problem(None, NOW, 30) == "no heartbeat yet (is the bot running?)"
    never = {**fresh(), "updates": 0.0}
    assert "no sign of life yet" in (bot_problem(never, NOW, 30) or "")
    assert "no sign of life yet" in (bot_problem({"at": NOW}, NOW, 30) or "")
    assert bot_problem({"at": "garbage", "updates": NOW, "delivery": NOW}, NOW, 30) is not None


def test_the_beat_interval_leaves_room_for_several_beats_per_allowed_age() -> None:
    assert health.beat_interval(30) == 5
    assert health.beat_interval(6) == 2
    assert health.beat_interval(300) == 5


def test_the_bot_beat_writes_both_halves(tmp_path: Path) -> None:
    beat = BotBeat(tmp_path / "health", max_age=30)
    beat.write(delivery_at=NOW)
    written = json.loads((tmp_path / "health" / health.BOT_FILE).read_text())
    assert written["delivery"] == NOW and written["updates"] == 0.0 and written["at"] > 0
    beat.updates_seen()
    beat.write(delivery_at=NOW)
    assert health.read_beat(beat.path)["updates"] > 0  # type: ignore[index]
    beat.remove()  # a clean stop
    assert bot_problem(health.read_beat(beat.path), NOW, 30) == "no heartbeat yet (is the bot running?)"


def test_in_webhook_mode_the_running_webhook_server_is_the_proof_of_updates(tmp_path: Path) -> None:
    beat = BotBeat(tmp_path, max_age=3)

    async def one_beat(receiving: bool) -> dict:
        task = asyncio.create_task(beat.run(lambda: NOW, lambda: receiving))
        await asyncio.sleep(0.05)
        task.cancel()
        return health.read_beat(beat.path) or {}

    assert asyncio.run(one_beat(False))["updates"] == 0.0
    assert asyncio.run(one_beat(True))["updates"] > 0


# --- workers ---------------------------------------------------------------------------------------------------


def test_every_live_worker_process_must_beat() -> None:
    alive = {11, 12}.__contains__
    beats = [{"pid": 11, "at": NOW - 2}, {"pid": 12, "at": NOW - 4}, {"pid": 13, "at": NOW - 999}]  # 13 is gone
    assert worker_problem(beats, alive, NOW, 30) is None
    beats[1]["at"] = NOW - 45
    assert worker_problem(beats, alive, NOW, 30) == "worker process 12: last heartbeat 45 s ago (limit 30 s)"


def test_no_live_worker_is_unhealthy() -> None:
    assert "no live worker" in (worker_problem([], lambda pid: True, NOW, 30) or "")
    assert "no live worker" in (worker_problem([{"pid": 5, "at": NOW}], lambda pid: False, NOW, 30) or "")
    assert "no live worker" in (worker_problem([{"pid": 0, "at": NOW}], lambda pid: True, NOW, 30) or "")


def test_worker_files_are_per_host_and_process(tmp_path: Path) -> None:
    mine = WorkerBeat(tmp_path, host="box", pid=os.getpid())
    other_host = WorkerBeat(tmp_path, host="box-2", pid=os.getpid())  # its name starts like ours
    mine.stamp(NOW)
    other_host.stamp(NOW - 500)
    assert health.host_worker_beats(tmp_path, host="box") == [{"host": "box", "pid": os.getpid(), "at": NOW}]
    mine.remove()
    assert health.host_worker_beats(tmp_path, host="box") == []


def test_a_booting_worker_clears_the_leftovers_of_a_previous_run(tmp_path: Path) -> None:
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = WorkerBeat(tmp_path, host="box", pid=int(gone.stdout))  # a process that is gone
    silent = WorkerBeat(tmp_path, host="box", pid=os.getppid())  # alive, but silent far too long
    sibling = WorkerBeat(tmp_path, host="box", pid=1)  # alive and beating
    neighbour = WorkerBeat(tmp_path, host="other", pid=int(gone.stdout))  # another container's
    dead.stamp(NOW)
    silent.stamp(NOW - 100)
    sibling.stamp(NOW - 1)
    neighbour.stamp(NOW - 100)

    WorkerBeat(tmp_path, host="box", pid=os.getpid()).clear_leftovers(max_age=30, now=NOW)

    assert sorted(path.name for path in tmp_path.iterdir()) == sorted([sibling.path.name, neighbour.path.name])


@pytest.mark.e2e  # the real `python -m bot.healthcheck` process
def test_the_healthcheck_command_says_what_is_wrong_in_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DOWNLOAD_", "HEALTH_", "REDIS_"))}
    env |= {"DOWNLOAD_DIR": str(tmp_path), "HEALTH_MAX_AGE": "30", "PYTHONPATH": str(ROOT)}

    def check(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "bot.healthcheck", *args]
        return subprocess.run(command, env=env, capture_output=True, text=True, cwd=tmp_path, timeout=60)

    result = check()
    assert result.returncode == 1
    assert result.stderr == "unhealthy: no heartbeat yet (is the bot running?)\n"
    beat = BotBeat(health.health_dir(tmp_path), max_age=30)
    beat.updates_seen()
    beat.write(delivery_at=beat.updates)
    assert check().returncode == 0
    assert check("--worker").returncode == 1
    WorkerBeat(health.health_dir(tmp_path)).stamp()
    assert check("--worker").returncode == 0


@pytest.mark.parametrize("max_age", [3, 6, 30, 300])
def test_an_idle_bot_still_polls_often_enough_to_prove_it(max_age: float) -> None:
    """getUpdates' long poll returns at least every poll_timeout seconds even with nothing to say."""
    from bot.app import poll_timeout
    from bot.settings import BotSettings

    settings = BotSettings(telegram_bot_token="1:x", health_max_age=max_age)  # type: ignore[call-arg]
    assert 1 <= poll_timeout(settings) <= 10
    assert poll_timeout(settings) * 2 < max_age
