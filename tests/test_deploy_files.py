"""The deployment files stay valid and keep the properties production relies on (no Docker engine needed).

Checks what the files mean, not how they are written: the compose file is read as Compose reads it
(YAML with its anchors and merge keys, short or long syntax), and the Dockerfile by its instructions.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from bot.settings import BotSettings

ROOT = Path(__file__).resolve().parent.parent
APP_SERVICES = ("bot", "worker")
RESTARTING = ("always", "unless-stopped")  # back after a crash and after the host reboots


def run_tool(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    """A linter from requirements-dev.txt: the venv's own, else one on PATH."""
    venv_tool = Path(sys.executable).parent / name
    tool = str(venv_tool) if venv_tool.exists() else shutil.which(name)
    if tool is None:
        pytest.fail(f"{name} is missing: pip install -r requirements-dev.txt")
    return subprocess.run([tool, *args], cwd=ROOT, capture_output=True, text=True, timeout=120)


# --- reading the files as Compose and Docker do ---------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def environment(service: dict[str, Any]) -> dict[str, str]:
    """`environment:` as a mapping, whether written as a mapping or as a list of NAME=value."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(name): "" if value is None else str(value) for name, value in env.items()}


def env_files(service: dict[str, Any]) -> list[str]:
    files = service.get("env_file") or []
    files = [files] if isinstance(files, (str, dict)) else files
    return [entry["path"] if isinstance(entry, dict) else entry for entry in files]


def command(service: dict[str, Any]) -> list[str] | None:
    value = service.get("command")
    return shlex.split(value) if isinstance(value, str) else value


def mounts(service: dict[str, Any]) -> dict[str, str]:
    """Target path in the container -> source (a named volume or a host path), short or long syntax."""
    found = {}
    for volume in service.get("volumes") or []:
        if isinstance(volume, dict):
            found[volume["target"]] = volume.get("source", "")
        else:
            source, _, rest = volume.partition(":")
            found[rest.split(":")[0] if rest else source] = source if rest else ""
    return found


def volume_holding(service: dict[str, Any], path: str) -> tuple[str, str] | None:
    """(source, target) of the mount that `path` lives on in this service's container, if any."""
    inside = PurePosixPath(path)
    matches = [(target, source) for target, source in mounts(service).items() if inside.is_relative_to(target)]
    if not matches:
        return None
    target, source = max(matches, key=lambda match: len(match[0]))
    return source, target


@pytest.fixture(scope="module")
def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, with line continuations joined and comments dropped."""
    text = re.sub(r"\\\n(?:\s*#[^\n]*\n)*", " ", (ROOT / "Dockerfile").read_text())
    instructions = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, args = line.partition(" ")
            instructions.append((keyword.upper(), args.strip()))
    return instructions


def image_env(dockerfile: list[tuple[str, str]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for keyword, args in dockerfile:
        if keyword == "ENV":
            env.update(item.split("=", 1) for item in shlex.split(args) if "=" in item)
    return env


def exec_form(args: str) -> list[str]:
    """The JSON (exec) form of CMD / HEALTHCHECK CMD: signals reach the process, no shell in between."""
    value = json.loads(args)
    assert isinstance(value, list) and all(isinstance(part, str) for part in value), args
    return value


# --- linters -------------------------------------------------------------------------------------


def test_compose_file_matches_the_compose_spec() -> None:
    result = run_tool("check-jsonschema", "--builtin-schema", "vendor.compose-spec", "docker-compose.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_is_hadolint_clean() -> None:
    result = run_tool("hadolint", "Dockerfile")
    assert result.returncode == 0, result.stdout + result.stderr


# --- the compose file ----------------------------------------------------------------------------


def test_the_services_exist_and_come_back_after_a_crash(services: dict[str, dict[str, Any]]) -> None:
    assert {"redis", *APP_SERVICES} <= set(services)
    for name, service in services.items():
        assert service.get("restart") in RESTARTING, f"{name}: restart policy"


def test_the_bot_and_the_workers_run_the_right_programs(
    services: dict[str, dict[str, Any]], dockerfile: list[tuple[str, str]]
) -> None:
    image_cmd = exec_form(next(args for keyword, args in reversed(dockerfile) if keyword == "CMD"))
    assert (command(services["bot"]) or image_cmd) == ["python", "-m", "bot"]
    worker = command(services["worker"]) or image_cmd
    assert worker[:2] == ["dramatiq", "bot.worker"], worker
    assert "container_name" not in services["worker"]  # a fixed name breaks `--scale worker=N`
    assert services["worker"].get("stop_grace_period")  # a running download may finish on redeploys


def test_the_app_reaches_redis_only_once_it_is_healthy(services: dict[str, dict[str, Any]]) -> None:
    redis = services["redis"]
    assert redis.get("healthcheck", {}).get("test"), "redis needs a healthcheck for service_healthy to mean anything"
    for name in APP_SERVICES:
        service = services[name]
        url = urlsplit(environment(service).get("REDIS_URL", ""))
        assert url.scheme == "redis" and url.hostname == "redis" and (url.port or 6379) == 6379, f"{name}: REDIS_URL"
        depends = service.get("depends_on") or {}
        assert isinstance(depends, dict) and depends.get("redis", {}).get("condition") == "service_healthy", name


def test_redis_keeps_the_queue_across_restarts(services: dict[str, dict[str, Any]]) -> None:
    redis = services["redis"]
    args = command(redis) or []
    assert "--appendonly" in args and args[args.index("--appendonly") + 1] == "yes"  # every job, not a snapshot
    source, _ = volume_holding(redis, "/data") or ("", "")
    assert source, "redis's /data must be a volume"


def test_secrets_and_settings_come_from_the_env_file(services: dict[str, dict[str, Any]]) -> None:
    for name in APP_SERVICES:
        assert ".env" in env_files(services[name]), f"{name}: env_file .env (TELEGRAM_BOT_TOKEN, Spotify keys, …)"
        assert "TELEGRAM_BOT_TOKEN" not in environment(services[name]), f"{name}: the token belongs in .env"
    assert re.search(r"^TELEGRAM_BOT_TOKEN=", (ROOT / ".env.example").read_text(), flags=re.MULTILINE)


def test_the_bot_and_the_workers_share_the_downloads(
    compose: dict[str, Any], services: dict[str, dict[str, Any]], dockerfile: list[tuple[str, str]]
) -> None:
    """A worker writes the MP3 under DOWNLOAD_DIR; the bot uploads it from there: one volume, one path."""
    download_dirs = {
        environment(services[name]).get("DOWNLOAD_DIR") or image_env(dockerfile).get("DOWNLOAD_DIR")
        for name in APP_SERVICES
    }
    assert len(download_dirs) == 1 and None not in download_dirs, download_dirs
    download_dir = download_dirs.pop()
    assert PurePosixPath(download_dir).is_absolute()
    holding = {name: volume_holding(services[name], download_dir) for name in APP_SERVICES}
    assert None not in holding.values(), f"DOWNLOAD_DIR {download_dir} is on no volume: {holding}"
    assert len(set(holding.values())) == 1, holding  # the same volume, mounted at the same place
    source, _ = holding["bot"]  # type: ignore[misc]
    assert source in (compose.get("volumes") or {}), f"{source} should be a named volume"


def test_the_local_bot_api_server_sees_the_files_at_the_bots_path(services: dict[str, dict[str, Any]]) -> None:
    """In local mode the bot sends file:// paths under DOWNLOAD_DIR: the server must read the same path."""
    local_api = services["telegram-bot-api"]
    assert local_api.get("profiles") == ["local-api"]  # opt-in
    download_dir = environment(services["bot"])["DOWNLOAD_DIR"]
    assert volume_holding(local_api, download_dir) == volume_holding(services["bot"], download_dir)
    assert environment(local_api).get("TELEGRAM_LOCAL")  # the image's switch for --local
    assert {"TELEGRAM_API_ID", "TELEGRAM_API_HASH"} <= set(environment(local_api))
    assert "command" not in local_api  # its entrypoint would run the arguments instead of the server


def test_every_service_rotates_its_log(services: dict[str, dict[str, Any]]) -> None:
    """Docker's default json-file log grows without limit and fills a small server's disk."""
    for name, service in services.items():
        logging = service.get("logging") or {}
        assert logging.get("driver") == "json-file", f"{name}: logging driver"
        options = logging.get("options") or {}
        assert re.fullmatch(r"\d+[kmg]", str(options.get("max-size", ""))), f"{name}: max-size"
        assert int(options.get("max-file", 0)) >= 1, f"{name}: max-file"


def test_the_pot_profile_runs_the_provider_the_plugin_expects(services: dict[str, dict[str, Any]]) -> None:
    provider = services["pot-provider"]
    assert provider.get("profiles") == ["pot"]  # opt-in
    image, _, tag = provider["image"].partition(":")
    assert image == "brainicism/bgutil-ytdlp-pot-provider"
    plugin = re.search(r"^bgutil-ytdlp-pot-provider==(\S+)$", (ROOT / "requirements.txt").read_text(), re.M)
    assert plugin and tag == plugin.group(1), "plugin and server must run the same version"
    assert "4416" in [str(port) for port in provider.get("expose") or []]
    documented = re.search(r"YTDLP_POT_PROVIDER_URL=(\S+)", (ROOT / ".env.example").read_text())
    assert documented, "the env wiring is documented in .env.example"
    url = urlsplit(documented.group(1))
    assert (url.hostname, url.port) == ("pot-provider", 4416)
    assert "command" not in provider


def test_a_cookies_file_can_be_mounted_and_is_optional(services: dict[str, dict[str, Any]], tmp_path: Path) -> None:
    """The documented YTDLP_COOKIES_FILE lives in a folder every app service mounts read-only; a folder, so
    Docker never turns a missing file into an empty directory, and settings accept an absent file."""
    documented = re.search(r"YTDLP_COOKIES_FILE=(/config/\S+)", (ROOT / "docker-compose.yml").read_text())
    assert documented, "docker-compose.yml documents YTDLP_COOKIES_FILE=/config/…"
    for name in APP_SERVICES:
        found = volume_holding(services[name], documented.group(1))
        assert found is not None and found[1] == "/config", f"{name}: no mount holds {documented.group(1)}"
        short = [v for v in services[name]["volumes"] if isinstance(v, str) and v.split(":")[1] == "/config"]
        assert short and short[0].endswith(":ro") and short[0].startswith("./"), short
    settings = BotSettings(  # type: ignore[call-arg]
        _env_file=None, telegram_bot_token="1:fake", ytdlp_cookies_file=tmp_path / "absent.txt"
    )
    assert settings.ytdlp_cookies_file == tmp_path / "absent.txt"


def seconds(duration: str) -> float:
    """A Compose duration like 1m30s or 10s."""
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    return sum(float(value) * units[unit] for value, unit in re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", duration))


def test_the_healthchecks_notice_a_frozen_process_within_a_minute(services: dict[str, dict[str, Any]]) -> None:
    """`python -m bot.healthcheck` fails once the heartbeat is HEALTH_MAX_AGE old; Docker calls it unhealthy
    after `retries` failures `interval` apart."""
    max_age = BotSettings.model_fields["health_max_age"].default
    for name, args in (("bot", []), ("worker", ["--worker"])):
        check = services[name]["healthcheck"]
        assert check["test"] == ["CMD", "python", "-m", "bot.healthcheck", *args], name
        assert max_age + seconds(check["interval"]) * check["retries"] <= 60, name
        assert seconds(check["start_period"]) >= 10, f"{name}: time to connect before the first beat"


# --- the image -----------------------------------------------------------------------------------


def test_the_image_runs_unprivileged_with_a_healthcheck(dockerfile: list[tuple[str, str]]) -> None:
    users = [args.split(":")[0] for keyword, args in dockerfile if keyword == "USER"]
    assert users and users[-1] not in ("root", "0"), "the last USER must not be root"
    healthchecks = [args for keyword, args in dockerfile if keyword == "HEALTHCHECK"]
    assert healthchecks, "no HEALTHCHECK"
    test = exec_form(healthchecks[-1].split(" CMD ", 1)[1])
    assert test[-2:] == ["-m", "bot.healthcheck"], test


def test_the_image_holds_the_code_the_commands_run(dockerfile: list[tuple[str, str]]) -> None:
    copied = {
        PurePosixPath(source).parts[0]
        for keyword, args in dockerfile
        if keyword == "COPY"
        for source in args.split()[:-1]
    }
    assert {"bot", "pipeline", "requirements.lock"} <= copied, copied
    installs = [args for keyword, args in dockerfile if keyword == "RUN" and "pip install" in args]
    assert any("--require-hashes -r requirements.lock" in args for args in installs), "the lock is never installed"


# --- settings and scripts ------------------------------------------------------------------------


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
    for path in ("scripts/test", "scripts/run", "scripts/update", ".ci/run"):
        script = ROOT / path
        assert script.stat().st_mode & 0o111, f"chmod +x {path}"
        result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
    assert "scripts/test" in (ROOT / ".ci/run").read_text()
