"""The bot's text search, pure parts: what was searched, the words of a message, the result buttons.

A button's callback_data is limited to 64 bytes, so the results are kept in Redis under a short id
(`bot.schema.search_key`, with a TTL) and a button says only `s:<id>:<n>`. Tapping one starts the same
request a shared link starts: a Spotify result by its open.spotify.com link; a YouTube Music one (no
Spotify credentials) has no such link, so the request carries the track itself (`RequestMeta.track`).
"""

from __future__ import annotations

import re

from pydantic import BaseModel
from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.requests import REQUEST_ID
from pipeline.models import Track
from pipeline.sources.youtube_music import WATCH_URL
from pipeline.track_search import button_label

SEARCH_PREFIX = "s:"
CALLBACK_SEARCH = re.compile(re.escape(SEARCH_PREFIX) + f"({REQUEST_ID.pattern}):([0-9])")


class SearchResults(BaseModel):
    """One search, as its buttons need it: only `user_id` may use them."""

    user_id: int
    chat_id: int
    query: str
    tracks: list[Track]


def search_words(text: str, bot_username: str) -> str:
    """The words of a message addressed to the bot: without a leading /search (or /search@bot) and without
    mentions of the bot."""
    words = re.sub(rf"^/search(@{re.escape(bot_username)})?(?=\s|$)", "", text.strip(), flags=re.IGNORECASE)
    return re.sub(rf"@{re.escape(bot_username)}\b", " ", words, flags=re.IGNORECASE).strip()


def results_keyboard(search_id: str, tracks: list[Track]) -> InlineKeyboardMarkup:
    """One button per track, one per row (labels are long)."""
    return InlineKeyboardMarkup(
        [
            [InlineKeyboardButton(button_label(track), callback_data=f"{SEARCH_PREFIX}{search_id}:{n}")]
            for n, track in enumerate(tracks[:10])
        ]
    )


def request_link(track: Track) -> str:
    """What the request's link shows: the Spotify link, else where the track was found."""
    return track.spotify_url or WATCH_URL + track.spotify_id
