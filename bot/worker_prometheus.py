"""Workers' metrics with Dramatiq's own Prometheus middleware, configured from METRICS_PORT / METRICS_LISTEN.

The middleware (`dramatiq.middleware.prometheus`) records its `dramatiq_*` metrics in each worker process into
prometheus_client's multiprocess directory; our `spotbot_match_total` (`bot.metrics`) lands there too. A process
Dramatiq forks beside the workers serves the sum at `/metrics`. Dramatiq's own exposition process reads its
port from the `dramatiq_prom_port` environment of the `dramatiq` command, which the settings can't reach, so
this middleware forks ours instead, which reads the settings.

Nothing here imports prometheus_client or Dramatiq's middleware at import time: both read their environment when
first imported, and `prepare_worker_metrics` sets it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from dramatiq.middleware import Middleware


def worker_metrics_dir() -> Path:
    """The multiprocess directory of this `dramatiq` run: named after the dramatiq parent process, shared by its
    worker processes and the exposition process. In the container's own /tmp (not the shared media volume):
    each container exports only its own processes."""
    return Path(tempfile.gettempdir()) / f"spotbot-worker-metrics-{os.getppid()}"


def prepare_worker_metrics(port: int, listen: str) -> Path:
    """Point prometheus_client and Dramatiq's middleware at this run's directory, port and address. Call before
    prometheus_client is first imported in the process (bot.worker does it first thing)."""
    directory = worker_metrics_dir()
    directory.mkdir(parents=True, exist_ok=True)
    # Dramatiq's middleware reads lower-case names (its documented variables).
    dramatiq_env = {"dramatiq_prom_db": str(directory), "dramatiq_prom_port": str(port), "dramatiq_prom_host": listen}
    os.environ.update({"PROMETHEUS_MULTIPROC_DIR": str(directory), **dramatiq_env})
    return directory


def worker_prometheus() -> Middleware:
    """Dramatiq's Prometheus middleware, forking `serve_worker_metrics` as its exposition process."""
    from dramatiq.middleware.prometheus import Prometheus

    class WorkerPrometheus(Prometheus):
        @property
        def forks(self) -> list:  # type: ignore[override]
            return [serve_worker_metrics]

    return WorkerPrometheus()


def serve_worker_metrics() -> int:
    """The exposition process: every worker process's metrics, summed, at /metrics. Blocks until stopped."""
    from bot.settings import ServiceSettings
    from pipeline.settings import load_settings

    settings = load_settings(ServiceSettings)
    if settings.metrics_port is None:
        return 0
    directory = prepare_worker_metrics(settings.metrics_port, settings.metrics_listen)
    from prometheus_client import CollectorRegistry, start_http_server
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(directory))
    _server, thread = start_http_server(settings.metrics_port, addr=settings.metrics_listen, registry=registry)
    thread.join()
    return 0
