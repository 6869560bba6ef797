"""A search provider over tests.fakes.audio_server, steerable per track, for unit and end-to-end tests.

Load it with `AUDIO_SOURCES=tests.fakes.audio_provider:LocalAudioProvider` and point `FAKE_AUDIO_URL` at
a running AudioServer (`AudioServer.env()` gives both). By default a track gets one exact match:
`Candidate(url=f"{FAKE_AUDIO_URL}/audio/<spotify_id>.m4a", title=track.title, artist=", ".join(track.artists),
duration_s=track.duration_ms / 1000, source="local", result_type="song")`.

A *plan* (a list of modes, one candidate per mode, in order) changes that. The first plan found wins:
1. a marker in the track title, e.g. "Song [fake: 403, ok]";
2. the server's plans (`AudioServer.set_plan(key, modes)`), fetched from `/plan.json` on every search,
   so tests can steer worker processes that are already running;
3. env `FAKE_AUDIO_FAULTS`, a JSON object `{key: [modes]}`.
A key matches a track whose spotify_id equals it or whose title contains it (case-insensitive).

Modes (an optional `.ext` picks the file type, e.g. `ok.webm`, `403.mp3`; default m4a):
- `ok`: an exact match that downloads fine.
- `403` `404` `410` `500` `503` `truncated` `hang` `stall` `slow`: an exact match whose download
  misbehaves that way (see tests.fakes.audio_server).
- `wrong`: a different song (other title, artist and length): any sane matcher rejects it.
- `none`: no candidate. A plan of only `wrong`/`none` gives "no confident match".
- `search-error`: the search itself fails with TransientError (the provider is down).
Candidates after the first get distinct URLs (`<spotify_id>-<n>.<ext>`), so they stay distinct.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping

import requests

from pipeline.errors import TransientError
from pipeline.models import Candidate, Track
from tests.fakes.audio_server import FAULTS

URL_ENV = "FAKE_AUDIO_URL"
FAULTS_ENV = "FAKE_AUDIO_FAULTS"
_TITLE_MARKER = re.compile(r"\[fake:\s*([^\]]*)\]", re.IGNORECASE)


def _lookup(plans: Mapping[str, list[str]], track: Track) -> list[str] | None:
    if track.spotify_id in plans:
        return plans[track.spotify_id]
    title = track.title.lower()
    return next((modes for key, modes in plans.items() if key and key.lower() in title), None)


class LocalAudioProvider:
    """See the module docstring."""

    def __init__(self) -> None:
        base = os.environ.get(URL_ENV)
        if not base:
            raise RuntimeError(f"{URL_ENV} is not set (start tests.fakes.audio_server.AudioServer)")
        self.base_url = base.rstrip("/")

    def plan(self, track: Track) -> list[str]:
        if marker := _TITLE_MARKER.search(track.title):
            return [mode.strip() for mode in marker.group(1).split(",") if mode.strip()]
        try:
            response = requests.get(f"{self.base_url}/plan.json", timeout=5)
            response.raise_for_status()
            server_plans = response.json()
        except (requests.RequestException, ValueError) as error:
            raise TransientError("local audio search failed", detail=str(error)) from None
        found = _lookup(server_plans, track)
        if found is None:
            found = _lookup(json.loads(os.environ.get(FAULTS_ENV) or "{}"), track)
        return ["ok"] if found is None else found

    def search(self, track: Track) -> list[Candidate]:
        candidates = []
        for index, item in enumerate(self.plan(track)):
            mode, _, ext = item.partition(".")
            ext = ext or "m4a"
            name = track.spotify_id if index == 0 else f"{track.spotify_id}-{index}"
            if mode == "search-error":
                raise TransientError("local audio search failed", detail="plan says search-error")
            if mode == "none":
                continue
            if mode == "wrong":
                candidates.append(
                    Candidate(
                        url=f"{self.base_url}/audio/{name}-wrong.{ext}",
                        title="Zzyzx Qwrtp Vlokkern",
                        artist="Xqjv Ptrzk",
                        duration_s=track.duration_ms / 1000 + 400,
                        source="local",
                        result_type="video",
                        rank=index,
                    )
                )
                continue
            if mode != "ok" and mode not in FAULTS:
                raise ValueError(f"unknown fake audio mode {item!r}")
            prefix = "" if mode == "ok" else f"/{mode}"
            candidates.append(
                Candidate(
                    url=f"{self.base_url}{prefix}/audio/{name}.{ext}",
                    title=track.title,
                    artist=", ".join(track.artists),
                    duration_s=track.duration_ms / 1000,
                    source="local",
                    result_type="song",
                    rank=index,
                    extractor="Generic",  # a plain audio file over HTTP
                )
            )
        return candidates
