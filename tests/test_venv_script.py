"""scripts/venv.sh, as scripts/run and scripts/test use it, on real virtual environments in a temp folder.

A `.venv` without pip is what `python3 -m venv` leaves behind on Debian/Ubuntu when python3-venv is not
installed; every later run then failed with "No module named pip". Now it is recreated, and when it cannot
be, the message names the package to install. The "lock" installed here is just `pip` (already in every
new venv), so nothing is downloaded.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
VENV_SH = ROOT / "scripts" / "venv.sh"

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]  # real venvs made by the real script


def real_python() -> str:
    """A base interpreter (venv.sh makes venvs from it), not this test run's venv python."""
    return str(Path(sys.base_prefix) / "bin" / f"python{sys.version_info[0]}.{sys.version_info[1]}")


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    (tmp_path / "requirements.lock").write_text("pip\n")
    return tmp_path


def ensure_venv(checkout: Path, python: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHON": python}
    env.pop("VIRTUAL_ENV", None)
    return subprocess.run(
        ["bash", "-c", f'set -euo pipefail; source "{VENV_SH}"; ensure_venv requirements.lock'],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )


def has_pip(checkout: Path) -> bool:
    python = checkout / ".venv" / "bin" / "python"
    return python.exists() and subprocess.run([python, "-m", "pip", "--version"], capture_output=True).returncode == 0


def without_pip(checkout: Path) -> None:
    subprocess.run([real_python(), "-m", "venv", "--without-pip", str(checkout / ".venv")], check=True)
    assert not has_pip(checkout)


@pytest.fixture
def python_without_venv_package(tmp_path: Path) -> str:
    """A python3 whose `-m venv` behaves as on Debian without python3-venv: a .venv without pip, and exit 1."""
    fake = tmp_path / "bin" / "python3"
    fake.parent.mkdir()
    fake.write_text(
        "#!/usr/bin/env bash\n"
        'if [ "${1:-}" = -m ] && [ "${2:-}" = venv ]; then\n'
        f'  "{real_python()}" -m venv --without-pip "${{@: -1}}"\n'
        '  echo "The virtual environment was not created successfully because ensurepip is not available." >&2\n'
        "  exit 1\n"
        "fi\n"
        f'exec "{real_python()}" "$@"\n'
    )
    fake.chmod(0o755)
    return str(fake)


def test_a_new_venv_is_made_and_the_lock_installed(checkout: Path) -> None:
    result = ensure_venv(checkout, real_python())
    assert result.returncode == 0, result.stderr
    assert has_pip(checkout)
    assert (checkout / ".venv" / ".installed-requirements").read_text().endswith(" requirements.lock\n")


def test_a_venv_without_pip_is_recreated(checkout: Path) -> None:
    without_pip(checkout)
    result = ensure_venv(checkout, real_python())
    assert result.returncode == 0, result.stderr
    assert "broken" in result.stderr and "recreating" in result.stderr
    assert has_pip(checkout)


def test_without_python3_venv_the_message_names_it(checkout: Path, python_without_venv_package: str) -> None:
    result = ensure_venv(checkout, python_without_venv_package)
    assert result.returncode == 2
    assert "python3-venv" in result.stderr
    assert f"python{sys.version_info[0]}.{sys.version_info[1]}-venv" in result.stderr
    assert "No module named pip" not in result.stderr
    assert not (checkout / ".venv").exists(), "no half-made .venv is left for the next run to trip over"


def test_a_broken_venv_and_no_python3_venv_still_names_it_every_time(
    checkout: Path, python_without_venv_package: str
) -> None:
    without_pip(checkout)
    for _ in range(2):
        result = ensure_venv(checkout, python_without_venv_package)
        assert result.returncode == 2
        assert "sudo apt-get install python3-venv" in result.stderr
        assert "No module named pip" not in result.stderr


def test_once_python3_venv_is_installed_the_next_run_recovers(checkout: Path, python_without_venv_package: str) -> None:
    assert ensure_venv(checkout, python_without_venv_package).returncode == 2
    result = ensure_venv(checkout, real_python())
    assert result.returncode == 0, result.stderr
    assert has_pip(checkout)
