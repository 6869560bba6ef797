"""Prometheus metrics (prometheus_client); served only when METRICS_PORT is set.

- **The bot** serves its own at `/metrics`: links shared by kind, tracks by outcome, link-to-audio seconds, the
  queue depth and live worker threads (`bot.activity` and `bot.delivery` feed them).
- **Workers** use Dramatiq's own Prometheus middleware (`bot.worker_prometheus`): its `dramatiq_*` metrics and
  `spotbot_match_total`, counted where matching happens (`bot.jobs`), from every process of the container
  through prometheus_client's multiprocess directory. In all-in-one mode the workers are threads of the bot and
  their counter is on the bot's page.

Import order matters in a worker: prometheus_client picks its multiprocess storage when first imported, so
`bot.worker` prepares it (`bot.worker_prometheus`) before anything imports this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from prometheus_client import Counter, Gauge, Histogram, start_http_server

# Link to audio in the chat: a cached song takes a second, a fresh one tens of seconds, a long playlist's
# last track much longer.
TRACK_SECONDS_BUCKETS = (1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 3600, 7200)

MATCHES = Counter("spotbot_match", "Matching outcomes of track runs in the workers", ["result"])
MATCHED, NO_MATCH = "matched", "no_match"


@dataclass(frozen=True)
class BotMetrics:
    requests: Counter
    tracks: Counter
    track_seconds: Histogram
    queue_depth: Gauge
    worker_threads: Gauge


@cache
def bot_metrics() -> BotMetrics:
    """The bot's metrics, made on first use (one set per process): a worker process never exports them."""
    return BotMetrics(
        requests=Counter("spotbot_requests", "Links shared and accepted, by kind", ["kind"]),
        tracks=Counter(
            "spotbot_tracks", "Tracks settled: sent (uploaded), cached (by file_id), failed, cancelled", ["outcome"]
        ),
        track_seconds=Histogram(
            "spotbot_track_seconds",
            "Seconds from the shared link to the track's audio in the chat",
            buckets=TRACK_SECONDS_BUCKETS,
        ),
        queue_depth=Gauge("spotbot_queue_depth", "Tracks of open requests waiting for a worker (pending or queued)"),
        worker_threads=Gauge("spotbot_worker_threads", "Live worker threads (from the workers' heartbeats)"),
    )


def serve(port: int, listen: str) -> None:
    """The bot's /metrics page, on a daemon thread."""
    bot_metrics()
    start_http_server(port, addr=listen)
