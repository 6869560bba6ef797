"""The deployment files stay valid and keep the properties production relies on (no Docker engine needed)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from bot.settings import BotSettings

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def run_tool(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    tool = BIN / name
    if not tool.exists():
        pytest.fail(f"{name} is missing from the venv: pip install -r requirements-dev.txt")
    return subprocess.run([str(tool), *args], cwd=ROOT, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return YAML(typ="safe").load((ROOT / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def dockerfile() -> str:
    return (ROOT / "Dockerfile").read_text()


def test_compose_file_matches_the_compose_spec() -> None:
    result = run_tool("check-jsonschema", "--builtin-schema", "vendor.compose-spec", "docker-compose.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_is_hadolint_clean() -> None:
    result = run_tool("hadolint", "Dockerfile")
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_service_restarts_and_workers_scale(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"redis", "bot", "worker", "telegram-bot-api"} <= set(services)
    for name, service in services.items():
        assert service.get("restart") == "unless-stopped", name
        assert "container_name" not in service, name  # fixed names break `--scale`
    worker = services["worker"]
    assert worker["command"][:2] == ["dramatiq", "bot.worker"]
    assert worker["stop_grace_period"]
    assert services["bot"]["command"] == ["python", "-m", "bot"]


def test_redis_is_durable_and_gates_the_app(compose: dict[str, Any]) -> None:
    redis = compose["services"]["redis"]
    assert redis["image"].startswith("redis:7")
    assert " ".join(redis["command"]).endswith("--appendonly yes")
    assert any(volume.endswith(":/data") for volume in redis["volumes"])
    assert "ping" in redis["healthcheck"]["test"]
    for name in ("bot", "worker"):
        service = compose["services"][name]
        assert service["depends_on"]["redis"]["condition"] == "service_healthy"
        assert service["environment"]["REDIS_URL"] == "redis://redis:6379/0"
        assert service["env_file"] == ".env"


def test_bot_workers_and_local_api_share_the_media_path(compose: dict[str, Any]) -> None:
    services = compose["services"]
    mounts = {name: set(services[name]["volumes"]) for name in ("bot", "worker")}
    assert mounts["bot"] == mounts["worker"] == {"media:/data"}
    download_dir = services["bot"]["environment"]["DOWNLOAD_DIR"]
    assert download_dir.startswith("/data/")
    local_api = services["telegram-bot-api"]
    assert local_api["profiles"] == ["local-api"]
    assert local_api["image"].startswith("aiogram/telegram-bot-api")
    assert any(volume.split(":")[:2] == ["media", "/data"] for volume in local_api["volumes"])
    assert local_api["environment"]["TELEGRAM_LOCAL"]  # the image's switch for --local
    assert {"TELEGRAM_API_ID", "TELEGRAM_API_HASH"} <= set(local_api["environment"])
    assert "command" not in local_api  # its entrypoint would run the arguments instead of the server


def test_dockerfile_runs_unprivileged_with_a_healthcheck(dockerfile: str) -> None:
    lines = [line.strip() for line in dockerfile.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert lines[0] == "FROM python:3.11-slim"
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert any(line.startswith("HEALTHCHECK") and "bot.healthcheck" in line for line in lines)
    assert lines[-1] == 'CMD ["python", "-m", "bot"]'
    assert "--no-install-recommends ffmpeg" in dockerfile and "rm -rf /var/lib/apt/lists/*" in dockerfile
    assert "pip install --no-cache-dir -r requirements.txt" in dockerfile
    assert re.search(r"DENO_DIR=/home/app/", dockerfile) and "DOWNLOAD_DIR=/data/downloads" in dockerfile


def test_env_example_lists_every_setting_and_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    text = (ROOT / ".env.example").read_text()
    listed = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", text, flags=re.MULTILINE))
    missing = {name.upper() for name in BotSettings.model_fields} - listed
    assert not missing, f"add these settings to .env.example: {sorted(missing)}"
    for name in BotSettings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    settings = BotSettings(_env_file=ROOT / ".env.example", telegram_bot_token="1:fake")  # type: ignore[call-arg]
    assert settings.redis_url is None and not settings.allowed_users  # all-in-one, nobody allowed


def test_scripts_are_executable_bash() -> None:
    for path in ("scripts/test", "scripts/run", ".ci/run"):
        script = ROOT / path
        assert script.stat().st_mode & 0o111, f"chmod +x {path}"
        result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
    assert "scripts/test" in (ROOT / ".ci/run").read_text()
