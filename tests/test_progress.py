"""The progress message and /status lines: snapshot in, text out (pure)."""

from __future__ import annotations

import pytest

from bot.lifecycle import RequestStatus
from bot.progress import (
    BAR_WIDTH,
    MAX_FAILURES_LISTED,
    STREAMING_EDIT_INTERVAL,
    TELEGRAM_TEXT_LIMIT,
    edit_wait,
    estimate_remaining,
    format_duration,
    headline,
    progress_bar,
    render_progress,
    render_status_line,
)
from bot.requests import RequestMeta, RequestSnapshot, Resolution, TrackState
from pipeline.models import LinkKind, SkippedItem, Track

R = RequestStatus
NOW = 1_000_000.0
LINK = "https://open.spotify.com/album/2noRn2Aes5aoNVsU6iWThc"


def track(i: int, *, artists: tuple[str, ...] = ("Artist",), title: str | None = None) -> Track:
    return Track(spotify_id=f"id{i:020d}", title=title or f"Song {i}", artists=list(artists))


def snapshot(
    states: list[TrackState] | None = None,
    *,
    status: RequestStatus = R.RUNNING,
    resolved: bool | None = None,
    kind: LinkKind = "album",
    name: str = "Discovery",
    owner: str = "Daft Punk",
    available: int | None = None,
    truncated: bool = False,
    skipped: list[SkippedItem] | None = None,
    tracks: list[Track] | None = None,
    next_send: int | None = None,
    error: str | None = None,
) -> RequestSnapshot:
    states = states if states is not None else []
    tracks = tracks if tracks is not None else [track(i) for i in range(len(states))]
    if next_send is None:  # delivered or settled in order, as the bot's sender advances
        next_send = 0
        while next_send < len(states) and states[next_send].status in ("sent", "failed"):
            next_send += 1
    if resolved is None:  # a link that failed to be read never had a resolution
        resolved = status not in (R.RESOLVING, R.FAILED)
    resolution = None
    if resolved:
        resolution = Resolution(
            kind=kind,
            name=name,
            owner=owner,
            total=len(states),
            available=available if available is not None else len(states),
            truncated=truncated,
            skipped=skipped or [],
        )
    return RequestSnapshot(
        meta=RequestMeta(id="r1", chat_id=10, user_id=20, link=LINK, created_at=NOW - 100),
        status=status,
        resolution=resolution,
        error=error,
        tracks=tracks,
        states=states,
        next_send=next_send,
    )


def states(*statuses: str, **fields: object) -> list[TrackState]:
    return [TrackState(status=status, **fields) for status in statuses]  # type: ignore[arg-type]


def timed(status: str, seconds: float, *, end: float = NOW - 1) -> TrackState:
    return TrackState(status=status, started_at=end - seconds, finished_at=end)  # type: ignore[arg-type]


# --- progress_bar ----------------------------------------------------------------------------------


def test_bar_empty() -> None:
    assert progress_bar(0, 10) == "░" * BAR_WIDTH


def test_bar_with_zero_total_is_empty_not_an_error() -> None:
    assert progress_bar(0, 0) == "░" * BAR_WIDTH
    assert progress_bar(5, 0) == "░" * BAR_WIDTH
    assert progress_bar(0, -1) == "░" * BAR_WIDTH


def test_bar_full() -> None:
    assert progress_bar(10, 10) == "▓" * BAR_WIDTH


def test_bar_never_overflows() -> None:
    assert progress_bar(25, 10) == "▓" * BAR_WIDTH


def test_bar_half_and_custom_width() -> None:
    assert progress_bar(5, 10) == "▓" * 8 + "░" * 8
    assert progress_bar(1, 4, width=4) == "▓░░░"
    assert progress_bar(3, 10, width=10) == "▓▓▓░░░░░░░"


@pytest.mark.parametrize(("done", "total"), [(0, 1), (1, 3), (2, 3), (1, 500), (499, 500), (500, 500), (7, 0)])
def test_bar_always_has_its_width(done: int, total: int) -> None:
    assert len(progress_bar(done, total)) == BAR_WIDTH
    assert len(progress_bar(done, total, 10)) == 10


def test_bar_shows_some_progress_only_once_a_cell_is_earned() -> None:
    assert progress_bar(1, 500) == "░" * BAR_WIDTH  # 0.03 of a cell rounds down
    assert progress_bar(499, 500) == "▓" * BAR_WIDTH


# --- format_duration -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0 s"),
        (-5, "0 s"),
        (0.4, "0 s"),
        (1, "1 s"),
        (59, "59 s"),
        (59.4, "59 s"),
        (59.6, "1 min"),
        (60, "1 min"),
        (89, "1 min"),
        (91, "2 min"),
        (59 * 60, "59 min"),
        (3569, "59 min"),
        (3599, "1 h 00 min"),
        (3600, "1 h 00 min"),
        (3600 + 5 * 60, "1 h 05 min"),
        (2 * 3600 + 61, "2 h 01 min"),
        (25 * 3600, "25 h 00 min"),
    ],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


# --- estimate_remaining ----------------------------------------------------------------------------


def test_no_estimate_before_any_track_finished() -> None:
    assert estimate_remaining([], NOW) is None
    assert estimate_remaining(states("pending", "queued", "running"), NOW) is None
    # Failed or cancelled tracks say nothing about the pace.
    assert estimate_remaining([timed("failed", 10), timed("cancelled", 10), TrackState()], NOW) is None


def test_estimate_ignores_tracks_without_both_timestamps() -> None:
    only_started = TrackState(status="ready", started_at=NOW - 10)
    assert estimate_remaining([only_started, TrackState()], NOW) is None


def test_estimate_from_average_pace_times_waiting() -> None:
    # Average 20 s per track; 3 tracks not yet terminal; 1 running → 60 s.
    done = [timed("sent", 10), timed("ready", 30)]
    waiting = states("pending", "queued", "running")
    assert estimate_remaining(done + waiting, NOW) == pytest.approx(60.0)


def test_estimate_divides_by_parallel_workers() -> None:
    done = [timed("sent", 20)]
    waiting = states("running", "running", "pending", "pending")
    assert estimate_remaining(done + waiting, NOW) == pytest.approx(40.0)


def test_estimate_is_zero_when_nothing_waits() -> None:
    assert estimate_remaining([timed("sent", 20), timed("failed", 5)], NOW) == 0


def test_estimate_counts_retrying_as_waiting() -> None:
    assert estimate_remaining([timed("sent", 10), TrackState(status="retrying")], NOW) == pytest.approx(10.0)


# --- headline --------------------------------------------------------------------------------------


def test_headline_while_resolving() -> None:
    assert "Reading your Spotify link" in headline(snapshot(status=R.RESOLVING))


@pytest.mark.parametrize("kind", ["track", "album", "playlist"])
def test_headline_names_kind_owner_name_and_count(kind: LinkKind) -> None:
    text = headline(snapshot(states("pending", "pending"), kind=kind, name="Mix", owner="Someone"))
    assert kind.capitalize() in text
    assert "Someone – Mix" in text
    assert "2 tracks" in text


def test_headline_singular_and_no_owner() -> None:
    text = headline(snapshot(states("pending"), kind="track", name="One More Time", owner=""))
    assert "1 track" in text
    assert "1 tracks" not in text
    assert "One More Time" in text
    assert " – " not in text


# --- render_progress: each status ------------------------------------------------------------------


def test_resolving_shows_the_link() -> None:
    text = render_progress(snapshot(status=R.RESOLVING), NOW)
    assert "Reading your Spotify link" in text
    assert LINK in text


def test_failed_resolution_shows_link_and_reason() -> None:
    text = render_progress(snapshot(status=R.FAILED, error="not found on Spotify"), NOW)
    assert LINK in text
    assert "Couldn't read" in text
    assert "not found on Spotify" in text


def test_failed_resolution_without_reason() -> None:
    assert "unknown error" in render_progress(snapshot(status=R.FAILED), NOW)


def test_cancelled_before_running() -> None:
    text = render_progress(snapshot(status=R.CANCELLED, resolved=False), NOW)
    assert "Cancelled" in text
    assert LINK in text
    assert "Couldn't read" not in text


def test_running_counts_and_bar() -> None:
    text = render_progress(snapshot(states("sent", "sent", "failed", "running", "pending")), NOW)
    assert "Daft Punk – Discovery" in text
    assert "3/5" in text
    assert progress_bar(3, 5) in text
    assert "2 delivered" in text
    assert "1 failed" in text
    assert "2 remaining" in text
    assert "ETA" not in text  # nothing timed yet
    assert "Done" not in text


def test_running_with_eta() -> None:
    items = [timed("sent", 30), timed("sent", 30), TrackState(status="running"), TrackState(status="pending")]
    text = render_progress(snapshot(items), NOW)
    assert "ETA ~1 min" in text  # 30 s average × 2 waiting / 1 running
    assert "2 remaining" in text


def test_a_short_eta_is_not_shown_as_zero() -> None:
    items = [timed("sent", 2), TrackState(status="running")]
    text = render_progress(snapshot(items), NOW)
    assert "ETA <1 min" in text


def test_ready_tracks_count_as_remaining_until_sent() -> None:
    text = render_progress(snapshot([timed("sent", 10), timed("ready", 10), TrackState(status="running")]), NOW)
    assert "1/3" in text
    assert "2 remaining" in text


def test_not_done_while_a_ready_track_waits_for_the_sender() -> None:
    # Every track is terminal, but the last one is ready and not sent yet.
    text = render_progress(snapshot([timed("sent", 10), timed("ready", 10)], next_send=1), NOW)
    assert "1/2" in text
    assert "1 remaining" in text
    assert "Done" not in text


def test_delayed_note_shows_the_nearest_retry() -> None:
    items = [
        TrackState(status="retrying", retry_at=NOW + 300, reason="rate-limited by the service"),
        TrackState(status="retrying", retry_at=NOW + 90),
        TrackState(status="pending"),
    ]
    text = render_progress(snapshot(items), NOW)
    assert "Delayed" in text
    assert "next try in 2 min" in text


def test_no_delayed_note_once_the_retry_time_has_passed() -> None:
    items = [TrackState(status="retrying", retry_at=NOW - 1), TrackState(status="retrying")]
    assert "Delayed" not in render_progress(snapshot(items), NOW)


def test_delayed_note_only_for_retrying_tracks() -> None:
    items = [TrackState(status="running", retry_at=NOW + 60)]
    assert "Delayed" not in render_progress(snapshot(items), NOW)


def test_truncated_playlist_note() -> None:
    text = render_progress(snapshot(states("pending"), kind="playlist", truncated=True), NOW)
    assert "first 100 tracks" in text
    assert "more may exist" in text


def test_per_request_limit_note() -> None:
    text = render_progress(snapshot(states("pending", "pending"), available=750), NOW)
    assert "first 2 of 750" in text
    assert "limit" in text


def test_no_notes_for_a_plain_request() -> None:
    text = render_progress(snapshot(states("pending", "pending")), NOW)
    assert "⚠️" not in text
    assert "Delayed" not in text


def test_skipped_items_note_counts_items_and_lists_distinct_reasons() -> None:
    skipped = [
        SkippedItem(title="A podcast", reason="episodes aren't supported"),
        SkippedItem(title="Another", reason="episodes aren't supported"),
        SkippedItem(title="Local", reason="local files can't be fetched"),
    ]
    text = render_progress(snapshot(states("pending"), kind="playlist", skipped=skipped), NOW)
    assert "3 item(s) skipped" in text
    assert "episodes aren't supported" in text
    assert "local files can't be fetched" in text
    assert text.count("episodes aren't supported") == 1


def test_settled_done() -> None:
    text = render_progress(snapshot(states("sent", "sent", "sent")), NOW)
    assert "Done" in text
    assert "3 delivered" in text
    assert "failed" not in text
    assert "remaining" not in text
    assert "Cancelled" not in text


def test_settled_with_failures_lists_tracks_and_reasons() -> None:
    items = [
        TrackState(status="sent"),
        TrackState(status="failed", reason="no confident match"),
        TrackState(status="failed"),
    ]
    tracks = [
        track(0),
        track(1, artists=("Daft Punk", "Romanthony"), title="One More Time"),
        track(2, title="Aerodynamic"),
    ]
    text = render_progress(snapshot(items, tracks=tracks), NOW)
    assert "Done" in text
    assert "1 delivered" in text
    assert "2 failed" in text
    assert "Daft Punk, Romanthony – One More Time — no confident match" in text
    assert "Artist – Aerodynamic — failed" in text
    assert "Song 0" not in text


def test_empty_request_is_done_at_once() -> None:
    text = render_progress(snapshot([], kind="playlist", skipped=[SkippedItem(title="x", reason="local file")]), NOW)
    assert "Done" in text
    assert "0 delivered" in text
    assert "1 item(s) skipped" in text


def test_many_failures_are_capped_with_a_count_of_the_rest() -> None:
    items = [TrackState(status="failed", reason=f"reason {i}") for i in range(40)]
    text = render_progress(snapshot(items), NOW)
    assert "40 failed" in text
    assert "reason 0" in text
    assert f"reason {MAX_FAILURES_LISTED - 1}" in text
    assert f"reason {MAX_FAILURES_LISTED}" not in text
    assert "reason 39" not in text
    assert f"… and {40 - MAX_FAILURES_LISTED} more failed" in text


def test_cancelled_while_running_summarises_what_was_cancelled() -> None:
    items = states("sent", "failed", "running", "ready", "pending")
    items[1].reason = "unavailable"
    text = render_progress(snapshot(items, status=R.CANCELLED), NOW)
    assert "Cancelled" in text
    assert "Done" not in text
    assert "1 delivered" in text
    assert "1 failed" in text
    assert "3 cancelled" in text
    assert "unavailable" in text


def test_cancelled_after_everything_was_delivered_mentions_no_cancelled_tracks() -> None:
    text = render_progress(snapshot(states("sent", "sent"), status=R.CANCELLED), NOW)
    assert "2 delivered" in text
    assert "cancelled" not in text.split("Cancelled", 1)[1]


# --- render_progress: the Telegram limit ------------------------------------------------------------

LONG = "x" * 300


def huge_snapshot(track_status: str, **kwargs: object) -> RequestSnapshot:
    items = [TrackState(status=track_status, reason=f"{LONG} {i}") for i in range(500)]  # type: ignore[arg-type]
    tracks = [track(i, artists=tuple(f"{LONG} artist {j}" for j in range(3)), title=LONG) for i in range(500)]
    skipped = [SkippedItem(title=LONG, reason=f"{LONG} skipped {i}") for i in range(500)]
    return snapshot(
        items, tracks=tracks, name=LONG, owner=LONG, kind="playlist", skipped=skipped, truncated=True, **kwargs
    )  # type: ignore[arg-type]


@pytest.mark.parametrize("status", [R.RUNNING, R.DONE, R.CANCELLED])
def test_500_long_failures_fit_in_one_message(status: RequestStatus) -> None:
    text = render_progress(huge_snapshot("failed", status=status, available=900), NOW)
    assert len(text) <= TELEGRAM_TEXT_LIMIT
    assert text.endswith("…")
    assert LONG in text


def test_500_tracks_running_fit_in_one_message() -> None:
    text = render_progress(huge_snapshot("retrying"), NOW)
    assert len(text) <= TELEGRAM_TEXT_LIMIT


def test_500_short_failures_fit_without_cutting() -> None:
    items = [TrackState(status="failed", reason="no confident match") for _ in range(500)]
    text = render_progress(snapshot(items), NOW)
    assert len(text) <= TELEGRAM_TEXT_LIMIT
    assert "500 failed" in text
    assert f"… and {500 - MAX_FAILURES_LISTED} more failed" in text


@pytest.mark.parametrize("status", list(RequestStatus))
@pytest.mark.parametrize("resolved", [False, True])
def test_every_status_fits(status: RequestStatus, resolved: bool) -> None:
    text = render_progress(snapshot(states("failed", "sent", "running"), status=status, resolved=resolved), NOW)
    assert 0 < len(text) <= TELEGRAM_TEXT_LIMIT


# --- render_status_line ----------------------------------------------------------------------------


def test_status_line_while_resolving() -> None:
    text = render_status_line(snapshot(status=R.RESOLVING), NOW)
    assert LINK in text
    assert "reading the link" in text


def test_status_line_counts_work_in_progress() -> None:
    items = [
        TrackState(status="sent"),
        TrackState(status="failed"),
        TrackState(status="running", step="downloading"),
        TrackState(status="running"),
        TrackState(status="pending"),
    ]
    text = render_status_line(snapshot(items), NOW)
    assert "Daft Punk – Discovery" in text
    assert "2/5" in text
    assert progress_bar(2, 5, 10) in text
    assert "2 in progress" in text


def test_status_line_waiting() -> None:
    text = render_status_line(snapshot(states("sent", "queued", "pending")), NOW)
    assert "1/3" in text
    assert "waiting" in text
    assert "in progress" not in text


def test_resolving_shows_a_spotify_delay() -> None:
    resolving = snapshot(status=R.RESOLVING).model_copy(update={"resolution": None, "retry_at": NOW + 120})
    text = render_progress(resolving, NOW)
    assert "Delayed" in text and "2 min" in text


# --- the new statuses ------------------------------------------------------------------------------


def test_done_shows_the_summary() -> None:
    text = render_progress(snapshot(states("sent", "failed"), status=R.DONE), NOW)
    assert "Done: ✅ 1 delivered · ❌ 1 failed" in text
    assert "remaining" not in text


def test_cancelled_tracks_are_counted_as_cancelled() -> None:
    """Cancelling a request marks its unfinished tracks cancelled: the summary counts them."""
    text = render_progress(snapshot(states("sent", "cancelled", "cancelled"), status=R.CANCELLED), NOW)
    assert "🛑 Cancelled: ✅ 1 delivered · 🛑 2 cancelled" in text


def test_a_ready_track_is_not_waiting_for_a_worker() -> None:
    """A file waiting for the chat's pace needs no more processing time."""
    assert estimate_remaining([timed("sent", 10), TrackState(status="ready")], NOW) == 0


# --- edit_wait -------------------------------------------------------------------------------------

INTERVAL = 3.0


def test_an_edit_waits_the_interval_after_the_last_one() -> None:
    assert edit_wait(NOW, NOW, INTERVAL, streaming=False, final=False) == INTERVAL
    assert edit_wait(NOW + 1, NOW, INTERVAL, streaming=False, final=False) == pytest.approx(INTERVAL - 1)
    assert edit_wait(NOW + INTERVAL, NOW, INTERVAL, streaming=False, final=False) == 0.0


def test_an_edit_never_waits_a_negative_time() -> None:
    assert edit_wait(NOW + 1000, NOW, INTERVAL, streaming=True, final=False) == 0.0
    assert edit_wait(NOW, 0.0, INTERVAL, streaming=False, final=False) == 0.0  # never edited


def test_while_audios_stream_an_edit_waits_longer() -> None:
    """The audios show the progress themselves and share the chat's pace with the edits."""
    assert STREAMING_EDIT_INTERVAL > INTERVAL
    assert edit_wait(NOW, NOW, INTERVAL, streaming=True, final=False) == STREAMING_EDIT_INTERVAL
    assert edit_wait(NOW + INTERVAL, NOW, INTERVAL, streaming=True, final=False) == pytest.approx(
        STREAMING_EDIT_INTERVAL - INTERVAL
    )
    assert edit_wait(NOW + STREAMING_EDIT_INTERVAL, NOW, INTERVAL, streaming=True, final=False) == 0.0


@pytest.mark.parametrize("streaming", [False, True])
def test_the_final_summary_never_waits_beyond_the_interval(streaming: bool) -> None:
    assert edit_wait(NOW, NOW, INTERVAL, streaming=streaming, final=True) == INTERVAL
    assert edit_wait(NOW + INTERVAL, NOW, INTERVAL, streaming=streaming, final=True) == 0.0


def test_a_long_interval_is_kept_while_streaming() -> None:
    long = STREAMING_EDIT_INTERVAL * 3
    assert edit_wait(NOW, NOW, long, streaming=True, final=False) == long


def test_a_track_picked_from_a_search_is_named_before_it_is_read() -> None:
    found = Track(
        spotify_id="B_HSa1dEL9s", title="For Whom The Bell Tolls", artists=["Metallica"], origin="youtube-music"
    )
    meta = RequestMeta(
        id="r1",
        chat_id=10,
        user_id=20,
        link="https://music.youtube.com/watch?v=B_HSa1dEL9s",
        created_at=NOW,
        track=found,
    )
    text = render_progress(RequestSnapshot(meta=meta), NOW)
    assert text.startswith("🔎 Metallica – For Whom The Bell Tolls…")
    assert "Spotify" not in text
    assert RequestMeta.model_validate_json(meta.model_dump_json()) == meta, "the track survives Redis"
