"""What the bot says, in one place (plain strings: easy to review and to test against)."""

HELP = (
    "Send me a Spotify link — a track, an album or a playlist — and I'll send the songs back as tagged MP3s, "
    "in order.\n\n"
    "You can paste several links in one message, or share them from the Spotify app.\n"
    "/status — what I'm working on for you\n"
    "/cancel — stop everything you asked for (or use the Cancel button)\n"
    "/help — this message"
)
NO_LINK = "Send me a Spotify link to a track, album or playlist, e.g. https://open.spotify.com/album/…  (/help)"
UNKNOWN_COMMAND = "I don't know that command. Try /help."
EDITED = "I only act on new messages — please send the link again as a new message."
NOTHING_RUNNING = "Nothing is running for you right now. Send me a Spotify link!"
NOTHING_TO_CANCEL = "There is nothing to cancel."
INTERNAL_ERROR = "Sorry, something went wrong on my side. Please try again in a moment."
BUTTON_EXPIRED = "This request has already finished."
BUTTON_NOT_YOURS = "Only the person who sent this link can cancel it."
BUTTON_INVALID = "This button is no longer valid."
CANCELLING = "Cancelling…"
QUEUE_DOWN = "the job queue is unavailable right now; please send the link again in a minute"
ADMIN_ONLY = "Sorry, that command is only for this bot's admins."
UNCACHE_USAGE = (
    "Usage: /uncache <Spotify link> — forgets the cached files of that track, album or playlist, so they are "
    "downloaded again next time."
)
STORAGE_DOWN = "I can't reach my storage right now, so I can't do that. Please try again in a minute."


def refusal(user_id: int | None) -> str:
    return (
        "Sorry, this is a private bot and you're not on its list of allowed users.\n"
        f"Your Telegram user id is {user_id}. If you run this bot, add it to ALLOWED_USERS and restart it."
    )


def too_many_links(limit: int) -> str:
    return f"That's more than {limit} links in one message. Please send at most {limit} at a time."


def too_many_requests(limit: int) -> str:
    return (
        f"You already have {limit} request(s) waiting or running, the most I keep for one person. "
        "The rest of this message was not queued: send those links again once some have finished, or /cancel."
    )


def cancelling(count: int) -> str:
    return f"Cancelling {count} request(s)…"


def rejected(lines: list[tuple[str, str]]) -> str:
    body = "\n".join(f"• {text} — {reason}" for text, reason in lines[:20])
    more = f"\n… and {len(lines) - 20} more" if len(lines) > 20 else ""
    return f"I can't use {'this link' if len(lines) == 1 else 'these links'}:\n{body}{more}"


def uncache_unreadable(reason: str) -> str:
    return f"I can't read that link: {reason}"


def uncached(forgotten: int, tracks: int) -> str:
    songs = "1 track" if tracks == 1 else f"{tracks} tracks"
    return f"Forgot {forgotten} cached file(s) of {songs}; they will be downloaded again next time."
