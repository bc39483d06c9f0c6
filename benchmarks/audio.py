"""Real speech for the benchmark, made once and cached.

Vosk gets Korean espeak-ng sentences (its model is Korean), Whisper gets LibriVox
readings from ``pocketsphinx-testdata`` (tiny.en is English).  Sentences are
separated by pauses long enough for both endpointers, so a continuous session
gets one final per sentence while it streams: those finals are what the lag
behind realtime is measured on.
"""

from __future__ import annotations

import hashlib
import subprocess
import tempfile
import wave
from pathlib import Path

SAMPLE_RATE = 16000
#: 16-bit mono.
BYTES_PER_SECOND = 2 * SAMPLE_RATE
#: Longer than Whisper's 0.7 s end silence and Kaldi's endpoint rule.
PAUSE_S = 1.2
#: Before the first sentence, and after the last one: audioend comes right after speech.
EDGE_S = 0.3

KOREAN_SENTENCES = [
    "안녕하세요 오늘 날씨가 정말 좋습니다",
    "내일 아침 일곱 시에 알람을 맞춰 주세요",
    "하나 둘 셋 넷 다섯 여섯 일곱",
    "지금 몇 시인지 알려 주세요",
]
#: ``--quick``: two short commands.
QUICK_KOREAN_SENTENCES = ["불 꺼 줘", "네 좋아요"]
LIBRIVOX = Path("/usr/share/pocketsphinx/test/data/librivox")
LIBRIVOX_CLIPS = [
    "sense_and_sensibility_01_austen_64kb-0870.wav",
    "sense_and_sensibility_01_austen_64kb-0880.wav",
    "sense_and_sensibility_01_austen_64kb-0890.wav",
]
QUICK_LIBRIVOX_CLIPS = [
    "sense_and_sensibility_01_austen_64kb-0880.wav",
    "sense_and_sensibility_01_austen_64kb-0930.wav",
]
CACHE = Path(tempfile.gettempdir()) / "sepia-stt-bench"


def speech_for(engine: str, *, quick: bool = False) -> bytes:
    """The benchmark audio of an engine (about 19 s; ``quick``: 5 to 8 s)."""
    if engine == "whisper":
        names = QUICK_LIBRIVOX_CLIPS if quick else LIBRIVOX_CLIPS
        return with_pauses([read_wav(LIBRIVOX / name) for name in names])
    sentences = QUICK_KOREAN_SENTENCES if quick else KOREAN_SENTENCES
    return with_pauses([espeak(s, voice="ko") for s in sentences])


def seconds(pcm: bytes) -> float:
    return len(pcm) / BYTES_PER_SECOND


def silence(seconds: float) -> bytes:
    return b"\0\0" * round(SAMPLE_RATE * seconds)


def with_pauses(clips: list[bytes]) -> bytes:
    return silence(EDGE_S) + silence(PAUSE_S).join(clips) + silence(EDGE_S)


def espeak(text: str, *, voice: str) -> bytes:
    """espeak-ng speech as 16 kHz s16le, cached by text and voice (espeak is slow to start)."""
    key = hashlib.sha256(f"{voice}:{text}".encode()).hexdigest()[:16]
    cached = CACHE / f"{voice}-{key}.raw"
    if cached.is_file():
        return cached.read_bytes()
    wav = subprocess.run(
        ["espeak-ng", "-v", voice, "-s", "140", "--stdout", text], capture_output=True, check=True
    ).stdout
    pcm = to_pcm(wav, input_type="wav")
    CACHE.mkdir(parents=True, exist_ok=True)
    cached.write_bytes(pcm)
    return pcm


def load_audio(path: Path) -> bytes:
    """A ``.raw`` file is taken as 16 kHz s16le already; anything else goes through sox."""
    return path.read_bytes() if path.suffix == ".raw" else to_pcm(path.read_bytes())


def to_pcm(data: bytes, *, input_type: str | None = None) -> bytes:
    """Any audio sox reads -> 16 kHz mono s16le."""
    args = ["sox", *(["-t", input_type] if input_type else []), "-"]
    args += ["-r", str(SAMPLE_RATE), "-c", "1", "-b", "16", "-e", "signed", "-t", "raw", "-"]
    return subprocess.run(args, input=data, capture_output=True, check=True).stdout


def read_wav(path: Path) -> bytes:
    with wave.open(str(path)) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (SAMPLE_RATE, 1, 2)
        return wav.readframes(wav.getnframes())
