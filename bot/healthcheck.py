"""`python -m bot.healthcheck [--worker]`: exit 0 when the bot (or this host's workers) beat recently.

The container healthchecks run it (docker-compose.yml, Dockerfile). It reads the heartbeat files of `bot.health`
and fails with one line saying what is stale when a heartbeat is older than HEALTH_MAX_AGE seconds: a frozen or
wedged process, a lost connection to Telegram or Redis.
"""

from __future__ import annotations

import argparse
import sys
import time

from bot import health
from bot.settings import ServiceSettings
from pipeline.errors import ConfigurationError
from pipeline.settings import load_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot.healthcheck", description=__doc__.splitlines()[0])
    parser.add_argument("--worker", action="store_true", help="check this host's dramatiq bot.worker processes")
    args = parser.parse_args(argv)
    try:
        settings = load_settings(ServiceSettings)
    except ConfigurationError as error:
        print(f"unhealthy: {error.reason}", file=sys.stderr)
        return 2
    directory = health.health_dir(settings.download_dir)
    now = time.time()
    if args.worker:
        problem = health.worker_problem(
            health.host_worker_beats(directory), health.process_alive, now, settings.health_max_age
        )
    else:
        problem = health.bot_problem(health.read_beat(directory / health.BOT_FILE), now, settings.health_max_age)
    if problem:
        print(f"unhealthy: {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
