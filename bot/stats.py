"""The operator's numbers: what to count when something happens, and the /stats text. Pure: no I/O here.

Counts live in Redis in hourly hashes (`bot.activity` writes them, each with a TTL just over a day), one field
per thing counted: `requests:<kind>`, `outcome:<done|failed|cancelled>`, `request_failure:<reason>`,
`tracks:<sent|cached|failed|cancelled>`, `track_failure:<reason>`. A reason is grouped without its details
("file too large for Telegram (51.2 MB > 50 MB)" counts as "file too large for Telegram").
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from bot.lifecycle import RequestStatus, TrackStatus
from bot.requests import RequestSnapshot

HOUR = 3600
DAY_HOURS = 24
STATS_TTL = (DAY_HOURS + 1) * HOUR  # an hour's bucket outlives the day it is part of, then goes
REASON_LENGTH = 80
TRACK_OUTCOMES = ("sent", "cached", "failed", "cancelled")


def hour_of(now: float) -> int:
    return int(now // HOUR)


def day_hours(now: float) -> list[int]:
    """The hourly buckets of the last 24 hours, the current one included."""
    current = hour_of(now)
    return list(range(current - DAY_HOURS + 1, current + 1))


def reason_group(reason: str | None) -> str:
    """A failure reason without its particulars (sizes, attempt counts, server detail), for counting."""
    text = re.split(r" \(|: asked to wait", reason or "failed", maxsplit=1)[0].strip() or "failed"
    return text[:REASON_LENGTH].replace("\n", " ")


def received_counts(kind: str) -> Counter[str]:
    return Counter({f"requests:{kind}": 1})


def delivered_counts(cached: bool) -> Counter[str]:
    return Counter({f"tracks:{'cached' if cached else 'sent'}": 1})


def closed_counts(snapshot: RequestSnapshot) -> Counter[str]:
    """What a closed request adds: its outcome (and why it failed), its failed and cancelled tracks. Delivered
    tracks are counted when they are sent (`delivered_counts`), so they show up during a long playlist."""
    counts: Counter[str] = Counter({f"outcome:{snapshot.status}": 1})
    if snapshot.status == RequestStatus.FAILED:
        counts[f"request_failure:{reason_group(snapshot.error)}"] += 1
    for state in snapshot.states:
        if state.status == TrackStatus.FAILED:
            counts["tracks:failed"] += 1
            counts[f"track_failure:{reason_group(state.reason)}"] += 1
        elif state.status == TrackStatus.CANCELLED:
            counts["tracks:cancelled"] += 1
    return counts


@dataclass
class DayStats:
    """The sums of the last day's buckets, by kind of count."""

    requests: Counter[str] = field(default_factory=Counter)  # by link kind
    outcomes: Counter[str] = field(default_factory=Counter)  # done, failed, cancelled
    request_failures: Counter[str] = field(default_factory=Counter)
    tracks: Counter[str] = field(default_factory=Counter)  # sent, cached, failed, cancelled
    track_failures: Counter[str] = field(default_factory=Counter)

    @classmethod
    def from_buckets(cls, buckets: Iterable[Mapping[str, str | int]]) -> DayStats:
        stats = cls()
        sections = {
            "requests": stats.requests,
            "outcome": stats.outcomes,
            "request_failure": stats.request_failures,
            "tracks": stats.tracks,
            "track_failure": stats.track_failures,
        }
        for bucket in buckets:
            for name, value in bucket.items():
                section, _, key = name.partition(":")
                if section in sections and key:
                    sections[section][key] += int(value)
        return stats


@dataclass(frozen=True)
class Operations:
    """The live side of /stats."""

    cache_entries: int
    queue_depth: int
    workers: int  # live worker processes
    worker_threads: int
    ytdlp_version: str
    ytdlp_age_days: int | None


def _line(label: str, counts: Counter[str], order: Iterable[str] = ()) -> str:
    keys = [key for key in order if counts.get(key)] + sorted(key for key in counts if key not in order)
    parts = [f"{key} {counts[key]}" for key in keys if counts[key]]
    return f"{label}: {sum(counts.values())}" + (f" ({', '.join(parts)})" if parts else "")


def _reasons(counts: Counter[str], limit: int = 8) -> list[str]:
    return [f"  • {reason} — {count}" for reason, count in counts.most_common(limit)]


def render_stats(day: DayStats, ops: Operations) -> str:
    lines = ["📊 Last 24 hours", _line("Requests", day.requests, ("track", "album", "playlist"))]
    lines.append(_line("Finished", day.outcomes, ("done", "failed", "cancelled")))
    lines += _reasons(day.request_failures)
    lines.append(_line("Tracks", day.tracks, TRACK_OUTCOMES))
    if day.track_failures:
        lines.append("Track failures:")
        lines += _reasons(day.track_failures)
    age = f", {ops.ytdlp_age_days} days old" if ops.ytdlp_age_days is not None else ""
    lines += [
        "",
        "⚙️ Now",
        f"Queue: {ops.queue_depth} track(s) waiting for a worker",
        f"Workers alive: {ops.workers} ({ops.worker_threads} thread(s))",
        f"Cached uploads: {ops.cache_entries}",
        f"yt-dlp {ops.ytdlp_version}{age}",
    ]
    return "\n".join(lines)
