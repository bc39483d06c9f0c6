"""Configured models and the SEPIA rules for choosing one per session.

Selection order (wire contract §1.5): an exact ``model`` name wins; else the
``language`` (exact code, then the first model whose language shares the short
code), narrowed by ``task`` when one matches; else ``task`` alone is an error;
else the first model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from stt.errors import ModelNotFound


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """One model entry of the settings file."""

    name: str
    path: Path
    #: The model's main language (what ``/settings`` ``languages`` shows).
    language: str
    engine: str
    task: str | None = None
    #: Every extra ``xxxN`` key of the entry, as ``/settings`` ``modelProperties`` shows it.
    properties: Mapping[str, str] = field(default_factory=dict)
    #: More languages a multilingual model serves (``langN = de-DE, en-US, fr``).
    other_languages: tuple[str, ...] = ()

    @property
    def languages(self) -> tuple[str, ...]:
        return (self.language, *self.other_languages)

    def serves(self, language: str) -> bool:
        wanted = normalize_language(language)
        return any(normalize_language(code) == wanted for code in self.languages)


def normalize_language(code: str) -> str:
    """``de_DE`` and ``de-de`` both mean ``de-DE``."""
    parts = code.strip().replace("_", "-").split("-")
    if len(parts) == 1:
        return parts[0].lower()
    return "-".join([parts[0].lower(), parts[1].upper(), *parts[2:]])


def short_code(language: str) -> str:
    return normalize_language(language).split("-")[0]


@dataclass(frozen=True, slots=True)
class ModelCatalog:
    """The configured models, in settings order (index 0 is the default)."""

    models: Sequence[ModelSpec]

    def by_name(self, name: str) -> ModelSpec | None:
        return next((m for m in self.models if m.name == name), None)

    def select(
        self, *, model: str | None = None, language: str | None = None, task: str | None = None
    ) -> ModelSpec:
        """Pick the model for a session; empty strings count as "not given"."""
        if model:
            found = self.by_name(model)
            if found is None:
                raise ModelNotFound(f"no model named {model!r}")
            return found
        if language:
            candidates = self._for_language(language)
            if task:
                return next((m for m in candidates if m.task == task), candidates[0])
            return candidates[0]
        if task:
            raise ModelNotFound(f"task {task!r} needs a language")
        if not self.models:
            raise ModelNotFound("no model is configured")
        return self.models[0]

    def _for_language(self, language: str) -> list[ModelSpec]:
        exact = [m for m in self.models if m.serves(language)]
        if exact:
            return exact
        short = short_code(language)
        fallback = next(
            (code for m in self.models for code in m.languages if short_code(code) == short), None
        )
        if fallback is None:
            raise ModelNotFound(f"no model for language {language!r}")
        # The old server rewrites the language to the first configured code with that
        # short code and then filters by it; do the same so task choice matches.
        return [m for m in self.models if m.serves(fallback)]

    def session_language(self, spec: ModelSpec, requested: str | None) -> str:
        """The language a session runs in: the requested one if the model serves it."""
        if requested:
            wanted = short_code(requested)
            if spec.serves(requested):
                return normalize_language(requested)
            match = next((c for c in spec.languages if short_code(c) == wanted), None)
            if match:
                return normalize_language(match)
        return spec.language
