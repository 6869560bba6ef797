"""What the bot says, in one place (plain strings: easy to review and to test against)."""

HELP = (
    "Send me a Spotify link — a track, an album or a playlist — and I'll send the songs back as tagged MP3s, "
    "in order.\n\n"
    "You can paste several links in one message, or share them from the Spotify app.\n"
    "No link at hand? Type the song's name (e.g. Daft Punk - One More Time) and pick it from the buttons.\n"
    "/search <words> — find a song by its name (in groups: /search@me <words>, or mention me)\n"
    "/status — what I'm working on for you\n"
    "/cancel — stop everything you asked for (or use the Cancel button)\n"
    "/login — connect your own Spotify account (private chat), for:\n"
    "/liked — your Liked Songs\n"
    "/playlists — your playlists, one button each (private ones and long ones complete)\n"
    "/logout — forget your Spotify login\n"
    "/help — this message"
)
NO_LINK = (
    "Send me a Spotify link to a track, album or playlist, e.g. https://open.spotify.com/album/…, "
    "or a song's name to search for it  (/help)"
)
SEARCH_USAGE = "What should I look for? Send /search and a song's name, e.g. /search Daft Punk - One More Time"
SEARCH_UNAVAILABLE = "Search is unavailable right now, please try again in a minute."
SEARCH_NOT_YOURS = "Only the person who searched can pick from these results."
SEARCH_EXPIRED = "These results have expired; please search again."
UNKNOWN_COMMAND = "I don't know that command. Try /help."
EDITED = "I only act on new messages — please send the link again as a new message."
NOTHING_RUNNING = "Nothing is running for you right now. Send me a Spotify link!"
NOTHING_TO_CANCEL = "There is nothing to cancel."
INTERNAL_ERROR = "Sorry, something went wrong on my side. Please try again in a moment."
BUTTON_EXPIRED = "This request has already finished."
BUTTON_NOT_YOURS = "Only the person who sent this link can cancel it."
BUTTON_INVALID = "This button is no longer valid."
# A track's send was cut off by a restart: it is never sent twice, so it may or may not have arrived.
INTERRUPTED_SEND = "sending was interrupted by a restart; if it did not arrive, send the link again"
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


# --- a person's own Spotify login (bot.spotify_accounts) ---------------------------------------------------
LOGIN_UNAVAILABLE = "Connecting a Spotify account isn't set up on this bot: its owner has to set SPOTIFY_CLIENT_ID."
LOGIN_PRIVATE_ONLY = "Please send /login to me in a private chat: what you paste back is a key to your account."
NOT_REGISTERED = (
    "Spotify refused access: your Spotify account is not on this app's list of users. Since 2026 a Spotify app "
    "in Development Mode works only for the (at most 5) people its owner has added. Ask the bot's owner to add "
    "you: developer.spotify.com → Dashboard → the app → User Management → add your name and the e-mail address "
    "of your Spotify account. Then send /login again."
)
NOT_LOGGED_IN = "You're not connected to Spotify yet. Send /login first (in a private chat with me)."
LOGGED_OUT = (
    "Disconnected: I've forgotten your Spotify login. To also remove my access on Spotify's side: "
    "spotify.com/account → Manage apps."
)
WAS_NOT_LOGGED_IN = "You weren't connected to Spotify. (/login connects.)"
NO_PLAYLISTS = "There are no playlists in your Spotify library."
LIKED_LABEL = "your Liked Songs"
PLAYLIST_BUTTON_NOT_YOURS = "These buttons belong to the person who asked for the list: send /playlists yourself."
STARTING = "Getting it…"
LOGIN_REFUSED_NOTE = (
    "ℹ️ Spotify lets your login read only playlists you own or collaborate on; this one was read from its "
    "public page, which shows at most its first 100 tracks."
)


def login_link(url: str, redirect_uri: str) -> str:
    return (
        "Connect your Spotify account:\n"
        f"1. Open this link and allow access:\n{url}\n\n"
        f"2. Spotify then sends your browser to an address starting with {redirect_uri}?code=… — the page may "
        "not load, that's fine. Copy that whole address from the address bar (or just the code) and send it to "
        "me here.\n\nThe link works once, for 10 minutes."
    )


def connected(name: str) -> str:
    who = f" as {name}" if name else ""
    return (
        f"✅ Connected to Spotify{who}.\n/liked sends your Liked Songs, /playlists lists your playlists; links to "
        "playlists you own or collaborate on are now read in full. /logout forgets the login."
    )


def login_failed_for_now(reason: str) -> str:
    return f"I couldn't finish the login ({reason}). Please send /login and try again in a minute."


def spotify_for_now(reason: str) -> str:
    return f"I couldn't read your Spotify library right now ({reason}). Please try again in a minute."


def playlists_header(shown: int, total: int) -> str:
    more = f" (the first {shown} of {total})" if total > shown else ""
    return f"Your playlists{more} — tap one to get it:"


def nothing_found(query: str) -> str:
    return f"Nothing found for “{query}”. Try other words, or send a Spotify link."


def search_results(query: str, count: int) -> str:
    return f"🔎 {count} match(es) for “{query}” — pick one:"


def fetching(label: str) -> str:
    return f"Getting {label}…"[:200]


def uncache_unreadable(reason: str) -> str:
    return f"I can't read that link: {reason}"


def uncached(forgotten: int, tracks: int) -> str:
    songs = "1 track" if tracks == 1 else f"{tracks} tracks"
    return f"Forgot {forgotten} cached file(s) of {songs}; they will be downloaded again next time."
