from __future__ import annotations

import unicodedata
from pathlib import Path

import pytest
from pathvalidate import validate_filename

from pipeline.filenames import MAX_NAME_BYTES, numbered_filename, safe_join, track_filename
from pipeline.models import Track

ID = "4uLU6hMCjMI75M1A2tKUQC"


def make(title: str, artists: list[str] | None = None) -> Track:
    return Track(spotify_id=ID, title=title, artists=["Rick Astley"] if artists is None else artists)


@pytest.mark.parametrize(
    ("title", "artists", "expected"),
    [
        ("Never Gonna Give You Up", ["Rick Astley"], "Rick Astley - Never Gonna Give You Up.mp3"),
        ("Under Pressure", ["Queen", "David Bowie"], "Queen, David Bowie - Under Pressure.mp3"),
        ("Back in Black", ["AC/DC"], "AC-DC - Back in Black.mp3"),
        ("../../etc/passwd", [], "etc-passwd.mp3"),
        ("CON", [], "CON_.mp3"),
        ("NUL.txt", [], "NUL_.txt.mp3"),
        ("a\x00b\tc\nd\x7fe", ["x\x1fy"], "x y - a b c d e.mp3"),
        ('What? "Why": <Who> | *', ["A"], "A - What Why Who.mp3"),
        ("Ünïcødé 日本語", ["Ärtist"], "Ärtist - Ünïcødé 日本語.mp3"),
        ("...", ["..."], f"{ID}.mp3"),
        ("", [], f"{ID}.mp3"),
        ("  ", ["/"], f"{ID}.mp3"),
        ("-rf", [], "rf.mp3"),
        ("Title", [], "Title.mp3"),
        ("", ["Only Artist"], "Only Artist.mp3"),
        # Invisible format characters (Unicode category Cf), which pathvalidate keeps, are dropped.
        ("Evil\u202egpj.exe", ["Band"], "Band - Evilgpj.exe.mp3"),  # right-to-left override
        ("\u2067Isolate\u2069 \u200eMarks\u200f", ["\u202aX\u202c"], "X - Isolate Marks.mp3"),
        ("Zero\u200bWidth\ufeff", ["Soft\u00adHyphen"], "SoftHyphen - ZeroWidth.mp3"),
        ("\u202e", ["\u2066"], f"{ID}.mp3"),
        ("Lone\ud800Surrogate", ["A"], "A - LoneSurrogate.mp3"),
    ],
)
def test_track_filename(title: str, artists: list[str], expected: str) -> None:
    name = track_filename(make(title, artists))
    assert name == expected
    validate_filename(name, platform="universal")


@pytest.mark.parametrize(
    "char", ["\u202e", "\u202d", "\u2066", "\u2068", "\u200b", "\u200d", "\u2060", "\ufeff", "\U000e0041"]
)
def test_no_format_character_survives(char: str) -> None:
    name = track_filename(make(f"a{char}b{char}", [f"{char}c"]))
    assert name == "c - ab.mp3"
    assert not any(unicodedata.category(ch) == "Cf" for ch in name)


def test_path_tricks_never_make_a_path() -> None:
    for title in ("../../etc/passwd", "..", ".", "/", "\\..\\win.ini", ".hidden"):
        name = track_filename(make(title, []))
        assert "/" not in name and "\\" not in name
        assert not name.startswith((".", "-"))
        assert name.endswith(".mp3")


@pytest.mark.parametrize("char", ["x", "é", "日", "🎵"])
def test_long_titles_are_cut_on_a_character_boundary_keeping_the_extension(char: str) -> None:
    name = track_filename(make(char * 300))
    assert name.endswith(".mp3")
    assert len(name.encode("utf-8")) <= MAX_NAME_BYTES
    name.encode("utf-8").decode("utf-8")  # whole characters only
    assert name.startswith("Rick Astley - " + char)
    validate_filename(name, platform="universal")


def test_truncation_leaves_no_trailing_space_or_dot() -> None:
    title = "a" * (MAX_NAME_BYTES - len("Rick Astley - ") - len(".mp3") - 2) + " ." + "b" * 50
    name = track_filename(make(title))
    assert name.endswith("a.mp3")


def test_safe_join_keeps_plain_names_inside(tmp_path: Path) -> None:
    assert safe_join(tmp_path, "Rick Astley - Song.mp3") == tmp_path.resolve() / "Rick Astley - Song.mp3"
    assert safe_join(tmp_path, "..hidden.mp3").parent == tmp_path.resolve()


@pytest.mark.parametrize("name", ["", ".", "..", "../x.mp3", "a/b.mp3", "/etc/passwd", "..\\x.mp3", "a\x00.mp3"])
def test_safe_join_refuses_escapes(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError):
        safe_join(tmp_path, name)


def test_safe_join_refuses_a_symlink_pointing_outside(tmp_path: Path) -> None:
    inside = tmp_path / "out"
    inside.mkdir()
    (inside / "link.mp3").symlink_to(tmp_path / "elsewhere.mp3")
    with pytest.raises(ValueError):
        safe_join(inside, "link.mp3")


def test_every_generated_name_is_accepted_by_safe_join(tmp_path: Path) -> None:
    for title in ("../../etc/passwd", "CON", "x" * 400, "", "a/b\\c"):
        assert safe_join(tmp_path, track_filename(make(title))).parent == tmp_path.resolve()


@pytest.mark.parametrize(
    ("name", "number", "expected"),
    [
        ("Band - Song.mp3", 2, "Band - Song (2).mp3"),
        ("Band - Song.mp3", 12, "Band - Song (12).mp3"),
        ("no extension", 3, "no extension (3)"),
    ],
)
def test_numbered_filename(name: str, number: int, expected: str) -> None:
    assert numbered_filename(name, number) == expected


@pytest.mark.parametrize("char", ["x", "é", "日", "🎵"])
def test_a_numbered_long_name_still_fits(char: str) -> None:
    name = numbered_filename(track_filename(make(char * 300)), 10)
    assert name.endswith(" (10).mp3")
    assert len(name.encode("utf-8")) <= MAX_NAME_BYTES
    validate_filename(name, platform="universal")
