"""The bot's own folder inside DOWNLOAD_DIR (bot.work_area), on a real temporary directory.

DOWNLOAD_DIR may be the person's music folder: whatever the bot did not create there must survive every
removal and every sweep.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.requests import REQUEST_ID, new_request_id
from bot.work_area import WORK_DIR_NAME, WorkArea

RID, OTHER, ACTIVE = "0123456789ab", "ba9876543210", "aaaabbbbcccc"
NOW = 1_700_000_000.0
DAY = 24 * 3600.0


@pytest.fixture
def download_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "Music"
    folder.mkdir()
    return folder


@pytest.fixture
def area(download_dir: Path) -> WorkArea:
    return WorkArea(download_dir)


def write(path: Path, content: str = "data") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)
    return path


def age(path: Path, seconds: float) -> Path:
    """Make `path` look untouched for `seconds` before NOW (the sweeper judges by modification time)."""
    os.utime(path, (NOW - seconds, NOW - seconds), follow_symlinks=False)
    return path


def persons_files(download_dir: Path) -> dict[str, str]:
    """Everything in DOWNLOAD_DIR outside the work area, with its content."""
    files = {}
    for path in download_dir.rglob("*"):
        if WORK_DIR_NAME in path.relative_to(download_dir).parts or path.is_dir():
            continue
        files[str(path.relative_to(download_dir))] = path.read_text() if path.is_file() else "?"
    return files


@pytest.fixture
def persons_library(download_dir: Path) -> dict[str, str]:
    """A music folder as a person keeps it, with names that look like the bot's own."""
    write(download_dir / "Daft Punk - Discovery" / "01 One More Time.mp3", "one more time")
    write(download_dir / "Podcasts" / "episode-12.mp3", "episode")
    write(download_dir / RID, "a file named like a request id")
    write(download_dir / OTHER / "0" / "kept.mp3", "a folder named like a request id")
    for path in download_dir.rglob("*"):
        age(path, 365 * DAY)
    return persons_files(download_dir)


# --- paths -----------------------------------------------------------------------------------------


def test_the_work_area_is_one_hidden_folder_in_download_dir(area: WorkArea, download_dir: Path) -> None:
    assert area.root == download_dir / ".spotbot-work"


def test_attempt_folders_are_per_request_track_and_run(area: WorkArea) -> None:
    assert area.request_dir(RID) == area.root / RID
    assert area.attempt_dir(RID, 3, "a1b2c3d4") == area.root / RID / "3" / "a1b2c3d4"
    assert area.attempt_dir(RID, 3, "a1b2c3d4") != area.attempt_dir(RID, 3, "e5f6a7b8")  # duplicate runs


def test_new_request_ids_name_folders() -> None:
    ids = {new_request_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(REQUEST_ID.fullmatch(rid) for rid in ids)


@pytest.mark.parametrize(
    "rid", ["", "..", "../Music", "/etc", "0123456789AB", "0123456789abc", "0123456789a", "x" * 12]
)
def test_only_request_ids_name_folders(area: WorkArea, rid: str) -> None:
    with pytest.raises(ValueError, match="not a request id"):
        area.request_dir(rid)
    with pytest.raises(ValueError):
        area.attempt_dir(rid, 0, "a1")
    with pytest.raises(ValueError):
        area.remove_request(rid)


# --- removing --------------------------------------------------------------------------------------


def test_remove_folder_removes_one_attempt(area: WorkArea) -> None:
    mine = write(area.attempt_dir(RID, 0, "a1") / "Song.mp3")
    other_run = write(area.attempt_dir(RID, 0, "a2") / "Song.mp3")
    area.remove_folder(mine.parent)
    assert not mine.parent.exists()
    assert other_run.exists()


def test_remove_folder_of_a_missing_folder_is_harmless(area: WorkArea) -> None:
    area.remove_folder(area.attempt_dir(RID, 0, "gone"))


def test_remove_request_removes_only_that_request(area: WorkArea) -> None:
    write(area.attempt_dir(RID, 0, "a1") / "a.mp3")
    kept = write(area.attempt_dir(OTHER, 0, "a1") / "b.mp3")
    area.remove_request(RID)
    assert not area.request_dir(RID).exists()
    assert kept.exists()
    area.remove_request(RID)  # twice is fine


OUTSIDE: dict[str, Callable[[Path, Path], Path]] = {  # name → folder, from (work area root, DOWNLOAD_DIR)
    "download dir": lambda root, download_dir: download_dir,
    "an album": lambda root, download_dir: download_dir / "Daft Punk - Discovery",
    "podcasts": lambda root, download_dir: download_dir / "Podcasts",
    "a folder named like a request id": lambda root, download_dir: download_dir / OTHER,
    "above download dir": lambda root, download_dir: download_dir.parent,
    "the work area itself": lambda root, download_dir: root,
    "climbing out of an attempt": lambda root, download_dir: root / RID / "0" / ".." / ".." / ".." / "Podcasts",
    "climbing out of the root": lambda root, download_dir: root / ".." / "Podcasts",
}


@pytest.mark.parametrize("where", list(OUTSIDE))
def test_remove_folder_never_removes_anything_outside_the_work_area(
    area: WorkArea, download_dir: Path, persons_library: dict[str, str], where: str
) -> None:
    write(area.attempt_dir(RID, 0, "a1") / "a.mp3")
    area.remove_folder(OUTSIDE[where](area.root, download_dir))
    assert persons_files(download_dir) == persons_library
    assert area.root.is_dir()


def test_remove_folder_does_not_follow_a_link_out_of_the_work_area(
    area: WorkArea, download_dir: Path, persons_library: dict[str, str]
) -> None:
    """A link inside the work area leads to the person's files: removing through it must not reach them."""
    area.root.mkdir()
    (area.root / RID).symlink_to(download_dir / "Daft Punk - Discovery", target_is_directory=True)
    area.remove_folder(area.root / RID)
    area.remove_folder(area.root / RID / "01 One More Time.mp3")
    assert persons_files(download_dir) == persons_library


def test_remove_folder_does_not_reach_through_a_linked_request_folder(
    area: WorkArea, download_dir: Path, persons_library: dict[str, str]
) -> None:
    area.root.mkdir()
    (area.root / RID).symlink_to(download_dir, target_is_directory=True)
    area.remove_folder(area.root / RID / "Daft Punk - Discovery")
    assert persons_files(download_dir) == persons_library


def test_remove_request_does_not_follow_a_linked_request_folder(
    area: WorkArea, download_dir: Path, persons_library: dict[str, str]
) -> None:
    area.root.mkdir()
    (area.root / RID).symlink_to(download_dir / "Podcasts", target_is_directory=True)
    area.remove_request(RID)
    assert persons_files(download_dir) == persons_library


# --- sweeping --------------------------------------------------------------------------------------


def leftovers(area: WorkArea, rid: str, seconds: float) -> Path:
    """A request folder with one attempt's file, untouched for `seconds`."""
    write(area.attempt_dir(rid, 0, "a1") / "Song.mp3")
    return age(area.request_dir(rid), seconds)


def test_sweep_removes_old_folders_of_no_open_request(area: WorkArea) -> None:
    orphan = leftovers(area, RID, 2 * DAY)
    assert area.sweep(set(), older_than=DAY, now=NOW) == [orphan]
    assert not orphan.exists()
    assert area.root.is_dir()


def test_sweep_keeps_open_requests_however_old(area: WorkArea) -> None:
    open_request = leftovers(area, ACTIVE, 30 * DAY)
    assert area.sweep({ACTIVE}, older_than=DAY, now=NOW) == []
    assert open_request.exists()


def test_sweep_keeps_recent_folders(area: WorkArea) -> None:
    """A request just closed, or created a moment before it was listed as open."""
    recent = leftovers(area, RID, DAY - 1)
    just_now = leftovers(area, OTHER, DAY)
    assert area.sweep(set(), older_than=DAY, now=NOW) == []
    assert recent.exists()
    assert just_now.exists()


def test_sweep_without_a_work_area_does_nothing(area: WorkArea, download_dir: Path) -> None:
    assert area.sweep(set(), older_than=0, now=NOW) == []
    assert not area.root.exists()


def test_sweep_keeps_what_is_not_a_request_folder(area: WorkArea) -> None:
    area.root.mkdir()
    others = [
        age(write(area.root / "notes.txt"), 30 * DAY),
        age(write(area.root / "0123456789AB" / "x"), 30 * DAY),  # upper case: not an id of ours
        age(write(area.root / "0123456789abc" / "x"), 30 * DAY),  # too long
        age(write(area.root / OTHER), 30 * DAY),  # a file, not a folder
    ]
    assert area.sweep(set(), older_than=DAY, now=NOW) == []
    assert all(path.exists() for path in others)


def test_sweep_never_touches_the_persons_files(
    area: WorkArea, download_dir: Path, persons_library: dict[str, str]
) -> None:
    """Only the work area is swept: old folders and files named like request ids in DOWNLOAD_DIR stay."""
    orphan = leftovers(area, ACTIVE, 2 * DAY)
    assert area.sweep(set(), older_than=DAY, now=NOW) == [orphan]
    assert persons_files(download_dir) == persons_library
    assert (download_dir / OTHER / "0" / "kept.mp3").exists()


def test_sweep_does_not_follow_a_link_out_of_the_work_area(
    area: WorkArea, download_dir: Path, persons_library: dict[str, str]
) -> None:
    area.root.mkdir()
    link = area.root / RID
    link.symlink_to(download_dir / "Daft Punk - Discovery", target_is_directory=True)
    age(link, 30 * DAY)
    assert area.sweep(set(), older_than=DAY, now=NOW) == []
    assert persons_files(download_dir) == persons_library


def test_sweep_removes_several_and_keeps_the_rest(area: WorkArea) -> None:
    old = {leftovers(area, rid, 3 * DAY) for rid in (RID, OTHER)}
    kept = [leftovers(area, ACTIVE, 3 * DAY), leftovers(area, "cccccccccccc", 60)]
    assert set(area.sweep({ACTIVE}, older_than=DAY, now=NOW)) == old
    assert all(path.exists() for path in kept)
    assert not any(path.exists() for path in old)
