"""Speech for tests: synthesized with espeak-ng, or read from installed test data."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

SAMPLE_RATE = 16000
POCKETSPHINX_DATA = Path("/usr/share/pocketsphinx/test/data")
#: The workplace's optional CC0 speech clips, beside the checkout (or a folder or two above it).
SHARED_AUDIO = next(
    (
        folder / "shared" / "audio"
        for folder in Path(__file__).resolve().parents[2:5]
        if (folder / "shared" / "audio").is_dir()
    ),
    Path(__file__).resolve().parents[3] / "shared" / "audio",
)

#: Korean sentences for the Korean Vosk model (what is said matters less than that it is speech).
KOREAN_SENTENCES = ["안녕하세요 오늘 날씨가 좋습니다", "하나 둘 셋 넷 다섯"]


def require_tools(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (apt-get install espeak-ng sox libsox-fmt-all)")


def to_pcm(source: Path | bytes, *, input_type: str | None = None) -> bytes:
    """Any audio file sox reads -> 16 kHz mono s16le."""
    require_tools("sox")
    args = ["sox"]
    if input_type:
        args += ["-t", input_type]
    args += [str(source) if isinstance(source, Path) else "-"]
    args += ["-r", str(SAMPLE_RATE), "-c", "1", "-b", "16", "-e", "signed", "-t", "raw", "-"]
    data = source if isinstance(source, bytes) else None
    return subprocess.run(args, input=data, capture_output=True, check=True).stdout


def speak(text: str, voice: str = "ko") -> bytes:
    """espeak-ng speech as 16 kHz mono s16le."""
    require_tools("espeak-ng", "sox")
    wav = subprocess.run(
        ["espeak-ng", "-v", voice, "-s", "140", "--stdout", text], capture_output=True, check=True
    ).stdout
    return to_pcm(wav, input_type="wav")


def silence(seconds: float) -> bytes:
    return b"\0\0" * int(SAMPLE_RATE * seconds)


def wav_header(sample_rate: int = SAMPLE_RATE, data_bytes: int = 0x7FFFFFF0) -> bytes:
    """The 44-byte header the SEPIA browser client puts before the stream (size = a maximum)."""
    import struct

    return (
        b"RIFF"
        + struct.pack("<I", data_bytes + 36)
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, 1, sample_rate, sample_rate * 2, 2, 16)
        + b"data"
        + struct.pack("<I", data_bytes)
    )


def wav_file(pcm: bytes, sample_rate: int = SAMPLE_RATE) -> bytes:
    """Mono 16-bit PCM as a whole WAV file."""
    return wav_header(sample_rate, data_bytes=len(pcm)) + pcm


def encode(pcm: bytes, container: str, codec: str, rate: int) -> bytes:
    """16 kHz mono PCM encoded by FFmpeg's own encoders (through PyAV), as a recorder would."""
    import io

    import av

    out = io.BytesIO()
    with av.open(out, "w", format=container) as file:
        stream = file.add_stream(codec, rate=rate, layout="mono")
        resampler = av.AudioResampler(format=stream.format.name, layout="mono", rate=rate)
        frame = av.AudioFrame(format="s16", layout="mono", samples=len(pcm) // 2)
        frame.planes[0].update(pcm)
        frame.sample_rate = SAMPLE_RATE
        for resampled in resampler.resample(frame) + resampler.resample(None):
            for packet in stream.encode(resampled):
                file.mux(packet)
        for packet in stream.encode(None):
            file.mux(packet)
    return out.getvalue()
