"""`python -m pipeline URL [URL…] -o DIR`: tagged MP3s from Spotify links, without Telegram.

Exit codes: 0 all tracks saved, 1 some failed (a summary says why), 2 bad input or settings (one line).
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from pipeline.errors import ConfigurationError, PipelineError
from pipeline.links import RejectedLink, ShortLink, SpotifyRef, parse_links
from pipeline.metadata import SpotifyMetadata
from pipeline.models import Collection, Track
from pipeline.retrying import call_with_retries
from pipeline.settings import PipelineSettings, load_settings
from pipeline.shortlinks import resolve_short_link
from pipeline.sources import SearchProvider, load_providers
from pipeline.track_job import fetch_track

log = logging.getLogger("pipeline")
EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


@dataclass(frozen=True)
class Failure:
    what: str
    reason: str


def fail(message: str) -> None:
    """The one line a user sees for bad input or settings (plain print: no wrapping)."""
    print(f"error: {message}", file=sys.stderr)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m pipeline", description=__doc__.splitlines()[0])
    parser.add_argument("links", nargs="+", metavar="URL", help="Spotify track, album or playlist links")
    parser.add_argument("-o", "--output", type=Path, help="directory for the MP3 files (default: DOWNLOAD_DIR)")
    parser.add_argument("-j", "--jobs", type=int, default=2, help="tracks processed in parallel (default 2)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log each matching decision")
    return parser.parse_args(argv)


def collect_links(texts: Sequence[str]) -> tuple[list[SpotifyRef | ShortLink], list[RejectedLink]]:
    good: list[SpotifyRef | ShortLink] = []
    bad: list[RejectedLink] = []
    for text in texts:
        parsed = parse_links(text)
        if not parsed:
            bad.append(RejectedLink(text=text[:80], reason="no Spotify link found"))
        for link in parsed:
            (bad if isinstance(link, RejectedLink) else good).append(link)  # type: ignore[arg-type]
    return good, bad


class Runner:
    def __init__(self, settings: PipelineSettings, out_dir: Path):
        self.settings = settings
        self.out_dir = out_dir
        self._local = threading.local()
        self.metadata = SpotifyMetadata(settings)
        self.failures: list[Failure] = []
        self.saved: list[Path] = []

    @property
    def providers(self) -> list[tuple[str, SearchProvider]]:
        """One set per thread: search clients are not documented as thread-safe."""
        if not hasattr(self._local, "providers"):
            self._local.providers = load_providers(self.settings)
        return self._local.providers

    def _retry(self, func):  # type: ignore[no-untyped-def]
        return call_with_retries(func, max_retry_after=self.settings.spotify_max_retry_after)

    def resolve(self, link: SpotifyRef | ShortLink) -> Collection | None:
        try:
            if isinstance(link, ShortLink):
                resolved = self._retry(lambda: resolve_short_link(link, timeout=self.settings.http_timeout))
                if not isinstance(resolved, SpotifyRef):
                    reason = resolved.reason if isinstance(resolved, RejectedLink) else "not a Spotify link"
                    self.failures.append(Failure(link.url, reason))
                    return None
                link = resolved
            ref = link
            return self._retry(lambda: self.metadata.resolve(ref.kind, ref.id))
        except PipelineError as error:
            self.failures.append(Failure(link.url, error.reason))
            return None

    def fetch(self, track: Track, progress: Progress, task: TaskID) -> None:
        def on_step(step: str) -> None:
            progress.update(task, description=f"{step:<11} {track.display_name}")

        try:
            enriched = self._retry(lambda: self.metadata.enrich(track))
            result = self._retry(
                lambda: fetch_track(
                    enriched, self.settings, providers=self.providers, out_dir=self.out_dir, on_step=on_step
                )
            )
            self.saved.append(result.path)
            progress.update(task, description=f"[green]saved[/]       {result.path.name}", completed=1)
        except PipelineError as error:
            self.failures.append(Failure(track.display_name, error.reason))
            progress.update(task, description=f"[red]failed[/]      {track.display_name}: {error.reason}", completed=1)
        except Exception as error:  # a bug must not hide the other tracks' results
            log.debug("unexpected error", exc_info=True)
            self.failures.append(Failure(track.display_name, f"unexpected error: {type(error).__name__}"))
            progress.update(task, completed=1)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    console = Console(stderr=True)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(message)s",
        handlers=[RichHandler(console=console, show_path=False)],
    )
    for noisy in ("urllib3", "httpx", "spotipy", "ytmusicapi"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        settings = load_settings(PipelineSettings)
        load_providers(settings)  # fail now, with one line, on a bad AUDIO_SOURCES
    except ConfigurationError as error:
        fail(error.reason)
        return EXIT_BAD_INPUT
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

    runner = Runner(settings, out_dir)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        for link in links:
            collection = runner.resolve(link)
            if collection is None:
                continue
            for item in collection.skipped:
                runner.failures.append(Failure(item.title, item.reason))
            if collection.truncated:
                console.print(f"note: {collection.name}: Spotify shows only the first 100 tracks; more may exist")
            tasks = [(t, progress.add_task(f"queued      {t.display_name}", total=1)) for t in collection.tracks]
            with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
                for track, task in tasks:
                    pool.submit(runner.fetch, track, progress, task)
    return report(console, runner)


def report(console: Console, runner: Runner) -> int:
    console.print(f"{len(runner.saved)} track(s) saved to {runner.out_dir}")
    if not runner.failures:
        return EXIT_OK
    table = Table("Failed", "Reason", title=f"{len(runner.failures)} failure(s)")
    for failure in runner.failures:
        table.add_row(failure.what, failure.reason)
    console.print(table)
    return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
