"""Entry point of the workers: `dramatiq bot.worker` (standard dramatiq flags).

Configures the Redis broker before the actors are imported, since actors bind to the global broker.
"""

from __future__ import annotations

import logging
import sys

from bot import runtime
from bot.logs import secrets_of, setup_logging
from bot.settings import ServiceSettings
from bot.worker_prometheus import prepare_worker_metrics, worker_prometheus
from pipeline.errors import ConfigurationError
from pipeline.settings import load_settings
from pipeline.ytdlp import ytdlp_warnings

try:
    settings = load_settings(ServiceSettings)
    if settings.redis_url is None:
        raise ConfigurationError("REDIS_URL is required for separate workers (unset it only for `python -m bot`)")
except ConfigurationError as error:
    print(f"error: {error.reason}", file=sys.stderr)
    raise SystemExit(2) from None

setup_logging(secrets_of(settings), settings.log_level)
for warning in ytdlp_warnings(settings):
    logging.getLogger("bot.worker").warning("%s", warning)
if settings.metrics_port:  # before anything imports prometheus_client (see bot.worker_prometheus)
    prepare_worker_metrics(settings.metrics_port, settings.metrics_listen)
broker = runtime.configure(settings).broker
if settings.metrics_port:
    broker.add_middleware(worker_prometheus())

from bot import actors  # noqa: E402,F401  (registers the actors on the broker configured above)
