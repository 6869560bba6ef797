"""Replays recorded YouTube Music search responses at the HTTP transport (a requests adapter).

ytmusicapi and our provider run unchanged; only the bytes on the wire are canned. The recorded files are
named `ytm_search_<filter>_<query-slug>_page<N>.json` (see tests/data/README.md): the
adapter reads the query and `params` (the filter) from the POST body and follows continuation tokens
(`ctoken=` in the URL) to page N+1. A search that was never recorded answers an empty result and is
remembered in `missing`, so a caller can tell "not found" from "not recorded".
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import requests
from requests.adapters import HTTPAdapter
from urllib3 import HTTPResponse

ISRC = re.compile(r"^[A-Za-z]{2}[A-Za-z0-9]{3}\d{7}$")
EMPTY_SEARCH = {"responseContext": {}}  # what YTM answers when nothing matches: no "contents"

# ytmusicapi (parsers/search.py): filtered params are "EgWKAQ" + a filter code + a spelling suffix.
_FILTER_CODES = {"II": "songs", "IQ": "videos", "IY": "albums", "Ig": "artists", "Io": "playlists"}


def query_slug(query: str) -> str:
    """The file-name slug the recordings use: lower case, non-word runs -> "-", at most 60 characters."""
    return re.sub(r"[\W_]+", "-", query.lower()).strip("-")[:60].rstrip("-")


def filter_name(params: str | None, query: str) -> str:
    if not params:
        return "isrc" if ISRC.match(query.strip()) else "nofilter"
    if params.startswith("EgWKAQ"):
        return _FILTER_CODES.get(params[6:8], "unknown")
    return "unknown"


@dataclass(frozen=True)
class SearchRequest:
    filter: str
    query: str
    page: int

    @property
    def file_name(self) -> str:
        return f"ytm_search_{self.filter}_{query_slug(self.query)}_page{self.page}.json"


# The recordings were made by spotDL, which asks for German (`YTMusic(language="de")`). ytmusicapi reads
# a few localized labels: with hl=en it skips a songs shelf titled "Titel" and types a "Titel" top result
# as an album. YouTube Music answers in the requested language, so for any other hl the replay swaps
# those labels for the English ones YouTube Music would send; results (titles, artists, ids) stay as recorded.
_SHELF_TITLES_DE_EN = {
    "Titel": "Songs",
    "Videos": "Videos",
    "Alben": "Albums",
    "Künstler": "Artists",
    "Community-Playlists": "Community playlists",
    "Folgen": "Episodes",
    "Profile": "Profiles",
}
_CARD_TYPES_DE_EN = {
    "Titel": "Song",
    "Künstler": "Artist",
    "Folge": "Episode",
    "Profil": "Profile",
    "Sender": "Station",
}


def english_labels(body: dict) -> dict:
    """The recorded German response as YouTube Music would label it for hl=en (see above)."""

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "musicShelfRenderer":
                    for run in value.get("title", {}).get("runs", []):
                        run["text"] = _SHELF_TITLES_DE_EN.get(run.get("text"), run.get("text"))
                elif key == "musicCardShelfRenderer":
                    runs = value.get("subtitle", {}).get("runs", [])
                    if runs:
                        runs[0]["text"] = _CARD_TYPES_DE_EN.get(runs[0].get("text"), runs[0].get("text"))
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(body)
    return body


def _continuation_tokens(body: dict) -> list[str]:
    found: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            data = node.get("nextContinuationData")
            if isinstance(data, dict) and isinstance(data.get("continuation"), str):
                found.append(data["continuation"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(body)
    return found


def _response(adapter: HTTPAdapter, request: requests.PreparedRequest, status: int, body: bytes, headers: dict):
    raw = HTTPResponse(
        body=io.BytesIO(body), status=status, headers=headers, preload_content=False, decode_content=False
    )
    return adapter.build_response(request, raw)


def _requested_language(body: str | bytes | None) -> str | None:
    payload = json.loads(body or b"{}")
    return payload.get("context", {}).get("client", {}).get("hl")


class RecordedYTMusic(HTTPAdapter):
    """Answers music.youtube.com from a directory of recorded search responses."""

    def __init__(self, directory: Path) -> None:
        super().__init__()
        self.directory = Path(directory)
        self.searches: list[SearchRequest] = []  # every search asked for, in order
        self.served: list[SearchRequest] = []
        self.missing: list[SearchRequest] = []

    def _load(self, name: str) -> dict | None:
        path = self.directory / name
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None

    def _page_after(self, filter_: str, query: str, token: str) -> int | None:
        """Which page a continuation token asks for: the one after the page that carried it."""
        page = 1
        while (body := self._load(SearchRequest(filter_, query, page).file_name)) is not None:
            tokens = _continuation_tokens(body)
            if token in tokens or unquote(token) in {unquote(t) for t in tokens}:
                return page + 1
            page += 1
        return None

    def search_request(self, request: requests.PreparedRequest) -> SearchRequest:
        return self._search_request(request.url or "", request.body)

    def _search_request(self, url: str, body: str | bytes | None) -> SearchRequest:
        payload = json.loads(body or b"{}")
        query = payload.get("query", "")
        filter_ = filter_name(payload.get("params"), query)
        match = re.search(r"[?&]ctoken=([^&]*)", url)
        page = 1 if match is None else (self._page_after(filter_, query, match.group(1)) or 0)
        return SearchRequest(filter_, query, page)

    def answer(self, method: str, url: str, body: str | bytes | None) -> tuple[int, bytes, dict[str, str]]:
        """(status, body, headers) for one request to music.youtube.com (also served over HTTP by
        tests.fakes.ytmusic_server)."""
        if method == "GET":  # ytmusicapi fetches the home page once for a visitor id
            return 200, b"<html></html>", {"Content-Type": "text/html"}
        if "/youtubei/v1/search" not in url:
            return 404, b'{"error": {"message": "not recorded"}}', {}
        wanted = self._search_request(url, body)
        self.searches.append(wanted)
        answer = self._load(wanted.file_name) if wanted.page else None
        if answer is None:
            self.missing.append(wanted)
            answer = EMPTY_SEARCH
        else:
            self.served.append(wanted)
            if _requested_language(body) != "de":
                answer = english_labels(answer)
        return 200, json.dumps(answer).encode(), {"Content-Type": "application/json"}

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):  # type: ignore[override]
        status, body, headers = self.answer(request.method or "GET", request.url or "", request.body)
        return _response(self, request, status, body, headers)


class CannedStatus(HTTPAdapter):
    """Answers every request with one status (to test 429 / 5xx handling at the transport)."""

    def __init__(self, status: int, headers: dict | None = None, body: bytes = b"<html>error</html>") -> None:
        super().__init__()
        self.status, self.headers, self.body = status, headers or {}, body

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):  # type: ignore[override]
        return _response(self, request, self.status, self.body, self.headers)


class RaisingTransport(HTTPAdapter):
    """Fails like a dead network: raises the given requests exception for every request."""

    def __init__(self, error: requests.RequestException) -> None:
        super().__init__()
        self.error = error

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):  # type: ignore[override]
        raise self.error


def session_with(adapter: HTTPAdapter) -> requests.Session:
    session = requests.Session()
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session
