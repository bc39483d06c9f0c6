"""One recording transcribed on Trio, a chunk at a time, sharing the engine with live streams.

The file is decoded in a worker thread a chunk at a time, and every chunk is fed to
the recognizer in an engine thread like a live stream's audio, but as background work:
it takes an engine slot (``SpeechService.engine_limiter``) only when no live stream is
waiting for one and another slot is left free.  A live stream therefore waits for a
file at most one chunk's decode, on one slot; a long upload runs in the time live
streams leave, slower while they are busy.  (First come, first served was measured
first: three realtime Vosk streams' lag rose from 0.1 to 1.7 s at the median.)
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from pathlib import Path

import trio

from stt.actions import SessionOptions
from stt.engines.base import RecognitionOptions
from stt.files.decode import AudioFile
from stt.files.transcript import Segment, Transcript, TranscriptBuilder
from stt.pcm import BYTES_PER_SAMPLE
from stt.server.recognition import Recognition
from stt.server.service import SessionPlan, SpeechService

#: Seconds of audio per engine call: what a live stream may wait behind a file's turn.
CHUNK_S = 0.5
_JOB_NUMBERS = itertools.count(1)

SegmentsSink = Callable[[list[Segment]], Awaitable[None]]


def plan_file(
    service: SpeechService, model: str | None, language: str | None, prompt: str | None
) -> SessionPlan:
    """The model and options for a file: words on (subtitles need their times)."""
    extra = {"prompt": prompt} if prompt else {}
    options = SessionOptions(
        model=model,
        language=language,
        recognition=RecognitionOptions(words=True, language=language, extra=extra, background=True),
    )
    return service.plan_session(options)


class FileJob:
    """A file's transcription: ``open`` checks the file, ``run`` transcribes it once, ``close``
    lets the file go; the caller holds a place from ``SpeechService.start_file_job``."""

    def __init__(self, service: SpeechService, plan: SessionPlan, audio: AudioFile) -> None:
        self._service = service
        self._plan = plan
        self._audio = audio
        self.job_id = f"file-{next(_JOB_NUMBERS)}"

    @classmethod
    async def open(cls, service: SpeechService, plan: SessionPlan, path: Path) -> FileJob:
        """The file opened for decoding, in a worker thread: a file that is not audio, or
        too long by what it says, is refused here, before any answer has started."""
        rate = int(plan.recognition.sample_rate)
        max_s = service.settings.files.max_audio_s
        return cls(service, plan, await trio.to_thread.run_sync(AudioFile, path, rate, max_s))

    def close(self) -> None:
        self._audio.close()

    async def run(self, on_segments: SegmentsSink | None = None) -> Transcript:
        """Decode the whole file; ``on_segments`` hears each utterance as it is final."""
        audio = self._audio
        recognition = Recognition(self._service, self.job_id, background=True)
        recognition.start(self._plan)
        metrics = self._service.metrics
        stated_s = audio.duration_s or 0.0
        metrics.file_audio_total.inc(stated_s)
        counted_s = 0.0
        try:
            builder = TranscriptBuilder()
            chunk_bytes = int(CHUNK_S * audio.sample_rate) * BYTES_PER_SAMPLE
            while pcm := await trio.to_thread.run_sync(audio.read, chunk_bytes):
                await recognition.budget.spend(len(pcm))
                hypotheses = await recognition.decode(pcm, _as_is)
                metrics.file_audio_done.inc(audio.decoded_s - counted_s)
                counted_s = audio.decoded_s
                segments = builder.add(hypotheses, audio.decoded_s)
                if segments and on_segments is not None:
                    await on_segments(segments)
            last = await recognition.finish()
            segments = builder.add([last], audio.decoded_s)
            if segments and on_segments is not None:
                await on_segments(segments)
            spec = self._plan.model.spec
            language = self._plan.recognition.language or spec.language
            return builder.transcript(audio.decoded_s, language, spec.name)
        finally:
            metrics.file_audio_total.dec(stated_s)
            metrics.file_audio_done.dec(counted_s)
            with trio.CancelScope(shield=True):
                await recognition.release()


def _as_is(pcm: bytes) -> bytes:
    """A file's chunk is decoded alone: nothing is queued behind it to join."""
    return pcm
