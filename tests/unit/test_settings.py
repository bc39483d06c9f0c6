"""The settings file: INI text -> one frozen ``Settings`` (no server, no model loading)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

import stt
from stt.catalog.registry import with_discovered
from stt.catalog.specs import ModelCatalog, ModelSpec, normalize_language
from stt.errors import ModelNotFound
from stt.settings import (
    ENV_VAR,
    Overrides,
    SettingsError,
    engine_name,
    find_settings_file,
    load_settings,
    user_settings_file,
)

#: Every file below starts with this, so each test only shows the sections it is about.
INFO = "[info]\nsettings_tag = unit test\n"

STT_PACKAGE_DIR = Path(stt.__file__).resolve().parent


def write(folder: Path, text: str, name: str = "server.conf") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(INFO + textwrap.dedent(text), encoding="utf-8")
    return path


def load(tmp_path: Path, text: str, **overrides):
    return load_settings(write(tmp_path, text), Overrides(**overrides))


def fixed_engine_file(models: str, engine: str = "test") -> str:
    """A file in fixed-engine mode, so model folders need not exist."""
    return f"[app]\nasr_engine = {engine}\n[asr_models]\n" + textwrap.dedent(models)


def make_vosk_folder(path: Path) -> Path:
    (path / "am").mkdir(parents=True)
    return path


def make_whisper_folder(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "model.bin").write_bytes(b"")
    return path


# -- models: order, names, properties --------------------------------------------------------


def test_model_keys_may_come_in_any_order(tmp_path):
    settings = load(
        tmp_path,
        fixed_engine_file(
            """
            lang2 = de-DE
            task1 = assistant
            path2 = model-de
            lang1 = en-US
            name2 = german
            path1 = model-en
            """
        ),
    )
    assert [(m.name, m.language, m.path.name) for m in settings.models] == [
        ("model-en:assistant", "en-US", "model-en"),
        ("german", "de-DE", "model-de"),
    ]


def test_models_are_ordered_by_number_not_by_key_text(tmp_path):
    settings = load(
        tmp_path,
        fixed_engine_file(
            """
            path10 = ten
            lang10 = en-US
            path2 = two
            lang2 = en-US
            """
        ),
    )
    assert [m.name for m in settings.models] == ["two", "ten"]


def test_a_gap_in_the_numbering_drops_no_model(tmp_path):
    settings = load(
        tmp_path,
        fixed_engine_file(
            """
            path1 = one
            lang1 = en-US
            path3 = three
            lang3 = de-DE
            """
        ),
    )
    assert [m.name for m in settings.models] == ["one", "three"]


@pytest.mark.parametrize(
    ("entry", "expected_name"),
    [
        ("path1 = small-en\nname1 = english\ntask1 = assistant", "english"),
        ("path1 = small-en\ntask1 = assistant", "small-en:assistant"),
        ("path1 = small-en\nscorer1 = big.scorer", "small-en:big"),
        ("path1 = small-en\ntask1 = chat\nscorer1 = big.scorer", "small-en:chat"),
        ("path1 = small-en", "small-en"),
        ("path1 = small-en/", "small-en"),
        ("path1 = package:stt/engines", "stt/engines"),
    ],
)
def test_model_name_rules(tmp_path, entry, expected_name):
    settings = load(tmp_path, fixed_engine_file(f"{entry}\nlang1 = en-US\n"))
    assert settings.models[0].name == expected_name


def test_model_properties_hold_every_extra_key_and_the_engine(tmp_path):
    settings = load(
        tmp_path,
        fixed_engine_file(
            """
            path1 = small-en
            lang1 = en-US
            name1 = english
            task1 = assistant
            scorer1 = big.scorer
            color1 = blue
            """
        ),
    )
    model = settings.models[0]
    assert dict(model.properties) == {
        "task": "assistant",
        "scorer": "big.scorer",
        "color": "blue",
        "engine": "test",
    }
    assert model.task == "assistant"
    assert model.engine == "test"


def test_an_empty_task_is_no_task(tmp_path):
    settings = load(tmp_path, fixed_engine_file("path1 = m\nlang1 = en-US\ntask1 =\n"))
    assert settings.models[0].task is None
    assert settings.models[0].name == "m"


@pytest.mark.parametrize(
    ("written", "normalized"),
    [("de_DE", "de-DE"), ("en-us", "en-US"), ("DE", "de"), ("  fr-fr ", "fr-FR")],
)
def test_model_languages_are_normalized(tmp_path, written, normalized):
    settings = load(tmp_path, fixed_engine_file(f"path1 = m\nlang1 = {written}\n"))
    assert settings.models[0].language == normalized


# -- paths -----------------------------------------------------------------------------------


def test_relative_paths_are_relative_to_the_settings_file_not_the_cwd(tmp_path, monkeypatch):
    conf_dir = tmp_path / "deploy" / "conf"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    path = write(
        conf_dir,
        """
        [app]
        asr_engine = test
        recordings_path = ../recordings/
        [asr_models]
        base_folder = ../models/
        path1 = small-en
        lang1 = en-US
        [speaker_models]
        base_folder = spk-models
        path1 = vosk-model-spk
        """,
    )
    settings = load_settings(path)
    deploy = (tmp_path / "deploy").resolve()
    assert settings.recordings_path == deploy / "recordings"
    assert settings.models[0].path == deploy / "models" / "small-en"
    assert settings.speaker_model == deploy / "conf" / "spk-models" / "vosk-model-spk"
    assert settings.source == path


def test_an_absolute_model_path_ignores_the_base_folder(tmp_path):
    absolute = (tmp_path / "somewhere" / "model").resolve()
    settings = load(
        tmp_path,
        fixed_engine_file(f"base_folder = ../models/\npath1 = {absolute}\nlang1 = en-US\n"),
    )
    assert settings.models[0].path == absolute


def test_no_speaker_model_is_none(tmp_path):
    settings = load(tmp_path, fixed_engine_file("path1 = m\nlang1 = en-US\n"))
    assert settings.speaker_model is None


def test_package_path_resolves_inside_the_installed_package(tmp_path):
    settings = load(
        tmp_path,
        fixed_engine_file("base_folder = ../models/\npath1 = package:stt/engines\nlang1 = en-US\n"),
    )
    assert settings.models[0].path == STT_PACKAGE_DIR / "engines"


def test_package_base_folder_resolves_model_paths_inside_the_package(tmp_path):
    settings = load(
        tmp_path, fixed_engine_file("base_folder = package:stt\npath1 = engines\nlang1 = en-US\n")
    )
    assert settings.models[0].path == STT_PACKAGE_DIR / "engines"


@pytest.mark.parametrize(
    "value",
    ["package:no_such_package_xyz/model", "package:not-an-identifier/model", "package:"],
)
def test_a_missing_package_is_a_clear_error(tmp_path, value):
    with pytest.raises(SettingsError, match="is not installed"):
        load(tmp_path, fixed_engine_file(f"path1 = {value}\nlang1 = en-US\n"))


def test_a_package_that_is_a_plain_module_is_not_a_model_folder(tmp_path):
    # textwrap is a module, not a package: it has no folder to look into.
    with pytest.raises(SettingsError, match="'textwrap'"):
        load(tmp_path, fixed_engine_file("path1 = package:textwrap/x\nlang1 = en-US\n"))


# -- broken entries name the key ---------------------------------------------------------


@pytest.mark.parametrize(
    ("models", "key"),
    [
        ("path1 = a\nlang1 = en-US\npath2 = b\n", "lang2"),
        ("lang1 = en-US\n", "path1"),
        ("path1 = a\nlang1 =\n", "lang1"),
        ("path1 =\nlang1 = en-US\n", "path1"),
        ("path1 = a\nlang1 = en-US\ntask2 = chat\n", "path2"),
    ],
)
def test_a_model_without_path_or_language_is_an_error_naming_the_key(tmp_path, models, key):
    with pytest.raises(SettingsError, match=rf"\b{key}\b"):
        load(tmp_path, fixed_engine_file(models))


def test_missing_asr_models_section_is_an_error(tmp_path):
    with pytest.raises(SettingsError, match=r"\[asr_models\]"):
        load(tmp_path, "[app]\nasr_engine = test\n")


def test_asr_models_without_any_model_is_an_error_when_nothing_is_discovered(tmp_path):
    with pytest.raises(SettingsError, match="no model"):
        load(tmp_path, fixed_engine_file("base_folder = models\ndiscover = false\n"))


def test_with_discovery_the_file_may_name_no_model_but_one_must_be_installed(tmp_path):
    settings = load(tmp_path, fixed_engine_file("base_folder = models\n"))
    assert settings.models == () and settings.discover
    with pytest.raises(SettingsError, match=r"no model for engine 'test' to serve"):
        with_discovered(settings)


@pytest.mark.parametrize(
    ("server", "key"),
    [
        ("port = twenty", "port"),
        ("port = 70000", "port"),
        ("port = 0", "port"),
        ("port = 2074.5", "port"),
        ("port = -1", "port"),
        ("socket_timeout_s = soon", "socket_timeout_s"),
        ("socket_heartbeat_s = -5", "socket_heartbeat_s"),
        ("decode_threads = many", "decode_threads"),
        ("keep_warm_s = -1", "keep_warm_s"),
        ("max_pending = 0", "max_pending"),
        ("max_pending_per_address = 2.5", "max_pending_per_address"),
        ("max_sessions_per_address = none", "max_sessions_per_address"),
        ("connection_rate = 0", "connection_rate"),
        ("connection_burst = -3", "connection_burst"),
        ("trusted_proxies = 10.0.0.0/33", "trusted_proxies"),
        ("trusted_proxies = proxy.example", "trusted_proxies"),
    ],
)
def test_a_bad_number_in_server_is_an_error_naming_the_key(tmp_path, server, key):
    text = f"[server]\n{server}\n" + fixed_engine_file("path1 = m\nlang1 = en-US\n")
    with pytest.raises(SettingsError, match=key):
        load(tmp_path, text)


def test_server_section_values_are_read(tmp_path):
    text = """
        [server]
        host = 127.0.0.1
        port = 8080
        cors_origins = https://a.example, https://b.example ,
        log_level = DEBUG
        socket_heartbeat_s = 2.5
        socket_timeout_s = 7
        decode_threads = 3
        auth_failure_delay_s = 0
        keep_warm_s = 0
        max_sessions_per_address = 4
        max_pending = 50
        max_pending_per_address = 5
        connection_rate = 2.5
        connection_burst = 7
        trusted_proxies = 10.0.0.1, 192.168.0.0/24 , ::1
        """
    settings = load(tmp_path, textwrap.dedent(text) + fixed_engine_file("path1 = m\nlang1 = en\n"))
    server = settings.server
    assert (server.host, server.port) == ("127.0.0.1", 8080)
    assert server.cors_origins == ("https://a.example", "https://b.example")
    assert server.log_level == "debug"
    assert (server.heartbeat_s, server.timeout_s) == (2.5, 7.0)
    assert (server.decode_threads, server.auth_failure_delay_s) == (3, 0.0)
    assert server.keep_warm_s == 0.0
    assert (server.max_sessions_per_address, server.max_pending) == (4, 50)
    assert server.max_pending_per_address == 5
    assert (server.connection_rate, server.connection_burst) == (2.5, 7)
    assert [str(n) for n in server.trusted_proxies] == ["10.0.0.1/32", "192.168.0.0/24", "::1/128"]


def test_server_defaults_apply_when_the_section_is_missing(tmp_path):
    settings = load(tmp_path, fixed_engine_file("path1 = m\nlang1 = en\n"))
    assert settings.server.port == 20741
    assert (settings.server.heartbeat_s, settings.server.timeout_s) == (10.0, 15.0)
    assert settings.server.keep_warm_s == 300.0
    assert settings.server.welcome_timeout_s == 5.0
    assert (settings.server.max_pending, settings.server.max_pending_per_address) == (500, 20)
    assert settings.server.trusted_proxies == ()


# -- users -------------------------------------------------------------------------------


def test_users_and_tokens_in_any_order(tmp_path):
    text = """
        [users]
        common_auth_token = shared-secret
        token2 = bob-token
        user1 = alice
        user2 = bob
        token1 = alice-token
        """
    settings = load(tmp_path, textwrap.dedent(text) + fixed_engine_file("path1 = m\nlang1 = en\n"))
    assert settings.auth.common_token == "shared-secret"
    assert dict(settings.auth.user_tokens) == {"alice": "alice-token", "bob": "bob-token"}


def test_an_empty_common_token_disables_it(tmp_path):
    text = "[users]\ncommon_auth_token =\n" + fixed_engine_file("path1 = m\nlang1 = en\n")
    assert load(tmp_path, text).auth.common_token is None


@pytest.mark.parametrize(
    ("users", "key"),
    [
        ("user1 = alice\ntoken1 = a\nuser2 = bob\n", "token2"),
        ("token1 = a\n", "user1"),
        ("user1 = alice\ntoken1 =\n", "token1"),
    ],
)
def test_a_user_without_token_or_token_without_user_is_an_error(tmp_path, users, key):
    text = f"[users]\n{users}" + fixed_engine_file("path1 = m\nlang1 = en\n")
    with pytest.raises(SettingsError, match=rf"\b{key}\b"):
        load(tmp_path, text)


# -- duplicate names ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("models", "name"),
    [
        ("path1 = a\nlang1 = en\nname1 = x\npath2 = b\nlang2 = de\nname2 = x\n", "x"),
        ("path1 = a\nlang1 = en\npath2 = a\nlang2 = de\n", "a"),
        ("path1 = a\nlang1 = en\ntask1 = t\npath2 = b\nlang2 = de\nname2 = a:t\n", "a:t"),
    ],
)
def test_duplicate_model_names_are_an_error(tmp_path, models, name):
    with pytest.raises(SettingsError, match=f"'{name}' is used twice"):
        load(tmp_path, fixed_engine_file(models))


def test_same_path_with_different_tasks_is_fine(tmp_path):
    settings = load(
        tmp_path,
        fixed_engine_file("path1 = a\nlang1 = en\ntask1 = x\npath2 = a\nlang2 = en\ntask2 = y\n"),
    )
    assert [m.name for m in settings.models] == ["a:x", "a:y"]


# -- engines -----------------------------------------------------------------------------


def test_fixed_engine_keeps_untagged_and_matching_models_only(tmp_path):
    settings = load(
        tmp_path,
        fixed_engine_file(
            """
            path1 = for-vosk
            lang1 = en
            engine1 = vosk
            path2 = untagged
            lang2 = en
            path3 = for-test
            lang3 = de
            engine3 = TEST
            """
        ),
    )
    assert [(m.name, m.engine) for m in settings.models] == [
        ("untagged", "test"),
        ("for-test", "test"),
    ]
    assert settings.engine_names == ["test"]
    assert not settings.is_dynamic


def test_fixed_engine_with_no_matching_model_is_an_error(tmp_path):
    with pytest.raises(SettingsError, match="no model"):
        with_discovered(
            load(tmp_path, fixed_engine_file("path1 = a\nlang1 = en\nengine1 = vosk\n"))
        )


@pytest.mark.parametrize("mode", ["dynamic", "all", "Dynamic"])
def test_dynamic_mode_detects_the_engine_from_the_model_folder(tmp_path, mode):
    models = tmp_path / "models"
    make_vosk_folder(models / "vosk-small")
    make_whisper_folder(models / "whisper-tiny")
    (models / "vosk-conf-only" / "conf").mkdir(parents=True)
    (models / "vosk-conf-only" / "conf" / "model.conf").write_text("")
    settings = load(
        tmp_path,
        f"""
        [app]
        asr_engine = {mode}
        [asr_models]
        base_folder = models
        path1 = vosk-small
        lang1 = de-DE
        path2 = whisper-tiny
        lang2 = en-US
        path3 = vosk-conf-only
        lang3 = fr-FR
        """,
    )
    assert settings.is_dynamic
    assert [m.engine for m in settings.models] == ["vosk", "whisper", "vosk"]
    assert [m.properties["engine"] for m in settings.models] == ["vosk", "whisper", "vosk"]
    assert settings.engine_names == ["vosk", "whisper"]


def test_dynamic_mode_prefers_the_written_engine_over_detection(tmp_path):
    make_vosk_folder(tmp_path / "models" / "m")
    settings = load(
        tmp_path,
        """
        [app]
        asr_engine = dynamic
        [asr_models]
        base_folder = models
        path1 = m
        lang1 = en
        engine1 = test
        """,
    )
    assert settings.models[0].engine == "test"


def test_dynamic_mode_with_an_undetectable_folder_names_the_engine_key(tmp_path):
    (tmp_path / "models" / "mystery").mkdir(parents=True)
    text = """
        [app]
        asr_engine = dynamic
        [asr_models]
        base_folder = models
        path1 = mystery
        lang1 = en
        """
    with pytest.raises(SettingsError, match=r"\bengine1\b"):
        load(tmp_path, text)


def test_dynamic_is_the_default_engine(tmp_path):
    make_whisper_folder(tmp_path / "w")
    settings = load(tmp_path, "[asr_models]\npath1 = w\nlang1 = en\n")
    assert settings.engine == "dynamic"
    assert settings.models[0].engine == "whisper"


@pytest.mark.parametrize(
    ("written", "kept"),
    [
        ("VOSK", "vosk"),
        ("  Whisper ", "whisper"),
        ("My_Pkg.Engines:FancyEngine", "My_Pkg.Engines:FancyEngine"),
        (" pkg:CamelCase ", "pkg:CamelCase"),
    ],
)
def test_engine_names_are_lowercased_unless_module_class(written, kept):
    assert engine_name(written) == kept


def test_module_class_engine_keeps_its_case_in_the_file(tmp_path):
    settings = load(
        tmp_path,
        fixed_engine_file("path1 = m\nlang1 = en\n", engine="My_Pkg.Engines:FancyEngine"),
    )
    assert settings.engine == "My_Pkg.Engines:FancyEngine"
    assert settings.models[0].engine == "My_Pkg.Engines:FancyEngine"


def test_module_class_engine_per_model_keeps_its_case(tmp_path):
    text = """
        [app]
        asr_engine = dynamic
        [asr_models]
        path1 = m
        lang1 = en
        engine1 = Third.Party:SomeEngine
        """
    settings = load(tmp_path, text)
    assert settings.models[0].engine == "Third.Party:SomeEngine"


# -- command-line overrides --------------------------------------------------------------


def test_overrides_beat_the_file_for_host_port_and_log_level(tmp_path):
    text = "[server]\nhost = 0.0.0.0\nport = 20741\nlog_level = warning\n"
    settings = load(
        tmp_path,
        text + fixed_engine_file("path1 = m\nlang1 = en\n"),
        host="127.0.0.1",
        port=0,
        log_level="DEBUG",
    )
    assert settings.server.host == "127.0.0.1"
    assert settings.server.port == 0
    assert settings.server.log_level == "debug"


def test_no_overrides_keep_the_file_values(tmp_path):
    text = "[server]\nhost = 10.0.0.1\nport = 1234\nlog_level = error\n"
    settings = load(tmp_path, text + fixed_engine_file("path1 = m\nlang1 = en\n"))
    assert (settings.server.host, settings.server.port) == ("10.0.0.1", 1234)
    assert settings.server.log_level == "error"


def test_engine_override_keeps_only_that_engines_models_in_dynamic_mode(tmp_path):
    text = """
        [app]
        asr_engine = dynamic
        [asr_models]
        path1 = a
        lang1 = en
        engine1 = vosk
        path2 = b
        lang2 = de
        engine2 = whisper
        """
    settings = load(tmp_path, text, engine="Whisper")
    assert settings.engine == "whisper"
    assert [m.name for m in settings.models] == ["b"]


def test_engine_override_to_dynamic_keeps_every_model(tmp_path):
    text = fixed_engine_file("path1 = a\nlang1 = en\npath2 = b\nlang2 = de\n", engine="test")
    settings = load(tmp_path, text, engine="dynamic")
    assert settings.is_dynamic
    assert [m.name for m in settings.models] == ["a", "b"]


def test_engine_override_without_a_model_for_it_is_an_error(tmp_path):
    text = """
        [app]
        asr_engine = dynamic
        [asr_models]
        discover = false
        path1 = a
        lang1 = en
        engine1 = vosk
        """
    with pytest.raises(SettingsError, match="'whisper'"):
        load(tmp_path, text, engine="whisper")


def test_engine_override_serves_untagged_models_of_a_fixed_engine_file(tmp_path):
    text = fixed_engine_file("path1 = a\nlang1 = en\n", engine="vosk")
    settings = load(tmp_path, text, engine="test")
    assert [(m.name, m.engine) for m in settings.models] == [("a", "test")]


def test_engine_override_finds_models_tagged_for_it_in_a_fixed_engine_file(tmp_path):
    text = fixed_engine_file(
        "path1 = a\nlang1 = en\npath2 = b\nlang2 = de\nengine2 = whisper\n"
        "path3 = c\nlang3 = fr\nengine3 = vosk\n",
        engine="vosk",
    )
    settings = load(tmp_path, text, engine="whisper")
    # -e whisper is "asr_engine = whisper": untagged models get it, vosk ones are left out.
    assert [(m.name, m.engine) for m in settings.models] == [("a", "whisper"), ("b", "whisper")]


def test_model_override_replaces_every_model(tmp_path):
    folder = tmp_path / "my-model"
    text = fixed_engine_file("path1 = a\nlang1 = de-DE\npath2 = b\nlang2 = en-US\n")
    settings = load(tmp_path, text, model_path=folder)
    assert [(m.name, m.path, m.engine) for m in settings.models] == [
        ("my-model", folder.resolve(), "test")
    ]
    # Without --language the model gets the first configured model's language.
    assert settings.models[0].language == "de-DE"


def test_model_override_takes_the_language_flag(tmp_path):
    text = fixed_engine_file("path1 = a\nlang1 = de-DE\n")
    settings = load(tmp_path, text, model_path=tmp_path / "m", language="en_us")
    assert settings.models[0].language == "en-US"


def test_model_override_in_dynamic_mode_detects_the_engine(tmp_path):
    folder = make_whisper_folder(tmp_path / "whisper-small")
    text = "[asr_models]\npath1 = a\nlang1 = en\nengine1 = vosk\n"
    settings = load(tmp_path, text, model_path=folder)
    assert [(m.name, m.engine) for m in settings.models] == [("whisper-small", "whisper")]


def test_model_override_in_dynamic_mode_with_an_unknown_folder_asks_for_an_engine(tmp_path):
    folder = tmp_path / "mystery"
    folder.mkdir()
    text = "[asr_models]\npath1 = a\nlang1 = en\nengine1 = vosk\n"
    with pytest.raises(SettingsError, match="-e"):
        load(tmp_path, text, model_path=folder)


def test_model_override_with_engine_override_uses_that_engine(tmp_path):
    folder = make_vosk_folder(tmp_path / "vosk-model")
    text = "[asr_models]\npath1 = a\nlang1 = en\nengine1 = vosk\n"
    settings = load(tmp_path, text, model_path=folder, engine="test")
    assert [(m.name, m.engine) for m in settings.models] == [("vosk-model", "test")]


def test_language_override_without_model_override_changes_nothing(tmp_path):
    text = fixed_engine_file("path1 = a\nlang1 = de-DE\n")
    settings = load(tmp_path, text, language="en-US")
    assert [m.language for m in settings.models] == ["de-DE"]


# -- reading the file --------------------------------------------------------------------


def test_a_missing_file_is_a_settings_error(tmp_path):
    with pytest.raises(SettingsError, match="cannot read"):
        load_settings(tmp_path / "absent.conf")


def test_a_file_that_is_no_ini_is_a_settings_error(tmp_path):
    path = tmp_path / "broken.conf"
    path.write_text("port = 1\n[server\n", encoding="utf-8")
    with pytest.raises(SettingsError, match="cannot read"):
        load_settings(path)


def test_inline_comments_are_not_part_of_values(tmp_path):
    settings = load(
        tmp_path, fixed_engine_file("path1 = m   # the English one\nlang1 = en-US ; US\n")
    )
    assert (settings.models[0].name, settings.models[0].language) == ("m", "en-US")


def test_settings_tag_is_read(tmp_path):
    assert load(tmp_path, fixed_engine_file("path1 = m\nlang1 = en\n")).tag == "unit test"


def test_a_file_without_settings_tag_gets_the_default_tag(tmp_path):
    path = tmp_path / "no-info.conf"
    path.write_text(fixed_engine_file("path1 = m\nlang1 = en\n"), encoding="utf-8")
    assert load_settings(path).tag == "SEPIA STT settings"


def test_settings_are_frozen(tmp_path):
    settings = load(tmp_path, fixed_engine_file("path1 = m\nlang1 = en\n"))
    with pytest.raises(AttributeError):
        settings.engine = "vosk"


# -- which file ----------------------------------------------------------------------------


@pytest.fixture
def isolated_lookup(tmp_path, monkeypatch):
    """No env var, an empty home and an empty working directory."""
    home = tmp_path / "home"
    cwd = tmp_path / "cwd"
    home.mkdir()
    cwd.mkdir()
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(cwd)
    return home, cwd


def test_lookup_cli_path_beats_everything(isolated_lookup, tmp_path, monkeypatch):
    home, _cwd = isolated_lookup
    cli = write(tmp_path / "cli", "")
    env = write(tmp_path / "env", "")
    write(home / ".config" / "sepia-stt", "")
    monkeypatch.setenv(ENV_VAR, str(env))
    assert find_settings_file(cli) == cli


def test_lookup_env_beats_the_user_file(isolated_lookup, tmp_path, monkeypatch):
    home, _cwd = isolated_lookup
    env = write(tmp_path / "env", "")
    write(home / ".config" / "sepia-stt", "")
    monkeypatch.setenv(ENV_VAR, str(env))
    assert find_settings_file(None) == env


def test_lookup_the_user_file_in_the_config_home(isolated_lookup, tmp_path, monkeypatch):
    home, _cwd = isolated_lookup
    user_file = write(home / ".config" / "sepia-stt", "")
    write(home, "", name=".sepia-stt-server.conf")
    assert find_settings_file(None) == user_file == user_settings_file()
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    xdg_file = write(tmp_path / "xdg" / "sepia-stt", "")
    assert find_settings_file(None) == xdg_file


def test_lookup_the_old_servers_home_file_next(isolated_lookup):
    home, _cwd = isolated_lookup
    home_file = write(home, "", name=".sepia-stt-server.conf")
    assert find_settings_file(None) == home_file


def test_lookup_ignores_the_working_directory(isolated_lookup):
    _home, cwd = isolated_lookup
    write(cwd, "")
    assert find_settings_file(None) == STT_PACKAGE_DIR / "config" / "server.conf"


def test_lookup_falls_back_to_the_shipped_default(isolated_lookup):
    shipped = STT_PACKAGE_DIR / "config" / "server.conf"
    assert find_settings_file(None) == shipped


def test_lookup_an_empty_cli_path_counts_as_not_given(isolated_lookup, tmp_path, monkeypatch):
    env = write(tmp_path / "env", "")
    monkeypatch.setenv(ENV_VAR, str(env))
    assert find_settings_file("") == env


@pytest.mark.parametrize("source", ["cli", "env"])
def test_lookup_a_named_file_that_is_missing_is_an_error(isolated_lookup, monkeypatch, source):
    home, cwd = isolated_lookup
    write(home, "", name=".sepia-stt-server.conf")  # must not be used instead
    missing = cwd / "missing.conf"
    if source == "env":
        monkeypatch.setenv(ENV_VAR, str(missing))
    with pytest.raises(SettingsError, match=r"missing\.conf"):
        find_settings_file(missing if source == "cli" else None)


# -- model choice over parsed settings (wire contract §1.5) ------------------------------


def spec(name, language, task=None):
    return ModelSpec(name=name, path=Path(name), language=language, engine="test", task=task)


CATALOG = ModelCatalog(
    [
        spec("de-small", "de-DE", "assistant"),
        spec("en-small", "en-US", "assistant"),
        spec("en-chat", "en-US", "conversation"),
        spec("gb", "en-GB"),
        spec("de-ch", "de-CH", "conversation"),
    ]
)


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        ({}, "de-small"),
        ({"model": "en-chat", "language": "de-DE", "task": "assistant"}, "en-chat"),
        ({"language": "en-US"}, "en-small"),
        ({"language": "en_us"}, "en-small"),
        ({"language": "en-GB"}, "gb"),
        ({"language": "en-US", "task": "conversation"}, "en-chat"),
        ({"language": "en-US", "task": "unknown-task"}, "en-small"),
        ({"language": "en"}, "en-small"),
        ({"language": "en-AU"}, "en-small"),
        # The fallback rewrites to the first de-* code (de-DE) and filters by it, so the
        # de-CH conversation model is not picked even though it has the task.
        ({"language": "de-AT", "task": "conversation"}, "de-small"),
        ({"language": "de-CH"}, "de-ch"),
        ({"model": "", "language": "", "task": ""}, "de-small"),
    ],
)
def test_model_selection_order(request_, expected):
    assert CATALOG.select(**request_).name == expected


@pytest.mark.parametrize(
    "request_",
    [{"model": "nope"}, {"language": "fr-FR"}, {"task": "assistant"}],
)
def test_model_selection_failures_are_model_not_found(request_):
    with pytest.raises(ModelNotFound):
        CATALOG.select(**request_)


@pytest.mark.parametrize(
    ("code", "normalized"),
    [("de_de", "de-DE"), ("EN-us", "en-US"), ("De", "de"), (" pt_BR ", "pt-BR")],
)
def test_normalize_language(code, normalized):
    assert normalize_language(code) == normalized


# -- [vosk_server] ------------------------------------------------------------------------------


def test_vosk_server_api_is_off_by_default_with_vosk_servers_defaults(tmp_path):
    vosk = load(tmp_path, fixed_engine_file("path1 = a\nlang1 = en\n")).vosk_server
    assert not vosk.enabled
    assert (vosk.port, vosk.auth, vosk.sample_rate, vosk.words) == (2700, "auto", 8000, True)


def test_vosk_server_api_settings_are_read(tmp_path):
    text = fixed_engine_file("path1 = a\nlang1 = en\n")
    text += "[vosk_server]\nenabled = yes\nport = 0\nauth = on\nsample_rate = 16000\nmodel = a\n"
    vosk = load(tmp_path, text).vosk_server
    assert (vosk.enabled, vosk.port, vosk.auth, vosk.sample_rate, vosk.model) == (
        True,
        0,
        "on",
        16000,
        "a",
    )


@pytest.mark.parametrize(
    ("line", "key"),
    [
        ("port = 70000", "port"),
        ("auth = maybe", "auth"),
        ("sample_rate = 100", "sample_rate"),
        ("max_alternatives = -1", "max_alternatives"),
        ("enabled = perhaps", "enabled"),
    ],
)
def test_vosk_server_api_errors_name_the_key(tmp_path, line, key):
    text = fixed_engine_file("path1 = a\nlang1 = en\n") + f"[vosk_server]\n{line}\n"
    with pytest.raises(SettingsError, match=rf"\[vosk_server\] {key}"):
        load(tmp_path, text)


def test_wyoming_is_off_by_default_and_on_loopback(tmp_path):
    wyoming = load(tmp_path, fixed_engine_file("path1 = a\nlang1 = en\n")).wyoming
    assert (wyoming.enabled, wyoming.host, wyoming.port) == (False, "127.0.0.1", 10300)


def test_wyoming_port_errors_name_the_key(tmp_path):
    text = fixed_engine_file("path1 = a\nlang1 = en\n") + "[wyoming]\nport = -1\n"
    with pytest.raises(SettingsError, match=r"\[wyoming\] port"):
        load(tmp_path, text)


def test_a_users_file_adds_users_and_beats_the_common_token(tmp_path):
    (tmp_path / "secret").mkdir()
    (tmp_path / "secret" / "users.conf").write_text(
        "[users]\ncommon_auth_token = from-secret\nuser1 = bob\ntoken1 = bob-token\n"
    )
    text = fixed_engine_file("path1 = a\nlang1 = en\n")
    text += "[users]\ncommon_auth_token = plain\nusers_file = secret/users.conf\n"
    text += "user1 = alice\ntoken1 = alice-token\n"
    auth = load(tmp_path, text).auth
    assert auth.common_token == "from-secret"
    assert dict(auth.user_tokens) == {"alice": "alice-token", "bob": "bob-token"}


def test_a_users_file_that_cannot_be_read_is_an_error_naming_the_key(tmp_path):
    text = fixed_engine_file("path1 = a\nlang1 = en\n") + "[users]\nusers_file = absent.conf\n"
    with pytest.raises(SettingsError, match=r"\[users\] users_file = absent.conf"):
        load(tmp_path, text)


def test_a_settings_file_the_user_may_not_read_is_a_clear_error(tmp_path, monkeypatch):
    def refuse(self):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "is_file", refuse)
    with pytest.raises(SettingsError, match="Permission denied"):
        find_settings_file(tmp_path / "server.conf")
