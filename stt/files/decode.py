"""Audio files in any common container and codec, as 16-bit mono PCM a chunk at a time.

PyAV (FFmpeg's libraries, which faster-whisper installs too) opens WAV, FLAC, OGG/Opus,
MP3, M4A/AAC, WebM and the rest, and resamples to the rate the model wants.  Reading
is blocking: callers run it in a worker thread, a chunk per call, so neither a long
file nor a slow codec ever holds the event loop, and only one chunk is in memory.
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

try:
    import av
    import av.error
except ImportError:  # 32-bit ARM: no PyAV wheels; files cannot be decoded there
    av = None  # type: ignore[assignment]

from stt.errors import FileTooLarge, InvalidAudio, UnsupportedMedia
from stt.pcm import BYTES_PER_SAMPLE


class AudioFile:
    """One audio stream of a file, decoded and resampled to mono s16 at ``sample_rate``."""

    def __init__(
        self, source: str | Path | BinaryIO, sample_rate: int, max_duration_s: float | None = None
    ) -> None:
        self.sample_rate = sample_rate
        self._max_bytes = (
            None if max_duration_s is None else int(max_duration_s * sample_rate) * BYTES_PER_SAMPLE
        )
        if av is None:
            raise UnsupportedMedia(
                "This server was installed without PyAV: it cannot decode files."
            )
        try:
            self._container = av.open(source, mode="r")
        except av.error.FFmpegError as error:
            raise UnsupportedMedia(
                f"Not an audio file this server can decode ({_reason(error)})."
            ) from error
        if not self._container.streams.audio:
            self._container.close()
            raise UnsupportedMedia("Not an audio file this server can decode (no audio stream).")
        self._stream = self._container.streams.audio[0]
        self._frames = self._container.decode(self._stream)
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=sample_rate)
        self._pending = bytearray()
        self._ended = False
        self._read = 0
        if self.duration_s is not None and max_duration_s is not None:
            try:
                self._check_duration(self.duration_s, max_duration_s)
            except FileTooLarge:
                self._container.close()
                raise

    @property
    def duration_s(self) -> float | None:
        """The duration the container states, if it states one (a stream may not)."""
        if self._stream.duration is not None and self._stream.time_base is not None:
            return float(self._stream.duration * self._stream.time_base)
        if self._container.duration is not None:
            return self._container.duration / av.time_base
        return None

    @property
    def decoded_s(self) -> float:
        """Seconds of audio handed out so far."""
        return self._read / (BYTES_PER_SAMPLE * self.sample_rate)

    def read(self, size: int) -> bytes:
        """Up to ``size`` bytes (a whole number of samples) of PCM; ``b""`` at the end."""
        size -= size % BYTES_PER_SAMPLE
        while len(self._pending) < size and not self._ended:
            self._decode_some()
        chunk = bytes(self._pending[:size])
        del self._pending[:size]
        self._read += len(chunk)
        if self._max_bytes is not None and self._read > self._max_bytes:
            limit_s = self._max_bytes / (BYTES_PER_SAMPLE * self.sample_rate)
            self._check_duration(self.decoded_s, limit_s)
        return chunk

    def close(self) -> None:
        self._container.close()

    def __enter__(self) -> AudioFile:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _decode_some(self) -> None:
        try:
            frame = next(self._frames, None)
        except av.error.FFmpegError as error:
            raise InvalidAudio(f"The audio cannot be decoded ({_reason(error)}).") from error
        for resampled in self._resampler.resample(frame):  # None flushes the resampler
            self._pending += resampled.to_ndarray().tobytes()
        if frame is None:
            self._ended = True

    @staticmethod
    def _check_duration(duration_s: float, max_duration_s: float) -> None:
        if duration_s > max_duration_s:
            raise FileTooLarge(
                f"The audio lasts {duration_s:.0f} s, more than this server's limit of "
                f"{max_duration_s:.0f} s."
            )


def _reason(error: av.error.FFmpegError) -> str:
    """FFmpeg's words for what went wrong, without the file name (a server's temporary file)."""
    return str(error.strerror or type(error).__name__)
