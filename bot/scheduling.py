"""Fair share of the workers: which requests may start a track now. Pure: counts in, choices out.

The bot keeps at most `slots` track messages queued or running in all (the live worker threads plus one
waiting, so a freed thread finds work at once). Each free slot goes to the request whose chat has the
fewest tracks in flight, then to that chat's request with the fewest, then to the one shared first. So a
request alone uses every worker; a single track shared during someone's 500-track playlist takes the
next free slot; and one person's requests take turns in the order shared.

Limits per request: at most `window` tracks in flight (queued, running or waiting out a retry), and at
most `hold_limit` files in flight or ready-but-unsent (a stalled chat cannot fill the disk).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Demand:
    rid: str
    chat_id: int
    working: int  # queued or running: holds a worker slot
    retrying: int  # waiting out a retry delay: holds no worker, counts against the window
    held: int  # ready but not sent yet: a file on disk
    waiting: int  # pending tracks that could start


def allocate(demands: Sequence[Demand], slots: int, *, window: int, hold_limit: int) -> list[str]:
    """One request id per track to start now, in `demands` order of preference (oldest request first)."""
    working = {d.rid: d.working for d in demands}
    waiting = {d.rid: d.waiting for d in demands}
    chat_load: Counter[int] = Counter()
    for demand in demands:
        chat_load[demand.chat_id] += demand.working
    free = slots - sum(working.values())
    order = {d.rid: position for position, d in enumerate(demands)}
    picks: list[str] = []
    while free > 0:
        eligible = [
            d
            for d in demands
            if waiting[d.rid] > 0
            and working[d.rid] + d.retrying < window
            and working[d.rid] + d.retrying + d.held < hold_limit
        ]
        if not eligible:
            break
        best = min(eligible, key=lambda d: (chat_load[d.chat_id], working[d.rid], order[d.rid]))
        picks.append(best.rid)
        working[best.rid] += 1
        waiting[best.rid] -= 1
        chat_load[best.chat_id] += 1
        free -= 1
    return picks


def slots_for(worker_threads: int) -> int:
    """Track messages to keep queued or running: every live thread busy, plus one ready to take."""
    return worker_threads + 1 if worker_threads > 0 else 0


def hold_limit_for(worker_threads: int) -> int:
    """Files one request may hold (in flight or unsent): enough to keep every worker busy twice over."""
    return max(4, 2 * (worker_threads + 1))
