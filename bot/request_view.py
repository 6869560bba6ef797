"""The bot's live copy of one open request: its snapshot plus counts kept current change by change.

Redis holds the truth; the copy is updated from the events stream (and from the bot's own transitions),
so that deciding what to start or send next costs the same for a 10-track album and a 500-track
playlist. A state never replaces a newer one (`TrackState.version`), whichever arrives first.
"""

from __future__ import annotations

from collections import Counter

from bot.lifecycle import TRACK_SETTLED, RequestStatus, TrackStatus
from bot.requests import RequestSnapshot, TrackState
from bot.scheduling import Demand

T = TrackStatus


class RequestView:
    def __init__(self, snapshot: RequestSnapshot) -> None:
        self.snapshot = snapshot
        self.counts: Counter[TrackStatus] = Counter(state.status for state in snapshot.states)
        self._next_pending = 0
        self.dirty = True  # changed since the progress text was last rendered
        self.unrecorded: dict[int, str | None] = {}  # sent to Telegram, "sent" not yet stored (Redis down)
        self.claims: set[int] = set()  # tracks this process claimed for a send (bot.lifecycle, "claim")
        self._found_claims = self._claimed()  # claims in what was read from Redis: maybe left by a restart
        self.owed: dict[int, str] = {}  # queue transitions (by ticket) whose Dramatiq message is not sent yet
        self.progress_failures = 0
        self.progress_broken = False  # Telegram refuses every progress message: go on without one
        self.final_shown = False  # final, and its summary is what the progress message shows: close it

    @property
    def rid(self) -> str:
        return self.snapshot.meta.id

    @property
    def chat_id(self) -> int:
        return self.snapshot.meta.chat_id

    @property
    def status(self) -> RequestStatus:
        return self.snapshot.status

    def replace(self, snapshot: RequestSnapshot) -> None:
        """A fresh read from Redis (a request event, or the reconciler); newer track states are kept."""
        old, old_pointer = self.snapshot.states, self.snapshot.next_send
        self.snapshot = snapshot
        if len(old) == len(snapshot.states):
            for index, state in enumerate(old):
                if state.version > snapshot.states[index].version:
                    snapshot.states[index] = state
            snapshot.next_send = max(snapshot.next_send, old_pointer)
        self.counts = Counter(state.status for state in snapshot.states)
        self._next_pending = 0
        self._found_claims = self._claimed()
        self.dirty = True

    def _claimed(self) -> set[int]:
        return {i for i, state in enumerate(self.snapshot.states) if state.status == T.READY and state.claimed_at}

    @property
    def next_send(self) -> int:
        return self.snapshot.next_send

    def set_state(self, index: int, state: TrackState) -> bool:
        """Take `state` unless the copy already holds a newer one; True when it changed."""
        states = self.snapshot.states
        if not 0 <= index < len(states) or state.version <= states[index].version:
            return False
        self.counts[states[index].status] -= 1
        self.counts[state.status] += 1
        states[index] = state
        if state.status == T.PENDING:
            self._next_pending = min(self._next_pending, index)
        self.dirty = True
        return True

    def next_waiting(self) -> int | None:
        """The first pending track (the order tracks start in)."""
        states = self.snapshot.states
        while self._next_pending < len(states) and states[self._next_pending].status != T.PENDING:
            self._next_pending += 1
        return self._next_pending if self._next_pending < len(states) else None

    def advance_pointer(self) -> bool:
        """Move the delivery pointer past settled tracks; True when it moved."""
        snapshot, start = self.snapshot, self.snapshot.next_send
        while snapshot.next_send < snapshot.total and snapshot.states[snapshot.next_send].status in TRACK_SETTLED:
            snapshot.next_send += 1
        return snapshot.next_send != start

    def ready_to_send(self) -> int | None:
        """The index of the next track to send, if it is ready and nothing before it is still unsent."""
        snapshot = self.snapshot
        if snapshot.status != RequestStatus.RUNNING or snapshot.next_send >= snapshot.total:
            return None
        index = snapshot.next_send
        state = snapshot.states[index]
        ready = state.status == T.READY and index not in self.unrecorded
        return index if ready and (state.claimed_at is None or index in self.claims) else None

    def interrupted_sends(self) -> list[int]:
        """Ready tracks claimed by a sender that is gone (a restart between the audio and its record): they may
        have arrived, so they are not sent again. Such claims come only from a read of Redis (a claim of this
        process is in `claims` from before it is written), so only those are looked at: no walk per step."""
        states = self.snapshot.states
        self._found_claims = {i for i in self._found_claims if states[i].status == T.READY and states[i].claimed_at}
        return sorted(self._found_claims - self.claims)

    def demand(self) -> Demand | None:
        if self.status != RequestStatus.RUNNING:
            return None
        counts = self.counts
        return Demand(
            rid=self.rid,
            chat_id=self.chat_id,
            working=counts[T.QUEUED] + counts[T.RUNNING],
            retrying=counts[T.RETRYING],
            held=counts[T.READY],
            waiting=counts[T.PENDING],
        )

    @property
    def all_delivered(self) -> bool:
        return self.status == RequestStatus.RUNNING and self.next_send >= self.snapshot.total
