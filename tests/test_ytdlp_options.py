"""The options every yt-dlp call gets: YTDLP_EXTRACTOR_ARGS and YTDLP_POT_PROVIDER_URL reach yt-dlp itself (its
params, its YouTube extractor, the PO-token provider plugin), for the search and the download alike, and an
unreachable provider costs a warning naming it, not a hang.

What cannot be tested offline: a real YouTube extraction asking the provider for a token (YouTube is not
reachable from tests). What is tested is every step up to it with the real yt-dlp and the real plugin: the
arguments as yt-dlp's YouTube extractor reads them, the provider the plugin builds from them, and its request
against a closed port and against a server that never answers.
"""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yt_dlp
from yt_dlp.extractor.youtube.pot._director import initialize_pot_director
from yt_dlp.extractor.youtube.pot.provider import PoTokenContext, PoTokenRequest

from pipeline.download import download_audio, ytdlp_options
from pipeline.errors import ConfigurationError
from pipeline.settings import PipelineSettings, load_settings
from pipeline.sources.youtube import ydl_options
from pipeline.ytdlp import POT_PROVIDER_KEY, parse_extractor_args
from tests.fakes.audio_server import AudioServer, generate_audio

PROVIDER = "BgUtilHTTP"  # the plugin's HTTP provider, as yt-dlp registers it


def settings(**overrides: Any) -> PipelineSettings:
    return load_settings(PipelineSettings, _env_file=None, **overrides)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- parsing: yt-dlp's own `--extractor-args` syntax ---------------------------------------------


def test_one_extractor_with_several_arguments_and_values() -> None:
    assert parse_extractor_args("youtube:player_client=web,mweb;skip=dash,hls") == {
        "youtube": {"player_client": ["web", "mweb"], "skip": ["dash", "hls"]}
    }


def test_several_extractors_joined_by_semicolons() -> None:
    text = "youtube:player_client=web;youtubepot-bgutilhttp:base_url=http://pot:4416;youtubetab:skip=webpage"
    assert parse_extractor_args(text) == {
        "youtube": {"player_client": ["web"]},
        "youtubepot-bgutilhttp": {"base_url": ["http://pot:4416"]},
        "youtubetab": {"skip": ["webpage"]},
    }


def test_yt_dlps_own_rules_apply() -> None:
    """Keys lower-cased, dashes in argument names become underscores, "\\," keeps a comma, spaces trimmed."""
    assert parse_extractor_args(" YouTube:Player-Client=web ; po_token=web.gvs+a\\,b ") == {
        "youtube": {"player_client": ["web"], "po_token": ["web.gvs+a,b"]}
    }


def test_the_provider_url_becomes_the_plugins_base_url_and_wins() -> None:
    args = parse_extractor_args(f"{POT_PROVIDER_KEY}:base_url=http://old:1;other=x", "http://pot-provider:4416")
    assert args == {POT_PROVIDER_KEY: {"base_url": ["http://pot-provider:4416"], "other": ["x"]}}
    assert parse_extractor_args(None, "http://p:4416") == {POT_PROVIDER_KEY: {"base_url": ["http://p:4416"]}}


def test_the_same_extractor_twice_merges_argument_by_argument() -> None:
    assert parse_extractor_args("youtube:a=1;b=2;youtube:b=3") == {"youtube": {"a": ["1"], "b": ["3"]}}


@pytest.mark.parametrize("text", [None, "", " ; ;"])
def test_nothing_set_is_no_arguments(text: str | None) -> None:
    assert parse_extractor_args(text) == {}
    assert "extractor_args" not in ydl_options(settings(ytdlp_extractor_args=text), None)


@pytest.mark.parametrize("text", ["player_client=web", "no colon at all"])
def test_a_malformed_value_stops_at_start_naming_the_setting(text: str) -> None:
    with pytest.raises(ConfigurationError, match=r"YTDLP_EXTRACTOR_ARGS.*IE_KEY:ARGS"):
        settings(ytdlp_extractor_args=text)


@pytest.mark.parametrize("url", ["pot-provider:4416", "ftp://x", "http://"])
def test_a_provider_url_must_be_http(url: str) -> None:
    with pytest.raises(ConfigurationError, match="YTDLP_POT_PROVIDER_URL"):
        settings(ytdlp_pot_provider_url=url)


def test_the_provider_url_loses_a_trailing_slash() -> None:
    assert settings(ytdlp_pot_provider_url="http://pot:4416/").ytdlp_pot_provider_url == "http://pot:4416"


# --- the options as yt-dlp receives them, for both calls ------------------------------------------

CONFIGURED = {
    "ytdlp_extractor_args": "youtube:player_client=web_music,mweb;formats=missing_pot",
    "ytdlp_pot_provider_url": "http://pot-provider:4416",
    "ytdlp_proxy": "socks5://user:pw@127.0.0.1:1080",
    "http_timeout": 7,
}
EXPECTED = {
    "youtube": {"player_client": ["web_music", "mweb"], "formats": ["missing_pot"]},
    POT_PROVIDER_KEY: {"base_url": ["http://pot-provider:4416"]},
}


def search_options(config: PipelineSettings, tmp_path: Path) -> dict[str, Any]:
    return ydl_options(config, None)


def download_options(config: PipelineSettings, tmp_path: Path) -> dict[str, Any]:
    return ytdlp_options(tmp_path, config, lambda progress: None)


@pytest.fixture(params=[search_options, download_options], ids=["search", "download"])
def built(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    return request.param(settings(**CONFIGURED), tmp_path)


def test_every_call_hands_the_arguments_to_yt_dlp(built: dict[str, Any]) -> None:
    with yt_dlp.YoutubeDL(built) as ydl:  # as pipeline.download / pipeline.sources.youtube build it
        assert ydl.params["extractor_args"] == EXPECTED
        assert ydl.params["proxy"] == CONFIGURED["ytdlp_proxy"]
        assert ydl.params["socket_timeout"] == 7
        youtube = ydl.get_info_extractor("Youtube")
        assert youtube._configuration_arg("player_client") == ["web_music", "mweb"]
        assert youtube._configuration_arg("formats") == ["missing_pot"]


def test_the_plugin_is_installed_and_takes_the_provider_url(built: dict[str, Any]) -> None:
    with yt_dlp.YoutubeDL(built) as ydl:
        director = initialize_pot_director(ydl.get_info_extractor("Youtube"))
        assert PROVIDER in director.providers, sorted(director.providers)
        assert director.providers[PROVIDER]._base_url == "http://pot-provider:4416"


def test_each_call_gets_its_own_copy_of_the_arguments(tmp_path: Path) -> None:
    config = settings(**CONFIGURED)
    first = ydl_options(config, None)
    first["extractor_args"]["youtube"]["player_client"].append("tv")
    assert ydl_options(config, None)["extractor_args"] == EXPECTED


# --- an unreachable provider ----------------------------------------------------------------------


def gvs_request() -> PoTokenRequest:
    return PoTokenRequest(
        context=PoTokenContext.GVS,
        innertube_context={"client": {"clientName": "WEB", "clientVersion": "2.20260101.00.00"}},
        internal_client_name="web",
        video_id="dQw4w9WgXcQ",
        visitor_data="CgtkUXc0dzlXZ1hjUQ",
        bypass_cache=True,
    )


@pytest.fixture
def silent_server() -> Iterator[str]:
    """Accepts connections and never answers: a provider container that hangs."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.mark.parametrize("builder", [search_options, download_options], ids=["search", "download"])
@pytest.mark.parametrize("where", ["closed port", "silent server"])
def test_an_unreachable_provider_is_a_warning_naming_it_not_a_hang(
    builder: Any, where: str, silent_server: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """yt-dlp asks the provider; the plugin gives up (at once, or after its own 5 s ping timeout) and yt-dlp goes
    on without a token. The operator reads why in our log. (pytest-timeout guards against a hang.)"""
    url = silent_server if where == "silent server" else f"http://127.0.0.1:{closed_port()}"
    options = builder(settings(ytdlp_pot_provider_url=url), tmp_path)
    with caplog.at_level(logging.WARNING), yt_dlp.YoutubeDL(options) as ydl:
        director = initialize_pot_director(ydl.get_info_extractor("Youtube"))
        assert director.get_po_token(gvs_request()) is None
    warnings = [record.getMessage() for record in caplog.records if record.levelno >= logging.WARNING]
    assert any(f"server is reachable at {url}" in message for message in warnings), warnings
    assert {record.name for record in caplog.records} <= {"pipeline.download", "pipeline.sources.youtube"}


def test_a_download_with_the_provider_down_still_works_where_no_token_is_needed(tmp_path: Path) -> None:
    """The provider only serves YouTube's extractor: any other source (here the local audio server, through
    yt-dlp's generic extractor) downloads as before with all the arguments set."""
    config = settings(
        ytdlp_pot_provider_url=f"http://127.0.0.1:{closed_port()}",
        ytdlp_extractor_args="youtube:player_client=web;generic:impersonate=false",
        http_timeout=5,
        download_timeout=30,
    )
    with AudioServer() as server:
        path = download_audio(server.audio_url("song", "m4a"), tmp_path, config, cancel=lambda: False)
    assert path.read_bytes() == generate_audio("m4a")


def test_threads_making_their_first_yt_dlp_at_once_load_the_plugin_once() -> None:
    """Workers and the CLI run several yt-dlp calls in threads; yt-dlp's own lazy plugin loading has no lock and
    registered the provider twice (a traceback on stderr). In a fresh process, as a worker starts."""
    code = (
        "import threading, yt_dlp\n"
        "from pipeline.settings import PipelineSettings\n"
        "from pipeline.ytdlp import base_options\n"
        "options = base_options(PipelineSettings(_env_file=None), None)\n"
        "barrier = threading.Barrier(8)\n"
        "def make():\n"
        "    barrier.wait()\n"
        "    yt_dlp.YoutubeDL(options).close()\n"
        "threads = [threading.Thread(target=make) for _ in range(8)]\n"
        "[t.start() for t in threads]; [t.join() for t in threads]\n"
        "print('done')\n"
    )
    root = Path(__file__).resolve().parent.parent
    result = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "done", result.stderr
    assert "already registered" not in result.stderr and "Traceback" not in result.stderr, result.stderr
