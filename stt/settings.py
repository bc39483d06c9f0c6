"""The settings file, parsed once into one immutable, typed object.

The file keeps the SEPIA STT Server's INI layout (sections ``info``, ``server``,
``users``, ``app``, ``asr_models``, ``speaker_models``) so existing files keep
working, with three fixes: numbered keys may come in any order, a broken entry
is an error that names the key (never a silently dropped model), and relative
paths are relative to the settings file, not to the working directory.
"""

from __future__ import annotations

import configparser
import ipaddress
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from stt.catalog.folders import PackageNotInstalled, detect_engine, package_path
from stt.catalog.specs import ModelSpec, normalize_language
from stt.pcm import MAX_SAMPLE_RATE, MIN_SAMPLE_RATE

log = logging.getLogger(__name__)

ENV_VAR = "SEPIA_STT_SETTINGS"
DEFAULT_TAG = "SEPIA STT settings"
DEFAULT_PORT = 20741
#: Engine names that mean "each model says which engine it needs".
DYNAMIC_ENGINES = frozenset({"dynamic", "all"})
#: Prefix of a model path that lives inside an installed Python package.
PACKAGE_PREFIX = "package:"
#: The settings shipped inside the package: what a server started with no settings file uses.
DEFAULT_SETTINGS = Path(__file__).resolve().parent / "config" / "server.conf"

_NUMBERED_KEY = re.compile(r"^([a-z_]+?)(\d+)$")


class SettingsError(Exception):
    """The settings file is missing or broken; the message names the key."""


IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


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
    #: Seconds a client waits after a failed authentication (doubling with each failure).
    auth_failure_delay_s: float = 3.0
    #: Failed authentications from one address within 10 minutes before it is refused.
    auth_max_failures: int = 10
    #: Authenticated sessions at once; connections still waiting for their welcome do not count.
    max_sessions: int = 100
    #: Sessions per client id, for clients with a per-user token (the common token proves no id).
    max_sessions_per_user: int = 10
    #: Sessions per client address, for clients with the common token.
    max_sessions_per_address: int = 20
    #: Connections not yet authenticated, in all and per client address: beyond these a new
    #: socket is refused at the upgrade, before the server keeps any state for it.
    max_pending: int = 500
    max_pending_per_address: int = 20
    #: New connections per second per client address (a token bucket of ``connection_burst``).
    connection_rate: float = 10.0
    connection_burst: int = 30
    #: Peers (balancers, reverse proxies) whose ``X-Forwarded-For`` names the real client.
    trusted_proxies: tuple[IpNetwork, ...] = ()
    #: Largest binary frame; a larger one is dropped with ``413 MessageTooLarge``.
    max_frame_bytes: int = 1024 * 1024
    max_session_s: float = 3600.0
    #: Audio received but not yet decoded, per session; beyond it the socket is not read.
    max_buffered_audio_s: float = 10.0
    welcome_timeout_s: float = 5.0
    #: On SIGTERM/SIGINT, how long running streams may take to reach their final.
    drain_grace_s: float = 30.0
    #: How long a finished session's recognizer is kept warm for the next one; unused
    #: that long, it is freed and its memory goes back to the system.
    keep_warm_s: float = 300.0
    #: Certificate and key (PEM) to serve https:// and wss:// directly.
    tls_certfile: Path | None = None
    tls_keyfile: Path | None = None
    #: Origins allowed to open a WebSocket from a browser; empty allows any.
    ws_allowed_origins: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class AuthSettings:
    #: Token accepted for any client id; None disables it.
    common_token: str | None = "test1234"
    #: client id -> token.
    user_tokens: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class VoskServerSettings:
    """``[vosk_server]``: alphacep vosk-server's WebSocket API, for clients written for it."""

    enabled: bool = False
    #: Its own listener; ``host`` empty means ``[server] host``; port 0 picks a free one.
    host: str = ""
    port: int = 2700
    #: ``auto``: a token is required unless the listener is on loopback; ``on``; ``off``.
    auth: str = "auto"
    #: vosk-server's defaults for a client that sends no ``config``.
    sample_rate: float = 8000.0
    words: bool = True
    max_alternatives: int = 0
    #: The model a client gets without ``config.model``; empty: the first model.
    model: str = ""


@dataclass(frozen=True, slots=True)
class WyomingSettings:
    """``[wyoming]``: Home Assistant's Wyoming protocol, a TCP listener without authentication."""

    enabled: bool = False
    #: Loopback unless the network in between is trusted: Wyoming has no authentication.
    host: str = "127.0.0.1"
    port: int = 10300


@dataclass(frozen=True, slots=True)
class FileSettings:
    """``[files]``: recordings sent whole, to ``/v1/audio/transcriptions`` (OpenAI's API)."""

    enabled: bool = True
    #: Largest upload accepted, in MB (10**6 bytes): beyond it the answer is 413.
    max_upload_mb: float = 200.0
    #: Longest audio accepted, in seconds (413 beyond it).
    max_audio_s: float = 4 * 3600.0
    #: Files transcribed at once; more get 429.  Each shares the engine slots with live
    #: streams a chunk at a time, so live streams wait at most one chunk's decode for it.
    max_jobs: int = 2


@dataclass(frozen=True, slots=True)
class Settings:
    source: Path | None
    tag: str = DEFAULT_TAG
    server: ServerSettings = ServerSettings()
    auth: AuthSettings = AuthSettings()
    vosk_server: VoskServerSettings = VoskServerSettings()
    wyoming: WyomingSettings = WyomingSettings()
    files: FileSettings = FileSettings()
    #: ``asr_engine``: one engine name, or ``dynamic`` for "per model".
    engine: str = "dynamic"
    recordings_path: Path = Path("recordings")
    models: tuple[ModelSpec, ...] = ()
    speaker_model: Path | None = None
    #: ``[asr_models] base_folder``: where model folders are found and downloaded to.
    models_dir: Path | None = None
    #: ``[asr_models] discover``: also serve the installed models the file does not name
    #: (``stt.catalog.registry.with_discovered`` adds them; parsing only reads the file).
    discover: bool = False
    #: Model name -> where it was found, for models served without a settings entry.
    model_sources: Mapping[str, str] = field(default_factory=dict)

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


def user_settings_file() -> Path:
    """The user's own settings: ``$XDG_CONFIG_HOME/sepia-stt/server.conf`` (``~/.config/...``)."""
    config_home = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(config_home) / "sepia-stt" / "server.conf"


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError:
        return False


def find_settings_file(cli_path: str | os.PathLike[str] | None) -> Path:
    """``-s`` beats ``$SEPIA_STT_SETTINGS`` beats the user's file beats the shipped default.

    The working directory is not searched: a server started from any directory
    behaves the same.  ``~/.sepia-stt-server.conf`` is the old server's user file.
    """
    candidates: list[Path]
    if cli_path:
        candidates = [Path(cli_path)]
    elif os.environ.get(ENV_VAR):
        candidates = [Path(os.environ[ENV_VAR])]
    else:
        candidates = [
            user_settings_file(),
            Path.home() / ".sepia-stt-server.conf",
            DEFAULT_SETTINGS,
        ]
        candidates = [p for p in candidates if _is_file(p)][:1] or candidates[-1:]
    path = candidates[0]
    try:
        found = path.is_file()
    except OSError as error:  # e.g. a folder this user may not read
        raise SettingsError(f"settings file {path}: {error.strerror}") from None
    if not found:
        raise SettingsError(f"settings file not found: {path}")
    return path


def write_settings_copy(path: Path, common_token: str) -> None:
    """A commented copy of the shipped default at ``path``, with its own common token.

    Written to a temporary file and renamed, readable by its owner only (it holds a
    token); an existing file is never overwritten here, the caller decides that.
    """
    text = DEFAULT_SETTINGS.read_text(encoding="utf-8")
    default_line = re.search(r"^common_auth_token = .*$", text, flags=re.M)
    if default_line is None:  # the shipped file always has one; a broken install has not
        raise SettingsError(f"{DEFAULT_SETTINGS}: no common_auth_token line")
    text = text.replace(default_line[0], f"common_auth_token = {common_token}", 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text, encoding="utf-8")
    temporary.chmod(0o600)
    temporary.replace(path)


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
    server = _parse_server(parser, base_dir)
    file_engine = engine_name(_get(parser, "app", "asr_engine", "dynamic"))
    # -e decides which of the file's models are served, so it applies before they are read.
    engine = engine_name(overrides.engine) if overrides.engine else file_engine
    untagged_engine = None if file_engine in DYNAMIC_ENGINES else file_engine
    # -m serves exactly that model: nothing is discovered then.
    discover = overrides.model_path is None and _flag(parser, "asr_models", "discover", True)
    settings = Settings(
        source=source,
        tag=_get(parser, "info", "settings_tag", DEFAULT_TAG),
        server=server,
        auth=_parse_users(parser, base_dir),
        vosk_server=_parse_vosk_server(parser),
        wyoming=_parse_wyoming(parser),
        files=_parse_files(parser),
        engine=engine,
        recordings_path=_resolve(base_dir, _get(parser, "app", "recordings_path", "recordings")),
        models=(
            (_model_from_path(overrides.model_path, engine, overrides.language, parser),)
            if overrides.model_path is not None
            else _parse_models(parser, base_dir, engine, untagged_engine, discover)
        ),
        speaker_model=_parse_speaker_model(parser, base_dir),
        models_dir=_models_dir(parser, base_dir),
        discover=discover,
    )
    if overrides.language and overrides.model_path is None:
        log.warning("--language only applies together with --model; ignored")
    return replace(settings, server=_override_server(server, overrides))


def _override_server(server: ServerSettings, overrides: Overrides) -> ServerSettings:
    if overrides.host is not None:
        server = replace(server, host=overrides.host)
    if overrides.port is not None:
        server = replace(server, port=overrides.port)
    if overrides.log_level is not None:
        server = replace(server, log_level=overrides.log_level.lower())
    return server


def engine_name(value: str) -> str:
    """Engine names are case-insensitive; a ``module:Class`` path is kept as written."""
    value = value.strip()
    return value if ":" in value else value.lower()


def _model_from_path(
    path: Path, engine: str, language: str | None, parser: configparser.ConfigParser
) -> ModelSpec:
    """``-m``: exactly this model; without ``-l`` it keeps the file's first language."""
    path = path.resolve()
    if engine in DYNAMIC_ENGINES:
        detected = detect_engine(path)
        if detected is None:
            raise SettingsError(f"--model {path}: cannot tell its engine, give -e")
        engine = detected
    first_entry = next(iter(_numbered(parser, "asr_models").values()), {})
    fallback_language = first_entry.get("lang", "en-US").split(",")[0]
    return ModelSpec(
        name=path.name,
        path=path,
        language=normalize_language(language or fallback_language),
        engine=engine,
        properties={"engine": engine},
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


def _positive(parser: configparser.ConfigParser, section: str, key: str, default: float) -> float:
    value = _number(parser, section, key, default)
    if value == 0:
        raise SettingsError(f"[{section}] {key} must be more than 0")
    return value


def _flag(parser: configparser.ConfigParser, section: str, key: str, default: bool) -> bool:
    try:
        return parser.getboolean(section, key, fallback=default)
    except ValueError:
        raw = _get(parser, section, key, "")
        raise SettingsError(f"[{section}] {key} = {raw!r} is not true or false") from None


def _parse_server(parser: configparser.ConfigParser, base_dir: Path) -> ServerSettings:
    defaults = ServerSettings()
    port = _number(parser, "server", "port", defaults.port)
    if not port.is_integer() or not 0 < port < 65536:
        raise SettingsError(f"[server] port = {port} is not a TCP port")
    certfile = _get(parser, "server", "tls_certfile", "")
    keyfile = _get(parser, "server", "tls_keyfile", "")
    if bool(certfile) != bool(keyfile):
        raise SettingsError("[server] tls_certfile and tls_keyfile go together")

    def number(key: str, default: float) -> float:
        return _number(parser, "server", key, default)

    def positive(key: str, default: float) -> float:
        return _positive(parser, "server", key, default)

    def count(key: str, default: int) -> int:
        value = positive(key, default)
        if not value.is_integer():
            raise SettingsError(f"[server] {key} must be a whole number")
        return int(value)

    return ServerSettings(
        host=_get(parser, "server", "host", defaults.host),
        port=int(port),
        cors_origins=_list(_get(parser, "server", "cors_origins", "*")),
        log_level=_get(parser, "server", "log_level", defaults.log_level).lower(),
        heartbeat_s=positive("socket_heartbeat_s", defaults.heartbeat_s),
        timeout_s=positive("socket_timeout_s", defaults.timeout_s),
        decode_threads=int(number("decode_threads", defaults.decode_threads)),
        auth_failure_delay_s=number("auth_failure_delay_s", defaults.auth_failure_delay_s),
        auth_max_failures=count("auth_max_failures", defaults.auth_max_failures),
        max_sessions=count("max_sessions", defaults.max_sessions),
        max_sessions_per_user=count("max_sessions_per_user", defaults.max_sessions_per_user),
        max_sessions_per_address=count(
            "max_sessions_per_address", defaults.max_sessions_per_address
        ),
        max_pending=count("max_pending", defaults.max_pending),
        max_pending_per_address=count("max_pending_per_address", defaults.max_pending_per_address),
        connection_rate=positive("connection_rate", defaults.connection_rate),
        connection_burst=count("connection_burst", defaults.connection_burst),
        trusted_proxies=_networks(_get(parser, "server", "trusted_proxies", "")),
        max_frame_bytes=count("max_frame_bytes", defaults.max_frame_bytes),
        max_session_s=positive("max_session_s", defaults.max_session_s),
        max_buffered_audio_s=positive("max_buffered_audio_s", defaults.max_buffered_audio_s),
        welcome_timeout_s=positive("welcome_timeout_s", defaults.welcome_timeout_s),
        drain_grace_s=number("drain_grace_s", defaults.drain_grace_s),
        keep_warm_s=number("keep_warm_s", defaults.keep_warm_s),
        tls_certfile=_resolve(base_dir, certfile) if certfile else None,
        tls_keyfile=_resolve(base_dir, keyfile) if keyfile else None,
        ws_allowed_origins=_list(_get(parser, "server", "ws_allowed_origins", "")),
    )


def _listener_port(parser: configparser.ConfigParser, section: str, default: int) -> int:
    port = _number(parser, section, "port", default)
    if not port.is_integer() or not 0 <= port < 65536:
        raise SettingsError(f"[{section}] port = {port:g} is not a TCP port (0: any free one)")
    return int(port)


def _parse_wyoming(parser: configparser.ConfigParser) -> WyomingSettings:
    defaults = WyomingSettings()
    return WyomingSettings(
        enabled=_flag(parser, "wyoming", "enabled", defaults.enabled),
        host=_get(parser, "wyoming", "host", defaults.host),
        port=_listener_port(parser, "wyoming", defaults.port),
    )


def _parse_files(parser: configparser.ConfigParser) -> FileSettings:
    defaults = FileSettings()
    max_jobs = _positive(parser, "files", "max_jobs", defaults.max_jobs)
    if not max_jobs.is_integer():
        raise SettingsError(f"[files] max_jobs = {max_jobs:g} is not a whole number")
    return FileSettings(
        enabled=_flag(parser, "files", "enabled", defaults.enabled),
        max_upload_mb=_positive(parser, "files", "max_upload_mb", defaults.max_upload_mb),
        max_audio_s=_positive(parser, "files", "max_audio_s", defaults.max_audio_s),
        max_jobs=int(max_jobs),
    )


def _parse_vosk_server(parser: configparser.ConfigParser) -> VoskServerSettings:
    defaults = VoskServerSettings()
    section = "vosk_server"
    port = _listener_port(parser, section, defaults.port)
    auth = _get(parser, section, "auth", defaults.auth).lower()
    if auth not in ("auto", "on", "off"):
        raise SettingsError(f"[{section}] auth = {auth!r} is not auto, on or off")
    sample_rate = _number(parser, section, "sample_rate", defaults.sample_rate)
    if not MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE:
        raise SettingsError(
            f"[{section}] sample_rate = {sample_rate:g} is out of range "
            f"({MIN_SAMPLE_RATE} to {MAX_SAMPLE_RATE})"
        )
    alternatives = _number(parser, section, "max_alternatives", defaults.max_alternatives)
    if not alternatives.is_integer() or alternatives < 0:
        raise SettingsError(f"[{section}] max_alternatives must be a whole number, 0 or more")
    return VoskServerSettings(
        enabled=_flag(parser, section, "enabled", defaults.enabled),
        host=_get(parser, section, "host", defaults.host),
        port=port,
        auth=auth,
        sample_rate=sample_rate,
        words=_flag(parser, section, "words", defaults.words),
        max_alternatives=int(alternatives),
        model=_get(parser, section, "model", defaults.model),
    )


def _networks(value: str) -> tuple[IpNetwork, ...]:
    """``trusted_proxies``: addresses or CIDR blocks, comma-separated."""
    networks = []
    for item in _list(value):
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise SettingsError(
                f"[server] trusted_proxies: {item!r} is not an IP address or network"
            ) from None
    return tuple(networks)


def _list(value: str) -> tuple[str, ...]:
    """A comma-separated settings value."""
    return tuple(item.strip() for item in value.split(",") if item.strip())


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


def _parse_users(parser: configparser.ConfigParser, base_dir: Path) -> AuthSettings:
    """``[users]``, plus those of ``users_file`` (e.g. a Kubernetes Secret mounted as a file),
    whose common token and users beat the main file's."""
    auth = _users_section(parser, "[users]")
    users_file = _get(parser, "users", "users_file", "")
    if not users_file:
        return auth
    path = _resolve(base_dir, users_file)
    included = configparser.ConfigParser(interpolation=None, inline_comment_prefixes=("#", ";"))
    try:
        with path.open(encoding="utf-8") as f:
            included.read_file(f)
    except (OSError, configparser.Error) as error:
        raise SettingsError(f"[users] users_file = {users_file}: cannot read it: {error}") from None
    extra = _users_section(included, f"[users] of {path}")
    return AuthSettings(
        common_token=extra.common_token or auth.common_token,
        user_tokens={**auth.user_tokens, **extra.user_tokens},
    )


def _users_section(parser: configparser.ConfigParser, where: str) -> AuthSettings:
    common = _get(parser, "users", "common_auth_token", "")
    users: dict[str, str] = {}
    for index, entry in _numbered(parser, "users").items():
        user, token = entry.get("user"), entry.get("token")
        if not user or not token:
            missing = "token" if user else "user"
            raise SettingsError(f"{where} {missing}{index} is missing or empty")
        users[user] = token
    return AuthSettings(common_token=common or None, user_tokens=users)


def _resolve(base_dir: Path, value: str) -> Path:
    """A path from the file: ``package:name/sub`` is inside an installed package."""
    if value.startswith(PACKAGE_PREFIX):
        try:
            return package_path(value[len(PACKAGE_PREFIX) :])
        except PackageNotInstalled as error:
            raise SettingsError(str(error)) from None
    return (base_dir / Path(value).expanduser()).resolve()


def _models_dir(parser: configparser.ConfigParser, base_dir: Path) -> Path:
    return _resolve(base_dir, _get(parser, "asr_models", "base_folder", "."))


def _parse_models(
    parser: configparser.ConfigParser,
    base_dir: Path,
    engine: str,
    untagged_engine: str | None,
    discover: bool,
) -> tuple[ModelSpec, ...]:
    """The served models: ``engine`` is one engine name or dynamic.  A model without
    ``engineN`` gets the engine its folder shows, else the fixed ``engine``, else
    ``untagged_engine`` (the file's own engine when ``-e dynamic`` overrides it).

    With ``discover`` on, the file may name none: the installed models are served
    (``stt.catalog.registry.with_discovered`` fails when there are none either)."""
    if not parser.has_section("asr_models"):
        raise SettingsError("section [asr_models] is missing")
    base = _models_dir(parser, base_dir)
    models: list[ModelSpec] = []
    for index, entry in _numbered(parser, "asr_models").items():
        spec = _model_spec(index, entry, base, engine, untagged_engine)
        if spec is not None:
            models.append(spec)
    names = [m.name for m in models]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate:
        raise SettingsError(f"[asr_models] model name {duplicate!r} is used twice")
    if not models and not discover:
        only = "" if engine in DYNAMIC_ENGINES else f" for engine {engine!r}"
        raise SettingsError(f"[asr_models] has no model{only} (path1, lang1, engine1, ...)")
    return tuple(models)


def _model_spec(
    index: int, entry: dict[str, str], base: Path, engine: str, untagged_engine: str | None
) -> ModelSpec | None:
    for required in ("path", "lang"):
        if not entry.get(required):
            raise SettingsError(f"[asr_models] {required}{index} is missing or empty")
    path = _resolve(base, entry["path"])
    fixed_engine = None if engine in DYNAMIC_ENGINES else engine
    model_engine = (
        engine_name(entry.get("engine", ""))
        or detect_engine(path)
        or fixed_engine
        or untagged_engine
    )
    if not model_engine:
        raise SettingsError(f"[asr_models] engine{index} is missing and {path} is no known model")
    if fixed_engine and model_engine != fixed_engine:
        log.info("model %s is for engine %s, not %s: skipped", entry["path"], model_engine, engine)
        return None
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
