"""`python -m bot.healthcheck`: exit 0 when Redis answers (the container healthcheck)."""

from __future__ import annotations

import sys

import redis

from bot.settings import ServiceSettings
from pipeline.settings import load_settings


def main() -> int:
    settings = load_settings(ServiceSettings)
    if settings.redis_url is None:
        return 0  # all-in-one mode: nothing external to check
    try:
        redis.Redis.from_url(settings.redis_url, socket_timeout=3, socket_connect_timeout=3).ping()
    except redis.RedisError as error:
        print(f"redis unreachable: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
