"""pipeline.ytdlp_age: yt-dlp's version is its release date; older than YTDLP_MAX_AGE_DAYS is stale."""

from __future__ import annotations

from datetime import date

import pytest
import yt_dlp.version

from pipeline.settings import PipelineSettings
from pipeline.ytdlp import ytdlp_warnings
from pipeline.ytdlp_age import installed_ytdlp_age, installed_ytdlp_version, release_date, ytdlp_age

TODAY = date(2026, 12, 1)


@pytest.mark.parametrize(
    ("version", "released"),
    [
        ("2025.10.22", date(2025, 10, 22)),
        ("2026.01.05", date(2026, 1, 5)),
        ("2026.1.5", date(2026, 1, 5)),
        ("2025.10.22.123456", date(2025, 10, 22)),  # a nightly build
        ("2025.10.22.post1", date(2025, 10, 22)),
        ("2025.10.22.dev0", date(2025, 10, 22)),
        ("unknown", None),
        ("", None),
        ("2025.13.40", None),  # no such day
        ("1.2", None),
    ],
)
def test_release_date(version: str, released: date | None) -> None:
    assert release_date(version) == released


def test_age_and_staleness_at_the_boundary() -> None:
    on_the_day = ytdlp_age("2026.10.02", TODAY, 60)
    assert on_the_day.age_days == 60 and not on_the_day.stale  # "older than 60 days" starts at 61
    assert on_the_day.warning() is None
    over = ytdlp_age("2026.10.01", TODAY, 60)
    assert over.age_days == 61 and over.stale


def test_the_warning_says_what_is_old_and_what_to_do() -> None:
    warning = ytdlp_age("2026.08.01", TODAY, 60).warning()
    assert warning is not None
    assert "yt-dlp 2026.08.01 (122 days old)" in warning
    assert "YTDLP_MAX_AGE_DAYS=60" in warning
    assert "scripts/update" in warning
    assert "\n" not in warning


def test_zero_days_means_anything_older_than_today() -> None:
    assert ytdlp_age("2026.11.30", TODAY, 0).stale
    assert not ytdlp_age("2026.12.01", TODAY, 0).stale


def test_a_version_from_the_future_is_new_not_negative() -> None:
    """A clock behind the release (a container with a wrong date) must not report a negative age."""
    age = ytdlp_age("2026.12.24", TODAY, 60)
    assert age.age_days == 0 and not age.stale


def test_an_undatable_version_is_never_stale() -> None:
    age = ytdlp_age("source-checkout", TODAY, 0)
    assert age.released is None and age.age_days is None and not age.stale
    assert age.describe() == "source-checkout"


def test_describe_counts_days() -> None:
    assert ytdlp_age("2026.11.30", TODAY, 60).describe() == "2026.11.30 (1 day old)"
    assert ytdlp_age("2026.12.01", TODAY, 60).describe() == "2026.12.01 (0 days old)"


def test_the_installed_version_is_yt_dlps_own() -> None:
    assert installed_ytdlp_version() == yt_dlp.version.__version__
    age = installed_ytdlp_age(60, today=TODAY)
    assert age.version == yt_dlp.version.__version__
    assert age.released == release_date(yt_dlp.version.__version__)


def test_the_start_warnings_include_an_old_yt_dlp() -> None:
    installed = installed_ytdlp_age(0)
    settings = PipelineSettings(_env_file=None, ytdlp_max_age_days=0)  # type: ignore[call-arg]
    found = ytdlp_warnings(settings)
    assert (installed.warning() in found) if installed.stale else found == []
    relaxed = PipelineSettings(_env_file=None, ytdlp_max_age_days=100_000)  # type: ignore[call-arg]
    assert ytdlp_warnings(relaxed) == []
