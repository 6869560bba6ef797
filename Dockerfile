# The bot and the worker share this image: `python -m bot` (default) or `dramatiq bot.worker`.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONPATH=/app \
    DENO_DIR=/home/app/.cache/deno \
    DOWNLOAD_DIR=/data/downloads

# Debian's ffmpeg (the pipeline prefers `ffmpeg` on PATH). Unpinned on purpose: Debian security updates
# replace old package versions, so a pin would break the build instead of protecting it.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ffmpeg \
    && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --uid 10001 --user-group --shell /usr/sbin/nologin app \
    && mkdir -p /data/downloads /home/app/.cache/deno \
    && chown -R app:app /data /home/app/.cache

WORKDIR /app
# Brings yt-dlp with its JavaScript runtime (the `deno` wheel), python-telegram-bot, dramatiq, …: exactly the
# versions of requirements.lock, each checked against its hash.
COPY requirements.lock .
RUN pip install --no-cache-dir --require-hashes -r requirements.lock

# `docker compose build --build-arg YTDLP_UPGRADE="$(date +%s)"`: the newest yt-dlp over the lock's (YouTube
# changes faster than the lock); each new value reruns this step. Unpinned on purpose, hence DL3013.
ARG YTDLP_UPGRADE=""
# hadolint ignore=DL3013
RUN if [ -n "$YTDLP_UPGRADE" ]; then pip install --no-cache-dir --upgrade "yt-dlp[default]"; fi

# Code stays root-owned: the app user can read it, not change it.
COPY pipeline/ pipeline/
COPY bot/ bot/

# Numeric, so `runAsNonRoot`-style checks can verify it; the name is "app". Downloads go to /data/downloads:
# mount a volume there shared by the bot and the workers (see docker-compose.yml).
USER 10001:10001

# Exits 0 while the bot's heartbeat is fresh (polling and delivery alive); workers: `bot.healthcheck --worker`
# (docker-compose.yml). A frozen bot is unhealthy within HEALTH_MAX_AGE (30 s) + 2 × 10 s.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=2 CMD ["python", "-m", "bot.healthcheck"]

CMD ["python", "-m", "bot"]
