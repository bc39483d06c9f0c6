"""Every installed model, from the three places models come from, and which of them are served.

``[asr_models] discover`` (on by default) serves, after the models the settings file
names, the installed ones it does not: see :func:`with_discovered`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from stt.catalog.folders import folder_models, folder_size, packaged_models
from stt.catalog.specs import ModelSpec
from stt.settings import DYNAMIC_ENGINES, Settings, SettingsError

log = logging.getLogger(__name__)

FROM_SETTINGS = "settings"
FROM_MODELS_DIR = "models dir"
FROM_PACKAGE = "package"


@dataclass(frozen=True, slots=True)
class InstalledModel:
    """One row of ``sepia-stt models list``."""

    name: str
    engine: str
    languages: tuple[str, ...]
    path: Path
    #: Sum of the model's file sizes in bytes.
    size: int
    #: ``settings``, ``models dir`` or ``package``.
    source: str

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "engine": self.engine,
            "languages": list(self.languages),
            "path": str(self.path),
            "size": self.size,
            "source": self.source,
        }


def list_models(settings: Settings) -> list[InstalledModel]:
    """Every model once (by folder): the served ones in settings order, then the rest."""
    found: list[tuple[ModelSpec, str]] = [
        (spec, settings.model_sources.get(spec.name, FROM_SETTINGS)) for spec in settings.models
    ]
    if settings.models_dir is not None:
        found += [(spec, FROM_MODELS_DIR) for spec in folder_models(settings.models_dir)]
    found += [(spec, FROM_PACKAGE) for spec in packaged_models()]
    rows: dict[Path, InstalledModel] = {}
    for spec, source in found:
        path = spec.path.resolve()
        if path not in rows:
            rows[path] = InstalledModel(
                spec.name, spec.engine, spec.languages, path, folder_size(path), source
            )
    return list(rows.values())


def discovered_models(
    configured: Sequence[ModelSpec], models_dir: Path, engine: str
) -> list[tuple[ModelSpec, str]]:
    """Folder and package models the settings file does not name, with their source.

    With a fixed engine only that engine's models count; a model whose name is
    taken is skipped, so a name always means one model.
    """
    paths = {spec.path.resolve() for spec in configured}
    names = {spec.name for spec in configured}
    candidates = [
        *((spec, FROM_MODELS_DIR) for spec in folder_models(models_dir)),
        *((spec, FROM_PACKAGE) for spec in packaged_models()),
    ]
    found: list[tuple[ModelSpec, str]] = []
    for spec, source in candidates:
        path = spec.path.resolve()
        if path in paths or (engine not in DYNAMIC_ENGINES and spec.engine != engine):
            continue
        if spec.name in names:
            log.warning("%s %s: the name %r is taken, not served", source, path, spec.name)
            continue
        paths.add(path)
        names.add(spec.name)
        found.append((spec, source))
    return found


def with_discovered(settings: Settings) -> Settings:
    """The settings plus, when ``discover`` is on, the installed models the file does not name.

    ``SettingsError`` when that leaves no model to serve.
    """
    if not settings.discover or settings.models_dir is None:
        return settings
    found = discovered_models(settings.models, settings.models_dir, settings.engine)
    if not settings.models and not found:
        only = "" if settings.is_dynamic else f" for engine {settings.engine!r}"
        raise SettingsError(
            f"no model{only} to serve: [asr_models] names none, and none is installed in "
            f"{settings.models_dir} or as a package (see 'sepia-stt models --help')"
        )
    for spec, source in found:
        log.info("serving %s (%s) from the %s: %s", spec.name, spec.language, source, spec.path)
    return replace(
        settings,
        models=(*settings.models, *(spec for spec, _ in found)),
        model_sources={spec.name: source for spec, source in found},
    )
