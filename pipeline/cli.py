"""`python -m pipeline URL [URL…] -o DIR`: tagged MP3s from Spotify links, without Telegram.

An argument without a link is searched for ("artist - title": Spotify's search with credentials, else YouTube
Music's) and its first match fetched.

Exit codes: 0 all tracks saved, 1 some failed (a summary says why), 2 bad input or settings: one line each
(a link that turns out to lead nowhere counts as bad input when no link led anywhere).

Files are named `Artist - Title.mp3`; a second, different track of the same name in one run gets
`Artist - Title (2).mp3` (the first listed keeps the plain name), a track listed twice is fetched once. A file
left by an earlier run is replaced, so running the same link again updates its files instead of copying them.
With `--lrc`, a track whose synced lyrics were found also gets `Artist - Title.lrc` (the MP3's name) beside it.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
import threading
import unicodedata
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Column, Table
from rich.text import Text

from pipeline.errors import ConfigurationError, PermanentError, PipelineError
from pipeline.filenames import numbered_filename, safe_join, track_filename
from pipeline.frontend import resolve_collection, thread_providers, thread_searcher
from pipeline.links import RejectedLink, ShortLink, SpotifyRef, parse_links
from pipeline.metadata import SpotifyMetadata
from pipeline.models import Collection, Track
from pipeline.retrying import call_with_retries
from pipeline.settings import PipelineSettings, load_settings
from pipeline.sources import SearchProvider, load_providers
from pipeline.spotify_parse import single
from pipeline.track_job import WORKDIR_PREFIX, fetch_track
from pipeline.track_search import normalize_query
from pipeline.ytdlp import cookies_problem

log = logging.getLogger("pipeline")
EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
NOTHING_FOUND = "nothing found for these words"

Wanted = SpotifyRef | ShortLink | str  # a link, or words to search for


@dataclass(frozen=True)
class Failure:
    what: str
    reason: str
    permanent: bool = True


@dataclass(frozen=True)
class Planned:
    """A track to fetch and the file name it gets in the output directory."""

    track: Track
    filename: str


def fail(message: str) -> None:
    """The one line a user sees for bad input or settings (plain print: no wrapping, no markup)."""
    print(f"error: {printable(message)}", file=sys.stderr)


def printable(text: str) -> str:
    """User text (titles, reasons, links) fit for one terminal line: control characters (newlines, escape
    sequences) become spaces and invisible format characters (bidi overrides, zero-width spaces) go."""
    if text.isprintable():
        return text
    return "".join(" " if unicodedata.category(ch) == "Cc" else ch for ch in text if unicodedata.category(ch) != "Cf")


def shown(text: str) -> str:
    """User text inside a rich markup string: printable, and its `[...]` never read as markup."""
    return escape(printable(text))


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m pipeline", description=__doc__.splitlines()[0])
    parser.add_argument(
        "links",
        nargs="+",
        metavar="URL",
        help='Spotify track, album or playlist links, or words to search for ("artist - title": the first match)',
    )
    parser.add_argument("-o", "--output", type=Path, help="directory for the MP3 files (default: DOWNLOAD_DIR)")
    parser.add_argument("-j", "--jobs", type=int, default=2, help="tracks processed in parallel (default 2)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log each matching decision")
    parser.add_argument(
        "--lrc", action="store_true", help="also write synced lyrics (when found) as Artist - Title.lrc beside the MP3"
    )
    return parser.parse_args(argv)


def collect_links(texts: Sequence[str]) -> tuple[list[Wanted], list[RejectedLink]]:
    """The links in the arguments, in order; an argument without any link is a search (its cleaned words)."""
    good: list[Wanted] = []
    bad: list[RejectedLink] = []
    for text in texts:
        parsed = parse_links(text)
        if not parsed:
            query = normalize_query(text)
            if query:
                good.append(query)
            else:
                bad.append(RejectedLink(text=text[:80], reason="no Spotify link found and no words to search for"))
        for link in parsed:
            (bad if isinstance(link, RejectedLink) else good).append(link)  # type: ignore[arg-type]
    return good, bad


def name_key(filename: str) -> str:
    """Names that one file system may take for the same file: case-insensitive (macOS, Windows) and
    normalization-insensitive (macOS) ones included."""
    return unicodedata.normalize("NFC", filename).casefold()


class Runner:
    def __init__(self, settings: PipelineSettings, out_dir: Path, *, lrc: bool = False):
        self.settings = settings
        self.out_dir = out_dir
        self.lrc = lrc  # write synced lyrics to an .lrc file beside each MP3
        self._local = threading.local()
        self.metadata = SpotifyMetadata(settings)
        self.bad_links: list[Failure] = []  # links that led to no tracks at all
        self.failures: list[Failure] = []  # tracks (and items of a collection) that could not be saved
        self.notes: list[str] = []  # markup, user text escaped
        self.saved: list[Path] = []
        self.lrc_files: list[Path] = []
        self._names: set[str] = set()  # name_key of every file name given out in this run
        self._planned: dict[str, Planned] = {}  # by Spotify id
        self._repeats: dict[str, int] = {}  # Spotify id -> how many more times it was listed

    @property
    def providers(self) -> list[tuple[str, SearchProvider]]:
        return thread_providers(self.settings, self._local)

    def _retry(self, func):  # type: ignore[no-untyped-def]
        return call_with_retries(func, max_retry_after=self.settings.spotify_max_retry_after)

    def resolve(self, link: Wanted) -> Collection | None:
        if isinstance(link, str):
            return self.search(link)
        try:
            return self._retry(lambda: resolve_collection(link, self.settings, self.metadata))
        except PipelineError as error:
            self.bad_links.append(Failure(link.url, error.reason, permanent=isinstance(error, PermanentError)))
            return None

    def search(self, query: str) -> Collection | None:
        """The first match of a text search, as a one-track collection."""
        try:
            found = self._retry(lambda: thread_searcher(self.settings, self._local).search(query, limit=1))
        except PipelineError as error:
            self.bad_links.append(Failure(query, error.reason, permanent=isinstance(error, PermanentError)))
            return None
        if not found:
            self.bad_links.append(Failure(query, NOTHING_FOUND))
            return None
        return single(found[0])

    def plan(self, collection: Collection) -> list[Planned]:
        """The collection's tracks to fetch, each with its own file name, in order (so names do not depend on
        which download finishes first). A track already planned in this run is left out with a note."""
        for item in collection.skipped:
            self.failures.append(Failure(item.title, item.reason))
        if collection.truncated:
            self.notes.append(f"{shown(collection.name)}: Spotify shows only the first 100 tracks; more may exist")
        planned = []
        for track in collection.tracks:
            if track.spotify_id in self._planned:
                self._repeats[track.spotify_id] = self._repeats.get(track.spotify_id, 1) + 1
                continue
            self._planned[track.spotify_id] = Planned(track, self._claim(track_filename(track)))
            planned.append(self._planned[track.spotify_id])
        return planned

    def repeat_notes(self) -> list[str]:
        """One note per track listed more than once (in a playlist, or in several of the links)."""
        notes = []
        for spotify_id, times in self._repeats.items():
            first = self._planned[spotify_id]
            notes.append(
                f"{shown(first.track.display_name)}: listed {times} times; fetched once, as {shown(first.filename)}"
            )
        return notes

    def _claim(self, filename: str) -> str:
        name, number = filename, 1
        while name_key(name) in self._names:
            number += 1
            name = numbered_filename(filename, number)
        self._names.add(name_key(name))
        return name

    def fetch(self, planned: Planned, progress: Progress, task: TaskID) -> None:
        track = planned.track

        def on_step(step: str) -> None:
            progress.update(task, status=step)

        try:
            enriched = self._retry(lambda: self.metadata.enrich(track))
            path = self._retry(lambda: self._fetch_into_place(enriched, planned.filename, on_step))
            self.saved.append(path)
            progress.update(task, status="[green]saved[/]", description=printable(path.name), completed=1)
        except PipelineError as error:
            self.failures.append(Failure(track.display_name, error.reason))
            failed = printable(f"{track.display_name}: {error.reason}")
            progress.update(task, status="[red]failed[/]", description=failed, completed=1)
        except Exception as error:  # a bug must not hide the other tracks' results
            log.debug("unexpected error", exc_info=True)
            self.failures.append(Failure(track.display_name, f"unexpected error: {type(error).__name__}"))
            progress.update(task, status="[red]failed[/]", completed=1)

    def _fetch_into_place(self, track: Track, filename: str, on_step: Callable[[str], None]) -> Path:
        """Fetch into a private folder of the output directory (so two tracks whose metadata gives the same name
        never meet there), then move the file to its planned name."""
        private = Path(tempfile.mkdtemp(prefix=WORKDIR_PREFIX, dir=self.out_dir))
        try:
            result = fetch_track(track, self.settings, providers=self.providers, out_dir=private, on_step=on_step)
            final = safe_join(self.out_dir, filename)
            os.replace(result.path, final)
            if self.lrc and result.lyrics and result.lyrics.synced:
                self._write_lrc(result.lyrics.text, private, final.with_suffix(".lrc"))
            return final
        finally:
            shutil.rmtree(private, ignore_errors=True)

    def _write_lrc(self, text: str, private: Path, final: Path) -> None:
        """Written in the private folder, then moved into place: a reader never sees half a file. An .lrc
        left by an earlier run stays when no synced lyrics were found this time."""
        draft = private / "lyrics.lrc"
        try:
            draft.write_text(text + "\n", encoding="utf-8")
            os.replace(draft, final)
        except OSError as error:  # the MP3 is in place: the lyrics file alone is lost
            log.warning("could not write %s: %s", final.name, error.strerror or error)
            return
        self.lrc_files.append(final)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    # No emoji codes: a title with ":fire:" in it is printed as written.
    console = Console(stderr=True, emoji=False)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(message)s",
        handlers=[RichHandler(console=console, show_path=False)],
    )
    for noisy in ("urllib3", "httpx", "spotipy", "ytmusicapi"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if not args.verbose:  # spotipy logs every 404 as an ERROR; the pipeline turns them into the reasons shown
        logging.getLogger("spotipy").setLevel(logging.CRITICAL)
    try:
        settings = load_settings(PipelineSettings)
        load_providers(settings)  # fail now, with one line, on a bad AUDIO_SOURCES
    except ConfigurationError as error:
        fail(error.reason)
        return EXIT_BAD_INPUT
    if problem := cookies_problem(settings):  # an optional file: say so, carry on without it
        console.print(f"note: {problem}", soft_wrap=True)
    links, rejected = collect_links(args.links)
    if rejected:
        fail("; ".join(f"{r.text}: {r.reason}" for r in rejected))
        return EXIT_BAD_INPUT
    out_dir = args.output or settings.download_dir
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        fail(f"cannot create output directory {out_dir}: {error.strerror}")
        return EXIT_BAD_INPUT

    runner = Runner(settings, out_dir, lrc=args.lrc)
    if args.lrc and not settings.lyrics:
        runner.notes.append("--lrc writes nothing while LYRICS=off")
    planned: list[Planned] = []
    resolved_any = False
    for link in links:
        doing = f"searching for {shown(link)}" if isinstance(link, str) else f"reading {shown(link.url)}"
        with console.status(doing):
            collection = runner.resolve(link)
        if collection is not None:
            resolved_any = True
            planned.extend(runner.plan(collection))
    for note in [*runner.notes, *runner.repeat_notes()]:
        console.print(f"note: {note}", soft_wrap=True)
    if planned:
        download(console, runner, planned, jobs=max(1, args.jobs))
    return report(console, runner, resolved_any)


def download(console: Console, runner: Runner, planned: list[Planned], *, jobs: int) -> None:
    columns = (
        TextColumn("{task.fields[status]}", table_column=Column(no_wrap=True, min_width=11)),  # ours: markup
        TextColumn("{task.description}", markup=False),  # user text: never markup
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        tasks = [(p, progress.add_task(printable(p.track.display_name), total=1, status="queued")) for p in planned]
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            for item, task in tasks:
                pool.submit(runner.fetch, item, progress, task)


def report(console: Console, runner: Runner, resolved_any: bool) -> int:
    """The summary: what was saved, then one line per link that led nowhere, then a table of failed tracks."""
    if resolved_any:
        console.print(f"{len(runner.saved)} track(s) saved to {shown(str(runner.out_dir))}")
    if runner.lrc:
        console.print(f"{len(runner.lrc_files)} lyrics file(s) (.lrc) written")
    for bad in runner.bad_links:
        fail(f"{bad.what}: {bad.reason}")
    if runner.failures:
        table = Table("Failed", "Reason", title=f"{len(runner.failures)} failure(s)")
        for failure in runner.failures:
            table.add_row(Text(printable(failure.what)), Text(printable(failure.reason)))
        console.print(table)
    if runner.bad_links and not resolved_any:
        return EXIT_BAD_INPUT if all(bad.permanent for bad in runner.bad_links) else EXIT_FAILED
    return EXIT_FAILED if runner.failures or runner.bad_links else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
