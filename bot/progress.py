"""Renders the one progress message of a request, and the /status lines. Pure: snapshot in, text out."""

from __future__ import annotations

from bot import texts
from bot.lifecycle import RequestStatus, TrackStatus
from bot.requests import RequestSnapshot, TrackState

BAR_WIDTH = 16
STREAMING_EDIT_INTERVAL = 10.0  # while audios wait for the chat's pace, they show the progress themselves
MAX_FAILURES_LISTED = 15
TELEGRAM_TEXT_LIMIT = 4096
KIND_ICON = {"track": "🎵", "album": "💿", "playlist": "📜"}


def progress_bar(done: int, total: int, width: int = BAR_WIDTH) -> str:
    filled = 0 if total <= 0 else min(width, round(width * done / total))
    return "▓" * filled + "░" * (width - filled)


def format_duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"


def estimate_remaining(states: list[TrackState], now: float) -> float | None:
    """Seconds until all tracks are processed, from the pace so far; None until one track has finished."""
    timed = [s for s in states if s.started_at and s.finished_at and s.status in (TrackStatus.READY, TrackStatus.SENT)]
    if not timed:
        return None
    average = sum(s.finished_at - s.started_at for s in timed) / len(timed)  # type: ignore[operator]
    waiting = sum(1 for s in states if not s.final and s.status != TrackStatus.READY)
    running = max(1, sum(1 for s in states if s.status == TrackStatus.RUNNING))
    return average * waiting / running


def headline(snapshot: RequestSnapshot) -> str:
    resolution = snapshot.resolution
    if resolution is None:
        if snapshot.meta.track is not None:  # picked from a text search: nothing to read
            return f"🔎 {snapshot.meta.track.display_name}…"
        return "🔎 Reading your Liked Songs…" if snapshot.meta.source == "liked" else "🔎 Reading your Spotify link…"
    name = f"{resolution.owner} – {resolution.name}" if resolution.owner else resolution.name
    count = f"{resolution.total} track" + ("" if resolution.total == 1 else "s")
    return f"{KIND_ICON[resolution.kind]} {resolution.kind.capitalize()} · {name} · {count}"


def _notes(snapshot: RequestSnapshot, now: float) -> list[str]:
    resolution = snapshot.resolution
    notes: list[str] = []
    if resolution is None:
        return notes
    if resolution.available > resolution.total:
        notes.append(f"⚠️ Only the first {resolution.total} of {resolution.available} tracks (the per-request limit).")
    if resolution.login_refused:
        notes.append(texts.LOGIN_REFUSED_NOTE)
    elif resolution.truncated:
        notes.append("⚠️ Spotify shows only the first 100 tracks of this playlist to bots: more may exist.")
    if resolution.skipped:
        reasons = sorted({item.reason for item in resolution.skipped})
        notes.append(f"⚠️ {len(resolution.skipped)} item(s) skipped: {'; '.join(reasons)}.")
    delays = [s.retry_at for s in snapshot.states if s.status == TrackStatus.RETRYING and (s.retry_at or 0) > now]
    if delays:
        wait = format_duration(min(delays) - now)  # type: ignore[type-var]
        notes.append(f"⏸ Delayed: a service asked us to wait, next try in {wait}.")
    return notes


def _failure_lines(snapshot: RequestSnapshot) -> list[str]:
    failures = snapshot.failures
    lines = [f"❌ {track.display_name} — {reason}" for track, reason in failures[:MAX_FAILURES_LISTED]]
    if len(failures) > MAX_FAILURES_LISTED:
        lines.append(f"… and {len(failures) - MAX_FAILURES_LISTED} more failed")
    return lines


def render_progress(snapshot: RequestSnapshot, now: float) -> str:
    """The progress message text: live while running, a summary once settled."""
    if snapshot.resolution is None and snapshot.cancelled:
        return f"🛑 Cancelled: {snapshot.meta.link}"
    if snapshot.status == RequestStatus.FAILED:
        return f"❌ Couldn't read {snapshot.meta.link}\n{snapshot.error or 'unknown error'}"
    lines = [headline(snapshot)]
    if snapshot.status == RequestStatus.RESOLVING:
        lines.append(snapshot.meta.link)
        if snapshot.retry_at and snapshot.retry_at > now:
            lines.append(
                f"⏸ Delayed: Spotify asked us to wait, next try in {format_duration(snapshot.retry_at - now)}."
            )
        return "\n".join(lines)
    total = snapshot.total
    delivered = snapshot.delivered
    failed = snapshot.count(TrackStatus.FAILED)
    lines.extend(_notes(snapshot, now))
    if snapshot.settled:
        cancelled = total - delivered - failed
        parts = [f"✅ {delivered} delivered"]
        if failed:
            parts.append(f"❌ {failed} failed")
        if cancelled > 0 and snapshot.cancelled:
            parts.append(f"🛑 {cancelled} cancelled")
        lines.append(("🛑 Cancelled: " if snapshot.cancelled else "Done: ") + " · ".join(parts))
        lines.extend(_failure_lines(snapshot))
    else:
        remaining = total - delivered - failed
        lines.append(f"{progress_bar(delivered + failed, total)} {delivered + failed}/{total}")
        parts = [f"✅ {delivered} delivered", f"❌ {failed} failed", f"⏳ {remaining} remaining"]
        eta = estimate_remaining(snapshot.states, now)
        if eta is not None and remaining:
            parts.append("ETA <1 min" if eta < 60 else f"ETA ~{format_duration(eta)}")
        lines.append(" · ".join(parts))
    return _fit("\n".join(lines))


def render_status_line(snapshot: RequestSnapshot, now: float) -> str:
    """One /status entry."""
    if snapshot.status == RequestStatus.RESOLVING:
        return f"🔎 {snapshot.meta.link} — reading the link…"
    done = snapshot.delivered + snapshot.count(TrackStatus.FAILED)
    running = snapshot.count(TrackStatus.RUNNING)
    state = f"{running} in progress" if running else "waiting"
    return f"{headline(snapshot)}\n   {progress_bar(done, snapshot.total, 10)} {done}/{snapshot.total} · {state}"


def edit_wait(now: float, last_edit: float, interval: float, *, streaming: bool, final: bool) -> float:
    """Seconds until the progress message may be edited again (0: now). Edits count against the chat's
    pace like audios do, so while audios are waiting to go out an update waits longer: the audios are
    the progress; the final summary never waits beyond the interval."""
    gap = interval if final or not streaming else max(interval, STREAMING_EDIT_INTERVAL)
    return max(0.0, last_edit + gap - now)


def _fit(text: str) -> str:
    if len(text) <= TELEGRAM_TEXT_LIMIT:
        return text
    return text[: TELEGRAM_TEXT_LIMIT - 2] + "\n…"
