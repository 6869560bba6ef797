"""Spotify link in, tagged MP3 out: the media pipeline, usable without Telegram."""

from pipeline.models import Candidate, Collection, SkippedItem, Track

__all__ = ["Candidate", "Collection", "SkippedItem", "Track"]
