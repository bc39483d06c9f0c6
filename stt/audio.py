"""Turning a stream of binary frames into whole s16le samples.

Clients split audio anywhere: a frame may end in the middle of a sample, and the
browser clients put a 44-byte RIFF/WAVE header in front of the stream.  The
recognizer must only ever see whole samples, and never the header.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from stt.pcm import BYTES_PER_SAMPLE, DEFAULT_SAMPLE_RATE

_RIFF_PREAMBLE = 12  # "RIFF" <size> "WAVE"
_CHUNK_HEADER = 8  # <id> <size>
#: A header longer than this is not a header we wait for (the JS client's is 44 bytes).
_MAX_HEADER = 4096


@dataclass(frozen=True, slots=True)
class WavFormat:
    sample_rate: int
    channels: int
    bits_per_sample: int


class PcmFramer:
    """Joins frames into even-length PCM and strips a leading WAV header once.

    What is held back when the stream ends (half a sample, or a piece of a
    header) is not audio, so there is nothing to flush.
    """

    def __init__(self) -> None:
        self._pending = b""
        self._at_start = True
        #: The format the WAV header declared, if the stream had one.
        self.wav_format: WavFormat | None = None

    def feed(self, data: bytes) -> bytes:
        """Whole samples ready for the recognizer (maybe ``b""``)."""
        data = self._pending + data
        self._pending = b""
        if self._at_start:
            if _could_be_wav(data) and not _header_complete(data):
                self._pending = data
                return b""
            self._at_start = False
            data = self._strip_header(data)
        usable = len(data) - len(data) % BYTES_PER_SAMPLE
        self._pending = data[usable:]
        return data[:usable]

    def _strip_header(self, data: bytes) -> bytes:
        header = _parse_wav_header(data)
        if header is None:
            return data
        self.wav_format, data_offset = header
        return data[data_offset:]


def _could_be_wav(data: bytes) -> bool:
    """The stream so far starts with a RIFF/WAVE preamble, or with a piece of one."""
    riff, wave = data[:4], data[8:12]
    return b"RIFF".startswith(riff) and b"WAVE".startswith(wave)


def _header_complete(data: bytes) -> bool:
    return _parse_wav_header(data) is not None or len(data) >= _MAX_HEADER


def _parse_wav_header(data: bytes) -> tuple[WavFormat, int] | None:
    """The declared format and where the samples start, once the ``data`` chunk is in."""
    if len(data) < _RIFF_PREAMBLE or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None
    offset = _RIFF_PREAMBLE
    wav_format: WavFormat | None = None
    while offset + _CHUNK_HEADER <= min(len(data), _MAX_HEADER):
        chunk_id = data[offset : offset + 4]
        (size,) = struct.unpack_from("<I", data, offset + 4)
        body = offset + _CHUNK_HEADER
        if chunk_id == b"data":
            return wav_format or WavFormat(DEFAULT_SAMPLE_RATE, 1, 8 * BYTES_PER_SAMPLE), body
        if chunk_id == b"fmt " and body + 16 <= len(data):
            _tag, channels, rate, _byte_rate, _align, bits = struct.unpack_from(
                "<HHIIHH", data, body
            )
            wav_format = WavFormat(rate, channels, bits)
        offset = body + size + size % 2
    return None
