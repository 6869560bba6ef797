"""Time limits agree with the steps' own timeouts: a run is cut, or re-driven, only when it is really stuck."""

from __future__ import annotations

import importlib
import sys

import pytest

from bot.settings import BotSettings
from pipeline.track_job import worst_case_seconds


@pytest.mark.parametrize(
    ("download", "ffmpeg", "candidates", "http"),
    [(600, 600, 3, 20), (30, 10, 1, 5), (3600, 1200, 5, 60)],
)
def test_limits_cover_every_step_timing_out(
    monkeypatch: pytest.MonkeyPatch, download: int, ffmpeg: int, candidates: int, http: int
) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    settings = BotSettings(
        telegram_bot_token="1:x",
        download_timeout=download,
        ffmpeg_timeout=ffmpeg,
        max_candidates=candidates,
        http_timeout=http,
        audio_sources=["youtube-music", "youtube"],
        _env_file=None,
    )
    worst = worst_case_seconds(settings)
    steps = candidates * (download + ffmpeg) + http * (2 * 3 + 1)  # downloads, conversions, searches, Spotify
    assert worst > steps

    from bot import runtime
    from bot.app import recovery_limits

    runtime.configure(settings)  # a new broker: the actors are declared on it afresh, with these settings
    loaded = sys.modules.get("bot.actors")
    actors = importlib.reload(loaded) if loaded else importlib.import_module("bot.actors")
    assert actors.process_track.options["time_limit"] == int(worst * 1000)
    limits = recovery_limits(settings)
    assert limits.run_overdue > worst, "the reconciler re-drives a run only after the actor's own limit"
    assert limits.retry_overdue > worst
