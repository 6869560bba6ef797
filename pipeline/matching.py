"""Ranks search candidates against a Spotify track. Pure: plain data in, plain data out.

PLACEHOLDER implementation: the matching helper replaces the scoring; the public API
(`ScoredCandidate`, `rank`, `accepted`) stays.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from rapidfuzz import fuzz

from pipeline.models import Candidate, Track

log = logging.getLogger(__name__)

ACCEPT_THRESHOLD = 0.7


@dataclass(frozen=True)
class ScoredCandidate:
    candidate: Candidate
    score: float  # 0..1
    reasons: tuple[str, ...] = ()

    @property
    def acceptable(self) -> bool:
        return self.score >= ACCEPT_THRESHOLD


def score(track: Track, candidate: Candidate) -> ScoredCandidate:
    title = fuzz.token_set_ratio(track.title.lower(), candidate.title.lower()) / 100
    artist = fuzz.partial_ratio(track.main_artist.lower(), candidate.artist.lower()) / 100
    return ScoredCandidate(candidate, (title + artist) / 2, (f"title {title:.2f}", f"artist {artist:.2f}"))


def rank(track: Track, candidates: Iterable[Candidate]) -> list[ScoredCandidate]:
    """All candidates, best first."""
    return sorted((score(track, c) for c in candidates), key=lambda s: s.score, reverse=True)


def accepted(track: Track, candidates: Iterable[Candidate]) -> list[Candidate]:
    """The candidates good enough to download, best first; empty means "no confident match"."""
    ranked = rank(track, candidates)
    for item in ranked[:5]:
        log.debug("%s | %s: %.3f %s", track.spotify_id, item.candidate.url, item.score, ", ".join(item.reasons))
    return [item.candidate for item in ranked if item.acceptable]
